/*
 * bench_dnsbl - what DNSBL checks cost the engine's loop, with 2 zones:
 *   1. the answer cache alone: lookups/s over 100,000 entries;
 *   2. checks answered from the cache (request, timer, callback) against
 *      a baseline of one bare zero-timeout event per check - what a
 *      connection costs the loop without DNS checks (ratio);
 *   3. checks that go to a DNS server on loopback (an evdns server in
 *      this process, UDP), 500 at a time: checks/s and lookups in flight
 *      at the peak.
 * Figures only, never pass/fail.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/event.h>
#include <event2/util.h>

#include "spamd/common/dnsbl.h"
#include "spamd/common/log.h"

#define BENCH_ENTRIES	100000
#define BENCH_BATCH	1000
#define BENCH_DNS_BATCH	500

struct bench {
	struct event_base	*base;
	int			 left;
	long			 done;
	long			 listed;
};

/* bench_secs - a monotonic clock in seconds */
static double
bench_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* bench_sa - the IPv4 socket address 10.x.y.z for index i */
static void
bench_sa(long i, struct sockaddr_in *sin)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(0x0a000000u | (uint32_t)(i & 0xffffff));
}

/* bench_cb - a check finished */
static void
bench_cb(void *arg, const struct dnsbl_result *res)
{
	struct bench *b = arg;

	b->done++;
	b->listed += res->nlisted;
	if (--b->left == 0)
		event_base_loopexit(b->base, NULL);
}

/* bench_tick - the baseline: one bare event per connection */
static void
bench_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct bench *b = arg;

	b->done++;
	if (--b->left == 0)
		event_base_loopexit(b->base, NULL);
}

/* bench_srv - answer every question NXDOMAIN (nobody is listed) */
static void
bench_srv(struct evdns_server_request *r, void *arg)
{
	long *n = arg;

	(*n)++;
	evdns_server_request_respond(r, DNS_ERR_NOTEXIST);
}

/* bench_cache - raw cache lookups/s */
static void
bench_cache(void)
{
	struct dnsbl_cache *c = dnsbl_cache_new(BENCH_ENTRIES);
	struct dnsbl_answer ans, got;
	struct sockaddr_in sin;
	char key[DNSBL_NAME_MAX];
	double t0, t;
	long i, hits = 0, n = 4000000;
	static char keys[4096][64];

	memset(&ans, 0, sizeof(ans));
	ans.status = DNSBL_ST_NXDOMAIN;
	t0 = bench_secs();
	for (i = 0; i < BENCH_ENTRIES; i++) {
		bench_sa(i, &sin);
		dnsbl_qname((struct sockaddr *)&sin, "zen.spamhaus.org", key,
		    sizeof(key));
		dnsbl_cache_put(c, key, &ans, 3600, 1000);
	}
	t = bench_secs() - t0;
	printf("cache: %d entries filled in %.3f s, %.1f bytes/entry\n",
	    BENCH_ENTRIES, t, (double)dnsbl_cache_bytes(c) / BENCH_ENTRIES);
	for (i = 0; i < 4096; i++) {
		bench_sa((i * 7919) % BENCH_ENTRIES, &sin);
		dnsbl_qname((struct sockaddr *)&sin, "zen.spamhaus.org",
		    keys[i], sizeof(keys[i]));
	}
	t0 = bench_secs();
	for (i = 0; i < n; i++)
		hits += dnsbl_cache_get(c, keys[i & 4095], 1000, &got);
	t = bench_secs() - t0;
	printf("cache: %.2f M lookups/s (%ld lookups, %ld hits)\n",
	    (double)n / t / 1e6, n, hits);
	dnsbl_cache_free(c);
}

int
main(void)
{
	struct event_base *base;
	struct evdns_server_port *port;
	struct sockaddr_in sin, ss;
	socklen_t len = sizeof(ss);
	struct dnsbl *d;
	struct bench b;
	struct event *ev[BENCH_BATCH];
	static const struct timeval zero = { 0, 0 };
	char err[256], server[64];
	double t0, t_base, t_cached, t_dns;
	long i, round, rounds = 200, served = 0, dns_checks;
	int fd, now, peak;

	log_init("bench_dnsbl", 1, 0);
	bench_cache();

	base = event_base_new();
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&ss, 0, sizeof(ss));
	ss.sin_family = AF_INET;
	ss.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (base == NULL || fd == -1 ||
	    bind(fd, (struct sockaddr *)&ss, sizeof(ss)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		perror("bench_dnsbl: setup");
		return 1;
	}
	evutil_make_socket_nonblocking(fd);
	port = evdns_add_server_port_with_base(base, fd, 0, bench_srv,
	    &served);
	snprintf(server, sizeof(server), "127.0.0.1:%u", ntohs(ss.sin_port));
	d = dnsbl_new(base, server, 5000, 2 * BENCH_ENTRIES, err, sizeof(err));
	if (d == NULL || port == NULL ||
	    dnsbl_add_zone(d, "zen.test", NULL, 0, err, sizeof(err)) == -1 ||
	    dnsbl_add_zone(d, "bl.test", NULL, 0, err, sizeof(err)) == -1) {
		fprintf(stderr, "bench_dnsbl: %s\n", err);
		return 1;
	}
	b.base = base;

	/* 3 first: it also fills the cache for 2 */
	dns_checks = 0;
	t0 = bench_secs();
	for (round = 0; dns_checks < 20000; round++) {
		b.left = BENCH_DNS_BATCH;
		for (i = 0; i < BENCH_DNS_BATCH; i++) {
			bench_sa(round * BENCH_DNS_BATCH + i, &sin);
			if (dnsbl_check(d, (struct sockaddr *)&sin, bench_cb,
			    &b) == NULL)
				b.left--;
		}
		event_base_dispatch(base);
		dns_checks += BENCH_DNS_BATCH;
	}
	t_dns = bench_secs() - t0;
	dnsbl_inflight(d, &now, &peak);

	/* the baseline: one zero-timeout event per "connection" */
	for (i = 0; i < BENCH_BATCH; i++)
		ev[i] = evtimer_new(base, bench_tick, &b);
	b.done = 0;
	t0 = bench_secs();
	for (round = 0; round < rounds; round++) {
		b.left = BENCH_BATCH;
		for (i = 0; i < BENCH_BATCH; i++)
			evtimer_add(ev[i], &zero);
		event_base_dispatch(base);
	}
	t_base = bench_secs() - t0;
	for (i = 0; i < BENCH_BATCH; i++)
		event_free(ev[i]);

	/* 2: the same number of checks, every answer in the cache */
	b.done = 0;
	t0 = bench_secs();
	for (round = 0; round < rounds; round++) {
		b.left = BENCH_BATCH;
		for (i = 0; i < BENCH_BATCH; i++) {
			bench_sa((round * BENCH_BATCH + i) % dns_checks, &sin);
			if (dnsbl_check(d, (struct sockaddr *)&sin, bench_cb,
			    &b) == NULL)
				b.left--;
		}
		event_base_dispatch(base);
	}
	t_cached = bench_secs() - t0;

	printf("loop baseline (no DNS checks): %.0f k events/s\n",
	    (double)rounds * BENCH_BATCH / t_base / 1e3);
	printf("cached checks, 2 zones: %.0f k checks/s, ratio to "
	    "baseline %.2f\n", (double)rounds * BENCH_BATCH / t_cached / 1e3,
	    t_base / t_cached);
	printf("DNS checks, 2 zones, %d at a time, loopback server in "
	    "process: %.1f k checks/s (%ld queries answered), ratio to "
	    "baseline %.3f, lookups in flight at peak %d\n", BENCH_DNS_BATCH,
	    (double)dns_checks / t_dns / 1e3, served,
	    (t_base / (rounds * BENCH_BATCH)) / (t_dns / dns_checks), peak);
	dnsbl_free(d);
	event_base_loop(base, EVLOOP_NONBLOCK);
	evdns_close_server_port(port);
	close(fd);
	event_base_free(base);
	return 0;
}
