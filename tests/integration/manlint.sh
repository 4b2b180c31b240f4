#!/bin/sh
# manlint.sh - every manual page is clean under mandoc -Tlint.
cd "$(dirname "$0")/../.." || exit 1
if ! command -v mandoc >/dev/null 2>&1; then
	echo "skip - man pages: mandoc not installed (make deps installs it)"
	exit 0
fi
n=0
for m in */*.[1-8]; do
	[ -f "$m" ] || continue
	n=$((n + 1))
	if out=$(mandoc -Tlint -W warning "$m" 2>&1) && [ -z "$out" ]; then
		echo "ok - mandoc -Tlint $m"
	else
		echo "not ok - mandoc -Tlint $m: $(echo "$out" | head -n 3)"
	fi
done
[ $n -gt 0 ] || echo "not ok - man pages: none found"
