/*
 * test_cluster.c - the cluster catch-up's codec (pf-sync/cluster.h): a
 * table of lines with the kind or the error each must give (every error
 * path of the parser), records through format and parse and back, the
 * request MAC and its checks, the block MAC chain against a second path
 * (libcrypto's HMAC() over the bytes as cluster.h describes them), and
 * the digest's independence of order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pf-sync/cluster.h"

#define KEY "0123456789abcdef0123456789abcdef01234567"
#define KEYLEN 40

/* One row: a line, the kind it parses as (0 = error) and a piece of the
 * error message it must give. */
struct row {
	const char	*line;
	int		 kind;
	const char	*why;
};

static const struct row rows[] = {
	{ "WHITE|192.0.2.1|||10|20|30|1|2", CLUSTER_L_REC, NULL },
	{ "WHITE|2001:DB8::1|||10|20|30|1|2", CLUSTER_L_REC, NULL },
	{ "TRAPPED|192.0.2.2|1700000000", CLUSTER_L_REC, NULL },
	{ "GREY|192.0.2.3|h.example|a@b|c@d|1|2|3|4|0", CLUSTER_L_REC, NULL },
	{ "GREY|192.0.2.3||||1|2|3|4|0", CLUSTER_L_REC, NULL },
	{ "D|0|5|00000000000000ff", CLUSTER_L_DIGEST, NULL },
	{ "D|255|0|0123456789abcdef", CLUSTER_L_DIGEST, NULL },
	{ "D|65535|3|0123456789abcdef", CLUSTER_L_DIGEST, NULL },	/* leaf */
	{ "END|454", CLUSTER_L_END, NULL },
	{ "MAC|000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
	    CLUSTER_L_MAC, NULL },
	/* errors, one per path */
	{ "", 0, "unknown line type" },
	{ "SPAMTRAP|a@b", 0, "unknown line type" },
	{ "white|192.0.2.1|||10|20|30|1|2", 0, "unknown line type" },
	{ "WHITE|192.0.2.1|||10|20|30|1", 0, "WHITE: 8 fields, want 9" },
	{ "WHITE|192.0.2.1|||10|20|30|1|2|3|4|5", 0, "WHITE: 11 fields" },
	{ "WHITE|192.0.2.999|||10|20|30|1|2", 0, "ip: not an IPv4" },
	{ "WHITE|192.0.2.1|x|||10|20|30|1", 0, "fields 3 and 4 must be empty" },
	{ "WHITE|192.0.2.1|||x|20|30|1|2", 0, "first: not a number" },
	{ "WHITE|192.0.2.1|||10||30|1|2", 0, "pass: not a number" },
	{ "WHITE|192.0.2.1|||10|20|-30|1|2", 0, "expire: out of range" },
	{ "WHITE|192.0.2.1|||10|20|30|-1|2", 0, "bcount: out of range" },
	{ "WHITE|192.0.2.1|||10|20|30|1|-1", 0, "pcount: out of range" },
	{ "WHITE|192.0.2.1|||10|20|99999999999999999999|1|2", 0,
	    "expire: not a number" },
	{ "TRAPPED|192.0.2.2", 0, "TRAPPED: 2 fields, want 3" },
	{ "TRAPPED|192.0.2.2|0", 0, "expire: out of range" },
	{ "TRAPPED|192.0.2.2|1e9", 0, "expire: not a number" },
	{ "GREY|192.0.2.3|h|a|1|2|3|4|0", 0, "GREY: 9 fields, want 10" },
	{ "GREY|192.0.2.3|h\x01|a|b|1|2|3|4|0", 0, "helo: byte outside" },
	{ "GREY|192.0.2.3|h|a\x7f|b|1|2|3|4|0", 0, "from: byte outside" },
	{ "GREY|192.0.2.3|h|a|b\xc3\xa9|1|2|3|4|0", 0, "to: byte outside" },
	{ "D|0|5", 0, "D: 3 fields, want 4" },
	{ "D|65536|5|00000000000000ff", 0, "bucket: out of range" },
	{ "D|0|-1|00000000000000ff", 0, "count: out of range" },
	{ "D|0|5|00000000000000FF", 0, "hash: want 16 hex digits" },
	{ "D|0|5|0ff", 0, "hash: want 16 hex digits" },
	{ "END", 0, "END: 1 fields, want 2" },
	{ "END|x", 0, "count: not a number" },
	{ "MAC|00", 0, "MAC: want 64 hex digits" },
	{ "MAC|a|b", 0, "MAC: 3 fields, want 2" },
};

/* test_lines - every row parses as it says */
static void
test_lines(void **state)
{
	struct cluster_line l;
	char why[256];
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		why[0] = '\0';
		r = cluster_parse_line(rows[i].line, strlen(rows[i].line), &l,
		    why, sizeof(why));
		if (rows[i].kind != 0) {
			if (r != 0 || (int)l.kind != rows[i].kind)
				fail_msg("row %zu %s: %d %s", i, rows[i].line,
				    r, why);
		} else if (r != -1 || strstr(why, rows[i].why) == NULL)
			fail_msg("row %zu %s: want error \"%s\", got %d \"%s\"",
			    i, rows[i].line, rows[i].why, r, why);
	}
}

/* test_bounds - a NUL inside, a line over the limit, the field values */
static void
test_bounds(void **state)
{
	struct cluster_line l;
	char why[256], big[CLUSTER_LINE_MAX + 2];
	static const char nul[] = "END|1\0x";

	(void)state;
	assert_int_equal(cluster_parse_line(nul, sizeof(nul) - 1, &l, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "NUL"));
	memset(big, 'A', sizeof(big));
	assert_int_equal(cluster_parse_line(big, sizeof(big), &l, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "longer than"));
	/* a line of exactly the limit is read (and refused for its type) */
	assert_int_equal(cluster_parse_line(big, CLUSTER_LINE_MAX, &l, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "unknown line type"));

	assert_int_equal(cluster_parse_line("WHITE|2001:DB8::1|||10|20|30|1|2",
	    32, &l, why, sizeof(why)), 0);
	assert_string_equal(l.rec.ip, "2001:db8::1");	/* canonical */
	assert_int_equal(l.rec.type, GDB_WHITE);
	assert_int_equal(l.rec.first, 10);
	assert_int_equal(l.rec.pass, 20);
	assert_int_equal(l.rec.expire, 30);
	assert_int_equal(l.rec.bcount, 1);
	assert_int_equal(l.rec.pcount, 2);
	assert_int_equal(cluster_parse_line("TRAPPED|192.0.2.2|77", 20, &l,
	    why, sizeof(why)), 0);
	assert_int_equal(l.rec.type, GDB_TRAPPED);
	assert_int_equal(l.rec.expire, 77);
	assert_int_equal(l.rec.pcount, GDB_PCOUNT_TRAPPED);
	assert_int_equal(cluster_parse_line("D|7|3|8000000000000001", 22, &l,
	    why, sizeof(why)), 0);
	assert_int_equal(l.bucket, 7);
	assert_int_equal(l.count, 3);
	assert_true(l.hash == 0x8000000000000001ULL);
}

/* test_format - records through format and parse come back the same;
 * what cannot travel is refused */
static void
test_format(void **state)
{
	struct gdb_rec in[3], bad;
	struct cluster_line l;
	char buf[CLUSTER_LINE_MAX + 2], why[256];
	size_t i, n;

	(void)state;
	memset(in, 0, sizeof(in));
	in[0].type = GDB_WHITE;
	strlcpy(in[0].ip, "192.0.2.1", sizeof(in[0].ip));
	in[0].first = 1;
	in[0].pass = 2;
	in[0].expire = 3;
	in[0].bcount = 4;
	in[0].pcount = 5;
	in[1].type = GDB_TRAPPED;
	strlcpy(in[1].ip, "2001:db8::2", sizeof(in[1].ip));
	in[1].first = in[1].pass = in[1].expire = 1700000000;
	in[1].pcount = GDB_PCOUNT_TRAPPED;
	in[2].type = GDB_GREY;
	strlcpy(in[2].ip, "192.0.2.3", sizeof(in[2].ip));
	strlcpy(in[2].helo, "mx.example", sizeof(in[2].helo));
	strlcpy(in[2].from, "a@b.example", sizeof(in[2].from));
	strlcpy(in[2].to, "", sizeof(in[2].to));
	in[2].first = 10;
	in[2].pass = 20;
	in[2].expire = 30;
	in[2].bcount = 1;
	for (i = 0; i < 3; i++) {
		n = cluster_format_rec(&in[i], buf, sizeof(buf));
		assert_true(n > 0 && buf[n - 1] == '\n');
		assert_int_equal(cluster_parse_line(buf, n - 1, &l, why,
		    sizeof(why)), 0);
		assert_int_equal(l.kind, CLUSTER_L_REC);
		assert_memory_equal(&l.rec, &in[i], sizeof(in[i]));
	}
	bad = in[2];
	strlcpy(bad.helo, "a|b", sizeof(bad.helo));
	assert_int_equal(cluster_format_rec(&bad, buf, sizeof(buf)), 0);
	bad = in[2];
	strlcpy(bad.to, "x\ny", sizeof(bad.to));
	assert_int_equal(cluster_format_rec(&bad, buf, sizeof(buf)), 0);
	bad = in[0];
	bad.type = GDB_SPAMTRAP;
	assert_int_equal(cluster_format_rec(&bad, buf, sizeof(buf)), 0);
	assert_int_equal(cluster_format_rec(&in[0], buf, 10), 0);
}

/* hmac256 - the second path: libcrypto's HMAC-SHA256 */
static void
hmac256(const void *d, size_t n, unsigned char out[32])
{
	unsigned int len = 0;

	assert_non_null(HMAC(EVP_sha256(), KEY, KEYLEN, d, n, out, &len));
	assert_int_equal(len, 32);
}

/* test_request - the request MAC and every refusal of its header */
static void
test_request(void **state)
{
	char mac[CLUSTER_MAC_HEX], got[CLUSTER_MAC_HEX], hdr[256], why[256];
	char big[400];
	unsigned char want[32];
	const char *msg = "GET /cluster/changes?since=5 1700000000 abc123";
	char hex[CLUSTER_MAC_HEX];
	const long long now = 1700000000;

	(void)state;
	assert_int_equal(cluster_req_mac(KEY, KEYLEN, "/cluster/changes?"
	    "since=5", now, "abc123", mac), 0);
	hmac256(msg, strlen(msg), want);
	cluster_mac_hex(want, hex);
	assert_string_equal(mac, hex);
	snprintf(hdr, sizeof(hdr), "%lld abc123 %s", now, mac);
	assert_int_equal(cluster_req_check(KEY, KEYLEN, "/cluster/changes?"
	    "since=5", hdr, now + CLUSTER_SKEW, got, why, sizeof(why)), 0);
	assert_string_equal(got, mac);
	/* another target, another key, the time, the fields */
	assert_int_equal(cluster_req_check(KEY, KEYLEN, "/cluster/changes?"
	    "since=0", hdr, now, got, why, sizeof(why)), -1);
	assert_string_equal(why, "key mismatch");
	assert_int_equal(cluster_req_check("x", 1, "/cluster/changes?since=5",
	    hdr, now, got, why, sizeof(why)), -1);
	assert_string_equal(why, "key mismatch");
	assert_int_equal(cluster_req_check(KEY, KEYLEN, "/cluster/changes?"
	    "since=5", hdr, now + CLUSTER_SKEW + 1, got, why, sizeof(why)),
	    -1);
	assert_non_null(strstr(why, "more than 300 s"));
	assert_int_equal(cluster_req_check(KEY, KEYLEN, "/x", NULL, now, got,
	    why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no X-Spamd-Cluster"));
	assert_int_equal(cluster_req_check(KEY, KEYLEN, "/x", "1 2", now, got,
	    why, sizeof(why)), -1);
	assert_non_null(strstr(why, "want TS NONCE MAC"));
	assert_int_equal(cluster_req_check(KEY, KEYLEN, "/x", "1 2 3 4", now,
	    got, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "want TS NONCE MAC"));
	assert_int_equal(cluster_req_check(KEY, KEYLEN, "/x", "t 2 3", now,
	    got, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "TS: not a number"));
	snprintf(hdr, sizeof(hdr), "%lld NONCE %s", now, mac);
	assert_int_equal(cluster_req_check(KEY, KEYLEN, "/x", hdr, now, got,
	    why, sizeof(why)), -1);
	assert_non_null(strstr(why, "nonce"));
	snprintf(hdr, sizeof(hdr), "%lld abc123 %.10s", now, mac);
	assert_int_equal(cluster_req_check(KEY, KEYLEN, "/cluster/changes?"
	    "since=5", hdr, now, got, why, sizeof(why)), -1);
	assert_string_equal(why, "key mismatch");
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(cluster_req_check(KEY, KEYLEN, "/x", big, now, got,
	    why, sizeof(why)), -1);
	assert_non_null(strstr(why, "too long"));
}

/* test_chain - M0 and Mi as cluster.h says, by a second path; a block
 * out of its place gives another MAC */
static void
test_chain(void **state)
{
	unsigned char mac[32], want[32], inner[32], two[64], swapped[32];
	const char *reqmac = "00ff";
	const char *b1 = "WHITE|192.0.2.1|||1|2|3|4|5\n";
	const char *b2 = "END|1\n";
	char msg[64];

	(void)state;
	assert_int_equal(cluster_chain_init(mac, KEY, KEYLEN, reqmac), 0);
	snprintf(msg, sizeof(msg), "spamd-cluster/1 %s", reqmac);
	hmac256(msg, strlen(msg), want);
	assert_memory_equal(mac, want, 32);

	assert_int_equal(cluster_chain_next(mac, KEY, KEYLEN, b1,
	    strlen(b1)), 0);
	hmac256(b1, strlen(b1), inner);
	memcpy(two, want, 32);
	memcpy(two + 32, inner, 32);
	hmac256(two, 64, want);
	assert_memory_equal(mac, want, 32);
	assert_int_equal(cluster_chain_next(mac, KEY, KEYLEN, b2,
	    strlen(b2)), 0);

	/* b2 first, then b1: neither MAC matches the stream in order */
	assert_int_equal(cluster_chain_init(swapped, KEY, KEYLEN, reqmac), 0);
	assert_int_equal(cluster_chain_next(swapped, KEY, KEYLEN, b2,
	    strlen(b2)), 0);
	assert_memory_not_equal(swapped, want, 32);
	assert_int_equal(cluster_chain_next(swapped, KEY, KEYLEN, b1,
	    strlen(b1)), 0);
	assert_memory_not_equal(swapped, mac, 32);
	/* another request: another M0 */
	assert_int_equal(cluster_chain_init(swapped, KEY, KEYLEN, "00fe"), 0);
	assert_memory_not_equal(swapped, want, 32);
}

/* test_digest - the same records in any order give the same digest; a
 * missing one or another type changes its bucket only */
static void
test_digest(void **state)
{
	struct cluster_digest a, b;
	struct gdb_rec r[50];
	unsigned bk;
	int i;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(r, 0, sizeof(r));
	for (i = 0; i < 50; i++) {
		r[i].type = i % 3 == 0 ? GDB_TRAPPED : GDB_WHITE;
		snprintf(r[i].ip, sizeof(r[i].ip), "10.0.%d.%d", i / 7, i);
		r[i].expire = 1000 + i;
	}
	for (i = 0; i < 50; i++)
		cluster_digest_add(&a, &r[i]);
	for (i = 49; i >= 0; i--) {
		r[i].expire += 7;	/* expiry is not part of it */
		cluster_digest_add(&b, &r[i]);
	}
	assert_memory_equal(&a, &b, sizeof(a));
	memset(&b, 0, sizeof(b));
	for (i = 1; i < 50; i++)
		cluster_digest_add(&b, &r[i]);
	bk = cluster_bucket(r[0].ip);
	for (i = 0; i < CLUSTER_BUCKETS; i++)
		if ((unsigned)i == bk)
			assert_true(a.hash[i] != b.hash[i] &&
			    a.count[i] == b.count[i] + 1);
		else
			assert_true(a.hash[i] == b.hash[i] &&
			    a.count[i] == b.count[i]);
	r[0].type = GDB_WHITE;
	cluster_digest_add(&b, &r[0]);
	assert_true(a.hash[bk] != b.hash[bk] && a.count[bk] == b.count[bk]);
}

/* test_change_time - GREY: first; WHITE and TRAPPED: the latest of
 * first, pass and expire - lifetime; never after now */
static void
test_change_time(void **state)
{
	static const struct gdb_times t = { 1500, 14400, 3110400, 86400 };
	static const struct {
		enum gdb_type	type;
		int64_t		first, pass, expire, now, want;
	} cases[] = {
		/* type, first, pass, expire, now, want */
		{ GDB_WHITE, 100, 200, 200 + 3110400, 1000, 200 },
		/* refreshed at 900 (greylogd moves expire only) */
		{ GDB_WHITE, 100, 200, 900 + 3110400, 1000, 900 },
		/* a peer's longer whiteexp: clamped to now */
		{ GDB_WHITE, 100, 200, 5000 + 3110400, 1000, 1000 },
		{ GDB_TRAPPED, 100, 200, 5000 + 86400, 9000, 5000 },
		{ GDB_TRAPPED, 0, 0, 7000 + 86400, 9000, 7000 },
		/* OpenBSD's layout: pass = expire = first + greyexp */
		{ GDB_GREY, 5000, 5000 + 14400, 5000 + 14400, 6000, 5000 },
		{ GDB_GREY, 5000, 5000 + 14400, 5000 + 14400, 4000, 4000 },
		{ GDB_SPAMTRAP, 100, 200, 0, 1000, 200 },
	};
	struct gdb_rec r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&r, 0, sizeof(r));
		r.type = cases[i].type;
		r.first = cases[i].first;
		r.pass = cases[i].pass;
		r.expire = cases[i].expire;
		if (cluster_change_time(&r, &t, cases[i].now) != cases[i].want)
			fail_msg("row %zu: %lld, want %lld", i,
			    (long long)cluster_change_time(&r, &t,
			    cases[i].now), (long long)cases[i].want);
	}
}

/* test_sets - leaf and bucket sets: round trip, split by room, and
 * every decode error */
static void
test_sets(void **state)
{
	static const struct {
		const char	*text;
		unsigned	 nbits;
		const char	*why;	/* NULL: good */
	} cases[] = {
		/* text, nbits, why */
		{ "", 256, NULL },
		{ "gggg", 256, NULL },			/* 0, 1, 2, 3 */
		{ "fffu", 65536, NULL },		/* 65535 */
		{ "ffffg", 65536, "set: 1048560 past the last (65535)" },
		{ "1g", 16, "set: 16 past the last (15)" },
		{ "12345g", 65536, "set: a gap of more than 5 digits at "
		    "offset 5" },
		{ "g1", 256, "set: ends inside a gap" },
		{ "gw", 256, "set: byte 1 is not 0-9a-v" },
		{ "G", 256, "set: byte 0 is not 0-9a-v" },
	};
	static uint8_t map[CLUSTER_LEAVES / 8], back[CLUSTER_LEAVES / 8];
	char text[64], why[128];
	unsigned i, next, members[] = { 0, 1, 17, 255, 256, 4096, 65535 };
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		int r = cluster_set_decode(cases[k].text, map, cases[k].nbits,
		    why, sizeof(why));

		if (cases[k].why == NULL ? r != 0 : (r != -1 ||
		    strcmp(why, cases[k].why) != 0))
			fail_msg("case %zu (%s): %d %s", k, cases[k].text, r,
			    r == -1 ? why : "");
	}
	assert_int_equal(cluster_set_decode("gggg", map, 256, why,
	    sizeof(why)), 0);
	assert_int_equal(map[0], 0x0f);
	/* round trip, in one piece and cut by a small buffer */
	memset(map, 0, sizeof(map));
	for (k = 0; k < sizeof(members) / sizeof(members[0]); k++)
		map[members[k] >> 3] |= (uint8_t)(1u << (members[k] & 7));
	next = cluster_set_encode(map, CLUSTER_LEAVES, 0, text, sizeof(text));
	assert_int_equal(next, CLUSTER_LEAVES);
	assert_string_equal(text, "ggvetgefveffu");
	assert_int_equal(cluster_set_decode(text, back, CLUSTER_LEAVES, why,
	    sizeof(why)), 0);
	assert_memory_equal(map, back, sizeof(map));
	next = cluster_set_encode(map, CLUSTER_LEAVES, 0, text, 5);
	assert_string_equal(text, "ggv");	/* 0, 1, 17: 255 did not fit */
	assert_int_equal(next, 255);
	next = cluster_set_encode(map, CLUSTER_LEAVES, next, text,
	    sizeof(text));
	assert_string_equal(text, "ggefveffu");	/* the rest from 255 on */
	assert_int_equal(next, CLUSTER_LEAVES);
	/* a leaf's bucket is its low byte */
	for (i = 0; i < 50; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "192.0.2.%u", i);
		assert_int_equal(cluster_leaf(ip) & 255, cluster_bucket(ip));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_digest),
		cmocka_unit_test(test_change_time),
		cmocka_unit_test(test_sets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
