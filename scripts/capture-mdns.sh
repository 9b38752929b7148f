#!/usr/bin/env bash
# Records fixtures/mdns/zeroconf.pcap: python-zeroconf (a real mDNS
# implementation) on one side of a veth pair announcing a host
# WIN-J9D866ESIJ2.local with an SMB service, and another instance on the
# other side asking for that host's address. Two network namespaces made
# here and removed at the end; no traffic leaves them.
#
#   sudo scripts/capture-mdns.sh [OUT_DIR]
#
# Needs: iproute2, python3 with zeroconf (pip install zeroconf), dumpcap.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-fixtures/mdns}
a=hwmdA$$
b=hwmdB$$
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
ip link add veth-md0 netns "$a" type veth peer name veth-md1 netns "$b"
ip -n "$a" addr add 192.168.80.1/24 dev veth-md0
ip -n "$b" addr add 192.168.80.2/24 dev veth-md1
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set veth-md0 up
ip -n "$b" link set veth-md1 up
ip -n "$a" route add 224.0.0.0/4 dev veth-md0
ip -n "$b" route add 224.0.0.0/4 dev veth-md1
sleep 1

printf '%s\n' \
    'import socket, time' \
    'from zeroconf import IPVersion, ServiceInfo, Zeroconf' \
    'zc = Zeroconf(interfaces=["192.168.80.2"], ip_version=IPVersion.V4Only)' \
    'info = ServiceInfo("_smb._tcp.local.", "WIN-J9D866ESIJ2._smb._tcp.local.",' \
    '    addresses=[socket.inet_aton("192.168.80.2")], port=445,' \
    '    server="WIN-J9D866ESIJ2.local.")' \
    'zc.register_service(info)' \
    'time.sleep(30)' >"$work/responder.py"
printf '%s\n' \
    'from zeroconf import IPVersion, Zeroconf' \
    'from zeroconf.asyncio import AsyncServiceInfo' \
    'import asyncio' \
    'zc = Zeroconf(interfaces=["192.168.80.1"], ip_version=IPVersion.V4Only)' \
    'info = zc.get_service_info("_smb._tcp.local.", "WIN-J9D866ESIJ2._smb._tcp.local.", timeout=5000)' \
    'print(info)' \
    'zc.close()' >"$work/asker.py"

ip netns exec "$a" dumpcap -q -i veth-md0 -f "udp port 5353" -w "$work/cap.pcapng" &
cap=$!
sleep 2
ip netns exec "$b" python3 "$work/responder.py" &
srv=$!
sleep 4
ip netns exec "$a" python3 "$work/asker.py"
sleep 2
kill "$cap"; wait "$cap" 2>/dev/null || true
cap=
mkdir -p "$out"
tshark -r "$work/cap.pcapng" -F pcap -w "$out/zeroconf.pcap"
echo "wrote $out/zeroconf.pcap ($(tshark -r "$out/zeroconf.pcap" 2>/dev/null | wc -l) packets)"
scripts/tshark-mdns.sh
