/*
 * setup_conf.c - spamd.conf in getcap(3) form, as OpenBSD spamd-setup
 * reads it:
 *
 *   all:\
 *	:dul:mytraps:nowhite:
 *   dul:\
 *	:black:\
 *	:msg="Your address %A is a dial-up address\n":\
 *	:method=file:\
 *	:file=/etc/mail/dul.txt:
 *
 * A record is one logical line (a trailing '\' joins the next line, whose
 * leading blanks are dropped); lines starting with '#' and blank lines
 * between records are comments. Fields are split on ':'; the first holds
 * the names (name|alias|...). A field is "cap" (boolean), "cap=value"
 * (string, getcap escapes: \E \n \r \t \b \f \ooo, \C for a colon
 * and ^X; also \: for a colon, which getcap does not read) or "cap@"
 * (cancelled). "tc=name" inserts another record's fields in its place;
 * the first occurrence of a capability wins. Beyond getcap, a value that
 * starts with '"' runs to the closing unescaped '"', so a message may hold
 * ':' (the nixspam entry of OpenBSD's own sample has "http://" in it).
 * Every error names file, line and entry. An error in one list's entry
 * costs that list only (setup_lconf.error); the file as a whole fails
 * only when it cannot be read, has no all: or a NUL byte, or a record
 * runs past SETUP_REC_MAX.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spamd/setup/setup.h"

#define SETUP_REC_MAX	(64 * 1024)	/* one record, continuations joined */

/* One field of a record, with the line it starts on. */
struct setup_field {
	char		*text;
	unsigned long	 line;
};

/* One record: its fields (fields[0] holds the names). */
struct setup_rec {
	struct setup_field	*f;
	size_t			 n;
	unsigned long		 line;	/* where the record starts */
	char			*broken;	/* why it cannot be used, or NULL */
};

/* The parse: every record of the file, and where errors go. */
struct setup_cap {
	struct setup_rec	*rec;
	size_t			 n;
	const char		*path;
	char			*err;
	size_t			 errsz;
};

/* An expanded entry: pointers into records' fields, tc= resolved. */
struct setup_ent {
	const struct setup_field **f;
	size_t			   n, cap;
	const char		  *name;
	unsigned long		   line;
};

/* setup_method_name - the name of a method */
const char *
setup_method_name(enum setup_method m)
{
	switch (m) {
	case SETUP_M_FILE:
		return "file";
	case SETUP_M_EXEC:
		return "exec";
	case SETUP_M_HTTP:
		return "http";
	case SETUP_M_HTTPS:
		return "https";
	}
	return "?";
}

/* setup_cerr - "path:line: entry 'name': what" into the parse's err */
static int __attribute__((format(printf, 4, 5)))
setup_cerr(struct setup_cap *c, unsigned long line, const char *entry,
    const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (entry != NULL)
		snprintf(c->err, c->errsz, "%s:%lu: entry '%s': %s", c->path,
		    line, entry, what);
	else
		snprintf(c->err, c->errsz, "%s:%lu: %s", c->path, line, what);
	return -1;
}

/* setup_rec_name - a record's first name (fields[0] up to '|') */
static void
setup_rec_name(const struct setup_rec *r, char *out, size_t outsz)
{
	size_t n = strcspn(r->f[0].text, "|");

	snprintf(out, outsz, "%.*s", (int)n, r->f[0].text);
}

/* setup_add_field - append a field (copied) to a record */
static int
setup_add_field(struct setup_rec *r, const char *s, size_t n,
    unsigned long line)
{
	struct setup_field *f;

	if ((f = reallocarray(r->f, r->n + 1, sizeof(*f))) == NULL)
		return -1;
	r->f = f;
	if ((f[r->n].text = strndup(s, n)) == NULL)
		return -1;
	f[r->n].line = line;
	r->n++;
	return 0;
}

/*
 * setup_split - split one logical record into fields; lines[i] is the
 * physical line of byte i. -1 with err (unterminated quote: the record
 * is unusable), -2 when out of memory.
 */
static int
setup_split(struct setup_cap *c, const char *rec, size_t len,
    const unsigned long *lines, struct setup_rec *out)
{
	size_t i = 0, start, fs;
	char name[BL_TAG_MAX];
	int quoted;

	out->line = lines[0];
	while (i <= len) {
		/* leading blanks of a field carry no meaning (continuation
		 * indent); blank-only fields are skipped */
		while (i < len && (rec[i] == ' ' || rec[i] == '\t'))
			i++;
		start = fs = i;
		quoted = 0;
		for (; i < len; i++) {
			if (rec[i] == '\\' && i + 1 < len) {
				i++;
				continue;
			}
			if (quoted) {
				if (rec[i] == '"')
					quoted = 0;
				continue;
			}
			if (rec[i] == '"' && i > fs && rec[i - 1] == '=')
				quoted = 1;
			else if (rec[i] == ':')
				break;
		}
		if (quoted) {
			if (out->n > 0)
				setup_rec_name(out, name, sizeof(name));
			else
				snprintf(name, sizeof(name), "?");
			return setup_cerr(c, lines[start], name,
			    "unterminated quote in '%.*s'",
			    (int)strcspn(rec + start, "="), rec + start);
		}
		/* the names field is kept even if empty, to report it */
		if (i > start || out->n == 0)
			if (setup_add_field(out, rec + start, i - start,
			    lines[start]) == -1)
				return setup_cerr(c, lines[0], NULL,
				    "out of memory") - 1;
		i++;
	}
	return 0;
}

/* setup_cap_free - free every record */
static void
setup_cap_free(struct setup_cap *c)
{
	size_t i, j;

	for (i = 0; i < c->n; i++) {
		for (j = 0; j < c->rec[i].n; j++)
			free(c->rec[i].f[j].text);
		free(c->rec[i].f);
		free(c->rec[i].broken);
	}
	free(c->rec);
	c->rec = NULL;
	c->n = 0;
}

/* setup_cap_read - cut the file into logical records and split each */
static int
setup_cap_read(struct setup_cap *c, const char *buf, size_t len)
{
	struct setup_buf rec = { 0 };
	unsigned long *lines = NULL, lineno = 0;
	size_t nlines = 0, caplines = 0, pos = 0, n;
	const char *p, *nl;
	int cont = 0, ret = -1;
	struct setup_rec *r;

	if (memchr(buf, '\0', len) != NULL) {
		const char *z = memchr(buf, '\0', len);
		unsigned long l = 1;

		for (p = buf; p < z; p++)
			l += *p == '\n';
		return setup_cerr(c, l, NULL, "NUL byte in file");
	}
	while (pos < len || cont) {
		if (pos >= len) {
			n = 0;
			p = buf + len;
		} else {
			p = buf + pos;
			nl = memchr(p, '\n', len - pos);
			n = nl != NULL ? (size_t)(nl - p) : len - pos;
			pos += n + 1;
		}
		lineno++;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (!cont) {
			size_t k = 0;

			while (k < n && (p[k] == ' ' || p[k] == '\t'))
				k++;
			if (k == n || p[k] == '#')
				continue;
		} else {
			/* continuation: its indent is dropped */
			while (n > 0 && (*p == ' ' || *p == '\t')) {
				p++;
				n--;
			}
		}
		cont = n > 0 && p[n - 1] == '\\' &&
		    (n < 2 || p[n - 2] != '\\');
		if (cont)
			n--;
		if (setup_buf_add(&rec, p, n) == -1)
			goto nomem;
		/* Bound a record (and the line-number map kept per byte of
		 * it): a run of continuation lines must not grow without end. */
		if (rec.len > SETUP_REC_MAX) {
			setup_cerr(c, lineno, NULL, "record longer than %d "
			    "bytes (continuation lines joined)", SETUP_REC_MAX);
			goto out;
		}
		if (rec.len + 1 > caplines) {
			unsigned long *nlp;
			size_t want = rec.len + 1 + 256;

			if ((nlp = reallocarray(lines, want,
			    sizeof(*lines))) == NULL)
				goto nomem;
			lines = nlp;
			caplines = want;
		}
		for (; nlines < rec.len; nlines++)
			lines[nlines] = lineno;
		lines[rec.len] = lineno;	/* the end, for empty fields */
		if (cont && pos < len)
			continue;
		if (cont) {
			/* a '\' on the last line: the record simply ends */
			cont = 0;
		}
		if ((r = reallocarray(c->rec, c->n + 1, sizeof(*r))) == NULL)
			goto nomem;
		c->rec = r;
		memset(&r[c->n], 0, sizeof(r[c->n]));
		c->n++;
		switch (setup_split(c, rec.p, rec.len, lines, &r[c->n - 1])) {
		case 0:
			break;
		case -1:
			/* why: one bad record costs the lists that use it,
			 * not every list; the error waits for them */
			if ((r[c->n - 1].broken = strdup(c->err)) == NULL)
				goto nomem;
			c->err[0] = '\0';
			break;
		default:
			goto out;
		}
		rec.len = 0;
		nlines = 0;
	}
	ret = 0;
	goto out;
nomem:
	setup_cerr(c, lineno, NULL, "out of memory");
out:
	setup_buf_free(&rec);
	free(lines);
	return ret;
}

/* setup_rec_has_name - whether one of a record's names is name */
static int
setup_rec_has_name(const struct setup_rec *r, const char *name)
{
	const char *s, *bar;
	size_t n = strlen(name), k;

	if (r->n == 0)
		return 0;
	s = r->f[0].text;
	for (;;) {
		bar = strchr(s, '|');
		k = bar != NULL ? (size_t)(bar - s) : strlen(s);
		if (k == n && memcmp(s, name, n) == 0)
			return 1;
		if (bar == NULL)
			return 0;
		s = bar + 1;
	}
}

/* setup_find - the first record named name, or NULL */
static const struct setup_rec *
setup_find(const struct setup_cap *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (setup_rec_has_name(&c->rec[i], name))
			return &c->rec[i];
	return NULL;
}

/* setup_expand - the fields of record r with tc= references resolved;
 * stack holds the names being expanded (loop detection) */
static int
setup_expand(struct setup_cap *c, const struct setup_rec *r,
    struct setup_ent *e, const char **stack, int depth)
{
	const struct setup_rec *t;
	const struct setup_field **nf;
	char chain[512];
	size_t i, o;
	int k;

	if (r->broken != NULL) {
		snprintf(c->err, c->errsz, "%s", r->broken);
		return -1;
	}
	for (i = 1; i < r->n; i++) {
		const char *f = r->f[i].text;

		if (strncmp(f, "tc=", 3) == 0) {
			if (depth + 1 >= SETUP_TC_DEPTH)
				return setup_cerr(c, r->f[i].line, e->name,
				    "tc= nested deeper than %d", SETUP_TC_DEPTH);
			for (k = 0; k <= depth; k++)
				if (strcmp(stack[k], f + 3) == 0)
					break;
			if (k <= depth) {
				/* name the whole chain: a -> b -> a */
				for (o = 0, k = 0; k <= depth; k++)
					o += (size_t)snprintf(chain + o,
					    o < sizeof(chain) ? sizeof(chain) - o
					    : 0, "%s -> ", stack[k]);
				return setup_cerr(c, r->f[i].line, e->name,
				    "tc loop: %s%s", o < sizeof(chain) ? chain :
				    "", f + 3);
			}
			if ((t = setup_find(c, f + 3)) == NULL)
				return setup_cerr(c, r->f[i].line, e->name,
				    "tc=%s: entry not found", f + 3);
			stack[depth + 1] = f + 3;
			if (setup_expand(c, t, e, stack, depth + 1) == -1)
				return -1;
			continue;
		}
		if (e->n == e->cap) {
			e->cap = e->cap == 0 ? 16 : e->cap * 2;
			if ((nf = reallocarray(e->f, e->cap, sizeof(*nf))) == NULL)
				return setup_cerr(c, r->f[i].line, e->name,
				    "out of memory");
			e->f = nf;
		}
		e->f[e->n++] = &r->f[i];
	}
	return 0;
}

/* setup_entry - look up and expand an entry; -1 with err if missing */
static int
setup_entry(struct setup_cap *c, const char *name, unsigned long refline,
    const char *refentry, struct setup_ent *e)
{
	const struct setup_rec *r;
	const char *stack[SETUP_TC_DEPTH];

	memset(e, 0, sizeof(*e));
	e->name = name;
	if ((r = setup_find(c, name)) == NULL) {
		if (refentry != NULL)
			return setup_cerr(c, refline, refentry, "list '%s': "
			    "entry not found", name);
		return setup_cerr(c, refline, name, "entry not found");
	}
	e->line = r->line;
	stack[0] = name;
	return setup_expand(c, r, e, stack, 0);
}

/* setup_cap_get - the first field for capability cap: its value after
 * '=' (or "" for a boolean) and line; NULL when absent or cancelled */
static const char *
setup_cap_get(const struct setup_ent *e, const char *cap, unsigned long *line)
{
	size_t i, n = strlen(cap);
	const char *f;

	for (i = 0; i < e->n; i++) {
		f = e->f[i]->text;
		if (strncmp(f, cap, n) != 0)
			continue;
		if (f[n] == '@')
			return NULL;
		if (f[n] == '\0' || f[n] == '=' || f[n] == '#') {
			if (line != NULL)
				*line = e->f[i]->line;
			return f[n] == '\0' ? f + n : f + n + 1;
		}
	}
	return NULL;
}

/* setup_unescape - decode a getcap string value (cgetstr escapes) */
static char *
setup_unescape(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;
	int k, v;

	if (out == NULL)
		return NULL;
	while (*s != '\0') {
		if (*s == '^' && s[1] != '\0') {
			*o++ = (char)(s[1] & 037);
			s += 2;
			continue;
		}
		if (*s != '\\' || s[1] == '\0') {
			*o++ = *s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'E': case 'e': *o++ = '\033'; s++; break;
		case 'N': case 'n': *o++ = '\n'; s++; break;
		case 'R': case 'r': *o++ = '\r'; s++; break;
		case 'T': case 't': *o++ = '\t'; s++; break;
		case 'B': case 'b': *o++ = '\b'; s++; break;
		case 'F': case 'f': *o++ = '\f'; s++; break;
		case 'C': case 'c': *o++ = ':'; s++; break;	/* getcap's colon */
		default:
			if (*s >= '0' && *s <= '7') {
				for (v = 0, k = 0; k < 3 && *s >= '0' &&
				    *s <= '7'; k++, s++)
					v = v * 8 + (*s - '0');
				*o++ = (char)v;
			} else
				*o++ = *s++;	/* \\ \: \" \^ ... */
		}
	}
	*o = '\0';
	return out;
}

/* setup_tag_ok - whether a list name can be an engine tag */
static int
setup_tag_ok(const char *s)
{
	size_t i;

	if (*s == '\0' || strlen(s) >= BL_TAG_MAX)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f ||
		    s[i] == '"' || s[i] == ';')
			return 0;
	return 1;
}

/* setup_guess_kind - for an entry that cannot be read (a broken record, a
 * bad tc=): 1 or 0 when its own record says :white: or :black: (and not
 * both), else -1, so one bad field does not make its kind unknown */
static int
setup_guess_kind(const struct setup_cap *c, const char *name)
{
	const struct setup_rec *r = setup_find(c, name);
	int black = 0, white = 0;
	size_t i;

	for (i = 1; r != NULL && i < r->n; i++) {
		black |= strcmp(r->f[i].text, "black") == 0;
		white |= strcmp(r->f[i].text, "white") == 0;
	}
	return black == white ? -1 : white;
}

/* setup_tag_copy - a list name for logs: cut to a tag, and '?' for what a
 * tag may not hold (the name is refused; this only names it) */
static void
setup_tag_copy(char *out, const char *s)
{
	size_t i;

	for (i = 0; i + 1 < BL_TAG_MAX && s[i] != '\0'; i++)
		out[i] = (unsigned char)s[i] <= ' ' || (unsigned char)s[i] >=
		    0x7f || s[i] == '"' || s[i] == ';' ? '?' : s[i];
	out[i] = '\0';
}

/* setup_msg - fill l->msg from the msg= value: quoted text or a file */
static int
setup_msg(struct setup_cap *c, struct setup_lconf *l, const char *raw,
    unsigned long line)
{
	char *v, *m, esc[BL_MSG_MAX], err[256];
	struct setup_buf fb = { 0 };
	size_t n;

	if ((v = setup_unescape(raw)) == NULL)
		return setup_cerr(c, line, l->name, "out of memory");
	if (v[0] == '"') {
		n = strlen(v);
		if (n < 2 || v[n - 1] != '"') {
			free(v);
			return setup_cerr(c, line, l->name, "msg: text after "
			    "the closing quote or no closing quote");
		}
		v[n - 1] = '\0';
		if ((m = strdup(v + 1)) == NULL) {
			free(v);
			return setup_cerr(c, line, l->name, "out of memory");
		}
	} else {
		if (v[0] == '\0') {
			free(v);
			return setup_cerr(c, line, l->name, "msg: empty (give "
			    "\"text\" or a file name)");
		}
		if (setup_read_file(v, BL_MSG_MAX, &fb, err, sizeof(err)) == -1) {
			setup_cerr(c, line, l->name, "msg file: %s", err);
			free(v);
			return -1;
		}
		if (memchr(fb.p, '\0', fb.len) != NULL) {
			setup_cerr(c, line, l->name, "msg file %s: NUL byte", v);
			free(v);
			setup_buf_free(&fb);
			return -1;
		}
		m = fb.p != NULL ? fb.p : strdup("");
		if (m == NULL) {
			free(v);
			return setup_cerr(c, line, l->name, "out of memory");
		}
	}
	free(v);
	l->msg = m;
	if (setup_msg_escape(m, esc, sizeof(esc), err, sizeof(err)) == -1)
		return setup_cerr(c, line, l->name, "%s", err);
	return 0;
}

/* setup_list_conf - fill one list's settings from its expanded entry */
static int
setup_list_conf(struct setup_cap *c, const struct setup_ent *e,
    struct setup_lconf *l)
{
	const char *v;
	unsigned long line = e->line;
	int black, white;

	snprintf(l->where, sizeof(l->where), "%s:%lu", c->path, e->line);
	snprintf(l->name, sizeof(l->name), "%s", e->name);
	black = setup_cap_get(e, "black", NULL) != NULL;
	white = setup_cap_get(e, "white", NULL) != NULL;
	if (black && white)
		return setup_cerr(c, line, e->name, "both :black: and :white:");
	if (!black && !white)
		return setup_cerr(c, line, e->name, "neither :black: nor "
		    ":white:");
	l->white = white;
	if ((v = setup_cap_get(e, "method", &line)) == NULL || *v == '\0' ||
	    strcmp(v, "file") == 0)
		l->method = SETUP_M_FILE;	/* OpenBSD's default */
	else if (strcmp(v, "exec") == 0)
		l->method = SETUP_M_EXEC;
	else if (strcmp(v, "http") == 0)
		l->method = SETUP_M_HTTP;
	else if (strcmp(v, "https") == 0)
		l->method = SETUP_M_HTTPS;
	else if (strcmp(v, "ftp") == 0)
		return setup_cerr(c, line, e->name, "method ftp is not "
		    "supported (OpenBSD's is; here use http or https, or "
		    "method=exec with a command that prints the list)");
	else
		return setup_cerr(c, line, e->name, "unknown method '%.40s' "
		    "(file, exec, http or https)", v);
	line = e->line;
	if ((v = setup_cap_get(e, "file", &line)) == NULL || *v == '\0')
		return setup_cerr(c, line, e->name, "missing file=");
	if ((l->file = setup_unescape(v)) == NULL)
		return setup_cerr(c, line, e->name, "out of memory");
	if (strncasecmp(l->file, "ftp://", 6) == 0)
		return setup_cerr(c, line, e->name, "file=%.80s: ftp is not "
		    "supported (use http or https, or method=exec with a "
		    "command that prints the list)", l->file);
	line = e->line;
	v = setup_cap_get(e, "msg", &line);
	if (v == NULL && black)
		return setup_cerr(c, line, e->name, "black list without msg=");
	if (v != NULL && black && setup_msg(c, l, v, line) == -1)
		return -1;
	return 0;
}

/* setup_conf_free - free the lists */
void
setup_conf_free(struct setup_conf *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		free(c->list[i].msg);
		free(c->list[i].file);
		free(c->list[i].error);
	}
	free(c->list);
	c->list = NULL;
	c->n = 0;
}

/* setup_conf_parse - parse spamd.conf text */
int
setup_conf_parse(const char *buf, size_t len, const char *path,
    struct setup_conf *out, char *err, size_t errsz)
{
	struct setup_cap c = { NULL, 0, path, err, errsz };
	struct setup_ent all, e;
	struct setup_lconf *nl;
	size_t i, j;
	int nblack = 0, ret = -1;

	memset(out, 0, sizeof(*out));
	memset(&all, 0, sizeof(all));
	if (setup_cap_read(&c, buf, len) == -1)
		goto out;
	for (i = 0; i < c.n; i++) {
		if (c.rec[i].broken == NULL && c.rec[i].f[0].text[0] == '\0') {
			setup_cerr(&c, c.rec[i].line, NULL, "record without "
			    "a name");
			goto out;
		}
	}
	if (setup_entry(&c, "all", c.n > 0 ? c.rec[0].line : 1, NULL,
	    &all) == -1)
		goto out;
	for (i = 0; i < all.n; i++) {
		const struct setup_field *f = all.f[i];
		struct setup_lconf *l;
		int r;

		if ((nl = reallocarray(out->list, out->n + 1,
		    sizeof(*nl))) == NULL) {
			setup_cerr(&c, f->line, "all", "out of memory");
			goto out;
		}
		out->list = nl;
		l = &nl[out->n++];
		memset(l, 0, sizeof(*l));
		l->white = -1;		/* not known until its entry is read */
		snprintf(l->where, sizeof(l->where), "%s:%lu", path, f->line);
		setup_tag_copy(l->name, f->text);
		if (!setup_tag_ok(f->text)) {
			setup_cerr(&c, f->line, "all", "bad list name '%.64s' "
			    "(printable, no blanks, quotes or ';', at most "
			    "%d bytes)", f->text, BL_TAG_MAX - 1);
			goto bad;
		}
		for (j = 0; j + 1 < out->n; j++)
			if (strcmp(out->list[j].name, f->text) == 0)
				break;
		if (setup_entry(&c, f->text, f->line, "all", &e) == -1) {
			free(e.f);
			l->white = setup_guess_kind(&c, f->text);
			goto bad;
		}
		r = setup_list_conf(&c, &e, l);
		free(e.f);
		if (r == -1)
			goto bad;
		/* why: a white list may follow several black lists (it cuts
		 * only the one before it); a tag names one engine list */
		if (j + 1 < out->n && l->white != 1) {
			setup_cerr(&c, f->line, "all", "black list '%s' named "
			    "twice", f->text);
			goto bad;
		}
		if (l->white == 0 && ++nblack > BL_MAX_LISTS) {
			setup_cerr(&c, f->line, "all", "more than %d black "
			    "lists (the engine's limit)", BL_MAX_LISTS);
			goto bad;
		}
		continue;
bad:
		if ((l->error = strdup(err)) == NULL) {
			setup_cerr(&c, f->line, "all", "out of memory");
			goto out;
		}
		err[0] = '\0';
	}
	ret = 0;
out:
	free(all.f);
	setup_cap_free(&c);
	if (ret == -1)
		setup_conf_free(out);
	return ret;
}

/* setup_conf_load - read and parse a spamd.conf file */
int
setup_conf_load(const char *path, struct setup_conf *out, char *err,
    size_t errsz)
{
	struct setup_buf b = { 0 };
	char e[256];
	int r;

	memset(out, 0, sizeof(*out));
	if (setup_read_file(path, 16 * 1024 * 1024, &b, e, sizeof(e)) == -1) {
		snprintf(err, errsz, "%s", e);
		return -1;
	}
	r = setup_conf_parse(b.p != NULL ? b.p : "", b.len, path, out, err,
	    errsz);
	setup_buf_free(&b);
	return r;
}
