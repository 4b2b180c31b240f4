/*
 * bench_greydb - figures for the greydb store: tuple updates per second
 * (group commit), lookups per second, expiring 1% of an N-record database
 * through the expiry index against a full-scan baseline run in the same
 * process (records read and time ratio), and bytes on disk per record.
 *
 *   bench_greydb [N]      N records (default 1,000,000)
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "greydb/greydb.h"

#define T0 1700000000LL

/* now_s - monotonic seconds */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* die - print err and exit */
static void
die(const char *what, const struct gdb_err *err)
{
	fprintf(stderr, "bench_greydb: %s: %s\n", what, err->msg);
	exit(1);
}

/* ip_of - a distinct IPv4 address for i (IPv6 for every 8th) */
static void
ip_of(long i, char *out, size_t sz)
{
	if (i % 8 == 7)
		snprintf(out, sz, "2001:db8::%lx:%lx", (i >> 16) & 0xffff,
		    i & 0xffff);
	else
		snprintf(out, sz, "10.%ld.%ld.%ld", (i >> 16) & 255,
		    (i >> 8) & 255, i & 255);
}

/* rec_of - record i of the database: a tuple; 1% expire at e1, 1% at e2 */
static void
rec_of(struct gdb_rec *r, long i, int64_t e1, int64_t e2)
{
	memset(r, 0, sizeof(*r));
	r->type = GDB_GREY;
	ip_of(i, r->ip, sizeof(r->ip));
	snprintf(r->helo, sizeof(r->helo), "mail%ld.example.net", i % 1000);
	snprintf(r->from, sizeof(r->from), "sender%ld@example.net", i % 5000);
	snprintf(r->to, sizeof(r->to), "user%ld@example.com", i % 300);
	r->first = T0;
	r->pass = T0 + 14400;
	r->expire = i % 100 == 0 ? e1 : i % 100 == 50 ? e2 : T0 + 86400 + i;
	r->bcount = 1;
}

/* file_size - bytes of dir/name, 0 if absent */
static long long
file_size(const char *dir, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

/* log_bytes - bytes in the environment's log files, and how many */
static long long
log_bytes(const char *dir, int *nfiles)
{
	struct dirent *de;
	long long sum = 0;
	DIR *d;

	*nfiles = 0;
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "log.", 4) == 0) {
			sum += file_size(dir, de->d_name);
			(*nfiles)++;
		}
	closedir(d);
	return sum;
}

struct scan {
	int64_t		 now;
	struct gdb_rec	*hits;
	long		 nhits, cap, read;
};

/* scan_cb - the baseline: look at every record, keep the expired ones */
static int
scan_cb(const struct gdb_rec *rec, void *arg)
{
	struct scan *s = arg;

	s->read++;
	if (rec->type != GDB_SPAMTRAP && rec->expire <= s->now &&
	    s->nhits < s->cap)
		s->hits[s->nhits++] = *rec;
	return 0;
}

int
main(int argc, char *argv[])
{
	struct gdb_opts o = { .create = 1, .group_commit = 1 };
	struct gdb_times t = { GDB_PASSTIME_DEFAULT, GDB_GREYEXP_DEFAULT,
	    GDB_WHITEEXP_DEFAULT, GDB_TRAPEXP_DEFAULT };
	char dir[] = "/tmp/bench_greydb.XXXXXX", cmd[128], ip[GDB_ADDR_MAX];
	const int64_t e1 = T0 + 1000, e2 = T0 + 2000;
	struct gdb *db;
	struct gdb_rec r;
	struct gdb_err err;
	struct gdb_stats st;
	struct scan s;
	enum gdb_result res;
	long n = argc > 1 ? atol(argv[1]) : 1000000, m, i, count, read;
	double t0, t1, tidx, tscan, last, single;
	long long bytes;
	int nlogs;

	if (n < 1000) {
		fprintf(stderr, "usage: bench_greydb [N >= 1000]\n");
		return 2;
	}
	if (mkdtemp(dir) == NULL || gdb_open(&db, dir, &o, &err) == -1) {
		perror(dir);
		return 1;
	}
	printf("bench_greydb: N=%ld records, group commit, dir %s\n", n, dir);

	t0 = last = now_s();
	for (i = 0; i < n; i++) {
		rec_of(&r, i, e1, e2);
		if (gdb_put(db, &r, &err) == -1)
			die("put", &err);
		if (i % 10000 == 0 && now_s() - last >= 1.0) {
			if (gdb_flush(db, &err) == -1)	/* the daemon's window */
				die("flush", &err);
			last = now_s();
		}
	}
	t1 = now_s();
	printf("load: %ld records in %.2f s, %.0f puts/s\n", n, t1 - t0,
	    n / (t1 - t0));

	/* Tuple updates: new tuples then the same seen again. */
	m = n / 10 < 100000 ? n / 10 : 100000;
	t0 = last = now_s();
	for (i = 0; i < 2 * m; i++) {
		ip_of(n + i % m, ip, sizeof(ip));
		if (gdb_tuple_seen(db, ip, "mx.example.org", "<a@example.org>",
		    "<b@example.com>", T0 + i / m, &t, &res, NULL, &err) == -1)
			die("tuple_seen", &err);
		if (i % 1000 == 0 && now_s() - last >= 1.0) {
			if (gdb_flush(db, &err) == -1)
				die("flush", &err);
			last = now_s();
		}
	}
	gdb_flush(db, &err);
	t1 = now_s();
	printf("tuple updates: %ld in %.2f s, %.0f updates/s\n", 2 * m,
	    t1 - t0, 2 * m / (t1 - t0));
	single = 2 * m / (t1 - t0);

	/* The same load in batches of 64 (the writer's way under load):
	 * fresh addresses, so it does the same work as the loop above. */
	{
		struct gdb_tuple tv[64];
		char ips[64][GDB_ADDR_MAX];
		long k;

		t0 = last = now_s();
		for (i = 0; i < 2 * m; i += 64) {
			for (k = 0; k < 64; k++) {
				ip_of(n + m + (i + k) % m, ips[k],
				    sizeof(ips[k]));
				tv[k] = (struct gdb_tuple){ .ip = ips[k],
				    .helo = "mx.example.org",
				    .from = "<a@example.org>",
				    .to = "<b@example.com>" };
			}
			if (gdb_tuple_seen_many(db, tv, 64, T0 + i / m, &t,
			    &err) == -1)
				die("tuple_seen_many", &err);
			if (now_s() - last >= 1.0) {
				if (gdb_flush(db, &err) == -1)
					die("flush", &err);
				last = now_s();
			}
		}
		gdb_flush(db, &err);
		t1 = now_s();
		printf("tuple updates in batches of 64: %ld in %.2f s, %.0f "
		    "updates/s, %.2fx one transaction per tuple\n",
		    i, t1 - t0, i / (t1 - t0), i / (t1 - t0) / single);
	}

	/* Lookups of random existing records. */
	srand(1);
	t0 = now_s();
	for (i = 0; i < 2 * m; i++) {
		rec_of(&r, (long)((unsigned long)rand() % (unsigned long)n),
		    e1, e2);
		if (gdb_get(db, &r, &err) != 1)
			die("get", &err);
	}
	t1 = now_s();
	printf("lookups: %ld in %.2f s, %.0f lookups/s\n", 2 * m, t1 - t0,
	    2 * m / (t1 - t0));

	if (gdb_stats(db, &st, &err) == -1)
		die("stats", &err);
	bytes = file_size(dir, "grey.db") + file_size(dir, "expire.db");
	printf("disk: grey.db+expire.db %lld bytes, %.1f bytes/record "
	    "(%ld records)\n", bytes,
	    (double)bytes / (double)(st.grey + st.white), st.grey + st.white);
	bytes = log_bytes(dir, &nlogs);
	printf("disk: %d log files, %lld bytes (old ones auto-removed after "
	    "checkpoints)\n", nlogs, bytes);

	/* Expire 1% through the index. */
	t0 = now_s();
	if (gdb_expire(db, e1, NULL, NULL, &count, &read, &err) == -1)
		die("expire", &err);
	tidx = now_s() - t0;
	printf("expire via index: %ld removed, %ld index entries read, "
	    "%.3f s\n", count, read, tidx);

	/* Baseline: a full scan finds the next 1%, then deletes them. */
	memset(&s, 0, sizeof(s));
	s.now = e2;
	s.cap = n / 100 + 10;
	if ((s.hits = calloc((size_t)s.cap, sizeof(*s.hits))) == NULL)
		return 1;
	t0 = now_s();
	if (gdb_walk(db, 0, scan_cb, &s, &err) == -1)
		die("walk", &err);
	for (i = 0; i < s.nhits; i++)
		if (gdb_del(db, &s.hits[i], &err) != 1)
			die("del", &err);
	tscan = now_s() - t0;
	printf("expire via full scan (baseline): %ld removed, %ld records "
	    "read, %.3f s\n", s.nhits, s.read, tscan);
	printf("ratio: index reads %.4f of the scan's, takes %.3f of its "
	    "time (%.1fx faster)\n", (double)read / (double)s.read,
	    tidx / tscan, tscan / tidx);
	free(s.hits);
	gdb_close(db);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}
