#!/usr/bin/env python3
"""spamd_verify.py - hosts that mail invalid users are trapped (issue 10).

Part 1, --valid-rcpt FILE (no root needed): spamd on loopback with a file
naming alice@mx.test and bob@mx.test. A dialogue to alice is greylisted
(451 at DATA, GREY tuple); one typo does not trap; a host that mails two
unknown users gets 250 at each RCPT (the reply does not change) but is
TRAPPED (greyctl), the log names the reason and the addresses, and its
next connection is tarpitted with the trap message. A SIGHUP with a bad
file is refused naming file:line and the old table stays in force.

Part 2, --verify-mx (root: Postfix's master wants it): a private Postfix
instance on 127.0.0.1 (own config, queue and data directories in a temp
dir, its own maillog) knows alice and bob at mx.test and rejects others
with 550 5.1.1. The same checks against it; then a second host mailing
addresses already asked about causes no new probe (cache; counted on the
SIGUSR1 line); with Postfix stopped recipients are unknown and nobody is
trapped.

Ports from 20000-20999. Binaries from $BUILD (default $TOP/build).
"""
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as fl  # noqa: E402

SPAMD, GREYCTL = fl.SPAMD, fl.GREYCTL
PORTS = (20000, 20999)
R = fl.Results()
ok, notok, skip = R.ok, R.notok, R.skip
wait_until = fl.wait_for


def check(name, cond, why="condition false"):
    return R.check(name, cond, why)


def pick_port():
    return fl.pick_port("127.0.0.1", *PORTS)


class Daemon(fl.Spamd):
    """one spamd -d with its own database and ports"""

    def __init__(self, tmp, name, extra):
        super().__init__(name, extra, db=os.path.join(tmp, name + ".db"),
                         tmp=tmp, workers=None, hostname="spamd.test",
                         nobody=False, ports=PORTS, config_port=True,
                         logname=name + ".err")
        self.errpath = self.logpath
        try:
            if not self.wait_started(ready="tag=spamd-greytrap"):
                raise RuntimeError("writer not up: " +
                                   self.logtext()[-600:])
        except Exception:
            self.stop()
            raise

    def greyctl(self):
        r = subprocess.run([GREYCTL, "-D", self.db], capture_output=True,
                           text=True, timeout=60)
        return r.stdout.splitlines()

    def wait_db(self, prefix, secs=10):
        return wait_until(lambda: [l for l in self.greyctl()
                                   if l.startswith(prefix)], secs, 0.2)

    def counters(self):
        """SIGUSR1, then the newest proc=rcpt counters as a dict"""
        before = self.logtext().count("proc=rcpt ")
        self.proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: self.logtext().count("proc=rcpt ") > before, 10)
        lines = [l for l in self.logtext().splitlines() if "proc=rcpt " in l]
        if not lines:
            return {}
        return {k: int(v) for k, v in
                re.findall(r"(\w+)=(-?\d+)", lines[-1])}


def dialogue(d, src, rcpts):
    """smtplib from src: the RCPT codes and the DATA code"""
    s = smtplib.SMTP(timeout=20, source_address=(src, 0))
    codes = []
    try:
        s.connect("127.0.0.1", d.port)
        s.ehlo("client.example")
        s.mail("sender@example.org")
        for r in rcpts:
            codes.append(s.rcpt(r)[0])
        code = s.docmd("DATA")[0]
        return codes, code
    except (smtplib.SMTPException, OSError) as e:
        return codes, repr(e)
    finally:
        try:
            s.close()
        except OSError:
            pass


def tarpit_text(d, src, tries=20):
    """a raw dialogue from src until DATA gets 354 (the engine knows the
    client is trapped); the lines after '.', or why not"""
    last = ""
    for _ in range(tries):
        c = socket.create_connection(("127.0.0.1", d.port), 10,
                                     source_address=(src, 0))
        f = c.makefile("rb")
        try:
            f.readline()
            for cmd in ("HELO h.example", "MAIL FROM:<x@example.org>",
                        "RCPT TO:<alice@mx.test>", "DATA"):
                c.sendall(cmd.encode() + b"\r\n")
                last = f.readline().decode("ascii", "replace").strip()
            if last.startswith("354"):
                c.sendall(b"Subject: x\r\n\r\nbody\r\n.\r\n")
                return [l.decode("ascii", "replace").strip()
                        for l in f.readlines()]
        except OSError as e:
            last = repr(e)
        finally:
            f.close()
            c.close()
        time.sleep(0.25)
    return ["never tarpitted; DATA got " + last]


def trapped(d, ip):
    return [l for l in d.greyctl() if l.startswith("TRAPPED|%s|" % ip)]


def common_checks(d, part, base):
    """the checks both sources share; base is the client address prefix"""
    good, typo, bad = base + "1", base + "2", base + "3"
    codes, code = dialogue(d, good, ["alice@mx.test"])
    check("%s: real user greylisted (451 at DATA)" % part,
          codes == [250] and code == 451, "%r %r" % (codes, code))
    check("%s: real user's tuple is GREY" % part,
          bool(d.wait_db("GREY|%s|client.example|sender@example.org|"
                         "alice@mx.test|" % good)), repr(d.greyctl()))
    codes, code = dialogue(d, typo, ["alcie@mx.test"])
    check("%s: one typo: 250 at RCPT, 451 at DATA" % part,
          codes == [250] and code == 451, "%r %r" % (codes, code))
    codes, code = dialogue(d, bad, ["xq7r@mx.test", "Zz9k@mx.test"])
    check("%s: two unknown users: the replies do not change" % part,
          codes == [250, 250] and code == 451, "%r %r" % (codes, code))
    check("%s: two unknown users: TRAPPED in greyctl" % part,
          bool(d.wait_db("TRAPPED|%s|" % bad)), repr(d.greyctl()))
    want = ("event=trap ip=%s reason=invalid-rcpt "
            "rcpts=xq7r@mx.test,zz9k@mx.test" % bad)
    check("%s: trap logged with reason and addresses" % part,
          wait_until(lambda: want in d.logtext(), 5), d.logtext()[-800:])
    out = tarpit_text(d, bad)
    check("%s: next connection tarpitted with the trap message" % part,
          out == ["450 Your address %s has mailed to spamtraps here" % bad],
          repr(out))
    check("%s: one typo does not trap" % part, not trapped(d, typo),
          repr(trapped(d, typo)))
    check("%s: real user's client not trapped" % part, not trapped(d, good))
    return bad


def check_sanitizer(d, part):
    """a sanitizer report in the daemon's log is a failure"""
    fl.sanitizer_check(R, "%s: no sanitizer report" % part,
                       paths=[d.errpath])


def part_file(tmp):
    path = os.path.join(tmp, "valid")
    # a bad file at start: spamd refuses to start, naming file:line
    with open(path, "w") as f:
        f.write("alice@mx.test\n\nalice\n")
    r = subprocess.run([SPAMD, "-d", "-p", str(pick_port()), "-l",
                        "127.0.0.1", "--config-port", "0", "--db-dir",
                        os.path.join(tmp, "bad.db"), "--valid-rcpt", path],
                       capture_output=True, text=True, timeout=60)
    check("file: a bad line at start: exit 1 naming file:line",
          r.returncode == 1 and "%s:3: no '@'" % path in r.stderr,
          "status %d, stderr %r" % (r.returncode, r.stderr[-300:]))
    r = subprocess.run([SPAMD, "-d", "-p", str(pick_port()), "-l",
                        "127.0.0.1", "--config-port", "0", "--db-dir",
                        os.path.join(tmp, "bad.db"), "--verify-mx",
                        "127.0.0.1:99999"],
                       capture_output=True, text=True, timeout=60)
    check("verify-mx: a bad port at start: exit 1 naming the flag",
          r.returncode == 1 and "--verify-mx 127.0.0.1:99999" in r.stderr,
          "status %d, stderr %r" % (r.returncode, r.stderr[-300:]))
    with open(path, "w") as f:
        f.write("# users of mx.test\nalice@mx.test\n<Bob@MX.test>\n")
    d = Daemon(tmp, "file", ["--valid-rcpt", path])
    try:
        common_checks(d, "file", "127.0.0.4")
        # a bad file on SIGHUP: refused with file:line, old table kept
        with open(path, "w") as f:
            f.write("alice@mx.test\nnot an address\n")
        d.proc.send_signal(signal.SIGHUP)
        check("file: SIGHUP with a bad line names file:line",
              wait_until(lambda: "event=valid_rcpt_reload ok=0 "
                         "error=\"%s:2: more than one address" % path
                         in d.logtext(), 10), d.logtext()[-600:])
        dialogue(d, "127.0.0.45", ["bob@mx.test", "carol@mx.test"])
        time.sleep(0.5)
        dialogue(d, "127.0.0.46", ["dave@mx.test", "erin@mx.test"])
        check("file: old table kept (bob still valid)",
              not trapped(d, "127.0.0.45"), repr(d.greyctl()))
        check("file: old table kept (unknown users still trap)",
              bool(d.wait_db("TRAPPED|127.0.0.46|")), repr(d.greyctl()))
        # a good file: now every mx.test address is valid
        with open(path, "w") as f:
            f.write("@mx.test\n")
        d.proc.send_signal(signal.SIGHUP)
        check("file: SIGHUP with a good file reloads",
              wait_until(lambda: "event=valid_rcpt_reload ok=1" in d.logtext(),
                         10), d.logtext()[-600:])
        dialogue(d, "127.0.0.47", ["f1@mx.test", "f2@mx.test"])
        # the decision for the last RCPT is on record (a GREY tuple: it
        # was found valid) before the absence of a trap is checked
        check("file: after reload the RCPTs are greylisted as valid",
              bool(d.wait_db("GREY|127.0.0.47|")) and
              bool(wait_until(lambda: any("|f2@mx.test|" in l for l in
                                          d.greyctl()), 10)),
              repr(d.greyctl()))
        check("file: after reload @mx.test makes every user valid",
              not trapped(d, "127.0.0.47"), repr(d.greyctl()))
    finally:
        rc = d.stop()
    check("file: spamd exits 0", rc == 0, "status %s" % rc)
    check_sanitizer(d, "file")


class Postfix:
    """a private Postfix instance on 127.0.0.1:port as the real MX"""

    def __init__(self, tmp):
        self.tmp = os.path.join(tmp, "pfx")
        os.makedirs(self.tmp)
        os.chmod(tmp, 0o755)
        os.chmod(self.tmp, 0o755)
        self.conf = os.path.join(self.tmp, "conf")
        spool, data = (os.path.join(self.tmp, "spool"),
                       os.path.join(self.tmp, "data"))
        for p in (self.conf, spool, data):
            os.makedirs(p)
        shutil.chown(data, "postfix")
        self.maillog = os.path.join(self.tmp, "maillog")
        self.port = pick_port()
        shutil.copy("/usr/share/postfix/master.cf.dist",
                    os.path.join(self.conf, "master.cf"))
        open(os.path.join(self.conf, "main.cf"), "w").close()
        self.postconf(
            "compatibility_level = 3.6", "queue_directory = " + spool,
            "data_directory = " + data, "myhostname = mx.test",
            "mydestination = mx.test", "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4", "mynetworks = 127.0.0.0/8",
            "local_recipient_maps = inline:{alice=ok, bob=ok}",
            "smtpd_reject_unlisted_recipient = yes",
            "alias_maps =", "alias_database =",
            "maillog_file = " + self.maillog,
            "maillog_file_prefixes = " + self.tmp,
            "import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ "
            "LANG=C", "shlib_directory = /usr/lib/postfix",
            "daemon_directory = /usr/lib/postfix/sbin")
        self.postconf("-F", "*/*/chroot = n")
        self.postconf("-MX", "smtp/inet")
        self.postconf("-M", "127.0.0.1:%d/inet = 127.0.0.1:%d inet n - n - - "
                      "smtpd" % (self.port, self.port))
        self.running = False

    def postconf(self, *args):
        r = subprocess.run(["postconf", "-c", self.conf] + list(args),
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("postconf %r: %s" % (args, r.stderr))

    def listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
            return True
        except OSError:
            return False

    def start(self):
        subprocess.run(["postfix", "-c", self.conf, "start"],
                       capture_output=True, timeout=60)
        self.running = True
        if not wait_until(self.listening, 20, 0.2):
            log = ""
            if os.path.exists(self.maillog):
                with open(self.maillog, errors="replace") as f:
                    log = f.read()[-800:]
            raise RuntimeError("postfix did not listen: " + log)

    def stop(self):
        if self.running:
            subprocess.run(["postfix", "-c", self.conf, "stop"],
                           capture_output=True, timeout=60)
            self.running = False
            wait_until(lambda: not self.listening(), 20, 0.2)


def part_mx(tmp):
    if os.geteuid() != 0:
        skip("verify-mx: real Postfix MX", "not root (Postfix's master "
             "wants root)")
        return
    if shutil.which("postfix") is None or shutil.which("postconf") is None:
        skip("verify-mx: real Postfix MX", "postfix not installed")
        return
    mx = Postfix(tmp)
    d = None
    try:
        mx.start()
        ok("verify-mx: private Postfix MX listening")
        d = Daemon(tmp, "mx", ["--verify-mx", "127.0.0.1:%d" % mx.port,
                               "--verify-rate", "50"])
        common_checks(d, "verify-mx", "127.0.0.5")
        with open(mx.maillog, errors="replace") as f:
            mlog = f.read()
        check("verify-mx: Postfix rejected the unknown users with 550 5.1.1",
              "550 5.1.1 <xq7r@mx.test>" in mlog, mlog[-600:])

        # the cache: the same addresses again cause no probe
        c0 = d.counters()
        codes, _ = dialogue(d, "127.0.0.54", ["alice@mx.test",
                                             "xq7r@mx.test"])
        c1 = wait_until(lambda: (lambda c: c if c.get("verify_hits", 0) >=
                                 c0.get("verify_hits", 0) + 2 else None)(
                                     d.counters()), 10, 0.3)
        check("verify-mx: cached addresses are not probed again",
              c1 and c1["verify_probes"] == c0["verify_probes"],
              "before %r after %r" % (c0, c1))
        check("verify-mx: one cached invalid recipient does not trap",
              not trapped(d, "127.0.0.54"))

        # MX stopped: unknown, nobody trapped
        mx.stop()
        c0 = d.counters()
        codes, code = dialogue(d, "127.0.0.55", ["m1@mx.test", "m2@mx.test",
                                                "m3@mx.test"])
        check("verify-mx: MX down: the dialogue is greylisted as usual",
              codes == [250, 250, 250] and code == 451,
              "%r %r" % (codes, code))
        c1 = wait_until(lambda: (lambda c: c if c.get("mx_unknown", 0) >=
                                 c0.get("mx_unknown", 0) + 3 else None)(
                                     d.counters()), 30, 0.5)
        check("verify-mx: MX down: recipients are unknown",
              bool(c1), "before %r after %r" % (c0, d.counters()))
        check("verify-mx: MX down: nobody is trapped",
              not trapped(d, "127.0.0.55"), repr(d.greyctl()))
        check("verify-mx: MX down is logged",
              "event=verify_mx_down mx=127.0.0.1:%d" % mx.port in d.logtext(),
              d.logtext()[-600:])
    finally:
        if d is not None:
            rc = d.stop()
            check("verify-mx: spamd exits 0", rc == 0, "status %s" % rc)
            check_sanitizer(d, "verify-mx")
        mx.stop()


def main():
    if not os.access(SPAMD, os.X_OK) or not os.access(GREYCTL, os.X_OK):
        skip("spamd invalid recipients", "spamd or greyctl not built")
        return 0
    tmp = tempfile.mkdtemp(prefix="spamd_verify.")

    def on_term(sig, frame):
        raise SystemExit(1)
    signal.signal(signal.SIGTERM, on_term)
    try:
        for part in (part_file, part_mx):
            try:
                part(tmp)
            except Exception as e:      # a setup failure is one failed check
                notok(part.__name__, repr(e))
    finally:
        if R.failed:
            for fn in sorted(os.listdir(tmp)):
                if fn.endswith(".err"):
                    with open(os.path.join(tmp, fn), errors="replace") as f:
                        sys.stderr.write("--- %s\n%s" % (fn,
                                                         f.read()[-3000:]))
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
