/*
 * expire.c - remove expired records by walking the expiry index (expire.db,
 * key = big-endian expire + primary key) from its start up to now, so the
 * cost is in proportion to what expires, not to the database size.
 */
#include <stdlib.h>
#include <string.h>

#include "greydb/gdb_private.h"

/* Records removed per transaction: few enough that one batch holds few
 * locks and blocks the daemon's writer briefly, many enough that commits
 * do not dominate. */
#define GDB_EXPIRE_BATCH	1000

struct exp_ctx {
	int64_t		 now;
	struct gdb_rec	*done;		/* records removed in this batch */
	size_t		 ndone;
	long		 read;		/* index entries read in this batch */
	int		 finished;
};

/* exp_txn - remove up to one batch of expired records */
static int
exp_txn(struct gdb *db, DB_TXN *txn, void *arg, struct gdb_err *err)
{
	struct exp_ctx *c = arg;
	unsigned char ibuf[GDB_KEY_MAX + 8], vbuf[16];
	struct gdb_rec rec;
	DBC *cur;
	DBT k, v;
	uint64_t exp;
	int ret, i;

	c->ndone = 0;
	c->read = 0;
	c->finished = 0;
	if ((ret = db->exp->cursor(db->exp, txn, &cur, 0)) != 0)
		return ret;
	while (c->ndone < GDB_EXPIRE_BATCH) {
		memset(&k, 0, sizeof(k));
		k.data = ibuf;
		k.ulen = sizeof(ibuf);
		k.flags = DB_DBT_USERMEM;
		memset(&v, 0, sizeof(v));
		v.data = vbuf;
		v.ulen = sizeof(vbuf);
		v.flags = DB_DBT_USERMEM;
		/* The entries before this one were deleted, so the first
		 * entry is always the next to look at. */
		ret = cur->get(cur, &k, &v, DB_FIRST | DB_RMW);
		if (ret == DB_NOTFOUND) {
			c->finished = 1;
			ret = 0;
			break;
		}
		if (ret != 0)
			break;
		c->read++;
		if (k.size < 9) {
			/* Not an entry we wrote: drop it. */
			if ((ret = cur->del(cur, 0)) != 0)
				break;
			continue;
		}
		for (exp = 0, i = 0; i < 8; i++)
			exp = (exp << 8) | ibuf[i];
		if ((int64_t)exp > c->now) {
			c->finished = 1;
			break;
		}
		ret = gdb_rec_read(db, txn, ibuf + 8, k.size - 8, &rec, 1, err);
		if (ret == 0 && rec.expire == (int64_t)exp &&
		    rec.type != GDB_SPAMTRAP) {
			DBT pk;

			memset(&pk, 0, sizeof(pk));
			pk.data = ibuf + 8;
			pk.size = k.size - 8;
			if ((ret = db->main->del(db->main, txn, &pk, 0)) != 0)
				break;
			c->done[c->ndone++] = rec;
		} else if (ret != 0 && ret != DB_NOTFOUND && ret != GDB_EAPP) {
			break;
		}
		/* Stale (record gone, changed or damaged) or done: the index
		 * entry goes either way. */
		if ((ret = cur->del(cur, 0)) != 0)
			break;
	}
	cur->close(cur);
	return ret;
}

/* gdb_expire - delete every record whose expire <= now (SPAMTRAP never) */
int
gdb_expire(struct gdb *db, int64_t now, gdb_walk_fn expired, void *arg,
    long *count, long *read, struct gdb_err *err)
{
	struct exp_ctx c;
	long total = 0, nread = 0;
	size_t i;
	int rv = 0;

	memset(&c, 0, sizeof(c));
	c.now = now;
	if ((c.done = calloc(GDB_EXPIRE_BATCH, sizeof(*c.done))) == NULL) {
		gdb_seterr(err, "%s: expire: out of memory", db->dir);
		return -1;
	}
	do {
		if (gdb_txn_run(db, "expire", exp_txn, &c, err) == -1) {
			rv = -1;
			break;
		}
		nread += c.read;
		total += (long)c.ndone;
		/* Callbacks run after the commit: the firewall only hears
		 * of deletions that happened. */
		for (i = 0; expired != NULL && i < c.ndone; i++)
			expired(&c.done[i], arg);
	} while (!c.finished);
	free(c.done);
	if (count != NULL)
		*count = total;
	if (read != NULL)
		*read = nread;
	return rv;
}
