/*
 * sync.h - the spamd sync protocol with peer MX hosts (psync_*):
 * packet codec, key, replay window, store application, UDP sockets.
 *
 * Wire format (OpenBSD spamd sync v2, see shared DESIGN.md), all fields
 * in network order:
 *   header, 32 bytes: u8 version (2), u8 af (2 = AF_INET), u16 length of
 *   the whole packet, u32 counter, u8[20] HMAC-SHA1, u8[4] pad (zero).
 *   The HMAC is computed over the whole packet (header included) with the
 *   hmac field zeroed; its key is the 40 lowercase hex characters of the
 *   SHA-1 of the key file (the text, not the 20 bytes), as OpenBSD.
 *   Then TLVs: u16 type, u16 length (TLV header included):
 *     END      0x0000  length 4; anything after it is ignored
 *     GREY     0x0001  u32 timestamp, u32 ipv4, u16 from_len, u16 to_len,
 *                      u16 helo_len (18 bytes so far), then from\0 to\0
 *                      helo\0 (lengths count the NUL), zero padding up to
 *                      a multiple of 16
 *     WHITE    0x0002  u32 timestamp, u32 expire, u32 ipv4 (length 16)
 *     TRAPPED  0x0003  as WHITE
 *   greyd's deletions (sent only to peers that ask for them):
 *     DEL_WHITE   0x0004  as WHITE (expire 0): drop the WHITE entry
 *     DEL_TRAPPED 0x0005  as WHITE (expire 0): drop the TRAPPED entry
 *   Our IPv6 extension (numbers chosen outside OpenBSD's 0-3 and greyd's
 *   0-5; the high byte 0x01 marks "spamd-for-Linux extension"):
 *     GREY6        0x0101  u32 timestamp, u8[16] ipv6, u16 from_len,
 *                          u16 to_len, u16 helo_len (30 bytes so far),
 *                          strings and padding as GREY
 *     WHITE6       0x0102  u32 timestamp, u32 expire, u8[16] ipv6
 *                          (length 28)
 *     TRAPPED6     0x0103  as WHITE6
 *     DEL_WHITE6   0x0104  as WHITE6 (expire 0)
 *     DEL_TRAPPED6 0x0105  as WHITE6 (expire 0)
 *   The header's af stays 2 in every packet, also one that holds only
 *   IPv6 TLVs: the address family lives in the TLV type, and OpenBSD and
 *   greyd drop a packet whose af is not AF_INET.
 *
 * The encoder never mixes OpenBSD's types (1-3) with extension types in
 * one packet: a plain OpenBSD peer stops reading at the first unknown
 * type, so an extension TLV in its own packet costs it nothing else.
 * Packets are at most PSYNC_PKT_SEND (1408, OpenBSD's receive buffer),
 * but for one GREY entry whose long fields (up to 1,023 bytes each, as
 * OpenBSD stores them) do not fit alone: it goes whole in a packet of
 * its own, as OpenBSD's sync_update sends it.
 *
 * Receive checks, in order, before any pointer moves: header present,
 * version, af, length field == bytes received (OpenBSD tolerates extra
 * bytes; we do not: a datagram arrives whole), HMAC (CRYPTO_memcmp).
 * Then per TLV: at least 4 bytes left, TLV length >= 4 and <= what is
 * left, the type's own size rules, string lengths within the TLV and
 * each string ending in its NUL. A bad or unknown TLV ends the packet:
 * entries before it are kept (as OpenBSD, which applies as it reads) and
 * the rest is dropped and counted with the reason.
 */
#ifndef PFSYNC_SYNC_H
#define PFSYNC_SYNC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "greydb/greydb.h"

#define PSYNC_VERSION		2
#define PSYNC_AF		2	/* AF_INET on the wire, always */
#define PSYNC_PORT		8025
#define PSYNC_MCAST_GROUP	"224.0.1.240"
#define PSYNC_MCAST_TTL		1
#define PSYNC_HDR_LEN		32
#define PSYNC_HMAC_OFF		8
#define PSYNC_HMAC_LEN		20
#define PSYNC_KEY_LEN		40	/* hex SHA-1 of the key file */
#define PSYNC_PKT_SEND		1408	/* largest packet we send */
#define PSYNC_PKT_MAX		65535	/* largest packet we accept */
#define PSYNC_ALIGN		16	/* GREY TLVs padded to this */
#define PSYNC_KEY_DEFAULT	"/etc/mail/spamd.key"

/* TLV types on the wire. */
enum psync_tlv {
	PSYNC_T_END = 0x0000,
	PSYNC_T_GREY = 0x0001,
	PSYNC_T_WHITE = 0x0002,
	PSYNC_T_TRAPPED = 0x0003,
	PSYNC_T_DEL_WHITE = 0x0004,	/* greyd */
	PSYNC_T_DEL_TRAPPED = 0x0005,	/* greyd */
	PSYNC_T_GREY6 = 0x0101,		/* ours */
	PSYNC_T_WHITE6 = 0x0102,
	PSYNC_T_TRAPPED6 = 0x0103,
	PSYNC_T_DEL_WHITE6 = 0x0104,
	PSYNC_T_DEL_TRAPPED6 = 0x0105,
};

/* What an entry says, whatever its address family. */
enum psync_kind {
	PSYNC_GREY = 1,
	PSYNC_WHITE,
	PSYNC_TRAPPED,
	PSYNC_DEL_WHITE,
	PSYNC_DEL_TRAPPED,
};

/*
 * One entry, sent or received. af is AF_INET or AF_INET6 and addr holds
 * 4 or 16 bytes in network order. For GREY, helo/from/to point at NUL-
 * terminated strings: on receive into the packet buffer (valid while the
 * buffer is), on send at the caller's strings. expire is 0 for GREY and
 * the DEL kinds.
 */
struct psync_entry {
	enum psync_kind	 kind;
	int		 af;
	uint8_t		 addr[16];
	uint32_t	 timestamp;
	uint32_t	 expire;
	const char	*helo;
	const char	*from;
	const char	*to;
};

/* Why a packet (or the rest of one) was dropped; also counter indexes. */
enum psync_drop {
	PSYNC_D_NONE = 0,
	PSYNC_D_SHORT,		/* fewer than 32 bytes */
	PSYNC_D_LENGTH,		/* length field != bytes received */
	PSYNC_D_VERSION,	/* version != 2 */
	PSYNC_D_AF,		/* af != 2 */
	PSYNC_D_HMAC,		/* HMAC does not match our key */
	PSYNC_D_TLV,		/* TLV header short, length < 4 or overrunning */
	PSYNC_D_TLVSIZE,	/* TLV length wrong for its type */
	PSYNC_D_STRINGS,	/* GREY string lengths overrun the TLV */
	PSYNC_D_NUL,		/* GREY string without its NUL */
	PSYNC_D_UNKNOWN,	/* unknown TLV type */
	PSYNC_D_DISABLED,	/* DEL type while deletions are off */
	PSYNC_D_REPLAY,		/* counter already seen */
	PSYNC_D_STALE,		/* counter behind the window, not a restart */
	PSYNC_D_OWN,		/* one of our own packets */
	PSYNC_D_TOOMANY,	/* more entries than the caller's array */
	PSYNC_D_PEER,		/* source is not an accepted peer */
	PSYNC_D_MAX
};

/* An error: text naming the reason and the byte offset, plus both. */
struct psync_err {
	char		 msg[256];
	enum psync_drop	 reason;
	size_t		 offset;
};

/* psync_drop_name - short name of a drop reason ("hmac", "replay", ...) */
const char *psync_drop_name(enum psync_drop reason);
/* psync_kind_name - "GREY", "WHITE", "TRAPPED", "DEL_WHITE", "DEL_TRAPPED" */
const char *psync_kind_name(enum psync_kind kind);
/* psync_entry_ip - the entry's address as text (inet_ntop) */
const char *psync_entry_ip(const struct psync_entry *e, char *buf,
	    size_t bufsz);
/* psync_entry_set_ip - set af and addr from IPv4/IPv6 text; -1 if not one */
int	psync_entry_set_ip(struct psync_entry *e, const char *ip);

/* ---- codec (sync_codec.c) ---- */

/* psync_tlv_size - bytes e takes on the wire (0 if it cannot be sent) */
size_t	psync_tlv_size(const struct psync_entry *e);
/* psync_is_ext - 1 if e travels in an extension type (IPv6 or DEL) */
int	psync_is_ext(const struct psync_entry *e);
/*
 * psync_encode - build one packet from ents[0..n) into out (outsz bytes,
 * at most PSYNC_PKT_MAX), with counter and key (keylen bytes; "" and 0
 * for no authentication). Takes entries while they fit and while they
 * are all OpenBSD types or all extension types; returns how many it took
 * (>= 1) and the packet size in *pktlen, or -1 with err (an entry that
 * cannot be encoded: bad af, strings too long for one packet).
 */
int	psync_encode(const struct psync_entry *ents, size_t n,
	    uint32_t counter, const char *key, size_t keylen, uint8_t *out,
	    size_t outsz, size_t *pktlen, struct psync_err *err);
/*
 * psync_decode - check and parse a received packet. Returns -1 when the
 * whole packet is rejected (header, length, HMAC) with err set; else the
 * number of entries stored in ents (at most max), *counter set, and
 * err->reason PSYNC_D_NONE or the reason the rest of the packet after
 * those entries was dropped. Entries point into pkt. deletions = 0
 * makes DEL types a reason to stop (PSYNC_D_DISABLED).
 */
int	psync_decode(const uint8_t *pkt, size_t len, const char *key,
	    size_t keylen, int deletions, struct psync_entry *ents,
	    size_t max, uint32_t *counter, struct psync_err *err);
/* psync_hmac - HMAC-SHA1 of pkt[0..len) with the hmac field taken as
 * zero, into out[20]; 0 or -1 */
int	psync_hmac(const uint8_t *pkt, size_t len, const char *key,
	    size_t keylen, uint8_t out[PSYNC_HMAC_LEN]);

/* ---- key (sync_key.c) ---- */

/* psync_key_load - key = lowercase hex SHA-1 of path's contents into
 * out[41]; -1 with err naming path and errno text (missing file too) */
int	psync_key_load(const char *path, char out[PSYNC_KEY_LEN + 1],
	    struct psync_err *err);
/* psync_key_load_any - psync_key_load that also takes a file group or
 * others may access (--sync-key-any-mode: OpenBSD checks no mode) */
int	psync_key_load_any(const char *path, char out[PSYNC_KEY_LEN + 1],
	    struct psync_err *err);
/* psync_key_from_bytes - the same for bytes in memory */
void	psync_key_from_bytes(const void *data, size_t len,
	    char out[PSYNC_KEY_LEN + 1]);

/* ---- replay window (sync_replay.c) ---- */

/*
 * Per-peer replay protection. A peer is the source address only, never
 * the port: keyed by address and port, a captured packet resent from a
 * new source port met an empty window and got in (a GREY replayed past
 * the pass time whitelisted its tuple). Several senders on one address
 * (our spamd and greylogd, OpenBSD's spamd and spamlogd: independent
 * random counters) each get a window of their own, a "stream", told
 * apart by counter: up to PSYNC_REPLAY_STREAMS per address. The rule,
 * for a packet that already passed the HMAC check, with c its counter
 * and ts the oldest and newest TLV timestamps in it (none for an
 * END-only packet):
 * 1. age: if ts_min < now - max_age the packet is STALE (an old packet
 *    replayed). Off if max_age 0.
 * 2. an address we have no state for: accepted, its counter opens the
 *    first window (OpenBSD starts its counter at a random value), unless
 *    ts_min < the table's start time (psync_replay_since; we restarted:
 *    a packet stamped before we started was captured and resent, e.g. a
 *    TRAPPED that greyctl -d removed). A peer's clock running behind
 *    ours costs its packets of those seconds after our start.
 * 3. the packet belongs to the window whose highest counter is closest,
 *    with d = c - highest (mod 2^32, signed, serial-number arithmetic)
 *    and -65536 < d <= 65536: -64 < d <= 0: inside the window: accepted once (UDP
 *    reorders), a second time is a REPLAY; -65536 < d <= -64: just
 *    behind it: an old packet of that sender, STALE (unless ts_min is
 *    newer than all the address sent: rule 4); 0 < d <= 65536:
 *    the sender's next packet, accepted, the window slides.
 * 4. near no window: another sender on this address, or one that
 *    restarted with a new random counter: a new window is opened (the
 *    least recently heard one is reused when all are taken) when
 *    ts_min >= the newest timestamp ever accepted from the address (a
 *    replayed packet is not newer than what we already saw, and the
 *    packets of the last second are inside or just behind a window);
 *    else (or with no timestamp) STALE. A packet in flight while a
 *    sender on the same address sent a newer one is dropped with it.
 * The table holds at most max_peers addresses; the least recently heard
 * is forgotten first. Only packets from accepted sources (the -Y peers,
 * --sync-accept, the multicast interface's subnets) reach this table.
 * Limits: UDP sources can be forged; a peer forgotten (table full) is
 * as after our restart, covered by rules 1 and 2.
 */
#define PSYNC_REPLAY_STREAMS	4
struct psync_replay;

/* psync_replay_new - an empty table (max_peers 0 = 1024, max_age seconds,
 * 0 = no age check) */
struct psync_replay *psync_replay_new(size_t max_peers, int64_t max_age);
/* psync_replay_free - free the table; safe on NULL */
void	psync_replay_free(struct psync_replay *r);
/*
 * psync_replay_check - decide a packet from peer (a sockaddr_in/in6). have_ts = 0 when the packet held no timestamp.
 * Returns PSYNC_D_NONE (accepted, state updated), PSYNC_D_REPLAY or
 * PSYNC_D_STALE (state unchanged).
 */
enum psync_drop psync_replay_check(struct psync_replay *r,
	    const struct sockaddr *peer, uint32_t counter, int have_ts,
	    uint32_t ts_min, uint32_t ts_max, int64_t now);
/* psync_replay_since - an address we hold nothing of opens its first
 * window only with ts_min >= since (our start; 0 = off) */
void	psync_replay_since(struct psync_replay *r, int64_t since);
/* psync_replay_peers - peers (addresses) currently tracked */
size_t	psync_replay_peers(const struct psync_replay *r);

/* ---- store (sync_apply.c) ---- */

/* Outcome of psync_apply. */
enum psync_applied {
	PSYNC_A_APPLIED = 1,	/* the store changed (or GREY was counted) */
	PSYNC_A_EXPIRED,	/* WHITE/TRAPPED whose expiry is past */
	PSYNC_A_KEPT,		/* we already hold a longer expiry */
	PSYNC_A_TRAPPED,	/* WHITE for an ip that is TRAPPED here */
	PSYNC_A_ABSENT,		/* DEL of an entry we do not have */
	PSYNC_A_REFUSED,	/* (added) GREY that would be a new tuple
				 * while the store refuses new ones
				 * (gdb_set_no_new_grey: the disk is low) */
};

/*
 * psync_apply - apply one received entry to the store: GREY through the
 * greylisting rules as a local RCPT (gdb_tuple_seen; the caller must not
 * re-send it, and -M does not apply); WHITE with the peer's expiry
 * (gdb_white) unless past, unless the ip is TRAPPED here, unless our
 * WHITE lasts longer; TRAPPED likewise (gdb_trap); DEL_* delete the
 * record. *res (may be NULL) gets the outcome and *gres (may be NULL)
 * gdb_tuple_seen's result for GREY (so a caller can whitelist a pass in
 * the firewall). Returns 0, or -1 with err.
 */
int	psync_apply(struct gdb *db, const struct psync_entry *e, int64_t now,
	    const struct gdb_times *t, enum psync_applied *res,
	    enum gdb_result *gres, struct gdb_err *err);

/* ---- sockets (sync_net.c) ---- */

/* Counters, logged on SIGUSR1 and exported as metrics. */
struct psync_counters {
	uint64_t	sent;		/* packets sent (per target) */
	uint64_t	send_errors;	/* sendto failures */
	uint64_t	received;	/* datagrams read */
	uint64_t	accepted;	/* packets past HMAC and replay checks */
	uint64_t	entries;	/* entries handed to the callback */
	uint64_t	applied;	/* callback said applied */
	uint64_t	ignored;	/* callback said nothing to do */
	uint64_t	apply_errors;	/* callback failed */
	uint64_t	dropped[PSYNC_D_MAX];	/* by reason */
};

/* Callback result for one entry: 1 applied, 0 ignored, -1 error. */
typedef int (*psync_recv_fn)(const struct psync_entry *e,
	    const struct sockaddr *from, void *arg);

struct event_base;
struct psync;

/* Options for psync_new. */
struct psync_opts {
	const char	*key;		/* 40-char key; NULL or "" = none */
	uint16_t	 port;		/* 0 = 8025, for -y and default -Y */
	int		 deletions;	/* accept DEL types (off by default) */
	int64_t		 max_age;	/* replay age limit, s (0 = 3600) */
	int		 any_source;	/* 1: accept packets from any source
					 * (test helpers); 0: only -Y peers,
					 * psync_accept, multicast subnets */
	psync_recv_fn	 recv;		/* may be NULL (send only) */
	void		*arg;
};

/* psync_new - a sync endpoint on base (no socket yet) */
struct psync *psync_new(struct event_base *base, const struct psync_opts *o,
	    struct psync_err *err);
/* psync_free - close sockets, free; safe on NULL */
void	psync_free(struct psync *ps);
/*
 * psync_listen - -y: spec is an IPv4/IPv6 address (unicast, bound to it
 * on the port) or an interface name[:ttl] (bind the port on any address,
 * join 224.0.1.240 on that interface; ttl is used for multicast sends).
 */
int	psync_listen(struct psync *ps, const char *spec, struct psync_err *err);
/*
 * psync_add_target - -Y: spec is host[:port] ([v6]:port for IPv6
 * literals; a name resolves once, now) or interface[:ttl] (multicast to
 * 224.0.1.240 on that interface). deletions = 1 sends DEL types there.
 */
int	psync_add_target(struct psync *ps, const char *spec, int deletions,
	    struct psync_err *err);
/*
 * psync_accept - accept packets from spec too: an IPv4/IPv6 address or
 * address/prefix-length. Without it only the -Y unicast peers' addresses
 * (as resolved when added) and, with -y interface (multicast), the
 * subnets of that interface's IPv4 addresses are accepted.
 */
int	psync_accept(struct psync *ps, const char *spec, struct psync_err *err);
/* psync_send_grey - send a GREY (or GREY6) tuple to every target */
int	psync_send_grey(struct psync *ps, const char *ip, const char *helo,
	    const char *from, const char *to, int64_t now);
/* psync_send_white - send WHITE ip with expire to every target */
int	psync_send_white(struct psync *ps, const char *ip, int64_t now,
	    int64_t expire);
/* psync_send_trapped - send TRAPPED ip with expire to every target */
int	psync_send_trapped(struct psync *ps, const char *ip, int64_t now,
	    int64_t expire);
/* psync_send_del - send DEL_WHITE / DEL_TRAPPED (kind) to targets that
 * take deletions */
int	psync_send_del(struct psync *ps, enum psync_kind kind, const char *ip,
	    int64_t now);
/* psync_send_entries - send entries, packed into as few packets as the
 * rules allow, to every target; returns packets sent or -1 */
int	psync_send_entries(struct psync *ps, const struct psync_entry *ents,
	    size_t n);
/* psync_counters - the endpoint's counters */
const struct psync_counters *psync_counters(const struct psync *ps);
/* psync_log_counters - one log_info line with every counter */
void	psync_log_counters(const struct psync *ps);
/* psync_local_port - the port the listen socket is bound to (0 if none) */
uint16_t psync_local_port(const struct psync *ps);

#endif /* PFSYNC_SYNC_H */
