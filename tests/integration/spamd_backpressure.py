#!/usr/bin/env python3
"""spamd_backpressure.py - a database writer that falls behind slows RCPTs
down instead of losing tuples.

The writer process is stopped (SIGSTOP) while 30 clients pipeline 1,000
RCPTs each with long addresses, about 24 MB of tuples - more than the
engine's queue to the writer holds. While the writer is stopped, part of
the RCPTs must stay unanswered (the engine parks them); once it runs again
every RCPT is answered, every tuple is in the database, and the engine's
counters show tuples waited and none dropped.
"""
import os
import signal
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as fl  # noqa: E402

R = fl.Results()
CLIENTS, RCPTS = 30, 1000
PAD = "x" * 200


def client(port, n, counts, stop):
    """one pipelining client: HELO, MAIL, RCPTS RCPTs, then DATA and QUIT"""
    buf = b""

    def lines():
        """complete reply lines received so far (recv with a timeout)"""
        nonlocal buf
        try:
            data = s.recv(65536)
        except socket.timeout:
            return []
        if not data:
            raise OSError("closed by spamd")
        buf += data
        *done, buf = buf.split(b"\n")
        return done
    try:
        s = socket.create_connection(("127.0.0.1", port), 10)
        s.settimeout(1)
        helo = "h%d-%s.example" % (n, PAD)
        out = ["HELO " + helo, "MAIL FROM:<s%d-%s@example.org>" % (n, PAD)]
        out += ["RCPT TO:<r%d-%d-%s@example.com>" % (n, i, PAD)
                for i in range(RCPTS)]
        for _ in range(10):                   # the banner
            if lines():
                break
        s.sendall(("\r\n".join(out) + "\r\n").encode())
        got = 0
        while got < RCPTS + 2 and not stop.is_set():
            got += sum(1 for ln in lines() if ln.startswith(b"250"))
            counts[n] = got
        s.sendall(b"DATA\r\n")
        reply = []
        for _ in range(20):
            reply = lines()
            if reply:
                break
        counts[n + CLIENTS] = reply[0].decode(errors="replace") if reply \
            else "no reply"
        s.close()
    except OSError as e:
        counts[n + CLIENTS] = "error %s" % e


def main():
    if not os.path.exists(fl.SPAMD):
        R.skip("backpressure", "build/spamd not built")
        return 0
    # the caps at their highest: this measures back-pressure, and its 30
    # clients all come from 127.0.0.1 with 1,000 RCPTs each, past the
    # default --max-rcpt (100 a connection) and --max-new-tuples (200
    # an hour for one address)
    d = fl.Spamd("bp", verbose=False, extra=["-c", "200",
                                              "--max-per-client", "0",
                                              "--max-rcpt", "100000",
                                              "--max-new-tuples",
                                              "10000000"])
    try:
        if not d.wait_ready():
            R.notok("backpressure: spamd starts", d.logtext()[-300:])
            return 1
        fl.wait_for(lambda: d.writer_pid() is not None, 10)
        wp = d.writer_pid()
        os.kill(wp, signal.SIGSTOP)
        counts = [0] * (2 * CLIENTS)
        stop = threading.Event()
        th = [threading.Thread(target=client, args=(d.port, i, counts, stop))
              for i in range(CLIENTS)]
        for t in th:
            t.start()
        sent = CLIENTS * (RCPTS + 2)
        # the answers stop growing once the engine's queue is full
        last = [-1]

        def settled():
            now = sum(counts[:CLIENTS])
            same = now == last[0]
            last[0] = now
            return same and now > 0
        fl.wait_for(settled, 60, step=2)
        held = sum(counts[:CLIENTS])
        R.check("backpressure: with the writer stopped, RCPTs wait "
                "(%d of %d commands answered)" % (held, sent), held < sent,
                "every command was answered: tuples were queued or lost")
        os.kill(wp, signal.SIGCONT)
        fl.wait_for(lambda: sum(counts[:CLIENTS]) == sent, 120, step=0.5)
        stop.set()
        for t in th:
            t.join(30)
        R.check("backpressure: every RCPT answered once the writer runs",
                sum(counts[:CLIENTS]) == sent,
                "%d of %d" % (sum(counts[:CLIENTS]), sent))
        datas = [c for c in counts[CLIENTS:] if not c.startswith("451")]
        R.check("backpressure: every client still gets 451 at DATA",
                not datas, repr(datas[:3]))
        want = CLIENTS * RCPTS

        def stored():
            return sum(1 for f in fl.greyctl_dump(d.db) or []
                       if f[0] == "GREY")
        fl.wait_for(lambda: stored() == want, 30, step=0.5)
        n = stored()
        R.check("backpressure: all %d tuples are in the database" % want,
                n == want, "%d stored" % n)
        os.kill(d.pid, signal.SIGUSR1)
        fl.wait_for(lambda: "tuples_waited=" in d.logtext(), 10)
        text = d.logtext()
        R.check("backpressure: the engine counted waits, dropped nothing",
                "tuples_dropped=0 " in text and
                "tuples_waited=0 " not in text,
                [ln for ln in text.splitlines() if "tuples_waited" in ln][-1:])
    finally:
        d.cleanup()
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
