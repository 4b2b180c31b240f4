/*
 * dnsbl_probe - a small command line over the DNSBL/rDNS/HELO API, for
 * the integration test and for operators trying a zone by hand:
 *
 *   dnsbl_probe [--server HOST:PORT] [--timeout MS] [--cache N]
 *       [--zone SPEC]... [--zone-file PATH] [--myname NAME]
 *       [--repeat N] [--check ADDR]... [--rdns ADDR]... [--helo NAME]...
 *
 * Every check of one round starts at once; results print as they come,
 * one key=value line each, so the order shows what finished first:
 *   check ip=A nzones=N listed=K timeouts=T
 *   hit ip=A zone=Z answer=127.0.0.2 reply="550 ..."   (per listing zone)
 *   rdns ip=A result=ok name=host.example
 *   helo name=H result=not_found
 * then per zone "stats zone=Z queries=Q cache_hits=C coalesced=J
 * listed=L timeouts=T errors=E" and "inflight now=N peak=P". Config errors go to stderr
 * with exit status 2.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "spamd/common/blacklist.h"
#include "spamd/common/dnsbl.h"
#include "spamd/common/log.h"

#define PROBE_MAX	64	/* of each kind */

struct probe {
	struct event_base	*base;
	int			 left;	/* callbacks still to come */
};

/* probe_sa - a socket address from text; -1 if it is none */
static int
probe_sa(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

/* probe_done - one callback fewer to wait for */
static void
probe_done(struct probe *p)
{
	if (--p->left == 0)
		event_base_loopexit(p->base, NULL);
	fflush(stdout);
}

/* probe_check_cb - print a DNSBL result and its replies */
static void
probe_check_cb(void *arg, const struct dnsbl_result *res)
{
	struct probe *p = arg;
	char reply[1024], *s, *o;
	int i;

	printf("check ip=%s nzones=%d listed=%d timeouts=%d\n", res->addr,
	    res->nzones, res->nlisted, res->ntimeout);
	for (i = 0; i < res->nlisted; i++) {
		bl_expand(res->hit[i].msg, res->addr, 550, reply,
		    sizeof(reply));
		/* one line of output: CRLF between reply lines becomes '|' */
		for (s = o = reply; *s != '\0'; s++)
			if (*s != '\r')
				*o++ = *s == '\n' ? '|' : *s;
		while (o > reply && o[-1] == '|')
			o--;
		*o = '\0';
		printf("hit ip=%s zone=%s answer=%s reply=\"%s\"\n", res->addr,
		    res->hit[i].zone, res->hit[i].answer, reply);
	}
	probe_done(p);
}

/* probe_rdns_cb - print an rDNS result */
static void
probe_rdns_cb(void *arg, const struct rdns_result *res)
{
	printf("rdns ip=%s result=%s name=%s\n", res->addr,
	    rdns_status_name(res->status), res->name[0] ? res->name : "-");
	probe_done(arg);
}

/* probe_helo_cb - print a HELO result */
static void
probe_helo_cb(void *arg, const struct helo_result *res)
{
	printf("helo name=%s result=%s\n", res->name,
	    helo_status_name(res->status));
	probe_done(arg);
}

/* usage - print the synopsis and exit 2 */
static void
usage(void)
{
	fprintf(stderr, "usage: dnsbl_probe [--server HOST:PORT] "
	    "[--timeout MS] [--cache N] [--zone SPEC]... [--zone-file PATH]\n"
	    "    [--myname NAME] [--repeat N] [--check ADDR]... "
	    "[--rdns ADDR]... [--helo NAME]...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "cache", required_argument, NULL, 'C' },
		{ "zone", required_argument, NULL, 'z' },
		{ "zone-file", required_argument, NULL, 'f' },
		{ "myname", required_argument, NULL, 'm' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "check", required_argument, NULL, 'c' },
		{ "rdns", required_argument, NULL, 'R' },
		{ "helo", required_argument, NULL, 'H' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct sockaddr_storage checks[PROBE_MAX], rdnss[PROBE_MAX];
	const char *zones[PROBE_MAX], *helos[PROBE_MAX];
	const char *server = NULL, *zfile = NULL, *myname = NULL, *e;
	int nchecks = 0, nrdns = 0, nzones = 0, nhelo = 0, timeout = 0;
	int repeat = 1, verbose = 0, ch, i, round, nst, now, peak;
	long long cache = 0;
	struct dnsbl_zone_stats st[DNSBL_MAX_ZONES];
	struct event_base *base;
	struct dnsbl *d;
	struct probe p;
	char err[1024];

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		e = NULL;
		switch (ch) {
		case 's':
			server = optarg;
			break;
		case 't':
			timeout = (int)strtonum(optarg, 1, 600000, &e);
			break;
		case 'C':
			cache = strtonum(optarg, 1, 100000000, &e);
			break;
		case 'z':
			if (nzones == PROBE_MAX)
				usage();
			zones[nzones++] = optarg;
			break;
		case 'f':
			zfile = optarg;
			break;
		case 'm':
			myname = optarg;
			break;
		case 'r':
			repeat = (int)strtonum(optarg, 1, 1000, &e);
			break;
		case 'c':
			if (nchecks == PROBE_MAX ||
			    probe_sa(optarg, &checks[nchecks++]) == -1) {
				fprintf(stderr, "dnsbl_probe: --check %s: not an "
				    "address\n", optarg);
				return 2;
			}
			break;
		case 'R':
			if (nrdns == PROBE_MAX ||
			    probe_sa(optarg, &rdnss[nrdns++]) == -1) {
				fprintf(stderr, "dnsbl_probe: --rdns %s: not an "
				    "address\n", optarg);
				return 2;
			}
			break;
		case 'H':
			if (nhelo == PROBE_MAX)
				usage();
			helos[nhelo++] = optarg;
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			usage();
		}
		if (e != NULL) {
			fprintf(stderr, "dnsbl_probe: bad number %s: %s\n",
			    optarg, e);
			return 2;
		}
	}
	if (optind != argc)
		usage();
	log_init("dnsbl_probe", 1, verbose);

	if ((base = event_base_new()) == NULL) {
		fprintf(stderr, "dnsbl_probe: event_base_new failed\n");
		return 1;
	}
	d = dnsbl_new(base, server, timeout, (size_t)cache, err, sizeof(err));
	if (d == NULL) {
		fprintf(stderr, "dnsbl_probe: %s\n", err);
		event_base_free(base);
		return 2;
	}
	for (i = 0; i < nzones; i++)
		if (dnsbl_add_zone(d, zones[i], "--dnsbl", 0, err,
		    sizeof(err)) == -1)
			goto bad;
	if (zfile != NULL && dnsbl_load_file(d, zfile, err, sizeof(err)) ==
	    -1)
		goto bad;
	printf("zones n=%d\n", dnsbl_nzones(d));

	p.base = base;
	for (round = 0; round < repeat; round++) {
		p.left = 1;	/* held until every request is started */
		printf("round n=%d\n", round + 1);
		for (i = 0; i < nchecks; i++)
			if (dnsbl_check(d, (struct sockaddr *)&checks[i],
			    probe_check_cb, &p) != NULL)
				p.left++;
		for (i = 0; i < nrdns; i++)
			if (rdns_check(d, (struct sockaddr *)&rdnss[i],
			    probe_rdns_cb, &p) != NULL)
				p.left++;
		for (i = 0; i < nhelo; i++)
			if (helo_check(d, helos[i], myname, NULL, 0,
			    probe_helo_cb, &p) != NULL)
				p.left++;
		if (--p.left > 0)
			event_base_dispatch(base);
	}

	nst = dnsbl_stats(d, st, DNSBL_MAX_ZONES);
	for (i = 0; i < nst; i++)
		printf("stats zone=%s queries=%llu cache_hits=%llu "
		    "coalesced=%llu listed=%llu timeouts=%llu errors=%llu\n",
		    st[i].zone, (unsigned long long)st[i].queries,
		    (unsigned long long)st[i].cache_hits,
		    (unsigned long long)st[i].coalesced,
		    (unsigned long long)st[i].listed,
		    (unsigned long long)st[i].timeouts,
		    (unsigned long long)st[i].errors);
	dnsbl_inflight(d, &now, &peak);
	printf("inflight now=%d peak=%d\n", now, peak);
	dnsbl_free(d);
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
	return 0;
bad:
	fprintf(stderr, "dnsbl_probe: %s\n", err);
	dnsbl_free(d);
	event_base_free(base);
	return 2;
}
