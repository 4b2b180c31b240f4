/*
 * setup_list.c - list files for spamd-setup: one entry a line, a single
 * IPv4 or IPv6 address, a CIDR block or an "a - b" range; '#' (and ';',
 * as in Spamhaus DROP files) starts a comment; blank lines are skipped.
 * A bad line is reported as "name:line: what" and skipped, never fatal.
 * Lists may be gzip-compressed: inflated with zlib under a size cap.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "spamd/common/log.h"
#include "spamd/setup/setup.h"

#define SETUP_LINE_MAX	256	/* longer lines are bad lines */

/* The IPv4-mapped IPv6 prefix, ::ffff:0:0/96. */
static const uint8_t setup_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0xff, 0xff };

/* One parsed address: family, value and the text length consumed. */
struct setup_one {
	int		af;
	uint8_t		a[16];
};

/* setup_is_blank - space or tab */
static int
setup_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* setup_addr - parse an address token of n bytes; -1 if not one */
static int
setup_addr(const char *s, size_t n, struct setup_one *o)
{
	char tmp[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	memset(o->a, 0, sizeof(o->a));
	if (inet_pton(AF_INET, tmp, o->a) == 1) {
		o->af = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, tmp, o->a) == 1) {
		o->af = AF_INET6;
		return 0;
	}
	return -1;
}

/* setup_v4 - the IPv4 address of a parsed one as a number */
static uint32_t
setup_v4(const struct setup_one *o)
{
	return (uint32_t)o->a[0] << 24 | (uint32_t)o->a[1] << 16 |
	    (uint32_t)o->a[2] << 8 | o->a[3];
}

/* setup_unmap - an IPv4-mapped IPv6 address (with at least 96 bits of
 * prefix) becomes IPv4, as the engine looks such clients up as IPv4 */
static void
setup_unmap(struct setup_one *o, int *bits)
{
	if (o->af != AF_INET6 || memcmp(o->a, setup_mapped, 12) != 0 ||
	    (bits != NULL && *bits < 96))
		return;
	memmove(o->a, o->a + 12, 4);
	memset(o->a + 4, 0, 12);
	o->af = AF_INET;
	if (bits != NULL)
		*bits -= 96;
}

/* setup_bad - "label: 'token'" into what (token cut to 64 bytes, bytes
 * other than printable ASCII shown as '?': lists are outside input) */
static int
setup_bad(char *what, size_t whatsz, const char *label, const char *tok,
    size_t n)
{
	char safe[65];
	size_t i;

	if (n > 64)
		n = 64;
	for (i = 0; i < n; i++)
		safe[i] = tok[i] >= 0x20 && tok[i] < 0x7f ? tok[i] : '?';
	safe[n] = '\0';
	snprintf(what, whatsz, "%s: '%s'", label, safe);
	return -1;
}

/* setup_list_line - parse one line into out */
int
setup_list_line(const char *line, size_t len, struct setup_addrs *out,
    char *what, size_t whatsz)
{
	struct setup_one a, b;
	const char *s, *e, *t1, *t2 = NULL;
	size_t n1, n2 = 0;
	int bits = -1, maxbits;
	const char *slash;
	long v;
	const char *end;

	/* cut the comment, then blanks and a CR at both ends */
	for (e = line; e < line + len && *e != '#' && *e != ';'; e++)
		;
	for (s = line; s < e && (setup_is_blank(*s) || *s == '\r'); s++)
		;
	while (e > s && (setup_is_blank(e[-1]) || e[-1] == '\r'))
		e--;
	if (s == e)
		return 0;
	if (memchr(s, '\0', (size_t)(e - s)) != NULL) {
		snprintf(what, whatsz, "NUL byte in line");
		return -1;
	}
	/* first token: up to a blank or '-' (an IPv6 address has no '-') */
	for (t1 = s; s < e && !setup_is_blank(*s) && *s != '-'; s++)
		;
	n1 = (size_t)(s - t1);
	while (s < e && setup_is_blank(*s))
		s++;
	if (s < e) {
		if (*s != '-' && (setup_addr(t1, (slash = memchr(t1, '/',
		    n1)) != NULL ? (size_t)(slash - t1) : n1, &a) == -1))
			return setup_bad(what, whatsz, "bad address", t1,
			    (size_t)(e - t1));
		if (*s != '-')
			return setup_bad(what, whatsz, "junk after address",
			    s, (size_t)(e - s));
		for (s++; s < e && setup_is_blank(*s); s++)
			;
		t2 = s;
		while (s < e && !setup_is_blank(*s))
			s++;
		n2 = (size_t)(s - t2);
		if (n2 == 0)
			return setup_bad(what, whatsz, "range without an end",
			    t1, (size_t)(e - t1));
		if (s < e)
			return setup_bad(what, whatsz, "junk after range", s,
			    (size_t)(e - s));
	}
	if (t2 == NULL && (slash = memchr(t1, '/', n1)) != NULL) {
		/* CIDR: addr/bits */
		if (setup_addr(t1, (size_t)(slash - t1), &a) == -1)
			return setup_bad(what, whatsz, "bad address",
			    t1, (size_t)(e - t1));
		maxbits = a.af == AF_INET ? 32 : 128;
		if (slash + 1 == t1 + n1 || slash[1] < '0' || slash[1] > '9')
			return setup_bad(what, whatsz, "bad prefix length", t1, n1);
		/* digits by hand: the line is not NUL-terminated */
		for (v = 0, end = slash + 1; end < t1 + n1 && *end >= '0' &&
		    *end <= '9' && v <= 128; end++)
			v = v * 10 + (*end - '0');
		if (end != t1 + n1 || v > maxbits)
			return setup_bad(what, whatsz, "bad prefix length",
			    t1, n1);
		bits = (int)v;
		setup_unmap(&a, &bits);
		if (bits == 0)
			return setup_bad(what, whatsz, "a /0 lists every "
			    "address; refused", t1, n1);
	} else {
		if (setup_addr(t1, n1, &a) == -1)
			return setup_bad(what, whatsz, "bad address",
			    t1, (size_t)(e - t1));
		setup_unmap(&a, NULL);
	}
	if (t2 != NULL) {
		if (setup_addr(t2, n2, &b) == -1)
			return setup_bad(what, whatsz, "bad range end",
			    t2, n2);
		setup_unmap(&b, NULL);
		if (a.af != b.af)
			return setup_bad(what, whatsz, "range mixes IPv4 and "
			    "IPv6", t1, (size_t)(e - t1));
	} else
		b = a;
	if (a.af == AF_INET) {
		uint32_t lo = setup_v4(&a), hi = setup_v4(&b), m;

		if (bits >= 0) {
			m = UINT32_MAX << (32 - bits);
			lo &= m;
			hi = lo | ~m;
		}
		if (lo > hi)
			return setup_bad(what, whatsz, "range start after its "
			    "end", t1, (size_t)(e - t1));
		if (lo == 0 && hi == UINT32_MAX)
			return setup_bad(what, whatsz, "range covers every "
			    "IPv4 address; refused", t1,
			    (size_t)(e - t1));
		if (setup_addrs_add4(out, lo, hi) == -1)
			goto nomem;
		return 1;
	} else {
		struct setup_u128 lo = setup_u128_load(a.a);
		struct setup_u128 hi = setup_u128_load(b.a);

		if (bits >= 0) {
			uint64_t mh, ml;

			mh = bits >= 64 ? UINT64_MAX : UINT64_MAX << (64 - bits);
			ml = bits <= 64 ? 0 : bits == 128 ? UINT64_MAX :
			    UINT64_MAX << (128 - bits);
			lo.hi &= mh;
			lo.lo &= ml;
			hi.hi = lo.hi | ~mh;
			hi.lo = lo.lo | ~ml;
		}
		if (lo.hi > hi.hi || (lo.hi == hi.hi && lo.lo > hi.lo))
			return setup_bad(what, whatsz, "range start after its "
			    "end", t1, (size_t)(e - t1));
		if (lo.hi == 0 && lo.lo == 0 && hi.hi == UINT64_MAX &&
		    hi.lo == UINT64_MAX)
			return setup_bad(what, whatsz, "range covers every "
			    "IPv6 address; refused", t1,
			    (size_t)(e - t1));
		if (setup_addrs_add6(out, lo, hi) == -1)
			goto nomem;
		return 1;
	}
nomem:
	snprintf(what, whatsz, "out of memory");
	return -2;
}

/* setup_list_parse - parse a whole list, warning about bad lines */
int
setup_list_parse(const char *buf, size_t len, const char *name,
    struct setup_addrs *out, setup_warn_fn *warn, void *arg, long *nbad)
{
	const char *p = buf, *end = buf + len, *nl;
	char what[160], text[400];
	unsigned long lineno = 0;
	size_t n;
	int r;

	*nbad = 0;
	while (p < end) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (n > SETUP_LINE_MAX) {
			snprintf(what, sizeof(what), "line longer than %d bytes",
			    SETUP_LINE_MAX);
			r = -1;
		} else
			r = setup_list_line(p, n, out, what, sizeof(what));
		if (r == -2)
			return -1;
		if (r == -1) {
			(*nbad)++;
			snprintf(text, sizeof(text), "%s:%lu: %s", name, lineno,
			    what);
			if (warn != NULL)
				warn(arg, text);
			else
				log_warnx("%s", text);
		}
		p += n + 1;
	}
	return 0;
}

/* setup_is_gzip - whether the data starts with the gzip magic */
int
setup_is_gzip(const void *buf, size_t len)
{
	const uint8_t *b = buf;

	return len >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

/* setup_gunzip - inflate gzip data under a size cap */
int
setup_gunzip(const void *in, size_t len, size_t cap, struct setup_buf *out,
    char *err, size_t errsz)
{
	z_stream z;
	size_t room, ncap;
	char *p;
	int r = Z_OK;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
		snprintf(err, errsz, "gzip: inflateInit failed");
		return -1;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	/* why: zlib counts in uInt; our caps keep len far below 4 GiB */
	z.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
	for (;;) {
		/* inflate straight into the buffer, growing it (4x the input
		 * to start: lists compress about that well), one byte more
		 * than the cap so "too big" is seen */
		if (out->cap - out->len <= 1) {
			ncap = out->cap == 0 ? len * 4 + 65536 : out->cap * 2;
			if (ncap > cap + 2)
				ncap = cap + 2;
			if (ncap <= out->len + 1 ||
			    (p = realloc(out->p, ncap)) == NULL) {
				snprintf(err, errsz, ncap <= out->len + 1 ?
				    "gzip: inflated data larger than the cap" :
				    "gzip: out of memory");
				goto fail;
			}
			out->p = p;
			out->cap = ncap;
		}
		room = out->cap - out->len - 1;
		z.next_out = (Bytef *)out->p + out->len;
		if (room > UINT32_MAX)
			room = UINT32_MAX;
		z.avail_out = (uInt)room;
		r = inflate(&z, Z_NO_FLUSH);
		out->len += room - z.avail_out;
		out->p[out->len] = '\0';
		if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR) {
			snprintf(err, errsz, "gzip: corrupt data at input byte "
			    "%lu: %s", (unsigned long)z.total_in,
			    z.msg != NULL ? z.msg : "inflate error");
			goto fail;
		}
		if (out->len > cap) {
			snprintf(err, errsz, "gzip: inflated data larger than "
			    "the cap of %zu bytes", cap);
			goto fail;
		}
		if (r == Z_STREAM_END) {
			/* several members are one file (gzip(1) does that
			 * for concatenated files); trailing zeros are fine */
			if (z.avail_in >= 2 && z.next_in[0] == 0x1f &&
			    z.next_in[1] == 0x8b) {
				if (inflateReset(&z) != Z_OK) {
					snprintf(err, errsz, "gzip: reset failed");
					goto fail;
				}
				continue;
			}
			break;
		}
		if (z.avail_in == 0 && z.avail_out != 0) {
			/* output room left and no input: it ended early */
			snprintf(err, errsz, "gzip: truncated data (%zu bytes "
			    "read, stream not finished)", len);
			goto fail;
		}
	}
	inflateEnd(&z);
	return 0;
fail:
	inflateEnd(&z);
	return -1;
}
