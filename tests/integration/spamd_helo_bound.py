#!/usr/bin/env python3
"""spamd_helo_bound.py - a client cannot make spamd look up a HELO name
per line: with --helo-check on, one connection sending 50 HELO/EHLO lines
with 50 different names gets at most 4 names checked (ENGINE_DNS_MAX_HELO);
the others are counted as helo_limited in the SIGUSR1 line, and the
dialogue still ends in 451. The resolver is the DNS responder of dnsbl.py,
run in this process: the names looked up are counted where the queries
arrive, not read from spamd's own counter.
"""
import os
import re
import signal
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "helpers"))
sys.path.insert(0, HERE)
import dnsbl  # noqa: E402
import fault_lib as fl  # noqa: E402

R = fl.Results()
HELOS = 50


def main():
    if not os.path.exists(fl.SPAMD):
        R.skip("helo bound", "build/spamd not built")
        return 0
    dns = dnsbl.Server()
    d = fl.Spamd("helo", extra=["--helo-check", "log", "--dns-server",
                               "127.0.0.1:%d" % dns.port,
                               "--dnsbl-timeout", "500"])
    try:
        if not d.wait_ready():
            R.notok("helo bound: spamd starts", d.logtext()[-300:])
            return 1
        s = socket.create_connection(("127.0.0.1", d.port), 10)
        f = s.makefile("rb")
        f.readline()
        lines = ["HELO h%d.example" % i for i in range(HELOS)]
        lines += ["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>",
                  "DATA"]
        s.sendall(("\r\n".join(lines) + "\r\n").encode())
        replies = [f.readline().decode(errors="replace")
                   for _ in range(len(lines))]
        s.close()
        R.check("helo bound: %d HELOs answered, dialogue ends in 451"
                % HELOS, replies[-1].startswith("451") and
                all(r.startswith("250") for r in replies[:HELOS]),
                repr(replies[-3:]))
        os.kill(d.pid, signal.SIGUSR1)
        fl.wait_for(lambda: "helo_limited=" in d.logtext(), 10)
        m = re.findall(r"helo_checks=(\d+) .*helo_limited=(\d+)",
                       d.logtext())
        checks, limited = (int(m[-1][0]), int(m[-1][1])) if m else (-1, -1)
        # the distinct HELO names the server was asked for (any type);
        # the engine already counted 46 as limited, so no more can come:
        # wait (bounded) for the 4 asked ones to arrive, then compare
        def asked_names():
            with dns.lock:
                return {n.lower() for n, t in dns.queries
                        if n.lower().startswith("h") and
                        n.lower().endswith(".example")}
        fl.wait_for(lambda: len(asked_names()) >= 4, fl.slow(10))
        asked = asked_names()
        R.check("helo bound: the DNS server was asked for 4 of the %d "
                "HELO names" % HELOS, len(asked) == 4,
                "asked for %d: %s" % (len(asked), sorted(asked)[:6]))
        R.check("helo bound: spamd counts the other %d as helo_limited"
                % (HELOS - 4), checks == 4 and limited == HELOS - 4,
                "helo_checks=%d helo_limited=%d" % (checks, limited))
    finally:
        d.cleanup()
        dns.close()
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
