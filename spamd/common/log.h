/*
 * log.h - one log API for every program: syslog (facility daemon) or
 * stderr in the foreground. Events are one line of key=value pairs.
 */
#ifndef SPAMD_LOG_H
#define SPAMD_LOG_H

#include <stdarg.h>
#include <stddef.h>

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
 * log_set_format - "kv" (default: the message as written) or "json" (each
 * line one JSON object: ts, prog, pid, level, then every key=value pair of
 * the message as a string member; words that are not key=value go in
 * "msg"). Returns 0, or -1 for an unknown name.
 */
int	log_set_format(const char *name);

/*
 * log_json_line - format one JSON log line (no newline) into out; exposed
 * for tests. Output is plain ASCII: '"', '\\', control bytes and bytes
 * >= 0x80 are escaped (\u00XX). Returns the length it needed (as
 * snprintf); out is always NUL-terminated (cut short when too small).
 */
size_t	log_json_line(char *out, size_t outsz, const char *ts,
	    const char *prog, int pid, const char *level, const char *msg);

#endif /* SPAMD_LOG_H */
