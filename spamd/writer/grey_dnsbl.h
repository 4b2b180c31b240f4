/*
 * grey_dnsbl.h - the writer's own DNSBL checker, for `greyctl explain`
 * on the control socket (grey_ctl.c). The engines decide with their own
 * checkers (engine_dns.c); this one is built from the same configuration
 * (--dnsbl, --dnsbl-file, --dnsbl-timeout, --dns-server) so that explain
 * names the zones the engines would find. It only answers explain: it
 * never changes what the daemon does to a client.
 */
#ifndef SPAMD_GREY_DNSBL_H
#define SPAMD_GREY_DNSBL_H

#include <stddef.h>

#include "spamd/common/dnsbl.h"

struct event_base;
struct grey_conf;
struct grey_dnsbl;
struct grey_dnsbl_query;

/* What one zone said about the address. */
enum grey_dnsbl_verdict {
	GREY_DNSBL_LISTED,	/* an answer that counts as a listing */
	GREY_DNSBL_NOT_LISTED,	/* NXDOMAIN, or an answer outside codes */
	GREY_DNSBL_TIMEOUT,	/* no answer within --dnsbl-timeout */
	GREY_DNSBL_ERROR,	/* any other DNS failure */
};

/* One zone's line of an explain answer. */
struct grey_dnsbl_zone {
	char		 zone[DNSBL_NAME_MAX];
	enum grey_dnsbl_verdict verdict;
	char		 answer[16];	/* first A answer, "" if none */
};

/* the answer of one query: nz zones in configuration order (nz 0 when
 * the zones changed under the query and could not be matched: rare) */
typedef void (*grey_dnsbl_fn)(void *arg, const struct grey_dnsbl_zone *z,
	    int nz);

/*
 * grey_dnsbl_new - a checker on base when conf names DNSBL zones (*out
 * NULL, 0 returned, when it does not). -1 with err when the resolver or
 * a zone is refused (main checked the same configuration before forking,
 * so only a race gets here).
 */
int	grey_dnsbl_new(struct grey_dnsbl **out, struct event_base *base,
	    const struct grey_conf *conf, char *err, size_t errsz);
/* grey_dnsbl_free - cancel every query (no callback) and free; NULL ok */
void	grey_dnsbl_free(struct grey_dnsbl *gd);
/* grey_dnsbl_load_text - SIGHUP: the zone file's text as the writer read
 * it for the engines; on error the old zones stay (logged). NULL ok */
void	grey_dnsbl_load_text(struct grey_dnsbl *gd, const char *text,
	    size_t len);
/* grey_dnsbl_nzones - zones in use (0 for NULL) */
int	grey_dnsbl_nzones(const struct grey_dnsbl *gd);
/* grey_dnsbl_timeout_ms - the time a query may take at most */
int	grey_dnsbl_timeout_ms(const struct grey_dnsbl *gd);
/*
 * grey_dnsbl_ask - look ip (canonical IPv4 or IPv6 text) up in every
 * zone; fn runs once from the loop, within the timeout. NULL (and no
 * callback) when there are no zones, ip is bad or memory ran out.
 */
struct grey_dnsbl_query *grey_dnsbl_ask(struct grey_dnsbl *gd,
	    const char *ip, grey_dnsbl_fn fn, void *arg);
/* grey_dnsbl_cancel - the asker is gone: fn never runs. Not from inside
 * fn (the query is freed when fn returns). NULL ok */
void	grey_dnsbl_cancel(struct grey_dnsbl_query *q);
/* grey_dnsbl_verdict_name - "yes", "no", "timeout", "error" */
const char *grey_dnsbl_verdict_name(enum grey_dnsbl_verdict v);

#endif /* SPAMD_GREY_DNSBL_H */
