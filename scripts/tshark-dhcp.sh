#!/usr/bin/env bash
# Writes fixtures/dhcp.tshark.json: for the DHCP capture and every capture
# under fixtures/lab and fixtures/real/pcaps, what tshark decodes of each
# DHCPv4 and DHCPv6 message (type, transaction id, client MAC, ciaddr,
# yiaddr, host name, requested address, vendor class, client FQDN, DHCPv6
# IAADDR and DUID; of a relayed message, the relayed one's), in frame order;
# a datagram whose UDP checksum is wrong (and not the pseudo-header sum a
# sender leaves for its card) is left out: its receiver drops it. tests/conformance.rs folds them into
# transactions and compares hostwatch's `dhcp` events with them.
# Needs tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
out=fixtures/dhcp.tshark.json
for f in fixtures/dhcp/*.pcap* fixtures/lab/*.pcap* fixtures/real/pcaps/*; do
    tshark -r "$f" -o udp.check_checksum:TRUE -Y "dhcp or dhcpv6" -T fields -E occurrence=a -E 'aggregator=|' \
        -e frame.number -e frame.time_epoch -e dhcp.type -e dhcp.option.dhcp -e dhcp.id -e dhcp.hw.mac_addr \
        -e dhcp.ip.client -e dhcp.ip.your -e dhcp.option.hostname \
        -e dhcp.option.requested_ip_address -e dhcp.option.vendor_class_id -e dhcp.fqdn.name \
        -e dhcpv6.msgtype -e dhcpv6.xid -e dhcpv6.client_domain -e dhcpv6.iaaddr.ip \
        -e dhcpv6.duidllt.link_layer_addr -e dhcpv6.duidll.link_layer_addr -e dhcpv6.vendorclass.data \
        -e udp.checksum.status -e udp.checksum -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst \
        -e udp.length 2>/dev/null \
      | python3 -c '
import ipaddress, json, sys
keys = ["frame", "time", "op", "type", "xid", "mac", "ciaddr", "yiaddr", "hostname", "requested_ip",
        "vendor_class", "fqdn", "v6_type", "v6_xid", "v6_fqdn", "v6_iaaddr", "v6_llt_mac", "v6_ll_mac", "v6_vendor_class",
        "status", "checksum", "src4", "dst4", "src6", "dst6", "udp_len"]

def unfilled(r):
    # What a sending stack leaves for its card: the pseudo-header sum.
    src = r.get("src4") or r.get("src6")
    dst = r.get("dst4") or r.get("dst6")
    words = 17 + int(r["udp_len"])
    for a in (src, dst):
        b = ipaddress.ip_address(a).packed
        words += sum(int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2))
    while words > 0xffff:
        words = (words & 0xffff) + (words >> 16)
    return int(r["checksum"], 16) == words

rows = []
for line in sys.stdin:
    f = line.rstrip("\n").split("\t")
    # The first value of each field; of a relayed DHCPv6 message the
    # innermost type (the relay envelopes come first).
    r = {k: (v.split("|")[-1] if k == "v6_type" else v.split("|")[0])
         for k, v in zip(keys, f) if v != ""}
    # A datagram whose checksum is wrong, and not one left for its
    # sending card to fill, is dropped by its receiver: not in the oracle.
    if r.get("status") == "0" and not unfilled(r):
        continue
    for k in ["status", "checksum", "src4", "dst4", "src6", "dst6", "udp_len"]:
        r.pop(k, None)
    rows.append(r)
print(json.dumps({sys.argv[1]: rows}))
' "${f#fixtures/}"
done | python3 scripts/merge-oracle.py >"$out"
echo "wrote $out"
