#!/bin/sh
# greylogd.sh - greylogd against the real kernel: two network namespaces
# (a sender and an MX, 10.99.3.0/24), etc/spamd.nft plus
# etc/spamd-greylogd.nft in the MX, greylogd reading NFLOG group 8 there.
# Checks: it runs as an unprivileged user; a WHITE sender's new
# connection to the real port 25 extends its WHITE expire in the store
# (pcount + 1, first and pass kept, as spamlogd) and refreshes its
# firewall element's timeout; an outbound connection
# from the MX to port 25 elsewhere whitelists the destination (store and
# set) and is sent to a sync peer (-Y, keyed); a TRAPPED destination stays
# TRAPPED; with -I outbound connections are ignored; a store the user
# owns leaves no capability; iptables NFLOG with the ipset backend.
# Needs root.
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$TOP/build}
GLOGD=$BUILD/greylogd
GREYCTL=$BUILD/greyctl
PSYNCD=$BUILD/tests/helpers/psyncd
if [ "$(id -u)" != 0 ]; then echo "skip - greylogd: needs root"; exit 0; fi
if ! ip netns list >/dev/null 2>&1; then echo "skip - greylogd: ip netns unavailable"; exit 0; fi
if ! command -v nft >/dev/null 2>&1; then echo "skip - greylogd: nft not installed"; exit 0; fi
for b in "$GLOGD" "$GREYCTL" "$PSYNCD"; do
	[ -x "$b" ] || { echo "not ok - greylogd: $b not built (make all tests)"; exit 1; }
done

MX=glogmx$$
SN=glogsn$$
TMP=$(mktemp -d /tmp/greylogd.XXXXXX)
DB=$TMP/db
GPID="" LPID="" PPID_SYNC=""
cleanup() {
	for p in $GPID $LPID $PPID_SYNC; do kill "$p" 2>/dev/null; done
	for p in $GPID $LPID $PPID_SYNC; do wait "$p" 2>/dev/null; done
	ip netns del "$MX" 2>/dev/null; ip netns del "$SN" 2>/dev/null
	ip netns del "glogip$$" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE
failed=0
ok() { echo "ok - $1"; }
nok() { echo "not ok - $1: $2"; failed=1; }
. "$TOP/tests/helpers/sanscan.sh"
inmx() { ip netns exec "$MX" "$@"; }
insn() { ip netns exec "$SN" "$@"; }
# expire_of IP - the WHITE expire of IP in the store (empty if none)
expire_of() { "$GREYCTL" -D "$DB" "$1" 2>/dev/null | awk -F'|' '$1 == "WHITE" { print $7 }'; }
# elem_line IP - IP's element in spamd-white ("IP timeout 2h expires ...")
elem_line() { inmx nft list set inet spamd spamd-white | tr ',{}' '\n\n\n' | sed 's/^[[:space:]]*//' | grep "^$1 "; }
# connect NSFN IP - one TCP connection to IP:25 from a namespace; prints
# the first line the server sent (nothing when refused)
connect() {
	$1 python3 -c "
import socket, sys
try:
    s = socket.create_connection(('$2', 25), 2)
    print(s.recv(200).decode(errors='replace').strip())
except OSError:
    pass
"
}
# wait_for CMD... - poll CMD every 0.1 s for up to 10 s
wait_for() {
	i=0
	while [ $i -lt 100 ]; do
		"$@" && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}
# start_glogd ARGS... - greylogd in the MX namespace, foreground; waits
# for its start line (started without a shell function in between, so
# $! is greylogd itself: ip netns exec execs it)
start_glogd() {
	: >"$TMP/glogd.log"
	ip netns exec "$MX" "$GLOGD" -D -v -W 2 --db-dir "$DB" "$@" >"$TMP/glogd.log" 2>&1 &
	GPID=$!
	wait_for grep -q 'event=start ' "$TMP/glogd.log"
}
# stop_glogd NAME - SIGTERM; it must exit 0 (and, in the ASan build,
# leave no sanitizer report)
stop_glogd() {
	kill "$GPID" 2>/dev/null; wait "$GPID"; st=$?; GPID=""
	if [ $st = 0 ]; then ok "$1: exits 0 on SIGTERM"
	else nok "$1: exits 0 on SIGTERM" "status $st; $(tail -n 5 "$TMP/glogd.log")"; fi
	r=$(san_scan "$1: no sanitizer report" "$TMP/glogd.log")
	case "$r" in
	"ok "*) ok "$1: no sanitizer report" ;;
	"not ok"*) nok "$1: no sanitizer report" "${r#*: }" ;;
	esac
}
white_later() { e=$(expire_of "$1"); [ -n "$e" ] && [ "$e" -gt "$2" ]; }
is_white() { [ -n "$(expire_of "$1")" ]; }

# --- the two namespaces, the ruleset, the real MX on port 25
ip netns add "$MX" && ip netns add "$SN" ||
	{ echo "not ok - greylogd: cannot create namespaces"; exit 1; }
ip link add "glm$$" type veth peer name "gls$$" &&
ip link set "glm$$" netns "$MX" && ip link set "gls$$" netns "$SN" &&
inmx ip addr add 10.99.3.2/24 dev "glm$$" &&
insn ip addr add 10.99.3.1/24 dev "gls$$" &&
for a in 10.99.3.3 10.99.3.4 10.99.3.5; do insn ip addr add $a/24 dev "gls$$" || exit 1; done &&
inmx ip link set lo up && insn ip link set lo up &&
inmx ip link set "glm$$" up && insn ip link set "gls$$" up ||
	{ echo "not ok - greylogd: cannot set up the veth pair"; exit 1; }

if inmx nft -f "$TOP/etc/spamd.nft" 2>"$TMP/err" &&
   inmx nft -f "$TOP/etc/spamd-greylogd.nft" 2>>"$TMP/err" &&
   inmx nft -f "$TOP/etc/spamd-greylogd.nft" 2>>"$TMP/err" &&
   [ "$(inmx nft list chain inet spamd greylogd-in | grep -c 'log prefix')" = 2 ]; then
	ok "spamd.nft and spamd-greylogd.nft load (twice) in the MX namespace"
else nok "spamd.nft and spamd-greylogd.nft load (twice) in the MX namespace" "$(head -3 "$TMP/err")"; exit 1; fi

ip netns exec "$MX" python3 -c "
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('10.99.3.2', 25)); s.listen(16); s.settimeout(0.5)
end = time.time() + 120
while time.time() < end:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    c.sendall(b'220 realmx ESMTP\r\n'); c.close()
" &
LPID=$!

# --- the sender is WHITE with 10 minutes left, store and set
now=$(date +%s)
old=$((now + 600))
# (first and pass in the past: spamlogd's refresh keeps both)
printf 'WHITE|10.99.3.1|||%s|%s|%s|3|1\nTRAPPED|10.99.3.5|%s\n' \
	"$((now - 2000))" "$((now - 1000))" "$old" "$((now + 3600))" | "$GREYCTL" -D "$DB" import >/dev/null 2>"$TMP/err" ||
	{ nok "greyctl import" "$(cat "$TMP/err")"; exit 1; }
inmx nft add element inet spamd spamd-white "{ 10.99.3.1 timeout 600s }"

# --- a sync peer in the MX namespace, keyed
printf 'greylogd test key %s\n' "$$" >"$TMP/key"
chmod 600 "$TMP/key"	# a key others may read is refused
: >"$TMP/psyncd.out"
ip netns exec "$MX" "$PSYNCD" -k "$TMP/key" -l 127.0.0.1 -p 28531 -w 100 >"$TMP/psyncd.out" 2>&1 &
PPID_SYNC=$!
wait_for grep -q '^listening' "$TMP/psyncd.out" || nok "psyncd listens" "$(cat "$TMP/psyncd.out")"

if start_glogd -Y 127.0.0.1:28531 --sync-key "$TMP/key"; then
	ok "greylogd starts (NFLOG group 8, nftables, sync target)"
else nok "greylogd starts (NFLOG group 8, nftables, sync target)" "$(tail -5 "$TMP/glogd.log")"; exit 1; fi

uid=$(awk '/^Uid:/ { print $2 }' "/proc/$GPID/status" 2>/dev/null)
capeff=$(awk '/^CapEff:/ { print $2 }' "/proc/$GPID/status" 2>/dev/null)
# CAP_NET_ADMIN (12) and CAP_DAC_OVERRIDE (1): the store is root's here
if [ -n "$uid" ] && [ "$uid" != 0 ] && [ "$capeff" = 0000000000001002 ]; then
	ok "greylogd runs as uid $uid with CAP_NET_ADMIN and CAP_DAC_OVERRIDE only"
else nok "greylogd runs unprivileged" "uid=$uid CapEff=$capeff $(grep privsep "$TMP/glogd.log")"; fi

# --- inbound: the WHITE sender reaches the real MX; its expiry grows
banner=$(connect insn 10.99.3.2)
case "$banner" in
220\ realmx*) ok "the WHITE sender reaches the real MTA on port 25" ;;
*) nok "the WHITE sender reaches the real MTA on port 25" "got '$banner'" ;;
esac
if wait_for white_later 10.99.3.1 $((old + 3000)); then
	ok "inbound connection extends the WHITE expire ($old -> $(expire_of 10.99.3.1))"
else nok "inbound connection extends the WHITE expire" "expire $(expire_of 10.99.3.1); $(tail -5 "$TMP/glogd.log")"; fi
# as OpenBSD spamlogd: pcount counts the connection, first, pass and
# bcount stay (it used to reset pass to now and leave pcount)
f=$("$GREYCTL" -D "$DB" 10.99.3.1 2>/dev/null | awk -F'|' '$1 == "WHITE" { print $5 "|" $6 "|" $8 "|" $9 }')
case "$f" in
"$((now - 2000))|$((now - 1000))|3|"[2-9]*) ok "the refresh keeps first, pass and bcount and counts the pass in pcount (spamlogd)" ;;
*) nok "the refresh keeps first, pass and bcount and counts the pass in pcount (spamlogd)" "first|pass|bcount|pcount = $f, want $((now - 2000))|$((now - 1000))|3|2+" ;;
esac
if wait_for sh -c "ip netns exec $MX nft list set inet spamd spamd-white | grep -q '10.99.3.1 timeout 2h'"; then
	ok "the firewall element's timeout is refreshed (600s -> 2h)"
else nok "the firewall element's timeout is refreshed" "$(elem_line 10.99.3.1)"; fi

# --- outbound: the MX connects to a TRAPPED host, then to a new host
connect inmx 10.99.3.5 >/dev/null
connect inmx 10.99.3.3 >/dev/null
if wait_for is_white 10.99.3.3; then
	ok "outbound connection whitelists the destination in the store"
else nok "outbound connection whitelists the destination in the store" "$(tail -5 "$TMP/glogd.log")"; fi
if wait_for sh -c "ip netns exec $MX nft list set inet spamd spamd-white | grep -q '10.99.3.3 timeout 2h'"; then
	ok "outbound destination is added to spamd-white with whiteexp"
else nok "outbound destination is added to spamd-white with whiteexp" "$(inmx nft list set inet spamd spamd-white)"; fi
if ! is_white 10.99.3.5 && "$GREYCTL" -D "$DB" 10.99.3.5 | grep -q '^TRAPPED|' &&
   grep -q 'event=skip ip=10.99.3.5 dir=out reason=trapped' "$TMP/glogd.log"; then
	ok "a TRAPPED destination stays TRAPPED"
else nok "a TRAPPED destination stays TRAPPED" "$("$GREYCTL" -D "$DB" 10.99.3.5)"; fi
if wait_for grep -q 'entry WHITE ip=10.99.3.3 ' "$TMP/psyncd.out"; then
	ok "-Y sends the new WHITE entry to the sync peer (keyed)"
else nok "-Y sends the new WHITE entry to the sync peer" "$(cat "$TMP/psyncd.out")"; fi

kill -USR1 "$GPID"
if wait_for grep -q 'event=counters .*outbound=2 ' "$TMP/glogd.log"; then
	ok "SIGUSR1 logs the counters"
else nok "SIGUSR1 logs the counters" "$(grep counters "$TMP/glogd.log")"; fi
stop_glogd "greylogd"

# --- -I: outbound ignored. The sender's inbound connection, logged after
# the outbound one, shows the outbound one was read.
# and the store now belongs to the user: no capability is kept at all
printf 'WHITE|10.99.3.1|||%s|%s|%s|0|1\n' "$now" "$now" "$old" |
	"$GREYCTL" -D "$DB" import >/dev/null 2>"$TMP/err"
chown -R "$uid" "$DB" && chmod 711 "$TMP"
if start_glogd -I --fw none; then
	capeff=$(awk '/^CapEff:/ { print $2 }' "/proc/$GPID/status" 2>/dev/null)
	if [ "$capeff" = 0000000000000000 ]; then
		ok "store owned by the user, --fw none: no capabilities left"
	else nok "store owned by the user, --fw none: no capabilities left" "CapEff=$capeff"; fi
	connect inmx 10.99.3.4 >/dev/null
	connect insn 10.99.3.2 >/dev/null
	if wait_for white_later 10.99.3.1 $((old + 3000)) && ! is_white 10.99.3.4 &&
	   grep -q 'reason=outbound' "$TMP/glogd.log"; then
		ok "-I: inbound extended, outbound destination not whitelisted"
	else nok "-I: inbound extended, outbound destination not whitelisted" \
		"10.99.3.1 expire $(expire_of 10.99.3.1), 10.99.3.4 $(expire_of 10.99.3.4)"; fi
	stop_glogd "greylogd -I"
else nok "greylogd -I starts" "$(tail -5 "$TMP/glogd.log")"; fi

# --- iptables + ipset sites: an NFLOG target in OUTPUT, the ipset
# backend (its tool runs with CAP_NET_ADMIN made ambient)
if command -v ipset >/dev/null 2>&1 && command -v iptables >/dev/null 2>&1; then
	IP=glogip$$
	ip netns add "$IP" && ip netns exec "$IP" ip link set lo up &&
	ip netns exec "$IP" ip addr add 192.0.2.1/24 dev lo &&
	ip netns exec "$IP" ipset create spamd-white hash:ip timeout 0 &&
	ip netns exec "$IP" ipset create spamd-white6 hash:ip family inet6 timeout 0 &&
	ip netns exec "$IP" iptables -A OUTPUT -p tcp --dport 25 --syn \
		-j NFLOG --nflog-group 8 --nflog-prefix out 2>"$TMP/err" ||
		nok "iptables NFLOG namespace" "$(cat "$TMP/err")"
	: >"$TMP/glogd.log"
	ip netns exec "$IP" "$GLOGD" -D -v -W 2 --db-dir "$DB" --fw ipset >"$TMP/glogd.log" 2>&1 &
	GPID=$!
	wait_for grep -q 'event=start ' "$TMP/glogd.log"
	ip netns exec "$IP" python3 -c "
import socket
try:
    socket.create_connection(('192.0.2.77', 25), 1)
except OSError:
    pass
"
	if wait_for is_white 192.0.2.77 &&
	   wait_for sh -c "ip netns exec $IP ipset list spamd-white | grep -q '^192.0.2.77 timeout'" &&
	   grep -q 'ambient=1' "$TMP/glogd.log"; then
		ok "iptables NFLOG + ipset backend: outbound destination in the store and the ipset"
	else nok "iptables NFLOG + ipset backend" "$(ip netns exec "$IP" ipset list spamd-white | tail -2; tail -3 "$TMP/glogd.log")"; fi
	stop_glogd "greylogd --fw ipset"
	ip netns del "$IP"
else
	echo "skip - iptables NFLOG + ipset backend: ipset or iptables not installed"
fi

# --- a bad flag and a missing sync key are refused at start
if ! "$GLOGD" -W 0 >/dev/null 2>"$TMP/err" && grep -q -- '-W' "$TMP/err" &&
   ! "$GLOGD" -Y 127.0.0.1 --sync-key "$TMP/nokey" >/dev/null 2>"$TMP/err" &&
   grep -q 'sync key' "$TMP/err"; then
	ok "bad -W and -Y without a key file are refused"
else nok "bad -W and -Y without a key file are refused" "$(cat "$TMP/err")"; fi

exit $failed
