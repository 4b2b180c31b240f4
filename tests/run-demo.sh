#!/bin/sh
# run-demo.sh - `make run`: spamd on 127.0.0.1:8025 in the foreground with
# a database in ./spamd-db, whitelisted addresses written to
# ./spamd-db/spamd-white.txt (the file firewall backend), a pass time of
# 60 s so a retry a minute later passes. Ctrl-C stops it.
#   PORT=8025 CONFIG_PORT=8026 sh tests/run-demo.sh
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$top/build}
port=${PORT:-8025}
cport=${CONFIG_PORT:-8026}
db=${SPAMD_DB:-$(pwd)/spamd-db}

if [ ! -x "$BUILD/spamd" ]; then
	echo "run-demo: $BUILD/spamd is not built (run make)" >&2
	exit 1
fi
# in_use PORT - true if something listens on 127.0.0.1:PORT
in_use() {
	if command -v ss >/dev/null 2>&1; then
		ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
	else
		python3 -c 'import socket,sys
s=socket.socket()
try: s.bind(("127.0.0.1",int(sys.argv[1])))
except OSError: sys.exit(0)
sys.exit(1)' "$1"
	fi
}
for p in "$port" "$cport"; do
	if in_use "$p"; then
		echo "run-demo: port $p on 127.0.0.1 is already taken;" \
		    "stop what uses it or pick others:" >&2
		echo "  PORT=18025 CONFIG_PORT=18026 make run" >&2
		exit 1
	fi
done
mkdir -p "$db" || exit 1
# As root, spamd's writer drops to an unprivileged user (nobody here, or
# _spamd when the package made it), which must reach the database; a
# home directory such as /root (0700) hides it: then the demo keeps its
# database under /var/tmp instead, and says so.
if [ "$(id -u)" = 0 ] && [ -z "$SPAMD_DB" ] &&
   ! setpriv --reuid=nobody --regid=nogroup --clear-groups \
       test -x "$(dirname "$db")" 2>/dev/null; then
	rmdir "$db" 2>/dev/null
	db=/var/tmp/spamd-demo-db
	mkdir -p "$db" || exit 1
	echo "run-demo: $(dirname "$(pwd)/x") is not reachable by the" \
	    "unprivileged writer; database in $db instead"
fi

cat <<MSG
spamd on 127.0.0.1:$port (database $db, foreground, Ctrl-C stops it).
Try a greylisted delivery with swaks:

  swaks --server 127.0.0.1:$port --to user@example.com

spamd answers slowly for 3 s (stutter), records the tuple and refuses
DATA with "451 Temporary failure, please try again later.". Look at it:

  $BUILD/greyctl -D $db

Send the same mail again after a minute: the tuple passes, greyctl shows
WHITE for 127.0.0.1 and $db/spamd-white.txt holds the address a
firewall would let through. Blacklists load over 127.0.0.1:$cport:

  printf 'demo;"Go away %%A";inet;1;127.0.0.1/32\n' | python3 -c 'import socket,sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.stdin.buffer.read()); s.shutdown(1); print(s.recv(200).decode())' $cport

(the engine answers "ok demo 1"; spamd-setup does this from spamd.conf;
this demo runs with --config-any-port, as the snippet is not root's).

MSG
exec "$BUILD/spamd" -d -v -l 127.0.0.1 -p "$port" --config-port "$cport" \
    --config-any-port \
    --db-dir "$db" --chroot "$db/empty" --fw file \
    --fw-file "$db/spamd-white.txt" --pass-seconds 60 -S 3 -s 1
