/*
 * rdns.c - forward-confirmed reverse DNS of a client (PTR, then the
 * name's A or AAAA must hold the address) and HELO/EHLO name checks
 * (syntax, our own name, then A or AAAA). Both ride on dnsbl.c's request
 * machinery: one callback, from the loop, unless cancelled; final results
 * are cached like DNSBL answers.
 */
#define DNSBL_INTERNAL
#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "spamd/common/blacklist.h"
#include "spamd/common/dnsbl.h"
#include "spamd/common/log.h"

/* req->stage bits of a HELO check: what went wrong on the way */
#define HELO_SAW_TIMEOUT	0x1
#define HELO_SAW_ERROR		0x2

static void	rdns_q_done(struct dnsbl_req *, int, int, char, int, int,
		    void *);
static void	rdns_deliver(struct dnsbl_req *);
static void	helo_q_done(struct dnsbl_req *, int, int, char, int, int,
		    void *);
static void	helo_deliver(struct dnsbl_req *);

/* How dnsbl.c answers an FCrDNS and a HELO request (dnsbl.h). */
static const struct dnsbl_req_ops rdns_ops = { rdns_q_done, rdns_deliver };
static const struct dnsbl_req_ops helo_ops = { helo_q_done, helo_deliver };

/* rdns_status_name - a status as a log word */
const char *
rdns_status_name(enum rdns_status st)
{
	switch (st) {
	case RDNS_OK:
		return "ok";
	case RDNS_NO_PTR:
		return "no_ptr";
	case RDNS_NOT_CONFIRMED:
		return "not_confirmed";
	case RDNS_TIMEOUT:
		return "timeout";
	case RDNS_ERROR:
		return "error";
	}
	return "error";
}

/* helo_status_name - a status as a log word */
const char *
helo_status_name(enum helo_status st)
{
	switch (st) {
	case HELO_OK:
		return "ok";
	case HELO_BAD_SYNTAX:
		return "bad_syntax";
	case HELO_OURS:
		return "ours";
	case HELO_NOT_FOUND:
		return "not_found";
	case HELO_TIMEOUT:
		return "timeout";
	case HELO_ERROR:
		return "error";
	}
	return "error";
}

/* rdns_min_ttl - keep the smallest TTL of a chain of answers */
static void
rdns_min_ttl(struct dnsbl_req *req, int ttl)
{
	uint32_t t = ttl < 0 ? 0 : (uint32_t)ttl;

	if (req->ttl == 0 || t < req->ttl)
		req->ttl = t;
}

/* rdns_name_ok - a PTR name we are willing to look up and report */
static int
rdns_name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '.' && s[i] != '_')
			return 0;
	return 1;
}

/* rdns_check - start a forward-confirmed reverse DNS check */
struct dnsbl_req *
rdns_check(struct dnsbl *d, const struct sockaddr *client, rdns_cb cb,
    void *arg)
{
	struct dnsbl_req *req;
	struct dnsbl_answer ans;
	struct bl_addr a;
	char key[96];

	if (client == NULL || bl_addr_from_sa(client, &a) == -1)
		return NULL;
	if ((req = dnsbl_req_new(d, DNSBL_REQ_RDNS, &rdns_ops, &a, arg)) == NULL)
		return NULL;
	req->cb.rdns = cb;
	req->status = RDNS_TIMEOUT;
	snprintf(key, sizeof(key), "rdns:%s", req->addrtext);
	if (dnsbl_cache_get(dnsbl_cache_of(d), key, dnsbl_now(), &ans)) {
		req->status = ans.code;
		strlcpy(req->name, ans.name, sizeof(req->name));
	} else if (dnsbl_q_start(req, 0, DNS_PTR, NULL, &a) == -1)
		req->status = RDNS_ERROR;
	dnsbl_req_arm(req);
	return req;
}

/* rdns_confirmed - whether forward answers hold the client's address */
static int
rdns_confirmed(const struct dnsbl_req *req, char type, int count,
    const void *addresses)
{
	const uint8_t *p = addresses;
	int i, len = type == DNS_IPv4_A ? 4 : 16;

	if (addresses == NULL || (type == DNS_IPv4_A) !=
	    (req->addr.family == AF_INET))
		return 0;
	for (i = 0; i < count; i++)
		if (memcmp(p + (size_t)i * (size_t)len, req->addr.a,
		    (size_t)len) == 0)
			return 1;
	return 0;
}

/* rdns_q_done - the PTR or the forward answer came in */
static void
rdns_q_done(struct dnsbl_req *req, int slot, int result, char type,
    int count, int ttl, void *addresses)
{
	enum dnsbl_status st = dnsbl_status_of(result);
	struct dnsbl_answer ans;
	char key[96];
	char *ptr;
	size_t i;

	if (st == DNSBL_ST_TIMEOUT || st == DNSBL_ST_ERROR) {
		req->status = st == DNSBL_ST_TIMEOUT ? RDNS_TIMEOUT :
		    RDNS_ERROR;
		return;		/* nothing cached: try again next time */
	}
	rdns_min_ttl(req, ttl);
	if (req->stage == 0) {
		if (st != DNSBL_ST_FOUND || type != DNS_PTR || count < 1 ||
		    addresses == NULL) {
			req->status = RDNS_NO_PTR;
			goto done;
		}
		/* evdns hands a PTR answer as a pointer to the name */
		ptr = *(char **)addresses;
		strlcpy(req->name, ptr != NULL ? ptr : "", sizeof(req->name));
		for (i = 0; req->name[i] != '\0'; i++)
			req->name[i] = (char)tolower((unsigned char)req->name[i]);
		if (!rdns_name_ok(req->name)) {
			req->status = RDNS_NOT_CONFIRMED;
			goto done;
		}
		req->stage = 1;
		if (dnsbl_q_start(req, 0, req->addr.family == AF_INET ?
		    DNS_IPv4_A : DNS_IPv6_AAAA, req->name, NULL) == -1)
			req->status = RDNS_ERROR;
		return;
	}
	req->status = st == DNSBL_ST_FOUND &&
	    rdns_confirmed(req, type, count, addresses) ? RDNS_OK :
	    RDNS_NOT_CONFIRMED;
done:
	memset(&ans, 0, sizeof(ans));
	ans.status = req->status == RDNS_NO_PTR ? DNSBL_ST_NXDOMAIN :
	    DNSBL_ST_FOUND;
	ans.code = req->status;
	strlcpy(ans.name, req->name, sizeof(ans.name));
	snprintf(key, sizeof(key), "rdns:%s", req->addrtext);
	dnsbl_cache_put(dnsbl_cache_of(req->d), key, &ans, req->ttl,
	    dnsbl_now());
	(void)slot;
}

/* rdns_deliver - log and report a reverse DNS check */
static void
rdns_deliver(struct dnsbl_req *req)
{
	struct rdns_result res;
	char ename[4 * DNSBL_NAME_MAX + 1];

	if (req->timed_out && req->status != RDNS_ERROR)
		req->status = RDNS_TIMEOUT;
	res.addr = req->addrtext;
	res.status = req->status;
	res.name = req->name;
	/* debug: the engine logs the result with its session and action */
	log_debug("event=rdns ip=%s result=%s name=%s", req->addrtext,
	    rdns_status_name(res.status), req->name[0] != '\0' ?
	    log_escape(req->name, strlen(req->name), 253, ename,
	    sizeof(ename)) : "-");
	if (req->cb.rdns != NULL)
		req->cb.rdns(req->arg, &res);
}

/* helo_is_ours - whether a parsed address is one of ours */
static int
helo_is_ours(int family, const void *a, const struct sockaddr *const *ours,
    int nours)
{
	struct bl_addr b;
	int i;

	for (i = 0; ours != NULL && i < nours; i++) {
		if (ours[i] == NULL || bl_addr_from_sa(ours[i], &b) == -1 ||
		    b.family != family)
			continue;
		if (memcmp(b.a, a, family == AF_INET ? 4 : 16) == 0)
			return 1;
	}
	return 0;
}

/* helo_parse_addr - text as an address (v4-mapped v6 becomes v4) */
static int
helo_parse_addr(const char *s, int v6, uint8_t out[16])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };

	if (!v6)
		return inet_pton(AF_INET, s, out) == 1 ? AF_INET : -1;
	if (inet_pton(AF_INET6, s, out) != 1)
		return -1;
	if (memcmp(out, mapped, 12) == 0) {
		memmove(out, out + 12, 4);
		return AF_INET;
	}
	return AF_INET6;
}

/* helo_syntax - check a HELO argument without DNS */
enum helo_status
helo_syntax(const char *helo, const char *myname,
    const struct sockaddr *const *ours, int nours, int *literal)
{
	char buf[DNSBL_NAME_MAX];
	uint8_t a[16];
	size_t n, i, label = 0, mylen;
	int fam, digits = 1;

	*literal = 0;
	n = helo != NULL ? strlen(helo) : 0;
	if (n == 0 || n >= sizeof(buf))
		return HELO_BAD_SYNTAX;
	if (helo[0] == '[') {
		if (helo[n - 1] != ']' || n < 3)
			return HELO_BAD_SYNTAX;
		memcpy(buf, helo + 1, n - 2);
		buf[n - 2] = '\0';
		fam = strncasecmp(buf, "IPv6:", 5) == 0 ?
		    helo_parse_addr(buf + 5, 1, a) : helo_parse_addr(buf, 0, a);
		if (fam == -1)
			return HELO_BAD_SYNTAX;
		*literal = 1;
		return helo_is_ours(fam, a, ours, nours) ? HELO_OURS : HELO_OK;
	}
	memcpy(buf, helo, n + 1);
	if (buf[n - 1] == '.')
		buf[--n] = '\0';	/* "mx.example.org." is the same name */
	if (myname != NULL && (mylen = strlen(myname)) > 0) {
		if (myname[mylen - 1] == '.')
			mylen--;
		if (mylen == n && strncasecmp(buf, myname, n) == 0)
			return HELO_OURS;
	}
	/* a bare address is no name, but naming ours is the worse lie */
	if ((fam = helo_parse_addr(buf, 0, a)) != -1 ||
	    (fam = helo_parse_addr(buf, 1, a)) != -1)
		return helo_is_ours(fam, a, ours, nours) ? HELO_OURS :
		    HELO_BAD_SYNTAX;
	if (n == 0 || n > 253)
		return HELO_BAD_SYNTAX;
	for (i = 0; i <= n; i++) {
		if (i == n || buf[i] == '.') {
			if (label == 0 || buf[i - 1] == '-')
				return HELO_BAD_SYNTAX;
			if (i == n)
				break;
			label = 0;
			digits = 1;
			continue;
		}
		if (!isalnum((unsigned char)buf[i]) && buf[i] != '-' &&
		    buf[i] != '_')
			return HELO_BAD_SYNTAX;
		if (label == 0 && buf[i] == '-')
			return HELO_BAD_SYNTAX;
		if (!isdigit((unsigned char)buf[i]))
			digits = 0;
		if (++label > 63)
			return HELO_BAD_SYNTAX;
	}
	/* a bare word is no FQDN; an all-digit top label is no TLD */
	if (memchr(buf, '.', n) == NULL || digits)
		return HELO_BAD_SYNTAX;
	return HELO_OK;
}

/* helo_check - syntax, then A and AAAA of the HELO name */
struct dnsbl_req *
helo_check(struct dnsbl *d, const char *helo, const char *myname,
    const struct sockaddr *const *ours, int nours, helo_cb cb, void *arg)
{
	struct dnsbl_req *req;
	struct dnsbl_answer ans;
	char key[DNSBL_NAME_MAX + 8];
	size_t i, n;
	int literal;

	if ((req = dnsbl_req_new(d, DNSBL_REQ_HELO, &helo_ops, NULL, arg)) == NULL)
		return NULL;
	req->cb.helo = cb;
	if (helo != NULL)
		strlcpy(req->name, helo, sizeof(req->name));
	req->status = helo_syntax(helo, myname, ours, nours, &literal);
	if (req->status != HELO_OK || literal) {
		dnsbl_req_arm(req);
		return req;
	}
	/* the name to ask DNS: lower case, no final dot */
	n = strlen(helo);
	if (helo[n - 1] == '.')
		n--;
	snprintf(key, sizeof(key), "helo:%.*s", (int)n, helo);
	for (i = 0; key[i] != '\0'; i++)
		key[i] = (char)tolower((unsigned char)key[i]);
	if (dnsbl_cache_get(dnsbl_cache_of(d), key, dnsbl_now(), &ans)) {
		req->status = ans.code;
		dnsbl_req_arm(req);
		return req;
	}
	req->status = HELO_NOT_FOUND;
	if (dnsbl_q_start(req, 0, DNS_IPv4_A, key + 5, NULL) == -1 ||
	    dnsbl_q_start(req, 1, DNS_IPv6_AAAA, key + 5, NULL) == -1)
		req->stage |= HELO_SAW_ERROR;
	dnsbl_req_arm(req);
	return req;
}

/* helo_q_done - an A or AAAA answer for a HELO name */
static void
helo_q_done(struct dnsbl_req *req, int slot, int result, char type,
    int count, int ttl, void *addresses)
{
	enum dnsbl_status st = dnsbl_status_of(result);
	struct dnsbl_answer ans;
	char key[DNSBL_NAME_MAX + 8];
	size_t i, n;

	if (st == DNSBL_ST_FOUND && count > 0) {
		req->status = HELO_OK;
		rdns_min_ttl(req, ttl);
	} else if (st == DNSBL_ST_NXDOMAIN)
		rdns_min_ttl(req, ttl);
	else if (st == DNSBL_ST_TIMEOUT)
		req->stage |= HELO_SAW_TIMEOUT;
	else if (st == DNSBL_ST_ERROR)
		req->stage |= HELO_SAW_ERROR;
	if (req->pending > 0)
		return;
	if (req->status != HELO_OK && (req->stage & HELO_SAW_TIMEOUT))
		req->status = HELO_TIMEOUT;
	else if (req->status != HELO_OK && (req->stage & HELO_SAW_ERROR))
		req->status = HELO_ERROR;
	if (req->status != HELO_OK && req->status != HELO_NOT_FOUND)
		return;		/* trouble is not cached */
	n = strlen(req->name);
	if (n > 0 && req->name[n - 1] == '.')
		n--;
	snprintf(key, sizeof(key), "helo:%.*s", (int)n, req->name);
	for (i = 0; key[i] != '\0'; i++)
		key[i] = (char)tolower((unsigned char)key[i]);
	memset(&ans, 0, sizeof(ans));
	ans.status = req->status == HELO_OK ? DNSBL_ST_FOUND :
	    DNSBL_ST_NXDOMAIN;
	ans.code = req->status;
	dnsbl_cache_put(dnsbl_cache_of(req->d), key, &ans, req->ttl,
	    dnsbl_now());
	(void)slot;
	(void)type;
	(void)addresses;
}

/* helo_deliver - log and report a HELO check */
static void
helo_deliver(struct dnsbl_req *req)
{
	struct helo_result res;
	char ename[4 * DNSBL_NAME_MAX + 1];

	if (req->timed_out && req->status != HELO_OK)
		req->status = HELO_TIMEOUT;
	else if (req->status == HELO_NOT_FOUND &&
	    (req->stage & HELO_SAW_ERROR))
		req->status = HELO_ERROR;	/* a query never started */
	res.name = req->name;
	res.status = req->status;
	/* debug: the engine logs the result with its session and action */
	log_debug("event=helo helo=%s result=%s",
	    log_escape(req->name, strlen(req->name), 100, ename,
	    sizeof(ename)), helo_status_name(res.status));
	if (req->cb.helo != NULL)
		req->cb.helo(req->arg, &res);
}
