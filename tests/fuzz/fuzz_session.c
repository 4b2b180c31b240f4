/*
 * fuzz_session.c - libFuzzer target: the real SMTP state machine
 * (spamd/engine/session.c) fed arbitrary client bytes in arbitrary chunks, in
 * each client class (greylisted, greylisted with -b, blacklisted, trapped
 * mid-dialogue), with the output drained in arbitrary pieces as the
 * engine's stutter would. Checks the session's own promises: consumption
 * never exceeds what was offered, a full line buffer always makes
 * progress, tuple strings are bounded and hold no NUL/CR/LF, and every
 * reply is CRLF-terminated.
 * fuzz-sources: spamd/engine/session.c spamd/common/blacklist.c spamd/common/bltemplate.c spamd/common/log.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "spamd/common/blacklist.h"
#include "spamd/common/log.h"
#include "spamd/engine/session.h"

/* A blacklist every probe address is on, loaded once. */
static struct bl_set *fuzz_bl;

/* fuzz_check_arg - a tuple string must be bounded and line-free */
static void
fuzz_check_arg(const char *s)
{
	size_t n = strlen(s);

	if (n >= SESSION_ARG_MAX || memchr(s, '\r', n) != NULL ||
	    memchr(s, '\n', n) != NULL)
		__builtin_trap();
}

/* fuzz_tuple - the session's record callback: check the strings */
static void
fuzz_tuple(void *arg, struct session *s, const char *helo, const char *from,
    const char *to)
{
	(void)arg;
	if (s->cls != SESSION_GREY)
		__builtin_trap();	/* no tuple from a tarpitted client */
	fuzz_check_arg(helo);
	fuzz_check_arg(from);
	fuzz_check_arg(to);
}

/* fuzz_lookup - the session's list lookup: the real blacklist module */
static int
fuzz_lookup(void *arg, struct session *s, struct bl_match *m)
{
	(void)arg;
	bl_lookup(fuzz_bl, &s->addr, m);
	return m->n;
}

static const struct session_ops fuzz_ops = { fuzz_tuple, fuzz_lookup };

/* fuzz_drain - write out the pending output in pieces of up to step */
static void
fuzz_drain(struct session *s, size_t step)
{
	const char *out;
	size_t len, n;

	while ((out = session_output(s, &len)) != NULL && len > 0) {
		/* every reply ends in CRLF */
		if (s->outoff == 0 && s->outlen >= 2 &&
		    memcmp(s->out + s->outlen - 2, "\r\n", 2) != 0)
			__builtin_trap();
		n = len < step ? len : step;
		session_output_done(s, n);
	}
}

/* fuzz_setup - the blacklist the lookups consult, once */
static void
fuzz_setup(void)
{
	static const char msg[] = "fuzz;\"You (%A) are listed\\nReally %%"
	    "\";inet;2;10.0.0.0/8;192.0.2.0/24;inet6;1;2001:db8::/32";
	char err[256];
	struct bl_list *l;

	log_init("fuzz_session", 1, 0);
	fuzz_bl = bl_set_new();
	l = bl_parse(msg, sizeof(msg) - 1, err, sizeof(err));
	if (fuzz_bl == NULL || l == NULL ||
	    bl_set_apply(fuzz_bl, l, err, sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_session: setup: %s\n", err);
		abort();
	}
}

/*
 * LLVMFuzzerTestOneInput - byte 0: class, -b and when to trap; byte 1:
 * input chunk size; byte 2: output drain step; the rest is the client.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ips[] = { "10.1.2.3", "2001:db8::7",
	    "198.51.100.4", "::ffff:192.0.2.9" };
	struct session_conf conf;
	struct session s;
	struct bl_addr a;
	size_t chunk, step, off, have = 0, used, pending = 0, trap_at;
	char *buf;
	int mode, rounds = 0;

	if (fuzz_bl == NULL)
		fuzz_setup();
	if (size < 3)
		return 0;
	mode = data[0];
	chunk = (size_t)data[1] + 1;
	step = (size_t)(data[2] % 64) + 1;
	data += 3;
	size -= 3;
	/* trap after this many input bytes (past the end: never) */
	trap_at = (mode & 0x08) ? (size_t)(mode >> 4) * 16 : (size_t)-1;

	memset(&conf, 0, sizeof(conf));
	conf.hostname = "fuzz.example.org";
	conf.banner = (mode & 0x40) ? "spamd IP-based SPAM blocker" : NULL;
	conf.bl_code = (mode & 0x80) ? 550 : 450;
	conf.blacklist_only = (mode & 0x04) != 0;
	conf.ops = &fuzz_ops;
	if (session_conf_init(&conf) == -1)
		return 0;
	memset(&a, 0, sizeof(a));
	a.family = strchr(ips[mode & 3], ':') ? AF_INET6 : AF_INET;
	inet_pton(a.family, ips[mode & 3], a.a);
	if ((buf = malloc(SESSION_LINE_MAX + 256)) == NULL)
		goto out_conf;
	/* blacklisted when the address is on the list and bit 5 says so */
	if (session_start(&s, &conf, 1, &a, (mode & 0x20) ? SESSION_BLACK :
	    SESSION_GREY, 1700000000) == -1)
		goto out_buf;
	fuzz_drain(&s, step);
	off = 0;
	/* The engine's loop: read up to chunk bytes into a buffer of
	 * SESSION_LINE_MAX + a little, feed, drain, repeat. */
	while (!session_want_close(&s) && rounds++ < 100000) {
		size_t room = SESSION_LINE_MAX + 256 - have;
		size_t n = size - off < chunk ? size - off : chunk;

		if (n > room)
			n = room;
		memcpy(buf + have, data + off, n);
		have += n;
		off += n;
		if (off >= trap_at && s.cls == SESSION_GREY) {
			session_trap(&s);
			trap_at = (size_t)-1;
		}
		used = session_input(&s, buf, have);
		if (used > have)
			__builtin_trap();
		if (used == 0 && have >= SESSION_LINE_MAX &&
		    session_output(&s, &pending) == NULL)
			__builtin_trap();	/* a full line must move */
		memmove(buf, buf + used, have - used);
		have -= used;
		fuzz_drain(&s, step);
		if (off == size && used == 0) {
			/* input over: the client goes quiet; idle it out */
			session_idle(&s);
			fuzz_drain(&s, step);
			break;
		}
	}
	session_free(&s);
out_buf:
	free(buf);
out_conf:
	session_conf_free(&conf);
	return 0;
}
