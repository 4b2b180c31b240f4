/*
 * fuzz_setup_list.c - libFuzzer target: list files as spamd-setup fetches
 * them (plain or gzip, any bytes), through the whole pipeline: parse,
 * collapse, subtract a white list, count CIDR blocks and build the
 * control message, which the engine's parser must then accept.
 * fuzz-sources: spamd/setup/setup_list.c spamd/setup/setup_cidr.c spamd/common/blacklist.c spamd/common/bltemplate.c spamd/common/log.c
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <zlib.h>

#include "spamd/common/blacklist.h"
#include "spamd/common/log.h"
#include "spamd/setup/setup.h"

#define FUZZ_CAP	(1u << 20)	/* inflated bytes taken */

/* fuzz_warn - bad lines are expected; keep them quiet */
static void
fuzz_warn(void *arg, const char *text)
{
	(void)arg;
	if (text == NULL || strstr(text, "fuzz") == NULL)
		__builtin_trap();	/* a warning names the list */
}

/* fuzz_gzip - compress in[0..len) as one gzip member into out */
static int
fuzz_gzip(const uint8_t *in, size_t len, struct setup_buf *out)
{
	z_stream z;
	uint8_t buf[4096];
	int r;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	do {
		z.next_out = buf;
		z.avail_out = sizeof(buf);
		r = deflate(&z, Z_FINISH);
		if (setup_buf_add(out, buf, sizeof(buf) - z.avail_out) == -1)
			r = Z_MEM_ERROR;
	} while (r == Z_OK);
	deflateEnd(&z);
	return r == Z_STREAM_END ? 0 : -1;
}

/*
 * LLVMFuzzerTestOneInput - byte 0: bit 0 gzip the rest here first (so the
 * inflate path sees valid streams too), bit 1 take the last quarter as a
 * white list; the rest: the list file's bytes (gzip if it has the magic).
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct setup_addrs black, white;
	struct setup_buf gz, plain, msg;
	struct bl_list *bl;
	const char *p;
	char err[512];
	size_t len, wlen = 0;
	long nbad = 0, n4, n6;
	int mode;

	if (size < 1)
		return 0;
	log_init("fuzz_setup_list", 1, -1);
	mode = data[0];
	data++;
	size--;
	memset(&black, 0, sizeof(black));
	memset(&white, 0, sizeof(white));
	memset(&gz, 0, sizeof(gz));
	memset(&plain, 0, sizeof(plain));
	memset(&msg, 0, sizeof(msg));
	p = (const char *)data;
	len = size;
	if (mode & 1) {
		if (fuzz_gzip(data, size, &gz) == -1)
			goto out;
		p = gz.p;
		len = gz.len;
	}
	if (setup_is_gzip(p, len)) {
		if (setup_gunzip(p, len, FUZZ_CAP, &plain, err,
		    sizeof(err)) == -1)
			goto out;
		/* what we compressed comes back the same */
		if ((mode & 1) && (plain.len != size ||
		    (size > 0 && memcmp(plain.p, data, size) != 0)))
			__builtin_trap();
		p = plain.p;
		len = plain.len;
	}
	if (mode & 2)
		wlen = len / 4;
	if (setup_list_parse(p, len - wlen, "fuzz-black", &black, fuzz_warn,
	    NULL, &nbad) == -1 ||
	    setup_list_parse(p + len - wlen, wlen, "fuzz-white", &white,
	    fuzz_warn, NULL, &nbad) == -1)
		goto out;
	setup_collapse(&black);
	setup_collapse(&white);
	if (setup_subtract(&black, &white) == -1)
		goto out;
	if (setup_cidr_count(&black, &n4, &n6, err, sizeof(err)) == -1)
		goto out;
	if (n4 + n6 > 4096)
		goto out;	/* bounded work per input */
	if (setup_message("fuzz", "Listed: %A", &black, &msg, err,
	    sizeof(err)) == -1)
		goto out;
	/* what spamd-setup sends, the engine accepts (without the '\n') */
	if (msg.len == 0 || msg.p[msg.len - 1] != '\n')
		__builtin_trap();
	if ((bl = bl_parse(msg.p, msg.len - 1, err, sizeof(err))) == NULL)
		__builtin_trap();
	if (bl_list_size(bl) != n4 + n6)
		__builtin_trap();
	bl_list_free(bl);
out:
	setup_addrs_free(&black);
	setup_addrs_free(&white);
	setup_buf_free(&gz);
	setup_buf_free(&plain);
	setup_buf_free(&msg);
	return 0;
}
