#!/usr/bin/env python3
"""openbsd_daemon.py - issue 16, the daemon-side points: an OpenBSD site's
tools and peers talk to our daemons unchanged.

  8. config port: several lists on one connection load in order, each
     with its own answer; a bad line does not stop the others; more than
     64 lines is refused past the 64th; a client that sends and closes
     without reading still gets every list loaded; an unreserved source
     port still loads nothing.
  9. long fields: a GREY packet built byte for byte as OpenBSD's sync.c
     (sync_update) builds it, with a 1,023-byte HELO and HMAC-SHA1 over
     the key, is stored exactly as a local SMTP session with the same
     HELO, MAIL FROM and RCPT TO; longer fields are cut to their first
     1,023 bytes on both paths; a local tuple too long for a 1,408-byte
     packet is still sent to the -Y peer, whole.
 10. sync key: a missing key file and a 0644 one stop the start with an
     error naming the option that restores OpenBSD's behaviour; with
     --sync-no-auth a packet signed with the empty key (OpenBSD without
     a key file) is applied and one with another key dropped; with
     --sync-key-any-mode the 0644 key is used.
 18. greylogd -l (spamlogd's pflog interface) is refused naming -g.
     (The spamlogd refresh of pcount is checked in tests/system/greylogd.sh.)

Two daemons on loopback, ports 23000-23199; about 5 s.
"""
import hashlib
import hmac
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as fl  # noqa: E402

PORTS = (23000, 23199)
R = fl.Results()
GREYLOGD = os.path.join(fl.BUILD, "greylogd")
ROOT = os.geteuid() == 0


def obsd_grey(key, counter, ip, helo, mfrom, to, ts):
    """one packet as OpenBSD's sync_update builds it: header (version 2,
    af AF_INET, length, counter, HMAC, pad), one GREY TLV (18 bytes, then
    from, to, helo with their NULs, zero padding to 16), END; HMAC-SHA1
    keyed with key (bytes) over the packet with the HMAC field zero"""
    fromlen, tolen, helolen = len(mfrom) + 1, len(to) + 1, len(helo) + 1
    sglen = 18 + fromlen + tolen + helolen
    padlen = (sglen + 15) // 16 * 16 - sglen
    total = 32 + sglen + padlen + 4
    hdr = struct.pack("!BBHI", 2, 2, total, counter) + b"\0" * 20 + \
        b"\0" * 4
    sg = struct.pack("!HHI", 1, sglen + padlen, ts) + socket.inet_aton(ip) + \
        struct.pack("!HHH", fromlen, tolen, helolen)
    body = sg + mfrom + b"\0" + to + b"\0" + helo + b"\0" + b"\0" * padlen + \
        struct.pack("!HH", 0, 4)
    mac = hmac.new(key, hdr + body, hashlib.sha1).digest()
    return hdr[:8] + mac + hdr[28:] + body


def send_from(pkt, src, port):
    """pkt from src to 127.0.0.1:port over UDP"""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((src, 0))
        s.sendto(pkt, ("127.0.0.1", port))
    finally:
        s.close()


def grey_line(d, ip):
    """the GREY line of ip in greyctl's listing, split at '|', or None"""
    for ln in d.greyctl().splitlines():
        f = ln.split("|")
        if len(f) >= 5 and f[0] == "GREY" and f[1] == ip:
            return f
    return None


def wait_grey(d, ip):
    """wait (bounded) for ip's GREY line; the line or None"""
    fl.wait_for(lambda: grey_line(d, ip) is not None, fl.slow(10), 0.1)
    return grey_line(d, ip)


def smtp(port, src, lines, timeout=20):
    """send each line (bytes) from src; the reply codes"""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(fl.slow(timeout))
    codes, buf = [], b""
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        code, buf = fl.recv_reply(s, buf)
        for ln in lines:
            s.sendall(ln)
            code, buf = fl.recv_reply(s, buf)
            codes.append(code)
        return codes
    except (OSError, ConnectionError) as e:
        return codes + [str(e)]
    finally:
        s.close()


def blacklisted_reply(port, src):
    """the reply a blacklisted client from src gets after its message"""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(fl.slow(20))
    buf = b""
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        for ln in (None, b"HELO h\r\n", b"MAIL FROM:<a@b>\r\n",
                   b"RCPT TO:<c@example.com>\r\n", b"DATA\r\n"):
            if ln:
                s.sendall(ln)
            _, buf = fl.recv_reply(s, buf)
        s.sendall(b"x\r\n.\r\n")
        while not buf.endswith(b"\n") or b"\n450 " not in b"\n" + buf:
            d = s.recv(4096)
            if not d:
                break
            buf += d
        return buf
    except (OSError, ConnectionError) as e:
        return str(e).encode()
    finally:
        s.close()


def loaded(d, tag):
    """the engine logged tag as loaded"""
    return ("event=list-loaded engine=0 tag=%s " % tag) in d.logtext()


def case_config(d):
    """point 8 on daemon d (config port)"""
    addr = ("127.0.0.1", d.cport)
    ans = fl.ask(addr, 'l8a;"List A";inet;1;127.0.23.1/32\n'
                 'l8b;"List B";inet;1;127.0.23.2/32\n'
                 'l8c;"List C";inet;1;127.0.23.3/32').splitlines()
    R.check("8. three lists on one connection: an ok line each, in order",
            ans == ["ok l8a 1", "ok l8b 1", "ok l8c 1"], repr(ans))
    R.check("8. ... all three reach the engine",
            fl.wait_for(lambda: all(loaded(d, t) for t in
                                    ("l8a", "l8b", "l8c")), fl.slow(10)),
            d.log_tail(3))
    out = blacklisted_reply(d.port, "127.0.23.3")
    R.check("8. a client on the third list gets its message",
            out.endswith(b"450 List C\r\n"), repr(out[-80:]))
    ans = fl.ask(addr, 'l8d;"D";inet;1;127.0.23.4/32\n'
                 'l8e;"bad%Z";inet;1;127.0.23.5/32\n'
                 'l8f;"F";inet;1;127.0.23.6/32\n').splitlines()
    R.check("8. a bad line in the middle: error for it, the others load",
            len(ans) == 3 and ans[0] == "ok l8d 1" and
            ans[1].startswith("error l8e: ") and ans[2] == "ok l8f 1",
            repr(ans))
    lines = "\n".join('l8g;"G";inet;1;127.0.24.%d/32' % i
                      for i in range(65))
    ans = fl.ask(addr, lines, timeout=60).splitlines()
    R.check("8. 65 lines on one connection: 64 ok, then an error naming "
            "the bound", len(ans) == 65 and ans[:64] == ["ok l8g 1"] * 64
            and ans[64].startswith("error l8g: more than 64 lists"),
            "%d answers, last %r" % (len(ans), ans[-1:]))
    # as a tool that writes and closes without reading any answer
    s = fl.resv_connect(addr) if ROOT else socket.create_connection(
        addr, fl.slow(10))
    s.sendall(b'l8h;"H";inet;1;127.0.23.7/32\nl8i;"I";inet;1;127.0.23.8/32\n'
              b'l8j;"J";inet;1;127.0.23.9/32\n')
    s.close()
    R.check("8. sent and closed without reading: all three load",
            fl.wait_for(lambda: all(loaded(d, t) for t in
                                    ("l8h", "l8i", "l8j")), fl.slow(10)),
            d.log_tail(3))
    # past the per-connection byte bound (256 MB; this daemon runs with
    # the test-only SPAMD_CFG_TOTAL=262144): the lines before are handled,
    # then one error naming the bound, and nothing after it loads
    big = ["l8%s;\"%s\";inet;6000;" % (t, t.upper()) + ";".join(
        "127.%d.%d.%d/32" % (30 + n, i // 250, i % 250 + 1)
        for i in range(6000)) for n, t in enumerate(("m", "n", "o"))]
    ans = fl.ask(addr, "\n".join(big) + "\n", timeout=60).splitlines()
    R.check("8. past the bytes one connection may carry: ok for the lists "
            "before, then an error naming the bound; the last list is not "
            "loaded", len(ans) >= 2 and all(a.startswith("ok l8") for a in
                                             ans[:-1]) and
            ans[-1].startswith("error -: more than 262144 bytes on one "
                               "connection") and not loaded(d, "l8o"),
            "%d answers: %r" % (len(ans), [a[:60] for a in ans]))
    if not ROOT:
        R.skip("8. unreserved source port", "needs root (reserved ports)")
        return
    ans = fl.ask(addr, 'l8k;"K";inet;1;127.0.23.10/32\n'
                 'l8l;"L";inet;1;127.0.23.11/32', resv=False)
    time.sleep(fl.slow(0.3))
    R.check("8. several lines from an unreserved port: one error, none "
            "loaded", ans.startswith("error -: unreserved") and
            len(ans.splitlines()) == 1 and not loaded(d, "l8k") and
            not loaded(d, "l8l"), repr(ans))


def case_long(d, key, sport, peer):
    """point 9 on daemon d (sync with key, -Y 127.0.0.2 = peer socket)"""
    helo = b"h" * 1023
    mfrom, to = b"alice@example.org", b"bob@example.com"
    codes = smtp(d.port, "127.0.23.20", [
        b"HELO " + helo + b"\r\n", b"MAIL FROM:<" + mfrom + b">\r\n",
        b"RCPT TO:<" + to + b">\r\n"])
    local = wait_grey(d, "127.0.23.20")
    pkt = obsd_grey(key, 0x1000, "192.0.2.20", helo, mfrom, to,
                    int(time.time()))
    R.check("9. the OpenBSD-built GREY with a 1,023-byte HELO fits its "
            "1,408-byte packets", len(pkt) <= 1408, "%d bytes" % len(pkt))
    send_from(pkt, "127.0.0.2", sport)
    synced = wait_grey(d, "192.0.2.20")
    R.check("9. local tuple with a 1,023-byte HELO is stored whole",
            local is not None and local[2] == helo.decode() and
            local[3:5] == [mfrom.decode(), to.decode()],
            "codes %r, line %r" % (codes, local and [len(x) for x in
                                                     local]))
    R.check("9. the peer's tuple is stored identically (helo|from|to)",
            synced is not None and local is not None and
            synced[2:5] == local[2:5],
            "%r" % (synced and [len(x) for x in synced]))
    # longer than 1,023: the first 1,023 bytes, on both paths. OpenBSD
    # keeps an address as typed, so its cut includes the '<': what an
    # OpenBSD peer sends for these is the first 1,023 bytes of "<addr>"
    long_helo = b"H" * 1500
    long_from = b"f" * 1100 + b"@example.org"
    long_to = b"t" * 1100 + b"@example.com"
    smtp(d.port, "127.0.23.21", [
        b"HELO " + long_helo + b"\r\n", b"MAIL FROM:<" + long_from + b">\r\n",
        b"RCPT TO:<" + long_to + b">\r\n"])
    local = wait_grey(d, "127.0.23.21")
    R.check("9. a local 1,500-byte HELO and 1,112-byte addresses are cut "
            "to 1,023 bytes (the addresses' cut counts their '<')",
            local is not None and local[2:5] == [
                long_helo[:1023].decode(), long_from[:1022].decode(),
                long_to[:1022].decode()],
            "%r" % (local and [len(x) for x in local]))
    # as OpenBSD sends it (one packet, however long)
    pkt = obsd_grey(key, 0x1002, "192.0.2.22", long_helo[:1023],
                    (b"<" + long_from + b">")[:1023],
                    (b"<" + long_to + b">")[:1023], int(time.time()))
    send_from(pkt, "127.0.0.2", sport)
    synced = wait_grey(d, "192.0.2.22")
    R.check("9. the same tuple from an OpenBSD peer is stored identically",
            synced is not None and local is not None and
            synced[2:5] == local[2:5],
            "%r" % (synced and [len(x) for x in synced]))
    pkt = obsd_grey(key, 0x1001, "192.0.2.21", b"H" * 1200, b"a@example.org",
                    b"b@example.com", int(time.time()))
    send_from(pkt, "127.0.0.2", sport)
    synced = wait_grey(d, "192.0.2.21")
    R.check("9. a peer's 1,200-byte HELO: its first 1,023 bytes, as a local "
            "one", synced is not None and synced[2] == "H" * 1023,
            "%r" % (synced and [len(x) for x in synced]))
    # the local tuple of 3 x 1,023 bytes went to the -Y peer, whole
    got = None
    end = time.time() + fl.slow(10)
    while got is None and time.time() < end:
        try:
            data = peer.recv(65536)
        except socket.timeout:
            break
        if b"\0" + long_helo[:1023] + b"\0" in data:
            got = data
    R.check("9. a local tuple too long for 1,408 bytes is still sent to "
            "the peer, whole", got is not None and len(got) > 1408 and
            struct.unpack("!H", got[2:4])[0] == len(got),
            "nothing with the long HELO received; %s" % d.log_tail(2))


def start_error(extra):
    """run spamd with sync flags that must stop the start: (rc, stderr)"""
    tmp = tempfile.mkdtemp(prefix="obsdd-start.")
    try:
        r = subprocess.run([fl.SPAMD, "-d", "--config-port", "0",
                            "-p", str(fl.pick_port("127.0.0.1", *PORTS)),
                            "--db-dir", os.path.join(tmp, "db"),
                            "-y", "127.0.0.1"] + extra,
                           capture_output=True, text=True,
                           timeout=fl.slow(30))
        return r.returncode, r.stderr
    except subprocess.TimeoutExpired:
        return None, "did not exit"
    finally:
        subprocess.run(["rm", "-rf", tmp])


def case_key_errors(tmp):
    """point 10: the errors name the option"""
    rc, err = start_error(["--sync-key", os.path.join(tmp, "missing.key")])
    R.check("10. a missing key file stops the start naming --sync-no-auth "
            "(OpenBSD's empty key)", rc == 1 and "--sync-no-auth" in err and
            "empty key" in err and "missing.key" in err, "rc %r: %s" % (
                rc, err.strip()[-300:]))
    k = os.path.join(tmp, "open.key")
    with open(k, "w") as f:
        f.write("shared\n")
    os.chmod(k, 0o644)
    rc, err = start_error(["--sync-key", k])
    R.check("10. a 0644 key stops the start naming --sync-key-any-mode",
            rc == 1 and "--sync-key-any-mode" in err and "0644" in err,
            "rc %r: %s" % (rc, err.strip()[-300:]))
    rc, err = start_error(["--sync-no-auth", "--sync-key-any-mode"])
    R.check("10. --sync-no-auth with --sync-key-any-mode is refused",
            rc == 1 and "contradict" in err, "rc %r: %s" % (rc, err))


def case_noauth(tmp):
    """point 10: --sync-no-auth takes OpenBSD's empty-key packets"""
    sport = fl.pick_port("127.0.0.1", *PORTS, kind=socket.SOCK_DGRAM)
    d = fl.Spamd("obsdd-noauth", ports=PORTS, extra=["-y", "127.0.0.1", "-Y", "127.0.0.2:%d" % (sport + 1),
                        "--sync-port", str(sport), "--sync-no-auth",
                        "--domains", "none"])
    try:
        d.wait_started()
        now = int(time.time())
        send_from(obsd_grey(b"other", 0x2000, "192.0.2.31", b"h.example",
                            b"a@example.org", b"b@example.com", now),
                  "127.0.0.2", sport)
        send_from(obsd_grey(b"", 0x2001, "192.0.2.30", b"h.example",
                            b"a@example.org", b"b@example.com", now),
                  "127.0.0.2", sport)
        line = wait_grey(d, "192.0.2.30")
        R.check("10. --sync-no-auth: a packet signed with the empty key "
                "(OpenBSD without a key file) is applied",
                line is not None and line[2:5] == [
                    "h.example", "a@example.org", "b@example.com"],
                "%r %s" % (line, d.log_tail(2)))
        R.check("10. ... and one signed with another key is dropped",
                grey_line(d, "192.0.2.31") is None and
                "reason=hmac" in d.logtext(), d.log_tail(2))
    except RuntimeError as e:
        R.notok("10. --sync-no-auth daemon", str(e)[-300:])
    finally:
        d.stop()
        fl.sanitizer_check(R, "10. no sanitizer report", paths=[d.logpath])
        d.cleanup()


def case_greylogd():
    """point 18: -l is refused, pointing to -g"""
    if not os.path.exists(GREYLOGD):
        R.notok("18. greylogd built", GREYLOGD + " missing")
        return
    r = subprocess.run([GREYLOGD, "-D", "-l", "pflog0"], capture_output=True,
                       text=True, timeout=fl.slow(30))
    R.check("18. greylogd -l pflog0: refused, saying Linux has no pflog "
            "and pointing to -g", r.returncode == 2 and "pflog" in r.stderr
            and "-g" in r.stderr and "NFLOG" in r.stderr,
            "rc %d: %s" % (r.returncode, r.stderr.strip()[-300:]))


def main():
    if not os.path.exists(fl.SPAMD):
        R.notok("spamd built", fl.SPAMD + " missing (make)")
        return 1
    tmp = tempfile.mkdtemp(prefix="openbsd_daemon.")
    # the key as an OpenBSD site has it: readable by all (0644)
    kfile = os.path.join(tmp, "spamd.key")
    with open(kfile, "wb") as f:
        f.write(b"openbsd site key\n")
    os.chmod(kfile, 0o644)
    key = hashlib.sha1(b"openbsd site key\n").hexdigest().encode()
    sport = fl.pick_port("127.0.0.1", *PORTS, kind=socket.SOCK_DGRAM)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.settimeout(fl.slow(2))
    d = None
    try:
        peer.bind(("127.0.0.2", sport + 1))
        extra = ["-y", "127.0.0.1", "-Y", "127.0.0.2:%d" % (sport + 1),
                 "--sync-port", str(sport), "--sync-key", kfile,
                 "--sync-key-any-mode", "--domains", "none"]
        if not ROOT:
            extra.append("--config-any-port")
        os.environ["SPAMD_CFG_TOTAL"] = "262144"
        try:
            d = fl.Spamd("obsdd", ports=PORTS, config_port=True,
                         extra=extra)
        finally:
            del os.environ["SPAMD_CFG_TOTAL"]
        d.wait_started()
        R.check("10. --sync-key-any-mode: a 0644 key is taken",
                d.proc.poll() is None, d.log_tail(2))
        case_config(d)
        case_long(d, key, sport, peer)
    except (RuntimeError, OSError) as e:
        R.notok("openbsd_daemon: daemon with sync and config port",
                "%s %s" % (e, d.log_tail(3) if d else ""))
    finally:
        peer.close()
        if d is not None:
            d.stop()
            fl.sanitizer_check(R, "no sanitizer report", paths=[d.logpath])
            d.cleanup()
    case_key_errors(tmp)
    case_noauth(tmp)
    case_greylogd()
    subprocess.run(["rm", "-rf", tmp])
    return R.status()


if __name__ == "__main__":
    sys.exit(main())
