#!/bin/sh
# Install, from Debian's packages, whatever a fresh Debian 12 machine lacks
# to build and test dialogue. Installs nothing that is already present.
# chromium, chromium-driver and python3-selenium drive the browser test of
# the website (tests/integration/test_web_browser.py); wrk is bench/web's
# load generator.
set -eu

PKGS="build-essential cmake pkg-config libetpan-dev libevent-dev libsqlite3-dev
libssl-dev openssl swaks python3 python3-pytest python3-aiosmtpd clang
chromium chromium-driver python3-selenium wrk"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
