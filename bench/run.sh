#!/usr/bin/env bash
# hostwatch's whole-process benchmark (method: shared docs/benchmarks.md).
#
#   bench/run.sh [SIZE_MB] [RUNS]
#
# Generates a deterministic capture of SIZE_MB (default 2000) under
# bench/out/, warms the page cache, then alternates the contenders RUNS
# times (default 5, after one warm-up): the bare libpcap read loop (the
# ceiling), hostwatch with 1 worker and with the default workers, and
# tshark extracting the same NTLM/RDP fields. Prints the median and
# min-max MB/s, packets/s, peak RSS and the ratios, and checks that
# hostwatch found every planted handshake.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-2000}
RUNS=${2:-5}
OUT=bench/out
CAP=$OUT/mix-${SIZE}mb.pcap
mkdir -p "$OUT"

need=()
command -v tshark >/dev/null 2>&1 || need+=(tshark)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --release --quiet --bin hostwatch --example pcap_ceiling
HW=target/release/hostwatch
CEIL=target/release/examples/pcap_ceiling
[ -f "$CAP" ] || $HW generate --kind bench --size-mb "$SIZE" -o "$CAP"
MANIFEST=${CAP%.pcap}.manifest.json
BYTES=$(stat -c %s "$CAP")
PACKETS=$(python3 -c "import json;print(json.load(open('$MANIFEST'))['packets'])")
cat "$CAP" > /dev/null

# One timed run: prints "seconds max_rss_kb".
timed() {
  /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$@" > "$OUT/last.out" 2> "$OUT/last.err" || { cat "$OUT/last.err" >&2; exit 1; }
  cat "$OUT/time.txt"
}

declare -A CMD
CMD[ceiling]="$CEIL $CAP"
CMD[hostwatch-w1]="$HW -q -w 1 -r $CAP -o $OUT/events-w1.json"
CMD[hostwatch-w2]="$HW -q -r $CAP -o $OUT/events-w2.json"
CMD[tshark]="tshark -n -r $CAP -Y ntlmssp||rdp -T fields -e frame.number -e ntlmssp.auth.hostname -e ntlmssp.auth.username -e ntlmssp.auth.domain -e ntlmssp.challenge.target_name -e rdp.client.name -e rdp.rt_cookie"
ORDER=(ceiling hostwatch-w1 hostwatch-w2 tshark)
declare -A SECS RSS

rm -f "$OUT"/events-w*.json
for name in "${ORDER[@]}"; do timed ${CMD[$name]} > /dev/null; done   # warm-up
for i in $(seq "$RUNS"); do
  rm -f "$OUT"/events-w*.json
  for name in "${ORDER[@]}"; do
    read -r s m < <(timed ${CMD[$name]})
    SECS[$name]+="$s "; RSS[$name]="$m"
  done
done

# Correctness: every planted handshake reported.
python3 - "$MANIFEST" "$OUT/events-w1.json" "$OUT/events-w2.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
for path in sys.argv[2:]:
    ev = [json.loads(l) for l in open(path)]
    n = lambda t: sum(1 for e in ev if e["event_type"] == t)
    alerts = sum(1 for e in ev if e["event_type"] == "alert" and e["alert"]["list"] == "vmmanager-defaults")
    got = (n("rdp"), n("ntlm"), alerts)
    want = (m["rdp_handshakes"], m["ntlm_exchanges"], m["vmmanager_alerts"])
    status = "ok" if got == want else "MISMATCH"
    print(f"check {path}: rdp/ntlm/vmmanager alerts {got}, planted {want}: {status}")
    if got != want:
        sys.exit(1)
PY

python3 - "$BYTES" "$PACKETS" "$RUNS" <<PY
import statistics, sys
size, packets, runs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
secs = {$(for n in "${ORDER[@]}"; do echo "'$n': [float(x) for x in '${SECS[$n]}'.split()],"; done)}
rss = {$(for n in "${ORDER[@]}"; do echo "'$n': ${RSS[$n]},"; done)}
med = {k: statistics.median(v) for k, v in secs.items()}
print(f"capture: {size/1e6:.0f} MB, {packets} packets; {runs} alternating runs, median (min-max)")
print(f"{'contender':<14} {'MB/s':>18} {'packets/s':>12} {'peak RSS':>10} {'vs ceiling':>11} {'vs tshark':>10}")
for k in secs:
    lo, hi = size / max(secs[k]) / 1e6, size / min(secs[k]) / 1e6
    m = med[k]
    print(f"{k:<14} {size/m/1e6:8.0f} ({lo:.0f}-{hi:.0f}) {packets/m:12.0f} {rss[k]/1024:8.1f}MB {med['ceiling']/m:10.2f}x {med['tshark']/m:9.1f}x")
PY
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%Y-%m-%d)"
