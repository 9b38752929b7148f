#!/usr/bin/env bash
# Writes fixtures/cldap.tshark.json: for the CLDAP capture and every capture
# under fixtures/lab and fixtures/real/pcaps, what tshark decodes of each
# netlogon ping (message id, filter attributes and values) and answer
# (opcode, DC names, the account repeated), in frame order.
# tests/conformance.rs compares hostwatch's `cldap` events with it.
# Needs tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
out=fixtures/cldap.tshark.json
for f in fixtures/cldap/*.pcap* fixtures/lab/*.pcap* fixtures/real/pcaps/*; do
    tshark -r "$f" -Y "cldap" -T fields -E occurrence=a -E 'aggregator=|' \
        -e frame.number -e ldap.messageID -e ldap.protocolOp -e ldap.attributeDesc \
        -e ldap.assertionValue -e mscldap.netlogon.opcode -e mscldap.forest -e mscldap.domain \
        -e mscldap.hostname -e mscldap.nb_domain -e mscldap.nb_hostname -e mscldap.username \
        -e mscldap.sitename -e mscldap.clientsitename -e mscldap.ntver.flags 2>/dev/null \
      | python3 -c '
import json, sys
keys = ["frame", "message_id", "op", "attributes", "values", "opcode", "forest", "domain",
        "hostname", "nb_domain", "nb_hostname", "username", "site", "client_site", "ntver"]
rows = []
for line in sys.stdin:
    f = line.rstrip("\n").split("\t")
    r = dict(zip(keys, f))
    row = {"frame": int(r["frame"]), "message_id": int(r["message_id"].split("|")[0]),
           "op": int(r["op"].split("|")[0])}
    if r.get("attributes"):
        # tshark dissects the NtVer value as flags (mscldap.ntver.flags),
        # not as an assertion value.
        attrs = [a for a in r["attributes"].split("|") if a != "NtVer"]
        row["filter"] = dict(zip(attrs, r["values"].split("|") if r.get("values") else []))
    for k in keys[5:]:
        if r.get(k):
            row[k] = r[k]
    rows.append(row)
print(json.dumps({sys.argv[1]: rows}))
' "${f#fixtures/}"
done | python3 scripts/merge-oracle.py >"$out"
echo "wrote $out"
