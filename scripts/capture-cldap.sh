#!/usr/bin/env bash
# Records fixtures/cldap/samba-dc.pcapng: CLDAP netlogon pings (MS-ADTS
# 6.3.3) answered by a real Samba Active Directory domain controller (DC01
# of corp.example, provisioned here with samba-tool) in two network
# namespaces made here and removed at the end; no traffic leaves them.
#   - `net ads lookup`, Samba's own DC locator (filter NtVer, AAC);
#   - the ping a Windows machine sends when it looks for its DC
#     (DnsDomain, Host=WIN-J9D866ESIJ2, User=WIN-J9D866ESIJ2$, NtVer with
#     V5EX), built from the specification by a few lines of Python below,
#     since no Linux client sends Host and User; twice: once for a machine
#     the domain knows nothing of, once with NtVer V5EX|V5EP (the DC's
#     address in the answer).
#
#   sudo scripts/capture-cldap.sh [OUT_DIR]
#
# Needs: iproute2, samba (AD DC: samba-ad-provision, samba-dsdb-modules),
# samba-common-bin (net), python3, tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-fixtures/cldap}
dc=hwcdA$$
cl=hwcdB$$
work=$(mktemp -d)
cleanup() {
    for p in ${srv:-} ${cap:-}; do kill "$p" 2>/dev/null || true; done
    pkill -f "samba -i -s $work" 2>/dev/null || true
    ip netns del "$dc" 2>/dev/null || true
    ip netns del "$cl" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

samba-tool domain provision --targetdir="$work/dc" --realm=CORP.EXAMPLE --domain=CORP \
    --server-role=dc --dns-backend=SAMBA_INTERNAL --adminpass='Passw0rd!Passw0rd' \
    --host-name=DC01 --host-ip=10.79.0.1 >/dev/null 2>&1
# Only the services a netlogon ping needs (winbindd is not installed here).
# Its pid file and logs stay in the work directory.
sed -i "s|^\tworkgroup = CORP|\tworkgroup = CORP\n\tserver services = ldap cldap kdc\n\tpid directory = $work|" "$work/dc/etc/smb.conf"
sed -i "s|^\tlog file = .*|\tlog file = $work/log.%m|" "$work/dc/etc/smb.conf"

ip netns add "$dc"
ip netns add "$cl"
ip link add veth-cd0 netns "$dc" type veth peer name veth-cd1 netns "$cl"
ip -n "$dc" addr add 10.79.0.1/24 dev veth-cd0
ip -n "$cl" addr add 10.79.0.2/24 dev veth-cd1
for ns in "$dc" "$cl"; do ip -n "$ns" link set lo up; done
ip -n "$dc" link set veth-cd0 up
ip -n "$cl" link set veth-cd1 up
sleep 1

ip netns exec "$dc" tshark -q -i veth-cd0 -w "$work/cldap.pcapng" -f "udp port 389" 2>/dev/null &
cap=$!
ip netns exec "$dc" samba -i -s "$work/dc/etc/smb.conf" >"$work/samba.log" 2>&1 &
srv=$!
for _ in $(seq 60); do
    ip netns exec "$dc" ss -uln | grep -q '10.79.0.1:389' && break
    sleep 0.5
done
sleep 1

cat >"$work/client.conf" <<'CONF'
[global]
    workgroup = CORP
    realm = CORP.EXAMPLE
    netbios name = WIN-LIVFRVQFMKO
    security = ads
CONF
# The DC answers once its directory is loaded: retry until it does.
for _ in $(seq 20); do
    ip netns exec "$cl" net ads lookup -S 10.79.0.1 -s "$work/client.conf" >/dev/null 2>&1 && break
    sleep 1
done

cat >"$work/ping.py" <<'PY'
# A netlogon ping as MS-ADTS 6.3.3.2 lays it out: an LDAP searchRequest
# (RFC 4511 4.5.1) for the NetLogon attribute of the root, filtered by an
# AND of equality matches.
import socket, struct, sys

def der(tag, value):
    n = len(value)
    head = bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else bytes([0x82]) + n.to_bytes(2, "big")
    return bytes([tag]) + head + value

def eq(attr, value):
    return der(0xa3, der(0x04, attr.encode()) + der(0x04, value))

def ping(msg_id, ntver, host, user):
    flt = der(0xa0, eq("DnsDomain", b"corp.example") + eq("Host", host.encode())
              + eq("User", user.encode()) + eq("NtVer", struct.pack("<I", ntver)))
    search = (der(0x04, b"") + der(0x0a, b"\x00") + der(0x0a, b"\x00") + der(0x02, b"\x00")
              + der(0x02, b"\x00") + der(0x01, b"\x00") + flt + der(0x30, der(0x04, b"Netlogon")))
    return der(0x30, der(0x02, bytes([msg_id])) + der(0x63, search))

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
for msg_id, ntver in [(1, 0x16), (2, 0x1e)]:
    s.sendto(ping(msg_id, ntver, "WIN-J9D866ESIJ2", "WIN-J9D866ESIJ2$"), ("10.79.0.1", 389))
    s.recvfrom(4096)
PY
ip netns exec "$cl" python3 "$work/ping.py"
sleep 1
kill "$cap" "$srv"
wait "$cap" 2>/dev/null || true
mkdir -p "$out"
cp "$work/cldap.pcapng" "$out/samba-dc.pcapng"
echo "wrote $out/samba-dc.pcapng ($(tshark -r "$out/samba-dc.pcapng" 2>/dev/null | wc -l) packets)"
