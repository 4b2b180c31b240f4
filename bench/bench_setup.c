/*
 * bench_setup.c - spamd-setup on a big list.
 *
 * Generates a 1,000,000-entry list (IPv4 addresses, CIDR blocks and
 * ranges, some IPv6) and a 10,000-entry white list, then times each step
 * spamd-setup takes: gzip inflate, parse, collapse, white subtraction,
 * building the control line; then what the engine does with that line
 * (bl_parse, bl_set_apply) and lookups per second against the result.
 * Peak RSS (getrusage) after each stage. Baseline in the same run: naive
 * insertion of each range into a sorted, merged array (linear search and
 * memmove, what a first version would do) on the first 100,000 entries,
 * against our sort-then-merge on the same entries; both results compared.
 *
 * With BENCH_SETUP_PORT set (a running spamd's --config-port on
 * 127.0.0.1), the line is also sent there and the time until the engine's
 * answer (which comes after its rebuild) is printed.
 *
 *   build/bench/bench_setup [entries]
 */
#include <sys/resource.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "spamd/common/blacklist.h"
#include "spamd/setup/setup.h"

#define NLOOKUPS	5000000UL
#define BASELINE_N	100000

/* now - monotonic seconds */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* peak_mib - peak resident set so far, MiB */
static double
peak_mib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss / 1024.0;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* rng - xorshift64*, deterministic */
static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/* ip4 - dotted quad of a into buf */
static void
ip4(uint32_t a, char *buf, size_t sz)
{
	snprintf(buf, sz, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff,
	    (a >> 8) & 0xff, a & 0xff);
}

/* gen - n list lines: 60% addresses, 30% CIDR, 5% ranges, 5% IPv6 */
static void
gen(struct setup_buf *b, long n)
{
	char line[160], x[20], y[20];
	long i;

	for (i = 0; i < n; i++) {
		uint64_t r = rng() % 100;
		/* keep clear of 0/8 and 224/3, as real lists do */
		uint32_t a = (uint32_t)(0x01000000 + rng() % 0xdf000000);

		if (r < 60) {
			ip4(a, x, sizeof(x));
			snprintf(line, sizeof(line), "%s\n", x);
		} else if (r < 90) {
			int bits = 16 + (int)(rng() % 15);

			ip4(a & (UINT32_MAX << (32 - bits)), x, sizeof(x));
			snprintf(line, sizeof(line), "%s/%d\n", x, bits);
		} else if (r < 95) {
			ip4(a, x, sizeof(x));
			ip4(a + (uint32_t)(rng() % 5000), y, sizeof(y));
			snprintf(line, sizeof(line), "%s - %s  # range\n", x, y);
		} else {
			snprintf(line, sizeof(line), "2001:db8:%x:%x::/64\n",
			    (unsigned)(rng() & 0xffff), (unsigned)(rng() & 0xffff));
		}
		setup_buf_add(b, line, strlen(line));
	}
}

/* gzip_buf - gzip b into out */
static void
gzip_buf(const struct setup_buf *b, struct setup_buf *out)
{
	z_stream z;
	size_t bound = compressBound((uLong)b->len) + 64;

	out->p = malloc(bound);
	out->cap = bound;
	memset(&z, 0, sizeof(z));
	deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (Bytef *)b->p;
	z.avail_in = (uInt)b->len;
	z.next_out = (Bytef *)out->p;
	z.avail_out = (uInt)bound;
	deflate(&z, Z_FINISH);
	out->len = bound - z.avail_out;
	deflateEnd(&z);
}

/* baseline_insert - insert [lo, hi] into a sorted merged array, naively */
static void
baseline_insert(struct setup_r4 **v, size_t *n, size_t *cap, uint32_t lo,
    uint32_t hi)
{
	size_t i = 0, j;

	while (i < *n && (*v)[i].hi != UINT32_MAX && (*v)[i].hi + 1 < lo)
		i++;
	/* absorb every range that overlaps or touches [lo, hi] */
	j = i;
	while (j < *n && (hi == UINT32_MAX || (*v)[j].lo <= hi + 1)) {
		if ((*v)[j].lo < lo)
			lo = (*v)[j].lo;
		if ((*v)[j].hi > hi)
			hi = (*v)[j].hi;
		j++;
	}
	if (j == i) {
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 1024;
			*v = reallocarray(*v, *cap, sizeof(**v));
		}
		memmove(*v + i + 1, *v + i, (*n - i) * sizeof(**v));
		(*n)++;
	} else if (j > i + 1) {
		memmove(*v + i + 1, *v + j, (*n - j) * sizeof(**v));
		*n -= j - i - 1;
	}
	(*v)[i].lo = lo;
	(*v)[i].hi = hi;
}

/* warn_count - count bad lines (there should be none) */
static void
warn_count(void *arg, const char *text)
{
	(void)text;
	(*(long *)arg)++;
}

/* main - generate, time every stage, print the figures */
int
main(int argc, char *argv[])
{
	struct setup_buf text = { 0 }, gz = { 0 }, inflated = { 0 };
	struct setup_buf wtext = { 0 }, line = { 0 };
	struct setup_addrs a = { 0 }, w = { 0 }, base = { 0 };
	struct setup_r4 *bv = NULL;
	struct bl_set *set;
	struct bl_list *l;
	struct bl_match m;
	struct bl_addr ad;
	char err[256];
	long n = 1000000, warns = 0, nbad, n4, n6, hits;
	size_t bn = 0, bcap = 0, i, rawv4;
	double t0, t_inf, t_parse, t_coll, t_sub, t_msg, t_blp, t_apply, t_lk;
	double t_base, t_ours;

	if (argc > 1)
		n = atol(argv[1]);
	if (n < 1000)
		n = 1000;
	gen(&text, n);
	gen(&wtext, n / 100);
	gzip_buf(&text, &gz);
	printf("list: %ld entries, %.1f MiB text, %.1f MiB gzip\n", n,
	    text.len / 1048576.0, gz.len / 1048576.0);
	printf("peak RSS after generating: %.1f MiB\n", peak_mib());

	t0 = now();
	if (setup_gunzip(gz.p, gz.len, SETUP_MAXSIZE_DEFAULT, &inflated, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "gunzip: %s\n", err);
		return 1;
	}
	t_inf = now() - t0;
	setup_buf_free(&gz);

	t0 = now();
	setup_list_parse(inflated.p, inflated.len, "bench", &a, warn_count,
	    &warns, &nbad);
	t_parse = now() - t0;
	rawv4 = a.n4;
	setup_list_parse(wtext.p, wtext.len, "white", &w, warn_count, &warns,
	    &nbad);

	t0 = now();
	setup_collapse(&a);
	t_coll = now() - t0;
	setup_collapse(&w);
	t0 = now();
	setup_subtract(&a, &w);
	t_sub = now() - t0;

	t0 = now();
	if (setup_message("bench", "Your address %A is listed\\n", &a, &line,
	    err, sizeof(err)) == -1) {
		fprintf(stderr, "message: %s\n", err);
		return 1;
	}
	t_msg = now() - t0;
	setup_cidr_count(&a, &n4, &n6, err, sizeof(err));
	printf("spamd-setup: inflate %.3f s, parse %.3f s (%.0f lines/s), "
	    "collapse %.3f s, subtract %ld white %.3f s, message %.3f s\n",
	    t_inf, t_parse, n / t_parse, t_coll, n / 100, t_sub, t_msg);
	printf("  %zu v4 ranges in -> %zu merged, %ld v4 + %ld v6 CIDR blocks, "
	    "control line %.1f MiB, bad lines %ld\n", rawv4, a.n4, n4, n6,
	    line.len / 1048576.0, warns);
	printf("  total %.3f s; peak RSS %.1f MiB\n", t_inf + t_parse + t_coll +
	    t_sub + t_msg, peak_mib());
	setup_buf_free(&inflated);
	setup_buf_free(&text);
	setup_buf_free(&wtext);

	if (getenv("BENCH_SETUP_PORT") != NULL) {
		char answer[256];
		int port = atoi(getenv("BENCH_SETUP_PORT"));

		t0 = now();
		if (setup_send("127.0.0.1", port, line.p, line.len, 300, answer,
		    sizeof(answer), err, sizeof(err)) == -1)
			printf("send to spamd port %d: %s\n", port, err);
		else
			printf("send to spamd port %d and its rebuild: %.3f s, "
			    "answer \"%s\"\n", port, now() - t0, answer);
		/* clear it again */
		setup_send("127.0.0.1", port, "bench;\n", 7, 60, answer,
		    sizeof(answer), err, sizeof(err));
	}

	/* what the engine does with the line */
	t0 = now();
	l = bl_parse(line.p, line.len - 1, err, sizeof(err));
	t_blp = now() - t0;
	if (l == NULL) {
		fprintf(stderr, "engine parse: %s\n", err);
		return 1;
	}
	set = bl_set_new();
	t0 = now();
	if (bl_set_apply(set, l, err, sizeof(err)) == -1) {
		fprintf(stderr, "engine apply: %s\n", err);
		return 1;
	}
	t_apply = now() - t0;
	setup_buf_free(&line);
	hits = 0;
	memset(&ad, 0, sizeof(ad));
	ad.family = AF_INET;
	t0 = now();
	for (i = 0; i < NLOOKUPS; i++) {
		uint32_t v = (uint32_t)rng();

		ad.a[0] = (uint8_t)(v >> 24);
		ad.a[1] = (uint8_t)(v >> 16);
		ad.a[2] = (uint8_t)(v >> 8);
		ad.a[3] = (uint8_t)v;
		hits += bl_lookup(set, &ad, &m);
	}
	t_lk = now() - t0;
	printf("engine: parse %.3f s, rebuild %.3f s, %.1f MiB held; "
	    "%.2f M lookups/s (random IPv4, %.1f%% listed); peak RSS %.1f MiB\n",
	    t_blp, t_apply, bl_memory(set) / 1048576.0, NLOOKUPS / t_lk / 1e6,
	    100.0 * hits / NLOOKUPS, peak_mib());
	bl_set_free(set);

	/* baseline: naive sorted insertion vs sort-then-merge, 100,000 */
	rng_state = 0x1234567;
	gen(&text, BASELINE_N);
	setup_list_parse(text.p, text.len, "base", &base, warn_count, &warns,
	    &nbad);
	t0 = now();
	for (i = 0; i < base.n4; i++)
		baseline_insert(&bv, &bn, &bcap, base.v4[i].lo, base.v4[i].hi);
	t_base = now() - t0;
	t0 = now();
	setup_collapse(&base);
	t_ours = now() - t0;
	printf("baseline (%d entries): naive insertion %.3f s, sort+merge "
	    "%.4f s, %.0fx faster; results %s (%zu ranges)\n", BASELINE_N,
	    t_base, t_ours, t_base / (t_ours > 0 ? t_ours : 1e-9),
	    bn == base.n4 && memcmp(bv, base.v4, bn * sizeof(*bv)) == 0 ?
	    "equal" : "DIFFER", bn);
	free(bv);
	setup_addrs_free(&base);
	setup_addrs_free(&a);
	setup_addrs_free(&w);
	setup_buf_free(&text);
	return 0;
}
