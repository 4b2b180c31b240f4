/*
 * bltemplate.c - blacklist reply templates: the load-time check and the
 * expander that turns a template into SMTP reply lines.
 *
 * A template is operator text, never a printf format. It knows only
 * \" \\ \n %A (client address) and %%; anything else is refused when the
 * list is loaded, so nothing can go wrong at connection time.
 */
#include <stdio.h>
#include <string.h>

#include "spamd/common/blacklist.h"

/* bl_check_template_at - validate a template, offsets counted from base */
int
bl_check_template_at(const char *tmpl, size_t base, char *err, size_t errsz)
{
	const unsigned char *t = (const unsigned char *)tmpl;
	const char *what = NULL;
	size_t off;

	for (off = 0; t[off] != '\0'; off++) {
		if (off >= BL_MSG_MAX - 1) {
			what = "template too long";
			break;
		}
		if (t[off] == '\\') {
			if (t[off + 1] == '"' || t[off + 1] == '\\' ||
			    t[off + 1] == 'n') {
				off++;
				continue;
			}
			what = t[off + 1] == '\0' ? "lone '\\' at end of message" :
			    "bad escape in message (only \\\" \\\\ \\n)";
			break;
		}
		if (t[off] == '%') {
			if (t[off + 1] == 'A' || t[off + 1] == '%') {
				off++;
				continue;
			}
			what = "bad '%' sequence in message (only %A %%)";
			break;
		}
		/* why: raw CR/LF would let the list forge SMTP reply lines */
		if ((t[off] < 0x20 && t[off] != '\t') || t[off] == 0x7f) {
			what = "control character in message";
			break;
		}
	}
	if (what == NULL)
		return 0;
	snprintf(err, errsz, "%s at byte %zu", what, base + off);
	return -1;
}

/* bl_check_template - validate a reply template before it is used */
int
bl_check_template(const char *tmpl, char *err, size_t errsz)
{
	return bl_check_template_at(tmpl, 0, err, errsz);
}

/* The expander's output state: bytes go out only while a CRLF and the NUL
 * still fit after them, so a cut reply still ends with a whole line. */
struct bl_out {
	char	*buf;
	size_t	 size;
	size_t	 pos;
	int	 open;		/* a line has been started */
	int	 lines;		/* lines finished */
	int	 full;		/* output was cut */
	char	 prefix[8];	/* "450 " */
};

/* bl_out_start - begin a line with the reply code, if it fits whole */
static int
bl_out_start(struct bl_out *o)
{
	size_t plen = strlen(o->prefix);

	if (o->full || o->pos + plen + 3 > o->size) {
		o->full = 1;
		return -1;
	}
	memcpy(o->buf + o->pos, o->prefix, plen);
	o->pos += plen;
	o->open = 1;
	return 0;
}

/* bl_out_end - finish the current line (starting an empty one if needed) */
static void
bl_out_end(struct bl_out *o)
{
	if (!o->open && bl_out_start(o) == -1)
		return;
	memcpy(o->buf + o->pos, "\r\n", 2);
	o->pos += 2;
	o->open = 0;
	o->lines++;
}

/* bl_out_char - add one printable byte of text to the current line */
static void
bl_out_char(struct bl_out *o, unsigned char c)
{
	/* why: CR, LF and other controls never reach the client from data */
	if (c < 0x20 || c == 0x7f)
		return;
	if (o->full || (!o->open && bl_out_start(o) == -1))
		return;
	if (o->pos + 1 + 3 > o->size) {
		o->full = 1;
		return;
	}
	o->buf[o->pos++] = (char)c;
}

/* bl_expand - expand a template into "code text\r\n" reply lines */
size_t
bl_expand(const char *tmpl, const char *addr, int code, char *out,
    size_t outsz)
{
	const unsigned char *t = (const unsigned char *)tmpl;
	struct bl_out o = { .buf = out, .size = outsz };
	const char *a;

	if (out == NULL || outsz == 0)
		return 0;
	if (code < 400 || code > 599)
		code = 550;
	snprintf(o.prefix, sizeof(o.prefix), "%d ", code);
	if (t == NULL)
		t = (const unsigned char *)"";
	for (; *t != '\0' && !o.full; t++) {
		if (t[0] == '\\' && t[1] == 'n') {
			bl_out_end(&o);
			t++;
		} else if (t[0] == '\\' && (t[1] == '"' || t[1] == '\\')) {
			bl_out_char(&o, t[1]);
			t++;
		} else if (t[0] == '%' && t[1] == '%') {
			bl_out_char(&o, '%');
			t++;
		} else if (t[0] == '%' && t[1] == 'A') {
			for (a = addr != NULL ? addr : ""; *a != '\0'; a++)
				if (*a != ' ')
					bl_out_char(&o, (unsigned char)*a);
			t++;
		} else if (t[0] == '\n') {
			/* unchecked template: a raw LF is only ever a break */
			bl_out_end(&o);
		} else
			bl_out_char(&o, t[0]);
	}
	/* a trailing \n ends the last line; it does not add an empty one */
	if (o.open || o.lines == 0)
		bl_out_end(&o);
	out[o.pos] = '\0';
	return o.pos;
}
