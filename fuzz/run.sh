#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60; 600 before a release).
#   fuzz/run.sh [SECONDS] [TARGET...]
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP lets the stable
# toolchain build them. Crashes land in fuzz/artifacts/TARGET/; add each as
# a regression test (and to fuzz/corpus/TARGET/seed-*).
set -euo pipefail
cd "$(dirname "$0")"
SECS=${1:-60}
shift || true
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(ntlm spnego_smb rdp tls ldap_rpc_proxy decode streams pcap_file resp nbns browser dns dhcp krb5 cldap)
export RUSTC_BOOTSTRAP=1
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t (${SECS}s)"
  cargo fuzz run --sanitizer none "$t" "corpus/$t" -- -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 2>&1 | tail -3
done
