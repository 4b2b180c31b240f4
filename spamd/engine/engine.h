/*
 * engine.h - one spamd engine process: accepts connections on its
 * listening sockets (shared with the other engines by SO_REUSEPORT), runs
 * a session (session.h) per connection with one event each, paces replies
 * (stutter.c) and sends tuples to the writer over its socketpair (msg.h).
 *
 * The engine runs unprivileged in an empty chroot (privsep.h): it holds no
 * database and no firewall handle, only sockets main opened for it.
 *
 * engine.c, engine_dns.c, stutter.c and tls.c call each other through this
 * header on purpose (one event loop over one struct conn); callback tables
 * between them would only add indirection, so that circle stays.
 */
#ifndef SPAMD_ENGINE_H
#define SPAMD_ENGINE_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/tree.h>
#include <time.h>

#include <event2/event_struct.h>

#include "spamd/common/blacklist.h"
#include "spamd/engine/session.h"

#define ENGINE_MAX_LISTEN	16	/* -l addresses */
#define ENGINE_ACCEPT_BURST	64	/* accepts per wakeup, for fairness */
#define ENGINE_WRITER_MAX	(16u << 20)	/* queued to the writer */
/*
 * Back-pressure: above HIGH bytes queued to the writer, a client's next
 * RCPT waits (its connection is parked, nothing read) until the queue is
 * down to LOW, so a slow database slows RCPTs instead of losing tuples.
 */
#define ENGINE_WRITER_HIGH	(4u << 20)
#define ENGINE_WRITER_LOW	(1u << 20)

/* What main gives an engine process. */
struct engine_conf {
	int		 index;		/* 0 .. nworkers - 1 */
	int		 nworkers;
	int		 listen_fds[ENGINE_MAX_LISTEN];
	int		 nlisten;
	int		 writer_fd;	/* this engine's end of the socketpair */
	int		 maxcon;	/* this engine's own cap: -c, or less
					 * when its file limit is lower; -c
					 * itself is in budget */
	int		 maxblack;	/* -B (daemon-wide with budget) */
	int		 max_per_client;/* --max-per-client; 0 = no cap */
	int		 max_rcpt;	/* (added) --max-rcpt: RCPTs recorded
					 * per greylisted connection (session.h
					 * SESSION_RCPT_DEFAULT when 0) */
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
	/* DNS checks (engine_dns.c; added) */
	const char *const *dnsbl_specs;	/* --dnsbl, ndnsbl of them */
	int		 ndnsbl;
	const char	*dnsbl_file;	/* --dnsbl-file; NULL = none */
	int		 dnsbl_timeout_ms; /* --dnsbl-timeout; 0 = default */
	const char	*dns_server;	/* --dns-server; NULL = resolv.conf */
	int		 rdns_mode;	/* --rdns: ENGINE_DNS_OFF/LOG/TARPIT */
	int		 helo_mode;	/* --helo-check: the same */
	int		 dns_skip_white;/* --dns-skip-white: 1 = yes */
	int		 stats_secs;	/* (added) send MSG_STATS to the writer
					 * this often (metrics); 0 = only on
					 * SIGUSR1 */
	int		 seccomp_mode;	/* (added) --seccomp: enum sandbox_mode
					 * (sandbox.h); 0 = kill */
	struct ssl_ctx_st *tls_ctx;	/* (added) -C/-K loaded (tls.h);
					 * NULL = no STARTTLS */
	struct engine_budget *budget;	/* (added) -c/-B shared by all
					 * engines (engine_budget.c); NULL =
					 * maxcon/maxblack are this engine's
					 * own limits only */
};

/* --rdns / --helo-check modes */
enum { ENGINE_DNS_OFF = 0, ENGINE_DNS_LOG, ENGINE_DNS_TARPIT };

/* Counters, logged on SIGUSR1 as one key=value line. */
struct engine_stats {
	uint64_t	 accepted;
	uint64_t	 closed;
	uint64_t	 grey, black, trapped;	/* connections by class at accept */
	uint64_t	 trapped_live;		/* sessions trapped by a result */
	uint64_t	 tuples;
	uint64_t	 tuples_dropped;	/* writer queue full */
	uint64_t	 tuples_waited;		/* RCPTs parked by back-pressure */
	uint64_t	 rcpt_refused;		/* (added) 452: past --max-rcpt */
	uint64_t	 results;
	uint64_t	 per_client_refused;
	uint64_t	 accept_errors;		/* EMFILE and friends */
	uint64_t	 idle_closed;
	uint64_t	 bytes_out;
	uint64_t	 lists_loaded;
	uint64_t	 list_errors;
	uint64_t	 tarpit_secs;	/* (added) seconds closed connections
					 * spent in the tarpit (metrics) */
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
	uint16_t	 icap;		/* ibuf's size: ENGINE_IBUF_START,
					 * doubled up to SESSION_LINE_MAX */
	int		 fd;
	struct engine_dns_conn *dns;	/* (added) DNS checks, NULL if none */
	TAILQ_ENTRY(conn) park;		/* waiting for the writer to drain */
	uint8_t		 parked;
	struct ssl_st	*tls;		/* (added) after STARTTLS, else NULL */
	time_t		 tarpit_start;	/* (added) when it entered the
					 * tarpit; 0 = never (greylisted) */
	char		*obsd_lists;	/* (added) --log-format openbsd: the
					 * lists at connect, for the
					 * disconnect line; NULL if none */
	uint8_t		 data_body;	/* -v: past the message's headers */
	uint8_t		 data_lines;	/* -v: body lines seen (OpenBSD
					 * logs the first 9) */
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

/* engine_tarpit - switch a greylisted session to the tarpit as cls
 * (a trap result, a DNS listing); nothing if it is not greylisted */
void	engine_tarpit(struct conn *c, enum session_class cls);

/*
 * DNS checks (engine_dns.c): DNSBL zones and reverse DNS started at
 * accept, the HELO check at HELO/EHLO. A greylisted session's RCPT or
 * DATA waits (engine_dns_hold) while a check that may tarpit it is
 * out, so a listed client never records a tuple; the answer switches
 * the session to the tarpit (engine_tarpit) and its messages join the
 * reply after DATA (engine_dns_lookup).
 */
struct engine_dns;
struct engine_dns_conn;
/* engine_dns_conf_check - check the DNS options before forking (zone
 * specs, zone file, name server); -1 with err naming the flag/file:line */
int	engine_dns_conf_check(const struct engine_conf *conf, char *err,
	    size_t errsz);
/* engine_dns_new - the engine's checker, before the chroot; NULL when no
 * DNS check is configured (fatal on error) */
struct engine_dns *engine_dns_new(struct engine *e);
/* engine_dns_free - cancel everything and free; NULL is ignored */
void	engine_dns_free(struct engine_dns *ed);
/* engine_dns_start - a new connection: start its checks (greylisted) */
void	engine_dns_start(struct engine_dns *ed, struct conn *c);
/* engine_dns_helo - the session took a HELO/EHLO name */
void	engine_dns_helo(struct engine_dns *ed, struct conn *c);
/* engine_dns_end - the connection closes: cancel its checks, free */
void	engine_dns_end(struct conn *c);
/* engine_dns_hold - 1 if c's next command (RCPT, DATA) must wait for a
 * check (the check's callback runs engine_run then) */
int	engine_dns_hold(struct conn *c);
/* engine_dns_lookup - add the DNS listings' messages to m */
void	engine_dns_lookup(const struct conn *c, struct bl_match *m);
/* engine_dns_white - the writer says c's client is WHITE */
void	engine_dns_white(struct engine_dns *ed, struct conn *c);
/* engine_dns_reload - the writer sent the zone file's text (SIGHUP) */
void	engine_dns_reload(struct engine_dns *ed, const char *text,
	    size_t len);
/* engine_dns_stats - log per-zone and check counters (SIGUSR1) */
void	engine_dns_stats(struct engine_dns *ed);
/* engine_dns_stats_text - (added) append " dnsbl_conns=N" and one
 * " dnsbl=ZONE:QUERIES:LISTED:TIMEOUTS" per zone to buf (the stats line the
 * writer exports as metrics); nothing when ed is NULL */
void	engine_dns_stats_text(struct engine_dns *ed, char *buf, size_t sz);

/*
 * The -c and -B budgets shared by all -W engines (engine_budget.c): one
 * anonymous MAP_SHARED page of C11 atomics made by the master before it
 * forks the engines. An engine takes one connection of -c before each
 * accept (exact, by compare-and-swap) and puts it back at close; it counts
 * its tarpitted connections there for -B. Each engine has its own slot
 * (index) too. While -c is full daemon-wide an engine stops accepting and
 * re-checks every ENGINE_BUDGET_RECHECK_MS, since the connection that
 * frees room may close in another engine.
 */
/* a connection's input buffer starts this small and doubles only while
 * a line is longer (up to SESSION_LINE_MAX, 8,192 bytes as OpenBSD):
 * 10,000 idle half-open clients must not cost 8 KiB each */
#define ENGINE_IBUF_START	512

#define ENGINE_BUDGET_SLOTS	64	/* the -W maximum */
/* the sigsys note of the writer (engine_budget_note_sigsys): the slot
 * after the engines' */
#define ENGINE_BUDGET_WRITER	ENGINE_BUDGET_SLOTS
#define ENGINE_BUDGET_RECHECK_MS 200
/* --max-per-client across engines: a count-min table of 4 x 65,536
 * counts (1 MiB) per engine on the same mapping; see engine_budget.c.
 * Why so wide: at most -c clients are counted at once, and two of them
 * that share a bucket in every row share a cap; with 4,096 buckets,
 * 1,375 clients of 8 connections each under --max-per-client 10 lost 30
 * connections that way (fault_many_clients.py), with 65,536 the chance
 * is about 1 in 5 million per client. */
#define ENGINE_BUDGET_CLIENT_ROWS	4
#define ENGINE_BUDGET_CLIENT_BUCKETS	65536
#define ENGINE_PREFIX6_DEFAULT		64	/* --per-client-prefix6 */
struct engine_budget;
/* engine_budget_new - the shared page for nslots engines (master, before
 * forking them); NULL on error (errno set) */
struct engine_budget *engine_budget_new(int nslots, int maxcon, int maxblack);
/* engine_budget_reset - zero every count; only while no engine runs (the
 * master, before starting engines again after a writer restart) */
void	engine_budget_reset(struct engine_budget *b);
/* engine_budget_free - unmap the page; NULL is ignored */
void	engine_budget_free(struct engine_budget *b);
/* engine_budget_take - reserve one connection of -c for engine slot;
 * 1: taken (give it back with engine_budget_put), 0: -c is full */
int	engine_budget_take(struct engine_budget *b, int slot);
/* engine_budget_put - give back one connection engine slot took */
void	engine_budget_put(struct engine_budget *b, int slot);
/* engine_budget_full - 1 if -c is reached daemon-wide now */
int	engine_budget_full(const struct engine_budget *b);
/* engine_budget_black - engine slot's tarpitted count changes by delta */
void	engine_budget_black(struct engine_budget *b, int slot, int delta);
/* engine_budget_black_full - 1 if -B tarpitted connections are open
 * daemon-wide (new ones are then not stuttered) */
int	engine_budget_black_full(const struct engine_budget *b);
/* engine_budget_counts - the daemon-wide open and tarpitted counts */
void	engine_budget_counts(const struct engine_budget *b, int *conns,
	    int *black);

/* engine_budget_clients - set --max-per-client (0 = off) and the IPv6
 * prefix length a client is counted by (master, before forking) */
void	engine_budget_clients(struct engine_budget *b, int max, int prefix6);
/* engine_budget_client_take - one more connection of a's client (its IPv4
 * /32 or IPv6 prefix) daemon-wide; 1: admitted (give it back with
 * engine_budget_client_put), 0: the client is at --max-per-client */
int	engine_budget_client_take(struct engine_budget *b, int slot,
	    const struct bl_addr *a);
/* engine_budget_client_put - a's client closed one admitted connection
 * of engine slot */
void	engine_budget_client_put(struct engine_budget *b, int slot,
	    const struct bl_addr *a);
/* engine_budget_release - engine slot died: give back all it held (the
 * master, before starting its successor) */
void	engine_budget_release(struct engine_budget *b, int slot);
/* engine_budget_note_sigsys - engine slot's filter trapped call nr
 * (async-signal-safe) */
void	engine_budget_note_sigsys(struct engine_budget *b, int slot, int nr);
/* engine_budget_take_sigsys - the call engine slot's filter trapped last
 * (-1: none); reading clears it */
int	engine_budget_take_sigsys(struct engine_budget *b, int slot);

#endif /* SPAMD_ENGINE_H */
