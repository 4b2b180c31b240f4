/*
 * setup_spf.h - spamd-setup --spf-walk: the networks a domain's SPF record
 * (RFC 7208) authorises, so the big senders' retry pools can be kept out of
 * greylisting (the nospamd set), as OpenBSD's `smtpctl spf walk` does.
 *
 * setup_spf_parse turns one record into terms (no DNS); the walker
 * (setup_spf_open / setup_spf_walk / setup_spf_close) resolves a domain's
 * record with glibc's resolver, follows include: and redirect=, and adds
 * the ip4/ip6/a/mx networks to a struct setup_addrs (spamd/setup/setup.h), which
 * setup_collapse and setup_cidr_each then print as a list file.
 */
#ifndef SPAMD_SETUP_SPF_H
#define SPAMD_SETUP_SPF_H

#include <stddef.h>
#include <stdint.h>

#include "spamd/setup/setup.h"

#define SPF_DEPTH_MAX		10	/* include/redirect nesting */
#define SPF_QUERIES_MAX		500	/* DNS queries a run */
#define SPF_NETS_MAX		10000	/* networks a run */
#define SPF_RECORD_MAX		4096	/* bytes of one TXT record */
#define SPF_MX_MAX		10	/* MX hosts per mx term (RFC 7208 4.6.4) */
#define SPF_DOMAIN_MAX		253	/* a domain name's text length */
#define SPF_TERM_TEXT		96	/* bytes of a term kept for messages */

/* What a term of a record is. */
enum spf_kind {
	SPF_T_IP4 = 0,
	SPF_T_IP6,
	SPF_T_A,
	SPF_T_MX,
	SPF_T_INCLUDE,
	SPF_T_REDIRECT,
	SPF_T_IGNORED,	/* ptr, exists, all, exp= and other modifiers */
	SPF_T_MACRO	/* a domain-spec with %{...}: skipped with a warning */
};

/* One term of an SPF record. */
struct spf_term {
	enum spf_kind	kind;
	char		qual;		/* '+', '-', '~' or '?' */
	int		is_all;		/* the "all" mechanism (SPF_T_IGNORED) */
	char		domain[SPF_DOMAIN_MAX + 1]; /* "" = the record's own */
	int		len4;		/* prefix for IPv4 (ip4, a, mx), 1-32 */
	int		len6;		/* prefix for IPv6 (ip6, a, mx), 1-128 */
	uint8_t		addr[16];	/* ip4 (first 4 bytes) / ip6 */
	char		text[SPF_TERM_TEXT]; /* the term as written (cut) */
};

/* A parsed record. */
struct spf_record {
	struct spf_term	*t;
	size_t		 n;
};

/*
 * setup_spf_is_spf - whether a TXT record's text is an SPF record ("v=spf1"
 * alone or followed by a space, case-insensitive)
 */
int	setup_spf_is_spf(const char *txt, size_t len);
/*
 * setup_spf_parse - split an SPF record into terms. -1 with err naming the
 * term and its byte offset (unknown mechanism, bad address or prefix, bad
 * domain-spec, second redirect=, control byte, not v=spf1).
 */
int	setup_spf_parse(const char *txt, size_t len, struct spf_record *out,
	    char *err, size_t errsz);
/* setup_spf_record_free - free the terms and zero the record */
void	setup_spf_record_free(struct spf_record *r);

/* How the walker looks things up. */
struct setup_spf_opt {
	int		 family;	/* 0 both, 4 IPv4 only, 6 IPv6 only */
	const char	*server;	/* "ipv4:port" or NULL: resolv.conf */
	int		 timeout;	/* seconds a try */
	int		 tries;
	/* warnings (a skipped macro term): "DOMAIN: what" */
	setup_warn_fn	*warn;
	void		*warnarg;
};

struct setup_spf;

/* setup_spf_open - a walker (the resolver set up); NULL with err */
struct setup_spf *setup_spf_open(const struct setup_spf_opt *o, char *err,
	    size_t errsz);
/*
 * setup_spf_walk - add the networks domain's SPF record authorises to out
 * (which the caller frees). -1 with err; out then holds nothing of this
 * domain (it is all or nothing a domain). The query and network bounds
 * count over every walk of one walker.
 */
int	setup_spf_walk(struct setup_spf *s, const char *domain,
	    struct setup_addrs *out, char *err, size_t errsz);
/* setup_spf_queries - DNS queries the walker has sent so far */
long	setup_spf_queries(const struct setup_spf *s);
/* setup_spf_close - free the walker (NULL allowed) */
void	setup_spf_close(struct setup_spf *s);

#endif /* SPAMD_SETUP_SPF_H */
