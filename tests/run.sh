#!/bin/sh
# run.sh - run a part of the test suite and print one summary line.
#
#   sh tests/run.sh unit|asan|integration|system|sanitize|valgrind|all|check
#
#   all       unit tests (plain and ASan+UBSan), integration, system
#   sanitize  the integration and system scripts again, with BUILD set to
#             the ASan+UBSan build (build/asan), so the daemon and tools
#             run under the sanitizers; scripts that run none of our
#             binaries (fuzz_smoke, manlint, package_deb) are not repeated
#   valgrind  every unit test under valgrind memcheck (tests/valgrind.supp);
#             VALGRIND_SKIP="test_a test_b" skips the named ones, saying why
#   check     all, then sanitize, then valgrind (make check)
#
# Unit tests are the cmocka programs in build/tests (and build/asan/tests,
# the same tests under ASan+UBSan), run with TAP output. Integration tests
# (tests/integration) and system tests (tests/system, root and network
# namespaces) are scripts that print TAP-like lines of their own:
#   ok - name          not ok - name: why          skip - name: why
# A script that exits non-zero without printing a "not ok" counts as one
# failure. The last line is "check: N passed, N failed, N skipped".
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
mode=${1:-all}
export TOP="$top" BUILD="${BUILD:-$top/build}"
export CMOCKA_MESSAGE_OUTPUT=TAP
log=$(mktemp -d /tmp/spamd-check.XXXXXX)
pass=0 fail=0 skip=0
failed_names=""

# tally FILE NAME - add a result file's ok / not ok / skip lines to the counts
tally() {
	p=$(grep -c '^ok ' "$1"); f=$(grep -c '^not ok ' "$1")
	s=$(grep -c '^skip ' "$1")
	if [ "$2" != 0 ] && [ "$f" = 0 ]; then
		f=1; echo "not ok - $3 exited with status $2" >>"$1"
	fi
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
	[ "$f" != 0 ] && failed_names="$failed_names $3"
	printf '%-44s %4d ok %3d failed %3d skipped\n' "$3" "$p" "$f" "$s"
	grep -E '^(not ok|skip) ' "$1" | sed 's/^/    /'
}

# run_unit DIR LABEL - run every cmocka program in DIR
run_unit() {
	for t in "$1"/test_*; do
		[ -x "$t" ] || continue
		out="$log/$(basename "$t").$2"
		timeout 600 "$t" >"$out" 2>&1
		tally "$out" $? "$2/$(basename "$t")"
	done
}

# run_scripts DIR [PREFIX] - run every test script in DIR; with PREFIX
# (the sanitize pass) only those that run our binaries
run_scripts() {
	for t in "$1"/*.sh "$1"/*.py; do
		[ -f "$t" ] || continue
		if [ -n "$2" ]; then
			case "$(basename "$t")" in
			fuzz_smoke.sh|manlint.sh|package_deb.sh) continue ;;
			esac
		fi
		out="$log/$2$(basename "$t")"
		case "$t" in
		*.py) timeout 900 python3 "$t" >"$out" 2>"$out.err" ;;
		*) timeout 900 sh "$t" >"$out" 2>"$out.err" ;;
		esac
		rc=$?
		tally "$out" $rc "$2$(basename "$1")/$(basename "$t")"
		if [ $rc != 0 ] || grep -q '^not ok ' "$out"; then
			tail -n 20 "$out.err" | sed 's/^/    stderr: /'
		fi
	done
}

# run_sanitize - integration and system scripts against build/asan
run_sanitize() {
	if [ ! -x "$top/build/asan/spamd" ]; then
		echo "not ok - sanitize: build/asan not built" >"$log/asan-build"
		tally "$log/asan-build" 1 "asan/build"
		return
	fi
	saved=$BUILD
	export BUILD="$top/build/asan"
	run_scripts tests/integration asan-
	run_scripts tests/system asan-
	export BUILD="$saved"
}

# run_valgrind - every unit test under valgrind memcheck: no error, no
# definite leak at exit
run_valgrind() {
	for t in build/tests/test_*; do
		[ -x "$t" ] || continue
		n=$(basename "$t")
		out="$log/$n.valgrind"
		if ! command -v valgrind >/dev/null 2>&1; then
			echo "skip - valgrind/$n: valgrind not installed" >"$out"
		elif echo " $VALGRIND_SKIP " | grep -q " $n "; then
			echo "skip - valgrind/$n: ${VALGRIND_WHY:-listed in VALGRIND_SKIP}" >"$out"
		else
			timeout 900 valgrind -q --error-exitcode=99 \
			    --leak-check=full --errors-for-leak-kinds=definite \
			    --suppressions=tests/valgrind.supp "$t" >"$out" 2>&1
			rc=$?
			if [ $rc = 0 ]; then
				echo "ok - valgrind/$n: no memcheck error" >>"$out"
			else
				echo "not ok - valgrind/$n: exit $rc (see $out)" >>"$out"
			fi
		fi
		tally "$out" 0 "valgrind/$n"
	done
}

case "$mode" in
unit) run_unit build/tests unit ;;
asan) run_unit build/asan/tests asan ;;
integration) run_scripts tests/integration ;;
system) run_scripts tests/system ;;
all)
	run_unit build/tests unit
	run_unit build/asan/tests asan
	run_scripts tests/integration
	run_scripts tests/system
	;;
sanitize) run_sanitize ;;
valgrind) run_valgrind ;;
check)
	run_unit build/tests unit
	run_unit build/asan/tests asan
	run_scripts tests/integration
	run_scripts tests/system
	run_sanitize
	run_valgrind
	;;
*) echo "usage: run.sh unit|asan|integration|system|sanitize|valgrind|all|check" >&2; exit 2 ;;
esac

[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "logs in $log"
echo "check: $pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
