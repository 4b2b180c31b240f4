# redirect.sh - does a firewall ruleset really divert? Sourced by the
# backend system tests (fw_nftables.sh, fw_ipset.sh). Needs NS (the
# namespace holding the ruleset) and CL (a name for the client namespace)
# set; the caller deletes CL and kills SRV in its cleanup.

# redirect_netpair - the client namespace CL (10.99.0.1, fd99::1) joined to
# NS (10.99.0.2, fd99::2) by a veth pair
redirect_netpair() {
	ip netns add "$CL" || return 1
	ip link add "vr$$a" type veth peer name "vr$$b" || return 1
	ip link set "vr$$a" netns "$CL"; ip link set "vr$$b" netns "$NS"
	ip -n "$CL" link set lo up; ip -n "$CL" link set "vr$$a" up
	ip -n "$NS" link set "vr$$b" up
	ip -n "$CL" addr add 10.99.0.1/24 dev "vr$$a"
	ip -n "$NS" addr add 10.99.0.2/24 dev "vr$$b"
	ip -n "$CL" addr add fd99::1/64 dev "vr$$a" nodad
	ip -n "$NS" addr add fd99::2/64 dev "vr$$b" nodad
}

# redirect_serve - in NS, one dual-stack listener on 25 and one on 8025,
# each answering with its port (100 connections, 120 s at most); sets SRV
# and returns once 8025 listens
redirect_serve() {
	ip netns exec "$NS" python3 -c '
import socket, threading
def serve(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port)); s.listen(16)
    for _ in range(100):
        c, _a = s.accept(); c.sendall(b"port=%d\r\n" % port); c.close()
t = [threading.Thread(target=serve, args=(p,), daemon=True) for p in (25, 8025)]
[x.start() for x in t]
threading.Event().wait(120)
' &
	SRV=$!
	i=0
	while ! ip netns exec "$NS" ss -ltn | grep -q ':8025 ' && [ $i -lt 50 ]
	do sleep 0.1; i=$((i + 1)); done
}

# which_port ADDR - the port that answered the client's connection to ADDR:25
which_port() {
	ip netns exec "$CL" python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection((sys.argv[1], 25), timeout=3)
print(s.recv(100).decode().strip())
PY
}
