/*
 * engine_dns.c - the engine's side of the DNS checks (dnsbl.h): DNSBL
 * zones and reverse DNS started at accept, the HELO name check started at
 * HELO/EHLO, their answers switching a greylisted session to the tarpit.
 *
 * Ordering. While a check that may tarpit the client is out (every
 * DNSBL lookup, and rDNS / HELO in tarpit mode), a RCPT or DATA command
 * waits for it (engine_dns_hold), until it answers or times out: so a
 * listed client is never greylisted and records no tuple. HELO, MAIL and
 * the rest are answered meanwhile. With the usual -S stutter the banner
 * alone outlasts a DNS answer; without it the wait is one DNS round trip,
 * at most --dnsbl-timeout. Nothing blocks: a held session simply has no
 * event armed until the check's callback runs it again.
 *
 * Modes. A DNSBL listing always tarpits. --rdns and --helo-check "log"
 * run the same lookups and only log and count; "tarpit" treats a client
 * with no PTR or an unconfirmed one (rDNS), or a HELO that is a bare
 * word, bad, ours or does not resolve, as blacklisted. A timeout or DNS
 * error is "unknown" and never tarpits. A check answering after another
 * one tarpitted the session still adds its message (if before DATA's
 * end); the HELO of an already tarpitted session is not checked.
 *
 * WHITE hosts (--dns-skip-white). The engine does not know WHITE hosts at
 * accept (the firewall passes them, so they normally never reach spamd).
 * When one does, the writer's answer to its first tuple says so; from then
 * on (yes, the default) no DNS answer tarpits that session and checks
 * still out are cancelled. A listing that arrived before that tuple has
 * already tarpitted the session (and so no tuple is sent at all).
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "spamd/common/dnsbl.h"
#include "spamd/engine/engine.h"
#include "spamd/common/log.h"

#define ENGINE_DNS_RDNS_MSG \
	"Client host [%A] rejected: no valid reverse DNS\\n"
#define ENGINE_DNS_HELO_MSG "Helo command rejected: Host not found\\n"
/* the tag of a DNS listing in a bl_match (only the message is used) */
#define ENGINE_DNS_TAG		"dns"
#define ENGINE_DNS_MAX_MSGS	(DNSBL_MAX_ZONES + 2)

/* Check counters beyond the per-zone ones dnsbl.c keeps. */
struct engine_dns_counts {
	uint64_t	 listed_conns;	/* sessions tarpitted by a zone */
	uint64_t	 rdns_checks, rdns_failed, rdns_unknown, rdns_tarpit;
	uint64_t	 helo_checks, helo_failed, helo_unknown, helo_tarpit;
	uint64_t	 helo_limited;	/* HELOs past ENGINE_DNS_MAX_HELO */
	uint64_t	 held;		/* commands that waited for DNS */
	uint64_t	 white_skipped;	/* checks dropped for WHITE hosts */
	uint64_t	 reloads, reload_errors;
};

/* The engine's checker. */
struct engine_dns {
	struct engine	*eng;
	const struct engine_conf *conf;
	struct dnsbl	*d;
	struct engine_dns_counts n;
};

/* One connection's checks and what they found. */
struct engine_dns_conn {
	struct engine_dns *ed;
	struct dnsbl_req *zreq;		/* DNSBL zones, NULL when done */
	struct dnsbl_req *rreq;		/* reverse DNS */
	struct dnsbl_req *hreq;		/* HELO name */
	char		**msg;		/* templates for the DATA reply */
	uint8_t		 nmsg;
	uint8_t		 held;		/* a command waits for us */
	uint8_t		 white;		/* WHITE: no more tarpit switches */
	uint8_t		 nhelo;		/* HELO names checked so far */
};

/*
 * HELO names checked per connection: each HELO/EHLO line names a new host
 * to look up, so without a cap one client line would be one DNS query
 * (names of its choosing, past the cache). Later HELOs keep the last
 * check's verdict.
 */
#define ENGINE_DNS_MAX_HELO	4

/* engine_dns_mode_name - a --rdns/--helo-check mode for logs */
static const char *
engine_dns_mode_name(int mode)
{
	switch (mode) {
	case ENGINE_DNS_LOG:	return "log";
	case ENGINE_DNS_TARPIT:	return "tarpit";
	}
	return "off";
}

/* engine_dns_wanted - 1 if any DNS check is configured */
static int
engine_dns_wanted(const struct engine_conf *conf)
{
	return conf->ndnsbl > 0 || conf->dnsbl_file != NULL ||
	    conf->rdns_mode != ENGINE_DNS_OFF ||
	    conf->helo_mode != ENGINE_DNS_OFF;
}

/* engine_dns_setup - a checker on base with the configured zones */
static struct dnsbl *
engine_dns_setup(struct event_base *base, const struct engine_conf *conf,
    char *err, size_t errsz)
{
	struct dnsbl *d;
	char what[512];
	int i;

	d = dnsbl_new(base, conf->dns_server, conf->dnsbl_timeout_ms, 0, err,
	    errsz);
	if (d == NULL)
		return NULL;
	for (i = 0; i < conf->ndnsbl; i++) {
		/* the error names the spec: several --dnsbl may be given */
		if (dnsbl_add_zone(d, conf->dnsbl_specs[i], NULL, 0, what,
		    sizeof(what)) == -1) {
			snprintf(err, errsz, "--dnsbl '%.300s': %s",
			    conf->dnsbl_specs[i], what);
			goto fail;
		}
	}
	if (conf->dnsbl_file != NULL &&
	    dnsbl_load_file(d, conf->dnsbl_file, err, errsz) == -1)
		goto fail;
	return d;
fail:
	dnsbl_free(d);
	return NULL;
}

/* engine_dns_conf_check - try the DNS configuration once, before forking */
int
engine_dns_conf_check(const struct engine_conf *conf, char *err,
    size_t errsz)
{
	struct event_base *base;
	struct dnsbl *d;

	if (!engine_dns_wanted(conf))
		return 0;
	if ((base = event_base_new()) == NULL) {
		snprintf(err, errsz, "event_base_new failed");
		return -1;
	}
	d = engine_dns_setup(base, conf, err, errsz);
	dnsbl_free(d);
	/* why: let evdns hand back what it still holds (dnsbl.h) */
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
	return d == NULL ? -1 : 0;
}

/* engine_dns_new - the engine's checker; before the chroot */
struct engine_dns *
engine_dns_new(struct engine *e)
{
	const struct engine_conf *conf = engine_conf_of(e);
	struct engine_dns *ed;
	char err[512];

	if (!engine_dns_wanted(conf))
		return NULL;
	if ((ed = calloc(1, sizeof(*ed))) == NULL)
		fatal("engine_dns_new");
	ed->eng = e;
	ed->conf = conf;
	/* main checked all of this before forking; only a race fails here */
	if ((ed->d = engine_dns_setup(engine_base(e), conf, err,
	    sizeof(err))) == NULL)
		fatalx("engine: %s", err);
	log_info("event=dns-start engine=%d zones=%d timeout_ms=%d "
	    "server=%s rdns=%s helo=%s skip_white=%s", conf->index,
	    dnsbl_nzones(ed->d), conf->dnsbl_timeout_ms > 0 ?
	    conf->dnsbl_timeout_ms : DNSBL_TIMEOUT_MS,
	    conf->dns_server != NULL ? conf->dns_server : "resolv.conf",
	    engine_dns_mode_name(conf->rdns_mode),
	    engine_dns_mode_name(conf->helo_mode),
	    conf->dns_skip_white ? "yes" : "no");
	return ed;
}

/* engine_dns_free - cancel every check and free the checker */
void
engine_dns_free(struct engine_dns *ed)
{
	if (ed == NULL)
		return;
	dnsbl_free(ed->d);
	/* why: evdns hands back its last buffers on one more turn */
	event_base_loop(engine_base(ed->eng), EVLOOP_NONBLOCK);
	free(ed);
}

/* engine_dns_add_msg - remember a reply template for after DATA */
static void
engine_dns_add_msg(struct engine_dns_conn *dc, const char *tmpl)
{
	char **m, *t;

	if (dc->nmsg >= ENGINE_DNS_MAX_MSGS)
		return;
	if ((t = strdup(tmpl)) == NULL)
		return;
	if ((m = realloc(dc->msg, (dc->nmsg + 1) * sizeof(*m))) == NULL) {
		free(t);
		return;
	}
	dc->msg = m;
	dc->msg[dc->nmsg++] = t;
}

/* engine_dns_resume - a check answered: go on if a command waited */
static void
engine_dns_resume(struct conn *c)
{
	struct engine_dns_conn *dc = c->dns;

	if (!dc->held)
		return;
	dc->held = 0;
	/* may close and free c */
	engine_run(c);
}

/* engine_dns_zones_cb - the DNSBL answers of one client */
static void
engine_dns_zones_cb(void *arg, const struct dnsbl_result *res)
{
	struct conn *c = arg;
	struct engine_dns_conn *dc = c->dns;
	struct engine_dns *ed = dc->ed;
	char zones[512];
	int i;

	/* the request is freed when we return; never cancel it */
	dc->zreq = NULL;
	/* why not only while greylisted: a session another check tarpitted
	 * first still gets every listing zone's message after DATA */
	if (res->nlisted > 0 && !dc->white) {
		zones[0] = '\0';
		for (i = 0; i < res->nlisted; i++) {
			engine_dns_add_msg(dc, res->hit[i].msg);
			if (i > 0)
				strlcat(zones, ",", sizeof(zones));
			strlcat(zones, res->hit[i].zone, sizeof(zones));
		}
		ed->n.listed_conns++;
		log_info("event=dnsbl-tarpit id=%llu ip=%s zones=%s",
		    (unsigned long long)c->s.id, res->addr, zones);
		engine_tarpit(c, SESSION_BLACK);
	}
	engine_dns_resume(c);
}

/* engine_dns_rdns_cb - forward-confirmed reverse DNS of one client */
static void
engine_dns_rdns_cb(void *arg, const struct rdns_result *res)
{
	struct conn *c = arg;
	struct engine_dns_conn *dc = c->dns;
	struct engine_dns *ed = dc->ed;
	char name[512];
	int failed = res->status == RDNS_NO_PTR ||
	    res->status == RDNS_NOT_CONFIRMED;
	int tarpit = failed && ed->conf->rdns_mode == ENGINE_DNS_TARPIT &&
	    !dc->white;

	dc->rreq = NULL;
	if (failed)
		ed->n.rdns_failed++;
	else if (res->status != RDNS_OK)
		ed->n.rdns_unknown++;
	/* the PTR name comes from whoever runs the client's reverse zone */
	log_info("event=rdns id=%llu ip=%s result=%s name=%s action=%s",
	    (unsigned long long)c->s.id, res->addr,
	    rdns_status_name(res->status), res->name[0] == '\0' ? "-" :
	    log_escape(res->name, strlen(res->name), 100, name, sizeof(name)),
	    tarpit ? "tarpit" : "none");
	if (tarpit) {
		ed->n.rdns_tarpit++;
		engine_dns_add_msg(dc, ENGINE_DNS_RDNS_MSG);
		engine_tarpit(c, SESSION_BLACK);
	}
	engine_dns_resume(c);
}

/* engine_dns_helo_cb - the HELO/EHLO name check of one session */
static void
engine_dns_helo_cb(void *arg, const struct helo_result *res)
{
	struct conn *c = arg;
	struct engine_dns_conn *dc = c->dns;
	struct engine_dns *ed = dc->ed;
	char ip[64], name[512];
	int failed = res->status == HELO_BAD_SYNTAX ||
	    res->status == HELO_OURS || res->status == HELO_NOT_FOUND;
	int tarpit = failed && ed->conf->helo_mode == ENGINE_DNS_TARPIT &&
	    !dc->white;

	dc->hreq = NULL;
	if (failed)
		ed->n.helo_failed++;
	else if (res->status != HELO_OK)
		ed->n.helo_unknown++;
	log_info("event=helo-check id=%llu ip=%s helo=%s result=%s action=%s",
	    (unsigned long long)c->s.id, session_ip(&c->s, ip, sizeof(ip)),
	    log_escape(res->name != NULL ? res->name : "", res->name != NULL ?
	    strlen(res->name) : 0, 100, name, sizeof(name)),
	    helo_status_name(res->status), tarpit ? "tarpit" : "none");
	if (tarpit) {
		ed->n.helo_tarpit++;
		engine_dns_add_msg(dc, ENGINE_DNS_HELO_MSG);
		engine_tarpit(c, SESSION_BLACK);
	}
	engine_dns_resume(c);
}

/* engine_dns_sa - the session's client as a socket address */
static void
engine_dns_sa(const struct conn *c, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (c->s.addr.family == AF_INET) {
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, c->s.addr.a, 4);
	} else {
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, c->s.addr.a, 16);
	}
}

/* engine_dns_conn_of - c's check state, made on first use */
static struct engine_dns_conn *
engine_dns_conn_of(struct engine_dns *ed, struct conn *c)
{
	if (c->dns == NULL && (c->dns = calloc(1, sizeof(*c->dns))) != NULL)
		c->dns->ed = ed;
	return c->dns;
}

/* engine_dns_start - a new connection: DNSBL zones and reverse DNS */
void
engine_dns_start(struct engine_dns *ed, struct conn *c)
{
	struct engine_dns_conn *dc;
	struct sockaddr_storage ss;

	/* only a greylisted client can be switched to the tarpit */
	if (ed == NULL || c->s.cls != SESSION_GREY)
		return;
	if (dnsbl_nzones(ed->d) == 0 && ed->conf->rdns_mode == ENGINE_DNS_OFF)
		return;
	if ((dc = engine_dns_conn_of(ed, c)) == NULL)
		return;		/* out of memory: no checks, greylisted */
	engine_dns_sa(c, &ss);
	if (dnsbl_nzones(ed->d) > 0)
		dc->zreq = dnsbl_check(ed->d, (struct sockaddr *)&ss,
		    engine_dns_zones_cb, c);
	if (ed->conf->rdns_mode != ENGINE_DNS_OFF) {
		dc->rreq = rdns_check(ed->d, (struct sockaddr *)&ss,
		    engine_dns_rdns_cb, c);
		ed->n.rdns_checks++;
	}
}

/* engine_dns_helo - check the name the session just took */
void
engine_dns_helo(struct engine_dns *ed, struct conn *c)
{
	struct engine_dns_conn *dc;
	struct sockaddr_storage local;
	const struct sockaddr *ours[1];
	socklen_t sl = sizeof(local);
	int nours = 0;

	if (ed == NULL || ed->conf->helo_mode == ENGINE_DNS_OFF ||
	    c->s.helo == NULL || c->s.cls != SESSION_GREY)
		return;
	if ((dc = engine_dns_conn_of(ed, c)) == NULL || dc->white)
		return;
	if (dc->nhelo >= ENGINE_DNS_MAX_HELO) {
		ed->n.helo_limited++;
		return;
	}
	dc->nhelo++;
	/* a second HELO replaces the first one's check */
	dnsbl_cancel(dc->hreq);
	dc->hreq = NULL;
	/* our own address, as the client reached it, is never a valid HELO */
	if (getsockname(c->fd, (struct sockaddr *)&local, &sl) == 0) {
		ours[0] = (struct sockaddr *)&local;
		nours = 1;
	}
	dc->hreq = helo_check(ed->d, c->s.helo, ed->conf->hostname, ours,
	    nours, engine_dns_helo_cb, c);
	ed->n.helo_checks++;
}

/* engine_dns_end - the connection closes: its checks are dropped */
void
engine_dns_end(struct conn *c)
{
	struct engine_dns_conn *dc = c->dns;
	int i;

	if (dc == NULL)
		return;
	/* no-ops for a request whose callback is running (dnsbl.h) */
	dnsbl_cancel(dc->zreq);
	dnsbl_cancel(dc->rreq);
	dnsbl_cancel(dc->hreq);
	for (i = 0; i < dc->nmsg; i++)
		free(dc->msg[i]);
	free(dc->msg);
	free(dc);
	c->dns = NULL;
}

/* engine_dns_hold - 1 if c's next command must wait for a check */
int
engine_dns_hold(struct conn *c)
{
	struct engine_dns_conn *dc = c->dns;
	const struct engine_conf *conf;

	if (dc == NULL || dc->white || c->s.cls != SESSION_GREY)
		return 0;
	/*
	 * why only RCPT and DATA: they record the tuple or give the
	 * greylisted 451; HELO, MAIL, NOOP, RSET and QUIT are answered
	 * meanwhile, so a slow DNS server costs little. A greylisted session
	 * is never in the DATA state, so these bytes are always a command.
	 */
	if (!session_cmd_is(c->ibuf, c->ilen, "RCPT") &&
	    !session_cmd_is(c->ibuf, c->ilen, "DATA"))
		return 0;
	conf = dc->ed->conf;
	if (dc->zreq != NULL ||
	    (dc->rreq != NULL && conf->rdns_mode == ENGINE_DNS_TARPIT) ||
	    (dc->hreq != NULL && conf->helo_mode == ENGINE_DNS_TARPIT)) {
		if (!dc->held)
			dc->ed->n.held++;
		dc->held = 1;
		return 1;
	}
	return 0;
}

/* engine_dns_lookup - the DNS listings' messages, after the lists' */
void
engine_dns_lookup(const struct conn *c, struct bl_match *m)
{
	const struct engine_dns_conn *dc = c->dns;
	int i;

	if (dc == NULL)
		return;
	for (i = 0; i < dc->nmsg && m->n < BL_MAX_LISTS; i++) {
		m->tag[m->n] = ENGINE_DNS_TAG;
		m->msg[m->n] = dc->msg[i];
		m->n++;
	}
}

/* engine_dns_white - the client is WHITE: with --dns-skip-white, stop */
void
engine_dns_white(struct engine_dns *ed, struct conn *c)
{
	struct engine_dns_conn *dc;
	char ip[64];

	if (ed == NULL || !ed->conf->dns_skip_white)
		return;
	/* made if missing: a later HELO must not be checked either */
	if ((dc = engine_dns_conn_of(ed, c)) == NULL || dc->white)
		return;
	dc->white = 1;
	if (dc->zreq != NULL || dc->rreq != NULL || dc->hreq != NULL)
		ed->n.white_skipped++;
	log_debug("event=dns-skip-white id=%llu ip=%s pending=%d",
	    (unsigned long long)c->s.id, session_ip(&c->s, ip, sizeof(ip)),
	    (dc->zreq != NULL) + (dc->rreq != NULL) + (dc->hreq != NULL));
	dnsbl_cancel(dc->zreq);
	dnsbl_cancel(dc->rreq);
	dnsbl_cancel(dc->hreq);
	dc->zreq = dc->rreq = dc->hreq = NULL;
	if (dc->held) {
		dc->held = 0;
		engine_run(c);
	}
}

/* engine_dns_reload - the zone file's text from the writer (SIGHUP) */
void
engine_dns_reload(struct engine_dns *ed, const char *text, size_t len)
{
	char err[512];

	if (ed == NULL || ed->conf->dnsbl_file == NULL)
		return;
	/* on error dnsbl keeps the zones it has */
	if (dnsbl_load_text(ed->d, ed->conf->dnsbl_file, text, len, err,
	    sizeof(err)) == -1) {
		ed->n.reload_errors++;
		log_warnx("event=dnsbl-reload engine=%d ok=0 error=\"%s\"",
		    ed->conf->index, err);
		return;
	}
	ed->n.reloads++;
	log_info("event=dnsbl-reload engine=%d ok=1 file=%s zones=%d",
	    ed->conf->index, ed->conf->dnsbl_file, dnsbl_nzones(ed->d));
}

/* engine_dns_stats - one line per zone and one for the other checks */
void
engine_dns_stats(struct engine_dns *ed)
{
	struct dnsbl_zone_stats st[DNSBL_MAX_ZONES];
	int i, n, now, peak;

	if (ed == NULL)
		return;
	n = dnsbl_stats(ed->d, st, DNSBL_MAX_ZONES);
	for (i = 0; i < n; i++)
		log_info("event=stats-dnsbl engine=%d zone=%s queries=%llu "
		    "cache_hits=%llu coalesced=%llu listed=%llu "
		    "timeouts=%llu errors=%llu", ed->conf->index, st[i].zone,
		    (unsigned long long)st[i].queries,
		    (unsigned long long)st[i].cache_hits,
		    (unsigned long long)st[i].coalesced,
		    (unsigned long long)st[i].listed,
		    (unsigned long long)st[i].timeouts,
		    (unsigned long long)st[i].errors);
	dnsbl_inflight(ed->d, &now, &peak);
	log_info("event=stats-dns engine=%d zones=%d listed_conns=%llu "
	    "held=%llu rdns_checks=%llu rdns_failed=%llu rdns_unknown=%llu "
	    "rdns_tarpit=%llu helo_checks=%llu helo_failed=%llu "
	    "helo_unknown=%llu helo_tarpit=%llu helo_limited=%llu "
	    "white_skipped=%llu "
	    "reloads=%llu reload_errors=%llu inflight=%d inflight_peak=%d",
	    ed->conf->index, n, (unsigned long long)ed->n.listed_conns,
	    (unsigned long long)ed->n.held,
	    (unsigned long long)ed->n.rdns_checks,
	    (unsigned long long)ed->n.rdns_failed,
	    (unsigned long long)ed->n.rdns_unknown,
	    (unsigned long long)ed->n.rdns_tarpit,
	    (unsigned long long)ed->n.helo_checks,
	    (unsigned long long)ed->n.helo_failed,
	    (unsigned long long)ed->n.helo_unknown,
	    (unsigned long long)ed->n.helo_tarpit,
	    (unsigned long long)ed->n.helo_limited,
	    (unsigned long long)ed->n.white_skipped,
	    (unsigned long long)ed->n.reloads,
	    (unsigned long long)ed->n.reload_errors, now, peak);
}

/* engine_dns_stats_text - (added) the DNSBL counters for the stats line */
void
engine_dns_stats_text(struct engine_dns *ed, char *buf, size_t sz)
{
	struct dnsbl_zone_stats st[DNSBL_MAX_ZONES];
	size_t len = strlen(buf);
	int i, n;

	if (ed == NULL)
		return;
	snprintf(buf + len, sz - len, " dnsbl_conns=%llu",
	    (unsigned long long)ed->n.listed_conns);
	n = dnsbl_stats(ed->d, st, DNSBL_MAX_ZONES);
	for (i = 0; i < n; i++) {
		len = strlen(buf);
		/* why ':' as separator: zone names never hold it, and the
		 * token stays one key=value word for the writer's parser */
		if (strchr(st[i].zone, ':') != NULL ||
		    strchr(st[i].zone, ' ') != NULL)
			continue;
		snprintf(buf + len, sz - len, " dnsbl=%s:%llu:%llu:%llu",
		    st[i].zone, (unsigned long long)st[i].queries,
		    (unsigned long long)st[i].listed,
		    (unsigned long long)st[i].timeouts);
	}
}
