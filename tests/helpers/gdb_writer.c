/*
 * gdb_writer - a helper for the greydb integration tests: one process that
 * writes records into a shared environment, or checks they are there.
 *
 *   gdb_writer write DIR TAG N [sync] [print]
 *	write N distinct GREY tuples (helo TAG, to uI@example.com); with
 *	"sync" every commit is synchronous, with "print" "TAG I" is printed
 *	(and flushed) after each commit returned
 *   gdb_writer check DIR TAG N     all N tuples of TAG present?
 *   gdb_writer checkfile DIR FILE  every "TAG I" line of FILE present?
 *   gdb_writer stats DIR           open readonly, print counts by type
 *   gdb_writer seen DIR N ROUNDS   gdb_tuple_seen on the same N tuples,
 *	ROUNDS times (run two at once: they contend for the same keys)
 *	optional 5th argument WAITFILE: print "opened", wait until
 *	WAITFILE exists, then start; on an error asking for it, close and
 *	open again (prints "reopen" to stderr) and go on
 *   gdb_writer diehold DIR          write contended tuple 0 inside a
 *	transaction and die by SIGKILL before the commit (holding its locks)
 *   gdb_writer seencheck DIR N BCOUNT  every one of the N tuples has
 *	bcount BCOUNT (no update lost to a deadlock)
 * Exit 0 on success, 1 on a missing record or an error (on stderr).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "greydb/greydb.h"
/* Internal: diehold needs a transaction of its own. */
#include "greydb/gdb_private.h"

/* tuple - the record for TAG and number i */
static void
tuple(struct gdb_rec *r, const char *tag, long i)
{
	memset(r, 0, sizeof(*r));
	r->type = GDB_GREY;
	strlcpy(r->ip, "192.0.2.1", sizeof(r->ip));
	strlcpy(r->helo, tag, sizeof(r->helo));
	snprintf(r->to, sizeof(r->to), "u%ld@example.com", i);
	r->first = 1700000000 + i;
	r->pass = r->expire = 1700000000 + 14400 + i;
	r->bcount = 1;
}

/* do_write - write n tuples, optionally printing each after its commit */
static int
do_write(struct gdb *db, const char *tag, long n, int print)
{
	struct gdb_rec r;
	struct gdb_err err;
	long i;

	for (i = 0; i < n; i++) {
		tuple(&r, tag, i);
		if (gdb_put(db, &r, &err) == -1) {
			fprintf(stderr, "gdb_writer: %s\n", err.msg);
			return 1;
		}
		if (print) {
			printf("%s %ld\n", tag, i);
			fflush(stdout);
		}
	}
	if (gdb_flush(db, &err) == -1) {
		fprintf(stderr, "gdb_writer: %s\n", err.msg);
		return 1;
	}
	return 0;
}

/* present - 1 if the tuple of tag/i is there, 0 not, -1 error */
static int
present(struct gdb *db, const char *tag, long i)
{
	struct gdb_rec r;
	struct gdb_err err;
	int ret;

	tuple(&r, tag, i);
	if ((ret = gdb_get(db, &r, &err)) == -1)
		fprintf(stderr, "gdb_writer: %s\n", err.msg);
	return ret;
}

/* do_check - count present and missing tuples of tag 0..n-1 */
static int
do_check(struct gdb *db, const char *tag, long n)
{
	long i, have = 0, missing = 0;
	int ret;

	for (i = 0; i < n; i++) {
		if ((ret = present(db, tag, i)) == -1)
			return 1;
		if (ret == 1)
			have++;
		else if (missing++ < 5)
			fprintf(stderr, "gdb_writer: missing %s %ld\n", tag, i);
	}
	printf("present=%ld missing=%ld\n", have, missing);
	return missing != 0;
}

/* do_checkfile - check every "TAG I" line of path */
static int
do_checkfile(struct gdb *db, const char *path)
{
	char line[512], tag[256];
	long i, have = 0, missing = 0;
	FILE *f;
	int ret;

	if ((f = fopen(path, "r")) == NULL) {
		perror(path);
		return 1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		/* A line cut by the kill was never fully printed: skip it. */
		if (strchr(line, '\n') == NULL)
			break;
		if (sscanf(line, "%255s %ld", tag, &i) != 2)
			continue;
		if ((ret = present(db, tag, i)) == -1) {
			fclose(f);
			return 1;
		}
		if (ret == 1)
			have++;
		else if (missing++ < 5)
			fprintf(stderr, "gdb_writer: missing %s %ld\n", tag, i);
	}
	fclose(f);
	printf("present=%ld missing=%ld\n", have, missing);
	return missing != 0 || have == 0;
}

/* seen_ip - the address of contended tuple i */
static void
seen_ip(long i, char *out, size_t sz)
{
	snprintf(out, sz, "2001:db8::%lx", i + 1);
}

/* do_seen - apply the rules to the same n tuples, rounds times; reopen
 * the environment when an error asks for it */
static int
do_seen(struct gdb **dbp, const char *dir, const struct gdb_opts *o, long n,
    long rounds, const char *waitfile)
{
	static const struct gdb_times t = { 1500, 14400, 3110400, 86400 };
	char ip[GDB_ADDR_MAX];
	enum gdb_result res;
	struct gdb_err err;
	long r, i, waited;
	int reopens = 0;

	if (waitfile != NULL) {
		printf("opened\n");
		fflush(stdout);
		for (waited = 0; access(waitfile, F_OK) == -1; waited++) {
			if (waited > 3000)
				return 1;
			usleep(10000);
		}
	}
	for (r = 0; r < rounds; r++)
		for (i = 0; i < n; i++) {
			seen_ip(i, ip, sizeof(ip));
			if (gdb_tuple_seen(*dbp, ip, "h", "<A@x.example>",
			    "b@y.example", 1700000000 + r, &t, &res, NULL,
			    &err) == 0)
				continue;
			fprintf(stderr, "gdb_writer: %s\n", err.msg);
			if (!err.reopen || reopens++ > 3)
				return 1;
			fprintf(stderr, "gdb_writer: reopen\n");
			gdb_close(*dbp);
			*dbp = NULL;
			if (gdb_open(dbp, dir, o, &err) == -1) {
				fprintf(stderr, "gdb_writer: %s\n", err.msg);
				return 1;
			}
			i--;	/* that update was not made: again */
		}
	return 0;
}

/* die_body - write contended tuple 0, then die with the locks held */
static int
die_body(struct gdb *db, DB_TXN *txn, void *arg, struct gdb_err *err)
{
	struct gdb_rec r;
	int ret;

	memset(&r, 0, sizeof(r));
	r.type = GDB_GREY;
	seen_ip(0, r.ip, sizeof(r.ip));
	strlcpy(r.helo, "h", sizeof(r.helo));
	strlcpy(r.from, "a@x.example", sizeof(r.from));
	strlcpy(r.to, "b@y.example", sizeof(r.to));
	r.bcount = 999999;
	r.expire = 1700000000 + 14400;
	if ((ret = gdb_rec_write(db, txn, &r, NULL, err)) != 0)
		return ret;
	raise(SIGKILL);
	return 0;
}

/* do_seencheck - every contended tuple has bcount want */
static int
do_seencheck(struct gdb *db, long n, long want)
{
	struct gdb_rec r;
	struct gdb_err err;
	long i, bad = 0;

	for (i = 0; i < n; i++) {
		memset(&r, 0, sizeof(r));
		r.type = GDB_GREY;
		seen_ip(i, r.ip, sizeof(r.ip));
		strlcpy(r.helo, "h", sizeof(r.helo));
		strlcpy(r.from, "a@x.example", sizeof(r.from));
		strlcpy(r.to, "b@y.example", sizeof(r.to));
		if (gdb_get(db, &r, &err) != 1) {
			fprintf(stderr, "gdb_writer: tuple %ld missing\n", i);
			bad++;
		} else if (r.bcount != want && bad++ < 5)
			fprintf(stderr, "gdb_writer: tuple %ld bcount %d\n",
			    i, r.bcount);
	}
	printf("tuples=%ld wrong=%ld\n", n, bad);
	return bad != 0;
}

int
main(int argc, char *argv[])
{
	struct gdb_opts o = { 0 };
	struct gdb_stats st;
	struct gdb_err err;
	struct gdb *db;
	int i, print = 0, rc = 1;

	if (argc < 3) {
		fprintf(stderr, "usage: gdb_writer write|check|checkfile|stats "
		    "DIR ...\n");
		return 2;
	}
	if (strcmp(argv[1], "seen") == 0 || strcmp(argv[1], "diehold") == 0) {
		o.create = 1;
		o.group_commit = 1;
	}
	if (strcmp(argv[1], "write") == 0) {
		o.create = 1;
		o.group_commit = 1;
		for (i = 5; i < argc; i++) {
			if (strcmp(argv[i], "sync") == 0)
				o.group_commit = 0;
			if (strcmp(argv[i], "print") == 0)
				print = 1;
		}
	}
	if (strcmp(argv[1], "stats") == 0)
		o.readonly = 1;
	if (gdb_open(&db, argv[2], &o, &err) == -1) {
		fprintf(stderr, "gdb_writer: %s\n", err.msg);
		return 1;
	}
	if (strcmp(argv[1], "write") == 0 && argc >= 5)
		rc = do_write(db, argv[3], atol(argv[4]), print);
	else if (strcmp(argv[1], "check") == 0 && argc == 5)
		rc = do_check(db, argv[3], atol(argv[4]));
	else if (strcmp(argv[1], "seen") == 0 && (argc == 5 || argc == 6))
		rc = do_seen(&db, argv[2], &o, atol(argv[3]), atol(argv[4]),
		    argc == 6 ? argv[5] : NULL);

	else if (strcmp(argv[1], "seencheck") == 0 && argc == 5)
		rc = do_seencheck(db, atol(argv[3]), atol(argv[4]));
	else if (strcmp(argv[1], "diehold") == 0) {
		/* Not reached when the kill works. */
		if (gdb_txn_run(db, "diehold", die_body, NULL, &err) == -1)
			fprintf(stderr, "gdb_writer: %s\n", err.msg);
	} else if (strcmp(argv[1], "checkfile") == 0 && argc == 4)
		rc = do_checkfile(db, argv[3]);
	else if (strcmp(argv[1], "stats") == 0) {
		if (gdb_stats(db, &st, &err) == -1)
			fprintf(stderr, "gdb_writer: %s\n", err.msg);
		else {
			printf("grey=%ld white=%ld trapped=%ld spamtrap=%ld\n",
			    st.grey, st.white, st.trapped, st.spamtrap);
			rc = 0;
		}
	} else
		fprintf(stderr, "gdb_writer: bad arguments\n");
	gdb_close(db);
	return rc;
}
