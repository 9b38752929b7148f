#!/usr/bin/env bash
# Installs the system packages hostwatch builds and tests with, when missing:
# libpcap-dev (to link), tcpreplay and iproute2 (live-capture tests),
# redis-server (the Redis output's tests start their own on loopback).
set -euo pipefail
need=()
dpkg -s libpcap-dev >/dev/null 2>&1 || need+=(libpcap-dev)
command -v tcpreplay >/dev/null 2>&1 || need+=(tcpreplay)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
