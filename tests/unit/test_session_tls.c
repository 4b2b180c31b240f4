/*
 * test_session_tls.c - STARTTLS in the SMTP dialogue (spamd/engine/session.c):
 * what EHLO offers and what STARTTLS answers, by client class, by
 * whether the engine has -C/-K, and before/after TLS; the flags the
 * engine acts on (SESSION_F_STARTTLS, SESSION_F_TLS) and the reset of
 * the dialogue (RFC 3207 4.2). Table-driven; no sockets, no OpenSSL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "spamd/common/blacklist.h"
#include "spamd/engine/session.h"

#define HOST	"mx.example"
#define T0	((time_t)1795992134)

/* One case: the class, -C/-K, the lines sent and the last reply. */
struct tcase {
	const char	*name;
	enum session_class cls;
	int		 tls_offer;
	int		 in_tls;	/* SESSION_F_TLS set before the lines */
	const char	*lines[4];	/* each sent and answered in turn */
	const char	*want;		/* the reply to the last line */
	int		 want_starttls;	/* SESSION_F_STARTTLS after */
	int		 want_state;	/* enum session_state after */
};

static const struct tcase cases[] = {
	{ "EHLO offers STARTTLS to grey", SESSION_GREY, 1, 0,
	    { "EHLO c.example" },
	    "250-" HOST "\r\n250 STARTTLS\r\n", 0, SESSION_HELO },
	{ "HELO never offers it", SESSION_GREY, 1, 0,
	    { "HELO c.example" }, "250 " HOST "\r\n", 0, SESSION_HELO },
	{ "no -C/-K: plain EHLO", SESSION_GREY, 0, 0,
	    { "EHLO c.example" }, "250 " HOST "\r\n", 0, SESSION_HELO },
	{ "black: plain EHLO", SESSION_BLACK, 1, 0,
	    { "EHLO c.example" }, "250 " HOST "\r\n", 0, SESSION_HELO },
	{ "trapped: plain EHLO", SESSION_TRAPPED, 1, 0,
	    { "EHLO c.example" }, "250 " HOST "\r\n", 0, SESSION_HELO },
	{ "under TLS: plain EHLO", SESSION_GREY, 1, 1,
	    { "EHLO c.example" }, "250 " HOST "\r\n", 0, SESSION_HELO },
	{ "STARTTLS: 220, flag, back to greet", SESSION_GREY, 1, 0,
	    { "EHLO c.example", "starttls" },
	    "220 2.0.0 Ready to start TLS\r\n", 1, SESSION_GREET },
	{ "STARTTLS before EHLO is accepted", SESSION_GREY, 1, 0,
	    { "STARTTLS" }, "220 2.0.0 Ready to start TLS\r\n", 1,
	    SESSION_GREET },
	{ "no -C/-K: 454", SESSION_GREY, 0, 0,
	    { "EHLO c.example", "STARTTLS" },
	    "454 4.7.0 TLS not available due to temporary reason\r\n", 0,
	    SESSION_HELO },
	{ "black: 454", SESSION_BLACK, 1, 0,
	    { "EHLO c.example", "STARTTLS" },
	    "454 4.7.0 TLS not available due to temporary reason\r\n", 0,
	    SESSION_HELO },
	{ "second STARTTLS: 503", SESSION_GREY, 1, 1,
	    { "EHLO c.example", "STARTTLS" },
	    "503 5.5.1 Error: TLS already active\r\n", 0, SESSION_HELO },
	{ "parameters: 501", SESSION_GREY, 1, 0,
	    { "EHLO c.example", "STARTTLS now" },
	    "501 5.5.4 Syntax: STARTTLS takes no parameters\r\n", 0,
	    SESSION_HELO },
	{ "inside a transaction: 503", SESSION_GREY, 1, 0,
	    { "EHLO c.example", "MAIL FROM:<a@b.example>", "STARTTLS" },
	    "503 5.5.1 Error: MAIL transaction in progress\r\n", 0,
	    SESSION_MAIL },
	{ "STARTTLSX is not STARTTLS", SESSION_GREY, 1, 0,
	    { "STARTTLSX" }, "500 5.5.1 Command unrecognized\r\n", 0,
	    SESSION_GREET },
};

/* reply_of - the session's whole pending output as a string, consumed */
static void
reply_of(struct session *s, char *buf, size_t bufsz)
{
	const char *p;
	size_t len;

	buf[0] = '\0';
	if ((p = session_output(s, &len)) == NULL)
		return;
	assert_true(len < bufsz);
	memcpy(buf, p, len);
	buf[len] = '\0';
	session_output_done(s, len);
}

/* test_cases - run every case of the table */
static void
test_cases(void **state)
{
	struct session_conf conf;
	struct session s;
	struct bl_addr a;
	char line[600], out[600];
	size_t i, j, n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *t = &cases[i];

		memset(&conf, 0, sizeof(conf));
		conf.hostname = HOST;
		conf.banner = "spamd";
		conf.bl_code = 450;
		conf.tls_offer = t->tls_offer;
		assert_int_equal(session_conf_init(&conf), 0);
		memset(&a, 0, sizeof(a));
		a.family = AF_INET;
		inet_pton(AF_INET, "192.0.2.7", a.a);
		assert_int_equal(session_start(&s, &conf, 1, &a, t->cls, T0),
		    0);
		reply_of(&s, out, sizeof(out));	/* the banner */
		if (t->in_tls)
			s.flags |= SESSION_F_TLS;
		for (j = 0; j < 4 && t->lines[j] != NULL; j++) {
			n = (size_t)snprintf(line, sizeof(line), "%s\r\n",
			    t->lines[j]);
			assert_int_equal(session_input(&s, line, n), n);
			reply_of(&s, out, sizeof(out));
		}
		if (strcmp(out, t->want) != 0)
			fail_msg("%s: got \"%s\" want \"%s\"", t->name, out,
			    t->want);
		assert_int_equal(!!(s.flags & SESSION_F_STARTTLS),
		    t->want_starttls);
		assert_int_equal(s.state, t->want_state);
		if (t->want_starttls) {
			/* RFC 3207 4.2: what came before TLS is forgotten */
			assert_true(s.flags & SESSION_F_TLS);
			assert_null(s.helo);
			assert_null(s.from);
		}
		session_free(&s);
		session_conf_free(&conf);
	}
}

/* test_after_tls - after the handshake: EHLO again, a normal dialogue */
static void
test_after_tls(void **state)
{
	struct session_conf conf;
	struct session s;
	struct bl_addr a;
	char out[600];
	static const char in[] = "STARTTLS\r\n";
	static const char in2[] = "EHLO again.example\r\n";

	memset(&conf, 0, sizeof(conf));
	conf.hostname = HOST;
	conf.banner = "spamd";
	conf.bl_code = 450;
	conf.tls_offer = 1;
	assert_int_equal(session_conf_init(&conf), 0);
	memset(&a, 0, sizeof(a));
	a.family = AF_INET;
	assert_int_equal(session_start(&s, &conf, 2, &a, SESSION_GREY, T0), 0);
	reply_of(&s, out, sizeof(out));
	assert_int_equal(session_input(&s, in, sizeof(in) - 1),
	    sizeof(in) - 1);
	reply_of(&s, out, sizeof(out));
	s.flags &= ~SESSION_F_STARTTLS;	/* what the engine does */
	assert_int_equal(session_input(&s, in2, sizeof(in2) - 1),
	    sizeof(in2) - 1);
	reply_of(&s, out, sizeof(out));
	assert_string_equal(out, "250 " HOST "\r\n");
	assert_string_equal(s.helo, "again.example");
	assert_false(session_want_close(&s));
	session_free(&s);
	session_conf_free(&conf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_after_tls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
