#!/usr/bin/env python3
"""Shows that the move to Suricata's EVE names kept every value.

Runs two hostwatch binaries (the build before the move and after) over
every capture in fixtures/, rewrites the old build's events into the new
layout (keys renamed, values re-spelled in EVE's vocabulary, each rule
listed below), and compares, per capture and event type, the multiset of
(path, value) pairs the old events carried with the new events' pairs at
the same paths. New keys (EVE's additions such as app_proto, the numbers
kept beside EVE's strings, the smb logon events) are not compared; every
old value must be found again.

    scripts/compare-eve-keys.py OLD_BINARY NEW_BINARY

Exit status 0 when every old value is in the new output.
"""
import collections
import glob
import json
import os
import re
import subprocess
import sys

# Old dotted path -> new dotted path (leaves; arrays flatten to their path).
MOVED = {
    "sensor_name": "host",
    "rdp.client.name": "rdp.client.client_name",
    "rdp.client.name_hex": "rdp.client.client_name_hex",
    "rdp.client.channels": "rdp.channels",
    "rdp.client.dig_product_id": "rdp.client.id",
    "rdp.client.build": "rdp.client.build_number",
    "rdp.client.keyboard_layout": "rdp.client.keyboard_layout_id",
    "rdp.client.version": "rdp.client.version_code",
    "rdp.server.version": "rdp.server.version_code",
    "smb.tree.path": "smb.share|smb.named_pipe",
    "smb.status": "smb.status_code",
    "stats.packets": "stats.decoder.pkts",
    "stats.bytes": "stats.decoder.bytes",
    "stats.capture.kernel_received": "stats.capture.kernel_packets",
    "stats.capture.interface_drops": "stats.capture.kernel_ifdrops",
    "krb5.encryption": "krb5.ticket_encryption",
    "krb5.weak_encryption": "krb5.ticket_weak_encryption",
}
# Certificate fields, wherever a certificate stands.
CERT = {
    "issuer": "issuerdn",
    "san_dns": "subjectaltname",
    "not_before": "notbefore",
    "not_after": "notafter",
    "sha1": "fingerprint",
}
KEYBOARDS = {1: "xt", 2: "ico", 3: "at", 4: "enhanced", 5: "1050", 6: "9140", 7: "jp"}
TLS_VERSIONS = {"TLSv1.0": "TLSv1", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2", "TLSv1.3": "TLS 1.3"}
ETYPES = {
    "des-cbc-crc": "DES_CBC_CRC", "des-cbc-md5": "DES_CBC_MD5",
    "aes128-cts-hmac-sha1-96": "AES128_CTS_HMAC_SHA1_96",
    "aes256-cts-hmac-sha1-96": "AES256_CTS_HMAC_SHA1_96",
    "aes128-cts-hmac-sha256-128": "AES128_CTS_HMAC_SHA256_128",
    "aes256-cts-hmac-sha384-192": "AES256_CTS_HMAC_SHA384_192",
    "rc4-hmac": "RC4_HMAC", "rc4-hmac-exp": "RC4_HMAC_EXP",
}


def flatten(v, path=""):
    if isinstance(v, dict):
        for k, x in v.items():
            yield from flatten(x, f"{path}.{k}" if path else k)
    elif isinstance(v, list):
        for x in v:
            yield from flatten(x, path)
    else:
        yield path, v


def rename(ev_type, path, value, event):
    """The old (path, value) in the new layout; None when not comparable."""
    if path == "event_type":
        return ("event_type", "inventory" if value == "host" else value)
    if path == "timestamp":
        return path, re.sub(r"Z$", "+0000", value)
    if path.startswith("host.") and ev_type == "host":
        path = "inventory." + path[5:]
        return path, evidence(value) if path == "inventory.evidence" else value
    if path in ("rdp.client.version", "rdp.server.version"):
        low, high = (int(x) for x in value.split("."))
        return MOVED[path], "0x%08x" % (high << 16 | low)
    if path in ("tls.version", "rdp.tls_version"):
        return path, TLS_VERSIONS.get(value, value)
    if path == "smb.status":
        return "smb.status_code", hex(int(value, 16))
    if path in ("smb.command", "smb.dialect"):
        return None  # re-spelled from the negotiation: see the note
    if path == "smb.tree.server" or path == "smb.tree.share":
        return path, value
    if path.startswith("krb5.encryption"):
        return "krb5.ticket_encryption", ETYPES.get(value, value)
    if path == "krb5.realm" and event.get("krb5", {}).get("msg_type") == "KRB_ERROR":
        return "krb5.error_realm", value
    if path.split(".")[0] in ("mdns", "llmnr"):
        head, _, rest = path.partition(".")
        rest = {
            "transaction_id": "id",
            "queries.name": "queries.rrname",
            "queries.type": "queries.rrtype",
            "answers.name": "*.rrname",
            "answers.address": "*.address",
            "answers.ttl": "*.ttl",
            "response": "type",
        }.get(rest, rest)
        if rest == "queries.rrtype":
            value = value.lower() if value != "other" else value
        if rest == "type":
            value = "response" if value else "request"
        return f"{head}.{rest}", value
    for old, new in CERT.items():
        if path.endswith("." + old) and "certificate" in path:
            path = path[: -len(old)] + new
            if old == "sha1":
                value = ":".join(value[i:i + 2] for i in range(0, len(value), 2))
            if old.startswith("not_"):
                value = re.sub(r"Z$", "", value)
    if path.endswith("certificate.serial"):
        value = value.upper()
    if path.startswith("tls.certificate."):
        path = "tls." + path[len("tls.certificate."):]
    if path.startswith("tls.client_certificate."):
        path = "tls.client." + path[len("tls.client_certificate."):]
    if path in ("alert.evidence", "inventory.evidence", "host.evidence"):
        value = evidence(value)
    if path == "rdp.client.keyboard_type":
        value = KEYBOARDS.get(value, str(value))
    return MOVED.get(path, path), value


def evidence(v):
    """An alert's evidence path, renamed as its field was."""
    for old, new in [
        ("rdp.client.name", "rdp.client.client_name"),
        ("tls.certificate.san_dns", "tls.subjectaltname"),
        ("tls.certificate.subject_cn", "tls.subject_cn"),
        ("tls.client_certificate.", "tls.client."),
        (".san_dns", ".subjectaltname"),
        ("queries.name", "queries.rrname"),
        ("answers.name", "*.rrname"),
    ]:
        if v == old or v.startswith(old) or v.endswith(old):
            v = v.replace(old, new)
    return v


def events(binary, capture):
    out = subprocess.run([binary, "-q", "--workers", "1", "--sensor-name", "", "-r", capture],
                         capture_output=True, text=True).stdout
    return [json.loads(l) for l in out.splitlines()]


def pairs_new(e):
    t = e["event_type"]
    out = collections.Counter()
    for p, v in flatten(e):
        if p.split(".")[0] in ("mdns", "llmnr"):
            head, _, rest = p.partition(".")
            for sec in ("answers.", "authorities.", "additionals."):
                if rest.startswith(sec):
                    rest = "*." + rest[len(sec):]
            if rest in ("*.a", "*.aaaa"):
                rest = "*.address"
            p = f"{head}.{rest}"
        if p in ("alert.evidence", "inventory.evidence"):
            v = re.sub(r"\.(answers|authorities|additionals)\.rrname$", ".*.rrname", v)
        if p in ("smb.share", "smb.named_pipe"):
            p = "smb.share|smb.named_pipe"
        out[(p, json.dumps(v))] += 1
    return out


def main():
    old, new = sys.argv[1], sys.argv[2]
    os.chdir(os.path.join(os.path.dirname(__file__), ".."))
    caps = sorted(c for c in glob.glob("fixtures/**/*", recursive=True)
                  if re.search(r"\.pcap(ng)?(\.gz)?$", c))
    total = missing = 0
    for cap in caps:
        want = collections.Counter()
        for e in events(old, cap):
            if e["event_type"] == "stats":
                continue
            for p, v in flatten(e):
                r = rename(e["event_type"], p, v, e)
                if r is not None:
                    want[(r[0], json.dumps(r[1]))] += 1
        got = collections.Counter()
        for e in events(new, cap):
            if e["event_type"] != "stats":
                got += pairs_new(e)
        lost = want - got
        total += sum(want.values())
        if lost:
            missing += sum(lost.values())
            print(f"== {cap}: {sum(lost.values())} old values not found")
            for (p, v), n in list(lost.items())[:8]:
                print(f"   {p} = {v} (x{n})")
    print(f"captures: {len(caps)}, old values compared: {total}, not found in the new output: {missing}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
