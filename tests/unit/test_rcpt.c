/*
 * test_rcpt.c - trapping hosts that mail invalid users (spamd/writer/grey_rcpt.c,
 * the cache of spamd/writer/grey_verify.c): the valid-recipients file (good and
 * bad lines, file:line), the lookup table (case, <>, @domain, domains
 * the file does not name), the threshold (one typo, two distinct, the
 * same twice, the window, WHITE hosts), reload on error, cache expiry,
 * and the MX prober against a scripted SMTP server in this process
 * (2xx/5xx/4xx, reuse, coalescing, cache, rotation, timeout, MX down,
 * bad replies, rate limit, --verify-mx syntax).
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

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "spamd/writer/grey_rcpt.h"

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

/* test_too_long - an address of 1,024 bytes or more is refused */
static void
test_too_long(void **state)
{
	char line[1200], err[256];
	struct rcpt_table *t;

	memset(line, 'a', 1100);
	memcpy(line + 1100, "@b.org\n", 8);
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

/* ---- the prober against a scripted MX in this process ---- */

/* The fake MX: per RCPT address a reply, counters of what it saw. */
struct fmx {
	struct event_base	*base;
	struct evconnlistener	*lis;
	int			 port;
	const char		*banner;	/* "220 ..." by default */
	long			 conns, rcpts, rsets, quits, ehlos;
	int			 open;		/* connections now */
	struct bufferevent	*bev[32];	/* open ones, freed at the end */
};

/* fmx_reply - what the fake MX answers to RCPT TO:<addr> (NULL: never) */
static const char *
fmx_reply(const char *addr)
{
	if (strcmp(addr, "alice@mx.test") == 0 ||
	    strcmp(addr, "bob@mx.test") == 0)
		return "250 2.1.5 Ok\r\n";
	if (strcmp(addr, "busy@mx.test") == 0)
		return "450 4.2.1 try again later\r\n";
	if (strcmp(addr, "slow@mx.test") == 0)
		return NULL;
	if (strcmp(addr, "junk@mx.test") == 0)
		return "hello there\r\n";
	if (strcmp(addr, "multi@mx.test") == 0)
		return "550-5.1.1 no such\r\n550-user here\r\n550 5.1.1 bye\r\n";
	return "550 5.1.1 <x>: Recipient address rejected: User unknown\r\n";
}

/* fmx_read - one SMTP command line at a time */
static void
fmx_read(struct bufferevent *bev, void *arg)
{
	struct fmx *m = arg;
	struct evbuffer *out = bufferevent_get_output(bev);
	char *line;
	size_t n;

	while ((line = evbuffer_readln(bufferevent_get_input(bev), &n,
	    EVBUFFER_EOL_CRLF)) != NULL) {
		if (strncmp(line, "EHLO ", 5) == 0) {
			m->ehlos++;
			evbuffer_add_printf(out, "250-mx.test\r\n250-PIPELINING"
			    "\r\n250 8BITMIME\r\n");
		} else if (strcmp(line, "MAIL FROM:<>") == 0)
			evbuffer_add_printf(out, "250 2.1.0 Ok\r\n");
		else if (strncmp(line, "RCPT TO:<", 9) == 0 && n > 10) {
			const char *r;

			line[n - 1] = '\0';
			m->rcpts++;
			if ((r = fmx_reply(line + 9)) != NULL)
				evbuffer_add_printf(out, "%s", r);
		} else if (strcmp(line, "RSET") == 0) {
			m->rsets++;
			evbuffer_add_printf(out, "250 2.0.0 Ok\r\n");
		} else if (strcmp(line, "QUIT") == 0) {
			m->quits++;
			evbuffer_add_printf(out, "221 2.0.0 Bye\r\n");
		} else
			evbuffer_add_printf(out, "502 5.5.2 what\r\n");
		free(line);
	}
}

/* fmx_event - the client went away */
static void
fmx_event(struct bufferevent *bev, short what, void *arg)
{
	struct fmx *m = arg;
	int i;

	for (i = 0; i < 32; i++)
		if (m->bev[i] == bev)
			m->bev[i] = NULL;
	m->open--;
	bufferevent_free(bev);
}

/* fmx_stop - stop listening (if still) and drop open connections */
static void
fmx_stop(struct fmx *m)
{
	int i;

	if (m->lis != NULL)
		evconnlistener_free(m->lis);
	m->lis = NULL;
	for (i = 0; i < 32; i++)
		if (m->bev[i] != NULL)
			bufferevent_free(m->bev[i]);
}

/* fmx_accept - a new client: the banner */
static void
fmx_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int len, void *arg)
{
	struct fmx *m = arg;
	struct bufferevent *bev = bufferevent_socket_new(m->base, fd,
	    BEV_OPT_CLOSE_ON_FREE);

	m->conns++;
	m->open++;
	for (int i = 0; i < 32; i++)
		if (m->bev[i] == NULL) {
			m->bev[i] = bev;
			break;
		}
	bufferevent_setcb(bev, fmx_read, NULL, fmx_event, m);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	evbuffer_add_printf(bufferevent_get_output(bev), "%s\r\n",
	    m->banner ? m->banner : "220 mx.test ESMTP");
}

/* fmx_start - listen on an ephemeral loopback port */
static void
fmx_start(struct fmx *m, struct event_base *base)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);

	memset(m, 0, sizeof(*m));
	m->base = base;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	m->lis = evconnlistener_new_bind(base, fmx_accept, m,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
	    (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(m->lis);
	getsockname(evconnlistener_get_fd(m->lis), (struct sockaddr *)&sin,
	    &sl);
	m->port = ntohs(sin.sin_port);
}

/* Answers collected by the test. */
struct answers {
	struct event_base	*base;
	int			 left;
	int			 n;
	int			 res[16];
	char			 addr[16][64];
};

/* ans_cb - record one answer; stop the loop when all are in */
static void
ans_cb(int res, const char *addr, void *arg)
{
	struct answers *a = arg;

	if (a->n < 16) {
		a->res[a->n] = res;
		strlcpy(a->addr[a->n], addr, sizeof(a->addr[0]));
	}
	a->n++;
	if (--a->left == 0)
		event_base_loopbreak(a->base);
}

/* ask - one query; 1 when it is pending (then a->left counts it) */
static int
ask(struct grey_verify *v, struct answers *a, const char *addr, int *res)
{
	int r = grey_verify_query(v, addr, ans_cb, a);

	if (res != NULL)
		*res = r;
	if (r != VERIFY_PENDING)
		return 0;
	a->left++;
	return 1;
}

/* run - the loop until every pending answer is in, at most secs */
static void
run(struct event_base *base, int secs)
{
	struct timeval tv = { secs, 0 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* run_for - the loop for ms milliseconds, whatever happens */
static void
run_for(struct event_base *base, int ms)
{
	struct timeval tv = { 0, ms * 1000 };

	event_base_loopexit(base, &tv);
	while (event_base_dispatch(base) == 0 && !event_base_got_exit(base))
		;
}

/* verifier - a verifier for the fake MX (port; 0 = m's) */
static struct grey_verify *
verifier(struct event_base *base, int port, int pool, int per_conn,
    int timeout, double rate)
{
	struct grey_verify_conf c = { .helo = "spamd.test", .pool = pool,
	    .per_conn = per_conn, .timeout_secs = timeout, .rate = rate };
	struct grey_verify *v;
	char mx[64], err[256];

	snprintf(mx, sizeof(mx), "127.0.0.1:%d", port);
	c.mx = mx;
	if (grey_verify_new(&v, base, &c, err, sizeof(err)) == -1)
		fail_msg("grey_verify_new: %s", err);
	return v;
}

/* test_verify_answers - 2xx valid, 5xx invalid (multi-line too), 4xx
 * unknown; one reused connection; the cache answers the second time */
static void
test_verify_answers(void **state)
{
	struct event_base *base = event_base_new();
	struct answers a = { .base = base };
	struct grey_verify_counts n;
	struct grey_verify *v;
	struct fmx m;
	int r;

	fmx_start(&m, base);
	v = verifier(base, m.port, 1, 0, 10, 0);
	assert_true(ask(v, &a, "alice@mx.test", NULL));
	assert_true(ask(v, &a, "xq7r@mx.test", NULL));
	assert_true(ask(v, &a, "busy@mx.test", NULL));
	assert_true(ask(v, &a, "multi@mx.test", NULL));
	run(base, 10);
	assert_int_equal(a.n, 4);
	assert_string_equal(a.addr[0], "alice@mx.test");
	assert_int_equal(a.res[0], VERIFY_VALID);
	assert_int_equal(a.res[1], VERIFY_INVALID);
	assert_int_equal(a.res[2], VERIFY_UNKNOWN);
	assert_int_equal(a.res[3], VERIFY_INVALID);
	assert_int_equal(m.conns, 1);
	assert_int_equal(m.ehlos, 1);
	assert_int_equal(m.rcpts, 4);
	/* the last RSET leaves after the last answer */
	run_for(base, 100);
	assert_int_equal(m.rsets, 4);

	/* cached: answered at once, no RCPT; 4xx is not cached */
	assert_false(ask(v, &a, "alice@mx.test", &r));
	assert_int_equal(r, VERIFY_VALID);
	assert_false(ask(v, &a, "xq7r@mx.test", &r));
	assert_int_equal(r, VERIFY_INVALID);
	assert_true(ask(v, &a, "busy@mx.test", NULL));
	run(base, 10);
	assert_int_equal(m.rcpts, 5);
	grey_verify_counts(v, &n);
	assert_int_equal(n.hits, 2);
	assert_int_equal(n.probes, 5);
	assert_int_equal(n.connects, 1);

	/* bytes that could end the command line are never sent */
	assert_false(ask(v, &a, "a\r\nDATA@mx.test", &r));
	assert_int_equal(r, VERIFY_UNKNOWN);
	assert_false(ask(v, &a, "a>b@mx.test", &r));
	assert_false(ask(v, &a, "", &r));
	assert_int_equal(m.rcpts, 5);

	/* idle connection: QUIT on free is not needed, the MX sees EOF */
	grey_verify_free(v);
	run_for(base, 50);
	assert_int_equal(m.open, 0);
	fmx_stop(&m);
	event_base_free(base);
}

/* test_verify_coalesce - queries for one address share one probe */
static void
test_verify_coalesce(void **state)
{
	struct event_base *base = event_base_new();
	struct answers a = { .base = base };
	struct grey_verify *v;
	struct fmx m;

	fmx_start(&m, base);
	v = verifier(base, m.port, 2, 0, 10, 0);
	assert_true(ask(v, &a, "u1@mx.test", NULL));
	assert_true(ask(v, &a, "u1@mx.test", NULL));
	assert_true(ask(v, &a, "u1@mx.test", NULL));
	run(base, 10);
	assert_int_equal(a.n, 3);
	assert_int_equal(a.res[0], VERIFY_INVALID);
	assert_int_equal(a.res[2], VERIFY_INVALID);
	assert_int_equal(m.rcpts, 1);

	/* at most 256 queries wait on one probe; more are answered unknown */
	{
		struct answers b = { .base = base };
		int i, pending = 0, r;

		for (i = 0; i < 300; i++)
			pending += ask(v, &b, "u2@mx.test", &r);
		assert_int_equal(pending, 256);
		assert_int_equal(r, VERIFY_UNKNOWN);
		run(base, 10);
		assert_int_equal(b.n, 256);
		assert_int_equal(m.rcpts, 2);
	}
	grey_verify_free(v);
	fmx_stop(&m);
	event_base_free(base);
}

/* test_verify_rotate - after per_conn probes a connection says QUIT and
 * a new one takes over */
static void
test_verify_rotate(void **state)
{
	struct event_base *base = event_base_new();
	struct answers a = { .base = base };
	struct grey_verify *v;
	char addr[64];
	struct fmx m;
	int i;

	fmx_start(&m, base);
	v = verifier(base, m.port, 1, 2, 10, 0);
	for (i = 0; i < 5; i++) {
		snprintf(addr, sizeof(addr), "r%d@mx.test", i);
		assert_true(ask(v, &a, addr, NULL));
	}
	run(base, 10);
	assert_int_equal(a.n, 5);
	assert_int_equal(m.rcpts, 5);
	assert_int_equal(m.conns, 3);
	assert_true(m.quits >= 2);
	grey_verify_free(v);
	fmx_stop(&m);
	event_base_free(base);
}

/* test_verify_failures - a timeout, a malformed reply and a refused
 * greeting answer unknown; an unreachable MX answers unknown and, for
 * a while, new queries at once */
static void
test_verify_failures(void **state)
{
	struct event_base *base = event_base_new();
	struct answers a = { .base = base };
	struct grey_verify_counts n;
	struct grey_verify *v;
	struct fmx m;
	int r, port;

	fmx_start(&m, base);
	v = verifier(base, m.port, 1, 0, 1, 0);
	assert_true(ask(v, &a, "slow@mx.test", NULL));
	run(base, 10);
	assert_int_equal(a.res[0], VERIFY_UNKNOWN);
	grey_verify_counts(v, &n);
	assert_int_equal(n.timeouts, 1);
	/* the next probe works, on a new connection */
	assert_true(ask(v, &a, "alice@mx.test", NULL));
	run(base, 10);
	assert_int_equal(a.res[1], VERIFY_VALID);
	assert_int_equal(m.conns, 2);
	assert_true(ask(v, &a, "junk@mx.test", NULL));
	run(base, 10);
	assert_int_equal(a.res[2], VERIFY_UNKNOWN);
	grey_verify_free(v);

	/* a refused greeting: unknown, counted as a connect error */
	m.banner = "554 5.7.1 go away";
	v = verifier(base, m.port, 1, 0, 5, 0);
	assert_true(ask(v, &a, "alice@mx.test", NULL));
	run(base, 10);
	assert_int_equal(a.res[3], VERIFY_UNKNOWN);
	grey_verify_counts(v, &n);
	assert_int_equal(n.connect_errors, 1);
	grey_verify_free(v);

	/* nobody listening */
	port = m.port;
	fmx_stop(&m);
	v = verifier(base, port, 2, 0, 5, 0);
	assert_true(ask(v, &a, "alice@mx.test", NULL));
	assert_true(ask(v, &a, "bob@mx.test", NULL));
	run(base, 10);
	assert_int_equal(a.n, 6);
	assert_int_equal(a.res[4], VERIFY_UNKNOWN);
	assert_int_equal(a.res[5], VERIFY_UNKNOWN);
	/* backing off: answered at once */
	assert_false(ask(v, &a, "carol@mx.test", &r));
	assert_int_equal(r, VERIFY_UNKNOWN);
	grey_verify_counts(v, &n);
	assert_int_equal(n.dropped, 1);
	assert_true(n.connect_errors >= 1);
	grey_verify_free(v);
	event_base_free(base);
}

/* test_verify_free_pending - freeing answers what waits, unknown */
static void
test_verify_free_pending(void **state)
{
	struct event_base *base = event_base_new();
	struct answers a = { .base = base };
	struct grey_verify *v;
	struct fmx m;

	fmx_start(&m, base);
	v = verifier(base, m.port, 1, 0, 10, 0);
	assert_true(ask(v, &a, "slow@mx.test", NULL));
	assert_true(ask(v, &a, "alice@mx.test", NULL));
	run_for(base, 100);
	assert_int_equal(a.n, 0);
	grey_verify_free(v);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.res[0], VERIFY_UNKNOWN);
	assert_int_equal(a.res[1], VERIFY_UNKNOWN);
	fmx_stop(&m);
	event_base_free(base);
}

/* test_verify_rate - at 2 probes/s no more than the bucket's 2 (plus
 * what refills) leave in the first 300 ms, however fast the machine */
static void
test_verify_rate(void **state)
{
	struct event_base *base = event_base_new();
	struct answers a = { .base = base };
	struct grey_verify_counts n;
	struct grey_verify *v;
	char addr[64];
	struct fmx m;
	int i;

	fmx_start(&m, base);
	v = verifier(base, m.port, 2, 0, 10, 2);
	for (i = 0; i < 6; i++) {
		snprintf(addr, sizeof(addr), "q%d@mx.test", i);
		assert_true(ask(v, &a, addr, NULL));
	}
	run_for(base, 300);
	grey_verify_counts(v, &n);
	assert_true(n.probes <= 2);
	assert_true(m.rcpts <= 2);
	grey_verify_free(v);
	fmx_stop(&m);
	event_base_free(base);
}

/* test_verify_mx_syntax - --verify-mx values */
static void
test_verify_mx_syntax(void **state)
{
	static const struct {
		const char	*mx;
		int		 ok;
		const char	*err;
	} cases[] = {
		{ "127.0.0.1", 1, NULL },
		{ "127.0.0.1:2525", 1, NULL },
		{ "[::1]:2525", 1, NULL },
		{ "[::1]", 1, NULL },
		{ "::1", 1, NULL },
		{ "127.0.0.1:0", 0, "port 0" },
		{ "127.0.0.1:70000", 0, "port 70000" },
		{ "127.0.0.1:x", 0, "port x" },
		{ "[::1", 0, "want [address]:port" },
		{ "[::1]x", 0, "want [address]:port" },
		{ ":25", 0, "empty host" },
		{ "", 0, "empty host" },
	};
	struct event_base *base = event_base_new();
	struct grey_verify_conf c = { 0 };
	struct grey_verify *v;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		c.mx = cases[i].mx;
		if (grey_verify_new(&v, base, &c, err, sizeof(err)) !=
		    (cases[i].ok ? 0 : -1))
			fail_msg("%s: %s", cases[i].mx, cases[i].ok ?
			    err : "accepted");
		if (!cases[i].ok && strstr(err, cases[i].err) == NULL)
			fail_msg("%s: error \"%s\" lacks \"%s\"", cases[i].mx,
			    err, cases[i].err);
		if (!cases[i].ok && strstr(err, "--verify-mx") == NULL)
			fail_msg("%s: error \"%s\" does not name the flag",
			    cases[i].mx, err);
		grey_verify_free(cases[i].ok ? v : NULL);
	}
	event_base_free(base);
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
		cmocka_unit_test(test_verify_answers),
		cmocka_unit_test(test_verify_coalesce),
		cmocka_unit_test(test_verify_rotate),
		cmocka_unit_test(test_verify_failures),
		cmocka_unit_test(test_verify_free_pending),
		cmocka_unit_test(test_verify_rate),
		cmocka_unit_test(test_verify_mx_syntax),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
