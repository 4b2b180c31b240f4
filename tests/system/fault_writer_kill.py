#!/usr/bin/env python3
"""fault_writer_kill.py - the database writer killed with SIGKILL under
tuple load, again and again (FAULT_KILLS, default 8: past the 5
restarts in 10 s the master allows, spaced so it never gives up; more
with FAULT_KILLS=20 for a longer soak).

spamd (-W 1, --commit-window 50) serves two client threads that run
dialogues with new tuples all the time. Each round kills the current
writer with SIGKILL; spamd must restart the writer and the engines by
itself (its listeners stay open, so clients wait in the backlog) and a new
client must then complete a dialogue (451 after DATA) within a bounded poll.
Rounds are spaced so the restart rate limit (5 in 10 s) is not reached.
At the end: the daemon is still the same process and logged one restart per
kill; every tuple the writers logged as recorded (event=new, logged after
the commit) is in the store (greyctl); SIGTERM stops it with status 0; and
db5.3_verify finds the database files clean. Last, a second daemon whose
writer is killed faster than the limit allows exits non-zero with
event=restart-limit. Ports 13000-13999 on 127.0.0.1; sources 127.13.x.y.
Root is not needed (as root the engines run as nobody).
"""
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as F  # noqa: E402

KILLS = int(os.environ.get("FAULT_KILLS", "8"))
SPACING = 2.1		# seconds between kills: 5 restarts take > 10 s
R = F.Results()


def norm(s):
    return s.strip().strip("<>").lower()


def loader(sp, tid, stop, stats):
    """Dialogues with two new tuples each until stop is set."""
    n = 0
    while not stop.is_set() and n < 100000:
        n += 1
        tag = "%d-%d" % (tid, n)
        src = "127.13.%d.%d" % (tid + 1, n % 250 + 1)
        try:
            code, _ = F.dialogue(sp.port, src, "h-%s.example" % tag,
                                 "f-%s@example.org" % tag,
                                 ["a-%s@example.com" % tag,
                                  "b-%s@example.com" % tag], timeout=5)
            stats["done"] += 1
            if code == 451:
                stats["451"] += 1
        except (OSError, ValueError):
            stats["errors"] += 1
            time.sleep(0.05)


def main():
    if not os.access(F.SPAMD, os.X_OK):
        R.skip("writer kill", "%s not built" % F.SPAMD)
        return 0
    sp = F.Spamd("wkill")
    try:
        return run(sp)
    finally:
        sp.cleanup()


def run(sp):
    if not sp.wait_ready():
        R.notok("spamd starts", sp.logtext()[-500:])
        return 1
    stop = threading.Event()
    stats = {"done": 0, "451": 0, "errors": 0}
    threads = [threading.Thread(target=loader, args=(sp, t, stop, stats),
                                daemon=True) for t in range(2)]
    for t in threads:
        t.start()
    recovered, times, lost_round = 0, [], None
    last_kill = 0.0
    killed = set()
    for k in range(KILLS):
        # load is flowing before each kill
        base = stats["done"]
        F.wait_for(lambda: stats["done"] >= base + 3, 10)
        # respect the restart limit (5 in 10 s)
        wait = last_kill + SPACING - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        # why not the pid alone: the killed writer stays a child until
        # reaped and its writer_start line is the newest until the next
        # writer logs its own; a kill of it would restart nothing
        wp = F.wait_for(lambda: (sp.writer_pid() if sp.writer_pid() not in
                                 killed else None), F.slow(10))
        if wp is None:
            lost_round = "round %d: no writer to kill" % k
            break
        os.kill(wp, signal.SIGKILL)
        killed.add(wp)
        last_kill = t0 = time.monotonic()
        # the master has restarted: a new writer logged writer_start
        # (the old engines may answer 451 until they are replaced, so a
        # 451 alone does not show it)
        if not F.wait_for(lambda: sp.writer_pid() not in killed | {None},
                          F.slow(20)):
            lost_round = "round %d: no new writer within 20 s" % k
            break
        # a new client completes a dialogue once spamd has restarted
        code = F.wait_for(lambda: F.try_dialogue(
            sp.port, "127.13.9.%d" % (k + 1), "probe-%d" % k, 5) == 451,
            20, 0.02)
        if not code:
            lost_round = "round %d: no 451 within 20 s after the kill" % k
            break
        times.append(time.monotonic() - t0)
        recovered += 1
    stop.set()
    for t in threads:
        t.join(15)
    R.check("%d writer kills under load: every time a new client got its "
            "451 again (max %.2f s, median %.2f s after the kill)" % (
                KILLS, max(times or [0]),
                sorted(times or [0])[len(times) // 2]),
            recovered == KILLS, lost_round or "")
    R.check("load ran throughout (%d dialogues, %d ended in 451, %d cut "
            "by the kills)" % (stats["done"], stats["451"], stats["errors"]),
            stats["451"] > KILLS, str(stats))
    alive = sp.proc.poll() is None
    restarts = sp.count("event=restart children=writer,engines")
    R.check("spamd stayed up and restarted writer and engines once per kill",
            alive and restarts == recovered,
            "alive=%s restarts=%d kills=%d" % (alive, restarts, recovered))
    log = sp.logtext()
    rc = sp.stop()
    R.check("SIGTERM after the kills: exit status 0", rc == 0, "rc %s" % rc)
    committed = set()
    for m in re.finditer(r"event=new ip=(\S+) helo=(\S+) from=(\S+) to=(\S+)",
                         log):
        committed.add((m.group(1), norm(m.group(2)), norm(m.group(3)),
                       norm(m.group(4))))
    dump = F.greyctl_dump(sp.db)
    if dump is None:
        R.notok("every recorded tuple is in the store", "greyctl failed")
    else:
        have = set((d[1], norm(d[2]), norm(d[3]), norm(d[4]))
                   for d in dump if d[0] == "GREY" and len(d) >= 5)
        missing = committed - have
        R.check("every tuple a writer recorded before its kill is in the "
                "store (%d recorded, %d GREY in the store)" % (
                    len(committed), len(have)),
                committed and not missing,
                "%d missing, e.g. %s" % (len(missing),
                                         sorted(missing)[:3]))
    v = F.db_verify(sp.db)
    if v is None:
        R.skip("db5.3_verify clean after the kills", "db5.3_verify missing")
    else:
        R.check("db5.3_verify clean after the kills", v[0], v[1][-300:])
    rate_limit()
    return 1 if R.failed else 0


def rate_limit():
    """A writer killed faster than 5 in 10 s: the daemon gives up."""
    sp = F.Spamd("wlimit")
    try:
        if not sp.wait_ready():
            R.notok("rate limit: spamd starts", sp.logtext()[-300:])
            return
        killed = set()
        deadline = time.monotonic() + 30
        while sp.proc.poll() is None and time.monotonic() < deadline:
            wp = sp.writer_pid()
            if wp is not None and wp not in killed:
                killed.add(wp)
                try:
                    os.kill(wp, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)
        rc = sp.proc.poll()
        R.check("writer killed %d times in a row: spamd exits non-zero "
                "with event=restart-limit" % len(killed),
                rc not in (None, 0) and
                sp.count("event=restart-limit") == 1,
                "rc %s, log: %s" % (rc, sp.logtext()[-300:]))
    finally:
        sp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
