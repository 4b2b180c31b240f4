/*
 * fuzz_greyctl_import.c - libFuzzer target: spamdb dump lines as
 * `greyctl import` checks them (a dump from another host is outside
 * input). Every line is checked; a line that passes must normalise and
 * encode into a store key and value that decode to the same record, as
 * the write pass would store it.
 * fuzz-sources: greydb/greyctl_import.c greydb/greyctl_util.c greydb/addr.c greydb/record.c greydb/env.c greydb/domains.c greydb/expire.c greydb/rules.c spamd/common/privsep.c spamd/common/log.c
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "greydb/gdb_private.h"
#include "greydb/greyctl.h"

/* fuzz_store - normalise, encode, decode: the same record comes back */
static void
fuzz_store(const struct gdb_rec *r)
{
	struct gdb_rec n, back;
	struct gdb_err err;
	unsigned char key[GDB_KEY_MAX], val[GDB_VAL_SIZE];
	size_t klen;

	if (gdb_norm_key(r, &n, &err) == -1)
		return;	/* gdb_put refuses it with a message: fine */
	if ((klen = gdb_key_encode(&n, key, sizeof(key))) == 0)
		return;
	gdb_val_encode(&n, val);
	memset(&back, 0, sizeof(back));
	if (gdb_key_decode(key, klen, &back, &err) == -1 ||
	    gdb_val_decode(val, sizeof(val), key, klen, &back, &err) == -1)
		__builtin_trap();
	if (back.type != n.type || strcmp(back.ip, n.ip) != 0 ||
	    strcmp(back.helo, n.helo) != 0 || strcmp(back.from, n.from) != 0 ||
	    strcmp(back.to, n.to) != 0 || back.first != n.first ||
	    back.pass != n.pass || back.expire != n.expire ||
	    back.bcount != n.bcount || back.pcount != n.pcount)
		__builtin_trap();
}

/* LLVMFuzzerTestOneInput - the input is a dump; each line is checked */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl;
	struct gdb_rec r;
	char why[256];
	int lines = 0;

	while (p < end && lines++ < 256) {
		size_t len;

		nl = memchr(p, '\n', (size_t)(end - p));
		len = (size_t)((nl != NULL ? nl : end) - p);
		why[0] = '\0';
		switch (greyctl_import_line(p, len, 1700000000, &r, why,
		    sizeof(why))) {
		case 0:
			fuzz_store(&r);
			break;
		case -1:
			if (why[0] == '\0')
				__builtin_trap();	/* a bad line says why */
			break;
		}
		p = nl != NULL ? nl + 1 : end;
	}
	return 0;
}
