#!/bin/sh
# bench_cluster.sh - the cluster's figures (issue 17): pass on A to E's
# firewall set under 1,000 and 20,000 tuples/s, catch-up of 1,000,000
# entries, one digest round with 1 % differing. Five spamd hosts in
# network namespaces (tests/system/cluster_mesh.py's mesh); see
# bench/cluster.py. PASSES=N (10-120, default 100), ENTRIES=N (default
# 1,000,000). Needs root and nft; prints a skip line otherwise. Bounded
# (about 3 minutes at the defaults); everything is removed on exit.
top=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" != 0 ] || ! command -v nft >/dev/null 2>&1; then
	echo "bench_cluster: skip: needs root and nft"; exit 0
fi
TOP=$top BUILD=${BUILD:-$top/build} exec python3 "$top/bench/cluster.py"
