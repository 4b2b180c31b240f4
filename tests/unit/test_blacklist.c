/*
 * test_blacklist.c - the blacklist control-message parser, the set of
 * lists and its lookups (checked against a brute-force search), and the
 * reply template check and expander. Every parse runs on an exact-size
 * heap copy without a NUL, so ASan catches any read past len.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "spamd/common/blacklist.h"

/* parse - bl_parse on an exact-size copy of s (len bytes, no NUL) */
static struct bl_list *
parse(const char *s, size_t len, char *err, size_t errsz)
{
	struct bl_list *l;
	char *copy = malloc(len > 0 ? len : 1);

	assert_non_null(copy);
	memcpy(copy, s, len);
	err[0] = '\0';
	l = bl_parse(copy, len, err, errsz);
	free(copy);
	return l;
}

/* load - parse s and apply it to set, failing the test on any error */
static void
load(struct bl_set *set, const char *s)
{
	char err[256];
	struct bl_list *l = parse(s, strlen(s), err, sizeof(err));

	if (l == NULL)
		fail_msg("parse %s: %s", s, err);
	if (bl_set_apply(set, l, err, sizeof(err)) == -1)
		fail_msg("apply %s: %s", s, err);
}

/* addr - a bl_addr from text */
static struct bl_addr
addr(const char *s)
{
	struct bl_addr a;

	memset(&a, 0, sizeof(a));
	if (inet_pton(AF_INET, s, a.a) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, s, a.a) == 1)
		a.family = AF_INET6;
	else
		fail_msg("bad test address %s", s);
	return a;
}

/* matches - the tags of a lookup joined by ',' */
static const char *
matches(const struct bl_set *set, const char *a, char *buf, size_t bufsz)
{
	struct bl_addr ba = addr(a);
	struct bl_match m;
	int i;

	buf[0] = '\0';
	bl_lookup(set, &ba, &m);
	for (i = 0; i < m.n; i++) {
		if (i > 0)
			strlcat(buf, ",", bufsz);
		strlcat(buf, m.tag[i], bufsz);
	}
	return buf;
}

static const struct {
	const char	*in;
	const char	*tag;
	long		 prefixes;
	const char	*msg;
} valid[] = {
	{ "spews1;\"You are listed\";inet;2;192.0.2.0/24;10.0.0.0/8",
	    "spews1", 2, "You are listed" },
	{ "both;\"m\";inet;1;192.0.2.0/24;inet6;2;2001:db8::/32;::1/128",
	    "both", 3, "m" },
	{ "six;\"m\";inet6;1;2001:db8::/32", "six", 1, "m" },
	{ "six4;\"m\";inet6;1;2001:db8::/32;inet;1;1.2.3.4/32", "six4", 2,
	    "m" },
	{ "clear;", "clear", 0, "" },
	{ "zero;\"m\";inet;0", "zero", 0, "m" },
	{ "esc;\"say \\\"hi\\\" to %A\\nat 100%% \\\\ ok\";inet;1;1.0.0.0/8",
	    "esc", 1, "say \\\"hi\\\" to %A\\nat 100%% \\\\ ok" },
	{ "e;\"\";inet;1;0.0.0.0/0", "e", 1, "" },
	{ "hostbits;\"m\";inet;1;10.1.2.3/8", "hostbits", 1, "m" },
	{ "t.a-b_c;\"m\";inet;1;255.255.255.255/32", "t.a-b_c", 1, "m" },
	{ "all;\"m\";inet6;1;::/0", "all", 1, "m" },
	{ "max;\"m\";inet6;1;ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
	    "max", 1, "m" },
};

/* test_parse_valid - messages spamd-setup sends parse as expected */
static void
test_parse_valid(void **state)
{
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		struct bl_list *l = parse(valid[i].in, strlen(valid[i].in),
		    err, sizeof(err));

		if (l == NULL)
			fail_msg("row %zu: %s", i, err);
		assert_string_equal(bl_list_tag(l), valid[i].tag);
		assert_int_equal(bl_list_size(l), valid[i].prefixes);
		bl_list_free(l);
	}
}

/* test_parse_message - the stored template is the quoted text as sent */
static void
test_parse_message(void **state)
{
	struct bl_set *set = bl_set_new();
	struct bl_match m;
	struct bl_addr a = addr("1.2.3.4");
	size_t i;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		if (valid[i].prefixes == 0 ||
		    strchr(valid[i].in, ':') != NULL)
			continue;
		load(set, valid[i].in);
	}
	bl_lookup(set, &a, &m);
	assert_true(m.n >= 2);
	for (i = 0; i < (size_t)m.n; i++)
		if (strcmp(m.tag[i], "esc") == 0)
			assert_string_equal(m.msg[i],
			    "say \\\"hi\\\" to %A\\nat 100%% \\\\ ok");
	bl_set_free(set);
}

#define L(s)	s, sizeof(s) - 1

static const struct {
	const char	*in;
	size_t		 len;
	const char	*want;	/* fragment of the error, with the offset */
} bad[] = {
	{ L(""), "empty tag at byte 0" },
	{ L(";\"m\";inet;0"), "empty tag at byte 0" },
	{ L("notag"), "missing ';' after tag at byte 5" },
	{ L("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;"),
	    "tag too long at byte 63" },
	{ L("a b;\"m\";inet;0"), "bad character in tag at byte 1" },
	{ L("a\"b;"), "bad character in tag at byte 1" },
	{ L("a\0b;"), "bad character in tag at byte 1" },
	{ L("t;m;inet;0"), "missing opening quote at byte 2" },
	{ L("t;\"msg"), "unterminated message (missing closing quote) at "
	    "byte 6" },
	{ L("t;\"msg\\\""), "unterminated message" },
	{ L("t;\"msg\\"), "unterminated message" },
	{ L("t;\"a\0b\";inet;0"), "NUL byte in message at byte 4" },
	{ L("t;\"bad \\x\";inet;0"), "bad escape in message (only \\\" "
	    "\\\\ \\n) at byte 7" },
	{ L("t;\"fmt %s\";inet;0"), "bad '%' sequence in message (only %A "
	    "%%) at byte 7" },
	{ L("t;\"fmt %n\";inet;0"), "bad '%' sequence" },
	{ L("t;\"lone %\";inet;0"), "bad '%' sequence in message (only %A "
	    "%%) at byte 8" },
	{ L("t;\"cr\r\";inet;0"), "control character in message at byte 5" },
	{ L("t;\"m\""), "missing ';' and address family after message at "
	    "byte 5" },
	{ L("t;\"m\"x;inet;0"), "trailing junk after message at byte 5" },
	{ L("t;\"m\";"), "unknown address family at byte 6" },
	{ L("t;\"m\";inet4;1;1.2.3.4/32"), "unknown address family at "
	    "byte 6" },
	{ L("t;\"m\";inet"), "missing count at byte 10" },
	{ L("t;\"m\";inet;"), "bad count at byte 11" },
	{ L("t;\"m\";inet;x"), "bad count at byte 11" },
	{ L("t;\"m\";inet;-1"), "bad count at byte 11" },
	{ L("t;\"m\";inet;01;1.2.3.4/32"), "bad count at byte 11" },
	{ L("t;\"m\";inet;1234567890"), "bad count at byte 11" },
	{ L("t;\"m\";inet;2;1.2.3.4/32"), "count mismatch (2 announced, 1 "
	    "found) at byte 23" },
	{ L("t;\"m\";inet;999999999;1.2.3.4/32"), "count mismatch "
	    "(999999999 announced, 1 found)" },
	{ L("t;\"m\";inet;2;1.2.3.4/32;inet6;0"), "count mismatch (2 "
	    "announced, 1 found) at byte 24" },
	{ L("t;\"m\";inet;1;1.2.3.4/32;5.6.7.8/32"), "count mismatch (more "
	    "entries than announced) at byte 24" },
	{ L("t;\"m\";inet;1;1.2.3.4/32;"), "unknown address family at "
	    "byte 24" },
	{ L("t;\"m\";inet;0;inet;0"), "address family given twice at "
	    "byte 13" },
	{ L("t;\"m\";inet;1;1.2.3.4"), "missing prefix length at byte 13" },
	{ L("t;\"m\";inet;1;1.2.3/24"), "bad IPv4 address at byte 13" },
	{ L("t;\"m\";inet;1;1.2.3.4.5/24"), "bad IPv4 address at byte 13" },
	{ L("t;\"m\";inet;1;1.2.3.256/24"), "bad IPv4 address at byte 13" },
	{ L("t;\"m\";inet;1;01.2.3.4/24"), "bad IPv4 address at byte 13" },
	{ L("t;\"m\";inet;1;1..3.4/24"), "bad IPv4 address at byte 13" },
	{ L("t;\"m\";inet;1;::1/128"), "bad IPv4 address at byte 13" },
	{ L("t;\"m\";inet;1;1.2.3.4/33"), "prefix length out of range at "
	    "byte 21" },
	{ L("t;\"m\";inet;1;1.2.3.4/"), "bad prefix length at byte 21" },
	{ L("t;\"m\";inet;1;1.2.3.4/08"), "bad prefix length at byte 21" },
	{ L("t;\"m\";inet;1;1.2.3.4/1x"), "bad prefix length at byte 21" },
	{ L("t;\"m\";inet;1;1.2.3.4/ 8"), "bad prefix length at byte 21" },
	{ L("t;\"m\";inet6;1;2001:db8::/129"), "prefix length out of range "
	    "at byte 25" },
	{ L("t;\"m\";inet6;1;2001:db8::g/64"), "bad IPv6 address at byte 14" },
	{ L("t;\"m\";inet6;1;1.2.3.4/32"), "bad IPv6 address at byte 14" },
	{ L("t;\"m\";inet6;1;/64"), "bad IPv6 address at byte 14" },
	{ L("t;\"m\";inet6;1;1111:2222:3333:4444:5555:6666:7777:8888:9999:"
	    "aaaa/64"), "bad IPv6 address at byte 14" },
	{ L("t;\"m\";inet;0 "), "bad count at byte 11" },
	{ L("t;\"m\";inet;1;1.2.3.4/32\r"), "bad prefix length at byte 21" },
};

/* test_parse_bad - every malformed message is refused with what and where */
static void
test_parse_bad(void **state)
{
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct bl_list *l = parse(bad[i].in, bad[i].len, err,
		    sizeof(err));

		if (l != NULL)
			fail_msg("row %zu accepted: %s", i, bad[i].in);
		if (strstr(err, bad[i].want) == NULL)
			fail_msg("row %zu: got \"%s\", want \"%s\"", i, err,
			    bad[i].want);
	}
}

/* test_parse_prefixes - every truncation of valid messages is safe */
static void
test_parse_prefixes(void **state)
{
	char err[256];
	size_t i, n;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		for (n = 0; n < strlen(valid[i].in); n++) {
			struct bl_list *l = parse(valid[i].in, n, err,
			    sizeof(err));

			/* a shorter message may still be valid ("tag;") */
			if (l == NULL)
				assert_non_null(strstr(err, " at byte "));
			bl_list_free(l);
		}
}

/* test_parse_mutations - random byte changes never crash the parser */
static void
test_parse_mutations(void **state)
{
	const char *base = "both;\"a \\\"b\\\" %A\\n\";inet;2;192.0.2.0/24;"
	    "10.0.0.0/8;inet6;2;2001:db8::/32;::1/128";
	static const char alpha[] = ";\"\\%/.:0123456789abfinet6\r\n\0 A";
	char buf[128], err[256];
	size_t len = strlen(base), k;
	int i, accepted = 0, refused = 0;

	srandom(7);
	for (i = 0; i < 20000; i++) {
		struct bl_list *l;

		memcpy(buf, base, len);
		for (k = 0; k < 1 + (size_t)(random() % 3); k++)
			buf[random() % len] = alpha[random() %
			    (sizeof(alpha) - 1)];
		l = parse(buf, len - (size_t)(random() % 4), err,
		    sizeof(err));
		if (l == NULL) {
			assert_non_null(strstr(err, " at byte "));
			refused++;
		} else
			accepted++;
		bl_list_free(l);
	}
	assert_true(refused > 0);
	assert_true(accepted > 0);
}

/* The set for lookups: overlapping prefixes across lists. */
static const char *lists[] = {
	"a;\"A\";inet;3;10.0.0.0/8;192.0.2.0/24;198.51.100.7/32;"
	    "inet6;2;2001:db8::/32;2001:db8:1::5/128",
	"b;\"B\";inet;3;10.1.0.0/16;192.0.2.128/25;0.0.0.0/0",
	"c;\"C\";inet;2;10.1.2.3/32;255.255.255.255/32;inet6;2;::/0;"
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
	"d;\"D\";inet6;2;2001:db8:1::/48;2001:db8:2:3::/64",
	"m;\"M\";inet6;2;::ffff:198.18.0.0/111;::ffff:255.255.255.255/128",
};

static const struct {
	const char	*addr;
	const char	*want;
} lookups[] = {
	{ "10.0.0.0", "a,b" },
	{ "9.255.255.255", "b" },
	{ "10.255.255.255", "a,b" },
	{ "11.0.0.0", "b" },
	{ "10.1.2.3", "a,b,c" },
	{ "10.1.2.2", "a,b" },
	{ "10.1.2.4", "a,b" },
	{ "10.0.255.255", "a,b" },
	{ "10.2.0.0", "a,b" },
	{ "192.0.2.0", "a,b" },
	{ "192.0.2.127", "a,b" },
	{ "192.0.2.128", "a,b" },
	{ "192.0.2.255", "a,b" },
	{ "192.0.3.0", "b" },
	{ "198.51.100.7", "a,b" },
	{ "198.51.100.6", "b" },
	{ "198.51.100.8", "b" },
	{ "0.0.0.0", "b" },
	{ "255.255.255.255", "b,c,m" },
	{ "255.255.255.254", "b" },
	{ "2001:db8::", "a,c" },
	{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "a,c" },
	{ "2001:db9::", "c" },
	{ "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "c" },
	{ "2001:db8:1::5", "a,c,d" },
	{ "2001:db8:1::4", "a,c,d" },
	{ "2001:db8:2::", "a,c" },
	{ "2001:db8:2:3::", "a,c,d" },
	{ "2001:db8:2:3:ffff:ffff:ffff:ffff", "a,c,d" },
	{ "2001:db8:2:2:ffff:ffff:ffff:ffff", "a,c" },
	{ "2001:db8:2:4::", "a,c" },
	{ "::", "c" },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "c" },
	{ "::ffff:10.1.2.3", "a,b,c" },
	{ "198.18.0.0", "b,m" },
	{ "198.19.255.255", "b,m" },
	{ "198.17.255.255", "b" },
	{ "198.20.0.0", "b" },
	{ "::ffff:198.18.0.1", "b,m" },
	{ "::fffe:198.18.0.1", "c" },
	{ "::ffff:11.0.0.0", "b" },
};

/* test_lookup - overlapping lists, /0, /32, /128 and range boundaries */
static void
test_lookup(void **state)
{
	struct bl_set *set = bl_set_new();
	char buf[256];
	size_t i;
	int nl;
	long np;

	assert_non_null(set);
	assert_string_equal(matches(set, "10.0.0.1", buf, sizeof(buf)), "");
	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		load(set, lists[i]);
	for (i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++)
		if (strcmp(matches(set, lookups[i].addr, buf, sizeof(buf)),
		    lookups[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"",
			    lookups[i].addr, buf, lookups[i].want);
	bl_count(set, &nl, &np);
	assert_int_equal(nl, 5);
	assert_int_equal(np, 16);
	assert_true(bl_memory(set) > 0);
	bl_set_free(set);
}

/* test_hostbits - host bits below the prefix length are masked off */
static void
test_hostbits(void **state)
{
	struct bl_set *set = bl_set_new();
	char buf[64];

	load(set, "h;\"m\";inet;1;10.1.2.3/8;inet6;1;2001:db8::1/32");
	assert_string_equal(matches(set, "10.0.0.0", buf, sizeof(buf)), "h");
	assert_string_equal(matches(set, "10.255.0.1", buf, sizeof(buf)),
	    "h");
	assert_string_equal(matches(set, "2001:db8:ffff::", buf,
	    sizeof(buf)), "h");
	assert_string_equal(matches(set, "11.0.0.0", buf, sizeof(buf)), "");
	/* ::ffff:0:0/96 stands for all of IPv4 */
	load(set, "v4all;\"m\";inet6;1;::ffff:0.0.0.0/96");
	assert_string_equal(matches(set, "11.0.0.0", buf, sizeof(buf)),
	    "v4all");
	assert_string_equal(matches(set, "::ffff:255.255.255.255", buf,
	    sizeof(buf)), "v4all");
	assert_string_equal(matches(set, "::1", buf, sizeof(buf)), "");
	bl_set_free(set);
}

/* test_replace_clear - the same tag replaces in place, "tag;" removes */
static void
test_replace_clear(void **state)
{
	struct bl_set *set = bl_set_new();
	struct bl_addr a = addr("10.0.0.1");
	struct bl_match m;
	char buf[64];
	int nl;

	load(set, "x;\"X1\";inet;1;10.0.0.0/8");
	load(set, "y;\"Y\";inet;1;10.0.0.0/16");
	load(set, "z;\"Z\";inet;1;0.0.0.0/0");
	assert_string_equal(matches(set, "10.0.0.1", buf, sizeof(buf)),
	    "x,y,z");
	/* replacing x keeps its place; its old prefix is gone */
	load(set, "x;\"X2\";inet;1;10.0.0.1/32");
	assert_string_equal(matches(set, "10.0.0.1", buf, sizeof(buf)),
	    "x,y,z");
	assert_string_equal(matches(set, "10.0.0.2", buf, sizeof(buf)),
	    "y,z");
	bl_lookup(set, &a, &m);
	assert_string_equal(m.msg[0], "X2");
	/* clear y: order of the others is kept */
	load(set, "y;");
	assert_string_equal(matches(set, "10.0.0.1", buf, sizeof(buf)),
	    "x,z");
	bl_count(set, &nl, NULL);
	assert_int_equal(nl, 2);
	/* a new tag goes last, even a re-added one */
	load(set, "y;\"Y\";inet;1;10.0.0.0/16");
	assert_string_equal(matches(set, "10.0.0.1", buf, sizeof(buf)),
	    "x,z,y");
	/* a list with a message but no entries also clears */
	load(set, "z;\"Z\";inet;0");
	assert_string_equal(matches(set, "10.0.0.1", buf, sizeof(buf)),
	    "x,y");
	/* clearing an unknown tag is a no-op */
	load(set, "nosuch;");
	bl_count(set, &nl, NULL);
	assert_int_equal(nl, 2);
	bl_set_free(set);
}

/* test_too_many - the 65th list is refused and the set is unchanged */
static void
test_too_many(void **state)
{
	struct bl_set *set = bl_set_new();
	struct bl_list *l;
	char msg[64], err[256], buf[1024];
	int i, nl;

	for (i = 0; i < BL_MAX_LISTS; i++) {
		snprintf(msg, sizeof(msg), "l%d;\"m\";inet;1;10.0.0.0/8", i);
		load(set, msg);
	}
	l = parse(L("extra;\"m\";inet;1;10.0.0.0/8"), err, sizeof(err));
	assert_non_null(l);
	assert_int_equal(bl_set_apply(set, l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too many lists"));
	bl_count(set, &nl, NULL);
	assert_int_equal(nl, BL_MAX_LISTS);
	matches(set, "10.1.1.1", buf, sizeof(buf));
	assert_non_null(strstr(buf, "l0,l1,l2,"));
	assert_non_null(strstr(buf, ",l63"));
	/* replacing an existing tag still works when full */
	load(set, "l0;\"m\";inet;1;11.0.0.0/8");
	assert_string_equal(matches(set, "11.0.0.0", buf, sizeof(buf)), "l0");
	bl_set_free(set);
}

/* test_addr_from_sa - v4, v6 and v4-mapped v6 socket addresses */
static void
test_addr_from_sa(void **state)
{
	struct bl_set *set = bl_set_new();
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;
	struct sockaddr sa;
	struct bl_addr a;
	struct bl_match m;

	load(set, "v;\"m\";inet;1;192.0.2.0/24;inet6;1;2001:db8::/32");
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:192.0.2.9", &s6.sin6_addr);
	assert_int_equal(bl_addr_from_sa((struct sockaddr *)&s6, &a), 0);
	assert_int_equal(a.family, AF_INET);
	assert_memory_equal(a.a, "\xc0\x00\x02\x09", 4);
	assert_int_equal(bl_lookup(set, &a, &m), 1);
	inet_pton(AF_INET6, "2001:db8::9", &s6.sin6_addr);
	assert_int_equal(bl_addr_from_sa((struct sockaddr *)&s6, &a), 0);
	assert_int_equal(a.family, AF_INET6);
	assert_int_equal(bl_lookup(set, &a, &m), 1);
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.3.1", &s4.sin_addr);
	assert_int_equal(bl_addr_from_sa((struct sockaddr *)&s4, &a), 0);
	assert_int_equal(a.family, AF_INET);
	assert_int_equal(bl_lookup(set, &a, &m), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	assert_int_equal(bl_addr_from_sa(&sa, &a), -1);
	a.family = AF_UNIX;
	assert_int_equal(bl_lookup(set, &a, &m), 0);
	bl_set_free(set);
}

/* in_prefix - brute force: is a (16 bytes or 4) inside p/bits */
static int
in_prefix(const uint8_t *a, const uint8_t *p, int bits)
{
	int i;

	for (i = 0; i < bits; i++)
		if (((a[i / 8] ^ p[i / 8]) >> (7 - i % 8)) & 1)
			return 0;
	return 1;
}

/* bump - add one (up 1) or take one (up 0) from a big-endian number */
static void
bump(uint8_t *a, int alen, int up)
{
	int i;

	for (i = alen - 1; i >= 0; i--) {
		a[i] = (uint8_t)(a[i] + (up ? 1 : -1));
		if (a[i] != (up ? 0 : 0xff))
			break;
	}
}

/* edge - an address at an edge of p/bits: the first, the last, one
 * before the first, one after the last, or p as given (host bits set) */
static void
edge(uint8_t *q, const uint8_t *p, int bits, int alen, int kind)
{
	int i;

	memcpy(q, p, (size_t)alen);
	if (kind == 4)
		return;
	for (i = bits; i < alen * 8; i++)
		if (kind == 1 || kind == 3)
			q[i / 8] |= (uint8_t)(0x80 >> (i % 8));
		else
			q[i / 8] &= (uint8_t)~(0x80 >> (i % 8));
	if (kind == 2)
		bump(q, alen, 0);
	if (kind == 3)
		bump(q, alen, 1);
}

/* test_bruteforce - random lists agree with a per-prefix search */
static void
test_bruteforce(void **state)
{
	enum { NL = 5, NP = 60, NQ = 4000 };
	static uint8_t pfx[NL][NP][16];
	static int bits[NL][NP];
	struct bl_set *set = bl_set_new();
	char *msg, ntop[INET6_ADDRSTRLEN], err[256];
	struct bl_addr q;
	struct bl_match m;
	int round, v6, li, i, k, want, alen;
	size_t off;

	srandom(11);
	msg = malloc(16384);
	assert_non_null(msg);
	for (round = 0; round < 6; round++) {
		v6 = round % 2;
		alen = v6 ? 16 : 4;
		for (li = 0; li < NL; li++) {
			off = (size_t)snprintf(msg, 16384, "r%d;\"m\";%s;%d",
			    li, v6 ? "inet6" : "inet", NP);
			for (i = 0; i < NP; i++) {
				/* few distinct top bits, so prefixes overlap */
				for (k = 0; k < alen; k++)
					pfx[li][i][k] = (uint8_t)random();
				pfx[li][i][0] &= 0x81;
				pfx[li][i][1] &= 0x03;
				/* mostly long prefixes, so lists differ */
				bits[li][i] = random() % 8 == 0 ?
				    (int)(random() % (alen * 8 + 1)) :
				    alen * 4 + (int)(random() % (alen * 4 + 1));
				inet_ntop(v6 ? AF_INET6 : AF_INET, pfx[li][i],
				    ntop, sizeof(ntop));
				off += (size_t)snprintf(msg + off, 16384 - off,
				    ";%s/%d", ntop, bits[li][i]);
			}
			struct bl_list *l = parse(msg, off, err, sizeof(err));
			if (l == NULL)
				fail_msg("%s", err);
			assert_int_equal(bl_set_apply(set, l, err,
			    sizeof(err)), 0);
		}
		for (i = 0; i < NQ; i++) {
			memset(&q, 0, sizeof(q));
			q.family = v6 ? AF_INET6 : AF_INET;
			if (i % 2 == 0) {
				li = (int)(random() % NL);
				k = (int)(random() % NP);
				edge(q.a, pfx[li][k], bits[li][k], alen,
				    (int)(random() % 5));
			} else {
				for (k = 0; k < alen; k++)
					q.a[k] = (uint8_t)random();
				q.a[0] &= 0x81;
				q.a[1] &= 0x03;
			}
			if (v6 && q.a[0] == 0 && q.a[1] == 0)
				q.a[0] = 0x80;	/* keep clear of ::ffff:0:0/96 */
			bl_lookup(set, &q, &m);
			for (li = 0, k = 0; li < NL; li++) {
				int j;

				want = 0;
				for (j = 0; j < NP && !want; j++)
					want = in_prefix(q.a, pfx[li][j],
					    bits[li][j]);
				if (!want)
					continue;
				if (k >= m.n || strcmp(m.tag[k], (char[]){
				    'r', (char)('0' + li), 0 }) != 0)
					fail_msg("round %d query %d list %d "
					    "missing", round, i, li);
				k++;
			}
			assert_int_equal(k, m.n);
		}
	}
	free(msg);
	bl_set_free(set);
}

static const struct {
	const char	*tmpl;
	const char	*want;	/* NULL: accepted */
} templates[] = {
	{ "plain text", NULL },
	{ "", NULL },
	{ "%A is listed, 100%% sure\\n\\\"quoted\\\" \\\\", NULL },
	{ "tab\tok", NULL },
	{ "%s", "bad '%' sequence in message (only %A %%) at byte 0" },
	{ "ab%n", "bad '%' sequence in message (only %A %%) at byte 2" },
	{ "ab%", "bad '%' sequence in message (only %A %%) at byte 2" },
	{ "%a", "bad '%' sequence" },
	{ "x\\x", "bad escape in message (only \\\" \\\\ \\n) at byte 1" },
	{ "x\\r", "bad escape in message" },
	{ "end\\", "lone '\\' at end of message at byte 3" },
	{ "raw\nlf", "control character in message at byte 3" },
	{ "raw\rcr", "control character in message at byte 3" },
	{ "del\x7f", "control character in message at byte 3" },
};

/* test_check_template - load-time check of reply templates */
static void
test_check_template(void **state)
{
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
		err[0] = '\0';
		int r = bl_check_template(templates[i].tmpl, err, sizeof(err));

		if (templates[i].want == NULL) {
			if (r != 0)
				fail_msg("row %zu refused: %s", i, err);
			continue;
		}
		assert_int_equal(r, -1);
		if (strstr(err, templates[i].want) == NULL)
			fail_msg("row %zu: got \"%s\", want \"%s\"", i, err,
			    templates[i].want);
	}
	err[0] = '\0';
	assert_int_equal(bl_check_template_at("ab%s", 100, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "at byte 102"));
}

static const struct {
	const char	*tmpl;
	const char	*addr;
	int		 code;
	size_t		 outsz;
	const char	*want;
} expands[] = {
	{ "Go away", "192.0.2.1", 450, 256, "450 Go away\r\n" },
	{ "%A is listed", "192.0.2.1", 550, 256,
	    "550 192.0.2.1 is listed\r\n" },
	{ "line1\\nline2 %A\\n", "2001:db8::1", 450, 256,
	    "450 line1\r\n450 line2 2001:db8::1\r\n" },
	{ "a\\n\\nb", "x", 450, 256, "450 a\r\n450 \r\n450 b\r\n" },
	{ "", "x", 550, 256, "550 \r\n" },
	{ "100%% \\\"spam\\\" \\\\o/", "x", 450, 256,
	    "450 100% \"spam\" \\o/\r\n" },
	/* unchecked templates: other sequences are plain text, never a
	 * format, and raw CR/LF never pass through */
	{ "%s%n%", "x", 450, 256, "450 %s%n%\r\n" },
	{ "cr\rlf\nend", "x", 450, 256, "450 crlf\r\n450 end\r\n" },
	{ "%A", "1.2.3.4\r\n250 ok", 450, 256, "450 1.2.3.4250ok\r\n" },
	{ "%A", NULL, 450, 256, "450 \r\n" },
	/* a bad code becomes 550 */
	{ "x", "x", 250, 256, "550 x\r\n" },
	/* truncation keeps whole, CRLF-ended lines */
	{ "abcdefghij", "x", 450, 10, "450 abc\r\n" },
	{ "abc\\ndef", "x", 450, 12, "450 abc\r\n" },
	{ "abc\\ndef", "x", 450, 13, "450 abc\r\n" },
	{ "abc\\ndef", "x", 450, 17, "450 abc\r\n450 d\r\n" },
	{ "abc", "x", 450, 7, "450 \r\n" },
	{ "abc", "x", 450, 6, "" },
	{ "abc", "x", 450, 1, "" },
};

/* test_expand - SMTP reply lines from templates, including truncation */
static void
test_expand(void **state)
{
	char out[300];
	size_t i, n;

	for (i = 0; i < sizeof(expands) / sizeof(expands[0]); i++) {
		memset(out, 'Z', sizeof(out));
		n = bl_expand(expands[i].tmpl, expands[i].addr,
		    expands[i].code, out, expands[i].outsz);
		if (strcmp(out, expands[i].want) != 0)
			fail_msg("row %zu: got \"%s\"", i, out);
		assert_int_equal(n, strlen(expands[i].want));
		assert_true(n < expands[i].outsz);
		/* nothing written past outsz */
		assert_int_equal(out[expands[i].outsz], 'Z');
	}
	assert_int_equal(bl_expand("x", "a", 450, out, 0), 0);
}

/* test_expand_random - random templates and sizes: only whole lines */
static void
test_expand_random(void **state)
{
	static const char alpha[] = "ab %A%%\\n\\\"\r\n\t\x01\x7f%s";
	char tmpl[64], out[128], *p, *nl;
	size_t len, k, outsz;
	int i;

	srandom(3);
	for (i = 0; i < 20000; i++) {
		len = (size_t)(random() % 40);
		for (k = 0; k < len; k++)
			tmpl[k] = alpha[random() % (sizeof(alpha) - 1)];
		tmpl[len] = '\0';
		outsz = 1 + (size_t)(random() % sizeof(out));
		bl_expand(tmpl, "10.0.0.1\r\n", i % 2 ? 450 : 550, out, outsz);
		assert_true(strlen(out) < outsz);
		for (p = out; *p != '\0'; p = nl + 2) {
			assert_memory_equal(p, i % 2 ? "450 " : "550 ", 4);
			nl = strstr(p, "\r\n");
			assert_non_null(nl);
			/* no CR or LF inside the line */
			assert_true(strcspn(p, "\r\n") == (size_t)(nl - p));
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_message),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_prefixes),
		cmocka_unit_test(test_parse_mutations),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_hostbits),
		cmocka_unit_test(test_replace_clear),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_addr_from_sa),
		cmocka_unit_test(test_bruteforce),
		cmocka_unit_test(test_check_template),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_expand_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
