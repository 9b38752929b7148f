#!/usr/bin/env bash
# Records fixtures/dhcp/dnsmasq-dhclient.pcapng: ISC dhclient (a real DHCP
# client) leasing addresses from dnsmasq (a real DHCPv4/DHCPv6 server), as a
# rented VM does when it joins a network. Three network namespaces made here
# (a server with a bridge, two clients) and removed at the end; no traffic
# leaves them.
#   client B: host name WIN-J9D866ESIJ2 (option 12), FQDN in DNS wire format
#             (option 81, E flag), vendor class "MSFT 5.0" as Windows sends;
#             DORA, then a DHCPv6 Solicit/Advertise/Request/Reply with its
#             FQDN (option 39), then a release of its v4 lease (from its
#             address, ciaddr set);
#   client C: host name WIN-LIVFRVQFMKO, FQDN as ASCII (option 81 without
#             E); DORA, then the renewal at T1 (unicast, ciaddr set) of its
#             two-minute lease.
#
#   sudo scripts/capture-dhcp.sh [OUT_DIR]     (about 80 s: waits for T1)
#
# Needs: iproute2, dnsmasq, isc-dhcp-client, tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-fixtures/dhcp}
srv_ns=hwdhA$$
b=hwdhB$$
c=hwdhC$$
work=$(mktemp -d)
cleanup() {
    for p in ${renew:-} ${srv:-} ${cap:-}; do kill "$p" 2>/dev/null || true; done
    for ns in "$srv_ns" "$b" "$c"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

for ns in "$srv_ns" "$b" "$c"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
ip -n "$srv_ns" link add br0 type bridge
ip link add vb0 netns "$srv_ns" type veth peer name eth0 netns "$b"
ip link add vc0 netns "$srv_ns" type veth peer name eth0 netns "$c"
for i in vb0 vc0; do
    ip -n "$srv_ns" link set "$i" master br0
    ip -n "$srv_ns" link set "$i" up
done
ip -n "$srv_ns" addr add 10.77.0.1/24 dev br0
ip -n "$srv_ns" addr add fd77::1/64 dev br0 nodad
ip -n "$srv_ns" link set br0 up
ip -n "$b" link set eth0 up
ip -n "$c" link set eth0 up
sleep 2

ip netns exec "$srv_ns" tshark -q -i br0 -w "$work/dhcp.pcapng" \
    -f "udp port 67 or udp port 68 or udp port 546 or udp port 547" 2>/dev/null &
cap=$!
ip netns exec "$srv_ns" dnsmasq --no-daemon --port=0 --interface=br0 --bind-interfaces \
    --dhcp-range=10.77.0.50,10.77.0.99,2m --dhcp-range=fd77::50,fd77::99,64,2m \
    --dhcp-leasefile="$work/leases" --domain=corp.example \
    --pid-file="$work/dnsmasq.pid" 2>"$work/dnsmasq.log" &
srv=$!
sleep 2

cat >"$work/b.conf" <<'CONF'
send host-name "WIN-J9D866ESIJ2";
send vendor-class-identifier "MSFT 5.0";
send fqdn.fqdn "WIN-J9D866ESIJ2.corp.example.";
send fqdn.encoded on;
send fqdn.server-update on;
request subnet-mask, routers, host-name, domain-name;
CONF
cat >"$work/c.conf" <<'CONF'
send host-name "WIN-LIVFRVQFMKO";
send fqdn.fqdn "WIN-LIVFRVQFMKO.corp.example";
send fqdn.encoded off;
request subnet-mask, routers;
CONF
cat >"$work/b6.conf" <<'CONF'
send fqdn.fqdn "WIN-J9D866ESIJ2.corp.example.";
send fqdn.server-update on;
CONF
# The clients configure what they lease (a unicast renewal and a release
# are sent from it); nothing else on the machine is touched.
cat >"$work/hook" <<'HOOK'
#!/bin/sh
case "$reason" in
    BOUND|RENEW|REBIND|REBOOT) ip addr replace "$new_ip_address/24" dev "$interface" ;;
    BOUND6|RENEW6|REBIND6) ip -6 addr replace "$new_ip6_address/64" dev "$interface" nodad ;;
esac
HOOK
chmod +x "$work/hook"
client() {
    local ns=$1 name=$2
    shift 2
    ip netns exec "$ns" dhclient -cf "$work/$name.conf" -lf "$work/$name.lease" \
        -pf "$work/$name.pid" -sf "$work/hook" "$@" eth0
}
client "$b" b -4 -1
# C stays running: its lease of two minutes is renewed at T1, 60 s later.
client "$c" c -4 -d >"$work/c.log" 2>&1 &
renew=$!
client "$b" b6 -6 -1
sleep 66
client "$b" b -4 -r
sleep 1
grep -q DHCPACK "$work/c.log" || { echo "client C was not acknowledged" >&2; exit 1; }
[ "$(grep -c DHCPREQUEST "$work/c.log")" -ge 2 ] || { echo "client C did not renew" >&2; exit 1; }
kill "$renew" "$cap" "$srv"
wait "$cap" 2>/dev/null || true
mkdir -p "$out"
cp "$work/dhcp.pcapng" "$out/dnsmasq-dhclient.pcapng"
echo "wrote $out/dnsmasq-dhclient.pcapng ($(tshark -r "$out/dnsmasq-dhclient.pcapng" 2>/dev/null | wc -l) packets)"
