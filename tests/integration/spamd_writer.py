#!/usr/bin/env python3
"""spamd_writer.py - the writer process (grey_main) driven without the
engine through tests/helpers/grey_drive: greylisting NEW -> GREY -> PASSED
-> WHITE, spamtraps, allowed domains, -M (lowmx), the trapped list sent to
every engine (and parsed by bl_parse), the file firewall backend, the
config port, network grouping, expiry, signals, and malformed frames from
an engine (that engine's socket is closed, the others go on).

Prints one line per check (ok / not ok / skip); exits 1 if a check failed.
Binaries from $BUILD (default TOP/build). Config ports from 14000-14999.
"""
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOP = os.environ.get("TOP") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD") or os.path.join(TOP, "build")
DRIVE = os.path.join(BUILD, "tests", "helpers", "grey_drive")
failed = False


def ok(name):
    print("ok - " + name, flush=True)


def notok(name, why):
    global failed
    failed = True
    print("not ok - %s: %s" % (name, why), flush=True)


def check(cond, name, why=""):
    """print ok or not ok for one check; returns cond"""
    if cond:
        ok(name)
    else:
        notok(name, why or "condition false")
    return cond


class Drive:
    """one grey_drive process: commands in, output lines (up to '.') out"""

    def __init__(self, tmp, name, args):
        self.log = os.path.join(tmp, name + ".log")
        self.errf = open(self.log, "w")
        self.p = subprocess.Popen([DRIVE] + args, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.errf)
        self.buf = b""
        self.msgs = []          # every "msg ..." line seen so far
        self.exit = None
        first = self.readline(20)
        self.started = first is not None and first.startswith("writer ")
        if self.started:
            self.pid = int(first.split()[1])
        elif first is not None:
            self.note(first)

    def note(self, line):
        if line.startswith("msg "):
            self.msgs.append(line)
        m = re.match(r"exit (\S+)", line)
        if m:
            self.exit = m.group(1)

    def readline(self, timeout):
        """one line of output, None on timeout or EOF"""
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if not r:
                continue
            chunk = os.read(self.p.stdout.fileno(), 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def cmd(self, line, timeout=30):
        """run one command; its output lines (without the final '.')"""
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()
        out = []
        while True:
            ln = self.readline(timeout)
            if ln is None or ln == ".":
                return out
            self.note(ln)
            out.append(ln)

    def result(self, out, tid):
        """the NAME of "result TID NAME IP" in out, or None"""
        for ln in out:
            f = ln.split()
            if len(f) >= 3 and f[0] == "result" and f[1] == str(tid):
                return f[2]
        return None

    def tuple(self, tid, ip, helo, frm, to, flag=""):
        out = self.cmd("tuple %d %s %s %s %s %s" % (tid, ip, helo, frm, to,
                                                   flag))
        return self.result(out, tid), out

    def logtext(self):
        if not self.errf.closed:
            self.errf.flush()
        with open(self.log, errors="replace") as f:
            return f.read()

    def finish(self, timeout=30):
        """close stdin (every engine socket), wait for 'exit N'"""
        try:
            self.p.stdin.close()
        except OSError:
            pass
        end = time.monotonic() + timeout
        while self.exit is None and time.monotonic() < end:
            ln = self.readline(end - time.monotonic())
            if ln is None:
                break
            self.note(ln)
        try:
            self.p.wait(timeout=max(1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.errf.close()
        return self.exit

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        if getattr(self, "pid", None):
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass


def poll_file(path, want, present=True, secs=10):
    """wait (bounded) until path holds the line want (or no longer)"""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            with open(path) as f:
                lines = f.read().split()
        except OSError:
            lines = []
        if (want in lines) == present:
            return True
        time.sleep(0.05)
    return False


def free_port():
    """a config port in 14000-14999 nobody listens on (best effort)"""
    import socket
    base = 14000 + (os.getpid() * 7) % 900
    for port in range(base, base + 100):
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    return 14999


def run_main(tmp):
    """the main scenario: two engines, spamtrap, domains, fw file, config"""
    db = os.path.join(tmp, "db")
    fw = os.path.join(tmp, "white.txt")
    dom = os.path.join(tmp, "domains")
    with open(dom, "w") as f:
        f.write("# allowed\nexample.org\nexample.com\n")
    port = free_port()
    d = Drive(tmp, "main", ["-v", "-d", db, "-e", "8", "-p", "1", "-T",
                            "trap@example.org", "-D", dom, "-f", fw, "-c",
                            str(port), "-F", "100"])
    try:
        if not check(d.started, "writer starts", "no 'writer' line; log: " +
                     d.logtext()[-500:]):
            return
        out = d.cmd("msgwait traplist 10")
        check(any("traplist parse=ok tag=spamd-greytrap prefixes=0" in l
                  for l in out), "empty trapped list sent at start",
              repr(out))

        r, out = d.tuple(1, "10.0.0.1", "mx.example.com",
                         "<Alice@Example.COM>", "<bob@example.org>")
        check(r == "NEW", "first tuple is NEW", repr(out))
        r, out = d.tuple(2, "10.0.0.1", "mx.example.com",
                         "alice@example.com", "Bob@Example.org")
        check(r == "GREY", "retry before passtime is GREY (addresses "
              "normalised)", repr(out))
        out = d.cmd("dump")
        check("db GREY|10.0.0.1|mx.example.com|alice@example.com|"
              "bob@example.org|" in "\n".join(out) and
              any(l.startswith("db GREY|10.0.0.1|") and
                  l.endswith("|2|0") for l in out),
              "store holds the GREY tuple with bcount 2", repr(out))
        d.cmd("sleep 2.2")
        r, out = d.tuple(3, "10.0.0.1", "mx.example.com",
                         "alice@example.com", "bob@example.org")
        check(r == "PASSED", "retry after passtime PASSED", repr(out))
        check(any(l == "result 3 PASSED 10.0.0.1" for l in out),
              "result carries the client address", repr(out))
        check(poll_file(fw, "10.0.0.1"),
              "file firewall backend gets the passed address",
              "not in %s" % fw)
        r, out = d.tuple(4, "10.0.0.1", "other", "x@y.z", "bob@example.org")
        check(r == "WHITE", "whitelisted address answers WHITE", repr(out))
        out = d.cmd("dump")
        check(any(l.startswith("db WHITE|10.0.0.1|") for l in out),
              "store holds WHITE for the address", repr(out))
        check(re.search(r"event=pass ip=10\.0\.0\.1 helo=mx\.example\.com "
                        r"from=\S+ to=\S+", d.logtext()) is not None,
              "pass logged as one key=value line")

        # spamtrap
        r, out = d.tuple(5, "10.0.0.2", "h", "a@b.c", "<Trap@Example.org>")
        check(r == "TRAP", "RCPT to a spamtrap traps", repr(out))
        out = d.cmd("msgwait traplist 10")
        tl = [l for l in d.msgs if " traplist " in l and
              "10.0.0.2/32" in l]
        check(len(tl) > 0 and all("parse=ok" in l for l in tl),
              "trapped list with 10.0.0.2/32 sent and parses", repr(out))
        d.cmd("drain 0.5")
        for e in (2, 8):
            check(any(l.startswith("msg %d traplist parse=ok" % e) and
                      "10.0.0.2/32" in l for l in d.msgs),
                  "engine %d also gets the trapped list" % e)
        r, out = d.tuple(6, "10.0.0.2", "h", "a@b.c", "bob@example.org")
        check(r == "TRAPPED", "trapped address answers TRAPPED", repr(out))
        d.cmd("sleep 2.2")
        r, out = d.tuple(7, "10.0.0.2", "h", "a@b.c", "bob@example.org")
        r2, out2 = d.tuple(8, "10.0.0.2", "h", "a@b.c", "bob@example.org")
        check(r == "TRAPPED" and r2 == "TRAPPED",
              "trapped address never whitelisted after passtime",
              repr(out + out2))
        out = d.cmd("dump")
        check(not any(l.startswith("db WHITE|10.0.0.2|") for l in out) and
              any(l.startswith("db TRAPPED|10.0.0.2|") for l in out),
              "store: TRAPPED, no WHITE for the trapped address",
              repr(out))
        check(re.search(r"event=trap ip=10\.0\.0\.2 to=\S+ reason=spamtrap",
                        d.logtext()) is not None, "trap logged, "
              "reason=spamtrap")

        # allowed domains
        r, out = d.tuple(9, "10.0.0.3", "h", "a@b.c", "bob@elsewhere.net")
        check(r == "TRAP", "recipient outside allowed domains traps",
              repr(out))
        check("event=trap ip=10.0.0.3 to=bob@elsewhere.net reason=domain"
              in d.logtext(), "trap logged, reason=domain")
        r, out = d.tuple(10, "10.0.0.4", "h", "a@b.c", "bob@sub.example.com")
        check(r == "NEW", "subdomain of an allowed domain is NEW", repr(out))

        # -M
        r, out = d.tuple(11, "10.0.0.5", "h", "a@b.c", "bob@example.org",
                         "lowmx")
        check(r == "TRAP", "new tuple aimed at the low-priority MX traps",
              repr(out))
        check("event=trap ip=10.0.0.5 to=bob@example.org reason=lowmx" in
              d.logtext(), "trap logged, reason=lowmx")
        r, out = d.tuple(12, "10.0.0.4", "h", "a@b.c", "bob@sub.example.com",
                         "lowmx")
        check(r == "GREY", "known tuple aimed at the low-priority MX is "
              "not trapped", repr(out))

        # IPv6 in the trapped list
        r, out = d.tuple(13, "2001:DB8::5", "h", "a@b.c", "trap@example.org")
        check(r == "TRAP" and "result 13 TRAP 2001:db8::5" in out,
              "IPv6 client trapped (address canonical)", repr(out))
        out = d.cmd("msgwait traplist 10")
        check(any("parse=ok" in l and "inet6;1;2001:db8::5/128" in l and
                  "inet;3;" in l for l in out),
              "trapped list has inet and inet6 sections and parses",
              repr(out))

        # a burst of traps gives at most two lists: one now, one a second
        # later with the rest
        d.cmd("drain 1.2")
        before = len([l for l in d.msgs if l.startswith("msg 1 traplist")])
        for i in range(5):
            d.tuple(100 + i, "10.0.1.%d" % (i + 1), "h", "a@b.c",
                    "trap@example.org")
        d.cmd("drain 2.5")
        lists = [l for l in d.msgs if l.startswith("msg 1 traplist")]
        check(len(lists) - before <= 2 and "10.0.1.5/32" in lists[-1] and
              "10.0.1.1/32" in lists[-1],
              "burst of 5 traps coalesced into at most 2 trapped lists",
              "%d lists" % (len(lists) - before))

        # config port
        good = 'testlist;"Go away %A\\nnow";inet;2;192.0.2.0/24;' \
               '198.51.100.7/32'
        out = d.cmd("cfg " + good)
        check("cfg ok testlist 2" in out, "config port: valid list -> ok",
              repr(out))
        d.cmd("drain 1")
        for e in (1, 5, 8):
            check(any(l == "msg %d blacklist parse=ok tag=testlist "
                      "prefixes=2 text=%s" % (e, good) for l in d.msgs),
                  "engine %d gets the list as sent" % e)
        nbl = len([l for l in d.msgs if " blacklist " in l])
        out = d.cmd('cfg badlist;"bad%Z";inet;1;192.0.2.1/32')
        check(any(l.startswith("cfg error badlist: ") for l in out),
              "config port: %Z template -> error", repr(out))
        out = d.cmd('cfg badlist;"x";inet;zz;192.0.2.1/32')
        check(any(l.startswith("cfg error badlist: ") for l in out),
              "config port: garbage count -> error", repr(out))
        out = d.cmd('cfg badlist;"x";inet;5;192.0.2.1/32')
        check(any(l.startswith("cfg error badlist: ") for l in out),
              "config port: count larger than the list -> error",
              repr(out))
        d.cmd("drain 1")
        check(len([l for l in d.msgs if " blacklist " in l]) == nbl,
              "refused lists are not sent to any engine")
        out = d.cmd("cfgbig %d" % (64 * 1024 * 1024))
        check(any(l.startswith("cfg error -: message longer than")
                  for l in out), "config port: a message over the frame "
              "limit is refused", repr(out))
        out = d.cmd("cfg testlist;")
        check("cfg ok testlist 0" in out, "config port: clear -> ok 0",
              repr(out))

        # SIGHUP reloads the allowed domains
        with open(dom, "a") as f:
            f.write("elsewhere.net\n")
        d.cmd("signal HUP")
        d.cmd("sleep 0.5")
        r, out = d.tuple(14, "10.0.0.6", "h", "a@b.c", "bob@elsewhere.net")
        check(r == "NEW", "SIGHUP reloads the allowed domains", repr(out))
        with open(dom, "a") as f:
            f.write("not a domain!\n")
        d.cmd("signal HUP")
        d.cmd("sleep 0.5")
        check(re.search(r"event=domains_reload ok=0 error=\"[^\"]*domains:"
                        r"5:", d.logtext()) is not None,
              "bad domains file on SIGHUP is logged with file:line")
        r, out = d.tuple(15, "10.0.0.7", "h", "a@b.c", "bob@elsewhere.net")
        check(r == "NEW", "bad reload keeps the old list", repr(out))

        # malformed frames: each closes its engine, the writer lives on
        kinds = ["short", "long", "type", "nstr", "overrun", "nul",
                 "trailing"]
        for i, k in enumerate(kinds):
            e = i + 2
            d.cmd("engine %d" % e)
            d.cmd("bad " + k)
            out = d.cmd("closewait 10")
            check("closed %d" % e in out,
                  "bad frame (%s) closes that engine's socket" % k,
                  repr(out))
        check(d.logtext().count("event=bad_frame") >= len(kinds),
              "bad frames are logged")
        d.cmd("engine 1")
        r, out = d.tuple(16, "10.0.0.8", "h", "a@b.c", "bob@example.org")
        check(r == "NEW", "the other engine still works after bad frames",
              repr(out))

        # wrong tuples are answered "undecided", the socket stays open
        out = d.cmd("tuple 17 10.0.0.9 helo")
        check("result 17 ERROR " in out, "tuple with 2 strings: ERROR "
              "result", repr(out))
        out = d.cmd("tuple 18 not-an-ip h a@b.c u@example.org")
        check("result 18 ERROR " in out, "tuple with a bad address: ERROR "
              "result", repr(out))
        # client bytes: newline, %n, quotes reach the log escaped, one line
        r, out = d.tuple(19, "10.0.0.10", "a\\x0aevent=pass\\x20%s%n",
                         "\\x22x\\x22@b.c", "u@example.org")
        check(r == "NEW", "HELO with a newline and %n is recorded",
              repr(out))
        lines = [l for l in d.logtext().splitlines() if "10.0.0.10" in l]
        check(len(lines) == 1 and "event=new ip=10.0.0.10 helo=a\\" in
              lines[0] and "%n" in lines[0] and
              all(re.match(r"\d{4}-\d\d-\d\dT", l) for l in
                  d.logtext().splitlines()),
              "client bytes logged escaped on one line", repr(lines))
        d.cmd("signal USR1")
        d.cmd("sleep 0.5")
        m = re.search(r"event=counters proc=writer tuples=(\d+) .*"
                      r"passes=(\d+) .* traps=(\d+) .*config_loads=(\d+)",
                      d.logtext())
        check(m is not None and int(m.group(1)) == 23 and
              int(m.group(2)) == 1 and int(m.group(3)) == 9 and
              int(m.group(4)) == 2, "SIGUSR1 logs the counters",
              m.group(0) if m else "no counters line")
        st = d.finish()
        check(st == "0", "writer exits 0 when every engine has closed",
              "exit %s" % st)
        log = d.logtext()
        check("event=writer_stop status=0" in log, "writer stop logged")
    finally:
        d.kill()


def run_grouping(tmp):
    """network grouping: a retry from the same /24 matches; WHITE is the
    client's own address"""
    db = os.path.join(tmp, "dbg")
    fw = os.path.join(tmp, "whiteg.txt")
    d = Drive(tmp, "group", ["-d", db, "-p", "1", "-4", "24", "-6", "64",
                             "-f", fw])
    try:
        if not check(d.started, "grouping: writer starts"):
            return
        r, out = d.tuple(1, "203.0.113.7", "mx.big", "a@big.example",
                         "u@example.org")
        check(r == "NEW", "grouping: first tuple NEW", repr(out))
        r, out = d.tuple(2, "203.0.113.9", "mx.big", "a@big.example",
                         "u@example.org")
        check(r == "GREY", "grouping: retry from another address of the "
              "/24 is GREY", repr(out))
        out = d.cmd("dump")
        check(any(l.startswith("db GREY|203.0.113.0|mx.big|") for l in out),
              "grouping: tuple stored under the network address", repr(out))
        d.cmd("sleep 2.2")
        r, out = d.tuple(3, "203.0.113.9", "mx.big", "a@big.example",
                         "u@example.org")
        check(r == "PASSED" and "result 3 PASSED 203.0.113.9" in out,
              "grouping: pass from the pool", repr(out))
        out = d.cmd("dump")
        check(any(l.startswith("db WHITE|203.0.113.9|") for l in out) and
              not any(l.startswith("db WHITE|203.0.113.0|") for l in out),
              "grouping: WHITE is the client's own address", repr(out))
        check(poll_file(fw, "203.0.113.9"), "grouping: firewall gets the "
              "client's address")
        r, out = d.tuple(4, "203.0.113.9", "x", "b@c.d", "u@example.org")
        check(r == "WHITE", "grouping: whitelisted client answers WHITE",
              repr(out))
        r, out = d.tuple(5, "2001:db8:1:2::10", "h6", "a@b.c",
                         "u@example.org")
        r2, out2 = d.tuple(6, "2001:db8:1:2::99", "h6", "a@b.c",
                           "u@example.org")
        check(r == "NEW" and r2 == "GREY", "grouping: IPv6 /64",
              repr(out + out2))
        d.cmd("signal TERM")
        st = d.finish()
        check(st == "0", "SIGTERM: writer exits 0", "exit %s" % st)
    finally:
        d.kill()


def run_expiry(tmp):
    """expiry: trapped and white entries expire; the trapped list and the
    firewall file follow"""
    db = os.path.join(tmp, "dbe")
    fw = os.path.join(tmp, "whitee.txt")
    d = Drive(tmp, "expiry", ["-d", db, "-p", "1", "-t", "2", "-w", "3",
                              "-s", "1", "-f", fw, "-T", "trap@x.org"])
    try:
        if not check(d.started, "expiry: writer starts"):
            return
        r, _ = d.tuple(1, "10.9.0.1", "h", "a@b.c", "trap@x.org")
        d.cmd("msgwait traplist 10")
        d.cmd("msgwait traplist 10")
        check(r == "TRAP" and any("10.9.0.1/32" in l for l in d.msgs),
              "expiry: trapped address in the list")
        # the list after expiry: the tag alone (clear)
        end = time.monotonic() + 15
        cleared = False
        while time.monotonic() < end and not cleared:
            d.cmd("drain 0.5")
            last = [l for l in d.msgs if " traplist " in l][-1]
            cleared = last.endswith("text=spamd-greytrap;")
        check(cleared, "expiry: trapped list cleared after the trap "
              "expired", last)
        d.tuple(2, "10.9.0.2", "h", "a@b.c", "u@x.org")
        # passes once now > first + 1 in whole seconds
        d.cmd("sleep 2.2")
        r, _ = d.tuple(3, "10.9.0.2", "h", "a@b.c", "u@x.org")
        check(r == "PASSED" and poll_file(fw, "10.9.0.2"),
              "expiry: passed address in the firewall file")
        check(poll_file(fw, "10.9.0.2", present=False, secs=15),
              "expiry: expired WHITE leaves the firewall file")
        check(re.search(r"event=expire removed=\d+", d.logtext())
              is not None, "expiry logged")
        d.finish()
    finally:
        d.kill()


def run_firewall(tmp):
    """the file backend: periodic reconcile repairs drift both ways; a
    failing flush is logged and retried while greylisting goes on"""
    fwdir = os.path.join(tmp, "fwdir")
    os.mkdir(fwdir)
    fw = os.path.join(fwdir, "white")
    d = Drive(tmp, "fw", ["-d", os.path.join(tmp, "dbf"), "-p", "1",
                          "-r", "1", "-f", fw])
    try:
        if not check(d.started, "fw: writer starts"):
            return
        d.tuple(1, "10.7.0.1", "h", "a@b.c", "u@x.org")
        d.cmd("sleep 2.2")
        r, _ = d.tuple(2, "10.7.0.1", "h", "a@b.c", "u@x.org")
        check(r == "PASSED" and poll_file(fw, "10.7.0.1"),
              "fw: passed address in the file")
        # the store changed behind the writer's back (greyctl): the
        # periodic reconcile adds the new WHITE and drops the deleted one
        d.cmd("white 10.7.0.50 3600")
        d.cmd("del 10.7.0.1")
        check(poll_file(fw, "10.7.0.50") and
              poll_file(fw, "10.7.0.1", present=False),
              "fw: reconcile repairs the set both ways")
        check(re.search(r"event=fw_reconcile ok=1 added=1 removed=1",
                        d.logtext()) is not None, "fw: reconcile counts "
              "logged")
        # the backend fails: its directory is gone
        os.rename(fwdir, fwdir + ".gone")
        d.tuple(3, "10.7.0.2", "h", "a@b.c", "u@x.org")
        d.cmd("sleep 2.2")
        r, _ = d.tuple(4, "10.7.0.2", "h", "a@b.c", "u@x.org")
        check(r == "PASSED", "fw: pass recorded while the firewall fails")
        end = time.monotonic() + 10
        while time.monotonic() < end and "event=fw_error" not in \
                d.logtext():
            time.sleep(0.1)
        check(re.search(r"event=fw_error op=flush .*retry_secs=\d+ "
                        r"error=\"[^\"]+\"", d.logtext()) is not None,
              "fw: failed flush logged with its text and a retry delay")
        r, _ = d.tuple(5, "10.7.0.3", "h", "a@b.c", "u@x.org")
        check(r == "NEW", "fw: greylisting goes on while the firewall "
              "fails")
        os.rename(fwdir + ".gone", fwdir)
        check(poll_file(fw, "10.7.0.2", secs=40),
              "fw: retry delivers the queued address once the backend "
              "works again")
        d.finish()
    finally:
        d.kill()
        if os.path.isdir(fwdir + ".gone"):
            os.rename(fwdir + ".gone", fwdir)


def run_startup_errors(tmp):
    """a bad allowed-domains file is a fatal startup error naming
    file:line; -b runs without a database"""
    dom = os.path.join(tmp, "baddomains")
    with open(dom, "w") as f:
        f.write("example.org\n\nbad domain here\n")
    d = Drive(tmp, "baddom", ["-d", os.path.join(tmp, "dbb"), "-D", dom])
    try:
        st = d.finish()
        log = d.logtext()
        check(st == "1" and "baddomains:3:" in log,
              "bad domains file at start: exit 1 naming file:line",
              "exit %s log %s" % (st, log[-300:]))
    finally:
        d.kill()
    port = free_port()
    d = Drive(tmp, "bonly", ["-b", "-d", os.path.join(tmp, "nodb"), "-c",
                             str(port), "-C", "2"])
    try:
        r, out = d.tuple(1, "10.0.0.1", "h", "a@b.c", "u@x.org")
        check(r == "ERROR", "-b: tuples get the undecided result",
              repr(out))
        check(not os.path.exists(os.path.join(tmp, "nodb")),
              "-b: no database created")
        out = d.cmd('cfg bl;"x";inet;1;192.0.2.1/32')
        check("cfg ok bl 1" in out, "-b: config port works", repr(out))
        out = d.cmd("cfgslow 20")
        check(any(l.startswith("cfgslow closed") for l in out) and
              "event=config_timeout" in d.logtext(),
              "config port: a slow sender is cut off after its time",
              repr(out))
        out = d.cmd('cfg bl2;"y";inet;1;192.0.2.2/32')
        check("cfg ok bl2 1" in out, "config port still works after them",
              repr(out))
        st = d.finish()
        check(st == "0", "-b: writer exits 0", "exit %s" % st)
    finally:
        d.kill()


def main():
    if not os.access(DRIVE, os.X_OK):
        notok("grey_drive built", DRIVE + " missing (make tests)")
        return 1
    tmp = tempfile.mkdtemp(prefix="spamd_writer.")
    try:
        run_main(tmp)
        run_grouping(tmp)
        run_expiry(tmp)
        run_firewall(tmp)
        run_startup_errors(tmp)
    finally:
        if failed:
            for fn in sorted(os.listdir(tmp)):
                if fn.endswith(".log"):
                    sys.stderr.write("--- %s\n" % fn)
                    with open(os.path.join(tmp, fn), errors="replace") as f:
                        sys.stderr.write(f.read()[-3000:])
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
