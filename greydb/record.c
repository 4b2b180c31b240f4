/*
 * record.c - key and value encoding, reading and writing one record with
 * its expiry index entry, and range scans (walk, stats, delete by ip).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "greydb/gdb_private.h"

#define GDB_SCAN_BATCH	1000

/* put_be - store v big-endian in n bytes */
static void
put_be(unsigned char *p, uint64_t v, int n)
{
	int i;

	for (i = n - 1; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

/* get_be - read n big-endian bytes */
static uint64_t
get_be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* gdb_key_escape - printable form of key bytes for error messages */
void
gdb_key_escape(const unsigned char *key, size_t len, char *out, size_t outsz)
{
	size_t i, o = 0;

	if (outsz == 0)
		return;
	for (i = 0; i < len && o + 5 < outsz && i < 120; i++) {
		if (key[i] >= 0x21 && key[i] < 0x7f && key[i] != '\\')
			out[o++] = (char)key[i];
		else
			o += (size_t)snprintf(out + o, outsz - o, "\\x%02x",
			    key[i]);
	}
	if (i < len && o + 4 < outsz) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* add_field - append s and, unless last, a NUL */
static int
add_field(unsigned char *buf, size_t bufsz, size_t *off, const char *s,
    size_t max, int last)
{
	size_t n = strnlen(s, max);

	if (n >= max || *off + n + (last ? 0 : 1) > bufsz)
		return -1;
	memcpy(buf + *off, s, n);
	*off += n;
	if (!last)
		buf[(*off)++] = '\0';
	return 0;
}

/* gdb_key_encode - key bytes of rec's (already normalised) key fields */
size_t
gdb_key_encode(const struct gdb_rec *rec, unsigned char *buf, size_t bufsz)
{
	size_t off = 1;

	if (bufsz < 1)
		return 0;
	buf[0] = (unsigned char)rec->type;
	switch (rec->type) {
	case GDB_GREY:
		if (add_field(buf, bufsz, &off, rec->ip, GDB_ADDR_MAX, 0) ||
		    add_field(buf, bufsz, &off, rec->helo, GDB_HELO_MAX, 0) ||
		    add_field(buf, bufsz, &off, rec->from, GDB_MAIL_MAX, 0) ||
		    add_field(buf, bufsz, &off, rec->to, GDB_MAIL_MAX, 1))
			return 0;
		break;
	case GDB_WHITE:
	case GDB_TRAPPED:
		if (add_field(buf, bufsz, &off, rec->ip, GDB_ADDR_MAX, 1))
			return 0;
		break;
	case GDB_SPAMTRAP:
		if (add_field(buf, bufsz, &off, rec->to, GDB_MAIL_MAX, 1))
			return 0;
		break;
	default:
		return 0;
	}
	return off;
}

/* take_field - copy the next field (up to NUL or end) into out */
static int
take_field(const unsigned char *key, size_t len, size_t *off, char *out,
    size_t outsz, int last)
{
	const unsigned char *nul;
	size_t n;

	nul = memchr(key + *off, '\0', len - *off);
	if (last ? nul != NULL : nul == NULL)
		return -1;
	n = (nul != NULL ? (size_t)(nul - key) : len) - *off;
	if (n >= outsz)
		return -1;
	memcpy(out, key + *off, n);
	out[n] = '\0';
	*off += n + (last ? 0 : 1);
	return 0;
}

/* gdb_key_decode - set rec's type and key fields from key bytes */
int
gdb_key_decode(const unsigned char *key, size_t len, struct gdb_rec *rec,
    struct gdb_err *err)
{
	char kesc[600];
	size_t off = 1;
	int bad = 0;

	memset(rec, 0, sizeof(*rec));
	if (len < 2) {
		bad = 1;
	} else {
		rec->type = (enum gdb_type)key[0];
		switch (key[0]) {
		case GDB_GREY:
			bad = take_field(key, len, &off, rec->ip,
			    sizeof(rec->ip), 0) ||
			    take_field(key, len, &off, rec->helo,
			    sizeof(rec->helo), 0) ||
			    take_field(key, len, &off, rec->from,
			    sizeof(rec->from), 0) ||
			    take_field(key, len, &off, rec->to,
			    sizeof(rec->to), 1);
			break;
		case GDB_WHITE:
		case GDB_TRAPPED:
			bad = take_field(key, len, &off, rec->ip,
			    sizeof(rec->ip), 1);
			break;
		case GDB_SPAMTRAP:
			bad = take_field(key, len, &off, rec->to,
			    sizeof(rec->to), 1);
			break;
		default:
			bad = 1;
		}
	}
	if (bad) {
		gdb_key_escape(key, len, kesc, sizeof(kesc));
		gdb_seterr(err, "key %s: malformed key (%zu bytes)", kesc, len);
		return -1;
	}
	return 0;
}

/* gdb_val_encode - value bytes of rec's times and counters */
void
gdb_val_encode(const struct gdb_rec *rec, unsigned char out[GDB_VAL_SIZE])
{
	out[0] = GDB_VAL_VERSION;
	put_be(out + 1, (uint64_t)rec->first, 8);
	put_be(out + 9, (uint64_t)rec->pass, 8);
	put_be(out + 17, (uint64_t)rec->expire, 8);
	put_be(out + 25, (uint32_t)rec->bcount, 4);
	put_be(out + 29, (uint32_t)rec->pcount, 4);
}

/* gdb_val_decode - set rec's times and counters from value bytes */
int
gdb_val_decode(const unsigned char *val, size_t len, const unsigned char *key,
    size_t keylen, struct gdb_rec *rec, struct gdb_err *err)
{
	char kesc[600];

	if (len != GDB_VAL_SIZE || val[0] != GDB_VAL_VERSION) {
		gdb_key_escape(key, keylen, kesc, sizeof(kesc));
		if (len == 0 || val[0] != GDB_VAL_VERSION)
			gdb_seterr(err, "key %s: unknown value version %d",
			    kesc, len == 0 ? -1 : val[0]);
		else
			gdb_seterr(err, "key %s: value is %zu bytes, want %d",
			    kesc, len, GDB_VAL_SIZE);
		return -1;
	}
	rec->first = (int64_t)get_be(val + 1, 8);
	rec->pass = (int64_t)get_be(val + 9, 8);
	rec->expire = (int64_t)get_be(val + 17, 8);
	rec->bcount = (int32_t)(uint32_t)get_be(val + 25, 4);
	rec->pcount = (int32_t)(uint32_t)get_be(val + 29, 4);
	return 0;
}

/* gdb_norm_key - copy in with its key fields in canonical form */
int
gdb_norm_key(const struct gdb_rec *in, struct gdb_rec *out,
    struct gdb_err *err)
{
	char tmp[GDB_MAIL_MAX];

	*out = *in;
	switch (in->type) {
	case GDB_GREY:
		if (strnlen(in->helo, GDB_HELO_MAX) >= GDB_HELO_MAX)
			out->helo[GDB_HELO_MAX - 1] = '\0';
		gdb_mail_norm(in->from, out->from, sizeof(out->from));
		gdb_mail_norm(in->to, out->to, sizeof(out->to));
		/* FALLTHROUGH */
	case GDB_WHITE:
	case GDB_TRAPPED:
		if (gdb_addr_canon(in->ip, out->ip) == -1) {
			gdb_seterr(err, "%.60s: not an IPv4 or IPv6 address",
			    in->ip);
			return -1;
		}
		if (in->type != GDB_GREY) {
			out->helo[0] = out->from[0] = out->to[0] = '\0';
		}
		return 0;
	case GDB_SPAMTRAP:
		memcpy(tmp, in->to, sizeof(tmp));
		tmp[sizeof(tmp) - 1] = '\0';
		gdb_mail_norm(tmp, out->to, sizeof(out->to));
		if (out->to[0] == '\0') {
			gdb_seterr(err, "spamtrap: empty address");
			return -1;
		}
		out->ip[0] = out->helo[0] = out->from[0] = '\0';
		return 0;
	}
	gdb_seterr(err, "record type %d: unknown type", (int)in->type);
	return -1;
}

/* idx_key - expiry index key: big-endian expire, then the primary key */
static size_t
idx_key(int64_t expire, const unsigned char *key, size_t klen,
    unsigned char *out)
{
	put_be(out, (uint64_t)expire, 8);
	memcpy(out + 8, key, klen);
	return klen + 8;
}

/* dbt_in - a DBT pointing at bytes we give */
static DBT
dbt_in(const void *data, size_t len)
{
	DBT d;

	memset(&d, 0, sizeof(d));
	d.data = (void *)(uintptr_t)data;
	d.size = (u_int32_t)len;
	return d;
}

/* dbt_out - a DBT for Berkeley DB to fill in our buffer */
static DBT
dbt_out(void *buf, size_t len)
{
	DBT d;

	memset(&d, 0, sizeof(d));
	d.data = buf;
	d.ulen = (u_int32_t)len;
	d.flags = DB_DBT_USERMEM;
	return d;
}

/* gdb_rec_read - read the record at key; 0 found, DB_NOTFOUND, or error */
int
gdb_rec_read(struct gdb *db, DB_TXN *txn, const unsigned char *key,
    size_t klen, struct gdb_rec *rec, int rmw, struct gdb_err *err)
{
	unsigned char vbuf[GDB_VAL_SIZE + 64];
	DBT k = dbt_in(key, klen), v = dbt_out(vbuf, sizeof(vbuf));
	char kesc[600];
	int ret;

	ret = db->main->get(db->main, txn, &k, &v, rmw ? DB_RMW : 0);
	if (ret == DB_BUFFER_SMALL) {
		gdb_key_escape(key, klen, kesc, sizeof(kesc));
		gdb_seterr(err, "%s: key %s: value is %u bytes, want %d",
		    db->dir, kesc, v.size, GDB_VAL_SIZE);
		return GDB_EAPP;
	}
	if (ret != 0)
		return ret;
	if (gdb_key_decode(key, klen, rec, err) == -1 ||
	    gdb_val_decode(vbuf, v.size, key, klen, rec, err) == -1)
		return GDB_EAPP;
	return 0;
}

/* gdb_rec_write - store rec (normalised) and its index entry; old is the
 * record it replaces (its index entry goes) or NULL */
int
gdb_rec_write(struct gdb *db, DB_TXN *txn, const struct gdb_rec *rec,
    const struct gdb_rec *old, struct gdb_err *err)
{
	unsigned char key[GDB_KEY_MAX], ikey[GDB_KEY_MAX + 8];
	unsigned char val[GDB_VAL_SIZE];
	DBT k, v, ik, iv;
	size_t klen, iklen;
	int ret;

	if ((klen = gdb_key_encode(rec, key, sizeof(key))) == 0) {
		gdb_seterr(err, "%s: put: key fields too long", db->dir);
		return GDB_EAPP;
	}
	if (old != NULL && old->type != GDB_SPAMTRAP &&
	    (rec->type == GDB_SPAMTRAP || old->expire != rec->expire)) {
		iklen = idx_key(old->expire, key, klen, ikey);
		ik = dbt_in(ikey, iklen);
		ret = db->exp->del(db->exp, txn, &ik, 0);
		if (ret != 0 && ret != DB_NOTFOUND)
			return ret;
	}
	gdb_val_encode(rec, val);
	k = dbt_in(key, klen);
	v = dbt_in(val, sizeof(val));
	if ((ret = db->main->put(db->main, txn, &k, &v, 0)) != 0)
		return ret;
	if (rec->type == GDB_SPAMTRAP)
		return 0;
	iklen = idx_key(rec->expire, key, klen, ikey);
	ik = dbt_in(ikey, iklen);
	iv = dbt_in("", 0);
	return db->exp->put(db->exp, txn, &ik, &iv, 0);
}

/* gdb_rec_remove - delete old and its index entry */
int
gdb_rec_remove(struct gdb *db, DB_TXN *txn, const struct gdb_rec *old,
    struct gdb_err *err)
{
	unsigned char key[GDB_KEY_MAX], ikey[GDB_KEY_MAX + 8];
	DBT k, ik;
	size_t klen;
	int ret;

	if ((klen = gdb_key_encode(old, key, sizeof(key))) == 0) {
		gdb_seterr(err, "%s: del: key fields too long", db->dir);
		return GDB_EAPP;
	}
	k = dbt_in(key, klen);
	if ((ret = db->main->del(db->main, txn, &k, 0)) != 0)
		return ret;
	if (old->type == GDB_SPAMTRAP)
		return 0;
	ik = dbt_in(ikey, idx_key(old->expire, key, klen, ikey));
	ret = db->exp->del(db->exp, txn, &ik, 0);
	return ret == DB_NOTFOUND ? 0 : ret;
}

struct put_ctx {
	const struct gdb_rec	*rec;
	int			 found;
};

/* put_txn - replace whatever is at rec's key by rec */
static int
put_txn(struct gdb *db, DB_TXN *txn, void *arg, struct gdb_err *err)
{
	struct put_ctx *c = arg;
	unsigned char key[GDB_KEY_MAX];
	struct gdb_rec old;
	size_t klen;
	int ret;

	klen = gdb_key_encode(c->rec, key, sizeof(key));
	ret = gdb_rec_read(db, txn, key, klen, &old, 1, err);
	if (ret == GDB_EAPP) {
		/* A damaged value is replaced; its index entry, if any, is
		 * unknown and goes when expiry finds it has no record. */
		ret = DB_NOTFOUND;
	}
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	return gdb_rec_write(db, txn, c->rec, ret == 0 ? &old : NULL, err);
}

/* gdb_put - write a whole record as given (import, sync) */
int
gdb_put(struct gdb *db, const struct gdb_rec *rec, struct gdb_err *err)
{
	struct gdb_rec r;
	struct put_ctx c = { &r, 0 };

	if (gdb_norm_key(rec, &r, err) == -1)
		return -1;
	if (r.type == GDB_SPAMTRAP)
		r.pcount = GDB_PCOUNT_SPAMTRAP;
	return gdb_txn_run(db, "put", put_txn, &c, err);
}

/* del_txn - delete the record at c->rec's key, if any */
static int
del_txn(struct gdb *db, DB_TXN *txn, void *arg, struct gdb_err *err)
{
	struct put_ctx *c = arg;
	unsigned char key[GDB_KEY_MAX];
	struct gdb_rec old;
	size_t klen;
	int ret;

	c->found = 0;
	klen = gdb_key_encode(c->rec, key, sizeof(key));
	ret = gdb_rec_read(db, txn, key, klen, &old, 1, err);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret == GDB_EAPP) {
		/* Delete a damaged record too: that is how one gets rid of
		 * it. Its index entry is dropped later by expiry. */
		DBT k = dbt_in(key, klen);

		ret = db->main->del(db->main, txn, &k, 0);
		c->found = ret == 0;
		return ret;
	}
	if (ret != 0)
		return ret;
	c->found = 1;
	return gdb_rec_remove(db, txn, &old, err);
}

/* gdb_del - delete one record by its key fields; 1 deleted, 0 absent */
int
gdb_del(struct gdb *db, const struct gdb_rec *rec, struct gdb_err *err)
{
	struct gdb_rec r;
	struct put_ctx c = { &r, 0 };

	if (gdb_norm_key(rec, &r, err) == -1)
		return -1;
	if (gdb_txn_run(db, "del", del_txn, &c, err) == -1)
		return -1;
	return c.found;
}

/* gdb_spamtrap_add - add a trap recipient address */
int
gdb_spamtrap_add(struct gdb *db, const char *addr, struct gdb_err *err)
{
	struct gdb_rec r;
	time_t now = time(NULL);

	memset(&r, 0, sizeof(r));
	r.type = GDB_SPAMTRAP;
	strlcpy(r.to, addr != NULL ? addr : "", sizeof(r.to));
	r.first = r.pass = (int64_t)now;
	r.expire = 0;
	r.pcount = GDB_PCOUNT_SPAMTRAP;
	return gdb_put(db, &r, err);
}

/* gdb_spamtrap_del - remove a trap recipient address */
int
gdb_spamtrap_del(struct gdb *db, const char *addr, struct gdb_err *err)
{
	struct gdb_rec r;

	memset(&r, 0, sizeof(r));
	r.type = GDB_SPAMTRAP;
	strlcpy(r.to, addr != NULL ? addr : "", sizeof(r.to));
	return gdb_del(db, &r, err) == -1 ? -1 : 0;
}

/* gdb_get - look one record up by its key fields; 1 found, 0 not */
int
gdb_get(struct gdb *db, struct gdb_rec *rec, struct gdb_err *err)
{
	unsigned char key[GDB_KEY_MAX];
	struct gdb_rec r, got;
	size_t klen;
	int ret;

	if (gdb_norm_key(rec, &r, err) == -1)
		return -1;
	if ((klen = gdb_key_encode(&r, key, sizeof(key))) == 0) {
		gdb_seterr(err, "%s: get: key fields too long", db->dir);
		return -1;
	}
	/* A single get without a transaction is its own read-committed
	 * operation: it takes and drops one page lock. */
	for (int tries = 0;; tries++) {
		ret = gdb_rec_read(db, NULL, key, klen, &got, 0, err);
		if (ret != DB_LOCK_DEADLOCK || tries > 100)
			break;
	}
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret == GDB_EAPP)
		return -1;
	if (ret != 0)
		return gdb_dberr(db, "get", ret, err);
	*rec = got;
	return 1;
}

/* A copied key/value pair of one scan batch. */
struct scan_item {
	unsigned char	key[GDB_KEY_MAX + 8];
	size_t		klen;
	unsigned char	val[GDB_VAL_SIZE];
	size_t		vlen;
};

/* scan_batch - read up to GDB_SCAN_BATCH pairs from start within prefix */
static int
scan_batch(struct gdb *db, const unsigned char *prefix, size_t plen,
    const unsigned char *start, size_t slen, struct scan_item *items,
    size_t *n, int *done)
{
	DB_TXN *txn = NULL;
	DBC *c = NULL;
	unsigned char kbuf[GDB_KEY_MAX + 8], vbuf[4096];
	DBT k, v;
	u_int32_t flag = DB_SET_RANGE;
	int ret;

	*n = 0;
	*done = 0;
	if ((ret = db->env->txn_begin(db->env, NULL, &txn,
	    DB_READ_COMMITTED)) != 0)
		return ret;
	if ((ret = db->main->cursor(db->main, txn, &c,
	    DB_READ_COMMITTED)) != 0)
		goto out;
	memcpy(kbuf, start, slen);
	while (*n < GDB_SCAN_BATCH) {
		k = dbt_out(kbuf, sizeof(kbuf));
		if (flag == DB_SET_RANGE)
			k.size = (u_int32_t)slen;
		v = dbt_out(vbuf, sizeof(vbuf));
		ret = c->get(c, &k, &v, flag);
		flag = DB_NEXT;
		if (ret == DB_NOTFOUND) {
			*done = 1;
			ret = 0;
			break;
		}
		if (ret != 0)
			break;
		if (k.size < plen ||
		    (plen > 0 && memcmp(kbuf, prefix, plen) != 0)) {
			*done = 1;
			break;
		}
		memcpy(items[*n].key, kbuf, k.size);
		items[*n].klen = k.size;
		items[*n].vlen = v.size > sizeof(items[*n].val) ?
		    sizeof(items[*n].val) + 1 : v.size;
		memcpy(items[*n].val, vbuf, v.size > sizeof(items[*n].val) ?
		    sizeof(items[*n].val) : v.size);
		(*n)++;
	}
out:
	if (c != NULL)
		c->close(c);
	if (ret == 0)
		ret = txn->commit(txn, 0);
	else
		txn->abort(txn);
	return ret;
}

/* gdb_scan - read a key range in batches and call fn for each pair */
int
gdb_scan(struct gdb *db, const unsigned char *prefix, size_t plen,
    gdb_raw_fn fn, void *arg, struct gdb_err *err)
{
	struct scan_item *items;
	unsigned char start[GDB_KEY_MAX + 8];
	size_t slen = plen, n, i;
	int ret, done = 0, tries = 0, rv = 0;

	if ((items = calloc(GDB_SCAN_BATCH, sizeof(*items))) == NULL) {
		gdb_seterr(err, "%s: scan: out of memory", db->dir);
		return -1;
	}
	if (plen == 0) {
		start[0] = 0;
		slen = 1;
	} else
		memcpy(start, prefix, plen);
	while (!done) {
		ret = scan_batch(db, prefix, plen, start, slen, items, &n,
		    &done);
		if (ret == DB_LOCK_DEADLOCK && tries++ < 200) {
			done = 0;
			continue;
		}
		if (ret != 0) {
			rv = gdb_dberr(db, "scan", ret, err);
			break;
		}
		tries = 0;
		for (i = 0; i < n; i++) {
			/* The batch's locks are gone: fn may write. */
			if ((rv = fn(items[i].key, items[i].klen,
			    items[i].val, items[i].vlen, arg, err)) != 0)
				break;
		}
		if (rv != 0)
			break;
		if (n > 0) {
			/* The key right after K is K followed by one NUL. */
			memcpy(start, items[n - 1].key, items[n - 1].klen);
			slen = items[n - 1].klen;
			start[slen++] = '\0';
		}
	}
	free(items);
	return rv < 0 ? -1 : rv > 0 ? 1 : 0;
}

struct walk_ctx {
	gdb_walk_fn	 fn;
	void		*arg;
	struct gdb_stats *st;
};

/* walk_one - decode one pair and hand it to the caller's function */
static int
walk_one(const unsigned char *key, size_t klen, const unsigned char *val,
    size_t vlen, void *arg, struct gdb_err *err)
{
	struct walk_ctx *w = arg;
	struct gdb_rec rec;

	if (gdb_key_decode(key, klen, &rec, err) == -1 ||
	    gdb_val_decode(val, vlen, key, klen, &rec, err) == -1)
		return -1;
	return w->fn(&rec, w->arg) != 0 ? 1 : 0;
}

/* gdb_walk - visit every record of type (0 = all types, in type order) */
int
gdb_walk(struct gdb *db, enum gdb_type type, gdb_walk_fn fn, void *arg,
    struct gdb_err *err)
{
	struct walk_ctx w = { fn, arg, NULL };
	unsigned char prefix[1];

	prefix[0] = (unsigned char)type;
	return gdb_scan(db, prefix, type == 0 ? 0 : 1, walk_one, &w, err) ==
	    -1 ? -1 : 0;
}

/* gdb_walk_some - visit the records of type after pos, one batch at
 * most, until fn returns non-zero (see greydb.h) */
int
gdb_walk_some(struct gdb *db, enum gdb_type type, struct gdb_walk_pos *pos,
    gdb_walk_fn fn, void *arg, struct gdb_err *err)
{
	struct walk_ctx w = { fn, arg, NULL };
	struct scan_item *items;
	unsigned char prefix[1], start[GDB_KEY_MAX + 8];
	size_t slen, n = 0, i;
	int ret, done = 0, tries = 0, rv = 0, r;

	if (pos->done)
		return 0;
	if ((items = calloc(GDB_SCAN_BATCH, sizeof(*items))) == NULL) {
		gdb_seterr(err, "%s: walk: out of memory", db->dir);
		return -1;
	}
	prefix[0] = (unsigned char)type;
	if (pos->klen == 0) {
		start[0] = prefix[0];
		slen = 1;
	} else {
		/* The key right after K is K followed by one NUL. */
		memcpy(start, pos->key, pos->klen);
		slen = pos->klen;
		start[slen++] = '\0';
	}
	do
		ret = scan_batch(db, prefix, 1, start, slen, items, &n, &done);
	while (ret == DB_LOCK_DEADLOCK && tries++ < 200);
	if (ret != 0) {
		free(items);
		return gdb_dberr(db, "walk", ret, err);
	}
	for (i = 0; i < n; i++) {
		memcpy(pos->key, items[i].key, items[i].klen);
		pos->klen = items[i].klen;
		if ((r = walk_one(items[i].key, items[i].klen, items[i].val,
		    items[i].vlen, &w, err)) != 0) {
			rv = r < 0 ? -1 : 0;
			break;
		}
	}
	/* done only when the range ended and fn saw all of this batch */
	if (rv == 0 && done && i == n)
		pos->done = 1;
	free(items);
	return rv;
}

/* count_one - add one key to the stats by its type byte */
static int
count_one(const unsigned char *key, size_t klen, const unsigned char *val,
    size_t vlen, void *arg, struct gdb_err *err)
{
	struct gdb_stats *st = arg;

	switch (key[0]) {
	case GDB_GREY:
		st->grey++;
		break;
	case GDB_WHITE:
		st->white++;
		break;
	case GDB_TRAPPED:
		st->trapped++;
		break;
	case GDB_SPAMTRAP:
		st->spamtrap++;
		break;
	}
	return 0;
}

/* gdb_stats - count records of each type */
int
gdb_stats(struct gdb *db, struct gdb_stats *st, struct gdb_err *err)
{
	memset(st, 0, sizeof(*st));
	return gdb_scan(db, NULL, 0, count_one, st, err) == -1 ? -1 : 0;
}

struct delip_ctx {
	long	count;
};

/* delip_one - delete one GREY tuple found by the ip prefix scan */
static int
delip_one(const unsigned char *key, size_t klen, const unsigned char *val,
    size_t vlen, void *arg, struct gdb_err *err)
{
	struct gdb *db = ((void **)arg)[0];
	struct delip_ctx *c = ((void **)arg)[1];
	struct gdb_rec rec;
	struct put_ctx pc = { &rec, 0 };

	if (gdb_key_decode(key, klen, &rec, err) == -1)
		return -1;
	if (gdb_txn_run(db, "del", del_txn, &pc, err) == -1)
		return -1;
	c->count += pc.found;
	return 0;
}

/* grey_ip_prefix - key prefix of the GREY tuples of ip (type byte, ip,
 * NUL) into prefix[GDB_ADDR_MAX + 2]; its length, or 0 for a bad ip */
static size_t
grey_ip_prefix(const char *ip, unsigned char *prefix, struct gdb_err *err)
{
	char canon[GDB_ADDR_MAX];
	size_t n;

	if (gdb_addr_canon(ip, canon) == -1) {
		gdb_seterr(err, "%.60s: not an IPv4 or IPv6 address",
		    ip != NULL ? ip : "(null)");
		return 0;
	}
	n = strlen(canon);
	prefix[0] = GDB_GREY;
	memcpy(prefix + 1, canon, n);
	prefix[n + 1] = '\0';
	return n + 2;
}

/* gdb_del_grey_ip - delete every GREY tuple of ip; returns count or -1 */
long
gdb_del_grey_ip(struct gdb *db, const char *ip, struct gdb_err *err)
{
	unsigned char prefix[GDB_ADDR_MAX + 2];
	struct delip_ctx c = { 0 };
	void *arg[2] = { db, &c };
	size_t plen;

	if ((plen = grey_ip_prefix(ip, prefix, err)) == 0)
		return -1;
	if (gdb_scan(db, prefix, plen, delip_one, arg, err) == -1)
		return -1;
	return c.count;
}

/* gdb_walk_ip - visit the GREY tuples of ip only (a range scan on their
 * key prefix, not the whole GREY range) */
int
gdb_walk_ip(struct gdb *db, const char *ip, gdb_walk_fn fn, void *arg,
    struct gdb_err *err)
{
	unsigned char prefix[GDB_ADDR_MAX + 2];
	struct walk_ctx w = { fn, arg, NULL };
	size_t plen;

	if ((plen = grey_ip_prefix(ip, prefix, err)) == 0)
		return -1;
	return gdb_scan(db, prefix, plen, walk_one, &w, err) == -1 ? -1 : 0;
}
