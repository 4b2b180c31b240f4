/*
 * test_msg.c - the engine <-> writer framing (spamd/common/msg.c): round trips,
 * delivery one byte at a time, and every kind of malformed frame, which
 * must be refused with a message naming what is wrong and never read past
 * what was received.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/buffer.h>

#include "spamd/common/msg.h"

/* be32 - store v big-endian at p */
static void
be32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

/* be64 - store v big-endian at p */
static void
be64(unsigned char *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

/* One message to round-trip. */
struct rt_case {
	const char	*name;
	uint32_t	 type;
	uint64_t	 id;
	int64_t		 num;
	uint32_t	 nstr;
	const char	*str[MSG_MAX_STR];
	size_t		 len[MSG_MAX_STR];	/* 0: strlen */
};

static const struct rt_case rt_cases[] = {
	{ "tuple", MSG_TUPLE, 1, 0, 4,
	  { "192.0.2.1", "mx.example", "<a@example.com>", "b@example.org" },
	  { 0 } },
	{ "tuple lowmx, null sender", MSG_TUPLE, UINT64_MAX, MSG_F_LOWMX, 4,
	  { "2001:db8::1", "h", "", "<b@example.org>" }, { 0 } },
	{ "result negative num", MSG_RESULT, 42, -7, 1, { "10.0.0.1" },
	  { 0 } },
	{ "result max num", MSG_RESULT, 0, INT64_MAX, 1, { "::1" }, { 0 } },
	{ "result min num", MSG_RESULT, 0, INT64_MIN, 0, { NULL }, { 0 } },
	{ "no strings", MSG_STATS, 3, 0, 0, { NULL }, { 0 } },
	{ "empty strings", MSG_TUPLE, 5, 0, 4, { "", "", "", "" }, { 0 } },
	{ "client bytes: CR LF, high bytes, %n", MSG_TUPLE, 9, 0, 4,
	  { "10.1.1.1", "a\r\nMAIL FROM:<x>\r\n", "\xff\xfe%s%n", "\x01\x7f" },
	  { 0 } },
	{ "traplist", MSG_TRAPLIST, 0, 0, 1,
	  { "spamd-greytrap;\"Your address %A has mailed to spamtraps "
	    "here\\n\";inet;1;10.0.0.2/32" }, { 0 } },
	{ "blacklist", MSG_BLACKLIST, 0, 0, 1, { "tag;" }, { 0 } },
};

/* rt_check - put c, get it back from in, compare every field */
static void
rt_check(const struct rt_case *c, struct evbuffer *in)
{
	struct msg m;
	char err[256];
	uint32_t i;

	assert_int_equal(msg_get(in, &m, err, sizeof(err)), 1);
	assert_int_equal(m.type, c->type);
	assert_true(m.id == c->id);
	assert_true(m.num == c->num);
	assert_int_equal(m.nstr, c->nstr);
	for (i = 0; i < c->nstr; i++) {
		size_t l = c->len[i] ? c->len[i] : strlen(c->str[i]);

		assert_int_equal(m.len[i], l);
		assert_memory_equal(m.str[i], c->str[i], l);
		assert_int_equal(m.str[i][l], '\0');
	}
	for (; i < MSG_MAX_STR; i++)
		assert_null(m.str[i]);
	msg_clear(&m);
}

/* test_roundtrip - every case, one at a time and all in one buffer */
static void
test_roundtrip(void **state)
{
	struct evbuffer *b = evbuffer_new();
	size_t i, n = sizeof(rt_cases) / sizeof(rt_cases[0]);
	struct msg m;
	char err[256];

	for (i = 0; i < n; i++) {
		const struct rt_case *c = &rt_cases[i];

		assert_int_equal(msg_put(b, c->type, c->id, c->num, c->nstr,
		    c->str, NULL), 0);
		rt_check(c, b);
		assert_int_equal(evbuffer_get_length(b), 0);
	}
	for (i = 0; i < n; i++)
		assert_int_equal(msg_put(b, rt_cases[i].type, rt_cases[i].id,
		    rt_cases[i].num, rt_cases[i].nstr, rt_cases[i].str, NULL),
		    0);
	for (i = 0; i < n; i++)
		rt_check(&rt_cases[i], b);
	assert_int_equal(msg_get(b, &m, err, sizeof(err)), 0);
	evbuffer_free(b);
}

/* test_explicit_len - len[] given: strings need no NUL, may be cut */
static void
test_explicit_len(void **state)
{
	struct evbuffer *b = evbuffer_new();
	const char *str[2] = { "abcdef", "xyz" };
	size_t len[2] = { 3, 0 };
	struct msg m;
	char err[256];

	assert_int_equal(msg_put(b, MSG_STATS, 1, 2, 2, str, len), 0);
	assert_int_equal(msg_get(b, &m, err, sizeof(err)), 1);
	assert_string_equal(m.str[0], "abc");
	assert_string_equal(m.str[1], "");
	msg_clear(&m);
	evbuffer_free(b);
}

/* test_bytewise - frames arriving one byte at a time: 0 until whole */
static void
test_bytewise(void **state)
{
	struct evbuffer *all = evbuffer_new(), *in = evbuffer_new();
	size_t i, n = sizeof(rt_cases) / sizeof(rt_cases[0]), got = 0, total;
	size_t pending = 0;
	unsigned char *bytes;
	struct msg m;
	char err[256];

	for (i = 0; i < n; i++)
		assert_int_equal(msg_put(all, rt_cases[i].type,
		    rt_cases[i].id, rt_cases[i].num, rt_cases[i].nstr,
		    rt_cases[i].str, NULL), 0);
	total = evbuffer_get_length(all);
	bytes = malloc(total);
	assert_non_null(bytes);
	evbuffer_remove(all, bytes, total);
	for (i = 0; i < total; i++) {
		int rc;

		evbuffer_add(in, bytes + i, 1);
		rc = msg_get(in, &m, err, sizeof(err));
		assert_int_not_equal(rc, -1);
		if (rc == 1) {
			const struct rt_case *c = &rt_cases[got++];

			assert_int_equal(m.type, c->type);
			assert_true(m.id == c->id);
			assert_int_equal(m.nstr, c->nstr);
			msg_clear(&m);
			/* a whole frame is taken only at its last byte */
			assert_int_equal(evbuffer_get_length(in), 0);
			pending = 0;
		} else {
			/* "not yet" consumes nothing */
			pending++;
			assert_int_equal(evbuffer_get_length(in), pending);
		}
	}
	assert_int_equal(got, n);
	free(bytes);
	evbuffer_free(all);
	evbuffer_free(in);
}

/* A hand-made frame and the error it must give. */
struct bad_case {
	const char	*name;
	unsigned char	 bytes[64];
	size_t		 len;		/* bytes delivered */
	const char	*want;		/* substring of the error */
};

/* hdr - fill a 28-byte header */
static void
hdr(unsigned char *p, uint32_t total, uint32_t type, uint32_t nstr)
{
	be32(p, total);
	be32(p + 4, type);
	be64(p + 8, 7);
	be64(p + 16, 0);
	be32(p + 24, nstr);
}

/* test_malformed - each bad frame is refused with a naming message */
static void
test_malformed(void **state)
{
	struct bad_case cs[16];
	size_t i, n = 0;

	memset(cs, 0, sizeof(cs));
#define BAD(nm, w) (cs[n].name = (nm), cs[n].want = (w), &cs[n])
	{ struct bad_case *c = BAD("length 0", "out of range");
	  hdr(c->bytes, 0, MSG_TUPLE, 0); c->len = 28; n++; }
	{ struct bad_case *c = BAD("length < header", "out of range");
	  hdr(c->bytes, MSG_HDR_LEN - 1, MSG_TUPLE, 0); c->len = 28; n++; }
	{ struct bad_case *c = BAD("length > max", "out of range");
	  hdr(c->bytes, MSG_MAX_LEN + 1, MSG_TUPLE, 0); c->len = 28; n++; }
	{ struct bad_case *c = BAD("length 4 GiB - 1", "out of range");
	  hdr(c->bytes, UINT32_MAX, MSG_TUPLE, 0); c->len = 28; n++; }
	{ struct bad_case *c = BAD("type 0", "unknown message type 0");
	  hdr(c->bytes, 28, 0, 0); c->len = 28; n++; }
	{ struct bad_case *c = BAD("type MAX", "unknown message type");
	  hdr(c->bytes, 28, MSG_TYPE_MAX, 0); c->len = 28; n++; }
	{ struct bad_case *c = BAD("type 999", "unknown message type 999");
	  hdr(c->bytes, 28, 999, 0); c->len = 28; n++; }
	{ struct bad_case *c = BAD("too many strings", "5 strings");
	  hdr(c->bytes, 28, MSG_TUPLE, MSG_MAX_STR + 1); c->len = 28; n++; }
	{ struct bad_case *c = BAD("string length cut", "length cut");
	  hdr(c->bytes, 30, MSG_TUPLE, 1); c->len = 30; n++; }
	{ struct bad_case *c = BAD("string overruns", "overruns");
	  hdr(c->bytes, 36, MSG_TUPLE, 1); be32(c->bytes + 28, 5);
	  memcpy(c->bytes + 32, "abcd", 4); c->len = 36; n++; }
	{ struct bad_case *c = BAD("second string overruns", "string 1");
	  hdr(c->bytes, 40, MSG_TUPLE, 2); be32(c->bytes + 28, 0);
	  be32(c->bytes + 32, 0xffffffffu); c->len = 40; n++; }
	{ struct bad_case *c = BAD("embedded NUL", "NUL");
	  hdr(c->bytes, 36, MSG_TUPLE, 1); be32(c->bytes + 28, 4);
	  memcpy(c->bytes + 32, "ab\0d", 4); c->len = 36; n++; }
	{ struct bad_case *c = BAD("trailing bytes", "3 trailing bytes");
	  hdr(c->bytes, 31, MSG_TUPLE, 0); c->len = 31; n++; }
	{ struct bad_case *c = BAD("trailing after strings", "trailing");
	  hdr(c->bytes, 38, MSG_TUPLE, 1); be32(c->bytes + 28, 2);
	  memcpy(c->bytes + 32, "abcdef", 6); c->len = 38; n++; }
#undef BAD
	for (i = 0; i < n; i++) {
		struct evbuffer *b = evbuffer_new();
		/* an exact-size heap copy: ASan catches a read past it */
		unsigned char *copy = malloc(cs[i].len);
		struct msg m;
		char err[256];
		uint32_t k;

		memcpy(copy, cs[i].bytes, cs[i].len);
		evbuffer_add(b, copy, cs[i].len);
		free(copy);
		err[0] = '\0';
		if (msg_get(b, &m, err, sizeof(err)) != -1)
			fail_msg("%s: accepted", cs[i].name);
		if (strstr(err, cs[i].want) == NULL)
			fail_msg("%s: error \"%s\" lacks \"%s\"", cs[i].name,
			    err, cs[i].want);
		for (k = 0; k < MSG_MAX_STR; k++)
			assert_null(m.str[k]);
		evbuffer_free(b);
	}
}

/* test_partial_header - fewer than 28 bytes is "not yet", whatever they
 * hold; a bad length is seen as soon as the header is there */
static void
test_partial_header(void **state)
{
	struct evbuffer *b = evbuffer_new();
	unsigned char h[28];
	struct msg m;
	char err[256];
	size_t i;

	hdr(h, UINT32_MAX, 999, 99);
	for (i = 0; i < 27; i++) {
		evbuffer_add(b, h + i, 1);
		assert_int_equal(msg_get(b, &m, err, sizeof(err)), 0);
	}
	evbuffer_add(b, h + 27, 1);
	assert_int_equal(msg_get(b, &m, err, sizeof(err)), -1);
	evbuffer_free(b);
}

/* test_put_refuses - msg_put refuses what msg_get would refuse */
static void
test_put_refuses(void **state)
{
	struct evbuffer *b = evbuffer_new();
	const char *five[5] = { "a", "b", "c", "d", "e" };
	const char *nul[1] = { "ab\0cd" };
	size_t nullen[1] = { 5 };
	char *big;
	size_t biglen;
	const char *bigs[1];
	struct msg m;
	char err[256];

	assert_int_equal(msg_put(b, MSG_TUPLE, 1, 0, 5, five, NULL), -1);
	assert_int_equal(msg_put(b, MSG_TUPLE, 1, 0, 1, nul, nullen), -1);
	assert_int_equal(evbuffer_get_length(b), 0);
	/* the largest message that fits goes through; one byte more not */
	biglen = MSG_MAX_LEN - MSG_HDR_LEN - 4;
	big = malloc(biglen + 1);
	assert_non_null(big);
	memset(big, 'x', biglen + 1);
	bigs[0] = big;
	assert_int_equal(msg_put(b, MSG_BLACKLIST, 0, 0, 1, bigs, &biglen), 0);
	assert_int_equal(evbuffer_get_length(b), MSG_MAX_LEN);
	assert_int_equal(msg_get(b, &m, err, sizeof(err)), 1);
	assert_int_equal(m.len[0], biglen);
	msg_clear(&m);
	biglen++;
	assert_int_equal(msg_put(b, MSG_BLACKLIST, 0, 0, 1, bigs, &biglen),
	    -1);
	assert_int_equal(evbuffer_get_length(b), 0);
	free(big);
	evbuffer_free(b);
}

/* test_random - random bytes never crash msg_get; a refusal has a text */
static void
test_random(void **state)
{
	unsigned seed = 12345;
	int round;

	for (round = 0; round < 20000; round++) {
		struct evbuffer *b = evbuffer_new();
		unsigned char buf[96];
		size_t len, i;
		struct msg m;
		char err[256];
		int rc;

		seed = seed * 1103515245 + 12345;
		len = (seed >> 16) % sizeof(buf);
		for (i = 0; i < len; i++) {
			seed = seed * 1103515245 + 12345;
			buf[i] = (unsigned char)(seed >> 16);
		}
		/* make the length plausible half of the time */
		if (len >= 28 && (round & 1))
			be32(buf, (uint32_t)len);
		if (len >= 28 && (round & 2))
			be32(buf + 24, (seed >> 8) % 5);
		if (len >= 28 && (round & 4))
			be32(buf + 4, 1 + (seed >> 4) % (MSG_TYPE_MAX - 1));
		evbuffer_add(b, buf, len);
		err[0] = '\0';
		while ((rc = msg_get(b, &m, err, sizeof(err))) == 1)
			msg_clear(&m);
		if (rc == -1)
			assert_true(err[0] != '\0');
		evbuffer_free(b);
	}
}

/* test_type_names - every type has a name; others are "unknown" */
static void
test_type_names(void **state)
{
	uint32_t t;

	for (t = 1; t < MSG_TYPE_MAX; t++)
		assert_string_not_equal(msg_type_name(t), "unknown");
	assert_string_equal(msg_type_name(MSG_TUPLE), "tuple");
	assert_string_equal(msg_type_name(0), "unknown");
	assert_string_equal(msg_type_name(MSG_TYPE_MAX), "unknown");
	assert_string_equal(msg_type_name(UINT32_MAX), "unknown");
}

/* main - run every test */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_explicit_len),
		cmocka_unit_test(test_bytewise),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_partial_header),
		cmocka_unit_test(test_put_refuses),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_type_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
