#!/usr/bin/env bash
# Records fixtures/browser/nmbd-announcements.pcap: Samba's nmbd, named
# WIN-LIVFRVQFMKO with a server string, starting up on one side of a veth
# pair: its host announcements and, once it has won the browser election,
# its local master and domain announcements (NetBIOS datagram service,
# UDP 138, \MAILSLOT\BROWSE). Two network namespaces made here and removed
# at the end; no traffic leaves them. nmbd announces in its first minutes,
# so the capture runs for SECONDS (default 100). Then rewrites
# fixtures/browser.tshark.json (scripts/tshark-browser.sh), what tshark
# decodes of it and of the other captures.
#
#   sudo scripts/capture-browser.sh [OUT_DIR] [SECONDS]
#
# Needs: iproute2, samba (nmbd), tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-fixtures/browser}
secs=${2:-100}
name=WIN-LIVFRVQFMKO
group=LABNET
a=hwbrA$$
b=hwbrB$$
work=$(mktemp -d)
cleanup() {
    [ -f "$work/nmbd.pid" ] && kill "$(cat "$work/nmbd.pid")" 2>/dev/null || true
    [ -n "${cap:-}" ] && kill "$cap" 2>/dev/null || true
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$a"
ip netns add "$b"
ip link add veth-br0 netns "$a" type veth peer name veth-br1 netns "$b"
ip -n "$a" addr add 192.168.79.1/24 brd 192.168.79.255 dev veth-br0
ip -n "$b" addr add 192.168.79.2/24 brd 192.168.79.255 dev veth-br1
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set veth-br0 up
ip -n "$b" link set veth-br1 up
sleep 1

mkdir -p "$work/state" "$work/cache" "$work/lock" "$work/private" "$work/log"
printf '%s\n' \
    "[global]" \
    "    netbios name = $name" \
    "    workgroup = $group" \
    "    server string = rented lab VM" \
    "    interfaces = 192.168.79.2/24" \
    "    bind interfaces only = yes" \
    "    local master = yes" \
    "    preferred master = yes" \
    "    domain master = yes" \
    "    os level = 65" \
    "    state directory = $work/state" \
    "    cache directory = $work/cache" \
    "    lock directory = $work/lock" \
    "    private dir = $work/private" \
    "    pid directory = $work" \
    "    log file = $work/log/%m.log" \
    "    disable netbios = no" >"$work/smb.conf"

ip netns exec "$a" dumpcap -q -i veth-br0 -f "udp port 138" -w "$work/cap.pcapng" &
cap=$!
sleep 2
ip netns exec "$b" nmbd -D -s "$work/smb.conf"
sleep "$secs"
kill "$cap"
wait "$cap" 2>/dev/null || true
cap=

mkdir -p "$out"
tshark -r "$work/cap.pcapng" -F pcap -w "$out/nmbd-announcements.pcap"
scripts/tshark-browser.sh
echo "wrote $out/nmbd-announcements.pcap ($(tshark -r "$out/nmbd-announcements.pcap" -Y browser 2>/dev/null | wc -l) browser messages)"
