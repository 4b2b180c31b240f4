#!/usr/bin/env python3
"""spamd_setup_spf.py - spamd-setup --spf-walk against a real DNS server.

The DNS server is dnsbl.py's wire-format responder (its TXT and MX
records), bound here to a UDP port in 47400-47499 on 127.0.0.1, with a TCP
listener on the same port: an answer over 512 bytes is sent truncated (TC)
over UDP, and the TCP listener gives it whole, except for names under
notcp.test, where it closes the connection. The zone under .test has an
include chain, redirect (and a redirect an "all" overrides), a, a:dom/len,
a:dom/len//len6, mx, mx:dom/len, ip4/ip6 with and without a length,
qualified terms that must be left out, ptr/exists/exp= (ignored), a macro
term (skipped with a warning), a diamond include, a loop, a chain 11 deep
and one exactly 10 deep, two v=spf1 records, NXDOMAIN, no SPF record, a
bad term, a record over 4 KiB, and domains that hit the 500-query and
10,000-network bounds.

Checks: the printed list equals the expected networks exactly (computed
with Python's ipaddress), -4 and -6, domains from stdin with comments, an
error domain gives exit 1 with a message naming it while the others are
still printed, the loop and depth bounds end with a clear error, and the
output loads back as a white list file of spamd-setup -n (the control
line is the black list minus these networks); as root, the manual's nft
example loads the output into etc/spamd.nft's nospamd sets inside a
network namespace this script creates and deletes.

Prints ok / not ok / skip lines; exits 1 if a check failed.
"""
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile

TOP = os.environ.get("TOP") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD") or os.path.join(TOP, "build")
SETUP = os.path.join(BUILD, "spamd-setup")

sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
sys.path.insert(0, os.path.join(TOP, "tests", "helpers"))
import dnsbl as dnsrv  # noqa: E402  (the responder and its record store)
# (its temporary directories reachable by spamd-setup's unprivileged
# list fetcher when root)
import fault_lib  # noqa: E402,F401

FAILED = 0


def check(name, cond, why=""):
    """print one check result"""
    global FAILED
    if cond:
        print("ok - " + name, flush=True)
    else:
        FAILED += 1
        print("not ok - %s: %s" % (name, why), flush=True)


# --- the DNS server -----------------------------------------------------

class SpfServer(dnsrv.Server):
    """dnsbl.Server on a port of 47400-47499, UDP answers cut at 512 bytes
    (TC), a TCP listener on the same port; a name under notcp.test gets
    nothing over TCP (a server that only speaks UDP)"""

    def __init__(self):
        super().__init__(lo=47400, hi=47499, tcp=True, udp_max=512)

    def tcp_silent(self, name):
        """notcp.test names are not answered over TCP"""
        return name.endswith("notcp.test")


# --- the zone -----------------------------------------------------------

A, AAAA, MX, TXT = dnsrv.T_A, dnsrv.T_AAAA, dnsrv.T_MX, dnsrv.T_TXT
add = dnsrv.add


def chunks(text):
    """a long TXT value as character-strings of at most 255 bytes"""
    return [text[i:i + 255] for i in range(0, len(text), 255)]


add("big.test", TXT, "google-site-verification=not-spf")
add("big.test", TXT, ["v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.7 ",
                      "ip6:2001:db8:1::/48 ip6:2001:db8:2::1 "
                      "include:_spf.big.test a mx include:d.test "
                      "include:allredir.test include:redir.test "
                      "-ip4:10.0.0.0/8 ~ip4:10.1.0.0/16 ?a:neutral.test "
                      "ptr exists:%{i}.ex.test exp=explain.big.test -all"])
add("big.test", A, "203.0.113.1")
add("big.test", AAAA, "2001:db8:a::1")
add("big.test", MX, (10, "mx1.big.test"))
add("big.test", MX, (20, "mx2.big.test"))
add("mx1.big.test", A, "203.0.113.10")
add("mx2.big.test", A, "203.0.113.20")
add("mx2.big.test", AAAA, "2001:db8:a::20")
add("neutral.test", A, "100.64.99.1")
add("_spf.big.test", TXT, "v=spf1 ip4:203.0.113.64/26 a:hosts.big.test/28 "
    "a:six.big.test/28//64 include:shared.test ~all")
add("hosts.big.test", A, "198.18.5.5")
add("six.big.test", A, "198.18.6.1")
add("six.big.test", AAAA, "2001:db8:5::9")
add("d.test", TXT, "v=spf1 include:shared.test ip4:100.64.51.1")
add("shared.test", TXT, "v=spf1 ip4:100.64.50.0/24")
add("redir.test", TXT, "v=spf1 redirect=_r.redir.test")
add("_r.redir.test", TXT, "v=spf1 ip4:100.64.1.0/24 mx:mail.redir.test/30 "
    "-all")
add("mail.redir.test", MX, (5, "m.redir.test"))
add("m.redir.test", A, "100.64.2.5")
add("allredir.test", TXT, "v=spf1 ip4:100.64.9.1 ?all "
    "redirect=never.test")
BIG = ["192.0.2.0/24", "198.51.100.7/32", "2001:db8:1::/48",
       "2001:db8:2::1/128", "203.0.113.64/26", "198.18.5.0/28",
       "198.18.6.0/28", "2001:db8:5::/64", "100.64.50.0/24",
       "100.64.51.1/32", "100.64.9.1/32", "100.64.1.0/24",
       "100.64.2.4/30", "203.0.113.1/32", "2001:db8:a::1/128",
       "203.0.113.10/32", "203.0.113.20/32", "2001:db8:a::20/128"]

# a macro term: skipped with a warning, the rest kept
add("macro.test", TXT, "v=spf1 a:%{d}.hosts.macro.test ip4:100.64.70.0/24")
MACRO = ["100.64.70.0/24"]
# a loop, a chain 11 deep and one exactly 10 deep
add("loop.test", TXT, "v=spf1 ip4:100.64.60.1 include:loop2.test")
add("loop2.test", TXT, "v=spf1 redirect=loop.test")
for i in range(12):
    add("d%d.deep.test" % i, TXT, "v=spf1 include:d%d.deep.test" % (i + 1))
add("d12.deep.test", TXT, "v=spf1 ip4:100.64.80.1")
for i in range(10):
    add("t%d.ten.test" % i, TXT, "v=spf1 include:t%d.ten.test" % (i + 1))
add("t10.ten.test", TXT, "v=spf1 ip4:100.64.81.1")
# errors
add("two.test", TXT, "v=spf1 ip4:100.64.90.1")
add("two.test", TXT, "v=spf1 ip4:100.64.90.2")
add("nospf.test", TXT, "just a text")
add("badsyn.test", TXT, "v=spf1 ip4:100.64.91.1 ip4:300.1.1.1")
add("huge.test", TXT, chunks("v=spf1" + " ip4:100.64.92.1" * 260))
# over 512 bytes: truncated over UDP, whole over TCP
add("bigrec.test", TXT, chunks("v=spf1" + "".join(
    " ip4:100.65.%d.0/24" % i for i in range(40))))
BIGREC = ["100.65.%d.0/24" % i for i in range(40)]
add("rec.notcp.test", TXT, chunks("v=spf1" + "".join(
    " ip4:100.66.%d.0/24" % i for i in range(40))))
# under -4: 1 + 10 TXT + 10 x 50 A queries = 511 > 500
add("qlimit.test", TXT, "v=spf1" + "".join(
    " include:q%d.qlimit.test" % i for i in range(10)))
for i in range(10):
    add("q%d.qlimit.test" % i, TXT, chunks("v=spf1" + "".join(
        " a:h%d.q%d.qlimit.test" % (j, i) for j in range(50))))
# 60 includes x 200 networks = 12000 > 10000
add("nets.test", TXT, chunks("v=spf1" + "".join(
    " include:n%d.nets.test" % i for i in range(60))))
for i in range(60):
    add("n%d.nets.test" % i, TXT, chunks("v=spf1" + "".join(
        " ip4:172.16.%d.%d" % ((i * 200 + j) >> 8, (i * 200 + j) & 255)
        for j in range(200))))


def collapsed(nets, family=0):
    """the minimal sorted CIDR list of nets, as spamd-setup prints it"""
    v4 = [ipaddress.ip_network(n) for n in nets if ":" not in n]
    v6 = [ipaddress.ip_network(n) for n in nets if ":" in n]
    out = []
    if family != 6:
        out += [str(n) for n in ipaddress.collapse_addresses(v4)]
    if family != 4:
        out += [str(n) for n in ipaddress.collapse_addresses(v6)]
    return out


def walk(srv, args, stdin=None):
    """run spamd-setup --spf-walk; returns (rc, stdout lines, stderr)"""
    p = subprocess.run([SETUP, "--spf-walk", "--dns-server",
                        "127.0.0.1:%d" % srv.port] + args,
                       input=(stdin or "").encode(),
                       capture_output=True, timeout=120)
    return (p.returncode, p.stdout.decode("latin-1").splitlines(),
            p.stderr.decode("latin-1"))


def run_checks(srv, tmp):
    """every check, in order"""
    rc, out, err = walk(srv, ["big.test"])
    check("big.test: the exact networks (include, redirect, a, mx, ip4, "
          "ip6, lengths, qualifiers)", rc == 0 and out == collapsed(BIG),
          "rc %d\n got  %r\n want %r\n stderr %s" % (
              rc, out, collapsed(BIG), err[-400:]))
    check("big.test: nothing on stderr (ptr, exists, exp= and -all "
          "ignored quietly)", err == "", "stderr %r" % err[-400:])
    check("diamond include walked once", srv.count(
        lambda n, t: n == "shared.test" and t == TXT) == 1,
        "shared.test TXT asked %d times" % srv.count(
            lambda n, t: n == "shared.test" and t == TXT))
    check("redirect= ignored where the record has \"all\"",
          srv.count(lambda n, t: n == "never.test") == 0,
          "never.test was asked")

    rc4, out4, err4 = walk(srv, ["-4", "big.test"])
    rc6, out6, err6 = walk(srv, ["-6", "big.test"])
    check("-4: only the IPv4 networks", rc4 == 0 and
          out4 == collapsed(BIG, 4), "rc %d out %r err %s" % (
              rc4, out4, err4[-300:]))
    check("-6: only the IPv6 networks", rc6 == 0 and
          out6 == collapsed(BIG, 6), "rc %d out %r err %s" % (
              rc6, out6, err6[-300:]))
    before = srv.count(lambda n, t: n == "mx1.big.test" and t == AAAA)
    walk(srv, ["-4", "big.test"])
    check("-4 asks no AAAA", srv.count(
        lambda n, t: n == "mx1.big.test" and t == AAAA) == before,
        "mx1.big.test AAAA asked under -4")

    rc, out, err = walk(srv, [], stdin="# senders\n\n  big.test  # main\n"
                        "macro.test\n")
    check("stdin: domains one a line, comments and blanks skipped",
          rc == 0 and out == collapsed(BIG + MACRO),
          "rc %d out %r err %s" % (rc, out, err[-300:]))
    check("macro term skipped with a warning naming domain and term",
          "spamd-setup: spf macro.test: skipped term "
          "'a:%{d}.hosts.macro.test'" in err, "stderr %r" % err)
    rc, out, err = walk(srv, [], stdin="big.test two.test\n")
    check("stdin: two domains on a line is an error with its line",
          rc == 1 and "spamd-setup: spf stdin:1: one domain a line" in err,
          "rc %d err %r" % (rc, err))

    rc, out, err = walk(srv, ["nx.test", "big.test", "two.test",
                              "nospf.test", "badsyn.test", "huge.test"])
    check("failed domains: exit 1, the good domain still printed",
          rc == 1 and out == collapsed(BIG), "rc %d out %r" % (rc, out))
    for dom, what in (("nx.test", "no such domain"),
                      ("two.test", "two v=spf1 records"),
                      ("nospf.test", "no SPF record"),
                      ("badsyn.test", "'ip4:300.1.1.1'"),
                      ("huge.test", "bytes (at most 4096)")):
        check("error names the domain: %s (%s)" % (dom, what),
              any(line.startswith("spamd-setup: spf %s: " % dom) and
                  what in line for line in err.splitlines()),
              "stderr %r" % err[-600:])

    rc, out, err = walk(srv, ["loop.test", "big.test"])
    check("include/redirect loop: a clear error, others printed",
          rc == 1 and out == collapsed(BIG) and
          "spamd-setup: spf loop.test: include/redirect loop: loop.test -> "
          "loop2.test -> loop.test" in err, "rc %d err %r" % (rc, err))
    rc, out, err = walk(srv, ["d0.deep.test"])
    check("nesting over 10 levels: a clear error", rc == 1 and out == []
          and "spamd-setup: spf d0.deep.test: include/redirect nesting "
          "deeper than 10 levels (at d11.deep.test)" in err,
          "rc %d out %r err %r" % (rc, out, err))
    rc, out, err = walk(srv, ["t0.ten.test"])
    check("nesting of exactly 10 levels is walked",
          rc == 0 and out == ["100.64.81.1/32"], "rc %d out %r err %r" % (
              rc, out, err))

    n = len(srv.tcp_queries)
    rc, out, err = walk(srv, ["bigrec.test"])
    check("record over 512 bytes: truncated over UDP, read over TCP",
          rc == 0 and out == collapsed(BIGREC) and
          "bigrec.test" in srv.tcp_queries[n:],
          "rc %d out %r err %r tcp %r" % (rc, out, err, srv.tcp_queries[n:]))
    rc, out, err = walk(srv, ["rec.notcp.test", "t0.ten.test"])
    check("truncated answer and no TCP: an error for that domain only",
          rc == 1 and out == ["100.64.81.1/32"] and
          "spamd-setup: spf rec.notcp.test: rec.notcp.test TXT: no answer"
          in err, "rc %d out %r err %r" % (rc, out, err))

    # dnsbl.py's server never answers for slow.test: 2 tries, then an
    # error for that domain only
    rc, out, err = walk(srv, ["slow.test", "t0.ten.test"])
    check("a server that never answers: an error for that domain only",
          rc == 1 and out == ["100.64.81.1/32"] and
          "spamd-setup: spf slow.test: slow.test TXT: no answer" in err and
          srv.count(lambda n, t: n == "slow.test") == 2,
          "rc %d out %r err %r asked %d" % (
              rc, out, err, srv.count(lambda n, t: n == "slow.test")))

    rc, out, err = walk(srv, ["-4", "qlimit.test"])
    check("500 DNS queries a run: a clear error", rc == 1 and
          "spamd-setup: spf qlimit.test: DNS query limit reached (500 a "
          "run)" in err, "rc %d err %r" % (rc, err[-300:]))
    rc, out, err = walk(srv, ["nets.test", "t0.ten.test"])
    check("10,000 networks a run: a clear error, others printed",
          rc == 1 and out == ["100.64.81.1/32"] and
          "spamd-setup: spf nets.test: more than 10000 networks" in err,
          "rc %d out %r err %r" % (rc, out, err[-300:]))

    # the output is a list file: load it as spamd-setup's white list
    rc, out, err = walk(srv, ["big.test", "macro.test"])
    white = os.path.join(tmp, "spf.txt")
    black = os.path.join(tmp, "black.txt")
    conf = os.path.join(tmp, "spamd.conf")
    black_nets = ["100.64.0.0/10", "192.0.0.0/8", "198.0.0.0/8",
                  "203.0.0.0/8", "2001:db8::/32"]
    with open(white, "w") as f:
        f.write("\n".join(out) + "\n")
    with open(black, "w") as f:
        f.write("\n".join(black_nets) + "\n")
    with open(conf, "w") as f:
        f.write("all:\\\n\t:big:spf:\nbig:\\\n\t:black:\\\n\t:msg=\"no\":\\\n"
                "\t:method=file:\\\n\t:file=%s:\nspf:\\\n\t:white:\\\n"
                "\t:method=file:\\\n\t:file=%s:\n" % (black, white))
    p = subprocess.run([SETUP, "-n", "-f", conf, "-s",
                        os.path.join(tmp, "state")], capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    line = p.stdout.decode("latin-1").strip()
    want = []
    for fam in (4, 6):
        rest = [ipaddress.ip_network(b) for b in black_nets
                if (":" in b) == (fam == 6)]
        for w in out:
            wn = ipaddress.ip_network(w)
            if wn.version != fam:
                continue
            nxt = []
            for r in rest:
                if wn.subnet_of(r):
                    nxt += list(r.address_exclude(wn))
                elif not r.subnet_of(wn):
                    nxt.append(r)
            rest = nxt
        want.append([str(x) for x in ipaddress.collapse_addresses(rest)])
    fields = line.split(";")
    got4 = got6 = None
    if "inet" in fields:
        i = fields.index("inet")
        got4 = fields[i + 2:i + 2 + int(fields[i + 1])]
    if "inet6" in fields:
        i = fields.index("inet6")
        got6 = fields[i + 2:i + 2 + int(fields[i + 1])]
    check("output loads back as a spamd-setup white list (black minus it)",
          rc == 0 and p.returncode == 0 and p.stderr == b"" and
          got4 == want[0] and got6 == want[1],
          "rc %d/%d stderr %r\n got4 %r\n want4 %r\n got6 %r\n want6 %r" % (
              rc, p.returncode, p.stderr[-300:], got4, want[0], got6,
              want[1]))


def nft_check(srv):
    """the manual's example: the output loaded into the nospamd sets of
    etc/spamd.nft, in a network namespace of our own (root only)"""
    name = "nft example of spamd-setup(8) loads the nospamd sets"
    if os.geteuid() != 0 or not shutil.which("ip") or \
            not shutil.which("nft"):
        print("skip - %s: needs root, ip and nft" % name)
        return
    ns = "spfwalk%d" % os.getpid()
    tmp = tempfile.mkdtemp(prefix="spf-nft.")
    r = subprocess.run(["ip", "netns", "add", ns], capture_output=True)
    if r.returncode != 0:
        # as root a namespace can always be made: a failure is a fault
        check(name, False, "ip netns add: %r" % r.stderr[-200:])
        return
    try:
        p = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f",
                            os.path.join(TOP, "etc", "spamd.nft")],
                           capture_output=True, timeout=60)
        if p.returncode != 0:
            # the shipped ruleset not loading is exactly what to catch
            check(name, False, "etc/spamd.nft does not load: %r" %
                  p.stderr[-200:])
            return
        # the manual's lines, with nft run in the namespace and
        # spamd-setup asking the test server; twice, as a cron job would,
        # over a stale element that the flush must remove
        lines = (
            "spamd-setup --spf-walk -%s big.test macro.test %s"
            ">%s/nospamd%s &&\n"
            "  printf 'flush set inet spamd %s\\nadd element inet spamd "
            "%s { %%s }\\n' \\\n"
            '    "$(paste -sd, - <%s/nospamd%s)" | nft -f -\n')
        walk = "".join(lines % (f, "", tmp, f, s, s, tmp, f)
                       for f, s in (("4", "nospamd"), ("6", "nospamd6")))
        failing = lines % ("4", "nx.test", tmp, "4", "nospamd",
                           "nospamd", tmp, "4")
        script = ('nft() { ip netns exec %s nft "$@"; }\n'
                  'spamd-setup() { %s --dns-server 127.0.0.1:%d "$@"; }\n'
                  "nft add element inet spamd nospamd '{ 192.0.2.99 }'\n"
                  % (ns, SETUP, srv.port)) + walk * 2 + \
            "if { %s}; then exit 3; fi\n" % failing
        p = subprocess.run(["bash", "-c", script], capture_output=True,
                           timeout=120)
        got = []
        for sname in ("nospamd", "nospamd6"):
            q = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j",
                                "list", "set", "inet", "spamd", sname],
                               capture_output=True, timeout=60)
            for item in json.loads(q.stdout or b"{}").get("nftables", []):
                for e in item.get("set", {}).get("elem", []):
                    if isinstance(e, dict) and "prefix" in e:
                        got.append("%s/%d" % (e["prefix"]["addr"],
                                              e["prefix"]["len"]))
                    elif isinstance(e, str):
                        got.append(e + ("/128" if ":" in e else "/32"))
        want = collapsed(BIG + MACRO)
        check(name, p.returncode == 0 and sorted(got) == sorted(want),
              "rc %d stderr %r\n got  %r\n want %r" % (
                  p.returncode, p.stderr[-300:], got, want))
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if not os.access(SETUP, os.X_OK):
        print("not ok - spamd-setup --spf-walk: %s not built" % SETUP)
        return 1
    srv = SpfServer()
    tmp = tempfile.mkdtemp(prefix="spf-test.")
    try:
        run_checks(srv, tmp)
        nft_check(srv)
    finally:
        srv.close()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
