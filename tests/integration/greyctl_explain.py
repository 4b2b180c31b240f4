#!/usr/bin/env python3
"""greyctl_explain.py - spamd's control socket and `greyctl explain`.

Starts $BUILD/spamd -d on 127.0.0.1 (ports from 21000-21999, temporary
--db-dir, --pass-seconds 1, --fw file, --fw-reconcile 3600 so no
reconcile runs during the test). Checks `greyctl explain` for an unknown
address, a greylisted one (time until it passes), a whitelisted one in the
firewall file, a trapped one and one on a blacklist loaded over the config
port; that `greyctl -d` of a WHITE address takes it out of the firewall
file at once (bounded poll, no reconcile); that the control socket refuses
a uid other than root and the daemon's (as nobody, when run as root); and
that explain without a daemon says "daemon: not running" and still gives a
sentence from the database alone.

DNSBL zones (a second daemon, ports 47100-47199, with --dns-server at the
loopback DNS responder of tests/integration/dnsbl.py on a port there):
a listed address shows listed=yes with the answer and the sentence names
the zone; an unlisted one listed=no (an answer outside the zone's codes
too); a zone whose server never answers shows listed=timeout and explain
still ends; without zones the daemon says dnsbl=off; after SIGHUP with a
changed --dnsbl-file the new zone shows, and a broken file keeps it;
clients that hang up mid-lookup (the lookup bound too: the ninth at once
is refused as busy) leave the writer running and answering.

Skips (with the reason) while build/spamd or build/greyctl do not exist.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as fl  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsbl as dnsrv  # noqa: E402  (the loopback DNS responder)

SPAMD, GREYCTL = fl.SPAMD, fl.GREYCTL
PORTS = (21000, 21999)
DNS_PORTS = (47100, 47199)      # the DNSBL part's daemon and responder
R = fl.Results()
ok, notok, skip = R.ok, R.notok, R.skip


def check(name, cond, why="condition false"):
    return R.check(name, cond, why)


def pick_port():
    return fl.pick_port("127.0.0.1", *PORTS)


def Daemon(tmp, extra=()):
    """one spamd -d with the file firewall and no reconcile in the test"""
    return fl.file_fw_spamd(tmp, PORTS, ["--pass-seconds", "1",
                                         "--fw-reconcile", "3600"] +
                            list(extra), need_writer=True)


def deliver(d, src, to):
    """one delivery attempt from src; the DATA (or first refusal) code"""
    return fl.smtp_deliver(d.port, src, "mx.sender.example",
                           "alice@sender.example", to)


def greyctl(db, *args, pre=()):
    r = subprocess.run(list(pre) + [GREYCTL, "-D", db] + list(args),
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def last_line(out):
    lines = out.strip().splitlines()
    return lines[-1] if lines else ""


def fw_has(d, ip, want=True, secs=10):
    """poll (bounded) until the firewall file holds ip (or not)"""
    return fl.fw_has(d.fw, ip, want, secs)


def load_list(d, text):
    """one list over the config port; the daemon's answer line"""
    return fl.ask(("127.0.0.1", d.cport), text)


def ctl_raw(path, req, pre_uid=None):
    """one request on the control socket (as another uid when asked)"""
    code = ("import socket,sys\n"
            "s=socket.socket(socket.AF_UNIX)\n"
            "s.settimeout(10)\n"
            "s.connect(sys.argv[1])\n"
            "try:\n"
            "    s.sendall(sys.argv[2].encode()+b'\\n')\n"
            "except OSError:\n"
            "    pass\n"
            "d=b''\n"
            "while True:\n"
            "    b=s.recv(4096)\n"
            "    if not b: break\n"
            "    d+=b\n"
            "sys.stdout.write(d.decode())\n")
    pre = [] if pre_uid is None else pre_uid
    r = subprocess.run(pre + [sys.executable, "-c", code, path, req],
                       capture_output=True, text=True, timeout=30)
    return r.stdout + r.stderr


def fake_answer(srv):
    """answer one request on srv with an error, as a broken daemon"""
    srv.settimeout(15)
    try:
        c, _ = srv.accept()
    except OSError:
        return
    try:
        c.settimeout(5)
        c.recv(4096)
        c.sendall(b'error="boom"\nend\n')
    except OSError:
        pass
    finally:
        c.close()


# An unprivileged user that is neither root nor the daemon's user: the
# daemon (and its writer) run as nobody on a test machine, so nobody may
# use the control socket; daemon(1) is in every Debian base system.
OTHER = "daemon"


def as_nobody():
    """a command prefix that runs as OTHER (not root, not spamd's user),
    or None when not root"""
    if os.geteuid() != 0:
        return None
    for tool in (["setpriv", "--reuid=" + OTHER, "--regid=" + OTHER,
                  "--clear-groups"],):
        if shutil.which(tool[0]) is None:
            continue
        r = subprocess.run(tool + ["true"], capture_output=True, timeout=10)
        if r.returncode == 0:
            return tool
    if shutil.which("runuser"):
        r = subprocess.run(["runuser", "-u", OTHER, "--", "true"],
                           capture_output=True, timeout=10)
        if r.returncode == 0:
            return ["runuser", "-u", OTHER, "--"]
    return None


def main():
    for b in (SPAMD, GREYCTL):
        if not os.access(b, os.X_OK):
            skip("greyctl explain", b + " not built yet")
            return 0
    tmp = tempfile.mkdtemp(prefix="greyctl_explain.")
    os.chmod(tmp, 0o755)
    d = None
    grey, white, trapped, black, unknown = ("127.0.0.61", "127.0.0.62",
                                            "127.0.0.63", "127.0.0.64",
                                            "127.0.0.65")
    try:
        # a UDP socket stands for a sync peer that takes deletions
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", pick_port()))
        peer.settimeout(0.5)
        d = Daemon(tmp, ["-Y", "127.0.0.1:%d" % peer.getsockname()[1],
                         "--sync-no-auth", "--sync-deletions"])
        sock = os.path.join(d.db, "spamd.sock")
        check("control socket in the database directory",
              os.path.exists(sock), sock)
        check("control socket mode 0660",
              os.path.exists(sock) and
              (os.stat(sock).st_mode & 0o777) == 0o660,
              oct(os.stat(sock).st_mode) if os.path.exists(sock) else "")

        rc, out, err = greyctl(d.db, "explain", unknown)
        check("unknown: exit 0", rc == 0, "rc %d: %s" % (rc, err))
        check("unknown: sentence says never seen",
              last_line(out).startswith("spamd has never seen %s" % unknown),
              repr(out))
        check("unknown: daemon answers (not in the white set)",
              "daemon: in_white_set=no" in out, repr(out))
        check("no zones configured: daemon says dnsbl=off",
              "daemon: dnsbl=off" in out, repr(out))

        # greylisted: one dialogue; the tuple waits for --pass-seconds 1
        # which may already be over by the time we look: both are fine
        deliver(d, grey, "bob@example.com")
        rc, out, err = greyctl(d.db, "explain", grey)
        s = last_line(out)
        check("greylisted: tuple listed with its recipient",
              "grey: helo=mx.sender.example from=alice@sender.example "
              "to=bob@example.com" in out, repr(out))
        check("greylisted: sentence names the tuple and when it passes",
              s.startswith("%s is greylisted: its tuple to bob@example.com "
                           "passes " % grey) and
              ("if retried after" in s and "(in " in s or
               "at its next retry" in s), repr(s))

        # whitelisted: retry after the pass time
        deliver(d, white, "carol@example.com")
        time.sleep(2.2)
        deliver(d, white, "carol@example.com")
        check("whitelisted: in the firewall file", fw_has(d, white),
              d.logtext()[-300:])
        rc, out, err = greyctl(d.db, "explain", white)
        s = last_line(out)
        check("whitelisted: sentence says it reaches the real MX",
              s.startswith("%s is whitelisted until " % white) and
              "in the firewall set" in s and
              s.endswith("it reaches the real MX."), repr(out))
        check("whitelisted: daemon reports the white set",
              "daemon: in_white_set=yes" in out, repr(out))

        # trapped
        rc, out, err = greyctl(d.db, "-t", "-a", trapped)
        check("trapped: greyctl -t -a", rc == 0, err)
        rc, out, err = greyctl(d.db, "explain", trapped)
        s = last_line(out)
        check("trapped: sentence says tarpitted",
              s.startswith("%s is trapped until " % trapped) and
              s.endswith("it is tarpitted."), repr(out))

        # blacklisted: a list over the config port
        ans = load_list(d, 'dul;"Your address %%A is on dul\\n";inet;1;%s/32'
                        % black)
        check("blacklist: config port accepts the list",
              ans.startswith("ok"), repr(ans))
        rc, out, err = greyctl(d.db, "explain", black)
        s = last_line(out)
        check("blacklisted: sentence names the list",
              s == "%s is on blacklist dul: it is tarpitted." % black,
              repr(out))

        # stats: the daemon's counters follow the database counts
        rc, out, err = greyctl(d.db, "stats")
        check("stats: daemon counters", rc == 0 and
              "proc=writer tuples=" in out, repr(out) + err)

        # greyctl -d of a WHITE address: out of the file at once
        for _ in range(200):        # drop the GREY packets sent so far
            try:
                peer.recv(65536)
            except socket.timeout:
                break
        rc, out, err = greyctl(d.db, "-d", white)
        check("greyctl -d: exit 0, quiet", rc == 0 and out == "" and
              err == "", "rc %d out %r err %r" % (rc, out, err))
        check("greyctl -d: gone from the firewall file without reconcile",
              not fw_has(d, white, want=False, secs=10), d.fw)
        check("greyctl -d: no reconcile ran",
              d.logtext().count("event=fw_reconcile") == 1, d.logtext()[-400:])
        got = False
        end = time.monotonic() + 10
        while not got and time.monotonic() < end:
            try:
                got = socket.inet_aton(white) in peer.recv(65536)
            except socket.timeout:
                pass
        check("greyctl -d: DEL_WHITE sent to the sync peer", got)
        peer.close()

        # a uid other than root and the daemon's is refused
        pre = as_nobody()
        if pre is None:
            skip("control socket refuses another user",
                 "not root, or no setpriv/runuser")
        else:
            rc, out, err = greyctl(d.db, "-a", grey)   # make grey WHITE
            check("refusal setup: grey is WHITE", rc == 0, err)
            fw_has(d, grey, secs=0)
            # the socket file's mode keeps nobody out; open it to reach
            # the daemon's own SO_PEERCRED check
            os.chmod(d.db, 0o755)
            os.chmod(sock, 0o666)
            ans = ctl_raw(sock, "del-white %s" % grey, pre)
            check("control socket refuses another user with a permission "
                  "error",
                  "permission denied" in ans and ans.endswith("end\n"),
                  repr(ans))
            rc, out, err = greyctl(d.db, grey)
            check("refused request: database unchanged",
                  ("WHITE|%s|" % grey) in out, repr(out))
            check("refused request logged", "event=ctl_refused" in d.logtext())
            os.chmod(sock, 0o660)
            ans = ctl_raw(sock, "explain %s" % grey, pre)
            check("another user cannot even connect with mode 0660",
                  "Permission denied" in ans or "permission denied" in ans,
                  repr(ans))

        ans = ctl_raw(sock, "bogus")
        check("control socket: unknown request is an error",
              "error=" in ans and ans.endswith("end\n"), repr(ans))

        rc = d.stop()
        check("SIGTERM: spamd exits 0", rc == 0, "status %s" % rc)
        check("socket file removed at exit", not os.path.exists(sock))
        d = None

        # no daemon: the database alone
        rc, out, err = greyctl(tmp + "/db", "explain", trapped)
        check("stopped: daemon: not running", "daemon: not running" in out,
              repr(out))
        check("stopped: sentence from the database",
              last_line(out).startswith("%s is trapped until " % trapped),
              repr(out))
        rc, out, err = greyctl(tmp + "/db", "-d", "-t", trapped)
        check("stopped: greyctl -d works without the daemon",
              rc == 0 and err == "", err)

        # a socket that answers with an error: warning naming it, exit 0
        rc, out, err = greyctl(tmp + "/db", "-a", unknown)
        fake = socket.socket(socket.AF_UNIX)
        fake.bind(sock)
        # why: greyctl run as root talks as the store's owner (nobody),
        # who must reach the socket, or it warns of a refused connect
        # and never reads the error answered here
        st = os.stat(tmp + "/db")
        os.chown(sock, st.st_uid, st.st_gid)
        fake.listen(1)
        t = threading.Thread(target=fake_answer, args=(fake,))
        t.start()
        rc, out, err = greyctl(tmp + "/db", "-d", unknown)
        t.join(20)
        fake.close()
        check("failing socket: -d exits 0 with a warning naming the socket "
              "and the daemon's error",
              rc == 0 and "warning" in err and sock in err and
              '"boom"' in err,
              "rc %d err %r" % (rc, err))
        rc, out, err = greyctl(tmp + "/db", unknown)
        check("failing socket: the database change was made", rc == 1,
              repr(out))
    except Exception as e:     # a startup failure is one failed check
        notok("greyctl explain", repr(e))
    finally:
        if d is not None:
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    test_dnsbl()
    return 1 if R.failed else 0


class Dns(dnsrv.Server):
    """dnsbl.py's responder (slow.test never answers), on a port of ours"""

    def __init__(self):
        try:
            super().__init__(lo=DNS_PORTS[0], hi=DNS_PORTS[1])
            return
        except TypeError:       # a Server that takes no port range
            pass
        self.udp_max = self.tsock = self.tthread = None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.port = fl.pick_port("127.0.0.1", *DNS_PORTS,
                                 kind=socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.settimeout(0.2)
        self.lock = threading.Lock()
        self.queries = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def answer(self, data):
        """dnsbl.py's answer, but FORMERR for err.test (a DNS error)"""
        reply = super().answer(data)
        with self.lock:
            name = self.queries[-1][0] if self.queries else ""
        if reply is not None and name.endswith(".err.test"):
            flags = (reply[2] << 8 | reply[3]) & ~0xF | 1
            reply = reply[:2] + bytes([flags >> 8, flags & 0xFF]) + reply[4:]
        return reply


def daemon_lines(out):
    """the daemon: lines of greyctl explain, without the prefix"""
    return [ln[len("daemon: "):] for ln in out.splitlines()
            if ln.startswith("daemon: ")]


def hang_up(path, req):
    """send req on the control socket and close without reading"""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    s.sendall(req.encode() + b"\n")
    return s


def half_close(path, req):
    """send req, shut down the sending side, read the whole answer"""
    return fl.ask(path, req, 30)


def test_dnsbl():
    """explain's DNSBL lines and sentence against a loopback DNS server"""
    tmp = tempfile.mkdtemp(prefix="greyctl_explain_dnsbl.")
    os.chmod(tmp, 0o755)
    d = dns = None
    listed, outside, clean, wl = ("127.0.0.2", "127.0.0.4", "127.0.0.66",
                                  "127.0.0.3")
    zfile = os.path.join(tmp, "zones")
    try:
        dns = Dns()
        with open(zfile, "w") as f:
            f.write("# the zone whose server never answers\nslow.test\n")
        d = fl.file_fw_spamd(tmp, DNS_PORTS, [
            "--fw-reconcile", "3600",
            "--dns-server", "127.0.0.1:%d" % dns.port,
            "--dnsbl", "zen.test=127.0.0.2,127.0.0.3",
            "--dnsbl-file", zfile, "--dnsbl-timeout", "2500"],
            need_writer=True)
        sock = os.path.join(d.db, "spamd.sock")
        wpid = d.writer_pid()

        rc, out, err = greyctl(d.db, "explain", listed)
        dl = daemon_lines(out)
        check("dnsbl: explain of a listed address exits 0", rc == 0,
              "rc %d: %s" % (rc, err))
        check("dnsbl: two zones asked", "dnsbl_zones=2" in dl, repr(out))
        check("dnsbl: listed zone shows listed=yes with the answer",
              "dnsbl=zen.test listed=yes answer=127.0.0.2" in dl, repr(out))
        check("dnsbl: silent server shows listed=timeout, explain ends",
              "dnsbl=slow.test listed=timeout" in dl, repr(out))
        check("dnsbl: sentence names the zone and says tarpitted",
              last_line(out) == "%s is listed in DNSBL zone zen.test "
              "(127.0.0.2): it is tarpitted." % listed, repr(last_line(out)))

        ans = half_close(sock, "explain %s" % listed)
        check("dnsbl: client that shuts down its sending side gets the "
              "whole answer: dnsbl lines then end",
              ans.endswith("dnsbl=zen.test listed=yes answer=127.0.0.2\n"
                           "dnsbl=slow.test listed=timeout\nend\n"),
              repr(ans))

        # clients that hang up mid-lookup; the ninth at once is refused
        held = [hang_up(sock, "explain 127.0.0.%d" % (70 + i))
                for i in range(8)]
        fl.wait_for(lambda: dns.count(
            lambda n, t: n.endswith(".slow.test") and
            n.startswith(tuple("%d.0.0.127." % (70 + i)
                               for i in range(8)))) >= 8, 5)
        ans = ctl_raw(sock, "explain 127.0.0.80")
        check("dnsbl: more than 8 lookups at once: busy, still ends",
              'dnsbl_error="busy' in ans and ans.endswith("end\n"),
              repr(ans))
        for s in held:
            s.close()
        check("dnsbl: hung-up clients cancel their lookups",
              d.wait_log("event=ctl_gone", 5, count=8),
              "%d ctl_gone lines" % d.count("event=ctl_gone"))
        rc, out, err = greyctl(d.db, "explain", listed)
        check("dnsbl: writer still answers after the hang-ups",
              "dnsbl=zen.test listed=yes answer=127.0.0.2" in
              daemon_lines(out), repr(out) + err)
        check("dnsbl: same writer process (no crash, no restart)",
              wpid is not None and d.writer_pid() == wpid,
              "writer %s -> %s: %s" % (wpid, d.writer_pid(), d.log_tail()))

        # SIGHUP with a changed zone file: the new zone shows
        with open(zfile, "w") as f:
            f.write("bl.test\nerr.test\n")
        n = d.count("proc=writer-explain ok=1")
        d.proc.send_signal(signal.SIGHUP)
        check("dnsbl: SIGHUP reloads explain's zones",
              d.wait_log("proc=writer-explain ok=1", 10, count=n + 1),
              d.log_tail())
        rc, out, err = greyctl(d.db, "explain", listed)
        dl = daemon_lines(out)
        check("dnsbl: after SIGHUP the new zone shows, the old one not",
              "dnsbl=bl.test listed=yes answer=127.0.0.2" in dl and
              not any(x.startswith("dnsbl=slow.test") for x in dl),
              repr(out))
        check("dnsbl: a DNS error shows listed=error",
              "dnsbl=err.test listed=error" in dl, repr(out))
        check("dnsbl: sentence names both listing zones",
              last_line(out) == "%s is listed in DNSBL zones zen.test "
              "(127.0.0.2), bl.test (127.0.0.2): it is tarpitted." % listed,
              repr(last_line(out)))
        rc, out, err = greyctl(d.db, "explain", clean)
        dl = daemon_lines(out)
        check("dnsbl: unlisted address shows listed=no",
              "dnsbl=zen.test listed=no" in dl, repr(out))
        check("dnsbl: unlisted address: sentence not about a DNSBL",
              last_line(out).startswith("spamd has never seen %s" % clean),
              repr(last_line(out)))
        rc, out, err = greyctl(d.db, "explain", outside)
        check("dnsbl: answer outside the zone's codes is listed=no",
              "dnsbl=zen.test listed=no answer=127.0.0.4" in
              daemon_lines(out), repr(out))

        rc, out, err = greyctl(d.db, "explain", "::1")
        check("dnsbl: IPv6 address looked up in nibble form",
              "dnsbl=zen.test listed=yes answer=127.0.0.2" in
              daemon_lines(out), repr(out))

        # whitelisted hosts pass the firewall: a listing does not matter
        rc, out, err = greyctl(d.db, "-a", wl)
        rc, out, err = greyctl(d.db, "explain", wl)
        check("dnsbl: whitelisted and listed: sentence is about WHITE",
              "dnsbl=zen.test listed=yes answer=127.0.0.3" in
              daemon_lines(out) and
              (last_line(out).startswith("%s is WHITE" % wl) or
               last_line(out).startswith("%s is whitelisted" % wl)),
              repr(out))

        with open(zfile, "w") as f:
            f.write("bad zone here\n")
        n = d.count("event=dnsbl-reload proc=writer ok=0")
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log("event=dnsbl-reload proc=writer ok=0", 10, count=n + 1)
        rc, out, err = greyctl(d.db, "explain", listed)
        check("dnsbl: broken zone file on SIGHUP keeps the zones",
              "dnsbl=bl.test listed=yes answer=127.0.0.2" in
              daemon_lines(out), repr(out))
        rc = d.stop()
        check("dnsbl: SIGTERM: spamd exits 0", rc == 0, "status %s" % rc)
        # the writer's own reports (the chrooted engine's LeakSanitizer
        # cannot read /proc and says so: not ours to judge here)
        fl.sanitizer_check(R, "dnsbl: no sanitizer report (leaks at exit "
                           "included)", [d.logtext()])
        d = None
    except Exception as e:
        notok("greyctl explain dnsbl", repr(e))
    finally:
        if d is not None:
            d.stop()
        if dns is not None:
            dns.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
