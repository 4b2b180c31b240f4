#!/usr/bin/env python3
"""sync_peers.py - two real sync endpoints (tests/helpers/psyncd) talking
over loopback UDP: delivery A -> B of IPv4 and IPv6 entries, several TLVs
in one packet, a wrong key dropped, a replayed packet dropped, our own
packets ignored, deletions off by default, entries applied to a greydb
with the peer's expiry, IPv6 transport over ::1, and (as root) multicast
on lo inside a network namespace of its own. Ports 16000-16999.

Prints one line per check: ok / not ok / skip, exits 1 if any failed.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOP = os.environ.get("TOP") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD") or os.path.join(TOP, "build")
PSYNCD = os.path.join(BUILD, "tests", "helpers", "psyncd")
KEY = "0123456789abcdef0123456789abcdef01234567"
BADKEY = "f" * 40
BASE_PORT = 16000 + (os.getpid() % 400) * 2   # 16000-16799, pairs

failed = 0
procs = []
tmp = tempfile.mkdtemp(prefix="sync_peers.")


def ok(name):
    print("ok - %s" % name, flush=True)


def notok(name, why):
    global failed
    failed = 1
    print("not ok - %s: %s" % (name, why), flush=True)


def check(name, cond, why):
    if cond:
        ok(name)
    else:
        notok(name, why)


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(tmp, ignore_errors=True)


class Listener:
    """A psyncd that listens and prints what it receives."""

    def __init__(self, name, addr, port, *args):
        self.out = os.path.join(tmp, name + ".out")
        self.err = os.path.join(tmp, name + ".err")
        with open(self.out, "w") as o, open(self.err, "w") as e:
            self.p = subprocess.Popen(
                [PSYNCD, "-l", addr, "-p", str(port), "-w", "60", "-v"]
                + list(args), stdout=o, stderr=e)
        procs.append(self.p)
        self.ready = self.wait_for(lambda t: "listening port=" in t)

    def text(self):
        with open(self.out) as f:
            return f.read()

    def wait_for(self, cond, tries=100):
        """Poll the output up to tries x 50 ms for cond(text)."""
        for _ in range(tries):
            t = self.text()
            if cond(t):
                return True
            if self.p.poll() is not None:
                return cond(self.text())
            time.sleep(0.05)
        return False

    def counters(self):
        lines = [l for l in self.text().splitlines()
                 if l.startswith("counters ")]
        if not lines:
            return {}
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}

    def counter_is(self, key, want):
        return self.wait_for(lambda t: self.counters().get(key) == want)

    def entries(self):
        return [l for l in self.text().splitlines() if l.startswith("entry ")]

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def send(*args):
    """Run a sending psyncd to completion; return (rc, stdout, stderr)."""
    r = subprocess.run([PSYNCD] + list(args), capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def multicast(port):
    ns = "psync_%d" % os.getpid()
    if os.geteuid() != 0 or shutil.which("ip") is None:
        print("skip - multicast in a namespace: needs root and ip(8)")
        return
    try:
        for cmd in (["ip", "netns", "add", ns],
                    ["ip", "-n", ns, "link", "set", "lo", "up"],
                    ["ip", "-n", ns, "link", "set", "lo", "multicast", "on"],
                    ["ip", "-n", ns, "route", "add", "224.0.0.0/4",
                     "dev", "lo"]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print("skip - multicast in a namespace: %s: %s"
                      % (" ".join(cmd), r.stderr.strip()))
                return
        ip = ["ip", "netns", "exec", ns]
        out = os.path.join(tmp, "mc.out")
        with open(out, "w") as o, open(out + ".err", "w") as e:
            b = subprocess.Popen(ip + [PSYNCD, "-K", KEY, "-l", "lo", "-p",
                                       str(port), "-w", "20"],
                                 stdout=o, stderr=e)
        procs.append(b)
        for _ in range(100):
            if "listening" in open(out).read():
                break
            time.sleep(0.05)
        r = subprocess.run(ip + [PSYNCD, "-K", KEY, "-l", "lo", "-p",
                                 str(port), "-t", "lo", "-w", "1",
                                 "white,192.0.2.77,3600"],
                           capture_output=True, text=True, timeout=30)
        got = False
        for _ in range(100):
            if "entry WHITE ip=192.0.2.77" in open(out).read():
                got = True
                break
            time.sleep(0.05)
        check("multicast: entry delivered to the other peer", got,
              open(out).read().strip()[-300:])
        last = [l for l in r.stdout.splitlines() if l.startswith("counters")]
        check("multicast: our own looped-back packet ignored",
              last and "dropped_own=1" in last[-1] and
              "entries=0" in last[-1], r.stdout.strip()[-300:])
        b.send_signal(signal.SIGTERM)
        b.wait(timeout=5)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def main():
    if not os.access(PSYNCD, os.X_OK):
        notok("psyncd helper built", "%s missing (make tests)" % PSYNCD)
        return
    pa, pb = BASE_PORT, BASE_PORT + 1

    # 1. Delivery A -> B: IPv4 and IPv6, four entries in two packets.
    b = Listener("b", "127.0.0.1", pb, "-K", KEY)
    if not b.ready:
        notok("listener starts", open(b.err).read().strip())
        return
    rc, out, err = send("-K", KEY, "-l", "127.0.0.1", "-p", str(pa),
                        "-w", "0", "-t", "127.0.0.1:%d" % pb,
                        "grey,192.0.2.1,mx.example,<Alice@Example.ORG>,"
                        "bob@example.net",
                        "white,192.0.2.2,3600",
                        "grey,2001:db8::1,mx6.example,x@example.org,"
                        "y@example.net",
                        "trapped,2001:db8::2,600")
    check("sender runs", rc == 0, err.strip())
    check("four entries go in two packets (v4, v6 apart)",
          "sent packets=2" in out, out.strip())
    got = b.wait_for(lambda t: t.count("entry ") >= 4)
    ents = b.entries()
    check("A->B: GREY delivered",
          any("entry GREY ip=192.0.2.1 helo=mx.example "
              "from=<Alice@Example.ORG> to=bob@example.net" in l
              for l in ents), "%s" % ents)
    check("A->B: WHITE delivered with expiry",
          any(l.startswith("entry WHITE ip=192.0.2.2 ") for l in ents),
          "%s" % ents)
    check("A->B: IPv6 GREY delivered",
          any("entry GREY ip=2001:db8::1 helo=mx6.example" in l
              for l in ents), "%s" % ents)
    check("A->B: IPv6 TRAPPED delivered",
          any(l.startswith("entry TRAPPED ip=2001:db8::2 ") for l in ents),
          "%s" % ents)
    check("several TLVs per packet: 2 packets accepted, 4 entries",
          got and b.counter_is("accepted", 2) and
          b.counters().get("entries") == 4, "%s" % b.counters())

    # 2. Wrong key: dropped and counted, nothing delivered.
    n0 = len(b.entries())
    send("-K", BADKEY, "-t", "127.0.0.1:%d" % pb, "white,192.0.2.9,3600")
    check("wrong key: dropped_hmac counted", b.counter_is("dropped_hmac", 1),
          "%s" % b.counters())
    check("wrong key: nothing delivered",
          len(b.entries()) == n0 and
          not any("192.0.2.9" in l for l in b.entries()), "%s" % b.entries())

    # 3. Replay: one packet sent three times, delivered once.
    send("-K", KEY, "-t", "127.0.0.1:%d" % pb, "-R", "3", "-c", "4242",
         "white,192.0.2.10,3600")
    check("replay: two copies dropped", b.counter_is("dropped_replay", 2),
          "%s" % b.counters())
    check("replay: delivered once",
          sum("192.0.2.10" in l for l in b.entries()) == 1,
          "%s" % b.entries())

    # 4. Our own packets (B sends to itself) are ignored.
    b.stop()
    b2 = Listener("b2", "127.0.0.1", pb, "-K", KEY, "-t",
                  "127.0.0.1:%d" % pb, "white,192.0.2.11,3600")
    check("own packets ignored", b2.ready and
          b2.counter_is("dropped_own", 1) and not b2.entries(),
          "%s %s" % (b2.counters(), b2.entries()))
    b2.stop()

    # 5. Deletions: off by default (dropped), applied when both sides
    #    turn them on; entries applied to a store with the peer's expiry.
    db = os.path.join(tmp, "db")
    os.mkdir(db)
    c = Listener("c", "127.0.0.1", pb, "-K", KEY, "-d", db)
    send("-K", KEY, "-t", "127.0.0.1:%d" % pb,
         "grey,192.0.2.20,mx.example,<A@Example.ORG>,b@example.net",
         "white,192.0.2.21,3600", "white,192.0.2.22,-10",
         "trapped,192.0.2.23,600")
    c.wait_for(lambda t: t.count("entry ") >= 4)
    ents = c.entries()
    check("store: GREY applied as a new tuple",
          any("ip=192.0.2.20" in l and "result=NEW" in l for l in ents),
          "%s" % ents)
    check("store: WHITE applied",
          any("ip=192.0.2.21" in l and "result=applied" in l
              for l in ents), "%s" % ents)
    check("store: WHITE already expired ignored",
          any("ip=192.0.2.22" in l and "result=expired" in l
              for l in ents), "%s" % ents)
    check("store: TRAPPED applied",
          any("ip=192.0.2.23" in l and "result=applied" in l
              for l in ents), "%s" % ents)
    send("-K", KEY, "-D", "-t", "127.0.0.1:%d" % pb, "delwhite,192.0.2.21")
    check("deletions off by default: dropped and counted",
          c.counter_is("dropped_deletions_off", 1), "%s" % c.counters())
    c.stop()
    c = Listener("c2", "127.0.0.1", pb, "-K", KEY, "-d", db, "-D")
    send("-K", KEY, "-D", "-t", "127.0.0.1:%d" % pb, "delwhite,192.0.2.21")
    c.wait_for(lambda t: "entry DEL_WHITE" in t)
    check("deletions on: DEL_WHITE applied",
          any(l.startswith("entry DEL_WHITE ip=192.0.2.21") and
              "result=applied" in l for l in c.entries()),
          "%s" % c.entries())
    send("-K", KEY, "-t", "127.0.0.1:%d" % pb, "white,192.0.2.23,3600")
    c.wait_for(lambda t: t.count("entry ") >= 2)
    check("store: WHITE for a trapped host refused",
          any("ip=192.0.2.23" in l and "result=trapped" in l
              for l in c.entries()), "%s" % c.entries())
    c.stop()

    # 6. IPv6 transport over ::1.
    d = Listener("d", "::1", pb, "-K", KEY)
    if not d.ready:
        print("skip - IPv6 transport over ::1: %s"
              % open(d.err).read().strip())
    else:
        send("-K", KEY, "-t", "[::1]:%d" % pb,
             "grey,2001:db8::5,h,a@b,c@d", "white,198.51.100.5,60")
        check("IPv6 transport: both packets delivered",
              d.wait_for(lambda t: t.count("entry ") >= 2),
              "%s" % d.entries())
    d.stop()

    # 7. Multicast: two peers joined to 224.0.1.240 on lo inside a
    #    network namespace of our own (needs root; skipped otherwise).
    multicast(pb)

    # 8. A missing key file is a clear error.
    rc, out, err = send("-k", os.path.join(tmp, "nokey"), "-t",
                        "127.0.0.1:%d" % pb, "white,192.0.2.1,60")
    check("missing key file: clear error",
          rc != 0 and "nokey" in err and "No such file" in err, err.strip())


try:
    main()
finally:
    cleanup()
sys.exit(failed)
