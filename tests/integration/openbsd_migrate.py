#!/usr/bin/env python3
"""openbsd_migrate.py - the README's "Moving a host from OpenBSD", followed.

The commands are read from the README's two sh blocks under that heading
(so text and test cannot drift): every command there must be one this
script knows how to follow, and it follows each with the paths moved
under a temporary directory (/etc/mail, /tmp, /var/db/spamd), $BUILD's
programs for the installed ones, and loopback (PORTS 24500-24999):
  - "spamdb > /tmp/spamdb.dump": a dump as OpenBSD's spamdb prints it
    (WHITE, GREY with <Mixed@Case> paths, TRAPPED, SPAMTRAP), times around
    now; the tar line packs an OpenBSD-shaped spamd.conf (a file black
    list and a white list cut out of it), spamd.alloweddomains, spamd.key
    and the list files;
  - on "Linux": the tar is unpacked, the key chmod'ed, greyctl imports
    the dump and prints stats, nft checks etc/spamd.nft (-c: nothing is
    loaded; root only), spamd starts with the unit's ExecStart flags
    (etc/spamd-tarpit.service.in; --fw file instead of nftables), spamd-setup loads
    the lists (its conf's /etc/mail paths moved, the only edit).
Then: the imported WHITE host is in the firewall set at once, the
imported TRAPPED host is tarpitted with the trap message, the imported
GREY tuple passes on its retry, the imported SPAMTRAP and the allowed
domains trap, the black list tarpits and its white cut-out greylists.
Prints ok / not ok / skip lines; exits 1 on a failure.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "helpers"))
import fault_lib as fl  # noqa: E402

TOP = os.environ.get("TOP") or os.path.dirname(os.path.dirname(HERE))
SETUP = os.path.join(fl.BUILD, "spamd-setup")
PORTS = (24500, 24999)
R = fl.Results()
ok, notok, skip, check = R.ok, R.notok, R.skip, R.check

# An OpenBSD /etc/mail/spamd.conf of the usual shape: a local black
# list with its message and a white list cut out of it.
SPAMD_CONF = r"""# OpenBSD spamd.conf
all:\
	:blocked:override:

blocked:\
	:black:\
	:msg="Your address %A is in the local blocklist\n":\
	:method=file:\
	:file=/etc/mail/blocked.txt:

override:\
	:white:\
	:method=file:\
	:file=/etc/mail/override.txt:
"""
LIST_FILES = {"blocked.txt": "127.0.0.40/29\n",
              "override.txt": "# partners\n127.0.0.41\n"}


def readme_blocks():
    """the sh blocks of the README's walk-through: [[command, ...], ...]
    (comments dropped, '\\' continuations joined)"""
    with open(os.path.join(TOP, "README.md"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^### Moving a host from OpenBSD\n(.*?)(?=^##)", text,
                  re.S | re.M)
    if not m:
        return []
    blocks = []
    for b in re.findall(r"```sh\n(.*?)```", m.group(1), re.S):
        cmds = []
        for ln in b.replace("\\\n", " ").splitlines():
            ln = ln.strip()
            if ln and not ln.startswith("#"):
                cmds.append(re.sub(r"\s+", " ", ln))
        blocks.append(cmds)
    return blocks


def dump(now):
    """what OpenBSD's spamdb prints for this site's database"""
    return "".join([
        "WHITE|127.0.0.21|||%d|%d|%d|3|1\n" % (now - 86400, now - 86400,
                                                now + 30 * 86400),
        # seen an hour ago, passtime over: the next retry passes
        "GREY|127.0.0.22|mx.sender.example|<Alice@Sender.Example>|"
        "<bob@example.org>|%d|%d|%d|1|0\n" % (now - 3600, now - 2100,
                                               now + 3 * 3600),
        "TRAPPED|127.0.0.23|%d\n" % (now + 20 * 3600),
        "SPAMTRAP|trap@example.org\n",
    ])


class Walk:
    """the temporary host pair and what the commands left there"""

    def __init__(self, tmp):
        self.tmp = tmp
        self.obsd_mail = os.path.join(tmp, "obsd", "etc", "mail")
        self.mail = os.path.join(tmp, "linux", "etc", "mail")
        self.xfer = os.path.join(tmp, "xfer")          # /tmp of both
        self.db = os.path.join(tmp, "db")              # /var/db/spamd
        for d in (self.obsd_mail, self.mail, self.xfer):
            os.makedirs(d)
        self.d = None
        self.stats = ""

    def paths(self, cmd, mail):
        """cmd with /etc/mail and /tmp/ moved under tmp (one pass: tmp
        itself may be under /tmp)"""
        return re.sub(r"/etc/mail|/tmp/", lambda m: mail if m.group(0) ==
                      "/etc/mail" else self.xfer + "/", cmd)

    def sh(self, cmd, mail, stdin=None):
        r = subprocess.run(["sh", "-c", self.paths(cmd, mail)],
                           capture_output=True, text=True, input=stdin,
                           timeout=fl.slow(60))
        return r.returncode == 0, (r.stderr or r.stdout)[-300:]

    # -- on the OpenBSD host
    def spamdb(self, cmd):
        with open(os.path.join(self.xfer, "spamdb.dump"), "w") as f:
            f.write(dump(int(time.time())))
        return True, ""

    def tar_c(self, cmd):
        with open(os.path.join(self.obsd_mail, "spamd.conf"), "w") as f:
            f.write(SPAMD_CONF)
        with open(os.path.join(self.obsd_mail, "spamd.alloweddomains"),
                  "w") as f:
            f.write("# our domains\nexample.org\n")
        with open(os.path.join(self.obsd_mail, "spamd.key"), "wb") as f:
            f.write(os.urandom(64))
        for name, text in LIST_FILES.items():
            with open(os.path.join(self.obsd_mail, name), "w") as f:
                f.write(text)
        # the README: name the list files after the three
        return self.sh(cmd + " " + " ".join(sorted(LIST_FILES)),
                       self.obsd_mail)

    # -- on the Linux host
    def install(self, cmd):
        return True, ""     # $BUILD's programs stand for the installed

    def tar_x(self, cmd):
        res = self.sh(cmd, self.mail)
        conf = os.path.join(self.mail, "spamd.conf")
        if res[0] and os.path.exists(conf):
            # the one edit: this host's /etc/mail is under tmp
            with open(conf) as f:
                text = f.read()
            with open(conf, "w") as f:
                f.write(text.replace("/etc/mail/", self.mail + "/"))
        return res

    def chmod(self, cmd):
        return self.sh(cmd, self.mail)

    def greyctl_import(self, cmd):
        with open(os.path.join(self.xfer, "spamdb.dump")) as f:
            data = f.read()
        r = subprocess.run([fl.GREYCTL, "-D", self.db, "import"],
                           input=data, capture_output=True, text=True,
                           timeout=fl.slow(60))
        return r.returncode == 0, r.stderr[-300:]

    def greyctl_stats(self, cmd):
        r = subprocess.run([fl.GREYCTL, "-D", self.db, "stats"],
                           capture_output=True, text=True,
                           timeout=fl.slow(60))
        self.stats = r.stdout
        return r.returncode == 0, r.stderr[-300:]

    def nft(self, cmd):
        if os.geteuid() != 0 or shutil.which("nft") is None:
            return None, "not root or no nft: etc/spamd.nft not checked"
        r = subprocess.run(["nft", "-c", "-f",
                            os.path.join(TOP, "etc", "spamd.nft")],
                           capture_output=True, text=True,
                           timeout=fl.slow(60))
        return r.returncode == 0, r.stderr[-300:]

    def start(self, cmd):
        with open(os.path.join(TOP, "etc", "spamd-tarpit.service.in")) as f:
            m = re.search(r"^ExecStart=(.*)$", f.read(), re.M)
        argv = shlex.split(m.group(1))[1:] if m else []
        extra, i = [], 0
        # the unit's flags; fl.Spamd gives -d, -l and -p for loopback
        while i < len(argv):
            a = argv[i]
            if a in ("-l", "-p"):
                i += 2
                continue
            if a == "--fw":
                extra += ["--fw", "file", "--fw-file", self.fw]
                i += 2
                continue
            if a != "-d":
                extra.append(a)
            i += 1
        os.environ["SPAMD_ALLOWEDDOMAINS"] = os.path.join(
            self.mail, "spamd.alloweddomains")
        self.d = fl.Spamd("migrate", extra=extra, db=self.db, tmp=self.tmp,
                          ports=PORTS, config_port=True)
        try:
            if not self.d.wait_started():
                return False, self.d.log_tail()
        except RuntimeError as e:
            return False, str(e)[-300:]
        return True, ""

    def spamd_setup(self, cmd):
        r = subprocess.run([SETUP, "-f", os.path.join(self.mail,
                                                      "spamd.conf"),
                            "-p", str(self.d.cport), "-s",
                            os.path.join(self.tmp, "setup.state")],
                           capture_output=True, text=True,
                           timeout=fl.slow(60))
        return r.returncode == 0, r.stderr[-300:]


OPENBSD_CMDS = {
    "spamdb > /tmp/spamdb.dump": Walk.spamdb,
    "tar -C /etc/mail -czf /tmp/spamd-etc.tgz spamd.conf "
    "spamd.alloweddomains spamd.key": Walk.tar_c,
}
LINUX_CMDS = {
    "make install PREFIX=/usr/local": Walk.install,
    "tar -C /etc/mail -xzf /tmp/spamd-etc.tgz": Walk.tar_x,
    "chmod 0600 /etc/mail/spamd.key": Walk.chmod,
    "greyctl import < /tmp/spamdb.dump": Walk.greyctl_import,
    "greyctl stats": Walk.greyctl_stats,
    "nft -f /etc/nftables.d/spamd.nft": Walk.nft,
    "systemctl enable --now spamd-tarpit": Walk.start,
    "spamd-setup": Walk.spamd_setup,
}


def follow(w, cmds, known, where):
    """run each README command through its follower; False if one is
    unknown or fails"""
    unknown = [c for c in cmds if c not in known]
    check("%s: every README command is one this test follows" % where,
          not unknown, "unknown %r" % unknown)
    missing = [c for c in known if c not in cmds]
    check("%s: the README still has every command this test follows" %
          where, not missing, "gone %r" % missing)
    if unknown:
        return False
    for c in cmds:
        good, why = known[c](w, c)
        if good is None:
            skip("%s: %s" % (where, c), why)
            continue
        check("%s: %s" % (where, c), good, why)
        if not good:
            return False
    return True


def main():
    blocks = readme_blocks()
    if len(blocks) != 2:
        notok("README: 'Moving a host from OpenBSD' has two sh blocks",
              "found %d" % len(blocks))
        return
    ok("README: 'Moving a host from OpenBSD' has two sh blocks")
    tmp = tempfile.mkdtemp(prefix="spamd-migrate.")
    fl.writer_reach(tmp)
    w = Walk(tmp)
    w.fw = os.path.join(fl.writer_dir(tmp, "fw"), "white")
    try:
        if not follow(w, blocks[0], OPENBSD_CMDS, "OpenBSD host") or \
                not follow(w, blocks[1], LINUX_CMDS, "Linux host"):
            return
        st = os.stat(os.path.join(w.mail, "spamd.key"))
        check("the sync key arrived, mode 0600", st.st_mode & 0o777 ==
              0o600, "mode %o" % (st.st_mode & 0o777))
        check("greyctl stats counts the import",
              "grey=1 white=1 trapped=1 spamtrap=1" in w.stats,
              w.stats[-200:])
        d = w.d
        lines = d.greyctl()
        check("the dump's GREY tuple is stored normalised",
              "GREY|127.0.0.22|mx.sender.example|alice@sender.example|"
              "bob@example.org|" in lines and "SPAMTRAP|trap@example.org"
              in lines and "TRAPPED|127.0.0.23|" in lines, lines[-400:])
        check("the imported WHITE host is in the firewall set at start",
              fl.fw_has(w.fw, "127.0.0.21"), "white file lacks it")

        # lists from spamd-setup and the imported trap list
        d.wait_log("tag=spamd-greytrap prefixes=1", fl.slow(10))
        d.wait_log("tag=blocked", fl.slow(10))
        # smtp_said: banner, HELO, MAIL, RCPT, DATA replies, the rest
        rep = fl.smtp_said(d.port, "127.0.0.23", "bob@example.org")
        check("the imported TRAPPED host is tarpitted with the trap "
              "message", rep[4].startswith("354") and
              "127.0.0.23 has mailed to spamtraps" in rep[5],
              repr(rep[4:]))
        rep = fl.smtp_said(d.port, "127.0.0.42", "bob@example.org")
        check("spamd.conf's black list tarpits with its message",
              rep[4].startswith("354") and
              "450 Your address 127.0.0.42 is in the local blocklist" in
              rep[5], repr(rep[4:]))
        rep = fl.smtp_said(d.port, "127.0.0.41", "bob@example.org")
        check("spamd.conf's white list is cut out of it (greylisted)",
              rep[4].startswith("451"), repr(rep[4:]))

        # OpenBSD typed the paths <Alice@Sender.Example>: a retry the same
        # way matches the imported (normalised) tuple and passes
        code, _ = fl.dialogue(d.port, "127.0.0.22", "mx.sender.example",
                              "Alice@Sender.Example", ["bob@example.org"])
        check("the imported GREY tuple passes on its retry",
              code == 451 and fl.fw_has(w.fw, "127.0.0.22"),
              "DATA %r; white file lacks it" % code)
        fl.dialogue(d.port, "127.0.0.24", "h.example", "x@h.example",
                    ["Trap@Example.org"])
        fl.dialogue(d.port, "127.0.0.25", "h.example", "x@h.example",
                    ["bob@elsewhere.example"])
        ok24 = fl.wait_for(lambda: "TRAPPED|127.0.0.24|" in d.greyctl(),
                           fl.slow(10))
        check("the imported SPAMTRAP traps", ok24, d.log_tail())
        ok25 = fl.wait_for(lambda: "TRAPPED|127.0.0.25|" in d.greyctl(),
                           fl.slow(10))
        check("spamd.alloweddomains traps a recipient outside it", ok25,
              d.log_tail())
    finally:
        if w.d is not None:
            w.d.stop()
            fl.sanitizer_check(R, "openbsd_migrate: no sanitizer report",
                               [w.d.logtext()])
            w.d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
    sys.exit(R.status())
