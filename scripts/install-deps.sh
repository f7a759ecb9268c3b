#!/bin/sh
# install-deps.sh - install the Debian 12 packages that building and testing
# etrnd need, when they are missing.  Run as root (or they must already be
# there).  Installing a server package never starts its system service here:
# the tests start their own instances on loopback ports.
set -eu

PKGS="gcc make pkg-config libevent-dev libssl-dev libc-ares-dev libsqlite3-dev
libcmocka-dev clang libclang-rt-14-dev python3 python3-pytest python3-aiosmtpd
swaks openssl sqlite3 nsd dnsutils postfix fetchmail procps e2fsprogs
chromium groff-base man-db systemd util-linux iproute2 curl libfaketime"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing" >&2
	echo "install-deps: run as root, or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# Postfix is only a test peer: no system configuration, no service.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
