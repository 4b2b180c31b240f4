/*
 * grey_ctl.c - the writer's local control socket (--ctl-socket, default
 * <db-dir>/spamd.sock): greyctl asks the running daemon for what must take
 * effect at once. main opens the socket before the forks (grey_ctl_prepare)
 * and keeps it across writer restarts, as the config port.
 *
 * Protocol: one request line per connection, answer lines of key=value,
 * the last one "end", then the writer closes. Requests:
 *   del-white IP     drop the WHITE record and the white-set element now
 *   del-trapped IP   drop the TRAPPED record, its element, resend the list
 *   add-white IP     greyctl -a wrote the WHITE record: its element into
 *                    the white set now (out of the trap set), resend the
 *                    trapped list (-a drops a TRAPPED record)
 *   add-trapped IP   greyctl -t -a wrote the TRAPPED record: out of the
 *                    white set, into the trap set, resend the list
 *   explain IP       what the writer knows: firewall set (and
 *                    fw_table_missing=FAMILY TABLE while it is gone),
 *                    blacklists,
 *                    the greylisting times (passtime=, greyexp=), and
 *                    the DNSBL zones that list the address now
 *   stats            the writer's counters line and the engines' lines
 *   cluster          cluster_peers=N, then one line per --cluster-peer:
 *                    peer= last_packet= last_catchup= last_digest=
 *                    differing= state= (grey_cluster.c)
 *   reload           as SIGHUP
 * Only uid 0 and the daemon's own uid may ask (SO_PEERCRED); the socket
 * file is 0660 besides.
 *
 * explain asks DNSBLs itself (grey_dnsbl.c: a checker built from the
 * engines' --dnsbl options, its zone file reloaded on SIGHUP with theirs;
 * the engines' own answers never reach the writer). The connection then
 * waits for that answer, at most --dnsbl-timeout, before its dnsbl lines
 * and "end":
 *   dnsbl=off                          no zones configured
 *   dnsbl_zones=N                      then one line per zone, in order:
 *   dnsbl=ZONE listed=yes|no|timeout|error [answer=A.B.C.D]
 *   dnsbl_error="why"                  no lookup (busy, resolver failed)
 * A client that closes meanwhile cancels its lookup; at most
 * GREY_CTL_LOOKUPS_MAX lookups run at once.
 *
 * With -Y targets and --sync-deletions the deletions go to the peers as
 * DEL_WHITE / DEL_TRAPPED through the writer's sync endpoint
 * (grey_sync_del).
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "spamd/common/blacklist.h"
#include "spamd/writer/grey.h"
#include "spamd/writer/grey_dnsbl.h"
#include "spamd/common/log.h"

#define GREY_CTL_LINE_MAX	512	/* a request line, newline included */
#define GREY_CTL_TIMEOUT_SECS	10	/* for the request and the answer */
#define GREY_CTL_LOOKUPS_MAX	8	/* explain DNSBL lookups at once */
#define GREY_CTL_CONNS		64	/* clients at once; more are closed */

struct grey_ctl_conn;

/* The control socket's state in the writer. */
struct grey_ctl {
	struct grey		*g;
	const struct grey_conf	*conf;
	struct event_base	*base;
	struct grey_listen	 lst;		/* cap, EMFILE pause */
	struct bl_set		*bl;		/* last list per tag (config port) */
	struct grey_sync	*gs;		/* DEL_* to peers; NULL off */
	long			 requests, refused;
	LIST_HEAD(, grey_ctl_conn) conns;	/* open clients */
	struct grey_dnsbl	*dnsbl;		/* explain's; NULL: no zones */
	char			 dnsbl_err[256]; /* why it failed to start */
	int			 nlookups;	/* DNSBL lookups in flight */
};

/* One client connection; freed once its answer is written. */
struct grey_ctl_conn {
	LIST_ENTRY(grey_ctl_conn) entry;
	struct grey_ctl		*gc;
	struct bufferevent	*bev;
	struct grey_dnsbl_query	*q;		/* explain waits for DNS */
	struct event		*deadline;	/* the request line in 10 s */
	int			 answered;
	int			 refused;	/* peer not allowed: deny */
};

/* grey_ctl_prepare - in main: bind and listen on path (see grey.h) */
int
grey_ctl_prepare(struct grey_conf *conf, const char *path, gid_t gid,
    char *err, size_t errsz)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd, rc, saved;

	conf->ctl_fd = -1;
	conf->ctl_path = NULL;
	if (path == NULL)
		return 0;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		snprintf(err, errsz, "--ctl-socket %s: longer than %zu bytes",
		    path, sizeof(sun.sun_path) - 1);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errsz, "--ctl-socket %s: socket: %s", path,
		    strerror(errno));
		return -1;
	}
	/* a socket file left by a spamd that died: nobody answers on it */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(fd);
		snprintf(err, errsz, "--ctl-socket %s: another spamd answers "
		    "on it", path);
		return -1;
	}
	close(fd);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errsz, "--ctl-socket %s: socket: %s", path,
		    strerror(errno));
		return -1;
	}
	(void)unlink(path);
	/* why the umask: the file must never exist with wider modes */
	old = umask(0117);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	saved = errno;
	umask(old);
	if (rc == -1) {
		close(fd);
		snprintf(err, errsz, "--ctl-socket %s: bind: %s", path,
		    strerror(saved));
		return -1;
	}
	if (geteuid() == 0 && gid != (gid_t)-1 &&
	    chown(path, 0, gid) == -1) {
		snprintf(err, errsz, "--ctl-socket %s: chown: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (chmod(path, 0660) == -1) {
		snprintf(err, errsz, "--ctl-socket %s: chmod: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (listen(fd, 16) == -1) {
		snprintf(err, errsz, "--ctl-socket %s: listen: %s", path,
		    strerror(errno));
		goto fail;
	}
	conf->ctl_fd = fd;
	conf->ctl_path = path;
	return 0;
fail:
	close(fd);
	unlink(path);
	return -1;
}

/* grey_ctl_conn_free - close one client, dropping its DNSBL lookup */
static void
grey_ctl_conn_free(struct grey_ctl_conn *c)
{
	if (c->q != NULL) {
		grey_dnsbl_cancel(c->q);
		c->gc->nlookups--;
	}
	LIST_REMOVE(c, entry);
	grey_listen_done(&c->gc->lst);
	if (c->deadline != NULL)
		event_free(c->deadline);
	bufferevent_free(c->bev);
	free(c);
}

/* grey_ctl_deadline - the request line did not come in time: a byte
 * now and then must not hold the connection (read timeouts would) */
static void
grey_ctl_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct grey_ctl_conn *c = arg;

	(void)fd;
	(void)ev;
	grey_listen_timedout(&c->gc->lst, "local",
	    evbuffer_get_length(bufferevent_get_input(c->bev)),
	    GREY_CTL_TIMEOUT_SECS);
	grey_ctl_conn_free(c);
}

/* grey_ctl_say - append one answer line */
static void __attribute__((format(printf, 2, 3)))
grey_ctl_say(struct grey_ctl_conn *c, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\n", 1);
}

/* grey_ctl_ip - the request's address in canonical form; -1 answered */
static int
grey_ctl_ip(struct grey_ctl_conn *c, const char *arg, char ip[GDB_ADDR_MAX])
{
	if (arg == NULL || gdb_addr_canon(arg, ip) == -1) {
		grey_ctl_say(c, "error=\"want an IPv4 or IPv6 address\"");
		return -1;
	}
	return 0;
}

/* grey_ctl_del - del-white / del-trapped: drop the record and the set
 * element now (greyctl -d deleted the record already; again is harmless) */
static void
grey_ctl_del(struct grey_ctl_conn *c, enum gdb_type type, const char *arg)
{
	struct grey *g = c->gc->g;
	struct gdb *db = grey_db(g);
	struct gdb_err err = { 0 };
	struct gdb_rec r;
	char ip[GDB_ADDR_MAX];
	int rc = 0;

	if (grey_ctl_ip(c, arg, ip) == -1)
		return;
	memset(&r, 0, sizeof(r));
	r.type = type;
	strlcpy(r.ip, ip, sizeof(r.ip));
	if (db != NULL && (rc = gdb_del(db, &r, &err)) == -1) {
		grey_db_error(g, "ctl_del", &err);
		grey_ctl_say(c, "error=\"database: %s\"", err.msg);
		return;
	}
	grey_changed(g, type == GDB_TRAPPED);
	/* queued; grey_fw flushes it within its 100 ms batch window */
	grey_fw_expired(grey_fw_of(g), &r);
	log_info("event=delete type=%s ip=%s source=ctl record=%s",
	    gdb_type_name(type), ip, rc == 1 ? "deleted" : "absent");
	grey_ctl_say(c, "ip=%s", ip);
	grey_ctl_say(c, "deleted=%s", rc == 1 ? "record" : "none");
	grey_ctl_say(c, "firewall=%s", grey_fw_of(g) != NULL ? "queued" :
	    "off");
	if ((rc = grey_sync_del(c->gc->gs, type, ip)) == 1)
		grey_ctl_say(c, "sync=off");
	else if (rc == -1) {
		log_warnx("event=sync_error op=del ip=%s", ip);
		grey_ctl_say(c, "sync=failed");
	} else
		grey_ctl_say(c, "sync=sent");
}

/* grey_ctl_add - add-white / add-trapped: greyctl -a committed the record;
 * put its element into the firewall now instead of at the next reconcile */
static void
grey_ctl_add(struct grey_ctl_conn *c, enum gdb_type type, const char *arg)
{
	struct grey *g = c->gc->g;
	struct gdb *db = grey_db(g);
	struct gdb_err err = { 0 };
	struct gdb_rec r;
	char ip[GDB_ADDR_MAX];
	int64_t now = time(NULL);
	int rc;

	if (grey_ctl_ip(c, arg, ip) == -1)
		return;
	if (db == NULL) {
		grey_ctl_say(c, "error=\"database closed: the firewall follows "
		    "at the next reconcile\"");
		return;
	}
	memset(&r, 0, sizeof(r));
	r.type = type;
	strlcpy(r.ip, ip, sizeof(r.ip));
	/* why read it back: the record, not the request, says what is
	 * true (its expiry; a request for an address nobody added) */
	if ((rc = gdb_get(db, &r, &err)) == -1) {
		grey_db_error(g, "ctl_add", &err);
		grey_ctl_say(c, "error=\"database: %s\"", err.msg);
		return;
	}
	if (rc == 0 || r.expire <= now) {
		grey_ctl_say(c, "error=\"no live %s record for %s\"",
		    gdb_type_name(type), ip);
		return;
	}
	if (type == GDB_WHITE) {
		struct gdb_rec t = r;

		/* -a dropped a TRAPPED record, if any: its element too */
		t.type = GDB_TRAPPED;
		grey_fw_expired(grey_fw_of(g), &t);
		grey_fw_white(grey_fw_of(g), ip, r.expire, now);
	} else
		grey_fw_trap(grey_fw_of(g), ip, r.expire, now);
	/* the engines' trapped list: an add of either type changes it */
	grey_changed(g, 1);
	log_info("event=add type=%s ip=%s source=ctl expire=%lld",
	    gdb_type_name(type), ip, (long long)r.expire);
	grey_ctl_say(c, "ip=%s", ip);
	grey_ctl_say(c, "firewall=%s", grey_fw_of(g) != NULL ? "queued" :
	    "off");
}

/* Looking for one address in a firewall set. */
struct grey_ctl_find {
	const char	*ip;
	int		 found;
	int64_t		 expires;
};

/* grey_ctl_find_cb - fw_list callback: stop at ip */
static int
grey_ctl_find_cb(const char *ip, int64_t expires, void *arg)
{
	struct grey_ctl_find *f = arg;

	if (strcmp(ip, f->ip) != 0)
		return 0;
	f->found = 1;
	f->expires = expires;
	return 1;
}

/*
 * grey_ctl_fw_has - is ip in the set? Read through the writer's handle
 * (the backend is asked each time). 1 yes, 0 no, -1 error (err set).
 */
static int
grey_ctl_fw_has(struct grey_fw *gf, enum fw_set set, const char *ip,
    int64_t *expires, const char **setname, char *err, size_t errsz)
{
	struct grey_ctl_find f = { ip, 0, 0 };

	if (grey_fw_list(gf, set, strchr(ip, ':') != NULL, grey_ctl_find_cb,
	    &f, setname, err, errsz) == -1)
		return -1;
	*expires = f.expires;
	return f.found;
}

/* grey_ctl_dnsbl_done - explain's DNSBL answer: the last lines */
static void
grey_ctl_dnsbl_done(void *arg, const struct grey_dnsbl_zone *z, int nz)
{
	struct grey_ctl_conn *c = arg;
	struct timeval tv = { GREY_CTL_TIMEOUT_SECS, 0 };
	int i;

	/* the query is freed when we return: never cancel it */
	c->q = NULL;
	c->gc->nlookups--;
	if (nz == 0)
		grey_ctl_say(c, "dnsbl_error=\"the zones changed during the "
		    "lookup; ask again\"");
	else
		grey_ctl_say(c, "dnsbl_zones=%d", nz);
	for (i = 0; i < nz; i++) {
		if (z[i].answer[0] != '\0')
			grey_ctl_say(c, "dnsbl=%s listed=%s answer=%s",
			    z[i].zone, grey_dnsbl_verdict_name(z[i].verdict),
			    z[i].answer);
		else
			grey_ctl_say(c, "dnsbl=%s listed=%s", z[i].zone,
			    grey_dnsbl_verdict_name(z[i].verdict));
	}
	grey_ctl_say(c, "end");
	/* grey_ctl_written closes once this is out */
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

/* grey_ctl_explain_dnsbl - start explain's DNSBL lookup, or say why not */
static void
grey_ctl_explain_dnsbl(struct grey_ctl_conn *c, const char *ip)
{
	struct grey_ctl *gc = c->gc;

	if (gc->dnsbl_err[0] != '\0') {
		grey_ctl_say(c, "dnsbl_error=\"%s\"", gc->dnsbl_err);
		return;
	}
	if (grey_dnsbl_nzones(gc->dnsbl) == 0) {
		grey_ctl_say(c, "dnsbl=off");
		return;
	}
	/* why a bound: each lookup is one query per zone to the servers */
	if (gc->nlookups >= GREY_CTL_LOOKUPS_MAX) {
		grey_ctl_say(c, "dnsbl_error=\"busy: %d explain lookups in "
		    "flight, ask again\"", gc->nlookups);
		return;
	}
	if ((c->q = grey_dnsbl_ask(gc->dnsbl, ip, grey_ctl_dnsbl_done, c))
	    == NULL) {
		grey_ctl_say(c, "dnsbl_error=\"lookup not started (out of "
		    "memory)\"");
		return;
	}
	gc->nlookups++;
}

/* grey_ctl_explain - what the writer knows about one address */
static void
grey_ctl_explain(struct grey_ctl_conn *c, const char *arg)
{
	const struct grey_conf *conf = c->gc->conf;
	struct grey *g = c->gc->g;
	char ip[GDB_ADDR_MAX], err[512], list[1024];
	const char *setname = "";
	struct bl_match m;
	struct bl_addr a;
	int64_t exp = 0;
	int rc, i;

	if (grey_ctl_ip(c, arg, ip) == -1)
		return;
	grey_ctl_say(c, "ip=%s", ip);
	/* greyctl reads the store's pass field (first + greyexp, OpenBSD's
	 * layout); when a tuple passes depends on this daemon's -G */
	grey_ctl_say(c, "passtime=%lld", (long long)conf->times.passtime);
	grey_ctl_say(c, "greyexp=%lld", (long long)conf->times.greyexp);
	if (grey_fw_of(g) == NULL) {
		grey_ctl_say(c, "firewall=off");
	} else {
		const char *tbl;

		grey_ctl_say(c, "firewall=%s", conf->fw.backend != NULL ?
		    conf->fw.backend : "nftables");
		if (grey_fw_table_missing(grey_fw_of(g), &tbl))
			grey_ctl_say(c, "fw_table_missing=%s", tbl);
		rc = grey_ctl_fw_has(grey_fw_of(g), FW_WHITE, ip, &exp,
		    &setname, err, sizeof(err));
		if (rc == -1) {
			for (char *p = err; *p; p++)
				if (*p == '"' || *p == '\n')
					*p = '\'';
			grey_ctl_say(c, "white_set_error=\"%s\"", err);
		} else {
			grey_ctl_say(c, "white_set=%s", setname);
			grey_ctl_say(c, "in_white_set=%s", rc ? "yes" : "no");
			if (rc && exp >= 0)
				grey_ctl_say(c, "white_set_expires=%lld",
				    (long long)exp);
		}
	}
	/* the lists as the config port accepted them (the engines' copy) */
	list[0] = '\0';
	memset(&a, 0, sizeof(a));
	if (inet_pton(AF_INET, ip, a.a) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, ip, a.a) == 1)
		a.family = AF_INET6;
	if (c->gc->bl != NULL && a.family != 0 &&
	    bl_lookup(c->gc->bl, &a, &m) > 0) {
		for (i = 0; i < m.n; i++) {
			if (i > 0)
				strlcat(list, ",", sizeof(list));
			strlcat(list, m.tag[i], sizeof(list));
		}
	}
	grey_ctl_say(c, "blacklists=%s", list);
	grey_ctl_say(c, "database=%s", grey_db(g) != NULL ? "open" :
	    "closed");
	grey_ctl_explain_dnsbl(c, ip);
}

/* grey_ctl_stats - the writer's counters and each engine's last line */
static void
grey_ctl_stats(struct grey_ctl_conn *c)
{
	struct grey *g = c->gc->g;
	struct grey_stats st;
	const char *es;
	int i;

	grey_stats_get(g, &st);
	grey_ctl_say(c, "proc=writer tuples=%ld new=%ld grey=%ld passes=%ld "
	    "white=%ld trapped=%ld traps=%ld db_errors=%ld reopens=%ld "
	    "flushes=%ld expired=%ld traplists=%ld bad_frames=%ld "
	    "fw_ops=%ld fw_errors=%ld config_loads=%ld config_errors=%ld "
	    "engines=%d engines_open=%d ctl_requests=%ld ctl_refused=%ld "
	    "refused_cap=%ld refused_disk=%ld disk_low=%d disk_free_mb=%lld "
	    "cap_clients=%ld cap_hits=%ld cap_evicted=%ld",
	    st.tuples, st.new, st.grey, st.passes, st.white, st.trapped,
	    st.traps, st.db_errors, st.reopens, st.flushes, st.expired,
	    st.traplists, st.bad_frames, st.fw_ops, st.fw_errors,
	    st.cfg_loads, st.cfg_errors, st.engines, st.engines_open,
	    c->gc->requests, c->gc->refused, st.refused_cap, st.refused_disk,
	    st.disk_low, st.disk_free < 0 ? -1LL : st.disk_free >> 20,
	    st.cap_live, st.cap_hits, st.cap_evicted);
	for (i = 0; i < st.engines; i++) {
		char buf[1024];

		if ((es = grey_engine_stats(g, i)) == NULL)
			continue;
		strlcpy(buf, es, sizeof(buf));
		for (char *p = buf; *p; p++)
			if ((unsigned char)*p < ' ' || *p == 0x7f)
				*p = ' ';
		grey_ctl_say(c, "proc=engine engine=%d %s", i + 1, buf);
	}
}

/* grey_ctl_cluster - one line per --cluster-peer (grey_cluster.c) */
static void
grey_ctl_cluster(struct grey_ctl_conn *c)
{
	struct grey_cluster *gcl = grey_cluster_of(c->gc->g);
	char line[512];
	int i, n = grey_cluster_peers(gcl);

	grey_ctl_say(c, "cluster_peers=%d", n);
	for (i = 0; i < n; i++)
		if (grey_cluster_peer_line(gcl, i, line, sizeof(line)) == 0)
			grey_ctl_say(c, "%s", line);
}

/* grey_ctl_request - answer one request line */
static void
grey_ctl_request(struct grey_ctl_conn *c, char *line)
{
	char *cmd, *arg, *extra, esc[256];

	cmd = strtok(line, " \t");
	arg = cmd != NULL ? strtok(NULL, " \t") : NULL;
	extra = arg != NULL ? strtok(NULL, " \t") : NULL;
	c->gc->requests++;
	if (cmd == NULL) {
		grey_ctl_say(c, "error=\"empty request\"");
	} else if (extra != NULL) {
		grey_ctl_say(c, "error=\"%s: one argument at most\"",
		    log_escape(cmd, strlen(cmd), 40, esc, sizeof(esc)));
	} else if (strcmp(cmd, "del-white") == 0) {
		grey_ctl_del(c, GDB_WHITE, arg);
	} else if (strcmp(cmd, "del-trapped") == 0) {
		grey_ctl_del(c, GDB_TRAPPED, arg);
	} else if (strcmp(cmd, "add-white") == 0) {
		grey_ctl_add(c, GDB_WHITE, arg);
	} else if (strcmp(cmd, "add-trapped") == 0) {
		grey_ctl_add(c, GDB_TRAPPED, arg);
	} else if (strcmp(cmd, "explain") == 0) {
		grey_ctl_explain(c, arg);
	} else if (arg != NULL) {
		grey_ctl_say(c, "error=\"%s takes no argument\"",
		    log_escape(cmd, strlen(cmd), 40, esc, sizeof(esc)));
	} else if (strcmp(cmd, "stats") == 0) {
		grey_ctl_stats(c);
	} else if (strcmp(cmd, "cluster") == 0) {
		grey_ctl_cluster(c);
	} else if (strcmp(cmd, "reload") == 0) {
		/* the writer's SIGHUP handler does the work, as for kill -HUP */
		kill(getpid(), SIGHUP);
		log_info("event=reload source=ctl");
		grey_ctl_say(c, "reload=queued");
	} else {
		grey_ctl_say(c, "error=\"unknown request %s (want del-white, "
		    "del-trapped, add-white, add-trapped, explain, stats, "
		    "cluster or reload)\"",
		    log_escape(cmd, strlen(cmd), 40, esc, sizeof(esc)));
	}
	/* an explain waiting for DNS ends in grey_ctl_dnsbl_done */
	if (c->q == NULL)
		grey_ctl_say(c, "end");
}

/* grey_ctl_written - the answer is out: close */
static void
grey_ctl_written(struct bufferevent *bev, void *arg)
{
	struct grey_ctl_conn *c = arg;

	(void)bev;
	if (c->answered && c->q == NULL)
		grey_ctl_conn_free(c);
}

/* grey_ctl_read - a request line arrived (or too much without one) */
static void
grey_ctl_read(struct bufferevent *bev, void *arg)
{
	struct grey_ctl_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line;

	if (c->answered) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
	if (line == NULL) {
		if (evbuffer_get_length(in) < GREY_CTL_LINE_MAX)
			return;
		grey_ctl_say(c, "error=\"request longer than %d bytes\"",
		    GREY_CTL_LINE_MAX);
		grey_ctl_say(c, "end");
	} else if (n >= GREY_CTL_LINE_MAX || strlen(line) != n) {
		grey_ctl_say(c, "error=\"request longer than %d bytes or "
		    "with a NUL byte\"", GREY_CTL_LINE_MAX);
		grey_ctl_say(c, "end");
	} else if (c->refused) {
		grey_ctl_say(c, "error=\"permission denied: only root or the "
		    "daemon's user may use the control socket\"");
		grey_ctl_say(c, "end");
	} else
		grey_ctl_request(c, line);
	free(line);
	c->answered = 1;
	if (c->deadline != NULL)
		evtimer_del(c->deadline);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	if (c->q != NULL) {
		/* explain waits for DNS: keep reading to see the client go;
		 * the lookup ends within its timeout, the connection after */
		struct timeval tv = {
			grey_dnsbl_timeout_ms(c->gc->dnsbl) / 1000 +
			    GREY_CTL_TIMEOUT_SECS, 0 };

		bufferevent_set_timeouts(bev, &tv, &tv);
		return;
	}
	bufferevent_disable(bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		grey_ctl_conn_free(c);
}

/* grey_ctl_event - EOF, error or timeout: drop the client */
static void
grey_ctl_event(struct bufferevent *bev, short what, void *arg)
{
	struct grey_ctl_conn *c = arg;
	struct pollfd pfd;

	/*
	 * why: while explain waits for DNS we read only to notice a client
	 * that is gone. EOF alone may be a client that shut down its
	 * sending side and still reads: POLLHUP tells a closed socket.
	 */
	if (c->q != NULL && what == (BEV_EVENT_EOF | BEV_EVENT_READING)) {
		pfd.fd = bufferevent_getfd(bev);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, 0) == 1 && !(pfd.revents & POLLHUP)) {
			bufferevent_disable(bev, EV_READ);
			return;
		}
	}
	/* a reset (the client left our first lines unread) or a timeout */
	if (c->q != NULL)
		log_info("event=ctl_gone request=explain lookup=cancelled "
		    "why=%s", what & BEV_EVENT_TIMEOUT ? "timeout" :
		    what & BEV_EVENT_EOF ? "closed" : "error");
	grey_ctl_conn_free(c);
}

/* grey_ctl_accept - a client connected: check who it is, then read */
static void
grey_ctl_accept(evutil_socket_t lfd, short ev, void *arg)
{
	struct grey_ctl *gc = arg;
	struct grey_ctl_conn *c;
	struct ucred cr;
	socklen_t crl = sizeof(cr);
	struct timeval tv = { GREY_CTL_TIMEOUT_SECS, 0 };
	int fd;

	(void)ev;
	if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC))
	    == -1) {
		/* EMFILE and friends pause accept for a second, logged once */
		if (!grey_listen_accept_failed(&gc->lst, errno) &&
		    errno != EAGAIN && errno != EINTR)
			log_warn("event=ctl_accept");
		return;
	}
	if (!grey_listen_admit(&gc->lst, "local")) {
		close(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		grey_listen_done(&gc->lst);
		close(fd);
		return;
	}
	c->gc = gc;
	LIST_INSERT_HEAD(&gc->conns, c, entry);
	memset(&cr, 0, sizeof(cr));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) == -1 ||
	    (cr.uid != 0 && cr.uid != geteuid())) {
		/* answered after its request is read: closing on an unread
		 * request would reset the connection and lose the answer */
		c->refused = 1;
		gc->refused++;
		log_warnx("event=ctl_refused uid=%ld pid=%ld",
		    (long)cr.uid, (long)cr.pid);
	}
	c->bev = bufferevent_socket_new(gc->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		LIST_REMOVE(c, entry);
		grey_listen_done(&gc->lst);
		free(c);
		return;
	}
	if ((c->deadline = evtimer_new(gc->base, grey_ctl_deadline, c)) !=
	    NULL)
		evtimer_add(c->deadline, &tv);
	bufferevent_setcb(c->bev, grey_ctl_read, grey_ctl_written,
	    grey_ctl_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* grey_ctl_start - serve conf->ctl_fd (see grey.h) */
int
grey_ctl_start(struct grey_ctl **out, struct grey *g, struct event_base *base,
    const struct grey_conf *conf, struct grey_sync *gs)
{
	struct grey_ctl *gc;

	*out = NULL;
	/* the path says "on": a zeroed conf (tests) has ctl_fd 0 */
	if (conf->ctl_path == NULL || conf->ctl_fd < 0)
		return 0;
	if ((gc = calloc(1, sizeof(*gc))) == NULL)
		return -1;
	gc->g = g;
	gc->conf = conf;
	gc->base = base;
	gc->gs = gs;
	LIST_INIT(&gc->conns);
	/* why not fatal: explain's DNSBL lines are a diagnosis; the
	 * engines' checkers are what matters, and main checked the options */
	if (grey_dnsbl_new(&gc->dnsbl, base, conf, gc->dnsbl_err,
	    sizeof(gc->dnsbl_err)) == -1) {
		for (char *p = gc->dnsbl_err; *p; p++)
			if (*p == '"' || *p == '\n')
				*p = '\'';
		log_warnx("event=dnsbl-start proc=writer ok=0 error=\"%s\"",
		    gc->dnsbl_err);
		if (gc->dnsbl_err[0] == '\0')
			strlcpy(gc->dnsbl_err, "checker failed to start",
			    sizeof(gc->dnsbl_err));
	}
	evutil_make_socket_nonblocking(conf->ctl_fd);
	if (grey_listen_init(&gc->lst, base, "ctl", GREY_CTL_CONNS) == -1 ||
	    (gc->lst.accept_ev = event_new(base, conf->ctl_fd, EV_READ |
	    EV_PERSIST, grey_ctl_accept, gc)) == NULL ||
	    event_add(gc->lst.accept_ev, NULL) == -1 ||
	    (gc->bl = bl_set_new()) == NULL) {
		log_warnx("event=writer_start error=\"control socket setup "
		    "failed\"");
		grey_ctl_free(gc);
		return -1;
	}
	log_info("event=ctl_listen path=%s sync_deletions=%s", conf->ctl_path,
	    gs != NULL && conf->nsync_targets > 0 && conf->sync_deletions ?
	    "on" : "off");
	*out = gc;
	return 0;
}

/* grey_ctl_blacklist - keep the list the config port accepted (grey.h) */
void
grey_ctl_blacklist(struct grey_ctl *gc, const char *line, size_t len)
{
	struct bl_list *l;
	char err[256];

	if (gc == NULL || gc->bl == NULL)
		return;
	/* grey_cfg checked it already; a failure here only loses explain */
	if ((l = bl_parse(line, len, err, sizeof(err))) == NULL ||
	    bl_set_apply(gc->bl, l, err, sizeof(err)) == -1)
		log_warnx("event=ctl_blacklist ok=0 error=\"%s\"", err);
}

/* grey_ctl_dnsbl_text - the reloaded zone file for explain (grey.h) */
void
grey_ctl_dnsbl_text(struct grey_ctl *gc, const char *text, size_t len)
{
	if (gc == NULL)
		return;
	grey_dnsbl_load_text(gc->dnsbl, text, len);
}

/* grey_ctl_listen - the control socket's listener counters (grey.h) */
const struct grey_listen *
grey_ctl_listen(const struct grey_ctl *gc)
{
	return gc != NULL ? &gc->lst : NULL;
}

/* grey_ctl_free - stop listening (the socket stays open in main) */
void
grey_ctl_free(struct grey_ctl *gc)
{
	if (gc == NULL)
		return;
	/* no new clients, then the clients (their lookups belong to the
	 * checker), then the checker, which runs the loop once more */
	if (gc->lst.accept_ev != NULL)
		event_free(gc->lst.accept_ev);
	while (!LIST_EMPTY(&gc->conns))
		grey_ctl_conn_free(LIST_FIRST(&gc->conns));
	grey_listen_free(&gc->lst);
	grey_dnsbl_free(gc->dnsbl);
	gc->dnsbl = NULL;
	if (gc->bl != NULL)
		bl_set_free(gc->bl);
	free(gc);
}
