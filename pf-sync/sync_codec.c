/*
 * sync_codec.c - build and check spamd sync packets (layout in sync.h).
 *
 * Every field is read and written byte by byte in network order, so no
 * struct layout, alignment or padding of ours can leak onto the wire, and
 * every length is compared with the bytes that are really there before
 * the read offset moves.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pf-sync/sync.h"

#define GREY4_FIXED	18	/* type, len, ts, ipv4, 3 string lengths */
#define GREY6_FIXED	30	/* type, len, ts, ipv6, 3 string lengths */
#define ADDR4_LEN	16	/* WHITE/TRAPPED/DEL: type, len, ts, exp, ipv4 */
#define ADDR6_LEN	28	/* the same with an ipv6 address */
#define END_LEN		4

static const char *const drop_names[PSYNC_D_MAX] = {
	[PSYNC_D_NONE] = "none",
	[PSYNC_D_SHORT] = "short",
	[PSYNC_D_LENGTH] = "length",
	[PSYNC_D_VERSION] = "version",
	[PSYNC_D_AF] = "af",
	[PSYNC_D_HMAC] = "hmac",
	[PSYNC_D_TLV] = "tlv",
	[PSYNC_D_TLVSIZE] = "tlv_size",
	[PSYNC_D_STRINGS] = "strings",
	[PSYNC_D_NUL] = "nul",
	[PSYNC_D_UNKNOWN] = "unknown_type",
	[PSYNC_D_DISABLED] = "deletions_off",
	[PSYNC_D_REPLAY] = "replay",
	[PSYNC_D_STALE] = "stale",
	[PSYNC_D_OWN] = "own",
	[PSYNC_D_TOOMANY] = "too_many",
	[PSYNC_D_PEER] = "peer",
};

/* psync_drop_name - short name of a drop reason */
const char *
psync_drop_name(enum psync_drop reason)
{
	if ((unsigned)reason >= PSYNC_D_MAX)
		return "invalid";
	return drop_names[reason];
}

/* psync_kind_name - the record type an entry speaks of */
const char *
psync_kind_name(enum psync_kind kind)
{
	switch (kind) {
	case PSYNC_GREY:
		return "GREY";
	case PSYNC_WHITE:
		return "WHITE";
	case PSYNC_TRAPPED:
		return "TRAPPED";
	case PSYNC_DEL_WHITE:
		return "DEL_WHITE";
	case PSYNC_DEL_TRAPPED:
		return "DEL_TRAPPED";
	}
	return "?";
}

/* psync_entry_ip - the entry's address as text */
const char *
psync_entry_ip(const struct psync_entry *e, char *buf, size_t bufsz)
{
	if (inet_ntop(e->af, e->addr, buf, bufsz) == NULL)
		snprintf(buf, bufsz, "?");
	return buf;
}

/* psync_entry_set_ip - af and addr from IPv4 or IPv6 text */
int
psync_entry_set_ip(struct psync_entry *e, const char *ip)
{
	memset(e->addr, 0, sizeof(e->addr));
	if (ip != NULL && inet_pton(AF_INET, ip, e->addr) == 1) {
		e->af = AF_INET;
		return 0;
	}
	if (ip != NULL && inet_pton(AF_INET6, ip, e->addr) == 1) {
		e->af = AF_INET6;
		return 0;
	}
	return -1;
}

/* seterr - fill err with a reason, an offset and a message */
static void __attribute__((format(printf, 4, 5)))
seterr(struct psync_err *err, enum psync_drop reason, size_t offset,
    const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL)
		return;
	err->reason = reason;
	err->offset = offset;
	n = snprintf(err->msg, sizeof(err->msg), "sync: %s at byte %zu: ",
	    psync_drop_name(reason), offset);
	if (n < 0 || (size_t)n >= sizeof(err->msg))
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg + n, sizeof(err->msg) - n, fmt, ap);
	va_end(ap);
}

/* put16 / put32 / get16 / get32 - network-order fields at p */
static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t
get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];
}

/* str_or_empty - NULL strings travel as "" */
static const char *
str_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

/* psync_is_ext - 1 if e needs one of the types OpenBSD does not know */
int
psync_is_ext(const struct psync_entry *e)
{
	return e->af == AF_INET6 || e->kind == PSYNC_DEL_WHITE ||
	    e->kind == PSYNC_DEL_TRAPPED;
}

/* tlv_type - the wire type of e, 0 if it has none */
static uint16_t
tlv_type(const struct psync_entry *e)
{
	int v6 = e->af == AF_INET6;

	if (e->af != AF_INET && e->af != AF_INET6)
		return 0;
	switch (e->kind) {
	case PSYNC_GREY:
		return v6 ? PSYNC_T_GREY6 : PSYNC_T_GREY;
	case PSYNC_WHITE:
		return v6 ? PSYNC_T_WHITE6 : PSYNC_T_WHITE;
	case PSYNC_TRAPPED:
		return v6 ? PSYNC_T_TRAPPED6 : PSYNC_T_TRAPPED;
	case PSYNC_DEL_WHITE:
		return v6 ? PSYNC_T_DEL_WHITE6 : PSYNC_T_DEL_WHITE;
	case PSYNC_DEL_TRAPPED:
		return v6 ? PSYNC_T_DEL_TRAPPED6 : PSYNC_T_DEL_TRAPPED;
	}
	return 0;
}

/* psync_tlv_size - bytes e takes on the wire, padding included */
size_t
psync_tlv_size(const struct psync_entry *e)
{
	size_t len;

	if (tlv_type(e) == 0)
		return 0;
	if (e->kind != PSYNC_GREY)
		return e->af == AF_INET6 ? ADDR6_LEN : ADDR4_LEN;
	len = (e->af == AF_INET6 ? GREY6_FIXED : GREY4_FIXED) +
	    strlen(str_or_empty(e->from)) + 1 +
	    strlen(str_or_empty(e->to)) + 1 +
	    strlen(str_or_empty(e->helo)) + 1;
	/* OpenBSD pads a GREY TLV (its length included) to 16 bytes. */
	len = (len + PSYNC_ALIGN - 1) & ~(size_t)(PSYNC_ALIGN - 1);
	if (len > UINT16_MAX)
		return 0;
	return len;
}

/* put_str - copy s with its NUL at p; returns the bytes written */
static size_t
put_str(uint8_t *p, const char *s)
{
	size_t n = strlen(s) + 1;

	memcpy(p, s, n);
	return n;
}

/* encode_tlv - write e at p (tlvlen bytes, already zeroed) */
static void
encode_tlv(const struct psync_entry *e, uint8_t *p, size_t tlvlen)
{
	size_t alen = e->af == AF_INET6 ? 16 : 4, off;
	const char *from = str_or_empty(e->from), *to = str_or_empty(e->to);
	const char *helo = str_or_empty(e->helo);

	put16(p, tlv_type(e));
	put16(p + 2, (uint16_t)tlvlen);
	put32(p + 4, e->timestamp);
	if (e->kind == PSYNC_GREY) {
		memcpy(p + 8, e->addr, alen);
		off = 8 + alen;
		put16(p + off, (uint16_t)(strlen(from) + 1));
		put16(p + off + 2, (uint16_t)(strlen(to) + 1));
		put16(p + off + 4, (uint16_t)(strlen(helo) + 1));
		off += 6;
		off += put_str(p + off, from);
		off += put_str(p + off, to);
		put_str(p + off, helo);
		return;
	}
	put32(p + 8, e->kind == PSYNC_WHITE || e->kind == PSYNC_TRAPPED ?
	    e->expire : 0);
	memcpy(p + 12, e->addr, alen);
}

/* psync_hmac - HMAC-SHA1 over pkt with the hmac field read as zeros */
int
psync_hmac(const uint8_t *pkt, size_t len, const char *key, size_t keylen,
    uint8_t out[PSYNC_HMAC_LEN])
{
	uint8_t copy[PSYNC_PKT_MAX];
	unsigned int mdlen = 0;
	static const char nokey[1] = "";

	if (len < PSYNC_HDR_LEN || len > sizeof(copy))
		return -1;
	/*
	 * HMAC() wants one buffer; a copy with the field zeroed costs less
	 * than the hash itself and keeps to the non-deprecated API.
	 */
	memcpy(copy, pkt, len);
	memset(copy + PSYNC_HMAC_OFF, 0, PSYNC_HMAC_LEN);
	if (HMAC(EVP_sha1(), keylen > 0 ? key : nokey, (int)keylen, copy, len,
	    out, &mdlen) == NULL || mdlen != PSYNC_HMAC_LEN)
		return -1;
	return 0;
}

/* psync_encode - pack entries into one authenticated packet */
int
psync_encode(const struct psync_entry *ents, size_t n, uint32_t counter,
    const char *key, size_t keylen, uint8_t *out, size_t outsz,
    size_t *pktlen, struct psync_err *err)
{
	size_t off = PSYNC_HDR_LEN, i, sz;
	unsigned int mdlen = 0;
	int ext;
	static const char nokey[1] = "";

	if (outsz > PSYNC_PKT_MAX)
		outsz = PSYNC_PKT_MAX;
	if (n == 0) {
		seterr(err, PSYNC_D_NONE, 0, "no entries to encode");
		return -1;
	}
	if (outsz < PSYNC_HDR_LEN + END_LEN) {
		seterr(err, PSYNC_D_SHORT, 0, "buffer of %zu bytes", outsz);
		return -1;
	}
	memset(out, 0, PSYNC_HDR_LEN);
	ext = psync_is_ext(&ents[0]);
	for (i = 0; i < n; i++) {
		if ((sz = psync_tlv_size(&ents[i])) == 0) {
			seterr(err, PSYNC_D_TLVSIZE, off,
			    "entry %zu (%s, af %d) cannot be encoded", i,
			    psync_kind_name(ents[i].kind), ents[i].af);
			return -1;
		}
		/* Never mix OpenBSD types with ours: see sync.h. */
		if (psync_is_ext(&ents[i]) != ext)
			break;
		if (off + sz + END_LEN > outsz) {
			if (i == 0) {
				seterr(err, PSYNC_D_TLVSIZE, off, "entry of %zu"
				    " bytes does not fit a packet of %zu",
				    sz, outsz);
				return -1;
			}
			break;
		}
		memset(out + off, 0, sz);
		encode_tlv(&ents[i], out + off, sz);
		off += sz;
	}
	put16(out + off, PSYNC_T_END);
	put16(out + off + 2, END_LEN);
	off += END_LEN;

	out[0] = PSYNC_VERSION;
	out[1] = PSYNC_AF;
	put16(out + 2, (uint16_t)off);
	put32(out + 4, counter);
	/* The hmac field is still zero: hash the packet as it is. */
	if (HMAC(EVP_sha1(), keylen > 0 ? key : nokey, (int)keylen, out, off,
	    out + PSYNC_HMAC_OFF, &mdlen) == NULL || mdlen != PSYNC_HMAC_LEN) {
		seterr(err, PSYNC_D_HMAC, PSYNC_HMAC_OFF, "HMAC-SHA1 failed");
		return -1;
	}
	*pktlen = off;
	return (int)i;
}

/* decode_grey - parse a GREY or GREY6 TLV of tlen bytes at p (offset off) */
static int
decode_grey(const uint8_t *p, size_t tlen, size_t off, int af,
    struct psync_entry *e, struct psync_err *err)
{
	size_t alen = af == AF_INET6 ? 16 : 4;
	/* TLV header 4, timestamp 4, address, three u16 string lengths */
	size_t fixed = 8 + alen + 6;
	size_t fl, tl, hl, s;

	if (tlen < fixed) {
		seterr(err, PSYNC_D_TLVSIZE, off, "GREY TLV of %zu bytes, "
		    "needs at least %zu", tlen, fixed);
		return -1;
	}
	fl = get16(p + 8 + alen);
	tl = get16(p + 8 + alen + 2);
	hl = get16(p + 8 + alen + 4);
	if (fixed + fl + tl + hl > tlen) {
		seterr(err, PSYNC_D_STRINGS, off + 8 + alen, "string lengths "
		    "%zu+%zu+%zu overrun the %zu-byte TLV", fl, tl, hl, tlen);
		return -1;
	}
	s = fixed;
	if (fl == 0 || p[s + fl - 1] != '\0') {
		seterr(err, PSYNC_D_NUL, off + s, "from not NUL-terminated");
		return -1;
	}
	if (tl == 0 || p[s + fl + tl - 1] != '\0') {
		seterr(err, PSYNC_D_NUL, off + s + fl,
		    "to not NUL-terminated");
		return -1;
	}
	if (hl == 0 || p[s + fl + tl + hl - 1] != '\0') {
		seterr(err, PSYNC_D_NUL, off + s + fl + tl,
		    "helo not NUL-terminated");
		return -1;
	}
	memset(e, 0, sizeof(*e));
	e->kind = PSYNC_GREY;
	e->af = af;
	e->timestamp = get32(p + 4);
	memcpy(e->addr, p + 8, alen);
	e->from = (const char *)p + s;
	e->to = (const char *)p + s + fl;
	e->helo = (const char *)p + s + fl + tl;
	return 0;
}

/* decode_addr - parse a WHITE/TRAPPED/DEL TLV (either family) at p */
static int
decode_addr(const uint8_t *p, size_t tlen, size_t off, int af,
    enum psync_kind kind, struct psync_entry *e, struct psync_err *err)
{
	size_t want = af == AF_INET6 ? ADDR6_LEN : ADDR4_LEN;

	if (tlen != want) {
		seterr(err, PSYNC_D_TLVSIZE, off, "%s TLV of %zu bytes, must "
		    "be %zu", psync_kind_name(kind), tlen, want);
		return -1;
	}
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->af = af;
	e->timestamp = get32(p + 4);
	e->expire = kind == PSYNC_WHITE || kind == PSYNC_TRAPPED ?
	    get32(p + 8) : 0;
	memcpy(e->addr, p + 12, af == AF_INET6 ? 16 : 4);
	return 0;
}

/* check_header - the whole-packet checks, in OpenBSD's order plus ours */
static int
check_header(const uint8_t *pkt, size_t len, const char *key,
    size_t keylen, struct psync_err *err)
{
	uint8_t mac[PSYNC_HMAC_LEN];
	size_t plen;

	if (len < PSYNC_HDR_LEN) {
		seterr(err, PSYNC_D_SHORT, 0, "packet of %zu bytes, the "
		    "header needs %d", len, PSYNC_HDR_LEN);
		return -1;
	}
	if (pkt[0] != PSYNC_VERSION) {
		seterr(err, PSYNC_D_VERSION, 0, "version %u, want %d",
		    pkt[0], PSYNC_VERSION);
		return -1;
	}
	if (pkt[1] != PSYNC_AF) {
		seterr(err, PSYNC_D_AF, 1, "af %u, want %d", pkt[1],
		    PSYNC_AF);
		return -1;
	}
	plen = get16(pkt + 2);
	if (plen != len) {
		seterr(err, PSYNC_D_LENGTH, 2, "length field %zu, received "
		    "%zu bytes", plen, len);
		return -1;
	}
	if (psync_hmac(pkt, len, key, keylen, mac) == -1) {
		seterr(err, PSYNC_D_HMAC, PSYNC_HMAC_OFF, "cannot compute");
		return -1;
	}
	if (CRYPTO_memcmp(mac, pkt + PSYNC_HMAC_OFF, PSYNC_HMAC_LEN) != 0) {
		seterr(err, PSYNC_D_HMAC, PSYNC_HMAC_OFF, "HMAC does not "
		    "match (wrong key or altered packet)");
		return -1;
	}
	return 0;
}

/* psync_decode - check a received packet and list its entries */
int
psync_decode(const uint8_t *pkt, size_t len, const char *key, size_t keylen,
    int deletions, struct psync_entry *ents, size_t max, uint32_t *counter,
    struct psync_err *err)
{
	size_t off = PSYNC_HDR_LEN, left, tlen;
	uint16_t type;
	int n = 0, r;
	int af;
	enum psync_kind kind;

	if (err != NULL) {
		err->reason = PSYNC_D_NONE;
		err->offset = 0;
		err->msg[0] = '\0';
	}
	if (check_header(pkt, len, key, keylen, err) == -1)
		return -1;
	*counter = get32(pkt + 4);

	while (off < len) {
		left = len - off;
		if (left < 4) {
			seterr(err, PSYNC_D_TLV, off, "TLV header needs 4 "
			    "bytes, %zu left", left);
			return n;
		}
		type = get16(pkt + off);
		tlen = get16(pkt + off + 2);
		if (tlen < 4) {
			seterr(err, PSYNC_D_TLV, off + 2, "TLV length %zu, "
			    "less than its own header", tlen);
			return n;
		}
		if (tlen > left) {
			seterr(err, PSYNC_D_TLV, off + 2, "TLV length %zu "
			    "overruns the %zu bytes left", tlen, left);
			return n;
		}
		if (type == PSYNC_T_END)
			return n;	/* anything after END is ignored */
		af = (type & 0xff00) == 0x0100 ? AF_INET6 : AF_INET;
		switch (type) {
		case PSYNC_T_GREY:
		case PSYNC_T_GREY6:
			kind = PSYNC_GREY;
			break;
		case PSYNC_T_WHITE:
		case PSYNC_T_WHITE6:
			kind = PSYNC_WHITE;
			break;
		case PSYNC_T_TRAPPED:
		case PSYNC_T_TRAPPED6:
			kind = PSYNC_TRAPPED;
			break;
		case PSYNC_T_DEL_WHITE:
		case PSYNC_T_DEL_WHITE6:
			kind = PSYNC_DEL_WHITE;
			break;
		case PSYNC_T_DEL_TRAPPED:
		case PSYNC_T_DEL_TRAPPED6:
			kind = PSYNC_DEL_TRAPPED;
			break;
		default:
			/* As OpenBSD: an unknown type ends the packet. */
			seterr(err, PSYNC_D_UNKNOWN, off, "TLV type 0x%04x",
			    type);
			return n;
		}
		if ((kind == PSYNC_DEL_WHITE || kind == PSYNC_DEL_TRAPPED) &&
		    !deletions) {
			seterr(err, PSYNC_D_DISABLED, off, "TLV type 0x%04x "
			    "(deletion) while deletions are off", type);
			return n;
		}
		if ((size_t)n >= max) {
			seterr(err, PSYNC_D_TOOMANY, off, "more than %zu "
			    "entries", max);
			return n;
		}
		if (kind == PSYNC_GREY)
			r = decode_grey(pkt + off, tlen, off, af, &ents[n],
			    err);
		else
			r = decode_addr(pkt + off, tlen, off, af, kind,
			    &ents[n], err);
		if (r == -1)
			return n;
		n++;
		off += tlen;
	}
	return n;
}
