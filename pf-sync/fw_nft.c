/*
 * fw_nft.c - the nftables firewall backend, through libnftables.
 *
 * One flush is one nft_run_cmd_from_buffer call with one command buffer,
 * which libnftables sends as one netlink batch: the kernel applies all of
 * it or none of it. For each set the buffer holds three commands:
 *
 *   add element FAM TABLE SET { every address of the batch }
 *   delete element FAM TABLE SET { every address of the batch }
 *   add element FAM TABLE SET { the adds, each "timeout Ns" }
 *
 * Why: nftables fails the whole batch when a deleted element is absent
 * (`destroy element`, which would not, is newer than nftables 1.0.6), and
 * `add` of an element that exists keeps its old timeout. Adding first makes
 * every delete valid, and delete + add sets the new remaining time, so one
 * batch both removes what may be absent and refreshes what may be present,
 * at the cost of three element operations per address (measured by
 * bench_fw). Error text comes from nft's own error buffer.
 *
 * Listing parses nft's text output ("elements = { 1.2.3.4 timeout 1h
 * expires 59m58s, ... }"); the JSON form would need a JSON parser for a
 * format that is as stable as the text.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nftables/libnftables.h>

#include "pf-sync/fw.h"

struct fw_nft {
	struct nft_ctx		*ctx;
	const struct fw_names	*nm;
};

/* fw_nft_errtext - nft's error buffer as one line into err after prefix */
static void
fw_nft_errtext(struct fw_nft *fn, char *err, size_t errsz, const char *prefix)
{
	const char *e = nft_ctx_get_error_buffer(fn->ctx);
	size_t off;

	snprintf(err, errsz, "%s", prefix);
	off = strlen(err);
	if (e == NULL || *e == '\0') {
		snprintf(err + off, errsz - off, ": nft gave no error text");
		return;
	}
	/*
	 * Keep the "Error: ..." lines; nft follows each with the command (up
	 * to the whole batch) and a caret line, which would swamp the log.
	 */
	while (*e != '\0' && off + 3 < errsz) {
		const char *nl = strchr(e, '\n');
		size_t len = nl ? (size_t)(nl - e) : strlen(e);

		if (len >= 6 && strncmp(e, "Error:", 6) == 0) {
			int w = snprintf(err + off, errsz - off, ": %.*s",
			    (int)(len > 300 ? 300 : len), e);

			if (w < 0 || (size_t)w >= errsz - off)
				break;
			off += (size_t)w;
		}
		if (nl == NULL)
			break;
		e = nl + 1;
	}
}

/* fw_nft_run - run one command buffer; -1 with nft's text after prefix */
static int
fw_nft_run(struct fw_nft *fn, const char *cmd, unsigned flags,
    const char **out, char *err, size_t errsz, const char *prefix)
{
	int rc;

	nft_ctx_output_set_flags(fn->ctx, flags);
	rc = nft_run_cmd_from_buffer(fn->ctx, cmd);
	if (out)
		*out = nft_ctx_get_output_buffer(fn->ctx);
	else
		(void)nft_ctx_get_output_buffer(fn->ctx);
	if (rc != 0) {
		fw_nft_errtext(fn, err, errsz, prefix);
		return -1;
	}
	(void)nft_ctx_get_error_buffer(fn->ctx);
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

/* fw_nft_close - free the context */
static void
fw_nft_close(void *state)
{
	struct fw_nft *fn = state;

	if (fn == NULL)
		return;
	if (fn->ctx)
		nft_ctx_free(fn->ctx);
	free(fn);
}

/* fw_nft_open - make a context and check (or create) the sets */
static int
fw_nft_open(const struct fw_names *nm, void **state, char *err, size_t errsz)
{
	const struct fw_names *n = nm;
	struct fw_nft *fn;
	char cmd[1024], create[4096], nfterr[512], howto[2048];
	int s, v6, table_ok, missing = 0;
	size_t clen = 0, hlen = 0;

	if ((fn = calloc(1, sizeof(*fn))) == NULL) {
		snprintf(err, errsz, "nftables: out of memory");
		return -1;
	}
	fn->nm = nm;
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
				    NULL, nfterr, sizeof(nfterr), "nft") == 0)
					continue;
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
		*state = fn;
		return 0;
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
	    "nftables: cannot create the sets") == -1) {
		fw_nft_close(fn);
		return -1;
	}
	*state = fn;
	return 0;
}

/* fw_nft_elems - append " { a, b, ... }" of changes [i, j) to fp */
static void
fw_nft_elems(FILE *fp, const struct fw_change *ch, size_t i, size_t j,
    int adds_only, int with_timeout)
{
	const char *sep = " { ";

	for (; i < j; i++) {
		if (adds_only && !ch[i].add)
			continue;
		fputs(sep, fp);
		fputs(ch[i].ip, fp);
		if (with_timeout && ch[i].timeout > 0)
			fprintf(fp, " timeout %llds",
			    (long long)ch[i].timeout);
		sep = ", ";
	}
	fputs(" }\n", fp);
}

/* fw_nft_flush - one command buffer (one netlink batch) for all changes */
static int
fw_nft_flush(void *state, const struct fw_change *ch, size_t n, char *err,
    size_t errsz)
{
	struct fw_nft *fn = state;
	const struct fw_names *nm = fn->nm;
	char *buf = NULL, prefix[128];
	size_t len = 0, i, j, nadd;
	FILE *fp;
	int rv;

	if ((fp = open_memstream(&buf, &len)) == NULL) {
		snprintf(err, errsz, "nftables: out of memory");
		return -1;
	}
	for (i = 0; i < n; i = j) {
		const char *set = nm->set[ch[i].set][ch[i].v6];

		nadd = 0;
		for (j = i; j < n && ch[j].set == ch[i].set &&
		    ch[j].v6 == ch[i].v6; j++)
			nadd += ch[j].add;
		fprintf(fp, "add element %s %s %s", nm->family, nm->table,
		    set);
		fw_nft_elems(fp, ch, i, j, 0, 0);
		fprintf(fp, "delete element %s %s %s", nm->family, nm->table,
		    set);
		fw_nft_elems(fp, ch, i, j, 0, 0);
		if (nadd == 0)
			continue;
		fprintf(fp, "add element %s %s %s", nm->family, nm->table,
		    set);
		fw_nft_elems(fp, ch, i, j, 1, 1);
	}
	if (fclose(fp) == EOF || buf == NULL) {
		free(buf);
		snprintf(err, errsz, "nftables: out of memory");
		return -1;
	}
	snprintf(prefix, sizeof(prefix), "nftables update of %zu element%s "
	    "in table %s %s failed", n, n == 1 ? "" : "s", nm->family,
	    nm->table);
	rv = fw_nft_run(fn, buf, 0, NULL, err, errsz, prefix);
	free(buf);
	return rv;
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

/* fw_nft_list - parse the elements of "list set" text output */
static int
fw_nft_list(void *state, enum fw_set set, int v6, fw_list_fn cb, void *arg,
    char *err, size_t errsz)
{
	struct fw_nft *fn = state;
	const struct fw_names *nm = fn->nm;
	const char *out, *p;
	char cmd[512], prefix[512], ip[FW_IP_MAX];

	snprintf(cmd, sizeof(cmd), "list set %s %s %s", nm->family, nm->table,
	    nm->set[set][v6]);
	snprintf(prefix, sizeof(prefix), "nftables: cannot list set %s %s %s",
	    nm->family, nm->table, nm->set[set][v6]);
	if (fw_nft_run(fn, cmd, 0, &out, err, errsz, prefix) == -1)
		return -1;
	if (out == NULL || (p = strstr(out, "elements = {")) == NULL)
		return 0;		/* an empty set prints no elements */
	p += strlen("elements = {");
	for (;;) {
		int64_t expires = 0;
		size_t k = 0;

		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == ',')
			p++;
		if (*p == '}' || *p == '\0')
			break;
		while (*p != '\0' && !isspace((unsigned char)*p) &&
		    *p != ',' && *p != '}') {
			if (k + 1 >= sizeof(ip)) {
				snprintf(err, errsz, "%s: element too long at "
				    "byte %zu of nft's output", prefix,
				    (size_t)(p - out));
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
					snprintf(err, errsz, "%s: bad expiry at "
					    "byte %zu of nft's output", prefix,
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
		if (k > 0 && cb(ip, expires, arg) != 0)
			break;
	}
	return 0;
}

const struct fw_backend fw_backend_nft = {
	.name = "nftables",
	.open = fw_nft_open,
	.close = fw_nft_close,
	.flush = fw_nft_flush,
	.list = fw_nft_list,
};
