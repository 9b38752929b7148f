#!/usr/bin/env bash
# Writes fixtures/browser.tshark.json: for the browser capture and every
# capture under fixtures/lab and fixtures/real/pcaps, what tshark decodes of
# each browser message (command, server, OS version, comment, master
# browser, the source address the datagram states), in frame order.
# tests/conformance.rs compares hostwatch's `browser` events with it.
# Needs tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
out=fixtures/browser.tshark.json
for f in fixtures/browser/*.pcap fixtures/lab/*.pcap* fixtures/real/pcaps/*; do
    tshark -r "$f" -Y browser -T fields -E occurrence=f \
        -e frame.number -e browser.command -e browser.server -e browser.os_major \
        -e browser.os_minor -e browser.comment -e browser.mb_server -e nbdgm.src.ip 2>/dev/null \
      | python3 -c '
import json, sys
rows = []
for line in sys.stdin:
    f = line.rstrip("\n").split("\t")
    rows.append({"frame": int(f[0]), "command": f[1], "server": f[2], "os_major": f[3],
                 "os_minor": f[4], "comment": f[5], "master_browser": f[6], "dgm_src_ip": f[7]})
print(json.dumps({sys.argv[1]: rows}))
' "${f#fixtures/}"
done | python3 scripts/merge-oracle.py >"$out"
echo "wrote $out"
