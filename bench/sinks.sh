#!/usr/bin/env bash
# Throughput of the Redis output (events/s delivered per mode, with and
# without pipelining) against a redis-server started on a free loopback
# port for the run.
#
#   bench/sinks.sh [EVENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
command -v redis-server >/dev/null 2>&1 || scripts/deps.sh
cargo build --release --quiet --example sink_throughput
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
redis-server --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no --dir "$DIR" >/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$PORT, $(nproc) cores"
target/release/examples/sink_throughput "127.0.0.1:$PORT" "$N"
