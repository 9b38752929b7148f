#!/usr/bin/env bash
# Builds fixtures/unit/mixed-linktypes.pcapng: a pcapng file whose two
# interfaces differ in link type, as mergecap writes them when it merges an
# Ethernet capture with a Linux cooked one. The Ethernet side is the curl
# HTTP NTLM lab capture; the cooked side is the demo capture with each Ethernet header
# rewritten as a Linux cooked (SLL) header by Python, byte for byte.
# Needs python3 and mergecap (Debian: wireshark-common).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - fixtures/demo/demo.pcap "$tmp/demo-sll.pcap" <<'PY'
import struct, sys
src, dst = sys.argv[1], sys.argv[2]
data = open(src, 'rb').read()
magic, vmaj, vmin, zone, sig, snap, lt = struct.unpack('<IHHiIII', data[:24])
assert magic == 0xa1b2c3d4 and lt == 1, 'a little-endian Ethernet pcap'
out = [struct.pack('<IHHiIII', magic, vmaj, vmin, zone, sig, snap, 113)]
off = 24
while off < len(data):
    sec, usec, incl, orig = struct.unpack('<IIII', data[off:off + 16])
    frame = data[off + 16:off + 16 + incl]
    off += 16 + incl
    # SLL: packet type (0: to us), ARPHRD_ETHER, address length, the
    # source MAC padded to 8 bytes, then the Ethernet type.
    sll = struct.pack('>HHH', 0, 1, 6) + frame[6:12] + b'\0\0' + frame[12:14]
    body = sll + frame[14:]
    out.append(struct.pack('<IIII', sec, usec, len(body), orig + 2) + body)
open(dst, 'wb').write(b''.join(out))
PY
mergecap -F pcapng -w fixtures/unit/mixed-linktypes.pcapng \
  fixtures/lab/http-ntlm-curl-good.pcap "$tmp/demo-sll.pcap"
echo "wrote fixtures/unit/mixed-linktypes.pcapng"
