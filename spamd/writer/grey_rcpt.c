/*
 * grey_rcpt.c - trap hosts that mail invalid users: the valid-recipients
 * table, the per-client invalid-recipient counter and the writer-side
 * check that ties them to the MX verifier (see grey_rcpt.h).
 *
 * The table is an open-addressing hash (linear probing, load <= 1/2)
 * over one arena of NUL-terminated keys, so a million addresses cost one
 * read of the file, one pass and about 40 bytes each; a lookup is one or
 * two probes. The counter is a red-black tree by client address plus a
 * least-recently-updated queue, so stale clients are dropped in O(1).
 */
/* libbsd's RB_GENERATE_STATIC marks functions __unused, which glibc lacks. */
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/tree.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spamd/writer/grey_rcpt.h"
#include "spamd/common/log.h"

/* Key kinds: the first byte of each arena entry. */
#define RT_ADDR		'A'	/* a listed address */
#define RT_DOMAIN	'D'	/* "@domain": every address valid */
#define RT_KNOWN	'K'	/* a domain some address line names */

#define RT_BAD_LOGGED	10	/* bad lines logged one by one */
#define RT_FILE_MAX	(1L << 31)

struct rcpt_table {
	char		*arena;		/* kind, key, NUL; ... */
	size_t		 alen, acap;
	uint32_t	*slot;		/* 0 empty, else arena offset + 1 */
	size_t		 cap;		/* power of two */
	long		 n;		/* keys */
	long		 listed;	/* address and @domain lines */
};

/* rt_hash - FNV-1a of a key */
static uint64_t
rt_hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* rt_find - the slot index holding key, or the empty slot where it goes */
static size_t
rt_find(const struct rcpt_table *t, const char *key, size_t len)
{
	size_t i = (size_t)rt_hash(key, len) & (t->cap - 1);

	for (;;) {
		uint32_t s = t->slot[i];

		if (s == 0)
			return i;
		/* arena entry: kind byte, then the key */
		if (strncmp(t->arena + s, key, len) == 0 &&
		    t->arena[s + len] == '\0')
			return i;
		i = (i + 1) & (t->cap - 1);
	}
}

/* rt_grow - double the slot array and rehash; -1 out of memory */
static int
rt_grow(struct rcpt_table *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 1024, i;
	uint32_t *old = t->slot, *ns;
	size_t ocap = t->cap;

	if ((ns = calloc(ncap, sizeof(*ns))) == NULL)
		return -1;
	t->slot = ns;
	t->cap = ncap;
	for (i = 0; i < ocap; i++) {
		const char *k;

		if (old[i] == 0)
			continue;
		k = t->arena + old[i];
		ns[rt_find(t, k, strlen(k))] = old[i];
	}
	free(old);
	return 0;
}

/* rt_insert - add key of kind; an existing key keeps the stronger kind
 * (an @domain line beats a domain named by an address). -1 no memory */
static int
rt_insert(struct rcpt_table *t, char kind, const char *key, size_t len)
{
	size_t i, need;

	if ((size_t)(t->n + 1) * 2 > t->cap && rt_grow(t) == -1)
		return -1;
	i = rt_find(t, key, len);
	if (t->slot[i] != 0) {
		if (kind == RT_DOMAIN)
			t->arena[t->slot[i] - 1] = RT_DOMAIN;
		return 0;
	}
	need = t->alen + len + 2;
	if (need >= UINT32_MAX - 1)
		return -1;
	if (need > t->acap) {
		size_t ncap = t->acap ? t->acap * 2 : 65536;
		char *na;

		while (ncap < need)
			ncap *= 2;
		if ((na = realloc(t->arena, ncap)) == NULL)
			return -1;
		t->arena = na;
		t->acap = ncap;
	}
	t->arena[t->alen] = kind;
	memcpy(t->arena + t->alen + 1, key, len);
	t->arena[t->alen + 1 + len] = '\0';
	t->slot[i] = (uint32_t)(t->alen + 1);
	t->alen = need;
	t->n++;
	return 0;
}

/* rt_kind - the kind of key, or 0 when absent */
static char
rt_kind(const struct rcpt_table *t, const char *key, size_t len)
{
	size_t i;

	if (t == NULL || t->cap == 0)
		return 0;
	i = rt_find(t, key, len);
	return t->slot[i] ? t->arena[t->slot[i] - 1] : 0;
}

/* rt_domain_ok - the domain's bytes are plausible (letters, digits, '-',
 * '.', '_', UTF-8, or an [address literal]) */
static const char *
rt_domain_ok(const char *d, size_t len)
{
	size_t i;

	if (len == 0)
		return "empty domain";
	if (d[0] == '[')
		return d[len - 1] == ']' && len > 2 ? NULL :
		    "unterminated address literal";
	if (d[0] == '.' || d[len - 1] == '.')
		return "domain starts or ends with '.'";
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];

		if (!(isalnum(c) || c == '-' || c == '.' || c == '_' ||
		    c >= 0x80))
			return "bad character in domain";
		if (c == '.' && d[i + 1] == '.')
			return "empty label in domain";
	}
	return NULL;
}

/*
 * rt_line - parse one line [p, p+len) into t. Returns NULL (done, also
 * for blank and comment lines) or what is wrong with it.
 */
static const char *
rt_line(struct rcpt_table *t, const char *p, size_t len)
{
	char key[GDB_MAIL_MAX + 1];
	const char *at, *why;
	size_t i, s = 0, e, n;

	/* a comment starts at '#' at the start or after a blank */
	for (i = 0; i < len; i++)
		if (p[i] == '#' && (i == 0 || p[i - 1] == ' ' ||
		    p[i - 1] == '\t'))
			break;
	e = i;
	while (s < e && (p[s] == ' ' || p[s] == '\t'))
		s++;
	while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t' ||
	    p[e - 1] == '\r'))
		e--;
	if (s == e)
		return NULL;
	p += s;
	n = e - s;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == ' ' || c == '\t')
			return "more than one address on the line";
		if (c < 0x20 || c == 0x7f)
			return "control character";
	}
	if (p[0] == '<') {
		if (n < 2 || p[n - 1] != '>')
			return "'<' without '>'";
		p++;
		n -= 2;
	}
	if (n == 0)
		return "empty address";
	if (n >= GDB_MAIL_MAX)
		return "address longer than 1023 bytes";
	for (i = 0; i < n; i++)
		key[i] = (char)tolower((unsigned char)p[i]);
	key[n] = '\0';
	if ((at = memchr(key, '@', n)) == NULL)
		return "no '@' (want user@domain or @domain)";
	if (memchr(at + 1, '@', n - (size_t)(at - key) - 1) != NULL)
		return "more than one '@'";
	if ((why = rt_domain_ok(at + 1, n - (size_t)(at - key) - 1)) != NULL)
		return why;
	t->listed++;
	if (at == key)
		return rt_insert(t, RT_DOMAIN, key, n) == -1 ? "out of memory" :
		    NULL;
	if (rt_insert(t, RT_ADDR, key, n) == -1 ||
	    rt_insert(t, RT_KNOWN, at, n - (size_t)(at - key)) == -1)
		return "out of memory";
	return NULL;
}

/* rcpt_table_parse - build a table from a file's bytes (see header) */
int
rcpt_table_parse(struct rcpt_table **out, const char *name, const char *buf,
    size_t len, char *err, size_t errsz)
{
	struct rcpt_table *t;
	const char *p = buf, *end = buf + len, *nl, *why;
	long line = 0, bad = 0;

	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL || rt_grow(t) == -1) {
		free(t);
		snprintf(err, errsz, "%s: out of memory", name);
		return -1;
	}
	while (p < end) {
		line++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if (memchr(p, '\0', (size_t)(nl - p)) != NULL)
			why = "NUL byte";
		else
			why = rt_line(t, p, (size_t)(nl - p));
		if (why != NULL) {
			if (bad == 0)
				snprintf(err, errsz, "%s:%ld: %s", name, line,
				    why);
			else if (bad < RT_BAD_LOGGED)
				log_warnx("event=valid_rcpt_bad file=%s "
				    "line=%ld error=\"%s\"", name, line, why);
			bad++;
			if (strcmp(why, "out of memory") == 0)
				break;
		}
		p = nl + 1;
	}
	if (bad > 0) {
		size_t l = strlen(err);

		if (bad > 1)
			snprintf(err + l, errsz - l, " (%ld bad lines)", bad);
		rcpt_table_free(t);
		return -1;
	}
	/* give back what the arena's doubling left unused */
	if (t->alen > 0 && t->alen < t->acap) {
		char *na = realloc(t->arena, t->alen);

		if (na != NULL) {
			t->arena = na;
			t->acap = t->alen;
		}
	}
	*out = t;
	return 0;
}

/* rcpt_table_load - read path whole and parse it */
int
rcpt_table_load(struct rcpt_table **out, const char *path, char *err,
    size_t errsz)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	ssize_t r;
	int fd, rc;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errsz, "%s: open: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > RT_FILE_MAX) {
		snprintf(err, errsz, "%s: not a regular file under 2 GiB", path);
		close(fd);
		return -1;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errsz, "%s: out of memory", path);
		close(fd);
		return -1;
	}
	/* a file that grows while read is cut at the size fstat saw */
	while (got < (size_t)st.st_size) {
		r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errsz, "%s: read: %s", path,
			    r == 0 ? "short file" : strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		got += (size_t)r;
	}
	close(fd);
	rc = rcpt_table_parse(out, path, buf, got, err, errsz);
	free(buf);
	return rc;
}

/* rcpt_table_lookup - valid, invalid or not covered (see header) */
enum rcpt_verdict
rcpt_table_lookup(const struct rcpt_table *t, const char *addr)
{
	char a[GDB_MAIL_MAX];
	const char *at;
	size_t n;
	char k;

	if (t == NULL)
		return RCPT_NOT_COVERED;
	gdb_mail_norm(addr, a, sizeof(a));
	n = strlen(a);
	if ((at = strrchr(a, '@')) == NULL)
		return RCPT_NOT_COVERED;
	if (at != a && rt_kind(t, a, n) == RT_ADDR)
		return RCPT_VALID;
	k = rt_kind(t, at, n - (size_t)(at - a));
	if (k == RT_DOMAIN)
		return RCPT_VALID;
	return k == RT_KNOWN ? RCPT_INVALID : RCPT_NOT_COVERED;
}

/* rcpt_table_count - address and @domain lines loaded (duplicates too) */
long
rcpt_table_count(const struct rcpt_table *t)
{
	return t ? t->listed : 0;
}

/* rcpt_table_free - free the arena and slots */
void
rcpt_table_free(struct rcpt_table *t)
{
	if (t == NULL)
		return;
	free(t->arena);
	free(t->slot);
	free(t);
}

/* ---- the invalid-recipient counter ---- */

/* One client's distinct invalid recipients within the window. */
struct rcpt_client {
	RB_ENTRY(rcpt_client)	 rb;
	TAILQ_ENTRY(rcpt_client) lru;
	int64_t			 last;		/* newest t[] */
	int			 n;
	int64_t			 t[RCPT_TRAP_MAX];
	char			*to[RCPT_TRAP_MAX];
	char			 ip[GDB_ADDR_MAX];
};

/* rc_cmp - order clients by address text */
static int
rc_cmp(const struct rcpt_client *a, const struct rcpt_client *b)
{
	return strcmp(a->ip, b->ip);
}

RB_HEAD(rc_tree, rcpt_client);
RB_GENERATE_STATIC(rc_tree, rcpt_client, rb, rc_cmp)

struct rcpt_count {
	struct rc_tree			 tree;
	TAILQ_HEAD(, rcpt_client)	 lru;	/* least recently updated first */
	long				 n, max;
	int				 threshold;
	int64_t				 window;
};

/* rcpt_count_new - an empty counter (see header) */
struct rcpt_count *
rcpt_count_new(int threshold, int64_t window, long max_clients)
{
	struct rcpt_count *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	RB_INIT(&c->tree);
	TAILQ_INIT(&c->lru);
	c->threshold = threshold < 1 ? 1 : threshold > RCPT_TRAP_MAX ?
	    RCPT_TRAP_MAX : threshold;
	c->window = window > 0 ? window : GDB_GREYEXP_DEFAULT;
	c->max = max_clients > 0 ? max_clients : RCPT_CLIENTS_MAX;
	return c;
}

/* rc_drop - remove one client */
static void
rc_drop(struct rcpt_count *c, struct rcpt_client *rc)
{
	int i;

	RB_REMOVE(rc_tree, &c->tree, rc);
	TAILQ_REMOVE(&c->lru, rc, lru);
	for (i = 0; i < rc->n; i++)
		free(rc->to[i]);
	free(rc);
	c->n--;
}

/* rcpt_count_add - count one invalid recipient (see header) */
int
rcpt_count_add(struct rcpt_count *c, const char *ip, const char *to,
    int64_t now, char *list, size_t listsz)
{
	struct rcpt_client key, *rc;
	int64_t old = now - c->window;
	int i, j;

	/* clients whose newest recipient left the window are done */
	while ((rc = TAILQ_FIRST(&c->lru)) != NULL &&
	    (rc->last <= old || c->n >= c->max)) {
		if (rc->last > old && strcmp(rc->ip, ip) == 0)
			break;
		rc_drop(c, rc);
	}
	strlcpy(key.ip, ip, sizeof(key.ip));
	if ((rc = RB_FIND(rc_tree, &c->tree, &key)) == NULL) {
		if ((rc = calloc(1, sizeof(*rc))) == NULL)
			return -1;
		strlcpy(rc->ip, ip, sizeof(rc->ip));
		RB_INSERT(rc_tree, &c->tree, rc);
		TAILQ_INSERT_TAIL(&c->lru, rc, lru);
		c->n++;
	}
	/* forget recipients older than one window */
	for (i = j = 0; i < rc->n; i++) {
		if (rc->t[i] <= old) {
			free(rc->to[i]);
			continue;
		}
		rc->t[j] = rc->t[i];
		rc->to[j++] = rc->to[i];
	}
	rc->n = j;
	TAILQ_REMOVE(&c->lru, rc, lru);
	TAILQ_INSERT_TAIL(&c->lru, rc, lru);
	rc->last = now;
	for (i = 0; i < rc->n; i++)
		if (strcmp(rc->to[i], to) == 0) {
			/* the same recipient again is not a second one */
			rc->t[i] = now;
			return 0;
		}
	if ((rc->to[rc->n] = strdup(to)) == NULL)
		return -1;
	rc->t[rc->n++] = now;
	if (rc->n < c->threshold)
		return 0;
	list[0] = '\0';
	for (i = 0; i < rc->n; i++) {
		if (i > 0)
			strlcat(list, ",", listsz);
		strlcat(list, rc->to[i], listsz);
	}
	rc_drop(c, rc);
	return 1;
}

/* rcpt_count_forget - drop ip's count */
void
rcpt_count_forget(struct rcpt_count *c, const char *ip)
{
	struct rcpt_client key, *rc;

	if (c == NULL)
		return;
	strlcpy(key.ip, ip, sizeof(key.ip));
	if ((rc = RB_FIND(rc_tree, &c->tree, &key)) != NULL)
		rc_drop(c, rc);
}

/* rcpt_count_clients - clients held */
long
rcpt_count_clients(const struct rcpt_count *c)
{
	return c ? c->n : 0;
}

/* rcpt_count_free - drop every client */
void
rcpt_count_free(struct rcpt_count *c)
{
	struct rcpt_client *rc;

	if (c == NULL)
		return;
	while ((rc = TAILQ_FIRST(&c->lru)) != NULL)
		rc_drop(c, rc);
	free(c);
}

/* ---- the writer's check ---- */

struct grey_rcpt {
	struct grey_rcpt_conf	 conf;
	struct grey_rcpt_hooks	 hooks;
	struct rcpt_table	*table;
	struct rcpt_count	*count;
	struct grey_verify	*verify;
	struct {
		long	judged, file_valid, file_invalid, not_covered,
			mx_valid, mx_invalid, mx_unknown, invalid,
			white_skipped, traps, reloads, reload_errors;
	} n;
};

/* A query waiting for the MX. */
struct grey_rcpt_wait {
	struct grey_rcpt	*gr;
	char			 ip[GDB_ADDR_MAX];
};

/* grey_rcpt_check - the file and --verify-mx, checked up front */
int
grey_rcpt_check(const char *valid_file, const char *verify_mx, char *err,
    size_t errsz)
{
	struct rcpt_table *t;

	if (valid_file != NULL) {
		if (rcpt_table_load(&t, valid_file, err, errsz) == -1)
			return -1;
		rcpt_table_free(t);
	}
	if (verify_mx != NULL &&
	    grey_verify_check_mx(verify_mx, err, errsz) == -1)
		return -1;
	return 0;
}

/* grey_rcpt_new - load and start what is configured (see header) */
int
grey_rcpt_new(struct grey_rcpt **out, struct event_base *base,
    const struct grey_rcpt_conf *conf, const struct grey_rcpt_hooks *hooks,
    char *err, size_t errsz)
{
	struct grey_rcpt *gr;

	*out = NULL;
	if (conf->valid_file == NULL && conf->verify.mx == NULL)
		return 0;
	if ((gr = calloc(1, sizeof(*gr))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	gr->conf = *conf;
	gr->hooks = *hooks;
	if (gr->conf.threshold <= 0)
		gr->conf.threshold = RCPT_TRAP_DEFAULT;
	gr->count = rcpt_count_new(gr->conf.threshold, gr->conf.window, 0);
	if (gr->count == NULL) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	if (conf->valid_file != NULL) {
		if (rcpt_table_load(&gr->table, conf->valid_file, err,
		    errsz) == -1)
			goto fail;
		log_info("event=valid_rcpt_load ok=1 file=%s entries=%ld",
		    conf->valid_file, rcpt_table_count(gr->table));
	}
	if (conf->verify.mx != NULL && grey_verify_new(&gr->verify, base,
	    &conf->verify, err, errsz) == -1)
		goto fail;
	log_info("event=rcpt_check file=%s verify_mx=%s invalid_trap=%d "
	    "window=%lld", conf->valid_file ? conf->valid_file : "none",
	    conf->verify.mx ? conf->verify.mx : "none", gr->conf.threshold,
	    (long long)gr->conf.window);
	*out = gr;
	return 0;
fail:
	grey_rcpt_free(gr);
	return -1;
}

/* grey_rcpt_invalid - count one invalid recipient, trap at the threshold */
int
grey_rcpt_invalid(struct grey_rcpt *gr, const char *ip, const char *to,
    int64_t now)
{
	/* static: 160 KB with 1 KB addresses; the writer is one thread */
	static char list[RCPT_TRAP_MAX * GDB_MAIL_MAX];
	static char esc[4 * sizeof(list) + 1];
	int rc;

	gr->n.invalid++;
	/* a host that passed greylisting is never trapped by this rule */
	if ((rc = gr->hooks.white(gr->hooks.arg, ip, now)) != 0) {
		if (rc == 1) {
			gr->n.white_skipped++;
			rcpt_count_forget(gr->count, ip);
		}
		return 0;
	}
	rc = rcpt_count_add(gr->count, ip, to, now, list, sizeof(list));
	if (rc == -1) {
		log_warnx("event=rcpt_count error=\"out of memory\" ip=%s", ip);
		return 0;
	}
	if (rc == 0) {
		log_debug("event=invalid_rcpt ip=%s to=%s", ip,
		    log_escape(to, strlen(to), 100, esc, sizeof(esc)));
		return 0;
	}
	gr->n.traps++;
	log_escape(list, strlen(list), sizeof(list), esc, sizeof(esc));
	gr->hooks.trap(gr->hooks.arg, ip, now, esc);
	return 1;
}

/* grey_rcpt_verified - the MX answered a query of grey_rcpt_tuple */
static void
grey_rcpt_verified(int res, const char *addr, void *arg)
{
	struct grey_rcpt_wait *w = arg;
	struct grey_rcpt *gr = w->gr;

	if (res == VERIFY_VALID)
		gr->n.mx_valid++;
	else if (res == VERIFY_INVALID) {
		gr->n.mx_invalid++;
		grey_rcpt_invalid(gr, w->ip, addr, time(NULL));
	} else
		gr->n.mx_unknown++;
	free(w);
}

/* grey_rcpt_tuple - judge one greylisted recipient (see header) */
void
grey_rcpt_tuple(struct grey_rcpt *gr, const char *ip, const char *to,
    int res, int64_t now)
{
	char addr[GDB_MAIL_MAX];
	struct grey_rcpt_wait *w;
	int r;

	if (gr == NULL)
		return;
	if (res == GDB_R_WHITE || res == GDB_R_PASSED) {
		rcpt_count_forget(gr->count, ip);
		return;
	}
	if (res != GDB_R_NEW && res != GDB_R_GREY)
		return;
	gdb_mail_norm(to, addr, sizeof(addr));
	/* "postmaster" and the like: no domain to judge */
	if (strchr(addr, '@') == NULL)
		return;
	gr->n.judged++;
	switch (rcpt_table_lookup(gr->table, addr)) {
	case RCPT_VALID:
		gr->n.file_valid++;
		return;
	case RCPT_INVALID:
		gr->n.file_invalid++;
		grey_rcpt_invalid(gr, ip, addr, now);
		return;
	case RCPT_NOT_COVERED:
		gr->n.not_covered++;
		break;
	}
	if (gr->verify == NULL)
		return;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return;
	w->gr = gr;
	strlcpy(w->ip, ip, sizeof(w->ip));
	r = grey_verify_query(gr->verify, addr, grey_rcpt_verified, w);
	if (r != VERIFY_PENDING)
		grey_rcpt_verified(r, addr, w);
}

/* grey_rcpt_reload - SIGHUP: a new table, or the old one on error */
void
grey_rcpt_reload(struct grey_rcpt *gr)
{
	struct rcpt_table *t;
	char err[512];

	if (gr == NULL || gr->conf.valid_file == NULL)
		return;
	if (rcpt_table_load(&t, gr->conf.valid_file, err, sizeof(err))
	    == -1) {
		gr->n.reload_errors++;
		log_warnx("event=valid_rcpt_reload ok=0 error=\"%s\" "
		    "kept=%ld", err, rcpt_table_count(gr->table));
		return;
	}
	rcpt_table_free(gr->table);
	gr->table = t;
	gr->n.reloads++;
	log_info("event=valid_rcpt_reload ok=1 file=%s entries=%ld",
	    gr->conf.valid_file, rcpt_table_count(t));
}

/* grey_rcpt_counters - one SIGUSR1 line for this module */
void
grey_rcpt_counters(const struct grey_rcpt *gr)
{
	struct grey_verify_counts vc;

	if (gr == NULL)
		return;
	memset(&vc, 0, sizeof(vc));
	if (gr->verify != NULL)
		grey_verify_counts(gr->verify, &vc);
	log_info("event=counters proc=rcpt judged=%ld file_valid=%ld "
	    "file_invalid=%ld not_covered=%ld mx_valid=%ld mx_invalid=%ld "
	    "mx_unknown=%ld invalid=%ld white_skipped=%ld traps=%ld "
	    "clients=%ld reloads=%ld reload_errors=%ld verify_queries=%ld "
	    "verify_hits=%ld verify_misses=%ld verify_coalesced=%ld "
	    "verify_probes=%ld verify_connects=%ld verify_connect_errors=%ld "
	    "verify_timeouts=%ld verify_dropped=%ld", gr->n.judged,
	    gr->n.file_valid, gr->n.file_invalid, gr->n.not_covered,
	    gr->n.mx_valid, gr->n.mx_invalid, gr->n.mx_unknown, gr->n.invalid,
	    gr->n.white_skipped, gr->n.traps, rcpt_count_clients(gr->count),
	    gr->n.reloads, gr->n.reload_errors, vc.queries, vc.hits,
	    vc.misses, vc.coalesced, vc.probes, vc.connects,
	    vc.connect_errors, vc.timeouts, vc.dropped);
}

/* grey_rcpt_free - stop the verifier first: its pending answers free
 * their waits without touching the rest */
void
grey_rcpt_free(struct grey_rcpt *gr)
{
	if (gr == NULL)
		return;
	grey_verify_free(gr->verify);
	rcpt_table_free(gr->table);
	rcpt_count_free(gr->count);
	free(gr);
}
