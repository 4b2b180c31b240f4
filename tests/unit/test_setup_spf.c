/*
 * test_setup_spf.c - spamd-setup --spf-walk's SPF record parser: a table
 * of records and the terms (or the error) each must give; the v=spf1
 * test; and the walker's argument checks that need no DNS (--dns-server
 * syntax, a bad domain name asks nothing). The walk itself against a real
 * DNS server is tests/integration/spamd_setup_spf.py.
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

#include "spamd/setup/setup_spf.h"

/* render - the terms of a record as one line: "kind qual what | ..." */
static void
render(const struct spf_record *r, char *out, size_t outsz)
{
	static const char *kinds[] = { "ip4", "ip6", "a", "mx", "include",
	    "redirect", "ignored", "macro" };
	char addr[INET6_ADDRSTRLEN];
	size_t i, n = 0;

	out[0] = '\0';
	for (i = 0; i < r->n && n < outsz; i++) {
		const struct spf_term *t = &r->t[i];
		char what[400];

		switch (t->kind) {
		case SPF_T_IP4:
			inet_ntop(AF_INET, t->addr, addr, sizeof(addr));
			snprintf(what, sizeof(what), "%s/%d", addr, t->len4);
			break;
		case SPF_T_IP6:
			inet_ntop(AF_INET6, t->addr, addr, sizeof(addr));
			snprintf(what, sizeof(what), "%s/%d", addr, t->len6);
			break;
		case SPF_T_A:
		case SPF_T_MX:
			snprintf(what, sizeof(what), "%s/%d//%d",
			    t->domain[0] != '\0' ? t->domain : ".", t->len4,
			    t->len6);
			break;
		case SPF_T_INCLUDE:
		case SPF_T_REDIRECT:
			snprintf(what, sizeof(what), "%s", t->domain);
			break;
		case SPF_T_IGNORED:
			snprintf(what, sizeof(what), "%s", t->is_all ? "all" :
			    t->text);
			break;
		case SPF_T_MACRO:
			snprintf(what, sizeof(what), "%s", t->text);
			break;
		}
		n += (size_t)snprintf(out + n, outsz - n, "%s%s %c %s",
		    i > 0 ? " | " : "", kinds[t->kind], t->qual, what);
	}
}

/* One row: a record and the terms it gives, or "ERR:" and a piece of
 * the error message. */
struct spf_case {
	const char	*rec;
	const char	*want;
};

static const struct spf_case cases[] = {
	/* the v=spf1 tag */
	{ "v=spf1", "" },
	{ "v=spf1   ", "" },
	{ "V=SPF1 IP4:192.0.2.1", "ip4 + 192.0.2.1/32" },
	{ "v=spf10 ip4:192.0.2.1", "ERR:not an SPF record" },
	{ "spf1 ip4:192.0.2.1", "ERR:not an SPF record" },
	{ "", "ERR:not an SPF record" },
	/* ip4 and ip6, with and without a length; host bits kept here,
	 * masked by the walker */
	{ "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.7",
	  "ip4 + 192.0.2.0/24 | ip4 + 198.51.100.7/32" },
	{ "v=spf1 ip4:192.0.2.9/24", "ip4 + 192.0.2.9/24" },
	{ "v=spf1 ip6:2001:db8::/32 ip6:2001:db8::1",
	  "ip6 + 2001:db8::/32 | ip6 + 2001:db8::1/128" },
	{ "v=spf1 ip4:192.0.2.1/32 ip6:::1/128",
	  "ip4 + 192.0.2.1/32 | ip6 + ::1/128" },
	{ "v=spf1 ip4:300.1.1.1", "ERR:term 'ip4:300.1.1.1' at byte 7: bad "
	  "IPv4 address" },
	{ "v=spf1 ip4:2001:db8::1", "ERR:bad IPv4 address" },
	{ "v=spf1 ip6:192.0.2.1", "ERR:bad IPv6 address" },
	{ "v=spf1 ip4:192.0.2.0/33", "ERR:bad prefix length" },
	{ "v=spf1 ip4:192.0.2.0/0", "ERR:/0 refused" },
	{ "v=spf1 ip6:2001:db8::/0", "ERR:/0 refused" },
	{ "v=spf1 ip6:2001:db8::/129", "ERR:bad prefix length" },
	{ "v=spf1 ip4:192.0.2.0/024", "ERR:bad prefix length" },
	{ "v=spf1 ip4:192.0.2.0/", "ERR:bad prefix length" },
	{ "v=spf1 ip4", "ERR:needs :address" },
	{ "v=spf1 ip4:", "ERR:bad address" },
	/* a and mx: own domain, other domain, lengths of both families */
	{ "v=spf1 a mx", "a + ./32//128 | mx + ./32//128" },
	{ "v=spf1 a/24 mx/28", "a + ./24//128 | mx + ./28//128" },
	{ "v=spf1 a//64 mx:Mail.Example.COM//48",
	  "a + ./32//64 | mx + mail.example.com/32//48" },
	{ "v=spf1 a:host.example.com a:host.example.com/24//64",
	  "a + host.example.com/32//128 | a + host.example.com/24//64" },
	{ "v=spf1 mx:example.com. a:_spf.example.com",
	  "mx + example.com/32//128 | a + _spf.example.com/32//128" },
	{ "v=spf1 a/33", "ERR:bad prefix length" },
	{ "v=spf1 a//129", "ERR:bad prefix length" },
	{ "v=spf1 a/24/", "ERR:bad prefix length" },
	{ "v=spf1 a/24//", "ERR:bad prefix length" },
	{ "v=spf1 a:", "ERR:bad domain" },
	{ "v=spf1 a:foo..example.com", "ERR:bad domain 'foo..example.com'" },
	{ "v=spf1 a:exa$mple.com", "ERR:bad domain" },
	{ "v=spf1 a:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaa.com", "ERR:bad domain" },
	/* include and redirect */
	{ "v=spf1 include:_spf.google.com ~all",
	  "include + _spf.google.com | ignored ~ all" },
	{ "v=spf1 include", "ERR:needs :domain" },
	{ "v=spf1 include:", "ERR:bad domain" },
	{ "v=spf1 include:example.com/24", "ERR:bad domain" },
	{ "v=spf1 redirect=_spf.example.com",
	  "redirect + _spf.example.com" },
	{ "v=spf1 REDIRECT=Example.com", "redirect + example.com" },
	{ "v=spf1 redirect=a.example redirect=b.example",
	  "ERR:second redirect=" },
	{ "v=spf1 redirect=", "ERR:bad redirect domain" },
	/* qualifiers are kept (the walker uses '+' terms only) */
	{ "v=spf1 -ip4:10.0.0.0/8 ~a ?mx +include:x.example -all",
	  "ip4 - 10.0.0.0/8 | a ~ ./32//128 | mx ? ./32//128 | "
	  "include + x.example | ignored - all" },
	/* ignored: ptr, exists, all, exp= and unknown modifiers */
	{ "v=spf1 ptr ptr:example.com exists:%{i}.ex.example exp=explain.ex "
	  "foo=bar all",
	  "ignored + ptr | ignored + ptr:example.com | "
	  "ignored + exists:%{i}.ex.example | ignored + exp=explain.ex | "
	  "ignored + foo=bar | ignored + all" },
	{ "v=spf1 exists", "ERR:needs :domain" },
	{ "v=spf1 ptr/24", "ERR:junk after the mechanism" },
	{ "v=spf1 all/24", "ERR:junk after all" },
	{ "v=spf1 all:example.com", "ERR:junk after all" },
	/* macros: the term is kept as a macro, for the walker to skip */
	{ "v=spf1 a:%{d}.example.com include:%{i}._spf.example "
	  "redirect=%{d}.r.example mx:%{d}/24",
	  "macro + a:%{d}.example.com | macro + include:%{i}._spf.example | "
	  "macro + redirect=%{d}.r.example | macro + mx:%{d}/24" },
	/* unknown mechanisms and bad bytes */
	{ "v=spf1 ip5:1.2.3.4", "ERR:term 'ip5:1.2.3.4' at byte 7: unknown "
	  "mechanism" },
	{ "v=spf1 +", "ERR:unknown mechanism" },
	{ "v=spf1 ip4:192.0.2.1 include:a.example\tall",
	  "ERR:byte 0x09 at byte 38" },
	{ "v=spf1 a:ex\xc3\xa4mple.com", "ERR:byte 0xc3 at byte 11" },
	{ "v=spf1 =foo", "ERR:unknown mechanism" },
};

/* test_parse_table - every row of the table */
static void
test_parse_table(void **state)
{
	struct spf_record r;
	char err[512], got[4096];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct spf_case *c = &cases[i];
		int rc;

		err[0] = '\0';
		rc = setup_spf_parse(c->rec, strlen(c->rec), &r, err,
		    sizeof(err));
		if (strncmp(c->want, "ERR:", 4) == 0) {
			if (rc != -1 || strstr(err, c->want + 4) == NULL)
				fail_msg("row %zu '%s': want error '%s', got "
				    "rc %d err '%s'", i, c->rec, c->want + 4,
				    rc, err);
			assert_null(r.t);
			continue;
		}
		if (rc != 0)
			fail_msg("row %zu '%s': error '%s'", i, c->rec, err);
		render(&r, got, sizeof(got));
		if (strcmp(got, c->want) != 0)
			fail_msg("row %zu '%s':\n got  '%s'\n want '%s'", i,
			    c->rec, got, c->want);
		setup_spf_record_free(&r);
	}
}

/* test_is_spf - which TXT texts are SPF records */
static void
test_is_spf(void **state)
{
	assert_true(setup_spf_is_spf("v=spf1", 6));
	assert_true(setup_spf_is_spf("v=spf1 -all", 11));
	assert_true(setup_spf_is_spf("V=Spf1 a", 8));
	assert_false(setup_spf_is_spf("v=spf1", 5));
	assert_false(setup_spf_is_spf("v=spf10", 7));
	assert_false(setup_spf_is_spf("v=spf1\ta", 8));
	assert_false(setup_spf_is_spf("google-site-verification=x", 26));
	assert_false(setup_spf_is_spf("", 0));
}

/* test_record_size - SPF_RECORD_MAX bytes parse, one more does not */
static void
test_record_size(void **state)
{
	struct spf_record r;
	char *buf, err[256];
	size_t n;

	buf = malloc(SPF_RECORD_MAX + 2);
	assert_non_null(buf);
	memcpy(buf, "v=spf1", 6);
	for (n = 6; n + 16 <= SPF_RECORD_MAX; n += 16)
		memcpy(buf + n, " ip4:192.0.2.123", 16);
	while (n < SPF_RECORD_MAX)
		buf[n++] = ' ';
	assert_int_equal(setup_spf_parse(buf, n, &r, err, sizeof(err)), 0);
	assert_int_equal(r.n, (SPF_RECORD_MAX - 6) / 16);
	setup_spf_record_free(&r);
	buf[n++] = ' ';
	assert_int_equal(setup_spf_parse(buf, n, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "record of 4097 bytes (at most 4096)"));
	free(buf);
}

/* test_long_term - a term longer than the kept text is cut, not overrun */
static void
test_long_term(void **state)
{
	struct spf_record r;
	char rec[600], name[248], err[256];
	size_t n;

	n = (size_t)snprintf(rec, sizeof(rec), "v=spf1 include:");
	/* four labels of 60 letters and "com": a valid 247-byte domain */
	for (int i = 0; i < 4; i++) {
		memset(rec + n, 'a' + i, 60);
		n += 60;
		rec[n++] = '.';
	}
	memcpy(rec + n, "com", 4);
	n += 3;
	assert_int_equal(setup_spf_parse(rec, n, &r, err, sizeof(err)), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(strlen(r.t[0].domain), 247);
	assert_int_equal(strlen(r.t[0].text), SPF_TERM_TEXT - 1);
	setup_spf_record_free(&r);
	/* "xyzab." in front: 253 bytes, the most a name may have */
	memcpy(name, rec + 15, sizeof(name));
	n = (size_t)snprintf(rec, sizeof(rec), "v=spf1 include:xyzab.%s",
	    name);
	assert_int_equal(setup_spf_parse(rec, n, &r, err, sizeof(err)), 0);
	assert_int_equal(strlen(r.t[0].domain), 253);
	setup_spf_record_free(&r);
	/* one byte more is too long */
	n = (size_t)snprintf(rec, sizeof(rec), "v=spf1 include:xxyzab.%s",
	    name);
	assert_int_equal(setup_spf_parse(rec, n, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad domain"));
}

/* test_open_args - --dns-server syntax; a bad domain asks no question */
static void
test_open_args(void **state)
{
	static const char *bad[] = { "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
	    "127.0.0.1:65536", "localhost:53", "127.0.0.1:53x", ":53",
	    "[::1]:53" };
	struct setup_spf_opt o = { 0 };
	struct setup_addrs a = { 0 };
	struct setup_spf *s;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.server = bad[i];
		s = setup_spf_open(&o, err, sizeof(err));
		if (s != NULL)
			fail_msg("--dns-server '%s' accepted", bad[i]);
		assert_non_null(strstr(err, "want IPV4ADDRESS:PORT"));
	}
	o.server = "127.0.0.1:47499";
	s = setup_spf_open(&o, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(setup_spf_walk(s, "bad..name", &a, err, sizeof(err)),
	    -1);
	assert_string_equal(err, "not a domain name");
	assert_int_equal(setup_spf_walk(s, "", &a, err, sizeof(err)), -1);
	assert_int_equal(setup_spf_queries(s), 0);
	assert_int_equal(a.n4 + a.n6, 0);
	setup_spf_close(s);
	setup_addrs_free(&a);
}

/* main - run the tests */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_is_spf),
		cmocka_unit_test(test_record_size),
		cmocka_unit_test(test_long_term),
		cmocka_unit_test(test_open_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
