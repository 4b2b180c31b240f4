/*
 * test_rcpt.c - trapping hosts that mail invalid users (spamd/grey_rcpt.c,
 * the cache of spamd/grey_verify.c): the valid-recipients file (good and
 * bad lines, file:line), the lookup table (case, <>, @domain, domains
 * the file does not name), the threshold (one typo, two distinct, the
 * same twice, the window, WHITE hosts), reload on error, cache expiry.
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

#include "spamd/grey_rcpt.h"

/* ---- parsing ---- */

struct parse_case {
	const char	*name;
	const char	*text;
	size_t		 len;		/* 0: strlen */
	int		 ok;
	long		 count;		/* when ok */
	const char	*err;		/* substring of the error when not */
};

static const struct parse_case parse_cases[] = {
	{ "empty file", "", 0, 1, 0, NULL },
	{ "comments and blanks only", "# users\n\n   \n\t# x\n", 0, 1, 0,
	  NULL },
	{ "addresses, <>, @domain, trailing comment",
	  "alice@example.com\n  <Bob@Example.COM>  # the boss\n"
	  "@whole.example\n", 0, 1, 3, NULL },
	{ "CRLF and no final newline", "a@b.org\r\nc@d.org", 0, 1, 2, NULL },
	{ "'#' inside an address is not a comment", "x#y@b.org\n", 0, 1, 1,
	  NULL },
	{ "duplicates count as lines", "a@b.org\nA@B.ORG\n", 0, 1, 2, NULL },
	{ "address literal", "u@[192.0.2.1]\n", 0, 1, 1, NULL },
	{ "no @", "ok@x.org\nalice\n", 0, 0, 0, "t.txt:2: no '@'" },
	{ "two words", "a@b.org c@d.org\n", 0, 0, 0,
	  "t.txt:1: more than one address" },
	{ "two @", "a@b@c.org\n", 0, 0, 0, "t.txt:1: more than one '@'" },
	{ "empty domain", "\n\na@\n", 0, 0, 0, "t.txt:3: empty domain" },
	{ "'<' alone", "<a@b.org\n", 0, 0, 0, "t.txt:1: '<' without '>'" },
	{ "empty <>", "<>\n", 0, 0, 0, "t.txt:1: empty address" },
	{ "empty label", "a@ex..ample\n", 0, 0, 0, "t.txt:1: empty label" },
	{ "bad domain character", "a@ex!ample.org\n", 0, 0, 0,
	  "t.txt:1: bad character in domain" },
	{ "leading dot", "a@.example.org\n", 0, 0, 0,
	  "t.txt:1: domain starts or ends" },
	{ "control character", "\001a@b.org\n", 0, 0, 0,
	  "t.txt:1: control character" },
	{ "NUL byte", "a@b.org\nc\0@d.org\n", 17, 0, 0, "t.txt:2: NUL byte" },
	{ "several bad lines: first named, all counted",
	  "x\ny\nok@a.org\nz\n", 0, 0, 0, "t.txt:1: no '@' (want "
	  "user@domain or @domain) (3 bad lines)" },
};

/* test_parse - every case of parse_cases */
static void
test_parse(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct rcpt_table *t = NULL;
		char err[512] = "";
		size_t len = c->len ? c->len : strlen(c->text);
		int rc;

		rc = rcpt_table_parse(&t, "t.txt", c->text, len, err,
		    sizeof(err));
		if (c->ok) {
			if (rc != 0)
				fail_msg("%s: refused: %s", c->name, err);
			assert_non_null(t);
			if (rcpt_table_count(t) != c->count)
				fail_msg("%s: count %ld, want %ld", c->name,
				    rcpt_table_count(t), c->count);
		} else {
			if (rc != -1)
				fail_msg("%s: accepted", c->name);
			assert_null(t);
			if (strstr(err, c->err) == NULL)
				fail_msg("%s: error \"%s\" lacks \"%s\"",
				    c->name, err, c->err);
		}
		rcpt_table_free(t);
	}
}

/* test_too_long - an address of 256 bytes or more is refused */
static void
test_too_long(void **state)
{
	char line[400], err[256];
	struct rcpt_table *t;

	memset(line, 'a', 300);
	memcpy(line + 300, "@b.org\n", 8);
	assert_int_equal(rcpt_table_parse(&t, "t.txt", line, strlen(line),
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "t.txt:1: address longer"));
}

/* test_load_file - a file on disk, and a missing file named */
static void
test_load_file(void **state)
{
	char path[] = "/tmp/test_rcpt.XXXXXX", err[512];
	struct rcpt_table *t;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "a@b.org\nbad\n", 12), 12);
	close(fd);
	assert_int_equal(rcpt_table_load(&t, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: no '@'"));
	assert_non_null(strstr(err, path));
	unlink(path);
	assert_int_equal(rcpt_table_load(&t, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "open"));
}

/* ---- lookups ---- */

struct lookup_case {
	const char		*addr;
	enum rcpt_verdict	 want;
};

static const char lookup_file[] =
	"alice@example.com\nBob@Example.com\n@whole.example\n"
	"carol@other.org\n@other.org\n";

static const struct lookup_case lookup_cases[] = {
	{ "alice@example.com", RCPT_VALID },
	{ "ALICE@EXAMPLE.COM", RCPT_VALID },
	{ "<bob@example.com>", RCPT_VALID },
	{ " <BOB@example.COM> ", RCPT_VALID },
	{ "x@example.com", RCPT_INVALID },
	{ "alice2@example.com", RCPT_INVALID },
	{ "anyone@whole.example", RCPT_VALID },
	{ "Who@Whole.Example", RCPT_VALID },
	{ "x@sub.whole.example", RCPT_NOT_COVERED },
	{ "x@unknown.net", RCPT_NOT_COVERED },
	{ "postmaster", RCPT_NOT_COVERED },
	{ "", RCPT_NOT_COVERED },
	{ "carol@other.org", RCPT_VALID },
	/* @other.org makes the whole domain valid, address lines or not */
	{ "dave@other.org", RCPT_VALID },
	{ "alice@example.com.evil", RCPT_NOT_COVERED },
};

/* test_lookup - every case of lookup_cases on lookup_file */
static void
test_lookup(void **state)
{
	struct rcpt_table *t;
	char err[256];
	size_t i;

	assert_int_equal(rcpt_table_parse(&t, "l.txt", lookup_file,
	    strlen(lookup_file), err, sizeof(err)), 0);
	for (i = 0; i < sizeof(lookup_cases) / sizeof(lookup_cases[0]); i++)
		if (rcpt_table_lookup(t, lookup_cases[i].addr) !=
		    lookup_cases[i].want)
			fail_msg("%s: got %d, want %d", lookup_cases[i].addr,
			    rcpt_table_lookup(t, lookup_cases[i].addr),
			    lookup_cases[i].want);
	assert_int_equal(rcpt_table_lookup(NULL, "a@b.org"), RCPT_NOT_COVERED);
	rcpt_table_free(t);
}

/* test_lookup_many - 200,000 addresses (the table grows many times):
 * each is found, near misses are not */
static void
test_lookup_many(void **state)
{
	const long n = 200000;
	struct rcpt_table *t;
	char *buf, err[256], a[64];
	size_t len = 0;
	long i;

	buf = malloc((size_t)n * 32);
	assert_non_null(buf);
	for (i = 0; i < n; i++)
		len += (size_t)sprintf(buf + len, "user%ld@d%ld.example\n", i,
		    i % 100);
	assert_int_equal(rcpt_table_parse(&t, "big", buf, len, err,
	    sizeof(err)), 0);
	assert_int_equal(rcpt_table_count(t), n);
	for (i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "USER%ld@d%ld.example", i, i % 100);
		assert_int_equal(rcpt_table_lookup(t, a), RCPT_VALID);
		snprintf(a, sizeof(a), "user%ld@d%ld.example", i,
		    (i + 1) % 100);
		assert_int_equal(rcpt_table_lookup(t, a), RCPT_INVALID);
	}
	rcpt_table_free(t);
	free(buf);
}

/* ---- the counter ---- */

/* One RCPT to an invalid recipient and what rcpt_count_add says. */
struct step {
	const char	*ip;
	const char	*to;
	int64_t		 t;
	int		 want;		/* 1 trapped */
	const char	*list;		/* when trapped */
};

struct count_case {
	const char	*name;
	int		 threshold;
	int64_t		 window;
	long		 max;
	struct step	 steps[8];	/* until ip NULL */
};

static const struct count_case count_cases[] = {
	{ "one typo does not trap", 2, 100, 0, {
	  { "192.0.2.1", "jdoe@x.org", 0, 0, NULL }, { NULL } } },
	{ "two distinct invalid trap", 2, 100, 0, {
	  { "192.0.2.1", "a@x.org", 0, 0, NULL },
	  { "192.0.2.1", "b@x.org", 50, 1, "a@x.org,b@x.org" }, { NULL } } },
	{ "the same invalid twice does not", 2, 100, 0, {
	  { "192.0.2.1", "a@x.org", 0, 0, NULL },
	  { "192.0.2.1", "a@x.org", 10, 0, NULL },
	  { "192.0.2.1", "a@x.org", 20, 0, NULL },
	  { "192.0.2.1", "b@x.org", 30, 1, "a@x.org,b@x.org" }, { NULL } } },
	{ "the first left the window", 2, 100, 0, {
	  { "192.0.2.1", "a@x.org", 0, 0, NULL },
	  { "192.0.2.1", "b@x.org", 100, 0, NULL },
	  { "192.0.2.1", "c@x.org", 150, 1, "b@x.org,c@x.org" }, { NULL } } },
	{ "clients are counted apart", 2, 100, 0, {
	  { "192.0.2.1", "a@x.org", 0, 0, NULL },
	  { "192.0.2.2", "b@x.org", 1, 0, NULL },
	  { "2001:db8::1", "c@x.org", 2, 0, NULL },
	  { "2001:db8::1", "d@x.org", 3, 1, "c@x.org,d@x.org" }, { NULL } } },
	{ "threshold 1 is strict", 1, 100, 0, {
	  { "192.0.2.1", "a@x.org", 0, 1, "a@x.org" }, { NULL } } },
	{ "after a trap the count starts over", 2, 100, 0, {
	  { "192.0.2.1", "a@x.org", 0, 0, NULL },
	  { "192.0.2.1", "b@x.org", 1, 1, "a@x.org,b@x.org" },
	  { "192.0.2.1", "c@x.org", 2, 0, NULL }, { NULL } } },
	{ "threshold 3", 3, 100, 0, {
	  { "192.0.2.1", "a@x.org", 0, 0, NULL },
	  { "192.0.2.1", "b@x.org", 1, 0, NULL },
	  { "192.0.2.1", "b@x.org", 2, 0, NULL },
	  { "192.0.2.1", "c@x.org", 3, 1, "a@x.org,b@x.org,c@x.org" },
	  { NULL } } },
	{ "oldest client dropped when full", 2, 100, 2, {
	  { "192.0.2.1", "a@x.org", 0, 0, NULL },
	  { "192.0.2.2", "a@x.org", 1, 0, NULL },
	  { "192.0.2.3", "a@x.org", 2, 0, NULL },
	  { "192.0.2.1", "b@x.org", 3, 0, NULL },
	  { "192.0.2.3", "b@x.org", 4, 1, "a@x.org,b@x.org" }, { NULL } } },
};

/* test_count - every case of count_cases */
static void
test_count(void **state)
{
	size_t i, j;

	for (i = 0; i < sizeof(count_cases) / sizeof(count_cases[0]); i++) {
		const struct count_case *c = &count_cases[i];
		struct rcpt_count *rc = rcpt_count_new(c->threshold, c->window,
		    c->max);

		assert_non_null(rc);
		for (j = 0; c->steps[j].ip != NULL; j++) {
			const struct step *s = &c->steps[j];
			char list[1024] = "";
			int got = rcpt_count_add(rc, s->ip, s->to, s->t, list,
			    sizeof(list));

			if (got != s->want)
				fail_msg("%s: step %zu: got %d, want %d",
				    c->name, j, got, s->want);
			if (got == 1 && strcmp(list, s->list) != 0)
				fail_msg("%s: step %zu: list %s, want %s",
				    c->name, j, list, s->list);
		}
		rcpt_count_free(rc);
	}
}

/* test_forget - a client that became WHITE starts from nothing */
static void
test_forget(void **state)
{
	struct rcpt_count *rc = rcpt_count_new(2, 100, 0);
	char list[256];

	assert_int_equal(rcpt_count_add(rc, "192.0.2.1", "a@x.org", 0, list,
	    sizeof(list)), 0);
	assert_int_equal(rcpt_count_clients(rc), 1);
	rcpt_count_forget(rc, "192.0.2.1");
	rcpt_count_forget(rc, "192.0.2.99");
	assert_int_equal(rcpt_count_clients(rc), 0);
	assert_int_equal(rcpt_count_add(rc, "192.0.2.1", "b@x.org", 1, list,
	    sizeof(list)), 0);
	rcpt_count_free(rc);
}

/* ---- the writer's check, with fake store hooks ---- */

struct fake {
	const char	*white_ip;	/* this one is WHITE */
	int		 fail;		/* white() says -1 */
	int		 traps;
	char		 ip[64];
	char		 rcpts[1024];
};

/* fake_white - the WHITE check of struct fake */
static int
fake_white(void *arg, const char *ip, int64_t now)
{
	struct fake *f = arg;

	if (f->fail)
		return -1;
	return f->white_ip != NULL && strcmp(ip, f->white_ip) == 0;
}

/* fake_trap - remember the last trap */
static void
fake_trap(void *arg, const char *ip, int64_t now, const char *rcpts)
{
	struct fake *f = arg;

	f->traps++;
	strlcpy(f->ip, ip, sizeof(f->ip));
	strlcpy(f->rcpts, rcpts, sizeof(f->rcpts));
}

/* write_file - replace path's contents with s */
static void
write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(s, f);
	fclose(f);
}

/* test_writer_check - grey_rcpt_tuple with a file: valid, invalid,
 * not covered, WHITE hosts, store errors, results that are not grey */
static void
test_writer_check(void **state)
{
	char path[] = "/tmp/test_rcpt.XXXXXX", err[512];
	struct fake f = { .white_ip = "192.0.2.9" };
	struct grey_rcpt_hooks h = { fake_white, fake_trap, &f };
	struct grey_rcpt_conf c = { .window = 3600 };
	struct grey_rcpt *gr;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	write_file(path, "alice@example.com\nbob@example.com\n");
	c.valid_file = path;
	assert_int_equal(grey_rcpt_new(&gr, NULL, &c, &h, err, sizeof(err)),
	    0);
	assert_non_null(gr);

	/* valid recipients and domains the file does not name: nothing */
	grey_rcpt_tuple(gr, "192.0.2.1", "<alice@example.com>", GDB_R_NEW, 0);
	grey_rcpt_tuple(gr, "192.0.2.1", "<Bob@Example.com>", GDB_R_GREY, 1);
	grey_rcpt_tuple(gr, "192.0.2.1", "<x@elsewhere.org>", GDB_R_NEW, 2);
	grey_rcpt_tuple(gr, "192.0.2.1", "<y@elsewhere.org>", GDB_R_NEW, 3);
	grey_rcpt_tuple(gr, "192.0.2.1", "postmaster", GDB_R_NEW, 3);
	assert_int_equal(f.traps, 0);

	/* one typo; then the same again; then a second one traps */
	grey_rcpt_tuple(gr, "192.0.2.1", "<alcie@example.com>", GDB_R_NEW, 4);
	grey_rcpt_tuple(gr, "192.0.2.1", "<ALCIE@example.com>", GDB_R_GREY, 5);
	assert_int_equal(f.traps, 0);
	grey_rcpt_tuple(gr, "192.0.2.1", "<xq7r@example.com>", GDB_R_NEW, 6);
	assert_int_equal(f.traps, 1);
	assert_string_equal(f.ip, "192.0.2.1");
	assert_string_equal(f.rcpts, "alcie@example.com,xq7r@example.com");

	/* a WHITE host is never trapped */
	grey_rcpt_tuple(gr, "192.0.2.9", "<a1@example.com>", GDB_R_NEW, 7);
	grey_rcpt_tuple(gr, "192.0.2.9", "<a2@example.com>", GDB_R_NEW, 8);
	grey_rcpt_tuple(gr, "192.0.2.9", "<a3@example.com>", GDB_R_NEW, 9);
	assert_int_equal(f.traps, 1);

	/* results other than NEW/GREY are not judged; WHITE clears */
	grey_rcpt_tuple(gr, "192.0.2.2", "<b1@example.com>", GDB_R_NEW, 10);
	grey_rcpt_tuple(gr, "192.0.2.2", "<b2@example.com>", GDB_R_WHITE, 11);
	grey_rcpt_tuple(gr, "192.0.2.2", "<b3@example.com>", GDB_R_TRAP, 12);
	grey_rcpt_tuple(gr, "192.0.2.2", "<b4@example.com>", 0, 12);
	assert_int_equal(f.traps, 0 + 1);
	grey_rcpt_tuple(gr, "192.0.2.2", "<b5@example.com>", GDB_R_NEW, 13);
	assert_int_equal(f.traps, 1);

	/* a store error counts nothing */
	f.fail = 1;
	grey_rcpt_tuple(gr, "192.0.2.3", "<c1@example.com>", GDB_R_NEW, 14);
	grey_rcpt_tuple(gr, "192.0.2.3", "<c2@example.com>", GDB_R_NEW, 15);
	assert_int_equal(f.traps, 1);
	f.fail = 0;

	/* client bytes reach the trap list escaped */
	grey_rcpt_tuple(gr, "192.0.2.4", "<a\"=b@example.com>", GDB_R_NEW, 16);
	grey_rcpt_tuple(gr, "192.0.2.4", "<c d@example.com>", GDB_R_NEW, 17);
	assert_int_equal(f.traps, 2);
	assert_null(strchr(f.rcpts, ' '));
	assert_null(strchr(f.rcpts, '"'));
	assert_null(strchr(f.rcpts, '='));

	/* reload: a bad file keeps the old table, a good one replaces it */
	write_file(path, "alice@example.com\nnot an address\n");
	grey_rcpt_reload(gr);
	grey_rcpt_tuple(gr, "192.0.2.5", "<d1@example.com>", GDB_R_NEW, 20);
	grey_rcpt_tuple(gr, "192.0.2.5", "<d2@example.com>", GDB_R_NEW, 21);
	assert_int_equal(f.traps, 3);
	write_file(path, "@example.com\n");
	grey_rcpt_reload(gr);
	grey_rcpt_tuple(gr, "192.0.2.6", "<e1@example.com>", GDB_R_NEW, 22);
	grey_rcpt_tuple(gr, "192.0.2.6", "<e2@example.com>", GDB_R_NEW, 23);
	assert_int_equal(f.traps, 3);
	grey_rcpt_counters(gr);
	grey_rcpt_free(gr);

	/* a bad file at start is an error naming file:line */
	write_file(path, "ok@a.org\n\nbad\n");
	assert_int_equal(grey_rcpt_new(&gr, NULL, &c, &h, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, ":3: no '@'"));
	unlink(path);

	/* neither file nor MX: nothing to do, NULL is safe everywhere */
	c.valid_file = NULL;
	assert_int_equal(grey_rcpt_new(&gr, NULL, &c, &h, err, sizeof(err)),
	    0);
	assert_null(gr);
	grey_rcpt_tuple(NULL, "192.0.2.1", "a@b.org", GDB_R_NEW, 0);
	grey_rcpt_reload(NULL);
	grey_rcpt_free(NULL);
}

/* ---- the verifier's cache ---- */

/* test_vcache - answers expire at their time; the oldest go when full */
static void
test_vcache(void **state)
{
	struct grey_vcache *c = grey_vcache_new(3);

	assert_non_null(c);
	assert_int_equal(grey_vcache_get(c, "a@x.org", 0), VERIFY_UNKNOWN);
	/* valid for a day, invalid for an hour */
	assert_int_equal(grey_vcache_put(c, "a@x.org", VERIFY_VALID, 86400,
	    0), 0);
	assert_int_equal(grey_vcache_put(c, "b@x.org", VERIFY_INVALID, 3600,
	    0), 0);
	assert_int_equal(grey_vcache_get(c, "a@x.org", 3599), VERIFY_VALID);
	assert_int_equal(grey_vcache_get(c, "b@x.org", 3599), VERIFY_INVALID);
	assert_int_equal(grey_vcache_get(c, "b@x.org", 3600), VERIFY_UNKNOWN);
	assert_int_equal(grey_vcache_count(c), 1);
	assert_int_equal(grey_vcache_get(c, "a@x.org", 86399), VERIFY_VALID);
	assert_int_equal(grey_vcache_get(c, "a@x.org", 86400),
	    VERIFY_UNKNOWN);
	assert_int_equal(grey_vcache_count(c), 0);

	/* a new answer replaces the old one */
	grey_vcache_put(c, "a@x.org", VERIFY_VALID, 100, 0);
	grey_vcache_put(c, "a@x.org", VERIFY_INVALID, 50, 1);
	assert_int_equal(grey_vcache_count(c), 1);
	assert_int_equal(grey_vcache_get(c, "a@x.org", 2), VERIFY_INVALID);

	/* full: the oldest goes */
	grey_vcache_put(c, "b@x.org", VERIFY_VALID, 100, 2);
	grey_vcache_put(c, "c@x.org", VERIFY_VALID, 100, 3);
	grey_vcache_put(c, "d@x.org", VERIFY_VALID, 100, 4);
	assert_int_equal(grey_vcache_count(c), 3);
	assert_int_equal(grey_vcache_get(c, "a@x.org", 5), VERIFY_UNKNOWN);
	assert_int_equal(grey_vcache_get(c, "d@x.org", 5), VERIFY_VALID);
	/* expired entries at the front make room first */
	grey_vcache_put(c, "e@x.org", VERIFY_VALID, 1000, 200);
	assert_int_equal(grey_vcache_count(c), 1);
	grey_vcache_free(c);
	grey_vcache_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_lookup_many),
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_forget),
		cmocka_unit_test(test_writer_check),
		cmocka_unit_test(test_vcache),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
