#!/usr/bin/env python3
"""rt_sandbox_lists.py - red team: lists of real sizes against engines
under --seccomp kill (issue 14, point 1).

Before the fix, 22 IPv6 prefixes in any list killed the engine: glibc's
qsort asks sysinfo once the array passes 1 KiB and the engine's
allow-list lacked it, so one config-port line (or 22 trapped IPv6
senders) stopped the daemon. Checks, each on a daemon with -W 2 and
--seccomp kill:
  - config port: 21, 22, 10,000 IPv6 prefixes and 100,000 IPv4 ones
    load ("ok"), every engine logs list-loaded with the count, no child
    dies, and a listed client is tarpitted with the list's message;
  - spamd-setup: a spamd.conf whose file list holds 100,000 IPv4 and
    10,000 IPv6 prefixes loads, and no child dies;
  - 1,000 IPv6 senders (addresses on lo inside a network namespace this
    script makes) each RCPT a spamtrap: 1,000 TRAPPED records, every
    engine loads the 1,000-entry trap list, no child dies.
A SIGSYS anywhere fails the run: "signal=31" must not be in the log.
"""
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import time

TOP = os.environ.get("TOP") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "helpers"))
import fault_lib as fl  # noqa: E402

R = fl.Results()
SETUP = os.path.join(fl.BUILD, "spamd-setup")
PORTS = (15000, 15199)


def is_binary(path):
    """path is an ELF file, not run.sh's valgrind wrapper script (which
    sets SPAMD_SECCOMP=off: valgrind cannot run seccomp)"""
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


# the real sandbox wherever it can run; an explicit flag would beat the
# wrapper's SPAMD_SECCOMP=off and stop valgrind's engines at start
SANDBOX = ["--seccomp", "kill"] if is_binary(fl.SPAMD) else []


def v6_prefixes(n):
    """n distinct /48s under 2001:db8::/32 and beyond (documentation
    and unrouted space), each its own prefix."""
    return ["2001:%x:%x::/48" % (0xdb8 + 2 * i // 65536, 2 * i % 65536)
            for i in range(n)]


def v4_prefixes(n):
    """n distinct /32s in 10.0.0.0/8 (none adjacent: every other one)."""
    return ["10.%d.%d.%d/32" % ((2 * i) >> 16 & 255, (2 * i) >> 8 & 255,
                                (2 * i) & 255) for i in range(n)]


def no_deaths(d, name):
    """ok unless a child died (SIGSYS or otherwise) or the daemon left;
    the engines must have run with the kill filter when it could be on"""
    log = d.logtext()
    if SANDBOX and "event=sandbox mode=kill" not in log:
        R.notok(name, "no engine logged event=sandbox mode=kill")
        return
    R.check(name, d.proc.poll() is None and "event=child-died" not in log
            and "signal=31" not in log,
            "daemon %s; %s" % ("running" if d.proc.poll() is None else
                               "exited %s" % d.proc.returncode,
                               d.log_tail(4)))


def loaded(d, tag, count, workers):
    """wait until every engine logged list-loaded tag with count"""
    want = "tag=%s prefixes=%d" % (tag, count)
    return d.wait_log(want, fl.slow(30), workers)


def config_port(workers):
    d = fl.Spamd("rt-lists", extra=SANDBOX, workers=workers,
                 config_port=True, ports=PORTS)
    try:
        d.wait_started()
        for n in (21, 22, 10000):
            line = 'v6n%d;"Listed v6 %d";inet6;%d;%s' % (
                n, n, n, ";".join(v6_prefixes(n)))
            ans = fl.ask(("127.0.0.1", d.cport), line, timeout=60)
            R.check("config port: %d IPv6 prefixes answered ok" % n,
                    ans.startswith("ok"), repr(ans[:200]))
            R.check("config port: %d IPv6 prefixes loaded by every engine"
                    % n, loaded(d, "v6n%d" % n, n, workers), d.log_tail(4))
            no_deaths(d, "config port: %d IPv6 prefixes kill no engine" % n)
        # 100,000 IPv4 and, in the same list, 127.0.0.9 (the client)
        pre = v4_prefixes(100000 - 1) + ["127.0.0.9/32"]
        line = 'big4;"Go away %%A, listed";inet;%d;%s' % (len(pre),
                                                         ";".join(pre))
        ans = fl.ask(("127.0.0.1", d.cport), line, timeout=120)
        R.check("config port: 100,000 IPv4 prefixes answered ok",
                ans.startswith("ok"), repr(ans[:200]))
        R.check("config port: 100,000 IPv4 prefixes loaded by every engine",
                loaded(d, "big4", 100000, workers), d.log_tail(4))
        no_deaths(d, "config port: 100,000 IPv4 prefixes kill no engine")
        said = "\n".join(fl.smtp_said(d.port, "127.0.0.9"))
        R.check("a client in the 100,000-prefix list gets its message",
                "Go away 127.0.0.9, listed" in said, repr(said[-300:]))
        no_deaths(d, "the tarpit dialogue kills no engine")
    finally:
        d.cleanup()


def spamd_setup(workers):
    tmp = tempfile.mkdtemp(prefix="rt-setup.")
    d = fl.Spamd("rt-setup", extra=SANDBOX, workers=workers,
                 config_port=True, ports=PORTS)
    try:
        d.wait_started()
        lst = os.path.join(tmp, "big.txt")
        with open(lst, "w") as f:
            f.write("# 100,000 IPv4 and 10,000 IPv6 prefixes\n")
            f.write("\n".join(v4_prefixes(100000)) + "\n")
            f.write("\n".join(v6_prefixes(10000)) + "\n")
        conf = os.path.join(tmp, "spamd.conf")
        with open(conf, "w") as f:
            f.write("all:\\\n\t:big:\n\nbig:\\\n\t:black:\\\n"
                    "\t:msg=\"Listed by big\\n\":\\\n"
                    "\t:method=file:\\\n\t:file=%s:\n" % lst)
        r = subprocess.run([SETUP, "-f", conf, "-s",
                            os.path.join(tmp, "state"), "-p",
                            str(d.cport)], capture_output=True, text=True,
                           timeout=fl.slow(300))
        R.check("spamd-setup loads 100,000 IPv4 + 10,000 IPv6 prefixes",
                r.returncode == 0, "exit %d: %s" % (r.returncode,
                                                    r.stderr[-300:]))
        R.check("every engine holds the 110,000 prefixes",
                loaded(d, "big", 110000, workers), d.log_tail(4))
        no_deaths(d, "spamd-setup's big list kills no engine")
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def enter_ns(ns):
    """setns(2) into the named network namespace (Python 3.11 has no
    os.setns); runs in the child before exec"""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "setns " + ns)
    os.close(fd)


def netns_ok():
    return os.geteuid() == 0 and shutil.which("ip") is not None


def trap_v6(workers, n=1000):
    ns = "rtv6-%d" % os.getpid()
    if subprocess.run(["ip", "netns", "add", ns]).returncode != 0:
        R.notok("trap %d IPv6 senders" % n, "ip netns add failed")
        return
    d = None
    try:
        ex = ["ip", "netns", "exec", ns]
        subprocess.run(ex + ["ip", "link", "set", "lo", "up"], check=True)
        batch = "".join("addr add fd99::1:%x/128 dev lo nodad\n" % i
                        for i in range(n))
        subprocess.run(ex + ["ip", "-batch", "-"], input=batch, text=True,
                       check=True)
        tmp = tempfile.mkdtemp(prefix="rt-trap.")
        db = os.path.join(tmp, "db")
        subprocess.run([fl.GREYCTL, "-D", db, "-a", "-T",
                        "trap@example.com"], check=True)
        d = fl.Spamd("rt-trap", extra=SANDBOX,
                     workers=workers, db=db, tmp=tmp, listen=("::1",),
                     ports=PORTS,
                     preexec=lambda: enter_ns(ns))
        # the daemon lives in ns: drive the clients from there too
        client = os.path.join(tmp, "client.py")
        with open(client, "w") as f:
            f.write(CLIENT)
        ok_up = False
        for _ in range(int(fl.slow(150))):
            if d.proc.poll() is not None:
                break
            if d.logtext().count("event=engine-start") >= workers and \
                    "event=writer_start" in d.logtext():
                ok_up = True
                break
            time.sleep(0.1)
        if not R.check("spamd starts in the namespace", ok_up,
                       d.log_tail(4)):
            return
        r = subprocess.run(ex + [sys.executable, client, str(d.port),
                                 str(n)], capture_output=True, text=True,
                           timeout=fl.slow(600))
        R.check("%d IPv6 senders each RCPT the spamtrap" % n,
                r.returncode == 0, r.stdout[-200:] + r.stderr[-300:])
        want = "tag=spamd-greytrap prefixes=%d" % n
        R.check("every engine loads the %d-entry trap list" % n,
                d.wait_log(want, fl.slow(30), workers), d.log_tail(4))
        no_deaths(d, "a trap list of %d IPv6 addresses kills no engine" % n)
        dump = fl.greyctl_dump(db) or []
        R.check("%d TRAPPED records" % n,
                sum(1 for x in dump if x[0] == "TRAPPED") == n,
                "%d" % sum(1 for x in dump if x[0] == "TRAPPED"))
    finally:
        if d is not None:
            d.cleanup()
        subprocess.run(["ip", "netns", "del", ns])


# One RCPT to the spamtrap from each fd99::1:N, inside the namespace.
CLIENT = r'''
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
bad = 0
for i in range(n):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(20)
    try:
        s.bind(("fd99::1:%x" % i, 0))
        s.connect(("::1", port))
        f = s.makefile("rb")
        def reply():
            while True:
                ln = f.readline()
                if not ln or ln[3:4] != b"-":
                    return ln
        reply()
        for c in (b"HELO h%d.example" % i, b"MAIL FROM:<s%d@example.org>" % i,
                  b"RCPT TO:<trap@example.com>", b"QUIT"):
            s.sendall(c + b"\r\n")
            if not reply():
                break
    except OSError as e:
        bad += 1
        print("client %d: %s" % (i, e))
    finally:
        s.close()
sys.exit(1 if bad else 0)
'''


def main():
    if not os.path.exists(fl.SPAMD):
        R.notok("spamd built", fl.SPAMD + " missing (make)")
        return 1
    config_port(2)
    spamd_setup(2)
    if netns_ok():
        trap_v6(2)
    else:
        R.skip("trap 1,000 IPv6 senders", "needs root and ip netns")
    return R.status()


if __name__ == "__main__":
    sys.exit(main())
