/*
 * fw_ipset.c - the ipset firewall backend (iptables + ipset sites).
 *
 * One flush is one `ipset restore -exist` with every change on its stdin
 * ("add SET IP timeout N" / "del SET IP"), never a process per address.
 * -exist makes a delete of an absent address and an add of a present one
 * succeed, and an add of a present address sets its timeout anew, so no
 * trick is needed (compare fw_nft.c). The program runs with a fixed argv
 * (fw_exec); its stderr becomes the error text.
 *
 * Sets: white and trap sets are hash:ip with "timeout 0" (elements carry
 * their own timeout; 0 = none), the black sets hash:net (spamd-setup gives
 * networks); the IPv6 ones "family inet6"; all with maxelem 1048576 (the
 * default 65536 is too small for a busy whitelist). Listing parses
 * `ipset save SET`.
 *
 * Presence (fw_present, the writer's watch every few seconds and after a
 * failed flush): one `ipset list -t`, the headers of every set and never
 * their elements. A set's identity is the hash seed ("initval 0x...") of
 * its header: the kernel draws it at random when the set is created, so
 * a set destroyed and created again between two looks has a new one.
 * (`ipset restore` of a saved set keeps the saved seed: that set comes
 * back with its saved elements, and the periodic reconcile repairs it.)
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pf-sync/fw.h"

struct fw_ipset {
	const struct fw_names	*nm;
};

/* fw_ipset_type - the create arguments for one set */
static const char *
fw_ipset_type(enum fw_set set, int v6)
{
	if (set == FW_BLACK)
		return v6 ? "hash:net family inet6 maxelem 1048576" :
		    "hash:net family inet maxelem 1048576";
	return v6 ? "hash:ip family inet6 timeout 0 maxelem 1048576" :
	    "hash:ip family inet timeout 0 maxelem 1048576";
}

/* fw_ipset_restore - run `ipset restore -exist` with text on stdin */
static int
fw_ipset_restore(const char *text, size_t len, char *err, size_t errsz)
{
	char *const argv[] = { "ipset", "restore", "-exist", NULL };

	return fw_exec(argv, text, len, NULL, NULL, err, errsz);
}

/* fw_ipset_close - free the state */
static void
fw_ipset_close(void *state)
{
	free(state);
}

/* fw_ipset_open - check (or create) the sets */
static int
fw_ipset_open(const struct fw_names *nm, void **state, char *err,
    size_t errsz)
{
	struct fw_ipset *fi;
	char create[4096], howto[2048], ierr[512];
	size_t clen = 0, hlen = 0;
	int s, v6, missing = 0;

	if ((fi = calloc(1, sizeof(*fi))) == NULL) {
		snprintf(err, errsz, "ipset: out of memory");
		return -1;
	}
	fi->nm = nm;
	ierr[0] = create[0] = howto[0] = '\0';
	for (s = 0; s < FW_NSETS; s++) {
		if (s == FW_BLACK && !nm->use_black_set)
			continue;
		if (s == FW_TRAP && !nm->use_trap_set)
			continue;
		for (v6 = 0; v6 < 2; v6++) {
			char *const argv[] = { "ipset", "list", "-t",
			    (char *)nm->set[s][v6], NULL };

			if (fw_exec(argv, NULL, 0, NULL, NULL, ierr,
			    sizeof(ierr)) == 0)
				continue;
			if (missing++ == 0 && !nm->create)
				snprintf(err, errsz, "ipset set %s is missing",
				    nm->set[s][v6]);
			if (clen < sizeof(create))
				clen += snprintf(create + clen,
				    sizeof(create) - clen, "create %s %s\n",
				    nm->set[s][v6], fw_ipset_type(s, v6));
			if (hlen < sizeof(howto))
				hlen += snprintf(howto + hlen,
				    sizeof(howto) - hlen, "ipset create %s %s; ",
				    nm->set[s][v6], fw_ipset_type(s, v6));
		}
	}
	if (missing == 0) {
		*state = fi;
		return 0;
	}
	/* Not allowed to look is not "missing": say what is needed. */
	if (strstr(ierr, "Operation not permitted") != NULL) {
		snprintf(err, errsz, "ipset: cannot read set %s (%s); spamd's "
		    "firewall side needs CAP_NET_ADMIN", nm->set[FW_WHITE][0],
		    ierr);
		free(fi);
		return -1;
	}
	if (!nm->create) {
		size_t off = strlen(err);

		if (hlen >= 2 && hlen < sizeof(howto))
			howto[hlen - 2] = '\0';
		snprintf(err + off, errsz - off, " (%s); create it with: %s "
		    "(or run etc/spamd-iptables.sh, or start with "
		    "--fw-create)", ierr, howto);
		free(fi);
		return -1;
	}
	if (clen >= sizeof(create)) {
		snprintf(err, errsz, "ipset: set names too long");
		free(fi);
		return -1;
	}
	if (fw_ipset_restore(create, clen, err, errsz) == -1) {
		free(fi);
		return -1;
	}
	*state = fi;
	return 0;
}

/* fw_ipset_flush - one `ipset restore -exist` for every change */
static int
fw_ipset_flush(void *state, const struct fw_change *ch, size_t n, char *err,
    size_t errsz)
{
	struct fw_ipset *fi = state;
	char *buf = NULL;
	size_t len = 0, i;
	FILE *fp;
	int rv;

	if ((fp = open_memstream(&buf, &len)) == NULL) {
		snprintf(err, errsz, "ipset: out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		const char *set = fi->nm->set[ch[i].set][ch[i].v6];

		if (!ch[i].add)
			fprintf(fp, "del %s %s\n", set, ch[i].ip);
		else if (ch[i].timeout > 0 && ch[i].set != FW_BLACK)
			fprintf(fp, "add %s %s timeout %lld\n", set, ch[i].ip,
			    (long long)ch[i].timeout);
		else
			fprintf(fp, "add %s %s\n", set, ch[i].ip);
	}
	if (fclose(fp) == EOF || buf == NULL) {
		free(buf);
		snprintf(err, errsz, "ipset: out of memory");
		return -1;
	}
	rv = fw_ipset_restore(buf, len, err, errsz);
	free(buf);
	return rv;
}

/* fw_ipset_parse - the "add SET IP [timeout N]" lines of `ipset save` */
int
fw_ipset_parse(const char *out, const char *name, fw_list_fn fn, void *arg,
    char *err, size_t errsz)
{
	const char *line, *next, *p, *t, *end;
	char ip[FW_IP_MAX];
	size_t nlen = strlen(name);
	long lineno = 0;

	for (line = out; line != NULL && *line != '\0'; line = next) {
		int64_t expires = 0;
		size_t k = 0;

		lineno++;
		if ((end = strchr(line, '\n')) != NULL)
			next = end + 1;
		else {
			end = line + strlen(line);
			next = NULL;
		}
		if (end - line < (ptrdiff_t)(5 + nlen) ||
		    strncmp(line, "add ", 4) != 0 ||
		    strncmp(line + 4, name, nlen) != 0 || line[4 + nlen] != ' ')
			continue;
		p = line + 5 + nlen;
		while (p < end && *p != ' ') {
			if (k + 1 >= sizeof(ip)) {
				snprintf(err, errsz, "ipset save %s: line %ld: "
				    "element too long", name, lineno);
				return -1;
			}
			ip[k++] = *p++;
		}
		ip[k] = '\0';
		t = p;
		while (t + 9 <= end && strncmp(t, " timeout ", 9) != 0)
			t++;
		if (t + 9 <= end) {
			char *e;

			/* ipset prints "timeout 0" for an element without one */
			expires = strtoll(t + 9, &e, 10);
			if (e == t + 9 || expires < 0) {
				snprintf(err, errsz, "ipset save %s: line %ld: "
				    "bad timeout", name, lineno);
				return -1;
			}
		}
		if (k > 0 && fn(ip, expires, arg) != 0)
			break;
	}
	return 0;
}

/* fw_ipset_list - list one set through `ipset save` */
static int
fw_ipset_list(void *state, enum fw_set set, int v6, fw_list_fn fn, void *arg,
    char *err, size_t errsz)
{
	struct fw_ipset *fi = state;
	const char *name = fi->nm->set[set][v6];
	char *const argv[] = { "ipset", "save", (char *)name, NULL };
	char *out = NULL;
	size_t outlen;
	int rv;

	if (fw_exec(argv, NULL, 0, &out, &outlen, err, errsz) == -1)
		return -1;
	rv = fw_ipset_parse(out, name, fn, arg, err, errsz);
	free(out);
	return rv;
}

/* fw_ipset_block - the header block of set name in `ipset list -t`
 * output ("Name: NAME" up to the next blank line); NULL when absent */
static const char *
fw_ipset_block(const char *out, const char *name, const char **end)
{
	const char *p;
	size_t nl = strlen(name);

	for (p = out; (p = strstr(p, "Name: ")) != NULL; p += 6) {
		if ((p != out && p[-1] != '\n') || strncmp(p + 6, name, nl) != 0 ||
		    (p[6 + nl] != '\n' && p[6 + nl] != '\0'))
			continue;
		if ((*end = strstr(p, "\n\n")) == NULL)
			*end = p + strlen(p);
		return p;
	}
	return NULL;
}

/* fw_ipset_heads - which of names[0..n) are missing from `ipset list -t`
 * output (what gets the first), and an identity of the sets from their
 * hash seeds (see fw.h) */
int
fw_ipset_heads(const char *out, const char *const *names, size_t n,
    char *what, size_t whatsz, uint64_t *id)
{
	const char *b, *end, *iv;
	uint64_t h = 14695981039346656037ULL;	/* FNV-1a */
	size_t i;
	int seeds = 0;

	*id = 0;
	for (i = 0; i < n; i++) {
		if ((b = fw_ipset_block(out, names[i], &end)) == NULL) {
			snprintf(what, whatsz, "%s", names[i]);
			return 0;
		}
		/* why the seed and not the element count: a count that falls
		 * to 0 may be timeouts running out; the seed changes only
		 * when the set is made again */
		if ((iv = strstr(b, " initval 0x")) == NULL || iv > end)
			continue;
		for (iv += 11; iv < end && *iv != ' ' && *iv != '\n'; iv++) {
			h ^= (unsigned char)*iv;
			h *= 1099511628211ULL;
		}
		h ^= ';';
		h *= 1099511628211ULL;
		seeds++;
	}
	snprintf(what, whatsz, "%s", n > 0 ? names[0] : "");
	/* an older kernel prints no seed: identity unknown, presence only */
	if (seeds == (int)n && n > 0)
		*id = h != 0 ? h : 1;
	return 1;
}

/* fw_ipset_present - are our sets there, and their identity (fw.h) */
static int
fw_ipset_present(void *state, char *what, size_t whatsz, uint64_t *id)
{
	struct fw_ipset *fi = state;
	const struct fw_names *nm = fi->nm;
	char *const argv[] = { "ipset", "list", "-t", NULL };
	const char *names[2 * FW_NSETS];
	char *out = NULL, err[512];
	size_t outlen, n = 0;
	int s, v6, rv;

	*id = 0;
	for (s = 0; s < FW_NSETS; s++) {
		if ((s == FW_BLACK && !nm->use_black_set) ||
		    (s == FW_TRAP && !nm->use_trap_set))
			continue;
		for (v6 = 0; v6 < 2; v6++)
			names[n++] = nm->set[s][v6];
	}
	snprintf(what, whatsz, "%s", nm->set[FW_WHITE][0]);
	if (fw_exec(argv, NULL, 0, &out, &outlen, err, sizeof(err)) == -1 ||
	    out == NULL) {
		free(out);
		return -1;
	}
	rv = fw_ipset_heads(out, names, n, what, whatsz, id);
	free(out);
	return rv;
}

const struct fw_backend fw_backend_ipset = {
	.name = "ipset",
	.open = fw_ipset_open,
	.close = fw_ipset_close,
	.flush = fw_ipset_flush,
	.list = fw_ipset_list,
	.present = fw_ipset_present,
	.kind = "set",
	.howto = "create the sets again (etc/spamd-iptables.sh)",
	/* ipset refuses timeouts above 2147483 s (about 24.8 days) */
	.max_timeout = 2147483,
};
