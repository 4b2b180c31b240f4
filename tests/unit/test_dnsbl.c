/*
 * test_dnsbl.c - DNSBL zone specs (every valid form, every error with its
 * place), the zone file reader, query names for IPv4 and IPv6, the answer
 * cache (TTL expiry, bounds, the memory limit), HELO syntax, and the
 * request life cycle against an in-process evdns server: answers, code
 * filtering, timeouts and cancellation (run under ASan: a cancelled
 * request must never call back into freed memory).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "spamd/blacklist.h"
#include "spamd/dnsbl.h"

/* --- zone specs ------------------------------------------------------- */

struct spec_case {
	const char	*spec;
	const char	*zone;		/* NULL: must fail */
	const char	*codes;		/* wanted codes joined by ',' */
	const char	*msg;		/* wanted template */
	const char	*err;		/* substring of the error */
};

static const struct spec_case spec_cases[] = {
	/* valid forms */
	{ "bl.spamcop.net", "bl.spamcop.net", "",
	  "Blocked: %A is listed at bl.spamcop.net", NULL },
	{ "bl.spamcop.net;Blocked, see http://spamcop.net/w3m?action="
	  "checkblock&ip=%A", "bl.spamcop.net", "",
	  "Blocked, see http://spamcop.net/w3m?action=checkblock&ip=%A",
	  NULL },
	{ "zen.spamhaus.org=127.0.0.2,127.0.0.3;Listed at Spamhaus: %A",
	  "zen.spamhaus.org", "127.0.0.2,127.0.0.3",
	  "Listed at Spamhaus: %A", NULL },
	{ "zen.spamhaus.org=127.0.0.4", "zen.spamhaus.org", "127.0.0.4",
	  "Blocked: %A is listed at zen.spamhaus.org", NULL },
	{ "Zen.SpamHaus.ORG.;x", "zen.spamhaus.org", "", "x", NULL },
	{ "  dnsbl.test ;  padded  \r\n", "dnsbl.test", "", "  padded",
	  NULL },
	{ "old.test;Listed: %d.%d.%d.%d", "old.test", "", "Listed: %A",
	  NULL },
	{ "old.test;%d.%d.%d.%d and %A", "old.test", "", "%A and %A", NULL },
	{ "pct.test;100%% sure", "pct.test", "", "100%% sure", NULL },
	{ "nl.test;line one\\nline two", "nl.test", "",
	  "line one\\nline two", NULL },
	{ "q.test;say \\\"hi\\\" \\\\", "q.test", "", "say \\\"hi\\\" \\\\",
	  NULL },
	{ "semi.test;a;b=c", "semi.test", "", "a;b=c", NULL },
	{ "empty.test;", "empty.test", "",
	  "Blocked: %A is listed at empty.test", NULL },
	{ "u_s.test=255.255.255.255", "u_s.test", "255.255.255.255", NULL,
	  NULL },
	{ "many.test=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,"
	  "127.0.0.6,127.0.0.7,127.0.0.8,127.0.0.9,127.0.0.10,127.0.0.11,"
	  "127.0.0.12,127.0.0.13,127.0.0.14,127.0.0.15,127.0.0.16",
	  "many.test", "127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,"
	  "127.0.0.6,127.0.0.7,127.0.0.8,127.0.0.9,127.0.0.10,127.0.0.11,"
	  "127.0.0.12,127.0.0.13,127.0.0.14,127.0.0.15,127.0.0.16", NULL,
	  NULL },

	/* errors in the message */
	{ "z.test;50% off", NULL, NULL, NULL,
	  "f:3: bad '%' sequence in message (only %A, %d.%d.%d.%d, %%) "
	  "at byte 9" },
	{ "z.test;%s", NULL, NULL, NULL, "bad '%' sequence" },
	{ "z.test;%n", NULL, NULL, NULL, "at byte 7" },
	{ "z.test;trailing %", NULL, NULL, NULL,
	  "lone '%' at end of message at byte 16" },
	{ "z.test;%d.%d", NULL, NULL, NULL, "bad '%' sequence" },
	{ "z.test;%d.%d.%d.", NULL, NULL, NULL, "bad '%' sequence" },
	{ "z.test;%d", NULL, NULL, NULL, "bad '%' sequence" },
	{ "z.test;%a", NULL, NULL, NULL, "bad '%' sequence" },
	{ "z.test;bad \\t", NULL, NULL, NULL, "bad escape" },
	{ "z.test;end \\", NULL, NULL, NULL, "lone '\\'" },
	{ "z.test;ctl \001", NULL, NULL, NULL,
	  "control character in message at byte 11" },
	{ "z.test;cr \r in the middle", NULL, NULL, NULL,
	  "control character" },

	/* errors in the zone */
	{ "", NULL, NULL, NULL, "empty zone name at byte 0" },
	{ "   ", NULL, NULL, NULL, "empty zone name" },
	{ ";msg", NULL, NULL, NULL, "empty zone name" },
	{ "=127.0.0.2", NULL, NULL, NULL, "empty zone name" },
	{ ".", NULL, NULL, NULL, "empty zone name" },
	{ "a..b", NULL, NULL, NULL, "empty label in zone name at byte 2" },
	{ ".a.b", NULL, NULL, NULL, "empty label" },
	{ "zen spamhaus.org", NULL, NULL, NULL,
	  "bad character in zone name at byte 3" },
	{ "z%A.test", NULL, NULL, NULL, "bad character in zone name" },
	{ "z\\.test", NULL, NULL, NULL, "bad character in zone name" },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.t",
	  NULL, NULL, NULL, "label longer than 63 bytes" },

	/* errors in the codes */
	{ "z.test=", NULL, NULL, NULL, "empty code at byte 7" },
	{ "z.test=;msg", NULL, NULL, NULL, "empty code" },
	{ "z.test=127.0.0.2,", NULL, NULL, NULL, "empty code at byte 17" },
	{ "z.test=127.0.0.2,,127.0.0.3", NULL, NULL, NULL, "empty code" },
	{ "z.test=127.0.0", NULL, NULL, NULL,
	  "bad code address (want a.b.c.d) at byte 7" },
	{ "z.test=127.0.0.256", NULL, NULL, NULL, "bad code address" },
	{ "z.test=127.0.0.02", NULL, NULL, NULL, "bad code address" },
	{ "z.test=127.0.0.2.1", NULL, NULL, NULL, "bad code address" },
	{ "z.test=127.0.0.x", NULL, NULL, NULL, "bad code address" },
	{ "z.test=::1", NULL, NULL, NULL, "bad code address" },
	{ "z.test=127.0.0.2 ;m", NULL, NULL, NULL, "bad code address" },
	{ "z.test=127.0.0.2,127.0.0.3,bogus", NULL, NULL, NULL,
	  "bad code address (want a.b.c.d) at byte 27" },
	{ "many.test=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,"
	  "127.0.0.6,127.0.0.7,127.0.0.8,127.0.0.9,127.0.0.10,127.0.0.11,"
	  "127.0.0.12,127.0.0.13,127.0.0.14,127.0.0.15,127.0.0.16,127.0.0.17",
	  NULL, NULL, NULL, "too many codes (at most 16)" },
};

/* codes_text - a spec's codes joined by ',' */
static const char *
codes_text(const struct dnsbl_spec *s, char *buf, size_t bufsz)
{
	struct in_addr ia;
	char a[INET_ADDRSTRLEN];
	int i;

	buf[0] = '\0';
	for (i = 0; i < s->ncodes; i++) {
		ia.s_addr = htonl(s->codes[i]);
		inet_ntop(AF_INET, &ia, a, sizeof(a));
		if (i > 0)
			strlcat(buf, ",", bufsz);
		strlcat(buf, a, bufsz);
	}
	return buf;
}

/* test_spec_table - every valid form and every error of a zone spec */
static void
test_spec_table(void **state)
{
	struct dnsbl_spec s;
	char err[512], codes[512];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(spec_cases) / sizeof(spec_cases[0]); i++) {
		const struct spec_case *c = &spec_cases[i];

		err[0] = '\0';
		rc = dnsbl_spec_parse(c->spec, "f", 3, &s, err, sizeof(err));
		if (c->zone == NULL) {
			if (rc != -1)
				fail_msg("case %zu '%s': parsed, want error %s",
				    i, c->spec, c->err);
			if (strstr(err, c->err) == NULL)
				fail_msg("case %zu '%s': error '%s', want '%s'",
				    i, c->spec, err, c->err);
			if (strncmp(err, "f:3: ", 5) != 0)
				fail_msg("case %zu: error '%s' without f:3:",
				    i, err);
			assert_null(s.msg);
			continue;
		}
		if (rc != 0)
			fail_msg("case %zu '%s': %s", i, c->spec, err);
		assert_string_equal(s.zone, c->zone);
		assert_string_equal(codes_text(&s, codes, sizeof(codes)),
		    c->codes);
		if (c->msg != NULL)
			assert_string_equal(s.msg, c->msg);
		/* whatever we accept, the expander's check accepts */
		assert_int_equal(bl_check_template(s.msg, err, sizeof(err)), 0);
		dnsbl_spec_clear(&s);
	}
}

/* test_spec_where - errors name a file:line, a flag, or nothing */
static void
test_spec_where(void **state)
{
	struct dnsbl_spec s;
	char err[256];

	assert_int_equal(dnsbl_spec_parse("z.t;%s", "--dnsbl", 0, &s, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "--dnsbl: bad '%' sequence in message "
	    "(only %A, %d.%d.%d.%d, %%) at byte 4");
	assert_int_equal(dnsbl_spec_parse("", NULL, 0, &s, err, sizeof(err)),
	    -1);
	assert_string_equal(err, "empty zone name at byte 0");
	/* a tiny error buffer is cut, never overrun */
	assert_int_equal(dnsbl_spec_parse("", "file", 9, &s, err, 4), -1);
	assert_string_equal(err, "fil");
}

/* test_spec_long - over-long lines, messages and zone names */
static void
test_spec_long(void **state)
{
	struct dnsbl_spec s;
	char err[256], *big;
	size_t n;

	big = malloc(DNSBL_LINE_MAX + 16);
	assert_non_null(big);

	/* a whole line over the limit */
	memset(big, 'a', DNSBL_LINE_MAX + 10);
	big[DNSBL_LINE_MAX + 10] = '\0';
	assert_int_equal(dnsbl_spec_parse(big, "f", 1, &s, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "f:1: line too long"));

	/* a message past BL_MSG_MAX in a line that fits */
	memcpy(big, "z.test;", 7);
	memset(big + 7, 'm', BL_MSG_MAX + 10);
	big[7 + BL_MSG_MAX + 10] = '\0';
	assert_int_equal(dnsbl_spec_parse(big, "f", 2, &s, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "f:2: message too long at byte"));

	/* the longest message that fits, and one byte more */
	memset(big + 7, 'm', BL_MSG_MAX - 2);
	big[7 + BL_MSG_MAX - 2] = '\0';
	assert_int_equal(dnsbl_spec_parse(big, "f", 3, &s, err, sizeof(err)),
	    0);
	assert_int_equal(strlen(s.msg), BL_MSG_MAX - 2);
	dnsbl_spec_clear(&s);
	/* "%d.%d.%d.%d" shrinks to "%A": the old form of a long message */
	memset(big + 7, 'm', BL_MSG_MAX - 4);
	memcpy(big + 7 + BL_MSG_MAX - 4, "%d.%d.%d.%d", 12);
	assert_int_equal(dnsbl_spec_parse(big, "f", 4, &s, err, sizeof(err)),
	    0);
	assert_int_equal(strlen(s.msg), BL_MSG_MAX - 2);
	dnsbl_spec_clear(&s);

	/* zone names: 189 bytes fit (a reversed IPv6 name still fits 253) */
	for (n = 0; n < 189; n++)
		big[n] = (n % 50 == 49) ? '.' : 'z';
	big[189] = '\0';
	assert_int_equal(dnsbl_spec_parse(big, "f", 5, &s, err, sizeof(err)),
	    0);
	dnsbl_spec_clear(&s);
	big[189] = 'z';
	big[190] = '\0';
	assert_int_equal(dnsbl_spec_parse(big, "f", 6, &s, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "zone name too long"));
	free(big);
}

/* test_translate - the message translator on its own */
static void
test_translate(void **state)
{
	static const struct {
		const char *in;
		const char *out;	/* NULL: error */
	} t[] = {
		{ "", "" },
		{ "%A", "%A" },
		{ "%d.%d.%d.%d", "%A" },
		{ "%d.%d.%d.%d%d.%d.%d.%d", "%A%A" },
		{ "%%d", "%%d" },			/* %% first */
		{ "%%d.%d.%d.%d", NULL },
		{ "%%%A", "%%%A" },
		{ "\\n", "\\n" },
		{ "tab\there", "tab\there" },
		{ "%", NULL },
		{ "%%%", NULL },
		{ "%d.%d.%d", NULL },
		{ "%x", NULL },
		{ "%1$s", NULL },
		{ "\n", NULL },
		{ "\x7f", NULL },
	};
	char out[BL_MSG_MAX], err[256];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		rc = dnsbl_translate_msg(t[i].in, strlen(t[i].in), out,
		    sizeof(out), err, sizeof(err));
		if (t[i].out == NULL) {
			if (rc != -1)
				fail_msg("case %zu '%s': accepted", i, t[i].in);
			continue;
		}
		if (rc != 0)
			fail_msg("case %zu '%s': %s", i, t[i].in, err);
		assert_string_equal(out, t[i].out);
	}
	/* a too-small output buffer is an error, not an overrun */
	assert_int_equal(dnsbl_translate_msg("abcdef", 6, out, 4, err,
	    sizeof(err)), -1);
	/* and the expander gives the client's address for the old form */
	assert_int_equal(dnsbl_translate_msg("Listed: %d.%d.%d.%d", 19, out,
	    sizeof(out), err, sizeof(err)), 0);
	{
		char reply[256];

		bl_expand(out, "192.0.2.7", 550, reply, sizeof(reply));
		assert_string_equal(reply, "550 Listed: 192.0.2.7\r\n");
	}
}

/* write_file - a temporary file holding text; returns its path */
static char *
write_file(const char *text)
{
	char *path = strdup("/tmp/test_dnsbl.XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

/* test_conf_file - the zone file: comments, blanks, errors by line */
static void
test_conf_file(void **state)
{
	static const struct {
		const char *text;
		int n;			/* zones, or -1 for an error */
		const char *err;	/* after "path:" */
	} t[] = {
		{ "", 0, NULL },
		{ "# only a comment\n\n   \n\t# indented\n", 0, NULL },
		{ "a.test\nb.test=127.0.0.2;B %A\n", 2, NULL },
		{ "a.test\r\n# dos\r\n\r\nb.test;m\r\n", 2, NULL },
		{ "a.test", 1, NULL },			/* no final newline */
		{ "a.test\n\nb.test;%s\n", -1, "3: bad '%' sequence" },
		{ "a.test\nb.test\nA.TEST.\n", -1,
		  "3: zone a.test listed twice (first at line 1)" },
		{ "a.test\nx y\n", -1, "2: bad character in zone name" },
		{ "a.test\nz\0.test\n", -1, "2: NUL byte in line" },
	};
	struct dnsbl_spec specs[DNSBL_MAX_ZONES];
	char err[512], *path, want[600];
	size_t i;
	int n, rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (i == 8) {
			/* a NUL inside: write it byte-exact */
			static const char nul[] = "a.test\nz\0.test\n";
			int fd;

			path = strdup("/tmp/test_dnsbl.XXXXXX");
			fd = mkstemp(path);
			assert_int_equal(write(fd, nul, sizeof(nul) - 1),
			    (ssize_t)sizeof(nul) - 1);
			close(fd);
		} else
			path = write_file(t[i].text);
		rc = dnsbl_conf_read(path, specs, DNSBL_MAX_ZONES, &n, err,
		    sizeof(err));
		if (t[i].n >= 0) {
			if (rc != 0)
				fail_msg("case %zu: %s", i, err);
			assert_int_equal(n, t[i].n);
		} else {
			assert_int_equal(rc, -1);
			assert_int_equal(n, 0);
			snprintf(want, sizeof(want), "%s:%s", path, t[i].err);
			if (strstr(err, want) != err)
				fail_msg("case %zu: error '%s', want '%s'", i,
				    err, want);
		}
		for (rc = 0; rc < n; rc++)
			dnsbl_spec_clear(&specs[rc]);
		unlink(path);
		free(path);
	}

	/* too many zones */
	{
		char text[DNSBL_MAX_ZONES * 16 + 64], *p = text;

		for (i = 0; i <= DNSBL_MAX_ZONES; i++)
			p += sprintf(p, "z%zu.test\n", i);
		path = write_file(text);
		assert_int_equal(dnsbl_conf_read(path, specs, DNSBL_MAX_ZONES,
		    &n, err, sizeof(err)), -1);
		assert_non_null(strstr(err, ":33: too many zones"));
		unlink(path);
		free(path);
	}
	/* a missing file */
	assert_int_equal(dnsbl_conf_read("/nonexistent/zones", specs,
	    DNSBL_MAX_ZONES, &n, err, sizeof(err)), -1);
	assert_string_equal(err,
	    "/nonexistent/zones: No such file or directory");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_table),
		cmocka_unit_test(test_spec_where),
		cmocka_unit_test(test_spec_long),
		cmocka_unit_test(test_translate),
		cmocka_unit_test(test_conf_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
