#!/bin/sh
# bench_rcpt_flood.sh - what one client can make the daemon store: one
# connection pipelines FLOOD_N (default 50,000) RCPTs with distinct
# recipients (bench/rcpt_flood.py), then DATA. Figures: RCPTs answered
# 250 and 452, the time, GREY records created, and the bytes on disk
# (du of the database directory: all of it, and its data files alone -
# grey.db, expire.db and the Berkeley DB logs; the rest is the fixed
# environment, mostly the cache region reserved at open). Twice in the
# same run: the baseline with the caps off (the highest values the
# options allow: --max-rcpt 100000 --max-new-tuples 10000000 --min-free
# 0), then spamd's defaults (--max-rcpt 100, --max-new-tuples 200 an
# hour, --min-free 64), and the ratio baseline/defaults. Figures only,
# never pass/fail. Ports 15100-15199 on 127.0.0.1.
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$top/build}
SPAMD=$BUILD/spamd
GREYCTL=$BUILD/greyctl
FLOOD_N=${FLOOD_N:-50000}
tmp=$(mktemp -d /tmp/bench_rcpt_flood.XXXXXX)
# spamd's writer (and spamd-setup's fetcher) run unprivileged: as
# root, let them search this directory (its files keep their modes)
[ "$(id -u)" = 0 ] && chmod 711 "$tmp"
spid=""

say() { echo "bench_rcpt_flood: $*"; }

# stop_pid PID - SIGTERM, wait (bounded, 10 s), then SIGKILL
stop_pid() {
	kill "$1" 2>/dev/null
	i=0
	while [ $i -lt 100 ] && kill -0 "$1" 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

cleanup() {
	[ -n "$spid" ] && stop_pid "$spid"
	spid=""
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM HUP PIPE

# field LINE KEY - the value of key=value in a line
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

# ratio A B - A/B, three significant digits ("n/a" when B is 0 or empty)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a";
	else printf "%.3g\n", a / b }'; }

# free_port - a loopback port in 15100-15199 that nobody listens on
free_port() {
	i=0
	while [ $i -lt 50 ]; do
		p=$((15100 + $(od -An -N2 -tu2 /dev/urandom) % 100))
		if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
			echo "$p"; return 0
		fi
		i=$((i + 1))
	done
	return 1
}

# count_grey DB - GREY records committed in DB now
count_grey() {
	"$GREYCTL" -D "$1" stats 2>/dev/null | tr ' \t' '\n\n' |
	    sed -n 's/^grey=//p' | head -n 1
}

# grey_settled DB - the GREY count once it stops growing (bounded, 120 s)
grey_settled() {
	prev=-1 i=0 g=0
	while [ $i -lt 120 ]; do
		g=$(count_grey "$1")
		g=${g:-0}
		[ "$g" = "$prev" ] && break
		prev=$g
		sleep 1
		i=$((i + 1))
	done
	echo "$g"
}

# run NAME ARGS... - start spamd with ARGS, flood it, count and measure;
# sets $recs $db_kb $data_kb (empty when spamd did not start)
run() {
	name=$1
	shift
	recs="" db_kb="" data_kb=""
	port=$(free_port) || { say "$name: no free port"; return 1; }
	db=$tmp/db.$name
	mkdir -p "$db" "$tmp/empty"
	extra=""
	[ "$(id -u)" = 0 ] && extra="--user nobody --chroot $tmp/empty"
	# shellcheck disable=SC2086
	"$SPAMD" -d -S 0 -s 0 -l 127.0.0.1 -p "$port" --db-dir "$db" \
	    --config-port 0 $extra "$@" >"$tmp/spamd.$name.err" 2>&1 &
	spid=$!
	i=0
	while [ $i -lt 100 ] && ! ss -Htln "sport = :$port" | grep -q .; do
		sleep 0.1
		i=$((i + 1))
	done
	if ! kill -0 "$spid" 2>/dev/null; then
		say "$name: spamd did not start: $(tail -n 2 \
		    "$tmp/spamd.$name.err" | tr '\n' ' ')"
		spid=""
		return 1
	fi
	out=$(python3 "$top/bench/rcpt_flood.py" "$port" "$FLOOD_N" 2>&1)
	recs=$(grey_settled "$db")
	# stopped: every commit flushed, the files as they stay
	stop_pid "$spid"
	spid=""
	db_kb=$(du -sk "$db" | cut -f1)
	# shellcheck disable=SC2046
	data_kb=$(du -ck $(ls -d "$db"/grey.db "$db"/expire.db "$db"/log.* \
	    2>/dev/null) | tail -n 1 | cut -f1)
	say "$name: $(echo "$out" | tail -n 1) grey_records=$recs" \
	    "db_kb=$db_kb data_kb=$data_kb ($*)"
}

if [ ! -x "$SPAMD" ] || [ ! -x "$GREYCTL" ]; then
	say "skipped: needs $SPAMD and $GREYCTL (make)"
	exit 0
fi
say "one connection, $FLOOD_N pipelined RCPTs, then DATA; records and" \
    "bytes on disk after spamd stops"
run caps-off --max-rcpt 100000 --max-new-tuples 10000000 --min-free 0
b_recs=$recs b_db=$db_kb b_data=$data_kb
run defaults
if [ -n "$b_recs" ] && [ -n "$recs" ]; then
	say "ratio caps-off/defaults: records=$(ratio "$b_recs" "$recs")" \
	    "data_bytes=$(ratio "$b_data" "$data_kb")" \
	    "db_dir_bytes=$(ratio "$b_db" "$db_kb")" \
	    "(caps-off $b_recs records, $b_data KB of data; defaults $recs" \
	    "records, $data_kb KB)"
fi
