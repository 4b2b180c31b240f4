#!/bin/sh
# run.sh - build and run the libFuzzer targets (clang, ASan+UBSan).
#
#   sh tests/fuzz/run.sh [SECONDS] [TARGET...]
#
# Each tests/fuzz/fuzz_NAME.c names the sources it needs on a
# "fuzz-sources:" line; it is built with them and run over its seed corpus
# tests/fuzz/corpus/NAME, then for SECONDS (default $FUZZ_SECONDS or 60)
# of new inputs. New inputs go to a scratch directory, never into the
# repository. Any crash, leak or sanitizer report fails the run; the input
# is left in build/fuzz/NAME/ to be added to the corpus as a regression.
# Targets are built, then run, two at a time (FUZZ_JOBS). Prints one
# "ok - fuzz/NAME" or "not ok - fuzz/NAME" line per target, in order.
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
secs=${1:-${FUZZ_SECONDS:-60}}
[ $# -gt 0 ] && shift
out=build/fuzz
mkdir -p "$out"
cflags="-g -O1 -std=c11 -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
pkgs="libevent libbsd-overlay libcrypto zlib libcurl"
fail=0
total=0 ntargets=0
targets=$*
[ -z "$targets" ] && targets=$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')
if ! command -v clang >/dev/null 2>&1; then
	echo "skip - fuzz: clang not installed (make deps installs it)"
	exit 0
fi
# build_one NAME - compile target NAME; its status in $out/NAME.build.rc
build_one() {
	src=tests/fuzz/fuzz_$1.c
	srcs=$(sed -n 's/.*fuzz-sources://p' "$src" | head -n 1)
	# shellcheck disable=SC2086
	clang $cflags $(pkg-config --cflags $pkgs) -o "$out/fuzz_$1" "$src" \
	    $srcs $(pkg-config --libs $pkgs) -ldb -lpthread \
	    2>"$out/$1.build.log"
	echo $? >"$out/$1.build.rc"
}
# run_one NAME - the corpus and SECS of new inputs for a built target;
# its status in $out/NAME/rc
run_one() {
	scratch=$out/$1
	rm -rf "$scratch"; mkdir -p "$scratch/new"
	mkdir -p "tests/fuzz/corpus/$1"
	# -rss_limit_mb and -max_len bound memory and input size; -timeout
	# flags an input that takes over 10 s (a hang) as a finding.
	"$out/fuzz_$1" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	    -max_len=65536 -print_final_stats=1 \
	    -artifact_prefix="$scratch/" "$scratch/new" "tests/fuzz/corpus/$1" \
	    </dev/null >"$scratch/log" 2>&1
	echo $? >"$scratch/rc"
}
# pairs CMD NAME... - CMD for the names, FUZZ_JOBS (2) at a time: each
# build is one clang process and each run one libFuzzer process, and
# make check runs on 2 cores
pairs() {
	cmd=$1; shift
	while [ $# -gt 0 ]; do
		i=0
		while [ $i -lt "${FUZZ_JOBS:-2}" ] && [ $# -gt 0 ]; do
			"$cmd" "$1" &
			shift; i=$((i + 1))
		done
		wait
	done
}
# shellcheck disable=SC2086
pairs build_one $targets
built=""
for t in $targets; do
	if [ "$(cat "$out/$t.build.rc" 2>/dev/null)" != 0 ]; then
		echo "not ok - fuzz/$t: build failed (see $out/$t.build.log)"
		sed 's/^/    /' "$out/$t.build.log" | head -n 20 >&2
		fail=1
	else
		built="$built $t"
	fi
done
# shellcheck disable=SC2086
pairs run_one $built
for t in $built; do
	scratch=$out/$t
	if [ "$(cat "$scratch/rc" 2>/dev/null)" = 0 ]; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/log")
		echo "ok - fuzz/$t: ${runs:-?} inputs in ${secs}s, no finding"
		total=$((total + ${runs:-0})); ntargets=$((ntargets + 1))
	else
		echo "not ok - fuzz/$t: finding, input in $scratch/ (log $scratch/log)"
		grep -E 'ERROR|SUMMARY|runtime error' "$scratch/log" | head -n 5 >&2
		fail=1
	fi
done
# the figure for the closing note; '#' lines are not results
echo "# fuzz: $ntargets target(s) clean, $total inputs in all"
exit $fail
