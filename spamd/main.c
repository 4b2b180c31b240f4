/*
 * main.c - spamd: parse the command line (OpenBSD spamd's flags plus our
 * long options), open the listening sockets and the config port while
 * still privileged, fork the writer (grey.h) and -W engine processes
 * (engine.h), then supervise them: a failed writer is restarted with new
 * engines (rate-limited), any other child that dies stops the daemon.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <dirent.h>
#include <libgen.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <seccomp.h>

#include "spamd/common/dnsbl.h"
#include "spamd/engine/engine.h"
#include "spamd/writer/grey.h"
#include "spamd/writer/grey_rcpt.h"
#include "spamd/common/log.h"
#include "spamd/engine/tls.h"
#include "spamd/common/sandbox.h"
#include "spamd/common/privsep.h"

#define MAIN_MAX_WORKERS	64
#define MAIN_FD_RESERVE		16	/* descriptors an engine needs besides
					 * its connections */
#define MAIN_STOP_SECS		10	/* then SIGKILL */
/* (added) a failed writer is restarted with new engines, at most
 * MAIN_RESTART_MAX times in MAIN_RESTART_WINDOW seconds; then we exit */
#define MAIN_RESTART		(-1)	/* main_supervise: start them again */
#define MAIN_RESTART_MAX	5
#define MAIN_RESTART_WINDOW	10
#define MAIN_RESTART_KILL_SECS	2	/* engines left: then SIGKILL */
/* (added) a dead engine is started again alone (the writer and the other
 * engines keep serving): at once the first time, then after 1, 2, 4 s
 * while deaths repeat; the daemon gives up on a crash loop of
 * MAIN_ENGINE_DEATHS deaths in MAIN_ENGINE_WINDOW seconds */
#define MAIN_ENGINE_DEATHS	5
#define MAIN_ENGINE_WINDOW	60

/* Everything the command line sets. */
struct main_opts {
	int		 bl_code;
	int		 maxblack;		/* -1: = maxcon */
	int		 blacklist_only;
	int		 maxcon;
	int		 foreground;
	int		 verbose;
	long long	 passtime, greyexp, whiteexp, trapexp;	/* seconds */
	const char	*hostname;
	char		 hostbuf[256];
	const char	*listen[ENGINE_MAX_LISTEN];
	int		 nlisten;
	const char	*lowmx;
	int		 lowmx_grace;		/* --lowmx-grace, 60 */
	const char	*banner;
	int		 port;
	int		 stutter_secs;
	int		 stutter_delay;
	int		 rcvbuf;
	const char	*dbdir;
	const char	*domains;
	const char	*pidfile;
	int		 workers;
	int		 config_port;
	int		 config_any_port;	/* (added) --config-any-port */
	int		 commit_ms;
	int		 max_per_client;
	int		 prefix6;	/* --per-client-prefix6 */
	const char	*user;
	int		 user_given;
	const char	*chroot_dir;
	const char	*fw_backend;
	const char	*fw_table;
	const char	*fw_family;
	const char	*fw_file;
	int		 fw_create;
	int		 fw_reconcile;
	int		 group_v4, group_v6;
	/* (added) sync and HTTP, copied into struct grey_conf */
	const char	*sync_listen;
	const char	*sync_targets[GREY_SYNC_MAX_TARGETS];
	int		 nsync_targets;
	int		 sync_port;
	const char	*sync_key;
	int		 sync_no_auth, sync_white, sync_deletions;
	const char	*sync_accept[GREY_SYNC_MAX_TARGETS];	/* more peers */
	int		 nsync_accept;
	const char	*http_listen;
	/* (added) cluster catch-up (grey_cluster.c) */
	const char	*cluster_peers[GREY_SYNC_MAX_TARGETS];
	int		 ncluster_peers;
	int		 cluster_digest;	/* -1 = default 300 */
	long long	 cluster_max_bytes;	/* -1 = default 256 MB */
	/* (added) invalid recipients (grey_rcpt.h) */
	const char	*valid_rcpt;
	const char	*verify_mx;
	int		 verify_cache_valid, verify_cache_invalid;
	int		 verify_rate, invalid_trap;
	/* (added) DNS checks, copied into struct engine_conf */
	const char	*dnsbl[DNSBL_MAX_ZONES];
	int		 ndnsbl;
	const char	*dnsbl_file;
	int		 dnsbl_timeout_ms;
	const char	*dns_server;
	int		 rdns_mode, helo_mode, dns_skip_white;
	char		 dnsbl_path[PATH_MAX];	/* --dnsbl-file made absolute */
	const char	*tls_cert, *tls_key;	/* (added) -C, -K */
	/* (added) greyctl's control socket; "none" = off */
	const char	*ctl_socket;
	char		 ctl_path[PATH_MAX];	/* made absolute */
	int		 seccomp_mode;	/* (added) --seccomp (sandbox.h) */
	/* (added) bounds on what one client can make us store */
	int		 max_rcpt;		/* --max-rcpt */
	int		 max_new_tuples;	/* --max-new-tuples */
	long long	 min_free_mb;		/* --min-free N (MB) */
	int		 min_free_pct;		/* --min-free N% */
};

/* One child process. */
struct main_child {
	pid_t		 pid;
	int		 engine;	/* -1: the writer */
	int		 done;
	time_t		 restart_at;	/* (added) a dead engine's successor
					 * is due then; 0 = none pending */
};

/* (added) What the master needs to start an engine, at start and when
 * one died. */
struct main_run {
	const struct main_opts	*o;
	struct engine_conf	*ec;	/* filled but for the index and fds */
	int			(*lfd)[ENGINE_MAX_LISTEN];
	int			 cfg_fd;
	const struct grey_conf	*gc;
	int			 sup;	/* our end of the writer's channel */
	const sigset_t		*oldmask;
	pid_t			 parent;
	int			 pidfd;
	struct engine_budget	*budget;
	time_t			 deaths[MAIN_ENGINE_DEATHS]; /* oldest first */
};

enum {
	OPT_DBDIR = 256, OPT_DOMAINS, OPT_PIDFILE, OPT_CONFIG_PORT,
	OPT_COMMIT, OPT_PASS, OPT_GREY, OPT_WHITE, OPT_TRAP, OPT_PERCLIENT,
	OPT_USER, OPT_CHROOT, OPT_FW, OPT_FW_TABLE, OPT_FW_FAMILY,
	OPT_FW_FILE, OPT_FW_CREATE, OPT_FW_RECONCILE, OPT_GROUP4, OPT_GROUP6,
	OPT_LOGFMT, OPT_HELP,
	OPT_SYNC_PORT, OPT_SYNC_KEY, OPT_SYNC_NOAUTH, OPT_SYNC_WHITE,
	OPT_SYNC_DEL, OPT_HTTP,
	OPT_VALID_RCPT, OPT_VERIFY_MX, OPT_VERIFY_VALID, OPT_VERIFY_INVALID,
	OPT_VERIFY_RATE, OPT_INVALID_TRAP,
	OPT_DNSBL, OPT_DNSBL_FILE, OPT_DNSBL_TIMEOUT, OPT_DNS_SERVER,
	OPT_RDNS, OPT_HELO_CHECK, OPT_DNS_SKIP_WHITE,
	OPT_CTL_SOCKET,
	OPT_SECCOMP, OPT_PREFIX6, OPT_SYNC_ACCEPT,
	OPT_CONFIG_ANY_PORT, OPT_LOWMX_GRACE,
	OPT_MAX_RCPT, OPT_MAX_NEW, OPT_MIN_FREE,
	OPT_CLUSTER_PEER, OPT_CLUSTER_DIGEST, OPT_CLUSTER_MAX,
};

/* read by default when it exists, as OpenBSD spamd */
#define MAIN_ALLOWEDDOMAINS	"/etc/mail/spamd.alloweddomains"

static const struct option main_longopts[] = {
	{ "db-dir",		required_argument, NULL, OPT_DBDIR },
	{ "domains",		required_argument, NULL, OPT_DOMAINS },
	{ "lowmx-grace",	required_argument, NULL, OPT_LOWMX_GRACE },
	{ "pidfile",		required_argument, NULL, OPT_PIDFILE },
	{ "workers",		required_argument, NULL, 'W' },
	{ "config-port",	required_argument, NULL, OPT_CONFIG_PORT },
	{ "config-any-port",	no_argument,	   NULL, OPT_CONFIG_ANY_PORT },
	{ "commit-window",	required_argument, NULL, OPT_COMMIT },
	{ "pass-seconds",	required_argument, NULL, OPT_PASS },
	{ "grey-seconds",	required_argument, NULL, OPT_GREY },
	{ "white-seconds",	required_argument, NULL, OPT_WHITE },
	{ "trap-seconds",	required_argument, NULL, OPT_TRAP },
	{ "max-per-client",	required_argument, NULL, OPT_PERCLIENT },
	{ "per-client-prefix6",	required_argument, NULL, OPT_PREFIX6 },
	{ "sync-accept",	required_argument, NULL, OPT_SYNC_ACCEPT },
	{ "user",		required_argument, NULL, OPT_USER },
	{ "chroot",		required_argument, NULL, OPT_CHROOT },
	{ "fw",			required_argument, NULL, OPT_FW },
	{ "fw-table",		required_argument, NULL, OPT_FW_TABLE },
	{ "fw-family",		required_argument, NULL, OPT_FW_FAMILY },
	{ "fw-file",		required_argument, NULL, OPT_FW_FILE },
	{ "fw-create",		no_argument,	   NULL, OPT_FW_CREATE },
	{ "fw-reconcile",	required_argument, NULL, OPT_FW_RECONCILE },
	{ "group-v4",		required_argument, NULL, OPT_GROUP4 },
	{ "group-v6",		required_argument, NULL, OPT_GROUP6 },
	{ "log-format",		required_argument, NULL, OPT_LOGFMT },
	{ "help",		no_argument,	   NULL, OPT_HELP },
	{ "sync-port",		required_argument, NULL, OPT_SYNC_PORT },
	{ "sync-key",		required_argument, NULL, OPT_SYNC_KEY },
	{ "sync-no-auth",	no_argument,	   NULL, OPT_SYNC_NOAUTH },
	{ "sync-white",		no_argument,	   NULL, OPT_SYNC_WHITE },
	{ "sync-deletions",	no_argument,	   NULL, OPT_SYNC_DEL },
	{ "http-listen",	required_argument, NULL, OPT_HTTP },
	{ "cluster-peer",	required_argument, NULL, OPT_CLUSTER_PEER },
	{ "cluster-digest",	required_argument, NULL, OPT_CLUSTER_DIGEST },
	{ "cluster-max-bytes",	required_argument, NULL, OPT_CLUSTER_MAX },
	{ "valid-rcpt",		required_argument, NULL, OPT_VALID_RCPT },
	{ "verify-mx",		required_argument, NULL, OPT_VERIFY_MX },
	{ "verify-cache-valid",	required_argument, NULL, OPT_VERIFY_VALID },
	{ "verify-cache-invalid", required_argument, NULL, OPT_VERIFY_INVALID },
	{ "verify-rate",	required_argument, NULL, OPT_VERIFY_RATE },
	{ "invalid-trap",	required_argument, NULL, OPT_INVALID_TRAP },
	{ "dnsbl",		required_argument, NULL, OPT_DNSBL },
	{ "dnsbl-file",		required_argument, NULL, OPT_DNSBL_FILE },
	{ "dnsbl-timeout",	required_argument, NULL, OPT_DNSBL_TIMEOUT },
	{ "dns-server",		required_argument, NULL, OPT_DNS_SERVER },
	{ "rdns",		required_argument, NULL, OPT_RDNS },
	{ "helo-check",		required_argument, NULL, OPT_HELO_CHECK },
	{ "dns-skip-white",	required_argument, NULL, OPT_DNS_SKIP_WHITE },
	{ "ctl-socket",		required_argument, NULL, OPT_CTL_SOCKET },
	{ "seccomp",		required_argument, NULL, OPT_SECCOMP },
	{ "max-rcpt",		required_argument, NULL, OPT_MAX_RCPT },
	{ "max-new-tuples",	required_argument, NULL, OPT_MAX_NEW },
	{ "min-free",		required_argument, NULL, OPT_MIN_FREE },
	{ NULL, 0, NULL, 0 }
};

/* main_usage - the synopsis, to stderr (bad flag) or stdout (--help) */
static void __attribute__((noreturn))
main_usage(int status)
{
	FILE *f = status == 0 ? stdout : stderr;

	fprintf(f,
"usage: spamd [-45bdv] [-B maxblack] [-C file] [-c maxcon]\n"
"             [-G passtime:greyexp:whiteexp] [-K file]\n"
"             [-h hostname] [-l address]... [-M address] [-n name] [-p port]\n"
"             [-S secs] [-s secs] [-w window] [-W workers]\n"
"             [--db-dir DIR] [--domains FILE|none] [--pidfile FILE]\n"
"             [--lowmx-grace SECS]\n"
"             [--config-port PORT] [--config-any-port]\n"
"             [--commit-window MS] [--pass-seconds N]\n"
"             [--grey-seconds N] [--white-seconds N] [--trap-seconds N]\n"
"             [--max-per-client N] [--per-client-prefix6 LEN]\n"
"             [--max-rcpt N] [--max-new-tuples N] [--min-free MB|PCT%%]\n"
"             [--user NAME] [--chroot DIR]\n"
"             [--fw nftables|ipset|pf|file|none] [--fw-table T] [--fw-family F]\n"
"             [--fw-file PATH] [--fw-create] [--fw-reconcile SECS]\n"
"             [--group-v4 LEN] [--group-v6 LEN] [--log-format kv|json]\n"
"             [-y listen] [-Y target]... [--sync-port PORT]\n"
"             [--sync-key FILE | --sync-no-auth] [--sync-white]\n"
"             [--sync-deletions] [--sync-accept ADDR[/LEN]]...\n"
"             [--http-listen ADDR:PORT]\n"
"             [--cluster-peer ADDR:PORT ...] [--cluster-digest SECS]\n"
"             [--cluster-max-bytes N]\n"
"             [--valid-rcpt FILE] [--verify-mx HOST[:PORT]]\n"
"             [--verify-cache-valid SECS] [--verify-cache-invalid SECS]\n"
"             [--verify-rate N] [--invalid-trap N]\n"
"             [--dnsbl SPEC]... [--dnsbl-file FILE] [--dnsbl-timeout MS]\n"
"             [--dns-server HOST:PORT] [--rdns off|log|tarpit]\n"
"             [--helo-check off|log|tarpit] [--dns-skip-white yes|no]\n"
"             [--ctl-socket PATH|none]\n"
"             [--seccomp kill|log|off]\n");
	exit(status);
}

/* main_num - a number flag within [lo, hi], or exit naming the flag */
static long long
main_num(const char *flag, const char *arg, long long lo, long long hi)
{
	const char *errstr;
	long long v = strtonum(arg, lo, hi, &errstr);

	if (errstr != NULL) {
		fprintf(stderr, "spamd: %s %s: %s (allowed %lld..%lld)\n",
		    flag, arg, errstr, lo, hi);
		exit(1);
	}
	return v;
}

/*
 * main_min_free - (added) --min-free: "N" or "NMB" (MB, 0..1048576; 0 is
 * off) or "N%" (of the filesystem's size, 0..99)
 */
static void
main_min_free(struct main_opts *o, const char *arg)
{
	char buf[32];
	size_t n;

	if (strlcpy(buf, arg, sizeof(buf)) >= sizeof(buf))
		goto bad;
	n = strlen(buf);
	if (n > 1 && buf[n - 1] == '%') {
		buf[n - 1] = '\0';
		o->min_free_pct = (int)main_num("--min-free (percent)", buf, 0,
		    99);
		o->min_free_mb = 0;
		return;
	}
	if (n > 2 && strcasecmp(buf + n - 2, "MB") == 0)
		buf[n - 2] = '\0';
	else if (n > 1 && (buf[n - 1] == 'M' || buf[n - 1] == 'm'))
		buf[n - 1] = '\0';
	if (buf[0] < '0' || buf[0] > '9')
		goto bad;
	o->min_free_mb = main_num("--min-free (MB)", buf, 0, 1048576);
	o->min_free_pct = 0;
	return;
bad:
	fprintf(stderr, "spamd: --min-free %s: want MB (e.g. 64) or a "
	    "percentage (e.g. 5%%)\n", arg);
	exit(1);
}

/* main_dns_mode - (added) --rdns / --helo-check: off, log or tarpit */
static int
main_dns_mode(const char *flag, const char *arg)
{
	if (strcmp(arg, "off") == 0)
		return ENGINE_DNS_OFF;
	if (strcmp(arg, "log") == 0)
		return ENGINE_DNS_LOG;
	if (strcmp(arg, "tarpit") == 0)
		return ENGINE_DNS_TARPIT;
	fprintf(stderr, "spamd: %s %s: want off, log or tarpit\n", flag, arg);
	exit(1);
}

/* main_text - check a banner/hostname text: printable, bounded */
static const char *
main_text(const char *flag, const char *arg, size_t max)
{
	size_t i, n = strlen(arg);

	if (n == 0 || n > max) {
		fprintf(stderr, "spamd: %s: length %zu not in 1..%zu\n", flag,
		    n, max);
		exit(1);
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)arg[i] < 0x20 || arg[i] == 0x7f) {
			fprintf(stderr, "spamd: %s: control character at byte "
			    "%zu\n", flag, i);
			exit(1);
		}
	return arg;
}

/* main_add - append a repeatable flag's argument to list (at most max) */
static void
main_add(const char *flag, const char **list, int *n, int max,
    const char *arg)
{
	if (*n >= max) {
		fprintf(stderr, "spamd: %s: at most %d\n", flag, max);
		exit(1);
	}
	list[(*n)++] = arg;
}

/* main_parse_g - -G passtime:greyexp:whiteexp (minutes, hours, hours) */
static void
main_parse_g(struct main_opts *o, const char *arg)
{
	char buf[128], *p, *g, *w;

	if (strlcpy(buf, arg, sizeof(buf)) >= sizeof(buf))
		goto bad;
	p = buf;
	if ((g = strchr(p, ':')) == NULL)
		goto bad;
	*g++ = '\0';
	if ((w = strchr(g, ':')) == NULL)
		goto bad;
	*w++ = '\0';
	o->passtime = main_num("-G passtime (minutes)", p, 0, 1440) * 60;
	o->greyexp = main_num("-G greyexp (hours)", g, 1, 8760) * 3600;
	o->whiteexp = main_num("-G whiteexp (hours)", w, 1, 87600) * 3600;
	return;
bad:
	fprintf(stderr, "spamd: -G %s: want passtime:greyexp:whiteexp\n",
	    arg);
	exit(1);
}

/*
 * main_resolve - a -l host name to one address: its IPv4 address when it
 * has one (OpenBSD binds IPv4 only), else its IPv6 one. A name with two
 * addresses of that family is refused: which one would be a guess, and
 * the other would silently get no listener. 0 ok, -1 not a name.
 */
static int
main_resolve(const char *flag, const char *s, int port,
    struct sockaddr_storage *ss, socklen_t *sl)
{
	struct addrinfo hints, *res, *ai, *pick = NULL;
	int fam, n = 0, error;

	/* "1.2.3" is no name: getaddrinfo would take it as 1.2.0.3 */
	if (s[strspn(s, "0123456789.")] == '\0')
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((error = getaddrinfo(s, NULL, &hints, &res)) != 0)
		return -1;
	for (fam = AF_INET; pick == NULL && fam != 0;
	    fam = fam == AF_INET ? AF_INET6 : 0)
		for (ai = res; ai != NULL; ai = ai->ai_next)
			if (ai->ai_family == fam &&
			    (pick == NULL || ai->ai_addrlen != pick->ai_addrlen ||
			    memcmp(ai->ai_addr, pick->ai_addr,
			    ai->ai_addrlen) != 0)) {
				pick = ai;
				n++;
			}
	if (pick == NULL) {
		freeaddrinfo(res);
		return -1;
	}
	if (n > 1) {
		fprintf(stderr, "spamd: %s %s: the name has %d addresses of "
		    "one family; give one address\n", flag, s, n);
		freeaddrinfo(res);
		exit(1);
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, pick->ai_addr, pick->ai_addrlen);
	*sl = pick->ai_addrlen;
	if (pick->ai_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	freeaddrinfo(res);
	return 0;
}

/* main_addr - parse a -l/-M address into sa (port set) */
static int
main_addr(const char *flag, const char *s, int port,
    struct sockaddr_storage *ss, socklen_t *sl)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*sl = sizeof(*sin);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*sl = sizeof(*sin6);
		return AF_INET6;
	}
	/* -l also takes a host name, as OpenBSD's (getaddrinfo there) */
	if (strcmp(flag, "-l") == 0 && main_resolve(flag, s, port, ss, sl) == 0)
		return ss->ss_family;
	fprintf(stderr, "spamd: %s %s: not an IPv4 or IPv6 address\n", flag,
	    s);
	exit(1);
}

/* main_listen - one listening socket on s:port (reuseport: share it) */
static int
main_listen(const char *flag, const char *s, int port, int reuseport,
    int backlog)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, af, on = 1;

	af = main_addr(flag, s, port, &ss, &sl);
	if ((fd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		fatal("%s %s: socket", flag, s);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1)
		fatal("%s %s: SO_REUSEADDR", flag, s);
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on,
	    sizeof(on)) == -1)
		fatal("%s %s: SO_REUSEPORT", flag, s);
	if (af == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
	    sizeof(on)) == -1)
		fatal("%s %s: IPV6_V6ONLY", flag, s);
	if (bind(fd, (struct sockaddr *)&ss, sl) == -1) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	if (backlog > 0 && listen(fd, backlog) == -1)
		fatal("%s %s port %d: listen", flag, s, port);
	return fd;
}

/* main_parse - the command line into o */
static void
main_parse(struct main_opts *o, int argc, char **argv)
{
	long long pass = -1, grey = -1, white = -1, trap = -1;
	const char *env;
	int ch;

	memset(o, 0, sizeof(*o));
	o->bl_code = 450;
	o->maxblack = -1;
	o->lowmx_grace = 60;
	o->maxcon = 800;
	o->passtime = GDB_PASSTIME_DEFAULT;
	o->greyexp = GDB_GREYEXP_DEFAULT;
	o->whiteexp = GDB_WHITEEXP_DEFAULT;
	o->trapexp = GDB_TRAPEXP_DEFAULT;
	o->banner = "spamd IP-based SPAM blocker";
	o->port = 8025;
	o->stutter_secs = 10;
	o->stutter_delay = 1;
	o->rcvbuf = 1;
	o->dbdir = GDB_DEFAULT_DIR;
	o->workers = 1;
	o->config_port = 8026;
	o->commit_ms = 1000;
	o->max_per_client = 10;
	o->prefix6 = ENGINE_PREFIX6_DEFAULT;
	o->max_rcpt = SESSION_RCPT_DEFAULT;		/* (added) */
	o->max_new_tuples = GREY_MAX_NEW_DEFAULT;	/* (added) */
	o->min_free_mb = GREY_MIN_FREE_DEFAULT;		/* (added) */
	o->user = "_spamd";
	o->cluster_digest = -1;	/* (added) unset: 300 */
	o->cluster_max_bytes = -1;
	o->chroot_dir = "/var/empty";
	/* (added) SPAMD_SECCOMP sets the default of --seccomp (debugging) */
	if ((env = getenv("SPAMD_SECCOMP")) != NULL &&
	    (o->seccomp_mode = sandbox_mode_parse(env)) == -1) {
		fprintf(stderr, "spamd: SPAMD_SECCOMP=%s: want kill, log or "
		    "off\n", env);
		exit(1);
	}
	o->fw_backend = "none";
	o->fw_reconcile = 300;
	o->dns_skip_white = 1;		/* (added) */

	while ((ch = getopt_long(argc, argv, "45B:bC:c:dG:h:K:l:M:n:p:S:s:vw:W:y:Y:",
	    main_longopts, NULL)) != -1) {
		switch (ch) {
		case '4': o->bl_code = 450; break;
		case '5': o->bl_code = 550; break;
		case 'B':
			o->maxblack = (int)main_num("-B", optarg, 1, 10000000);
			break;
		case 'b': o->blacklist_only = 1; break;
		case 'C': o->tls_cert = optarg; break;	/* (added) */
		case 'K': o->tls_key = optarg; break;	/* (added) */
		case 'c':
			o->maxcon = (int)main_num("-c", optarg, 1, 10000000);
			break;
		case 'd': o->foreground = 1; break;
		case 'G': main_parse_g(o, optarg); break;
		case 'h': o->hostname = main_text("-h", optarg, 255); break;
		case 'l':
			main_add("-l", o->listen, &o->nlisten,
			    ENGINE_MAX_LISTEN, optarg);
			break;
		case 'M': o->lowmx = optarg; break;
		case 'n': o->banner = main_text("-n", optarg, 255); break;
		case 'p':
			o->port = (int)main_num("-p", optarg, 1, 65535);
			break;
		case 'S':
			o->stutter_secs = (int)main_num("-S", optarg, 0, 90);
			break;
		case 's':
			o->stutter_delay = (int)main_num("-s", optarg, 0, 10);
			break;
		case 'v': o->verbose = 1; break;
		case 'w':
			o->rcvbuf = (int)main_num("-w", optarg, 1, 65535);
			break;
		case 'W':
			o->workers = (int)main_num("-W", optarg, 1,
			    MAIN_MAX_WORKERS);
			break;
		case OPT_DBDIR: o->dbdir = optarg; break;
		case OPT_DOMAINS: o->domains = optarg; break;
		case OPT_LOWMX_GRACE:
			o->lowmx_grace = (int)main_num("--lowmx-grace", optarg,
			    0, 86400);
			break;
		case OPT_PIDFILE: o->pidfile = optarg; break;
		case OPT_CONFIG_PORT:
			o->config_port = (int)main_num("--config-port", optarg,
			    0, 65535);
			break;
		case OPT_COMMIT:
			o->commit_ms = (int)main_num("--commit-window", optarg,
			    1, 60000);
			break;
		case OPT_PASS:
			pass = main_num("--pass-seconds", optarg, 0, 86400 * 30);
			break;
		case OPT_GREY:
			grey = main_num("--grey-seconds", optarg, 1,
			    86400 * 365);
			break;
		case OPT_WHITE:
			white = main_num("--white-seconds", optarg, 1,
			    86400 * 3650);
			break;
		case OPT_TRAP:
			trap = main_num("--trap-seconds", optarg, 1,
			    86400 * 365);
			break;
		case OPT_PERCLIENT:
			o->max_per_client = (int)main_num("--max-per-client",
			    optarg, 0, 10000000);
			break;
		case OPT_PREFIX6:
			o->prefix6 = (int)main_num("--per-client-prefix6",
			    optarg, 48, 128);
			break;
		case OPT_USER:
			o->user = optarg;
			o->user_given = 1;
			break;
		case OPT_CHROOT: o->chroot_dir = optarg; break;
		case OPT_FW: o->fw_backend = optarg; break;
		case OPT_FW_TABLE: o->fw_table = optarg; break;
		case OPT_FW_FAMILY: o->fw_family = optarg; break;
		case OPT_FW_FILE: o->fw_file = optarg; break;
		case OPT_FW_CREATE: o->fw_create = 1; break;
		case OPT_FW_RECONCILE:
			o->fw_reconcile = (int)main_num("--fw-reconcile",
			    optarg, 1, 86400);
			break;
		case OPT_GROUP4:
			o->group_v4 = (int)main_num("--group-v4", optarg, 0, 32);
			break;
		case OPT_GROUP6:
			o->group_v6 = (int)main_num("--group-v6", optarg, 0,
			    128);
			break;
		case OPT_LOGFMT:
			if (log_set_format(optarg) == -1) {
				fprintf(stderr, "spamd: --log-format %s: "
				    "kv or json\n", optarg);
				exit(1);
			}
			break;
		case 'y': o->sync_listen = optarg; break;
		case 'Y':
			main_add("-Y", o->sync_targets, &o->nsync_targets,
			    GREY_SYNC_MAX_TARGETS, optarg);
			break;
		case OPT_SYNC_PORT:
			o->sync_port = (int)main_num("--sync-port", optarg, 1,
			    65535);
			break;
		case OPT_SYNC_KEY: o->sync_key = optarg; break;
		case OPT_SYNC_NOAUTH: o->sync_no_auth = 1; break;
		case OPT_SYNC_WHITE: o->sync_white = 1; break;
		case OPT_SYNC_DEL: o->sync_deletions = 1; break;
		case OPT_SYNC_ACCEPT:
			main_add("--sync-accept", o->sync_accept,
			    &o->nsync_accept, GREY_SYNC_MAX_TARGETS, optarg);
			break;
		case OPT_HTTP: o->http_listen = optarg; break;
		case OPT_CLUSTER_PEER:
			main_add("--cluster-peer", o->cluster_peers,
			    &o->ncluster_peers, GREY_SYNC_MAX_TARGETS, optarg);
			break;
		case OPT_CLUSTER_DIGEST:
			o->cluster_digest = (int)main_num("--cluster-digest",
			    optarg, 0, 86400);
			break;
		case OPT_CLUSTER_MAX:
			o->cluster_max_bytes = main_num("--cluster-max-bytes",
			    optarg, 0, 1LL << 40);
			break;
		case OPT_CONFIG_ANY_PORT: o->config_any_port = 1; break;
		case OPT_VALID_RCPT: o->valid_rcpt = optarg; break;
		case OPT_VERIFY_MX: o->verify_mx = optarg; break;
		case OPT_VERIFY_VALID:
			o->verify_cache_valid = (int)main_num(
			    "--verify-cache-valid", optarg, 1, 86400 * 365);
			break;
		case OPT_VERIFY_INVALID:
			o->verify_cache_invalid = (int)main_num(
			    "--verify-cache-invalid", optarg, 1, 86400 * 365);
			break;
		case OPT_VERIFY_RATE:
			o->verify_rate = (int)main_num("--verify-rate", optarg,
			    1, 100000);
			break;
		case OPT_INVALID_TRAP:
			o->invalid_trap = (int)main_num("--invalid-trap",
			    optarg, 1, RCPT_TRAP_MAX);
			break;
		case OPT_DNSBL:
			main_add("--dnsbl", o->dnsbl, &o->ndnsbl,
			    DNSBL_MAX_ZONES, optarg);
			break;
		case OPT_DNSBL_FILE: o->dnsbl_file = optarg; break;
		case OPT_DNSBL_TIMEOUT:
			o->dnsbl_timeout_ms = (int)main_num("--dnsbl-timeout",
			    optarg, 1, 60000);
			break;
		case OPT_DNS_SERVER: o->dns_server = optarg; break;
		case OPT_RDNS:
			o->rdns_mode = main_dns_mode("--rdns", optarg);
			break;
		case OPT_HELO_CHECK:
			o->helo_mode = main_dns_mode("--helo-check", optarg);
			break;
		case OPT_SECCOMP:	/* (added) */
			if ((o->seccomp_mode = sandbox_mode_parse(optarg)) ==
			    -1) {
				fprintf(stderr, "spamd: --seccomp %s: want kill, "
				    "log or off\n", optarg);
				exit(1);
			}
			break;
		case OPT_DNS_SKIP_WHITE:
			if (strcmp(optarg, "yes") == 0)
				o->dns_skip_white = 1;
			else if (strcmp(optarg, "no") == 0)
				o->dns_skip_white = 0;
			else {
				fprintf(stderr, "spamd: --dns-skip-white %s: "
				    "want yes or no\n", optarg);
				exit(1);
			}
			break;
		case OPT_CTL_SOCKET: o->ctl_socket = optarg; break;
		case OPT_MAX_RCPT:	/* (added) no "off": 1..100000 */
			o->max_rcpt = (int)main_num("--max-rcpt", optarg, 1,
			    SESSION_RCPT_LIMIT);
			break;
		case OPT_MAX_NEW:	/* (added) no "off" either */
			o->max_new_tuples = (int)main_num("--max-new-tuples",
			    optarg, 1, GREY_MAX_NEW_LIMIT);
			break;
		case OPT_MIN_FREE: main_min_free(o, optarg); break;
		case OPT_HELP: main_usage(0);
		default: main_usage(1);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "spamd: unexpected argument %s\n", argv[optind]);
		main_usage(1);
	}
	if (pass >= 0)
		o->passtime = pass;
	if (grey >= 0)
		o->greyexp = grey;
	if (white >= 0)
		o->whiteexp = white;
	if (trap >= 0)
		o->trapexp = trap;
	/*
	 * -B as OpenBSD spamd: with -b, maxcon; when greylisting, a -B of
	 * maxcon (the default; more is refused) becomes maxcon - 100 (at least 0),
	 * so a flood of blacklisted clients past that is answered without
	 * stutter and 100 slots stay for greylisted senders.
	 */
	if (o->blacklist_only)
		o->maxblack = o->maxcon;
	else if (o->maxblack == -1 || o->maxblack == o->maxcon)
		o->maxblack = o->maxcon > 100 ? o->maxcon - 100 : 0;
	if (o->maxblack > o->maxcon) {
		fprintf(stderr, "spamd: -B %d: more than -c %d\n", o->maxblack,
		    o->maxcon);
		exit(1);
	}
	if (o->nlisten == 0)
		o->listen[o->nlisten++] = "127.0.0.1";
	/*
	 * OpenBSD's spamd reads /etc/mail/spamd.alloweddomains whenever it
	 * exists: so do we, or domain trapping silently stops after a
	 * migration. --domains none turns it off. SPAMD_ALLOWEDDOMAINS
	 * names another default path (packagers, tests).
	 */
	if (o->domains == NULL) {
		const char *def = getenv("SPAMD_ALLOWEDDOMAINS");

		if (def == NULL || *def == '\0')
			def = MAIN_ALLOWEDDOMAINS;
		if (!o->blacklist_only && access(def, F_OK) == 0)
			o->domains = def;
	} else if (strcmp(o->domains, "none") == 0)
		o->domains = NULL;
	if (o->hostname == NULL) {
		if (gethostname(o->hostbuf, sizeof(o->hostbuf)) == -1)
			strlcpy(o->hostbuf, "localhost", sizeof(o->hostbuf));
		o->hostbuf[sizeof(o->hostbuf) - 1] = '\0';
		o->hostname = main_text("gethostname", o->hostbuf, 255);
	}
	if (strcmp(o->fw_backend, "none") != 0 &&
	    strcmp(o->fw_backend, "nftables") != 0 &&
	    strcmp(o->fw_backend, "ipset") != 0 &&
	    strcmp(o->fw_backend, "pf") != 0 &&
	    strcmp(o->fw_backend, "file") != 0) {
		fprintf(stderr, "spamd: --fw %s: want nftables, ipset, pf, "
		    "file or none\n", o->fw_backend);
		exit(1);
	}
	if (strcmp(o->fw_backend, "file") == 0 && o->fw_file == NULL) {
		fprintf(stderr, "spamd: --fw file needs --fw-file PATH\n");
		exit(1);
	}
}

/* main_limits - the file limit must hold each engine's share of -c;
 * returns each engine's own cap (-c, or what its file limit allows) */
static int
main_limits(const struct main_opts *o)
{
	struct rlimit rl;
	long long share = (o->maxcon + o->workers - 1) / o->workers;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		fatal("getrlimit RLIMIT_NOFILE");
	if (rl.rlim_max != RLIM_INFINITY &&
	    (rlim_t)(share + MAIN_FD_RESERVE) > rl.rlim_max) {
		fprintf(stderr, "spamd: -c %d: each of %d engine(s) needs %lld "
		    "descriptors but the file limit is %llu (raise it, lower "
		    "-c or add -W workers)\n", o->maxcon, o->workers,
		    share + MAIN_FD_RESERVE, (unsigned long long)rl.rlim_max);
		exit(1);
	}
	/* use what we may: a tarpit's connections are its file descriptors */
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			fatal("setrlimit RLIMIT_NOFILE");
	}
	/*
	 * (added) -c is one budget shared by the engines (engine_budget.c)
	 * and the kernel's SO_REUSEPORT hash does not spread clients evenly,
	 * so an engine may hold more than its share: up to -c, or as many as
	 * its file limit leaves. The check above still asks only for the
	 * share, so -W keeps carrying a -c above one process's file limit;
	 * an engine at its own cap stops accepting, the others go on.
	 */
	if (rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= (rlim_t)o->maxcon + MAIN_FD_RESERVE)
		return o->maxcon;
	return (int)(rl.rlim_cur - MAIN_FD_RESERVE);
}

/*
 * main_pidfile - lock path and write our pid into it; exit if another
 * live spamd holds the lock. The descriptor stays open (and locked) for
 * the life of the master.
 */
static int
main_pidfile(const char *path)
{
	char buf[32];
	int fd, n;

	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) == -1)
		fatal("--pidfile %s: open", path);
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		n = (int)read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		fatalx("--pidfile %s: held by another spamd (pid %s)", path,
		    buf[0] != '\0' ? buf : "?");
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || write(fd, buf, (size_t)n) != n)
		fatal("--pidfile %s: write", path);
	return fd;
}

/*
 * main_ctl_path - (added) greyctl's control socket path into o->ctl_path
 * (absolute): --ctl-socket PATH, or <db-dir>/spamd.sock so greyctl -D DIR
 * finds it unconfigured; "" when "none" (or -b without --ctl-socket).
 * Exits on error.
 */
static void
main_ctl_path(struct main_opts *o)
{
	const char *path = o->ctl_socket;
	char cwd[PATH_MAX];
	int n;

	o->ctl_path[0] = '\0';
	if (path != NULL && strcmp(path, "none") == 0)
		return;
	if (path == NULL && o->blacklist_only)
		return;
	if (path == NULL) {
		/* the writer would make the directory anyway (as greydb) */
		if (mkdir(o->dbdir, 0700) == -1 && errno != EEXIST) {
			fprintf(stderr, "spamd: --db-dir %s: mkdir: %s\n",
			    o->dbdir, strerror(errno));
			exit(1);
		}
		n = snprintf(o->ctl_path, sizeof(o->ctl_path), "%s/spamd.sock",
		    o->dbdir);
	} else
		n = snprintf(o->ctl_path, sizeof(o->ctl_path), "%s", path);
	if (n < 0 || (size_t)n >= sizeof(o->ctl_path)) {
		fprintf(stderr, "spamd: --ctl-socket: path too long\n");
		exit(1);
	}
	/* daemon() moves to /: keep the path (unlinked at exit) absolute */
	if (o->ctl_path[0] != '/') {
		char rel[PATH_MAX];

		strlcpy(rel, o->ctl_path, sizeof(rel));
		if (getcwd(cwd, sizeof(cwd)) == NULL ||
		    (size_t)snprintf(o->ctl_path, sizeof(o->ctl_path), "%s/%s",
		    cwd, rel) >= sizeof(o->ctl_path)) {
			fprintf(stderr, "spamd: --ctl-socket %s: cannot make "
			    "the path absolute\n", rel);
			exit(1);
		}
	}
}

/* main_user_access - whether uid:gid may access path with mode (as
 * access(2) checks it), tried in a child that becomes the user: 0, or
 * the errno it got */
static int
main_user_access(uid_t uid, gid_t gid, const char *path, int mode)
{
	pid_t pid;
	int st;

	if ((pid = fork()) == -1)
		return errno;
	if (pid == 0) {
		if (privsep_become(uid, gid) == -1)
			_exit(EPERM);
		_exit(access(path, mode) == 0 ? 0 : errno & 0x7f);
	}
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : EPERM;
}

/* main_reach - exit with a message unless the writer's user may access
 * path with mode; what names the option */
static void
main_reach(const struct passwd *pw, const char *what, const char *path,
    int mode)
{
	int e;

	if (path == NULL || (e = main_user_access(pw->pw_uid, pw->pw_gid,
	    path, mode)) == 0)
		return;
	fprintf(stderr, "spamd: %s %s: the writer runs as %s and cannot %s "
	    "it (%s); make it and every directory above it reachable by "
	    "that user\n", what, path, pw->pw_name, mode & W_OK ? "write" :
	    "read", strerror(e));
	exit(1);
}

/* main_store_file - whether name is one of the store's files: the two
 * databases, Berkeley DB's region files (__db.*) and logs (log.N) */
static int
main_store_file(const char *name)
{
	return strcmp(name, "grey.db") == 0 ||
	    strcmp(name, "expire.db") == 0 ||
	    strncmp(name, "__db.", 5) == 0 ||
	    (strncmp(name, "log.", 4) == 0 && name[4] >= '0' &&
	    name[4] <= '9');
}

/*
 * main_writer_prepare - (added) as root, before the writer drops to
 * o->user: the database directory (made if missing) and the store's
 * files in it belong to that user, and every path the writer opens is
 * reachable by it; exits with a message naming the path otherwise. Why:
 * the writer parses what peers, HTTP clients and DNS send, so it must
 * not be root; Berkeley DB files a root process made would lock it out.
 */
static void
main_writer_prepare(const struct main_opts *o)
{
	struct passwd *pw;
	struct dirent *de;
	struct stat st;
	char dirbuf[PATH_MAX];
	DIR *d;

	if (geteuid() != 0)
		return;
	if ((pw = getpwnam(o->user)) == NULL) {
		fprintf(stderr, "spamd: --user %s: no such user\n", o->user);
		exit(1);
	}
	if (!o->blacklist_only) {
		if (mkdir(o->dbdir, 0750) == -1 && errno != EEXIST) {
			fprintf(stderr, "spamd: --db-dir %s: mkdir: %s\n",
			    o->dbdir, strerror(errno));
			exit(1);
		}
		if (stat(o->dbdir, &st) == -1 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "spamd: --db-dir %s: not a directory\n",
			    o->dbdir);
			exit(1);
		}
		/* a shared directory (/tmp, a typo) is never given away */
		if (st.st_mode & (S_IWOTH | S_ISVTX)) {
			fprintf(stderr, "spamd: --db-dir %s: writable by "
			    "everyone; give spamd a directory of its own\n",
			    o->dbdir);
			exit(1);
		}
		if ((st.st_uid != pw->pw_uid || st.st_gid != pw->pw_gid) &&
		    chown(o->dbdir, pw->pw_uid, pw->pw_gid) == -1) {
			fprintf(stderr, "spamd: --db-dir %s: chown to %s: %s\n",
			    o->dbdir, o->user, strerror(errno));
			exit(1);
		}
		/* the store's files, e.g. left by a greyctl run as root, and
		 * only those (a --db-dir typo must not give away others) */
		if ((d = opendir(o->dbdir)) != NULL) {
			while ((de = readdir(d)) != NULL)
				if (main_store_file(de->d_name) &&
				    fstatat(dirfd(d), de->d_name, &st,
				    AT_SYMLINK_NOFOLLOW) == 0 &&
				    S_ISREG(st.st_mode) &&
				    st.st_uid != pw->pw_uid)
					(void)fchownat(dirfd(d), de->d_name,
					    pw->pw_uid, pw->pw_gid,
					    AT_SYMLINK_NOFOLLOW);
			closedir(d);
		}
		main_reach(pw, "--db-dir", o->dbdir, R_OK | W_OK | X_OK);
	}
	if (strcmp(o->fw_backend, "file") == 0 && o->fw_file != NULL) {
		strlcpy(dirbuf, o->fw_file, sizeof(dirbuf));
		main_reach(pw, "--fw-file's directory", dirname(dirbuf),
		    W_OK | X_OK);
	}
	main_reach(pw, "--domains", o->domains != NULL &&
	    access(o->domains, F_OK) == 0 ? o->domains : NULL, R_OK);
	main_reach(pw, "--valid-rcpt", o->valid_rcpt, R_OK);
	main_reach(pw, "--dnsbl-file", o->dnsbl_file, R_OK);
}

/* where main_writer_sigsys notes the writer's refused call */
static struct engine_budget *main_sigsys_budget;

/* main_writer_sigsys - the writer's filter refused call nr: note it for
 * the master (runs in the writer's SIGSYS handler: one atomic store) */
static void
main_writer_sigsys(int nr)
{
	engine_budget_note_sigsys(main_sigsys_budget, ENGINE_BUDGET_WRITER,
	    nr);
}

/* main_writer_caps - (added) the capabilities the writer keeps: none,
 * or CAP_NET_ADMIN for a kernel firewall backend (netlink; for ipset
 * and pfctl also ambient, so the command it runs has it) */
static uint64_t
main_writer_caps(const struct main_opts *o, int *ambient)
{
	*ambient = 0;
	if (strcmp(o->fw_backend, "none") == 0 ||
	    strcmp(o->fw_backend, "file") == 0)
		return 0;
	*ambient = strcmp(o->fw_backend, "nftables") != 0;
	return 1ULL << CAP_NET_ADMIN;
}

/* main_ctl_socket - (added) open the control socket at o->ctl_path (off
 * when empty) into gc; exits (logged) on error */
static void
main_ctl_socket(struct main_opts *o, struct grey_conf *gc)
{
	struct passwd *pw;
	char err[PATH_MAX + 128];
	gid_t gid = (gid_t)-1;

	gc->ctl_fd = -1;
	gc->ctl_path = NULL;
	if (o->ctl_path[0] == '\0')
		return;
	/* spamd's group may open it (the file is 0660) */
	if (geteuid() == 0 && (pw = getpwnam(o->user)) != NULL)
		gid = pw->pw_gid;
	if (grey_ctl_prepare(gc, o->ctl_path, gid, err, sizeof(err)) == -1)
		fatalx("%s", err);
}

/* main_kill_all - send sig to every live child */
static void
main_kill_all(struct main_child *ch, int n, int sig)
{
	int i;

	for (i = 0; i < n; i++)
		if (ch[i].pid > 0 && !ch[i].done)
			kill(ch[i].pid, sig);
}

/* main_child_name - "writer" or "engine N" for logs */
static void
main_child_name(const struct main_child *c, char *buf, size_t bufsz)
{
	if (c->engine < 0)
		strlcpy(buf, "writer", bufsz);
	else
		snprintf(buf, bufsz, "engine%d", c->engine);
}

static void main_child_setup(const sigset_t *oldmask, pid_t parent,
    int pidfd);

/* main_engine_spawn - fork engine i with fd, its end of the writer's
 * socketpair; close_fds (n of them, -1 skipped) are the other engines'
 * ends the child must not keep; the pid, or -1 (logged) */
static pid_t
main_engine_spawn(struct main_run *r, int i, int fd, const int *close_fds,
    int n)
{
	const struct main_opts *o = r->o;
	pid_t pid;
	int j, k;

	if ((pid = fork()) == -1) {
		log_warn("event=fork child=engine%d", i);
		return -1;
	}
	if (pid != 0)
		return pid;
	main_child_setup(r->oldmask, r->parent, r->pidfd);
	if (r->cfg_fd != -1)
		close(r->cfg_fd);	/* the writer's */
	if (r->gc->http_fd != -1)
		close(r->gc->http_fd);	/* (added) the writer's */
	if (r->gc->ctl_fd != -1)
		close(r->gc->ctl_fd);	/* (added) the writer's */
	if (r->sup != -1)
		close(r->sup);		/* (added) ours to the writer */
	for (k = 0; k < n; k++)
		if (close_fds[k] != -1 && close_fds[k] != fd)
			close(close_fds[k]);
	for (k = 0; k < o->workers; k++)
		if (k != i)
			for (j = 0; j < o->nlisten; j++)
				close(r->lfd[k][j]);
	r->ec->index = i;
	for (j = 0; j < o->nlisten; j++)
		r->ec->listen_fds[j] = r->lfd[i][j];
	r->ec->writer_fd = fd;
	exit(engine_main(r->ec));
}

/* main_syscall_name - the name of system call nr on this architecture
 * into buf ("?" when unknown) */
static void
main_syscall_name(int nr, char *buf, size_t bufsz)
{
	char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

	strlcpy(buf, name != NULL ? name : "?", bufsz);
	free(name);
}

/* main_engine_died - engine c died (status st): log it with its signal
 * and, for SIGSYS, the call its filter trapped; give back its budget;
 * schedule its successor. 0, or -1 on a crash loop (the caller stops) */
static int
main_engine_died(struct main_run *r, struct main_child *c, int st,
    char *why, size_t whysz)
{
	time_t now = time(NULL);
	int sysnr, i, recent, delay;
	char name[64];

	sysnr = engine_budget_take_sigsys(r->budget, c->engine);
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS && sysnr >= 0) {
		main_syscall_name(sysnr, name, sizeof(name));
		log_warnx("event=child-died child=engine%d pid=%ld signal=%d "
		    "syscall=%d syscall_name=%s", c->engine, (long)c->pid,
		    WTERMSIG(st), sysnr, name);
	} else if (WIFSIGNALED(st))
		log_warnx("event=child-died child=engine%d pid=%ld signal=%d",
		    c->engine, (long)c->pid, WTERMSIG(st));
	else
		log_warnx("event=child-died child=engine%d pid=%ld status=%d",
		    c->engine, (long)c->pid, WEXITSTATUS(st));
	snprintf(why, whysz, "%d %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0,
	    sysnr);
	engine_budget_release(r->budget, c->engine);
	/* the crash-loop window: the last MAIN_ENGINE_DEATHS deaths, oldest
	 * first; all of them within the window is a loop */
	for (i = 0; i < MAIN_ENGINE_DEATHS - 1; i++)
		r->deaths[i] = r->deaths[i + 1];
	r->deaths[MAIN_ENGINE_DEATHS - 1] = now;
	if (r->deaths[0] != 0 && now - r->deaths[0] < MAIN_ENGINE_WINDOW) {
		log_warnx("event=engine-restart-limit deaths=%d secs=%d "
		    "action=exit", MAIN_ENGINE_DEATHS, MAIN_ENGINE_WINDOW);
		return -1;
	}
	for (recent = 0, i = 0; i < MAIN_ENGINE_DEATHS; i++)
		if (r->deaths[i] != 0 && now - r->deaths[i] <
		    MAIN_ENGINE_WINDOW)
			recent++;
	/* at once the first time, then back off: 1, 2, 4 s */
	delay = recent <= 1 ? 0 : 1 << (recent - 2);
	c->restart_at = now + delay;
	log_info("event=engine-restart engine=%d in_secs=%d deaths=%d/%ds",
	    c->engine, delay, recent, MAIN_ENGINE_WINDOW);
	return 0;
}

/* main_engine_restart - start dead engine c's successor: a new
 * socketpair, one end to the writer over the supervisor channel (with
 * why: "signal syscall"), the other to the new engine. 0, or -1 when the
 * writer cannot take it (the caller treats the writer as failed) */
static int
main_engine_restart(struct main_run *r, struct main_child *c,
    const char *why)
{
	struct grey_sup_msg m;
	struct msghdr mh;
	struct iovec iov = { &m, sizeof(m) };
	union {
		struct cmsghdr	c;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct cmsghdr *cmh;
	int sv[2], sig = 0, sysnr = -1;
	pid_t pid;

	if (sscanf(why, "%d %d", &sig, &sysnr) != 2)
		sig = 0, sysnr = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("event=engine-restart engine=%d op=socketpair",
		    c->engine);
		return -1;
	}
	memset(&m, 0, sizeof(m));
	m.engine = c->engine;
	m.sig = sig;
	m.sysnr = sysnr;
	memset(&mh, 0, sizeof(mh));
	memset(&cm, 0, sizeof(cm));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	cmh = CMSG_FIRSTHDR(&mh);
	cmh->cmsg_level = SOL_SOCKET;
	cmh->cmsg_type = SCM_RIGHTS;
	cmh->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmh), &sv[1], sizeof(int));
	if (sendmsg(r->sup, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(m)) {
		log_warn("event=engine-restart engine=%d op=send-to-writer",
		    c->engine);
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	close(sv[1]);
	pid = main_engine_spawn(r, c->engine, sv[0], NULL, 0);
	close(sv[0]);
	if (pid == -1)
		return -1;
	c->pid = pid;
	c->done = 0;
	c->restart_at = 0;
	return 0;
}

/* main_supervise - wait for signals and children; returns exit status,
 * or MAIN_RESTART when the writer failed and all children are gone */
static int
main_supervise(struct main_run *r, struct main_child *ch, int n,
    const sigset_t *set)
{
	int stopping = 0, status = 0, live = n, i, st, sig;
	int asked = 0, writer_failed = 0, sysnr;
	time_t deadline = 0;
	struct timespec ts = { 0, 200 * 1000 * 1000 };	/* restarts are due */
	char whys[MAIN_MAX_WORKERS + 1][32];
	siginfo_t info;
	pid_t pid;
	char name[32];

	while (live > 0) {
		sig = sigtimedwait(set, &info, &ts);
		if (sig == -1 && errno != EAGAIN && errno != EINTR)
			fatal("sigtimedwait");
		switch (sig) {
		case SIGTERM:
		case SIGINT:
			if (!asked)
				log_info("event=stop signal=%d", sig);
			stopping = 1;
			asked = 1;	/* no restart after this */
			deadline = time(NULL) + MAIN_STOP_SECS;
			main_kill_all(ch, n, SIGTERM);
			break;
		case SIGHUP:
			/* the writer re-reads the allowed-domains file */
			for (i = 0; i < n; i++)
				if (ch[i].engine < 0 && !ch[i].done)
					kill(ch[i].pid, SIGHUP);
			break;
		case SIGUSR1:
			main_kill_all(ch, n, SIGUSR1);
			break;
		default:
			break;
		}
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			for (i = 0; i < n; i++)
				if (ch[i].pid == pid)
					break;
			if (i == n)
				continue;
			ch[i].done = 1;
			live--;
			main_child_name(&ch[i], name, sizeof(name));
			/*
			 * (added) A writer killed or failed (not a clean exit
			 * after our SIGTERM) is restarted with new engines;
			 * its engines exit by themselves when it goes (and
			 * may be reaped before it), so the writer's own
			 * status decides, not which death came first.
			 */
			if (ch[i].engine < 0 && !asked &&
			    (WIFSIGNALED(st) || WEXITSTATUS(st) != 0))
				writer_failed = 1;
			if (stopping) {
				log_debug("event=child-exit child=%s pid=%ld "
				    "status=%d", name, (long)pid,
				    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
				continue;
			}
			/* (added) a dead engine is replaced alone; only a
			 * crash loop stops the daemon */
			if (ch[i].engine >= 0 && r->sup != -1) {
				if (main_engine_died(r, &ch[i], st, whys[i],
				    sizeof(whys[i])) == 0)
					continue;
				status = 1;
				stopping = 1;
				deadline = time(NULL) + MAIN_STOP_SECS;
				main_kill_all(ch, n, SIGTERM);
				continue;
			}
			/* the writer gone means the daemon is broken: stop */
			sysnr = ch[i].engine < 0 ? engine_budget_take_sigsys(
			    r->budget, ENGINE_BUDGET_WRITER) : -1;
			if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS &&
			    sysnr >= 0) {
				char sname[64];

				main_syscall_name(sysnr, sname, sizeof(sname));
				log_warnx("event=child-died child=%s pid=%ld "
				    "signal=%d syscall=%d syscall_name=%s", name,
				    (long)pid, WTERMSIG(st), sysnr, sname);
			} else if (WIFSIGNALED(st))
				log_warnx("event=child-died child=%s pid=%ld "
				    "signal=%d", name, (long)pid, WTERMSIG(st));
			else
				log_warnx("event=child-died child=%s pid=%ld "
				    "status=%d", name, (long)pid,
				    WEXITSTATUS(st));
			status = 1;
			stopping = 1;
			deadline = time(NULL) + (writer_failed ?
			    MAIN_RESTART_KILL_SECS : MAIN_STOP_SECS);
			main_kill_all(ch, n, SIGTERM);
		}
		/* (added) successors of dead engines that are due */
		for (i = 0; i < n && !stopping; i++) {
			if (!ch[i].done || ch[i].restart_at == 0 ||
			    time(NULL) < ch[i].restart_at)
				continue;
			if (main_engine_restart(r, &ch[i], whys[i]) == 0) {
				live++;
				continue;
			}
			/* the writer cannot take it: restart everything */
			ch[i].restart_at = 0;
			writer_failed = 1;
			stopping = 1;
			deadline = time(NULL) + MAIN_RESTART_KILL_SECS;
			main_kill_all(ch, n, SIGTERM);
		}
		if (stopping && live > 0 && time(NULL) >= deadline) {
			log_warnx("event=stop-timeout secs=%d action=SIGKILL",
			    MAIN_STOP_SECS);
			main_kill_all(ch, n, SIGKILL);
			deadline = time(NULL) + MAIN_STOP_SECS;
		}
	}
	return writer_failed && !asked ? MAIN_RESTART : status;
}

/* main_restart_ok - (added) whether one more restart fits the rate limit;
 * hist holds the last MAIN_RESTART_MAX restart times, oldest first */
static int
main_restart_ok(time_t hist[MAIN_RESTART_MAX], time_t now)
{
	int i;

	if (hist[0] != 0 && now - hist[0] < MAIN_RESTART_WINDOW)
		return 0;
	for (i = 0; i < MAIN_RESTART_MAX - 1; i++)
		hist[i] = hist[i + 1];
	hist[MAIN_RESTART_MAX - 1] = now;
	return 1;
}

/* main_child_setup - in a new child: default signals, die with the
 * parent, no pidfile lock */
static void
main_child_setup(const sigset_t *oldmask, pid_t parent, int pidfd)
{
	if (pidfd != -1)
		close(pidfd);
	if (sigprocmask(SIG_SETMASK, oldmask, NULL) == -1)
		fatal("sigprocmask");
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) == -1)
		fatal("prctl PR_SET_PDEATHSIG");
	/* the parent may have died before prctl took effect */
	if (getppid() != parent)
		exit(1);
}

int
main(int argc, char **argv)
{
	struct main_opts o;
	struct main_child ch[MAIN_MAX_WORKERS + 1];
	struct grey_conf gc;
	struct engine_conf ec;
	int lfd[MAIN_MAX_WORKERS][ENGINE_MAX_LISTEN];
	int sv[MAIN_MAX_WORKERS][2];
	int wfds[MAIN_MAX_WORKERS];
	int cfg_fd = -1, pidfd = -1, i, j, nch = 0, status;
	int sup[2], ends[MAIN_MAX_WORKERS];	/* (added) */
	struct main_run run;			/* (added) */
	time_t restarts[MAIN_RESTART_MAX] = { 0 };	/* (added) */
	struct engine_budget *budget;	/* (added) -c/-B of all engines */
	int engine_cap;			/* (added) one engine's own cap */
	struct sockaddr_storage ss;
	socklen_t sl;
	sigset_t set, oldmask;
	pid_t pid, parent;

	main_parse(&o, argc, argv);
	log_init("spamd", o.foreground, o.verbose);
	engine_cap = main_limits(&o);
	/* (added) -c and -B shared by all engines: a MAP_SHARED page the
	 * engines inherit */
	if ((budget = engine_budget_new(o.workers, o.maxcon,
	    o.maxblack)) == NULL)
		fatal("engine_budget_new");
	/* (added) --max-per-client counted daemon-wide on the same page */
	engine_budget_clients(budget, o.max_per_client, o.prefix6);

	/* (added) sync options and key, while errors still reach stderr */
	memset(&gc, 0, sizeof(gc));
	gc.sync_listen = o.sync_listen;
	for (i = 0; i < o.nsync_targets; i++)
		gc.sync_targets[i] = o.sync_targets[i];
	gc.nsync_targets = o.nsync_targets;
	gc.sync_port = o.sync_port;
	gc.sync_key_file = o.sync_key;
	gc.sync_no_auth = o.sync_no_auth;
	gc.sync_white = o.sync_white;
	gc.sync_deletions = o.sync_deletions;
	for (i = 0; i < o.nsync_accept; i++)
		gc.sync_accept[i] = o.sync_accept[i];
	gc.nsync_accept = o.nsync_accept;
	gc.http_listen = o.http_listen;
	for (i = 0; i < o.ncluster_peers; i++)
		gc.cluster_peers[i] = o.cluster_peers[i];
	gc.ncluster_peers = o.ncluster_peers;
	gc.cluster_digest_secs = o.cluster_digest >= 0 ? o.cluster_digest :
	    300;
	gc.cluster_max_bytes = o.cluster_max_bytes >= 0 ?
	    o.cluster_max_bytes : 256LL << 20;
	gc.valid_rcpt_file = o.valid_rcpt;
	gc.verify_mx = o.verify_mx;
	gc.verify_cache_valid = o.verify_cache_valid;
	gc.verify_cache_invalid = o.verify_cache_invalid;
	gc.verify_rate = o.verify_rate;
	gc.invalid_trap = o.invalid_trap;
	gc.dnsbl_file = o.dnsbl_file;	/* (added) SIGHUP reload */
	gc.verify_helo = o.hostname;
	{
		char serr[512];

		/* the HTTP socket stays open here, as the config port, so
		 * a restarted writer serves on it again */
		if (grey_sync_prepare(&gc, serr, sizeof(serr)) == -1 ||
		    grey_cluster_prepare(&gc, serr, sizeof(serr)) == -1 ||
		    grey_http_prepare(&gc, serr, sizeof(serr)) == -1 ||
		    grey_rcpt_check(gc.valid_rcpt_file, gc.verify_mx, serr,
		    sizeof(serr)) == -1) {
			fprintf(stderr, "spamd: %s\n", serr);
			exit(1);
		}
	}

	if (geteuid() == 0 && getpwnam(o.user) == NULL) {
		/*
		 * The default user is made by the package; a source build run
		 * as root falls back to nobody (still unprivileged and
		 * chrooted) instead of refusing to start. A --user that does
		 * not exist is an error.
		 */
		if (!o.user_given && getpwnam("nobody") != NULL) {
			log_warnx("event=privsep user=%s error=\"no such user\" "
			    "fallback=nobody", o.user);
			o.user = "nobody";
		} else {
			fprintf(stderr, "spamd: --user %s: no such user\n",
			    o.user);
			exit(1);
		}
	}
	memset(&ec, 0, sizeof(ec));
	if (o.lowmx != NULL) {
		main_addr("-M", o.lowmx, 0, &ss, &sl);
		if (bl_addr_from_sa((struct sockaddr *)&ss, &ec.lowmx) == -1) {
			fprintf(stderr, "spamd: -M %s: bad address\n", o.lowmx);
			exit(1);
		}
		ec.lowmx_set = 1;
	}
	/* (added) STARTTLS: -C and -K together, read now (before daemon's
	 * chdir and the engines' chroot), errors on stderr */
	if ((o.tls_cert != NULL) != (o.tls_key != NULL)) {
		fprintf(stderr, "spamd: %s needs %s too\n",
		    o.tls_cert != NULL ? "-C" : "-K",
		    o.tls_cert != NULL ? "-K" : "-C");
		exit(1);
	}
	if (o.tls_cert != NULL) {
		char terr[512];

		if ((ec.tls_ctx = tls_ctx_new(o.tls_cert, o.tls_key, terr,
		    sizeof(terr))) == NULL) {
			fprintf(stderr, "spamd: %s\n", terr);
			exit(1);
		}
	}
	/* (added) DNS checks: a bad zone, file or server stops us here */
	if (o.dnsbl_file != NULL && o.dnsbl_file[0] != '/') {
		/* daemon() moves to / and SIGHUP re-reads: keep it absolute */
		char cwd[PATH_MAX];

		if (getcwd(cwd, sizeof(cwd)) == NULL ||
		    (size_t)snprintf(o.dnsbl_path, sizeof(o.dnsbl_path),
		    "%s/%s", cwd, o.dnsbl_file) >= sizeof(o.dnsbl_path)) {
			fprintf(stderr, "spamd: --dnsbl-file %s: cannot make "
			    "the path absolute\n", o.dnsbl_file);
			exit(1);
		}
		o.dnsbl_file = o.dnsbl_path;
		gc.dnsbl_file = o.dnsbl_file;
	}
	ec.dnsbl_specs = o.dnsbl;
	ec.ndnsbl = o.ndnsbl;
	ec.dnsbl_file = o.dnsbl_file;
	ec.dnsbl_timeout_ms = o.dnsbl_timeout_ms;
	ec.dns_server = o.dns_server;
	/* (added) the same zones for the writer's explain (grey_dnsbl.c) */
	gc.dnsbl_specs = o.dnsbl;
	gc.ndnsbl = o.ndnsbl;
	gc.dnsbl_timeout_ms = o.dnsbl_timeout_ms;
	gc.dns_server = o.dns_server;
	ec.rdns_mode = o.rdns_mode;
	ec.helo_mode = o.helo_mode;
	ec.dns_skip_white = o.dns_skip_white;
	{
		char derr[1024];

		if (engine_dns_conf_check(&ec, derr, sizeof(derr)) == -1) {
			fprintf(stderr, "spamd: %s\n", derr);
			exit(1);
		}
	}

	/*
	 * Listeners: first a probe without SO_REUSEPORT, so a port already
	 * in use (even by another SO_REUSEPORT daemon of the same user,
	 * which would silently share our connections) is an error; then one
	 * socket per engine, all sharing the port.
	 */
	for (j = 0; j < o.nlisten; j++) {
		int probe = main_listen("-l", o.listen[j], o.port, 0, 0);

		if (probe == -1) {
			fprintf(stderr, "spamd: -l %s -p %d: bind: %s\n",
			    o.listen[j], o.port, strerror(errno));
			exit(1);
		}
		close(probe);
		for (i = 0; i < o.workers; i++) {
			lfd[i][j] = main_listen("-l", o.listen[j], o.port, 1,
			    4096);
			if (lfd[i][j] == -1) {
				fprintf(stderr, "spamd: -l %s -p %d: bind: "
				    "%s\n", o.listen[j], o.port,
				    strerror(errno));
				exit(1);
			}
		}
	}
	/* the config port is the writer's, loopback only */
	if (o.config_port != 0) {
		cfg_fd = main_listen("--config-port", "127.0.0.1",
		    o.config_port, 0, 64);
		if (cfg_fd == -1) {
			fprintf(stderr, "spamd: --config-port %d: bind "
			    "127.0.0.1: %s\n", o.config_port, strerror(errno));
			exit(1);
		}
	}
	for (i = 0; i < o.workers; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
		    sv[i]) == -1)
			fatal("socketpair");

	/* (added) greyctl's control socket: its path while errors still
	 * reach stderr and before daemon() moves to / */
	main_writer_prepare(&o);	/* (added) errors still on stderr */
	main_ctl_path(&o);
	if (!o.foreground && daemon(0, 0) == -1)
		fatal("daemon");
	if (o.pidfile != NULL)
		pidfd = main_pidfile(o.pidfile);
	/* (added) after the pidfile lock, so a second spamd is refused for
	 * its pidfile first; kept open here across writer restarts */
	main_ctl_socket(&o, &gc);
	signal(SIGPIPE, SIG_IGN);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, &oldmask) == -1)
		fatal("sigprocmask");
	parent = getpid();

	log_info("event=start port=%d listen=%d workers=%d maxcon=%d "
	    "maxblack=%d stutter=%d/%d blacklist_only=%d db=%s", o.port,
	    o.nlisten, o.workers, o.maxcon, o.maxblack, o.stutter_secs,
	    o.stutter_delay, o.blacklist_only, o.dbdir);

	/* the writer: database, firewall, config port (gc was cleared and
	 * its sync fields set before the fork) */
	gc.dbdir = o.dbdir;
	gc.times.passtime = o.passtime;
	gc.times.greyexp = o.greyexp;
	gc.times.whiteexp = o.whiteexp;
	gc.times.trapexp = o.trapexp;
	gc.domains_file = o.domains;
	gc.lowmx_from = (int64_t)time(NULL) + o.lowmx_grace;
	gc.flush_ms = o.commit_ms;
	gc.scan_secs = 60;
	gc.fw_enabled = strcmp(o.fw_backend, "none") != 0;
	gc.fw.backend = gc.fw_enabled ? o.fw_backend : NULL;
	gc.fw.family = o.fw_family;
	gc.fw.table = o.fw_table;
	gc.fw.path = o.fw_file;
	gc.fw.create = o.fw_create;
	gc.reconcile_secs = o.fw_reconcile;
	gc.group_v4 = o.group_v4;
	gc.group_v6 = o.group_v6;
	gc.blacklist_only = o.blacklist_only;
	gc.cfg_fd = cfg_fd;
	/* (added) bounds on new tuples */
	gc.max_new_tuples = o.max_new_tuples;
	gc.min_free_bytes = (int64_t)o.min_free_mb << 20;
	gc.min_free_pct = o.min_free_pct;
	/* (added) the writer's own filter */
	gc.seccomp_mode = o.seccomp_mode;
	gc.seccomp_flags = strcmp(o.fw_backend, "ipset") == 0 ||
	    strcmp(o.fw_backend, "pf") == 0 ? SANDBOX_W_EXEC : 0;
	gc.sigsys_report = main_writer_sigsys;
	main_sigsys_budget = budget;
	gc.cfg_any_port = o.config_any_port;
	/* the engines' settings; main_engine_spawn adds index and fds */
	ec.nworkers = o.workers;
	ec.nlisten = o.nlisten;
	/* (added) -c and -B are daemon-wide in budget */
	ec.maxcon = engine_cap;
	ec.maxblack = o.maxblack;
	ec.budget = budget;
	ec.max_per_client = o.max_per_client;
	ec.max_rcpt = o.max_rcpt;	/* (added) */
	ec.stutter_secs = o.stutter_secs;
	ec.stutter_delay = o.stutter_delay;
	ec.rcvbuf = o.rcvbuf;
	ec.hostname = o.hostname;
	ec.banner = o.banner;
	ec.bl_code = o.bl_code;
	ec.blacklist_only = o.blacklist_only;
	ec.user = o.user;
	ec.chroot_dir = o.chroot_dir;
	ec.seccomp_mode = o.seccomp_mode;	/* (added) */
	/* (added) fresh engine counters for /metrics */
	ec.stats_secs = o.http_listen != NULL ? 1 : 0;
	memset(&run, 0, sizeof(run));
	run.o = &o;
	run.ec = &ec;
	run.lfd = lfd;
	run.cfg_fd = cfg_fd;
	run.gc = &gc;
	run.oldmask = &oldmask;
	run.parent = parent;
	run.pidfd = pidfd;
	run.budget = budget;
	/* (added) a restart comes back here with new socketpairs; this
	 * process keeps the listeners and the config port open throughout,
	 * so clients wait in the backlog until the new engines accept */
main_respawn:
	/* (added) main_supervise returned: no engine lives, so none of
	 * their counts may stay in the budget */
	engine_budget_reset(budget);
	/* (added) the supervisor channel: engines that replace dead ones
	 * reach the writer through it */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sup) == -1)
		fatal("socketpair supervisor");
	run.sup = sup[0];
	gc.sup_fd = sup[1];
	for (i = 0; i < o.workers; i++)
		wfds[i] = sv[i][1];
	if ((pid = fork()) == -1)
		fatal("fork writer");
	if (pid == 0) {
		main_child_setup(&oldmask, parent, pidfd);
		close(sup[0]);
		for (i = 0; i < o.workers; i++) {
			close(sv[i][0]);
			for (j = 0; j < o.nlisten; j++)
				close(lfd[i][j]);
		}
		{
			int amb;
			uint64_t keep = main_writer_caps(&o, &amb);

			/* (added) the writer is not root either */
			privsep_writer(o.user, keep, amb);
		}
		exit(grey_main(wfds, o.workers, &gc));
	}
	close(sup[1]);
	gc.sup_fd = -1;
	ch[nch].pid = pid;
	ch[nch].engine = -1;
	ch[nch].restart_at = 0;
	ch[nch++].done = 0;
	for (i = 0; i < o.workers; i++) {
		close(sv[i][1]);
		ends[i] = sv[i][0];
	}

	/* the engines: one per -W, each with its listeners and socketpair */
	for (i = 0; i < o.workers; i++) {
		if ((pid = main_engine_spawn(&run, i, sv[i][0], ends,
		    o.workers)) == -1) {
			main_kill_all(ch, nch, SIGTERM);
			exit(1);
		}
		ch[nch].pid = pid;
		ch[nch].engine = i;
		ch[nch].restart_at = 0;
		ch[nch++].done = 0;
	}
	for (i = 0; i < o.workers; i++)
		close(sv[i][0]);

	status = main_supervise(&run, ch, nch, &set);
	close(sup[0]);
	run.sup = -1;
	/* (added) the writer failed: start it and the engines again */
	if (status == MAIN_RESTART) {
		if (main_restart_ok(restarts, time(NULL))) {
			log_warnx("event=restart children=writer,engines "
			    "limit=%d/%ds", MAIN_RESTART_MAX,
			    MAIN_RESTART_WINDOW);
			for (i = 0; i < o.workers; i++)
				if (socketpair(AF_UNIX, SOCK_STREAM |
				    SOCK_CLOEXEC, 0, sv[i]) == -1)
					fatal("socketpair");
			nch = 0;
			goto main_respawn;
		}
		log_warnx("event=restart-limit restarts=%d secs=%d "
		    "action=exit", MAIN_RESTART_MAX, MAIN_RESTART_WINDOW);
		status = 1;
	}
	if (o.pidfile != NULL) {
		unlink(o.pidfile);
		close(pidfd);
	}
	if (gc.ctl_path != NULL)	/* (added) */
		unlink(gc.ctl_path);
	tls_ctx_free(ec.tls_ctx);	/* (added) */
	engine_budget_free(budget);	/* (added) */
	log_info("event=exit status=%d", status);
	return status;
}
