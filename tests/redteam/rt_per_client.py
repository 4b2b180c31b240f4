#!/usr/bin/env python3
"""rt_per_client.py - red team: --max-per-client across engines and IPv6
prefixes (issue 14, per-client caps).

Before the fix the cap was counted per engine and per IPv6 /128:
  - -W 4 --max-per-client 3: 12 connections from 127.0.0.5 all got a
    banner (3 per engine); now 3 do, the rest get "421 4.7.0 Too many
    connections" (what engine.c answers past the cap) and are closed;
  - two addresses of one IPv6 /64 (fd99::1 and fd99::2, in a network
    namespace: needs root) each got 3; now they share the 3, and an
    address in another /64 (fd99:0:0:1::1) still gets its own 3.
Connections are held open while counted; counts only, no timing.
"""
import ctypes
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.environ.get("TOP") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "helpers"))
import fault_lib as fl  # noqa: E402

R = fl.Results()
PORTS = (15600, 15799)


def is_binary(path):
    """path is an ELF file, not run.sh's valgrind wrapper script"""
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


SANDBOX = ["--seccomp", "kill"] if is_binary(fl.SPAMD) else []

# Open n connections from each source (held open), print banners and
# refusals: "banner=N refused=N" per source, in order.
CLIENT = r'''
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held = []
for src in sys.argv[4:]:
    got = {"220": 0, "421": 0, "none": 0}
    for i in range(n):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(20)
        held.append(s)
        try:
            s.bind((src, 0))
            s.connect((dst, port))
            ln = s.makefile("rb").readline()
            got[ln[:3].decode() if ln[:3] in (b"220", b"421") else "none"] += 1
        except OSError:
            got["none"] += 1
    print("%s banner=%d refused=%d none=%d" % (src, got["220"], got["421"],
                                               got["none"]))
    sys.stdout.flush()
for s in held:
    s.close()
'''


def run_client(tmp, dst, port, n, srcs, prefix=()):
    path = os.path.join(tmp, "client.py")
    with open(path, "w") as f:
        f.write(CLIENT)
    r = subprocess.run(list(prefix) + [sys.executable, path, dst, str(port),
                                       str(n)] + list(srcs),
                       capture_output=True, text=True, timeout=fl.slow(120))
    out = {}
    for ln in r.stdout.splitlines():
        p = ln.split()
        out[p[0]] = {k: int(v) for k, v in (x.split("=") for x in p[1:])}
    return out, r.stderr[-300:]


def engines_up(d, workers):
    for _ in range(int(fl.slow(200))):
        if d.proc.poll() is not None:
            return False
        if d.logtext().count("event=engine-start") >= workers and \
                "event=writer_start" in d.logtext():
            return True
        time.sleep(0.1)
    return False


def across_engines():
    d = fl.Spamd("rt-perclient", workers=4, ports=PORTS,
                 extra=SANDBOX + ["--max-per-client", "3"])
    try:
        if not R.check("spamd -W 4 --max-per-client 3 starts",
                       engines_up(d, 4), d.log_tail(3)):
            return
        out, err = run_client(d.tmp, "127.0.0.1", d.port, 12, ["127.0.0.5"])
        got = out.get("127.0.0.5", {})
        R.check("12 connections from 127.0.0.5: 3 banners across 4 engines",
                got.get("banner") == 3, "%s %s" % (got, err))
        R.check("... the other 9 get 421 Too many connections",
                got.get("refused") == 9, str(got))
        # all closed: the cap is free again (released on close)
        fl.wait_for(lambda: d.count("event=disconnect") >= 3, fl.slow(10))
        out, err = run_client(d.tmp, "127.0.0.1", d.port, 3, ["127.0.0.5"])
        R.check("after they closed, 127.0.0.5 gets 3 again",
                out.get("127.0.0.5", {}).get("banner") == 3, str(out))
        R.check("no child died", "signal=" not in d.logtext(), d.log_tail(2))
    finally:
        d.cleanup()


def enter_ns(ns):
    """setns(2) into the named network namespace; runs before exec"""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "setns " + ns)
    os.close(fd)


def ipv6_prefix():
    ns = "rtpc-%d" % os.getpid()
    if subprocess.run(["ip", "netns", "add", ns]).returncode != 0:
        R.notok("IPv6 /64 shares the cap", "ip netns add failed")
        return
    d = None
    try:
        ex = ["ip", "netns", "exec", ns]
        subprocess.run(ex + ["ip", "link", "set", "lo", "up"], check=True)
        for a in ("fd99::1", "fd99::2", "fd99:0:0:1::1"):
            subprocess.run(["ip", "-n", ns, "addr", "add", a + "/128",
                            "dev", "lo", "nodad"], check=True)
        d = fl.Spamd("rt-perclient6", workers=2, ports=PORTS,
                     listen=("::1",), extra=SANDBOX + [
                         "--max-per-client", "3"],
                     preexec=lambda: enter_ns(ns))
        if not R.check("spamd starts in the namespace", engines_up(d, 2),
                       d.log_tail(3)):
            return
        out, err = run_client(d.tmp, "::1", d.port, 3,
                              ["fd99::1", "fd99::2", "fd99:0:0:1::1"], ex)
        a, b, c = (out.get(x, {}).get("banner") for x in
                   ("fd99::1", "fd99::2", "fd99:0:0:1::1"))
        R.check("fd99::1 and fd99::2 (one /64) share 3 connections",
                a == 3 and b == 0, "%s %s" % (out, err))
        R.check("fd99:0:0:1::1 (another /64) has its own 3", c == 3, str(out))
    finally:
        if d is not None:
            d.cleanup()
        subprocess.run(["ip", "netns", "del", ns])


def main():
    if not os.path.exists(fl.SPAMD):
        R.notok("spamd built", fl.SPAMD + " missing (make)")
        return 1
    across_engines()
    if os.geteuid() == 0 and shutil.which("ip"):
        ipv6_prefix()
    else:
        R.skip("IPv6 /64 shares the cap", "needs root and ip netns")
    return R.status()


if __name__ == "__main__":
    sys.exit(main())
