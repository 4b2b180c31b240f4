/*
 * msg.h - length-prefixed messages between the engine and the writer.
 *
 * The engine (Internet-facing, unprivileged) and the writer (database and
 * firewall) talk over a socketpair. Every message is framed by its length,
 * so no byte a client sends can end a message early or forge another one
 * (OpenBSD spamd joins tuple fields with newlines; a HELO with a newline in
 * it is then two records). Wire form, all integers big-endian:
 *
 *   u32 total length (header included)  u32 type
 *   u64 id (session id, 0 if none)       i64 num (meaning by type)
 *   u32 nstr, then nstr times: u32 len, len bytes (no NUL inside)
 */
#ifndef SPAMD_MSG_H
#define SPAMD_MSG_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define MSG_HDR_LEN	28
#define MSG_MAX_STR	4		/* strings in one message */
/* one message, header included: a blacklist of 1,000,000 prefixes is
 * about 20 MB of text */
#define MSG_MAX_LEN	(64u << 20)

enum msg_type {
	/*
	 * engine -> writer: one RCPT. str: ip, helo, from, to (as the client
	 * sent them; the writer normalises). num: MSG_F_* flags.
	 */
	MSG_TUPLE = 1,
	/* writer -> engine: what the tuple of session id gave. num: enum
	 * gdb_result (spamd/common/verdict.h); str: ip. */
	MSG_RESULT,
	/*
	 * writer -> engine: the trapped addresses as one blacklist control
	 * message (blacklist.h format, tag "spamd-greytrap"), str[0]; sent at
	 * start and whenever the trapped set changes (coalesced).
	 */
	MSG_TRAPLIST,
	/* engine -> writer: counters for the writer's SIGUSR1 line. num
	 * unused; str[0]: key=value text. */
	MSG_STATS,
	/*
	 * writer -> engine: a blacklist control message (blacklist.h format)
	 * received on the config port and already checked with bl_parse by
	 * the writer, str[0]; every engine applies it. The config port lives
	 * in the writer so that one load reaches all -W engine processes.
	 */
	MSG_BLACKLIST,
	/*
	 * (added) writer -> engine: the DNSBL zone file's text (--dnsbl-file),
	 * str[0], read by the writer on SIGHUP (the engine is chrooted) and
	 * already checked with dnsbl_conf_read_text; the engine replaces its
	 * file zones with it (dnsbl_load_text), keeping the old on error.
	 */
	MSG_DNSBL_ZONES,
	MSG_TYPE_MAX
};

/* MSG_TUPLE flags */
#define MSG_F_LOWMX	0x1	/* the connection was aimed at the -M address */

/* One decoded message; msg_get allocates the strings, msg_clear frees. */
struct msg {
	uint32_t	type;
	uint64_t	id;
	int64_t		num;
	uint32_t	nstr;
	char		*str[MSG_MAX_STR];	/* NUL-terminated copies */
	size_t		len[MSG_MAX_STR];
};

/*
 * msg_put - append one framed message to out. str[i] of length len[i]
 * (len may be NULL: strlen is used). -1 if a string holds a NUL, there
 * are too many strings or the message is too long.
 */
int	msg_put(struct evbuffer *out, uint32_t type, uint64_t id, int64_t num,
	    uint32_t nstr, const char *const *str, const size_t *len);

/*
 * msg_get - take one whole message from the front of in. 1: m filled (free
 * with msg_clear); 0: not all there yet; -1: malformed (err says what and
 * at which byte; the stream cannot be trusted any more, close it).
 */
int	msg_get(struct evbuffer *in, struct msg *m, char *err, size_t errsz);

/* msg_clear - free the strings of m and zero it */
void	msg_clear(struct msg *m);

/* msg_type_name - a message type's name for logs */
const char *msg_type_name(uint32_t type);

#endif /* SPAMD_MSG_H */
