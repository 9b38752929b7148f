"""Writes the threat-intel fixtures under fixtures/intel/ with the reference
libraries of their formats, so that hostwatch's readers are tested on what
those libraries really write, not on hand-typed JSON:

  stix-bundle.json   STIX 2.1 bundle (OASIS's stix2 library)
  misp-event.json    MISP event (CIRCL's PyMISP)
  warninglist-rfc1918.json, warninglist-microsoft.json
                     MISP warninglists as published (PyPI's pymispwarninglists)
  misp-feed/         a MISP feed: manifest.json and one file per event
                     (PyMISP's feed output)

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
from pymisp import MISPOrganisation  # noqa: E402

# A feed of two events, as MISP's feed generator writes one.
feed = OUT / "misp-feed"
feed.mkdir(exist_ok=True)
org = MISPOrganisation()
org.name = "Lab CERT"
org.uuid = "5f0e1b2c-0000-4000-8000-0000000000aa"
manifest = {}
for n, (info, host) in enumerate([("Qilin affiliate VMs", "WIN-FEED00VM001"),
                                  ("LockBit affiliate VMs", "WIN-FEED00VM002")]):
    e = MISPEvent()
    e.uuid = f"5f0e1b2c-0000-4000-8000-0000000001{n:02d}"
    e.info = info
    e.date = "2026-11-01"
    e.Orgc = org
    e.threat_level_id = 1
    a = e.add_attribute("hostname", host, to_ids=True)
    a.uuid = f"5f0e1b2c-0000-4000-8000-0000000002{n:02d}"
    a.timestamp = 1793491200
    e.timestamp = 1793491200
    e.publish_timestamp = 1793491200
    with_meta = e.to_feed(with_meta=True)
    manifest.update(with_meta["Event"].pop("_manifest"))
    with_meta["Event"].pop("_hashes", None)
    (feed / f"{e.uuid}.json").write_text(json.dumps(with_meta, indent=1, sort_keys=True) + "\n")
(feed / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")

import pymispwarninglists  # noqa: E402  (only needed here)

lists = pathlib.Path(pymispwarninglists.__file__).parent / "data" / "misp-warninglists" / "lists"
for name in ["rfc1918", "microsoft"]:
    (OUT / f"warninglist-{name}.json").write_text((lists / name / "list.json").read_text())
print("wrote", OUT)
