/*
 * gdb_private.h - what the greydb source files share and callers never see:
 * the handle, error helpers and the transaction retry loop.
 */
#ifndef GDB_PRIVATE_H
#define GDB_PRIVATE_H

#include <limits.h>
#include <pthread.h>
#include <db.h>

#include "greydb/greydb.h"

/* A body's own failure (err already filled), distinct from every Berkeley
 * DB code (those are below -30000) and every errno (positive). */
#define GDB_EAPP	(-1)

struct gdb {
	DB_ENV		*env;
	DB		*main;		/* grey.db: the records */
	DB		*exp;		/* expire.db: the expiry index */
	char		 dir[PATH_MAX];
	int		 readonly;
	char		**domains;	/* allowed domains, lowercased */
	size_t		 ndomains;
	pthread_t	 watchdog;	/* runs failchk every second */
	pthread_mutex_t	 wd_mu;
	pthread_cond_t	 wd_cv;
	int		 wd_running, wd_stop;
	int		 no_new_grey;	/* (added) gdb_set_no_new_grey */
};

/* Work done inside one transaction; returns 0, a Berkeley DB code or
 * errno (retried when it is a deadlock), or GDB_EAPP with err set. */
typedef int (*gdb_txn_fn)(struct gdb *db, DB_TXN *txn, void *ctx,
	    struct gdb_err *err);

void	gdb_seterr(struct gdb_err *err, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	gdb_dberr(struct gdb *db, const char *op, int ret,
	    struct gdb_err *err);
int	gdb_txn_run(struct gdb *db, const char *op, gdb_txn_fn fn, void *ctx,
	    struct gdb_err *err);
int	gdb_retryable(int ret);
void	gdb_key_escape(const unsigned char *key, size_t len, char *out,
	    size_t outsz);
int	gdb_norm_key(const struct gdb_rec *in, struct gdb_rec *out,
	    struct gdb_err *err);

/* Record primitives used inside a transaction (record.c). */
int	gdb_rec_read(struct gdb *db, DB_TXN *txn, const unsigned char *key,
	    size_t klen, struct gdb_rec *rec, int rmw, struct gdb_err *err);
int	gdb_rec_write(struct gdb *db, DB_TXN *txn, const struct gdb_rec *rec,
	    const struct gdb_rec *old, struct gdb_err *err);
int	gdb_rec_remove(struct gdb *db, DB_TXN *txn, const struct gdb_rec *old,
	    struct gdb_err *err);

/* Read a key range in batches, each in its own short transaction, and call
 * fn outside any transaction (record.c). */
typedef int (*gdb_raw_fn)(const unsigned char *key, size_t klen,
	    const unsigned char *val, size_t vlen, void *arg,
	    struct gdb_err *err);
int	gdb_scan(struct gdb *db, const unsigned char *prefix, size_t plen,
	    gdb_raw_fn fn, void *arg, struct gdb_err *err);

#endif /* GDB_PRIVATE_H */
