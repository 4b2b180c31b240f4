/*
 * fwctl - a small command line over the pf-sync fw API, for the firewall
 * system tests (and operators trying a backend by hand).
 *
 *   fwctl [options] add IP [SECONDS] ...   queue adds (SECONDS 0 = none)
 *   fwctl [options] del IP ...             queue deletes
 *   fwctl [options] addseq BASE N SECONDS  add N consecutive IPv4
 *                                          addresses from BASE, one flush
 *   fwctl [options] list                   "IP EXPIRES" per element, v4
 *                                          then v6 (EXPIRES -1: unknown)
 *   fwctl [options] reconcile              repair against -D DIR; prints
 *                                          "added=N removed=N"
 *   fwctl [options] white IP SECONDS       write WHITE for IP into -D DIR
 *                                          (no firewall is touched)
 *   fwctl [options] unwhite IP             delete IP's WHITE from -D DIR
 * Options: -b BACKEND, --family F, --table T, --path FILE, --pfctl PROG,
 * --fw-create, --trap (use_trap_set), --black (use_black_set),
 * -s white|black|trap (the set for add/del/list), -D DIR (database),
 * --wait-file PATH (after fw_open, wait up to 20 s for PATH to exist, so a
 * test can change the set behind the backend's back).
 * Every change of one invocation is sent in one fw_flush.
 * Exit 0 on success, 1 with "fwctl: <error>" on stderr.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "greydb/greydb.h"
#include "pf-sync/fw.h"

/* usage - print the synopsis and exit 1 */
static void
usage(void)
{
	fprintf(stderr, "usage: fwctl [-b backend] [--family F] [--table T] "
	    "[--path FILE] [--pfctl PROG] [--fw-create] [--trap] [--black] "
	    "[-s white|black|trap] [-D dbdir] "
	    "add|del|addseq|list|reconcile|white|unwhite args...\n");
	exit(1);
}

/* print_elem - one "ip expires" line */
static int
print_elem(const char *ip, int64_t expires, void *arg)
{
	(void)arg;
	printf("%s %lld\n", ip, (long long)expires);
	return 0;
}

/* open_db - open (create) the database in dir */
static struct gdb *
open_db(const char *dir)
{
	struct gdb_opts o = { .create = 1 };
	struct gdb_err e;
	struct gdb *db;

	if (dir == NULL) {
		fprintf(stderr, "fwctl: -D dbdir is needed\n");
		exit(1);
	}
	memset(&e, 0, sizeof(e));
	if (gdb_open(&db, dir, &o, &e) == -1) {
		fprintf(stderr, "fwctl: %s\n", e.msg);
		exit(1);
	}
	return db;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "family", required_argument, NULL, 'F' },
		{ "table", required_argument, NULL, 'T' },
		{ "path", required_argument, NULL, 'P' },
		{ "pfctl", required_argument, NULL, 'X' },
		{ "fw-create", no_argument, NULL, 'C' },
		{ "trap", no_argument, NULL, 'R' },
		{ "black", no_argument, NULL, 'K' },
		{ "wait-file", required_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 }
	};
	struct fw_conf conf;
	enum fw_set set = FW_WHITE;
	const char *dbdir = NULL, *cmd, *waitfile = NULL;
	char err[2048];
	struct fw *fw;
	struct gdb *db;
	struct gdb_err ge;
	int64_t now = time(NULL);
	int c, i, rv = 0;

	memset(&conf, 0, sizeof(conf));
	memset(&ge, 0, sizeof(ge));
	while ((c = getopt_long(argc, argv, "b:s:D:", longopts, NULL)) != -1) {
		switch (c) {
		case 'b': conf.backend = optarg; break;
		case 'F': conf.family = optarg; break;
		case 'T': conf.table = optarg; break;
		case 'P': conf.path = optarg; break;
		case 'X': conf.pfctl = optarg; break;
		case 'C': conf.create = 1; break;
		case 'R': conf.use_trap_set = 1; break;
		case 'K': conf.use_black_set = 1; break;
		case 'D': dbdir = optarg; break;
		case 'W': waitfile = optarg; break;
		case 's':
			if (strcmp(optarg, "white") == 0)
				set = FW_WHITE;
			else if (strcmp(optarg, "black") == 0)
				set = FW_BLACK;
			else if (strcmp(optarg, "trap") == 0)
				set = FW_TRAP;
			else
				usage();
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	cmd = argv[0];

	/* Database-only commands: set up a test's WHITE records. */
	if (strcmp(cmd, "white") == 0 || strcmp(cmd, "unwhite") == 0) {
		struct gdb_rec r;

		db = open_db(dbdir);
		if (cmd[0] == 'w') {
			if (argc != 3)
				usage();
			rv = gdb_white(db, argv[1], now,
			    now + strtoll(argv[2], NULL, 10), &ge);
		} else {
			if (argc != 2)
				usage();
			memset(&r, 0, sizeof(r));
			r.type = GDB_WHITE;
			strlcpy(r.ip, argv[1], sizeof(r.ip));
			rv = gdb_del(db, &r, &ge) == -1 ? -1 : 0;
		}
		if (rv == 0)
			rv = gdb_flush(db, &ge);
		if (rv == -1)
			fprintf(stderr, "fwctl: %s\n", ge.msg);
		gdb_close(db);
		return rv == -1;
	}

	if (fw_open(&fw, &conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "fwctl: %s\n", err);
		return 1;
	}
	if (waitfile != NULL) {
		printf("opened\n");
		fflush(stdout);
		for (i = 0; i < 200 && access(waitfile, F_OK) != 0; i++)
			usleep(100000);
	}
	if (strcmp(cmd, "add") == 0) {
		for (i = 1; i < argc; i++) {
			int64_t secs = 3600;

			/* An argument without '.' or ':' is the seconds. */
			if (i + 1 < argc && strpbrk(argv[i + 1], ".:") == NULL)
				secs = strtoll(argv[i + 1], NULL, 10);
			if (fw_add(fw, set, argv[i], secs ? now + secs : 0,
			    now) == -1) {
				fprintf(stderr, "fwctl: bad address \"%s\"\n",
				    argv[i]);
				rv = -1;
				break;
			}
			if (i + 1 < argc && strpbrk(argv[i + 1], ".:") == NULL)
				i++;
		}
	} else if (strcmp(cmd, "del") == 0) {
		for (i = 1; i < argc && rv == 0; i++)
			if (fw_del(fw, set, argv[i]) == -1) {
				fprintf(stderr, "fwctl: bad address \"%s\"\n",
				    argv[i]);
				rv = -1;
			}
	} else if (strcmp(cmd, "addseq") == 0) {
		struct in_addr a;
		long n;
		int64_t secs;

		if (argc != 4 || inet_pton(AF_INET, argv[1], &a) != 1)
			usage();
		n = strtol(argv[2], NULL, 10);
		secs = strtoll(argv[3], NULL, 10);
		for (i = 0; i < n && rv == 0; i++) {
			struct in_addr b;
			char ip[INET_ADDRSTRLEN];

			b.s_addr = htonl(ntohl(a.s_addr) + (uint32_t)i);
			inet_ntop(AF_INET, &b, ip, sizeof(ip));
			rv = fw_add(fw, set, ip, secs ? now + secs : 0, now);
		}
	} else if (strcmp(cmd, "list") == 0) {
		if (fw_list(fw, set, 0, print_elem, NULL, err,
		    sizeof(err)) == -1 || fw_list(fw, set, 1, print_elem,
		    NULL, err, sizeof(err)) == -1) {
			fprintf(stderr, "fwctl: %s\n", err);
			rv = -1;
		}
	} else if (strcmp(cmd, "reconcile") == 0) {
		long added = 0, removed = 0;

		db = open_db(dbdir);
		if (fw_reconcile(fw, db, now, &added, &removed, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "fwctl: %s\n", err);
			rv = -1;
		} else
			printf("added=%ld removed=%ld\n", added, removed);
		gdb_close(db);
	} else {
		fw_close(fw);
		usage();
	}
	if (rv == 0 && fw_flush(fw, err, sizeof(err)) == -1) {
		fprintf(stderr, "fwctl: %s\n", err);
		rv = -1;
	}
	fw_close(fw);
	return rv == -1;
}
