#!/usr/bin/env python3
"""spamd_input_bounds.py - the writer's two local listeners refuse
oversized input with a clear answer and keep serving:
- the HTTP listener (--http-listen): a request with a 20 KB header gets
  400, the next request to /traplist still gets 200;
- the control socket (DB/spamd.sock): a request line over 512 bytes and a
  line with a NUL byte each get an error= line and end, then a good
  request (stats) still answers.
"""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "helpers"))
import fault_lib as fl  # noqa: E402

R = fl.Results()


def http(port, req):
    """send one raw HTTP request, return the status line"""
    s = socket.create_connection(("127.0.0.1", port), 10)
    s.sendall(req)
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


def ctl(path, line):
    """one control-socket request, the answer lines"""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(path)
    s.sendall(line)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode(errors="replace").splitlines()


def main():
    if not os.path.exists(fl.SPAMD):
        R.skip("input bounds", "build/spamd not built")
        return 0
    hport = fl.pick_port()
    d = fl.Spamd("bounds", extra=["--http-listen", "127.0.0.1:%d" % hport])
    try:
        if not d.wait_ready():
            R.notok("input bounds: spamd starts", d.logtext()[-300:])
            return 1
        fl.wait_for(lambda: os.path.exists(os.path.join(d.db,
                                                        "spamd.sock")), 10)
        big = b"GET /traplist HTTP/1.1\r\nHost: x\r\nX-Big: " + \
            b"a" * 20000 + b"\r\n\r\n"
        st = http(hport, big)
        R.check("bounds: a 20 KB HTTP header gets 400", " 400 " in st, st)
        st = http(hport, b"GET /traplist HTTP/1.0\r\n\r\n")
        R.check("bounds: the next HTTP request still gets 200",
                " 200 " in st, st)
        sock = os.path.join(d.db, "spamd.sock")
        ans = ctl(sock, b"explain " + b"1" * 2000 + b"\n")
        R.check("bounds: a 2,000-byte control line gets error= and end",
                any(a.startswith("error=") for a in ans) and
                ans[-1:] == ["end"], ans[:3])
        ans = ctl(sock, b"stats\0x\n")
        R.check("bounds: a control line with a NUL gets error= and end",
                any(a.startswith("error=") for a in ans) and
                ans[-1:] == ["end"], ans[:3])
        ans = ctl(sock, b"stats\n")
        R.check("bounds: the control socket still answers stats",
                any("proc=writer" in a for a in ans), ans[:3])
        fl.sanitizer_check(R, "bounds: no sanitizer report", [d.logtext()])
    finally:
        d.cleanup()
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
