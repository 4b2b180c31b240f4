#!/usr/bin/env python3
"""deploy_docs.py - what an operator copies from the tree works as written.

- etc/spamd.conf loads as shipped: its /etc/mail/ paths rewritten to the
  tree's etc/ (where the files it names ship) and its http list's example
  host to a closed loopback port (127.0.0.1:9, so no lookup leaves the
  host), `spamd-setup -n -f` prints the line of every list that needs no
  network (dul, blocked, with the message file's text), cuts nospamd's
  partner out of blocked, and reports only peertraps as failed.
- The README and the manuals name what is built and installed: the build
  comment lists every program the Makefile builds, the files table names
  the store's files (greydb/env.c: grey.db, expire.db), every command line
  that starts the daemon in the README and spamd(8) says spamd-tarpit (the
  installed name), and etc/spamd.nft's header loads it from the path the
  README installs it to.
- The README's deploy steps and the package agree: the unit names it uses
  are the units etc/ ships, the ruleset path is the one
  spamd-tarpit-nft.service loads and make install fills, spamd's unit
  pulls that unit in, and the useradd line and the /var/db/spamd mode are
  the unit comment's and the postinst's.
- Each of the five manuals has a COMING FROM OPENBSD section just before
  SEE ALSO (issue #16) whose table names, in its first column, every flag
  and file of the OpenBSD counterpart (spamd, spamd-setup, spamd.conf's
  fields, spamdb, spamlogd of OpenBSD 7.x; the lists are in OBSD_ROWS),
  and every row says same, differs, ours only (or "not in", for a flag the
  counterpart lacks).
No daemon, no ports. Prints ok / not ok lines; exits 1 if a check failed.
"""
import os
import re
import subprocess
import sys
import tempfile

TOP = os.environ.get("TOP") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD") or os.path.join(TOP, "build")
SETUP = os.path.join(BUILD, "spamd-setup")

sys.path.insert(0, os.path.join(TOP, "tests", "helpers"))
import fault_lib as fl  # noqa: E402

R = fl.Results()
ok, notok, skip, check = R.ok, R.notok, R.skip, R.check


def read(rel):
    with open(os.path.join(TOP, rel), encoding="utf-8") as f:
        return f.read()


def conf_loads():
    """spamd-setup -n on the shipped spamd.conf, paths rewritten"""
    etc = os.path.join(TOP, "etc") + "/"
    text = read("etc/spamd.conf").replace("/etc/mail/", etc)
    text = text.replace("mx2.example.org", "127.0.0.1\\:9")
    with tempfile.TemporaryDirectory(prefix="deploy-docs-") as tmp:
        conf = os.path.join(tmp, "spamd.conf")
        with open(conf, "w") as f:
            f.write(text)
        p = subprocess.run([SETUP, "-n", "-f", conf, "-s",
                            os.path.join(tmp, "state")],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=120)
    lines = {ln.split(";", 1)[0]: ln for ln in p.stdout.splitlines()}
    err = p.stderr.strip().replace("\n", " | ")[:400]
    check("spamd.conf as shipped: no entry fails to parse",
          "msg file" not in p.stderr and "No such file" not in p.stderr,
          err)
    check("spamd.conf as shipped: dul loads", "dul" in lines and "198.51.100.0/24" in
          lines.get("dul", ""), err)
    bl = lines.get("blocked", "")
    check("spamd.conf as shipped: blocked loads with blocked.msg's text",
          "is in a range this site blocks" in bl and
          "203.0.113.0/29" in bl, err or p.stdout[:300])
    check("spamd.conf as shipped: nowhite's partner 203.0.113.8/29 is cut "
          "out of blocked", bl != "" and "203.0.113.0/24" not in bl and
          "203.0.113.8/29" not in bl, bl[:300])
    failed = re.findall(r"list=(\S+) event=(?:fetch-failed|skipped)",
                        p.stderr)
    check("spamd.conf as shipped: only the http list (peertraps) fails",
          failed == ["peertraps"], "failed=%s: %s" % (failed, err))


def docs_consistent():
    """README, manuals and etc/ name the built and installed files"""
    readme = read("README.md")
    mk = read("Makefile")
    progs = re.findall(r"\$\(BUILD\)/(\w[\w-]*)\)", mk.split("PROGS =", 1)
                       [1].split("\n\n", 1)[0])
    m = re.search(r"^make +# (.*)$", readme, re.M)
    built = m.group(1) if m else ""
    missing = [p for p in progs if "build/" + p not in built]
    check("README build list names every program (%s)" % " ".join(progs),
          progs != [] and missing == [], "missing: %s" % missing)
    env = read("greydb/env.c")
    dbs = sorted(set(re.findall(r'"(\w+\.db)"', env)))
    row = [ln for ln in readme.splitlines()
           if ln.startswith("| `/var/db/spamd/`")]
    row = row[0] if row else ""
    check("README files table names the store's files %s" % dbs,
          dbs != [] and all("`%s`" % d in row for d in dbs) and
          "greydb.db" not in row, row[:200])
    # a command line starting the daemon: "spamd -x", "spamd --x"
    start = re.compile(r"(?:^|[\s`#$])spamd (?:-|--)\w")
    bad = [ln.strip() for ln in readme.splitlines() if start.search(ln)]
    check("README starts the daemon as spamd-tarpit", bad == [],
          "; ".join(bad)[:300])
    man = read("spamd/spamd.8")
    ex = man.split(".Sh EXAMPLES", 1)[1].split(".Sh ", 1)[0] \
        if ".Sh EXAMPLES" in man else ""
    bad = [ln for ln in ex.splitlines() if start.search(ln)]
    check("spamd(8) EXAMPLES start spamd-tarpit", ex != "" and bad == []
          and "spamd-tarpit" in ex, "; ".join(bad)[:300])
    sec = readme.split("## Deploy in front of Postfix with nftables", 1)
    sec = sec[1].split("\n## ", 1)[0] if len(sec) == 2 else ""
    m = re.search(r"By hand: `nft -f (\S+)`", sec)
    dest = m.group(1) if m else "?"
    nft = read("etc/spamd.nft")
    m2 = re.search(r"^# Load it: +nft -f (\S+)", nft, re.M)
    check("etc/spamd.nft's header loads it from README's path %s" % dest,
          m2 is not None and m2.group(1) == dest,
          "header says %s" % (m2.group(1) if m2 else "nothing"))
    unit_docs(readme, sec, dest)


def unit_docs(readme, sec, nftpath):
    """the README's deploy steps name the units and paths the package
    installs, and say what the unit's comment and the postinst do"""
    units = sorted(f[:-len(".service.in")] for f in
                   os.listdir(os.path.join(TOP, "etc"))
                   if f.endswith(".service.in"))
    named = sorted(set(re.findall(r"`(spamd-tarpit[\w-]*)(?:\.service)?`",
                                  sec) + re.findall(
        r"systemctl [\w -]*?(spamd-tarpit[\w-]*)", sec)))
    check("README deploy section names the shipped units %s" % units,
          units != [] and named == units, "names %s" % named)
    nunit = read("etc/spamd-tarpit-nft.service.in")
    m = re.search(r"^ExecStart=\S*nft -f (\S+)$", nunit, re.M)
    got = m.group(1).replace("@SYSCONFDIR@", "/etc") if m else "?"
    mk = read("Makefile")
    check("spamd-tarpit-nft.service loads %s, README's path, where make "
          "install puts it" % got, got == nftpath and
          "SYSCONFDIR ?= /etc" in mk and
          "$(DESTDIR)$(SYSCONFDIR)/spamd/" in mk, "README %s" % nftpath)
    unit = read("etc/spamd-tarpit.service.in")
    check("spamd-tarpit.service pulls in spamd-tarpit-nft.service",
          re.search(r"^Wants=.*spamd-tarpit-nft\.service", unit, re.M)
          is not None and re.search(r"^PartOf=nftables\.service$", nunit,
                                    re.M) is not None, "")

    def cmd(text, word):
        """the (joined, #-stripped) line of text starting with word"""
        text = re.sub(r"\\\n#?\s*", " ", text)
        for ln in text.splitlines():
            ln = re.sub(r"^#\s*", "", ln.strip())
            if ln.startswith(word):
                return " ".join(ln.split())
        return None
    ua, ub = cmd(sec, "useradd "), cmd(unit, "useradd ")
    check("README's useradd line is the unit comment's", ua is not None and
          ua == ub, "README %r, unit %r" % (ua, ub))
    da = cmd(sec, "install -d -m 0750 -o _spamd")
    db = cmd(unit, "install -d -m 0750 -o _spamd")
    pi = read("debian/spamd-tarpit.postinst")
    check("/var/db/spamd: README, the unit comment and the postinst say "
          "_spamd 0750", da is not None and da == db and
          "-o _spamd -g _spamd -m 0750 /var/db/spamd" in pi,
          "README %r unit %r" % (da, db))


# What each manual's COMING FROM OPENBSD table must name in its first
# column, as mdoc words: every flag of the OpenBSD 7.x counterpart's
# synopsis and the files and formats it documents. spamdb's -Y is the
# FreeBSD port's (7.x has -adGTt): greyctl's row says so.
OBSD_ROWS = {
    "spamd/spamd.8": [
        "Fl 4", "Fl 5", "Fl b", "Fl d", "Fl v", "Fl B", "Fl C", "Fl c",
        "Fl G", "Fl h", "Fl K", "Fl l", "Fl M", "Fl n", "Fl p", "Fl S",
        "Fl s", "Fl w", "Fl Y", "Fl y",
        "Pa /etc/mail/spamd.conf", "Pa /etc/mail/spamd.alloweddomains",
        "Pa /etc/mail/spamd.key", "Pa /var/db/spamd",
        "Li <spamd-white>", "Li <spamd>", "Li <spamd-greytrap>"],
    "spamd/spamd-setup.8": [
        "Fl b", "Fl D", "Fl d", "Fl n", "Pa /etc/mail/spamd.conf",
        "Li <spamd>", "Cm method=ftp"],
    "spamd/spamd.conf.5": [
        "Cm all", "Cm black", "Cm white", "Cm msg", "Cm method", "Cm file",
        "Cm tc", "Li \\eC", "compression", "Pa /etc/mail/spamd.conf"],
    "greydb/greyctl.8": [
        "Fl a", "Fl d", "Fl G", "Fl T", "Fl t", "Fl Y", "Ar keys",
        "Li GREY|ip|helo|from|to|...", "Pa /var/db/spamd"],
    "pf-sync/greylogd.8": [
        "Fl D", "Fl I", "Fl i", "Fl l", "Fl W", "Fl Y", "Pa /var/db/spamd",
        "Pa /etc/mail/spamd.key", "Li <spamd-white>"],
}
OBSD_STATUS = ("same", "differs", "ours only", "not in")


def obsd_table(text):
    """the rows of the COMING FROM OPENBSD section: [(first cell, here)],
    or a string saying why there are none"""
    m = re.search(r"^\.Sh COMING FROM OPENBSD\n(.*?)^(\.Sh [^\n]*)", text,
                  re.S | re.M)
    if not m:
        return "no .Sh COMING FROM OPENBSD section"
    if m.group(2) != ".Sh SEE ALSO":
        return "the section is followed by %r, not .Sh SEE ALSO" % m.group(2)
    rows, cur = [], None
    for ln in m.group(1).split("\n"):
        if ln.startswith(".It "):
            first, _, here = ln[4:].partition(" Ta")
            cur = [first.strip(), here.strip()]
            rows.append(cur)
        elif ln.startswith(".El"):
            cur = None
        elif cur is not None and not cur[1]:
            cur[1] = ln.strip()
    if not rows:
        return "no .It rows in the section"
    return rows[1:] if rows[0][0].startswith("Sy ") else rows


def obsd_sections():
    """each manual's COMING FROM OPENBSD table names the counterpart's
    flags and files, and each row says what it is here"""
    for rel, needles in OBSD_ROWS.items():
        rows = obsd_table(read(rel))
        if isinstance(rows, str):
            notok("%s: COMING FROM OPENBSD before SEE ALSO" % rel, rows)
            continue
        ok("%s: COMING FROM OPENBSD before SEE ALSO" % rel)
        firsts = [r[0] for r in rows]
        missing = [n for n in needles if not any(
            re.search(r"(?:^|\s)%s(?:\s|$)" % r"\s+".join(
                re.escape(w) for w in n.split()), c) for c in firsts)]
        check("%s: the table names every OpenBSD flag and file" % rel,
              not missing, "missing rows: %s" % ", ".join(missing))
        bad = [r[0] for r in rows if not r[1].startswith(OBSD_STATUS)]
        check("%s: every row says same, differs or ours only" % rel,
              not bad, "rows without a status: %s" % ", ".join(bad))


def main():
    obsd_sections()
    if not os.access(SETUP, os.X_OK):
        skip("deploy_docs", "%s not built" % SETUP)
        return R.status()
    conf_loads()
    docs_consistent()
    return R.status()


if __name__ == "__main__":
    sys.exit(main())
