#!/usr/bin/env python3
"""fault_many_clients.py - 10,000 half-open and silent clients plus 1,000
clients that never read, held at once against one engine.

spamd runs with -W 1 -c 12000. The test opens 5,000 silent connections
(connect, say nothing), 5,000 half-open dialogues (HELO, MAIL and half a
RCPT line without its end, then nothing) and 1,000 clients that send 64
KiB of pipelined NOOPs and never read a byte, spread over many 127.17.x.y
sources (8 per source, under --max-per-client). Checks: the engine holds
them all (its conns count), its memory grows by at most ~1 KiB per held
connection (VmRSS of the engine before and while holding, 1.25 KiB
allowed for allocator slack), normal clients still complete their dialogue
(451) meanwhile, no process died, and the engine's connection count falls
back once they all go. Ports 13000-13999 on 127.0.0.1. Root is not needed,
but the test process needs ~11,100 descriptors (skips below that).
"""
import os
import re
import resource
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as F  # noqa: E402

R = F.Results()
SILENT, HALF, NOREAD = 5000, 5000, 1000
TOTAL = SILENT + HALF + NOREAD
BUDGET_KIB = 1.25


def src(i):
    """8 connections per source address: below --max-per-client 10."""
    j = i // 8
    return "127.17.%d.%d" % (j // 250, j % 250 + 1)


def engine_pid(sp):
    w = sp.writer_pid()
    e = [p for p in sp.children() if p != w]
    return e[0] if len(e) == 1 else None


def sanitized(pid):
    """Whether pid runs with AddressSanitizer or under valgrind memcheck
    (their runtime is mapped)."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            maps = f.read()
            return "libasan" in maps or "vgpreload_memcheck" in maps
    except OSError:
        return False


def conns_now(sp):
    """The engine's conns= from its newest SIGUSR1 counters line."""
    os.kill(sp.pid, signal.SIGUSR1)
    time.sleep(0.5)
    m = re.findall(r"engine=0 conns=(\d+)", sp.logtext())
    return int(m[-1]) if m else -1


def open_all(sp, socks):
    half = (b"HELO half.example\r\nMAIL FROM:<h@example.org>\r\n"
            b"RCPT TO:<half-way")
    noread = b"NOOP\r\n" * (65536 // 6)
    for i in range(TOTAL):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        socks.append(s)
        s.settimeout(10)
        s.bind((src(i), 0))
        s.connect(("127.0.0.1", sp.port))
        if i < SILENT:
            continue
        s.setblocking(False)
        try:
            s.send(half if i < SILENT + HALF else noread)
        except BlockingIOError:
            pass


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < TOTAL + 200 and hard >= TOTAL + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < TOTAL + 200:
        R.skip("many clients", "descriptor limit below %d" % (TOTAL + 200))
        return 0
    if not os.access(F.SPAMD, os.X_OK):
        R.skip("many clients", "%s not built" % F.SPAMD)
        return 0
    sp = F.Spamd("many", extra=["-c", "12000"])
    socks = []
    try:
        run(sp, socks)
    finally:
        for s in socks:
            s.close()
        sp.cleanup()
    return 1 if R.failed else 0


def run(sp, socks):
    if not R.check("spamd starts with -c 12000", sp.wait_ready(),
                   sp.logtext()[-400:]):
        return
    ep = F.wait_for(lambda: engine_pid(sp), 10)
    # a few dialogues first, so the baseline has its buffers warm
    for i in range(5):
        F.try_dialogue(sp.port, "127.18.0.%d" % (i + 1), "warm-%d" % i)
    rss0 = F.rss_kib(ep)
    pids = sorted(sp.tree())
    t0 = time.monotonic()
    try:
        open_all(sp, socks)
    except OSError as e:
        R.notok("open %d connections" % TOTAL, "after %d: %s" %
                (len(socks), e))
        return
    held = F.wait_for(lambda: conns_now(sp) >= TOTAL, 60, 0.5)
    n = conns_now(sp)
    R.check("the engine holds all %d (conns=%d, opened in %.1f s)" %
            (TOTAL, n, time.monotonic() - t0), held, "conns=%d" % n)
    time.sleep(1)
    rss1 = F.rss_kib(ep)
    per = (rss1 - rss0) / TOTAL
    name = ("engine memory: %.2f KiB per held connection (RSS %d -> %d "
            "KiB; budget ~1 KiB, %.2f allowed)" % (per, rss0, rss1,
                                                   BUDGET_KIB))
    if sanitized(ep):
        # ASan's redzones and quarantine are not the daemon's memory
        R.skip(name, "sanitizer build or valgrind: the budget is for a "
               "normal build")
    else:
        R.check(name, per <= BUDGET_KIB, "%.2f KiB" % per)
    codes = [F.try_dialogue(sp.port, "127.18.1.%d" % (i + 1),
                            "normal-%d" % i, 15) for i in range(20)]
    R.check("meanwhile 20 normal clients complete their dialogue (451)",
            codes.count(451) == 20, str(codes))
    R.check("no process died", sp.proc.poll() is None and
            sorted(sp.tree()) == pids and
            "event=child-died" not in sp.logtext(),
            "%s -> %s" % (pids, sorted(sp.tree())))
    for s in socks:
        s.close()
    del socks[:]
    gone = F.wait_for(lambda: conns_now(sp) == 0, 60, 0.5)
    R.check("all of them gone: the engine's conns back to 0", gone,
            "conns=%d" % conns_now(sp))
    rc = sp.stop()
    R.check("SIGTERM: exit status 0", rc == 0, "rc %s" % rc)


if __name__ == "__main__":
    sys.exit(main())
