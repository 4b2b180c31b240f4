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
#include <strings.h>

#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/event.h>
#include <event2/util.h>

#include "spamd/common/blacklist.h"
#include "spamd/common/dnsbl.h"

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
	/* a line without end, and a file of comments without end, are
	 * errors naming the line, not reads that grow without bound */
	{
		static const struct {
			size_t linelen, lines;
			const char *err;
		} big[] = {
			{ DNSBL_LINE_MAX * 4, 1,
			  ":1: line too long (more than 8193 bytes)" },
			{ 1000, 1100, ":1049: file larger than 1048576 bytes" },
		};
		size_t k, j;
		char *text;

		for (k = 0; k < sizeof(big) / sizeof(big[0]); k++) {
			text = malloc(big[k].linelen * big[k].lines + 1);
			assert_non_null(text);
			for (j = 0; j < big[k].lines; j++) {
				memset(text + j * big[k].linelen, '#',
				    big[k].linelen);
				text[(j + 1) * big[k].linelen - 1] = '\n';
			}
			text[big[k].linelen * big[k].lines] = '\0';
			if (big[k].lines == 1)	/* no newline at all */
				text[big[k].linelen - 1] = 'x';
			path = write_file(text);
			free(text);
			assert_int_equal(dnsbl_conf_read(path, specs,
			    DNSBL_MAX_ZONES, &n, err, sizeof(err)), -1);
			assert_int_equal(n, 0);
			if (strstr(err, big[k].err) == NULL)
				fail_msg("big %zu: error '%s', want '%s'", k,
				    err, big[k].err);
			unlink(path);
			free(path);
		}
	}
	/* text in memory: exact-size copies, no NUL after the last line */
	for (i = 0; i < sizeof(t) / sizeof(t[0]) - 1; i++) {
		size_t len = strlen(t[i].text);
		char *copy = malloc(len + 1);

		memcpy(copy, t[i].text, len);
		rc = dnsbl_conf_read_text("mem", copy, len, specs,
		    DNSBL_MAX_ZONES, &n, err, sizeof(err));
		assert_int_equal(rc, t[i].n >= 0 ? 0 : -1);
		if (t[i].n >= 0)
			assert_int_equal(n, t[i].n);
		else
			assert_true(strncmp(err, "mem:", 4) == 0);
		for (rc = 0; rc < n; rc++)
			dnsbl_spec_clear(&specs[rc]);
		free(copy);
	}
	/* a missing file */
	assert_int_equal(dnsbl_conf_read("/nonexistent/zones", specs,
	    DNSBL_MAX_ZONES, &n, err, sizeof(err)), -1);
	assert_string_equal(err,
	    "/nonexistent/zones: No such file or directory");
}

/* --- query names ------------------------------------------------------ */

/* sa_of - a socket address from text (IPv4 or IPv6) */
static struct sockaddr_storage
sa_of(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		fail_msg("bad test address %s", text);
	return ss;
}

/* test_qname - reversed octets and nibbles, PTR names, limits */
static void
test_qname(void **state)
{
	static const struct {
		const char *addr, *zone, *want;	/* want NULL: error */
	} t[] = {
		{ "192.0.2.1", "zen.spamhaus.org", "1.2.0.192.zen.spamhaus.org" },
		{ "127.0.0.2", "bl.test", "2.0.0.127.bl.test" },
		{ "10.20.30.40", NULL, "40.30.20.10" },
		{ "::ffff:192.0.2.1", "z.test", "1.2.0.192.z.test" },
		{ "2001:db8::1", "z.test",
		  "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0."
		  "1.0.0.2.z.test" },
		{ "::1", "",
		  "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
		  "0.0.0.0" },
		{ "fe80::abcd:ef01", "x.y",
		  "1.0.f.e.d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
		  "0.8.e.f.x.y" },
	};
	struct sockaddr_storage ss;
	char out[DNSBL_NAME_MAX], zone[200];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		ss = sa_of(t[i].addr);
		assert_int_equal(dnsbl_qname((struct sockaddr *)&ss, t[i].zone,
		    out, sizeof(out)), 0);
		assert_string_equal(out, t[i].want);
	}
	ss = sa_of("192.0.2.1");
	assert_int_equal(dnsbl_ptrname((struct sockaddr *)&ss, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "1.2.0.192.in-addr.arpa");
	ss = sa_of("2001:db8::1");
	assert_int_equal(dnsbl_ptrname((struct sockaddr *)&ss, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	/* the longest zone the parser allows still fits an IPv6 name */
	memset(zone, 'z', 189);
	zone[189] = '\0';
	zone[60] = zone[120] = zone[180] = '.';
	assert_int_equal(dnsbl_qname((struct sockaddr *)&ss, zone, out,
	    sizeof(out)), 0);
	assert_int_equal(strlen(out), 253);
	zone[189] = 'z';
	zone[190] = '\0';
	assert_int_equal(dnsbl_qname((struct sockaddr *)&ss, zone, out,
	    sizeof(out)), -1);
	/* small buffers and unknown families are errors, not overruns */
	assert_int_equal(dnsbl_qname((struct sockaddr *)&ss, "z", out, 10),
	    -1);
	ss.ss_family = AF_UNIX;
	assert_int_equal(dnsbl_qname((struct sockaddr *)&ss, "z", out,
	    sizeof(out)), -1);
}

/* --- the cache -------------------------------------------------------- */

/* answer - a found answer with one address, or a negative one */
static struct dnsbl_answer
answer(uint32_t a)
{
	struct dnsbl_answer ans;

	memset(&ans, 0, sizeof(ans));
	ans.status = a != 0 ? DNSBL_ST_FOUND : DNSBL_ST_NXDOMAIN;
	ans.na = a != 0;
	ans.a[0] = a;
	return ans;
}

/* test_cache_ttl - answers live for their bounded TTL, then go */
static void
test_cache_ttl(void **state)
{
	static const struct {
		uint32_t a;		/* 0: NXDOMAIN */
		uint32_t ttl;
		time_t lives;		/* wanted lifetime */
	} t[] = {
		{ 0x7f000002, 60, 60 },
		{ 0x7f000002, 0, DNSBL_TTL_MIN },
		{ 0x7f000002, 3, DNSBL_TTL_MIN },
		{ 0x7f000002, 999999, DNSBL_TTL_MAX },
		{ 0, 0, DNSBL_NEG_TTL },		/* no SOA minimum */
		{ 0, 120, 120 },
		{ 0, 86400, DNSBL_NEG_TTL_MAX },
		{ 0, 1, DNSBL_TTL_MIN },
	};
	struct dnsbl_cache *c = dnsbl_cache_new(16);
	struct dnsbl_answer ans, got;
	time_t now = 1000;
	size_t i;

	assert_non_null(c);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		ans = answer(t[i].a);
		dnsbl_cache_put(c, "k", &ans, t[i].ttl, now);
		assert_int_equal(dnsbl_cache_get(c, "k", now, &got), 1);
		assert_int_equal(dnsbl_cache_get(c, "k", now + t[i].lives - 1,
		    &got), 1);
		assert_int_equal(got.status, ans.status);
		assert_int_equal(got.na, ans.na);
		assert_int_equal(got.a[0], ans.a[0]);
		/* gone at expiry, and dropped from memory */
		assert_int_equal(dnsbl_cache_get(c, "k", now + t[i].lives,
		    &got), 0);
		assert_int_equal(dnsbl_cache_count(c), 0);
	}
	/* timeouts and errors are never cached */
	ans = answer(0);
	ans.status = DNSBL_ST_TIMEOUT;
	dnsbl_cache_put(c, "t", &ans, 60, now);
	ans.status = DNSBL_ST_ERROR;
	dnsbl_cache_put(c, "e", &ans, 60, now);
	assert_int_equal(dnsbl_cache_count(c), 0);
	/* a new answer for a key replaces the old one */
	ans = answer(0x7f000002);
	dnsbl_cache_put(c, "k", &ans, 60, now);
	ans = answer(0x7f000003);
	strlcpy(ans.name, "host.test", sizeof(ans.name));
	ans.code = 7;
	dnsbl_cache_put(c, "k", &ans, 60, now);
	assert_int_equal(dnsbl_cache_count(c), 1);
	assert_int_equal(dnsbl_cache_get(c, "k", now, &got), 1);
	assert_int_equal(got.a[0], 0x7f000003);
	assert_string_equal(got.name, "host.test");
	assert_int_equal(got.code, 7);
	/* an over-long key is a miss, not an overrun */
	{
		char big[600];

		memset(big, 'k', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(dnsbl_cache_get(c, big, now, &got), 0);
	}
	dnsbl_cache_free(c);
}

/* test_cache_bound - the entry limit: the oldest go, memory stays flat */
static void
test_cache_bound(void **state)
{
	enum { MAX = 1000 };
	struct dnsbl_cache *c = dnsbl_cache_new(MAX);
	struct dnsbl_answer ans = answer(0x7f000002), got;
	char key[64];
	size_t bytes_full = 0;
	int i, round;

	assert_non_null(c);
	for (round = 0; round < 3; round++) {
		for (i = 0; i < MAX * 2; i++) {
			snprintf(key, sizeof(key), "%d.%d.0.127.bl.test",
			    round, i);
			dnsbl_cache_put(c, key, &ans, 3600, 1000);
			assert_true(dnsbl_cache_count(c) <= MAX);
		}
		assert_int_equal(dnsbl_cache_count(c), MAX);
		if (round == 0)
			bytes_full = dnsbl_cache_bytes(c);
		else	/* same key lengths: the same bytes, not more */
			assert_true(dnsbl_cache_bytes(c) <= bytes_full + MAX);
		/* the newest MAX are there, the oldest are gone */
		snprintf(key, sizeof(key), "%d.%d.0.127.bl.test", round,
		    MAX * 2 - 1);
		assert_int_equal(dnsbl_cache_get(c, key, 1000, &got), 1);
		snprintf(key, sizeof(key), "%d.%d.0.127.bl.test", round, MAX);
		assert_int_equal(dnsbl_cache_get(c, key, 1000, &got), 1);
		snprintf(key, sizeof(key), "%d.%d.0.127.bl.test", round,
		    MAX - 1);
		assert_int_equal(dnsbl_cache_get(c, key, 1000, &got), 0);
	}
	assert_true(bytes_full < (size_t)MAX * 256);
	/* expired entries make room before live ones are evicted */
	ans = answer(0);
	dnsbl_cache_put(c, "fresh", &ans, 3600, 1000 + 3600 + 5);
	assert_int_equal(dnsbl_cache_count(c), 1);
	dnsbl_cache_free(c);
}

/* --- HELO syntax ------------------------------------------------------ */

/* test_helo_syntax - names, literals, our own name and addresses */
static void
test_helo_syntax(void **state)
{
	static const struct {
		const char *helo;
		enum helo_status want;
		int literal;
	} t[] = {
		{ "mail.example.org", HELO_OK, 0 },
		{ "mail.example.org.", HELO_OK, 0 },
		{ "MX-1.Example.ORG", HELO_OK, 0 },
		{ "a.b", HELO_OK, 0 },
		{ "host_name.example.org", HELO_OK, 0 },
		{ "[192.0.2.1]", HELO_OK, 1 },
		{ "[IPv6:2001:db8::1]", HELO_OK, 1 },
		{ "[ipv6:2001:db8::1]", HELO_OK, 1 },
		{ "localhost", HELO_BAD_SYNTAX, 0 },
		{ "bareword", HELO_BAD_SYNTAX, 0 },
		{ "", HELO_BAD_SYNTAX, 0 },
		{ ".", HELO_BAD_SYNTAX, 0 },
		{ "a..b", HELO_BAD_SYNTAX, 0 },
		{ ".example.org", HELO_BAD_SYNTAX, 0 },
		{ "-a.example.org", HELO_BAD_SYNTAX, 0 },
		{ "a-.example.org", HELO_BAD_SYNTAX, 0 },
		{ "exa mple.org", HELO_BAD_SYNTAX, 0 },
		{ "example.123", HELO_BAD_SYNTAX, 0 },
		{ "192.0.2.1", HELO_BAD_SYNTAX, 0 },
		{ "2001:db8::1", HELO_BAD_SYNTAX, 0 },
		{ "[192.0.2.1", HELO_BAD_SYNTAX, 0 },
		{ "[192.0.2.256]", HELO_BAD_SYNTAX, 0 },
		{ "[2001:db8::1]", HELO_BAD_SYNTAX, 0 },
		{ "[]", HELO_BAD_SYNTAX, 0 },
		{ "ex%ample.org", HELO_BAD_SYNTAX, 0 },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaa.org", HELO_BAD_SYNTAX, 0 },
		/* ours: by name, by literal, by bare address */
		{ "spamd.example.net", HELO_OURS, 0 },
		{ "SPAMD.example.net.", HELO_OURS, 0 },
		{ "[198.51.100.7]", HELO_OURS, 1 },
		{ "[IPv6:::ffff:198.51.100.7]", HELO_OURS, 1 },
		{ "[IPv6:2001:db8:ffff::25]", HELO_OURS, 1 },
		{ "198.51.100.7", HELO_OURS, 0 },
	};
	struct sockaddr_storage a = sa_of("198.51.100.7");
	struct sockaddr_storage b = sa_of("2001:db8:ffff::25");
	const struct sockaddr *ours[2] = { (struct sockaddr *)&a,
	    (struct sockaddr *)&b };
	size_t i;
	int literal;
	enum helo_status st;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		st = helo_syntax(t[i].helo, "spamd.example.net", ours, 2,
		    &literal);
		if (st != t[i].want)
			fail_msg("case %zu '%s': %s, want %s", i, t[i].helo,
			    helo_status_name(st), helo_status_name(t[i].want));
		assert_int_equal(literal, t[i].literal);
	}
	assert_int_equal(helo_syntax(NULL, NULL, NULL, 0, &literal),
	    HELO_BAD_SYNTAX);
	assert_int_equal(helo_syntax("spamd.example.net", NULL, NULL, 0,
	    &literal), HELO_OK);
}

/* --- requests against an in-process DNS server ------------------------ */

/* The test server: fixed records, a zone that never answers, counters. */
struct srv {
	struct evdns_server_port *port;
	evutil_socket_t		 fd;
	char			 addr[64];
	int			 queries;
	int			 dropped;
};

/* srv_cb - answer one DNS question from the fixed records */
static void
srv_cb(struct evdns_server_request *r, void *arg)
{
	static const struct {
		int type;
		const char *name;
		const char *a;		/* address or PTR name */
	} rec[] = {
		{ EVDNS_TYPE_A, "2.0.0.127.bl.test", "127.0.0.2" },
		{ EVDNS_TYPE_A, "2.0.0.127.codes.test", "127.0.0.2" },
		{ EVDNS_TYPE_A, "3.0.0.127.codes.test", "127.0.0.3" },
		{ EVDNS_TYPE_A, "5.0.0.127.bl.test", "127.255.255.254" },
		{ EVDNS_TYPE_A, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
		  "0.0.0.0.0.0.0.0.0.0.bl.test", "127.0.0.4" },
		{ EVDNS_TYPE_PTR, "2.0.0.127.in-addr.arpa", "host2.test" },
		{ EVDNS_TYPE_PTR, "3.0.0.127.in-addr.arpa", "host3.test" },
		{ EVDNS_TYPE_A, "host2.test", "127.0.0.2" },
		{ EVDNS_TYPE_A, "host3.test", "127.0.0.99" },
		{ EVDNS_TYPE_A, "mx.good.test", "192.0.2.25" },
		{ EVDNS_TYPE_AAAA, "v6only.test", "2001:db8::25" },
	};
	struct srv *s = arg;
	struct evdns_server_question *q;
	uint8_t buf[16];
	size_t i, n;
	int found = 0;

	s->queries++;
	if (r->nquestions != 1) {
		evdns_server_request_respond(r, DNS_ERR_FORMAT);
		return;
	}
	q = r->questions[0];
	n = strlen(q->name);
	if (n >= 9 && strcasecmp(q->name + n - 9, "slow.test") == 0) {
		s->dropped++;
		evdns_server_request_drop(r);
		return;
	}
	for (i = 0; i < sizeof(rec) / sizeof(rec[0]); i++) {
		if (rec[i].type != q->type || strcasecmp(rec[i].name,
		    q->name) != 0)
			continue;
		found = 1;
		/* the reply must name the question as asked (0x20 case) */
		if (q->type == EVDNS_TYPE_A) {
			inet_pton(AF_INET, rec[i].a, buf);
			evdns_server_request_add_a_reply(r, q->name, 1, buf,
			    60);
		} else if (q->type == EVDNS_TYPE_AAAA) {
			inet_pton(AF_INET6, rec[i].a, buf);
			evdns_server_request_add_aaaa_reply(r, q->name, 1, buf,
			    60);
		} else
			evdns_server_request_add_ptr_reply(r, NULL, q->name,
			    rec[i].a, 60);
	}
	evdns_server_request_respond(r, found ? DNS_ERR_NONE :
	    DNS_ERR_NOTEXIST);
}

/* srv_start - a UDP DNS server on an unused loopback port */
static void
srv_start(struct event_base *base, struct srv *s)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(s, 0, sizeof(*s));
	s->fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(s->fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* why: port 0 - the kernel picks a free one, no clash with others */
	assert_int_equal(bind(s->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sin, &len), 0);
	evutil_make_socket_nonblocking(s->fd);
	s->port = evdns_add_server_port_with_base(base, s->fd, 0, srv_cb, s);
	assert_non_null(s->port);
	snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%u",
	    ntohs(sin.sin_port));
}

/* srv_stop - close the test server */
static void
srv_stop(struct srv *s)
{
	evdns_close_server_port(s->port);
	close(s->fd);
}

/* What a callback saw. */
struct seen {
	struct event_base	*base;
	int			 calls;
	int			 nzones, nlisted, ntimeout;
	char			 zones[256];	/* "zone=answer;..." */
	char			 msg[256];	/* first hit, expanded */
	int			 rdns;
	char			 name[DNSBL_NAME_MAX];
	int			 helo;
	struct dnsbl_req	*self;		/* cancel from inside */
	int			 stop;		/* loopexit when called */
};

/* seen_dnsbl - a DNSBL callback that records the result */
static void
seen_dnsbl(void *arg, const struct dnsbl_result *res)
{
	struct seen *s = arg;
	char part[128];
	int i;

	s->calls++;
	s->nzones = res->nzones;
	s->nlisted = res->nlisted;
	s->ntimeout = res->ntimeout;
	s->zones[0] = '\0';
	for (i = 0; i < res->nlisted; i++) {
		snprintf(part, sizeof(part), "%s%s=%s", i > 0 ? ";" : "",
		    res->hit[i].zone, res->hit[i].answer);
		strlcat(s->zones, part, sizeof(s->zones));
	}
	s->msg[0] = '\0';
	if (res->nlisted > 0)
		bl_expand(res->hit[0].msg, res->addr, 550, s->msg,
		    sizeof(s->msg));
	if (s->self != NULL)
		dnsbl_cancel(s->self);	/* must be harmless here */
	if (s->stop)
		event_base_loopexit(s->base, NULL);
}

/* seen_rdns - an rdns callback that records the result */
static void
seen_rdns(void *arg, const struct rdns_result *res)
{
	struct seen *s = arg;

	s->calls++;
	s->rdns = res->status;
	strlcpy(s->name, res->name, sizeof(s->name));
	if (s->stop)
		event_base_loopexit(s->base, NULL);
}

/* seen_helo - a HELO callback that records the result */
static void
seen_helo(void *arg, const struct helo_result *res)
{
	struct seen *s = arg;

	s->calls++;
	s->helo = res->status;
	if (s->stop)
		event_base_loopexit(s->base, NULL);
}

/* run_until - run the loop until a callback stops it (bounded) */
static void
run_until(struct event_base *base)
{
	struct timeval guard = { 10, 0 };

	event_base_loopexit(base, &guard);	/* never hang the suite */
	event_base_dispatch(base);
}

/* check - one DNSBL check of addr, run to its callback */
static void
check(struct event_base *base, struct dnsbl *d, const char *addr,
    struct seen *s)
{
	struct sockaddr_storage ss = sa_of(addr);

	memset(s, 0, sizeof(*s));
	s->base = base;
	s->stop = 1;
	assert_non_null(dnsbl_check(d, (struct sockaddr *)&ss, seen_dnsbl,
	    s));
	assert_int_equal(s->calls, 0);	/* never from inside the call */
	run_until(base);
	assert_int_equal(s->calls, 1);
}

/* test_lookup - listings, codes, the refusal range, IPv6, the cache */
static void
test_lookup(void **state)
{
	static const struct {
		const char *addr;
		int nlisted;
		const char *zones;
		const char *msg;
	} t[] = {
		{ "127.0.0.2", 1, "bl.test=127.0.0.2",
		  "550 BL says 127.0.0.2 is bad\r\n" },
		{ "127.0.0.3", 1, "codes.test=127.0.0.3",
		  "550 Codes: 127.0.0.3\r\n" },
		{ "127.0.0.4", 0, "", "" },
		{ "127.0.0.5", 0, "", "" },	/* 127.255.255.254: refused */
		{ "::1", 1, "bl.test=127.0.0.4",
		  "550 BL says ::1 is bad\r\n" },
		{ "::ffff:127.0.0.2", 1, "bl.test=127.0.0.2",
		  "550 BL says 127.0.0.2 is bad\r\n" },
	};
	struct event_base *base = event_base_new();
	struct dnsbl_zone_stats st[4];
	struct dnsbl *d;
	struct srv srv;
	struct seen s;
	char err[256];
	size_t i;
	int q, now, peak;

	assert_non_null(base);
	srv_start(base, &srv);
	d = dnsbl_new(base, srv.addr, 2000, 100, err, sizeof(err));
	if (d == NULL)
		fail_msg("dnsbl_new: %s", err);
	assert_null(dnsbl_check(d, (struct sockaddr *)&(struct
	    sockaddr_storage){ .ss_family = AF_INET }, seen_dnsbl, &s));
	assert_int_equal(dnsbl_add_zone(d, "bl.test;BL says %A is bad",
	    "--dnsbl", 0, err, sizeof(err)), 0);
	/* codes.test answers 127.0.0.2 for .2: not one of its codes */
	assert_int_equal(dnsbl_add_zone(d, "codes.test=127.0.0.3;Codes: "
	    "%d.%d.%d.%d", "--dnsbl", 0, err, sizeof(err)), 0);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		check(base, d, t[i].addr, &s);
		assert_int_equal(s.nzones, 2);
		assert_int_equal(s.ntimeout, 0);
		assert_int_equal(s.nlisted, t[i].nlisted);
		assert_string_equal(s.zones, t[i].zones);
		assert_string_equal(s.msg, t[i].msg);
	}
	/* again: every answer comes from the cache, DNS is not asked */
	q = srv.queries;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		check(base, d, t[i].addr, &s);
		assert_int_equal(s.nlisted, t[i].nlisted);
		assert_string_equal(s.zones, t[i].zones);
	}
	assert_int_equal(srv.queries, q);
	assert_int_equal(dnsbl_stats(d, st, 4), 2);
	assert_string_equal(st[0].zone, "bl.test");
	assert_int_equal(st[0].queries, 5);	/* .2 and v4-mapped are one */
	assert_int_equal(st[0].cache_hits, 7);
	assert_int_equal(st[0].listed, 6);
	assert_int_equal(st[0].timeouts, 0);
	assert_int_equal(st[1].listed, 2);
	dnsbl_inflight(d, &now, &peak);
	assert_int_equal(now, 0);
	assert_true(peak >= 2);
	dnsbl_free(d);
	srv_stop(&srv);
	event_base_free(base);
}

/* never_cb - a callback that must not run */
static void
never_cb(void *arg, const struct dnsbl_result *res)
{
	int *freed = arg;

	/* reading *freed touches freed memory under ASan if we got here */
	fail_msg("callback after cancel (%d)", *freed);
}

/* test_coalesce - checks of one address at once share their queries */
static void
test_coalesce(void **state)
{
	enum { N = 20 };
	struct event_base *base = event_base_new();
	struct sockaddr_storage ss = sa_of("127.0.0.2");
	struct dnsbl_zone_stats st[2];
	struct dnsbl_req *r[N];
	struct dnsbl *d;
	struct srv srv;
	struct seen s[N], last;
	char err[256];
	int i, *gone;

	srv_start(base, &srv);
	d = dnsbl_new(base, srv.addr, 2000, 100, err, sizeof(err));
	assert_non_null(d);
	assert_int_equal(dnsbl_add_zone(d, "bl.test", NULL, 0, err,
	    sizeof(err)), 0);
	assert_int_equal(dnsbl_add_zone(d, "codes.test", NULL, 0, err,
	    sizeof(err)), 0);
	memset(s, 0, sizeof(s));
	for (i = 0; i < N; i++) {
		s[i].base = base;
		r[i] = dnsbl_check(d, (struct sockaddr *)&ss, seen_dnsbl,
		    &s[i]);
		assert_non_null(r[i]);
	}
	/* some askers go away before the answer; the rest still get it */
	for (i = 0; i < N; i += 3)
		dnsbl_cancel(r[i]);
	s[N - 1].stop = 1;
	run_until(base);
	for (i = 0; i < N; i++) {
		assert_int_equal(s[i].calls, i % 3 == 0 ? 0 : 1);
		if (i % 3 != 0)
			assert_string_equal(s[i].zones,
			    "bl.test=127.0.0.2;codes.test=127.0.0.2");
	}
	assert_int_equal(srv.queries, 2);	/* one per zone */
	assert_int_equal(dnsbl_stats(d, st, 2), 2);
	assert_int_equal(st[0].queries, 1);
	assert_int_equal(st[0].coalesced, N - 1);
	/* every asker gone: the answer still fills the cache */
	ss = sa_of("127.0.0.3");
	for (i = 0; i < 3; i++) {
		gone = malloc(sizeof(*gone));
		*gone = i;
		dnsbl_cancel(dnsbl_check(d, (struct sockaddr *)&ss, never_cb,
		    gone));
		free(gone);
	}
	check(base, d, "127.0.0.2", &last);	/* cached: runs the loop */
	for (i = 0; i < 1000 && srv.queries < 4; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_loop(base, EVLOOP_NONBLOCK);
	check(base, d, "127.0.0.3", &last);
	assert_int_equal(srv.queries, 4);
	assert_string_equal(last.zones, "codes.test=127.0.0.3");
	dnsbl_free(d);
	srv_stop(&srv);
	event_base_free(base);
}

/* test_timeout - a zone that never answers counts as not listed */
static void
test_timeout(void **state)
{
	struct event_base *base = event_base_new();
	struct dnsbl_zone_stats st[4];
	struct dnsbl *d;
	struct srv srv;
	struct seen s;
	char err[256];

	srv_start(base, &srv);
	d = dnsbl_new(base, srv.addr, 300, 100, err, sizeof(err));
	assert_non_null(d);
	assert_int_equal(dnsbl_add_zone(d, "slow.test", NULL, 0, err,
	    sizeof(err)), 0);
	assert_int_equal(dnsbl_add_zone(d, "bl.test", NULL, 0, err,
	    sizeof(err)), 0);
	check(base, d, "127.0.0.2", &s);
	assert_int_equal(s.nzones, 2);
	assert_int_equal(s.ntimeout, 1);
	assert_int_equal(s.nlisted, 1);
	assert_string_equal(s.zones, "bl.test=127.0.0.2");
	assert_string_equal(s.msg,
	    "550 Blocked: 127.0.0.2 is listed at bl.test\r\n");
	assert_true(srv.dropped >= 1);
	assert_int_equal(dnsbl_stats(d, st, 4), 2);
	assert_int_equal(st[0].timeouts, 1);
	/* timeouts are not cached: the next check asks again */
	check(base, d, "127.0.0.2", &s);
	assert_int_equal(s.ntimeout, 1);
	assert_int_equal(dnsbl_stats(d, st, 4), 2);
	assert_int_equal(st[0].queries, 2);
	dnsbl_free(d);
	event_base_loop(base, EVLOOP_NONBLOCK);
	srv_stop(&srv);
	event_base_free(base);
}

/* never_rdns - an rdns callback that must not run */
static void
never_rdns(void *arg, const struct rdns_result *res)
{
	fail_msg("rdns callback after cancel (%d)", *(int *)arg);
}

/* never_helo - a HELO callback that must not run */
static void
never_helo(void *arg, const struct helo_result *res)
{
	fail_msg("helo callback after cancel (%d)", *(int *)arg);
}

/* test_cancel - cancelled requests never call back into freed memory */
static void
test_cancel(void **state)
{
	struct event_base *base = event_base_new();
	struct sockaddr_storage ss = sa_of("127.0.0.2");
	struct sockaddr_storage ss6 = sa_of("127.0.0.6");
	struct dnsbl_req *r;
	struct dnsbl *d;
	struct srv srv;
	struct seen s;
	char err[256];
	int *gone, i, q;

	srv_start(base, &srv);
	d = dnsbl_new(base, srv.addr, 300, 100, err, sizeof(err));
	assert_non_null(d);
	assert_int_equal(dnsbl_add_zone(d, "bl.test", NULL, 0, err,
	    sizeof(err)), 0);
	assert_int_equal(dnsbl_add_zone(d, "slow.test", NULL, 0, err,
	    sizeof(err)), 0);

	/* cancel before any answer: the "session" is freed at once */
	for (i = 0; i < 20; i++) {
		gone = malloc(sizeof(*gone));
		*gone = i;
		r = dnsbl_check(d, (struct sockaddr *)&ss, never_cb, gone);
		assert_non_null(r);
		dnsbl_cancel(r);
		free(gone);
	}
	/* and an rdns and a HELO check, cancelled the same way */
	gone = malloc(sizeof(*gone));
	dnsbl_cancel(rdns_check(d, (struct sockaddr *)&ss,
	    never_rdns, gone));
	dnsbl_cancel(helo_check(d, "mx.good.test", NULL, NULL, 0,
	    never_helo, gone));
	free(gone);
	/* a cached answer is delivered from the loop: cancel beats it */
	q = srv.queries;
	check(base, d, "127.0.0.6", &s);	/* lets the above finish */
	gone = malloc(sizeof(*gone));
	r = dnsbl_check(d, (struct sockaddr *)&ss6, never_cb, gone);
	dnsbl_cancel(r);
	free(gone);
	/* the late answers of cancelled checks filled the cache */
	check(base, d, "127.0.0.2", &s);
	assert_int_equal(s.nlisted, 1);
	assert_true(srv.queries > q);

	/* cancelling from inside the callback is harmless */
	memset(&s, 0, sizeof(s));
	s.base = base;
	s.stop = 1;
	s.self = dnsbl_check(d, (struct sockaddr *)&ss, seen_dnsbl, &s);
	run_until(base);
	assert_int_equal(s.calls, 1);

	/* freeing the checker with requests in flight calls nobody back */
	gone = malloc(sizeof(*gone));
	assert_non_null(dnsbl_check(d, (struct sockaddr *)&ss6, never_cb,
	    gone));
	assert_non_null(rdns_check(d, (struct sockaddr *)&ss6,
	    never_rdns, gone));
	dnsbl_free(d);
	free(gone);
	for (i = 0; i < 3; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	srv_stop(&srv);
	event_base_free(base);
}

/* test_rdns_helo - FCrDNS and HELO lookups against the test server */
static void
test_rdns_helo(void **state)
{
	static const struct {
		const char *addr;
		enum rdns_status want;
		const char *name;
	} rt[] = {
		{ "127.0.0.2", RDNS_OK, "host2.test" },
		{ "127.0.0.3", RDNS_NOT_CONFIRMED, "host3.test" },
		{ "127.0.0.4", RDNS_NO_PTR, "" },
	};
	static const struct {
		const char *helo;
		enum helo_status want;
	} ht[] = {
		{ "mx.good.test", HELO_OK },
		{ "MX.Good.Test.", HELO_OK },
		{ "v6only.test", HELO_OK },
		{ "nx.test", HELO_NOT_FOUND },
		{ "bareword", HELO_BAD_SYNTAX },
		{ "spamd.test", HELO_OURS },
		{ "[127.0.0.1]", HELO_OK },
		{ "www.slow.test", HELO_TIMEOUT },
	};
	struct event_base *base = event_base_new();
	struct sockaddr_storage ss;
	struct dnsbl *d;
	struct srv srv;
	struct seen s;
	char err[256];
	size_t i;
	int pass, q = 0;

	srv_start(base, &srv);
	d = dnsbl_new(base, srv.addr, 300, 100, err, sizeof(err));
	assert_non_null(d);
	for (pass = 0; pass < 2; pass++) {
		if (pass == 1)
			q = srv.queries - srv.dropped;
		for (i = 0; i < sizeof(rt) / sizeof(rt[0]); i++) {
			ss = sa_of(rt[i].addr);
			memset(&s, 0, sizeof(s));
			s.base = base;
			s.stop = 1;
			assert_non_null(rdns_check(d, (struct sockaddr *)&ss,
			    seen_rdns, &s));
			run_until(base);
			assert_int_equal(s.calls, 1);
			if ((int)rt[i].want != s.rdns)
				fail_msg("rdns %s: %s, want %s", rt[i].addr,
				    rdns_status_name(s.rdns),
				    rdns_status_name(rt[i].want));
			assert_string_equal(s.name, rt[i].name);
		}
		for (i = 0; i < sizeof(ht) / sizeof(ht[0]); i++) {
			memset(&s, 0, sizeof(s));
			s.base = base;
			s.stop = 1;
			assert_non_null(helo_check(d, ht[i].helo, "spamd.test",
			    NULL, 0, seen_helo, &s));
			assert_int_equal(s.calls, 0);
			run_until(base);
			assert_int_equal(s.calls, 1);
			if ((int)ht[i].want != s.helo)
				fail_msg("helo %s: %s, want %s", ht[i].helo,
				    helo_status_name(s.helo),
				    helo_status_name(ht[i].want));
		}
	}
	/* the second pass asked DNS only for the name that timed out */
	assert_int_equal(srv.queries - srv.dropped - q, 0);
	assert_true(srv.dropped >= 4);
	dnsbl_free(d);
	event_base_loop(base, EVLOOP_NONBLOCK);
	srv_stop(&srv);
	event_base_free(base);
}

/* test_reload - a file reload swaps zones, keeps flags and counters */
static void
test_reload(void **state)
{
	struct event_base *base = event_base_new();
	struct dnsbl_zone_stats st[8];
	struct dnsbl *d;
	struct srv srv;
	struct seen s;
	char err[512], *good, *bad;

	srv_start(base, &srv);
	d = dnsbl_new(base, srv.addr, 1000, 100, err, sizeof(err));
	assert_non_null(d);
	assert_int_equal(dnsbl_add_zone(d, "codes.test=127.0.0.3", "--dnsbl",
	    0, err, sizeof(err)), 0);
	good = write_file("# zones\nbl.test;first %A\n");
	bad = write_file("bl.test;second %A\nother.test;%s oops\n");
	assert_int_equal(dnsbl_load_file(d, good, err, sizeof(err)), 0);
	assert_int_equal(dnsbl_nzones(d), 2);
	check(base, d, "127.0.0.2", &s);
	assert_string_equal(s.msg, "550 first 127.0.0.2\r\n");
	/* a bad file changes nothing */
	assert_int_equal(dnsbl_load_file(d, bad, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: bad '%' sequence"));
	assert_int_equal(dnsbl_nzones(d), 2);
	check(base, d, "127.0.0.2", &s);
	assert_string_equal(s.msg, "550 first 127.0.0.2\r\n");
	/* a zone also given as a flag is refused */
	unlink(bad);
	free(bad);
	bad = write_file("codes.test\n");
	assert_int_equal(dnsbl_load_file(d, bad, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "also given with --dnsbl"));
	/* a good reload: new message, counters kept */
	unlink(good);
	free(good);
	good = write_file("bl.test;second %A\n");
	assert_int_equal(dnsbl_load_file(d, good, err, sizeof(err)), 0);
	check(base, d, "127.0.0.2", &s);
	assert_string_equal(s.msg, "550 second 127.0.0.2\r\n");
	assert_int_equal(dnsbl_stats(d, st, 8), 2);
	assert_string_equal(st[1].zone, "bl.test");
	assert_int_equal(st[1].listed, 3);
	/* the same from text another process read (no NUL at the end) */
	{
		static const char text[] = "bl.test;third %A\nx.test;%n\n";

		assert_int_equal(dnsbl_load_text(d, "/etc/zones", text,
		    sizeof(text) - 1, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "/etc/zones:2: bad '%' "));
		assert_int_equal(dnsbl_load_text(d, "/etc/zones", text, 18,
		    err, sizeof(err)), 0);
		check(base, d, "127.0.0.2", &s);
		assert_string_equal(s.msg, "550 third 127.0.0.2\r\n");
	}
	/* an empty file leaves the flag's zone */
	unlink(good);
	free(good);
	good = write_file("");
	assert_int_equal(dnsbl_load_file(d, good, err, sizeof(err)), 0);
	assert_int_equal(dnsbl_nzones(d), 1);
	unlink(good);
	free(good);
	unlink(bad);
	free(bad);
	dnsbl_free(d);
	srv_stop(&srv);
	event_base_free(base);
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
		cmocka_unit_test(test_qname),
		cmocka_unit_test(test_cache_ttl),
		cmocka_unit_test(test_cache_bound),
		cmocka_unit_test(test_helo_syntax),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_coalesce),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_rdns_helo),
		cmocka_unit_test(test_reload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
