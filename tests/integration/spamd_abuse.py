#!/usr/bin/env python3
"""spamd_abuse.py - abuse a running spamd; after each abuse a normal client
(smtplib, from its own 127.0.x address) must still complete its dialogue
(451 at DATA) and the daemon must still be alive.

Abuses: a 100 KB line with no newline, 10 MB of random bytes, NUL bytes in
a command, bare CR and bare LF line ends, 1,000 pipelined commands in one
write, printf formats in HELO/MAIL, 2 KB addresses, 5,000 RCPTs (the first 100
get 250, the rest 452 past --max-rcpt; engine memory stays bounded), 30
unknown commands (hung up on after 20), 2,000
fast connect/close, 500 silent connections, a client that never reads.
At the end the daemon's stderr must hold no sanitizer report and SIGTERM
must stop it.

Starts $BUILD/spamd -d -S 0 -s 0 -c 3000 on 127.0.0.1 with a free port in
15000-15999 and a temporary --db-dir; every check is skipped (with the
reason) when $BUILD/spamd does not exist or does not start.
"""
import os
import random
import select
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

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("TOP") or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("BUILD") or os.path.join(TOP, "build")
SPAMD = os.path.join(BUILD, "spamd")
HOST = "127.0.0.1"

CHECKS = [
    "daemon starts and sends a banner",
    "100 KB line without newline: 500 or close",
    "10 MB of random bytes: connection closed",
    "NUL byte in a command: 5xx reply",
    "bare LF line ends: dialogue completes",
    "bare CR inside a line: answered, dialogue completes",
    "1,000 pipelined commands: every answer, in order",
    "printf formats in HELO/MAIL/RCPT: plain replies",
    "2 KB address in MAIL: 250 (lines up to 8,192 bytes)",
    "2 KB address in RCPT: 250 (lines up to 8,192 bytes)",
    "5,000 RCPTs: every answer (100 x 250, 4,900 x 452), 451 at DATA",
    "5,000 RCPTs: daemon memory growth under 50 MB",
    "30 unknown commands: 20 answers of 500, then closed",
    "2,000 fast connect/close",
    "500 silent connections held (banner on each)",
    "client that never reads",
    "no sanitizer report in the daemon's stderr",
    "daemon exits on SIGTERM",
]

R = fl.Results()
ok, notok, skip = R.ok, R.notok, R.skip


class Raw:
    """A raw client socket with a line reader."""

    def __init__(self, port, src, timeout=10.0):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.bind((src, 0))
        self.s.connect((HOST, port))
        self.buf = b""
        self.eof = False

    def fill(self):
        """Read more; False on EOF or reset."""
        try:
            d = self.s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def line(self):
        """One line without its ending, or None on EOF."""
        while b"\n" not in self.buf:
            if self.eof or not self.fill():
                return None
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.rstrip(b"\r")

    def reply(self):
        """(code, text of the last line) of one reply; (None, '') on EOF."""
        while True:
            ln = self.line()
            if ln is None:
                return None, ""
            if len(ln) < 4 or ln[3:4] != b"-":
                try:
                    code = int(ln[:3])
                except ValueError:
                    code = -1
                return code, ln.decode("latin-1")

    def send(self, data):
        """Send all of data; False when the server closed or reset."""
        try:
            self.s.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def closed_by_server(self, timeout=10.0):
        """True once the server closes (EOF or reset) within timeout."""
        end = time.monotonic() + timeout
        self.buf = b""
        while time.monotonic() < end:
            if self.eof:
                return True
            self.s.settimeout(max(0.05, end - time.monotonic()))
            try:
                if not self.fill():
                    return True
                self.buf = b""
            except socket.timeout:
                return False
        return False

    def close(self):
        self.s.close()


def sanitized():
    """True under ASan or valgrind (fault_lib's tests of the binary)"""
    return fl.asan_build(SPAMD) or fl.under_valgrind(SPAMD)


def rss_tree_kb(root):
    """VmRSS (kB) summed over root and its descendants."""
    parent = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            parent[int(d)] = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            pass
    tree, grew = {root}, True
    while grew:
        grew = False
        for p, pp in parent.items():
            if pp in tree and p not in tree:
                tree.add(p)
                grew = True
    total = 0
    for p in tree:
        try:
            with open("/proc/%d/status" % p) as f:
                for ln in f:
                    if ln.startswith("VmRSS:"):
                        total += int(ln.split()[1])
        except OSError:
            pass
    return total


class Daemon(fl.Spamd):
    """the daemon under attack: fault_lib's Spamd (loopback, its own
    temporary directory, --user nobody and a chroot as root) with -c 3000,
    no stutter, not verbose (5,000 RCPTs would flood its log)"""

    def __init__(self, tmp):
        super().__init__("abuse", tmp=tmp, extra=["-c", "3000"],
                         ports=(15000, 15999), logname="spamd.err",
                         hostname=None, verbose=False)
        self.err_path = self.logpath

    def start(self):
        """None once the daemon answers with its banner, else why not"""
        try:
            self.wait_started()
            r = Raw(self.port, "127.0.0.1", timeout=fl.slow(5))
            code, _ = r.reply()
            r.close()
        except (RuntimeError, OSError) as e:
            return str(e)[:300]
        return None if code == 220 else "banner code %r" % code

    def alive(self):
        return self.proc.poll() is None

    def stderr_tail(self, n=3):
        return self.log_tail(n)

    def stop(self, secs=10):
        """SIGTERM; True if it stopped by itself (not killed)"""
        return super().stop(secs) != -signal.SIGKILL


def normal_client(d, n):
    """A normal dialogue from 127.0.2.n: None when it ends in 451."""
    src = "127.0.2.%d" % n
    try:
        c = smtplib.SMTP(HOST, d.port, source_address=(src, 0), timeout=20)
        code, _ = c.helo("normal%d.example.net" % n)
        if code != 250:
            return "HELO got %d" % code
        code, _ = c.mail("sender%d@example.net" % n)
        if code != 250:
            return "MAIL got %d" % code
        code, _ = c.rcpt("user%d@example.com" % n)
        if code != 250:
            return "RCPT got %d" % code
        try:
            code, _ = c.data(b"Subject: x\r\n\r\nx\r\n")
            return "DATA accepted with %d" % code
        except smtplib.SMTPDataError as e:
            if e.smtp_code != 451:
                return "DATA got %d" % e.smtp_code
        try:
            c.close()
        except OSError:
            pass
        return None
    except (OSError, smtplib.SMTPException) as e:
        return "%s: %s" % (type(e).__name__, e)


def after(d, name, n, why):
    """Report check name: its own failure, else the daemon and a client."""
    if why is None and not d.alive():
        why = "daemon died: " + d.stderr_tail()
    if why is None:
        w = normal_client(d, n)
        if w is not None:
            why = "normal client after it: " + w
    if why is None and not d.alive():
        why = "daemon died: " + d.stderr_tail()
    if why is None:
        ok(name)
    else:
        notok(name, why)


def greet(r):
    """Read the banner; None or why not."""
    code, text = r.reply()
    return None if code == 220 else "banner %r %s" % (code, text)


def check_long_line(d, name, n):
    r = Raw(d.port, "127.0.3.1")
    why = greet(r)
    if why is None:
        r.send(b"A" * 100000)
        try:
            code, text = r.reply()
        except socket.timeout:
            code, text = "timeout", ""
        if code not in (None, 500):
            why = "reply %r %s" % (code, text)
        elif not r.closed_by_server():
            why = "connection not closed"
    r.close()
    after(d, name, n, why)


def check_random(d, name, n):
    r = Raw(d.port, "127.0.3.2")
    why = greet(r)
    if why is None:
        rnd = random.Random(8)
        sent, closed = 0, False
        try:
            while sent < 10 * 1024 * 1024:
                chunk = rnd.randbytes(65536)
                if not r.send(chunk):
                    closed = True
                    break
                sent += len(chunk)
        except socket.timeout:
            pass
        if not closed and not r.closed_by_server():
            why = "server neither closed nor reset (%d bytes sent)" % sent
    r.close()
    after(d, name, n, why)


def check_nul(d, name, n):
    r = Raw(d.port, "127.0.3.3")
    why = greet(r)
    if why is None:
        r.send(b"HELO a\x00b.example\r\n")
        code, text = r.reply()
        if code is None or code // 100 != 5:
            why = "reply %r %s" % (code, text)
    r.close()
    after(d, name, n, why)


def dialogue(r, lines, expect):
    """Send lines (bytes, one write) and compare the reply codes."""
    r.send(b"".join(lines))
    got = []
    for _ in expect:
        code, _ = r.reply()
        got.append(code)
        if code is None:
            break
    return None if got == expect else "replies %r, expected %r" % (
        got, expect)


def check_bare_lf(d, name, n):
    r = Raw(d.port, "127.0.3.4")
    why = greet(r) or dialogue(
        r, [b"HELO lf.example\n", b"MAIL FROM:<lf@example.net>\n",
            b"RCPT TO:<lf@example.com>\n", b"DATA\n"], [250, 250, 250, 451])
    r.close()
    after(d, name, n, why)


def check_bare_cr(d, name, n):
    r = Raw(d.port, "127.0.3.5")
    why = greet(r)
    if why is None:
        r.send(b"HELO cr.example\rNOOP\r\n")
        code, text = r.reply()
        if code is None or code not in (250, 500, 501):
            why = "reply to the bare-CR line %r %s" % (code, text)
        else:
            why = dialogue(r, [b"HELO cr2.example\r\n",
                               b"MAIL FROM:<cr@example.net>\r\n",
                               b"RCPT TO:<cr@example.com>\r\n",
                               b"DATA\r\n"], [250, 250, 250, 451])
    r.close()
    after(d, name, n, why)


def check_pipelined(d, name, n):
    r = Raw(d.port, "127.0.3.6", timeout=20)
    why = greet(r)
    if why is None:
        lines = [b"HELO pipe.example\r\n", b"MAIL FROM:<p@example.net>\r\n"]
        lines += [b"RCPT TO:<p%d@example.com>\r\n" % i for i in range(997)]
        lines.append(b"DATA\r\n")
        # --max-rcpt (default 100): a connection has 100 RCPTs recorded,
        # the others get 452 4.5.3 (still answered, in order)
        why = dialogue(r, lines, [250] * 102 + [452] * 897 + [451])
        if why is not None and len(why) > 200:
            why = why[:200] + "..."
    r.close()
    after(d, name, n, why)


def check_format(d, name, n):
    r = Raw(d.port, "127.0.3.7")
    why = greet(r)
    if why is None:
        r.send(b"HELO plain.example\r\n")
        plain = r.reply()
        r.send(b"HELO %s%n%x%p%n%s\r\n")
        fmt = r.reply()
        if plain[0] != 250 or fmt != plain:
            why = "HELO replies differ: %r vs %r" % (plain, fmt)
    if why is None:
        r.send(b"MAIL FROM:<%s%n%x%n@example.net>\r\n")
        m = r.reply()
        r.send(b"RCPT TO:<%n%s%x@example.com>\r\n")
        t = r.reply()
        r.send(b"DATA\r\n")
        dt = r.reply()
        if (m[0], t[0], dt[0]) != (250, 250, 451) or \
                any("%" in x[1] or "(nil)" in x[1] or "(null)" in x[1]
                    for x in (m, t, dt)):
            why = "replies %r %r %r" % (m, t, dt)
    r.close()
    after(d, name, n, why)


def check_long_addr(d, name, n, where):
    r = Raw(d.port, "127.0.3.8")
    why = greet(r)
    big = b"<" + b"a" * 2000 + b"@example.net>"
    if why is None:
        r.send(b"HELO long.example\r\n")
        code, _ = r.reply()
        if where == "rcpt":
            r.send(b"MAIL FROM:<x@example.net>\r\n")
            code2, _ = r.reply()
            if (code, code2) != (250, 250):
                why = "HELO/MAIL got %r %r" % (code, code2)
            elif not r.send(b"RCPT TO:" + big + b"\r\n"):
                why = "send failed"
        elif code != 250:
            why = "HELO got %r" % code
        elif not r.send(b"MAIL FROM:" + big + b"\r\n"):
            why = "send failed"
    if why is None:
        # issue 16: lines up to 8,192 bytes are taken, as OpenBSD (a 2 KB
        # address got 500 line too long at 512 before); the address is
        # kept cut to 1,023 bytes. Past 8,192: the 100 KB case above.
        code, text = r.reply()
        if code != 250:
            why = "reply %r %s" % (code, text)
    r.close()
    after(d, name, n, why)


def check_many_rcpts(d, name_a, name_b, n):
    before = rss_tree_kb(d.proc.pid)
    r = Raw(d.port, "127.0.3.9", timeout=30)
    why = greet(r)
    if why is None:
        r.send(b"HELO many.example\r\nMAIL FROM:<m@example.net>\r\n")
        codes = [r.reply()[0], r.reply()[0]]
        if codes != [250, 250]:
            why = "HELO/MAIL got %r" % codes
    # (changed with --max-rcpt) every RCPT is still answered, but only
    # the first 100 of a connection get 250 (and a tuple); the other
    # 4,900 get 452 4.5.3 Too many recipients; DATA still gets 451
    answered, refused = 0, 0
    if why is None:
        for start in range(0, 5000, 500):
            r.send(b"".join(b"RCPT TO:<m%d@example.com>\r\n" % i
                            for i in range(start, start + 500)))
            for _ in range(500):
                code, text = r.reply()
                if code is None:
                    break
                if code == 250:
                    answered += 1
                elif code == 452:
                    refused += 1
            if code is None:
                break
        r.send(b"DATA\r\n")
        code, text = r.reply()
        if answered != 100 or refused != 4900 or code != 451:
            why = "%d RCPTs answered 250, %d 452, DATA got %r %s" % (
                answered, refused, code, text)
    r.close()
    after(d, name_a, n, why)
    grow = rss_tree_kb(d.proc.pid) - before
    if not d.alive():
        notok(name_b, "daemon died")
    elif sanitized():
        # ASan keeps freed memory in quarantine (256 MB by default),
        # valgrind too (--freelist-vol) plus its shadow memory
        skip(name_b, "RSS says nothing under ASan or valgrind (grew %d kB)"
             % grow)
    elif grow >= 50 * 1024:
        notok(name_b, "grew %d kB" % grow)
    else:
        print("# 5,000 RCPTs: daemon RSS grew %d kB" % grow)
        ok(name_b)


def check_unknown(d, name, n):
    r = Raw(d.port, "127.0.3.10")
    why = greet(r)
    count, closed = 0, False
    if why is None:
        for i in range(30):
            if not r.send(b"XYZZY%d\r\n" % i):
                closed = True
                break
            code, text = r.reply()
            if code is None:
                closed = True
                break
            if code == 500:
                count += 1
            else:
                why = "command %d got %r %s" % (i, code, text)
                break
        if why is None and not closed:
            closed = r.closed_by_server()
        if why is None and (count != 20 or not closed):
            why = "%d answers of 500, closed=%s" % (count, closed)
    r.close()
    after(d, name, n, why)


def check_fast_connect(d, name, n):
    why, done, end = None, 0, time.monotonic() + 120
    for i in range(2000):
        if time.monotonic() > end:
            why = "only %d connections in 120 s" % i
            break
        s = socket.socket()
        s.settimeout(5)
        try:
            s.bind(("127.0.4.%d" % (1 + i % 50), 0))
            s.connect((HOST, d.port))
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")
            done += 1
        except OSError as e:
            why = "connect %d: %s" % (i, e)
            break
        finally:
            s.close()
    after(d, name, n, why)


def check_silent(d, name, n):
    held, why = [], None
    try:
        for i in range(500):
            s = socket.socket()
            s.settimeout(10)
            s.bind(("127.0.%d.%d" % (5 + i // 250, 1 + i % 250), 0))
            s.connect((HOST, d.port))
            held.append(s)
        banners = 0
        for s in held:
            try:
                if s.recv(3) == b"220":
                    banners += 1
            except OSError:
                pass
        if banners != 500:
            why = "%d of 500 got a banner" % banners
        elif d.alive():
            w = normal_client(d, n)
            if w is not None:
                why = "normal client while they are held: " + w
            else:
                # still held: none closed by the server meanwhile
                r, _, _ = select.select(held, [], [], 0)
                for s in r:
                    try:
                        if s.recv(65536, socket.MSG_PEEK) == b"":
                            why = "the server closed a silent connection"
                            break
                    except OSError:
                        why = "a silent connection was reset"
                        break
    except OSError as e:
        why = "connection %d: %s" % (len(held), e)
    finally:
        for s in held:
            s.close()
    after(d, name, n, why)


def check_never_reads(d, name, n):
    s = socket.socket()
    s.bind(("127.0.3.11", 0))
    s.connect((HOST, d.port))
    s.setblocking(False)
    sent, why, end = 0, None, time.monotonic() + 10
    chunk = b"NOOP\r\n" * 1000
    stalled = 0.0
    while sent < 50 * 1024 * 1024 and time.monotonic() < end:
        try:
            sent += s.send(chunk)
            stalled = 0.0
        except BlockingIOError:
            if stalled == 0.0:
                stalled = time.monotonic()
            elif time.monotonic() - stalled > 1.0:
                break
            time.sleep(0.01)
        except OSError:
            break
    # the client still does not read while a normal client comes
    if not d.alive():
        why = "daemon died"
    else:
        w = normal_client(d, n)
        if w is not None:
            why = "normal client meanwhile: " + w
    print("# never-reads client: wrote %d bytes before stalling" % sent)
    s.close()
    after(d, name, n, why)


def main():
    if not os.path.exists(SPAMD):
        for c in CHECKS:
            skip(c, "%s does not exist (build it first)" % SPAMD)
        return 0
    tmp = tempfile.mkdtemp(prefix="spamd_abuse.")
    d = Daemon(tmp)
    try:
        why = d.start()
        if why is not None:
            notok(CHECKS[0], why)
            for c in CHECKS[1:]:
                skip(c, "the daemon did not start")
            return 1
        ok(CHECKS[0])
        c = iter(CHECKS[1:])
        runs = [
            lambda n: check_long_line(d, next(c), n),
            lambda n: check_random(d, next(c), n),
            lambda n: check_nul(d, next(c), n),
            lambda n: check_bare_lf(d, next(c), n),
            lambda n: check_bare_cr(d, next(c), n),
            lambda n: check_pipelined(d, next(c), n),
            lambda n: check_format(d, next(c), n),
            lambda n: check_long_addr(d, next(c), n, "mail"),
            lambda n: check_long_addr(d, next(c), n, "rcpt"),
            lambda n: check_many_rcpts(d, next(c), next(c), n),
            lambda n: check_unknown(d, next(c), n),
            lambda n: check_fast_connect(d, next(c), n),
            lambda n: check_silent(d, next(c), n),
            lambda n: check_never_reads(d, next(c), n),
        ]
        for n, run in enumerate(runs, 1):
            if not d.alive():
                for name in c:
                    skip(name, "the daemon died earlier")
                break
            try:
                run(n)
            except (OSError, socket.timeout) as e:
                notok("check %d" % n, "%s: %s" % (type(e).__name__, e))
        stopped = d.stop()
        with open(d.err_path, "rb") as f:
            err = f.read().decode("latin-1")
        bad = [ln for ln in err.splitlines()
               if any(m in ln for m in fl.SANITIZER_MARKS)]
        if "LeakSanitizer has encountered a fatal error" in err:
            # the chrooted engine cannot read /proc at exit: no leak check
            print("# LeakSanitizer could not run in a daemon process "
                  "(chroot hides /proc); leaks of that process unchecked")
        rest = list(c)
        # a sanitizer scan means something only where one runs
        if CHECKS[-2] in rest and fl.asan_build(SPAMD):
            if bad:
                notok(CHECKS[-2], bad[0][:200])
            else:
                ok(CHECKS[-2])
        if CHECKS[-1] in rest:
            if stopped:
                ok(CHECKS[-1])
            else:
                notok(CHECKS[-1], "still running 10 s after SIGTERM")
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return R.status()


if __name__ == "__main__":
    # a timeout's SIGTERM still runs the cleanup (finally in main)
    signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(1))
    sys.exit(main())
