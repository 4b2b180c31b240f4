#!/usr/bin/env python3
"""rcpt_flood.py PORT N [SRC] - the client of bench_rcpt_flood.sh: one
connection to 127.0.0.1:PORT (from SRC, default 127.0.0.1), HELO, MAIL,
then N RCPTs with distinct recipients pipelined in chunks of 1,000, then
DATA. Prints one line: rcpts=N answered_250=.. answered_452=..
answered_other=.. data=CODE secs=S (the time from the first RCPT sent to
DATA's answer)."""
import socket
import sys
import time

port, n = int(sys.argv[1]), int(sys.argv[2])
src = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
CHUNK = 1000
s = socket.create_connection(("127.0.0.1", port), 60,
                             source_address=(src, 0))
f = s.makefile("rb")


def reply():
    """the code of one whole reply, 0 at EOF"""
    while True:
        ln = f.readline()
        if not ln:
            return 0
        if ln[3:4] != b"-":
            return int(ln[:3])


reply()
s.sendall(b"HELO flood.bench.example\r\nMAIL FROM:<f@bench.example>\r\n")
reply()
reply()
codes = {}
t0 = time.monotonic()
for start in range(0, n, CHUNK):
    k = min(CHUNK, n - start)
    s.sendall(b"".join(b"RCPT TO:<u%d@example.com>\r\n" % i
                       for i in range(start, start + k)))
    for _ in range(k):
        c = reply()
        codes[c] = codes.get(c, 0) + 1
s.sendall(b"DATA\r\n")
data = reply()
secs = time.monotonic() - t0
s.close()
print("rcpts=%d answered_250=%d answered_452=%d answered_other=%d data=%d "
      "secs=%.2f" % (n, codes.get(250, 0), codes.get(452, 0),
                     n - codes.get(250, 0) - codes.get(452, 0), data, secs))
