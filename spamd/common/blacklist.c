/*
 * blacklist.c - the engine's in-memory blacklists: the parser of the
 * control messages spamd-setup sends to the config port, and the set of
 * named lists with its search structure.
 *
 * Search structure: every prefix of every list becomes a [lo, hi] range;
 * all ranges of all lists are cut into sorted, disjoint ranges that cover
 * the whole address space, each carrying a 64-bit mask of the lists that
 * contain it (adjacent ranges with equal masks are merged). A direct index
 * on the top 16 bits of the address narrows a lookup to a few entries,
 * then a binary search finds the one range holding the address.
 * IPv6 is the same with 128-bit values.
 */
#include <sys/mman.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spamd/common/blacklist.h"

/* A 128-bit value for IPv6, most significant half first. */
struct bl_u128 {
	uint64_t	hi;
	uint64_t	lo;
};

struct bl_r4 {
	uint32_t	lo, hi;
};

struct bl_r6 {
	struct bl_u128	lo, hi;
};

struct bl_list {
	char		 tag[BL_TAG_MAX];
	char		*msg;
	struct bl_r4	*v4;
	size_t		 n4, cap4;
	struct bl_r6	*v6;
	size_t		 n6, cap6;
};

/* One disjoint range: where it starts and which lists contain it, as an
 * index into the table of distinct masks (few, so that table stays in
 * cache and a lookup touches one range entry, not a second array). */
struct bl_e4 {
	uint32_t	start;
	uint32_t	mi;
};

struct bl_e6 {
	struct bl_u128	start;
	uint32_t	mi;
};

/* The search structure: rebuilt whole, then swapped into the set. */
struct bl_index {
	int		 nlists;
	const char	*tag[BL_MAX_LISTS];
	const char	*msg[BL_MAX_LISTS];
	struct bl_e4	*e4;		/* sorted, e4[0].start == 0 */
	size_t		 n4;
	uint32_t	*i4;		/* per top bits: last range <= them */
	int		 shift4;	/* 32 - index bits */
	struct bl_e6	*e6;
	size_t		 n6;
	uint32_t	*i6;
	int		 shift6;	/* 64 - index bits (of the top half) */
	uint64_t	*mt;		/* distinct masks, mt[0] == 0 */
	uint32_t	 nmt;
	size_t		 bytes;
};

struct bl_set {
	struct bl_list	*list[BL_MAX_LISTS];	/* load order */
	int		 nlists;
	struct bl_index	*idx;		/* read with acquire, see bl_lookup */
};

/* The IPv4-mapped IPv6 prefix, ::ffff:0:0/96. */
static const uint8_t bl_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
    0xff };

/* --- the parser ------------------------------------------------------ */

/* A parse in progress: the input and where we are in it. */
struct bl_in {
	const char	*buf;
	size_t		 len;
	size_t		 pos;
	char		*err;
	size_t		 errsz;
};

/* bl_fail - write "what at byte N" and return -1 */
static int
bl_fail(struct bl_in *in, const char *what, size_t at)
{
	snprintf(in->err, in->errsz, "%s at byte %zu", what, at);
	return -1;
}

/* bl_token - the bytes from in->pos up to the next ';' or the end */
static size_t
bl_token(const struct bl_in *in)
{
	const char *semi = memchr(in->buf + in->pos, ';', in->len - in->pos);

	return semi != NULL ? (size_t)(semi - (in->buf + in->pos)) :
	    in->len - in->pos;
}

/* bl_digits - a decimal number of at most maxd digits, no leading zero */
static int
bl_digits(const char *s, size_t n, size_t maxd, unsigned long *out)
{
	size_t i;

	if (n == 0 || n > maxd || (n > 1 && s[0] == '0'))
		return -1;
	*out = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*out = *out * 10 + (unsigned long)(s[i] - '0');
	}
	return 0;
}

/* bl_prefixlen - parse the "/m" part of an entry, checking its range */
static int
bl_prefixlen(struct bl_in *in, const char *s, size_t n, unsigned max,
    unsigned *bits)
{
	size_t at = (size_t)(s - in->buf);
	unsigned long v;

	if (bl_digits(s, n, 3, &v) == -1)
		return bl_fail(in, "bad prefix length", at);
	if (v > max)
		return bl_fail(in, "prefix length out of range", at);
	*bits = (unsigned)v;
	return 0;
}

/* bl_ipv4 - parse a strict dotted quad (no leading zeros, no shorthand) */
static int
bl_ipv4(const char *s, size_t n, uint32_t *out)
{
	unsigned long part;
	size_t i, start = 0;
	int dots = 0;

	*out = 0;
	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (bl_digits(s + start, i - start, 3, &part) == -1 ||
		    part > 255)
			return -1;
		*out = (*out << 8) | (uint32_t)part;
		if (i < n && ++dots > 3)
			return -1;
		start = i + 1;
	}
	return dots == 3 ? 0 : -1;
}

/* bl_grow - make room for one more element in a growing array */
static int
bl_grow(void **arr, size_t *cap, size_t n, size_t elem, size_t hint)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap == 0 ? (hint > 0 ? hint : 16) : *cap * 2;
	if ((p = reallocarray(*arr, ncap, elem)) == NULL)
		return -1;
	*arr = p;
	*cap = ncap;
	return 0;
}

/* bl_u128_range - the network and broadcast ends of addr/bits */
static void
bl_u128_range(struct bl_u128 a, unsigned bits, struct bl_r6 *r)
{
	uint64_t mh, ml;

	mh = bits == 0 ? 0 : bits >= 64 ? UINT64_MAX :
	    UINT64_MAX << (64 - bits);
	ml = bits <= 64 ? 0 : bits == 128 ? UINT64_MAX :
	    UINT64_MAX << (128 - bits);
	r->lo.hi = a.hi & mh;
	r->lo.lo = a.lo & ml;
	r->hi.hi = a.hi | ~mh;
	r->hi.lo = a.lo | ~ml;
}

/* bl_u128_load - 16 network-order bytes as a 128-bit value */
static struct bl_u128
bl_u128_load(const uint8_t *b)
{
	struct bl_u128 v = { 0, 0 };
	int i;

	for (i = 0; i < 8; i++) {
		v.hi = (v.hi << 8) | b[i];
		v.lo = (v.lo << 8) | b[8 + i];
	}
	return v;
}

/*
 * bl_entry - parse one "addr/bits" entry of family af into the list.
 * Host bits below the prefix length are masked off, as OpenBSD spamd does
 * (sdl.c keeps addr & mask), so "10.1.2.3/8" means 10.0.0.0/8.
 */
static int
bl_entry(struct bl_in *in, struct bl_list *l, int af, size_t n, size_t hint)
{
	const char *s = in->buf + in->pos, *slash;
	char tmp[INET6_ADDRSTRLEN];
	uint8_t a6[16];
	unsigned bits;
	uint32_t a4, m4;

	if ((slash = memchr(s, '/', n)) == NULL)
		return bl_fail(in, "missing prefix length", in->pos);
	if (af == AF_INET) {
		if (bl_ipv4(s, (size_t)(slash - s), &a4) == -1)
			return bl_fail(in, "bad IPv4 address", in->pos);
		if (bl_prefixlen(in, slash + 1, n - (size_t)(slash - s) - 1,
		    32, &bits) == -1)
			return -1;
		if (bl_grow((void **)&l->v4, &l->cap4, l->n4,
		    sizeof(*l->v4), hint) == -1)
			return bl_fail(in, "out of memory", in->pos);
		m4 = bits == 0 ? 0 : UINT32_MAX << (32 - bits);
		l->v4[l->n4].lo = a4 & m4;
		l->v4[l->n4].hi = a4 | ~m4;
		l->n4++;
		return 0;
	}
	if ((size_t)(slash - s) >= sizeof(tmp) || slash == s)
		return bl_fail(in, "bad IPv6 address", in->pos);
	memcpy(tmp, s, (size_t)(slash - s));
	tmp[slash - s] = '\0';
	if (inet_pton(AF_INET6, tmp, a6) != 1)
		return bl_fail(in, "bad IPv6 address", in->pos);
	if (bl_prefixlen(in, slash + 1, n - (size_t)(slash - s) - 1, 128,
	    &bits) == -1)
		return -1;
	/* why: lookups turn v4-mapped addresses into IPv4, so a prefix
	 * inside ::ffff:0:0/96 is kept as the IPv4 prefix it stands for */
	if (bits >= 96 && memcmp(a6, bl_mapped, sizeof(bl_mapped)) == 0) {
		if (bl_grow((void **)&l->v4, &l->cap4, l->n4,
		    sizeof(*l->v4), hint) == -1)
			return bl_fail(in, "out of memory", in->pos);
		a4 = (uint32_t)a6[12] << 24 | (uint32_t)a6[13] << 16 |
		    (uint32_t)a6[14] << 8 | a6[15];
		m4 = bits == 96 ? 0 : UINT32_MAX << (128 - bits);
		l->v4[l->n4].lo = a4 & m4;
		l->v4[l->n4].hi = a4 | ~m4;
		l->n4++;
		return 0;
	}
	if (bl_grow((void **)&l->v6, &l->cap6, l->n6, sizeof(*l->v6),
	    hint) == -1)
		return bl_fail(in, "out of memory", in->pos);
	bl_u128_range(bl_u128_load(a6), bits, &l->v6[l->n6++]);
	return 0;
}

/* bl_is_family - whether the n bytes at s name an address family */
static int
bl_is_family(const char *s, size_t n)
{
	return (n == 4 && memcmp(s, "inet", 4) == 0) ||
	    (n == 5 && memcmp(s, "inet6", 5) == 0);
}

/* bl_family - parse "inet;COUNT;entries" or "inet6;..." at in->pos */
static int
bl_family(struct bl_in *in, struct bl_list *l, int *seen)
{
	size_t n = bl_token(in), at = in->pos, hint;
	unsigned long count, k;
	char what[96];
	int af;

	if (n == 4 && memcmp(in->buf + at, "inet", 4) == 0)
		af = AF_INET;
	else if (n == 5 && memcmp(in->buf + at, "inet6", 5) == 0)
		af = AF_INET6;
	else if (*seen != 0 && memchr(in->buf + at, '/', n) != NULL)
		return bl_fail(in, "count mismatch (more entries than "
		    "announced)", at);
	else
		return bl_fail(in, "unknown address family", at);
	if (*seen & (af == AF_INET ? 1 : 2))
		return bl_fail(in, "address family given twice", at);
	*seen |= af == AF_INET ? 1 : 2;
	in->pos += n;
	if (in->pos == in->len)
		return bl_fail(in, "missing count", in->pos);
	in->pos++;
	n = bl_token(in);
	if (bl_digits(in->buf + in->pos, n, 9, &count) == -1)
		return bl_fail(in, "bad count", in->pos);
	in->pos += n;
	/* why: never trust the count for an allocation; an entry takes at
	 * least 4 bytes ("::/0" plus its ';'), so the input bounds it */
	hint = (in->len - in->pos) / 4 + 1;
	if (count < hint)
		hint = count;
	for (k = 0; k < count; k++) {
		if (in->pos == in->len) {
			snprintf(what, sizeof(what), "count mismatch (%lu "
			    "announced, %lu found)", count, k);
			return bl_fail(in, what, in->pos);
		}
		in->pos++;
		n = bl_token(in);
		if (bl_is_family(in->buf + in->pos, n)) {
			snprintf(what, sizeof(what), "count mismatch (%lu "
			    "announced, %lu found)", count, k);
			return bl_fail(in, what, in->pos);
		}
		if (bl_entry(in, l, af, n, hint) == -1)
			return -1;
		in->pos += n;
	}
	return 0;
}

/* bl_shrink - give back the unused tail of a list's arrays */
static void
bl_shrink(struct bl_list *l)
{
	void *p;

	if (l->n4 > 0 && l->n4 < l->cap4 &&
	    (p = reallocarray(l->v4, l->n4, sizeof(*l->v4))) != NULL) {
		l->v4 = p;
		l->cap4 = l->n4;
	}
	if (l->n6 > 0 && l->n6 < l->cap6 &&
	    (p = reallocarray(l->v6, l->n6, sizeof(*l->v6))) != NULL) {
		l->v6 = p;
		l->cap6 = l->n6;
	}
}

/* bl_parse - parse one control message into a list */
struct bl_list *
bl_parse(const char *buf, size_t len, char *err, size_t errsz)
{
	struct bl_in in = { buf, len, 0, err, errsz };
	struct bl_list *l;
	size_t i, mstart;
	int seen = 0;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		snprintf(err, errsz, "out of memory at byte 0");
		return NULL;
	}
	/* tag: printable, no spaces, quotes or ';' (they end up in logs) */
	for (i = 0; i < len && buf[i] != ';'; i++) {
		if (i >= BL_TAG_MAX - 1) {
			bl_fail(&in, "tag too long", i);
			goto fail;
		}
		if (buf[i] <= ' ' || buf[i] >= 0x7f || buf[i] == '"') {
			bl_fail(&in, "bad character in tag", i);
			goto fail;
		}
		l->tag[i] = buf[i];
	}
	if (i == 0) {
		bl_fail(&in, "empty tag", 0);
		goto fail;
	}
	if (i == len) {
		bl_fail(&in, "missing ';' after tag", i);
		goto fail;
	}
	in.pos = i + 1;
	if (in.pos == len) {
		/* "tag;" alone: a list with no entries clears the tag */
		if ((l->msg = strdup("")) == NULL) {
			bl_fail(&in, "out of memory", in.pos);
			goto fail;
		}
		return l;
	}
	if (buf[in.pos] != '"') {
		bl_fail(&in, "missing opening quote", in.pos);
		goto fail;
	}
	mstart = ++in.pos;
	/* the message runs to the first '"' not escaped by a backslash;
	 * the escapes themselves are checked by the template check below */
	while (in.pos < len && buf[in.pos] != '"') {
		if (buf[in.pos] == '\0') {
			bl_fail(&in, "NUL byte in message", in.pos);
			goto fail;
		}
		in.pos += buf[in.pos] == '\\' ? 2 : 1;
	}
	if (in.pos >= len) {
		bl_fail(&in, "unterminated message (missing closing quote)",
		    len);
		goto fail;
	}
	if (in.pos - mstart >= BL_MSG_MAX) {
		bl_fail(&in, "message too long", mstart + BL_MSG_MAX - 1);
		goto fail;
	}
	if ((l->msg = strndup(buf + mstart, in.pos - mstart)) == NULL) {
		bl_fail(&in, "out of memory", mstart);
		goto fail;
	}
	if (bl_check_template_at(l->msg, mstart, err, errsz) == -1)
		goto fail;
	in.pos++;
	if (in.pos == len) {
		bl_fail(&in, "missing ';' and address family after message",
		    in.pos);
		goto fail;
	}
	do {
		if (buf[in.pos] != ';') {
			bl_fail(&in, seen ? "trailing junk after entries" :
			    "trailing junk after message", in.pos);
			goto fail;
		}
		in.pos++;
		if (bl_family(&in, l, &seen) == -1)
			goto fail;
	} while (in.pos < len);
	bl_shrink(l);
	return l;
fail:
	bl_list_free(l);
	return NULL;
}

/* bl_list_free - free a parsed list */
void
bl_list_free(struct bl_list *list)
{
	if (list == NULL)
		return;
	free(list->msg);
	free(list->v4);
	free(list->v6);
	free(list);
}

/* bl_list_tag - the list's tag */
const char *
bl_list_tag(const struct bl_list *list)
{
	return list->tag;
}

/* bl_list_size - number of prefixes in a parsed list */
long
bl_list_size(const struct bl_list *list)
{
	return (long)(list->n4 + list->n6);
}

/* --- building the search structure ---------------------------------- */

/* bl_radix - sort 64-bit keys below 2^(11*passes) (LSD radix, 11 bits) */
static int
bl_radix(uint64_t *a, size_t n, int passes)
{
	uint64_t *tmp, *src = a, *dst, *t;
	size_t *cnt, i, sum, c;
	int p, shift;

	if ((tmp = reallocarray(NULL, n + 1, sizeof(*tmp))) == NULL)
		return -1;
	if ((cnt = malloc(2048 * sizeof(*cnt))) == NULL) {
		free(tmp);
		return -1;
	}
	dst = tmp;
	for (p = 0; p < passes; p++) {
		shift = 11 * p;
		memset(cnt, 0, 2048 * sizeof(*cnt));
		for (i = 0; i < n; i++)
			cnt[(src[i] >> shift) & 2047]++;
		for (i = 0, sum = 0; i < 2048; i++) {
			c = cnt[i];
			cnt[i] = sum;
			sum += c;
		}
		for (i = 0; i < n; i++)
			dst[cnt[(src[i] >> shift) & 2047]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
	free(tmp);
	free(cnt);
	return 0;
}

#define BL_HUGE	(2UL << 20)	/* a huge page */

/*
 * bl_big - an array for the search structure. Why: lookups jump at random
 * through megabytes; on 2 MB pages (transparent huge pages, asked for with
 * madvise) they miss the TLB far less, which is most of a lookup's cost.
 */
static void *
bl_big(size_t n, size_t elem)
{
	size_t sz;
	void *p;

	if (n > SIZE_MAX / elem)
		return NULL;
	sz = n * elem;
	if (sz < BL_HUGE)
		return malloc(sz);
	sz = (sz + BL_HUGE - 1) & ~(BL_HUGE - 1);
	if (posix_memalign(&p, BL_HUGE, sz) != 0)
		return NULL;
	(void)madvise(p, sz, MADV_HUGEPAGE);	/* a hint; fine if refused */
	return p;
}

/* Distinct masks while building: an open-addressing map mask -> id. */
struct bl_masks {
	uint64_t	*m;		/* id -> mask */
	uint32_t	 n, cap;
	uint32_t	*slot;		/* id + 1, 0 for empty */
	size_t		 nslot;		/* power of two */
};

/* bl_mask_slot - where mask is, or would go, in the map */
static size_t
bl_mask_slot(const struct bl_masks *ms, uint64_t mask)
{
	size_t i = (size_t)((mask * 0x9e3779b97f4a7c15ULL) >> 32) &
	    (ms->nslot - 1);

	while (ms->slot[i] != 0 && ms->m[ms->slot[i] - 1] != mask)
		i = (i + 1) & (ms->nslot - 1);
	return i;
}

/* bl_mask_id - the id of a mask, adding it if new; -1 out of memory */
static int64_t
bl_mask_id(struct bl_masks *ms, uint64_t mask)
{
	uint32_t *ns, id;
	size_t i, on = ms->nslot;
	void *p;

	if (ms->nslot == 0 || (size_t)ms->n * 2 >= ms->nslot) {
		if ((ns = calloc(on == 0 ? 64 : on * 2, sizeof(*ns))) == NULL)
			return -1;
		uint32_t *old = ms->slot;

		ms->slot = ns;
		ms->nslot = on == 0 ? 64 : on * 2;
		for (id = 0; id < ms->n; id++)
			ms->slot[bl_mask_slot(ms, ms->m[id])] = id + 1;
		free(old);
	}
	i = bl_mask_slot(ms, mask);
	if (ms->slot[i] != 0)
		return ms->slot[i] - 1;
	if (ms->n == ms->cap) {
		if ((p = reallocarray(ms->m, ms->cap == 0 ? 64 : ms->cap * 2,
		    sizeof(*ms->m))) == NULL)
			return -1;
		ms->m = p;
		ms->cap = ms->cap == 0 ? 64 : ms->cap * 2;
	}
	ms->m[ms->n] = mask;
	ms->slot[i] = ++ms->n;
	return ms->n - 1;
}

/* bl_index_bits - index size: 2^16 entries, up to 2^20 for big sets,
 * so a lookup's binary search stays within a couple of entries */
static int
bl_index_bits(size_t n)
{
	int b = 16;

	while (b < 20 && ((size_t)1 << (b + 1)) <= n)
		b++;
	return b;
}

/* bl_sweep - count per list at one position; returns the new mask */
static uint64_t
bl_sweep(uint32_t *cnt, uint64_t mask, int li, int start)
{
	if (start) {
		if (cnt[li]++ == 0)
			mask |= (uint64_t)1 << li;
	} else if (--cnt[li] == 0)
		mask &= ~((uint64_t)1 << li);
	return mask;
}

/*
 * bl_build4 - cut every list's IPv4 ranges into disjoint masked ranges.
 * An event is (position << 7 | list << 1 | is_start); sweeping the sorted
 * events with a count per list gives the mask of each stretch. Ranges that
 * reach 255.255.255.255 get no end event.
 */
static int
bl_build4(struct bl_index *x, struct bl_list **lists, int nl,
    struct bl_masks *ms)
{
	uint64_t *ev, mask = 0;
	uint32_t cnt[BL_MAX_LISTS] = { 0 }, pos, key;
	size_t nev = 0, i, j, r, total = 0, t, nidx;
	int64_t id;
	int li;

	for (li = 0; li < nl; li++)
		total += lists[li]->n4;
	if ((ev = reallocarray(NULL, total * 2 + 1, sizeof(*ev))) == NULL)
		return -1;
	for (li = 0; li < nl; li++)
		for (i = 0; i < lists[li]->n4; i++) {
			const struct bl_r4 *rg = &lists[li]->v4[i];

			ev[nev++] = (uint64_t)rg->lo << 7 | (uint64_t)li << 1 |
			    1;
			if (rg->hi != UINT32_MAX)
				ev[nev++] = (uint64_t)(rg->hi + 1) << 7 |
				    (uint64_t)li << 1;
		}
	if (bl_radix(ev, nev, 4) == -1 ||
	    (x->e4 = bl_big(nev + 1, sizeof(*x->e4))) == NULL)
		goto fail;
	x->e4[0].start = 0;
	x->e4[0].mi = 0;		/* mask 0 is id 0, see bl_index_build */
	r = 1;
	for (i = 0; i < nev; i = j) {
		pos = (uint32_t)(ev[i] >> 7);
		for (j = i; j < nev && (uint32_t)(ev[j] >> 7) == pos; j++)
			mask = bl_sweep(cnt, mask, (int)((ev[j] >> 1) & 63),
			    (int)(ev[j] & 1));
		if ((id = bl_mask_id(ms, mask)) == -1)
			goto fail;
		if ((uint32_t)id == x->e4[r - 1].mi)
			continue;
		if (x->e4[r - 1].start == pos) {
			/* same start: replace, and merge with the one before */
			x->e4[r - 1].mi = (uint32_t)id;
			if (r > 1 && x->e4[r - 2].mi == (uint32_t)id)
				r--;
			continue;
		}
		x->e4[r].start = pos;
		x->e4[r++].mi = (uint32_t)id;
	}
	x->n4 = r;
	x->shift4 = 32 - bl_index_bits(r);
	nidx = (size_t)1 << (32 - x->shift4);
	if ((x->i4 = bl_big(nidx + 1, sizeof(*x->i4))) == NULL)
		goto fail;
	for (t = 0, r = 0; t < nidx; t++) {
		key = (uint32_t)(t << x->shift4);
		while (r + 1 < x->n4 && x->e4[r + 1].start <= key)
			r++;
		x->i4[t] = (uint32_t)r;
	}
	x->i4[nidx] = (uint32_t)(x->n4 - 1);
	free(ev);
	return 0;
fail:
	free(ev);
	return -1;
}

/* IPv6 events are sorted with qsort: there are usually far fewer. */
struct bl_ev6 {
	struct bl_u128	pos;
	uint8_t		list;
	uint8_t		start;
};

/* bl_u128_cmp - order two 128-bit values */
static int
bl_u128_cmp(const struct bl_u128 *a, const struct bl_u128 *b)
{
	if (a->hi != b->hi)
		return a->hi < b->hi ? -1 : 1;
	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return 0;
}

/* bl_ev6_cmp - qsort order of IPv6 events */
static int
bl_ev6_cmp(const void *a, const void *b)
{
	return bl_u128_cmp(&((const struct bl_ev6 *)a)->pos,
	    &((const struct bl_ev6 *)b)->pos);
}

/* bl_build6 - the IPv6 twin of bl_build4 */
static int
bl_build6(struct bl_index *x, struct bl_list **lists, int nl,
    struct bl_masks *ms)
{
	struct bl_ev6 *ev;
	struct bl_u128 pos, key;
	uint64_t mask = 0;
	uint32_t cnt[BL_MAX_LISTS] = { 0 };
	size_t nev = 0, i, j, r, total = 0, t, nidx;
	int64_t id;
	int li;

	for (li = 0; li < nl; li++)
		total += lists[li]->n6;
	if ((ev = reallocarray(NULL, total * 2 + 1, sizeof(*ev))) == NULL)
		return -1;
	for (li = 0; li < nl; li++)
		for (i = 0; i < lists[li]->n6; i++) {
			const struct bl_r6 *rg = &lists[li]->v6[i];

			ev[nev].pos = rg->lo;
			ev[nev].list = (uint8_t)li;
			ev[nev++].start = 1;
			if (rg->hi.hi == UINT64_MAX && rg->hi.lo == UINT64_MAX)
				continue;
			ev[nev].pos.lo = rg->hi.lo + 1;
			ev[nev].pos.hi = rg->hi.hi + (rg->hi.lo == UINT64_MAX);
			ev[nev].list = (uint8_t)li;
			ev[nev++].start = 0;
		}
	qsort(ev, nev, sizeof(*ev), bl_ev6_cmp);
	if ((x->e6 = bl_big(nev + 1, sizeof(*x->e6))) == NULL)
		goto fail;
	memset(&x->e6[0], 0, sizeof(x->e6[0]));
	r = 1;
	for (i = 0; i < nev; i = j) {
		pos = ev[i].pos;
		for (j = i; j < nev && bl_u128_cmp(&ev[j].pos, &pos) == 0; j++)
			mask = bl_sweep(cnt, mask, ev[j].list, ev[j].start);
		if ((id = bl_mask_id(ms, mask)) == -1)
			goto fail;
		if ((uint32_t)id == x->e6[r - 1].mi)
			continue;
		if (bl_u128_cmp(&x->e6[r - 1].start, &pos) == 0) {
			x->e6[r - 1].mi = (uint32_t)id;
			if (r > 1 && x->e6[r - 2].mi == (uint32_t)id)
				r--;
			continue;
		}
		x->e6[r].start = pos;
		x->e6[r++].mi = (uint32_t)id;
	}
	x->n6 = r;
	x->shift6 = 64 - bl_index_bits(r);
	nidx = (size_t)1 << (64 - x->shift6);
	if ((x->i6 = bl_big(nidx + 1, sizeof(*x->i6))) == NULL)
		goto fail;
	for (t = 0, r = 0; t < nidx; t++) {
		key.hi = (uint64_t)t << x->shift6;
		key.lo = 0;
		while (r + 1 < x->n6 &&
		    bl_u128_cmp(&x->e6[r + 1].start, &key) <= 0)
			r++;
		x->i6[t] = (uint32_t)r;
	}
	x->i6[nidx] = (uint32_t)(x->n6 - 1);
	free(ev);
	return 0;
fail:
	free(ev);
	return -1;
}

/* bl_index_free - free a search structure */
static void
bl_index_free(struct bl_index *x)
{
	if (x == NULL)
		return;
	free(x->e4);
	free(x->i4);
	free(x->e6);
	free(x->i6);
	free(x->mt);
	free(x);
}

/* bl_index_build - the search structure for lists, in load order */
static struct bl_index *
bl_index_build(struct bl_list **lists, int nl)
{
	struct bl_masks ms = { 0 };
	struct bl_index *x;
	int i;

	if ((x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	x->nlists = nl;
	for (i = 0; i < nl; i++) {
		x->tag[i] = lists[i]->tag;
		x->msg[i] = lists[i]->msg;
	}
	/* mask 0 (no list) first, so it is id 0 for the initial ranges */
	if (bl_mask_id(&ms, 0) != 0 || bl_build4(x, lists, nl, &ms) == -1 ||
	    bl_build6(x, lists, nl, &ms) == -1) {
		free(ms.m);
		free(ms.slot);
		bl_index_free(x);
		return NULL;
	}
	free(ms.slot);
	x->mt = ms.m;
	x->nmt = ms.n;
	x->bytes = sizeof(*x) + x->n4 * sizeof(*x->e4) +
	    x->n6 * sizeof(*x->e6) + x->nmt * sizeof(*x->mt) +
	    (((size_t)1 << (32 - x->shift4)) + 1) * sizeof(*x->i4) +
	    (((size_t)1 << (64 - x->shift6)) + 1) * sizeof(*x->i6);
	return x;
}

/* --- the set --------------------------------------------------------- */

/* bl_set_new - an empty set, ready for lookups */
struct bl_set *
bl_set_new(void)
{
	struct bl_set *set;

	if ((set = calloc(1, sizeof(*set))) == NULL)
		return NULL;
	if ((set->idx = bl_index_build(set->list, 0)) == NULL) {
		free(set);
		return NULL;
	}
	return set;
}

/* bl_set_free - free a set and every list in it */
void
bl_set_free(struct bl_set *set)
{
	int i;

	if (set == NULL)
		return;
	for (i = 0; i < set->nlists; i++)
		bl_list_free(set->list[i]);
	bl_index_free(set->idx);
	free(set);
}

/*
 * bl_set_apply - replace, add or remove a list by tag, then swap in a new
 * search structure. A replaced list keeps its place in the load order; a
 * new tag goes last. On error the set is unchanged and list is freed.
 * Pointers from an earlier bl_lookup are invalid after this call.
 */
int
bl_set_apply(struct bl_set *set, struct bl_list *list, char *err,
    size_t errsz)
{
	struct bl_list *next[BL_MAX_LISTS], *old = NULL;
	struct bl_index *x, *oldx;
	int i, n = set->nlists, found = -1;

	for (i = 0; i < n; i++)
		if (strcmp(set->list[i]->tag, list->tag) == 0)
			found = i;
	memcpy(next, set->list, sizeof(next));
	if (list->n4 + list->n6 == 0) {
		bl_list_free(list);
		if (found == -1)
			return 0;
		old = next[found];
		memmove(&next[found], &next[found + 1],
		    (size_t)(n - found - 1) * sizeof(next[0]));
		n--;
		list = NULL;
	} else if (found != -1) {
		old = next[found];
		next[found] = list;
	} else if (n == BL_MAX_LISTS) {
		snprintf(err, errsz, "too many lists (at most %d), tag %s not "
		    "loaded", BL_MAX_LISTS, list->tag);
		bl_list_free(list);
		return -1;
	} else
		next[n++] = list;
	if ((x = bl_index_build(next, n)) == NULL) {
		snprintf(err, errsz, "out of memory building blacklists");
		bl_list_free(list);
		return -1;
	}
	memcpy(set->list, next, sizeof(next));
	set->nlists = n;
	/* why: the structure is complete before it is published, so a
	 * reader on another thread sees the old one or the new one */
	oldx = set->idx;
	__atomic_store_n(&set->idx, x, __ATOMIC_RELEASE);
	bl_index_free(oldx);
	bl_list_free(old);
	return 0;
}

/* bl_find4 - the mask id of the range holding a (IPv4). The search is
 * branch-free: the candidates are few and a mispredicted branch costs
 * about as much as the search itself. */
static uint32_t
bl_find4(const struct bl_index *x, uint32_t a)
{
	uint32_t lo = x->i4[a >> x->shift4];
	uint32_t n = x->i4[(a >> x->shift4) + 1] - lo + 1, half;
	const struct bl_e4 *e = x->e4 + lo;

	while (n > 1) {
		half = n >> 1;
		e = e[half].start <= a ? e + half : e;
		n -= half;
	}
	return e->mi;
}

/* bl_find6 - the mask id of the range holding a (IPv6), as bl_find4 */
static uint32_t
bl_find6(const struct bl_index *x, struct bl_u128 a)
{
	uint32_t lo = x->i6[a.hi >> x->shift6];
	uint32_t n = x->i6[(a.hi >> x->shift6) + 1] - lo + 1, half;
	const struct bl_e6 *e = x->e6 + lo;

	while (n > 1) {
		half = n >> 1;
		e = bl_u128_cmp(&e[half].start, &a) <= 0 ? e + half : e;
		n -= half;
	}
	return e->mi;
}

/* bl_lookup - fill m with every list containing addr, in load order */
int
bl_lookup(const struct bl_set *set, const struct bl_addr *addr,
    struct bl_match *m)
{
	const struct bl_index *x = __atomic_load_n(&set->idx, __ATOMIC_ACQUIRE);
	const uint8_t *b = addr->a;
	uint64_t mask;
	int i;

	m->n = 0;
	if (addr->family == AF_INET6 && memcmp(b, bl_mapped, 12) == 0)
		b += 12;
	else if (addr->family == AF_INET6) {
		mask = x->mt[bl_find6(x, bl_u128_load(b))];
		goto found;
	} else if (addr->family != AF_INET)
		return 0;
	mask = x->mt[bl_find4(x, (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	    (uint32_t)b[2] << 8 | b[3])];
found:
	for (i = 0; mask != 0; i++, mask >>= 1)
		if (mask & 1) {
			m->tag[m->n] = x->tag[i];
			m->msg[m->n++] = x->msg[i];
		}
	return m->n;
}

/* bl_addr_from_sa - a bl_addr from a socket address (v4-mapped -> v4) */
int
bl_addr_from_sa(const struct sockaddr *sa, struct bl_addr *out)
{
	const struct sockaddr_in6 *s6;

	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		out->family = AF_INET;
		memcpy(out->a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	s6 = (const struct sockaddr_in6 *)sa;
	if (memcmp(s6->sin6_addr.s6_addr, bl_mapped, 12) == 0) {
		out->family = AF_INET;
		memcpy(out->a, s6->sin6_addr.s6_addr + 12, 4);
		return 0;
	}
	out->family = AF_INET6;
	memcpy(out->a, s6->sin6_addr.s6_addr, 16);
	return 0;
}

/* bl_count - number of lists and of prefixes loaded */
void
bl_count(const struct bl_set *set, int *lists, long *prefixes)
{
	long p = 0;
	int i;

	for (i = 0; i < set->nlists; i++)
		p += bl_list_size(set->list[i]);
	if (lists != NULL)
		*lists = set->nlists;
	if (prefixes != NULL)
		*prefixes = p;
}

/* bl_memory - bytes held by the search structure and the lists */
size_t
bl_memory(const struct bl_set *set)
{
	const struct bl_index *x = __atomic_load_n(&set->idx, __ATOMIC_ACQUIRE);
	size_t b = sizeof(*set) + x->bytes;
	int i;

	for (i = 0; i < set->nlists; i++)
		b += sizeof(struct bl_list) + strlen(set->list[i]->msg) + 1 +
		    set->list[i]->cap4 * sizeof(struct bl_r4) +
		    set->list[i]->cap6 * sizeof(struct bl_r6);
	return b;
}
