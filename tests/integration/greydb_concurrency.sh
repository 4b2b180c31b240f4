#!/bin/sh
# greydb_concurrency.sh - the greydb store shared by several processes:
# two writers at once lose nothing, a readonly reader works meanwhile, and
# a writer killed with SIGKILL loses no commit that returned (recovery runs
# by itself on the next open, db5.3_verify finds the files clean).
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-$(cd "$here/../.." && pwd)/build}
W=$BUILD/tests/helpers/gdb_writer
tmp=$(mktemp -d /tmp/greydb_conc.XXXXXX)
pids=""
failed=0

# cleanup - kill the helpers this script started and remove the temp dir
cleanup() {
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# ok / notok - print one result line
ok() { echo "ok - $1"; }
notok() { echo "not ok - $1: $2"; failed=1; }

if [ ! -x "$W" ]; then
	echo "not ok - gdb_writer helper built: $W missing (make tests)"
	exit 1
fi

# 1. Two writers, 10,000 distinct records each, into one environment.
db=$tmp/conc
"$W" write "$db" alpha 10000 >"$tmp/a.out" 2>"$tmp/a.err" & pa=$!
"$W" write "$db" beta 10000 >"$tmp/b.out" 2>"$tmp/b.err" & pb=$!
pids="$pa $pb"
# A readonly reader while they write (bounded: at most 50 tries).
reads=0 readfail=0 i=0
while [ $i -lt 50 ] && kill -0 "$pa" 2>/dev/null; do
	i=$((i + 1))
	if [ -f "$db/grey.db" ] && [ -f "$db/expire.db" ]; then
		if "$W" stats "$db" >"$tmp/r.out" 2>"$tmp/r.err"; then
			reads=$((reads + 1))
		else
			readfail=$((readfail + 1))
		fi
	fi
	sleep 0.02
done
wait "$pa"; ra=$?
wait "$pb"; rb=$?
pids=""
if [ $ra = 0 ] && [ $rb = 0 ]; then
	ok "two concurrent writers finished"
else
	notok "two concurrent writers finished" \
	    "exit $ra/$rb: $(cat "$tmp/a.err" "$tmp/b.err" | head -3)"
fi
if [ $readfail = 0 ]; then
	ok "readonly open while writing ($reads reads)"
else
	notok "readonly open while writing" \
	    "$readfail failed: $(head -1 "$tmp/r.err")"
fi
ca=$("$W" check "$db" alpha 10000 2>&1 | tail -1)
cb=$("$W" check "$db" beta 10000 2>&1 | tail -1)
if [ "$ca" = "present=10000 missing=0" ] &&
    [ "$cb" = "present=10000 missing=0" ]; then
	ok "all 20,000 records present"
else
	notok "all 20,000 records present" "alpha: $ca; beta: $cb"
fi
st=$("$W" stats "$db" 2>&1)
if [ "$st" = "grey=20000 white=0 trapped=0 spamtrap=0" ]; then
	ok "stats count 20,000 tuples"
else
	notok "stats count 20,000 tuples" "$st"
fi

# 2. Two processes updating the same 500 tuples 20 times each: deadlocks
# happen and are retried; no increment is lost.
db=$tmp/contend
mkdir "$db"
"$W" seen "$db" 500 20 >/dev/null 2>"$tmp/s1.err" & p1=$!
"$W" seen "$db" 500 20 >/dev/null 2>"$tmp/s2.err" & p2=$!
pids="$p1 $p2"
wait "$p1"; r1=$?
wait "$p2"; r2=$?
pids=""
out=$("$W" seencheck "$db" 500 40 2>&1); rc=$?
if [ $r1 = 0 ] && [ $r2 = 0 ] && [ $rc = 0 ]; then
	ok "contended tuple updates: every bcount is 40 ($out)"
else
	notok "contended tuple updates" \
	    "exit $r1/$r2/$rc: $out $(head -2 "$tmp/s1.err" "$tmp/s2.err")"
fi

# 3. A process killed inside a transaction, holding locks on a tuple that
# a live process then needs: the live process's watchdog (failchk) aborts
# the dead transaction and the live one goes on (bounded: 30 s).
db=$tmp/dead
mkdir "$db"
"$W" seen "$db" 50 1 >/dev/null 2>&1
rm -f "$tmp/go"
"$W" seen "$db" 50 100 "$tmp/go" >"$tmp/live.out" 2>"$tmp/live.err" &
pl=$!
pids=$pl
i=0
while [ $i -lt 100 ] && ! grep -q opened "$tmp/live.out"; do
	sleep 0.1; i=$((i + 1))
done
"$W" diehold "$db" >/dev/null 2>&1
dh=$?
touch "$tmp/go"
i=0
while [ $i -lt 300 ] && kill -0 "$pl" 2>/dev/null; do
	sleep 0.1; i=$((i + 1))
done
if kill -0 "$pl" 2>/dev/null; then
	notok "live writer goes on after a process died holding locks" \
	    "still blocked after 30 s"
	kill -9 "$pl"
	wait "$pl" 2>/dev/null
else
	wait "$pl"; rl=$?
	out=$("$W" seencheck "$db" 50 101 2>&1); rc=$?
	if [ "$dh" = 137 ] && [ $rl = 0 ] && [ $rc = 0 ]; then
		ok "live writer goes on after a process died holding locks"
	else
		notok "live writer goes on after a process died holding locks" \
		    "diehold $dh, writer $rl, $out $(head -2 "$tmp/live.err")"
	fi
fi
pids=""
if [ -s "$tmp/live.err" ]; then
	notok "the library printed nothing" "$(head -2 "$tmp/live.err")"
else
	ok "the library printed nothing"
fi

# 4. A synchronous writer killed with SIGKILL in the middle.
db=$tmp/crash
: >"$tmp/keys"
"$W" write "$db" crash 1000000 sync print >"$tmp/keys" 2>"$tmp/c.err" &
pc=$!
pids=$pc
i=0
while [ $i -lt 300 ]; do
	n=$(wc -l <"$tmp/keys")
	[ "$n" -ge 300 ] && break
	kill -0 "$pc" 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
kill -9 "$pc" 2>/dev/null
wait "$pc" 2>/dev/null
pids=""
n=$(wc -l <"$tmp/keys")
if [ "$n" -ge 300 ]; then
	ok "writer committed $n keys before SIGKILL"
else
	notok "writer committed keys before SIGKILL" \
	    "only $n: $(head -3 "$tmp/c.err")"
fi
# Reopening (no create) runs recovery by itself; every printed key is there.
out=$("$W" checkfile "$db" "$tmp/keys" 2>&1); rc=$?
if [ $rc = 0 ]; then
	ok "every key printed before the kill is present ($out)"
else
	notok "every key printed before the kill is present" "$out"
fi
# The environment is usable for writing again after the recovery.
if "$W" write "$db" after 100 >/dev/null 2>"$tmp/w.err" &&
    [ "$("$W" check "$db" after 100 2>&1)" = "present=100 missing=0" ]; then
	ok "writable again after recovery"
else
	notok "writable again after recovery" "$(head -1 "$tmp/w.err")"
fi
if command -v db5.3_verify >/dev/null 2>&1; then
	if v=$(db5.3_verify -h "$db" grey.db expire.db 2>&1); then
		ok "db5.3_verify clean after crash and recovery"
	else
		notok "db5.3_verify clean after crash and recovery" \
		    "$(echo "$v" | head -3)"
	fi
else
	echo "skip - db5.3_verify: not installed"
fi
exit $failed
