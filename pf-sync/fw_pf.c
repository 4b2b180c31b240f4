/*
 * fw_pf.c - the pf firewall backend (OpenBSD/FreeBSD pf, through pfctl).
 *
 * pfctl runs with a fixed argv and the addresses on stdin:
 *   pfctl -q -t TABLE -T add -f -       (adds of one table)
 *   pfctl -q -t TABLE -T delete -f -    (deletes of one table)
 *   pfctl -q -t TABLE -T show           (listing; the open check)
 * so a flush costs at most two pfctl runs per table touched, never one per
 * address. A pf table holds IPv4 and IPv6 together, so both families of a
 * set go to one table, named by the IPv4 set name (spamd-white, as in
 * OpenBSD's pf.conf). pf tables have no per-address timeout: expiry
 * reaches pf through fw_del (the store's expiry) and the reconcile.
 * Deleting an absent address is not an error for pfctl.
 * The pfctl path is conf->pfctl (tests use a stand-in; pf does not run on
 * Linux).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pf-sync/fw.h"

struct fw_pf {
	const struct fw_names	*nm;
};

/* fw_pf_run - pfctl -q -t table -T action [-f -] with data on stdin */
static int
fw_pf_run(struct fw_pf *fp, const char *table, const char *action,
    const char *in, size_t inlen, char **out, char *err, size_t errsz)
{
	char *argv[] = { (char *)fp->nm->pfctl, "-q", "-t", (char *)table,
	    "-T", (char *)action, "-f", "-", NULL };

	/* show takes no file. */
	if (strcmp(action, "show") == 0)
		argv[6] = NULL;
	return fw_exec(argv, in, inlen, out, NULL, err, errsz);
}

/* fw_pf_close - free the state */
static void
fw_pf_close(void *state)
{
	free(state);
}

/* fw_pf_open - check (or create) the tables */
static int
fw_pf_open(const struct fw_names *nm, void **state, char *err, size_t errsz)
{
	struct fw_pf *fp;
	char perr[512];
	int s;

	if ((fp = calloc(1, sizeof(*fp))) == NULL) {
		snprintf(err, errsz, "pf: out of memory");
		return -1;
	}
	fp->nm = nm;
	for (s = 0; s < FW_NSETS; s++) {
		const char *t = nm->set[s][0];
		char *out = NULL;

		if (s == FW_BLACK && !nm->use_black_set)
			continue;
		if (s == FW_TRAP && !nm->use_trap_set)
			continue;
		if (fw_pf_run(fp, t, "show", NULL, 0, &out, perr,
		    sizeof(perr)) == 0) {
			free(out);
			continue;
		}
		if (!nm->create) {
			snprintf(err, errsz, "pf table <%s> is missing (%s); "
			    "add \"table <%s> persist\" to pf.conf and load it "
			    "(pfctl -f /etc/pf.conf), see etc/pf.conf.spamd, or "
			    "start with --fw-create", t, perr, t);
			free(fp);
			return -1;
		}
		/* pfctl -T add makes a missing table. */
		if (fw_pf_run(fp, t, "add", NULL, 0, NULL, err, errsz) == -1) {
			free(fp);
			return -1;
		}
	}
	*state = fp;
	return 0;
}

/* fw_pf_flush - one pfctl add and one delete per table touched */
static int
fw_pf_flush(void *state, const struct fw_change *ch, size_t n, char *err,
    size_t errsz)
{
	struct fw_pf *fp = state;
	size_t i, len;
	int s, add;

	for (s = 0; s < FW_NSETS; s++) {
		for (add = 0; add < 2; add++) {
			char *buf = NULL;
			FILE *mf;
			int any = 0, rv;

			if ((mf = open_memstream(&buf, &len)) == NULL) {
				snprintf(err, errsz, "pf: out of memory");
				return -1;
			}
			for (i = 0; i < n; i++)
				if ((int)ch[i].set == s && ch[i].add == add) {
					fprintf(mf, "%s\n", ch[i].ip);
					any = 1;
				}
			if (fclose(mf) == EOF || buf == NULL) {
				free(buf);
				snprintf(err, errsz, "pf: out of memory");
				return -1;
			}
			rv = any ? fw_pf_run(fp, fp->nm->set[s][0],
			    add ? "add" : "delete", buf, len, NULL, err,
			    errsz) : 0;
			free(buf);
			if (rv == -1)
				return -1;
		}
	}
	return 0;
}

/* fw_pf_list - the addresses of one family from pfctl -T show */
static int
fw_pf_list(void *state, enum fw_set set, int v6, fw_list_fn fn, void *arg,
    char *err, size_t errsz)
{
	struct fw_pf *fp = state;
	char *out = NULL, *line, *next;

	if (fw_pf_run(fp, fp->nm->set[set][0], "show", NULL, 0, &out, err,
	    errsz) == -1)
		return -1;
	for (line = out; line != NULL && *line != '\0'; line = next) {
		char *p = line, *e;

		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		for (e = p; *e != '\0' && *e != ' ' && *e != '\t'; e++)
			;
		*e = '\0';
		if (*p == '\0' || (strchr(p, ':') != NULL) != v6)
			continue;
		if (fn(p, -1, arg) != 0)
			break;
	}
	free(out);
	return 0;
}

const struct fw_backend fw_backend_pf = {
	.name = "pf",
	.open = fw_pf_open,
	.close = fw_pf_close,
	.flush = fw_pf_flush,
	.list = fw_pf_list,
};
