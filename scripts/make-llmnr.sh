#!/usr/bin/env bash
# Writes fixtures/llmnr/generated.pcap: LLMNR (RFC 4795) messages built byte
# by byte, since no LLMNR responder runs in a network namespace here
# (systemd-resolved, the usual one on Linux, needs systemd and D-Bus): a
# multicast query for WIN-LIVFRVQFMKO, the real host's answer with its own
# address, a second host's answer claiming that name for the first host's
# address (what a poisoning tool sends), and an AAAA answer. Then the
# tshark oracle (scripts/tshark-mdns.sh), which checks the bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - fixtures/llmnr/generated.pcap <<'PY'
import socket, struct, sys

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

def name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".")) + b"\0"

def dns(txid, flags, qname, qtype, answers):
    m = struct.pack("!HHHHHH", txid, flags, 1, len(answers), 0, 0)
    m += name(qname) + struct.pack("!HH", qtype, 1)
    for rtype, addr in answers:
        rdata = socket.inet_pton(socket.AF_INET if rtype == 1 else socket.AF_INET6, addr)
        m += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 30, len(rdata)) + rdata
    return m

def frame(src, dst, sport, dport, payload):
    udp_len = 8 + len(payload)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    udp = udp[:6] + struct.pack("!H", csum(pseudo + udp)) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 1, 0, 1, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\x01\x00\x5e\x00\x00\xfc" + b"\x02\x00\x00\x00\x00\x05" + b"\x08\x00" + ip + udp

msgs = [
    ("10.0.0.5", "224.0.0.252", 50001, 5355, dns(0x1001, 0x0000, "WIN-LIVFRVQFMKO", 1, [])),
    ("10.0.0.7", "10.0.0.5", 5355, 50001, dns(0x1001, 0x8000, "WIN-LIVFRVQFMKO", 1, [(1, "10.0.0.7")])),
    ("10.0.0.66", "10.0.0.5", 5355, 50001, dns(0x1001, 0x8000, "WIN-LIVFRVQFMKO", 1, [(1, "10.0.0.9")])),
    ("10.0.0.5", "224.0.0.252", 50002, 5355, dns(0x1002, 0x0000, "WIN-LIVFRVQFMKO", 28, [])),
    ("10.0.0.7", "10.0.0.5", 5355, 50002, dns(0x1002, 0x8000, "WIN-LIVFRVQFMKO", 28, [(28, "fe80::7")])),
]
out = [struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1)]
for i, (s, d, sp, dp, p) in enumerate(msgs):
    f = frame(s, d, sp, dp, p)
    out.append(struct.pack("<IIII", 1764400000 + i, 0, len(f), len(f)) + f)
open(sys.argv[1], "wb").write(b"".join(out))
PY
scripts/tshark-mdns.sh
