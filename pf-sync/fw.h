/*
 * fw.h - firewall sets kept in step with the database.
 *
 * One operations table per backend (nftables, ipset, pf, file), chosen by
 * name. Only the privileged writer side of spamd holds a struct fw. Adds
 * and deletes are queued and sent in one batch by fw_flush (one libnftables
 * command, one ipset restore, one pfctl run), never a process per address.
 *
 * (added) Notes on the implementation (pf-sync/fw*.c say why):
 * - The queue holds one entry per (set, address), the last change wins;
 *   an add remembers its remaining time and loses the time it waits for a
 *   retry. fw_add of an already expired entry queues nothing (returns 0);
 *   an address that is not an IPv4/IPv6 address or prefix ("10.0.0.0/8",
 *   for the black sets) is refused with -1.
 * - fw_flush may block: nftables is one netlink batch in this process,
 *   ipset and pf one child process per batch (pf: one per table and
 *   verb), bounded to 60 s. No backend logs; errors are returned with the
 *   tool's own text and the caller logs them.
 * - fw_reconcile lists the sets, walks the store, queues the repairs and
 *   flushes them; an element whose kernel timeout runs out more than 5 min
 *   before its WHITE record is refreshed (not counted). It does not log:
 *   the caller logs the counts.
 * - Not thread-safe: one struct fw is used by one thread.
 */
#ifndef PFSYNC_FW_H
#define PFSYNC_FW_H

#include <stddef.h>
#include <stdint.h>

struct gdb;

/* Which set an address goes into; v4/v6 is chosen from the address. */
enum fw_set {
	FW_WHITE = 0,		/* spamd-white / spamd-white6 */
	FW_BLACK,		/* spamd-black / spamd-black6 */
	FW_TRAP,		/* spamd-greytrap / spamd-greytrap6 (optional) */
	FW_NSETS
};

struct fw_conf {
	const char	*backend;	/* "nftables" (default), "ipset", "pf", "file" */
	const char	*family;	/* nftables family, default "inet" */
	const char	*table;		/* nftables table, default "spamd" */
	const char	*set4[FW_NSETS];	/* names; NULL = defaults */
	const char	*set6[FW_NSETS];
	const char	*path;		/* file backend: output file */
	const char	*pfctl;		/* pf backend: pfctl path (tests) */
	int		create;		/* --fw-create: make missing sets */
	int		use_trap_set;	/* also keep spamd-greytrap */
	/* (added) also check (or create) spamd-black at open (spamd-setup -b) */
	int		use_black_set;
};

/* (added) The backend names fw_open accepts, space-separated. */
extern const char fw_backend_names[];

struct fw;

/* fw_open - open the backend and check its sets exist (or create them);
 * -1 with err naming the set and the command that makes it */
int	fw_open(struct fw **out, const struct fw_conf *conf, char *err,
	    size_t errsz);
/* fw_close - flush nothing more and free; safe on NULL */
void	fw_close(struct fw *fw);
/* fw_add - queue ip into set until expire (epoch seconds; 0 = no timeout);
 * the element's timeout is expire - now */
int	fw_add(struct fw *fw, enum fw_set set, const char *ip, int64_t expire,
	    int64_t now);
/* fw_del - queue ip out of set */
int	fw_del(struct fw *fw, enum fw_set set, const char *ip);
/* fw_pending - number of queued changes */
size_t	fw_pending(const struct fw *fw);
/* fw_flush - send the queued changes in one batch; -1 with err (the queue
 * is kept so a retry can send it again) */
int	fw_flush(struct fw *fw, char *err, size_t errsz);
/*
 * fw_reconcile - compare the WHITE (and, with use_trap_set, TRAPPED)
 * records of db with the sets and repair both ways; *added and *removed
 * receive the counts.
 */
int	fw_reconcile(struct fw *fw, struct gdb *db, int64_t now, long *added,
	    long *removed, char *err, size_t errsz);

/*
 * (added) Retry with backoff. fw_flush counts consecutive failures (reset by
 * a flush that succeeds); fw_retry_delay gives the seconds the caller waits
 * before the next fw_flush: 0 when the last flush succeeded, else 1, 2, 4,
 * ... capped at 60. The daemon keeps greylisting meanwhile; the queue grows
 * (one entry per address and set, the last change wins).
 */
int	fw_retry_delay(const struct fw *fw);
/* (added) fw_failures - consecutive failed flushes so far */
unsigned fw_failures(const struct fw *fw);
/*
 * (added) fw_present - is the backend's table there (nftables: the table
 * of --fw-table in its family; ipset: every set the backend uses)? 1 yes,
 * 0 missing (what names it, e.g. "inet spamd", or the first missing
 * set), -1 cannot tell (a backend without the check, or the check
 * failed). Asked after a failure, so an operator learns that the
 * table, not an element, is the problem, and by the writer's watch every
 * few seconds. *id (may be NULL) gets the table's identity when present
 * (nftables: its handle, new each time the table is made again, e.g. a
 * `nft flush ruleset` and a reload between two looks; ipset: from the
 * sets' hash seeds, new when a set is created again), 0 when unknown.
 */
int	fw_present(struct fw *fw, char *what, size_t whatsz, uint64_t *id);
/* (added) fw_watchable - 1 when the backend has fw_present's check
 * (nftables, ipset), so the writer watches its table */
int	fw_watchable(const struct fw *fw);
/* (added) fw_present_kind - what fw_present's what names: "table"
 * (nftables) or "set" (ipset); fw_present_howto - how an operator makes
 * it again, one short phrase ("reload the ruleset") */
const char *fw_present_kind(const struct fw *fw);
const char *fw_present_howto(const struct fw *fw);
/* (added) fw_backend_name - the name of the backend fw was opened with */
const char *fw_backend_name(const struct fw *fw);

/*
 * (added) fw_list_fn - called by fw_list once per element: ip is the
 * address (or prefix) as canonical text; expires is the remaining seconds
 * the backend reports, 0 for an element without timeout, -1 when the
 * backend has no timeouts (pf, file). Return non-zero to stop.
 */
typedef int (*fw_list_fn)(const char *ip, int64_t expires, void *arg);
/* (added) fw_list - visit the elements of one set (v6: the IPv6 set) */
int	fw_list(struct fw *fw, enum fw_set set, int v6, fw_list_fn fn,
	    void *arg, char *err, size_t errsz);
/* (added) fw_set_name - the resolved set (pf: table) name */
const char *fw_set_name(const struct fw *fw, enum fw_set set, int v6);

/*
 * Backend interface (added), for pf-sync/fw_*.c only. fw.c keeps the
 * queue; a backend gets the resolved configuration (every name filled in)
 * and sends one batch per fw_flush. A backend never logs; it puts its
 * tool's text into err.
 */
#define FW_IP_MAX	64	/* address text, or address/prefix, + NUL */

/* One queued change as handed to a backend's flush. */
struct fw_change {
	enum fw_set	set;
	int		v6;
	int		add;		/* 1 add, 0 delete */
	int64_t		timeout;	/* add: remaining seconds, 0 = none */
	char		ip[FW_IP_MAX];
};

/* The configuration with defaults filled in; strings owned by struct fw. */
struct fw_names {
	const char	*family;
	const char	*table;
	const char	*set[FW_NSETS][2];	/* [set][v6] */
	const char	*path;
	const char	*pfctl;
	int		create;
	int		use_trap_set;
	int		use_black_set;
};

struct fw_backend {
	const char	*name;
	/* open - check the sets (or create them); *state is the backend's */
	int		(*open)(const struct fw_names *nm, void **state,
			    char *err, size_t errsz);
	void		(*close)(void *state);
	/* flush - apply n changes (sorted by set, family, address) at once */
	int		(*flush)(void *state, const struct fw_change *ch,
			    size_t n, char *err, size_t errsz);
	int		(*list)(void *state, enum fw_set set, int v6,
			    fw_list_fn fn, void *arg, char *err,
			    size_t errsz);
	/* present - the table is there: 1 (*id its identity, or 0),
	 * missing: 0 (what set), -1 don't know; NULL for backends without
	 * a table */
	int		(*present)(void *state, char *what, size_t whatsz,
			    uint64_t *id);
	/* what present names ("table", "set"; NULL: "table") and how it
	 * is made again (NULL: "reload the ruleset") */
	const char	*kind;
	const char	*howto;
	/* the longest element timeout the kernel takes, seconds; 0 = none
	 * (ipset: 2147483 s, under the 36-day white expiry) */
	int64_t		max_timeout;
};

extern const struct fw_backend fw_backend_nft;
extern const struct fw_backend fw_backend_ipset;
extern const struct fw_backend fw_backend_pf;
extern const struct fw_backend fw_backend_file;

/*
 * fw_exec - run argv[0] (found on PATH) with argv, feed it in[0..inlen),
 * collect its stdout into *out (malloc'd, NUL-terminated, may be NULL) and
 * its stderr into err. 0 when it exits 0; -1 with err naming the program,
 * its exit status and its stderr. Bounded to 60 s (then killed). The child
 * gets no descriptor above 2 and default signal actions. It reaps its own
 * child with waitpid(pid): a SIGCHLD handler of the caller that reaps with
 * waitpid(-1) would steal the exit status.
 */
int	fw_exec(char *const argv[], const char *in, size_t inlen, char **out,
	    size_t *outlen, char *err, size_t errsz);
/* fw_nft_parse - the elements of nft's "list set" text output ("elements =
 * { 1.2.3.4 timeout 1h expires 59m58s, ... }"); expires is whole seconds
 * left (at least 1), 0 without timeout; -1 with err naming the byte offset */
int	fw_nft_parse(const char *out, fw_list_fn fn, void *arg, char *err,
	    size_t errsz);
/* fw_ipset_parse - the "add NAME IP [timeout N]" lines of `ipset save
 * NAME`; -1 with err naming the line */
int	fw_ipset_parse(const char *out, const char *name, fw_list_fn fn,
	    void *arg, char *err, size_t errsz);
/* fw_ipset_heads - the ipset backend's presence check on `ipset list -t`
 * output: 1 when every set of names[0..n) has a header block (*id an
 * identity drawn from their hash seeds, 0 when a header shows none), 0
 * with what naming the first missing one */
int	fw_ipset_heads(const char *out, const char *const *names, size_t n,
	    char *what, size_t whatsz, uint64_t *id);
/* fw_ip_parse - canonical "addr" or "addr/len" into out; v6 set to the
 * family; -1 when in is not an address or prefix */
int	fw_ip_parse(const char *in, char out[FW_IP_MAX], int *v6);

#endif /* PFSYNC_FW_H */
