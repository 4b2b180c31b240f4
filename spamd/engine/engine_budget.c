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
 * The atomics must be lock-free: only those are address-free, i.e. work
 * between processes sharing the page.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <sys/mman.h>

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
	struct engine_budget_slot slot[ENGINE_BUDGET_SLOTS];
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
