/*
 * bench_sync - figures for the sync protocol:
 *  1. HMAC-SHA1 alone over a typical one-tuple GREY packet (baseline);
 *  2. encode (HMAC included) + decode (HMAC check included) of the same
 *     packet, packets per second and the ratio to the baseline;
 *  3. receive path over real loopback UDP: sendto + recvfrom + decode +
 *     replay check, packets per second (no store);
 *  4. entries applied to a greydb per second on a receiver (decode +
 *     replay + psync_apply, group commit), the issue's >= 50,000/s target;
 *  5. bytes on the wire per tuple: one tuple a packet (what OpenBSD
 *     sends) and packed into 1408-byte packets (what we send in bulk).
 *
 *   bench_sync [N]      N packets / entries per figure (default 200,000)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pf-sync/sync.h"

#define KEY "0123456789abcdef0123456789abcdef01234567"
#define T0 1700000000u

/* now_s - monotonic seconds */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* tuple - a typical tuple entry number i (strings in bufs) */
static void
tuple(struct psync_entry *e, long i, char bufs[3][64])
{
	char ip[32];

	snprintf(ip, sizeof(ip), "10.%ld.%ld.%ld", (i >> 16) & 255,
	    (i >> 8) & 255, i & 255);
	snprintf(bufs[0], 64, "mail%ld.example.net", i % 1000);
	snprintf(bufs[1], 64, "sender%ld@example.net", i % 5000);
	snprintf(bufs[2], 64, "user%ld@example.com", i % 300);
	memset(e, 0, sizeof(*e));
	e->kind = PSYNC_GREY;
	psync_entry_set_ip(e, ip);
	e->timestamp = T0;
	e->helo = bufs[0];
	e->from = bufs[1];
	e->to = bufs[2];
}

int
main(int argc, char *argv[])
{
	long n = argc > 1 ? atol(argv[1]) : 200000, i;
	struct psync_entry e, got[128];
	struct psync_err err;
	uint8_t pkt[PSYNC_PKT_SEND], mac[EVP_MAX_MD_SIZE];
	char bufs[3][64];
	unsigned int mdlen;
	size_t len = 0, total = 0;
	uint32_t c;
	double t, base_rate, rate;
	volatile unsigned sink = 0;

	if (n < 1000)
		n = 1000;
	tuple(&e, 12345, bufs);
	psync_encode(&e, 1, 1, KEY, 40, pkt, sizeof(pkt), &len, &err);

	/* Warm up (OpenSSL's lazy initialisation, CPU frequency). */
	for (i = 0; i < n / 10; i++) {
		HMAC(EVP_sha1(), KEY, 40, pkt, len, mac, &mdlen);
		sink += mac[0];
	}

	/* 1. Baseline: HMAC-SHA1 alone over the packet's bytes. */
	t = now_s();
	for (i = 0; i < n; i++) {
		pkt[4] = (uint8_t)i;
		HMAC(EVP_sha1(), KEY, 40, pkt, len, mac, &mdlen);
		sink += mac[0];
	}
	base_rate = n / (now_s() - t);
	printf("hmac_only_packets_per_s %.0f (packet %zu bytes)\n", base_rate,
	    len);

	/* 2. Encode + decode, both with their HMAC. */
	t = now_s();
	for (i = 0; i < n; i++) {
		psync_encode(&e, 1, (uint32_t)i, KEY, 40, pkt, sizeof(pkt),
		    &len, &err);
		if (psync_decode(pkt, len, KEY, 40, 0, got, 128, &c, &err) != 1) {
			fprintf(stderr, "bench_sync: decode: %s\n", err.msg);
			return 1;
		}
		sink += got[0].addr[3];
	}
	rate = n / (now_s() - t);
	printf("encode_decode_packets_per_s %.0f (%.2fx the time of one HMAC;"
	    " two HMACs are the floor)\n", rate, base_rate / rate);

	/* 3. Receive path over loopback UDP, no store. */
	{
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		int r = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET };
		struct sockaddr_storage from;
		struct psync_replay *rp = psync_replay_new(0, 0);
		socklen_t al = sizeof(a), fl;
		uint8_t rbuf[PSYNC_PKT_MAX];
		long recvd = 0, burst;
		int bufsz = 4 << 20;
		ssize_t k;

		inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
		setsockopt(r, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
		if (s == -1 || r == -1 || rp == NULL ||
		    bind(r, (struct sockaddr *)&a, sizeof(a)) == -1 ||
		    getsockname(r, (struct sockaddr *)&a, &al) == -1) {
			perror("bench_sync: socket");
			return 1;
		}
		t = now_s();
		/* Bursts of 64 so the receive buffer never overflows. */
		for (i = 0; i < n; i += burst) {
			burst = n - i < 64 ? n - i : 64;
			for (long j = 0; j < burst; j++) {
				psync_encode(&e, 1, (uint32_t)(i + j), KEY, 40,
				    pkt, sizeof(pkt), &len, &err);
				sendto(s, pkt, len, 0, (struct sockaddr *)&a,
				    sizeof(a));
			}
			for (long j = 0; j < burst; j++) {
				fl = sizeof(from);
				k = recvfrom(r, rbuf, sizeof(rbuf),
				    MSG_DONTWAIT, (struct sockaddr *)&from,
				    &fl);
				if (k <= 0)
					break;
				if (psync_decode(rbuf, (size_t)k, KEY, 40, 0,
				    got, 128, &c, &err) == 1 &&
				    psync_replay_check(rp,
				    (struct sockaddr *)&from, c, 1, T0, T0,
				    T0) == PSYNC_D_NONE)
					recvd++;
			}
		}
		rate = recvd / (now_s() - t);
		printf("udp_send_recv_decode_packets_per_s %.0f (%ld of %ld "
		    "accepted; sender and receiver in one thread)\n", rate,
		    recvd, n);
		psync_replay_free(rp);
		close(s);
		close(r);
	}

	/* 4. Entries applied to a store per second on a receiver, and the
	 *    same tuples through gdb_tuple_seen directly (the store's own
	 *    cost, the floor), each on a fresh store. */
	for (int pass = 0; pass < 2; pass++) {
		char dir[] = "/tmp/bench_sync.XXXXXX", cmd[128];
		struct gdb_opts o = { .create = 1, .group_commit = 1 };
		struct gdb_times tm = { GDB_PASSTIME_DEFAULT,
		    GDB_GREYEXP_DEFAULT, GDB_WHITEEXP_DEFAULT,
		    GDB_TRAPEXP_DEFAULT };
		struct gdb_err gerr;
		struct gdb *db;
		struct psync_entry batch[40];
		char bb[40][3][64];
		long applied = 0, m = n / 4;
		int k, j;

		if (mkdtemp(dir) == NULL || gdb_open(&db, dir, &o, &gerr)) {
			fprintf(stderr, "bench_sync: store\n");
			return 1;
		}
		t = now_s();
		for (i = 0; i < m; i += 40) {
			for (j = 0; j < 40; j++)
				tuple(&batch[j], i + j, bb[j]);
			/* Packed packets, as a bulk sender would send. */
			for (j = 0; j < 40; j += k) {
				int nd;

				if (pass == 1) {
					/* Baseline: the store alone. */
					k = 0;
					for (int x = j; x < 40; x++, k++) {
						char ip[64];

						psync_entry_ip(&batch[x], ip,
						    sizeof(ip));
						if (gdb_tuple_seen(db, ip,
						    batch[x].helo,
						    batch[x].from, batch[x].to,
						    T0, &tm, NULL, NULL,
						    &gerr) == -1)
							return 1;
						applied++;
					}
					continue;
				}
				k = psync_encode(batch + j, 40 - j, (uint32_t)i,
				    KEY, 40, pkt, sizeof(pkt), &len, &err);
				nd = psync_decode(pkt, len, KEY, 40, 0,
				    got, 128, &c, &err);
				for (int x = 0; x < nd; x++) {
					if (psync_apply(db, &got[x], T0, &tm,
					    NULL, NULL, &gerr) == -1) {
						fprintf(stderr, "bench_sync: "
						    "%s\n", gerr.msg);
						return 1;
					}
					applied++;
				}
			}
		}
		gdb_flush(db, &gerr);
		rate = applied / (now_s() - t);
		if (pass == 0)
			printf("store_applied_entries_per_s %.0f (%ld new GREY "
			    "tuples: decode + HMAC + psync_apply, group "
			    "commit)\n", rate, applied);
		else
			printf("store_baseline_tuple_seen_per_s %.0f (the same "
			    "tuples straight into gdb_tuple_seen)\n", rate);
		gdb_close(db);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_sync: could not remove %s\n",
			    dir);
	}

	/* 5. Bytes on the wire per tuple. */
	{
		struct psync_entry batch[200];
		char bb[200][3][64];
		long packets = 0;
		int k;

		for (i = 0; i < 200; i++)
			tuple(&batch[i], i, bb[i]);
		psync_encode(batch, 1, 1, KEY, 40, pkt, sizeof(pkt), &len,
		    &err);
		printf("wire_bytes_per_tuple_single %zu (+28 IPv4/UDP header)"
		    "\n", len);
		for (i = 0; i < 200; i += k) {
			k = psync_encode(batch + i, 200 - i, 1, KEY, 40, pkt,
			    sizeof(pkt), &len, &err);
			total += len;
			packets++;
		}
		printf("wire_bytes_per_tuple_packed %.1f (%ld packets for 200 "
		    "tuples, +28 per packet)\n", (double)total / 200, packets);
	}
	return sink == 0xdeadbeef;
}
