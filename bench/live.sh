#!/usr/bin/env bash
# hostwatch's live benchmark: the benchmark mix sent by tcpreplay into a
# veth pair in a network namespace of its own, captured on the other end by
# hostwatch with one capture socket (--workers 1) and with a fanout group of two
# (--workers 2), and by Suricata's af-packet `workers` runmode with one and two
# threads (bench/suricata-live.yaml; skipped when suricata is not
# installed: on Debian 12 it is in bookworm-backports), each with a 64 MiB
# ring per socket. Needs root (namespaces, raw sockets).
#
#   bench/live.sh [SIZE_MB]        (400 MB; RATES="200 800 topspeed" by default, Mbit/s)
#
# SENSORS="hostwatch-1 suricata-1" runs only those; BASELINE=path/to/hostwatch
# adds another build (baseline-1, baseline-2) to the same rounds.
#
# Then the worst case at top speed: a million SYNs (60-byte frames, every
# one a new connection; `hostwatch generate --kind synflood`).
#
# For every rate and sensor it prints the packets tcpreplay sent, the
# packets the kernel handed to the sensor's sockets and those it dropped,
# what the sensor found (RDP handshakes and NTLM exchanges, of those
# planted), and the CPU seconds the sensor used (user + system, from
# wait4) per million packets received.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-400}
OUT=bench/out
CAP=$OUT/mix-${SIZE}mb.pcap
mkdir -p "$OUT"
need=()
command -v tcpreplay >/dev/null 2>&1 || need+=(tcpreplay)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --quiet --bin hostwatch
HW=target/release/hostwatch
[ -f "$CAP" ] || $HW generate --kind bench --size-mb "$SIZE" -o "$CAP"
python3 bench/live.py "$HW" "$CAP" ${RATES:-200 800 topspeed}
# The worst case: minimum-size frames, every one a new connection.
FLOOD=$OUT/synflood.pcap
[ -f "$FLOOD" ] || $HW generate --kind synflood -o "$FLOOD"
python3 bench/live.py "$HW" "$FLOOD" topspeed
