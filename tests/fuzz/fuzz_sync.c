/*
 * fuzz_sync.c - libFuzzer target: sync packets as a peer (or anyone who
 * can reach UDP 8025) sends them. Half the inputs are taken as they come
 * (header, length and HMAC checks); the other half get a correct header
 * and a valid HMAC computed here with the fixed key, so the TLV parser
 * behind the HMAC is reached. Whatever decodes is fed to the replay
 * window and must re-encode and decode to the same entries.
 * fuzz-sources: pf-sync/sync_codec.c pf-sync/sync_replay.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "pf-sync/sync.h"

#define FUZZ_KEY	"0123456789abcdef0123456789abcdef01234567"
#define FUZZ_MAXENT	256

static struct psync_replay *fuzz_replay;

/* fuzz_same_str - both NULL or equal strings */
static int
fuzz_same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* fuzz_same - two decoded entries say the same thing */
static int
fuzz_same(const struct psync_entry *a, const struct psync_entry *b)
{
	size_t alen = a->af == AF_INET ? 4 : 16;

	return a->kind == b->kind && a->af == b->af &&
	    memcmp(a->addr, b->addr, alen) == 0 &&
	    a->timestamp == b->timestamp && a->expire == b->expire &&
	    fuzz_same_str(a->helo, b->helo) && fuzz_same_str(a->from, b->from) &&
	    fuzz_same_str(a->to, b->to);
}

/* fuzz_roundtrip - encode ents[0..n) again and decode: same entries */
static void
fuzz_roundtrip(const struct psync_entry *ents, size_t n, int deletions)
{
	static uint8_t pkt[PSYNC_PKT_MAX];
	struct psync_entry back[FUZZ_MAXENT];
	struct psync_err err;
	size_t done = 0, len, i;
	uint32_t counter;
	int took, got;

	while (done < n) {
		took = psync_encode(ents + done, n - done, 7, FUZZ_KEY,
		    PSYNC_KEY_LEN, pkt, sizeof(pkt), &len, &err);
		if (took <= 0)
			return;	/* e.g. strings too long to send: fine */
		got = psync_decode(pkt, len, FUZZ_KEY, PSYNC_KEY_LEN,
		    deletions, back, FUZZ_MAXENT, &counter, &err);
		if (got != took || counter != 7 || err.reason != PSYNC_D_NONE)
			__builtin_trap();
		for (i = 0; i < (size_t)took; i++)
			if (!fuzz_same(&ents[done + i], &back[i]))
				__builtin_trap();
		done += (size_t)took;
	}
}

/*
 * LLVMFuzzerTestOneInput - byte 0: bit 0 sign it (fix the header, valid
 * HMAC), bit 1 deletions on, bit 2 replay window on; the rest: a packet.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct psync_entry ents[FUZZ_MAXENT];
	struct psync_err err;
	struct sockaddr_in peer;
	uint8_t *pkt, mac[PSYNC_HMAC_LEN];
	uint32_t counter, tmin = UINT32_MAX, tmax = 0;
	size_t len, max;
	int mode, n, i;

	if (size < 1 || size - 1 > PSYNC_PKT_MAX)
		return 0;
	mode = data[0];
	len = size - 1;
	/* an exact-size copy, so a read past the packet is caught */
	if ((pkt = malloc(len > 0 ? len : 1)) == NULL)
		return 0;
	memcpy(pkt, data + 1, len);
	if ((mode & 1) && len >= PSYNC_HDR_LEN) {
		pkt[0] = PSYNC_VERSION;
		pkt[1] = PSYNC_AF;
		pkt[2] = (uint8_t)(len >> 8);
		pkt[3] = (uint8_t)len;
		if (psync_hmac(pkt, len, FUZZ_KEY, PSYNC_KEY_LEN, mac) == 0)
			memcpy(pkt + PSYNC_HMAC_OFF, mac, PSYNC_HMAC_LEN);
	}
	/* a small array now and then, to reach the TOOMANY path */
	max = (mode & 0x80) ? 2 : FUZZ_MAXENT;
	n = psync_decode(pkt, len, FUZZ_KEY, PSYNC_KEY_LEN, (mode & 2) != 0,
	    ents, max, &counter, &err);
	if (n > (int)max || (n == -1 && err.reason == PSYNC_D_NONE))
		__builtin_trap();
	if (n > 0) {
		for (i = 0; i < n; i++) {
			char ip[64];

			if (psync_entry_ip(&ents[i], ip, sizeof(ip)) == NULL)
				__builtin_trap();
			if (ents[i].timestamp < tmin)
				tmin = ents[i].timestamp;
			if (ents[i].timestamp > tmax)
				tmax = ents[i].timestamp;
		}
		fuzz_roundtrip(ents, (size_t)n, (mode & 2) != 0);
	}
	if (n >= 0 && (mode & 4)) {
		if (fuzz_replay == NULL)
			fuzz_replay = psync_replay_new(4, 3600);
		memset(&peer, 0, sizeof(peer));
		peer.sin_family = AF_INET;
		peer.sin_port = htons((uint16_t)(8025 + (mode >> 4)));
		peer.sin_addr.s_addr = htonl(0x7f000001);
		psync_replay_check(fuzz_replay, (struct sockaddr *)&peer,
		    counter, n > 0, tmin, tmax, 1700000000);
	}
	free(pkt);
	return 0;
}
