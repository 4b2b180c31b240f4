#!/bin/sh
# bench_engine_restart.sh - an engine killed with SIGKILL while it holds
# CONNS (default 1,000) connections: seconds from the kill until a new
# client gets its banner again, against the seconds a client needs for
# its banner from the same daemon before the kill (the baseline of the
# same run). Before issue 14 any engine death stopped the daemon: there
# was no "again". Prints figures, never pass/fail. Loopback only.
top=$(cd "$(dirname "$0")/.." && pwd)
export TOP="$top" BUILD="${BUILD:-$top/build}"
exec python3 - "${CONNS:-1000}" <<'PY'
import os, re, signal, socket, sys, time
sys.path.insert(0, os.path.join(os.environ["TOP"], "tests", "helpers"))
import fault_lib as fl

nconn = int(sys.argv[1])


def banner_secs(port, limit=30.0):
    """seconds until a fresh connection reads its 220 banner (bounded)"""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            s = socket.create_connection(("127.0.0.1", port), 2)
            s.settimeout(2)
            if s.recv(4).startswith(b"220"):
                s.close()
                return time.monotonic() - t0
            s.close()
        except OSError:
            pass
        time.sleep(0.01)
    return None


d = fl.Spamd("bench-restart", workers=1, extra=["-c", str(nconn + 100)])
socks = []
try:
    d.wait_started()
    base = banner_secs(d.port)
    for i in range(nconn):
        s = socket.create_connection(("127.0.0.1", d.port), 5)
        socks.append(s)
    pids = re.findall(r"spamd\[(\d+)\]: event=engine-start engine=0 ",
                      d.logtext())
    os.kill(int(pids[-1]), signal.SIGKILL)
    again = banner_secs(d.port)
    print("engine_restart: held=%d banner_before_s=%.4f "
          "banner_after_kill_s=%s daemon_alive=%d" % (
              nconn, base, "%.4f" % again if again is not None else "none",
              d.proc.poll() is None))
    if again is not None and base > 0:
        print("engine_restart: ratio after_kill/before=%.1f" % (again / base))
finally:
    for s in socks:
        s.close()
    d.cleanup()
PY
