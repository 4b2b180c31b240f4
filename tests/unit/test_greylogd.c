/*
 * test_greylogd.c - greylogd's packet parser (IPv4, IPv6 with extension
 * headers, every malformed and not-SMTP case with its reason and byte
 * offset), the direction rule and the address filter. Every parse runs
 * on an exact-size heap copy, so ASan catches any read past len.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "pf-sync/greylogd.h"

#define PKT_MAX 128

/* One packet case: the bytes are built by a builder from a few knobs. */
struct pcase {
	const char	*name;
	int		 v6;		/* 0 IPv4, 1 IPv6 */
	uint8_t		 proto;		/* IPv4 protocol / last next header */
	uint16_t	 dport;
	uint8_t		 flags;
	int		 ext;		/* IPv6: one hop-by-hop header first */
	int		 frag;		/* later fragment */
	size_t		 cut;		/* 0 = whole packet, else its length */
	uint8_t		 version;	/* 0 = from v6 */
	uint8_t		 ihl;		/* 0 = 5 */
	enum greylogd_skip want;
	const char	*want_src;	/* when want is NONE */
	const char	*want_why;	/* substring of why, else NULL */
};

static const struct pcase pcases[] = {
	{ "v4 syn", 0, 6, 25, 0x02, 0, 0, 0, 0, 0, GREYLOGD_S_NONE,
	  "10.99.3.1", NULL },
	{ "v4 syn+ece+cwr", 0, 6, 25, 0xc2, 0, 0, 0, 0, 0, GREYLOGD_S_NONE,
	  "10.99.3.1", NULL },
	{ "v4 options ihl 6", 0, 6, 25, 0x02, 0, 0, 0, 0, 6, GREYLOGD_S_NONE,
	  "10.99.3.1", NULL },
	{ "v4 syn+ack", 0, 6, 25, 0x12, 0, 0, 0, 0, 0, GREYLOGD_S_NOTSYN,
	  NULL, "byte 33" },
	{ "v4 ack", 0, 6, 25, 0x10, 0, 0, 0, 0, 0, GREYLOGD_S_NOTSYN, NULL,
	  "flags 0x10" },
	{ "v4 port 587", 0, 6, 587, 0x02, 0, 0, 0, 0, 0, GREYLOGD_S_NOTSMTP,
	  NULL, "port 587 at byte 22" },
	{ "v4 udp", 0, 17, 25, 0x02, 0, 0, 0, 0, 0, GREYLOGD_S_NOTSMTP, NULL,
	  "protocol 17 at byte 9" },
	{ "v4 later fragment", 0, 6, 25, 0x02, 0, 1, 0, 0, 0,
	  GREYLOGD_S_NOTSMTP, NULL, "fragment" },
	{ "v4 cut in ip header", 0, 6, 25, 0x02, 0, 0, 19, 0, 0,
	  GREYLOGD_S_MALFORMED, NULL, "IPv4 header cut short at byte 19" },
	{ "v4 cut in tcp header", 0, 6, 25, 0x02, 0, 0, 33, 0, 0,
	  GREYLOGD_S_MALFORMED, NULL, "TCP header at byte 20" },
	{ "v4 ihl 4", 0, 6, 25, 0x02, 0, 0, 0, 0, 4, GREYLOGD_S_MALFORMED,
	  NULL, "header length 16" },
	{ "v4 ihl past end", 0, 6, 25, 0x02, 0, 0, 0, 0, 15,
	  GREYLOGD_S_MALFORMED, NULL, "header length 60" },
	{ "version 5", 0, 6, 25, 0x02, 0, 0, 0, 5, 0, GREYLOGD_S_MALFORMED,
	  NULL, "IP version 5" },
	{ "empty", 0, 6, 25, 0x02, 0, 0, (size_t)-1, 0, 0,
	  GREYLOGD_S_MALFORMED, NULL, "empty" },
	{ "v6 syn", 1, 6, 25, 0x02, 0, 0, 0, 0, 0, GREYLOGD_S_NONE,
	  "fd99::1", NULL },
	{ "v6 hop-by-hop then syn", 1, 6, 25, 0x02, 1, 0, 0, 0, 0,
	  GREYLOGD_S_NONE, "fd99::1", NULL },
	{ "v6 first fragment", 1, 6, 25, 0x02, 0, 0, 0, 0, 0, GREYLOGD_S_NONE,
	  "fd99::1", NULL },
	{ "v6 later fragment", 1, 6, 25, 0x02, 0, 1, 0, 0, 0,
	  GREYLOGD_S_NOTSMTP, NULL, "fragment offset non-zero at byte 42" },
	{ "v6 udp", 1, 17, 25, 0x02, 0, 0, 0, 0, 0, GREYLOGD_S_NOTSMTP, NULL,
	  "next header 17" },
	{ "v6 cut in header", 1, 6, 25, 0x02, 0, 0, 39, 0, 0,
	  GREYLOGD_S_MALFORMED, NULL, "IPv6 header cut short at byte 39" },
	{ "v6 cut in ext header", 1, 6, 25, 0x02, 1, 0, 45, 0, 0,
	  GREYLOGD_S_MALFORMED, NULL, "extension header at byte 40" },
	{ "v6 syn+ack", 1, 6, 25, 0x12, 0, 0, 0, 0, 0, GREYLOGD_S_NOTSYN,
	  NULL, "byte 53" },
};

/* build - the bytes of case c into p; returns the length */
static size_t
build(const struct pcase *c, uint8_t *p)
{
	size_t off, len;
	uint8_t ihl = c->ihl ? c->ihl : 5;

	memset(p, 0, PKT_MAX);
	if (!c->v6) {
		p[0] = (uint8_t)((4 << 4) | (ihl & 0x0f));
		p[9] = c->proto;
		if (c->frag)
			p[7] = 0x10;
		p[12] = 10; p[13] = 99; p[14] = 3; p[15] = 1;
		p[16] = 10; p[17] = 99; p[18] = 3; p[19] = 2;
		off = ihl > 5 && ihl <= 6 ? (size_t)ihl * 4 : 20;
	} else {
		p[0] = 6 << 4;
		p[8] = 0xfd; p[9] = 0x99; p[23] = 1;
		p[24] = 0xfd; p[25] = 0x99; p[39] = 2;
		off = 40;
		if (c->ext) {
			p[6] = 0;		/* hop-by-hop, 8 bytes */
			p[off] = c->proto;
			off += 8;
		} else if (c->frag || strstr(c->name, "fragment") != NULL) {
			p[6] = 44;
			p[off] = c->proto;
			if (c->frag)
				p[off + 3] = 0x08;	/* offset 1 */
			off += 8;
		} else
			p[6] = c->proto;
	}
	p[off + 2] = (uint8_t)(c->dport >> 8);
	p[off + 3] = (uint8_t)c->dport;
	p[off + 12] = 5 << 4;
	p[off + 13] = c->flags;
	len = off + 20;
	if (c->version)
		p[0] = (uint8_t)((c->version << 4) | (p[0] & 0x0f));
	if (c->cut == (size_t)-1)
		return 0;
	return c->cut ? c->cut : len;
}

/* test_parse - every case: the reason, the addresses, why's text */
static void
test_parse(void **state)
{
	uint8_t buf[PKT_MAX], *copy;
	struct greylogd_pkt pkt;
	char why[160];
	enum greylogd_skip got;
	size_t i, len;

	for (i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
		const struct pcase *c = &pcases[i];

		len = build(c, buf);
		copy = malloc(len > 0 ? len : 1);
		assert_non_null(copy);
		memcpy(copy, buf, len);
		got = greylogd_parse(len > 0 ? copy : NULL, len, &pkt, why,
		    sizeof(why));
		if (got != c->want)
			fail_msg("%s: got %s (%s), want %s", c->name,
			    greylogd_skip_name(got), why,
			    greylogd_skip_name(c->want));
		if (c->want == GREYLOGD_S_NONE) {
			assert_string_equal(pkt.src, c->want_src);
			assert_int_equal(pkt.dport, 25);
			assert_int_equal(pkt.af, c->v6 ? AF_INET6 : AF_INET);
			assert_string_equal(pkt.dst,
			    c->v6 ? "fd99::2" : "10.99.3.2");
		}
		if (c->want_why != NULL && strstr(why, c->want_why) == NULL)
			fail_msg("%s: why \"%s\" lacks \"%s\"", c->name, why,
			    c->want_why);
		free(copy);
	}
}

/* test_parse_every_length - every cut of a good packet is rejected
 * without reading past the end */
static void
test_parse_every_length(void **state)
{
	uint8_t buf[PKT_MAX], *copy;
	struct greylogd_pkt pkt;
	char why[160];
	size_t i, len, cut;

	for (i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
		len = build(&pcases[i], buf);
		for (cut = 1; cut < len; cut++) {
			copy = malloc(cut);
			assert_non_null(copy);
			memcpy(copy, buf, cut);
			(void)greylogd_parse(copy, cut, &pkt, why,
			    sizeof(why));
			free(copy);
		}
	}
}

/* test_direction - prefix first, then the devices */
static void
test_direction(void **state)
{
	static const struct {
		const char	*prefix;
		uint32_t	 indev, outdev;
		enum greylogd_dir want;
	} rows[] = {
		{ "in", 0, 2, GREYLOGD_IN },
		{ "out", 2, 0, GREYLOGD_OUT },
		{ " out ", 2, 3, GREYLOGD_OUT },
		{ "in ", 2, 3, GREYLOGD_IN },
		{ NULL, 2, 0, GREYLOGD_IN },		/* input hook */
		{ NULL, 0, 2, GREYLOGD_OUT },		/* output hook */
		{ NULL, 2, 3, GREYLOGD_IN },		/* forward, no prefix */
		{ "", 0, 2, GREYLOGD_OUT },
		{ "inbound", 0, 2, GREYLOGD_OUT },	/* not the word */
		{ "outx", 2, 0, GREYLOGD_IN },
		{ "in out", 0, 2, GREYLOGD_OUT },	/* two words: devices */
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (greylogd_direction(rows[i].prefix, rows[i].indev,
		    rows[i].outdev) != rows[i].want)
			fail_msg("row %zu (prefix \"%s\")", i,
			    rows[i].prefix ? rows[i].prefix : "(null)");
}

/* test_addr_ok - addresses that are never whitelisted */
static void
test_addr_ok(void **state)
{
	static const struct {
		const char	*ip;
		int		 want;
	} rows[] = {
		{ "10.99.3.1", 1 }, { "192.0.2.7", 1 }, { "fd99::1", 1 },
		{ "2001:db8::25", 1 }, { "127.0.0.1", 0 }, { "127.9.9.9", 0 },
		{ "0.0.0.0", 0 }, { "224.0.1.240", 0 }, { "255.255.255.255", 0 },
		{ "169.254.1.1", 0 }, { "::", 0 }, { "::1", 0 },
		{ "ff02::1", 0 }, { "fe80::1", 0 }, { "not an ip", 0 },
		{ "", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (greylogd_addr_ok(rows[i].ip) != rows[i].want)
			fail_msg("%s: want %d", rows[i].ip, rows[i].want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_every_length),
		cmocka_unit_test(test_direction),
		cmocka_unit_test(test_addr_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
