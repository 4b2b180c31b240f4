/*
 * sync_net.c - UDP endpoints of the spamd sync protocol: a listen socket
 * (unicast on an address, or multicast 224.0.1.240 joined on an
 * interface), targets (host[:port] unicast, interface[:ttl] multicast),
 * sending with one counter for every target (as OpenBSD), and receiving
 * through libevent: own packets ignored, then codec checks, replay
 * window, and a callback per entry. Every outcome is counted.
 *
 * Own packets: a packet is ours when its source address is one of this
 * host's addresses and its source port is one of the ports our sockets
 * are bound to. The port matters so that two instances on one host (and
 * tests on loopback) can talk, while our own multicast, looped back to
 * us, is still recognised.
 *
 * Sources: a packet is read only from an accepted source (before the HMAC
 * is even computed): the addresses a -Y host resolved to when it was
 * added, the --sync-accept addresses and prefixes (psync_accept), and,
 * with -y interface (multicast), the subnets of that interface's IPv4
 * addresses at start: the group is joined on one link and sent with TTL
 * 1 by default, so its members are the hosts on that link; a member's
 * source is in the link's subnet. Anything else is dropped as "peer",
 * counted and logged at most once every PEER_LOG_SECS with the source.
 * Why: the key is shared by every peer and a captured packet stays valid
 * under it; only a known sender may start or move a replay window.
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "pf-sync/sync.h"
#include "spamd/common/log.h"

#define MAX_ENTRIES	((PSYNC_PKT_MAX - PSYNC_HDR_LEN) / 16 + 1)
#define MAX_PORTS	16
#define READ_BURST	64	/* datagrams read per wakeup */
#define OWN_REFRESH	60	/* seconds between getifaddrs calls */
#define MAX_ACCEPT	256	/* accepted sources (peers, prefixes) */
#define PEER_LOG_SECS	10	/* one "peer" drop line per this time */

/* One accepted source: family, address, prefix length. */
struct psync_src {
	int		 family;
	uint8_t		 a[16];
	int		 bits;
};

struct psync_target {
	TAILQ_ENTRY(psync_target) entry;
	char			 name[128];
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	int			 fd;		/* socket to send from */
	int			 own_fd;	/* 1 if fd is this target's */
	int			 deletions;
};

struct psync {
	struct event_base	*base;
	char			 key[PSYNC_KEY_LEN + 1];
	size_t			 keylen;
	uint16_t		 port;
	int			 deletions;
	psync_recv_fn		 recv;
	void			*arg;
	struct psync_replay	*replay;
	int			 lfd;		/* listen socket or -1 */
	int			 lfamily;
	struct event		*lev;
	unsigned		 mcast_ifindex;	/* from -y interface */
	int			 mcast_ttl;
	int			 sfd4, sfd6;	/* unbound send sockets */
	uint32_t		 counter;
	TAILQ_HEAD(, psync_target) targets;
	struct psync_counters	 c;
	uint16_t		 ports[MAX_PORTS];	/* network order */
	size_t			 nports;
	struct sockaddr_storage	*own;
	size_t			 nown;
	int64_t			 own_at;
	int			 any_source;
	struct psync_src	 accept[MAX_ACCEPT];
	size_t			 naccept;
	int64_t			 peer_log_at;	/* last "peer" drop line */
	uint64_t		 peer_log_skipped;
	uint8_t			 rbuf[PSYNC_PKT_MAX + 1];
	struct psync_entry	 ents[MAX_ENTRIES];
};

/* neterr - fill err with a formatted message (no byte offset) */
static void __attribute__((format(printf, 2, 3)))
neterr(struct psync_err *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	err->reason = PSYNC_D_NONE;
	err->offset = 0;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

/* sa_port - the port of an IPv4/IPv6 socket address, network order */
static uint16_t
sa_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)sa)->sin_port;
	if (sa->sa_family == AF_INET6)
		return ((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_port;
	return 0;
}

/* sa_text - address of sa as text (no port) */
static const char *
sa_text(const struct sockaddr *sa, char *buf, size_t bufsz)
{
	const void *a = NULL;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_addr;
	if (a == NULL || inet_ntop(sa->sa_family, a, buf, bufsz) == NULL)
		snprintf(buf, bufsz, "?");
	return buf;
}

/* same_addr - 1 if two socket addresses have the same family and address */
static int
same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return 0;
	if (a->sa_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)(const void *)a)->
		    sin_addr, &((const struct sockaddr_in *)(const void *)b)->
		    sin_addr, 4) == 0;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)(const void *)a)->
		    sin6_addr, &((const struct sockaddr_in6 *)(const void *)
		    b)->sin6_addr, 16) == 0;
	return 0;
}

/* add_port - remember a port one of our sockets is bound to */
static void
add_port(struct psync *ps, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	uint16_t p;
	size_t i;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return;
	p = sa_port((struct sockaddr *)&ss);
	for (i = 0; i < ps->nports; i++)
		if (ps->ports[i] == p)
			return;
	if (ps->nports < MAX_PORTS)
		ps->ports[ps->nports++] = p;
}

/* refresh_own - reload this host's addresses (at most once a minute) */
static void
refresh_own(struct psync *ps, int64_t now)
{
	struct ifaddrs *ifa, *i;
	size_t n = 0;

	if (ps->own != NULL && now - ps->own_at < OWN_REFRESH)
		return;
	ps->own_at = now;
	if (getifaddrs(&ifa) == -1) {
		log_warn("event=sync_getifaddrs");
		return;
	}
	for (i = ifa; i != NULL; i = i->ifa_next)
		if (i->ifa_addr != NULL && (i->ifa_addr->sa_family == AF_INET ||
		    i->ifa_addr->sa_family == AF_INET6))
			n++;
	free(ps->own);
	ps->nown = 0;
	if ((ps->own = calloc(n + 1, sizeof(*ps->own))) == NULL) {
		freeifaddrs(ifa);
		return;
	}
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL)
			continue;
		if (i->ifa_addr->sa_family == AF_INET)
			memcpy(&ps->own[ps->nown++], i->ifa_addr,
			    sizeof(struct sockaddr_in));
		else if (i->ifa_addr->sa_family == AF_INET6)
			memcpy(&ps->own[ps->nown++], i->ifa_addr,
			    sizeof(struct sockaddr_in6));
	}
	freeifaddrs(ifa);
}

/* is_own - 1 if from is one of our sockets (our address and our port) */
static int
is_own(struct psync *ps, const struct sockaddr *from, int64_t now)
{
	uint16_t p = sa_port(from);
	size_t i;
	int port_ours = 0;

	for (i = 0; i < ps->nports; i++)
		if (ps->ports[i] == p)
			port_ours = 1;
	if (!port_ours)
		return 0;
	/* Multicast looped back on an interface without an address (lo
	 * in a fresh namespace) arrives from 0.0.0.0: only we send that. */
	if (from->sa_family == AF_INET && ((const struct sockaddr_in *)
	    (const void *)from)->sin_addr.s_addr == htonl(INADDR_ANY))
		return 1;
	if (from->sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(
	    &((const struct sockaddr_in6 *)(const void *)from)->sin6_addr))
		return 1;
	refresh_own(ps, now);
	for (i = 0; i < ps->nown; i++)
		if (same_addr((struct sockaddr *)&ps->own[i], from))
			return 1;
	return 0;
}

/* drop - count and log (debug) one dropped packet or packet rest */
static void
drop(struct psync *ps, const struct sockaddr *from, enum psync_drop reason,
    const char *msg)
{
	char a[INET6_ADDRSTRLEN];

	if ((unsigned)reason < PSYNC_D_MAX)
		ps->c.dropped[reason]++;
	/* Debug only: a flood of bad packets must not flood the log. msg
	 * is our own text (numbers and words), never packet bytes. */
	if (log_verbose())
		log_debug("event=sync_drop peer=%s port=%u reason=%s msg=\"%s\"",
		    sa_text(from, a, sizeof(a)), ntohs(sa_port(from)),
		    psync_drop_name(reason), msg);
}

/* src_add - accept packets from family/a/bits; 0, or -1 when full */
static int
src_add(struct psync *ps, int family, const void *a, int bits)
{
	struct psync_src *s;
	size_t i, len = family == AF_INET6 ? 16 : 4;

	for (i = 0; i < ps->naccept; i++)
		if (ps->accept[i].family == family &&
		    ps->accept[i].bits == bits &&
		    memcmp(ps->accept[i].a, a, len) == 0)
			return 0;
	if (ps->naccept >= MAX_ACCEPT)
		return -1;
	s = &ps->accept[ps->naccept++];
	memset(s, 0, sizeof(*s));
	s->family = family;
	memcpy(s->a, a, len);
	s->bits = bits;
	return 0;
}

/* src_add_sa - accept packets from one host's socket address */
static void
src_add_sa(struct psync *ps, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		(void)src_add(ps, AF_INET, &((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr, 32);
	else if (sa->sa_family == AF_INET6)
		(void)src_add(ps, AF_INET6, &((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr, 128);
}

/* src_ok - 1 if from is an accepted source */
static int
src_ok(const struct psync *ps, const struct sockaddr *from)
{
	const uint8_t *a;
	const struct psync_src *s;
	size_t i;
	int bits;

	if (ps->any_source)
		return 1;
	if (from->sa_family == AF_INET)
		a = (const uint8_t *)&((const struct sockaddr_in *)
		    (const void *)from)->sin_addr;
	else if (from->sa_family == AF_INET6)
		a = (const uint8_t *)&((const struct sockaddr_in6 *)
		    (const void *)from)->sin6_addr;
	else
		return 0;
	for (i = 0; i < ps->naccept; i++) {
		s = &ps->accept[i];
		if (s->family != from->sa_family)
			continue;
		bits = s->bits;
		if (memcmp(s->a, a, (size_t)bits / 8) != 0)
			continue;
		if (bits % 8 != 0 && ((s->a[bits / 8] ^ a[bits / 8]) &
		    (uint8_t)(0xff << (8 - bits % 8))) != 0)
			continue;
		return 1;
	}
	return 0;
}

/* drop_peer - count a packet from a source that is not a peer; log one
 * line with the source at most every PEER_LOG_SECS */
static void
drop_peer(struct psync *ps, const struct sockaddr *from, int64_t now)
{
	char a[INET6_ADDRSTRLEN];

	ps->c.dropped[PSYNC_D_PEER]++;
	if (ps->peer_log_at != 0 && now - ps->peer_log_at < PEER_LOG_SECS) {
		ps->peer_log_skipped++;
		return;
	}
	log_warnx("event=sync_drop reason=peer peer=%s port=%u "
	    "not_logged=%llu msg=\"source is not a -Y peer nor "
	    "--sync-accept\"", sa_text(from, a, sizeof(a)),
	    ntohs(sa_port(from)), (unsigned long long)ps->peer_log_skipped);
	ps->peer_log_at = now;
	ps->peer_log_skipped = 0;
}

/* psync_accept - accept packets from an address or address/prefix */
int
psync_accept(struct psync *ps, const char *spec, struct psync_err *err)
{
	char host[INET6_ADDRSTRLEN + 1];
	uint8_t a[16];
	const char *slash, *errstr = NULL;
	int family, bits;

	slash = strchr(spec, '/');
	if ((size_t)(slash != NULL ? slash - spec : (ptrdiff_t)strlen(spec)) >=
	    sizeof(host)) {
		neterr(err, "sync: --sync-accept %s: not an address", spec);
		return -1;
	}
	strlcpy(host, spec, slash != NULL ? (size_t)(slash - spec) + 1 :
	    sizeof(host));
	if (inet_pton(AF_INET, host, a) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, host, a) == 1)
		family = AF_INET6;
	else {
		neterr(err, "sync: --sync-accept %s: not an IPv4/IPv6 address"
		    "[/len]", spec);
		return -1;
	}
	bits = family == AF_INET ? 32 : 128;
	if (slash != NULL)
		bits = (int)strtonum(slash + 1, 0, bits, &errstr);
	if (errstr != NULL) {
		neterr(err, "sync: --sync-accept %s: prefix length %s", spec,
		    errstr);
		return -1;
	}
	if (src_add(ps, family, a, bits) == -1) {
		neterr(err, "sync: --sync-accept %s: more than %d sources",
		    spec, MAX_ACCEPT);
		return -1;
	}
	log_info("event=sync_accept source=%s", spec);
	return 0;
}

/* src_add_iface - accept the subnets of interface ifindex's IPv4
 * addresses (the members of a multicast group joined there) */
static void
src_add_iface(struct psync *ps, unsigned ifindex)
{
	struct ifaddrs *ifa, *i;
	const struct sockaddr_in *a, *m;
	uint8_t net[4];
	uint32_t mask;
	int bits, k;
	char buf[INET_ADDRSTRLEN];

	if (getifaddrs(&ifa) == -1)
		return;
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
		    i->ifa_netmask == NULL || i->ifa_name == NULL ||
		    if_nametoindex(i->ifa_name) != ifindex)
			continue;
		a = (const void *)i->ifa_addr;
		m = (const void *)i->ifa_netmask;
		mask = ntohl(m->sin_addr.s_addr);
		for (bits = 0, k = 31; k >= 0 && (mask >> k & 1); k--)
			bits++;
		mask = htonl(mask) & a->sin_addr.s_addr;
		memcpy(net, &mask, 4);
		(void)src_add(ps, AF_INET, net, bits);
		log_info("event=sync_accept source=%s/%d iface=%s",
		    inet_ntop(AF_INET, net, buf, sizeof(buf)), bits,
		    i->ifa_name);
	}
	freeifaddrs(ifa);
}

/* handle - check and deliver one received datagram */
static void
handle(struct psync *ps, const uint8_t *pkt, size_t len,
    const struct sockaddr *from, int64_t now)
{
	struct psync_err err;
	uint32_t counter, tmin = UINT32_MAX, tmax = 0;
	enum psync_drop d;
	int n, i, r;

	ps->c.received++;
	if (is_own(ps, from, now)) {
		drop(ps, from, PSYNC_D_OWN, "own packet");
		return;
	}
	if (!src_ok(ps, from)) {
		drop_peer(ps, from, now);
		return;
	}
	n = psync_decode(pkt, len, ps->key, ps->keylen, ps->deletions,
	    ps->ents, MAX_ENTRIES, &counter, &err);
	if (n == -1) {
		drop(ps, from, err.reason, err.msg);
		return;
	}
	for (i = 0; i < n; i++) {
		if (ps->ents[i].timestamp < tmin)
			tmin = ps->ents[i].timestamp;
		if (ps->ents[i].timestamp > tmax)
			tmax = ps->ents[i].timestamp;
	}
	d = psync_replay_check(ps->replay, from, counter, n > 0, tmin, tmax,
	    now);
	if (d != PSYNC_D_NONE) {
		drop(ps, from, d, d == PSYNC_D_REPLAY ? "counter seen before" :
		    "counter behind the window or timestamps too old");
		return;
	}
	ps->c.accepted++;
	for (i = 0; i < n; i++) {
		ps->c.entries++;
		r = ps->recv != NULL ? ps->recv(&ps->ents[i], from, ps->arg) :
		    0;
		if (r > 0)
			ps->c.applied++;
		else if (r == 0)
			ps->c.ignored++;
		else
			ps->c.apply_errors++;
	}
	/* Entries before a bad TLV stand (as OpenBSD); the rest is counted. */
	if (err.reason != PSYNC_D_NONE)
		drop(ps, from, err.reason, err.msg);
}

/* on_read - libevent: read a burst of datagrams from the listen socket */
static void
on_read(evutil_socket_t fd, short what, void *arg)
{
	struct psync *ps = arg;
	struct sockaddr_storage ss;
	socklen_t sl;
	ssize_t r;
	int i;

	for (i = 0; i < READ_BURST; i++) {
		sl = sizeof(ss);
		/* One byte more than the largest packet: a longer datagram
		 * shows as a length mismatch, not as a valid prefix. */
		r = recvfrom(fd, ps->rbuf, sizeof(ps->rbuf), MSG_TRUNC,
		    (struct sockaddr *)&ss, &sl);
		if (r == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				log_warn("event=sync_recv");
			return;
		}
		if ((size_t)r > sizeof(ps->rbuf))
			r = sizeof(ps->rbuf);
		handle(ps, ps->rbuf, (size_t)r, (struct sockaddr *)&ss,
		    (int64_t)time(NULL));
	}
}

/* psync_new - an endpoint with no sockets yet */
struct psync *
psync_new(struct event_base *base, const struct psync_opts *o,
    struct psync_err *err)
{
	struct psync *ps;

	if ((ps = calloc(1, sizeof(*ps))) == NULL) {
		neterr(err, "sync: out of memory");
		return NULL;
	}
	ps->base = base;
	if (o->key != NULL && o->key[0] != '\0') {
		if (strlen(o->key) != PSYNC_KEY_LEN) {
			neterr(err, "sync: key must be %d hex characters, "
			    "got %zu", PSYNC_KEY_LEN, strlen(o->key));
			free(ps);
			return NULL;
		}
		strlcpy(ps->key, o->key, sizeof(ps->key));
		ps->keylen = PSYNC_KEY_LEN;
	}
	ps->port = o->port != 0 ? o->port : PSYNC_PORT;
	ps->deletions = o->deletions;
	ps->any_source = o->any_source;
	ps->recv = o->recv;
	ps->arg = o->arg;
	ps->lfd = ps->sfd4 = ps->sfd6 = -1;
	ps->mcast_ttl = PSYNC_MCAST_TTL;
	/* As OpenBSD: the counter starts at a random value. */
	ps->counter = arc4random();
	TAILQ_INIT(&ps->targets);
	if ((ps->replay = psync_replay_new(0, o->max_age > 0 ? o->max_age :
	    3600)) == NULL) {
		neterr(err, "sync: out of memory");
		free(ps);
		return NULL;
	}
	psync_replay_since(ps->replay, (int64_t)time(NULL));
	if (ps->keylen == 0)
		log_warnx("event=sync_nokey msg=\"sync runs without "
		    "authentication\"");
	return ps;
}

/* psync_free - close every socket and free the endpoint */
void
psync_free(struct psync *ps)
{
	struct psync_target *t;

	if (ps == NULL)
		return;
	while ((t = TAILQ_FIRST(&ps->targets)) != NULL) {
		TAILQ_REMOVE(&ps->targets, t, entry);
		if (t->own_fd)
			close(t->fd);
		free(t);
	}
	if (ps->lev != NULL)
		event_free(ps->lev);
	if (ps->lfd != -1)
		close(ps->lfd);
	if (ps->sfd4 != -1)
		close(ps->sfd4);
	if (ps->sfd6 != -1)
		close(ps->sfd6);
	psync_replay_free(ps->replay);
	free(ps->own);
	explicit_bzero(ps->key, sizeof(ps->key));
	free(ps);
}

/* udp_socket - a non-blocking, close-on-exec UDP socket */
static int
udp_socket(int family)
{
	return socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/* parse_iface - "name[:ttl]" naming an existing interface; 0 or -1 */
static int
parse_iface(const char *spec, unsigned *ifindex, int *ttl)
{
	char name[IF_NAMESIZE + 8], *c;
	const char *errstr = NULL;

	if (strlcpy(name, spec, sizeof(name)) >= sizeof(name))
		return -1;
	*ttl = PSYNC_MCAST_TTL;
	if ((c = strchr(name, ':')) != NULL) {
		*c++ = '\0';
		*ttl = (int)strtonum(c, 1, 255, &errstr);
		if (errstr != NULL)
			return -1;
	}
	if ((*ifindex = if_nametoindex(name)) == 0)
		return -1;
	return 0;
}

/* mcast_setup - multicast interface and TTL for sends on fd */
static int
mcast_setup(int fd, unsigned ifindex, int ttl)
{
	struct ip_mreqn mr;
	unsigned char t = (unsigned char)ttl, loop = 1;

	memset(&mr, 0, sizeof(mr));
	mr.imr_ifindex = (int)ifindex;
	if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr)) == -1)
		return -1;
	if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &t, sizeof(t)) == -1)
		return -1;
	/* Loop on, so another instance on this host hears us; our own
	 * packets are recognised by address and port. */
	return setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop,
	    sizeof(loop));
}

/* psync_listen - bind the listen socket (-y) and start receiving */
int
psync_listen(struct psync *ps, const char *spec, struct psync_err *err)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct ip_mreqn mr;
	socklen_t sl;
	unsigned ifindex = 0;
	int one = 1, ttl = PSYNC_MCAST_TTL, fd;

	if (ps->lfd != -1) {
		neterr(err, "sync: -y given twice (%s)", spec);
		return -1;
	}
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, spec, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(ps->port);
		sl = sizeof(*sin);
	} else if (inet_pton(AF_INET6, spec, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(ps->port);
		sl = sizeof(*sin6);
	} else if (parse_iface(spec, &ifindex, &ttl) == 0) {
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = htons(ps->port);
		sl = sizeof(*sin);
	} else {
		neterr(err, "sync: -y %s: not an address nor an interface"
		    "[:ttl 1-255]", spec);
		return -1;
	}
	if ((fd = udp_socket(ss.ss_family)) == -1) {
		neterr(err, "sync: -y %s: socket: %s", spec, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
	    bind(fd, (struct sockaddr *)&ss, sl) == -1) {
		neterr(err, "sync: -y %s port %u: bind: %s", spec, ps->port,
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (ifindex != 0) {
		memset(&mr, 0, sizeof(mr));
		inet_pton(AF_INET, PSYNC_MCAST_GROUP, &mr.imr_multiaddr);
		mr.imr_ifindex = (int)ifindex;
		if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr,
		    sizeof(mr)) == -1 || mcast_setup(fd, ifindex, ttl) == -1) {
			neterr(err, "sync: -y %s: join %s: %s", spec,
			    PSYNC_MCAST_GROUP, strerror(errno));
			close(fd);
			return -1;
		}
		ps->mcast_ifindex = ifindex;
		ps->mcast_ttl = ttl;
		src_add_iface(ps, ifindex);
	}
	ps->lev = event_new(ps->base, fd, EV_READ | EV_PERSIST, on_read, ps);
	if (ps->lev == NULL || event_add(ps->lev, NULL) == -1) {
		neterr(err, "sync: -y %s: cannot add the read event", spec);
		if (ps->lev != NULL)
			event_free(ps->lev);
		ps->lev = NULL;
		close(fd);
		return -1;
	}
	ps->lfd = fd;
	ps->lfamily = ss.ss_family;
	add_port(ps, fd);
	log_info("event=sync_listen spec=%s port=%u%s", spec, ps->port,
	    ifindex != 0 ? " multicast=" PSYNC_MCAST_GROUP : "");
	return 0;
}

/* send_fd - the socket unicast sends of family go out of */
static int
send_fd(struct psync *ps, int family, struct psync_err *err)
{
	int *fdp = family == AF_INET6 ? &ps->sfd6 : &ps->sfd4;

	/* As OpenBSD: send from the listen socket (the sync port). */
	if (ps->lfd != -1 && ps->lfamily == family)
		return ps->lfd;
	if (*fdp == -1) {
		if ((*fdp = udp_socket(family)) == -1) {
			neterr(err, "sync: socket: %s", strerror(errno));
			return -1;
		}
		/* Bind now so the port is known (own-packet check). */
		if (family == AF_INET) {
			struct sockaddr_in a = { .sin_family = AF_INET };

			(void)bind(*fdp, (struct sockaddr *)&a, sizeof(a));
		} else {
			struct sockaddr_in6 a = { .sin6_family = AF_INET6 };

			(void)bind(*fdp, (struct sockaddr *)&a, sizeof(a));
		}
		add_port(ps, *fdp);
	}
	return *fdp;
}

/* split_hostport - "host", "host:port", "[v6]", "[v6]:port", "v6" */
static int
split_hostport(const char *spec, char *host, size_t hostsz, char *port,
    size_t portsz, uint16_t defport)
{
	const char *c, *e;

	snprintf(port, portsz, "%u", defport);
	if (spec[0] == '[') {
		if ((e = strchr(spec, ']')) == NULL ||
		    (size_t)(e - spec - 1) >= hostsz)
			return -1;
		memcpy(host, spec + 1, e - spec - 1);
		host[e - spec - 1] = '\0';
		if (e[1] == ':')
			strlcpy(port, e + 2, portsz);
		else if (e[1] != '\0')
			return -1;
		return 0;
	}
	c = strchr(spec, ':');
	if (c != NULL && strchr(c + 1, ':') == NULL) {
		if ((size_t)(c - spec) >= hostsz)
			return -1;
		memcpy(host, spec, c - spec);
		host[c - spec] = '\0';
		strlcpy(port, c + 1, portsz);
		return 0;
	}
	/* No colon, or several: a bare name or IPv6 literal. */
	if (strlcpy(host, spec, hostsz) >= hostsz)
		return -1;
	return 0;
}

/* psync_add_target - add a -Y target: host[:port] or interface[:ttl] */
int
psync_add_target(struct psync *ps, const char *spec, int deletions,
    struct psync_err *err)
{
	struct psync_target *t;
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_in *sin;
	char host[256], port[16];
	const char *errstr = NULL;
	unsigned ifindex;
	int ttl, rc;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		neterr(err, "sync: out of memory");
		return -1;
	}
	strlcpy(t->name, spec, sizeof(t->name));
	t->deletions = deletions;
	if (strchr(spec, '[') == NULL && inet_pton(AF_INET6, spec,
	    host) != 1 && parse_iface(spec, &ifindex, &ttl) == 0) {
		/* An interface: multicast, from a socket of its own. */
		sin = (struct sockaddr_in *)&t->ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(ps->port);
		inet_pton(AF_INET, PSYNC_MCAST_GROUP, &sin->sin_addr);
		t->sslen = sizeof(*sin);
		if ((t->fd = udp_socket(AF_INET)) == -1 ||
		    mcast_setup(t->fd, ifindex, ttl) == -1) {
			neterr(err, "sync: -Y %s: multicast socket: %s", spec,
			    strerror(errno));
			if (t->fd != -1)
				close(t->fd);
			free(t);
			return -1;
		}
		{
			struct sockaddr_in a = { .sin_family = AF_INET };

			(void)bind(t->fd, (struct sockaddr *)&a, sizeof(a));
		}
		t->own_fd = 1;
		add_port(ps, t->fd);
		TAILQ_INSERT_TAIL(&ps->targets, t, entry);
		log_info("event=sync_target spec=%s multicast=%s ttl=%d",
		    spec, PSYNC_MCAST_GROUP, ttl);
		return 0;
	}
	if (split_hostport(spec, host, sizeof(host), port, sizeof(port),
	    ps->port) == 0)
		(void)strtonum(port, 1, 65535, &errstr);
	else
		errstr = "malformed";
	if (errstr != NULL || host[0] == '\0') {
		neterr(err, "sync: -Y %s: want host[:port], [ipv6]:port or "
		    "interface[:ttl]", spec);
		free(t);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		neterr(err, "sync: -Y %s: %s", spec, gai_strerror(rc));
		free(t);
		return -1;
	}
	memcpy(&t->ss, res->ai_addr, res->ai_addrlen);
	t->sslen = res->ai_addrlen;
	/* every address the name has now: the peer may send from any */
	for (ai = res; ai != NULL; ai = ai->ai_next)
		src_add_sa(ps, ai->ai_addr);
	freeaddrinfo(res);
	if ((t->fd = send_fd(ps, t->ss.ss_family, err)) == -1) {
		free(t);
		return -1;
	}
	TAILQ_INSERT_TAIL(&ps->targets, t, entry);
	log_info("event=sync_target spec=%s", spec);
	return 0;
}

/* has_del - 1 if a packet's entries include a deletion */
static int
has_del(const struct psync_entry *e, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (e[i].kind == PSYNC_DEL_WHITE ||
		    e[i].kind == PSYNC_DEL_TRAPPED)
			return 1;
	return 0;
}

/* psync_send_entries - pack entries and send each packet to every target */
int
psync_send_entries(struct psync *ps, const struct psync_entry *ents,
    size_t n)
{
	struct psync_target *t;
	struct psync_err err;
	uint8_t pkt[PSYNC_PKT_SEND];
	static uint8_t big[PSYNC_PKT_MAX];	/* one long GREY entry */
	const uint8_t *out;
	size_t len, done = 0;
	int k, packets = 0, del;

	while (done < n) {
		/* Deletions never share a packet with anything else, so a
		 * target without deletions loses nothing by skipping it. */
		del = has_del(ents + done, 1);
		out = pkt;
		k = psync_encode(ents + done, del ? 1 : n - done, ps->counter,
		    ps->key, ps->keylen, pkt, sizeof(pkt), &len, &err);
		if (k == -1 && psync_tlv_size(&ents[done]) + PSYNC_HDR_LEN +
		    4 > sizeof(pkt) && psync_tlv_size(&ents[done]) != 0) {
			/*
			 * A tuple with long fields (up to 3 x 1,023 bytes)
			 * does not fit OpenBSD's 1,408-byte packets.
			 * OpenBSD's sync_update sends it whole anyway; so do
			 * we, alone: our peers take it, an OpenBSD peer
			 * drops it as it drops OpenBSD's own.
			 */
			out = big;
			k = psync_encode(ents + done, 1, ps->counter, ps->key,
			    ps->keylen, big, sizeof(big), &len, &err);
		}
		if (k == -1) {
			log_warnx("event=sync_encode msg=\"%s\"", err.msg);
			return -1;
		}
		if (!del && has_del(ents + done, (size_t)k)) {
			/* Shorten to the entries before the first deletion. */
			size_t j = 0;

			while (!has_del(ents + done + j, 1))
				j++;
			k = psync_encode(ents + done, j, ps->counter, ps->key,
			    ps->keylen, pkt, sizeof(pkt), &len, &err);
			if (k == -1)
				return -1;
		}
		ps->counter++;
		TAILQ_FOREACH(t, &ps->targets, entry) {
			if (del && !t->deletions)
				continue;
			if (sendto(t->fd, out, len, 0,
			    (struct sockaddr *)&t->ss, t->sslen) == -1) {
				ps->c.send_errors++;
				log_debug("event=sync_send target=%s error=\"%s\"",
				    t->name, strerror(errno));
			} else {
				ps->c.sent++;
			}
		}
		done += (size_t)k;
		packets++;
	}
	return packets;
}

/* one_entry - build an entry for ip; -1 if ip is not an address */
static int
one_entry(struct psync_entry *e, enum psync_kind kind, const char *ip,
    int64_t now, int64_t expire)
{
	char esc[128];

	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->timestamp = (uint32_t)now;
	e->expire = (uint32_t)expire;
	if (psync_entry_set_ip(e, ip) == -1) {
		log_warnx("event=sync_send msg=\"not an address\" ip=%s",
		    log_escape(ip, strlen(ip), 60, esc, sizeof(esc)));
		return -1;
	}
	return 0;
}

/* psync_send_grey - send a tuple (GREY, or GREY6 for IPv6) */
int
psync_send_grey(struct psync *ps, const char *ip, const char *helo,
    const char *from, const char *to, int64_t now)
{
	struct psync_entry e;

	if (one_entry(&e, PSYNC_GREY, ip, now, 0) == -1)
		return -1;
	e.helo = helo;
	e.from = from;
	e.to = to;
	return psync_send_entries(ps, &e, 1) < 0 ? -1 : 0;
}

/* psync_send_white - send WHITE ip until expire */
int
psync_send_white(struct psync *ps, const char *ip, int64_t now,
    int64_t expire)
{
	struct psync_entry e;

	if (one_entry(&e, PSYNC_WHITE, ip, now, expire) == -1)
		return -1;
	return psync_send_entries(ps, &e, 1) < 0 ? -1 : 0;
}

/* psync_send_trapped - send TRAPPED ip until expire */
int
psync_send_trapped(struct psync *ps, const char *ip, int64_t now,
    int64_t expire)
{
	struct psync_entry e;

	if (one_entry(&e, PSYNC_TRAPPED, ip, now, expire) == -1)
		return -1;
	return psync_send_entries(ps, &e, 1) < 0 ? -1 : 0;
}

/* psync_send_del - send a deletion to the targets that take them */
int
psync_send_del(struct psync *ps, enum psync_kind kind, const char *ip,
    int64_t now)
{
	struct psync_entry e;

	if (kind != PSYNC_DEL_WHITE && kind != PSYNC_DEL_TRAPPED)
		return -1;
	if (one_entry(&e, kind, ip, now, 0) == -1)
		return -1;
	return psync_send_entries(ps, &e, 1) < 0 ? -1 : 0;
}

/* psync_counters - the endpoint's counters */
const struct psync_counters *
psync_counters(const struct psync *ps)
{
	return &ps->c;
}

/* psync_local_port - the listen socket's port, 0 without one */
uint16_t
psync_local_port(const struct psync *ps)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (ps->lfd == -1 || getsockname(ps->lfd, (struct sockaddr *)&ss,
	    &len) == -1)
		return 0;
	return ntohs(sa_port((struct sockaddr *)&ss));
}

/* psync_log_counters - every counter on one key=value line */
void
psync_log_counters(const struct psync *ps)
{
	char drops[512];
	size_t off = 0;
	int i, w;

	drops[0] = '\0';
	for (i = 1; i < PSYNC_D_MAX; i++) {
		w = snprintf(drops + off, sizeof(drops) - off, " dropped_%s=%llu",
		    psync_drop_name(i), (unsigned long long)ps->c.dropped[i]);
		if (w < 0 || (size_t)w >= sizeof(drops) - off)
			break;
		off += (size_t)w;
	}
	log_info("event=sync_counters sent=%llu send_errors=%llu "
	    "received=%llu accepted=%llu entries=%llu applied=%llu "
	    "ignored=%llu apply_errors=%llu%s",
	    (unsigned long long)ps->c.sent,
	    (unsigned long long)ps->c.send_errors,
	    (unsigned long long)ps->c.received,
	    (unsigned long long)ps->c.accepted,
	    (unsigned long long)ps->c.entries,
	    (unsigned long long)ps->c.applied,
	    (unsigned long long)ps->c.ignored,
	    (unsigned long long)ps->c.apply_errors, drops);
}
