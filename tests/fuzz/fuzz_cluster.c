/*
 * fuzz_cluster.c - libFuzzer target: the cluster catch-up's answer lines
 * as a peer (or whoever answers on its address) sends them, and the
 * request header as anyone reaching --http-listen sends it. Each input
 * line is parsed; a record that parses must format and parse back to
 * the same record. The first line is also tried as X-Spamd-Cluster.
 * fuzz-sources: pf-sync/cluster_codec.c greydb/addr.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pf-sync/cluster.h"

#define FUZZ_KEY	"0123456789abcdef0123456789abcdef01234567"

/* fuzz_line - parse one line; a record must survive a round trip */
static void
fuzz_line(const char *s, size_t n)
{
	struct cluster_line l, back;
	char why[256], buf[CLUSTER_LINE_MAX + 2];
	size_t m;

	if (cluster_parse_line(s, n, &l, why, sizeof(why)) != 0 ||
	    l.kind != CLUSTER_L_REC)
		return;
	m = cluster_format_rec(&l.rec, buf, sizeof(buf));
	if (m == 0)
		return;		/* a field too long for one line */
	if (cluster_parse_line(buf, m - 1, &back, why, sizeof(why)) != 0 ||
	    memcmp(&back.rec, &l.rec, sizeof(l.rec)) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl;
	char hdr[512], mac[CLUSTER_MAC_HEX], why[256];
	size_t n;
	int first = 1;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		fuzz_line(p, n);
		if (first) {
			first = 0;
			if (n < sizeof(hdr) && memchr(p, '\0', n) == NULL) {
				memcpy(hdr, p, n);
				hdr[n] = '\0';
				(void)cluster_req_check(FUZZ_KEY, 40,
				    "/cluster/digest", hdr, 1700000000, mac,
				    why, sizeof(why));
			}
		}
		p += n + 1;
	}
	return 0;
}
