/*
 * domains.c - the allowed recipient domains: with a non-empty list, a
 * recipient in any other domain traps the sender (spamd.alloweddomains).
 *
 * An entry "example.com" allows example.com and its subdomains (matched at
 * a label boundary, unlike OpenBSD's plain suffix match, so it does not
 * allow badexample.com); "@example.com" allows exactly that domain. A
 * recipient without '@' (a bare "postmaster") is allowed: it has no
 * domain to judge.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "greydb/gdb_private.h"

/* free_list - free a domain list */
static void
free_list(char **list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* domain_ok - 1 if s is a plausible domain entry (letters, digits, - . @) */
static int
domain_ok(const char *s)
{
	const char *p = s;

	if (*p == '@')
		p++;
	if (*p == '\0' || *p == '.')
		return 0;
	for (; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' &&
		    *p != '_')
			return 0;
	return 1;
}

/* list_add - append a lowercased copy of s */
static int
list_add(char ***list, size_t *n, const char *s)
{
	char **nl, *d;
	size_t i;

	if ((nl = reallocarray(*list, *n + 1, sizeof(*nl))) == NULL)
		return -1;
	*list = nl;
	if ((d = strdup(s)) == NULL)
		return -1;
	for (i = 0; d[i] != '\0'; i++)
		d[i] = (char)tolower((unsigned char)d[i]);
	nl[(*n)++] = d;
	return 0;
}

/* replace - install a new list in db, freeing the old one */
static void
replace(struct gdb *db, char **list, size_t n)
{
	free_list(db->domains, db->ndomains);
	db->domains = list;
	db->ndomains = n;
}

/* gdb_set_allowed_domains - replace the list (NULL-terminated, copied) */
int
gdb_set_allowed_domains(struct gdb *db, const char *const *domains,
    struct gdb_err *err)
{
	char **list = NULL;
	size_t n = 0, i;

	for (i = 0; domains != NULL && domains[i] != NULL; i++) {
		if (!domain_ok(domains[i])) {
			gdb_seterr(err, "allowed domain %zu: \"%.100s\": not a "
			    "domain", i + 1, domains[i]);
			free_list(list, n);
			return -1;
		}
		if (list_add(&list, &n, domains[i]) == -1) {
			gdb_seterr(err, "allowed domains: %s", strerror(errno));
			free_list(list, n);
			return -1;
		}
	}
	replace(db, list, n);
	return 0;
}

/* gdb_load_allowed_domains - read one domain a line, # comments, from path */
int
gdb_load_allowed_domains(struct gdb *db, const char *path,
    struct gdb_err *err)
{
	FILE *f;
	char line[1024], *p, *e;
	char **list = NULL;
	size_t n = 0, lineno = 0;

	if ((f = fopen(path, "r")) == NULL) {
		gdb_seterr(err, "%s: open: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			gdb_seterr(err, "%s:%zu: line too long", path, lineno);
			goto fail;
		}
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		for (p = line; isspace((unsigned char)*p); p++)
			;
		for (e = p + strlen(p); e > p && isspace((unsigned char)e[-1]);)
			*--e = '\0';
		if (*p == '\0')
			continue;
		if (!domain_ok(p)) {
			gdb_seterr(err, "%s:%zu: \"%.100s\": not a domain",
			    path, lineno, p);
			goto fail;
		}
		if (list_add(&list, &n, p) == -1) {
			gdb_seterr(err, "%s:%zu: %s", path, lineno,
			    strerror(errno));
			goto fail;
		}
	}
	if (ferror(f)) {
		gdb_seterr(err, "%s: read: %s", path, strerror(errno));
		goto fail;
	}
	fclose(f);
	replace(db, list, n);
	return 0;
fail:
	fclose(f);
	free_list(list, n);
	return -1;
}

/* gdb_domain_allowed - 1 if addr's domain is allowed (or the list is empty) */
int
gdb_domain_allowed(const struct gdb *db, const char *addr)
{
	const char *at, *dom, *d;
	size_t i, dl, el;

	if (db == NULL || db->ndomains == 0 || addr == NULL)
		return 1;
	if ((at = strrchr(addr, '@')) == NULL)
		return 1;
	dom = at + 1;
	dl = strlen(dom);
	for (i = 0; i < db->ndomains; i++) {
		d = db->domains[i];
		if (*d == '@') {
			if (strcasecmp(dom, d + 1) == 0)
				return 1;
			continue;
		}
		el = strlen(d);
		if (dl == el && strcasecmp(dom, d) == 0)
			return 1;
		if (dl > el && dom[dl - el - 1] == '.' &&
		    strcasecmp(dom + dl - el, d) == 0)
			return 1;
	}
	return 0;
}
