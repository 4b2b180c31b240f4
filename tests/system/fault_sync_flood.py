#!/usr/bin/env python3
"""fault_sync_flood.py - 100,000 bad sync packets at the writer.

spamd listens for sync packets on 127.0.0.1 (-y, --sync-port, a key file).
From one source the test sends 40,000 packets with a wrong HMAC, 30,000
truncated packets (their length field no longer matches) and one valid
GREY packet followed by 29,999 replays of it: 100,000 in all, paced so
the socket's receive queue drains (the kernel's drop counter for the
socket, /proc/net/udp, must stay 0, so every packet reached the daemon).
Checks, from the writer's sync_counters line (SIGUSR1): received 100,000;
dropped_hmac 40,000; dropped_short + dropped_length 30,000;
dropped_replay 29,999; accepted and applied exactly 1; the one valid tuple
is in the store (greyctl) and nothing else came in; the daemon's CPU time
over the flood (utime+stime of the process tree) stays under a generous
10 s, a CPU-time bound, not a wall-clock one. Ports 13000-13999 on
127.0.0.1. Root is not needed.
"""
import hashlib
import hmac
import os
import random
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as F  # noqa: E402

R = F.Results()
N_HMAC, N_TRUNC, N_REPLAY = 40000, 30000, 30000
# sized for native code: under valgrind (SPAMD_TEST_SLOW) it stretches
CPU_BOUND = F.slow(10.0)


def grey_packet(key, counter, ip, helo, mfrom, to, ts):
    """One sync v2 packet with a GREY TLV and END, signed with key."""
    strs = mfrom.encode() + b"\0" + to.encode() + b"\0" + helo.encode() + \
        b"\0"
    body = struct.pack("!IIHHH", ts, struct.unpack("!I", socket.inet_aton(
        ip))[0], len(mfrom) + 1, len(to) + 1, len(helo) + 1) + strs
    tlen = 4 + len(body)
    tlen += (-tlen) % 16
    tlv = struct.pack("!HH", 1, tlen) + body
    tlv += b"\0" * (tlen - len(tlv))
    end = struct.pack("!HH", 0, 4)
    total = 32 + len(tlv) + len(end)
    hdr = struct.pack("!BBHI", 2, 2, total, counter) + b"\0" * 24
    pkt = hdr + tlv + end
    mac = hmac.new(key.encode(), pkt, hashlib.sha1).digest()
    return pkt[:8] + mac + pkt[28:]


def udp_queue(port):
    """(rx_queue bytes, drops) of the UDP socket bound to port."""
    try:
        with open("/proc/net/udp") as f:
            for line in f.readlines()[1:]:
                p = line.split()
                if int(p[1].split(":")[1], 16) == port:
                    return int(p[4].split(":")[1], 16), int(p[-1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def counters(sp):
    """The writer's newest sync_counters line as a dict."""
    return F.sync_counters(sp)


def main():
    if not os.access(F.SPAMD, os.X_OK):
        R.skip("sync flood", "%s not built" % F.SPAMD)
        return 0
    sync_port = F.pick_port()
    tmpkey = os.urandom(64)
    sp = None
    try:
        kdir = tempfile.mkdtemp(prefix="spamd-fault-sync.")
        kfile = os.path.join(kdir, "spamd.key")
        with open(kfile, "wb") as f:
            f.write(tmpkey)
        os.chmod(kfile, 0o600)
        key = hashlib.sha1(tmpkey).hexdigest()
        sp = F.Spamd("sync", tmp=kdir, verbose=False,
                     extra=["-y", "127.0.0.1", "--sync-accept", "127.19.0.1",
                            "--sync-port", str(sync_port),
                            "--sync-key", kfile])
        run(sp, key, sync_port)
    finally:
        if sp is not None:
            sp.cleanup()
    return 1 if R.failed else 0


def run(sp, key, port):
    if not R.check("spamd starts with -y 127.0.0.1 --sync-key",
                   sp.wait_ready() and F.wait_for(
                       lambda: udp_queue(port) is not None, 10),
                   sp.logtext()[-400:]):
        return
    now = int(time.time())
    good = grey_packet(key, 1000, "192.0.2.77", "sync.example",
                       "a@sync.example", "b@example.com", now)
    rnd = random.Random(7)
    plan = []
    for i in range(N_HMAC):
        p = bytearray(grey_packet(key, 5000 + i, "192.0.2.%d" % (i % 200 + 1),
                                  "h%d.example" % i, "x%d@example.org" % i,
                                  "y@example.com", now))
        p[8 + rnd.randrange(20)] ^= 1 + rnd.randrange(255)
        plan.append(bytes(p))
    for i in range(N_TRUNC):
        plan.append(good[:rnd.randrange(len(good))])
    rnd.shuffle(plan)
    plan = [good] + [good] * (N_REPLAY - 1) + plan
    # the valid one first, so the replays count as replays
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.19.0.1", 0))
    drops0 = udp_queue(port)[1]
    cpu0 = sp.cpu_secs()
    sent = 0
    for i in range(0, len(plan), 200):
        for p in plan[i:i + 200]:
            s.sendto(p, ("127.0.0.1", port))
            sent += 1
        F.wait_for(lambda: (udp_queue(port) or (0, 0))[0] == 0, 10, 0.001)
    F.wait_for(lambda: (udp_queue(port) or (0, 0))[0] == 0, 10)
    cpu = sp.cpu_secs() - cpu0
    drops = udp_queue(port)[1] - drops0
    s.close()
    R.check("%d packets sent, none dropped by the kernel (paced)" % sent,
            sent == N_HMAC + N_TRUNC + N_REPLAY and drops == 0,
            "sent %d, kernel drops %d" % (sent, drops))
    c = counters(sp)
    want = {"received": sent, "dropped_hmac": N_HMAC,
            "dropped_replay": N_REPLAY - 1, "accepted": 1, "applied": 1}
    bad = {k: (c.get(k), v) for k, v in want.items() if c.get(k) != v}
    trunc = c.get("dropped_short", 0) + c.get("dropped_length", 0)
    R.check("counters match what was sent (received %s, hmac %s, short+"
            "length %d, replay %s, accepted %s, applied %s)" % (
                c.get("received"), c.get("dropped_hmac"), trunc,
                c.get("dropped_replay"), c.get("accepted"),
                c.get("applied")),
            not bad and trunc == N_TRUNC,
            "got/want %s, short+length %d/%d" % (bad, trunc, N_TRUNC))
    R.check("the flood cost the daemon %.2f CPU seconds (bound %.0f)" %
            (cpu, CPU_BOUND), cpu < CPU_BOUND, "%.2f" % cpu)
    R.check("spamd still runs", sp.proc.poll() is None and
            "event=child-died" not in sp.logtext(), sp.logtext()[-300:])
    rc = sp.stop()
    R.check("SIGTERM: exit status 0", rc == 0, "rc %s" % rc)
    dump = F.greyctl_dump(sp.db) or []
    grey = [d for d in dump if d[0] == "GREY"]
    R.check("only the one valid tuple was applied to the store",
            len(grey) == 1 and grey[0][1] == "192.0.2.77",
            str(grey[:3]))


if __name__ == "__main__":
    sys.exit(main())
