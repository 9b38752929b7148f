#!/usr/bin/env bash
# Installs the system packages hostwatch needs, when missing.
#
#   scripts/deps.sh          to build and run: libpcap-dev
#   scripts/deps.sh test     and what the tests use: tcpreplay and iproute2
#                            (live-capture tests), redis-server (the Redis
#                            output's tests start their own on loopback),
#                            logrotate (the rotation test), tshark (reads
#                            what -w writes), adduser and
#                            systemd (the package test), PyPI's
#                            mmdb-writer (the ASN test writes its MaxMind
#                            database with it), crates.io's cargo-deb (the
#                            package test builds the .deb with it)
set -euo pipefail
need=()
dpkg -s libpcap-dev >/dev/null 2>&1 || need+=(libpcap-dev)
if [ "${1:-}" = test ]; then
    command -v tcpreplay >/dev/null 2>&1 || need+=(tcpreplay)
    command -v ip >/dev/null 2>&1 || need+=(iproute2)
    command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
    command -v logrotate >/dev/null 2>&1 || need+=(logrotate)
    command -v tshark >/dev/null 2>&1 || need+=(tshark)
    # The package test: dpkg -i needs adduser, and verifies the unit.
    command -v adduser >/dev/null 2>&1 || need+=(adduser)
    command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
    python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ "${1:-}" = test ] && ! python3 -c 'import mmdb_writer, netaddr' >/dev/null 2>&1; then
    echo "installing: mmdb-writer (PyPI)" >&2
    # Debian's own Python refuses packages from pip unless told otherwise.
    python3 -m pip install -q --user mmdb-writer 2>/dev/null \
        || python3 -m pip install -q --user --break-system-packages mmdb-writer \
        || echo "could not install mmdb-writer: the ASN test will say so" >&2
fi
if [ "${1:-}" = test ] && ! command -v cargo-deb >/dev/null 2>&1; then
    echo "installing: cargo-deb (crates.io)" >&2
    cargo install --locked --quiet cargo-deb
fi
