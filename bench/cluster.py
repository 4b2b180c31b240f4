#!/usr/bin/env python3
"""cluster.py - the cluster's figures (issue 17), run by bench_cluster.sh
as root; builds the five-host mesh of tests/system/cluster_mesh.py (its
namespaces, bridge, hosts and OpenBSD-layout peer) and prints, never
judges:

 1. pass on host A -> in host E's spamd-white set: p50, p99, max over
    PASSES passes (100; 10 a second) while the cluster learns 1,000 and
    20,000 tuples a second: GREY tuples sent as sync packets (16 a
    packet) from the peer at 10.99.17.9 to all five hosts, which is what
    each host applies when the cluster's MX hosts learn that many. Also
    the load reached and what E accepted and applied of it.
 2. catch-up of ENTRIES (1,000,000: 60 % GREY, 30 % WHITE, 10 % TRAPPED)
    from a host that holds them to an empty one: seconds (start to the
    catch-up's log line), bytes on the wire (the puller's eth0, both
    ways) and in the answer, peak memory (VmHWM) of both writers.
 3. one digest round after 1 % of the entries (ENTRIES / 100 new WHITE)
    were added to the holder: bytes exchanged on the wire, seconds from
    the digest request to the last leaf applied, the pulls it took.
Bounded: each rate's load stops after its passes (at most 40 s), the
catch-up waits at most 600 s, the digest round 120 s.
"""
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "system"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "helpers"))
import cluster_mesh as CM  # noqa: E402
import fault_lib as F  # noqa: E402

PASSES = max(10, min(int(os.environ.get("PASSES", "100")), 120))
ENTRIES = max(1000, min(int(os.environ.get("ENTRIES", "1000000")),
                        2000000))
RATES = tuple(int(r) for r in os.environ.get("RATES", "1000,20000")
              .split(",") if r.strip())
PER_PACKET = 16
P = "bench_cluster:"


def out(text):
    print("%s %s" % (P, text), flush=True)


def pct(v, p):
    return v[min(len(v) - 1, int(p * len(v)))]


class Load:
    """rate GREY tuples a second, PER_PACKET to a sync packet signed as
    the OpenBSD-layout peer's, to all five hosts, until stopped"""

    def __init__(self, peer, rate, base):
        self.peer, self.rate, self.base = peer, rate, base
        self.sent = 0
        self.stop = threading.Event()
        self.th = threading.Thread(target=self.loop, daemon=True)

    def packet(self, now):
        tlvs = b""
        for _ in range(PER_PACKET):
            n = self.base + self.sent
            self.sent += 1
            ip = socket.inet_aton("10.%d.%d.%d" % (
                128 + (n >> 16) % 64, (n >> 8) & 255, n & 255))
            f, t, h = b"f%d@load.example\0" % n, b"rcpt@example.com\0", \
                b"load.example\0"
            sglen = 18 + len(f) + len(t) + len(h)
            pad = ((sglen + 15) & ~15) - sglen
            tlvs += struct.pack("!HHI4sHHH", 1, sglen + pad, now, ip,
                                len(f), len(t), len(h)) + f + t + h + \
                b"\0" * pad
        end = struct.pack("!HH", 0, 4)
        self.peer.counter += 1
        return CM.obsd_sign(self.peer.key, CM.obsd_header(
            self.peer.counter, 32 + len(tlvs) + 4) + tlvs + end)

    def loop(self):
        t0 = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - t0) * self.rate)
            while self.sent + PER_PACKET <= due:
                pkt = self.packet(int(time.time()))
                for t in self.peer.targets:
                    try:
                        self.peer.sock.sendto(pkt, (t, CM.SYNC_PORT))
                    except OSError:
                        pass
            time.sleep(0.005)
        self.secs = time.monotonic() - t0

    def start(self):
        self.th.start()

    def finish(self):
        self.stop.set()
        self.th.join(10)
        return self.sent / max(self.secs, 1e-6)


class SetPoll:
    """polls host's spamd-white set; first time each address is seen"""

    def __init__(self, host):
        self.host, self.seen, self.lists = host, {}, []
        self.stop = threading.Event()
        self.th = threading.Thread(target=self.loop, daemon=True)
        self.th.start()

    def loop(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            s = self.host.white_set()
            t1 = time.monotonic()
            self.lists.append(t1 - t0)
            for ip in s:
                self.seen.setdefault(ip, t1)
            time.sleep(0.005)

    def finish(self):
        self.stop.set()
        self.th.join(10)


def timed_pass(host, src, sent):
    """a retry from src on host; sent[src] = just before its RCPT"""
    with CM.InNs(host.ns):
        s = socket.create_connection(("127.0.0.1", host.port), 10,
                                     source_address=(src, 0))
    f = s.makefile("rb")
    f.readline()
    for cmd in ("HELO client.mesh.example", "MAIL FROM:<s@mesh.example>"):
        s.sendall((cmd + "\r\n").encode())
        f.readline()
    sent[src] = time.monotonic()
    s.sendall(b"RCPT TO:<rcpt@example.com>\r\n")
    f.readline()
    s.sendall(b"QUIT\r\n")
    s.close()


def latency(m, H, rate, first):
    """part 1 at one rate; senders 10.99.21.first .. first+PASSES-1"""
    a, e = H["A"], H["E"]
    srcs = [CM.sender(1, first + i) for i in range(PASSES)]
    c0 = e.sync_counters()
    load = Load(m.peer, rate, first * 1000000)
    load.start()
    for s in srcs:
        a.smtp(s, "rcpt@example.com", mfrom="s@mesh.example")
    time.sleep(2.2)		# past --pass-seconds 1
    poll = SetPoll(e)
    sent = {}
    t0 = time.monotonic()
    for i, s in enumerate(srcs):
        try:
            timed_pass(a, s, sent)
        except OSError:
            pass
        while time.monotonic() < t0 + (i + 1) * 0.1:
            time.sleep(0.002)
    end = time.monotonic() + 15
    while time.monotonic() < end and \
            len([s for s in sent if s in poll.seen]) < len(sent):
        time.sleep(0.05)
    poll.finish()
    reached = load.finish()
    c1 = e.sync_counters()
    lat = sorted((poll.seen[s] - sent[s]) * 1000 for s in sent
                 if s in poll.seen)
    lists = sorted(poll.lists)
    if lat:
        out("load=%d tuples/s (reached %.0f) passes=%d in_E_set=%d "
            "p50_ms=%.1f p99_ms=%.1f max_ms=%.1f" % (
                rate, reached, len(sent), len(lat), pct(lat, 0.5),
                pct(lat, 0.99), lat[-1]))
    else:
        out("load=%d tuples/s (reached %.0f): no pass reached E's set" % (
            rate, reached))
    out("load=%d: E received %d sync packets, accepted %d, entries %d, "
        "applied %d, dropped %d (poll resolution: nft list set median "
        "%.1f ms)" % (
            rate, c1.get("received", 0) - c0.get("received", 0),
            c1.get("accepted", 0) - c0.get("accepted", 0),
            c1.get("entries", 0) - c0.get("entries", 0),
            c1.get("applied", 0) - c0.get("applied", 0),
            sum(c1.get(k, 0) - c0.get(k, 0) for k in c1
                if k.startswith("dropped")),
            lists[len(lists) // 2] * 1000 if lists else 0))


def fill(db, n, start=0, kinds=(6, 3, 1)):
    """greyctl import of n records (GREY, WHITE, TRAPPED in the ratio
    kinds) into db; seconds taken"""
    now = int(time.time())
    t0 = time.monotonic()
    p = subprocess.Popen([F.GREYCTL, "-D", db, "import"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    tot = sum(kinds)
    chunk = []
    for i in range(start, start + n):
        ip = "10.%d.%d.%d" % (64 + (i >> 16), (i >> 8) & 255, i & 255)
        k = i % tot
        if k < kinds[0]:
            chunk.append("GREY|%s|h.example|a%d@b.example|c@d.example|"
                         "%d|%d|%d|1|0\n" % (ip, i, now, now + 1500,
                                             now + 14400))
        elif k < kinds[0] + kinds[1]:
            chunk.append("WHITE|%s|||%d|%d|%d|2|1\n" % (
                ip, now, now, now + 86400 * 30))
        else:
            chunk.append("TRAPPED|%s|%d\n" % (ip, now + 86400))
        if len(chunk) >= 10000:
            p.stdin.write("".join(chunk).encode())
            chunk = []
    p.stdin.write("".join(chunk).encode())
    p.stdin.close()
    err = p.stderr.read().decode()
    rc = p.wait(600)
    if rc != 0:
        raise RuntimeError("greyctl import: " + err.strip())
    return time.monotonic() - t0


def wire(ns):
    """rx + tx bytes of eth0 in ns"""
    r = CM.run(["ip", "-j", "-s", "link", "show", "eth0"], ns=ns)
    st = json.loads(r.stdout)[0]["stats64"]
    return st["rx"]["bytes"] + st["tx"]["bytes"]


def vm(pid, field="VmHWM"):
    """a /proc/PID/status field in MiB (0 when gone)"""
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith(field + ":"):
                    return int(ln.split()[1]) / 1024
    except (OSError, TypeError):
        pass
    return 0


def logtime(line):
    """a log line's timestamp, seconds since the epoch"""
    return datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def catchup(m):
    """parts 2 and 3: a holder (in A's namespace) and an empty puller
    (in E's)"""
    a_addr, e_addr = CM.NET + "1", CM.NET + "5"
    hold_dir, pull_dir = m.hostdir("hold"), m.hostdir("pull")
    secs = fill(os.path.join(hold_dir, "db"), ENTRIES)
    out("filled the holder with %d records by greyctl import in %.1f s" % (
        ENTRIES, secs))
    # the holder only serves (no peers): the wire counts the pull alone
    hold = CM.Host("hold", m.ns("A"), a_addr, hold_dir, m.key, [],
                   digest=0)
    m.hosts.append(hold)
    hold.wait_started(secs=60, writer_secs=60)
    hpid = hold.writer_pid()
    hwm0 = vm(hpid)
    w0 = wire(m.ns("E"))
    pull = CM.Host("pull", m.ns("E"), e_addr, pull_dir, m.key, [a_addr],
                   digest=5)
    m.hosts.append(pull)
    t0 = time.time()
    pat = re.compile(r"^(\S+) spamd\[\d+\]: event=cluster_pull peer=%s:%d "
                     r"kind=catchup .*" % (re.escape(a_addr), CM.HTTP_PORT),
                     re.M)
    got = F.wait_for(lambda: pat.search(pull.logtext()), 600, 0.2)
    if not got:
        out("catch-up: no catch-up line in 600 s: %s" % pull.log_tail(3))
        return
    line = got.group(0)
    w1 = wire(m.ns("E"))
    ppid = pull.writer_pid()
    kv = dict(re.findall(r"(\w+)=(\S+)", line))
    out("catch-up of %d records: %.1f s from the puller's start to its "
        "catch-up line (%s%s, records=%s applied=%s); %d bytes on the "
        "wire, %s in the answer (%.0f bytes a record)" % (
            ENTRIES, logtime(line) - t0, kv.get("outcome"),
            " error=" + kv["error"] if "error" in kv else "",
            kv.get("records"), kv.get("applied"), w1 - w0,
            kv.get("bytes"), (w1 - w0) / ENTRIES))
    out("catch-up: VmHWM puller writer %.1f MiB, holder writer %.1f MiB "
        "(%.1f MiB before it served)" % (vm(ppid), vm(hpid), hwm0))
    st = subprocess.run([F.GREYCTL, "-D", pull.db, "stats"],
                        capture_output=True, text=True).stdout.strip()
    out("catch-up: the puller holds %s" % st.splitlines()[0] if st else
        "catch-up: greyctl stats failed")

    # part 3: 1 % more on the holder, one digest round of the puller
    n = max(1, ENTRIES // 100)
    nlines = pull.logtext().count("\n")
    secs = fill(hold.db, n, start=ENTRIES, kinds=(0, 1, 0))
    w2 = wire(m.ns("E"))
    end = time.monotonic() + 120
    done = None
    while time.monotonic() < end and done is None:
        lines = pull.logtext().splitlines()[nlines:]
        # the round: its digest pull, the leaf digest (its line says how
        # many leaf pulls follow: pulls=N), the leaf digest pull, the
        # leaf pulls
        dg = [i for i, ln in enumerate(lines)
              if "event=cluster_digest_leaves " in ln]
        for i in dg:
            want = int(re.search(r"pulls=(\d+)", lines[i]).group(1))
            pulls = [ln for ln in lines[i + 1:]
                     if "event=cluster_pull" in ln and "kind=leaves" in ln]
            if want and len(pulls) >= want:
                start = [ln for ln in lines[:i] if "kind=digest" in ln][-1:]
                ld = [ln for ln in lines[:i] if "kind=leafdigest" in ln][-1:]
                done = (start[0] if start else lines[i], lines[i],
                        ld + pulls[:want])
                break
        time.sleep(0.5)
    w3 = wire(m.ns("E"))
    if done is None:
        out("digest: no round fetched buckets within 120 s of adding %d "
            "entries: %s" % (n, pull.log_tail(3)))
        return
    first, dline, pulls = done
    # the round's fetches are capped: how long until the puller holds
    # every WHITE the holder holds, over how many rounds
    want = stats(hold.db).get("white")
    conv = F.wait_for(lambda: stats(pull.db).get("white") == want, 120, 1)
    t_conv, w4 = time.time(), wire(m.ns("E"))
    rounds = pull.logtext().count("event=cluster_digest ") - \
        "\n".join(pull.logtext().splitlines()[:nlines]).count(
            "event=cluster_digest ")
    b = sum(int(x) for ln in [first] + pulls
            for x in re.findall(r"bytes=(\d+)", ln))
    out("digest round after %d new WHITE on the holder (1 %%; added in "
        "%.1f s): %s; %d pulls after the digest (leaf digest, leaves), "
        "%.2f s from the digest request to the last leaf applied; %d bytes "
        "in the answers, %d bytes on the wire (baseline: the full catch-up "
        "took %d)" % (
            n, secs, " ".join(x for x in dline.split()[2:] if "=" in x),
            len(pulls), logtime(pulls[-1]) - logtime(first), b, w3 - w2,
            w1 - w0))
    # other pulls in the same time (a catch-up retried by the rounds)
    # are on the wire too: say how many and how big
    cu = [ln for ln in pull.logtext().splitlines()[nlines:]
          if "kind=catchup" in ln]
    out("digest: the puller holds all %s WHITE of the holder%s: %.1f s "
        "after the first round began, %d rounds, %d bytes on the wire; "
        "%d catch-up pulls in that time, %d bytes in their answers" % (
            want, "" if conv else " NOT (120 s bound)",
            t_conv - logtime(first), rounds, w4 - w2, len(cu),
            sum(int(x) for ln in cu for x in re.findall(r"bytes=(\d+)",
                                                         ln))))


def stats(db):
    """greyctl stats of db as a dict of counts"""
    r = subprocess.run([F.GREYCTL, "-D", db, "stats"], capture_output=True,
                       text=True, timeout=120)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)",
                                             r.stdout.splitlines()[0]
                                             if r.stdout else "")}


def main():
    m = CM.Mesh()
    t0 = time.monotonic()
    try:
        if not CM.build(m, spamtraps=False):
            return 1
        if not m.cluster:
            out("spamd has no --cluster-peer: latency only")
        H = {lb: m.start(lb) for lb in CM.LABELS}
        for h in H.values():
            h.wait_started()
        first = 1
        for rate in RATES:
            latency(m, H, rate, first)
            first += PASSES
        if m.cluster:
            for h in list(H.values()):
                m.stop(h)
            catchup(m)
    finally:
        m.cleanup()
    out("wall %.0f s" % (time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    random.seed(17)
    sys.exit(main())
