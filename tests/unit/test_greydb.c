/*
 * test_greydb.c - the greylisting store: encoding, canonical addresses,
 * mail normalisation, every greylisting rule, expiry by index, walks,
 * stats, deletes and open errors. Each test uses a fresh directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <db.h>

#include "greydb/greydb.h"

#define T0 1700000000LL

static const struct gdb_times times = {
	GDB_PASSTIME_DEFAULT, GDB_GREYEXP_DEFAULT, GDB_WHITEEXP_DEFAULT,
	GDB_TRAPEXP_DEFAULT
};

struct fix {
	char		 dir[64];
	struct gdb	*db;
};

/* rm_dir - remove a test directory and its files */
static void
rm_dir(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* setup - a fresh environment in a new temporary directory */
static int
setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct gdb_opts o = { .create = 1, .group_commit = 1 };
	struct gdb_err err;

	if (f == NULL)
		return -1;
	strlcpy(f->dir, "/tmp/test_greydb.XXXXXX", sizeof(f->dir));
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if (gdb_open(&f->db, f->dir, &o, &err) == -1) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

/* teardown - close and remove the environment */
static int
teardown(void **state)
{
	struct fix *f = *state;

	gdb_close(f->db);
	rm_dir(f->dir);
	free(f);
	return 0;
}

/* test_value_roundtrip - values encode and decode back, big-endian */
static void
test_value_roundtrip(void **state)
{
	static const struct { int64_t first, pass, expire; int32_t b, p; }
	rows[] = {
		{ 0, 0, 0, 0, 0 },
		{ T0, T0 + 1500, T0 + 14400, 1, 0 },
		{ INT64_MAX, INT64_MIN, -1, INT32_MAX, -1 },
		{ 1, 2, 3, -2, GDB_PCOUNT_SPAMTRAP },
	};
	unsigned char val[GDB_VAL_SIZE], key[] = "\002192.0.2.1";
	struct gdb_rec in, out;
	struct gdb_err err;
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&in, 0, sizeof(in));
		in.first = rows[i].first;
		in.pass = rows[i].pass;
		in.expire = rows[i].expire;
		in.bcount = rows[i].b;
		in.pcount = rows[i].p;
		gdb_val_encode(&in, val);
		assert_int_equal(val[0], GDB_VAL_VERSION);
		assert_int_equal(gdb_val_decode(val, sizeof(val), key,
		    sizeof(key) - 1, &out, &err), 0);
		assert_true(out.first == in.first && out.pass == in.pass &&
		    out.expire == in.expire && out.bcount == in.bcount &&
		    out.pcount == in.pcount);
	}
	/* Byte order is fixed: first = 1 ends in byte 8. */
	in.first = 1;
	gdb_val_encode(&in, val);
	assert_int_equal(val[8], 1);
	assert_int_equal(val[1], 0);
}

/* test_value_errors - unknown version or wrong size names the key */
static void
test_value_errors(void **state)
{
	static const struct { int version; size_t len; const char *want; }
	rows[] = {
		{ 2, GDB_VAL_SIZE, "unknown value version 2" },
		{ 0, GDB_VAL_SIZE, "unknown value version 0" },
		{ GDB_VAL_VERSION, GDB_VAL_SIZE - 1, "32 bytes, want 33" },
		{ GDB_VAL_VERSION, GDB_VAL_SIZE + 8, "41 bytes, want 33" },
		{ GDB_VAL_VERSION, 0, "unknown value version" },
	};
	unsigned char val[64] = { 0 }, key[] = "\002192.0.2.7";
	struct gdb_rec out;
	struct gdb_err err;
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		val[0] = (unsigned char)rows[i].version;
		assert_int_equal(gdb_val_decode(val, rows[i].len, key,
		    sizeof(key) - 1, &out, &err), -1);
		assert_non_null(strstr(err.msg, rows[i].want));
		assert_non_null(strstr(err.msg, "192.0.2.7"));
	}
}

/* test_key_roundtrip - keys of every type encode and decode back */
static void
test_key_roundtrip(void **state)
{
	static const struct gdb_rec rows[] = {
		{ .type = GDB_GREY, .ip = "192.0.2.1", .helo = "mx.example",
		  .from = "a@example.org", .to = "b@example.com" },
		{ .type = GDB_GREY, .ip = "2001:db8::1", .helo = "",
		  .from = "", .to = "b@example.com" },
		{ .type = GDB_WHITE, .ip = "198.51.100.9" },
		{ .type = GDB_TRAPPED, .ip = "2001:db8::2" },
		{ .type = GDB_SPAMTRAP, .to = "trap@example.com" },
	};
	unsigned char key[GDB_KEY_MAX];
	struct gdb_rec out;
	struct gdb_err err;
	size_t i, n;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		n = gdb_key_encode(&rows[i], key, sizeof(key));
		assert_true(n > 1);
		assert_int_equal(key[0], rows[i].type);
		assert_int_equal(gdb_key_decode(key, n, &out, &err), 0);
		assert_int_equal(out.type, rows[i].type);
		assert_string_equal(out.ip, rows[i].ip);
		assert_string_equal(out.helo, rows[i].helo);
		assert_string_equal(out.from, rows[i].from);
		assert_string_equal(out.to, rows[i].to);
	}
	/* GREY layout is ip\0helo\0from\0to. */
	n = gdb_key_encode(&rows[0], key, sizeof(key));
	assert_memory_equal(key, "\001192.0.2.1\0mx.example\0a@example.org\0"
	    "b@example.com", n);
}

/* test_key_errors - malformed keys are errors naming the bytes */
static void
test_key_errors(void **state)
{
	static const struct { const char *key; size_t len; } rows[] = {
		{ "\001192.0.2.1\0helo", 15 },		/* GREY, 1 field */
		{ "\002192.0.2.1\0x", 12 },		/* WHITE with a NUL */
		{ "\011abc", 4 },			/* unknown type */
		{ "\002", 1 },				/* too short */
	};
	struct gdb_rec out;
	struct gdb_err err;
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_int_equal(gdb_key_decode((const unsigned char *)
		    rows[i].key, rows[i].len, &out, &err), -1);
		assert_non_null(strstr(err.msg, "malformed key"));
	}
}

/* test_addr_canon - one text form per address, bad input refused */
static void
test_addr_canon(void **state)
{
	static const struct { const char *in, *want; } rows[] = {
		{ "192.0.2.1", "192.0.2.1" },
		{ "2001:DB8:0:0:0:0:0:1", "2001:db8::1" },
		{ "2001:0db8::0001", "2001:db8::1" },
		{ "::ffff:192.0.2.5", "192.0.2.5" },
		{ "::FFFF:c000:0205", "192.0.2.5" },
		{ "::1", "::1" },
		{ "192.0.2.256", NULL },
		{ "192.0.2", NULL },
		{ "", NULL },
		{ "2001:db8::1::2", NULL },
		{ " 192.0.2.1", NULL },
		{ "example.com", NULL },
		{ "10.0.0.1/24", NULL },
	};
	char out[GDB_ADDR_MAX];
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (rows[i].want == NULL) {
			assert_int_equal(gdb_addr_canon(rows[i].in, out), -1);
			continue;
		}
		assert_int_equal(gdb_addr_canon(rows[i].in, out), 0);
		assert_string_equal(out, rows[i].want);
	}
	assert_int_equal(gdb_addr_canon(NULL, out), -1);
}

/* test_mail_norm - brackets and spaces stripped, lowercased, cut */
static void
test_mail_norm(void **state)
{
	static const struct { const char *in, *want; } rows[] = {
		{ "<Alice@Example.COM>", "alice@example.com" },
		{ "  < Bob@x.org >  ", "bob@x.org" },
		{ "<>", "" },
		{ "", "" },
		{ "plain@EXAMPLE", "plain@example" },
		{ "<unclosed@x", "unclosed@x" },
	};
	char out[GDB_MAIL_MAX], small[5];
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		gdb_mail_norm(rows[i].in, out, sizeof(out));
		assert_string_equal(out, rows[i].want);
	}
	gdb_mail_norm("<ABCDEFG>", small, sizeof(small));
	assert_string_equal(small, "abcd");
	gdb_mail_norm(NULL, out, sizeof(out));
	assert_string_equal(out, "");
}

/* seen - gdb_tuple_seen that must succeed; returns the result */
static enum gdb_result
seen(struct gdb *db, const char *ip, const char *to, int64_t now,
    struct gdb_rec *rec)
{
	enum gdb_result res = 0;
	struct gdb_err err;

	if (gdb_tuple_seen(db, ip, "mx.example", "<Sender@Example.org>", to,
	    now, &times, &res, rec, &err) == -1)
		fail_msg("tuple_seen: %s", err.msg);
	return res;
}

/* get_ip - look a WHITE or TRAPPED ip up; 1 found */
static int
get_ip(struct gdb *db, enum gdb_type type, const char *ip,
    struct gdb_rec *out)
{
	struct gdb_err err;

	memset(out, 0, sizeof(*out));
	out->type = type;
	strlcpy(out->ip, ip, sizeof(out->ip));
	return gdb_get(db, out, &err);
}

/* test_rules_greylist - new, seen again before/after passtime, pass */
static void
test_rules_greylist(void **state)
{
	struct fix *f = *state;
	static const struct {
		int64_t		at;		/* seconds after T0 */
		enum gdb_result	want;
		int32_t		bcount, pcount;
	} steps[] = {
		{ 0, GDB_R_NEW, 1, 0 },
		{ 60, GDB_R_GREY, 2, 0 },
		{ GDB_PASSTIME_DEFAULT, GDB_R_GREY, 3, 0 },	/* not > */
		{ GDB_PASSTIME_DEFAULT + 1, GDB_R_PASSED, 4, 1 },
		{ GDB_PASSTIME_DEFAULT + 2, GDB_R_WHITE, 4, 1 },
	};
	struct gdb_rec rec, w, g;
	struct gdb_err err;
	size_t i;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		assert_int_equal(seen(f->db, "192.0.2.10",
		    "<Rcpt@Example.com>", T0 + steps[i].at, &rec),
		    steps[i].want);
		assert_int_equal(rec.bcount, steps[i].bcount);
		assert_int_equal(rec.pcount, steps[i].pcount);
	}
	/* The new tuple had first=now, pass=expire=now+greyexp. */
	memset(&g, 0, sizeof(g));
	g.type = GDB_GREY;
	strlcpy(g.ip, "192.0.2.10", sizeof(g.ip));
	strlcpy(g.helo, "mx.example", sizeof(g.helo));
	strlcpy(g.from, "sender@example.org", sizeof(g.from));
	strlcpy(g.to, "rcpt@example.com", sizeof(g.to));
	/* The tuple is gone after the pass (OpenBSD grey.c does the same). */
	assert_int_equal(gdb_get(f->db, &g, &err), 0);
	assert_int_equal(get_ip(f->db, GDB_WHITE, "192.0.2.10", &w), 1);
	assert_int_equal(w.first, T0 + GDB_PASSTIME_DEFAULT + 1);
	assert_int_equal(w.pass, T0 + GDB_PASSTIME_DEFAULT + 1);
	/* Refreshed by the GDB_R_WHITE step. */
	assert_int_equal(w.expire, T0 + GDB_PASSTIME_DEFAULT + 2 +
	    GDB_WHITEEXP_DEFAULT);

	/* A fresh tuple: fields of a new entry. */
	assert_int_equal(seen(f->db, "192.0.2.11", "x@example.com", T0, &rec),
	    GDB_R_NEW);
	assert_int_equal(rec.first, T0);
	assert_int_equal(rec.pass, T0 + GDB_GREYEXP_DEFAULT);
	assert_int_equal(rec.expire, T0 + GDB_GREYEXP_DEFAULT);
	assert_string_equal(rec.from, "sender@example.org");
}

/* test_rules_expired_absent - an expired tuple or WHITE counts as absent */
static void
test_rules_expired_absent(void **state)
{
	struct fix *f = *state;
	struct gdb_rec rec;
	int64_t t = T0;

	assert_int_equal(seen(f->db, "192.0.2.20", "a@b.example", t, &rec),
	    GDB_R_NEW);
	/* After greyexp the tuple is gone: new again, not passed. */
	t += GDB_GREYEXP_DEFAULT;
	assert_int_equal(seen(f->db, "192.0.2.20", "a@b.example", t, &rec),
	    GDB_R_NEW);
	assert_int_equal(rec.bcount, 1);
	/* White expiry. */
	assert_int_equal(seen(f->db, "192.0.2.20", "a@b.example",
	    t + GDB_PASSTIME_DEFAULT + 1, &rec), GDB_R_PASSED);
	t += GDB_PASSTIME_DEFAULT + 1 + GDB_WHITEEXP_DEFAULT;
	assert_int_equal(seen(f->db, "192.0.2.20", "a@b.example", t, &rec),
	    GDB_R_NEW);
}

/* test_rules_trap - spamtrap recipient and foreign domains trap the ip;
 * a trapped ip is never whitelisted; spamtraps never expire */
static void
test_rules_trap(void **state)
{
	struct fix *f = *state;
	static const char *const allowed[] = { "example.com", "@exact.org",
	    NULL };
	static const struct {
		const char	*ip, *to;
		int64_t		 at;
		enum gdb_result	 want;
	} steps[] = {
		/* grey first, then the trap, then the tuple would pass */
		{ "192.0.2.30", "user@example.com", 0, GDB_R_NEW },
		{ "192.0.2.30", "<Trap@Example.COM>", 10, GDB_R_TRAP },
		{ "192.0.2.30", "user@example.com", 3600, GDB_R_TRAPPED },
		/* domains outside the list */
		{ "192.0.2.31", "x@other.net", 0, GDB_R_TRAP },
		{ "192.0.2.32", "x@sub.example.com", 0, GDB_R_NEW },
		{ "192.0.2.33", "x@badexample.com", 0, GDB_R_TRAP },
		{ "192.0.2.34", "x@exact.org", 0, GDB_R_NEW },
		{ "192.0.2.35", "x@sub.exact.org", 0, GDB_R_TRAP },
		{ "192.0.2.36", "postmaster", 0, GDB_R_NEW },
		/* after trapexp the ip may greylist again */
		{ "192.0.2.30", "user@example.com",
		  10 + GDB_TRAPEXP_DEFAULT, GDB_R_NEW },
	};
	struct gdb_rec rec, tr;
	struct gdb_err err;
	size_t i;
	long count, read;

	assert_int_equal(gdb_spamtrap_add(f->db, "<TRAP@example.com>", &err),
	    0);
	assert_int_equal(gdb_set_allowed_domains(f->db, allowed, &err), 0);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		assert_int_equal(seen(f->db, steps[i].ip, steps[i].to,
		    T0 + steps[i].at, &rec), steps[i].want);
	}
	assert_int_equal(get_ip(f->db, GDB_TRAPPED, "192.0.2.31", &tr), 1);
	assert_int_equal(tr.pcount, GDB_PCOUNT_TRAPPED);
	assert_int_equal(tr.expire, T0 + GDB_TRAPEXP_DEFAULT);

	/* Trapped ip: gdb_white is refused, and a tuple that has waited
	 * past passtime still does not pass. */
	assert_int_equal(gdb_white(f->db, "192.0.2.31", T0 + 1, T0 + 99999,
	    &err), -1);
	assert_non_null(strstr(err.msg, "TRAPPED"));
	assert_int_equal(seen(f->db, "192.0.2.31", "u@example.com",
	    T0 + GDB_PASSTIME_DEFAULT + 5, &rec), GDB_R_TRAPPED);

	/* Spamtrap never expires, even far in the future. */
	assert_int_equal(gdb_expire(f->db, INT64_MAX / 2, NULL, NULL, &count,
	    &read, &err), 0);
	memset(&tr, 0, sizeof(tr));
	tr.type = GDB_SPAMTRAP;
	strlcpy(tr.to, "trap@EXAMPLE.com", sizeof(tr.to));
	assert_int_equal(gdb_get(f->db, &tr, &err), 1);
	assert_int_equal(tr.pcount, GDB_PCOUNT_SPAMTRAP);
	assert_int_equal(gdb_set_allowed_domains(f->db, NULL, &err), 0);
	assert_int_equal(seen(f->db, "192.0.2.40", "<trap@example.com>",
	    INT64_MAX / 2 + 1, &rec), GDB_R_TRAP);
	assert_int_equal(gdb_spamtrap_del(f->db, "trap@example.com", &err), 0);
	assert_int_equal(gdb_get(f->db, &tr, &err), 0);
}

/* test_trap_white_cmds - gdb_trap drops WHITE; gdb_white after expiry */
static void
test_trap_white_cmds(void **state)
{
	struct fix *f = *state;
	struct gdb_rec r;
	struct gdb_err err;

	assert_int_equal(gdb_white(f->db, "2001:DB8::5", T0, T0 + 100, &err),
	    0);
	assert_int_equal(get_ip(f->db, GDB_WHITE, "2001:db8::5", &r), 1);
	assert_int_equal(r.expire, T0 + 100);
	assert_int_equal(gdb_trap(f->db, "2001:db8::5", T0 + 1, T0 + 50, &err),
	    0);
	assert_int_equal(get_ip(f->db, GDB_WHITE, "2001:db8::5", &r), 0);
	assert_int_equal(get_ip(f->db, GDB_TRAPPED, "2001:db8::5", &r), 1);
	assert_int_equal(gdb_white(f->db, "2001:db8::5", T0 + 50, T0 + 200,
	    &err), 0);
	assert_int_equal(gdb_trap(f->db, "not-an-ip", T0, T0, &err), -1);
	assert_non_null(strstr(err.msg, "not-an-ip"));
}

/* test_white_seen - greylogd's refresh is spamlogd's: a live WHITE gets
 * pcount + 1 and the new expire, first, pass and bcount stay; a new one
 * starts at first = pass = now, bcount 1, pcount 0; trapped is refused */
static void
test_white_seen(void **state)
{
	struct fix *f = *state;
	struct gdb_rec r;
	struct gdb_err err;

	assert_int_equal(gdb_white_seen(f->db, "192.0.2.60", T0, T0 + 100,
	    &err), 0);
	assert_int_equal(get_ip(f->db, GDB_WHITE, "192.0.2.60", &r), 1);
	assert_int_equal(r.first, T0);
	assert_int_equal(r.pass, T0);
	assert_int_equal(r.expire, T0 + 100);
	assert_int_equal(r.bcount, 1);
	assert_int_equal(r.pcount, 0);
	assert_int_equal(gdb_white_seen(f->db, "192.0.2.60", T0 + 10,
	    T0 + 500, &err), 0);
	assert_int_equal(gdb_white_seen(f->db, "192.0.2.60", T0 + 20,
	    T0 + 600, &err), 0);
	assert_int_equal(get_ip(f->db, GDB_WHITE, "192.0.2.60", &r), 1);
	assert_int_equal(r.first, T0);
	assert_int_equal(r.pass, T0);
	assert_int_equal(r.expire, T0 + 600);
	assert_int_equal(r.bcount, 1);
	assert_int_equal(r.pcount, 2);
	/* expired: a new entry */
	assert_int_equal(gdb_white_seen(f->db, "192.0.2.60", T0 + 700,
	    T0 + 800, &err), 0);
	assert_int_equal(get_ip(f->db, GDB_WHITE, "192.0.2.60", &r), 1);
	assert_int_equal(r.first, T0 + 700);
	assert_int_equal(r.pcount, 0);
	assert_int_equal(gdb_trap(f->db, "192.0.2.61", T0, T0 + 100, &err),
	    0);
	assert_int_equal(gdb_white_seen(f->db, "192.0.2.61", T0 + 1,
	    T0 + 200, &err), -1);
	assert_non_null(strstr(err.msg, "TRAPPED"));
	assert_int_equal(get_ip(f->db, GDB_WHITE, "192.0.2.61", &r), 0);
}

/* test_ipv6_tuples - IPv6 and IPv4-mapped tuples use canonical keys */
static void
test_ipv6_tuples(void **state)
{
	struct fix *f = *state;
	struct gdb_rec rec;

	assert_int_equal(seen(f->db, "2001:0DB8:0000::0042", "a@b.example",
	    T0, &rec), GDB_R_NEW);
	assert_string_equal(rec.ip, "2001:db8::42");
	assert_int_equal(seen(f->db, "2001:db8::42", "a@b.example", T0 + 1,
	    &rec), GDB_R_GREY);
	assert_int_equal(seen(f->db, "::ffff:192.0.2.77", "a@b.example",
	    T0, &rec), GDB_R_NEW);
	assert_int_equal(seen(f->db, "192.0.2.77", "a@b.example",
	    T0 + GDB_PASSTIME_DEFAULT + 1, &rec), GDB_R_PASSED);
	assert_string_equal(rec.ip, "192.0.2.77");
}

/* test_expire_index - expiring 1% reads about 1%, not N */
static void
test_expire_index(void **state)
{
	struct fix *f = *state;
	const int n = 5000, nexp = 50;
	struct gdb_rec r;
	struct gdb_stats st;
	struct gdb_err err;
	long count = 0, read = 0;
	int i;

	for (i = 0; i < n; i++) {
		memset(&r, 0, sizeof(r));
		r.type = i % 2 ? GDB_WHITE : GDB_GREY;
		snprintf(r.ip, sizeof(r.ip), "10.%d.%d.%d", i >> 16,
		    (i >> 8) & 255, i & 255);
		strlcpy(r.helo, "h", sizeof(r.helo));
		strlcpy(r.to, "t@example.com", sizeof(r.to));
		r.first = T0;
		r.expire = i < nexp ? T0 + 10 + i % 7 : T0 + 100000 + i;
		assert_int_equal(gdb_put(f->db, &r, &err), 0);
	}
	assert_int_equal(gdb_spamtrap_add(f->db, "trap@example.com", &err), 0);
	assert_int_equal(gdb_expire(f->db, T0 + 100, NULL, NULL, &count,
	    &read, &err), 0);
	assert_int_equal(count, nexp);
	/* Every expired entry plus the first one that is not. */
	assert_true(read >= nexp && read <= nexp + 1);
	assert_int_equal(gdb_stats(f->db, &st, &err), 0);
	assert_int_equal(st.grey + st.white, n - nexp);
	assert_int_equal(st.spamtrap, 1);
	/* Nothing more to expire: one entry read. */
	assert_int_equal(gdb_expire(f->db, T0 + 100, NULL, NULL, &count,
	    &read, &err), 0);
	assert_int_equal(count, 0);
	assert_int_equal(read, 1);
}

/* count_logs - log files in dir */
static int
count_logs(const char *dir)
{
	char cmd[128];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c '^log\\.'", dir);
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	if (fscanf(p, "%d", &n) != 1)
		n = -1;
	pclose(p);
	return n;
}

/* test_expire_many - expiring more records than greyd's ~57,000 lock
 * failure in one call works (batches), and old logs are removed; with
 * GREY_TEST_SMALL=1 (tests/run.sh's valgrind pass, where 60,500 puts take
 * minutes, and 6,050 took 45 s idle and 549 s once behind the disk's
 * writeback) 2,050 records, still three expire batches of 1,000 */
static void
test_expire_many(void **state)
{
	struct fix *f = *state;
	const char *small = getenv("GREY_TEST_SMALL");
	const long n = small != NULL && strcmp(small, "1") == 0 ? 2050 : 60500;
	struct gdb_rec r;
	struct gdb_stats st;
	struct gdb_err err;
	long i, count = 0, read = 0;
	int logs;

	for (i = 0; i < n; i++) {
		memset(&r, 0, sizeof(r));
		r.type = GDB_GREY;
		snprintf(r.ip, sizeof(r.ip), "10.9.%ld.%ld", i / 250, i % 250);
		snprintf(r.helo, sizeof(r.helo), "helo-%ld.example.net", i);
		strlcpy(r.from, "someone.with.a.long.name@example.org",
		    sizeof(r.from));
		strlcpy(r.to, "recipient.with.a.long.name@example.com",
		    sizeof(r.to));
		r.first = T0;
		r.expire = T0 + 1 + i % 1000;
		assert_int_equal(gdb_put(f->db, &r, &err), 0);
		if (i % 5000 == 0)
			assert_int_equal(gdb_flush(f->db, &err), 0);
	}
	assert_int_equal(gdb_expire(f->db, T0 + 1000, NULL, NULL, &count,
	    &read, &err), 0);
	assert_int_equal(count, n);
	assert_int_equal(read, n);
	assert_int_equal(gdb_stats(f->db, &st, &err), 0);
	assert_int_equal(st.grey, 0);
	/* DB_LOG_AUTO_REMOVE plus the checkpoints in gdb_flush: the log
	 * does not keep every file it ever wrote. */
	assert_int_equal(gdb_flush(f->db, &err), 0);
	logs = count_logs(f->dir);
	assert_true(logs >= 1 && logs <= 2);
}

struct cb_count {
	long	white, grey;
};

/* count_cb - count expired records by type */
static int
count_cb(const struct gdb_rec *rec, void *arg)
{
	struct cb_count *c = arg;

	if (rec->type == GDB_WHITE)
		c->white++;
	else if (rec->type == GDB_GREY)
		c->grey++;
	return 0;
}

/* test_expire_rewrite - an updated record is expired by its new time only,
 * and the callback sees each removed record */
static void
test_expire_rewrite(void **state)
{
	struct fix *f = *state;
	struct gdb_rec rec;
	struct gdb_err err;
	struct cb_count cc = { 0, 0 };
	long count, read;

	assert_int_equal(seen(f->db, "192.0.2.50", "a@b.example", T0, &rec),
	    GDB_R_NEW);
	assert_int_equal(seen(f->db, "192.0.2.50", "a@b.example",
	    T0 + GDB_PASSTIME_DEFAULT + 1, &rec), GDB_R_PASSED);
	assert_int_equal(gdb_white(f->db, "192.0.2.50", T0 + 2000, T0 + 5000,
	    &err), 0);
	assert_int_equal(seen(f->db, "192.0.2.51", "a@b.example", T0, &rec),
	    GDB_R_NEW);
	/* Old WHITE expire (passtime+whiteexp) is gone from the index. */
	assert_int_equal(gdb_expire(f->db, T0 + 4999, count_cb, &cc, &count,
	    &read, &err), 0);
	assert_int_equal(count, 0);
	assert_int_equal(gdb_expire(f->db, T0 + 5000, count_cb, &cc, &count,
	    &read, &err), 0);
	assert_int_equal(count, 1);
	assert_int_equal(cc.white, 1);
	assert_int_equal(gdb_expire(f->db, T0 + GDB_GREYEXP_DEFAULT, count_cb,
	    &cc, &count, &read, &err), 0);
	assert_int_equal(count, 1);
	assert_int_equal(cc.grey, 1);
}

struct walk_seen {
	long	n[5];
	int	badtype;
	enum gdb_type want;
};

/* walk_cb - count visited records; flag a record of another type */
static int
walk_cb(const struct gdb_rec *rec, void *arg)
{
	struct walk_seen *w = arg;

	if (rec->type < 1 || rec->type > 4)
		return 1;
	w->n[rec->type]++;
	if (w->want != 0 && rec->type != w->want)
		w->badtype = 1;
	return 0;
}

/* test_walk_stats_del - walk per type and by ip, stats, gdb_del,
 * gdb_del_grey_ip */
static void
test_walk_stats_del(void **state)
{
	struct fix *f = *state;
	static const struct { enum gdb_type type; long want; } rows[] = {
		{ GDB_GREY, 1203 }, { GDB_WHITE, 2 }, { GDB_TRAPPED, 1 },
		{ GDB_SPAMTRAP, 2 },
	};
	struct walk_seen w;
	struct gdb_stats st;
	struct gdb_rec r, rec;
	struct gdb_err err;
	char to[64];
	size_t i;
	int k;

	/* 1200 tuples of one ip cross several scan batches. */
	for (k = 0; k < 1200; k++) {
		snprintf(to, sizeof(to), "u%d@example.com", k);
		seen(f->db, "192.0.2.60", to, T0, &rec);
	}
	seen(f->db, "192.0.2.6", "a@example.com", T0, &rec);
	seen(f->db, "192.0.2.61", "a@example.com", T0, &rec);
	seen(f->db, "2001:db8::60", "a@example.com", T0, &rec);
	gdb_white(f->db, "192.0.2.62", T0, T0 + 10, &err);
	gdb_white(f->db, "192.0.2.63", T0, T0 + 10, &err);
	gdb_trap(f->db, "192.0.2.64", T0, T0 + 10, &err);
	gdb_spamtrap_add(f->db, "t1@example.com", &err);
	gdb_spamtrap_add(f->db, "t2@example.com", &err);

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&w, 0, sizeof(w));
		w.want = rows[i].type;
		assert_int_equal(gdb_walk(f->db, rows[i].type, walk_cb, &w,
		    &err), 0);
		assert_int_equal(w.n[rows[i].type], rows[i].want);
		assert_false(w.badtype);
	}
	memset(&w, 0, sizeof(w));
	assert_int_equal(gdb_walk(f->db, 0, walk_cb, &w, &err), 0);
	assert_int_equal(w.n[1] + w.n[2] + w.n[3] + w.n[4], 1208);
	assert_int_equal(gdb_stats(f->db, &st, &err), 0);
	assert_int_equal(st.grey, 1203);
	assert_int_equal(st.white, 2);
	assert_int_equal(st.trapped, 1);
	assert_int_equal(st.spamtrap, 2);

	/* Walk by ip: exactly that ip's GREY tuples (not 192.0.2.6 or .61,
	 * whose keys share a prefix), the ip canonicalised first. */
	{
		static const struct { const char *ip; int rc; long n; }
		    byip[] = {
			{ "192.0.2.60", 0, 1200 }, { "192.0.2.6", 0, 1 },
			{ "192.0.2.61", 0, 1 }, { "2001:0db8:0::60", 0, 1 },
			{ "192.0.2.62", 0, 0 }, { "192.0.2.99", 0, 0 },
			{ "bogus", -1, 0 },
		};

		for (i = 0; i < sizeof(byip) / sizeof(byip[0]); i++) {
			memset(&w, 0, sizeof(w));
			w.want = GDB_GREY;
			assert_int_equal(gdb_walk_ip(f->db, byip[i].ip,
			    walk_cb, &w, &err), byip[i].rc);
			assert_int_equal(w.n[GDB_GREY], byip[i].n);
			assert_false(w.badtype);
		}
	}
	/* Delete by ip: exactly that ip's tuples (not 192.0.2.6 or .61). */
	assert_int_equal(gdb_del_grey_ip(f->db, "192.0.2.60", &err), 1200);
	assert_int_equal(gdb_del_grey_ip(f->db, "192.0.2.60", &err), 0);
	assert_int_equal(gdb_del_grey_ip(f->db, "bogus", &err), -1);
	/* gdb_del: 1 then 0. */
	memset(&r, 0, sizeof(r));
	r.type = GDB_WHITE;
	strlcpy(r.ip, "192.0.2.62", sizeof(r.ip));
	assert_int_equal(gdb_del(f->db, &r, &err), 1);
	assert_int_equal(gdb_del(f->db, &r, &err), 0);
	assert_int_equal(gdb_stats(f->db, &st, &err), 0);
	assert_int_equal(st.grey, 3);
	assert_int_equal(st.white, 1);
	/* Deleted records leave no index entry: nothing to expire. */
	{
		long count, read;

		assert_int_equal(gdb_expire(f->db, T0 + 11, NULL, NULL,
		    &count, &read, &err), 0);
		assert_int_equal(count, 2);	/* .63 WHITE, .64 TRAPPED */
	}
}

/* test_open_errors - missing dir without create names it; readonly */
static void
test_open_errors(void **state)
{
	struct gdb_opts o = { 0 };
	struct gdb *db = NULL;
	struct gdb_err err;
	char dir[64], file[96];
	FILE *fp;

	strlcpy(dir, "/tmp/test_greydb_missing.XXXXXX", sizeof(dir));
	assert_non_null(mkdtemp(dir));
	rm_dir(dir);
	assert_int_equal(gdb_open(&db, dir, &o, &err), -1);
	assert_null(db);
	assert_non_null(strstr(err.msg, dir));
	assert_non_null(strstr(err.msg, "No such file"));
	assert_int_equal(access(dir, F_OK), -1);	/* not created */

	/* A file where the directory should be. */
	assert_int_equal(gdb_open(&db, "/etc/passwd", &o, &err), -1);
	assert_non_null(strstr(err.msg, "/etc/passwd"));

	/* An existing empty directory without create: no database. */
	assert_non_null(mkdtemp(strcpy(dir, "/tmp/test_greydb_e.XXXXXX")));
	assert_int_equal(gdb_open(&db, dir, &o, &err), -1);
	assert_non_null(strstr(err.msg, dir));

	/* Create, write, reopen readonly: reads work, writes refused. */
	o.create = 1;
	assert_int_equal(gdb_open(&db, dir, &o, &err), 0);
	assert_int_equal(gdb_white(db, "192.0.2.1", T0, T0 + 10, &err), 0);
	gdb_close(db);
	o.create = 0;
	o.readonly = 1;
	assert_int_equal(gdb_open(&db, dir, &o, &err), 0);
	{
		struct gdb_rec r;

		assert_int_equal(get_ip(db, GDB_WHITE, "192.0.2.1", &r), 1);
	}
	assert_int_equal(gdb_white(db, "192.0.2.2", T0, T0 + 10, &err), -1);
	assert_non_null(strstr(err.msg, "readonly"));
	gdb_close(db);
	gdb_close(NULL);

	/* Allowed domains file errors name path:line. */
	snprintf(file, sizeof(file), "%s/allowed", dir);
	assert_non_null(fp = fopen(file, "w"));
	fputs("# domains\nexample.com\n\nbad domain.org\n", fp);
	fclose(fp);
	o.readonly = 0;
	assert_int_equal(gdb_open(&db, dir, &o, &err), 0);
	assert_int_equal(gdb_load_allowed_domains(db, file, &err), -1);
	assert_non_null(strstr(err.msg, ":4:"));
	assert_int_equal(gdb_domain_allowed(db, "a@other.org"), 1);
	assert_non_null(fp = fopen(file, "w"));
	fputs("# domains\n  Example.COM  # ours\n", fp);
	fclose(fp);
	assert_int_equal(gdb_load_allowed_domains(db, file, &err), 0);
	assert_int_equal(gdb_domain_allowed(db, "a@other.org"), 0);
	assert_int_equal(gdb_domain_allowed(db, "a@example.com"), 1);
	gdb_close(db);
	rm_dir(dir);
}

/*
 * test_file_modes - a fresh environment (directory, regions, logs,
 * databases) gives group and others nothing, even under umask 0
 */
static void
test_file_modes(void **state)
{
	struct gdb_opts o = { .create = 1 };
	struct gdb *db = NULL;
	struct gdb_err err;
	struct dirent *de;
	struct stat st;
	char top[64], dir[96], path[384];
	mode_t old;
	DIR *d;
	int n = 0;

	(void)state;
	strlcpy(top, "/tmp/test_greydb_modes.XXXXXX", sizeof(top));
	assert_non_null(mkdtemp(top));
	/* gdb_open makes the missing directory itself */
	snprintf(dir, sizeof(dir), "%s/db", top);
	old = umask(0);
	assert_int_equal(gdb_open(&db, dir, &o, &err), 0);
	assert_int_equal(gdb_white(db, "192.0.2.1", T0, T0 + 10, &err), 0);
	gdb_close(db);
	umask(old);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		assert_int_equal(stat(path, &st), 0);
		if ((st.st_mode & 077) != 0)
			fail_msg("%s has mode %04o", path,
			    (unsigned)(st.st_mode & 07777));
		n++;
	}
	closedir(d);
	assert_true(n >= 3);	/* regions, a log, grey.db, expire.db */
	rm_dir(top);
}

/* test_put_rejects - bad key fields are refused with a message */
static void
test_put_rejects(void **state)
{
	struct fix *f = *state;
	struct gdb_rec r;
	struct gdb_err err;

	memset(&r, 0, sizeof(r));
	r.type = 9;
	assert_int_equal(gdb_put(f->db, &r, &err), -1);
	assert_non_null(strstr(err.msg, "unknown type"));
	r.type = GDB_GREY;
	strlcpy(r.ip, "999.1.1.1", sizeof(r.ip));
	assert_int_equal(gdb_put(f->db, &r, &err), -1);
	assert_non_null(strstr(err.msg, "999.1.1.1"));
	r.type = GDB_SPAMTRAP;
	assert_int_equal(gdb_put(f->db, &r, &err), -1);
	assert_non_null(strstr(err.msg, "empty"));
}

/* raw_put - write key/value bytes into grey.db behind the library's back */
static void
raw_put(const char *dir, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	DB_ENV *env;
	DB *d;
	DBT k, v;

	assert_int_equal(db_env_create(&env, 0), 0);
	assert_int_equal(env->open(env, dir, DB_CREATE | DB_INIT_TXN |
	    DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL, 0600), 0);
	assert_int_equal(db_create(&d, env, 0), 0);
	assert_int_equal(d->open(d, NULL, "grey.db", NULL, DB_BTREE,
	    DB_AUTO_COMMIT, 0), 0);
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)(uintptr_t)key;
	k.size = (u_int32_t)klen;
	v.data = (void *)(uintptr_t)val;
	v.size = (u_int32_t)vlen;
	assert_int_equal(d->put(d, NULL, &k, &v, DB_AUTO_COMMIT), 0);
	d->close(d, 0);
	env->close(env, 0);
}

/* test_bad_value_on_disk - a damaged value is an error naming the key,
 * for lookups, walks and the rules, never a crash */
static void
test_bad_value_on_disk(void **state)
{
	struct fix *f = *state;
	static const struct { const char *ip; unsigned char ver; size_t len; }
	rows[] = {
		{ "192.0.2.91", 7, GDB_VAL_SIZE },	/* unknown version */
		{ "192.0.2.92", GDB_VAL_VERSION, 12 },	/* short */
		{ "192.0.2.93", GDB_VAL_VERSION, 200 },	/* long */
	};
	struct gdb_opts o = { .create = 0 };
	unsigned char key[64], val[256];
	struct gdb_rec r;
	struct gdb_err err;
	struct walk_seen w;
	enum gdb_result res;
	size_t i, klen;

	gdb_close(f->db);
	f->db = NULL;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		key[0] = GDB_WHITE;
		klen = strlen(rows[i].ip);
		memcpy(key + 1, rows[i].ip, klen);
		memset(val, 0, sizeof(val));
		val[0] = rows[i].ver;
		raw_put(f->dir, key, klen + 1, val, rows[i].len);
	}
	assert_int_equal(gdb_open(&f->db, f->dir, &o, &err), 0);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_int_equal(get_ip(f->db, GDB_WHITE, rows[i].ip, &r), -1);
		assert_int_equal(gdb_get(f->db, &r, &err), -1);
		assert_non_null(strstr(err.msg, rows[i].ip));
		assert_int_equal(gdb_tuple_seen(f->db, rows[i].ip, "h", "",
		    "a@b.example", T0, &times, &res, NULL, &err), -1);
		assert_non_null(strstr(err.msg, rows[i].ip));
	}
	memset(&w, 0, sizeof(w));
	assert_int_equal(gdb_walk(f->db, GDB_WHITE, walk_cb, &w, &err), -1);
	assert_non_null(strstr(err.msg, "192.0.2.91"));
	/* The operator can delete a damaged record. */
	memset(&r, 0, sizeof(r));
	r.type = GDB_WHITE;
	strlcpy(r.ip, "192.0.2.91", sizeof(r.ip));
	assert_int_equal(gdb_del(f->db, &r, &err), 1);
}

/* test_batch_matches_single - gdb_tuple_seen_many gives, tuple by tuple,
 * what gdb_tuple_seen gives (duplicates in one batch, traps, passes) */
static void
test_batch_matches_single(void **state)
{
	static const struct {
		int	batch;		/* which transaction (0 or 1) */
		int	host;		/* last octet; 0 = a bad address */
		const char *to;
		enum gdb_result want;
	} rows[] = {
		{ 0, 1, "a@example.com", GDB_R_NEW },
		{ 0, 1, "a@example.com", GDB_R_GREY },	/* same batch */
		{ 0, 2, "trap@example.com", GDB_R_TRAP },
		{ 0, 2, "a@example.com", GDB_R_TRAPPED },
		{ 0, 0, "a@example.com", 0 },
		{ 1, 1, "<A@Example.com>", GDB_R_PASSED },
		{ 1, 1, "b@example.com", GDB_R_WHITE },
		{ 1, 3, "a@example.com", GDB_R_NEW },
	};
	const size_t n = sizeof(rows) / sizeof(rows[0]);
	struct fix *f = *state;
	struct gdb_tuple tv[8];
	char ips[8][32];
	struct gdb_rec rec;
	struct gdb_err err;
	size_t i, j, k;
	int b;

	assert_int_equal(gdb_spamtrap_add(f->db, "trap@example.com", &err), 0);
	/* single calls for 10.0.0.x, then batches for 10.1.0.x */
	for (b = 0; b < 2; b++) {
		int64_t now = T0 + b * (times.passtime + 1);

		for (i = 0, k = 0; i < n; i++) {
			if (rows[i].batch != b)
				continue;
			snprintf(ips[k], sizeof(ips[k]), rows[i].host ?
			    "10.1.0.%d" : "nope", rows[i].host);
			tv[k] = (struct gdb_tuple){ .ip = ips[k],
			    .helo = "mx.example", .from = "<Sender@Example.org>",
			    .to = rows[i].to };
			k++;
		}
		assert_int_equal(gdb_tuple_seen_many(f->db, tv, k, now, &times,
		    &err), 0);
		for (i = 0, j = 0; i < n; i++) {
			char ip[32];

			if (rows[i].batch != b)
				continue;
			if (rows[i].host == 0) {
				assert_true(tv[j].bad);
				j++;
				continue;
			}
			snprintf(ip, sizeof(ip), "10.0.0.%d", rows[i].host);
			assert_int_equal(seen(f->db, ip, rows[i].to, now, &rec),
			    rows[i].want);
			assert_false(tv[j].bad);
			assert_int_equal(tv[j].res, rows[i].want);
			assert_int_equal(tv[j].rec.first, rec.first);
			assert_int_equal(tv[j].rec.pass, rec.pass);
			assert_int_equal(tv[j].rec.expire, rec.expire);
			assert_int_equal(tv[j].rec.bcount, rec.bcount);
			assert_int_equal(tv[j].rec.pcount, rec.pcount);
			j++;
		}
	}
	/* the batch wrote what the single calls wrote */
	assert_int_equal(get_ip(f->db, GDB_WHITE, "10.1.0.1", &rec), 1);
	assert_int_equal(get_ip(f->db, GDB_TRAPPED, "10.1.0.2", &rec), 1);
	/* too big a batch is refused, nothing written */
	assert_int_equal(gdb_tuple_seen_many(f->db, tv, GDB_BATCH_MAX + 1,
	    T0, &times, &err), -1);
	assert_non_null(strstr(err.msg, "batch"));
}

/* count_grey - GREY records in the store */
static int
count_grey_cb(const struct gdb_rec *rec, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int
count_grey(struct gdb *db)
{
	struct gdb_err err;
	int n = 0;

	assert_int_equal(gdb_walk(db, GDB_GREY, count_grey_cb, &n, &err), 0);
	return n;
}

/*
 * test_new_left - (added) gdb_tuple.new_left bounds the NEW tuples of a
 * client in a batch, shared by its tuples, in order; a tuple seen again,
 * a pass and a trap are never refused; a refused tuple writes nothing
 */
static void
test_new_left(void **state)
{
	struct fix *f = *state;
	struct gdb_tuple tv[8];
	struct gdb_rec rec;
	struct gdb_err err;
	int a = 2, b = 0;

	assert_int_equal(gdb_spamtrap_add(f->db, "trap@example.com", &err), 0);
	tv[0] = (struct gdb_tuple){ "10.2.0.1", "h", "s@x", "1@example.com",
	    &a, 0, { 0 }, 0 };
	tv[1] = tv[0];				/* the same again: GREY */
	tv[2] = tv[0];
	tv[2].to = "2@example.com";		/* NEW, the last of a's */
	tv[3] = tv[0];
	tv[3].to = "3@example.com";		/* REFUSED */
	tv[4] = (struct gdb_tuple){ "10.2.0.2", "h", "s@x", "1@example.com",
	    &b, 0, { 0 }, 0 };			/* REFUSED: b is 0 */
	tv[5] = (struct gdb_tuple){ "10.2.0.3", "h", "s@x", "1@example.com",
	    NULL, 0, { 0 }, 0 };		/* NEW: no bound */
	assert_int_equal(gdb_tuple_seen_many(f->db, tv, 6, T0, &times, &err),
	    0);
	assert_int_equal(tv[0].res, GDB_R_NEW);
	assert_int_equal(tv[1].res, GDB_R_GREY);
	assert_int_equal(tv[2].res, GDB_R_NEW);
	assert_int_equal(tv[3].res, GDB_R_REFUSED);
	assert_int_equal(tv[4].res, GDB_R_REFUSED);
	assert_int_equal(tv[5].res, GDB_R_NEW);
	/* what a refused tuple would have been */
	assert_int_equal(tv[3].rec.first, T0);
	assert_string_equal(tv[3].rec.to, "3@example.com");
	assert_int_equal(a, 0);
	assert_int_equal(b, 0);
	assert_int_equal(count_grey(f->db), 3);
	memset(&rec, 0, sizeof(rec));
	rec.type = GDB_GREY;
	strlcpy(rec.ip, "10.2.0.1", sizeof(rec.ip));
	strlcpy(rec.helo, "h", sizeof(rec.helo));
	strlcpy(rec.from, "s@x", sizeof(rec.from));
	strlcpy(rec.to, "3@example.com", sizeof(rec.to));
	assert_int_equal(gdb_get(f->db, &rec, &err), 0);
	/* budget spent: seen again and passed still go; a trap too */
	tv[0].to = "1@example.com";
	tv[1] = tv[0];
	tv[1].to = "2@example.com";
	tv[2] = tv[4];
	tv[2].to = "trap@example.com";
	assert_int_equal(gdb_tuple_seen_many(f->db, tv, 3,
	    T0 + times.passtime + 1, &times, &err), 0);
	assert_int_equal(tv[0].res, GDB_R_PASSED);
	assert_int_equal(tv[1].res, GDB_R_WHITE);
	assert_int_equal(tv[2].res, GDB_R_TRAP);
	assert_int_equal(get_ip(f->db, GDB_WHITE, "10.2.0.1", &rec), 1);
	assert_int_equal(get_ip(f->db, GDB_TRAPPED, "10.2.0.2", &rec), 1);
	/* on error the counts are as given */
	a = 5;
	assert_int_equal(gdb_tuple_seen_many(f->db, tv, GDB_BATCH_MAX + 1, T0,
	    &times, &err), -1);
	assert_int_equal(a, 5);
}

/*
 * test_no_new_grey - (added) gdb_set_no_new_grey: no NEW tuple is
 * written, by gdb_tuple_seen or a batch; a tuple seen again, a pass,
 * WHITE, a trap, gdb_put and deletions go on; off again, NEW is back
 */
static void
test_no_new_grey(void **state)
{
	struct fix *f = *state;
	struct gdb_tuple tv[2];
	struct gdb_rec rec;
	struct gdb_err err;
	enum gdb_result res;

	assert_int_equal(gdb_spamtrap_add(f->db, "trap@example.com", &err), 0);
	assert_int_equal(seen(f->db, "10.3.0.1", "old@example.com", T0, &rec),
	    GDB_R_NEW);
	gdb_set_no_new_grey(f->db, 1);
	assert_int_equal(seen(f->db, "10.3.0.1", "new@example.com", T0, &rec),
	    GDB_R_REFUSED);
	assert_int_equal(seen(f->db, "10.3.0.1", "old@example.com", T0 + 1,
	    &rec), GDB_R_GREY);
	assert_int_equal(rec.bcount, 2);
	tv[0] = (struct gdb_tuple){ "10.3.0.2", "mx.example",
	    "<Sender@Example.org>", "x@example.com", NULL, 0, { 0 }, 0 };
	tv[1] = tv[0];
	tv[1].to = "trap@example.com";
	assert_int_equal(gdb_tuple_seen_many(f->db, tv, 2, T0, &times, &err),
	    0);
	assert_int_equal(tv[0].res, GDB_R_REFUSED);
	assert_int_equal(tv[1].res, GDB_R_TRAP);
	assert_int_equal(count_grey(f->db), 1);
	assert_int_equal(gdb_white(f->db, "10.3.0.9", T0, T0 + 100, &err), 0);
	memset(&rec, 0, sizeof(rec));
	rec.type = GDB_GREY;
	strlcpy(rec.ip, "10.3.0.8", sizeof(rec.ip));
	strlcpy(rec.to, "put@example.com", sizeof(rec.to));
	rec.first = T0;
	rec.pass = rec.expire = T0 + 100;
	assert_int_equal(gdb_put(f->db, &rec, &err), 0);
	assert_int_equal(gdb_del(f->db, &rec, &err), 1);
	assert_int_equal(gdb_tuple_seen(f->db, "10.3.0.1", "mx.example",
	    "<Sender@Example.org>", "old@example.com",
	    T0 + times.passtime + 1, &times, &res, &rec, &err), 0);
	assert_int_equal(res, GDB_R_PASSED);
	gdb_set_no_new_grey(f->db, 0);
	assert_int_equal(seen(f->db, "10.3.0.1", "new2@example.com", T0,
	    &rec), GDB_R_WHITE);
	assert_int_equal(seen(f->db, "10.3.0.5", "new@example.com", T0, &rec),
	    GDB_R_NEW);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_value_roundtrip),
		cmocka_unit_test(test_value_errors),
		cmocka_unit_test(test_key_roundtrip),
		cmocka_unit_test(test_key_errors),
		cmocka_unit_test(test_addr_canon),
		cmocka_unit_test(test_mail_norm),
		cmocka_unit_test_setup_teardown(test_rules_greylist, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rules_expired_absent,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_rules_trap, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_trap_white_cmds, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_white_seen, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_tuples, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expire_index, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expire_many, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expire_rewrite, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_walk_stats_del, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_batch_matches_single,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_left, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_new_grey, setup,
		    teardown),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_file_modes),
		cmocka_unit_test_setup_teardown(test_put_rejects, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_value_on_disk, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
