/*
 * test_greyctl.c - greyctl's parts that do not need the binary: the import
 * line parser, JSON string escaping, spamdb lines, message-safe copies, and
 * import's all-or-nothing rule against a real store in a temp directory.
 *
 * greyctl's sources are not in a library (the Makefile links them into
 * the greyctl program only), so the files are included here; greyctl.c,
 * which holds main, is not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "greydb/greyctl_util.c"
#include "greydb/greyctl_print.c"
#include "greydb/greyctl_import.c"

/* One row of the import parser table. */
struct parse_case {
	const char	*line;
	int		 want;		/* 0 ok, 1 skipped, -1 rejected */
	enum gdb_type	 type;		/* when ok */
	int64_t		 expire;	/* when ok */
	int32_t		 pcount;	/* when ok */
	const char	*why;		/* when rejected: part of the message */
};

static const struct parse_case parse_cases[] = {
	{ "GREY|192.0.2.1|h|a@b|c@d|1|2|3|4|0", 0, GDB_GREY, 3, 0, NULL },
	{ "GREY|192.0.2.1|h|<A@B>|c@d|1|2|3|4|-1", 0, GDB_GREY, 3, -1, NULL },
	{ "GREY|2001:db8::1|||c@d|0|0|0|0|0", 0, GDB_GREY, 0, 0, NULL },
	{ "GREY|192.0.2.1|h|a@b|c@d|1|2|3|4|-2", -1, 0, 0, 0, "pcount" },
	{ "GREY|192.0.2.1|h|a@b|c@d|1|2|3|4", -1, 0, 0, 0, "has 9" },
	{ "GREY|192.0.2.1|h|a|b|c@d|1|2|3|4|0", -1, 0, 0, 0, "has 11" },
	{ "GREY|1|2|3|4|5|6|7|8|9|10|11|12|13", -1, 0, 0, 0, "has 14" },
	{ "GREY|192.0.2.1|h|a@b|c@d|1|soon|3|4|0", -1, 0, 0, 0, "'soon'" },
	{ "WHITE|2001:db8::1|||1|2|3|1|0", 0, GDB_WHITE, 3, 0, NULL },
	{ "WHITE|1.2.3.4|x||1|2|3|1|0", -1, 0, 0, 0, "must be empty" },
	{ "WHITE|1.2.3.4|||1|2|3|1|-1", -1, 0, 0, 0, "pcount" },
	{ "WHITE|1.2.3.4|||1|2|3|2147483648|0", -1, 0, 0, 0, "out of range" },
	{ "WHITE|1.2.3.4||||1|2|3|1|0", -1, 0, 0, 0, "has 10" },
	{ "TRAPPED|1.2.3.4|99", 0, GDB_TRAPPED, 99, -1, NULL },
	{ "TRAPPED|::ffff:1.2.3.4|5", 0, GDB_TRAPPED, 5, -1, NULL },
	{ "TRAPPED|1.2.3.4|+99", -1, 0, 0, 0, "not a number" },
	{ "TRAPPED|1.2.3.4| 99", -1, 0, 0, 0, "not a number" },
	{ "TRAPPED|1.2.3.4|99x", -1, 0, 0, 0, "not a number" },
	{ "TRAPPED|1.2.3.4|", -1, 0, 0, 0, "not a number" },
	{ "TRAPPED|1.2.3.4|-1", -1, 0, 0, 0, "out of range" },
	{ "TRAPPED|1.2.3.4|9223372036854775808", -1, 0, 0, 0, "out of range" },
	{ "TRAPPED|1.2.3|5", -1, 0, 0, 0, "not an IPv4 or IPv6" },
	{ "TRAPPED|1.2.3.4", -1, 0, 0, 0, "needs 3" },
	{ "SPAMTRAP|a@b", 0, GDB_SPAMTRAP, 0, -2, NULL },
	{ "SPAMTRAP|ab", -1, 0, 0, 0, "no '@'" },
	{ "SPAMTRAP|", -1, 0, 0, 0, "no '@'" },
	{ "SPAMTRAP|a@b|", -1, 0, 0, 0, "has 3" },
	{ "", 1, 0, 0, 0, NULL },
	{ "# a comment", 1, 0, 0, 0, NULL },
	{ "grey|192.0.2.1|h|a@b|c@d|1|2|3|4|0", -1, 0, 0, 0, "'grey'" },
	{ "|||", -1, 0, 0, 0, "unknown record type" },
};

/* test_parse_line - every row of the parser table */
static void
test_parse_line(void **state)
{
	char line[IMPORT_LINE_MAX + 1], why[256];
	struct gdb_rec r;
	size_t i;
	int got;

	(void)state;
	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];

		strlcpy(line, c->line, sizeof(line));
		why[0] = '\0';
		got = parse_line(line, 1000, &r, why, sizeof(why));
		if (got != c->want)
			fail_msg("row %zu '%s': got %d want %d (%s)", i,
			    c->line, got, c->want, why);
		if (got == 0) {
			assert_int_equal(r.type, c->type);
			assert_int_equal(r.expire, c->expire);
			assert_int_equal(r.pcount, c->pcount);
		}
		if (got == -1 && strstr(why, c->why) == NULL)
			fail_msg("row %zu '%s': message '%s' lacks '%s'", i,
			    c->line, why, c->why);
	}
}

/* test_parse_lengths - helo and addresses at and past their sizes */
static void
test_parse_lengths(void **state)
{
	char line[IMPORT_LINE_MAX + 1], why[256], helo[GDB_HELO_MAX + 1];
	struct gdb_rec r;

	(void)state;
	memset(helo, 'h', GDB_HELO_MAX - 1);
	helo[GDB_HELO_MAX - 1] = '\0';
	snprintf(line, sizeof(line), "GREY|1.2.3.4|%s|a@b|c@d|1|2|3|4|0",
	    helo);
	assert_int_equal(parse_line(line, 0, &r, why, sizeof(why)), 0);
	assert_int_equal(strlen(r.helo), GDB_HELO_MAX - 1);
	memset(helo, 'h', GDB_HELO_MAX);
	helo[GDB_HELO_MAX] = '\0';
	snprintf(line, sizeof(line), "GREY|1.2.3.4|%s|a@b|c@d|1|2|3|4|0",
	    helo);
	assert_int_equal(parse_line(line, 0, &r, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "helo longer than 1023"));
}

/* test_line_bound - a line past IMPORT_LINE_MAX is a bad line naming the
 * bound, and read_line drops its tail (it is not read as a next line) */
static void
test_line_bound(void **state)
{
	static const char good[] = "TRAPPED|192.0.2.7|99\n";
	char why[256], *text;
	struct import_line *l;
	struct gdb_rec r;
	size_t n = IMPORT_LINE_MAX + 1000;
	FILE *fp;

	(void)state;
	text = malloc(n + sizeof(good));
	l = malloc(sizeof(*l));
	assert_non_null(text);
	assert_non_null(l);
	/* a valid record padded past the bound: refused for its length */
	memset(text, ' ', n);
	memcpy(text, good, sizeof(good) - 2);
	assert_int_equal(greyctl_import_line(text, n, 0, &r, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "line longer than 4096 bytes"));
	/* exactly at the bound it is not refused for its length */
	assert_int_equal(greyctl_import_line(text, IMPORT_LINE_MAX, 0, &r,
	    why, sizeof(why)), -1);
	assert_null(strstr(why, "longer than"));

	memset(text, 'x', n);
	text[n - 1] = '\n';
	memcpy(text + n, good, sizeof(good));
	fp = fmemopen(text, n + sizeof(good) - 1, "r");
	assert_non_null(fp);
	assert_int_equal(read_line(fp, NULL, l), 1);
	assert_true(l->toolong);
	assert_int_equal(l->len, IMPORT_LINE_MAX);
	assert_int_equal(read_line(fp, NULL, l), 1);
	assert_false(l->toolong);
	assert_string_equal(l->buf, "TRAPPED|192.0.2.7|99");
	assert_int_equal(read_line(fp, NULL, l), 0);
	fclose(fp);
	free(l);
	free(text);
}

/* One row of the JSON escaping table. */
struct json_case {
	const char	*in;
	const char	*want;
};

static const struct json_case json_cases[] = {
	{ "", "\"\"" },
	{ "plain text", "\"plain text\"" },
	{ "a\"b", "\"a\\\"b\"" },
	{ "back\\slash", "\"back\\\\slash\"" },
	{ "\x01\t\n\r", "\"\\u0001\\u0009\\u000a\\u000d\"" },
	{ "\x7f", "\"\\u007f\"" },
	{ "caf\xc3\xa9", "\"caf\\u00c3\\u00a9\"" },
	{ "\xff", "\"\\u00ff\"" },
};

/* test_json_str - every row of the JSON escaping table */
static void
test_json_str(void **state)
{
	char *buf;
	size_t len, i;
	FILE *fp;

	(void)state;
	for (i = 0; i < sizeof(json_cases) / sizeof(json_cases[0]); i++) {
		fp = open_memstream(&buf, &len);
		assert_non_null(fp);
		greyctl_json_str(fp, json_cases[i].in);
		fclose(fp);
		assert_string_equal(buf, json_cases[i].want);
		free(buf);
	}
}

/* print_to - one record printed (text or JSON) into a new string */
static char *
print_to(const struct gdb_rec *r, int json)
{
	struct greyctl ctl;
	int oerr = 0;
	char *buf;
	size_t len;

	memset(&ctl, 0, sizeof(ctl));
	ctl.json = json;
	ctl.out_errno = &oerr;
	ctl.out = open_memstream(&buf, &len);
	assert_non_null(ctl.out);
	assert_int_equal(greyctl_print(&ctl, r), 0);
	fclose(ctl.out);
	return buf;
}

/* test_print - spamdb lines of each type, CR/LF made '?', JSON fields */
static void
test_print(void **state)
{
	struct gdb_rec r;
	char *s;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.type = GDB_GREY;
	strlcpy(r.ip, "192.0.2.1", sizeof(r.ip));
	strlcpy(r.helo, "he\r\nlo", sizeof(r.helo));
	strlcpy(r.from, "a@b", sizeof(r.from));
	strlcpy(r.to, "c|d", sizeof(r.to));
	r.first = 1;
	r.pass = 2;
	r.expire = 3;
	r.bcount = 4;
	r.pcount = 0;
	s = print_to(&r, 0);
	assert_string_equal(s, "GREY|192.0.2.1|he??lo|a@b|c|d|1|2|3|4|0\n");
	free(s);
	s = print_to(&r, 1);
	assert_string_equal(s, "{\"type\":\"GREY\",\"ip\":\"192.0.2.1\","
	    "\"helo\":\"he\\u000d\\u000alo\",\"from\":\"a@b\",\"to\":\"c|d\","
	    "\"first\":1,\"pass\":2,\"expire\":3,\"bcount\":4,\"pcount\":0}\n");
	free(s);
	r.type = GDB_WHITE;
	s = print_to(&r, 0);
	assert_string_equal(s, "WHITE|192.0.2.1|||1|2|3|4|0\n");
	free(s);
	r.type = GDB_TRAPPED;
	r.pcount = -1;
	s = print_to(&r, 0);
	assert_string_equal(s, "TRAPPED|192.0.2.1|3\n");
	free(s);
	r.type = GDB_SPAMTRAP;
	strlcpy(r.to, "trap@example.com", sizeof(r.to));
	r.pcount = -2;
	s = print_to(&r, 0);
	assert_string_equal(s, "SPAMTRAP|trap@example.com\n");
	free(s);
	s = print_to(&r, 1);
	assert_string_equal(s, "{\"type\":\"SPAMTRAP\",\"address\":"
	    "\"trap@example.com\",\"first\":1,\"pass\":2,\"expire\":3,"
	    "\"bcount\":4,\"pcount\":-2}\n");
	free(s);
}

/* test_safe - message copies: non-printables as '?', long values cut */
static void
test_safe(void **state)
{
	char out[8];

	(void)state;
	assert_string_equal(greyctl_safe("a\nb\x80", out, sizeof(out)),
	    "a?b?");
	assert_string_equal(greyctl_safe("abcdefghij", out, sizeof(out)),
	    "abcd...");
	assert_string_equal(greyctl_safe("abcdefg", out, sizeof(out)),
	    "abcdefg");
}

/* import_str - run greyctl_import on text into dir; returns the status,
 * *out gets what it printed */
static int
import_str(const char *dir, const char *text, char **out)
{
	struct greyctl ctl;
	int oerr = 0, ret;
	size_t len;
	FILE *in;

	memset(&ctl, 0, sizeof(ctl));
	ctl.dir = dir;
	ctl.now = 1000;
	ctl.out_errno = &oerr;
	ctl.out = open_memstream(out, &len);
	assert_non_null(ctl.out);
	in = fmemopen((void *)text, strlen(text), "r");
	assert_non_null(in);
	ret = greyctl_import(&ctl, in, "test");
	fclose(in);
	fclose(ctl.out);
	return ret;
}

/* test_import_all_or_nothing - a bad line: nothing written, not even the
 * directory; all good: every record there, counts printed */
static void
test_import_all_or_nothing(void **state)
{
	char dir[64], cmd[128], *out;
	struct gdb *db;
	struct gdb_err err;
	struct gdb_stats st;
	struct gdb_rec r;
	struct gdb_opts o;
	const char *good =
	    "GREY|192.0.2.1|h|<A@B.example>|c@d|1|2|3|4|0\n"
	    "WHITE|192.0.2.2|||1|2|3|1|0\n"
	    "TRAPPED|2001:db8::7|99\n"
	    "SPAMTRAP|Trap@Example.COM";	/* no final newline */

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_greyctl.%d", (int)getpid());
	assert_int_equal(import_str(dir, "WHITE|192.0.2.9|||1|2|3|1|0\n"
	    "WHITE|bad|||1|2|3|1|0\n", &out), 1);
	assert_string_equal(out, "");
	free(out);
	assert_int_equal(access(dir, F_OK), -1);

	assert_int_equal(import_str(dir, good, &out), 0);
	assert_string_equal(out,
	    "import: 1 grey, 1 white, 1 trapped, 1 spamtrap\n");
	free(out);
	memset(&o, 0, sizeof(o));
	o.readonly = 1;
	assert_int_equal(gdb_open(&db, dir, &o, &err), 0);
	assert_int_equal(gdb_stats(db, &st, &err), 0);
	assert_int_equal(st.grey + st.white + st.trapped + st.spamtrap, 4);
	memset(&r, 0, sizeof(r));
	r.type = GDB_GREY;
	strlcpy(r.ip, "192.0.2.1", sizeof(r.ip));
	strlcpy(r.helo, "h", sizeof(r.helo));
	strlcpy(r.from, "a@b.example", sizeof(r.from));
	strlcpy(r.to, "c@d", sizeof(r.to));
	assert_int_equal(gdb_get(db, &r, &err), 1);
	assert_int_equal(r.bcount, 4);
	memset(&r, 0, sizeof(r));
	r.type = GDB_SPAMTRAP;
	strlcpy(r.to, "trap@example.com", sizeof(r.to));
	assert_int_equal(gdb_get(db, &r, &err), 1);
	assert_int_equal(r.pcount, GDB_PCOUNT_SPAMTRAP);
	gdb_close(db);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* main - run the tests */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_line),
		cmocka_unit_test(test_parse_lengths),
		cmocka_unit_test(test_line_bound),
		cmocka_unit_test(test_json_str),
		cmocka_unit_test(test_print),
		cmocka_unit_test(test_safe),
		cmocka_unit_test(test_import_all_or_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
