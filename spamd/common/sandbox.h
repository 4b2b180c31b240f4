/*
 * sandbox.h - the seccomp filters (libseccomp) of the engine and of
 * greyctl. The engine's is installed last, after privsep_drop and after
 * every descriptor the engine needs exists: from then on the engine may
 * only use the system calls an event loop of sockets needs. greyctl's is
 * installed once its arguments are checked and the store is open: from
 * then on it may only do Berkeley DB's file I/O, read stdin, write
 * stdout/stderr and (for some commands) talk to spamd's AF_UNIX control
 * socket. Anything else kills the process (or is logged, for an operator
 * hunting a missing call with --seccomp=log).
 */
#ifndef SPAMD_SANDBOX_H
#define SPAMD_SANDBOX_H

#include <stddef.h>

/* --seccomp modes; 0 is the default (kill) */
enum sandbox_mode {
	SANDBOX_KILL = 0,	/* a call outside the list kills the process */
	SANDBOX_LOG,		/* it is allowed and logged by the kernel */
	SANDBOX_OFF		/* no filter (only no_new_privs) */
};

/*
 * sandbox_mode_parse - "kill", "log" or "off" as a mode; -1 for anything
 * else
 */
int	sandbox_mode_parse(const char *s);

/* sandbox_mode_name - the flag value of a mode */
const char *sandbox_mode_name(int mode);

/*
 * sandbox_engine - set no_new_privs and load the engine's allow-list
 * filter in mode (enum sandbox_mode). Logs event=sandbox; calls fatal
 * when the filter cannot be built or loaded.
 */
void	sandbox_engine(int mode);

/* sandbox_greyctl flags: what greyctl still does under the filter */
enum sandbox_gc_flags {
	SANDBOX_GC_OPEN = 1,	/* opens (maybe makes) the store: mkdir,
				 * rename, the watchdog thread (clone with
				 * CLONE_THREAD only) */
	SANDBOX_GC_CTL = 2	/* talks to spamd's control socket:
				 * socket(AF_UNIX, SOCK_STREAM), connect */
};

/*
 * sandbox_greyctl - set no_new_privs and load greyctl's allow-list filter
 * in mode (enum sandbox_mode) with flags (enum sandbox_gc_flags), for
 * every thread. Under valgrind (when built with its header) mode is
 * taken as off. Returns 0, or -1 with a message in err; logs nothing.
 */
int	sandbox_greyctl(int mode, int flags, char *err, size_t errsz);

#endif /* SPAMD_SANDBOX_H */
