/*
 * privsep.h - drop the engine's privileges: chroot to an empty directory,
 * switch to an unprivileged user and give up every capability. Every call
 * is checked; a failure is fatal (a half-dropped engine must not run).
 */
#ifndef SPAMD_PRIVSEP_H
#define SPAMD_PRIVSEP_H

/*
 * privsep_drop - as root: chroot to dir (made 0755 if missing), become
 * user, drop all capabilities and set no_new_privs, then check uid != 0.
 * Not root: log event=privsep mode=unprivileged and change nothing.
 * Calls fatal on any failure.
 */
void	privsep_drop(const char *user, const char *dir);

#endif /* SPAMD_PRIVSEP_H */
