#!/bin/sh
# fw_ipset.sh - the ipset firewall backend against the real kernel, inside
# a network namespace made here (ipset sets are per namespace):
# etc/spamd-iptables.sh loads (twice: it is idempotent); adds carry
# timeouts (IPv4 and IPv6) and refresh them; deletes (also of absent
# elements); missing set error; --fw-create; reconcile both ways; 10,000
# in one flush. Needs root, `ip netns`, ipset and iptables.
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$TOP/build}
FWCTL=$BUILD/tests/helpers/fwctl
if [ "$(id -u)" != 0 ]; then echo "skip - fw_ipset: needs root"; exit 0; fi
if ! ip netns list >/dev/null 2>&1; then echo "skip - fw_ipset: ip netns unavailable"; exit 0; fi
for p in ipset iptables ip6tables; do
	command -v $p >/dev/null 2>&1 || { echo "skip - fw_ipset: $p not installed"; exit 0; }
done
if [ ! -x "$FWCTL" ]; then echo "not ok - fw_ipset: $FWCTL not built (make tests)"; exit 1; fi

NS=fwips$$
TMP=$(mktemp -d /tmp/fw_ipset.XXXXXX)
SRV=""
cleanup() {
	[ -n "$SRV" ] && kill "$SRV" 2>/dev/null
	ip netns del "$NS" 2>/dev/null; ip netns del "fwipsc$$" 2>/dev/null; rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
failed=0
ok() { echo "ok - $1"; }
nok() { echo "not ok - $1: $2"; failed=1; }
inns() { ip netns exec "$NS" "$@"; }
fwctl() { ip netns exec "$NS" "$FWCTL" -b ipset "$@"; }
# elem SET IP - IP's line of `ipset save SET` ("add SET IP timeout N")
elem() { inns ipset save "$1" | grep "^add $1 $2\( \|\$\)"; }
# timeout SET IP - remaining seconds of IP in SET
timeout_of() { elem "$1" "$2" | sed -n 's/.* timeout \([0-9]*\).*/\1/p'; }

ip netns add "$NS" || { echo "not ok - fw_ipset: cannot create netns"; exit 1; }
inns ip link set lo up

if inns sh "$TOP/etc/spamd-iptables.sh" 2>"$TMP/err" && inns sh "$TOP/etc/spamd-iptables.sh" 2>>"$TMP/err" &&
   [ "$(inns iptables -t nat -S PREROUTING | grep -c -- '-j SPAMD')" = 1 ] &&
   inns ip6tables -t nat -S SPAMD | grep -q 'match-set spamd-white6 src -j RETURN'; then
	ok "spamd-iptables.sh loads (twice) in a namespace"
else nok "spamd-iptables.sh loads (twice) in a namespace" "$(head -3 "$TMP/err")"; exit 1; fi

if command -v setpriv >/dev/null 2>&1; then
	if inns setpriv --reuid=65534 --regid=65534 --clear-groups "$FWCTL" -b ipset list 2>"$TMP/err"; then
		nok "no CAP_NET_ADMIN error" "fwctl succeeded"
	elif grep -q "needs CAP_NET_ADMIN" "$TMP/err" && ! grep -q missing "$TMP/err"; then
		ok "without CAP_NET_ADMIN the error names the capability"
	else nok "without CAP_NET_ADMIN the error names the capability" "$(cat "$TMP/err")"; fi
else echo "skip - no CAP_NET_ADMIN error: setpriv not installed"; fi

if fwctl add 10.99.0.5 3600 fd99::5 120 2>"$TMP/err"; then
	t4=$(timeout_of spamd-white 10.99.0.5); t6=$(timeout_of spamd-white6 fd99::5)
	if [ -n "$t4" ] && [ "$t4" -gt 3500 ] && [ "$t4" -le 3600 ] && [ -n "$t6" ] && [ "$t6" -gt 60 ] && [ "$t6" -le 120 ]; then
		ok "add IPv4 and IPv6 with timeouts"
	else nok "add IPv4 and IPv6 with timeouts" "timeouts '$t4' '$t6'"; fi
else nok "add IPv4 and IPv6 with timeouts" "$(cat "$TMP/err")"; fi

if fwctl add 10.99.0.5 7200 2>"$TMP/err" && t=$(timeout_of spamd-white 10.99.0.5) && [ -n "$t" ] && [ "$t" -gt 7000 ]; then
	ok "add of a present element refreshes its timeout"
else nok "add of a present element refreshes its timeout" "timeout '$t' $(cat "$TMP/err")"; fi

if fwctl del 10.99.0.5 10.99.0.77 fd99::5 2>"$TMP/err" && ! elem spamd-white 10.99.0.5 >/dev/null &&
   ! elem spamd-white6 fd99::5 >/dev/null; then
	ok "delete (with an absent element in the batch)"
else nok "delete (with an absent element in the batch)" "$(cat "$TMP/err")"; fi

inns ipset destroy spamd-greytrap6
if fwctl --trap list >/dev/null 2>"$TMP/err"; then nok "missing set error" "fwctl succeeded"
elif grep -q "ipset set spamd-greytrap6 is missing" "$TMP/err" &&
     grep -qF "ipset create spamd-greytrap6 hash:ip family inet6 timeout 0" "$TMP/err"; then
	ok "missing set error names the set and the ipset command"
else nok "missing set error names the set and the ipset command" "$(cat "$TMP/err")"; fi
if fwctl --fw-create --trap -s trap add fd99::8 60 2>"$TMP/err" && t=$(timeout_of spamd-greytrap6 fd99::8) && [ -n "$t" ]; then
	ok "--fw-create creates a missing set"
else nok "--fw-create creates a missing set" "$(cat "$TMP/err")"; fi

DB=$TMP/db
inns ipset flush spamd-white; inns ipset flush spamd-white6
"$FWCTL" -D "$DB" white 10.99.1.1 3600 && "$FWCTL" -D "$DB" white 10.99.1.2 3600 &&
	"$FWCTL" -D "$DB" white fd99::1:1 3600 || nok "db setup" "fwctl white failed"
out=$(fwctl -D "$DB" reconcile 2>"$TMP/err")
t=$(timeout_of spamd-white 10.99.1.2)
if [ "$out" = "added=3 removed=0" ] && elem spamd-white6 fd99::1:1 >/dev/null && [ -n "$t" ] && [ "$t" -gt 3000 ]; then
	ok "reconcile fills an empty set with remaining white time"
else nok "reconcile fills an empty set with remaining white time" "$out $(cat "$TMP/err")"; fi
inns ipset del spamd-white 10.99.1.1
inns ipset add spamd-white 10.99.1.9 timeout 3600
out=$(fwctl -D "$DB" reconcile 2>"$TMP/err")
if [ "$out" = "added=1 removed=1" ] && elem spamd-white 10.99.1.1 >/dev/null && ! elem spamd-white 10.99.1.9 >/dev/null; then
	ok "reconcile: element deleted by hand comes back, stale one leaves"
else nok "reconcile: element deleted by hand comes back, stale one leaves" "$out $(cat "$TMP/err")"; fi
"$FWCTL" -D "$DB" unwhite fd99::1:1
out=$(fwctl -D "$DB" reconcile 2>"$TMP/err")
if [ "$out" = "added=0 removed=1" ] && ! elem spamd-white6 fd99::1:1 >/dev/null; then
	ok "reconcile: WHITE removed from the db leaves the set"
else nok "reconcile: WHITE removed from the db leaves the set" "$out $(cat "$TMP/err")"; fi

inns ipset flush spamd-white
if fwctl addseq 10.99.64.0 10000 3600 2>"$TMP/err"; then
	n=$(inns ipset save spamd-white | grep -c '^add ')
	if [ "$n" = 10000 ]; then ok "10,000 elements in one flush"
	else nok "10,000 elements in one flush" "set holds $n"; fi
else nok "10,000 elements in one flush" "$(cat "$TMP/err")"; fi


# The ruleset really diverts: a client in a second namespace reaches the
# listener on 8025 until its address is white, then the one on port 25.
CL=fwipsc$$
. "$(dirname "$0")/lib/redirect.sh"
if redirect_netpair; then
	redirect_serve
	a=$(which_port 10.99.0.2); b=$(which_port fd99::2)
	if [ "$a" = port=8025 ] && [ "$b" = port=8025 ]; then ok "spamd-iptables.sh redirects non-white IPv4 and IPv6 to 8025"
	else nok "spamd-iptables.sh redirects non-white IPv4 and IPv6 to 8025" "got '$a' '$b'"; fi
	fwctl add 10.99.0.1 60 fd99::1 60 2>"$TMP/err"
	a=$(which_port 10.99.0.2); b=$(which_port fd99::2)
	if [ "$a" = port=25 ] && [ "$b" = port=25 ]; then ok "white IPv4 and IPv6 reach port 25"
	else nok "white IPv4 and IPv6 reach port 25" "got '$a' '$b' $(cat "$TMP/err")"; fi
	fwctl del 10.99.0.1 2>"$TMP/err"
	inns ipset add nospamd 10.99.0.0/24
	a=$(which_port 10.99.0.2)
	if [ "$a" = port=25 ]; then ok "nospamd networks reach port 25"
	else nok "nospamd networks reach port 25" "got '$a'"; fi
else nok "client namespace" "veth setup failed"; fi

exit $failed
