#!/bin/sh
# fw_nftables.sh - the nftables firewall backend against the real kernel,
# inside a network namespace made here (nft tables are per namespace):
# etc/spamd.nft loads; adds carry timeouts (IPv4 and IPv6) and refresh
# them; deletes (also of absent elements); missing set error; --fw-create;
# reconcile against a database repairs both ways; 10,000 in one flush;
# the kernel expires elements by itself. Needs root and `ip netns`.
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$TOP/build}
FWCTL=$BUILD/tests/helpers/fwctl
if [ "$(id -u)" != 0 ]; then echo "skip - fw_nftables: needs root"; exit 0; fi
if ! ip netns list >/dev/null 2>&1; then echo "skip - fw_nftables: ip netns unavailable"; exit 0; fi
if ! command -v nft >/dev/null 2>&1; then echo "skip - fw_nftables: nft not installed"; exit 0; fi
if [ ! -x "$FWCTL" ]; then echo "not ok - fw_nftables: $FWCTL not built (make tests)"; exit 1; fi

NS=fwnft$$
TMP=$(mktemp -d /tmp/fw_nftables.XXXXXX)
SRV=""
cleanup() {
	[ -n "$SRV" ] && kill "$SRV" 2>/dev/null
	ip netns del "$NS" 2>/dev/null; ip netns del "fwnftc$$" 2>/dev/null; rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
failed=0
ok() { echo "ok - $1"; }
nok() { echo "not ok - $1: $2"; failed=1; }
inns() { ip netns exec "$NS" "$@"; }
fwctl() { ip netns exec "$NS" "$FWCTL" "$@"; }
# has_elem SET IP - the set lists IP as an element
has_elem() { inns nft list set inet spamd "$1" | tr ',{}' '\n\n\n' | awk '{print $1}' | grep -qxF "$2"; }
# elem_line SET IP - IP's element text ("IP timeout 1h expires ...")
elem_line() { inns nft list set inet spamd "$1" | tr ',{}' '\n\n\n' | sed 's/^[[:space:]]*//' | grep "^$2 "; }

ip netns add "$NS" || { echo "not ok - fw_nftables: cannot create netns"; exit 1; }
inns ip link set lo up

if nft -c -f "$TOP/etc/spamd.nft" 2>"$TMP/err"; then ok "spamd.nft passes nft -c"
else nok "spamd.nft passes nft -c" "$(head -3 "$TMP/err")"; fi
if inns nft -f "$TOP/etc/spamd.nft" 2>"$TMP/err"; then ok "spamd.nft loads in a namespace"
else nok "spamd.nft loads in a namespace" "$(head -3 "$TMP/err")"; exit 1; fi

# add v4 + v6 with timeouts
if fwctl add 10.99.0.5 3600 fd99::5 120 2>"$TMP/err" &&
   elem_line spamd-white 10.99.0.5 | grep -q 'timeout 1h' &&
   elem_line spamd-white6 fd99::5 | grep -q 'timeout 2m'; then
	ok "add IPv4 and IPv6 with timeouts"
else nok "add IPv4 and IPv6 with timeouts" "$(cat "$TMP/err"; inns nft list table inet spamd | grep elements)"; fi

# adding again refreshes the timeout (delete+add in one batch)
if fwctl add 10.99.0.5 7200 2>"$TMP/err" && elem_line spamd-white 10.99.0.5 | grep -q 'timeout 2h'; then
	ok "add of a present element refreshes its timeout"
else nok "add of a present element refreshes its timeout" "$(cat "$TMP/err"; elem_line spamd-white 10.99.0.5)"; fi

# delete, together with an absent element in the same batch
if fwctl del 10.99.0.5 10.99.0.77 fd99::5 2>"$TMP/err" && ! has_elem spamd-white 10.99.0.5 &&
   ! has_elem spamd-white6 fd99::5; then
	ok "delete (with an absent element in the batch)"
else nok "delete (with an absent element in the batch)" "$(cat "$TMP/err")"; fi

# black sets: interval sets of networks, no timeouts
if fwctl --black -s black add 10.99.8.0/24 fd99:1::/64 2>"$TMP/err" &&
   fwctl --black -s black del 10.99.8.0/24 10.99.9.0/24 2>>"$TMP/err" &&
   [ "$(fwctl --black -s black list | tr '\n' ' ')" = "fd99:1::/64 0 " ]; then
	ok "black sets take networks (add, delete, absent delete)"
else nok "black sets take networks (add, delete, absent delete)" "$(cat "$TMP/err"; fwctl --black -s black list)"; fi

# the backend's idea of the set is wrong (changed behind its back between
# open and flush): the batch still applies (short form fails, safe form)
fwctl add 10.99.0.50 600 10.99.0.51 600 2>"$TMP/err"
rm -f "$TMP/go"
fwctl --wait-file "$TMP/go" del 10.99.0.50 >"$TMP/out" 2>"$TMP/err2" &
bg=$!
i=0; while ! grep -q opened "$TMP/out" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
inns nft delete element inet spamd spamd-white '{ 10.99.0.50 }'
touch "$TMP/go"
if wait $bg && ! has_elem spamd-white 10.99.0.50; then ok "delete of an element removed behind the backend's back"
else nok "delete of an element removed behind the backend's back" "$(cat "$TMP/err2")"; fi
rm -f "$TMP/go" "$TMP/out"
fwctl --wait-file "$TMP/go" add 10.99.0.51 7200 >"$TMP/out" 2>"$TMP/err2" &
bg=$!
i=0; while ! grep -q opened "$TMP/out" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
inns nft delete element inet spamd spamd-white '{ 10.99.0.51 }'
touch "$TMP/go"
if wait $bg && elem_line spamd-white 10.99.0.51 | grep -q 'timeout 2h'; then ok "refresh of an element removed behind the backend's back"
else nok "refresh of an element removed behind the backend's back" "$(cat "$TMP/err2")"; fi

# nft failing at flush time: the error carries nft's own text
rm -f "$TMP/go" "$TMP/out"
fwctl --table gone --fw-create --wait-file "$TMP/go" add 10.99.0.52 60 >"$TMP/out" 2>"$TMP/err2" &
bg=$!
i=0; while ! grep -q opened "$TMP/out" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
inns nft delete table inet gone
touch "$TMP/go"
if wait $bg; then nok "flush failure carries nft's text" "fwctl succeeded"
elif grep -q "nftables update of 1 element in table inet gone failed: Error: " "$TMP/err2"; then
	ok "flush failure carries nft's text"
else nok "flush failure carries nft's text" "$(cat "$TMP/err2")"; fi

# a missing set is a clear error naming it and the command
inns nft delete set inet spamd spamd-greytrap6
if fwctl --trap list >"$TMP/out" 2>"$TMP/err"; then
	nok "missing set error" "fwctl succeeded"
elif grep -q "spamd-greytrap6" "$TMP/err" &&
     grep -qF "nft add set inet spamd spamd-greytrap6 '{ type ipv6_addr; flags timeout; }'" "$TMP/err"; then
	ok "missing set error names the set and the nft command"
else nok "missing set error names the set and the nft command" "$(cat "$TMP/err")"; fi
if fwctl --table nosuch list 2>"$TMP/err"; then nok "missing table error" "fwctl succeeded"
elif grep -qF "nft add table inet nosuch" "$TMP/err"; then ok "missing table error names nft add table"
else nok "missing table error names nft add table" "$(cat "$TMP/err")"; fi

# without CAP_NET_ADMIN the error says so (not "missing")
if command -v setpriv >/dev/null 2>&1; then
	if inns setpriv --reuid=65534 --regid=65534 --clear-groups "$FWCTL" list 2>"$TMP/err"; then
		nok "no CAP_NET_ADMIN error" "fwctl succeeded"
	elif grep -q "needs CAP_NET_ADMIN" "$TMP/err" && ! grep -q missing "$TMP/err"; then
		ok "without CAP_NET_ADMIN the error names the capability"
	else nok "without CAP_NET_ADMIN the error names the capability" "$(cat "$TMP/err")"; fi
else echo "skip - no CAP_NET_ADMIN error: setpriv not installed"; fi

# --fw-create makes table and sets
if fwctl --fw-create --trap --black --table made add 10.99.0.6 60 2>"$TMP/err" &&
   inns nft list set inet made spamd-greytrap6 >/dev/null 2>&1 &&
   inns nft list set inet made spamd-black | grep -q 'flags interval' &&
   inns nft list set inet made spamd-white | grep -q '10.99.0.6 timeout 1m'; then
	ok "--fw-create creates table and sets"
else nok "--fw-create creates table and sets" "$(cat "$TMP/err")"; fi
if fwctl --fw-create --trap list >/dev/null 2>"$TMP/err" && inns nft list set inet spamd spamd-greytrap6 >/dev/null 2>&1; then
	ok "--fw-create adds a missing set to an existing table"
else nok "--fw-create adds a missing set to an existing table" "$(cat "$TMP/err")"; fi

# a set without the timeout flag is refused at open, with the fix
inns nft delete set inet spamd spamd-greytrap
inns nft add set inet spamd spamd-greytrap '{ type ipv4_addr; }'
if fwctl --trap list 2>"$TMP/err"; then nok "set without timeout flag refused" "fwctl succeeded"
elif grep -q "spamd-greytrap in table inet spamd is not \"type ipv4_addr\" with flags timeout" "$TMP/err" &&
     grep -qF "nft delete set inet spamd spamd-greytrap; nft add set" "$TMP/err"; then
	ok "set without timeout flag refused, naming the fix"
else nok "set without timeout flag refused, naming the fix" "$(cat "$TMP/err")"; fi
inns nft delete set inet spamd spamd-greytrap
inns nft add set inet spamd spamd-greytrap '{ type ipv4_addr; flags timeout; }'

# reconcile against a database, both ways
DB=$TMP/db
inns nft flush set inet spamd spamd-white
inns nft flush set inet spamd spamd-white6
"$FWCTL" -D "$DB" white 10.99.1.1 3600 && "$FWCTL" -D "$DB" white 10.99.1.2 3600 &&
	"$FWCTL" -D "$DB" white fd99::1:1 3600 || nok "db setup" "fwctl white failed"
out=$(fwctl -D "$DB" reconcile 2>"$TMP/err")
if [ "$out" = "added=3 removed=0" ] && has_elem spamd-white 10.99.1.1 && has_elem spamd-white6 fd99::1:1 &&
   elem_line spamd-white 10.99.1.2 | grep -q 'timeout 5[89]m\|timeout 1h'; then
	ok "reconcile fills an empty set with remaining white time"
else nok "reconcile fills an empty set with remaining white time" "$out $(cat "$TMP/err")"; fi
inns nft delete element inet spamd spamd-white '{ 10.99.1.1 }'
inns nft add element inet spamd spamd-white '{ 10.99.1.9 timeout 1h }'
out=$(fwctl -D "$DB" reconcile 2>"$TMP/err")
if [ "$out" = "added=1 removed=1" ] && has_elem spamd-white 10.99.1.1 && ! has_elem spamd-white 10.99.1.9; then
	ok "reconcile: element deleted by hand comes back, stale one leaves"
else nok "reconcile: element deleted by hand comes back, stale one leaves" "$out $(cat "$TMP/err")"; fi
# an element whose kernel timeout is far shorter than its WHITE record
inns nft delete element inet spamd spamd-white '{ 10.99.1.2 }'
inns nft add element inet spamd spamd-white '{ 10.99.1.2 timeout 60s }'
out=$(fwctl -D "$DB" reconcile 2>"$TMP/err")
if [ "$out" = "added=0 removed=0" ] && elem_line spamd-white 10.99.1.2 | grep -q 'timeout 5[89]m\|timeout 1h'; then
	ok "reconcile refreshes a timeout far shorter than the WHITE record"
else nok "reconcile refreshes a timeout far shorter than the WHITE record" "$out $(elem_line spamd-white 10.99.1.2)"; fi
"$FWCTL" -D "$DB" unwhite fd99::1:1
out=$(fwctl -D "$DB" reconcile 2>"$TMP/err")
if [ "$out" = "added=0 removed=1" ] && ! has_elem spamd-white6 fd99::1:1; then
	ok "reconcile: WHITE removed from the db leaves the set"
else nok "reconcile: WHITE removed from the db leaves the set" "$out $(cat "$TMP/err")"; fi

# 10,000 addresses in one flush
inns nft flush set inet spamd spamd-white
if fwctl addseq 10.99.64.0 10000 3600 2>"$TMP/err"; then
	n=$(fwctl list | grep -c '^10\.99\.')
	if [ "$n" = 10000 ]; then ok "10,000 elements in one flush"
	else nok "10,000 elements in one flush" "set holds $n"; fi
else nok "10,000 elements in one flush" "$(cat "$TMP/err")"; fi

# the kernel expires elements by itself (bounded poll, 2 s timeout)
fwctl add fd99::7 2 2>"$TMP/err"
i=0; while has_elem spamd-white6 fd99::7 && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
if ! has_elem spamd-white6 fd99::7 && [ $i -gt 0 ]; then ok "element timeout expires in the kernel"
else nok "element timeout expires in the kernel" "still there after $i polls $(cat "$TMP/err")"; fi


# The ruleset really diverts: a client in a second namespace reaches the
# listener on 8025 until its address is white, then the one on port 25.
CL=fwnftc$$
. "$(dirname "$0")/lib/redirect.sh"
if redirect_netpair; then
	redirect_serve
	fwctl del 10.99.0.1 fd99::1 2>/dev/null
	a=$(which_port 10.99.0.2); b=$(which_port fd99::2)
	if [ "$a" = port=8025 ] && [ "$b" = port=8025 ]; then ok "spamd.nft redirects non-white IPv4 and IPv6 to 8025"
	else nok "spamd.nft redirects non-white IPv4 and IPv6 to 8025" "got '$a' '$b'"; fi
	fwctl add 10.99.0.1 60 fd99::1 60 2>"$TMP/err"
	a=$(which_port 10.99.0.2); b=$(which_port fd99::2)
	if [ "$a" = port=25 ] && [ "$b" = port=25 ]; then ok "white IPv4 and IPv6 reach port 25"
	else nok "white IPv4 and IPv6 reach port 25" "got '$a' '$b' $(cat "$TMP/err")"; fi
	fwctl del 10.99.0.1 2>"$TMP/err"
	inns nft add element inet spamd nospamd '{ 10.99.0.0/24 }'
	a=$(which_port 10.99.0.2)
	if [ "$a" = port=25 ]; then ok "nospamd networks reach port 25"
	else nok "nospamd networks reach port 25" "got '$a'"; fi
else nok "client namespace" "veth setup failed"; fi

exit $failed
