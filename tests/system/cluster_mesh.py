#!/usr/bin/env python3
"""cluster_mesh.py - issue 17, "many MX hosts, one memory": five spamd
hosts (A-E) in five network namespaces on one bridge (a sixth namespace
holds it), 10.99.17.1-5, each with its own --db-dir, its own nftables table
(etc/spamd.nft, --fw nftables) and its own senders (10.99.2X.0/24, local
to host X, who mail spamd on the host's loopback). Each host syncs
unicast (-y its address, -Y each other host and the OpenBSD-layout peer,
--sync-white, one key file) and is a cluster peer of the others
(--http-listen :8080, --cluster-peer each other host, --cluster-digest 3).
A seventh namespace holds an OpenBSD-layout sync peer (10.99.17.9, this
script: packets built and parsed as OpenBSD's sync.c does, HMAC-SHA1),
an eighth the host that joins later (10.99.17.6).

Cases, each its own result lines:
  a. a pass on A puts the sender in every host's spamd-white set; a
     spamtrap mailed on B makes the sender TRAPPED on every host;
  g. the OpenBSD-layout peer verifies and decodes what our hosts send
     (GREY, WHITE, TRAPPED; nothing it must reject), and its own GREY,
     WHITE and TRAPPED packets reach every host;
  b. with 20 % of the frames on the bridge dropped (nft numgen in the
     bridge's namespace: this kernel has no netem), 20 entries made on
     all five hosts: the five stores agree on WHITE and TRAPPED within
     two digest rounds (time printed);
  c. C stopped, A and B learn entries, C restarted with
     --cluster-digest 0: it catches up at start (times printed: until the
     entries are in its store, until it accepts connections);
  d. A and B cut off from C, D and E (nft drop on the bridge), entries
     learned on both sides, healed: all five converge;
  e. a new empty host F (--cluster-peer A) receives the whole state;
  f. G, a host with the wrong key: its pull fails (event=cluster-auth,
     greyctl cluster state=auth-fail, the auth failure metric), it
     applies nothing, and its sync packets are dropped by A (hmac);
  m. all five restarted with multicast sync (-y eth0 -Y eth0:1): a trap
     on A reaches B-E.
Cases b-f need the cluster catch-up and digest (--cluster-peer); a build
without them fails those cases, saying so, and still runs a, g and m.
Root and ip/nft needed (skips otherwise). CLUSTER_MESH_KEEP=1 keeps the
hosts' logs and stores (the path is printed). Everything (namespaces,
daemons) is removed on exit, also on failure. About 45 s.
"""
import ctypes
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as F  # noqa: E402

R = F.Results()
TAG = str(os.getpid())
NET = "10.99.17."
OBSD = NET + "9"
NEWHOST = NET + "6"
HTTP_PORT = 8080
SYNC_PORT = 8025
DIGEST = 3
TRAP_RCPT = "trap@mesh.example"
LABELS = "ABCDE"
# "Within two digest rounds" is counted in rounds (see wait_agree); a
# run whose rounds stall stops waiting after HANG_GUARD seconds
HANG_GUARD = 30

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000
_HOME_NS = os.open("/proc/self/ns/net", os.O_RDONLY)


def _setns_fd(fd):
    """setns(2) of the calling thread into the network namespace fd"""
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: " + os.strerror(e))


def _setns_name(ns):
    """setns(2) into the named namespace (/run/netns/NS)"""
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    try:
        _setns_fd(fd)
    finally:
        os.close(fd)


class InNs:
    """with InNs(ns): sockets made in the block live in namespace ns (the
    calling thread enters it and comes back on leaving)"""

    def __init__(self, ns):
        self.ns = ns

    def __enter__(self):
        _setns_name(self.ns)

    def __exit__(self, *a):
        _setns_fd(_HOME_NS)


def run(args, ns=None, check=False, timeout=30):
    """a command (inside ns when given); CompletedProcess (text)"""
    if ns is not None:
        args = ["ip", "netns", "exec", ns] + list(args)
    r = subprocess.run(args, capture_output=True, text=True,
                       timeout=F.slow(timeout))
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stderr.strip()))
    return r


class Net:
    """The namespaces, the bridge, the veths, and the nft tables on the
    bridge (loss, partition)."""

    def __init__(self):
        self.br = "mbr" + TAG
        self.made = []

    def add_ns(self, ns):
        run(["ip", "netns", "add", ns], check=True)
        self.made.append(ns)
        run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)

    def setup(self):
        self.add_ns(self.br)
        run(["ip", "-n", self.br, "link", "add", "br0", "type", "bridge",
             "mcast_snooping", "0"], check=True)
        run(["ip", "-n", self.br, "link", "set", "br0", "up"], check=True)

    def attach(self, ns, port, addr):
        """namespace ns joins the bridge as port (eth0 inside, addr/24)"""
        self.add_ns(ns)
        run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth",
             "peer", "name", port, "netns", self.br], check=True)
        run(["ip", "-n", self.br, "link", "set", port, "master", "br0",
             "up"], check=True)
        run(["ip", "-n", ns, "addr", "add", addr + "/24", "dev", "eth0"],
            check=True)
        run(["ip", "-n", ns, "link", "set", "eth0", "up"], check=True)

    def nft(self, text):
        """load nft text in the bridge's namespace"""
        r = subprocess.run(["ip", "netns", "exec", self.br, "nft", "-f",
                            "-"], input=text, capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("nft: " + r.stderr.strip())

    def drop(self, table):
        run(["nft", "delete", "table", "bridge", table], ns=self.br)

    def cleanup(self):
        for ns in reversed(self.made):
            run(["ip", "netns", "del", ns])


class Host(F.Spamd):
    """One spamd in its own namespace: listens on the namespace's
    127.0.0.1, syncs and serves the cluster on addr."""

    def __init__(self, label, ns, addr, tmp, key, peers, extra=(),
                 logname="spamd.log", cluster=True, digest=DIGEST,
                 sync=None):
        self.label, self.ns, self.addr = label, ns, addr
        if sync is None:
            sync = ["-y", addr] + [a for p in peers + [OBSD]
                                   for a in ("-Y", p)]
        args = ["--fw", "nftables", "--pass-seconds", "1", "--sync-white",
                "--sync-key", key, "--sync-accept", NEWHOST] + sync
        if cluster:
            args += ["--http-listen", "%s:%d" % (addr, HTTP_PORT),
                     "--cluster-digest", str(digest)]
            for p in peers:
                args += ["--cluster-peer", "%s:%d" % (p, HTTP_PORT)]
        self.spawned = time.monotonic()
        super().__init__("mesh" + label, extra=args + list(extra),
                         db=os.path.join(tmp, "db"), tmp=tmp,
                         logname=logname,
                         preexec=lambda: _setns_name(ns))

    def connectable(self):
        with InNs(self.ns):
            return super().connectable()

    def smtp(self, src, rcpt, mfrom="sender@mesh.example"):
        """one dialogue from src (local to this namespace) to this spamd;
        the DATA reply code, or the error's text"""
        try:
            with InNs(self.ns):
                return F.dialogue(self.port, src, "client.mesh.example",
                                  mfrom, [rcpt])[0]
        except (OSError, ValueError) as e:
            return str(e)

    def wt(self):
        """{(WHITE|TRAPPED, ip)} of this host's store (None on error)"""
        d = F.greyctl_dump(self.db)
        if d is None:
            return None
        return {(r[0], r[1]) for r in d if r[0] in ("WHITE", "TRAPPED")}

    def dump(self):
        return F.greyctl_dump(self.db) or []

    def white_set(self):
        """the addresses in this namespace's spamd-white set"""
        r = run(["nft", "-j", "list", "set", "inet", "spamd",
                 "spamd-white"], ns=self.ns)
        out = set()
        try:
            for obj in json.loads(r.stdout)["nftables"]:
                for el in obj.get("set", {}).get("elem", []):
                    out.add(el["elem"]["val"] if isinstance(el, dict)
                            else el)
        except (ValueError, KeyError, TypeError):
            pass
        return out

    def sync_counters(self):
        """the writer's newest sync_counters line (SIGUSR1) as a dict"""
        return F.sync_counters(self, 5)

    def cluster_lines(self):
        """greyctl cluster's lines for this host"""
        r = subprocess.run([F.GREYCTL, "-D", self.db, "cluster"],
                           capture_output=True, text=True,
                           timeout=F.slow(20))
        return r.returncode, (r.stdout + r.stderr).strip().splitlines()

    def metrics(self):
        """this host's /metrics text ('' when it does not answer)"""
        try:
            with InNs(self.ns):
                s = socket.create_connection((self.addr, HTTP_PORT),
                                             F.slow(5))
            s.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            out = b""
            while len(out) < 1 << 20:
                b = s.recv(65536)
                if not b:
                    break
                out += b
            s.close()
            return out.decode(errors="replace")
        except OSError:
            return ""


# ---- the OpenBSD-layout peer

def obsd_key(raw):
    """the sync key as OpenBSD derives it: lowercase hex SHA-1 of the
    key file's bytes (40 characters), used as the HMAC key"""
    return hashlib.sha1(raw).hexdigest().encode()


def obsd_header(counter, total):
    """the 32-byte sync header with the HMAC zeroed"""
    return struct.pack("!BBHI20s4s", 2, socket.AF_INET, total, counter,
                       b"\0" * 20, b"\0" * 4)


def obsd_sign(key, pkt):
    """pkt with its HMAC-SHA1 (over the packet, the HMAC zeroed) set"""
    mac = hmac.new(key, pkt, hashlib.sha1).digest()
    return pkt[:8] + mac + pkt[28:]


def obsd_grey(key, counter, now, ip, helo, mfrom, to):
    """one GREY entry in one packet, as OpenBSD's sync_update builds it:
    18-byte TLV head, from/to/helo with their NULs, zero pad to 16"""
    f, t, h = mfrom.encode() + b"\0", to.encode() + b"\0", \
        helo.encode() + b"\0"
    sglen = 18 + len(f) + len(t) + len(h)
    pad = ((sglen + 15) & ~15) - sglen
    tlv = struct.pack("!HHI4sHHH", 1, sglen + pad, now,
                      socket.inet_aton(ip), len(f), len(t), len(h)) + \
        f + t + h + b"\0" * pad
    end = struct.pack("!HH", 0, 4)
    return obsd_sign(key, obsd_header(counter, 32 + len(tlv) + 4) + tlv +
                     end)


def obsd_addr(key, counter, now, typ, ip, expire):
    """one WHITE (2) or TRAPPED (3) entry in one packet (sync_addr)"""
    tlv = struct.pack("!HHII4s", typ, 16, now, expire, socket.inet_aton(ip))
    end = struct.pack("!HH", 0, 4)
    return obsd_sign(key, obsd_header(counter, 32 + 16 + 4) + tlv + end)


class ObsdPeer:
    """A sync peer that builds and parses packets as OpenBSD's sync.c:
    one entry a packet; a packet is taken only if its header (version 2,
    AF_INET, length not beyond what came) and HMAC check, and every TLV
    is GREY, WHITE, TRAPPED or END with the lengths OpenBSD checks; any
    other type drops the whole packet there, as OpenBSD does."""

    def __init__(self, ns, addr, key, targets):
        self.key, self.targets = key, targets
        self.counter = random.getrandbits(31)
        self.entries = []	# (source, type, ip, detail)
        self.accepted = {}	# source -> packets taken
        self.rejected = []	# (source, why)
        self.stop = threading.Event()
        with InNs(ns):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((addr, SYNC_PORT))
        self.sock.settimeout(0.2)
        self.th = threading.Thread(target=self.loop, daemon=True)
        self.th.start()

    def loop(self):
        while not self.stop.is_set():
            try:
                buf, src = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            why = self.parse(buf, src[0])
            if why:
                self.rejected.append((src[0], why))
            else:
                self.accepted[src[0]] = self.accepted.get(src[0], 0) + 1

    def parse(self, buf, src):
        """None if the packet is taken (its entries recorded), else why
        OpenBSD's sync_recv would drop it"""
        if len(buf) < 32:
            return "short header"
        ver, af, length = struct.unpack("!BBH", buf[:4])
        if ver != 2 or af != socket.AF_INET or len(buf) < length:
            return "header version %d af %d length %d/%d" % (
                ver, af, length, len(buf))
        pkt = bytearray(buf[:length])
        got = bytes(pkt[8:28])
        pkt[8:28] = b"\0" * 20
        want = hmac.new(self.key, bytes(pkt), hashlib.sha1).digest()
        if not hmac.compare_digest(got, want):
            return "hmac"
        p, left, found = 32, length - 32, []
        while left:
            if left < 4:
                return "short tlv"
            typ, tlen = struct.unpack("!HH", pkt[p:p + 4])
            if left < tlen:
                return "tlv length %d > %d left" % (tlen, left)
            if typ == 1:
                if tlen < 18:
                    return "grey tlv %d" % tlen
                _, _, ts, ip, fl, tl, hl = struct.unpack(
                    "!HHI4sHHH", pkt[p:p + 18])
                if 18 + fl + tl + hl > tlen:
                    return "grey strings beyond the tlv"
                s = bytes(pkt[p + 18:p + 18 + fl + tl + hl])
                frm, to, helo = (s[:fl], s[fl:fl + tl], s[fl + tl:])
                found.append(("GREY", socket.inet_ntoa(ip), (
                    helo.rstrip(b"\0").decode("latin-1"),
                    frm.rstrip(b"\0").decode("latin-1"),
                    to.rstrip(b"\0").decode("latin-1"))))
            elif typ in (2, 3):
                if tlen != 16:
                    return "addr tlv %d" % tlen
                _, _, ts, exp, ip = struct.unpack("!HHII4s",
                                                  pkt[p:p + 16])
                found.append(("WHITE" if typ == 2 else "TRAPPED",
                              socket.inet_ntoa(ip), exp))
            elif typ == 0:
                break
            else:
                return "invalid type %d" % typ
            if tlen == 0:
                return "zero tlv length"
            left -= tlen
            p += tlen
        for e in found:
            self.entries.append((src,) + e)
        return None

    def send(self, pkt):
        self.counter += 1
        for t in self.targets:
            self.sock.sendto(pkt, (t, SYNC_PORT))

    def send_grey(self, ip, helo, mfrom, to):
        self.send(obsd_grey(self.key, self.counter, int(time.time()), ip,
                            helo, mfrom, to))

    def send_addr(self, typ, ip, expire):
        self.send(obsd_addr(self.key, self.counter, int(time.time()), typ,
                            ip, expire))

    def close(self):
        self.stop.set()
        self.th.join(5)
        self.sock.close()


# ---- helpers over hosts

def sender(i, n):
    """address n of host i's senders (10.99.2i.n, local to host i)"""
    return "10.99.%d.%d" % (20 + i, n)


def agree(hosts):
    """(True, set) when every host's WHITE+TRAPPED set is the same, else
    (False, what differs)"""
    sets = {h.label: h.wt() for h in hosts}
    if any(s is None for s in sets.values()):
        return False, "greyctl failed on %s" % [
            k for k, v in sets.items() if v is None]
    union = set().union(*sets.values())
    missing = {k: sorted(union - v) for k, v in sets.items() if union - v}
    if not missing:
        return True, union
    return False, "union %d entries; missing %s" % (
        len(union), "; ".join("%s: %d (%s)" % (k, len(v), v[:3])
                              for k, v in missing.items()))


def wait_agree(hosts, want=(), rounds=3):
    """poll until all hosts agree and hold every entry of want, for at
    most rounds digest rounds of every host (each logs one
    event=cluster_digest line a peer a round; the first round may have
    begun before the call, so 3 means two whole ones) or, when rounds
    stall, HANG_GUARD seconds; (ok, seconds taken, last state)"""
    t0 = time.monotonic()
    end = t0 + F.slow(HANG_GUARD)
    base = {h: h.count("event=cluster_digest ") for h in hosts}
    while True:
        ok, st = agree(hosts)
        if ok and not set(want) - st:
            return True, time.monotonic() - t0, st
        if ok:
            st = "all agree but lack %s" % sorted(set(want) - st)[:4]
        # one line a peer a round: four peers
        done = {h.label: (h.count("event=cluster_digest ") - base[h]) //
                (len(LABELS) - 1) for h in hosts}
        if min(done.values()) >= rounds:
            return False, time.monotonic() - t0, "after %d digest rounds " \
                "of every host: %s" % (rounds, st)
        if time.monotonic() >= end:
            return False, time.monotonic() - t0, "digest rounds done in " \
                "%d s: %s; %s" % (HANG_GUARD, done, st)
        time.sleep(0.3)


def has_all(host, want):
    s = host.wt()
    return s is not None and not set(want) - s


class Mesh:
    """The whole run's state, so cleanup finds everything."""

    def __init__(self):
        self.net = Net()
        self.tmp = tempfile.mkdtemp(prefix="cluster_mesh.")
        self.hosts = []		# live hosts, any of them
        self.peer = None
        self.rawkey = os.urandom(64)
        self.key = os.path.join(self.tmp, "spamd.key")
        self.badkey = os.path.join(self.tmp, "wrong.key")
        for path, data in ((self.key, self.rawkey),
                           (self.badkey, os.urandom(64))):
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, 0o600)
        r = subprocess.run([F.SPAMD, "--help"], capture_output=True)
        self.cluster = b"--cluster-peer" in r.stdout + r.stderr

    def ns(self, label):
        """a host's namespace (G, the wrong-key host, reuses F's)"""
        return "m%s%s" % ("F" if label == "G" else label, TAG)

    def addr(self, label):
        return NET + str({"F": 6, "G": 6}.get(label) or
                         LABELS.index(label) + 1)

    def hostdir(self, label):
        d = os.path.join(self.tmp, label)
        os.makedirs(d, exist_ok=True)
        F.writer_reach(d)
        return d

    def start(self, label, **kw):
        peers = [NET + str(j + 1) for j, lb in enumerate(LABELS)
                 if lb != label]
        kw.setdefault("cluster", self.cluster)
        h = Host(label, self.ns(label), self.addr(label),
                 self.hostdir(label), kw.pop("key", self.key), peers, **kw)
        self.hosts.append(h)
        return h

    def stop(self, h):
        rc = h.stop()
        if h in self.hosts:
            self.hosts.remove(h)
        return rc

    def cleanup(self):
        if self.peer is not None:
            self.peer.close()
        for h in list(self.hosts):
            self.stop(h)
        self.net.cleanup()
        if os.environ.get("CLUSTER_MESH_KEEP"):
            print("# logs kept in %s" % self.tmp, flush=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    if os.geteuid() != 0:
        R.skip("cluster mesh", "needs root")
        return 0
    for b in (F.SPAMD, F.GREYCTL):
        if not os.access(b, os.X_OK):
            R.notok("cluster mesh", "%s not built" % b)
            return 1
    for t in ("ip", "nft"):
        if shutil.which(t) is None:
            R.notok("cluster mesh", "no %s (tests/deps.sh)" % t)
            return 1
    m = Mesh()

    def bye(signum, frame):
        raise SystemExit(1)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, bye)
    t0 = time.monotonic()
    try:
        mesh(m)
    finally:
        logs = [os.path.join(d, f) for d, _, fs in os.walk(m.tmp)
                for f in fs if f.endswith(".log")]
        F.sanitizer_check(R, "no sanitizer reports in the hosts' logs",
                          paths=logs)
        # a writer that crashes is restarted and the host serves on, so
        # only its log tells (a peer then sees "connection closed")
        died = []
        for p in sorted(logs):
            with open(p, errors="replace") as f:
                died += ["%s: %s" % (os.path.relpath(p, m.tmp), ln[-80:])
                         for ln in f if "event=child-died" in ln]
        R.check("no engine or writer of any host died by a signal",
                not died, "%d: %s" % (len(died), " | ".join(died[:3])))
        m.cleanup()
    print("# cluster_mesh: %.1f s" % (time.monotonic() - t0), flush=True)
    return R.status()


def build(m, spamtraps=True):
    """the bridge, the hosts' namespaces (with etc/spamd.nft and their
    senders' route), the OpenBSD-layout peer's namespace and the peer;
    spamtraps: TRAP_RCPT in every host's store. False on failure (said)"""
    m.net.setup()
    nft_rules = os.path.join(F.TOP, "etc", "spamd.nft")
    for i, lb in enumerate(LABELS + "FG", 1):
        if lb == "G":
            continue	# G shares F's namespace, after F
        ns = m.ns(lb)
        m.net.attach(ns, "p" + lb, m.addr(lb))
        run(["nft", "-f", nft_rules], ns=ns, check=True)
        # host i's senders are local addresses: they mail spamd on the
        # host's loopback, so SMTP never crosses the lossy bridge
        run(["ip", "-n", ns, "route", "add", "local",
             "10.99.%d.0/24" % (20 + i), "dev", "lo"], check=True)
    m.net.attach("mO" + TAG, "pO", OBSD)
    for lb in LABELS if spamtraps else ():
        r = subprocess.run([F.GREYCTL, "-D", os.path.join(m.hostdir(lb),
                                                          "db"),
                            "-T", "-a", TRAP_RCPT], capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            R.notok("spamtrap address added", r.stderr.strip())
            return False
    m.peer = ObsdPeer("mO" + TAG, OBSD, obsd_key(m.rawkey),
                      [NET + str(j) for j in range(1, 6)])
    return True


def mesh(m):
    if not build(m):
        return
    if not m.cluster:
        R.notok("spamd knows --cluster-peer (issue 17)",
                "%s --help has no --cluster-peer: the catch-up and digest "
                "cases b-f fail" % F.SPAMD)
    H = {lb: m.start(lb) for lb in LABELS}
    for h in H.values():
        try:
            up = h.wait_started()
        except RuntimeError as e:
            up, why = False, str(e)
        else:
            why = h.log_tail()
        if not R.check("host %s starts (--fw nftables, unicast sync%s)" % (
                h.label, ", cluster" if m.cluster else ""), up, why):
            return
    hosts = [H[lb] for lb in LABELS]

    # greylist now every tuple that passes later, so one wait covers all
    passes = {"a": [(H["A"], sender(1, 10))],
              "b": [(H[lb], sender(i, n)) for i, lb in
                    enumerate(LABELS, 1) for n in (20, 21)],
              "c": [(H[lb], sender(i, 30)) for i, lb in ((1, "A"),
                                                        (2, "B"))],
              "d": [(H["A"], sender(1, 40)), (H["D"], sender(4, 40))]}
    for plan in passes.values():
        for h, src in plan:
            h.smtp(src, "rcpt@example.com")
    t_grey = time.monotonic()

    def do_passes(case):
        """retry the case's tuples once past the pass time; the
        addresses that became WHITE on their host"""
        time.sleep(max(0, t_grey + 2.2 - time.monotonic()))
        out = []
        for h, src in passes[case]:
            h.smtp(src, "rcpt@example.com")
        for h, src in passes[case]:
            if F.wait_for(lambda: ("WHITE", src) in (h.wt() or ()), 5):
                out.append(src)
        return out

    case_a(m, H, hosts, do_passes)
    case_g(m, H, hosts)
    case_b(m, H, hosts, do_passes)
    case_c(m, H, do_passes)
    hosts = [m.hosts[[h.label for h in m.hosts].index(lb)]
             for lb in LABELS]
    H = {h.label: h for h in hosts}
    case_d(m, H, hosts, do_passes)
    case_e(m, H)
    case_f(m, H)
    case_m(m, H)


def case_a(m, H, hosts, do_passes):
    """a pass on A is in every set; a trap on B is TRAPPED everywhere"""
    white = do_passes("a")
    R.check("a: a sender retrying past the pass time on A is WHITE there",
            white == [sender(1, 10)], H["A"].dump())
    ip = sender(1, 10)
    ok = F.wait_for(lambda: all(ip in h.white_set() for h in hosts), 10)
    R.check("a: the pass on A puts %s in all five spamd-white sets" % ip,
            ok, "sets without it: %s" % [h.label for h in hosts
                                          if ip not in h.white_set()])
    trap = sender(2, 11)
    H["B"].smtp(trap, TRAP_RCPT)
    ok = F.wait_for(lambda: all(("TRAPPED", trap) in (h.wt() or ())
                                for h in hosts), 10)
    R.check("a: a spamtrap mailed on B makes %s TRAPPED on all five" % trap,
            ok, "hosts without it: %s" % [
                h.label for h in hosts if ("TRAPPED", trap) not in
                (h.wt() or ())])


def case_g(m, H, hosts):
    """the OpenBSD-layout peer and our hosts understand each other"""
    p = m.peer
    ip, trap = sender(1, 10), sender(2, 11)
    F.wait_for(lambda: len(p.accepted) >= 5, 5)
    R.check("g: the OpenBSD-layout peer verified packets from all five "
            "hosts (%d packets)" % sum(p.accepted.values()),
            sorted(p.accepted) == [NET + str(j) for j in range(1, 6)],
            "from %s" % sorted(p.accepted))
    R.check("g: it rejected none (HMAC, header, TLV as OpenBSD's parser)",
            not p.rejected, p.rejected[:3])
    grey = [e for e in p.entries if e[1] == "GREY" and e[2] == ip]
    # our hosts send addresses as the client typed them, as OpenBSD does
    R.check("g: it decoded A's GREY for %s (helo, from, to)" % ip,
            any(e[0] == NET + "1" and tuple(x.strip("<>") for x in e[3]) ==
                ("client.mesh.example", "sender@mesh.example",
                 "rcpt@example.com") for e in grey), grey[:2])
    R.check("g: it decoded A's WHITE and B's TRAPPED",
            any(e[:3] == (NET + "1", "WHITE", ip) for e in p.entries) and
            any(e[:3] == (NET + "2", "TRAPPED", trap) for e in p.entries),
            [e for e in p.entries if e[1] != "GREY"][:4])
    now = int(time.time())
    g, w, t = "10.99.30.1", "10.99.30.2", "10.99.30.3"
    # OpenBSD sends addresses as typed: the receivers normalise them
    p.send_grey(g, "obsd.example", "<Alice@OBSD.Example>", "<bob@example.com>")
    p.send_addr(2, w, now + 3600)
    p.send_addr(3, t, now + 3600)
    want_grey = "GREY|%s|obsd.example|alice@obsd.example|bob@example.com|" % g

    def got(h):
        d = ["|".join(r) for r in h.dump()]
        return (any(x.startswith(want_grey) for x in d),
                any(x.startswith("WHITE|%s|" % w) for x in d),
                any(x.startswith("TRAPPED|%s|" % t) for x in d))
    F.wait_for(lambda: all(all(got(h)) for h in hosts), 10)
    res = {h.label: got(h) for h in hosts}
    R.check("g: the peer's GREY (normalised), WHITE and TRAPPED reach all "
            "five stores", all(all(v) for v in res.values()),
            {k: v for k, v in res.items() if not all(v)})
    ok = F.wait_for(lambda: all(w in h.white_set() for h in hosts), 5)
    R.check("g: the peer's WHITE is in all five spamd-white sets", ok,
            [h.label for h in hosts if w not in h.white_set()])


def case_b(m, H, hosts, do_passes):
    """20 % loss on the bridge; the digest makes the stores agree"""
    m.net.nft("table bridge meshloss {\n chain lossy {\n"
              "  type filter hook forward priority 0; policy accept;\n"
              "  numgen random mod 100 < 20 drop\n }\n}\n")
    want = set()
    try:
        white = do_passes("b")
        want |= {("WHITE", a) for a in white}
        for i, h in enumerate(hosts, 1):
            for n in (22, 23):
                h.smtp(sender(i, n), TRAP_RCPT)
                want.add(("TRAPPED", sender(i, n)))
        R.check("b: 20 entries made on five hosts through 20 %% loss "
                "(%d WHITE, 10 TRAPPED)" % len(white), len(white) == 10,
                "WHITE on their host: %s" % white)
        time.sleep(1)
        ok, st = agree(hosts)
        print("# b: 1 s after the entries, before any repair: %s" % (
            "all agree" if ok else st), flush=True)
        ok, secs, st = wait_agree(hosts, want)
        R.check("b: all five stores agree on WHITE and TRAPPED within two "
                "digest rounds of %d s, through 20 %% loss (%.1f s)" % (
                    DIGEST, secs), ok, st)
    finally:
        m.net.drop("meshloss")
    if m.cluster:
        # a pull that met the loss gave up at its timeout (under a round):
        # the state is ok again once a round after the loss went through
        def all_ok():
            rc, lines = H["A"].cluster_lines()
            good = [ln for ln in lines if "state=ok" in ln and "peer=" in ln]
            return (rc == 0 and len(good) == 4), rc, lines
        F.wait_for(lambda: all_ok()[0], 3 * DIGEST, 0.5)
        ok, rc, lines = all_ok()
        R.check("b: greyctl cluster on A: four peers, state=ok (a round "
                "after the loss)", ok, "rc %d: %s" % (rc, lines[:5]))
        met = H["A"].metrics()
        R.check("b: A's /metrics has spamd_cluster_peer_up 1 for B",
                re.search(r'spamd_cluster_peer_up\{peer="%s2:%d"\} 1' % (
                    re.escape(NET), HTTP_PORT), met) is not None,
                [ln for ln in met.splitlines() if "cluster" in ln][:5])


def case_c(m, H, do_passes):
    """a host down while the others learn catches up when it starts"""
    c = H["C"]
    rc = m.stop(c)
    R.check("c: C stops on SIGTERM (exit 0)", rc == 0, "rc %s" % rc)
    want = {("WHITE", a) for a in do_passes("c")}
    for i, lb in ((1, "A"), (2, "B")):
        H[lb].smtp(sender(i, 31), TRAP_RCPT)
        want.add(("TRAPPED", sender(i, 31)))
    others = [H[lb] for lb in "ABDE"]
    ok = F.wait_for(lambda: all(has_all(h, want) for h in others), 10)
    R.check("c: A, B, D and E learn 4 entries while C is down", ok and
            len(want) == 4, "want %s" % sorted(want))
    # no digest rounds on C: only the catch-up at start can bring them
    c2 = m.start("C", logname="spamd2.log", digest=0)
    t0 = c2.spawned
    t_have = t_conn = None
    end = t0 + F.slow(15)
    while time.monotonic() < end and (t_have is None or t_conn is None):
        if t_conn is None and c2.connectable():
            t_conn = time.monotonic() - t0
        if t_have is None and has_all(c2, want):
            t_have = time.monotonic() - t0
        if c2.proc.poll() is not None:
            break
        time.sleep(0.05)
    print("# c: restarted C holds the 4 entries %s after its start; "
          "accepts connections %s after" % (
              "%.2f s" % t_have if t_have is not None else "never",
              "%.2f s" % t_conn if t_conn is not None else "never"),
          flush=True)
    R.check("c: restarted C (--cluster-digest 0) catches up on start "
            "(entries in %s s, port open in %s s)" % (
                "%.2f" % t_have if t_have is not None else "-",
                "%.2f" % t_conn if t_conn is not None else "-"),
            t_have is not None, "C lacks %s; log: %s" % (
                sorted(want - (c2.wt() or set())), c2.log_tail(3)))
    # C again with digest rounds, for the cases that follow
    m.stop(c2)
    c3 = m.start("C", logname="spamd3.log")
    try:
        c3.wait_started()
    except RuntimeError as e:
        R.notok("c: C starts again with --cluster-digest %d" % DIGEST, e)


def case_d(m, H, hosts, do_passes):
    """a partition, entries on both sides, healed: all converge"""
    m.net.nft("table bridge meshcut {\n chain part {\n"
              "  type filter hook forward priority 0; policy accept;\n"
              '  iifname { "pA", "pB" } oifname { "pC", "pD", "pE" } drop\n'
              '  iifname { "pC", "pD", "pE" } oifname { "pA", "pB" } drop\n'
              " }\n}\n")
    try:
        white = do_passes("d")
        want = {("WHITE", a) for a in white}
        for i, lb in ((1, "A"), (4, "D")):
            H[lb].smtp(sender(i, 41), TRAP_RCPT)
            want.add(("TRAPPED", sender(i, 41)))
        side1 = {e for e in want if e[1].startswith("10.99.21.")}
        side2 = want - side1
        ok = F.wait_for(lambda: has_all(H["B"], side1) and
                        all(has_all(H[lb], side2) for lb in "CE"), 10)
        cut = not (has_all(H["D"], side1) or has_all(H["A"], side2))
        R.check("d: during the partition each side learns its own entries "
                "and not the other's", ok and cut and len(want) == 4,
                "want %s; B %s; D %s" % (sorted(want), sorted(
                    H["B"].wt() or ()), sorted(H["D"].wt() or ())))
    finally:
        m.net.drop("meshcut")
    ok, secs, st = wait_agree(hosts, want)
    R.check("d: after the partition heals all five converge within two "
            "digest rounds (%.1f s)" %
            secs, ok, st)


def case_e(m, H):
    """a new empty host receives the whole state"""
    f = m.start("F", logname="spamd.log")
    try:
        f.wait_started()
    except RuntimeError as e:
        R.notok("e: new host F starts", str(e))
        return
    want = H["A"].wt() or set()
    t0 = f.spawned
    ok = F.wait_for(lambda: has_all(f, want), 15)
    R.check("e: a new empty host F receives all %d WHITE and TRAPPED "
            "entries of A (%.1f s after its start)" % (
                len(want), time.monotonic() - t0), ok and len(want) > 20,
            "F lacks %s" % sorted(want - (f.wt() or set()))[:4])
    ip = sender(1, 10)
    ok = F.wait_for(lambda: ip in f.white_set(), 5)
    R.check("e: F's spamd-white set has A's passed sender", ok,
            sorted(f.white_set())[:5])
    rc = m.stop(f)
    R.check("e: F stops on SIGTERM (exit 0)", rc == 0, "rc %s" % rc)


def case_f(m, H):
    """a peer with the wrong key gets nothing and applies nothing"""
    g = m.start("G", key=m.badkey, logname="spamd.log")
    try:
        g.wait_started()
    except RuntimeError as e:
        R.notok("f: host G with the wrong key starts", str(e))
        return
    ok = g.wait_log("event=cluster-auth", 10)
    R.check("f: G's pull with the wrong key fails: event=cluster-auth",
            ok, g.log_tail(3))
    st = g.wt()
    R.check("f: G applies nothing (no WHITE, no TRAPPED in its store)",
            ok and st == set(), "store: %s" % sorted(st or ())[:4])
    if m.cluster:
        rc, lines = g.cluster_lines()
        R.check("f: greyctl cluster on G says state=auth-fail for A",
                any("peer=%s1:%d" % (NET, HTTP_PORT) in ln and
                    "state=auth-fail" in ln for ln in lines),
                "rc %d: %s" % (rc, lines[:5]))
        met = g.metrics()
        R.check("f: G's spamd_cluster_auth_failures_total for A is > 0",
                re.search(r'spamd_cluster_auth_failures_total\{peer="%s1:'
                          r'%d"\} [1-9]' % (re.escape(NET), HTTP_PORT),
                          met) is not None,
                [ln for ln in met.splitlines() if "auth" in ln][:4])
    a = H["A"]
    before = a.sync_counters().get("dropped_hmac", 0)
    g.smtp("10.99.26.50", "rcpt@example.com", mfrom="wrongkey@mesh.example")
    ok = F.wait_for(lambda: a.sync_counters().get("dropped_hmac", 0) >
                    before, 5, 0.5)
    R.check("f: A drops G's sync packets (its hmac drop count rises) and "
            "holds nothing of G's", ok and not any(
                "wrongkey@mesh.example" in "|".join(r) for r in a.dump()),
            "dropped_hmac %s -> %s" % (before, a.sync_counters().get(
                "dropped_hmac")))
    rc = m.stop(g)
    R.check("f: G stops on SIGTERM (exit 0)", rc == 0, "rc %s" % rc)


def case_m(m, H):
    """multicast sync: all five restarted with -y eth0 -Y eth0:1"""
    rcs = [m.stop(H[lb]) for lb in LABELS]
    R.check("m: all five stop on SIGTERM (exit 0)", rcs == [0] * 5,
            "rcs %s" % rcs)
    hosts = [m.start(lb, logname="spamd-mcast.log",
                     sync=["-y", "eth0", "-Y", "eth0:1"]) for lb in LABELS]
    for h in hosts:
        try:
            up = h.wait_started()
        except RuntimeError as e:
            up = False
            R.notok("m: host %s starts with multicast sync" % h.label, e)
            return
    R.check("m: all five start with -y eth0 -Y eth0:1", up, "")
    trap = sender(1, 61)
    hosts[0].smtp(trap, TRAP_RCPT)
    ok = F.wait_for(lambda: all(("TRAPPED", trap) in (h.wt() or ())
                                for h in hosts), 10)
    R.check("m: multicast: a trap on A is TRAPPED on B, C, D and E", ok,
            "without: %s" % [h.label for h in hosts
                             if ("TRAPPED", trap) not in (h.wt() or ())])
    rcs = [m.stop(h) for h in hosts]
    R.check("m: all five exit 0 on SIGTERM", rcs == [0] * 5, "rcs %s" % rcs)


if __name__ == "__main__":
    sys.exit(main())
