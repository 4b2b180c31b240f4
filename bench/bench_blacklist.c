/*
 * bench_blacklist.c - blacklist load and lookup speed.
 *
 * Builds 1,000,000 random IPv4 prefixes (lengths 8-32) in 4 lists sent as
 * control messages, then 100,000 IPv6 prefixes (lengths 16-64 inside
 * 2000::/3), and prints parse and build times, memory, and lookups per
 * second for random addresses on one core, against a baseline run in the
 * same process: one hash table per prefix length, probed for every length
 * (what a naive longest-prefix match does). Both answers are compared.
 *
 *   build/bench/bench_blacklist [ipv4-prefixes]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spamd/common/blacklist.h"

#define NLISTS		4
#define NLOOKUPS	20000000UL

/* now - monotonic seconds */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

/* The baseline: per prefix length, an open-addressing table of masked
 * addresses (top 64 bits for IPv6) with the mask of lists holding them. */
struct base_tab {
	uint64_t	*key;
	uint64_t	*lists;
	size_t		 size;		/* power of two */
	size_t		 n;
};

struct base {
	struct base_tab	 t[129];
	int		 len[129];	/* lengths present, longest first */
	int		 nlen;
};

/* base_hash - mix a key */
static size_t
base_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return (size_t)k;
}

/* base_add - record that list li holds key at length bits */
static void
base_add(struct base *b, int bits, uint64_t key, int li)
{
	struct base_tab *t = &b->t[bits];
	size_t i, j, osize;
	uint64_t *ok, *ol;

	if (t->size == 0 || t->n * 2 >= t->size) {
		osize = t->size;
		ok = t->key;
		ol = t->lists;
		t->size = osize == 0 ? 1024 : osize * 2;
		t->key = calloc(t->size, sizeof(*t->key));
		t->lists = calloc(t->size, sizeof(*t->lists));
		if (t->key == NULL || t->lists == NULL) {
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
		t->n = 0;
		for (i = 0; i < osize; i++)
			if (ol[i] != 0)
				for (j = base_hash(ok[i]) & (t->size - 1);;
				    j = (j + 1) & (t->size - 1))
					if (t->lists[j] == 0) {
						t->key[j] = ok[i];
						t->lists[j] = ol[i];
						t->n++;
						break;
					}
		free(ok);
		free(ol);
	}
	for (j = base_hash(key) & (t->size - 1);; j = (j + 1) & (t->size - 1)) {
		if (t->lists[j] == 0) {
			t->key[j] = key;
			t->lists[j] = (uint64_t)1 << li;
			t->n++;
			return;
		}
		if (t->key[j] == key) {
			t->lists[j] |= (uint64_t)1 << li;
			return;
		}
	}
}

/* base_index - note which lengths are in use */
static void
base_index(struct base *b, int maxbits)
{
	int i;

	b->nlen = 0;
	for (i = maxbits; i >= 0; i--)
		if (b->t[i].n > 0)
			b->len[b->nlen++] = i;
}

/* base_lookup - probe every length; key is the address (top 64 bits) */
static uint64_t
base_lookup(const struct base *b, uint64_t a, int width)
{
	uint64_t m = 0, key;
	size_t j;
	int i, bits;

	for (i = 0; i < b->nlen; i++) {
		const struct base_tab *t = &b->t[b->len[i]];

		bits = b->len[i];
		key = bits == 0 ? 0 : a & (UINT64_MAX << (width - bits));
		for (j = base_hash(key) & (t->size - 1); t->lists[j] != 0;
		    j = (j + 1) & (t->size - 1))
			if (t->key[j] == key) {
				m |= t->lists[j];
				break;
			}
	}
	return m;
}

/* base_free - free the baseline tables */
static void
base_free(struct base *b)
{
	int i;

	for (i = 0; i < 129; i++) {
		free(b->t[i].key);
		free(b->t[i].lists);
	}
}

/* load - parse and apply messages, returning parse and apply seconds */
static void
load(struct bl_set *set, char **msg, size_t *len, double *tparse,
    double *tapply)
{
	struct bl_list *l[NLISTS];
	char err[256];
	double t0;
	int i;

	t0 = now();
	for (i = 0; i < NLISTS; i++)
		if ((l[i] = bl_parse(msg[i], len[i], err, sizeof(err))) ==
		    NULL) {
			fprintf(stderr, "parse: %s\n", err);
			exit(1);
		}
	*tparse = now() - t0;
	t0 = now();
	for (i = 0; i < NLISTS; i++)
		if (bl_set_apply(set, l[i], err, sizeof(err)) == -1) {
			fprintf(stderr, "apply: %s\n", err);
			exit(1);
		}
	*tapply = now() - t0;
}

/*
 * v4_bits - a prefix length in 8..32: uniform, or (skewed) 32 minus a
 * geometric number (p = 0.3), so long prefixes dominate as in real lists
 * and the lists cover part of the space instead of all of it.
 */
static int
v4_bits(int skewed)
{
	int bits = 32;

	if (!skewed)
		return 8 + (int)(rng() % 25);
	while (bits > 8 && rng() % 10 >= 3)
		bits--;
	return bits;
}

/* bench_v4 - lookups/s of the set and the baseline for random addresses */
static void
bench_v4(long nprefix, int skewed)
{
	const char *label = skewed ? "ipv4 skewed" : "ipv4 uniform";

	struct bl_set *set = bl_set_new();
	struct base *b = calloc(1, sizeof(*b));
	char *msg[NLISTS], ntop[INET_ADDRSTRLEN];
	size_t len[NLISTS], cap, per;
	struct bl_addr a = { .family = AF_INET };
	struct bl_match m;
	double tparse, tapply, t0, tours, tbase, trebuild;
	unsigned long i, hits = 0, bhits = 0, disagree = 0;
	uint32_t addr, mask;
	int li, bits, nl;
	long np;

	per = (size_t)nprefix / NLISTS;
	for (li = 0; li < NLISTS; li++) {
		cap = per * 20 + 64;
		if ((msg[li] = malloc(cap)) == NULL)
			exit(1);
		len[li] = (size_t)snprintf(msg[li], cap, "list%d;\"Listed "
		    "by list%d: %%A\";inet;%zu", li, li, per);
		for (i = 0; i < per; i++) {
			addr = (uint32_t)rng();
			bits = v4_bits(skewed);
			mask = UINT32_MAX << (32 - bits);
			base_add(b, bits, addr & mask, li);
			addr = htonl(addr);
			inet_ntop(AF_INET, &addr, ntop, sizeof(ntop));
			len[li] += (size_t)snprintf(msg[li] + len[li],
			    cap - len[li], ";%s/%d", ntop, bits);
		}
	}
	base_index(b, 32);
	load(set, msg, len, &tparse, &tapply);
	/* one more full rebuild: the cost of reloading one list */
	{
		char err[256];
		struct bl_list *l = bl_parse(msg[0], len[0], err, sizeof(err));

		t0 = now();
		if (l == NULL || bl_set_apply(set, l, err, sizeof(err)) == -1)
			exit(1);
		trebuild = now() - t0;
	}
	bl_count(set, &nl, &np);
	printf("%s: %d lists, %ld prefixes (lengths 8-32, %s)\n", label, nl,
	    np, skewed ? "mostly long" : "uniform");
	printf("%s: parse %.3f s, apply %d lists %.3f s, one rebuild "
	    "%.3f s\n", label, tparse, NLISTS, tapply, trebuild);
	printf("%s: memory %.1f MB (%.1f bytes/prefix)\n", label,
	    (double)bl_memory(set) / 1048576,
	    (double)bl_memory(set) / (double)np);

	rng_state = 12345;
	t0 = now();
	for (i = 0; i < NLOOKUPS; i++) {
		addr = (uint32_t)rng();
		a.a[0] = (uint8_t)(addr >> 24);
		a.a[1] = (uint8_t)(addr >> 16);
		a.a[2] = (uint8_t)(addr >> 8);
		a.a[3] = (uint8_t)addr;
		hits += (unsigned long)bl_lookup(set, &a, &m);
	}
	tours = now() - t0;
	rng_state = 12345;
	t0 = now();
	for (i = 0; i < NLOOKUPS / 20; i++) {
		addr = (uint32_t)rng();
		bhits += (unsigned long)__builtin_popcountll(
		    base_lookup(b, (uint64_t)addr, 32));
	}
	tbase = now() - t0;
	/* compare answers on the baseline's share of the addresses */
	rng_state = 12345;
	for (i = 0; i < NLOOKUPS / 20; i++) {
		addr = (uint32_t)rng();
		a.a[0] = (uint8_t)(addr >> 24);
		a.a[1] = (uint8_t)(addr >> 16);
		a.a[2] = (uint8_t)(addr >> 8);
		a.a[3] = (uint8_t)addr;
		if (bl_lookup(set, &a, &m) != __builtin_popcountll(
		    base_lookup(b, (uint64_t)addr, 32)))
			disagree++;
	}
	printf("%s: ranges index %.1f M lookups/s (%lu lookups, %.2f "
	    "matches each)\n", label, NLOOKUPS / tours / 1e6, NLOOKUPS,
	    (double)hits / NLOOKUPS);
	printf("%s: baseline per-length hash %.1f M lookups/s (%lu "
	    "lookups, %d lengths)\n", label, NLOOKUPS / 20 / tbase / 1e6,
	    NLOOKUPS / 20, b->nlen);
	printf("%s: ratio %.1fx, answers disagree on %lu of %lu\n", label,
	    (NLOOKUPS / tours) / (NLOOKUPS / 20 / tbase), disagree,
	    NLOOKUPS / 20);
	(void)bhits;
	for (li = 0; li < NLISTS; li++)
		free(msg[li]);
	base_free(b);
	free(b);
	bl_set_free(set);
}

/* bench_v6 - the same for IPv6 prefixes inside 2000::/3 */
static void
bench_v6(long nprefix)
{
	struct bl_set *set = bl_set_new();
	struct base *b = calloc(1, sizeof(*b));
	char *msg[NLISTS], ntop[INET6_ADDRSTRLEN];
	size_t len[NLISTS], cap, per;
	struct bl_addr a = { .family = AF_INET6 };
	struct bl_match m;
	double tparse, tapply, t0, tours, tbase;
	unsigned long i, n = NLOOKUPS / 4, disagree = 0;
	uint64_t hi, lo;
	int li, bits, k, nl;
	long np;

	per = (size_t)nprefix / NLISTS;
	for (li = 0; li < NLISTS; li++) {
		cap = per * 48 + 64;
		if ((msg[li] = malloc(cap)) == NULL)
			exit(1);
		len[li] = (size_t)snprintf(msg[li], cap, "six%d;\"Listed\";"
		    "inet6;%zu", li, per);
		for (i = 0; i < per; i++) {
			uint8_t a6[16];

			/* 2000::/3 with the first 32 bits from a small
			 * pool, as real allocations cluster */
			hi = (0x2000ULL + rng() % 4096) << 48 |
			    (rng() % 65536) << 32 | (rng() & 0xffffffffULL);
			bits = 16 + (int)(rng() % 49);
			hi &= UINT64_MAX << (64 - bits);
			base_add(b, bits, hi, li);
			for (k = 0; k < 8; k++) {
				a6[k] = (uint8_t)(hi >> (56 - 8 * k));
				a6[8 + k] = 0;
			}
			inet_ntop(AF_INET6, a6, ntop, sizeof(ntop));
			len[li] += (size_t)snprintf(msg[li] + len[li],
			    cap - len[li], ";%s/%d", ntop, bits);
		}
	}
	base_index(b, 64);
	load(set, msg, len, &tparse, &tapply);
	bl_count(set, &nl, &np);
	printf("ipv6: %d lists, %ld prefixes (lengths 16-64 in 2000::/3)\n",
	    nl, np);
	printf("ipv6: parse %.3f s, apply %d lists %.3f s, memory %.1f MB\n",
	    tparse, NLISTS, tapply, (double)bl_memory(set) / 1048576);

	rng_state = 777;
	t0 = now();
	for (i = 0; i < n; i++) {
		hi = (0x2000ULL + rng() % 4096) << 48 | (rng() % 65536) << 32 |
		    (rng() & 0xffffffffULL);
		lo = rng();
		for (k = 0; k < 8; k++) {
			a.a[k] = (uint8_t)(hi >> (56 - 8 * k));
			a.a[8 + k] = (uint8_t)(lo >> (56 - 8 * k));
		}
		bl_lookup(set, &a, &m);
	}
	tours = now() - t0;
	rng_state = 777;
	t0 = now();
	for (i = 0; i < n / 20; i++) {
		hi = (0x2000ULL + rng() % 4096) << 48 | (rng() % 65536) << 32 |
		    (rng() & 0xffffffffULL);
		lo = rng();
		(void)lo;
		if (__builtin_popcountll(base_lookup(b, hi, 64)) < 0)
			exit(1);
	}
	tbase = now() - t0;
	rng_state = 777;
	for (i = 0; i < n / 20; i++) {
		hi = (0x2000ULL + rng() % 4096) << 48 | (rng() % 65536) << 32 |
		    (rng() & 0xffffffffULL);
		lo = rng();
		for (k = 0; k < 8; k++) {
			a.a[k] = (uint8_t)(hi >> (56 - 8 * k));
			a.a[8 + k] = (uint8_t)(lo >> (56 - 8 * k));
		}
		if (bl_lookup(set, &a, &m) !=
		    __builtin_popcountll(base_lookup(b, hi, 64)))
			disagree++;
	}
	printf("ipv6: ranges index %.1f M lookups/s, baseline per-length hash "
	    "%.1f M lookups/s (%d lengths), ratio %.1fx, answers disagree "
	    "on %lu of %lu\n", n / tours / 1e6, n / 20 / tbase / 1e6, b->nlen,
	    (n / tours) / (n / 20 / tbase), disagree, n / 20);
	for (li = 0; li < NLISTS; li++)
		free(msg[li]);
	base_free(b);
	free(b);
	bl_set_free(set);
}

int
main(int argc, char *argv[])
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;

	if (n < NLISTS || n > 20000000) {
		fprintf(stderr, "usage: bench_blacklist [ipv4-prefixes]\n");
		return 1;
	}
	bench_v4(n, 0);
	bench_v4(n, 1);
	bench_v6(100000);
	return 0;
}
