/*
 * greylogd_main.c - greylogd(8): flags, start-up as root (NFLOG group,
 * firewall handle, sync sockets), privilege drop, the event loop.
 * The work itself is in greylogd.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <net/if.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <linux/capability.h>

#include <event2/event.h>

#include "greydb/greydb.h"
#include "pf-sync/fw.h"
#include "pf-sync/greylogd.h"
#include "pf-sync/sync.h"
#include "spamd/common/log.h"
#include "spamd/common/privsep.h"

#define MAIN_MAX_TARGETS 32

struct main_opts {
	int		 foreground;	/* -D */
	int		 inbound_only;	/* -I */
	const char	*iface;		/* -i */
	int64_t		 whiteexp;	/* -W (hours) or --white-seconds */
	const char	*targets[MAIN_MAX_TARGETS];	/* -Y */
	int		 ntargets;
	int		 group;		/* -g, --nflog-group */
	int		 verbose;	/* -v */
	const char	*dbdir;
	const char	*fw;		/* backend or "none" */
	const char	*fw_family;
	const char	*fw_table;
	const char	*fw_file;
	const char	*sync_key;
	int		 sync_no_auth;
	int		 sync_key_any_mode;	/* --sync-key-any-mode */
	const char	*user;
	int		 user_given;
	char		 dbdir_buf[PATH_MAX];
	char		 fw_file_buf[PATH_MAX];
};

enum {
	OPT_DBDIR = 256, OPT_FW, OPT_FW_FAMILY, OPT_FW_TABLE, OPT_FW_FILE,
	OPT_SYNC_KEY, OPT_SYNC_NOAUTH, OPT_USER, OPT_GROUP, OPT_WHITE,
	OPT_SYNC_ANYMODE,
};

static const struct option main_longopts[] = {
	{ "db-dir",		required_argument, NULL, OPT_DBDIR },
	{ "fw",			required_argument, NULL, OPT_FW },
	{ "fw-family",		required_argument, NULL, OPT_FW_FAMILY },
	{ "fw-table",		required_argument, NULL, OPT_FW_TABLE },
	{ "fw-file",		required_argument, NULL, OPT_FW_FILE },
	{ "sync-key",		required_argument, NULL, OPT_SYNC_KEY },
	{ "sync-no-auth",	no_argument,	   NULL, OPT_SYNC_NOAUTH },
	{ "sync-key-any-mode",	no_argument,	   NULL, OPT_SYNC_ANYMODE },
	{ "user",		required_argument, NULL, OPT_USER },
	{ "nflog-group",	required_argument, NULL, OPT_GROUP },
	{ "white-seconds",	required_argument, NULL, OPT_WHITE },
	{ "help",		no_argument,	   NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/* main_usage - print the synopsis and exit with status */
static void
main_usage(int status)
{
	fprintf(status ? stderr : stdout,
"usage: greylogd [-DIv] [-g group] [-i interface] [-W whiteexp]\n"
"                [-Y synctarget]... [--nflog-group N] [--db-dir DIR]\n"
"                [--fw nftables|ipset|pf|file|none] [--fw-family F]\n"
"                [--fw-table T] [--fw-file PATH] [--sync-key FILE]\n"
"                [--sync-key-any-mode] [--sync-no-auth] [--user NAME]\n"
"                [--white-seconds N]\n");
	exit(status);
}

/* main_num - a number flag in [min, max] or exit naming the flag */
static long long
main_num(const char *flag, const char *arg, long long min, long long max)
{
	const char *errstr = NULL;
	long long v;

	v = strtonum(arg, min, max, &errstr);
	if (errstr != NULL) {
		fprintf(stderr, "greylogd: %s %s: %s (want %lld..%lld)\n",
		    flag, arg, errstr, min, max);
		exit(2);
	}
	return v;
}

/* main_abs - path made absolute against the current directory, in buf */
static const char *
main_abs(const char *flag, const char *path, char *buf, size_t bufsz)
{
	char cwd[PATH_MAX];

	if (path[0] == '/')
		return path;
	if (getcwd(cwd, sizeof(cwd)) == NULL ||
	    (size_t)snprintf(buf, bufsz, "%s/%s", cwd, path) >= bufsz) {
		fprintf(stderr, "greylogd: %s %s: cannot make the path "
		    "absolute\n", flag, path);
		exit(2);
	}
	return buf;
}

/* main_parse - the command line into o */
static void
main_parse(struct main_opts *o, int argc, char *argv[])
{
	int ch;

	memset(o, 0, sizeof(*o));
	o->whiteexp = GDB_WHITEEXP_DEFAULT;
	o->group = GREYLOGD_GROUP_DEFAULT;
	o->dbdir = GDB_DEFAULT_DIR;
	o->fw = "nftables";
	o->sync_key = PSYNC_KEY_DEFAULT;
	o->user = "_spamd";
	while ((ch = getopt_long(argc, argv, "DIg:hi:l:vW:Y:", main_longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'l':
			/* why taken only to refuse: spamlogd's -l is in
			 * every OpenBSD rc.conf.local; say what replaces it
			 * instead of getopt's "invalid option" */
			fprintf(stderr, "greylogd: -l %s: Linux has no pflog "
			    "interface; greylogd reads SMTP connection starts "
			    "from an NFLOG group instead: use -g GROUP (the "
			    "nftables \"log group\" of the rules, default "
			    "%d; see greylogd(8))\n", optarg,
			    GREYLOGD_GROUP_DEFAULT);
			exit(2);
		case 'D': o->foreground = 1; break;
		case 'I': o->inbound_only = 1; break;
		case 'i': o->iface = optarg; break;
		case 'v': o->verbose = 1; break;
		case 'W':
			o->whiteexp = main_num("-W (hours)", optarg, 1,
			    GREYLOGD_WHITEEXP_MAX) * 3600;
			break;
		case OPT_WHITE:
			o->whiteexp = main_num("--white-seconds", optarg, 1,
			    (long long)GREYLOGD_WHITEEXP_MAX * 3600);
			break;
		case 'Y':
			if (o->ntargets == MAIN_MAX_TARGETS) {
				fprintf(stderr, "greylogd: -Y %s: at most %d "
				    "sync targets\n", optarg, MAIN_MAX_TARGETS);
				exit(2);
			}
			o->targets[o->ntargets++] = optarg;
			break;
		case 'g':
			o->group = (int)main_num("-g", optarg, 0, 65535);
			break;
		case OPT_GROUP:
			o->group = (int)main_num("--nflog-group", optarg, 0,
			    65535);
			break;
		case OPT_DBDIR: o->dbdir = optarg; break;
		case OPT_FW: o->fw = optarg; break;
		case OPT_FW_FAMILY: o->fw_family = optarg; break;
		case OPT_FW_TABLE: o->fw_table = optarg; break;
		case OPT_FW_FILE: o->fw_file = optarg; break;
		case OPT_SYNC_KEY: o->sync_key = optarg; break;
		case OPT_SYNC_NOAUTH: o->sync_no_auth = 1; break;
		case OPT_SYNC_ANYMODE: o->sync_key_any_mode = 1; break;
		case OPT_USER:
			o->user = optarg;
			o->user_given = 1;
			break;
		case 'h': main_usage(0); break;
		default: main_usage(2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "greylogd: unexpected argument %s\n",
		    argv[optind]);
		main_usage(2);
	}
	if (strcmp(o->fw, "file") == 0 && o->fw_file == NULL) {
		fprintf(stderr, "greylogd: --fw file needs --fw-file PATH\n");
		exit(2);
	}
	/* daemon() changes to /: paths used after it must be absolute */
	o->dbdir = main_abs("--db-dir", o->dbdir, o->dbdir_buf,
	    sizeof(o->dbdir_buf));
	if (o->fw_file != NULL)
		o->fw_file = main_abs("--fw-file", o->fw_file, o->fw_file_buf,
		    sizeof(o->fw_file_buf));
}

/* main_dir_owned - 1 if dir and every entry in it belong to uid */
static int
main_dir_owned(const char *dir, uid_t uid)
{
	struct stat st;
	struct dirent *de;
	DIR *d;
	int ok = 1;

	if (stat(dir, &st) == -1 || st.st_uid != uid ||
	    (d = opendir(dir)) == NULL)
		return 0;
	while (ok && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1 || st.st_uid != uid)
			ok = 0;
	}
	closedir(d);
	return ok;
}

/* main_user - the user to become (falls back to nobody when the default
 * _spamd is missing, as spamd does); exits when there is none */
static const struct passwd *
main_user(const struct main_opts *o)
{
	const struct passwd *pw;

	if ((pw = getpwnam(o->user)) == NULL && !o->user_given &&
	    (pw = getpwnam("nobody")) != NULL)
		/* a source build has no _spamd; nobody is still not root */
		log_warnx("event=privsep user=%s error=\"no such user\" "
		    "fallback=nobody", o->user);
	if (pw == NULL) {
		fprintf(stderr, "greylogd: --user %s: no such user\n",
		    o->user);
		exit(1);
	}
	if (pw->pw_uid == 0) {
		fprintf(stderr, "greylogd: --user %s: user has uid 0\n",
		    o->user);
		exit(1);
	}
	return pw;
}

/* main_keep - the capabilities kept: CAP_NET_ADMIN for a firewall
 * backend that talks to the kernel, CAP_DAC_OVERRIDE with keep_dac; *inh
 * gets those made ambient (ipset and pf run a tool that needs it) */
static uint64_t
main_keep(const struct main_opts *o, int keep_dac, uint64_t *inh)
{
	uint64_t keep = 0;

	*inh = 0;
	if (strcmp(o->fw, "nftables") == 0 || strcmp(o->fw, "ipset") == 0 ||
	    strcmp(o->fw, "pf") == 0)
		keep |= 1ULL << CAP_NET_ADMIN;
	if (strcmp(o->fw, "ipset") == 0 || strcmp(o->fw, "pf") == 0)
		*inh |= 1ULL << CAP_NET_ADMIN;
	if (keep_dac)
		keep |= 1ULL << CAP_DAC_OVERRIDE;
	return keep;
}

/*
 * main_bound - as root, before any thread exists (the store's watchdog
 * thread inherits this): the bounding set but for keep (privsep_bound),
 * and no_new_privs, so nothing can be regained by an exec
 */
static void
main_bound(uint64_t keep)
{
	privsep_bound(keep);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("event=privsep op=no_new_privs");
}

/*
 * main_drop - as root, after main_bound: become the user, keeping only
 * keep (permitted and effective) and raising inh as ambient. The NFLOG
 * socket is already bound: reading it needs no privilege. Every call is
 * checked; failure is fatal.
 */
static void
main_drop(uid_t uid, gid_t gid, const char *user, uint64_t keep,
    uint64_t inh)
{
	/* keep the permitted set across the uid change, then cut it down */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == -1)
		fatal("event=privsep op=keepcaps");
	if (setgroups(1, &gid) == -1)
		fatal("event=privsep op=setgroups");
	if (setresgid(gid, gid, gid) == -1)
		fatal("event=privsep op=setresgid gid=%u", (unsigned)gid);
	if (setresuid(uid, uid, uid) == -1)
		fatal("event=privsep op=setresuid uid=%u", (unsigned)uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == -1)
		fatal("event=privsep op=keepcaps-off");
	privsep_caps_set(keep, inh);
	if ((inh & (1ULL << CAP_NET_ADMIN)) && prctl(PR_CAP_AMBIENT,
	    PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) == -1)
		fatal("event=privsep op=ambient-raise cap=CAP_NET_ADMIN");
	if (getuid() == 0 || geteuid() == 0 || setresuid(0, 0, 0) != -1)
		fatalx("event=privsep error=\"still root\"");
	log_info("event=privsep user=%s uid=%u cap_net_admin=%d "
	    "cap_dac_override=%d ambient=%d", user, (unsigned)uid,
	    (keep & (1ULL << CAP_NET_ADMIN)) != 0,
	    (keep & (1ULL << CAP_DAC_OVERRIDE)) != 0, inh != 0);
}

/* What the signal handler needs. */
struct main_ctx {
	struct event_base	*base;
	struct greylogd		*g;
};

/* main_signal - SIGTERM/SIGINT stop the loop, SIGUSR1 logs counters,
 * SIGHUP is ignored (nothing to reload) */
static void
main_signal(evutil_socket_t sig, short ev, void *arg)
{
	struct main_ctx *mc = arg;

	if (sig == SIGUSR1) {
		greylogd_log_counters(mc->g);
		return;
	}
	if (sig == SIGHUP)
		return;
	log_info("event=stop signal=%d", (int)sig);
	event_base_loopbreak(mc->base);
}

/* main - open what needs root, drop to the user, run the event loop */
int
main(int argc, char *argv[])
{
	struct main_opts o;
	struct greylogd_conf gc;
	struct greylogd *g = NULL;
	struct fw_conf fc;
	struct fw *fw = NULL;
	struct psync_opts po;
	struct psync_err perr;
	struct psync *ps = NULL;
	struct event_base *base;
	struct event *sigs[4];
	struct main_ctx mc;
	const struct passwd *pw = NULL;
	char key[PSYNC_KEY_LEN + 1] = "", err[512], user[64] = "";
	uid_t uid = 0;
	gid_t gid = 0;
	int root, keep_dac = 0;
	uint64_t keep = 0, inh = 0;
	const int signums[4] = { SIGTERM, SIGINT, SIGUSR1, SIGHUP };
	int i;

	main_parse(&o, argc, argv);
	log_init("greylogd", o.foreground, o.verbose);
	/* a firewall tool that dies while we write its stdin must not
	 * kill us; fw_exec reports it */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		fatal("event=start op=signal");

	memset(&gc, 0, sizeof(gc));
	gc.dbdir = o.dbdir;
	gc.group = o.group;
	gc.whiteexp = o.whiteexp;
	gc.inbound_only = o.inbound_only;
	if (o.iface != NULL && (gc.ifindex = if_nametoindex(o.iface)) == 0) {
		fprintf(stderr, "greylogd: -i %s: no such interface\n",
		    o.iface);
		return 1;
	}
	if (o.ntargets > 0 && !o.sync_no_auth &&
	    (o.sync_key_any_mode ? psync_key_load_any(o.sync_key, key,
	    &perr) : psync_key_load(o.sync_key, key, &perr)) == -1) {
		/* perr names the option that gives OpenBSD's behaviour */
		fprintf(stderr, "greylogd: -Y needs a sync key: %s\n",
		    perr.msg);
		return 1;
	}

	root = geteuid() == 0;
	if (root) {
		pw = main_user(&o);
		uid = pw->pw_uid;
		gid = pw->pw_gid;
		strlcpy(user, pw->pw_name, sizeof(user));
		/*
		 * A store the user does not own is opened before the drop
		 * (greydb checks the directory with access(), which ignores
		 * capabilities for a non-root real uid) and CAP_DAC_OVERRIDE
		 * is kept for the files Berkeley DB opens later.
		 */
		if (!main_dir_owned(o.dbdir, uid)) {
			keep_dac = 1;
			gc.reopen_fatal = 1;
			log_warnx("event=privsep dir=%s user=%s "
			    "keep=CAP_DAC_OVERRIDE reason=\"store not owned by "
			    "the user\" hint=\"chown -R %s %s, with spamd's "
			    "writer running as that user\"", o.dbdir, user,
			    user, o.dbdir);
		}
	}

	/* as root: what needs privilege to open */
	if (strcmp(o.fw, "none") != 0) {
		memset(&fc, 0, sizeof(fc));
		fc.backend = o.fw;
		fc.family = o.fw_family;
		fc.table = o.fw_table;
		fc.path = o.fw_file;
		if (fw_open(&fw, &fc, err, sizeof(err)) == -1) {
			fprintf(stderr, "greylogd: --fw %s: %s\n", o.fw, err);
			return 1;
		}
	}
	gc.fw = fw;
	if (greylogd_open(&g, &gc, err, sizeof(err)) == -1) {
		fprintf(stderr, "greylogd: %s\n", err);
		fw_close(fw);
		return 1;
	}
	if (!o.foreground && daemon(0, 0) == -1)
		fatal("event=daemon");

	/* after the fork: the event base and the sync sockets */
	if ((base = event_base_new()) == NULL)
		fatalx("event=start error=\"event_base_new failed\"");
	if (o.ntargets > 0) {
		memset(&po, 0, sizeof(po));
		po.key = key;
		if ((ps = psync_new(base, &po, &perr)) == NULL)
			fatalx("event=sync error=\"%s\"", perr.msg);
		for (i = 0; i < o.ntargets; i++)
			if (psync_add_target(ps, o.targets[i], 0, &perr) == -1)
				fatalx("event=sync target=%s error=\"%s\"",
				    o.targets[i], perr.msg);
		greylogd_set_sync(g, ps);
	}

	if (root) {
		keep = main_keep(&o, keep_dac, &inh);
		main_bound(keep);
	}
	if (keep_dac && greylogd_open_db(g, err, sizeof(err)) == -1)
		fatalx("event=start dir=%s error=\"%s\"", o.dbdir, err);
	if (root)
		main_drop(uid, gid, user, keep, inh);
	else
		log_info("event=privsep mode=unprivileged uid=%u",
		    (unsigned)geteuid());
	mc.base = base;
	mc.g = g;
	if (greylogd_start(g, base, err, sizeof(err)) == -1)
		fatalx("event=start dir=%s error=\"%s\"", o.dbdir, err);
	for (i = 0; i < 4; i++) {
		sigs[i] = evsignal_new(base, signums[i], main_signal, &mc);
		if (sigs[i] == NULL || event_add(sigs[i], NULL) == -1)
			fatalx("event=start error=\"signal %d\"", signums[i]);
	}
	log_info("event=start group=%d whiteexp=%lld inbound_only=%d "
	    "iface=%s fw=%s sync_targets=%d dir=%s", o.group,
	    (long long)o.whiteexp, o.inbound_only,
	    o.iface != NULL ? o.iface : "any", o.fw, o.ntargets, o.dbdir);

	event_base_dispatch(base);

	greylogd_flush(g);
	greylogd_log_counters(g);
	for (i = 0; i < 4; i++)
		event_free(sigs[i]);
	greylogd_free(g);
	psync_free(ps);
	fw_close(fw);
	event_base_free(base);
	return 0;
}
