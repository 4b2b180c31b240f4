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

#include "spamd/common/log.h"

static int log_foreground = 1;
static int log_verbosity;
static const char *log_ident = "spamd";
static int log_json;		/* --log-format json */
static int log_obsd_mode;	/* --log-format openbsd */

/* One growing output line for log_json_line (snprintf-like on overflow). */
struct log_jbuf {
	char	*out;
	size_t	 size;
	size_t	 len;		/* bytes it needed so far */
};

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

/* log_set_format - choose key=value ("kv"), JSON ("json") or OpenBSD
 * spamd's own lines ("openbsd") */
int
log_set_format(const char *name)
{
	if (strcmp(name, "kv") == 0)
		log_json = log_obsd_mode = 0;
	else if (strcmp(name, "json") == 0) {
		log_json = 1;
		log_obsd_mode = 0;
	} else if (strcmp(name, "openbsd") == 0) {
		log_json = 0;
		log_obsd_mode = 1;
	} else
		return -1;
	return 0;
}

/* log_openbsd - 1 when events OpenBSD spamd logs get its text */
int
log_openbsd(void)
{
	return log_obsd_mode;
}

/* log_jput - append n raw bytes */
static void
log_jput(struct log_jbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++, b->len++)
		if (b->len + 1 < b->size)
			b->out[b->len] = s[i];
}

/* log_jstr - append bytes as the inside of a JSON string, escaped */
static void
log_jstr(struct log_jbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			log_jput(b, esc, 2);
		} else if (c < 0x20 || c >= 0x7f) {
			/* Bytes >= 0x80 as Latin-1: the line stays ASCII
			 * and valid JSON whatever the client sent. */
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			log_jput(b, esc, 6);
		} else
			log_jput(b, s + i, 1);
	}
}

static int log_reserved(const char *, size_t);

/*
 * log_jmember - append ,"key":"value"; a message key that would clash with
 * ts/prog/pid/level/msg gets a leading '_' (fromkv)
 */
static void
log_jmember(struct log_jbuf *b, const char *k, size_t kn, const char *v,
    size_t vn, int fromkv)
{
	log_jput(b, ",\"", 2);
	if (fromkv && log_reserved(k, kn))
		log_jput(b, "_", 1);
	log_jstr(b, k, kn);
	log_jput(b, "\":\"", 3);
	log_jstr(b, v, vn);
	log_jput(b, "\"", 1);
}

/* log_kchar - may c be part of a key in key=value? */
static int
log_kchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/* log_reserved - is this key one of the members log_json_line sets? */
static int
log_reserved(const char *k, size_t kn)
{
	static const char *names[] = { "ts", "prog", "pid", "level", "msg" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == kn && memcmp(names[i], k, kn) == 0)
			return 1;
	return 0;
}

/* log_json_line - one log line as a JSON object (see log.h) */
size_t
log_json_line(char *out, size_t outsz, const char *ts, const char *prog,
    int pid, const char *level, const char *msg)
{
	struct log_jbuf b = { out, outsz, 0 };
	char words[2048];	/* the words that are not key=value */
	size_t wlen = 0;
	char num[16];
	const char *p = msg;

	log_jput(&b, "{\"ts\":\"", 7);
	log_jstr(&b, ts, strlen(ts));
	log_jput(&b, "\",\"prog\":\"", 10);
	log_jstr(&b, prog, strlen(prog));
	snprintf(num, sizeof(num), "%d", pid);
	log_jput(&b, "\",\"pid\":", 8);
	log_jput(&b, num, strlen(num));
	log_jput(&b, ",\"level\":\"", 10);
	log_jstr(&b, level, strlen(level));
	log_jput(&b, "\"", 1);

	while (*p != '\0') {
		const char *tok, *k, *v;
		size_t kn, vn;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		tok = k = p;
		while (log_kchar(*p))
			p++;
		kn = (size_t)(p - k);
		if (kn > 0 && *p == '=') {
			p++;
			if (*p == '"') {
				/* Quoted value: up to the closing quote;
				 * a backslash keeps the next byte. */
				char val[2048];

				vn = 0;
				for (p++; *p != '\0' && *p != '"'; p++) {
					if (*p == '\\' && p[1] != '\0')
						p++;
					if (vn < sizeof(val))
						val[vn++] = *p;
				}
				if (*p == '"')
					p++;
				log_jmember(&b, k, kn, val, vn, 1);
				continue;
			}
			v = p;
			while (*p != '\0' && *p != ' ')
				p++;
			vn = (size_t)(p - v);
			log_jmember(&b, k, kn, v, vn, 1);
			continue;
		}
		/* Not key=value: keep the word for "msg". */
		while (*p != '\0' && *p != ' ')
			p++;
		if (wlen > 0 && wlen < sizeof(words))
			words[wlen++] = ' ';
		for (const char *w = tok; w < p && wlen < sizeof(words); w++)
			words[wlen++] = *w;
	}
	if (wlen > 0)
		log_jmember(&b, "msg", 3, words, wlen, 0);
	log_jput(&b, "}", 1);
	if (outsz > 0)
		out[b.len < outsz ? b.len : outsz - 1] = '\0';
	return b.len;
}

/* log_level_name - the JSON "level" of a syslog priority */
static const char *
log_level_name(int pri)
{
	switch (pri) {
	case LOG_CRIT:		return "crit";
	case LOG_ERR:		return "err";
	case LOG_WARNING:	return "warning";
	case LOG_DEBUG:		return "debug";
	default:		return "info";
	}
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
	if (log_json) {
		/* Worst case every byte becomes \u00XX. */
		char jbuf[sizeof(buf) * 6 + 256];
		struct timespec ts;
		struct tm tm;
		char tbuf[48];
		size_t n;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(tbuf + n, sizeof(tbuf) - n, ".%03ldZ",
		    ts.tv_nsec / 1000000);
		log_json_line(jbuf, sizeof(jbuf), tbuf, log_ident,
		    (int)getpid(), log_level_name(pri), buf);
		if (log_foreground)
			fprintf(stderr, "%s\n", jbuf);
		else
			syslog(pri, "%s", jbuf);
	} else if (log_foreground && log_obsd_mode) {
		/* What syslog would carry as the message, nothing added:
		 * OpenBSD's -d prints its lines bare, and journald or the
		 * supervisor adds time and ident as syslogd does. */
		fprintf(stderr, "%s\n", buf);
	} else if (log_foreground) {
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

/* log_errx - an error that needs the operator */
void
log_errx(const char *fmt, ...)
{
	LOG_BODY(LOG_ERR, 0);
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

/* log_obsd - one line with OpenBSD spamd's text at its priority */
void
log_obsd(int pri, const char *fmt, ...)
{
	LOG_BODY(pri, 0);
}

/* log_vis - at most max bytes of in, made visible with flags, into out */
static char *
log_vis(const char *in, size_t inlen, size_t max, char *out, size_t outsz,
    int flags)
{
	if (inlen > max)
		inlen = max;
	strnvisx(out, outsz, in, inlen, flags);
	return out;
}

/* log_obsd_escape - client bytes for an OpenBSD-format line */
char *
log_obsd_escape(const char *in, size_t inlen, size_t max, char *out,
    size_t outsz)
{
	/* '=' and '"' stay (SRS senders hold '='); white space may not:
	 * a space could fake the " -> " between sender and recipient. */
	return log_vis(in, inlen, max, out, outsz,
	    VIS_CSTYLE | VIS_WHITE | VIS_OCTAL);
}

/* log_obsd_text - client text (a header) for an OpenBSD-format line */
char *
log_obsd_text(const char *in, size_t inlen, size_t max, char *out,
    size_t outsz)
{
	/* spaces and tabs kept, as OpenBSD logs a Subject: */
	return log_vis(in, inlen, max, out, outsz,
	    VIS_CSTYLE | VIS_OCTAL | VIS_NL);
}

/* log_escape - make client bytes safe and short for a log line */
char *
log_escape(const char *in, size_t inlen, size_t max, char *out, size_t outsz)
{
	/* VIS_SAFE off, VIS_WHITE on: a space or '=' could fake a key. */
	log_vis(in, inlen, max, out, outsz,
	    VIS_CSTYLE | VIS_WHITE | VIS_OCTAL);
	for (char *p = out; *p; p++)
		if (*p == '=' || *p == '"')
			*p = '_';
	return out;
}
