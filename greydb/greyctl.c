/*
 * greyctl.c - list and change the greylisting store, as OpenBSD's spamdb.
 *
 *   greyctl [-D dir] [-j] [keys ...]     dump, or look keys up
 *   greyctl [-D dir] -a [-t | -T] keys   add or update
 *   greyctl [-D dir] -d [-G | -t | -T] keys  delete
 *   greyctl [-D dir] import | export traplist | [-j] stats | cluster
 *   (every form also takes --seccomp kill|log|off)
 *
 * Decisions (also in the usage text):
 * - -a checks every key before the store is opened: one bad key and
 *   nothing changes. -d works as spamdb (issue 16): each key is deleted
 *   or reported on its own, whatever entry it names, and the exit status
 *   says whether any failed.
 * - A lookup prints the records found and exits 1 when a key has none, as
 *   spamdb does, so "greyctl IP >/dev/null && ..." keeps working.
 * - -a and import create the directory and the database when missing (a
 *   fresh site seeds its store); every other command only opens.
 * - Changes are durable when greyctl returns: synchronous commits, and
 *   import flushes the log before it reports.
 * - greyctl never dies inside the store: SIGPIPE is ignored (a write to a
 *   closed pipe fails and the walk stops) and SIGINT, SIGTERM and SIGHUP
 *   only set a flag that the loops check. A process that dies with the
 *   environment open makes the next opener run recovery, and the daemon
 *   then has to reopen its handle.
 * - Once the arguments are checked and the store is open, a seccomp
 *   filter (spamd/common/sandbox.c) keeps greyctl to the calls it still needs:
 *   no network socket, no exec, no new process (--seccomp, as spamd's).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "greydb/greyctl.h"
#include "spamd/common/sandbox.h"

/* getopt_long's value for --seccomp (no short form) */
#define OPT_SECCOMP	256

/* What -a/-d act on, set by -G, -t and -T (WHITE when none). */
struct greyctl_args {
	int		 action;	/* 0 (list/look up), 'a' or 'd' */
	enum gdb_type	 type;
	char		 typeflag;	/* the flag that set type, or 0 */
	char		**keys;
	int		 nkeys;
};

static const char usage_text[] =
"usage: greyctl [-D dir] [-j] [keys ...]\n"
"       greyctl [-D dir] -a [-t | -T] keys ...\n"
"       greyctl [-D dir] -d [-G | -t | -T] keys ...\n"
"       greyctl [-D dir] import < dump\n"
"       greyctl [-D dir] export traplist\n"
"       greyctl [-D dir] [-j] stats\n"
"       greyctl [-D dir] explain address\n"
"       greyctl [-D dir] cluster\n"
"  -D dir   database directory (default " GDB_DEFAULT_DIR ")\n"
"  -a       add or update: WHITE (default), -t TRAPPED for 24 h,\n"
"           -T SPAMTRAP address (needs '@'; lowercased)\n"
"  -d       delete whatever entry the key names, as spamdb (an\n"
"           address: WHITE and TRAPPED; a mail address: SPAMTRAP);\n"
"           -t only TRAPPED, -T only SPAMTRAP, -G every GREY tuple\n"
"  -j       one JSON object a line instead of spamdb lines: type, ip\n"
"           (GREY also helo, from, to; SPAMTRAP address, not ip), first,\n"
"           pass, expire, bcount, pcount\n"
"  -h       this text\n"
"  --seccomp kill|log|off\n"
"           once the store is open a seccomp filter allows only the\n"
"           calls greyctl still needs; a call outside it kills greyctl\n"
"           (kill, the default), is logged by the kernel (log), or no\n"
"           filter is loaded (off). SPAMD_SECCOMP gives the default.\n"
"No arguments: list every record as spamdb does (GREY|ip|helo|from|to|\n"
"first|pass|expire|bcount|pcount, WHITE|ip|||first|pass|expire|bcount|\n"
"pcount, TRAPPED|ip|expire, SPAMTRAP|address). Keys alone: print their\n"
"records (an address: GREY, WHITE, TRAPPED; a mail address: SPAMTRAP);\n"
"exit 1 if a key has none, as spamdb.\n"
"-a checks every key first: one bad key and nothing is changed. -d, as\n"
"spamdb, reports a bad or missing key and goes on with the others.\n"
"-a and import create dir and database if missing.\n"
"-a of a TRAPPED address makes it WHITE (spamdb overwrites it too);\n"
"-t -a of a WHITE address drops its WHITE entry.\n"
"import reads spamdb lines on stdin ('#' and blank lines skipped); every\n"
"line is checked before any is written: one bad line and nothing is\n"
"imported. export traplist prints the unexpired TRAPPED addresses as a\n"
"spamd-setup list file. stats prints counts by type (and, when spamd\n"
"runs, its counters). explain prints what the store and the running\n"
"spamd know of an address and why it does or does not reach the MX.\n"
"cluster asks the running spamd for its --cluster-peer hosts, one line\n"
"each: peer= last_packet= last_catchup= last_digest= (times in seconds\n"
"since the epoch, 0 = never) differing= (entries apart at the last\n"
"digest) state=ok|auth-fail|unreachable|error|unknown.\n"
"-a and -d of WHITE or TRAPPED also tell a running spamd (dir/spamd.sock)\n"
"to update its firewall set at once.\n"
"Exit status 0 on success, 1 on any error or failed key, 2 on a usage\n"
"error (bad flags, no keys), as spamdb (message on stderr).\n";

/* greyctl_sandbox - the seccomp filter for the rest of the run */
int
greyctl_sandbox(const struct greyctl *ctl, int flags)
{
	const char *selftest;
	char err[256];
	int fd;

	if (ctl->sandbox == NULL)
		return 0;
	/* import loads the filter before the store opens: switch to the
	 * store's owner now, the filter forbids it later */
	if (greyctl_become_owner(ctl->dir) == -1)
		return -1;
	/* read before the filter, though getenv makes no call */
	selftest = getenv("SPAMD_SANDBOX_SELFTEST");
	if (sandbox_greyctl(ctl->seccomp, flags, err, sizeof(err)) == -1) {
		greyctl_warnx("seccomp filter (--seccomp %s): %s; "
		    "--seccomp off runs without it",
		    sandbox_mode_name(ctl->seccomp), err);
		return -1;
	}
	/*
	 * Test hook (tests/integration/greyctl_sandbox.py): make one call
	 * the filter forbids, so a test can see greyctl die of SIGSYS in
	 * kill mode and go on with --seccomp off.
	 */
	if (selftest != NULL && strcmp(selftest, "socket") == 0 &&
	    (fd = socket(AF_INET, SOCK_STREAM, 0)) != -1)
		close(fd);
	return 0;
}

/* key_check - is key a valid key for type; a message naming it if not */
static int
key_check(const char *key, enum gdb_type type)
{
	char canon[GDB_ADDR_MAX], safe[100];
	const char *p;

	if (type != GDB_SPAMTRAP) {
		if (gdb_addr_canon(key, canon) == 0)
			return 0;
		greyctl_warnx("bad address '%s': not an IPv4 or IPv6 address",
		    greyctl_safe(key, safe, sizeof(safe)));
		return -1;
	}
	if (strchr(key, '@') == NULL) {
		greyctl_warnx("bad spamtrap address '%s': no '@' in it",
		    greyctl_safe(key, safe, sizeof(safe)));
		return -1;
	}
	if (strlen(key) >= GDB_MAIL_MAX) {
		greyctl_warnx("bad spamtrap address '%s': longer than %d bytes",
		    greyctl_safe(key, safe, sizeof(safe)), GDB_MAIL_MAX - 1);
		return -1;
	}
	/* '|' would break the spamdb line, controls the line itself. */
	for (p = key; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '|') {
			greyctl_warnx("bad spamtrap address '%s': space, '|' "
			    "or control character at byte %zu",
			    greyctl_safe(key, safe, sizeof(safe)),
			    (size_t)(p - key));
			return -1;
		}
	}
	return 0;
}

/* key_rec - the key record of type for key */
static void
key_rec(struct gdb_rec *r, enum gdb_type type, const char *key)
{
	memset(r, 0, sizeof(*r));
	r->type = type;
	if (type == GDB_SPAMTRAP)
		strlcpy(r->to, key, sizeof(r->to));
	else
		strlcpy(r->ip, key, sizeof(r->ip));
}

struct grey_ctx {
	const struct greyctl	*ctl;	/* print when not NULL */
	char			 ip[GDB_ADDR_MAX];
	long			 n;
	int			 werr;
};

/* grey_one - count (and print) one GREY tuple of c->ip */
static int
grey_one(const struct gdb_rec *rec, void *arg)
{
	struct grey_ctx *c = arg;

	if (greyctl_stopped())
		return 1;
	if (rec->type != GDB_GREY || strcmp(rec->ip, c->ip) != 0)
		return 0;
	c->n++;
	if (c->ctl != NULL && greyctl_print(c->ctl, rec) == -1) {
		c->werr = 1;
		return 1;
	}
	return 0;
}

/* grey_of - count (and with ctl print) the GREY tuples of ip; -1 error */
static long
grey_of(struct gdb *db, const struct greyctl *ctl, const char *ip)
{
	struct grey_ctx c;
	struct gdb_err err;

	memset(&c, 0, sizeof(c));
	c.ctl = ctl;
	if (gdb_addr_canon(ip, c.ip) == -1)
		return 0;
	if (gdb_walk_ip(db, c.ip, grey_one, &c, &err) == -1) {
		greyctl_warnx("%s", err.msg);
		return -1;
	}
	if (c.werr)
		return -1;	/* main reports the output error */
	return c.n;
}

/* get_print - look one record up and print it; 1 found, 0 not, -1 error */
static int
get_print(const struct greyctl *ctl, struct gdb *db, enum gdb_type type,
    const char *key)
{
	struct gdb_rec r;
	struct gdb_err err;
	int ret;

	key_rec(&r, type, key);
	if ((ret = gdb_get(db, &r, &err)) == -1) {
		greyctl_warnx("%s", err.msg);
		return -1;
	}
	if (ret == 1 && greyctl_print(ctl, &r) == -1)
		return -1;	/* main reports the output error */
	return ret;
}

/* cmd_lookup - print the records of each key; 1 if one has none */
static int
cmd_lookup(const struct greyctl *ctl, struct greyctl_args *a)
{
	struct gdb *db;
	int i, missing = 0, ret = 0;
	long n;

	for (i = 0; i < a->nkeys; i++) {
		if (key_check(a->keys[i], strchr(a->keys[i], '@') != NULL ?
		    GDB_SPAMTRAP : GDB_WHITE) == -1)
			return 1;
	}
	if (greyctl_open(ctl, GREYCTL_READ, 0, &db) == -1)
		return 1;
	if (greyctl_sandbox(ctl, 0) == -1) {
		gdb_close(db);
		return 1;
	}
	for (i = 0; i < a->nkeys && ret == 0 && !greyctl_stopped(); i++) {
		const char *k = a->keys[i];
		int w, t;

		if (strchr(k, '@') != NULL) {
			if ((w = get_print(ctl, db, GDB_SPAMTRAP, k)) == -1)
				ret = 1;
			else if (w == 0)
				missing = 1;
			continue;
		}
		/* The dump's order: GREY, WHITE, TRAPPED. */
		if ((n = grey_of(db, ctl, k)) == -1 ||
		    (w = get_print(ctl, db, GDB_WHITE, k)) == -1 ||
		    (t = get_print(ctl, db, GDB_TRAPPED, k)) == -1) {
			ret = 1;
			break;
		}
		if (n == 0 && w == 0 && t == 0)
			missing = 1;
	}
	gdb_close(db);
	return ret != 0 || missing ? 1 : 0;
}

/* add_white - WHITE for ip as spamdb -a: new (first = pass = now, bcount
 * 1) or updated (pcount + 1, pass = now), expire = now + whiteexp */
static int
add_white(struct gdb *db, const char *ip, int64_t now, struct gdb_err *err)
{
	struct gdb_rec r;
	int ret;

	/* In spamdb WHITE and TRAPPED share the ip's key, so -a turns a
	 * trapped address white; here they are two records, so the TRAPPED
	 * one goes (a live TRAPPED would keep the ip from being white). */
	key_rec(&r, GDB_TRAPPED, ip);
	if (gdb_del(db, &r, err) == -1)
		return -1;
	key_rec(&r, GDB_WHITE, ip);
	if ((ret = gdb_get(db, &r, err)) == -1)
		return -1;
	if (ret == 0) {
		r.first = now;
		r.bcount = 1;
		r.pcount = 0;
	} else if (r.pcount < INT32_MAX)
		r.pcount++;
	r.pass = now;
	r.expire = now + GDB_WHITEEXP_DEFAULT;
	return gdb_put(db, &r, err);
}

/* cmd_add - add or update every key (all checked first) */
static int
cmd_add(const struct greyctl *ctl, struct greyctl_args *a)
{
	struct gdb *db;
	struct gdb_err err;
	int i, ret = 0;

	for (i = 0; i < a->nkeys; i++)
		if (key_check(a->keys[i], a->type) == -1)
			return 1;
	if (greyctl_open(ctl, GREYCTL_CREATE, 0, &db) == -1)
		return 1;
	/* the added WHITE/TRAPPED addresses go to spamd's socket after */
	if (greyctl_sandbox(ctl, SANDBOX_GC_CTL) == -1) {
		gdb_close(db);
		return 1;
	}
	for (i = 0; i < a->nkeys && ret == 0 && !greyctl_stopped(); i++) {
		switch (a->type) {
		case GDB_WHITE:
			ret = add_white(db, a->keys[i], ctl->now, &err);
			break;
		case GDB_TRAPPED:
			/* One transaction: TRAPPED written, WHITE dropped. */
			ret = gdb_trap(db, a->keys[i], ctl->now,
			    ctl->now + GDB_TRAPEXP_DEFAULT, &err);
			break;
		case GDB_SPAMTRAP:
			ret = gdb_spamtrap_add(db, a->keys[i], &err);
			break;
		case GDB_GREY:
			break;
		}
		if (ret == -1)
			greyctl_warnx("%s", err.msg);
	}
	gdb_close(db);
	if (ret == -1)
		return 1;
	/* (added) the running daemon puts the firewall element in now, as
	 * for -d: "whitelist a partner" must not wait for the reconcile */
	for (i = 0; i < a->nkeys && !greyctl_stopped(); i++) {
		char canon[GDB_ADDR_MAX];

		if ((a->type == GDB_WHITE || a->type == GDB_TRAPPED) &&
		    gdb_addr_canon(a->keys[i], canon) == 0)
			greyctl_daemon_fw(ctl, 1, a->type, canon);
	}
	return 0;
}

/*
 * del_one - delete what key names, as spamdb -d: with -t, -T or -G that
 * type; without, whatever entry the key has (an address: its WHITE and
 * TRAPPED entries, which spamdb keeps under one key; a mail address: its
 * SPAMTRAP). 1 deleted (wt, tt: which), 0 no entry, -1 error.
 */
static int
del_one(struct gdb *db, const struct greyctl_args *a, const char *key,
    int *wt, int *tt)
{
	static const enum gdb_type ip_types[] = { GDB_WHITE, GDB_TRAPPED };
	struct gdb_err err;
	struct gdb_rec r;
	enum gdb_type t;
	size_t i;
	int n, found = 0;

	*wt = *tt = 0;
	if (a->type == GDB_GREY) {
		if ((n = (int)grey_of(db, NULL, key)) <= 0)
			return n;
		if (gdb_del_grey_ip(db, key, &err) == -1) {
			greyctl_warnx("%s", err.msg);
			return -1;
		}
		return 1;
	}
	for (i = 0; i < 2; i++) {
		if (a->typeflag != 0)
			t = a->type;
		else if (strchr(key, '@') != NULL)
			t = GDB_SPAMTRAP;
		else
			t = ip_types[i];
		key_rec(&r, t, key);
		if ((n = gdb_get(db, &r, &err)) == -1 ||
		    (n == 1 && gdb_del(db, &r, &err) == -1)) {
			greyctl_warnx("%s", err.msg);
			return -1;
		}
		if (n == 1) {
			found = 1;
			*wt |= t == GDB_WHITE;
			*tt |= t == GDB_TRAPPED;
		}
		if (a->typeflag != 0 || t == GDB_SPAMTRAP)
			break;
	}
	return found;
}

/*
 * cmd_del - delete every key, as spamdb -d: a key that is bad or has no
 * entry is reported on its own and the others are still deleted; exit 1
 * if any key failed (spamdb sums the failures, which wraps at 256)
 */
static int
cmd_del(const struct greyctl *ctl, struct greyctl_args *a)
{
	struct gdb *db;
	char safe[100], canon[GDB_ADDR_MAX];
	int i, n, wt, tt, failed = 0;
	int *ok;

	if ((ok = calloc((size_t)a->nkeys, sizeof(*ok))) == NULL) {
		greyctl_warnx("out of memory");
		return 1;
	}
	if (greyctl_open(ctl, GREYCTL_WRITE, 0, &db) == -1) {
		free(ok);
		return 1;
	}
	/* the deleted WHITE/TRAPPED addresses go to spamd's socket after */
	if (greyctl_sandbox(ctl, SANDBOX_GC_CTL) == -1) {
		gdb_close(db);
		free(ok);
		return 1;
	}
	for (i = 0; i < a->nkeys && !greyctl_stopped(); i++) {
		const char *k = a->keys[i];

		if (key_check(k, a->typeflag != 0 ? a->type :
		    strchr(k, '@') != NULL ? GDB_SPAMTRAP : GDB_WHITE) == -1) {
			failed++;
			continue;
		}
		if ((n = del_one(db, a, k, &wt, &tt)) == 0)
			greyctl_warnx("no %sentry for %s", a->typeflag != 0 ?
			    (a->type == GDB_GREY ? "GREY " : a->type ==
			    GDB_TRAPPED ? "TRAPPED " : a->type == GDB_SPAMTRAP ?
			    "SPAMTRAP " : "WHITE ") : "",
			    greyctl_safe(k, safe, sizeof(safe)));
		if (n != 1) {
			failed++;
			continue;
		}
		ok[i] = (wt ? 1 : 0) | (tt ? 2 : 0);
	}
	gdb_close(db);
	/* (added) the running daemon drops the firewall element now */
	for (i = 0; i < a->nkeys && !greyctl_stopped(); i++) {
		if (ok[i] == 0 || gdb_addr_canon(a->keys[i], canon) == -1)
			continue;
		if (ok[i] & 1)
			greyctl_daemon_fw(ctl, 0, GDB_WHITE, canon);
		if (ok[i] & 2)
			greyctl_daemon_fw(ctl, 0, GDB_TRAPPED, canon);
	}
	free(ok);
	return failed != 0 ? 1 : 0;
}

/* dump_one - print one record of the dump */
static int
dump_one(const struct gdb_rec *rec, void *arg)
{
	if (greyctl_stopped())
		return 1;
	return greyctl_print(arg, rec) == -1 ? 1 : 0;
}

/* cmd_dump - print every record, in type order */
static int
cmd_dump(const struct greyctl *ctl)
{
	struct gdb *db;
	struct gdb_err err;
	int ret = 0;

	if (greyctl_open(ctl, GREYCTL_READ, 0, &db) == -1)
		return 1;
	if (greyctl_sandbox(ctl, 0) == -1) {
		gdb_close(db);
		return 1;
	}
	if (gdb_walk(db, 0, dump_one, (void *)ctl, &err) == -1) {
		greyctl_warnx("%s", err.msg);
		ret = 1;
	} else if (greyctl_out_ok(ctl) == -1)
		ret = 1;
	gdb_close(db);
	return ret;
}

/* cmd_stats - print counts by type */
static int
cmd_stats(const struct greyctl *ctl)
{
	struct gdb *db;
	struct gdb_err err;
	struct gdb_stats st;
	int ret = 0;

	if (greyctl_open(ctl, GREYCTL_READ, 0, &db) == -1)
		return 1;
	/* the daemon's counters come from its socket after */
	if (greyctl_sandbox(ctl, SANDBOX_GC_CTL) == -1) {
		gdb_close(db);
		return 1;
	}
	if (gdb_stats(db, &st, &err) == -1) {
		greyctl_warnx("%s", err.msg);
		ret = 1;
	} else if (greyctl_print_stats(ctl, &st) == -1)
		ret = 1;
	gdb_close(db);
	/* (added) and the running daemon's counters */
	if (ret == 0 && greyctl_daemon_stats(ctl) == -1)
		ret = 1;
	return ret;
}

/* cmd_export - export traplist */
static int
cmd_export(const struct greyctl *ctl)
{
	struct gdb *db;
	int ret;

	if (greyctl_open(ctl, GREYCTL_READ, 0, &db) == -1)
		return 1;
	if (greyctl_sandbox(ctl, 0) == -1) {
		gdb_close(db);
		return 1;
	}
	ret = greyctl_export_traplist(ctl, db) == -1 ? 1 : 0;
	gdb_close(db);
	return ret;
}

/* set_type - -G, -t or -T; two of them conflict */
static int
set_type(struct greyctl_args *a, char flag, enum gdb_type type)
{
	if (a->typeflag != 0 && a->typeflag != flag) {
		greyctl_warnx("flags -%c and -%c conflict", a->typeflag, flag);
		return -1;
	}
	a->typeflag = flag;
	a->type = type;
	return 0;
}

/* set_action - -a or -d; both conflict */
static int
set_action(struct greyctl_args *a, char flag)
{
	if (a->action != 0 && a->action != flag) {
		greyctl_warnx("flags -%c and -%c conflict", a->action, flag);
		return -1;
	}
	a->action = flag;
	return 0;
}

/* subcommand - run import, export or stats; -1 if argv is none of them */
static int
subcommand(struct greyctl *ctl, struct greyctl_args *a)
{
	const char *cmd = a->keys[0];

	if (strcmp(cmd, "import") != 0 && strcmp(cmd, "export") != 0 &&
	    strcmp(cmd, "stats") != 0 && strcmp(cmd, "explain") != 0 &&
	    strcmp(cmd, "cluster") != 0)
		return -1;
	/* (added) cluster: the running daemon's view of its peers */
	if (strcmp(cmd, "cluster") == 0) {
		if (a->nkeys != 1 || ctl->json) {
			greyctl_warnx("cluster takes no arguments and no -j");
			return 1;
		}
		return greyctl_daemon_cluster(ctl);
	}
	/* (added) explain ADDRESS: the store and the running daemon */
	if (strcmp(cmd, "explain") == 0) {
		if (a->nkeys != 2) {
			greyctl_warnx("explain: give one address: greyctl "
			    "explain ADDRESS");
			return 1;
		}
		if (ctl->json) {
			greyctl_warnx("flag -j does not apply to explain");
			return 1;
		}
		/* greyctl_explain opens the store, then loads the filter */
		return greyctl_explain(ctl, a->keys[1]);
	}
	if (ctl->json && strcmp(cmd, "stats") != 0) {
		greyctl_warnx("flag -j does not apply to %s", cmd);
		return 1;
	}
	if (strcmp(cmd, "export") == 0) {
		if (a->nkeys != 2 || strcmp(a->keys[1], "traplist") != 0) {
			greyctl_warnx("export: say what to export: "
			    "greyctl export traplist");
			return 1;
		}
		return cmd_export(ctl);
	}
	if (a->nkeys != 1) {
		greyctl_warnx("%s takes no arguments", cmd);
		return 1;
	}
	if (strcmp(cmd, "stats") == 0)
		return cmd_stats(ctl);
	return greyctl_import(ctl, stdin, "stdin");
}

/* main - read the flags and run one command; exit status 0, 1 (an
 * error, a key that failed) or 2 (a usage error: flags, no keys), as
 * spamdb */
int
main(int argc, char *argv[])
{
	struct greyctl ctl;
	struct greyctl_args a;
	static const struct option longopts[] = {
		{ "seccomp", required_argument, NULL, OPT_SECCOMP },
		{ NULL, 0, NULL, 0 }
	};
	const char *env;
	char safe[100];
	int ch, ret, out_errno = 0;

	memset(&ctl, 0, sizeof(ctl));
	ctl.out_errno = &out_errno;
	memset(&a, 0, sizeof(a));
	ctl.dir = GDB_DEFAULT_DIR;
	ctl.out = stdout;
	ctl.now = (int64_t)time(NULL);
	a.type = GDB_WHITE;
	ctl.seccomp = SANDBOX_KILL;
	ctl.sandbox = greyctl_sandbox;
	/* SPAMD_SECCOMP gives the default, as for spamd */
	if ((env = getenv("SPAMD_SECCOMP")) != NULL &&
	    (ctl.seccomp = sandbox_mode_parse(env)) == -1) {
		greyctl_warnx("SPAMD_SECCOMP=%s: want kill, log or off",
		    greyctl_safe(env, safe, sizeof(safe)));
		return 1;
	}
	greyctl_signals_setup();
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":D:adGhjTt", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case OPT_SECCOMP:
			if ((ctl.seccomp = sandbox_mode_parse(optarg)) == -1) {
				greyctl_warnx("flag --seccomp %s: want kill, "
				    "log or off",
				    greyctl_safe(optarg, safe, sizeof(safe)));
				return 2;
			}
			break;
		case 'D':
			if (*optarg == '\0') {
				greyctl_warnx("flag -D needs a directory");
				return 2;
			}
			ctl.dir = optarg;
			break;
		case 'a':
		case 'd':
			if (set_action(&a, (char)ch) == -1)
				return 2;
			break;
		case 'G':
			if (set_type(&a, 'G', GDB_GREY) == -1)
				return 2;
			break;
		case 't':
			if (set_type(&a, 't', GDB_TRAPPED) == -1)
				return 2;
			break;
		case 'T':
			if (set_type(&a, 'T', GDB_SPAMTRAP) == -1)
				return 2;
			break;
		case 'j':
			ctl.json = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case ':':
			if (optopt == OPT_SECCOMP)
				greyctl_warnx("flag --seccomp needs an argument"
				    " (see greyctl -h)");
			else
				greyctl_warnx("flag -%c needs an argument (see "
				    "greyctl -h)", optopt);
			return 2;
		default:
			/* getopt_long leaves optopt 0 for a long flag */
			if (optopt == 0)
				greyctl_warnx("unknown flag %s (see greyctl "
				    "-h)", greyctl_safe(argv[optind - 1], safe,
				    sizeof(safe)));
			else if (optopt >= 0x21 && optopt < 0x7f)
				greyctl_warnx("unknown flag -%c (see greyctl "
				    "-h)", optopt);
			else
				greyctl_warnx("unknown flag (byte 0x%02x) "
				    "(see greyctl -h)", optopt & 0xff);
			return 2;
		}
	}
	a.keys = argv + optind;
	a.nkeys = argc - optind;

	if (a.action == 'a' && a.type == GDB_GREY) {
		greyctl_warnx("cannot add GREY entries: -G works with -d only");
		return 2;
	}
	if (a.action == 0 && a.typeflag != 0) {
		greyctl_warnx("flag -%c needs -a or -d", a.typeflag);
		return 2;
	}
	if (a.action != 0 && ctl.json) {
		greyctl_warnx("flag -j does not apply to -%c", a.action);
		return 2;
	}
	if (a.action != 0 && a.nkeys == 0) {
		greyctl_warnx("no addresses given to -%c", a.action);
		return 2;
	}
	switch (a.action) {
	case 'a':
		ret = cmd_add(&ctl, &a);
		break;
	case 'd':
		ret = cmd_del(&ctl, &a);
		break;
	default:
		if (a.nkeys == 0)
			ret = cmd_dump(&ctl);
		else if ((ret = subcommand(&ctl, &a)) == -1)
			ret = cmd_lookup(&ctl, &a);
		break;
	}
	if (greyctl_stopped()) {
		greyctl_warnx("stopped by signal %d%s", greyctl_stopped(),
		    a.action != 0 ? "; keys before it were done" : "");
		ret = 1;
	}
	if (fflush(stdout) == EOF && out_errno == 0)
		out_errno = errno;
	/* A reader that went away (greyctl | head) is no news to anyone;
	 * a full disk is. */
	if (out_errno != 0 || ferror(stdout)) {
		if (out_errno != EPIPE)
			greyctl_warnx("stdout: %s", strerror(out_errno != 0 ?
			    out_errno : EIO));
		ret = 1;
	}
	return ret;
}
