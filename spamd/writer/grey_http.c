/*
 * grey_http.c - the writer's HTTP endpoint (libevent evhttp on the
 * writer's event base), off unless --http-listen ADDR:PORT is given:
 *   GET /traplist  the live TRAPPED addresses in spamd-setup list format
 *                  (as `greyctl export traplist`: a '#' line naming host
 *                  and time, then one address a line), with
 *                  Last-Modified / If-Modified-Since, ETag /
 *                  If-None-Match, and gzip when Accept-Encoding allows;
 *   GET /metrics   Prometheus text format: connections, tuples, passes,
 *                  traps, database records, firewall and sync counters.
 * HEAD works for both; other methods get 405, other paths 404.
 *
 * Every connection has a whole deadline (GREY_HTTP_TIMEOUT from accept,
 * then it is shut down: evhttp's own timeout is per read, so a byte every
 * few seconds held it forever), except a streamed answer
 * (grey_http_stream: /cluster/changes), which is dropped instead when
 * for GREY_HTTP_TIMEOUT no block left and the socket's send queue did not
 * move (a peer that stopped reading), however long it runs while it
 * moves; at most GREY_HTTP_CONNS are open and
 * GREY_HTTP_PER_PEER from one address (more are closed at once), and
 * accept pauses a second when descriptors run out (grey_listen.c).
 * evhttp 2.1 has no hook per connection but the bufferevent it asks us
 * for (evhttp_set_bevcb): we keep a reference to each and see evhttp's
 * free as its callbacks gone (bufferevent_free clears them); the socket
 * is closed on our release (BEV_OPT_CLOSE_ON_FREE), so its number is
 * never reused while we hold the bufferevent.
 *
 * Last-Modified is the time this process first served the current set of
 * addresses (a digest of the address lines, so a change made by greyctl
 * in another process counts too); it starts at the first request.
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "pf-sync/sync.h"
#include "spamd/common/dnsbl.h"
#include "spamd/writer/grey.h"
#include "spamd/common/log.h"

#define GREY_HTTP_TIMEOUT	10		/* seconds per connection */
/* tests only: a shorter GREY_HTTP_TIMEOUT (1-10), so the deadlines can be
 * exercised in a few seconds */
#define GREY_HTTP_TIMEOUT_ENV	"SPAMD_HTTP_TIMEOUT"
#define GREY_HTTP_CONNS		64		/* connections at once */
#define GREY_HTTP_PER_PEER	16		/* from one address */
#define GREY_HTTP_SWEEP_SECS	1		/* release closed ones */
#define GREY_HTTP_MAX_HEADERS	8192		/* bytes of request headers */
#define GREY_HTTP_DBSTATS_SECS	5		/* gdb_stats is a full scan */

struct grey_http;

/* One connection evhttp serves, as far as we can see it. */
struct grey_http_conn {
	LIST_ENTRY(grey_http_conn) entry;
	struct grey_http	*gh;
	struct bufferevent	*bev;		/* our reference */
	struct event		*timer;		/* admit, then deadline */
	int			 admitted;
	int			 streaming;	/* idle bound, not whole */
	int			 moved;		/* a block left since */
	int			 outq;		/* SIOCOUTQ at the last look */
	char			 peer[INET6_ADDRSTRLEN];
};

/* The endpoint. */
struct grey_http {
	struct grey		*g;
	struct event_base	*base;
	struct grey_listen	 lst;		/* cap, EMFILE pause */
	struct event		*sweep_ev;
	LIST_HEAD(, grey_http_conn) conns;
	const struct grey_conf	*conf;
	struct grey_sync	*gs;
	struct evhttp		*http;
	int			 timeout;		/* GREY_HTTP_TIMEOUT */
	unsigned char		 md[EVP_MAX_MD_SIZE];	/* of the address lines */
	unsigned		 mdlen;			/* 0 = none yet */
	time_t			 mtime;			/* Last-Modified */
	struct gdb_stats	 dbst;			/* cached gdb_stats */
	time_t			 dbst_at;
	int			 dbst_ok;
	long			 requests[4];		/* by grey_http_res */
};

/* Request outcomes, counted in /metrics. */
enum grey_http_res { GH_OK, GH_NOT_MODIFIED, GH_NOT_FOUND, GH_ERROR };

/* grey_http_date - time t as an HTTP date (RFC 7231 IMF-fixdate) */
static void
grey_http_date(time_t t, char *buf, size_t bufsz)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, bufsz, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
		strlcpy(buf, "Thu, 01 Jan 1970 00:00:00 GMT", bufsz);
}

/* grey_http_parse_date - an IMF-fixdate into *t; -1 if it is not one */
static int
grey_http_parse_date(const char *s, time_t *t)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	/* why: only the one form HTTP/1.1 senders must use; a date we
	 * cannot read is ignored (RFC 7232 3.3), answering 200 */
	end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end == NULL || *end != '\0')
		return -1;
	*t = timegm(&tm);
	return *t == (time_t)-1 ? -1 : 0;
}

/*
 * grey_http_accepts_gzip - 1 if an Accept-Encoding value allows gzip:
 * "gzip" or "x-gzip" with q > 0, or "*" with q > 0 when gzip is not
 * named at all.
 */
static int
grey_http_accepts_gzip(const char *v)
{
	char buf[512], *tok, *save = NULL, *p;
	int star = 0, named = -1;

	if (v == NULL || strlcpy(buf, v, sizeof(buf)) >= sizeof(buf))
		return 0;
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		double q = 1.0;
		size_t n;

		while (*tok == ' ' || *tok == '\t')
			tok++;
		if ((p = strchr(tok, ';')) != NULL) {
			*p++ = '\0';
			while (*p == ' ' || *p == '\t')
				p++;
			if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=')
				q = strtod(p + 2, NULL);
		}
		n = strcspn(tok, " \t");
		tok[n] = '\0';
		if (strcasecmp(tok, "gzip") == 0 ||
		    strcasecmp(tok, "x-gzip") == 0)
			named = q > 0;
		else if (strcmp(tok, "*") == 0)
			star = q > 0;
	}
	return named >= 0 ? named : star;
}

/* grey_http_gzip - body compressed with gzip into out; -1 on failure */
static int
grey_http_gzip(struct evbuffer *body, struct evbuffer *out)
{
	z_stream z;
	size_t len = evbuffer_get_length(body);
	unsigned char *in = evbuffer_pullup(body, -1);
	struct evbuffer_iovec v;
	uLong bound;
	int rc;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	bound = deflateBound(&z, (uLong)len) + 32;
	if (evbuffer_reserve_space(out, (ev_ssize_t)bound, &v, 1) < 1) {
		deflateEnd(&z);
		return -1;
	}
	z.next_in = in;
	z.avail_in = (uInt)len;
	z.next_out = v.iov_base;
	z.avail_out = (uInt)v.iov_len;
	rc = deflate(&z, Z_FINISH);
	v.iov_len = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		v.iov_len = 0;
		evbuffer_commit_space(out, &v, 1);
		return -1;
	}
	return evbuffer_commit_space(out, &v, 1);
}

/* Collecting the trap list. */
struct grey_http_tl {
	struct evbuffer	*lines;
	int64_t		 now;
	long		 n;
};

/* grey_http_tl_cb - gdb_walk callback: one live TRAPPED address a line */
static int
grey_http_tl_cb(const struct gdb_rec *rec, void *arg)
{
	struct grey_http_tl *tl = arg;

	/* expire <= now counts as absent (greydb's rule), as greyctl */
	if (rec->type != GDB_TRAPPED || rec->expire <= tl->now)
		return 0;
	evbuffer_add_printf(tl->lines, "%s\n", rec->ip);
	tl->n++;
	return 0;
}

/* grey_http_reply - send code with body (NULL = none), count it */
static void
grey_http_reply(struct grey_http *gh, struct evhttp_request *req, int code,
    const char *reason, struct evbuffer *body, enum grey_http_res res)
{
	gh->requests[res]++;
	evhttp_send_reply(req, code, reason, body);
}

/* grey_http_text - a short plain-text reply (404, 503) */
static void
grey_http_text(struct grey_http *gh, struct evhttp_request *req, int code,
    const char *reason, enum grey_http_res res)
{
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; charset=us-ascii");
	if (b != NULL)
		evbuffer_add_printf(b, "%d %s\n", code, reason);
	grey_http_reply(gh, req, code, reason, b, res);
	if (b != NULL)
		evbuffer_free(b);
}

/* grey_http_traplist - GET /traplist */
static void
grey_http_traplist(struct grey_http *gh, struct evhttp_request *req)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct grey_http_tl tl;
	struct evbuffer *body = NULL, *gz = NULL;
	struct gdb *db = grey_db(gh->g);
	struct gdb_err err = { 0 };
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0, i;
	char date[64], host[256], when[32], etag[2 * EVP_MAX_MD_SIZE + 3];
	const char *h;
	time_t now = time(NULL), ims;
	struct tm tm;

	memset(&tl, 0, sizeof(tl));
	if (db == NULL) {
		grey_http_text(gh, req, 503, "Service Unavailable", GH_ERROR);
		return;
	}
	tl.now = now;
	if ((tl.lines = evbuffer_new()) == NULL ||
	    (body = evbuffer_new()) == NULL)
		goto fail;
	if (gdb_walk(db, GDB_TRAPPED, grey_http_tl_cb, &tl, &err) == -1) {
		grey_db_error(gh->g, "http_traplist", &err);
		goto fail;
	}
	if (EVP_Digest(evbuffer_pullup(tl.lines, -1),
	    evbuffer_get_length(tl.lines), md, &mdlen, EVP_sha1(), NULL) != 1)
		goto fail;
	if (gh->mdlen != mdlen || memcmp(gh->md, md, mdlen) != 0) {
		memcpy(gh->md, md, mdlen);
		gh->mdlen = mdlen;
		gh->mtime = now;
	}
	etag[0] = '"';
	for (i = 0; i < mdlen; i++)
		snprintf(etag + 1 + 2 * i, 3, "%02x", md[i]);
	strlcat(etag, "\"", sizeof(etag));
	grey_http_date(gh->mtime, date, sizeof(date));
	evhttp_add_header(out, "Content-Type", "text/plain; charset=us-ascii");
	evhttp_add_header(out, "Last-Modified", date);
	evhttp_add_header(out, "ETag", etag);
	evhttp_add_header(out, "Vary", "Accept-Encoding");
	evhttp_add_header(out, "Cache-Control", "no-cache");

	/* If-None-Match wins over If-Modified-Since (RFC 7232 6) */
	if ((h = evhttp_find_header(in, "If-None-Match")) != NULL) {
		if (strstr(h, etag) != NULL || strcmp(h, "*") == 0)
			goto not_modified;
	} else if ((h = evhttp_find_header(in, "If-Modified-Since")) != NULL &&
	    grey_http_parse_date(h, &ims) == 0 && gh->mtime <= ims)
		goto not_modified;

	if (gethostname(host, sizeof(host)) == -1)
		strlcpy(host, "unknown", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] != '\0'; i++)
		if (!isgraph((unsigned char)host[i]))
			host[i] = '?';
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strlcpy(when, "unknown", sizeof(when));
	/* a '#' line is a comment in a spamd-setup list */
	evbuffer_add_printf(body, "# spamd trap list from %s at %s\n", host,
	    when);
	evbuffer_add_buffer(body, tl.lines);
	if (grey_http_accepts_gzip(evhttp_find_header(in,
	    "Accept-Encoding"))) {
		if ((gz = evbuffer_new()) == NULL || grey_http_gzip(body, gz)
		    == -1)
			goto fail;
		evhttp_add_header(out, "Content-Encoding", "gzip");
		grey_http_reply(gh, req, HTTP_OK, "OK", gz, GH_OK);
	} else
		grey_http_reply(gh, req, HTTP_OK, "OK", body, GH_OK);
	goto done;
not_modified:
	grey_http_reply(gh, req, HTTP_NOTMODIFIED, "Not Modified", NULL,
	    GH_NOT_MODIFIED);
	goto done;
fail:
	grey_http_text(gh, req, 500, "Internal Server Error", GH_ERROR);
done:
	if (tl.lines != NULL)
		evbuffer_free(tl.lines);
	if (body != NULL)
		evbuffer_free(body);
	if (gz != NULL)
		evbuffer_free(gz);
}

/* Sums of the engines' MSG_STATS counters. */
struct grey_http_eng {
	unsigned long long conns, black_conns, accepted, closed, grey, black,
	    trapped, trapped_live, tuples, tuples_dropped, per_client_refused,
	    accept_errors, idle_closed, bytes_out, tarpit_secs, dnsbl_conns,
	    rcpt_refused;
	int reporting;
	/* DNSBL counters by zone, summed over the engines */
	struct {
		char zone[256];
		unsigned long long queries, listed, timeouts;
	} z[DNSBL_MAX_ZONES];
	int nz;
};

/* grey_http_eng_zone - add one "ZONE:QUERIES:LISTED:TIMEOUTS" token */
static void
grey_http_eng_zone(struct grey_http_eng *s, const char *v)
{
	unsigned long long q, l, t;
	char zone[256];
	int i, n = 0;

	/* a token cut short by a full stats line is ignored */
	if (sscanf(v, "%255[^:]:%llu:%llu:%llu%n", zone, &q, &l, &t, &n) != 4
	    || v[n] != '\0')
		return;
	/* the zone becomes a label value: only DNS name bytes */
	for (i = 0; zone[i] != '\0'; i++)
		if (!isalnum((unsigned char)zone[i]) && zone[i] != '.' &&
		    zone[i] != '-' && zone[i] != '_')
			return;
	for (i = 0; i < s->nz; i++)
		if (strcmp(s->z[i].zone, zone) == 0)
			break;
	if (i == s->nz) {
		if (s->nz == DNSBL_MAX_ZONES)
			return;
		strlcpy(s->z[s->nz++].zone, zone, sizeof(s->z[0].zone));
	}
	s->z[i].queries += q;
	s->z[i].listed += l;
	s->z[i].timeouts += t;
}

/* grey_http_eng_add - add one engine's "key=value ..." text to sums */
static void
grey_http_eng_add(struct grey_http_eng *s, const char *text)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
#define K(f) { #f, offsetof(struct grey_http_eng, f) }
		K(conns), K(black_conns), K(accepted), K(closed), K(grey),
		K(black), K(trapped), K(trapped_live), K(tuples),
		K(tuples_dropped), K(per_client_refused), K(accept_errors),
		K(idle_closed), K(bytes_out), K(tarpit_secs), K(dnsbl_conns),
		K(rcpt_refused),
#undef K
	};
	char buf[8192], *tok, *save = NULL, *eq;
	size_t i;

	strlcpy(buf, text, sizeof(buf));
	s->reporting++;
	for (tok = strtok_r(buf, " ", &save); tok != NULL;
	    tok = strtok_r(NULL, " ", &save)) {
		if ((eq = strchr(tok, '=')) == NULL)
			continue;
		*eq++ = '\0';
		if (strcmp(tok, "dnsbl") == 0) {
			grey_http_eng_zone(s, eq);
			continue;
		}
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcmp(tok, keys[i].key) == 0)
				*(unsigned long long *)(void *)((char *)s +
				    keys[i].off) += strtoull(eq, NULL, 10);
	}
}

/* grey_http_metric - one metric's HELP and TYPE lines */
static void
grey_http_metric(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

static void grey_http_sweep(struct grey_http *);

/* grey_http_listeners - the writer's listeners' counters for /metrics */
static void
grey_http_listeners(struct grey_http *gh, struct evbuffer *b)
{
	struct grey_listen_counts lc[3];
	const char *name[3] = { "http", "config", "ctl" };
	int i;

	grey_listen_counts(&gh->lst, &lc[0]);
	grey_listen_counts(grey_cfg_listen(grey_cfg_of(gh->g)), &lc[1]);
	grey_listen_counts(grey_ctl_listen(grey_ctl_of(gh->g)), &lc[2]);
	grey_http_metric(b, "spamd_listener_connections", "gauge",
	    "Connections open now on the writer's listeners.");
	for (i = 0; i < 3; i++)
		evbuffer_add_printf(b, "spamd_listener_connections{listener="
		    "\"%s\"} %ld\n", name[i], lc[i].open);
	grey_http_metric(b, "spamd_listener_refused_total", "counter",
	    "Connections closed at once: over the connection caps, not "
	    "loopback (config).");
	for (i = 0; i < 3; i++)
		evbuffer_add_printf(b, "spamd_listener_refused_total{listener="
		    "\"%s\"} %ld\n", name[i], lc[i].refused);
	grey_http_metric(b, "spamd_listener_timeouts_total", "counter",
	    "Connections closed at their whole-request deadline.");
	for (i = 0; i < 3; i++)
		evbuffer_add_printf(b, "spamd_listener_timeouts_total{listener="
		    "\"%s\"} %ld\n", name[i], lc[i].timedout);
	grey_http_metric(b, "spamd_listener_pauses_total", "counter",
	    "One-second accept pauses for want of descriptors or memory.");
	for (i = 0; i < 3; i++)
		evbuffer_add_printf(b, "spamd_listener_pauses_total{listener="
		    "\"%s\"} %ld\n", name[i], lc[i].paused);
}

/* grey_http_metrics - GET /metrics (Prometheus text format 0.0.4) */
static void
grey_http_metrics(struct grey_http *gh, struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();
	struct grey_http_eng e;
	struct grey_stats st;
	const struct psync_counters *pc = grey_sync_counters(gh->gs);
	struct gdb *db = grey_db(gh->g);
	struct gdb_err err = { 0 };
	const char *text;
	time_t now = time(NULL);
	int i;

	if (b == NULL) {
		grey_http_text(gh, req, 500, "Internal Server Error", GH_ERROR);
		return;
	}
	grey_stats_get(gh->g, &st);
	memset(&e, 0, sizeof(e));
	for (i = 0; i < st.engines; i++)
		if ((text = grey_engine_stats(gh->g, i)) != NULL)
			grey_http_eng_add(&e, text);

	grey_http_metric(b, "spamd_up", "gauge",
	    "1 while the writer answers.");
	evbuffer_add_printf(b, "spamd_up 1\n");
	grey_http_metric(b, "spamd_engines", "gauge",
	    "Engine processes: configured, open, reporting counters.");
	evbuffer_add_printf(b, "spamd_engines{state=\"configured\"} %d\n"
	    "spamd_engines{state=\"open\"} %d\n"
	    "spamd_engines{state=\"reporting\"} %d\n", st.engines,
	    st.engines_open, e.reporting);
	grey_http_metric(b, "spamd_engine_restarts_total", "counter",
	    "Engines started again after one died, and of those the ones "
	    "their seccomp filter killed (SIGSYS).");
	evbuffer_add_printf(b, "spamd_engine_restarts_total %ld\n"
	    "spamd_engine_restarts_total{cause=\"sigsys\"} %ld\n",
	    st.engine_restarts, st.engine_sigsys);
	grey_http_metric(b, "spamd_connections", "gauge",
	    "Connections open now, by class (black includes trapped).");
	evbuffer_add_printf(b, "spamd_connections{class=\"grey\"} %llu\n"
	    "spamd_connections{class=\"black\"} %llu\n",
	    e.conns >= e.black_conns ? e.conns - e.black_conns : 0,
	    e.black_conns);
	grey_http_metric(b, "spamd_connections_total", "counter",
	    "Connections accepted, by class at accept; dnsbl: greylisted "
	    "ones a DNSBL listing later tarpitted (also counted as grey).");
	evbuffer_add_printf(b, "spamd_connections_total{class=\"grey\"} %llu\n"
	    "spamd_connections_total{class=\"black\"} %llu\n"
	    "spamd_connections_total{class=\"trapped\"} %llu\n"
	    "spamd_connections_total{class=\"dnsbl\"} %llu\n", e.grey,
	    e.black, e.trapped, e.dnsbl_conns);
	grey_http_metric(b, "spamd_connections_closed_total", "counter",
	    "Connections closed (idle: closed for idling).");
	evbuffer_add_printf(b, "spamd_connections_closed_total{reason=\"all\"}"
	    " %llu\nspamd_connections_closed_total{reason=\"idle\"} %llu\n",
	    e.closed, e.idle_closed);
	grey_http_metric(b, "spamd_connections_refused_total", "counter",
	    "Connections refused: over --max-per-client, accept errors.");
	evbuffer_add_printf(b, "spamd_connections_refused_total{reason="
	    "\"per_client\"} %llu\nspamd_connections_refused_total{reason="
	    "\"accept_error\"} %llu\n", e.per_client_refused,
	    e.accept_errors);
	grey_http_metric(b, "spamd_sessions_trapped_total", "counter",
	    "Greylisted sessions switched to the tarpit by a trap result.");
	evbuffer_add_printf(b, "spamd_sessions_trapped_total %llu\n",
	    e.trapped_live);
	grey_http_metric(b, "spamd_engine_tuples_total", "counter",
	    "Tuples the engines sent to the writer, and dropped (queue "
	    "full).");
	evbuffer_add_printf(b, "spamd_engine_tuples_total{state=\"sent\"} "
	    "%llu\nspamd_engine_tuples_total{state=\"dropped\"} %llu\n",
	    e.tuples, e.tuples_dropped);
	grey_http_metric(b, "spamd_tarpit_seconds_total", "counter",
	    "Seconds closed connections spent in the tarpit (blacklisted, "
	    "trapped, DNSBL-listed): spammers' time wasted.");
	evbuffer_add_printf(b, "spamd_tarpit_seconds_total %llu\n",
	    e.tarpit_secs);
	if (e.nz > 0) {
		grey_http_metric(b, "spamd_dnsbl_queries_total", "counter",
		    "DNS queries sent to each DNSBL zone (cache misses).");
		for (i = 0; i < e.nz; i++)
			evbuffer_add_printf(b, "spamd_dnsbl_queries_total"
			    "{zone=\"%s\"} %llu\n", e.z[i].zone,
			    e.z[i].queries);
		grey_http_metric(b, "spamd_dnsbl_listed_total", "counter",
		    "Checks that found the client listed, by zone.");
		for (i = 0; i < e.nz; i++)
			evbuffer_add_printf(b, "spamd_dnsbl_listed_total"
			    "{zone=\"%s\"} %llu\n", e.z[i].zone,
			    e.z[i].listed);
		grey_http_metric(b, "spamd_dnsbl_timeouts_total", "counter",
		    "DNSBL queries that timed out, by zone.");
		for (i = 0; i < e.nz; i++)
			evbuffer_add_printf(b, "spamd_dnsbl_timeouts_total"
			    "{zone=\"%s\"} %llu\n", e.z[i].zone,
			    e.z[i].timeouts);
	}
	grey_http_metric(b, "spamd_bytes_out_total", "counter",
	    "Bytes written to SMTP clients.");
	evbuffer_add_printf(b, "spamd_bytes_out_total %llu\n", e.bytes_out);

	grey_http_metric(b, "spamd_tuples_total", "counter",
	    "Tuples decided by the writer.");
	evbuffer_add_printf(b, "spamd_tuples_total %ld\n", st.tuples);
	grey_http_metric(b, "spamd_tuple_results_total", "counter",
	    "Writer decisions by result.");
	evbuffer_add_printf(b, "spamd_tuple_results_total{result=\"new\"} %ld\n"
	    "spamd_tuple_results_total{result=\"grey\"} %ld\n"
	    "spamd_tuple_results_total{result=\"passed\"} %ld\n"
	    "spamd_tuple_results_total{result=\"white\"} %ld\n"
	    "spamd_tuple_results_total{result=\"trapped\"} %ld\n"
	    "spamd_tuple_results_total{result=\"trap\"} %ld\n", st.new,
	    st.grey, st.passes, st.white, st.trapped, st.traps);
	grey_http_metric(b, "spamd_passes_total", "counter",
	    "Tuples that passed: their host was whitelisted.");
	evbuffer_add_printf(b, "spamd_passes_total %ld\n", st.passes);
	grey_http_metric(b, "spamd_traps_total", "counter",
	    "Hosts trapped (spamtrap, allowed domains, -M).");
	evbuffer_add_printf(b, "spamd_traps_total %ld\n", st.traps);
	/* (added) bounds on what one client can make us store */
	grey_http_metric(b, "spamd_rcpt_refused_total", "counter",
	    "RCPTs answered 452 past --max-rcpt (no tuple recorded).");
	evbuffer_add_printf(b, "spamd_rcpt_refused_total %llu\n",
	    e.rcpt_refused);
	grey_http_metric(b, "spamd_tuples_refused_total", "counter",
	    "New tuples not stored: the client's --max-new-tuples was "
	    "spent, or the disk was below --min-free.");
	evbuffer_add_printf(b, "spamd_tuples_refused_total{reason="
	    "\"client-cap\"} %ld\nspamd_tuples_refused_total{reason="
	    "\"disk\"} %ld\n", st.refused_cap, st.refused_disk);
	grey_http_metric(b, "spamd_client_cap_addresses", "gauge",
	    "Client addresses (IPv4, IPv6 /64) counted in the current "
	    "--max-new-tuples window.");
	evbuffer_add_printf(b, "spamd_client_cap_addresses %ld\n",
	    st.cap_live);
	grey_http_metric(b, "spamd_client_cap_hits_total", "counter",
	    "Windows in which an address reached --max-new-tuples.");
	evbuffer_add_printf(b, "spamd_client_cap_hits_total %ld\n",
	    st.cap_hits);
	grey_http_metric(b, "spamd_client_cap_evictions_total", "counter",
	    "Counted addresses forgotten to make room in the fixed table.");
	evbuffer_add_printf(b, "spamd_client_cap_evictions_total %ld\n",
	    st.cap_evicted);
	grey_http_metric(b, "spamd_disk_low", "gauge",
	    "1 while the database's filesystem is below --min-free (new "
	    "tuples refused).");
	evbuffer_add_printf(b, "spamd_disk_low %d\n", st.disk_low);
	if (st.disk_free >= 0) {
		grey_http_metric(b, "spamd_disk_free_bytes", "gauge",
		    "Free space of the database's filesystem at the last "
		    "check.");
		evbuffer_add_printf(b, "spamd_disk_free_bytes %lld\n",
		    st.disk_free);
		grey_http_metric(b, "spamd_disk_min_free_bytes", "gauge",
		    "--min-free as bytes.");
		evbuffer_add_printf(b, "spamd_disk_min_free_bytes %lld\n",
		    st.disk_min);
	}

	if (db != NULL && (!gh->dbst_ok ||
	    now - gh->dbst_at >= GREY_HTTP_DBSTATS_SECS)) {
		if (gdb_stats(db, &gh->dbst, &err) == -1)
			grey_db_error(gh->g, "http_stats", &err);
		else {
			gh->dbst_ok = 1;
			gh->dbst_at = now;
		}
	}
	if (gh->dbst_ok) {
		grey_http_metric(b, "spamd_db_records", "gauge",
		    "Database records by type (whitelist size is white).");
		evbuffer_add_printf(b, "spamd_db_records{type=\"grey\"} %ld\n"
		    "spamd_db_records{type=\"white\"} %ld\n"
		    "spamd_db_records{type=\"trapped\"} %ld\n"
		    "spamd_db_records{type=\"spamtrap\"} %ld\n",
		    gh->dbst.grey, gh->dbst.white, gh->dbst.trapped,
		    gh->dbst.spamtrap);
	}
	grey_http_metric(b, "spamd_db_commits_total", "counter",
	    "Group commits made durable (gdb_flush).");
	evbuffer_add_printf(b, "spamd_db_commits_total %ld\n", st.flushes);
	grey_http_metric(b, "spamd_db_commit_seconds_total", "counter",
	    "Seconds spent making group commits durable.");
	evbuffer_add_printf(b, "spamd_db_commit_seconds_total %.6f\n",
	    st.flush_secs);
	grey_http_metric(b, "spamd_db_errors_total", "counter",
	    "Database errors, and reopens after them.");
	evbuffer_add_printf(b, "spamd_db_errors_total{kind=\"error\"} %ld\n"
	    "spamd_db_errors_total{kind=\"reopen\"} %ld\n", st.db_errors,
	    st.reopens);
	grey_http_metric(b, "spamd_db_expired_total", "counter",
	    "Records removed by the expiry scan.");
	evbuffer_add_printf(b, "spamd_db_expired_total %ld\n", st.expired);
	grey_http_metric(b, "spamd_firewall_operations_total", "counter",
	    "Firewall set changes queued.");
	evbuffer_add_printf(b, "spamd_firewall_operations_total %ld\n",
	    st.fw_ops);
	grey_http_metric(b, "spamd_firewall_errors_total", "counter",
	    "Firewall updates that failed (retried with backoff).");
	evbuffer_add_printf(b, "spamd_firewall_errors_total %ld\n",
	    st.fw_errors);
	grey_http_metric(b, "spamd_fw_table_missing", "gauge",
	    "1 while the firewall table is missing (found after a failed "
	    "update), else 0.");
	evbuffer_add_printf(b, "spamd_fw_table_missing %d\n",
	    st.fw_table_missing);
	grey_http_metric(b, "spamd_config_loads_total", "counter",
	    "Lists loaded on the config port, and messages refused.");
	evbuffer_add_printf(b, "spamd_config_loads_total{result=\"ok\"} %ld\n"
	    "spamd_config_loads_total{result=\"error\"} %ld\n", st.cfg_loads,
	    st.cfg_errors);

	if (pc != NULL) {
		grey_http_metric(b, "spamd_sync_packets_total", "counter",
		    "Sync packets by result.");
		evbuffer_add_printf(b,
		    "spamd_sync_packets_total{result=\"sent\"} %llu\n"
		    "spamd_sync_packets_total{result=\"send_error\"} %llu\n"
		    "spamd_sync_packets_total{result=\"received\"} %llu\n"
		    "spamd_sync_packets_total{result=\"accepted\"} %llu\n",
		    (unsigned long long)pc->sent,
		    (unsigned long long)pc->send_errors,
		    (unsigned long long)pc->received,
		    (unsigned long long)pc->accepted);
		for (i = 1; i < PSYNC_D_MAX; i++)
			evbuffer_add_printf(b, "spamd_sync_packets_total{result="
			    "\"dropped\",reason=\"%s\"} %llu\n",
			    psync_drop_name(i),
			    (unsigned long long)pc->dropped[i]);
		grey_http_metric(b, "spamd_sync_entries_total", "counter",
		    "Sync entries received, by what applying them did.");
		evbuffer_add_printf(b,
		    "spamd_sync_entries_total{result=\"applied\"} %llu\n"
		    "spamd_sync_entries_total{result=\"ignored\"} %llu\n"
		    "spamd_sync_entries_total{result=\"error\"} %llu\n",
		    (unsigned long long)pc->applied,
		    (unsigned long long)pc->ignored,
		    (unsigned long long)pc->apply_errors);
	}
	grey_http_metric(b, "spamd_http_requests_total", "counter",
	    "HTTP requests answered before this one, by result.");
	evbuffer_add_printf(b, "spamd_http_requests_total{code=\"200\"} %ld\n"
	    "spamd_http_requests_total{code=\"304\"} %ld\n"
	    "spamd_http_requests_total{code=\"4xx\"} %ld\n"
	    "spamd_http_requests_total{code=\"5xx\"} %ld\n",
	    gh->requests[GH_OK], gh->requests[GH_NOT_MODIFIED],
	    gh->requests[GH_NOT_FOUND], gh->requests[GH_ERROR]);

	grey_http_sweep(gh);
	grey_http_listeners(gh, b);
	grey_cluster_metrics(grey_cluster_of(gh->g), b);	/* (added) */

	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	grey_http_reply(gh, req, HTTP_OK, "OK", b, GH_OK);
	evbuffer_free(b);
}

/* grey_http_request - every request: route by path */
static void
grey_http_request(struct evhttp_request *req, void *arg)
{
	struct grey_http *gh = arg;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u != NULL ? evhttp_uri_get_path(u) : NULL;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, HEAD");
		grey_http_text(gh, req, 405, "Method Not Allowed",
		    GH_NOT_FOUND);
		return;
	}
	/* (added) catch-up and digests for our peers (grey_cluster.c) */
	if (path != NULL && strncmp(path, "/cluster/", 9) == 0 &&
	    grey_cluster_of(gh->g) != NULL) {
		grey_cluster_serve(grey_cluster_of(gh->g), gh, req, path);
		return;
	}
	if (path != NULL && strcmp(path, "/traplist") == 0)
		grey_http_traplist(gh, req);
	else if (path != NULL && strcmp(path, "/metrics") == 0)
		grey_http_metrics(gh, req);
	else
		grey_http_text(gh, req, HTTP_NOTFOUND, "Not Found",
		    GH_NOT_FOUND);
}

/* grey_http_conn_alive - 1 while evhttp still holds c's bufferevent
 * (bufferevent_free clears the callbacks; evhttp always sets an event
 * callback) */
static int
grey_http_conn_alive(const struct grey_http_conn *c)
{
	bufferevent_event_cb ev = NULL;

	bufferevent_getcb(c->bev, NULL, NULL, &ev, NULL);
	return ev != NULL;
}

/* grey_http_conn_release - forget c: drop our reference (closing the
 * socket if evhttp let it go) */
static void
grey_http_conn_release(struct grey_http_conn *c)
{
	LIST_REMOVE(c, entry);
	if (c->admitted)
		grey_listen_done(&c->gh->lst);
	event_free(c->timer);
	bufferevent_decref(c->bev);
	free(c);
}

/* grey_http_sweep - release the connections evhttp closed */
static void
grey_http_sweep(struct grey_http *gh)
{
	struct grey_http_conn *c, *next;

	for (c = LIST_FIRST(&gh->conns); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		if (!grey_http_conn_alive(c))
			grey_http_conn_release(c);
	}
}

/* grey_http_sweep_timer - release closed connections now and then */
static void
grey_http_sweep_timer(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	grey_http_sweep(arg);
}

/* grey_http_conn_close - end c now: evhttp reads EOF and frees it */
static void
grey_http_conn_close(struct grey_http_conn *c)
{
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

/* grey_http_conn_admit - a new connection's first turn (evhttp has set
 * its socket by now): within the caps, or closed at once */
static void
grey_http_conn_admit(struct grey_http_conn *c)
{
	struct grey_http *gh = c->gh;
	struct grey_http_conn *o;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct timeval tv = { gh->timeout, 0 };
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	int same = 0;

	strlcpy(c->peer, "unknown", sizeof(c->peer));
	if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->
			    sin_addr, c->peer, sizeof(c->peer));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->
			    sin6_addr, c->peer, sizeof(c->peer));
	}
	grey_http_sweep(gh);
	LIST_FOREACH(o, &gh->conns, entry)
		if (o->admitted && strcmp(o->peer, c->peer) == 0)
			same++;
	if (same >= GREY_HTTP_PER_PEER) {
		char why[64];

		snprintf(why, sizeof(why), "%d connections from this address",
		    same);
		grey_listen_refuse(&gh->lst, c->peer, why);
		grey_http_conn_close(c);
		return;
	}
	if (!grey_listen_admit(&gh->lst, c->peer)) {
		grey_http_conn_close(c);
		return;
	}
	c->admitted = 1;
	evtimer_add(c->timer, &tv);
}

/* grey_http_conn_of - our record of req's connection, NULL if none
 * (admitted or not: evhttp may read a request before the admission's
 * timer runs) */
static struct grey_http_conn *
grey_http_conn_of(struct grey_http *gh, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ?
	    evhttp_connection_get_bufferevent(evcon) : NULL;
	struct grey_http_conn *c;

	LIST_FOREACH(c, &gh->conns, entry)
		if (c->bev == bev)
			return c;
	return NULL;
}

/* grey_http_stream - req's answer is streamed from now on (grey.h) */
void
grey_http_stream(struct grey_http *gh, struct evhttp_request *req)
{
	struct grey_http_conn *c = grey_http_conn_of(gh, req);
	struct timeval tv = { gh->timeout, 0 };

	if (c == NULL)
		return;
	c->streaming = 1;
	c->outq = -1;
	/*
	 * why no evhttp timeouts: evhttp keeps reading (to see a close)
	 * with its per-read timeout, and the client sends nothing while it
	 * reads the answer: a long answer was cut GREY_HTTP_TIMEOUT after
	 * the request, moving or not. Its write timeout goes too: a socket
	 * with a big send buffer turns writable only once a third of it
	 * has left, which a slow but steady reader may take longer than
	 * that to free. The connection timer watches the send queue.
	 */
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	/* not yet admitted: the admission arms the timer */
	if (c->admitted)
		evtimer_add(c->timer, &tv);
}

/* grey_http_progress - a block of req's streamed answer left (grey.h) */
void
grey_http_progress(struct grey_http *gh, struct evhttp_request *req)
{
	struct grey_http_conn *c = grey_http_conn_of(gh, req);

	if (c != NULL && c->streaming)
		c->moved = 1;
}

/* grey_http_stream_moved - 1 if c's streamed answer moved since the
 * last look: a block left, or the socket's send queue changed */
static int
grey_http_stream_moved(struct grey_http_conn *c)
{
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	int n = -1, moved = c->moved;

	if (fd >= 0 && ioctl(fd, SIOCOUTQ, &n) == -1)
		n = -1;
	if (n != c->outq)
		moved = 1;
	c->moved = 0;
	c->outq = n;
	return moved;
}

/* grey_http_conn_timer - admit a new connection, or its deadline passed */
static void
grey_http_conn_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct grey_http_conn *c = arg;

	(void)fd;
	(void)ev;
	if (!grey_http_conn_alive(c)) {
		grey_http_conn_release(c);
		return;
	}
	if (!c->admitted) {
		grey_http_conn_admit(c);
		return;
	}
	if (c->streaming && grey_http_stream_moved(c)) {
		struct timeval tv = { c->gh->timeout, 0 };

		evtimer_add(c->timer, &tv);
		return;
	}
	/* the whole request took too long, or a streamed answer moved no
	 * block for that long (its own close logs outcome=closed) */
	grey_listen_timedout(&c->gh->lst, c->peer, 0, c->gh->timeout);
	grey_http_conn_close(c);
}

/* grey_http_bev - evhttp's new connection asks for its bufferevent: one
 * we keep a reference to, admitted on the next loop turn */
static struct bufferevent *
grey_http_bev(struct event_base *base, void *arg)
{
	struct grey_http *gh = arg;
	struct grey_http_conn *c;
	struct bufferevent *bev;
	struct timeval now = { 0, 0 };

	grey_http_sweep(gh);
	if ((bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) ==
	    NULL)
		return NULL;	/* evhttp makes its own (unbounded) */
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->timer = evtimer_new(base, grey_http_conn_timer, c)) == NULL) {
		free(c);
		return bev;
	}
	c->gh = gh;
	c->bev = bev;
	bufferevent_incref(bev);
	LIST_INSERT_HEAD(&gh->conns, c, entry);
	evtimer_add(c->timer, &now);
	return bev;
}

/* The endpoint for grey_http_accept_error: evhttp owns its listener's
 * callback argument. One endpoint per writer process. */
static struct grey_http *grey_http_the;

/* grey_http_accept_error - evhttp's accept failed: pause on EMFILE */
static void
grey_http_accept_error(struct evconnlistener *lev, void *arg)
{
	struct grey_http *gh = grey_http_the;
	int err = EVUTIL_SOCKET_ERROR();

	(void)lev;
	(void)arg;
	if (gh == NULL)
		return;
	if (!grey_listen_accept_failed(&gh->lst, err))
		log_warnx("event=http_accept error=\"%s\"", strerror(err));
}

/* grey_http_split - "ADDR:PORT" or "[V6]:PORT" into addr and port */
int
grey_http_split(const char *spec, char *addr, size_t addrsz, uint16_t *port)
{
	const char *c, *errstr = NULL;
	size_t n;

	if (spec[0] == '[') {
		if ((c = strchr(spec, ']')) == NULL || c[1] != ':')
			return -1;
		n = (size_t)(c - spec - 1);
		if (n == 0 || n >= addrsz)
			return -1;
		memcpy(addr, spec + 1, n);
		addr[n] = '\0';
		c++;
	} else {
		if ((c = strrchr(spec, ':')) == NULL || strchr(spec, ':') != c)
			return -1;
		n = (size_t)(c - spec);
		if (n == 0 || n >= addrsz)
			return -1;
		memcpy(addr, spec, n);
		addr[n] = '\0';
	}
	*port = (uint16_t)strtonum(c + 1, 1, 65535, &errstr);
	return errstr == NULL ? 0 : -1;
}

/* grey_http_prepare - check --http-listen and bind it (see grey.h) */
int
grey_http_prepare(struct grey_conf *conf, char *err, size_t errsz)
{
	struct addrinfo hints, *res = NULL;
	char addr[128], port[8];
	uint16_t p;
	int fd, rc, on = 1;

	conf->http_fd = -1;
	if (conf->http_listen == NULL)
		return 0;
	if (grey_http_split(conf->http_listen, addr, sizeof(addr), &p) == -1) {
		snprintf(err, errsz, "--http-listen %s: want ADDR:PORT or "
		    "[IPV6]:PORT", conf->http_listen);
		return -1;
	}
	snprintf(port, sizeof(port), "%u", p);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(addr, port, &hints, &res)) != 0) {
		snprintf(err, errsz, "--http-listen %s: %s", conf->http_listen,
		    gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
	    sizeof(on)) == -1 || (res->ai_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, 64) == -1) {
		snprintf(err, errsz, "--http-listen %s: %s", conf->http_listen,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	conf->http_fd = fd;
	return 0;
}

/* grey_http_start - serve on conf->http_fd (see grey.h) */
int
grey_http_start(struct grey_http **out, struct grey *g,
    struct event_base *base, const struct grey_conf *conf,
    struct grey_sync *gs)
{
	struct grey_http *gh;
	struct evhttp_bound_socket *bound;
	struct timeval sweep = { GREY_HTTP_SWEEP_SECS, 0 };

	*out = NULL;
	if (conf->http_listen == NULL || conf->http_fd < 0)
		return 0;
	if ((gh = calloc(1, sizeof(*gh))) == NULL ||
	    (gh->http = evhttp_new(base)) == NULL ||
	    grey_listen_init(&gh->lst, base, "http", GREY_HTTP_CONNS) == -1 ||
	    (gh->sweep_ev = event_new(base, -1, EV_PERSIST,
	    grey_http_sweep_timer, gh)) == NULL) {
		if (gh != NULL) {
			if (gh->http != NULL)
				evhttp_free(gh->http);
			grey_listen_free(&gh->lst);
		}
		free(gh);
		log_warnx("event=writer_start error=\"--http-listen: out of "
		    "memory\"");
		return -1;
	}
	gh->g = g;
	gh->base = base;
	gh->conf = conf;
	gh->gs = gs;
	gh->timeout = GREY_HTTP_TIMEOUT;
	if (getenv(GREY_HTTP_TIMEOUT_ENV) != NULL) {
		const char *errstr = NULL;
		int t = (int)strtonum(getenv(GREY_HTTP_TIMEOUT_ENV), 1,
		    GREY_HTTP_TIMEOUT, &errstr);

		if (errstr == NULL)
			gh->timeout = t;
	}
	LIST_INIT(&gh->conns);
	evhttp_set_bevcb(gh->http, grey_http_bev, gh);
	/* why: every method reaches grey_http_request, which answers 405
	 * with Allow; evhttp's own refusal is a 501 */
	evhttp_set_allowed_methods(gh->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_timeout(gh->http, gh->timeout);
	evhttp_set_max_headers_size(gh->http, GREY_HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(gh->http, 0);
	evhttp_set_gencb(gh->http, grey_http_request, gh);
	/* the socket main opened; evhttp_free closes this process's copy */
	if ((bound = evhttp_accept_socket_with_handle(gh->http,
	    conf->http_fd)) == NULL) {
		log_warnx("event=writer_start error=\"--http-listen %s: "
		    "cannot accept on the socket\"", conf->http_listen);
		grey_http_free(gh);
		return -1;
	}
	/* why our own error callback: evhttp's retries accept() at once,
	 * forever, while descriptors are out */
	gh->lst.lev = evhttp_bound_socket_get_listener(bound);
	grey_http_the = gh;
	evconnlistener_set_error_cb(gh->lst.lev, grey_http_accept_error);
	evtimer_add(gh->sweep_ev, &sweep);
	log_info("event=http_listen spec=%s", conf->http_listen);
	*out = gh;
	return 0;
}

/* grey_http_free - stop listening, free */
void
grey_http_free(struct grey_http *gh)
{
	if (gh == NULL)
		return;
	if (grey_http_the == gh)
		grey_http_the = NULL;
	if (gh->http != NULL)
		evhttp_free(gh->http);
	/* evhttp freed its connections: release ours */
	while (!LIST_EMPTY(&gh->conns))
		grey_http_conn_release(LIST_FIRST(&gh->conns));
	if (gh->sweep_ev != NULL)
		event_free(gh->sweep_ev);
	grey_listen_free(&gh->lst);
	free(gh);
}
