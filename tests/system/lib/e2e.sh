# e2e.sh - shared pieces of the end-to-end system tests (sourced, not run).
#
# Two network namespaces joined by a veth pair: "snd" (10.99.1.1,
# fd99:1::1, plus 10.99.1.3 for a second client) runs a private Postfix
# that relays everything to the MX; "mx" (10.99.1.2, fd99:1::2) runs the
# firewall ruleset, spamd on 8025 and Postfix's smtp-sink on 25 as the
# real MX. Nothing leaves the namespaces. e2e_cleanup undoes it all.

TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$TOP/build}
E2E_TAG=${E2E_TAG:-e2e}
NS_SND="sp-$E2E_TAG-snd-$$"
NS_MX="sp-$E2E_TAG-mx-$$"
SND4=10.99.1.1 MX4=10.99.1.2 SND4B=10.99.1.3
SND6=fd99:1::1 MX6=fd99:1::2
E2E_TMP=$(mktemp -d /tmp/spamd-$E2E_TAG.XXXXXX)
chmod 755 "$E2E_TMP"
E2E_PIDS=""
E2E_FAILED=0

# e2e_ok / e2e_fail / e2e_skip - print one result line
e2e_ok() { echo "ok - $*"; }
e2e_fail() { echo "not ok - $*"; E2E_FAILED=1; }
e2e_skip() { echo "skip - $*"; }
. "$TOP/tests/helpers/sanscan.sh"
# e2e_san NAME FILE... - san_scan's line (ASan build only), counted
e2e_san() {
	_r=$(san_scan "$@")
	[ -n "$_r" ] && echo "$_r"
	case "$_r" in "not ok"*) E2E_FAILED=1 ;; esac
	return 0
}

# e2e_cleanup - stop what we started, delete namespaces and the temp dir
e2e_cleanup() {
	if [ -f "$E2E_TMP/pf/main.cf" ]; then
		ip netns exec "$NS_SND" postfix -c "$E2E_TMP/pf" stop \
		    >/dev/null 2>&1
	fi
	for p in $E2E_PIDS; do kill "$p" 2>/dev/null; done
	sleep 0.5
	for p in $E2E_PIDS; do kill -9 "$p" 2>/dev/null; done
	# processes still inside the namespaces (postfix children) by pid
	for ns in "$NS_SND" "$NS_MX"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			kill -9 "$p" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
	if [ "${E2E_KEEP:-0}" = 1 ]; then
		echo "# kept $E2E_TMP" >&2
	else
		rm -rf "$E2E_TMP"
	fi
}

# e2e_need - skip the whole test (exit 0) unless root, netns and tools exist
e2e_need() {
	if [ "$(id -u)" != 0 ]; then
		e2e_skip "$E2E_TAG: needs root for network namespaces"; exit 0
	fi
	for c in ip nft postfix postconf smtp-sink swaks "$@"; do
		if ! command -v "$c" >/dev/null 2>&1; then
			e2e_skip "$E2E_TAG: $c not installed (make deps)"; exit 0
		fi
	done
	if [ ! -x "$BUILD/spamd" ]; then
		e2e_fail "$E2E_TAG: $BUILD/spamd not built"; exit 1
	fi
}

# e2e_netns - make the two namespaces and the veth pair between them
e2e_netns() {
	ip netns add "$NS_SND" && ip netns add "$NS_MX" || return 1
	ip link add "vs$$" type veth peer name "vm$$" || return 1
	ip link set "vs$$" netns "$NS_SND"
	ip link set "vm$$" netns "$NS_MX"
	ip -n "$NS_SND" addr add $SND4/24 dev "vs$$"
	ip -n "$NS_SND" addr add $SND4B/24 dev "vs$$"
	ip -n "$NS_MX" addr add $MX4/24 dev "vm$$"
	ip -n "$NS_SND" addr add $SND6/64 dev "vs$$" nodad
	ip -n "$NS_MX" addr add $MX6/64 dev "vm$$" nodad
	for ns in "$NS_SND" "$NS_MX"; do ip -n "$ns" link set lo up; done
	ip -n "$NS_SND" link set "vs$$" up
	ip -n "$NS_MX" link set "vm$$" up
	# bounded wait until the link answers both ways
	i=0
	while ! ip netns exec "$NS_SND" ping -c1 -W1 $MX4 >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -gt 10 ] && return 1; sleep 0.3
	done
	i=0
	while ! ip netns exec "$NS_SND" ping -6 -c1 -W1 $MX6 >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -gt 10 ] && return 1; sleep 0.3
	done
}

# e2e_sink - smtp-sink on MX port 25 (v4 and v6), one file per message
e2e_sink() {
	mkdir -p "$E2E_TMP/sink"; chmod 777 "$E2E_TMP/sink"
	ip netns exec "$NS_MX" smtp-sink -u postfix -c -m 100 \
	    -d "$E2E_TMP/sink/%H%M%S." "$MX4:25" 100 \
	    >"$E2E_TMP/sink4.log" 2>&1 &
	E2E_PIDS="$E2E_PIDS $!"
	ip netns exec "$NS_MX" smtp-sink -u postfix -c -m 100 \
	    -d "$E2E_TMP/sink/%H%M%S." "[$MX6]:25" 100 \
	    >"$E2E_TMP/sink6.log" 2>&1 &
	E2E_PIDS="$E2E_PIDS $!"
}

# e2e_postfix RELAY - a private Postfix in snd relaying everything to RELAY
e2e_postfix() {
	d=$E2E_TMP/pf
	mkdir -p "$d" "$E2E_TMP/spool" "$E2E_TMP/pfdata"
	cp /usr/share/postfix/master.cf.dist "$d/master.cf"
	: >"$d/main.cf"
	chown postfix "$E2E_TMP/pfdata"
	postconf -c "$d" \
	    "compatibility_level = 3.6" \
	    "queue_directory = $E2E_TMP/spool" \
	    "data_directory = $E2E_TMP/pfdata" \
	    "myhostname = sender.test" \
	    "mydestination =" "local_transport = error:local off" \
	    "inet_interfaces = 127.0.0.1" "inet_protocols = all" \
	    "mynetworks = 127.0.0.0/8" \
	    "relayhost = $1" \
	    "maillog_file = $E2E_TMP/maillog" \
	    "maillog_file_prefixes = $E2E_TMP" \
	    "minimal_backoff_time = 1s" "maximal_backoff_time = 2s" \
	    "queue_run_delay = 1s" "smtp_tls_security_level = none" \
	    "smtp_connect_timeout = 5s" "smtp_helo_timeout = 20s" \
	    "smtp_address_preference = any" \
	    "smtp_bind_address = $SND4" "smtp_bind_address6 = $SND6" \
	    "import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C" \
	    "shlib_directory = /usr/lib/postfix" \
	    "daemon_directory = /usr/lib/postfix/sbin" || return 1
	postconf -c "$d" -F '*/*/chroot = n' || return 1
	# the maillog needs postlogd, which master.cf.dist starts
	ip netns exec "$NS_SND" postfix -c "$d" start >"$E2E_TMP/postfix.start" 2>&1
}

# e2e_postfix_relay RELAY - point the sender at another relay and reload
e2e_postfix_relay() {
	postconf -c "$E2E_TMP/pf" "relayhost = $1" &&
	ip netns exec "$NS_SND" postfix -c "$E2E_TMP/pf" reload >/dev/null 2>&1
}

# e2e_submit TOKEN - hand a message with TOKEN in its body to the sender
e2e_submit() {
	ip netns exec "$NS_SND" swaks --server 127.0.0.1:25 \
	    --from alice@sender.test --to bob@mx.test \
	    --header "Subject: e2e $1" --body "token $1" \
	    >"$E2E_TMP/swaks-$1.log" 2>&1
}

# e2e_wait SECS CMD... - run CMD every 0.5 s until it succeeds or SECS pass
e2e_wait() {
	n=$(($1 * 2)); shift
	while [ $n -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		n=$((n - 1)); sleep 0.5
	done
	return 1
}

# e2e_delivered TOKEN - a message file in the sink holds TOKEN
e2e_delivered() {
	grep -rqs "token $1" "$E2E_TMP/sink"
}

# e2e_maillog PATTERN - the sender's log holds PATTERN
e2e_maillog() {
	grep -qs -- "$1" "$E2E_TMP/maillog"
}

# e2e_spamd ARGS... - start spamd in the MX namespace on MX4 port 8025
# (no stutter, no config port, engine as nobody in an empty chroot, its
# log appended to $E2E_TMP/spamd.log) with ARGS added; sets SPAMD_PID and
# returns once the port answers (1 if it never does)
e2e_spamd() {
	mkdir -p "$E2E_TMP/empty"
	ip netns exec "$NS_MX" "$BUILD/spamd" -d -l $MX4 -p 8025 -S 0 -s 0 \
	    --config-port 0 --user nobody --chroot "$E2E_TMP/empty" "$@" \
	    >>"$E2E_TMP/spamd.log" 2>&1 &
	SPAMD_PID=$!
	E2E_PIDS="$E2E_PIDS $SPAMD_PID"
	e2e_wait 10 ip netns exec "$NS_MX" python3 -c \
	    "import socket; socket.create_connection(('$MX4', 8025), 1)"
}
