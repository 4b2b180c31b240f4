/*
 * fuzz_blacklist.c - libFuzzer target: blacklist control messages as the
 * config port receives them, then lookups and reply expansion on what
 * parsed, so a message that loads can never break a connection later.
 * fuzz-sources: spamd/common/blacklist.c spamd/common/bltemplate.c
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>

#include "spamd/common/blacklist.h"

static struct bl_set *fuzz_set;

/* LLVMFuzzerTestOneInput - parse, apply, look up and expand one message */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const probes[] = {
		"10.0.0.1", "127.0.0.9", "192.0.2.200", "255.255.255.255",
		"0.0.0.0", "::1", "2001:db8::1", "::ffff:10.0.0.1",
	};
	char err[256], out[8192];
	struct bl_list *list;
	struct bl_match m;
	struct bl_addr a;
	size_t i;
	int j;

	if (fuzz_set == NULL)
		fuzz_set = bl_set_new();
	list = bl_parse((const char *)data, size, err, sizeof(err));
	if (list == NULL)
		return 0;
	if (bl_set_apply(fuzz_set, list, err, sizeof(err)) == -1)
		return 0;
	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		memset(&a, 0, sizeof(a));
		a.family = strchr(probes[i], ':') ? AF_INET6 : AF_INET;
		if (inet_pton(a.family, probes[i], a.a) != 1)
			continue;
		bl_lookup(fuzz_set, &a, &m);
		for (j = 0; j < m.n; j++)
			bl_expand(m.msg[j], probes[i], 450, out, sizeof(out));
	}
	return 0;
}
