/*
 * greylogd.h - greylogd, spamlogd(8) for Linux: keep hosts we exchange
 * mail with whitelisted (greylogd_*).
 *
 * The firewall logs the first packet (TCP SYN) of SMTP connections to an
 * NFLOG group (etc/spamd-greylogd.nft). greylogd reads that group with
 * libnetfilter_log on a libevent loop and, as spamlogd does:
 * - inbound (a host that reached our real MTA, i.e. a WHITE host): its
 *   WHITE entry is written again with expire = now + whiteexp;
 * - outbound (we connect to port 25 elsewhere): the destination becomes
 *   WHITE, so its replies are not greylisted (off with -I).
 * Each address goes to the store (gdb_white, refused while TRAPPED), the
 * firewall's white set with the new timeout (fw_add, one fw_flush per
 * batch), and with -Y to sync peers as WHITE. Addresses seen within one
 * batch window (GREYLOGD_BATCH_MS) are written once.
 */
#ifndef PFSYNC_GREYLOGD_H
#define PFSYNC_GREYLOGD_H

#include <stddef.h>
#include <stdint.h>

#include "greydb/greydb.h"

#define GREYLOGD_GROUP_DEFAULT	8	/* NFLOG group */
#define GREYLOGD_WHITEEXP_MAX	2160	/* hours, as spamlogd */
#define GREYLOGD_BATCH_MS	250	/* how long an address waits */
#define GREYLOGD_BATCH_MAX	4096	/* addresses per batch */
#define GREYLOGD_COPY_LEN	256	/* packet bytes the kernel copies */

/* Which way a logged connection went. */
enum greylogd_dir {
	GREYLOGD_IN = 1,	/* someone connected to us: whitelist source */
	GREYLOGD_OUT,		/* we connected out: whitelist destination */
};

/* What greylogd_parse found in a logged packet. */
struct greylogd_pkt {
	int		af;			/* AF_INET or AF_INET6 */
	char		src[GDB_ADDR_MAX];	/* canonical text */
	char		dst[GDB_ADDR_MAX];
	uint16_t	sport, dport;
	uint8_t		flags;			/* TCP flags byte */
};

/* Why a packet was not used, also counter indexes. */
enum greylogd_skip {
	GREYLOGD_S_NONE = 0,
	GREYLOGD_S_MALFORMED,	/* not a whole IPv4/IPv6 + TCP header */
	GREYLOGD_S_NOTSMTP,	/* not TCP, not to port 25, or a fragment */
	GREYLOGD_S_NOTSYN,	/* not a connection start (SYN without ACK) */
	GREYLOGD_S_OUTBOUND,	/* outbound while -I */
	GREYLOGD_S_IFACE,	/* not on the -i interface */
	GREYLOGD_S_LOCAL,	/* loopback, unspecified, multicast address */
	GREYLOGD_S_TRAPPED,	/* the address is TRAPPED: left alone */
	GREYLOGD_S_MAX
};

/* Configuration; the handles belong to the caller. */
struct greylogd_conf {
	const char	*dbdir;		/* store directory */
	int		 group;		/* NFLOG group, 0..65535 */
	int64_t		 whiteexp;	/* seconds */
	int		 inbound_only;	/* -I */
	unsigned	 ifindex;	/* -i: 0 = any interface */
	struct fw	*fw;		/* NULL = no firewall updates */
	struct psync	*ps;		/* NULL = no sync */
	/* the store was opened before the privilege drop, so it cannot be
	 * opened again after a failure: exit instead (a supervisor restarts) */
	int		 reopen_fatal;
};

/* Counters, logged on SIGUSR1 and at exit. */
struct greylogd_counters {
	uint64_t	packets;	/* NFLOG packets read */
	uint64_t	skipped[GREYLOGD_S_MAX];
	uint64_t	inbound, outbound;	/* connection starts used */
	uint64_t	white;		/* WHITE entries written */
	uint64_t	db_errors;
	uint64_t	fw_errors;
	uint64_t	overruns;	/* ENOBUFS: the kernel dropped logs */
	uint64_t	sync_packets;
};

struct event_base;
struct greylogd;

/*
 * greylogd_parse - parse the network header and TCP header of a logged
 * packet (IPv4, or IPv6 with extension headers skipped). Fills pkt and
 * returns GREYLOGD_S_NONE for a SYN without ACK to port 25; else the
 * reason, with why naming what is wrong and at which byte offset.
 */
enum greylogd_skip greylogd_parse(const uint8_t *p, size_t len,
	    struct greylogd_pkt *pkt, char *why, size_t whysz);
/*
 * greylogd_direction - the direction of a logged packet: a log prefix
 * "in" or "out" (surrounding blanks ignored) decides; else a packet with
 * an output device and no input device (output hook) is outbound and
 * every other (input, prerouting, forward) inbound.
 */
enum greylogd_dir greylogd_direction(const char *prefix, uint32_t indev,
	    uint32_t outdev);
/* greylogd_addr_ok - 0 for addresses never whitelisted (loopback,
 * unspecified, multicast, link-local), 1 otherwise */
int	greylogd_addr_ok(const char *ip);
/* greylogd_skip_name - short name of a skip reason ("notsyn", ...) */
const char *greylogd_skip_name(enum greylogd_skip s);

/*
 * greylogd_open - as root: bind the NFLOG group (copy mode, the first
 * GREYLOGD_COPY_LEN bytes of each packet). No event yet; -1 with err
 * naming the group and the step that failed (another listener on the
 * group, no CAP_NET_ADMIN, no nfnetlink_log).
 */
int	greylogd_open(struct greylogd **out, const struct greylogd_conf *c,
	    char *err, size_t errsz);
/*
 * greylogd_open_db - open the store (c->dbdir, group commit flushed
 * after every batch), not across a fork. Normally greylogd_start does it
 * after the privilege drop; a caller whose user cannot open the store
 * (root's 0600 files) opens it before the drop. 0 or -1 with err.
 */
int	greylogd_open_db(struct greylogd *g, char *err, size_t errsz);
/*
 * greylogd_start - open the store unless open and start reading on
 * base. A store that asks for recovery is closed and opened again by the
 * next batch (or, with reopen_fatal, the process exits). 0 or -1 with err.
 */
int	greylogd_start(struct greylogd *g, struct event_base *base,
	    char *err, size_t errsz);
/* greylogd_set_sync - send WHITE entries to ps from now on (made after
 * greylogd_open, as it needs the event base) */
void	greylogd_set_sync(struct greylogd *g, struct psync *ps);
/* greylogd_flush - write the pending batch now (shutdown) */
void	greylogd_flush(struct greylogd *g);
/* greylogd_log_counters - one log_info line with every counter */
void	greylogd_log_counters(const struct greylogd *g);
/* greylogd_free - unbind and free; safe on NULL */
void	greylogd_free(struct greylogd *g);

#endif /* PFSYNC_GREYLOGD_H */
