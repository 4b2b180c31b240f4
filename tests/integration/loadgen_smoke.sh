#!/bin/sh
# loadgen_smoke.sh - a short run of the benchmark load generator
# (bench/loadgen.c) against Postfix's smtp-sink and against build/spamd:
# a few hundred connections in each mode, checking only correctness
# (every dialogue got its banner, its RCPT answers and 451 from spamd or
# 354/250 from smtp-sink, every held connection got its banner), never
# speed. Ports from 15100-15999; everything it starts is killed by pid.
here=$(cd "$(dirname "$0")" && pwd)
TOP=${TOP:-$(cd "$here/../.." && pwd)}
BUILD=${BUILD:-$TOP/build}
LG=$BUILD/bench/loadgen
SPAMD=$BUILD/spamd
tmp=$(mktemp -d /tmp/loadgen_smoke.XXXXXX)
# spamd's writer (and spamd-setup's fetcher) run unprivileged: as
# root, let them search this directory (its files keep their modes)
[ "$(id -u)" = 0 ] && chmod 711 "$tmp"
pids=""
failed=0

# cleanup - stop what this script started, remove the temp dir
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	# let spamd stop its writer and engine itself (bounded, 5 s)
	for p in $pids; do
		i=0
		while [ $i -lt 50 ] && kill -0 "$p" 2>/dev/null; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$p" 2>/dev/null
	done
	pids=""
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM HUP PIPE

ok() { echo "ok - $1"; }
notok() { echo "not ok - $1: $2"; failed=1; }
skip() { echo "skip - $1: $2"; }

# field LINE KEY - the value of key=value in a loadgen line
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

# free_port - a port in 15100-15999 nobody listens on now
free_port() {
	i=0
	while [ $i -lt 50 ]; do
		p=$((15100 + $(od -An -N2 -tu2 /dev/urandom) % 900))
		if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
			echo "$p"; return 0
		fi
		i=$((i + 1))
	done
	return 1
}

# wait_banner PORT - poll (bounded, 10 s) until a banner arrives on PORT
wait_banner() {
	i=0
	while [ $i -lt 50 ]; do
		out=$("$LG" -m connect -p "$1" -c 1 -n 1 -t 2 -x 2 2>/dev/null)
		[ "$(field "$out" banners)" = 1 ] && return 0
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

# expect NAME LINE KEY=VALUE... - every key must have its value
expect() {
	name=$1 line=$2
	shift 2
	for kv in "$@"; do
		k=${kv%%=*} v=${kv#*=}
		got=$(field "$line" "$k")
		if [ "$got" != "$v" ]; then
			notok "$name" "$k=$got, expected $v (${line#loadgen: })"
			return
		fi
	done
	ok "$name"
}

if [ ! -x "$LG" ] || [ "$TOP/bench/loadgen.c" -nt "$LG" ]; then
	# make check does not build bench programs: build this one
	make -s -C "$TOP" BUILD="$BUILD" "$BUILD/bench/loadgen" \
	    >"$tmp/make.out" 2>&1
fi
if [ ! -x "$LG" ]; then
	# a load generator that does not compile is a failure, not an absence
	for n in sink-tuples sink-connect spamd-tuples spamd-connect spamd-hold; do
		notok "loadgen $n" "$LG not built: $(tail -n 1 "$tmp/make.out")"
	done
	exit 1
fi

# usage errors are refused before any connection
if "$LG" -m tuples -a 192.0.2.1 -p 25 >/dev/null 2>"$tmp/e"; then
	notok "loadgen refuses a non-loopback destination" "exit 0"
elif grep -q "only 127.0.0.0/8" "$tmp/e"; then
	ok "loadgen refuses a non-loopback destination"
else
	notok "loadgen refuses a non-loopback destination" "$(cat "$tmp/e")"
fi

# 1. Postfix's smtp-sink accepts: DATA gets 354, the message 250, QUIT 221.
if command -v smtp-sink >/dev/null 2>&1; then
	port=$(free_port)
	u=""
	[ "$(id -u)" = 0 ] && u="-u postfix"
	# shellcheck disable=SC2086
	smtp-sink $u -m 1000 "127.0.0.1:$port" 100 >"$tmp/sink.out" 2>&1 &
	sink=$!
	pids="$pids $sink"
	if wait_banner "$port"; then
		out=$("$LG" -m tuples -p "$port" -c 20 -P 2 -k 3 -n 300 -t 60 \
		    2>"$tmp/lg.err")
		expect "loadgen sink-tuples: 300 dialogues, 900 RCPTs, 354 each" \
		    "$out" attempts=300 banners=300 tuples=900 dialogues=300 \
		    data_354=300 data_451=0 server_closed=300 errors=0 \
		    unexpected=0
		out=$("$LG" -m connect -p "$port" -c 10 -n 300 -t 60 \
		    2>"$tmp/lg.err")
		expect "loadgen sink-connect: 300 banners" "$out" \
		    attempts=300 banners=300 errors=0 unexpected=0
	else
		notok "loadgen sink-tuples" "smtp-sink gave no banner on $port"
	fi
	kill "$sink" 2>/dev/null
else
	skip "loadgen sink-tuples" "smtp-sink (postfix) not installed"
fi

# 2. spamd greylists: every dialogue ends in 451 and the server closes.
if [ ! -x "$SPAMD" ]; then
	for n in spamd-tuples spamd-connect spamd-hold; do
		skip "loadgen $n" "$SPAMD not built"
	done
	[ $failed = 0 ]
	exit
fi
port=$(free_port)
mkdir -p "$tmp/db" "$tmp/empty"
extra=""
[ "$(id -u)" = 0 ] && extra="--user nobody --chroot $tmp/empty"
# shellcheck disable=SC2086
"$SPAMD" -d -S 0 -s 0 -c 2000 -l 127.0.0.1 -p "$port" --db-dir "$tmp/db" \
    --config-port 0 $extra >"$tmp/spamd.err" 2>&1 &
spamd=$!
pids="$pids $spamd"
if ! wait_banner "$port"; then
	why=$(tail -n 2 "$tmp/spamd.err" | tr '\n' ' ')
	notok "loadgen spamd-tuples" "spamd gave no banner on $port: $why"
	exit 1
fi
out=$("$LG" -m tuples -p "$port" -c 20 -P 2 -k 3 -n 300 -t 60 2>"$tmp/lg.err")
expect "loadgen spamd-tuples: 300 dialogues, 900 RCPTs, 451 each" "$out" \
    attempts=300 banners=300 tuples=900 dialogues=300 data_451=300 \
    data_354=0 server_closed=300 errors=0 unexpected=0
out=$("$LG" -m connect -p "$port" -c 10 -n 300 -t 60 2>"$tmp/lg.err")
expect "loadgen spamd-connect: 300 banners" "$out" \
    attempts=300 banners=300 errors=0 unexpected=0
out=$("$LG" -m hold -p "$port" -n 200 -t 1 -O 20 -r "$spamd" 2>"$tmp/lg.err" |
    head -n 1)
expect "loadgen spamd-hold: 200 connections held with their banner" "$out" \
    connected=200 held=200 closed=0 errors=0
kill -0 "$spamd" 2>/dev/null || notok "spamd alive after the load" "gone"
[ $failed = 0 ]
