/*
 * greyctl.h - what the greyctl source files share: the run's settings and
 * the commands, output and import helpers (greyctl.c: flags and commands;
 * greyctl_util.c: messages, signals, open; greyctl_print.c: output;
 * greyctl_import.c: import).
 */
#ifndef GREYCTL_H
#define GREYCTL_H

#include <stdint.h>
#include <stdio.h>

#include "greydb/greydb.h"

/* How greyctl_open opens the store. */
enum greyctl_mode {
	GREYCTL_READ,		/* readonly, never creates */
	GREYCTL_WRITE,		/* read-write, never creates (-d) */
	GREYCTL_CREATE,		/* read-write, makes dir and db (-a, import) */
};

/* One run's settings, from the command line. */
struct greyctl {
	const char	*dir;		/* -D, default GDB_DEFAULT_DIR */
	int		 json;		/* -j: one JSON object a line */
	int64_t		 now;		/* the time of this run */
	FILE		*out;		/* stdout */
	int		*out_errno;	/* the first output error, for main */
	int		 seccomp;	/* --seccomp: enum sandbox_mode */
	/* the filter: greyctl_sandbox in greyctl; NULL (none) where these
	 * parts run inside another program, as the unit tests */
	int		(*sandbox)(const struct greyctl *ctl, int flags);
};

/* greyctl_sandbox - from here on only the calls the rest of the run
 * needs (sandbox_greyctl with ctl->seccomp and flags, enum
 * sandbox_gc_flags); -1 after a message. Called through ctl->sandbox once
 * per run, right after the store is opened (import: before the dump is
 * read; explain: once its store is open); 0 when ctl->sandbox is NULL. */
int	greyctl_sandbox(const struct greyctl *ctl, int flags);

/* greyctl_out_ok - 0 if output works so far, else -1 (errno saved) */
int	greyctl_out_ok(const struct greyctl *ctl);

/* greyctl_signals_setup - stop on SIGINT/SIGTERM/SIGHUP at a safe point;
 * make a closed stdout an error instead of a death */
void	greyctl_signals_setup(void);
/* greyctl_stopped - the signal (SIGINT, SIGTERM, SIGHUP) that asked us to
 * stop, or 0; long loops check it so the store is always closed cleanly */
int	greyctl_stopped(void);
/* greyctl_warnx - print "greyctl: message" on stderr */
void	greyctl_warnx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
/* greyctl_safe - copy in for a message: non-printables as '?', cut */
const char *greyctl_safe(const char *in, char *out, size_t outsz);
/* greyctl_become_owner - as root on a store owned by another user
 * (spamd's writer): become that owner; 0, or -1 with a message */
int	greyctl_become_owner(const char *dir);
/* greyctl_open - open the store in ctl->dir; messages name the dir */
int	greyctl_open(const struct greyctl *ctl, enum greyctl_mode mode,
	    int group_commit, struct gdb **db);

/* greyctl_print - one record as a spamdb line or (-j) a JSON object */
int	greyctl_print(const struct greyctl *ctl, const struct gdb_rec *rec);
/* greyctl_print_stats - counts by type as key=value or JSON */
int	greyctl_print_stats(const struct greyctl *ctl,
	    const struct gdb_stats *st);
/* greyctl_json_str - write s as a JSON string (quoted, escaped) */
void	greyctl_json_str(FILE *fp, const char *s);
/* greyctl_export_traplist - the unexpired TRAPPED addresses as a list */
int	greyctl_export_traplist(const struct greyctl *ctl, struct gdb *db);

/* greyctl_import - read spamdb dump lines from in, check them all, then
 * write them; returns the exit status */
int	greyctl_import(const struct greyctl *ctl, FILE *in, const char *name);

/* greyctl_import_line - check one dump line (no newline) as import does:
 * 0 a record in r, 1 blank or comment, -1 bad with why */
int	greyctl_import_line(const char *line, size_t len, int64_t now,
	    struct gdb_rec *r, char *why, size_t whysz);

/* (added) spamd's control socket and explain (greyctl_explain.c) */
/* greyctl_ctl_path - <dir>/spamd.sock into buf */
const char *greyctl_ctl_path(const struct greyctl *ctl, char *buf,
	    size_t bufsz);
/* greyctl_daemon_ask - one request to the running spamd: 1 answered (the
 * lines before "end" in *answer, malloc'd), 0 not running, -1 with err */
int	greyctl_daemon_ask(const struct greyctl *ctl, const char *req,
	    char **answer, char *err, size_t errsz);
/* greyctl_daemon_fw - after -a (add 1) or -d (add 0) of WHITE/TRAPPED:
 * the firewall at once; warns on stderr when the daemon runs but fails */
void	greyctl_daemon_fw(const struct greyctl *ctl, int add,
	    enum gdb_type type, const char *ip);
/* greyctl_daemon_stats - the daemon's counter lines after stats */
int	greyctl_daemon_stats(const struct greyctl *ctl);
/* greyctl_daemon_cluster - greyctl cluster: the daemon's peer lines;
 * exit status (1 when no daemon answers) */
int	greyctl_daemon_cluster(const struct greyctl *ctl);
/* greyctl_explain - greyctl explain ADDRESS; returns the exit status */
int	greyctl_explain(const struct greyctl *ctl, const char *key);

#endif /* GREYCTL_H */
