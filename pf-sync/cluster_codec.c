/*
 * cluster_codec.c - lines, MACs and digest buckets of the cluster
 * catch-up (format in cluster.h). No I/O and no state.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pf-sync/cluster.h"

#define CLUSTER_FIELDS	10

/* cluster_split - cut s at '|' into at most max fields; the count, or
 * max + 1 when there are more */
static int
cluster_split(char *s, char **f, int max)
{
	int n = 0;

	for (;;) {
		if (n == max)
			return max + 1;
		f[n++] = s;
		if ((s = strchr(s, '|')) == NULL)
			return n;
		*s++ = '\0';
	}
}

/* cluster_num - a decimal number in [lo, hi]: digits, one leading '-' */
static int
cluster_num(const char *name, const char *s, long long lo, long long hi,
    long long *out, char *why, size_t whysz)
{
	const char *p = s;
	char *end;
	long long v;

	if (*p == '-')
		p++;
	if (*p == '\0' || strspn(p, "0123456789") != strlen(p) ||
	    strlen(p) > 19) {
		snprintf(why, whysz, "%s: not a number", name);
		return -1;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi) {
		snprintf(why, whysz, "%s: out of range", name);
		return -1;
	}
	*out = v;
	return 0;
}

/* cluster_text_ok - 1 if s may travel in a field: printable ASCII, no
 * '|' (the separator) */
static int
cluster_text_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < ' ' || *s > '~' || *s == '|')
			return 0;
	return 1;
}

/* cluster_text - copy field s (name for messages) into dst */
static int
cluster_text(const char *name, const char *s, char *dst, size_t dstsz,
    char *why, size_t whysz)
{
	if (strlen(s) >= dstsz) {
		snprintf(why, whysz, "%s: longer than %zu bytes", name,
		    dstsz - 1);
		return -1;
	}
	strlcpy(dst, s, dstsz);
	return 0;
}

/* cluster_times - first, pass, expire, bcount, pcount from f[0..4] */
static int
cluster_times(char **f, long long pmin, struct gdb_rec *r, char *why,
    size_t whysz)
{
	long long v[5];

	if (cluster_num("first", f[0], 0, INT64_MAX / 2, &v[0], why,
	    whysz) == -1 ||
	    cluster_num("pass", f[1], 0, INT64_MAX / 2, &v[1], why,
	    whysz) == -1 ||
	    cluster_num("expire", f[2], 0, INT64_MAX / 2, &v[2], why,
	    whysz) == -1 ||
	    cluster_num("bcount", f[3], 0, INT32_MAX, &v[3], why,
	    whysz) == -1 ||
	    cluster_num("pcount", f[4], pmin, INT32_MAX, &v[4], why,
	    whysz) == -1)
		return -1;
	r->first = v[0];
	r->pass = v[1];
	r->expire = v[2];
	r->bcount = (int32_t)v[3];
	r->pcount = (int32_t)v[4];
	return 0;
}

/* cluster_hex - exactly n hex digits of s into out[n / 2]; -1 if not */
static int
cluster_hex(const char *s, size_t n, unsigned char *out)
{
	size_t i;
	unsigned v;

	if (strlen(s) != n || strspn(s, "0123456789abcdef") != n)
		return -1;
	for (i = 0; i < n / 2; i++) {
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return 0;
}

/* cluster_parse_line - one line of a response (see cluster.h) */
int
cluster_parse_line(const char *line, size_t len, struct cluster_line *out,
    char *why, size_t whysz)
{
	char buf[CLUSTER_LINE_MAX + 1], *f[CLUSTER_FIELDS + 1];
	unsigned char h[8];
	long long v;
	int n, i;

	memset(out, 0, sizeof(*out));
	if (len > CLUSTER_LINE_MAX) {
		snprintf(why, whysz, "line longer than %d bytes",
		    CLUSTER_LINE_MAX);
		return -1;
	}
	if (memchr(line, '\0', len) != NULL) {
		snprintf(why, whysz, "NUL byte in line");
		return -1;
	}
	memcpy(buf, line, len);
	buf[len] = '\0';
	n = cluster_split(buf, f, CLUSTER_FIELDS);
	if (strcmp(f[0], "WHITE") == 0 || strcmp(f[0], "GREY") == 0 ||
	    strcmp(f[0], "TRAPPED") == 0) {
		struct gdb_rec *r = &out->rec;
		int grey = f[0][0] == 'G', trapped = f[0][0] == 'T';
		int want = grey ? 10 : trapped ? 3 : 9;

		if (n != want) {
			snprintf(why, whysz, "%s: %d fields, want %d", f[0],
			    n > CLUSTER_FIELDS ? CLUSTER_FIELDS + 1 : n, want);
			return -1;
		}
		out->kind = CLUSTER_L_REC;
		if (gdb_addr_canon(f[1], r->ip) == -1) {
			snprintf(why, whysz, "ip: not an IPv4 or IPv6 address");
			return -1;
		}
		if (trapped) {
			r->type = GDB_TRAPPED;
			if (cluster_num("expire", f[2], 1, INT64_MAX / 2, &v,
			    why, whysz) == -1)
				return -1;
			r->expire = r->pass = r->first = v;
			r->pcount = GDB_PCOUNT_TRAPPED;
			return 0;
		}
		if (!grey) {
			r->type = GDB_WHITE;
			if (f[2][0] != '\0' || f[3][0] != '\0') {
				snprintf(why, whysz, "WHITE: fields 3 and 4 "
				    "must be empty");
				return -1;
			}
			return cluster_times(f + 4, 0, r, why, whysz);
		}
		r->type = GDB_GREY;
		for (i = 2; i <= 4; i++)
			if (!cluster_text_ok(f[i])) {
				snprintf(why, whysz, "%s: byte outside "
				    "printable ASCII", i == 2 ? "helo" :
				    i == 3 ? "from" : "to");
				return -1;
			}
		if (cluster_text("helo", f[2], r->helo, sizeof(r->helo), why,
		    whysz) == -1 ||
		    cluster_text("from", f[3], r->from, sizeof(r->from), why,
		    whysz) == -1 ||
		    cluster_text("to", f[4], r->to, sizeof(r->to), why,
		    whysz) == -1)
			return -1;
		return cluster_times(f + 5, 0, r, why, whysz);
	}
	if (strcmp(f[0], "D") == 0) {
		if (n != 4) {
			snprintf(why, whysz, "D: %d fields, want 4",
			    n > CLUSTER_FIELDS ? CLUSTER_FIELDS + 1 : n);
			return -1;
		}
		out->kind = CLUSTER_L_DIGEST;
		/* a bucket (0-255) or a leaf (0-65535): the caller knows
		 * which it asked for */
		if (cluster_num("bucket", f[1], 0, CLUSTER_LEAVES - 1, &v,
		    why, whysz) == -1)
			return -1;
		out->bucket = (unsigned)v;
		if (cluster_num("count", f[2], 0, INT64_MAX / 2, &out->count,
		    why, whysz) == -1)
			return -1;
		if (cluster_hex(f[3], 16, h) == -1) {
			snprintf(why, whysz, "hash: want 16 hex digits");
			return -1;
		}
		for (i = 0; i < 8; i++)
			out->hash = out->hash << 8 | h[i];
		return 0;
	}
	if (strcmp(f[0], "END") == 0 || strcmp(f[0], "MAC") == 0) {
		if (n != 2) {
			snprintf(why, whysz, "%s: %d fields, want 2", f[0],
			    n > CLUSTER_FIELDS ? CLUSTER_FIELDS + 1 : n);
			return -1;
		}
		if (f[0][0] == 'E') {
			out->kind = CLUSTER_L_END;
			return cluster_num("count", f[1], 0, INT64_MAX / 2,
			    &out->count, why, whysz);
		}
		out->kind = CLUSTER_L_MAC;
		if (cluster_hex(f[1], 2 * CLUSTER_MAC_LEN, out->mac) == -1) {
			snprintf(why, whysz, "MAC: want %d hex digits",
			    2 * CLUSTER_MAC_LEN);
			return -1;
		}
		return 0;
	}
	snprintf(why, whysz, "unknown line type (want WHITE, TRAPPED, GREY, "
	    "D, END or MAC)");
	return -1;
}

/* cluster_format_rec - rec as its line (see cluster.h) */
size_t
cluster_format_rec(const struct gdb_rec *rec, char *buf, size_t bufsz)
{
	int n;

	switch (rec->type) {
	case GDB_WHITE:
		n = snprintf(buf, bufsz, "WHITE|%s|||%lld|%lld|%lld|%d|%d\n",
		    rec->ip, (long long)rec->first, (long long)rec->pass,
		    (long long)rec->expire, rec->bcount, rec->pcount);
		break;
	case GDB_TRAPPED:
		n = snprintf(buf, bufsz, "TRAPPED|%s|%lld\n", rec->ip,
		    (long long)rec->expire);
		break;
	case GDB_GREY:
		if (!cluster_text_ok(rec->helo) || !cluster_text_ok(rec->from) ||
		    !cluster_text_ok(rec->to))
			return 0;
		n = snprintf(buf, bufsz, "GREY|%s|%s|%s|%s|%lld|%lld|%lld|%d|"
		    "%d\n", rec->ip, rec->helo, rec->from, rec->to,
		    (long long)rec->first, (long long)rec->pass,
		    (long long)rec->expire, rec->bcount, rec->pcount);
		break;
	default:
		return 0;
	}
	if (n < 0 || (size_t)n >= bufsz || n > CLUSTER_LINE_MAX)
		return 0;
	return (size_t)n;
}

/* cluster_hmac - HMAC-SHA256 of data with key into out */
static int
cluster_hmac(const char *key, size_t keylen, const void *data, size_t len,
    unsigned char out[CLUSTER_MAC_LEN])
{
	unsigned int mdlen = 0;
	static const unsigned char nokey[1];

	if (HMAC(EVP_sha256(), keylen > 0 ? (const void *)key : nokey,
	    (int)keylen, data, len, out, &mdlen) == NULL ||
	    mdlen != CLUSTER_MAC_LEN)
		return -1;
	return 0;
}

/* cluster_mac_hex - mac as lowercase hex */
void
cluster_mac_hex(const unsigned char mac[CLUSTER_MAC_LEN],
    char out[CLUSTER_MAC_HEX])
{
	int i;

	for (i = 0; i < CLUSTER_MAC_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

/* cluster_req_mac - the request MAC of target, ts, nonce as hex */
int
cluster_req_mac(const char *key, size_t keylen, const char *target,
    long long ts, const char *nonce, char out[CLUSTER_MAC_HEX])
{
	char msg[8192 + 64];	/* a request line: evhttp takes 8,192 */
	unsigned char mac[CLUSTER_MAC_LEN];
	int n;

	n = snprintf(msg, sizeof(msg), "GET %s %lld %s", target, ts, nonce);
	if (n < 0 || (size_t)n >= sizeof(msg) ||
	    cluster_hmac(key, keylen, msg, (size_t)n, mac) == -1)
		return -1;
	cluster_mac_hex(mac, out);
	return 0;
}

/* cluster_req_check - check the request header (see cluster.h) */
int
cluster_req_check(const char *key, size_t keylen, const char *target,
    const char *hdr, long long now, char reqmac[CLUSTER_MAC_HEX],
    char *why, size_t whysz)
{
	char buf[256], *f[4], want[CLUSTER_MAC_HEX];
	long long ts;

	if (hdr == NULL) {
		snprintf(why, whysz, "no %s header", CLUSTER_HEADER);
		return -1;
	}
	if (strlcpy(buf, hdr, sizeof(buf)) >= sizeof(buf)) {
		snprintf(why, whysz, "%s header too long", CLUSTER_HEADER);
		return -1;
	}
	if ((f[0] = strtok(buf, " ")) == NULL ||
	    (f[1] = strtok(NULL, " ")) == NULL ||
	    (f[2] = strtok(NULL, " ")) == NULL ||
	    strtok(NULL, " ") != NULL) {
		snprintf(why, whysz, "%s header: want TS NONCE MAC",
		    CLUSTER_HEADER);
		return -1;
	}
	if (cluster_num("TS", f[0], 0, INT64_MAX / 2, &ts, why, whysz) == -1)
		return -1;
	if (ts < now - CLUSTER_SKEW || ts > now + CLUSTER_SKEW) {
		snprintf(why, whysz, "request time %lld more than %d s from "
		    "ours (%lld)", ts, CLUSTER_SKEW, now);
		return -1;
	}
	if (strlen(f[1]) == 0 || strlen(f[1]) > CLUSTER_NONCE_MAX ||
	    strspn(f[1], "0123456789abcdef") != strlen(f[1])) {
		snprintf(why, whysz, "nonce: want 1-%d hex digits",
		    CLUSTER_NONCE_MAX);
		return -1;
	}
	if (cluster_req_mac(key, keylen, target, ts, f[1], want) == -1) {
		snprintf(why, whysz, "HMAC failed");
		return -1;
	}
	if (strlen(f[2]) != CLUSTER_MAC_HEX - 1 ||
	    CRYPTO_memcmp(want, f[2], CLUSTER_MAC_HEX - 1) != 0) {
		snprintf(why, whysz, "key mismatch");
		return -1;
	}
	strlcpy(reqmac, want, CLUSTER_MAC_HEX);
	return 0;
}

/* cluster_chain_init - M0 = HMAC(K, "spamd-cluster/1 " reqmac) */
int
cluster_chain_init(unsigned char mac[CLUSTER_MAC_LEN], const char *key,
    size_t keylen, const char *reqmac)
{
	char msg[128];
	int n;

	n = snprintf(msg, sizeof(msg), "spamd-cluster/1 %s", reqmac);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -1;
	return cluster_hmac(key, keylen, msg, (size_t)n, mac);
}

/* cluster_chain_next - Mi = HMAC(K, M(i-1) || HMAC(K, block)) */
int
cluster_chain_next(unsigned char mac[CLUSTER_MAC_LEN], const char *key,
    size_t keylen, const void *data, size_t len)
{
	unsigned char two[2 * CLUSTER_MAC_LEN];

	memcpy(two, mac, CLUSTER_MAC_LEN);
	if (cluster_hmac(key, keylen, data, len, two + CLUSTER_MAC_LEN) == -1)
		return -1;
	return cluster_hmac(key, keylen, two, sizeof(two), mac);
}

/* cluster_fnv - FNV-1a 64 of s, then mixed (splitmix64's finaliser) so
 * that XOR-ing many of them does not cancel on near-equal keys */
static uint64_t
cluster_fnv(const char *s, unsigned char type)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = (h ^ type) * 0x100000001b3ULL;
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

/* cluster_bucket - the digest bucket of ip */
unsigned
cluster_bucket(const char *ip)
{
	return (unsigned)(cluster_fnv(ip, 0) & (CLUSTER_BUCKETS - 1));
}

/* cluster_leaf - the digest leaf of ip */
unsigned
cluster_leaf(const char *ip)
{
	return (unsigned)(cluster_fnv(ip, 0) & (CLUSTER_LEAVES - 1));
}

/* cluster_leaves_add - count one WHITE or TRAPPED record in its leaf */
void
cluster_leaves_add(struct cluster_leaves *l, const struct gdb_rec *rec)
{
	unsigned f = cluster_leaf(rec->ip);

	l->count[f]++;
	l->hash[f] ^= cluster_fnv(rec->ip, (unsigned char)rec->type);
}

/* cluster_set_encode - the set bits of map from from on, as deltas */
unsigned
cluster_set_encode(const uint8_t *map, unsigned nbits, unsigned from,
    char *out, size_t outsz)
{
	char digits[8];
	unsigned i, v;
	long prev = (long)from - 1;
	size_t len = 0, nd, k;

	if (outsz > 0)
		out[0] = '\0';
	for (i = from; i < nbits; i++) {
		if (!(map[i >> 3] & (1u << (i & 7))))
			continue;
		/* the gap to the last one, base 16: the last digit g-v, the
		 * ones before it 0-9a-f */
		v = (unsigned)((long)i - prev - 1);
		nd = 0;
		digits[nd++] = (char)('g' + (v & 15));
		for (v >>= 4; v > 0; v >>= 4)
			digits[nd++] = "0123456789abcdef"[v & 15];
		if (len + nd + 1 > outsz)
			return i;
		for (k = 0; k < nd; k++)
			out[len++] = digits[nd - 1 - k];
		out[len] = '\0';
		prev = (long)i;
	}
	return nbits;
}

/* cluster_set_decode - a cluster_set_encode string into map */
int
cluster_set_decode(const char *s, uint8_t *map, unsigned nbits, char *why,
    size_t whysz)
{
	long prev = -1, leaf;
	unsigned long v = 0;
	int nd = 0;
	const char *c;

	memset(map, 0, (nbits + 7) / 8);
	for (c = s; *c != '\0'; c++) {
		if (nd >= 5) {
			snprintf(why, whysz, "set: a gap of more than 5 "
			    "digits at offset %zu", (size_t)(c - s));
			return -1;
		}
		nd++;
		if (*c >= '0' && *c <= '9')
			v = v * 16 + (unsigned long)(*c - '0');
		else if (*c >= 'a' && *c <= 'f')
			v = v * 16 + (unsigned long)(*c - 'a' + 10);
		else if (*c >= 'g' && *c <= 'v') {
			v = v * 16 + (unsigned long)(*c - 'g');
			leaf = prev + 1 + (long)v;
			if (leaf >= (long)nbits) {
				snprintf(why, whysz, "set: %ld past the last "
				    "(%u)", leaf, nbits - 1);
				return -1;
			}
			map[leaf >> 3] |= (uint8_t)(1u << (leaf & 7));
			prev = leaf;
			v = 0;
			nd = 0;
		} else {
			snprintf(why, whysz, "set: byte %zu is not 0-9a-v",
			    (size_t)(c - s));
			return -1;
		}
	}
	if (nd != 0) {
		snprintf(why, whysz, "set: ends inside a gap");
		return -1;
	}
	return 0;
}

/* cluster_digest_add - count one WHITE or TRAPPED record */
void
cluster_digest_add(struct cluster_digest *d, const struct gdb_rec *rec)
{
	unsigned b = cluster_bucket(rec->ip);

	d->count[b]++;
	d->hash[b] ^= cluster_fnv(rec->ip, (unsigned char)rec->type);
}

/* cluster_change_time - when rec last changed, as its fields tell,
 * never after now */
int64_t
cluster_change_time(const struct gdb_rec *rec, const struct gdb_times *t,
    int64_t now)
{
	int64_t c = rec->first, life = 0;

	switch (rec->type) {
	case GDB_GREY:
		/*
		 * why first only: in OpenBSD's layout a tuple's pass and
		 * expire are both first + greyexp, hours ahead; a sighting
		 * after that only counts bcount. Taking pass made a host's
		 * "newest change" hours in the future, so its catch-up asked
		 * for nothing it had missed.
		 */
		break;
	case GDB_WHITE:
	case GDB_TRAPPED:
		/* pass: when it passed or was trapped; expire - lifetime:
		 * its last refresh (greylogd, a repeat sighting) */
		life = rec->type == GDB_WHITE ? t->whiteexp : t->trapexp;
		if (rec->pass > c)
			c = rec->pass;
		if (rec->expire - life > c)
			c = rec->expire - life;
		break;
	default:
		if (rec->pass > c)
			c = rec->pass;
		break;
	}
	/* a longer lifetime from a peer, or a clock set back, must not
	 * put a change in the future: it would hide later ones */
	return c > now ? now : c;
}
