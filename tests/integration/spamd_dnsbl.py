#!/usr/bin/env python3
"""spamd_dnsbl.py - the daemon's DNS checks end to end (issue 9).

Runs the loopback DNS responder of tests/integration/dnsbl.py (stdlib,
real DNS over UDP, here on a port in 18000-18999) and $BUILD/spamd -d
-S 0 -s 0 with --dns-server pointing at it, on ports in 18000-18999, and
talks SMTP to it from 127.0.0.x source addresses (and ::1).

Checks: a listed client gets the zone's message with its address after
DATA (450, and 550 with -5) and records no tuple; two listing zones give
both messages; an answer outside the zone's codes is not a listing; an
unlisted client gets 451 and its tuple is recorded; a zone that never
answers counts as not listed after --dnsbl-timeout while another client
completes its dialogue meanwhile; a bad --dnsbl and a bad zone file stop
the daemon (exit 1) naming the spec or file:line; SIGHUP reloads the zone
file and keeps the old zones when the new file is broken; --rdns tarpit
(no PTR, PTR that does not confirm, a good one); --helo-check tarpit (a
bare word, a name that does not resolve, our own name, a good name);
per-zone counters on SIGUSR1; an IPv6 client (nibble form).

Prints one line per check: ok - name / not ok - name: why / skip - ...
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("TOP") or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("BUILD") or os.path.join(TOP, "build")
SPAMD = os.path.join(BUILD, "spamd")
GREYCTL = os.path.join(BUILD, "greyctl")
HOSTNAME = "mx.dnsbl.example"

sys.path.insert(0, HERE)
import dnsbl as dnsrv  # noqa: E402  (the responder and its records)

sys.path.insert(0, os.path.join(HERE, "..", "helpers"))
import fault_lib as fl  # noqa: E402

DAEMONS = []
R = fl.Results()
ok, notok, skip, check = R.ok, R.notok, R.skip, R.check


def pick_port(addrs=("127.0.0.1",), kind=socket.SOCK_STREAM):
    """a port in 18000-18999 free on every address"""
    return fl.pick_port(addrs, 18000, 18999, kind)


class Dns(dnsrv.Server):
    """dnsbl.py's responder, bound in this test's port range"""

    def __init__(self):
        super().__init__(port=pick_port(kind=socket.SOCK_DGRAM))


# records of our own besides dnsbl.py's: a client with a good FCrDNS
# that no zone lists, and a zone of ours for the reload test
dnsrv.add("7.0.0.127.in-addr.arpa", dnsrv.T_PTR, "ok7.test")
dnsrv.add("ok7.test", dnsrv.T_A, "127.0.0.7")
dnsrv.add("3.0.0.127.other.test", dnsrv.T_A, "127.0.0.2")


def have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


class Spamd(fl.Spamd):
    """one daemon with its own temporary directory"""

    def __init__(self, name, dns, extra=(), listen=("127.0.0.1",),
                 expect_fail=False, white=()):
        tmp = tempfile.mkdtemp(prefix="spamd-dnsbl-%s." % name)
        db = os.path.join(tmp, "db")
        for ip in white:
            r = subprocess.run([GREYCTL, "-D", db, "-a", ip],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError("greyctl -a %s: %s" % (ip, r.stderr))
        super().__init__(name, ["--dns-server", "127.0.0.1:%d" % dns.port] +
                         list(extra), db=db, tmp=tmp, workers=None,
                         hostname=HOSTNAME, nobody=False,
                         ports=(18000, 18999), listen=listen,
                         logname="spamd.err")
        self.errpath = self.logpath
        DAEMONS.append(self)
        if expect_fail:
            return
        self.wait_started(ready="tag=spamd-greytrap")

    def grey_lines(self, ip, secs=5):
        """greyctl lines of ip, polled until some show (or secs pass)"""
        deadline = time.time() + secs
        while True:
            lines = [ln for ln in self.greyctl().splitlines()
                     if ("|%s|" % ip) in ln or ln.startswith("GREY|%s|" % ip)]
            if lines or time.time() > deadline:
                return lines
            time.sleep(0.1)

    def signal(self, sig):
        self.proc.send_signal(sig)


class Raw:
    """a raw SMTP client bound to its own source address"""

    def __init__(self, d, src, timeout=15.0):
        fam = socket.AF_INET6 if ":" in src else socket.AF_INET
        dst = "::1" if fam == socket.AF_INET6 else "127.0.0.1"
        self.s = socket.socket(fam, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.bind((src, 0))
        self.s.connect((dst, d.port))
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                raise EOFError("closed; have %r" % self.buf)
            self.buf += d
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.decode("ascii", "replace").rstrip("\r")

    def send(self, text):
        self.s.sendall(text.encode() + b"\r\n")

    def cmd(self, text):
        self.send(text)
        return self.line()

    def rest(self):
        """every line until the server closes"""
        out = []
        try:
            while True:
                out.append(self.line())
        except (EOFError, OSError):
            pass
        return out

    def close(self):
        self.s.close()


def dialogue(d, src, helo="client.example"):
    """a whole dialogue from src: (DATA reply, lines after the message)"""
    c = Raw(d, src)
    try:
        c.line()
        c.cmd("HELO " + helo)
        c.cmd("MAIL FROM:<x@example.org>")
        c.cmd("RCPT TO:<user@example.com>")
        r = c.cmd("DATA")
        if not r.startswith("354"):
            return r, []
        c.s.sendall(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        return r, c.rest()
    finally:
        c.close()


def test_zones(dns):
    """two zones, codes, listed and unlisted clients, counters, IPv6"""
    v6 = have_ipv6()
    d = Spamd("zones", dns, listen=("127.0.0.1", "::1") if v6 else
              ("127.0.0.1",), extra=[
                  "--dnsbl", "zen.test=127.0.0.2,127.0.0.3;"
                  "Listed at zen: %A",
                  "--dnsbl", "bl.test;Blocked by bl: %d.%d.%d.%d",
                  "--dnsbl-timeout", "3000"])
    try:
        r, rest = dialogue(d, "127.0.0.3")
        check("listed client: 354 then the zone message with its address",
              r.startswith("354") and
              rest == ["450 Listed at zen: 127.0.0.3"],
              "DATA %r then %r" % (r, rest))
        r, rest = dialogue(d, "127.0.0.2")
        check("two listing zones: both messages, in zone order",
              # one multi-line reply: 450- on all lines but the last
              # (RFC 5321 4.2.1; issue 16)
              rest == ["450-Listed at zen: 127.0.0.2",
                       "450 Blocked by bl: 127.0.0.2"],
              "DATA %r then %r" % (r, rest))
        r, rest = dialogue(d, "127.0.0.4")
        check("an answer outside the zone's codes is no listing (451)",
              r.startswith("451"), "DATA %r then %r" % (r, rest))
        r, rest = dialogue(d, "127.0.0.5")
        check("unlisted client: 451", r.startswith("451"),
              "DATA %r then %r" % (r, rest))
        lines = d.grey_lines("127.0.0.5")
        check("unlisted client: its tuple is recorded",
              any("user@example.com" in ln for ln in lines),
              "greyctl: %r" % d.greyctl())
        check("listed clients record no tuple",
              d.grey_lines("127.0.0.2", 0) == [] and
              d.grey_lines("127.0.0.3", 0) == [],
              "greyctl: %r" % d.greyctl())
        check("log: event=dnsbl ip= zone= answer=",
              "event=dnsbl ip=127.0.0.2 zone=zen.test answer=127.0.0.2"
              in d.logtext() and
              "event=dnsbl ip=127.0.0.2 zone=bl.test answer=127.0.0.2"
              in d.logtext(), d.log_tail())
        # cache: a second connection asks DNS nothing new
        before = dns.count(lambda n, t: n == "2.0.0.127.zen.test")
        r, rest = dialogue(d, "127.0.0.2")
        after = dns.count(lambda n, t: n == "2.0.0.127.zen.test")
        check("a cached listing is not asked again, and still tarpits",
              before == 1 and after == 1 and len(rest) == 2,
              "queries %d -> %d, reply %r" % (before, after, rest))
        if v6:
            r, rest = dialogue(d, "::1")
            check("IPv6 client ::1 listed through its nibble name",
                  rest == ["450 Listed at zen: ::1"],
                  "DATA %r then %r" % (r, rest))
            nib = dnsrv.nibbles("::1") + ".zen.test"
            check("the IPv6 query is the reversed nibbles",
                  dns.count(lambda n, t: n == nib) >= 1, "not asked")
        else:
            skip("IPv6 client ::1", "no IPv6 loopback")
        d.signal(signal.SIGUSR1)
        got = d.wait_log("event=stats-dnsbl engine=0 zone=zen.test", 10)
        line = [ln for ln in d.logtext().splitlines()
                if "event=stats-dnsbl engine=0 zone=zen.test" in ln]
        check("SIGUSR1 logs per-zone counters",
              got and line and "listed=" in line[-1] and
              "timeouts=0" in line[-1] and " queries=" in line[-1],
              "%r" % line)
    finally:
        d.stop()
        d.cleanup()


def test_550(dns):
    """-5: the listed client gets 550"""
    d = Spamd("550", dns, extra=["-5", "--dnsbl", "zen.test;Listed: %A"])
    try:
        r, rest = dialogue(d, "127.0.0.2")
        check("-5: a listed client gets 550 with the zone message",
              rest == ["550 Listed: 127.0.0.2"], "DATA %r then %r" % (r, rest))
    finally:
        d.stop()
        d.cleanup()


def test_timeout(dns):
    """a zone that never answers: not listed after the time limit, and
    other clients are served meanwhile"""
    d = Spamd("timeout", dns, extra=["--dnsbl", "slow.test",
                                     "--dnsbl-timeout", "2000"])
    try:
        a = Raw(d, "127.0.0.5")
        a.line()
        a.cmd("HELO a.example")
        a.cmd("MAIL FROM:<a@example.org>")
        a.send("RCPT TO:<user@example.com>")
        # meanwhile another client gets every reply of its dialogue
        b = Raw(d, "127.0.0.8")
        replies = [b.line(), b.cmd("HELO b.example"),
                   b.cmd("MAIL FROM:<b@example.org>"), b.cmd("RSET"),
                   b.cmd("NOOP"), b.cmd("QUIT")]
        b.close()
        a.s.setblocking(False)
        try:
            early = a.s.recv(4096)
        except BlockingIOError:
            early = b""
        a.s.settimeout(15)
        check("another client completes while a lookup is out",
              [x[:3] for x in replies] == ["220", "250", "250", "250",
                                            "250", "221"] and early == b"",
              "replies %r, held client got %r" % (replies, early))
        r1 = a.line()
        r2 = a.cmd("DATA")
        a.close()
        check("no answer in time counts as not listed: greylisted (451)",
              r1.startswith("250") and r2.startswith("451"),
              "RCPT %r DATA %r" % (r1, r2))
        check("the timed-out client's tuple is recorded",
              any("user@example.com" in ln
                  for ln in d.grey_lines("127.0.0.5")), d.greyctl())
        check("the timeout is logged for the zone",
              "zone=slow.test result=timeout" in d.logtext(), d.log_tail())
        # clients that leave while their lookup is out: one at once, one
        # from a held RCPT; the daemon goes on serving
        c = Raw(d, "127.0.0.9")
        c.line()
        c.close()
        c = Raw(d, "127.0.0.10")
        c.line()
        c.cmd("MAIL FROM:<a@example.org>")
        c.send("RCPT TO:<user@example.com>")
        c.close()
        r, rest = dialogue(d, "127.0.0.11")
        check("clients gone during a lookup: the daemon serves on",
              r.startswith("451"), "%r %r" % (r, rest))
        # and one still waiting when the daemon stops
        c = Raw(d, "127.0.0.12")
        c.line()
        c.cmd("MAIL FROM:<a@example.org>")
        c.send("RCPT TO:<user@example.com>")
        rc = d.stop()
        c.close()
        check("SIGTERM with a lookup out: clean exit", rc == 0,
              "status %r: %s" % (rc, d.log_tail()))
    finally:
        d.stop()
        d.cleanup()


def test_bad_config(dns):
    """bad --dnsbl and bad zone files stop the daemon at startup"""
    d = Spamd("badspec", dns, extra=["--dnsbl", "zen.test;Listed %s"],
              expect_fail=True)
    try:
        rc = d.proc.wait(15)
        log = d.logtext()
        check("bad --dnsbl: exit 1 naming the spec and the fault",
              rc == 1 and "--dnsbl 'zen.test;Listed %s'" in log and
              "byte" in log, "rc %r: %r" % (rc, log[-300:]))
    finally:
        d.cleanup()
    tmp = tempfile.mkdtemp(prefix="spamd-dnsbl-conf.")
    try:
        path = os.path.join(tmp, "zones")
        with open(path, "w") as f:
            f.write("# zones\nzen.test\n\nbl.test;trailing %\n")
        d = Spamd("badfile", dns, extra=["--dnsbl-file", path],
                  expect_fail=True)
        try:
            rc = d.proc.wait(15)
            log = d.logtext()
            check("bad zone file: exit 1 naming file:line",
                  rc == 1 and (path + ":4:") in log,
                  "rc %r: %r" % (rc, log[-300:]))
        finally:
            d.cleanup()
        d = Spamd("nofile", dns, extra=["--dnsbl-file", path + ".missing"],
                  expect_fail=True)
        try:
            rc = d.proc.wait(15)
            check("missing zone file: exit 1 naming it",
                  rc == 1 and (path + ".missing") in d.logtext(),
                  "rc %r: %r" % (rc, d.logtext()[-300:]))
        finally:
            d.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_reload(dns):
    """SIGHUP: the writer reads the zone file for the chrooted engine"""
    d = None
    tmp = tempfile.mkdtemp(prefix="spamd-dnsbl-zones.")
    path = os.path.join(tmp, "zones")
    try:
        with open(path, "w") as f:
            f.write("zen.test;From the file: %A\n")
        # two engines: the writer's reload must reach both
        d = Spamd("reload", dns, extra=["--dnsbl-file", path, "-W", "2"])
        r, rest = dialogue(d, "127.0.0.3")
        check("zone file: listed client gets the file's message",
              rest == ["450 From the file: 127.0.0.3"], "%r %r" % (r, rest))
        with open(path + ".new", "w") as f:
            f.write("# reloaded\nother.test;Reloaded: %A\n")
        os.rename(path + ".new", path)
        d.signal(signal.SIGHUP)
        got = d.wait_log("event=dnsbl-reload engine=0 ok=1", 10) and \
            d.wait_log("event=dnsbl-reload engine=1 ok=1", 10)
        r, rest = dialogue(d, "127.0.0.3")
        check("SIGHUP: every engine uses the new file's zones",
              got and rest == ["450 Reloaded: 127.0.0.3"],
              "reloaded %r: %r %r" % (got, r, rest))
        r, rest = dialogue(d, "127.0.0.2")
        check("SIGHUP: a zone no longer in the file is not asked",
              r.startswith("451"), "%r %r" % (r, rest))
        with open(path + ".new", "w") as f:
            f.write("other.test;Broken: %s\n")
        os.rename(path + ".new", path)
        d.signal(signal.SIGHUP)
        got = d.wait_log("event=dnsbl-reload proc=writer ok=0", 10)
        r, rest = dialogue(d, "127.0.0.3")
        check("SIGHUP with a broken file: logged with file:line, old "
              "zones kept", got and (path + ":1:") in d.logtext() and
              rest == ["450 Reloaded: 127.0.0.3"],
              "logged %r: %r %r" % (got, r, rest))
        # a NUL byte and an oversized file are refused the same way
        for what, data, want in (
                ("a NUL byte", b"other.test;x\0y\n", "NUL byte at offset"),
                ("a file over 1 MiB", b"#" * (1 << 20) + b"\n",
                 "larger than")):
            with open(path + ".new", "wb") as f:
                f.write(data)
            os.rename(path + ".new", path)
            n = d.logtext().count("event=dnsbl-reload proc=writer ok=0")
            d.signal(signal.SIGHUP)
            got = d.wait_log("event=dnsbl-reload proc=writer ok=0", 10,
                             count=n + 1)
            r, rest = dialogue(d, "127.0.0.3")
            check("SIGHUP with %s: refused, old zones kept" % what,
                  got and want in d.logtext() and
                  rest == ["450 Reloaded: 127.0.0.3"],
                  "logged %r: %r %r" % (got, r, rest))
    finally:
        if d is not None:
            d.stop()
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_rdns_helo(dns):
    """--rdns tarpit and --helo-check tarpit"""
    d = Spamd("rdns", dns, extra=["--rdns", "tarpit", "--helo-check",
                                  "tarpit"])
    try:
        msg6 = "450 Client host [127.0.0.6] rejected: no valid reverse DNS"
        r, rest = dialogue(d, "127.0.0.6", helo="mx.test")
        check("--rdns tarpit: no PTR gets the rDNS message",
              rest == [msg6], "%r %r" % (r, rest))
        r, rest = dialogue(d, "127.0.0.3", helo="mx.test")
        check("--rdns tarpit: a PTR that does not confirm is tarpitted",
              rest == ["450 Client host [127.0.0.3] rejected: no valid "
                       "reverse DNS"], "%r %r" % (r, rest))
        r, rest = dialogue(d, "127.0.0.7", helo="mx.test")
        check("--rdns/--helo-check tarpit: good FCrDNS and HELO: 451",
              r.startswith("451"), "%r %r" % (r, rest))
        check("rDNS result logged",
              "result=no_ptr" in d.logtext() and "name=ok7.test" in d.logtext(),
              d.log_tail())
        helo_msg = ["450 Helo command rejected: Host not found"]
        for helo, why in (("bareword", "a bare word"),
                          ("nothere.test", "a name that does not resolve"),
                          (HOSTNAME, "our own host name"),
                          ("[127.0.0.1]", "our own address literal")):
            r, rest = dialogue(d, "127.0.0.7", helo=helo)
            check("--helo-check tarpit: %s" % why, rest == helo_msg,
                  "%r %r" % (r, rest))
        r, rest = dialogue(d, "127.0.0.7", helo="mx6.test")
        check("--helo-check tarpit: a name with only AAAA passes",
              r.startswith("451"), "%r %r" % (r, rest))
    finally:
        d.stop()
        d.cleanup()
    d = Spamd("rdnslog", dns, extra=["--rdns", "log", "--helo-check",
                                     "log"])
    try:
        # log mode holds nothing: wait for the results before going on (a
        # session that ends first cancels its checks, unlogged)
        c = Raw(d, "127.0.0.6")
        c.line()
        c.cmd("HELO bareword")
        logged = d.wait_log("result=no_ptr", 10) and \
            d.wait_log("result=bad_syntax", 10)
        c.cmd("MAIL FROM:<x@example.org>")
        c.cmd("RCPT TO:<user@example.com>")
        r = c.cmd("DATA")
        c.close()
        check("--rdns log / --helo-check log: logged, still greylisted",
              r.startswith("451") and logged, "%r %r" % (r, d.log_tail()))
    finally:
        d.stop()
        d.cleanup()


def white_then_helo(d, src):
    """a WHITE client: RCPT (the writer answers WHITE), then a second,
    bad HELO; returns (DATA reply, lines after the message)"""
    c = Raw(d, src)
    try:
        c.line()
        c.cmd("HELO mx.test")
        c.cmd("MAIL FROM:<x@example.org>")
        c.cmd("RCPT TO:<user@example.com>")
        # wait until the engine has the writer's answer (its counters)
        deadline = time.time() + 10
        while time.time() < deadline:
            d.signal(signal.SIGUSR1)
            time.sleep(0.1)
            stats = [ln for ln in d.logtext().splitlines()
                     if "event=stats engine=0 " in ln]
            if stats and " results=1 " in stats[-1]:
                break
        c.cmd("RSET")
        c.cmd("HELO bareword")
        c.cmd("MAIL FROM:<x@example.org>")
        c.cmd("RCPT TO:<user@example.com>")
        r = c.cmd("DATA")
        if not r.startswith("354"):
            return r, []
        c.s.sendall(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        return r, c.rest()
    finally:
        c.close()


def test_skip_white(dns):
    """--dns-skip-white: a WHITE client is not tarpitted by a check that
    answers after the writer said WHITE (yes), and is with no"""
    for mode in ("yes", "no"):
        d = Spamd("white" + mode, dns, white=["127.0.0.13"],
                  extra=["--helo-check", "tarpit", "--dns-skip-white",
                         mode])
        try:
            r, rest = white_then_helo(d, "127.0.0.13")
            if mode == "yes":
                check("--dns-skip-white yes: a WHITE client's later HELO "
                      "is not checked (451)", r.startswith("451") and
                      "event=dns-skip-white" in d.logtext(),
                      "%r %r %s" % (r, rest, d.log_tail()))
            else:
                check("--dns-skip-white no: a WHITE client's bad HELO "
                      "tarpits it", rest == ["450 Helo command rejected: "
                                             "Host not found"],
                      "%r %r" % (r, rest))
        finally:
            d.stop()
            d.cleanup()


def main():
    for p in (SPAMD, GREYCTL):
        if not os.access(p, os.X_OK):
            print("skip - spamd_dnsbl: %s not built" % p)
            return 0
    dns = Dns()
    saved = {}

    def on_term(sig, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    # keep daemon logs for the sanitizer scan, then remove them
    real_cleanup = Spamd.cleanup

    def keep_log_cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if not self.log.closed:
            self.log.close()
        try:
            with open(self.errpath, errors="replace") as f:
                saved[self.errpath] = f.read()
        except OSError:
            pass
        real_cleanup(self)
    Spamd.cleanup = keep_log_cleanup
    try:
        for t in (test_zones, test_550, test_timeout, test_bad_config,
                  test_reload, test_rdns_helo, test_skip_white):
            try:
                t(dns)
            except (RuntimeError, OSError, EOFError) as e:
                notok(t.__name__, "%s: %s" % (type(e).__name__, e))
        # LeakSanitizer cannot read /proc inside the engine's chroot (run
        # as root: nobody, not dumpable): that one "fatal error" line is a
        # known limit, not a report (as in spamd_dialogue.py)
        fl.sanitizer_check(R, "no sanitizer report in the daemons' logs",
                           list(saved.values()))
    finally:
        for d in DAEMONS:
            try:
                d.cleanup()
            except Exception:
                pass
        dns.close()
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
