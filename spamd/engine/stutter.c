/*
 * stutter.c - output pacing: one byte per -s seconds on the connection's
 * own event (a timer while stuttering), never a scan over connections.
 * Greylisted clients are stuttered for the first -S seconds of their
 * connection, blacklisted and trapped ones for the whole dialogue.
 *
 * Under STARTTLS a stuttered byte goes out as a TLS record of one byte
 * (as OpenBSD spamd's tls_write of one byte): the pacing the client sees
 * is the same as in plain text; unstuttered replies are one record.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "spamd/engine/engine.h"
#include "spamd/common/log.h"
#include "spamd/engine/tls.h"

/* stutter_applies - 1 if c's next byte must wait -s seconds */
int
stutter_applies(const struct conn *c, time_t now)
{
	const struct engine_conf *conf = engine_conf_of(c->eng);

	if (conf->stutter_delay <= 0 || (c->s.flags & SESSION_F_NOSTUTTER))
		return 0;
	if (c->s.cls != SESSION_GREY)
		return 1;
	return now - c->s.start < conf->stutter_secs;
}

/* stutter_tick - a tick passed: write one byte, then go on */
static void
stutter_tick(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	const char *p;
	size_t len;
	ssize_t n;

	if ((p = session_output(&c->s, &len)) != NULL) {
		if (c->tls != NULL) {
			/* a WANT_* is retried on the next tick, as EAGAIN */
			if ((n = tls_write(c, p, 1)) == -1) {
				engine_close(c, "tls-error");
				return;
			}
		} else
			n = send(c->fd, p, 1, MSG_NOSIGNAL);
		if (n == 1) {
			session_output_done(&c->s, 1);
			engine_stats_of(c->eng)->bytes_out++;
		} else if (n == -1 && errno != EAGAIN && errno != EINTR) {
			/* the client is gone; nobody left to stutter at */
			engine_close(c, "write-error");
			return;
		}
		/* EAGAIN: a client that does not read; try on the next tick */
	}
	engine_run(c);
}

/* stutter_writable - the socket can take more, or the write timed out */
static void
stutter_writable(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (what & EV_TIMEOUT) {
		engine_close(c, "write-timeout");
		return;
	}
	engine_run(c);
}

/* stutter_flush - write the pending output now or one byte per tick */
int
stutter_flush(struct conn *c)
{
	struct engine *e = c->eng;
	const char *p;
	size_t len;
	ssize_t n;

	while ((p = session_output(&c->s, &len)) != NULL) {
		if (stutter_applies(c, engine_now(e))) {
			event_del(&c->ev);
			event_assign(&c->ev, engine_base(e), -1, 0, stutter_tick,
			    c);
			event_add(&c->ev, engine_stutter_tv(e));
			return 1;
		}
		if (c->tls != NULL) {
			n = tls_write(c, p, len);
			if (n == TLS_IO_WANT_READ || n == TLS_IO_WANT_WRITE) {
				/* retried by engine_run once the socket is
				 * ready the way OpenSSL asked */
				event_del(&c->ev);
				event_assign(&c->ev, engine_base(e), c->fd,
				    n == TLS_IO_WANT_READ ? EV_READ : EV_WRITE,
				    stutter_writable, c);
				event_add(&c->ev, engine_idle_tv(e));
				return 1;
			}
			if (n == -1)
				return -1;
		} else
			n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -1;
			event_del(&c->ev);
			event_assign(&c->ev, engine_base(e), c->fd, EV_WRITE,
			    stutter_writable, c);
			event_add(&c->ev, engine_idle_tv(e));
			return 1;
		}
		session_output_done(&c->s, (size_t)n);
		engine_stats_of(e)->bytes_out += (uint64_t)n;
	}
	return 0;
}
