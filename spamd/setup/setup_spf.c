/*
 * setup_spf.c - spamd-setup --spf-walk: turn a domain's SPF record (RFC
 * 7208) into the networks it authorises, following include: and
 * redirect=, so the big senders' retry pools can be kept out of
 * greylisting (OpenBSD operators do this with `smtpctl spf walk`).
 *
 * Only pass ('+' or no qualifier) ip4, ip6, a, mx and include terms and
 * the redirect= modifier give networks. Everything else cannot become an
 * address list: ptr and exists (and every macro %{...}) depend on the
 * connecting client's address or name, "all" matches everything (a list of
 * every address would defeat greylisting), exp= is a text, unknown
 * modifiers are ignored by RFC 7208 6; "-", "~" and "?" terms name hosts a
 * receiver is told not to trust, so they are left out too.
 *
 * The record is outside input: nesting, DNS queries and networks are
 * bounded (setup_spf.h), loops are found by the include path, a record
 * over SPF_RECORD_MAX bytes or two v=spf1 records is an error.
 *
 * DNS is glibc's resolver (res_nquery over the res_state the walker owns,
 * answers read with ns_initparse/ns_parserr). A truncated UDP answer (TC)
 * makes res_nquery ask again over TCP by itself; a server that then does
 * not answer over TCP gives a failed lookup, i.e. an error for the domain
 * (a truncated answer is never used: a cut SPF record would list less).
 */
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <netdb.h>
#include <resolv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spamd/setup/setup_spf.h"

#define SPF_ANSWER_MAX	65536	/* a DNS message over TCP at most */

/* A walker: the resolver, the answer buffer and the run's counters. */
struct setup_spf {
	struct __res_state	 res;
	int			 res_ok;	/* res_ninit succeeded */
	struct setup_spf_opt	 o;
	long			 queries;
	long			 nets;
	unsigned char		*ans;
};

/* One top-level walk: where it is, what it found, what it has seen. */
struct spf_walk {
	struct setup_spf	*s;
	const char		*top;
	struct setup_addrs	 acc;
	const char		*path[SPF_DEPTH_MAX + 2];	/* include path */
	char			**seen;
	size_t			 nseen;
	char			*err;
	size_t			 errsz;
};

/* --- the record parser ------------------------------------------------ */

/* spf_ieq - whether n bytes at s equal the lower-case word w, any case */
static int
spf_ieq(const char *s, size_t n, const char *w)
{
	size_t i;

	if (strlen(w) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (tolower((unsigned char)s[i]) != w[i])
			return 0;
	return 1;
}

/* setup_spf_is_spf - "v=spf1" alone or followed by a space */
int
setup_spf_is_spf(const char *txt, size_t len)
{
	return len >= 6 && spf_ieq(txt, 6, "v=spf1") &&
	    (len == 6 || txt[6] == ' ');
}

/* spf_fail - format err with the term and its offset; returns -1 */
static int __attribute__((format(printf, 5, 6)))
spf_fail(char *err, size_t errsz, const char *term, size_t off,
    const char *fmt, ...)
{
	char what[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(err, errsz, "term '%.64s' at byte %zu: %s", term, off, what);
	return -1;
}

/*
 * spf_domain_ok - check and copy a domain name (not a macro): 1-253 bytes
 * without the trailing dot, labels of 1-63 letters, digits, '-' and '_'
 * (as in _spf.example.com); lower-cased into out. -1 when bad.
 */
static int
spf_domain_ok(const char *s, size_t n, char *out)
{
	size_t i, label = 0;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > SPF_DOMAIN_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return -1;
		} else
			return -1;
		out[i] = (char)tolower(c);
	}
	if (label == 0)
		return -1;
	out[n] = '\0';
	return 0;
}

/* spf_prefix - parse the digits of a prefix length (max 3 of them) */
static int
spf_prefix(const char *s, size_t n, int max)
{
	int v = 0;
	size_t i;

	/* why: RFC 7208's cidr-length has no leading zeros, and 4 digits
	 * can never be a valid length */
	if (n == 0 || n > 3 || (s[0] == '0' && n > 1))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	/* why: a /0 lists every address; in a never-greylist list that
	 * would switch greylisting off */
	return v > max || v == 0 ? -1 : v;
}

/*
 * spf_dual_cidr - "/len4", "//len6" or "/len4//len6" at s (n bytes, may
 * be 0) into the term; -1 when it is something else
 */
static int
spf_dual_cidr(const char *s, size_t n, struct spf_term *t)
{
	const char *p = s, *end = s + n, *q;

	if (n == 0)
		return 0;
	if (*p != '/')
		return -1;
	if (n >= 2 && p[1] != '/') {
		for (q = p + 1; q < end && *q != '/'; q++)
			;
		if ((t->len4 = spf_prefix(p + 1, (size_t)(q - p - 1), 32)) < 0)
			return -1;
		p = q;
		if (p == end)
			return 0;
	}
	if (end - p < 3 || p[0] != '/' || p[1] != '/')
		return -1;
	if ((t->len6 = spf_prefix(p + 2, (size_t)(end - p - 2), 128)) < 0)
		return -1;
	return 0;
}

/*
 * spf_target - the ":domain-spec" and dual-cidr after a, mx, include,
 * ptr, exists or the value of redirect= (s, n: the text after the name).
 * A '%' makes the term SPF_T_MACRO. cidr: whether /len may follow.
 */
static int
spf_target(const char *s, size_t n, int need, int cidr, struct spf_term *t,
    const char *term, size_t off, char *err, size_t errsz)
{
	const char *slash = NULL;
	size_t dn;

	if (n == 0 || s[0] != ':') {
		if (need)
			return spf_fail(err, errsz, term, off, "needs "
			    ":domain");
		if (!cidr && n > 0)
			return spf_fail(err, errsz, term, off, "junk after "
			    "the mechanism");
		if (spf_dual_cidr(s, n, t) == -1)
			return spf_fail(err, errsz, term, off, "bad prefix "
			    "length (/0 refused)");
		return 0;
	}
	s++;
	n--;
	if (memchr(s, '%', n) != NULL) {
		/* why: a macro's value depends on the connecting client,
		 * so it names no fixed network; the caller warns */
		t->kind = SPF_T_MACRO;
		return 0;
	}
	if (cidr)
		slash = memchr(s, '/', n);
	dn = slash != NULL ? (size_t)(slash - s) : n;
	if (spf_domain_ok(s, dn, t->domain) == -1)
		return spf_fail(err, errsz, term, off, "bad domain '%.*s'",
		    (int)(dn > 64 ? 64 : dn), s);
	if (slash != NULL && spf_dual_cidr(slash, n - dn, t) == -1)
		return spf_fail(err, errsz, term, off, "bad prefix length "
		    "(/0 refused)");
	return 0;
}

/* spf_ipaddr - "ip4:addr[/len]" or "ip6:addr[/len]" into the term */
static int
spf_ipaddr(const char *s, size_t n, int v6, struct spf_term *t,
    const char *term, size_t off, char *err, size_t errsz)
{
	char tmp[INET6_ADDRSTRLEN];
	const char *slash;
	size_t an;

	if (n == 0 || s[0] != ':')
		return spf_fail(err, errsz, term, off, "needs :address");
	s++;
	n--;
	slash = memchr(s, '/', n);
	an = slash != NULL ? (size_t)(slash - s) : n;
	if (an == 0 || an >= sizeof(tmp))
		return spf_fail(err, errsz, term, off, "bad address");
	memcpy(tmp, s, an);
	tmp[an] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, tmp, t->addr) != 1)
		return spf_fail(err, errsz, term, off, "bad %s address '%s'",
		    v6 ? "IPv6" : "IPv4", tmp);
	if (slash != NULL) {
		int v = spf_prefix(slash + 1, n - an - 1, v6 ? 128 : 32);

		if (v < 0)
			return spf_fail(err, errsz, term, off, "bad prefix "
			    "length (/0 refused)");
		if (v6)
			t->len6 = v;
		else
			t->len4 = v;
	}
	t->kind = v6 ? SPF_T_IP6 : SPF_T_IP4;
	return 0;
}

/* spf_term_parse - one term (n bytes at s, at byte off of the record) */
static int
spf_term_parse(const char *s, size_t n, size_t off, struct spf_term *t,
    int *redirects, char *err, size_t errsz)
{
	const char *name = s, *p;
	size_t nn, i;

	memset(t, 0, sizeof(*t));
	t->qual = '+';
	t->len4 = 32;
	t->len6 = 128;
	for (i = 0; i < n && i < sizeof(t->text) - 1; i++)
		t->text[i] = s[i];
	t->text[i] = '\0';
	/* a modifier: name "=" value, the name of letters, digits, - _ . */
	for (p = s; p < s + n && (isalnum((unsigned char)*p) || *p == '-' ||
	    *p == '_' || *p == '.'); p++)
		;
	if (p > s && p < s + n && *p == '=' && isalpha((unsigned char)*s)) {
		nn = (size_t)(p - s);
		if (!spf_ieq(s, nn, "redirect")) {
			/* exp= is a text for rejections; RFC 7208 6 says
			 * unknown modifiers are ignored */
			t->kind = SPF_T_IGNORED;
			return 0;
		}
		if (++*redirects > 1)
			return spf_fail(err, errsz, t->text, off, "second "
			    "redirect= (RFC 7208 6)");
		t->kind = SPF_T_REDIRECT;
		/* why: the value is a bare domain-spec; give spf_target the
		 * ":" it expects by pointing at the '=' */
		{
			char buf[SPF_DOMAIN_MAX + 8];
			size_t vn = n - nn - 1;

			if (vn == 0 || vn > SPF_DOMAIN_MAX + 1)
				return spf_fail(err, errsz, t->text, off,
				    "bad redirect domain");
			buf[0] = ':';
			memcpy(buf + 1, p + 1, vn);
			return spf_target(buf, vn + 1, 1, 0, t, t->text, off,
			    err, errsz);
		}
	}
	if (n > 0 && strchr("+-~?", s[0]) != NULL) {
		t->qual = s[0];
		name++;
	}
	for (p = name; p < s + n && *p != ':' && *p != '/'; p++)
		;
	nn = (size_t)(p - name);
	n -= (size_t)(p - s);	/* bytes after the mechanism's name */
	if (spf_ieq(name, nn, "all")) {
		if (n != 0)
			return spf_fail(err, errsz, t->text, off, "junk after "
			    "all");
		t->kind = SPF_T_IGNORED;
		t->is_all = 1;
		return 0;
	}
	if (spf_ieq(name, nn, "ip4"))
		return spf_ipaddr(p, n, 0, t, t->text, off, err, errsz);
	if (spf_ieq(name, nn, "ip6"))
		return spf_ipaddr(p, n, 1, t, t->text, off, err, errsz);
	if (spf_ieq(name, nn, "a")) {
		t->kind = SPF_T_A;
		return spf_target(p, n, 0, 1, t, t->text, off, err, errsz);
	}
	if (spf_ieq(name, nn, "mx")) {
		t->kind = SPF_T_MX;
		return spf_target(p, n, 0, 1, t, t->text, off, err, errsz);
	}
	if (spf_ieq(name, nn, "include")) {
		t->kind = SPF_T_INCLUDE;
		return spf_target(p, n, 1, 0, t, t->text, off, err, errsz);
	}
	if (spf_ieq(name, nn, "ptr") || spf_ieq(name, nn, "exists")) {
		/* checked for syntax, then ignored: both ask about the
		 * connecting client, which a list does not know */
		if (spf_target(p, n, name[0] != 'p' && name[0] != 'P', 0, t,
		    t->text, off, err, errsz) == -1)
			return -1;
		t->kind = SPF_T_IGNORED;
		return 0;
	}
	return spf_fail(err, errsz, t->text, off, "unknown mechanism");
}

/* setup_spf_record_free - free the terms and zero the record */
void
setup_spf_record_free(struct spf_record *r)
{
	free(r->t);
	r->t = NULL;
	r->n = 0;
}

/* setup_spf_parse - split an SPF record into terms */
int
setup_spf_parse(const char *txt, size_t len, struct spf_record *out,
    char *err, size_t errsz)
{
	struct spf_term *nt;
	size_t i, start, cap = 0;
	int redirects = 0;

	out->t = NULL;
	out->n = 0;
	if (len > SPF_RECORD_MAX) {
		snprintf(err, errsz, "record of %zu bytes (at most %d)", len,
		    SPF_RECORD_MAX);
		return -1;
	}
	for (i = 0; i < len; i++)
		if ((unsigned char)txt[i] < 0x20 ||
		    (unsigned char)txt[i] >= 0x7f) {
			snprintf(err, errsz, "byte 0x%02x at byte %zu (SPF "
			    "records are printable ASCII)",
			    (unsigned char)txt[i], i);
			return -1;
		}
	if (!setup_spf_is_spf(txt, len)) {
		snprintf(err, errsz, "not an SPF record (no \"v=spf1\" first)");
		return -1;
	}
	for (i = 6; i < len;) {
		while (i < len && txt[i] == ' ')
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && txt[i] != ' ')
			i++;
		if (out->n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			if ((nt = reallocarray(out->t, cap, sizeof(*nt))) ==
			    NULL) {
				snprintf(err, errsz, "out of memory");
				setup_spf_record_free(out);
				return -1;
			}
			out->t = nt;
		}
		if (spf_term_parse(txt + start, i - start, start,
		    &out->t[out->n], &redirects, err, errsz) == -1) {
			setup_spf_record_free(out);
			return -1;
		}
		out->n++;
	}
	return 0;
}

/* --- DNS -------------------------------------------------------------- */

/* setup_spf_open - a walker with its resolver */
struct setup_spf *
setup_spf_open(const struct setup_spf_opt *o, char *err, size_t errsz)
{
	struct setup_spf *s;
	struct in_addr ia;
	char host[64];
	const char *colon;
	long port;
	char *end;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->ans = malloc(SPF_ANSWER_MAX)) == NULL) {
		free(s);
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	s->o = *o;
	if (res_ninit(&s->res) == -1) {
		snprintf(err, errsz, "cannot set up the resolver "
		    "(/etc/resolv.conf)");
		setup_spf_close(s);
		return NULL;
	}
	s->res_ok = 1;
	/* why: res_nquery does no search-list expansion, but say it: the
	 * names are absolute */
	s->res.options &= ~(RES_DEFNAMES | RES_DNSRCH);
	s->res.retrans = o->timeout > 0 ? o->timeout : 3;
	s->res.retry = o->tries > 0 ? o->tries : 2;
	if (o->server != NULL) {
		/* HOST:PORT, an IPv4 literal: nsaddr_list holds sockaddr_in
		 * only, and the tests use 127.0.0.1 */
		if ((colon = strrchr(o->server, ':')) == NULL ||
		    (size_t)(colon - o->server) >= sizeof(host)) {
			snprintf(err, errsz, "--dns-server %s: want "
			    "IPV4ADDRESS:PORT", o->server);
			setup_spf_close(s);
			return NULL;
		}
		memcpy(host, o->server, (size_t)(colon - o->server));
		host[colon - o->server] = '\0';
		port = strtol(colon + 1, &end, 10);
		if (inet_pton(AF_INET, host, &ia) != 1 || colon[1] == '\0' ||
		    *end != '\0' || port < 1 || port > 65535) {
			snprintf(err, errsz, "--dns-server %s: want "
			    "IPV4ADDRESS:PORT", o->server);
			setup_spf_close(s);
			return NULL;
		}
		memset(&s->res.nsaddr_list[0], 0, sizeof(s->res.nsaddr_list[0]));
		s->res.nsaddr_list[0].sin_family = AF_INET;
		s->res.nsaddr_list[0].sin_addr = ia;
		s->res.nsaddr_list[0].sin_port = htons((uint16_t)port);
		s->res.nscount = 1;
	}
	return s;
}

/* setup_spf_close - free the walker */
void
setup_spf_close(struct setup_spf *s)
{
	if (s == NULL)
		return;
	if (s->res_ok)
		res_nclose(&s->res);
	free(s->ans);
	free(s);
}

/* setup_spf_queries - DNS queries sent so far */
long
setup_spf_queries(const struct setup_spf *s)
{
	return s->queries;
}

/* spf_type_name - a record type's name for messages */
static const char *
spf_type_name(int type)
{
	switch (type) {
	case ns_t_a: return "A";
	case ns_t_aaaa: return "AAAA";
	case ns_t_mx: return "MX";
	case ns_t_txt: return "TXT";
	default: return "?";
	}
}

/* Called for each answer record of the asked type. */
typedef int spf_rr_fn(struct spf_walk *w, ns_msg *msg, ns_rr *rr,
    void *arg);

/*
 * spf_query - ask name/type and call fn for each answer record of that
 * type: 0 done, 1 no such name or no records (a "void lookup", not an
 * error), -1 with w->err (limit, timeout, server failure, bad answer, or
 * fn's own error).
 */
static int
spf_query(struct spf_walk *w, const char *name, int type, spf_rr_fn *fn,
    void *arg)
{
	struct setup_spf *s = w->s;
	ns_msg msg;
	ns_rr rr;
	int n, i, found = 0;

	if (s->queries >= SPF_QUERIES_MAX) {
		snprintf(w->err, w->errsz, "DNS query limit reached (%d a "
		    "run) at %s %s", SPF_QUERIES_MAX, name, spf_type_name(type));
		return -1;
	}
	s->queries++;
	n = res_nquery(&s->res, name, ns_c_in, type, s->ans, SPF_ANSWER_MAX);
	if (n < 0) {
		switch (s->res.res_h_errno) {
		case HOST_NOT_FOUND:
		case NO_DATA:
			return 1;
		case TRY_AGAIN:
			snprintf(w->err, w->errsz, "%s %s: no answer (timeout, "
			    "server failure, or a truncated answer the server "
			    "would not give over TCP)", name,
			    spf_type_name(type));
			return -1;
		default:
			snprintf(w->err, w->errsz, "%s %s: lookup refused or "
			    "failed", name, spf_type_name(type));
			return -1;
		}
	}
	if (n > SPF_ANSWER_MAX || ns_initparse(s->ans, n, &msg) == -1) {
		snprintf(w->err, w->errsz, "%s %s: malformed answer", name,
		    spf_type_name(type));
		return -1;
	}
	for (i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) == -1) {
			snprintf(w->err, w->errsz, "%s %s: malformed answer "
			    "record %d", name, spf_type_name(type), i);
			return -1;
		}
		/* why: a CNAME chain ends in records owned by another name;
		 * the server answered for ours, so take every record of the
		 * asked type */
		if ((int)ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in)
			continue;
		found = 1;
		if (fn(w, &msg, &rr, arg) == -1)
			return -1;
	}
	return found ? 0 : 1;
}

/* The SPF records of one domain's TXT answer. */
struct spf_txt {
	const char	*domain;
	char		 text[SPF_RECORD_MAX + 1];
	size_t		 len;
	int		 count;		/* v=spf1 records seen */
};

/* spf_txt_rr - one TXT record: join its strings, keep it if SPF */
static int
spf_txt_rr(struct spf_walk *w, ns_msg *msg, ns_rr *rr, void *arg)
{
	struct spf_txt *t = arg;
	const unsigned char *p = ns_rr_rdata(*rr), *end = p + ns_rr_rdlen(*rr);
	char buf[SPF_RECORD_MAX + 1];
	size_t len = 0, total = 0, k;

	buf[0] = '\0';
	/* RFC 7208 3.3: the strings of one record are joined without
	 * anything between them */
	while (p < end) {
		k = *p++;
		if (k > (size_t)(end - p)) {
			snprintf(w->err, w->errsz, "%s TXT: malformed record",
			    t->domain);
			return -1;
		}
		if (len + k <= SPF_RECORD_MAX) {
			memcpy(buf + len, p, k);
			len += k;
		}
		total += k;
		p += k;
	}
	if (!setup_spf_is_spf(buf, len))
		return 0;	/* some other TXT record (site verification...) */
	if (total > SPF_RECORD_MAX) {
		snprintf(w->err, w->errsz, "%s: SPF record of %zu bytes "
		    "(at most %d)", t->domain, total, SPF_RECORD_MAX);
		return -1;
	}
	if (++t->count > 1) {
		snprintf(w->err, w->errsz, "%s: two v=spf1 records (RFC 7208 "
		    "4.5: there must be one)", t->domain);
		return -1;
	}
	memcpy(t->text, buf, len);
	t->text[len] = '\0';
	t->len = len;
	return 0;
}

/* spf_add - one network of a family into the walk, under the bounds */
static int
spf_add(struct spf_walk *w, int af, const uint8_t *addr, int bits)
{
	struct setup_spf *s = w->s;
	int r;

	if ((af == AF_INET && s->o.family == 6) ||
	    (af == AF_INET6 && s->o.family == 4))
		return 0;
	if (s->nets >= SPF_NETS_MAX) {
		snprintf(w->err, w->errsz, "more than %d networks in a run",
		    SPF_NETS_MAX);
		return -1;
	}
	if (af == AF_INET) {
		uint32_t a = (uint32_t)addr[0] << 24 | (uint32_t)addr[1] << 16 |
		    (uint32_t)addr[2] << 8 | addr[3];
		uint32_t m = bits == 0 ? 0 : UINT32_MAX << (32 - bits);

		r = setup_addrs_add4(&w->acc, a & m, (a & m) | ~m);
	} else {
		struct setup_u128 v = setup_u128_load(addr), lo, hi, m;

		m.hi = bits >= 64 ? UINT64_MAX : bits == 0 ? 0 :
		    UINT64_MAX << (64 - bits);
		m.lo = bits <= 64 ? 0 : bits == 128 ? UINT64_MAX :
		    UINT64_MAX << (128 - bits);
		lo.hi = v.hi & m.hi;
		lo.lo = v.lo & m.lo;
		hi.hi = lo.hi | ~m.hi;
		hi.lo = lo.lo | ~m.lo;
		r = setup_addrs_add6(&w->acc, lo, hi);
	}
	if (r == -1) {
		snprintf(w->err, w->errsz, "out of memory");
		return -1;
	}
	s->nets++;
	return 0;
}

/* The prefix lengths an a or mx term gives its addresses. */
struct spf_lens {
	int	len4, len6;
};

/* spf_addr_rr - an A or AAAA record: its network */
static int
spf_addr_rr(struct spf_walk *w, ns_msg *msg, ns_rr *rr, void *arg)
{
	const struct spf_lens *l = arg;

	if (ns_rr_type(*rr) == ns_t_a && ns_rr_rdlen(*rr) == 4)
		return spf_add(w, AF_INET, ns_rr_rdata(*rr), l->len4);
	if (ns_rr_type(*rr) == ns_t_aaaa && ns_rr_rdlen(*rr) == 16)
		return spf_add(w, AF_INET6, ns_rr_rdata(*rr), l->len6);
	snprintf(w->err, w->errsz, "malformed address record");
	return -1;
}

/* spf_host - a host's A and/or AAAA records (as -4/-6 allow) as networks */
static int
spf_host(struct spf_walk *w, const char *host, int len4, int len6)
{
	struct spf_lens l = { len4, len6 };

	/* why: skip the family that would be filtered out anyway, which
	 * saves queries from the run's budget */
	if (w->s->o.family != 6 &&
	    spf_query(w, host, ns_t_a, spf_addr_rr, &l) == -1)
		return -1;
	if (w->s->o.family != 4 &&
	    spf_query(w, host, ns_t_aaaa, spf_addr_rr, &l) == -1)
		return -1;
	return 0;
}

/* The MX hosts of one mx term. */
struct spf_mx {
	const char	*domain;
	char		 host[SPF_MX_MAX][NS_MAXDNAME];
	int		 n;
};

/* spf_mx_rr - one MX record: keep its exchange name */
static int
spf_mx_rr(struct spf_walk *w, ns_msg *msg, ns_rr *rr, void *arg)
{
	struct spf_mx *m = arg;
	char name[NS_MAXDNAME];

	if (ns_rr_rdlen(*rr) < 3 || ns_name_uncompress(ns_msg_base(*msg),
	    ns_msg_end(*msg), ns_rr_rdata(*rr) + 2, name, sizeof(name)) == -1) {
		snprintf(w->err, w->errsz, "%s MX: malformed record",
		    m->domain);
		return -1;
	}
	if (name[0] == '\0' || strcmp(name, ".") == 0)
		return 0;	/* null MX (RFC 7505): no mail host */
	if (m->n == SPF_MX_MAX) {
		snprintf(w->err, w->errsz, "%s: more than %d MX hosts "
		    "(RFC 7208 4.6.4)", m->domain, SPF_MX_MAX);
		return -1;
	}
	snprintf(m->host[m->n++], sizeof(m->host[0]), "%s", name);
	return 0;
}

/* spf_warn - report a skipped term through the caller's warn function */
static void
spf_warn(struct spf_walk *w, const char *domain, const struct spf_term *t,
    const char *why)
{
	char text[512];

	if (w->s->o.warn == NULL)
		return;
	if (strcmp(domain, w->top) == 0)
		snprintf(text, sizeof(text), "%s: skipped term '%s': %s",
		    domain, t->text, why);
	else
		snprintf(text, sizeof(text), "%s: %s: skipped term '%s': %s",
		    w->top, domain, t->text, why);
	w->s->o.warn(w->s->o.warnarg, text);
}

/* spf_seen - whether domain was walked already in this walk; adds it */
static int
spf_seen(struct spf_walk *w, const char *domain)
{
	char **p;
	size_t i;

	for (i = 0; i < w->nseen; i++)
		if (strcmp(w->seen[i], domain) == 0)
			return 1;
	if ((p = reallocarray(w->seen, w->nseen + 1, sizeof(*p))) == NULL)
		return -1;
	w->seen = p;
	if ((p[w->nseen] = strdup(domain)) == NULL)
		return -1;
	w->nseen++;
	return 0;
}

/* spf_loop_err - "include loop: a -> b -> a" into w->err */
static void
spf_loop_err(struct spf_walk *w, int depth, const char *domain)
{
	size_t o;
	int i;

	o = (size_t)snprintf(w->err, w->errsz, "include/redirect loop: ");
	for (i = 0; i < depth && o < w->errsz; i++)
		o += (size_t)snprintf(w->err + o, w->errsz - o, "%s -> ",
		    w->path[i]);
	if (o < w->errsz)
		snprintf(w->err + o, w->errsz - o, "%s", domain);
}

/* spf_domain - walk one domain's record at include/redirect depth depth */
static int
spf_domain(struct spf_walk *w, const char *domain, int depth)
{
	struct spf_record rec = { NULL, 0 };
	struct spf_txt *txt;
	struct spf_mx *mx;
	const struct spf_term *t, *redirect = NULL;
	char perr[256];
	size_t i;
	int has_all = 0, r, ret = -1;

	for (i = 0; i < (size_t)depth; i++)
		if (strcmp(w->path[i], domain) == 0) {
			spf_loop_err(w, depth, domain);
			return -1;
		}
	if (depth > SPF_DEPTH_MAX) {
		snprintf(w->err, w->errsz, "include/redirect nesting deeper "
		    "than %d levels (at %s)", SPF_DEPTH_MAX, domain);
		return -1;
	}
	/* why: two includes of one domain (a diamond, not a loop) give the
	 * same networks; walk it once */
	if ((r = spf_seen(w, domain)) != 0) {
		if (r == -1)
			snprintf(w->err, w->errsz, "out of memory");
		return r == 1 ? 0 : -1;
	}
	if ((txt = calloc(1, sizeof(*txt))) == NULL ||
	    (mx = calloc(1, sizeof(*mx))) == NULL) {
		free(txt);
		snprintf(w->err, w->errsz, "out of memory");
		return -1;
	}
	txt->domain = domain;
	if ((r = spf_query(w, domain, ns_t_txt, spf_txt_rr, txt)) == -1)
		goto out;
	if (txt->count == 0) {
		snprintf(w->err, w->errsz, "%s: %s", domain, r == 1 ?
		    "no such domain or no TXT record" : "no SPF record");
		goto out;
	}
	if (setup_spf_parse(txt->text, txt->len, &rec, perr,
	    sizeof(perr)) == -1) {
		snprintf(w->err, w->errsz, "%s: %s", domain, perr);
		goto out;
	}
	w->path[depth] = domain;
	for (i = 0; i < rec.n; i++)
		if (rec.t[i].is_all)
			has_all = 1;
	for (i = 0; i < rec.n; i++) {
		t = &rec.t[i];
		/* why: '-', '~' and '?' terms name hosts NOT to trust */
		if (t->qual != '+' || t->kind == SPF_T_IGNORED)
			continue;
		if (t->kind == SPF_T_MACRO) {
			spf_warn(w, domain, t, "a macro depends on the "
			    "connecting client, so it names no fixed network");
			continue;
		}
		if (t->kind == SPF_T_REDIRECT) {
			redirect = t;
			continue;
		}
		switch (t->kind) {
		case SPF_T_IP4:
			r = spf_add(w, AF_INET, t->addr, t->len4);
			break;
		case SPF_T_IP6:
			r = spf_add(w, AF_INET6, t->addr, t->len6);
			break;
		case SPF_T_A:
			r = spf_host(w, t->domain[0] != '\0' ? t->domain :
			    domain, t->len4, t->len6);
			break;
		case SPF_T_MX:
			mx->domain = t->domain[0] != '\0' ? t->domain : domain;
			mx->n = 0;
			r = spf_query(w, mx->domain, ns_t_mx, spf_mx_rr, mx);
			for (int k = 0; r != -1 && k < mx->n; k++)
				r = spf_host(w, mx->host[k], t->len4, t->len6);
			break;
		case SPF_T_INCLUDE:
			r = spf_domain(w, t->domain, depth + 1);
			break;
		default:
			r = 0;
			break;
		}
		if (r == -1)
			goto out;
	}
	/* RFC 7208 6.1: redirect= counts only when there is no "all" */
	if (redirect != NULL && !has_all &&
	    spf_domain(w, redirect->domain, depth + 1) == -1)
		goto out;
	ret = 0;
out:
	setup_spf_record_free(&rec);
	free(txt);
	free(mx);
	return ret;
}

/* setup_spf_walk - add the networks domain's SPF record authorises */
int
setup_spf_walk(struct setup_spf *s, const char *domain,
    struct setup_addrs *out, char *err, size_t errsz)
{
	struct spf_walk w;
	char name[SPF_DOMAIN_MAX + 1];
	long nets = s->nets;
	size_t i;
	int ret;

	if (spf_domain_ok(domain, strlen(domain), name) == -1) {
		snprintf(err, errsz, "not a domain name");
		return -1;
	}
	memset(&w, 0, sizeof(w));
	w.s = s;
	w.top = name;
	w.err = err;
	w.errsz = errsz;
	ret = spf_domain(&w, name, 0);
	if (ret == 0 && setup_addrs_merge(out, &w.acc) == -1) {
		snprintf(err, errsz, "out of memory");
		ret = -1;
	}
	if (ret == -1)
		s->nets = nets;	/* a failed domain adds nothing */
	setup_addrs_free(&w.acc);
	for (i = 0; i < w.nseen; i++)
		free(w.seen[i]);
	free(w.seen);
	return ret;
}
