#!/usr/bin/env python3
"""spamd_obsdlog.py - --log-format openbsd: OpenBSD spamd's own log lines.

Runs $BUILD/spamd -d -v --log-format openbsd on loopback (PORTS
24000-24499) with --pass-seconds 0, a SPAMTRAP address and a blacklist
"testbl" holding 127.0.0.3 (sent to the config port), and drives:
  - 127.0.0.9, greylisted, twice (the retry passes: whitelisted);
  - 127.0.0.3, blacklisted: MAIL, RCPT, DATA with From:, To:, Subject:,
    X-Other: headers and two body lines;
  - 127.0.0.5 mails the spamtrap (trapped), then connects again once the
    trap list reached the engine.
After SIGTERM every stderr line must be either one of OpenBSD's lines
(the regexes below, written from the format strings of OpenBSD spamd.c
1.163 and grey.c 1.67, as a fail2ban filter for OpenBSD spamd would be)
or one of our own key=value events (event=...), and each OpenBSD line the
scenario causes must be there with the right fields: the client
address first (fail2ban's <HOST>), the lists, the counts, the tuple.
Events OpenBSD logs must not also appear as key=value lines.
Also: an unknown --log-format names the accepted values.
Prints ok / not ok / skip lines; exits 1 on a failure.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "helpers"))
import fault_lib as fl  # noqa: E402

PORTS = (24000, 24499)
R = fl.Results()
ok, notok, check = R.ok, R.notok, R.check

# OpenBSD's lines, from its format strings (spamd.c, grey.c).
OBSD = {
    "connected": r"^(\S+): connected \((\d+)/(\d+)\)(, lists:((?: \S+)+))?$",
    "disconnected": r"^(\S+): disconnected after (\d+) seconds\."
                    r"( lists:((?: \S+)+))?$",
    "rcpt": r"^\((GREY|BLACK)\) (\S+): (\S+) -> (\S+)$",
    "header": r"^(\S+): ((?i:from|to|subject):.*)$",
    "body": r"^(\S+): Body: (.*)$",
    "listening": r"^listening for incoming connections\.$",
    "new": r"^new (greytrap )?entry (\S+) from (\S+) to (\S+), helo (\S+)$",
    "trapping": r"^Trapping (\S+) for tuple (\S+) (\S+) (\S+) (\S+)$",
    "trapping_mx": r"^Trapping (\S+) for trying (\S+) first for tuple "
                   r"(\S+) (\S+) (\S+) (\S+)$",
    "whitelisting": r"^whitelisting (\S+) in (\S+)$",
}
KV = re.compile(r"^event=[a-z_-]+( |$)")
# our key=value events that OpenBSD logs in its own words
REPLACED = ("connect", "blacklisted", "disconnect", "tuple", "tarpit_rcpt",
            "header", "new", "pass")


def classify(line):
    """(kind, match) of an OpenBSD line, ("kv", None), or (None, None)"""
    for k, rx in OBSD.items():
        m = re.match(rx, line)
        if m:
            return k, m
    if KV.match(line):
        return "kv", None
    return None, None


def smtp(port, src, cmds, data=None):
    """one dialogue from src: each command's reply code; with data, the
    message after a 354 and the reply to its final '.'"""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(fl.slow(20))
    codes = []
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        code, buf = fl.recv_reply(s, b"")
        for c in cmds:
            s.sendall(c + b"\r\n")
            code, buf = fl.recv_reply(s, buf)
            codes.append(code)
        if data is not None and codes and codes[-1] == 354:
            s.sendall(data + b"\r\n.\r\n")
            code, buf = fl.recv_reply(s, buf)
            codes.append(code)
        try:
            s.sendall(b"QUIT\r\n")
        except OSError:
            pass
    except (OSError, ConnectionError) as e:
        codes.append(str(e))
    finally:
        s.close()
    return codes


def grey_cmds(helo, frm, to):
    return [b"HELO " + helo, b"MAIL FROM:<" + frm + b">",
            b"RCPT TO:<" + to + b">", b"DATA"]


def main():
    r = subprocess.run([fl.SPAMD, "-d", "--log-format", "xml"],
                       capture_output=True, text=True, timeout=fl.slow(30))
    check("--log-format xml refused, naming kv, json and openbsd",
          r.returncode == 1 and "--log-format xml" in r.stderr and
          "openbsd" in r.stderr, "exit %d: %r" % (r.returncode,
                                                  r.stderr[-200:]))

    tmp = tempfile.mkdtemp(prefix="spamd-obsdlog.")
    fl.writer_reach(tmp)
    db = os.path.join(tmp, "db")
    d = None
    try:
        rc = subprocess.run([fl.GREYCTL, "-D", db, "-T", "-a",
                             "trap@example.org"], capture_output=True,
                            timeout=fl.slow(60)).returncode
        if rc != 0:
            notok("greyctl -T -a adds the spamtrap", "exit %d" % rc)
            return
        extra = ["--log-format", "openbsd", "--pass-seconds", "0"]
        if os.geteuid() != 0:
            extra.append("--config-any-port")
        d = fl.Spamd("obsdlog", extra=extra, db=db, tmp=tmp, ports=PORTS,
                     config_port=True)
        try:
            started = d.wait_started()
        except RuntimeError:
            started = False
        if not started:
            notok("spamd starts with --log-format openbsd", d.log_tail())
            return
        ok("spamd starts with --log-format openbsd")
        fl.ask(("127.0.0.1", d.cport),
               'testbl;"You are listed\\n";inet;1;127.0.0.3/32')
        if not d.wait_log("tag=testbl", fl.slow(10)):
            notok("the blacklist reaches the engine", d.log_tail())
            return

        port = d.port
        g1 = smtp(port, "127.0.0.9", grey_cmds(b"mx.grey.example",
                  b"alice@sender.example", b"bob@example.org"))
        # the retry passes once the clock (whole seconds) is past the
        # first's time plus --pass-seconds; the writer stored the first
        fl.wait_for(lambda: "GREY|127.0.0.9|" in d.greyctl(), fl.slow(10))
        time.sleep(1.1)
        g2 = smtp(port, "127.0.0.9", grey_cmds(b"mx.grey.example",
                  b"alice@sender.example", b"bob@example.org"))
        fl.wait_for(lambda: "WHITE|127.0.0.9|" in d.greyctl(), fl.slow(10))
        msg = (b"From: Spammer <spam@bad.example>\r\n"
               b"To: bob@example.org\r\nSubject: cheap stuff\r\n"
               b"X-Other: not logged\r\n\r\nbody line one\r\n"
               b"body line two")
        b1 = smtp(port, "127.0.0.3", [b"HELO spam.example",
                  b"MAIL FROM:<spam@bad.example>",
                  b"RCPT TO:<bob@example.org>", b"DATA"], msg)
        # why no DATA: the trap list may reach the engine before it, and a
        # client trapped mid-session is then tarpitted (354), else
        # greylisted (451); the RCPT alone is what traps it
        t1 = smtp(port, "127.0.0.5", grey_cmds(b"trapper.example",
                  b"x@trapper.example", b"trap@example.org")[:3])
        listed = d.wait_log("event=list-loaded engine=0 tag=spamd-greytrap "
                            "prefixes=1",
                            fl.slow(15))
        t2 = smtp(port, "127.0.0.5", [b"NOOP"]) if listed else None
        check("dialogues: grey 451 twice, blacklisted 354 then 450, "
              "trapper's RCPT 250", g1[-1] == 451 and g2[-1] == 451 and
              b1[-2:] == [354, 450] and t1 == [250, 250, 250],
              "%r %r %r %r" % (g1, g2, b1, t1))
        check("the trap list reaches the engine", listed, d.log_tail())
        # wait for the last disconnect line before stopping
        fl.wait_for(lambda: d.logtext().count(": disconnected after ") >=
                    (5 if t2 is not None else 4), fl.slow(10))
        d.stop()
        text = d.logtext()
        fl.sanitizer_check(R, "spamd_obsdlog: no sanitizer report", [text])
        # under ASan LeakSanitizer cannot read /proc from the chrooted
        # engine and says so on stderr: not log lines
        lines = [ln for ln in text.splitlines()
                 if not re.match(r"==\d+==", ln)]

        found = {}
        stray = []
        for ln in lines:
            k, m = classify(ln)
            if k is None:
                stray.append(ln)
            elif k != "kv":
                found.setdefault(k, []).append(m)
        check("every line is OpenBSD's or key=value (event=...)",
              not stray, "e.g. %r" % stray[:3])
        twice = [ln for ln in lines if KV.match(ln) and
                 ln.split()[0][6:] in REPLACED]
        check("no event OpenBSD logs is also written as key=value",
              not twice, "e.g. %r" % twice[:3])

        def has(kind, pred):
            return any(pred(m) for m in found.get(kind, []))

        check("listening for incoming connections. (once)",
              len(found.get("listening", [])) == 1,
              "%d times" % len(found.get("listening", [])))
        check("blacklisted connect: ip: connected (n/m), lists: testbl",
              has("connected", lambda m: m.group(1) == "127.0.0.3" and
                  m.group(5) == " testbl" and int(m.group(3)) >= 1 and
                  int(m.group(2)) >= int(m.group(3))),
              [m.group(0) for m in found.get("connected", [])])
        check("greylisted connect: no lists, (n/0)",
              has("connected", lambda m: m.group(1) == "127.0.0.9" and
                  m.group(4) is None and m.group(3) == "0"),
              [m.group(0) for m in found.get("connected", [])])
        check("disconnect: ip: disconnected after N seconds. lists: testbl",
              has("disconnected", lambda m: m.group(1) == "127.0.0.3" and
                  m.group(4) == " testbl") and
              has("disconnected", lambda m: m.group(1) == "127.0.0.9" and
                  m.group(3) is None),
              [m.group(0) for m in found.get("disconnected", [])])
        check("-v: (GREY) ip: <from> -> <to>",
              has("rcpt", lambda m: m.group(0) == "(GREY) 127.0.0.9: "
                  "<alice@sender.example> -> <bob@example.org>"),
              [m.group(0) for m in found.get("rcpt", [])])
        check("-v: (BLACK) ip: <from> -> <to>",
              has("rcpt", lambda m: m.group(0) == "(BLACK) 127.0.0.3: "
                  "<spam@bad.example> -> <bob@example.org>"),
              [m.group(0) for m in found.get("rcpt", [])])
        hdrs = [m.group(2) for m in found.get("header", [])
                if m.group(1) == "127.0.0.3"]
        check("-v: the From:, To:, Subject: headers, not X-Other:",
              hdrs == ["From: Spammer <spam@bad.example>",
                       "To: bob@example.org", "Subject: cheap stuff"],
              repr(hdrs))
        body = [m.group(2) for m in found.get("body", [])]
        check("-v: ip: Body: lines", body == ["body line one",
                                            "body line two"], repr(body))
        check("-v: new entry ip from <from> to <to>, helo name",
              has("new", lambda m: m.group(0) == "new entry 127.0.0.9 from "
                  "<alice@sender.example> to <bob@example.org>, helo "
                  "mx.grey.example"),
              [m.group(0) for m in found.get("new", [])])
        check("whitelisting ip in dbdir",
              has("whitelisting", lambda m: m.group(1) == "127.0.0.9" and
                  m.group(2) == db),
              [m.group(0) for m in found.get("whitelisting", [])])
        check("Trapping ip for tuple ip helo <from> <to>",
              has("trapping", lambda m: m.group(0) == "Trapping 127.0.0.5 "
                  "for tuple 127.0.0.5 trapper.example <x@trapper.example> "
                  "<trap@example.org>"),
              [m.group(0) for m in found.get("trapping", [])])
        check("a trapped client connects with lists: spamd-greytrap",
              has("connected", lambda m: m.group(1) == "127.0.0.5" and
                  m.group(5) == " spamd-greytrap"),
              [m.group(0) for m in found.get("connected", [])])
    finally:
        if d is not None:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
    sys.exit(R.status())
