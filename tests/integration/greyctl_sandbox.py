#!/usr/bin/env python3
"""greyctl_sandbox.py - greyctl's seccomp filter, seen from outside.

An import kept waiting on an open pipe (the filter goes on before the dump
is read) and a dump kept waiting on a full stdout pipe (the filter goes on
once the store is open) must show "Seccomp: 2" and "NoNewPrivs: 1" in
/proc/PID/status, for every thread (the store's watchdog thread too); both
then finish and their records are there. With SPAMD_SANDBOX_SELFTEST=socket
greyctl calls socket(AF_INET, ...) right after loading the filter: in kill
mode (the default, --seccomp kill, SPAMD_SECCOMP=kill) it dies of SIGSYS,
with --seccomp off or log (or SPAMD_SECCOMP=off) it goes on. A bad
--seccomp value or SPAMD_SECCOMP is refused with a message naming it.

No root needed. Finds greyctl through $BUILD (default $TOP/build); when
that greyctl is a wrapper script (run.sh's valgrind tree, where the filter
is off) the checks that need the filter are skipped. Prints one line a
check: "ok - name", "not ok - name: why" or "skip - name: why"; exits 1 if
any failed.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("TOP") or os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("BUILD") or os.path.join(TOP, "build")
GREYCTL = os.path.join(BUILD, "greyctl")

sys.path.insert(0, os.path.join(TOP, "tests", "helpers"))
import fault_lib as fl  # noqa: E402  (Results: the ok / not ok lines)

RES = fl.Results()
ok, notok, skip, check = RES.ok, RES.notok, RES.skip, RES.check


def env_with(**kv):
    """the environment without SPAMD_SECCOMP/SPAMD_SANDBOX_SELFTEST, plus kv"""
    env = dict(os.environ)
    env.pop("SPAMD_SECCOMP", None)
    env.pop("SPAMD_SANDBOX_SELFTEST", None)
    env.update(kv)
    return env


def run(args, stdin="", **kv):
    """run greyctl with args; (status, stdout, stderr) as text"""
    p = subprocess.run([GREYCTL] + args, input=stdin.encode(),
                       capture_output=True, timeout=120, env=env_with(**kv))
    return (p.returncode, p.stdout.decode("latin-1"),
            p.stderr.decode("latin-1"))


def status_fields(pid, tid=None):
    """the fields of /proc/PID[/task/TID]/status as a dict (None if gone)"""
    path = "/proc/%d/status" % pid if tid is None else \
        "/proc/%d/task/%s/status" % (pid, tid)
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def wait_filtered(pid, threads):
    """poll until pid (and, with threads, at least that many tasks) shows
    Seccomp 2; return the status of every task (bounded: 10 s)"""
    tasks = {}
    for _ in range(200):
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            return None
        tasks = {t: status_fields(pid, t) for t in tids}
        if (len(tasks) >= threads and
                all(s is not None and s.get("Seccomp") == "2"
                    for s in tasks.values())):
            return tasks
        time.sleep(0.05)
    return tasks


def check_tasks(name, tasks, threads):
    """every task of the process: Seccomp 2 and NoNewPrivs 1"""
    why = []
    if not tasks:
        why.append("process gone or no tasks")
    elif len(tasks) < threads:
        why.append("%d tasks, want %d" % (len(tasks), threads))
    for tid, st in sorted((tasks or {}).items()):
        if st is None:
            why.append("task %s gone" % tid)
            continue
        if st.get("Seccomp") != "2":
            why.append("task %s Seccomp: %s" % (tid, st.get("Seccomp")))
        if st.get("NoNewPrivs") != "1":
            why.append("task %s NoNewPrivs: %s" % (tid, st.get("NoNewPrivs")))
    check(name, not why, "; ".join(why))


def is_elf(path):
    """is path a binary (not run.sh's valgrind wrapper script)"""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def blocked_import(tmp):
    """import waiting on an open stdin pipe: filtered; then it finishes"""
    db = os.path.join(tmp, "imp")
    p = subprocess.Popen([GREYCTL, "-D", db, "import"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env_with())
    try:
        p.stdin.write(b"WHITE|192.0.2.10|||1|2|3000000000|1|0\n")
        p.stdin.flush()
        tasks = wait_filtered(p.pid, 1)
        check_tasks("import waiting on stdin: Seccomp 2, NoNewPrivs 1",
                    tasks, 1)
        # the rest of the dump, then end of file
        out, err = p.communicate(b"TRAPPED|192.0.2.11|3000000000\n"
                                 b"SPAMTRAP|trap@example.org\n", timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check("import finishes under the filter",
          p.returncode == 0 and out.decode() ==
          "import: 0 grey, 1 white, 1 trapped, 1 spamtrap\n",
          "exit %r out %r err %r" % (p.returncode, out, err))
    rc, out, err = run(["-D", db])
    check("imported records are listed",
          rc == 0 and out.splitlines() == [
              "WHITE|192.0.2.10|||1|2|3000000000|1|0",
              "TRAPPED|192.0.2.11|3000000000",
              "SPAMTRAP|trap@example.org"],
          "exit %d out %r err %r" % (rc, out, err))
    return db


def blocked_dump(tmp):
    """a dump waiting on a full stdout pipe: the store is open and the
    filter on, for both threads (main and the store's watchdog)"""
    db = os.path.join(tmp, "dump")
    n = 3000    # about 250 kB of dump: more than a pipe holds
    lines = "".join("GREY|10.1.%d.%d|helo%d.example|a%d@example.com|"
                    "b@example.org|1|2|3000000000|1|0\n" %
                    (i >> 8, i & 255, i, i) for i in range(n))
    rc, out, err = run(["-D", db, "import"], lines)
    if not check("import of %d tuples for the dump" % n, rc == 0,
                 "exit %d err %r" % (rc, err)):
        return
    p = subprocess.Popen([GREYCTL, "-D", db], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env_with())
    try:
        tasks = wait_filtered(p.pid, 2)
        check_tasks("dump waiting on stdout: every thread Seccomp 2, "
                    "NoNewPrivs 1", tasks, 2)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    got = out.decode().splitlines()
    check("the dump finishes with every tuple",
          p.returncode == 0 and len(got) == n and
          got[0].startswith("GREY|10.1.0.0|helo0.example|"),
          "exit %r, %d lines, err %r" % (p.returncode, len(got), err))


def selftest(db):
    """SPAMD_SANDBOX_SELFTEST=socket: killed by SIGSYS in kill mode only"""
    sigsys = -int(signal.SIGSYS)
    cases = [
        ("default mode kills a forbidden socket() call", [], {}, sigsys),
        ("--seccomp kill kills it", ["--seccomp", "kill"], {}, sigsys),
        ("SPAMD_SECCOMP=kill kills it", [], {"SPAMD_SECCOMP": "kill"},
         sigsys),
        ("--seccomp kill wins over SPAMD_SECCOMP=off",
         ["--seccomp", "kill"], {"SPAMD_SECCOMP": "off"}, sigsys),
        ("--seccomp off: the call is made, greyctl goes on",
         ["--seccomp", "off"], {}, 0),
        ("--seccomp=log: the call is allowed (and logged)",
         ["--seccomp=log"], {}, 0),
        ("SPAMD_SECCOMP=off: greyctl goes on", [], {"SPAMD_SECCOMP": "off"},
         0),
    ]
    for name, flags, env, want in cases:
        env = dict(env, SPAMD_SANDBOX_SELFTEST="socket")
        rc, out, err = run(flags + ["-D", db, "192.0.2.10"], **env)
        good = rc == want
        if want == 0:
            good = good and out.startswith("WHITE|192.0.2.10|")
        check(name, good, "exit %d (want %d) out %r err %r" %
              (rc, want, out, err))
    # the commands with a filter of their own flags
    for name, args, stdin in [
            ("import", ["import"], "SPAMTRAP|x@example.org\n"),
            ("explain", ["explain", "192.0.2.10"], ""),
            ("stats", ["stats"], ""),
            ("-d", ["-d", "192.0.2.10"], ""),
            ("-a", ["-a", "192.0.2.12"], "")]:
        rc, out, err = run(["-D", db] + args, stdin,
                           SPAMD_SANDBOX_SELFTEST="socket")
        check("%s: a forbidden socket() call kills" % name, rc == sigsys,
              "exit %d out %r err %r" % (rc, out, err))
    # and without the hook these run to the end under the filter
    rc, out, err = run(["-D", db, "explain", "192.0.2.10"])
    check("explain (no spamd running) runs under the filter",
          rc >= 0 and out.startswith("ip=192.0.2.10\n"),
          "exit %d out %r err %r" % (rc, out, err))
    rc, out, err = run(["-D", db, "-d", "192.0.2.10"])
    rc2, out2, err2 = run(["-D", db, "192.0.2.10"])
    check("-d (no spamd running) runs under the filter",
          rc == 0 and rc2 == 1 and out2 == "",
          "exit %d/%d err %r/%r" % (rc, rc2, err, err2))


def bad_values(db, wrapped):
    """a bad --seccomp (exit 2) or SPAMD_SECCOMP (exit 1) naming it (run.sh's
    valgrind wrapper sets SPAMD_SECCOMP itself)"""
    for name, args, env, culprit in [
            ("--seccomp bogus is refused", ["--seccomp", "bogus"], {},
             "--seccomp"),
            ("--seccomp=bogus is refused", ["--seccomp=bogus"], {},
             "--seccomp"),
            ("--seccomp without a value is refused", ["--seccomp"], {},
             "--seccomp"),
            ("SPAMD_SECCOMP=bogus is refused", [], {"SPAMD_SECCOMP": "bogus"},
             "SPAMD_SECCOMP"),
            ("an unknown long flag is refused", ["--bogus"], {}, "--bogus")]:
        if wrapped and env:
            skip(name, "the wrapper script sets SPAMD_SECCOMP")
            continue
        rc, out, err = run(args + ["-D", db], **env)
        # a bad flag is a usage error: exit 2, as spamdb (issue 16); a
        # bad environment value is an error of the run: exit 1
        check(name, rc == (1 if env else 2) and culprit in err,
              "exit %d err %r" % (rc, err))


def main():
    if not os.access(GREYCTL, os.X_OK):
        notok("greyctl built", GREYCTL + " missing (make)")
        return 1
    tmp = tempfile.mkdtemp(prefix="greyctl_sandbox.")
    try:
        filtered = is_elf(GREYCTL)
        if filtered:
            db = blocked_import(tmp)
            blocked_dump(tmp)
            selftest(db)
        else:
            db = os.path.join(tmp, "imp")
            run(["-D", db, "import"], "WHITE|192.0.2.10|||1|2|3|1|0\n",
                SPAMD_SECCOMP="off")
            skip("filter checks", GREYCTL + " is a wrapper script "
                 "(valgrind: the filter is off there)")
        bad_values(db, not filtered)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return RES.status()


if __name__ == "__main__":
    sys.exit(main())
