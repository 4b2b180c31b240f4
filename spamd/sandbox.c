/*
 * sandbox.c - the engine's seccomp allow-list (sandbox.h).
 *
 * The list was found by running the engine under the integration and
 * system suites with --seccomp=log (SPAMD_SECCOMP=log) and reading the
 * kernel's audit lines (type=1326 ... syscall=N), plus strace -f -c of
 * the same runs; see the comments at each group for who needs the call.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <seccomp.h>

#include "spamd/log.h"
#include "spamd/sandbox.h"

/* the sanitizers' runtime needs more at reports and at exit (leak check) */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif

/* Calls allowed with any arguments. */
static const int sandbox_allow[] = {
	/* the event loop (libevent's epoll backend, its signal socketpair) */
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_pwait2),
	SCMP_SYS(epoll_ctl), SCMP_SYS(poll), SCMP_SYS(ppoll),
	SCMP_SYS(select), SCMP_SYS(pselect6),
	SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime),
	/* clients, the writer's socketpair, evdns's UDP sockets, syslog */
	SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(write), SCMP_SYS(writev),
	SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(recvmmsg),
	SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(sendmmsg),
	SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(connect),
	SCMP_SYS(shutdown), SCMP_SYS(close),
	SCMP_SYS(setsockopt), SCMP_SYS(getsockopt),
	SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(fcntl),
	/* malloc */
	SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(madvise), SCMP_SYS(mprotect),
	/* signals (libevent installs and restores handlers) and exit */
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigaction), SCMP_SYS(sigaltstack),
	SCMP_SYS(exit), SCMP_SYS(exit_group),
	/* clocks, ids, randomness, locks; stdio's fstat of stderr */
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
	SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(nanosleep),
	SCMP_SYS(clock_nanosleep), SCMP_SYS(getpid), SCMP_SYS(gettid),
	SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
	SCMP_SYS(getegid), SCMP_SYS(getrandom), SCMP_SYS(futex),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek),
	SCMP_SYS(sched_yield), SCMP_SYS(restart_syscall),
#ifdef SANDBOX_ASAN
	/* ASan/UBSan reports and LeakSanitizer's stop-the-world at exit */
	SCMP_SYS(openat), SCMP_SYS(open), SCMP_SYS(readlink),
	SCMP_SYS(readlinkat), SCMP_SYS(prctl), SCMP_SYS(clone),
	SCMP_SYS(clone3), SCMP_SYS(ptrace), SCMP_SYS(wait4),
	SCMP_SYS(waitid), SCMP_SYS(getppid), SCMP_SYS(tgkill),
	SCMP_SYS(kill), SCMP_SYS(getdents), SCMP_SYS(getdents64), SCMP_SYS(set_robust_list),
	SCMP_SYS(getrlimit), SCMP_SYS(prlimit64), SCMP_SYS(pipe2),
	SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3), SCMP_SYS(unshare),
	SCMP_SYS(sched_getaffinity), SCMP_SYS(rseq),
#endif
};

/* sandbox_mode_parse - "kill", "log" or "off" as a mode */
int
sandbox_mode_parse(const char *s)
{
	if (strcmp(s, "kill") == 0)
		return SANDBOX_KILL;
	if (strcmp(s, "log") == 0)
		return SANDBOX_LOG;
	if (strcmp(s, "off") == 0)
		return SANDBOX_OFF;
	return -1;
}

/* sandbox_mode_name - the flag value of a mode */
const char *
sandbox_mode_name(int mode)
{
	switch (mode) {
	case SANDBOX_KILL:
		return "kill";
	case SANDBOX_LOG:
		return "log";
	case SANDBOX_OFF:
		return "off";
	}
	return "?";
}

/* sandbox_rule - add one rule; fatal when libseccomp refuses it */
static void
sandbox_rule(scmp_filter_ctx ctx, uint32_t action, int sys, unsigned n,
    const struct scmp_arg_cmp *cmp)
{
	int r;

	r = seccomp_rule_add_array(ctx, action, sys, n, cmp);
	/* -EDOM etc.: a call this architecture lacks is no error */
	if (r < 0 && r != -EDOM && r != -EFAULT)
		fatalx("event=sandbox op=rule-add syscall=%d error=\"%s\"",
		    sys, strerror(-r));
}

/* sandbox_engine - no_new_privs and the engine's allow-list filter */
void
sandbox_engine(int mode)
{
	scmp_filter_ctx ctx;
	struct scmp_arg_cmp cmp[2];
	uint32_t deny;
	size_t i;
	int r, type_mask;

	/* privsep sets it as root; unprivileged runs need it for seccomp */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("event=sandbox op=prctl-no-new-privs");
	if (mode == SANDBOX_OFF) {
		log_warnx("event=sandbox mode=off");
		return;
	}
	deny = mode == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS;
	if ((ctx = seccomp_init(deny)) == NULL)
		fatalx("event=sandbox op=seccomp-init");
	/* every thread (there is one today), and no_new_privs again */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) < 0 ||
	    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1) < 0)
		fatalx("event=sandbox op=seccomp-attr");
	for (i = 0; i < sizeof(sandbox_allow) / sizeof(sandbox_allow[0]); i++)
		sandbox_rule(ctx, SCMP_ACT_ALLOW, sandbox_allow[i], 0, NULL);

	/* socket: only evdns's UDP sockets (any flags) */
	type_mask = ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	cmp[0] = SCMP_A0(SCMP_CMP_EQ, AF_INET);
	cmp[1] = SCMP_A1(SCMP_CMP_MASKED_EQ, (scmp_datum_t)(unsigned)type_mask,
	    SOCK_DGRAM);
	sandbox_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2, cmp);
	cmp[0] = SCMP_A0(SCMP_CMP_EQ, AF_INET6);
	sandbox_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2, cmp);
	/*
	 * syslog(3) reconnects to /dev/log after a syslogd restart; in the
	 * chroot that cannot work anyway, so fail softly instead of dying
	 */
	cmp[0] = SCMP_A0(SCMP_CMP_EQ, AF_UNIX);
	sandbox_rule(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1, cmp);
	/* libevent asks how much is readable before a read */
	cmp[0] = SCMP_A1(SCMP_CMP_EQ, FIONREAD);
	sandbox_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, cmp);
#ifndef SANDBOX_ASAN
	/* abort() signals itself: only this process */
	cmp[0] = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid());
	sandbox_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, cmp);
	/*
	 * a late file open by the C library (time zone, locale) finds an
	 * empty chroot anyway: refuse it instead of killing the engine
	 */
	sandbox_rule(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0, NULL);
	sandbox_rule(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0, NULL);
#endif

	if ((r = seccomp_load(ctx)) < 0) {
		seccomp_release(ctx);
		fatalx("event=sandbox op=seccomp-load error=\"%s\"",
		    strerror(-r));
	}
	seccomp_release(ctx);
	log_info("event=sandbox mode=%s", sandbox_mode_name(mode));
}
