/*
 * sandbox.h - the engine's seccomp filter (libseccomp). Installed last,
 * after privsep_drop and after every descriptor the engine needs exists:
 * from then on the engine may only use the system calls an event loop of
 * sockets needs. Anything else kills the process (or is logged, for an
 * operator hunting a missing call with --seccomp=log).
 */
#ifndef SPAMD_SANDBOX_H
#define SPAMD_SANDBOX_H

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

#endif /* SPAMD_SANDBOX_H */
