/*
 * grey.c - the writer process: engine sockets, tuples, results, the
 * trapped list, group commit, expiry and signals (see grey.h).
 *
 * One event base. Each engine socketpair end is a bufferevent; frames are
 * decoded with msg_get, so a malformed frame closes only that engine's
 * socket. The store is opened here, after the fork (greydb wants one
 * handle per process, opened by the process that uses it).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/statvfs.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "spamd/common/blacklist.h"
#include "spamd/common/dnsbl.h"
#include "spamd/common/sandbox.h"
#include "spamd/writer/grey.h"
#include "spamd/writer/grey_rcpt.h"
#include "spamd/common/log.h"
#include "spamd/common/msg.h"

/* One engine's end of a socketpair. */
struct grey_engine {
	struct grey		*g;
	int			 idx;		/* 1-based, for logs */
	struct bufferevent	*bev;		/* NULL once closed */
	char			*stats;		/* last MSG_STATS text */
	struct msg		 batch[GDB_BATCH_MAX];	/* tuples read */
	size_t			 nbatch;
};

/* Counters for the SIGUSR1 line. */
struct grey_counts {
	long	tuples, new, grey, passes, white, trapped, traps;
	long	db_errors, reopens, bad_frames, expired, traplists;
	long	flushes;
	long	engine_restarts, engine_sigsys;	/* (added) */
	long	refused_cap, refused_disk;	/* (added) new tuples refused */
};

/* (added) A list the config port loaded, kept to send to an engine that
 * replaces a dead one (the latest line per tag, in load order). */
struct grey_list {
	char	*tag;
	char	*line;
	size_t	 len;
};

/* The writer's state: one per process, passed to every callback. */
struct grey {
	const struct grey_conf	*conf;
	struct event_base	*base;
	struct gdb		*db;
	struct grey_fw		*fw;
	struct grey_cfg		*cfg;
	struct grey_engine	*eng;
	int			 neng;
	int			 nopen;
	int			 dirty;		/* commits since the last flush */
	int			 status;	/* exit status */
	struct event		*flush_ev, *expire_ev, *reconcile_ev;
	struct event		*trap_ev;	/* coalesced traplist send */
	struct event		*sig_ev[5];
	int			 trap_dirty;
	double			 trap_last;	/* monotonic time of last send */
	double			 reopen_next;	/* earliest store reopen retry */
	struct grey_counts	 n;
	struct grey_sync	*sync;		/* (added) peers, NULL = off */
	struct grey_http	*http;		/* (added) HTTP, NULL = off */
	struct grey_cluster	*cluster;	/* (added) catch-up, NULL off */
	double			 flush_secs;	/* (added) time in gdb_flush */
	struct grey_rcpt	*rcpt;		/* (added) invalid users, NULL off */
	struct grey_ctl		*ctl;		/* (added) control socket, NULL off */
	struct event		*sup_ev;	/* (added) supervisor channel */
	struct grey_list	*lists;		/* (added) for new engines */
	size_t			 nlists;
	char			*dnsbl_text;	/* (added) last reloaded zones */
	size_t			 dnsbl_len;
	/* (added) bounds on new tuples (grey.h) */
	struct grey_cap		*cap;		/* per client; NULL with -b */
	struct event		*disk_ev;	/* the free-space check */
	double			 disk_checked;	/* monotonic, 0 = never */
	int			 disk_low;	/* refusing new tuples */
	int			 disk_err;	/* statvfs failed last time */
	long long		 disk_free, disk_min; /* bytes, -1 unknown */
};

static void grey_engine_close(struct grey_engine *e, const char *why);
static void grey_send_one(struct grey_engine *e, uint32_t type,
    const char *s, size_t len);

/* grey_mono - monotonic seconds, for coalescing */
static double
grey_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* grey_tv_ms - a timeval of ms milliseconds */
static struct timeval
grey_tv_ms(long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	return tv;
}

/* grey_open_db - open the store and load the allowed domains */
static int
grey_open_db(struct grey *g, struct gdb_err *err)
{
	struct gdb_opts o = { .create = 1, .group_commit = 1 };

	if (gdb_open(&g->db, g->conf->dbdir, &o, err) == -1) {
		g->db = NULL;
		return -1;
	}
	if (g->conf->domains_file != NULL &&
	    gdb_load_allowed_domains(g->db, g->conf->domains_file, err) == -1) {
		gdb_close(g->db);
		g->db = NULL;
		return -1;
	}
	/* (added) a reopened store keeps refusing while the disk is low */
	gdb_set_no_new_grey(g->db, g->disk_low);
	return 0;
}

/*
 * grey_disk_check - (added) --min-free: the free space of the database's
 * filesystem (what an unprivileged writer may use, f_bavail), at most
 * once a second; below the minimum the store refuses new tuples
 * (gdb_set_no_new_grey). Each change of state is logged; a failed
 * statvfs keeps the state and is logged once.
 */
static void
grey_disk_check(struct grey *g)
{
	const struct grey_conf *c = g->conf;
	struct statvfs sv;
	unsigned long long avail, total, min;
	double t;
	int low;

	if (c->blacklist_only || (c->min_free_bytes <= 0 &&
	    c->min_free_pct <= 0))
		return;
	t = grey_mono();
	if (g->disk_checked > 0 && t - g->disk_checked < 1.0)
		return;
	g->disk_checked = t;
	if (statvfs(c->dbdir, &sv) == -1) {
		if (!g->disk_err)
			log_warnx("event=disk_check dir=%s error=\"%s\"",
			    c->dbdir, strerror(errno));
		g->disk_err = 1;
		return;
	}
	g->disk_err = 0;
	avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
	total = (unsigned long long)sv.f_blocks * sv.f_frsize;
	min = c->min_free_pct > 0 ? total / 100 * (unsigned)c->min_free_pct :
	    (unsigned long long)c->min_free_bytes;
	g->disk_free = (long long)avail;
	g->disk_min = (long long)min;
	low = avail < min;
	if (low == g->disk_low)
		return;
	g->disk_low = low;
	if (g->db != NULL)
		gdb_set_no_new_grey(g->db, low);
	if (low)
		log_warnx("event=disk_low dir=%s free=%lluMB min=%lluMB "
		    "action=refuse-new-tuples", c->dbdir, avail >> 20,
		    min >> 20);
	else
		log_info("event=disk_ok dir=%s free=%lluMB min=%lluMB",
		    c->dbdir, avail >> 20, min >> 20);
}

/* grey_disk_timer - (added) the free-space check once a second, so the
 * state (and /metrics) follow the disk when no tuple comes */
static void
grey_disk_timer(evutil_socket_t fd, short ev, void *arg)
{
	grey_disk_check(arg);
}

/*
 * grey_db_error - count and log a store error; on err->reopen close and
 * reopen the store (the open runs recovery).
 */
void
grey_db_error(struct grey *g, const char *op, struct gdb_err *err)
{
	struct gdb_err e2 = { 0 };

	g->n.db_errors++;
	log_warnx("event=db_error op=%s error=\"%s\"", op, err->msg);
	if (!err->reopen || g->db == NULL)
		return;
	gdb_close(g->db);
	g->db = NULL;
	g->n.reopens++;
	g->reopen_next = grey_mono() + 1.0;
	if (grey_open_db(g, &e2) == -1)
		log_warnx("event=db_reopen ok=0 error=\"%s\"", e2.msg);
	else
		log_info("event=db_reopen ok=1 dir=%s", g->conf->dbdir);
}

/* grey_broadcast - send one message with one string to every open engine */
static void
grey_broadcast(struct grey *g, uint32_t type, const char *s, size_t len)
{
	const char *str[1] = { s };
	size_t l[1] = { len };
	int i;

	for (i = 0; i < g->neng; i++) {
		struct grey_engine *e = &g->eng[i];

		if (e->bev == NULL)
			continue;
		if (msg_put(bufferevent_get_output(e->bev), type, 0, 0, 1, str,
		    l) == -1)
			log_warnx("event=send_failed engine=%d type=%s len=%zu",
			    e->idx, msg_type_name(type), len);
	}
}

/* Collecting TRAPPED addresses for the trapped list. */
struct grey_tl {
	struct evbuffer	*v4, *v6;
	long		 n4, n6;
	int64_t		 now;
};

/* grey_tl_cb - gdb_walk callback: add one live TRAPPED address */
static int
grey_tl_cb(const struct gdb_rec *rec, void *arg)
{
	struct grey_tl *tl = arg;

	if (rec->type != GDB_TRAPPED || rec->expire <= tl->now)
		return 0;
	if (strchr(rec->ip, ':') != NULL) {
		evbuffer_add_printf(tl->v6, ";%s/128", rec->ip);
		tl->n6++;
	} else {
		evbuffer_add_printf(tl->v4, ";%s/32", rec->ip);
		tl->n4++;
	}
	return 0;
}

/* grey_traplist_build - the MSG_TRAPLIST control message (see grey.h) */
char *
grey_traplist_build(struct gdb *db, int64_t now, size_t *len,
    struct gdb_err *err)
{
	struct grey_tl tl = { .now = now };
	struct evbuffer *out = NULL;
	char *s = NULL;
	int rc;

	tl.v4 = evbuffer_new();
	tl.v6 = evbuffer_new();
	out = evbuffer_new();
	if (tl.v4 == NULL || tl.v6 == NULL || out == NULL) {
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		goto done;
	}
	if ((rc = gdb_walk(db, GDB_TRAPPED, grey_tl_cb, &tl, err)) == -1)
		goto done;
	evbuffer_add_printf(out, "%s;", GREY_TRAPLIST_TAG);
	/* an empty list is the tag alone: it clears the engines' list */
	if (tl.n4 + tl.n6 > 0) {
		evbuffer_add_printf(out, "\"Your address %%A has mailed to "
		    "spamtraps here\\n\"");
		if (tl.n4 > 0) {
			evbuffer_add_printf(out, ";inet;%ld", tl.n4);
			evbuffer_add_buffer(out, tl.v4);
		}
		if (tl.n6 > 0) {
			evbuffer_add_printf(out, ";inet6;%ld", tl.n6);
			evbuffer_add_buffer(out, tl.v6);
		}
	}
	*len = evbuffer_get_length(out);
	if ((s = malloc(*len + 1)) == NULL) {
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		goto done;
	}
	evbuffer_remove(out, s, *len);
	s[*len] = '\0';
done:
	if (tl.v4 != NULL)
		evbuffer_free(tl.v4);
	if (tl.v6 != NULL)
		evbuffer_free(tl.v6);
	if (out != NULL)
		evbuffer_free(out);
	return s;
}

/* grey_traplist_send - build the trapped list now and send it to all */
static void
grey_traplist_send(struct grey *g)
{
	struct gdb_err err = { 0 };
	size_t len;
	char *s;

	g->trap_dirty = 0;
	g->trap_last = grey_mono();
	if (g->db == NULL)
		return;
	if ((s = grey_traplist_build(g->db, time(NULL), &len, &err)) == NULL) {
		grey_db_error(g, "traplist", &err);
		return;
	}
	grey_broadcast(g, MSG_TRAPLIST, s, len);
	g->n.traplists++;
	log_debug("event=traplist len=%zu", len);
	free(s);
}

/* grey_trap_timer - the coalescing timer fired: send the trapped list */
static void
grey_trap_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct grey *g = arg;

	if (g->trap_dirty)
		grey_traplist_send(g);
}

/* grey_traplist_changed - the trapped set changed: send at most once a
 * second (a burst of traps gives one list) */
static void
grey_traplist_changed(struct grey *g)
{
	double wait;

	g->trap_dirty = 1;
	if (evtimer_pending(g->trap_ev, NULL))
		return;
	wait = g->trap_last + 1.0 - grey_mono();
	if (wait < 0)
		wait = 0;
	struct timeval tv = grey_tv_ms((long)(wait * 1000));
	evtimer_add(g->trap_ev, &tv);
}

/* grey_flush_timer - group commit: make the window's commits durable */
static void
grey_flush_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct grey *g = arg;
	struct gdb_err err = { 0 };
	double t0;

	if (!g->dirty || g->db == NULL)
		return;
	t0 = grey_mono();
	if (gdb_flush(g->db, &err) == -1) {
		grey_db_error(g, "flush", &err);
		return;
	}
	g->flush_secs += grey_mono() - t0;
	g->dirty = 0;
	g->n.flushes++;
}

/* grey_expired_cb - gdb_expire callback: one record was removed */
static int
grey_expired_cb(const struct gdb_rec *rec, void *arg)
{
	struct grey *g = arg;

	g->n.expired++;
	if (rec->type == GDB_WHITE || rec->type == GDB_TRAPPED)
		grey_fw_expired(g->fw, rec);
	if (rec->type == GDB_TRAPPED)
		g->trap_dirty = 1;
	return 0;
}

/* grey_expire_timer - delete expired records, drop them from the sets */
static void
grey_expire_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct grey *g = arg;
	struct gdb_err err = { 0 };
	long count = 0, nread = 0;
	int had_dirty = g->trap_dirty;

	if (g->db == NULL)
		return;
	g->trap_dirty = 0;
	if (gdb_expire(g->db, time(NULL), grey_expired_cb, g, &count, &nread,
	    &err) == -1)
		grey_db_error(g, "expire", &err);
	if (count > 0) {
		g->dirty = 1;
		log_info("event=expire removed=%ld read=%ld", count, nread);
	}
	if (g->trap_dirty || had_dirty)
		grey_traplist_changed(g);
}

/* grey_reconcile_timer - repair the firewall sets from the store */
static void
grey_reconcile_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct grey *g = arg;

	if (g->db != NULL)
		grey_fw_reconcile(g->fw, g->db, time(NULL));
}

/* grey_group_net - with grouping on, the network address of ip's prefix
 * into net; 0 when grouping does not apply (net untouched) */
static int
grey_group_net(const struct grey_conf *c, const char *ip,
    char net[GDB_ADDR_MAX])
{
	unsigned char a[16];
	int af, len, bits, i;

	if (strchr(ip, ':') != NULL) {
		af = AF_INET6, len = 16, bits = c->group_v6;
	} else {
		af = AF_INET, len = 4, bits = c->group_v4;
	}
	if (bits <= 0 || bits >= len * 8)
		return 0;
	if (inet_pton(af, ip, a) != 1)
		return 0;
	for (i = 0; i < len; i++) {
		int keep = bits - i * 8;

		if (keep >= 8)
			continue;
		a[i] &= keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
	}
	if (inet_ntop(af, a, net, GDB_ADDR_MAX) == NULL)
		return 0;
	return strcmp(net, ip) != 0;
}

/* grey_live - 1 when a live record of type for ip exists, 0 not, -1 error */
static int
grey_live(struct grey *g, enum gdb_type type, const char *ip, int64_t now,
    struct gdb_rec *out, struct gdb_err *err)
{
	struct gdb_rec r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.type = type;
	strlcpy(r.ip, ip, sizeof(r.ip));
	if ((rc = gdb_get(g->db, &r, err)) != 1)
		return rc;
	if (r.expire <= now)
		return 0;
	if (out != NULL)
		*out = r;
	return 1;
}

/*
 * grey_lowmx - -M: a tuple aimed at the low-priority MX that would be NEW
 * traps the sender. 1 trapped, 0 not applicable, -1 error.
 */
static int
grey_lowmx(struct grey *g, const char *ip, const char *keyip,
    const char *helo, const char *from, const char *to, int64_t now,
    struct gdb_rec *rec, struct gdb_err *err)
{
	struct gdb_rec r;
	int rc;

	/* just started: a sender retrying to the backup MX while we were
	 * down is no spammer (OpenBSD waits 60 s too) */
	if (now < g->conf->lowmx_from)
		return 0;
	/* already trapped or white: gdb_tuple_seen answers as usual */
	if ((rc = grey_live(g, GDB_TRAPPED, ip, now, NULL, err)) != 0)
		return rc == 1 ? 0 : -1;
	if ((rc = grey_live(g, GDB_WHITE, ip, now, NULL, err)) != 0)
		return rc == 1 ? 0 : -1;
	memset(&r, 0, sizeof(r));
	r.type = GDB_GREY;
	strlcpy(r.ip, keyip, sizeof(r.ip));
	strlcpy(r.helo, helo, sizeof(r.helo));
	strlcpy(r.from, from, sizeof(r.from));
	strlcpy(r.to, to, sizeof(r.to));
	if ((rc = gdb_get(g->db, &r, err)) == -1)
		return -1;
	if (rc == 1 && r.expire > now)
		return 0;
	if (gdb_trap(g->db, ip, now, now + g->conf->times.trapexp, err) == -1)
		return -1;
	memset(rec, 0, sizeof(*rec));
	rec->type = GDB_TRAPPED;
	strlcpy(rec->ip, ip, sizeof(rec->ip));
	rec->expire = now + g->conf->times.trapexp;
	return 1;
}

/* grey_max_new - (added) --max-new-tuples */
static int
grey_max_new(const struct grey *g)
{
	return g->conf->max_new_tuples > 0 ? g->conf->max_new_tuples :
	    GREY_MAX_NEW_DEFAULT;
}

/*
 * grey_cap_note - (added) one client's tuples of a batch stored new ones
 * and had refused ones refused by its cap: count them in its slot, and
 * log the first refusal of its window (the rest are only counted)
 */
static void
grey_cap_note(struct grey *g, struct grey_cap_slot *slot, const char *ip,
    int stored, int refused)
{
	char pfx[64];

	if (grey_cap_used(g->cap, slot, stored, refused))
		log_warnx("event=client_cap ip=%s prefix=%s max=%d "
		    "window_secs=%d action=refuse-new-tuples", ip,
		    grey_cap_prefix(slot, pfx, sizeof(pfx)), grey_max_new(g),
		    GREY_CAP_WINDOW);
}

/*
 * grey_seen_one - (added) gdb_tuple_seen for one tuple stored under keyip
 * (the client's ip, or its network with grouping), bounded by the cap of
 * the client's own ip; as a batch of one, the store's way of taking a
 * bound
 */
static int
grey_seen_one(struct grey *g, const char *ip, const char *keyip,
    const char *helo, const char *from, const char *to, int64_t now,
    enum gdb_result *res, struct gdb_rec *rec, struct gdb_err *err)
{
	struct gdb_tuple tv;
	struct grey_cap_slot *slot = NULL;
	int left = 0, given = 0;

	memset(&tv, 0, sizeof(tv));
	tv.ip = keyip;
	tv.helo = helo;
	tv.from = from;
	tv.to = to;
	/* while the disk is low the store refuses every new tuple */
	if (g->cap != NULL && !g->disk_low) {
		grey_cap_batch(g->cap);
		slot = grey_cap_get(g->cap, ip, now);
		given = left = grey_cap_left(g->cap, slot);
		tv.new_left = &left;
	}
	if (gdb_tuple_seen_many(g->db, &tv, 1, now, &g->conf->times, err)
	    == -1)
		return -1;
	if (tv.bad) {
		snprintf(err->msg, sizeof(err->msg), "%.60s: not an IPv4 or "
		    "IPv6 address", keyip);
		return -1;
	}
	*res = tv.res;
	*rec = tv.rec;
	if (tv.new_left != NULL)
		grey_cap_note(g, slot, ip, given - left,
		    tv.res == GDB_R_REFUSED);
	return 0;
}

/*
 * grey_decide - apply the rules to one tuple of client ip (canonical);
 * *lowmx set to 1 when -M trapped it. -1 with err on a store error.
 */
static int
grey_decide(struct grey *g, const char *ip, const char *helo,
    const char *from, const char *to, int flags, int64_t now,
    enum gdb_result *res, struct gdb_rec *rec, int *lowmx,
    struct gdb_err *err)
{
	const struct gdb_times *t = &g->conf->times;
	char net[GDB_ADDR_MAX];
	const char *keyip = ip;
	int grouped, rc;

	*lowmx = 0;
	grouped = grey_group_net(g->conf, ip, net);
	if (grouped) {
		keyip = net;
		/* WHITE and TRAPPED belong to the client's own address */
		if ((rc = grey_live(g, GDB_TRAPPED, ip, now, rec, err)) != 0) {
			*res = GDB_R_TRAPPED;
			return rc == 1 ? 0 : -1;
		}
		if ((rc = grey_live(g, GDB_WHITE, ip, now, rec, err)) != 0) {
			if (rc == -1)
				return -1;
			*res = GDB_R_WHITE;
			rec->expire = now + t->whiteexp;
			return gdb_white(g->db, ip, now, rec->expire, err);
		}
	}
	if (flags & MSG_F_LOWMX) {
		rc = grey_lowmx(g, ip, keyip, helo, from, to, now, rec, err);
		if (rc != 0) {
			*res = GDB_R_TRAP;
			*lowmx = 1;
			return rc == 1 ? 0 : -1;
		}
	}
	if (grey_seen_one(g, ip, keyip, helo, from, to, now, res, rec, err)
	    == -1)
		return -1;
	if (!grouped)
		return 0;
	/* move what was written for the network onto the client's address */
	if (*res == GDB_R_PASSED || *res == GDB_R_TRAP) {
		struct gdb_rec d;

		memset(&d, 0, sizeof(d));
		d.type = *res == GDB_R_PASSED ? GDB_WHITE : GDB_TRAPPED;
		strlcpy(d.ip, keyip, sizeof(d.ip));
		if (gdb_del(g->db, &d, err) == -1)
			return -1;
		if (*res == GDB_R_PASSED) {
			rec->expire = now + t->whiteexp;
			if (gdb_white(g->db, ip, now, rec->expire, err) == -1)
				return -1;
		} else {
			rec->expire = now + t->trapexp;
			if (gdb_trap(g->db, ip, now, rec->expire, err) == -1)
				return -1;
		}
	}
	return 0;
}

/* grey_esc - log_escape a string for a key=value line */
static const char *
grey_esc(const char *s, char *buf, size_t bufsz)
{
	return log_escape(s, strlen(s), 100, buf, bufsz);
}

/*
 * grey_tuple_check - a tuple's frame is sound: 4 strings and an address
 * (put in canonical form into ip); 0 if not (logged and counted)
 */
static int
grey_tuple_check(struct grey_engine *e, const struct msg *m,
    char ip[GDB_ADDR_MAX])
{
	struct grey *g = e->g;
	char eh[512];

	strlcpy(ip, "", GDB_ADDR_MAX);
	if (m->nstr != 4) {
		/* a framing-valid but wrong tuple: answer "undecided" */
		log_warnx("event=bad_tuple engine=%d strings=%u", e->idx,
		    m->nstr);
		g->n.bad_frames++;
		return 0;
	}
	g->n.tuples++;
	if (gdb_addr_canon(m->str[0], ip) == -1) {
		log_warnx("event=bad_tuple engine=%d ip=%s", e->idx,
		    grey_esc(m->str[0], eh, sizeof(eh)));
		g->n.bad_frames++;
		return 0;
	}
	return 1;
}

/* grey_tuple_reply - answer a tuple with MSG_RESULT */
static void
grey_tuple_reply(struct grey_engine *e, const struct msg *m, const char *ip,
    enum gdb_result res)
{
	const char *out[1];

	out[0] = ip;
	if (msg_put(bufferevent_get_output(e->bev), MSG_RESULT, m->id,
	    (int64_t)res, 1, out, NULL) == -1)
		log_warnx("event=send_failed engine=%d type=result", e->idx);
}

/*
 * grey_tuple_done - count, log and pass on (firewall, trap list, sync,
 * invalid recipients) what the rules gave one tuple, then answer it
 */
static void
grey_tuple_done(struct grey_engine *e, const struct msg *m, const char *ip,
    enum gdb_result res, const struct gdb_rec *rec, int lowmx, int64_t now)
{
	struct grey *g = e->g;
	char eh[512], ef[512], et[512];

	g->dirty = 1;
	/* escaped only for a line that is written: new and grey tuples
	 * (most of them) log only with -v, WHITE and TRAPPED never */
	eh[0] = ef[0] = et[0] = '\0';
	if (res == GDB_R_PASSED || res == GDB_R_TRAP ||
	    ((res == GDB_R_NEW || res == GDB_R_GREY || res == GDB_R_REFUSED) &&
	    log_verbose() > 0)) {
		grey_esc(m->str[1], eh, sizeof(eh));
		grey_esc(m->str[2], ef, sizeof(ef));
		grey_esc(m->str[3], et, sizeof(et));
	}
	switch (res) {
	case GDB_R_NEW:
		g->n.new++;
		log_debug("event=new ip=%s helo=%s from=%s to=%s", ip, eh, ef,
		    et);
		break;
	case GDB_R_REFUSED:
		/* (added) not stored: tell no peer, answer as NEW below */
		if (g->disk_low)
			g->n.refused_disk++;
		else
			g->n.refused_cap++;
		log_debug("event=refused ip=%s reason=%s helo=%s from=%s "
		    "to=%s", ip, g->disk_low ? "disk" : "client-cap", eh, ef,
		    et);
		grey_rcpt_tuple(g->rcpt, ip, m->str[3], GDB_R_NEW, now);
		grey_tuple_reply(e, m, ip, GDB_R_NEW);
		return;
	case GDB_R_GREY:
		g->n.grey++;
		log_debug("event=grey ip=%s helo=%s from=%s to=%s", ip, eh, ef,
		    et);
		break;
	case GDB_R_PASSED:
		g->n.passes++;
		log_info("event=pass ip=%s helo=%s from=%s to=%s", ip, eh, ef,
		    et);
		grey_fw_white(g->fw, ip, rec->expire, now);
		break;
	case GDB_R_WHITE:
		g->n.white++;
		/* a WHITE host reaching us is missing from the set: repair */
		grey_fw_white(g->fw, ip, rec->expire, now);
		break;
	case GDB_R_TRAPPED:
		g->n.trapped++;
		break;
	case GDB_R_TRAP: {
		char to[GDB_MAIL_MAX];

		g->n.traps++;
		gdb_mail_norm(m->str[3], to, sizeof(to));
		log_info("event=trap ip=%s to=%s reason=%s", ip, et,
		    lowmx ? "lowmx" : gdb_domain_allowed(g->db, to) ?
		    "spamtrap" : "domain");
		grey_fw_trap(g->fw, ip, now + g->conf->times.trapexp, now);
		grey_traplist_changed(g);
		break;
	}
	}
	/* (added) tell the sync peers; never for what peers sent us */
	grey_sync_local(g->sync, (int)res, ip, m->str[1], m->str[2],
	    m->str[3], res == GDB_R_TRAP ? now + g->conf->times.trapexp :
	    rec->expire, now);
	/* (added) invalid recipients: the reply does not change */
	grey_rcpt_tuple(g->rcpt, ip, m->str[3], (int)res, now);
	grey_tuple_reply(e, m, ip, res);
}

/* grey_tuple_ip - decide one sound MSG_TUPLE (ip: its canonical
 * address, grey_tuple_check done) and answer with MSG_RESULT */
static void
grey_tuple_ip(struct grey_engine *e, const struct msg *m, const char *ip)
{
	struct grey *g = e->g;
	struct gdb_err err = { 0 };
	struct gdb_rec rec;
	enum gdb_result res = GREY_R_ERROR;
	int lowmx = 0;
	int64_t now = time(NULL);

	if (g->db == NULL) {
		/* -b, or the store could not be reopened: try again at most
		 * once a second, answering "undecided" meanwhile */
		if (!g->conf->blacklist_only && grey_mono() >= g->reopen_next) {
			struct gdb_err e2 = { 0 };

			g->reopen_next = grey_mono() + 1.0;
			if (grey_open_db(g, &e2) == 0)
				log_info("event=db_reopen ok=1 dir=%s",
				    g->conf->dbdir);
			else
				log_warnx("event=db_reopen ok=0 error=\"%s\"",
				    e2.msg);
		}
		if (g->db == NULL)
			goto reply;
	}
	memset(&rec, 0, sizeof(rec));
	if (grey_decide(g, ip, m->str[1], m->str[2], m->str[3], (int)m->num,
	    now, &res, &rec, &lowmx, &err) == -1) {
		grey_db_error(g, "tuple", &err);
		res = GREY_R_ERROR;
		goto reply;
	}
	grey_tuple_done(e, m, ip, res, &rec, lowmx, now);
	return;
reply:
	grey_tuple_reply(e, m, ip, res);
}

/* grey_tuple - handle one MSG_TUPLE and answer with MSG_RESULT */
static void
grey_tuple(struct grey_engine *e, const struct msg *m)
{
	char ip[GDB_ADDR_MAX];

	if (grey_tuple_check(e, m, ip))
		grey_tuple_ip(e, m, ip);
	else
		grey_tuple_reply(e, m, ip, GREY_R_ERROR);
}

/*
 * grey_tuples - handle n MSG_TUPLEs that arrived together. The plain ones
 * (no -M flag, no network grouping) go to the store in one transaction
 * (gdb_tuple_seen_many: one commit instead of n is what lets one writer
 * keep up with many engines); the others, and a batch the store refused,
 * go one by one. Order is kept: a single tuple runs after the batch
 * before it. (added) The tuples of one client in a batch share its
 * --max-new-tuples budget (one counter the store draws from in order).
 */
static void
grey_tuples(struct grey_engine *e, const struct msg *m, size_t n)
{
	struct grey *g = e->g;
	struct gdb_tuple tv[GDB_BATCH_MAX];
	char ips[GDB_BATCH_MAX][GDB_ADDR_MAX], net[GDB_ADDR_MAX];
	size_t idx[GDB_BATCH_MAX], nb = 0, i, j;
	/* (added) per client of the batch, at the index of its first
	 * tuple: its slot, its budget and what it was given */
	struct grey_cap_slot *slot[GDB_BATCH_MAX];
	int left[GDB_BATCH_MAX], given[GDB_BATCH_MAX];
	int refused[GDB_BATCH_MAX];
	struct gdb_err err = { 0 };
	int64_t now = time(NULL);
	int capped;

	grey_disk_check(g);	/* (added) at most once a second */
	capped = g->cap != NULL && !g->disk_low;
	if (capped)
		grey_cap_batch(g->cap);
	for (i = 0; i <= n; i++) {
		const char *ip = NULL;	/* canonical: a sound tuple */
		int plain = 0;

		if (i < n && g->db != NULL && m[i].nstr == 4 &&
		    gdb_addr_canon(m[i].str[0], ips[nb]) == 0) {
			ip = ips[nb];
			plain = !(m[i].num & MSG_F_LOWMX) &&
			    !grey_group_net(g->conf, ip, net);
		}
		if (plain) {
			g->n.tuples++;
			tv[nb] = (struct gdb_tuple){ .ip = ips[nb],
			    .helo = m[i].str[1], .from = m[i].str[2],
			    .to = m[i].str[3] };
			if (capped) {
				slot[nb] = grey_cap_get(g->cap, ip, now);
				/* the client's budget: its first tuple's */
				for (j = 0; j < nb; j++)
					if (slot[j] == slot[nb] &&
					    slot[nb] != NULL &&
					    tv[j].new_left == &left[j])
						break;
				if (j < nb)
					tv[nb].new_left = &left[j];
				else {
					left[nb] = given[nb] = grey_cap_left(
					    g->cap, slot[nb]);
					tv[nb].new_left = &left[nb];
				}
				refused[nb] = 0;
			}
			idx[nb++] = i;
			continue;
		}
		/* the batch so far goes first */
		if (nb > 0 && gdb_tuple_seen_many(g->db, tv, nb, now,
		    &g->conf->times, &err) == 0) {
			if (capped) {
				for (j = 0; j < nb; j++)
					if (tv[j].res == GDB_R_REFUSED)
						refused[tv[j].new_left -
						    left]++;
				for (j = 0; j < nb; j++)
					if (tv[j].new_left == &left[j])
						grey_cap_note(g, slot[j],
						    ips[j], given[j] - left[j],
						    refused[j]);
			}
			for (j = 0; j < nb; j++)
				grey_tuple_done(e, &m[idx[j]], ips[j],
				    tv[j].res, &tv[j].rec, 0, now);
		} else if (nb > 0) {
			/* e.g. a deadlock retried out: one by one, each
			 * with its own error handling (and budget) */
			log_warnx("event=batch_failed tuples=%zu error=\"%s\"",
			    nb, err.msg);
			for (j = 0; j < nb; j++) {
				g->n.tuples--;	/* grey_tuple counts it */
				grey_tuple(e, &m[idx[j]]);
			}
		}
		nb = 0;
		if (capped)
			grey_cap_batch(g->cap);
		/* ips[] stays as it is until the next tuple: ip is valid */
		if (ip != NULL) {
			g->n.tuples++;	/* as grey_tuple_check */
			grey_tuple_ip(e, &m[i], ip);
		} else if (i < n)
			grey_tuple(e, &m[i]);
	}
}

/* grey_engine_msg - dispatch one decoded message from an engine */
static void
grey_engine_msg(struct grey_engine *e, const struct msg *m)
{
	switch (m->type) {
	case MSG_TUPLE:
		grey_tuple(e, m);
		break;
	case MSG_LIST_ACK:	/* (added) a config port load applied */
		grey_cfg_applied(e->g->cfg, m->id, e->idx, m->num < 0 ?
		    (m->nstr >= 1 ? m->str[0] : "refused") : NULL);
		break;
	case MSG_STATS:
		if (m->nstr >= 1) {
			free(e->stats);
			/* kept as one line of key=value: log, metrics and
			 * greyctl stats print it as is, whatever its length */
			if ((e->stats = strdup(m->str[0])) != NULL)
				for (char *p = e->stats; *p; p++)
					if ((unsigned char)*p < ' ' ||
					    *p == 0x7f)
						*p = ' ';
		}
		break;
	default:
		/* a writer -> engine type from an engine: ignore, count */
		e->g->n.bad_frames++;
		log_warnx("event=unexpected_msg engine=%d type=%s", e->idx,
		    msg_type_name(m->type));
		break;
	}
}

/* grey_engine_batch - decide the tuples collected so far, free them */
static void
grey_engine_batch(struct grey_engine *e)
{
	size_t i;

	if (e->nbatch == 0)
		return;
	grey_tuples(e, e->batch, e->nbatch);
	for (i = 0; i < e->nbatch; i++)
		msg_clear(&e->batch[i]);
	e->nbatch = 0;
}

/* grey_engine_read - decode every whole frame the engine sent */
static void
grey_engine_read(struct bufferevent *bev, void *arg)
{
	struct grey_engine *e = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct msg m;
	char err[256];
	int rc;

	/* consecutive tuples are decided together (grey_tuples) */
	while ((rc = msg_get(in, &m, err, sizeof(err))) == 1) {
		if (m.type == MSG_TUPLE) {
			e->batch[e->nbatch++] = m;
			if (e->nbatch == GDB_BATCH_MAX)
				grey_engine_batch(e);
			continue;
		}
		grey_engine_batch(e);
		grey_engine_msg(e, &m);
		msg_clear(&m);
	}
	grey_engine_batch(e);
	if (rc == -1) {
		/* the stream cannot be trusted any more */
		e->g->n.bad_frames++;
		log_warnx("event=bad_frame engine=%d error=\"%s\"", e->idx,
		    err);
		grey_engine_close(e, "bad frame");
	}
}

/* grey_engine_event - EOF or error on an engine socket */
static void
grey_engine_event(struct bufferevent *bev, short what, void *arg)
{
	struct grey_engine *e = arg;

	if (what & BEV_EVENT_EOF)
		grey_engine_close(e, "eof");
	else if (what & BEV_EVENT_ERROR)
		grey_engine_close(e, evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
}

/* grey_engine_close - drop one engine; the last one ends the writer */
static void
grey_engine_close(struct grey_engine *e, const char *why)
{
	struct grey *g = e->g;

	if (e->bev == NULL)
		return;
	bufferevent_free(e->bev);
	e->bev = NULL;
	g->nopen--;
	log_info("event=engine_closed engine=%d reason=\"%s\" open=%d", e->idx,
	    why, g->nopen);
	grey_cfg_engine_gone(g->cfg, e->idx);	/* its acks never come */
	/* with a master, a dead engine's successor comes on the
	 * supervisor channel: wait for it (the master ends us) */
	if (g->nopen == 0 && g->conf->sup_fd < 0)
		event_base_loopbreak(g->base);
}

/* grey_engine_attach - engine e talks on fd from now on; 0, or -1 when
 * libevent cannot take it (fd closed) */
static int
grey_engine_attach(struct grey *g, struct grey_engine *e, int fd)
{
	evutil_make_socket_nonblocking(fd);
	e->bev = bufferevent_socket_new(g->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (e->bev == NULL) {
		close(fd);
		return -1;
	}
	bufferevent_setcb(e->bev, grey_engine_read, NULL, grey_engine_event,
	    e);
	bufferevent_enable(e->bev, EV_READ | EV_WRITE);
	g->nopen++;
	return 0;
}

/* grey_engine_replay - a new engine replaces a dead one: send it what
 * the others got since the start (lists from the config port, reloaded
 * DNSBL zones; the trapped list goes to all in grey_sup_read) */
static void
grey_engine_replay(struct grey *g, struct grey_engine *e)
{
	size_t i;

	for (i = 0; i < g->nlists; i++)
		grey_send_one(e, MSG_BLACKLIST, g->lists[i].line,
		    g->lists[i].len);
	if (g->dnsbl_text != NULL)
		grey_send_one(e, MSG_DNSBL_ZONES, g->dnsbl_text, g->dnsbl_len);
}

/* grey_sup_read - the master sent a dead engine's successor (or closed
 * the channel: it is gone, so are we) */
static void
grey_sup_read(evutil_socket_t fd, short ev, void *arg)
{
	struct grey *g = arg;
	struct grey_sup_msg m;
	struct grey_engine *e;
	struct msghdr mh;
	struct iovec iov = { &m, sizeof(m) };
	union {
		struct cmsghdr	c;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct cmsghdr *c;
	ssize_t n;
	int nfd = -1;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		log_warnx("event=supervisor_gone error=\"%s\"", n == 0 ?
		    "eof" : strerror(errno));
		event_base_loopbreak(g->base);
		return;
	}
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&nfd, CMSG_DATA(c), sizeof(int));
	if ((size_t)n != sizeof(m) || nfd == -1 || m.engine < 0 ||
	    m.engine >= g->neng) {
		log_warnx("event=supervisor_msg error=\"malformed\" len=%zd "
		    "fd=%d", n, nfd);
		if (nfd != -1)
			close(nfd);
		return;
	}
	e = &g->eng[m.engine];
	grey_engine_close(e, "replaced");
	free(e->stats);
	e->stats = NULL;
	if (grey_engine_attach(g, e, nfd) == -1) {
		log_warnx("event=engine_attach engine=%d ok=0", e->idx);
		return;
	}
	g->n.engine_restarts++;
	if (m.sig == SIGSYS)
		g->n.engine_sigsys++;
	log_info("event=engine_attach engine=%d ok=1 after_signal=%d "
	    "syscall=%d lists=%zu", e->idx, m.sig, m.sysnr, g->nlists);
	grey_engine_replay(g, e);
	if (g->db != NULL)
		grey_traplist_send(g);
}

/* grey_list_keep - remember the latest line of the list's tag (the text
 * before the first ';'), so an engine that replaces a dead one gets it;
 * "tag;" alone (a clear) forgets it. At most BL_MAX_LISTS are kept: the
 * engines hold no more either. */
static void
grey_list_keep(struct grey *g, const char *line, size_t len)
{
	const char *semi = memchr(line, ';', len);
	size_t tlen = semi != NULL ? (size_t)(semi - line) : len, i;
	struct grey_list *l = NULL, *nl;
	char *copy;
	int clear;

	/* a clear is the tag and its ';', perhaps a line end (the line
	 * is not NUL-terminated: look at its len bytes only) */
	clear = semi != NULL;
	for (i = tlen + 1; clear && i < len; i++)
		if (line[i] != '\r' && line[i] != '\n')
			clear = 0;
	for (i = 0; i < g->nlists; i++)
		if (strlen(g->lists[i].tag) == tlen &&
		    memcmp(g->lists[i].tag, line, tlen) == 0)
			l = &g->lists[i];
	if (clear) {
		if (l != NULL) {
			free(l->tag);
			free(l->line);
			*l = g->lists[--g->nlists];
		}
		return;
	}
	if (l == NULL && g->nlists >= BL_MAX_LISTS) {
		log_warnx("event=list_keep error=\"more than %d lists\" "
		    "tag=%.*s", BL_MAX_LISTS, (int)(tlen < 64 ? tlen : 64),
		    line);
		return;
	}
	if ((copy = malloc(len)) == NULL) {
		log_warnx("event=list_keep error=\"out of memory\" len=%zu",
		    len);
		return;
	}
	memcpy(copy, line, len);
	if (l == NULL) {
		nl = reallocarray(g->lists, g->nlists + 1, sizeof(*nl));
		if (nl == NULL || (nl[g->nlists].tag = strndup(line, tlen)) ==
		    NULL) {
			if (nl != NULL)
				g->lists = nl;
			free(copy);
			log_warnx("event=list_keep error=\"out of memory\"");
			return;
		}
		g->lists = nl;
		l = &g->lists[g->nlists++];
		l->line = NULL;
	}
	free(l->line);
	l->line = copy;
	l->len = len;
}

/* grey_send_one - one message with one string to engine e */
static void
grey_send_one(struct grey_engine *e, uint32_t type, const char *s,
    size_t len)
{
	const char *str[1] = { s };
	size_t l[1] = { len };

	if (e->bev != NULL && msg_put(bufferevent_get_output(e->bev), type,
	    0, 0, 1, str, l) == -1)
		log_warnx("event=send_failed engine=%d type=%s len=%zu",
		    e->idx, msg_type_name(type), len);
}

/* grey_cfg_loaded - config port accepted a list: pass it to every open
 * engine as load number load (their acks carry it back); *sent gets bit
 * idx-1 of each. The number sent, or -idx of an engine it failed for. */
static int
grey_cfg_loaded(const char *line, size_t len, uint64_t load, uint64_t *sent,
    void *arg)
{
	struct grey *g = arg;
	const char *str[1] = { line };
	size_t l[1] = { len };
	int i, n = 0, failed = 0;

	*sent = 0;
	for (i = 0; i < g->neng; i++) {
		struct grey_engine *e = &g->eng[i];

		if (e->bev == NULL)
			continue;
		if (msg_put(bufferevent_get_output(e->bev), MSG_BLACKLIST,
		    load, 0, 1, str, l) == -1) {
			log_warnx("event=send_failed engine=%d type=blacklist "
			    "len=%zu", e->idx, len);
			if (failed == 0)
				failed = e->idx;
			continue;
		}
		*sent |= (uint64_t)1 << (e->idx - 1);
		n++;
	}
	grey_ctl_blacklist(g->ctl, line, len);	/* (added) for explain */
	grey_list_keep(g, line, len);		/* (added) for new engines */
	return failed != 0 ? -failed : n;
}

/* grey_counters - the SIGUSR1 line */
static void
grey_counters(struct grey *g)
{
	long fw_ops = 0, fw_err = 0, cfg_ok = 0, cfg_err = 0;
	long cap_live, cap_hits, cap_evicted;
	int i;

	grey_fw_counts(g->fw, &fw_ops, &fw_err);
	grey_cfg_counts(g->cfg, &cfg_ok, &cfg_err);
	grey_cap_counts(g->cap, time(NULL), &cap_live, &cap_hits,
	    &cap_evicted);
	log_info("event=counters proc=writer tuples=%ld new=%ld grey=%ld "
	    "passes=%ld white=%ld trapped=%ld traps=%ld db_errors=%ld "
	    "reopens=%ld flushes=%ld expired=%ld traplists=%ld "
	    "bad_frames=%ld fw_ops=%ld fw_errors=%ld config_loads=%ld "
	    "config_errors=%ld engines=%d engine_restarts=%ld "
	    "engine_sigsys=%ld refused_cap=%ld refused_disk=%ld "
	    "disk_low=%d disk_free_mb=%lld cap_clients=%ld cap_hits=%ld "
	    "cap_evicted=%ld", g->n.tuples, g->n.new, g->n.grey,
	    g->n.passes, g->n.white, g->n.trapped, g->n.traps, g->n.db_errors,
	    g->n.reopens, g->n.flushes, g->n.expired, g->n.traplists,
	    g->n.bad_frames, fw_ops, fw_err, cfg_ok, cfg_err, g->nopen,
	    g->n.engine_restarts, g->n.engine_sigsys,
	    g->n.refused_cap, g->n.refused_disk, g->disk_low,
	    g->disk_free < 0 ? -1LL : g->disk_free >> 20, cap_live, cap_hits,
	    cap_evicted);
	for (i = 0; i < g->neng; i++) {
		if (g->eng[i].stats == NULL)
			continue;
		/* one line already (grey_engine_msg), never cut */
		log_info("event=counters proc=engine engine=%d %s",
		    g->eng[i].idx, g->eng[i].stats);
	}
	grey_sync_log(g->sync);
	grey_rcpt_counters(g->rcpt);
}

/*
 * grey_dnsbl_reload - (added) SIGHUP: read and check the DNSBL zone file
 * for the engines, which are chrooted and cannot open it; a broken file
 * is not sent, so the engines keep their zones.
 */
static void
grey_dnsbl_reload(struct grey *g)
{
	char err[512], *text;
	size_t len;

	if (g->conf->dnsbl_file == NULL)
		return;
	if ((text = dnsbl_conf_slurp(g->conf->dnsbl_file, DNSBL_FILE_MAX,
	    &len, err, sizeof(err))) == NULL) {
		log_warnx("event=dnsbl-reload proc=writer ok=0 error=\"%s\"",
		    err);
		return;
	}
	grey_broadcast(g, MSG_DNSBL_ZONES, text, len);
	grey_ctl_dnsbl_text(g->ctl, text, len);	/* (added) explain */
	free(g->dnsbl_text);		/* (added) kept for new engines */
	g->dnsbl_text = text;
	g->dnsbl_len = len;
	text = NULL;
	log_info("event=dnsbl-reload proc=writer ok=1 file=%s bytes=%zu",
	    g->conf->dnsbl_file, len);
	free(text);
}

/* grey_signal - SIGTERM/SIGINT stop, SIGHUP reloads domains, SIGUSR1 */
static void
grey_signal(evutil_socket_t sig, short ev, void *arg)
{
	struct grey *g = arg;
	struct gdb_err err = { 0 };

	switch (sig) {
	case SIGTERM:
	case SIGINT:
		log_info("event=stop signal=%s", sig == SIGTERM ? "TERM" :
		    "INT");
		event_base_loopbreak(g->base);
		break;
	case SIGHUP:
		grey_rcpt_reload(g->rcpt);	/* (added) --valid-rcpt */
		grey_dnsbl_reload(g);		/* (added) --dnsbl-file */
		if (g->db == NULL || g->conf->domains_file == NULL)
			break;
		/* on failure greydb keeps the old list */
		if (gdb_load_allowed_domains(g->db, g->conf->domains_file,
		    &err) == -1)
			log_warnx("event=domains_reload ok=0 error=\"%s\"",
			    err.msg);
		else
			log_info("event=domains_reload ok=1 file=%s",
			    g->conf->domains_file);
		break;
	case SIGUSR1:
		grey_counters(g);
		break;
	}
}

/* grey_rcpt_white_hook - grey_rcpt: 1 when ip is WHITE or TRAPPED */
static int
grey_rcpt_white_hook(void *arg, const char *ip, int64_t now)
{
	struct grey *g = arg;
	struct gdb_err err = { 0 };
	int rc;

	if (g->db == NULL)
		return -1;
	if ((rc = grey_live(g, GDB_WHITE, ip, now, NULL, &err)) == 0)
		rc = grey_live(g, GDB_TRAPPED, ip, now, NULL, &err);
	if (rc == -1)
		grey_db_error(g, "rcpt_white", &err);
	return rc;
}

/* grey_rcpt_trap_hook - grey_rcpt: trap ip for mailing invalid users */
static void
grey_rcpt_trap_hook(void *arg, const char *ip, int64_t now,
    const char *rcpts)
{
	struct grey *g = arg;
	struct gdb_err err = { 0 };
	int64_t expire = now + g->conf->times.trapexp;

	if (g->db == NULL || gdb_trap(g->db, ip, now, expire, &err) == -1) {
		if (g->db != NULL)
			grey_db_error(g, "rcpt_trap", &err);
		return;
	}
	g->dirty = 1;
	g->n.traps++;
	log_info("event=trap ip=%s reason=invalid-rcpt rcpts=%s", ip, rcpts);
	grey_fw_trap(g->fw, ip, expire, now);
	grey_traplist_changed(g);
	grey_sync_local(g->sync, GDB_R_TRAP, ip, "", "", "", expire, now);
}

/* grey_rcpt_start - the valid-recipients file and --verify-mx */
static int
grey_rcpt_start(struct grey *g)
{
	const struct grey_conf *c = g->conf;
	struct grey_rcpt_conf rc;
	struct grey_rcpt_hooks h = { grey_rcpt_white_hook,
	    grey_rcpt_trap_hook, g };
	char err[512];

	memset(&rc, 0, sizeof(rc));
	rc.valid_file = c->valid_rcpt_file;
	rc.threshold = c->invalid_trap;
	rc.window = c->times.greyexp;
	rc.verify.mx = c->verify_mx;
	rc.verify.helo = c->verify_helo;
	rc.verify.rate = c->verify_rate > 0 ? c->verify_rate : 10;
	rc.verify.ttl_valid = c->verify_cache_valid;
	rc.verify.ttl_invalid = c->verify_cache_invalid;
	if (c->blacklist_only)
		return 0;
	if (grey_rcpt_new(&g->rcpt, g->base, &rc, &h, err, sizeof(err))
	    == -1) {
		log_warnx("event=writer_start error=\"%s\"", err);
		return -1;
	}
	return 0;
}

/* grey_setup - events, store, firewall, config port; -1 = fatal */
static int
grey_setup(struct grey *g, const int *fds, int nfds)
{
	const struct grey_conf *c = g->conf;
	static const int sigs[5] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, 0 };
	struct gdb_err err = { 0 };
	char fwerr[512], minfree[32];
	struct timeval tv;
	int i;

	signal(SIGPIPE, SIG_IGN);
	if ((g->base = event_base_new()) == NULL) {
		log_warnx("event=writer_start error=\"event_base_new failed\"");
		return -1;
	}
	for (i = 0; sigs[i] != 0; i++) {
		g->sig_ev[i] = evsignal_new(g->base, sigs[i], grey_signal, g);
		if (g->sig_ev[i] == NULL || evsignal_add(g->sig_ev[i], NULL))
			return -1;
	}
	if (!c->blacklist_only && grey_open_db(g, &err) == -1) {
		/* gdb names the path (and file:line for the domains file) */
		log_warnx("event=writer_start error=\"%s\"", err.msg);
		return -1;
	}
	/* (added) the free space (the directory exists now) */
	g->disk_free = g->disk_min = -1;
	grey_disk_check(g);
	/* (added) --max-new-tuples: one fixed table, whatever comes */
	if (!c->blacklist_only && (g->cap = grey_cap_new(grey_max_new(g),
	    GREY_CAP_WINDOW, GREY_CAP_SLOTS)) == NULL) {
		log_warnx("event=writer_start error=\"out of memory for the "
		    "client table\"");
		return -1;
	}
	if (!c->blacklist_only && c->fw_enabled) {
		if (grey_fw_open(&g->fw, g, g->base, c, fwerr, sizeof(fwerr))
		    == -1) {
			log_warnx("event=writer_start error=\"firewall: %s\"",
			    fwerr);
			return -1;
		}
		grey_fw_reconcile(g->fw, g->db, time(NULL));
		g->reconcile_ev = event_new(g->base, -1, EV_PERSIST,
		    grey_reconcile_timer, g);
		tv = grey_tv_ms(1000L * (c->reconcile_secs > 0 ?
		    c->reconcile_secs : 300));
		event_add(g->reconcile_ev, &tv);
	}
	if (c->cfg_fd >= 0 && grey_cfg_start(&g->cfg, g->base, c->cfg_fd,
	    c->cfg_timeout_secs, c->cfg_any_port, grey_cfg_loaded, g) == -1) {
		log_warnx("event=writer_start error=\"config port setup "
		    "failed\"");
		return -1;
	}
	g->eng = calloc(nfds > 0 ? nfds : 1, sizeof(*g->eng));
	if (g->eng == NULL)
		return -1;
	for (i = 0; i < nfds; i++) {
		struct grey_engine *e = &g->eng[i];

		e->g = g;
		e->idx = i + 1;
		if (grey_engine_attach(g, e, fds[i]) == -1)
			return -1;
	}
	g->neng = nfds;
	/* (added) the master's channel for engines that replace dead ones */
	if (c->sup_fd >= 0) {
		g->sup_ev = event_new(g->base, c->sup_fd, EV_READ | EV_PERSIST,
		    grey_sup_read, g);
		if (g->sup_ev == NULL || event_add(g->sup_ev, NULL) == -1)
			return -1;
	}
	g->flush_ev = event_new(g->base, -1, EV_PERSIST, grey_flush_timer, g);
	g->expire_ev = event_new(g->base, -1, EV_PERSIST, grey_expire_timer,
	    g);
	g->trap_ev = evtimer_new(g->base, grey_trap_timer, g);
	g->disk_ev = event_new(g->base, -1, EV_PERSIST, grey_disk_timer, g);
	if (g->flush_ev == NULL || g->expire_ev == NULL || g->trap_ev == NULL ||
	    g->disk_ev == NULL)
		return -1;
	if (!c->blacklist_only && (c->min_free_bytes > 0 ||
	    c->min_free_pct > 0)) {
		tv = grey_tv_ms(1000);
		event_add(g->disk_ev, &tv);
	}
	tv = grey_tv_ms(c->flush_ms > 0 ? c->flush_ms : 1000);
	event_add(g->flush_ev, &tv);
	tv = grey_tv_ms(1000L * (c->scan_secs > 0 ? c->scan_secs : 60));
	event_add(g->expire_ev, &tv);
	if (g->db != NULL)
		grey_traplist_send(g);
	if (grey_rcpt_start(g) == -1)
		return -1;
	/* (added) peers and the HTTP endpoint; both off unless configured */
	if (grey_sync_start(&g->sync, g, g->base, c) == -1 ||
	    grey_http_start(&g->http, g, g->base, c, g->sync) == -1)
		return -1;
	/* (added) catch-up from --cluster-peer, /cluster/ for peers */
	if (grey_cluster_start(&g->cluster, g, g->base, c) == -1)
		return -1;
	/* (added) greyctl's control socket, off unless main opened it */
	if (grey_ctl_start(&g->ctl, g, g->base, c, g->sync) == -1)
		return -1;
	if (c->min_free_pct > 0)
		snprintf(minfree, sizeof(minfree), "%d%%", c->min_free_pct);
	else if (c->min_free_bytes > 0)
		snprintf(minfree, sizeof(minfree), "%lldMB",
		    (long long)(c->min_free_bytes >> 20));
	else
		strlcpy(minfree, "off", sizeof(minfree));
	log_info("event=writer_start engines=%d db=%s fw=%s config_port=%s "
	    "group_v4=%d group_v6=%d max_new_tuples=%d min_free=%s", nfds,
	    g->db ? c->dbdir : "none",
	    g->fw ? c->fw.backend ? c->fw.backend : "nftables" : "none",
	    g->cfg ? "on" : "off", c->group_v4, c->group_v6, grey_max_new(g),
	    minfree);
	return 0;
}

/* grey_teardown - flush and free everything */
static void
grey_teardown(struct grey *g)
{
	struct gdb_err err = { 0 };
	int i;

	size_t j;

	grey_ctl_free(g->ctl);		/* (added) */
	if (g->sup_ev != NULL)		/* (added) */
		event_free(g->sup_ev);
	for (j = 0; j < g->nlists; j++) {
		free(g->lists[j].tag);
		free(g->lists[j].line);
	}
	free(g->lists);
	free(g->dnsbl_text);
	grey_http_free(g->http);
	grey_cluster_free(g->cluster);		/* (added) */
	grey_sync_free(g->sync);
	grey_rcpt_free(g->rcpt);
	grey_cfg_free(g->cfg);
	g->cfg = NULL;
	for (i = 0; i < g->neng; i++) {
		if (g->eng[i].bev != NULL)
			bufferevent_free(g->eng[i].bev);
		free(g->eng[i].stats);
	}
	free(g->eng);
	grey_fw_close(g->fw);
	if (g->db != NULL) {
		if (gdb_flush(g->db, &err) == -1) {
			log_warnx("event=db_error op=flush error=\"%s\"",
			    err.msg);
			g->status = 1;
		}
		gdb_close(g->db);
	}
	for (i = 0; i < 5; i++)
		if (g->sig_ev[i] != NULL)
			event_free(g->sig_ev[i]);
	if (g->flush_ev != NULL)
		event_free(g->flush_ev);
	if (g->expire_ev != NULL)
		event_free(g->expire_ev);
	if (g->reconcile_ev != NULL)
		event_free(g->reconcile_ev);
	if (g->trap_ev != NULL)
		event_free(g->trap_ev);
	if (g->disk_ev != NULL)
		event_free(g->disk_ev);
	grey_cap_free(g->cap);
	if (g->base != NULL)
		event_base_free(g->base);
}

/* grey_main - run the writer (see grey.h) */
int
grey_main(const int *fds, int nfds, const struct grey_conf *conf)
{
	struct grey g;

	memset(&g, 0, sizeof(g));
	g.conf = conf;
	if (grey_setup(&g, fds, nfds) == -1) {
		grey_teardown(&g);
		return 1;
	}
	/* (added) last: store, firewall and listeners are set up */
	{
		char serr[256];
		const char *selftest;

		if (sandbox_writer(conf->seccomp_mode, conf->seccomp_flags,
		    conf->sigsys_report, serr, sizeof(serr)) == -1) {
			log_warnx("event=sandbox proc=writer error=\"%s\"",
			    serr);
			grey_teardown(&g);
			return 1;
		}
		/* the tests' way to prove the filter (as the engines'
		 * SPAMD_SANDBOX_SELFTEST=engine-uname): a refused call */
		if ((selftest = getenv("SPAMD_SANDBOX_SELFTEST")) != NULL &&
		    strcmp(selftest, "writer-mount") == 0)
			(void)syscall(SYS_mount, NULL, NULL, NULL, 0UL, NULL);
	}
	/* with no engine at all the writer serves the config port until
	 * SIGTERM */
	event_base_dispatch(g.base);
	grey_teardown(&g);
	log_info("event=writer_stop status=%d", g.status);
	return g.status;
}

/* grey_stats_get - copy the writer's counters (grey.h) */
void
grey_stats_get(struct grey *g, struct grey_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->tuples = g->n.tuples;
	st->new = g->n.new;
	st->grey = g->n.grey;
	st->passes = g->n.passes;
	st->white = g->n.white;
	st->trapped = g->n.trapped;
	st->traps = g->n.traps;
	st->db_errors = g->n.db_errors;
	st->reopens = g->n.reopens;
	st->bad_frames = g->n.bad_frames;
	st->expired = g->n.expired;
	st->traplists = g->n.traplists;
	st->flushes = g->n.flushes;
	st->flush_secs = g->flush_secs;
	grey_fw_counts(g->fw, &st->fw_ops, &st->fw_errors);
	st->fw_table_missing = grey_fw_table_missing(g->fw, NULL);
	grey_cfg_counts(g->cfg, &st->cfg_loads, &st->cfg_errors);
	st->engines = g->neng;
	st->engines_open = g->nopen;
	st->engine_restarts = g->n.engine_restarts;
	st->engine_sigsys = g->n.engine_sigsys;
	/* (added) bounds on new tuples */
	st->refused_cap = g->n.refused_cap;
	st->refused_disk = g->n.refused_disk;
	grey_cap_counts(g->cap, time(NULL), &st->cap_live, &st->cap_hits,
	    &st->cap_evicted);
	st->disk_low = g->disk_low;
	st->disk_free = g->disk_free;
	st->disk_min = g->disk_min;
}

/* grey_cfg_of - the config port, NULL when off (grey.h) */
struct grey_cfg *
grey_cfg_of(struct grey *g)
{
	return g->cfg;
}

/* grey_ctl_of - the control socket, NULL when off (grey.h) */
struct grey_ctl *
grey_ctl_of(struct grey *g)
{
	return g->ctl;
}

/* grey_refused_sync - (added) a peer's new tuple refused: disk low */
void
grey_refused_sync(struct grey *g)
{
	g->n.refused_disk++;
}

/* grey_engine_stats - engine i's last MSG_STATS text, or NULL */
const char *
grey_engine_stats(struct grey *g, int i)
{
	if (i < 0 || i >= g->neng)
		return NULL;
	return g->eng[i].stats;
}

/* grey_db - the store handle, NULL while closed */
struct gdb *
grey_db(struct grey *g)
{
	return g->db;
}

/* grey_times - the greylisting times (grey.h) */
const struct gdb_times *
grey_times(struct grey *g)
{
	return &g->conf->times;
}

/* grey_cluster_of - the cluster part, NULL when off (grey.h) */
struct grey_cluster *
grey_cluster_of(struct grey *g)
{
	return g->cluster;
}

/* grey_fw_of - the firewall, NULL when off */
struct grey_fw *
grey_fw_of(struct grey *g)
{
	return g->fw;
}

/* grey_changed - the store was written; trapped: the trapped set too */
void
grey_changed(struct grey *g, int trapped)
{
	g->dirty = 1;
	if (trapped)
		grey_traplist_changed(g);
}
