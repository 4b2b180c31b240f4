/*
 * test_setup.c - spamd-setup's parts: spamd.conf (getcap) parsing and its
 * errors, list lines and whole lists, range to CIDR collapse, white
 * subtraction (checked against a bitmap on random input too), message
 * escapes, the control line (parsed back by the engine's own parser),
 * gzip, argv splitting, fetch by file and exec, and config-port delivery
 * against a real listening socket.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "spamd/common/blacklist.h"
#include "spamd/setup/setup.h"

/* --- helpers --------------------------------------------------------- */

/* Warnings collected from setup_list_parse. */
struct warns {
	char	text[16][256];
	int	n;
};

/* collect - a setup_warn_fn that keeps the texts */
static void
collect(void *arg, const char *text)
{
	struct warns *w = arg;

	if (w->n < 16)
		snprintf(w->text[w->n], sizeof(w->text[0]), "%s", text);
	w->n++;
}

/* Blocks written by setup_cidr_each, space separated. */
struct blocks {
	char	s[8192];
};

/* add_block - append one block to a struct blocks */
static int
add_block(void *arg, int af, const char *cidr)
{
	struct blocks *b = arg;
	size_t n = strlen(b->s);

	snprintf(b->s + n, sizeof(b->s) - n, "%s%s", n > 0 ? " " : "", cidr);
	return 0;
}

/* parse_lines - parse list text into a, failing on memory errors */
static void
parse_lines(const char *text, struct setup_addrs *a, struct warns *w)
{
	long nbad;

	assert_int_equal(setup_list_parse(text, strlen(text), "t", a, collect,
	    w, &nbad), 0);
}

/* cidrs - collapse a and list its blocks; "ERR:" + error when refused */
static void
cidrs(struct setup_addrs *a, struct blocks *b)
{
	char err[256];
	long n4, n6;

	b->s[0] = '\0';
	setup_collapse(a);
	if (setup_cidr_count(a, &n4, &n6, err, sizeof(err)) == -1) {
		snprintf(b->s, sizeof(b->s), "ERR:%s", err);
		return;
	}
	assert_int_equal(setup_cidr_each(a, add_block, b), 0);
}

/* --- spamd.conf ------------------------------------------------------ */

static const char conf_ok[] =
    "# a comment\n"
    "\n"
    "all:\\\n"
    "\t:dul:mine:peer:traps:white1:\n"
    "dul|dialup:\\\n"
    "\t:black:\\\n"
    "\t:msg=\"Dial-up %A: see http://x.example/ \\\"quoted\\\"\\n\\\n"
    "second line\\n\":\\\n"
    "\t:method=file:\\\n"
    "\t:file=/etc/mail/dul.txt:\n"
    "other|mine:black:msg=\"colon\\: ok %%\":method=exec:file=cat /x /y:\n"
    "peer:\\\n"
    "\t:method=https:\\\n"
    "\t:file=mx2.example.org/traps.gz:\\\n"
    "\t:tc=common:\n"
    "common:black:msg=\"peer\":method=http:\n"
    "traps:black:white@:msg=\"t\":file=/t:\n"
    "white1:\\\n"
    "\t:white:\\\n"
    "\t:method=http:\\\n"
    "\t:file=www.example.org/white.txt:\n";

/* test_conf_valid - every form of a good spamd.conf */
static void
test_conf_valid(void **state)
{
	struct setup_conf c;
	char err[512] = "";
	int r;

	(void)state;
	r = setup_conf_parse(conf_ok, strlen(conf_ok), "t.conf", &c, err,
	    sizeof(err));
	if (r != 0)
		fail_msg("parse: %s", err);
	assert_int_equal(c.n, 5);
	assert_string_equal(c.list[0].name, "dul");
	assert_int_equal(c.list[0].white, 0);
	assert_int_equal(c.list[0].method, SETUP_M_FILE);
	assert_string_equal(c.list[0].file, "/etc/mail/dul.txt");
	assert_string_equal(c.list[0].msg, "Dial-up %A: see http://x.example/ "
	    "\"quoted\"\nsecond line\n");
	assert_string_equal(c.list[0].where, "t.conf:5");
	/* found by its second name; the tag is the name all: uses */
	assert_string_equal(c.list[1].name, "mine");
	assert_int_equal(c.list[1].method, SETUP_M_EXEC);
	assert_string_equal(c.list[1].file, "cat /x /y");
	assert_string_equal(c.list[1].msg, "colon: ok %%");
	/* tc=: fields before it win (method=https over common's http) */
	assert_string_equal(c.list[2].name, "peer");
	assert_int_equal(c.list[2].method, SETUP_M_HTTPS);
	assert_string_equal(c.list[2].msg, "peer");
	assert_int_equal(c.list[3].white, 0);	/* white@ cancels */
	assert_int_equal(c.list[4].white, 1);
	assert_int_equal(c.list[4].method, SETUP_M_HTTP);
	assert_null(c.list[4].msg);
	setup_conf_free(&c);
}

/* test_conf_alias - an entry found by its alias; default method file */
static void
test_conf_alias(void **state)
{
	static const char conf[] = "all:dialup:\n"
	    "dul|dialup:black:msg=\"x\":file=/f:\n";
	struct setup_conf c;
	char err[512] = "";

	(void)state;
	if (setup_conf_parse(conf, strlen(conf), "a.conf", &c, err,
	    sizeof(err)) != 0)
		fail_msg("parse: %s", err);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.list[0].name, "dialup");
	assert_int_equal(c.list[0].method, SETUP_M_FILE);
	setup_conf_free(&c);
}

/* One bad spamd.conf and the error it must give. */
struct conf_bad {
	const char	*name;
	const char	*conf;
	const char	*want;	/* substring of the error */
};

static const struct conf_bad conf_bads[] = {
	{ "unterminated quote",
	  "all:a:\n"
	  "a:\\\n"
	  "\t:black:\\\n"
	  "\t:msg=\"oops:\\\n"
	  "\t:file=/x:\n",
	  "t.conf:4: entry 'a': unterminated quote in 'msg'" },
	{ "text after closing quote",
	  "all:a:\na:black:msg=\"x\"y:file=/x:\n",
	  "t.conf:2: entry 'a': msg: text after the closing quote" },
	{ "unknown method",
	  "all:a:\na:black:msg=\"x\":\\\n\t:method=gopher:file=/x:\n",
	  "t.conf:3: entry 'a': unknown method 'gopher'" },
	{ "ftp method",
	  "all:a:\na:black:msg=\"x\":\\\n\t:method=ftp:file=h/x:\n",
	  "t.conf:3: entry 'a': method ftp is not supported" },
	{ "ftp url",
	  "all:a:\na:black:msg=\"x\":method=http:file=ftp\\C//h/x:\n",
	  "t.conf:2: entry 'a': file=ftp://h/x: ftp is not supported" },
	{ "missing file=",
	  "all:a:\n\n# c\na:black:msg=\"x\":method=file:\n",
	  "t.conf:4: entry 'a': missing file=" },
	{ "empty file=",
	  "all:a:\na:black:msg=\"x\":file=:\n",
	  "t.conf:2: entry 'a': missing file=" },
	{ "tc loop",
	  "all:a:\na:black:msg=\"x\":file=/x:tc=b:\nb:tc=c:\nc:tc=b:\n",
	  "entry 'a': tc loop: a -> b -> c -> b" },
	{ "tc self loop",
	  "all:a:\na:tc=a:black:\n",
	  "t.conf:2: entry 'a': tc loop: a -> a" },
	{ "tc to nothing",
	  "all:a:\na:black:msg=\"x\":file=/x:tc=nope:\n",
	  "t.conf:2: entry 'a': tc=nope: entry not found" },
	{ "list entry not found",
	  "all:\\\n\t:a:zz:\na:black:msg=\"x\":file=/x:\n",
	  "t.conf:2: entry 'all': list 'zz': entry not found" },
	{ "no all entry",
	  "a:black:msg=\"x\":file=/x:\n",
	  "entry 'all': entry not found" },
	{ "black and white",
	  "all:a:\na:black:white:msg=\"x\":file=/x:\n",
	  "t.conf:2: entry 'a': both :black: and :white:" },
	{ "neither black nor white",
	  "all:a:\na:msg=\"x\":file=/x:\n",
	  "t.conf:2: entry 'a': neither :black: nor :white:" },
	{ "black without msg",
	  "all:a:\na:black:file=/x:\n",
	  "t.conf:2: entry 'a': black list without msg=" },
	{ "control character in msg",
	  "all:a:\na:black:msg=\"bell\\007\":file=/x:\n",
	  "entry 'a': message: control character" },
	{ "msg file missing",
	  "all:a:\na:black:msg=/nonexistent/msg:file=/x:\n",
	  "t.conf:2: entry 'a': msg file: /nonexistent/msg: No such file" },
	{ "list named twice",
	  "all:a:a:\na:black:msg=\"x\":file=/x:\n",
	  "t.conf:1: entry 'all': black list 'a' named twice" },
	{ "bad list name",
	  "all:a\"b:\n",
	  "entry 'all': bad list name 'a\"b'" },
	{ "record without a name",
	  "all:a:\n:black:\n",
	  "t.conf:2: record without a name" },
	{ "NUL byte",
	  "all:a:\n\nx\0y\n",
	  "t.conf:3: NUL byte in file" },
};

/* test_conf_errors - every error names file, line and entry; an error in
 * a list's entry is that list's (the parse goes on), the rest fail it */
static void
test_conf_errors(void **state)
{
	struct setup_conf c;
	char err[512];
	size_t i, j, len;
	int r;

	(void)state;
	for (i = 0; i < sizeof(conf_bads) / sizeof(conf_bads[0]); i++) {
		const struct conf_bad *t = &conf_bads[i];

		len = strlen(t->conf);
		if (strcmp(t->name, "NUL byte") == 0)
			len = 12;
		err[0] = '\0';
		r = setup_conf_parse(t->conf, len, "t.conf", &c, err,
		    sizeof(err));
		for (j = 0; r == 0 && j < c.n; j++)
			if (c.list[j].error != NULL) {
				snprintf(err, sizeof(err), "%s",
				    c.list[j].error);
				break;
			}
		if (r == 0 && j == c.n)
			fail_msg("%s: parsed, wanted error '%s'", t->name,
			    t->want);
		if (strstr(err, t->want) == NULL)
			fail_msg("%s: error '%s', wanted '%s'", t->name, err,
			    t->want);
		if (r == -1)
			assert_int_equal(c.n, 0);
		setup_conf_free(&c);
	}
}

/* test_conf_entry_errors - a bad entry costs its list only: the others
 * parse, its kind is known when its own record says it, duplicates of a
 * white list are fine (it may cut several black lists) */
static void
test_conf_entry_errors(void **state)
{
	static const char conf[] = "all:a:bad:w:b:w:nope:q:\n"
	    "a:black:msg=\"x\":file=/a:\n"
	    "bad:white:file=/b:msg=\"open:\n"
	    "w:white:file=/w:\n"
	    "b:black:msg=\"50% off\":file=h\\C8080/p:method=http:\n"
	    "q:black:msg=\"q\":tc=zz:\n";
	struct setup_conf c;
	char err[512] = "";

	(void)state;
	if (setup_conf_parse(conf, strlen(conf), "e.conf", &c, err,
	    sizeof(err)) != 0)
		fail_msg("parse: %s", err);
	assert_int_equal(c.n, 7);
	assert_null(c.list[0].error);
	assert_non_null(c.list[1].error);
	assert_non_null(strstr(c.list[1].error, "e.conf:3: entry 'bad': "
	    "unterminated quote"));
	assert_int_equal(c.list[1].white, 1);
	assert_null(c.list[2].error);
	assert_null(c.list[3].error);
	assert_string_equal(c.list[3].file, "h:8080/p");
	assert_string_equal(c.list[3].msg, "50% off");
	assert_null(c.list[4].error);	/* w again */
	assert_int_equal(c.list[4].white, 1);
	assert_non_null(strstr(c.list[5].error, "list 'nope': entry not "
	    "found"));
	assert_int_equal(c.list[5].white, -1);
	assert_non_null(strstr(c.list[6].error, "tc=zz: entry not found"));
	assert_int_equal(c.list[6].white, 0);
	setup_conf_free(&c);
}

/* test_conf_tc_depth - a tc= chain deeper than getcap allows */
static void
test_conf_tc_depth(void **state)
{
	char conf[4096], err[512];
	struct setup_conf c;
	size_t n;
	int i;

	(void)state;
	n = (size_t)snprintf(conf, sizeof(conf), "all:e0:\n");
	for (i = 0; i < 40; i++)
		n += (size_t)snprintf(conf + n, sizeof(conf) - n,
		    "e%d:tc=e%d:\n", i, i + 1);
	n += (size_t)snprintf(conf + n, sizeof(conf) - n,
	    "e40:black:msg=\"x\":file=/x:\n");
	assert_int_equal(setup_conf_parse(conf, n, "d.conf", &c, err,
	    sizeof(err)), 0);
	assert_int_equal(c.n, 1);
	assert_non_null(c.list[0].error);
	assert_non_null(strstr(c.list[0].error, "nested deeper than"));
	setup_conf_free(&c);
}

/* test_conf_record_bound - continuation lines cannot make a record
 * without end: over 64 KiB joined is an error naming file and line */
static void
test_conf_record_bound(void **state)
{
	struct setup_conf c;
	char err[512], want[64];
	char *conf;
	size_t n = 0, cap = 80 * 1024;
	int i;

	(void)state;
	conf = malloc(cap);
	assert_non_null(conf);
	n += (size_t)snprintf(conf + n, cap - n, "all:a:\na:black:\\\n");
	/* 8 bytes, then lines of 60: the 1,093rd goes past 65,536 */
	for (i = 0; i < 1100; i++)
		n += (size_t)snprintf(conf + n, cap - n, "\t:x%057d:\\\n",
		    i);
	n += (size_t)snprintf(conf + n, cap - n, "\t:msg=\"x\":file=/x:\n");
	assert_int_equal(setup_conf_parse(conf, n, "t.conf", &c, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "record longer than 65536 bytes"));
	/* the line where the bound is crossed: record starts at line 2 */
	snprintf(want, sizeof(want), "t.conf:%d: ", 2 + 1093);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("error '%s', wanted it to start '%s'", err, want);
	free(conf);
}

/* test_conf_msgfile - msg= naming a file takes its contents */
static void
test_conf_msgfile(void **state)
{
	char path[] = "/tmp/test_setup_msg.XXXXXX", conf[512], err[512];
	struct setup_conf c;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "Go away %A\nnow\n", 15), 15);
	close(fd);
	snprintf(conf, sizeof(conf), "all:a:\na:black:msg=%s:file=/x:\n",
	    path);
	if (setup_conf_parse(conf, strlen(conf), "m.conf", &c, err,
	    sizeof(err)) != 0)
		fail_msg("parse: %s", err);
	assert_string_equal(c.list[0].msg, "Go away %A\nnow\n");
	setup_conf_free(&c);
	unlink(path);
	/* a missing spamd.conf names itself */
	assert_int_equal(setup_conf_load(path, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
}

/* test_conf_example - the shipped etc/spamd.conf parses as documented */
static void
test_conf_example(void **state)
{
	const char *top = getenv("TOP");
	char path[1024], err[512];
	struct setup_conf c;
	struct setup_buf b = { 0 };

	(void)state;
	snprintf(path, sizeof(path), "%s/etc/spamd.conf", top != NULL ? top :
	    ".");
	if (setup_read_file(path, 1 << 20, &b, err, sizeof(err)) == -1) {
		/* run outside the tree: nothing to check */
		skip();
	}
	/* the msg= file of "blocked" does not exist here; drop that field */
	{
		char *p = strstr(b.p, ":msg=/etc/mail/blocked.msg:");

		assert_non_null(p);
		memcpy(p, ":msg=\"blocked %A         \":", 27);
	}
	if (setup_conf_parse(b.p, b.len, path, &c, err, sizeof(err)) != 0)
		fail_msg("parse: %s", err);
	/* nowhite after each black list: it cuts the one before it */
	assert_int_equal(c.n, 6);
	assert_string_equal(c.list[0].name, "dul");
	assert_string_equal(c.list[4].name, "peertraps");
	assert_int_equal(c.list[4].method, SETUP_M_HTTP);
	assert_non_null(strstr(c.list[4].msg, "https://www.example.org"));
	for (size_t i = 0; i < c.n; i++) {
		assert_null(c.list[i].error);
		assert_int_equal(c.list[i].white, i % 2);
	}
	setup_conf_free(&c);
	setup_buf_free(&b);
}

/* --- list lines ------------------------------------------------------ */

/* One list line and its result. */
struct line_case {
	const char	*line;
	int		 want;		/* 1 added, 0 nothing, -1 bad */
	const char	*blocks;	/* CIDR blocks, or error substring */
};

static const struct line_case line_cases[] = {
	{ "192.0.2.1", 1, "192.0.2.1/32" },
	{ "  192.0.2.1  # trailing comment", 1, "192.0.2.1/32" },
	{ "192.0.2.1\r", 1, "192.0.2.1/32" },
	{ "192.0.2.0/24", 1, "192.0.2.0/24" },
	{ "192.0.2.77/24", 1, "192.0.2.0/24" },		/* host bits off */
	{ "192.0.2.0/24 ; SBL123", 1, "192.0.2.0/24" },
	{ "10.0.0.1 - 10.0.0.6", 1,
	  "10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32" },
	{ "10.0.0.1-10.0.0.6", 1,
	  "10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32" },
	{ "10.0.0.0\t-\t10.0.0.255", 1, "10.0.0.0/24" },
	{ "10.0.0.9 - 10.0.0.9", 1, "10.0.0.9/32" },
	{ "0.0.0.0 - 10.255.255.255", 1, "0.0.0.0/5 8.0.0.0/7 10.0.0.0/8" },
	{ "255.255.255.255", 1, "255.255.255.255/32" },
	{ "2001:db8::1", 1, "2001:db8::1/128" },
	{ "2001:db8::/32", 1, "2001:db8::/32" },
	{ "2001:db8::1 - 2001:db8::6", 1,
	  "2001:db8::1/128 2001:db8::2/127 2001:db8::4/127 2001:db8::6/128" },
	{ "::ffff:10.1.2.3", 1, "10.1.2.3/32" },
	{ "::ffff:10.0.0.0/104", 1, "10.0.0.0/8" },
	{ "", 0, "" },
	{ "   \t ", 0, "" },
	{ "# only a comment", 0, "" },
	{ "; also a comment", 0, "" },
	{ "bad line", -1, "bad address: 'bad line'" },
	{ "10.0.0.256", -1, "bad address: '10.0.0.256'" },
	{ "10.0.0", -1, "bad address" },
	{ "10.0.0.1/33", -1, "bad prefix length: '10.0.0.1/33'" },
	{ "10.0.0.1/", -1, "bad prefix length" },
	{ "10.0.0.1/x", -1, "bad prefix length" },
	{ "10.0.0.1/8/8", -1, "bad prefix length" },
	{ "10.0.0.0/0", -1, "a /0 lists every address" },
	{ "::/0", -1, "a /0 lists every address" },
	{ "::ffff:0.0.0.0/96", -1, "a /0 lists every address" },
	{ "0.0.0.0 - 255.255.255.255", -1, "range covers every IPv4" },
	{ ":: - ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", -1,
	  "range covers every IPv6" },
	{ "10.0.0.6 - 10.0.0.1", -1, "range start after its end" },
	{ "10.0.0.1 - 2001:db8::1", -1, "range mixes IPv4 and IPv6" },
	{ "10.0.0.1 -", -1, "range without an end" },
	{ "10.0.0.1 - 10.0.0.2 x", -1, "junk after range" },
	{ "10.0.0.1 - 10.0.0.x", -1, "bad range end" },
	{ "10.0.0.1 x", -1, "junk after address: 'x'" },
	{ "10.0.0.1/24 10.0.0.2", -1, "junk after address" },
	{ "10.0.0.1\x01", -1, "bad address: '10.0.0.1?'" },
	{ "2001:db8::/129", -1, "bad prefix length" },
};

/* test_list_lines - every form of a list line, good and bad */
static void
test_list_lines(void **state)
{
	struct setup_addrs a;
	struct blocks b;
	char what[256];
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
		const struct line_case *t = &line_cases[i];
		char *copy = malloc(strlen(t->line) + 1);

		/* an exact-size copy with no NUL, so ASan sees overreads */
		assert_non_null(copy);
		memcpy(copy, t->line, strlen(t->line));
		memset(&a, 0, sizeof(a));
		what[0] = '\0';
		r = setup_list_line(copy, strlen(t->line), &a, what,
		    sizeof(what));
		free(copy);
		if (r != t->want)
			fail_msg("'%s': returned %d (%s), wanted %d", t->line, r,
			    what, t->want);
		if (r == -1) {
			if (strstr(what, t->blocks) == NULL)
				fail_msg("'%s': error '%s', wanted '%s'",
				    t->line, what, t->blocks);
		} else {
			cidrs(&a, &b);
			if (strcmp(b.s, t->blocks) != 0)
				fail_msg("'%s': blocks '%s', wanted '%s'",
				    t->line, b.s, t->blocks);
		}
		setup_addrs_free(&a);
	}
}

/* test_list_parse - bad lines reported with name:line and skipped */
static void
test_list_parse(void **state)
{
	static const char text[] =
	    "# header\n"
	    "192.0.2.1\n"
	    "junk\n"
	    "\n"
	    "10.0.0.0/8\r\n"
	    "10.0.0.1 - 10.0.0.0\n"
	    "2001:db8::/48\n"
	    "192.0.2.2";			/* no final newline */
	struct setup_addrs a = { 0 };
	struct warns w = { .n = 0 };
	struct blocks b;
	char longline[400];
	long nbad;

	(void)state;
	parse_lines(text, &a, &w);
	assert_int_equal(w.n, 2);
	assert_string_equal(w.text[0], "t:3: bad address: 'junk'");
	assert_non_null(strstr(w.text[1], "t:6: range start after its end"));
	cidrs(&a, &b);
	assert_string_equal(b.s, "10.0.0.0/8 192.0.2.1/32 192.0.2.2/32 "
	    "2001:db8::/48");
	setup_addrs_free(&a);

	/* an over-long line is a bad line, not a crash */
	memset(longline, '1', sizeof(longline));
	memset(&w, 0, sizeof(w));
	assert_int_equal(setup_list_parse(longline, sizeof(longline), "long",
	    &a, collect, &w, &nbad), 0);
	assert_int_equal(nbad, 1);
	assert_non_null(strstr(w.text[0], "long:1: line longer than"));
	setup_addrs_free(&a);
}

/* --- collapse and subtraction ---------------------------------------- */

/* One collapse or subtraction case: black lines, white lines, result. */
struct cidr_case {
	const char	*black;
	const char	*white;		/* NULL: no subtraction */
	const char	*want;		/* blocks, or "ERR:" + substring */
};

static const struct cidr_case cidr_cases[] = {
	/* collapse */
	{ "10.0.0.1 - 10.0.0.6", NULL,
	  "10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32" },
	{ "10.0.0.0/25\n10.0.0.128/25", NULL, "10.0.0.0/24" },	/* adjacent */
	{ "10.0.0.0/24\n10.0.0.128/25\n10.0.0.100 - 10.0.1.5", NULL,
	  "10.0.0.0/24 10.0.1.0/30 10.0.1.4/31" },		/* overlapping */
	{ "10.0.0.5\n10.0.0.5\n10.0.0.4", NULL, "10.0.0.4/31" },	/* dup */
	{ "10.0.0.3\n10.0.0.4", NULL, "10.0.0.3/32 10.0.0.4/32" },	/* unaligned */
	{ "10.0.0.0/8\n10.1.2.3", NULL, "10.0.0.0/8" },		/* contained */
	{ "0.0.0.0\n255.255.255.255", NULL,
	  "0.0.0.0/32 255.255.255.255/32" },
	{ "255.255.255.0 - 255.255.255.255", NULL, "255.255.255.0/24" },
	{ "0.0.0.0/1\n128.0.0.0/1", NULL, "ERR:every IPv4" },	/* whole v4 */
	{ "0.0.0.1 - 255.255.255.255", NULL,
	  "0.0.0.1/32 0.0.0.2/31 0.0.0.4/30 0.0.0.8/29 0.0.0.16/28 "
	  "0.0.0.32/27 0.0.0.64/26 0.0.0.128/25 0.0.1.0/24 0.0.2.0/23 "
	  "0.0.4.0/22 0.0.8.0/21 0.0.16.0/20 0.0.32.0/19 0.0.64.0/18 "
	  "0.0.128.0/17 0.1.0.0/16 0.2.0.0/15 0.4.0.0/14 0.8.0.0/13 "
	  "0.16.0.0/12 0.32.0.0/11 0.64.0.0/10 0.128.0.0/9 1.0.0.0/8 "
	  "2.0.0.0/7 4.0.0.0/6 8.0.0.0/5 16.0.0.0/4 32.0.0.0/3 64.0.0.0/2 "
	  "128.0.0.0/1" },
	{ "2001:db8::/33\n2001:db8:8000::/33", NULL, "2001:db8::/32" },
	{ "::1", NULL, "::1/128" },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00 - "
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL,
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120" },
	{ "::/1\n8000::/1", NULL, "ERR:every IPv6" },
	{ "2001:db8::/64\n2001:db8:0:1::/64\n10.0.0.1", NULL,
	  "10.0.0.1/32 2001:db8::/63" },
	{ "2001:db8::ffff:ffff:ffff:ffff - 2001:db8:0:1::", NULL,
	  "2001:db8::ffff:ffff:ffff:ffff/128 2001:db8:0:1::/128" },
	/* subtraction */
	{ "10.0.0.0/24", "10.0.0.128/25", "10.0.0.0/25" },
	{ "10.0.0.0/24", "10.0.0.5",
	  "10.0.0.0/30 10.0.0.4/32 10.0.0.6/31 10.0.0.8/29 10.0.0.16/28 "
	  "10.0.0.32/27 10.0.0.64/26 10.0.0.128/25" },
	{ "10.0.0.0/24", "10.0.0.0/8", "" },			/* all gone */
	{ "10.0.0.0/24", "10.0.0.0/24", "" },			/* exactly */
	{ "10.0.0.0/24\n10.0.2.0/24", "10.0.0.128 - 10.0.2.127",
	  "10.0.0.0/25 10.0.2.128/25" },	/* one white, two blacks */
	{ "10.0.0.0/24", "10.0.0.0\n10.0.0.255",
	  "10.0.0.1/32 10.0.0.2/31 10.0.0.4/30 10.0.0.8/29 10.0.0.16/28 "
	  "10.0.0.32/27 10.0.0.64/26 10.0.0.128/26 10.0.0.192/27 "
	  "10.0.0.224/28 10.0.0.240/29 10.0.0.248/30 10.0.0.252/31 "
	  "10.0.0.254/32" },				/* both edges */
	{ "10.0.0.0/24", "192.0.2.0/24\n2001:db8::/32", "10.0.0.0/24" },
	{ "10.0.0.0/29", "10.0.0.1\n10.0.0.3\n10.0.0.5",
	  "10.0.0.0/32 10.0.0.2/32 10.0.0.4/32 10.0.0.6/31" },
	{ "0.0.0.0/8", "0.0.0.0", "0.0.0.1/32 0.0.0.2/31 0.0.0.4/30 "
	  "0.0.0.8/29 0.0.0.16/28 0.0.0.32/27 0.0.0.64/26 0.0.0.128/25 "
	  "0.0.1.0/24 0.0.2.0/23 0.0.4.0/22 0.0.8.0/21 0.0.16.0/20 "
	  "0.0.32.0/19 0.0.64.0/18 0.0.128.0/17 0.1.0.0/16 0.2.0.0/15 "
	  "0.4.0.0/14 0.8.0.0/13 0.16.0.0/12 0.32.0.0/11 0.64.0.0/10 "
	  "0.128.0.0/9" },
	{ "255.255.255.252/30", "255.255.255.255",
	  "255.255.255.252/31 255.255.255.254/32" },
	{ "10.0.0.0/30\n10.0.0.8/30", "10.0.0.2 - 10.0.0.9",
	  "10.0.0.0/31 10.0.0.10/31" },
	{ "2001:db8::/32", "2001:db8::/33", "2001:db8:8000::/33" },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126",
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/127 "
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128" },
	{ "::/126", "::", "::1/128 ::2/127" },
	{ "2001:db8::/126\n10.0.0.0/31", "2001:db8::2\n10.0.0.1",
	  "10.0.0.0/32 2001:db8::/127 2001:db8::3/128" },
	/* white lists can make a black list span everything but a hole */
	{ "0.0.0.0/1\n128.0.0.0/1", "10.0.0.0/8",
	  "0.0.0.0/5 8.0.0.0/7 11.0.0.0/8 12.0.0.0/6 16.0.0.0/4 32.0.0.0/3 "
	  "64.0.0.0/2 128.0.0.0/1" },
};

/* test_cidr - collapse and white subtraction, table-driven */
static void
test_cidr(void **state)
{
	struct setup_addrs a, w;
	struct warns wn;
	struct blocks b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cidr_cases) / sizeof(cidr_cases[0]); i++) {
		const struct cidr_case *t = &cidr_cases[i];

		memset(&a, 0, sizeof(a));
		memset(&w, 0, sizeof(w));
		memset(&wn, 0, sizeof(wn));
		parse_lines(t->black, &a, &wn);
		if (t->white != NULL) {
			parse_lines(t->white, &w, &wn);
			setup_collapse(&a);
			setup_collapse(&w);
			assert_int_equal(setup_subtract(&a, &w), 0);
		}
		assert_int_equal(wn.n, 0);
		cidrs(&a, &b);
		if (strncmp(t->want, "ERR:", 4) == 0 ?
		    strncmp(b.s, "ERR:", 4) != 0 || strstr(b.s, t->want + 4) ==
		    NULL : strcmp(b.s, t->want) != 0)
			fail_msg("case %zu (%s minus %s): got '%s', wanted '%s'",
			    i, t->black, t->white ? t->white : "-", b.s, t->want);
		setup_addrs_free(&a);
		setup_addrs_free(&w);
	}
}

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

/* rng - xorshift64*, deterministic */
static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/* Blocks checked against a bitmap over 10.0.0.0/20. */
struct bitcheck {
	uint8_t	covered[4096];
	int	nblocks;
	int	bad;
	uint32_t last_end;	/* to check order and non-adjacency */
	int	last_bits;
};

/* check_block - mark a block, checking it is inside the window and that
 * it could not merge with the block before it */
static int
check_block(void *arg, int af, const char *cidr)
{
	struct bitcheck *c = arg;
	struct in_addr in;
	char addr[32];
	const char *slash = strchr(cidr, '/');
	uint32_t a, size, k;
	int bits;

	snprintf(addr, sizeof(addr), "%.*s", (int)(slash - cidr), cidr);
	if (af != AF_INET || inet_pton(AF_INET, addr, &in) != 1) {
		c->bad = 1;
		return 0;
	}
	a = ntohl(in.s_addr);
	bits = atoi(slash + 1);
	size = (uint32_t)1 << (32 - bits);
	if (a < 0x0a000000 || a + size > 0x0a001000 || (a & (size - 1)) != 0) {
		c->bad = 1;
		return 0;
	}
	/* two equal-size sibling blocks in a row would be one block */
	if (c->nblocks > 0 && c->last_bits == bits && c->last_end == a &&
	    ((a - size) & (size * 2 - 1)) == 0)
		c->bad = 2;
	for (k = 0; k < size; k++) {
		if (c->covered[a - 0x0a000000 + k])
			c->bad = 3;		/* overlap */
		c->covered[a - 0x0a000000 + k] = 1;
	}
	c->nblocks++;
	c->last_end = a + size;
	c->last_bits = bits;
	return 0;
}

/* test_cidr_random - random blacks minus random whites against a bitmap */
static void
test_cidr_random(void **state)
{
	static uint8_t want[4096];
	struct setup_addrs a, w;
	struct bitcheck *chk = malloc(sizeof(*chk));
	char err[128];
	long n4, n6;
	int round, i, k;

	(void)state;
	assert_non_null(chk);
	for (round = 0; round < 300; round++) {
		memset(&a, 0, sizeof(a));
		memset(&w, 0, sizeof(w));
		memset(want, 0, sizeof(want));
		for (i = 0; i < 1 + (int)(rng() % 20); i++) {
			uint32_t lo = (uint32_t)(rng() % 4096), len =
			    (uint32_t)(rng() % (rng() % 2 ? 8 : 600));
			uint32_t hi = lo + len > 4095 ? 4095 : lo + len;

			assert_int_equal(setup_addrs_add4(&a, 0x0a000000 + lo,
			    0x0a000000 + hi), 0);
			for (k = (int)lo; k <= (int)hi; k++)
				want[k] = 1;
		}
		for (i = 0; i < (int)(rng() % 8); i++) {
			uint32_t lo = (uint32_t)(rng() % 4096), len =
			    (uint32_t)(rng() % 300);
			uint32_t hi = lo + len > 4095 ? 4095 : lo + len;

			assert_int_equal(setup_addrs_add4(&w, 0x0a000000 + lo,
			    0x0a000000 + hi), 0);
			for (k = (int)lo; k <= (int)hi; k++)
				want[k] = 0;
		}
		setup_collapse(&a);
		setup_collapse(&w);
		assert_int_equal(setup_subtract(&a, &w), 0);
		memset(chk, 0, sizeof(*chk));
		assert_int_equal(setup_cidr_count(&a, &n4, &n6, err,
		    sizeof(err)), 0);
		assert_int_equal(setup_cidr_each(&a, check_block, chk), 0);
		if (chk->bad)
			fail_msg("round %d: bad block (%d)", round, chk->bad);
		assert_int_equal(chk->nblocks, n4);
		assert_memory_equal(chk->covered, want, sizeof(want));
		setup_addrs_free(&a);
		setup_addrs_free(&w);
	}
	free(chk);
}

/* test_collapse_large - the radix sort path on many unsorted entries */
static void
test_collapse_large(void **state)
{
	struct setup_addrs a = { 0 };
	struct blocks b;
	uint32_t i;

	(void)state;
	/* every address of 10.0.0.0/16 in a scrambled order */
	for (i = 0; i < 65536; i++) {
		uint32_t v = (i * 40503u) & 0xffff;	/* odd: a permutation */

		assert_int_equal(setup_addrs_add4(&a, 0x0a000000 | v,
		    0x0a000000 | v), 0);
	}
	cidrs(&a, &b);
	assert_string_equal(b.s, "10.0.0.0/16");
	assert_int_equal(a.n4, 1);
	setup_addrs_free(&a);
}

/* --- messages -------------------------------------------------------- */

/* One message and its escaped form (or an error substring). */
struct msg_case {
	const char	*raw;
	int		 ok;
	const char	*want;
};

static const struct msg_case msg_cases[] = {
	{ "plain", 1, "plain" },
	{ "", 1, "" },
	{ "say \"hi\"", 1, "say \\\"hi\\\"" },
	{ "back\\slash", 1, "back\\\\slash" },
	{ "two\\\\back", 1, "two\\\\back" },
	{ "file\\nbreak", 1, "file\\nbreak" },
	{ "esc\\\"q", 1, "esc\\\"q" },
	{ "end\\", 1, "end\\\\" },
	{ "crlf\r\nfile\r\n", 1, "crlf\\nfile\\n" },
	{ "line1\nline2\n", 1, "line1\\nline2\\n" },
	{ "you are %A", 1, "you are %A" },
	{ "100%% sure", 1, "100%% sure" },
	{ "tab\there", 1, "tab\there" },
	{ "50% off", 1, "50%% off" },
	{ "100% spam", 1, "100%% spam" },
	{ "trailing %", 1, "trailing %%" },
	{ "%B", 1, "%%B" },
	{ "cr\rhere", 0, "control character" },
	{ "esc\033[1m", 0, "control character" },
	{ "del\177", 0, "control character" },
};

/* test_msg_escape - message escapes, good and refused */
static void
test_msg_escape(void **state)
{
	char out[BL_MSG_MAX], err[256], *big;
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(msg_cases) / sizeof(msg_cases[0]); i++) {
		const struct msg_case *t = &msg_cases[i];

		err[0] = '\0';
		r = setup_msg_escape(t->raw, out, sizeof(out), err, sizeof(err));
		if (t->ok) {
			if (r != 0)
				fail_msg("'%s': %s", t->raw, err);
			assert_string_equal(out, t->want);
		} else {
			if (r != -1)
				fail_msg("'%s': accepted as '%s'", t->raw, out);
			if (strstr(err, t->want) == NULL)
				fail_msg("'%s': error '%s', wanted '%s'",
				    t->raw, err, t->want);
		}
	}
	/* too long once escaped: 3000 quotes become 6000 bytes */
	big = malloc(3001);
	assert_non_null(big);
	memset(big, '"', 3000);
	big[3000] = '\0';
	assert_int_equal(setup_msg_escape(big, out, sizeof(out), err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "too long"));
	free(big);
}

/* test_message - the control line, and the engine's parser accepts it */
static void
test_message(void **state)
{
	struct setup_addrs a = { 0 };
	struct setup_buf line = { 0 };
	struct warns w = { .n = 0 };
	struct bl_list *l;
	char err[256];

	(void)state;
	parse_lines("10.0.0.1 - 10.0.0.6\n2001:db8::/32\n", &a, &w);
	setup_collapse(&a);
	assert_int_equal(setup_message("dul", "You (%A) \"x\"\\\n2nd", &a,
	    &line, err, sizeof(err)), 0);
	assert_string_equal(line.p, "dul;\"You (%A) \\\"x\\\"\\\\\\n2nd\";"
	    "inet;4;10.0.0.1/32;10.0.0.2/31;10.0.0.4/31;10.0.0.6/32;"
	    "inet6;1;2001:db8::/32\n");
	/* the engine parses it (without the newline) into 5 prefixes */
	l = bl_parse(line.p, line.len - 1, err, sizeof(err));
	if (l == NULL)
		fail_msg("engine refused: %s", err);
	assert_string_equal(bl_list_tag(l), "dul");
	assert_int_equal(bl_list_size(l), 5);
	bl_list_free(l);
	setup_buf_free(&line);
	setup_addrs_free(&a);

	/* an empty list still says inet;0 (the engine clears the tag) */
	assert_int_equal(setup_message("e", "m", &a, &line, err, sizeof(err)),
	    0);
	assert_string_equal(line.p, "e;\"m\";inet;0\n");
	l = bl_parse(line.p, line.len - 1, err, sizeof(err));
	assert_non_null(l);
	assert_int_equal(bl_list_size(l), 0);
	bl_list_free(l);
	setup_buf_free(&line);

	/* a bad message is refused with the reason */
	assert_int_equal(setup_message("e", "bell\a", &a, &line, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "control character"));
	setup_buf_free(&line);
}

/* --- gzip ------------------------------------------------------------ */

/* gz - gzip-compress text into out (one member) */
static size_t
gz(const char *text, size_t len, uint8_t *out, size_t outsz)
{
	z_stream z;

	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8,
	    Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)(uintptr_t)text;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)outsz;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	deflateEnd(&z);
	return outsz - z.avail_out;
}

/* test_gzip - inflate, several members, corrupt, truncated, over the cap */
static void
test_gzip(void **state)
{
	static const char text[] = "10.0.0.1\n10.0.0.2 - 10.0.0.9\n";
	uint8_t z[4096], zz[8192];
	struct setup_buf out = { 0 };
	char err[256], *big;
	size_t n, n2, i;
	struct setup_addrs a = { 0 };
	struct warns w = { .n = 0 };
	struct blocks b;
	long nbad;

	(void)state;
	n = gz(text, strlen(text), z, sizeof(z));
	assert_true(setup_is_gzip(z, n));
	assert_false(setup_is_gzip(text, strlen(text)));
	assert_false(setup_is_gzip(z, 1));
	assert_int_equal(setup_gunzip(z, n, 1 << 20, &out, err, sizeof(err)),
	    0);
	assert_int_equal(out.len, strlen(text));
	assert_memory_equal(out.p, text, out.len);
	assert_int_equal(setup_list_parse(out.p, out.len, "gz", &a, collect, &w,
	    &nbad), 0);
	cidrs(&a, &b);
	assert_string_equal(b.s, "10.0.0.1/32 10.0.0.2/31 10.0.0.4/30 "
	    "10.0.0.8/31");
	setup_addrs_free(&a);
	setup_buf_free(&out);

	/* two members, as "cat a.gz b.gz" makes */
	memcpy(zz, z, n);
	n2 = gz("192.0.2.1\n", 10, zz + n, sizeof(zz) - n);
	assert_int_equal(setup_gunzip(zz, n + n2, 1 << 20, &out, err,
	    sizeof(err)), 0);
	assert_int_equal(out.len, strlen(text) + 10);
	setup_buf_free(&out);

	/* truncated at every length: an error, never a crash */
	for (i = 2; i < n; i++) {
		uint8_t *cut = malloc(i);

		assert_non_null(cut);
		memcpy(cut, z, i);
		assert_int_equal(setup_gunzip(cut, i, 1 << 20, &out, err,
		    sizeof(err)), -1);
		assert_non_null(strstr(err, "gzip:"));
		free(cut);
		setup_buf_free(&out);
	}
	/* corrupt body (the CRC catches what inflate does not) */
	memcpy(zz, z, n);
	zz[n / 2] ^= 0x55;
	assert_int_equal(setup_gunzip(zz, n, 1 << 20, &out, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "gzip:"));
	setup_buf_free(&out);

	/* a small bomb: 1 MiB of zeros against a 64 KiB cap */
	big = calloc(1, 1 << 20);
	assert_non_null(big);
	n = gz(big, 1 << 20, zz, sizeof(zz));
	free(big);
	assert_int_equal(setup_gunzip(zz, n, 65536, &out, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "larger than the cap"));
	setup_buf_free(&out);
}

/* --- argv, fetch, send ----------------------------------------------- */

/* test_split_argv - blanks split, nothing else is special */
static void
test_split_argv(void **state)
{
	static const struct {
		const char *cmd;
		const char *want[5];
	} cases[] = {
		{ "cat /x", { "cat", "/x", NULL } },
		{ "  a\t b  c ", { "a", "b", "c", NULL } },
		{ "echo $(rm -rf /);x|y", { "echo", "$(rm", "-rf", "/);x|y",
		  NULL } },
		{ "one", { "one", NULL } },
	};
	char **argv;
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		argv = setup_split_argv(cases[i].cmd);
		assert_non_null(argv);
		for (k = 0; cases[i].want[k] != NULL; k++)
			assert_string_equal(argv[k], cases[i].want[k]);
		assert_null(argv[k]);
		free(argv);
	}
	assert_null(setup_split_argv(""));
	assert_null(setup_split_argv(" \t "));
}

/* test_fetch - file and exec methods, failures reported */
static void
test_fetch(void **state)
{
	struct setup_fetchopt o = { 1 << 20, 10 };
	struct setup_lconf l;
	struct setup_buf out = { 0 };
	char path[] = "/tmp/test_setup_list.XXXXXX", err[512], cmd[600];
	uint8_t z[256];
	size_t n;
	int fd;

	(void)state;
	memset(&l, 0, sizeof(l));
	fd = mkstemp(path);
	assert_true(fd >= 0);
	n = gz("10.9.9.9\n", 9, z, sizeof(z));
	assert_int_equal(write(fd, z, n), (ssize_t)n);
	close(fd);

	/* file, gzip inflated on the way */
	l.method = SETUP_M_FILE;
	l.file = path;
	assert_int_equal(setup_fetch(&l, &o, &out, err, sizeof(err)), 0);
	assert_int_equal(out.len, 9);
	assert_memory_equal(out.p, "10.9.9.9\n", 9);
	setup_buf_free(&out);

	/* exec: argv split, no shell ("$HOME" stays literal) */
	l.method = SETUP_M_EXEC;
	l.file = "echo 10.1.1.1 $HOME";
	assert_int_equal(setup_fetch(&l, &o, &out, err, sizeof(err)), 0);
	assert_string_equal(out.p, "10.1.1.1 $HOME\n");
	setup_buf_free(&out);
	snprintf(cmd, sizeof(cmd), "cat %s", path);
	l.file = cmd;
	assert_int_equal(setup_fetch(&l, &o, &out, err, sizeof(err)), 0);
	assert_int_equal(out.len, 9);
	setup_buf_free(&out);

	/* failures: missing file, failing program, missing program */
	l.method = SETUP_M_FILE;
	l.file = "/nonexistent/list";
	assert_int_equal(setup_fetch(&l, &o, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/list: No such file"));
	setup_buf_free(&out);
	l.method = SETUP_M_EXEC;
	l.file = "false";
	assert_int_equal(setup_fetch(&l, &o, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exited with status 1"));
	setup_buf_free(&out);
	l.file = "/nonexistent/program arg";
	assert_int_equal(setup_fetch(&l, &o, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exec /nonexistent/program"));
	setup_buf_free(&out);

	/* over the size cap */
	o.maxsize = 4;
	l.method = SETUP_M_FILE;
	l.file = path;
	assert_int_equal(setup_fetch(&l, &o, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cap"));
	setup_buf_free(&out);

	/* http to a closed port fails with a message, quickly */
	o.maxsize = 1 << 20;
	l.method = SETUP_M_HTTP;
	l.file = "127.0.0.1:1/list";
	assert_int_equal(setup_fetch(&l, &o, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "http://127.0.0.1:1/list"));
	setup_buf_free(&out);
	/* a URL of another scheme than the method */
	l.file = "https://127.0.0.1:1/list";
	assert_int_equal(setup_fetch(&l, &o, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "another scheme"));
	setup_buf_free(&out);
	unlink(path);
}

/* serve - accept one connection, read to EOF into got, answer reply */
static void
serve(int lfd, const char *reply, int pipefd)
{
	char buf[4096];
	size_t got = 0;
	ssize_t r;
	int fd = accept(lfd, NULL, NULL);

	if (fd == -1)
		_exit(1);
	while ((r = read(fd, buf + got, sizeof(buf) - got)) > 0)
		got += (size_t)r;
	if (write(pipefd, buf, got) != (ssize_t)got)
		_exit(1);
	if (reply != NULL && write(fd, reply, strlen(reply)) < 0)
		_exit(1);
	close(fd);
	_exit(0);
}

/* test_send - delivery against a real socket: ok, error, silent EOF */
static void
test_send(void **state)
{
	static const struct {
		const char *reply;
		int want;
		const char *answer_or_err;
	} cases[] = {
		{ "ok t 1\n", 0, "ok t 1" },
		{ NULL, 0, "" },				/* OpenBSD */
		{ "error t: bad escape at byte 9\n", -1,
		  "engine: error t: bad escape at byte 9" },
	};
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	char answer[256], err[512], got[4096];
	int lfd, p[2], status;
	size_t i;
	ssize_t n;
	pid_t pid;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		lfd = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(lfd >= 0);
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_int_equal(bind(lfd, (struct sockaddr *)&sin,
		    sizeof(sin)), 0);
		assert_int_equal(listen(lfd, 1), 0);
		assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &sl),
		    0);
		assert_int_equal(pipe(p), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			serve(lfd, cases[i].reply, p[1]);
		}
		close(p[1]);
		err[0] = '\0';
		assert_int_equal(setup_send("127.0.0.1", ntohs(sin.sin_port),
		    "t;\"m\";inet;1;10.0.0.1/32\n", 25, 10, answer,
		    sizeof(answer), err, sizeof(err)), cases[i].want);
		if (cases[i].want == 0)
			assert_string_equal(answer, cases[i].answer_or_err);
		else
			assert_string_equal(err, cases[i].answer_or_err);
		n = read(p[0], got, sizeof(got) - 1);
		assert_int_equal(n, 25);
		got[n] = '\0';
		assert_string_equal(got, "t;\"m\";inet;1;10.0.0.1/32\n");
		close(p[0]);
		close(lfd);
		assert_int_equal(waitpid(pid, &status, 0), pid);
	}
	/* nobody listening: a clear error */
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	assert_int_equal(setup_send("127.0.0.1", ntohs(sin.sin_port), "t;\n",
	    3, 5, answer, sizeof(answer), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "Connection refused"));
	close(lfd);
}

/* main - run every test */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_valid),
		cmocka_unit_test(test_conf_alias),
		cmocka_unit_test(test_conf_errors),
		cmocka_unit_test(test_conf_entry_errors),
		cmocka_unit_test(test_conf_tc_depth),
		cmocka_unit_test(test_conf_record_bound),
		cmocka_unit_test(test_conf_msgfile),
		cmocka_unit_test(test_conf_example),
		cmocka_unit_test(test_list_lines),
		cmocka_unit_test(test_list_parse),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_cidr_random),
		cmocka_unit_test(test_collapse_large),
		cmocka_unit_test(test_msg_escape),
		cmocka_unit_test(test_message),
		cmocka_unit_test(test_gzip),
		cmocka_unit_test(test_split_argv),
		cmocka_unit_test(test_fetch),
		cmocka_unit_test(test_send),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
