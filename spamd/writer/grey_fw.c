/*
 * grey_fw.c - the writer's side of the firewall: queue changes as tuples
 * pass, trap and expire, send them in one batch on a short timer, retry
 * with backoff when the backend fails (greylisting goes on meanwhile),
 * and reconcile the sets with the store (see grey.h, pf-sync/fw.h).
 *
 * A failure whose cause is a missing table (nft delete table, a reboot
 * without the ruleset; ipset: a missing set after `ipset destroy` or a
 * reboot before the sets were restored) is said once, at error level,
 * when it starts (event=fw_table_missing) and once when a flush or
 * reconcile works again (event=fw_table_back, then a reconcile refills
 * the sets); the per-retry fw_error lines go on meanwhile.
 *
 * The table is also watched every GREY_FW_WATCH_SECS (nftables: one
 * small netlink listing; ipset: one `ipset list -t`, headers only): a
 * table that went while nothing was being sent (nftables restarted with
 * a `flush ruleset`) is noticed without waiting for a pass, and a table
 * made again between two looks (a new handle, its sets empty; ipset: a
 * set with a new hash seed) is refilled at once (event=fw_table_new), so
 * whitelisted hosts are not sent to spamd again until the periodic
 * reconcile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "spamd/writer/grey.h"
#include "spamd/common/log.h"

/* A pass must reach the set within 1 s; batching for this long turns a
 * burst of passes into one backend command. */
#define GREY_FW_BATCH_MS	100
/* How often the writer looks at the table: a reloaded ruleset is
 * refilled within this, at the cost of one "list tables" a look. */
#define GREY_FW_WATCH_SECS	5

struct grey_fw {
	struct fw		*fw;
	struct grey		*g;		/* the store, for the refill */
	const struct grey_conf	*conf;
	struct event		*flush_ev;
	struct event		*refill_ev;	/* reconcile once it is back */
	struct event		*watch_ev;	/* grey_fw_watch, persistent */
	int			 retrying;	/* flush_ev waits out a backoff */
	int			 table_missing;	/* found missing, not back */
	uint64_t		 table_id;	/* its handle when seen; 0 unknown */
	char			 table[128];	/* its name, as fw_present */
	long			 ops, errors;
};

/* grey_fw_refill - the table is back: refill the sets from the store */
static void
grey_fw_refill(evutil_socket_t fd, short ev, void *arg)
{
	struct grey_fw *gf = arg;
	struct gdb *db = grey_db(gf->g);

	(void)fd;
	(void)ev;
	if (db != NULL)
		grey_fw_reconcile(gf, db, time(NULL));
}

/* grey_fw_table_gone - the table what is missing: note it and log the
 * change of state (error level) */
static void
grey_fw_table_gone(struct grey_fw *gf, const char *what)
{
	gf->table_missing = 1;
	gf->table_id = 0;
	strlcpy(gf->table, what, sizeof(gf->table));
	log_errx("event=fw_table_missing %s=\"%s\" backend=%s "
	    "effect=\"no set updates until the %s is back; %s\"",
	    fw_present_kind(gf->fw), gf->table, fw_backend_name(gf->fw),
	    fw_present_kind(gf->fw), fw_present_howto(gf->fw));
}

/* grey_fw_table_check - after a failure: is the table gone? Logs the
 * change of state only (error level), never each retry */
static void
grey_fw_table_check(struct grey_fw *gf)
{
	char what[128];

	if (gf->table_missing ||
	    fw_present(gf->fw, what, sizeof(what), NULL) != 0)
		return;
	grey_fw_table_gone(gf, what);
}

/* grey_fw_table_ok - a flush or reconcile worked: if the table had been
 * missing, say it is back and refill the sets (reconcile: ok=1 when
 * called from the reconcile itself, which refills already) */
static void
grey_fw_table_ok(struct grey_fw *gf, int reconcile)
{
	struct timeval now0 = { 0, 0 };

	char what[128];
	uint64_t id;

	if (!gf->table_missing)
		return;
	gf->table_missing = 0;
	/* why: the table back is a new table; its handle is the one the
	 * watch compares with next, or it would report it made again */
	if (fw_present(gf->fw, what, sizeof(what), &id) == 1 && id != 0)
		gf->table_id = id;
	log_info("event=fw_table_back %s=\"%s\" backend=%s refill=\"%s\"",
	    fw_present_kind(gf->fw), gf->table, fw_backend_name(gf->fw),
	    reconcile ? "this reconcile" : "reconcile now");
	/* why an event: not from inside the flush that noticed it */
	if (!reconcile && gf->refill_ev != NULL)
		evtimer_add(gf->refill_ev, &now0);
}

/* grey_fw_watch - the periodic look at the table: gone, back, or made
 * again since the last look (a new handle: refill its empty sets) */
static void
grey_fw_watch(evutil_socket_t fd, short ev, void *arg)
{
	struct grey_fw *gf = arg;
	struct timeval now0 = { 0, 0 };
	char what[128];
	uint64_t id;
	int r;

	(void)fd;
	(void)ev;
	if ((r = fw_present(gf->fw, what, sizeof(what), &id)) == -1)
		return;
	if (r == 0) {
		if (!gf->table_missing)
			grey_fw_table_gone(gf, what);
		return;
	}
	if (gf->table_missing) {
		gf->table_id = id;
		grey_fw_table_ok(gf, 0);
		return;
	}
	if (id != 0 && gf->table_id != 0 && id != gf->table_id) {
		log_warnx("event=fw_table_new %s=\"%s\" backend=%s "
		    "handle=%llu was=%llu refill=\"reconcile now\"",
		    fw_present_kind(gf->fw), what, fw_backend_name(gf->fw),
		    (unsigned long long)id, (unsigned long long)gf->table_id);
		evtimer_add(gf->refill_ev, &now0);
	}
	if (id != 0)
		gf->table_id = id;
}

/* grey_fw_flush - send the queue; on failure log and retry with backoff */
static void
grey_fw_flush(evutil_socket_t fd, short ev, void *arg)
{
	struct grey_fw *gf = arg;
	char err[1024];
	size_t n = fw_pending(gf->fw);
	int delay;

	gf->retrying = 0;
	if (n == 0)
		return;
	if (fw_flush(gf->fw, err, sizeof(err)) == 0) {
		log_debug("event=fw_flush changes=%zu", n);
		grey_fw_table_ok(gf, 0);
		return;
	}
	gf->errors++;
	grey_fw_table_check(gf);
	delay = fw_retry_delay(gf->fw);
	if (delay <= 0)
		delay = 1;
	log_warnx("event=fw_error op=flush changes=%zu failures=%u "
	    "retry_secs=%d error=\"%s\"", n, fw_failures(gf->fw), delay, err);
	gf->retrying = 1;
	struct timeval tv = { delay, 0 };
	evtimer_add(gf->flush_ev, &tv);
}

/* grey_fw_kick - a change was queued: flush soon unless already due */
static void
grey_fw_kick(struct grey_fw *gf)
{
	struct timeval tv = { 0, GREY_FW_BATCH_MS * 1000 };

	gf->ops++;
	/* a pending timer (batch or backoff) will send this change too */
	if (evtimer_pending(gf->flush_ev, NULL))
		return;
	evtimer_add(gf->flush_ev, &tv);
}

/* grey_fw_open - fw_open the configured backend */
int
grey_fw_open(struct grey_fw **out, struct grey *g, struct event_base *base,
    const struct grey_conf *conf, char *err, size_t errsz)
{
	struct grey_fw *gf;

	*out = NULL;
	if ((gf = calloc(1, sizeof(*gf))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	gf->conf = conf;
	gf->g = g;
	if (fw_open(&gf->fw, &conf->fw, err, errsz) == -1) {
		free(gf);
		return -1;
	}
	if ((gf->flush_ev = evtimer_new(base, grey_fw_flush, gf)) == NULL ||
	    (gf->refill_ev = evtimer_new(base, grey_fw_refill, gf)) == NULL ||
	    (gf->watch_ev = event_new(base, -1, EV_PERSIST, grey_fw_watch,
	    gf)) == NULL) {
		snprintf(err, errsz, "out of memory");
		if (gf->flush_ev != NULL)
			event_free(gf->flush_ev);
		if (gf->refill_ev != NULL)
			event_free(gf->refill_ev);
		fw_close(gf->fw);
		free(gf);
		return -1;
	}
	/*
	 * the table's handle now; backends without a table are not watched.
	 * why armed even when this first look fails: a look that cannot tell
	 * (nft busy, a slow start) must not switch the watch off for good
	 */
	if (fw_watchable(gf->fw)) {
		char what[128];
		struct timeval tv = { GREY_FW_WATCH_SECS, 0 };

		if (fw_present(gf->fw, what, sizeof(what), &gf->table_id) == -1)
			log_warnx("event=fw_watch %s=\"%s\" backend=%s "
			    "state=unknown retry_secs=%d", fw_present_kind(gf->fw),
			    what, fw_backend_name(gf->fw), GREY_FW_WATCH_SECS);
		event_add(gf->watch_ev, &tv);
	}
	log_info("event=fw_open backend=%s white=%s white6=%s",
	    fw_backend_name(gf->fw), fw_set_name(gf->fw, FW_WHITE, 0),
	    fw_set_name(gf->fw, FW_WHITE, 1));
	*out = gf;
	return 0;
}

/* grey_fw_close - try one last flush, then close */
void
grey_fw_close(struct grey_fw *gf)
{
	char err[1024];

	if (gf == NULL)
		return;
	if (fw_pending(gf->fw) > 0 && fw_flush(gf->fw, err, sizeof(err)) == -1)
		log_warnx("event=fw_error op=flush_at_exit changes=%zu "
		    "error=\"%s\"", fw_pending(gf->fw), err);
	event_free(gf->flush_ev);
	event_free(gf->refill_ev);
	event_free(gf->watch_ev);
	fw_close(gf->fw);
	free(gf);
}

/* grey_fw_white - ip into the white set until expire */
void
grey_fw_white(struct grey_fw *gf, const char *ip, int64_t expire,
    int64_t now)
{
	if (gf == NULL)
		return;
	if (fw_add(gf->fw, FW_WHITE, ip, expire, now) == -1) {
		gf->errors++;
		log_warnx("event=fw_error op=add set=white ip=%s", ip);
		return;
	}
	grey_fw_kick(gf);
}

/* grey_fw_trap - ip trapped: out of the white set, into the trap set */
void
grey_fw_trap(struct grey_fw *gf, const char *ip, int64_t expire,
    int64_t now)
{
	if (gf == NULL)
		return;
	if (fw_del(gf->fw, FW_WHITE, ip) == -1) {
		gf->errors++;
		log_warnx("event=fw_error op=del set=white ip=%s", ip);
	}
	if (gf->conf->fw.use_trap_set &&
	    fw_add(gf->fw, FW_TRAP, ip, expire, now) == -1) {
		gf->errors++;
		log_warnx("event=fw_error op=add set=trap ip=%s", ip);
	}
	grey_fw_kick(gf);
}

/* grey_fw_expired - a WHITE or TRAPPED record expired: drop its element
 * (nftables and ipset time it out themselves; file and pf do not) */
void
grey_fw_expired(struct grey_fw *gf, const struct gdb_rec *rec)
{
	enum fw_set set;

	if (gf == NULL)
		return;
	if (rec->type == GDB_WHITE)
		set = FW_WHITE;
	else if (rec->type == GDB_TRAPPED && gf->conf->fw.use_trap_set)
		set = FW_TRAP;
	else
		return;
	if (fw_del(gf->fw, set, rec->ip) == -1) {
		gf->errors++;
		log_warnx("event=fw_error op=del set=%s ip=%s",
		    set == FW_WHITE ? "white" : "trap", rec->ip);
		return;
	}
	grey_fw_kick(gf);
}

/* grey_fw_reconcile - repair the sets from db both ways, log the counts */
int
grey_fw_reconcile(struct grey_fw *gf, struct gdb *db, int64_t now)
{
	char err[1024];
	long added = 0, removed = 0;

	if (gf == NULL)
		return 0;
	/* send what is queued first, so the comparison sees it */
	if (fw_pending(gf->fw) > 0 && !gf->retrying)
		grey_fw_flush(-1, 0, gf);
	if (fw_reconcile(gf->fw, db, now, &added, &removed, err,
	    sizeof(err)) == -1) {
		gf->errors++;
		log_warnx("event=fw_reconcile ok=0 error=\"%s\"", err);
		grey_fw_table_check(gf);
		/* its flush failed with changes queued: retry them later */
		if (fw_pending(gf->fw) > 0 &&
		    !evtimer_pending(gf->flush_ev, NULL)) {
			int delay = fw_retry_delay(gf->fw);
			struct timeval tv = { delay > 0 ? delay : 1, 0 };

			gf->retrying = 1;
			evtimer_add(gf->flush_ev, &tv);
		}
		return -1;
	}
	log_info("event=fw_reconcile ok=1 added=%ld removed=%ld", added,
	    removed);
	grey_fw_table_ok(gf, 1);
	return 0;
}

/* grey_fw_list - fw_list through the writer's own handle (see grey.h) */
int
grey_fw_list(struct grey_fw *gf, enum fw_set set, int v6, fw_list_fn fn,
    void *arg, const char **setname, char *err, size_t errsz)
{
	*setname = fw_set_name(gf->fw, set, v6);
	return fw_list(gf->fw, set, v6, fn, arg, err, errsz);
}

/* grey_fw_table_missing - is the table known to be missing (grey.h) */
int
grey_fw_table_missing(const struct grey_fw *gf, const char **what)
{
	if (gf == NULL || !gf->table_missing)
		return 0;
	if (what != NULL)
		*what = gf->table;
	return 1;
}

/* grey_fw_counts - firewall changes queued and failures so far */
void
grey_fw_counts(const struct grey_fw *gf, long *ops, long *errors)
{
	if (gf == NULL)
		return;
	*ops = gf->ops;
	*errors = gf->errors;
}
