/* log.c - logging to syslog or stderr, one key=value line per event */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
/* libbsd: NetBSD argument order for strnvis (dst, dlen, src, flag) */
#define LIBBSD_NETBSD_VIS
#include <vis.h>

#include "spamd/log.h"

static int log_foreground = 1;
static int log_verbosity;
static const char *log_ident = "spamd";

/* log_init - log to stderr (foreground) or syslog under ident */
void
log_init(const char *ident, int foreground, int verbose)
{
	log_ident = ident;
	log_foreground = foreground;
	log_verbosity = verbose;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

/* log_set_verbose - change the verbosity (-v) */
void
log_set_verbose(int verbose)
{
	log_verbosity = verbose;
}

/* log_verbose - the current verbosity */
int
log_verbose(void)
{
	return log_verbosity;
}

/* log_vwrite - write one line at a priority, with an optional errno text */
static void
log_vwrite(int pri, int with_errno, const char *fmt, va_list ap)
{
	char buf[2048];
	int saved = errno;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (with_errno) {
		size_t n = strlen(buf);
		snprintf(buf + n, sizeof(buf) - n, " error=\"%s\"",
		    strerror(saved));
	}
	if (log_foreground) {
		struct timespec ts;
		struct tm tm;
		char tbuf[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %s[%d]: %s\n", tbuf,
		    ts.tv_nsec / 1000000, log_ident, (int)getpid(), buf);
	} else
		syslog(pri, "%s", buf);
	errno = saved;
}

#define LOG_BODY(pri, with_errno) do {		\
	va_list ap;					\
	va_start(ap, fmt);				\
	log_vwrite(pri, with_errno, fmt, ap);		\
	va_end(ap);					\
} while (0)

/* log_warn - a warning with the errno text appended */
void
log_warn(const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING, 1);
}

/* log_warnx - a warning */
void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING, 0);
}

/* log_info - an event */
void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_INFO, 0);
}

/* log_debug - detail shown with -v */
void
log_debug(const char *fmt, ...)
{
	if (log_verbosity > 0)
		LOG_BODY(LOG_DEBUG, 0);
}

/* fatal - log with the errno text and exit 1 */
void
fatal(const char *fmt, ...)
{
	LOG_BODY(LOG_CRIT, 1);
	exit(1);
}

/* fatalx - log and exit 1 */
void
fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_CRIT, 0);
	exit(1);
}

/* log_escape - make client bytes safe and short for a log line */
char *
log_escape(const char *in, size_t inlen, size_t max, char *out, size_t outsz)
{
	if (inlen > max)
		inlen = max;
	/* VIS_SAFE off, VIS_WHITE on: a space or '=' could fake a key. */
	strnvisx(out, outsz, in, inlen, VIS_CSTYLE | VIS_WHITE | VIS_OCTAL);
	for (char *p = out; *p; p++)
		if (*p == '=' || *p == '"')
			*p = '_';
	return out;
}
