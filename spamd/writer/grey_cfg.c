/*
 * grey_cfg.c - the blacklist config port (127.0.0.1:8026) in the writer.
 *
 * spamd-setup connects from loopback, sends one control message (one line,
 * blacklist.h format), half-closes and reads the answer: "ok TAG N\n" (N
 * prefixes) or "error TAG: reason\n". An accepted list goes to every
 * engine as MSG_BLACKLIST, so one load reaches all -W engine processes.
 * The writer checks it with bl_parse first: a bad list is refused here
 * and no engine ever sees it.
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

struct grey_cfg;

/* One config connection. */
struct grey_cfg_conn {
	struct grey_cfg			*cfg;
	struct bufferevent		*bev;
	struct event			*deadline; /* whole message in 30 s */
	char				 peer[INET6_ADDRSTRLEN];
	char				*buf;	/* the message so far */
	size_t				 len, cap;
	int				 answered;
	LIST_ENTRY(grey_cfg_conn)	 entry;
};

struct grey_cfg {
	struct event_base		*base;
	struct event			*accept_ev;
	struct event			*resume_ev;	/* after EMFILE */
	grey_cfg_fn			 fn;
	void				*arg;
	long				 loads, errors;
	int				 nconns;
	int				 timeout;	/* seconds */
	LIST_HEAD(, grey_cfg_conn)	 conns;
};

/* grey_cfg_conn_free - close one connection */
static void
grey_cfg_conn_free(struct grey_cfg_conn *c)
{
	LIST_REMOVE(c, entry);
	c->cfg->nconns--;
	if (c->deadline != NULL)
		event_free(c->deadline);
	bufferevent_free(c->bev);
	free(c->buf);
	free(c);
}

/* grey_cfg_peer_ok - 1 when sa is a loopback address (v4, v6, v4-mapped) */
static int
grey_cfg_peer_ok(const struct sockaddr_storage *ss, char *txt, size_t txtsz)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, txt, txtsz);
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)ss;
		const uint8_t *a = sin6->sin6_addr.s6_addr;

		inet_ntop(AF_INET6, &sin6->sin6_addr, txt, txtsz);
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

/* grey_cfg_answer - queue the answer; the connection closes once sent */
static void
grey_cfg_answer(struct grey_cfg_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
grey_cfg_answer(struct grey_cfg_conn *c, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	va_list ap;

	c->answered = 1;
	bufferevent_disable(c->bev, EV_READ);
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	bufferevent_enable(c->bev, EV_WRITE);
}

/* grey_cfg_handle - check one whole control message and answer it */
static void
grey_cfg_handle(struct grey_cfg_conn *c, const char *line, size_t len)
{
	struct grey_cfg *cfg = c->cfg;
	struct bl_list *l;
	char err[512], tag[BL_TAG_MAX];
	long n;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if ((l = bl_parse(line, len, err, sizeof(err))) == NULL) {
		cfg->errors++;
		grey_cfg_tag(line, len, tag, sizeof(tag));
		log_warnx("event=config_refused peer=%s tag=%s len=%zu "
		    "error=\"%s\"", c->peer, tag, len, err);
		grey_cfg_answer(c, "error %s: %s\n", tag, err);
		return;
	}
	strlcpy(tag, bl_list_tag(l), sizeof(tag));
	n = bl_list_size(l);
	bl_list_free(l);
	cfg->loads++;
	log_info("event=config_load peer=%s tag=%s prefixes=%ld len=%zu",
	    c->peer, tag, n, len);
	cfg->fn(line, len, cfg->arg);
	grey_cfg_answer(c, "ok %s %ld\n", tag, n);
}

/* grey_cfg_toolong - refuse a message over the frame limit */
static void
grey_cfg_toolong(struct grey_cfg_conn *c)
{
	c->cfg->errors++;
	log_warnx("event=config_refused peer=%s error=\"message longer than "
	    "%zu bytes\"", c->peer, GREY_CFG_MAX);
	grey_cfg_answer(c, "error -: message longer than %zu bytes\n",
	    GREY_CFG_MAX);
}

/*
 * grey_cfg_read - move the input into one contiguous buffer and look for
 * the end of the line in the new bytes only (a 20 MB list arrives in
 * thousands of reads; searching from the start each time is quadratic)
 */
static void
grey_cfg_read(struct bufferevent *bev, void *arg)
{
	struct grey_cfg_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);
	char *nl;

	if (c->answered || n == 0) {
		evbuffer_drain(in, n);
		return;
	}
	if (c->len + n > GREY_CFG_MAX + 1) {
		/* the limit plus its newline */
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
	nl = memchr(c->buf + c->len, '\n', n);
	c->len += n;
	if (nl != NULL) {
		if ((size_t)(nl - c->buf) > GREY_CFG_MAX)
			grey_cfg_toolong(c);
		else
			grey_cfg_handle(c, c->buf, (size_t)(nl - c->buf));
		return;
	}
	if (c->len > GREY_CFG_MAX)
		grey_cfg_toolong(c);
}

/* grey_cfg_write - the answer is out: close */
static void
grey_cfg_write(struct bufferevent *bev, void *arg)
{
	struct grey_cfg_conn *c = arg;

	if (c->answered &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		grey_cfg_conn_free(c);
}

/* grey_cfg_event - EOF (the message ends there), error or timeout */
static void
grey_cfg_event(struct bufferevent *bev, short what, void *arg)
{
	struct grey_cfg_conn *c = arg;
	size_t have = c->len;

	if ((what & BEV_EVENT_EOF) && !c->answered && have > 0) {
		/* spamd-setup half-closes after the line; the newline is
		 * optional */
		grey_cfg_handle(c, c->buf, have);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		c->cfg->errors++;
		log_warnx("event=config_timeout peer=%s bytes=%zu secs=%d",
		    c->peer, have, c->cfg->timeout);
	}
	if ((what & BEV_EVENT_EOF) && c->answered &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;	/* the peer half-closed; the answer is still going */
	grey_cfg_conn_free(c);
}

/* grey_cfg_deadline - the sender took too long for its message: a
 * byte now and then must not hold the connection (read timeouts would) */
static void
grey_cfg_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct grey_cfg_conn *c = arg;

	c->cfg->errors++;
	log_warnx("event=config_timeout peer=%s bytes=%zu secs=%d", c->peer,
	    evbuffer_get_length(bufferevent_get_input(c->bev)),
	    c->cfg->timeout);
	grey_cfg_conn_free(c);
}

/* grey_cfg_resume - accept again after running out of descriptors */
static void
grey_cfg_resume(evutil_socket_t fd, short ev, void *arg)
{
	struct grey_cfg *cfg = arg;

	event_add(cfg->accept_ev, NULL);
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
	int s;

	s = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK |
	    SOCK_CLOEXEC);
	if (s == -1) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* stop accepting for a second instead of spinning */
			struct timeval tv = { 1, 0 };

			log_warnx("event=config_accept error=\"%s\" pause=1",
			    strerror(errno));
			event_del(cfg->accept_ev);
			evtimer_add(cfg->resume_ev, &tv);
		}
		return;
	}
	if (!grey_cfg_peer_ok(&ss, peer, sizeof(peer))) {
		log_warnx("event=config_refused peer=%s error=\"not loopback\"",
		    peer);
		close(s);
		return;
	}
	if (cfg->nconns >= GREY_CFG_CONNS) {
		log_warnx("event=config_refused peer=%s error=\"%d connections "
		    "already open\"", peer, cfg->nconns);
		close(s);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(s);
		return;
	}
	c->cfg = cfg;
	strlcpy(c->peer, peer, sizeof(c->peer));
	c->bev = bufferevent_socket_new(cfg->base, s, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(s);
		free(c);
		return;
	}
	LIST_INSERT_HEAD(&cfg->conns, c, entry);
	cfg->nconns++;
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
    int timeout_secs, grey_cfg_fn fn, void *arg)
{
	struct grey_cfg *cfg;

	*out = NULL;
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return -1;
	cfg->base = base;
	cfg->timeout = timeout_secs > 0 ? timeout_secs : GREY_CFG_TIMEOUT;
	cfg->fn = fn;
	cfg->arg = arg;
	LIST_INIT(&cfg->conns);
	evutil_make_socket_nonblocking(fd);
	cfg->accept_ev = event_new(base, fd, EV_READ | EV_PERSIST,
	    grey_cfg_accept, cfg);
	cfg->resume_ev = evtimer_new(base, grey_cfg_resume, cfg);
	if (cfg->accept_ev == NULL || cfg->resume_ev == NULL ||
	    event_add(cfg->accept_ev, NULL) == -1) {
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
	if (cfg->accept_ev != NULL)
		event_free(cfg->accept_ev);
	if (cfg->resume_ev != NULL)
		event_free(cfg->resume_ev);
	free(cfg);
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
