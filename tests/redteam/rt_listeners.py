#!/usr/bin/env python3
"""rt_listeners.py - every listener of the writer bounded (issue 14).

(a) slow-loris on --http-listen: connections sending one header byte
    every 2 s are closed at the whole-request deadline; past the caps
    (per address, in all) new ones are closed at once; /metrics from
    another address answers meanwhile and counts them.
(b) the file limit: with RLIMIT_NOFILE 64 for the daemon (below the HTTP cap), fill the HTTP
    port until accept fails; the writer's CPU seconds and log lines over
    5 s stay near a 5 s idle baseline of the same run (a pause, not a
    loop); afterwards greyctl stats answers and the config port loads.
(c) config port: an unreserved source port is refused (the list is not
    loaded), a reserved one loads; 0.0.0.0/0 and ::/0 are refused.
(d) "ok" only once every engine applied the list: with -W 2 a 65th list
    is accepted by the writer's parse but refused by the engines (64
    lists at most): the answer names the engine; with -W 4 the ok of a
    list arrives after all four list-loaded lines.
"""
import os
import re
import resource
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "helpers"))
import fault_lib as fl  # noqa: E402

R = fl.Results()
PORTS = (46100, 46399)


def is_binary(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


# the real sandbox, unless fl.SPAMD is run.sh's valgrind wrapper script
SANDBOX = ["--seccomp", "kill"] if is_binary(fl.SPAMD) else []


def http_get(port, path, src="127.0.0.1", timeout=10):
    """status line and body of GET path, or None"""
    try:
        s = socket.socket()
        s.settimeout(fl.slow(timeout))
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(("GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path).encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        return data.decode(errors="replace")
    except OSError:
        return None


def metric(text, name, listener):
    key = '%s{listener="%s"} ' % (name, listener)
    for line in (text or "").splitlines():
        if line.startswith(key):
            return int(line.split()[-1])
    return -1


def open_slow(port, n, srcs):
    """n connections, round-robin over the source addresses srcs, each
    having sent one header byte"""
    out = []
    for i in range(n):
        s = socket.socket()
        s.setblocking(True)
        s.settimeout(2)
        try:
            s.bind((srcs[i % len(srcs)], 0))
            s.connect(("127.0.0.1", port))
            s.send(b"G")
            out.append(s)
        except OSError:
            s.close()
    return out


def trickle(conns, secs):
    """one byte every 2 s on every connection for secs; the number still
    open at the end (a send or recv says closed)"""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        time.sleep(2)
        for s in conns:
            if s.fileno() < 0:
                continue
            try:
                s.send(b"E")
            except OSError:
                s.close()
    alive = 0
    for s in conns:
        if s.fileno() < 0:
            continue
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                s.close()
                continue
        except BlockingIOError:
            alive += 1
            continue
        except OSError:
            s.close()
            continue
        alive += 1
    return alive


def case_slowloris():
    hp = fl.pick_port("127.0.0.1", *PORTS)
    d = fl.Spamd("rt-listen-a", ports=PORTS, extra=SANDBOX +
                 ["--http-listen", "127.0.0.1:%d" % hp])
    conns = []
    try:
        d.wait_started()
        # one address: the per-address cap keeps room for others
        conns = open_slow(hp, 200, ["127.0.0.2"])
        time.sleep(1)
        m = http_get(hp, "/metrics")
        R.check("a: /metrics answers from another address during 200 "
                "slow-loris connections", m is not None and " 200 " in
                m.split("\r\n")[0], repr((m or "")[:80]))
        R.check("a: connections past the caps closed at once (counted)",
                metric(m, "spamd_listener_refused_total", "http") >= 150,
                "refused=%d" % metric(m, "spamd_listener_refused_total",
                                      "http"))
        alive = trickle(conns, 12)
        R.check("a: every slow-loris connection closed by the deadline",
                alive == 0, "%d of %d still open after 12 s" % (
                    alive, len(conns)))
        for s in conns:
            s.close()
        # many addresses: the global cap
        conns = open_slow(hp, 200, ["127.0.0.%d" % i for i in
                                    range(2, 22)])
        time.sleep(1)
        alive = trickle(conns, 12)
        m = http_get(hp, "/metrics")
        R.check("a: 200 slow-loris from 20 addresses closed (cap, "
                "deadline) and /metrics answers after", alive == 0 and
                m is not None and metric(m, "spamd_listener_timeouts_total",
                                         "http") >= 16 + 60,
                "alive=%d timeouts=%d" % (alive, metric(
                    m, "spamd_listener_timeouts_total", "http")))
        R.check("a: the deadline is logged", d.count("event=http_timeout")
                >= 16, d.log_tail(3))
    except Exception as e:  # noqa: BLE001
        R.notok("a: slow-loris", str(e))
    finally:
        for s in conns:
            s.close()
        finish(d, "a")


def finish(d, case):
    """stop d, check its log holds no sanitizer report, remove it"""
    d.stop()
    log = d.logtext()
    # (LeakSanitizer cannot read /proc in the chrooted engine: that
    # "fatal error" is no report; a leak or a memory error is)
    R.check("%s: no sanitizer report" % case,
            "ERROR: AddressSanitizer" not in log and "detected memory "
            "leaks" not in log and "runtime error" not in log, log[-300:])
    d.cleanup()


def writer_cpu(pid):
    tck = os.sysconf("SC_CLK_TCK")
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tck


def case_fdlimit():
    hp = fl.pick_port("127.0.0.1", *PORTS)

    def lim():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    # the control socket is on by default: <db-dir>/spamd.sock
    d = fl.Spamd("rt-listen-b", ports=PORTS, config_port=True,
                 preexec=lim, extra=SANDBOX + [
                     "-c", "20", "--http-listen", "127.0.0.1:%d" % hp])
    sock = os.path.join(d.db, "spamd.sock")
    conns = []
    try:
        d.wait_started()
        wp = None
        fl.wait_for(lambda: d.writer_pid() is not None, fl.slow(10))
        wp = d.writer_pid()
        if wp is None:
            R.notok("b: file limit", "no writer pid")
            return
        lines0 = len(d.logtext().splitlines())
        c0 = writer_cpu(wp)
        time.sleep(5)
        base_cpu = writer_cpu(wp) - c0
        base_lines = len(d.logtext().splitlines()) - lines0
        # the writer has 64 descriptors: 400 connections run it out;
        # from many addresses so the per-address cap does not stop them
        srcs = ["127.0.1.%d" % i for i in range(1, 60)]
        # (non-blocking: past the backlog a connect waits for minutes)
        for i in range(400):
            s = socket.socket()
            try:
                s.bind((srcs[i % len(srcs)], 0))
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", hp))
                conns.append(s)
            except OSError:
                s.close()
        # a burst on the control socket too
        for i in range(20):
            u = socket.socket(socket.AF_UNIX)
            u.setblocking(False)
            try:
                u.connect(sock)
                conns.append(u)
            except OSError:
                u.close()
        time.sleep(1)
        lines1 = len(d.logtext().splitlines())
        c1 = writer_cpu(wp)
        time.sleep(5)
        cpu = writer_cpu(wp) - c1
        grew = len(d.logtext().splitlines()) - lines1
        R.check("b: writer CPU at the file limit stays near idle "
                "(%.2f s vs %.2f s idle over 5 s)" % (cpu, base_cpu),
                cpu <= base_cpu * 3 + 0.5,
                "cpu=%.2f idle=%.2f" % (cpu, base_cpu))
        R.check("b: log at the file limit grows by at most a pause line "
                "a second per listener (%d lines vs %d idle)" % (
                    grew, base_lines),
                grew <= base_lines + 3 * 6 + 5, d.log_tail(3))
        R.check("b: the pause is logged",
                "event=http_accept" in d.logtext() and "pause=1" in
                d.logtext(), d.log_tail(3))
        for s in conns:
            s.close()
        conns = []
        time.sleep(fl.slow(2))
        r = subprocess.run([fl.GREYCTL, "-D", d.db, "stats"],
                           capture_output=True, text=True,
                           timeout=fl.slow(20))
        R.check("b: greyctl stats answers afterwards",
                "proc=writer" in r.stdout, (r.stdout + r.stderr)[-200:])
        ans = fl.ask(("127.0.0.1", d.cport), "rtb;\"x\";inet;1;192.0.2.0/24",
                     timeout=20, resv=True)
        R.check("b: the config port loads a list afterwards",
                ans.startswith("ok rtb 1"), repr(ans))
    except Exception as e:  # noqa: BLE001
        R.notok("b: file limit", str(e))
    finally:
        for s in conns:
            s.close()
        finish(d, "b")


def case_config():
    d = fl.Spamd("rt-listen-c", ports=PORTS, config_port=True,
                 extra=SANDBOX)
    try:
        d.wait_started()
        fl.wait_for(lambda: d.count("event=engine-start") >= 1, 10)
        line = "rtc;\"x\";inet;1;198.51.100.0/24"
        ans = fl.ask(("127.0.0.1", d.cport), line, resv=False)
        time.sleep(0.5)
        R.check("c: a list from an unreserved source port is refused",
                ans.startswith("error") and "unreserved" in ans and
                not re.search(r"event=list-loaded engine=\d+ tag=rtc ",
                              d.logtext()),
                repr(ans))
        R.check("c: the refusal is logged with the port",
                'error="unreserved source port"' in d.logtext(),
                d.log_tail(2))
        ans = fl.ask(("127.0.0.1", d.cport), line, resv=True)
        R.check("c: from a reserved source port it loads",
                ans.startswith("ok rtc 1"), repr(ans))
        for pfx, fam in (("0.0.0.0/0", "inet"), ("::/0", "inet6"),
                         ("::ffff:0:0/96", "inet6")):
            ans = fl.ask(("127.0.0.1", d.cport),
                         'rtall;"x";%s;1;%s' % (fam, pfx), resv=True)
            R.check("c: %s refused naming the list" % pfx,
                    ans.startswith("error rtall") and "every address" in
                    ans, repr(ans))
        R.check("c: no /0 list reached an engine",
                not re.search(r"event=list-loaded engine=\d+ tag=rtall ",
                              d.logtext()),
                d.log_tail(2))
    except Exception as e:  # noqa: BLE001
        R.notok("c: config port", str(e))
    finally:
        finish(d, "c")


def case_acks():
    d = fl.Spamd("rt-listen-d", ports=PORTS, config_port=True, workers=2,
                 extra=SANDBOX)
    try:
        d.wait_started()
        fl.wait_for(lambda: d.count("event=engine-start") >= 2, 10)
        for i in range(64):
            ans = fl.ask(("127.0.0.1", d.cport),
                         "rtd%d;\"x\";inet;1;10.%d.0.0/16" % (i, i))
            if not ans.startswith("ok"):
                R.notok("d: 64 lists load", repr(ans))
                return
        ans = fl.ask(("127.0.0.1", d.cport), "rtd64;\"x\";inet;1;10.64.0.0/16")
        R.check("d: a list the engines refuse (65th) is not answered ok, "
                "the answer names the engine", ans.startswith("error rtd64")
                and "engine" in ans and "too many lists" in ans, repr(ans))
    except Exception as e:  # noqa: BLE001
        R.notok("d: refused by engines", str(e))
    finally:
        finish(d, "d")
    d = fl.Spamd("rt-listen-d4", ports=PORTS, config_port=True, workers=4,
                 extra=SANDBOX)
    try:
        d.wait_started()
        fl.wait_for(lambda: d.count("event=engine-start") >= 4, 10)
        # a list big enough that applying it takes the engines a while
        pfx = ";".join("10.%d.%d.0/24" % (i >> 8, i & 255)
                       for i in range(60000))
        ans = fl.ask(("127.0.0.1", d.cport),
                     "rtbig;\"x\";inet;60000;" + pfx, timeout=60)
        loaded = d.count("event=list-loaded engine=") - d.logtext().count(
            "tag=spamd-greytrap")
        R.check("d: with -W 4 ok comes after all four list-loaded lines",
                ans.startswith("ok rtbig 60000") and loaded >= 4,
                "answer=%r list-loaded=%d" % (ans, loaded))
    except Exception as e:  # noqa: BLE001
        R.notok("d: -W 4", str(e))
    finally:
        finish(d, "d")


def main():
    if os.geteuid() != 0:
        R.skip("rt_listeners", "needs root (reserved ports)")
        return R.status()
    only = sys.argv[1:] or ["c", "d", "a", "b"]
    for k, f in (("c", case_config), ("d", case_acks),
                 ("a", case_slowloris), ("b", case_fdlimit)):
        if k in only:
            f()
    return R.status()


if __name__ == "__main__":
    sys.exit(main())
