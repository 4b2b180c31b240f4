/*
 * grey.h - the writer process: owns the database, the greylisting rules
 * and the firewall; the engines send it tuples over socketpairs (msg.h).
 *
 * main.c makes one socketpair per engine process, forks the writer, which
 * calls grey_main with its ends, and the engines, which drop privileges.
 * The writer never reads from the Internet; it trusts only msg_get frames.
 */
#ifndef SPAMD_GREY_H
#define SPAMD_GREY_H

#include "greydb/greydb.h"
#include "pf-sync/fw.h"

struct grey_conf {
	const char	*dbdir;		/* database environment directory */
	struct gdb_times times;		/* -G, trap expiry */
	const char	*domains_file;	/* allowed domains; NULL = none */
	int		flush_ms;	/* group-commit window (default 1000) */
	int		scan_secs;	/* expiry scan interval (default 60) */
	int		fw_enabled;	/* keep the firewall sets in step */
	struct fw_conf	fw;		/* backend and set names */
	int		reconcile_secs;	/* firewall reconcile interval (300) */
	int		group_v4;	/* network grouping prefix, 0 = off */
	int		group_v6;
	int		blacklist_only;	/* -b: no database, no firewall */
	int		cfg_fd;		/* listening config port socket (8026,
					 * loopback), opened by main; -1 none */
};

/*
 * grey_main - run the writer until every engine fd has closed or SIGTERM;
 * fds are the writer's ends of the socketpairs (non-blocking is set here).
 * Returns the process exit status.
 */
int	grey_main(const int *fds, int nfds, const struct grey_conf *conf);

#endif /* SPAMD_GREY_H */
