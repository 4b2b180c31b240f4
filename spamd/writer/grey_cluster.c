/*
 * grey_cluster.c - catch-up and digest repair between our own MX hosts,
 * over the writer's HTTP endpoint (format and MACs: pf-sync/cluster.h).
 *
 * Serving (any writer with --http-listen and a sync key):
 *   GET /cluster/changes?since=T[&bucket=N]  WHITE, TRAPPED and (without
 *       bucket) GREY records changed at or after T (cluster_change_time),
 *       streamed one block of CLUSTER_BLOCK_RECS records at a time: the
 *       next block is read from the store only once the previous one has
 *       left the socket, so memory stays flat whatever the store holds;
 *       with bucket only WHITE and TRAPPED of that digest bucket.
 *       With leaves=SET only WHITE and TRAPPED of those digest leaves.
 *   GET /cluster/digest[?buckets=SET]  the 256 bucket lines of the live
 *       WHITE and TRAPPED records, or the leaf lines of those buckets.
 * A request without a good X-Spamd-Cluster header gets 403 and a log
 * line event=cluster-auth.
 *
 * Pulling (--cluster-peer, at most GREY_SYNC_MAX_TARGETS): from a queue
 * of jobs, one pull at a time per peer (peers in parallel: a dead or slow
 * peer holds up no other), over a plain HTTP/1.0 connection we read line
 * by line (bufferevent; no line longer than CLUSTER_LINE_MAX, no more
 * than --cluster-max-bytes, no longer than GREY_CLUSTER_PULL_SECS, and
 * connect and every read within grey_cluster_timeouts: shorter than a
 * digest round).
 * A block is applied only after its MAC verified and every line of it
 * parsed; the first bad MAC or line stops the pull (blocks before it
 * stay applied: each was whole and authentic).
 * - catch-up: right after the writer starts, GET /cluster/changes with
 *   since = the newest change time in our store less GREY_CLUSTER_MARGIN
 *   (0 for an empty store), from the peers in the order given until one
 *   answers in full;
 * - digest rounds, every --cluster-digest seconds (0 = none): from each
 *   peer not still busy with its last round its 256 buckets, compared
 *   with ours; for the buckets that differ (and where the peer holds
 *   anything) their leaves; the leaves that differ are fetched, up to
 *   GREY_CLUSTER_ROUND_BYTES a peer a round (estimated from the peer's
 *   counts; the rest the next round), in requests of at most
 *   GREY_CLUSTER_SET_MAX characters of leaf set. So a difference of 1 %
 *   fetches about the entries of the leaves that differ, not of whole
 *   buckets. A round also repairs what a partition lost.
 * Merge: WHITE and TRAPPED go through psync_apply as sync entries do
 * (longer expiry wins, TRAPPED beats WHITE); a GREY tuple is stored as
 * received when we hold no live tuple of that key, else ours is kept.
 * Applying the same answer twice changes nothing.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "pf-sync/cluster.h"
#include "pf-sync/sync.h"
#include "spamd/writer/grey.h"
#include "spamd/common/log.h"

#define GREY_CLUSTER_PULL_SECS	120	/* a whole pull */
#define GREY_CLUSTER_IDLE_SECS	10	/* connect, or read nothing, most */
#define GREY_CLUSTER_CONNECT_SECS 5	/* connect, most */
#define GREY_CLUSTER_MARGIN	300	/* since: clock skew, in flight */
#define GREY_CLUSTER_ROUND_BYTES (16 << 20) /* fetched per peer, round */
#define GREY_CLUSTER_REC_BYTES	64	/* a WHITE line, about, for it */
#define GREY_CLUSTER_SET_MAX	6000	/* leaf set in one request line */
#define GREY_CLUSTER_SCAN_STEP	5000	/* records read per block, most */
/* a catch-up, a digest, a leaf digest and a fetch per peer */
#define GREY_CLUSTER_JOBS	(GREY_SYNC_MAX_TARGETS * 4)

#define GREY_CLUSTER_BIT(m, i)	((m)[(i) >> 3] & (1u << ((i) & 7)))
#define GREY_CLUSTER_SET(m, i)	((m)[(i) >> 3] |= (uint8_t)(1u << ((i) & 7)))

enum grey_cluster_state { GC_UNKNOWN, GC_OK, GC_AUTH_FAIL, GC_UNREACHABLE,
    GC_ERROR };
static const char *grey_cluster_state_name[] = { "unknown", "ok",
    "auth-fail", "unreachable", "error" };

/* One --cluster-peer. */
struct grey_cluster_peer {
	char			 spec[128];	/* ADDR:PORT as given */
	char			 ip[INET6_ADDRSTRLEN];
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	time_t			 last_packet, last_catchup, last_digest;
	long long		 differing;	/* -1 = no digest yet */
	long long		 catchup_entries, auth_failures;
	enum grey_cluster_state	 state;
	uint8_t			 buckets[CLUSTER_BUCKETS / 8]; /* differing */
	uint8_t			 want[CLUSTER_LEAVES / 8]; /* to fetch */
	unsigned		 want_from;	/* next fetch starts here */
};

enum grey_cluster_job_kind { GJ_CATCHUP, GJ_DIGEST, GJ_LEAFDIGEST,
    GJ_LEAVES };

/* One pull to make. */
struct grey_cluster_job {
	enum grey_cluster_job_kind kind;
	int		 peer;
	unsigned	 bucket;
};

enum grey_cluster_rd { RD_STATUS, RD_HEADERS, RD_BODY };

/* The pull under way. */
struct grey_cluster_pull {
	struct grey_cluster	*gc;
	struct grey_cluster_job	 job;
	struct bufferevent	*bev;
	struct event		*deadline;
	enum grey_cluster_rd	 rd;
	int			 status;	/* HTTP status */
	char			 reqmac[CLUSTER_MAC_HEX];
	unsigned char		 mac[CLUSTER_MAC_LEN];
	struct evbuffer		*block;		/* lines since the last MAC */
	long long		 block_first;	/* its first line number */
	long long		 line;		/* body line number */
	long long		 bytes;		/* body bytes */
	long long		 applied, records;
	int			 ended;
	struct cluster_digest	 remote;
	int			 remote_seen[CLUSTER_BUCKETS];
	struct cluster_leaves	*rleaves;	/* GJ_LEAFDIGEST */
	unsigned		 set_end;	/* GJ_LEAVES: asked up to */
};

/* The writer's cluster part. */
struct grey_cluster {
	struct grey		*g;
	struct event_base	*base;
	const struct grey_conf	*conf;
	struct grey_cluster_peer peers[GREY_SYNC_MAX_TARGETS];
	int			 npeers;
	struct grey_cluster_job	 jobs[GREY_CLUSTER_JOBS];
	int			 njobs;
	struct grey_cluster_pull *pulls[GREY_SYNC_MAX_TARGETS]; /* by peer */
	struct event		*kick_ev;	/* run the queue */
	struct event		*round_ev;	/* digest rounds */
	int			 catchup_done;
	long long		 served, refused;
};

static void grey_cluster_run(struct grey_cluster *gc);
static void grey_cluster_timeouts(const struct grey_cluster *,
    enum grey_cluster_job_kind, struct timeval *, struct timeval *);

/* grey_cluster_peer_parse - --cluster-peer ADDR:PORT or [V6]:PORT into
 * p; -1 with err */
static int
grey_cluster_peer_parse(const char *spec, struct grey_cluster_peer *p,
    char *err, size_t errsz)
{
	char addr[128];
	uint16_t port;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&p->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&p->ss;

	memset(p, 0, sizeof(*p));
	if (strlen(spec) >= sizeof(p->spec) ||
	    grey_http_split(spec, addr, sizeof(addr), &port) == -1) {
		snprintf(err, errsz, "--cluster-peer %.100s: want ADDR:PORT or "
		    "[IPV6]:PORT", spec);
		return -1;
	}
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		p->sslen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		p->sslen = sizeof(*s6);
	} else {
		snprintf(err, errsz, "--cluster-peer %.100s: %s is not an IPv4 "
		    "or IPv6 address", spec, addr);
		return -1;
	}
	if (gdb_addr_canon(addr, p->ip) == -1)
		strlcpy(p->ip, addr, sizeof(p->ip));
	strlcpy(p->spec, spec, sizeof(p->spec));
	p->differing = -1;
	return 0;
}

/* grey_cluster_prepare - check the cluster options (see grey.h) */
int
grey_cluster_prepare(const struct grey_conf *conf, char *err, size_t errsz)
{
	struct grey_cluster_peer p;
	int i;

	if (conf->ncluster_peers == 0)
		return 0;
	if (conf->sync_key[0] == '\0') {
		snprintf(err, errsz, "--cluster-peer needs the sync key "
		    "(--sync-key FILE; not --sync-no-auth)");
		return -1;
	}
	for (i = 0; i < conf->ncluster_peers; i++)
		if (grey_cluster_peer_parse(conf->cluster_peers[i], &p, err,
		    errsz) == -1)
			return -1;
	return 0;
}

/* ---- serving ---- */

/* One streamed answer to GET /cluster/changes. */
struct grey_cluster_stream {
	struct grey_cluster	*gc;
	struct grey_http	*gh;
	struct evhttp_request	*req;
	struct evhttp_connection *evcon;
	struct gdb_walk_pos	 pos;
	int			 ti;		/* index into types */
	int64_t			 since, now;
	int			 bucket;	/* -1 = all */
	uint8_t			*leaves;	/* NULL = all */
	unsigned char		 mac[CLUSTER_MAC_LEN];
	struct evbuffer		*block;
	int			 inblock;	/* records in block */
	long			 scanned;	/* records read for it */
	long long		 sent;
};

static const enum gdb_type grey_cluster_types[] = { GDB_WHITE, GDB_TRAPPED,
    GDB_GREY };

/* grey_cluster_stream_free - forget the answer (the connection is gone
 * or the answer is complete) */
static void
grey_cluster_stream_free(struct grey_cluster_stream *s)
{
	if (s->evcon != NULL)
		evhttp_connection_set_closecb(s->evcon, NULL, NULL);
	if (s->block != NULL)
		evbuffer_free(s->block);
	free(s->leaves);
	free(s);
}

/* grey_cluster_stream_closed - the client went away mid-answer */
static void
grey_cluster_stream_closed(struct evhttp_connection *evcon, void *arg)
{
	struct grey_cluster_stream *s = arg;

	(void)evcon;
	log_info("event=cluster_serve outcome=closed records=%lld", s->sent);
	/*
	 * why: evhttp detaches an unfinished (chunked) answer from a failed
	 * connection and leaves it to us; one still attached (evhttp_free
	 * at exit) evhttp frees itself
	 */
	if (evhttp_request_get_connection(s->req) == NULL)
		evhttp_request_free(s->req);
	s->evcon = NULL;
	grey_cluster_stream_free(s);
}

/* grey_cluster_stream_rec - gdb_walk_some callback: one record into the
 * block if it is live and asked for; 1 once the block is full */
static int
grey_cluster_stream_rec(const struct gdb_rec *rec, void *arg)
{
	struct grey_cluster_stream *s = arg;
	char line[CLUSTER_LINE_MAX + 2];
	size_t n;

	s->scanned++;
	if (rec->expire > s->now &&
	    (s->bucket < 0 || (rec->type != GDB_GREY &&
	    cluster_bucket(rec->ip) == (unsigned)s->bucket)) &&
	    (s->leaves == NULL || (rec->type != GDB_GREY &&
	    GREY_CLUSTER_BIT(s->leaves, cluster_leaf(rec->ip)))) &&
	    (s->since <= 0 || cluster_change_time(rec,
	    &s->gc->conf->times, s->now) >= s->since) &&
	    (n = cluster_format_rec(rec, line, sizeof(line))) > 0) {
		evbuffer_add(s->block, line, n);
		s->inblock++;
		s->sent++;
	}
	return s->inblock >= CLUSTER_BLOCK_RECS ||
	    s->scanned >= GREY_CLUSTER_SCAN_STEP;
}

/* grey_cluster_block_mac - end the block in b with its MAC line */
static int
grey_cluster_block_mac(struct grey_cluster *gc, unsigned char *mac,
    struct evbuffer *b)
{
	char hex[CLUSTER_MAC_HEX];
	const char *key = gc->conf->sync_key;

	if (cluster_chain_next(mac, key, strlen(key), evbuffer_pullup(b, -1),
	    evbuffer_get_length(b)) == -1)
		return -1;
	cluster_mac_hex(mac, hex);
	evbuffer_add_printf(b, "MAC|%s\n", hex);
	return 0;
}

/* grey_cluster_stream_end - end the answer (an incomplete one has no
 * END line: the puller keeps its verified blocks and knows) and free */
static void
grey_cluster_stream_end(struct grey_cluster_stream *s)
{
	/* why first: ending an HTTP/1.0 answer frees the connection */
	evhttp_connection_set_closecb(s->evcon, NULL, NULL);
	s->evcon = NULL;
	evhttp_send_reply_end(s->req);
	grey_cluster_stream_free(s);
}

static void grey_cluster_stream_next(struct evhttp_connection *, void *);

/* grey_cluster_stream_step - read the next block from the store and
 * send it; the last one ends the answer */
static void
grey_cluster_stream_step(struct grey_cluster_stream *s)
{
	struct gdb *db = grey_db(s->gc->g);
	struct gdb_err err = { 0 };
	int last = 0;
	size_t ntypes = s->bucket >= 0 || s->leaves != NULL ? 2 : 3;

	s->inblock = 0;
	s->scanned = 0;
	while (s->inblock < CLUSTER_BLOCK_RECS &&
	    s->scanned < GREY_CLUSTER_SCAN_STEP) {
		if ((size_t)s->ti >= ntypes) {
			last = 1;
			break;
		}
		if (db == NULL || gdb_walk_some(db,
		    grey_cluster_types[s->ti], &s->pos,
		    grey_cluster_stream_rec, s, &err) == -1) {
			/* why: no END line, so the puller takes the blocks
			 * sent so far and knows the answer is incomplete */
			if (db != NULL)
				grey_db_error(s->gc->g, "cluster_serve", &err);
			log_warnx("event=cluster_serve outcome=error "
			    "records=%lld error=\"store\"", s->sent);
			grey_cluster_stream_end(s);
			return;
		}
		if (s->pos.done) {
			s->ti++;
			memset(&s->pos, 0, sizeof(s->pos));
		}
	}
	if (last)
		evbuffer_add_printf(s->block, "END|%lld\n", s->sent);
	if (grey_cluster_block_mac(s->gc, s->mac, s->block) == -1) {
		grey_cluster_stream_end(s);
		return;
	}
	if (!last) {
		evhttp_send_reply_chunk_with_cb(s->req, s->block,
		    grey_cluster_stream_next, s);
		return;
	}
	evhttp_send_reply_chunk(s->req, s->block);
	log_info("event=cluster_serve outcome=ok records=%lld since=%lld "
	    "bucket=%d", s->sent, (long long)s->since, s->bucket);
	grey_cluster_stream_end(s);
}

/* grey_cluster_stream_next - the last block left: send the next */
static void
grey_cluster_stream_next(struct evhttp_connection *evcon, void *arg)
{
	struct grey_cluster_stream *s = arg;

	(void)evcon;
	grey_http_progress(s->gh, s->req);
	grey_cluster_stream_step(s);
}

/* grey_cluster_query_num - the number after name= in query, in [lo, hi];
 * dflt when absent; -1 with why when bad */
static int
grey_cluster_query_num(const struct evkeyvalq *q, const char *name,
    long long lo, long long hi, long long dflt, long long *out, char *why,
    size_t whysz)
{
	const char *v = evhttp_find_header(q, name), *errstr = NULL;

	if (v == NULL) {
		*out = dflt;
		return 0;
	}
	*out = strtonum(v, lo, hi, &errstr);
	if (errstr != NULL) {
		snprintf(why, whysz, "%s: %s", name, errstr);
		return -1;
	}
	return 0;
}

/* grey_cluster_deny - answer code with a one-line reason */
static void
grey_cluster_deny(struct grey_cluster *gc, struct evhttp_request *req,
    int code, const char *reason, const char *why)
{
	struct evbuffer *b = evbuffer_new();

	gc->refused++;
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; charset=us-ascii");
	if (b != NULL)
		evbuffer_add_printf(b, "%d %s: %s\n", code, reason, why);
	evhttp_send_reply(req, code, reason, b);
	if (b != NULL)
		evbuffer_free(b);
}

/* grey_cluster_digest_cb - gdb_walk callback: a live record into the
 * digest */
static int
grey_cluster_digest_cb(const struct gdb_rec *rec, void *arg)
{
	struct cluster_digest *d = ((void **)arg)[0];
	const int64_t *now = ((void **)arg)[1];
	struct cluster_leaves *l = ((void **)arg)[2];

	if (rec->expire > *now) {
		cluster_digest_add(d, rec);
		if (l != NULL)
			cluster_leaves_add(l, rec);
	}
	return 0;
}

/* grey_cluster_digest_local - our digest of live WHITE and TRAPPED: its
 * buckets in d, its leaves in l unless NULL */
static int
grey_cluster_digest_local(struct grey_cluster *gc, struct cluster_digest *d,
    struct cluster_leaves *l)
{
	struct gdb *db = grey_db(gc->g);
	struct gdb_err err = { 0 };
	int64_t now = time(NULL);
	void *arg[3] = { d, &now, l };

	memset(d, 0, sizeof(*d));
	if (l != NULL)
		memset(l, 0, sizeof(*l));
	if (db == NULL)
		return -1;
	if (gdb_walk(db, GDB_WHITE, grey_cluster_digest_cb, arg, &err) == -1 ||
	    gdb_walk(db, GDB_TRAPPED, grey_cluster_digest_cb, arg, &err) ==
	    -1) {
		grey_db_error(gc->g, "cluster_digest", &err);
		return -1;
	}
	return 0;
}

/* grey_cluster_query_set - the set after name= in query (nbits members
 * at most) as a bitmap the caller frees, NULL when absent; -1 with why */
static int
grey_cluster_query_set(const struct evkeyvalq *q, const char *name,
    unsigned nbits, uint8_t **out, char *why, size_t whysz)
{
	const char *v = evhttp_find_header(q, name);
	char w[200];

	*out = NULL;
	if (v == NULL)
		return 0;
	if ((*out = calloc(1, (nbits + 7) / 8)) == NULL) {
		snprintf(why, whysz, "%s: out of memory", name);
		return -1;
	}
	if (cluster_set_decode(v, *out, nbits, w, sizeof(w)) == -1) {
		snprintf(why, whysz, "%s: %s", name, w);
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* grey_cluster_digest_answer - the digest answer to the request reqmac
 * into out: the 256 bucket lines, or with buckets the lines of their
 * leaves that hold anything; MAC lines every CLUSTER_BLOCK_RECS lines */
static int
grey_cluster_digest_answer(struct grey_cluster *gc, const char *reqmac,
    const uint8_t *buckets, struct evbuffer *out)
{
	const char *key = gc->conf->sync_key;
	struct cluster_digest d;
	struct cluster_leaves *l = NULL;
	struct evbuffer *b;
	unsigned char mac[CLUSTER_MAC_LEN];
	long long n = 0;
	unsigned i, inblock = 0;
	int rc = -1;

	if ((b = evbuffer_new()) == NULL || (buckets != NULL &&
	    (l = malloc(sizeof(*l))) == NULL) ||
	    grey_cluster_digest_local(gc, &d, l) == -1 ||
	    cluster_chain_init(mac, key, strlen(key), reqmac) == -1)
		goto out;
	for (i = 0; i < (buckets != NULL ? CLUSTER_LEAVES : CLUSTER_BUCKETS);
	    i++) {
		if (buckets != NULL && (!GREY_CLUSTER_BIT(buckets, i &
		    (CLUSTER_BUCKETS - 1)) || l->count[i] == 0))
			continue;
		evbuffer_add_printf(b, "D|%u|%lld|%016llx\n", i, l != NULL ?
		    l->count[i] : d.count[i], (unsigned long long)(l != NULL ?
		    l->hash[i] : d.hash[i]));
		n++;
		if (++inblock == CLUSTER_BLOCK_RECS) {
			if (grey_cluster_block_mac(gc, mac, b) == -1)
				goto out;
			evbuffer_add_buffer(out, b);
			inblock = 0;
		}
	}
	evbuffer_add_printf(b, "END|%lld\n", n);
	if (grey_cluster_block_mac(gc, mac, b) == -1)
		goto out;
	evbuffer_add_buffer(out, b);
	rc = 0;
out:
	if (b != NULL)
		evbuffer_free(b);
	free(l);
	return rc;
}

/* grey_cluster_serve - GET /cluster/... (see grey.h) */
void
grey_cluster_serve(struct grey_cluster *gc, struct grey_http *gh,
    struct evhttp_request *req, const char *path)
{
	const struct grey_conf *conf = gc->conf;
	const char *key = conf->sync_key;
	const char *uri = evhttp_request_get_uri(req);
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *query = u != NULL ? evhttp_uri_get_query(u) : NULL;
	struct evkeyvalq q;
	struct grey_cluster_stream *s;
	char why[256], reqmac[CLUSTER_MAC_HEX], peer[INET6_ADDRSTRLEN];
	long long since, bucket;
	uint8_t *leaves = NULL, *buckets = NULL;
	char *host = NULL;
	ev_uint16_t port = 0;

	evhttp_connection_get_peer(evhttp_request_get_connection(req), &host,
	    &port);
	strlcpy(peer, host != NULL ? host : "unknown", sizeof(peer));
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		grey_cluster_deny(gc, req, 405, "Method Not Allowed",
		    "GET only");
		return;
	}
	if (cluster_req_check(key, strlen(key), uri, evhttp_find_header(
	    evhttp_request_get_input_headers(req), CLUSTER_HEADER),
	    (long long)time(NULL), reqmac, why, sizeof(why)) == -1) {
		log_warnx("event=cluster-auth side=server peer=%s path=%s "
		    "error=\"%s\"", peer, path, why);
		grey_cluster_deny(gc, req, 403, "Forbidden", why);
		return;
	}
	TAILQ_INIT(&q);		/* no query: an empty list */
	if (query != NULL && evhttp_parse_query_str(query, &q) == -1) {
		grey_cluster_deny(gc, req, 400, "Bad Request", "bad query");
		return;
	}
	if (grey_cluster_query_num(&q, "since", 0, INT64_MAX / 2, 0, &since,
	    why, sizeof(why)) == -1 || grey_cluster_query_num(&q, "bucket",
	    0, CLUSTER_BUCKETS - 1, -1, &bucket, why, sizeof(why)) == -1 ||
	    grey_cluster_query_set(&q, "leaves", CLUSTER_LEAVES, &leaves, why,
	    sizeof(why)) == -1 || grey_cluster_query_set(&q, "buckets",
	    CLUSTER_BUCKETS, &buckets, why, sizeof(why)) == -1) {
		evhttp_clear_headers(&q);
		free(leaves);
		free(buckets);
		grey_cluster_deny(gc, req, 400, "Bad Request", why);
		return;
	}
	evhttp_clear_headers(&q);
	if (grey_db(gc->g) == NULL) {
		free(leaves);
		free(buckets);
		grey_cluster_deny(gc, req, 503, "Service Unavailable",
		    "no store");
		return;
	}
	gc->served++;
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; charset=us-ascii");
	if (strcmp(path, "/cluster/digest") == 0) {
		struct evbuffer *b = evbuffer_new();

		free(leaves);
		if (b == NULL || grey_cluster_digest_answer(gc, reqmac, buckets,
		    b) == -1) {
			if (b != NULL)
				evbuffer_free(b);
			free(buckets);
			grey_cluster_deny(gc, req, 500, "Internal Server Error",
			    "digest failed");
			return;
		}
		free(buckets);
		evhttp_send_reply(req, HTTP_OK, "OK", b);
		evbuffer_free(b);
		return;
	}
	free(buckets);
	if (strcmp(path, "/cluster/changes") != 0) {
		free(leaves);
		grey_cluster_deny(gc, req, HTTP_NOTFOUND, "Not Found",
		    "want /cluster/changes or /cluster/digest");
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->block = evbuffer_new()) == NULL ||
	    cluster_chain_init(s->mac, key, strlen(key), reqmac) == -1) {
		if (s != NULL && s->block != NULL)
			evbuffer_free(s->block);
		free(s);
		free(leaves);
		grey_cluster_deny(gc, req, 500, "Internal Server Error",
		    "out of memory");
		return;
	}
	s->gc = gc;
	s->req = req;
	s->since = since;
	s->bucket = (int)bucket;
	s->leaves = leaves;
	s->now = time(NULL);
	s->evcon = evhttp_request_get_connection(req);
	evhttp_connection_set_closecb(s->evcon, grey_cluster_stream_closed, s);
	/* why: a big store takes longer than the endpoint's whole deadline;
	 * an answer that moves runs to its end (the puller bounds its own
	 * time and bytes), one that stops moving is dropped */
	s->gh = gh;
	grey_http_stream(gh, req);
	evhttp_send_reply_start(req, HTTP_OK, "OK");
	grey_cluster_stream_step(s);
}

/* ---- pulling ---- */

/* grey_cluster_push - queue a job (dropped when the queue is full: the
 * next round asks again) */
static void
grey_cluster_push(struct grey_cluster *gc, enum grey_cluster_job_kind kind,
    int peer, unsigned bucket)
{
	struct grey_cluster_job *j;

	if (gc->njobs >= GREY_CLUSTER_JOBS)
		return;
	j = &gc->jobs[gc->njobs++];
	j->kind = kind;
	j->peer = peer;
	j->bucket = bucket;
}

/* grey_cluster_kick - run the queue on the next loop turn */
static void
grey_cluster_kick(struct grey_cluster *gc)
{
	struct timeval now = { 0, 0 };

	evtimer_add(gc->kick_ev, &now);
}

/* grey_cluster_newest_cb - gdb_walk callback: the newest change time */
static int
grey_cluster_newest_cb(const struct gdb_rec *rec, void *arg)
{
	int64_t *newest = ((void **)arg)[0];
	const struct gdb_times *t = ((void **)arg)[1];
	const int64_t *now = ((void **)arg)[2];
	int64_t c = cluster_change_time(rec, t, *now);

	if (c > *newest)
		*newest = c;
	return 0;
}

/* grey_cluster_since - the catch-up's since: our newest change (a past
 * time: cluster_change_time) less the margin, 0 for an empty store */
static int64_t
grey_cluster_since(struct grey_cluster *gc)
{
	struct gdb *db = grey_db(gc->g);
	struct gdb_err err = { 0 };
	int64_t newest = 0, now = time(NULL);
	void *arg[3] = { &newest, (void *)&gc->conf->times, &now };
	size_t i;

	if (db == NULL)
		return 0;
	for (i = 0; i < 3; i++)
		if (gdb_walk(db, grey_cluster_types[i], grey_cluster_newest_cb,
		    arg, &err) == -1) {
			grey_db_error(gc->g, "cluster_since", &err);
			return 0;
		}
	return newest > GREY_CLUSTER_MARGIN ? newest - GREY_CLUSTER_MARGIN : 0;
}

/* grey_cluster_apply - merge one verified record; 1 if our store
 * changed, 0 if not, -1 on a store error */
static int
grey_cluster_apply(struct grey_cluster *gc, const struct gdb_rec *rec)
{
	struct gdb *db = grey_db(gc->g);
	struct gdb_err err = { 0 };
	struct psync_entry e;
	struct gdb_rec old;
	int64_t now = time(NULL);
	int r;

	if (db == NULL)
		return -1;
	if (rec->expire <= now)
		return 0;
	if (rec->type == GDB_GREY) {
		old = *rec;
		if ((r = gdb_get(db, &old, &err)) == -1) {
			grey_db_error(gc->g, "cluster_apply", &err);
			return -1;
		}
		if (r == 1 && old.expire > now)
			return 0;
		if (gdb_put(db, rec, &err) == -1) {
			grey_db_error(gc->g, "cluster_apply", &err);
			return -1;
		}
		grey_changed(gc->g, 0);
		return 1;
	}
	memset(&e, 0, sizeof(e));
	e.kind = rec->type == GDB_WHITE ? PSYNC_WHITE : PSYNC_TRAPPED;
	if (psync_entry_set_ip(&e, rec->ip) == -1)
		return 0;
	e.timestamp = (uint32_t)now;
	e.expire = rec->expire > UINT32_MAX ? UINT32_MAX :
	    (uint32_t)rec->expire;
	return grey_sync_apply(gc->g, &e, "cluster");
}

/* grey_cluster_pull_free - close the pull */
static void
grey_cluster_pull_free(struct grey_cluster_pull *p)
{
	if (p == NULL)
		return;
	if (p->bev != NULL)
		bufferevent_free(p->bev);
	if (p->deadline != NULL)
		event_free(p->deadline);
	if (p->block != NULL)
		evbuffer_free(p->block);
	free(p->rleaves);
	free(p);
}

static const char *grey_cluster_job_name[] = { "catchup", "digest",
    "leafdigest", "leaves" };

/* grey_cluster_digest_done - a peer's 256 buckets are in: compare, ask
 * for the leaves of those that differ where the peer holds anything */
static void
grey_cluster_digest_done(struct grey_cluster *gc, struct grey_cluster_pull *p)
{
	struct grey_cluster_peer *peer = &gc->peers[p->job.peer];
	struct cluster_digest mine;
	long long est = 0, d;
	int i, nb = 0, asked = 0;

	if (grey_cluster_digest_local(gc, &mine, NULL) == -1)
		return;
	memset(peer->buckets, 0, sizeof(peer->buckets));
	for (i = 0; i < CLUSTER_BUCKETS; i++) {
		if (p->remote_seen[i] && mine.count[i] == p->remote.count[i] &&
		    mine.hash[i] == p->remote.hash[i])
			continue;
		nb++;
		d = mine.count[i] - p->remote.count[i];
		est += d < 0 ? -d : d > 0 ? d : 1;
		/* only buckets where the peer may hold what we lack */
		if (p->remote.count[i] > 0) {
			GREY_CLUSTER_SET(peer->buckets, (unsigned)i);
			asked++;
		}
	}
	peer->last_digest = time(NULL);
	peer->differing = est;
	log_info("event=cluster_digest peer=%s buckets_differing=%d "
	    "differing=%lld fetch=%d", peer->spec, nb, est, asked);
	if (asked > 0)
		grey_cluster_push(gc, GJ_LEAFDIGEST, p->job.peer, 0);
}

/* grey_cluster_leafdigest_done - the leaves of the differing buckets are
 * in: the differing leaves where the peer holds anything become the
 * fetch, up to GREY_CLUSTER_ROUND_BYTES */
static void
grey_cluster_leafdigest_done(struct grey_cluster *gc,
    struct grey_cluster_pull *p)
{
	struct grey_cluster_peer *peer = &gc->peers[p->job.peer];
	struct cluster_leaves *mine, *rl = p->rleaves;
	struct cluster_digest top;
	char set[GREY_CLUSTER_SET_MAX + 1];
	long long est = 0, bytes = 0, d, left = 0;
	unsigned f, from;
	int nl = 0, nwant = 0, pulls = 0;

	if (rl == NULL || (mine = calloc(1, sizeof(*mine))) == NULL)
		return;
	if (grey_cluster_digest_local(gc, &top, mine) == -1) {
		free(mine);
		return;
	}
	memset(peer->want, 0, sizeof(peer->want));
	peer->want_from = 0;
	for (f = 0; f < CLUSTER_LEAVES; f++) {
		if (!GREY_CLUSTER_BIT(peer->buckets, f & (CLUSTER_BUCKETS - 1))
		    || (mine->count[f] == rl->count[f] &&
		    mine->hash[f] == rl->hash[f]))
			continue;
		nl++;
		d = mine->count[f] - rl->count[f];
		est += d < 0 ? -d : d > 0 ? d : 1;
		if (rl->count[f] == 0)
			continue;
		/* why a byte bound, not a leaf count: a round costs what
		 * it fetches; what does not fit comes next round */
		if (bytes + rl->count[f] * GREY_CLUSTER_REC_BYTES >
		    GREY_CLUSTER_ROUND_BYTES && nwant > 0) {
			left++;
			continue;
		}
		bytes += rl->count[f] * GREY_CLUSTER_REC_BYTES;
		GREY_CLUSTER_SET(peer->want, f);
		nwant++;
	}
	free(mine);
	for (from = 0; nwant > 0 && from < CLUSTER_LEAVES; pulls++)
		from = cluster_set_encode(peer->want, CLUSTER_LEAVES, from, set,
		    sizeof(set));
	peer->differing = est;
	log_info("event=cluster_digest_leaves peer=%s leaves_differing=%d "
	    "differing=%lld fetch=%d fetch_bytes=%lld pulls=%d left=%lld",
	    peer->spec, nl, est, nwant, bytes, pulls, left);
	if (nwant > 0)
		grey_cluster_push(gc, GJ_LEAVES, p->job.peer, 0);
}

/* grey_cluster_leaves_done - a fetch of leaves ended (ok: whole): the
 * next part of the fetch, if any */
static void
grey_cluster_leaves_done(struct grey_cluster *gc, struct grey_cluster_pull *p,
    int ok)
{
	struct grey_cluster_peer *peer = &gc->peers[p->job.peer];
	unsigned f;

	if (!ok) {
		/* the next round asks again */
		memset(peer->want, 0, sizeof(peer->want));
		return;
	}
	peer->last_catchup = time(NULL);
	peer->want_from = p->set_end;
	for (f = peer->want_from; f < CLUSTER_LEAVES; f++)
		if (GREY_CLUSTER_BIT(peer->want, f)) {
			grey_cluster_push(gc, GJ_LEAVES, p->job.peer, 0);
			return;
		}
}

/* grey_cluster_quote - why for a log's error="...": no quote, backslash
 * or control byte (our own messages; they hold no peer bytes but a
 * status number, and stay readable with their spaces) */
static void
grey_cluster_quote(const char *why, char *out, size_t outsz)
{
	size_t i;

	strlcpy(out, why, outsz);
	for (i = 0; out[i] != '\0'; i++)
		if (out[i] == '"' || out[i] == '\\' ||
		    (unsigned char)out[i] < ' ' || out[i] == 0x7f)
			out[i] = '?';
}

/* grey_cluster_pull_done - the pull ended: why NULL when it was whole;
 * state says what the peer's state becomes */
static void
grey_cluster_pull_done(struct grey_cluster_pull *p, const char *why,
    enum grey_cluster_state state)
{
	struct grey_cluster *gc = p->gc;
	struct grey_cluster_peer *peer = &gc->peers[p->job.peer];
	char esc[512];

	peer->catchup_entries += p->applied;
	if (why == NULL) {
		peer->state = GC_OK;
		log_info("event=cluster_pull peer=%s kind=%s bucket=-1 "
		    "records=%lld applied=%lld bytes=%lld outcome=ok",
		    peer->spec, grey_cluster_job_name[p->job.kind],
		    p->records, p->applied, p->bytes);
		if (p->job.kind == GJ_CATCHUP) {
			peer->last_catchup = time(NULL);
			gc->catchup_done = 1;
		} else if (p->job.kind == GJ_LEAVES)
			grey_cluster_leaves_done(gc, p, 1);
		else if (p->job.kind == GJ_LEAFDIGEST)
			grey_cluster_leafdigest_done(gc, p);
		else
			grey_cluster_digest_done(gc, p);
	} else {
		peer->state = state;
		grey_cluster_quote(why, esc, sizeof(esc));
		if (state == GC_AUTH_FAIL) {
			peer->auth_failures++;
			log_warnx("event=cluster-auth side=client peer=%s "
			    "kind=%s error=\"%s\" applied=%lld", peer->spec,
			    grey_cluster_job_name[p->job.kind], esc,
			    p->applied);
		} else
			log_warnx("event=cluster_pull peer=%s kind=%s "
			    "outcome=%s error=\"%s\" records=%lld "
			    "applied=%lld bytes=%lld", peer->spec,
			    grey_cluster_job_name[p->job.kind],
			    grey_cluster_state_name[state], esc, p->records,
			    p->applied, p->bytes);
		if (p->job.kind == GJ_LEAVES)
			grey_cluster_leaves_done(gc, p, 0);
		/* catch-up: the next peer may answer */
		if (p->job.kind == GJ_CATCHUP &&
		    p->job.peer + 1 < gc->npeers)
			grey_cluster_push(gc, GJ_CATCHUP, p->job.peer + 1, 0);
	}
	gc->pulls[p->job.peer] = NULL;
	grey_cluster_pull_free(p);
	grey_cluster_kick(gc);
}

/* grey_cluster_block - the MAC line m ended a block: verify it, parse
 * every line, then apply them; -1 after pull_done */
static int
grey_cluster_block(struct grey_cluster_pull *p, const struct cluster_line *m)
{
	struct grey_cluster *gc = p->gc;
	const char *key = gc->conf->sync_key;
	struct cluster_line l;
	char why[256], msg[320];
	const char *data, *nl;
	size_t len, total, off;
	long long no;
	int pass, r, ended = 0;

	if (cluster_chain_next(p->mac, key, strlen(key),
	    evbuffer_pullup(p->block, -1), evbuffer_get_length(p->block)) ==
	    -1 || CRYPTO_memcmp(p->mac, m->mac, CLUSTER_MAC_LEN) != 0) {
		snprintf(msg, sizeof(msg), "key mismatch: MAC of the block "
		    "ending at line %lld does not verify", p->line);
		grey_cluster_pull_done(p, msg, GC_AUTH_FAIL);
		return -1;
	}
	/* pass 0 checks every line, pass 1 applies: a bad line applies
	 * nothing of its block */
	data = (const char *)evbuffer_pullup(p->block, -1);
	total = evbuffer_get_length(p->block);
	for (pass = 0; pass < 2; pass++) {
		ended = p->ended;
		no = p->block_first;
		for (off = 0; off < total; off += len + 1, no++) {
			nl = memchr(data + off, '\n', total - off);
			len = nl != NULL ? (size_t)(nl - (data + off)) :
			    total - off;
			r = cluster_parse_line(data + off, len, &l, why,
			    sizeof(why));
			if (r == 0 && ended) {
				r = -1;
				strlcpy(why, "line after END", sizeof(why));
			}
			if (r == 0 && l.kind != CLUSTER_L_END &&
			    (p->job.kind == GJ_DIGEST ||
			    p->job.kind == GJ_LEAFDIGEST) !=
			    (l.kind == CLUSTER_L_DIGEST)) {
				r = -1;
				strlcpy(why, "line of the wrong kind for this "
				    "request", sizeof(why));
			}
			if (r == 0 && l.kind == CLUSTER_L_DIGEST &&
			    (p->job.kind == GJ_DIGEST ? l.bucket >=
			    CLUSTER_BUCKETS : !GREY_CLUSTER_BIT(
			    gc->peers[p->job.peer].buckets, l.bucket &
			    (CLUSTER_BUCKETS - 1)))) {
				r = -1;
				snprintf(why, sizeof(why), "D: %u is no %s "
				    "asked for", l.bucket, p->job.kind ==
				    GJ_DIGEST ? "bucket" : "leaf");
			}
			if (r == -1) {
				snprintf(msg, sizeof(msg), "line %lld: %s", no,
				    why);
				grey_cluster_pull_done(p, msg, GC_ERROR);
				return -1;
			}
			if (l.kind == CLUSTER_L_END)
				ended = 1;
			if (pass == 0)
				continue;
			if (l.kind == CLUSTER_L_REC) {
				p->records++;
				if ((r = grey_cluster_apply(gc, &l.rec)) ==
				    -1) {
					grey_cluster_pull_done(p, "store error",
					    GC_ERROR);
					return -1;
				}
				p->applied += r;
			} else if (l.kind == CLUSTER_L_DIGEST &&
			    p->job.kind == GJ_LEAFDIGEST) {
				p->rleaves->count[l.bucket] = l.count;
				p->rleaves->hash[l.bucket] = l.hash;
			} else if (l.kind == CLUSTER_L_DIGEST) {
				p->remote.count[l.bucket] = l.count;
				p->remote.hash[l.bucket] = l.hash;
				p->remote_seen[l.bucket] = 1;
			}
		}
	}
	p->ended = ended;
	evbuffer_drain(p->block, total);
	return 0;
}

/* grey_cluster_body_line - one body line (no newline); -1 after
 * pull_done */
static int
grey_cluster_body_line(struct grey_cluster_pull *p, const char *line,
    size_t len)
{
	struct cluster_line m;
	char why[256], msg[320];

	p->line++;
	if (p->ended) {
		snprintf(msg, sizeof(msg), "line %lld: data after END",
		    p->line);
		grey_cluster_pull_done(p, msg, GC_ERROR);
		return -1;
	}
	if (len >= 4 && memcmp(line, "MAC|", 4) == 0) {
		if (cluster_parse_line(line, len, &m, why, sizeof(why)) == -1) {
			snprintf(msg, sizeof(msg), "line %lld: %s", p->line,
			    why);
			grey_cluster_pull_done(p, msg, GC_ERROR);
			return -1;
		}
		return grey_cluster_block(p, &m);
	}
	if (evbuffer_get_length(p->block) == 0)
		p->block_first = p->line;
	if (evbuffer_get_length(p->block) + len + 1 > CLUSTER_BLOCK_MAX) {
		snprintf(msg, sizeof(msg), "line %lld: block longer than %d "
		    "bytes without a MAC line", p->line, CLUSTER_BLOCK_MAX);
		grey_cluster_pull_done(p, msg, GC_ERROR);
		return -1;
	}
	evbuffer_add(p->block, line, len);
	evbuffer_add(p->block, "\n", 1);
	return 0;
}

/* grey_cluster_read - bytes from the peer: status, headers, body lines */
static void
grey_cluster_read(struct bufferevent *bev, void *arg)
{
	struct grey_cluster_pull *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	long long max = p->gc->conf->cluster_max_bytes;
	char *line, msg[320];
	size_t len;

	for (;;) {
		line = evbuffer_readln(in, &len, p->rd == RD_BODY ?
		    EVBUFFER_EOL_LF : EVBUFFER_EOL_CRLF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > CLUSTER_LINE_MAX + 2) {
				snprintf(msg, sizeof(msg), "line %lld: longer "
				    "than %d bytes", p->line + 1,
				    CLUSTER_LINE_MAX);
				grey_cluster_pull_done(p, msg, GC_ERROR);
			}
			return;
		}
		if (p->rd == RD_STATUS) {
			int code = 0;

			if (sscanf(line, "HTTP/1.%*d %3d", &code) != 1) {
				free(line);
				grey_cluster_pull_done(p, "not an HTTP answer",
				    GC_ERROR);
				return;
			}
			free(line);
			p->status = code;
			p->rd = RD_HEADERS;
			continue;
		}
		if (p->rd == RD_HEADERS) {
			free(line);
			if (len > 0)
				continue;
			if (p->status == 403) {
				grey_cluster_pull_done(p, "key mismatch (the "
				    "peer refused our request: 403)",
				    GC_AUTH_FAIL);
				return;
			}
			if (p->status != 200) {
				snprintf(msg, sizeof(msg), "HTTP status %d",
				    p->status);
				grey_cluster_pull_done(p, msg, GC_ERROR);
				return;
			}
			p->rd = RD_BODY;
			continue;
		}
		p->bytes += (long long)len + 1;
		if (max > 0 && p->bytes > max) {
			free(line);
			snprintf(msg, sizeof(msg), "answer longer than "
			    "--cluster-max-bytes %lld: cut at line %lld", max,
			    p->line + 1);
			grey_cluster_pull_done(p, msg, GC_ERROR);
			return;
		}
		if (grey_cluster_body_line(p, line, len) == -1) {
			free(line);
			return;
		}
		free(line);
	}
}

/* grey_cluster_event - connected, closed or failed */
static void
grey_cluster_event(struct bufferevent *bev, short what, void *arg)
{
	struct grey_cluster_pull *p = arg;
	struct grey_cluster *gc = p->gc;
	struct grey_cluster_peer *peer = &gc->peers[p->job.peer];
	const char *key = gc->conf->sync_key;
	char target[GREY_CLUSTER_SET_MAX + 64], nonce[17], msg[320];
	char set[GREY_CLUSTER_SET_MAX + 1];
	long long now = (long long)time(NULL);

	if (what & BEV_EVENT_CONNECTED) {
		if (p->job.kind == GJ_DIGEST)
			strlcpy(target, "/cluster/digest", sizeof(target));
		else if (p->job.kind == GJ_LEAFDIGEST) {
			cluster_set_encode(peer->buckets, CLUSTER_BUCKETS, 0,
			    set, sizeof(set));
			snprintf(target, sizeof(target), "/cluster/digest?"
			    "buckets=%s", set);
		} else if (p->job.kind == GJ_LEAVES) {
			p->set_end = cluster_set_encode(peer->want,
			    CLUSTER_LEAVES, peer->want_from, set, sizeof(set));
			snprintf(target, sizeof(target), "/cluster/changes?"
			    "since=0&leaves=%s", set);
		} else
			snprintf(target, sizeof(target), "/cluster/changes?"
			    "since=%lld", (long long)grey_cluster_since(gc));
		snprintf(nonce, sizeof(nonce), "%08x%08x", arc4random(),
		    arc4random());
		if (cluster_req_mac(key, strlen(key), target, now, nonce,
		    p->reqmac) == -1 || cluster_chain_init(p->mac, key,
		    strlen(key), p->reqmac) == -1) {
			grey_cluster_pull_done(p, "HMAC failed", GC_ERROR);
			return;
		}
		evbuffer_add_printf(bufferevent_get_output(bev), "GET %s "
		    "HTTP/1.0\r\nHost: %s\r\n%s: %lld %s %s\r\n\r\n", target,
		    peer->spec, CLUSTER_HEADER, now, nonce, p->reqmac);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* the rest of the input first: a last line without "\n" */
		grey_cluster_read(bev, p);
		if (gc->pulls[p->job.peer] != p)
			return;
		if (p->rd != RD_BODY)
			grey_cluster_pull_done(p, "connection closed before "
			    "the answer", GC_UNREACHABLE);
		else if (!p->ended || evbuffer_get_length(p->block) > 0)
			grey_cluster_pull_done(p, "answer ended before its "
			    "END line and MAC", GC_ERROR);
		else
			grey_cluster_pull_done(p, NULL, GC_OK);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		struct timeval rd, conn;

		grey_cluster_timeouts(gc, p->job.kind, &rd, &conn);
		if (p->rd == RD_STATUS && !(what & BEV_EVENT_READING))
			snprintf(msg, sizeof(msg), "connect: no answer within "
			    "%d s", (int)conn.tv_sec);
		else
			snprintf(msg, sizeof(msg), "nothing read for %d s",
			    (int)rd.tv_sec);
	} else
		snprintf(msg, sizeof(msg), "%s", (what & BEV_EVENT_ERROR) ?
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()) :
		    "error");
	grey_cluster_pull_done(p, msg, p->rd == RD_STATUS ? GC_UNREACHABLE :
	    GC_ERROR);
}

/* grey_cluster_deadline - the pull took too long */
static void
grey_cluster_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct grey_cluster_pull *p = arg;
	char msg[128];

	(void)fd;
	(void)ev;
	snprintf(msg, sizeof(msg), "no whole answer within %d s",
	    GREY_CLUSTER_PULL_SECS);
	grey_cluster_pull_done(p, msg, p->rd == RD_STATUS ? GC_UNREACHABLE :
	    GC_ERROR);
}

/* grey_cluster_timeouts - the read (idle) and connect timeouts of a
 * pull of kind: GREY_CLUSTER_IDLE_SECS and GREY_CLUSTER_CONNECT_SECS, and
 * for the pulls of a digest round under two thirds of a round, so a
 * round never waits on a dead peer */
static void
grey_cluster_timeouts(const struct grey_cluster *gc,
    enum grey_cluster_job_kind kind, struct timeval *rd, struct timeval *conn)
{
	int r = GREY_CLUSTER_IDLE_SECS, c = GREY_CLUSTER_CONNECT_SECS;
	int d = gc->conf->cluster_digest_secs;

	/* why not the catch-up: it is no part of a round, and a big peer
	 * may pause its answer a few seconds (its firewall, its expiry) */
	if (kind != GJ_CATCHUP && d > 0 && d * 2 / 3 < r)
		r = d * 2 / 3 > 1 ? d * 2 / 3 : 1;
	if (c > r)
		c = r;
	rd->tv_sec = r;
	rd->tv_usec = 0;
	conn->tv_sec = c;
	conn->tv_usec = 0;
}

/* grey_cluster_start_pull - connect for job j */
static void
grey_cluster_start_pull(struct grey_cluster *gc,
    const struct grey_cluster_job *j)
{
	struct grey_cluster_peer *peer = &gc->peers[j->peer];
	struct grey_cluster_pull *p;
	struct timeval tv = { GREY_CLUSTER_PULL_SECS, 0 }, rtv, wtv;

	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->block = evbuffer_new()) == NULL ||
	    (p->deadline = evtimer_new(gc->base, grey_cluster_deadline, p)) ==
	    NULL || (p->bev = bufferevent_socket_new(gc->base, -1,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL || (j->kind == GJ_LEAFDIGEST &&
	    (p->rleaves = calloc(1, sizeof(*p->rleaves))) == NULL)) {
		log_warnx("event=cluster_pull peer=%s error=\"out of memory\"",
		    peer->spec);
		grey_cluster_pull_free(p);
		return;
	}
	p->gc = gc;
	p->job = *j;
	gc->pulls[j->peer] = p;
	bufferevent_setcb(p->bev, grey_cluster_read, NULL, grey_cluster_event,
	    p);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
	/* why: the write timeout bounds the connect (a lost SYN, a dead
	 * host), the read timeout each wait for the peer's next bytes (a
	 * hung peer, a lost segment never retransmitted in time); the
	 * deadline the whole pull */
	grey_cluster_timeouts(gc, j->kind, &rtv, &wtv);
	bufferevent_set_timeouts(p->bev, &rtv, &wtv);
	evtimer_add(p->deadline, &tv);
	if (bufferevent_socket_connect(p->bev, (struct sockaddr *)&peer->ss,
	    (int)peer->sslen) == -1) {
		char msg[160];

		snprintf(msg, sizeof(msg), "connect: %s", strerror(errno));
		grey_cluster_pull_done(p, msg, GC_UNREACHABLE);
	}
}

/* grey_cluster_run - start, in queue order, each job whose peer has no
 * pull running */
static void
grey_cluster_run(struct grey_cluster *gc)
{
	struct grey_cluster_job j;
	int i = 0;

	while (i < gc->njobs) {
		if (gc->pulls[gc->jobs[i].peer] != NULL) {
			i++;
			continue;
		}
		j = gc->jobs[i];
		memmove(gc->jobs + i, gc->jobs + i + 1, (size_t)(gc->njobs -
		    i - 1) * sizeof(gc->jobs[0]));
		gc->njobs--;
		grey_cluster_start_pull(gc, &j);
	}
}

/* grey_cluster_kick_cb - the queue's turn */
static void
grey_cluster_kick_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	grey_cluster_run(arg);
}

/* grey_cluster_job_is - 1 if j is for peer and of kind (-1: any) */
static int
grey_cluster_job_is(const struct grey_cluster_job *j, int peer, int kind)
{
	return (peer == -1 || j->peer == peer) &&
	    (kind == -1 || (int)j->kind == kind);
}

/* grey_cluster_pending - 1 if a pull runs or a job waits for peer, of
 * kind (-1: any) */
static int
grey_cluster_pending(const struct grey_cluster *gc, int peer, int kind)
{
	int i;

	for (i = 0; i < gc->npeers; i++)
		if (gc->pulls[i] != NULL &&
		    grey_cluster_job_is(&gc->pulls[i]->job, peer, kind))
			return 1;
	for (i = 0; i < gc->njobs; i++)
		if (grey_cluster_job_is(&gc->jobs[i], peer, kind))
			return 1;
	return 0;
}

/* grey_cluster_round - a digest round: each peer's digest */
static void
grey_cluster_round(evutil_socket_t fd, short ev, void *arg)
{
	struct grey_cluster *gc = arg;
	int i;

	(void)fd;
	(void)ev;
	/* no peer answered the catch-up yet (all were down): again, for
	 * the GREY tuples a digest does not cover (unless it is under way) */
	if (!gc->catchup_done && !grey_cluster_pending(gc, -1, GJ_CATCHUP))
		grey_cluster_push(gc, GJ_CATCHUP, 0, 0);
	/* why per peer: a peer still busy with its last round (slow, or
	 * dead until its timeouts) is left out of this one, the others go
	 * on; its own pulls are bounded by grey_cluster_timeouts */
	for (i = 0; i < gc->npeers; i++)
		if (!grey_cluster_pending(gc, i, -1))
			grey_cluster_push(gc, GJ_DIGEST, i, 0);
		else
			log_debug("event=cluster_round peer=%s skipped=busy",
			    gc->peers[i].spec);
	grey_cluster_run(gc);
}

/* grey_cluster_start - set up the peers, queue the catch-up (see grey.h) */
int
grey_cluster_start(struct grey_cluster **out, struct grey *g,
    struct event_base *base, const struct grey_conf *conf)
{
	struct grey_cluster *gc;
	char err[256];
	int i;

	*out = NULL;
	if (conf->blacklist_only || conf->sync_key[0] == '\0')
		return 0;	/* nothing to serve or pull */
	if ((gc = calloc(1, sizeof(*gc))) == NULL ||
	    (gc->kick_ev = evtimer_new(base, grey_cluster_kick_cb, gc)) ==
	    NULL || (gc->round_ev = event_new(base, -1, EV_PERSIST,
	    grey_cluster_round, gc)) == NULL) {
		grey_cluster_free(gc);
		return -1;
	}
	gc->g = g;
	gc->base = base;
	gc->conf = conf;
	for (i = 0; i < conf->ncluster_peers; i++) {
		if (grey_cluster_peer_parse(conf->cluster_peers[i],
		    &gc->peers[i], err, sizeof(err)) == -1) {
			log_warnx("event=writer_start error=\"%s\"", err);
			grey_cluster_free(gc);
			return -1;
		}
		gc->npeers++;
	}
	if (gc->npeers > 0) {
		grey_cluster_push(gc, GJ_CATCHUP, 0, 0);
		grey_cluster_kick(gc);
		if (conf->cluster_digest_secs > 0) {
			struct timeval tv = { conf->cluster_digest_secs, 0 };

			event_add(gc->round_ev, &tv);
		}
		log_info("event=cluster_start peers=%d digest=%d max_bytes=%lld "
		    "serving=%s", gc->npeers, conf->cluster_digest_secs,
		    conf->cluster_max_bytes, conf->http_listen != NULL ?
		    "yes" : "no");
		if (conf->http_listen == NULL)
			log_warnx("event=cluster_start warning=\"no "
			    "--http-listen here: peers cannot pull from this "
			    "host\"");
	}
	*out = gc;
	return 0;
}

/* grey_cluster_free - stop pulling (see grey.h) */
void
grey_cluster_free(struct grey_cluster *gc)
{
	int i;

	if (gc == NULL)
		return;
	for (i = 0; i < GREY_SYNC_MAX_TARGETS; i++)
		grey_cluster_pull_free(gc->pulls[i]);
	if (gc->kick_ev != NULL)
		event_free(gc->kick_ev);
	if (gc->round_ev != NULL)
		event_free(gc->round_ev);
	free(gc);
}

/* grey_cluster_packet - a sync packet came from addr (see grey.h) */
void
grey_cluster_packet(struct grey_cluster *gc, const struct sockaddr *from)
{
	char ip[INET6_ADDRSTRLEN], canon[GDB_ADDR_MAX];
	int i;

	if (gc == NULL || from == NULL)
		return;
	if (from->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)from)->
		    sin_addr, ip, sizeof(ip));
	else if (from->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)from)->
		    sin6_addr, ip, sizeof(ip));
	else
		return;
	if (gdb_addr_canon(ip, canon) == -1)
		return;
	for (i = 0; i < gc->npeers; i++)
		if (strcmp(gc->peers[i].ip, canon) == 0)
			gc->peers[i].last_packet = time(NULL);
}

/* grey_cluster_peers - how many peers (0 for NULL) */
int
grey_cluster_peers(const struct grey_cluster *gc)
{
	return gc != NULL ? gc->npeers : 0;
}

/* grey_cluster_peer_line - peer i's greyctl cluster line (see grey.h) */
int
grey_cluster_peer_line(const struct grey_cluster *gc, int i, char *buf,
    size_t bufsz)
{
	const struct grey_cluster_peer *p;

	if (gc == NULL || i < 0 || i >= gc->npeers)
		return -1;
	p = &gc->peers[i];
	snprintf(buf, bufsz, "peer=%s last_packet=%lld last_catchup=%lld "
	    "last_digest=%lld differing=%lld state=%s catchup_entries=%lld "
	    "auth_failures=%lld", p->spec, (long long)p->last_packet,
	    (long long)p->last_catchup, (long long)p->last_digest,
	    p->differing < 0 ? 0 : p->differing,
	    grey_cluster_state_name[p->state], p->catchup_entries,
	    p->auth_failures);
	return 0;
}

/* grey_cluster_metrics - the spamd_cluster_* lines (see grey.h) */
void
grey_cluster_metrics(const struct grey_cluster *gc, struct evbuffer *b)
{
	const struct grey_cluster_peer *p;
	int i;

	if (gc == NULL || gc->npeers == 0)
		return;
#define GCM(name, type, help) evbuffer_add_printf(b, "# HELP %s %s\n" \
	    "# TYPE %s %s\n", name, help, name, type)
	GCM("spamd_cluster_peer_up", "gauge", "1 when the last pull from "
	    "the cluster peer worked.");
	for (i = 0; i < gc->npeers; i++)
		evbuffer_add_printf(b, "spamd_cluster_peer_up{peer=\"%s\"} "
		    "%d\n", gc->peers[i].spec, gc->peers[i].state == GC_OK);
	GCM("spamd_cluster_catchup_entries_total", "counter", "Entries "
	    "from the peer that changed our store (catch-up and repair).");
	for (i = 0; i < gc->npeers; i++)
		evbuffer_add_printf(b, "spamd_cluster_catchup_entries_total{"
		    "peer=\"%s\"} %lld\n", gc->peers[i].spec,
		    gc->peers[i].catchup_entries);
	GCM("spamd_cluster_digest_differing", "gauge", "Entries that "
	    "differed from the peer at the last digest (estimate).");
	for (i = 0; i < gc->npeers; i++) {
		p = &gc->peers[i];
		evbuffer_add_printf(b, "spamd_cluster_digest_differing{peer="
		    "\"%s\"} %lld\n", p->spec, p->differing < 0 ? 0 :
		    p->differing);
	}
	GCM("spamd_cluster_auth_failures_total", "counter", "Pulls from "
	    "the peer stopped because the key did not match.");
	for (i = 0; i < gc->npeers; i++)
		evbuffer_add_printf(b, "spamd_cluster_auth_failures_total{"
		    "peer=\"%s\"} %lld\n", gc->peers[i].spec,
		    gc->peers[i].auth_failures);
	GCM("spamd_cluster_last_catchup_seconds", "gauge", "Time of the "
	    "last whole catch-up or repair from the peer (0 = none).");
	for (i = 0; i < gc->npeers; i++)
		evbuffer_add_printf(b, "spamd_cluster_last_catchup_seconds{"
		    "peer=\"%s\"} %lld\n", gc->peers[i].spec,
		    (long long)gc->peers[i].last_catchup);
#undef GCM
}
