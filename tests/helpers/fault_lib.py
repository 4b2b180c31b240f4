"""fault_lib.py - what the fault injection tests (tests/system/fault_*.py)
and the Python integration scripts (tests/integration/*.py) share: result
lines, free ports (13000-13999 unless a script passes its own range), a
spamd started on loopback with its own temporary directory, SMTP dialogues
over raw sockets and smtplib with timeouts, greyctl dumps, the file
firewall, and CPU time and memory of a process tree read from /proc.
Python 3 stdlib only.

SPAMD_TEST_SLOW (a factor, default 1) stretches every bounded wait here
(wait_for, wait_started, socket and subprocess timeouts, stop): tests/run.sh
sets it when BUILD points at its valgrind wrapper tree, where the daemon
runs 5-30x slower. Scripts scale their own waits with slow(secs).
"""
import json
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("TOP") or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("BUILD") or os.path.join(TOP, "build")
SPAMD = os.path.join(BUILD, "spamd")
GREYCTL = os.path.join(BUILD, "greyctl")
LOADGEN = os.path.join(BUILD, "bench", "loadgen")
PORT_LO, PORT_HI = 13000, 13999


def _slow_factor():
    """SPAMD_TEST_SLOW as a number >= 1 (1 when unset or bad)."""
    try:
        return max(1.0, float(os.environ.get("SPAMD_TEST_SLOW") or 1))
    except ValueError:
        return 1.0


SLOW = _slow_factor()


def slow(secs):
    """secs stretched by SPAMD_TEST_SLOW (for waits sized for native
    speed: a valgrind run is 5-30x slower)."""
    return secs * SLOW


def asan_build(path=None):
    """True when path (default: spamd of BUILD) is an ELF built with
    AddressSanitizer+UBSan (tests/run.sh's sanitize pass); False for the
    plain build and for run.sh's valgrind wrapper scripts."""
    try:
        with open(path or SPAMD, "rb") as f:
            data = f.read()
        return data[:4] == b"\x7fELF" and b"__asan_init" in data
    except OSError:
        return False


def under_valgrind(path=None):
    """True when path (default: spamd of BUILD) is run.sh's valgrind
    wrapper script"""
    try:
        with open(path or SPAMD, "rb") as f:
            data = f.read(4096)
        return data.startswith(b"#!") and b"valgrind" in data
    except OSError:
        return False


# what a sanitizer report starts with (ASan, LSan, UBSan)
# (LeakSanitizer's "has encountered a fatal error" in the chrooted
# engine, which cannot read /proc, is a known limit, not a report)
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer: detected",
                   "runtime error:")


def sanitizer_check(results, name, texts=(), paths=()):
    """One check that no sanitizer report is in texts (log text) or in
    the files paths, printed only where a sanitizer runs (the ASan
    build): in the plain and valgrind passes such a check could not fail
    and would only inflate the count (valgrind's own scan is run.sh's).
    Returns True when clean or not applicable."""
    if not asan_build():
        return True
    texts = list(texts)
    for p in paths:
        try:
            with open(p, errors="replace") as f:
                texts.append(f.read())
        except OSError as e:
            return results.check(name, False, "cannot read %s: %s" % (p, e))
    bad = [ln for t in texts for ln in t.splitlines()
           if any(m in ln for m in SANITIZER_MARKS)]
    return results.check(name, not bad, " | ".join(bad[:3]))


# As root, spamd's writer and spamd-setup's list fetcher drop to an
# unprivileged user (nobody on a test machine), which must reach the
# database, list files and firewall file the tests keep in temporary
# directories: every directory a script makes with tempfile.mkdtemp is
# searchable by others (0711; its files keep their own modes). Scripts
# import this module before they make any.
_mkdtemp = tempfile.mkdtemp


def _mkdtemp_reachable(*args, **kwargs):
    """tempfile.mkdtemp, then 0711 when root (see above)"""
    d = _mkdtemp(*args, **kwargs)
    if os.geteuid() == 0:
        os.chmod(d, 0o711)
    return d


tempfile.mkdtemp = _mkdtemp_reachable


def writer_reach(path):
    """As root, let spamd's writer (it drops to the spamd user, nobody on a
    test machine) search path, a 0700 temporary directory: 0711, the
    files in it stay unreadable to others"""
    if os.geteuid() == 0:
        os.chmod(path, 0o711)


def writer_dir(tmp, name):
    """tmp/name, a directory the writer may write (owned by nobody when
    root: the file firewall backend writes and renames its file there);
    made searchable as writer_reach does"""
    writer_reach(tmp)
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    if os.geteuid() == 0:
        import pwd
        pw = pwd.getpwnam("nobody")
        os.chown(d, pw.pw_uid, pw.pw_gid)
    return d


# Daemons (by name) whose log showed a process killed by its seccomp
# filter (signal 31). An engine or writer that dies so is restarted and
# the daemon serves on, so a test would not notice: Spamd.stop prints a
# "not ok" line and Results.status fails the script.
SIGSYS_SEEN = []


class Results:
    """The ok / not ok / skip lines of one script and its exit status."""

    def __init__(self):
        self.failed = 0

    def ok(self, name):
        print("ok - " + name, flush=True)

    def notok(self, name, why):
        # one line a result: run.sh counts lines, a newline would split it
        self.failed += 1
        print("not ok - %s: %s" % (name, str(why).replace("\n", "\\n")
                                   [:400]), flush=True)

    def skip(self, name, why):
        print("skip - %s: %s" % (name, why), flush=True)

    def check(self, name, cond, why=""):
        """ok or not ok for cond; returns cond"""
        if cond:
            self.ok(name)
        else:
            self.notok(name, why or "condition false")
        return cond

    def status(self):
        """the script's exit status: 1 if anything failed (a SIGSYS a
        daemon of this script logged counts: see Spamd.stop)"""
        return 1 if self.failed or SIGSYS_SEEN else 0


_TAKEN = set()


def _bindable(addr, port, kind=socket.SOCK_STREAM):
    """True if port can be bound (kind: TCP or UDP) on addr, v4 or v6."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, kind)
    try:
        s.bind((addr, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_port(addr="127.0.0.1", lo=PORT_LO, hi=PORT_HI,
              kind=socket.SOCK_STREAM):
    """A port in lo-hi (default 13000-13999) free on addr (one address or
    a list of them), not handed out before; each script passes its own
    range so parallel runs differ."""
    addrs = [addr] if isinstance(addr, str) else list(addr)
    for _ in range(300):
        p = random.randint(lo, hi)
        if p in _TAKEN:
            continue
        if not all(_bindable(a, p, kind) for a in addrs):
            continue
        _TAKEN.add(p)
        return p
    raise RuntimeError("no free port in %d-%d" % (lo, hi))


def wait_for(cond, secs, step=0.05):
    """Poll cond() until true or secs (times SPAMD_TEST_SLOW) pass;
    returns its last value."""
    deadline = time.monotonic() + slow(secs)
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


class Spamd:
    """One daemon on 127.0.0.1 with its own temporary directory.

    ports=(lo, hi) is the script's port range; config_port picks a config
    port there or in cports (else --config-port 0); listen lists the -l
    addresses (the port is free on all; empty: no -l, spamd's default,
    the port checked on 127.0.0.1); stutter is (-S, -s);
    hostname/workers None leave -h/-W to spamd's defaults; nobody adds
    --user nobody when run as root; logname names the log file in tmp."""

    def __init__(self, name, extra=(), db=None, workers=1, preexec=None,
                 tmp=None, verbose=True, ports=(PORT_LO, PORT_HI),
                 config_port=False, hostname="mx.fault.example",
                 nobody=True, logname="spamd.log", listen=("127.0.0.1",),
                 cports=None, stutter=(0, 0), expect_sigsys=False):
        self.name = name
        self.expect_sigsys = expect_sigsys  # a test that makes one
        self.tmp = tmp or tempfile.mkdtemp(prefix="spamd-fault-%s." % name)
        writer_reach(self.tmp)
        self.db = db or os.path.join(self.tmp, "db")
        self.listen = list(listen)
        self.port = pick_port(self.listen or "127.0.0.1", *ports)
        self.cport = (pick_port("127.0.0.1", *(cports or ports))
                      if config_port else 0)
        self.workers = workers or 1
        empty = os.path.join(self.tmp, "empty")
        os.makedirs(empty, exist_ok=True)
        self.logpath = os.path.join(self.tmp, logname)
        self.args = [SPAMD, "-d"] + (["-v"] if verbose else [])
        if hostname is not None:
            self.args += ["-h", hostname]
        self.args += ["-p", str(self.port)]
        for a in self.listen:
            self.args += ["-l", a]
        self.args += ["--config-port", str(self.cport), "--db-dir", self.db,
                      "--chroot", empty, "--commit-window", "50"]
        if workers is not None:
            self.args += ["-W", str(workers)]
        self.args += ["-S", str(stutter[0]), "-s", str(stutter[1])]
        if nobody and os.geteuid() == 0:
            self.args += ["--user", "nobody"]
        self.args += list(extra)
        self.log = open(self.logpath, "w")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log,
                                     preexec_fn=preexec)
        self.pid = self.proc.pid

    def logtext(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def wait_log(self, text, secs, count=1):
        """Poll (bounded) until text is in the log (count times)."""
        return bool(wait_for(lambda: self.logtext().count(text) >= count,
                             secs))

    def wait_started(self, secs=15, writer_secs=10,
                     ready="event=writer_start"):
        """Raise unless the port accepts within secs; then wait for the
        log line ready (by default the writer's start: it has reconciled
        the firewall); True once it is there."""
        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("spamd exited %d: %s" % (
                    self.proc.returncode, self.logtext()[-500:]))
            return self.connectable()
        if not wait_for(up, secs, 0.1):
            raise RuntimeError("spamd did not listen: " +
                               self.logtext()[-500:])
        return self.wait_log(ready, writer_secs)

    def log_tail(self, n=5):
        """The last n log lines joined with ' | ' (for a failure's why)."""
        return " | ".join(self.logtext().strip().splitlines()[-n:])

    def greyctl(self):
        """greyctl -D's dump of this daemon's database, as text."""
        r = subprocess.run([GREYCTL, "-D", self.db], capture_output=True,
                           text=True, timeout=slow(60))
        return r.stdout

    def count(self, event):
        return self.logtext().count(event)

    def wait_ready(self, starts=1, secs=20):
        """Wait for the starts-th round of engines and a connectable port."""
        def ready():
            if self.proc.poll() is not None:
                return True
            return self.count("event=engine-start") >= starts * self.workers
        wait_for(ready, secs)
        if self.proc.poll() is not None:
            return False
        return wait_for(self.connectable, secs)

    def connectable(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), slow(1))
            s.close()
            return True
        except OSError:
            return False

    def children(self):
        """Pids of the daemon's child processes."""
        out = []
        try:
            for t in os.listdir("/proc/%d/task" % self.pid):
                with open("/proc/%d/task/%s/children" % (self.pid, t)) as f:
                    out += [int(x) for x in f.read().split()]
        except OSError:
            pass
        return out

    def writer_pid(self):
        """The pid of the newest writer (from its writer_start line)."""
        pids = re.findall(r"spamd\[(\d+)\]: event=writer_start engines",
                          self.logtext())
        if not pids:
            return None
        p = int(pids[-1])
        return p if p in self.children() else None

    def tree(self):
        return [self.pid] + self.children()

    def cpu_secs(self):
        """utime + stime of the daemon and its live children, seconds."""
        tck = os.sysconf("SC_CLK_TCK")
        total = 0
        for p in self.tree():
            try:
                with open("/proc/%d/stat" % p) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                pass
        return total / tck

    def stop(self, secs=15):
        """SIGTERM, wait; SIGKILL the tree if it does not go. Exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(slow(secs))
            except subprocess.TimeoutExpired:
                for p in self.children():
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                self.proc.kill()
                self.proc.wait(slow(5))
        if not self.log.closed:
            self.log.close()
            died = [ln for ln in self.logtext().splitlines()
                    if "event=child-died" in ln and " signal=31" in ln]
            if died and not self.expect_sigsys:
                SIGSYS_SEEN.append(self.name)
                print("not ok - no process of spamd %s killed by its "
                      "seccomp filter: %s" % (self.name, died[0][-200:]),
                      flush=True)
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def rss_kib(pid):
    """VmRSS of one process in KiB (0 if gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def resv_connect(addr, timeout=10):
    """a TCP connection to (host, port) from a reserved source port
    (1023 down to 600, as spamd-setup run by root); needs root"""
    last = None
    for port in range(1023, 599, -1):
        s = socket.socket(socket.AF_INET6 if ":" in addr[0]
                          else socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(slow(timeout))
        try:
            s.bind(("::" if ":" in addr[0] else "0.0.0.0", port))
            s.connect(addr)
            return s
        except OSError as e:
            last = e
            s.close()
    raise last


def ask(addr, text, timeout=10, resv=None):
    """send text and a newline to a TCP (host, port) or a Unix socket
    path, shut the sending side, return the whole answer as text. resv:
    from a reserved source port (the config port takes lists only from
    those); None: when root, as spamd-setup"""
    if resv is None:
        resv = os.geteuid() == 0
    if isinstance(addr, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(slow(timeout))
        s.connect(addr)
    elif resv:
        s = resv_connect(addr, timeout)
    else:
        s = socket.create_connection(addr, slow(timeout))
    try:
        s.sendall(text.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            b = s.recv(4096)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode(errors="replace")
    finally:
        s.close()


def recv_reply(s, buf):
    """One whole SMTP reply (multi-line aware); (code, buf rest)."""
    while True:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if len(line) >= 4 and line[3:4] == b"-":
                continue
            return int(line[:3]), buf
        d = s.recv(4096)
        if not d:
            raise ConnectionError("closed")
        buf += d


def dialogue(port, src, helo, mfrom, rcpts, timeout=10):
    """A whole SMTP dialogue; returns (DATA reply code, RCPT codes)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(slow(timeout))
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        buf = b""
        code, buf = recv_reply(s, buf)
        s.sendall(b"HELO %s\r\n" % helo.encode())
        code, buf = recv_reply(s, buf)
        s.sendall(b"MAIL FROM:<%s>\r\n" % mfrom.encode())
        code, buf = recv_reply(s, buf)
        rc = []
        for r in rcpts:
            s.sendall(b"RCPT TO:<%s>\r\n" % r.encode())
            code, buf = recv_reply(s, buf)
            rc.append(code)
        s.sendall(b"DATA\r\n")
        code, buf = recv_reply(s, buf)
        try:
            s.sendall(b"QUIT\r\n")
        except OSError:
            pass
        return code, rc
    finally:
        s.close()


def try_dialogue(port, src, tag, timeout=10):
    """A one-RCPT dialogue with unique addresses; DATA code or None."""
    try:
        code, _ = dialogue(port, src, "h-%s.example" % tag,
                           "f-%s@example.org" % tag,
                           ["t-%s@example.com" % tag], timeout)
        return code
    except (OSError, ValueError):
        return None


def json_events(sp, name):
    """the lines of event name in the --log-format json log of sp, as
    dicts (other lines skipped)"""
    out = []
    for ln in sp.logtext().splitlines():
        try:
            j = json.loads(ln)
        except ValueError:
            continue
        if isinstance(j, dict) and j.get("event") == name:
            out.append(j)
    return out


def metric(port, name):
    """the value (text) of the unlabelled sample name on
    http://127.0.0.1:port/metrics, or None (no answer, no sample)"""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                    timeout=slow(10)) as r:
            body = r.read().decode("utf-8", "replace")
    except OSError:
        return None
    m = re.search(r"^%s (\S+)$" % re.escape(name), body, re.M)
    return m.group(1) if m else None


def greyctl_run(db, *args):
    """greyctl -D db args: (exit status, stdout, stderr)"""
    r = subprocess.run([GREYCTL, "-D", db] + list(args),
                       capture_output=True, text=True, timeout=slow(120))
    return r.returncode, r.stdout, r.stderr


def sync_counters(sp, secs=10):
    """The writer's newest sync_counters line (asked for with SIGUSR1 to
    the master) as a dict; {} if none came within secs."""
    before = sp.count("event=sync_counters")
    os.kill(sp.pid, signal.SIGUSR1)
    wait_for(lambda: sp.count("event=sync_counters") > before, slow(secs))
    lines = re.findall(r"event=sync_counters (.*)", sp.logtext())
    if not lines:
        return {}
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}


def run_inner_in_netns(results, label, prefix, secs):
    """Run the calling script again with --inner inside a network
    namespace made for it (prefix + our pid), in a session of its own so
    that on a timeout the whole run (the daemons it started included) is
    killed; the namespace is deleted in any case. Its exit status, or 1
    with a not ok line."""
    ns = "%s%d" % (prefix, os.getpid())
    r = subprocess.run(["ip", "netns", "add", ns], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        results.notok(label, "ip netns add: %s" % r.stderr.strip())
        return 1
    import __main__
    p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable,
                          os.path.abspath(__main__.__file__), "--inner"],
                         start_new_session=True)
    try:
        # why not slow(secs): run.sh's own limit must not strike first
        return p.wait(timeout=secs)
    except subprocess.TimeoutExpired:
        results.notok(label, "inner run took over %d s" % secs)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait()
        return 1
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True,
                       timeout=30)


def greyctl_dump(db):
    """greyctl's dump of db as a list of '|'-split lines (None on error)."""
    r = subprocess.run([GREYCTL, "-D", db], capture_output=True, text=True,
                       timeout=slow(120))
    if r.returncode != 0:
        return None
    return [ln.split("|") for ln in r.stdout.splitlines() if ln]


def db_verify(db):
    """db5.3_verify over the store's files: (ok, output); None if absent."""
    tool = shutil.which("db5.3_verify") or shutil.which("db_verify")
    if tool is None:
        return None
    files = [f for f in ("grey.db", "expire.db")
             if os.path.exists(os.path.join(db, f))]
    r = subprocess.run([tool, "-h", db] + files, capture_output=True,
                       text=True, timeout=120)
    return r.returncode == 0 and bool(files), (r.stdout + r.stderr).strip()


def file_fw_spamd(tmp, ports, extra=(), logname="spamd.err",
                  need_writer=False):
    """A spamd -d for the integration scripts: ports and a config port
    from the script's range, --fw file at tmp/white (as .fw), its own -W
    and -h defaults, not --user nobody; waits until it accepts and its
    writer has started (raises if need_writer and it has not)."""
    fw = os.path.join(writer_dir(tmp, "fw"), "white")
    d = Spamd(os.path.splitext(logname)[0], tmp=tmp, workers=None,
              hostname=None, nobody=False, ports=ports, config_port=True,
              logname=logname,
              extra=["--fw", "file", "--fw-file", fw] + list(extra))
    d.fw = fw
    try:
        started = d.wait_started()
        if need_writer and not started:
            raise RuntimeError("writer did not start: " +
                               d.logtext()[-500:])
    except Exception:
        d.stop()
        raise
    return d


def smtp_deliver(port, src, helo, frm, to):
    """One smtplib delivery attempt from src to 127.0.0.1:port; the DATA
    (or first refusal) code, -1 if the server hung up."""
    s = smtplib.SMTP(timeout=slow(20), source_address=(src, 0))
    try:
        s.connect("127.0.0.1", port)
        s.ehlo(helo)
        code, _ = s.mail(frm)
        if code != 250:
            return code
        code, _ = s.rcpt(to)
        if code != 250:
            return code
        code, _ = s.docmd("DATA")
        return code
    except smtplib.SMTPServerDisconnected:
        return -1
    finally:
        try:
            s.close()
        except OSError:
            pass


def fw_has(path, ip, want=True, secs=10):
    """Poll (bounded) until the firewall file path holds ip (or not)."""
    end = time.monotonic() + slow(secs)
    while True:
        try:
            with open(path) as f:
                have = ip in f.read().split()
        except OSError:
            have = False
        if have == want or time.monotonic() > end:
            return have
        time.sleep(0.05)


def smtp_said(port, src, to="b@example.com", timeout=30):
    """HELO, MAIL, RCPT, DATA from src to 127.0.0.1:port; every reply
    (the last: all the server said after, the body sent on a 354)."""
    timeout = slow(timeout)
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(src, 0))
    s.settimeout(timeout)
    buf = b""
    end = time.monotonic() + timeout

    def reply():
        nonlocal buf
        while time.monotonic() < end:
            lines = buf.split(b"\r\n")
            for i, ln in enumerate(lines[:-1]):
                if len(ln) >= 4 and ln[3:4] == b" ":
                    out = b"\r\n".join(lines[:i + 1])
                    buf = b"\r\n".join(lines[i + 1:])
                    return out.decode("latin-1")
            d = s.recv(4096)
            if not d:
                break
            buf += d
        return buf.decode("latin-1")

    said = [reply()]
    for cmd in (b"HELO client.example.net", b"MAIL FROM:<a@example.net>",
                b"RCPT TO:<" + to.encode() + b">", b"DATA"):
        s.sendall(cmd + b"\r\n")
        said.append(reply())
    if said[-1].startswith("354"):
        s.sendall(b"Subject: x\r\n\r\nbody\r\n.\r\n")
    rest = b""
    while time.monotonic() < end:
        try:
            d = s.recv(4096)
        except (socket.timeout, ConnectionResetError):
            break
        if not d:
            break
        rest += d
    s.close()
    said.append(buf.decode("latin-1") + rest.decode("latin-1"))
    return said
