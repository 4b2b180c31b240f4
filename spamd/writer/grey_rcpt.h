/*
 * grey_rcpt.h - trap hosts that mail invalid users (issue 10): the
 * valid-recipients file, the per-client invalid-recipient counter and
 * recipient verification against the real MX (grey_verify.c).
 *
 * Only the writer uses this. grey.c hands every greylisted RCPT to
 * grey_rcpt_tuple after gdb_tuple_seen (which has already handled the
 * spamtraps and the allowed domains). The recipient is then judged by
 *   1. the valid-recipients file (--valid-rcpt): an address listed, or
 *      a domain listed as "@domain", is valid; an address of a domain the
 *      file names (by any of its lines) but not listed is invalid; other
 *      domains are not covered by the file and go on to
 *   2. the real MX (--verify-mx): 2xx valid, 5xx invalid, anything else
 *      unknown. Asynchronous: the tuple is greylisted at once and the
 *      decision comes when the probe answers.
 * A client with --invalid-trap (default 2) distinct invalid recipients
 * within one greyexp period is trapped (grey_rcpt_hooks.trap); never a
 * client that is WHITE. The reply the client sees does not change.
 */
#ifndef SPAMD_GREY_RCPT_H
#define SPAMD_GREY_RCPT_H

#include <stddef.h>
#include <stdint.h>

#include "greydb/greydb.h"

#define RCPT_TRAP_DEFAULT	2	/* distinct invalid recipients */
#define RCPT_TRAP_MAX		32
#define RCPT_CLIENTS_MAX	200000	/* clients counted at once */

/* ---- The valid-recipients table (grey_rcpt.c) ---- */

/* What the table says of one recipient. */
enum rcpt_verdict {
	RCPT_NOT_COVERED = 0,	/* domain not named by the file */
	RCPT_VALID,		/* listed, or its domain listed as @domain */
	RCPT_INVALID,		/* its domain is named, it is not listed */
};

struct rcpt_table;

/*
 * rcpt_table_parse - build a table from buf (the file's bytes; name is
 * used in messages). One address or "@domain" a line, optional <>,
 * '#' starts a comment (at the start of a line or after a blank).
 * Keys are lowercased. A bad line fails the whole load: err gets
 * "name:line: what" of the first bad line and the number of bad lines.
 */
int	rcpt_table_parse(struct rcpt_table **out, const char *name,
	    const char *buf, size_t len, char *err, size_t errsz);
/* rcpt_table_load - rcpt_table_parse of the file at path */
int	rcpt_table_load(struct rcpt_table **out, const char *path, char *err,
	    size_t errsz);
/* rcpt_table_lookup - the table's verdict on addr (any case, <> ok) */
enum rcpt_verdict rcpt_table_lookup(const struct rcpt_table *t,
	    const char *addr);
/* rcpt_table_count - addresses and @domains loaded */
long	rcpt_table_count(const struct rcpt_table *t);
/* rcpt_table_free - safe on NULL */
void	rcpt_table_free(struct rcpt_table *t);

/* ---- The invalid-recipient counter (grey_rcpt.c) ---- */

struct rcpt_count;

/* rcpt_count_new - count up to threshold distinct recipients per client
 * within window seconds, at most max_clients clients (oldest dropped) */
struct rcpt_count *rcpt_count_new(int threshold, int64_t window,
	    long max_clients);
/*
 * rcpt_count_add - client ip sent RCPT to the invalid recipient to (both
 * normalised) at now. Returns 1 when ip reached the threshold: list
 * receives the recipients, comma-separated, and ip's count starts over;
 * 0 otherwise; -1 out of memory.
 */
int	rcpt_count_add(struct rcpt_count *c, const char *ip, const char *to,
	    int64_t now, char *list, size_t listsz);
/* rcpt_count_forget - drop what is counted for ip (it became WHITE) */
void	rcpt_count_forget(struct rcpt_count *c, const char *ip);
/* rcpt_count_clients - clients with something counted */
long	rcpt_count_clients(const struct rcpt_count *c);
/* rcpt_count_free - safe on NULL */
void	rcpt_count_free(struct rcpt_count *c);

/* ---- Recipient verification against the real MX (grey_verify.c) ---- */

enum grey_verify_res {
	VERIFY_UNKNOWN = 0,	/* 4xx, timeout, MX down, queue full */
	VERIFY_VALID,		/* 2xx at RCPT */
	VERIFY_INVALID,		/* 5xx at RCPT */
	VERIFY_PENDING,		/* asked; the callback will answer */
};

struct grey_verify_conf {
	const char	*mx;		/* "host", "host:port", "[v6]:port" */
	const char	*helo;		/* EHLO name */
	int		 pool;		/* connections at most (0 = 2) */
	double		 rate;		/* probes per second (0 = unlimited) */
	int		 timeout_secs;	/* per SMTP reply (0 = 10) */
	int		 idle_secs;	/* QUIT an idle connection (0 = 30) */
	int		 per_conn;	/* probes per connection (0 = 90) */
	int64_t		 ttl_valid;	/* cache seconds (0 = 86400) */
	int64_t		 ttl_invalid;	/* (0 = 3600) */
	long		 cache_max;	/* entries (0 = 200000) */
	long		 queue_max;	/* probes waiting (0 = 10000) */
};

/* What the verifier did so far (SIGUSR1, tests, benchmark). */
struct grey_verify_counts {
	long	queries, hits, misses, coalesced, probes, valid, invalid,
		unknown, connects, connect_errors, timeouts, dropped;
};

struct event_base;
struct grey_verify;

/* Answer to one query; res is VERIFY_VALID, _INVALID or _UNKNOWN (also
 * when the verifier is freed with the query still pending). */
typedef void (*grey_verify_fn)(int res, const char *addr, void *arg);

/* grey_verify_new - a verifier on base; -1 with err (bad --verify-mx) */
int	grey_verify_new(struct grey_verify **out, struct event_base *base,
	    const struct grey_verify_conf *conf, char *err, size_t errsz);
/*
 * grey_verify_query - is addr (normalised) a user of the MX? A cached
 * answer is returned at once (VERIFY_VALID/INVALID), as is
 * VERIFY_UNKNOWN when the MX is failing or the queue is full; otherwise
 * VERIFY_PENDING and fn(arg) is called later, exactly once.
 */
int	grey_verify_query(struct grey_verify *v, const char *addr,
	    grey_verify_fn fn, void *arg);
/* grey_verify_check_mx - is mx a valid --verify-mx (syntax, resolves)?
 * 0, or -1 with err naming the flag */
int	grey_verify_check_mx(const char *mx, char *err, size_t errsz);
/* grey_verify_counts - the counters so far */
void	grey_verify_counts(const struct grey_verify *v,
	    struct grey_verify_counts *out);
/* grey_verify_free - QUIT nothing, close, answer pending queries
 * VERIFY_UNKNOWN; safe on NULL */
void	grey_verify_free(struct grey_verify *v);

/* The verifier's cache, exposed for tests. */
struct grey_vcache;
/* grey_vcache_new - at most max entries (oldest dropped first) */
struct grey_vcache *grey_vcache_new(long max);
/* grey_vcache_get - the cached res of addr, VERIFY_UNKNOWN when absent
 * or expired (expire <= now) */
int	grey_vcache_get(struct grey_vcache *c, const char *addr, int64_t now);
/* grey_vcache_put - remember res for addr until expire */
int	grey_vcache_put(struct grey_vcache *c, const char *addr, int res,
	    int64_t expire, int64_t now);
/* grey_vcache_count - entries held (expired ones may still count) */
long	grey_vcache_count(const struct grey_vcache *c);
/* grey_vcache_free - safe on NULL */
void	grey_vcache_free(struct grey_vcache *c);

/* ---- The whole check, as the writer uses it (grey_rcpt.c) ---- */

/* What the writer does for this module (grey.c). */
struct grey_rcpt_hooks {
	/* 1 when ip is WHITE (or already TRAPPED): never count it; 0 no;
	 * -1 store error (then nothing is counted) */
	int	(*white)(void *arg, const char *ip, int64_t now);
	/* trap ip now; rcpts is the escaped, comma-separated list */
	void	(*trap)(void *arg, const char *ip, int64_t now,
		    const char *rcpts);
	void	*arg;
};

/* Settings, from struct grey_conf. */
struct grey_rcpt_conf {
	const char		*valid_file;	/* NULL: none */
	int			 threshold;	/* 0 = RCPT_TRAP_DEFAULT */
	int64_t			 window;	/* greyexp */
	struct grey_verify_conf	 verify;	/* verify.mx NULL: none */
};

struct grey_rcpt;

/* grey_rcpt_check - in main before the fork, so errors reach stderr:
 * the file loads (file:line on error) and --verify-mx parses; either may
 * be NULL. 0, or -1 with err */
int	grey_rcpt_check(const char *valid_file, const char *verify_mx,
	    char *err, size_t errsz);
/* grey_rcpt_new - load the file, start the verifier; *out is NULL (and
 * 0 returned) when neither is configured; -1 with err */
int	grey_rcpt_new(struct grey_rcpt **out, struct event_base *base,
	    const struct grey_rcpt_conf *conf,
	    const struct grey_rcpt_hooks *hooks, char *err, size_t errsz);
/*
 * grey_rcpt_tuple - one RCPT of client ip (canonical) to to (as sent)
 * was decided res (enum gdb_result) by the store. Greylisted tuples
 * (NEW, GREY) are judged; WHITE and PASSED clear ip's count.
 */
void	grey_rcpt_tuple(struct grey_rcpt *gr, const char *ip, const char *to,
	    int res, int64_t now);
/* grey_rcpt_invalid - ip mailed the invalid (normalised) recipient to:
 * count it, trap at the threshold unless ip is WHITE. 1 trapped. */
int	grey_rcpt_invalid(struct grey_rcpt *gr, const char *ip, const char *to,
	    int64_t now);
/* grey_rcpt_reload - SIGHUP: reload the file; on error keep the old
 * table and log file:line */
void	grey_rcpt_reload(struct grey_rcpt *gr);
/* grey_rcpt_counters - log this module's SIGUSR1 counters line */
void	grey_rcpt_counters(const struct grey_rcpt *gr);
/* grey_rcpt_free - safe on NULL */
void	grey_rcpt_free(struct grey_rcpt *gr);

#endif /* SPAMD_GREY_RCPT_H */
