#!/usr/bin/env bash
# Writes fixtures/krb5.tshark.json: for the Kerberos capture and every
# capture under fixtures/lab and fixtures/real/pcaps, what tshark decodes of
# each AS-REQ, TGS-REQ, AS-REP, TGS-REP and KRB-ERROR (message type, client
# principal, realm, service principal, error code, request addresses), in
# frame order. tests/conformance.rs compares hostwatch's `krb5` events with
# it. Needs tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
out=fixtures/krb5.tshark.json
for f in fixtures/krb5/*.pcap* fixtures/lab/*.pcap* fixtures/real/pcaps/*; do
    # A message tshark finds malformed (a required field missing) is one its
    # receiver's decoder refuses: not in the oracle.
    tshark -r "$f" -Y "kerberos and not _ws.malformed and not _ws.expert.group == 0x07000000" -T json --no-duplicate-keys 2>/dev/null \
      | python3 -c '
import json, sys

def as_list(v):
    return v if isinstance(v, list) else [v]

def principal(el):
    # A PrincipalName element: its components, joined by "/".
    if not isinstance(el, dict):
        return None
    for key, tree in el.items():
        if key.endswith("_string_tree"):
            for k, v in tree.items():
                return "/".join(as_list(v))
    return None

def first(d, key):
    v = d.get(key)
    return as_list(v)[0] if v is not None else None

rows = []
for pkt in json.load(sys.stdin):
    layers = pkt["_source"]["layers"]
    frame = int(layers["frame"]["frame.number"])
    for krb in as_list(layers.get("kerberos", [])):
        for key, m in krb.items():
            if not key.endswith("_element") or not isinstance(m, dict):
                continue
            for msg in as_list(m):
                t = int(first(msg, "kerberos.msg_type") or 0)
                row = {"frame": frame, "msg_type": t}
                body = msg.get("kerberos.req_body_element", msg)
                ticket = msg.get("kerberos.ticket_element", {})
                row["cname"] = principal(body.get("kerberos.cname_element"))
                row["realm"] = first(body, "kerberos.crealm") or first(body, "kerberos.realm")
                row["sname"] = principal(body.get("kerberos.sname_element") or ticket.get("kerberos.sname_element"))
                row["error_code"] = first(msg, "kerberos.error_code")
                addrs = []
                for a in as_list(body.get("kerberos.addresses_tree", {}).get("kerberos.HostAddress_element", [])):
                    addrs.append([first(a, "kerberos.addr_type"),
                                  first(a, "kerberos.addr_nb") or first(a, "kerberos.addr_ip")])
                row["addresses"] = addrs
                if row["realm"] is None:
                    continue  # nothing decoded past the header
                rows.append({k: v for k, v in row.items() if v not in (None, [])})
print(json.dumps({sys.argv[1]: rows}))
' "${f#fixtures/}"
done | python3 scripts/merge-oracle.py >"$out"
echo "wrote $out"
