#!/usr/bin/env python3
"""openbsd_setup.py - issue 16, points 13-17: an OpenBSD spamd.conf and
spamd-setup habits carry over (openbsd_compat.py has points 1-12).

One spamd (config port, file firewall with --fw-trap-set) on loopback,
spamd-setup run against it and with -n. Each case is named by its point:
  13 a lone '%' in a msg= is text, not a reason to load nothing; a bad
     entry costs that list only (file:line and entry named, exit 1)
  14 a white list cuts only the black list just before it in all:
  15 -D loads once in the background; --reload-every stays, one at a time
     (a second one names the pid file and the holder's pid)
  16 a literal \\n in a msg file is a line break; method=ftp is refused
     naming the entry, the other lists load
  17 spamd.conf(5)'s example reads its host:port; spamd-setup(8) says -b
     writes <--fw-path>.black; spamd --fw-trap-set fills the trap set
PORTS 16400-16499.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as fl  # noqa: E402

TOP = os.environ.get("TOP") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD") or os.path.join(TOP, "build")
SETUP = os.path.join(BUILD, "spamd-setup")
PORTS = (16400, 16499)
R = fl.Results()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)	# the fetcher runs as nobody when root


def setup(args, timeout=60):
    """spamd-setup args: (rc, stdout, stderr)"""
    p = subprocess.run([SETUP] + args, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=fl.slow(timeout))
    return p.returncode, p.stdout, p.stderr


def lines_of(out):
    """the -n output as {tag: line}"""
    return {ln.split(";", 1)[0]: ln for ln in out.splitlines()
            if not ln.startswith("#")}


def ours(marker):
    """pids of processes whose command line holds marker (a path unique
    to this run): what this script started, nothing else"""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if marker.encode() in f.read():
                    pids.append(int(d))
        except OSError:
            pass
    return pids


def point13_14_16(tmp, d):
    """the -n cases: message escapes, bad entries, white list order"""
    write(os.path.join(tmp, "b1.txt"), "192.0.2.0/24\n")
    write(os.path.join(tmp, "b2.txt"), "198.51.100.0/24\n")
    write(os.path.join(tmp, "w.txt"), "192.0.2.7\n198.51.100.5\n")
    write(os.path.join(tmp, "m16.txt"), "First line\\nsecond line\n")
    conf = os.path.join(tmp, "n.conf")
    write(conf, "all:\\\n\t:pct:b1:b2:w:file16:broken:ftp16:tail:\n"
          "pct:black:msg=\"100%% spam, %%A\":file=%(t)s/b1.txt:\n"
          "b1:black:msg=\"b1\":file=%(t)s/b1.txt:\n"
          "b2:black:msg=\"b2\":file=%(t)s/b2.txt:\n"
          "w:white:file=%(t)s/w.txt:\n"
          "file16:black:msg=%(t)s/m16.txt:file=%(t)s/b2.txt:\n"
          "broken:black:file=%(t)s/b1.txt:msg=\"no end:\n"
          "ftp16:black:msg=\"f\":method=ftp:file=ftp.example.org/x:\n"
          "tail:black:msg=\"tail\":file=%(t)s/b2.txt:\n"
          % {"t": tmp})
    rc, out, err = setup(["-n", "-f", conf, "-s", os.path.join(tmp, "ns")])
    ln = lines_of(out)
    R.check("13. msg=\"100% spam\" loads, the '%' kept as text",
            ln.get("pct", "").startswith('pct;"100%% spam, %A";inet;1;'),
            "%r | %s" % (out[:200], err[-300:]))
    R.check("13. a bad entry costs that list only: the others load",
            set(ln) == {"pct", "b1", "b2", "file16", "tail"},
            "loaded %s | %s" % (sorted(ln), err[-300:]))
    R.check("13. the bad entry is named with file:line, exit status 1",
            rc == 1 and "%s:8: entry 'broken': unterminated quote" % conf
            in err, "rc %d %s" % (rc, err[-400:]))
    R.check("14. a white list cuts only the black list just before it",
            ln.get("b1", "") == 'b1;"b1";inet;1;192.0.2.0/24' and
            ";198.51.100.5/" not in ln.get("b2", "x") and
            ";198.51.100.4/32;198.51.100.6/31;" in ln.get("b2", ""),
            "b1 %r b2 %r" % (ln.get("b1"), ln.get("b2", "")[:120]))
    wconf = os.path.join(tmp, "w.conf")
    write(wconf, "all:w:b1:\nw:white:file=%(t)s/w.txt:\n"
          "b1:black:msg=\"b1\":file=%(t)s/b1.txt:\n" % {"t": tmp})
    rc, wout, werr = setup(["-n", "-f", wconf, "-s",
                            os.path.join(tmp, "ws")])
    R.check("14. a white list with no black list before it: cuts nothing, "
            "said", rc == 0 and wout == 'b1;"b1";inet;1;192.0.2.0/24\n'
            and "list=w event=white-unused" in werr,
            "rc %d %r %s" % (rc, wout, werr[-200:]))
    R.check("16. a literal \\n in a msg file is a line break",
            ln.get("file16", "").startswith(
                'file16;"First line\\nsecond line\\n";'),
            repr(ln.get("file16", "")[:80]))
    R.check("16. method=ftp: refused naming the entry",
            "entry 'ftp16': method ftp is not supported" in err,
            err[-300:])
    # the same messages, as a blacklisted client gets them
    write(os.path.join(tmp, "e2e1.txt"), "127.0.16.41\n")
    write(os.path.join(tmp, "e2e2.txt"), "127.0.16.42\n")
    econf = os.path.join(tmp, "e.conf")
    write(econf, "all:pct:file16:\n"
          "pct:black:msg=\"100%% spam, %%A\":file=%(t)s/e2e1.txt:\n"
          "file16:black:msg=%(t)s/m16.txt:file=%(t)s/e2e2.txt:\n"
          % {"t": tmp})
    rc, out, err = setup(["-f", econf, "-s", os.path.join(tmp, "es"),
                          "-p", str(d.cport)])
    d.wait_log("tag=file16", 10)
    said1 = fl.smtp_said(d.port, "127.0.16.41", timeout=20)[-1]
    said2 = fl.smtp_said(d.port, "127.0.16.42", timeout=20)[-1]
    R.check("13. the client is told \"100% spam\"",
            rc == 0 and "450 100% spam, 127.0.16.41\r\n" in said1,
            "rc %d %r %s" % (rc, said1[-120:], err[-200:]))
    R.check("16. the msg file's \\n gives two reply lines",
            "450-First line\r\n450 second line\r\n" in said2,
            repr(said2[-120:]))


def point15(tmp, d):
    """-D once in the background; --reload-every one at a time"""
    write(os.path.join(tmp, "d15.txt"), "192.0.2.15\n")
    conf = os.path.join(tmp, "d15.conf")
    write(conf, "all:d15:\nd15:black:msg=\"x\":file=%s/d15.txt:\n" % tmp)
    rc = subprocess.run([SETUP, "-D", "-f", conf, "-s",
                         os.path.join(tmp, "d15.state"), "-p",
                         str(d.cport)], stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        timeout=fl.slow(30)).returncode
    loaded = d.wait_log("tag=d15", 10)
    gone = fl.wait_for(lambda: ours(conf) == [], 10)
    left = ours(conf)
    for pid in left:	# the old resident -D: ours, by its unique conf
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    R.check("15. -D loads once in the background and exits",
            rc == 0 and loaded and gone, "rc %d loaded %s still running %s"
            % (rc, loaded, left))
    pidf = os.path.join(tmp, "setup.pid")
    errp = os.path.join(tmp, "reloader.err")
    args = ["--reload-every", "3600", "--pid-file", pidf, "-f", conf,
            "-s", os.path.join(tmp, "r15.state"), "-p", str(d.cport)]
    with open(errp, "w") as e:
        first = subprocess.Popen([SETUP, "-d"] + args,
                                 stdin=subprocess.DEVNULL, stdout=e, stderr=e)
    try:
        up = fl.wait_for(lambda: "event=reload" in open(errp).read(), 10)
        rc2, _, err2 = setup(args, timeout=30)
        R.check("15. a second --reload-every refuses, naming the pid file "
                "and the holder",
                up and first.poll() is None and rc2 == 1 and
                "%s is locked by pid %d" % (pidf, first.pid) in err2,
                "up %s rc %d %r" % (up, rc2, err2[-300:]))
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGTERM)
        try:
            first.wait(fl.slow(10))
        except subprocess.TimeoutExpired:
            first.kill()
            first.wait(10)


def point17(tmp, d, fwfile):
    """the manuals' claims, checked against the code"""
    man5 = open(os.path.join(TOP, "spamd", "spamd.conf.5")).read()
    ex = man5.split(".Sh EXAMPLES", 1)[-1].split(".Bd -literal", 1)[-1]
    ex = ex.split(".Ed", 1)[0].split("\n", 1)[-1].replace("\\e", "\\")
    conf = os.path.join(tmp, "man5.conf")
    write(conf, ex)
    rc, out, err = setup(["-n", "-d", "-f", conf, "-s",
                          os.path.join(tmp, "m5.state")])
    m = re.search(r'list=peer-traps event=fetch method=http file="([^"]*)"',
                  err)
    R.check("17. spamd.conf(5)'s example reads host:port for peer-traps",
            m is not None and m.group(1) == "mx2.example.org:8080/traplist",
            m.group(1) if m else err[-300:])
    # -b writes <--fw-path>.black; the manual says so
    write(os.path.join(tmp, "b17.txt"), "192.0.2.17\n")
    bconf = os.path.join(tmp, "b17.conf")
    write(bconf, "all:b17:\nb17:black:msg=\"x\":file=%s/b17.txt:\n" % tmp)
    fwp = os.path.join(tmp, "fw17")
    rc, out, err = setup(["-b", "--fw-backend", "file", "--fw-path", fwp,
                          "-f", bconf, "-s", os.path.join(tmp, "b17.state"),
                          "-p", str(d.cport)])
    man8 = open(os.path.join(TOP, "spamd", "spamd-setup.8")).read()
    item = man8.split(".It Fl \\-fw\\-path", 1)[-1].split(".It ", 1)[0]
    try:
        black = open(fwp + ".black").read()
    except OSError:
        black = ""
    R.check("17. -b writes <--fw-path>.black, as spamd-setup(8) says",
            rc == 0 and "192.0.2.17" in black and ".black" in item,
            "rc %d black %r manual %r" % (rc, black[:80], item[:200]))
    # --fw-trap-set: the option spamd.nft names exists and fills the set
    nft = open(os.path.join(TOP, "etc", "spamd.nft")).read()
    subprocess.run([fl.GREYCTL, "-D", d.db, "-T", "-a", "trap@example.com"],
                   capture_output=True, timeout=fl.slow(30))
    fl.dialogue(d.port, "127.0.16.43", "h", "a@b", ["trap@example.com"])

    def trapped():
        try:
            return "127.0.16.43" in open(fwfile + ".trap").read()
        except OSError:
            return False
    R.check("17. spamd --fw-trap-set puts a trapped host in the trap set, "
            "as etc/spamd.nft says", "--fw-trap-set" in nft and
            fl.wait_for(trapped, 10), d.log_tail())


def main():
    tmp = tempfile.mkdtemp(prefix="openbsd_setup.")
    fl.writer_reach(tmp)
    fwfile = os.path.join(fl.writer_dir(tmp, "fwd"), "fw")
    d = fl.Spamd("obsd-setup", ports=PORTS, config_port=True, tmp=tmp,
                 extra=["--fw", "file", "--fw-file", fwfile,
                        "--fw-trap-set"])
    try:
        try:
            d.wait_started()
        except RuntimeError as e:
            R.notok("17. spamd starts with --fw-trap-set", e)
            return R.status()
        point13_14_16(tmp, d)
        point15(tmp, d)
        point17(tmp, d, fwfile)
    finally:
        d.stop()
        fl.sanitizer_check(R, "no sanitizer report", paths=[d.logpath])
        d.cleanup()
    return R.status()


if __name__ == "__main__":
    sys.exit(main())
