#!/usr/bin/env bash
# Writes what tshark decodes of every NetBIOS name service message of a
# capture, as JSON (the oracle tests/nbns.rs checks hostwatch against).
#   scripts/tshark-nbns.sh CAPTURE > EXPECTED.json
set -euo pipefail
tshark -r "${1:?usage: tshark-nbns.sh CAPTURE}" -Y nbns -T json \
    -e frame.number -e ip.src -e udp.srcport -e ip.dst -e udp.dstport \
    -e nbns.id -e nbns.flags.response -e nbns.flags.opcode -e nbns.flags.broadcast \
    -e nbns.flags.rcode -e nbns.count.queries -e nbns.name -e nbns.type -e nbns.addr \
    -e nbns.nb_flags.group -e nbns.ttl -e nbns.netbios_name -e nbns.name_flags.group \
    -e nbns.unit_id
