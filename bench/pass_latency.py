#!/usr/bin/env python3
"""pass_latency.py - run inside the benchmark's namespace by
bench_pass_latency.sh: N clients (127.1.x.y) each make a greylisted
delivery, wait past the pass time, and retry; a poller lists the nftables
set spamd-white every 5 ms and notes when each address appears. Prints the
median, p90, p99 and max of (first seen in the set - retry's RCPT sent),
and as the baseline in the same run the time one `nft list set` takes
(the poller's resolution)."""
import json
import socket
import subprocess
import sys
import threading
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
N = max(10, min(N, 20000))
PORT = 8025


def addr(i):
    return "127.1.%d.%d" % (i // 250, i % 250 + 1)


def dialogue(src, rcpt_times=None):
    s = socket.create_connection(("127.0.0.1", PORT), 10,
                                 source_address=(src, 0))
    f = s.makefile("rb")
    f.readline()
    for cmd in ("HELO bench.example", "MAIL FROM:<a@bench.example>"):
        s.sendall((cmd + "\r\n").encode())
        f.readline()
    if rcpt_times is not None:
        rcpt_times[src] = time.monotonic()
    s.sendall(b"RCPT TO:<b@example.com>\r\n")
    f.readline()
    s.sendall(b"QUIT\r\n")
    s.close()


def wait_port():
    end = time.monotonic() + 15
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", PORT), 1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def main():
    if not wait_port():
        print("bench_pass_latency: spamd did not start")
        return 1
    for i in range(N):
        dialogue(addr(i))
    time.sleep(2.2)			# past the 1 s pass time
    seen, sent = {}, {}
    stop = threading.Event()
    lists = []

    def poll():
        while not stop.is_set():
            t0 = time.monotonic()
            out = subprocess.run(["nft", "-j", "list", "set", "inet",
                                  "spamd", "spamd-white"],
                                 capture_output=True, text=True).stdout
            t1 = time.monotonic()
            lists.append(t1 - t0)
            try:
                for obj in json.loads(out)["nftables"]:
                    for el in obj.get("set", {}).get("elem", []):
                        ip = el["elem"]["val"] if isinstance(el, dict) \
                            else el
                        seen.setdefault(ip, t1)
            except (ValueError, KeyError, TypeError):
                pass
            time.sleep(0.005)
    th = threading.Thread(target=poll)
    th.start()
    t_start = time.monotonic()
    for i in range(N):
        dialogue(addr(i), sent)
        # pace the retries so the poller sees each pass on its own
        while time.monotonic() < t_start + (i + 1) * 0.01:
            time.sleep(0.001)
    end = time.monotonic() + 10
    while len([a for a in sent if a in seen]) < N and time.monotonic() < end:
        time.sleep(0.05)
    stop.set()
    th.join()
    lat = sorted(seen[a] - sent[a] for a in sent if a in seen)
    if not lat:
        print("bench_pass_latency: no address reached the set")
        return 1

    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    lists.sort()
    print("bench_pass_latency: passes=%d in_set=%d median_ms=%.1f "
          "p90_ms=%.1f p99_ms=%.1f max_ms=%.1f" % (
              N, len(lat), pct(0.5), pct(0.9), pct(0.99), lat[-1] * 1000))
    print("bench_pass_latency: baseline nft_list_set_median_ms=%.1f "
          "(poll resolution); p99 / OpenBSD's 60 s scan = %.4f" % (
              lists[len(lists) // 2] * 1000, pct(0.99) / 60000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
