/*
 * sync_replay.c - per-peer-address replay windows for received sync
 * packets. The rule is documented above psync_replay_check in sync.h; in
 * short: per source address (never the port) up to STREAMS 64-packet
 * sliding windows over counters (serial arithmetic, so the wrap at 2^32
 * is harmless), a counter near no window opens a window only with
 * timestamps no older than anything accepted from the address (and, for
 * an address we know nothing of, no older than our start), and an age
 * limit on timestamps.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/tree.h>

/* libbsd's RB_GENERATE_STATIC marks functions __unused, which glibc lacks. */
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif
#include <netinet/in.h>

#include "pf-sync/sync.h"

#define WINDOW		64
#define NEAR		65536	/* a counter this close belongs to a stream */
#define STREAMS		PSYNC_REPLAY_STREAMS
#define MAX_PEERS	1024

/* One sender's counter sequence at an address. */
struct stream {
	int		 used;
	uint32_t	 highest;	/* highest counter accepted */
	uint64_t	 seen;		/* bit i: highest - i was accepted */
	int64_t		 heard;		/* local time of the last accept */
};

struct peer {
	RB_ENTRY(peer)	 entry;
	uint8_t		 addr[17];	/* af byte, 4 or 16 bytes */
	struct stream	 s[STREAMS];
	uint32_t	 last_ts;	/* newest TLV timestamp accepted */
	int64_t		 heard;		/* local time of the last accept */
};

/* peer_cmp - order peers by family and address bytes */
static int
peer_cmp(const struct peer *a, const struct peer *b)
{
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

RB_HEAD(peer_tree, peer);
RB_GENERATE_STATIC(peer_tree, peer, entry, peer_cmp)

struct psync_replay {
	struct peer_tree peers;
	size_t		 npeers, max_peers;
	int64_t		 max_age;
	int64_t		 since;		/* first packets: ts_min >= since */
};

/* psync_replay_new - an empty table */
struct psync_replay *
psync_replay_new(size_t max_peers, int64_t max_age)
{
	struct psync_replay *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	RB_INIT(&r->peers);
	r->max_peers = max_peers > 0 ? max_peers : MAX_PEERS;
	r->max_age = max_age;
	return r;
}

/* psync_replay_free - free the table and its peers */
void
psync_replay_free(struct psync_replay *r)
{
	struct peer *p, *nx;

	if (r == NULL)
		return;
	RB_FOREACH_SAFE(p, peer_tree, &r->peers, nx) {
		RB_REMOVE(peer_tree, &r->peers, p);
		free(p);
	}
	free(r);
}

/* psync_replay_peers - how many peers the table holds */
size_t
psync_replay_peers(const struct psync_replay *r)
{
	return r->npeers;
}

/*
 * peer_key - the lookup key of a source: its address only; -1 if not IP.
 * Not the port: a captured packet resent from another port must meet the
 * window its counter was seen in. Several senders on one address (spamd
 * and greylogd, OpenBSD's spamd and spamlogd) are told apart by their
 * counters instead (streams).
 */
static int
peer_key(const struct sockaddr *sa, uint8_t key[17])
{
	const struct sockaddr_in *sin = (const void *)sa;
	const struct sockaddr_in6 *sin6 = (const void *)sa;

	memset(key, 0, 17);
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &sin->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		key[0] = 6;
		memcpy(key + 1, &sin6->sin6_addr, 16);
		return 0;
	}
	return -1;
}

/* psync_replay_since - packets opening a window for an address we hold
 * nothing of must carry timestamps >= since (0 = no such rule) */
void
psync_replay_since(struct psync_replay *r, int64_t since)
{
	r->since = since;
}

/* evict_oldest - forget the peer heard least recently */
static void
evict_oldest(struct psync_replay *r)
{
	struct peer *p, *old = NULL;

	/* Linear, but only when the table is full (an unusual event). */
	RB_FOREACH(p, peer_tree, &r->peers)
		if (old == NULL || p->heard < old->heard)
			old = p;
	if (old != NULL) {
		RB_REMOVE(peer_tree, &r->peers, old);
		free(old);
		r->npeers--;
	}
}

/* stream_open - start a window at counter in p's free or least recently
 * heard stream */
static void
stream_open(struct peer *p, uint32_t counter, int64_t now)
{
	struct stream *st = &p->s[0];
	int i;

	for (i = 0; i < STREAMS; i++) {
		if (!p->s[i].used) {
			st = &p->s[i];
			break;
		}
		if (p->s[i].heard < st->heard)
			st = &p->s[i];
	}
	st->used = 1;
	st->highest = counter;
	st->seen = 1;
	st->heard = now;
}

/* accepted - note an accepted packet's timestamps and time */
static void
accepted(struct peer *p, int have_ts, uint32_t ts_max, int64_t now)
{
	if (have_ts && ts_max > p->last_ts)
		p->last_ts = ts_max;
	p->heard = now;
}

/* psync_replay_check - accept or drop a packet by counter and timestamps */
enum psync_drop
psync_replay_check(struct psync_replay *r, const struct sockaddr *peer,
    uint32_t counter, int have_ts, uint32_t ts_min, uint32_t ts_max,
    int64_t now)
{
	struct peer key, *p;
	struct stream *st;
	int32_t d, best = 0;
	int i;

	if (have_ts && r->max_age > 0 && (int64_t)ts_min < now - r->max_age)
		return PSYNC_D_STALE;
	if (peer_key(peer, key.addr) == -1)
		return PSYNC_D_STALE;
	if ((p = RB_FIND(peer_tree, &r->peers, &key)) == NULL) {
		/* After our restart the windows are empty: a packet stamped
		 * before we started was captured, not sent to us now. */
		if (have_ts && r->since > 0 && (int64_t)ts_min < r->since)
			return PSYNC_D_STALE;
		if (r->npeers >= r->max_peers)
			evict_oldest(r);
		if ((p = calloc(1, sizeof(*p))) == NULL)
			return PSYNC_D_NONE;	/* accept; cannot track */
		memcpy(p->addr, key.addr, sizeof(p->addr));
		RB_INSERT(peer_tree, &r->peers, p);
		r->npeers++;
		stream_open(p, counter, now);
		accepted(p, have_ts, ts_max, now);
		return PSYNC_D_NONE;
	}
	/* The packet belongs to the window its counter is closest to. */
	st = NULL;
	for (i = 0; i < STREAMS; i++) {
		if (!p->s[i].used)
			continue;
		d = (int32_t)(counter - p->s[i].highest);
		if (d > -NEAR && d <= NEAR && (st == NULL ||
		    llabs((long long)d) < llabs((long long)best)))
			st = &p->s[i], best = d;
	}
	if (st != NULL && best > 0) {
		/* the sender's next packet: the window slides */
		st->seen = best >= WINDOW ? 1 : (st->seen << best) | 1;
		st->highest = counter;
		st->heard = now;
		accepted(p, have_ts, ts_max, now);
		return PSYNC_D_NONE;
	}
	if (st != NULL && best > -WINDOW) {
		/* inside the window (serial arithmetic): once only */
		if (st->seen & ((uint64_t)1 << -best))
			return PSYNC_D_REPLAY;
		st->seen |= (uint64_t)1 << -best;
		st->heard = now;
		accepted(p, have_ts, ts_max, now);
		return PSYNC_D_NONE;
	}
	/* Just behind the window: an old packet of that sender, unless
	 * newer than all the address sent (a restart drew a close counter). */
	if (st != NULL && (!have_ts || ts_min <= p->last_ts))
		return PSYNC_D_STALE;
	/*
	 * Near no window: another sender on this address, or one that
	 * restarted with a new random counter. A replayed packet cannot
	 * be newer than what we already accepted from the address.
	 */
	if (!have_ts)
		return PSYNC_D_NONE;	/* no entries: nothing to replay */
	if (ts_min < p->last_ts)
		return PSYNC_D_STALE;
	stream_open(p, counter, now);
	accepted(p, have_ts, ts_max, now);
	return PSYNC_D_NONE;
}
