#!/usr/bin/env python3
"""fw_ipset_missing.py - a missing ipset set is loud, and its return is
noticed (the ipset side of fw_table_missing.py).

Inside a network namespace made here (ipset sets are per namespace):
  - spamd --fw ipset started without the sets refuses, naming the set and
    the ipset command that makes it (as nftables without its table);
  - with the sets made (white and, for --fw-trap-set, greytrap; IPv4 and
    IPv6), spamd runs with --fw-reconcile 3600 (no periodic reconcile
    during the test), --http-listen and --log-format json, and
    `greyctl -a` whitelists A (in spamd-white at once);
  - `ipset destroy spamd-white` with no pass after it: the writer's watch
    (every 5 s) logs one event=fw_table_missing at level err with
    set=spamd-white backend=ipset; /metrics spamd_fw_table_missing 1;
    `greyctl explain A` names the missing set;
  - `ipset create spamd-white ...` again: event=fw_table_back and A is in
    the new set without any new pass; the metric back to 0;
  - destroyed and created again between two looks (as a restore script
    does): the set's new hash seed is seen (event=fw_table_new), A is
    refilled;
  - the writer ran throughout (ipset runs under its seccomp filter).
Root, `ip netns` and ipset needed (skips without root).
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as F  # noqa: E402

R = F.Results()
PORTS = (16400, 16499)
SETS = [("spamd-white", "inet"), ("spamd-white6", "inet6"),
        ("spamd-greytrap", "inet"), ("spamd-greytrap6", "inet6")]


def ipset(*args):
    return subprocess.run(["ipset"] + list(args), capture_output=True,
                          text=True, timeout=30)


def create(name, fam):
    return ipset("create", name, "hash:ip", "family", fam, "timeout", "0")


def in_white(ip):
    return ipset("test", "spamd-white", ip).returncode == 0


def greyctl(sp, *args):
    return F.greyctl_run(sp.db, *args)


def explain_last(sp, ip):
    """greyctl explain's output and its last line (the sentence)"""
    rc, out, err = greyctl(sp, "explain", ip)
    return out, (out.strip().splitlines()[-1] if out.strip() else err)


def inner():
    """The test proper, run inside the namespace."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)
    extra = ["--fw", "ipset", "--fw-trap-set", "--fw-reconcile", "3600",
             "--log-format", "json"]
    sp = F.Spamd("ipsmiss0", ports=PORTS, extra=extra)
    try:
        rc = sp.proc.wait(timeout=F.slow(30))
    except subprocess.TimeoutExpired:
        rc = None
    log = sp.logtext()
    R.check("started without the sets: spamd refuses, naming the set and "
            "the ipset command", rc not in (None, 0) and
            "ipset set spamd-white is missing" in log and
            "ipset create spamd-white hash:ip" in log,
            "rc %s; %s" % (rc, sp.log_tail(2)))
    sp.cleanup()

    for name, fam in SETS:
        r = create(name, fam)
        if r.returncode != 0:
            R.notok("ipset create %s" % name, r.stderr.strip())
            return 1
    hport = F.pick_port("127.0.0.1", *PORTS)
    sp = F.Spamd("ipsmiss", ports=PORTS, extra=extra + [
        "--http-listen", "127.0.0.1:%d" % hport])
    try:
        run(sp, hport)
    finally:
        sp.cleanup()
    return 1 if R.failed else 0


def run(sp, hport):
    try:
        started = sp.wait_started(ready='"event":"writer_start"')
    except RuntimeError as e:
        R.notok("spamd starts with --fw ipset", str(e))
        return
    if not R.check("spamd starts with --fw ipset", started, sp.log_tail(3)):
        return
    a = "127.16.0.1"
    rc, out, err = greyctl(sp, "-a", a)
    R.check("greyctl -a A: in spamd-white", rc == 0 and
            F.wait_for(lambda: in_white(a), F.slow(10)),
            "rc %d %s; %s" % (rc, err, sp.log_tail(3)))
    R.check("metric spamd_fw_table_missing 0 with the sets there",
            F.metric(hport, "spamd_fw_table_missing") == "0",
            F.metric(hport, "spamd_fw_table_missing"))

    r = ipset("destroy", "spamd-white")
    R.check("ipset destroy spamd-white (under the daemon)",
            r.returncode == 0, r.stderr.strip())
    # no pass, no greyctl: only the writer's watch (5 s) can see it
    F.wait_for(lambda: F.json_events(sp, "fw_table_missing"), F.slow(8), 0.1)
    miss = F.json_events(sp, "fw_table_missing")
    R.check("event=fw_table_missing at level err, set=spamd-white, "
            "backend=ipset, with no update sent",
            len(miss) == 1 and miss[0].get("level") == "err" and
            miss[0].get("set") == "spamd-white" and
            miss[0].get("backend") == "ipset",
            miss or sp.log_tail(3))
    R.check("metric spamd_fw_table_missing 1 while it is gone",
            F.metric(hport, "spamd_fw_table_missing") == "1",
            F.metric(hport, "spamd_fw_table_missing"))
    out, last = explain_last(sp, a)
    R.check("explain: daemon says fw_table_missing=spamd-white, and the "
            "sentence names the missing ipset set",
            "daemon: fw_table_missing=spamd-white" in out and
            "ipset set spamd-white is missing" in last, repr(out[-300:]))

    r = create("spamd-white", "inet")
    R.check("ipset create spamd-white again", r.returncode == 0,
            r.stderr.strip())
    back = F.wait_for(lambda: in_white(a), F.slow(8), 0.1)
    R.check("refilled: A is in the new spamd-white with no new pass",
            back, sp.log_tail(3))
    R.check("one event=fw_table_back set=spamd-white",
            [e.get("set") for e in F.json_events(sp, "fw_table_back")] ==
            ["spamd-white"], F.json_events(sp, "fw_table_back"))
    R.check("metric spamd_fw_table_missing back to 0",
            F.metric(hport, "spamd_fw_table_missing") == "0",
            F.metric(hport, "spamd_fw_table_missing"))
    out, last = explain_last(sp, a)
    R.check("explain after: A is in the firewall set",
            "in the firewall set spamd-white" in last and
            "fw_table_missing" not in out, last)

    # destroyed and made again at once: both within one watch interval
    # (else the watch sees it gone, then back: a refill all the same)
    r1 = ipset("destroy", "spamd-white")
    r2 = create("spamd-white", "inet")
    R.check("destroyed and created again: A is gone from the new set",
            r1.returncode == 0 and r2.returncode == 0 and not in_white(a),
            (r1.stderr + r2.stderr).strip())
    back = F.wait_for(lambda: in_white(a), F.slow(8), 0.1)
    R.check("the new set is seen (fw_table_new, or missing then back) "
            "and A refilled",
            back and len(F.json_events(sp, "fw_table_new")) +
            len(F.json_events(sp, "fw_table_back")) == 2,
            "A %s, %d fw_table_new; %s" % (
                in_white(a), len(F.json_events(sp, "fw_table_new")),
                sp.log_tail(3)))
    # the looks, lists and flushes run ipset under the writer's seccomp
    # filter: a refused call there killed the writer (then restarted)
    died = F.json_events(sp, "child-died")
    R.check("the writer ran throughout: one writer_start, no child died",
            len(F.json_events(sp, "writer_start")) == 1 and not died,
            died[:1] or "%d writer_start" % len(F.json_events(sp, "writer_start")))
    rc = sp.stop()
    R.check("SIGTERM: exit status 0", rc == 0, "rc %s" % rc)
    F.sanitizer_check(R, "fw_ipset_missing", [sp.logtext()])


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        return inner()
    if os.geteuid() != 0:
        R.skip("fw ipset missing", "needs root")
        return 0
    if shutil.which("ipset") is None or shutil.which("ip") is None:
        R.skip("fw ipset missing", "ipset or ip not installed")
        return 0
    for b in (F.SPAMD, F.GREYCTL):
        if not os.access(b, os.X_OK):
            R.notok("fw ipset missing", "%s not built" % b)
            return 1
    return F.run_inner_in_netns(R, "fw ipset missing", "fwipm", 300)


if __name__ == "__main__":
    sys.exit(main())
