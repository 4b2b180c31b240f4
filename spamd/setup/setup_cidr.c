/*
 * setup_cidr.c - address ranges for spamd-setup: merging, cutting white
 * ranges out of black ones, splitting ranges into the fewest CIDR blocks,
 * and the control message the engine's config port reads.
 *
 * Everything works on [lo, hi] ranges: a list line becomes one range, a
 * collapsed set is sorted, disjoint and non-adjacent, so the subtraction
 * is one merge walk and the CIDR split of each range is minimal (the
 * greedy split of a maximal range is optimal, and ranges that touch are
 * already merged).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spamd/setup/setup.h"

/* setup_grow - room for one more element of a growing array */
static int
setup_grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap == 0 ? 64 : *cap * 2;
	if ((p = reallocarray(*arr, ncap, elem)) == NULL)
		return -1;
	*arr = p;
	*cap = ncap;
	return 0;
}

/* setup_addrs_free - free the arrays and zero the set */
void
setup_addrs_free(struct setup_addrs *a)
{
	free(a->v4);
	free(a->v6);
	memset(a, 0, sizeof(*a));
}

/* setup_addrs_add4 - append an IPv4 range */
int
setup_addrs_add4(struct setup_addrs *a, uint32_t lo, uint32_t hi)
{
	if (setup_grow((void **)&a->v4, &a->cap4, a->n4, sizeof(*a->v4)) == -1)
		return -1;
	a->v4[a->n4].lo = lo;
	a->v4[a->n4].hi = hi;
	a->n4++;
	return 0;
}

/* setup_addrs_add6 - append an IPv6 range */
int
setup_addrs_add6(struct setup_addrs *a, struct setup_u128 lo,
    struct setup_u128 hi)
{
	if (setup_grow((void **)&a->v6, &a->cap6, a->n6, sizeof(*a->v6)) == -1)
		return -1;
	a->v6[a->n6].lo = lo;
	a->v6[a->n6].hi = hi;
	a->n6++;
	return 0;
}

/* setup_addrs_merge - append every range of src to dst */
int
setup_addrs_merge(struct setup_addrs *dst, const struct setup_addrs *src)
{
	size_t i;

	for (i = 0; i < src->n4; i++)
		if (setup_addrs_add4(dst, src->v4[i].lo, src->v4[i].hi) == -1)
			return -1;
	for (i = 0; i < src->n6; i++)
		if (setup_addrs_add6(dst, src->v6[i].lo, src->v6[i].hi) == -1)
			return -1;
	return 0;
}

/* setup_u128_load - 16 network-order bytes as a 128-bit value */
struct setup_u128
setup_u128_load(const uint8_t *b)
{
	struct setup_u128 v = { 0, 0 };
	int i;

	for (i = 0; i < 8; i++) {
		v.hi = (v.hi << 8) | b[i];
		v.lo = (v.lo << 8) | b[8 + i];
	}
	return v;
}

/* setup_u128_store - a 128-bit value as 16 network-order bytes */
void
setup_u128_store(struct setup_u128 v, uint8_t *b)
{
	int i;

	for (i = 7; i >= 0; i--) {
		b[i] = (uint8_t)v.hi;
		b[8 + i] = (uint8_t)v.lo;
		v.hi >>= 8;
		v.lo >>= 8;
	}
}

/* u128_cmp - order of two 128-bit values */
static int
u128_cmp(struct setup_u128 a, struct setup_u128 b)
{
	if (a.hi != b.hi)
		return a.hi < b.hi ? -1 : 1;
	if (a.lo != b.lo)
		return a.lo < b.lo ? -1 : 1;
	return 0;
}

/* u128_inc - a + 1 (wraps at the top) */
static struct setup_u128
u128_inc(struct setup_u128 a)
{
	if (++a.lo == 0)
		a.hi++;
	return a;
}

/* u128_dec - a - 1 (wraps at zero) */
static struct setup_u128
u128_dec(struct setup_u128 a)
{
	if (a.lo-- == 0)
		a.hi--;
	return a;
}

/* u128_is_max - whether a is the last address */
static int
u128_is_max(struct setup_u128 a)
{
	return a.hi == UINT64_MAX && a.lo == UINT64_MAX;
}

/* setup_r4_cmp - qsort order of IPv4 ranges by start */
static int
setup_r4_cmp(const void *x, const void *y)
{
	const struct setup_r4 *a = x, *b = y;

	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return a->hi < b->hi ? -1 : a->hi > b->hi;
}

/* setup_r6_cmp - qsort order of IPv6 ranges by start */
static int
setup_r6_cmp(const void *x, const void *y)
{
	const struct setup_r6 *a = x, *b = y;
	int c = u128_cmp(a->lo, b->lo);

	return c != 0 ? c : u128_cmp(a->hi, b->hi);
}

/* setup_sort4 - LSD radix sort of IPv4 ranges by start (lists are big) */
static void
setup_sort4(struct setup_r4 *v, size_t n)
{
	struct setup_r4 *tmp, *src = v, *dst;
	size_t cnt[256], i, pass, sum, c;

	if (n < 256 || (tmp = reallocarray(NULL, n, sizeof(*tmp))) == NULL) {
		qsort(v, n, sizeof(*v), setup_r4_cmp);
		return;
	}
	dst = tmp;
	/* why: only the start matters for the merge that follows, so four
	 * byte passes over lo give a stable sort in O(n) */
	for (pass = 0; pass < 4; pass++) {
		memset(cnt, 0, sizeof(cnt));
		for (i = 0; i < n; i++)
			cnt[(src[i].lo >> (8 * pass)) & 0xff]++;
		for (sum = 0, i = 0; i < 256; i++) {
			c = cnt[i];
			cnt[i] = sum;
			sum += c;
		}
		for (i = 0; i < n; i++)
			dst[cnt[(src[i].lo >> (8 * pass)) & 0xff]++] = src[i];
		src = dst;
		dst = src == v ? tmp : v;
	}
	/* four passes: the result is back in v */
	free(tmp);
}

/* setup_collapse - sort and merge overlapping and adjacent ranges */
void
setup_collapse(struct setup_addrs *a)
{
	size_t i, o;

	if (a->n4 > 0) {
		setup_sort4(a->v4, a->n4);
		for (o = 0, i = 1; i < a->n4; i++) {
			/* adjacent (hi + 1 == lo) merges too; hi == max
			 * covers everything after it */
			if (a->v4[o].hi == UINT32_MAX ||
			    a->v4[i].lo <= a->v4[o].hi + 1) {
				if (a->v4[i].hi > a->v4[o].hi)
					a->v4[o].hi = a->v4[i].hi;
			} else
				a->v4[++o] = a->v4[i];
		}
		a->n4 = o + 1;
	}
	if (a->n6 > 0) {
		qsort(a->v6, a->n6, sizeof(*a->v6), setup_r6_cmp);
		for (o = 0, i = 1; i < a->n6; i++) {
			if (u128_is_max(a->v6[o].hi) ||
			    u128_cmp(a->v6[i].lo, u128_inc(a->v6[o].hi)) <= 0) {
				if (u128_cmp(a->v6[i].hi, a->v6[o].hi) > 0)
					a->v6[o].hi = a->v6[i].hi;
			} else
				a->v6[++o] = a->v6[i];
		}
		a->n6 = o + 1;
	}
}

/* setup_sub4 - black minus white for IPv4, into a new array */
static int
setup_sub4(struct setup_addrs *b, const struct setup_addrs *w)
{
	struct setup_addrs out = { 0 };
	size_t i, j = 0;
	uint32_t lo, hi;

	for (i = 0; i < b->n4; i++) {
		lo = b->v4[i].lo;
		hi = b->v4[i].hi;
		/* skip white ranges wholly before this black range */
		while (j < w->n4 && w->v4[j].hi < lo)
			j++;
		for (; j < w->n4 && w->v4[j].lo <= hi; j++) {
			if (w->v4[j].lo > lo &&
			    setup_addrs_add4(&out, lo, w->v4[j].lo - 1) == -1)
				goto fail;
			if (w->v4[j].hi >= hi)
				goto next;	/* the rest is white */
			lo = w->v4[j].hi + 1;
		}
		if (setup_addrs_add4(&out, lo, hi) == -1)
			goto fail;
next:
		/* why: keep j; the white range that ended this black range
		 * may reach into the next black range too */
		;
	}
	free(b->v4);
	b->v4 = out.v4;
	b->n4 = out.n4;
	b->cap4 = out.cap4;
	return 0;
fail:
	free(out.v4);
	return -1;
}

/* setup_sub6 - black minus white for IPv6, into a new array */
static int
setup_sub6(struct setup_addrs *b, const struct setup_addrs *w)
{
	struct setup_addrs out = { 0 };
	struct setup_u128 lo, hi;
	size_t i, j = 0;

	for (i = 0; i < b->n6; i++) {
		lo = b->v6[i].lo;
		hi = b->v6[i].hi;
		while (j < w->n6 && u128_cmp(w->v6[j].hi, lo) < 0)
			j++;
		for (; j < w->n6 && u128_cmp(w->v6[j].lo, hi) <= 0; j++) {
			if (u128_cmp(w->v6[j].lo, lo) > 0 &&
			    setup_addrs_add6(&out, lo, u128_dec(w->v6[j].lo)) == -1)
				goto fail;
			if (u128_cmp(w->v6[j].hi, hi) >= 0)
				goto next;
			lo = u128_inc(w->v6[j].hi);
		}
		if (setup_addrs_add6(&out, lo, hi) == -1)
			goto fail;
next:
		;
	}
	free(b->v6);
	b->v6 = out.v6;
	b->n6 = out.n6;
	b->cap6 = out.cap6;
	return 0;
fail:
	free(out.v6);
	return -1;
}

/* setup_subtract - cut white out of black; both collapsed */
int
setup_subtract(struct setup_addrs *black, const struct setup_addrs *white)
{
	if (white->n4 > 0 && setup_sub4(black, white) == -1)
		return -1;
	if (white->n6 > 0 && setup_sub6(black, white) == -1)
		return -1;
	return 0;
}

/* setup_ctz64 - trailing zero bits of v (64 for 0) */
static int
setup_ctz64(uint64_t v)
{
	return v == 0 ? 64 : __builtin_ctzll(v);
}

/*
 * setup_block4 - prefix length of the largest block starting at lo that
 * ends at or before hi (33 - never: at least /32)
 */
static int
setup_block4(uint32_t lo, uint32_t hi)
{
	uint64_t span = (uint64_t)hi - lo + 1;
	int k = setup_ctz64(lo);

	if (k > 32)
		k = 32;
	/* shrink the block until it fits in the span */
	while (k > 0 && ((uint64_t)1 << k) > span)
		k--;
	return 32 - k;
}

/* setup_block6 - the same for IPv6: the prefix length at lo */
static int
setup_block6(struct setup_u128 lo, struct setup_u128 hi)
{
	struct setup_u128 span;	/* hi - lo, a block of 2^k fits if 2^k - 1 <= span */
	int k, zl;

	span.hi = hi.hi - lo.hi - (hi.lo < lo.lo);
	span.lo = hi.lo - lo.lo;
	zl = setup_ctz64(lo.lo);
	k = zl < 64 ? zl : 64 + setup_ctz64(lo.hi);
	if (k > 128)
		k = 128;
	for (; k > 0; k--) {
		/* the block's size - 1 as a u128 */
		struct setup_u128 m;

		m.hi = k > 64 ? (k == 128 ? UINT64_MAX :
		    ((uint64_t)1 << (k - 64)) - 1) : 0;
		m.lo = k >= 64 ? UINT64_MAX : ((uint64_t)1 << k) - 1;
		if (u128_cmp(m, span) <= 0)
			break;
	}
	return 128 - k;
}

/* setup_cidr_count - number of blocks per family; -1 if a /0 is needed */
int
setup_cidr_count(const struct setup_addrs *a, long *n4, long *n6, char *err,
    size_t errsz)
{
	struct setup_u128 lo, step;
	size_t i;
	uint32_t l4;
	int m;

	*n4 = *n6 = 0;
	for (i = 0; i < a->n4; i++) {
		if (a->v4[i].lo == 0 && a->v4[i].hi == UINT32_MAX) {
			snprintf(err, errsz, "the list covers every IPv4 "
			    "address (a /0); refused");
			return -1;
		}
		for (l4 = a->v4[i].lo;;) {
			m = setup_block4(l4, a->v4[i].hi);
			(*n4)++;
			if ((uint64_t)l4 + ((uint64_t)1 << (32 - m)) - 1 >=
			    a->v4[i].hi)
				break;
			l4 += (uint32_t)((uint64_t)1 << (32 - m));
		}
	}
	for (i = 0; i < a->n6; i++) {
		if (a->v6[i].lo.hi == 0 && a->v6[i].lo.lo == 0 &&
		    u128_is_max(a->v6[i].hi)) {
			snprintf(err, errsz, "the list covers every IPv6 "
			    "address (a /0); refused");
			return -1;
		}
		for (lo = a->v6[i].lo;;) {
			m = setup_block6(lo, a->v6[i].hi);
			(*n6)++;
			/* last = lo + 2^(128-m) - 1 */
			step.hi = 128 - m >= 64 ? (128 - m == 128 ? 0 :
			    (uint64_t)1 << (64 - m)) : 0;
			step.lo = 128 - m >= 64 ? 0 : (uint64_t)1 << (128 - m);
			{
				struct setup_u128 next;

				next.lo = lo.lo + step.lo;
				next.hi = lo.hi + step.hi + (next.lo < lo.lo);
				if (u128_cmp(u128_dec(next), a->v6[i].hi) >= 0 ||
				    (next.hi == 0 && next.lo == 0))
					break;
				lo = next;
			}
		}
	}
	return 0;
}

/* setup_fmt4 - "a.b.c.d/m" into buf (at least 19 bytes); returns length */
static size_t
setup_fmt4(uint32_t a, int m, char *buf)
{
	char *p = buf;
	int i, v;

	for (i = 3; i >= 0; i--) {
		v = (a >> (8 * i)) & 0xff;
		if (v >= 100)
			*p++ = (char)('0' + v / 100);
		if (v >= 10)
			*p++ = (char)('0' + (v / 10) % 10);
		*p++ = (char)('0' + v % 10);
		*p++ = i > 0 ? '.' : '/';
	}
	if (m >= 10)
		*p++ = (char)('0' + m / 10);
	*p++ = (char)('0' + m % 10);
	*p = '\0';
	return (size_t)(p - buf);
}

/* setup_cidr_each - call fn for every CIDR block in order */
int
setup_cidr_each(const struct setup_addrs *a,
    int (*fn)(void *arg, int af, const char *cidr), void *arg)
{
	char buf[INET6_ADDRSTRLEN + 8];
	struct setup_u128 lo, step, next;
	uint8_t b[16];
	size_t i, n;
	uint32_t l4;
	int m, r;

	for (i = 0; i < a->n4; i++) {
		for (l4 = a->v4[i].lo;;) {
			m = setup_block4(l4, a->v4[i].hi);
			setup_fmt4(l4, m, buf);
			if ((r = fn(arg, AF_INET, buf)) != 0)
				return r;
			if ((uint64_t)l4 + ((uint64_t)1 << (32 - m)) - 1 >=
			    a->v4[i].hi)
				break;
			l4 += (uint32_t)((uint64_t)1 << (32 - m));
		}
	}
	for (i = 0; i < a->n6; i++) {
		for (lo = a->v6[i].lo;;) {
			m = setup_block6(lo, a->v6[i].hi);
			setup_u128_store(lo, b);
			inet_ntop(AF_INET6, b, buf, sizeof(buf));
			n = strlen(buf);
			snprintf(buf + n, sizeof(buf) - n, "/%d", m);
			if ((r = fn(arg, AF_INET6, buf)) != 0)
				return r;
			step.hi = 128 - m >= 64 ? (128 - m == 128 ? 0 :
			    (uint64_t)1 << (64 - m)) : 0;
			step.lo = 128 - m >= 64 ? 0 : (uint64_t)1 << (128 - m);
			next.lo = lo.lo + step.lo;
			next.hi = lo.hi + step.hi + (next.lo < lo.lo);
			if ((next.hi == 0 && next.lo == 0) ||
			    u128_cmp(u128_dec(next), a->v6[i].hi) >= 0)
				break;
			lo = next;
		}
	}
	return 0;
}

/* setup_buf_add - append n bytes */
int
setup_buf_add(struct setup_buf *b, const void *s, size_t n)
{
	size_t ncap;
	char *p;

	if (b->len + n + 1 > b->cap) {
		ncap = b->cap == 0 ? 4096 : b->cap;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if ((p = realloc(b->p, ncap)) == NULL)
			return -1;
		b->p = p;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';	/* handy for text; not counted */
	return 0;
}

/* setup_buf_free - free and zero */
void
setup_buf_free(struct setup_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/*
 * setup_msg_escape - a message as the control protocol carries it.
 *
 * The text follows OpenBSD: its spamd-setup passes a message's backslashes
 * through and its spamd reads \n, \", \\, %A and %% in it; any other '\'
 * or '%' is shown as it is. So a "100% spam" message or a message file
 * with a literal \n works there. Our engine takes only those escapes and
 * refuses the rest at load time, so each literal '\' and '%' is written
 * doubled here, and a raw newline (a file's line end, or getcap's \n in a
 * quoted msg=) becomes \n; a CR before it (a CRLF file) is dropped.
 */
int
setup_msg_escape(const char *raw, char *out, size_t outsz, char *err,
    size_t errsz)
{
	size_t o = 0;
	const char *p;
	char what[160];

	for (p = raw; *p != '\0'; p++) {
		char one[3] = { *p, '\0', '\0' };
		const char *rep = one;

		if (*p == '"')
			rep = "\\\"";
		else if (*p == '\n')
			rep = "\\n";
		else if (*p == '\r' && p[1] == '\n')
			rep = "";
		else if (*p == '\\' && (p[1] == 'n' || p[1] == '"' ||
		    p[1] == '\\')) {
			one[1] = *++p;	/* an escape spamd reads: kept */
		} else if (*p == '\\')
			rep = "\\\\";
		else if (*p == '%' && (p[1] == 'A' || p[1] == '%'))
			one[1] = *++p;
		else if (*p == '%')
			rep = "%%";
		if (o + strlen(rep) + 1 > outsz || o + strlen(rep) >=
		    BL_MSG_MAX) {
			snprintf(err, errsz, "message too long (the engine "
			    "takes %d bytes escaped)", BL_MSG_MAX - 1);
			return -1;
		}
		memcpy(out + o, rep, strlen(rep));
		o += strlen(rep);
	}
	out[o] = '\0';
	if (bl_check_template(out, what, sizeof(what)) == -1) {
		/* why: offsets are in the escaped text; say so */
		snprintf(err, errsz, "message: %s (of the escaped text)", what);
		return -1;
	}
	return 0;
}

/* A control message being written: the buffer and the first error. */
struct setup_mw {
	struct setup_buf	*b;
	int			 af;	/* which family to write */
};

/* setup_mw_one - append ";cidr" for one block of the wanted family */
static int
setup_mw_one(void *arg, int af, const char *cidr)
{
	struct setup_mw *w = arg;

	if (af != w->af)
		return 0;
	if (setup_buf_add(w->b, ";", 1) == -1 ||
	    setup_buf_add(w->b, cidr, strlen(cidr)) == -1)
		return -1;
	return 0;
}

/* setup_message - the whole control line for a black list */
int
setup_message(const char *tag, const char *rawmsg, const struct setup_addrs *a,
    struct setup_buf *out, char *err, size_t errsz)
{
	char esc[BL_MSG_MAX], num[64];
	struct setup_mw w = { out, AF_INET };
	struct setup_addrs only4 = *a, only6 = *a;
	long n4, n6;

	/* why: one walk per family, each over that family's ranges only */
	only4.n6 = 0;
	only6.n4 = 0;

	if (setup_msg_escape(rawmsg != NULL ? rawmsg : "", esc, sizeof(esc),
	    err, errsz) == -1)
		return -1;
	if (setup_cidr_count(a, &n4, &n6, err, errsz) == -1)
		return -1;
	snprintf(num, sizeof(num), "\";inet;%ld", n4);
	if (setup_buf_add(out, tag, strlen(tag)) == -1 ||
	    setup_buf_add(out, ";\"", 2) == -1 ||
	    setup_buf_add(out, esc, strlen(esc)) == -1 ||
	    setup_buf_add(out, num, strlen(num)) == -1 ||
	    setup_cidr_each(&only4, setup_mw_one, &w) != 0)
		goto nomem;
	if (n6 > 0) {
		/* why: OpenBSD spamd knows only inet; send inet6 only when
		 * there is something to say */
		snprintf(num, sizeof(num), ";inet6;%ld", n6);
		w.af = AF_INET6;
		if (setup_buf_add(out, num, strlen(num)) == -1 ||
		    setup_cidr_each(&only6, setup_mw_one, &w) != 0)
			goto nomem;
	}
	if (setup_buf_add(out, "\n", 1) == -1)
		goto nomem;
	return 0;
nomem:
	snprintf(err, errsz, "out of memory building the message");
	return -1;
}
