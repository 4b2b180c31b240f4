/*
 * setup_main.c - spamd-setup: load the black and white lists named in
 * spamd.conf into the running engine (and, with -b, the firewall).
 *
 *   spamd-setup [-bDdn] [-f conf] [-p port] [-s statefile]
 *               [--reload-every secs | -R minutes] [--pid-file file]
 *               [--host addr] [--fw-backend name] [--fw-path file]
 *               [--fw-table name] [--fw-family name] [--fw-create]
 *               [--max-size bytes] [--timeout seconds]
 *   spamd-setup --spf-walk [-4 | -6] [--dns-server addr:port] [domain ...]
 *
 * One run: read spamd.conf, fetch every list of all: in order, cut each
 * white list out of the black list just before it (as OpenBSD), collapse
 * each black list to the fewest CIDR blocks and send it to the config port
 * (one connection a list). A list whose entry is bad or that cannot be
 * fetched is not sent, so the engine keeps the version it has, the others
 * are, and the exit status is 1; a black list whose white list failed is
 * not sent either (it could block what the white list protects). Lists
 * loaded last time but gone from spamd.conf are cleared ("tag;"): their
 * tags are kept in the state file (-s, default
 * /var/db/spamd/spamd-setup.state, one tag a line).
 *
 * -D loads once in the background, as OpenBSD's (its rc script runs
 * "spamd-setup -D" at boot). --reload-every (or -R minutes) stays running
 * instead, reloading on SIGHUP and every period, holding an flock on
 * --pid-file so that a second one refuses to start.
 *
 * --spf-walk prints the networks the domains' SPF records authorise as a
 * list file instead (setup_spf.c does the walk).
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "pf-sync/fw.h"
#include "spamd/common/log.h"
#include "spamd/common/privsep.h"
#include "spamd/setup/setup.h"
#include "spamd/setup/setup_spf.h"

#define SETUP_PIDFILE_DEFAULT	"/run/spamd-setup.pid"
#define SETUP_SEND_TIMEOUT	120	/* seconds for the engine to answer */
#define SETUP_WARN_MAX		20	/* bad lines shown per list */

/* Everything the command line sets. */
struct setup_opts {
	const char		*conf;
	const char		*state;
	const char		*host;
	int			 port;
	int			 debug;
	int			 dryrun;
	int			 daemon;	/* -D: into the background */
	int			 firewall;
	long			 reload;	/* seconds; 0: one run */
	const char		*pidfile;
	struct setup_fetchopt	 fetch;
	struct fw_conf		 fw;
	int			 spf;		/* --spf-walk */
	int			 family;	/* -4 / -6: 4 or 6, 0 both */
	const char		*dns_server;	/* --dns-server addr:port */
	const char		*user;		/* --user: who fetches, as root */
	int			 user_given;
};

/* One list during a run: its addresses and whether it is usable. */
struct setup_item {
	struct setup_addrs	 a;
	int			 ok;
	long			 entries;
};

/* Bad-line reporting for one list: the first few, then a count. */
struct setup_warnstate {
	long	shown;
};

/* setup_usage - print the synopsis and exit */
static void __attribute__((noreturn))
setup_usage(int code)
{
	fprintf(code == 0 ? stdout : stderr,
	    "usage: spamd-setup [-bDdn] [-f conf] [-p port] [-s statefile]\n"
	    "                   [--reload-every secs | -R minutes] "
	    "[--pid-file file]\n"
	    "                   [--host addr] [--fw-backend name] "
	    "[--fw-path file]\n"
	    "                   [--fw-table name] [--fw-family name] "
	    "[--fw-create]\n"
	    "                   [--max-size bytes] [--timeout seconds] "
	    "[--user name]\n"
	    "       spamd-setup --spf-walk [-4 | -6] [--dns-server addr:port] "
	    "[domain ...]\n"
	    "  (--fw and --fw-file are accepted for --fw-backend and "
	    "--fw-path, as spamd spells them)\n"
	    "  -b  also load the black lists into the firewall's black sets\n"
	    "  -D  load once in the background (as OpenBSD)\n"
	    "  --reload-every secs  stay running: reload on SIGHUP and every "
	    "secs (-R: in\n"
	    "      minutes); one at a time, by a lock on --pid-file "
	    "(default %s)\n"
	    "  -d  debug output (and stay in the foreground with -D)\n"
	    "  -n  print the control lines instead of sending them\n"
	    "  -f  spamd.conf (default %s)\n"
	    "  -p  engine config port (default %d) on --host "
	    "(default 127.0.0.1)\n"
	    "  -s  state file with the tags loaded last time (default %s)\n"
	    "  --user  as root, lists are fetched and parsed as this user "
	    "(default _spamd,\n"
	    "          else nobody)\n"
	    "  --spf-walk  print the networks of the domains' SPF records "
	    "(domains from\n"
	    "              stdin, one a line, when none are given); -4/-6: "
	    "one family\n",
	    SETUP_PIDFILE_DEFAULT, SETUP_CONF_DEFAULT, SETUP_PORT_DEFAULT,
	    SETUP_STATE_DEFAULT);
	exit(code);
}

/* setup_warn - report a bad list line, at most SETUP_WARN_MAX per list */
static void
setup_warn(void *arg, const char *text)
{
	struct setup_warnstate *w = arg;

	if (w->shown++ < SETUP_WARN_MAX)
		log_warnx("%s (line skipped)", text);
}

/* setup_state_read - the tags of the state file (missing file: none) */
static int
setup_state_read(const char *path, char ***tags, size_t *n)
{
	struct setup_buf b = { 0 };
	char err[256], *line, *save, **t;

	*tags = NULL;
	*n = 0;
	if (access(path, F_OK) == -1 && errno == ENOENT)
		return 0;
	if (setup_read_file(path, 1024 * 1024, &b, err, sizeof(err)) == -1) {
		log_warnx("state file %s", err);
		return -1;
	}
	for (line = strtok_r(b.p, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (strlen(line) >= BL_TAG_MAX || strpbrk(line, " \t;\"") != NULL)
			continue;	/* not a tag we could have written */
		if ((t = reallocarray(*tags, *n + 1, sizeof(*t))) == NULL ||
		    (t[*n] = strdup(line)) == NULL) {
			if (t != NULL)
				*tags = t;
			setup_buf_free(&b);
			return -1;
		}
		*tags = t;
		(*n)++;
	}
	setup_buf_free(&b);
	return 0;
}

/* setup_state_write - replace the state file with these tags */
static int
setup_state_write(const char *path, char **tags, size_t n)
{
	char tmp[4096];
	FILE *f;
	size_t i;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s", path);
	/* why: the default lives in spamd's database directory, which may
	 * not exist yet on a fresh system; make the last level only */
	if (strrchr(tmp, '/') != NULL && strrchr(tmp, '/') != tmp) {
		*strrchr(tmp, '/') = '\0';
		if (mkdir(tmp, 0755) == -1 && errno != EEXIST)
			log_warn("state directory %s", tmp);
	}
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	if ((fd = mkstemp(tmp)) == -1) {
		log_warn("state file %s: cannot write", path);
		return -1;
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	fprintf(f, "# spamd-setup: lists loaded into the engine; "
	    "a tag here and not in spamd.conf is cleared next run\n");
	for (i = 0; i < n; i++)
		fprintf(f, "%s\n", tags[i]);
	if (fflush(f) != 0 || fsync(fileno(f)) == -1) {
		log_warn("state file %s: write", tmp);
		fclose(f);
		unlink(tmp);
		return -1;
	}
	fclose(f);
	if (rename(tmp, path) == -1) {
		log_warn("state file %s: rename", path);
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* setup_tags_add - append a copy of tag unless present */
static int
setup_tags_add(char ***tags, size_t *n, const char *tag)
{
	char **t;
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp((*tags)[i], tag) == 0)
			return 0;
	if ((t = reallocarray(*tags, *n + 1, sizeof(*t))) == NULL)
		return -1;
	*tags = t;
	if ((t[*n] = strdup(tag)) == NULL)
		return -1;
	(*n)++;
	return 0;
}

/* setup_tags_free - free a tag array */
static void
setup_tags_free(char **tags, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(tags[i]);
	free(tags);
}

/* setup_deliver - print (-n) or send one control line; 0 when loaded */
static int
setup_deliver(const struct setup_opts *o, const char *tag, const char *line,
    size_t len, long cidrs)
{
	char answer[512], err[768];

	if (o->dryrun) {
		fwrite(line, 1, len, stdout);
		return 0;
	}
	if (setup_send(o->host, o->port, line, len, SETUP_SEND_TIMEOUT, answer,
	    sizeof(answer), err, sizeof(err)) == -1) {
		log_warnx("list=%s event=send-failed error=\"%s\" (the engine "
		    "keeps its previous version)", tag, err);
		return -1;
	}
	log_debug("list=%s event=loaded cidrs=%ld answer=\"%s\"", tag, cidrs,
	    answer[0] != '\0' ? answer : "(none)");
	return 0;
}

/* An array of canonical firewall strings being built. */
struct setup_fwset {
	char	**s;
	size_t	  n, cap;
};

/* setup_fw_collect - add one CIDR (canonical form) to a fwset */
static int
setup_fw_collect(void *arg, int af, const char *cidr)
{
	struct setup_fwset *w = arg;
	char canon[FW_IP_MAX], **p;
	int v6;

	if (fw_ip_parse(cidr, canon, &v6) == -1)
		return -1;
	if (w->n == w->cap) {
		w->cap = w->cap == 0 ? 1024 : w->cap * 2;
		if ((p = reallocarray(w->s, w->cap, sizeof(*p))) == NULL)
			return -1;
		w->s = p;
	}
	if ((w->s[w->n] = strdup(canon)) == NULL)
		return -1;
	w->n++;
	return 0;
}

/* setup_strcmp - qsort/bsearch order of string pointers */
static int
setup_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The walk over a firewall set's current elements. */
struct setup_fwwalk {
	struct fw		*fw;
	const struct setup_fwset *want;
	long			 removed;
};

/* setup_fw_stale - queue the removal of an element not wanted any more */
static int
setup_fw_stale(const char *ip, int64_t expires, void *arg)
{
	struct setup_fwwalk *w = arg;
	const char *key = ip;

	if (w->want->n > 0 && bsearch(&key, w->want->s, w->want->n,
	    sizeof(char *), setup_strcmp) != NULL)
		return 0;
	if (fw_del(w->fw, FW_BLACK, ip) == 0)
		w->removed++;
	return 0;
}

/* setup_fw_keep - add a listed element to the union (a failed list's
 * blocks stay in the set, so new blocks must not overlap them) */
static int
setup_fw_keep(const char *ip, int64_t expires, void *arg)
{
	char what[128];

	(void)expires;
	/* an element we cannot read (an operator's range) is left alone */
	if (setup_list_line(ip, strlen(ip), arg, what, sizeof(what)) == -1)
		log_warnx("firewall: black set element %s kept as is: %s", ip,
		    what);
	return 0;
}

/*
 * setup_firewall - make the firewall's black sets hold the union of the
 * black lists (-b), merged into blocks that do not overlap: real feeds
 * overlap, and an nftables interval set refuses an add whose intervals
 * overlap each other or its elements ("conflicting intervals specified");
 * ipset and pf take them but would hold redundant entries. When a list
 * failed, its previous blocks must stay: the set's elements join the
 * union, and an element the merged blocks cover is replaced by them.
 */
static int
setup_firewall(const struct setup_opts *o, const struct setup_conf *c,
    struct setup_item *it, int complete)
{
	struct setup_fwset want = { 0 };
	struct setup_addrs u = { 0 };
	struct setup_fwwalk walk;
	struct fw *fw = NULL;
	char err[512];
	long n4, n6;
	size_t i;
	int ret = -1;

	for (i = 0; i < c->n; i++)
		if (!c->list[i].white && it[i].ok &&
		    setup_addrs_merge(&u, &it[i].a) == -1) {
			log_warnx("firewall: out of memory");
			goto out;
		}
	if (!o->dryrun && fw_open(&fw, &o->fw, err, sizeof(err)) == -1) {
		log_warnx("firewall: %s", err);
		goto out;
	}
	if (fw != NULL && !complete &&
	    (fw_list(fw, FW_BLACK, 0, setup_fw_keep, &u, err,
	    sizeof(err)) == -1 || fw_list(fw, FW_BLACK, 1, setup_fw_keep, &u,
	    err, sizeof(err)) == -1)) {
		log_warnx("firewall: listing the black sets: %s", err);
		goto out;
	}
	setup_collapse(&u);
	if (setup_cidr_count(&u, &n4, &n6, err, sizeof(err)) == -1) {
		log_warnx("firewall: %s", err);
		goto out;
	}
	if (setup_cidr_each(&u, setup_fw_collect, &want) != 0) {
		log_warnx("firewall: out of memory or bad block");
		goto out;
	}
	if (want.n > 0)
		qsort(want.s, want.n, sizeof(*want.s), setup_strcmp);
	if (o->dryrun) {
		for (i = 0; i < want.n; i++)
			printf("# firewall black: %s\n", want.s[i]);
		ret = 0;
		goto out;
	}
	walk.fw = fw;
	walk.want = &want;
	walk.removed = 0;
	/* every element not wanted goes: the union covers the kept ones */
	if (fw_list(fw, FW_BLACK, 0, setup_fw_stale, &walk, err,
	    sizeof(err)) == -1 || fw_list(fw, FW_BLACK, 1,
	    setup_fw_stale, &walk, err, sizeof(err)) == -1) {
		log_warnx("firewall: listing the black sets: %s", err);
		goto out;
	}
	for (i = 0; i < want.n; i++)
		if (fw_add(fw, FW_BLACK, want.s[i], 0, time(NULL)) == -1) {
			log_warnx("firewall: cannot queue %s", want.s[i]);
			goto out;
		}
	if (fw_flush(fw, err, sizeof(err)) == -1) {
		log_warnx("firewall: %s", err);
		goto out;
	}
	log_debug("firewall=%s event=black-loaded blocks=%zu removed=%ld "
	    "complete=%d", fw_backend_name(fw), want.n, walk.removed,
	    complete);
	ret = 0;
out:
	fw_close(fw);
	setup_addrs_free(&u);
	for (i = 0; i < want.n; i++)
		free(want.s[i]);
	free(want.s);
	return ret;
}

/* setup_fetch_all - fetch, parse and collapse every list of the conf */
static int
setup_fetch_all(const struct setup_opts *o, const struct setup_conf *c,
    struct setup_item *it)
{
	struct setup_buf data = { 0 };
	struct setup_warnstate ws;
	char err[1024];
	size_t i;
	long nbad;
	int fails = 0;

	for (i = 0; i < c->n; i++) {
		const struct setup_lconf *l = &c->list[i];

		if (l->error != NULL)
			continue;	/* reported by setup_run */
		memset(&data, 0, sizeof(data));
		log_debug("list=%s event=fetch method=%s file=\"%s\"", l->name,
		    setup_method_name(l->method), l->file);
		if (setup_fetch(l, &o->fetch, &data, err, sizeof(err)) == -1) {
			log_warnx("list=%s event=fetch-failed (%s) error=\"%s\" "
			    "(previous version kept)", l->name, l->where, err);
			setup_buf_free(&data);
			fails++;
			continue;
		}
		ws.shown = 0;
		if (setup_list_parse(data.p != NULL ? data.p : "", data.len,
		    l->file, &it[i].a, setup_warn, &ws, &nbad) == -1) {
			log_warnx("list=%s event=parse-failed error=\"out of "
			    "memory\"", l->name);
			setup_buf_free(&data);
			setup_addrs_free(&it[i].a);
			fails++;
			continue;
		}
		setup_buf_free(&data);
		if (ws.shown > SETUP_WARN_MAX)
			log_warnx("list=%s: %ld more bad lines not shown",
			    l->name, ws.shown - SETUP_WARN_MAX);
		it[i].entries = (long)(it[i].a.n4 + it[i].a.n6);
		setup_collapse(&it[i].a);
		it[i].ok = 1;
		log_debug("list=%s event=parsed entries=%ld bad=%ld ranges=%zu",
		    l->name, it[i].entries, nbad, it[i].a.n4 + it[i].a.n6);
	}
	return fails;
}

/* what one list's result looks like on the pipe from the fetcher */
struct setup_wire {
	int32_t		ok;
	int64_t		entries;
	uint64_t	n4, n6;
};

/* the most ranges one list may bring back (16 Mi: a /8 of /32s) */
#define SETUP_WIRE_MAX	(16ULL << 20)

/* setup_full_write - write all of len bytes; 0, or -1 */
static int
setup_full_write(int fd, const void *p, size_t len)
{
	const char *c = p;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, c, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

/* setup_full_read - read exactly len bytes; 0, or -1 (EOF counts) */
static int
setup_full_read(int fd, void *p, size_t len)
{
	char *c = p;
	ssize_t n;

	while (len > 0) {
		if ((n = read(fd, c, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return -1;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

/* setup_drop - the fetcher child: become o->user (nobody when the
 * default user does not exist), no_new_privs; exits on any failure */
static void
setup_drop(const struct setup_opts *o)
{
	struct passwd *pw;
	const char *user = o->user;

	if ((pw = getpwnam(user)) == NULL && !o->user_given)
		pw = getpwnam(user = "nobody");
	if (pw == NULL || pw->pw_uid == 0) {
		log_warnx("event=privsep user=%s error=\"no such unprivileged "
		    "user (see --user)\"", user);
		_exit(125);
	}
	if (privsep_become(pw->pw_uid, pw->pw_gid) == -1 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    setuid(0) != -1) {
		log_warnx("event=privsep user=%s error=\"%s\"", user,
		    strerror(errno));
		_exit(125);
	}
	log_debug("event=privsep proc=fetch user=%s uid=%u", user,
	    (unsigned)pw->pw_uid);
}

/*
 * setup_fetch_priv - fetch and parse every list; as root, in a child that
 * drops to --user first: what a list server or an exec method sends is
 * parsed with no rights, and only the ranges come back over a pipe (every
 * count and range checked here, then collapsed again). Returns the
 * number of failures, as setup_fetch_all.
 */
static int
setup_fetch_priv(const struct setup_opts *o, const struct setup_conf *c,
    struct setup_item *it)
{
	struct setup_wire w;
	int fd[2], st, fails = 0;
	size_t i, k;
	pid_t pid;

	if (geteuid() != 0)
		return setup_fetch_all(o, c, it);
	if (pipe2(fd, O_CLOEXEC) == -1 || (pid = fork()) == -1) {
		log_warn("event=fetch op=fork");
		return (int)c->n;
	}
	if (pid == 0) {
		close(fd[0]);
		setup_drop(o);
		fails = setup_fetch_all(o, c, it);
		for (i = 0; i < c->n; i++) {
			memset(&w, 0, sizeof(w));
			w.ok = it[i].ok;
			w.entries = it[i].entries;
			w.n4 = it[i].a.n4;
			w.n6 = it[i].a.n6;
			if (setup_full_write(fd[1], &w, sizeof(w)) == -1 ||
			    setup_full_write(fd[1], it[i].a.v4,
			    it[i].a.n4 * sizeof(*it[i].a.v4)) == -1 ||
			    setup_full_write(fd[1], it[i].a.v6,
			    it[i].a.n6 * sizeof(*it[i].a.v6)) == -1)
				_exit(125);
		}
		_exit(fails > 100 ? 100 : fails);
	}
	close(fd[1]);
	for (i = 0; i < c->n; i++) {
		if (setup_full_read(fd[0], &w, sizeof(w)) == -1 ||
		    (w.ok != 0 && w.ok != 1) || w.n4 > SETUP_WIRE_MAX ||
		    w.n6 > SETUP_WIRE_MAX)
			break;
		it[i].ok = 0;
		it[i].entries = (long)w.entries;
		for (k = 0; k < w.n4; k++) {
			struct setup_r4 r;

			if (setup_full_read(fd[0], &r, sizeof(r)) == -1 ||
			    r.lo > r.hi || setup_addrs_add4(&it[i].a, r.lo,
			    r.hi) == -1)
				goto bad;
		}
		for (k = 0; k < w.n6; k++) {
			struct setup_r6 r;

			if (setup_full_read(fd[0], &r, sizeof(r)) == -1 ||
			    r.lo.hi > r.hi.hi || (r.lo.hi == r.hi.hi &&
			    r.lo.lo > r.hi.lo) || setup_addrs_add6(&it[i].a,
			    r.lo, r.hi) == -1)
				goto bad;
		}
		setup_collapse(&it[i].a);
		it[i].ok = w.ok;
		continue;
bad:
		setup_addrs_free(&it[i].a);
		break;
	}
	close(fd[0]);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	if (i < c->n || !WIFEXITED(st) || WEXITSTATUS(st) > 100) {
		log_warnx("event=fetch error=\"the unprivileged fetcher "
		    "failed (%s %d); lists not loaded this run\"",
		    WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ?
		    WEXITSTATUS(st) : WTERMSIG(st));
		for (k = 0; k < c->n; k++)
			it[k].ok = 0;
		return (int)c->n;
	}
	return WEXITSTATUS(st);
}

/*
 * setup_cut_white - cut each white list out of the black list just before
 * it in all: (after any white lists between them), as OpenBSD's
 * spamd-setup does: "all:a:b:w" cuts w out of b only, "all:a:w:b:w"
 * out of both. An entry of unknown kind (its entry is bad) counts as a
 * failed white list: the black list before it is not sent, since it could
 * block what that list was to protect.
 */
static void
setup_cut_white(const struct setup_conf *c, struct setup_item *it,
    int *fails)
{
	size_t i, j;

	for (j = 0; j < c->n; j++) {
		if (c->list[j].white == 0)
			continue;
		for (i = j; i > 0 && c->list[i - 1].white != 0; i--)
			;
		if (i == 0) {
			if (c->list[j].white == 1)
				log_warnx("list=%s event=white-unused reason="
				    "\"no black list before it in all:\" (a "
				    "white list cuts only the black list just "
				    "before it)", c->list[j].name);
			continue;
		}
		i--;
		if (!it[i].ok)
			continue;
		if (!it[j].ok) {
			log_warnx("list=%s event=skipped reason=\"%s %s after "
			    "it failed%s\" (previous version kept)",
			    c->list[i].name, c->list[j].white == 1 ?
			    "white list" : "entry", c->list[j].name,
			    c->list[j].white == 1 ? "" : " and may be a white "
			    "list");
			it[i].ok = 0;
			(*fails)++;
			continue;
		}
		if (setup_subtract(&it[i].a, &it[j].a) == -1) {
			log_warnx("list=%s: out of memory", c->list[i].name);
			it[i].ok = 0;
			(*fails)++;
		}
	}
}

/* setup_run - one full load; returns the number of failures */
static int
setup_run(const struct setup_opts *o)
{
	struct setup_conf c;
	struct setup_item *it = NULL;
	struct setup_buf line = { 0 };
	char err[1024], **prev = NULL, **now = NULL;
	size_t i, j, nprev = 0, nnow = 0;
	int fails = 0, complete = 1;
	long n4, n6;

	if (setup_conf_load(o->conf, &c, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		return 1;
	}
	if (c.n > 0 && (it = calloc(c.n, sizeof(*it))) == NULL) {
		log_warnx("out of memory");
		setup_conf_free(&c);
		return 1;
	}
	for (i = 0; i < c.n; i++)
		if (c.list[i].error != NULL) {
			log_warnx("list=%s event=config-error error=\"%s\" "
			    "(not loaded; the other lists are)", c.list[i].name,
			    c.list[i].error);
			fails++;
		}
	fails += setup_fetch_priv(o, &c, it);	/* (added) not as root */
	setup_cut_white(&c, it, &fails);
	if (!o->dryrun || access(o->state, R_OK) == 0)
		setup_state_read(o->state, &prev, &nprev);
	for (i = 0; i < c.n; i++) {
		const struct setup_lconf *l = &c.list[i];
		int was = 0;

		/* an entry of unknown kind keeps its tag below, as a
		 * black list that failed */
		if (l->white == 1)
			continue;
		for (j = 0; j < nprev; j++)
			if (strcmp(prev[j], l->name) == 0)
				was = 1;
		if (!it[i].ok) {
			complete = 0;
			if (was)	/* still loaded from last time */
				setup_tags_add(&now, &nnow, l->name);
			continue;
		}
		line.len = 0;
		if (setup_message(l->name, l->msg, &it[i].a, &line, err,
		    sizeof(err)) == -1) {
			log_warnx("list=%s (%s) event=refused error=\"%s\" "
			    "(previous version kept)", l->name, l->where, err);
			it[i].ok = 0;
			complete = 0;
			fails++;
			if (was)
				setup_tags_add(&now, &nnow, l->name);
			continue;
		}
		setup_cidr_count(&it[i].a, &n4, &n6, err, sizeof(err));
		if (setup_deliver(o, l->name, line.p, line.len, n4 + n6) == -1) {
			fails++;
			/* why: a failed send may still have been applied;
			 * keep the tag so a later run can clear it */
			setup_tags_add(&now, &nnow, l->name);
			continue;
		}
		setup_tags_add(&now, &nnow, l->name);
	}
	/* lists loaded last time and gone from spamd.conf: clear them */
	for (j = 0; j < nprev; j++) {
		char clear[BL_TAG_MAX + 2];
		int still = 0;

		for (i = 0; i < c.n; i++)
			if (c.list[i].white != 1 &&
			    strcmp(prev[j], c.list[i].name) == 0)
				still = 1;
		if (still)
			continue;
		snprintf(clear, sizeof(clear), "%s;\n", prev[j]);
		if (setup_deliver(o, prev[j], clear, strlen(clear), 0) == -1) {
			fails++;
			setup_tags_add(&now, &nnow, prev[j]);
		} else
			log_info("list=%s event=cleared reason=\"gone from "
			    "%s\"", prev[j], o->conf);
	}
	if (o->firewall && setup_firewall(o, &c, it, complete) == -1)
		fails++;
	if (!o->dryrun && setup_state_write(o->state, now, nnow) == -1)
		fails++;
	setup_buf_free(&line);
	for (i = 0; i < c.n; i++)
		setup_addrs_free(&it[i].a);
	free(it);
	setup_tags_free(prev, nprev);
	setup_tags_free(now, nnow);
	setup_conf_free(&c);
	return fails;
}

/* setup_number - a number option in [lo, hi] or exit with its name */
static long long
setup_number(const char *flag, const char *s, long long lo, long long hi)
{
	const char *errstr;
	long long v = strtonum(s, lo, hi, &errstr);

	if (errstr != NULL) {
		fprintf(stderr, "spamd-setup: %s %s: %s (%lld..%lld)\n", flag,
		    s, errstr, lo, hi);
		exit(2);
	}
	return v;
}

/*
 * setup_pidfile_lock - take the resident reloader's lock: an flock on the
 * pid file, so that a second one refuses instead of loading side by side.
 * The holder's pid is in the file. -1 (said on stderr) when held.
 */
static int
setup_pidfile_lock(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd, e;

	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) == -1) {
		fprintf(stderr, "spamd-setup: --pid-file %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return fd;
	e = errno;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (e == EWOULDBLOCK)
		fprintf(stderr, "spamd-setup: --pid-file %s is locked by pid "
		    "%s: another spamd-setup --reload-every is running (stop "
		    "it, or give this one its own --pid-file)\n", path,
		    buf[0] != '\0' ? buf : "(unknown)");
	else
		fprintf(stderr, "spamd-setup: --pid-file %s: lock: %s\n", path,
		    strerror(e));
	close(fd);
	return -1;
}

/* setup_pidfile_write - the pid file holds our pid (after daemon()) */
static void
setup_pidfile_write(int fd, const char *path)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) == -1 || pwrite(fd, buf, (size_t)n, 0) != n)
		log_warn("pid file %s: write", path);
}

/*
 * setup_reloader - --reload-every: run, then wait for SIGHUP or the next
 * period; with -D in the background. Holds the pid file's lock.
 */
static int
setup_reloader(const struct setup_opts *o)
{
	struct timespec ts;
	sigset_t set;
	int sig, fails, fd;

	if ((fd = setup_pidfile_lock(o->pidfile)) == -1)
		return 1;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* why: signals are taken synchronously with sigtimedwait, so a
	 * SIGHUP during a load is not lost and needs no handler */
	sigprocmask(SIG_BLOCK, &set, NULL);
	/* the lock is on the open file, so daemon()'s child keeps it */
	if (o->daemon && !o->debug && daemon(0, 0) == -1)
		fatal("daemon");
	setup_pidfile_write(fd, o->pidfile);
	log_info("event=start conf=%s reload_secs=%ld pid_file=%s", o->conf,
	    o->reload, o->pidfile);
	for (;;) {
		fails = setup_run(o);
		log_info("event=reload failures=%d", fails);
		ts.tv_sec = o->reload;
		ts.tv_nsec = 0;
		for (;;) {
			sig = sigtimedwait(&set, NULL, &ts);
			if (sig == -1 && errno == EINTR)
				continue;
			break;
		}
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("event=stop signal=%d", sig);
			/* a stale pid would name a process that is gone */
			if (ftruncate(fd, 0) == -1)
				log_warn("pid file %s: truncate", o->pidfile);
			close(fd);
			return 0;
		}
	}
}

/* setup_spf_warn - a skipped SPF term, on stderr */
static void
setup_spf_warn(void *arg, const char *text)
{
	fprintf(stderr, "spamd-setup: spf %s\n", text);
}

/* setup_spf_print - one network of the --spf-walk output */
static int
setup_spf_print(void *arg, int af, const char *cidr)
{
	return puts(cidr) == EOF ? -1 : 0;
}

/* setup_spf_one - walk one domain into all; 0 ok, 1 failed (reported) */
static int
setup_spf_one(struct setup_spf *s, const char *domain,
    struct setup_addrs *all)
{
	char err[1024];

	if (setup_spf_walk(s, domain, all, err, sizeof(err)) == -1) {
		fprintf(stderr, "spamd-setup: spf %s: %s\n", domain, err);
		return 1;
	}
	return 0;
}

/*
 * setup_spf_main - --spf-walk: walk the domains of argv (or of stdin, one
 * a line) and print their networks as a list file. A failed domain is
 * reported and left out; the others are still printed and the exit
 * status is 1.
 */
static int
setup_spf_main(const struct setup_opts *o, int argc, char **argv)
{
	struct setup_spf_opt so = { 0 };
	struct setup_addrs all = { 0 };
	struct setup_spf *s;
	char err[512], *line = NULL, *p, *e;
	size_t cap = 0;
	ssize_t n;
	long lineno = 0, n4, n6;
	int i, fails = 0;

	so.family = o->family;
	so.server = o->dns_server;
	so.timeout = 3;
	so.tries = 2;
	so.warn = setup_spf_warn;
	if ((s = setup_spf_open(&so, err, sizeof(err))) == NULL) {
		fprintf(stderr, "spamd-setup: spf: %s\n", err);
		return 1;
	}
	for (i = 0; i < argc; i++)
		fails += setup_spf_one(s, argv[i], &all);
	while (argc == 0 && (n = getline(&line, &cap, stdin)) != -1) {
		lineno++;
		if ((p = memchr(line, '#', (size_t)n)) != NULL)
			*p = '\0';
		for (p = line; *p == ' ' || *p == '\t'; p++)
			;
		for (e = p + strlen(p); e > p && strchr(" \t\r\n", e[-1]) !=
		    NULL; e--)
			;
		*e = '\0';
		if (*p == '\0')
			continue;
		if (strpbrk(p, " \t") != NULL) {
			fprintf(stderr, "spamd-setup: spf stdin:%ld: one domain "
			    "a line\n", lineno);
			fails++;
			continue;
		}
		fails += setup_spf_one(s, p, &all);
	}
	free(line);
	setup_spf_close(s);
	setup_collapse(&all);
	/* why: an SPF /0 is refused by the parser, but two halves could
	 * still cover everything; such a list must not load */
	if (setup_cidr_count(&all, &n4, &n6, err, sizeof(err)) == -1) {
		fprintf(stderr, "spamd-setup: spf: %s\n", err);
		setup_addrs_free(&all);
		return 1;
	}
	if (setup_cidr_each(&all, setup_spf_print, NULL) != 0 ||
	    fflush(stdout) == EOF) {
		fprintf(stderr, "spamd-setup: spf: cannot write the list\n");
		fails++;
	}
	setup_addrs_free(&all);
	return fails == 0 ? 0 : 1;
}

/* main - parse the flags, then one run or the -D loop */
int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "host",	required_argument, NULL, 'H' },
		{ "port",	required_argument, NULL, 'p' },
		{ "fw-backend",	required_argument, NULL, 'B' },
		{ "fw",		required_argument, NULL, 'B' },	/* as spamd */
		{ "fw-path",	required_argument, NULL, 'P' },
		{ "fw-file",	required_argument, NULL, 'P' },	/* as spamd */
		{ "fw-table",	required_argument, NULL, 'T' },
		{ "fw-family",	required_argument, NULL, 'F' },
		{ "fw-create",	no_argument,	   NULL, 'C' },
		{ "max-size",	required_argument, NULL, 'M' },
		{ "timeout",	required_argument, NULL, 't' },
		{ "spf-walk",	no_argument,	   NULL, 'W' },
		{ "dns-server",	required_argument, NULL, 'N' },
		{ "user",	required_argument, NULL, 'U' },
		{ "reload-every", required_argument, NULL, 'E' },
		{ "pid-file",	required_argument, NULL, 'I' },
		{ "help",	no_argument,	   NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct setup_opts o;
	int ch, fails;

	memset(&o, 0, sizeof(o));
	o.conf = SETUP_CONF_DEFAULT;
	o.state = SETUP_STATE_DEFAULT;
	o.host = "127.0.0.1";
	o.port = SETUP_PORT_DEFAULT;
	o.pidfile = SETUP_PIDFILE_DEFAULT;
	o.fetch.maxsize = SETUP_MAXSIZE_DEFAULT;
	o.fetch.timeout = SETUP_TIMEOUT_DEFAULT;
	o.fw.backend = "nftables";
	o.user = "_spamd";	/* as spamd's engines; nobody if missing */
	o.fw.use_black_set = 1;
	while ((ch = getopt_long(argc, argv, "46bDdnf:R:p:s:h", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'b': o.firewall = 1; break;
		case 'D': o.daemon = 1; break;
		case 'd': o.debug = 1; break;
		case 'n': o.dryrun = 1; break;
		case 'f': o.conf = optarg; break;
		case 's': o.state = optarg; break;
		case 'H': o.host = optarg; break;
		case 'B': o.fw.backend = optarg; break;
		case 'P': o.fw.path = optarg; break;
		case 'T': o.fw.table = optarg; break;
		case 'F': o.fw.family = optarg; break;
		case 'C': o.fw.create = 1; break;
		case 'W': o.spf = 1; break;
		case 'N': o.dns_server = optarg; break;
		case 'U': o.user = optarg; o.user_given = 1; break;
		case '4': o.family = 4; break;
		case '6': o.family = 6; break;
		case 'R':
			o.reload = 60 * (long)setup_number("-R", optarg, 1,
			    525600);
			break;
		case 'E':
			o.reload = (long)setup_number("--reload-every", optarg,
			    1, 31536000);
			break;
		case 'I': o.pidfile = optarg; break;
		case 'p':
			o.port = (int)setup_number("-p", optarg, 1, 65535);
			break;
		case 'M':
			o.fetch.maxsize = (size_t)setup_number("--max-size",
			    optarg, 1024, 4LL * 1024 * 1024 * 1024 - 1);
			break;
		case 't':
			o.fetch.timeout = (long)setup_number("--timeout",
			    optarg, 1, 86400);
			break;
		case 'h': setup_usage(0);
		default: setup_usage(2);
		}
	}
	if (o.spf)
		return setup_spf_main(&o, argc - optind, argv + optind);
	if (optind != argc || o.family != 0 || o.dns_server != NULL)
		setup_usage(2);
	log_init("spamd-setup", !o.daemon || o.debug, o.debug);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		fatalx("curl_global_init failed");
	if (o.dryrun)
		fails = setup_run(&o);	/* -n: once, here, whatever else */
	else if (o.reload > 0)
		fails = setup_reloader(&o);
	else {
		/* -D: OpenBSD's meaning, one load in the background */
		if (o.daemon && !o.debug && daemon(0, 0) == -1)
			fatal("daemon");
		fails = setup_run(&o);
	}
	curl_global_cleanup();
	return fails == 0 ? 0 : 1;
}
