/*
 * grey_fw.c - the writer's side of the firewall: queue changes as tuples
 * pass, trap and expire, send them in one batch on a short timer, retry
 * with backoff when the backend fails (greylisting goes on meanwhile),
 * and reconcile the sets with the store (see grey.h, pf-sync/fw.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "spamd/writer/grey.h"
#include "spamd/common/log.h"

/* A pass must reach the set within 1 s; batching for this long turns a
 * burst of passes into one backend command. */
#define GREY_FW_BATCH_MS	100

struct grey_fw {
	struct fw		*fw;
	const struct grey_conf	*conf;
	struct event		*flush_ev;
	int			 retrying;	/* flush_ev waits out a backoff */
	long			 ops, errors;
};

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
		return;
	}
	gf->errors++;
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
grey_fw_open(struct grey_fw **out, struct event_base *base,
    const struct grey_conf *conf, char *err, size_t errsz)
{
	struct grey_fw *gf;

	*out = NULL;
	if ((gf = calloc(1, sizeof(*gf))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	gf->conf = conf;
	if (fw_open(&gf->fw, &conf->fw, err, errsz) == -1) {
		free(gf);
		return -1;
	}
	if ((gf->flush_ev = evtimer_new(base, grey_fw_flush, gf)) == NULL) {
		snprintf(err, errsz, "out of memory");
		fw_close(gf->fw);
		free(gf);
		return -1;
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

/* grey_fw_counts - firewall changes queued and failures so far */
void
grey_fw_counts(const struct grey_fw *gf, long *ops, long *errors)
{
	if (gf == NULL)
		return;
	*ops = gf->ops;
	*errors = gf->errors;
}
