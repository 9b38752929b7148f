#!/usr/bin/env bash
# Records fixtures/smtp/swaks-aiosmtpd.pcap: swaks (a real SMTP client)
# talking to aiosmtpd (a real SMTP server) whose greeting names it
# WIN-344VU98D3RU.mailvm.example, as a rented VM's mail server does. Three
# sessions: EHLO, HELO (--protocol SMTP), and EHLO with an address literal.
# Two network namespaces made here and removed at the end; no traffic leaves
# them. Then writes fixtures/smtp/swaks-aiosmtpd.tshark.json with what tshark
# decodes of each session's HELO/EHLO name, greeting name and EHLO reply name.
#
#   sudo scripts/capture-smtp.sh [OUT_DIR]
#
# Needs: iproute2, swaks, python3 with aiosmtpd (pip install aiosmtpd), tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-fixtures/smtp}
a=hwsmA$$
b=hwsmB$$
work=$(mktemp -d)
cleanup() {
    [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null || true
    [ -n "${cap:-}" ] && kill "$cap" 2>/dev/null || true
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$a"
ip netns add "$b"
ip link add veth-sm0 netns "$a" type veth peer name veth-sm1 netns "$b"
ip -n "$a" addr add 192.168.78.1/24 dev veth-sm0
ip -n "$b" addr add 192.168.78.2/24 dev veth-sm1
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set veth-sm0 up
ip -n "$b" link set veth-sm1 up
sleep 1

cat >"$work/server.py" <<'PY'
import time
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink
c = Controller(Sink(), hostname="192.168.78.1", port=25,
               server_hostname="WIN-344VU98D3RU.mailvm.example")
c.start()
time.sleep(600)
PY
ip netns exec "$a" python3 "$work/server.py" &
srv=$!
ip netns exec "$a" tshark -q -i veth-sm0 -w "$work/smtp.pcapng" -f "tcp port 25" 2>/dev/null &
cap=$!
for _ in $(seq 50); do
    ip netns exec "$b" bash -c 'echo > /dev/tcp/192.168.78.1/25' 2>/dev/null && break
    sleep 0.2
done
sleep 1
run() { ip netns exec "$b" swaks --server 192.168.78.1 --from vm@mailvm.example --to victim@corp.example --silent 2 "$@"; }
run --ehlo WIN-J9D866ESIJ2.corp.example
run --protocol SMTP --helo WIN-LIVFRVQFMKO
run --ehlo '[192.168.78.2]'
sleep 1
kill "$cap"; wait "$cap" 2>/dev/null || true
cap=
mkdir -p "$out"
tshark -r "$work/smtp.pcapng" -F pcap -w "$out/swaks-aiosmtpd.pcap"
tshark -r "$out/swaks-aiosmtpd.pcap" -Y smtp -T fields -E occurrence=f \
    -e tcp.stream -e smtp.req.command -e smtp.req.parameter -e smtp.response.code -e smtp.rsp.parameter \
  | python3 -c '
# Per connection: the client name of HELO/EHLO, the first word of the 220
# greeting, and the first word of the first line of the EHLO reply.
import json, sys
sessions = {}
for line in sys.stdin:
    stream, cmd, param, code, rsp = line.rstrip("\n").split("\t")
    s = sessions.setdefault(int(stream), {"command": None, "helo": None, "greeting": None, "ehlo_reply": None})
    if cmd in ("HELO", "EHLO") and s["helo"] is None:
        s["command"], s["helo"] = cmd, param
    elif code == "220" and s["greeting"] is None:
        s["greeting"] = rsp.split(" ")[0]
    elif code == "250" and s["command"] == "EHLO" and s["ehlo_reply"] is None:
        s["ehlo_reply"] = rsp.split(" ")[0]
json.dump([sessions[k] for k in sorted(sessions)], sys.stdout, indent=1)
' > "$out/swaks-aiosmtpd.tshark.json"
echo "wrote $out/swaks-aiosmtpd.pcap and $out/swaks-aiosmtpd.tshark.json"
