/*
 * fuzz_dnsbl.c - libFuzzer target: DNSBL zone specs and zone files as an
 * operator (or a file another process read) gives them: each line through
 * dnsbl_spec_parse, the whole text through dnsbl_conf_read_text and
 * dnsbl_load_text into a live checker; every accepted message must expand,
 * and every accepted zone must give query names that fit.
 * fuzz-sources: spamd/common/dnsbl.c spamd/common/dnsbl_conf.c spamd/common/rdns.c spamd/common/blacklist.c spamd/common/bltemplate.c spamd/common/log.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/event.h>

#include "spamd/common/blacklist.h"
#include "spamd/common/dnsbl.h"
#include "spamd/common/log.h"

static struct event_base *fuzz_base;
static struct dnsbl *fuzz_d;

/* fuzz_use_spec - an accepted spec must be usable: expand, query names */
static void
fuzz_use_spec(const struct dnsbl_spec *sp)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	char out[8192], name[DNSBL_NAME_MAX];

	if (sp->msg == NULL || strlen(sp->zone) >= DNSBL_NAME_MAX ||
	    sp->ncodes < 0 || sp->ncodes > DNSBL_MAX_CODES)
		__builtin_trap();
	bl_expand(sp->msg, "192.0.2.1", 450, out, sizeof(out));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0xc0000201);
	(void)dnsbl_qname((struct sockaddr *)&sin, sp->zone, name,
	    sizeof(name));
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	(void)dnsbl_qname((struct sockaddr *)&sin6, sp->zone, name,
	    sizeof(name));
}

/*
 * LLVMFuzzerTestOneInput - the input is a zone file; each line is also
 * tried as a --dnsbl flag, and the whole as a message to translate.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dnsbl_spec specs[DNSBL_MAX_ZONES], one;
	char err[512], line[DNSBL_LINE_MAX + 1], tmpl[BL_MSG_MAX + 1];
	const char *p = (const char *)data, *end = p + size, *nl;
	int n = 0, i, lineno = 0;

	if (fuzz_base == NULL) {
		log_init("fuzz_dnsbl", 1, -1);
		fuzz_base = event_base_new();
		/* a server that is never asked: nothing here sends */
		fuzz_d = dnsbl_new(fuzz_base, "127.0.0.1:9", 1000, 64, err,
		    sizeof(err));
		if (fuzz_base == NULL || fuzz_d == NULL)
			abort();
	}
	while (p < end && lineno < 64) {
		size_t len;

		nl = memchr(p, '\n', (size_t)(end - p));
		len = (size_t)((nl != NULL ? nl : end) - p);
		lineno++;
		if (len <= DNSBL_LINE_MAX) {
			memcpy(line, p, len);
			line[len] = '\0';
			memset(&one, 0, sizeof(one));
			if (dnsbl_spec_parse(line, lineno & 1 ? "fuzz" : NULL,
			    lineno, &one, err, sizeof(err)) == 0) {
				fuzz_use_spec(&one);
				dnsbl_spec_clear(&one);
			}
		}
		p = nl != NULL ? nl + 1 : end;
	}
	memset(specs, 0, sizeof(specs));
	if (dnsbl_conf_read_text("fuzz.zones", (const char *)data, size,
	    specs, DNSBL_MAX_ZONES, &n, err, sizeof(err)) == 0) {
		if (n < 0 || n > DNSBL_MAX_ZONES)
			__builtin_trap();
		for (i = 0; i < n; i++) {
			fuzz_use_spec(&specs[i]);
			dnsbl_spec_clear(&specs[i]);
		}
	} else if (strncmp(err, "fuzz.zones", 10) != 0) {
		__builtin_trap();	/* an error names the file */
	}
	if (dnsbl_load_text(fuzz_d, "fuzz.zones", (const char *)data, size,
	    err, sizeof(err)) == 0 && dnsbl_nzones(fuzz_d) > DNSBL_MAX_ZONES)
		__builtin_trap();
	(void)dnsbl_translate_msg((const char *)data, size, tmpl, sizeof(tmpl),
	    err, sizeof(err));
	return 0;
}
