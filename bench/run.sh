#!/bin/sh
# run.sh - run every benchmark and print its figures (never pass/fail).
# Each bench/bench_*.c program prints its own figures and the ratio against
# a baseline it runs in the same process; bench/*.sh scripts (root, network
# namespaces) do the same for the daemon and the firewall (among them
# bench_rcpt_flood.sh: what one client's 50,000 RCPTs store with the caps
# off and with the defaults).
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
export TOP="$top" BUILD="${BUILD:-$top/build}"
for b in build/bench/bench_*; do
	[ -x "$b" ] || continue
	echo "== $(basename "$b")"
	timeout 1200 "$b" || echo "$(basename "$b"): exited with status $?"
done
for s in bench/*.sh; do
	[ "$s" = bench/run.sh ] && continue
	[ -f "$s" ] || continue
	echo "== $(basename "$s")"
	timeout 1200 sh "$s" || echo "$(basename "$s"): exited with status $?"
done
