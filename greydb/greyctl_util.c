/*
 * greyctl_util.c - what every greyctl command shares: messages, the stop
 * flag set by signals, and opening the store with plain messages.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "greydb/greyctl.h"
#include "spamd/common/privsep.h"

/* The one global: a signal handler can only reach a static. */
static volatile sig_atomic_t greyctl_signal;

/* on_signal - remember that we were asked to stop */
static void
on_signal(int sig)
{
	greyctl_signal = sig;
}

/* greyctl_stopped - the signal that asked us to stop, or 0 */
int
greyctl_stopped(void)
{
	return greyctl_signal;
}

/* greyctl_signals_setup - stop on SIGINT/SIGTERM/SIGHUP at a safe point;
 * make a closed stdout an error instead of a death */
void
greyctl_signals_setup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* greyctl_warnx - print "greyctl: message" on stderr */
void
greyctl_warnx(const char *fmt, ...)
{
	va_list ap;

	fputs("greyctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	putc('\n', stderr);
}

/* greyctl_safe - copy in for a message: non-printables as '?', cut */
const char *
greyctl_safe(const char *in, char *out, size_t outsz)
{
	size_t i;

	if (outsz == 0)
		return "";
	for (i = 0; in[i] != '\0' && i + 1 < outsz; i++)
		out[i] = (unsigned char)in[i] < 0x20 ||
		    (unsigned char)in[i] >= 0x7f ? '?' : in[i];
	out[i] = '\0';
	/* Mark a cut so the reader knows the value went on. */
	if (in[i] != '\0' && outsz > 4)
		memcpy(out + outsz - 4, "...", 4);
	return out;
}

/*
 * greyctl_become_owner - run as root on a store that belongs to another
 * user (spamd's writer runs as that user): become the directory's owner
 * before Berkeley DB opens or creates anything, so no log or region file
 * is left that the writer cannot open. 0, or -1 with a message.
 */
int
greyctl_become_owner(const char *dir)
{
	struct stat st;

	if (geteuid() != 0 || stat(dir, &st) == -1 || st.st_uid == 0)
		return 0;
	if (privsep_become(st.st_uid, st.st_gid) == -1) {
		greyctl_warnx("%s: cannot switch to its owner uid %u: %s", dir,
		    (unsigned)st.st_uid, strerror(errno));
		return -1;
	}
	return 0;
}

/* greyctl_open - open the store in ctl->dir; messages name the dir */
int
greyctl_open(const struct greyctl *ctl, enum greyctl_mode mode,
    int group_commit, struct gdb **db)
{
	struct gdb_opts o;
	struct gdb_err err;
	char path[4096];
	struct stat st;

	*db = NULL;
	/* Check here first so that a mistyped -D gets a plain message and
	 * no Berkeley DB region files appear in a directory that has no
	 * database. */
	if (mode != GREYCTL_CREATE) {
		if (stat(ctl->dir, &st) == -1) {
			greyctl_warnx("%s: cannot open database directory: %s",
			    ctl->dir, strerror(errno));
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			greyctl_warnx("%s: cannot open database directory: %s",
			    ctl->dir, strerror(ENOTDIR));
			return -1;
		}
		snprintf(path, sizeof(path), "%s/grey.db", ctl->dir);
		if (access(path, F_OK) == -1) {
			greyctl_warnx("%s: no database in this directory "
			    "(%s: %s)", ctl->dir, path, strerror(errno));
			return -1;
		}
	}
	if (greyctl_become_owner(ctl->dir) == -1)
		return -1;
	memset(&o, 0, sizeof(o));
	o.create = mode == GREYCTL_CREATE;
	o.readonly = mode == GREYCTL_READ;
	o.group_commit = group_commit;
	o.cache_mb = 8;
	if (gdb_open(db, ctl->dir, &o, &err) == -1) {
		greyctl_warnx("%s", err.msg);
		return -1;
	}
	return 0;
}
