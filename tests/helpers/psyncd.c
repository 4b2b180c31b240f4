/*
 * psyncd.c - a small sync peer for tests: listens with a key and prints
 * every received entry as a text line, sends entries given on its
 * command line, and can resend one packet byte for byte (replay).
 *
 *   psyncd [-k keyfile | -K key | -N] [-l listen] [-p port] [-t target]...
 *          [-D] [-d dbdir] [-w seconds] [-R times -c counter] [entry ...]
 *
 *   entry: grey,IP,HELO,FROM,TO | white,IP,SECS | trapped,IP,SECS |
 *          delwhite,IP | deltrapped,IP      (SECS: expire - now)
 *
 * Output lines (stdout, flushed): "listening port=N", "sent packets=N",
 * "entry KIND ip=... [helo= from= to=] ts=N [expire=N] peer=A:P
 *  [result=...]",
 * "counters sent=N received=N accepted=N applied=N dropped_REASON=N ...".
 * With -R the entries are encoded once, with counter -c, into one packet
 * that is sent -R times to each unicast target from one socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "pf-sync/sync.h"
#include "spamd/common/log.h"

#define MAX_ARGS 64

struct pd {
	struct psync	*ps;
	struct gdb	*db;
	uint64_t	 last_sum;
};

/* usage - print the synopsis and exit */
static void
usage(void)
{
	fprintf(stderr, "usage: psyncd [-k keyfile | -K key | -N] [-l listen]"
	    " [-p port] [-t target]... [-D] [-d dbdir] [-w secs] [-R n -c "
	    "counter] [entry ...]\n");
	exit(2);
}

/* parse_entry - one command-line entry into e (strings point into arg) */
static int
parse_entry(char *arg, struct psync_entry *e, int64_t now)
{
	char *f[6];
	int n = 0;
	const char *errstr = NULL;
	long long secs = 0;

	memset(e, 0, sizeof(*e));
	while (n < 6 && (f[n] = strsep(&arg, ",")) != NULL)
		n++;
	if (n < 2 || psync_entry_set_ip(e, f[1]) == -1)
		return -1;
	e->timestamp = (uint32_t)now;
	if (strcmp(f[0], "grey") == 0 && n == 5) {
		e->kind = PSYNC_GREY;
		e->helo = f[2];
		e->from = f[3];
		e->to = f[4];
		return 0;
	}
	if ((strcmp(f[0], "white") == 0 || strcmp(f[0], "trapped") == 0) &&
	    n == 3) {
		secs = strtonum(f[2], -1000000000LL, 1000000000LL, &errstr);
		if (errstr != NULL)
			return -1;
		e->kind = f[0][0] == 'w' ? PSYNC_WHITE : PSYNC_TRAPPED;
		e->expire = (uint32_t)(now + secs);
		return 0;
	}
	if (strcmp(f[0], "delwhite") == 0 && n == 2) {
		e->kind = PSYNC_DEL_WHITE;
		return 0;
	}
	if (strcmp(f[0], "deltrapped") == 0 && n == 2) {
		e->kind = PSYNC_DEL_TRAPPED;
		return 0;
	}
	return -1;
}

/* result_name - psync_apply's outcome as a word */
static const char *
result_name(enum psync_applied r, enum gdb_result g)
{
	static const char *const gn[] = { "?", "NEW", "GREY", "PASSED",
	    "WHITE", "TRAPPED", "TRAP" };

	switch (r) {
	case PSYNC_A_APPLIED:
		return (unsigned)g < 7 && g != 0 ? gn[g] : "applied";
	case PSYNC_A_EXPIRED:
		return "expired";
	case PSYNC_A_KEPT:
		return "kept";
	case PSYNC_A_TRAPPED:
		return "trapped";
	case PSYNC_A_ABSENT:
		return "absent";
	case PSYNC_A_REFUSED:
		return "refused";
	}
	return "?";
}

/* on_entry - print one received entry (and apply it with -d) */
static int
on_entry(const struct psync_entry *e, const struct sockaddr *from,
    void *arg)
{
	struct pd *pd = arg;
	struct gdb_times t = { GDB_PASSTIME_DEFAULT, GDB_GREYEXP_DEFAULT,
	    GDB_WHITEEXP_DEFAULT, GDB_TRAPEXP_DEFAULT };
	struct gdb_err err;
	enum psync_applied r = PSYNC_A_APPLIED;
	enum gdb_result g = 0;
	char ip[INET6_ADDRSTRLEN], res[64] = "", sbuf[INET6_ADDRSTRLEN];
	char src[INET6_ADDRSTRLEN + 16];
	int rc = 1;

	psync_entry_ip(e, ip, sizeof(ip));
	if (from->sa_family == AF_INET)
		snprintf(src, sizeof(src), "%s:%u", inet_ntop(AF_INET,
		    &((const struct sockaddr_in *)(const void *)from)->sin_addr,
		    sbuf, sizeof(sbuf)), ntohs(((const struct sockaddr_in *)
		    (const void *)from)->sin_port));
	else
		snprintf(src, sizeof(src), "[%s]:%u", inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)(const void *)from)->
		    sin6_addr, sbuf, sizeof(sbuf)), ntohs(((const struct
		    sockaddr_in6 *)(const void *)from)->sin6_port));
	if (pd->db != NULL) {
		if (psync_apply(pd->db, e, time(NULL), &t, &r, &g, &err) == -1) {
			snprintf(res, sizeof(res), " result=error");
			fprintf(stderr, "psyncd: %s\n", err.msg);
			rc = -1;
		} else {
			snprintf(res, sizeof(res), " result=%s",
			    result_name(r, g));
			rc = r == PSYNC_A_APPLIED ? 1 : 0;
		}
	}
	if (e->kind == PSYNC_GREY)
		printf("entry %s ip=%s helo=%s from=%s to=%s ts=%u peer=%s%s\n",
		    psync_kind_name(e->kind), ip, e->helo, e->from, e->to,
		    e->timestamp, src, res);
	else
		printf("entry %s ip=%s ts=%u expire=%u peer=%s%s\n",
		    psync_kind_name(e->kind), ip, e->timestamp, e->expire, src,
		    res);
	fflush(stdout);
	return rc;
}

/* print_counters - one line with every counter */
static void
print_counters(const struct psync *ps)
{
	const struct psync_counters *c = psync_counters(ps);
	int i;

	printf("counters sent=%llu received=%llu accepted=%llu entries=%llu "
	    "applied=%llu ignored=%llu", (unsigned long long)c->sent,
	    (unsigned long long)c->received, (unsigned long long)c->accepted,
	    (unsigned long long)c->entries, (unsigned long long)c->applied,
	    (unsigned long long)c->ignored);
	for (i = 1; i < PSYNC_D_MAX; i++)
		printf(" dropped_%s=%llu", psync_drop_name(i),
		    (unsigned long long)c->dropped[i]);
	printf("\n");
	fflush(stdout);
}

/* on_tick - print the counters when they changed */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct pd *pd = arg;
	const struct psync_counters *c = psync_counters(pd->ps);
	uint64_t sum = c->received + c->accepted + c->entries;

	if (sum != pd->last_sum) {
		pd->last_sum = sum;
		print_counters(pd->ps);
	}
}

/* on_stop - SIGTERM/SIGINT or the -w timer: leave the loop */
static void
on_stop(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

/* raw_send - encode entries once and send the packet n times (replay) */
static int
raw_send(char **targets, int ntargets, const char *key, size_t keylen,
    const struct psync_entry *ents, int nents, uint32_t counter, int times,
    uint16_t defport)
{
	uint8_t pkt[PSYNC_PKT_SEND];
	struct psync_err err;
	struct addrinfo hints, *res;
	char host[256], port[16], *c;
	size_t len;
	int i, j, fd, sent = 0;

	if (psync_encode(ents, (size_t)nents, counter, key, keylen, pkt,
	    sizeof(pkt), &len, &err) != nents) {
		fprintf(stderr, "psyncd: encode: %s\n", err.msg);
		return -1;
	}
	for (i = 0; i < ntargets; i++) {
		strlcpy(host, targets[i], sizeof(host));
		snprintf(port, sizeof(port), "%u", defport);
		if ((c = strrchr(host, ':')) != NULL && strchr(host, ':') == c) {
			*c = '\0';
			strlcpy(port, c + 1, sizeof(port));
		}
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_DGRAM;
		if (getaddrinfo(host, port, &hints, &res) != 0)
			return -1;
		if ((fd = socket(res->ai_family, SOCK_DGRAM, 0)) == -1) {
			freeaddrinfo(res);
			return -1;
		}
		for (j = 0; j < times; j++)
			if (sendto(fd, pkt, len, 0, res->ai_addr,
			    res->ai_addrlen) == (ssize_t)len)
				sent++;
		close(fd);
		freeaddrinfo(res);
	}
	printf("sent packets=%d\n", sent);
	fflush(stdout);
	return 0;
}

int
main(int argc, char *argv[])
{
	struct psync_opts o;
	struct psync_err err;
	struct gdb_opts go = { .create = 1, .group_commit = 1 };
	struct gdb_err gerr;
	struct pd pd;
	struct event_base *base;
	struct event *sigt, *sigi, *tick, *stop;
	struct psync_entry ents[MAX_ARGS];
	struct timeval tv;
	char key[PSYNC_KEY_LEN + 1] = "", *targets[MAX_ARGS];
	const char *listen = NULL, *dbdir = NULL, *errstr = NULL;
	int ch, nt = 0, ne = 0, nokey = 0, wait_s = 10, times = 0, i, rc = 0;
	uint32_t counter = 1;
	int64_t now = time(NULL);

	memset(&o, 0, sizeof(o));
	memset(&pd, 0, sizeof(pd));
	log_init("psyncd", 1, 0);
	while ((ch = getopt(argc, argv, "c:Dd:K:k:l:Np:R:t:vw:")) != -1) {
		switch (ch) {
		case 'c':
			counter = (uint32_t)strtonum(optarg, 0, UINT32_MAX,
			    &errstr);
			break;
		case 'D':
			o.deletions = 1;
			break;
		case 'd':
			dbdir = optarg;
			break;
		case 'K':
			strlcpy(key, optarg, sizeof(key));
			break;
		case 'k':
			if (psync_key_load(optarg, key, &err) == -1) {
				fprintf(stderr, "psyncd: %s\n", err.msg);
				return 1;
			}
			break;
		case 'l':
			listen = optarg;
			break;
		case 'N':
			nokey = 1;
			break;
		case 'p':
			o.port = (uint16_t)strtonum(optarg, 1, 65535, &errstr);
			break;
		case 'R':
			times = (int)strtonum(optarg, 1, 100, &errstr);
			break;
		case 't':
			if (nt < MAX_ARGS)
				targets[nt++] = optarg;
			break;
		case 'v':
			log_set_verbose(1);
			break;
		case 'w':
			wait_s = (int)strtonum(optarg, 0, 600, &errstr);
			break;
		default:
			usage();
		}
		if (errstr != NULL) {
			fprintf(stderr, "psyncd: -%c %s: %s\n", ch, optarg,
			    errstr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (key[0] == '\0' && !nokey) {
		fprintf(stderr, "psyncd: a key (-k/-K) or -N is required\n");
		return 2;
	}
	for (i = 0; i < argc && ne < MAX_ARGS; i++)
		if (parse_entry(argv[i], &ents[ne++], now) == -1) {
			fprintf(stderr, "psyncd: bad entry %d\n", i + 1);
			return 2;
		}
	if (times > 0)
		return raw_send(targets, nt, key, strlen(key), ents, ne,
		    counter, times, o.port ? o.port : PSYNC_PORT) == 0 ? 0 : 1;

	if ((base = event_base_new()) == NULL)
		return 1;
	o.key = key;
	o.any_source = 1;	/* a test endpoint: any sender (sync_peers.py) */
	o.recv = on_entry;
	o.arg = &pd;
	if (dbdir != NULL && gdb_open(&pd.db, dbdir, &go, &gerr) == -1) {
		fprintf(stderr, "psyncd: %s\n", gerr.msg);
		return 1;
	}
	if ((pd.ps = psync_new(base, &o, &err)) == NULL) {
		fprintf(stderr, "psyncd: %s\n", err.msg);
		return 1;
	}
	if (listen != NULL) {
		if (psync_listen(pd.ps, listen, &err) == -1) {
			fprintf(stderr, "psyncd: %s\n", err.msg);
			return 1;
		}
		printf("listening port=%u\n", psync_local_port(pd.ps));
		fflush(stdout);
	}
	for (i = 0; i < nt; i++)
		if (psync_add_target(pd.ps, targets[i], o.deletions, &err)) {
			fprintf(stderr, "psyncd: %s\n", err.msg);
			return 1;
		}
	if (ne > 0) {
		rc = psync_send_entries(pd.ps, ents, (size_t)ne);
		printf("sent packets=%d\n", rc);
		fflush(stdout);
		rc = rc < 0;
	}
	if (listen != NULL) {
		sigt = evsignal_new(base, SIGTERM, on_stop, base);
		sigi = evsignal_new(base, SIGINT, on_stop, base);
		tick = event_new(base, -1, EV_PERSIST, on_tick, &pd);
		stop = evtimer_new(base, on_stop, base);
		evsignal_add(sigt, NULL);
		evsignal_add(sigi, NULL);
		tv.tv_sec = 0;
		tv.tv_usec = 50000;
		event_add(tick, &tv);
		tv.tv_sec = wait_s;
		tv.tv_usec = 0;
		evtimer_add(stop, &tv);
		event_base_dispatch(base);
		print_counters(pd.ps);
		event_free(sigt);
		event_free(sigi);
		event_free(tick);
		event_free(stop);
	}
	psync_log_counters(pd.ps);
	psync_free(pd.ps);
	gdb_close(pd.db);
	event_base_free(base);
	return rc;
}
