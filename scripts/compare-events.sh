#!/usr/bin/env bash
# Runs two hostwatch binaries over every capture in fixtures/ (and the
# shared captures when present) and diffs their events, to show that a
# change of design kept the output. Left out of the comparison: `stats`
# events (counters are added over time), events of UDP conversations (the
# datagram path is newer than some binaries compared), and the old
# binary's host sightings (`inventory`, `host` in older builds) for a (name, address) pair the new one first saw
# over UDP (the inventory writes a pair once, at its first sighting).
# Fields added to existing events since the oldest build compared are
# removed before comparing (ADDED_FIELDS, space-separated JSON keys, with
# scalar or flat-array values), and so are events of types the old build
# did not have (NEW_TYPES, space-separated) and the alerts they carried.
# Events are compared as sorted lines: a replay writes its alerts and host
# sightings at the end, in packet order, so where a line stands is not the
# output's content.
#
#   scripts/compare-events.sh OLD_BINARY NEW_BINARY
#
# Exit status 0 when every capture gives the same events, 1 otherwise.
set -uo pipefail
old=${1:?usage: compare-events.sh OLD_BINARY NEW_BINARY}
new=${2:?usage: compare-events.sh OLD_BINARY NEW_BINARY}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mapfile -t captures < <(find fixtures ../shared/captures -type f \
    \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.pcap.gz' -o -name '*.pcapng.gz' \) 2>/dev/null | sort)
ADDED_FIELDS=${ADDED_FIELDS:-handshake_seen}
NEW_TYPES=${NEW_TYPES:-}
keep() {
    grep -v -e '"event_type":"stats"' -e '"proto":"UDP"' | python3 -c '
import re, sys
fields = sys.argv[1].split()
new_types = sys.argv[2].split()
for line in sys.stdin:
    if any(("\"%s\":{" % t) in line for t in new_types):
        continue
    for f in fields:
        line = re.sub(r",\"%s\":(true|false|null|-?[0-9.]+|\"[^\"]*\"|\[[^\]]*\])" % re.escape(f), "", line)
    sys.stdout.write(line)' "$ADDED_FIELDS" "$NEW_TYPES" || true
}
# Host pairs the new binary saw first over UDP, as NAME|IP lines.
udp_pairs() {
    python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    h = e.get("inventory") or e.get("host")
    if e.get("event_type") in ("inventory", "host") and isinstance(h, dict) and e.get("proto") == "UDP":
        print(h["name"].upper() + "|" + h["ip"])'
}
drop_pairs() {
    python3 -c '
import json, sys
pairs = set(open(sys.argv[1]).read().split())
for line in sys.stdin:
    e = json.loads(line)
    # Host sightings: `inventory` events (`host` in older builds, where
    # the top-level `host` is now the sensor name).
    h = e.get("inventory") or e.get("host")
    if isinstance(h, dict) and (h["name"].upper() + "|" + h["ip"]) in pairs:
        continue
    sys.stdout.write(line)' "$1"
}
same=0
differ=0
for c in "${captures[@]}"; do
    "$new" -q --workers 1 -r "$c" 2>/dev/null >"$work/new.all"
    udp_pairs <"$work/new.all" >"$work/pairs"
    keep <"$work/new.all" | sort >"$work/new"
    "$old" -q --workers 1 -r "$c" 2>/dev/null | keep | drop_pairs "$work/pairs" | sort >"$work/old"
    if cmp -s "$work/old" "$work/new"; then
        same=$((same + 1))
    else
        differ=$((differ + 1))
        echo "== $c"
        diff "$work/old" "$work/new" | head -20
    fi
done
echo "captures: ${#captures[@]}, same events: $same, different: $differ"
[ "$differ" -eq 0 ]
