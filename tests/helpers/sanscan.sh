# sanscan.sh - sourced by the shell test scripts: san_scan, the one
# sanitizer-report check (the Python scripts have fault_lib's
# sanitizer_check). It prints a result only when $BUILD/spamd is the
# ASan+UBSan build: in the plain and valgrind passes no sanitizer runs,
# so the check could not fail there and would only inflate the count.

# san_asan - true when $BUILD/spamd is an ELF built with AddressSanitizer
san_asan() {
	[ -f "${BUILD:-build}/spamd" ] || return 1
	head -c 4 "${BUILD:-build}/spamd" | grep -q 'ELF' || return 1
	grep -q -a '__asan_init' "${BUILD:-build}/spamd"
}

# san_scan NAME FILE... - "ok - NAME" or "not ok - NAME: first reports"
# for the sanitizer reports in the files; nothing outside the ASan build
san_scan() {
	_n=$1; shift
	san_asan || return 0
	_bad=$(grep -h -E 'ERROR: AddressSanitizer|ERROR: LeakSanitizer: detected|runtime error:' "$@" 2>/dev/null | head -n 3 | tr '\n' '|')
	if [ -z "$_bad" ]; then echo "ok - $_n"
	else echo "not ok - $_n: $_bad"; fi
}
