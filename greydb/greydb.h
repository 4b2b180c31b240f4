/*
 * greydb.h - the greylisting store shared by spamd, greyctl and pf-sync.
 *
 * Berkeley DB 5.3 in a transactional environment (one directory), so the
 * daemon's writer, greyctl and any other writer may use it at once. Record
 * types and fields follow OpenBSD spamd (see shared DESIGN.md). Every call
 * that can fail returns 0 on success or -1 and fills a struct gdb_err with
 * a message naming path, operation and Berkeley DB's text; nothing aborts.
 */
#ifndef GREYDB_H
#define GREYDB_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "spamd/common/verdict.h"

#define GDB_DEFAULT_DIR   "/var/db/spamd"
#define GDB_ADDR_MAX      46	/* INET6_ADDRSTRLEN: canonical IP text + NUL */
#define GDB_HELO_MAX      256	/* stored HELO, NUL included (longer is cut) */
#define GDB_MAIL_MAX      256	/* stored address, NUL included (RFC 5321 path) */

/* Record types; the numbers are part of the on-disk key layout. */
enum gdb_type {
	GDB_GREY = 1,		/* a tuple (ip, helo, from, to) */
	GDB_WHITE = 2,		/* an address that passed */
	GDB_TRAPPED = 3,	/* an address that mailed a spamtrap */
	GDB_SPAMTRAP = 4,	/* a trap recipient address, never expires */
};

/* pcount values with a meaning, as OpenBSD spamd. */
#define GDB_PCOUNT_TRAPPED  (-1)
#define GDB_PCOUNT_SPAMTRAP (-2)

/* One record. For WHITE and TRAPPED only ip is set; for SPAMTRAP only to. */
struct gdb_rec {
	enum gdb_type	type;
	char		ip[GDB_ADDR_MAX];
	char		helo[GDB_HELO_MAX];
	char		from[GDB_MAIL_MAX];
	char		to[GDB_MAIL_MAX];
	int64_t		first;		/* seconds since the epoch */
	int64_t		pass;
	int64_t		expire;
	int32_t		bcount;		/* times seen blocked */
	int32_t		pcount;		/* passes; -1 trapped, -2 spamtrap */
};

/* Greylisting times, in seconds; parameters, never globals. */
struct gdb_times {
	int64_t		passtime;	/* default 25 min */
	int64_t		greyexp;	/* default 4 h */
	int64_t		whiteexp;	/* default 864 h (36 days) */
	int64_t		trapexp;	/* default 24 h */
};
#define GDB_PASSTIME_DEFAULT (25 * 60)
#define GDB_GREYEXP_DEFAULT  (4 * 3600)
#define GDB_WHITEEXP_DEFAULT (864 * 3600)
#define GDB_TRAPEXP_DEFAULT  (24 * 3600)

struct gdb_err {
	char		msg[512];
	/*
	 * (added) 1 when the environment needs recovery (Berkeley DB said
	 * DB_RUNRECOVERY, e.g. a process died inside Berkeley DB itself, or
	 * another process ran recovery). The caller then does gdb_close and
	 * gdb_open again; the open recovers.
	 */
	int		reopen;
};

/* Options for gdb_open. */
struct gdb_opts {
	int		create;		/* create dir/env/db if missing */
	int		readonly;	/* open for lookups only */
	/*
	 * Durability: 0 = every commit is flushed to disk before it returns
	 * (greyctl); 1 = group commit: commits are written without fsync and
	 * the caller calls gdb_flush() at least every window (the daemon's
	 * writer, default 1 s). A crash then loses at most the commits of the
	 * last window, never the database's consistency.
	 */
	int		group_commit;
	unsigned	cache_mb;	/* cache size in MiB; 0 = 64 */
};

/*
 * What a crash can lose (added by the store implementation):
 * - group_commit = 0: nothing that a call returned success for. Every
 *   commit is written and fsynced to the log before the call returns.
 * - group_commit = 1: commits are written to the log file (the OS page
 *   cache) without fsync. A crash of the process alone loses nothing; a
 *   crash of the machine (power, kernel) loses at most the commits made
 *   since the last gdb_flush() that returned 0.
 * In both cases recovery runs by itself on the next gdb_open (DB_REGISTER |
 * DB_RECOVER): the database comes back consistent, every transaction is
 * either all there or not there at all, never half.
 * Use one struct gdb per process: Berkeley DB's DB_REGISTER tracks
 * processes, not handles (open, close, then open again is fine).
 * Each handle runs one watchdog thread that calls failchk every second:
 * when another process died inside a transaction, its transaction is
 * aborted and its locks freed, so live processes waiting on them go on.
 * So do not fork with an open handle; open it in the process that uses it.
 */

struct gdb;

/* Outcome of gdb_tuple_seen: enum gdb_result, GDB_R_* in
 * spamd/common/verdict.h (the engine reads them without this header). */

/* gdb_open - open (and with opts->create make) the environment in dir */
int	gdb_open(struct gdb **out, const char *dir, const struct gdb_opts *opts,
	    struct gdb_err *err);
/* gdb_close - close the handles; safe on NULL */
void	gdb_close(struct gdb *db);
/* gdb_flush - make every commit so far durable (group-commit mode) */
int	gdb_flush(struct gdb *db, struct gdb_err *err);

/*
 * gdb_tuple_seen - apply the greylisting rules to one RCPT.
 * Trap check first (spamtrap address, or a domain outside the allowed
 * domains when that list is non-empty), then TRAPPED, then the GREY tuple:
 * new, seen again, or passed (now > first + passtime) which writes WHITE
 * for ip with expire = now + whiteexp, all in one transaction. ip, from and
 * to are normalised here (canonical address; angle brackets stripped and
 * lowercased; the null sender is ""). If rec is not NULL it receives the
 * record that decided (the tuple, or the WHITE/TRAPPED entry).
 */
int	gdb_tuple_seen(struct gdb *db, const char *ip, const char *helo,
	    const char *from, const char *to, int64_t now,
	    const struct gdb_times *t, enum gdb_result *res,
	    struct gdb_rec *rec, struct gdb_err *err);

/*
 * (added) A batch of RCPTs for gdb_tuple_seen_many: the caller fills ip,
 * helo, from and to; res and rec receive what gdb_tuple_seen would give;
 * bad is set (and res left 0) for a tuple whose ip does not parse.
 */
struct gdb_tuple {
	const char	*ip, *helo, *from, *to;
	/*
	 * (added) NULL, or how many new GREY records this tuple may still
	 * create, shared (the same pointer) by the tuples of one client in
	 * a batch: a tuple that would be NEW while *new_left <= 0 writes
	 * nothing and gets GDB_R_REFUSED; one that is stored takes one.
	 * Everything else (a tuple seen again, a pass, a trap, WHITE,
	 * TRAPPED) is never limited. When the call returns 0 the counts
	 * are what the committed transaction used (a transaction retried
	 * after a deadlock starts again from the counts given); on error
	 * they are as given.
	 */
	int		*new_left;
	enum gdb_result	 res;
	struct gdb_rec	 rec;
	int		 bad;
};
#define GDB_BATCH_MAX	256	/* tuples in one gdb_tuple_seen_many call */

/*
 * gdb_tuple_seen_many - gdb_tuple_seen for n (<= GDB_BATCH_MAX) tuples in
 * ONE transaction, in order (a later tuple sees what an earlier one
 * wrote). One commit instead of n is what lets the writer keep up with
 * many engines; the rules and results are exactly those of n calls. On
 * error nothing of the batch is written.
 */
int	gdb_tuple_seen_many(struct gdb *db, struct gdb_tuple *tv, size_t n,
	    int64_t now, const struct gdb_times *t, struct gdb_err *err);

/*
 * Notes on the rules as implemented (added; greydb/rules.c says why):
 * a tuple that passes is deleted and the ip gets WHITE (first = now, or
 * kept when a live WHITE exists; pass = now; expire = now + whiteexp;
 * pcount + 1), as OpenBSD grey.c's scanner does. An ip that is already
 * WHITE records no tuple, only its expire is refreshed to now + whiteexp:
 * OpenBSD never sees such a host (pf passes it). A trap writes TRAPPED
 * (pcount -1, expire now + trapexp, bcount + 1) and drops the ip's WHITE;
 * a live TRAPPED ip gets GDB_R_TRAPPED and nothing is written. Records
 * with expire <= now count as absent. Allowed domains: "example.com"
 * allows it and its subdomains, "@example.com" exactly that domain; a
 * recipient without '@' is allowed.
 */

/*
 * gdb_set_no_new_grey - (added) on = 1: from now on this handle's
 * gdb_tuple_seen and gdb_tuple_seen_many create no new GREY record (a
 * tuple that would be NEW gets GDB_R_REFUSED and nothing is written);
 * tuples seen again, passes, traps, WHITE, TRAPPED, gdb_put and
 * deletions go on. The daemon's writer turns it on while the disk is
 * low. Per handle, not stored: other processes do not see it.
 */
void	gdb_set_no_new_grey(struct gdb *db, int on);

/* gdb_trap - mark ip TRAPPED until expire (GREY tuples of ip stay; WHITE
 * of ip is removed) */
int	gdb_trap(struct gdb *db, const char *ip, int64_t now, int64_t expire,
	    struct gdb_err *err);
/* gdb_white - mark ip WHITE until expire (refused with -1 while trapped) */
int	gdb_white(struct gdb *db, const char *ip, int64_t now, int64_t expire,
	    struct gdb_err *err);
/* gdb_spamtrap_add / gdb_spamtrap_del - manage trap recipient addresses */
int	gdb_spamtrap_add(struct gdb *db, const char *addr, struct gdb_err *err);
int	gdb_spamtrap_del(struct gdb *db, const char *addr, struct gdb_err *err);

/* gdb_put - write a whole record as given (import, sync); key fields are
 * normalised as in gdb_tuple_seen */
int	gdb_put(struct gdb *db, const struct gdb_rec *rec, struct gdb_err *err);
/* gdb_get - look one record up by its key fields; 1 found, 0 not, -1 error */
int	gdb_get(struct gdb *db, struct gdb_rec *rec, struct gdb_err *err);
/* gdb_del - delete one record by its key fields; 1 deleted, 0 absent, -1 error */
int	gdb_del(struct gdb *db, const struct gdb_rec *rec, struct gdb_err *err);
/* gdb_del_grey_ip - delete every GREY tuple of ip; returns count or -1 */
long	gdb_del_grey_ip(struct gdb *db, const char *ip, struct gdb_err *err);

/* Callback for iteration: return 0 to go on, non-zero to stop. */
typedef int (*gdb_walk_fn)(const struct gdb_rec *rec, void *arg);
/* gdb_walk - visit every record of type (0 = all types, in type order);
 * a range scan over that type's keys only */
/* (added) gdb_expire ignores the return value of expired(): the records
 * are already gone when it is called, after their batch committed. */
/* (added) The walk reads batches of 1,000 records, each in its own short
 * read-committed transaction, and calls fn outside any transaction, so fn
 * may write to the store; it is not a snapshot of one instant. A damaged
 * record stops the walk with an error naming its key. gdb_get returns a
 * record as stored, expired or not. gdb_spamtrap_add stamps first and pass
 * with the current time (SPAMTRAP has expire 0 and pcount -2). */
int	gdb_walk(struct gdb *db, enum gdb_type type, gdb_walk_fn fn, void *arg,
	    struct gdb_err *err);
/* gdb_walk_ip - visit the GREY tuples of ip only, as gdb_walk does (a
 * range scan on the key prefix type byte, ip, NUL); -1 for a bad ip */
int	gdb_walk_ip(struct gdb *db, const char *ip, gdb_walk_fn fn, void *arg,
	    struct gdb_err *err);

/*
 * (added) A walk in steps, for a caller that must return to its event
 * loop between them (the cluster's streamed answers): pos starts zeroed;
 * each gdb_walk_some call reads one batch (at most 1,000 records) of
 * type after pos and calls fn for each until fn returns non-zero (that
 * record counts as visited); pos moves past every record visited and
 * pos->done is set once the range is over. 0, or -1 with err.
 */
struct gdb_walk_pos {
	unsigned char	key[1 + GDB_ADDR_MAX + GDB_HELO_MAX +
			    2 * GDB_MAIL_MAX + 8];	/* GDB_KEY_MAX + 8 */
	size_t		klen;
	int		done;
};
int	gdb_walk_some(struct gdb *db, enum gdb_type type,
	    struct gdb_walk_pos *pos, gdb_walk_fn fn, void *arg,
	    struct gdb_err *err);

/*
 * gdb_expire - delete every record whose expire <= now (SPAMTRAP never).
 * Walks the expiry index from its start, so the cost is in proportion to
 * what expires. Commits in batches. expired[] (may be NULL) is called for
 * each record removed, e.g. so the firewall can drop a WHITE address.
 * *count (may be NULL) receives the number removed; *read the number of
 * index entries read.
 */
int	gdb_expire(struct gdb *db, int64_t now, gdb_walk_fn expired, void *arg,
	    long *count, long *read, struct gdb_err *err);

/* Counts by type, for greyctl stats and metrics. */
struct gdb_stats {
	long		grey, white, trapped, spamtrap;
};
/* gdb_stats - count records of each type */
int	gdb_stats(struct gdb *db, struct gdb_stats *st, struct gdb_err *err);

/* Allowed domains: a non-empty list makes any other recipient domain a trap. */
/* gdb_set_allowed_domains - replace the list (NULL-terminated, copied) */
int	gdb_set_allowed_domains(struct gdb *db, const char *const *domains,
	    struct gdb_err *err);
/* gdb_load_allowed_domains - read one domain a line, # comments, from path;
 * on error the old list stays and err names path:line */
int	gdb_load_allowed_domains(struct gdb *db, const char *path,
	    struct gdb_err *err);
/* gdb_domain_allowed - 1 if addr's domain is allowed (or the list is empty) */
int	gdb_domain_allowed(const struct gdb *db, const char *addr);

/* gdb_addr_canon - parse an IPv4/IPv6 address into canonical text
 * (inet_ntop form); 0 ok, -1 not an address */
int	gdb_addr_canon(const char *in, char out[GDB_ADDR_MAX]);
/* gdb_mail_norm - strip <> and surrounding space, lowercase, cut to size */
void	gdb_mail_norm(const char *in, char *out, size_t outsz);
/* gdb_type_name - "GREY", "WHITE", "TRAPPED", "SPAMTRAP" */
const char *gdb_type_name(enum gdb_type type);

/*
 * On-disk encoding (added by the store implementation; exposed for tests
 * and tools). Key: one byte record type, then GREY ip\0helo\0from\0to,
 * WHITE/TRAPPED ip, SPAMTRAP the lowercased address, so one type is one
 * key range. Value: GDB_VAL_SIZE bytes, big-endian: u8 version
 * (GDB_VAL_VERSION), i64 first, i64 pass, i64 expire, i32 bcount,
 * i32 pcount. The expiry index (expire.db) maps big-endian u64 expire +
 * primary key to an empty value; SPAMTRAP records are not in it.
 */
#define GDB_VAL_VERSION 1
#define GDB_VAL_SIZE    33
#define GDB_KEY_MAX     (1 + GDB_ADDR_MAX + GDB_HELO_MAX + 2 * GDB_MAIL_MAX)
/* gdb_key_encode - key bytes of rec's (already normalised) key fields;
 * returns the length, 0 if a field does not fit or the type is unknown */
size_t	gdb_key_encode(const struct gdb_rec *rec, unsigned char *buf,
	    size_t bufsz);
/* gdb_key_decode - set rec's type and key fields from key bytes */
int	gdb_key_decode(const unsigned char *key, size_t len,
	    struct gdb_rec *rec, struct gdb_err *err);
/* gdb_val_encode - value bytes of rec's times and counters */
void	gdb_val_encode(const struct gdb_rec *rec,
	    unsigned char out[GDB_VAL_SIZE]);
/* gdb_val_decode - set rec's times and counters from value bytes; an
 * unknown version or a wrong size is an error naming the key */
int	gdb_val_decode(const unsigned char *val, size_t len,
	    const unsigned char *key, size_t keylen, struct gdb_rec *rec,
	    struct gdb_err *err);

#endif /* GREYDB_H */
