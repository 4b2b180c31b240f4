/*
 * engine.h - one spamd engine process: accepts connections on its
 * listening sockets (shared with the other engines by SO_REUSEPORT), runs
 * a session (session.h) per connection with one event each, paces replies
 * (stutter.c) and sends tuples to the writer over its socketpair (msg.h).
 *
 * The engine runs unprivileged in an empty chroot (privsep.h): it holds no
 * database and no firewall handle, only sockets main opened for it.
 */
#ifndef SPAMD_ENGINE_H
#define SPAMD_ENGINE_H

#include <stdint.h>
#include <sys/tree.h>
#include <time.h>

#include <event2/event_struct.h>

#include "spamd/blacklist.h"
#include "spamd/session.h"

#define ENGINE_MAX_LISTEN	16	/* -l addresses */
#define ENGINE_ACCEPT_BURST	64	/* accepts per wakeup, for fairness */
#define ENGINE_WRITER_MAX	(16u << 20)	/* queued to the writer */

/* What main gives an engine process. */
struct engine_conf {
	int		 index;		/* 0 .. nworkers - 1 */
	int		 nworkers;
	int		 listen_fds[ENGINE_MAX_LISTEN];
	int		 nlisten;
	int		 writer_fd;	/* this engine's end of the socketpair */
	int		 maxcon;	/* this engine's share of -c */
	int		 maxblack;	/* this engine's share of -B */
	int		 max_per_client;/* --max-per-client; 0 = no cap */
	int		 stutter_secs;	/* -S: greylisted stutter period */
	int		 stutter_delay;	/* -s: seconds per byte; 0 = none */
	int		 rcvbuf;	/* -w: SO_RCVBUF of tarpitted sockets */
	int		 lowmx_set;	/* -M given */
	struct bl_addr	 lowmx;		/* -M address */
	const char	*hostname;	/* -h */
	const char	*banner;	/* -n */
	int		 bl_code;	/* 450 (-4) or 550 (-5) */
	int		 blacklist_only;/* -b */
	const char	*user;		/* privsep: --user */
	const char	*chroot_dir;	/* privsep: --chroot */
};

/* Counters, logged on SIGUSR1 as one key=value line. */
struct engine_stats {
	uint64_t	 accepted;
	uint64_t	 closed;
	uint64_t	 grey, black, trapped;	/* connections by class at accept */
	uint64_t	 trapped_live;		/* sessions trapped by a result */
	uint64_t	 tuples;
	uint64_t	 tuples_dropped;	/* writer queue full */
	uint64_t	 results;
	uint64_t	 per_client_refused;
	uint64_t	 accept_errors;		/* EMFILE and friends */
	uint64_t	 idle_closed;
	uint64_t	 bytes_out;
	uint64_t	 lists_loaded;
	uint64_t	 list_errors;
};

struct engine;

/* One connection: the session plus its socket and its single event. */
struct conn {
	struct session	 s;
	struct event	 ev;		/* read, write or stutter tick */
	RB_ENTRY(conn)	 entry;		/* by session id, for results */
	struct engine	*eng;
	char		*ibuf;		/* unprocessed input, NULL if none */
	uint16_t	 ilen;
	int		 fd;
};

/*
 * engine_main - drop privileges, run the engine until SIGTERM or until
 * the writer goes away. Returns the exit status (0 clean, 1 on error).
 */
int	engine_main(const struct engine_conf *conf);

/* engine_run - after any change: write, read or close c as the session
 * wants (c may be freed when this returns) */
void	engine_run(struct conn *c);
/* engine_close - end a connection, log it and free it */
void	engine_close(struct conn *c, const char *why);
/* engine_now - the engine's cached clock */
time_t	engine_now(const struct engine *e);
/* engine_stats_of - the engine's counters */
struct engine_stats *engine_stats_of(struct engine *e);
/* engine_base - the engine's event base */
struct event_base *engine_base(const struct engine *e);
/* engine_stutter_tv - the common timeout of one stutter tick */
const struct timeval *engine_stutter_tv(const struct engine *e);
/* engine_idle_tv - the common timeout of the idle limit */
const struct timeval *engine_idle_tv(const struct engine *e);
/* engine_conf_of - the engine's configuration */
const struct engine_conf *engine_conf_of(const struct engine *e);

/*
 * Output pacing (stutter.c). stutter_flush writes the session's pending
 * output: at once when no stutter applies, else one byte now and then one
 * per -s seconds on c's event. 1: waiting (c's event armed), 0: all
 * written, -1: the client is gone (caller closes).
 */
int	stutter_flush(struct conn *c);
/* stutter_applies - 1 if c's next byte must wait -s seconds */
int	stutter_applies(const struct conn *c, time_t now);

#endif /* SPAMD_ENGINE_H */
