/*
 * dnsbl.c - DNS blacklist lookups for the engine: zones, query names, the
 * answer cache and the request machinery shared with rdns.c.
 *
 * Life cycle. A request (struct dnsbl_req) belongs to whoever asked; each
 * DNS query it starts (struct dnsbl_q) belongs to evdns until evdns calls
 * it back, which happens exactly once per started query - also after
 * evdns_cancel_request (DNS_ERR_CANCEL) and evdns_base_free
 * (DNS_ERR_SHUTDOWN). So a query is freed only in its callback, and it
 * points back at its request only while that request still wants the
 * answer: cancelling a request or timing it out just cuts q->req, and a
 * late answer then only fills the cache. A session that goes away before
 * the answer can never be called back.
 */
#define DNSBL_INTERNAL
#include <sys/queue.h>
#include <sys/tree.h>
/* why: libbsd's RB_GENERATE_STATIC marks its functions __unused, which
 * glibc's <sys/cdefs.h> does not define under -std=c11 */
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "spamd/common/blacklist.h"
#include "spamd/common/dnsbl.h"
#include "spamd/common/log.h"

/* --- query names ------------------------------------------------------ */

/* dnsbl_qname - reversed octets or nibbles of the address, then zone */
int
dnsbl_qname(const struct sockaddr *sa, const char *zone, char *out,
    size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	struct bl_addr a;
	char rev[80], *p = rev;
	int i, n;

	if (sa == NULL || bl_addr_from_sa(sa, &a) == -1)
		return -1;
	if (a.family == AF_INET)
		p += snprintf(rev, sizeof(rev), "%u.%u.%u.%u", a.a[3], a.a[2],
		    a.a[1], a.a[0]);
	else {
		for (i = 15; i >= 0; i--) {
			*p++ = hex[a.a[i] & 0xf];
			*p++ = '.';
			*p++ = hex[a.a[i] >> 4];
			if (i > 0)
				*p++ = '.';
		}
		*p = '\0';
	}
	if (zone != NULL && zone[0] != '\0')
		n = snprintf(out, outsz, "%s.%s", rev, zone);
	else
		n = snprintf(out, outsz, "%s", rev);
	/* why: a DNS name is at most 253 bytes in text form */
	if (n < 0 || (size_t)n >= outsz || n > 253)
		return -1;
	return 0;
}

/* dnsbl_ptrname - the reverse-lookup name of an address */
int
dnsbl_ptrname(const struct sockaddr *sa, char *out, size_t outsz)
{
	struct bl_addr a;

	if (sa == NULL || bl_addr_from_sa(sa, &a) == -1)
		return -1;
	return dnsbl_qname(sa, a.family == AF_INET ? "in-addr.arpa" :
	    "ip6.arpa", out, outsz);
}

/* --- the cache -------------------------------------------------------- */

/* One cached answer; key and name are stored after the struct. */
struct dnsbl_centry {
	RB_ENTRY(dnsbl_centry)	 rb;
	uint64_t		 hash;		/* of key, compared first */
	TAILQ_ENTRY(dnsbl_centry) age;		/* oldest first */
	time_t			 expires;
	size_t			 bytes;
	enum dnsbl_status	 status;
	int			 na;
	uint32_t		 a[DNSBL_MAX_ANSWERS];
	int			 code;
	const char		*name;
	char			 key[];
};

RB_HEAD(dnsbl_ctree, dnsbl_centry);

struct dnsbl_cache {
	struct dnsbl_ctree			 tree;
	TAILQ_HEAD(, dnsbl_centry)		 age;
	size_t					 n, max, bytes;
};

/* dnsbl_centry_cmp - order cache entries by key hash, then key */
static int
dnsbl_centry_cmp(const struct dnsbl_centry *a, const struct dnsbl_centry *b)
{
	/* why: query names share long suffixes; integers compare faster
	 * and keep the walk inside the nodes' first cache line */
	if (a->hash != b->hash)
		return a->hash < b->hash ? -1 : 1;
	return strcmp(a->key, b->key);
}

/* dnsbl_hash - FNV-1a of a key (order only, not a defence) */
static uint64_t
dnsbl_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

RB_GENERATE_STATIC(dnsbl_ctree, dnsbl_centry, rb, dnsbl_centry_cmp)

/* dnsbl_cache_new - an empty cache */
struct dnsbl_cache *
dnsbl_cache_new(size_t max)
{
	struct dnsbl_cache *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	RB_INIT(&c->tree);
	TAILQ_INIT(&c->age);
	c->max = max > 0 ? max : DNSBL_CACHE_DEFAULT;
	return c;
}

/* dnsbl_cache_drop - remove one entry */
static void
dnsbl_cache_drop(struct dnsbl_cache *c, struct dnsbl_centry *e)
{
	RB_REMOVE(dnsbl_ctree, &c->tree, e);
	TAILQ_REMOVE(&c->age, e, age);
	c->n--;
	c->bytes -= e->bytes;
	free(e);
}

/* dnsbl_cache_free - free a cache and every entry */
void
dnsbl_cache_free(struct dnsbl_cache *c)
{
	if (c == NULL)
		return;
	while (!TAILQ_EMPTY(&c->age))
		dnsbl_cache_drop(c, TAILQ_FIRST(&c->age));
	free(c);
}

/* dnsbl_cache_put - remember an answer for its (bounded) TTL */
void
dnsbl_cache_put(struct dnsbl_cache *c, const char *key,
    const struct dnsbl_answer *ans, uint32_t ttl, time_t now)
{
	struct dnsbl_centry *e, *old;
	size_t klen = strlen(key), nlen = strlen(ans->name);
	int i;

	if (ans->status != DNSBL_ST_FOUND && ans->status != DNSBL_ST_NXDOMAIN)
		return;
	if (ans->status == DNSBL_ST_NXDOMAIN) {
		if (ttl == 0)
			ttl = DNSBL_NEG_TTL;
		if (ttl > DNSBL_NEG_TTL_MAX)
			ttl = DNSBL_NEG_TTL_MAX;
	} else if (ttl > DNSBL_TTL_MAX)
		ttl = DNSBL_TTL_MAX;
	/* why: a 0 TTL would send every connection to DNS again */
	if (ttl < DNSBL_TTL_MIN)
		ttl = DNSBL_TTL_MIN;

	if ((e = malloc(sizeof(*e) + klen + 1 + nlen + 1)) == NULL)
		return;		/* a cache that cannot grow just misses */
	memset(e, 0, sizeof(*e));
	memcpy(e->key, key, klen + 1);
	e->hash = dnsbl_hash(key);
	memcpy(e->key + klen + 1, ans->name, nlen + 1);
	e->name = e->key + klen + 1;
	e->bytes = sizeof(*e) + klen + 1 + nlen + 1;
	e->expires = now + (time_t)ttl;
	e->status = ans->status;
	e->na = ans->na > DNSBL_MAX_ANSWERS ? DNSBL_MAX_ANSWERS : ans->na;
	for (i = 0; i < e->na; i++)
		e->a[i] = ans->a[i];
	e->code = ans->code;

	if ((old = RB_FIND(dnsbl_ctree, &c->tree, e)) != NULL)
		dnsbl_cache_drop(c, old);
	/* the oldest go first: expired ones, then whatever is needed */
	while ((old = TAILQ_FIRST(&c->age)) != NULL &&
	    (c->n >= c->max || old->expires <= now))
		dnsbl_cache_drop(c, old);
	RB_INSERT(dnsbl_ctree, &c->tree, e);
	TAILQ_INSERT_TAIL(&c->age, e, age);
	c->n++;
	c->bytes += e->bytes;
}

/* dnsbl_cache_get - a live cached answer for key */
int
dnsbl_cache_get(struct dnsbl_cache *c, const char *key, time_t now,
    struct dnsbl_answer *ans)
{
	_Alignas(struct dnsbl_centry) char buf[sizeof(struct dnsbl_centry) +
	    DNSBL_NAME_MAX + 16];
	struct dnsbl_centry *e, *find;
	size_t klen = strlen(key);
	int i;

	/* why: RB_FIND wants an entry; build one on the stack */
	if (klen >= DNSBL_NAME_MAX + 16)
		return 0;
	find = (struct dnsbl_centry *)(void *)buf;
	memcpy(find->key, key, klen + 1);
	find->hash = dnsbl_hash(key);
	if ((e = RB_FIND(dnsbl_ctree, &c->tree, find)) == NULL)
		return 0;
	if (e->expires <= now) {
		dnsbl_cache_drop(c, e);
		return 0;
	}
	memset(ans, 0, sizeof(*ans));
	ans->status = e->status;
	ans->na = e->na;
	for (i = 0; i < e->na; i++)
		ans->a[i] = e->a[i];
	ans->code = e->code;
	strlcpy(ans->name, e->name, sizeof(ans->name));
	return 1;
}

/* dnsbl_cache_count - entries held */
size_t
dnsbl_cache_count(const struct dnsbl_cache *c)
{
	return c->n;
}

/* dnsbl_cache_bytes - memory the entries use */
size_t
dnsbl_cache_bytes(const struct dnsbl_cache *c)
{
	return c->bytes;
}

/* --- zones and the checker -------------------------------------------- */

struct dnsbl_zone {
	int			 refcnt;	/* the checker's + requests' */
	int			 from_file;
	struct dnsbl_spec	 spec;
	struct dnsbl_zone_stats	 st;
	time_t			 last_warn;	/* of trouble, see dnsbl_trouble */
};

/* One DNS query owned by evdns until its callback (see the top). */
struct dnsbl_q {
	LIST_ENTRY(dnsbl_q)	 entry;		/* in d->queries while d lives */
	RB_ENTRY(dnsbl_q)	 rb;		/* in d->pending if intree */
	TAILQ_HEAD(, dnsbl_wait) waiters;	/* empty once nobody waits */
	struct dnsbl		*d;		/* NULL once d is freed */
	struct evdns_request	*h;
	int			 cache;		/* store the A answer by name */
	int			 intree;	/* others may join it */
	char			 name[DNSBL_NAME_MAX];
};

RB_HEAD(dnsbl_qtree, dnsbl_q);

/* dnsbl_q_cmp - order zone queries in flight by name */
static int
dnsbl_q_cmp(const struct dnsbl_q *a, const struct dnsbl_q *b)
{
	return strcmp(a->name, b->name);
}

RB_GENERATE_STATIC(dnsbl_qtree, dnsbl_q, rb, dnsbl_q_cmp)

struct dnsbl {
	struct event_base	*base;
	struct evdns_base	*dns;
	struct timeval		 tv;		/* per request */
	struct dnsbl_cache	*cache;
	struct dnsbl_zone	*zones[DNSBL_MAX_ZONES];
	int			 nzones;
	TAILQ_HEAD(, dnsbl_req)	 reqs;
	LIST_HEAD(, dnsbl_q)	 queries;
	struct dnsbl_qtree	 pending;	/* zone queries others can join */
	int			 inflight, peak;
};

/* dnsbl_now - seconds on the monotonic clock */
time_t
dnsbl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* dnsbl_cache_of - the checker's cache */
struct dnsbl_cache *
dnsbl_cache_of(struct dnsbl *d)
{
	return d->cache;
}

/* dnsbl_status_of - an evdns result code as a status */
enum dnsbl_status
dnsbl_status_of(int result)
{
	switch (result) {
	case DNS_ERR_NONE:
		return DNSBL_ST_FOUND;
	case DNS_ERR_NOTEXIST:
	case DNS_ERR_NODATA:
		return DNSBL_ST_NXDOMAIN;
	case DNS_ERR_TIMEOUT:
	case DNS_ERR_CANCEL:
	case DNS_ERR_SHUTDOWN:
		return DNSBL_ST_TIMEOUT;
	default:
		return DNSBL_ST_ERROR;
	}
}

/* dnsbl_zone_unref - drop a reference to a zone, freeing it at zero */
static void
dnsbl_zone_unref(struct dnsbl_zone *z)
{
	if (--z->refcnt > 0)
		return;
	dnsbl_spec_clear(&z->spec);
	free(z);
}

/* dnsbl_zone_new - a zone from a parsed spec (takes its message) */
static struct dnsbl_zone *
dnsbl_zone_new(struct dnsbl_spec *spec, int from_file)
{
	struct dnsbl_zone *z;

	if ((z = calloc(1, sizeof(*z))) == NULL)
		return NULL;
	z->refcnt = 1;
	z->from_file = from_file;
	z->spec = *spec;
	spec->msg = NULL;
	z->st.zone = z->spec.zone;
	return z;
}

/* dnsbl_evdns_log - evdns's own messages go to our log, not stderr */
static void
dnsbl_evdns_log(int warn, const char *msg)
{
	if (warn)
		log_info("event=dns_warning msg=\"%s\"", msg);
	else
		log_debug("event=dns_debug msg=\"%s\"", msg);
}

/* dnsbl_new - a checker on base, asking server (or resolv.conf) */
struct dnsbl *
dnsbl_new(struct event_base *base, const char *server, int timeout_ms,
    size_t cache_max, char *err, size_t errsz)
{
	struct dnsbl *d;
	char opt[32];
	int r;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errsz, "dnsbl: out of memory");
		return NULL;
	}
	TAILQ_INIT(&d->reqs);
	LIST_INIT(&d->queries);
	RB_INIT(&d->pending);
	d->base = base;
	if (timeout_ms <= 0)
		timeout_ms = DNSBL_TIMEOUT_MS;
	d->tv.tv_sec = timeout_ms / 1000;
	d->tv.tv_usec = (timeout_ms % 1000) * 1000;
	if ((d->cache = dnsbl_cache_new(cache_max)) == NULL) {
		snprintf(err, errsz, "dnsbl: out of memory");
		goto fail;
	}
	evdns_set_log_fn(dnsbl_evdns_log);
	/* why: an idle resolver must not keep the loop alive on its own */
	d->dns = evdns_base_new(base, (server == NULL ?
	    EVDNS_BASE_INITIALIZE_NAMESERVERS : 0) |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (d->dns == NULL) {
		snprintf(err, errsz, "dnsbl: cannot start the resolver%s",
		    server == NULL ? " (/etc/resolv.conf)" : "");
		goto fail;
	}
	if (server != NULL &&
	    (r = evdns_base_nameserver_ip_add(d->dns, server)) != 0) {
		snprintf(err, errsz, "dnsbl: bad name server '%s'", server);
		goto fail;
	}
	if (server == NULL && evdns_base_count_nameservers(d->dns) == 0) {
		snprintf(err, errsz, "dnsbl: no name server in "
		    "/etc/resolv.conf");
		goto fail;
	}
	/*
	 * why: two tries of half the limit each, so one lost UDP packet does
	 * not cost a listing; our own timer enforces the whole limit anyway.
	 */
	snprintf(opt, sizeof(opt), "%.3f", timeout_ms / 2000.0);
	evdns_base_set_option(d->dns, "timeout:", opt);
	evdns_base_set_option(d->dns, "attempts:", "2");
	/*
	 * why: a burst of connections must not become a burst of answers
	 * bigger than the socket's receive buffer (lost answers are
	 * timeouts); evdns queues what is over the limit.
	 */
	evdns_base_set_option(d->dns, "max-inflight:", "256");
	evdns_base_set_option(d->dns, "so-rcvbuf:", "1048576");
	/* checks run at accept: never search domains, never wait on them */
	evdns_base_search_clear(d->dns);
	return d;
fail:
	if (d->dns != NULL)
		evdns_base_free(d->dns, 0);
	dnsbl_cache_free(d->cache);
	free(d);
	return NULL;
}

/* dnsbl_free - cancel every request and free the checker */
void
dnsbl_free(struct dnsbl *d)
{
	struct dnsbl_q *q;
	int i;

	if (d == NULL)
		return;
	while (!TAILQ_EMPTY(&d->reqs))
		dnsbl_req_free(TAILQ_FIRST(&d->reqs));
	/* queries still out are freed by their DNS_ERR_SHUTDOWN callbacks */
	while ((q = LIST_FIRST(&d->queries)) != NULL) {
		LIST_REMOVE(q, entry);
		q->d = NULL;
		q->intree = 0;	/* the tree dies with d */
	}
	evdns_base_free(d->dns, 1);
	for (i = 0; i < d->nzones; i++)
		dnsbl_zone_unref(d->zones[i]);
	dnsbl_cache_free(d->cache);
	free(d);
}

/* dnsbl_carry_stats - keep the counters of a zone of the same name */
static void
dnsbl_carry_stats(struct dnsbl_zone *z, struct dnsbl_zone *const *old,
    int nold)
{
	int i;

	for (i = 0; i < nold; i++) {
		if (strcmp(old[i]->spec.zone, z->spec.zone) == 0) {
			z->st = old[i]->st;
			z->st.zone = z->spec.zone;
			return;
		}
	}
}

/* dnsbl_add_zone - add (or replace) a command-line zone */
int
dnsbl_add_zone(struct dnsbl *d, const char *spec, const char *file,
    int line, char *err, size_t errsz)
{
	struct dnsbl_spec s;
	struct dnsbl_zone *z;
	int i;

	if (dnsbl_spec_parse(spec, file, line, &s, err, errsz) == -1)
		return -1;
	for (i = 0; i < d->nzones; i++)
		if (strcmp(d->zones[i]->spec.zone, s.zone) == 0)
			break;
	if (i == d->nzones && d->nzones == DNSBL_MAX_ZONES) {
		snprintf(err, errsz, "%s: too many zones (at most %d)",
		    file != NULL ? file : "dnsbl", DNSBL_MAX_ZONES);
		dnsbl_spec_clear(&s);
		return -1;
	}
	if ((z = dnsbl_zone_new(&s, 0)) == NULL) {
		snprintf(err, errsz, "out of memory");
		dnsbl_spec_clear(&s);
		return -1;
	}
	if (i < d->nzones) {
		dnsbl_carry_stats(z, &d->zones[i], 1);
		dnsbl_zone_unref(d->zones[i]);
	} else
		d->nzones++;
	d->zones[i] = z;
	return 0;
}

/* dnsbl_load - replace the file's zones from a file or its text */
static int
dnsbl_load(struct dnsbl *d, const char *path, const char *text, size_t len,
    char *err, size_t errsz)
{
	struct dnsbl_spec specs[DNSBL_MAX_ZONES];
	struct dnsbl_zone *nz[DNSBL_MAX_ZONES];
	int n, i, j, ncmd = 0, total = 0, rc;

	for (i = 0; i < d->nzones; i++)
		if (!d->zones[i]->from_file)
			nz[ncmd++] = d->zones[i];
	if (text != NULL)
		rc = dnsbl_conf_read_text(path, text, len, specs,
		    DNSBL_MAX_ZONES - ncmd, &n, err, errsz);
	else
		rc = dnsbl_conf_read(path, specs, DNSBL_MAX_ZONES - ncmd, &n,
		    err, errsz);
	if (rc == -1)
		return -1;
	for (i = 0; i < n; i++) {
		for (j = 0; j < ncmd; j++) {
			if (strcmp(nz[j]->spec.zone, specs[i].zone) == 0) {
				snprintf(err, errsz, "%s: zone %s is also "
				    "given with --dnsbl", path, specs[i].zone);
				goto fail;
			}
		}
	}
	total = ncmd;
	for (i = 0; i < n; i++) {
		if ((nz[total] = dnsbl_zone_new(&specs[i], 1)) == NULL) {
			snprintf(err, errsz, "%s: out of memory", path);
			goto fail;
		}
		dnsbl_carry_stats(nz[total], d->zones, d->nzones);
		total++;
	}
	/* swap: command-line zones stay, old file zones go */
	for (i = 0; i < d->nzones; i++)
		if (d->zones[i]->from_file)
			dnsbl_zone_unref(d->zones[i]);
	memcpy(d->zones, nz, (size_t)total * sizeof(nz[0]));
	d->nzones = total;
	return 0;
fail:
	for (i = ncmd; i < total; i++)
		dnsbl_zone_unref(nz[i]);
	for (i = 0; i < n; i++)
		dnsbl_spec_clear(&specs[i]);
	return -1;
}

/* dnsbl_load_file - replace the file's zones, all or nothing */
int
dnsbl_load_file(struct dnsbl *d, const char *path, char *err, size_t errsz)
{
	return dnsbl_load(d, path, NULL, 0, err, errsz);
}

/* dnsbl_load_text - the same from the file's text */
int
dnsbl_load_text(struct dnsbl *d, const char *name, const char *text,
    size_t len, char *err, size_t errsz)
{
	return dnsbl_load(d, name, text != NULL ? text : "", len, err, errsz);
}

/* dnsbl_nzones - zones in use */
int
dnsbl_nzones(const struct dnsbl *d)
{
	return d->nzones;
}

/* dnsbl_stats - every zone's counters */
int
dnsbl_stats(const struct dnsbl *d, struct dnsbl_zone_stats *out, int max)
{
	int i;

	for (i = 0; i < d->nzones && i < max; i++)
		out[i] = d->zones[i]->st;
	return i;
}

/* dnsbl_inflight - DNS queries out now and at the peak */
void
dnsbl_inflight(const struct dnsbl *d, int *now, int *peak)
{
	*now = d->inflight;
	*peak = d->peak;
}

/* --- requests ------------------------------------------------------- */

static void dnsbl_req_timer(evutil_socket_t, short, void *);

/* dnsbl_req_new - a request of kind on d */
struct dnsbl_req *
dnsbl_req_new(struct dnsbl *d, enum dnsbl_kind kind,
    const struct dnsbl_req_ops *ops, const struct bl_addr *addr, void *arg)
{
	struct dnsbl_req *req;

	if ((req = calloc(1, sizeof(*req))) == NULL)
		return NULL;
	req->d = d;
	req->kind = kind;
	req->ops = ops;
	req->arg = arg;
	if (addr != NULL) {
		req->addr = *addr;
		inet_ntop(addr->family, addr->a, req->addrtext,
		    sizeof(req->addrtext));
	}
	evtimer_assign(&req->timer, d->base, dnsbl_req_timer, req);
	TAILQ_INSERT_TAIL(&d->reqs, req, entry);
	return req;
}

/* dnsbl_req_free - free a request; its queries live on without it */
void
dnsbl_req_free(struct dnsbl_req *req)
{
	int i;

	for (i = 0; i < DNSBL_MAX_ZONES; i++) {
		if (req->w[i].q != NULL) {
			TAILQ_REMOVE(&req->w[i].q->waiters, &req->w[i], entry);
			req->w[i].q = NULL;
		}
	}
	evtimer_del(&req->timer);
	TAILQ_REMOVE(&req->d->reqs, req, entry);
	for (i = 0; i < req->nzones; i++)
		dnsbl_zone_unref(req->zone[i]);
	free(req->ans);
	free(req);
}

/* dnsbl_req_arm - the time limit, or an answer from the loop at once */
void
dnsbl_req_arm(struct dnsbl_req *req)
{
	static const struct timeval now = { 0, 0 };

	/* why: callers must never be called back from inside their call */
	evtimer_add(&req->timer, req->pending > 0 ? &req->d->tv : &now);
}

static void dnsbl_zones_deliver(struct dnsbl_req *req);

/* dnsbl_req_deliver - call the asker back once, then free */
static void
dnsbl_req_deliver(struct dnsbl_req *req)
{
	req->delivering = 1;
	if (req->kind == DNSBL_REQ_ZONES)
		dnsbl_zones_deliver(req);
	else
		req->ops->deliver(req);		/* rdns.c */
	dnsbl_req_free(req);
}

/* dnsbl_wait_on - make req's slot wait for q */
static void
dnsbl_wait_on(struct dnsbl_req *req, int slot, struct dnsbl_q *q)
{
	struct dnsbl_wait *w = &req->w[slot];

	w->req = req;
	w->slot = slot;
	w->q = q;
	TAILQ_INSERT_TAIL(&q->waiters, w, entry);
	req->pending++;
}

/* dnsbl_wait_cut - stop waiting (the answer came or time is up) */
static void
dnsbl_wait_cut(struct dnsbl_wait *w)
{
	TAILQ_REMOVE(&w->q->waiters, w, entry);
	w->q = NULL;
	w->req->pending--;
}

/* dnsbl_req_timer - the time limit passed (or a cached answer is ready) */
static void
dnsbl_req_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct dnsbl_req *req = arg;
	struct dnsbl_q *q;
	int i;

	for (i = 0; i < DNSBL_MAX_ZONES; i++) {
		if ((q = req->w[i].q) == NULL)
			continue;
		dnsbl_wait_cut(&req->w[i]);
		req->timed_out = 1;
		if (!TAILQ_EMPTY(&q->waiters))
			continue;	/* others started later still wait */
		/* why: nobody waits and the answer is late: let it go. The
		 * callback still comes (DNS_ERR_CANCEL) and frees q; out of
		 * the tree so that no new check joins a cancelled query */
		if (q->intree) {
			RB_REMOVE(dnsbl_qtree, &req->d->pending, q);
			q->intree = 0;
		}
		evdns_cancel_request(req->d->dns, q->h);
	}
	dnsbl_req_deliver(req);
}

/* dnsbl_answer_of - an evdns A result as an answer */
static void
dnsbl_answer_of(int result, char type, int count, void *addresses,
    struct dnsbl_answer *ans)
{
	const uint32_t *a = addresses;
	int i;

	memset(ans, 0, sizeof(*ans));
	ans->status = dnsbl_status_of(result);
	if (ans->status != DNSBL_ST_FOUND)
		return;
	if (type != DNS_IPv4_A || count <= 0 || a == NULL) {
		ans->status = DNSBL_ST_NXDOMAIN;
		return;
	}
	for (i = 0; i < count && i < DNSBL_MAX_ANSWERS; i++)
		ans->a[i] = ntohl(a[i]);
	ans->na = i;
}

/* dnsbl_q_cb - evdns answered (or gave up on) one query */
static void
dnsbl_q_cb(int result, char type, int count, int ttl, void *addresses,
    void *arg)
{
	struct dnsbl_q *q = arg;
	struct dnsbl_wait *w;
	struct dnsbl_req *req;
	struct dnsbl_answer ans;
	int slot;

	if (q->d != NULL) {
		q->d->inflight--;
		LIST_REMOVE(q, entry);
		if (q->intree) {
			RB_REMOVE(dnsbl_qtree, &q->d->pending, q);
			q->intree = 0;
		}
		if (q->cache) {
			/* a late answer for a gone session still helps the
			 * next connection from that address */
			dnsbl_answer_of(result, type, count, addresses, &ans);
			dnsbl_cache_put(q->d->cache, q->name, &ans,
			    ttl < 0 ? 0 : (uint32_t)ttl, dnsbl_now());
		}
	}
	/* why: take waiters one at a time from the head; a callback we run
	 * may cancel (and so unlink) any other waiter */
	while ((w = TAILQ_FIRST(&q->waiters)) != NULL) {
		req = w->req;
		slot = w->slot;
		dnsbl_wait_cut(w);
		if (req->kind == DNSBL_REQ_ZONES)
			dnsbl_answer_of(result, type, count, addresses,
			    &req->ans[slot]);
		else				/* rdns.c */
			req->ops->q_done(req, slot, result, type, count, ttl,
			    addresses);
		if (req->pending == 0)
			dnsbl_req_deliver(req);
	}
	free(q);
}

/* dnsbl_q_start - start one DNS query for req in slot */
int
dnsbl_q_start(struct dnsbl_req *req, int slot, int type, const char *name,
    const struct bl_addr *addr)
{
	struct dnsbl *d = req->d;
	struct dnsbl_q *q, find;
	struct in_addr in4;
	struct in6_addr in6;
	int zone = req->kind == DNSBL_REQ_ZONES && type == DNS_IPv4_A;

	/* why: a bot opens many connections at once; the same zone query
	 * already out answers them all */
	if (zone) {
		strlcpy(find.name, name, sizeof(find.name));
		if ((q = RB_FIND(dnsbl_qtree, &d->pending, &find)) != NULL) {
			dnsbl_wait_on(req, slot, q);
			return 1;
		}
	}
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return -1;
	TAILQ_INIT(&q->waiters);
	q->d = d;
	q->cache = zone;
	if (name != NULL)
		strlcpy(q->name, name, sizeof(q->name));
	switch (type) {
	case DNS_IPv4_A:
		q->h = evdns_base_resolve_ipv4(d->dns, q->name,
		    DNS_QUERY_NO_SEARCH, dnsbl_q_cb, q);
		break;
	case DNS_IPv6_AAAA:
		q->h = evdns_base_resolve_ipv6(d->dns, q->name,
		    DNS_QUERY_NO_SEARCH, dnsbl_q_cb, q);
		break;
	case DNS_PTR:
		if (addr->family == AF_INET) {
			memcpy(&in4, addr->a, 4);
			q->h = evdns_base_resolve_reverse(d->dns, &in4,
			    DNS_QUERY_NO_SEARCH, dnsbl_q_cb, q);
		} else {
			memcpy(&in6, addr->a, 16);
			q->h = evdns_base_resolve_reverse_ipv6(d->dns, &in6,
			    DNS_QUERY_NO_SEARCH, dnsbl_q_cb, q);
		}
		break;
	}
	if (q->h == NULL) {
		/* evdns never calls back for a request it refused */
		free(q);
		return -1;
	}
	LIST_INSERT_HEAD(&d->queries, q, entry);
	if (zone) {
		RB_INSERT(dnsbl_qtree, &d->pending, q);
		q->intree = 1;
	}
	dnsbl_wait_on(req, slot, q);
	if (++d->inflight > d->peak)
		d->peak = d->inflight;
	return 0;
}

/* dnsbl_listed - whether a zone's answer lists the client; *hit the
 * answer that did */
static int
dnsbl_listed(const struct dnsbl_zone *z, const struct dnsbl_answer *ans,
    uint32_t *hit)
{
	int i, k;

	if (ans->status != DNSBL_ST_FOUND)
		return 0;
	for (i = 0; i < ans->na; i++) {
		if (z->spec.ncodes > 0) {
			for (k = 0; k < z->spec.ncodes; k++) {
				if (ans->a[i] == z->spec.codes[k]) {
					*hit = ans->a[i];
					return 1;
				}
			}
			continue;
		}
		/*
		 * why: without codes, any 127.0.0.0/8 answer lists, but not
		 * 127.255.255.0/24, which large lists (Spamhaus) return to
		 * say "query refused" (public resolver, over quota): that
		 * would list every client.
		 */
		if ((ans->a[i] >> 24) == 127 && (ans->a[i] >> 8) != 0x7fffff) {
			*hit = ans->a[i];
			return 1;
		}
	}
	return 0;
}

/* dnsbl_check - look a client up in every zone */
struct dnsbl_req *
dnsbl_check(struct dnsbl *d, const struct sockaddr *client, dnsbl_cb cb,
    void *arg)
{
	struct dnsbl_req *req;
	struct dnsbl_zone *z;
	struct bl_addr a;
	char name[DNSBL_NAME_MAX];
	time_t now = dnsbl_now();
	int i;

	if (d->nzones == 0 || client == NULL ||
	    bl_addr_from_sa(client, &a) == -1)
		return NULL;
	if ((req = dnsbl_req_new(d, DNSBL_REQ_ZONES, NULL, &a, arg)) == NULL)
		return NULL;
	req->cb.zones = cb;
	if ((req->ans = calloc((size_t)d->nzones, sizeof(*req->ans))) ==
	    NULL) {
		dnsbl_req_free(req);
		return NULL;
	}
	for (i = 0; i < d->nzones; i++) {
		z = req->zone[i] = d->zones[i];
		z->refcnt++;
		req->nzones++;
		req->ans[i].status = DNSBL_ST_TIMEOUT;
		if (dnsbl_qname(client, z->spec.zone, name, sizeof(name)) ==
		    -1) {
			req->ans[i].status = DNSBL_ST_ERROR;
			continue;
		}
		if (dnsbl_cache_get(d->cache, name, now, &req->ans[i])) {
			z->st.cache_hits++;
			continue;
		}
		switch (dnsbl_q_start(req, i, DNS_IPv4_A, name, NULL)) {
		case 0:
			z->st.queries++;
			break;
		case 1:
			z->st.coalesced++;
			break;
		default:	/* counted as an error when delivered */
			req->ans[i].status = DNSBL_ST_ERROR;
			break;
		}
	}
	dnsbl_req_arm(req);
	return req;
}

/* dnsbl_trouble - log a zone's timeouts and errors, at most once a
 * minute per zone at info level (a dead server must not flood the log) */
static void
dnsbl_trouble(struct dnsbl_zone *z, const char *ip, const char *what)
{
	time_t now = dnsbl_now();

	if (z->last_warn != 0 && now - z->last_warn < 60) {
		log_debug("event=dnsbl ip=%s zone=%s result=%s", ip,
		    z->spec.zone, what);
		return;
	}
	z->last_warn = now;
	log_info("event=dnsbl ip=%s zone=%s result=%s timeouts=%llu "
	    "errors=%llu", ip, z->spec.zone, what,
	    (unsigned long long)z->st.timeouts,
	    (unsigned long long)z->st.errors);
}

/* dnsbl_zones_deliver - count, log and report a DNSBL check */
static void
dnsbl_zones_deliver(struct dnsbl_req *req)
{
	struct dnsbl_result res;
	struct dnsbl_answer *ans;
	struct dnsbl_zone *z;
	struct in_addr ia;
	uint32_t hit = 0;
	int i;

	memset(&res, 0, sizeof(res));
	res.addr = req->addrtext;
	res.nzones = req->nzones;
	res.ans = req->ans;
	for (i = 0; i < req->nzones; i++) {
		z = req->zone[i];
		ans = &req->ans[i];
		res.zone[i] = z->spec.zone;
		switch (ans->status) {
		case DNSBL_ST_TIMEOUT:
			z->st.timeouts++;
			res.ntimeout++;
			dnsbl_trouble(z, req->addrtext, "timeout");
			continue;
		case DNSBL_ST_ERROR:
			z->st.errors++;
			dnsbl_trouble(z, req->addrtext, "error");
			continue;
		default:
			break;
		}
		if (!dnsbl_listed(z, ans, &hit)) {
			if (ans->status == DNSBL_ST_FOUND && z->spec.ncodes == 0)
				z->st.errors++;	/* only 127.255.255.x */
			continue;
		}
		z->st.listed++;
		ia.s_addr = htonl(hit);
		res.hit[res.nlisted].zone = z->spec.zone;
		res.hit[res.nlisted].msg = z->spec.msg;
		inet_ntop(AF_INET, &ia, res.hit[res.nlisted].answer,
		    sizeof(res.hit[res.nlisted].answer));
		log_info("event=dnsbl ip=%s zone=%s answer=%s",
		    req->addrtext, z->spec.zone, res.hit[res.nlisted].answer);
		res.nlisted++;
	}
	if (req->cb.zones != NULL)
		req->cb.zones(req->arg, &res);
}

/* dnsbl_cancel - the asker is gone: never call it back */
void
dnsbl_cancel(struct dnsbl_req *req)
{
	/* why: a callback that closes its session may cancel its own
	 * request; the request is freed when the callback returns */
	if (req == NULL || req->delivering)
		return;
	dnsbl_req_free(req);
}
