#!/usr/bin/env python3
"""dnsbl.py - DNS blacklist, FCrDNS and HELO checks against a real DNS
server on loopback.

The server is a minimal authoritative responder written here (stdlib
socket, the real DNS wire format over UDP on 127.0.0.1, a port in
17000-17999): a test DNSBL zone, PTR/A/AAAA records for 127.0.0.x and ::1,
NXDOMAIN with an SOA minimum, and a zone (slow.test) it never answers.
The client is build/tests/helpers/dnsbl_probe, a thin CLI over the
spamd/common/dnsbl.h API the engine uses.

Prints one line per check: ok - name / not ok - name: why / skip - ...

    python3 tests/integration/dnsbl.py --serve [SECONDS]
runs only the DNS server (for the engine's end-to-end tests and the
benchmark): prints "port=N" once ready, serves the records below until
stdin closes or SECONDS (default 600) pass.
"""
import os
import random
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading

TOP = os.environ.get("TOP") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD") or os.path.join(TOP, "build")
PROBE = os.path.join(BUILD, "tests", "helpers", "dnsbl_probe")

T_A, T_PTR, T_SOA, T_AAAA = 1, 12, 6, 28
T_MX, T_TXT = 15, 16    # for spamd_setup_spf.py's SPF zone
failed = 0


def report(ok, name, why=""):
    """print one check result"""
    global failed
    if ok:
        print("ok - %s" % name)
    else:
        failed += 1
        print("not ok - %s: %s" % (name, why))
    sys.stdout.flush()


def nibbles(addr6):
    """the reversed-nibble labels of an IPv6 address"""
    h = socket.inet_pton(socket.AF_INET6, addr6).hex()
    return ".".join(reversed(h))


def encode_name(name):
    """a DNS name in wire format"""
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


# (name, type) -> list of (ttl, rdata); names in lower case
RECORDS = {}


def add(name, rtype, value, ttl=300):
    """add a record to the test server's data"""
    if rtype == T_A:
        rdata = socket.inet_pton(socket.AF_INET, value)
    elif rtype == T_AAAA:
        rdata = socket.inet_pton(socket.AF_INET6, value)
    elif rtype == T_TXT:
        # one string, or a list of strings (one record, several
        # character-strings of at most 255 bytes each)
        parts = [value] if isinstance(value, (str, bytes)) else value
        rdata = b""
        for part in parts:
            b = part.encode() if isinstance(part, str) else part
            rdata += bytes([len(b)]) + b
    elif rtype == T_MX:
        pref, host = value     # (preference, exchange name)
        rdata = struct.pack("!H", pref) + encode_name(host)
    else:
        rdata = encode_name(value)
    RECORDS.setdefault((name.lower(), rtype), []).append((ttl, rdata))


# a DNSBL zone: .2 and .3 listed with their codes, .4 answers 127.0.0.4
add("2.0.0.127.zen.test", T_A, "127.0.0.2")
add("3.0.0.127.zen.test", T_A, "127.0.0.3")
add("4.0.0.127.zen.test", T_A, "127.0.0.4")
add(nibbles("::1") + ".zen.test", T_A, "127.0.0.2")
add("2.0.0.127.bl.test", T_A, "127.0.0.2", ttl=60)
# forward-confirmed, a liar, no PTR for .4, and ::1
add("2.0.0.127.in-addr.arpa", T_PTR, "good.test")
add("good.test", T_A, "127.0.0.2")
add("3.0.0.127.in-addr.arpa", T_PTR, "liar.test")
add("liar.test", T_A, "127.0.0.99")
add(nibbles("::1") + ".ip6.arpa", T_PTR, "v6.test")
add("v6.test", T_AAAA, "::1")
# HELO names
add("mx.test", T_A, "192.0.2.25")
add("mx6.test", T_AAAA, "2001:db8::25")


class Server:
    """a minimal authoritative DNS server on 127.0.0.1: UDP, and with tcp
    also TCP on the same port (RFC 7766 length-prefixed queries); with
    udp_max, a UDP answer longer than that is sent truncated (TC set, no
    records) so the client asks again over TCP"""

    def __init__(self, port=None, lo=17000, hi=17999, tcp=False,
                 udp_max=None):
        """bind port, or a free one in lo..hi, and start answering"""
        self.udp_max = udp_max
        self.tsock = None
        for _ in range(1 if port else 60):
            self.port = port or random.randint(lo, hi)
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            if tcp:
                self.tsock = socket.socket(socket.AF_INET,
                                           socket.SOCK_STREAM)
            try:
                self.sock.bind(("127.0.0.1", self.port))
                if tcp:
                    self.tsock.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.sock.close()
                if tcp:
                    self.tsock.close()
        else:
            raise OSError("no free port in %d-%d" % (lo, hi))
        self.sock.settimeout(0.2)
        self.lock = threading.Lock()
        self.queries = []           # (name, type) as asked
        self.tcp_queries = []       # names asked over TCP
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        self.tthread = None
        if tcp:
            self.tsock.listen(16)
            self.tsock.settimeout(0.2)
            self.tthread = threading.Thread(target=self.run_tcp,
                                            daemon=True)
            self.tthread.start()

    def count(self, pred=lambda n, t: True):
        """queries seen so far that match pred"""
        with self.lock:
            return sum(1 for n, t in self.queries if pred(n, t))

    def run(self):
        """answer until stopped"""
        while not self.stop:
            try:
                data, peer = self.sock.recvfrom(1500)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self.answer(data)
            if reply is None:
                continue
            if self.udp_max is not None and len(reply) > self.udp_max:
                # the header with TC and no records, the question kept
                qend = 12
                while reply[qend] != 0:
                    qend += reply[qend] + 1
                qend += 5
                tid, flags = struct.unpack("!HH", reply[:4])
                reply = struct.pack("!HHHHHH", tid, flags | 0x0200, 1, 0,
                                    0, 0) + reply[12:qend]
            self.sock.sendto(reply, peer)

    def run_tcp(self):
        """TCP: accept connections until stopped, one thread each"""
        while not self.stop:
            try:
                conn, _ = self.tsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.serve_tcp, args=(conn,),
                             daemon=True).start()

    def tcp_silent(self, name):
        """whether a TCP query for name gets no answer (override)"""
        return False

    def serve_tcp(self, conn):
        """answer the queries of one TCP connection until it closes"""
        conn.settimeout(5)
        try:
            for _ in range(100):
                head = self.recv_all(conn, 2)
                if head is None:
                    return
                data = self.recv_all(conn, struct.unpack("!H", head)[0])
                if data is None:
                    return
                reply = self.answer(data)
                name = self.qname(data)
                with self.lock:
                    self.tcp_queries.append(name)
                if reply is None or self.tcp_silent(name):
                    return
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            return
        finally:
            conn.close()

    @staticmethod
    def recv_all(conn, n):
        """exactly n bytes, or None at EOF"""
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    @staticmethod
    def qname(data):
        """the question name of a query (lower case)"""
        pos, labels = 12, []
        while pos < len(data) and data[pos] != 0:
            labels.append(data[pos + 1:pos + 1 + data[pos]].decode(
                "ascii", "replace"))
            pos += data[pos] + 1
        return ".".join(labels).lower()

    def answer(self, data):
        """the reply to one query packet (None: stay silent)"""
        if len(data) < 12:
            return None
        tid, flags, qd = struct.unpack("!HHH", data[:6])
        if flags & 0x8000 or qd != 1:
            return None
        pos, labels = 12, []
        while True:
            if pos >= len(data):
                return None
            n = data[pos]
            pos += 1
            if n == 0:
                break
            if n & 0xC0 or pos + n > len(data):
                return None
            labels.append(data[pos:pos + n].decode("ascii", "replace"))
            pos += n
        if pos + 4 > len(data):
            return None
        qtype, _ = struct.unpack("!HH", data[pos:pos + 4])
        question = data[12:pos + 4]
        name = ".".join(labels).lower()
        with self.lock:
            self.queries.append((name, qtype))
        if name == "slow.test" or name.endswith(".slow.test"):
            return None             # a zone whose server never answers
        answers = RECORDS.get((name, qtype), [])
        exists = any(k[0] == name for k in RECORDS)
        rcode = 0 if exists else 3  # NXDOMAIN
        body = b""
        for ttl, rdata in answers:
            # owner: a pointer to the question name (offset 12), so the
            # answer repeats the name exactly as asked (0x20 case)
            body += struct.pack("!HHHIH", 0xC00C, qtype, 1, ttl,
                                len(rdata)) + rdata
        auth = b""
        if not answers:
            soa = (encode_name("ns.test") + encode_name("root.test") +
                   struct.pack("!IIIII", 1, 3600, 600, 86400, 120))
            auth = struct.pack("!HHHIH", 0xC00C, T_SOA, 1, 120,
                               len(soa)) + soa
        hdr = struct.pack("!HHHHHH", tid, 0x8400 | (flags & 0x0100) | rcode,
                          1, len(answers), 1 if auth else 0, 0)
        return hdr + question + body + auth

    def close(self):
        """stop answering and close the sockets"""
        self.stop = True
        self.thread.join(timeout=5)
        if self.tthread is not None:
            self.tthread.join(timeout=5)
            self.tsock.close()
        self.sock.close()


LINE_RE = re.compile(r'(\w+)=("([^"]*)"|\S*)')


def probe(srv, *args, timeout_ms=2000):
    """run dnsbl_probe; returns (status, [(kind, {key: value})], stderr)"""
    cmd = [PROBE, "--server", "127.0.0.1:%d" % srv.port,
           "--timeout", str(timeout_ms)] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    lines = []
    for line in p.stdout.splitlines():
        kind = line.split(" ", 1)[0]
        kv = {}
        for m in LINE_RE.finditer(line):
            kv[m.group(1)] = m.group(3) if m.group(3) is not None \
                else m.group(2)
        lines.append((kind, kv))
    return p.returncode, lines, p.stderr


def find(lines, kind, **want):
    """the first line of kind whose fields match want"""
    for k, kv in lines:
        if k == kind and all(kv.get(a) == b for a, b in want.items()):
            return kv
    return None


def main():
    if not os.access(PROBE, os.X_OK):
        print("skip - dnsbl: %s not built (make tests)" % PROBE)
        return 0
    srv = Server()
    tmp = tempfile.mkdtemp(prefix="dnsbl-test.")
    try:
        run_checks(srv, tmp)
    finally:
        srv.close()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    return 1 if failed else 0


def run_checks(srv, tmp):
    """every check, in order"""
    zen = "zen.test=127.0.0.2,127.0.0.3;Listed at zen: %A"

    # a listed address gets its zone's message with the address in it
    rc, out, err = probe(srv, "--zone", zen, "--check", "127.0.0.2")
    hit = find(out, "hit", ip="127.0.0.2", zone="zen.test")
    report(rc == 0 and hit is not None and hit.get("answer") == "127.0.0.2"
           and hit.get("reply") == "550 Listed at zen: 127.0.0.2",
           "listed address: zone, answer and message with %A",
           "rc=%d hit=%r err=%s" % (rc, hit, err[-300:]))

    # the old %d.%d.%d.%d form and a two-line message
    rc, out, err = probe(srv, "--zone",
                         "bl.test;Blocked %d.%d.%d.%d\\nsee bl.test",
                         "--check", "127.0.0.2")
    hit = find(out, "hit", zone="bl.test")
    report(hit is not None and
           hit.get("reply") == "550 Blocked 127.0.0.2|550 see bl.test",
           "message: %d.%d.%d.%d is the address, \\n a second line",
           "hit=%r" % (hit,))

    # an address not in the zone is not listed
    rc, out, err = probe(srv, "--zone", zen, "--check", "127.0.0.9")
    chk = find(out, "check", ip="127.0.0.9")
    report(chk is not None and chk.get("listed") == "0" and
           find(out, "hit") is None, "unlisted address",
           "check=%r" % (chk,))

    # code filtering: 127.0.0.4 answers 127.0.0.4, not one of the codes
    rc, out, err = probe(srv, "--zone", zen, "--check", "127.0.0.4",
                         "--check", "127.0.0.3")
    c4 = find(out, "check", ip="127.0.0.4")
    h3 = find(out, "hit", ip="127.0.0.3")
    report(c4 is not None and c4.get("listed") == "0" and h3 is not None
           and h3.get("answer") == "127.0.0.3",
           "codes: =127.0.0.2,127.0.0.3 honoured (127.0.0.4 ignored)",
           "c4=%r h3=%r" % (c4, h3))
    rc, out, err = probe(srv, "--zone", "zen.test", "--check", "127.0.0.4")
    h4 = find(out, "hit", ip="127.0.0.4")
    report(h4 is not None and h4.get("answer") == "127.0.0.4",
           "no codes: any 127.0.0.0/8 answer lists", "out=%r" % (out,))

    # IPv6: reversed nibbles
    rc, out, err = probe(srv, "--zone", zen, "--check", "::1")
    h6 = find(out, "hit", ip="::1")
    asked = srv.count(lambda n, t: n == nibbles("::1") + ".zen.test")
    report(h6 is not None and h6.get("reply") == "550 Listed at zen: ::1"
           and asked >= 1, "IPv6 client: nibble query name, listed",
           "hit=%r asked=%d" % (h6, asked))

    # a silent zone times out as "not listed" and does not hold up the
    # other checks running at the same time
    rc, out, err = probe(srv, "--zone", "slow.test", "--zone", zen,
                         "--check", "127.0.0.2", "--rdns", "127.0.0.2",
                         "--rdns", "127.0.0.3", "--helo", "mx.test",
                         timeout_ms=1500)
    chk = find(out, "check", ip="127.0.0.2")
    kinds = [k for k, _ in out if k in ("check", "rdns", "helo")]
    slow = find(out, "stats", zone="slow.test")
    report(chk is not None and chk.get("timeouts") == "1" and
           chk.get("listed") == "1" and
           find(out, "hit", zone="zen.test") is not None and
           slow is not None and slow.get("timeouts") == "1",
           "silent zone: timeout counts as not listed, other zone listed",
           "check=%r stats=%r" % (chk, slow))
    report(kinds == ["rdns", "rdns", "helo", "check"] or
           (len(kinds) == 4 and kinds[-1] == "check"),
           "silent zone: other lookups complete meanwhile",
           "order=%r" % (kinds,))

    # forward-confirmed reverse DNS
    rc, out, err = probe(srv, "--rdns", "127.0.0.2", "--rdns", "127.0.0.3",
                         "--rdns", "127.0.0.4", "--rdns", "::1")
    want = {"127.0.0.2": ("ok", "good.test"),
            "127.0.0.3": ("not_confirmed", "liar.test"),
            "127.0.0.4": ("no_ptr", "-"),
            "::1": ("ok", "v6.test")}
    for ip, (res, name) in sorted(want.items()):
        got = find(out, "rdns", ip=ip)
        report(got is not None and got.get("result") == res and
               got.get("name") == name,
               "FCrDNS %s: %s" % (ip, res), "got=%r" % (got,))

    # HELO: bare word, unresolvable, our own name, valid names, literal
    rc, out, err = probe(srv, "--myname", "spamd.test", "--helo", "bareword",
                         "--helo", "nx.test", "--helo", "spamd.test",
                         "--helo", "mx.test", "--helo", "mx6.test",
                         "--helo", "[192.0.2.1]")
    want = {"bareword": "bad_syntax", "nx.test": "not_found",
            "spamd.test": "ours", "mx.test": "ok", "mx6.test": "ok",
            "[192.0.2.1]": "ok"}
    for name, res in sorted(want.items()):
        got = find(out, "helo", name=name)
        report(got is not None and got.get("result") == res,
               "HELO %s: %s" % (name, res), "got=%r" % (got,))
    report(srv.count(lambda n, t: n in ("bareword", "spamd.test")) == 0,
           "HELO: bad syntax and our own name need no DNS query",
           "queries=%r" % (srv.queries[-12:],))

    # cache: three rounds, DNS asked once per name (positive and negative)
    before = srv.count()
    rc, out, err = probe(srv, "--zone", zen, "--repeat", "3", "--check",
                         "127.0.0.2", "--check", "127.0.0.9", "--rdns",
                         "127.0.0.2", "--helo", "mx.test")
    asked = srv.count() - before
    st = find(out, "stats", zone="zen.test")
    hits = [kv for k, kv in out if k == "hit"]
    # 2 DNSBL names + PTR + A for FCrDNS + A and AAAA for HELO
    report(rc == 0 and asked == 6 and st is not None and
           st.get("queries") == "2" and st.get("cache_hits") == "4" and
           len(hits) == 3, "cache: repeated checks do not query again",
           "asked=%d stats=%r hits=%d" % (asked, st, len(hits)))

    # five connections from one host at once: one query, five answers
    before = srv.count(lambda n, t: n == "3.0.0.127.zen.test")
    rc, out, err = probe(srv, "--zone", zen, *(["--check", "127.0.0.3"] * 5))
    asked = srv.count(lambda n, t: n == "3.0.0.127.zen.test") - before
    st = find(out, "stats", zone="zen.test")
    hits = [kv for k, kv in out if k == "hit"]
    report(asked == 1 and len(hits) == 5 and st is not None and
           st.get("coalesced") == "4",
           "same address at once: one DNS query shared by all checks",
           "asked=%d hits=%d stats=%r" % (asked, len(hits), st))

    # configuration errors: clear, with where, never a crash
    bad = [("x.test;%s", "bad '%' sequence"),
           ("x.test;%n", "bad '%' sequence"),
           ("x.test;oops %", "lone '%' at end"),
           ("x.test;%d.%d", "bad '%' sequence"),
           ("=127.0.0.2", "empty zone name"),
           ("x.test=127.0.0.300", "bad code address"),
           ("x.test;" + "m" * 9000, "line too long")]
    for spec, msg in bad:
        rc, out, err = probe(srv, "--zone", spec, "--check", "127.0.0.2")
        report(rc == 2 and "--dnsbl: " + msg in err,
               "config error: %s" % spec[:24],
               "rc=%d err=%s" % (rc, err[-200:]))
    path = os.path.join(tmp, "zones")
    with open(path, "w") as f:
        f.write("# test zones\nzen.test;ok %A\n\nbl.test;50% off\n")
    rc, out, err = probe(srv, "--zone-file", path, "--check", "127.0.0.2")
    report(rc == 2 and "%s:4: bad '%%' sequence" % path in err,
           "config error in a file names file:line",
           "rc=%d err=%s" % (rc, err[-200:]))
    with open(path, "w") as f:
        f.write("# test zones\nzen.test=127.0.0.2;From file: %A\n")
    rc, out, err = probe(srv, "--zone-file", path, "--check", "127.0.0.2")
    hit = find(out, "hit", zone="zen.test")
    report(rc == 0 and hit is not None and
           hit.get("reply") == "550 From file: 127.0.0.2",
           "zone file: loaded and used", "rc=%d hit=%r" % (rc, hit))


def serve(seconds):
    """run the server alone until stdin closes or time is up"""
    import select
    srv = Server()
    print("port=%d" % srv.port)
    sys.stdout.flush()
    try:
        r, _, _ = select.select([sys.stdin], [], [], seconds)
        if r:
            sys.stdin.read()
    finally:
        srv.close()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        sys.exit(serve(float(sys.argv[2]) if len(sys.argv) > 2 else 600))
    sys.exit(main())
