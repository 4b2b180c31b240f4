/*
 * fw_nft.c - the nftables firewall backend, through libnftables.
 *
 * One flush is one nft_run_cmd_from_buffer call with one command buffer,
 * which libnftables sends as one netlink batch: the kernel applies all of
 * it or none of it. Two facts of nftables 1.0.6 shape the buffer:
 * a delete of an absent element fails the whole batch (`destroy element`,
 * which would not, is newer), and `add` of a present element keeps its
 * old timeout. The safe form of a batch is, for each set:
 *
 *   add element FAM TABLE SET { every address of the batch }
 *   delete element FAM TABLE SET { every address of the batch }
 *   add element FAM TABLE SET { the adds, each "timeout Ns" }
 *
 * (adding first makes every delete valid; delete + add sets the new
 * remaining time). It costs three element operations per address, so the
 * backend keeps a shadow of what it believes each set holds (what it put
 * there, and what the last listing - the reconcile - showed) and first
 * sends the short form: pre-add only deletes it does not know to be
 * present, delete only what is present, then add. When the shadow is
 * wrong (the kernel expired an element, someone deleted one by hand) that
 * batch fails as a whole, changes nothing, and the safe form is sent. An
 * element present in the kernel but not in the shadow gets a plain add,
 * keeping its old timeout; the reconcile refreshes timeouts that are too
 * short. bench_fw measures both forms. Error text comes from nft's own
 * error buffer.
 *
 * Listing parses nft's text output ("elements = { 1.2.3.4 timeout 1h
 * expires 59m58s, ... }"); the JSON form would need a JSON parser for a
 * format that is as stable as the text.
 */
#include <sys/tree.h>
/* libbsd's RB_GENERATE_STATIC marks functions __unused, which glibc lacks. */
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nftables/libnftables.h>

#include "pf-sync/fw.h"
#include "pf-sync/fw_nft_table.h"

/* One element the backend believes a set holds. */
struct fw_nshadow {
	RB_ENTRY(fw_nshadow) entry;
	int		set;
	int		v6;
	char		ip[FW_IP_MAX];
};

RB_HEAD(fw_nshadows, fw_nshadow);

struct fw_nft {
	struct nft_ctx		*ctx;
	const struct fw_names	*nm;
	struct fw_nshadows	 shadow;
};

/* fw_nshadow_cmp - order shadow elements by set, family, address */
static int
fw_nshadow_cmp(const struct fw_nshadow *a, const struct fw_nshadow *b)
{
	if (a->set != b->set)
		return a->set < b->set ? -1 : 1;
	if (a->v6 != b->v6)
		return a->v6 < b->v6 ? -1 : 1;
	return strcmp(a->ip, b->ip);
}

RB_GENERATE_STATIC(fw_nshadows, fw_nshadow, entry, fw_nshadow_cmp)

/* fw_nshadow_find - the shadow element of (set, v6, ip), or NULL */
static struct fw_nshadow *
fw_nshadow_find(struct fw_nft *fn, int set, int v6, const char *ip)
{
	struct fw_nshadow key;

	key.set = set;
	key.v6 = v6;
	snprintf(key.ip, sizeof(key.ip), "%s", ip);
	return RB_FIND(fw_nshadows, &fn->shadow, &key);
}

/* fw_nshadow_put - note (set, v6, ip) as present; -1 out of memory */
static int
fw_nshadow_put(struct fw_nft *fn, int set, int v6, const char *ip)
{
	struct fw_nshadow *e;

	if ((e = calloc(1, sizeof(*e))) == NULL)
		return -1;
	e->set = set;
	e->v6 = v6;
	snprintf(e->ip, sizeof(e->ip), "%s", ip);
	if (RB_INSERT(fw_nshadows, &fn->shadow, e) != NULL)
		free(e);
	return 0;
}

/* fw_nshadow_clear - forget (set, v6)'s elements; set -1: every set */
static void
fw_nshadow_clear(struct fw_nft *fn, int set, int v6)
{
	struct fw_nshadow *e, *next;

	for (e = RB_MIN(fw_nshadows, &fn->shadow); e != NULL; e = next) {
		next = RB_NEXT(fw_nshadows, &fn->shadow, e);
		if (set != -1 && (e->set != set || e->v6 != v6))
			continue;
		RB_REMOVE(fw_nshadows, &fn->shadow, e);
		free(e);
	}
}

/* fw_nft_has_error - does the line of len bytes hold "Error:" */
static int
fw_nft_has_error(const char *line, size_t len)
{
	size_t i;

	for (i = 0; i + 6 <= len; i++)
		if (memcmp(line + i, "Error:", 6) == 0)
			return 1;
	return 0;
}

/* fw_nft_errtext - nft's error buffer (or errno) as one line after prefix */
static void
fw_nft_errtext(struct fw_nft *fn, char *err, size_t errsz, const char *prefix,
    int saved_errno)
{
	const char *e = nft_ctx_get_error_buffer(fn->ctx), *all = e;
	size_t off;

	snprintf(err, errsz, "%s", prefix);
	off = strlen(err);
	/* Some failures (no permission) libnftables only prints to stderr;
	 * errno still says what happened. */
	if (e == NULL || *e == '\0') {
		snprintf(err + off, errsz - off, ": %s", saved_errno ?
		    strerror(saved_errno) : "nft gave no error text");
		return;
	}
	/*
	 * Keep each distinct "Error: ..." line with the start of the command
	 * it is about (the next line); nft follows them with the whole
	 * command (up to the whole batch) and a caret line, which would swamp
	 * the log.
	 */
	{
		const char *first = NULL;
		size_t firstlen = 0;

		while (*e != '\0' && off + 3 < errsz) {
			const char *nl = strchr(e, '\n');
			size_t len = nl ? (size_t)(nl - e) : strlen(e);
			int w;

			/* "Error: ..." or "netlink: Error: ..." */
			if (fw_nft_has_error(e, len) &&
			    (first == NULL || len != firstlen ||
			    strncmp(e, first, len) != 0)) {
				const char *c = nl ? nl + 1 : "";
				size_t clen = strcspn(c, "\n");

				if (first == NULL) {
					first = e;
					firstlen = len;
				}
				if (clen == 0)
					w = snprintf(err + off, errsz - off,
					    ": %.*s",
					    (int)(len > 200 ? 200 : len), e);
				else
					w = snprintf(err + off, errsz - off,
					    ": %.*s (in: %.*s%s)",
					    (int)(len > 200 ? 200 : len), e,
					    (int)(clen > 80 ? 80 : clen), c,
					    clen > 80 ? " ..." : "");
				if (w < 0 || (size_t)w >= errsz - off)
					break;
				off += (size_t)w;
			}
			if (nl == NULL)
				break;
			e = nl + 1;
		}
		/* No "Error:" line: keep nft's first line as it is. */
		if (first == NULL) {
			size_t l = strcspn(all, "\n");

			snprintf(err + off, errsz - off, ": %.*s",
			    (int)(l > 200 ? 200 : l), all);
		}
	}
}

/* fw_nft_run - run one command buffer; -1 with nft's text after prefix */
static int
fw_nft_run(struct fw_nft *fn, const char *cmd, unsigned flags,
    const char **out, char *err, size_t errsz, const char *prefix)
{
	int rc, saved;

	nft_ctx_output_set_flags(fn->ctx, flags);
	errno = 0;
	rc = nft_run_cmd_from_buffer(fn->ctx, cmd);
	saved = errno;
	if (out)
		*out = nft_ctx_get_output_buffer(fn->ctx);
	else
		(void)nft_ctx_get_output_buffer(fn->ctx);
	if (rc != 0) {
		fw_nft_errtext(fn, err, errsz, prefix, saved);
		return -1;
	}
	(void)nft_ctx_get_error_buffer(fn->ctx);
	return 0;
}

static int	fw_nft_list(void *, enum fw_set, int, fw_list_fn, void *, char *,
		    size_t);

/* fw_nft_ignore - a listing callback that only fills the shadow */
static int
fw_nft_ignore(const char *ip, int64_t expires, void *arg)
{
	(void)ip;
	(void)expires;
	(void)arg;
	return 0;
}

/* fw_nft_load_shadow - list the white (and trap) sets into the shadow, so
 * the first flush after a start already refreshes present elements */
static int
fw_nft_load_shadow(struct fw_nft *fn, char *err, size_t errsz)
{
	int v6;

	for (v6 = 0; v6 < 2; v6++) {
		if (fw_nft_list(fn, FW_WHITE, v6, fw_nft_ignore, NULL, err,
		    errsz) == -1)
			return -1;
		if (fn->nm->use_trap_set && fw_nft_list(fn, FW_TRAP, v6,
		    fw_nft_ignore, NULL, err, errsz) == -1)
			return -1;
	}
	return 0;
}

/* fw_nft_settype - the set declaration spamd.nft uses for one set */
static const char *
fw_nft_settype(enum fw_set set, int v6)
{
	if (set == FW_BLACK)
		return v6 ? "{ type ipv6_addr; flags interval; }" :
		    "{ type ipv4_addr; flags interval; }";
	return v6 ? "{ type ipv6_addr; flags timeout; }" :
	    "{ type ipv4_addr; flags timeout; }";
}

/*
 * fw_nft_settype_ok - an existing set must have the address family and,
 * for white and trap sets, the timeout flag spamd needs; otherwise every
 * flush would fail later with a less clear message.
 */
static int
fw_nft_settype_ok(const struct fw_names *n, enum fw_set s, int v6,
    const char *out, char *err, size_t errsz)
{
	const char *want = v6 ? "type ipv6_addr" : "type ipv4_addr";
	const char *flags;
	int timeout_ok = 1;

	if (out == NULL)
		return 0;
	if (s != FW_BLACK) {
		flags = strstr(out, "flags ");
		timeout_ok = flags != NULL &&
		    strstr(flags, "timeout") != NULL &&
		    strstr(flags, "timeout") < flags + strcspn(flags, "\n");
	}
	if (strstr(out, want) != NULL && timeout_ok)
		return 0;
	snprintf(err, errsz, "nftables set %s in table %s %s is not \"%s\"%s; "
	    "recreate it with: nft delete set %s %s %s; nft add set %s %s %s "
	    "'%s'", n->set[s][v6], n->family, n->table, want,
	    s != FW_BLACK ? " with flags timeout" : "", n->family, n->table,
	    n->set[s][v6], n->family, n->table, n->set[s][v6],
	    fw_nft_settype(s, v6));
	return -1;
}

/* fw_nft_close - free the context */
static void
fw_nft_close(void *state)
{
	struct fw_nft *fn = state;

	if (fn == NULL)
		return;
	if (fn->ctx)
		nft_ctx_free(fn->ctx);
	fw_nshadow_clear(fn, -1, 0);
	free(fn);
}

/* fw_nft_open - make a context and check (or create) the sets */
static int
fw_nft_open(const struct fw_names *nm, void **state, char *err, size_t errsz)
{
	const struct fw_names *n = nm;
	struct fw_nft *fn;
	char cmd[1024], create[4096], nfterr[512], howto[2048];
	const char *out;
	int s, v6, table_ok, missing = 0;
	size_t clen = 0, hlen = 0;

	if ((fn = calloc(1, sizeof(*fn))) == NULL) {
		snprintf(err, errsz, "nftables: out of memory");
		return -1;
	}
	fn->nm = nm;
	RB_INIT(&fn->shadow);
	if ((fn->ctx = nft_ctx_new(NFT_CTX_DEFAULT)) == NULL) {
		snprintf(err, errsz, "nftables: nft_ctx_new failed");
		free(fn);
		return -1;
	}
	if (nft_ctx_buffer_output(fn->ctx) != 0 ||
	    nft_ctx_buffer_error(fn->ctx) != 0) {
		snprintf(err, errsz, "nftables: cannot buffer nft output");
		fw_nft_close(fn);
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "list table %s %s", n->family, n->table);
	table_ok = fw_nft_run(fn, cmd, NFT_CTX_OUTPUT_TERSE, NULL, nfterr,
	    sizeof(nfterr), "nft") == 0;
	create[0] = howto[0] = '\0';
	if (!table_ok) {
		clen += snprintf(create + clen, sizeof(create) - clen,
		    "add table %s %s\n", n->family, n->table);
		hlen += snprintf(howto + hlen, sizeof(howto) - hlen,
		    "nft add table %s %s; ", n->family, n->table);
	}
	for (s = 0; s < FW_NSETS; s++) {
		if (s == FW_BLACK && !n->use_black_set)
			continue;
		if (s == FW_TRAP && !n->use_trap_set)
			continue;
		for (v6 = 0; v6 < 2; v6++) {
			if (table_ok) {
				snprintf(cmd, sizeof(cmd), "list set %s %s %s",
				    n->family, n->table, n->set[s][v6]);
				if (fw_nft_run(fn, cmd, NFT_CTX_OUTPUT_TERSE,
				    &out, nfterr, sizeof(nfterr), "nft") == 0) {
					if (fw_nft_settype_ok(n, s, v6, out, err,
					    errsz) == -1) {
						fw_nft_close(fn);
						return -1;
					}
					continue;
				}
			}
			if (missing++ == 0 && !n->create) {
				/* Name the first missing set in the message. */
				snprintf(err, errsz, "nftables set %s is "
				    "missing from table %s %s", n->set[s][v6],
				    n->family, n->table);
			}
			if (clen < sizeof(create))
				clen += snprintf(create + clen,
				    sizeof(create) - clen,
				    "add set %s %s %s %s\n", n->family,
				    n->table, n->set[s][v6],
				    fw_nft_settype(s, v6));
			if (hlen < sizeof(howto))
				hlen += snprintf(howto + hlen,
				    sizeof(howto) - hlen,
				    "nft add set %s %s %s '%s'; ", n->family,
				    n->table, n->set[s][v6],
				    fw_nft_settype(s, v6));
		}
	}
	if (missing == 0 && table_ok) {
		if (fw_nft_load_shadow(fn, err, errsz) == -1) {
			fw_nft_close(fn);
			return -1;
		}
		*state = fn;
		return 0;
	}
	/* Not allowed to look is not "missing": say what is needed. */
	if (strstr(nfterr, "Operation not permitted") != NULL) {
		snprintf(err, errsz, "nftables: cannot read table %s %s (%s); "
		    "spamd's firewall side needs CAP_NET_ADMIN", n->family,
		    n->table, nfterr);
		fw_nft_close(fn);
		return -1;
	}
	if (!n->create) {
		size_t off = strlen(err);

		if (hlen >= 2 && hlen < sizeof(howto))
			howto[hlen - 2] = '\0';	/* drop the last "; " */
		if (missing == 0)
			snprintf(err, errsz, "nftables table %s %s is missing",
			    n->family, n->table);
		off = strlen(err);
		snprintf(err + off, errsz - off, " (%s); create it with: %s "
		    "(or load etc/spamd.nft, or start with --fw-create)",
		    nfterr, howto);
		fw_nft_close(fn);
		return -1;
	}
	if (clen >= sizeof(create)) {
		snprintf(err, errsz, "nftables: set names too long");
		fw_nft_close(fn);
		return -1;
	}
	if (fw_nft_run(fn, create, 0, NULL, err, errsz,
	    "nftables: cannot create the sets") == -1 ||
	    fw_nft_load_shadow(fn, err, errsz) == -1) {
		fw_nft_close(fn);
		return -1;
	}
	*state = fn;
	return 0;
}

/* What each command of a batch lists for a change. */
enum fw_nft_part { FW_NFT_PREADD, FW_NFT_DELETE, FW_NFT_ADD };

/* fw_nft_wants - does change c go into part of the batch (safe: the safe
 * form; else the short form, which asks the shadow) */
static int
fw_nft_wants(struct fw_nft *fn, const struct fw_change *c,
    enum fw_nft_part part, int safe)
{
	int known;

	if (part == FW_NFT_ADD)
		return c->add;
	if (safe)
		return 1;
	known = fw_nshadow_find(fn, c->set, c->v6, c->ip) != NULL;
	if (part == FW_NFT_PREADD)
		return !c->add && !known;
	return !c->add || known;
}

/* fw_nft_cmd - append "VERB element FAM TABLE SET { ... }" for changes
 * [i, j) that belong to part; nothing when none does */
static void
fw_nft_cmd(struct fw_nft *fn, FILE *fp, const struct fw_change *ch,
    size_t i, size_t j, enum fw_nft_part part, int safe)
{
	const struct fw_names *nm = fn->nm;
	const char *sep = " { ";
	size_t k;

	for (k = i; k < j; k++) {
		if (!fw_nft_wants(fn, &ch[k], part, safe))
			continue;
		if (sep[1] == '{')
			fprintf(fp, "%s element %s %s %s",
			    part == FW_NFT_DELETE ? "delete" : "add",
			    nm->family, nm->table,
			    nm->set[ch[i].set][ch[i].v6]);
		fputs(sep, fp);
		fputs(ch[k].ip, fp);
		/* The black sets are interval sets without timeouts. */
		if (part == FW_NFT_ADD && ch[k].timeout > 0 &&
		    ch[k].set != FW_BLACK)
			fprintf(fp, " timeout %llds",
			    (long long)ch[k].timeout);
		sep = ", ";
	}
	if (sep[1] != '{')
		fputs(" }\n", fp);
}

/* fw_nft_batch - the command buffer of all changes (short or safe form) */
static char *
fw_nft_batch(struct fw_nft *fn, const struct fw_change *ch, size_t n,
    int safe)
{
	char *buf = NULL;
	size_t len = 0, i, j;
	FILE *fp;

	if ((fp = open_memstream(&buf, &len)) == NULL)
		return NULL;
	for (i = 0; i < n; i = j) {
		for (j = i; j < n && ch[j].set == ch[i].set &&
		    ch[j].v6 == ch[i].v6; j++)
			;
		fw_nft_cmd(fn, fp, ch, i, j, FW_NFT_PREADD, safe);
		fw_nft_cmd(fn, fp, ch, i, j, FW_NFT_DELETE, safe);
		fw_nft_cmd(fn, fp, ch, i, j, FW_NFT_ADD, safe);
	}
	if (fclose(fp) == EOF) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* fw_nft_flush - one batch (short form, then the safe form if needed) */
static int
fw_nft_flush(void *state, const struct fw_change *ch, size_t n, char *err,
    size_t errsz)
{
	struct fw_nft *fn = state;
	const struct fw_names *nm = fn->nm;
	char *buf, prefix[128];
	size_t i;
	int rv, safe;

	snprintf(prefix, sizeof(prefix), "nftables update of %zu element%s "
	    "in table %s %s failed", n, n == 1 ? "" : "s", nm->family,
	    nm->table);
	for (safe = 0; safe < 2; safe++) {
		if ((buf = fw_nft_batch(fn, ch, n, safe)) == NULL) {
			snprintf(err, errsz, "nftables: out of memory");
			return -1;
		}
		rv = fw_nft_run(fn, buf, 0, NULL, err, errsz, prefix);
		free(buf);
		if (rv == 0)
			break;
	}
	if (rv == -1) {
		/* The kernel state is unknown to us now: trust no shadow. */
		fw_nshadow_clear(fn, -1, 0);
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct fw_nshadow *e;

		if (ch[i].add) {
			if (fw_nshadow_put(fn, ch[i].set, ch[i].v6,
			    ch[i].ip) == -1) {
				/* Only the fast path suffers: forget all. */
				fw_nshadow_clear(fn, -1, 0);
				break;
			}
		} else if ((e = fw_nshadow_find(fn, ch[i].set, ch[i].v6,
		    ch[i].ip)) != NULL) {
			RB_REMOVE(fw_nshadows, &fn->shadow, e);
			free(e);
		}
	}
	return 0;
}

/* fw_nft_duration - nft's "1d2h3m4s500ms" as whole seconds; -1 if bad */
static int64_t
fw_nft_duration(const char *p, const char **end)
{
	int64_t total = 0, v;
	int any = 0;

	while (isdigit((unsigned char)*p)) {
		v = 0;
		while (isdigit((unsigned char)*p) && v < 1000000000000LL)
			v = v * 10 + (*p++ - '0');
		if (p[0] == 'm' && p[1] == 's') {
			p += 2;			/* milliseconds: dropped */
		} else if (*p == 'd') {
			total += v * 86400; p++;
		} else if (*p == 'h') {
			total += v * 3600; p++;
		} else if (*p == 'm') {
			total += v * 60; p++;
		} else if (*p == 's') {
			total += v; p++;
		} else
			return -1;
		any = 1;
	}
	*end = p;
	return any ? total : -1;
}

/* fw_nft_parse - the elements of nft's "list set" text output */
int
fw_nft_parse(const char *out, fw_list_fn cb, void *arg, char *err,
    size_t errsz)
{
	const char *p;
	char ip[FW_IP_MAX];

	if (out == NULL || (p = strstr(out, "elements = {")) == NULL)
		return 0;		/* an empty set prints no elements */
	p += strlen("elements = {");
	for (;;) {
		int64_t expires = 0;
		size_t k = 0;

		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == ',')
			p++;
		if (*p == '}')
			break;
		if (*p == '\0') {
			snprintf(err, errsz, "no closing brace of the element "
			    "list at byte %zu of nft's output",
			    (size_t)(p - out));
			return -1;
		}
		while (*p != '\0' && !isspace((unsigned char)*p) &&
		    *p != ',' && *p != '}') {
			if (k + 1 >= sizeof(ip)) {
				snprintf(err, errsz, "element too long at byte "
				    "%zu of nft's output", (size_t)(p - out));
				return -1;
			}
			ip[k++] = *p++;
		}
		ip[k] = '\0';
		/* The rest of the element: "timeout 1h expires 59m58s". */
		while (*p != '\0' && *p != ',' && *p != '}') {
			if (strncmp(p, "expires ", 8) == 0) {
				const char *e;
				int64_t d = fw_nft_duration(p + 8, &e);

				if (d < 0) {
					snprintf(err, errsz, "bad expiry at byte "
					    "%zu of nft's output",
					    (size_t)(p - out));
					return -1;
				}
				/* Under a second left is not "no timeout". */
				expires = d > 0 ? d : 1;
				p = e;
				continue;
			}
			p++;
		}
		if (k == 0)
			continue;
		if (cb(ip, expires, arg) != 0)
			break;
	}
	return 0;
}

/* What fw_nft_list's parse callback passes on. */
struct fw_nft_listctx {
	struct fw_nft	*fn;
	int		 set, v6, oom;
	fw_list_fn	 cb;
	void		*arg;
};

/* fw_nft_list_cb - note a listed element in the shadow, pass it on */
static int
fw_nft_list_cb(const char *ip, int64_t expires, void *arg)
{
	struct fw_nft_listctx *lc = arg;

	if (fw_nshadow_put(lc->fn, lc->set, lc->v6, ip) == -1) {
		lc->oom = 1;
		return 1;
	}
	return lc->cb(ip, expires, lc->arg);
}

/* fw_nft_list - list one set, refreshing the shadow of it */
static int
fw_nft_list(void *state, enum fw_set set, int v6, fw_list_fn cb, void *arg,
    char *err, size_t errsz)
{
	struct fw_nft *fn = state;
	const struct fw_names *nm = fn->nm;
	struct fw_nft_listctx lc = { fn, set, v6, 0, cb, arg };
	const char *out;
	char cmd[512], prefix[512], perr[256];

	snprintf(cmd, sizeof(cmd), "list set %s %s %s", nm->family, nm->table,
	    nm->set[set][v6]);
	snprintf(prefix, sizeof(prefix), "nftables: cannot list set %s %s %s",
	    nm->family, nm->table, nm->set[set][v6]);
	if (fw_nft_run(fn, cmd, 0, &out, err, errsz, prefix) == -1)
		return -1;
	/* The listing is the truth: the shadow of this set becomes it. */
	fw_nshadow_clear(fn, set, v6);
	if (fw_nft_parse(out, fw_nft_list_cb, &lc, perr, sizeof(perr)) == -1) {
		snprintf(err, errsz, "%s: %s", prefix, perr);
		return -1;
	}
	if (lc.oom) {
		snprintf(err, errsz, "%s: out of memory", prefix);
		return -1;
	}
	return 0;
}

/* fw_nft_present - is our table there, and its handle (see fw.h) */
static int
fw_nft_present(void *state, char *what, size_t whatsz, uint64_t *id)
{
	struct fw_nft *fn = state;
	const struct fw_names *nm = fn->nm;

	*id = 0;
	snprintf(what, whatsz, "%s %s", nm->family, nm->table);
	/*
	 * why not "nft list tables": libnftables fetches every set's
	 * elements for it (2-8 s with 300,000 addresses, in the writer's
	 * loop every 5 s); one netlink GETTABLE by name costs microseconds
	 */
	return fw_nft_table_handle(nm->family, nm->table, id);
}

const struct fw_backend fw_backend_nft = {
	.name = "nftables",
	.open = fw_nft_open,
	.close = fw_nft_close,
	.flush = fw_nft_flush,
	.list = fw_nft_list,
	.present = fw_nft_present,
};
