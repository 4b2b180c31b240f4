/*
 * dnsbl.h - live DNS checks for the engine: DNS blacklists (RBL zones),
 * forward-confirmed reverse DNS and HELO name checks. Every lookup goes
 * through evdns on the engine's event base; nothing here ever blocks.
 *
 * Zones are configured one per line (file) or per --dnsbl flag as
 *   zone[=codes][;message]
 * e.g. "zen.spamhaus.org=127.0.0.2,127.0.0.3;Listed at Spamhaus: %A".
 * codes: comma-separated IPv4 answers that count as a listing (none: any
 * answer counts). message: a reply template for bl_expand (blacklist.h);
 * the older "%d.%d.%d.%d" form is translated to %A at load time, any other
 * '%' sequence is refused then, with file:line.
 *
 * Requests (dnsbl_check, rdns_check, helo_check) call their callback
 * exactly once, from the event loop, never from inside the call that
 * started them - unless cancelled first with dnsbl_cancel, after which
 * the callback never runs (the session that asked may be gone).
 */
#ifndef SPAMD_DNSBL_H
#define SPAMD_DNSBL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#define DNSBL_NAME_MAX		256	/* a DNS name, NUL included */
#define DNSBL_MAX_ZONES		32	/* zones in use at once */
#define DNSBL_MAX_CODES		16	/* codes after '=' */
#define DNSBL_LINE_MAX		8192	/* one config line or --dnsbl */
#define DNSBL_MAX_ANSWERS	8	/* A records kept per answer */
#define DNSBL_TIMEOUT_MS	5000	/* default lookup time limit */
#define DNSBL_CACHE_DEFAULT	65536	/* default cache entries */
#define DNSBL_TTL_MIN		10	/* answers are cached at least... */
#define DNSBL_TTL_MAX		86400	/* ...and at most this long (s) */
#define DNSBL_NEG_TTL		300	/* NXDOMAIN without an SOA minimum */
#define DNSBL_NEG_TTL_MAX	3600	/* bound on a negative answer's TTL */

struct event_base;
struct dnsbl;
struct dnsbl_req;

/* --- zone specs (dnsbl_conf.c) -------------------------------------- */

/* One parsed "zone[=codes][;message]". */
struct dnsbl_spec {
	char		 zone[DNSBL_NAME_MAX];	/* lower case, no final dot */
	int		 ncodes;		/* 0: any answer lists */
	uint32_t	 codes[DNSBL_MAX_CODES];/* host order */
	char		*msg;		/* checked template (%A form), owned */
};

/*
 * dnsbl_spec_parse - parse one zone spec into out (out->msg allocated;
 * free with dnsbl_spec_clear). Without a message the default is
 * "Blocked: %A is listed at ZONE". On error returns -1 and writes
 * "FILE:LINE: what at byte N" (or "FILE: ..." when line is 0, for a
 * flag: dnsbl_spec_parse(s, "--dnsbl", 0, ...)) to err; file may be NULL.
 */
int	dnsbl_spec_parse(const char *spec, const char *file, int line,
	    struct dnsbl_spec *out, char *err, size_t errsz);
/* dnsbl_spec_clear - free what a parsed spec holds */
void	dnsbl_spec_clear(struct dnsbl_spec *spec);
/*
 * dnsbl_conf_read - parse a zone file into out[0..max-1]; *n gets the
 * count. A zone named twice, more than max zones, an unreadable file or
 * any bad line is an error "path:line: what" (nothing kept: out is
 * cleared). 0 ok, -1 error.
 */
int	dnsbl_conf_read(const char *path, struct dnsbl_spec *out, int max,
	    int *n, char *err, size_t errsz);
/* dnsbl_conf_read_text - the same for a file's text in memory (len
 * bytes, no NUL needed); name is used in errors */
int	dnsbl_conf_read_text(const char *name, const char *text, size_t len,
	    struct dnsbl_spec *out, int max, int *n, char *err, size_t errsz);
/*
 * dnsbl_conf_slurp - read a zone file whole (at most max bytes, no NUL)
 * and check it like dnsbl_conf_read: the text for dnsbl_load_text in
 * the chrooted engine (the writer reads it on SIGHUP). malloc'd,
 * NUL-terminated text, *len without the NUL; NULL with err
 * "path: what" or "path:line: what".
 */
char	*dnsbl_conf_slurp(const char *path, size_t max, size_t *len,
	    char *err, size_t errsz);
/* a zone file's largest size for dnsbl_conf_slurp */
#define DNSBL_FILE_MAX		(1u << 20)
/*
 * dnsbl_translate_msg - turn an operator message into a template for
 * bl_expand: "%d.%d.%d.%d" becomes %A; %A %% \n \" \\ stay; anything else
 * is an error "what at byte N" (N counted in msg). out gets at most
 * BL_MSG_MAX bytes. 0 ok, -1 error.
 */
int	dnsbl_translate_msg(const char *msg, size_t len, char *out,
	    size_t outsz, char *err, size_t errsz);

/* --- query names and the cache (dnsbl.c) ----------------------------- */

/*
 * dnsbl_qname - the name to look up for addr in zone: reversed octets
 * (4.3.2.1.zone) for IPv4 and v4-mapped IPv6, reversed nibbles (32 labels)
 * for IPv6; zone NULL or "" gives the bare reversed labels. -1 when it
 * does not fit or the family is unknown.
 */
int	dnsbl_qname(const struct sockaddr *sa, const char *zone, char *out,
	    size_t outsz);
/* dnsbl_ptrname - the PTR name: ...in-addr.arpa or ...ip6.arpa */
int	dnsbl_ptrname(const struct sockaddr *sa, char *out, size_t outsz);

/* What a cached or fresh lookup found. */
enum dnsbl_status {
	DNSBL_ST_FOUND,		/* addresses in a[] (and/or name) */
	DNSBL_ST_NXDOMAIN,	/* no such name / no data */
	DNSBL_ST_TIMEOUT,	/* no answer in time (never cached) */
	DNSBL_ST_ERROR,		/* other DNS failure (never cached) */
};

struct dnsbl_answer {
	enum dnsbl_status status;
	int		 na;
	uint32_t	 a[DNSBL_MAX_ANSWERS];	/* IPv4, host order */
	int		 code;		/* rdns/helo: the final status */
	char		 name[DNSBL_NAME_MAX];	/* rdns: the PTR name */
};

struct dnsbl_cache;
/* dnsbl_cache_new - an empty cache of at most max entries (0: default) */
struct dnsbl_cache *dnsbl_cache_new(size_t max);
void	dnsbl_cache_free(struct dnsbl_cache *c);
/*
 * dnsbl_cache_put - remember ans for key until now + ttl (bounded to
 * DNSBL_TTL_MIN..MAX, negative answers to ..DNSBL_NEG_TTL_MAX; ttl 0 on a
 * negative answer means DNSBL_NEG_TTL). Replaces an entry of the same key;
 * when full the oldest entry goes. Timeouts and errors are not stored.
 */
void	dnsbl_cache_put(struct dnsbl_cache *c, const char *key,
	    const struct dnsbl_answer *ans, uint32_t ttl, time_t now);
/* dnsbl_cache_get - 1 and *ans if key is cached and alive at now, else 0
 * (an expired entry is dropped) */
int	dnsbl_cache_get(struct dnsbl_cache *c, const char *key, time_t now,
	    struct dnsbl_answer *ans);
/* dnsbl_cache_count - entries held; dnsbl_cache_bytes - memory they use */
size_t	dnsbl_cache_count(const struct dnsbl_cache *c);
size_t	dnsbl_cache_bytes(const struct dnsbl_cache *c);

/* --- the resolver and its zones (dnsbl.c) ---------------------------- */

/*
 * dnsbl_new - a checker on base. server: NULL for /etc/resolv.conf, or
 * "host:port" / "host" of the one name server to ask (tests).
 * timeout_ms: per request (0: DNSBL_TIMEOUT_MS); cache_max: entries
 * (0: DNSBL_CACHE_DEFAULT). NULL with err set on failure. Call it before
 * chroot: it reads /etc/resolv.conf and opens its sockets here.
 */
struct dnsbl *dnsbl_new(struct event_base *base, const char *server,
	    int timeout_ms, size_t cache_max, char *err, size_t errsz);
/*
 * dnsbl_free - cancel every request (no callback runs) and free. Run the
 * loop once more (EVLOOP_NONBLOCK) afterwards if the base lives on, so
 * evdns can hand back its last buffers.
 */
void	dnsbl_free(struct dnsbl *d);
/*
 * dnsbl_add_zone - add one zone spec given on the command line (file
 * "--dnsbl", line 0) or elsewhere; kept across dnsbl_load_file. A zone
 * of the same name replaces the earlier one. -1 with err on error.
 */
int	dnsbl_add_zone(struct dnsbl *d, const char *spec, const char *file,
	    int line, char *err, size_t errsz);
/*
 * dnsbl_load_file - (re)load the zone file: one spec per line, blank lines
 * and lines starting with '#' skipped, surrounding blanks ignored. The
 * file's zones replace those of the previous load; on any error nothing
 * changes and err holds "path:line: what". Requests in flight finish with
 * the zones they started with.
 */
int	dnsbl_load_file(struct dnsbl *d, const char *path, char *err,
	    size_t errsz);
/*
 * dnsbl_load_text - dnsbl_load_file for a zone file's text that another
 * process read (the engine runs chrooted: main reads the file on SIGHUP
 * and sends it); name stands for the path in errors.
 */
int	dnsbl_load_text(struct dnsbl *d, const char *name, const char *text,
	    size_t len, char *err, size_t errsz);
/* dnsbl_nzones - zones in use (command line and file) */
int	dnsbl_nzones(const struct dnsbl *d);

/* Per-zone counters (monotonic; kept across reloads for the same zone). */
struct dnsbl_zone_stats {
	const char	*zone;
	uint64_t	 queries;	/* sent to DNS (cache misses) */
	uint64_t	 cache_hits;
	uint64_t	 coalesced;	/* joined the same query in flight */
	uint64_t	 listed;	/* checks that found the client listed */
	uint64_t	 timeouts;
	uint64_t	 errors;
};
/* dnsbl_stats - fill up to max zones' counters; returns the number */
int	dnsbl_stats(const struct dnsbl *d, struct dnsbl_zone_stats *out,
	    int max);
/* dnsbl_inflight - DNS queries out now, and the peak so far */
void	dnsbl_inflight(const struct dnsbl *d, int *now, int *peak);

/* One listing zone in a result. Pointers live until the callback returns. */
struct dnsbl_hit {
	const char	*zone;
	char		 answer[16];	/* "127.0.0.2" */
	const char	*msg;		/* template for bl_expand (%A) */
};

struct dnsbl_result {
	const char	*addr;		/* the client, as text */
	int		 nzones;	/* zones asked */
	int		 ntimeout;	/* zones that did not answer in time */
	int		 nlisted;
	struct dnsbl_hit hit[DNSBL_MAX_ZONES];	/* in zone order */
	/* every zone asked, in zone order: name and raw answer (timeout,
	 * error, NXDOMAIN or addresses), for callers that show each zone */
	const char	*zone[DNSBL_MAX_ZONES];
	const struct dnsbl_answer *ans;		/* nzones entries */
};

typedef void (*dnsbl_cb)(void *arg, const struct dnsbl_result *res);

/*
 * dnsbl_check - look client up in every zone at once (cache first).
 * cb runs once, when every zone answered or the time limit passed (a
 * zone that did not answer counts as not listed). NULL if there are no
 * zones, the family is not IPv4/IPv6, or memory ran out: then no cb.
 */
struct dnsbl_req *dnsbl_check(struct dnsbl *d, const struct sockaddr *client,
	    dnsbl_cb cb, void *arg);
/* dnsbl_cancel - forget a request from any *_check: its cb never runs.
 * Only valid before the callback returned (the request is freed then);
 * from inside the callback it is ignored. NULL is ignored. Never call
 * dnsbl_free from a callback. */
void	dnsbl_cancel(struct dnsbl_req *req);

/* --- reverse DNS and HELO (rdns.c) ----------------------------------- */

enum rdns_status {
	RDNS_OK,		/* PTR name whose A/AAAA holds the address */
	RDNS_NO_PTR,		/* no PTR record */
	RDNS_NOT_CONFIRMED,	/* the name does not resolve back */
	RDNS_TIMEOUT,		/* no answer in time (treat as unknown) */
	RDNS_ERROR,		/* DNS failure (treat as unknown) */
};

struct rdns_result {
	const char	*addr;		/* the client, as text */
	enum rdns_status status;
	const char	*name;		/* the PTR name, "" if none; as
					 * received: escape before logging */
};

typedef void (*rdns_cb)(void *arg, const struct rdns_result *res);

/* rdns_check - forward-confirmed reverse DNS of client; cb once */
struct dnsbl_req *rdns_check(struct dnsbl *d, const struct sockaddr *client,
	    rdns_cb cb, void *arg);
/* rdns_status_name - "ok", "no_ptr", "not_confirmed", "timeout", "error" */
const char *rdns_status_name(enum rdns_status st);

enum helo_status {
	HELO_OK,		/* valid FQDN that resolves, or literal */
	HELO_BAD_SYNTAX,	/* bare word, bad characters, bad literal */
	HELO_OURS,		/* our own host name or address */
	HELO_NOT_FOUND,		/* no A and no AAAA */
	HELO_TIMEOUT,
	HELO_ERROR,
};

struct helo_result {
	const char	*name;		/* the HELO argument */
	enum helo_status status;
};

typedef void (*helo_cb)(void *arg, const struct helo_result *res);

/*
 * helo_syntax - check a HELO/EHLO argument without DNS: HELO_OK for a
 * fully-qualified name (two labels or more, letters digits '-', labels
 * 1..63, no leading/trailing '-', name <= 253, last label not all
 * digits) or an address literal "[1.2.3.4]" / "[IPv6:...]";
 * HELO_OURS when it names myname (case-insensitive) or one of the local
 * addresses in ours (nours entries, may be NULL); else HELO_BAD_SYNTAX.
 * *literal is set to 1 for an address literal (no DNS needed).
 */
enum helo_status helo_syntax(const char *helo, const char *myname,
	    const struct sockaddr *const *ours, int nours, int *literal);
/*
 * helo_check - helo_syntax, then (for a name) an A and an AAAA lookup:
 * either one answering makes it HELO_OK. cb runs once, from the loop,
 * also when no lookup was needed. NULL only when out of memory.
 */
struct dnsbl_req *helo_check(struct dnsbl *d, const char *helo,
	    const char *myname, const struct sockaddr *const *ours, int nours,
	    helo_cb cb, void *arg);
/* helo_status_name - "ok", "bad_syntax", "ours", "not_found", ... */
const char *helo_status_name(enum helo_status st);

#ifdef DNSBL_INTERNAL
/* --- shared by dnsbl.c and rdns.c only ------------------------------- */
#include <sys/queue.h>
#include <event2/event_struct.h>

#include "spamd/common/blacklist.h"

enum dnsbl_kind { DNSBL_REQ_ZONES, DNSBL_REQ_RDNS, DNSBL_REQ_HELO };

struct dnsbl_zone;
struct dnsbl_q;
struct dnsbl_req;

/* A request waiting on one query (several may share a query). */
struct dnsbl_wait {
	TAILQ_ENTRY(dnsbl_wait)	 entry;		/* in the query's waiters */
	struct dnsbl_req	*req;
	struct dnsbl_q		*q;		/* NULL: not waiting */
	int			 slot;
};

/*
 * What dnsbl.c calls for a request it does not answer itself (rdns.c's
 * FCrDNS and HELO checks), handed to dnsbl_req_new: dnsbl.c reaches
 * rdns.c only through this table, so the arrow points one way.
 */
struct dnsbl_req_ops {
	/* q_done - one query of the request answered */
	void	(*q_done)(struct dnsbl_req *req, int slot, int result,
		    char type, int count, int ttl, void *addresses);
	/* deliver - call the asker back (dnsbl.c frees req after) */
	void	(*deliver)(struct dnsbl_req *req);
};

/* One check in progress: DNSBL zones, FCrDNS or a HELO name. */
struct dnsbl_req {
	TAILQ_ENTRY(dnsbl_req) entry;		/* in the dnsbl's list */
	struct dnsbl	*d;
	enum dnsbl_kind	 kind;
	const struct dnsbl_req_ops *ops; /* NULL for DNSBL_REQ_ZONES */
	struct event	 timer;		/* time limit; 0 s: answer from cache */
	int		 pending;	/* queries not answered yet */
	int		 delivering;	/* inside the callback */
	int		 timed_out;
	void		*arg;
	union {
		dnsbl_cb	zones;
		rdns_cb		rdns;
		helo_cb		helo;
	} cb;
	struct dnsbl_wait w[DNSBL_MAX_ZONES];	/* by slot */
	struct bl_addr	 addr;
	char		 addrtext[64];
	int		 nzones;
	struct dnsbl_zone *zone[DNSBL_MAX_ZONES];
	struct dnsbl_answer *ans;	/* nzones answers (zones only) */
	int		 stage;		/* rdns: 0 PTR, 1 forward */
	int		 status;	/* rdns/helo so far */
	uint32_t	 ttl;		/* smallest TTL seen */
	char		 name[DNSBL_NAME_MAX];	/* PTR or HELO name */
};

/* dnsbl_req_new - a request of kind on d for addr (may be NULL); ops
 * answers it (NULL for DNSBL_REQ_ZONES, which dnsbl.c answers) */
struct dnsbl_req *dnsbl_req_new(struct dnsbl *d, enum dnsbl_kind kind,
	    const struct dnsbl_req_ops *ops, const struct bl_addr *addr,
	    void *arg);
/* dnsbl_req_arm - start the time limit (or answer soon if nothing is
 * pending); call once every first query is started */
void	dnsbl_req_arm(struct dnsbl_req *req);
/* dnsbl_req_free - free a request without calling back */
void	dnsbl_req_free(struct dnsbl_req *req);
/* dnsbl_q_start - start a query of type DNS_IPv4_A, DNS_IPv6_AAAA or
 * DNS_PTR (name ignored, addr used) in slot: 0 started, 1 joined the
 * same zone query already in flight, -1 if evdns refused */
int	dnsbl_q_start(struct dnsbl_req *req, int slot, int type,
	    const char *name, const struct bl_addr *addr);
/* dnsbl_now - seconds on the monotonic clock (the cache's time) */
time_t	dnsbl_now(void);
/* dnsbl_cache_of - the checker's cache */
struct dnsbl_cache *dnsbl_cache_of(struct dnsbl *d);
/* dnsbl_status_of - an evdns result code as a status */
enum dnsbl_status dnsbl_status_of(int result);
#endif /* DNSBL_INTERNAL */

#endif /* SPAMD_DNSBL_H */
