#!/bin/sh
# bench_pass_latency.sh - how long from the RCPT that passes greylisting to
# the sender's address being in the nftables whitelist set (issue target:
# p99 under 1 s; OpenBSD spamd waits for its 60 s scan). Runs spamd with
# the nftables backend in a network namespace made here; 1,000 passes by
# default (PASSES=N). Needs root; prints a skip line otherwise.
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$top/build}
if [ "$(id -u)" != 0 ] || ! command -v nft >/dev/null 2>&1; then
	echo "bench_pass_latency: skip: needs root and nft"; exit 0
fi
NS=sp-passlat-$$
TMP=$(mktemp -d /tmp/bench-passlat.XXXXXX)
# spamd's writer (and spamd-setup's fetcher) run unprivileged: as
# root, let them search this directory (its files keep their modes)
[ "$(id -u)" = 0 ] && chmod 711 "$TMP"
chmod 755 "$TMP"
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && sleep 0.5
	for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
ip netns add "$NS" && ip -n "$NS" link set lo up || exit 1
ip netns exec "$NS" nft -f "$top/etc/spamd.nft" || exit 1
mkdir -p "$TMP/empty"
ip netns exec "$NS" "$BUILD/spamd" -d -l 127.0.0.1 -p 8025 -S 0 -s 0 \
    --pass-seconds 1 --db-dir "$TMP/db" --fw nftables --config-port 0 \
    --user nobody --chroot "$TMP/empty" -c 5000 --max-per-client 0 \
    >"$TMP/spamd.log" 2>&1 &
PID=$!
ip netns exec "$NS" python3 "$top/bench/pass_latency.py" "${PASSES:-1000}"
