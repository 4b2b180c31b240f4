/*
 * greylogd.c - read SMTP connection starts from an NFLOG group and keep
 * their hosts WHITE in the store, the firewall and at sync peers
 * (greylogd.h). The packet parser is separate from the sockets so unit
 * tests can feed it bytes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/tree.h>
#include <sys/types.h>
/* libbsd's RB_GENERATE_STATIC marks functions __unused, which glibc's
 * <sys/cdefs.h> does not define under -std=c11 */
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <libnetfilter_log/libnetfilter_log.h>

#include "pf-sync/fw.h"
#include "pf-sync/greylogd.h"
#include "pf-sync/sync.h"
#include "spamd/common/log.h"

#define READ_BURST	64		/* datagrams read per wakeup */
#define RECV_BUF	65536		/* one netlink read */
#define SOCK_RCVBUF	(1 << 20)	/* kernel-side queue before ENOBUFS */
#define V6_EXT_MAX	8		/* IPv6 extension headers followed */
#define SMTP_PORT	25
#define TCP_SYN		0x02
#define TCP_ACK		0x10

/* One address waiting for the next batch. */
struct greylogd_node {
	RB_ENTRY(greylogd_node)	 entry;
	char			 ip[GDB_ADDR_MAX];
	enum greylogd_dir	 dir;
};

/* greylogd_node_cmp - order pending addresses by their text */
static int
greylogd_node_cmp(const struct greylogd_node *a, const struct greylogd_node *b)
{
	return strcmp(a->ip, b->ip);
}

RB_HEAD(greylogd_tree, greylogd_node);
RB_GENERATE_STATIC(greylogd_tree, greylogd_node, entry, greylogd_node_cmp)

struct greylogd {
	struct greylogd_conf	 conf;
	struct nflog_handle	*h;
	struct nflog_g_handle	*gh;
	int			 fd;
	struct event_base	*base;
	struct event		*ev_read;
	struct event		*ev_batch;	/* batch window timer */
	struct event		*ev_fw;		/* firewall retry timer */
	struct gdb		*db;
	struct greylogd_tree	 pending;
	size_t			 npending;
	struct psync_entry	*ents;		/* GREYLOGD_BATCH_MAX */
	struct greylogd_counters cnt;
	time_t			 overrun_logged;
	char			 buf[RECV_BUF];
};

static const char *const greylogd_skip_names[GREYLOGD_S_MAX] = {
	[GREYLOGD_S_NONE] = "none",
	[GREYLOGD_S_MALFORMED] = "malformed",
	[GREYLOGD_S_NOTSMTP] = "notsmtp",
	[GREYLOGD_S_NOTSYN] = "notsyn",
	[GREYLOGD_S_OUTBOUND] = "outbound",
	[GREYLOGD_S_IFACE] = "iface",
	[GREYLOGD_S_LOCAL] = "local",
	[GREYLOGD_S_TRAPPED] = "trapped",
};

/* greylogd_skip_name - short name of a skip reason */
const char *
greylogd_skip_name(enum greylogd_skip s)
{
	if ((int)s < 0 || s >= GREYLOGD_S_MAX)
		return "unknown";
	return greylogd_skip_names[s];
}

/* greylogd_tcp - check the TCP header at off: a SYN to port 25 */
static enum greylogd_skip
greylogd_tcp(const uint8_t *p, size_t len, size_t off,
    struct greylogd_pkt *pkt, char *why, size_t whysz)
{
	/* ports, sequence, acknowledgement, offset and flags: 14 bytes */
	if (len < off + 14) {
		snprintf(why, whysz, "TCP header at byte %zu cut short "
		    "(%zu bytes logged)", off, len);
		return GREYLOGD_S_MALFORMED;
	}
	pkt->sport = (uint16_t)(p[off] << 8 | p[off + 1]);
	pkt->dport = (uint16_t)(p[off + 2] << 8 | p[off + 3]);
	pkt->flags = p[off + 13];
	if (pkt->dport != SMTP_PORT) {
		snprintf(why, whysz, "TCP destination port %u at byte %zu, "
		    "not 25", pkt->dport, off + 2);
		return GREYLOGD_S_NOTSMTP;
	}
	if ((pkt->flags & (TCP_SYN | TCP_ACK)) != TCP_SYN) {
		snprintf(why, whysz, "TCP flags 0x%02x at byte %zu, not a "
		    "SYN without ACK", pkt->flags, off + 13);
		return GREYLOGD_S_NOTSYN;
	}
	return GREYLOGD_S_NONE;
}

/* greylogd_parse4 - the IPv4 header, then TCP */
static enum greylogd_skip
greylogd_parse4(const uint8_t *p, size_t len, struct greylogd_pkt *pkt,
    char *why, size_t whysz)
{
	size_t ihl;

	if (len < 20) {
		snprintf(why, whysz, "IPv4 header cut short at byte %zu", len);
		return GREYLOGD_S_MALFORMED;
	}
	ihl = (size_t)(p[0] & 0x0f) * 4;
	if (ihl < 20 || ihl > len) {
		snprintf(why, whysz, "IPv4 header length %zu at byte 0 "
		    "(%zu bytes logged)", ihl, len);
		return GREYLOGD_S_MALFORMED;
	}
	pkt->af = AF_INET;
	inet_ntop(AF_INET, p + 12, pkt->src, sizeof(pkt->src));
	inet_ntop(AF_INET, p + 16, pkt->dst, sizeof(pkt->dst));
	if (p[9] != IPPROTO_TCP) {
		snprintf(why, whysz, "IPv4 protocol %u at byte 9, not TCP",
		    p[9]);
		return GREYLOGD_S_NOTSMTP;
	}
	/* a later fragment has no TCP header */
	if (((p[6] << 8 | p[7]) & 0x1fff) != 0) {
		snprintf(why, whysz, "IPv4 fragment offset non-zero at "
		    "byte 6");
		return GREYLOGD_S_NOTSMTP;
	}
	return greylogd_tcp(p, len, ihl, pkt, why, whysz);
}

/* greylogd_parse6 - the IPv6 header and extension headers, then TCP */
static enum greylogd_skip
greylogd_parse6(const uint8_t *p, size_t len, struct greylogd_pkt *pkt,
    char *why, size_t whysz)
{
	size_t off = 40, hl;
	uint8_t nh;
	int i;

	if (len < 40) {
		snprintf(why, whysz, "IPv6 header cut short at byte %zu", len);
		return GREYLOGD_S_MALFORMED;
	}
	pkt->af = AF_INET6;
	inet_ntop(AF_INET6, p + 8, pkt->src, sizeof(pkt->src));
	inet_ntop(AF_INET6, p + 24, pkt->dst, sizeof(pkt->dst));
	nh = p[6];
	for (i = 0; i < V6_EXT_MAX && nh != IPPROTO_TCP; i++) {
		if (nh != 0 && nh != 43 && nh != 44 && nh != 51 && nh != 60) {
			snprintf(why, whysz, "IPv6 next header %u before "
			    "byte %zu, not TCP", nh, off);
			return GREYLOGD_S_NOTSMTP;
		}
		if (len < off + 8) {
			snprintf(why, whysz, "IPv6 extension header at byte "
			    "%zu cut short (%zu bytes logged)", off, len);
			return GREYLOGD_S_MALFORMED;
		}
		if (nh == 44) {
			/* fragment: only the first one holds TCP */
			if (((p[off + 2] << 8 | p[off + 3]) & 0xfff8) != 0) {
				snprintf(why, whysz, "IPv6 fragment offset "
				    "non-zero at byte %zu", off + 2);
				return GREYLOGD_S_NOTSMTP;
			}
			hl = 8;
		} else if (nh == 51)
			hl = ((size_t)p[off + 1] + 2) * 4;	/* AH */
		else
			hl = ((size_t)p[off + 1] + 1) * 8;
		nh = p[off];
		off += hl;
	}
	if (nh != IPPROTO_TCP) {
		snprintf(why, whysz, "more than %d IPv6 extension headers",
		    V6_EXT_MAX);
		return GREYLOGD_S_MALFORMED;
	}
	return greylogd_tcp(p, len, off, pkt, why, whysz);
}

/* greylogd_parse - an IPv4/IPv6 + TCP packet as logged */
enum greylogd_skip
greylogd_parse(const uint8_t *p, size_t len, struct greylogd_pkt *pkt,
    char *why, size_t whysz)
{
	memset(pkt, 0, sizeof(*pkt));
	if (whysz > 0)
		why[0] = '\0';
	if (p == NULL || len < 1) {
		snprintf(why, whysz, "empty packet");
		return GREYLOGD_S_MALFORMED;
	}
	switch (p[0] >> 4) {
	case 4:
		return greylogd_parse4(p, len, pkt, why, whysz);
	case 6:
		return greylogd_parse6(p, len, pkt, why, whysz);
	default:
		snprintf(why, whysz, "IP version %u at byte 0", p[0] >> 4);
		return GREYLOGD_S_MALFORMED;
	}
}

/* greylogd_direction - from the log prefix, else from the devices */
enum greylogd_dir
greylogd_direction(const char *prefix, uint32_t indev, uint32_t outdev)
{
	size_t n;

	if (prefix != NULL) {
		while (*prefix == ' ' || *prefix == '\t')
			prefix++;
		n = strcspn(prefix, " \t");
		if (n == 2 && strncmp(prefix, "in", 2) == 0 &&
		    prefix[n + strspn(prefix + n, " \t")] == '\0')
			return GREYLOGD_IN;
		if (n == 3 && strncmp(prefix, "out", 3) == 0 &&
		    prefix[n + strspn(prefix + n, " \t")] == '\0')
			return GREYLOGD_OUT;
	}
	/* the output hook knows only the device the packet leaves by */
	if (outdev != 0 && indev == 0)
		return GREYLOGD_OUT;
	return GREYLOGD_IN;
}

/* greylogd_addr_ok - 0 for addresses that never send mail to us */
int
greylogd_addr_ok(const char *ip)
{
	struct in_addr a4;
	struct in6_addr a6;
	uint32_t v;

	if (inet_pton(AF_INET, ip, &a4) == 1) {
		v = ntohl(a4.s_addr);
		if ((v >> 24) == 0 || (v >> 24) == 127 ||
		    (v >> 28) >= 14 ||			/* 224/4, 240/4 */
		    (v >> 16) == 0xa9fe)		/* 169.254/16 */
			return 0;
		return 1;
	}
	if (inet_pton(AF_INET6, ip, &a6) == 1) {
		if (IN6_IS_ADDR_UNSPECIFIED(&a6) || IN6_IS_ADDR_LOOPBACK(&a6) ||
		    IN6_IS_ADDR_MULTICAST(&a6) || IN6_IS_ADDR_LINKLOCAL(&a6))
			return 0;
		return 1;
	}
	return 0;
}

/* greylogd_dir_name - "in" or "out" for the logs */
static const char *
greylogd_dir_name(enum greylogd_dir d)
{
	return d == GREYLOGD_OUT ? "out" : "in";
}

/* greylogd_db_open - (re)open the store; 0 or -1 (logged) */
static int
greylogd_db_open(struct greylogd *g)
{
	struct gdb_opts o = { .create = 1, .group_commit = 1 };
	struct gdb_err err;

	if (g->db != NULL)
		return 0;
	if (gdb_open(&g->db, g->conf.dbdir, &o, &err) == -1) {
		g->db = NULL;
		if (g->conf.reopen_fatal)
			fatalx("event=db-error op=reopen dir=%s error=\"%s\" "
			    "action=exit", g->conf.dbdir, err.msg);
		log_warnx("event=db-error op=open dir=%s error=\"%s\"",
		    g->conf.dbdir, err.msg);
		return -1;
	}
	return 0;
}

/* greylogd_db_failed - log a store error; drop the handle when it needs
 * recovery so the next use reopens it */
static void
greylogd_db_failed(struct greylogd *g, const char *op, const char *ip,
    const struct gdb_err *err)
{
	g->cnt.db_errors++;
	log_warnx("event=db-error op=%s ip=%s error=\"%s\"", op, ip,
	    err->msg);
	if (err->reopen) {
		gdb_close(g->db);
		g->db = NULL;
	}
}

/* greylogd_fw_flush - send the queued firewall changes; on failure try
 * again after the backend's backoff */
static void
greylogd_fw_flush(struct greylogd *g)
{
	char err[512];
	struct timeval tv;

	if (g->conf.fw == NULL || fw_pending(g->conf.fw) == 0)
		return;
	if (fw_flush(g->conf.fw, err, sizeof(err)) == 0)
		return;
	g->cnt.fw_errors++;
	log_warnx("event=fw-error op=flush pending=%zu retry=%ds error=\"%s\"",
	    fw_pending(g->conf.fw), fw_retry_delay(g->conf.fw), err);
	if (g->ev_fw != NULL && !evtimer_pending(g->ev_fw, NULL)) {
		tv.tv_sec = fw_retry_delay(g->conf.fw);
		tv.tv_usec = 0;
		evtimer_add(g->ev_fw, &tv);
	}
}

/* greylogd_fw_retry - the retry timer */
static void
greylogd_fw_retry(evutil_socket_t fd, short ev, void *arg)
{
	greylogd_fw_flush(arg);
}

/*
 * greylogd_white - one address of the batch: store, firewall, sync
 * entry. Returns 2 when it became WHITE and *e is its sync entry, 1 when
 * it became WHITE with nothing to sync, 0 when left alone (TRAPPED), -1 on
 * a store error.
 */
static int
greylogd_white(struct greylogd *g, const struct greylogd_node *n,
    int64_t now, int64_t expire, struct psync_entry *e)
{
	struct gdb_rec rec;
	struct gdb_err err;
	int r;

	if (greylogd_db_open(g) == -1) {
		g->cnt.db_errors++;
		return -1;
	}
	/* a trapped host stays trapped, whatever it connects to */
	memset(&rec, 0, sizeof(rec));
	rec.type = GDB_TRAPPED;
	strlcpy(rec.ip, n->ip, sizeof(rec.ip));
	r = gdb_get(g->db, &rec, &err);
	if (r == -1) {
		greylogd_db_failed(g, "get", n->ip, &err);
		return -1;
	}
	if (r == 1 && rec.expire > now) {
		g->cnt.skipped[GREYLOGD_S_TRAPPED]++;
		log_info("event=skip ip=%s dir=%s reason=trapped until=%lld",
		    n->ip, greylogd_dir_name(n->dir), (long long)rec.expire);
		return 0;
	}
	if (gdb_white_seen(g->db, n->ip, now, expire, &err) == -1) {
		greylogd_db_failed(g, "white", n->ip, &err);
		return -1;
	}
	g->cnt.white++;
	log_info("event=white ip=%s dir=%s expire=%lld", n->ip,
	    greylogd_dir_name(n->dir), (long long)expire);
	if (g->conf.fw != NULL &&
	    fw_add(g->conf.fw, FW_WHITE, n->ip, expire, now) == -1) {
		g->cnt.fw_errors++;
		log_warnx("event=fw-error op=add ip=%s", n->ip);
	}
	if (g->conf.ps == NULL)
		return 1;
	memset(e, 0, sizeof(*e));
	if (psync_entry_set_ip(e, n->ip) == -1)
		return 1;
	e->kind = PSYNC_WHITE;
	e->timestamp = (uint32_t)now;
	e->expire = (uint32_t)expire;
	return 2;
}

/* greylogd_flush - write the pending addresses: store, firewall, sync */
void
greylogd_flush(struct greylogd *g)
{
	struct greylogd_node *n, *next;
	struct gdb_err err;
	size_t nents = 0;
	int64_t now, expire;
	int r;

	if (g->ev_batch != NULL)
		evtimer_del(g->ev_batch);
	if (g->npending == 0)
		return;
	now = time(NULL);
	expire = now + g->conf.whiteexp;
	RB_FOREACH_SAFE(n, greylogd_tree, &g->pending, next) {
		r = greylogd_white(g, n, now, expire, &g->ents[nents]);
		if (r == 2 && nents < GREYLOGD_BATCH_MAX)
			nents++;
		RB_REMOVE(greylogd_tree, &g->pending, n);
		free(n);
	}
	g->npending = 0;
	/* group commit: one fsync for the batch */
	if (g->db != NULL && gdb_flush(g->db, &err) == -1)
		greylogd_db_failed(g, "flush", "-", &err);
	greylogd_fw_flush(g);
	if (nents > 0) {
		r = psync_send_entries(g->conf.ps, g->ents, nents);
		if (r > 0)
			g->cnt.sync_packets += (uint64_t)r;
	}
}

/* greylogd_batch_timer - the batch window ended */
static void
greylogd_batch_timer(evutil_socket_t fd, short ev, void *arg)
{
	greylogd_flush(arg);
}

/* greylogd_queue - remember ip for the next batch (once per batch) */
static void
greylogd_queue(struct greylogd *g, const char *ip, enum greylogd_dir dir)
{
	struct greylogd_node key, *n;
	struct timeval tv;

	strlcpy(key.ip, ip, sizeof(key.ip));
	if (RB_FIND(greylogd_tree, &g->pending, &key) != NULL)
		return;
	if ((n = calloc(1, sizeof(*n))) == NULL) {
		log_warn("event=queue ip=%s", ip);
		return;
	}
	strlcpy(n->ip, ip, sizeof(n->ip));
	n->dir = dir;
	RB_INSERT(greylogd_tree, &g->pending, n);
	g->npending++;
	if (g->npending >= GREYLOGD_BATCH_MAX) {
		greylogd_flush(g);
		return;
	}
	if (!evtimer_pending(g->ev_batch, NULL)) {
		tv.tv_sec = GREYLOGD_BATCH_MS / 1000;
		tv.tv_usec = (GREYLOGD_BATCH_MS % 1000) * 1000;
		evtimer_add(g->ev_batch, &tv);
	}
}

/* greylogd_packet - libnetfilter_log's callback for one logged packet */
static int
greylogd_packet(struct nflog_g_handle *gh, struct nfgenmsg *nfmsg,
    struct nflog_data *nfa, void *arg)
{
	struct greylogd *g = arg;
	struct greylogd_pkt pkt;
	enum greylogd_skip s;
	enum greylogd_dir dir;
	char why[160], *payload = NULL;
	const char *ip;
	uint32_t indev, outdev;
	int plen;

	g->cnt.packets++;
	plen = nflog_get_payload(nfa, &payload);
	if (plen < 0)
		plen = 0;
	s = greylogd_parse((const uint8_t *)payload, (size_t)plen, &pkt, why,
	    sizeof(why));
	if (s != GREYLOGD_S_NONE) {
		g->cnt.skipped[s]++;
		log_debug("event=skip reason=%s detail=\"%s\"",
		    greylogd_skip_name(s), why);
		return 0;
	}
	indev = nflog_get_indev(nfa);
	outdev = nflog_get_outdev(nfa);
	dir = greylogd_direction(nflog_get_prefix(nfa), indev, outdev);
	ip = dir == GREYLOGD_IN ? pkt.src : pkt.dst;
	if (dir == GREYLOGD_OUT && g->conf.inbound_only)
		s = GREYLOGD_S_OUTBOUND;
	else if (g->conf.ifindex != 0 &&
	    (dir == GREYLOGD_IN ? indev : outdev) != g->conf.ifindex)
		s = GREYLOGD_S_IFACE;
	else if (!greylogd_addr_ok(ip))
		s = GREYLOGD_S_LOCAL;
	if (s != GREYLOGD_S_NONE) {
		g->cnt.skipped[s]++;
		log_debug("event=skip ip=%s dir=%s reason=%s", ip,
		    greylogd_dir_name(dir), greylogd_skip_name(s));
		return 0;
	}
	if (dir == GREYLOGD_IN)
		g->cnt.inbound++;
	else
		g->cnt.outbound++;
	log_debug("event=connect src=%s dst=%s sport=%u dir=%s", pkt.src,
	    pkt.dst, pkt.sport, greylogd_dir_name(dir));
	greylogd_queue(g, ip, dir);
	return 0;
}

/* greylogd_read - read what the kernel logged and hand it to the library */
static void
greylogd_read(evutil_socket_t fd, short ev, void *arg)
{
	struct greylogd *g = arg;
	ssize_t n;
	int i;

	for (i = 0; i < READ_BURST; i++) {
		n = recv(fd, g->buf, sizeof(g->buf), MSG_DONTWAIT);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == ENOBUFS) {
				/* the kernel dropped logs: count, warn once
				 * a minute, go on */
				g->cnt.overruns++;
				if (time(NULL) - g->overrun_logged >= 60) {
					g->overrun_logged = time(NULL);
					log_warnx("event=nflog-overrun "
					    "count=%llu", (unsigned long long)
					    g->cnt.overruns);
				}
				continue;
			}
			log_warn("event=nflog-error op=recv");
			return;
		}
		if (n == 0)
			return;
		nflog_handle_packet(g->h, g->buf, (int)n);
	}
}

/* greylogd_open - bind the NFLOG group */
int
greylogd_open(struct greylogd **out, const struct greylogd_conf *c,
    char *err, size_t errsz)
{
	struct greylogd *g;
	int sz = SOCK_RCVBUF;

	*out = NULL;
	if (c->group < 0 || c->group > 65535) {
		snprintf(err, errsz, "NFLOG group %d out of range 0..65535",
		    c->group);
		return -1;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (g->ents = calloc(GREYLOGD_BATCH_MAX, sizeof(*g->ents))) == NULL) {
		snprintf(err, errsz, "out of memory");
		free(g);
		return -1;
	}
	g->conf = *c;
	g->fd = -1;
	RB_INIT(&g->pending);
	if ((g->h = nflog_open()) == NULL) {
		snprintf(err, errsz, "NFLOG group %d: nflog_open: %s",
		    c->group, strerror(errno));
		goto fail;
	}
	/* Kernels since 3.8 ignore these; older ones need the binding. */
	(void)nflog_unbind_pf(g->h, AF_INET);
	(void)nflog_unbind_pf(g->h, AF_INET6);
	(void)nflog_bind_pf(g->h, AF_INET);
	(void)nflog_bind_pf(g->h, AF_INET6);
	if ((g->gh = nflog_bind_group(g->h, (uint16_t)c->group)) == NULL) {
		snprintf(err, errsz, "NFLOG group %d: bind: %s (another "
		    "listener on the group, or no CAP_NET_ADMIN)", c->group,
		    strerror(errno));
		goto fail;
	}
	if (nflog_set_mode(g->gh, NFULNL_COPY_PACKET, GREYLOGD_COPY_LEN) < 0) {
		snprintf(err, errsz, "NFLOG group %d: set copy mode: %s",
		    c->group, strerror(errno));
		goto fail;
	}
	/* Deliver within 0.1 s or at 32 packets, whichever comes first. */
	(void)nflog_set_timeout(g->gh, 10);
	(void)nflog_set_qthresh(g->gh, 32);
	nflog_callback_register(g->gh, greylogd_packet, g);
	g->fd = nflog_fd(g->h);
	/* as root the larger queue is allowed beyond rmem_max */
	if (setsockopt(g->fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz,
	    sizeof(sz)) == -1)
		(void)setsockopt(g->fd, SOL_SOCKET, SO_RCVBUF, &sz,
		    sizeof(sz));
	*out = g;
	return 0;
fail:
	greylogd_free(g);
	return -1;
}

/* greylogd_open_db - open the store now */
int
greylogd_open_db(struct greylogd *g, char *err, size_t errsz)
{
	struct gdb_opts o = { .create = 1, .group_commit = 1 };
	struct gdb_err gerr;

	if (g->db != NULL)
		return 0;
	if (gdb_open(&g->db, g->conf.dbdir, &o, &gerr) == -1) {
		g->db = NULL;
		snprintf(err, errsz, "%s", gerr.msg);
		return -1;
	}
	return 0;
}

/* greylogd_start - open the store unless open, start reading on base */
int
greylogd_start(struct greylogd *g, struct event_base *base, char *err,
    size_t errsz)
{
	if (greylogd_open_db(g, err, errsz) == -1)
		return -1;
	g->base = base;
	g->ev_read = event_new(base, g->fd, EV_READ | EV_PERSIST,
	    greylogd_read, g);
	g->ev_batch = evtimer_new(base, greylogd_batch_timer, g);
	g->ev_fw = evtimer_new(base, greylogd_fw_retry, g);
	if (g->ev_read == NULL || g->ev_batch == NULL || g->ev_fw == NULL ||
	    event_add(g->ev_read, NULL) == -1) {
		snprintf(err, errsz, "libevent: cannot add events");
		return -1;
	}
	return 0;
}

/* greylogd_set_sync - the sync endpoint for WHITE entries */
void
greylogd_set_sync(struct greylogd *g, struct psync *ps)
{
	g->conf.ps = ps;
}

/* greylogd_log_counters - one line with every counter */
void
greylogd_log_counters(const struct greylogd *g)
{
	const struct greylogd_counters *c = &g->cnt;

	log_info("event=counters packets=%llu inbound=%llu outbound=%llu "
	    "white=%llu skipped_malformed=%llu skipped_notsmtp=%llu "
	    "skipped_notsyn=%llu skipped_outbound=%llu skipped_iface=%llu "
	    "skipped_local=%llu skipped_trapped=%llu db_errors=%llu "
	    "fw_errors=%llu overruns=%llu sync_packets=%llu",
	    (unsigned long long)c->packets, (unsigned long long)c->inbound,
	    (unsigned long long)c->outbound, (unsigned long long)c->white,
	    (unsigned long long)c->skipped[GREYLOGD_S_MALFORMED],
	    (unsigned long long)c->skipped[GREYLOGD_S_NOTSMTP],
	    (unsigned long long)c->skipped[GREYLOGD_S_NOTSYN],
	    (unsigned long long)c->skipped[GREYLOGD_S_OUTBOUND],
	    (unsigned long long)c->skipped[GREYLOGD_S_IFACE],
	    (unsigned long long)c->skipped[GREYLOGD_S_LOCAL],
	    (unsigned long long)c->skipped[GREYLOGD_S_TRAPPED],
	    (unsigned long long)c->db_errors,
	    (unsigned long long)c->fw_errors,
	    (unsigned long long)c->overruns,
	    (unsigned long long)c->sync_packets);
	if (g->conf.ps != NULL)
		psync_log_counters(g->conf.ps);
}

/* greylogd_free - unbind the group, drop what is pending, free */
void
greylogd_free(struct greylogd *g)
{
	struct greylogd_node *n, *next;

	if (g == NULL)
		return;
	RB_FOREACH_SAFE(n, greylogd_tree, &g->pending, next) {
		RB_REMOVE(greylogd_tree, &g->pending, n);
		free(n);
	}
	if (g->ev_read != NULL)
		event_free(g->ev_read);
	if (g->ev_batch != NULL)
		event_free(g->ev_batch);
	if (g->ev_fw != NULL)
		event_free(g->ev_fw);
	/*
	 * Unbinding needs CAP_NET_ADMIN, which a dropped process may lack;
	 * then the library keeps its handle (calloc'd) and we free it after
	 * the close. Closing the socket unbinds the group in the kernel.
	 */
	if (g->gh != NULL && nflog_unbind_group(g->gh) == 0)
		g->gh = NULL;
	if (g->h != NULL)
		nflog_close(g->h);
	free(g->gh);
	gdb_close(g->db);
	free(g->ents);
	free(g);
}
