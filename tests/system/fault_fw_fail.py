#!/usr/bin/env python3
"""fault_fw_fail.py - the firewall backend fails under the daemon: the
nftables table is deleted while spamd runs, then loaded again.

Everything runs in a network namespace made here (nft tables are per
namespace): etc/spamd.nft is loaded, spamd runs with --fw nftables,
--pass-seconds 1 and --fw-reconcile 3 on 127.0.0.1 inside it. Client A
passes greylisting: its address reaches spamd-white. Then `nft delete
table inet spamd`; client B passes meanwhile. Checks: the writer logs
fw_error with a retry delay that grows (backoff), and keeps answering
(B's dialogues end in 451); once the
table is loaded again, both A (lost with the old table) and B end up in
spamd-white by themselves (retry and reconcile); no process died.
Root, `ip netns` and nft needed (skips otherwise). Ports 13000-13999.
"""
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as F  # noqa: E402

R = F.Results()
NFT_FILE = os.path.join(F.TOP, "etc", "spamd.nft")


def nft(*args):
    return subprocess.run(["nft"] + list(args), capture_output=True,
                          text=True, timeout=30)


def in_white(ip):
    r = nft("list", "set", "inet", "spamd", "spamd-white")
    if r.returncode != 0:
        return False
    return re.search(r"(^|[\s{,])%s([\s,}]|$)" % re.escape(ip),
                     r.stdout) is not None


def pass_client(sp, src, tag):
    """Two dialogues of one tuple, pass time apart: the ip passes."""
    c1 = F.try_dialogue(sp.port, src, tag, 10)
    # past --pass-seconds 1 in whole seconds, by the writer's clock: a
    # slow writer (valgrind, SPAMD_TEST_SLOW) records the first try late
    time.sleep(2.2 * min(F.SLOW, 2))
    c2 = F.try_dialogue(sp.port, src, tag, 10)
    return c1, c2


def inner():
    """The test proper, run inside the namespace."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)
    r = nft("-f", NFT_FILE)
    if r.returncode != 0:
        R.notok("spamd.nft loads in the namespace", r.stderr.strip())
        return 1
    sp = F.Spamd("fw", extra=["--fw", "nftables", "--pass-seconds", "1",
                              "--fw-reconcile", "3"])
    try:
        run(sp)
    finally:
        sp.cleanup()
    return 1 if R.failed else 0


def run(sp):
    if not R.check("spamd starts with --fw nftables", sp.wait_ready(),
                   sp.logtext()[-400:]):
        return
    pids = sorted(sp.tree())
    a, b = "127.16.0.1", "127.16.0.2"
    pass_client(sp, a, "fw-a")
    R.check("client A passed: its address is in spamd-white",
            F.wait_for(lambda: in_white(a), 10), sp.logtext()[-300:])
    r = nft("delete", "table", "inet", "spamd")
    R.check("nft delete table inet spamd (under the daemon)",
            r.returncode == 0, r.stderr.strip())
    c = pass_client(sp, b, "fw-b")
    R.check("with the table gone, B's dialogues still end in 451",
            c == (451, 451), str(c))

    def delays():
        return [int(x) for x in re.findall(r"event=fw_error op=\S+ .*?"
                                           r"retry_secs=(\d+)",
                                           sp.logtext())]
    F.wait_for(lambda: len(set(delays())) >= 2, 20, 0.2)
    d = delays()
    R.check("the failure is logged (fw_error) and retried with a growing "
            "delay (retry_secs %s)" % d[:6],
            len(d) >= 2 and max(d) > min(d), sp.logtext()[-400:])
    r = nft("-f", NFT_FILE)
    R.check("table loaded again", r.returncode == 0, r.stderr.strip())
    both = F.wait_for(lambda: in_white(a) and in_white(b), 90, 0.3)
    R.check("back: A (lost with the old table) and B (passed meanwhile) "
            "are in spamd-white again", both,
            "A %s B %s; %s" % (in_white(a), in_white(b),
                               sp.logtext()[-300:]))
    R.check("reconcile ran after the table came back",
            "event=fw_reconcile ok=1" in sp.logtext(), "no fw_reconcile ok=1")
    R.check("no process died or restarted", sorted(sp.tree()) == pids and
            "event=child-died" not in sp.logtext(),
            "%s -> %s" % (pids, sorted(sp.tree())))
    rc = sp.stop()
    R.check("SIGTERM: exit status 0", rc == 0, "rc %s" % rc)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        return inner()
    if os.geteuid() != 0:
        R.skip("fw failure", "needs root")
        return 0
    # as root, with tests/deps.sh's packages, all of this must be here
    if shutil.which("nft") is None or shutil.which("ip") is None:
        R.notok("fw failure", "nft or ip not installed (tests/deps.sh)")
        return 1
    if not os.access(F.SPAMD, os.X_OK):
        R.notok("fw failure", "%s not built" % F.SPAMD)
        return 1
    return F.run_inner_in_netns(R, "fw failure", "faultfw", 240)


if __name__ == "__main__":
    sys.exit(main())
