#!/usr/bin/env bash
# hostwatch's whole-process benchmark (method: shared docs/benchmarks.md).
#
#   bench/run.sh [SIZE_MB] [RUNS]
#
# Generates a deterministic capture of SIZE_MB (default 2000) under
# bench/out/, warms the page cache, then alternates the contenders RUNS
# times (default 7, after one warm-up): a raw read loop (no libpcap: the
# pcap records walked through a 1 MiB buffer, the floor of any reader), the
# bare libpcap read loop (the ceiling: opened as hostwatch opens files, with
# a 1 MiB stdio buffer), the
# same loop over pcap_open_offline as is (stdio's 4 KiB buffer), hostwatch
# with 1 and 2 workers, Suricata in single-thread mode with only its RDP,
# SMB, TLS and HTTP loggers (bench/suricata.yaml; skipped when suricata is
# not installed: on Debian 12 it is in bookworm-backports), and tshark
# extracting the same NTLM/RDP fields. Prints the median and min-max MB/s,
# packets/s, peak RSS and the ratios, and checks that hostwatch found every
# planted handshake.
#
# To compare two builds: BASELINE=/path/to/older/hostwatch adds it with 1
# and 2 workers (baseline-w1, baseline-w2); SKIP_TSHARK=1 leaves tshark out.
# KIND=handshakes uses the mix without bulk (every connection an RDP, NTLM
# or TLS handshake or a short exchange: setting connections up is the work).
# KIND=bench-udp uses the same mix with UDP noise between the bursts (DNS
# and QUIC-like datagrams, about a fifth of the packets), which hostwatch
# drops at the capture thread.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-2000}
RUNS=${2:-7}
OUT=bench/out
KIND=${KIND:-bench}
CAP=$OUT/${KIND/bench/mix}-${SIZE}mb.pcap
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
[ -f "$CAP" ] || $HW generate --kind "$KIND" --size-mb "$SIZE" -o "$CAP"
MANIFEST=${CAP%.pcap}.manifest.json
BYTES=$(stat -c %s "$CAP")
PACKETS=$(python3 -c "import json;print(json.load(open('$MANIFEST'))['packets'])")
cat "$CAP" > /dev/null

# One timed run: prints "seconds max_rss_kb" (wall clock to the
# nanosecond: /usr/bin/time's %e has 10 ms steps, 3% of a 0.3 s run).
timed() {
  local t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$OUT/time.txt" "$@" > "$OUT/last.out" 2> "$OUT/last.err" || { cat "$OUT/last.err" >&2; exit 1; }
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000 ))e-6 $(cat "$OUT/time.txt")"
}

declare -A CMD
CMD[raw]="$CEIL --raw $CAP"
CMD[ceiling]="$CEIL $CAP"
CMD[libpcap-default]="$CEIL --default $CAP"
CMD[hostwatch-w1]="$HW -q --workers 1 -r $CAP -o $OUT/events-w1.json"
CMD[hostwatch-w2]="$HW -q -r $CAP -o $OUT/events-w2.json"
CMD[tshark]="tshark -n -r $CAP -Y ntlmssp||rdp -T fields -e frame.number -e ntlmssp.auth.hostname -e ntlmssp.auth.username -e ntlmssp.auth.domain -e ntlmssp.challenge.target_name -e rdp.client.name -e rdp.rt_cookie"
CMD[suricata]="suricata -c bench/suricata.yaml --runmode single -k none -S /dev/null -r $CAP -l $OUT/suricata"
ORDER=(raw ceiling libpcap-default hostwatch-w1 hostwatch-w2)
if [ -n "${BASELINE:-}" ]; then
  CMD[baseline-w1]="$BASELINE -q --workers 1 -r $CAP -o $OUT/baseline-w1.json"
  CMD[baseline-w2]="$BASELINE -q -r $CAP -o $OUT/baseline-w2.json"
  ORDER+=(baseline-w1 baseline-w2)
fi
if command -v suricata >/dev/null 2>&1; then
  mkdir -p "$OUT/suricata"
  ORDER+=(suricata)
else
  echo "suricata not installed: skipped (Debian 12: apt-get install -t bookworm-backports suricata)" >&2
fi
[ -n "${SKIP_TSHARK:-}" ] || ORDER+=(tshark)
declare -A SECS RSS

rm -f "$OUT"/events-w*.json "$OUT"/baseline-w*.json
for name in "${ORDER[@]}"; do timed ${CMD[$name]} > /dev/null; done   # warm-up
for i in $(seq "$RUNS"); do
  rm -f "$OUT"/events-w*.json "$OUT"/baseline-w*.json
  for name in "${ORDER[@]}"; do
    read -r s m < <(timed ${CMD[$name]})
    SECS[$name]+="$s "; RSS[$name]="$m"
  done
done

# Correctness: every planted handshake reported.
python3 - "$MANIFEST" "$OUT"/events-w1.json "$OUT"/events-w2.json ${BASELINE:+"$OUT"/baseline-w1.json "$OUT"/baseline-w2.json} <<'PY'
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
suri = 'suricata' in med
tsh = 'tshark' in med
print(f"{'contender':<16} {'MB/s':>18} {'packets/s':>12} {'peak RSS':>10} {'vs raw':>7} {'vs ceiling':>11} {'vs default':>11}" + (f" {'vs tshark':>10}" if tsh else "") + (f" {'vs suricata':>12}" if suri else ""))
for k in secs:
    lo, hi = size / max(secs[k]) / 1e6, size / min(secs[k]) / 1e6
    m = med[k]
    line = f"{k:<16} {size/m/1e6:8.0f} ({lo:.0f}-{hi:.0f}) {packets/m:12.0f} {rss[k]/1024:8.1f}MB {med['raw']/m:6.2f}x {med['ceiling']/m:10.2f}x {med['libpcap-default']/m:10.2f}x"
    if tsh:
        line += f" {med['tshark']/m:9.1f}x"
    if suri:
        line += f" {med['suricata']/m:11.2f}x"
    print(line)
PY
if [ -f "$OUT/suricata/eve.json" ]; then
  python3 - "$OUT/suricata/eve.json" <<'PY'
import json, sys
n = {}
ntlm = 0
for l in open(sys.argv[1]):
    e = json.loads(l)
    n[e["event_type"]] = n.get(e["event_type"], 0) + 1
    ntlm += "ntlmssp" in e.get("smb", {})
print(f"suricata events: {dict(sorted(n.items()))}, SMB events with NTLMSSP: {ntlm}")
PY
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%Y-%m-%d)"
