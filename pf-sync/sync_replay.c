/*
 * sync_replay.c - per-peer replay window for received sync packets. The
 * rule is documented at psync_replay_check in sync.h; in short: a 64-
 * packet sliding window over the peer's counter (serial arithmetic, so
 * the wrap at 2^32 is harmless), the first packet of an unknown peer sets
 * the window (OpenBSD starts at a random counter), a packet behind the
 * window is a peer restart only if its timestamps are newer than all we
 * accepted from that peer, and an age limit on timestamps catches old
 * packets replayed after our own restart.
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
#define MAX_PEERS	1024

struct peer {
	RB_ENTRY(peer)	 entry;
	uint8_t		 addr[19];	/* af byte, port, 4 or 16 bytes */
	uint32_t	 highest;	/* highest counter accepted */
	uint64_t	 seen;		/* bit i: highest - i was accepted */
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
 * peer_key - the lookup key of a source: address and port; -1 if not IP.
 * The port is part of it because OpenBSD's spamd and spamlogd on one host
 * send from one address with two independent random counters (spamd from
 * its -y port, spamlogd from an ephemeral one).
 */
static int
peer_key(const struct sockaddr *sa, uint8_t key[19])
{
	const struct sockaddr_in *sin = (const void *)sa;
	const struct sockaddr_in6 *sin6 = (const void *)sa;

	memset(key, 0, 19);
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &sin->sin_port, 2);
		memcpy(key + 3, &sin->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		key[0] = 6;
		memcpy(key + 1, &sin6->sin6_port, 2);
		memcpy(key + 3, &sin6->sin6_addr, 16);
		return 0;
	}
	return -1;
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

/* reset - start p's window at counter */
static void
reset(struct peer *p, uint32_t counter, int have_ts, uint32_t ts_max,
    int64_t now)
{
	p->highest = counter;
	p->seen = 1;
	p->last_ts = have_ts ? ts_max : p->last_ts;
	p->heard = now;
}

/* psync_replay_check - accept or drop a packet by counter and timestamps */
enum psync_drop
psync_replay_check(struct psync_replay *r, const struct sockaddr *peer,
    uint32_t counter, int have_ts, uint32_t ts_min, uint32_t ts_max,
    int64_t now)
{
	struct peer key, *p;
	int32_t d;

	if (have_ts && r->max_age > 0 && (int64_t)ts_min < now - r->max_age)
		return PSYNC_D_STALE;
	if (peer_key(peer, key.addr) == -1)
		return PSYNC_D_STALE;
	if ((p = RB_FIND(peer_tree, &r->peers, &key)) == NULL) {
		if (r->npeers >= r->max_peers)
			evict_oldest(r);
		if ((p = calloc(1, sizeof(*p))) == NULL)
			return PSYNC_D_NONE;	/* accept; cannot track */
		memcpy(p->addr, key.addr, sizeof(p->addr));
		RB_INSERT(peer_tree, &r->peers, p);
		r->npeers++;
		reset(p, counter, have_ts, ts_max, now);
		return PSYNC_D_NONE;
	}
	/* Serial-number arithmetic (RFC 1982): the wrap is harmless. */
	d = (int32_t)(counter - p->highest);
	if (d > 0) {
		p->seen = d >= WINDOW ? 1 : (p->seen << d) | 1;
		p->highest = counter;
	} else if (d > -WINDOW) {
		if (p->seen & ((uint64_t)1 << -d))
			return PSYNC_D_REPLAY;
		p->seen |= (uint64_t)1 << -d;
	} else {
		/*
		 * Far behind: a restarted peer (new random counter) or an
		 * old packet. Only a restarted peer can send timestamps
		 * newer than everything it sent before.
		 */
		if (!have_ts || ts_min <= p->last_ts)
			return PSYNC_D_STALE;
		reset(p, counter, have_ts, ts_max, now);
		return PSYNC_D_NONE;
	}
	if (have_ts && ts_max > p->last_ts)
		p->last_ts = ts_max;
	p->heard = now;
	return PSYNC_D_NONE;
}
