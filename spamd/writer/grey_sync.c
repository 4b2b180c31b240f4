/*
 * grey_sync.c - the writer's side of the spamd sync protocol (pf-sync's
 * psync_* on the writer's event base): -y listens, -Y targets; what the
 * writer decides for a local tuple goes out (GREY for every tuple
 * recorded, TRAPPED when a host is trapped, WHITE on a pass with
 * --sync-white), and what peers send is applied to the store with
 * psync_apply and then to the firewall and the trapped list, as a local
 * decision would be. Entries received are never sent on, so nothing
 * bounces between peers.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "pf-sync/sync.h"
#include "spamd/writer/grey.h"
#include "spamd/common/log.h"

/* The writer's sync endpoint. */
struct grey_sync {
	struct grey		*g;
	const struct grey_conf	*conf;
	struct psync		*ps;
	long			 sent_grey, sent_trapped, sent_white;
};

/*
 * grey_sync_trial - open -y and -Y once and close them again, so a bad
 * address, interface or name, or a port in use, stops the start with a
 * message on stderr instead of failing in the writer after the fork.
 */
static int
grey_sync_trial(const struct grey_conf *conf, char *err, size_t errsz)
{
	struct event_base *base;
	struct psync_opts o;
	struct psync_err perr;
	struct psync *ps = NULL;
	int i, rc = -1;

	if ((base = event_base_new()) == NULL) {
		snprintf(err, errsz, "sync: event_base_new failed");
		return -1;
	}
	memset(&o, 0, sizeof(o));
	/* no key here: only the sockets are tried (and psync_new would
	 * warn about a missing key twice) */
	o.key = conf->sync_key[0] != '\0' ? conf->sync_key : NULL;
	o.port = (uint16_t)conf->sync_port;
	if ((ps = psync_new(base, &o, &perr)) == NULL)
		goto done;
	if (conf->sync_listen != NULL &&
	    psync_listen(ps, conf->sync_listen, &perr) == -1)
		goto done;
	for (i = 0; i < conf->nsync_targets; i++)
		if (psync_add_target(ps, conf->sync_targets[i],
		    conf->sync_deletions, &perr) == -1)
			goto done;
	for (i = 0; i < conf->nsync_accept; i++)
		if (psync_accept(ps, conf->sync_accept[i], &perr) == -1)
			goto done;
	rc = 0;
done:
	if (rc == -1)
		snprintf(err, errsz, "%s", perr.msg);
	psync_free(ps);
	event_base_free(base);
	return rc;
}

/* grey_sync_prepare - check options, load the key (see grey.h) */
int
grey_sync_prepare(struct grey_conf *conf, char *err, size_t errsz)
{
	struct psync_err perr;
	const char *path;

	conf->sync_key[0] = '\0';
	/* (added) --cluster-peer needs the key without -y or -Y too */
	if (conf->sync_listen == NULL && conf->nsync_targets == 0 &&
	    conf->ncluster_peers == 0) {
		/* (added) a host peers only pull from: the key serves
		 * /cluster/ on --http-listen */
		if (conf->http_listen != NULL && conf->sync_key_file != NULL &&
		    !conf->sync_no_auth && !conf->sync_white &&
		    !conf->sync_deletions && conf->nsync_accept == 0) {
			if (psync_key_load(conf->sync_key_file, conf->sync_key,
			    &perr) == -1) {
				snprintf(err, errsz, "sync key: %s", perr.msg);
				return -1;
			}
			return 0;
		}
		if (conf->sync_no_auth || conf->sync_key_file != NULL ||
		    conf->sync_white || conf->sync_deletions ||
		    conf->nsync_accept > 0) {
			snprintf(err, errsz, "--sync-* options need -y or -Y "
			    "(--sync-key alone: --cluster-peer or --http-listen)");
			return -1;
		}
		return 0;
	}
	if (conf->sync_no_auth) {
		/* why: "no authentication" must be a deliberate choice,
		 * never a silent fallback from a key that was asked for */
		if (conf->sync_key_file != NULL) {
			snprintf(err, errsz, "--sync-no-auth and --sync-key "
			    "%s contradict each other", conf->sync_key_file);
			return -1;
		}
		return grey_sync_trial(conf, err, errsz);
	}
	path = conf->sync_key_file != NULL ? conf->sync_key_file :
	    PSYNC_KEY_DEFAULT;
	if (psync_key_load(path, conf->sync_key, &perr) == -1) {
		snprintf(err, errsz, "sync key: %s (give --sync-key FILE, or "
		    "--sync-no-auth to sync without authentication)",
		    perr.msg);
		return -1;
	}
	return grey_sync_trial(conf, err, errsz);
}

/* grey_sync_fw_del - drop ip's element of kind type from the firewall */
static void
grey_sync_fw_del(struct grey *g, enum gdb_type type, const char *ip)
{
	struct gdb_rec r;

	memset(&r, 0, sizeof(r));
	r.type = type;
	strlcpy(r.ip, ip, sizeof(r.ip));
	grey_fw_expired(grey_fw_of(g), &r);
}

/*
 * grey_sync_recv - psync callback: apply one entry from a peer (and note
 * the packet for the cluster's last_packet). 1 applied, 0 nothing to
 * do, -1 error.
 */
static int
grey_sync_recv(const struct psync_entry *e, const struct sockaddr *from,
    void *arg)
{
	struct grey_sync *gs = arg;

	grey_cluster_packet(grey_cluster_of(gs->g), from);
	return grey_sync_apply(gs->g, e, "sync");
}

/* grey_sync_apply - one entry to the store, firewall, trapped list */
int
grey_sync_apply(struct grey *g, const struct psync_entry *e,
    const char *source)
{
	struct gdb *db = grey_db(g);
	struct grey_fw *fw = grey_fw_of(g);
	const struct gdb_times *t = grey_times(g);
	struct gdb_err err = { 0 };
	enum psync_applied res = 0;
	enum gdb_result gres = 0;
	char ip[GDB_ADDR_MAX];
	int64_t now = time(NULL);
	/* why: a catch-up applies thousands; sync entries come one by one */
	int lvl_info = strcmp(source, "sync") == 0;

	if (db == NULL)
		return -1;
	if (psync_apply(db, e, now, t, &res, &gres, &err) == -1) {
		grey_db_error(g, "sync_apply", &err);
		return -1;
	}
	psync_entry_ip(e, ip, sizeof(ip));
	if (res == PSYNC_A_REFUSED)	/* (added) the disk is low */
		grey_refused_sync(g);
	if (res != PSYNC_A_APPLIED) {
		log_debug("event=sync_recv kind=%s ip=%s outcome=%d source=%s",
		    psync_kind_name(e->kind), ip, (int)res, source);
		return 0;
	}
	switch (e->kind) {
	case PSYNC_GREY:
		grey_changed(g, gres == GDB_R_TRAP);
		if (gres == GDB_R_PASSED) {
			log_info("event=pass ip=%s source=%s", ip, source);
			grey_fw_white(fw, ip, now + t->whiteexp, now);
		} else if (gres == GDB_R_TRAP) {
			log_info("event=trap ip=%s source=%s reason=tuple",
			    ip, source);
			grey_fw_trap(fw, ip, now + t->trapexp, now);
		}
		/* a GREY for a TRAPPED or WHITE host changes nothing */
		return gres == GDB_R_NEW || gres == GDB_R_GREY ||
		    gres == GDB_R_PASSED || gres == GDB_R_TRAP;
	case PSYNC_WHITE:
		grey_changed(g, 0);
		if (lvl_info)
			log_info("event=white ip=%s source=%s expire=%lld", ip,
			    source, (long long)e->expire);
		else
			log_debug("event=white ip=%s source=%s expire=%lld",
			    ip, source, (long long)e->expire);
		grey_fw_white(fw, ip, e->expire, now);
		return 1;
	case PSYNC_TRAPPED:
		grey_changed(g, 1);
		if (lvl_info)
			log_info("event=trapped ip=%s source=%s expire=%lld",
			    ip, source, (long long)e->expire);
		else
			log_debug("event=trapped ip=%s source=%s expire=%lld",
			    ip, source, (long long)e->expire);
		grey_fw_trap(fw, ip, e->expire, now);
		return 1;
	case PSYNC_DEL_WHITE:
		grey_changed(g, 0);
		log_info("event=delete type=WHITE ip=%s source=%s", ip, source);
		grey_sync_fw_del(g, GDB_WHITE, ip);
		return 1;
	case PSYNC_DEL_TRAPPED:
		grey_changed(g, 1);
		log_info("event=delete type=TRAPPED ip=%s source=%s", ip,
		    source);
		grey_sync_fw_del(g, GDB_TRAPPED, ip);
		return 1;
	}
	return 0;
}

/* grey_sync_start - make the endpoint, listen, add targets (see grey.h) */
int
grey_sync_start(struct grey_sync **out, struct grey *g,
    struct event_base *base, const struct grey_conf *conf)
{
	struct grey_sync *gs;
	struct psync_opts o;
	struct psync_err err;
	int i;

	*out = NULL;
	if (conf->sync_listen == NULL && conf->nsync_targets == 0)
		return 0;
	if (conf->blacklist_only) {
		/* -b: no store to sync; OpenBSD ignores sync there too */
		log_warnx("event=sync_off reason=\"-b has no database\"");
		return 0;
	}
	if ((gs = calloc(1, sizeof(*gs))) == NULL)
		return -1;
	gs->g = g;
	gs->conf = conf;
	memset(&o, 0, sizeof(o));
	o.key = conf->sync_key;
	o.port = (uint16_t)conf->sync_port;
	o.deletions = conf->sync_deletions;
	o.recv = conf->sync_listen != NULL ? grey_sync_recv : NULL;
	o.arg = gs;
	if ((gs->ps = psync_new(base, &o, &err)) == NULL)
		goto fail;
	if (conf->sync_listen != NULL &&
	    psync_listen(gs->ps, conf->sync_listen, &err) == -1)
		goto fail;
	for (i = 0; i < conf->nsync_targets; i++)
		if (psync_add_target(gs->ps, conf->sync_targets[i],
		    conf->sync_deletions, &err) == -1)
			goto fail;
	/* (added) sources accepted besides the -Y peers (pf-sync/sync.h) */
	for (i = 0; i < conf->nsync_accept; i++)
		if (psync_accept(gs->ps, conf->sync_accept[i], &err) == -1)
			goto fail;
	log_info("event=sync_start listen=%s targets=%d accept=%d auth=%s "
	    "white=%d deletions=%d", conf->sync_listen ? conf->sync_listen :
	    "none", conf->nsync_targets, conf->nsync_accept,
	    conf->sync_key[0] != '\0' ? "hmac" : "none",
	    conf->sync_white, conf->sync_deletions);
	*out = gs;
	return 0;
fail:
	log_warnx("event=writer_start error=\"%s\"", err.msg);
	grey_sync_free(gs);
	return -1;
}

/* grey_sync_free - close the endpoint */
void
grey_sync_free(struct grey_sync *gs)
{
	if (gs == NULL)
		return;
	psync_free(gs->ps);
	free(gs);
}

/* grey_sync_local - send what a local tuple's decision tells peers */
void
grey_sync_local(struct grey_sync *gs, int res, const char *ip,
    const char *helo, const char *from, const char *to, int64_t expire,
    int64_t now)
{
	if (gs == NULL || gs->conf->nsync_targets == 0)
		return;
	switch (res) {
	case GDB_R_NEW:
	case GDB_R_GREY:
		/* as OpenBSD: every tuple recorded goes out as typed, the
		 * receiver normalises it */
		if (psync_send_grey(gs->ps, ip, helo, from, to, now) == 0)
			gs->sent_grey++;
		break;
	case GDB_R_PASSED:
		if (psync_send_grey(gs->ps, ip, helo, from, to, now) == 0)
			gs->sent_grey++;
		if (gs->conf->sync_white &&
		    psync_send_white(gs->ps, ip, now, expire) == 0)
			gs->sent_white++;
		break;
	case GDB_R_TRAP:
		if (psync_send_trapped(gs->ps, ip, now, expire) == 0)
			gs->sent_trapped++;
		break;
	default:
		/* WHITE and TRAPPED hosts record nothing: nothing to say */
		break;
	}
}

/* grey_sync_del - send a local deletion to the -Y targets (see grey.h) */
int
grey_sync_del(struct grey_sync *gs, enum gdb_type type, const char *ip)
{
	if (gs == NULL || gs->conf->nsync_targets == 0 ||
	    !gs->conf->sync_deletions)
		return 1;
	return psync_send_del(gs->ps, type == GDB_WHITE ? PSYNC_DEL_WHITE :
	    PSYNC_DEL_TRAPPED, ip, time(NULL)) == -1 ? -1 : 0;
}

/* grey_sync_log - the counters on SIGUSR1 */
void
grey_sync_log(const struct grey_sync *gs)
{
	if (gs == NULL)
		return;
	log_info("event=sync_sends grey=%ld trapped=%ld white=%ld",
	    gs->sent_grey, gs->sent_trapped, gs->sent_white);
	psync_log_counters(gs->ps);
}

/* grey_sync_counters - the endpoint's counters, NULL when off */
const struct psync_counters *
grey_sync_counters(const struct grey_sync *gs)
{
	return gs != NULL ? psync_counters(gs->ps) : NULL;
}
