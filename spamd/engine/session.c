/*
 * session.c - the SMTP dialogue of one connection: states, the command
 * table, bounded lines and the replies (see session.h). No sockets here.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spamd/common/log.h"
#include "spamd/engine/session.h"

static const char reply_ok[] = "250 OK\r\n";
static const char reply_451[] =
    "451 Temporary failure, please try again later.\r\n";
static const char reply_354[] = "354 End data with <CR><LF>.<CR><LF>\r\n";
static const char reply_unknown[] = "500 5.5.1 Command unrecognized\r\n";
static const char reply_long[] = "500 5.5.2 Line too long\r\n";
static const char reply_nul[] = "500 5.5.2 NUL byte in command\r\n";
static const char reply_syntax[] = "501 5.5.4 Syntax error in parameters\r\n";
static const char reply_need_mail[] = "503 5.5.1 Error: need MAIL command\r\n";
static const char reply_need_rcpt[] = "503 5.5.1 Error: need RCPT command\r\n";
static const char reply_nested[] = "503 5.5.1 Error: nested MAIL command\r\n";
/* (added) STARTTLS, RFC 3207 */
static const char reply_tls_ready[] = "220 2.0.0 Ready to start TLS\r\n";
static const char reply_tls_na[] =
    "454 4.7.0 TLS not available due to temporary reason\r\n";
static const char reply_tls_again[] =
    "503 5.5.1 Error: TLS already active\r\n";
static const char reply_tls_mail[] =
    "503 5.5.1 Error: MAIL transaction in progress\r\n";
static const char reply_tls_syntax[] =
    "501 5.5.4 Syntax: STARTTLS takes no parameters\r\n";
/* (added) past --max-rcpt (RFC 5321 4.5.3.1.10: 452, not 5xx) */
static const char reply_rcpt_cap[] = "452 4.5.3 Too many recipients\r\n";
static const char reply_idle[] =
    "421 4.4.2 Idle timeout, closing connection\r\n";

static const char *const session_state_names[SESSION_NSTATES] = {
	[SESSION_GREET] = "greet",
	[SESSION_HELO] = "helo",
	[SESSION_MAIL] = "mail",
	[SESSION_RCPT] = "rcpt",
	[SESSION_DATA] = "data",
	[SESSION_CLOSING] = "closing",
};

/* session_cmd_is - 1 if buf starts with the four-letter command word */
int
session_cmd_is(const char *buf, size_t len, const char *word)
{
	if (len < 4)
		return 0;	/* not a whole command word yet */
	return strncasecmp(buf, word, 4) == 0;
}

/* session_state_name - a state's name for logs */
const char *
session_state_name(int state)
{
	if (state < 0 || state >= SESSION_NSTATES)
		return "invalid";
	return session_state_names[state];
}

/* session_class_name - a class's name for logs */
const char *
session_class_name(int cls)
{
	switch (cls) {
	case SESSION_GREY:	return "grey";
	case SESSION_BLACK:	return "black";
	case SESSION_TRAPPED:	return "trapped";
	}
	return "invalid";
}

/* session_ip - the client's address as text */
const char *
session_ip(const struct session *s, char *buf, size_t bufsz)
{
	if (inet_ntop(s->addr.family, s->addr.a, buf, bufsz) == NULL)
		strlcpy(buf, "?", bufsz);
	return buf;
}

/* session_set_state - the one place a session changes state */
static void
session_set_state(struct session *s, enum session_state new)
{
	if (new >= SESSION_NSTATES)
		fatalx("session_set_state: state %d out of range", (int)new);
	if (s->state != new)
		log_debug("event=state id=%llu %s -> %s",
		    (unsigned long long)s->id, session_state_name(s->state),
		    session_state_name(new));
	s->state = new;
}

/* session_out_clear - forget the pending output */
static void
session_out_clear(struct session *s)
{
	free(s->out_owned);
	s->out_owned = NULL;
	s->out = NULL;
	s->outlen = s->outoff = 0;
}

/* session_reply - queue a static reply */
static void
session_reply(struct session *s, const char *text)
{
	session_out_clear(s);
	s->out = text;
	s->outlen = strlen(text);
}

/* session_reply_owned - queue a malloc'd reply of len bytes */
static void
session_reply_owned(struct session *s, char *text, size_t len)
{
	session_out_clear(s);
	s->out = s->out_owned = text;
	s->outlen = len;
}

/* session_close - queue the last reply and end the dialogue */
static void
session_close(struct session *s, const char *text)
{
	session_reply(s, text);
	s->flags |= SESSION_F_CLOSE;
	session_set_state(s, SESSION_CLOSING);
}

/* session_conf_init - build the shared replies */
int
session_conf_init(struct session_conf *conf)
{
	if (asprintf(&conf->helo_reply, "250 %s\r\n", conf->hostname) == -1) {
		conf->helo_reply = NULL;
		return -1;
	}
	if (asprintf(&conf->quit_reply, "221 %s\r\n", conf->hostname) == -1) {
		free(conf->helo_reply);
		conf->helo_reply = conf->quit_reply = NULL;
		return -1;
	}
	if (asprintf(&conf->ehlo_tls_reply, "250-%s\r\n250 STARTTLS\r\n",
	    conf->hostname) == -1) {
		free(conf->helo_reply);
		free(conf->quit_reply);
		conf->helo_reply = conf->quit_reply = NULL;
		conf->ehlo_tls_reply = NULL;
		return -1;
	}
	return 0;
}

/* session_conf_free - free what session_conf_init built */
void
session_conf_free(struct session_conf *conf)
{
	free(conf->helo_reply);
	free(conf->quit_reply);
	free(conf->ehlo_tls_reply);
	conf->helo_reply = conf->quit_reply = NULL;
	conf->ehlo_tls_reply = NULL;
}

/* session_start - begin a dialogue and queue the banner */
int
session_start(struct session *s, struct session_conf *conf,
    uint64_t id, const struct bl_addr *addr, enum session_class cls,
    time_t now)
{
	char *banner;
	struct tm tm;
	int n;

	/* localtime and strftime once a second, not once a connection */
	if (conf->date[0] == '\0' || conf->date_at != now) {
		/* ctime(3)'s form, as OpenBSD spamd writes it (DESIGN.md):
		 * "Sun Dec  6 22:52:07 2026"; the C locale's names */
		if (localtime_r(&now, &tm) == NULL ||
		    strftime(conf->date, sizeof(conf->date),
		    "%a %b %e %H:%M:%S %Y", &tm) == 0)
			strlcpy(conf->date, "?", sizeof(conf->date));
		conf->date_at = now;
	}

	memset(s, 0, sizeof(*s));
	s->id = id;
	s->conf = conf;
	s->addr = *addr;
	s->start = now;
	s->cls = cls;
	s->state = SESSION_GREET;
	n = asprintf(&banner, "220 %s ESMTP %s; %s\r\n", conf->hostname,
	    conf->banner, conf->date);
	if (n == -1)
		return -1;
	session_reply_owned(s, banner, (size_t)n);
	return 0;
}

/* session_free - free what the session holds */
void
session_free(struct session *s)
{
	session_out_clear(s);
	free(s->helo);
	free(s->from);
	s->helo = s->from = NULL;
}

/* session_output - the pending output */
const char *
session_output(const struct session *s, size_t *len)
{
	if (s->out == NULL || s->outoff >= s->outlen) {
		*len = 0;
		return NULL;
	}
	*len = s->outlen - s->outoff;
	return s->out + s->outoff;
}

/* session_output_done - n bytes of the output were written */
void
session_output_done(struct session *s, size_t n)
{
	if (s->out == NULL)
		return;
	if (n > s->outlen - s->outoff)
		n = s->outlen - s->outoff;
	s->outoff += n;
	if (s->outoff >= s->outlen)
		session_out_clear(s);
}

/* session_want_close - the session is over and its output written */
int
session_want_close(const struct session *s)
{
	return (s->flags & SESSION_F_CLOSE) && s->out == NULL;
}

/* session_rcpt_full - the next RCPT is past --max-rcpt (a greylisted
 * client whose tuples are recorded: not with -b) */
int
session_rcpt_full(const struct session *s)
{
	uint32_t max = s->conf->max_rcpt > 0 ? s->conf->max_rcpt :
	    SESSION_RCPT_DEFAULT;

	return s->cls == SESSION_GREY && !s->conf->blacklist_only &&
	    s->nrcpt >= max;
}

/* session_trap - the client mailed a spamtrap: tarpit it from now on */
void
session_trap(struct session *s)
{
	if (s->cls == SESSION_GREY)
		s->cls = SESSION_TRAPPED;
}

/* session_idle - the idle limit passed */
void
session_idle(struct session *s)
{
	session_close(s, reply_idle);
}

/* session_bad - count a bad command; hang up at the limit */
static void
session_bad(struct session *s, const char *text)
{
	if (++s->nbad >= SESSION_BAD_MAX)
		session_close(s, text);
	else
		session_reply(s, text);
}

/* session_dup - a copy of an argument, cut to SESSION_ARG_MAX - 1 */
static char *
session_dup(const char *p, size_t len)
{
	char *d;

	if (len > SESSION_ARG_MAX - 1)
		len = SESSION_ARG_MAX - 1;
	if ((d = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(d, p, len);
	d[len] = '\0';
	return d;
}

/* session_has_ctl - 1 if p holds a control byte (CR inside a line, ...) */
static int
session_has_ctl(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return 1;
	return 0;
}

/*
 * session_path - find the path after "FROM:" / "TO:" in arg: "<...>"
 * as typed, or the first word when there are no brackets (lenient, as
 * spamd). ESMTP parameters after it are dropped. -1 on a syntax error.
 */
static int
session_path(const char *arg, size_t len, const char *kw, const char **p,
    size_t *plen)
{
	size_t kl = strlen(kw), i = 0, j;

	while (i < len && arg[i] == ' ')
		i++;
	if (len - i < kl || strncasecmp(arg + i, kw, kl) != 0)
		return -1;
	i += kl;
	while (i < len && arg[i] == ' ')
		i++;
	if (i == len)
		return -1;
	if (arg[i] == '<') {
		const char *gt = memchr(arg + i, '>', len - i);

		if (gt == NULL)
			return -1;
		j = (size_t)(gt - arg) + 1;
	} else
		for (j = i; j < len && arg[j] != ' '; j++)
			;
	if (session_has_ctl(arg + i, j - i))
		return -1;
	*p = arg + i;
	*plen = j - i;
	return 0;
}

/* session_hello - HELO/EHLO: remember the name; ehlo: may offer
 * STARTTLS */
static void
session_hello(struct session *s, const char *arg, size_t len, int ehlo)
{
	char *h;
	size_t i;

	while (len > 0 && arg[0] == ' ') {
		arg++;
		len--;
	}
	while (len > 0 && arg[len - 1] == ' ')
		len--;
	if (len == 0) {
		session_bad(s, reply_syntax);
		return;
	}
	if ((h = session_dup(arg, len)) == NULL) {
		session_close(s, reply_451);
		return;
	}
	/* a control byte is kept out of logs and the tuple */
	for (i = 0; h[i] != '\0'; i++)
		if ((unsigned char)h[i] < 0x20 || h[i] == 0x7f)
			h[i] = '?';
	free(s->helo);
	s->helo = h;
	free(s->from);
	s->from = NULL;
	/* (added) STARTTLS to greylisted clients, not yet under TLS */
	if (ehlo && s->conf->tls_offer && s->cls == SESSION_GREY &&
	    !(s->flags & SESSION_F_TLS) && s->conf->ehlo_tls_reply != NULL)
		session_reply(s, s->conf->ehlo_tls_reply);
	else
		session_reply(s, s->conf->helo_reply);
	session_set_state(s, SESSION_HELO);
	/* (added) the owner may check the name (DNS, engine_dns.c) */
	if (s->conf->ops != NULL && s->conf->ops->helo != NULL)
		s->conf->ops->helo(s->conf->arg, s);
}

/* session_helo - HELO */
static void
session_helo(struct session *s, const char *arg, size_t len)
{
	session_hello(s, arg, len, 0);
}

/* session_ehlo - EHLO */
static void
session_ehlo(struct session *s, const char *arg, size_t len)
{
	session_hello(s, arg, len, 1);
}

/* session_starttls - (added) STARTTLS (RFC 3207): 220, then the owner
 * runs the handshake and the dialogue starts over (EHLO again) */
static void
session_starttls(struct session *s, const char *arg, size_t len)
{
	while (len > 0 && arg[0] == ' ') {
		arg++;
		len--;
	}
	if (len > 0) {
		session_bad(s, reply_tls_syntax);
		return;
	}
	if (s->flags & SESSION_F_TLS) {
		session_bad(s, reply_tls_again);
		return;
	}
	/* not offered: no -C/-K, or a blacklisted/trapped client */
	if (!s->conf->tls_offer || s->cls != SESSION_GREY) {
		session_bad(s, reply_tls_na);
		return;
	}
	if (s->state == SESSION_MAIL || s->state == SESSION_RCPT) {
		session_bad(s, reply_tls_mail);
		return;
	}
	/* RFC 3207 4.2: forget everything the client said before TLS */
	free(s->helo);
	free(s->from);
	s->helo = s->from = NULL;
	session_reply(s, reply_tls_ready);
	s->flags |= SESSION_F_TLS | SESSION_F_STARTTLS;
	session_set_state(s, SESSION_GREET);
}

/* session_mail - MAIL FROM: start a transaction (HELO not required) */
static void
session_mail(struct session *s, const char *arg, size_t len)
{
	const char *p;
	size_t plen;

	/* the tarpit answers in any order, as OpenBSD spamd: the client
	 * must reach DATA and its list's message whatever it sends */
	if (s->cls != SESSION_GREY) {
		/* kept only for -v's "(BLACK) ip: from -> to" line */
		free(s->from);
		s->from = NULL;
		if (s->conf->ops != NULL && s->conf->ops->tarpit_rcpt != NULL &&
		    session_path(arg, len, "FROM:", &p, &plen) == 0)
			s->from = session_dup(p, plen);
		session_reply(s, reply_ok);
		session_set_state(s, SESSION_MAIL);
		return;
	}
	if (s->state == SESSION_MAIL || s->state == SESSION_RCPT) {
		session_reply(s, reply_nested);
		return;
	}
	if (session_path(arg, len, "FROM:", &p, &plen) == -1) {
		session_bad(s, reply_syntax);
		return;
	}
	free(s->from);
	if ((s->from = session_dup(p, plen)) == NULL) {
		session_close(s, reply_451);
		return;
	}
	session_reply(s, reply_ok);
	session_set_state(s, SESSION_MAIL);
}

/* session_rcpt - RCPT TO: record a tuple */
static void
session_rcpt(struct session *s, const char *arg, size_t len)
{
	const char *p;
	char to[SESSION_ARG_MAX];
	size_t plen;

	/* tarpit: any order, nothing recorded (see session_mail) */
	if (s->cls != SESSION_GREY) {
		s->nrcpt++;
		if (s->from != NULL && s->conf->ops != NULL &&
		    s->conf->ops->tarpit_rcpt != NULL &&
		    session_path(arg, len, "TO:", &p, &plen) == 0) {
			if (plen > sizeof(to) - 1)
				plen = sizeof(to) - 1;
			memcpy(to, p, plen);
			to[plen] = '\0';
			s->conf->ops->tarpit_rcpt(s->conf->arg, s, s->from, to);
		}
		session_reply(s, reply_ok);
		session_set_state(s, SESSION_RCPT);
		return;
	}
	if (s->state != SESSION_MAIL && s->state != SESSION_RCPT) {
		session_reply(s, reply_need_mail);
		return;
	}
	if (session_path(arg, len, "TO:", &p, &plen) == -1) {
		session_bad(s, reply_syntax);
		return;
	}
	/*
	 * (added) --max-rcpt: a greylisted client has its tuples recorded
	 * for the first max_rcpt RCPTs of the connection only; the rest get
	 * 452 (the client delivers to those accepted and may try the others
	 * later, RFC 5321 3.3) and record nothing. The state stays: DATA
	 * after a transaction with accepted RCPTs still gets its 451.
	 */
	if (session_rcpt_full(s)) {
		int first = !(s->flags & SESSION_F_RCPTCAP);

		s->flags |= SESSION_F_RCPTCAP;
		session_reply(s, reply_rcpt_cap);
		if (s->conf->ops != NULL && s->conf->ops->rcpt_refused != NULL)
			s->conf->ops->rcpt_refused(s->conf->arg, s, first);
		return;
	}
	if (plen > sizeof(to) - 1)
		plen = sizeof(to) - 1;
	memcpy(to, p, plen);
	to[plen] = '\0';
	s->nrcpt++;
	/*
	 * -b: no database, nothing to record. A blacklisted or trapped
	 * client records nothing either (as OpenBSD spamd): its retry must
	 * never pass and whitelist it past the tarpit.
	 */
	if (!s->conf->blacklist_only && s->cls == SESSION_GREY &&
	    s->conf->ops != NULL &&
	    s->conf->ops->tuple != NULL)
		s->conf->ops->tuple(s->conf->arg, s,
		    s->helo != NULL ? s->helo : "", s->from, to);
	session_reply(s, reply_ok);
	session_set_state(s, SESSION_RCPT);
}

/*
 * session_data - DATA: 451 for the greylisted, the tarpit for the rest.
 * A blacklisted or trapped client gets 354 in any state (OpenBSD spamd
 * does): it must never miss its list's message for skipping MAIL/RCPT.
 * With -b nobody is greylisted: after RCPT every client gets 354, its
 * message, then 451 (OpenBSD's reply when no list holds the client).
 */
static void
session_data(struct session *s, const char *arg, size_t len)
{
	if (s->cls == SESSION_GREY && s->state != SESSION_RCPT) {
		session_reply(s, s->state == SESSION_MAIL ? reply_need_rcpt :
		    reply_need_mail);
		return;
	}
	if (s->cls == SESSION_GREY && !s->conf->blacklist_only) {
		session_close(s, reply_451);
		return;
	}
	/* as OpenBSD spamd: take the whole message, slowly, then refuse it */
	session_reply(s, reply_354);
	session_set_state(s, SESSION_DATA);
}

/* session_rset - RSET: drop the transaction */
static void
session_rset(struct session *s, const char *arg, size_t len)
{
	free(s->from);
	s->from = NULL;
	session_reply(s, reply_ok);
	session_set_state(s, s->helo != NULL ? SESSION_HELO : SESSION_GREET);
}

/* session_noop - NOOP */
static void
session_noop(struct session *s, const char *arg, size_t len)
{
	session_reply(s, reply_ok);
}

/* session_quit - QUIT */
static void
session_quit(struct session *s, const char *arg, size_t len)
{
	session_close(s, s->conf->quit_reply);
}

/* session_append - add src to the reply being built, within the cap */
static void
session_append(char *buf, size_t *used, const char *src, size_t n)
{
	if (n > SESSION_REPLY_MAX - *used)
		n = SESSION_REPLY_MAX - *used;
	memcpy(buf + *used, src, n);
	*used += n;
}

/*
 * session_multiline - make "450 a\r\n450 b\r\n" one reply: "450-" on
 * every line but the last (RFC 5321 4.2.1). bl_expand writes each line
 * as "NNN text\r\n"; a client reads a reply up to its "NNN " line.
 */
static void
session_multiline(char *buf, size_t used)
{
	size_t i = 0;
	const char *nl;

	while (i + 4 <= used &&
	    (nl = memchr(buf + i, '\n', used - i)) != NULL) {
		size_t next = (size_t)(nl - buf) + 1;

		if (next < used && buf[i + 3] == ' ')
			buf[i + 3] = '-';
		i = next;
	}
}

/* session_black_reply - after DATA: each matching list's message */
static void
session_black_reply(struct session *s)
{
	struct bl_match m;
	char ip[64], *buf, *tmp, *r;
	size_t used = 0, n;
	int i, have_trap = 0;

	session_ip(s, ip, sizeof(ip));
	m.n = 0;
	if (s->conf->ops != NULL && s->conf->ops->lookup != NULL)
		s->conf->ops->lookup(s->conf->arg, s, &m);
	buf = malloc(SESSION_REPLY_MAX);
	tmp = malloc(SESSION_REPLY_MAX);
	if (buf == NULL || tmp == NULL) {
		free(buf);
		free(tmp);
		session_close(s, reply_451);
		return;
	}
	for (i = 0; i < m.n; i++)
		if (strcmp(m.tag[i], SESSION_TRAP_TAG) == 0)
			have_trap = 1;
	/* trapped just now: the writer's trap list may not be here yet */
	if (s->cls == SESSION_TRAPPED && !have_trap) {
		n = bl_expand(SESSION_TRAP_MSG, ip, s->conf->bl_code, tmp,
		    SESSION_REPLY_MAX);
		session_append(buf, &used, tmp, n);
	}
	for (i = 0; i < m.n; i++) {
		n = bl_expand(m.msg[i], ip, s->conf->bl_code, tmp,
		    SESSION_REPLY_MAX);
		/* whole lines only: stop before a list that does not fit */
		if (n > SESSION_REPLY_MAX - used)
			break;
		session_append(buf, &used, tmp, n);
	}
	free(tmp);
	if (used == 0) {
		/* no list (-b, or it went away meanwhile): 451, as OpenBSD */
		free(buf);
		session_close(s, reply_451);
		return;
	}
	session_multiline(buf, used);
	if ((r = realloc(buf, used)) != NULL)
		buf = r;
	session_reply_owned(s, buf, used);
	s->flags |= SESSION_F_CLOSE;
	session_set_state(s, SESSION_CLOSING);
}

/* One SMTP command: its name and what it does. */
struct session_cmd {
	const char	*name;
	void		(*handler)(struct session *, const char *, size_t);
};

static const struct session_cmd session_cmds[] = {
	{ "HELO", session_helo },
	{ "EHLO", session_ehlo },
	{ "MAIL", session_mail },
	{ "RCPT", session_rcpt },
	{ "DATA", session_data },
	{ "RSET", session_rset },
	{ "NOOP", session_noop },
	{ "QUIT", session_quit },
};

/* session_line - run one line (no line ending) */
static void
session_line(struct session *s, const char *line, size_t len)
{
	const char *cr;
	size_t i, w;

	if (s->state == SESSION_DATA) {
		if (len == 1 && line[0] == '.')
			session_black_reply(s);
		else if (s->conf->ops != NULL &&
		    s->conf->ops->data_line != NULL)
			s->conf->ops->data_line(s->conf->arg, s, line, len);
		return;
	}
	if (memchr(line, '\0', len) != NULL) {
		session_bad(s, reply_nul);
		return;
	}
	/* A line ends at LF (OpenBSD spamd); a CR inside it ends the
	 * command's fields there, as OpenBSD's parsing cuts HELO, MAIL
	 * and RCPT at CR: "HELO a\rNOOP" is HELO a, not a syntax error. */
	if ((cr = memchr(line, '\r', len)) != NULL)
		len = (size_t)(cr - line);
	for (w = 0; w < len && line[w] != ' '; w++)
		;
	/* (added) the one command longer than four letters */
	if (w == 8 && strncasecmp(line, "STARTTLS", 8) == 0) {
		session_starttls(s, line + w, len - w);
		return;
	}
	for (i = 0; i < sizeof(session_cmds) / sizeof(session_cmds[0]); i++) {
		if (w == 4 && strncasecmp(line, session_cmds[i].name, 4) == 0) {
			session_cmds[i].handler(s, line + w, len - w);
			return;
		}
	}
	session_bad(s, reply_unknown);
}

/* session_input - cut bytes into bounded lines and run them */
size_t
session_input(struct session *s, const char *buf, size_t len)
{
	size_t used = 0;

	while (used < len && s->out == NULL && s->state != SESSION_CLOSING) {
		const char *p = buf + used, *nl;
		size_t n = len - used, scan, ll;

		scan = n < SESSION_LINE_MAX ? n : SESSION_LINE_MAX;
		nl = memchr(p, '\n', scan);
		if (nl == NULL) {
			if (n < SESSION_LINE_MAX)
				break;		/* a partial line: wait */
			if (s->state == SESSION_DATA) {
				/* message text may run long; skip it */
				s->flags |= SESSION_F_LONG;
				used += SESSION_LINE_MAX;
				s->datalen += SESSION_LINE_MAX;
				if (s->datalen > SESSION_DATA_MAX)
					session_black_reply(s);
				continue;
			}
			session_close(s, reply_long);
			return len;
		}
		ll = (size_t)(nl - p);
		used += ll + 1;
		if (s->state == SESSION_DATA) {
			/* an endless message: answer as if it had ended */
			s->datalen += (uint32_t)ll + 1;
			if (s->datalen > SESSION_DATA_MAX) {
				session_black_reply(s);
				continue;
			}
		}
		if (s->flags & SESSION_F_LONG) {
			/* the end of a long message line, not a "." line */
			s->flags &= ~SESSION_F_LONG;
			continue;
		}
		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		session_line(s, p, ll);
	}
	return used;
}
