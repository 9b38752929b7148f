#!/usr/bin/env bash
# Writes fixtures/mdns-llmnr.tshark.json: for the mDNS and LLMNR captures
# and every capture under fixtures/lab and fixtures/real/pcaps, each
# message's questions (name, type) and A/AAAA records of every section
# (name, address) as tshark decodes them, in frame order.
# tests/conformance.rs compares hostwatch's `mdns` and `llmnr` events with
# it. Needs tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
out=fixtures/mdns-llmnr.tshark.json
for f in fixtures/mdns/*.pcap fixtures/llmnr/*.pcap fixtures/lab/*.pcap* fixtures/real/pcaps/*; do
    tshark -r "$f" -Y "mdns || llmnr" -T fields -E occurrence=a -E aggregator='|' \
        -e frame.number -e dns.flags.response -e dns.qry.name -e dns.qry.type \
        -e dns.resp.type -e dns.resp.name -e dns.a -e dns.aaaa 2>/dev/null \
      | python3 -c '
import json, sys
names = {1: "A", 28: "AAAA", 255: "ANY", 12: "PTR", 16: "TXT", 33: "SRV"}
rows = []
for line in sys.stdin:
    f = line.rstrip("\n").split("\t")
    split = lambda s: [x for x in s.split("|") if x != ""]
    qn, qt = split(f[2]), [names.get(int(t), "other") for t in split(f[3])]
    rt, rn = [int(t) for t in split(f[4])], split(f[5])
    a4, a6 = split(f[6]), split(f[7])
    answers = []
    for t, n in zip(rt, rn):
        if t == 1 and a4:
            answers.append([n, a4.pop(0)])
        elif t == 28 and a6:
            answers.append([n, a6.pop(0)])
    rows.append({"frame": int(f[0]), "response": f[1] in ("1", "True"),
                 "queries": [list(p) for p in zip(qn, qt)], "answers": answers})
print(json.dumps({sys.argv[1]: rows}))
' "${f#fixtures/}"
done | python3 scripts/merge-oracle.py >"$out"
echo "wrote $out"
