#!/usr/bin/env bash
# Installs the Debian packages fastgw needs for a purpose, only when some are missing.
# Usage: scripts/install-deps.sh build|test|bench
set -euo pipefail
purpose=${1:-build}
build=(pkg-config libssl-dev libnghttp2-dev libsystemd-dev libcrypt-dev openssl)
test=(curl python3 apache2-utils python3-websockets python3-grpcio nghttp2-client nghttp2-server wrk nginx-light libnginx-mod-stream haproxy systemd util-linux groff-base squid dante-server prometheus dnsmasq-base bind9-dnsutils iperf3 pebble golang-github-burntsushi-toml-dev)
bench=(iperf3 openssh-server openssh-client socat)
case "$purpose" in
  build) want=("${build[@]}") ;;
  test) want=("${build[@]}" "${test[@]}") ;;
  bench) want=("${build[@]}" "${test[@]}" "${bench[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  # Package scripts must not start services (nginx, sshd) on the host.
  printf '#!/bin/sh\nexit 101\n' > /tmp/fastgw-policy-rc.d && chmod +x /tmp/fastgw-policy-rc.d
  had_policy=0; [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  [ $had_policy = 1 ] || $SUDO cp /tmp/fastgw-policy-rc.d /usr/sbin/policy-rc.d
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  [ $had_policy = 1 ] || $SUDO rm -f /usr/sbin/policy-rc.d
fi
if [ "$purpose" != build ] && ! python3 -c 'import pytest' 2>/dev/null; then
  python3 -m pip install --quiet pytest 2>/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pytest >/dev/null
fi
# The attack suite's hostile HTTP/2 peers speak raw frames through the h2 library.
if [ "$purpose" != build ] && ! python3 -c 'import h2' 2>/dev/null; then
  python3 -m pip install --quiet h2 2>/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-h2 >/dev/null
fi
command -v swift >/dev/null || { echo "swift (6.x) is required on PATH" >&2; exit 1; }
