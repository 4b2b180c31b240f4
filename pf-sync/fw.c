/*
 * fw.c - the firewall dispatcher: picks a backend by name, keeps the queue
 * of changes (one entry per set and address, the last change wins), sends
 * it in one batch, counts failures for the caller's backoff, and
 * reconciles the sets with the database.
 */
#include <sys/types.h>
#include <sys/tree.h>
/* libbsd's RB_GENERATE_STATIC marks functions __unused, which glibc lacks. */
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "greydb/greydb.h"
#include "pf-sync/fw.h"

extern char **environ;

const char fw_backend_names[] = "nftables ipset pf file";

static const struct fw_backend *const fw_backends[] = {
	&fw_backend_nft, &fw_backend_ipset, &fw_backend_pf, &fw_backend_file,
};

/* Default set names, [set][v6]. */
static const char *const fw_default_set[FW_NSETS][2] = {
	{ "spamd-white", "spamd-white6" },
	{ "spamd-black", "spamd-black6" },
	{ "spamd-greytrap", "spamd-greytrap6" },
};

/* One queued change; the tree is keyed by (set, ip). */
struct fw_qent {
	RB_ENTRY(fw_qent) entry;
	enum fw_set	set;
	int		v6;
	int		add;
	int64_t		timeout;	/* remaining seconds when queued; 0 none */
	int64_t		queued;		/* CLOCK_MONOTONIC seconds when queued */
	char		ip[FW_IP_MAX];
};

RB_HEAD(fw_queue, fw_qent);

struct fw {
	const struct fw_backend *be;
	void		*state;
	struct fw_names	 nm;
	char		*strs[4 + 2 * FW_NSETS];	/* owned copies */
	struct fw_queue	 queue;
	size_t		 pending;
	unsigned	 failures;
};

/* fw_qent_cmp - order queue entries by set, family, then address text */
static int
fw_qent_cmp(const struct fw_qent *a, const struct fw_qent *b)
{
	if (a->set != b->set)
		return a->set < b->set ? -1 : 1;
	if (a->v6 != b->v6)
		return a->v6 < b->v6 ? -1 : 1;
	return strcmp(a->ip, b->ip);
}

RB_GENERATE_STATIC(fw_queue, fw_qent, entry, fw_qent_cmp)

/* fw_mono - monotonic seconds, so a retried add loses the time it waited */
static int64_t
fw_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

/* fw_dup - keep a copy of a configuration string in fw->strs */
static const char *
fw_dup(struct fw *fw, size_t *n, const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		return NULL;
	fw->strs[(*n)++] = d;
	return d;
}

/* fw_ip_parse - canonical "addr" or "addr/len" into out */
int
fw_ip_parse(const char *in, char out[FW_IP_MAX], int *v6)
{
	char addr[FW_IP_MAX], canon[GDB_ADDR_MAX];
	const char *slash, *errstr;
	long long len = -1;
	size_t alen;

	if (in == NULL)
		return -1;
	slash = strchr(in, '/');
	alen = slash ? (size_t)(slash - in) : strlen(in);
	if (alen == 0 || alen >= sizeof(addr))
		return -1;
	memcpy(addr, in, alen);
	addr[alen] = '\0';
	if (gdb_addr_canon(addr, canon) == -1)
		return -1;
	*v6 = strchr(canon, ':') != NULL;
	if (slash != NULL) {
		len = strtonum(slash + 1, 0, *v6 ? 128 : 32, &errstr);
		if (errstr != NULL || slash[1] == '\0')
			return -1;
	}
	/* A full-length prefix is the address itself: one spelling per key. */
	if (len < 0 || len == (*v6 ? 128 : 32))
		snprintf(out, FW_IP_MAX, "%s", canon);
	else
		snprintf(out, FW_IP_MAX, "%.46s/%d", canon, (int)len);
	return 0;
}

/* fw_open - pick the backend by name, fill in defaults, open it */
int
fw_open(struct fw **out, const struct fw_conf *conf, char *err, size_t errsz)
{
	const char *name = conf->backend ? conf->backend : "nftables";
	const struct fw_backend *be = NULL;
	struct fw *fw;
	size_t i, n = 0;
	int s, f;

	*out = NULL;
	for (i = 0; i < sizeof(fw_backends) / sizeof(fw_backends[0]); i++)
		if (strcmp(fw_backends[i]->name, name) == 0)
			be = fw_backends[i];
	/* "nft" is what operators type for nftables. */
	if (be == NULL && strcmp(name, "nft") == 0)
		be = &fw_backend_nft;
	if (be == NULL) {
		snprintf(err, errsz, "unknown firewall backend \"%s\" "
		    "(known: %s)", name, fw_backend_names);
		return -1;
	}
	if ((fw = calloc(1, sizeof(*fw))) == NULL) {
		snprintf(err, errsz, "firewall: out of memory");
		return -1;
	}
	fw->be = be;
	RB_INIT(&fw->queue);
	fw->nm.family = fw_dup(fw, &n, conf->family ? conf->family : "inet");
	fw->nm.table = fw_dup(fw, &n, conf->table ? conf->table : "spamd");
	fw->nm.path = fw_dup(fw, &n, conf->path);
	fw->nm.pfctl = fw_dup(fw, &n, conf->pfctl ? conf->pfctl : "pfctl");
	for (s = 0; s < FW_NSETS; s++)
		for (f = 0; f < 2; f++) {
			const char *v = f ? conf->set6[s] : conf->set4[s];

			fw->nm.set[s][f] = fw_dup(fw, &n,
			    v ? v : fw_default_set[s][f]);
		}
	fw->nm.create = conf->create;
	fw->nm.use_trap_set = conf->use_trap_set;
	fw->nm.use_black_set = conf->use_black_set;
	if (fw->nm.family == NULL || fw->nm.table == NULL ||
	    fw->nm.pfctl == NULL || (conf->path && fw->nm.path == NULL)) {
		snprintf(err, errsz, "firewall: out of memory");
		fw_close(fw);
		return -1;
	}
	for (s = 0; s < FW_NSETS; s++)
		for (f = 0; f < 2; f++)
			if (fw->nm.set[s][f] == NULL) {
				snprintf(err, errsz, "firewall: out of memory");
				fw_close(fw);
				return -1;
			}
	if (be->open(&fw->nm, &fw->state, err, errsz) == -1) {
		fw->state = NULL;
		fw_close(fw);
		return -1;
	}
	*out = fw;
	return 0;
}

/* fw_queue_clear - drop every queued change */
static void
fw_queue_clear(struct fw *fw)
{
	struct fw_qent *e, *next;

	for (e = RB_MIN(fw_queue, &fw->queue); e != NULL; e = next) {
		next = RB_NEXT(fw_queue, &fw->queue, e);
		RB_REMOVE(fw_queue, &fw->queue, e);
		free(e);
	}
	fw->pending = 0;
}

/* fw_close - free the queue (unsent changes are dropped) and the backend */
void
fw_close(struct fw *fw)
{
	size_t i;

	if (fw == NULL)
		return;
	if (fw->state != NULL)
		fw->be->close(fw->state);
	fw_queue_clear(fw);
	for (i = 0; i < sizeof(fw->strs) / sizeof(fw->strs[0]); i++)
		free(fw->strs[i]);
	free(fw);
}

/* fw_queue_put - queue one change, replacing an earlier one of the key */
static int
fw_queue_put(struct fw *fw, enum fw_set set, const char *ip, int add,
    int64_t timeout)
{
	struct fw_qent key, *e;

	if ((unsigned)set >= FW_NSETS)
		return -1;
	memset(&key, 0, sizeof(key));
	key.set = set;
	if (fw_ip_parse(ip, key.ip, &key.v6) == -1)
		return -1;
	if ((e = RB_FIND(fw_queue, &fw->queue, &key)) == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return -1;
		*e = key;
		RB_INSERT(fw_queue, &fw->queue, e);
		fw->pending++;
	}
	e->add = add;
	e->timeout = timeout;
	e->queued = fw_mono();
	return 0;
}

/* fw_add - queue ip into set until expire (0 = no timeout) */
int
fw_add(struct fw *fw, enum fw_set set, const char *ip, int64_t expire,
    int64_t now)
{
	int64_t timeout = 0;

	if (expire != 0) {
		timeout = expire - now;
		/* Already expired: the kernel would drop it at once. */
		if (timeout <= 0)
			return 0;
	}
	return fw_queue_put(fw, set, ip, 1, timeout);
}

/* fw_del - queue ip out of set */
int
fw_del(struct fw *fw, enum fw_set set, const char *ip)
{
	return fw_queue_put(fw, set, ip, 0, 0);
}

/* fw_pending - number of queued changes */
size_t
fw_pending(const struct fw *fw)
{
	return fw->pending;
}

/* fw_flush - send the queue in one batch; on failure it stays queued */
int
fw_flush(struct fw *fw, char *err, size_t errsz)
{
	struct fw_change *ch;
	struct fw_qent *e;
	int64_t mono = fw_mono();
	size_t n = 0;

	if (fw->pending == 0)
		return 0;
	if ((ch = calloc(fw->pending, sizeof(*ch))) == NULL) {
		snprintf(err, errsz, "firewall: out of memory for %zu changes",
		    fw->pending);
		fw->failures++;
		return -1;
	}
	RB_FOREACH(e, fw_queue, &fw->queue) {
		int64_t t = e->timeout;

		/* Time spent waiting for a retry counts against the timeout. */
		if (e->add && t > 0) {
			t -= mono - e->queued;
			if (t <= 0)
				continue;
			/* A longer time than the kernel takes is cut to its
			 * limit; reconcile refreshes the element later. */
			if (fw->be->max_timeout > 0 && t > fw->be->max_timeout)
				t = fw->be->max_timeout;
		}
		ch[n].set = e->set;
		ch[n].v6 = e->v6;
		ch[n].add = e->add;
		ch[n].timeout = t;
		memcpy(ch[n].ip, e->ip, sizeof(ch[n].ip));
		n++;
	}
	if (n > 0 && fw->be->flush(fw->state, ch, n, err, errsz) == -1) {
		free(ch);
		fw->failures++;
		return -1;
	}
	free(ch);
	fw_queue_clear(fw);
	fw->failures = 0;
	return 0;
}

/* fw_retry_delay - seconds before the next flush: 0, then 1, 2, 4 .. 60 */
int
fw_retry_delay(const struct fw *fw)
{
	if (fw->failures == 0)
		return 0;
	if (fw->failures > 6)
		return 60;
	return 1 << (fw->failures - 1);
}

/* fw_failures - consecutive failed flushes */
unsigned
fw_failures(const struct fw *fw)
{
	return fw->failures;
}

/* fw_present - is the backend's table there (see fw.h) */
int
fw_present(struct fw *fw, char *what, size_t whatsz, uint64_t *id)
{
	uint64_t dummy;

	if (id == NULL)
		id = &dummy;
	*id = 0;
	if (fw->be->present == NULL) {
		snprintf(what, whatsz, "%s", fw->be->name);
		return -1;
	}
	return fw->be->present(fw->state, what, whatsz, id);
}

/* fw_watchable - does the backend have a table to look at (see fw.h) */
int
fw_watchable(const struct fw *fw)
{
	return fw->be->present != NULL;
}

/* fw_present_kind - what fw_present names (see fw.h) */
const char *
fw_present_kind(const struct fw *fw)
{
	return fw->be->kind != NULL ? fw->be->kind : "table";
}

/* fw_present_howto - how the missing table or set is made again */
const char *
fw_present_howto(const struct fw *fw)
{
	return fw->be->howto != NULL ? fw->be->howto : "reload the ruleset";
}

/* fw_backend_name - the backend's name */
const char *
fw_backend_name(const struct fw *fw)
{
	return fw->be->name;
}

/* fw_set_name - resolved set name */
const char *
fw_set_name(const struct fw *fw, enum fw_set set, int v6)
{
	if ((unsigned)set >= FW_NSETS)
		return NULL;
	return fw->nm.set[set][v6 ? 1 : 0];
}

/* fw_list - visit one set's elements through the backend */
int
fw_list(struct fw *fw, enum fw_set set, int v6, fw_list_fn fn, void *arg,
    char *err, size_t errsz)
{
	if ((unsigned)set >= FW_NSETS) {
		snprintf(err, errsz, "firewall: no such set %d", (int)set);
		return -1;
	}
	return fw->be->list(fw->state, set, v6 ? 1 : 0, fn, arg, err, errsz);
}

/* Reconcile: the set's elements, marked when the database has them. */
struct fw_relem {
	RB_ENTRY(fw_relem) entry;
	int64_t		expires;
	int		seen;
	char		ip[FW_IP_MAX];
};

RB_HEAD(fw_rtree, fw_relem);

/* fw_relem_cmp - order reconcile elements by address text */
static int
fw_relem_cmp(const struct fw_relem *a, const struct fw_relem *b)
{
	return strcmp(a->ip, b->ip);
}

RB_GENERATE_STATIC(fw_rtree, fw_relem, entry, fw_relem_cmp)

struct fw_rctx {
	struct fw	*fw;
	struct fw_rtree	 tree;
	enum fw_set	 set;
	enum gdb_type	 type;
	int64_t		 now;
	long		 added;
	int		 oom;
};

/* fw_rlist_cb - remember one element the firewall holds */
static int
fw_rlist_cb(const char *ip, int64_t expires, void *arg)
{
	struct fw_rctx *rc = arg;
	struct fw_relem *el;
	int v6;

	if ((el = calloc(1, sizeof(*el))) == NULL) {
		rc->oom = 1;
		return 1;
	}
	/* An element we cannot parse is kept as text and so removed. */
	if (fw_ip_parse(ip, el->ip, &v6) == -1)
		snprintf(el->ip, sizeof(el->ip), "%s", ip);
	el->expires = expires;
	if (RB_INSERT(fw_rtree, &rc->tree, el) != NULL)
		free(el);
	return 0;
}

/*
 * A kernel timeout this much shorter than the database's remaining time is
 * refreshed (the address was whitelisted again and the refresh was lost,
 * e.g. while the firewall failed). Small gaps are clock and listing skew.
 */
#define FW_RECONCILE_SLACK 300

/* fw_rdb_cb - one database record: mark it present or queue the add */
static int
fw_rdb_cb(const struct gdb_rec *rec, void *arg)
{
	struct fw_rctx *rc = arg;
	struct fw_relem key, *el;
	int v6;

	if (rec->type != rc->type || rec->expire <= rc->now)
		return 0;
	if (fw_ip_parse(rec->ip, key.ip, &v6) == -1)
		return 0;
	el = RB_FIND(fw_rtree, &rc->tree, &key);
	if (el != NULL) {
		int64_t want = rec->expire - rc->now;

		el->seen = 1;
		if (rc->fw->be->max_timeout > 0 &&
		    want > rc->fw->be->max_timeout)
			want = rc->fw->be->max_timeout;
		if (el->expires <= 0 ||
		    el->expires >= want - FW_RECONCILE_SLACK)
			return 0;
		/* Present but expiring too early: re-add with the right time;
		 * not counted as added. */
		if (fw_add(rc->fw, rc->set, key.ip, rec->expire, rc->now) == -1)
			rc->oom = 1;
		return rc->oom;
	}
	if (fw_add(rc->fw, rc->set, key.ip, rec->expire, rc->now) == -1) {
		rc->oom = 1;
		return 1;
	}
	rc->added++;
	return 0;
}

/* fw_rtree_free - free the reconcile tree */
static void
fw_rtree_free(struct fw_rtree *t)
{
	struct fw_relem *el, *next;

	for (el = RB_MIN(fw_rtree, t); el != NULL; el = next) {
		next = RB_NEXT(fw_rtree, t, el);
		RB_REMOVE(fw_rtree, t, el);
		free(el);
	}
}

/* fw_reconcile_set - repair one set (both families) against one type */
static int
fw_reconcile_set(struct fw *fw, struct gdb *db, enum fw_set set,
    enum gdb_type type, int64_t now, long *added, long *removed, char *err,
    size_t errsz)
{
	struct fw_rctx rc;
	struct fw_relem *el;
	struct gdb_err gerr;
	int v6, rv = -1;

	memset(&rc, 0, sizeof(rc));
	rc.fw = fw;
	rc.set = set;
	rc.type = type;
	rc.now = now;
	RB_INIT(&rc.tree);
	for (v6 = 0; v6 < 2; v6++)
		if (fw->be->list(fw->state, set, v6, fw_rlist_cb, &rc, err,
		    errsz) == -1)
			goto out;
	if (rc.oom) {
		snprintf(err, errsz, "firewall reconcile: out of memory");
		goto out;
	}
	memset(&gerr, 0, sizeof(gerr));
	if (gdb_walk(db, type, fw_rdb_cb, &rc, &gerr) == -1) {
		snprintf(err, errsz, "firewall reconcile: %s", gerr.msg);
		goto out;
	}
	if (rc.oom) {
		snprintf(err, errsz, "firewall reconcile: out of memory");
		goto out;
	}
	RB_FOREACH(el, fw_rtree, &rc.tree) {
		if (el->seen)
			continue;
		/* Text fw_ip_parse rejected cannot be queued; report it. */
		if (fw_del(fw, set, el->ip) == -1) {
			snprintf(err, errsz, "firewall reconcile: cannot remove "
			    "\"%s\" from %s", el->ip, fw->nm.set[set][0]);
			goto out;
		}
		(*removed)++;
	}
	*added += rc.added;
	rv = 0;
out:
	fw_rtree_free(&rc.tree);
	return rv;
}

/* fw_reconcile - repair WHITE (and TRAP) sets both ways, then flush */
int
fw_reconcile(struct fw *fw, struct gdb *db, int64_t now, long *added,
    long *removed, char *err, size_t errsz)
{
	long a = 0, r = 0;

	if (fw_reconcile_set(fw, db, FW_WHITE, GDB_WHITE, now, &a, &r, err,
	    errsz) == -1)
		return -1;
	if (fw->nm.use_trap_set && fw_reconcile_set(fw, db, FW_TRAP,
	    GDB_TRAPPED, now, &a, &r, err, errsz) == -1)
		return -1;
	if (added)
		*added = a;
	if (removed)
		*removed = r;
	return fw_flush(fw, err, errsz);
}

/* fw_exec_errtail - append a program's stderr (one line) to err */
static void
fw_exec_errtail(char *err, size_t errsz, const char *text, size_t len)
{
	size_t off = strlen(err), i;

	if (len == 0 || off + 3 >= errsz)
		return;
	err[off++] = ':';
	err[off++] = ' ';
	/* Newlines become "; " so the error stays one log line. */
	for (i = 0; i < len && off + 1 < errsz; i++) {
		char c = text[i];

		if (c == '\n') {
			if (i + 1 == len)
				break;
			if (off + 2 >= errsz)
				break;
			err[off++] = ';';
			c = ' ';
		} else if ((unsigned char)c < 0x20 || c == 0x7f)
			c = '?';
		err[off++] = c;
	}
	err[off] = '\0';
}

#define FW_EXEC_TIMEOUT_MS 60000
#define FW_EXEC_ERRMAX 4096

/* fw_exec - run a program with fixed argv, data on stdin, output captured */
int
fw_exec(char *const argv[], const char *in, size_t inlen, char **out,
    size_t *outlen, char *err, size_t errsz)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t defsigs;
	int attr_ok = 0;
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	char ebuf[FW_EXEC_ERRMAX], *obuf = NULL;
	size_t elen = 0, olen = 0, ocap = 0, inoff = 0;
	sigset_t pipeset, oldset, pending;
	int64_t start = fw_mono();
	int status, rv = -1, fa_ok = 0, sigpipe_was_pending;
	pid_t pid = -1;

	if (out)
		*out = NULL;
	if (outlen)
		*outlen = 0;
	/* Writing to a program that exited early must not kill the caller. */
	sigemptyset(&pipeset);
	sigaddset(&pipeset, SIGPIPE);
	sigpending(&pending);
	sigpipe_was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipeset, &oldset);

	if (pipe2(pin, O_CLOEXEC) == -1 || pipe2(pout, O_CLOEXEC) == -1 ||
	    pipe2(perr, O_CLOEXEC) == -1) {
		snprintf(err, errsz, "%s: pipe: %s", argv[0], strerror(errno));
		goto done;
	}
	if (posix_spawn_file_actions_init(&fa) != 0) {
		snprintf(err, errsz, "%s: spawn setup failed", argv[0]);
		goto done;
	}
	fa_ok = 1;
	posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
	posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
	posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
	/* The daemon's sockets and database files are not the tool's. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
	/* The tool starts with the caller's signal mask and default
	 * actions, whatever the daemon ignores or blocks. */
	if (posix_spawnattr_init(&attr) != 0) {
		snprintf(err, errsz, "%s: spawn setup failed", argv[0]);
		goto done;
	}
	attr_ok = 1;
	sigemptyset(&defsigs);
	sigaddset(&defsigs, SIGPIPE);
	sigaddset(&defsigs, SIGCHLD);
	sigaddset(&defsigs, SIGHUP);
	sigaddset(&defsigs, SIGINT);
	sigaddset(&defsigs, SIGTERM);
	posix_spawnattr_setsigdefault(&attr, &defsigs);
	posix_spawnattr_setsigmask(&attr, &oldset);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF |
	    POSIX_SPAWN_SETSIGMASK);
	{
		int e = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);

		if (e != 0) {
			pid = -1;
			snprintf(err, errsz, "%s: cannot run: %s", argv[0],
			    strerror(e));
			goto done;
		}
	}
	close(pin[0]); pin[0] = -1;
	close(pout[1]); pout[1] = -1;
	close(perr[1]); perr[1] = -1;
	if (inlen == 0) {
		close(pin[1]);
		pin[1] = -1;
	} else
		fcntl(pin[1], F_SETFL, O_NONBLOCK);

	while (pout[0] != -1 || perr[0] != -1 || pin[1] != -1) {
		struct pollfd pfd[3];
		int64_t left = FW_EXEC_TIMEOUT_MS - (fw_mono() - start) * 1000;
		int np = 0, k;

		if (left <= 0) {
			kill(pid, SIGKILL);
			snprintf(err, errsz, "%s: no answer within %d s, killed",
			    argv[0], FW_EXEC_TIMEOUT_MS / 1000);
			waitpid(pid, &status, 0);
			pid = -1;
			goto done;
		}
		if (pin[1] != -1) {
			pfd[np].fd = pin[1]; pfd[np++].events = POLLOUT;
		}
		if (pout[0] != -1) {
			pfd[np].fd = pout[0]; pfd[np++].events = POLLIN;
		}
		if (perr[0] != -1) {
			pfd[np].fd = perr[0]; pfd[np++].events = POLLIN;
		}
		if (poll(pfd, np, 1000) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(err, errsz, "%s: poll: %s", argv[0],
			    strerror(errno));
			goto done;
		}
		for (k = 0; k < np; k++) {
			ssize_t r;

			if (pfd[k].revents == 0)
				continue;
			if (pfd[k].fd == pin[1]) {
				r = write(pin[1], in + inoff, inlen - inoff);
				if (r > 0)
					inoff += (size_t)r;
				if ((r == -1 && errno != EAGAIN &&
				    errno != EINTR) || inoff == inlen) {
					close(pin[1]);
					pin[1] = -1;
				}
			} else if (pfd[k].fd == pout[0]) {
				if (ocap - olen < 65536) {
					char *nb = realloc(obuf, ocap + 262144);

					if (nb == NULL) {
						snprintf(err, errsz, "%s: out of "
						    "memory for output", argv[0]);
						kill(pid, SIGKILL);
						waitpid(pid, &status, 0);
						pid = -1;
						goto done;
					}
					obuf = nb;
					ocap += 262144;
				}
				r = read(pout[0], obuf + olen, ocap - olen - 1);
				if (r > 0)
					olen += (size_t)r;
				else if (r == 0 || (errno != EAGAIN &&
				    errno != EINTR)) {
					close(pout[0]);
					pout[0] = -1;
				}
			} else {
				char junk[512];

				/* Keep the first FW_EXEC_ERRMAX bytes. */
				if (elen < sizeof(ebuf))
					r = read(perr[0], ebuf + elen,
					    sizeof(ebuf) - elen);
				else
					r = read(perr[0], junk, sizeof(junk));
				if (r > 0 && elen < sizeof(ebuf))
					elen += (size_t)r;
				else if (r == 0 || (r == -1 &&
				    errno != EAGAIN && errno != EINTR)) {
					close(perr[0]);
					perr[0] = -1;
				}
			}
		}
	}
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR) {
			snprintf(err, errsz, "%s: waitpid: %s", argv[0],
			    strerror(errno));
			pid = -1;
			goto done;
		}
	}
	pid = -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		rv = 0;
	} else {
		if (WIFEXITED(status))
			snprintf(err, errsz, "%s exited with status %d",
			    argv[0], WEXITSTATUS(status));
		else
			snprintf(err, errsz, "%s killed by signal %d",
			    argv[0], WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		fw_exec_errtail(err, errsz, ebuf, elen);
	}
	if (rv == 0 && out) {
		if (obuf == NULL && (obuf = malloc(1)) == NULL) {
			snprintf(err, errsz, "%s: out of memory", argv[0]);
			rv = -1;
			goto done;
		}
		obuf[olen] = '\0';
		*out = obuf;
		obuf = NULL;
		if (outlen)
			*outlen = olen;
	}
done:
	if (pid != -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_ok)
		posix_spawnattr_destroy(&attr);
	for (int i = 0; i < 2; i++) {
		if (pin[i] != -1)
			close(pin[i]);
		if (pout[i] != -1)
			close(pout[i]);
		if (perr[i] != -1)
			close(perr[i]);
	}
	free(obuf);
	/* Swallow a SIGPIPE we caused, then restore the caller's mask. */
	if (!sigpipe_was_pending) {
		struct timespec zero = { 0, 0 };

		sigpending(&pending);
		if (sigismember(&pending, SIGPIPE))
			sigtimedwait(&pipeset, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &oldset, NULL);
	return rv;
}
