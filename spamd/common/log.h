/*
 * log.h - one log API for every program: syslog (facility daemon) or
 * stderr in the foreground. Events are one line of key=value pairs.
 */
#ifndef SPAMD_LOG_H
#define SPAMD_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>		/* LOG_INFO, ... for log_obsd */

/* log_init - log to stderr (foreground) or syslog under ident */
void	log_init(const char *ident, int foreground, int verbose);
/* log_set_verbose - change the verbosity (-v) */
void	log_set_verbose(int verbose);
/* log_verbose - the current verbosity */
int	log_verbose(void);
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_errx - an error that needs the operator (syslog LOG_ERR) */
void	log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/*
 * log_escape - make client bytes safe for a log line: non-printables,
 * spaces, '=' and '"' become \ooo or C escapes (strnvis), cut to max input
 * bytes (Postfix's %.100s habit). Returns out.
 */
char	*log_escape(const char *in, size_t inlen, size_t max, char *out,
	    size_t outsz);

/*
 * log_set_format - "kv" (default: the message as written), "json" (each
 * line one JSON object: ts, prog, pid, level, then every key=value pair of
 * the message as a string member; words that are not key=value go in
 * "msg") or "openbsd" (events OpenBSD spamd logs get its exact text
 * through log_obsd; the rest stay key=value; on stderr every line is the
 * bare message, as syslog would carry it). Returns 0, or -1 for an
 * unknown name.
 */
int	log_set_format(const char *name);
/* log_openbsd - 1 with --log-format openbsd: callers then write the
 * events OpenBSD spamd logs with log_obsd instead of key=value */
int	log_openbsd(void);
/* log_obsd - one line in OpenBSD spamd's words at syslog priority pri
 * (LOG_INFO, LOG_DEBUG, ...), written whatever the verbosity */
void	log_obsd(int pri, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/*
 * log_obsd_escape - client bytes for a log_obsd line: like log_escape
 * (strnvis, white space and control bytes escaped, cut to max input
 * bytes) but '=' and '"' kept, as OpenBSD prints addresses.
 */
char	*log_obsd_escape(const char *in, size_t inlen, size_t max, char *out,
	    size_t outsz);
/* log_obsd_text - the same for free text (a Subject:): spaces and tabs
 * kept, other control bytes escaped */
char	*log_obsd_text(const char *in, size_t inlen, size_t max, char *out,
	    size_t outsz);

/*
 * log_json_line - format one JSON log line (no newline) into out; exposed
 * for tests. Output is plain ASCII: '"', '\\', control bytes and bytes
 * >= 0x80 are escaped (\u00XX). Returns the length it needed (as
 * snprintf); out is always NUL-terminated (cut short when too small).
 */
size_t	log_json_line(char *out, size_t outsz, const char *ts,
	    const char *prog, int pid, const char *level, const char *msg);

#endif /* SPAMD_LOG_H */
