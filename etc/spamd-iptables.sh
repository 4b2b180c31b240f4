#!/bin/sh
# spamd-iptables.sh - the spamd firewall for iptables + ipset sites (the
# same as etc/spamd.nft, for hosts that do not use nftables directly).
#
#   sh spamd-iptables.sh [start]   create the sets (keeping their
#                                  elements) and the redirect rules
#   sh spamd-iptables.sh stop      remove the rules (the sets stay)
#
# Every TCP connection to port 25 from an address that is neither in
# spamd-white (hosts that passed greylisting; spamd adds them with a
# timeout equal to their remaining white time) nor in nospamd (your own
# never-greylisted networks) is redirected to spamd on $SPAMD_PORT.
# Run spamd with its ipset firewall backend (set names are the defaults).
# Safe to run again: the rules live in a chain of their own (SPAMD) that
# is emptied and refilled, and `ipset create -exist` keeps existing sets.
#
# Environment: SPAMD_PORT (default 8025), IPSET, IPTABLES, IP6TABLES
# (program names, default ipset, iptables, ip6tables).
set -e
PORT=${SPAMD_PORT:-8025}
IPSET=${IPSET:-ipset}
IPT=${IPTABLES:-iptables}
IP6T=${IP6TABLES:-ip6tables}
MAX=1048576	# the default maxelem (65536) is too small for a busy site

sets() {
	# Whitelist: elements carry their own timeout ("timeout 0" = sets may).
	$IPSET create -exist spamd-white hash:ip family inet timeout 0 maxelem $MAX
	$IPSET create -exist spamd-white6 hash:ip family inet6 timeout 0 maxelem $MAX
	# Never greylisted: yours to fill, e.g. ipset add nospamd 192.0.2.0/24
	$IPSET create -exist nospamd hash:net family inet maxelem $MAX
	$IPSET create -exist nospamd6 hash:net family inet6 maxelem $MAX
	# Blacklists from spamd-setup -b.
	$IPSET create -exist spamd-black hash:net family inet maxelem $MAX
	$IPSET create -exist spamd-black6 hash:net family inet6 maxelem $MAX
	# Trapped hosts, when spamd runs with --fw-trap-set.
	$IPSET create -exist spamd-greytrap hash:ip family inet timeout 0 maxelem $MAX
	$IPSET create -exist spamd-greytrap6 hash:ip family inet6 timeout 0 maxelem $MAX
}

# rules IPT SUFFIX - (re)fill the SPAMD chain and hook it into PREROUTING
rules() {
	$1 -t nat -N SPAMD 2>/dev/null || true
	$1 -t nat -F SPAMD
	$1 -t nat -A SPAMD -m set --match-set "nospamd$2" src -j RETURN
	$1 -t nat -A SPAMD -m set --match-set "spamd-white$2" src -j RETURN
	$1 -t nat -A SPAMD -p tcp -j REDIRECT --to-ports "$PORT"
	# Blacklist-only mode (spamd -b): instead of the three lines above,
	#   $1 -t nat -A SPAMD -m set --match-set "spamd-black$2" src \
	#       -p tcp -j REDIRECT --to-ports "$PORT"
	$1 -t nat -C PREROUTING -p tcp --dport 25 -j SPAMD 2>/dev/null ||
		$1 -t nat -A PREROUTING -p tcp --dport 25 -j SPAMD
}

# unrules IPT - take the chain out again
unrules() {
	while $1 -t nat -D PREROUTING -p tcp --dport 25 -j SPAMD 2>/dev/null; do :; done
	$1 -t nat -F SPAMD 2>/dev/null || true
	$1 -t nat -X SPAMD 2>/dev/null || true
}

case "${1:-start}" in
start)
	sets
	rules "$IPT" ""
	rules "$IP6T" 6
	;;
stop)
	unrules "$IPT"
	unrules "$IP6T"
	;;
*)
	echo "usage: $0 [start|stop]" >&2
	exit 2
	;;
esac
