#!/usr/bin/env python3
"""fw_table_missing.py - a missing firewall table is loud, and its return
is noticed.

Inside a network namespace made here (nft tables are per namespace):
etc/spamd.nft is loaded, spamd runs with --fw nftables, --fw-reconcile
3600 (no periodic reconcile during the test), --http-listen on 127.0.0.1
(port 16300-16399) and --log-format json. `greyctl -a` whitelists A (in
spamd-white at once). Then `nft delete table inet spamd` and `greyctl -a`
of B makes the writer's flush fail. Checks:
  - one log line event=fw_table_missing at level "err" naming the table
    (inet spamd) and the backend (nftables), once while the retries go on
    (at least two fw_error lines with it);
  - /metrics: spamd_fw_table_missing 0 before, 1 while it is gone;
  - `greyctl explain A`: a daemon line fw_table_missing=inet spamd and a
    sentence saying the table is missing;
  - the table loaded again: one event=fw_table_back line, A (lost with
    the old table) and B both in spamd-white again without a periodic
    reconcile (the writer refills the sets), the metric back to 0, and
    explain says A is in the set.
  - what `systemctl restart nftables` does (`nft flush ruleset`, then the
    ruleset loaded again by spamd-tarpit-nft.service) with no pass and no
    greyctl meanwhile: the writer's table watch (every 5 s) sees the new
    table (event=fw_table_new) and refills A and B.
Root, `ip netns` and nft needed (skips without root).
"""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as F  # noqa: E402

R = F.Results()
NFT_FILE = os.path.join(F.TOP, "etc", "spamd.nft")
PORTS = (16300, 16399)


def nft(*args):
    return subprocess.run(["nft"] + list(args), capture_output=True,
                          text=True, timeout=30)


def in_white(ip):
    r = nft("list", "set", "inet", "spamd", "spamd-white")
    if r.returncode != 0:
        return False
    return re.search(r"(^|[\s{,])%s([\s,}]|$)" % re.escape(ip),
                     r.stdout) is not None


def greyctl(sp, *args):
    return F.greyctl_run(sp.db, *args)


def inner():
    """The test proper, run inside the namespace."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)
    r = nft("-f", NFT_FILE)
    if r.returncode != 0:
        R.notok("spamd.nft loads in the namespace", r.stderr.strip())
        return 1
    hport = F.pick_port("127.0.0.1", *PORTS)
    sp = F.Spamd("fwtab", ports=PORTS, extra=[
        "--fw", "nftables", "--fw-reconcile", "3600", "--log-format",
        "json", "--http-listen", "127.0.0.1:%d" % hport])
    try:
        run(sp, hport)
    finally:
        sp.cleanup()
    return 1 if R.failed else 0


def run(sp, hport):
    try:
        started = sp.wait_started(ready='"event":"writer_start"')
    except RuntimeError as e:
        R.notok("spamd starts with --fw nftables", str(e))
        return
    if not R.check("spamd starts with --fw nftables", started,
                   sp.log_tail(3)):
        return
    a, b = "127.16.0.1", "127.16.0.2"
    rc, out, err = greyctl(sp, "-a", a)
    R.check("greyctl -a A: in spamd-white", rc == 0 and
            F.wait_for(lambda: in_white(a), F.slow(10)),
            "rc %d %s; %s" % (rc, err, sp.log_tail(3)))
    R.check("metric spamd_fw_table_missing 0 with the table there",
            F.metric(hport, "spamd_fw_table_missing") == "0",
            F.metric(hport, "spamd_fw_table_missing"))

    r = nft("delete", "table", "inet", "spamd")
    R.check("nft delete table inet spamd (under the daemon)",
            r.returncode == 0, r.stderr.strip())
    rc, out, err = greyctl(sp, "-a", b)
    R.check("greyctl -a B with the table gone: exit 0", rc == 0, err)
    F.wait_for(lambda: F.json_events(sp, "fw_table_missing"), F.slow(20), 0.1)
    miss = F.json_events(sp, "fw_table_missing")
    R.check("event=fw_table_missing logged at level err, table inet "
            "spamd, backend nftables",
            len(miss) >= 1 and miss[0].get("level") == "err" and
            miss[0].get("table") == "inet spamd" and
            miss[0].get("backend") == "nftables",
            miss[:1] or sp.log_tail(3))
    # the retries go on (backoff 1, 2 s): the missing line is not repeated
    F.wait_for(lambda: len(F.json_events(sp, "fw_error")) >= 3, F.slow(30), 0.2)
    R.check("fw_table_missing once over %d failed retries" %
            len(F.json_events(sp, "fw_error")),
            len(F.json_events(sp, "fw_error")) >= 3 and
            len(F.json_events(sp, "fw_table_missing")) == 1,
            "%d missing lines" % len(F.json_events(sp, "fw_table_missing")))
    R.check("metric spamd_fw_table_missing 1 while it is gone",
            F.metric(hport, "spamd_fw_table_missing") == "1",
            F.metric(hport, "spamd_fw_table_missing"))
    rc, out, err = greyctl(sp, "explain", a)
    last = out.strip().splitlines()[-1] if out.strip() else ""
    R.check("explain: daemon says fw_table_missing=inet spamd",
            "daemon: fw_table_missing=inet spamd" in out, repr(out[-300:]))
    R.check("explain: the sentence says the table is missing",
            "firewall table inet spamd" in last and "is missing" in last,
            last)

    r = nft("-f", NFT_FILE)
    R.check("table loaded again", r.returncode == 0, r.stderr.strip())
    back = F.wait_for(lambda: F.json_events(sp, "fw_table_back"), F.slow(90), 0.2)
    R.check("event=fw_table_back logged once the table is there",
            bool(back), sp.log_tail(3))
    both = F.wait_for(lambda: in_white(a) and in_white(b), F.slow(30), 0.2)
    R.check("refilled: A (lost with the old table) and B are in "
            "spamd-white again", both, "A %s B %s; %s" % (
                in_white(a), in_white(b), sp.log_tail(3)))
    R.check("metric spamd_fw_table_missing back to 0",
            F.metric(hport, "spamd_fw_table_missing") == "0",
            F.metric(hport, "spamd_fw_table_missing"))
    rc, out, err = greyctl(sp, "explain", a)
    last = out.strip().splitlines()[-1] if out.strip() else ""
    R.check("explain after: A is in the firewall set",
            "and in the firewall set spamd-white: it reaches the real MX"
            in last and
            "fw_table_missing" not in out, last)
    R.check("one fw_table_missing and one fw_table_back line in all",
            len(F.json_events(sp, "fw_table_missing")) == 1 and
            len(F.json_events(sp, "fw_table_back")) == 1,
            "%d / %d" % (len(F.json_events(sp, "fw_table_missing")),
                         len(F.json_events(sp, "fw_table_back"))))

    r1 = nft("flush", "ruleset")
    r2 = nft("-f", NFT_FILE)
    R.check("nft flush ruleset, then the ruleset loaded again: A is gone "
            "from the new set", r1.returncode == 0 and r2.returncode == 0
            and not in_white(a), (r1.stderr + r2.stderr).strip())
    both = F.wait_for(lambda: in_white(a) and in_white(b), F.slow(20), 0.2)
    R.check("flush ruleset and reload, no pass meanwhile: the writer sees "
            "the new table (event=fw_table_new) and refills A and B",
            both and len(F.json_events(sp, "fw_table_new")) == 1,
            "A %s B %s, %d fw_table_new; %s" % (
                in_white(a), in_white(b), len(F.json_events(sp, "fw_table_new")),
                sp.log_tail(3)))
    rc = sp.stop()
    R.check("SIGTERM: exit status 0", rc == 0, "rc %s" % rc)
    F.sanitizer_check(R, "fw_table_missing", [sp.logtext()])


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        return inner()
    if os.geteuid() != 0:
        R.skip("fw table missing", "needs root")
        return 0
    if shutil.which("nft") is None or shutil.which("ip") is None:
        R.notok("fw table missing", "nft or ip not installed "
                "(tests/deps.sh)")
        return 1
    for b in (F.SPAMD, F.GREYCTL):
        if not os.access(b, os.X_OK):
            R.notok("fw table missing", "%s not built" % b)
            return 1
    return F.run_inner_in_netns(R, "fw table missing", "fwtab", 300)


if __name__ == "__main__":
    sys.exit(main())
