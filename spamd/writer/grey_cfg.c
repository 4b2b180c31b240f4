/*
 * grey_cfg.c - the blacklist config port (127.0.0.1:8026) in the writer.
 *
 * A client connects from loopback and sends control messages, one a line
 * (blacklist.h format), then half-closes. OpenBSD's spamd reads the whole
 * connection and loads every line (its spamd-setup sends one list per
 * connection, other tools several): so do we. Each line is checked with
 * bl_parse, then goes to every engine as MSG_BLACKLIST, so one load
 * reaches all -W engine processes; a bad line is refused here and no
 * engine ever sees it; an empty line is skipped, as OpenBSD does.
 * Lines are handled in order, one at a time: the next is read only once
 * every live engine said it applied this one (MSG_LIST_ACK). Each line
 * gets one answer line, "ok TAG N\n" (N prefixes) or "error TAG:
 * reason\n" (an engine that refused it, closed or took longer than the
 * timeout gives "error TAG: engine N ..."); the connection closes after
 * the answer to the last line. OpenBSD's
 * spamd-setup sends and closes without reading: the answers are extra.
 *
 * Bounds: one line fits one MSG_BLACKLIST frame (GREY_CFG_MAX); a
 * connection carries at most GREY_CFG_LINES lines and GREY_CFG_TOTAL
 * bytes (OpenBSD has no bound: it grows its buffer until malloc fails).
 * Past a bound the client gets an error line and the connection closes:
 * the lines answered before it stay applied (each line is a list of its
 * own, as OpenBSD applies them), the rest is not read.
 *
 * Who may load: a loopback peer from a reserved source port (below 1024:
 * a root process), as OpenBSD spamd; --config-any-port lifts the port
 * rule. A list holding a /0 prefix (every address) is refused.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "spamd/common/blacklist.h"
#include "spamd/writer/grey.h"
#include "spamd/common/log.h"
#include "spamd/common/msg.h"

/* The longest control message that still fits one MSG_BLACKLIST frame. */
#define GREY_CFG_MAX	((size_t)MSG_MAX_LEN - MSG_HDR_LEN - 4)
#define GREY_CFG_TIMEOUT 30	/* default seconds a sender may take */
/* connections at once: each may buffer up to GREY_CFG_MAX bytes */
#define GREY_CFG_CONNS	16
#define GREY_CFG_RESVPORT 1024	/* source ports below are root's */
/* lines on one connection: the engines hold BL_MAX_LISTS lists, and
 * spamd-setup sends one list per connection */
#define GREY_CFG_LINES	BL_MAX_LISTS
/* bytes on one connection: a few whole-size lists (memory holds only
 * the line being handled) */
#define GREY_CFG_TOTAL	((size_t)4 * GREY_CFG_MAX)
/* tests only: a smaller GREY_CFG_TOTAL (65536 up to it), so a client that
 * pushes past the bound can be tested without sending 256 MB */
#define GREY_CFG_TOTAL_ENV	"SPAMD_CFG_TOTAL"
/* seconds a closed connection reads its sender's rest away (see
 * grey_cfg_done) */
#define GREY_CFG_LINGER	5

struct grey_cfg;

/* One config connection. */
struct grey_cfg_conn {
	struct grey_cfg			*cfg;
	struct bufferevent		*bev;
	struct event			*deadline; /* each line in 30 s */
	char				 peer[INET6_ADDRSTRLEN];
	char				*buf;	/* bytes not handled yet */
	size_t				 len, cap;
	size_t				 scanned;  /* buf[0..scanned) has no \n */
	size_t				 total;	   /* bytes received */
	int				 lines;	   /* lines handled */
	int				 eof;	   /* the peer half-closed */
	int				 closing;  /* last answer queued */
	int				 mute;	   /* the peer is gone: no answers */
	int				 refused;  /* unreserved port */
	int				 lingering; /* answers out, input read
						     * away until EOF */
	uint64_t			 load;	   /* 0: none in flight */
	uint64_t			 waiting;  /* engines to ack, bit idx-1 */
	char				 tag[BL_TAG_MAX];
	long				 n;	   /* prefixes */
	char				 err[256]; /* first engine's refusal */
	LIST_ENTRY(grey_cfg_conn)	 entry;
};

struct grey_cfg {
	struct event_base		*base;
	struct grey_listen		 lst;	/* cap, EMFILE pause */
	grey_cfg_fn			 fn;
	void				*arg;
	long				 loads, errors;
	int				 timeout;	/* seconds */
	int				 any_port;	/* --config-any-port */
	size_t				 total_max;	/* GREY_CFG_TOTAL */
	uint64_t			 next_load;
	LIST_HEAD(, grey_cfg_conn)	 conns;
};

/* grey_cfg_conn_free - close one connection */
static void
grey_cfg_conn_free(struct grey_cfg_conn *c)
{
	LIST_REMOVE(c, entry);
	grey_listen_done(&c->cfg->lst);
	if (c->deadline != NULL)
		event_free(c->deadline);
	bufferevent_free(c->bev);
	free(c->buf);
	free(c);
}

/* grey_cfg_peer_ok - 1 when sa is a loopback address (v4, v6, v4-mapped);
 * *port is its source port */
static int
grey_cfg_peer_ok(const struct sockaddr_storage *ss, char *txt, size_t txtsz,
    int *port)
{
	*port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, txt, txtsz);
		*port = ntohs(sin->sin_port);
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)ss;
		const uint8_t *a = sin6->sin6_addr.s6_addr;

		inet_ntop(AF_INET6, &sin6->sin6_addr, txt, txtsz);
		*port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && a[12] == 127;
	}
	strlcpy(txt, "unknown", txtsz);
	return 0;
}

/* grey_cfg_tag - the tag of a (maybe bad) message for the answer: the
 * text before the first ';', printable and cut, or "-" */
static void
grey_cfg_tag(const char *line, size_t len, char *tag, size_t tagsz)
{
	size_t i, n = 0;

	for (i = 0; i < len && line[i] != ';' && n + 1 < tagsz &&
	    n + 1 < BL_TAG_MAX; i++)
		tag[n++] = (line[i] > ' ' && line[i] < 0x7f) ? line[i] : '?';
	tag[n] = '\0';
	if (n == 0)
		strlcpy(tag, "-", tagsz);
}

/* grey_cfg_vreply - queue one answer line, unless the peer is gone */
static void
grey_cfg_vreply(struct grey_cfg_conn *c, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void
grey_cfg_vreply(struct grey_cfg_conn *c, const char *fmt, va_list ap)
{
	if (c->mute)
		return;
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	bufferevent_enable(c->bev, EV_WRITE);
}

/* grey_cfg_reply - queue one answer line */
static void
grey_cfg_reply(struct grey_cfg_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
grey_cfg_reply(struct grey_cfg_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	grey_cfg_vreply(c, fmt, ap);
	va_end(ap);
}

/* grey_cfg_close - read no more; the connection closes once the answers
 * queued are out */
static void
grey_cfg_close(struct grey_cfg_conn *c)
{
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	if (c->deadline != NULL)
		evtimer_del(c->deadline);
}

/* grey_cfg_answer - queue a last answer line and close after it */
static void
grey_cfg_answer(struct grey_cfg_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
grey_cfg_answer(struct grey_cfg_conn *c, const char *fmt, ...)
{
	va_list ap;

	grey_cfg_close(c);
	va_start(ap, fmt);
	grey_cfg_vreply(c, fmt, ap);
	va_end(ap);
}

static void grey_cfg_check_done(struct grey_cfg_conn *);
static int grey_cfg_next(struct grey_cfg_conn *);

/* grey_cfg_rearm - give the sender (or the engines) the whole timeout */
static void
grey_cfg_rearm(struct grey_cfg_conn *c)
{
	struct timeval tmo = { c->cfg->timeout, 0 };

	if (c->deadline != NULL)
		evtimer_add(c->deadline, &tmo);
}

/* grey_cfg_handle - check one whole control message and answer it, or
 * send it to the engines (the answer comes with their acks) */
static void
grey_cfg_handle(struct grey_cfg_conn *c, const char *line, size_t len)
{
	struct grey_cfg *cfg = c->cfg;
	struct bl_list *l;
	char err[512], tag[BL_TAG_MAX];
	long n;
	int fam, sent;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (c->refused) {
		cfg->errors++;
		grey_cfg_answer(c, "error -: unreserved source port: only a "
		    "root process (source port below %d) may load lists; "
		    "see --config-any-port\n", GREY_CFG_RESVPORT);
		return;
	}
	if (c->lines >= GREY_CFG_LINES) {
		cfg->errors++;
		grey_cfg_tag(line, len, tag, sizeof(tag));
		log_warnx("event=config_refused peer=%s tag=%s error=\"more "
		    "than %d lines on one connection\"", c->peer, tag,
		    GREY_CFG_LINES);
		grey_cfg_answer(c, "error %s: more than %d lists on one "
		    "connection: the %d before were handled, the rest is "
		    "ignored\n", tag, GREY_CFG_LINES, GREY_CFG_LINES);
		return;
	}
	c->lines++;
	if ((l = bl_parse(line, len, err, sizeof(err))) == NULL) {
		cfg->errors++;
		grey_cfg_tag(line, len, tag, sizeof(tag));
		log_warnx("event=config_refused peer=%s tag=%s len=%zu "
		    "line=%d error=\"%s\"", c->peer, tag, len, c->lines, err);
		grey_cfg_reply(c, "error %s: %s\n", tag, err);
		return;
	}
	strlcpy(tag, bl_list_tag(l), sizeof(tag));
	n = bl_list_size(l);
	/* why: a /0 is every address: a list that tarpits every client, or
	 * a whitelist that passes them all, is a mistake or an attack */
	if ((fam = bl_list_all(l)) != 0) {
		bl_list_free(l);
		cfg->errors++;
		log_warnx("event=config_refused peer=%s tag=%s error=\"prefix "
		    "%s covers every address\"", c->peer, tag,
		    fam == AF_INET ? "0.0.0.0/0" : "::/0");
		grey_cfg_reply(c, "error %s: prefix %s covers every address "
		    "(list %s not loaded)\n", tag,
		    fam == AF_INET ? "0.0.0.0/0" : "::/0", tag);
		return;
	}
	bl_list_free(l);
	log_info("event=config_load peer=%s tag=%s prefixes=%ld len=%zu "
	    "line=%d", c->peer, tag, n, len, c->lines);
	strlcpy(c->tag, tag, sizeof(c->tag));
	c->n = n;
	c->err[0] = '\0';
	c->load = ++cfg->next_load;
	if ((sent = cfg->fn(line, len, c->load, &c->waiting, cfg->arg)) < 0)
		snprintf(c->err, sizeof(c->err), "engine %d: not sent",
		    -sent);
	if (c->waiting != 0) {
		/* read no more until the engines answer; they get the whole
		 * timeout to apply it */
		bufferevent_disable(c->bev, EV_READ);
		grey_cfg_rearm(c);
		return;
	}
	grey_cfg_check_done(c);
}

/* grey_cfg_find - the connection waiting for load, or NULL */
static struct grey_cfg_conn *
grey_cfg_find(struct grey_cfg *cfg, uint64_t load)
{
	struct grey_cfg_conn *c;

	LIST_FOREACH(c, &cfg->conns, entry)
		if (c->load == load && c->waiting != 0)
			return c;
	return NULL;
}

/* grey_cfg_applied - engine idx applied load or refused it (grey.h) */
void
grey_cfg_applied(struct grey_cfg *cfg, uint64_t load, int idx,
    const char *err)
{
	struct grey_cfg_conn *c;

	/* the client may be gone, or answered at its deadline */
	if (cfg == NULL || idx < 1 || idx > 64 ||
	    (c = grey_cfg_find(cfg, load)) == NULL)
		return;
	c->waiting &= ~((uint64_t)1 << (idx - 1));
	if (err != NULL && c->err[0] == '\0')
		snprintf(c->err, sizeof(c->err), "engine %d refused the "
		    "list: %s", idx, err);
	if (c->waiting != 0)
		return;
	grey_cfg_check_done(c);
	(void)grey_cfg_next(c);
}

/* grey_cfg_engine_gone - engine idx closed: no ack will come (grey.h) */
void
grey_cfg_engine_gone(struct grey_cfg *cfg, int idx)
{
	struct grey_cfg_conn *c, *next;
	uint64_t bit;

	if (cfg == NULL || idx < 1 || idx > 64)
		return;
	bit = (uint64_t)1 << (idx - 1);
	for (c = LIST_FIRST(&cfg->conns); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		if (!(c->waiting & bit))
			continue;
		c->waiting &= ~bit;
		if (c->err[0] == '\0')
			snprintf(c->err, sizeof(c->err), "engine %d closed "
			    "before applying the list", idx);
		if (c->waiting != 0)
			continue;
		grey_cfg_check_done(c);
		(void)grey_cfg_next(c);	/* may free c, not next */
	}
}

/* grey_cfg_check_done - every engine answered: say ok or the first error
 * for the line in flight */
static void
grey_cfg_check_done(struct grey_cfg_conn *c)
{
	if (c->waiting != 0 || c->load == 0)
		return;
	c->load = 0;
	if (c->err[0] != '\0') {
		c->cfg->errors++;
		log_warnx("event=config_refused peer=%s tag=%s error=\"%s\"",
		    c->peer, c->tag, c->err);
		grey_cfg_reply(c, "error %s: %s\n", c->tag, c->err);
	} else {
		c->cfg->loads++;
		log_info("event=config_applied peer=%s tag=%s prefixes=%ld",
		    c->peer, c->tag, c->n);
		grey_cfg_reply(c, "ok %s %ld\n", c->tag, c->n);
	}
	grey_cfg_rearm(c);	/* the next line's turn */
}

/* grey_cfg_toolong - refuse a message over the frame limit */
static void
grey_cfg_toolong(struct grey_cfg_conn *c)
{
	c->cfg->errors++;
	log_warnx("event=config_refused peer=%s line=%d error=\"message "
	    "longer than %zu bytes\"", c->peer, c->lines + 1, GREY_CFG_MAX);
	grey_cfg_answer(c, "error -: message longer than %zu bytes\n",
	    GREY_CFG_MAX);
}

/* grey_cfg_done - free c once it is closing and its answers are out;
 * 1 when freed */
static int
grey_cfg_done(struct grey_cfg_conn *c)
{
	struct timeval linger = { GREY_CFG_LINGER, 0 };

	if (!c->closing || (!c->mute &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0))
		return 0;
	if (c->eof || c->mute || c->lingering) {
		grey_cfg_conn_free(c);
		return 1;
	}
	/*
	 * why linger: a client still sending (past a bound, say) would get
	 * a reset for the unread bytes if we closed now, and a reset loses
	 * the answers it has not read yet, the error among them. So: our
	 * side shut, its input read away until its EOF, for a few seconds
	 */
	c->lingering = 1;
	(void)shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	bufferevent_enable(c->bev, EV_READ);
	if (c->deadline != NULL)
		evtimer_add(c->deadline, &linger);
	return 0;
}

/*
 * grey_cfg_next - handle the whole lines buffered, one at a time, until
 * one waits for the engines; at the peer's EOF the rest is the last
 * line. Reading resumes when nothing waits. -1 when c was freed.
 */
static int
grey_cfg_next(struct grey_cfg_conn *c)
{
	char *nl;
	size_t start = 0, used;	/* buf[0..start) is handled */

	while (!c->closing && c->load == 0) {
		nl = c->len > c->scanned ? memchr(c->buf + c->scanned, '\n',
		    c->len - c->scanned) : NULL;
		if (nl == NULL) {
			c->scanned = c->len;
			if (c->len - start > GREY_CFG_MAX) {
				grey_cfg_toolong(c);
				break;
			}
			if (!c->eof)
				break;
			/* the newline of the last line is optional, as
			 * spamd-setup half-closes after it */
			used = c->len - start;
			if ((used > 0 && !(used == 1 && c->buf[start] ==
			    '\r')) || (c->refused && c->lines == 0))
				grey_cfg_handle(c, c->buf + start, used);
			start = c->len;
			if (c->load == 0)
				grey_cfg_close(c);
			break;
		}
		used = (size_t)(nl - (c->buf + start)) + 1;
		if (used - 1 > GREY_CFG_MAX) {
			grey_cfg_toolong(c);
			break;
		}
		/* an empty line is skipped unanswered, as OpenBSD does */
		if (used > 2 || (used == 2 && c->buf[start] != '\r'))
			grey_cfg_handle(c, c->buf + start, used - 1);
		start += used;
		c->scanned = start;
		if (!c->closing && c->load == 0)
			grey_cfg_rearm(c);	/* refused here: next line */
	}
	/* why once here, not after each line: a memmove of the rest per line
	 * is quadratic in a read holding many short (or empty) lines */
	if (start > 0) {
		memmove(c->buf, c->buf + start, c->len - start);
		c->len -= start;
		c->scanned = c->scanned > start ? c->scanned - start : 0;
	}
	if (grey_cfg_done(c))
		return -1;
	if (!c->closing && c->load == 0 && !c->eof)
		bufferevent_enable(c->bev, EV_READ);
	return 0;
}

/*
 * grey_cfg_read - move the input into one contiguous buffer; lines are
 * looked for in the new bytes only (a 20 MB list arrives in thousands of
 * reads; searching from the start each time is quadratic)
 */
static void
grey_cfg_read(struct bufferevent *bev, void *arg)
{
	struct grey_cfg_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);

	if (c->closing || n == 0) {
		evbuffer_drain(in, n);
		return;
	}
	c->total += n;
	if (c->refused) {
		/* read the message away (not kept), answer at its end */
		int end = evbuffer_search(in, "\n", 1, NULL).pos != -1;

		evbuffer_drain(in, n);
		if (end)
			grey_cfg_handle(c, "", 0);
		(void)grey_cfg_done(c);
		return;
	}
	if (c->total > c->cfg->total_max) {
		evbuffer_drain(in, n);
		c->cfg->errors++;
		log_warnx("event=config_refused peer=%s error=\"connection "
		    "longer than %zu bytes\" lines=%d", c->peer,
		    c->cfg->total_max, c->lines);
		grey_cfg_answer(c, "error -: more than %zu bytes on one "
		    "connection: the %d lines before were handled, the rest "
		    "is ignored\n", c->cfg->total_max, c->lines);
		return;
	}
	if (c->len + n > GREY_CFG_MAX + 1 && (c->len <= c->scanned ||
	    memchr(c->buf + c->scanned, '\n', c->len - c->scanned) == NULL) &&
	    evbuffer_search(in, "\n", 1, NULL).pos == -1) {
		/* no line end in sight and the limit plus its newline is
		 * passed: refuse without keeping it */
		evbuffer_drain(in, n);
		grey_cfg_toolong(c);
		return;
	}
	if (c->len + n > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		char *p;

		while (cap < c->len + n)
			cap *= 2;
		if ((p = realloc(c->buf, cap)) == NULL) {
			evbuffer_drain(in, n);
			c->cfg->errors++;
			grey_cfg_answer(c, "error -: out of memory\n");
			return;
		}
		c->buf = p;
		c->cap = cap;
	}
	evbuffer_remove(in, c->buf + c->len, n);
	c->len += n;
	(void)grey_cfg_next(c);
}

/* grey_cfg_write - the answers are out: close if it is time */
static void
grey_cfg_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	(void)grey_cfg_done(arg);
}

/* grey_cfg_event - EOF (the last line ends there), error or timeout */
static void
grey_cfg_event(struct bufferevent *bev, short what, void *arg)
{
	struct grey_cfg_conn *c = arg;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    !c->closing) {
		c->eof = 1;
		bufferevent_disable(bev, EV_READ);
		(void)grey_cfg_next(c);
		return;
	}
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    !c->lingering)
		return;	/* the peer half-closed; the answers are to come */
	if ((what & BEV_EVENT_WRITING) && c->eof && !c->closing) {
		/*
		 * why go on: a client that sends its lines and closes
		 * without reading (as OpenBSD's spamd-setup does) makes our
		 * first answer fail; its other lines must load all the same
		 */
		c->mute = 1;
		evbuffer_drain(bufferevent_get_output(bev),
		    evbuffer_get_length(bufferevent_get_output(bev)));
		bufferevent_disable(bev, EV_WRITE);
		(void)grey_cfg_next(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		c->cfg->errors++;
		log_warnx("event=config_timeout peer=%s bytes=%zu secs=%d",
		    c->peer, c->total, c->cfg->timeout);
	}
	grey_cfg_conn_free(c);
}

/* grey_cfg_deadline - the sender took too long for a line (a byte now
 * and then must not hold the connection: read timeouts would), or the
 * engines for its list */
static void
grey_cfg_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct grey_cfg_conn *c = arg;
	int i;

	if (c->lingering) {	/* answered; its sender did not stop */
		grey_cfg_conn_free(c);
		return;
	}
	if (c->waiting != 0) {
		/* name the first engine that did not answer */
		for (i = 0; i < 64 && !(c->waiting & ((uint64_t)1 << i)); i++)
			;
		snprintf(c->err, sizeof(c->err), "engine %d did not apply the "
		    "list within %d s", i + 1, c->cfg->timeout);
		c->waiting = 0;
		grey_cfg_check_done(c);
		(void)grey_cfg_next(c);
		return;
	}
	c->cfg->errors++;
	grey_listen_timedout(&c->cfg->lst, c->peer, c->total,
	    c->cfg->timeout);
	grey_cfg_conn_free(c);
}

/* grey_cfg_accept - a new connection: loopback only */
static void
grey_cfg_accept(evutil_socket_t fd, short ev, void *arg)
{
	struct grey_cfg *cfg = arg;
	struct grey_cfg_conn *c;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char peer[INET6_ADDRSTRLEN];
	struct timeval tmo = { cfg->timeout, 0 };
	int s, port;

	(void)ev;
	s = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK |
	    SOCK_CLOEXEC);
	if (s == -1) {
		/* EMFILE and friends: stop accepting for a second */
		grey_listen_accept_failed(&cfg->lst, errno);
		return;
	}
	if (!grey_cfg_peer_ok(&ss, peer, sizeof(peer), &port)) {
		grey_listen_refuse(&cfg->lst, peer, "not loopback");
		close(s);
		return;
	}
	if (!grey_listen_admit(&cfg->lst, peer)) {
		close(s);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		grey_listen_done(&cfg->lst);
		close(s);
		return;
	}
	c->cfg = cfg;
	strlcpy(c->peer, peer, sizeof(c->peer));
	/* why the answer waits for the message: closing on an unread list
	 * resets the connection and the sender never sees why */
	if (port >= GREY_CFG_RESVPORT && !cfg->any_port) {
		c->refused = 1;
		log_warnx("event=config_refused peer=%s port=%d "
		    "error=\"unreserved source port\"", peer, port);
	}
	c->bev = bufferevent_socket_new(cfg->base, s, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		grey_listen_done(&cfg->lst);
		close(s);
		free(c);
		return;
	}
	LIST_INSERT_HEAD(&cfg->conns, c, entry);
	if ((c->deadline = evtimer_new(cfg->base, grey_cfg_deadline, c)) !=
	    NULL)
		evtimer_add(c->deadline, &tmo);
	bufferevent_setcb(c->bev, grey_cfg_read, grey_cfg_write,
	    grey_cfg_event, c);
	bufferevent_set_timeouts(c->bev, &tmo, &tmo);
	bufferevent_enable(c->bev, EV_READ);
}

/* grey_cfg_start - accept connections on the listening socket fd */
int
grey_cfg_start(struct grey_cfg **out, struct event_base *base, int fd,
    int timeout_secs, int any_port, grey_cfg_fn fn, void *arg)
{
	struct grey_cfg *cfg;

	*out = NULL;
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return -1;
	cfg->base = base;
	cfg->timeout = timeout_secs > 0 ? timeout_secs : GREY_CFG_TIMEOUT;
	cfg->any_port = any_port;
	cfg->total_max = GREY_CFG_TOTAL;
	if (getenv(GREY_CFG_TOTAL_ENV) != NULL) {
		const char *errstr = NULL;
		long long t = strtonum(getenv(GREY_CFG_TOTAL_ENV), 65536,
		    (long long)GREY_CFG_TOTAL, &errstr);

		if (errstr == NULL)
			cfg->total_max = (size_t)t;
	}
	cfg->fn = fn;
	cfg->arg = arg;
	LIST_INIT(&cfg->conns);
	evutil_make_socket_nonblocking(fd);
	if (grey_listen_init(&cfg->lst, base, "config", GREY_CFG_CONNS) == -1 ||
	    (cfg->lst.accept_ev = event_new(base, fd, EV_READ | EV_PERSIST,
	    grey_cfg_accept, cfg)) == NULL ||
	    event_add(cfg->lst.accept_ev, NULL) == -1) {
		grey_cfg_free(cfg);
		return -1;
	}
	*out = cfg;
	return 0;
}

/* grey_cfg_free - stop accepting, drop open connections */
void
grey_cfg_free(struct grey_cfg *cfg)
{
	if (cfg == NULL)
		return;
	while (!LIST_EMPTY(&cfg->conns))
		grey_cfg_conn_free(LIST_FIRST(&cfg->conns));
	if (cfg->lst.accept_ev != NULL)
		event_free(cfg->lst.accept_ev);
	grey_listen_free(&cfg->lst);
	free(cfg);
}

/* grey_cfg_listen - the config port's listener counters (grey.h) */
const struct grey_listen *
grey_cfg_listen(const struct grey_cfg *cfg)
{
	return cfg != NULL ? &cfg->lst : NULL;
}

/* grey_cfg_counts - lists accepted and messages refused so far */
void
grey_cfg_counts(const struct grey_cfg *cfg, long *loads, long *errors)
{
	if (cfg == NULL)
		return;
	*loads = cfg->loads;
	*errors = cfg->errors;
}
