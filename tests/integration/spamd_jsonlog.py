#!/usr/bin/env python3
"""spamd_jsonlog.py - --log-format json and the tarpit/DNSBL metrics.

Runs $BUILD/spamd -d -v --log-format json on loopback (ports and the
DNS responder of dnsbl.py in 23000-23999) with two DNSBL zones, zen.test
(lists 127.0.0.3) and slow.test (never answers), and --http-listen. Two
dialogues: 127.0.0.9 (not listed: greylisted) and 127.0.0.3 (listed:
tarpitted, kept open two seconds after DATA). Then:
  - GET /metrics: connections by class (grey 2, dnsbl 1), seconds held in
    the tarpit (>= 1), DNSBL queries/listed/timeouts by zone;
  - after SIGTERM, every stderr line is one JSON object with ts, prog,
    pid, level, and the key=value pairs as members (connect, disconnect,
    dnsbl-tarpit events);
  - --log-format with another name stops spamd naming the flag.
Prints ok / not ok / skip lines; exits 1 on a failure.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("TOP") or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("BUILD") or os.path.join(TOP, "build")
SPAMD = os.path.join(BUILD, "spamd")
HOST = "127.0.0.1"

sys.path.insert(0, HERE)
import dnsbl as dnsrv  # noqa: E402  (the DNS responder and its records)

sys.path.insert(0, os.path.join(HERE, "..", "helpers"))
import fault_lib as fl  # noqa: E402

R = fl.Results()
ok, notok, check = R.ok, R.notok, R.check


def pick_port(kind=socket.SOCK_STREAM):
    return fl.pick_port(HOST, 23000, 23999, kind)


class Dns(dnsrv.Server):
    """dnsbl.py's responder, bound in this test's port range"""

    def __init__(self):
        super().__init__(port=pick_port(socket.SOCK_DGRAM))


class Raw:
    """a raw SMTP client bound to its own source address"""

    def __init__(self, port, src, timeout=15.0):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.bind((src, 0))
        self.s.connect((HOST, port))
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                raise EOFError("closed; have %r" % self.buf)
            self.buf += d
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.decode("latin-1").rstrip("\r")

    def cmd(self, text):
        self.s.sendall(text + b"\r\n")
        return self.line()

    def close(self):
        self.s.close()


def dialogue(port, src, hold=0.0):
    """HELO (with odd bytes), MAIL, RCPT, DATA; hold secs; QUIT"""
    c = Raw(port, src)
    try:
        c.line()
        c.cmd(b"HELO odd\"name\x01=x")
        c.cmd(b"MAIL FROM:<x@example.org>")
        c.cmd(b"RCPT TO:<user@example.com>")
        r = c.cmd(b"DATA")
        if hold:
            time.sleep(hold)
        try:
            c.s.sendall(b"QUIT\r\n")
        except OSError:
            pass
        return r
    finally:
        c.close()


def metrics(url):
    """the /metrics samples as {name{labels}: float}"""
    out = {}
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read().decode("ascii", "replace")
    except OSError:
        return out
    for ln in body.splitlines():
        if ln.startswith("#") or not ln.strip():
            continue
        k, _, v = ln.rpartition(" ")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="spamd-jsonlog.")
    dns = Dns()
    proc = None
    try:
        # an unknown format is refused, naming the flag
        r = subprocess.run([SPAMD, "-d", "--log-format", "xml"],
                           capture_output=True, text=True, timeout=30)
        check("--log-format xml refused naming the flag",
              r.returncode == 1 and "--log-format xml" in r.stderr,
              "exit %d: %r" % (r.returncode, r.stderr[-200:]))

        port, hport = pick_port(), pick_port()
        os.makedirs(os.path.join(tmp, "empty"))
        argv = [SPAMD, "-d", "-v", "--log-format", "json", "-S", "0",
                "-s", "0", "-l", HOST, "-p", str(port),
                "--config-port", "0",
                "--db-dir", os.path.join(tmp, "db"),
                "--chroot", os.path.join(tmp, "empty"),
                "--commit-window", "50",
                "--http-listen", "%s:%d" % (HOST, hport),
                "--dns-server", "%s:%d" % (HOST, dns.port),
                "--dnsbl", "zen.test", "--dnsbl", "slow.test",
                "--dnsbl-timeout", "1000"]
        if os.geteuid() == 0:
            argv += ["--user", "nobody"]
        errpath = os.path.join(tmp, "spamd.err")
        err = open(errpath, "w")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=err, stderr=err)
        end = time.monotonic() + 15
        up = False
        url = "http://%s:%d/metrics" % (HOST, hport)
        # why not probe the SMTP port: a probe would be a connection the
        # metrics count; the engine reporting its counters means it runs
        while time.monotonic() < end and proc.poll() is None:
            if metrics(url).get('spamd_engines{state="reporting"}') == 1:
                up = True
                break
            time.sleep(0.2)
        if not up:
            with open(errpath) as f:
                notok("spamd starts with --log-format json", f.read()[-500:])
            return
        ok("spamd starts with --log-format json")

        r1 = dialogue(port, "127.0.0.9")
        r2 = dialogue(port, "127.0.0.3", hold=2.2)
        check("dialogues: unlisted greylisted, listed tarpitted",
              r1.startswith("451") and r2.startswith("354"),
              "DATA replies %r, %r" % (r1, r2))

        want = {
            'spamd_connections_total{class="grey"}': 2,
            'spamd_connections_total{class="dnsbl"}': 1,
            'spamd_dnsbl_queries_total{zone="zen.test"}': 2,
            'spamd_dnsbl_listed_total{zone="zen.test"}': 1,
            'spamd_dnsbl_timeouts_total{zone="zen.test"}': 0,
            'spamd_dnsbl_queries_total{zone="slow.test"}': 2,
            'spamd_dnsbl_listed_total{zone="slow.test"}': 0,
            'spamd_dnsbl_timeouts_total{zone="slow.test"}': 2,
        }
        m = {}
        end = time.monotonic() + 15
        while time.monotonic() < end:
            m = metrics(url)
            if all(m.get(k) == v for k, v in want.items()) and \
                    m.get('spamd_connections_closed_total{reason="all"}') \
                    == 2:
                break
            time.sleep(0.3)
        bad = {k: m.get(k) for k, v in want.items() if m.get(k) != v}
        check("/metrics: connections by class incl. dnsbl, DNSBL queries/"
              "listed/timeouts by zone", not bad, "got %r" % bad)
        ts = m.get("spamd_tarpit_seconds_total")
        check("/metrics: spamd_tarpit_seconds_total counts the listed "
              "client's held seconds", ts is not None and 1 <= ts <= 10,
              "got %r" % ts)

        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        err.close()
        with open(errpath, "rb") as f:
            raw = f.read()
        # under ASan (BUILD=build/asan) LeakSanitizer cannot read /proc
        # from the chrooted engine and says so on stderr: not log lines
        san = [ln for ln in raw.splitlines() if re.match(rb"==\d+==", ln)]
        lines = [ln for ln in raw.splitlines() if ln not in san]
        fl.sanitizer_check(R, "no sanitizer report",
                           [raw.decode("latin-1")])
        objs, badl = [], []
        for ln in lines:
            try:
                o = json.loads(ln.decode("ascii"))
                if not isinstance(o, dict):
                    raise ValueError("not an object")
                objs.append(o)
            except ValueError as e:
                badl.append("%r (%s)" % (ln[:120], e))
        check("every stderr line is one JSON object (%d lines)" % len(lines),
              lines and not badl, "; ".join(badl[:3]) or "no lines")
        fixed = [o for o in objs
                 if isinstance(o.get("ts"), str) and o.get("prog")
                 and isinstance(o.get("pid"), int) and
                 o.get("level") in ("info", "warning", "debug", "crit")]
        check("every line has ts, prog, pid (number), level",
              objs and len(fixed) == len(objs),
              "%d of %d" % (len(fixed), len(objs)))
        conn = [o for o in objs if o.get("event") == "connect"]
        disc = [o for o in objs if o.get("event") == "disconnect"]
        tarp = [o for o in objs if o.get("event") == "dnsbl-tarpit"]
        check("key=value pairs become members: connect ip/class",
              sorted((o.get("ip"), o.get("class")) for o in conn) ==
              [("127.0.0.3", "grey"), ("127.0.0.9", "grey")],
              "connect lines %r" % conn)
        check("disconnect lines carry secs and reason as strings",
              len(disc) == 2 and all(isinstance(o.get("secs"), str) and
                                     o.get("reason") for o in disc),
              "%r" % disc)
        check("dnsbl-tarpit names the zone",
              len(tarp) == 1 and tarp[0].get("zones") == "zen.test" and
              tarp[0].get("ip") == "127.0.0.3", "%r" % tarp)
        # the session makes the control byte '?', log_escape '"' and '='
        # '_': the whole HELO stays one member, nothing leaks into others
        tup = [o for o in objs if o.get("event") == "tuple" and
               o.get("ip") == "127.0.0.9"]
        check("client bytes in a HELO stay inside the helo member",
              len(tup) == 1 and tup[0].get("helo") == "odd_name?_x" and
              "x" not in tup[0],
              "%r" % tup)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)
        dns.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
    sys.exit(1 if R.failed else 0)
