#!/usr/bin/env python3
"""spamd_realdns.py - the DNS checks against a real DNS server (issue 18).

The other DNS tests (spamd_dnsbl.py, spamd_helo_bound.py,
spamd_setup_spf.py) use the responder written for the tests
(tests/integration/dnsbl.py). Here the server is dnsmasq
(/usr/sbin/dnsmasq, Debian package dnsmasq-base, installed by
tests/deps.sh), with its own quirks: authoritative answers for an
--auth-zone (NXDOMAIN and NODATA carry the zone's SOA, TTL 600), name
compression, echoed query case, UDP answers over 512 bytes truncated (TC,
no records) and given whole over TCP by a forked child. It runs on
127.0.0.1 (and ::1 when there is IPv6 loopback) on a free UDP+TCP port in
18500-18999, never forwards anywhere (--no-resolv, no --server), logs every
query it receives to a file (--log-queries=extra), and is stopped by its
pid at the end. spamd -d -S 0 -s 0 runs on ports in 18000-18499 with
--dns-server pointing at it; missing dnsmasq is a failure, not a skip.

Checks (the query counts come from dnsmasq's log, not spamd's counters):
the premises (dnsmasq answers NXDOMAIN with SOA, compresses names,
truncates a big TXT over UDP and gives it over TCP); --dnsbl: a listed
client (127.0.0.2, and ::1 through its nibble name) gets the zone's
message after DATA, an unlisted one (NXDOMAIN) gets 451, a cached listing
is not asked again; --helo-check tarpit: a name that does not resolve is
tarpitted, the negative answer is cached, a name with A or only AAAA
passes; --helo-check log: only the first 4 HELO names of a connection
reach the server; --rdns tarpit: no PTR and a PTR whose name does not
resolve back are tarpitted, a confirmed PTR (IPv4 and ::1) passes;
--rdns log: logged, still greylisted; 0x20: spamd's resolver (libevent
evdns, randomize-case on by default) sends mixed-case names and accepts
dnsmasq's answers; spamd-setup --spf-walk: the exact networks of a record
with include:, ip4:, ip6: and an included TXT record over 1232 bytes that
dnsmasq truncates over UDP and glibc's resolver asks again over TCP.

Prints one line per check: ok - name / not ok - name: why / skip - ...
"""
import ipaddress
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "helpers"))
import fault_lib as fl  # noqa: E402

DNSMASQ = "/usr/sbin/dnsmasq"
SETUP = os.path.join(fl.BUILD, "spamd-setup")
HOSTNAME = "mx.realdns.example"
SPAMD_PORTS = (18000, 18499)
DNS_PORTS = (18500, 18999)
HELO_MSG = "450 Helo command rejected: Host not found"
R = fl.Results()
ok, notok, skip, check = R.ok, R.notok, R.skip, R.check
T_A, T_SOA, T_PTR, T_TXT, T_AAAA = 1, 6, 12, 16, 28


def nibbles(addr6):
    """the reversed-nibble labels of an IPv6 address"""
    h = socket.inet_pton(socket.AF_INET6, addr6).hex()
    return ".".join(reversed(h))


def have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


V6 = have_ipv6()
NIB1 = nibbles("::1")

# SPF: a record with include:, ip4:, ip6: and an include of a TXT record
# over 1232 bytes (truncated over UDP even with glibc's EDNS0 buffer)
SPF_BIG = ["100.65.%d.0/24" % (2 * i) for i in range(80)]
SPF_TXT = {
    "spf.test": "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8:1::/48 "
                "include:_spf.spf.test include:big.spf.test -all",
    "_spf.spf.test": "v=spf1 ip4:198.51.100.7 ip6:2001:db8:2::1 ~all",
    "big.spf.test": "v=spf1" + "".join(" ip4:" + n for n in SPF_BIG) +
                    " -all",
}
SPF_NETS = ["192.0.2.0/24", "2001:db8:1::/48", "198.51.100.7/32",
            "2001:db8:2::1/128"] + SPF_BIG


def records():
    """dnsmasq's options for the test zone "test" (served
    authoritatively) and its reverse zones"""
    subnets = ["127.0.0.0/24", "192.0.2.0/24", "2001:db8::/32"]
    if V6:
        subnets.append("::1/128")
    # why exclude: dnsmasq's auth mode ignores --ptr-record; the liar's
    # PTR comes from a --host-record whose A record the zone leaves out
    opts = ["--auth-zone=test,%s,exclude:127.0.0.3/32" % ",".join(subnets),
            "--auth-soa=1,hostmaster.test,1200,120,604800,300",
            # DNSBL zone bl.test: 127.0.0.2 and ::1 listed
            "--host-record=2.0.0.127.bl.test,127.0.0.2",
            "--host-record=%s.bl.test,127.0.0.2" % NIB1,
            # FCrDNS: .7 confirmed, .3 a PTR that does not resolve back,
            # .6 no PTR; ::1 confirmed (a host-record gives A and PTR)
            "--host-record=ok7.test,127.0.0.7",
            "--host-record=liar.test,127.0.0.3",
            "--host-record=v6.test,::1",
            # HELO names: A, only AAAA
            "--host-record=mx.test,192.0.2.25",
            "--host-record=mx6.test,2001:db8::25"]
    for name, text in SPF_TXT.items():
        opts.append("--txt-record=%s,%s" % (name, text))
    return opts


# --- a DNS client of our own, for the premises and the log fence --------

def _name_at(d, o):
    """(name, offset after it) of the name at o, following pointers"""
    labels, end, hops = [], None, 0
    while True:
        ln = d[o]
        if ln & 0xc0 == 0xc0:
            if end is None:
                end = o + 2
            o = ((ln & 0x3f) << 8) | d[o + 1]
            hops += 1
            if hops > 64:
                raise ValueError("pointer loop")
            continue
        if ln == 0:
            return ".".join(labels), (o + 1 if end is None else end)
        labels.append(d[o + 1:o + 1 + ln].decode("latin-1"))
        o += 1 + ln


def query(port, name, qtype, tcp=False, timeout=5):
    """one query to 127.0.0.1:port; a dict of the answer's rcode, aa, tc,
    records ((section, name, type, ttl)) and whether it uses pointers"""
    tid = os.getpid() & 0xffff
    qn = b"".join(bytes([len(x)]) + x.encode() for x in name.split("."))
    msg = struct.pack("!HHHHHH", tid, 0x0100, 1, 0, 0, 0) + qn + \
        b"\0" + struct.pack("!HH", qtype, 1)
    if tcp:
        s = socket.create_connection(("127.0.0.1", port), fl.slow(timeout))
        try:
            s.sendall(struct.pack("!H", len(msg)) + msg)
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + struct.unpack(
                    "!H", buf[:2])[0]:
                d = s.recv(65535)
                if not d:
                    raise ConnectionError("closed after %d bytes" % len(buf))
                buf += d
            d = buf[2:]
        finally:
            s.close()
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(fl.slow(timeout))
        try:
            s.sendto(msg, ("127.0.0.1", port))
            d = s.recv(65535)
        finally:
            s.close()
    _, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", d[:12])
    o, pointers = 12, False
    for _ in range(qd):
        _, o = _name_at(d, o)
        o += 4
    recs = []
    for sec, cnt in (("an", an), ("ns", ns), ("ar", ar)):
        for _ in range(cnt):
            if d[o] & 0xc0 == 0xc0:
                pointers = True
            n, o = _name_at(d, o)
            t, _, ttl, rl = struct.unpack("!HHIH", d[o:o + 10])
            o += 10
            if t in (T_PTR, T_SOA) and any(
                    d[i] & 0xc0 == 0xc0 for i in range(o, o + rl)):
                pointers = True     # a pointer inside the rdata's names
            recs.append((sec, n, t, ttl))
            o += rl
    return {"rcode": flags & 15, "aa": bool(flags & 0x400),
            "tc": bool(flags & 0x200), "recs": recs, "pointers": pointers,
            "size": len(d)}


# --- dnsmasq -------------------------------------------------------------

class Dnsmasq:
    """dnsmasq on loopback, authoritative for "test", logging queries"""

    LINE = re.compile(r"dnsmasq\[(\d+)\]: \d+ \S+ (?:query|auth)"
                      r"\[(\w+)\] (\S+) from ")

    def __init__(self, tmp):
        self.tmp = tmp
        self.addrs = ["127.0.0.1"] + (["::1"] if V6 else [])
        self.port = self.pick()
        self.logpath = os.path.join(tmp, "dnsmasq.log")
        self.outpath = os.path.join(tmp, "dnsmasq.out")
        self.args = [DNSMASQ, "-k", "--conf-file=/dev/null", "--no-resolv",
                     "--no-hosts", "--no-poll", "--bind-interfaces",
                     "--listen-address=" + ",".join(self.addrs),
                     "--port=%d" % self.port, "--pid-file=",
                     "--log-queries=extra",
                     "--log-facility=" + self.logpath,
                     "--auth-server=ns.test," + ",".join(self.addrs)]
        if os.geteuid() == 0:
            self.args.append("--user=root")
        self.args += records()
        self.mine = {}      # (name, type, tcp) -> queries this script sent
        self.out = open(self.outpath, "w")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.out)
        self.pid = self.proc.pid

    def ask(self, name, qtype, tcp=False, timeout=5):
        """query() this server, remembered so count() leaves it out"""
        key = (name.lower(), {T_A: "A", T_PTR: "PTR", T_TXT: "TXT",
                              T_AAAA: "AAAA"}.get(qtype), tcp)
        self.mine[key] = self.mine.get(key, 0) + 1
        return query(self.port, name, qtype, tcp, timeout)

    def pick(self):
        """a port free for UDP and TCP on every address"""
        for _ in range(50):
            p = fl.pick_port(self.addrs, DNS_PORTS[0], DNS_PORTS[1],
                             socket.SOCK_DGRAM)
            if all(fl._bindable(a, p) for a in self.addrs):
                return p
        raise RuntimeError("no port free for UDP and TCP in %d-%d"
                           % DNS_PORTS)

    def wait_ready(self, secs=10):
        """True once it answers for its zone (bounded); the name asked,
        ready.test, is asked by nothing else"""
        def up():
            if self.proc.poll() is not None:
                return True
            try:
                return query(self.port, "ready.test", T_A, timeout=0.5)
            except (OSError, ValueError):
                return False
        fl.wait_for(up, secs, 0.1)
        if self.proc.poll() is not None:
            return False
        try:
            return query(self.port, "ready.test", T_A)["rcode"] == 3
        except (OSError, ValueError):
            return False

    def text(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def output(self):
        try:
            with open(self.outpath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def queries(self):
        """every query received: (name as sent, type, over TCP); TCP
        queries are answered by a forked child, which logs its own pid"""
        return [(m.group(3), m.group(2), int(m.group(1)) != self.pid)
                for m in self.LINE.finditer(self.text())]

    def count(self, name, qtype=None, tcp=None):
        """queries for name (any case), of qtype and transport if given,
        that this script did not send itself (ask, fence)"""
        n = name.lower()

        def match(q, t, over_tcp):
            return q == n and (qtype is None or t == qtype) and \
                (tcp is None or over_tcp == tcp)
        seen = sum(1 for q, t, over_tcp in self.queries()
                   if match(q.lower(), t, over_tcp))
        return seen - sum(k for (q, t, over_tcp), k in self.mine.items()
                          if match(q, t, over_tcp))

    def fence(self, tag):
        """ask a name of our own and wait (bounded) until the log shows
        it: every query sent to this socket before has been read"""
        name = "fence-%s.test" % tag
        try:
            self.ask(name, T_A)
        except (OSError, ValueError):
            pass
        return fl.wait_for(lambda: any(q.lower() == name for q, _, _ in
                                       self.queries()), 10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(fl.slow(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(fl.slow(5))
        self.out.close()


# --- spamd and an SMTP client --------------------------------------------

DAEMONS = []


class Spamd(fl.Spamd):
    """one daemon asking dnsmasq, with its own temporary directory"""

    def __init__(self, name, dns, extra=(), listen=("127.0.0.1",)):
        super().__init__(name, ["--dns-server", "127.0.0.1:%d" % dns.port] +
                         list(extra), workers=1, hostname=HOSTNAME,
                         nobody=False, ports=SPAMD_PORTS, listen=listen,
                         logname="spamd.err")
        DAEMONS.append(self)
        self.wait_started(ready="tag=spamd-greytrap")


class Raw:
    """a raw SMTP client bound to its own source address (v4 or v6)"""

    def __init__(self, d, src, timeout=15.0):
        fam = socket.AF_INET6 if ":" in src else socket.AF_INET
        self.s = socket.socket(fam, socket.SOCK_STREAM)
        self.s.settimeout(fl.slow(timeout))
        self.s.bind((src, 0))
        self.s.connect(("::1" if fam == socket.AF_INET6 else "127.0.0.1",
                        d.port))
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
        """one whole (multi-line) reply, its last line"""
        while True:
            ln = self.line()
            if ln[3:4] != "-":
                return ln

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        return self.reply()

    def rest(self):
        """every line until the server closes"""
        out = []
        try:
            while True:
                out.append(self.line())
        except (EOFError, OSError):
            pass
        return out

    def close(self):
        self.s.close()


def dialogue(d, src, helo="mx.test", helos=()):
    """a whole dialogue from src: (DATA reply, lines after the message)"""
    c = Raw(d, src)
    try:
        c.reply()
        for h in list(helos) + [helo]:
            c.cmd("HELO " + h)
        c.cmd("MAIL FROM:<x@example.org>")
        c.cmd("RCPT TO:<user@example.com>")
        r = c.cmd("DATA")
        if not r.startswith("354"):
            return r, []
        c.s.sendall(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        return r, c.rest()
    finally:
        c.close()


def logged(d, pattern, secs=10):
    """wait (bounded) for a log line matching the regex pattern"""
    rx = re.compile(pattern)
    return bool(fl.wait_for(lambda: rx.search(d.logtext()), secs))


# --- the checks ------------------------------------------------------------

def test_premises(dns):
    """what makes dnsmasq a different server from dnsbl.py's"""
    a = dns.ask("9.0.0.127.bl.test", T_A)
    check("dnsmasq: an unlisted name is NXDOMAIN, authoritative, with the "
          "zone's SOA", a["rcode"] == 3 and a["aa"] and
          any(r[0] == "ns" and r[2] == T_SOA for r in a["recs"]), repr(a))
    a = dns.ask("2.0.0.127.bl.test", T_A)
    check("dnsmasq: a listing is one A record, TTL 600, name compressed",
          a["rcode"] == 0 and [r[2:] for r in a["recs"] if r[0] == "an"]
          == [(T_A, 600)] and a["pointers"], repr(a))
    a = dns.ask("3.0.0.127.in-addr.arpa", T_PTR)
    b = dns.ask("liar.test", T_A)
    check("dnsmasq: 127.0.0.3 has a PTR to liar.test, which has no A "
          "(NODATA with SOA)", a["rcode"] == 0 and
          any(r[0] == "an" for r in a["recs"]) and b["rcode"] == 0 and
          not any(r[0] == "an" for r in b["recs"]) and
          any(r[2] == T_SOA for r in b["recs"]), "%r %r" % (a, b))
    u = dns.ask("big.spf.test", T_TXT)
    t = dns.ask("big.spf.test", T_TXT, tcp=True)
    check("dnsmasq: a %d-byte TXT answer is truncated over UDP (TC, no "
          "records) and whole over TCP" % t["size"],
          u["tc"] and not u["recs"] and not t["tc"] and
          [r[2] for r in t["recs"] if r[0] == "an"] == [T_TXT],
          "udp %r tcp %r" % (u, t))
    a = dns.ask("example.com", T_A)
    check("dnsmasq: a name outside its zones is refused, not forwarded",
          a["rcode"] == 5 and not a["recs"], repr(a))


def test_dnsbl(dns):
    """--dnsbl against dnsmasq: listed, unlisted, cached, IPv6"""
    d = Spamd("dnsbl", dns, listen=("127.0.0.1", "::1") if V6 else
              ("127.0.0.1",), extra=["--dnsbl", "bl.test;Blocked by bl: %A",
                                     "--dnsbl-timeout", "3000"])
    try:
        r, rest = dialogue(d, "127.0.0.2")
        check("dnsbl: listed client 127.0.0.2: 354 then the zone message",
              r.startswith("354") and rest == ["450 Blocked by bl: 127.0.0.2"],
              "DATA %r then %r" % (r, rest))
        check("dnsbl: log event=dnsbl ip=127.0.0.2 zone=bl.test "
              "answer=127.0.0.2",
              "event=dnsbl ip=127.0.0.2 zone=bl.test answer=127.0.0.2"
              in d.logtext(), d.log_tail())
        n = dns.count("2.0.0.127.bl.test", "A")
        check("dnsbl: dnsmasq was asked A 2.0.0.127.bl.test once", n == 1,
              "asked %d times" % n)
        r, rest = dialogue(d, "127.0.0.5")
        check("dnsbl: unlisted client (NXDOMAIN with SOA): 451",
              r.startswith("451"), "DATA %r then %r" % (r, rest))
        n = dns.count("5.0.0.127.bl.test", "A")
        check("dnsbl: dnsmasq was asked A 5.0.0.127.bl.test once", n == 1,
              "asked %d times" % n)
        r, rest = dialogue(d, "127.0.0.2")
        dns.fence("dnsbl")
        n = dns.count("2.0.0.127.bl.test")
        check("dnsbl: a cached listing (TTL 600) still tarpits and is not "
              "asked again", rest == ["450 Blocked by bl: 127.0.0.2"] and
              n == 1, "reply %r, asked %d times" % (rest, n))
        if V6:
            r, rest = dialogue(d, "::1")
            check("dnsbl: IPv6 client ::1 listed through its nibble name",
                  rest == ["450 Blocked by bl: ::1"],
                  "DATA %r then %r" % (r, rest))
            n = dns.count(NIB1 + ".bl.test", "A")
            check("dnsbl: dnsmasq was asked the reversed nibbles of ::1",
                  n == 1, "asked %d times" % n)
        else:
            skip("dnsbl: IPv6 client ::1", "no IPv6 loopback")
    finally:
        d.stop()


def test_helo(dns):
    """--helo-check tarpit against dnsmasq"""
    d = Spamd("helo", dns, extra=["--helo-check", "tarpit"])
    try:
        r, rest = dialogue(d, "127.0.0.5", helo="nothere.test")
        check("helo tarpit: a name that does not resolve (NXDOMAIN) is "
              "tarpitted", rest == [HELO_MSG], "DATA %r then %r" % (r, rest))
        check("helo tarpit: logged result=not_found action=tarpit",
              logged(d, r"event=helo-check .*helo=nothere\.test "
                     r"result=not_found action=tarpit"), d.log_tail())
        asked = dns.count("nothere.test")
        check("helo tarpit: dnsmasq was asked about nothere.test",
              asked >= 1, "asked %d times" % asked)
        r, rest = dialogue(d, "127.0.0.5", helo="nothere.test")
        dns.fence("helo")
        again = dns.count("nothere.test")
        check("helo tarpit: the NXDOMAIN is cached: tarpitted again, not "
              "asked again", rest == [HELO_MSG] and again == asked,
              "reply %r, asked %d then %d" % (rest, asked, again))
        before = dns.count("mx.test", "A")
        r, rest = dialogue(d, "127.0.0.5", helo="mx.test")
        n = dns.count("mx.test", "A") - before
        check("helo tarpit: a name with an A record passes (451)",
              r.startswith("451") and n == 1,
              "DATA %r then %r, A mx.test asked %d times" % (r, rest, n))
        r, rest = dialogue(d, "127.0.0.5", helo="mx6.test")
        check("helo tarpit: a name with only AAAA passes (451)",
              r.startswith("451") and dns.count("mx6.test", "AAAA") >= 1,
              "DATA %r then %r, AAAA asked %d" % (
                  r, rest, dns.count("mx6.test", "AAAA")))
    finally:
        d.stop()
    d = Spamd("helolog", dns, extra=["--helo-check", "log"])
    try:
        names = ["h%d.nx.test" % i for i in range(6)]
        r, rest = dialogue(d, "127.0.0.5", helo=names[-1],
                           helos=names[:-1])
        dns.fence("helolog")
        asked = [n for n in names if dns.count(n) > 0]
        check("helo log: of 6 HELO names in a connection dnsmasq is asked "
              "exactly the first 4; still greylisted",
              r.startswith("451") and asked == names[:4],
              "DATA %r, asked %r" % (r, asked))
    finally:
        d.stop()


def test_rdns(dns):
    """--rdns tarpit and log against dnsmasq"""
    d = Spamd("rdns", dns, listen=("127.0.0.1", "::1") if V6 else
              ("127.0.0.1",), extra=["--rdns", "tarpit"])
    try:
        for ip, why, result, name in (
                ("127.0.0.6", "no PTR (NXDOMAIN)", "no_ptr", "-"),
                ("127.0.0.3", "a PTR whose name has no A (NODATA)",
                 "not_confirmed", "liar.test")):
            r, rest = dialogue(d, ip)
            check("rdns tarpit: %s is tarpitted" % why,
                  rest == ["450 Client host [%s] rejected: no valid reverse "
                           "DNS" % ip], "DATA %r then %r" % (r, rest))
            check("rdns tarpit: %s logged result=%s name=%s" % (
                ip, result, name), logged(
                    d, r"event=rdns id=\d+ ip=%s result=%s name=%s "
                    r"action=tarpit" % (re.escape(ip), result,
                                        re.escape(name))), d.log_tail())
        n = dns.count("liar.test", "A")
        check("rdns tarpit: the liar's name was asked back (A liar.test)",
              n >= 1 and dns.count("3.0.0.127.in-addr.arpa", "PTR") >= 1,
              "A asked %d times" % n)
        r, rest = dialogue(d, "127.0.0.7")
        check("rdns tarpit: a confirmed PTR (ok7.test) passes (451)",
              r.startswith("451") and logged(
                  d, r"event=rdns id=\d+ ip=127\.0\.0\.7 result=ok "
                  r"name=ok7\.test action=none"),
              "DATA %r then %r: %s" % (r, rest, d.log_tail()))
        if V6:
            r, rest = dialogue(d, "::1")
            check("rdns tarpit: ::1 confirmed through ip6.arpa and AAAA "
                  "passes (451)", r.startswith("451") and logged(
                      d, r"event=rdns id=\d+ ip=::1 result=ok name=v6\.test "
                      r"action=none") and
                  dns.count(NIB1 + ".ip6.arpa", "PTR") >= 1 and
                  dns.count("v6.test", "AAAA") >= 1,
                  "DATA %r then %r: %s" % (r, rest, d.log_tail()))
        else:
            skip("rdns tarpit: ::1", "no IPv6 loopback")
    finally:
        d.stop()
    d = Spamd("rdnslog", dns, extra=["--rdns", "log"])
    try:
        # log mode holds nothing: wait for the result before going on
        c = Raw(d, "127.0.0.3")
        try:
            c.reply()
            c.cmd("HELO mx.test")
            got = logged(d, r"event=rdns id=\d+ ip=127\.0\.0\.3 "
                         r"result=not_confirmed name=liar\.test action=none")
            c.cmd("MAIL FROM:<x@example.org>")
            c.cmd("RCPT TO:<user@example.com>")
            r = c.cmd("DATA")
        finally:
            c.close()
        check("rdns log: not confirmed is logged (action=none), still "
              "greylisted (451)", got and r.startswith("451"),
              "DATA %r: %s" % (r, d.log_tail()))
    finally:
        d.stop()


def test_case(dns):
    """0x20: evdns's randomize-case (libevent's default; spamd does not
    set it) against a server that echoes the query's case"""
    names = [q for q, t, tcp in dns.queries()
             if q.lower().endswith(("bl.test", "in-addr.arpa", "ip6.arpa"))
             or q.lower() in ("nothere.test", "liar.test", "ok7.test")]
    for (q, t, tcp), k in dns.mine.items():     # ours are in lower case
        for _ in range(k):
            if q in names:
                names.remove(q)
    mixed = [q for q in names if q != q.lower()]
    check("0x20: spamd's queries reach dnsmasq in randomised case (%d of "
          "%d) and their answers were accepted" % (len(mixed), len(names)),
          len(names) >= 5 and len(mixed) * 2 >= len(names),
          "names %r" % names[:8])


def test_spf(dns):
    """spamd-setup --spf-walk against dnsmasq's TXT records"""
    udp0 = dns.count("big.spf.test", "TXT", tcp=False)
    tcp0 = dns.count("big.spf.test", "TXT", tcp=True)
    p = subprocess.run([SETUP, "--spf-walk", "--dns-server",
                        "127.0.0.1:%d" % dns.port, "spf.test"],
                       capture_output=True, timeout=fl.slow(60),
                       stdin=subprocess.DEVNULL)
    out = p.stdout.decode("latin-1").splitlines()
    err = p.stderr.decode("latin-1")
    v4 = [ipaddress.ip_network(n) for n in SPF_NETS if ":" not in n]
    v6 = [ipaddress.ip_network(n) for n in SPF_NETS if ":" in n]
    want = [str(n) for n in ipaddress.collapse_addresses(v4)] + \
        [str(n) for n in ipaddress.collapse_addresses(v6)]
    check("spf walk: exit 0, nothing on stderr, exactly the %d networks "
          "(ip4, ip6, include, the big record)" % len(want),
          p.returncode == 0 and err == "" and out == want,
          "rc %d stderr %r\n got  %r\n want %r" % (p.returncode, err[-300:],
                                                   out, want))
    udp = dns.count("big.spf.test", "TXT", tcp=False) - udp0
    tcp = dns.count("big.spf.test", "TXT", tcp=True) - tcp0
    check("spf walk: the big record was asked once over UDP (truncated) "
          "and once again over TCP", udp == 1 and tcp == 1,
          "UDP %d, TCP %d" % (udp, tcp))
    p = subprocess.run([SETUP, "--spf-walk", "-6", "--dns-server",
                        "127.0.0.1:%d" % dns.port, "spf.test"],
                       capture_output=True, timeout=fl.slow(60),
                       stdin=subprocess.DEVNULL)
    out = p.stdout.decode("latin-1").splitlines()
    check("spf walk -6: only the ip6: networks",
          p.returncode == 0 and out == [str(n) for n in v6],
          "rc %d out %r err %r" % (p.returncode, out, p.stderr[-300:]))


def main():
    for p in (fl.SPAMD, SETUP):
        if not os.access(p, os.X_OK):
            skip("spamd_realdns", "%s not built" % p)
            return 0
    if not os.access(DNSMASQ, os.X_OK):
        notok("dnsmasq is installed", "%s missing (tests/deps.sh installs "
              "dnsmasq-base)" % DNSMASQ)
        return R.status()

    def on_term(sig, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    tmp = tempfile.mkdtemp(prefix="spamd-realdns.")
    dns = None
    try:
        dns = Dnsmasq(tmp)
        if not check("dnsmasq starts and answers on 127.0.0.1:%d" % dns.port,
                     dns.wait_ready(), "exit %r: %s" % (
                         dns.proc.poll(), dns.output()[-400:])):
            return R.status()
        for t in (test_premises, test_dnsbl, test_helo, test_rdns,
                  test_case, test_spf):
            try:
                t(dns)
            except (RuntimeError, OSError, EOFError, ValueError,
                    subprocess.TimeoutExpired) as e:
                notok(t.__name__, "%s: %s" % (type(e).__name__, e))
        # printed only in the ASan build, where it can fail
        if hasattr(fl, "sanitizer_check"):
            fl.sanitizer_check(R, "no sanitizer report in the daemons' "
                               "logs", [d.logtext() for d in DAEMONS])
        n = len(dns.queries())
        check("dnsmasq is still running after %d queries" % n,
              dns.proc.poll() is None, dns.output()[-300:])
    finally:
        for d in DAEMONS:
            try:
                d.cleanup()
            except Exception:
                pass
        if dns is not None:
            dns.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return R.status()


if __name__ == "__main__":
    sys.exit(main())
