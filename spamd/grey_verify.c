/*
 * grey_verify.c - recipient verification against the real MX (see
 * grey_rcpt.h): the answer cache and the SMTP prober.
 */
/* libbsd's RB_GENERATE_STATIC marks functions __unused, which glibc lacks. */
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spamd/grey_rcpt.h"
#include "spamd/log.h"

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

struct grey_verify {
	struct grey_verify_counts	 n;
};

/* grey_verify_new - (not yet) */
int
grey_verify_new(struct grey_verify **out, struct event_base *base,
    const struct grey_verify_conf *conf, char *err, size_t errsz)
{
	*out = NULL;
	snprintf(err, errsz, "--verify-mx: not implemented yet");
	return -1;
}

/* grey_verify_query - (not yet) */
int
grey_verify_query(struct grey_verify *v, const char *addr,
    grey_verify_fn fn, void *arg)
{
	return VERIFY_UNKNOWN;
}

/* grey_verify_counts - the counters so far */
void
grey_verify_counts(const struct grey_verify *v, struct grey_verify_counts *out)
{
	*out = v->n;
}

/* grey_verify_free - safe on NULL */
void
grey_verify_free(struct grey_verify *v)
{
	free(v);
}
