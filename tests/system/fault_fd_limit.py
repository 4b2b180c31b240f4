#!/usr/bin/env python3
"""fault_fd_limit.py - file descriptors run out while idle clients pile up.

spamd starts under `ulimit -n 64` with the largest -c that limit allows
(48: spamd keeps 16 descriptors per engine for itself). Then the engine's
own limit is lowered further to 24 (prlimit on the running process, as
its user), so accept() meets EMFILE long before -c is reached. 150 idle
clients connect and say nothing. Checks: the engine logs the descriptor
shortage; the daemon and all its processes keep running; while saturated
it does not spin (CPU seconds of the whole process tree over 5 s of
saturation, from /proc/PID/stat utime+stime, stay under 1 s: a CPU-time
bound, not a wall-clock one); once the idle clients leave, a new client is
accepted and completes its dialogue (451). Ports 13000-13999 on
127.0.0.1; sources 127.15.x.y. Root is not needed.
"""
import os
import resource
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as F  # noqa: E402

R = F.Results()
LIMIT, ENGINE_LIMIT, IDLE = 64, 24, 150


def low_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def engine_pids(sp):
    """The engine processes: children that are not the writer."""
    w = sp.writer_pid()
    return [p for p in sp.children() if p != w]


def prlimit_as_owner(pid, n):
    """Lower pid's descriptor limit to n: directly, or else with the
    prlimit tool run as the process's own user (no CAP_SYS_RESOURCE)."""
    try:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (n, n))
        return True, ""
    except OSError as e:
        first = str(e)
    tool = shutil.which("prlimit")
    if tool is None:
        return False, first + "; no prlimit tool"
    st = os.stat("/proc/%d" % pid)

    def drop():
        if os.geteuid() == 0 and st.st_uid != 0:
            os.setgroups([])
            os.setresgid(st.st_gid, st.st_gid, st.st_gid)
            os.setresuid(st.st_uid, st.st_uid, st.st_uid)
    r = subprocess.run([tool, "--pid", str(pid), "--nofile=%d:%d" % (n, n)],
                       preexec_fn=drop, capture_output=True, text=True,
                       timeout=30)
    return r.returncode == 0, first + "; " + r.stderr.strip()[-200:]


def main():
    if not os.access(F.SPAMD, os.X_OK):
        R.skip("fd limit", "%s not built" % F.SPAMD)
        return 0
    sp = F.Spamd("fd", extra=["-c", str(LIMIT - 16)], preexec=low_limit)
    idle = []
    try:
        run(sp, idle)
    finally:
        for s in idle:
            s.close()
        sp.cleanup()
    return 1 if R.failed else 0


def run(sp, idle):
    if not R.check("spamd starts under ulimit -n %d with -c %d" %
                   (LIMIT, LIMIT - 16), sp.wait_ready(),
                   sp.logtext()[-400:]):
        return
    engines = F.wait_for(lambda: engine_pids(sp), 10)
    lowered = [prlimit_as_owner(p, ENGINE_LIMIT) for p in engines]
    # the owner (or root) may always lower a limit: a refusal is a fault
    R.check("engine's descriptor limit lowered to %d (prlimit)" %
            ENGINE_LIMIT, all(ok for ok, _ in lowered),
            "prlimit refused: %s" % lowered)
    pids_before = sorted(sp.tree())
    for i in range(IDLE):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind(("127.15.%d.%d" % (i // 250, i % 250 + 1), 0))
        try:
            s.connect(("127.0.0.1", sp.port))
        except BlockingIOError:
            pass
        idle.append(s)
    # saturated: the engine holds what its descriptors allow
    short = F.wait_for(lambda: any(k in sp.logtext() for k in (
        "EMFILE", "Too many open files", "descriptors")), 15, 0.1)
    R.check("the descriptor shortage is logged", short,
            "nothing about EMFILE in the log: %s" % sp.logtext()[-300:])
    time.sleep(1)
    c0 = sp.cpu_secs()
    time.sleep(5)
    used = sp.cpu_secs() - c0
    R.check("saturated for 5 s: the daemon used %.2f CPU seconds (bound "
            "1 s: it waits, it does not spin)" % used, used < 1.0,
            "%.2f CPU seconds" % used)
    alive = sp.proc.poll() is None and sorted(sp.tree()) == pids_before
    R.check("every spamd process still runs (no restart)", alive,
            "before %s after %s" % (pids_before, sorted(sp.tree())))
    for s in idle:
        s.close()
    del idle[:]
    code = F.wait_for(lambda: F.try_dialogue(
        sp.port, "127.15.9.1", "after-%d" % time.monotonic_ns(), 5) == 451,
        30, 0.2)
    R.check("once the idle clients left, a new client completes its "
            "dialogue (451)", code, sp.logtext()[-300:])
    rc = sp.stop()
    R.check("SIGTERM: exit status 0", rc == 0, "rc %s" % rc)


if __name__ == "__main__":
    sys.exit(main())
