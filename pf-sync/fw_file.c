/*
 * fw_file.c - the "file" firewall backend: the white set written to a
 * plain file, for demos and for sites that feed their own firewall.
 *
 * Format: one address a line, IPv4 and IPv6 together in one file (sorted,
 * IPv4 first), so a consumer reads one file whatever the family. FW_WHITE
 * goes to conf->path; FW_BLACK and FW_TRAP, when used, to path".black" and
 * path".trap". Each file is replaced atomically (temporary file in the
 * same directory, fsync, rename, fsync of the directory) on every flush
 * that changed it, so a reader sees the old or the new list, never half.
 * A file has no timeouts: expiry reaches it through fw_del (the store's
 * expiry) and the periodic reconcile.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/tree.h>
/* libbsd's RB_GENERATE_STATIC marks functions __unused, which glibc lacks. */
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pf-sync/fw.h"

struct fw_felem {
	RB_ENTRY(fw_felem) entry;
	int		v6;
	char		ip[FW_IP_MAX];
};

RB_HEAD(fw_fset, fw_felem);

struct fw_file {
	char		*path[FW_NSETS];
	struct fw_fset	 set[FW_NSETS];
	int		 dirty[FW_NSETS];	/* changed, not yet written */
};

/* fw_felem_cmp - IPv4 before IPv6, then by text */
static int
fw_felem_cmp(const struct fw_felem *a, const struct fw_felem *b)
{
	if (a->v6 != b->v6)
		return a->v6 < b->v6 ? -1 : 1;
	return strcmp(a->ip, b->ip);
}

RB_GENERATE_STATIC(fw_fset, fw_felem, entry, fw_felem_cmp)

/* fw_file_put - add ip to an in-memory set; 1 if it was new */
static int
fw_file_put(struct fw_fset *s, const char *ip, int v6)
{
	struct fw_felem *e;

	if ((e = calloc(1, sizeof(*e))) == NULL)
		return -1;
	e->v6 = v6;
	snprintf(e->ip, sizeof(e->ip), "%s", ip);
	if (RB_INSERT(fw_fset, s, e) != NULL) {
		free(e);
		return 0;
	}
	return 1;
}

/* fw_file_load - read an existing file into s; bad lines name path:line */
static int
fw_file_load(const char *path, struct fw_fset *s, char *err, size_t errsz)
{
	char *line = NULL, ip[FW_IP_MAX];
	size_t cap = 0;
	ssize_t len;
	long lineno = 0;
	FILE *fp;
	int v6, rv = 0;

	if ((fp = fopen(path, "r")) == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errsz, "firewall file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, fp)) != -1) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' ||
		    line[len - 1] == '\r' || line[len - 1] == ' ' ||
		    line[len - 1] == '\t'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		if (fw_ip_parse(line, ip, &v6) == -1) {
			snprintf(err, errsz, "firewall file %s:%ld: not an "
			    "address: \"%.60s\"", path, lineno, line);
			rv = -1;
			break;
		}
		if (fw_file_put(s, ip, v6) == -1) {
			snprintf(err, errsz, "firewall file %s: out of memory",
			    path);
			rv = -1;
			break;
		}
	}
	if (rv == 0 && ferror(fp)) {
		snprintf(err, errsz, "firewall file %s:%ld: read error",
		    path, lineno);
		rv = -1;
	}
	free(line);
	fclose(fp);
	return rv;
}

/* fw_file_write - replace path atomically with the set's addresses */
static int
fw_file_write(const char *path, struct fw_fset *s, char *err, size_t errsz)
{
	char tmp[4096], dirbuf[4096];
	struct fw_felem *e;
	FILE *fp;
	int fd, dfd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >=
	    (int)sizeof(tmp)) {
		snprintf(err, errsz, "firewall file %s: path too long", path);
		return -1;
	}
	if ((fd = mkstemp(tmp)) == -1) {
		snprintf(err, errsz, "firewall file %s: cannot create %s: %s",
		    path, tmp, strerror(errno));
		return -1;
	}
	/* Readers are other programs (a firewall script): world-readable. */
	fchmod(fd, 0644);
	if ((fp = fdopen(fd, "w")) == NULL) {
		snprintf(err, errsz, "firewall file %s: %s", tmp,
		    strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	RB_FOREACH(e, fw_fset, s)
		fprintf(fp, "%s\n", e->ip);
	if (fflush(fp) == EOF || ferror(fp) || fsync(fd) == -1) {
		snprintf(err, errsz, "firewall file %s: write: %s", tmp,
		    strerror(errno));
		fclose(fp);
		unlink(tmp);
		return -1;
	}
	if (fclose(fp) == EOF) {
		snprintf(err, errsz, "firewall file %s: close: %s", tmp,
		    strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) == -1) {
		snprintf(err, errsz, "firewall file %s: rename from %s: %s",
		    path, tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	/* The rename itself is durable only once the directory is synced. */
	snprintf(dirbuf, sizeof(dirbuf), "%s", path);
	if ((dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY)) != -1) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* fw_file_close - free the sets */
static void
fw_file_close(void *state)
{
	struct fw_file *ff = state;
	struct fw_felem *e, *next;
	int s;

	if (ff == NULL)
		return;
	for (s = 0; s < FW_NSETS; s++) {
		for (e = RB_MIN(fw_fset, &ff->set[s]); e != NULL; e = next) {
			next = RB_NEXT(fw_fset, &ff->set[s], e);
			RB_REMOVE(fw_fset, &ff->set[s], e);
			free(e);
		}
		free(ff->path[s]);
	}
	free(ff);
}

/* fw_file_open - load the existing files; write the white file once so a
 * directory we cannot write to fails at startup, not at the first pass */
static int
fw_file_open(const struct fw_names *nm, void **state, char *err,
    size_t errsz)
{
	static const char *const suffix[FW_NSETS] = { "", ".black", ".trap" };
	struct fw_file *ff;
	int s;

	if (nm->path == NULL || nm->path[0] == '\0') {
		snprintf(err, errsz, "firewall backend file needs a path "
		    "(the file that receives the white addresses)");
		return -1;
	}
	if ((ff = calloc(1, sizeof(*ff))) == NULL) {
		snprintf(err, errsz, "firewall file: out of memory");
		return -1;
	}
	for (s = 0; s < FW_NSETS; s++) {
		RB_INIT(&ff->set[s]);
		if (asprintf(&ff->path[s], "%s%s", nm->path, suffix[s]) == -1) {
			ff->path[s] = NULL;
			snprintf(err, errsz, "firewall file: out of memory");
			fw_file_close(ff);
			return -1;
		}
		if (fw_file_load(ff->path[s], &ff->set[s], err, errsz) == -1) {
			fw_file_close(ff);
			return -1;
		}
	}
	if (fw_file_write(ff->path[FW_WHITE], &ff->set[FW_WHITE], err,
	    errsz) == -1) {
		fw_file_close(ff);
		return -1;
	}
	*state = ff;
	return 0;
}

/* fw_file_flush - apply the changes in memory, rewrite changed files */
static int
fw_file_flush(void *state, const struct fw_change *ch, size_t n, char *err,
    size_t errsz)
{
	struct fw_file *ff = state;
	struct fw_felem key, *e;
	int dirty[FW_NSETS] = { 0 }, s;
	size_t i;

	for (i = 0; i < n; i++) {
		s = ch[i].set;
		key.v6 = ch[i].v6;
		snprintf(key.ip, sizeof(key.ip), "%s", ch[i].ip);
		e = RB_FIND(fw_fset, &ff->set[s], &key);
		if (ch[i].add && e == NULL) {
			if (fw_file_put(&ff->set[s], ch[i].ip, ch[i].v6) == -1) {
				snprintf(err, errsz, "firewall file: out of "
				    "memory");
				return -1;
			}
			dirty[s] = 1;
		} else if (!ch[i].add && e != NULL) {
			RB_REMOVE(fw_fset, &ff->set[s], e);
			free(e);
			dirty[s] = 1;
		}
	}
	/*
	 * Memory already holds the changes. A set whose write fails stays
	 * dirty (the old file stays in place), so the retry of the kept
	 * queue rewrites it although re-applying the changes is a no-op.
	 */
	for (s = 0; s < FW_NSETS; s++) {
		if (dirty[s])
			ff->dirty[s] = 1;
		if (!ff->dirty[s])
			continue;
		if (fw_file_write(ff->path[s], &ff->set[s], err, errsz) == -1)
			return -1;
		ff->dirty[s] = 0;
	}
	return 0;
}

/* fw_file_list - visit one family of one in-memory set */
static int
fw_file_list(void *state, enum fw_set set, int v6, fw_list_fn fn, void *arg,
    char *err, size_t errsz)
{
	struct fw_file *ff = state;
	struct fw_felem *e;

	RB_FOREACH(e, fw_fset, &ff->set[set]) {
		if (e->v6 != v6)
			continue;
		if (fn(e->ip, -1, arg) != 0)
			break;
	}
	return 0;
}

const struct fw_backend fw_backend_file = {
	.name = "file",
	.open = fw_file_open,
	.close = fw_file_close,
	.flush = fw_file_flush,
	.list = fw_file_list,
};
