/*
 * test_fw.c - unit tests of the firewall dispatcher (pf-sync/fw.c), the
 * file backend, and the pf backend against the stand-in pfctl
 * (tests/system/pfctl-standin: pf does not run on Linux).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "greydb/greydb.h"
#include "pf-sync/fw.h"
#include "pf-sync/fw_nft_table.h"

#include <endian.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#define NOW 1700000000LL

/* tmpdir - a fresh temporary directory */
static char *
tmpdir(void)
{
	char *d = strdup("/tmp/test_fw.XXXXXX");

	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

/* rmtree - remove a directory made by tmpdir (and its files, one level
 * below too: the greydb environment) */
static void
rmtree(const char *dir)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* slurp - a whole file as a string ("" when absent) */
static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);
	size_t n = 0;

	assert_non_null(buf);
	if (fp != NULL) {
		n = fread(buf, 1, (1 << 20) - 1, fp);
		fclose(fp);
	}
	buf[n] = '\0';
	return buf;
}

/* assert_file - path holds exactly want */
static void
assert_file(const char *path, const char *want)
{
	char *got = slurp(path);

	assert_string_equal(got, want);
	free(got);
}

/* count_entries - number of directory entries other than . and .. */
static int
count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* open_file_fw - the file backend writing dir/white */
static struct fw *
open_file_fw(const char *dir, char *path, size_t pathsz)
{
	struct fw_conf c = { .backend = "file" };
	struct fw *fw;
	char err[1024];

	snprintf(path, pathsz, "%s/white", dir);
	c.path = path;
	if (fw_open(&fw, &c, err, sizeof(err)) == -1)
		fail_msg("fw_open: %s", err);
	return fw;
}

/* Table of address parsing cases. */
static const struct {
	const char	*in;
	const char	*out;	/* NULL: rejected */
	int		 v6;
} ip_cases[] = {
	{ "192.0.2.1", "192.0.2.1", 0 },
	{ "fd99:0:0::0005", "fd99::5", 1 },
	{ "10.0.0.0/8", "10.0.0.0/8", 0 },
	{ "10.0.0.1/32", "10.0.0.1", 0 },
	{ "fd99::/64", "fd99::/64", 1 },
	{ "10.0.0.0/33", NULL, 0 },
	{ "10.0.0.0/", NULL, 0 },
	{ "10.0.0.0/x", NULL, 0 },
	{ "300.1.1.1", NULL, 0 },
	{ "", NULL, 0 },
	{ "example.com", NULL, 0 },
	{ "1.2.3.4 timeout 5", NULL, 0 },
};

/* t_ip_parse - canonical text, prefixes, rejects */
static void
t_ip_parse(void **state)
{
	char out[FW_IP_MAX];
	size_t i;
	int v6;

	(void)state;
	for (i = 0; i < sizeof(ip_cases) / sizeof(ip_cases[0]); i++) {
		int rv = fw_ip_parse(ip_cases[i].in, out, &v6);

		if (ip_cases[i].out == NULL) {
			if (rv != -1)
				fail_msg("\"%s\" accepted", ip_cases[i].in);
			continue;
		}
		if (rv != 0)
			fail_msg("\"%s\" rejected", ip_cases[i].in);
		assert_string_equal(out, ip_cases[i].out);
		assert_int_equal(v6, ip_cases[i].v6);
	}
}

/* t_open_errors - unknown backend names the known ones; file needs path */
static void
t_open_errors(void **state)
{
	struct fw_conf c = { .backend = "iptables" };
	struct fw *fw = (struct fw *)1;
	char err[1024];

	(void)state;
	assert_int_equal(fw_open(&fw, &c, err, sizeof(err)), -1);
	assert_null(fw);
	assert_non_null(strstr(err, "\"iptables\""));
	assert_non_null(strstr(err, fw_backend_names));
	c.backend = "file";
	assert_int_equal(fw_open(&fw, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "path"));
	fw_close(NULL);
}

/* t_queue - coalescing, expired adds skipped, bad addresses refused */
static void
t_queue(void **state)
{
	char *dir = tmpdir(), path[512], err[1024];
	struct fw *fw = open_file_fw(dir, path, sizeof(path));

	(void)state;
	assert_int_equal(fw_pending(fw), 0);
	assert_int_equal(fw_add(fw, FW_WHITE, "192.0.2.1", NOW + 10, NOW), 0);
	assert_int_equal(fw_add(fw, FW_WHITE, "192.0.2.1", NOW + 20, NOW), 0);
	assert_int_equal(fw_pending(fw), 1);
	/* The last change of an address wins: one entry, now a delete. */
	assert_int_equal(fw_del(fw, FW_WHITE, "192.0.2.1"), 0);
	assert_int_equal(fw_pending(fw), 1);
	/* Same address in another set is another entry. */
	assert_int_equal(fw_add(fw, FW_TRAP, "192.0.2.1", NOW + 10, NOW), 0);
	assert_int_equal(fw_pending(fw), 2);
	/* Spelled differently, same address. */
	assert_int_equal(fw_add(fw, FW_WHITE, "fd99::1", NOW + 10, NOW), 0);
	assert_int_equal(fw_add(fw, FW_WHITE, "fd99:0::0:1", NOW + 10, NOW), 0);
	assert_int_equal(fw_pending(fw), 3);
	/* Already expired: nothing to add. */
	assert_int_equal(fw_add(fw, FW_WHITE, "192.0.2.9", NOW, NOW), 0);
	assert_int_equal(fw_add(fw, FW_WHITE, "192.0.2.9", NOW - 5, NOW), 0);
	assert_int_equal(fw_pending(fw), 3);
	assert_int_equal(fw_add(fw, FW_WHITE, "not-an-ip", NOW + 10, NOW), -1);
	assert_int_equal(fw_del(fw, FW_WHITE, "1.2.3"), -1);
	assert_int_equal(fw_add(fw, FW_NSETS, "192.0.2.1", NOW + 10, NOW), -1);
	assert_int_equal(fw_pending(fw), 3);
	assert_int_equal(fw_flush(fw, err, sizeof(err)), 0);
	assert_int_equal(fw_pending(fw), 0);
	assert_file(path, "fd99::1\n");
	assert_file(strcat(strcpy(err, path), ".trap"), "192.0.2.1\n");
	assert_string_equal(fw_backend_name(fw), "file");
	assert_string_equal(fw_set_name(fw, FW_WHITE, 1), "spamd-white6");
	fw_close(fw);
	rmtree(dir);
	free(dir);
}

/* t_file_flush - content, order, atomic replace, reload on open */
static void
t_file_flush(void **state)
{
	char *dir = tmpdir(), path[512], err[1024];
	struct fw *fw = open_file_fw(dir, path, sizeof(path));
	FILE *fp;

	(void)state;
	/* Open writes the (empty) file at once. */
	assert_file(path, "");
	fw_add(fw, FW_WHITE, "fd99::2", NOW + 60, NOW);
	fw_add(fw, FW_WHITE, "10.99.0.2", NOW + 60, NOW);
	fw_add(fw, FW_WHITE, "10.99.0.1", 0, NOW);
	assert_int_equal(fw_flush(fw, err, sizeof(err)), 0);
	assert_file(path, "10.99.0.1\n10.99.0.2\nfd99::2\n");
	/* Deleting an absent address is fine. */
	fw_del(fw, FW_WHITE, "10.99.0.2");
	fw_del(fw, FW_WHITE, "10.99.0.77");
	assert_int_equal(fw_flush(fw, err, sizeof(err)), 0);
	assert_file(path, "10.99.0.1\nfd99::2\n");
	/* No temporary file is left behind; only white exists. */
	assert_int_equal(count_entries(dir), 1);
	fw_close(fw);

	/* A new open keeps what the file holds. */
	fw = open_file_fw(dir, path, sizeof(path));
	fw_add(fw, FW_WHITE, "10.99.0.3", NOW + 60, NOW);
	assert_int_equal(fw_flush(fw, err, sizeof(err)), 0);
	assert_file(path, "10.99.0.1\n10.99.0.3\nfd99::2\n");
	fw_close(fw);

	/* A bad line is an error naming file and line. */
	fp = fopen(path, "a");
	assert_non_null(fp);
	fputs("# comment\n\nbogus line\n", fp);
	fclose(fp);
	{
		struct fw_conf c = { .backend = "file", .path = path };
		char want[600];

		assert_int_equal(fw_open(&fw, &c, err, sizeof(err)), -1);
		snprintf(want, sizeof(want), "%s:6:", path);
		assert_non_null(strstr(err, want));
	}
	rmtree(dir);
	free(dir);
}

/* t_file_failure_keeps_queue - a failed write keeps the queue; backoff */
static void
t_file_failure_keeps_queue(void **state)
{
	char *dir = tmpdir(), sub[512], path[600], err[1024];
	struct fw_conf c = { .backend = "file" };
	struct fw *fw;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(path, sizeof(path), "%s/white", sub);
	c.path = path;
	assert_int_equal(fw_open(&fw, &c, err, sizeof(err)), 0);
	assert_int_equal(fw_retry_delay(fw), 0);
	/* The directory goes away: writes fail (even for root). */
	rmtree(sub);
	fw_add(fw, FW_WHITE, "10.99.0.1", NOW + 60, NOW);
	fw_add(fw, FW_WHITE, "10.99.0.2", NOW + 60, NOW);
	assert_int_equal(fw_flush(fw, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	assert_int_equal(fw_pending(fw), 2);
	assert_int_equal(fw_failures(fw), 1);
	assert_int_equal(fw_retry_delay(fw), 1);
	assert_int_equal(fw_flush(fw, err, sizeof(err)), -1);
	assert_int_equal(fw_retry_delay(fw), 2);
	assert_int_equal(fw_flush(fw, err, sizeof(err)), -1);
	assert_int_equal(fw_retry_delay(fw), 4);
	for (int i = 0; i < 10; i++)
		assert_int_equal(fw_flush(fw, err, sizeof(err)), -1);
	assert_int_equal(fw_retry_delay(fw), 60);
	assert_int_equal(fw_pending(fw), 2);
	/* Back: the retry writes everything queued meanwhile. */
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(fw_flush(fw, err, sizeof(err)), 0);
	assert_int_equal(fw_pending(fw), 0);
	assert_int_equal(fw_retry_delay(fw), 0);
	assert_file(path, "10.99.0.1\n10.99.0.2\n");
	fw_close(fw);
	rmtree(dir);
	free(dir);
}

/* t_file_reconcile - WHITE records in a temp greydb against the file */
static void
t_file_reconcile(void **state)
{
	char *dir = tmpdir(), path[512], dbdir[512], err[1024];
	struct gdb_opts o = { .create = 1 };
	struct gdb_err ge;
	struct gdb *db;
	struct fw *fw;
	long added = -1, removed = -1;
	int64_t now = time(NULL);

	(void)state;
	memset(&ge, 0, sizeof(ge));
	snprintf(dbdir, sizeof(dbdir), "%s/db", dir);
	if (gdb_open(&db, dbdir, &o, &ge) == -1)
		fail_msg("gdb_open: %s", ge.msg);
	/* In the db: .1 and .2 and fd99::1 live, .3 expired, .4 trapped. */
	assert_int_equal(gdb_white(db, "10.99.0.1", now, now + 3600, &ge), 0);
	assert_int_equal(gdb_white(db, "10.99.0.2", now, now + 3600, &ge), 0);
	assert_int_equal(gdb_white(db, "fd99::1", now, now + 3600, &ge), 0);
	assert_int_equal(gdb_white(db, "10.99.0.3", now - 100, now - 1, &ge),
	    0);
	assert_int_equal(gdb_trap(db, "10.99.0.4", now, now + 3600, &ge), 0);

	fw = open_file_fw(dir, path, sizeof(path));
	/* In the file: .2 (kept), .5 (stale), fd99::9 (stale). */
	fw_add(fw, FW_WHITE, "10.99.0.2", 0, now);
	fw_add(fw, FW_WHITE, "10.99.0.5", 0, now);
	fw_add(fw, FW_WHITE, "fd99::9", 0, now);
	assert_int_equal(fw_flush(fw, err, sizeof(err)), 0);
	if (fw_reconcile(fw, db, now, &added, &removed, err,
	    sizeof(err)) == -1)
		fail_msg("fw_reconcile: %s", err);
	assert_int_equal(added, 2);
	assert_int_equal(removed, 2);
	assert_int_equal(fw_pending(fw), 0);
	assert_file(path, "10.99.0.1\n10.99.0.2\nfd99::1\n");
	/* Trapped hosts are not in the trap file: use_trap_set is off. */
	{
		char tp[600];

		snprintf(tp, sizeof(tp), "%s.trap", path);
		assert_int_equal(access(tp, F_OK), -1);
	}
	/* In step: a second pass changes nothing. */
	assert_int_equal(fw_reconcile(fw, db, now, &added, &removed, err,
	    sizeof(err)), 0);
	assert_int_equal(added, 0);
	assert_int_equal(removed, 0);
	fw_close(fw);

	/* With use_trap_set the TRAPPED record goes into the trap set. */
	{
		struct fw_conf c = { .backend = "file", .path = path,
		    .use_trap_set = 1 };
		char tp[600];

		assert_int_equal(fw_open(&fw, &c, err, sizeof(err)), 0);
		assert_int_equal(fw_reconcile(fw, db, now, &added, &removed,
		    err, sizeof(err)), 0);
		assert_int_equal(added, 1);
		assert_int_equal(removed, 0);
		snprintf(tp, sizeof(tp), "%s.trap", path);
		assert_file(tp, "10.99.0.4\n");
		fw_close(fw);
	}
	gdb_close(db);
	rmtree(dir);
	free(dir);
}

/* collect_cb - append "ip:expires," to a string buffer */
static int
collect_cb(const char *ip, int64_t expires, void *arg)
{
	char *buf = arg;
	size_t off = strlen(buf);

	snprintf(buf + off, 1024 - off, "%s:%lld,", ip, (long long)expires);
	return 0;
}

/* Table of nft "list set" outputs and what the parser makes of them. */
static const struct {
	const char	*out;
	const char	*want;		/* NULL: rejected */
	const char	*errpart;	/* part of the error */
} nft_cases[] = {
	{ "table inet spamd {\n\tset spamd-white {\n\t\ttype ipv4_addr\n"
	  "\t\tflags timeout\n\t}\n}\n", "", NULL },
	{ "\t\telements = { 10.99.0.1 timeout 1h expires 59m58s480ms, "
	  "10.99.0.2 timeout 1d expires 23h59m59s,\n\t\t\t     "
	  "10.99.0.3 }\n",
	  "10.99.0.1:3598,10.99.0.2:86399,10.99.0.3:0,", NULL },
	{ "elements = { fd99::5 timeout 3s expires 480ms }",
	  "fd99::5:1,", NULL },
	{ "elements = { 10.0.0.0/8, 192.0.2.1-192.0.2.9 }",
	  "10.0.0.0/8:0,192.0.2.1-192.0.2.9:0,", NULL },
	{ "elements = { 10.99.0.1 timeout 1h expires 5x }", NULL,
	  "bad expiry at byte" },
	{ "elements = { 10.99.0.1 timeout 1h expires }", NULL,
	  "bad expiry at byte 34" },
	{ "elements = { 10.99.0.1, 10.99.0.2", NULL, "no closing brace" },
	{ "elements = { 0123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789 }", NULL,
	  "element too long at byte" },
};

/* t_nft_parse - nft's text listing: elements, expiries, bad output */
static void
t_nft_parse(void **state)
{
	char buf[1024], err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(nft_cases) / sizeof(nft_cases[0]); i++) {
		int rv;

		buf[0] = '\0';
		err[0] = '\0';
		rv = fw_nft_parse(nft_cases[i].out, collect_cb, buf, err,
		    sizeof(err));
		if (nft_cases[i].want == NULL) {
			if (rv != -1)
				fail_msg("case %zu accepted: %s", i, buf);
			if (strstr(err, nft_cases[i].errpart) == NULL)
				fail_msg("case %zu: error \"%s\"", i, err);
			continue;
		}
		if (rv != 0)
			fail_msg("case %zu rejected: %s", i, err);
		assert_string_equal(buf, nft_cases[i].want);
	}
}

/* t_ipset_parse - `ipset save` lines of the named set only */
static void
t_ipset_parse(void **state)
{
	char buf[1024], err[256];
	const char *out =
	    "create spamd-white hash:ip family inet hashsize 1024 maxelem "
	    "1048576 timeout 0 bucketsize 12 initval 0x1\n"
	    "add spamd-white 10.99.0.5 timeout 3599\n"
	    "add spamd-white6 fd99::5 timeout 10\n"
	    "add spamd-white 10.99.0.6 timeout 0\n"
	    "add spamd-white 10.99.0.7\n"
	    "add spamd-white";

	(void)state;
	buf[0] = '\0';
	assert_int_equal(fw_ipset_parse(out, "spamd-white", collect_cb, buf,
	    err, sizeof(err)), 0);
	assert_string_equal(buf, "10.99.0.5:3599,10.99.0.6:0,10.99.0.7:0,");
	buf[0] = '\0';
	assert_int_equal(fw_ipset_parse("add w 1.2.3.4 timeout x\n", "w",
	    collect_cb, buf, err, sizeof(err)), -1);
	assert_string_equal(err, "ipset save w: line 1: bad timeout");
}

/* t_ipset_heads - the presence check on `ipset list -t` output: a table
 * of outputs, the sets asked for, the wanted answer, missing set, and
 * whether an identity is known; a set made again has a new identity */
static void
t_ipset_heads(void **state)
{
#define HEAD(n, seed) "Name: " n "\nType: hash:ip\nRevision: 6\nHeader: " \
	"family inet hashsize 1024 maxelem 1048576 timeout 0 bucketsize 12" \
	seed "\nSize in memory: 224\nReferences: 0\nNumber of entries: 0\n"
	static const struct {
		const char	*out;
		const char	*names[2];
		int		 want;		/* 1 present, 0 missing */
		const char	*what;		/* wanted what */
		int		 has_id;
	} rows[] = {
		{ HEAD("w", " initval 0x1") "\n" HEAD("w6", " initval 0x2"),
		    { "w", "w6" }, 1, "w", 1 },
		/* w6's header is there, w's is not: a prefix is no match */
		{ HEAD("w6", " initval 0x2"), { "w", "w6" }, 0, "w", 0 },
		{ HEAD("w", " initval 0x1"), { "w", "w6" }, 0, "w6", 0 },
		/* a name in a header field is not a set */
		{ "Name: x\nHeader: Name: w\n", { "w", NULL }, 0, "w", 0 },
		{ "", { "w", NULL }, 0, "w", 0 },
		/* an older kernel prints no seed: present, identity unknown */
		{ HEAD("w", ""), { "w", NULL }, 1, "w", 0 },
		/* the last block, no trailing newline */
		{ "Name: x\n\nName: w", { "w", NULL }, 1, "w", 0 },
	};
	char what[64];
	uint64_t id, id1, id2;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		size_t n = rows[i].names[1] != NULL ? 2 : 1;

		what[0] = '\0';
		assert_int_equal(fw_ipset_heads(rows[i].out, rows[i].names, n,
		    what, sizeof(what), &id), rows[i].want);
		assert_string_equal(what, rows[i].what);
		assert_int_equal(id != 0, rows[i].has_id);
	}
	/* the same sets: the same identity; w made again: another one */
	{
		const char *names[] = { "w", "w6" };

		assert_int_equal(fw_ipset_heads(HEAD("w", " initval 0x1")
		    "\n" HEAD("w6", " initval 0x2"), names, 2, what,
		    sizeof(what), &id1), 1);
		assert_int_equal(fw_ipset_heads(HEAD("w6", " initval 0x2")
		    "\n" HEAD("w", " initval 0x1"), names, 2, what,
		    sizeof(what), &id), 1);
		assert_int_equal(fw_ipset_heads(HEAD("w", " initval 0x9")
		    "\n" HEAD("w6", " initval 0x2"), names, 2, what,
		    sizeof(what), &id2), 1);
		assert_true(id == id1);
		assert_true(id2 != id1);
	}
#undef HEAD
}

/* standin - path of the stand-in pfctl */
static void
standin(char *buf, size_t sz)
{
	const char *top = getenv("TOP");

	snprintf(buf, sz, "%s/tests/system/pfctl-standin", top ? top : ".");
	if (access(buf, X_OK) != 0)
		fail_msg("stand-in pfctl not found at %s (set TOP)", buf);
}

/* t_pf_standin - argv and stdin of pfctl runs, retry after failure */
static void
t_pf_standin(void **state)
{
	char *dir = tmpdir(), pfctl[512], err[1024], p[600];
	struct fw_conf c = { .backend = "pf" };
	struct fw *fw;
	char *calls;
	int64_t now = time(NULL);

	(void)state;
	standin(pfctl, sizeof(pfctl));
	c.pfctl = pfctl;
	setenv("PFCTL_STANDIN_DIR", dir, 1);
	unsetenv("PFCTL_STANDIN_FAIL");

	/* No table: a clear error naming the table and the fix. */
	assert_int_equal(fw_open(&fw, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "<spamd-white>"));
	assert_non_null(strstr(err, "table <spamd-white> persist"));
	assert_non_null(strstr(err, "Table does not exist"));

	c.create = 1;
	assert_int_equal(fw_open(&fw, &c, err, sizeof(err)), 0);
	fw_add(fw, FW_WHITE, "10.99.0.2", now + 60, now);
	fw_add(fw, FW_WHITE, "fd99::2", now + 60, now);
	fw_add(fw, FW_WHITE, "10.99.0.1", now + 60, now);
	assert_int_equal(fw_flush(fw, err, sizeof(err)), 0);
	fw_del(fw, FW_WHITE, "10.99.0.2");
	fw_del(fw, FW_WHITE, "10.99.0.9");
	assert_int_equal(fw_flush(fw, err, sizeof(err)), 0);

	snprintf(p, sizeof(p), "%s/calls", dir);
	calls = slurp(p);
	/* show (missing), show (missing), add (create), add, delete */
	assert_string_equal(calls,
	    "-q -t spamd-white -T show\n"
	    "-q -t spamd-white -T show\n"
	    "-q -t spamd-white -T add -f -\n"
	    "-q -t spamd-white -T add -f -\n"
	    "-q -t spamd-white -T delete -f -\n");
	free(calls);
	snprintf(p, sizeof(p), "%s/stdin.4", dir);
	assert_file(p, "10.99.0.1\n10.99.0.2\nfd99::2\n");
	snprintf(p, sizeof(p), "%s/stdin.5", dir);
	assert_file(p, "10.99.0.2\n10.99.0.9\n");
	snprintf(p, sizeof(p), "%s/table.spamd-white", dir);
	assert_file(p, "10.99.0.1\nfd99::2\n");

	/* pfctl failing: the queue stays, the error carries pfctl's text. */
	setenv("PFCTL_STANDIN_FAIL", "1", 1);
	fw_add(fw, FW_WHITE, "10.99.0.7", now + 60, now);
	assert_int_equal(fw_flush(fw, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "Operation not permitted"));
	assert_non_null(strstr(err, "status 1"));
	assert_int_equal(fw_pending(fw), 1);
	assert_int_equal(fw_retry_delay(fw), 1);
	unsetenv("PFCTL_STANDIN_FAIL");
	assert_int_equal(fw_flush(fw, err, sizeof(err)), 0);
	assert_int_equal(fw_pending(fw), 0);
	assert_file(p, "10.99.0.1\n10.99.0.7\nfd99::2\n");

	/* Listing splits the families of the one pf table. */
	{
		struct gdb_opts o = { .create = 1 };
		struct gdb_err ge;
		struct gdb *db;
		char dbdir[600];
		long added, removed;

		memset(&ge, 0, sizeof(ge));
		snprintf(dbdir, sizeof(dbdir), "%s/db", dir);
		assert_int_equal(gdb_open(&db, dbdir, &o, &ge), 0);
		assert_int_equal(gdb_white(db, "10.99.0.1", now, now + 60,
		    &ge), 0);
		assert_int_equal(gdb_white(db, "fd99::3", now, now + 60,
		    &ge), 0);
		assert_int_equal(fw_reconcile(fw, db, now, &added, &removed,
		    err, sizeof(err)), 0);
		assert_int_equal(added, 1);
		assert_int_equal(removed, 2);
		assert_file(p, "10.99.0.1\nfd99::3\n");
		gdb_close(db);
	}
	fw_close(fw);
	unsetenv("PFCTL_STANDIN_DIR");
	rmtree(dir);
	free(dir);
}

/* t_exec - fw_exec's stdin, stdout, exit status and missing program */
static void
t_exec(void **state)
{
	char *const cat[] = { "cat", NULL };
	char *const sh[] = { "sh", "-c", "echo one >&2; echo two >&2; exit 3",
	    NULL };
	char *const none[] = { "/nonexistent/prog", NULL };
	char *out = NULL, err[512], *big;
	size_t outlen = 0, n = 3 << 20;

	(void)state;
	/* More than a pipe buffer each way: no deadlock. */
	big = malloc(n);
	assert_non_null(big);
	memset(big, 'x', n);
	assert_int_equal(fw_exec(cat, big, n, &out, &outlen, err,
	    sizeof(err)), 0);
	assert_int_equal(outlen, n);
	assert_memory_equal(out, big, n);
	free(out);
	free(big);
	assert_int_equal(fw_exec(sh, NULL, 0, NULL, NULL, err, sizeof(err)),
	    -1);
	assert_string_equal(err, "sh exited with status 3: one; two");
	assert_int_equal(fw_exec(none, "a", 1, NULL, NULL, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "/nonexistent/prog"));

	/* The caller's descriptors do not leak into the tool. */
	{
		char script[128];
		char *const chk[] = { "sh", "-c", script, NULL };
		FILE *fp = fopen("/dev/null", "r");	/* no O_CLOEXEC */

		assert_non_null(fp);
		snprintf(script, sizeof(script), "if [ -e /proc/self/fd/%d ]; "
		    "then echo open; else echo closed; fi", fileno(fp));
		assert_int_equal(fw_exec(chk, NULL, 0, &out, &outlen, err,
		    sizeof(err)), 0);
		assert_string_equal(out, "closed\n");
		free(out);
		fclose(fp);
	}
}

/* nl_put - append one netlink message (type, seq, payload) at buf+off;
 * the new offset */
static size_t
nl_put(char *buf, size_t off, uint16_t type, uint32_t seq,
    const void *payload, size_t plen)
{
	struct nlmsghdr *nh = (struct nlmsghdr *)(void *)(buf + off);

	memset(nh, 0, NLMSG_SPACE(plen));
	nh->nlmsg_len = (uint32_t)NLMSG_LENGTH(plen);
	nh->nlmsg_type = type;
	nh->nlmsg_seq = seq;
	memcpy(NLMSG_DATA(nh), payload, plen);
	return off + NLMSG_SPACE(plen);
}

/* nl_error - payload of an NLMSG_ERROR with error err */
static size_t
nl_error(char *buf, size_t off, uint32_t seq, int err)
{
	struct nlmsgerr e;

	memset(&e, 0, sizeof(e));
	e.error = err;
	return nl_put(buf, off, NLMSG_ERROR, seq, &e, sizeof(e));
}

/* t_nft_table - the GETTABLE request's bytes and every kind of answer:
 * the table and its ack, no such table, another error, another seq, an
 * ack with no table, a cut attribute; and, as root, the kernel's own
 * answer for a table that does not exist */
static void
t_nft_table(void **state)
{
	char buf[512], pay[128], longname[NFT_TABLE_MAXNAMELEN + 8];
	struct nlmsghdr *nh = (struct nlmsghdr *)(void *)buf;
	struct nfgenmsg nf = { .nfgen_family = NFPROTO_INET };
	struct nlattr *at;
	uint64_t handle, be;
	size_t len, off, p;
	int seen;

	(void)state;
	assert_int_equal(fw_nft_table_family("inet"), NFPROTO_INET);
	assert_int_equal(fw_nft_table_family("ip6"), NFPROTO_IPV6);
	assert_int_equal(fw_nft_table_family("inet6"), -1);
	len = fw_nft_table_request(buf, sizeof(buf), NFPROTO_INET, "spamd", 7);
	assert_int_equal(len, NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nf)) +
	    NLA_ALIGN(NLA_HDRLEN + 6));
	assert_int_equal(nh->nlmsg_len, len);
	assert_int_equal(nh->nlmsg_type,
	    (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE);
	assert_int_equal(nh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
	assert_int_equal(nh->nlmsg_seq, 7);
	at = (struct nlattr *)(void *)(buf + NLMSG_HDRLEN +
	    NLMSG_ALIGN(sizeof(nf)));
	assert_int_equal(at->nla_type, NFTA_TABLE_NAME);
	assert_string_equal((char *)at + NLA_HDRLEN, "spamd");
	/* a name past nftables' limit, or a buffer too small: refused */
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(fw_nft_table_request(buf, sizeof(buf), NFPROTO_INET,
	    longname, 1), 0);
	assert_int_equal(fw_nft_table_request(buf, 16, NFPROTO_INET, "t", 1),
	    0);

	/* NEWTABLE with a name and a handle attribute, then the ack */
	memcpy(pay, &nf, sizeof(nf));
	p = NLMSG_ALIGN(sizeof(nf));
	at = (struct nlattr *)(void *)(pay + p);
	at->nla_type = NFTA_TABLE_NAME;
	at->nla_len = NLA_HDRLEN + 6;
	memcpy(pay + p + NLA_HDRLEN, "spamd", 6);
	p += NLA_ALIGN(at->nla_len);
	at = (struct nlattr *)(void *)(pay + p);
	at->nla_type = NFTA_TABLE_HANDLE;
	at->nla_len = NLA_HDRLEN + 8;
	be = htobe64(4242);
	memcpy(pay + p + NLA_HDRLEN, &be, 8);
	p += NLA_ALIGN(at->nla_len);
	off = nl_put(buf, 0, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE,
	    9, pay, p);
	off = nl_error(buf, off, 9, 0);
	seen = 0;
	handle = 0;
	assert_int_equal(fw_nft_table_reply(buf, off, 9, &handle, &seen), 1);
	assert_int_equal(handle, 4242);
	/* the same table in one datagram and the ack in the next */
	seen = 0;
	handle = 0;
	assert_int_equal(fw_nft_table_reply(buf, off - NLMSG_SPACE(
	    sizeof(struct nlmsgerr)), 9, &handle, &seen), 2);
	assert_int_equal(seen, 1);
	off = nl_error(buf, 0, 9, 0);
	assert_int_equal(fw_nft_table_reply(buf, off, 9, &handle, &seen), 1);
	assert_int_equal(handle, 4242);
	/* no such table */
	seen = 0;
	off = nl_error(buf, 0, 9, -ENOENT);
	assert_int_equal(fw_nft_table_reply(buf, off, 9, &handle, &seen), 0);
	/* not allowed: an error, errno says why */
	off = nl_error(buf, 0, 9, -EPERM);
	errno = 0;
	assert_int_equal(fw_nft_table_reply(buf, off, 9, &handle, &seen), -1);
	assert_int_equal(errno, EPERM);
	/* another request's answer is not ours: read on */
	off = nl_error(buf, 0, 8, -ENOENT);
	assert_int_equal(fw_nft_table_reply(buf, off, 9, &handle, &seen), 2);
	/* an ack with no table before it */
	seen = 0;
	off = nl_error(buf, 0, 9, 0);
	assert_int_equal(fw_nft_table_reply(buf, off, 9, &handle, &seen), -1);
	/* a handle attribute cut short: the table, handle unknown */
	at = (struct nlattr *)(void *)(pay + NLMSG_ALIGN(sizeof(nf)));
	at->nla_type = NFTA_TABLE_HANDLE;
	at->nla_len = NLA_HDRLEN + 8;
	off = nl_put(buf, 0, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE,
	    9, pay, NLMSG_ALIGN(sizeof(nf)) + NLA_HDRLEN + 4);
	off = nl_error(buf, off, 9, 0);
	seen = 0;
	handle = 0;
	assert_int_equal(fw_nft_table_reply(buf, off, 9, &handle, &seen), 1);
	assert_int_equal(handle, 0);
	/* a message shorter than its header says: nothing read from it */
	assert_int_equal(fw_nft_table_reply(buf, 10, 9, &handle, &seen), 2);
	/* the kernel itself: a table nobody made is "no such table" */
	if (geteuid() == 0)
		assert_int_equal(fw_nft_table_handle("inet",
		    "spamd-unit-test-none", &handle), 0);
	errno = 0;
	assert_int_equal(fw_nft_table_handle("inet6", "t", &handle), -1);
	assert_int_equal(errno, EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_ip_parse),
		cmocka_unit_test(t_open_errors),
		cmocka_unit_test(t_queue),
		cmocka_unit_test(t_file_flush),
		cmocka_unit_test(t_file_failure_keeps_queue),
		cmocka_unit_test(t_file_reconcile),
		cmocka_unit_test(t_pf_standin),
		cmocka_unit_test(t_exec),
		cmocka_unit_test(t_nft_parse),
		cmocka_unit_test(t_ipset_parse),
		cmocka_unit_test(t_ipset_heads),
		cmocka_unit_test(t_nft_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
