/*
 * bench_verify - recipient verification against a local MX (issue 10):
 *   1. probes/s with connection reuse (EHLO once, then MAIL, RCPT, RSET
 *      per probe) on a pool of 2 and of 1 connection, against the
 *      baseline of one connection per probe (connect, banner, EHLO, MAIL,
 *      RCPT, RSET, QUIT each time), no rate limit, distinct addresses;
 *   2. the cache under a tuple load where 90% of recipients repeat one
 *      seen before: hit rate, probes saved, queries/s;
 *   0. first, the valid-recipients table: load time of 1,000,000
 *      addresses and lookups/s.
 * The MX is smtp-sink (Postfix's test server: accepts every RCPT, which
 * is enough for throughput) on 127.0.0.1, a port in 20000-20999; without
 * smtp-sink the benchmark says so and exits 0. Figures only.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "spamd/writer/grey_rcpt.h"
#include "spamd/common/log.h"

#define BENCH_PROBES	20000	/* distinct addresses per reuse run */
#define BENCH_BASELINE	4000	/* probes of the one-per-probe run */
#define BENCH_LOAD	200000	/* queries of the cache run */
#define BENCH_BATCH	1000	/* queries in flight at once */

struct bench {
	struct event_base	*base;
	long			 left;
	long			 valid, unknown;	/* answered / not */
};

/* bench_secs - a monotonic clock in seconds */
static double
bench_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* bench_cb - one query answered */
static void
bench_cb(int res, const char *addr, void *arg)
{
	struct bench *b = arg;

	if (res == VERIFY_VALID || res == VERIFY_INVALID)
		b->valid++;
	else
		b->unknown++;
	if (--b->left == 0)
		event_base_loopbreak(b->base);
}

/* bench_query - one query; answers given at once are counted here */
static void
bench_query(struct bench *b, struct grey_verify *v, const char *addr)
{
	int r;

	b->left++;
	if ((r = grey_verify_query(v, addr, bench_cb, b)) != VERIFY_PENDING)
		bench_cb(r, addr, b);
}

/* bench_sink - start smtp-sink on 127.0.0.1:port; its pid or -1 */
static pid_t
bench_sink(int port)
{
	char where[64];
	pid_t pid;
	int i, fd;

	snprintf(where, sizeof(where), "127.0.0.1:%d", port);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		fd = open("/dev/null", O_RDWR);
		dup2(fd, 1);
		dup2(fd, 2);
		/* as root smtp-sink wants a user to run as */
		if (geteuid() == 0)
			execlp("smtp-sink", "smtp-sink", "-u", "postfix", "-m",
			    "1000", where, "1000", (char *)NULL);
		else
			execlp("smtp-sink", "smtp-sink", "-m", "1000", where,
			    "1000", (char *)NULL);
		_exit(127);
	}
	/* wait (bounded) until it listens */
	for (i = 0; i < 100; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET,
		    .sin_port = htons((uint16_t)port) };
		int s = socket(AF_INET, SOCK_STREAM, 0), rc;

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		rc = connect(s, (struct sockaddr *)&sin, sizeof(sin));
		close(s);
		if (rc == 0)
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		usleep(50000);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return -1;
}

/* bench_run - n distinct addresses through a new verifier; probes/s */
static double
bench_run(const char *mx, int pool, int per_conn, long n, const char *tag,
    struct grey_verify_counts *out)
{
	struct grey_verify_conf c = { .mx = mx, .helo = "bench.test",
	    .pool = pool, .per_conn = per_conn, .queue_max = n + 1 };
	struct bench b = { 0 };
	struct grey_verify *v;
	char err[256], addr[64];
	double t0, dt;
	long i;

	b.base = event_base_new();
	if (grey_verify_new(&v, b.base, &c, err, sizeof(err)) == -1) {
		fprintf(stderr, "bench_verify: %s\n", err);
		exit(1);
	}
	t0 = bench_secs();
	for (i = 0; i < n; i++) {
		snprintf(addr, sizeof(addr), "user%ld.%s@mx.test", i, tag);
		bench_query(&b, v, addr);
	}
	if (b.left > 0)
		event_base_dispatch(b.base);
	dt = bench_secs() - t0;
	grey_verify_counts(v, out);
	if (b.unknown > 0)
		printf("  (warning: %ld of %ld answered unknown)\n", b.unknown,
		    n);
	grey_verify_free(v);
	event_base_free(b.base);
	return (double)n / dt;
}

/* bench_cache - BENCH_LOAD queries, 90% to an address seen before */
static void
bench_cache(const char *mx)
{
	struct grey_verify_conf c = { .mx = mx, .helo = "bench.test",
	    .pool = 2, .queue_max = BENCH_BATCH + 1 };
	struct grey_verify_counts n;
	struct bench b = { 0 };
	struct grey_verify *v;
	char err[256], addr[64];
	long i, seen = 0;
	double t0, dt;

	srandom(42);
	b.base = event_base_new();
	if (grey_verify_new(&v, b.base, &c, err, sizeof(err)) == -1) {
		fprintf(stderr, "bench_verify: %s\n", err);
		exit(1);
	}
	t0 = bench_secs();
	for (i = 0; i < BENCH_LOAD; i++) {
		if (seen > 0 && random() % 10 != 0)
			snprintf(addr, sizeof(addr), "u%ld@mx.test",
			    random() % seen);
		else
			snprintf(addr, sizeof(addr), "u%ld@mx.test", seen++);
		bench_query(&b, v, addr);
		/* a batch in flight, then let the loop answer it */
		if (b.left >= BENCH_BATCH)
			event_base_dispatch(b.base);
	}
	if (b.left > 0)
		event_base_dispatch(b.base);
	dt = bench_secs() - t0;
	grey_verify_counts(v, &n);
	printf("cache, %d queries, 90%% repeat an earlier recipient "
	    "(%ld distinct):\n", BENCH_LOAD, seen);
	printf("  cache hits %ld (%.1f%%), waited on a probe in flight %ld "
	    "(%.1f%%), probes %ld (%.1f%% of queries)\n", n.hits,
	    100.0 * n.hits / n.queries, n.coalesced,
	    100.0 * n.coalesced / n.queries, n.probes,
	    100.0 * n.probes / n.queries);
	printf("  %.0f queries/s through the verifier\n", BENCH_LOAD / dt);
	grey_verify_free(v);
	event_base_free(b.base);
}

/* bench_table - the valid-recipients table: load 1,000,000 addresses
 * from a file, then lookups/s (hits and misses) */
static void
bench_table(void)
{
	const long n = 1000000;
	char path[] = "/tmp/bench_verify.XXXXXX", err[512], a[64];
	struct rcpt_table *t;
	double t0, tl, tk;
	long i, hits = 0;
	FILE *f;
	int fd;

	if ((fd = mkstemp(path)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		perror("bench_verify: mkstemp");
		return;
	}
	for (i = 0; i < n; i++)
		fprintf(f, "First.Last%ld@dept%ld.example.edu\n", i, i % 50);
	fclose(f);
	t0 = bench_secs();
	if (rcpt_table_load(&t, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "bench_verify: %s\n", err);
		unlink(path);
		return;
	}
	tl = bench_secs() - t0;
	unlink(path);
	t0 = bench_secs();
	for (i = 0; i < n; i++) {
		/* every other lookup a miss in a named domain */
		snprintf(a, sizeof(a), "first.last%ld@dept%ld.example.edu",
		    i % 2 ? i : n + i, i % 50);
		hits += rcpt_table_lookup(t, a) == RCPT_VALID;
	}
	tk = bench_secs() - t0;
	printf("valid-rcpt table: %ld addresses loaded in %.2f s; %.0f "
	    "lookups/s (%ld hits, %ld misses)\n", rcpt_table_count(t), tl,
	    n / tk, hits, n - hits);
	rcpt_table_free(t);
}

int
main(void)
{
	struct grey_verify_counts n1, n2, n3;
	char mx[64];
	double r1, r2, r3;
	pid_t sink;
	int port;

	log_init("bench_verify", 1, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)getpid());
	port = 20000 + (int)(random() % 1000);
	bench_table();
	/* BENCH_VERIFY_MX=host:port: an MX already running (e.g. Postfix) */
	if (getenv("BENCH_VERIFY_MX") != NULL) {
		sink = -1;
		strlcpy(mx, getenv("BENCH_VERIFY_MX"), sizeof(mx));
		printf("MX: %s (from BENCH_VERIFY_MX)\n", mx);
	} else if ((sink = bench_sink(port)) == -1) {
		printf("bench_verify: skipped: smtp-sink (postfix) not "
		    "available or did not listen on 127.0.0.1:%d\n", port);
		return 0;
	} else {
		snprintf(mx, sizeof(mx), "127.0.0.1:%d", port);
		printf("MX: smtp-sink on %s\n", mx);
	}
	printf("no rate limit, distinct addresses\n");
	r3 = bench_run(mx, 2, 1, BENCH_BASELINE, "b", &n3);
	r1 = bench_run(mx, 2, 0, BENCH_PROBES, "p2", &n1);
	r2 = bench_run(mx, 1, 0, BENCH_PROBES, "p1", &n2);
	printf("baseline, one connection per probe, 2 at once: %.0f probes/s "
	    "(%ld probes, %ld connections)\n", r3, n3.probes, n3.connects);
	printf("reuse, pool of 2: %.0f probes/s (%ld probes, %ld "
	    "connections) = %.1fx the baseline\n", r1, n1.probes,
	    n1.connects, r1 / r3);
	printf("reuse, pool of 1: %.0f probes/s (%ld probes, %ld "
	    "connections) = %.1fx the baseline\n", r2, n2.probes,
	    n2.connects, r2 / r3);
	bench_cache(mx);
	if (sink != -1) {
		kill(sink, SIGTERM);
		waitpid(sink, NULL, 0);
	}
	return 0;
}
