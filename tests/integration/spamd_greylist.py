#!/usr/bin/env python3
"""spamd_greylist.py - what the greylisting flow does to the firewall, on
loopback, with the file firewall backend standing for the real firewall.
(The dialogue and the records themselves are spamd_dialogue.py's checks;
here they are only the markers the firewall checks wait for.)

Starts $BUILD/spamd -d on 127.0.0.1 (port and config port from
14000-14999, temporary --db-dir, --pass-seconds 1, no stutter,
--fw file --fw-file DIR/white). A client (smtplib from 127.0.0.31) gets 451
at DATA; its tuple is GREY in greyctl; the firewall file does not hold it.
After the pass time the same delivery is retried: the address is WHITE in
greyctl and appears in the firewall file. A client that mails a spamtrap
is TRAPPED and never reaches the file. Restarted on the same database with
the file removed, the startup reconcile writes the WHITE address back.

Fails when build/spamd or build/greyctl does not exist.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as fl  # noqa: E402

SPAMD, GREYCTL = fl.SPAMD, fl.GREYCTL
R = fl.Results()
ok, notok, skip = R.ok, R.notok, R.skip


def check(name, cond, why="condition false"):
    return R.check(name, cond, why)


def Daemon(tmp, name):
    """one spamd -d (ports from 14000-14999) with the file firewall"""
    return fl.file_fw_spamd(tmp, (14000, 14999), ["--pass-seconds", "1"],
                            logname=name + ".err")


def deliver(d, src, helo, frm, to):
    """one delivery attempt from src; the DATA (or first refusal) code"""
    return fl.smtp_deliver(d.port, src, helo, frm, to)


def greyctl(d):
    if not os.access(GREYCTL, os.X_OK):
        return None
    r = subprocess.run([GREYCTL, "-D", d.db], capture_output=True,
                       text=True, timeout=60)
    return r.stdout.splitlines()


def fw_has(d, ip, want=True, secs=10):
    """poll (bounded) until the firewall file holds ip (or not)"""
    return fl.fw_has(d.fw, ip, want, secs)


def main():
    if not os.access(SPAMD, os.X_OK) or not os.access(GREYCTL, os.X_OK):
        notok("spamd greylist pass flow", "build/spamd or build/greyctl "
              "missing (make)")
        return 1
    tmp = tempfile.mkdtemp(prefix="spamd_greylist.")
    d = None
    client, trapper = "127.0.0.31", "127.0.0.32"
    try:
        subprocess.run([GREYCTL, "-D", os.path.join(tmp, "db"), "-T",
                        "-a", "trap@example.org"], capture_output=True,
                       timeout=60)
        d = Daemon(tmp, "first")
        code = deliver(d, client, "mx.sender.example", "alice@sender.example",
                       "bob@example.org")
        lines = greyctl(d) or []
        want = "GREY|%s|mx.sender.example|alice@sender.example|" \
               "bob@example.org|" % client
        # the GREY tuple is the writer's decision on record (the marker):
        # a wrong pass would have reached the file in the same turn
        check("greylisted (451, GREY on record), not in the firewall file",
              code == 451 and any(l.startswith(want) for l in lines) and
              not fw_has(d, client, secs=0),
              "DATA %s; %r" % (code, lines))
        time.sleep(2.2)     # --pass-seconds 1, counted in whole seconds
        code = deliver(d, client, "mx.sender.example", "alice@sender.example",
                       "bob@example.org")
        check("retry after the pass time: delivery still refused here",
              code in (451, -1), "got %s" % code)
        check("passed address reaches the firewall file",
              fw_has(d, client), "file: %s" % d.fw)
        deliver(d, trapper, "h", "x@spam.example", "trap@example.org")
        time.sleep(2.2)     # past the pass time: a retry would pass
        deliver(d, trapper, "h", "x@spam.example", "bob@example.org")
        deliver(d, trapper, "h", "x@spam.example", "bob@example.org")
        # the retries were answered by then; a trapped client's retries
        # are tarpitted and send the writer no tuple, so no later pass
        # can put it in the file: the absence is final here
        lines = greyctl(d) or []
        check("spamtrap: TRAPPED, retried past the pass time, never in "
              "the firewall file",
              any(l.startswith("TRAPPED|%s|" % trapper) for l in lines) and
              not fw_has(d, trapper, secs=0), repr(lines))
        rc = d.stop()
        check("SIGTERM: spamd exits 0", rc == 0, "status %s" % rc)

        # restart on the same database: reconcile writes the set back
        os.unlink(d.fw)
        d = Daemon(tmp, "second")
        check("restart: startup reconcile restores the WHITE address",
              fw_has(d, client), "file: %s" % d.fw)
        check("restart: reconcile counts logged",
              "event=fw_reconcile ok=1 added=1 removed=0" in d.logtext(),
              d.logtext()[-400:])
        rc = d.stop()
        check("restart: spamd exits 0", rc == 0, "status %s" % rc)
        d = None
    except Exception as e:     # a startup failure is one failed check
        notok("spamd greylist pass flow", repr(e))
    finally:
        if d is not None:
            d.stop()
        if R.failed:
            for fn in ("first.err", "second.err"):
                p = os.path.join(tmp, fn)
                if os.path.exists(p):
                    with open(p, errors="replace") as f:
                        sys.stderr.write("--- %s\n%s" % (fn,
                                                         f.read()[-3000:]))
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
