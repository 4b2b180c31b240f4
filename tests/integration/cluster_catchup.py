#!/usr/bin/env python3
"""cluster_catchup.py - the cluster catch-up and digest repair between
spamd hosts on loopback (spamd/writer/grey_cluster.c, pf-sync/cluster.h):
an empty host started with --cluster-peer gets the whole state; a host
restarted after its peer learned entries gets them; the same answer
applied twice changes nothing; a wrong key applies nothing, logs
event=cluster-auth and counts in greyctl cluster and /metrics; a digest
round repairs an entry one host holds alone; an answer past
--cluster-max-bytes is cut at a block boundary; a line that does not
parse (in a block whose MAC is right) is refused with a message naming
the peer and the line, and the catch-up goes on to the next peer, whose
second block has a wrong MAC: its first block is applied, nothing after.
A streamed answer that keeps moving outlives the listener's deadline
(SPAMD_HTTP_TIMEOUT=1 shortens it to 1 s): a client reading 100,000
records (5.7 MB, more than the socket buffers hold) slowly for 1.5 s,
then fast, gets them all, every block verified; one that stops reading
is dropped (event=cluster_serve outcome=closed). A peer that accepts
connections but never answers (a hung host) does not hold up the
digest rounds with the other peer: its round's pulls end after the read
timeout (under a round of --cluster-digest 1). A 1 % difference
(200 new WHITE on a host of 20,000) is repaired by fetching the
differing digest leaves: at most twice the entries that differ, not
whole buckets.
Two fake peers here speak the format with the right key. Ports
23000-23499. Prints ok / not ok lines, exits 1 if any failed.
"""
import hashlib
import hmac
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as fl  # noqa: E402

PORTS = (23000, 23499)
R = fl.Results()
tmp = tempfile.mkdtemp(prefix="cluster_catchup.")
fl.writer_reach(tmp)
daemons = []
servers = []


def keyfile(name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    return path


KEY = keyfile("key", b"the cluster key of this test\n" * 3)
BADKEY = keyfile("badkey", b"not the key\n")
# the HMAC key is the hex SHA-1 of the key file, as sync v2
K = hashlib.sha1(open(KEY, "rb").read()).hexdigest().encode()


def start(name, extra, db=None):
    """A spamd with --fw none and the sync key; waits for its writer."""
    hp = fl.pick_port("127.0.0.1", *PORTS)
    d = fl.Spamd(name,
                 db=db, ports=PORTS,
                 extra=["--fw", "none", "--http-listen", "127.0.0.1:%d" % hp]
                 + list(extra))
    d.http = "127.0.0.1:%d" % hp
    daemons.append(d)
    d.wait_started()
    return d


def greyctl(db, *args, stdin=None):
    return subprocess.run([fl.GREYCTL, "-D", db] + list(args), input=stdin,
                          capture_output=True, text=True,
                          timeout=fl.slow(30))


def shape(db):
    """The dump as comparable lines: WHITE and TRAPPED by address and
    expiry (first and pass are the receiver's own), GREY whole."""
    out = set()
    for f in fl.greyctl_dump(db) or []:
        if f[0] == "WHITE":
            out.add("WHITE|%s|%s" % (f[1], f[6]))
        elif f[0] == "TRAPPED":
            out.add("TRAPPED|%s|%s" % (f[1], f[2]))
        else:
            out.add("|".join(f))
    return out


def pulls(d, kind, outcome="ok"):
    return [ln for ln in d.logtext().splitlines()
            if "event=cluster_pull" in ln and "kind=%s" % kind in ln
            and "outcome=%s" % outcome in ln]


def cluster_get(http, target, rcvbuf=4096):
    """a socket that sent an authenticated GET target; its request MAC"""
    host, port = http.rsplit(":", 1)
    ts, nonce = int(time.time()), os.urandom(8).hex()
    reqmac = hmac.new(K, ("GET %s %d %s" % (target, ts, nonce)).encode(),
                      hashlib.sha256).hexdigest()
    s = socket.socket()
    # why small: the answer must wait on this reader, not sit in buffers
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(fl.slow(10))
    s.connect((host, int(port)))
    s.sendall(("GET %s HTTP/1.0\r\nHost: x\r\nX-Spamd-Cluster: %d %s %s"
               "\r\n\r\n" % (target, ts, nonce, reqmac)).encode())
    return s, reqmac


def verify_answer(body, reqmac):
    """(records, blocks, why): the answer's records if every block's MAC
    chains and END closes it, else why not"""
    mac = hmac.new(K, b"spamd-cluster/1 " + reqmac.encode(),
                   hashlib.sha256).digest()
    blk, recs, blocks, end = b"", 0, 0, None
    for ln in body.split(b"\n")[:-1]:
        if ln.startswith(b"MAC|"):
            inner = hmac.new(K, blk, hashlib.sha256).digest()
            mac = hmac.new(K, mac + inner, hashlib.sha256).digest()
            if ln[4:].decode() != mac.hex():
                return recs, blocks, "block %d: MAC does not verify" % (
                    blocks + 1)
            blk, blocks = b"", blocks + 1
            continue
        blk += ln + b"\n"
        if ln.startswith(b"END|"):
            end = int(ln[4:])
        else:
            recs += 1
    if end is None or blk:
        return recs, blocks, "no END line in a verified block"
    return recs, blocks, None


def metrics(d):
    with urllib.request.urlopen("http://%s/metrics" % d.http,
                                timeout=fl.slow(5)) as r:
        return r.read().decode()


now = int(time.time())
# A's state before anything runs: WHITE, TRAPPED, GREY, and 450 WHITE
# more so an answer takes three blocks of 200
lines = ["WHITE|192.0.2.1|||%d|%d|%d|1|1" % (now, now, now + 86400),
         "TRAPPED|192.0.2.2|%d" % (now + 3600),
         # OpenBSD's layout: pass = expire = first + greyexp, hours
         # ahead (the catch-up's since must not take them, case 3)
         "GREY|192.0.2.3|helo.example|a@b.example|c@d.example|%d|%d|%d|1|0"
         % (now, now + 14400, now + 14400),
         "TRAPPED|2001:db8::2|%d" % (now + 7200)]
lines += ["WHITE|10.1.%d.%d|||%d|%d|%d|1|1" % (i // 200, i % 200, now, now,
                                              now + 86400 + i)
          for i in range(450)]
try:
    dba = os.path.join(tmp, "a.db")
    r = greyctl(dba, "import", stdin="\n".join(lines) + "\n")
    if r.returncode != 0:
        raise RuntimeError("import: " + r.stderr)
    a = start("a", ["--sync-key", KEY], db=dba)
    want = shape(dba)

    # 1. an empty host gets the whole state at start
    dbb = os.path.join(tmp, "b.db")
    b = start("b", ["--sync-key", KEY, "--cluster-peer", a.http], db=dbb)
    fl.wait_for(lambda: pulls(b, "catchup"), fl.slow(10))
    R.check("empty host: catch-up at start pulls the whole state",
            shape(dbb) == want, "missing %s; extra %s" % (
                sorted(want - shape(dbb))[:3], sorted(shape(dbb) - want)[:3]))
    R.check("empty host: records=454 applied=454 in the pull line",
            any("records=454 applied=454" in ln for ln in pulls(b, "catchup")),
            b.log_tail(3))
    R.check("the server logged its streamed answer",
            "event=cluster_serve outcome=ok records=454" in a.logtext(),
            a.log_tail(3))
    r = greyctl(dbb, "cluster")
    R.check("greyctl cluster: one line for the peer, state=ok",
            r.returncode == 0 and re.search(
                r"peer=%s last_packet=0 last_catchup=[1-9]\d* last_digest=0 "
                r"differing=0 state=ok" % re.escape(a.http), r.stdout),
            r.stdout + r.stderr)
    m = metrics(b)
    R.check("/metrics: peer up and the entries it gave",
            'spamd_cluster_peer_up{peer="%s"} 1' % a.http in m and
            'spamd_cluster_catchup_entries_total{peer="%s"} 454' % a.http
            in m and 'spamd_cluster_last_catchup_seconds{peer="%s"} 0'
            % a.http not in m, m[-300:])

    # 2. the same answer again changes nothing
    full = greyctl(dbb).stdout
    b.stop()
    b = start("b2", ["--sync-key", KEY, "--cluster-peer", a.http], db=dbb)
    fl.wait_for(lambda: pulls(b, "catchup"), fl.slow(10))
    R.check("restart with nothing new: the pull applies 0",
            any(" applied=0 " in ln for ln in pulls(b, "catchup")),
            b.log_tail(3))
    R.check("restart with nothing new: the store is unchanged, byte for "
            "byte", greyctl(dbb).stdout == full, "dump differs")

    # 3. a host restarted after its peer learned entries catches up
    b.stop()
    r1 = greyctl(dba, "-a", "198.51.100.7")
    r2 = greyctl(dba, "-a", "-t", "198.51.100.8")
    b = start("b3", ["--sync-key", KEY, "--cluster-peer", a.http,
                     "--cluster-digest", "1"], db=dbb)
    fl.wait_for(lambda: pulls(b, "catchup"), fl.slow(10))
    got = shape(dbb)
    since = [int(x) for x in re.findall(
        r"event=cluster_serve outcome=ok records=\d+ since=(\d+) "
        r"bucket=-1", a.logtext())]
    R.check("restarted host: its catch-up asks since= a past time (its "
            "GREY tuple's pass, 4 h ahead, is no change time)",
            len(since) == 3 and 0 < since[-1] <= int(time.time()),
            "since= of the three catch-ups: %s, now %d" % (
                since, int(time.time())))
    R.check("restarted host: the entries learned meanwhile arrive",
            r1.returncode == 0 and r2.returncode == 0 and
            any(x.startswith("WHITE|198.51.100.7|") for x in got) and
            any(x.startswith("TRAPPED|198.51.100.8|") for x in got),
            b.log_tail(3))

    # 4. digest round: an entry A alone holds (no sync between them)
    r = greyctl(dba, "-a", "-t", "203.0.113.9")
    fl.wait_for(lambda: any(x.startswith("TRAPPED|203.0.113.9|")
                            for x in shape(dbb)), fl.slow(10))
    R.check("digest round repairs an entry written on one host only",
            r.returncode == 0 and
            any(x.startswith("TRAPPED|203.0.113.9|") for x in shape(dbb)),
            "greyctl -a -t: %d %s; %s" % (r.returncode, r.stderr.strip(),
                                           b.log_tail(4)))
    R.check("the repair compared the leaves of the one differing bucket "
            "and fetched the one differing leaf",
            re.search(r"event=cluster_digest peer=\S+ buckets_differing=1 "
                      r"differing=1 fetch=1", b.logtext()) and
            re.search(r"event=cluster_digest_leaves peer=\S+ "
                      r"leaves_differing=1 differing=1 fetch=1 ",
                      b.logtext()) and
            any(re.search(r" records=[1-4] applied=1 ", ln)
                for ln in pulls(b, "leaves")), b.log_tail(4))
    r = greyctl(dbb, "cluster")
    R.check("greyctl cluster: last_digest set after a round",
            re.search(r"last_digest=[1-9]\d* ", r.stdout), r.stdout)
    b.stop()

    # 5. wrong key: nothing applied, a log line, counted
    dbc = os.path.join(tmp, "c.db")
    c = start("c", ["--sync-key", BADKEY, "--cluster-peer", a.http,
                    "--cluster-digest", "0"], db=dbc)
    fl.wait_for(lambda: "event=cluster-auth" in c.logtext(), fl.slow(10))
    R.check("wrong key: the puller logs event=cluster-auth key mismatch",
            re.search(r'event=cluster-auth side=client peer=%s kind=catchup '
                      r'error="key mismatch' % re.escape(a.http),
                      c.logtext()), c.log_tail(3))
    R.check("wrong key: the server logs event=cluster-auth",
            re.search(r'event=cluster-auth side=server peer=127.0.0.1 '
                      r'path=/cluster/changes error="key mismatch"',
                      a.logtext()), a.log_tail(3))
    R.check("wrong key: nothing applied", not fl.greyctl_dump(dbc),
            str(fl.greyctl_dump(dbc))[:200])
    r = greyctl(dbc, "cluster")
    R.check("wrong key: greyctl cluster says state=auth-fail",
            "state=auth-fail" in r.stdout and "auth_failures=1" in r.stdout,
            r.stdout)
    R.check("wrong key: spamd_cluster_auth_failures_total counts it",
            'spamd_cluster_auth_failures_total{peer="%s"} 1' % a.http
            in metrics(c) and 'spamd_cluster_peer_up{peer="%s"} 0'
            % a.http in metrics(c), metrics(c)[-400:])
    c.stop()

    # 6. --cluster-max-bytes: cut cleanly at a block boundary
    dbd = os.path.join(tmp, "d.db")
    d = start("d", ["--sync-key", KEY, "--cluster-peer", a.http,
                    "--cluster-digest", "0", "--cluster-max-bytes", "15000"],
              db=dbd)
    fl.wait_for(lambda: pulls(d, "catchup", "error"), fl.slow(10))
    n = len(fl.greyctl_dump(dbd) or [])
    R.check("max bytes: the pull stops with a message naming the limit",
            any("--cluster-max-bytes 15000: cut at line" in ln
                for ln in pulls(d, "catchup", "error")), d.log_tail(3))
    R.check("max bytes: only whole blocks before the cut are applied "
            "(200 records)", n == 200, "%d records" % n)
    d.stop()

    # 7. fake peers: a bad line, then a bad MAC in a second block
    class Fake(BaseHTTPRequestHandler):
        blocks = []

        def do_GET(self):
            ts, nonce, reqmac = self.headers[
                "X-Spamd-Cluster"].split(" ")
            mac = hmac.new(K, b"spamd-cluster/1 " + reqmac.encode(),
                           hashlib.sha256).digest()
            body = b""
            for blk, good in self.blocks:
                inner = hmac.new(K, blk, hashlib.sha256).digest()
                mac = hmac.new(K, mac + inner, hashlib.sha256).digest()
                m = mac if good else bytes(32)
                body += blk + b"MAC|" + m.hex().encode() + b"\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    exp = now + 3600
    bad = type("Bad", (Fake,), {"blocks": [(
        ("TRAPPED|192.0.2.50|%d\nTRAPPED|192.0.2.51|%d\n"
         "WHITE|192.0.2.52|x|||1|1|1|1\nEND|3\n" % (exp, exp)).encode(),
        True)]})
    half = type("Half", (Fake,), {"blocks": [
        (("TRAPPED|192.0.2.60|%d\n" % exp).encode(), True),
        (("TRAPPED|192.0.2.61|%d\nEND|2\n" % exp).encode(), False)]})
    fake = []
    for h in (bad, half):
        port = fl.pick_port("127.0.0.1", *PORTS)
        s = HTTPServer(("127.0.0.1", port), h)
        threading.Thread(target=s.serve_forever, daemon=True).start()
        servers.append(s)
        fake.append("127.0.0.1:%d" % port)
    dbe = os.path.join(tmp, "e.db")
    e = start("e", ["--sync-key", KEY, "--cluster-peer", fake[0],
                    "--cluster-peer", fake[1], "--cluster-digest", "0"],
              db=dbe)
    fl.wait_for(lambda: "event=cluster-auth" in e.logtext(), fl.slow(10))
    R.check("bad line: refused with the peer and the line named",
            re.search(r'event=cluster_pull peer=%s kind=catchup '
                      r'outcome=error error="line 3: WHITE: fields 3 and 4 '
                      r'must be empty"' % re.escape(fake[0]), e.logtext()),
            e.log_tail(3))
    got = shape(dbe)
    R.check("bad line: nothing of its block is applied",
            not any("192.0.2.5" in x for x in got), str(sorted(got)))
    R.check("catch-up goes on to the next peer; its good first block is "
            "applied", any(x.startswith("TRAPPED|192.0.2.60|") for x in got),
            str(sorted(got)))
    R.check("bad MAC in the second block: logged, nothing after it applied",
            re.search(r'event=cluster-auth side=client peer=%s kind=catchup '
                      r'error="key mismatch: MAC of the block ending at line '
                      r'5 does not verify" applied=1' % re.escape(fake[1]),
                      e.logtext()) and
            not any("192.0.2.61" in x for x in got), e.log_tail(3))
    e.stop()

    # 9. a hung peer (connections complete, nothing answers) next to A:
    # the digest rounds with A go on, the hung one's pulls time out
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(1)	# never accepted
    dspec = "127.0.0.1:%d" % dead.getsockname()[1]
    dbh = os.path.join(tmp, "h.db")
    h = start("h", ["--sync-key", KEY, "--cluster-peer", a.http,
                    "--cluster-peer", dspec, "--cluster-digest", "1"],
              db=dbh)
    fl.wait_for(lambda: pulls(h, "catchup"), fl.slow(10))
    r = greyctl(dba, "-a", "-t", "203.0.113.77")
    fl.wait_for(lambda: any(x.startswith("TRAPPED|203.0.113.77|")
                            for x in shape(dbh)), fl.slow(10))
    R.check("hung peer: a digest round with the other repairs meanwhile",
            any(x.startswith("TRAPPED|203.0.113.77|") for x in shape(dbh)),
            h.log_tail(4))
    hung = re.compile(r'event=cluster_pull peer=%s kind=digest '
                      r'outcome=\w+ error="nothing read for 1 s"' %
                      re.escape(dspec))
    R.check("hung peer: its round's pulls end at the read timeout",
            fl.wait_for(lambda: hung.search(h.logtext()), fl.slow(10)),
            h.log_tail(4))
    h.stop()
    dead.close()
    a.stop()

    # 10. 1 % differing: the repair fetches the leaves that differ
    def whites(lo, n):
        return "".join("WHITE|10.7.%d.%d|||%d|%d|%d|1|1\n" % (
            i >> 8, i & 255, now, now, now + 86400) for i in range(lo,
                                                               lo + n))
    dbk, dbq = os.path.join(tmp, "k.db"), os.path.join(tmp, "q.db")
    greyctl(dbk, "import", stdin=whites(0, 20000))
    k = start("k", ["--sync-key", KEY], db=dbk)
    q = start("q", ["--sync-key", KEY, "--cluster-peer", k.http,
                    "--cluster-digest", "1"], db=dbq)
    fl.wait_for(lambda: pulls(q, "catchup"), fl.slow(20))
    mark = len(q.logtext())
    r = greyctl(dbk, "import", stdin=whites(20000, 200))

    def nwhite(db):
        st = greyctl(db, "stats").stdout
        m = re.search(r"white=(\d+)", st)
        return int(m.group(1)) if m else -1
    ok = fl.wait_for(lambda: nwhite(dbq) == 20200, fl.slow(15))
    later = q.logtext()[mark:].splitlines()
    fetched = sum(int(re.search(r" records=(\d+)", ln).group(1))
                  for ln in later if "event=cluster_pull" in ln and
                  "outcome=ok" in ln and "kind=catchup" not in ln and
                  "kind=digest" not in ln and "kind=leafdigest" not in ln)
    R.check("1 %% differing: the 200 new entries arrive, fetching %d "
            "records (at most 400)" % fetched, r.returncode == 0 and ok and
            0 < fetched <= 400, "white=%d; %s" % (
                nwhite(dbq), " | ".join(ln for ln in later
                                        if "cluster_" in ln)[-600:]))
    q.stop()
    k.stop()

    # 8. a streamed answer that moves outlives the listener's deadline
    # (1 s here); one whose reader stops is dropped
    dbs = os.path.join(tmp, "s.db")
    big = 100000
    r = greyctl(dbs, "import", stdin="".join(
        "WHITE|10.%d.%d.%d|||%d|%d|%d|1|1\n" % (
            8 + (i >> 16), (i >> 8) & 255, i & 255, now, now, now + 86400)
        for i in range(big)))
    os.environ["SPAMD_HTTP_TIMEOUT"] = "1"
    try:
        srv = start("s", ["--sync-key", KEY], db=dbs)
    finally:
        del os.environ["SPAMD_HTTP_TIMEOUT"]
    sock, reqmac = cluster_get(srv.http, "/cluster/changes?since=0")
    # why 1.5 s slow: at most ~1.2 MB read by then, so with ~4 MB in
    # the server's send buffer the answer is still streaming after the
    # 1 s deadline (the old code cut it there, moving or not)
    chunks, t0 = [], time.monotonic()
    for i in range(400000):
        slow = time.monotonic() - t0 < 1.5
        got = sock.recv(8192 if slow else 1 << 20)
        if not got:
            break
        chunks.append(got)
        if slow:
            time.sleep(0.01)
    took = time.monotonic() - t0
    data = b"".join(chunks)
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    recs, blocks, why = verify_answer(body, reqmac)
    R.check("slow reader: all %d records of a streamed answer arrive, "
            "every block verified, past the 1 s deadline (read in %.1f s)"
            % (big, took), r.returncode == 0 and
            head.startswith(b"HTTP/1.0 200") and why is None and
            recs == big, "%d records, %d blocks: %s; %s" % (
                recs, blocks, why, srv.log_tail(3)))
    R.check("slow reader: the server logged the whole answer, no timeout",
            "event=cluster_serve outcome=ok records=%d" % big in
            srv.logtext() and "event=http_timeout" not in srv.logtext(),
            srv.log_tail(3))
    sock, _ = cluster_get(srv.http, "/cluster/changes?since=0")
    sock.recv(1024)	# the answer started; then this reader stops
    dropped = fl.wait_for(lambda: "event=cluster_serve outcome=closed" in
                          srv.logtext(), fl.slow(10))
    R.check("stalled reader: the server drops the answer",
            dropped and "event=http_timeout" in srv.logtext(),
            srv.log_tail(3))
    sock.close()
    srv.stop()
    for dd in daemons:
        fl.sanitizer_check(R, "spamd %s" % dd.name, paths=[dd.logpath])
except Exception as ex:  # a daemon that did not start, a timeout
    R.notok("cluster_catchup ran to the end", repr(ex))
finally:
    for s in servers:
        s.shutdown()
    for dd in daemons:
        dd.stop()
    if not os.environ.get("CLUSTER_KEEP"):
        for dd in daemons:
            dd.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
sys.exit(R.status())
