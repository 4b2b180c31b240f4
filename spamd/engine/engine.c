/*
 * engine.c - one engine process (engine.h): accept loop with its limits,
 * one event per connection, the writer link, counters.
 */
/* libbsd's RB_GENERATE_STATIC marks functions __unused, which glibc lacks. */
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/tree.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "spamd/engine/engine.h"
#include "spamd/common/log.h"
#include "spamd/common/msg.h"
#include "spamd/common/privsep.h"
#include "spamd/engine/tls.h"
#include "spamd/common/sandbox.h"
#include "spamd/common/verdict.h"

/* from <linux/netfilter_ipv4.h> / <linux/netfilter_ipv6/ip6_tables.h>,
 * whose other definitions clash with <netinet/in.h> */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST		80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST	80
#endif

/* Connections of one client address, for --max-per-client. */
struct client {
	RB_ENTRY(client) entry;
	struct bl_addr	 addr;
	int		 n;
};

RB_HEAD(conn_tree, conn);
RB_HEAD(client_tree, client);

struct engine {
	const struct engine_conf *conf;
	struct event_base *base;
	struct event	*lev[ENGINE_MAX_LISTEN];
	int		 accepting;	/* listener events are added */
	struct event	*accept_pause;	/* EMFILE: resume after 1 s */
	int		 paused;
	struct bufferevent *wbev;	/* the writer */
	struct bl_set	*bl;
	struct session_conf sconf;
	struct session_ops ops;
	struct conn_tree conns;
	struct client_tree clients;
	uint64_t	 seq;
	int		 nconn, nblack;
	const struct timeval *tv_stutter, *tv_idle;
	struct engine_stats st;
	int		 status;
	struct event	*sig[4];
	struct event	*stats_ev;	/* (added) periodic MSG_STATS */
	struct engine_dns *dns;		/* (added) DNS checks, NULL = none */
	TAILQ_HEAD(, conn) parked;	/* RCPTs waiting for the writer */
	struct event	*budget_ev;	/* (added) -c full daemon-wide:
					 * look again in a while */
};

/* conn_cmp - order connections by session id */
static int
conn_cmp(const struct conn *a, const struct conn *b)
{
	return a->s.id < b->s.id ? -1 : a->s.id > b->s.id;
}

/* client_cmp - order clients by address */
static int
client_cmp(const struct client *a, const struct client *b)
{
	if (a->addr.family != b->addr.family)
		return a->addr.family < b->addr.family ? -1 : 1;
	return memcmp(a->addr.a, b->addr.a, sizeof(a->addr.a));
}

RB_GENERATE_STATIC(conn_tree, conn, entry, conn_cmp)
RB_GENERATE_STATIC(client_tree, client, entry, client_cmp)

/* engine_now - the engine's cached clock */
time_t
engine_now(const struct engine *e)
{
	struct timeval tv;

	if (event_base_gettimeofday_cached(e->base, &tv) == -1)
		return time(NULL);
	return tv.tv_sec;
}

/* engine_stats_of - the counters */
struct engine_stats *
engine_stats_of(struct engine *e)
{
	return &e->st;
}

/* engine_base - the event base */
struct event_base *
engine_base(const struct engine *e)
{
	return e->base;
}

/* engine_stutter_tv - one stutter tick */
const struct timeval *
engine_stutter_tv(const struct engine *e)
{
	return e->tv_stutter;
}

/* engine_idle_tv - the idle limit */
const struct timeval *
engine_idle_tv(const struct engine *e)
{
	return e->tv_idle;
}

/* engine_conf_of - the configuration */
const struct engine_conf *
engine_conf_of(const struct engine *e)
{
	return e->conf;
}

/* engine_accepting - add or remove the listener events */
static void
engine_accepting(struct engine *e, int on)
{
	int i;

	if (on == e->accepting)
		return;
	for (i = 0; i < e->conf->nlisten; i++) {
		if (on)
			event_add(e->lev[i], NULL);
		else
			event_del(e->lev[i]);
	}
	e->accepting = on;
}

/* engine_accept_update - accept only below -c and outside an EMFILE pause */
static void
engine_accept_update(struct engine *e)
{
	static const struct timeval recheck = { 0,
	    ENGINE_BUDGET_RECHECK_MS * 1000 };
	int on = !e->paused && e->nconn < e->conf->maxcon;

	/*
	 * (added) -c is daemon-wide: when it is full, the close that frees
	 * room may happen in another engine and would not wake us, so a
	 * short timer looks again while we wait (one wakeup per period,
	 * only while full; a close of our own looks at once).
	 */
	if (on && e->conf->budget != NULL &&
	    engine_budget_full(e->conf->budget)) {
		on = 0;
		if (!e->paused && !evtimer_pending(e->budget_ev, NULL))
			evtimer_add(e->budget_ev, &recheck);
	}
	engine_accepting(e, on);
}

/* engine_budget_recheck - (added) the -c re-check timer */
static void
engine_budget_recheck(evutil_socket_t fd, short what, void *arg)
{
	engine_accept_update(arg);
}

/* engine_black_full - (added) -B tarpitted connections are open: a new
 * one is not stuttered (daemon-wide with the shared budget) */
static int
engine_black_full(const struct engine *e)
{
	if (e->conf->budget != NULL)
		return engine_budget_black_full(e->conf->budget);
	return e->nblack >= e->conf->maxblack;
}

/* engine_client_get - the per-client counter of addr, made if missing */
static struct client *
engine_client_get(struct engine *e, const struct bl_addr *addr)
{
	struct client key, *cl;

	memset(&key, 0, sizeof(key));
	key.addr = *addr;
	if ((cl = RB_FIND(client_tree, &e->clients, &key)) != NULL)
		return cl;
	if ((cl = calloc(1, sizeof(*cl))) == NULL)
		return NULL;
	cl->addr = *addr;
	RB_INSERT(client_tree, &e->clients, cl);
	return cl;
}

/* engine_client_put - one connection of addr ended */
static void
engine_client_put(struct engine *e, const struct bl_addr *addr)
{
	struct client key, *cl;

	if (e->conf->max_per_client <= 0)
		return;
	/* (added) the daemon-wide count when engines share a budget */
	if (e->conf->budget != NULL) {
		engine_budget_client_put(e->conf->budget,
		    e->conf->index, addr);
		return;
	}
	memset(&key, 0, sizeof(key));
	key.addr = *addr;
	if ((cl = RB_FIND(client_tree, &e->clients, &key)) == NULL)
		return;
	if (--cl->n <= 0) {
		RB_REMOVE(client_tree, &e->clients, cl);
		free(cl);
	}
}

/* engine_close - end a connection, log it and free it */
void
engine_close(struct conn *c, const char *why)
{
	struct engine *e = c->eng;
	char ip[64];

	event_del(&c->ev);
	if (c->parked)
		TAILQ_REMOVE(&e->parked, c, park);
	engine_dns_end(c);	/* (added) no DNS callback for a closed conn */
	tls_end(c);		/* (added) STARTTLS */
	close(c->fd);
	RB_REMOVE(conn_tree, &e->conns, c);
	if (log_openbsd())
		log_obsd(LOG_INFO, "%s: disconnected after %lld seconds.%s%s",
		    session_ip(&c->s, ip, sizeof(ip)),
		    (long long)(engine_now(e) - c->s.start),
		    c->obsd_lists != NULL ? " lists:" : "",
		    c->obsd_lists != NULL ? c->obsd_lists : "");
	else
		log_info("event=disconnect id=%llu ip=%s class=%s secs=%lld "
		    "tuples=%u reason=%s", (unsigned long long)c->s.id,
		    session_ip(&c->s, ip, sizeof(ip)),
		    session_class_name(c->s.cls),
		    (long long)(engine_now(e) - c->s.start), c->s.nrcpt, why);
	free(c->obsd_lists);
	engine_client_put(e, &c->s.addr);
	if (c->s.flags & SESSION_F_SMALLBUF) {
		e->nblack--;
		if (e->conf->budget != NULL)	/* (added) */
			engine_budget_black(e->conf->budget, e->conf->index,
			    -1);
	}
	e->nconn--;
	if (e->conf->budget != NULL)	/* (added) the -c budget */
		engine_budget_put(e->conf->budget, e->conf->index);
	e->st.closed++;
	/* (added) spammers' time held: only the part spent tarpitted */
	if (c->tarpit_start != 0 && engine_now(e) > c->tarpit_start)
		e->st.tarpit_secs += (uint64_t)(engine_now(e) -
		    c->tarpit_start);
	session_free(&c->s);
	free(c->ibuf);
	free(c);
	engine_accept_update(e);
}

/* engine_ibuf_room - room to read into c's input buffer: made at
 * ENGINE_IBUF_START bytes, doubled while a partial line fills it, up to
 * SESSION_LINE_MAX (where session_input always consumes); -1 on memory */
static int
engine_ibuf_room(struct conn *c)
{
	size_t cap;
	char *p;

	if (c->ibuf == NULL) {
		if ((c->ibuf = malloc(ENGINE_IBUF_START)) == NULL)
			return -1;
		c->icap = ENGINE_IBUF_START;
		c->ilen = 0;
		return 0;
	}
	if (c->ilen < c->icap || c->icap >= SESSION_LINE_MAX)
		return 0;
	cap = (size_t)c->icap * 2;
	if (cap > SESSION_LINE_MAX)
		cap = SESSION_LINE_MAX;
	if ((p = realloc(c->ibuf, cap)) == NULL)
		return -1;
	c->ibuf = p;
	c->icap = (uint16_t)cap;
	return 0;
}

/* engine_read - bytes from the client, or the idle limit */
static void
engine_read(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct engine *e = c->eng;
	ssize_t n;

	if (what & EV_TIMEOUT) {
		e->st.idle_closed++;
		session_idle(&c->s);
		/* one try at the 421; the client has had 400 s */
		(void)stutter_flush(c);
		engine_close(c, "idle");
		return;
	}
	if (engine_ibuf_room(c) == -1) {
		engine_close(c, "out-of-memory");
		return;
	}
	if (c->tls != NULL) {
		/* (added) STARTTLS: OpenSSL may need to write to read */
		n = tls_read(c, c->ibuf + c->ilen, c->icap - c->ilen);
		if (n == TLS_IO_WANT_WRITE) {
			event_del(&c->ev);
			event_assign(&c->ev, e->base, c->fd, EV_WRITE,
			    engine_read, c);
			event_add(&c->ev, e->tv_idle);
			return;
		}
		if (n == -1) {
			engine_close(c, "tls-error");
			return;
		}
		if (n == TLS_IO_WANT_READ) {
			n = -1;
			errno = EAGAIN;
		}
	} else
		n = recv(c->fd, c->ibuf + c->ilen, c->icap - c->ilen, 0);
	if (n == 0) {
		engine_close(c, "eof");
		return;
	}
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR) {
			if (c->ilen == 0) {
				free(c->ibuf);
				c->ibuf = NULL;
			}
			engine_run(c);
			return;
		}
		engine_close(c, "read-error");
		return;
	}
	c->ilen += (uint16_t)n;
	engine_run(c);
}

/* engine_tarpit_socket - a small receive window for a tarpitted client */
static void
engine_tarpit_socket(struct conn *c)
{
	struct engine *e = c->eng;
	int w = e->conf->rcvbuf;

	if (c->s.flags & SESSION_F_SMALLBUF)
		return;
	/* the kernel doubles and rounds it up to its minimum; that is fine */
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &w, sizeof(w)) == -1)
		log_debug("event=setsockopt id=%llu opt=SO_RCVBUF error=\"%s\"",
		    (unsigned long long)c->s.id, strerror(errno));
	c->s.flags |= SESSION_F_SMALLBUF;
	e->nblack++;
	if (e->conf->budget != NULL)	/* (added) -B daemon-wide */
		engine_budget_black(e->conf->budget, e->conf->index, 1);
}

/*
 * engine_park - 1 if c's next command is an RCPT and the writer's queue
 * is over ENGINE_WRITER_HIGH: c then waits, reading nothing, until
 * engine_writer_drained runs it again. Only RCPT waits: it is what adds
 * to the queue, and the other commands keep their replies prompt.
 */
static int
engine_park(struct conn *c)
{
	struct engine *e = c->eng;

	/* (added) an RCPT past --max-rcpt sends the writer nothing */
	if (c->s.cls != SESSION_GREY || session_rcpt_full(&c->s) ||
	    !session_cmd_is(c->ibuf, c->ilen, "RCPT") ||
	    evbuffer_get_length(bufferevent_get_output(e->wbev)) <=
	    ENGINE_WRITER_HIGH)
		return 0;
	event_del(&c->ev);
	TAILQ_INSERT_TAIL(&e->parked, c, park);
	c->parked = 1;
	e->st.tuples_waited++;
	return 1;
}

/* engine_writer_drained - the writer's queue is down to LOW: run every
 * parked connection again, oldest first, while it stays under HIGH */
static void
engine_writer_drained(struct bufferevent *bev, void *arg)
{
	struct engine *e = arg;
	struct conn *c;

	while ((c = TAILQ_FIRST(&e->parked)) != NULL &&
	    evbuffer_get_length(bufferevent_get_output(bev)) <=
	    ENGINE_WRITER_HIGH) {
		TAILQ_REMOVE(&e->parked, c, park);
		c->parked = 0;
		engine_run(c);	/* may park c again, or close it */
	}
}

/* engine_run - write, read or close c as its session wants */
void
engine_run(struct conn *c)
{
	struct engine *e = c->eng;
	size_t used;
	int r;

	for (;;) {
		if ((r = stutter_flush(c)) == -1) {
			engine_close(c, "write-error");
			return;
		}
		if (r == 1)
			return;		/* c's event waits for the next byte */
		/* (added) STARTTLS answered or a handshake under way */
		if ((c->s.flags & SESSION_F_STARTTLS) || c->tls != NULL) {
			if (tls_run(c) != 0)
				return;	/* waiting, or c is closed */
		}
		if (session_want_close(&c->s)) {
			engine_close(c, session_state_name(c->s.state));
			return;
		}
		if (c->ilen == 0)
			break;
		/* (added) a DNS check that may tarpit the client answers
		 * first; its callback runs us again */
		if (engine_dns_hold(c)) {
			event_del(&c->ev);
			return;
		}
		if (engine_park(c))
			return;
		used = session_input(&c->s, c->ibuf, c->ilen);
		if (used > 0) {
			memmove(c->ibuf, c->ibuf + used, c->ilen - used);
			c->ilen -= (uint16_t)used;
		}
		/* nothing held while stuttering or idle: no buffer either */
		if (c->ilen == 0) {
			free(c->ibuf);
			c->ibuf = NULL;
		}
		if (session_output(&c->s, &used) == NULL &&
		    !session_want_close(&c->s))
			break;		/* a partial line: read more */
	}
	event_del(&c->ev);
	event_assign(&c->ev, e->base, c->fd, EV_READ, engine_read, c);
	event_add(&c->ev, e->tv_idle);
	/* (added) decrypted bytes inside OpenSSL do not wake the socket */
	if (tls_pending(c))
		event_active(&c->ev, EV_READ, 0);
}

/* engine_lowmx - 1 if the connection was aimed at the -M address */
static int
engine_lowmx(struct engine *e, int fd, int family)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct bl_addr dst;
	int r;

	memset(&ss, 0, sizeof(ss));
	/* a redirect (nftables/iptables) keeps the real target here */
	if (family == AF_INET6)
		r = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &sl);
	else
		r = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &sl);
	if (r == -1) {
		/* no NAT entry: a direct or TPROXY connection */
		sl = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
			return 0;
	}
	if (bl_addr_from_sa((struct sockaddr *)&ss, &dst) == -1)
		return 0;
	return dst.family == e->conf->lowmx.family &&
	    memcmp(dst.a, e->conf->lowmx.a, sizeof(dst.a)) == 0;
}

/* engine_refuse - a quick best-effort reply to a client we will not serve */
static void
engine_refuse(int fd, const char *text)
{
	(void)send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

/*
 * engine_obsd_lists - the lists part of OpenBSD's connect and disconnect
 * lines: " tag" for each list, and once the next tag would reach 76
 * bytes " ..." in its place (OpenBSD's loglists() does the same in its
 * 80-byte buffer, so several " ..." can follow). out: 80 bytes.
 */
static void
engine_obsd_lists(const struct bl_match *m, char *out, size_t outsz)
{
	const size_t cut = outsz - 4;
	int i;

	out[0] = '\0';
	for (i = 0; i < m->n; i++) {
		if (strlen(out) + strlen(m->tag[i]) + 1 >= cut)
			strlcat(out, " ...", outsz);
		else {
			strlcat(out, " ", cut);
			strlcat(out, m->tag[i], cut);
		}
	}
}

/* engine_log_connect - the connect line(s) of a new connection */
static void
engine_log_connect(struct engine *e, struct conn *c, const char *ip,
    const struct bl_match *m, const char *lists)
{
	char ol[80];
	int conns = e->nconn, black = e->nblack;

	if (!log_openbsd()) {
		log_info("event=connect id=%llu ip=%s class=%s%s",
		    (unsigned long long)c->s.id, ip,
		    session_class_name(c->s.cls),
		    (c->s.flags & SESSION_F_LOWMX) ? " lowmx=1" : "");
		if (m->n > 0)
			log_info("event=blacklisted id=%llu ip=%s lists=%s",
			    (unsigned long long)c->s.id, ip, lists);
		return;
	}
	/* OpenBSD counts clients and tarpitted clients of the daemon */
	if (e->conf->budget != NULL)
		engine_budget_counts(e->conf->budget, &conns, &black);
	if (m->n > 0) {
		engine_obsd_lists(m, ol, sizeof(ol));
		c->obsd_lists = strdup(ol);	/* NULL: the line goes without */
	}
	log_obsd(LOG_INFO, "%s: connected (%d/%d)%s%s", ip, conns, black,
	    c->obsd_lists != NULL ? ", lists:" : "",
	    c->obsd_lists != NULL ? c->obsd_lists : "");
}

/* engine_new_conn - set up a session for an accepted socket; 1 if it
 * became a connection (counted in nconn until engine_close), 0 if the
 * socket was closed here */
static int
engine_new_conn(struct engine *e, int fd, const struct sockaddr *sa)
{
	struct bl_addr addr;
	struct bl_match m;
	struct conn *c;
	struct client *cl = NULL;
	enum session_class cls = SESSION_GREY;
	char ip[64], lists[512];
	int i, took = 0;

	if (bl_addr_from_sa(sa, &addr) == -1) {
		close(fd);
		return 0;
	}
	/*
	 * (added) with the shared budget the cap counts the client (IPv4
	 * /32, IPv6 --per-client-prefix6) across every engine; without it
	 * (one engine on its own) per engine, per address, as before.
	 */
	if (e->conf->max_per_client > 0 && e->conf->budget != NULL) {
		if (!engine_budget_client_take(e->conf->budget,
		    e->conf->index, &addr)) {
			e->st.per_client_refused++;
			inet_ntop(addr.family, addr.a, ip, sizeof(ip));
			log_info("event=refused ip=%s reason=max-per-client "
			    "limit=%d", ip, e->conf->max_per_client);
			engine_refuse(fd, "421 4.7.0 Too many connections\r\n");
			return 0;
		}
		took = 1;
	} else if (e->conf->max_per_client > 0) {
		if ((cl = engine_client_get(e, &addr)) == NULL) {
			close(fd);
			return 0;
		}
		if (cl->n >= e->conf->max_per_client) {
			e->st.per_client_refused++;
			inet_ntop(addr.family, addr.a, ip, sizeof(ip));
			log_info("event=refused ip=%s reason=max-per-client "
			    "limit=%d", ip, e->conf->max_per_client);
			engine_refuse(fd, "421 4.7.0 Too many connections\r\n");
			return 0;
		}
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		if (took)
			engine_budget_client_put(e->conf->budget,
			    e->conf->index, &addr);
		close(fd);
		return 0;
	}
	bl_lookup(e->bl, &addr, &m);
	lists[0] = '\0';
	for (i = 0; i < m.n; i++) {
		if (strcmp(m.tag[i], SESSION_TRAP_TAG) == 0)
			cls = SESSION_TRAPPED;
		else if (cls == SESSION_GREY)
			cls = SESSION_BLACK;
		if (i > 0)
			strlcat(lists, ",", sizeof(lists));
		strlcat(lists, m.tag[i], sizeof(lists));
	}
	c->eng = e;
	c->fd = fd;
	/* every later re-arm does event_del first; give it a base */
	event_assign(&c->ev, e->base, fd, EV_READ, engine_read, c);
	if (session_start(&c->s, &e->sconf, ++e->seq * (uint64_t)
	    e->conf->nworkers + (uint64_t)e->conf->index, &addr, cls,
	    engine_now(e)) == -1) {
		if (took)
			engine_budget_client_put(e->conf->budget,
			    e->conf->index, &addr);
		free(c);
		close(fd);
		return 0;
	}
	if (cl != NULL)
		cl->n++;
	RB_INSERT(conn_tree, &e->conns, c);
	e->nconn++;
	e->st.accepted++;
	if (e->conf->lowmx_set && engine_lowmx(e, fd, addr.family))
		c->s.flags |= SESSION_F_LOWMX;
	session_ip(&c->s, ip, sizeof(ip));
	switch (cls) {
	case SESSION_GREY:
		e->st.grey++;
		break;
	case SESSION_BLACK:
		e->st.black++;
		break;
	case SESSION_TRAPPED:
		e->st.trapped++;
		break;
	}
	if (cls != SESSION_GREY) {
		c->tarpit_start = engine_now(e);	/* (added) metrics */
		/* -B: past maxblack, blacklisted clients are not stuttered */
		if (engine_black_full(e))
			c->s.flags |= SESSION_F_NOSTUTTER;
		engine_tarpit_socket(c);
	}
	engine_log_connect(e, c, ip, &m, lists);
	engine_dns_start(e->dns, c);	/* (added) DNSBL, reverse DNS */
	engine_accept_update(e);
	engine_run(c);
	return 1;
}

/* engine_resume - the EMFILE pause is over */
static void
engine_resume(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;

	e->paused = 0;
	engine_accept_update(e);
}

/* engine_accept - take new connections from one listener */
static void
engine_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct engine *e = arg;
	struct sockaddr_storage ss;
	struct engine_budget *b = e->conf->budget;
	socklen_t sl;
	int fd, i;

	for (i = 0; i < ENGINE_ACCEPT_BURST && e->accepting; i++) {
		/*
		 * (added) take the connection's place in -c before accept,
		 * so the daemon-wide count never passes -c even when engines
		 * accept at once; full: stop, the client waits in the backlog
		 */
		if (b != NULL && !engine_budget_take(b, e->conf->index)) {
			engine_accept_update(e);
			return;
		}
		sl = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1 && b != NULL)
			engine_budget_put(b, e->conf->index);
		if (fd == -1) {
			switch (errno) {
			case EAGAIN:
			case ECONNABORTED:
			case EINTR:
			case EPROTO:
				return;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM: {
				/* out of descriptors: back off, never spin */
				struct timeval one = { 1, 0 };

				e->st.accept_errors++;
				log_warn("event=accept-pause secs=1 conns=%d",
				    e->nconn);
				e->paused = 1;
				engine_accept_update(e);
				evtimer_add(e->accept_pause, &one);
				return;
			}
			default:
				e->st.accept_errors++;
				log_warn("event=accept-error");
				return;
			}
		}
		/* a connection gives its place back in engine_close */
		if (!engine_new_conn(e, fd, (struct sockaddr *)&ss) &&
		    b != NULL)
			engine_budget_put(b, e->conf->index);
	}
}

/* engine_tuple - session op: send one RCPT's tuple to the writer */
static void
engine_tuple(void *arg, struct session *s, const char *helo,
    const char *from, const char *to)
{
	struct engine *e = arg;
	struct evbuffer *out = bufferevent_get_output(e->wbev);
	char ip[64], eh[512], ef[512], et[512];
	const char *str[4];

	session_ip(s, ip, sizeof(ip));
	if (log_verbose() && log_openbsd())
		log_obsd(LOG_INFO, "(GREY) %s: %s -> %s", ip,
		    log_obsd_escape(from, strlen(from), 100, ef, sizeof(ef)),
		    log_obsd_escape(to, strlen(to), 100, et, sizeof(et)));
	else if (log_verbose())
		log_info("event=tuple id=%llu ip=%s helo=%s from=%s to=%s",
		    (unsigned long long)s->id, ip,
		    log_escape(helo, strlen(helo), 100, eh, sizeof(eh)),
		    log_escape(from, strlen(from), 100, ef, sizeof(ef)),
		    log_escape(to, strlen(to), 100, et, sizeof(et)));
	/* a stuck writer must not eat the engine's memory */
	if (evbuffer_get_length(out) > ENGINE_WRITER_MAX) {
		e->st.tuples_dropped++;
		return;
	}
	str[0] = ip;
	str[1] = helo;
	str[2] = from;
	str[3] = to;
	if (msg_put(out, MSG_TUPLE, s->id, (s->flags & SESSION_F_LOWMX) ?
	    MSG_F_LOWMX : 0, 4, str, NULL) == -1) {
		e->st.tuples_dropped++;
		return;
	}
	e->st.tuples++;
}

/* engine_tarpit_rcpt - session op (added, set with -v only): log a
 * tarpitted client's RCPT, as OpenBSD's "(BLACK) ip: from -> to" */
static void
engine_tarpit_rcpt(void *arg, struct session *s, const char *from,
    const char *to)
{
	char ip[64], ef[512], et[512];

	(void)arg;
	session_ip(s, ip, sizeof(ip));
	if (log_openbsd())
		log_obsd(LOG_INFO, "(BLACK) %s: %s -> %s", ip,
		    log_obsd_escape(from, strlen(from), 100, ef, sizeof(ef)),
		    log_obsd_escape(to, strlen(to), 100, et, sizeof(et)));
	else
		log_info("event=tarpit_rcpt id=%llu ip=%s class=%s from=%s "
		    "to=%s", (unsigned long long)s->id, ip,
		    session_class_name(s->cls),
		    log_escape(from, strlen(from), 100, ef, sizeof(ef)),
		    log_escape(to, strlen(to), 100, et, sizeof(et)));
}

/* engine_header_is - does a message line start with this header name? */
static int
engine_header_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len >= n && strncasecmp(line, name, n) == 0;
}

/*
 * engine_data_line - session op (added, set with -v only): log a tarpitted
 * client's From:, To: and Subject: headers and its first body lines,
 * as OpenBSD spamd -v does ("ip: Subject: ...", "ip: Body: ...")
 */
static void
engine_data_line(void *arg, struct session *s, const char *line, size_t len)
{
	struct conn *c = (struct conn *)s;
	char ip[64], el[1100];

	(void)arg;
	if (!c->data_body && len == 0) {
		c->data_body = 1;
		return;
	}
	if (c->data_body) {
		/* OpenBSD hangs up at the 10th body line; we read on, and
		 * log what it would have */
		if (c->data_lines < 10)
			c->data_lines++;
		if (len == 0 || c->data_lines >= 10)
			return;
	} else if (!engine_header_is(line, len, "FROM:") &&
	    !engine_header_is(line, len, "TO:") &&
	    !engine_header_is(line, len, "SUBJECT:"))
		return;
	session_ip(s, ip, sizeof(ip));
	if (log_openbsd()) {
		log_obsd_text(line, len, 256, el, sizeof(el));
		if (c->data_body)
			log_obsd(LOG_DEBUG, "%s: Body: %s", ip, el);
		else
			log_obsd(LOG_INFO, "%s: %s", ip, el);
	} else if (!c->data_body)
		log_info("event=header id=%llu ip=%s line=%s",
		    (unsigned long long)s->id, ip,
		    log_escape(line, len, 256, el, sizeof(el)));
}

/* engine_lookup - session op: the lists holding the client now */
static int
engine_lookup(void *arg, struct session *s, struct bl_match *m)
{
	struct engine *e = arg;

	bl_lookup(e->bl, &s->addr, m);
	/* (added) DNS listings; the session is the first member of its conn */
	engine_dns_lookup((const struct conn *)s, m);
	return m->n;
}

/* engine_helo - session op (added): the client sent HELO/EHLO */
static void
engine_helo(void *arg, struct session *s)
{
	struct engine *e = arg;

	engine_dns_helo(e->dns, (struct conn *)s);
}

/* engine_rcpt_refused - session op (added): an RCPT past --max-rcpt got
 * 452; counted, and logged once a connection */
static void
engine_rcpt_refused(void *arg, struct session *s, int first)
{
	struct engine *e = arg;
	char ip[64];

	e->st.rcpt_refused++;
	if (first)
		log_info("event=rcpt_cap id=%llu ip=%s max=%u",
		    (unsigned long long)s->id, session_ip(s, ip, sizeof(ip)),
		    s->conf->max_rcpt > 0 ? s->conf->max_rcpt :
		    SESSION_RCPT_DEFAULT);
}

/* engine_tarpit - switch a greylisted session to the tarpit as cls */
void
engine_tarpit(struct conn *c, enum session_class cls)
{
	struct engine *e = c->eng;

	if (c->s.cls != SESSION_GREY)
		return;
	if (cls == SESSION_TRAPPED)
		session_trap(&c->s);
	else
		c->s.cls = (uint8_t)cls;
	c->tarpit_start = engine_now(e);	/* (added) metrics */
	/* -B: past maxblack, blacklisted clients are not stuttered */
	if (engine_black_full(e))
		c->s.flags |= SESSION_F_NOSTUTTER;
	engine_tarpit_socket(c);
}

/* engine_apply_list - a control message from the writer into the set;
 * the number of prefixes applied, or -1 with err set */
static long
engine_apply_list(struct engine *e, const struct msg *m, char *err,
    size_t errsz)
{
	struct bl_list *l;
	char tag[BL_TAG_MAX];
	long n;

	if (m->nstr < 1) {
		snprintf(err, errsz, "%s without text",
		    msg_type_name(m->type));
		log_warnx("event=list-error error=\"%s\"", err);
		e->st.list_errors++;
		return -1;
	}
	if ((l = bl_parse(m->str[0], m->len[0], err, errsz)) == NULL) {
		log_warnx("event=list-error msg=%s error=\"%s\"",
		    msg_type_name(m->type), err);
		e->st.list_errors++;
		return -1;
	}
	strlcpy(tag, bl_list_tag(l), sizeof(tag));
	n = bl_list_size(l);
	if (bl_set_apply(e->bl, l, err, errsz) == -1) {
		log_warnx("event=list-error tag=%s error=\"%s\"", tag, err);
		e->st.list_errors++;
		return -1;
	}
	e->st.lists_loaded++;
	log_info("event=list-loaded engine=%d tag=%s prefixes=%ld",
	    e->conf->index, tag, n);
	strlcpy(err, tag, errsz);
	return n;
}

/* engine_list_ack - tell the writer a config port load was applied (n >=
 * 0, text the tag) or refused (n -1, text why): its client waits for it */
static void
engine_list_ack(struct engine *e, struct bufferevent *bev, uint64_t load,
    long n, const char *text)
{
	const char *str[1] = { text };

	if (msg_put(bufferevent_get_output(bev), MSG_LIST_ACK, load, n, 1,
	    str, NULL) == -1)
		log_warnx("event=send_failed engine=%d type=list_ack",
		    e->conf->index);
}

/* engine_result - the writer's verdict on one tuple */
static void
engine_result(struct engine *e, const struct msg *m)
{
	struct conn key, *c;
	char ip[64];

	e->st.results++;
	if (m->num != GDB_R_TRAP && m->num != GDB_R_TRAPPED &&
	    m->num != GDB_R_WHITE && m->num != GDB_R_PASSED)
		return;
	key.s.id = m->id;
	/* the session may be gone by now */
	if ((c = RB_FIND(conn_tree, &e->conns, &key)) == NULL)
		return;
	if (m->num == GDB_R_WHITE || m->num == GDB_R_PASSED) {
		/* (added) --dns-skip-white */
		engine_dns_white(e->dns, c);
		return;
	}
	if (c->s.cls != SESSION_GREY)
		return;
	engine_tarpit(c, SESSION_TRAPPED);
	e->st.trapped_live++;
	log_info("event=trap id=%llu ip=%s", (unsigned long long)c->s.id,
	    session_ip(&c->s, ip, sizeof(ip)));
}

/* engine_writer_read - messages from the writer */
static void
engine_writer_read(struct bufferevent *bev, void *arg)
{
	struct engine *e = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct msg m;
	char err[256];
	int r;

	while ((r = msg_get(in, &m, err, sizeof(err))) == 1) {
		switch (m.type) {
		case MSG_RESULT:
			engine_result(e, &m);
			break;
		case MSG_TRAPLIST:
			(void)engine_apply_list(e, &m, err, sizeof(err));
			break;
		case MSG_BLACKLIST: {
			long n = engine_apply_list(e, &m, err, sizeof(err));

			/* id 0: a load nobody waits for */
			if (m.id != 0)
				engine_list_ack(e, bev, m.id, n, err);
			break;
		}
		case MSG_DNSBL_ZONES:	/* (added) SIGHUP: the zone file */
			if (m.nstr >= 1)
				engine_dns_reload(e->dns, m.str[0], m.len[0]);
			break;
		default:
			log_warnx("event=writer-msg type=%s error=\"unexpected\"",
			    msg_type_name(m.type));
			break;
		}
		msg_clear(&m);
	}
	if (r == -1) {
		log_warnx("event=writer-error error=\"%s\"", err);
		e->status = 1;
		event_base_loopexit(e->base, NULL);
	}
}

/* engine_writer_event - the writer closed its end or failed */
static void
engine_writer_event(struct bufferevent *bev, short what, void *arg)
{
	struct engine *e = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_warnx("event=writer-gone engine=%d", e->conf->index);
		e->status = 1;
		event_base_loopexit(e->base, NULL);
	}
}

/* engine_stats_line - send the counters to the writer as one line;
 * logit: log it too (SIGUSR1; the periodic send for metrics does not) */
static void
engine_stats_line(struct engine *e, int logit)
{
	char line[4096];
	int lists = 0;
	long prefixes = 0;

	bl_count(e->bl, &lists, &prefixes);
	snprintf(line, sizeof(line), "engine=%d conns=%d black_conns=%d "
	    "accepted=%llu closed=%llu grey=%llu black=%llu trapped=%llu "
	    "trapped_live=%llu tuples=%llu tuples_dropped=%llu "
	    "tuples_waited=%llu rcpt_refused=%llu results=%llu "
	    "per_client_refused=%llu accept_errors=%llu idle_closed=%llu "
	    "bytes_out=%llu lists=%d prefixes=%ld lists_loaded=%llu "
	    "list_errors=%llu tarpit_secs=%llu", e->conf->index, e->nconn,
	    e->nblack,
	    (unsigned long long)e->st.accepted,
	    (unsigned long long)e->st.closed, (unsigned long long)e->st.grey,
	    (unsigned long long)e->st.black,
	    (unsigned long long)e->st.trapped,
	    (unsigned long long)e->st.trapped_live,
	    (unsigned long long)e->st.tuples,
	    (unsigned long long)e->st.tuples_dropped,
	    (unsigned long long)e->st.tuples_waited,
	    (unsigned long long)e->st.rcpt_refused,
	    (unsigned long long)e->st.results,
	    (unsigned long long)e->st.per_client_refused,
	    (unsigned long long)e->st.accept_errors,
	    (unsigned long long)e->st.idle_closed,
	    (unsigned long long)e->st.bytes_out, lists, prefixes,
	    (unsigned long long)e->st.lists_loaded,
	    (unsigned long long)e->st.list_errors,
	    (unsigned long long)e->st.tarpit_secs);
	if (e->conf->budget != NULL) {
		/* (added) the daemon-wide figures against -c and -B */
		int all, allblack;
		size_t len = strlen(line);

		engine_budget_counts(e->conf->budget, &all, &allblack);
		snprintf(line + len, sizeof(line) - len, " daemon_conns=%d "
		    "daemon_black_conns=%d", all, allblack);
	}
	engine_dns_stats_text(e->dns, line, sizeof(line));	/* (added) */
	if (logit)
		log_info("event=stats %s", line);
	{
		const char *str[1] = { line };

		(void)msg_put(bufferevent_get_output(e->wbev), MSG_STATS, 0, 0,
		    1, str, NULL);
	}
}

/* engine_signal - SIGTERM/SIGINT stop, SIGUSR1 logs counters */
static void
engine_signal(evutil_socket_t sig, short what, void *arg)
{
	struct engine *e = arg;

	switch (sig) {
	case SIGTERM:
	case SIGINT:
		log_debug("event=stop engine=%d signal=%d", e->conf->index,
		    (int)sig);
		event_base_loopexit(e->base, NULL);
		break;
	case SIGUSR1:
		engine_stats_line(e, 1);
		engine_dns_stats(e->dns);	/* (added) per zone */
		break;
	}
}

/* engine_stats_timer - (added) keep the writer's metrics fresh */
static void
engine_stats_timer(evutil_socket_t fd, short what, void *arg)
{
	engine_stats_line(arg, 0);
}

/* engine_main - run one engine process */

/* where engine_sigsys_note leaves a trapped call for the master */
static struct engine_budget *engine_sigsys_budget;
static int engine_sigsys_slot;

/* engine_sigsys_note - the seccomp filter trapped call nr: note it in our
 * budget slot, so the master can name it when it logs our death (runs
 * in the SIGSYS handler: one atomic store) */
static void
engine_sigsys_note(int nr)
{
	engine_budget_note_sigsys(engine_sigsys_budget, engine_sigsys_slot,
	    nr);
}

int
engine_main(const struct engine_conf *conf)
{
	const char *selftest;	/* (added) SPAMD_SANDBOX_SELFTEST */
	struct engine *e;
	struct conn *c, *cn;
	struct client *cl, *cln;
	struct timeval tv;
	static const int sigs[] = { SIGTERM, SIGINT, SIGUSR1, SIGHUP };
	int i, status;

	if ((e = calloc(1, sizeof(*e))) == NULL)
		fatal("engine: calloc");
	e->conf = conf;
	RB_INIT(&e->conns);
	RB_INIT(&e->clients);
	/* load the time zone before the chroot hides /etc/localtime */
	tzset();
	{
		time_t t = time(NULL);
		struct tm tm;

		localtime_r(&t, &tm);
	}
	if ((e->base = event_base_new()) == NULL)
		fatalx("engine: event_base_new failed");
	/* (added) DNS checks read resolv.conf and the zone file first */
	e->dns = engine_dns_new(e);
	if (conf->tls_ctx != NULL)
		tls_engine_init();	/* (added) before chroot and sandbox */
	privsep_drop(conf->user, conf->chroot_dir);

	if ((e->bl = bl_set_new()) == NULL)
		fatalx("engine: bl_set_new failed");
	e->ops.tuple = engine_tuple;
	e->ops.lookup = engine_lookup;
	e->ops.helo = engine_helo;	/* (added) HELO check */
	e->ops.rcpt_refused = engine_rcpt_refused;	/* (added) --max-rcpt */
	/* (added) -v lines; why only then: without them a tarpitted client's
	 * MAIL costs no copy and its DATA lines no call (-v is fixed at
	 * start, before the engines fork) */
	if (log_verbose()) {
		e->ops.tarpit_rcpt = engine_tarpit_rcpt;
		e->ops.data_line = engine_data_line;
	}
	e->sconf.hostname = conf->hostname;
	e->sconf.banner = conf->banner;
	e->sconf.bl_code = conf->bl_code;
	e->sconf.blacklist_only = conf->blacklist_only;
	e->sconf.max_rcpt = (uint32_t)conf->max_rcpt;	/* (added) */
	e->sconf.ops = &e->ops;
	e->sconf.arg = e;
	e->sconf.tls_offer = conf->tls_ctx != NULL;	/* (added) STARTTLS */
	if (session_conf_init(&e->sconf) == -1)
		fatalx("engine: out of memory");

	/* common timeouts: O(1) timer queues for tens of thousands */
	tv.tv_sec = conf->stutter_delay > 0 ? conf->stutter_delay : 1;
	tv.tv_usec = 0;
	e->tv_stutter = event_base_init_common_timeout(e->base, &tv);
	tv.tv_sec = SESSION_IDLE_SECS;
	e->tv_idle = event_base_init_common_timeout(e->base, &tv);
	if (e->tv_stutter == NULL || e->tv_idle == NULL)
		fatalx("engine: event_base_init_common_timeout failed");

	for (i = 0; i < conf->nlisten; i++) {
		evutil_make_socket_nonblocking(conf->listen_fds[i]);
		e->lev[i] = event_new(e->base, conf->listen_fds[i],
		    EV_READ | EV_PERSIST, engine_accept, e);
		if (e->lev[i] == NULL)
			fatalx("engine: event_new failed");
	}
	e->accept_pause = evtimer_new(e->base, engine_resume, e);
	/* (added) the -c re-check while the daemon is full */
	if ((e->budget_ev = evtimer_new(e->base, engine_budget_recheck,
	    e)) == NULL)
		fatalx("engine: evtimer_new failed");
	evutil_make_socket_nonblocking(conf->writer_fd);
	e->wbev = bufferevent_socket_new(e->base, conf->writer_fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (e->accept_pause == NULL || e->wbev == NULL)
		fatalx("engine: libevent setup failed");
	bufferevent_setcb(e->wbev, engine_writer_read, engine_writer_drained,
	    engine_writer_event, e);
	/* the write callback runs when the queue drains to LOW */
	bufferevent_setwatermark(e->wbev, EV_WRITE, ENGINE_WRITER_LOW, 0);
	TAILQ_INIT(&e->parked);
	bufferevent_enable(e->wbev, EV_READ | EV_WRITE);
	for (i = 0; i < 4; i++) {
		e->sig[i] = evsignal_new(e->base, sigs[i], engine_signal, e);
		if (e->sig[i] == NULL || evsignal_add(e->sig[i], NULL) == -1)
			fatalx("engine: signal setup failed");
	}
	engine_accept_update(e);
	if (conf->stats_secs > 0) {
		tv.tv_sec = conf->stats_secs;
		tv.tv_usec = 0;
		e->stats_ev = event_new(e->base, -1, EV_PERSIST,
		    engine_stats_timer, e);
		if (e->stats_ev == NULL || event_add(e->stats_ev, &tv) == -1)
			fatalx("engine: stats timer setup failed");
	}
	log_info("event=engine-start engine=%d maxcon=%d maxblack=%d "
	    "budget=%s", conf->index, conf->maxcon, conf->maxblack,
	    conf->budget != NULL ? "shared" : "own");
	/* OpenBSD says it once, at LOG_WARNING; the first engine speaks */
	if (log_openbsd() && conf->index == 0)
		log_obsd(LOG_WARNING, "listening for incoming connections.");

	/* (added) last: every socket and handler the loop needs exists */
	engine_sigsys_budget = conf->budget;
	engine_sigsys_slot = conf->index;
	sandbox_engine(conf->seccomp_mode, engine_sigsys_note);
	/*
	 * the tests' way to prove the filter and the master's report of it:
	 * a call outside the list right after it is loaded (as greyctl's
	 * SPAMD_SANDBOX_SELFTEST=socket)
	 */
	if ((selftest = getenv("SPAMD_SANDBOX_SELFTEST")) != NULL &&
	    strcmp(selftest, "engine-uname") == 0) {
		struct utsname u;

		(void)uname(&u);
	}
	event_base_dispatch(e->base);

	/* shutting down: close every connection, free everything */
	e->paused = 1;
	RB_FOREACH_SAFE(c, conn_tree, &e->conns, cn)
		engine_close(c, "shutdown");
	RB_FOREACH_SAFE(cl, client_tree, &e->clients, cln) {
		RB_REMOVE(client_tree, &e->clients, cl);
		free(cl);
	}
	engine_dns_free(e->dns);	/* (added) */
	for (i = 0; i < conf->nlisten; i++) {
		event_free(e->lev[i]);
		close(conf->listen_fds[i]);
	}
	for (i = 0; i < 4; i++)
		event_free(e->sig[i]);
	event_free(e->accept_pause);
	event_free(e->budget_ev);	/* (added) */
	if (e->stats_ev != NULL)
		event_free(e->stats_ev);
	bufferevent_free(e->wbev);
	session_conf_free(&e->sconf);
	bl_set_free(e->bl);
	event_base_free(e->base);
	status = e->status;
	log_info("event=engine-stop engine=%d status=%d", conf->index, status);
	free(e);
	return status;
}
