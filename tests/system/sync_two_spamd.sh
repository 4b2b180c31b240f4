#!/bin/sh
# sync_two_spamd.sh - two spamd daemons syncing over the spamd sync
# protocol, each in a network namespace of its own, joined by a veth pair
# (A: 10.99.2.1, 10.99.2.3, fd99:2::1; B: 10.99.2.2, fd99:2::2). Each runs
# -y its own address and -Y the other's, with the same key file:
#   - a tuple greylisted on A appears in B's database;
#   - an IPv6 tuple greylisted on A appears in B's database;
#   - a client (10.99.2.3) that mails a spamtrap on A becomes TRAPPED on B,
#     and B tarpits it with the trapped list's message;
#   - with --sync-white on A, a host that passes on A is WHITE on B;
#   - B restarted with another key applies nothing and its hmac drop
#     counter (SIGUSR1 sync_counters line) rises;
#   - both restarted with -y interface / -Y interface:1 (multicast
#     224.0.1.240 on the veth): a tuple greylisted on A appears on B;
#   - a missing key file is a startup error naming the file.
# Root needed (skips otherwise). Namespaces and the veth are removed on
# exit, also on failure.
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$TOP/build}
SPAMD=$BUILD/spamd
GREYCTL=$BUILD/greyctl
failed=0
ok() { echo "ok - $1"; }
nok() { echo "not ok - $1: $2"; failed=1; }
skip() { echo "skip - $1: $2"; }

name="spamd sync between two namespaces"
if [ "$(id -u)" != 0 ]; then skip "$name" "needs root"; exit 0; fi
for b in "$SPAMD" "$GREYCTL"; do
	if [ ! -x "$b" ]; then nok "$name" "$b not built"; exit 1; fi
done
if ! command -v ip >/dev/null 2>&1; then nok "$name" "no ip(8) (tests/deps.sh installs iproute2)"; exit 1; fi

NA="syncA$$"
NB="syncB$$"
IFA="sya$$"
IFB="syb$$"
TMP=$(mktemp -d /tmp/sync_two_spamd.XXXXXX)
# spamd's writer (and spamd-setup's fetcher) run unprivileged: as
# root, let them search this directory (its files keep their modes)
[ "$(id -u)" = 0 ] && chmod 711 "$TMP"
PIDA=
PIDB=

# stop PID - SIGTERM one daemon we started, then wait for it (bounded)
stop() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || return 0
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1; i=$((i + 1))
	done
	kill -9 "$1" 2>/dev/null
	return 0
}

cleanup() {
	stop "$PIDA"
	stop "$PIDB"
	ip netns del "$NA" 2>/dev/null
	ip netns del "$NB" 2>/dev/null
	ip link del "$IFA" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

if ! ip netns add "$NA" || ! ip netns add "$NB" ||
   ! ip link add "$IFA" type veth peer name "$IFB" ||
   ! ip link set "$IFA" netns "$NA" || ! ip link set "$IFB" netns "$NB"; then
	# as root this is a broken test machine, not an absence
	nok "$name" "cannot make namespaces and a veth pair here"
	exit 1
fi
ip -n "$NA" addr add 10.99.2.1/24 dev "$IFA"
ip -n "$NA" addr add 10.99.2.3/24 dev "$IFA"
ip -n "$NA" addr add 10.99.2.4/24 dev "$IFA"
ip -n "$NA" addr add fd99:2::1/64 dev "$IFA" nodad
ip -n "$NB" addr add 10.99.2.2/24 dev "$IFB"
ip -n "$NB" addr add fd99:2::2/64 dev "$IFB" nodad
for n in "$NA" "$NB"; do ip -n "$n" link set lo up; done
ip -n "$NA" link set "$IFA" up
ip -n "$NB" link set "$IFB" up

mkdir "$TMP/empty"
head -c 64 /dev/urandom >"$TMP/key"
head -c 64 /dev/urandom >"$TMP/wrongkey"
chmod 600 "$TMP/key" "$TMP/wrongkey"	# a key others may read is refused
"$GREYCTL" -D "$TMP/dbA" -T -a trap@example.org >/dev/null

# start NS DB LOG EXTRA... - spamd -d in namespace NS; prints its pid
start() {
	ns=$1 db=$2 log=$3
	shift 3
	ip netns exec "$ns" "$SPAMD" -d -v -S 0 -s 0 -p 8025 --db-dir "$db" \
	    --chroot "$TMP/empty" --commit-window 50 "$@" >>"$log" 2>&1 &
	echo $!
}

# wait_log FILE TEXT - poll up to 10 s for TEXT (a grep -E pattern)
wait_log() {
	i=0
	while [ $i -lt 100 ]; do
		grep -Eq "$2" "$1" 2>/dev/null && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}

# wait_db DB TEXT - poll up to 10 s for a greyctl line starting with TEXT
wait_db() {
	i=0
	while [ $i -lt 100 ]; do
		"$GREYCTL" -D "$1" 2>/dev/null | grep -qF "$2" && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}

# dialogue NS DST SRC FROM TO - a dialogue up to DATA from SRC inside NS;
# prints every reply after DATA (one line) or the error
dialogue() {
	ip netns exec "$1" python3 -c '
import socket, sys, time
dst, src, frm, to = sys.argv[1:5]
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(20)
s.bind((src, 0))
s.connect((dst, 8025))
f = s.makefile("rb")
def reply():
    out = []
    while True:
        ln = f.readline()
        if not ln:
            return out
        out.append(ln.decode("latin-1").rstrip())
        if len(ln) >= 4 and ln[3:4] == b" ":
            return out
reply()
for cmd in ("HELO client.example.net", "MAIL FROM:<%s>" % frm,
            "RCPT TO:<%s>" % to, "DATA"):
    s.sendall((cmd + "\r\n").encode())
    r = reply()
if r and r[-1].startswith("354"):
    s.sendall(b"Subject: x\r\n\r\nbody\r\n.\r\n")
    rest = []
    end = time.monotonic() + 20
    while time.monotonic() < end:
        ln = f.readline()
        if not ln:
            break
        rest.append(ln.decode("latin-1").rstrip())
    r = rest
print(" | ".join(r))
' "$2" "$3" "$4" "$5" 2>&1
}

# counters PID LOG - SIGUSR1 until the writer logged a sync_counters line
# with a non-zero hmac drop count (bounded); 0 if it did
hmac_drops() {
	i=0
	while [ $i -lt 20 ]; do
		kill -USR1 "$1" 2>/dev/null
		sleep 0.5
		grep 'event=sync_counters' "$2" | grep -Eq 'dropped_hmac=[1-9]' &&
		    return 0
		i=$((i + 1))
	done
	return 1
}

# ---- a missing key file is a startup error (before any socket)
out=$("$SPAMD" -d -y 127.0.0.1 --sync-key "$TMP/nokey" 2>&1)
rc=$?
case "$rc:$out" in
1:*"sync key"*"$TMP/nokey"*"--sync-no-auth"*)
	ok "a missing key file stops the start, naming the file" ;;
*) nok "a missing key file stops the start, naming the file" "rc $rc: $out" ;;
esac

# ---- unicast, one key
PIDA=$(start "$NA" "$TMP/dbA" "$TMP/a.log" -l 10.99.2.1 -l fd99:2::1 \
    -y 10.99.2.1 -Y 10.99.2.2 --sync-key "$TMP/key" --pass-seconds 1 \
    --sync-white)
PIDB=$(start "$NB" "$TMP/dbB" "$TMP/b.log" -l 10.99.2.2 -l fd99:2::2 \
    -y 10.99.2.2 -Y 10.99.2.1 --sync-key "$TMP/key")
if ! wait_log "$TMP/a.log" "event=writer_start engines" ||
   ! wait_log "$TMP/b.log" "event=writer_start engines"; then
	nok "both daemons start with -y/-Y" "$(tail -n 3 "$TMP/a.log" "$TMP/b.log")"
	exit 1
fi
ok "both daemons start with -y/-Y and a key"

r=$(dialogue "$NA" 10.99.2.1 10.99.2.1 Alice@Example.org bob@example.com)
case "$r" in 451*) ok "tuple greylisted on A" ;;
*) nok "tuple greylisted on A" "after DATA: $r" ;; esac
if wait_db "$TMP/dbB" "GREY|10.99.2.1|client.example.net|alice@example.org|bob@example.com|"; then
	ok "A's tuple appears in B's database"
else
	nok "A's tuple appears in B's database" "$("$GREYCTL" -D "$TMP/dbB" 2>&1 | head -5)"
fi

r=$(dialogue "$NA" fd99:2::1 fd99:2::1 v6@example.org bob@example.com)
if wait_db "$TMP/dbB" "GREY|fd99:2::1|client.example.net|v6@example.org|bob@example.com|"; then
	ok "an IPv6 tuple syncs"
else
	nok "an IPv6 tuple syncs" "dialogue: $r; B: $("$GREYCTL" -D "$TMP/dbB" 2>&1 | head -5)"
fi

r=$(dialogue "$NA" 10.99.2.1 10.99.2.3 spam@example.net trap@example.org)
if wait_db "$TMP/dbA" "TRAPPED|10.99.2.3|" &&
   wait_db "$TMP/dbB" "TRAPPED|10.99.2.3|"; then
	ok "a host trapped on A becomes TRAPPED on B"
else
	nok "a host trapped on A becomes TRAPPED on B" "dialogue: $r; B: $("$GREYCTL" -D "$TMP/dbB" 2>&1 | head -5)"
fi
# B sends its engines the new trapped list within about a second
i=0
while [ $i -lt 10 ]; do
	r=$(dialogue "$NA" 10.99.2.2 10.99.2.3 spam@example.net x@example.com)
	case "$r" in *"450"*"10.99.2.3"*) break ;; esac
	sleep 0.5; i=$((i + 1))
done
case "$r" in
*"450"*"Your address 10.99.2.3 has mailed to spamtraps"*)
	ok "B tarpits the host trapped on A" ;;
*) nok "B tarpits the host trapped on A" "after DATA on B: $r" ;;
esac
if "$GREYCTL" -D "$TMP/dbA" | grep -q '^GREY|10.99.2.2|'; then
	nok "nothing bounces back" "A holds a GREY for B's address"
else
	ok "nothing bounces back"
fi

# --sync-white on A: a pass there (10.99.2.4 retrying past
# --pass-seconds 1; B keeps the default 25 minutes) makes it WHITE on B
i=0
while [ $i -lt 8 ]; do
	dialogue "$NA" 10.99.2.1 10.99.2.4 white@example.org bob@example.com \
	    >/dev/null
	"$GREYCTL" -D "$TMP/dbA" 10.99.2.4 2>/dev/null | grep -q '^WHITE|' &&
	    break
	sleep 0.6; i=$((i + 1))
done
if wait_db "$TMP/dbB" "WHITE|10.99.2.4|"; then
	ok "--sync-white: a pass on A is WHITE on B"
else
	nok "--sync-white: a pass on A is WHITE on B" "A: $("$GREYCTL" -D "$TMP/dbA" 10.99.2.4 2>&1 | head -3); B: $("$GREYCTL" -D "$TMP/dbB" 10.99.2.4 2>&1 | head -3)"
fi

# ---- B with the wrong key: nothing applied, hmac drops counted
stop "$PIDB"
PIDB=$(start "$NB" "$TMP/dbB" "$TMP/b2.log" -l 10.99.2.2 \
    -y 10.99.2.2 -Y 10.99.2.1 --sync-key "$TMP/wrongkey")
if ! wait_log "$TMP/b2.log" "event=writer_start engines"; then
	nok "B restarts with another key" "$(tail -n 3 "$TMP/b2.log")"
	exit 1
fi
r=$(dialogue "$NA" 10.99.2.1 10.99.2.1 wrongkey@example.org bob@example.com)
if hmac_drops "$PIDB" "$TMP/b2.log"; then
	ok "wrong key: B's hmac drop counter rises"
else
	nok "wrong key: B's hmac drop counter rises" "$(grep sync_counters "$TMP/b2.log" | tail -1)"
fi
if "$GREYCTL" -D "$TMP/dbB" | grep -q 'wrongkey@example.org'; then
	nok "wrong key: nothing applied" "B holds the tuple"
else
	ok "wrong key: nothing applied"
fi

# ---- multicast on the veth: -y interface, -Y interface:ttl
stop "$PIDA"
stop "$PIDB"
PIDA=$(start "$NA" "$TMP/dbA" "$TMP/a3.log" -l 10.99.2.1 \
    -y "$IFA" -Y "$IFA:1" --sync-key "$TMP/key")
PIDB=$(start "$NB" "$TMP/dbB" "$TMP/b3.log" -l 10.99.2.2 \
    -y "$IFB" -Y "$IFB:1" --sync-key "$TMP/key")
if ! wait_log "$TMP/a3.log" "event=writer_start engines" ||
   ! wait_log "$TMP/b3.log" "event=writer_start engines"; then
	nok "both daemons start with multicast sync" "$(tail -n 3 "$TMP/a3.log" "$TMP/b3.log")"
	exit 1
fi
r=$(dialogue "$NA" 10.99.2.1 10.99.2.1 mcast@example.org bob@example.com)
if wait_db "$TMP/dbB" "GREY|10.99.2.1|client.example.net|mcast@example.org|"; then
	ok "multicast: A's tuple appears in B's database"
else
	nok "multicast: A's tuple appears in B's database" "dialogue: $r; $(grep -E 'sync|warn' "$TMP/b3.log" | tail -3)"
fi
kill -USR1 "$PIDA"
if wait_log "$TMP/a3.log" "event=sync_counters .*dropped_own=[0-9]"; then
	ok "multicast: SIGUSR1 logs A's sync counters"
else
	nok "multicast: SIGUSR1 logs A's sync counters" "$(tail -n 3 "$TMP/a3.log")"
fi

# the daemons run in command substitutions' children, not ours: their
# exit status is in their last log line
kill "$PIDA" "$PIDB" 2>/dev/null
if wait_log "$TMP/a3.log" "event=exit status=0" &&
   wait_log "$TMP/b3.log" "event=exit status=0"; then
	ok "both daemons exit 0 on SIGTERM"
else
	nok "both daemons exit 0 on SIGTERM" "$(tail -1 "$TMP/a3.log") / $(tail -1 "$TMP/b3.log")"
fi
PIDA= PIDB=
. "$TOP/tests/helpers/sanscan.sh"
r=$(san_scan "no sanitizer reports" "$TMP"/*.log)
[ -n "$r" ] && echo "$r"
case "$r" in "not ok"*) failed=1 ;; esac
exit $failed
