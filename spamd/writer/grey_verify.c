/*
 * grey_verify.c - recipient verification against the real MX (see
 * grey_rcpt.h): the answer cache and the SMTP prober.
 *
 * The prober runs on the writer's event base. A query that the cache
 * cannot answer becomes a probe (one per address: later queries for the
 * same address wait on it) in a bounded queue. Up to conf.pool
 * connections each say EHLO once, then per probe MAIL FROM:<>,
 * RCPT TO:<addr>, RSET, and are reused; an idle one says QUIT. A
 * connection is replaced after conf.per_conn probes or 8 error replies,
 * before Postfix's smtpd_soft_error_limit (10) starts to slow it down and
 * its junk command limit (100 RSETs) counts against it. Probes leave the
 * queue at conf.rate per second (token bucket). Dispatching always runs
 * from a zero-timeout event, so no answer is ever given from inside
 * grey_verify_query. When the MX cannot be reached every waiting probe is
 * answered VERIFY_UNKNOWN and, for 2 seconds, so is every new query.
 */
/* libbsd's RB_GENERATE_STATIC marks functions __unused, which glibc lacks. */
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <sys/socket.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "spamd/writer/grey_rcpt.h"
#include "spamd/common/log.h"

/* ---- the cache ---- */

/* One cached answer. */
struct vc_entry {
	RB_ENTRY(vc_entry)	 rb;
	TAILQ_ENTRY(vc_entry)	 fifo;
	int64_t			 expire;
	int			 res;
	char			 addr[];
};

/* vc_cmp - order entries by address */
static int
vc_cmp(const struct vc_entry *a, const struct vc_entry *b)
{
	return strcmp(a->addr, b->addr);
}

RB_HEAD(vc_tree, vc_entry);
RB_GENERATE_STATIC(vc_tree, vc_entry, rb, vc_cmp)

struct grey_vcache {
	struct vc_tree			 tree;
	TAILQ_HEAD(, vc_entry)		 fifo;	/* oldest put first */
	long				 n, max;
};

/* grey_vcache_new - an empty cache (see header) */
struct grey_vcache *
grey_vcache_new(long max)
{
	struct grey_vcache *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	RB_INIT(&c->tree);
	TAILQ_INIT(&c->fifo);
	c->max = max > 0 ? max : 200000;
	return c;
}

/* vc_drop - remove one entry */
static void
vc_drop(struct grey_vcache *c, struct vc_entry *e)
{
	RB_REMOVE(vc_tree, &c->tree, e);
	TAILQ_REMOVE(&c->fifo, e, fifo);
	free(e);
	c->n--;
}

/* vc_find - the entry of addr or NULL */
static struct vc_entry *
vc_find(struct grey_vcache *c, const char *addr)
{
	struct {
		struct vc_entry	e;
		char		buf[GDB_MAIL_MAX];
	} key;

	if (strlcpy(key.e.addr, addr, sizeof(key.buf)) >= sizeof(key.buf))
		return NULL;
	return RB_FIND(vc_tree, &c->tree, &key.e);
}

/* grey_vcache_get - the live cached answer of addr (see header) */
int
grey_vcache_get(struct grey_vcache *c, const char *addr, int64_t now)
{
	struct vc_entry *e;

	if ((e = vc_find(c, addr)) == NULL)
		return VERIFY_UNKNOWN;
	if (e->expire <= now) {
		vc_drop(c, e);
		return VERIFY_UNKNOWN;
	}
	return e->res;
}

/* grey_vcache_put - remember res for addr until expire; -1 no memory */
int
grey_vcache_put(struct grey_vcache *c, const char *addr, int res,
    int64_t expire, int64_t now)
{
	struct vc_entry *e, *h;
	size_t len = strlen(addr);

	if (len >= GDB_MAIL_MAX)
		return -1;
	if ((e = vc_find(c, addr)) != NULL)
		vc_drop(c, e);
	/* expired entries at the front go first, then the oldest if full */
	while ((h = TAILQ_FIRST(&c->fifo)) != NULL &&
	    (h->expire <= now || c->n >= c->max))
		vc_drop(c, h);
	if ((e = malloc(sizeof(*e) + len + 1)) == NULL)
		return -1;
	memcpy(e->addr, addr, len + 1);
	e->res = res;
	e->expire = expire;
	RB_INSERT(vc_tree, &c->tree, e);
	TAILQ_INSERT_TAIL(&c->fifo, e, fifo);
	c->n++;
	return 0;
}

/* grey_vcache_count - entries held */
long
grey_vcache_count(const struct grey_vcache *c)
{
	return c ? c->n : 0;
}

/* grey_vcache_free - drop every entry */
void
grey_vcache_free(struct grey_vcache *c)
{
	struct vc_entry *e;

	if (c == NULL)
		return;
	while ((e = TAILQ_FIRST(&c->fifo)) != NULL)
		vc_drop(c, e);
	free(c);
}


/* ---- the prober ---- */

#define VV_LINE_MAX	4096	/* longest reply line read */
#define VV_ERRORS_MAX	8	/* error replies before a new connection */
#define VV_DOWN_SECS	2.0	/* after a failed connect */
#define VV_WAITERS_MAX	256	/* queries waiting on one probe */

/* One query waiting for a probe's answer. */
struct vv_waiter {
	SLIST_ENTRY(vv_waiter)	 next;
	grey_verify_fn		 fn;
	void			*arg;
};

/* One address to ask the MX about. */
struct vv_probe {
	RB_ENTRY(vv_probe)		 rb;	/* in pending, by addr */
	TAILQ_ENTRY(vv_probe)		 q;	/* in queue until sent */
	SLIST_HEAD(, vv_waiter)		 waiters;
	int				 nwait;
	int				 queued;
	char				 addr[GDB_MAIL_MAX];
};

/* vv_probe_cmp - order probes by address */
static int
vv_probe_cmp(const struct vv_probe *a, const struct vv_probe *b)
{
	return strcmp(a->addr, b->addr);
}

RB_HEAD(vv_ptree, vv_probe);
RB_GENERATE_STATIC(vv_ptree, vv_probe, rb, vv_probe_cmp)

/* Where a connection is in its dialogue: what it waits for. */
enum vv_state {
	VV_CONNECT,	/* the TCP connect */
	VV_BANNER,	/* 220 */
	VV_EHLO,
	VV_IDLE,	/* ready for a probe */
	VV_MAIL,
	VV_RCPT,
	VV_RSET,
	VV_QUIT,
};

static const char *const vv_state_names[] = {
	"connect", "banner", "ehlo", "idle", "mail", "rcpt", "rset", "quit",
};

/* One SMTP connection to the MX. */
struct vv_conn {
	TAILQ_ENTRY(vv_conn)	 next;
	struct grey_verify	*v;
	struct bufferevent	*bev;
	struct event		*timer;
	enum vv_state		 st;
	struct vv_probe		*probe;		/* the one being asked */
	int			 used, errors;
	int			 ready;		/* reached VV_IDLE once */
};

struct grey_verify {
	struct grey_verify_conf		 conf;
	struct event_base		*base;
	struct sockaddr_storage		 ss;
	socklen_t			 sslen;
	char				 mx[300];	/* for logs */
	char				 helo[256];
	struct grey_vcache		*cache;
	struct vv_ptree			 pending;	/* queued and sent */
	TAILQ_HEAD(, vv_probe)		 queue;
	long				 nqueue;
	TAILQ_HEAD(, vv_conn)		 conns;
	int				 nconn;
	double				 tokens, tok_last;
	double				 down_until;
	int				 down;	/* logged as down */
	struct event			*kick_ev;	/* dispatch soon */
	struct grey_verify_counts	 n;
};

static void vv_kick(struct grey_verify *v);

/* vv_mono - monotonic seconds */
static double
vv_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* vv_parse_mx - "host", "host:port", "[v6]:port" or a bare IPv6
 * address into v->ss; -1 with err naming the flag */
static int
vv_parse_mx(struct grey_verify *v, const char *mx, char *err, size_t errsz)
{
	char host[256], port[16] = "25";
	struct addrinfo hints, *res = NULL;
	const char *colon = strrchr(mx, ':'), *errstr = NULL;
	int rc;

	if (mx[0] == '[') {
		const char *rb = strchr(mx, ']');

		if (rb == NULL || (rb[1] != '\0' && rb[1] != ':') ||
		    (size_t)(rb - mx - 1) >= sizeof(host)) {
			snprintf(err, errsz, "--verify-mx %s: want [address]"
			    ":port", mx);
			return -1;
		}
		memcpy(host, mx + 1, (size_t)(rb - mx - 1));
		host[rb - mx - 1] = '\0';
		colon = rb[1] == ':' ? rb + 1 : NULL;
	} else if (colon != NULL && strchr(mx, ':') == colon) {
		if ((size_t)(colon - mx) >= sizeof(host))
			goto toolong;
		memcpy(host, mx, (size_t)(colon - mx));
		host[colon - mx] = '\0';
	} else {
		/* no port, or a bare IPv6 address */
		colon = NULL;
		if (strlcpy(host, mx, sizeof(host)) >= sizeof(host))
			goto toolong;
	}
	if (colon != NULL) {
		strtonum(colon + 1, 1, 65535, &errstr);
		if (errstr != NULL) {
			snprintf(err, errsz, "--verify-mx %s: port %s: %s", mx,
			    colon + 1, errstr);
			return -1;
		}
		strlcpy(port, colon + 1, sizeof(port));
	}
	if (host[0] == '\0') {
		snprintf(err, errsz, "--verify-mx %s: empty host", mx);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	/* resolved once, at start: the writer's loop must never block */
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errsz, "--verify-mx %s: %s", mx,
		    gai_strerror(rc));
		return -1;
	}
	memcpy(&v->ss, res->ai_addr, res->ai_addrlen);
	v->sslen = res->ai_addrlen;
	freeaddrinfo(res);
	strlcpy(v->mx, mx, sizeof(v->mx));
	return 0;
toolong:
	snprintf(err, errsz, "--verify-mx: host longer than 255 bytes");
	return -1;
}

/* vv_probe_done - answer every query waiting on p and free it */
static void
vv_probe_done(struct grey_verify *v, struct vv_probe *p, int res)
{
	struct vv_waiter *w;
	int64_t now = time(NULL);

	RB_REMOVE(vv_ptree, &v->pending, p);
	if (p->queued) {
		TAILQ_REMOVE(&v->queue, p, q);
		v->nqueue--;
	}
	if (res == VERIFY_VALID) {
		v->n.valid++;
		grey_vcache_put(v->cache, p->addr, res,
		    now + v->conf.ttl_valid, now);
	} else if (res == VERIFY_INVALID) {
		v->n.invalid++;
		grey_vcache_put(v->cache, p->addr, res,
		    now + v->conf.ttl_invalid, now);
	} else
		v->n.unknown++;
	while ((w = SLIST_FIRST(&p->waiters)) != NULL) {
		SLIST_REMOVE_HEAD(&p->waiters, next);
		w->fn(res, p->addr, w->arg);
		free(w);
	}
	free(p);
}

/* vv_fail_queue - answer every probe not yet sent VERIFY_UNKNOWN */
static void
vv_fail_queue(struct grey_verify *v)
{
	struct vv_probe *p;

	while ((p = TAILQ_FIRST(&v->queue)) != NULL)
		vv_probe_done(v, p, VERIFY_UNKNOWN);
}

/* vv_timer_set - the connection's one timer: secs from now */
static void
vv_timer_set(struct vv_conn *c, int secs)
{
	struct timeval tv = { secs, 0 };

	evtimer_add(c->timer, &tv);
}

/* vv_state - move c to st (logged at debug) and arm its timer */
static void
vv_state(struct vv_conn *c, enum vv_state st)
{
	log_debug("event=verify_conn state=%s->%s", vv_state_names[c->st],
	    vv_state_names[st]);
	c->st = st;
	vv_timer_set(c, st == VV_IDLE ? c->v->conf.idle_secs :
	    c->v->conf.timeout_secs);
}

/* vv_close - drop c; its probe (if any) is answered unknown */
static void
vv_close(struct vv_conn *c)
{
	struct grey_verify *v = c->v;

	TAILQ_REMOVE(&v->conns, c, next);
	v->nconn--;
	if (c->probe != NULL)
		vv_probe_done(v, c->probe, VERIFY_UNKNOWN);
	bufferevent_free(c->bev);
	event_free(c->timer);
	free(c);
	vv_kick(v);
}

/* vv_fail - c broke (why); before its first EHLO answer that means the
 * MX is unreachable: answer the queue unknown and back off */
static void
vv_fail(struct vv_conn *c, const char *why)
{
	struct grey_verify *v = c->v;

	log_debug("event=verify_conn_failed mx=%s state=%s error=\"%s\"",
	    v->mx, vv_state_names[c->st], why);
	if (!c->ready) {
		v->n.connect_errors++;
		/* once per outage, not once per retry */
		if (!v->down)
			log_warnx("event=verify_mx_down mx=%s state=%s "
			    "error=\"%s\"", v->mx, vv_state_names[c->st], why);
		v->down = 1;
		v->down_until = vv_mono() + VV_DOWN_SECS;
		vv_fail_queue(v);
	}
	vv_close(c);
}

/* vv_send - one command line to the MX, then wait for st */
static void
vv_send(struct vv_conn *c, enum vv_state st, const char *cmd,
    const char *arg)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (arg != NULL)
		evbuffer_add_printf(out, "%s<%s>\r\n", cmd, arg);
	else
		evbuffer_add_printf(out, "%s\r\n", cmd);
	vv_state(c, st);
}

/* vv_reply - one whole reply (code) in c's state; -1 when c was freed */
static int
vv_reply(struct vv_conn *c, int code)
{
	struct grey_verify *v = c->v;
	char ehlo[300];
	int res;

	if (code >= 400)
		c->errors++;
	switch (c->st) {
	case VV_BANNER:
		if (code / 100 != 2)
			goto refused;
		snprintf(ehlo, sizeof(ehlo), "EHLO %s", v->helo);
		vv_send(c, VV_EHLO, ehlo, NULL);
		return 0;
	case VV_EHLO:
		if (code / 100 != 2)
			goto refused;
		c->ready = 1;
		c->errors = 0;
		if (v->down)
			log_info("event=verify_mx_up mx=%s", v->mx);
		v->down = 0;
		vv_state(c, VV_IDLE);
		vv_kick(v);
		return 0;
	case VV_MAIL:
		if (code / 100 == 2) {
			vv_send(c, VV_RCPT, "RCPT TO:", c->probe->addr);
			return 0;
		}
		vv_probe_done(v, c->probe, VERIFY_UNKNOWN);
		c->probe = NULL;
		vv_send(c, VV_RSET, "RSET", NULL);
		return 0;
	case VV_RCPT:
		res = code / 100 == 2 ? VERIFY_VALID : code / 100 == 5 ?
		    VERIFY_INVALID : VERIFY_UNKNOWN;
		log_debug("event=verify_probe mx=%s code=%d res=%s", v->mx,
		    code, res == VERIFY_VALID ? "valid" : res ==
		    VERIFY_INVALID ? "invalid" : "unknown");
		vv_probe_done(v, c->probe, res);
		c->probe = NULL;
		vv_send(c, VV_RSET, "RSET", NULL);
		return 0;
	case VV_RSET:
		if (code / 100 == 2 && c->used < v->conf.per_conn &&
		    c->errors < VV_ERRORS_MAX) {
			vv_state(c, VV_IDLE);
			vv_kick(v);
			return 0;
		}
		vv_send(c, VV_QUIT, "QUIT", NULL);
		return 0;
	case VV_QUIT:
	case VV_IDLE:
	case VV_CONNECT:
		/* QUIT answered, or 421 while idle: done with it */
		vv_close(c);
		return -1;
	}
	return 0;
refused:
	vv_fail(c, code / 100 == 4 ? "4xx greeting" : "refused greeting");
	return -1;
}

/* vv_read - whole reply lines from the MX */
static void
vv_read(struct bufferevent *bev, void *arg)
{
	struct vv_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t n;

	while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
		int code, last;

		if (n < 3 || line[0] < '2' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' || line[2] < '0' ||
		    line[2] > '9' || (n > 3 && line[3] != ' ' &&
		    line[3] != '-')) {
			free(line);
			vv_fail(c, "malformed reply");
			return;
		}
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0');
		last = n == 3 || line[3] == ' ';
		free(line);
		if (last && vv_reply(c, code) == -1)
			return;
	}
	if (evbuffer_get_length(in) > VV_LINE_MAX)
		vv_fail(c, "reply line too long");
}

/* vv_event - connected, or EOF/error */
static void
vv_event(struct bufferevent *bev, short what, void *arg)
{
	struct vv_conn *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		vv_state(c, VV_BANNER);
		return;
	}
	if (c->st == VV_QUIT || (c->st == VV_IDLE && c->ready)) {
		/* the MX hung up on an idle connection (smtpd_timeout,
		 * a restart): not a failure */
		vv_close(c);
		return;
	}
	vv_fail(c, what & BEV_EVENT_EOF ? "connection closed" :
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* vv_timeout - no reply in time, or idle long enough */
static void
vv_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct vv_conn *c = arg;

	if (c->st == VV_IDLE) {
		vv_send(c, VV_QUIT, "QUIT", NULL);
		return;
	}
	if (c->st == VV_QUIT) {
		vv_close(c);
		return;
	}
	c->v->n.timeouts++;
	vv_fail(c, "timeout");
}

/* vv_open - start one more connection; -1 when connect failed at once */
static int
vv_open(struct grey_verify *v)
{
	struct vv_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	c->v = v;
	c->bev = bufferevent_socket_new(v->base, -1, BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(v->base, vv_timeout, c);
	if (c->bev == NULL || c->timer == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		if (c->timer != NULL)
			event_free(c->timer);
		free(c);
		return -1;
	}
	bufferevent_setcb(c->bev, vv_read, NULL, vv_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&v->conns, c, next);
	v->nconn++;
	v->n.connects++;
	c->st = VV_CONNECT;
	vv_timer_set(c, v->conf.timeout_secs);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&v->ss,
	    (int)v->sslen) == -1) {
		vv_fail(c, strerror(errno));
		return -1;
	}
	return 0;
}

/* vv_dispatch - send queued probes on idle connections, open more
 * connections when needed, within the rate */
static void
vv_dispatch(evutil_socket_t fd, short ev, void *arg)
{
	struct grey_verify *v = arg;
	struct vv_conn *c;
	struct vv_probe *p;
	double now;
	int opening;

	while ((p = TAILQ_FIRST(&v->queue)) != NULL) {
		now = vv_mono();
		if (now < v->down_until) {
			vv_fail_queue(v);
			return;
		}
		opening = 0;
		TAILQ_FOREACH(c, &v->conns, next) {
			if (c->st == VV_IDLE)
				break;
			if (!c->ready)
				opening++;
		}
		if (c == NULL) {
			/* one new connection per waiting probe, up to pool */
			if (v->nconn < v->conf.pool && opening < v->nqueue &&
			    vv_open(v) == 0)
				continue;
			return;
		}
		if (v->conf.rate > 0) {
			double cap = v->conf.rate < 1 ? 1 : v->conf.rate;

			v->tokens += (now - v->tok_last) * v->conf.rate;
			if (v->tokens > cap)
				v->tokens = cap;
			v->tok_last = now;
			if (v->tokens < 1) {
				double wait = (1 - v->tokens) / v->conf.rate;
				struct timeval tv = { (time_t)wait,
				    (suseconds_t)((wait - (time_t)wait) * 1e6) };

				event_add(v->kick_ev, &tv);
				return;
			}
			v->tokens -= 1;
		}
		TAILQ_REMOVE(&v->queue, p, q);
		p->queued = 0;
		v->nqueue--;
		c->probe = p;
		c->used++;
		v->n.probes++;
		vv_send(c, VV_MAIL, "MAIL FROM:", "");
	}
}

/* vv_kick - run vv_dispatch from the loop, soon */
static void
vv_kick(struct grey_verify *v)
{
	struct timeval tv = { 0, 0 };

	if (!evtimer_pending(v->kick_ev, NULL))
		event_add(v->kick_ev, &tv);
}

/* vv_helo_ok - a name safe on an EHLO line */
static int
vv_helo_ok(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || strlen(s) > 255)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    strchr(".-_[]:", s[i]) != NULL))
			return 0;
	return 1;
}

/* grey_verify_new - a verifier for conf->mx (see header) */
int
grey_verify_new(struct grey_verify **out, struct event_base *base,
    const struct grey_verify_conf *conf, char *err, size_t errsz)
{
	struct grey_verify *v;

	*out = NULL;
	if ((v = calloc(1, sizeof(*v))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	v->conf = *conf;
	v->base = base;
	if (v->conf.pool <= 0)
		v->conf.pool = 2;
	if (v->conf.timeout_secs <= 0)
		v->conf.timeout_secs = 10;
	if (v->conf.idle_secs <= 0)
		v->conf.idle_secs = 30;
	if (v->conf.per_conn <= 0)
		v->conf.per_conn = 90;
	if (v->conf.ttl_valid <= 0)
		v->conf.ttl_valid = 86400;
	if (v->conf.ttl_invalid <= 0)
		v->conf.ttl_invalid = 3600;
	if (v->conf.queue_max <= 0)
		v->conf.queue_max = 10000;
	strlcpy(v->helo, vv_helo_ok(conf->helo) ? conf->helo : "localhost",
	    sizeof(v->helo));
	RB_INIT(&v->pending);
	TAILQ_INIT(&v->queue);
	TAILQ_INIT(&v->conns);
	v->tokens = v->conf.rate < 1 ? 1 : v->conf.rate;
	v->tok_last = vv_mono();
	if (vv_parse_mx(v, conf->mx, err, errsz) == -1)
		goto fail;
	v->cache = grey_vcache_new(conf->cache_max);
	v->kick_ev = evtimer_new(base, vv_dispatch, v);
	if (v->cache == NULL || v->kick_ev == NULL) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	v->conf.mx = v->mx;
	v->conf.helo = v->helo;
	log_info("event=verify_start mx=%s pool=%d rate=%g timeout=%d "
	    "ttl_valid=%lld ttl_invalid=%lld", v->mx, v->conf.pool,
	    v->conf.rate, v->conf.timeout_secs, (long long)v->conf.ttl_valid,
	    (long long)v->conf.ttl_invalid);
	*out = v;
	return 0;
fail:
	grey_verify_free(v);
	return -1;
}

/* grey_verify_check_mx - parse and resolve mx, keep nothing */
int
grey_verify_check_mx(const char *mx, char *err, size_t errsz)
{
	struct grey_verify v;

	memset(&v, 0, sizeof(v));
	return vv_parse_mx(&v, mx, err, errsz);
}

/* grey_verify_query - cached, unknown at once, or pending (see header) */
int
grey_verify_query(struct grey_verify *v, const char *addr,
    grey_verify_fn fn, void *arg)
{
	struct vv_probe key, *p;
	struct vv_waiter *w;
	size_t i;
	int r;

	v->n.queries++;
	/* never put a byte on the command line that could end it early */
	for (i = 0; addr[i] != '\0'; i++)
		if ((unsigned char)addr[i] <= ' ' || addr[i] == '<' ||
		    addr[i] == '>' || addr[i] == 0x7f)
			return VERIFY_UNKNOWN;
	if (i == 0 || i >= sizeof(key.addr))
		return VERIFY_UNKNOWN;
	if ((r = grey_vcache_get(v->cache, addr, time(NULL))) !=
	    VERIFY_UNKNOWN) {
		v->n.hits++;
		return r;
	}
	v->n.misses++;
	strlcpy(key.addr, addr, sizeof(key.addr));
	p = RB_FIND(vv_ptree, &v->pending, &key);
	/* one address asked again and again while its probe runs: bounded */
	if ((p != NULL && p->nwait >= VV_WAITERS_MAX) ||
	    (w = calloc(1, sizeof(*w))) == NULL) {
		v->n.dropped++;
		return VERIFY_UNKNOWN;
	}
	w->fn = fn;
	w->arg = arg;
	if (p != NULL) {
		v->n.coalesced++;
		SLIST_INSERT_HEAD(&p->waiters, w, next);
		p->nwait++;
		return VERIFY_PENDING;
	}
	if (vv_mono() < v->down_until || v->nqueue >= v->conf.queue_max ||
	    (p = calloc(1, sizeof(*p))) == NULL) {
		v->n.dropped++;
		free(w);
		return VERIFY_UNKNOWN;
	}
	strlcpy(p->addr, addr, sizeof(p->addr));
	SLIST_INIT(&p->waiters);
	SLIST_INSERT_HEAD(&p->waiters, w, next);
	p->nwait = 1;
	RB_INSERT(vv_ptree, &v->pending, p);
	TAILQ_INSERT_TAIL(&v->queue, p, q);
	p->queued = 1;
	v->nqueue++;
	vv_kick(v);
	return VERIFY_PENDING;
}

/* grey_verify_counts - the counters so far */
void
grey_verify_counts(const struct grey_verify *v, struct grey_verify_counts *out)
{
	*out = v->n;
}

/* grey_verify_free - close everything, answer what waits unknown */
void
grey_verify_free(struct grey_verify *v)
{
	struct vv_conn *c;
	struct vv_probe *p;

	if (v == NULL)
		return;
	if (v->kick_ev != NULL)
		event_free(v->kick_ev);
	v->kick_ev = NULL;
	while ((c = TAILQ_FIRST(&v->conns)) != NULL) {
		TAILQ_REMOVE(&v->conns, c, next);
		bufferevent_free(c->bev);
		event_free(c->timer);
		free(c);
	}
	while ((p = RB_MIN(vv_ptree, &v->pending)) != NULL)
		vv_probe_done(v, p, VERIFY_UNKNOWN);
	grey_vcache_free(v->cache);
	free(v);
}
