/*
 * grey.h - the writer process: owns the database, the greylisting rules
 * and the firewall; the engines send it tuples over socketpairs (msg.h).
 *
 * main.c makes one socketpair per engine process, forks the writer, which
 * calls grey_main with its ends, and the engines, which drop privileges.
 * The writer never reads from the Internet; it trusts only msg_get frames.
 *
 * grey.c starts grey_ctl.c, grey_http.c and grey_sync.c, which use its
 * state through the accessors below: one process, one loop, one struct
 * grey, so that circle stays (a callback table would only add indirection).
 */
#ifndef SPAMD_GREY_H
#define SPAMD_GREY_H

#include <sys/types.h>

#include "greydb/greydb.h"
#include "pf-sync/fw.h"

#define GREY_SYNC_MAX_TARGETS	32	/* -Y given at most this often */

struct grey_conf {
	const char	*dbdir;		/* database environment directory */
	struct gdb_times times;		/* -G, trap expiry */
	const char	*domains_file;	/* allowed domains; NULL = none */
	int64_t		lowmx_from;	/* -M traps only from this time on
					 * (start + --lowmx-grace, OpenBSD's
					 * 60 s: a restart must not trap real
					 * senders retrying to the backup MX) */
	const char	*lowmx_addr;	/* -M as given, for the log line */
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
	int		cfg_timeout_secs; /* (added) config port: seconds a
					 * sender has for its message; 0 = 30 */
	int		cfg_any_port;	/* (added) --config-any-port: lists from
					 * unreserved source ports too */
	/* (added) sync with peers (grey_sync.c) and HTTP (grey_http.c) */
	const char	*sync_listen;	/* -y address or interface; NULL none */
	const char	*sync_targets[GREY_SYNC_MAX_TARGETS];	/* -Y */
	int		nsync_targets;
	int		sync_port;	/* --sync-port, 0 = 8025 */
	const char	*sync_key_file;	/* --sync-key, NULL = default */
	int		sync_no_auth;	/* --sync-no-auth */
	int		sync_key_any_mode; /* --sync-key-any-mode */
	int		sync_white;	/* --sync-white: WHITE on every pass */
	int		sync_deletions;	/* --sync-deletions: take DEL types */
	/* --sync-accept: sources accepted besides the -Y peers */
	const char	*sync_accept[GREY_SYNC_MAX_TARGETS];
	int		nsync_accept;
	char		sync_key[41];	/* set by grey_sync_prepare; "" = none */
	const char	*http_listen;	/* --http-listen ADDR:PORT; NULL off */
	int		http_fd;	/* its listening socket, opened by
					 * grey_http_prepare in main; -1 none */
	/* (added) trap hosts that mail invalid users (grey_rcpt.h) */
	const char	*valid_rcpt_file; /* --valid-rcpt FILE; NULL none */
	const char	*verify_mx;	/* --verify-mx HOST[:PORT]; NULL none */
	const char	*verify_helo;	/* EHLO name of the probes (-h) */
	int		verify_cache_valid;   /* secs; 0 = 86400 */
	int		verify_cache_invalid; /* secs; 0 = 3600 */
	int		verify_rate;	/* probes/s; 0 = 10 */
	int		invalid_trap;	/* distinct invalid rcpts; 0 = 2 */
	/* (added) --dnsbl-file: read on SIGHUP and sent to the chrooted
	 * engines as MSG_DNSBL_ZONES (kept as is when broken); NULL none */
	const char	*dnsbl_file;
	/* (added) the control socket (grey_ctl.c): on when ctl_path is set;
	 * ctl_fd is its listening socket, opened by grey_ctl_prepare */
	const char	*ctl_path;
	int		ctl_fd;
	/* (added) the master's end of the supervisor channel: a restarted
	 * engine's socket arrives here (struct grey_sup_msg); -1 = none,
	 * then the writer stops once every engine has gone */
	int		sup_fd;
	/* (added) --seccomp for the writer's own filter (sandbox.h), what
	 * runs a command (ipset, pfctl: SANDBOX_W_EXEC), and where its
	 * SIGSYS handler reports a refused call (NULL: nowhere) */
	int		seccomp_mode;
	int		seccomp_flags;
	void		(*sigsys_report)(int nr);
	/* (added) the engines' DNSBL options, for explain's own checker
	 * (grey_dnsbl.c): --dnsbl specs, --dnsbl-timeout (0 = 5000),
	 * --dns-server (NULL = resolv.conf); with dnsbl_file above */
	const char *const *dnsbl_specs;
	int		ndnsbl;
	int		dnsbl_timeout_ms;
	const char	*dns_server;
	/* (added) bounds on what clients make us store (grey_cap.c and
	 * "Bounds on new tuples" below) */
	int		max_new_tuples;	/* --max-new-tuples: new GREY tuples
					 * per client address (/32, IPv6 /64)
					 * per GREY_CAP_WINDOW; 0 = default */
	int64_t		min_free_bytes;	/* --min-free N (MB), as bytes */
	int		min_free_pct;	/* --min-free N%; both 0 = off */
	/* (added) catch-up and digest repair with our own peers
	 * (grey_cluster.c): --cluster-peer ADDR:PORT (their --http-listen),
	 * --cluster-digest SECS (0 = no rounds), --cluster-max-bytes per
	 * pull (0 = no limit) */
	const char	*cluster_peers[GREY_SYNC_MAX_TARGETS];
	int		ncluster_peers;
	int		cluster_digest_secs;
	long long	cluster_max_bytes;
};

/*
 * Bounds on new tuples (added). A new GREY tuple is the one thing a
 * client makes the store grow by, so two guards refuse it, and nothing
 * else:
 * - per client: at most max_new_tuples new tuples per IPv4 address or
 *   IPv6 /64 per GREY_CAP_WINDOW seconds (counted in grey_cap.c's fixed
 *   table); past it a tuple that would be new is not stored. A tuple
 *   already stored still counts (bcount) and passes; WHITE, TRAPPED,
 *   traps (spamtraps, -M, invalid recipients) and deletions go on. The
 *   first refusal of an address's window is logged (event=client_cap),
 *   the others only counted.
 * - disk: while the database's filesystem has less free space than
 *   min_free_bytes (or min_free_pct of its size), checked with statvfs
 *   at most once a second, no new tuple is stored at all (local or from
 *   a sync peer: gdb_set_no_new_grey); the rest goes on. Each change is
 *   logged (event=disk_low / event=disk_ok).
 * The engine hears GDB_R_NEW for a refused tuple: the client is
 * answered as any greylisted one (451 at DATA) and learns nothing. A
 * refused tuple is not sent to sync peers; the invalid-recipient check
 * (grey_rcpt.h) still sees it.
 */
#define GREY_MAX_NEW_DEFAULT	200	/* --max-new-tuples */
#define GREY_MAX_NEW_LIMIT	10000000 /* the most it allows */
#define GREY_MIN_FREE_DEFAULT	64	/* --min-free, MB */
#define GREY_CAP_WINDOW		3600	/* seconds */
#define GREY_CAP_SLOTS		65536	/* addresses counted at once */
#define GREY_CAP_WAYS		8	/* slots of a hash set */

/*
 * What the writer answers (added). MSG_RESULT's num is an enum gdb_result;
 * GREY_R_ERROR (0) means the writer could not decide (a database error, or
 * -b mode without a database): the engine treats it as greylisted (451).
 * MSG_RESULT's str[0] is the client's own address, canonical text.
 *
 * Network grouping (added): with group_v4 / group_v6 > 0 the GREY tuple is
 * stored under the network address of the client's prefix (203.0.113.7
 * with /24 is stored as 203.0.113.0), so a retry from another address of
 * the same pool matches it. WHITE and TRAPPED are kept for the client's own
 * address only (the one that passed or mailed the trap): the writer checks
 * them itself, and moves what gdb_tuple_seen wrote for the network address
 * onto the client's address. greyctl so shows GREY entries under the
 * network address.
 *
 * Trapped list (added): MSG_TRAPLIST's str[0] is
 *   spamd-greytrap;"Your address %A has mailed to spamtraps here\n";
 *   inet;N;a.b.c.d/32;...;inet6;M;addr/128;...
 * (a section only when it has addresses; "spamd-greytrap;" alone clears).
 */
#define GREY_R_ERROR	0
#define GREY_TRAPLIST_TAG "spamd-greytrap"

/*
 * grey_main - run the writer until every engine fd has closed or SIGTERM;
 * fds are the writer's ends of the socketpairs (non-blocking is set here).
 * Returns the process exit status.
 */
int	grey_main(const int *fds, int nfds, const struct grey_conf *conf);

/*
 * Inside the writer (added; grey.c, grey_cfg.c, grey_fw.c only).
 */
struct event_base;
struct gdb_rec;

/*
 * The count of new tuples per client (grey_cap.c). A slot counts one
 * IPv4 address or IPv6 /64 for a window from its first new tuple; slots
 * taken since the last grey_cap_batch are never evicted, so pointers to
 * them stay valid for one batch.
 */
struct grey_cap;
struct grey_cap_slot;
/* grey_cap_new - max new tuples per window_secs, nslots slots (rounded
 * down to a power of two sets of GREY_CAP_WAYS); NULL on bad arguments
 * or out of memory */
struct grey_cap *grey_cap_new(int max, int window_secs, unsigned nslots);
/* grey_cap_free - free the table; NULL is ignored */
void	grey_cap_free(struct grey_cap *c);
/* grey_cap_batch - start a batch of lookups */
void	grey_cap_batch(struct grey_cap *c);
/* grey_cap_get - the slot counting ip (canonical text) at now: its own,
 * restarted when its window is over; else an empty slot of its set, one
 * whose window is over, one that counts nothing, or the one whose window
 * started first (its count forgotten: evicted). NULL when ip does not
 * parse or every slot of its set was taken in this batch (the caller
 * stores nothing new) */
struct grey_cap_slot *grey_cap_get(struct grey_cap *c, const char *ip,
	    int64_t now);
/* grey_cap_left - new tuples s may still store (0 for NULL) */
int	grey_cap_left(const struct grey_cap *c, const struct grey_cap_slot *s);
/* grey_cap_used - stored new tuples were written for s, refused were
 * not; 1 for the first refusal of s's window (log it), else 0 */
int	grey_cap_used(struct grey_cap *c, struct grey_cap_slot *s,
	    int stored, int refused);
/* grey_cap_prefix - what s counts as text ("a.b.c.d/32", "x:y::/64") */
const char *grey_cap_prefix(const struct grey_cap_slot *s, char *buf,
	    size_t bufsz);
/* grey_cap_counts - addresses with new tuples in their live window,
 * windows that hit the cap, such windows evicted; all 0 for NULL */
void	grey_cap_counts(const struct grey_cap *c, int64_t now, long *live,
	    long *capped, long *evicted);

/* grey_traplist_build - the MSG_TRAPLIST control message for the live
 * TRAPPED records of db (malloc'd, *len set); NULL with err on failure */
char	*grey_traplist_build(struct gdb *db, int64_t now, size_t *len,
	    struct gdb_err *err);

/*
 * What the writer's listeners share (grey_listen.c): a connection cap, a
 * one-second pause when accept runs out of descriptors or memory (logged
 * once per pause, never a loop), and their counters. A listener sets
 * accept_ev (its own accept event) or lev (evhttp's listener).
 */
struct evconnlistener;
struct grey_listen {
	const char		*name;		/* "config", "http", "ctl" */
	struct event		*accept_ev;
	struct evconnlistener	*lev;
	struct event		*resume_ev;
	int			 nconns, max;
	long			 refused, timedout, paused;
	time_t			 refused_logged;	/* rate limit */
	long			 refused_quiet;
};
/* Counters of one listener for /metrics. */
struct grey_listen_counts {
	long	refused, timedout, paused, open;
};
/* grey_listen_init - a listener named name with at most max connections */
int	grey_listen_init(struct grey_listen *l, struct event_base *base,
	    const char *name, int max);
/* grey_listen_accept_failed - accept failed with err: on EMFILE, ENFILE,
 * ENOBUFS, ENOMEM stop accepting for a second (1); else 0 */
int	grey_listen_accept_failed(struct grey_listen *l, int err);
/* grey_listen_admit - 1 if one more connection fits (then counted), 0 if
 * refused (counted, logged at most once a second) */
int	grey_listen_admit(struct grey_listen *l, const char *peer);
/* grey_listen_refuse - count and log (rate-limited) a refused connection */
void	grey_listen_refuse(struct grey_listen *l, const char *peer,
	    const char *why);
/* grey_listen_done - an admitted connection closed */
void	grey_listen_done(struct grey_listen *l);
/* grey_listen_timedout - count and log a connection closed at its
 * whole-request deadline */
void	grey_listen_timedout(struct grey_listen *l, const char *peer,
	    size_t bytes, int secs);
/* grey_listen_counts - copy the counters (zeros for NULL) */
void	grey_listen_counts(const struct grey_listen *l,
	    struct grey_listen_counts *c);
/* grey_listen_free - free the resume timer */
void	grey_listen_free(struct grey_listen *l);

/*
 * The config port (grey_cfg.c). fn gets each accepted control message
 * (no trailing newline), already checked with bl_parse, with a load
 * number; it returns how many engines it sent the list to. Each of them
 * then answers through grey_cfg_applied with that number (or is reported
 * gone by grey_cfg_engine_gone); the client gets "ok" once all did.
 */
struct grey_cfg;
typedef int (*grey_cfg_fn)(const char *line, size_t len, uint64_t load,
    uint64_t *engines, void *arg);
/* grey_cfg_start - accept connections on the listening socket fd;
 * any_port: accept lists from unreserved source ports too */
int	grey_cfg_start(struct grey_cfg **out, struct event_base *base, int fd,
	    int timeout_secs, int any_port, grey_cfg_fn fn, void *arg);
/* grey_cfg_applied - engine idx (1-based) applied load (err NULL) or
 * refused it (err says why) */
void	grey_cfg_applied(struct grey_cfg *cfg, uint64_t load, int idx,
	    const char *err);
/* grey_cfg_engine_gone - engine idx closed: loads waiting for it fail */
void	grey_cfg_engine_gone(struct grey_cfg *cfg, int idx);
/* grey_cfg_listen - the config port's listener counters */
const struct grey_listen *grey_cfg_listen(const struct grey_cfg *cfg);
/* grey_cfg_free - stop accepting, drop open connections; safe on NULL */
void	grey_cfg_free(struct grey_cfg *cfg);
/* grey_cfg_counts - lists accepted and messages refused so far */
void	grey_cfg_counts(const struct grey_cfg *cfg, long *loads, long *errors);

/* The firewall (grey_fw.c): batches changes and flushes them within
 * 100 ms, retries with backoff on failure. */
struct grey_fw;
struct grey;
/* grey_fw_open - fw_open the configured backend (g: the store to refill
 * the sets from once a missing table is back); -1 with its message */
int	grey_fw_open(struct grey_fw **out, struct grey *g,
	    struct event_base *base, const struct grey_conf *conf, char *err,
	    size_t errsz);
/* grey_fw_close - try one last flush, then close; safe on NULL */
void	grey_fw_close(struct grey_fw *gf);
/* grey_fw_white - ip passed (or is WHITE): into the white set until expire */
void	grey_fw_white(struct grey_fw *gf, const char *ip, int64_t expire,
	    int64_t now);
/* grey_fw_trap - ip trapped: out of the white set (into the trap set) */
void	grey_fw_trap(struct grey_fw *gf, const char *ip, int64_t expire,
	    int64_t now);
/* grey_fw_expired - a WHITE or TRAPPED record expired: drop its element */
void	grey_fw_expired(struct grey_fw *gf, const struct gdb_rec *rec);
/* grey_fw_reconcile - repair the sets from db both ways, log the counts */
int	grey_fw_reconcile(struct grey_fw *gf, struct gdb *db, int64_t now);
/* grey_fw_list - visit one set's elements through the writer's handle
 * (fw_list); *setname gets the set's name; -1 with err */
int	grey_fw_list(struct grey_fw *gf, enum fw_set set, int v6,
	    fw_list_fn fn, void *arg, const char **setname, char *err,
	    size_t errsz);
/* grey_fw_counts - firewall changes queued and failures so far */
void	grey_fw_counts(const struct grey_fw *gf, long *ops, long *errors);
/* grey_fw_table_missing - the backend's table was found missing after a
 * failure (until a flush or reconcile succeeds): 1 with its name in what
 * (e.g. "inet spamd"), else 0 */
int	grey_fw_table_missing(const struct grey_fw *gf, const char **what);

/*
 * (added) The writer's state as seen by grey_sync.c and grey_http.c,
 * through accessors (struct grey stays private to grey.c).
 */
struct grey;
struct psync_counters;
/* Writer counters (the SIGUSR1 line) for metrics. */
/*
 * One message on the supervisor channel (SOCK_SEQPACKET, master to
 * writer), with the new engine's socket as SCM_RIGHTS: engine index
 * (0-based) died of signal sig (0: exited) after its seccomp filter
 * trapped call sysnr (-1: none), and this socket is its successor's.
 */
struct grey_sup_msg {
	int32_t	engine;
	int32_t	sig;
	int32_t	sysnr;
};

struct grey_stats {
	long	tuples, new, grey, passes, white, trapped, traps;
	long	db_errors, reopens, bad_frames, expired, traplists;
	long	flushes;
	double	flush_secs;		/* time spent in gdb_flush */
	long	fw_ops, fw_errors, cfg_loads, cfg_errors;
	int	fw_table_missing;	/* 1 while the firewall table is gone */
	int	engines, engines_open;
	long	engine_restarts;	/* engines replaced after a death */
	long	engine_sigsys;		/* of those, killed by their filter */
	/* (added) bounds on new tuples */
	long	refused_cap, refused_disk;	/* new tuples not stored */
	long	cap_live, cap_hits, cap_evicted; /* grey_cap_counts */
	int	disk_low;			/* 1 while refusing */
	long long disk_free, disk_min;		/* bytes; -1 = unknown/off */
};
/* grey_stats_get - copy the writer's counters */
void	grey_stats_get(struct grey *g, struct grey_stats *st);
/* grey_engine_stats - engine i's last MSG_STATS text (key=value), or
 * NULL (none yet, or i out of range) */
const char *grey_engine_stats(struct grey *g, int i);
/* grey_db - the store handle, NULL while closed (-b, failed reopen) */
struct gdb *grey_db(struct grey *g);
/* grey_db_error - count and log a store error, reopen when it says so */
void	grey_db_error(struct grey *g, const char *op, struct gdb_err *err);
/* grey_times - the greylisting times (-G, trap expiry) */
const struct gdb_times *grey_times(struct grey *g);
/* grey_fw_of - the firewall, NULL when off (grey_fw_* accept NULL) */
struct grey_fw *grey_fw_of(struct grey *g);
/* grey_refused_sync - (added) a sync peer's new tuple was refused (the
 * disk is low): counted with the local ones */
void	grey_refused_sync(struct grey *g);
/* grey_changed - the store was written (commit soon); trapped = 1 when
 * the trapped set changed (send the engines a new trapped list) */
void	grey_changed(struct grey *g, int trapped);

/* Sync with peer MX hosts (grey_sync.c). */
struct grey_sync;
/* grey_sync_prepare - in main, before the fork: check the sync options
 * and load the key into conf->sync_key; -1 with a message in err */
int	grey_sync_prepare(struct grey_conf *conf, char *err, size_t errsz);
/* grey_sync_start - sockets on base when -y/-Y were given (*out NULL
 * otherwise); -1 with the reason logged */
int	grey_sync_start(struct grey_sync **out, struct grey *g,
	    struct event_base *base, const struct grey_conf *conf);
/* grey_sync_free - close the sockets; safe on NULL */
void	grey_sync_free(struct grey_sync *gs);
/* grey_sync_local - a local tuple was decided (res an enum gdb_result):
 * send GREY / TRAPPED (and WHITE with --sync-white); safe on NULL */
void	grey_sync_local(struct grey_sync *gs, int res, const char *ip,
	    const char *helo, const char *from, const char *to,
	    int64_t expire, int64_t now);
/* grey_sync_del - a local deletion of a GDB_WHITE or GDB_TRAPPED record
 * to the -Y targets with --sync-deletions (DEL_WHITE / DEL_TRAPPED): 0
 * sent, -1 failed, 1 not configured; safe on NULL */
int	grey_sync_del(struct grey_sync *gs, enum gdb_type type,
	    const char *ip);
struct psync_entry;
/* grey_sync_apply - apply one WHITE, TRAPPED (or other) entry from a
 * peer to the store, the firewall and the trapped list, as a received
 * sync entry (source names it in the log: "sync", "cluster"); 1 the
 * store changed, 0 nothing to do, -1 error */
int	grey_sync_apply(struct grey *g, const struct psync_entry *e,
	    const char *source);
/* grey_sync_log - the SIGUSR1 line of sync counters; safe on NULL */
void	grey_sync_log(const struct grey_sync *gs);
/* grey_sync_counters - the counters, NULL when sync is off */
const struct psync_counters *grey_sync_counters(const struct grey_sync *gs);

/* The HTTP endpoint: /traplist and /metrics (grey_http.c). */
struct grey_http;
/* grey_http_prepare - in main, before the fork: check --http-listen,
 * open and bind its socket into conf->http_fd (-1 when unset); -1 with
 * a message in err */
int	grey_http_prepare(struct grey_conf *conf, char *err, size_t errsz);
/* grey_http_start - serve on conf->http_fd (*out NULL when unset); -1
 * with the reason logged */
int	grey_http_start(struct grey_http **out, struct grey *g,
	    struct event_base *base, const struct grey_conf *conf,
	    struct grey_sync *gs);
/* grey_http_free - stop listening; safe on NULL */
void	grey_http_free(struct grey_http *gh);
/* grey_http_split - "ADDR:PORT" or "[V6]:PORT" into addr and port; -1
 * when it is neither */
int	grey_http_split(const char *spec, char *addr, size_t addrsz,
	    uint16_t *port);
struct evhttp_request;
/* grey_http_stream - req's answer is streamed from now on: its
 * connection has no whole-request deadline and no read timeout any more,
 * but is dropped when no block left for the listener's timeout (10 s;
 * grey_http_progress re-arms it) or a write stalls that long */
void	grey_http_stream(struct grey_http *gh, struct evhttp_request *req);
/* grey_http_progress - a block of req's streamed answer left the socket */
void	grey_http_progress(struct grey_http *gh, struct evhttp_request *req);

/* (added) Catch-up and digest repair between our hosts (grey_cluster.c;
 * the format is pf-sync/cluster.h). */
struct grey_cluster;
struct evbuffer;
struct sockaddr;
/* grey_cluster_prepare - in main, after grey_sync_prepare: check
 * --cluster-peer (a sync key is needed); -1 with a message in err */
int	grey_cluster_prepare(const struct grey_conf *conf, char *err,
	    size_t errsz);
/* grey_cluster_start - serve /cluster/ (with a sync key) and pull from
 * the peers: the catch-up at once, digest rounds after; *out NULL when
 * there is no key; -1 = fatal */
int	grey_cluster_start(struct grey_cluster **out, struct grey *g,
	    struct event_base *base, const struct grey_conf *conf);
/* grey_cluster_free - stop; safe on NULL */
void	grey_cluster_free(struct grey_cluster *gc);
/* grey_cluster_serve - answer GET /cluster/... (path without query) */
void	grey_cluster_serve(struct grey_cluster *gc, struct grey_http *gh,
	    struct evhttp_request *req, const char *path);
/* grey_cluster_packet - a sync packet from from was accepted (a peer's
 * last_packet); safe on NULL */
void	grey_cluster_packet(struct grey_cluster *gc,
	    const struct sockaddr *from);
/* grey_cluster_peers - the number of --cluster-peer (0 for NULL) */
int	grey_cluster_peers(const struct grey_cluster *gc);
/* grey_cluster_peer_line - peer i's line for greyctl cluster
 * (peer= last_packet= last_catchup= last_digest= differing= state=
 * ...); -1 when there is no such peer */
int	grey_cluster_peer_line(const struct grey_cluster *gc, int i,
	    char *buf, size_t bufsz);
/* grey_cluster_metrics - the spamd_cluster_* metrics into b */
void	grey_cluster_metrics(const struct grey_cluster *gc,
	    struct evbuffer *b);
/* grey_cluster_of - the writer's cluster part, NULL when off */
struct grey_cluster *grey_cluster_of(struct grey *g);

/* (added) The control socket for greyctl (grey_ctl.c). */
struct grey_ctl;
/* grey_ctl_prepare - in main, before the forks: bind path (NULL: off)
 * mode 0660, group gid when root ((gid_t)-1: keep), listen; sets
 * conf->ctl_fd and conf->ctl_path; -1 with a message in err */
int	grey_ctl_prepare(struct grey_conf *conf, const char *path, gid_t gid,
	    char *err, size_t errsz);
/* grey_ctl_start - serve the socket (*out NULL when off); -1 = fatal */
int	grey_ctl_start(struct grey_ctl **out, struct grey *g,
	    struct event_base *base, const struct grey_conf *conf,
	    struct grey_sync *gs);
/* grey_ctl_blacklist - the config port accepted a list: keep it so
 * explain can name the lists of an address; safe on NULL */
void	grey_ctl_blacklist(struct grey_ctl *gc, const char *line, size_t len);
/* grey_ctl_dnsbl_text - SIGHUP read the --dnsbl-file text (checked):
 * explain's checker takes it too; safe on NULL */
void	grey_ctl_dnsbl_text(struct grey_ctl *gc, const char *text,
	    size_t len);
/* grey_cfg_of, grey_ctl_of - the writer's config port and control
 * socket (NULL when off), for their counters in /metrics */
struct grey_cfg *grey_cfg_of(struct grey *g);
struct grey_ctl *grey_ctl_of(struct grey *g);
/* grey_ctl_listen - the control socket's listener counters, NULL off */
const struct grey_listen *grey_ctl_listen(const struct grey_ctl *gc);
/* grey_ctl_free - stop serving (main keeps the socket); safe on NULL */
void	grey_ctl_free(struct grey_ctl *gc);

#endif /* SPAMD_GREY_H */
