/*
 * unit_sandbox.c - run a command under the seccomp restrictions a systemd
 * unit asks for, as systemd would apply them, for tests that have no
 * systemd to run the unit (tests/system/package_deb.sh):
 *
 *   unit_sandbox [--syscalls FILE] [--families "AF_INET AF_UNIX ..."]
 *                [--mdwe] -- COMMAND [ARG...]
 *
 * --syscalls FILE   SystemCallFilter= as an allow-list: FILE holds one
 *                   system call name a line (the groups already expanded,
 *                   e.g. by `systemd-analyze syscall-filter`); any other
 *                   call kills the process (SIGSYS), as systemd does when
 *                   SystemCallErrorNumber= is unset. Names this kernel or
 *                   libseccomp do not know are skipped, as systemd does.
 *                   Only the native architecture is allowed
 *                   (SystemCallArchitectures=native).
 * --families LIST   RestrictAddressFamilies=: socket(2) of any other
 *                   family fails with EAFNOSUPPORT.
 * --mdwe            MemoryDenyWriteExecute=yes: mmap of memory both
 *                   writable and executable, and mprotect/pkey_mprotect
 *                   to executable, fail with EPERM.
 *
 * Each is its own filter, stacked (the kernel applies the strictest
 * answer), as systemd loads them; no_new_privs is set first
 * (NoNewPrivileges=yes). The capability bounding set is not ours:
 * setpriv --bounding-set does it before this runs. Exits 2 with a
 * message naming the bad argument or line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <seccomp.h>

/* the families a unit names, by their systemd spelling */
static const struct {
	const char	*name;
	int		 af;
} unit_sandbox_af[] = {
	{ "AF_UNIX", AF_UNIX }, { "AF_LOCAL", AF_UNIX },
	{ "AF_INET", AF_INET }, { "AF_INET6", AF_INET6 },
	{ "AF_NETLINK", AF_NETLINK }, { "AF_PACKET", AF_PACKET },
};

/* unit_sandbox_die - print what went wrong and exit 2 */
static void
unit_sandbox_die(const char *what, const char *detail)
{
	fprintf(stderr, "unit_sandbox: %s: %s\n", what, detail);
	exit(2);
}

/* unit_sandbox_calls - the allow-list filter from the names in path */
static void
unit_sandbox_calls(const char *path)
{
	char line[256], where[300];
	scmp_filter_ctx ctx;
	FILE *f;
	int nr, lineno = 0, n = 0;

	if ((f = fopen(path, "r")) == NULL)
		unit_sandbox_die(path, strerror(errno));
	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL)
		unit_sandbox_die("seccomp_init", "failed");
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		line[strcspn(line, " \t\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		if (line[0] == '@' || line[0] == '~')
			unit_sandbox_die(where, "groups and deny-lists must be "
			    "expanded first");
		/* why skip: systemd ignores calls unknown here too */
		if ((nr = seccomp_syscall_resolve_name(line)) == __NR_SCMP_ERROR)
			continue;
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) < 0)
			unit_sandbox_die(where, "seccomp_rule_add failed");
		n++;
	}
	fclose(f);
	if (n == 0)
		unit_sandbox_die(path, "no system call named");
	if (seccomp_load(ctx) < 0)
		unit_sandbox_die("seccomp_load", "the allow-list failed");
	seccomp_release(ctx);
}

/* unit_sandbox_families - socket(2) only for the families in list */
static void
unit_sandbox_families(const char *list)
{
	char buf[512], *tok, *save = NULL;
	int allow[64] = { 0 };
	scmp_filter_ctx ctx;
	size_t i;
	int af;

	if (strlen(list) >= sizeof(buf))
		unit_sandbox_die("--families", "too long");
	strcpy(buf, list);
	for (tok = strtok_r(buf, " \t", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t", &save)) {
		for (i = 0; i < sizeof(unit_sandbox_af) /
		    sizeof(unit_sandbox_af[0]); i++)
			if (strcmp(tok, unit_sandbox_af[i].name) == 0)
				break;
		if (i == sizeof(unit_sandbox_af) / sizeof(unit_sandbox_af[0]))
			unit_sandbox_die("--families: unknown family", tok);
		allow[unit_sandbox_af[i].af] = 1;
	}
	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL)
		unit_sandbox_die("seccomp_init", "failed");
	/* every family number Linux has (AF_MAX is 46) but the allowed */
	for (af = 0; af < 64; af++)
		if (!allow[af] && seccomp_rule_add(ctx,
		    SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
		    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)af)) < 0)
			unit_sandbox_die("--families", "seccomp_rule_add failed");
	if (seccomp_load(ctx) < 0)
		unit_sandbox_die("seccomp_load", "the family filter failed");
	seccomp_release(ctx);
}

/* unit_sandbox_mdwe - no memory both writable and executable */
static void
unit_sandbox_mdwe(void)
{
	const scmp_datum_t wx = PROT_WRITE | PROT_EXEC;
	scmp_filter_ctx ctx;

	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL)
		unit_sandbox_die("seccomp_init", "failed");
	if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mmap), 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, wx, wx)) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mprotect), 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC)) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM),
	    SCMP_SYS(pkey_mprotect), 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC)) < 0)
		unit_sandbox_die("--mdwe", "seccomp_rule_add failed");
	if (seccomp_load(ctx) < 0)
		unit_sandbox_die("seccomp_load", "the W^X filter failed");
	seccomp_release(ctx);
}

/* main - parse the options, load the filters, exec the command */
int
main(int argc, char **argv)
{
	const char *calls = NULL, *families = NULL;
	int i, mdwe = 0;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--syscalls") == 0 && i + 1 < argc)
			calls = argv[++i];
		else if (strcmp(argv[i], "--families") == 0 && i + 1 < argc)
			families = argv[++i];
		else if (strcmp(argv[i], "--mdwe") == 0)
			mdwe = 1;
		else
			unit_sandbox_die("bad argument", argv[i]);
	}
	if (i + 1 >= argc)
		unit_sandbox_die("usage", "unit_sandbox [--syscalls FILE] "
		    "[--families LIST] [--mdwe] -- COMMAND [ARG...]");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		unit_sandbox_die("prctl no_new_privs", strerror(errno));
	/* the allow-list last: the other two need seccomp() and prctl() */
	if (families != NULL)
		unit_sandbox_families(families);
	if (mdwe)
		unit_sandbox_mdwe();
	if (calls != NULL)
		unit_sandbox_calls(calls);
	execvp(argv[i + 1], argv + i + 1);
	fprintf(stderr, "unit_sandbox: exec %s: %s\n", argv[i + 1],
	    strerror(errno));
	return 127;
}
