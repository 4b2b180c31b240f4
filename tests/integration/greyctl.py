#!/usr/bin/env python3
"""greyctl.py - greyctl tested by running the binary.

Output lines are compared with OpenBSD spamdb's format exactly (records
made with -a, -t -a, -T -a and import), a dump round-trips through import
into a fresh directory, IPv6, -d of each type and -G -d, -j output is JSON
with the right fields and escapes, export traplist, stats, and every kind
of bad input: exit status 1, a message on stderr naming the culprit, and
the database's dump unchanged afterwards.

Finds the binaries through $BUILD (default $TOP/build). Prints one line a
check: "ok - name" or "not ok - name: why"; exits 1 if any failed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("TOP") or os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("BUILD") or os.path.join(TOP, "build")
GREYCTL = os.path.join(BUILD, "greyctl")
WRITER = os.path.join(BUILD, "tests", "helpers", "gdb_writer")
WHITEEXP = 864 * 3600
TRAPEXP = 24 * 3600

sys.path.insert(0, os.path.join(TOP, "tests", "helpers"))
import fault_lib as fl  # noqa: E402  (Results: the ok / not ok lines)

RES = fl.Results()
ok, notok, skip, check = RES.ok, RES.notok, RES.skip, RES.check


def run(args, stdin=None):
    """run greyctl with args; (status, stdout, stderr) as text"""
    if stdin is not None:
        stdin = stdin.encode("latin-1")
    p = subprocess.run([GREYCTL] + args, input=stdin, capture_output=True,
                       timeout=120)
    return (p.returncode, p.stdout.decode("latin-1"),
            p.stderr.decode("latin-1"))


def dump(db):
    """the whole dump of db as a list of lines (None if greyctl failed)"""
    rc, out, err = run(["-D", db])
    if rc != 0:
        return None
    return out.splitlines()


def expect_lines(name, got, want):
    """compare two lists of lines exactly"""
    if got == want:
        ok(name)
    else:
        notok(name, "got %r, want %r" % (got, want))


def white_line(ip, first, pas, bcount=1, pcount=0):
    return "WHITE|%s|||%d|%d|%d|%d|%d" % (ip, first, pas, pas + WHITEEXP,
                                          bcount, pcount)


def field_time(line, idx):
    return int(line.split("|")[idx])


def bad_case(name, db, args, culprit, stdin=None, want_rc=1):
    """args must fail: status want_rc (1 an error, 2 a usage error, as
    spamdb), culprit named on stderr, db unchanged"""
    before = dump(db) if os.path.isdir(db) else None
    rc, out, err = run(args, stdin)
    after = dump(db) if os.path.isdir(db) else None
    why = []
    if rc != want_rc:
        why.append("exit %d, want %d" % (rc, want_rc))
    if culprit not in err:
        why.append("stderr %r does not name %r" % (err, culprit))
    if len(err.strip().splitlines()) == 0:
        why.append("no message")
    if before != after:
        why.append("dump changed: %r -> %r" % (before, after))
    if why:
        notok(name, "; ".join(why))
    else:
        ok(name)


def main():
    if not os.access(GREYCTL, os.X_OK):
        notok("greyctl built", GREYCTL + " missing (make)")
        return 1
    tmp = tempfile.mkdtemp(prefix="greyctl_test.")
    try:
        tests(tmp)
    except Exception as e:  # a crash of the script is a failure too
        notok("test script ran to the end", "%s: %s" % (type(e).__name__, e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return RES.status()


def tests(tmp):
    db = os.path.join(tmp, "db")

    # --- usage -------------------------------------------------------
    rc, out, err = run(["-h"])
    check("-h prints usage, exit 0",
          rc == 0 and out.startswith("usage: greyctl") and "import" in out
          and "export traplist" in out, "rc %d out %r" % (rc, out[:80]))

    # --- missing database: read commands never create ---------------
    for args in ([], ["stats"], ["export", "traplist"], ["192.0.2.1"],
                 ["-d", "192.0.2.1"]):
        bad_case("missing dir, greyctl %s" % (" ".join(args) or "(dump)"),
                 db, ["-D", db] + args, db)
    check("read commands did not create the dir", not os.path.exists(db))

    # --- WHITE via -a ---------------------------------------------------
    t0 = int(time.time())
    rc, out, err = run(["-D", db, "-a", "192.0.2.1"])
    t1 = int(time.time())
    check("-a creates the database (documented)", rc == 0,
          "rc %d err %r" % (rc, err))
    d = dump(db)
    if d and len(d) == 1 and d[0].startswith("WHITE|"):
        tw = field_time(d[0], 4)
        check("-a WHITE: first in run time", t0 <= tw <= t1,
              "first %d not in %d..%d" % (tw, t0, t1))
        expect_lines("-a WHITE line is spamdb's", d,
                     [white_line("192.0.2.1", tw, tw)])
    else:
        notok("-a WHITE line is spamdb's", "dump %r" % (d,))
        tw = t0
    time.sleep(1.1)
    rc, out, err = run(["-D", db, "-a", "192.0.2.1"])
    d = dump(db) or [""]
    tp = field_time(d[0], 5) if d[0].startswith("WHITE|") else 0
    expect_lines("-a again updates: pass and expire new, pcount + 1", d,
                 [white_line("192.0.2.1", tw, tp, 1, 1)])
    check("-a again: pass moved on", tp > tw, "pass %d first %d" % (tp, tw))

    # --- TRAPPED via -t -a, SPAMTRAP via -T -a --------------------------
    t0 = int(time.time())
    rc, out, err = run(["-D", db, "-t", "-a", "198.51.100.7"])
    t1 = int(time.time())
    d = dump(db) or []
    trapped = [l for l in d if l.startswith("TRAPPED|")]
    if len(trapped) == 1:
        te = field_time(trapped[0], 2)
        check("-t -a: expire now + 24 h", t0 + TRAPEXP <= te <= t1 + TRAPEXP,
              "expire %d" % te)
        expect_lines("-t -a TRAPPED line is spamdb's", trapped,
                     ["TRAPPED|198.51.100.7|%d" % te])
    else:
        notok("-t -a TRAPPED line is spamdb's", "dump %r" % (d,))
        te = t0 + TRAPEXP
    rc, out, err = run(["-D", db, "-T", "-a", "<Trap@Example.COM>"])
    d = dump(db) or []
    expect_lines("-T -a SPAMTRAP line, lowercased, <> stripped",
                 [l for l in d if l.startswith("SPAMTRAP|")],
                 ["SPAMTRAP|trap@example.com"])

    # --- GREY via import --------------------------------------------
    grey_in = ("GREY|192.0.2.9|mx.example.org|<Alice@Example.ORG>|"
               "bob@example.com|1700000000|1700001500|1700014400|3|0\n"
               "GREY|192.0.2.9|mx.example.org|alice@example.org|"
               "carol@example.com|1700000001|1700001501|1700014401|1|0\n"
               "GREY|192.0.2.10|h|<>|bob@example.com|1700000002|"
               "1700001502|1700014402|1|0\n")
    rc, out, err = run(["-D", db, "import"], grey_in)
    check("import GREY reports counts",
          rc == 0 and out == "import: 3 grey, 0 white, 0 trapped, 0 spamtrap\n",
          "rc %d out %r err %r" % (rc, out, err))
    d = dump(db) or []
    expect_lines("GREY lines are spamdb's (addresses normalised)",
                 [l for l in d if l.startswith("GREY|")],
                 ["GREY|192.0.2.10|h||bob@example.com|1700000002|1700001502|"
                  "1700014402|1|0",
                  "GREY|192.0.2.9|mx.example.org|alice@example.org|"
                  "bob@example.com|1700000000|1700001500|1700014400|3|0",
                  "GREY|192.0.2.9|mx.example.org|alice@example.org|"
                  "carol@example.com|1700000001|1700001501|1700014401|1|0"])
    types = [l.split("|")[0] for l in d]
    check("dump order GREY, WHITE, TRAPPED, SPAMTRAP",
          types == sorted(types, key=["GREY", "WHITE", "TRAPPED",
                                      "SPAMTRAP"].index) and len(d) == 6,
          "%r" % types)

    # --- IPv6 -----------------------------------------------------------
    rc, out, err = run(["-D", db, "-a", "2001:DB8:0::0:1"])
    rc2, out, err2 = run(["-D", db, "-t", "-a", "2001:db8::dead"])
    rc3, out, err3 = run(["-D", db, "import"],
                         "GREY|2001:db8::2|v6.example|a@b.example|c@d.example|"
                         "1700000000|1700001500|1700014400|1|0\n")
    d = dump(db) or []
    v6 = [l for l in d if "2001:" in l]
    check("IPv6 -a, -t -a, import accepted", rc == rc2 == rc3 == 0,
          "%r %r %r" % (err, err2, err3))
    check("IPv6 records in canonical form",
          len(v6) == 3 and v6[0] == "GREY|2001:db8::2|v6.example|a@b.example|"
          "c@d.example|1700000000|1700001500|1700014400|1|0"
          and v6[1].startswith("WHITE|2001:db8::1|||")
          and v6[2].startswith("TRAPPED|2001:db8::dead|"), "%r" % v6)
    rc, out, err = run(["-D", db, "2001:db8::0:1"])
    check("IPv6 lookup", rc == 0 and out.startswith("WHITE|2001:db8::1|||"),
          "rc %d out %r" % (rc, out))

    # --- lookups --------------------------------------------------------
    rc, out, err = run(["-D", db, "192.0.2.9", "192.0.2.1"])
    lines = out.splitlines()
    check("lookup prints GREY and WHITE of the keys",
          rc == 0 and len(lines) == 3 and lines[0].startswith("GREY|192.0.2.9|")
          and lines[2].startswith("WHITE|192.0.2.1|||"),
          "rc %d out %r" % (rc, out))
    rc, out, err = run(["-D", db, "Trap@example.com"])
    check("lookup of a spamtrap address",
          rc == 0 and out == "SPAMTRAP|trap@example.com\n", "%d %r" % (rc, out))
    rc, out, err = run(["-D", db, "203.0.113.5"])
    check("lookup of an unknown key: no output, exit 1 (as spamdb)",
          rc == 1 and out == "" and err == "", "%d %r %r" % (rc, out, err))

    # --- -a WHITE of a trapped ip, -t -a of a white ip ----------------
    rc, out, err = run(["-D", db, "-t", "-a", "192.0.2.1"])
    d = dump(db) or []
    check("-t -a of a WHITE ip: TRAPPED, WHITE gone",
          rc == 0 and not any(l.startswith("WHITE|192.0.2.1|") for l in d)
          and any(l.startswith("TRAPPED|192.0.2.1|") for l in d), "%r" % d)
    rc, out, err = run(["-D", db, "-a", "192.0.2.1"])
    d = dump(db) or []
    check("-a of a TRAPPED ip: WHITE, TRAPPED gone (spamdb overwrites)",
          rc == 0 and any(l.startswith("WHITE|192.0.2.1|") for l in d)
          and not any(l.startswith("TRAPPED|192.0.2.1|") for l in d), "%r" % d)

    # --- JSON ---------------------------------------------------------
    # A helo with '"', '\', a control byte, a lone CR and a byte >= 0x80.
    odd = "GREY|192.0.2.77|q\"b\\s\x01c\rr\xe9|x@y.example|z@y.example|1|2|3|4|0\n"
    p = subprocess.run([GREYCTL, "-D", db, "import"],
                       input=odd.encode("latin-1"), capture_output=True,
                       timeout=120)
    check("import of a line with odd helo bytes", p.returncode == 0,
          p.stderr.decode("latin-1"))
    p = subprocess.run([GREYCTL, "-D", db, "-j"], capture_output=True,
                       timeout=120)
    objs = []
    try:
        raw = p.stdout.decode("ascii")
        for line in raw.splitlines():
            objs.append(json.loads(line))
        check("-j: every line parses as JSON, output is ASCII",
              p.returncode == 0 and len(objs) == len(dump(db) or []),
              "%d objects" % len(objs))
    except (ValueError, UnicodeDecodeError) as e:
        notok("-j: every line parses as JSON, output is ASCII", str(e))
    byt = {o.get("type"): o for o in objs}
    g = [o for o in objs if o.get("ip") == "192.0.2.9"]
    check("-j GREY fields",
          len(g) == 2 and g[0] == {"type": "GREY", "ip": "192.0.2.9",
                                   "helo": "mx.example.org",
                                   "from": "alice@example.org",
                                   "to": "bob@example.com",
                                   "first": 1700000000, "pass": 1700001500,
                                   "expire": 1700014400, "bcount": 3,
                                   "pcount": 0}, "%r" % g[:1])
    w = byt.get("WHITE", {})
    check("-j WHITE fields",
          set(w) == {"type", "ip", "first", "pass", "expire", "bcount",
                     "pcount"} and w["expire"] == w["pass"] + WHITEEXP,
          "%r" % w)
    t = byt.get("TRAPPED", {})
    check("-j TRAPPED fields", set(t) == {"type", "ip", "first", "pass",
                                          "expire", "bcount", "pcount"}
          and t["pcount"] == -1, "%r" % t)
    s = byt.get("SPAMTRAP", {})
    check("-j SPAMTRAP fields", s.get("address") == "trap@example.com"
          and s.get("pcount") == -2 and s.get("expire") == 0, "%r" % s)
    odd_o = [o for o in objs if o.get("ip") == "192.0.2.77"]
    check("-j escapes quote, backslash, control bytes and bytes >= 0x80",
          len(odd_o) == 1 and odd_o[0]["helo"] == "q\"b\\s\x01c\rr\xe9"
          and "\\u00e9" in p.stdout.decode("ascii", "replace")
          and "\\u0001" in p.stdout.decode("ascii", "replace"),
          "%r" % odd_o)
    rc, out, err = run(["-D", db, "192.0.2.77"])
    check("text output: CR in a field printed as '?'",
          rc == 0 and out == "GREY|192.0.2.77|q\"b\\s\x01c?r\xe9|x@y.example|"
          "z@y.example|1|2|3|4|0\n", "%r" % out)
    if os.access(WRITER, os.X_OK):
        wdb = os.path.join(tmp, "nl")
        r = subprocess.run([WRITER, "write", wdb, "a\nb", "1"],
                           capture_output=True, timeout=120)
        d = dump(wdb)
        check("text output: LF in a stored helo printed as '?'",
              r.returncode == 0 and d is not None and len(d) == 1
              and d[0].startswith("GREY|192.0.2.1|a?b|"), "%r" % d)
    else:
        print("skip - LF in stored helo: gdb_writer not built")
    run(["-D", db, "-G", "-d", "192.0.2.77"])

    # --- stats, export traplist -----------------------------------------
    run(["-D", db, "import"], "TRAPPED|203.0.113.99|1000\n")
    d = dump(db) or []
    n = {k: sum(1 for l in d if l.startswith(k.upper() + "|"))
         for k in ("grey", "white", "trapped", "spamtrap")}
    rc, out, err = run(["-D", db, "stats"])
    want = "grey=%(grey)d white=%(white)d trapped=%(trapped)d " \
           "spamtrap=%(spamtrap)d\n" % n
    check("stats counts by type", rc == 0 and out == want,
          "%r want %r" % (out, want))
    rc, out, err = run(["-D", db, "-j", "stats"])
    try:
        check("-j stats", rc == 0 and json.loads(out) == n, out)
    except ValueError as e:
        notok("-j stats", str(e))
    rc, out, err = run(["-D", db, "export", "traplist"])
    lines = out.splitlines()
    live = sorted(l.split("|")[1] for l in d if l.startswith("TRAPPED|")
                  and int(l.split("|")[2]) > time.time())
    check("export traplist: header with host and ISO time",
          rc == 0 and len(lines) > 0 and re.match(
              r"^# spamd trap list from \S+ at "
              r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", lines[0]), "%r" % out)
    check("export traplist: the unexpired TRAPPED addresses only",
          sorted(lines[1:]) == live and "203.0.113.99" not in lines
          and len(live) == 2, "%r want %r" % (lines[1:], live))

    # --- round trip: dump -> import into a fresh dir -> dump ------------
    rc, full, err = run(["-D", db])
    db2 = os.path.join(tmp, "copy")
    rc2, out, err2 = run(["-D", db2, "import"], full)
    d2 = dump(db2)
    check("import of a dump round-trips (dump equal)",
          rc == 0 and rc2 == 0 and d2 == full.splitlines(),
          "%r\n%r %r" % (d2, full.splitlines(), err2))
    cnt = {k: sum(1 for l in full.splitlines() if l.startswith(k + "|"))
           for k in ("GREY", "WHITE", "TRAPPED", "SPAMTRAP")}
    check("import summary counts the dump's lines",
          out == "import: %d grey, %d white, %d trapped, %d spamtrap\n" % (
              cnt["GREY"], cnt["WHITE"], cnt["TRAPPED"], cnt["SPAMTRAP"]),
          "%r %r" % (out, cnt))

    # --- -d of each type ------------------------------------------------
    def has(prefix, database=db2):
        return any(l.startswith(prefix) for l in dump(database) or [])
    rc, out, err = run(["-D", db2, "-d", "192.0.2.1"])
    check("-d deletes WHITE", rc == 0 and not has("WHITE|192.0.2.1|")
          and has("WHITE|2001:db8::1|"), err)
    rc, out, err = run(["-D", db2, "-t", "-d", "198.51.100.7"])
    check("-t -d deletes TRAPPED", rc == 0 and not has("TRAPPED|198.51.100.7|")
          and has("TRAPPED|2001:db8::dead|"), err)
    rc, out, err = run(["-D", db2, "-T", "-d", "TRAP@example.com"])
    check("-T -d deletes SPAMTRAP", rc == 0 and not has("SPAMTRAP|"), err)
    rc, out, err = run(["-D", db2, "-G", "-d", "192.0.2.9"])
    check("-G -d deletes every GREY tuple of the ip, only those",
          rc == 0 and not has("GREY|192.0.2.9|") and has("GREY|192.0.2.10|")
          and has("GREY|2001:db8::2|"), err)
    rc, out, err = run(["-D", db2, "-G", "-d", "2001:db8::2"])
    check("-G -d of an IPv6 ip", rc == 0 and not has("GREY|2001:db8::2|"), err)

    # --- every bad input: exit 1 (2 for usage errors, as spamdb),
    # culprit named, nothing changed ------
    bad_case("-a with a bad address (with a good key before it)", db2,
             ["-D", db2, "-a", "203.0.113.1", "300.1.2.3"], "300.1.2.3")
    bad_case("-t -a with a bad address", db2,
             ["-D", db2, "-t", "-a", "192.0.2.300"], "192.0.2.300")
    # -d works key by key as spamdb (issue 16; it changed nothing when
    # one key was bad): the bad key is named, exit 1, the good one goes
    rc, out, err = run(["-D", db2, "-d", "not-an-ip", "2001:db8::1"])
    check("-d with a bad address: named, exit 1, the good key deleted",
          rc == 1 and "not-an-ip" in err and not has("WHITE|2001:db8::1|"),
          "rc %d %r" % (rc, err))
    run(["-D", db2, "-a", "2001:db8::1"])
    bad_case("lookup of a bad address", db2, ["-D", db2, "1.2.3"], "1.2.3")
    bad_case("-T -a spamtrap without '@'", db2,
             ["-D", db2, "-T", "-a", "ok@example.com", "nobody.example.com"],
             "nobody.example.com")
    bad_case("-T -a spamtrap with a space", db2,
             ["-D", db2, "-T", "-a", "a b@example.com"], "a b@example.com")
    bad_case("unknown flag", db2, ["-D", db2, "-x"], "-x",
             want_rc=2)
    bad_case("-a with -d", db2, ["-D", db2, "-a", "-d", "192.0.2.50"], "-d",
             want_rc=2)
    bad_case("-t with -T", db2, ["-D", db2, "-t", "-T", "-d", "a@b"], "-T",
             want_rc=2)
    bad_case("-G with -a", db2, ["-D", db2, "-G", "-a", "192.0.2.50"], "-G",
             want_rc=2)
    bad_case("-t without -a or -d", db2, ["-D", db2, "-t", "192.0.2.50"], "-t",
             want_rc=2)
    bad_case("-a without keys", db2, ["-D", db2, "-a"], "-a",
             want_rc=2)
    bad_case("-j with -a", db2, ["-D", db2, "-j", "-a", "192.0.2.50"], "-j",
             want_rc=2)
    bad_case("-D without its argument", db2, ["-D"], "-D",
             want_rc=2)
    bad_case("export without traplist", db2, ["-D", db2, "export"],
             "traplist")
    # as spamdb: the absent key is reported (exit 1), the present one
    # is still deleted (issue 16; nothing was deleted before)
    rc, out, err = run(["-D", db2, "-d", "2001:db8::1", "203.0.113.8"])
    check("-d of an absent entry (with a present one): named, exit 1, "
          "the present one deleted", rc == 1 and "203.0.113.8" in err and
          not has("WHITE|2001:db8::1|"), "rc %d %r" % (rc, err))
    bad_case("-G -d of an ip without tuples", db2,
             ["-D", db2, "-G", "-d", "203.0.113.8"], "203.0.113.8")
    afile = os.path.join(tmp, "a-file")
    with open(afile, "w") as f:
        f.write("not a directory\n")
    bad_case("dir is a regular file (dump)", db2, ["-D", afile], afile)
    bad_case("dir is a regular file (-a)", db2,
             ["-D", afile, "-a", "192.0.2.50"], afile)
    bad_case("dir is a regular file (import)", db2, ["-D", afile, "import"],
             afile, "SPAMTRAP|x@y.example\n")
    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    bad_case("dir without a database (stats)", db2, ["-D", empty, "stats"],
             empty)
    check("no database files made in that dir", os.listdir(empty) == [],
          "%r" % os.listdir(empty))

    concurrent(tmp)

    good = "WHITE|192.0.2.60|||1|2|3|1|0\n"
    imports = [
        ("GREY with 9 fields", "GREY|192.0.2.61|h|a@b|c@d|1|2|3|4\n",
         "stdin:2:"),
        ("WHITE with 10 fields", "WHITE|192.0.2.61||||1|2|3|1|0\n",
         "stdin:2:"),
        ("TRAPPED with 4 fields", "TRAPPED|192.0.2.61|3|4\n", "stdin:2:"),
        ("SPAMTRAP with 3 fields", "SPAMTRAP|a@b|c\n", "stdin:2:"),
        ("non-numeric time", "GREY|192.0.2.61|h|a@b|c@d|1|soon|3|4|0\n",
         "soon"),
        ("negative expire", "TRAPPED|192.0.2.61|-5\n", "-5"),
        ("huge bcount", "WHITE|192.0.2.61|||1|2|3|99999999999|0\n",
         "99999999999"),
        ("bad address", "WHITE|192.0.2.256|||1|2|3|1|0\n", "192.0.2.256"),
        ("spamtrap without '@'", "SPAMTRAP|nobody\n", "nobody"),
        ("unknown type", "BLUE|192.0.2.61\n", "BLUE"),
        ("WHITE with a helo", "WHITE|192.0.2.61|h||1|2|3|1|0\n", "stdin:2:"),
        ("helo too long", "GREY|192.0.2.61|%s|a@b|c@d|1|2|3|4|0\n" %
         ("h" * 1100), "helo"),
    ]
    for name, line, culprit in imports:
        bad_case("import: " + name + " (nothing imported)", db2,
                 ["-D", db2, "import"], culprit, good + line)
    rc, out, err = run(["-D", db2, "import"],
                       good + "BLUE|x\n" + good + "GREY|1.2.3.4\n")
    check("import names every bad line with its number",
          rc == 1 and "stdin:2:" in err and "stdin:4:" in err
          and "2 bad lines" in err, "%r" % err)
    rc, out, err = run(["-D", db2, "import"],
                       "# comment\n\n" + good.replace("\n", "\r\n"))
    check("import skips comments and blank lines, takes CRLF",
          rc == 0 and out.startswith("import: 0 grey, 1 white,")
          and any(l.startswith("WHITE|192.0.2.60|") for l in dump(db2) or []),
          "%d %r %r" % (rc, out, err))



def concurrent(tmp):
    """greyctl -a and stats while another process writes the same store"""
    if not os.access(WRITER, os.X_OK):
        print("skip - greyctl beside a writer: gdb_writer not built")
        return
    cdb = os.path.join(tmp, "conc")
    ntuples = 200000
    w = subprocess.Popen([WRITER, "write", cdb, "busy", str(ntuples)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    errs, added, overlap = [], 0, 0
    try:
        # Bounded wait (5 s) for the writer to have made the store.
        for _ in range(250):
            if os.path.exists(os.path.join(cdb, "grey.db")) or \
                    w.poll() is not None:
                break
            time.sleep(0.02)
        # greyctl writes and reads while the writer runs: at most 200
        # rounds, and at least 5 so there is something to check.
        while added < 200 and (w.poll() is None or added < 5):
            if w.poll() is None:
                overlap += 1
            rc, out, err = run(["-D", cdb, "-a", "198.18.%d.%d" %
                                (added // 250, added % 250 + 1)])
            if rc != 0:
                errs.append(err)
            added += 1
            rc, out, err = run(["-D", cdb, "stats"])
            if rc != 0 or not out.startswith("grey="):
                errs.append(err)
        werr = w.communicate(timeout=600)[1].decode("latin-1")
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()
    check("greyctl -a and stats while gdb_writer writes (%d of %d rounds "
          "began while it ran)" % (overlap, added),
          not errs and w.returncode == 0, "%r %r" % (errs[:2], werr))
    r = subprocess.run([WRITER, "check", cdb, "busy", str(ntuples)],
                       capture_output=True, timeout=600)
    rc, out, err = run(["-D", cdb, "stats"])
    want = "grey=%d white=%d trapped=0 spamtrap=0\n" % (ntuples, added)
    check("both writers' records all there (%d tuples, %d WHITE)" %
          (ntuples, added), r.returncode == 0 and out == want,
          "%r, stats %r want %r" % (r.stderr, out, want))

    # A reader that goes away (greyctl | head -1): exit 1, no message,
    # and greyctl closed the store cleanly (it was not killed inside it).
    p = subprocess.Popen([GREYCTL, "-D", cdb], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    first = p.stdout.readline()
    p.stdout.close()
    perr = p.communicate(timeout=300)[1].decode("latin-1")
    check("closed stdout pipe: exit 1, no message",
          first.startswith(b"GREY|") and p.returncode == 1 and perr == "",
          "rc %d stderr %r" % (p.returncode, perr))
    rc, out, err = run(["-D", cdb, "stats"])
    check("store fine after the closed pipe", rc == 0 and out == want,
          "%r %r" % (out, err))
    if os.path.exists("/dev/full"):
        with open("/dev/full", "w") as full:
            p = subprocess.run([GREYCTL, "-D", cdb, "stats"], stdout=full,
                               stderr=subprocess.PIPE, timeout=120)
        e = p.stderr.decode("latin-1")
        check("stdout on a full device: exit 1, message names stdout",
              p.returncode == 1 and "stdout" in e, "rc %d %r" %
              (p.returncode, e))


if __name__ == "__main__":
    sys.exit(main())
