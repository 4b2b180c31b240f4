/*
 * grey_dnsbl.c - the writer's DNSBL checker for `explain` on the control
 * socket (grey_dnsbl.h). The engines ask DNSBLs for every client and keep
 * the answers to themselves; the writer builds its own checker from the
 * same options, asks on request, and reloads the zone file with the text
 * it reads for the engines on SIGHUP (grey.c), so both see the same zones.
 *
 * The writer is neither chrooted nor under seccomp (sandbox.c filters the
 * engines only): evdns opens its UDP sockets here as in any process.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "spamd/common/dnsbl.h"
#include "spamd/writer/grey.h"
#include "spamd/writer/grey_dnsbl.h"
#include "spamd/common/log.h"

/* answers kept by the writer's checker: explain asks for few addresses */
#define GREY_DNSBL_CACHE	1024

/* The writer's checker. */
struct grey_dnsbl {
	struct event_base	*base;
	const struct grey_conf	*conf;
	struct dnsbl		*d;
	TAILQ_HEAD(, grey_dnsbl_query) queries;
	long			 reloads, reload_errors;
};

/* One explain lookup in flight. */
struct grey_dnsbl_query {
	TAILQ_ENTRY(grey_dnsbl_query) entry;
	struct grey_dnsbl	*gd;
	struct dnsbl_req	*req;
	grey_dnsbl_fn		 fn;
	void			*arg;
	int			 nz;
	struct grey_dnsbl_zone	 z[DNSBL_MAX_ZONES];	/* names at ask time */
};

/* grey_dnsbl_new - a checker with the engines' zones (grey_dnsbl.h) */
int
grey_dnsbl_new(struct grey_dnsbl **out, struct event_base *base,
    const struct grey_conf *conf, char *err, size_t errsz)
{
	struct grey_dnsbl *gd;
	char what[512];
	int i;

	*out = NULL;
	if (conf->ndnsbl == 0 && conf->dnsbl_file == NULL)
		return 0;
	if ((gd = calloc(1, sizeof(*gd))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	gd->base = base;
	gd->conf = conf;
	TAILQ_INIT(&gd->queries);
	gd->d = dnsbl_new(base, conf->dns_server, conf->dnsbl_timeout_ms,
	    GREY_DNSBL_CACHE, err, errsz);
	if (gd->d == NULL)
		goto fail;
	for (i = 0; i < conf->ndnsbl; i++) {
		/* the error names the spec: several --dnsbl may be given */
		if (dnsbl_add_zone(gd->d, conf->dnsbl_specs[i], NULL, 0, what,
		    sizeof(what)) == -1) {
			snprintf(err, errsz, "--dnsbl '%.300s': %s",
			    conf->dnsbl_specs[i], what);
			goto fail;
		}
	}
	if (conf->dnsbl_file != NULL &&
	    dnsbl_load_file(gd->d, conf->dnsbl_file, err, errsz) == -1)
		goto fail;
	log_info("event=dnsbl-start proc=writer zones=%d timeout_ms=%d "
	    "server=%s", dnsbl_nzones(gd->d), grey_dnsbl_timeout_ms(gd),
	    conf->dns_server != NULL ? conf->dns_server : "resolv.conf");
	*out = gd;
	return 0;
fail:
	grey_dnsbl_free(gd);
	return -1;
}

/* grey_dnsbl_free - cancel what is in flight and free the checker */
void
grey_dnsbl_free(struct grey_dnsbl *gd)
{
	struct grey_dnsbl_query *q;

	if (gd == NULL)
		return;
	while ((q = TAILQ_FIRST(&gd->queries)) != NULL)
		grey_dnsbl_cancel(q);
	if (gd->d != NULL) {
		dnsbl_free(gd->d);
		/* why: evdns hands back its last buffers on one more turn */
		event_base_loop(gd->base, EVLOOP_NONBLOCK);
	}
	free(gd);
}

/* grey_dnsbl_load_text - the zone file again, after SIGHUP */
void
grey_dnsbl_load_text(struct grey_dnsbl *gd, const char *text, size_t len)
{
	char err[512];

	if (gd == NULL || gd->conf->dnsbl_file == NULL)
		return;
	/* on error dnsbl keeps the zones it has */
	if (dnsbl_load_text(gd->d, gd->conf->dnsbl_file, text, len, err,
	    sizeof(err)) == -1) {
		gd->reload_errors++;
		log_warnx("event=dnsbl-reload proc=writer-explain ok=0 "
		    "error=\"%s\"", err);
		return;
	}
	gd->reloads++;
	log_info("event=dnsbl-reload proc=writer-explain ok=1 file=%s "
	    "zones=%d", gd->conf->dnsbl_file, dnsbl_nzones(gd->d));
}

/* grey_dnsbl_nzones - zones in use */
int
grey_dnsbl_nzones(const struct grey_dnsbl *gd)
{
	return gd != NULL ? dnsbl_nzones(gd->d) : 0;
}

/* grey_dnsbl_timeout_ms - the configured limit, or dnsbl's default */
int
grey_dnsbl_timeout_ms(const struct grey_dnsbl *gd)
{
	if (gd == NULL || gd->conf->dnsbl_timeout_ms <= 0)
		return DNSBL_TIMEOUT_MS;
	return gd->conf->dnsbl_timeout_ms;
}

/* grey_dnsbl_query_free - unlink and free one query */
static void
grey_dnsbl_query_free(struct grey_dnsbl_query *q)
{
	TAILQ_REMOVE(&q->gd->queries, q, entry);
	free(q);
}

/* grey_dnsbl_cb - every zone answered or the time is up */
static void
grey_dnsbl_cb(void *arg, const struct dnsbl_result *res)
{
	struct grey_dnsbl_query *q = arg;
	const struct dnsbl_answer *ans;
	struct grey_dnsbl_zone *z;
	struct in_addr ia;
	int i, k, nz = q->nz;

	/* the zones were taken at ask time in this same order; a mismatch
	 * would mean the zones changed in between (a reload) */
	if (res->nzones != q->nz || res->ans == NULL)
		nz = 0;
	for (i = 0; i < nz; i++) {
		z = &q->z[i];
		if (strcmp(res->zone[i], z->zone) != 0) {
			nz = 0;
			break;
		}
		ans = &res->ans[i];
		switch (ans->status) {
		case DNSBL_ST_TIMEOUT:
			z->verdict = GREY_DNSBL_TIMEOUT;
			continue;
		case DNSBL_ST_ERROR:
			z->verdict = GREY_DNSBL_ERROR;
			continue;
		default:
			z->verdict = GREY_DNSBL_NOT_LISTED;
			break;
		}
		if (ans->status == DNSBL_ST_FOUND && ans->na > 0) {
			ia.s_addr = htonl(ans->a[0]);
			inet_ntop(AF_INET, &ia, z->answer, sizeof(z->answer));
		}
		/* dnsbl decided what lists (codes, 127.255.255.x) */
		for (k = 0; k < res->nlisted; k++) {
			if (strcmp(res->hit[k].zone, z->zone) == 0) {
				z->verdict = GREY_DNSBL_LISTED;
				strlcpy(z->answer, res->hit[k].answer,
				    sizeof(z->answer));
				break;
			}
		}
	}
	q->fn(q->arg, q->z, nz);
	grey_dnsbl_query_free(q);
}

/* grey_dnsbl_ask - start one explain lookup (grey_dnsbl.h) */
struct grey_dnsbl_query *
grey_dnsbl_ask(struct grey_dnsbl *gd, const char *ip, grey_dnsbl_fn fn,
    void *arg)
{
	struct dnsbl_zone_stats st[DNSBL_MAX_ZONES];
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct grey_dnsbl_query *q;
	int i;

	if (gd == NULL || dnsbl_nzones(gd->d) == 0)
		return NULL;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		return NULL;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->gd = gd;
	q->fn = fn;
	q->arg = arg;
	q->req = dnsbl_check(gd->d, (struct sockaddr *)&ss, grey_dnsbl_cb, q);
	if (q->req == NULL) {
		free(q);
		return NULL;
	}
	/* the request took d's zones in this order just now (no callback
	 * runs from inside dnsbl_check) */
	q->nz = dnsbl_stats(gd->d, st, DNSBL_MAX_ZONES);
	for (i = 0; i < q->nz; i++)
		strlcpy(q->z[i].zone, st[i].zone, sizeof(q->z[i].zone));
	TAILQ_INSERT_TAIL(&gd->queries, q, entry);
	return q;
}

/* grey_dnsbl_cancel - drop a query before its answer */
void
grey_dnsbl_cancel(struct grey_dnsbl_query *q)
{
	if (q == NULL)
		return;
	dnsbl_cancel(q->req);
	grey_dnsbl_query_free(q);
}

/* grey_dnsbl_verdict_name - a verdict as explain's listed= value */
const char *
grey_dnsbl_verdict_name(enum grey_dnsbl_verdict v)
{
	switch (v) {
	case GREY_DNSBL_LISTED:		return "yes";
	case GREY_DNSBL_NOT_LISTED:	return "no";
	case GREY_DNSBL_TIMEOUT:	return "timeout";
	case GREY_DNSBL_ERROR:		return "error";
	}
	return "error";
}
