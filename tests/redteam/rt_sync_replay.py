#!/usr/bin/env python3
"""rt_sync_replay.py - red team: replayed and foreign sync packets
(issue 14, sync part).

One spamd with -y 127.0.0.1 and -Y 127.0.0.2 (its only peer) and a key;
this script is the peer: it builds signed sync v2 packets (GREY, TRAPPED)
and sends them from 127.0.0.2 (or elsewhere). Before the fix the replay
window was keyed by source address and port, and -y took any source:
  - a captured GREY resent from a new source port after the pass time
    passed the tuple (event=pass source=sync): now a replay, no pass;
  - a packet from 127.0.0.3 (not a -Y peer) was applied: now dropped,
    counted as dropped_peer and logged with the source;
  - a TRAPPED resent after greyctl -d came back: now a replay, and after
    a restart of spamd (empty window) stale (stamped before the start);
  - --sync-accept 127.0.0.4 admits that source (the option is new).
Counts come from the writer's sync_counters line (SIGUSR1) and the
store; no wall-clock threshold.
"""
import hashlib
import hmac
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

TOP = os.environ.get("TOP") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "helpers"))
import fault_lib as fl  # noqa: E402

R = fl.Results()
PORTS = (15400, 15599)


def is_binary(path):
    """path is an ELF file, not run.sh's valgrind wrapper script"""
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


SANDBOX = ["--seccomp", "kill"] if is_binary(fl.SPAMD) else []


def sign(key, body, counter):
    """header + body (TLVs and END) signed with key"""
    end = struct.pack("!HH", 0, 4)
    total = 32 + len(body) + len(end)
    pkt = struct.pack("!BBHI", 2, 2, total, counter) + b"\0" * 24 + body + \
        end
    mac = hmac.new(key.encode(), pkt, hashlib.sha1).digest()
    return pkt[:8] + mac + pkt[28:]


def grey_packet(key, counter, ip, helo, mfrom, to, ts):
    """one GREY TLV"""
    strs = mfrom.encode() + b"\0" + to.encode() + b"\0" + helo.encode() + \
        b"\0"
    body = struct.pack("!IIHHH", ts, struct.unpack("!I", socket.inet_aton(
        ip))[0], len(mfrom) + 1, len(to) + 1, len(helo) + 1) + strs
    tlen = 4 + len(body)
    tlen += (-tlen) % 16
    tlv = struct.pack("!HH", 1, tlen) + body
    return sign(key, tlv + b"\0" * (tlen - len(tlv)), counter)


def trapped_packet(key, counter, ip, ts, expire):
    """one TRAPPED TLV"""
    tlv = struct.pack("!HHII", 3, 16, ts, expire) + socket.inet_aton(ip)
    return sign(key, tlv, counter)


def send(pkt, src, port):
    """pkt from src (a fresh source port each time) to 127.0.0.1:port"""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((src, 0))
        s.sendto(pkt, ("127.0.0.1", port))
        return s.getsockname()[1]
    finally:
        s.close()


def counters(sp):
    """the writer's newest sync_counters line as a dict"""
    before = sp.count("event=sync_counters")
    os.kill(sp.pid, signal.SIGUSR1)
    fl.wait_for(lambda: sp.count("event=sync_counters") > before,
                fl.slow(10))
    lines = re.findall(r"event=sync_counters (.*)", sp.logtext())
    if not lines:
        return {}
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}


def received_more(sp, before):
    """wait until the writer read one more datagram than before"""
    return fl.wait_for(lambda: counters(sp).get("received", 0) > before,
                       fl.slow(10), 0.2)


def records(db, ip):
    """the store's record types for ip"""
    return [x[0] for x in (fl.greyctl_dump(db) or []) if ip in x]


def start(name, tmp, db, sync_port, kfile, extra=()):
    sp = fl.Spamd(name, tmp=tmp, db=db, ports=PORTS, extra=SANDBOX + [
        "-y", "127.0.0.1", "-Y", "127.0.0.2:%d" % (sync_port + 1),
        "--sync-port", str(sync_port), "--sync-key", kfile,
        "--pass-seconds", "1"] + list(extra))
    sp.wait_started(fl.slow(20), fl.slow(20))
    return sp


def main():
    if not os.path.exists(fl.SPAMD):
        R.notok("spamd built", fl.SPAMD + " missing (make)")
        return 1
    tmp = tempfile.mkdtemp(prefix="rt-sync.")
    kfile = os.path.join(tmp, "spamd.key")
    with open(kfile, "wb") as f:
        f.write(os.urandom(64))
    os.chmod(kfile, 0o600)
    with open(kfile, "rb") as f:
        key = hashlib.sha1(f.read()).hexdigest()
    db = os.path.join(tmp, "db")
    sync_port = fl.pick_port("127.0.0.1", *PORTS, kind=socket.SOCK_DGRAM)
    sp = None
    counter = 0x12345678
    try:
        sp = start("rt-sync", tmp, db, sync_port, kfile)
        # 1. a GREY, then the same bytes from a new port past the pass time
        now = int(time.time())
        g = grey_packet(key, counter, "192.0.2.10", "h.example",
                        "a@example.org", "b@example.com", now)
        c0 = counters(sp).get("received", 0)
        send(g, "127.0.0.2", sync_port)
        received_more(sp, c0)
        fl.wait_for(lambda: "GREY" in records(db, "192.0.2.10"), fl.slow(10))
        R.check("the peer's GREY is applied",
                "GREY" in records(db, "192.0.2.10"), sp.log_tail(3))
        time.sleep(2.2)  # past --pass-seconds 1 (what the attack waits)
        c1 = counters(sp)
        send(g, "127.0.0.2", sync_port)
        received_more(sp, c1.get("received", 0))
        c2 = counters(sp)
        R.check("GREY resent from a new source port: dropped as replay",
                c2.get("dropped_replay", 0) > c1.get("dropped_replay", 0),
                "dropped_replay %s -> %s" % (c1.get("dropped_replay"),
                                             c2.get("dropped_replay")))
        R.check("... and no pass, no WHITE",
                "event=pass ip=192.0.2.10 source=sync" not in sp.logtext()
                and "WHITE" not in records(db, "192.0.2.10"),
                str(records(db, "192.0.2.10")))

        # 2. a packet from 127.0.0.3, not a -Y peer
        counter += 1
        g3 = grey_packet(key, counter, "192.0.2.11", "h.example",
                         "a@example.org", "b@example.com", int(time.time()))
        send(g3, "127.0.0.3", sync_port)
        received_more(sp, c2.get("received", 0))
        c3 = counters(sp)
        R.check("a packet from 127.0.0.3 (no -Y peer) is dropped, counted",
                c3.get("dropped_peer", 0) == 1 and
                not records(db, "192.0.2.11"),
                "dropped_peer=%s records=%s" % (c3.get("dropped_peer"),
                                                records(db, "192.0.2.11")))
        R.check("... and logged with its source",
                "reason=peer peer=127.0.0.3" in sp.logtext(), sp.log_tail(2))

        # 3. TRAPPED, greyctl -d, the same TRAPPED from a new port
        counter += 1
        now = int(time.time())
        t = trapped_packet(key, counter, "192.0.2.12", now, now + 86400)
        send(t, "127.0.0.2", sync_port)
        fl.wait_for(lambda: "TRAPPED" in records(db, "192.0.2.12"),
                    fl.slow(10))
        R.check("the peer's TRAPPED is applied",
                "TRAPPED" in records(db, "192.0.2.12"), sp.log_tail(3))
        r = subprocess.run([fl.GREYCTL, "-D", db, "-d", "-t", "192.0.2.12"],
                           capture_output=True, text=True, timeout=fl.slow(30))
        R.check("greyctl -d -t removes it",
                r.returncode == 0 and not records(db, "192.0.2.12"),
                r.stderr.strip())
        c4 = counters(sp)
        send(t, "127.0.0.2", sync_port)
        received_more(sp, c4.get("received", 0))
        R.check("the TRAPPED resent from a new port does not come back",
                not records(db, "192.0.2.12"), str(records(db, "192.0.2.12")))
        # after a restart the window is empty: the start time decides
        sp.stop()
        time.sleep(1.1)  # the restart's second must follow the packet's
        sp = start("rt-sync2", tmp, db, sync_port, kfile,
                   ["--sync-accept", "127.0.0.4"])
        c5 = counters(sp)
        send(t, "127.0.0.2", sync_port)
        received_more(sp, c5.get("received", 0))
        c6 = counters(sp)
        R.check("... nor after spamd restarted (stale: before the start)",
                not records(db, "192.0.2.12") and
                c6.get("dropped_stale", 0) == 1,
                "records=%s stale=%s" % (records(db, "192.0.2.12"),
                                         c6.get("dropped_stale")))

        # 4. --sync-accept 127.0.0.4 admits that source
        counter += 1
        g4 = grey_packet(key, counter + 1000000, "192.0.2.13", "h.example",
                         "a@example.org", "b@example.com", int(time.time()))
        send(g4, "127.0.0.4", sync_port)
        fl.wait_for(lambda: "GREY" in records(db, "192.0.2.13"), fl.slow(10))
        R.check("--sync-accept 127.0.0.4 admits its packets",
                "GREY" in records(db, "192.0.2.13") and
                counters(sp).get("dropped_peer", 0) == 0,
                str(records(db, "192.0.2.13")))
        R.check("no child died", "signal=" not in sp.logtext(),
                sp.log_tail(3))
    except RuntimeError as e:
        R.notok("spamd runs", str(e)[-400:])
    finally:
        if sp is not None:
            sp.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return R.status()


if __name__ == "__main__":
    sys.exit(main())
