#!/bin/sh
# spamd_privsep.sh - the privilege split of the running daemon: started as
# root with --user nobody --chroot DIR -W 2, every engine process has
# non-zero uids and gids, no capabilities (effective, permitted, bounding),
# no_new_privs, its root at DIR, and no descriptor on the database; the
# writer stays privileged; the daemon still answers a dialogue. Then the
# same daemon started by an unprivileged user logs mode=unprivileged and
# works. Last, the dropped engine's view of -M through a real nftables
# redirect in network namespaces (IPv4 and IPv6): SO_ORIGINAL_DST must name
# the low-priority MX address the client dialled, so its tuple traps it,
# while a client of the main address stays GREY. Each engine also runs
# under the seccomp filter (Seccomp: 2, filter mode) after its setup, by
# default and with --seccomp log, and still serves dialogues. Root needed
# (skips otherwise). Ports from 12000-12499 on the host.
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$TOP/build}
SPAMD=$BUILD/spamd
unset SPAMD_SECCOMP	# the defaults are under test (kill)
failed=0
ok() { echo "ok - $1"; }
nok() { echo "not ok - $1: $2"; failed=1; }
skip() { echo "skip - $1: $2"; }

if [ "$(id -u)" != 0 ]; then skip "spamd privsep" "needs root"; exit 0; fi
if [ ! -x "$SPAMD" ]; then skip "spamd privsep" "$SPAMD not built"; exit 0; fi
if ! id nobody >/dev/null 2>&1; then skip "spamd privsep" "no user nobody"; exit 0; fi

TMP=$(mktemp -d /tmp/spamd_privsep.XXXXXX)

# spamd's writer (and spamd-setup's fetcher) run unprivileged: as

# root, let them search this directory (its files keep their modes)

[ "$(id -u)" = 0 ] && chmod 711 "$TMP"
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && sleep 0.5
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# free_port - a port in 12000-12499 nobody listens on
free_port() {
	python3 -c 'import random,socket
for _ in range(200):
    p=random.randint(12000,12499); s=socket.socket()
    try: s.bind(("127.0.0.1",p)); s.close(); print(p); break
    except OSError: s.close()'
}

# dialogue PORT SRC - a greylisted dialogue; prints the DATA reply code
dialogue() {
	python3 -c 'import smtplib,sys
s=smtplib.SMTP("127.0.0.1",int(sys.argv[1]),timeout=10,source_address=(sys.argv[2],0))
try:
    s.sendmail("a@example.org",["b@example.com"],"x"); print(250)
except smtplib.SMTPDataError as e: print(e.smtp_code)' "$1" "$2" 2>&1
}

# wait_log FILE TEXT - poll up to 10 s for TEXT in FILE
wait_log() {
	i=0
	while [ $i -lt 100 ]; do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}

mkdir "$TMP/root" "$TMP/db"
PORT=$(free_port)
"$SPAMD" -d -p "$PORT" --config-port 0 --db-dir "$TMP/db" --user nobody \
    --chroot "$TMP/root" -W 2 -S 0 -s 0 >"$TMP/log" 2>&1 &
PID=$!
if ! wait_log "$TMP/log" "event=writer_start engines" ||
   [ "$(grep -c 'event=engine-start' "$TMP/log")" != 2 ]; then
	nok "spamd starts as root with -W 2" "$(tail -5 "$TMP/log")"
	exit 1
fi
ok "spamd starts as root with -W 2"
# the filter is loaded after engine-start: wait for both engines' line
i=0
while [ "$(grep -c 'event=sandbox mode=kill' "$TMP/log")" != 2 ] &&
    [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done

# the engines are the children that logged engine-start; pid in spamd[PID]
engines=$(grep 'event=engine-start' "$TMP/log" | sed 's/.*spamd\[\([0-9]*\)\].*/\1/')
children=$(cat /proc/"$PID"/task/*/children 2>/dev/null)
n=0
for e in $engines; do
	n=$((n + 1))
	case " $children " in
	*" $e "*) ok "engine $n (pid $e) is a child of the master" ;;
	*) nok "engine $n (pid $e) is a child of the master" "children: $children" ;;
	esac
	st=/proc/$e/status
	uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "$st")
	gids=$(awk '/^Gid:/ {print $2, $3, $4, $5}' "$st")
	nobody=$(id -u nobody)
	if [ "$uids" = "$nobody $nobody $nobody $nobody" ]; then
		ok "engine $n: real, effective, saved and fs uid are nobody"
	else nok "engine $n: real, effective, saved and fs uid are nobody" "Uid: $uids"; fi
	case " $gids " in
	*" 0 "*) nok "engine $n: no gid 0" "Gid: $gids" ;;
	*) ok "engine $n: no gid 0" ;;
	esac
	groups=$(awk '/^Groups:/ {$1=""; print}' "$st")
	case " $groups " in
	*" 0 "*) nok "engine $n: no supplementary group 0" "Groups:$groups" ;;
	*) ok "engine $n: no supplementary group 0" ;;
	esac
	for cap in CapEff CapPrm CapInh CapBnd CapAmb; do
		v=$(awk -v k="$cap:" '$1 == k {print $2}' "$st")
		if [ -n "$v" ] && [ "$(echo "$v" | tr -d 0)" = "" ]; then
			ok "engine $n: $cap is empty"
		else nok "engine $n: $cap is empty" "$cap: $v"; fi
	done
	nnp=$(awk '/^NoNewPrivs:/ {print $2}' "$st")
	if [ "$nnp" = 1 ]; then ok "engine $n: no_new_privs set"
	else nok "engine $n: no_new_privs set" "NoNewPrivs: $nnp"; fi
	sc=$(awk '/^Seccomp:/ {print $2}' "$st")
	if [ "$sc" = 2 ]; then ok "engine $n: seccomp filter loaded (Seccomp: 2)"
	else nok "engine $n: seccomp filter loaded (Seccomp: 2)" "Seccomp: $sc"; fi
	root=$(readlink /proc/"$e"/root)
	if [ "$root" = "$TMP/root" ]; then ok "engine $n: root is the chroot"
	else nok "engine $n: root is the chroot" "root: $root"; fi
	dbfds=$(ls -l /proc/"$e"/fd 2>/dev/null | grep -c "$TMP/db")
	if [ "$dbfds" = 0 ]; then ok "engine $n: no descriptor on the database"
	else nok "engine $n: no descriptor on the database" "$dbfds open"; fi
done
[ "$n" = 2 ] || nok "two engine processes" "found $n"

# the writer (the other child) is not root either (issue 14): the spamd
# user (nobody here), no capability (no kernel firewall backend here),
# no_new_privs, its own seccomp filter
writer=$(grep 'event=writer_start' "$TMP/log" | sed 's/.*spamd\[\([0-9]*\)\].*/\1/')
wst=/proc/"$writer"/status
wuid=$(awk '/^Uid:/ {print $2 "/" $3 "/" $4}' "$wst" 2>/dev/null)
nuid=$(id -u nobody)
if [ "$wuid" = "$nuid/$nuid/$nuid" ]; then ok "writer runs as nobody (real, effective, saved uid)"
else nok "writer runs as nobody (real, effective, saved uid)" "uids $wuid"; fi
for f in CapEff CapPrm CapBnd CapAmb; do
	v=$(awk "/^$f:/ {print \$2}" "$wst" 2>/dev/null)
	if [ "$v" = 0000000000000000 ]; then ok "writer: $f empty"
	else nok "writer: $f empty" "$f: $v"; fi
done
if [ "$(awk '/^NoNewPrivs:/ {print $2}' "$wst")" = 1 ]; then ok "writer: no_new_privs set"
else nok "writer: no_new_privs set" "$(grep NoNewPrivs "$wst")"; fi
if [ "$(awk '/^Seccomp:/ {print $2}' "$wst")" = 2 ]; then ok "writer: seccomp filter loaded"
else nok "writer: seccomp filter loaded" "$(grep Seccomp: "$wst")"; fi
dbown=$(stat -c %U "$TMP/db")
if [ "$dbown" = nobody ]; then ok "database directory given to the writer's user"
else nok "database directory given to the writer's user" "owner $dbown"; fi

code=$(dialogue "$PORT" 127.0.0.21)
if [ "$code" = 451 ]; then ok "dropped daemon answers a dialogue with 451"
else nok "dropped daemon answers a dialogue with 451" "$code"; fi
i=0; other=""
# with two engines sharing the port, both get connections in time
while [ $i -lt 40 ]; do
	dialogue "$PORT" 127.0.0.$((30 + i)) >/dev/null
	i=$((i + 1))
done
served=$(grep 'event=connect' "$TMP/log" | sed 's/.*spamd\[\([0-9]*\)\].*/\1/' | sort -u | wc -l)
if [ "$served" = 2 ]; then ok "both engines accept connections (SO_REUSEPORT)"
else nok "both engines accept connections (SO_REUSEPORT)" "$served engine(s) served"; fi

# the master runs unfiltered (it forks, binds, restarts children)
sc=$(awk '/^Seccomp:/ {print $2}' /proc/"$PID"/status 2>/dev/null)
if [ "$sc" = 0 ]; then ok "pid $PID (master) has no seccomp filter"
else nok "pid $PID (master) has no seccomp filter" "Seccomp: $sc"; fi

kill "$PID"; i=0
while kill -0 "$PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if wait "$PID"; then ok "SIGTERM: clean exit"; else nok "SIGTERM: clean exit" "status $?"; fi
if [ "$(grep -c 'event=engine-stop engine=[01] status=0' "$TMP/log")" = 2 ]; then
	ok "filtered engines shut down cleanly"
else nok "filtered engines shut down cleanly" "$(grep engine-stop "$TMP/log")"; fi
PID=

# --seccomp log (for finding a missing call): starts, filter loaded, works
PORT=$(free_port)
"$SPAMD" -d -p "$PORT" --config-port 0 --db-dir "$TMP/db" --user nobody \
    --chroot "$TMP/root" -S 0 -s 0 --seccomp log >"$TMP/logl" 2>&1 &
PID=$!
if wait_log "$TMP/logl" "event=sandbox mode=log" &&
   wait_log "$TMP/logl" "event=writer_start engines"; then
	e=$(grep 'event=sandbox mode=log' "$TMP/logl" | sed 's/.*spamd\[\([0-9]*\)\].*/\1/')
	sc=$(awk '/^Seccomp:/ {print $2}' /proc/"$e"/status 2>/dev/null)
	code=$(dialogue "$PORT" 127.0.0.23)
	if [ "$sc" = 2 ] && [ "$code" = 451 ]; then
		ok "--seccomp log: starts, filter loaded, answers with 451"
	else nok "--seccomp log: starts, filter loaded, answers with 451" "Seccomp: $sc, code $code"; fi
else nok "--seccomp log: starts, filter loaded, answers with 451" "$(tail -3 "$TMP/logl")"; fi
kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=
if out=$("$SPAMD" -d --seccomp bogus 2>&1); then
	nok "--seccomp bogus is refused" "started: $out"
else case "$out" in
	*"--seccomp bogus"*) ok "--seccomp bogus is refused" ;;
	*) nok "--seccomp bogus is refused" "$out" ;;
	esac
fi

# a killed engine is replaced: the daemon lives on and serves, and still
# stops cleanly on SIGTERM (the red-team case rt_engine_restart.py has more)
PORT=$(free_port)
"$SPAMD" -d -p "$PORT" --config-port 0 --db-dir "$TMP/db" --user nobody \
    --chroot "$TMP/root" -S 0 -s 0 >"$TMP/log2" 2>&1 &
PID=$!
if wait_log "$TMP/log2" "event=engine-start"; then
	e=$(grep 'event=engine-start' "$TMP/log2" | sed 's/.*spamd\[\([0-9]*\)\].*/\1/')
	kill -9 "$e"
	if wait_log "$TMP/log2" "event=engine_attach engine=1 ok=1" &&
	   kill -0 "$PID" 2>/dev/null &&
	   grep -q "event=child-died child=engine0 pid=$e signal=9" "$TMP/log2" &&
	   [ "$(dialogue "$PORT" 127.0.0.21)" = 451 ]; then
		ok "a dead engine is logged and replaced; the daemon serves on"
	else nok "a dead engine is logged and replaced; the daemon serves on" "$(tail -n 3 "$TMP/log2")"; fi
	kill "$PID"
	i=0
	while kill -0 "$PID" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
	wait "$PID"; rc=$?
	if [ "$rc" = 0 ]; then ok "SIGTERM after an engine restart: exit 0"
	else nok "SIGTERM after an engine restart: exit 0" "rc $rc: $(tail -n 3 "$TMP/log2")"; fi
else nok "second daemon starts" "$(tail -n 3 "$TMP/log2")"; fi
PID=

# started unprivileged: logs mode=unprivileged and works
# nobody must get through the (0700) temporary directory to its database
chmod 0711 "$TMP"; mkdir "$TMP/db3"; chown nobody "$TMP/db3"
PORT=$(free_port)
setpriv --reuid=nobody --regid=nogroup --clear-groups "$SPAMD" -d -p "$PORT" \
    --config-port 0 --db-dir "$TMP/db3" -S 0 -s 0 >"$TMP/log3" 2>&1 &
PID=$!
if wait_log "$TMP/log3" "event=privsep mode=unprivileged" &&
   wait_log "$TMP/log3" "event=writer_start engines"; then
	ok "unprivileged start logs mode=unprivileged"
	code=$(dialogue "$PORT" 127.0.0.22)
	if [ "$code" = 451 ]; then ok "unprivileged daemon answers with 451"
	else nok "unprivileged daemon answers with 451" "$code"; fi
	# no root needed for the filter: no_new_privs is set first
	e=$(grep 'event=sandbox mode=kill' "$TMP/log3" | sed 's/.*spamd\[\([0-9]*\)\].*/\1/')
	st=/proc/$e/status
	if [ -n "$e" ] && [ "$(awk '/^Seccomp:/ {print $2}' "$st")" = 2 ] &&
	   [ "$(awk '/^NoNewPrivs:/ {print $2}' "$st")" = 1 ]; then
		ok "unprivileged engine: seccomp filter and no_new_privs"
	else nok "unprivileged engine: seccomp filter and no_new_privs" "pid $e: $(grep -E 'Seccomp|NoNewPrivs' "$st" 2>/dev/null | tr '\n' ' ')"; fi
else nok "unprivileged start logs mode=unprivileged" "$(tail -3 "$TMP/log3")"; fi
kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=

# the database directory is given to the writer's user, but only the
# store's files in it, and never a directory everyone may write
mkdir "$TMP/dbg" "$TMP/shared"; chmod 1777 "$TMP/shared"
"$BUILD/greyctl" -D "$TMP/dbg" -a 192.0.2.200 >/dev/null 2>&1
echo keep >"$TMP/dbg/operator-notes"
PORT=$(free_port)
"$SPAMD" -d -p "$PORT" --config-port 0 --db-dir "$TMP/dbg" --user nobody \
    --chroot "$TMP/root" -S 0 -s 0 >"$TMP/logg" 2>&1 &
PID=$!
# (writer_start comes after the writer, as nobody, opened the store)
if wait_log "$TMP/logg" "event=writer_start engines"; then
	if [ "$(stat -c %U "$TMP/dbg/grey.db")" = nobody ] &&
	   [ "$(stat -c %U "$TMP/dbg/operator-notes")" = root ]; then
		ok "the store's files (made by greyctl as root) are given to the writer's user, other files not"
	else nok "the store's files (made by greyctl as root) are given to the writer's user, other files not" "$(ls -l "$TMP/dbg" | tr '\n' ' ')"; fi
else nok "spamd starts on a store greyctl made as root" "$(tail -n 3 "$TMP/logg")"; fi
kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=
out=$("$SPAMD" -d -p "$(free_port)" --config-port 0 --db-dir "$TMP/shared" \
    --user nobody --chroot "$TMP/root" 2>&1)
if [ $? != 0 ] && [ "$(stat -c %U "$TMP/shared")" = root ] &&
   echo "$out" | grep -q "writable by everyone"; then
	ok "a world-writable --db-dir is refused and not given away"
else nok "a world-writable --db-dir is refused and not given away" "$out"; fi

# spamd-setup run as root fetches and parses as nobody: an exec-method
# list whose program reports its parent, the fetcher, from /proc (issue 14)
mkdir "$TMP/setup"; chown nobody "$TMP/setup"
cat >"$TMP/lister.sh" <<'LISTER'
#!/bin/sh
cat /proc/$PPID/status >"$(dirname "$0")/setup/fetcher.status"
echo 192.0.2.77/32
LISTER
chmod 0755 "$TMP/lister.sh"
printf 'all:\\\n\t:probe:\n\nprobe:\\\n\t:black:\\\n\t:msg="probe":\\\n\t:method=exec:\\\n\t:file=%s:\n' \
    "$TMP/lister.sh" >"$TMP/setup.conf"
out=$("$BUILD/spamd-setup" -n -f "$TMP/setup.conf" -s "$TMP/setup/state" --user nobody 2>&1)
fs="$TMP/setup/fetcher.status"
case "$out" in
*probe*192.0.2.77*) ok "spamd-setup loads the list its unprivileged fetcher read" ;;
*) nok "spamd-setup loads the list its unprivileged fetcher read" "$out" ;;
esac
if [ -f "$fs" ]; then
	nuid=$(id -u nobody)
	if [ "$(awk '/^Uid:/ {print $2 "/" $3 "/" $4}' "$fs")" = "$nuid/$nuid/$nuid" ]; then
		ok "spamd-setup's fetcher runs as nobody"
	else nok "spamd-setup's fetcher runs as nobody" "$(grep Uid: "$fs")"; fi
	if [ "$(awk '/^CapEff:/ {print $2}' "$fs")" = 0000000000000000 ] &&
	   [ "$(awk '/^NoNewPrivs:/ {print $2}' "$fs")" = 1 ]; then
		ok "spamd-setup's fetcher: no capability, no_new_privs"
	else nok "spamd-setup's fetcher: no capability, no_new_privs" "$(grep -E 'CapEff|NoNewPrivs' "$fs" | tr '\n' ' ')"; fi
else nok "spamd-setup's fetcher reported its /proc status" "no $fs: $out"; fi

# -M through an nftables redirect: namespaces a (clients) and b (spamd)
NSA=spamdps$$a NSB=spamdps$$b
ns_cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && sleep 0.5
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	PID=
	ip netns del "$NSA" 2>/dev/null
	ip netns del "$NSB" 2>/dev/null
	rm -rf "$TMP"
}
trap ns_cleanup EXIT INT TERM
if ! command -v nft >/dev/null 2>&1 || ! ip netns add "$NSA" 2>/dev/null; then
	skip "-M through an nftables redirect" "no nft or no network namespaces"
	exit $failed
fi
ip netns add "$NSB"
ip link add "sps$$a" type veth peer name "sps$$b"
ip link set "sps$$a" netns "$NSA"
ip link set "sps$$b" netns "$NSB"
ip -n "$NSA" addr add 10.99.8.1/24 dev "sps$$a"
ip -n "$NSA" addr add 10.99.8.4/24 dev "sps$$a"
ip -n "$NSB" addr add 10.99.8.2/24 dev "sps$$b"
ip -n "$NSB" addr add 10.99.8.3/24 dev "sps$$b"
ip -n "$NSA" addr add fd99::8:1/64 dev "sps$$a" nodad
ip -n "$NSA" addr add fd99::8:4/64 dev "sps$$a" nodad
ip -n "$NSB" addr add fd99::8:2/64 dev "sps$$b" nodad
ip -n "$NSB" addr add fd99::8:3/64 dev "sps$$b" nodad
for n in "$NSA" "$NSB"; do ip -n "$n" link set lo up; done
ip -n "$NSA" link set "sps$$a" up
ip -n "$NSB" link set "sps$$b" up
printf 'table inet spamdps {\n chain pre {\n  type nat hook prerouting priority dstnat;\n  tcp dport 25 redirect to :8025\n }\n}\n' >"$TMP/redirect.nft"
if ! ip netns exec "$NSB" nft -f "$TMP/redirect.nft" 2>"$TMP/nft.err"; then
	nok "nftables redirect rule" "$(cat "$TMP/nft.err")"
	exit 1
fi

# mx_check FAMILY MAIN LOWMX CLIENT_TRAPPED CLIENT_GREY
mx_check() {
	rm -rf "$TMP/dbm"; mkdir "$TMP/dbm"
	ip netns exec "$NSB" "$SPAMD" -d -l 0.0.0.0 -l :: -p 8025 \
	    --config-port 0 --db-dir "$TMP/dbm" --user nobody \
	    --chroot "$TMP/root" -M "$3" --lowmx-grace 0 -S 0 -s 0 >"$TMP/logm" 2>&1 &
	PID=$!
	if ! wait_log "$TMP/logm" "event=writer_start engines"; then
		nok "$1: spamd in the namespace" "$(tail -3 "$TMP/logm")"
		kill "$PID"; wait "$PID" 2>/dev/null; PID=
		return
	fi
	i=0
	# the dialled address decides; the redirect delivers both to :8025
	for pair in "$3 $4" "$2 $5"; do
		set -- $pair
		ip netns exec "$NSA" python3 -c 'import smtplib,sys
for i in range(50):
    try:
        s=smtplib.SMTP(sys.argv[1],25,timeout=10,source_address=(sys.argv[2],0)); break
    except OSError:
        import time; time.sleep(0.1)
try: s.sendmail("a@example.org",["b@example.com"],"x")
except smtplib.SMTPDataError: pass' "$1" "$2" >/dev/null 2>&1
	done
	set -- "$FAM" "$MAIN" "$LOW" "$CT" "$CG"
	i=0
	while [ $i -lt 100 ] && ! "$BUILD/greyctl" -D "$TMP/dbm" | grep -q "^TRAPPED|$4|"; do
		sleep 0.1; i=$((i + 1))
	done
	if "$BUILD/greyctl" -D "$TMP/dbm" | grep -q "^TRAPPED|$4|" &&
	   grep -q "lowmx=1" "$TMP/logm"; then
		ok "$1: -M via redirect (SO_ORIGINAL_DST) traps the client of $3"
	else nok "$1: -M via redirect (SO_ORIGINAL_DST) traps the client of $3" \
	    "$("$BUILD/greyctl" -D "$TMP/dbm" | tr '\n' ' ')"; fi
	if "$BUILD/greyctl" -D "$TMP/dbm" | grep -q "^GREY|$5|" &&
	   ! "$BUILD/greyctl" -D "$TMP/dbm" | grep -q "^TRAPPED|$5|"; then
		ok "$1: a client of the main address $2 stays GREY"
	else nok "$1: a client of the main address $2 stays GREY" \
	    "$("$BUILD/greyctl" -D "$TMP/dbm" | tr '\n' ' ')"; fi
	kill "$PID"; wait "$PID" 2>/dev/null; PID=
}
FAM=IPv4 MAIN=10.99.8.2 LOW=10.99.8.3 CT=10.99.8.1 CG=10.99.8.4
mx_check "$FAM" "$MAIN" "$LOW" "$CT" "$CG"
FAM=IPv6 MAIN=fd99::8:2 LOW=fd99::8:3 CT=fd99::8:1 CG=fd99::8:4
mx_check "$FAM" "$MAIN" "$LOW" "$CT" "$CG"
exit $failed
