/*
 * test_sync.c - the spamd sync protocol: packets built by hand from the
 * layout in DESIGN.md compared byte for byte with the encoder, HMAC-SHA1
 * checked by a second path (libcrypto's HMAC() on the hand-built bytes)
 * and a fixed vector from an independent implementation, round trips of
 * every type, every malformed case with its reason and offset, the key,
 * the replay window, and psync_apply against a temporary greydb.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pf-sync/sync.h"

#define KEY "0123456789abcdef0123456789abcdef01234567"
#define KEYLEN 40
#define T0 1700000000u

/* ---- hand-built packets (the second path) ---- */

struct raw {
	uint8_t	b[4096];
	size_t	len;
};

/* r16 / r32 / rbytes - append network-order fields to a raw packet */
static void
r16(struct raw *r, uint16_t v)
{
	r->b[r->len++] = v >> 8;
	r->b[r->len++] = v & 0xff;
}

static void
r32(struct raw *r, uint32_t v)
{
	r16(r, v >> 16);
	r16(r, v & 0xffff);
}

static void
rbytes(struct raw *r, const void *p, size_t n)
{
	memcpy(r->b + r->len, p, n);
	r->len += n;
}

/* raw_header - version 2, af 2, length 0 (set later), counter, zeros */
static void
raw_header(struct raw *r, uint32_t counter)
{
	memset(r, 0, sizeof(*r));
	r->b[0] = 2;
	r->b[1] = 2;
	r->len = 4;
	r32(r, counter);
	r->len = 32;
}

/* raw_grey - a GREY TLV as DESIGN.md describes it, padded to 16 */
static void
raw_grey(struct raw *r, uint32_t ts, const char *ip, const char *from,
    const char *to, const char *helo)
{
	size_t start = r->len, fl = strlen(from) + 1, tl = strlen(to) + 1;
	size_t hl = strlen(helo) + 1, len = 18 + fl + tl + hl;
	struct in_addr a;

	len = (len + 15) & ~(size_t)15;
	inet_pton(AF_INET, ip, &a);
	r16(r, 1);
	r16(r, (uint16_t)len);
	r32(r, ts);
	rbytes(r, &a, 4);
	r16(r, (uint16_t)fl);
	r16(r, (uint16_t)tl);
	r16(r, (uint16_t)hl);
	rbytes(r, from, fl);
	rbytes(r, to, tl);
	rbytes(r, helo, hl);
	r->len = start + len;	/* buffer was zeroed: padding is zeros */
}

/* raw_addr - a WHITE/TRAPPED/DEL TLV (IPv4, 16 bytes) */
static void
raw_addr(struct raw *r, uint16_t type, uint32_t ts, uint32_t exp,
    const char *ip)
{
	struct in_addr a;

	inet_pton(AF_INET, ip, &a);
	r16(r, type);
	r16(r, 16);
	r32(r, ts);
	r32(r, exp);
	rbytes(r, &a, 4);
}

/* raw_end - the END TLV */
static void
raw_end(struct raw *r)
{
	r16(r, 0);
	r16(r, 4);
}

/* raw_seal - set the length field and the HMAC by libcrypto directly */
static void
raw_seal(struct raw *r, const char *key)
{
	unsigned int mdlen = 0;
	uint8_t mac[EVP_MAX_MD_SIZE];

	r->b[2] = r->len >> 8;
	r->b[3] = r->len & 0xff;
	memset(r->b + 8, 0, 20);
	assert_non_null(HMAC(EVP_sha1(), key, (int)strlen(key), r->b, r->len,
	    mac, &mdlen));
	assert_int_equal(mdlen, 20);
	memcpy(r->b + 8, mac, 20);
}

/* hexstr - bytes as lowercase hex */
static void
hexstr(const uint8_t *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

/* ent4 / ent6 - an entry from text */
static struct psync_entry
ent(enum psync_kind kind, const char *ip, uint32_t ts, uint32_t exp,
    const char *helo, const char *from, const char *to)
{
	struct psync_entry e;

	memset(&e, 0, sizeof(e));
	e.kind = kind;
	assert_int_equal(psync_entry_set_ip(&e, ip), 0);
	e.timestamp = ts;
	e.expire = exp;
	e.helo = helo;
	e.from = from;
	e.to = to;
	return e;
}

/* ---- tests ---- */

/* test_hmac_vector - RFC 2202 case 2, so the second path is HMAC-SHA1 */
static void
test_hmac_vector(void **state)
{
	const char *data = "what do ya want for nothing?";
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[41];

	(void)state;
	HMAC(EVP_sha1(), "Jefe", 4, (const uint8_t *)data, strlen(data), mac,
	    &mdlen);
	hexstr(mac, 20, hex);
	assert_string_equal(hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
}

/* test_known_white - a hand-built WHITE packet: bytes and HMAC */
static void
test_known_white(void **state)
{
	struct psync_entry e = ent(PSYNC_WHITE, "192.0.2.1", 0x11223344,
	    0x55667788, NULL, NULL, NULL);
	uint8_t out[PSYNC_PKT_SEND];
	struct psync_err err;
	struct raw r;
	size_t len = 0;
	char hex[41];

	(void)state;
	raw_header(&r, 0xdeadbeef);
	raw_addr(&r, 2, 0x11223344, 0x55667788, "192.0.2.1");
	raw_end(&r);
	raw_seal(&r, KEY);
	assert_int_equal(psync_encode(&e, 1, 0xdeadbeef, KEY, KEYLEN, out,
	    sizeof(out), &len, &err), 1);
	assert_int_equal(len, 52);
	assert_memory_equal(out, r.b, 52);
	/* Computed once with Python's hmac module over the same bytes. */
	hexstr(out + 8, 20, hex);
	assert_string_equal(hex, "fc7a9c4650c99c2bf771a4e3afa2542112387334");
}

/* Hand-built vs encoder, one row per packet shape. */
struct known_row {
	const char	*name;
	enum psync_kind	 kind;
	const char	*ip, *helo, *from, *to;
	uint32_t	 exp;
	size_t		 want_len;
};

static const struct known_row known_rows[] = {
	/* 18 + 14 + 14 + 11 = 57 -> padded 64 */
	{ "grey padded", PSYNC_GREY, "198.51.100.7", "mx.example",
	  "a@example.net", "b@example.org", 0, 32 + 64 + 4 },
	/* 18 + 1 + 1 + 20 = 40 -> padded 48 (not 40: the unit is 16) */
	{ "grey 40 padded to 48", PSYNC_GREY, "192.0.2.40",
	  "abcdefghijklmnopqrs", "", "", 0, 32 + 48 + 4 },
	/* 18 + 1 + 1 + 12 = 32: already a multiple of 16, no padding */
	{ "grey exact 32", PSYNC_GREY, "10.1.2.3", "abcdefghijk", "", "",
	  0, 32 + 32 + 4 },
	{ "trapped", PSYNC_TRAPPED, "203.0.113.9", NULL, NULL, NULL,
	  T0 + 86400, 32 + 16 + 4 },
	{ "white", PSYNC_WHITE, "203.0.113.10", NULL, NULL, NULL,
	  T0 + 3600, 32 + 16 + 4 },
};

/* test_known_layout - every row: encoder output == hand-built bytes */
static void
test_known_layout(void **state)
{
	uint8_t out[PSYNC_PKT_SEND];
	struct psync_err err;
	struct raw r;
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(known_rows) / sizeof(known_rows[0]); i++) {
		const struct known_row *k = &known_rows[i];
		struct psync_entry e = ent(k->kind, k->ip, T0, k->exp,
		    k->helo, k->from, k->to);

		raw_header(&r, 7);
		if (k->kind == PSYNC_GREY)
			raw_grey(&r, T0, k->ip, k->from, k->to, k->helo);
		else
			raw_addr(&r, k->kind, T0, k->exp, k->ip);
		raw_end(&r);
		raw_seal(&r, KEY);
		len = 0;
		assert_int_equal(psync_encode(&e, 1, 7, KEY, KEYLEN, out,
		    sizeof(out), &len, &err), 1);
		if (len != k->want_len || r.len != len ||
		    memcmp(out, r.b, len) != 0)
			fail_msg("%s: encoder %zu bytes, hand-built %zu, want "
			    "%zu or bytes differ", k->name, len, r.len,
			    k->want_len);
	}
}

/* Round trip rows: encode one entry, decode it, compare. */
struct rt_row {
	enum psync_kind	 kind;
	const char	*ip, *helo, *from, *to;
	uint32_t	 exp;
	uint16_t	 wire_type;
};

static const struct rt_row rt_rows[] = {
	{ PSYNC_GREY, "192.0.2.1", "h.example", "<A@B.example>", "c@d", 0,
	  0x0001 },
	{ PSYNC_GREY, "2001:db8::1", "h6", "", "x@y", 0, 0x0101 },
	{ PSYNC_WHITE, "192.0.2.2", NULL, NULL, NULL, T0 + 10, 0x0002 },
	{ PSYNC_WHITE, "2001:db8::2", NULL, NULL, NULL, T0 + 11, 0x0102 },
	{ PSYNC_TRAPPED, "192.0.2.3", NULL, NULL, NULL, T0 + 12, 0x0003 },
	{ PSYNC_TRAPPED, "2001:db8::3", NULL, NULL, NULL, T0 + 13, 0x0103 },
	{ PSYNC_DEL_WHITE, "192.0.2.4", NULL, NULL, NULL, 0, 0x0004 },
	{ PSYNC_DEL_WHITE, "2001:db8::4", NULL, NULL, NULL, 0, 0x0104 },
	{ PSYNC_DEL_TRAPPED, "192.0.2.5", NULL, NULL, NULL, 0, 0x0005 },
	{ PSYNC_DEL_TRAPPED, "2001:db8::5", NULL, NULL, NULL, 0, 0x0105 },
};

/* test_round_trip - each type and family survives encode and decode */
static void
test_round_trip(void **state)
{
	uint8_t out[PSYNC_PKT_SEND];
	struct psync_entry got[4];
	struct psync_err err;
	uint32_t counter;
	size_t i, len;
	int n;

	(void)state;
	for (i = 0; i < sizeof(rt_rows) / sizeof(rt_rows[0]); i++) {
		const struct rt_row *t = &rt_rows[i];
		struct psync_entry e = ent(t->kind, t->ip, T0 + i, t->exp,
		    t->helo, t->from, t->to);

		assert_int_equal(psync_encode(&e, 1, 100 + i, KEY, KEYLEN,
		    out, sizeof(out), &len, &err), 1);
		assert_int_equal((out[32] << 8) | out[33], t->wire_type);
		n = psync_decode(out, len, KEY, KEYLEN, 1, got, 4, &counter,
		    &err);
		assert_int_equal(n, 1);
		assert_int_equal(err.reason, PSYNC_D_NONE);
		assert_int_equal(counter, 100 + i);
		assert_int_equal(got[0].kind, t->kind);
		assert_int_equal(got[0].af, e.af);
		assert_memory_equal(got[0].addr, e.addr, 16);
		assert_int_equal(got[0].timestamp, T0 + i);
		assert_int_equal(got[0].expire, t->exp);
		if (t->kind == PSYNC_GREY) {
			assert_string_equal(got[0].helo, t->helo);
			assert_string_equal(got[0].from, t->from);
			assert_string_equal(got[0].to, t->to);
		}
	}
}

/* test_no_key - an empty key (no authentication) works both ways */
static void
test_no_key(void **state)
{
	struct psync_entry e = ent(PSYNC_WHITE, "192.0.2.1", T0, T0 + 5,
	    NULL, NULL, NULL), got[1];
	uint8_t out[PSYNC_PKT_SEND];
	struct psync_err err;
	uint32_t c;
	size_t len;

	(void)state;
	assert_int_equal(psync_encode(&e, 1, 1, "", 0, out, sizeof(out),
	    &len, &err), 1);
	assert_int_equal(psync_decode(out, len, "", 0, 0, got, 1, &c, &err),
	    1);
	assert_int_equal(psync_decode(out, len, KEY, KEYLEN, 0, got, 1, &c,
	    &err), -1);
	assert_int_equal(err.reason, PSYNC_D_HMAC);
}

/* test_pack - several entries per packet; families never mixed; size */
static void
test_pack(void **state)
{
	struct psync_entry e[200], got[200];
	uint8_t out[PSYNC_PKT_MAX];
	struct psync_err err;
	char ip[32];
	uint32_t c;
	size_t len, i;
	int n, k;

	(void)state;
	for (i = 0; i < 200; i++) {
		snprintf(ip, sizeof(ip), "10.0.%zu.%zu", i / 250, i % 250 + 1);
		e[i] = ent(PSYNC_WHITE, ip, T0, T0 + 99, NULL, NULL, NULL);
	}
	/* 1408 - 32 - 4 = 1372 bytes: 85 WHITE TLVs of 16. */
	n = psync_encode(e, 200, 1, KEY, KEYLEN, out, PSYNC_PKT_SEND, &len,
	    &err);
	assert_int_equal(n, 85);
	assert_true(len <= PSYNC_PKT_SEND);
	k = psync_decode(out, len, KEY, KEYLEN, 0, got, 200, &c, &err);
	assert_int_equal(k, 85);
	for (i = 0; i < 85; i++)
		assert_memory_equal(got[i].addr, e[i].addr, 4);
	/* A caller array too small: entries kept, rest counted. */
	k = psync_decode(out, len, KEY, KEYLEN, 0, got, 10, &c, &err);
	assert_int_equal(k, 10);
	assert_int_equal(err.reason, PSYNC_D_TOOMANY);

	/* IPv4 then IPv6: the packet stops at the family change. */
	e[3] = ent(PSYNC_GREY, "2001:db8::9", T0, 0, "h", "f", "t");
	n = psync_encode(e, 6, 2, KEY, KEYLEN, out, PSYNC_PKT_SEND, &len,
	    &err);
	assert_int_equal(n, 3);
	n = psync_encode(e + 3, 3, 3, KEY, KEYLEN, out, PSYNC_PKT_SEND, &len,
	    &err);
	assert_int_equal(n, 1);

	/* An entry too large for any packet is an error, not a crash. */
	{
		static char big[2000];

		memset(big, 'a', sizeof(big) - 1);
		e[0] = ent(PSYNC_GREY, "192.0.2.1", T0, 0, big, "f", "t");
		assert_int_equal(psync_encode(e, 1, 4, KEY, KEYLEN, out,
		    PSYNC_PKT_SEND, &len, &err), -1);
		assert_non_null(strstr(err.msg, "does not fit"));
	}
}

/* Malformed packets: a mutation of hand-built bytes, and what must come. */
enum mut {
	M_NONE, M_TRUNC31, M_LEN_BIG, M_LEN_SMALL, M_VERSION, M_AF,
	M_FLIP, M_WRONGKEY, M_TLVLEN3, M_TLV_OVERRUN, M_TAIL2, M_STR_OVERRUN,
	M_FROM_NONUL, M_HELO_NONUL, M_GREY_SHORT, M_WHITE20, M_UNKNOWN,
	M_DEL_OFF, M_SEVERAL, M_NO_END, M_AFTER_END, M_ZERO_STRLEN,
	M_STRLEN_HUGE,
};

struct bad_row {
	const char	*name;
	enum mut	 mut;
	int		 want_n;	/* -1 = whole packet rejected */
	enum psync_drop	 want_reason;
	size_t		 want_off;
};

static const struct bad_row bad_rows[] = {
	{ "valid", M_NONE, 1, PSYNC_D_NONE, 0 },
	{ "short header", M_TRUNC31, -1, PSYNC_D_SHORT, 0 },
	{ "length larger than received", M_LEN_BIG, -1, PSYNC_D_LENGTH, 2 },
	{ "length smaller than received", M_LEN_SMALL, -1, PSYNC_D_LENGTH,
	  2 },
	{ "wrong version", M_VERSION, -1, PSYNC_D_VERSION, 0 },
	{ "wrong af", M_AF, -1, PSYNC_D_AF, 1 },
	{ "bad hmac (altered byte)", M_FLIP, -1, PSYNC_D_HMAC, 8 },
	{ "bad hmac (wrong key)", M_WRONGKEY, -1, PSYNC_D_HMAC, 8 },
	{ "tlv length < 4", M_TLVLEN3, 0, PSYNC_D_TLV, 34 },
	{ "tlv overrunning", M_TLV_OVERRUN, 0, PSYNC_D_TLV, 34 },
	{ "2 bytes after a tlv", M_TAIL2, 1, PSYNC_D_TLV, 48 },
	{ "grey string lengths overrun", M_STR_OVERRUN, 0, PSYNC_D_STRINGS,
	  44 },
	{ "grey from without NUL", M_FROM_NONUL, 0, PSYNC_D_NUL, 50 },
	{ "grey helo without NUL", M_HELO_NONUL, 0, PSYNC_D_NUL, 50 + 2 + 2 },
	{ "grey tlv shorter than fixed part", M_GREY_SHORT, 0,
	  PSYNC_D_TLVSIZE, 32 },
	{ "white tlv of 20 bytes", M_WHITE20, 0, PSYNC_D_TLVSIZE, 32 },
	{ "unknown type after white", M_UNKNOWN, 1, PSYNC_D_UNKNOWN, 48 },
	{ "deletion while off", M_DEL_OFF, 0, PSYNC_D_DISABLED, 32 },
	{ "several tlvs", M_SEVERAL, 3, PSYNC_D_NONE, 0 },
	{ "no END", M_NO_END, 1, PSYNC_D_NONE, 0 },
	{ "bytes after END ignored", M_AFTER_END, 1, PSYNC_D_NONE, 0 },
	{ "grey string length 0", M_ZERO_STRLEN, 0, PSYNC_D_NUL, 50 },
	{ "grey string length 65535", M_STRLEN_HUGE, 0, PSYNC_D_STRINGS,
	  44 },
};

/* build_bad - the packet for one malformed row */
static void
build_bad(struct raw *r, enum mut m)
{
	raw_header(r, 42);
	switch (m) {
	case M_TLVLEN3:
		r16(r, 2);
		r16(r, 3);
		r32(r, 0);
		break;
	case M_TLV_OVERRUN:
		r16(r, 2);
		r16(r, 64);
		r32(r, T0);
		r32(r, T0);
		r32(r, 0);
		break;
	case M_TAIL2:
		raw_addr(r, 2, T0, T0 + 60, "192.0.2.1");
		r16(r, 0);
		break;
	case M_STR_OVERRUN:
	case M_ZERO_STRLEN:
	case M_STRLEN_HUGE:
	case M_FROM_NONUL:
	case M_HELO_NONUL:
		/* GREY with from "f", to "t", helo "h": 18 + 6 -> 32 */
		raw_grey(r, T0, "192.0.2.1", "f", "t", "h");
		if (m == M_STR_OVERRUN) {
			r->b[32 + 12] = 0;
			r->b[32 + 13] = 20;	/* from_len 20 > room */
		} else if (m == M_ZERO_STRLEN) {
			r->b[32 + 13] = 0;
		} else if (m == M_STRLEN_HUGE) {
			r->b[32 + 12] = 0xff;
			r->b[32 + 13] = 0xff;
		} else if (m == M_FROM_NONUL) {
			r->b[32 + 19] = 'x';	/* from's NUL */
		} else {
			r->b[32 + 23] = 'x';	/* helo's NUL */
		}
		raw_end(r);
		break;
	case M_GREY_SHORT:
		r16(r, 1);
		r16(r, 16);
		r32(r, T0);
		r32(r, 0);
		r32(r, 0);
		raw_end(r);
		break;
	case M_WHITE20:
		r16(r, 2);
		r16(r, 20);
		r32(r, T0);
		r32(r, T0 + 60);
		r32(r, 0);
		r32(r, 0);
		raw_end(r);
		break;
	case M_UNKNOWN:
		raw_addr(r, 2, T0, T0 + 60, "192.0.2.1");
		r16(r, 0x0777);
		r16(r, 8);
		r32(r, 0);
		raw_addr(r, 3, T0, T0 + 60, "192.0.2.2");
		raw_end(r);
		break;
	case M_DEL_OFF:
		raw_addr(r, 4, T0, 0, "192.0.2.1");
		raw_end(r);
		break;
	case M_SEVERAL:
		raw_addr(r, 2, T0, T0 + 60, "192.0.2.1");
		raw_grey(r, T0, "192.0.2.2", "a@b", "c@d", "helo");
		raw_addr(r, 3, T0, T0 + 60, "192.0.2.3");
		raw_end(r);
		break;
	case M_NO_END:
		raw_addr(r, 2, T0, T0 + 60, "192.0.2.1");
		break;
	case M_AFTER_END:
		raw_addr(r, 2, T0, T0 + 60, "192.0.2.1");
		raw_end(r);
		r16(r, 0x0777);
		r16(r, 2);
		break;
	default:
		raw_addr(r, 2, T0, T0 + 60, "192.0.2.1");
		raw_end(r);
		break;
	}
	raw_seal(r, KEY);
	switch (m) {
	case M_TRUNC31:
		r->len = 31;
		break;
	case M_LEN_BIG:
		r->b[3]++;
		break;
	case M_LEN_SMALL:
		r->len++;	/* one more byte received than announced */
		break;
	case M_VERSION:
		r->b[0] = 1;
		break;
	case M_AF:
		r->b[1] = 24;
		break;
	case M_FLIP:
		r->b[40] ^= 1;
		break;
	case M_WRONGKEY:
		raw_seal(r, "ffffffffffffffffffffffffffffffffffffffff");
		break;
	default:
		break;
	}
}

/* test_malformed - every bad packet dropped with its reason and offset */
static void
test_malformed(void **state)
{
	struct psync_entry got[8];
	struct psync_err err;
	struct raw r;
	uint32_t c;
	size_t i;
	int n;

	(void)state;
	for (i = 0; i < sizeof(bad_rows) / sizeof(bad_rows[0]); i++) {
		const struct bad_row *b = &bad_rows[i];

		build_bad(&r, b->mut);
		memset(&err, 0, sizeof(err));
		n = psync_decode(r.b, r.len, KEY, KEYLEN, 0, got, 8, &c, &err);
		if (n != b->want_n || err.reason != b->want_reason ||
		    (b->want_reason != PSYNC_D_NONE &&
		    err.offset != b->want_off))
			fail_msg("%s: got n=%d reason=%s offset=%zu (%s), want "
			    "n=%d reason=%s offset=%zu", b->name, n,
			    psync_drop_name(err.reason), err.offset, err.msg,
			    b->want_n, psync_drop_name(b->want_reason),
			    b->want_off);
		if (b->want_reason != PSYNC_D_NONE &&
		    strstr(err.msg, "at byte") == NULL)
			fail_msg("%s: message without offset: %s", b->name,
			    err.msg);
	}
	/* The kept entries of "several tlvs" are right. */
	build_bad(&r, M_SEVERAL);
	n = psync_decode(r.b, r.len, KEY, KEYLEN, 0, got, 8, &c, &err);
	assert_int_equal(n, 3);
	assert_int_equal(got[0].kind, PSYNC_WHITE);
	assert_int_equal(got[1].kind, PSYNC_GREY);
	assert_string_equal(got[1].helo, "helo");
	assert_string_equal(got[1].from, "a@b");
	assert_string_equal(got[1].to, "c@d");
	assert_int_equal(got[2].kind, PSYNC_TRAPPED);
	assert_int_equal(c, 42);
	/* Every length of a valid packet cut short is rejected cleanly. */
	build_bad(&r, M_SEVERAL);
	for (i = 0; i < r.len; i++)
		assert_int_equal(psync_decode(r.b, i, KEY, KEYLEN, 0, got, 8,
		    &c, &err), -1);
}

/* test_mutations - 200,000 seeded random mutations of valid packets,
 * resealed so the TLV parser sees them: never a crash (ASan watches),
 * every kept entry lies inside the packet with its strings terminated;
 * 20,000 with GREY_TEST_SMALL=1 (tests/run.sh's valgrind pass, where
 * each decode is ~30x slower) */
static void
test_mutations(void **state)
{
	struct psync_entry got[16];
	struct psync_err err;
	struct raw r, base;
	uint32_t c, seed = 12345;
	size_t i, k, nmut, nmuts;
	int n, j;
	const char *small = getenv("GREY_TEST_SMALL");

	(void)state;
	nmuts = small != NULL && strcmp(small, "1") == 0 ? 20000 : 200000;
	build_bad(&base, M_SEVERAL);
	for (i = 0; i < nmuts; i++) {
		r = base;
		seed = seed * 1103515245u + 12345u;
		nmut = 1 + (seed >> 16) % 4;
		for (k = 0; k < nmut; k++) {
			seed = seed * 1103515245u + 12345u;
			/* Mutate the TLV area only; the header is covered by
			 * the malformed table. */
			r.b[32 + (seed >> 8) % (r.len - 32)] = (uint8_t)(seed >> 24);
		}
		if (i % 7 == 0) {
			seed = seed * 1103515245u + 12345u;
			r.len = 32 + (seed >> 8) % (r.len - 31);
		}
		raw_seal(&r, KEY);
		n = psync_decode(r.b, r.len, KEY, KEYLEN, (int)(i & 1), got, 16,
		    &c, &err);
		assert_true(n >= 0 && n <= 16);
		for (j = 0; j < n; j++) {
			if (got[j].kind != PSYNC_GREY)
				continue;
			assert_true((const uint8_t *)got[j].from >= r.b + 32);
			assert_true((const uint8_t *)got[j].helo +
			    strlen(got[j].helo) < r.b + r.len);
			assert_true((const uint8_t *)got[j].to +
			    strlen(got[j].to) < r.b + r.len);
		}
	}
}

/* Listen and target specs: accepted or refused with a message. */
struct spec_row {
	int		 listen;	/* 1 = -y, 0 = -Y */
	const char	*spec;
	int		 want;		/* 0 ok, -1 refused */
	const char	*want_msg;	/* part of the message when refused */
};

static const struct spec_row spec_rows[] = {
	{ 0, "127.0.0.1", 0, NULL },
	{ 0, "127.0.0.1:16999", 0, NULL },
	{ 0, "[::1]:16999", 0, NULL },
	{ 0, "::1", 0, NULL },
	{ 0, "localhost:16999", 0, NULL },
	{ 0, "lo", 0, NULL },			/* multicast on lo */
	{ 0, "lo:5", 0, NULL },
	{ 0, "127.0.0.1:0", -1, "want host[:port]" },
	{ 0, "127.0.0.1:99999", -1, "want host[:port]" },
	{ 0, "127.0.0.1:http", -1, "want host[:port]" },
	{ 0, "[::1", -1, "want host[:port]" },
	{ 0, "[::1]x", -1, "want host[:port]" },
	{ 0, ":16999", -1, "want host[:port]" },
	{ 1, "bogus0", -1, "not an address nor an interface" },
	{ 1, "lo:300", -1, "not an address nor an interface" },
	{ 1, "127.0.0.1", 0, NULL },
};

/* test_specs - -y and -Y arguments, good and bad */
static void
test_specs(void **state)
{
	struct event_base *base = event_base_new();
	struct psync_opts o;
	struct psync_err err;
	struct psync *ps;
	size_t i;
	int r;

	(void)state;
	assert_non_null(base);
	memset(&o, 0, sizeof(o));
	o.key = "short";
	assert_null(psync_new(base, &o, &err));
	assert_non_null(strstr(err.msg, "40 hex"));
	o.key = KEY;
	/* A port of our range (16000-16999) that differs between runs. */
	o.port = (uint16_t)(16000 + getpid() % 1000);
	for (i = 0; i < sizeof(spec_rows) / sizeof(spec_rows[0]); i++) {
		const struct spec_row *s = &spec_rows[i];

		assert_non_null(ps = psync_new(base, &o, &err));
		memset(&err, 0, sizeof(err));
		r = s->listen ? psync_listen(ps, s->spec, &err) :
		    psync_add_target(ps, s->spec, 0, &err);
		if (r != s->want || (s->want_msg != NULL &&
		    strstr(err.msg, s->want_msg) == NULL))
			fail_msg("%s %s: got %d (%s), want %d (%s)",
			    s->listen ? "-y" : "-Y", s->spec, r, err.msg,
			    s->want, s->want_msg ? s->want_msg : "");
		psync_free(ps);
	}
	event_base_free(base);
}

/* test_key - hex SHA-1 of the file; a missing file is a clear error */
static void
test_key(void **state)
{
	static const struct {
		mode_t		 mode;
		int		 ok;
		const char	*text;		/* in the refusal */
	} modes[] = {
		{ 0644, 0, "mode 0644" },
		{ 0640, 0, "mode 0640" },
		{ 0604, 0, "mode 0604" },
		{ 0620, 0, "mode 0620" },
		{ 0400, 1, NULL },
		{ 0600, 1, NULL },
	};
	char key[PSYNC_KEY_LEN + 1], path[] = "/tmp/test_sync_key.XXXXXX";
	struct psync_err err;
	size_t i;
	int fd;

	(void)state;
	psync_key_from_bytes("", 0, key);
	assert_string_equal(key, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	psync_key_from_bytes("abc", 3, key);
	assert_string_equal(key, "a9993e364706816aba3e25717850c26c9cd0d89d");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	close(fd);
	assert_int_equal(psync_key_load(path, key, &err), 0);
	assert_string_equal(key, "a9993e364706816aba3e25717850c26c9cd0d89d");
	/* a key group or others may read (or write) is refused, naming
	 * the file and its mode; owner-only modes are fine */
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(chmod(path, modes[i].mode), 0);
		key[0] = 'x';
		assert_int_equal(psync_key_load(path, key, &err),
		    modes[i].ok ? 0 : -1);
		if (modes[i].ok) {
			assert_string_equal(key,
			    "a9993e364706816aba3e25717850c26c9cd0d89d");
			continue;
		}
		assert_non_null(strstr(err.msg, path));
		assert_non_null(strstr(err.msg, modes[i].text));
	}
	unlink(path);
	assert_int_equal(psync_key_load(path, key, &err), -1);
	assert_non_null(strstr(err.msg, path));
	assert_non_null(strstr(err.msg, "No such file"));
}

/* Replay rows: a sequence of packets from peers and the verdicts. */
struct rp_step {
	int		 host;		/* peer 192.0.2.host */
	int		 port;		/* its source port */
	uint32_t	 counter;
	int		 have_ts;
	uint32_t	 ts;
	int64_t		 now;
	enum psync_drop	 want;
};

static const struct rp_step rp_steps[] = {
	{ 1, 8025, 1000, 1, T0, T0, PSYNC_D_NONE },	/* new peer */
	{ 1, 8025, 1000, 1, T0, T0, PSYNC_D_REPLAY },	/* same counter */
	{ 1, 8025, 1001, 1, T0, T0, PSYNC_D_NONE },
	{ 1, 8025, 1005, 1, T0 + 1, T0 + 1, PSYNC_D_NONE },
	{ 1, 8025, 1003, 1, T0, T0 + 1, PSYNC_D_NONE },	/* reordered */
	{ 1, 8025, 1003, 1, T0, T0 + 1, PSYNC_D_REPLAY },
	{ 1, 8025, 1001, 1, T0, T0 + 1, PSYNC_D_REPLAY },
	/* the attack: the same packets from another source port */
	{ 1, 9000, 1001, 1, T0, T0 + 1, PSYNC_D_REPLAY },
	{ 1, 9000, 1005, 1, T0 + 1, T0 + 1, PSYNC_D_REPLAY },
	{ 1, 8025, 900, 1, T0, T0 + 2, PSYNC_D_STALE },	/* behind, old ts */
	{ 1, 8025, 900, 1, T0 + 1, T0 + 2, PSYNC_D_STALE }, /* same second */
	{ 1, 8025, 900, 0, 0, T0 + 2, PSYNC_D_STALE },	/* behind, no ts */
	/* a second sender on the address (greylogd next to spamd) */
	{ 1, 9000, 5000000, 1, T0, T0 + 2, PSYNC_D_STALE },	/* older */
	{ 1, 9000, 5000000, 1, T0 + 1, T0 + 2, PSYNC_D_NONE },
	{ 1, 8025, 1006, 1, T0 + 1, T0 + 2, PSYNC_D_NONE },	/* first */
	{ 1, 9000, 5000001, 1, T0 + 1, T0 + 2, PSYNC_D_NONE },
	{ 1, 9000, 5000000, 1, T0 + 1, T0 + 2, PSYNC_D_REPLAY },
	{ 1, 1234, 5000000, 1, T0 + 1, T0 + 2, PSYNC_D_REPLAY },
	{ 1, 8025, 17, 1, T0 + 5, T0 + 5, PSYNC_D_NONE },	/* restart */
	{ 1, 8025, 18, 1, T0 + 5, T0 + 5, PSYNC_D_NONE },
	/* a pre-restart packet: its window is still held */
	{ 1, 8025, 1005, 1, T0 + 1, T0 + 5, PSYNC_D_REPLAY },
	{ 7, 7000, 0xffffffff, 1, T0 + 5, T0 + 5, PSYNC_D_NONE },
	{ 7, 7000, 0, 1, T0 + 5, T0 + 5, PSYNC_D_NONE },	/* wraps */
	{ 7, 7000, 0xffffffff, 1, T0 + 5, T0 + 5, PSYNC_D_REPLAY },
	{ 6, 6000, 5, 1, T0 - 7200, T0 + 5, PSYNC_D_STALE },	/* too old */
};

/* rp_sa - 192.0.2.host:port into sin */
static struct sockaddr *
rp_sa(struct sockaddr_in *sin, int host, int port)
{
	char ip[32];

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	snprintf(ip, sizeof(ip), "192.0.2.%d", host);
	inet_pton(AF_INET, ip, &sin->sin_addr);
	sin->sin_port = htons(port);
	return (struct sockaddr *)sin;
}

/* test_replay - the window rules step by step */
static void
test_replay(void **state)
{
	struct psync_replay *r = psync_replay_new(0, 3600);
	struct sockaddr_in sin;
	size_t i;
	enum psync_drop d;

	(void)state;
	assert_non_null(r);
	for (i = 0; i < sizeof(rp_steps) / sizeof(rp_steps[0]); i++) {
		const struct rp_step *s = &rp_steps[i];

		d = psync_replay_check(r, rp_sa(&sin, s->host, s->port),
		    s->counter, s->have_ts, s->ts, s->ts, s->now);
		if (d != s->want)
			fail_msg("step %zu (192.0.2.%d:%d counter %u): got %s "
			    "want %s", i, s->host, s->port, s->counter,
			    psync_drop_name(d), psync_drop_name(s->want));
	}
	/* keyed by address: 192.0.2.1 (three streams) and .7 */
	assert_int_equal(psync_replay_peers(r), 2);
	psync_replay_free(r);

	/* A full table forgets the peer heard least recently. */
	r = psync_replay_new(2, 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(psync_replay_check(r, rp_sa(&sin, 10 + (int)i,
		    1000), 5, 1, T0, T0, T0 + (int64_t)i), PSYNC_D_NONE);
	assert_int_equal(psync_replay_peers(r), 2);
	psync_replay_free(r);
}

/* test_replay_restart - after our restart (empty table) a packet stamped
 * before the start is a replay (a TRAPPED that greyctl -d removed) */
static void
test_replay_restart(void **state)
{
	struct psync_replay *r = psync_replay_new(0, 3600);
	struct sockaddr_in sin;

	(void)state;
	psync_replay_since(r, T0 + 100);
	assert_int_equal(psync_replay_check(r, rp_sa(&sin, 1, 8025), 42, 1,
	    T0 + 99, T0 + 99, T0 + 101), PSYNC_D_STALE);
	assert_int_equal(psync_replay_peers(r), 0);
	/* an END-only packet carries nothing to replay */
	assert_int_equal(psync_replay_check(r, rp_sa(&sin, 2, 8025), 42, 0,
	    0, 0, T0 + 101), PSYNC_D_NONE);
	assert_int_equal(psync_replay_check(r, rp_sa(&sin, 1, 8025), 43, 1,
	    T0 + 100, T0 + 100, T0 + 101), PSYNC_D_NONE);
	/* from then on the window rules: the old one is behind it */
	assert_int_equal(psync_replay_check(r, rp_sa(&sin, 1, 8026), 42, 1,
	    T0 + 99, T0 + 99, T0 + 101), PSYNC_D_NONE);
	assert_int_equal(psync_replay_check(r, rp_sa(&sin, 1, 8027), 42, 1,
	    T0 + 99, T0 + 99, T0 + 101), PSYNC_D_REPLAY);
	psync_replay_free(r);
}

/* test_replay_streams - at most PSYNC_REPLAY_STREAMS senders per address;
 * a fifth sender reuses the least recently heard window, and a packet of
 * the forgotten sender must then be newer than all the address sent */
static void
test_replay_streams(void **state)
{
	struct psync_replay *r = psync_replay_new(0, 3600);
	struct sockaddr_in sin;
	uint32_t i;

	(void)state;
	for (i = 0; i <= PSYNC_REPLAY_STREAMS; i++)
		assert_int_equal(psync_replay_check(r, rp_sa(&sin, 1, 8025),
		    i * 100000000u, 1, T0 + i, T0 + i, T0 + i), PSYNC_D_NONE);
	/* stream 1 is still held: its packet is a replay */
	assert_int_equal(psync_replay_check(r, rp_sa(&sin, 1, 8025),
	    100000000u, 1, T0 + 1, T0 + 1, T0 + 9), PSYNC_D_REPLAY);
	/* stream 0 was forgotten: its old packet is not new enough */
	assert_int_equal(psync_replay_check(r, rp_sa(&sin, 1, 8025), 0, 1,
	    T0, T0, T0 + 9), PSYNC_D_STALE);
	assert_int_equal(psync_replay_peers(r), 1);
	psync_replay_free(r);
}

/* ---- psync_apply against a temporary store ---- */

struct fix {
	char		 dir[64];
	struct gdb	*db;
};

static const struct gdb_times times = {
	GDB_PASSTIME_DEFAULT, GDB_GREYEXP_DEFAULT, GDB_WHITEEXP_DEFAULT,
	GDB_TRAPEXP_DEFAULT
};

/* setup_db - a fresh store in a new temporary directory */
static int
setup_db(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct gdb_opts o = { .create = 1, .group_commit = 1 };
	struct gdb_err err;

	if (f == NULL)
		return -1;
	strlcpy(f->dir, "/tmp/test_sync.XXXXXX", sizeof(f->dir));
	if (mkdtemp(f->dir) == NULL || gdb_open(&f->db, f->dir, &o, &err)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

/* teardown_db - close and remove the store */
static int
teardown_db(void **state)
{
	struct fix *f = *state;
	char cmd[128];

	gdb_close(f->db);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", f->dir);
	free(f);
	return 0;
}

/* get - fetch a WHITE/TRAPPED record; 1 found */
static int
get(struct fix *f, enum gdb_type type, const char *ip, struct gdb_rec *rec)
{
	struct gdb_err err;

	memset(rec, 0, sizeof(*rec));
	rec->type = type;
	strlcpy(rec->ip, ip, sizeof(rec->ip));
	return gdb_get(f->db, rec, &err);
}

/* Apply rows, run in order on one store. */
struct ap_row {
	const char		*name;
	enum psync_kind		 kind;
	const char		*ip;
	int64_t			 exp_rel;	/* expire - now */
	enum psync_applied	 want;
	enum gdb_result		 want_g;	/* GREY only */
};

static const struct ap_row ap_rows[] = {
	{ "grey new", PSYNC_GREY, "192.0.2.1", 0, PSYNC_A_APPLIED,
	  GDB_R_NEW },
	{ "grey again", PSYNC_GREY, "192.0.2.1", 0, PSYNC_A_APPLIED,
	  GDB_R_GREY },
	{ "grey6 new", PSYNC_GREY, "2001:db8::1", 0, PSYNC_A_APPLIED,
	  GDB_R_NEW },
	{ "white", PSYNC_WHITE, "192.0.2.7", 3600, PSYNC_A_APPLIED, 0 },
	{ "white shorter kept", PSYNC_WHITE, "192.0.2.7", 60, PSYNC_A_KEPT,
	  0 },
	{ "white past ignored", PSYNC_WHITE, "192.0.2.8", -1,
	  PSYNC_A_EXPIRED, 0 },
	{ "white6", PSYNC_WHITE, "2001:db8::7", 3600, PSYNC_A_APPLIED, 0 },
	{ "trapped", PSYNC_TRAPPED, "192.0.2.9", 86400, PSYNC_A_APPLIED, 0 },
	{ "white of trapped", PSYNC_WHITE, "192.0.2.9", 3600,
	  PSYNC_A_TRAPPED, 0 },
	{ "trapped past ignored", PSYNC_TRAPPED, "192.0.2.10", 0,
	  PSYNC_A_EXPIRED, 0 },
	{ "trap a white ip", PSYNC_TRAPPED, "192.0.2.7", 100,
	  PSYNC_A_APPLIED, 0 },
	{ "del trapped", PSYNC_DEL_TRAPPED, "192.0.2.9", 0, PSYNC_A_APPLIED,
	  0 },
	{ "del trapped absent", PSYNC_DEL_TRAPPED, "192.0.2.9", 0,
	  PSYNC_A_ABSENT, 0 },
	{ "del white6", PSYNC_DEL_WHITE, "2001:db8::7", 0, PSYNC_A_APPLIED,
	  0 },
};

/* test_apply - each row's outcome, then what the store holds */
static void
test_apply(void **state)
{
	struct fix *f = *state;
	int64_t now = T0;
	struct gdb_rec rec;
	struct gdb_err err;
	enum psync_applied res;
	enum gdb_result g;
	size_t i;

	for (i = 0; i < sizeof(ap_rows) / sizeof(ap_rows[0]); i++) {
		const struct ap_row *a = &ap_rows[i];
		struct psync_entry e = ent(a->kind, a->ip, (uint32_t)now,
		    (uint32_t)(now + a->exp_rel), "mx.example",
		    "<Alice@Example.ORG>", "bob@example.net");

		if (a->kind != PSYNC_WHITE && a->kind != PSYNC_TRAPPED)
			e.expire = 0;
		g = 0;
		if (psync_apply(f->db, &e, now, &times, &res, &g, &err) != 0)
			fail_msg("%s: %s", a->name, err.msg);
		if (res != a->want || (a->kind == PSYNC_GREY &&
		    g != a->want_g))
			fail_msg("%s: got %d/%d want %d/%d", a->name, res, g,
			    a->want, a->want_g);
	}
	/* The tuple was normalised as a local one. */
	memset(&rec, 0, sizeof(rec));
	rec.type = GDB_GREY;
	strlcpy(rec.ip, "192.0.2.1", sizeof(rec.ip));
	strlcpy(rec.helo, "mx.example", sizeof(rec.helo));
	strlcpy(rec.from, "alice@example.org", sizeof(rec.from));
	strlcpy(rec.to, "bob@example.net", sizeof(rec.to));
	assert_int_equal(gdb_get(f->db, &rec, &err), 1);
	assert_int_equal(rec.bcount, 2);
	/* Trapping 192.0.2.7 dropped its WHITE, with the peer's expiry. */
	assert_int_equal(get(f, GDB_WHITE, "192.0.2.7", &rec), 0);
	assert_int_equal(get(f, GDB_TRAPPED, "192.0.2.7", &rec), 1);
	assert_int_equal(rec.expire, now + 100);
	assert_int_equal(get(f, GDB_WHITE, "192.0.2.8", &rec), 0);
	assert_int_equal(get(f, GDB_TRAPPED, "192.0.2.10", &rec), 0);
	assert_int_equal(get(f, GDB_TRAPPED, "192.0.2.9", &rec), 0);
	assert_int_equal(get(f, GDB_WHITE, "2001:db8::7", &rec), 0);
	/* A GREY that passes on the receiver whitelists there. */
	{
		struct psync_entry e = ent(PSYNC_GREY, "192.0.2.1", T0, 0,
		    "mx.example", "alice@example.org", "bob@example.net");

		assert_int_equal(psync_apply(f->db, &e,
		    now + GDB_PASSTIME_DEFAULT + 1, &times, &res, &g, &err),
		    0);
		assert_int_equal(g, GDB_R_PASSED);
		assert_int_equal(get(f, GDB_WHITE, "192.0.2.1", &rec), 1);
	}
	/* (added) while the store refuses new tuples (the writer's disk
	 * guard), a peer's new GREY is refused and writes nothing; its
	 * WHITE still applies */
	{
		struct psync_entry e = ent(PSYNC_GREY, "192.0.2.50", T0, 0,
		    "mx.example", "a@example.org", "new@example.net");
		struct psync_entry w = ent(PSYNC_WHITE, "192.0.2.51", T0,
		    T0 + 3600, "", "", "");

		gdb_set_no_new_grey(f->db, 1);
		assert_int_equal(psync_apply(f->db, &e, now, &times, &res, &g,
		    &err), 0);
		assert_int_equal(res, PSYNC_A_REFUSED);
		assert_int_equal(g, GDB_R_REFUSED);
		memset(&rec, 0, sizeof(rec));
		rec.type = GDB_GREY;
		strlcpy(rec.ip, "192.0.2.50", sizeof(rec.ip));
		strlcpy(rec.helo, "mx.example", sizeof(rec.helo));
		strlcpy(rec.from, "a@example.org", sizeof(rec.from));
		strlcpy(rec.to, "new@example.net", sizeof(rec.to));
		assert_int_equal(gdb_get(f->db, &rec, &err), 0);
		assert_int_equal(psync_apply(f->db, &w, now, &times, &res, &g,
		    &err), 0);
		assert_int_equal(res, PSYNC_A_APPLIED);
		assert_int_equal(get(f, GDB_WHITE, "192.0.2.51", &rec), 1);
		gdb_set_no_new_grey(f->db, 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_vector),
		cmocka_unit_test(test_known_white),
		cmocka_unit_test(test_known_layout),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_no_key),
		cmocka_unit_test(test_pack),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_specs),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_replay_restart),
		cmocka_unit_test(test_replay_streams),
		cmocka_unit_test_setup_teardown(test_apply, setup_db,
		    teardown_db),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
