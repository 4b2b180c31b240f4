/*
 * greyctl_explain.c - greyctl's side of spamd's control socket
 * (<dir>/spamd.sock, see spamd/writer/grey_ctl.c) and `greyctl explain ADDRESS`:
 * what the store and the running daemon know about one address, ending
 * with one sentence on why the host does or does not reach the real MX.
 * The daemon's answer includes the DNSBL zones (the writer asks them while
 * we wait, at most --dnsbl-timeout): a listing tarpits a host that is not
 * whitelisted, as the engines do.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "greydb/greyctl.h"
#include "spamd/common/sandbox.h"

#define EXPLAIN_ANSWER_MAX	65536	/* bytes of one daemon answer */
#define EXPLAIN_TIMEOUT_SECS	10
/* explain waits for the writer's DNSBL lookup: spamd's largest
 * --dnsbl-timeout (60 s) and the writer's own margin (10 s) */
#define EXPLAIN_DNS_TIMEOUT_SECS 75

/* greyctl_ctl_path - the control socket's path for ctl->dir */
const char *
greyctl_ctl_path(const struct greyctl *ctl, char *buf, size_t bufsz)
{
	snprintf(buf, bufsz, "%s/spamd.sock", ctl->dir);
	return buf;
}

/*
 * greyctl_daemon_ask - send one request line to the running spamd and
 * read its answer (the lines before "end", malloc'd into *answer).
 * 1 answered, 0 no daemon (no socket, or nobody listens), -1 error with
 * err (permission, timeout, an error= answer, a cut answer).
 */
int
greyctl_daemon_ask(const struct greyctl *ctl, const char *req, char **answer,
    char *err, size_t errsz)
{
	struct sockaddr_un sun;
	struct timeval tv = { EXPLAIN_TIMEOUT_SECS, 0 };
	char path[sizeof(sun.sun_path) + 64], *buf, *p;
	size_t len = 0;
	ssize_t n;
	int fd, werr = 0;

	*answer = NULL;
	if (strncmp(req, "explain ", 8) == 0)
		tv.tv_sec = EXPLAIN_DNS_TIMEOUT_SECS;
	greyctl_ctl_path(ctl, path, sizeof(path));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		snprintf(err, errsz, "%s: path too long for a socket", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errsz, "%s: socket: %s", path, strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int e = errno;

		close(fd);
		/* no file, or a file left by a daemon that is gone */
		if (e == ENOENT || e == ECONNREFUSED)
			return 0;
		snprintf(err, errsz, "control socket %s: %s%s", path,
		    strerror(e), e == EACCES ? " (root or spamd's group "
		    "only)" : "");
		return -1;
	}
	len = strlen(req);
	/* a refusal may come (and the socket close) before we write: read
	 * the answer anyway; a failed write only matters without one */
	if (write(fd, req, len) != (ssize_t)len || write(fd, "\n", 1) != 1)
		werr = errno;
	if ((buf = malloc(EXPLAIN_ANSWER_MAX + 1)) == NULL) {
		snprintf(err, errsz, "out of memory");
		close(fd);
		return -1;
	}
	len = 0;
	while (len < EXPLAIN_ANSWER_MAX &&
	    (n = read(fd, buf + len, EXPLAIN_ANSWER_MAX - len)) != 0) {
		if (n == -1) {
			if (errno == EINTR && !greyctl_stopped())
				continue;
			snprintf(err, errsz, "control socket %s: read: %s",
			    path, errno == EAGAIN ? "no answer in time" :
			    strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	/* the answer is whole only with its "end" line */
	if (len >= 4 && strcmp(buf + len - 4, "end\n") == 0 &&
	    (len == 4 || buf[len - 5] == '\n'))
		buf[len - 4] = '\0';
	else {
		snprintf(err, errsz, "control socket %s: %s", path,
		    werr != 0 ? strerror(werr) : "answer cut short");
		free(buf);
		return -1;
	}
	if ((p = strstr(buf, "error=")) != NULL &&
	    (p == buf || p[-1] == '\n')) {
		p += 6;
		snprintf(err, errsz, "control socket %s: %.*s", path,
		    (int)strcspn(p, "\n"), p);
		free(buf);
		return -1;
	}
	*answer = buf;
	return 1;
}

/* greyctl_daemon_fw - after -a (add 1) or -d (add 0) of a WHITE or
 * TRAPPED address: tell the daemon to put in or drop ip's firewall
 * element now; a failure only warns (the store was changed) */
void
greyctl_daemon_fw(const struct greyctl *ctl, int add, enum gdb_type type,
    const char *ip)
{
	char req[128], err[512], *ans;
	int rc;

	if (type != GDB_WHITE && type != GDB_TRAPPED)
		return;
	snprintf(req, sizeof(req), "%s-%s %s", add ? "add" : "del",
	    type == GDB_WHITE ? "white" : "trapped", ip);
	rc = greyctl_daemon_ask(ctl, req, &ans, err, sizeof(err));
	if (rc == -1)
		greyctl_warnx("warning: %s; %s %s was %s the database, the "
		    "firewall follows at spamd's next reconcile", err,
		    gdb_type_name(type), ip, add ? "added to" :
		    "deleted from");
	free(ans);
}

/* greyctl_daemon_stats - print the daemon's counter lines, if it runs */
int
greyctl_daemon_stats(const struct greyctl *ctl)
{
	char err[512], *ans;
	int rc;

	if (ctl->json)
		return 0;
	rc = greyctl_daemon_ask(ctl, "stats", &ans, err, sizeof(err));
	if (rc == -1)
		greyctl_warnx("warning: %s", err);
	if (rc == 1)
		fputs(ans, ctl->out);
	free(ans);
	return greyctl_out_ok(ctl);
}

/* greyctl_daemon_cluster - greyctl cluster: ask the daemon (no store) */
int
greyctl_daemon_cluster(const struct greyctl *ctl)
{
	char err[512], *ans;
	int rc;

	if (ctl->sandbox != NULL && ctl->sandbox(ctl, SANDBOX_GC_CTL) == -1)
		return 1;
	rc = greyctl_daemon_ask(ctl, "cluster", &ans, err, sizeof(err));
	if (rc == -1)
		greyctl_warnx("cluster: %s", err);
	else if (rc == 0)
		greyctl_warnx("cluster: no spamd answers on its control socket "
		    "in %s (the peers' state lives in the running daemon)",
		    ctl->dir);
	else
		fputs(ans, ctl->out);
	free(ans);
	if (rc != 1)
		return 1;
	return greyctl_out_ok(ctl) == 0 ? 0 : 1;
}

/* What explain collects from the store. */
struct explain {
	const struct greyctl	*ctl;
	char			 ip[GDB_ADDR_MAX];
	long			 ngrey, nlive;
	struct gdb_rec		 soonest;	/* live tuple passing first */
	int64_t			 passtime;	/* the daemon's, or default */
	int			 werr;
};

/* explain_passes - when a tuple passes if retried: first + passtime (the
 * record's pass field is first + greyexp, OpenBSD's layout) */
static int64_t
explain_passes(const struct explain *x, const struct gdb_rec *r)
{
	return r->first + x->passtime;
}

/* explain_when - a time as "YYYY-MM-DD HH:MM:SS" local */
static const char *
explain_when(int64_t t, char *buf, size_t bufsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL ||
	    strftime(buf, bufsz, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, bufsz, "%lld", (long long)t);
	return buf;
}

/* explain_in - a duration ahead as "in N min" / "in N s" / "in N h" */
static const char *
explain_in(int64_t secs, char *buf, size_t bufsz)
{
	if (secs < 60)
		snprintf(buf, bufsz, "in %lld s", (long long)secs);
	else if (secs < 2 * 3600)
		snprintf(buf, bufsz, "in %lld min", (long long)(secs + 59) / 60);
	else
		snprintf(buf, bufsz, "in %lld h", (long long)(secs + 3599) /
		    3600);
	return buf;
}

/* explain_grey - print one GREY tuple of the address with its state */
static int
explain_grey(const struct gdb_rec *r, void *arg)
{
	struct explain *x = arg;
	FILE *o = x->ctl->out;
	char a[32], b[32], c[32], in[32];
	int64_t now = x->ctl->now, passes = explain_passes(x, r);

	if (greyctl_stopped())
		return 1;
	if (r->type != GDB_GREY || strcmp(r->ip, x->ip) != 0)
		return 0;
	x->ngrey++;
	fprintf(o, "grey: helo=%s from=%s to=%s first=%s pass=%s "
	    "expire=%s blocked=%d", r->helo, r->from, r->to,
	    explain_when(r->first, a, sizeof(a)),
	    explain_when(r->pass, b, sizeof(b)),
	    explain_when(r->expire, c, sizeof(c)), r->bcount);
	if (r->expire <= now)
		fprintf(o, " state=expired\n");
	else if (passes > now)
		fprintf(o, " state=waiting passes_if_retried=%s\n",
		    explain_in(passes - now, in, sizeof(in)));
	else
		fprintf(o, " state=due passes_at_next_retry\n");
	if (r->expire > now) {
		if (x->nlive == 0 || passes < explain_passes(x, &x->soonest))
			x->soonest = *r;
		x->nlive++;
	}
	if (greyctl_out_ok(x->ctl) == -1) {
		x->werr = 1;
		return 1;
	}
	return 0;
}

/* explain_value - the value of key in the daemon's answer, or NULL */
static const char *
explain_value(const char *ans, const char *key, char *buf, size_t bufsz)
{
	size_t kl = strlen(key);
	const char *p = ans;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
			p += kl + 1;
			snprintf(buf, bufsz, "%.*s", (int)strcspn(p, "\n"), p);
			return buf;
		}
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	return NULL;
}

/*
 * explain_dnsbl_listed - the zones of the daemon's answer whose line says
 * listed=yes, as "zone (answer), ..." in buf; their count. Lines:
 * dnsbl=ZONE listed=yes|no|timeout|error [answer=A]
 */
static int
explain_dnsbl_listed(const char *ans, char *buf, size_t bufsz)
{
	const char *p = ans, *lz, *a;
	char one[300];
	size_t zl, al, ll;
	int n = 0;

	buf[0] = '\0';
	for (; *p != '\0'; p += ll + (p[ll] == '\n')) {
		ll = strcspn(p, "\n");
		if (strncmp(p, "dnsbl=", 6) != 0)
			continue;
		lz = p + 6;
		zl = strcspn(lz, " \n");
		if (lz[zl] != ' ' || strncmp(lz + zl, " listed=yes", 11) != 0 ||
		    (lz[zl + 11] != ' ' && lz[zl + 11] != '\n' &&
		    lz[zl + 11] != '\0'))
			continue;
		a = memmem(p, ll, " answer=", 8);
		al = a != NULL ? strcspn(a + 8, " \n") : 0;
		snprintf(one, sizeof(one), "%s%.*s%s%.*s%s", n > 0 ? ", " : "",
		    (int)(zl > 253 ? 253 : zl), lz, al > 0 ? " (" : "",
		    (int)(al > 15 ? 15 : al), a != NULL ? a + 8 : "",
		    al > 0 ? ")" : "");
		strlcat(buf, one, bufsz);
		n++;
	}
	return n;
}

/* explain_get - gdb_get of type for ip; 1 found (live or not), 0, -1 */
static int
explain_get(struct gdb *db, enum gdb_type type, const char *ip,
    struct gdb_rec *r)
{
	struct gdb_err err;
	int rc;

	memset(r, 0, sizeof(*r));
	r->type = type;
	strlcpy(r->ip, ip, sizeof(r->ip));
	if ((rc = gdb_get(db, r, &err)) == -1)
		greyctl_warnx("%s", err.msg);
	return rc;
}

/* greyctl_explain - `greyctl explain ADDRESS` (see greyctl.h) */
int
greyctl_explain(const struct greyctl *ctl, const char *key)
{
	struct explain x;
	struct gdb *db;
	struct gdb_err gerr;
	struct gdb_rec w, t;
	FILE *o = ctl->out;
	char err[512], d1[32], in[32], setb[128], inb[16], blb[1024];
	char fwb[64], safe[100], dnb[1024], ptb[32], *ans = NULL, *end;
	const char *set = NULL, *inset = NULL, *bl = NULL, *fwname = NULL;
	const char *pt = NULL, *tmiss = NULL;
	char tmb[160];
	long long ptv;
	int hw, ht, live_w, live_t, rc, ndnsbl = 0;
	int64_t now = ctl->now;

	memset(&x, 0, sizeof(x));
	x.ctl = ctl;
	if (gdb_addr_canon(key, x.ip) == -1) {
		greyctl_warnx("explain: bad address '%s': not an IPv4 or IPv6 "
		    "address", greyctl_safe(key, safe, sizeof(safe)));
		return 1;
	}
	if (greyctl_open(ctl, GREYCTL_READ, 0, &db) == -1)
		return 1;
	/* the rest reads the store and asks spamd over its Unix socket */
	if (ctl->sandbox != NULL && ctl->sandbox(ctl, SANDBOX_GC_CTL) == -1) {
		gdb_close(db);
		return 1;
	}
	/* the running daemon first: its pass time decides the GREY lines
	 * (its firewall set, blacklists and DNSBL zones come later) */
	snprintf(setb, sizeof(setb), "explain %s", x.ip);
	rc = greyctl_daemon_ask(ctl, setb, &ans, err, sizeof(err));
	x.passtime = GDB_PASSTIME_DEFAULT;
	if (rc == 1 && (pt = explain_value(ans, "passtime", ptb,
	    sizeof(ptb))) != NULL && (ptv = strtoll(pt, &end, 10)) >= 0 &&
	    *end == '\0' && end != pt)
		x.passtime = ptv;
	else
		pt = NULL;
	fprintf(o, "ip=%s\n", x.ip);
	if (pt != NULL)
		fprintf(o, "passtime: %lld s (spamd's)\n",
		    (long long)x.passtime);
	else
		fprintf(o, "passtime: %lld s assumed (the default, 25 min: "
		    "%s)\n", (long long)x.passtime, rc == 0 ?
		    "spamd not running" : "spamd did not say");
	if (gdb_walk_ip(db, x.ip, explain_grey, &x, &gerr) == -1) {
		greyctl_warnx("%s", gerr.msg);
		gdb_close(db);
		free(ans);
		return 1;
	}
	if (x.werr || (hw = explain_get(db, GDB_WHITE, x.ip, &w)) == -1 ||
	    (ht = explain_get(db, GDB_TRAPPED, x.ip, &t)) == -1) {
		gdb_close(db);
		free(ans);
		return 1;
	}
	gdb_close(db);
	if (x.ngrey == 0)
		fprintf(o, "grey: none\n");
	live_w = hw == 1 && w.expire > now;
	live_t = ht == 1 && t.expire > now;
	if (hw == 1)
		fprintf(o, "white: first=%s expire=%s passes=%d%s\n",
		    explain_when(w.first, d1, sizeof(d1)),
		    explain_when(w.expire, setb, sizeof(setb)), w.pcount,
		    live_w ? "" : " state=expired");
	else
		fprintf(o, "white: no\n");
	if (ht == 1)
		fprintf(o, "trapped: expire=%s%s\n",
		    explain_when(t.expire, d1, sizeof(d1)),
		    live_t ? "" : " state=expired");
	else
		fprintf(o, "trapped: no\n");

	/* the running daemon's answer: firewall set, blacklists, DNSBL */
	if (rc == 0)
		fprintf(o, "daemon: not running\n");
	else if (rc == -1)
		fprintf(o, "daemon: no answer: %s\n", err);
	else {
		char *p, *nl;

		for (p = ans; *p != '\0'; p = nl + 1) {
			if ((nl = strchr(p, '\n')) == NULL)
				break;
			if (strncmp(p, "ip=", 3) != 0)
				fprintf(o, "daemon: %.*s\n", (int)(nl - p), p);
		}
		fwname = explain_value(ans, "firewall", fwb, sizeof(fwb));
		tmiss = explain_value(ans, "fw_table_missing", tmb,
		    sizeof(tmb));
		set = explain_value(ans, "white_set", setb, sizeof(setb));
		inset = explain_value(ans, "in_white_set", inb, sizeof(inb));
		bl = explain_value(ans, "blacklists", blb, sizeof(blb));
		if (bl != NULL && *bl == '\0')
			bl = NULL;
		ndnsbl = explain_dnsbl_listed(ans, dnb, sizeof(dnb));
	}

	/* one sentence: the first reason that decides, in the order the
	 * firewall and spamd apply them */
	if (tmiss != NULL) {
		/* first: without the table nothing below holds (no redirect,
		 * no white set), whatever the store says */
		fprintf(o, "spamd's firewall table %s (%s) is missing: no set "
		    "holds %s and port 25 is not redirected to spamd; reload the "
		    "ruleset (nft -f /etc/nftables.d/spamd.nft), spamd then "
		    "refills its sets.\n", tmiss, fwname != NULL ? fwname : "?",
		    x.ip);
	} else if (live_t) {
		fprintf(o, "%s is trapped until %s: it mailed a spamtrap; it "
		    "is tarpitted.\n", x.ip,
		    explain_when(t.expire, d1, sizeof(d1)));
	} else if (live_w && rc == 1 && fwname != NULL &&
	    strcmp(fwname, "off") == 0) {
		fprintf(o, "%s is whitelisted until %s, but spamd keeps no "
		    "firewall set (--fw none): your own rules decide whether "
		    "it reaches the real MX.\n", x.ip,
		    explain_when(w.expire, d1, sizeof(d1)));
	} else if (live_w && inset != NULL && strcmp(inset, "yes") == 0) {
		fprintf(o, "%s is whitelisted until %s and in the firewall set "
		    "%s: it reaches the real MX.\n", x.ip,
		    explain_when(w.expire, d1, sizeof(d1)), set);
	} else if (live_w && inset != NULL) {
		fprintf(o, "%s is WHITE but not in the firewall set %s: spamd "
		    "adds it at its next reconcile (greyctl -a %s adds it "
		    "now); check spamd's fw_error lines.\n", x.ip,
		    set != NULL ? set : "?", x.ip);
	} else if (live_w) {
		fprintf(o, "%s is whitelisted until %s: it reaches the real MX "
		    "while spamd's firewall set holds it (set not checked: "
		    "%s).\n", x.ip, explain_when(w.expire, d1, sizeof(d1)),
		    rc == 0 ? "daemon not running" : "no answer");
	} else if (bl != NULL) {
		fprintf(o, "%s is on blacklist%s %s: it is tarpitted.\n", x.ip,
		    strchr(bl, ',') != NULL ? "s" : "", bl);
	} else if (ndnsbl > 0) {
		/* as the engines: a listing tarpits a greylisted client; a
		 * whitelisted one never reaches spamd (handled above) */
		fprintf(o, "%s is listed in DNSBL zone%s %s: it is "
		    "tarpitted.\n", x.ip, ndnsbl > 1 ? "s" : "", dnb);
	} else if (x.nlive > 0 && explain_passes(&x, &x.soonest) > now) {
		fprintf(o, "%s is greylisted: its tuple to %s passes if "
		    "retried after %s (%s%s).\n", x.ip, x.soonest.to,
		    explain_when(explain_passes(&x, &x.soonest), d1,
		    sizeof(d1)) + 11, explain_in(explain_passes(&x,
		    &x.soonest) - now, in, sizeof(in)), pt != NULL ? "" :
		    "; the default pass time of 25 min assumed");
	} else if (x.nlive > 0) {
		fprintf(o, "%s is greylisted: its tuple to %s passes at its "
		    "next retry.\n", x.ip, x.soonest.to);
	} else if (x.ngrey > 0 || hw == 1 || ht == 1) {
		fprintf(o, "%s has only expired records: its next attempt is "
		    "greylisted anew.\n", x.ip);
	} else {
		fprintf(o, "spamd has never seen %s (or its records expired "
		    "and were removed): its next attempt is greylisted.\n",
		    x.ip);
	}
	free(ans);
	return greyctl_out_ok(ctl) == -1 ? 1 : 0;
}
