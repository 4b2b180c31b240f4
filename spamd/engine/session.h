/*
 * session.h - the SMTP dialogue of one spamd connection, without sockets.
 *
 * The engine (engine.c) owns the socket, the timer and the bytes read; it
 * hands them to session_input, which cuts them into bounded lines, runs
 * each through the command table and queues at most one reply at a time
 * (a reply is stuttered out before the next command is read, as OpenBSD
 * spamd does, so pipelined commands wait in the client's socket, not in
 * our memory). What the dialogue decides comes back as callbacks (record
 * a tuple, which blacklists hold the client) and flags (close after the
 * reply). A libFuzzer target and the cmocka tests drive this file alone.
 */
#ifndef SPAMD_SESSION_H
#define SPAMD_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "spamd/common/blacklist.h"

/*
 * A command line, CRLF included. RFC 5321 says 512, but real senders
 * send more (long addresses, ESMTP parameters; Postfix accepts 2,048) and
 * a greylister that refuses them loses mail. OpenBSD spamd reads 8,192:
 * so do we. The buffer exists only while a partial line waits (engine.c
 * frees it when empty), so the cost is 8 KB per such client.
 */
#define SESSION_LINE_MAX	8192
#define SESSION_BAD_MAX		20	/* bad commands before we hang up */
#define SESSION_IDLE_SECS	400	/* no input for this long: close */
#define SESSION_REPLY_MAX	16384	/* the blacklisted reply is cut here */
/* helo/from/to kept, NUL included: the store's field size (greydb.h
 * GDB_HELO_MAX, GDB_MAIL_MAX); a longer one is cut to its first 1,023
 * bytes, the same cut every time, so the retry matches, as OpenBSD */
#define SESSION_ARG_MAX		1024
#define SESSION_DATA_MAX	(1u << 20) /* tarpit: message bytes taken */
/*
 * (added) RCPTs a greylisted client may have recorded in one connection
 * (every transaction of it: RSET and a new MAIL do not start over); past
 * it each RCPT gets 452 4.5.3 and records nothing. --max-rcpt, 1..100000;
 * 0 in session_conf means this default.
 */
#define SESSION_RCPT_DEFAULT	100
#define SESSION_RCPT_LIMIT	100000	/* the most --max-rcpt allows */
#define SESSION_TRAP_MSG	"Your address %A has mailed to spamtraps here\\n"
/* the writer's list of trapped addresses (grey.h GREY_TRAPLIST_TAG) */
#define SESSION_TRAP_TAG	"spamd-greytrap"

/* Where the dialogue is. */
enum session_state {
	SESSION_GREET = 0,	/* banner queued; HELO/EHLO (or MAIL) next */
	SESSION_HELO,		/* after HELO/EHLO or RSET */
	SESSION_MAIL,		/* after MAIL FROM */
	SESSION_RCPT,		/* after at least one RCPT TO */
	SESSION_DATA,		/* tarpit: 354 sent, swallowing the message */
	SESSION_CLOSING,	/* the last reply is queued; close after it */
	SESSION_NSTATES
};

/* How the client is treated. */
enum session_class {
	SESSION_GREY = 0,	/* greylisted: tuples recorded, 451 at DATA */
	SESSION_BLACK,		/* on a blacklist: stuttered, list message */
	SESSION_TRAPPED,	/* mailed a spamtrap: like BLACK */
};

struct session;

/* What the session asks of its owner. */
struct session_ops {
	/* one RCPT after MAIL from a greylisted client (not with -b):
	 * record (helo, from, to); strings as sent,
	 * trimmed, at most SESSION_ARG_MAX - 1 bytes, no NUL/CR/LF inside */
	void	(*tuple)(void *arg, struct session *s, const char *helo,
		    const char *from, const char *to);
	/* the lists holding the client now, for the reply after DATA; may
	 * be NULL (then only the trap message, for a trapped client) */
	int	(*lookup)(void *arg, struct session *s, struct bl_match *m);
	/* (added) HELO/EHLO took a name, now in s->helo; may be NULL */
	void	(*helo)(void *arg, struct session *s);
	/* (added) an RCPT past max_rcpt got 452 and recorded nothing;
	 * first = 1 for the first of the connection; may be NULL */
	void	(*rcpt_refused)(void *arg, struct session *s, int first);
	/* (added) an RCPT from a tarpitted (blacklisted or trapped) client
	 * after a MAIL, paths as sent; nothing is recorded, this only lets
	 * -v log it as OpenBSD does; may be NULL */
	void	(*tarpit_rcpt)(void *arg, struct session *s, const char *from,
		    const char *to);
	/* (added) one line of a tarpitted client's message (no line ending,
	 * not the final "."), for -v; may be NULL */
	void	(*data_line)(void *arg, struct session *s, const char *line,
		    size_t len);
};

/* Shared by every session of an engine; outlives them. */
struct session_conf {
	const char	*hostname;	/* -h */
	const char	*banner;	/* -n */
	int		 bl_code;	/* -4 / -5: 450 or 550 */
	int		 blacklist_only;/* -b: record no tuples */
	/* (added) --max-rcpt: RCPTs a greylisted client gets 250 for in one
	 * connection, 0 = SESSION_RCPT_DEFAULT. It bounds what is recorded,
	 * so blacklisted and trapped clients (and every client with -b) are
	 * not capped: they record nothing, and every reply of the tarpit
	 * costs them time, not us storage */
	uint32_t	 max_rcpt;
	const struct session_ops *ops;
	void		*arg;		/* for ops */
	/* filled by session_conf_init */
	char		*helo_reply;	/* "250 host\r\n" */
	char		*quit_reply;	/* "221 host\r\n" */
	/* the banner's date, formatted once a second (session_start) */
	time_t		 date_at;
	char		 date[48];
	/* (added) STARTTLS: offered to greylisted clients when set (the
	 * engine has -C/-K); "250-host\r\n250 STARTTLS\r\n" for EHLO */
	int		 tls_offer;
	char		*ehlo_tls_reply;
};

#define SESSION_F_CLOSE	0x01	/* close once the output is written */
#define SESSION_F_LONG	0x02	/* DATA: inside a line longer than the cap */
#define SESSION_F_LOWMX	0x04	/* aimed at the -M address (engine's) */
#define SESSION_F_NOSTUTTER 0x08 /* -B reached: no stutter (engine's) */
#define SESSION_F_SMALLBUF 0x10	/* SO_RCVBUF already made small (engine's) */
#define SESSION_F_TLS	0x20	/* STARTTLS accepted: no second one */
#define SESSION_F_STARTTLS 0x40	/* 220 to STARTTLS queued: the owner starts
				 * the handshake once it is written, drops
				 * buffered input and clears this flag */
#define SESSION_F_RCPTCAP 0x80	/* (added) an RCPT got 452: past max_rcpt */

/*
 * One connection. Kept small on purpose (about 100 bytes plus what the
 * engine adds), since a tarpit holds tens of thousands of them.
 */
struct session {
	uint64_t	 id;
	const struct session_conf *conf;
	struct bl_addr	 addr;		/* the client */
	time_t		 start;		/* connect time (engine's clock) */
	uint8_t		 state;		/* enum session_state */
	uint8_t		 cls;		/* enum session_class */
	uint8_t		 nbad;		/* bad commands so far */
	uint8_t		 flags;		/* SESSION_F_* */
	uint32_t	 nrcpt;		/* RCPTs answered 250 (a greylisted
					 * client's: tuples recorded) */
	uint32_t	 datalen;	/* message bytes swallowed in DATA */
	char		*helo;		/* malloc'd, NULL until HELO */
	char		*from;		/* malloc'd, NULL until MAIL */
	/* pending output: out[outoff..outlen) */
	const char	*out;
	char		*out_owned;	/* malloc'd out, or NULL if static */
	uint32_t	 outlen;
	uint32_t	 outoff;
};

/* session_conf_init - build the shared replies; -1 on out of memory */
int	session_conf_init(struct session_conf *conf);
/* session_conf_free - free what session_conf_init built */
void	session_conf_free(struct session_conf *conf);

/*
 * session_start - begin a dialogue: zero s, set its fields and queue the
 * banner (its date from now, cached in conf for the second). -1 on out of
 * memory.
 */
int	session_start(struct session *s, struct session_conf *conf,
	    uint64_t id, const struct bl_addr *addr, enum session_class cls,
	    time_t now);
/* session_free - free what the session holds (not s itself) */
void	session_free(struct session *s);

/*
 * session_input - take bytes from the client. Consumes whole lines (LF or
 * CRLF) and runs them until a reply is queued or the session is closing;
 * returns the bytes consumed. The caller keeps the rest and calls again
 * once the output is written. A line that does not fit in
 * SESSION_LINE_MAX bytes gets 500 and the session closes; so when len
 * reaches SESSION_LINE_MAX, something is always consumed.
 */
size_t	session_input(struct session *s, const char *buf, size_t len);

/* session_output - the pending output (NULL, 0 when none) */
const char *session_output(const struct session *s, size_t *len);
/* session_output_done - n bytes of the output were written */
void	session_output_done(struct session *s, size_t n);
/* session_want_close - 1 when the session is over and its output written */
int	session_want_close(const struct session *s);

/* session_rcpt_full - (added) 1 when the next RCPT gets 452 (a
 * greylisted client past max_rcpt, not with -b): it records nothing, so
 * the owner need not wait for the writer before running it */
int	session_rcpt_full(const struct session *s);
/* session_trap - the writer says the client mailed a spamtrap: tarpit it */
void	session_trap(struct session *s);
/* session_idle - the idle limit passed: queue 421 and close */
void	session_idle(struct session *s);

/* session_ip - the client's address as text into buf (46 bytes) */
const char *session_ip(const struct session *s, char *buf, size_t bufsz);
/* session_state_name / session_class_name - names for logs */
const char *session_state_name(int state);
const char *session_class_name(int cls);
/*
 * session_cmd_is - 1 if the unread bytes buf (len) begin with the
 * four-letter command word (case-insensitive): for owners that must look
 * at the next command before session_input runs it (back-pressure, DNS)
 */
int	session_cmd_is(const char *buf, size_t len, const char *word);

#endif /* SPAMD_SESSION_H */
