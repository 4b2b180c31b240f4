/*
 * engine_budget.c - the -c and -B budgets shared by all -W engines
 * (engine.h): one anonymous MAP_SHARED page made by the master before it
 * forks the engines, holding C11 atomics.
 *
 * Design: a daemon-wide count of open connections taken by
 * compare-and-swap before each accept, so -c holds exactly even when two
 * engines accept at the same moment (summing per-engine counts on each
 * decision would let N engines overshoot by up to N - 1), and one count of
 * tarpitted (blacklisted) connections for -B, which only decides whether a
 * new one is stuttered, so a plain add is enough there. Each engine also
 * keeps its own counts in its own slot (what it holds now), for the stats
 * line and so the master can see what a dead engine held.
 *
 * Restarts: the master starts engines again only after every engine and
 * the writer have been reaped (main_supervise returns when none is
 * alive), so it resets the whole page then (engine_budget_reset): counts
 * of dead engines never leak into the new ones' budget.
 *
 * --max-per-client (daemon-wide, not per engine): a fixed table of
 * ENGINE_BUDGET_CLIENT_ROWS x ENGINE_BUDGET_CLIENT_BUCKETS counts on the
 * same page. A client is its IPv4 /32 or its IPv6 prefix (/64 by default,
 * --per-client-prefix6), hashed with a seed drawn at start (so nobody
 * outside can aim at another client's buckets) to one bucket per row. A
 * connection adds one to each of its buckets first, then is admitted only
 * if the smallest of them is still <= the cap, else it takes its adds back
 * (count-min sketch). Why: lock-free with plain fetch-adds (an engine
 * killed mid-way cannot hold a lock the others spin on), exact against the
 * client itself (every in-flight connection of a client is already in all
 * its buckets when it is checked, so two engines accepting at once cannot
 * both pass the cap), and nothing fills up: clients that share every one
 * of their buckets share a cap, which is only ever stricter, never looser.
 * Counts of a dead engine stay until the master's reset (all engines are
 * gone then), as for -c.
 *
 * The atomics must be lock-free: only those are address-free, i.e. work
 * between processes sharing the page.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "spamd/engine/engine.h"

_Static_assert(ATOMIC_INT_LOCK_FREE == 2,
    "engine_budget needs lock-free (address-free) atomic_int");

/* One engine's own counts, a cache line of their own: an engine's
 * writes do not bounce the line another engine is writing. */
struct engine_budget_slot {
	_Alignas(64) atomic_int	 conns;
	atomic_int		 black;
};

struct engine_budget {
	_Alignas(64) atomic_int	 conns;	/* daemon-wide: reserved + open */
	atomic_int		 black;	/* daemon-wide tarpitted ones */
	int			 maxcon;	/* -c */
	int			 maxblack;	/* -B */
	int			 nslots;	/* -W */
	int			 per_client;	/* --max-per-client, 0 = off */
	int			 prefix6;	/* --per-client-prefix6 */
	uint64_t		 seed;		/* bucket hash key */
	struct engine_budget_slot slot[ENGINE_BUDGET_SLOTS];
	atomic_int		 client[ENGINE_BUDGET_CLIENT_ROWS]
				    [ENGINE_BUDGET_CLIENT_BUCKETS];
};

/* engine_budget_new - the shared page for nslots engines (master, before
 * forking them); NULL on error (errno set) */
struct engine_budget *
engine_budget_new(int nslots, int maxcon, int maxblack)
{
	struct engine_budget *b;

	if (nslots < 1 || nslots > ENGINE_BUDGET_SLOTS)
		return NULL;
	b = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED)
		return NULL;
	b->maxcon = maxcon;
	b->maxblack = maxblack;
	b->nslots = nslots;
	engine_budget_reset(b);
	return b;
}

/* engine_budget_reset - zero every count; only while no engine runs */
void
engine_budget_reset(struct engine_budget *b)
{
	int i;

	if (b == NULL)
		return;
	atomic_store(&b->conns, 0);
	atomic_store(&b->black, 0);
	for (i = 0; i < ENGINE_BUDGET_SLOTS; i++) {
		atomic_store(&b->slot[i].conns, 0);
		atomic_store(&b->slot[i].black, 0);
	}
	for (i = 0; i < ENGINE_BUDGET_CLIENT_ROWS *
	    ENGINE_BUDGET_CLIENT_BUCKETS; i++)
		atomic_store(&b->client[i / ENGINE_BUDGET_CLIENT_BUCKETS]
		    [i % ENGINE_BUDGET_CLIENT_BUCKETS], 0);
}

/* engine_budget_free - unmap the page; NULL is ignored */
void
engine_budget_free(struct engine_budget *b)
{
	if (b != NULL)
		(void)munmap(b, sizeof(*b));
}

/* engine_budget_take - reserve one connection of -c for engine slot;
 * 1: taken (give it back with engine_budget_put), 0: -c is full */
int
engine_budget_take(struct engine_budget *b, int slot)
{
	int n = atomic_load_explicit(&b->conns, memory_order_relaxed);

	do {
		if (n >= b->maxcon)
			return 0;
	} while (!atomic_compare_exchange_weak_explicit(&b->conns, &n, n + 1,
	    memory_order_relaxed, memory_order_relaxed));
	atomic_fetch_add_explicit(&b->slot[slot].conns, 1,
	    memory_order_relaxed);
	return 1;
}

/* engine_budget_put - give back one connection engine slot took */
void
engine_budget_put(struct engine_budget *b, int slot)
{
	atomic_fetch_sub_explicit(&b->slot[slot].conns, 1,
	    memory_order_relaxed);
	atomic_fetch_sub_explicit(&b->conns, 1, memory_order_relaxed);
}

/* engine_budget_full - 1 if -c is reached daemon-wide now */
int
engine_budget_full(const struct engine_budget *b)
{
	return atomic_load_explicit(&b->conns, memory_order_relaxed) >=
	    b->maxcon;
}

/* engine_budget_black - engine slot's tarpitted count changes by delta */
void
engine_budget_black(struct engine_budget *b, int slot, int delta)
{
	atomic_fetch_add_explicit(&b->slot[slot].black, delta,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&b->black, delta, memory_order_relaxed);
}

/* engine_budget_black_full - 1 if -B tarpitted connections are open
 * daemon-wide (new ones are then not stuttered) */
int
engine_budget_black_full(const struct engine_budget *b)
{
	return atomic_load_explicit(&b->black, memory_order_relaxed) >=
	    b->maxblack;
}

/* engine_budget_counts - the daemon-wide open and tarpitted counts */
void
engine_budget_counts(const struct engine_budget *b, int *conns, int *black)
{
	*conns = atomic_load_explicit(&b->conns, memory_order_relaxed);
	*black = atomic_load_explicit(&b->black, memory_order_relaxed);
}

/* engine_budget_clients - set --max-per-client (0 = off) and the IPv6
 * prefix length a client is counted by (master, before forking) */
void
engine_budget_clients(struct engine_budget *b, int max, int prefix6)
{
	b->per_client = max;
	b->prefix6 = prefix6 < 1 ? 64 : prefix6 > 128 ? 128 : prefix6;
	b->seed = ((uint64_t)arc4random() << 32) | arc4random();
}

/* engine_budget_mix - splitmix64's finaliser: spreads every input bit */
static uint64_t
engine_budget_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* engine_budget_buckets - the client's bucket in each row: addr cut to
 * /32 (IPv4) or the IPv6 prefix, hashed with the seed */
static void
engine_budget_buckets(const struct engine_budget *b, const struct bl_addr *a,
    unsigned idx[ENGINE_BUDGET_CLIENT_ROWS])
{
	uint8_t k[16];
	uint64_t w[2], h;
	int bits, i;

	memset(k, 0, sizeof(k));
	bits = a->family == AF_INET6 ? b->prefix6 : 32;
	memcpy(k, a->a, (size_t)bits / 8);
	if (bits % 8 != 0)
		k[bits / 8] = a->a[bits / 8] & (uint8_t)(0xff << (8 - bits % 8));
	memcpy(w, k, sizeof(w));
	h = engine_budget_mix(b->seed ^ (uint64_t)a->family);
	h = engine_budget_mix(h ^ w[0]);
	h = engine_budget_mix(h ^ w[1]);
	for (i = 0; i < ENGINE_BUDGET_CLIENT_ROWS; i++) {
		idx[i] = (unsigned)(h % ENGINE_BUDGET_CLIENT_BUCKETS);
		h = engine_budget_mix(h + (uint64_t)i + 1);
	}
}

/* engine_budget_client_take - one more connection of a's client; 1:
 * admitted (give it back with engine_budget_client_put), 0: the client
 * holds --max-per-client already; always 1 when the cap is off */
int
engine_budget_client_take(struct engine_budget *b, const struct bl_addr *a)
{
	unsigned idx[ENGINE_BUDGET_CLIENT_ROWS];
	int i, n, least = -1;

	if (b->per_client <= 0)
		return 1;
	engine_budget_buckets(b, a, idx);
	for (i = 0; i < ENGINE_BUDGET_CLIENT_ROWS; i++) {
		n = atomic_fetch_add_explicit(&b->client[i][idx[i]], 1,
		    memory_order_relaxed) + 1;
		if (least == -1 || n < least)
			least = n;
	}
	if (least <= b->per_client)
		return 1;
	for (i = 0; i < ENGINE_BUDGET_CLIENT_ROWS; i++)
		atomic_fetch_sub_explicit(&b->client[i][idx[i]], 1,
		    memory_order_relaxed);
	return 0;
}

/* engine_budget_client_put - a's client closed one admitted connection */
void
engine_budget_client_put(struct engine_budget *b, const struct bl_addr *a)
{
	unsigned idx[ENGINE_BUDGET_CLIENT_ROWS];
	int i;

	if (b->per_client <= 0)
		return;
	engine_budget_buckets(b, a, idx);
	for (i = 0; i < ENGINE_BUDGET_CLIENT_ROWS; i++)
		atomic_fetch_sub_explicit(&b->client[i][idx[i]], 1,
		    memory_order_relaxed);
}
