#!/usr/bin/env python3
"""rt_storage_bounds.py - red team: what one client can make us store
(issue 14, "Bounds on what one client can make us store").

Before the fix one connection sent 50,000 RCPTs and made 50,000 GREY
records (about 51 MB) in 4.5 s: nothing capped RCPTs per session or new
tuples per client, and once the disk was full real tuples were lost.
Each case below fails on the code before the fix:
  - 50,000 pipelined RCPTs on one connection: the first 100 (--max-rcpt)
    get 250, the other 49,900 get 452 4.5.3, DATA still 451; at most 100
    GREY records; one event=rcpt_cap line; a new client is still served;
  - 300 connections from one IPv4 address, each with a new tuple: at
    most 200 (--max-new-tuples) GREY records for it, every dialogue still
    ends in 451, one event=client_cap line, the refusals counted in
    /metrics and the SIGUSR1 line; another address still has its tuples
    stored; a retry of a tuple the capped address stored before the cap
    still passes and whitelists it (--pass-seconds 1);
  - IPv6, inside a network namespace (root): three addresses of one /64
    make 70 new tuples each and share the default cap (at most 200
    stored, one event=client_cap naming the /64); an address of another
    /64 has all its 70 stored;
  - the disk guard, twice when root: the store on a tmpfs this script
    mounts and shrinks to what the store uses + 32 MB, under the default
    --min-free 64; and (without root too) --min-free above the free space
    of /tmp's filesystem. The writer logs event=disk_low, a new tuple is
    refused (451 to the client, no record, counted with reason="disk",
    spamd_disk_low 1, disk_low=1 on SIGUSR1), while a WHITE made by
    greyctl -a is honored (its address reaches the firewall), a tuple
    stored before (greyctl import) still passes, and a spamtrap hit still
    traps (a TRAPPED record).
Ports 15200-15399 on 127.0.0.1 (and ::1 inside the namespace).
"""
import ctypes
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

TOP = os.environ.get("TOP") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "helpers"))
import fault_lib as fl  # noqa: E402

R = fl.Results()
PORTS = (15200, 15399)
LOGS = []       # each daemon's log, for the sanitizer check at the end


def done(d):
    """keep d's log for the last check, then stop d and remove its files"""
    LOGS.append(d.logtext())
    d.cleanup()


def http_port():
    return fl.pick_port("127.0.0.1", *PORTS)


def metrics(port):
    """the /metrics samples as {name{labels}: float}; {} on error"""
    out = {}
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                    timeout=fl.slow(10)) as r:
            body = r.read().decode("utf-8", "replace")
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


def grey_of(db, ip=None):
    """the GREY records of db (of ip only when given)"""
    return [x for x in fl.greyctl_dump(db) or []
            if x[0] == "GREY" and (ip is None or x[1] == ip)]


def settled(fn, secs=10, quiet=1.0):
    """fn() once it has not changed for quiet seconds (bounded)"""
    end = time.monotonic() + fl.slow(secs)
    last, since = fn(), time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.2)
        v = fn()
        if v != last:
            last, since = v, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def counters(d, key):
    """SIGUSR1, then the writer's counters line's key (int, or None)"""
    n = d.count("event=counters proc=writer")
    os.kill(d.pid, signal.SIGUSR1)
    d.wait_log("event=counters proc=writer", 10, n + 1)
    m = re.findall(r"event=counters proc=writer .*\b%s=(-?\d+)" % key,
                   d.logtext())
    return int(m[-1]) if m else None


class Lines:
    """a raw SMTP client: send bytes, read reply lines"""

    def __init__(self, port, src, fam=socket.AF_INET, dst="127.0.0.1"):
        self.s = socket.socket(fam, socket.SOCK_STREAM)
        self.s.settimeout(fl.slow(30))
        self.s.bind((src, 0))
        self.s.connect((dst, port))
        self.f = self.s.makefile("rb")

    def reply(self):
        """the code of one whole reply (None at EOF)"""
        while True:
            ln = self.f.readline()
            if not ln:
                return None
            if ln[3:4] != b"-":
                return int(ln[:3])

    def close(self):
        self.f.close()
        self.s.close()


def rcpt_flood(n=50000, chunk=1000):
    """one connection, n pipelined RCPTs in chunks"""
    d = fl.Spamd("rt-rcpt", ports=PORTS, verbose=False)
    try:
        d.wait_started()
        c = Lines(d.port, "127.20.0.1")
        codes, why = {}, None
        t0 = time.monotonic()
        try:
            c.reply()
            c.s.sendall(b"HELO flood.example\r\nMAIL FROM:<f@example.org>\r\n")
            hm = [c.reply(), c.reply()]
            if hm != [250, 250]:
                why = "HELO/MAIL got %r" % hm
            for start in range(0, n, chunk):
                if why is not None:
                    break
                c.s.sendall(b"".join(b"RCPT TO:<r%d@example.com>\r\n" % i
                                     for i in range(start, start + chunk)))
                for _ in range(chunk):
                    code = c.reply()
                    codes[code] = codes.get(code, 0) + 1
                    if code is None:
                        why = "closed after %r" % codes
                        break
            c.s.sendall(b"DATA\r\n")
            data = c.reply()
        except OSError as e:
            why, data = "%s after %r" % (e, codes), None
        finally:
            c.close()
        secs = time.monotonic() - t0
        print("# %d RCPTs in %.1f s: %r" % (n, secs, codes))
        R.check("%d RCPTs on one connection: 100 answered 250, %d 452, "
                "DATA 451" % (n, n - 100),
                why is None and codes == {250: 100, 452: n - 100} and
                data == 451, why or "%r, DATA %r" % (codes, data))
        grey = settled(lambda: len(grey_of(d.db)))
        R.check("%d RCPTs: at most 100 GREY records (%d)" % (n, grey),
                grey <= 100, "%d" % grey)
        R.check("%d RCPTs: one event=rcpt_cap line" % n,
                d.count("event=rcpt_cap") == 1,
                "%d lines" % d.count("event=rcpt_cap"))
        R.check("%d RCPTs: the daemon still serves a new client" % n,
                fl.try_dialogue(d.port, "127.20.0.2", "after") == 451 and
                d.proc.poll() is None, d.log_tail(3))
    finally:
        done(d)


def one(port, src, tag):
    """one dialogue (HELO, MAIL, RCPT, DATA pipelined); DATA's code"""
    c = Lines(port, src)
    try:
        c.reply()
        c.s.sendall(b"HELO h-%s.example\r\nMAIL FROM:<f-%s@example.org>\r\n"
                    b"RCPT TO:<t-%s@example.com>\r\nDATA\r\n" %
                    (tag.encode(), tag.encode(), tag.encode()))
        codes = [c.reply() for _ in range(4)]
        return codes[3] if codes[:3] == [250, 250, 250] else codes
    except OSError as e:
        return str(e)
    finally:
        c.close()


def client_cap(n=300, cap=200):
    hp = http_port()
    tmp = tempfile.mkdtemp(prefix="rt-cap.")
    fw = os.path.join(fl.writer_dir(tmp, "fwd"), "white.txt")
    d = fl.Spamd("rt-cap", ports=PORTS, verbose=False, tmp=tmp,
                 extra=["--pass-seconds", "1", "--http-listen",
                        "127.0.0.1:%d" % hp, "--fw", "file", "--fw-file",
                        fw])
    capped, other = "127.21.0.1", "127.21.0.2"
    try:
        d.wait_started()
        # a tuple stored before the cap: retried later, it must pass
        first = one(d.port, capped, "keep")
        t_first = time.monotonic()
        got = [one(d.port, capped, "n%d" % i) for i in range(n)]
        R.check("%d connections from %s: every dialogue ends in 451" %
                (n, capped), first == 451 and got.count(451) == n,
                "first %r, %r" % (first, [g for g in got if g != 451][:3]))
        mine = settled(lambda: len(grey_of(d.db, capped)))
        R.check("%d new tuples from one address: at most %d GREY records "
                "(%d)" % (n + 1, cap, mine), mine <= cap, "%d" % mine)
        lines = [ln for ln in d.logtext().splitlines()
                 if "event=client_cap" in ln]
        R.check("one event=client_cap line for %s" % capped,
                len(lines) == 1 and "ip=%s " % capped in lines[0] and
                "prefix=%s/32" % capped in lines[0], repr(lines[:2]))
        m = metrics(hp)
        want = n + 1 - cap
        R.check("/metrics: spamd_tuples_refused_total{reason=\"client-cap\"}"
                " %d" % want, m.get('spamd_tuples_refused_total{reason='
                                    '"client-cap"}') == want,
                repr({k: v for k, v in m.items() if "refused" in k}))
        R.check("SIGUSR1 line: refused_cap=%d" % want,
                counters(d, "refused_cap") == want, d.log_tail(2))
        # another address is not touched by the cap
        theirs = [one(d.port, other, "o%d" % i) for i in range(5)]
        n_other = settled(lambda: len(grey_of(d.db, other)), 5, 0.5)
        R.check("another address still has its tuples stored (5 of 5)",
                theirs.count(451) == 5 and n_other == 5,
                "%r, %d records" % (theirs, n_other))
        # the tuple stored before the cap passes (pass time 1 s)
        time.sleep(max(0.0, t_first + 2.0 - time.monotonic()))
        again = one(d.port, capped, "keep")
        white = fl.wait_for(lambda: any(
            x[0] == "WHITE" and x[1] == capped
            for x in fl.greyctl_dump(d.db) or []), 10, 0.2)
        R.check("the capped address's stored tuple still passes: WHITE "
                "and in the firewall", white and fl.fw_has(fw, capped),
                "retry %r, white %s" % (again, white))
    finally:
        done(d)


def enter_ns(ns):
    """setns(2) into the named network namespace, in the child"""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "setns " + ns)
    os.close(fd)


# Inside the namespace: from each source, k dialogues with new tuples;
# prints one line "SRC DATA-CODE ..." a source.
V6CLIENT = r'''
import socket, sys
port, k = int(sys.argv[1]), int(sys.argv[2])
for src in sys.argv[3:]:
    got = []
    for i in range(k):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(60)
        try:
            s.bind((src, 0))
            s.connect(("::1", port))
            f = s.makefile("rb")
            def reply():
                while True:
                    ln = f.readline()
                    if not ln or ln[3:4] != b"-":
                        return ln[:3].decode() or "eof"
            reply()
            tag = "%s-%d" % (src.replace(":", "."), i)
            s.sendall(("HELO h-%s.example\r\nMAIL FROM:<f-%s@example.org>\r\n"
                       "RCPT TO:<t-%s@example.com>\r\nDATA\r\n" %
                       (tag, tag, tag)).encode())
            got.append([reply() for _ in range(4)][3])
        except OSError as e:
            got.append("error:%s" % e)
        finally:
            s.close()
    print(src, " ".join(got), flush=True)
'''


def v6_cap(cap=200, k=70):
    ns = "rtcap6-%d" % os.getpid()
    if subprocess.run(["ip", "netns", "add", ns]).returncode != 0:
        R.notok("IPv6 /64 cap", "ip netns add failed")
        return
    d = None
    same = ["fd99:0:0:1::1", "fd99:0:0:1::2", "fd99:0:0:1:ffff::3"]
    away = "fd99:0:0:2::1"
    try:
        ex = ["ip", "netns", "exec", ns]
        subprocess.run(ex + ["ip", "link", "set", "lo", "up"], check=True)
        for a in same + [away]:
            subprocess.run(ex + ["ip", "addr", "add", a + "/128", "dev",
                                 "lo", "nodad"], check=True)
        d = fl.Spamd("rt-cap6", listen=("::1",), ports=PORTS,
                     verbose=False, preexec=lambda: enter_ns(ns))
        up = fl.wait_for(lambda: d.proc.poll() is not None or (
            "event=engine-start" in d.logtext() and
            "event=writer_start" in d.logtext()), 30, 0.1)
        if not R.check("spamd starts in the namespace",
                       up and d.proc.poll() is None,
                       d.log_tail(4)):
            return
        client = os.path.join(d.tmp, "client6.py")
        with open(client, "w") as f:
            f.write(V6CLIENT)
        r = subprocess.run(ex + [sys.executable, client, str(d.port),
                                 str(k)] + same + [away],
                           capture_output=True, text=True,
                           timeout=fl.slow(300))
        codes = r.stdout.split()
        R.check("IPv6: every dialogue from 4 sources ends in 451",
                r.returncode == 0 and codes.count("451") == k * 4,
                (r.stdout + r.stderr)[-300:])
        recs = settled(lambda: grey_of(d.db), 5, 0.5)
        canon = [socket.inet_ntop(socket.AF_INET6,
                                  socket.inet_pton(socket.AF_INET6, a))
                 for a in same]
        in64 = [x for x in recs if x[1] in canon]
        R.check("IPv6: 3 addresses of one /64 share the cap: %d of %d "
                "new tuples stored (at most %d)" % (len(in64), 3 * k, cap),
                len(in64) <= cap, "%d" % len(in64))
        R.check("IPv6: an address of another /64 is not touched (%d of "
                "%d stored)" % (sum(1 for x in recs if x[1] == away), k),
                sum(1 for x in recs if x[1] == away) == k,
                repr([x[1] for x in recs]))
        R.check("IPv6: event=client_cap names the /64",
                "prefix=fd99:0:0:1::/64" in d.logtext(), d.log_tail(3))
    finally:
        if d is not None:
            done(d)
        subprocess.run(["ip", "netns", "del", ns])


def used_mb(path):
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize >> 20


def disk_guard(tmpfs):
    """tmpfs (root): the store on a tmpfs the test mounts and shrinks to
    what it uses + 32 MB, under the default --min-free 64; else
    --min-free above the free space of the filesystem of /tmp"""
    tmp = tempfile.mkdtemp(prefix="rt-disk.")
    db = os.path.join(tmp, "db")
    os.mkdir(db)
    d = mounted = None
    try:
        if tmpfs:
            r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                                "size=512m,mode=0700", "tmpfs", db],
                               capture_output=True, text=True, timeout=30)
            if not R.check("disk guard: a tmpfs for the store",
                           r.returncode == 0, r.stderr.strip()):
                return
            mounted = db
        # the store first (so its files count), then the minimum
        now = int(time.time())
        pre = "GREY|127.23.0.9|h-old.example|f-old@example.org|" \
              "t-old@example.com|%d|%d|%d|1|0\n" % (now - 3600, now - 1800,
                                                     now + 3600)
        r = subprocess.run([fl.GREYCTL, "-D", db, "import"], input=pre,
                           text=True, capture_output=True)
        r2 = subprocess.run([fl.GREYCTL, "-D", db, "-a", "-T",
                             "trap@example.com"], capture_output=True,
                            text=True)
        if not R.check("disk guard: the store is made (greyctl import, "
                       "spamtrap)", r.returncode == 0 and
                       r2.returncode == 0, r.stderr + r2.stderr):
            return
        if tmpfs:
            size = used_mb(db) + 32
            r = subprocess.run(["mount", "-o", "remount,size=%dm" % size,
                                db], capture_output=True, text=True,
                               timeout=30)
            if not R.check("disk guard: tmpfs shrunk to what the store "
                           "uses + 32 MB (%d MB)" % size,
                           r.returncode == 0, r.stderr.strip()):
                return
            extra, what = [], "the default --min-free (64 MB)"
        else:
            st = os.statvfs(db)
            free_mb = st.f_bavail * st.f_frsize >> 20
            minfree = str(free_mb + 4096) if free_mb + 4096 <= 1048576 \
                else "99%"
            extra = ["--min-free", minfree]
            what = "--min-free %s above %d MB free" % (minfree, free_mb)
        hp = http_port()
        fw = os.path.join(fl.writer_dir(tmp, "fwd"), "white.txt")
        d = fl.Spamd("rt-disk", db=db, tmp=tmp, ports=PORTS,
                     extra=extra + ["--http-listen", "127.0.0.1:%d" % hp,
                                    "--fw", "file", "--fw-file", fw])
        try:
            d.wait_started()
        except RuntimeError as e:
            R.notok("disk guard: spamd starts with %s" % what, e)
            return
        R.check("disk guard: %s: event=disk_low logged" % what,
                d.wait_log("event=disk_low", 10) and
                "action=refuse-new-tuples" in d.logtext(), d.log_tail(3))
        code = one(d.port, "127.23.0.1", "new")
        time.sleep(0.5)
        R.check("disk low: a new tuple is refused (451, no record)",
                code == 451 and not grey_of(d.db, "127.23.0.1"),
                "%r %r" % (code, grey_of(d.db, "127.23.0.1")))
        m = metrics(hp)
        R.check("disk low: /metrics refused{reason=\"disk\"} >= 1 and "
                "spamd_disk_low 1",
                m.get('spamd_tuples_refused_total{reason="disk"}', 0) >= 1
                and m.get("spamd_disk_low") == 1,
                repr({k: v for k, v in m.items() if "disk" in k}))
        R.check("disk low: SIGUSR1 line disk_low=1",
                counters(d, "disk_low") == 1, d.log_tail(2))
        # a WHITE made by greyctl -a is honored
        r = subprocess.run([fl.GREYCTL, "-D", db, "-a", "127.23.0.5"],
                           capture_output=True, text=True)
        one(d.port, "127.23.0.5", "white")
        R.check("disk low: a WHITE made by greyctl -a is honored (in the "
                "firewall)", r.returncode == 0 and fl.fw_has(fw,
                                                             "127.23.0.5"),
                r.stderr + d.log_tail(2))
        # a tuple stored before passes
        c = Lines(d.port, "127.23.0.9")
        try:
            c.reply()
            c.s.sendall(b"HELO h-old.example\r\nMAIL FROM:<f-old@example.org>"
                        b"\r\nRCPT TO:<t-old@example.com>\r\nDATA\r\n")
            [c.reply() for _ in range(4)]
        finally:
            c.close()
        R.check("disk low: a stored tuple still passes (WHITE, firewall)",
                fl.fw_has(fw, "127.23.0.9") and any(
                    x[0] == "WHITE" and x[1] == "127.23.0.9"
                    for x in fl.greyctl_dump(db) or []), d.log_tail(3))
        # a spamtrap hit still traps
        said = fl.smtp_said(d.port, "127.23.0.7", to="trap@example.com")
        trapped = fl.wait_for(lambda: any(
            x[0] == "TRAPPED" and x[1] == "127.23.0.7"
            for x in fl.greyctl_dump(db) or []), 10, 0.2)
        R.check("disk low: a spamtrap hit still traps (TRAPPED record)",
                trapped, repr(said[-2:]) + d.log_tail(3))
        R.check("disk low: nothing else was stored as GREY",
                [x[1] for x in grey_of(db)] == [], repr(grey_of(db)))
    finally:
        if d is not None:
            d.stop()
            LOGS.append(d.logtext())
        if mounted is not None:
            subprocess.run(["umount", mounted], capture_output=True,
                           timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if not os.path.exists(fl.SPAMD):
        R.notok("spamd built", fl.SPAMD + " missing (make)")
        return 1
    rcpt_flood()
    client_cap()
    if os.geteuid() != 0:
        R.skip("IPv6 /64 cap", "needs root (ip netns)")
    elif shutil.which("ip") is None:
        R.notok("IPv6 /64 cap", "ip (iproute2) not installed: make deps")
    else:
        v6_cap()
    # both ways when root: the default on a small tmpfs, and the option
    if os.geteuid() == 0:
        disk_guard(True)
    disk_guard(False)
    fl.sanitizer_check(R, "no sanitizer report in the daemons' logs", LOGS)
    return R.status()


if __name__ == "__main__":
    sys.exit(main())
