#!/bin/sh
# bench_listeners.sh - the writer's CPU while 1,000 idle HTTP connections
# sit against --http-listen with the writer at its file limit (issue 14:
# before, accept() was retried in a loop: 93 % CPU and 386 MB of log in
# 40 s), against the idle writer of the same run. Prints CPU seconds and
# log lines over WINDOW seconds (default 10) and the ratio; never a
# pass/fail. Runs as any user (loopback only).
top=$(cd "$(dirname "$0")/.." && pwd)
export TOP="$top" BUILD="${BUILD:-$top/build}"
exec python3 - "${WINDOW:-10}" "${CONNS:-1000}" <<'PY'
import os, resource, socket, sys, time
sys.path.insert(0, os.path.join(os.environ["TOP"], "tests", "helpers"))
import fault_lib as fl

window, nconn = float(sys.argv[1]), int(sys.argv[2])


def lim():
    # below the HTTP cap (64), so the writer does run out of descriptors
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        x = f.read().rsplit(")", 1)[1].split()
    return (int(x[11]) + int(x[12])) / os.sysconf("SC_CLK_TCK")


def measure(d, pid):
    l0, c0 = len(d.logtext().splitlines()), cpu(pid)
    time.sleep(window)
    return cpu(pid) - c0, len(d.logtext().splitlines()) - l0


hp = fl.pick_port("127.0.0.1", 46400, 46699)
d = fl.Spamd("bench-listen", ports=(46400, 46699), preexec=lim,
             nobody=os.geteuid() == 0,
             extra=["-c", "20", "--http-listen", "127.0.0.1:%d" % hp])
conns = []
try:
    d.wait_started()
    fl.wait_for(lambda: d.writer_pid() is not None, 10)
    wp = d.writer_pid()
    base_cpu, base_lines = measure(d, wp)
    for i in range(nconn):
        s = socket.socket()
        try:
            s.bind(("127.0.%d.%d" % (2 + i // 250, 1 + i % 250), 0))
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", hp))
            conns.append(s)
        except OSError:
            s.close()
    time.sleep(1)
    load_cpu, load_lines = measure(d, wp)
    pauses = d.count("event=http_accept")
    print("bench_listeners: %d idle HTTP connections, writer limited to "
          "64 descriptors, %.0f s windows" % (len(conns), window))
    print("  idle writer:      cpu=%.2f s  log=%d lines" % (base_cpu,
                                                            base_lines))
    print("  at the file limit: cpu=%.2f s  log=%d lines  pauses=%d" % (
        load_cpu, load_lines, pauses))
    print("  ratio cpu=%.1fx (idle cpu floored at 0.01 s)  log +%d lines" % (
        load_cpu / max(base_cpu, 0.01), load_lines - base_lines))
finally:
    for s in conns:
        s.close()
    d.cleanup()
PY
