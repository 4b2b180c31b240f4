/*
 * grey_drive - drive the writer process (grey_main) without the engine:
 * makes one socketpair per pretend engine, forks grey_main on a temp
 * database and runs a script of commands from stdin, one a line.
 *
 *   grey_drive [-v] -d DBDIR [-e ENGINES] [-p PASS] [-g GREY] [-w WHITE]
 *	[-t TRAP] [-D DOMAINS] [-T SPAMTRAP]... [-f FWFILE] [-c CFGPORT] [-C CFGSECS]
 *	[-4 GROUPV4] [-6 GROUPV6] [-s SCAN] [-F FLUSHMS] [-r RECONCILE] [-b]
 *
 * Commands (engine 1 is current at start):
 *   tuple ID IP HELO FROM TO [lowmx]   send MSG_TUPLE, wait for its result:
 *                                      "result ID NAME IP" (\xHH in a
 *                                      field is that byte; fewer fields
 *                                      send a tuple of fewer strings)
 *   engine N                           make engine N current
 *   msgwait TYPE SECS                  wait for a message of TYPE (traplist,
 *                                      blacklist) on the current engine
 *   drain SECS                         print whatever arrives for SECS
 *   bad KIND                           send a malformed frame: short, long,
 *                                      type, nstr, overrun, nul, trailing
 *   closewait SECS                     wait until the writer closes the
 *                                      current engine: "closed N" / "open N"
 *   close                              close the current engine's socket
 *   signal HUP|USR1|TERM               signal the writer
 *   cfg LINE...                        send LINE to the config port,
 *                                      half-close, print "cfg ANSWER"
 *   cfgbig N                           N bytes without a newline to the
 *                                      config port: "cfg ANSWER"
 *   cfgslow SECS                       a part of a line, then wait (at most
 *                                      SECS): "cfgslow closed after S"
 *   dump                               print the store ("db TYPE|...")
 *   white IP [SECS] / del IP           add / delete a WHITE entry with a
 *                                      second store handle (as greyctl)
 *   sleep SECS
 *   bench N WINDOW [same]              N new tuples (or one tuple N times),
 *                                      WINDOW in flight: "bench ... rate="
 * Messages from the writer are printed as "msg E TYPE ..."; a trapped list
 * or blacklist is checked with bl_parse ("parse=ok prefixes=N" or
 * "parse=error ..."). At the end of input every socket is closed and the
 * writer's exit status printed: "exit N". The writer logs to stderr.
 * The output of every command ends with a line holding a lone ".".
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "greydb/greydb.h"
#include "spamd/common/blacklist.h"
#include "spamd/writer/grey.h"
#include "spamd/common/log.h"
#include "spamd/common/msg.h"

#define DRIVE_MAX_ENG	8
#define DRIVE_WAIT	20.0	/* seconds to wait for a result */

/* The driver's state. */
struct drive {
	int		 fd[DRIVE_MAX_ENG];	/* -1 once closed */
	struct evbuffer	*in[DRIVE_MAX_ENG];
	int		 neng;
	int		 cur;			/* 0-based */
	pid_t		 pid;
	int		 cfgport;
	const char	*dbdir;
};

static const char *const drive_res[] = {
	"ERROR", "NEW", "GREY", "PASSED", "WHITE", "TRAPPED", "TRAP",
};

/* drive_now - monotonic seconds */
static double
drive_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* drive_print_msg - print one message from engine e's socket */
static void
drive_print_msg(int e, const struct msg *m)
{
	if (m->type == MSG_RESULT) {
		printf("result %llu %s %s\n", (unsigned long long)m->id,
		    m->num >= 0 && m->num <= 6 ? drive_res[m->num] : "?",
		    m->nstr > 0 ? m->str[0] : "");
	} else if ((m->type == MSG_TRAPLIST || m->type == MSG_BLACKLIST) &&
	    m->nstr == 1) {
		char err[256];
		struct bl_list *l = bl_parse(m->str[0], m->len[0], err,
		    sizeof(err));

		if (l != NULL) {
			printf("msg %d %s parse=ok tag=%s prefixes=%ld text=%s\n",
			    e + 1, msg_type_name(m->type), bl_list_tag(l),
			    bl_list_size(l), m->str[0]);
			bl_list_free(l);
		} else {
			printf("msg %d %s parse=error err=\"%s\" text=%s\n",
			    e + 1, msg_type_name(m->type), err, m->str[0]);
		}
	} else {
		printf("msg %d %s num=%lld\n", e + 1, msg_type_name(m->type),
		    (long long)m->num);
	}
	fflush(stdout);
}

/*
 * drive_pump - read and print messages until secs pass or a message
 * matching (type, id) arrives on engine want (id 0: any id). Returns 1
 * matched, 0 timeout, -1 when engine want closed.
 */
static int
drive_pump(struct drive *d, double secs, int want, uint32_t type,
    uint64_t id)
{
	double end = drive_now() + secs;

	for (;;) {
		struct pollfd pfd[DRIVE_MAX_ENG];
		int i, ms, n = 0;
		double left = end - drive_now();

		/* first whatever is already buffered */
		for (i = 0; i < d->neng; i++) {
			struct msg m;
			char err[256];
			int rc;

			while ((rc = msg_get(d->in[i], &m, err, sizeof(err)))
			    == 1) {
				int hit = i == want && m.type == type &&
				    (id == 0 || m.id == id);

				drive_print_msg(i, &m);
				msg_clear(&m);
				if (hit)
					return 1;
			}
			if (rc == -1) {
				printf("driver: bad frame from writer on %d: "
				    "%s\n", i + 1, err);
				return -1;
			}
		}
		if (left <= 0)
			return 0;
		for (i = 0; i < d->neng; i++) {
			pfd[i].fd = d->fd[i];
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
			if (d->fd[i] >= 0)
				n++;
		}
		if (n == 0)
			return -1;
		ms = (int)(left * 1000) + 1;
		if (poll(pfd, d->neng, ms) == -1 && errno != EINTR)
			return -1;
		for (i = 0; i < d->neng; i++) {
			if (d->fd[i] < 0 || !(pfd[i].revents &
			    (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (evbuffer_read(d->in[i], d->fd[i], 65536) <= 0) {
				close(d->fd[i]);
				d->fd[i] = -1;
				if (i == want)
					return -1;
			}
		}
	}
}

/* drive_send - write all of buf to the current engine socket */
static int
drive_send(struct drive *d, struct evbuffer *buf)
{
	int fd = d->fd[d->cur];

	while (evbuffer_get_length(buf) > 0) {
		int n = evbuffer_write(buf, fd);

		if (n <= 0 && errno != EINTR && errno != EAGAIN) {
			printf("driver: write: %s\n", strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* drive_be32 - big-endian u32 into p */
static void
drive_be32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

/* drive_bad - send one malformed frame of kind */
static int
drive_bad(struct drive *d, const char *kind)
{
	unsigned char f[64];
	struct evbuffer *b = evbuffer_new();
	size_t len = 28;
	int rc;

	memset(f, 0, sizeof(f));
	drive_be32(f + 4, MSG_TUPLE);
	if (strcmp(kind, "short") == 0) {
		drive_be32(f, 10);
	} else if (strcmp(kind, "long") == 0) {
		drive_be32(f, MSG_MAX_LEN + 1);
	} else if (strcmp(kind, "type") == 0) {
		drive_be32(f, 28);
		drive_be32(f + 4, 999);
	} else if (strcmp(kind, "nstr") == 0) {
		drive_be32(f, 28);
		drive_be32(f + 24, 5);
	} else if (strcmp(kind, "overrun") == 0) {
		drive_be32(f, 36);
		drive_be32(f + 24, 1);
		drive_be32(f + 28, 100);
		len = 36;
	} else if (strcmp(kind, "nul") == 0) {
		drive_be32(f, 36);
		drive_be32(f + 24, 1);
		drive_be32(f + 28, 4);
		memcpy(f + 32, "a\0bc", 4);
		len = 36;
	} else if (strcmp(kind, "trailing") == 0) {
		drive_be32(f, 32);
		len = 32;
	} else {
		printf("driver: unknown bad kind %s\n", kind);
		evbuffer_free(b);
		return -1;
	}
	evbuffer_add(b, f, len);
	rc = drive_send(d, b);
	evbuffer_free(b);
	return rc;
}

/* drive_unescape - decode \xHH in place (client bytes in a script) */
static char *
drive_unescape(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		unsigned v;

		if (r[0] == '\\' && r[1] == 'x' && sscanf(r + 2, "%2x", &v) ==
		    1 && v != 0 && r[2] && r[3]) {
			*w++ = (char)v;
			r += 4;
		} else
			*w++ = *r++;
	}
	*w = '\0';
	return s;
}

/* drive_tuple - send one tuple and wait for its result */
static void
drive_tuple(struct drive *d, char **av, int ac)
{
	struct evbuffer *b = evbuffer_new();
	const char *str[4];
	uint64_t id;
	int64_t flags = 0;
	int i;

	if (ac < 2) {
		printf("driver: tuple ID IP HELO FROM TO [lowmx]\n");
		evbuffer_free(b);
		return;
	}
	id = strtoull(av[1], NULL, 10);
	/* fewer than 4 fields: a well-framed but wrong tuple */
	for (i = 0; i < 4 && 2 + i < ac; i++)
		str[i] = drive_unescape(av[2 + i]);
	if (ac > 6 && strcmp(av[6], "lowmx") == 0)
		flags |= MSG_F_LOWMX;
	if (msg_put(b, MSG_TUPLE, id, flags, (uint32_t)i, str, NULL) == -1 ||
	    drive_send(d, b) == -1) {
		printf("driver: cannot send tuple %llu\n",
		    (unsigned long long)id);
	} else if (drive_pump(d, DRIVE_WAIT, d->cur, MSG_RESULT, id) != 1) {
		printf("noresult %llu\n", (unsigned long long)id);
	}
	evbuffer_free(b);
}

/*
 * drive_bench - n distinct new tuples, window at a time in flight on the
 * current engine; prints the rate (a figure, not a pass/fail check)
 */
static void
drive_bench(struct drive *d, long n, long window, int same)
{
	struct evbuffer *b = evbuffer_new();
	double t0 = drive_now();
	long sent = 0, got = 0, bad = 0;
	int fd = d->fd[d->cur];

	while (got < n && drive_now() - t0 < 300) {
		struct msg m;
		char err[256], ip[32], to[64];
		int rc;

		while (sent < n && sent - got < window) {
			const char *str[4];

			/* "same": one tuple again and again (GREY updates) */
			long k = same ? 0 : sent;

			snprintf(ip, sizeof(ip), "10.%ld.%ld.%ld",
			    (k >> 16) & 255, (k >> 8) & 255, k & 255);
			snprintf(to, sizeof(to), "u%ld@example.org", k >> 24);
			str[0] = ip; str[1] = "bench.example";
			str[2] = "b@bench.example"; str[3] = to;
			msg_put(b, MSG_TUPLE, (uint64_t)sent + 1, 0, 4, str,
			    NULL);
			sent++;
		}
		if (drive_send(d, b) == -1)
			break;
		if (evbuffer_read(d->in[d->cur], fd, 1 << 20) <= 0)
			break;
		while ((rc = msg_get(d->in[d->cur], &m, err, sizeof(err))) ==
		    1) {
			if (m.type == MSG_RESULT) {
				got++;
				if (m.num == GREY_R_ERROR)
					bad++;
			}
			msg_clear(&m);
		}
		if (rc == -1)
			break;
	}
	printf("bench tuples=%ld errors=%ld secs=%.3f rate=%.0f/s\n", got, bad,
	    drive_now() - t0, got / (drive_now() - t0));
	evbuffer_free(b);
}

/* drive_cfg - send one line to the config port and print the answer */
static void
drive_cfg(struct drive *d, const char *line)
{
	struct sockaddr_in sin;
	char ans[1024];
	size_t n = 0;
	int s;
	double end = drive_now() + DRIVE_WAIT;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(d->cfgport);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(s, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		printf("cfg connect failed: %s\n", strerror(errno));
		if (s != -1)
			close(s);
		return;
	}
	if (write(s, line, strlen(line)) == -1 || write(s, "\n", 1) == -1)
		printf("driver: cfg write: %s\n", strerror(errno));
	shutdown(s, SHUT_WR);
	while (n < sizeof(ans) - 1 && drive_now() < end) {
		struct pollfd p = { s, POLLIN, 0 };
		ssize_t r;

		if (poll(&p, 1, 500) <= 0)
			continue;
		if ((r = read(s, ans + n, sizeof(ans) - 1 - n)) <= 0)
			break;
		n += (size_t)r;
	}
	ans[n] = '\0';
	if (n > 0 && ans[n - 1] == '\n')
		ans[n - 1] = '\0';
	printf("cfg %s\n", n > 0 ? ans : "(no answer)");
	close(s);
}

/* drive_connect - a connection to the config port; -1 on failure */
static int
drive_connect(struct drive *d)
{
	struct sockaddr_in sin;
	int s;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(d->cfgport);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	if (connect(s, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(s);
		return -1;
	}
	return s;
}

/*
 * drive_cfgbig - send n bytes of 'a' (no newline) to the config port and
 * print the answer; "cfgslow SECS": send a part of a line and wait for
 * the writer to close the connection
 */
static void
drive_cfgbig(struct drive *d, long n, double slow)
{
	char buf[65536], ans[512];
	double t0 = drive_now(), end = t0 + (slow > 0 ? slow : DRIVE_WAIT);
	size_t got = 0;
	int s;

	if ((s = drive_connect(d)) == -1) {
		printf("cfg connect failed: %s\n", strerror(errno));
		return;
	}
	memset(buf, 'a', sizeof(buf));
	if (slow > 0) {
		if (write(s, "slow;", 5) == -1)
			printf("driver: write: %s\n", strerror(errno));
	}
	while (n > 0) {
		ssize_t w = write(s, buf, n < (long)sizeof(buf) ? (size_t)n :
		    sizeof(buf));

		if (w <= 0)
			break;	/* the writer refused and closed */
		n -= w;
	}
	if (slow <= 0)
		shutdown(s, SHUT_WR);
	while (got < sizeof(ans) - 1 && drive_now() < end) {
		struct pollfd p = { s, POLLIN, 0 };
		ssize_t r;

		if (poll(&p, 1, 200) <= 0)
			continue;
		if ((r = read(s, ans + got, sizeof(ans) - 1 - got)) <= 0) {
			if (slow > 0)
				printf("cfgslow closed after %.1f\n",
				    drive_now() - t0);
			break;
		}
		got += (size_t)r;
	}
	if (slow > 0 && drive_now() >= end)
		printf("cfgslow open\n");
	ans[got] = '\0';
	if (got > 0 && ans[got - 1] == '\n')
		ans[got - 1] = '\0';
	if (slow <= 0)
		printf("cfg %s\n", got > 0 ? ans : "(no answer)");
	close(s);
}

/* drive_dump_cb - print one record spamdb-style */
static int
drive_dump_cb(const struct gdb_rec *r, void *arg)
{
	switch (r->type) {
	case GDB_GREY:
		printf("db GREY|%s|%s|%s|%s|%lld|%lld|%lld|%d|%d\n", r->ip,
		    r->helo, r->from, r->to, (long long)r->first,
		    (long long)r->pass, (long long)r->expire, r->bcount,
		    r->pcount);
		break;
	case GDB_WHITE:
		printf("db WHITE|%s|||%lld|%lld|%lld|%d|%d\n", r->ip,
		    (long long)r->first, (long long)r->pass,
		    (long long)r->expire, r->bcount, r->pcount);
		break;
	case GDB_TRAPPED:
		printf("db TRAPPED|%s|%lld\n", r->ip, (long long)r->expire);
		break;
	case GDB_SPAMTRAP:
		printf("db SPAMTRAP|%s\n", r->to);
		break;
	}
	return 0;
}

/* drive_dump - print every record of the store (a second handle) */
static void
drive_dump(struct drive *d)
{
	struct gdb_opts o = { .readonly = 1 };
	struct gdb_err err = { 0 };
	struct gdb *db;

	if (gdb_open(&db, d->dbdir, &o, &err) == -1) {
		printf("driver: dump: %s\n", err.msg);
		return;
	}
	if (gdb_walk(db, 0, drive_dump_cb, NULL, &err) == -1)
		printf("driver: dump: %s\n", err.msg);
	gdb_close(db);
	printf("db end\n");
}

/* drive_edit - change the store behind the writer's back (as greyctl
 * does): "white IP SECS" adds WHITE, "del IP" deletes WHITE */
static void
drive_edit(struct drive *d, char **av, int ac)
{
	struct gdb_opts o = { 0 };
	struct gdb_err err = { 0 };
	struct gdb_rec r;
	struct gdb *db;
	int64_t now = time(NULL);
	int rc;

	if (gdb_open(&db, d->dbdir, &o, &err) == -1) {
		printf("driver: %s: %s\n", av[0], err.msg);
		return;
	}
	if (strcmp(av[0], "white") == 0) {
		rc = gdb_white(db, av[1], now, now + (ac > 2 ? atol(av[2]) :
		    3600), &err);
	} else {
		memset(&r, 0, sizeof(r));
		r.type = GDB_WHITE;
		strlcpy(r.ip, av[1], sizeof(r.ip));
		rc = gdb_del(db, &r, &err) == -1 ? -1 : 0;
	}
	if (rc == -1)
		printf("driver: %s: %s\n", av[0], err.msg);
	gdb_close(db);
}

/* drive_split - split line on spaces into av (at most max) */
static int
drive_split(char *line, char **av, int max)
{
	int n = 0;
	char *p;

	for (p = strtok(line, " \t\n"); p && n < max; p = strtok(NULL, " \t\n"))
		av[n++] = p;
	return n;
}

/* drive_command - run one script line */
static void
drive_command(struct drive *d, char *line)
{
	char copy[4096], *av[16];
	int ac;

	strlcpy(copy, line, sizeof(copy));
	if ((ac = drive_split(line, av, 16)) == 0 || av[0][0] == '#')
		return;
	if (strcmp(av[0], "tuple") == 0) {
		drive_tuple(d, av, ac);
	} else if (strcmp(av[0], "engine") == 0 && ac == 2) {
		int n = atoi(av[1]);

		if (n >= 1 && n <= d->neng)
			d->cur = n - 1;
	} else if (strcmp(av[0], "msgwait") == 0 && ac == 3) {
		uint32_t t = strcmp(av[1], "traplist") == 0 ? MSG_TRAPLIST :
		    strcmp(av[1], "blacklist") == 0 ? MSG_BLACKLIST : 0;

		if (drive_pump(d, atof(av[2]), d->cur, t, 0) != 1)
			printf("nomsg %s\n", av[1]);
	} else if (strcmp(av[0], "drain") == 0 && ac == 2) {
		drive_pump(d, atof(av[1]), -1, 0, 0);
		printf("drained\n");
	} else if (strcmp(av[0], "bad") == 0 && ac == 2) {
		drive_bad(d, av[1]);
	} else if (strcmp(av[0], "closewait") == 0 && ac == 2) {
		int rc = d->fd[d->cur] < 0 ? -1 :
		    drive_pump(d, atof(av[1]), d->cur, MSG_TYPE_MAX, 0);

		printf("%s %d\n", rc == -1 ? "closed" : "open", d->cur + 1);
	} else if (strcmp(av[0], "close") == 0) {
		if (d->fd[d->cur] >= 0)
			close(d->fd[d->cur]);
		d->fd[d->cur] = -1;
	} else if (strcmp(av[0], "signal") == 0 && ac == 2) {
		int sig = strcmp(av[1], "HUP") == 0 ? SIGHUP :
		    strcmp(av[1], "USR1") == 0 ? SIGUSR1 : SIGTERM;

		kill(d->pid, sig);
	} else if (strcmp(av[0], "cfg") == 0) {
		const char *p = strchr(copy, ' ');
		char *nl;

		if ((nl = strchr(copy, '\n')) != NULL)
			*nl = '\0';
		drive_cfg(d, p ? p + 1 : "");
	} else if (strcmp(av[0], "bench") == 0 && ac >= 3) {
		drive_bench(d, atol(av[1]), atol(av[2]), ac > 3 &&
		    strcmp(av[3], "same") == 0);
	} else if ((strcmp(av[0], "white") == 0 || strcmp(av[0], "del") == 0)
	    && ac >= 2) {
		drive_edit(d, av, ac);
	} else if (strcmp(av[0], "cfgbig") == 0 && ac == 2) {
		drive_cfgbig(d, atol(av[1]), 0);
	} else if (strcmp(av[0], "cfgslow") == 0 && ac == 2) {
		drive_cfgbig(d, 0, atof(av[1]));
	} else if (strcmp(av[0], "dump") == 0) {
		drive_dump(d);
	} else if (strcmp(av[0], "sleep") == 0 && ac == 2) {
		drive_pump(d, atof(av[1]), -1, 0, 0);
	} else {
		printf("driver: unknown command: %s\n", av[0]);
	}
	/* every command's output ends with a line holding a lone dot */
	printf(".\n");
	fflush(stdout);
}

/* drive_usage - print usage and exit 2 */
static void
drive_usage(void)
{
	fprintf(stderr, "usage: grey_drive [-bv] -d DBDIR [-e ENGINES] "
	    "[-p PASS] [-g GREY] [-w WHITE] [-t TRAP] [-D DOMAINS] "
	    "[-T SPAMTRAP] [-f FWFILE] [-c CFGPORT] [-C SECS] [-4 LEN] "
	    "[-6 LEN] "
	    "[-s SCAN] [-F FLUSHMS] [-r RECONCILE] [-U] < script\n");
	exit(2);
}

/* drive_spamtraps - add the -T addresses before the writer starts */
static int
drive_spamtraps(const char *dir, char **traps, int n)
{
	struct gdb_opts o = { .create = 1 };
	struct gdb_err err = { 0 };
	struct gdb *db;
	int i;

	if (n == 0)
		return 0;
	if (gdb_open(&db, dir, &o, &err) == -1) {
		fprintf(stderr, "grey_drive: %s\n", err.msg);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (gdb_spamtrap_add(db, traps[i], &err) == -1) {
			fprintf(stderr, "grey_drive: %s\n", err.msg);
			gdb_close(db);
			return -1;
		}
	gdb_close(db);
	return 0;
}

/* main - parse flags, fork the writer, run the script from stdin */
int
main(int argc, char **argv)
{
	struct grey_conf c;
	struct drive d;
	char *traps[16], line[8192];
	int ntraps = 0, verbose = 0, ch, i, status, sp[DRIVE_MAX_ENG][2];
	int cfgfd = -1;

	memset(&c, 0, sizeof(c));
	memset(&d, 0, sizeof(d));
	c.times.passtime = GDB_PASSTIME_DEFAULT;
	c.times.greyexp = GDB_GREYEXP_DEFAULT;
	c.times.whiteexp = GDB_WHITEEXP_DEFAULT;
	c.times.trapexp = GDB_TRAPEXP_DEFAULT;
	c.flush_ms = 200;
	c.scan_secs = 60;
	c.reconcile_secs = 300;
	c.cfg_fd = -1;
	d.neng = 1;
	while ((ch = getopt(argc, argv, "bvd:e:p:g:w:t:D:T:f:c:C:4:6:s:F:r:U"))
	    != -1) {
		switch (ch) {
		case 'b': c.blacklist_only = 1; break;
		case 'v': verbose++; break;
		case 'd': c.dbdir = optarg; break;
		case 'e': d.neng = atoi(optarg); break;
		case 'p': c.times.passtime = atoll(optarg); break;
		case 'g': c.times.greyexp = atoll(optarg); break;
		case 'w': c.times.whiteexp = atoll(optarg); break;
		case 't': c.times.trapexp = atoll(optarg); break;
		case 'D': c.domains_file = optarg; break;
		case 'T':
			if (ntraps < 16)
				traps[ntraps++] = optarg;
			break;
		case 'f':
			c.fw_enabled = 1;
			c.fw.backend = "file";
			c.fw.path = optarg;
			break;
		case 'U': c.fw.use_trap_set = 1; break;
		case 'c': d.cfgport = atoi(optarg); break;
		case 'C': c.cfg_timeout_secs = atoi(optarg); break;
		case '4': c.group_v4 = atoi(optarg); break;
		case '6': c.group_v6 = atoi(optarg); break;
		case 's': c.scan_secs = atoi(optarg); break;
		case 'F': c.flush_ms = atoi(optarg); break;
		case 'r': c.reconcile_secs = atoi(optarg); break;
		default: drive_usage();
		}
	}
	if (c.dbdir == NULL || d.neng < 1 || d.neng > DRIVE_MAX_ENG)
		drive_usage();
	d.dbdir = c.dbdir;
	log_init("grey_drive", 1, verbose);
	if (drive_spamtraps(c.dbdir, traps, ntraps) == -1)
		return 1;
	if (d.cfgport > 0) {
		struct sockaddr_in sin;
		int one = 1;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(d.cfgport);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if ((cfgfd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
		    setsockopt(cfgfd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one)) == -1 ||
		    bind(cfgfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
		    listen(cfgfd, 16) == -1) {
			fprintf(stderr, "grey_drive: config port %d: %s\n",
			    d.cfgport, strerror(errno));
			return 1;
		}
		c.cfg_fd = cfgfd;
	}
	for (i = 0; i < d.neng; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp[i]) == -1) {
			perror("socketpair");
			return 1;
		}
	fflush(stdout);
	if ((d.pid = fork()) == -1) {
		perror("fork");
		return 1;
	}
	if (d.pid == 0) {
		int wfd[DRIVE_MAX_ENG];

		for (i = 0; i < d.neng; i++) {
			close(sp[i][0]);
			wfd[i] = sp[i][1];
		}
		_exit(grey_main(wfd, d.neng, &c));
	}
	if (cfgfd != -1)
		close(cfgfd);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < d.neng; i++) {
		close(sp[i][1]);
		d.fd[i] = sp[i][0];
		d.in[i] = evbuffer_new();
	}
	printf("writer %d\n", (int)d.pid);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin) != NULL)
		drive_command(&d, line);
	for (i = 0; i < d.neng; i++) {
		if (d.fd[i] >= 0)
			close(d.fd[i]);
		evbuffer_free(d.in[i]);
	}
	/* bounded wait: 20 s, then kill */
	for (i = 0; i < 200; i++) {
		if (waitpid(d.pid, &status, WNOHANG) == d.pid)
			break;
		usleep(100000);
	}
	if (i == 200) {
		kill(d.pid, SIGKILL);
		waitpid(d.pid, &status, 0);
		printf("exit killed\n");
		return 1;
	}
	if (WIFEXITED(status))
		printf("exit %d\n", WEXITSTATUS(status));
	else
		printf("exit signal %d\n", WTERMSIG(status));
	return 0;
}
