#!/usr/bin/env python3
"""deploy_unit.py DEB UNIT_SANDBOX - the .deb installed as an operator
installs it, and the daemon run under its unit's exact restrictions.

Run by tests/system/package_deb.sh after it built DEB (not on its own: the
build is the costly part and happens once). No systemd runs here (the CI
machine is a container without it as PID 1, and systemd-nspawn is not
installed), so the unit is applied by hand, every value READ FROM THE
INSTALLED UNIT FILE, never copied here:
  - CapabilityBoundingSet  -> setpriv --bounding-set
  - NoNewPrivileges        -> setpriv --no-new-privs
  - SystemCallFilter       -> expanded with `systemd-analyze syscall-filter`
    (groups within groups too), loaded by tests/helpers/unit_sandbox.c
    (libseccomp) as systemd would: anything else kills (SIGSYS)
  - RestrictAddressFamilies, MemoryDenyWriteExecute -> unit_sandbox too
  - ExecStart              -> run as written, only the daemon's path
    moved into the scratch root.
The scratch world: the package unpacked (dpkg-deb -x) into ROOT; a copy of
/etc with the package's /etc files in it, and an empty /var, bind-mounted
over /etc and /var in the private mount namespace `ip netns exec` gives
each command, so the postinst (run with stubs for the deb-systemd-*
helpers) creates _spamd, /var/empty and /var/db/spamd there and the unit's
command line needs no --db-dir or --user of ours. The host's /etc and /var
are never written.

In a server namespace and a client namespace on a veth (10.99.N.0/24,
N from the pid), the operator's order (README, "Deploy in front of Postfix
with nftables", first the package's way):
  1. postinst configure: _spamd, /var/empty, /var/db/spamd (0750 _spamd);
  2. the daemon started before the ruleset: it refuses, naming the
     missing table and how to load it (an operator sees it in the
     journal; systemd's Restart= retries);
  3. spamd-tarpit-nft.service's ExecStart loads the ruleset;
  4. spamd-tarpit.service's ExecStart, plus `-S 0 --pass-seconds 2`
     (appended, as a drop-in would: no stutter, a 2 s pass time), starts
     and its engine and writer stay up under the filter;
  5. smtp-sink stands in for Postfix on port 25; client A is greylisted
     (451), retries after the pass time and is let through (250 from
     spamd), lands in spamd-white, and then reaches port 25 (smtp-sink);
  6. `nft flush ruleset` (what nftables.service's restart does), then the
     ruleset unit's ExecStart again (PartOf=nftables.service restarts
     it): within seconds the writer refills spamd-white (A reaches
     smtp-sink again) and a new client C is greylisted again.
Prints ok / not ok lines; exit 1 if one failed.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

FAILED = [False]


def ok(name):
    print("ok - package_deb deploy: %s" % name, flush=True)


def nok(name, why):
    print("not ok - package_deb deploy: %s: %s" % (name, why), flush=True)
    FAILED[0] = True


def check(name, cond, why=""):
    (ok(name) if cond else nok(name, why))
    return cond


def sh(args, timeout=60, **kw):
    return subprocess.run(args, capture_output=True, text=True,
                          timeout=timeout, **kw)


def unit_values(path):
    """the [Service]/[Unit] settings of a unit file: name -> last value"""
    vals = {}
    with open(path, encoding="utf-8") as f:
        for ln in f:
            ln = ln.strip()
            if not ln or ln[0] in "#;[" or "=" not in ln:
                continue
            k, v = ln.split("=", 1)
            # systemd joins repeated list settings; last wins for others
            if k in ("SystemCallFilter", "CapabilityBoundingSet",
                     "RestrictAddressFamilies") and k in vals:
                vals[k] += " " + v
            else:
                vals[k] = v
    return vals


def expand_calls(items, seen=None):
    """SystemCallFilter items to call names (groups expanded)"""
    seen = set() if seen is None else seen
    out = set()
    for it in items:
        if it.startswith("~"):
            raise ValueError("deny-list filters not handled: %s" % it)
        if not it.startswith("@"):
            out.add(it)
            continue
        if it in seen:
            continue
        seen.add(it)
        r = sh(["systemd-analyze", "syscall-filter", it])
        if r.returncode != 0:
            raise ValueError("systemd-analyze syscall-filter %s: %s" %
                             (it, r.stderr.strip()))
        body = [ln.strip() for ln in r.stdout.splitlines()[1:]]
        out |= expand_calls([b for b in body if b and not b.startswith("#")],
                            seen)
    return out


class World:
    """the scratch root, /etc and /var, and the two namespaces"""

    def __init__(self, tmp, deb):
        self.tmp = tmp
        self.deb = deb
        self.root = os.path.join(tmp, "root")
        self.ctl = os.path.join(tmp, "ctl")
        n = os.getpid() % 250 + 1
        self.net = "10.99.%d" % n
        self.srv = "depsrv%d" % os.getpid()
        self.cli = "depcli%d" % os.getpid()
        self.procs = []

    def inroot(self, args):
        """args run in the server namespace with the scratch /etc, /var"""
        t = self.tmp
        script = ("mount --bind %s/etc /etc && mount --bind %s/var /var "
                  "&& exec \"$@\"" % (shlex.quote(t), shlex.quote(t)))
        return ["ip", "netns", "exec", self.srv, "sh", "-c", script,
                "inroot"] + list(args)

    def cli_run(self, args, timeout=60):
        return sh(["ip", "netns", "exec", self.cli] + list(args),
                  timeout=timeout)

    def setup(self):
        r = sh(["dpkg-deb", "-x", self.deb, self.root])
        if r.returncode != 0:
            raise RuntimeError("dpkg-deb -x: " + r.stderr.strip())
        r = sh(["dpkg-deb", "-e", self.deb, self.ctl])
        if r.returncode != 0:
            raise RuntimeError("dpkg-deb -e: " + r.stderr.strip())
        # /etc as the host has it, plus the package's files (dpkg would
        # unpack them there); /var empty
        r = sh(["cp", "-a", "/etc", os.path.join(self.tmp, "etc")])
        if r.returncode != 0:
            raise RuntimeError("cp -a /etc: " + r.stderr.strip())
        r = sh(["cp", "-a", os.path.join(self.root, "etc", "."),
                os.path.join(self.tmp, "etc")])
        if r.returncode != 0:
            raise RuntimeError("cp package /etc: " + r.stderr.strip())
        os.mkdir(os.path.join(self.tmp, "var"), 0o755)
        os.chmod(self.tmp, 0o755)
        for cmd in (["ip", "netns", "add", self.srv],
                    ["ip", "netns", "add", self.cli],
                    ["ip", "link", "add", "ds%d" % os.getpid(), "type",
                     "veth", "peer", "name", "dc%d" % os.getpid()],
                    ["ip", "link", "set", "ds%d" % os.getpid(), "netns",
                     self.srv],
                    ["ip", "link", "set", "dc%d" % os.getpid(), "netns",
                     self.cli],
                    ["ip", "-n", self.srv, "addr", "add", self.net + ".2/24",
                     "dev", "ds%d" % os.getpid()],
                    ["ip", "-n", self.cli, "addr", "add", self.net + ".1/24",
                     "dev", "dc%d" % os.getpid()],
                    ["ip", "-n", self.cli, "addr", "add", self.net + ".3/24",
                     "dev", "dc%d" % os.getpid()],
                    ["ip", "-n", self.srv, "link", "set", "lo", "up"],
                    ["ip", "-n", self.cli, "link", "set", "lo", "up"],
                    ["ip", "-n", self.srv, "link", "set",
                     "ds%d" % os.getpid(), "up"],
                    ["ip", "-n", self.cli, "link", "set",
                     "dc%d" % os.getpid(), "up"]):
            r = sh(cmd)
            if r.returncode != 0:
                raise RuntimeError("%s: %s" % (" ".join(cmd),
                                               r.stderr.strip()))

    def spawn(self, args, log):
        f = open(log, "w")
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=f,
                             stderr=subprocess.STDOUT)
        f.close()
        self.procs.append(p)
        return p

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        for ns in (self.srv, self.cli):
            sh(["ip", "netns", "del", ns])


SMTP_CLIENT = r"""
import smtplib, sys
src, dst = sys.argv[1], sys.argv[2]
try:
    s = smtplib.SMTP(timeout=20, source_address=(src, 0))
    code, banner = s.connect(dst, 25)
    s.helo("client.example.org")
    s.mail("a@example.org")
    code, msg = s.rcpt("b@example.com")
    if code == 250:
        code, msg = s.data(b"Subject: t\r\n\r\nhello\r\n")
    print(code, banner.decode(errors="replace")[:60])
    s.quit()
except smtplib.SMTPResponseException as e:
    print(e.smtp_code, banner.decode(errors="replace")[:60])
except (OSError, smtplib.SMTPException) as e:
    print("error", e)
"""


def smtp(w, src):
    """one delivery attempt from src to the MX address: (code, banner)"""
    r = w.cli_run([sys.executable, "-c", SMTP_CLIENT, src, w.net + ".2"],
                  timeout=60)
    parts = r.stdout.strip().split(" ", 1)
    return parts[0] if parts else "", parts[1] if len(parts) > 1 else \
        r.stderr.strip()[-200:]


def in_white(w, ip):
    r = sh(["ip", "netns", "exec", w.srv, "nft", "list", "set", "inet",
            "spamd", "spamd-white"])
    return r.returncode == 0 and re.search(
        r"(^|[\s{,])%s([\s,}]|$)" % re.escape(ip), r.stdout) is not None


def wait_for(cond, secs, step=0.2):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def run(w, sandbox):
    udir = os.path.join(w.root, "lib", "systemd", "system")
    unit = unit_values(os.path.join(udir, "spamd-tarpit.service"))
    nunit = unit_values(os.path.join(udir, "spamd-tarpit-nft.service"))
    # the restrictions, from the installed unit
    caps = unit.get("CapabilityBoundingSet", "").split()
    bset = ",".join(["-all"] + ["+" + c.lower().replace("cap_", "", 1)
                                for c in caps])
    calls = expand_calls(unit.get("SystemCallFilter", "").split())
    cfile = os.path.join(w.tmp, "syscalls.txt")
    with open(cfile, "w") as f:
        f.write("\n".join(sorted(calls)) + "\n")
    if not check("the unit's restrictions read: %d capabilities, %d "
                 "system calls" % (len(caps), len(calls)),
                 caps and len(calls) > 100 and
                 unit.get("NoNewPrivileges") == "yes",
                 "caps %s calls %d" % (caps, len(calls))):
        return
    sandbox_args = [sandbox, "--syscalls", cfile]
    if unit.get("RestrictAddressFamilies"):
        sandbox_args += ["--families", unit["RestrictAddressFamilies"]]
    if unit.get("MemoryDenyWriteExecute") == "yes":
        sandbox_args.append("--mdwe")
    exec_start = shlex.split(unit.get("ExecStart", ""))
    prog = exec_start[0] if exec_start else ""
    if not check("ExecStart runs %s, which the package holds" % prog,
                 prog.startswith("/") and
                 os.access(w.root + prog, os.X_OK), repr(exec_start)):
        return
    daemon = ["setpriv", "--bounding-set", bset, "--no-new-privs"] + \
        sandbox_args + ["--", w.root + prog] + exec_start[1:] + \
        ["-S", "0", "--pass-seconds", "2"]
    nft_start = shlex.split(nunit.get("ExecStart", ""))

    # 1. the maintainer script, with the systemd helpers stubbed
    stubs = os.path.join(w.tmp, "stubs")
    os.mkdir(stubs)
    for s in ("deb-systemd-helper", "deb-systemd-invoke", "systemctl"):
        with open(os.path.join(stubs, s), "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(os.path.join(stubs, s), 0o755)
    r = sh(w.inroot(["env", "PATH=%s:%s" % (stubs, os.environ["PATH"]),
                     "sh", os.path.join(w.ctl, "postinst"), "configure"]),
           timeout=120)
    st = os.stat(os.path.join(w.tmp, "var", "db", "spamd")) if \
        os.path.isdir(os.path.join(w.tmp, "var", "db", "spamd")) else None
    check("postinst configure: _spamd, /var/empty, /var/db/spamd 0750",
          r.returncode == 0 and st is not None and
          (st.st_mode & 0o777) == 0o750 and
          "_spamd:" in open(os.path.join(w.tmp, "etc", "passwd")).read()
          and os.path.isdir(os.path.join(w.tmp, "var", "empty")),
          "rc %d %s" % (r.returncode, (r.stderr or r.stdout)[-300:]))

    # 2. no ruleset yet: a clear refusal
    r = sh(w.inroot(daemon), timeout=60)
    check("started before the ruleset: exits non-zero, naming the "
          "missing table and how to load it",
          r.returncode != 0 and "missing from table inet spamd" in
          r.stdout + r.stderr and "spamd.nft" in r.stdout + r.stderr,
          "rc %d %s" % (r.returncode, (r.stdout + r.stderr)[-300:]))

    # 3. the ruleset unit
    r = sh(w.inroot(nft_start))
    if not check("spamd-tarpit-nft.service's ExecStart (%s) loads the "
                 "ruleset" % " ".join(nft_start), r.returncode == 0,
                 r.stderr.strip()[-300:]):
        return

    # 4. the daemon under the unit
    sink = w.spawn(["ip", "netns", "exec", w.srv, "smtp-sink", "-u",
                    "postfix", "-c",
                    w.net + ".2:25", "100"],
                   os.path.join(w.tmp, "sink.log"))
    log = os.path.join(w.tmp, "spamd.log")
    d = w.spawn(w.inroot(daemon), log)

    def logtext():
        with open(log, errors="replace") as f:
            return f.read()

    def tail():
        return " | ".join(logtext().strip().splitlines()[-4:])[-600:]
    up = wait_for(lambda: "event=sandbox proc=writer" in logtext() and
                  "event=sandbox mode=kill" in logtext(), 20)
    time.sleep(0.5)
    if not check("the daemon starts under the unit's restrictions (engine "
                 "and writer under their own filters)",
                 up and d.poll() is None, tail()):
        return
    a, c = w.net + ".1", w.net + ".3"
    code, banner = smtp(w, a)
    check("A's first attempt is greylisted (451 from spamd)",
          code == "451", "%s %s" % (code, banner))
    time.sleep(3)
    code, banner = smtp(w, a)
    # as OpenBSD's: the passing attempt still gets 451, the next one
    # goes to the MTA
    check("A's retry after the pass time passes (event=pass)",
          code == "451" and "event=pass ip=%s " % a in logtext(),
          "%s %s; %s" % (code, banner, tail()))
    check("A lands in spamd-white", wait_for(lambda: in_white(w, a), 10),
          tail())
    code, banner = smtp(w, a)
    check("A then reaches port 25 (the MTA, smtp-sink)", code == "250" and
          "spamd" not in banner.lower() and sink.poll() is None,
          "%s %s" % (code, banner))
    bad = [ln for ln in logtext().splitlines()
           if "child-died" in ln or "signal=31" in ln]
    check("no child died (no SIGSYS) so far", bad == [], "; ".join(bad))

    # 6. nftables restarted
    r1 = sh(["ip", "netns", "exec", w.srv, "nft", "flush", "ruleset"])
    r2 = sh(w.inroot(nft_start))
    check("nft flush ruleset, then the ruleset unit again",
          r1.returncode == 0 and r2.returncode == 0,
          (r1.stderr + r2.stderr).strip())
    check("the writer refills spamd-white with A within seconds",
          wait_for(lambda: in_white(w, a), 15), tail())
    code, banner = smtp(w, a)
    check("A reaches port 25 again", code == "250" and
          "spamd" not in banner.lower(), "%s %s" % (code, banner))
    code, banner = smtp(w, c)
    check("a new client C is greylisted again (451)", code == "451",
          "%s %s" % (code, banner))
    bad = [ln for ln in logtext().splitlines()
           if "child-died" in ln or "signal=31" in ln]
    check("the daemon is still up, no child died", d.poll() is None and
          bad == [], "; ".join(bad) or tail())
    d.terminate()
    try:
        rc = d.wait(15)
    except subprocess.TimeoutExpired:
        rc = None
    check("SIGTERM: exit status 0", rc == 0, "rc %s; %s" % (rc, " | ".join(
        logtext().strip().splitlines()[-12:])))


def main():
    if len(sys.argv) != 3:
        print("usage: deploy_unit.py DEB UNIT_SANDBOX", file=sys.stderr)
        return 2
    deb, sandbox = sys.argv[1], sys.argv[2]
    if os.geteuid() != 0:
        print("skip - package_deb deploy: needs root (namespaces, mounts)")
        return 0
    for t in ("ip", "nft", "setpriv", "systemd-analyze", "smtp-sink"):
        if shutil.which(t) is None:
            nok("tools", "%s not installed (tests/deps.sh)" % t)
            return 1
    if not os.access(sandbox, os.X_OK):
        nok("tools", "%s not built (make tests)" % sandbox)
        return 1
    tmp = tempfile.mkdtemp(prefix="deploy_unit.")
    w = World(tmp, deb)
    try:
        w.setup()
        run(w, sandbox)
    except (RuntimeError, ValueError, OSError,
            subprocess.TimeoutExpired) as e:
        nok("setup", str(e))
    finally:
        w.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if FAILED[0] else 0


if __name__ == "__main__":
    sys.exit(main())
