/*
 * dnsbl_conf.c - the DNSBL zone configuration: one "zone[=codes][;message]"
 * per line of a file or per --dnsbl flag. Everything an operator can get
 * wrong is refused here, at startup or reload, with file:line and the byte
 * offset, so nothing can go wrong at connection time.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spamd/common/blacklist.h"
#include "spamd/common/dnsbl.h"

/* Longest zone: a reversed IPv6 address (64 bytes with its dots) and the
 * zone must fit a DNS name of 253 bytes. */
#define DNSBL_ZONE_LEN_MAX	(253 - 64)

/* The old "%d.%d.%d.%d" address form other gateways use. */
static const char dnsbl_old_addr[] = "%d.%d.%d.%d";

/* dnsbl_where - "file:line: " / "file: " / "" in front of an error */
static void
dnsbl_where(char *buf, size_t bufsz, const char *file, int line)
{
	if (file == NULL)
		buf[0] = '\0';
	else if (line > 0)
		snprintf(buf, bufsz, "%s:%d: ", file, line);
	else
		snprintf(buf, bufsz, "%s: ", file);
}

/* dnsbl_translate_msg - operator message -> bl_expand template */
int
dnsbl_translate_msg(const char *msg, size_t len, char *out, size_t outsz,
    char *err, size_t errsz)
{
	const unsigned char *m = (const unsigned char *)msg;
	size_t i, o = 0, oldlen = sizeof(dnsbl_old_addr) - 1;
	const char *what = NULL;
	char tmp[128];

	if (outsz > BL_MSG_MAX)
		outsz = BL_MSG_MAX;
	for (i = 0; i < len; i++) {
		/* every step below writes at most 2 bytes */
		if (o + 2 >= outsz) {
			what = "message too long";
			break;
		}
		if (m[i] == '%') {
			if (i + 1 < len && (m[i + 1] == 'A' || m[i + 1] == '%')) {
				out[o++] = '%';
				out[o++] = (char)m[++i];
			} else if (len - i >= oldlen &&
			    memcmp(m + i, dnsbl_old_addr, oldlen) == 0) {
				out[o++] = '%';
				out[o++] = 'A';
				i += oldlen - 1;
			} else {
				what = i + 1 == len ?
				    "lone '%' at end of message" :
				    "bad '%' sequence in message (only %A, "
				    "%d.%d.%d.%d, %%)";
				break;
			}
		} else if (m[i] == '\\') {
			if (i + 1 < len && (m[i + 1] == 'n' || m[i + 1] == '"' ||
			    m[i + 1] == '\\')) {
				out[o++] = '\\';
				out[o++] = (char)m[++i];
			} else {
				what = i + 1 == len ?
				    "lone '\\' at end of message" :
				    "bad escape in message (only \\n \\\" \\\\)";
				break;
			}
		} else if ((m[i] < 0x20 && m[i] != '\t') || m[i] == 0x7f) {
			/* why: raw CR/LF would let the message forge replies */
			what = "control character in message";
			break;
		} else
			out[o++] = (char)m[i];
	}
	if (what != NULL) {
		snprintf(err, errsz, "%s at byte %zu", what, i);
		return -1;
	}
	out[o] = '\0';
	/* belt and braces: the expander's own check must agree */
	if (bl_check_template(out, tmp, sizeof(tmp)) == -1) {
		snprintf(err, errsz, "message refused: %s", tmp);
		return -1;
	}
	return 0;
}

/* dnsbl_code - a strict dotted quad (no leading zeros, no shorthand) */
static int
dnsbl_code(const char *s, size_t n, uint32_t *out)
{
	unsigned long part;
	size_t i, start = 0, k;
	int dots = 0;

	*out = 0;
	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (i == start || i - start > 3 ||
		    (i - start > 1 && s[start] == '0'))
			return -1;
		part = 0;
		for (k = start; k < i; k++) {
			if (s[k] < '0' || s[k] > '9')
				return -1;
			part = part * 10 + (unsigned long)(s[k] - '0');
		}
		if (part > 255)
			return -1;
		*out = (*out << 8) | (uint32_t)part;
		if (i < n && ++dots > 3)
			return -1;
		start = i + 1;
	}
	return dots == 3 ? 0 : -1;
}

/* dnsbl_zone_name - check and copy a zone name (lower-cased, no final dot);
 * NULL or the reason */
static const char *
dnsbl_zone_name(const char *s, size_t n, char *out, size_t *bad)
{
	size_t i, label = 0;

	*bad = 0;
	if (n > 0 && s[n - 1] == '.')
		n--;		/* a fully-qualified "zone." is the same zone */
	if (n == 0)
		return "empty zone name";
	if (n > DNSBL_ZONE_LEN_MAX) {
		*bad = DNSBL_ZONE_LEN_MAX;
		return "zone name too long (at most 189 bytes)";
	}
	for (i = 0; i < n; i++) {
		*bad = i;
		if (s[i] == '.') {
			if (label == 0)
				return "empty label in zone name";
			label = 0;
		} else if (isalnum((unsigned char)s[i]) || s[i] == '-' ||
		    s[i] == '_') {
			if (++label > 63)
				return "label longer than 63 bytes in zone name";
		} else
			return "bad character in zone name";
		out[i] = (char)tolower((unsigned char)s[i]);
	}
	out[n] = '\0';
	return NULL;
}

/* dnsbl_spec_parse - parse "zone[=codes][;message]" */
int
dnsbl_spec_parse(const char *spec, const char *file, int line,
    struct dnsbl_spec *out, char *err, size_t errsz)
{
	char where[512], why[160], *tmpl = NULL;
	const char *what = NULL, *zend, *cend, *p, *c;
	size_t len, start, bad = 0, n;
	char defmsg[DNSBL_NAME_MAX + 64];

	memset(out, 0, sizeof(*out));
	dnsbl_where(where, sizeof(where), file, line);
	len = strlen(spec);
	if (len >= DNSBL_LINE_MAX) {
		snprintf(err, errsz, "%sline too long (%zu bytes, at most %d)",
		    where, len, DNSBL_LINE_MAX - 1);
		return -1;
	}
	/* surrounding blanks (and a CR from a DOS file) are not part of it */
	for (start = 0; start < len && (spec[start] == ' ' ||
	    spec[start] == '\t'); start++)
		;
	while (len > start && (spec[len - 1] == ' ' || spec[len - 1] == '\t' ||
	    spec[len - 1] == '\r' || spec[len - 1] == '\n'))
		len--;

	zend = spec + start;
	while (zend < spec + len && *zend != '=' && *zend != ';')
		zend++;
	/* blanks before '=' or ';' are not part of the zone either */
	for (p = zend; p > spec + start && (p[-1] == ' ' || p[-1] == '\t'); p--)
		;
	if ((what = dnsbl_zone_name(spec + start, (size_t)(p - spec) - start,
	    out->zone, &bad)) != NULL) {
		bad += start;
		goto fail;
	}

	cend = zend;
	if (zend < spec + len && *zend == '=') {
		cend = memchr(zend, ';', (size_t)(spec + len - zend));
		if (cend == NULL)
			cend = spec + len;
		for (p = zend + 1;; p = c + 1) {
			c = memchr(p, ',', (size_t)(cend - p));
			if (c == NULL)
				c = cend;
			n = (size_t)(c - p);
			bad = (size_t)(p - spec);
			if (n == 0) {
				what = "empty code";
				goto fail;
			}
			if (out->ncodes == DNSBL_MAX_CODES) {
				what = "too many codes (at most 16)";
				goto fail;
			}
			if (dnsbl_code(p, n, &out->codes[out->ncodes]) == -1) {
				what = "bad code address (want a.b.c.d)";
				goto fail;
			}
			out->ncodes++;
			if (c == cend)
				break;
		}
	}

	if ((tmpl = malloc(BL_MSG_MAX)) == NULL) {
		snprintf(err, errsz, "%sout of memory", where);
		return -1;
	}
	if (cend < spec + len) {		/* *cend == ';' */
		p = cend + 1;
		if (dnsbl_translate_msg(p, (size_t)(spec + len - p), tmpl,
		    BL_MSG_MAX, why, sizeof(why)) == -1) {
			/* why: offsets from the start of the whole spec */
			const char *at = strstr(why, " at byte ");

			if (at != NULL && sscanf(at, " at byte %zu", &n) == 1) {
				snprintf(err, errsz, "%s%.*s at byte %zu", where,
				    (int)(at - why), why,
				    n + (size_t)(p - spec));
			} else
				snprintf(err, errsz, "%s%s", where, why);
			free(tmpl);
			return -1;
		}
	} else
		tmpl[0] = '\0';
	if (tmpl[0] == '\0') {
		/* zone names hold no '%' or '\', so this is a valid template */
		snprintf(defmsg, sizeof(defmsg), "Blocked: %%A is listed at %s",
		    out->zone);
		strlcpy(tmpl, defmsg, BL_MSG_MAX);
	}
	out->msg = tmpl;
	return 0;
fail:
	snprintf(err, errsz, "%s%s at byte %zu", where, what, bad);
	return -1;
}

/* dnsbl_spec_clear - free what a parsed spec holds */
void
dnsbl_spec_clear(struct dnsbl_spec *spec)
{
	free(spec->msg);
	spec->msg = NULL;
}

/* conf_getline - one line of f into buf (NUL-terminated, '\n' kept);
 * its length, 0 at the end, -1 on a read error, -2 if longer than
 * bufsz - 1 bytes (getline would grow without bound on a file with no
 * newline, e.g. /dev/zero) */
static ssize_t
conf_getline(FILE *f, char *buf, size_t bufsz)
{
	size_t n = 0;
	int c = 0;

	while (c != '\n' && (c = getc(f)) != EOF) {
		if (n == bufsz - 1)
			return -2;
		buf[n++] = (char)c;
	}
	if (c == EOF && ferror(f))
		return -1;
	buf[n] = '\0';
	return (ssize_t)n;
}

/* dnsbl_conf_parse - parse zone lines from f (named path), all or nothing */
static int
dnsbl_conf_parse(FILE *f, const char *path, struct dnsbl_spec *out, int max,
    int *n, char *err, size_t errsz)
{
	/* room for DNSBL_LINE_MAX and "\r\n": longer is an error here,
	 * shorter but too long one from dnsbl_spec_parse */
	char buf[DNSBL_LINE_MAX + 3], *s;
	size_t total = 0;
	ssize_t got;
	int line = 0, i, rc = -1;
	int first[DNSBL_MAX_ZONES];

	*n = 0;
	if (max > DNSBL_MAX_ZONES)
		max = DNSBL_MAX_ZONES;
	for (;;) {
		errno = 0;
		if ((got = conf_getline(f, buf, sizeof(buf))) == 0)
			break;
		if (got == -1) {
			snprintf(err, errsz, "%s:%d: read: %s", path,
			    line + 1, strerror(errno ? errno : EIO));
			goto out;
		}
		line++;
		if (got == -2) {
			snprintf(err, errsz, "%s:%d: line too long (more "
			    "than %zu bytes)", path, line, sizeof(buf) - 2);
			goto out;
		}
		if ((total += (size_t)got) > DNSBL_FILE_MAX) {
			snprintf(err, errsz, "%s:%d: file larger than %u "
			    "bytes", path, line, DNSBL_FILE_MAX);
			goto out;
		}
		if (strlen(buf) != (size_t)got) {
			snprintf(err, errsz, "%s:%d: NUL byte in line", path,
			    line);
			goto out;
		}
		for (s = buf; *s == ' ' || *s == '\t'; s++)
			;
		if (*s == '#' || *s == '\0' || *s == '\n' ||
		    (*s == '\r' && s[1] == '\n'))
			continue;
		if (*n == max) {
			snprintf(err, errsz, "%s:%d: too many zones (at most %d)",
			    path, line, max);
			goto out;
		}
		if (dnsbl_spec_parse(buf, path, line, &out[*n], err,
		    errsz) == -1)
			goto out;
		for (i = 0; i < *n; i++) {
			if (strcmp(out[i].zone, out[*n].zone) == 0) {
				snprintf(err, errsz, "%s:%d: zone %s listed "
				    "twice (first at line %d)", path, line,
				    out[*n].zone, first[i]);
				dnsbl_spec_clear(&out[*n]);
				goto out;
			}
		}
		first[(*n)++] = line;
	}
	rc = 0;
out:
	if (rc == -1) {
		for (i = 0; i < *n; i++)
			dnsbl_spec_clear(&out[i]);
		*n = 0;
	}
	return rc;
}

/* dnsbl_conf_read - parse a whole zone file, all or nothing */
int
dnsbl_conf_read(const char *path, struct dnsbl_spec *out, int max, int *n,
    char *err, size_t errsz)
{
	FILE *f;
	int rc;

	*n = 0;
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = dnsbl_conf_parse(f, path, out, max, n, err, errsz);
	fclose(f);
	return rc;
}

/* dnsbl_conf_read_text - the same for a zone file's text in memory */
int
dnsbl_conf_read_text(const char *name, const char *text, size_t len,
    struct dnsbl_spec *out, int max, int *n, char *err, size_t errsz)
{
	FILE *f;
	int rc;

	*n = 0;
	if (len == 0)
		return 0;	/* fmemopen refuses an empty buffer */
	if ((f = fmemopen((void *)(uintptr_t)text, len, "r")) == NULL) {
		snprintf(err, errsz, "%s: %s", name, strerror(errno));
		return -1;
	}
	rc = dnsbl_conf_parse(f, name, out, max, n, err, errsz);
	fclose(f);
	return rc;
}

/*
 * dnsbl_conf_slurp - read a zone file whole and check it: the text for
 * dnsbl_load_text in a process that cannot open the file (the chrooted
 * engine). Refuses files over max bytes and NUL bytes (the text travels
 * as a msg.h string). malloc'd text (NUL-terminated, *len without it),
 * or NULL with err "path: what" / "path:line: what".
 */
char *
dnsbl_conf_slurp(const char *path, size_t max, size_t *len, char *err,
    size_t errsz)
{
	struct dnsbl_spec specs[DNSBL_MAX_ZONES];
	FILE *f;
	char *text, *nul;
	size_t n = 0, got;
	int i, nspec;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((text = malloc(max + 1)) == NULL) {
		fclose(f);
		snprintf(err, errsz, "%s: out of memory", path);
		return NULL;
	}
	/* read one byte more than allowed, to tell "too big" */
	while (n <= max && (got = fread(text + n, 1, max + 1 - n, f)) > 0)
		n += got;
	if (ferror(f)) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (n > max) {
		snprintf(err, errsz, "%s: larger than %zu bytes", path, max);
		goto fail;
	}
	if ((nul = memchr(text, '\0', n)) != NULL) {
		snprintf(err, errsz, "%s: NUL byte at offset %zu", path,
		    (size_t)(nul - text));
		goto fail;
	}
	text[n] = '\0';
	if (dnsbl_conf_read_text(path, text, n, specs, DNSBL_MAX_ZONES,
	    &nspec, err, errsz) == -1)
		goto fail;
	for (i = 0; i < nspec; i++)
		dnsbl_spec_clear(&specs[i]);
	fclose(f);
	*len = n;
	return text;
fail:
	fclose(f);
	free(text);
	return NULL;
}
