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
# Prints one "ok - fuzz/NAME" or "not ok - fuzz/NAME" line per target.
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
for t in $targets; do
	src=tests/fuzz/fuzz_$t.c
	srcs=$(sed -n 's/.*fuzz-sources://p' "$src" | head -n 1)
	bin=$out/fuzz_$t
	# shellcheck disable=SC2086
	if ! clang $cflags $(pkg-config --cflags $pkgs) -o "$bin" "$src" $srcs \
	    $(pkg-config --libs $pkgs) -ldb -lpthread 2>"$out/$t.build.log"; then
		echo "not ok - fuzz/$t: build failed (see $out/$t.build.log)"
		sed 's/^/    /' "$out/$t.build.log" | head -n 20 >&2
		fail=1; continue
	fi
	scratch=$out/$t
	rm -rf "$scratch"; mkdir -p "$scratch/new"
	mkdir -p tests/fuzz/corpus/$t
	# -rss_limit_mb and -max_len bound memory and input size; -timeout
	# flags an input that takes over 10 s (a hang) as a finding.
	if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	    -max_len=65536 -print_final_stats=1 \
	    -artifact_prefix="$scratch/" "$scratch/new" tests/fuzz/corpus/$t \
	    </dev/null >"$scratch/log" 2>&1; then
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
