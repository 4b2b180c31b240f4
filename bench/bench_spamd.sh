#!/bin/sh
# bench_spamd.sh - figures for the spamd daemon under load from
# build/bench/loadgen (C, libevent, several processes, loopback only),
# each next to Postfix's smtp-sink measured the same way in the same run.
# Figures only, never pass/fail.
#
#  1. hold: HOLD_N stuttered connections (-S 90 -s 1) in one engine: daemon
#     RSS before/while holding -> bytes per held connection, and bytes/s
#     that every held connection still receives (about 1 per -s second).
#     Then BIG_N across BIG_W engines (-W). Baseline: smtp-sink holding
#     SINK_HOLD_N connections (it keeps them without stuttering).
#  2. connect: connections/s and banner p50/p99 (-S 0 -s 0), CONNECT_SECS
#     with CONNECT_CONC clients (saturated: the latency is mostly queueing),
#     then the banner latency with LAT_CONC clients. Baseline: smtp-sink,
#     same loadgen runs.
#  3. tuples: RCPTs recorded per second (-S 0 -s 0, TUPLES_CONC parallel
#     clients, TUPLES_K RCPTs per dialogue) on a fresh database, then
#     again once the database holds about GROW_N tuples. Baseline:
#     smtp-sink, whose dialogue differs: it accepts the RCPTs and the
#     message (354, body, 250, QUIT) and records nothing, so the ratio is
#     "greylisting cost against a server that only parses SMTP".
#
# Environment (defaults keep the whole run near 5 minutes):
#   HOLD_N (default: the highest -c the daemon accepts, less 34)
#   HOLD_SECS=20 BIG_N=100000 BIG_W=6 (BIG_N=0 skips)
#   SINK_HOLD_N=2000 CONNECT_SECS=5 CONNECT_CONC=64 TUPLES_SECS=10
#   TUPLES_CONC=64 TUPLES_K=5 GROW_N=1000000 GROW_MAX_SECS=120 LG_PROCS=2
#   LAT_CONC=2 (clients for the banner latency run)
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$top/build}
LG=$BUILD/bench/loadgen
SPAMD=$BUILD/spamd
GREYCTL=$BUILD/greyctl
HOLD_N=${HOLD_N:-}
HOLD_SECS=${HOLD_SECS:-20}
BIG_N=${BIG_N:-100000}
BIG_W=${BIG_W:-6}
SINK_HOLD_N=${SINK_HOLD_N:-2000}
CONNECT_SECS=${CONNECT_SECS:-5}
CONNECT_CONC=${CONNECT_CONC:-64}
TUPLES_SECS=${TUPLES_SECS:-10}
TUPLES_CONC=${TUPLES_CONC:-64}
TUPLES_K=${TUPLES_K:-5}
GROW_N=${GROW_N:-1000000}
GROW_MAX_SECS=${GROW_MAX_SECS:-120}
LAT_CONC=${LAT_CONC:-2}
LG_PROCS=${LG_PROCS:-2}
tmp=$(mktemp -d /tmp/bench_spamd.XXXXXX)
# spamd's writer (and spamd-setup's fetcher) run unprivileged: as
# root, let them search this directory (its files keep their modes)
[ "$(id -u)" = 0 ] && chmod 711 "$tmp"
pids=""

# cleanup - stop the servers this script started (by pid), remove tmp
cleanup() {
	for p in $pids; do kill -0 "$p" 2>/dev/null && stop_pid "$p"; done
	pids=""
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM HUP PIPE

say() { echo "bench_spamd: $*"; }

# field LINE KEY - the value of key=value in a loadgen line
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

# ratio A B - A/B with two decimals ("n/a" when B is 0 or empty)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a";
	else printf "%.3g\n", a / b }'; }

# free_port - a loopback port in 15000-15099 that nobody listens on
free_port() {
	i=0
	while [ $i -lt 50 ]; do
		p=$((15000 + $(od -An -N2 -tu2 /dev/urandom) % 100))
		if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
			echo "$p"; return 0
		fi
		i=$((i + 1))
	done
	return 1
}

# wait_banner PORT - poll (bounded, 15 s) until a banner arrives on PORT
wait_banner() {
	i=0
	while [ $i -lt 75 ]; do
		out=$("$LG" -m connect -p "$1" -c 1 -n 1 -t 2 -x 2 2>/dev/null)
		[ "$(field "$out" banners)" = 1 ] && return 0
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

# wait_listen PORT PID - poll (bounded, 15 s) until PID's daemon listens on
# PORT (a stuttered banner takes a minute, so no banner is awaited)
wait_listen() {
	i=0
	while [ $i -lt 75 ] && kill -0 "$2" 2>/dev/null; do
		ss -Htln "sport = :$1" 2>/dev/null | grep -q . && return 0
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

# start_spamd NAME ARGS... - start spamd on a free port; sets $port, $spid
start_spamd() {
	name=$1
	shift
	port=$(free_port) || return 1
	rm -rf "$tmp/db.$name"
	mkdir -p "$tmp/db.$name" "$tmp/empty"
	extra=""
	[ "$(id -u)" = 0 ] && extra="--user nobody --chroot $tmp/empty"
	# shellcheck disable=SC2086
	"$SPAMD" -d -l 127.0.0.1 -p "$port" --db-dir "$tmp/db.$name" \
	    --config-port 0 $extra "$@" >"$tmp/spamd.$name.err" 2>&1 &
	spid=$!
	pids="$pids $spid"
	if ! wait_listen "$port" "$spid"; then
		say "$name: spamd did not start: $(tail -n 3 \
		    "$tmp/spamd.$name.err" | tr '\n' ' ')"
		stop_pid "$spid"
		return 1
	fi
}

# start_sink ARGS... - start smtp-sink on a free port; sets $port, $kpid
start_sink() {
	port=$(free_port) || return 1
	u=""
	[ "$(id -u)" = 0 ] && u="-u postfix"
	# shellcheck disable=SC2086
	smtp-sink $u "$@" "127.0.0.1:$port" 4096 >/dev/null 2>"$tmp/sink.err" &
	kpid=$!
	pids="$pids $kpid"
	wait_banner "$port"
}

# stop_pid PID - SIGTERM, wait (bounded), SIGKILL
stop_pid() {
	kill "$1" 2>/dev/null
	i=0
	while [ $i -lt 50 ] && kill -0 "$1" 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# lg ARGS... - run loadgen, echo its lines (and keep them in $lgout)
lg() {
	lgout=$("$LG" "$@" 2>"$tmp/lg.err")
	echo "$lgout" | sed 's/^/  /'
	[ -s "$tmp/lg.err" ] && sed 's/^/  loadgen stderr: /' "$tmp/lg.err" |
	    head -n 5
	return 0
}

if [ ! -x "$SPAMD" ] || [ ! -x "$LG" ]; then
	say "skipped: needs $SPAMD and $LG (make bench builds them)"
	exit 0
fi
have_sink=1
command -v smtp-sink >/dev/null 2>&1 || have_sink=0
[ $have_sink = 0 ] && say "smtp-sink (postfix) missing: no baselines"
say "machine: $(nproc) cores, open-file limit $(ulimit -n);" \
    "loadgen and the server share the cores"

# --- 1. hold ---------------------------------------------------------------
# -c as high as the daemon accepts under the file limit
held_n=0
for c in 19984 19950 19900 19500 19000 18000 16000; do
	n=${HOLD_N:-$((c - 34))}
	[ "$n" -gt "$c" ] && n=$c
	if start_spamd hold -S 90 -s 1 -c "$c" --max-per-client 100000; then
		say "hold: spamd -S 90 -s 1 -c $c, $n connections," \
		    "${HOLD_SECS} s window"
		lg -m hold -p "$port" -n "$n" -t "$HOLD_SECS" -S 16000 \
		    -r "$spid"
		l1=$(echo "$lgout" | sed -n 1p) l2=$(echo "$lgout" | sed -n 2p)
		held_n=$(field "$l1" held)
		spamd_bpc=$(field "$l2" bytes_per_held_conn)
		say "hold: spamd held=$held_n of $n (-c $c)" \
		    "bytes_per_held_conn=$spamd_bpc" \
		    "engine_bytes_per_held_conn=$(field "$l2" \
		    top_bytes_per_held_conn)" \
		    "bytes_per_s_median=$(field "$l1" bps_median)" \
		    "bytes_per_s_min=$(field "$l1" bps_min)" \
		    "zero_bytes_in_window=$(field "$l1" zero_in_window)"
		stop_pid "$spid"
		break
	fi
done
[ "$held_n" = 0 ] && say "hold: spamd would not start with a -c near 20,000"

if [ "$BIG_N" -gt 0 ] 2>/dev/null; then
	if start_spamd big -S 90 -s 1 -W "$BIG_W" -c "$BIG_N" \
	    --max-per-client 100000; then
		say "hold: spamd -W $BIG_W -c $BIG_N, $BIG_N connections"
		lg -m hold -p "$port" -n "$BIG_N" -t "$HOLD_SECS" -S 60000 \
		    -O 120 -r "$spid"
		l1=$(echo "$lgout" | sed -n 1p) l2=$(echo "$lgout" | sed -n 2p)
		say "hold: spamd -W $BIG_W held=$(field "$l1" held) of $BIG_N" \
		    "bytes_per_held_conn=$(field "$l2" bytes_per_held_conn)" \
		    "bytes_per_s_median=$(field "$l1" bps_median)" \
		    "zero_bytes_in_window=$(field "$l1" zero_in_window)"
		stop_pid "$spid"
	fi
fi

if [ $have_sink = 1 ] && start_sink -m "$((SINK_HOLD_N + 100))"; then
	say "hold baseline: smtp-sink -m $((SINK_HOLD_N + 100))," \
	    "$SINK_HOLD_N connections (no stutter: banner at once)"
	lg -m hold -p "$port" -n "$SINK_HOLD_N" -t 5 -r "$kpid"
	l2=$(echo "$lgout" | sed -n 2p)
	sink_bpc=$(field "$l2" bytes_per_held_conn)
	say "hold: smtp-sink bytes_per_held_conn=$sink_bpc;" \
	    "spamd/smtp-sink memory ratio=$(ratio "$spamd_bpc" "$sink_bpc")" \
	    "(issue's references: greyd ~13 KB at most 600, endlessh ~110 B)"
	stop_pid "$kpid"
fi

# --- 2. connect ------------------------------------------------------------
# connect_runs - the saturated run and the latency run; sets $cr, $cl
connect_runs() {
	lg -m connect -p "$port" -c "$CONNECT_CONC" -P "$LG_PROCS" \
	    -t "$CONNECT_SECS" -S 16000
	cr=$lgout
	lg -m connect -p "$port" -c "$LAT_CONC" -P "$LG_PROCS" \
	    -t "$CONNECT_SECS" -S 16000
	cl=$lgout
}
sc="" sl=""
if start_spamd connect -S 0 -s 0 -c 5000 --max-per-client 100000; then
	say "connect: spamd -S 0 -s 0, $CONNECT_CONC then $LAT_CONC clients," \
	    "${CONNECT_SECS} s each"
	connect_runs
	sc=$cr sl=$cl
	stop_pid "$spid"
	say "connect: spamd conn_per_s=$(field "$sc" conn_per_s)" \
	    "(p99 $(field "$sc" banner_p99_us) us at $CONNECT_CONC clients);" \
	    "banner_p50_us=$(field "$sl" banner_p50_us)" \
	    "banner_p99_us=$(field "$sl" banner_p99_us) at $LAT_CONC clients"
fi
if [ $have_sink = 1 ] && start_sink -m 5000; then
	say "connect baseline: smtp-sink, same runs"
	connect_runs
	stop_pid "$kpid"
	say "connect: smtp-sink conn_per_s=$(field "$cr" conn_per_s);" \
	    "banner_p50_us=$(field "$cl" banner_p50_us)" \
	    "banner_p99_us=$(field "$cl" banner_p99_us) at $LAT_CONC clients;" \
	    "ratio spamd/smtp-sink conn_per_s=$(ratio "$(field "$sc" \
	    conn_per_s)" "$(field "$cr" conn_per_s)")" \
	    "banner_p99=$(ratio "$(field "$sl" banner_p99_us)" \
	    "$(field "$cl" banner_p99_us)")"
fi

# --- 3. tuples -------------------------------------------------------------
# count_grey NAME - GREY records committed in the database now
count_grey() {
	"$GREYCTL" -D "$tmp/db.$1" stats 2>/dev/null | tr ' \t' '\n\n' |
	    sed -n 's/^grey=//p' | head -n 1
}
# grey_settled NAME - the GREY count once it stops growing (bounded, 60 s;
# the writer may still be committing what the engine answered)
grey_settled() {
	prev=-1 i=0 g=0
	while [ $i -lt 60 ]; do
		g=$(count_grey "$1")
		g=${g:-0}
		[ "$g" = "$prev" ] && break
		prev=$g
		sleep 1
		i=$((i + 1))
	done
	echo "$g"
}
# dropped - tuples the engine dropped so far (its SIGUSR1 counters line)
dropped() {
	kill -USR1 "$spid" 2>/dev/null
	sleep 0.5
	grep 'event=stats engine=' "$tmp/spamd.tuples.err" | tail -n 1 |
	    tr ' ' '\n' | sed -n 's/^tuples_dropped=//p'
}
# tphase LABEL ARGS... - one tuples run: answered/s from loadgen, and
# recorded/s from the database (records committed over the run and the
# writer's catch-up, less the 1 s that shows the count settled)
tphase() {
	label=$1
	shift
	g0=$(grey_settled tuples)
	d0=$(dropped)
	t0=$(date +%s.%N)
	lg -m tuples -p "$port" -c "$TUPLES_CONC" -P "$LG_PROCS" \
	    -k "$TUPLES_K" -S 16000 "$@"
	g1=$(grey_settled tuples)
	t1=$(date +%s.%N)
	d1=$(dropped)
	rec=$((g1 - g0))
	recps=$(awk -v r="$rec" -v a="$t0" -v b="$t1" 'BEGIN {
	    d = b - a - 1; if (d <= 0) d = 1; printf "%.0f", r / d }')
	say "tuples: spamd $label answered_per_s=$(field "$lgout" \
	    tuples_per_s) dialogues_per_s=$(field "$lgout" dialogues_per_s)" \
	    "answered=$(field "$lgout" tuples) recorded=$rec" \
	    "recorded_per_s=$recps dropped=$(( ${d1:-0} - ${d0:-0} ))" \
	    "db_grey=$g1"
	phase_rate=$(field "$lgout" tuples_per_s)
	phase_rec=$recps
	phase_n=$(field "$lgout" tuples)
}
# --max-new-tuples at its highest: this measures the store's rate, not
# the cap; the three phases make about 80 new tuples per loadgen source
# address (16,000 of them), and a GROW_N above 3,000,000 would pass the
# default 200 an hour
if start_spamd tuples -S 0 -s 0 -c 5000 --max-per-client 100000 \
    --max-new-tuples 10000000; then
	say "tuples: spamd -S 0 -s 0, $TUPLES_CONC clients, $TUPLES_K RCPTs" \
	    "per dialogue; answered = RCPTs that got 250, recorded = new GREY" \
	    "records committed in the database"
	tphase fresh -t "$TUPLES_SECS" -i s1
	t1rate=$phase_rate t1rec=$phase_rec
	left=$((GROW_N - phase_n))
	if [ "$left" -gt 0 ]; then
		say "tuples: growing the database by about $left tuples" \
		    "(at most ${GROW_MAX_SECS} s)"
		tphase growing -t "$GROW_MAX_SECS" -i s2 \
		    -n "$(( (left + TUPLES_K - 1) / TUPLES_K ))"
	fi
	tphase grown -t "$TUPLES_SECS" -i s3
	t2rate=$phase_rate t2rec=$phase_rec
	stop_pid "$spid"
fi
if [ $have_sink = 1 ] && start_sink -m 5000; then
	say "tuples baseline: smtp-sink (accepts: 354, body, QUIT; records" \
	    "nothing)"
	lg -m tuples -p "$port" -c "$TUPLES_CONC" -P "$LG_PROCS" \
	    -k "$TUPLES_K" -t "$TUPLES_SECS" -S 16000
	kt=$lgout
	stop_pid "$kpid"
	k=$(field "$kt" tuples_per_s)
	say "tuples: smtp-sink rcpt_per_s=$k; ratio spamd/smtp-sink" \
	    "answered fresh=$(ratio "$t1rate" "$k") grown=$(ratio "$t2rate" \
	    "$k"), recorded fresh=$(ratio "$t1rec" "$k")" \
	    "grown=$(ratio "$t2rec" "$k")"
fi
exit 0
