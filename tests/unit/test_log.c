/*
 * test_log.c - the JSON log line (log_json_line): key=value messages,
 * quoted values with spaces, escaped bytes, words that are not key=value,
 * keys that clash with the fixed members, a too-small buffer, and
 * log_set_format's names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "spamd/common/log.h"

#define HEAD "{\"ts\":\"T\",\"prog\":\"spamd\",\"pid\":42,\"level\":\"info\""

struct jcase {
	const char	*name;
	const char	*msg;
	const char	*want;	/* without HEAD */
};

static const struct jcase jcases[] = {
	{ "kv", "event=connect addr=192.0.2.1 class=grey",
	  ",\"event\":\"connect\",\"addr\":\"192.0.2.1\",\"class\":\"grey\"}" },
	{ "quoted", "event=fail error=\"No such file\" n=3",
	  ",\"event\":\"fail\",\"error\":\"No such file\",\"n\":\"3\"}" },
	{ "quoted-escape", "e=\"say \\\"hi\\\" \\\\ok\"",
	  ",\"e\":\"say \\\"hi\\\" \\\\ok\"}" },
	{ "unterminated-quote", "a=\"x y",
	  ",\"a\":\"x y\"}" },
	{ "control", "helo=a\tb\x01z",
	  ",\"helo\":\"a\\u0009b\\u0001z\"}" },
	{ "high-bytes", "from=\xc3\xa9\x7f",
	  ",\"from\":\"\\u00c3\\u00a9\\u007f\"}" },
	{ "backslash-unquoted", "helo=a\\040b",
	  ",\"helo\":\"a\\\\040b\"}" },
	{ "text", "listening on 8025",
	  ",\"msg\":\"listening on 8025\"}" },
	{ "mixed", "engine up workers=2 ok",
	  ",\"workers\":\"2\",\"msg\":\"engine up ok\"}" },
	{ "reserved", "pid=7 msg=x level=y",
	  ",\"_pid\":\"7\",\"_msg\":\"x\",\"_level\":\"y\"}" },
	{ "empty-value", "a= b=1",
	  ",\"a\":\"\",\"b\":\"1\"}" },
	{ "equals-first", "=x",
	  ",\"msg\":\"=x\"}" },
	{ "spaces", "  a=1   b=2  ",
	  ",\"a\":\"1\",\"b\":\"2\"}" },
	{ "empty", "", "}" },
};

/* test_json_lines - every case gives exactly the expected object */
static void
test_json_lines(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(jcases) / sizeof(jcases[0]); i++) {
		char out[1024], want[1024];
		size_t n;

		snprintf(want, sizeof(want), "%s%s", HEAD, jcases[i].want);
		n = log_json_line(out, sizeof(out), "T", "spamd", 42, "info",
		    jcases[i].msg);
		if (strcmp(out, want) != 0)
			fail_msg("case %s: got %s want %s", jcases[i].name,
			    out, want);
		assert_int_equal(n, strlen(want));
	}
}

/* test_json_fixed - ts, prog and level are escaped too */
static void
test_json_fixed(void **state)
{
	char out[256];

	(void)state;
	log_json_line(out, sizeof(out), "2026-01-01T00:00:00.000Z", "gr\"ey",
	    -1, "warning", "x=1");
	assert_string_equal(out, "{\"ts\":\"2026-01-01T00:00:00.000Z\","
	    "\"prog\":\"gr\\\"ey\",\"pid\":-1,\"level\":\"warning\","
	    "\"x\":\"1\"}");
}

/* test_json_short - a small buffer is cut, NUL-terminated, length right */
static void
test_json_short(void **state)
{
	char full[256], out[20];
	size_t need, n;

	(void)state;
	need = log_json_line(full, sizeof(full), "T", "spamd", 42, "info",
	    "a=1 b=2");
	memset(out, 'X', sizeof(out));
	n = log_json_line(out, sizeof(out), "T", "spamd", 42, "info",
	    "a=1 b=2");
	assert_int_equal(n, need);
	assert_int_equal(strlen(out), sizeof(out) - 1);
	assert_memory_equal(out, full, sizeof(out) - 1);
	/* A zero-size buffer is never written. */
	assert_int_equal(log_json_line(NULL, 0, "T", "spamd", 42, "info",
	    "a=1 b=2"), need);
}

/* test_set_format - the names --log-format accepts */
static void
test_set_format(void **state)
{
	(void)state;
	assert_int_equal(log_set_format("json"), 0);
	assert_int_equal(log_set_format("kv"), 0);
	assert_int_equal(log_set_format("JSON"), -1);
	assert_int_equal(log_set_format(""), -1);
	assert_int_equal(log_set_format("text"), -1);
	assert_int_equal(log_set_format("OpenBSD"), -1);
	assert_int_equal(log_set_format("openbsd"), 0);
	assert_int_equal(log_openbsd(), 1);
	assert_int_equal(log_set_format("json"), 0);
	assert_int_equal(log_openbsd(), 0);
	assert_int_equal(log_set_format("kv"), 0);
}

/* test_obsd_escape - client bytes in an OpenBSD line: addresses as sent
 * ('=' and '"' kept), white space and control bytes escaped; free text
 * keeps its spaces */
static void
test_obsd_escape(void **state)
{
	static const struct {
		const char	*in;
		int		 text;	/* log_obsd_text, else _escape */
		const char	*want;
	} rows[] = {
		{ "<SRS0=ab=cd@x.example>", 0, "<SRS0=ab=cd@x.example>" },
		{ "<\"a\"@b>", 0, "<\"a\"@b>" },
		{ "<a b@c> -> <d>", 0, "<a\\sb@c>\\s->\\s<d>" },
		{ "a\r\nb", 0, "a\\r\\nb" },
		{ "Subject: cheap stuff", 1, "Subject: cheap stuff" },
		{ "Subject: a\rb\nc", 1, "Subject: a\\rb\\nc" },
	};
	char out[256];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (rows[i].text)
			log_obsd_text(rows[i].in, strlen(rows[i].in), 100,
			    out, sizeof(out));
		else
			log_obsd_escape(rows[i].in, strlen(rows[i].in), 100,
			    out, sizeof(out));
		assert_string_equal(out, rows[i].want);
	}
	/* cut to max input bytes */
	log_obsd_escape("abcdef", 6, 3, out, sizeof(out));
	assert_string_equal(out, "abc");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_lines),
		cmocka_unit_test(test_json_fixed),
		cmocka_unit_test(test_json_short),
		cmocka_unit_test(test_set_format),
		cmocka_unit_test(test_obsd_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
