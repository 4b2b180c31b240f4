/*
 * rules.c - the greylisting rules (DESIGN.md "Greylist rules"): one RCPT
 * becomes a trap, a grey tuple, or a pass to WHITE, in one transaction;
 * and the operator's trap/white commands.
 *
 * Choices where OpenBSD spamd's grey.c is the reference:
 * - A tuple that passes is deleted and its ip gets WHITE, as grey.c's
 *   scanner does: the WHITE entry is what matters from then on, and a
 *   leftover tuple would only pass again later.
 * - An ip that is already WHITE records no tuple: in OpenBSD such a host
 *   never reaches spamd (pf passes it to the real MX), so grey.c never
 *   sees it. Here it can reach us only before the firewall set catches up;
 *   we refresh its expire as spamlogd does for traffic it sees.
 * - Trapping writes TRAPPED for the ip (and drops its WHITE); the tuple is
 *   not kept, the ip is what is tarpitted.
 * - A record whose expire <= now counts as absent; it is overwritten, its
 *   old index entry removed in the same transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "greydb/gdb_private.h"

struct seen_ctx {
	struct gdb_rec		 tuple;		/* normalised key fields */
	int64_t			 now;
	const struct gdb_times	*t;
	int			 trap;		/* to outside allowed domains */
	int			*new_left;	/* (added) gdb_tuple.new_left */
	int			 no_new;	/* (added) db->no_new_grey */
	enum gdb_result		 res;
	struct gdb_rec		 out;
};

/* read_key - read the record with rec's key fields into got;
 * 0 found, DB_NOTFOUND, or an error code */
static int
read_key(struct gdb *db, DB_TXN *txn, const struct gdb_rec *rec,
    struct gdb_rec *got, struct gdb_err *err)
{
	unsigned char key[GDB_KEY_MAX];
	size_t klen;

	if ((klen = gdb_key_encode(rec, key, sizeof(key))) == 0) {
		gdb_seterr(err, "%s: key fields too long", db->dir);
		return GDB_EAPP;
	}
	return gdb_rec_read(db, txn, key, klen, got, 1, err);
}

/* ip_rec - an empty record of type for ip */
static void
ip_rec(struct gdb_rec *r, enum gdb_type type, const char *ip)
{
	memset(r, 0, sizeof(*r));
	r->type = type;
	strlcpy(r->ip, ip, sizeof(r->ip));
}

/* live - 1 if a read found a record that has not expired at now */
static int
live(int ret, const struct gdb_rec *r, int64_t now)
{
	return ret == 0 && r->expire > now;
}

/* trap_ip - write TRAPPED for ip until expire and drop its WHITE */
static int
trap_ip(struct gdb *db, DB_TXN *txn, const char *ip, int64_t now,
    int64_t expire, int bump, struct gdb_rec *out, struct gdb_err *err)
{
	struct gdb_rec key, old, nw;
	int ret;

	ip_rec(&key, GDB_TRAPPED, ip);
	ret = read_key(db, txn, &key, &old, err);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	nw = key;
	if (live(ret, &old, now)) {
		nw.first = old.first;
		nw.bcount = old.bcount + bump;
	} else {
		nw.first = now;
		nw.bcount = bump;
	}
	nw.pass = now;
	nw.expire = expire;
	nw.pcount = GDB_PCOUNT_TRAPPED;
	if ((ret = gdb_rec_write(db, txn, &nw, ret == 0 ? &old : NULL,
	    err)) != 0)
		return ret;
	ip_rec(&key, GDB_WHITE, ip);
	ret = read_key(db, txn, &key, &old, err);
	if (ret == 0)
		ret = gdb_rec_remove(db, txn, &old, err);
	else if (ret == DB_NOTFOUND)
		ret = 0;
	if (out != NULL)
		*out = nw;
	return ret;
}

/* seen_txn - the rules for one tuple, inside one transaction */
static int
seen_txn(struct gdb *db, DB_TXN *txn, void *arg, struct gdb_err *err)
{
	struct seen_ctx *c = arg;
	const struct gdb_times *t = c->t;
	struct gdb_rec key, st, trapped, white, old, nw;
	int64_t now = c->now;
	int ret, wret;

	/* 1. Trap check first: a spamtrap recipient or a foreign domain. */
	memset(&key, 0, sizeof(key));
	key.type = GDB_SPAMTRAP;
	strlcpy(key.to, c->tuple.to, sizeof(key.to));
	if (!c->trap && key.to[0] != '\0') {
		ret = read_key(db, txn, &key, &st, err);
		if (ret != 0 && ret != DB_NOTFOUND)
			return ret;
		c->trap = ret == 0;
	}
	if (c->trap) {
		c->res = GDB_R_TRAP;
		return trap_ip(db, txn, c->tuple.ip, now, now + t->trapexp, 1,
		    &c->out, err);
	}

	/* 2. A trapped ip is never whitelisted while trapped. */
	ip_rec(&key, GDB_TRAPPED, c->tuple.ip);
	ret = read_key(db, txn, &key, &trapped, err);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	if (live(ret, &trapped, now)) {
		c->res = GDB_R_TRAPPED;
		c->out = trapped;
		return 0;
	}

	/* 3. Already WHITE: refresh, record no tuple (see the top). */
	ip_rec(&key, GDB_WHITE, c->tuple.ip);
	wret = read_key(db, txn, &key, &white, err);
	if (wret != 0 && wret != DB_NOTFOUND)
		return wret;
	if (live(wret, &white, now)) {
		nw = white;
		nw.expire = now + t->whiteexp;
		c->res = GDB_R_WHITE;
		c->out = nw;
		return gdb_rec_write(db, txn, &nw, &white, err);
	}

	/* 4. The tuple: new, seen again, or passed. */
	ret = read_key(db, txn, &c->tuple, &old, err);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	if (!live(ret, &old, now)) {
		nw = c->tuple;
		nw.first = now;
		nw.pass = now + t->greyexp;
		nw.expire = now + t->greyexp;
		nw.bcount = 1;
		nw.pcount = 0;
		c->out = nw;
		/* (added) the caller's bound on new tuples: nothing written
		 * (an expired record left in place goes with the expiry) */
		if (c->no_new || (c->new_left != NULL && *c->new_left <= 0)) {
			c->res = GDB_R_REFUSED;
			return 0;
		}
		if (c->new_left != NULL)
			(*c->new_left)--;
		c->res = GDB_R_NEW;
		return gdb_rec_write(db, txn, &nw, ret == 0 ? &old : NULL, err);
	}
	nw = old;
	nw.bcount++;
	if (now <= old.first + t->passtime) {
		c->res = GDB_R_GREY;
		c->out = nw;
		return gdb_rec_write(db, txn, &nw, &old, err);
	}
	/* Passed: the tuple goes, the ip becomes WHITE. */
	if ((ret = gdb_rec_remove(db, txn, &old, err)) != 0)
		return ret;
	ip_rec(&nw, GDB_WHITE, c->tuple.ip);
	if (live(wret, &white, now)) {
		nw.first = white.first;
		nw.bcount = white.bcount;
		nw.pcount = white.pcount + 1;
	} else {
		nw.first = now;
		nw.bcount = old.bcount + 1;
		nw.pcount = 1;
	}
	nw.pass = now;
	nw.expire = now + t->whiteexp;
	c->res = GDB_R_PASSED;
	c->out = nw;
	return gdb_rec_write(db, txn, &nw, wret == 0 ? &white : NULL, err);
}

/* gdb_tuple_seen - apply the greylisting rules to one RCPT */
int
gdb_tuple_seen(struct gdb *db, const char *ip, const char *helo,
    const char *from, const char *to, int64_t now, const struct gdb_times *t,
    enum gdb_result *res, struct gdb_rec *rec, struct gdb_err *err)
{
	struct seen_ctx c;

	memset(&c, 0, sizeof(c));
	c.tuple.type = GDB_GREY;
	if (gdb_addr_canon(ip, c.tuple.ip) == -1) {
		gdb_seterr(err, "%.60s: not an IPv4 or IPv6 address",
		    ip != NULL ? ip : "(null)");
		return -1;
	}
	strlcpy(c.tuple.helo, helo != NULL ? helo : "", sizeof(c.tuple.helo));
	gdb_mail_norm(from, c.tuple.from, sizeof(c.tuple.from));
	gdb_mail_norm(to, c.tuple.to, sizeof(c.tuple.to));
	c.now = now;
	c.t = t;
	c.trap = !gdb_domain_allowed(db, c.tuple.to);
	c.no_new = db->no_new_grey;
	if (gdb_txn_run(db, "tuple", seen_txn, &c, err) == -1)
		return -1;
	if (res != NULL)
		*res = c.res;
	if (rec != NULL)
		*rec = c.out;
	return 0;
}

struct many_ctx {
	struct seen_ctx	*c;
	size_t		 n;
	int		*given;		/* (added) *new_left as given */
};

/* many_restore - (added) every *new_left back to what the caller gave */
static void
many_restore(struct many_ctx *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (m->c[i].new_left != NULL)
			*m->c[i].new_left = m->given[i];
}

/* many_txn - the rules for a batch of tuples, inside one transaction */
static int
many_txn(struct gdb *db, DB_TXN *txn, void *arg, struct gdb_err *err)
{
	struct many_ctx *m = arg;
	size_t i;
	int ret;

	/* (added) a retry after a deadlock starts from the counts given */
	many_restore(m);
	for (i = 0; i < m->n; i++) {
		if (m->c[i].tuple.type != GDB_GREY)
			continue;	/* a bad tuple, reported by the caller */
		if ((ret = seen_txn(db, txn, &m->c[i], err)) != 0)
			return ret;
	}
	return 0;
}

/* gdb_tuple_seen_many - the rules for n tuples in one transaction */
int
gdb_tuple_seen_many(struct gdb *db, struct gdb_tuple *tv, size_t n,
    int64_t now, const struct gdb_times *t, struct gdb_err *err)
{
	struct seen_ctx *c;
	struct many_ctx m;
	size_t i;
	int rv = 0;

	if (n == 0)
		return 0;
	if (n > GDB_BATCH_MAX) {
		gdb_seterr(err, "%s: batch of %zu tuples, at most %d", db->dir,
		    n, GDB_BATCH_MAX);
		return -1;
	}
	if ((c = calloc(n, sizeof(*c))) == NULL ||
	    (m.given = calloc(n, sizeof(*m.given))) == NULL) {
		free(c);
		gdb_seterr(err, "%s: out of memory for a batch", db->dir);
		return -1;
	}
	for (i = 0; i < n; i++) {
		tv[i].bad = 0;
		tv[i].res = 0;
		/* (added) saved before any attempt: the same pointer in
		 * several tuples saves the same count */
		c[i].new_left = tv[i].new_left;
		if (tv[i].new_left != NULL)
			m.given[i] = *tv[i].new_left;
		c[i].no_new = db->no_new_grey;
		if (gdb_addr_canon(tv[i].ip != NULL ? tv[i].ip : "",
		    c[i].tuple.ip) == -1) {
			tv[i].bad = 1;
			continue;
		}
		c[i].tuple.type = GDB_GREY;
		strlcpy(c[i].tuple.helo, tv[i].helo != NULL ? tv[i].helo : "",
		    sizeof(c[i].tuple.helo));
		gdb_mail_norm(tv[i].from, c[i].tuple.from,
		    sizeof(c[i].tuple.from));
		gdb_mail_norm(tv[i].to, c[i].tuple.to, sizeof(c[i].tuple.to));
		c[i].now = now;
		c[i].t = t;
		c[i].trap = !gdb_domain_allowed(db, c[i].tuple.to);
	}
	m.c = c;
	m.n = n;
	if (gdb_txn_run(db, "tuple batch", many_txn, &m, err) == -1) {
		many_restore(&m);	/* (added) nothing was used */
		rv = -1;
	}
	for (i = 0; rv == 0 && i < n; i++) {
		if (tv[i].bad)
			continue;
		tv[i].res = c[i].res;
		tv[i].rec = c[i].out;
	}
	free(m.given);
	free(c);
	return rv;
}

/* gdb_set_no_new_grey - (added) refuse new GREY records on this handle */
void
gdb_set_no_new_grey(struct gdb *db, int on)
{
	db->no_new_grey = on != 0;
}

struct ipcmd_ctx {
	char	ip[GDB_ADDR_MAX];
	int64_t	now, expire;
};

/* trap_txn - the body of gdb_trap */
static int
trap_txn(struct gdb *db, DB_TXN *txn, void *arg, struct gdb_err *err)
{
	struct ipcmd_ctx *c = arg;

	return trap_ip(db, txn, c->ip, c->now, c->expire, 0, NULL, err);
}

/* white_read - for the two WHITE updates: refuse an ip that is TRAPPED,
 * else read its WHITE record (key set, *old and *found filled: the
 * read's DB_NOTFOUND or 0); 0 or an error */
static int
white_read(struct gdb *db, DB_TXN *txn, const struct ipcmd_ctx *c,
    struct gdb_rec *key, struct gdb_rec *old, int *found,
    struct gdb_err *err)
{
	int ret;

	ip_rec(key, GDB_TRAPPED, c->ip);
	ret = read_key(db, txn, key, old, err);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	if (live(ret, old, c->now)) {
		gdb_seterr(err, "%s: white: %s is TRAPPED until %lld",
		    db->dir, c->ip, (long long)old->expire);
		return GDB_EAPP;
	}
	ip_rec(key, GDB_WHITE, c->ip);
	ret = read_key(db, txn, key, old, err);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	*found = ret;
	return 0;
}

/* white_txn - the body of gdb_white: refused while the ip is trapped */
static int
white_txn(struct gdb *db, DB_TXN *txn, void *arg, struct gdb_err *err)
{
	struct ipcmd_ctx *c = arg;
	struct gdb_rec key, old, nw;
	int ret, found;

	if ((ret = white_read(db, txn, c, &key, &old, &found, err)) != 0)
		return ret;
	nw = key;
	if (live(found, &old, c->now)) {
		nw.first = old.first;
		nw.bcount = old.bcount;
		nw.pcount = old.pcount;
	} else {
		nw.first = c->now;
	}
	nw.pass = c->now;
	nw.expire = c->expire;
	return gdb_rec_write(db, txn, &nw, found == 0 ? &old : NULL, err);
}

/* white_seen_txn - the body of gdb_white_seen: spamlogd's update */
static int
white_seen_txn(struct gdb *db, DB_TXN *txn, void *arg, struct gdb_err *err)
{
	struct ipcmd_ctx *c = arg;
	struct gdb_rec key, old, nw;
	int ret, found;

	if ((ret = white_read(db, txn, c, &key, &old, &found, err)) != 0)
		return ret;
	/* why: OpenBSD's spamlogd counts each connection it sees in pcount
	 * and only moves expire; first and pass keep when the host was
	 * first seen and when it passed, which spamdb readers rely on */
	if (live(found, &old, c->now)) {
		nw = old;
		nw.pcount = old.pcount + 1;
	} else {
		nw = key;
		nw.first = nw.pass = c->now;
		nw.bcount = 1;
		nw.pcount = 0;
	}
	nw.expire = c->expire;
	return gdb_rec_write(db, txn, &nw, found == 0 ? &old : NULL, err);
}

/* ipcmd - canonicalise ip and run body in a transaction */
static int
ipcmd(struct gdb *db, const char *op, gdb_txn_fn body, const char *ip,
    int64_t now, int64_t expire, struct gdb_err *err)
{
	struct ipcmd_ctx c;

	if (gdb_addr_canon(ip, c.ip) == -1) {
		gdb_seterr(err, "%.60s: not an IPv4 or IPv6 address",
		    ip != NULL ? ip : "(null)");
		return -1;
	}
	c.now = now;
	c.expire = expire;
	return gdb_txn_run(db, op, body, &c, err);
}

/* gdb_trap - mark ip TRAPPED until expire and drop its WHITE */
int
gdb_trap(struct gdb *db, const char *ip, int64_t now, int64_t expire,
    struct gdb_err *err)
{
	return ipcmd(db, "trap", trap_txn, ip, now, expire, err);
}

/* gdb_white - mark ip WHITE until expire (refused while trapped) */
int
gdb_white(struct gdb *db, const char *ip, int64_t now, int64_t expire,
    struct gdb_err *err)
{
	return ipcmd(db, "white", white_txn, ip, now, expire, err);
}

/* gdb_white_seen - ip passed to the real MX: refresh as spamlogd does */
int
gdb_white_seen(struct gdb *db, const char *ip, int64_t now, int64_t expire,
    struct gdb_err *err)
{
	return ipcmd(db, "white_seen", white_seen_txn, ip, now, expire, err);
}
