/*
 * grey_cap.c - (added) the writer's count of new GREY tuples per client
 * address, for --max-new-tuples (see grey.h, "Bounds on new tuples").
 *
 * One fixed table, allocated once: GREY_CAP_SLOTS slots in sets of
 * GREY_CAP_WAYS, an address's set chosen by a hash keyed with a random
 * seed (a sender cannot pick addresses that land in one set). A slot
 * counts one IPv4 address (/32) or one IPv6 /64 for a window of
 * GREY_CAP_WINDOW seconds from its first tuple; when the window is over
 * the count starts again from 0. A new address takes an empty slot of
 * its set, one whose window is over or one that counted no new tuple
 * (the writer looks every client of a batch up, also those whose tuples
 * turn out known), or else the slot of its set whose window started
 * first: that address's count is forgotten (counted in evicted), so it
 * may store up to another --max-new-tuples. So the
 * bound holds for every address while fewer addresses than the table's
 * sets can hold made new tuples within the hour; past that, an address
 * evicted may store its quota again, never more than the table's worth
 * at a time. Memory: GREY_CAP_SLOTS * 32 bytes (2 MiB), whatever the
 * senders do.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spamd/writer/grey.h"

/* One counted address or /64. */
struct grey_cap_slot {
	uint64_t	 key;		/* the address (v4) or the /64 (v6) */
	int64_t		 start;		/* window start; 0 = empty slot */
	uint32_t	 count;		/* new tuples stored in the window */
	uint32_t	 batch;		/* grey_cap_batch stamp when taken */
	uint8_t		 v6;
	uint8_t		 logged;	/* the cap was logged this window */
};

struct grey_cap {
	struct grey_cap_slot *slot;
	uint32_t	 nsets;		/* a power of two */
	uint32_t	 batch;		/* current stamp, never 0 */
	uint64_t	 seed;
	int		 max;		/* new tuples per window */
	int64_t		 window;	/* seconds */
	long		 capped;	/* windows that hit the cap */
	long		 evicted;	/* live windows forgotten for room */
};

/* grey_cap_mix - a 64-bit finaliser (splitmix64's) */
static uint64_t
grey_cap_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* grey_cap_new - the table (see grey.h) */
struct grey_cap *
grey_cap_new(int max, int window_secs, unsigned nslots)
{
	struct grey_cap *c;
	unsigned sets = 1;

	if (max < 1 || window_secs < 1 || nslots < GREY_CAP_WAYS)
		return NULL;
	while (sets * 2 <= nslots / GREY_CAP_WAYS)
		sets *= 2;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->slot = calloc((size_t)sets * GREY_CAP_WAYS,
	    sizeof(*c->slot))) == NULL) {
		free(c);
		return NULL;
	}
	c->nsets = sets;
	c->batch = 1;
	c->seed = ((uint64_t)arc4random() << 32) | arc4random();
	c->max = max;
	c->window = window_secs;
	return c;
}

/* grey_cap_free - free the table; NULL is ignored */
void
grey_cap_free(struct grey_cap *c)
{
	if (c == NULL)
		return;
	free(c->slot);
	free(c);
}

/* grey_cap_batch - a new batch: the slots taken so far may be evicted
 * again */
void
grey_cap_batch(struct grey_cap *c)
{
	if (++c->batch == 0)
		c->batch = 1;
}

/* grey_cap_key - ip (canonical text) as the counted key: the IPv4
 * address, or the first 64 bits of an IPv6 one (an IPv4-mapped IPv6
 * address counts as its IPv4 address); -1 if ip does not parse */
static int
grey_cap_key(const char *ip, uint64_t *key, uint8_t *v6)
{
	unsigned char a[16];
	int i;

	if (strchr(ip, ':') == NULL) {
		if (inet_pton(AF_INET, ip, a) != 1)
			return -1;
		*key = (uint64_t)a[0] << 24 | (uint64_t)a[1] << 16 |
		    (uint64_t)a[2] << 8 | a[3];
		*v6 = 0;
		return 0;
	}
	if (inet_pton(AF_INET6, ip, a) != 1)
		return -1;
	/* ::ffff:a.b.c.d */
	if (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
		*key = (uint64_t)a[12] << 24 | (uint64_t)a[13] << 16 |
		    (uint64_t)a[14] << 8 | a[15];
		*v6 = 0;
		return 0;
	}
	*key = 0;
	for (i = 0; i < 8; i++)
		*key = *key << 8 | a[i];
	*v6 = 1;
	return 0;
}

/* grey_cap_get - the slot counting ip at now (see grey.h) */
struct grey_cap_slot *
grey_cap_get(struct grey_cap *c, const char *ip, int64_t now)
{
	struct grey_cap_slot *set, *s, *pick = NULL;
	uint64_t key;
	uint8_t v6;
	int i;

	if (grey_cap_key(ip, &key, &v6) == -1)
		return NULL;
	set = &c->slot[(size_t)(grey_cap_mix(key ^ c->seed ^
	    (v6 ? 0x9e3779b97f4a7c15ULL : 0)) & (c->nsets - 1)) *
	    GREY_CAP_WAYS];
	for (i = 0; i < GREY_CAP_WAYS; i++) {
		s = &set[i];
		if (s->start == 0 || s->key != key || s->v6 != v6)
			continue;
		if (now - s->start >= c->window || now < s->start) {
			/* the window is over (or the clock went back) */
			s->start = now > 0 ? now : 1;
			s->count = 0;
			s->logged = 0;
		}
		s->batch = c->batch;
		return s;
	}
	/* a free slot, one whose window is over, or one that counts no
	 * new tuple (a client whose tuples were all known): nothing is lost
	 * (but never a slot taken in this batch) */
	for (i = 0; i < GREY_CAP_WAYS && pick == NULL; i++) {
		s = &set[i];
		if (s->start == 0 || now - s->start >= c->window ||
		    now < s->start || (s->count == 0 && s->batch != c->batch))
			pick = s;
	}
	/* else the oldest window not taken in this batch */
	for (i = 0; i < GREY_CAP_WAYS && pick == NULL; i++) {
		if (set[i].batch == c->batch)
			continue;
		if (pick == NULL || set[i].start < pick->start)
			pick = &set[i];
	}
	if (pick == NULL)
		return NULL;
	if (pick->start != 0 && now - pick->start < c->window &&
	    now >= pick->start && pick->count > 0)
		c->evicted++;
	pick->key = key;
	pick->v6 = v6;
	pick->start = now > 0 ? now : 1;
	pick->count = 0;
	pick->logged = 0;
	pick->batch = c->batch;
	return pick;
}

/* grey_cap_left - new tuples s may still store in its window */
int
grey_cap_left(const struct grey_cap *c, const struct grey_cap_slot *s)
{
	if (s == NULL)
		return 0;
	return s->count >= (uint32_t)c->max ? 0 : c->max - (int)s->count;
}

/* grey_cap_used - stored new tuples were written, refused were not;
 * 1 when this is the window's first refusal (the caller logs it) */
int
grey_cap_used(struct grey_cap *c, struct grey_cap_slot *s, int stored,
    int refused)
{
	if (s == NULL)
		return 0;
	if (stored > 0)
		s->count += (uint32_t)stored;
	if (refused <= 0 || s->logged)
		return 0;
	s->logged = 1;
	c->capped++;
	return 1;
}

/* grey_cap_prefix - what s counts, as text: "a.b.c.d/32", "x:y::/64" */
const char *
grey_cap_prefix(const struct grey_cap_slot *s, char *buf, size_t bufsz)
{
	unsigned char a[16];
	char txt[INET6_ADDRSTRLEN];
	int i;

	memset(a, 0, sizeof(a));
	if (!s->v6) {
		for (i = 0; i < 4; i++)
			a[i] = (unsigned char)(s->key >> (24 - 8 * i));
		inet_ntop(AF_INET, a, txt, sizeof(txt));
		snprintf(buf, bufsz, "%s/32", txt);
	} else {
		for (i = 0; i < 8; i++)
			a[i] = (unsigned char)(s->key >> (56 - 8 * i));
		inet_ntop(AF_INET6, a, txt, sizeof(txt));
		snprintf(buf, bufsz, "%s/64", txt);
	}
	return buf;
}

/* grey_cap_counts - live windows with new tuples, windows capped and
 * evicted so far */
void
grey_cap_counts(const struct grey_cap *c, int64_t now, long *live,
    long *capped, long *evicted)
{
	size_t i, n;

	*live = *capped = *evicted = 0;
	if (c == NULL)
		return;
	n = (size_t)c->nsets * GREY_CAP_WAYS;
	for (i = 0; i < n; i++)
		if (c->slot[i].start != 0 && c->slot[i].count > 0 &&
		    now - c->slot[i].start < c->window &&
		    now >= c->slot[i].start)
			(*live)++;
	*capped = c->capped;
	*evicted = c->evicted;
}
