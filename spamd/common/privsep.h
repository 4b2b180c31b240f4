/*
 * privsep.h - drop the engine's privileges: chroot to an empty directory,
 * switch to an unprivileged user and give up every capability. Every call
 * is checked; a failure is fatal (a half-dropped engine must not run).
 */
#ifndef SPAMD_PRIVSEP_H
#define SPAMD_PRIVSEP_H

#include <stdint.h>
#include <sys/types.h>

/*
 * privsep_become - as root: become uid:gid for good (supplementary
 * groups gid only, real, effective and saved ids); -1 with errno set.
 * The one switch the engines, the writer, spamd-setup's fetcher and
 * greyctl use.
 */
int	privsep_become(uid_t uid, gid_t gid);

/*
 * privsep_drop - as root: chroot to dir (made 0755 if missing), become
 * user, drop all capabilities and set no_new_privs, then check uid != 0.
 * Not root: log event=privsep mode=unprivileged and change nothing.
 * Calls fatal on any failure.
 */
void	privsep_drop(const char *user, const char *dir);

/*
 * privsep_writer - as root: become user (no chroot: the writer reads its
 * store and files), keeping of all capabilities only keep (bit n = cap
 * n; e.g. CAP_NET_ADMIN for netlink firewall updates), which also stays
 * ambient when ambient is set (a backend that runs ipset or pfctl hands
 * it on); bounding set cut to keep, no_new_privs. Not root: logs
 * mode=unprivileged and changes nothing. Fatal on any failure.
 */
void	privsep_writer(const char *user, uint64_t keep, int ambient);

/* privsep_bound - as root: clear the ambient set and drop every
 * capability from the bounding set but those in keep (bit n = cap n) */
void	privsep_bound(uint64_t keep);
/* privsep_caps_set - permitted and effective = keep, inheritable = inh,
 * checked; fatal if more is left */
void	privsep_caps_set(uint64_t keep, uint64_t inh);

#endif /* SPAMD_PRIVSEP_H */
