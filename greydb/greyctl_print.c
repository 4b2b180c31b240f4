/*
 * greyctl_print.c - greyctl's output: spamdb lines, JSON objects, counts
 * and the trap list for spamd-setup.
 *
 * Text lines are exactly OpenBSD spamdb's. Fields are printed as stored,
 * except that CR and LF become '?' so one record is always one line.
 * JSON strings escape '"', '\\', control characters and every byte of
 * 0x7f and above as \u00XX, so the output is plain ASCII whatever the
 * stored bytes were (a byte >= 0x80 reads back as the code point of the
 * same number).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "greydb/greyctl.h"

/* greyctl_out_ok - 0 if output works so far, else -1 (errno saved) */
int
greyctl_out_ok(const struct greyctl *ctl)
{
	if (!ferror(ctl->out))
		return 0;
	/* errno is the failed write's only now; main reports it once. */
	if (*ctl->out_errno == 0)
		*ctl->out_errno = errno != 0 ? errno : EIO;
	return -1;
}

/* put_text - write s with CR and LF replaced, so a line stays a line */
static void
put_text(FILE *fp, const char *s)
{
	for (; *s != '\0'; s++)
		putc(*s == '\r' || *s == '\n' ? '?' : *s, fp);
}

/* greyctl_json_str - write s as a JSON string (quoted, escaped) */
void
greyctl_json_str(FILE *fp, const char *s)
{
	const unsigned char *p;

	putc('"', fp);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			putc('\\', fp);
			putc(*p, fp);
		} else if (*p < 0x20 || *p >= 0x7f)
			fprintf(fp, "\\u%04x", (unsigned)*p);
		else
			putc(*p, fp);
	}
	putc('"', fp);
}

/* print_text - one record as spamdb prints it */
static void
print_text(FILE *fp, const struct gdb_rec *r)
{
	switch (r->type) {
	case GDB_GREY:
		fputs("GREY|", fp);
		put_text(fp, r->ip);
		putc('|', fp);
		put_text(fp, r->helo);
		putc('|', fp);
		put_text(fp, r->from);
		putc('|', fp);
		put_text(fp, r->to);
		fprintf(fp, "|%lld|%lld|%lld|%d|%d\n", (long long)r->first,
		    (long long)r->pass, (long long)r->expire, (int)r->bcount,
		    (int)r->pcount);
		break;
	case GDB_WHITE:
		fputs("WHITE|", fp);
		put_text(fp, r->ip);
		fprintf(fp, "|||%lld|%lld|%lld|%d|%d\n", (long long)r->first,
		    (long long)r->pass, (long long)r->expire, (int)r->bcount,
		    (int)r->pcount);
		break;
	case GDB_TRAPPED:
		fputs("TRAPPED|", fp);
		put_text(fp, r->ip);
		fprintf(fp, "|%lld\n", (long long)r->expire);
		break;
	case GDB_SPAMTRAP:
		fputs("SPAMTRAP|", fp);
		put_text(fp, r->to);
		putc('\n', fp);
		break;
	}
}

/* json_field - write ,"name":"value" */
static void
json_field(FILE *fp, const char *name, const char *val)
{
	fprintf(fp, ",\"%s\":", name);
	greyctl_json_str(fp, val);
}

/* print_json - one record as a JSON object: GREY has ip, helo, from, to;
 * WHITE and TRAPPED ip; SPAMTRAP address; all have the times and counts */
static void
print_json(FILE *fp, const struct gdb_rec *r)
{
	fprintf(fp, "{\"type\":\"%s\"", gdb_type_name(r->type));
	if (r->type == GDB_SPAMTRAP)
		json_field(fp, "address", r->to);
	else
		json_field(fp, "ip", r->ip);
	if (r->type == GDB_GREY) {
		json_field(fp, "helo", r->helo);
		json_field(fp, "from", r->from);
		json_field(fp, "to", r->to);
	}
	fprintf(fp, ",\"first\":%lld,\"pass\":%lld,\"expire\":%lld,"
	    "\"bcount\":%d,\"pcount\":%d}\n", (long long)r->first,
	    (long long)r->pass, (long long)r->expire, (int)r->bcount,
	    (int)r->pcount);
}

/* greyctl_print - one record as a spamdb line or (-j) a JSON object */
int
greyctl_print(const struct greyctl *ctl, const struct gdb_rec *rec)
{
	if (ctl->json)
		print_json(ctl->out, rec);
	else
		print_text(ctl->out, rec);
	return greyctl_out_ok(ctl);
}

/* greyctl_print_stats - counts by type as key=value or JSON */
int
greyctl_print_stats(const struct greyctl *ctl, const struct gdb_stats *st)
{
	if (ctl->json)
		fprintf(ctl->out, "{\"grey\":%ld,\"white\":%ld,"
		    "\"trapped\":%ld,\"spamtrap\":%ld}\n", st->grey, st->white,
		    st->trapped, st->spamtrap);
	else
		fprintf(ctl->out, "grey=%ld white=%ld trapped=%ld "
		    "spamtrap=%ld\n", st->grey, st->white, st->trapped,
		    st->spamtrap);
	return greyctl_out_ok(ctl);
}

struct trap_ctx {
	const struct greyctl	*ctl;
	long			 n;
};

/* trap_one - print one TRAPPED address that has not expired yet */
static int
trap_one(const struct gdb_rec *rec, void *arg)
{
	struct trap_ctx *c = arg;

	if (greyctl_stopped())
		return 1;
	/* Records with expire <= now count as absent (greydb's rule); the
	 * daemon's expiry just has not removed them yet. */
	if (rec->type != GDB_TRAPPED || rec->expire <= c->ctl->now)
		return 0;
	put_text(c->ctl->out, rec->ip);
	putc('\n', c->ctl->out);
	c->n++;
	return greyctl_out_ok(c->ctl) == -1 ? 1 : 0;
}

/* greyctl_export_traplist - the unexpired TRAPPED addresses as a list */
int
greyctl_export_traplist(const struct greyctl *ctl, struct gdb *db)
{
	struct trap_ctx c = { ctl, 0 };
	struct gdb_err err;
	char host[256], when[32];
	time_t now = (time_t)ctl->now;
	struct tm tm;

	if (gethostname(host, sizeof(host)) == -1)
		strlcpy(host, "unknown", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strlcpy(when, "unknown", sizeof(when));
	/* A '#' line is a comment in a spamd-setup list file. */
	fputs("# spamd trap list from ", ctl->out);
	put_text(ctl->out, host);
	fprintf(ctl->out, " at %s\n", when);
	if (gdb_walk(db, GDB_TRAPPED, trap_one, &c, &err) == -1) {
		greyctl_warnx("%s", err.msg);
		return -1;
	}
	return greyctl_out_ok(ctl);
}
