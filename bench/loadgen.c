/*
 * loadgen - SMTP load generator for the spamd benchmarks and smoke tests.
 * Talks only to loopback (127.0.0.0/8 or ::1), spreads its sockets over
 * several processes (one process holds at most ~19,990 descriptors here)
 * and over many 127.x source addresses (so ephemeral ports do not run
 * out), and stops by itself: every mode is bounded in count and time.
 *
 *   loadgen -m hold    -p PORT -n N -t SECS [-P procs] [-r daemon-pid]
 *       open N connections, keep them, count the bytes that arrive during a
 *       SECS-second window (min/median per connection and bytes/s), then
 *       close; with -r the RSS of the daemon's process tree before and
 *       while holding gives bytes per held connection.
 *   loadgen -m connect -p PORT -c CONC -t SECS [-P procs]
 *       connect, read the banner's first line, reset, as fast as possible:
 *       connections/s and banner latency p50/p99 (µs).
 *   loadgen -m tuples  -p PORT -c CONC -k RCPTS -t SECS [-n max-dialogues]
 *       HELO, MAIL, K distinct RCPTs, DATA (451 expected from spamd; a
 *       server that answers 354 gets a one-line message and QUIT):
 *       tuples/s (RCPTs answered 250) and dialogues/s.
 *
 * Other options: -a ADDR destination (default 127.0.0.1), -s ADDR first
 * source address and -S N how many (default 127.1.0.1 and 4096; IPv4 only),
 * -o N connects in flight per process while opening (hold, default 256),
 * -O SECS time allowed for opening (hold, default 60), -i ID run id put in
 * recipients so repeated runs make new tuples, -x SECS per-dialogue
 * timeout (default 30).
 * Output: one line per figure, `loadgen: mode=... key=value ...`.
 * Exit status 0 when the run completed (figures say how well), 1 on a
 * usage or setup error.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define LG_MAXPROCS	64
#define LG_LINEMAX	1024
#define LG_MAXSAMPLES	(4u * 1024 * 1024)

enum lg_mode { LG_HOLD, LG_CONNECT, LG_TUPLES };

/* What the connection waits for next. */
enum lg_state {
	LG_S_CONNECTING,	/* non-blocking connect in progress */
	LG_S_BANNER,		/* 220 */
	LG_S_HELO,		/* 250 to HELO */
	LG_S_MAIL,		/* 250 to MAIL */
	LG_S_RCPT,		/* 250 to RCPT number rcpt_i */
	LG_S_DATA,		/* 451 (spamd) or 354 */
	LG_S_BODY,		/* 250 after the message body */
	LG_S_QUIT,		/* 221 */
	LG_S_EOF,		/* the server's close after 451/221 */
	LG_S_HOLD,		/* hold mode: just count bytes */
	LG_S_IDLE		/* slot unused */
};

struct lg_opts {
	enum lg_mode	 mode;
	struct sockaddr_storage dst;
	socklen_t	 dstlen;
	int		 family;
	uint32_t	 src_base;	/* host order */
	unsigned	 nsrc;
	long		 n;		/* hold: connections; others: max dialogues */
	double		 secs;
	int		 conc;
	int		 procs;
	int		 rcpts;
	int		 inflight;
	double		 open_secs;
	double		 conn_timeout;
	pid_t		 rss_pid;
	char		 runid[32];
};

/* Counters a child sends back to the parent, followed by samples. */
struct lg_result {
	long		 attempts;	/* connections started */
	long		 connected;	/* connect completed */
	long		 banners;	/* 220 received */
	long		 errors;	/* connect failed, reset, timeout */
	long		 unexpected;	/* a reply code the dialogue did not expect */
	long		 tuples;	/* RCPT answered 250 */
	long		 dialogues;	/* dialogues that reached DATA's answer */
	long		 data_451;
	long		 data_354;
	long		 server_closed;	/* EOF from the server after the last reply */
	long		 held;		/* hold: open at the end with >= 1 byte */
	long		 closed;	/* hold: closed by the server or reset */
	long		 zero_window;	/* hold: no byte during the window */
	long		 nsamples;	/* latencies (µs) or bytes in window */
	long		 nsamples2;	/* hold: bytes received in total */
	double		 elapsed;	/* seconds actually measured */
};

struct lg_conn {
	struct lg_proc	*proc;
	int		 fd;
	enum lg_state	 state;
	struct event	 ev;
	struct event	 tev;
	uint64_t	 t0;		/* µs at connect() */
	uint32_t	 bytes;		/* received in total */
	uint32_t	 bytes_at_go;	/* hold: at window start */
	uint32_t	 bytes_at_end;	/* hold: at window end */
	int		 rcpt_i;
	long		 seq;
	size_t		 len;
	char		 buf[LG_LINEMAX];
};

/* One process's share of the run. */
struct lg_proc {
	const struct lg_opts *o;
	struct event_base *base;
	int		 index;
	long		 nconns;	/* slots */
	struct lg_conn	*conns;
	struct lg_result res;
	uint32_t	*samples;
	long		 samples_cap;
	long		 started;	/* dialogues/connections started */
	long		 limit;		/* max dialogues for this process */
	uint64_t	 t_end;		/* µs: stop starting new connections */
	int		 stopping;
	/* hold */
	long		 opening;	/* connects in flight */
	long		 next_open;	/* next slot to open */
	long		 open_done;	/* slots connected or failed */
	int		 ctl_fd;	/* parent -> child: 'G' start window */
	int		 ready_fd;	/* child -> parent: 'R' all opened */
	struct event	 ctl_ev;
	struct event	 end_ev;
	uint64_t	 t_go;
	int		 windowed;
	uint64_t	 t_last;		/* µs: last dialogue finished */
};

static void	lg_conn_start(struct lg_conn *);
static void	lg_conn_event(evutil_socket_t, short, void *);

/* lg_now_us - monotonic microseconds */
static uint64_t
lg_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* lg_usage - print the command line and exit 1 */
static void __attribute__((noreturn))
lg_usage(const char *why)
{
	if (why != NULL)
		fprintf(stderr, "loadgen: %s\n", why);
	fprintf(stderr,
	    "usage: loadgen -m hold|connect|tuples -p port [-a addr] "
	    "[-n count] [-t secs]\n"
	    "               [-c conc] [-P procs] [-k rcpts] [-s srcaddr] "
	    "[-S nsrc] [-o inflight]\n"
	    "               [-O opensecs] [-r pid] [-i runid] [-x secs]\n");
	exit(1);
}

/* lg_num - parse flag's number in [lo, hi] or exit naming the flag */
static long
lg_num(int flag, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "loadgen: -%c: \"%s\" is not a number in "
		    "%ld..%ld\n", flag, s, lo, hi);
		exit(1);
	}
	return v;
}

/* lg_secs - parse flag's seconds (may be fractional) in (0, hi] */
static double
lg_secs(int flag, const char *s, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v > 0) || v > hi) {
		fprintf(stderr, "loadgen: -%c: \"%s\" is not seconds in "
		    "(0, %.0f]\n", flag, s, hi);
		exit(1);
	}
	return v;
}

/* lg_parse_dst - the destination address; loopback only */
static void
lg_parse_dst(struct lg_opts *o, const char *addr, int port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&o->dst;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&o->dst;

	memset(&o->dst, 0, sizeof(o->dst));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127)
			lg_usage("-a: only 127.0.0.0/8 or ::1 may be loaded");
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		o->dstlen = sizeof(*sin);
		o->family = AF_INET;
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			lg_usage("-a: only 127.0.0.0/8 or ::1 may be loaded");
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		o->dstlen = sizeof(*sin6);
		o->family = AF_INET6;
	} else
		lg_usage("-a: not an IPv4 or IPv6 address");
}

/* lg_record - keep one sample (latency µs or bytes) if there is room */
static void
lg_record(struct lg_proc *p, uint32_t v)
{
	if (p->res.nsamples >= p->samples_cap) {
		long cap = p->samples_cap ? p->samples_cap * 2 : 4096;
		uint32_t *s;

		if (cap > (long)LG_MAXSAMPLES)
			return;
		s = realloc(p->samples, (size_t)cap * sizeof(*s));
		if (s == NULL)
			return;
		p->samples = s;
		p->samples_cap = cap;
	}
	p->samples[p->res.nsamples++] = v;
}

/* lg_conn_close - close the socket; reset (no TIME_WAIT) when asked */
static void
lg_conn_close(struct lg_conn *c, int reset)
{
	if (c->fd >= 0) {
		if (reset) {
			struct linger l = { .l_onoff = 1, .l_linger = 0 };

			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		event_del(&c->ev);
		close(c->fd);
		c->fd = -1;
	}
	evtimer_del(&c->tev);
	if (c->state == LG_S_CONNECTING && c->proc->o->mode == LG_HOLD)
		c->proc->opening--;
	c->state = LG_S_IDLE;
}

static void	lg_hold_open_more(struct lg_proc *);

/* lg_conn_done - this dialogue/connection is over: start the next one */
static void
lg_conn_done(struct lg_conn *c, int reset)
{
	struct lg_proc *p = c->proc;
	int was_connecting = c->state == LG_S_CONNECTING;

	lg_conn_close(c, reset);
	if (p->o->mode == LG_HOLD) {
		if (was_connecting) {
			p->open_done++;
			lg_hold_open_more(p);
		} else
			p->res.closed++;
		return;
	}
	p->t_last = lg_now_us();
	if (!p->stopping)
		lg_conn_start(c);
}

/* lg_send - write a whole command (small; the socket buffer takes it) */
static int
lg_send(struct lg_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int
lg_send(struct lg_conn *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	return send(c->fd, line, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

/*
 * lg_reply - act on one complete reply code: 0 to go on, 1 when the
 * connection is over (the slot may already hold the next one), -1 when
 * sending the next command failed
 */
static int
lg_reply(struct lg_conn *c, int code)
{
	struct lg_proc *p = c->proc;
	const struct lg_opts *o = p->o;

	switch (c->state) {
	case LG_S_BANNER:
		if (code != 220)
			goto unexpected;
		p->res.banners++;
		if (o->mode == LG_CONNECT) {
			uint64_t lat = lg_now_us() - c->t0;

			lg_record(p, lat > UINT32_MAX ? UINT32_MAX :
			    (uint32_t)lat);
			lg_conn_done(c, 1);
			return 1;
		}
		c->state = LG_S_HELO;
		return lg_send(c, "HELO lg%d.loadgen.test\r\n", p->index);
	case LG_S_HELO:
		if (code != 250)
			goto unexpected;
		c->state = LG_S_MAIL;
		return lg_send(c, "MAIL FROM:<sender%d@loadgen.test>\r\n",
		    p->index);
	case LG_S_MAIL:
	case LG_S_RCPT:
		if (c->state == LG_S_RCPT) {
			if (code != 250)
				goto unexpected;
			p->res.tuples++;
			c->rcpt_i++;
		} else if (code != 250)
			goto unexpected;
		if (c->rcpt_i < o->rcpts) {
			c->state = LG_S_RCPT;
			/* run id, process, dialogue and rcpt make it new */
			return lg_send(c, "RCPT TO:<u%s-%d-%ld-%d@example.com>"
			    "\r\n", o->runid, p->index, c->seq, c->rcpt_i);
		}
		c->state = LG_S_DATA;
		return lg_send(c, "DATA\r\n");
	case LG_S_DATA:
		p->res.dialogues++;
		if (code == 451) {
			p->res.data_451++;
			c->state = LG_S_EOF;
			return 0;
		}
		if (code == 354) {
			p->res.data_354++;
			c->state = LG_S_BODY;
			return lg_send(c, "Subject: loadgen\r\n\r\nx\r\n.\r\n");
		}
		goto unexpected;
	case LG_S_BODY:
		if (code != 250)
			goto unexpected;
		c->state = LG_S_QUIT;
		return lg_send(c, "QUIT\r\n");
	case LG_S_QUIT:
		c->state = LG_S_EOF;
		return 0;
	case LG_S_EOF:
	default:
		goto unexpected;
	}
unexpected:
	p->res.unexpected++;
	lg_conn_done(c, 1);
	return 1;
}

/* lg_conn_read - read what arrived; parse replies in dialogue modes */
static void
lg_conn_read(struct lg_conn *c)
{
	struct lg_proc *p = c->proc;
	char tmp[4096];
	ssize_t n;

	for (;;) {
		n = recv(c->fd, tmp, sizeof(tmp), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			if (n == 0 && c->state == LG_S_EOF) {
				p->res.server_closed++;
				lg_conn_done(c, 0);
			} else {
				if (c->state != LG_S_HOLD)
					p->res.errors++;
				lg_conn_done(c, 1);
			}
			return;
		}
		c->bytes += (uint32_t)n;
		if (c->state == LG_S_HOLD)
			continue;
		if (c->len + (size_t)n > sizeof(c->buf)) {
			p->res.unexpected++;
			lg_conn_done(c, 1);
			return;
		}
		memcpy(c->buf + c->len, tmp, (size_t)n);
		c->len += (size_t)n;
		for (;;) {
			char *nl = memchr(c->buf, '\n', c->len);
			size_t ll;
			int code, last;

			if (nl == NULL)
				break;
			ll = (size_t)(nl - c->buf) + 1;
			last = ll < 5 || c->buf[3] != '-';
			code = ll >= 4 ? atoi(c->buf) : 0;
			memmove(c->buf, c->buf + ll, c->len - ll);
			c->len -= ll;
			if (!last)
				continue;
			switch (lg_reply(c, code)) {
			case 0:
				break;
			case 1:
				return;
			default:
				p->res.errors++;
				lg_conn_done(c, 1);
				return;
			}
		}
	}
}

/* lg_conn_event - socket readiness or the per-connection timer */
static void
lg_conn_event(evutil_socket_t fd, short what, void *arg)
{
	struct lg_conn *c = arg;
	struct lg_proc *p = c->proc;

	if (what & EV_TIMEOUT) {
		p->res.errors++;
		lg_conn_done(c, 1);
		return;
	}
	if (c->state == LG_S_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof(err);

		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err != 0) {
			p->res.errors++;
			lg_conn_done(c, 1);
			return;
		}
		p->res.connected++;
		event_del(&c->ev);
		if (p->o->mode == LG_HOLD) {
			p->opening--;
			p->open_done++;
			c->state = LG_S_HOLD;
			evtimer_del(&c->tev);
			event_assign(&c->ev, p->base, c->fd, EV_READ | EV_PERSIST,
			    lg_conn_event, c);
			event_add(&c->ev, NULL);
			lg_hold_open_more(p);
			return;
		}
		c->state = LG_S_BANNER;
		event_assign(&c->ev, p->base, c->fd, EV_READ | EV_PERSIST,
		    lg_conn_event, c);
		event_add(&c->ev, NULL);
		/* the banner may already be there */
	}
	lg_conn_read(c);
}

/* lg_socket - a non-blocking socket bound to the next source address */
static int
lg_socket(struct lg_proc *p, long seq)
{
	const struct lg_opts *o = p->o;
	int fd, one = 1;

	fd = socket(o->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o->family == AF_INET && o->nsrc > 0) {
		struct sockaddr_in src;

		/* port chosen at connect time: 4-tuples, not ports, run out */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		    sizeof(one));
		memset(&src, 0, sizeof(src));
		src.sin_family = AF_INET;
		src.sin_addr.s_addr = htonl(o->src_base +
		    (uint32_t)((seq * o->procs + p->index) % o->nsrc));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* lg_conn_start - start the next connection (or dialogue) in this slot */
static void
lg_conn_start(struct lg_conn *c)
{
	struct lg_proc *p = c->proc;
	const struct lg_opts *o = p->o;
	struct timeval tv;

	if (o->mode != LG_HOLD &&
	    (p->started >= p->limit || lg_now_us() >= p->t_end)) {
		c->state = LG_S_IDLE;
		return;
	}
	c->seq = p->started++;
	p->res.attempts++;
	c->len = 0;
	c->rcpt_i = 0;
	c->bytes = 0;
	c->fd = lg_socket(p, c->seq);
	if (c->fd < 0)
		goto fail;
	c->t0 = lg_now_us();
	if (connect(c->fd, (struct sockaddr *)&o->dst, o->dstlen) != 0 &&
	    errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		goto fail;
	}
	c->state = LG_S_CONNECTING;
	if (o->mode == LG_HOLD)
		p->opening++;
	event_assign(&c->ev, p->base, c->fd, EV_WRITE, lg_conn_event, c);
	event_add(&c->ev, NULL);
	tv.tv_sec = (time_t)o->conn_timeout;
	tv.tv_usec = (suseconds_t)((o->conn_timeout - (double)tv.tv_sec) *
	    1e6);
	evtimer_add(&c->tev, &tv);
	return;
fail:
	/* try again from the loop, not by recursion; errors are counted */
	p->res.errors++;
	c->state = LG_S_IDLE;
	if (o->mode == LG_HOLD) {
		p->open_done++;
		return;
	}
	tv.tv_sec = 0;
	tv.tv_usec = 10000;
	evtimer_add(&c->tev, &tv);
}

/* lg_slot_timer - a slot's timer: retry a failed start or time it out */
static void
lg_slot_timer(evutil_socket_t fd, short what, void *arg)
{
	struct lg_conn *c = arg;

	if (c->state == LG_S_IDLE) {
		if (!c->proc->stopping)
			lg_conn_start(c);
		return;
	}
	lg_conn_event(c->fd, EV_TIMEOUT, c);
}

/* lg_hold_open_more - hold: keep `inflight` connects going until all open */
static void
lg_hold_open_more(struct lg_proc *p)
{
	while (p->opening < p->o->inflight && p->next_open < p->nconns) {
		struct lg_conn *c = &p->conns[p->next_open++];

		lg_conn_start(c);
	}
	if (p->open_done >= p->nconns && p->ready_fd >= 0) {
		char r = 'R';

		if (write(p->ready_fd, &r, 1) != 1)
			perror("loadgen: ready pipe");
		close(p->ready_fd);
		p->ready_fd = -1;
	}
}

/* lg_hold_end - hold: the window is over; snapshot and leave the loop */
static void
lg_hold_end(evutil_socket_t fd, short what, void *arg)
{
	struct lg_proc *p = arg;
	long i;

	p->res.elapsed = (double)(lg_now_us() - p->t_go) / 1e6;
	for (i = 0; i < p->nconns; i++) {
		struct lg_conn *c = &p->conns[i];

		c->bytes_at_end = c->bytes;
	}
	p->windowed = 1;
	event_base_loopbreak(p->base);
}

/* lg_hold_ctl - hold: the parent says 'G' (start window) */
static void
lg_hold_ctl(evutil_socket_t fd, short what, void *arg)
{
	struct lg_proc *p = arg;
	struct timeval tv;
	char ch = 0;
	long i;

	if (read(fd, &ch, 1) != 1 || ch != 'G') {
		/* parent gone: stop */
		event_base_loopbreak(p->base);
		return;
	}
	event_del(&p->ctl_ev);
	p->t_go = lg_now_us();
	for (i = 0; i < p->nconns; i++)
		p->conns[i].bytes_at_go = p->conns[i].bytes;
	tv.tv_sec = (time_t)p->o->secs;
	tv.tv_usec = (suseconds_t)((p->o->secs - (double)tv.tv_sec) * 1e6);
	evtimer_assign(&p->end_ev, p->base, lg_hold_end, p);
	evtimer_add(&p->end_ev, &tv);
}

/* lg_stop_cb - dialogue modes: time is up; no new connections */
static void
lg_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lg_proc *p = arg;

	p->stopping = 1;
}

/* lg_check_cb - dialogue modes: leave the loop once every slot is idle */
static void
lg_check_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lg_proc *p = arg;
	long i;

	if (!p->stopping && p->started < p->limit)
		return;
	for (i = 0; i < p->nconns; i++)
		if (p->conns[i].state != LG_S_IDLE)
			return;
	event_base_loopbreak(p->base);
}

/* lg_hard_cb - hard deadline: leave the loop whatever is pending */
static void
lg_hard_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lg_proc *p = arg;

	event_base_loopbreak(p->base);
}

/* lg_write_all - write all of buf to fd */
static int
lg_write_all(int fd, const void *buf, size_t len)
{
	const char *b = buf;

	while (len > 0) {
		ssize_t n = write(fd, b, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* lg_read_all - read exactly len bytes from fd; -1 on EOF or error */
static int
lg_read_all(int fd, void *buf, size_t len)
{
	char *b = buf;

	while (len > 0) {
		ssize_t n = read(fd, b, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* lg_child - run one process's share; send results on out_fd; exit */
static void __attribute__((noreturn))
lg_child(const struct lg_opts *o, int index, long share, long limit,
    int ctl_fd, int ready_fd, int out_fd)
{
	struct lg_proc p;
	struct event stop_ev, hard_ev, check_ev;
	struct timeval tv;
	double hard;
	long i;

	memset(&p, 0, sizeof(p));
	p.o = o;
	p.index = index;
	p.nconns = share;
	p.limit = limit;
	p.ctl_fd = ctl_fd;
	p.ready_fd = ready_fd;
	p.base = event_base_new();
	if (p.base == NULL) {
		fprintf(stderr, "loadgen: event_base_new failed\n");
		_exit(1);
	}
	p.conns = calloc((size_t)(share > 0 ? share : 1), sizeof(*p.conns));
	if (p.conns == NULL) {
		fprintf(stderr, "loadgen: out of memory for %ld slots\n", share);
		_exit(1);
	}
	for (i = 0; i < share; i++) {
		p.conns[i].proc = &p;
		p.conns[i].fd = -1;
		p.conns[i].state = LG_S_IDLE;
		evtimer_assign(&p.conns[i].tev, p.base, lg_slot_timer,
		    &p.conns[i]);
	}
	/* every process stops by itself, even if the parent vanished */
	hard = o->mode == LG_HOLD ? o->open_secs + o->secs + 60 :
	    o->secs + o->conn_timeout + 5;
	tv.tv_sec = (time_t)hard;
	tv.tv_usec = 0;
	evtimer_assign(&hard_ev, p.base, lg_hard_cb, &p);
	evtimer_add(&hard_ev, &tv);

	if (o->mode == LG_HOLD) {
		event_assign(&p.ctl_ev, p.base, ctl_fd, EV_READ | EV_PERSIST,
		    lg_hold_ctl, &p);
		event_add(&p.ctl_ev, NULL);
		lg_hold_open_more(&p);
	} else {
		p.t_end = lg_now_us() + (uint64_t)(o->secs * 1e6);
		tv.tv_sec = (time_t)o->secs;
		tv.tv_usec = (suseconds_t)((o->secs - (double)tv.tv_sec) * 1e6);
		evtimer_assign(&stop_ev, p.base, lg_stop_cb, &p);
		evtimer_add(&stop_ev, &tv);
		tv.tv_sec = 0;
		tv.tv_usec = 20000;
		event_assign(&check_ev, p.base, -1, EV_PERSIST, lg_check_cb,
		    &p);
		event_add(&check_ev, &tv);
		for (i = 0; i < share; i++)
			lg_conn_start(&p.conns[i]);
	}
	{
		uint64_t t0 = lg_now_us();

		event_base_dispatch(p.base);
		/* rates over the time the dialogues took, not the drain */
		if (o->mode != LG_HOLD && p.t_last > t0)
			p.res.elapsed = (double)(p.t_last - t0) / 1e6;
	}
	if (o->mode == LG_HOLD) {
		for (i = 0; i < share; i++) {
			struct lg_conn *c = &p.conns[i];

			if (!p.windowed)
				break;
			if (c->fd >= 0 && c->bytes > 0)
				p.res.held++;
			if (c->bytes > 0) {
				uint32_t w = c->bytes_at_end - c->bytes_at_go;

				lg_record(&p, w);
				if (w == 0)
					p.res.zero_window++;
			}
		}
		/* the total bytes of each accepted connection, after */
		p.res.nsamples2 = 0;
		for (i = 0; i < share && p.windowed; i++)
			if (p.conns[i].bytes > 0)
				p.res.nsamples2++;
	}
	if (lg_write_all(out_fd, &p.res, sizeof(p.res)) != 0 ||
	    (p.res.nsamples > 0 && lg_write_all(out_fd, p.samples,
	    (size_t)p.res.nsamples * sizeof(uint32_t)) != 0))
		_exit(1);
	if (o->mode == LG_HOLD && p.windowed) {
		for (i = 0; i < share; i++)
			if (p.conns[i].bytes > 0 && lg_write_all(out_fd,
			    &p.conns[i].bytes, sizeof(uint32_t)) != 0)
				_exit(1);
	}
	/* closing thousands of held sockets: reset, no TIME_WAIT pile */
	for (i = 0; i < share; i++)
		if (p.conns[i].fd >= 0)
			lg_conn_close(&p.conns[i], 1);
	_exit(0);
}

/* lg_cmp_u32 - qsort order for uint32_t */
static int
lg_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* lg_pct - the q-quantile of sorted v[0..n) (0 when empty) */
static uint32_t
lg_pct(const uint32_t *v, long n, double q)
{
	long i;

	if (n <= 0)
		return 0;
	i = (long)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

/* lg_rss_kb - VmRSS of one process in kB (0 when gone) */
static long
lg_rss_kb(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	long kb = 0;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

/* lg_ppid - parent pid of pid from /proc/PID/stat (-1 when gone) */
static pid_t
lg_ppid(pid_t pid)
{
	char path[64], buf[512], *rp;
	FILE *f;
	size_t n;
	int st;
	long pp;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command name may hold spaces and ')': skip to the last ')' */
	if ((rp = strrchr(buf, ')')) == NULL)
		return -1;
	st = sscanf(rp + 1, " %*c %ld", &pp);
	return st == 1 ? (pid_t)pp : -1;
}

/* Process tree RSS: the daemon and every descendant. */
struct lg_tree {
	int	 n;
	pid_t	 pid[64];
	long	 kb[64];
	long	 total;
};

/* lg_tree_rss - RSS of root and its descendants (two levels suffice) */
static void
lg_tree_rss(pid_t root, struct lg_tree *t)
{
	DIR *d;
	struct dirent *de;
	int level, i, before;

	memset(t, 0, sizeof(*t));
	t->pid[t->n] = root;
	t->kb[t->n++] = lg_rss_kb(root);
	for (level = 0; level < 3; level++) {
		before = t->n;
		if ((d = opendir("/proc")) == NULL)
			break;
		while ((de = readdir(d)) != NULL && t->n < 64) {
			pid_t pid, pp;
			int known = 0;

			if (de->d_name[0] < '1' || de->d_name[0] > '9')
				continue;
			pid = (pid_t)strtol(de->d_name, NULL, 10);
			pp = lg_ppid(pid);
			for (i = 0; i < t->n; i++)
				if (t->pid[i] == pid)
					known = 1;
			if (known)
				continue;
			for (i = 0; i < t->n; i++)
				if (t->pid[i] == pp) {
					t->pid[t->n] = pid;
					t->kb[t->n++] = lg_rss_kb(pid);
					break;
				}
		}
		closedir(d);
		if (t->n == before)
			break;
	}
	for (i = 0; i < t->n; i++)
		t->total += t->kb[i];
}

/* lg_tree_kb - RSS recorded for pid in t (0 when absent) */
static long
lg_tree_kb(const struct lg_tree *t, pid_t pid)
{
	int i;

	for (i = 0; i < t->n; i++)
		if (t->pid[i] == pid)
			return t->kb[i];
	return 0;
}

/* lg_sleep - sleep secs (fractional) */
static void
lg_sleep(double secs)
{
	struct timespec ts;

	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* lg_run - fork the processes, drive the hold window, add up results */
static int
lg_run(const struct lg_opts *o)
{
	pid_t pids[LG_MAXPROCS];
	int outs[LG_MAXPROCS], ctls[LG_MAXPROCS], readys[LG_MAXPROCS];
	struct lg_result tot, r;
	struct lg_tree before, held;
	uint32_t *samples = NULL, *totals = NULL;
	long nsamp = 0, ntot = 0;
	int i, ok = 1;
	uint64_t t_open = 0;
	double open_s = 0;

	memset(&tot, 0, sizeof(tot));
	memset(&before, 0, sizeof(before));
	memset(&held, 0, sizeof(held));
	if (o->rss_pid > 0)
		lg_tree_rss(o->rss_pid, &before);
	t_open = lg_now_us();
	for (i = 0; i < o->procs; i++) {
		int op[2], cp[2], rp[2];
		long share, limit;

		if (o->mode == LG_HOLD)
			share = o->n / o->procs + (i < o->n % o->procs);
		else
			share = o->conc / o->procs + (i < o->conc % o->procs);
		limit = o->n / o->procs + (i < o->n % o->procs);
		if (pipe(op) != 0 || pipe(cp) != 0 || pipe(rp) != 0) {
			perror("loadgen: pipe");
			exit(1);
		}
		fflush(stdout);
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("loadgen: fork");
			exit(1);
		}
		if (pids[i] == 0) {
			int j;

			for (j = 0; j < i; j++) {
				close(outs[j]);
				close(ctls[j]);
				close(readys[j]);
			}
			close(op[0]);
			close(cp[1]);
			close(rp[0]);
			lg_child(o, i, share, limit, cp[0], rp[1], op[1]);
		}
		close(op[1]);
		close(cp[0]);
		close(rp[1]);
		outs[i] = op[0];
		ctls[i] = cp[1];
		readys[i] = rp[0];
	}
	if (o->mode == LG_HOLD) {
		/* wait until every process has opened its share (bounded) */
		for (i = 0; i < o->procs; i++) {
			char ch;
			struct timeval tv;
			fd_set rs;
			double left = o->open_secs -
			    (double)(lg_now_us() - t_open) / 1e6;

			if (left < 0.01)
				left = 0.01;
			FD_ZERO(&rs);
			FD_SET(readys[i], &rs);
			tv.tv_sec = (time_t)left;
			tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) *
			    1e6);
			if (select(readys[i] + 1, &rs, NULL, NULL, &tv) > 0)
				(void)!read(readys[i], &ch, 1);
		}
		open_s = (double)(lg_now_us() - t_open) / 1e6;
		/* let the server accept what is still in its queue */
		lg_sleep(1.0);
		for (i = 0; i < o->procs; i++)
			if (write(ctls[i], "G", 1) != 1)
				perror("loadgen: control pipe");
		/* sample the daemon near the end of the window */
		lg_sleep(o->secs * 0.8);
		if (o->rss_pid > 0)
			lg_tree_rss(o->rss_pid, &held);
	}
	for (i = 0; i < o->procs; i++) {
		int st;

		if (lg_read_all(outs[i], &r, sizeof(r)) != 0) {
			fprintf(stderr, "loadgen: process %d sent no result\n",
			    i);
			ok = 0;
			goto reap;
		}
		if (r.nsamples > 0) {
			samples = realloc(samples, (size_t)(nsamp + r.nsamples) *
			    sizeof(*samples));
			if (samples == NULL ||
			    lg_read_all(outs[i], samples + nsamp,
			    (size_t)r.nsamples * sizeof(*samples)) != 0) {
				fprintf(stderr, "loadgen: short samples\n");
				exit(1);
			}
			nsamp += r.nsamples;
		}
		if (r.nsamples2 > 0) {
			totals = realloc(totals, (size_t)(ntot + r.nsamples2) *
			    sizeof(*totals));
			if (totals == NULL ||
			    lg_read_all(outs[i], totals + ntot,
			    (size_t)r.nsamples2 * sizeof(*totals)) != 0) {
				fprintf(stderr, "loadgen: short totals\n");
				exit(1);
			}
			ntot += r.nsamples2;
		}
		tot.attempts += r.attempts;
		tot.connected += r.connected;
		tot.banners += r.banners;
		tot.errors += r.errors;
		tot.unexpected += r.unexpected;
		tot.tuples += r.tuples;
		tot.dialogues += r.dialogues;
		tot.data_451 += r.data_451;
		tot.data_354 += r.data_354;
		tot.server_closed += r.server_closed;
		tot.held += r.held;
		tot.closed += r.closed;
		tot.zero_window += r.zero_window;
		if (r.elapsed > tot.elapsed)
			tot.elapsed = r.elapsed;
reap:
		close(outs[i]);
		close(ctls[i]);
		close(readys[i]);
		if (waitpid(pids[i], &st, 0) == pids[i] &&
		    (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
			ok = 0;
	}
	if (nsamp > 0)
		qsort(samples, (size_t)nsamp, sizeof(*samples), lg_cmp_u32);
	if (ntot > 0)
		qsort(totals, (size_t)ntot, sizeof(*totals), lg_cmp_u32);

	switch (o->mode) {
	case LG_HOLD: {
		double w = tot.elapsed > 0 ? tot.elapsed : o->secs;

		printf("loadgen: mode=hold target=%ld procs=%d connected=%ld "
		    "held=%ld closed=%ld errors=%ld open_s=%.1f window_s=%.1f "
		    "window_bytes_min=%u window_bytes_median=%u "
		    "window_bytes_max=%u bps_min=%.3f bps_median=%.3f "
		    "zero_in_window=%ld total_bytes_median=%u\n",
		    o->n, o->procs, tot.connected, tot.held, tot.closed,
		    tot.errors, open_s, w, lg_pct(samples, nsamp, 0),
		    lg_pct(samples, nsamp, 0.5), lg_pct(samples, nsamp, 1),
		    (double)lg_pct(samples, nsamp, 0) / w,
		    (double)lg_pct(samples, nsamp, 0.5) / w, tot.zero_window,
		    lg_pct(totals, ntot, 0.5));
		if (o->rss_pid > 0) {
			long top_delta = 0;
			pid_t top = 0;

			for (i = 0; i < held.n; i++) {
				long dl = held.kb[i] -
				    lg_tree_kb(&before, held.pid[i]);

				if (dl > top_delta) {
					top_delta = dl;
					top = held.pid[i];
				}
			}
			printf("loadgen: mode=hold rss_procs=%d "
			    "rss_before_kb=%ld rss_held_kb=%ld "
			    "bytes_per_held_conn=%.0f top_pid=%ld "
			    "top_delta_kb=%ld top_bytes_per_held_conn=%.0f\n",
			    held.n, before.total, held.total,
			    tot.held > 0 ? (double)(held.total - before.total) *
			    1024 / (double)tot.held : 0, (long)top, top_delta,
			    tot.held > 0 ? (double)top_delta * 1024 /
			    (double)tot.held : 0);
		}
		break;
	}
	case LG_CONNECT:
		printf("loadgen: mode=connect conc=%d procs=%d secs=%.2f "
		    "attempts=%ld banners=%ld errors=%ld unexpected=%ld "
		    "conn_per_s=%.0f banner_p50_us=%u banner_p99_us=%u "
		    "banner_max_us=%u\n", o->conc, o->procs, tot.elapsed,
		    tot.attempts, tot.banners, tot.errors, tot.unexpected,
		    tot.elapsed > 0 ? (double)tot.banners / tot.elapsed : 0,
		    lg_pct(samples, nsamp, 0.5), lg_pct(samples, nsamp, 0.99),
		    lg_pct(samples, nsamp, 1));
		break;
	case LG_TUPLES:
		printf("loadgen: mode=tuples conc=%d procs=%d rcpts=%d "
		    "secs=%.2f attempts=%ld banners=%ld tuples=%ld "
		    "dialogues=%ld data_451=%ld data_354=%ld "
		    "server_closed=%ld errors=%ld unexpected=%ld "
		    "tuples_per_s=%.0f dialogues_per_s=%.0f\n", o->conc,
		    o->procs, o->rcpts, tot.elapsed, tot.attempts, tot.banners,
		    tot.tuples, tot.dialogues, tot.data_451, tot.data_354,
		    tot.server_closed, tot.errors, tot.unexpected,
		    tot.elapsed > 0 ? (double)tot.tuples / tot.elapsed : 0,
		    tot.elapsed > 0 ? (double)tot.dialogues / tot.elapsed : 0);
		break;
	}
	fflush(stdout);
	free(samples);
	free(totals);
	return ok ? 0 : 1;
}

/* main - parse the flags, check the limits, run */
int
main(int argc, char **argv)
{
	struct lg_opts o;
	const char *addr = "127.0.0.1", *src = "127.1.0.1";
	struct in_addr sa;
	struct rlimit rl;
	int ch, port = -1, procs_given = 0;
	long fdmax;

	memset(&o, 0, sizeof(o));
	o.mode = LG_TUPLES;
	o.n = 0;
	o.secs = 10;
	o.conc = 100;
	o.procs = 1;
	o.rcpts = 1;
	o.nsrc = 4096;
	o.inflight = 256;
	o.open_secs = 60;
	o.conn_timeout = 30;
	snprintf(o.runid, sizeof(o.runid), "%lx%lx", (long)time(NULL),
	    (long)getpid());

	while ((ch = getopt(argc, argv, "a:c:i:k:m:n:O:o:P:p:r:S:s:t:x:")) !=
	    -1) {
		switch (ch) {
		case 'a': addr = optarg; break;
		case 'c': o.conc = (int)lg_num(ch, optarg, 1, 1000000); break;
		case 'i':
			if (strlen(optarg) >= sizeof(o.runid) ||
			    strspn(optarg, "abcdefghijklmnopqrstuvwxyz"
			    "0123456789") != strlen(optarg))
				lg_usage("-i: up to 31 lowercase letters/digits");
			strlcpy(o.runid, optarg, sizeof(o.runid));
			break;
		case 'k': o.rcpts = (int)lg_num(ch, optarg, 0, 100000); break;
		case 'm':
			if (strcmp(optarg, "hold") == 0)
				o.mode = LG_HOLD;
			else if (strcmp(optarg, "connect") == 0)
				o.mode = LG_CONNECT;
			else if (strcmp(optarg, "tuples") == 0)
				o.mode = LG_TUPLES;
			else
				lg_usage("-m: hold, connect or tuples");
			break;
		case 'n': o.n = lg_num(ch, optarg, 1, 1000000000L); break;
		case 'O': o.open_secs = lg_secs(ch, optarg, 3600); break;
		case 'o': o.inflight = (int)lg_num(ch, optarg, 1, 100000); break;
		case 'P':
			o.procs = (int)lg_num(ch, optarg, 1, LG_MAXPROCS);
			procs_given = 1;
			break;
		case 'p': port = (int)lg_num(ch, optarg, 1, 65535); break;
		case 'r': o.rss_pid = (pid_t)lg_num(ch, optarg, 1, INT_MAX);
			break;
		case 'S': o.nsrc = (unsigned)lg_num(ch, optarg, 0, 1 << 20);
			break;
		case 's': src = optarg; break;
		case 't': o.secs = lg_secs(ch, optarg, 3600); break;
		case 'x': o.conn_timeout = lg_secs(ch, optarg, 3600); break;
		default: lg_usage(NULL);
		}
	}
	if (optind != argc)
		lg_usage("unexpected arguments");
	if (port < 0)
		lg_usage("-p: the port is required");
	lg_parse_dst(&o, addr, port);
	if (inet_pton(AF_INET, src, &sa) != 1 ||
	    (ntohl(sa.s_addr) >> 24) != 127)
		lg_usage("-s: the source must be an address in 127.0.0.0/8");
	o.src_base = ntohl(sa.s_addr);
	if (o.nsrc > 0 && ((o.src_base & 0xffffff) + o.nsrc - 1) > 0xfffffe)
		lg_usage("-S: sources run past 127.255.255.254");

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	fdmax = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long)rl.rlim_cur : 1024;
	if (o.mode == LG_HOLD) {
		long per;

		if (o.n == 0)
			lg_usage("-n: hold needs the number of connections");
		/* enough processes that each stays under its file limit */
		if (!procs_given)
			o.procs = (int)((o.n + (fdmax - 64) - 1) / (fdmax - 64));
		if (o.procs > LG_MAXPROCS)
			lg_usage("-n: more connections than 64 processes hold");
		per = (o.n + o.procs - 1) / o.procs;
		if (per > fdmax - 32) {
			fprintf(stderr, "loadgen: -n %ld over -P %d is %ld "
			    "sockets per process; the file limit is %ld\n",
			    o.n, o.procs, per, fdmax);
			return 1;
		}
	} else {
		if (o.n == 0)
			o.n = 1000000000L;
		if (o.conc < o.procs)
			o.procs = o.conc;
		if ((o.conc + o.procs - 1) / o.procs > fdmax - 32)
			lg_usage("-c: too many per process; raise -P");
	}
	signal(SIGPIPE, SIG_IGN);
	return lg_run(&o);
}
