#!/bin/sh
# run.sh - run a part of the test suite and print one summary line.
#
#   sh tests/run.sh unit|asan|integration|system|redteam|sanitize|valgrind|vgscripts|all|check
#
#   all       unit tests (plain and ASan+UBSan), integration, system
#   sanitize  the integration and system scripts again, with BUILD set to
#             the ASan+UBSan build (build/asan), so the daemon and tools
#             run under the sanitizers; scripts that run none of our
#             binaries (fuzz_smoke, manlint, package_deb) are not repeated
#   valgrind  every unit test under valgrind memcheck (tests/valgrind.supp),
#             with GREY_TEST_SMALL=1 (test_greydb, test_sync: shorter loops);
#             VALGRIND_SKIP="test_a test_b" skips the named ones, saying why
#   vgscripts the integration and system scripts again with BUILD at a
#             valgrind wrapper tree (/tmp/spamd-vg.XXXXXX/build: spamd,
#             greyctl, spamd-setup, greylogd run under memcheck with one log
#             per process, forked children included; all else links to
#             build/) and SPAMD_TEST_SLOW=10 stretching their waits; after
#             each script one line: "ok - valgrind/SCRIPT: no memcheck error
#             in N processes" or "not ok" naming the program and its log.
#             The scripts in vg_slow (too slow there for make check's
#             budget; times below) print a skip line unless VG_ALL=1 (make
#             check-sanitize); VG_ONLY="a.py b.sh" runs just those
#   check     all, then sanitize, valgrind and vgscripts (make check)
#
# Unit tests are the cmocka programs in build/tests (and build/asan/tests,
# the same tests under ASan+UBSan), run with TAP output. Integration tests
# (tests/integration) and system tests (tests/system, root and network
# namespaces) are scripts that print TAP-like lines of their own:
#   ok - name          not ok - name: why          skip - name: why
# A script that exits non-zero without printing a "not ok" counts as one
# failure. The last lines are "checks: N distinct, ..." (each check once,
# whichever passes ran it, and how many results each pass gave) and
# "check: N passed, N failed, N skipped".
#
# On CI (CI=true; SPAMD_STRICT_SKIPS=1 does the same anywhere) a skip
# counts only when its line matches a reason in tests/skips.allowed;
# any other skip is a failure: a namespace, a package or a daemon that
# is missing there is a broken test machine or a broken test.
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
mode=${1:-all}
export TOP="$top" BUILD="${BUILD:-$top/build}"
export CMOCKA_MESSAGE_OUTPUT=TAP
log=$(mktemp -d /tmp/spamd-check.XXXXXX)
pass=0 fail=0 skip=0
failed_names="" vgroot=""
strict=0
if [ "${CI:-}" = true ] || [ "${SPAMD_STRICT_SKIPS:-0}" = 1 ]; then strict=1; fi
grep -v -E '^(#|$)' "$top/tests/skips.allowed" >"$log/skips.re"
: >"$log/results"

# pass_of NAME - which pass a tally label belongs to (for the checks line)
pass_of() {
	case "$1" in
	unit/*) echo unit ;; asan/*) echo asan ;; valgrind/*) echo valgrind ;;
	asan-*) echo asan-scripts ;; valgrind-*) echo valgrind-scripts ;;
	*) echo scripts ;;
	esac
}

# tally FILE STATUS NAME [SECS] - add a result file's ok / not ok / skip lines to the counts
tally() {
	p=$(grep -c '^ok ' "$1"); f=$(grep -c '^not ok ' "$1")
	s=$(grep -c '^skip ' "$1")
	if [ "$2" != 0 ] && [ "$f" = 0 ]; then
		f=1; echo "not ok - $3 exited with status $2" >>"$1"
	fi
	if [ "$strict" = 1 ] && [ "$s" != 0 ]; then
		grep '^skip ' "$1" | grep -v -E -f "$log/skips.re" |
		    sed 's/^skip - /not ok - skip not allowed on CI (tests\/skips.allowed): /' >"$1.bad"
		b=$(grep -c . "$1.bad")
		if [ "$b" != 0 ]; then
			grep '^skip ' "$1" | grep -E -f "$log/skips.re" >"$1.keep"
			grep -v '^skip ' "$1" >"$1.rest"
			cat "$1.rest" "$1.keep" "$1.bad" >"$1"
			s=$((s - b)); f=$((f + b))
		fi
	fi
	# one line a result: the pass, the label without its pass, the name
	# (the check's text without its number or its why)
	k=$(echo "$3" | sed -E 's,^(unit|asan|valgrind)/,,; s,^(asan|valgrind)-,,')
	grep -E '^(ok|not ok) ' "$1" | sed -E 's/^(not )?ok ([0-9]+ )?- //; s/: .*//' |
	    sed "s|^|$(pass_of "$3")	$k	|" >>"$log/results"
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
	[ "$f" != 0 ] && failed_names="$failed_names $3"
	printf '%-44s %4d ok %3d failed %3d skipped %5s s\n' "$3" "$p" "$f" "$s" "${4:--}"
	[ -n "$4" ] && echo "$4	$3" >>"$log/times"
	grep -E '^(not ok|skip) ' "$1" | sed 's/^/    /'
}

# run_unit DIR LABEL - run every cmocka program in DIR
run_unit() {
	for t in "$1"/test_*; do
		[ -x "$t" ] || continue
		out="$log/$(basename "$t").$2"
		start=$(date +%s)
		timeout 600 "$t" >"$out" 2>&1
		tally "$out" $? "$2/$(basename "$t")" $(($(date +%s) - start))
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
		start=$(date +%s)
		case "$t" in
		*.py) timeout 900 python3 "$t" >"$out" 2>"$out.err" ;;
		*) timeout 900 sh "$t" >"$out" 2>"$out.err" ;;
		esac
		rc=$?
		tally "$out" $rc "$2$(basename "$1")/$(basename "$t")" \
		    $(($(date +%s) - start))
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
	run_scripts tests/redteam asan-
	export BUILD="$saved"
}

# run_valgrind - every unit test under valgrind memcheck: no error, no
# definite leak at exit. GREY_TEST_SMALL=1 shrinks the loop counts of the
# slowest (test_greydb's 60,500-record expiry, test_sync's 200,000
# mutations) tenfold, every assertion kept; plain and ASan runs use the
# full sizes
run_valgrind() {
	for t in build/tests/test_*; do
		[ -x "$t" ] || continue
		n=$(basename "$t")
		out="$log/$n.valgrind"
		start=$(date +%s)
		if ! command -v valgrind >/dev/null 2>&1; then
			echo "skip - valgrind/$n: valgrind not installed" >"$out"
		elif echo " $VALGRIND_SKIP " | grep -q " $n "; then
			echo "skip - valgrind/$n: ${VALGRIND_WHY:-listed in VALGRIND_SKIP}" >"$out"
		else
			GREY_TEST_SMALL=1 timeout 900 valgrind -q --error-exitcode=99 \
			    --leak-check=full --errors-for-leak-kinds=definite \
			    --suppressions=tests/valgrind.supp "$t" >"$out" 2>&1
			rc=$?
			if [ $rc = 0 ]; then
				echo "ok - valgrind/$n: no memcheck error" >>"$out"
			else
				echo "not ok - valgrind/$n: exit $rc (see $out)" >>"$out"
			fi
		fi
		tally "$out" 0 "valgrind/$n" $(($(date +%s) - start))
	done
}

# vg_tree DIR - the wrapper tree that run_vgscripts points BUILD at:
# spamd, greyctl, spamd-setup and greylogd are sh wrappers that exec
# the build/ binary under valgrind memcheck, logging each process
# (forked children included, one file per pid) into DIR/cur, a symlink
# run_vgscripts moves to each script's own log directory; everything
# else (test helpers, loadgen, libraries) is a symlink into build/
vg_tree() {
	rm -rf "$1"; mkdir -p "$1"
	for f in "$top"/build/*; do
		n=$(basename "$f")
		case "$n" in
		asan|valgrind|spamd|greyctl|spamd-setup|greylogd) continue ;;
		esac
		ln -s "$f" "$1/$n"
	done
	for n in spamd greyctl spamd-setup greylogd; do
		cat >"$1/$n" <<EOW
#!/bin/sh
# generated by tests/run.sh (run_vgscripts): $n under valgrind memcheck.
# spamd's engines install a seccomp filter (--seccomp, default from
# SPAMD_SECCOMP). valgrind 3.19 has no handler for the seccomp(2) call
# (its log: "unhandled amd64-linux syscall: 317"), so libseccomp's
# seccomp_init fails and the engine exits; and a filter made for
# spamd's calls would refuse valgrind's own (its signal machinery, its
# log and leak check at exit) anyway. So under valgrind there is none:
# SPAMD_SECCOMP=off (an explicit --seccomp still wins).
SPAMD_SECCOMP=off; export SPAMD_SECCOMP
exec valgrind --error-exitcode=97 --vgdb=no --leak-check=full \\
    --show-leak-kinds=definite --errors-for-leak-kinds=definite \\
    --num-callers=30 --suppressions="$top/tests/valgrind.supp" \\
    --log-file="$1/cur/vg.%p.log" "$top/build/$n" "\$@"
EOW
		chmod 755 "$1/$n"
	done
}

# vg_scan DIR NAME - one result line from the valgrind logs in DIR: the
# ERROR SUMMARY of each process (errors and definite leaks); a process
# killed by SIGKILL writes none, its log is still searched for errors
vg_scan() {
	nproc=0 nerr=0 bad=""
	for f in "$1"/vg.*.log; do
		[ -f "$f" ] || continue
		nproc=$((nproc + 1))
		e=$(sed -n 's/.*ERROR SUMMARY: \([0-9][0-9]*\) errors.*/\1/p' "$f" | tail -n 1)
		if [ -z "$e" ]; then
			e=$(grep -cE '== (Invalid |Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap|[0-9,]+ bytes in [0-9,]+ blocks are definitely lost)' "$f")
		fi
		if [ "$e" != 0 ]; then
			nerr=$((nerr + e))
			prog=$(sed -n 's/^==[0-9]*== Command: \([^ ]*\).*/\1/p' "$f" | head -n 1)
			bad="$bad $e errors in $(basename "${prog:-?}") (see $f);"
		fi
	done
	if [ "$nerr" != 0 ]; then
		echo "not ok - valgrind/$2:${bad%;}"
	elif [ "$nproc" = 0 ]; then
		echo "skip - valgrind/$2: started none of spamd, greyctl, spamd-setup, greylogd (its test helpers run unwrapped)"
	else
		echo "ok - valgrind/$2: no memcheck error in $nproc processes"
	fi
}

# Scripts too slow under valgrind for make check's 20 minutes (2 cores),
# with their time there (measured on 2 busy cores): greyctl.py 250-275 s
# (150 greyctl runs), spamd_backpressure.py 110-450 s (30,000 RCPTs and
# greyctl dumps of them), fault_many_clients.py 95 s, spamd_dialogue.py
# 55 s, fault_writer_kill.py 54 s, greyctl_explain.py 40-55 s,
# fault_sync_flood.py 34 s (100,000 datagrams), spamd_verify.py 37 s,
# spamd_setup_spf.py 35 s, spamd_dnsbl.py 40 s, sync_two_spamd.sh 30 s;
# rt_listeners.py 69 s, greyctl_daemon.py 37 s (make check took 22 min
# from a clean build with them, 2026-12-07); cluster_mesh.py (28-55 s
# native with five to seven daemons at once; not timed under valgrind,
# whose 5-30x would cost minutes), cluster_catchup.py 372 s (12 s
# native: 100,000 records streamed to a slow reader, 20,000 caught up
# and repaired; 30 ok under valgrind); make check-sanitize
# (VG_ALL=1) runs them. The rest took 210 s there
# in a whole make check of 19 minutes before the last two joined them.
vg_slow="greyctl.py spamd_backpressure.py fault_many_clients.py
spamd_dialogue.py fault_writer_kill.py greyctl_explain.py
fault_sync_flood.py spamd_verify.py spamd_setup_spf.py spamd_dnsbl.py
sync_two_spamd.sh rt_listeners.py greyctl_daemon.py cluster_mesh.py
cluster_catchup.py"
# Scripts that run none of the wrapped programs (only test helpers from
# build/tests/helpers, which are not wrapped): nothing to see there.
vg_none="dnsbl.py greydb_concurrency.sh spamd_writer.py sync_peers.py
fw_ipset.sh fw_nftables.sh fw_pf_standin.sh"

# run_vgscripts DIR - the scripts of DIR again with BUILD at the valgrind
# wrapper tree, SPAMD_TEST_SLOW scaling their waits; after each, a
# valgrind/SCRIPT line from its processes' logs. Scripts in vg_slow
# are skipped with the reason unless VG_ALL=1 (make check-sanitize)
run_vgscripts() {
	if ! command -v valgrind >/dev/null 2>&1; then
		echo "skip - valgrind/$(basename "$1"): valgrind not installed" >"$log/vg-none"
		tally "$log/vg-none" 0 "valgrind/$(basename "$1")"
		return
	fi
	# its own directory, readable by all: spamd_privsep.sh and the
	# daemons' --user nobody children must reach the wrappers and logs
	if [ -z "$vgroot" ]; then
		vgroot=$(mktemp -d /tmp/spamd-vg.XXXXXX); chmod 755 "$vgroot"
		echo "valgrind wrappers and logs in $vgroot"
	fi
	vg="$vgroot/build"
	[ -x "$vg/spamd" ] || vg_tree "$vg"
	saved=$BUILD
	export BUILD="$vg"
	slow=${SPAMD_TEST_SLOW:-10}
	for t in "$1"/*.sh "$1"/*.py; do
		[ -f "$t" ] || continue
		n=$(basename "$t")
		out="$log/vg-$n"
		case "$n" in
		fuzz_smoke.sh|manlint.sh|package_deb.sh) continue ;;
		esac
		# VG_ONLY="a.py b.sh" runs only those (timing one script)
		if [ -n "$VG_ONLY" ] && ! echo " $VG_ONLY " | grep -q " $n "; then
			continue
		fi
		if echo " "$vg_none" " | grep -q " $n "; then
			echo "skip - valgrind/$n: runs none of spamd, greyctl, spamd-setup, greylogd (only test helpers, not wrapped)" >"$out"
			tally "$out" 0 "valgrind-$(basename "$1")/$n"
			continue
		fi
		if [ "${VG_ALL:-0}" != 1 ] && echo " "$vg_slow" " | grep -q " $n "; then
			echo "skip - valgrind/$n: too slow under valgrind for make check's time budget (make check-sanitize runs it)" >"$out"
			tally "$out" 0 "valgrind-$(basename "$1")/$n"
			continue
		fi
		# what these check cannot hold under valgrind at all
		why=""
		case "$n" in
		spamd_privsep.sh) why="checks the engines' seccomp filter, which valgrind 3.19 cannot run (no seccomp(2) handler; the wrappers set SPAMD_SECCOMP=off); chroot and privilege drop run under valgrind in every other script" ;;
		fault_fd_limit.py) why="checks spamd at exact file limits, and valgrind keeps 12 descriptors of the limit for itself" ;;
		esac
		if [ -n "$why" ]; then
			echo "skip - valgrind/$n: $why" >"$out"
			tally "$out" 0 "valgrind-$(basename "$1")/$n"
			continue
		fi
		d="$vgroot/logs/$n"
		mkdir -p "$d"; chmod 755 "$vgroot/logs"; chmod 1777 "$d"
		rm -f "$vg/cur"; ln -s "$d" "$vg/cur"
		start=$(date +%s)
		case "$t" in
		*.py) SPAMD_TEST_SLOW=$slow timeout 1800 python3 "$t" >"$out" 2>"$out.err" ;;
		*) SPAMD_TEST_SLOW=$slow timeout 1800 sh "$t" >"$out" 2>"$out.err" ;;
		esac
		rc=$?
		# a daemon's last child still exiting writes its leak summary last
		sleep 0.3
		vg_scan "$d" "$n" >>"$out"
		echo "# $n: $(($(date +%s) - start)) s under valgrind" >>"$out"
		tally "$out" $rc "valgrind-$(basename "$1")/$n" \
		    $(($(date +%s) - start))
		if [ $rc != 0 ] || grep -q '^not ok ' "$out"; then
			tail -n 20 "$out.err" | sed 's/^/    stderr: /'
		fi
		[ -n "$VG_TIMES" ] && echo "$n $(($(date +%s) - start))" >>"$VG_TIMES"
	done
	export BUILD="$saved"
}

case "$mode" in
unit) run_unit build/tests unit ;;
asan) run_unit build/asan/tests asan ;;
integration) run_scripts tests/integration ;;
system) run_scripts tests/system ;;
redteam) run_scripts tests/redteam ;;
all)
	run_unit build/tests unit
	run_unit build/asan/tests asan
	run_scripts tests/integration
	run_scripts tests/system
	run_scripts tests/redteam
	;;
sanitize) run_sanitize ;;
valgrind) run_valgrind ;;
vgscripts)
	run_vgscripts tests/integration
	run_vgscripts tests/system
	run_vgscripts tests/redteam
	;;
check)
	run_unit build/tests unit
	run_unit build/asan/tests asan
	run_scripts tests/integration
	run_scripts tests/system
	run_scripts tests/redteam
	run_sanitize
	run_valgrind
	run_vgscripts tests/integration
	run_vgscripts tests/system
	run_vgscripts tests/redteam
	;;
*) echo "usage: run.sh unit|asan|integration|system|redteam|sanitize|valgrind|vgscripts|all|check" >&2; exit 2 ;;
esac

[ -n "$failed_names" ] && echo "failed:$failed_names"
# where the time went: the ten slowest programs and scripts (wall seconds)
if [ -s "$log/times" ]; then
	echo "slowest: $(sort -rn "$log/times" | head -n 10 |
	    awk -F'\t' '{printf "%s%s %d s", (NR > 1 ? ", " : ""), $2, $1}')"
fi
echo "logs in $log"
# the distinct checks (label and name, whichever pass ran them) and the
# results each pass gave
d=$(cut -f2,3 "$log/results" | sort -u | grep -c .)
per=$(cut -f1 "$log/results" | sort | uniq -c | awk '{printf "%s%s %d", (NR > 1 ? ", " : ""), $2, $1}')
echo "checks: $d distinct; results per pass: ${per:-none}"
echo "check: $pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
