"""Writes the threat-intel fixtures under fixtures/intel/ with the reference
libraries of their formats, so that hostwatch's readers are tested on what
those libraries really write, not on hand-typed JSON:

  stix-bundle.json   STIX 2.1 bundle (OASIS's stix2 library)
  misp-event.json    MISP event (CIRCL's PyMISP)
  warninglist-rfc1918.json, warninglist-microsoft.json
                     MISP warninglists as published (PyPI's pymispwarninglists)

and, for the formats that have no library, files in their documented
layouts: zeek.intel (Zeek's Intel framework input), drop.txt and
drop_v4.json (Spamhaus DROP, text and JSON lines), asndrop.json (Spamhaus
ASN-DROP), intel.csv.

    pip install stix2 pymisp pymispwarninglists
    python3 scripts/make-intel-fixtures.py

Identifiers and times are fixed, so the files are the same at every run.
"""
import json
import pathlib

import stix2
from pymisp import MISPEvent

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "intel"
OUT.mkdir(parents=True, exist_ok=True)
CREATED = "2026-11-01T00:00:00.000Z"


def indicator(n, name, pattern, **kw):
    return stix2.Indicator(
        id=f"indicator--00000000-0000-4000-8000-{n:012d}",
        created=CREATED,
        modified=CREATED,
        name=name,
        pattern=pattern,
        pattern_type="stix",
        valid_from=CREATED,
        **kw,
    )


objects = [
    indicator(1, "Qilin operator VM", "[domain-name:value = 'WIN-QILIN0VM01']", labels=["ransomware"]),
    indicator(2, "Bulletproof range", "[ipv4-addr:value = '203.0.113.0/24']"),
    indicator(3, "Operator host v6", "[ipv6-addr:value = '2001:db8:66::/48']"),
    indicator(4, "Operator relay", "[ipv4-addr:value = '198.51.100.77']"),
    indicator(5, "Hoster AS", "[autonomous-system:number = 64500]"),
    indicator(6, "Revoked name", "[domain-name:value = 'WIN-REVOKED0001']", revoked=True),
    indicator(7, "Expired name", "[domain-name:value = 'WIN-EXPIRED0001']",
              valid_until="2026-11-02T00:00:00.000Z"),
    indicator(8, "Either name", "[domain-name:value = 'WIN-A'] OR [domain-name:value = 'WIN-B']"),
    stix2.Malware(id="malware--00000000-0000-4000-8000-000000000009", created=CREATED,
                  modified=CREATED, name="Qilin", is_family=True),
]
bundle = stix2.Bundle(objects=objects, id="bundle--00000000-0000-4000-8000-000000000000",
                      allow_custom=False)
(OUT / "stix-bundle.json").write_text(bundle.serialize(pretty=True) + "\n")

event = MISPEvent()
event.uuid = "5f0e1b2c-0000-4000-8000-000000000001"
event.info = "WantToCry operators on rented VMmanager VMs"
event.date = "2026-11-01"
event.add_tag("tlp:amber")
event.add_tag('misp-galaxy:ransomware="WantToCry"')
for n, (kind, value, to_ids) in enumerate([
    ("hostname", "WIN-WTC0000VM01", True),
    ("domain", "vmrent.bulletproof.example", True),
    ("ip-src", "198.51.100.23", True),
    ("ip-dst", "192.0.2.44", False),
    ("AS", "64501", True),
    ("comment", "seen in three intrusions", False),
]):
    a = event.add_attribute(kind, value, to_ids=to_ids)
    a.uuid = f"5f0e1b2c-0000-4000-8000-{n + 100:012d}"
    a.timestamp = 1793491200
event.timestamp = 1793491200
event.publish_timestamp = 1793491200
text = event.to_json(indent=1, sort_keys=True)
(OUT / "misp-event.json").write_text(text + "\n")
(OUT / "zeek.intel").write_text(
    "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\n"
    "WIN-ZEEK000VM1\tIntel::DOMAIN\tlab-feed\toperator VM\n"
    "vmrent.bulletproof.example\tIntel::DOMAIN\tlab-feed\t-\n"
    "198.51.100.0/25\tIntel::SUBNET\tlab-feed\trelay range\n"
    "192.0.2.99\tIntel::ADDR\tlab-feed\trelay\n"
    "ops@bulletproof.example\tIntel::EMAIL\tlab-feed\tcontact\n"
)
(OUT / "drop.txt").write_text(
    "; Spamhaus DROP List 2026/11/29 - (c) 2026 The Spamhaus Project SLU\n"
    "; https://www.spamhaus.org/drop/drop.txt\n"
    "203.0.113.128/25 ; SBL000001\n"
    "2001:db8:bad::/48 ; SBL000002\n"
)
(OUT / "drop_v4.json").write_text(
    json.dumps({"cidr": "203.0.113.128/25", "sblid": "SBL000001", "rir": "ripencc"}) + "\n"
    + json.dumps({"type": "metadata", "timestamp": 1793491200, "size": 1, "records": 1}) + "\n"
)
(OUT / "asndrop.json").write_text(
    json.dumps({"asn": 64500, "rir": "ripencc", "domain": "bulletproof.example", "cc": "ZZ",
                "asname": "BULLETPROOF-AS"}) + "\n"
    + json.dumps({"type": "metadata", "timestamp": 1793491200, "size": 1, "records": 1}) + "\n"
)
(OUT / "intel.csv").write_text(
    "value,type,note\n"
    "WIN-CSV0000VM1,hostname,from a partner feed\n"
    "203.0.113.9,ip,\n"
    "ops@bulletproof.example,email,not a host\n"
)
import pymispwarninglists  # noqa: E402  (only needed here)

lists = pathlib.Path(pymispwarninglists.__file__).parent / "data" / "misp-warninglists" / "lists"
for name in ["rfc1918", "microsoft"]:
    (OUT / f"warninglist-{name}.json").write_text((lists / name / "list.json").read_text())
print("wrote", OUT)
