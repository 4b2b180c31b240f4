/*
 * bench_fw - firewall set update costs with the nftables backend, in a
 * network namespace of its own (needs root and `ip netns`; otherwise it
 * prints a skip line). It re-executes itself inside the namespace.
 *
 * Figures (all in one run, so they compare):
 *   whitelist of 100,000 addresses in one fw_flush into empty sets
 *     (50,000 IPv4 in 10.99.0.0/16, 50,000 IPv6 in fd99::/64), the same
 *     100,000 again (all present: timeouts refreshed by delete+add), the
 *     same 100,000 as one plain libnftables "add element" command, which
 *     shows what the backend's add+delete+add batch costs;
 *   10,000 IPv4 in one fw_flush (compare HARNESS.md: ~26 ms);
 *   reconcile of the 100,000-element sets against a database of 100,000
 *     WHITE records with 1% drift (500 deleted from the set by hand, 500
 *     stale elements added);
 *   baseline: 1,000 addresses with one libnftables call each, on one
 *     context, extrapolated to 100,000 and compared with the batch.
 * Output: "bench_fw: name=value unit" lines.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nftables/libnftables.h>

#include "greydb/greydb.h"
#include "pf-sync/fw.h"

#define N_ALL	100000
#define N_V4	50000
#define N_DRIFT	500
#define N_BASE	1000

/* ms_since - milliseconds since t0 (monotonic) */
static double
ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1e3 +
	    (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* addr_of - the i-th benchmark address: IPv4 below N_V4, then IPv6 */
static void
addr_of(long i, char *buf, size_t sz)
{
	if (i < N_V4)
		snprintf(buf, sz, "10.99.%ld.%ld", (i / 256) % 256, i % 256);
	else
		snprintf(buf, sz, "fd99::%lx:%lx", (i / 65536) % 65536,
		    i % 65536);
}

/* nft_cmd - run one nft command on ctx, exit on failure */
static void
nft_cmd(struct nft_ctx *ctx, const char *cmd)
{
	if (nft_run_cmd_from_buffer(ctx, cmd) != 0) {
		fprintf(stderr, "bench_fw: nft failed: %s\n",
		    nft_ctx_get_error_buffer(ctx));
		exit(1);
	}
	(void)nft_ctx_get_output_buffer(ctx);
}

/* count_cb - count listed elements */
static int
count_cb(const char *ip, int64_t expires, void *arg)
{
	(void)ip;
	(void)expires;
	(*(long *)arg)++;
	return 0;
}

/* bench - the measurements, inside the namespace */
static int
bench(void)
{
	struct fw_conf conf = { .backend = "nftables", .create = 1 };
	struct nft_ctx *ctx;
	struct fw *fw;
	struct gdb *db;
	struct gdb_opts o = { .create = 1, .group_commit = 1 };
	struct gdb_err ge;
	struct timespec t0;
	char err[2048], ip[64], dbdir[] = "/tmp/bench_fw.XXXXXX", cmd[256];
	char *buf;
	size_t len;
	FILE *fp;
	int64_t now = time(NULL);
	double t_batch, t_queue, t_raw, t_10k, t_rec, t_base, t_db;
	long i, added = 0, removed = 0, count = 0;

	memset(&ge, 0, sizeof(ge));
	if (fw_open(&fw, &conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "bench_fw: %s\n", err);
		return 1;
	}
	if ((ctx = nft_ctx_new(NFT_CTX_DEFAULT)) == NULL ||
	    nft_ctx_buffer_output(ctx) != 0 || nft_ctx_buffer_error(ctx) != 0) {
		fprintf(stderr, "bench_fw: nft_ctx_new failed\n");
		return 1;
	}

	/* 1. 100,000 in one flush into empty sets. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < N_ALL; i++) {
		addr_of(i, ip, sizeof(ip));
		if (fw_add(fw, FW_WHITE, ip, now + 86400, now) == -1) {
			fprintf(stderr, "bench_fw: fw_add %s failed\n", ip);
			return 1;
		}
	}
	t_queue = ms_since(&t0);
	if (fw_flush(fw, err, sizeof(err)) == -1) {
		fprintf(stderr, "bench_fw: %s\n", err);
		return 1;
	}
	t_batch = ms_since(&t0);
	fw_list(fw, FW_WHITE, 0, count_cb, &count, err, sizeof(err));
	fw_list(fw, FW_WHITE, 1, count_cb, &count, err, sizeof(err));
	printf("bench_fw: whitelist_100k_one_flush=%.1f ms\n", t_batch);
	printf("bench_fw: whitelist_100k_queue_only=%.1f ms\n", t_queue);
	printf("bench_fw: whitelist_100k_elements_in_set=%ld count\n", count);

	/* The same 100,000 again with new timeouts: every one is present,
	 * so each is deleted and added (the refresh of a busy whitelist). */
	for (i = 0; i < N_ALL; i++) {
		addr_of(i, ip, sizeof(ip));
		fw_add(fw, FW_WHITE, ip, now + 86400 * 2, now);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (fw_flush(fw, err, sizeof(err)) == -1) {
		fprintf(stderr, "bench_fw: %s\n", err);
		return 1;
	}
	printf("bench_fw: refresh_100k_present_one_flush=%.1f ms\n",
	    ms_since(&t0));

	/* The same addresses as one plain add command, into fresh sets. */
	nft_cmd(ctx, "add table inet rawbench\n"
	    "add set inet rawbench w { type ipv4_addr; flags timeout; }\n"
	    "add set inet rawbench w6 { type ipv6_addr; flags timeout; }");
	if ((fp = open_memstream(&buf, &len)) == NULL)
		return 1;
	fputs("add element inet rawbench w {", fp);
	for (i = 0; i < N_V4; i++) {
		addr_of(i, ip, sizeof(ip));
		fprintf(fp, "%s %s timeout 86400s", i ? "," : "", ip);
	}
	fputs(" }\nadd element inet rawbench w6 {", fp);
	for (i = N_V4; i < N_ALL; i++) {
		addr_of(i, ip, sizeof(ip));
		fprintf(fp, "%s %s timeout 86400s", i > N_V4 ? "," : "", ip);
	}
	fputs(" }\n", fp);
	fclose(fp);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	nft_cmd(ctx, buf);
	t_raw = ms_since(&t0);
	free(buf);
	nft_cmd(ctx, "delete table inet rawbench");
	printf("bench_fw: plain_add_100k_one_command=%.1f ms\n", t_raw);
	printf("bench_fw: one_flush_vs_plain_add=%.2f x\n", t_batch / t_raw);

	/* 10,000 IPv4 in one flush, for the HARNESS.md reference. */
	nft_cmd(ctx, "add table inet b10k\n"
	    "add set inet b10k spamd-white { type ipv4_addr; flags timeout; }\n"
	    "add set inet b10k spamd-white6 { type ipv6_addr; flags timeout; }");
	{
		struct fw_conf c2 = { .backend = "nftables", .table = "b10k" };
		struct fw *fw2;

		if (fw_open(&fw2, &c2, err, sizeof(err)) == -1) {
			fprintf(stderr, "bench_fw: %s\n", err);
			return 1;
		}
		for (i = 0; i < 10000; i++) {
			addr_of(i, ip, sizeof(ip));
			fw_add(fw2, FW_WHITE, ip, now + 86400, now);
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (fw_flush(fw2, err, sizeof(err)) == -1) {
			fprintf(stderr, "bench_fw: %s\n", err);
			return 1;
		}
		t_10k = ms_since(&t0);
		fw_close(fw2);
		nft_cmd(ctx, "delete table inet b10k");
		printf("bench_fw: whitelist_10k_v4_one_flush=%.1f ms\n", t_10k);
	}

	/* 2. Reconcile 100,000 with 1% drift. */
	if (mkdtemp(dbdir) == NULL || gdb_open(&db, dbdir, &o, &ge) == -1) {
		fprintf(stderr, "bench_fw: db: %s\n", ge.msg);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < N_ALL; i++) {
		addr_of(i, ip, sizeof(ip));
		if (gdb_white(db, ip, now, now + 86400, &ge) == -1) {
			fprintf(stderr, "bench_fw: gdb_white: %s\n", ge.msg);
			return 1;
		}
	}
	gdb_flush(db, &ge);
	t_db = ms_since(&t0);
	printf("bench_fw: db_fill_100k_white=%.1f ms\n", t_db);
	/* Drift: 500 gone from the set (every 200th), 500 stale added. */
	if ((fp = open_memstream(&buf, &len)) == NULL)
		return 1;
	fputs("delete element inet spamd spamd-white {", fp);
	for (i = 0; i < N_DRIFT; i++) {
		addr_of(i * 100, ip, sizeof(ip));
		fprintf(fp, "%s %s", i ? "," : "", ip);
	}
	fputs(" }\nadd element inet spamd spamd-white6 {", fp);
	for (i = 0; i < N_DRIFT; i++)
		fprintf(fp, "%s fd99::1:%lx:0:%lx", i ? "," : "", i, i);
	fputs(" }\n", fp);
	fclose(fp);
	nft_cmd(ctx, buf);
	free(buf);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (fw_reconcile(fw, db, now, &added, &removed, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "bench_fw: reconcile: %s\n", err);
		return 1;
	}
	t_rec = ms_since(&t0);
	printf("bench_fw: reconcile_100k_1pct_drift=%.1f ms\n", t_rec);
	printf("bench_fw: reconcile_added=%ld count\n", added);
	printf("bench_fw: reconcile_removed=%ld count\n", removed);
	gdb_close(db);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dbdir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_fw: could not remove %s\n", dbdir);

	/* 3. Baseline: one libnftables call per address, one context. */
	nft_cmd(ctx, "add table inet base\n"
	    "add set inet base w { type ipv4_addr; flags timeout; }");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < N_BASE; i++) {
		char one[128];

		addr_of(i, ip, sizeof(ip));
		snprintf(one, sizeof(one), "add element inet base w { %s "
		    "timeout 86400s }", ip);
		nft_cmd(ctx, one);
	}
	t_base = ms_since(&t0);
	nft_cmd(ctx, "delete table inet base");
	printf("bench_fw: baseline_1k_one_call_each=%.1f ms\n", t_base);
	printf("bench_fw: baseline_per_address=%.1f us\n",
	    t_base * 1000 / N_BASE);
	printf("bench_fw: baseline_100k_extrapolated=%.0f ms\n",
	    t_base * (N_ALL / N_BASE));
	printf("bench_fw: batch_speedup_vs_one_call_each=%.1f x\n",
	    t_base * (N_ALL / N_BASE) / t_batch);
	nft_ctx_free(ctx);
	fw_close(fw);
	return 0;
}

int
main(int argc, char *argv[])
{
	char ns[64], cmd[256], self[4096];
	ssize_t n;
	pid_t pid;
	int status;

	(void)argc;
	if (getenv("BENCH_FW_IN_NETNS") != NULL)
		return bench();
	if (geteuid() != 0) {
		printf("bench_fw: skip: needs root and netns\n");
		return 0;
	}
	snprintf(ns, sizeof(ns), "benchfw%ld", (long)getpid());
	snprintf(cmd, sizeof(cmd), "ip netns add %s 2>/dev/null", ns);
	if (system(cmd) != 0) {
		printf("bench_fw: skip: needs root and netns (ip netns add "
		    "failed)\n");
		return 0;
	}
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) == -1) {
		perror("bench_fw: readlink");
		return 1;
	}
	self[n] = '\0';
	/* Re-run this program inside the namespace; fixed argv, no shell. */
	if ((pid = fork()) == 0) {
		setenv("BENCH_FW_IN_NETNS", "1", 1);
		execlp("ip", "ip", "netns", "exec", ns, self, (char *)NULL);
		perror("bench_fw: exec ip");
		_exit(127);
	}
	status = 1;
	if (pid > 0)
		waitpid(pid, &status, 0);
	snprintf(cmd, sizeof(cmd), "ip netns del %s", ns);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_fw: could not delete netns %s\n", ns);
	(void)argv;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
