/*
 * grey_listen.c - what the writer's three listeners (config port, HTTP,
 * control socket) share: a cap on open connections, a pause when accept
 * fails for want of descriptors or memory, and the counters for both.
 *
 * why a pause: a listening socket stays readable while accept() fails
 * with EMFILE, so a loop that only retries spins at full CPU and logs
 * without end. Stopping accept for a second, logging once per pause, is
 * memcached's accept_new_conns; the backlog holds the clients meanwhile.
 * why a cap: each connection holds a descriptor and a buffer; past the
 * cap a new one is closed at once, so one peer cannot take them all.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "spamd/writer/grey.h"
#include "spamd/common/log.h"

#define GREY_LISTEN_PAUSE_SECS	1

/* grey_listen_resume - the pause is over: accept again */
static void
grey_listen_resume(evutil_socket_t fd, short ev, void *arg)
{
	struct grey_listen *l = arg;

	(void)fd;
	(void)ev;
	if (l->accept_ev != NULL)
		event_add(l->accept_ev, NULL);
	if (l->lev != NULL)
		evconnlistener_enable(l->lev);
}

/* grey_listen_init - a listener named name with at most max connections */
int
grey_listen_init(struct grey_listen *l, struct event_base *base,
    const char *name, int max)
{
	memset(l, 0, sizeof(*l));
	l->name = name;
	l->max = max;
	if ((l->resume_ev = evtimer_new(base, grey_listen_resume, l)) == NULL)
		return -1;
	return 0;
}

/* grey_listen_accept_failed - accept failed with err: pause on a lack of
 * descriptors or memory (1), else 0 (the caller goes on) */
int
grey_listen_accept_failed(struct grey_listen *l, int err)
{
	struct timeval tv = { GREY_LISTEN_PAUSE_SECS, 0 };

	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return 0;
	if (l->accept_ev != NULL)
		event_del(l->accept_ev);
	if (l->lev != NULL)
		evconnlistener_disable(l->lev);
	if (!evtimer_pending(l->resume_ev, NULL)) {
		l->paused++;
		log_warnx("event=%s_accept error=\"%s\" pause=%d open=%d",
		    l->name, strerror(err), GREY_LISTEN_PAUSE_SECS,
		    l->nconns);
		evtimer_add(l->resume_ev, &tv);
	}
	return 1;
}

/* grey_listen_refuse - count a connection closed at once (over the cap)
 * and log it, one line a second at most with the number left unlogged */
void
grey_listen_refuse(struct grey_listen *l, const char *peer, const char *why)
{
	time_t now = time(NULL);

	l->refused++;
	if (now == l->refused_logged) {
		l->refused_quiet++;
		return;
	}
	log_warnx("event=%s_refused peer=%s error=\"%s\" open=%d "
	    "not_logged=%ld", l->name, peer, why, l->nconns,
	    l->refused_quiet);
	l->refused_logged = now;
	l->refused_quiet = 0;
}

/* grey_listen_admit - 1 if one more connection fits (counted; pair with
 * grey_listen_done), 0 if it was refused */
int
grey_listen_admit(struct grey_listen *l, const char *peer)
{
	char why[64];

	if (l->nconns >= l->max) {
		snprintf(why, sizeof(why), "%d connections already open",
		    l->nconns);
		grey_listen_refuse(l, peer, why);
		return 0;
	}
	l->nconns++;
	return 1;
}

/* grey_listen_done - one admitted connection closed */
void
grey_listen_done(struct grey_listen *l)
{
	if (l->nconns > 0)
		l->nconns--;
}

/* grey_listen_timedout - count and log a connection closed at its
 * deadline (a peer sending a byte now and then) */
void
grey_listen_timedout(struct grey_listen *l, const char *peer, size_t bytes,
    int secs)
{
	l->timedout++;
	log_warnx("event=%s_timeout peer=%s bytes=%zu secs=%d", l->name, peer,
	    bytes, secs);
}

/* grey_listen_counts - the counters for /metrics */
void
grey_listen_counts(const struct grey_listen *l, struct grey_listen_counts *c)
{
	memset(c, 0, sizeof(*c));
	if (l == NULL)
		return;
	c->refused = l->refused;
	c->timedout = l->timedout;
	c->paused = l->paused;
	c->open = l->nconns;
}

/* grey_listen_free - stop the resume timer (the listener's own event is
 * the caller's) */
void
grey_listen_free(struct grey_listen *l)
{
	if (l->resume_ev != NULL)
		event_free(l->resume_ev);
	l->resume_ev = NULL;
}
