#!/bin/sh
# setup_black_overlap.sh - spamd-setup -b with black lists that overlap, as
# real feeds do, into the real nftables sets of etc/spamd.nft inside a
# network namespace made here, and into the file backend:
#  - two lists whose blocks overlap (a /16 holding the other's /24, a /25
#    inside a /24, IPv6 too) load: exit 0, the set holds the merged,
#    non-overlapping blocks (before: "conflicting intervals specified",
#    exit 1, nothing loaded);
#  - a run where one list fails keeps that list's previous blocks while a
#    new block of the other overlaps them (no conflict: they are merged);
#  - the next complete run drops what no list holds any more;
#  - the file backend's black file holds the same merged blocks.
# A loopback listener in the namespace (port 16300-16399) stands for
# spamd's config port (it answers nothing, as OpenBSD spamd). Needs root,
# `ip netns`, nft and python3.
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$TOP/build}
SETUP=$BUILD/spamd-setup
if [ "$(id -u)" != 0 ]; then echo "skip - setup_black_overlap: needs root"; exit 0; fi
if ! ip netns list >/dev/null 2>&1; then echo "skip - setup_black_overlap: ip netns unavailable"; exit 0; fi
if ! command -v nft >/dev/null 2>&1; then echo "skip - setup_black_overlap: nft not installed"; exit 0; fi
if [ ! -x "$SETUP" ]; then echo "not ok - setup_black_overlap: $SETUP not built"; exit 1; fi

NS=sbo$$
TMP=$(mktemp -d /tmp/setup_black_overlap.XXXXXX)
# spamd's writer (and spamd-setup's fetcher) run unprivileged: as
# root, let them search this directory (its files keep their modes)
[ "$(id -u)" = 0 ] && chmod 711 "$TMP"
SRV=""
cleanup() {
	[ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
	ip netns del "$NS" 2>/dev/null; rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
failed=0
ok() { echo "ok - $1"; }
nok() { echo "not ok - $1: $2"; failed=1; }
inns() { ip netns exec "$NS" "$@"; }
# elems SET - the set's elements, one a line, sorted
elems() { inns nft list set inet spamd "$1" | tr ',{}' '\n\n\n' | sed -n 's/^[[:space:]]*\([0-9a-f][0-9a-f.:/]*\)[[:space:]]*$/\1/p' | sort; }
# want "a b c" - the words one a line, sorted
want() { echo "$1" | tr ' ' '\n' | sort; }

ip netns add "$NS" || { echo "not ok - setup_black_overlap: cannot create netns"; exit 1; }
inns ip link set lo up
if ! inns nft -f "$TOP/etc/spamd.nft" 2>"$TMP/err"; then
	echo "not ok - setup_black_overlap: etc/spamd.nft loads: $(head -3 "$TMP/err")"; exit 1
fi
PORT=$((16300 + $$ % 100))
# the config port: accept, read to EOF, close (no answer counts as ok)
inns python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
print("listening", flush=True)
while True:
    c, _ = s.accept(); c.settimeout(30)
    try:
        while c.recv(65536):
            pass
    except OSError:
        pass
    c.close()
' "$PORT" >"$TMP/srv.out" 2>&1 &
SRV=$!
i=0
while ! grep -q listening "$TMP/srv.out" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done

cat >"$TMP/spamd.conf" <<EOF
all:\\
	:feed-a:feed-b:
feed-a:\\
	:black:\\
	:msg="A":\\
	:file=$TMP/a.txt:
feed-b:\\
	:black:\\
	:msg="B":\\
	:file=$TMP/b.txt:
EOF
printf '10.0.0.0/16\n10.2.0.0/24\n2001:db8::/32\n' >"$TMP/a.txt"
printf '10.0.5.0/24\n10.2.0.128/25\n10.4.0.0/24\n2001:db8:1::/48\n' >"$TMP/b.txt"
run() { inns "$SETUP" -b -f "$TMP/spamd.conf" -s "$TMP/state" -p "$PORT" "$@"; }

# 1. overlapping lists load, merged
if run >"$TMP/out" 2>"$TMP/err"; then rc=0; else rc=$?; fi
got=$(elems spamd-black; elems spamd-black6)
exp=$(want "10.0.0.0/16 10.2.0.0/24 10.4.0.0/24"; want "2001:db8::/32")
if [ $rc = 0 ] && [ "$got" = "$exp" ]; then
	ok "overlapping black lists load as merged blocks (exit 0)"
else nok "overlapping black lists load as merged blocks (exit 0)" "rc=$rc set=[$(echo $got)] $(grep -i firewall "$TMP/err" | head -2)"; fi
if ! grep -q "conflicting" "$TMP/err"; then ok "no conflicting-intervals error"
else nok "no conflicting-intervals error" "$(grep conflicting "$TMP/err" | head -1)"; fi

# 2. feed-b fails: its blocks stay; feed-a's new /16 overlaps its /24
# (the set as a good run left it, made here so this case stands alone)
inns nft flush set inet spamd spamd-black
inns nft flush set inet spamd spamd-black6
inns nft add element inet spamd spamd-black '{ 10.0.0.0/16, 10.2.0.0/24, 10.4.0.0/24 }'
inns nft add element inet spamd spamd-black6 '{ 2001:db8::/32 }'
mv "$TMP/b.txt" "$TMP/b.off"
printf '10.0.0.0/16\n10.2.0.0/24\n10.4.0.0/16\n2001:db8::/32\n' >"$TMP/a.txt"
if run >"$TMP/out" 2>"$TMP/err"; then rc=0; else rc=$?; fi
got=$(elems spamd-black; elems spamd-black6)
exp=$(want "10.0.0.0/16 10.2.0.0/24 10.4.0.0/16"; want "2001:db8::/32")
if [ "$got" = "$exp" ] && ! grep -q "firewall:" "$TMP/err"; then
	ok "a failed list's blocks stay, merged with an overlapping new block"
else nok "a failed list's blocks stay, merged with an overlapping new block" "rc=$rc set=[$(echo $got)] $(grep -i 'firewall' "$TMP/err" | head -2)"; fi
if [ $rc = 1 ] && grep -q "list=feed-b event=fetch-failed" "$TMP/err"; then
	ok "the failed list is reported (exit 1)"
else nok "the failed list is reported (exit 1)" "rc=$rc $(head -2 "$TMP/err")"; fi

# 3. a complete run drops what no list holds
printf '10.0.5.0/24\n' >"$TMP/b.txt"
printf '10.2.0.0/24\n' >"$TMP/a.txt"
if run >"$TMP/out" 2>"$TMP/err"; then rc=0; else rc=$?; fi
got=$(elems spamd-black; elems spamd-black6)
exp=$(want "10.0.5.0/24 10.2.0.0/24")
if [ $rc = 0 ] && [ "$got" = "$exp" ]; then
	ok "a complete run leaves only the current blocks"
else nok "a complete run leaves only the current blocks" "rc=$rc set=[$(echo $got)] $(grep -i firewall "$TMP/err" | head -2)"; fi

# 4. the file backend gets the same merged blocks
mv "$TMP/b.off" "$TMP/b.txt"
printf '10.0.0.0/16\n10.2.0.0/24\n2001:db8::/32\n' >"$TMP/a.txt"
printf '10.0.5.0/24\n10.2.0.128/25\n10.4.0.0/24\n2001:db8:1::/48\n' >"$TMP/b.txt"
rm -f "$TMP/state"
if run --fw-backend file --fw-path "$TMP/fw" >"$TMP/out" 2>"$TMP/err"; then rc=0; else rc=$?; fi
got=$(sort "$TMP/fw.black" 2>/dev/null)
exp=$(want "10.0.0.0/16 10.2.0.0/24 10.4.0.0/24 2001:db8::/32")
if [ $rc = 0 ] && [ "$got" = "$exp" ]; then
	ok "file backend: the black file holds the merged blocks"
else nok "file backend: the black file holds the merged blocks" "rc=$rc file=[$(echo $got)] $(head -2 "$TMP/err")"; fi

exit $failed
