/* msg.c - framing of engine <-> writer messages (see msg.h) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "spamd/common/msg.h"

/* msg_be32 - store v big-endian at p */
static void
msg_be32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

/* msg_be64 - store v big-endian at p */
static void
msg_be64(unsigned char *p, uint64_t v)
{
	msg_be32(p, (uint32_t)(v >> 32));
	msg_be32(p + 4, (uint32_t)v);
}

/* msg_rd32 - read a big-endian u32 at p */
static uint32_t
msg_rd32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* msg_rd64 - read a big-endian u64 at p */
static uint64_t
msg_rd64(const unsigned char *p)
{
	return (uint64_t)msg_rd32(p) << 32 | msg_rd32(p + 4);
}

/* msg_put - append one framed message to out */
int
msg_put(struct evbuffer *out, uint32_t type, uint64_t id, int64_t num,
    uint32_t nstr, const char *const *str, const size_t *len)
{
	unsigned char hdr[MSG_HDR_LEN], l4[4];
	size_t total = MSG_HDR_LEN, sl[MSG_MAX_STR];
	uint32_t i;

	if (nstr > MSG_MAX_STR)
		return -1;
	for (i = 0; i < nstr; i++) {
		sl[i] = len ? len[i] : strlen(str[i]);
		/* a NUL inside would be cut by the receiver's C strings */
		if (memchr(str[i], '\0', sl[i]) != NULL)
			return -1;
		if (sl[i] > MSG_MAX_LEN)
			return -1;
		total += 4 + sl[i];
		if (total > MSG_MAX_LEN)
			return -1;
	}
	msg_be32(hdr, (uint32_t)total);
	msg_be32(hdr + 4, type);
	msg_be64(hdr + 8, id);
	msg_be64(hdr + 16, (uint64_t)num);
	msg_be32(hdr + 24, nstr);
	if (evbuffer_add(out, hdr, sizeof(hdr)) == -1)
		return -1;
	for (i = 0; i < nstr; i++) {
		msg_be32(l4, (uint32_t)sl[i]);
		if (evbuffer_add(out, l4, 4) == -1 ||
		    evbuffer_add(out, str[i], sl[i]) == -1)
			return -1;
	}
	return 0;
}

/* msg_clear - free the strings of m and zero it */
void
msg_clear(struct msg *m)
{
	uint32_t i;

	for (i = 0; i < MSG_MAX_STR; i++)
		free(m->str[i]);
	memset(m, 0, sizeof(*m));
}

/* msg_get - take one whole message from the front of in */
int
msg_get(struct evbuffer *in, struct msg *m, char *err, size_t errsz)
{
	unsigned char hdr[MSG_HDR_LEN];
	const unsigned char *p;
	uint32_t total, i;
	size_t off;

	memset(m, 0, sizeof(*m));
	if (evbuffer_get_length(in) < MSG_HDR_LEN)
		return 0;
	evbuffer_copyout(in, hdr, sizeof(hdr));
	total = msg_rd32(hdr);
	if (total < MSG_HDR_LEN || total > MSG_MAX_LEN) {
		snprintf(err, errsz, "message length %u out of range", total);
		return -1;
	}
	if (evbuffer_get_length(in) < total)
		return 0;
	p = evbuffer_pullup(in, total);
	if (p == NULL) {
		snprintf(err, errsz, "out of memory for a %u byte message",
		    total);
		return -1;
	}
	m->type = msg_rd32(p + 4);
	m->id = msg_rd64(p + 8);
	m->num = (int64_t)msg_rd64(p + 16);
	m->nstr = msg_rd32(p + 24);
	if (m->type == 0 || m->type >= MSG_TYPE_MAX) {
		snprintf(err, errsz, "unknown message type %u", m->type);
		goto bad;
	}
	if (m->nstr > MSG_MAX_STR) {
		snprintf(err, errsz, "%u strings in one message", m->nstr);
		goto bad;
	}
	off = MSG_HDR_LEN;
	for (i = 0; i < m->nstr; i++) {
		uint32_t sl;

		if (total - off < 4) {
			snprintf(err, errsz, "string %u length cut at byte %zu",
			    i, off);
			goto bad;
		}
		sl = msg_rd32(p + off);
		off += 4;
		if (sl > total - off) {
			snprintf(err, errsz, "string %u of %u bytes overruns "
			    "the message at byte %zu", i, sl, off);
			goto bad;
		}
		if (memchr(p + off, '\0', sl) != NULL) {
			snprintf(err, errsz, "string %u holds a NUL at byte "
			    "%zu", i, off);
			goto bad;
		}
		if ((m->str[i] = malloc((size_t)sl + 1)) == NULL) {
			snprintf(err, errsz, "out of memory");
			goto bad;
		}
		memcpy(m->str[i], p + off, sl);
		m->str[i][sl] = '\0';
		m->len[i] = sl;
		off += sl;
	}
	if (off != total) {
		snprintf(err, errsz, "%zu trailing bytes after the strings",
		    (size_t)total - off);
		goto bad;
	}
	evbuffer_drain(in, total);
	return 1;
bad:
	msg_clear(m);
	return -1;
}

/* msg_type_name - a message type's name for logs */
const char *
msg_type_name(uint32_t type)
{
	static const char *const names[MSG_TYPE_MAX] = {
		[MSG_TUPLE] = "tuple", [MSG_RESULT] = "result",
		[MSG_TRAPLIST] = "traplist", [MSG_STATS] = "stats",
		[MSG_BLACKLIST] = "blacklist",
		[MSG_DNSBL_ZONES] = "dnsbl_zones",
	};

	if (type < MSG_TYPE_MAX && names[type] != NULL)
		return names[type];
	return "unknown";
}
