/*
 * fuzz_msg.c - libFuzzer target: the engine <-> writer frame decoder fed
 * arbitrary bytes in arbitrary chunks, as a broken or hostile peer would.
 * fuzz-sources: spamd/common/msg.c
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>

#include "spamd/common/msg.h"

/* LLVMFuzzerTestOneInput - feed data in chunks sized by its first byte */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer *in = evbuffer_new();
	struct msg m;
	char err[256];
	size_t chunk, off = 1;
	int r = 0;

	if (in == NULL || size == 0)
		goto out;
	chunk = (size_t)data[0] + 1;
	while (off < size && r != -1) {
		size_t n = size - off < chunk ? size - off : chunk;

		evbuffer_add(in, data + off, n);
		off += n;
		while ((r = msg_get(in, &m, err, sizeof(err))) == 1) {
			/* a decoded frame must re-encode to the same bytes */
			struct evbuffer *re = evbuffer_new();
			const char *s[MSG_MAX_STR];
			uint32_t i;

			for (i = 0; i < m.nstr; i++)
				s[i] = m.str[i];
			if (re != NULL && msg_put(re, m.type, m.id, m.num,
			    m.nstr, s, m.len) != 0)
				__builtin_trap();
			evbuffer_free(re);
			msg_clear(&m);
		}
	}
out:
	if (in != NULL)
		evbuffer_free(in);
	return 0;
}
