#!/usr/bin/env python3
"""openbsd_compat.py - issue 16: an OpenBSD spamd site moves over unchanged.

Each case is one point of the issue, driven as an OpenBSD admin or script
would: raw SMTP dialogues, spamdb-style greyctl loops with exit codes.
PORTS 16000-16199. Points 8, 9, 10 and 18 (config port lines, long
sync fields, the sync key, greylogd) are in openbsd_daemon.py.
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as fl  # noqa: E402

PORTS = (16000, 16199)
R = fl.Results()


class Raw:
    """A raw SMTP client from src: whole replies, multi-line aware."""

    def __init__(self, port, src, dst="127.0.0.1"):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.settimeout(fl.slow(20))
        self.s.bind((src, 0))
        self.s.connect((dst, port))
        self.buf = b""

    def reply(self):
        """every line of one reply, as sent (CRLF kept)"""
        lines = []
        while True:
            while b"\n" not in self.buf:
                d = self.s.recv(65536)
                if not d:
                    return lines
                self.buf += d
            line, self.buf = self.buf.split(b"\n", 1)
            lines.append(line + b"\n")
            if len(line) < 4 or line[3:4] != b"-":
                return lines

    def cmd(self, data):
        """send data, return the reply's lines ([] if the peer closed)"""
        try:
            self.s.sendall(data)
            return self.reply()
        except OSError:
            return []

    def close(self):
        self.s.close()


def main():
    tmp = tempfile.mkdtemp(prefix="openbsd_compat.")
    doms = os.path.join(tmp, "spamd.alloweddomains")
    with open(doms, "w") as f:
        f.write("# as on OpenBSD\nexample.com\n")
    os.environ["SPAMD_ALLOWEDDOMAINS"] = doms
    d = fl.Spamd("obsd", ports=PORTS, config_port=True,
                 listen=("127.0.0.1", "127.0.0.2"),
                 extra=["-M", "127.0.0.2"])
    db = None
    try:
        d.wait_started()
        db = d.db
        # 1. a client on two lists: one multi-line reply (one list per
        # connection here, as OpenBSD's spamd-setup sends them)
        fl.ask(("127.0.0.1", d.cport),
               'one;"Go away %A\\nsecond line";inet;1;127.0.16.1/32')
        fl.ask(("127.0.0.1", d.cport),
               'two;"Also on list two";inet;1;127.0.16.1/32')
        d.wait_log("list-loaded engine=0 tag=two", 10)
        c = Raw(d.port, "127.0.16.1")
        c.reply()
        for line in (b"HELO a\r\n", b"MAIL FROM:<a@b>\r\n",
                     b"RCPT TO:<c@example.com>\r\n", b"DATA\r\n"):
            c.cmd(line)
        out = c.cmd(b"body\r\n.\r\n")
        c.close()
        R.check("1. two lists: 450- on all lines but the last",
                out == [b"450-Go away 127.0.16.1\r\n", b"450-second line\r\n",
                        b"450 Also on list two\r\n"], repr(out))
        # 2. a 2 KB MAIL line with parameters is accepted
        c = Raw(d.port, "127.0.16.2")
        c.reply()
        c.cmd(b"EHLO long.example\r\n")
        big = b"MAIL FROM:<" + b"a" * 1500 + b"@example.net> SIZE=100 " + \
            b"X" * 600 + b"\r\n"
        m = c.cmd(big)
        r = c.cmd(b"RCPT TO:<user@example.com>\r\n")
        dt = c.cmd(b"DATA\r\n")
        c.close()
        R.check("2. 2 KB MAIL line: 250, and the dialogue ends in 451",
                m == [b"250 OK\r\n"] and r == [b"250 OK\r\n"] and
                dt and dt[0].startswith(b"451"), "%r %r %r" % (m, r, dt))
        # cut to 1,023 bytes, as OpenBSD (MAX_MAIL 1024), its '<'
        # included: the 1,512-byte address keeps 1,022 of its bytes
        R.check("2. the long tuple is stored (cut to 1,023 bytes)",
                fl.wait_for(lambda: any(
                    l.startswith("GREY|127.0.16.2|long.example|" + "a" * 1022
                                 + "|user@example.com|")
                    for l in d.greyctl().splitlines()), 10),
                d.greyctl()[-300:])
        # 3. a blacklisted client that skips MAIL/RCPT still gets 354
        c = Raw(d.port, "127.0.16.1")
        c.reply()
        dt = c.cmd(b"DATA\r\n")
        out = c.cmd(b"spam\r\n.\r\n")
        c.close()
        R.check("3. blacklisted DATA first: 354, then its lists' message",
                dt and dt[0].startswith(b"354") and len(out) == 3 and
                out[-1] == b"450 Also on list two\r\n", "%r %r" % (dt, out))
        c = Raw(d.port, "127.0.16.3")
        c.reply()
        dt = c.cmd(b"DATA\r\n")
        c.close()
        R.check("3. greylisted DATA first: RFC order kept (503)",
                dt and dt[0].startswith(b"503"), repr(dt))
        # 4. CR inside a line; ctime banner date
        c = Raw(d.port, "127.0.16.4")
        banner = c.reply()
        h = c.cmd(b"HELO cr.example\rNOOP\r\n")
        m = c.cmd(b"MAIL FROM:a@b\rjunk\r\n")
        c.close()
        R.check("4. a CR inside a line ends its fields, no syntax error",
                h and h[0].startswith(b"250") and m == [b"250 OK\r\n"],
                "%r %r" % (h, m))
        R.check("4. banner date in ctime form",
                banner and re.match(rb"220 \S+ ESMTP .*; [A-Z][a-z]{2} "
                                    rb"[A-Z][a-z]{2} [ 1-3]\d "
                                    rb"\d\d:\d\d:\d\d \d{4}\r\n$",
                                    banner[0]) is not None, repr(banner))
        # 5. the default alloweddomains file is read
        code, _ = fl.dialogue(d.port, "127.0.16.5", "h", "a@b",
                              ["x@elsewhere.test"])
        R.check("5. alloweddomains read by default: outside recipient traps",
                fl.wait_for(lambda: "TRAPPED|127.0.16.5|" in d.greyctl(),
                            10), d.greyctl()[-300:])
        code, _ = fl.dialogue(d.port, "127.0.16.6", "h", "a@b",
                              ["x@sub.example.com"])
        R.check("5. a recipient under an allowed suffix stays GREY",
                fl.wait_for(lambda: "GREY|127.0.16.6|" in d.greyctl(), 10)
                and "TRAPPED|127.0.16.6|" not in d.greyctl(),
                d.greyctl()[-300:])
        # 6. -M right after start: greylisted, not trapped
        s = socket.socket()
        s.settimeout(fl.slow(20))
        s.bind(("127.0.16.7", 0))
        s.connect(("127.0.0.2", d.port))
        buf = b""
        for line in (None, b"HELO h\r\n", b"MAIL FROM:<a@b>\r\n",
                     b"RCPT TO:<u@example.com>\r\n"):
            if line:
                s.sendall(line)
            code, buf = fl.recv_reply(s, buf)
        s.close()
        R.check("6. -M in the first 60 s: GREY, not TRAPPED",
                fl.wait_for(lambda: "GREY|127.0.16.7|" in d.greyctl(), 10)
                and "TRAPPED|127.0.16.7|" not in d.greyctl(),
                d.greyctl()[-300:])
        # 7. -B default maxcon - 100 when greylisting
        R.check("7. -B defaults to maxcon - 100 (800 -> 700)",
                "maxblack=700" in d.logtext(), d.log_tail())
        # 11/12. spamdb-style deletes
        gc = [fl.GREYCTL, "-D", d.db]
        subprocess.run(gc + ["-T", "-a", "trap@example.com"], timeout=30)
        rc = subprocess.run(gc + ["-d", "127.0.16.5"], capture_output=True,
                            text=True, timeout=30)
        R.check("11. greyctl -d of a TRAPPED address deletes it",
                rc.returncode == 0 and
                "TRAPPED|127.0.16.5|" not in d.greyctl(), rc.stderr)
        rc = subprocess.run(gc + ["-d", "trap@example.com"],
                            capture_output=True, text=True, timeout=30)
        R.check("11. greyctl -d trap@example.com deletes the SPAMTRAP",
                rc.returncode == 0 and "SPAMTRAP|trap@example.com" not in
                d.greyctl(), rc.stderr)
        subprocess.run(gc + ["-a", "192.0.2.1", "192.0.2.2"], timeout=30)
        rc = subprocess.run(gc + ["-d", "192.0.2.1", "192.0.2.99", "bad",
                                  "192.0.2.2"], capture_output=True,
                            text=True, timeout=30)
        dump = d.greyctl()
        R.check("12. per-key errors: reported, the other keys deleted, "
                "exit 1", rc.returncode == 1 and "192.0.2.99" in rc.stderr
                and "bad" in rc.stderr and "WHITE|192.0.2.1|" not in dump
                and "WHITE|192.0.2.2|" not in dump,
                "rc %d %r" % (rc.returncode, rc.stderr))
        rc = subprocess.run(gc + ["-d"], capture_output=True, text=True,
                            timeout=30)
        R.check("12. usage error (no keys) exits 2, as spamdb",
                rc.returncode == 2, "rc %d" % rc.returncode)
    finally:
        d.stop()
        fl.sanitizer_check(R, "no sanitizer report", paths=[d.logpath])
        d.cleanup()
    # 7. -l localhost, and -b's 354 then 451
    b = fl.Spamd("obsd-b", ports=PORTS, listen=(), extra=["-b", "-l",
                                                           "localhost"])
    try:
        b.wait_started(ready="event=engine-start")
        c = Raw(b.port, "127.0.16.9")
        banner = c.reply()
        for line in (b"HELO h\r\n", b"MAIL FROM:<a@b>\r\n",
                     b"RCPT TO:<c@d>\r\n"):
            c.cmd(line)
        dt = c.cmd(b"DATA\r\n")
        out = c.cmd(b"x\r\n.\r\n")
        c.close()
        R.check("7. -l localhost binds 127.0.0.1: a client there gets the "
                "220 banner", banner and banner[0].startswith(b"220 "),
                "%r" % banner)
        R.check("7. -b: 354, then 451 after the message",
                dt and dt[0].startswith(b"354") and out and
                out[0].startswith(b"451"), "%r %r" % (dt, out))
    except (RuntimeError, OSError) as e:
        R.notok("7. -l localhost / -b", "%s %s" % (e, b.log_tail()))
    finally:
        b.stop()
        b.cleanup()
    return R.status()


if __name__ == "__main__":
    sys.exit(main())
