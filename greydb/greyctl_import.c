/*
 * greyctl_import.c - greyctl import: spamdb dump lines on stdin into the
 * store (migration from an OpenBSD host, or a greyctl dump elsewhere).
 *
 * Lines are the four spamdb forms:
 *   GREY|ip|helo|from|to|first|pass|expire|bcount|pcount   (10 fields)
 *   WHITE|ip|||first|pass|expire|bcount|pcount             (9 fields)
 *   TRAPPED|ip|expire                                       (3 fields)
 *   SPAMTRAP|address                                        (2 fields)
 * Blank lines and lines starting with '#' are skipped; a trailing CR is
 * dropped. Every line is checked first (field count for its type, numbers,
 * address, '@' in a spamtrap, lengths), while the input is kept in a
 * temporary file; only when all lines are good is the store opened and
 * written, so a bad line changes nothing. A field holding '|' cannot be
 * told from a field separator: such a line has the wrong field count.
 * Keys are normalised by gdb_put (canonical ip, mail addresses without <>
 * and lowercased), as the daemon stores them.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "greydb/greyctl.h"
#include "spamd/common/sandbox.h"

#define IMPORT_LINE_MAX	4096	/* a GREY line is at most ~3,300 bytes */
#define IMPORT_FIELDS	10
#define IMPORT_REPORT	20	/* bad lines reported one by one */

/* One input line being read. */
struct import_line {
	char	buf[IMPORT_LINE_MAX + 1];
	size_t	len;
	int	toolong;	/* more bytes than IMPORT_LINE_MAX */
	int	nul;		/* a NUL byte in the line */
};

/* Counts by type. */
struct import_count {
	long	grey, white, trapped, spamtrap;
};

/* read_line - the next line of fp, without its newline; 0 at EOF */
static int
read_line(FILE *fp, FILE *copy, struct import_line *l)
{
	int c, any = 0;

	l->len = 0;
	l->toolong = l->nul = 0;
	while ((c = getc(fp)) != EOF) {
		any = 1;
		if (copy != NULL)
			putc(c, copy);
		if (c == '\n')
			break;
		if (c == '\0')
			l->nul = 1;
		if (l->len < IMPORT_LINE_MAX)
			l->buf[l->len++] = (char)c;
		else
			l->toolong = 1;
	}
	/* A last line without a newline still counts; the copy gets one so
	 * the second pass reads the same lines. */
	if (any && c == EOF && copy != NULL)
		putc('\n', copy);
	l->buf[l->len] = '\0';
	if (l->len > 0 && l->buf[l->len - 1] == '\r')
		l->buf[--l->len] = '\0';
	return any;
}

/* parse_num - a decimal number in [min, max], digits and an optional
 * leading '-' only; a message in why if not */
static int
parse_num(const char *name, const char *s, long long min, long long max,
    long long *out, char *why, size_t whysz)
{
	char safe[40], *end;
	long long v;

	if (!((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' &&
	    s[1] <= '9'))) {
		snprintf(why, whysz, "%s '%s': not a number", name,
		    greyctl_safe(s, safe, sizeof(safe)));
		return -1;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0') {
		snprintf(why, whysz, "%s '%s': not a number", name,
		    greyctl_safe(s, safe, sizeof(safe)));
		return -1;
	}
	if (errno == ERANGE || v < min || v > max) {
		snprintf(why, whysz, "%s '%s': out of range %lld..%lld", name,
		    greyctl_safe(s, safe, sizeof(safe)), min, max);
		return -1;
	}
	*out = v;
	return 0;
}

/* parse_ip - a field that must be an IPv4 or IPv6 address */
static int
parse_ip(const char *s, struct gdb_rec *r, char *why, size_t whysz)
{
	char canon[GDB_ADDR_MAX], safe[60];

	if (gdb_addr_canon(s, canon) == -1) {
		snprintf(why, whysz, "address '%s': not an IPv4 or IPv6 "
		    "address", greyctl_safe(s, safe, sizeof(safe)));
		return -1;
	}
	strlcpy(r->ip, s, sizeof(r->ip));
	return 0;
}

/* parse_text - a text field that must fit its record field */
static int
parse_text(const char *name, const char *s, char *dst, size_t dstsz,
    char *why, size_t whysz)
{
	if (strlen(s) >= dstsz) {
		snprintf(why, whysz, "%s longer than %zu bytes", name,
		    dstsz - 1);
		return -1;
	}
	strlcpy(dst, s, dstsz);
	return 0;
}

/* parse_times - first|pass|expire|bcount|pcount from f[0..4] */
static int
parse_times(char **f, long long pmin, struct gdb_rec *r, char *why,
    size_t whysz)
{
	long long v[5];

	if (parse_num("first", f[0], 0, INT64_MAX, &v[0], why, whysz) == -1 ||
	    parse_num("pass", f[1], 0, INT64_MAX, &v[1], why, whysz) == -1 ||
	    parse_num("expire", f[2], 0, INT64_MAX, &v[2], why, whysz) == -1 ||
	    parse_num("bcount", f[3], 0, INT32_MAX, &v[3], why, whysz) == -1 ||
	    parse_num("pcount", f[4], pmin, INT32_MAX, &v[4], why, whysz) == -1)
		return -1;
	r->first = v[0];
	r->pass = v[1];
	r->expire = v[2];
	r->bcount = (int32_t)v[3];
	r->pcount = (int32_t)v[4];
	return 0;
}

/* parse_fields - check the field count of type; a message if wrong */
static int
parse_fields(const char *type, int n, int want, char *why, size_t whysz)
{
	if (n == want)
		return 0;
	snprintf(why, whysz, "%s line needs %d '|'-separated fields, has %d",
	    type, want, n);
	return -1;
}

/* parse_line - one dump line into r; 0 ok, 1 skipped, -1 with why */
static int
parse_line(char *s, int64_t now, struct gdb_rec *r, char *why,
    size_t whysz)
{
	char *f[IMPORT_FIELDS + 1], *p, safe[40];
	int n = 0;
	long long v;

	memset(r, 0, sizeof(*r));
	if (*s == '\0' || *s == '#')
		return 1;
	/* Split on every '|'; more fields than any type has is an error. */
	for (p = s; n <= IMPORT_FIELDS; n++) {
		f[n] = p;
		if ((p = strchr(p, '|')) == NULL) {
			n++;
			break;
		}
		*p++ = '\0';
	}
	if (p != NULL) {
		/* Stopped with more separators left. */
		n = IMPORT_FIELDS + 1 + 1;
		while ((p = strchr(p, '|')) != NULL) {
			p++;
			n++;
		}
	}
	if (strcmp(f[0], "GREY") == 0) {
		r->type = GDB_GREY;
		/* OpenBSD marks a tuple that hit a spamtrap with pcount -1
		 * until its scanner traps the ip, so -1 is allowed here. */
		return parse_fields("GREY", n, 10, why, whysz) == -1 ||
		    parse_ip(f[1], r, why, whysz) == -1 ||
		    parse_text("helo", f[2], r->helo, sizeof(r->helo), why,
		    whysz) == -1 ||
		    parse_text("from", f[3], r->from, sizeof(r->from), why,
		    whysz) == -1 ||
		    parse_text("to", f[4], r->to, sizeof(r->to), why,
		    whysz) == -1 ||
		    parse_times(f + 5, -1, r, why, whysz) == -1 ? -1 : 0;
	}
	if (strcmp(f[0], "WHITE") == 0) {
		r->type = GDB_WHITE;
		if (parse_fields("WHITE", n, 9, why, whysz) == -1 ||
		    parse_ip(f[1], r, why, whysz) == -1)
			return -1;
		if (*f[2] != '\0' || *f[3] != '\0') {
			snprintf(why, whysz, "WHITE line: fields 3 and 4 "
			    "must be empty");
			return -1;
		}
		return parse_times(f + 4, 0, r, why, whysz);
	}
	if (strcmp(f[0], "TRAPPED") == 0) {
		r->type = GDB_TRAPPED;
		if (parse_fields("TRAPPED", n, 3, why, whysz) == -1 ||
		    parse_ip(f[1], r, why, whysz) == -1 ||
		    parse_num("expire", f[2], 0, INT64_MAX, &v, why,
		    whysz) == -1)
			return -1;
		/* The line carries no first/pass: they become the time the
		 * record arrived here. */
		r->first = r->pass = now;
		r->expire = v;
		r->pcount = GDB_PCOUNT_TRAPPED;
		return 0;
	}
	if (strcmp(f[0], "SPAMTRAP") == 0) {
		r->type = GDB_SPAMTRAP;
		if (parse_fields("SPAMTRAP", n, 2, why, whysz) == -1 ||
		    parse_text("spamtrap address", f[1], r->to, sizeof(r->to),
		    why, whysz) == -1)
			return -1;
		if (strchr(f[1], '@') == NULL) {
			snprintf(why, whysz, "spamtrap address '%s': no '@' "
			    "in it", greyctl_safe(f[1], safe, sizeof(safe)));
			return -1;
		}
		r->first = r->pass = now;
		r->pcount = GDB_PCOUNT_SPAMTRAP;
		return 0;
	}
	snprintf(why, whysz, "unknown record type '%s' (GREY, WHITE, "
	    "TRAPPED or SPAMTRAP)", greyctl_safe(f[0], safe, sizeof(safe)));
	return -1;
}

/* check_line - parse_line plus the line-level faults; a message in why */
static int
check_line(struct import_line *l, int64_t now, struct gdb_rec *r,
    char *why, size_t whysz)
{
	if (l->toolong) {
		snprintf(why, whysz, "line longer than %d bytes",
		    IMPORT_LINE_MAX);
		return -1;
	}
	if (l->nul) {
		snprintf(why, whysz, "NUL byte in line");
		return -1;
	}
	return parse_line(l->buf, now, r, why, whysz);
}

/* greyctl_import_line - check one line as the import does (for tests and
 * the fuzz target); the line without its newline, any bytes */
int
greyctl_import_line(const char *line, size_t len, int64_t now,
    struct gdb_rec *r, char *why, size_t whysz)
{
	struct import_line *l;
	int ret;

	if ((l = malloc(sizeof(*l))) == NULL) {
		snprintf(why, whysz, "%s", strerror(errno));
		return -1;
	}
	/* as read_line builds it: cut, flagged, a trailing CR dropped */
	l->toolong = len > IMPORT_LINE_MAX;
	l->len = l->toolong ? IMPORT_LINE_MAX : len;
	memcpy(l->buf, line, l->len);
	l->nul = memchr(l->buf, '\0', l->len) != NULL;
	l->buf[l->len] = '\0';
	if (l->len > 0 && l->buf[l->len - 1] == '\r')
		l->buf[--l->len] = '\0';
	ret = check_line(l, now, r, why, whysz);
	free(l);
	return ret;
}

/* count - add one record to the counts */
static void
count(struct import_count *c, enum gdb_type type)
{
	switch (type) {
	case GDB_GREY:
		c->grey++;
		break;
	case GDB_WHITE:
		c->white++;
		break;
	case GDB_TRAPPED:
		c->trapped++;
		break;
	case GDB_SPAMTRAP:
		c->spamtrap++;
		break;
	}
}

/* write_all - the second pass: every (checked) line of fp into the store */
static int
write_all(const struct greyctl *ctl, FILE *fp, const char *name,
    struct import_count *c)
{
	struct import_line *l;
	struct gdb_rec r;
	struct gdb_err err;
	struct gdb *db;
	char why[256];
	long lineno = 0, written = 0;
	int ret = 0;

	if ((l = malloc(sizeof(*l))) == NULL) {
		greyctl_warnx("import: %s", strerror(errno));
		return 1;
	}
	/* Group commit, then one flush before we report: as durable on
	 * return as a synchronous commit per record, without one fsync per
	 * line of a large dump. */
	if (greyctl_open(ctl, GREYCTL_CREATE, 1, &db) == -1) {
		free(l);
		return 1;
	}
	while (ret == 0 && !greyctl_stopped() && read_line(fp, NULL, l)) {
		lineno++;
		switch (check_line(l, ctl->now, &r, why, sizeof(why))) {
		case 1:
			continue;
		case -1:
			/* The file changed under us; it was checked. */
			greyctl_warnx("%s:%ld: %s", name, lineno, why);
			ret = 1;
			continue;
		}
		if (gdb_put(db, &r, &err) == -1) {
			greyctl_warnx("%s:%ld: %s", name, lineno, err.msg);
			ret = 1;
			continue;
		}
		written++;
		count(c, r.type);
	}
	/* Whatever was written is flushed, interrupted or not. */
	if (gdb_flush(db, &err) == -1) {
		greyctl_warnx("import: %s", err.msg);
		ret = 1;
	}
	if (ret != 0 || greyctl_stopped())
		greyctl_warnx("import: stopped at %s:%ld after writing %ld "
		    "records", name, lineno, written);
	if (greyctl_stopped())
		ret = 1;
	gdb_close(db);
	free(l);
	return ret;
}

/* greyctl_import - check every line of in, then write them all */
int
greyctl_import(const struct greyctl *ctl, FILE *in, const char *name)
{
	struct import_line *l;
	struct import_count c;
	struct gdb_rec r;
	char why[256];
	long lineno = 0, bad = 0;
	FILE *tmp;
	int ret;

	memset(&c, 0, sizeof(c));
	if ((l = malloc(sizeof(*l))) == NULL) {
		greyctl_warnx("import: %s", strerror(errno));
		return 1;
	}
	/* The input is kept for the second pass: stdin may be a pipe. */
	if ((tmp = tmpfile()) == NULL) {
		greyctl_warnx("import: temporary file: %s", strerror(errno));
		free(l);
		return 1;
	}
	/* The dump is outside input: read it under the filter already.
	 * The store is opened after (nothing is made for a bad dump), so
	 * the filter allows opening and making it. */
	if (ctl->sandbox != NULL && ctl->sandbox(ctl, SANDBOX_GC_OPEN) ==
	    -1) {
		fclose(tmp);
		free(l);
		return 1;
	}
	while (!greyctl_stopped() && read_line(in, tmp, l)) {
		lineno++;
		if (check_line(l, ctl->now, &r, why, sizeof(why)) != -1)
			continue;
		if (++bad <= IMPORT_REPORT)
			greyctl_warnx("%s:%ld: %s", name, lineno, why);
	}
	free(l);
	if (greyctl_stopped()) {
		/* main says which signal; nothing was written. */
		fclose(tmp);
		return 1;
	}
	if (ferror(in)) {
		greyctl_warnx("%s: read: %s", name, strerror(errno));
		fclose(tmp);
		return 1;
	}
	if (fflush(tmp) == EOF || ferror(tmp)) {
		greyctl_warnx("import: temporary file: %s", strerror(errno));
		fclose(tmp);
		return 1;
	}
	if (bad > 0) {
		if (bad > IMPORT_REPORT)
			greyctl_warnx("%s: %ld more bad lines", name,
			    bad - IMPORT_REPORT);
		greyctl_warnx("import: nothing imported: %ld bad line%s of %ld",
		    bad, bad == 1 ? "" : "s", lineno);
		fclose(tmp);
		return 1;
	}
	rewind(tmp);
	ret = write_all(ctl, tmp, name, &c);
	fclose(tmp);
	if (ret != 0)
		return ret;
	fprintf(ctl->out, "import: %ld grey, %ld white, %ld trapped, "
	    "%ld spamtrap\n", c.grey, c.white, c.trapped, c.spamtrap);
	return 0;
}
