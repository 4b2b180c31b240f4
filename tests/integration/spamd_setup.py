#!/usr/bin/env python3
"""spamd_setup.py - spamd-setup against a real HTTP server and a real spamd.

A loopback http.server (port in 13000-13999) serves a gzip trap list; a
white list file cuts a hole in it. Checks:
  - spamd-setup -n prints the exact control line (white hole cut, ranges
    collapsed), reports a bad list line by file and line, writes no state;
  - an unreachable list is reported and not sent;
  - -b with the file firewall backend writes the black set;
  - the -R reloader keeps running through failed fetches, reloads on
    SIGHUP, stops on SIGTERM;
  - with build/spamd (when it is built and has --config-port and --db-dir):
    the list loads into the engine, a client from a listed 127.0.0.x is
    tarpitted and gets the message with its address after DATA, the white
    hole is greylisted (451) instead, dropping the list from spamd.conf and
    re-running clears it, and a corrupt gzip leaves the old list loaded.
Prints ok / not ok / skip lines; exits 1 if a check failed.
"""
import gzip
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.environ.get("TOP") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD") or os.path.join(TOP, "build")
SETUP = os.path.join(BUILD, "spamd-setup")
SPAMD = os.path.join(BUILD, "spamd")
HOST = "127.0.0.1"

sys.path.insert(0, os.path.join(TOP, "tests", "helpers"))
import fault_lib as fl  # noqa: E402

R = fl.Results()
ok, notok, skip, check = R.ok, R.notok, R.skip, R.check


def free_ports(n):
    """n distinct loopback ports in 13000-13999 that bind right now."""
    return [fl.pick_port(HOST, 13000, 13999) for _ in range(n)]


class Quiet(http.server.SimpleHTTPRequestHandler):
    """Serve files without logging to stderr; count requests."""
    hits = []

    def log_message(self, fmt, *args):
        Quiet.hits.append(self.path)

    def do_GET(self):
        # /to-file redirects to another scheme, /moved to the list itself
        if self.path in ("/to-file", "/moved"):
            self.send_response(302)
            self.send_header("Location", "file:///etc/hostname"
                             if self.path == "/to-file" else "/traps.gz")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


def run_setup(args, timeout=120):
    """Run spamd-setup; returns (rc, stdout, stderr)."""
    p = subprocess.run([SETUP] + args, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    return (p.returncode, p.stdout.decode("latin-1"),
            p.stderr.decode("latin-1"))


def write(path, data, mode="w"):
    with open(path, mode) as f:
        f.write(data)


CONF = """# test spamd.conf
all:\\
	:%(lists)s:
traps:\\
	:black:\\
	:msg="Your address %%A is on a trap list\\n\\
Go away\\n":\\
	:method=http:\\
	:file=127.0.0.1\\:%(http)d/traps.gz:
nowhite:\\
	:white:\\
	:method=file:\\
	:file=%(tmp)s/white.txt:
"""

LIST = ("# peer traps\n127.0.0.10 - 127.0.0.20\nnot-an-address\n"
        "2001:db8:bad::/48\n")
WANT = ('traps;"Your address %A is on a trap list\\nGo away\\n";inet;5;'
        "127.0.0.10/31;127.0.0.12/31;127.0.0.14/32;127.0.0.16/30;"
        "127.0.0.20/32;inet6;1;2001:db8:bad::/48\n")


def smtp_dialogue(port, src, timeout=60):
    """HELO, MAIL, RCPT, DATA from src; everything the server said (a
    blacklisted client is let through DATA (354) and gets the list's
    message after the body, as OpenBSD spamd does)."""
    return fl.smtp_said(port, src, timeout=timeout)


class Spamd:
    """build/spamd on loopback with a temporary database."""

    def __init__(self, tmp, port, cport):
        self.tmp, self.port, self.cport = tmp, port, cport
        self.proc = None
        self.err = os.path.join(tmp, "spamd.err")

    def start(self):
        db = os.path.join(self.tmp, "db")
        os.makedirs(db, exist_ok=True)
        argv = [SPAMD, "-d", "-S", "0", "-s", "0", "-l", HOST,
                "-p", str(self.port), "--db-dir", db,
                "--config-port", str(self.cport)]
        if os.geteuid() == 0:
            empty = os.path.join(self.tmp, "empty")
            os.makedirs(empty, exist_ok=True)
            argv += ["--user", "nobody", "--chroot", empty]
        with open(self.err, "ab") as e:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=e, stderr=e)
        end = time.monotonic() + 15
        while time.monotonic() < end and self.proc.poll() is None:
            try:
                c = socket.create_connection((HOST, self.port), timeout=5)
                c.settimeout(5)
                banner = c.recv(512)
                c.close()
                if banner.startswith(b"220"):
                    return None
            except OSError:
                pass
            time.sleep(0.1)
        why = "no banner within 15 s"
        if self.proc.poll() is not None:
            why = "exited with status %s" % self.proc.returncode
        self.stop()
        return why + ": " + self.tail()

    def tail(self):
        try:
            with open(self.err, "rb") as f:
                return " | ".join(f.read().decode("latin-1")
                                  .splitlines()[-3:])
        except OSError:
            return ""

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def engine_checks(tmp, conf, state, hport):
    """The checks that need a running engine."""
    names = ["engine load", "listed client tarpitted with message",
             "white hole greylisted", "removed list cleared",
             "corrupt gzip keeps old list"]
    # a daemon that is missing or does not start fails every check that
    # needs it (it used to skip them and exit 0: a broken spamd passed)
    if not os.access(SPAMD, os.X_OK):
        for n in names:
            notok(n, SPAMD + " missing (make)")
        return
    ports = free_ports(2)
    d = Spamd(tmp, ports[0], ports[1])
    why = d.start()
    if why is not None:
        for n in names:
            notok(n, "spamd did not start: %s" % why)
        return
    try:
        write(conf, CONF % {"lists": "traps:nowhite", "http": hport,
                            "tmp": tmp})
        rc, out, err = run_setup(["-d", "-f", conf, "-s", state,
                                  "-p", str(d.cport)])
        with open(state) as f:
            st = f.read()
        check(names[0], rc == 0 and "event=loaded" in err and
              "\ntraps\n" in st,
              "rc %d, state %r, stderr %s" % (rc, st, err[-400:]))

        said = smtp_dialogue(d.port, "127.0.0.12")
        last = said[-1]
        check(names[1], "450" in last and
              "Your address 127.0.0.12 is on a trap list" in last and
              "Go away" in last and "451" not in last,
              "after DATA got %r" % last[-300:])

        said = smtp_dialogue(d.port, "127.0.0.15")
        check(names[2], said[-2].startswith("451"),
              "DATA got %r" % said[-2][-200:])

        write(conf, CONF % {"lists": "nowhite", "http": hport,
                            "tmp": tmp})
        rc, out, err = run_setup(["-d", "-f", conf, "-s", state,
                                  "-p", str(d.cport)])
        with open(state) as f:
            st = f.read()
        said = smtp_dialogue(d.port, "127.0.0.12")
        check(names[3], rc == 0 and "event=cleared" in err and
              "traps" not in st and said[-2].startswith("451"),
              "rc %d, state %r, DATA got %r, stderr %s" %
              (rc, st, said[-2][-200:], err[-300:]))

        # load again, then serve a corrupt gzip: the old list stays
        write(conf, CONF % {"lists": "traps:nowhite", "http": hport,
                            "tmp": tmp})
        rc1, _, err1 = run_setup(["-f", conf, "-s", state,
                                  "-p", str(d.cport)])
        good = os.path.join(tmp, "www", "traps.gz")
        with open(good, "rb") as f:
            z = bytearray(f.read())
        bad = bytes(z[:10]) + b"\x00garbage, not deflate" * 4
        write(good, bad, "wb")
        rc2, _, err2 = run_setup(["-f", conf, "-s", state,
                                  "-p", str(d.cport)])
        write(good, bytes(z), "wb")
        with open(state) as f:
            st = f.read()
        said = smtp_dialogue(d.port, "127.0.0.11")
        last = said[-1]
        check(names[4], rc1 == 0 and rc2 == 1 and "gzip" in err2 and
              "previous version kept" in err2 and "\ntraps\n" in st and
              "Your address 127.0.0.11 is on a trap list" in last,
              "rc %d/%d, state %r, after DATA %r, stderr %s" %
              (rc1, rc2, st, last[-200:], (err1 + err2)[-400:]))
    finally:
        d.stop()


def main():
    if not os.access(SETUP, os.X_OK):
        notok("spamd-setup built", "%s missing (make)" % SETUP)
        return 1
    tmp = tempfile.mkdtemp(prefix="spamd_setup.")
    www = os.path.join(tmp, "www")
    os.makedirs(www)
    srv = None
    try:
        write(os.path.join(www, "traps.gz"), gzip.compress(LIST.encode()),
              "wb")
        write(os.path.join(tmp, "white.txt"), "127.0.0.15\n")
        hport = None
        for p in free_ports(5):
            try:
                srv = http.server.ThreadingHTTPServer(
                    (HOST, p), lambda *a, **k: Quiet(*a, directory=www,
                                                    **k))
                hport = p
                break
            except OSError:
                continue
        if srv is None:
            notok("http server", "no free port in 13000-13999")
            return 1
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        conf = os.path.join(tmp, "spamd.conf")
        state = os.path.join(tmp, "state")
        write(conf, CONF % {"lists": "traps:nowhite", "http": hport,
                            "tmp": tmp})

        # 1. -n: the exact line, bad line reported, no state written
        Quiet.hits.clear()
        rc, out, err = run_setup(["-n", "-f", conf, "-s", state])
        check("dry run prints the control line", rc == 0 and out == WANT,
              "rc %d, stdout %r, stderr %s" % (rc, out, err[-300:]))
        check("list fetched over http", any("/traps.gz" in h
                                            for h in Quiet.hits),
              "requests %r" % Quiet.hits)
        check("bad list line reported with file and line",
              ("127.0.0.1:%d/traps.gz:3: bad address: 'not-an-address'"
               % hport) in err, "stderr %s" % err[-300:])
        check("dry run writes no state", not os.path.exists(state),
              "state file written")

        # 1b. redirects: followed within http, refused to another scheme
        for path, good in (("moved", True), ("to-file", False)):
            c2 = os.path.join(tmp, "redir.conf")
            write(c2, "all:r:\nr:black:msg=\"m\":method=http:"
                  "file=127.0.0.1\\:%d/%s:\n" % (hport, path))
            rc, out, err = run_setup(["-n", "-f", c2, "-s", state])
            if good:
                check("http redirect within http followed",
                      rc == 0 and
                      out.startswith('r;"m";inet;4;127.0.0.10/31;'),
                      "rc %d, stdout %r, stderr %s" % (rc, out, err[-300:]))
            else:
                check("http redirect to file:// refused",
                      rc == 1 and out == "" and "fetch-failed" in err,
                      "rc %d, stdout %r, stderr %s" % (rc, out, err[-300:]))

        # 2. an unreachable list: reported, not sent, exit status 1
        dead = free_ports(1)[0]
        write(conf, CONF % {"lists": "traps:nowhite", "http": dead,
                            "tmp": tmp})
        rc, out, err = run_setup(["-n", "-f", conf, "-s", state,
                                  "--timeout", "10"])
        check("unreachable list reported and not sent",
              rc == 1 and out == "" and "event=fetch-failed" in err and
              "previous version kept" in err,
              "rc %d, stdout %r, stderr %s" % (rc, out, err[-300:]))

        # 3. -b with the file backend (no engine on the port: the send
        # fails, the firewall set is still written)
        write(conf, CONF % {"lists": "traps:nowhite", "http": hport,
                            "tmp": tmp})
        fwp = os.path.join(tmp, "fw")
        rc, out, err = run_setup(["-b", "--fw-backend", "file",
                                  "--fw-path", fwp, "-f", conf,
                                  "-s", state, "-p", str(dead)])
        try:
            with open(fwp + ".black") as f:
                black = f.read().split()
        except OSError as e:
            black = ["(%s)" % e]
        want = ["127.0.0.10/31", "127.0.0.12/31", "127.0.0.14",
                "127.0.0.16/30", "127.0.0.20", "2001:db8:bad::/48"]
        check("-b writes the firewall black set",
              sorted(black) == sorted(want) and rc == 1 and
              "send-failed" in err,
              "rc %d, set %r, stderr %s" % (rc, black, err[-300:]))
        # the list dropped from spamd.conf: its blocks leave the set too
        write(conf, CONF % {"lists": "nowhite", "http": hport, "tmp": tmp})
        rc, out, err = run_setup(["-b", "--fw-backend", "file",
                                  "--fw-path", fwp, "-f", conf,
                                  "-s", state, "-p", str(dead)])
        try:
            with open(fwp + ".black") as f:
                black = f.read().split()
        except OSError as e:
            black = ["(%s)" % e]
        check("-b removes blocks of a dropped list", black == [],
              "rc %d, set %r, stderr %s" % (rc, black, err[-300:]))
        write(conf, CONF % {"lists": "traps:nowhite", "http": hport,
                            "tmp": tmp})
        if os.path.exists(state):
            os.unlink(state)

        # 4. the reloader (-D -d -R: in the foreground): survives failed
        # sends, reloads on SIGHUP, stops on TERM
        errp = os.path.join(tmp, "daemon.err")
        with open(errp, "wb") as e:
            dp = subprocess.Popen([SETUP, "-D", "-d", "-R", "60", "-f", conf,
                                   "-s", os.path.join(tmp, "dstate"),
                                   "--pid-file",
                                   os.path.join(tmp, "setup.pid"),
                                   "-p", str(dead)],
                                  stdin=subprocess.DEVNULL, stdout=e,
                                  stderr=e)
        try:
            def reloads():
                with open(errp, "rb") as f:
                    return f.read().decode("latin-1").count("event=reload")
            end = time.monotonic() + 30
            while time.monotonic() < end and reloads() < 1:
                time.sleep(0.1)
            first = reloads()
            dp.send_signal(signal.SIGHUP)
            end = time.monotonic() + 30
            while time.monotonic() < end and reloads() < 2:
                time.sleep(0.1)
            alive = dp.poll() is None
            dp.send_signal(signal.SIGTERM)
            try:
                rc = dp.wait(15)
            except subprocess.TimeoutExpired:
                dp.kill()
                rc = dp.wait(10)
            check("-R reloads on SIGHUP and stops on SIGTERM",
                  first == 1 and reloads() == 2 and alive and rc == 0,
                  "reloads %d then %d, alive %s, rc %s" %
                  (first, reloads(), alive, rc))
        finally:
            if dp.poll() is None:
                dp.kill()
                dp.wait(10)

        # 5. with the engine
        engine_checks(tmp, conf, state, hport)
    finally:
        if srv is not None:
            srv.shutdown()
            srv.server_close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
