/*
 * cluster.h - catch-up and digest repair between our own MX hosts
 * (cluster_*): the text format of GET /cluster/changes and GET
 * /cluster/digest, its chained HMAC, the request's HMAC and the digest
 * buckets. The writer's side (HTTP handlers, pulls, timers) is
 * spamd/writer/grey_cluster.c; this part has no state and no I/O, so
 * the unit tests and the fuzz target drive it directly.
 *
 * Requests:
 *   GET /cluster/changes?since=T       WHITE, TRAPPED, GREY changed since T
 *   GET /cluster/changes?since=0&bucket=N   WHITE, TRAPPED of bucket N
 *   GET /cluster/changes?since=0&leaves=SET WHITE, TRAPPED of those leaves
 *   GET /cluster/digest                the 256 buckets' D lines
 *   GET /cluster/digest?buckets=SET    the leaves of those buckets that
 *                                      hold anything, as D lines
 * A digest is two levels: 65536 leaves by the low 16 bits of a 64-bit
 * FNV-1a hash of the address, bucket = leaf & 255; each the count and
 * the XOR of hashes of type and address of its live WHITE and TRAPPED
 * entries. SET: cluster_set_encode. Every request has the header
 *   X-Spamd-Cluster: TS NONCE MAC
 * TS the client's time (the server takes |now - TS| <= CLUSTER_SKEW),
 * NONCE 1-32 characters of [0-9a-f], MAC the lowercase hex HMAC-SHA256,
 * keyed with the sync key (the 40 hex characters, as sync v2), of
 *   "GET " target " " TS " " NONCE      (target: path and query)
 * Response (200, text/plain): lines, each ended by "\n", of
 *   WHITE|ip|||first|pass|expire|bcount|pcount       (spamdb's form)
 *   TRAPPED|ip|expire
 *   GREY|ip|helo|from|to|first|pass|expire|bcount|pcount
 *   D|n|count|hash           (digest: bucket 0-255 or leaf 0-65535,
 *                             count, 16 hex digits)
 *   END|count                (records sent; the last line of the data)
 *   MAC|hex                  (ends a block)
 * cut into blocks, each ended by its MAC line. With K the key and B the
 * bytes of a block's lines before its MAC line:
 *   M0 = HMAC(K, "spamd-cluster/1 " request-MAC-hex)
 *   Mi = HMAC(K, M(i-1) || HMAC(K, B))
 * so a block verifies only in its place after every earlier block of
 * the answer to this very request: a receiver applies block by block,
 * and a cut, reordered, replayed or forged stream stops at the first
 * block that does not verify. A response is complete only with END|n
 * inside its last block. A field that holds '|' or a byte outside
 * printable ASCII cannot travel (the server skips such a GREY tuple).
 */
#ifndef PFSYNC_CLUSTER_H
#define PFSYNC_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "greydb/greydb.h"

#define CLUSTER_MAC_LEN		32	/* HMAC-SHA256 */
#define CLUSTER_MAC_HEX		(2 * CLUSTER_MAC_LEN + 1)
#define CLUSTER_LINE_MAX	1024	/* a GREY line is at most ~900 */
#define CLUSTER_BUCKETS		256
#define CLUSTER_LEAVES		65536	/* leaf f is under bucket f & 255 */
#define CLUSTER_BLOCK_RECS	200	/* records in one block */
#define CLUSTER_BLOCK_MAX	(CLUSTER_BLOCK_RECS * CLUSTER_LINE_MAX)
#define CLUSTER_SKEW		300	/* request time tolerance, s */
#define CLUSTER_NONCE_MAX	32
#define CLUSTER_HEADER		"X-Spamd-Cluster"

/* What one line is. */
enum cluster_kind {
	CLUSTER_L_REC = 1,	/* WHITE, TRAPPED or GREY: rec */
	CLUSTER_L_DIGEST,	/* D: bucket, count, hash */
	CLUSTER_L_END,		/* END: count */
	CLUSTER_L_MAC,		/* MAC: mac */
};

/* One parsed line. */
struct cluster_line {
	enum cluster_kind	kind;
	struct gdb_rec		rec;
	unsigned		bucket;
	long long		count;
	uint64_t		hash;
	unsigned char		mac[CLUSTER_MAC_LEN];
};

/* The 256 buckets of a digest: entries and the XOR of their hashes. */
struct cluster_digest {
	long long	count[CLUSTER_BUCKETS];
	uint64_t	hash[CLUSTER_BUCKETS];
};

/* The 65536 leaves of a digest (1 MB): bucket b is the sum of the
 * leaves b, b + 256, b + 512, ... */
struct cluster_leaves {
	long long	count[CLUSTER_LEAVES];
	uint64_t	hash[CLUSTER_LEAVES];
};

/* cluster_parse_line - parse one line (no newline, len bytes); 0 with
 * out set, -1 with why naming the field */
int	cluster_parse_line(const char *line, size_t len,
	    struct cluster_line *out, char *why, size_t whysz);
/* cluster_format_rec - rec as its line with "\n" into buf; the length,
 * 0 when a field cannot travel (a '|' or a byte outside printable
 * ASCII, or no room) or the type is not WHITE, TRAPPED or GREY */
size_t	cluster_format_rec(const struct gdb_rec *rec, char *buf,
	    size_t bufsz);

/* cluster_req_mac - the request MAC (hex) of target, ts and nonce; -1
 * when HMAC fails */
int	cluster_req_mac(const char *key, size_t keylen, const char *target,
	    long long ts, const char *nonce, char out[CLUSTER_MAC_HEX]);
/* cluster_req_check - check a request header value "TS NONCE MAC" for
 * target at now: 0 good (reqmac gets the MAC hex), -1 with why */
int	cluster_req_check(const char *key, size_t keylen, const char *target,
	    const char *hdr, long long now, char reqmac[CLUSTER_MAC_HEX],
	    char *why, size_t whysz);
/* cluster_chain_init - M0 for the response to the request reqmac */
int	cluster_chain_init(unsigned char mac[CLUSTER_MAC_LEN],
	    const char *key, size_t keylen, const char *reqmac);
/* cluster_chain_next - Mi from M(i-1) (in mac, replaced) and block
 * bytes data[0..len); -1 when HMAC fails */
int	cluster_chain_next(unsigned char mac[CLUSTER_MAC_LEN],
	    const char *key, size_t keylen, const void *data, size_t len);
/* cluster_mac_hex - mac as lowercase hex into out */
void	cluster_mac_hex(const unsigned char mac[CLUSTER_MAC_LEN],
	    char out[CLUSTER_MAC_HEX]);

/* cluster_bucket - the digest bucket of a (canonical) address */
unsigned cluster_bucket(const char *ip);
/* cluster_leaf - the digest leaf of a (canonical) address (its bucket
 * is leaf & 255) */
unsigned cluster_leaf(const char *ip);
/* cluster_leaves_add - count a live WHITE or TRAPPED record in its leaf */
void	cluster_leaves_add(struct cluster_leaves *l,
	    const struct gdb_rec *rec);
/* cluster_set_encode - a set of buckets or leaves (the bits of map, nbits
 * of them) from from on, as URL text: each member's gap to the one
 * before (the first's to -1, so a gap of 0 is "next") in base 16, the
 * last digit as g-v and the ones before it as 0-9a-f ("g" = 0, "1g" =
 * 16). Writes what fits in outsz; returns the member it stopped at
 * (nbits when all were written) */
unsigned cluster_set_encode(const uint8_t *map, unsigned nbits,
	    unsigned from, char *out, size_t outsz);
/* cluster_set_decode - such text into map (nbits bits); -1 with why */
int	cluster_set_decode(const char *s, uint8_t *map, unsigned nbits,
	    char *why, size_t whysz);
/* cluster_digest_add - count a live WHITE or TRAPPED record (its type
 * and address, not its times: hosts that decided the same pass
 * themselves hold expiry times seconds apart) */
void	cluster_digest_add(struct cluster_digest *d, const struct gdb_rec *rec);
/* cluster_change_time - when rec last changed, as far as its fields
 * tell, at most now: GREY its first (OpenBSD's layout puts pass and
 * expire at first + greyexp), WHITE and TRAPPED the latest of first,
 * pass and expire minus their lifetime in t (a refresh moves only
 * expire) */
int64_t	cluster_change_time(const struct gdb_rec *rec,
	    const struct gdb_times *t, int64_t now);

#endif /* PFSYNC_CLUSTER_H */
