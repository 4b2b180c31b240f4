#!/bin/sh
# e2e_postfix.sh - the whole slice with real parts: a Postfix sender is
# greylisted by spamd behind an nftables redirect, retries, is whitelisted
# into the nftables set with a timeout, and its message reaches the real MX
# (smtp-sink) through the firewall; over IPv4 and IPv6. Then a spamtrap
# sender is trapped and tarpitted, and the set is reconciled with the
# database after a restart and after greyctl -d.
E2E_TAG=e2e
. "$(dirname "$0")/lib/e2e.sh"
trap e2e_cleanup EXIT INT TERM
e2e_need
DB=$E2E_TMP/db

# spamd_start - spamd in the MX namespace, nftables backend
spamd_start() {
	e2e_spamd -v -l $MX6 --pass-seconds 2 --db-dir "$DB" --fw nftables \
	    --fw-family inet --fw-table spamd --fw-reconcile 2
}

# in_set SET ADDR - the nftables set holds ADDR
in_set() {
	ip netns exec "$NS_MX" nft list set inet spamd "$1" 2>/dev/null |
	    grep -q "$2"
}

# not_in_set SET ADDR - the nftables set does not hold ADDR (false when
# the set cannot be listed at all: a missing table is no proof)
not_in_set() {
	_l=$(ip netns exec "$NS_MX" nft list set inet spamd "$1" 2>/dev/null) ||
	    return 1
	! printf '%s\n' "$_l" | grep -q "$2"
}

e2e_netns || { e2e_fail "e2e: namespaces"; exit 1; }
if ! ip netns exec "$NS_MX" nft -f "$TOP/etc/spamd.nft" 2>"$E2E_TMP/nft.err"
then
	e2e_fail "e2e: etc/spamd.nft loads: $(head -n 3 "$E2E_TMP/nft.err")"
	exit 1
fi
e2e_ok "e2e: etc/spamd.nft loads in a fresh namespace"
e2e_sink
spamd_start
e2e_postfix "[$MX4]:25" || { e2e_fail "e2e: postfix start"; exit 1; }

# 1-2: IPv4 sender greylisted, retried, whitelisted, delivered
e2e_submit v4-$$
if e2e_wait 30 e2e_maillog "451 Temporary failure"; then
	e2e_ok "e2e: IPv4 sender greylisted (451 in the sender's log)"
else
	e2e_fail "e2e: IPv4 sender greylisted: no 451 in the maillog"
fi
if e2e_wait 30 in_set spamd-white $SND4; then
	e2e_ok "e2e: IPv4 sender whitelisted into spamd-white"
	if ip netns exec "$NS_MX" nft list set inet spamd spamd-white |
	    grep "$SND4" | grep -q 'expires'; then
		e2e_ok "e2e: whitelist element carries a timeout"
	else
		e2e_fail "e2e: whitelist element has no timeout"
	fi
else
	e2e_fail "e2e: $SND4 never reached spamd-white"
fi
if e2e_wait 40 e2e_delivered v4-$$; then
	e2e_ok "e2e: IPv4 message delivered to the real MX through the firewall"
else
	e2e_fail "e2e: IPv4 message not delivered"
fi
if "$BUILD/greyctl" -D "$DB" 2>/dev/null | grep -q "^WHITE|$SND4|"; then
	e2e_ok "e2e: greyctl lists the sender as WHITE"
else
	e2e_fail "e2e: greyctl does not list $SND4 as WHITE"
fi

# 3: the same over IPv6
e2e_postfix_relay "[$MX6]:25"
: >"$E2E_TMP/maillog.mark"
e2e_submit v6-$$
if e2e_wait 30 in_set spamd-white6 $SND6; then
	e2e_ok "e2e: IPv6 sender whitelisted into spamd-white6"
else
	e2e_fail "e2e: $SND6 never reached spamd-white6"
fi
if e2e_wait 40 e2e_delivered v6-$$; then
	e2e_ok "e2e: IPv6 message delivered through the firewall"
else
	e2e_fail "e2e: IPv6 message not delivered"
fi
if grep -q "$SND6.*451\|451.*$SND6\|fd99:1::2.*451 Temporary" \
    "$E2E_TMP/maillog"; then
	e2e_ok "e2e: IPv6 sender was greylisted first"
else
	e2e_fail "e2e: no 451 for the IPv6 attempt in the maillog"
fi

# 4: a sender that mails a spamtrap is trapped and tarpitted, never delivered
"$BUILD/greyctl" -D "$DB" -T -a trap@mx.test >/dev/null 2>&1
ip netns exec "$NS_SND" swaks --server $MX4:25 --local-interface $SND4B \
    --from spammer@spam.test --to trap@mx.test --body "token trap1-$$" \
    --timeout 60 >"$E2E_TMP/trap1.log" 2>&1
if e2e_wait 10 sh -c "'$BUILD/greyctl' -D '$DB' | grep -q '^TRAPPED|$SND4B|'"
then
	e2e_ok "e2e: spamtrap sender is TRAPPED"
else
	e2e_fail "e2e: $SND4B not TRAPPED after mailing a spamtrap"
fi
# the trap list holding it reaches the engine (its list-loaded line)
e2e_wait 10 grep -q "tag=spamd-greytrap prefixes=[1-9]" "$E2E_TMP/spamd.log" ||
	e2e_fail "e2e: the engine loads a trap list with $SND4B"
ip netns exec "$NS_SND" swaks --server $MX4:25 --local-interface $SND4B \
    --from spammer@spam.test --to bob@mx.test --body "token trap2-$$" \
    --timeout 60 >"$E2E_TMP/trap2.log" 2>&1
if grep -q "mailed to spamtraps" "$E2E_TMP/trap2.log"; then
	e2e_ok "e2e: trapped sender is tarpitted with the spamtrap message"
else
	e2e_fail "e2e: trapped sender did not get the spamtrap message"
fi
if ! e2e_delivered trap1-$$ && ! e2e_delivered trap2-$$ &&
    not_in_set spamd-white $SND4B; then
	e2e_ok "e2e: trapped sender never delivered nor whitelisted"
else
	e2e_fail "e2e: trapped sender got through"
fi

# 5: restart with the set emptied by hand: the startup reconcile refills it
kill "$SPAMD_PID"; e2e_wait 10 sh -c "! kill -0 $SPAMD_PID"
ip netns exec "$NS_MX" nft flush set inet spamd spamd-white
spamd_start
if e2e_wait 15 in_set spamd-white $SND4; then
	e2e_ok "e2e: restart reconciles the set from the database"
else
	e2e_fail "e2e: $SND4 not back in spamd-white after restart"
fi
ip netns exec "$NS_MX" nft delete element inet spamd spamd-white "{ $SND4 }"
if e2e_wait 15 in_set spamd-white $SND4; then
	e2e_ok "e2e: an element deleted by hand comes back (periodic reconcile)"
else
	e2e_fail "e2e: element deleted by hand did not come back"
fi
"$BUILD/greyctl" -D "$DB" -d $SND4 >/dev/null 2>&1
if e2e_wait 15 not_in_set spamd-white $SND4; then
	e2e_ok "e2e: greyctl -d of a WHITE address removes it from the set"
else
	e2e_fail "e2e: $SND4 still in spamd-white after greyctl -d"
fi
e2e_san "e2e: no sanitizer report in spamd's log" "$E2E_TMP/spamd.log"
[ $E2E_FAILED = 0 ] || { echo "# spamd log tail:" >&2; tail -n 30 "$E2E_TMP/spamd.log" >&2; echo "# maillog tail:" >&2; tail -n 15 "$E2E_TMP/maillog" >&2; }
exit $E2E_FAILED
