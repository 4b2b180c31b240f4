#!/bin/sh
# deps.sh - install the Debian packages the build and the tests need.
# Idempotent and silent when everything is present; runs apt-get update only
# when something is missing (a fresh machine has empty package lists).
set -e
PKGS="build-essential pkg-config libevent-dev libdb5.3-dev db5.3-util
libbsd-dev libcmocka-dev nftables libnftables-dev iproute2 iputils-ping iptables ipset
swaks curl dnsmasq-base postfix mandoc valgrind libnet-ssleay-perl python3 clang libclang-rt-14-dev libssl-dev zlib1g-dev libcurl4-openssl-dev
libnetfilter-log-dev libseccomp-dev systemd util-linux
debhelper dpkg-dev fakeroot"
missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
		echo "deps: missing packages:$missing (run as root to install)" >&2
		exit 1
	fi
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# Postfix must install without asking or starting a configured MTA.
echo "postfix postfix/main_mailer_type select No configuration" |
	${SUDO:-} debconf-set-selections
${SUDO:-} apt-get update -qq
${SUDO:-} apt-get install -y -qq --no-install-recommends $missing >/dev/null
