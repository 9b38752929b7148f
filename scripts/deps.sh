#!/usr/bin/env bash
# Installs the system packages hostwatch builds and tests with, when missing:
# libpcap-dev (to link), tcpreplay and iproute2 (live-capture tests),
# redis-server (the Redis output's tests start their own on loopback), and
# PyPI's mmdb-writer (the ASN test writes its MaxMind database with it).
set -euo pipefail
need=()
dpkg -s libpcap-dev >/dev/null 2>&1 || need+=(libpcap-dev)
command -v tcpreplay >/dev/null 2>&1 || need+=(tcpreplay)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! python3 -c 'import mmdb_writer, netaddr' >/dev/null 2>&1; then
    echo "installing: mmdb-writer (PyPI)" >&2
    # Debian's own Python refuses packages from pip unless told otherwise.
    python3 -m pip install -q --user mmdb-writer 2>/dev/null \
        || python3 -m pip install -q --user --break-system-packages mmdb-writer \
        || echo "could not install mmdb-writer: the ASN test will say so" >&2
fi
