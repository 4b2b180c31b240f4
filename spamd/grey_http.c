/*
 * grey_http.c - the writer's HTTP endpoint: GET /traplist and /metrics
 * (libevent evhttp on the writer's event base), off by default.
 */
#include <stdlib.h>

#include "spamd/grey.h"
#include "spamd/log.h"

/* grey_http_start - listen on conf->http_listen (see grey.h) */
int
grey_http_start(struct grey_http **out, struct grey *g,
    struct event_base *base, const struct grey_conf *conf,
    struct grey_sync *gs)
{
	*out = NULL;
	if (conf->http_listen == NULL)
		return 0;
	log_warnx("event=writer_start error=\"--http-listen: not built\"");
	return -1;
}

/* grey_http_free - stop listening */
void
grey_http_free(struct grey_http *gh)
{
	free(gh);
}
