/*
 * fuzz_dns_answers.c - libFuzzer target: DNS answers as a hostile or
 * broken name server sends them, through evdns into the DNSBL and
 * reverse-DNS and HELO checks (spamd/common/dnsbl.c, spamd/common/rdns.c), plus the
 * HELO syntax check on client bytes. A UDP socket on 127.0.0.1 plays the one name
 * server the checker asks; every query it receives is answered from the
 * next slice of the input (rcode, then either records built here - type,
 * TTL, data, the name a pointer to the question - or raw answer bytes).
 * Whatever the answers, each check's callback must run exactly once with
 * sane results (or be cancelled), and every listed zone's message must
 * expand.
 * fuzz-sources: spamd/common/dnsbl.c spamd/common/dnsbl_conf.c spamd/common/rdns.c spamd/common/blacklist.c spamd/common/bltemplate.c spamd/common/log.c
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "spamd/common/blacklist.h"
#include "spamd/common/dnsbl.h"
#include "spamd/common/log.h"

/* The fake name server and the checker, made once. */
struct fuzz_dns {
	struct event_base	*base;
	struct dnsbl		*d;
	int			 srv;		/* UDP socket: the server */
	uint32_t		 n;		/* inputs so far: client addrs */
};

/* What one input's checks reported. */
struct fuzz_done {
	int	dnsbl, rdns, helo;
};

/* The answer slices still to hand out. */
struct fuzz_in {
	const uint8_t	*p;
	size_t		 left;
};

static struct fuzz_dns fz;

/* fuzz_take - n bytes of input, or NULL when it ran out */
static const uint8_t *
fuzz_take(struct fuzz_in *in, size_t n)
{
	const uint8_t *p = in->p;

	if (in->left < n)
		return NULL;
	in->p += n;
	in->left -= n;
	return p;
}

/* fuzz_dnsbl_cb - a DNSBL result: at most one callback, sane fields */
static void
fuzz_dnsbl_cb(void *arg, const struct dnsbl_result *res)
{
	struct fuzz_done *done = arg;
	char out[8192];
	int i;

	if (done->dnsbl++ != 0 || res->nlisted < 0 ||
	    res->nlisted > res->nzones || res->nzones > DNSBL_MAX_ZONES)
		__builtin_trap();
	for (i = 0; i < res->nlisted; i++) {
		if (memchr(res->hit[i].answer, '\0',
		    sizeof(res->hit[i].answer)) == NULL)
			__builtin_trap();
		bl_expand(res->hit[i].msg, res->addr, 450, out, sizeof(out));
	}
}

/* fuzz_rdns_cb - a reverse DNS result: one callback, a bounded name */
static void
fuzz_rdns_cb(void *arg, const struct rdns_result *res)
{
	struct fuzz_done *done = arg;

	if (done->rdns++ != 0 || res->name == NULL ||
	    strlen(res->name) >= DNSBL_NAME_MAX)
		__builtin_trap();
	(void)rdns_status_name(res->status);
}

/* fuzz_helo_cb - a HELO check result: one callback */
static void
fuzz_helo_cb(void *arg, const struct helo_result *res)
{
	struct fuzz_done *done = arg;

	if (done->helo++ != 0 || res->name == NULL)
		__builtin_trap();
	(void)helo_status_name(res->status);
}

/* fuzz_reply - answer one query (q, qlen) from the input into out */
static size_t
fuzz_reply(const uint8_t *q, size_t qlen, struct fuzz_in *in, uint8_t *out,
    size_t outsz)
{
	const uint8_t *b, *rec;
	size_t qend = 12, len, i, n;
	uint16_t an = 0;

	/* the question: QNAME labels, then QTYPE and QCLASS */
	while (qend < qlen && q[qend] != 0)
		qend += (size_t)q[qend] + 1;
	qend += 5;
	if (qlen < 12 || qend > qlen || qend > outsz)
		return 0;
	memcpy(out, q, qend);
	out[2] = 0x81;		/* QR, RD */
	out[3] = 0x80;		/* RA, rcode 0 */
	out[4] = 0;
	out[5] = 1;
	memset(out + 6, 0, 6);
	len = qend;
	if ((b = fuzz_take(in, 2)) == NULL) {
		out[3] |= 3;	/* input ran out: NXDOMAIN */
		return len;
	}
	out[3] |= b[0] & 0x0f;
	if (b[0] & 0x10)
		out[2] |= 0x02;		/* TC: truncated */
	if (b[1] & 0x80) {
		/* raw answer bytes with a count from the input */
		n = b[1] & 0x7f;
		if ((b = fuzz_take(in, 1)) == NULL)
			return len;
		an = b[0];
		if ((rec = fuzz_take(in, n)) == NULL || len + n > outsz)
			return len;
		memcpy(out + len, rec, n);
		len += n;
	} else {
		/* records built here: type (1 A, 12 PTR, 28 AAAA, other),
		 * TTL, rdata */
		for (i = 0; i < (size_t)(b[1] & 0x0f); i++) {
			static const uint16_t types[4] = { 1, 12, 28, 5 };
			const uint8_t *h = fuzz_take(in, 3);
			size_t rdlen;

			if (h == NULL)
				break;
			rdlen = h[2] & 0x3f;
			if ((rec = fuzz_take(in, rdlen)) == NULL ||
			    len + 12 + rdlen > outsz)
				break;
			out[len++] = 0xc0;	/* name: the question's */
			out[len++] = 12;
			out[len++] = 0;
			out[len++] = (uint8_t)types[h[0] & 3];
			out[len++] = 0;
			out[len++] = 1;		/* IN */
			out[len++] = (h[1] & 0x80) ? 0xff : 0;	/* TTL */
			out[len++] = 0;
			out[len++] = (uint8_t)(h[1] << 1);
			out[len++] = h[0];
			out[len++] = 0;
			out[len++] = (uint8_t)rdlen;
			memcpy(out + len, rec, rdlen);
			len += rdlen;
			an++;
		}
	}
	out[6] = (uint8_t)(an >> 8);
	out[7] = (uint8_t)an;
	return len;
}

/* fuzz_serve - answer every query waiting at the server socket */
static void
fuzz_serve(struct fuzz_in *in)
{
	uint8_t q[1500], out[4096];
	struct sockaddr_storage from;
	socklen_t fl;
	ssize_t r;
	size_t n;

	for (;;) {
		fl = sizeof(from);
		r = recvfrom(fz.srv, q, sizeof(q), 0, (struct sockaddr *)&from,
		    &fl);
		if (r <= 0)
			return;
		n = fuzz_reply(q, (size_t)r, in, out, sizeof(out));
		if (n > 0)
			(void)sendto(fz.srv, out, n, 0,
			    (struct sockaddr *)&from, fl);
	}
}

/* fuzz_setup - the server socket and a checker with two zones, once */
static void
fuzz_setup(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	char server[64], err[512];

	log_init("fuzz_dns_answers", 1, -1);
	fz.base = event_base_new();
	fz.srv = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fz.base == NULL || fz.srv == -1 ||
	    bind(fz.srv, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fz.srv, (struct sockaddr *)&sin, &sl) == -1)
		abort();
	snprintf(server, sizeof(server), "127.0.0.1:%u", ntohs(sin.sin_port));
	/* a small cache: answers must keep coming from the server */
	fz.d = dnsbl_new(fz.base, server, 2000, 1, err, sizeof(err));
	if (fz.d == NULL ||
	    dnsbl_add_zone(fz.d, "bl.fuzz.example=127.0.0.2,127.0.0.3;"
	    "Listed at %A", "--dnsbl", 0, err, sizeof(err)) == -1 ||
	    dnsbl_add_zone(fz.d, "any.fuzz.example", "--dnsbl", 0, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_dns_answers: %s\n", err);
		abort();
	}
}

/*
 * LLVMFuzzerTestOneInput - byte 0: which checks (bit 0 DNSBL, bit 1
 * reverse DNS, bit 2 IPv6 client, bit 3 HELO lookups); then a HELO
 * argument up to a NUL; the rest feeds the server's answers.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_done done = { 0, 0, 0 };
	struct dnsbl_req *rq[3] = { NULL, NULL, NULL };
	struct sockaddr_storage ss;
	struct fuzz_in in;
	const uint8_t *nul;
	char helo[600];
	size_t hl;
	int mode, i, literal = 0;

	if (fz.base == NULL)
		fuzz_setup();
	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	/* the HELO argument: client bytes, checked without DNS */
	nul = memchr(data, '\0', size);
	hl = nul != NULL ? (size_t)(nul - data) : size;
	if (hl < sizeof(helo)) {
		memcpy(helo, data, hl);
		helo[hl] = '\0';
		(void)helo_status_name(helo_syntax(helo, "mx.fuzz.example",
		    NULL, 0, &literal));
	}
	in.p = nul != NULL ? nul + 1 : data + size;
	in.left = size - (size_t)(in.p - data);

	/* a new client address each time, so nothing comes from the cache */
	fz.n++;
	memset(&ss, 0, sizeof(ss));
	if (mode & 4) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, "2001:db8::", &s6->sin6_addr);
		memcpy(&s6->sin6_addr.s6_addr[12], &fz.n, 4);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(0x0a000000u | (fz.n & 0xffffff));
	}
	if (mode & 1)
		rq[0] = dnsbl_check(fz.d, (struct sockaddr *)&ss,
		    fuzz_dnsbl_cb, &done);
	if (mode & 2)
		rq[1] = rdns_check(fz.d, (struct sockaddr *)&ss, fuzz_rdns_cb,
		    &done);
	if ((mode & 8) && hl < sizeof(helo))
		rq[2] = helo_check(fz.d, helo, "mx.fuzz.example", NULL, 0,
		    fuzz_helo_cb, &done);
	/* serve and run the loop until all answered, bounded */
	for (i = 0; i < 64; i++) {
		if ((rq[0] == NULL || done.dnsbl) && (rq[1] == NULL ||
		    done.rdns) && (rq[2] == NULL || done.helo))
			break;
		fuzz_serve(&in);
		event_base_loop(fz.base, EVLOOP_NONBLOCK);
		if (i > 8)
			usleep(100);
	}
	/* a check the answers left hanging is cancelled: no callback now */
	if (rq[0] != NULL && !done.dnsbl)
		dnsbl_cancel(rq[0]);
	if (rq[1] != NULL && !done.rdns)
		dnsbl_cancel(rq[1]);
	if (rq[2] != NULL && !done.helo)
		dnsbl_cancel(rq[2]);
	event_base_loop(fz.base, EVLOOP_NONBLOCK);
	if (done.dnsbl > 1 || done.rdns > 1 || done.helo > 1)
		__builtin_trap();
	return 0;
}
