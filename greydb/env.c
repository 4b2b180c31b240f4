/*
 * env.c - the Berkeley DB environment: open with automatic recovery,
 * close, flush, error text and the transaction retry loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "greydb/gdb_private.h"

/* Sizes of the lock tables. greyd ran out of locks at ~57,000 entries;
 * a btree transaction locks pages, not records, and expiry commits every
 * GDB_EXPIRE_BATCH records, so these leave a wide margin. */
#define GDB_LK_MAX_LOCKS	200000
#define GDB_LK_MAX_OBJECTS	200000
#define GDB_LK_MAX_LOCKERS	20000
#define GDB_CACHE_MB_DEFAULT	64
#define GDB_TXN_RETRIES		200
#define GDB_THREAD_COUNT	1000	/* threads tracked for failchk */

/* gdb_seterr - fill err (if any) from a format */
void
gdb_seterr(struct gdb_err *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->reopen = 0;
}

/* gdb_dberr - "dir: op: db_strerror" into err; returns -1 */
int
gdb_dberr(struct gdb *db, const char *op, int ret, struct gdb_err *err)
{
	gdb_seterr(err, "%s: %s: %s", db != NULL ? db->dir : "?", op,
	    db_strerror(ret));
	if (err != NULL)
		err->reopen = ret == DB_RUNRECOVERY;
	return -1;
}

/* gdb_retryable - 1 if ret means "abort and run the transaction again" */
int
gdb_retryable(int ret)
{
	return ret == DB_LOCK_DEADLOCK || ret == DB_LOCK_NOTGRANTED;
}

/* gdb_txn_run - run fn in a transaction, again after a deadlock */
int
gdb_txn_run(struct gdb *db, const char *op, gdb_txn_fn fn, void *ctx,
    struct gdb_err *err)
{
	DB_TXN *txn;
	int ret, tries;

	if (db->readonly) {
		gdb_seterr(err, "%s: %s: database opened readonly", db->dir,
		    op);
		return -1;
	}
	for (tries = 0;; tries++) {
		if ((ret = db->env->txn_begin(db->env, NULL, &txn, 0)) != 0)
			return gdb_dberr(db, "txn_begin", ret, err);
		ret = fn(db, txn, ctx, err);
		if (ret == 0) {
			if ((ret = txn->commit(txn, 0)) != 0)
				return gdb_dberr(db, op, ret, err);
			return 0;
		}
		txn->abort(txn);
		if (!gdb_retryable(ret) || tries >= GDB_TXN_RETRIES)
			break;
		/* Let the winner of the deadlock finish before trying again. */
		usleep((useconds_t)(100 * (tries % 10 + 1)));
	}
	if (ret == GDB_EAPP)
		return -1;
	return gdb_dberr(db, op, ret, err);
}

/* is_alive - failchk's question: is the process that owns pid alive? */
static int
is_alive(DB_ENV *env, pid_t pid, db_threadid_t tid, u_int32_t flags)
{
	/* Threads of this process: it is running, so they count as alive. */
	if (pid == getpid())
		return 1;
	return kill(pid, 0) == 0 || errno == EPERM;
}

/* watchdog - once a second, let failchk abort the transactions of
 * processes that died inside one, so their locks do not block us. A
 * thread of its own because the caller's thread may be the one waiting
 * on such a lock. */
static void *
watchdog(void *arg)
{
	struct gdb *db = arg;
	struct timespec ts;

	pthread_mutex_lock(&db->wd_mu);
	while (!db->wd_stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&db->wd_cv, &db->wd_mu, &ts);
		if (db->wd_stop)
			break;
		pthread_mutex_unlock(&db->wd_mu);
		/* DB_RUNRECOVERY here means a process died inside the
		 * library itself; the callers' next calls report it. */
		db->env->failchk(db->env, 0);
		pthread_mutex_lock(&db->wd_mu);
	}
	pthread_mutex_unlock(&db->wd_mu);
	return NULL;
}

/* quiet_err - Berkeley DB's error text: not printed, the library never
 * prints; the return codes carry what callers need (db_strerror) */
static void
quiet_err(const DB_ENV *env, const char *pfx, const char *msg)
{
}

/* quiet_msg - Berkeley DB's informational text (failchk): not printed */
static void
quiet_msg(const DB_ENV *env, const char *msg)
{
}

/* check_dir - the directory must exist (or be made when create is set) */
static int
check_dir(const char *dir, int create, struct gdb_err *err)
{
	struct stat st;

	if (stat(dir, &st) == -1) {
		if (errno != ENOENT || !create) {
			gdb_seterr(err, "%s: open: %s", dir, strerror(errno));
			return -1;
		}
		/* Another process may make it at the same moment. */
		if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
			gdb_seterr(err, "%s: mkdir: %s", dir, strerror(errno));
			return -1;
		}
		if (stat(dir, &st) == -1) {
			gdb_seterr(err, "%s: open: %s", dir, strerror(errno));
			return -1;
		}
	}
	if (!S_ISDIR(st.st_mode)) {
		gdb_seterr(err, "%s: open: %s", dir, strerror(ENOTDIR));
		return -1;
	}
	/* Effective ids and capabilities, not the real uid: greylogd opens
	 * the store after giving up root but keeping CAP_DAC_OVERRIDE. */
	if (faccessat(AT_FDCWD, dir, R_OK | W_OK | X_OK, AT_EACCESS) == -1) {
		gdb_seterr(err, "%s: open: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * reserve_mpool - give the cache region's file its disk blocks up to the
 * region's largest size. Berkeley DB maps its region files and grows the
 * cache region by extending its file sparsely; the first touch of a new
 * page on a full disk is then SIGBUS, not an error. With the blocks
 * reserved (FALLOC_FL_KEEP_SIZE: the file's size is Berkeley DB's
 * business) growth never faults. Costs the cache size on disk once.
 * Best effort: on a full disk or a file system without fallocate, nothing
 * changes. The cache region's file is the one whose size is the region's.
 */
static void
reserve_mpool(DB_ENV *env, const char *dir)
{
	DB_MPOOL_STAT *st = NULL;
	struct stat sb;
	char path[PATH_MAX];
	off_t size, max;
	int i, fd;

	if (env->memp_stat(env, &st, NULL, 0) != 0 || st == NULL)
		return;
	size = (off_t)st->st_regsize;
	max = (off_t)st->st_regmax;
	free(st);
	if (max <= size)
		return;
	for (i = 1; i < 16; i++) {
		snprintf(path, sizeof(path), "%s/__db.%03d", dir, i);
		if ((fd = open(path, O_RDWR | O_CLOEXEC)) == -1)
			continue;
		if (fstat(fd, &sb) == 0 && sb.st_size == size) {
			/* why: best effort, see above; failure is no worse
			 * than before */
			(void)!fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, max);
			close(fd);
			return;
		}
		close(fd);
	}
}

/* open_db - open one database file of the environment */
static int
open_db(struct gdb *db, DB **out, const char *file, const struct gdb_opts *o,
    struct gdb_err *err)
{
	DB *d;
	u_int32_t flags = DB_AUTO_COMMIT | DB_THREAD;
	int ret;

	*out = NULL;
	if ((ret = db_create(&d, db->env, 0)) != 0)
		return gdb_dberr(db, "db_create", ret, err);
	if (o->create && !o->readonly)
		flags |= DB_CREATE;
	if (o->readonly)
		flags |= DB_RDONLY;
	if ((ret = d->open(d, NULL, file, NULL, DB_BTREE, flags, 0600)) != 0) {
		d->close(d, 0);
		gdb_seterr(err, "%s/%s: open: %s", db->dir, file,
		    db_strerror(ret));
		return -1;
	}
	*out = d;
	return 0;
}

/* gdb_open - open (and with opts->create make) the environment in dir */
int
gdb_open(struct gdb **out, const char *dir, const struct gdb_opts *opts,
    struct gdb_err *err)
{
	static const struct gdb_opts defaults;
	const struct gdb_opts *o = opts != NULL ? opts : &defaults;
	struct gdb *db;
	unsigned mb;
	mode_t old_umask;
	int ret;

	*out = NULL;
	if (dir == NULL || *dir == '\0') {
		gdb_seterr(err, "(empty): open: no database directory");
		return -1;
	}
	if (check_dir(dir, o->create, err) == -1)
		return -1;
	if ((db = calloc(1, sizeof(*db))) == NULL) {
		gdb_seterr(err, "%s: open: %s", dir, strerror(errno));
		return -1;
	}
	if (strlcpy(db->dir, dir, sizeof(db->dir)) >= sizeof(db->dir)) {
		gdb_seterr(err, "%.100s...: open: path too long", dir);
		free(db);
		return -1;
	}
	db->readonly = o->readonly;
	if ((ret = db_env_create(&db->env, 0)) != 0) {
		gdb_dberr(db, "db_env_create", ret, err);
		free(db);
		return -1;
	}
	db->env->set_errcall(db->env, quiet_err);
	db->env->set_msgcall(db->env, quiet_msg);
	mb = o->cache_mb != 0 ? o->cache_mb : GDB_CACHE_MB_DEFAULT;
	/* These only count when this open creates the regions; a running
	 * environment keeps the sizes it was made with. */
	db->env->set_cachesize(db->env, mb / 1024, (mb % 1024) << 20, 1);
	db->env->set_lk_max_locks(db->env, GDB_LK_MAX_LOCKS);
	db->env->set_lk_max_objects(db->env, GDB_LK_MAX_OBJECTS);
	db->env->set_lk_max_lockers(db->env, GDB_LK_MAX_LOCKERS);
	db->env->set_lg_bsize(db->env, 1 << 20);
	db->env->set_lk_detect(db->env, DB_LOCK_DEFAULT);
	db->env->set_thread_count(db->env, GDB_THREAD_COUNT);
	db->env->set_isalive(db->env, is_alive);
	if (o->group_commit)
		db->env->set_flags(db->env, DB_TXN_WRITE_NOSYNC, 1);
	/* The region files are mapped: a page first touched when the disk
	 * is full kills the process with SIGBUS. DB_REGION_INIT writes them
	 * whole at open, so a full disk is an error at open (or a failed
	 * write later), never a signal. */
	db->env->set_flags(db->env, DB_REGION_INIT, 1);
	/* DB_REGISTER notices a process that died holding the environment
	 * and, with DB_RECOVER, runs recovery only then; DB_CREATE here makes
	 * only the region files, the directory was checked above.
	 * Berkeley DB makes __db.register 0660 whatever mode we pass: the
	 * umask keeps it (and all else) to spamd's user. */
	old_umask = umask(077);
	ret = db->env->open(db->env, dir, DB_CREATE | DB_INIT_TXN |
	    DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL | DB_REGISTER |
	    DB_RECOVER | DB_THREAD, 0600);
	umask(old_umask);
	if (ret != 0) {
		gdb_dberr(db, "env open", ret, err);
		db->env->close(db->env, 0);
		free(db);
		return -1;
	}
	db->env->log_set_config(db->env, DB_LOG_AUTO_REMOVE, 1);
	if (!o->readonly)
		reserve_mpool(db->env, dir);
	if (open_db(db, &db->main, "grey.db", o, err) == -1 ||
	    open_db(db, &db->exp, "expire.db", o, err) == -1) {
		gdb_close(db);
		return -1;
	}
	pthread_mutex_init(&db->wd_mu, NULL);
	pthread_cond_init(&db->wd_cv, NULL);
	db->wd_running = pthread_create(&db->watchdog, NULL, watchdog,
	    db) == 0;
	*out = db;
	return 0;
}

/* gdb_close - close the handles; safe on NULL */
void
gdb_close(struct gdb *db)
{
	size_t i;

	if (db == NULL)
		return;
	if (db->wd_running) {
		pthread_mutex_lock(&db->wd_mu);
		db->wd_stop = 1;
		pthread_cond_signal(&db->wd_cv);
		pthread_mutex_unlock(&db->wd_mu);
		pthread_join(db->watchdog, NULL);
		pthread_mutex_destroy(&db->wd_mu);
		pthread_cond_destroy(&db->wd_cv);
	}
	if (db->exp != NULL)
		db->exp->close(db->exp, 0);
	if (db->main != NULL)
		db->main->close(db->main, 0);
	if (db->env != NULL) {
		if (!db->readonly && db->main != NULL) {
			db->env->log_flush(db->env, NULL);
			db->env->txn_checkpoint(db->env, 0, 0, 0);
		}
		db->env->close(db->env, 0);
	}
	for (i = 0; i < db->ndomains; i++)
		free(db->domains[i]);
	free(db->domains);
	free(db);
}

/* gdb_flush - make every commit so far durable (group-commit mode) */
int
gdb_flush(struct gdb *db, struct gdb_err *err)
{
	int ret;

	if ((ret = db->env->log_flush(db->env, NULL)) != 0)
		return gdb_dberr(db, "log_flush", ret, err);
	if (db->readonly)
		return 0;
	/* A checkpoint once a megabyte of log has gathered lets
	 * DB_LOG_AUTO_REMOVE drop old log files and keeps recovery short. */
	if ((ret = db->env->txn_checkpoint(db->env, 1024, 0, 0)) != 0)
		return gdb_dberr(db, "txn_checkpoint", ret, err);
	return 0;
}
