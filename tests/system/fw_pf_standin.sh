#!/bin/sh
# fw_pf_standin.sh - the pf firewall backend driven through fwctl against
# tests/system/pfctl-standin, a STAND-IN for pfctl (pf does not run on
# Linux): the argv of every pfctl run and the addresses on its stdin are
# checked, and a reconcile against a database repairs the table both
# ways. Needs no root (kept with the firewall system tests).
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$TOP/build}
FWCTL=$BUILD/tests/helpers/fwctl
STANDIN=$TOP/tests/system/pfctl-standin
if [ ! -x "$FWCTL" ]; then echo "not ok - fw_pf_standin: $FWCTL not built (make tests)"; exit 1; fi
TMP=$(mktemp -d /tmp/fw_pf.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM
export PFCTL_STANDIN_DIR=$TMP
unset PFCTL_STANDIN_FAIL
failed=0
ok() { echo "ok - $1"; }
nok() { echo "not ok - $1: $2"; failed=1; }
fwctl() { "$FWCTL" -b pf --pfctl "$STANDIN" "$@"; }

if fwctl list 2>"$TMP/err"; then nok "missing table error" "fwctl succeeded"
elif grep -qF 'pf table <spamd-white> is missing' "$TMP/err" && grep -qF 'table <spamd-white> persist' "$TMP/err"; then
	ok "missing table error names the table and the pf.conf line"
else nok "missing table error names the table and the pf.conf line" "$(cat "$TMP/err")"; fi
rm -f "$TMP/calls"

if fwctl --fw-create add 10.99.0.2 60 fd99::2 60 10.99.0.1 60 2>"$TMP/err" && fwctl del 10.99.0.2 10.99.0.9 2>>"$TMP/err"; then
	want="-q -t spamd-white -T show
-q -t spamd-white -T add -f -
-q -t spamd-white -T add -f -
-q -t spamd-white -T show
-q -t spamd-white -T delete -f -"
	if [ "$(cat "$TMP/calls")" = "$want" ]; then ok "pfctl argv: fixed, one run per batch"
	else nok "pfctl argv: fixed, one run per batch" "$(cat "$TMP/calls" | tr '\n' '|')"; fi
	if [ "$(cat "$TMP/stdin.3")" = "$(printf '10.99.0.1\n10.99.0.2\nfd99::2')" ] &&
	   [ "$(cat "$TMP/stdin.5")" = "$(printf '10.99.0.2\n10.99.0.9')" ]; then
		ok "pfctl stdin: the batch's addresses, one a line"
	else nok "pfctl stdin: the batch's addresses, one a line" "$(cat "$TMP"/stdin.* | tr '\n' '|')"; fi
else nok "pfctl add/delete" "$(cat "$TMP/err")"; fi

if [ "$(fwctl list | tr '\n' '|')" = "10.99.0.1 -1|fd99::2 -1|" ]; then ok "list through pfctl -T show"
else nok "list through pfctl -T show" "$(fwctl list 2>&1 | tr '\n' '|')"; fi

"$FWCTL" -D "$TMP/db" white 10.99.0.1 3600 && "$FWCTL" -D "$TMP/db" white 10.99.0.3 3600
out=$(fwctl -D "$TMP/db" reconcile 2>"$TMP/err")
if [ "$out" = "added=1 removed=1" ] && [ "$(cat "$TMP/table.spamd-white" | tr '\n' ' ')" = "10.99.0.1 10.99.0.3 " ]; then
	ok "reconcile repairs the pf table both ways"
else nok "reconcile repairs the pf table both ways" "$out $(cat "$TMP/err") $(cat "$TMP/table.spamd-white" | tr '\n' ' ')"; fi

if PFCTL_STANDIN_FAIL=1 fwctl add 10.99.0.4 60 2>"$TMP/err"; then nok "pfctl failure reported" "fwctl succeeded"
elif grep -q 'Operation not permitted' "$TMP/err"; then ok "pfctl failure carries pfctl's text"
else nok "pfctl failure carries pfctl's text" "$(cat "$TMP/err")"; fi
exit $failed
