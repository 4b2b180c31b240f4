#!/usr/bin/env python3
"""spamd_tls.py - STARTTLS (-C cert -K key) with real clients on loopback.

Makes a self-signed certificate with the openssl binary in a temporary
directory, starts $BUILD/spamd -d on 127.0.0.1 with ports in 22000-22999
and checks: bad -C/-K are startup errors naming the flag and file; without
certificates EHLO offers no STARTTLS and STARTTLS gets 454; with them EHLO
offers it, swaks --tls and Python's ssl module negotiate TLS and the
dialogue ends in 451 with the tuple in greyctl; after TLS, EHLO offers no
STARTTLS and a second STARTTLS gets 503; plain text pipelined behind
STARTTLS is dropped (RFC 3207); a blacklisted client is not offered TLS
and is refused (454); garbage instead of a TLS handshake closes that
connection (event=tls-error) while the daemon keeps serving.
"""
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as fl  # noqa: E402

SPAMD, GREYCTL = fl.SPAMD, fl.GREYCTL
HOSTNAME = "mx.tls.example"
R = fl.Results()
ok, notok, skip, check = R.ok, R.notok, R.skip, R.check


def pick_port():
    """A port in 22000-22999 free on 127.0.0.1."""
    return fl.pick_port("127.0.0.1", 22000, 22999)


def client_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Spamd(fl.Spamd):
    """One daemon with its own temporary directory (no -l: all addresses)."""

    def __init__(self, tmp, name, extra=()):
        os.makedirs(os.path.join(tmp, name))
        super().__init__(name, extra, tmp=os.path.join(tmp, name),
                         workers=None, hostname=HOSTNAME, nobody=False,
                         ports=(22000, 22999), config_port=True, listen=(),
                         logname="spamd.err")
        self.errpath = self.logpath
        try:
            self.wait_started(ready="tag=spamd-greytrap")
        except Exception:
            self.stop()
            raise

    def wait_db(self, prefix, secs=10):
        deadline = time.time() + secs
        while True:
            lines = [ln for ln in self.greyctl().splitlines()
                     if ln.startswith(prefix)]
            if lines or time.time() > deadline:
                return lines
            time.sleep(0.1)

    def alive(self):
        return self.proc.poll() is None


class Raw:
    """A line-based client from its own source address; tls() upgrades."""

    def __init__(self, port, src, timeout=10.0):
        self.s = socket.socket()
        self.s.settimeout(timeout)
        self.s.bind((src, 0))
        self.s.connect(("127.0.0.1", port))
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                raise EOFError("closed; have %r" % self.buf)
            self.buf += d
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.decode("ascii", "replace").rstrip("\r")

    def reply(self):
        """All lines of one (multi-line) reply."""
        out = [self.line()]
        while len(out[-1]) > 3 and out[-1][3] == "-":
            out.append(self.line())
        return out

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        return self.reply()

    def tls(self):
        self.s = client_ctx().wrap_socket(self.s, server_hostname="mx.test")

    def closed(self):
        try:
            while True:
                if not self.s.recv(4096):
                    return True
        except (socket.timeout, ssl.SSLError, OSError):
            return isinstance(sys.exc_info()[1], (ConnectionError,
                                                  ssl.SSLError))

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def run_checks(tmp, cert, key):
    # bad flags: startup errors naming the flag and the file
    missing = os.path.join(tmp, "missing.pem")
    for args, want, name in (
            (["-C", cert], "-K", "-C without -K refused"),
            (["-C", missing, "-K", key], missing, "-C missing file named"),
            (["-C", cert, "-K", cert], "-K " + cert, "-K not a key named")):
        r = subprocess.run([SPAMD, "-d", "--config-port", "0", "-p",
                            str(pick_port()), "--db-dir",
                            os.path.join(tmp, "baddb")] + args,
                           capture_output=True, text=True, timeout=20)
        check(name, r.returncode != 0 and want in r.stderr,
              "rc %d stderr %r" % (r.returncode, r.stderr))

    # without certificates: nothing offered, STARTTLS refused
    plain = Spamd(tmp, "plain")
    try:
        c = Raw(plain.port, "127.0.0.21")
        c.line()
        ehlo = c.cmd("EHLO plain.example")
        check("no -C/-K: EHLO offers no STARTTLS",
              not any("STARTTLS" in x for x in ehlo), repr(ehlo))
        r = c.cmd("STARTTLS")
        check("no -C/-K: STARTTLS gets 454", r[0].startswith("454"),
              repr(r))
        c.close()
    finally:
        plain.stop()

    d = Spamd(tmp, "tls", ["-C", cert, "-K", key])
    try:
        c = Raw(d.port, "127.0.0.22")
        c.line()
        ehlo = c.cmd("EHLO raw.example")
        check("EHLO offers STARTTLS (multi-line 250)",
              ehlo == ["250-" + HOSTNAME, "250 STARTTLS"], repr(ehlo))
        r = c.cmd("STARTTLS")
        check("STARTTLS gets 220", r == ["220 2.0.0 Ready to start TLS"],
              repr(r))
        c.tls()
        ehlo = c.cmd("EHLO raw.example")
        check("under TLS EHLO offers no STARTTLS",
              ehlo == ["250 " + HOSTNAME], repr(ehlo))
        r = c.cmd("STARTTLS")
        check("second STARTTLS gets 503", r[0].startswith("503"), repr(r))
        c.cmd("MAIL FROM:<raw@example.org>")
        c.cmd("RCPT TO:<user@example.com>")
        r = c.cmd("DATA")
        check("raw TLS client: 451 at DATA", r[0].startswith("451"), repr(r))
        c.close()
        check("raw TLS client: tuple recorded",
              len(d.wait_db("GREY|127.0.0.22|raw.example|")) == 1,
              "no tuple")
        check("handshake logged as event=tls",
              "event=tls id=" in d.logtext(), "no event=tls line")

        # swaks --tls
        if shutil.which("swaks") is None:
            skip("swaks --tls", "swaks not installed")
        else:
            r = subprocess.run(
                ["swaks", "--server", "127.0.0.1:%d" % d.port, "--tls",
                 "--local-interface", "127.0.0.23", "--helo",
                 "swaks.example", "--from", "swaks@example.org",
                 "--to", "user@example.com", "--timeout", "20"],
                capture_output=True, text=True, timeout=60)
            out = r.stdout + r.stderr
            if "Net::SSLeay" in out:
                skip("swaks --tls", "swaks lacks Net::SSLeay "
                     "(libnet-ssleay-perl)")
            else:
                check("swaks --tls: TLS started", "TLS started" in out,
                      out[-400:])
                check("swaks --tls: 451 at DATA", "<~* 451" in out,
                      out[-400:])
                check("swaks --tls: tuple recorded",
                      len(d.wait_db("GREY|127.0.0.23|swaks.example|")) == 1,
                      "no tuple")

        # Python's smtplib with ssl
        s = smtplib.SMTP("127.0.0.1", d.port, local_hostname="py.example",
                         timeout=20, source_address=("127.0.0.24", 0))
        code = None
        try:
            s.starttls(context=client_ctx())
            ver = s.sock.version()
            s.sendmail("py@example.org", ["user@example.com"],
                       "Subject: t\r\n\r\nhi\r\n")
        except smtplib.SMTPDataError as e:
            code = e.smtp_code
        finally:
            s.close()
        check("smtplib starttls: TLS 1.2+ and 451 at DATA",
              code == 451 and ver in ("TLSv1.2", "TLSv1.3"),
              "code %r version %r" % (code, ver))
        check("smtplib starttls: tuple recorded",
              len(d.wait_db("GREY|127.0.0.24|py.example|")) == 1, "no tuple")

        # plain text pipelined behind STARTTLS is dropped, not run
        c = Raw(d.port, "127.0.0.25")
        c.line()
        c.cmd("EHLO inject.example")
        c.s.sendall(b"STARTTLS\r\nMAIL FROM:<inject@example.org>\r\n")
        r = c.reply()
        c.tls()
        r2 = c.cmd("RCPT TO:<user@example.com>")
        check("pipelined plain text after STARTTLS dropped (RFC 3207)",
              r == ["220 2.0.0 Ready to start TLS"] and
              r2[0].startswith("503"), "%r then RCPT got %r" % (r, r2))
        c.close()

        # garbage instead of a ClientHello: that client goes, no one else
        c = Raw(d.port, "127.0.0.26")
        c.line()
        c.cmd("EHLO garbage.example")
        c.cmd("STARTTLS")
        c.s.sendall(bytes(range(256)) * 4 + b"\r\nQUIT\r\n")
        closed = c.closed()
        c.close()
        check("garbage handshake: connection closed", closed, "still open")
        check("garbage handshake: event=tls-error logged",
              d.wait_log("event=tls-error", 5), "no tls-error line")
        c = Raw(d.port, "127.0.0.27")
        c.line()
        c.cmd("EHLO after.example")
        r = c.cmd("STARTTLS")
        c.tls()
        ehlo = c.cmd("EHLO after.example")
        c.close()
        check("garbage handshake: daemon alive, next client gets TLS",
              d.alive() and ehlo == ["250 " + HOSTNAME], repr(ehlo))

        # a blacklisted client: not offered, refused if it asks
        with socket.create_connection(("127.0.0.1", d.cport), 5) as s:
            s.sendall(b'test;"Blocked %A";inet;1;127.0.0.29/32\n')
        d.wait_log("event=list-loaded engine=0 tag=test", 10)
        c = Raw(d.port, "127.0.0.29")
        c.line()
        ehlo = c.cmd("EHLO black.example")
        r = c.cmd("STARTTLS")
        c.close()
        check("blacklisted client: EHLO offers no STARTTLS",
              not any("STARTTLS" in x for x in ehlo), repr(ehlo))
        check("blacklisted client: STARTTLS gets 454",
              r[0].startswith("454"), repr(r))
        check("daemon alive after all TLS checks", d.alive(), "exited")
    finally:
        d.stop()
    log = d.logtext() + plain.logtext()
    # (LeakSanitizer cannot read /proc in the engines' chroot: that
    # message is not a finding)
    fl.sanitizer_check(R, "no sanitizer report in spamd's logs", [log])


def main():
    for name, path in (("spamd", SPAMD), ("greyctl", GREYCTL)):
        if not os.access(path, os.X_OK):
            skip("spamd tls", "%s not built (%s)" % (name, path))
            return 0
    if shutil.which("openssl") is None:
        skip("spamd tls", "no openssl binary to make a certificate")
        return 0
    tmp = tempfile.mkdtemp(prefix="spamd-tls.")
    try:
        cert = os.path.join(tmp, "cert.pem")
        key = os.path.join(tmp, "key.pem")
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                            "-nodes", "-days", "1", "-subj", "/CN=mx.test",
                            "-keyout", key, "-out", cert],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            skip("spamd tls", "openssl req failed: " + r.stderr[-200:])
            return 0
        try:
            run_checks(tmp, cert, key)
        except Exception as e:
            notok("spamd tls", "%s: %s" % (type(e).__name__, e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
