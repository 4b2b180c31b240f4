#!/usr/bin/env python3
"""rt_engine_restart.py - red team: an engine that dies does not stop the
daemon (issue 14).

Before, any engine death stopped the whole daemon (event=child-died, then
event=exit status=1): one remote way to kill an engine was a remote way to
stop spamd. Now the master starts a successor for the dead engine alone
and the writer and the other engines keep serving. Checks:
  - -W 2, a list loaded through the config port, engine 0 killed with
    SIGKILL: the daemon and the writer live on (same pids), the writer
    attaches the successor, the successor gets the list (a listed client
    is tarpitted with the list's message on every connection, whichever
    engine takes it) and greylists others (451), and /metrics counts the
    restart;
  - with the real filter in kill mode, an engine that makes a call
    outside its allow-list (SPAMD_SANDBOX_SELFTEST=engine-uname, right
    after the filter is loaded) is logged with signal 31 and the call's
    number and name, restarted with back-off, and after 5 deaths in a
    minute the daemon gives up (event=engine-restart-limit, exit 1);
  - the writer's own filter (it runs as the spamd user): a refused call
    (SPAMD_SANDBOX_SELFTEST=writer-mount) is logged with its name and
    the writer restarted, up to the restart limit.
"""
import os
import re
import signal
import sys
import time
import urllib.request

TOP = os.environ.get("TOP") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "helpers"))
import fault_lib as fl  # noqa: E402

R = fl.Results()
PORTS = (15200, 15399)
VALGRIND = fl.under_valgrind()
SANDBOX = [] if VALGRIND else ["--seccomp", "kill"]


def engine_pids(d, idx):
    """pids that logged engine-start for engine idx, oldest first"""
    return [int(p) for p in re.findall(
        r"spamd\[(\d+)\]: event=engine-start engine=%d " % idx,
        d.logtext())]


def metric(port, name):
    """the value of an unlabelled metric line from /metrics, or None"""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                    timeout=fl.slow(10)) as r:
            text = r.read().decode()
    except OSError:
        return None
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


def killed_engine():
    hport = fl.pick_port("127.0.0.1", *PORTS)
    d = fl.Spamd("rt-restart", extra=SANDBOX + ["--http-listen",
                                                "127.0.0.1:%d" % hport],
                 workers=2, config_port=True, ports=PORTS)
    try:
        d.wait_started()
        ans = fl.ask(("127.0.0.1", d.cport),
                     'rt;"Go away %A";inet;1;127.0.0.9/32')
        R.check("list loads before the kill", ans.startswith("ok") and
                d.wait_log("tag=rt prefixes=1", fl.slow(10), 2), repr(ans))
        # a list loaded and then cleared is not given to a successor
        fl.ask(("127.0.0.1", d.cport), 'gone;"Gone";inet;1;127.0.0.8/32')
        fl.ask(("127.0.0.1", d.cport), 'gone;')
        gone_before = d.count("tag=gone ")
        old = engine_pids(d, 0)
        writer = d.writer_pid()
        if not R.check("engine 0 and the writer are found", old and writer,
                       d.log_tail(4)):
            return
        os.kill(old[-1], signal.SIGKILL)
        R.check("the writer attaches engine 0's successor",
                d.wait_log("event=engine_attach engine=1 ok=1", fl.slow(10)),
                d.log_tail(4))
        # the writer attaches at the fork; the engine logs its start
        # once it is set up (later, under valgrind)
        fl.wait_for(lambda: len(engine_pids(d, 0)) >= 2, fl.slow(10))
        new = engine_pids(d, 0)
        R.check("a new engine 0 started", len(new) == 2 and
                new[-1] != old[-1], "engine 0 pids %s" % new)
        R.check("the successor got the config port's list",
                d.wait_log("tag=rt prefixes=1", fl.slow(10), 3),
                "%d list-loaded lines" % d.count("tag=rt prefixes=1"))
        R.check("the successor did not get the list cleared before",
                d.count("tag=gone ") == gone_before,
                "%d tag=gone lines, %d before" % (d.count("tag=gone "),
                                                  gone_before))
        said = ["\n".join(fl.smtp_said(d.port, "127.0.0.9"))
                for _ in range(8)]
        R.check("8 connections of a listed client: each tarpitted with "
                "the message", all("450 Go away 127.0.0.9" in s
                                   for s in said),
                repr([s[-80:] for s in said if "Go away" not in s][:2]))
        R.check("an unlisted client is greylisted (451)",
                fl.try_dialogue(d.port, "127.0.0.20", "after") == 451)
        R.check("the daemon and the writer live on (same pids)",
                d.proc.poll() is None and d.writer_pid() == writer and
                "event=exit" not in d.logtext(), d.log_tail(4))
        R.check("the death is logged with its signal",
                "child=engine0 pid=%d signal=9" % old[-1] in d.logtext(),
                d.log_tail(6))
        R.check("/metrics counts the restart",
                metric(hport, "spamd_engine_restarts_total") == 1,
                "spamd_engine_restarts_total=%r" %
                metric(hport, "spamd_engine_restarts_total"))
        rc = d.stop()
        R.check("SIGTERM after a restart: exit 0", rc == 0, "status %s" % rc)
        fl.sanitizer_check(R, "no sanitizer report", [d.logtext()])
    finally:
        d.cleanup()


def selftest_log(name, hook):
    """a daemon started with SPAMD_SANDBOX_SELFTEST=hook (a call its
    filter refuses, right after loading it), waited for until it gives
    up (bounded); its log, or None (a skip line) under valgrind"""
    if VALGRIND:
        R.skip(name, "seccomp cannot run under valgrind (the wrapper "
               "sets SPAMD_SECCOMP=off)")
        return None, None
    os.environ["SPAMD_SANDBOX_SELFTEST"] = hook
    try:
        d = fl.Spamd("rt-" + hook, extra=SANDBOX, workers=1, ports=PORTS,
                     expect_sigsys=True)
    finally:
        del os.environ["SPAMD_SANDBOX_SELFTEST"]
    try:
        d.proc.wait(fl.slow(60))
    except Exception:
        pass
    return d, d.logtext()


def sigsys_loop():
    """an engine's refused call: named, restarted with back-off, and a
    crash loop gives up"""
    d, log = selftest_log("engine killed by its filter", "engine-uname")
    if d is None:
        return
    try:
        R.check("the filter's kill is logged with the call's name",
                re.search(r"event=child-died child=engine0 pid=\d+ "
                          r"signal=31 syscall=\d+ syscall_name=uname", log)
                is not None, d.log_tail(4))
        delays = re.findall(r"event=engine-restart engine=0 in_secs=(\d+)",
                            log)
        R.check("restarted with back-off: 0, 1, 2, 4 s", delays ==
                ["0", "1", "2", "4"], "in_secs %s" % delays)
        R.check("5 deaths in a minute: the daemon gives up and exits 1",
                "event=engine-restart-limit deaths=5" in log and
                d.proc.returncode == 1, "exit %s; %s" % (
                    d.proc.returncode, d.log_tail(3)))
    finally:
        d.cleanup()


def writer_filter():
    """the writer's own filter: a refused call (the test hook's mount)
    kills the writer, the master names the call and restarts the writer
    with new engines, and gives up after 5 restarts in 10 s"""
    d, log = selftest_log("writer killed by its filter", "writer-mount")
    if d is None:
        return
    try:
        R.check("the writer's filter is loaded (kill mode)",
                "event=sandbox proc=writer mode=kill" in log, d.log_tail(4))
        R.check("the writer's refused call is logged with its name",
                re.search(r"event=child-died child=writer pid=\d+ "
                          r"signal=31 syscall=\d+ syscall_name=mount", log)
                is not None, d.log_tail(4))
        R.check("the writer is restarted, then the daemon gives up",
                log.count("event=restart children=writer,engines") >= 1 and
                "event=restart-limit" in log and d.proc.returncode == 1,
                "exit %s; %s" % (d.proc.returncode, d.log_tail(3)))
    finally:
        d.cleanup()


def main():
    if not os.path.exists(fl.SPAMD):
        R.notok("spamd built", fl.SPAMD + " missing (make)")
        return 1
    killed_engine()
    sigsys_loop()
    writer_filter()
    return R.status()


if __name__ == "__main__":
    sys.exit(main())
