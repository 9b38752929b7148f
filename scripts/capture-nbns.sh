#!/usr/bin/env bash
# Records fixtures/nbns/nmbd-nmblookup.pcap: Samba's nmbd starting up on one
# side of a veth pair (broadcast registrations of its names), and
# nmblookup on the other side asking for it by broadcast, by unicast and
# for its node status. Two network namespaces made here and removed at the
# end; no traffic leaves them. Then writes fixtures/nbns/nmbd-nmblookup.tshark.json with
# what tshark decodes of every name service message.
#
#   sudo scripts/capture-nbns.sh [OUT_DIR]
#
# Needs: iproute2, samba (nmbd), samba-common-bin (nmblookup), tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-fixtures/nbns}
name=WIN-LIVFRVQFMKO
group=LABNET
a=hwnbA$$
b=hwnbB$$
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
ip link add veth-nb0 netns "$a" type veth peer name veth-nb1 netns "$b"
ip -n "$a" addr add 192.168.77.1/24 brd 192.168.77.255 dev veth-nb0
ip -n "$b" addr add 192.168.77.2/24 brd 192.168.77.255 dev veth-nb1
for ns in "$a" "$b"; do
    ip -n "$ns" link set lo up
done
ip -n "$a" link set veth-nb0 up
ip -n "$b" link set veth-nb1 up
sleep 1

mkdir -p "$work/state" "$work/cache" "$work/lock" "$work/private" "$work/log"
cat >"$work/smb.conf" <<EOF
[global]
    netbios name = $name
    workgroup = $group
    interfaces = 192.168.77.2/24
    bind interfaces only = yes
    local master = yes
    preferred master = yes
    os level = 65
    state directory = $work/state
    cache directory = $work/cache
    lock directory = $work/lock
    private dir = $work/private
    pid directory = $work
    log file = $work/log/%m.log
    disable netbios = no
EOF
cat >"$work/client.conf" <<EOF
[global]
    netbios name = LAB-CLIENT
    workgroup = $group
    interfaces = 192.168.77.1/24
    bind interfaces only = yes
    state directory = $work/state
    cache directory = $work/cache
    lock directory = $work/lock
EOF

ip netns exec "$a" dumpcap -q -i veth-nb0 -f "udp port 137" -w "$work/cap.pcapng" &
cap=$!
sleep 2
ip netns exec "$b" nmbd -D -s "$work/smb.conf"
# nmbd registers its names by broadcast (three tries each) at start-up.
sleep 8
ip netns exec "$a" nmblookup -s "$work/client.conf" -B 192.168.77.255 "$name" || true
ip netns exec "$a" nmblookup -s "$work/client.conf" -U 192.168.77.2 --recursion "$name#20" || true
ip netns exec "$a" nmblookup -s "$work/client.conf" -A 192.168.77.2 || true
sleep 2
kill "$cap"
wait "$cap" 2>/dev/null || true
cap=

mkdir -p "$out"
tshark -r "$work/cap.pcapng" -F pcap -w "$out/nmbd-nmblookup.pcap"
scripts/tshark-nbns.sh "$out/nmbd-nmblookup.pcap" >"$out/nmbd-nmblookup.tshark.json"
echo "wrote $out/nmbd-nmblookup.pcap and $out/nmbd-nmblookup.tshark.json ($(tshark -r "$out/nmbd-nmblookup.pcap" -Y nbns 2>/dev/null | wc -l) name service messages)"
