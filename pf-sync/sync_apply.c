/*
 * sync_apply.c - apply an entry received from a sync peer to greydb.
 * Kept apart from the sockets so the daemon's writer (which owns the
 * store handle) calls it, and tests call it on a temporary store.
 */
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>

#include "pf-sync/sync.h"

/* ip_record - look up the live WHITE or TRAPPED record of ip; 1 found */
static int
ip_record(struct gdb *db, enum gdb_type type, const char *ip, int64_t now,
    struct gdb_rec *rec, struct gdb_err *err)
{
	int r;

	memset(rec, 0, sizeof(*rec));
	rec->type = type;
	if (gdb_addr_canon(ip, rec->ip) == -1) {
		snprintf(err->msg, sizeof(err->msg), "sync: %.60s: not an "
		    "address", ip);
		return -1;
	}
	if ((r = gdb_get(db, rec, err)) != 1)
		return r;
	/* Records with expire <= now count as absent, as in greydb. */
	return rec->expire > now ? 1 : 0;
}

/* psync_apply - apply one received entry to the store */
int
psync_apply(struct gdb *db, const struct psync_entry *e, int64_t now,
    const struct gdb_times *t, enum psync_applied *res,
    enum gdb_result *gres, struct gdb_err *err)
{
	char ip[GDB_ADDR_MAX];
	struct gdb_rec rec;
	enum psync_applied out = PSYNC_A_APPLIED;
	enum gdb_result gr = 0;
	int r;

	if (e->af != AF_INET && e->af != AF_INET6) {
		snprintf(err->msg, sizeof(err->msg), "sync: entry with af %d",
		    e->af);
		return -1;
	}
	psync_entry_ip(e, ip, sizeof(ip));
	switch (e->kind) {
	case PSYNC_GREY:
		/*
		 * The same rules as a local RCPT (normalisation, traps,
		 * passes); the caller does not send it on, so a tuple does
		 * not bounce between peers.
		 */
		if (gdb_tuple_seen(db, ip, e->helo, e->from, e->to, now, t,
		    &gr, NULL, err) == -1)
			return -1;
		if (gr == GDB_R_REFUSED)	/* (added) nothing written */
			out = PSYNC_A_REFUSED;
		break;
	case PSYNC_WHITE:
	case PSYNC_TRAPPED:
		if ((int64_t)e->expire <= now) {
			out = PSYNC_A_EXPIRED;
			break;
		}
		if (e->kind == PSYNC_WHITE) {
			/* gdb_white refuses a trapped ip; say so plainly. */
			if ((r = ip_record(db, GDB_TRAPPED, ip, now, &rec,
			    err)) == -1)
				return -1;
			if (r == 1) {
				out = PSYNC_A_TRAPPED;
				break;
			}
		}
		/*
		 * Never shorten what we hold: peers echo each other's
		 * entries and a late old packet must not cut a fresh one.
		 */
		if ((r = ip_record(db, e->kind == PSYNC_WHITE ? GDB_WHITE :
		    GDB_TRAPPED, ip, now, &rec, err)) == -1)
			return -1;
		if (r == 1 && rec.expire >= (int64_t)e->expire) {
			out = PSYNC_A_KEPT;
			break;
		}
		if (e->kind == PSYNC_WHITE)
			r = gdb_white(db, ip, now, e->expire, err);
		else
			r = gdb_trap(db, ip, now, e->expire, err);
		if (r == -1)
			return -1;
		break;
	case PSYNC_DEL_WHITE:
	case PSYNC_DEL_TRAPPED:
		memset(&rec, 0, sizeof(rec));
		rec.type = e->kind == PSYNC_DEL_WHITE ? GDB_WHITE :
		    GDB_TRAPPED;
		strlcpy(rec.ip, ip, sizeof(rec.ip));
		if ((r = gdb_del(db, &rec, err)) == -1)
			return -1;
		if (r == 0)
			out = PSYNC_A_ABSENT;
		break;
	default:
		snprintf(err->msg, sizeof(err->msg), "sync: entry of kind %d",
		    (int)e->kind);
		return -1;
	}
	if (res != NULL)
		*res = out;
	if (gres != NULL)
		*gres = gr;
	return 0;
}
