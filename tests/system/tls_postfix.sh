#!/bin/sh
# tls_postfix.sh - STARTTLS with a real sender: a private Postfix in one
# namespace with smtp_tls_security_level = may relays to spamd -C/-K in
# another; Postfix negotiates TLS (its maillog and spamd's event=tls say
# so) and the message is greylisted (451 in the maillog, the tuple in
# greyctl). No firewall is involved: the relay is spamd's port itself.
E2E_TAG=tls
. "$(dirname "$0")/lib/e2e.sh"
trap e2e_cleanup EXIT INT TERM
e2e_need openssl
DB=$E2E_TMP/db

if ! openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=mx.test \
    -keyout "$E2E_TMP/key.pem" -out "$E2E_TMP/cert.pem" \
    >"$E2E_TMP/openssl.log" 2>&1; then
	e2e_skip "tls: openssl req failed: $(tail -n 1 "$E2E_TMP/openssl.log")"
	exit 0
fi
e2e_netns || { e2e_fail "tls: namespaces"; exit 1; }
if ! e2e_spamd -v -h mx.test --db-dir "$DB" -C "$E2E_TMP/cert.pem" \
    -K "$E2E_TMP/key.pem"; then
	e2e_fail "tls: spamd did not listen: $(tail -n 3 "$E2E_TMP/spamd.log")"
	exit 1
fi
e2e_postfix "[$MX4]:8025" || { e2e_fail "tls: postfix start"; exit 1; }
# opportunistic TLS, as most MTAs send; log the TLS summary line
postconf -c "$E2E_TMP/pf" "smtp_tls_security_level = may" \
    "smtp_tls_loglevel = 1" &&
    ip netns exec "$NS_SND" postfix -c "$E2E_TMP/pf" reload >/dev/null 2>&1
e2e_submit tls-$$

if e2e_wait 30 e2e_maillog "TLS connection established to"; then
	e2e_ok "tls: Postfix negotiated TLS with spamd (sender's maillog)"
else
	e2e_fail "tls: no 'TLS connection established' in the maillog"
fi
if e2e_wait 10 grep -q "event=tls id=.* ip=$SND4 " "$E2E_TMP/spamd.log"; then
	e2e_ok "tls: spamd logged the handshake (event=tls ip=$SND4)"
else
	e2e_fail "tls: no event=tls for $SND4 in spamd's log"
fi
if e2e_wait 30 e2e_maillog "451 Temporary failure"; then
	e2e_ok "tls: the message is greylisted (451 in the sender's maillog)"
else
	e2e_fail "tls: no 451 in the maillog"
fi
if e2e_wait 10 sh -c "'$BUILD/greyctl' -D '$DB' | grep -q '^GREY|$SND4|sender.test|'"
then
	e2e_ok "tls: greyctl shows the tuple"
else
	e2e_fail "tls: no GREY tuple for $SND4"
fi
if grep -q "event=tls-error" "$E2E_TMP/spamd.log"; then
	e2e_fail "tls: spamd logged a tls-error"
fi
e2e_san "tls: no sanitizer report in spamd's log" "$E2E_TMP/spamd.log"
[ $E2E_FAILED = 0 ] || { echo "# spamd log tail:" >&2; tail -n 20 "$E2E_TMP/spamd.log" >&2; echo "# maillog tail:" >&2; tail -n 15 "$E2E_TMP/maillog" >&2; }
exit $E2E_FAILED
