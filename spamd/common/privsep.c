/*
 * privsep.c - chroot, user switch and capability drop for the engine
 * (privsep.h). Modelled on OpenSMTPD: every call checked, fatal on error.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <linux/capability.h>

#include "spamd/common/log.h"
#include "spamd/common/privsep.h"

/* privsep_caps_set - permitted and effective become keep, inheritable
 * inh; checked with capget */
void
privsep_caps_set(uint64_t keep, uint64_t inh)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(&hdr, 0, sizeof(hdr));
	memset(data, 0, sizeof(data));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	data[0].permitted = data[0].effective = (uint32_t)keep;
	data[1].permitted = data[1].effective = (uint32_t)(keep >> 32);
	data[0].inheritable = (uint32_t)inh;
	data[1].inheritable = (uint32_t)(inh >> 32);
	if (syscall(SYS_capset, &hdr, data) == -1)
		fatal("event=privsep op=capset");
	/* check it took: nothing beyond keep is left */
	if (syscall(SYS_capget, &hdr, data) == -1)
		fatal("event=privsep op=capget");
	if ((((uint64_t)data[1].permitted << 32 | data[0].permitted) &
	    ~keep) != 0 ||
	    (((uint64_t)data[1].effective << 32 | data[0].effective) &
	    ~keep) != 0)
		fatalx("event=privsep op=capget error=\"capabilities left\"");
}

/*
 * privsep_bound - empty the ambient set and the bounding set but for keep
 * while we still hold CAP_SETPCAP, so nothing else can be regained by an
 * exec
 */
void
privsep_bound(uint64_t keep)
{
	int i;

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 &&
	    errno != EINVAL)
		fatal("event=privsep op=ambient-clear");
	/* stop at the first number the kernel does not know */
	for (i = 0; i < 64; i++) {
		if (keep & (1ULL << i))
			continue;
		if (prctl(PR_CAPBSET_DROP, i, 0, 0, 0) == -1) {
			if (errno == EINVAL)
				break;
			fatal("event=privsep op=capbset-drop cap=%d", i);
		}
	}
}

/* privsep_become - become uid:gid for good (privsep.h) */
int
privsep_become(uid_t uid, gid_t gid)
{
	if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1)
		return -1;
	return 0;
}

/* privsep_writer - become user, keep only keep (privsep.h) */
void
privsep_writer(const char *user, uint64_t keep, int ambient)
{
	struct passwd *pw;
	uid_t uid;
	gid_t gid;
	int i;

	if (geteuid() != 0) {
		log_info("event=privsep proc=writer mode=unprivileged uid=%u",
		    (unsigned)geteuid());
		return;
	}
	if ((pw = getpwnam(user)) == NULL)
		fatalx("event=privsep proc=writer op=getpwnam user=%s "
		    "error=\"no such user (see --user)\"", user);
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (uid == 0)
		fatalx("event=privsep proc=writer user=%s error=\"user has "
		    "uid 0\"", user);
	privsep_bound(keep);
	/* keep the permitted set across the uid change, then cut it */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == -1)
		fatal("event=privsep proc=writer op=keepcaps");
	if (privsep_become(uid, gid) == -1)
		fatal("event=privsep proc=writer op=become uid=%u gid=%u",
		    (unsigned)uid, (unsigned)gid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == -1)
		fatal("event=privsep proc=writer op=keepcaps-off");
	privsep_caps_set(keep, ambient ? keep : 0);
	if (ambient)
		for (i = 0; i < 64; i++)
			if ((keep & (1ULL << i)) &&
			    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, i, 0,
			    0) == -1)
				fatal("event=privsep proc=writer op=ambient "
				    "cap=%d", i);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("event=privsep proc=writer op=prctl-no-new-privs");
	if (getuid() == 0 || geteuid() == 0 || setuid(0) != -1)
		fatalx("event=privsep proc=writer error=\"still root after "
		    "setresuid\"");
	log_info("event=privsep proc=writer mode=dropped user=%s uid=%u "
	    "gid=%u caps=0x%llx ambient=%d", user, (unsigned)uid,
	    (unsigned)gid, (unsigned long long)keep, ambient);
}

/* privsep_drop - chroot, become user, drop capabilities */
void
privsep_drop(const char *user, const char *dir)
{
	struct passwd *pw;
	struct stat st;
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0) {
		log_info("event=privsep mode=unprivileged uid=%u",
		    (unsigned)geteuid());
		return;
	}
	if ((pw = getpwnam(user)) == NULL)
		fatalx("event=privsep op=getpwnam user=%s error=\"no such "
		    "user (see --user)\"", user);
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (uid == 0)
		fatalx("event=privsep user=%s error=\"user has uid 0\"", user);
	if (stat(dir, &st) == -1) {
		if (errno != ENOENT)
			fatal("event=privsep op=stat dir=%s", dir);
		if (mkdir(dir, 0755) == -1 && errno != EEXIST)
			fatal("event=privsep op=mkdir dir=%s", dir);
	} else if (!S_ISDIR(st.st_mode))
		fatalx("event=privsep dir=%s error=\"not a directory "
		    "(see --chroot)\"", dir);
	if (chroot(dir) == -1)
		fatal("event=privsep op=chroot dir=%s", dir);
	if (chdir("/") == -1)
		fatal("event=privsep op=chdir dir=/");
	privsep_bound(0);
	if (privsep_become(uid, gid) == -1)
		fatal("event=privsep op=become uid=%u gid=%u", (unsigned)uid,
		    (unsigned)gid);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("event=privsep op=prctl-no-new-privs");
	privsep_caps_set(0, 0);
	/* the switch must be final: no way back to root */
	if (getuid() == 0 || geteuid() == 0 || setuid(0) != -1)
		fatalx("event=privsep error=\"still root after setresuid\"");
	log_info("event=privsep mode=dropped user=%s uid=%u gid=%u chroot=%s",
	    user, (unsigned)uid, (unsigned)gid, dir);
}
