#!/bin/sh
# e2e_postfix_ipset.sh - the end-to-end slice with iptables + ipset instead
# of nftables: a Postfix sender greylisted by spamd behind the
# etc/spamd-iptables.sh redirect is whitelisted into the spamd-white ipset
# with a timeout, and its message reaches the real MX (smtp-sink).
E2E_TAG=e2eipset
. "$(dirname "$0")/lib/e2e.sh"
trap e2e_cleanup EXIT INT TERM
e2e_need ipset iptables ip6tables
DB=$E2E_TMP/db

e2e_netns || { e2e_fail "e2e-ipset: namespaces"; exit 1; }
if ! ip netns exec "$NS_MX" sh "$TOP/etc/spamd-iptables.sh" start \
    >"$E2E_TMP/ipt.log" 2>&1; then
	e2e_fail "e2e-ipset: etc/spamd-iptables.sh: $(tail -n 2 "$E2E_TMP/ipt.log")"
	exit 1
fi
e2e_ok "e2e-ipset: etc/spamd-iptables.sh sets up sets and redirect"
e2e_sink
e2e_spamd -l $MX6 --pass-seconds 2 --db-dir "$DB" --fw ipset
e2e_postfix "[$MX4]:25" || { e2e_fail "e2e-ipset: postfix start"; exit 1; }

# in_ipset SET ADDR - the ipset holds ADDR (with its timeout)
in_ipset() {
	ip netns exec "$NS_MX" ipset save "$1" 2>/dev/null |
	    grep -q "^add $1 $2 timeout"
}

e2e_submit ipset-$$
if e2e_wait 30 e2e_maillog "451 Temporary failure"; then
	e2e_ok "e2e-ipset: sender greylisted (451 in the sender's log)"
else
	e2e_fail "e2e-ipset: no 451 in the sender's log"
fi
if e2e_wait 30 in_ipset spamd-white $SND4; then
	e2e_ok "e2e-ipset: sender in the spamd-white ipset with a timeout"
else
	e2e_fail "e2e-ipset: $SND4 never reached spamd-white"
fi
if e2e_wait 40 e2e_delivered ipset-$$; then
	e2e_ok "e2e-ipset: message delivered to the real MX through iptables"
else
	e2e_fail "e2e-ipset: message not delivered"
fi
e2e_san "e2e-ipset: no sanitizer report in spamd's log" "$E2E_TMP/spamd.log"
[ $E2E_FAILED = 0 ] || { tail -n 20 "$E2E_TMP/spamd.log" >&2; tail -n 10 "$E2E_TMP/maillog" >&2; }
exit $E2E_FAILED
