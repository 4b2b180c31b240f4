/*
 * fw.h - firewall sets kept in step with the database.
 *
 * One operations table per backend (nftables, ipset, pf, file), chosen by
 * name. Only the privileged writer side of spamd holds a struct fw. Adds
 * and deletes are queued and sent in one batch by fw_flush (one libnftables
 * command, one ipset restore, one pfctl run), never a process per address.
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
};

struct fw;

/* fw_open - open the backend and check its sets exist (or create them);
 * -1 with err naming the set and the command that makes it */
int	fw_open(struct fw **out, const struct fw_conf *conf, char *err,
	    size_t errsz);
/* fw_close - flush nothing more and free; safe on NULL */
void	fw_close(struct fw *fw);
/* fw_add - queue ip into set until expire (epoch seconds; 0 = no timeout) */
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

#endif /* PFSYNC_FW_H */
