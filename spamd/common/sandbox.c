/*
 * sandbox.c - the seccomp allow-lists of the engine and of greyctl
 * (sandbox.h), built by one builder (sandbox_start, sandbox_rule,
 * sandbox_load) from a list of calls plus rules on arguments.
 *
 * The engine's list was found by running the engine under the
 * integration and system suites with --seccomp=log (SPAMD_SECCOMP=log)
 * and reading the kernel's audit lines (type=1326 ... syscall=N), plus
 * strace -f -c of the same runs; greyctl's by strace -f of every greyctl
 * run of tests/integration/greyctl.py and greyctl_explain.py, counting
 * the calls after the store was open. See the comments at each group for
 * who needs the call.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <linux/sockios.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include "spamd/common/log.h"
#include "spamd/common/sandbox.h"

/* the sanitizers' runtime needs more at reports and at exit (leak check) */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif

/*
 * Under valgrind the filter would meet valgrind's own calls (its
 * scheduler, its thread handling) and kill it: greyctl then runs without
 * the filter. Without the header, run valgrind with --seccomp off.
 */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define SANDBOX_VALGRIND 1
#endif
#endif

#define SANDBOX_N(a)	(sizeof(a) / sizeof((a)[0]))

/* The engine: calls allowed with any arguments. */
static const int sandbox_engine_allow[] = {
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
	/*
	 * glibc's qsort asks for the machine's memory (sysconf
	 * _SC_PHYS_PAGES, i.e. sysinfo) once the array passes 1 KiB: 22
	 * IPv6 prefixes in a list, or 64 IPv4 ones. Missing, any real
	 * list killed the engine.
	 */
	SCMP_SYS(sysinfo),
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
};

/*
 * greyctl once the store is open: calls allowed with any arguments.
 * Berkeley DB reads and writes the store, its log and region files by
 * descriptor, opens a new log file when one fills (and the time zone
 * file for explain's dates), removes old log files at a checkpoint
 * (DB_LOG_AUTO_REMOVE) and asks for the directory (getcwd) to name them;
 * paths cannot be checked by seccomp, so open and unlink stay.
 */
static const int sandbox_greyctl_allow[] = {
	/* the store, its log and region files, stdin, stdout, stderr */
	SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(pread64),
	SCMP_SYS(preadv), SCMP_SYS(write), SCMP_SYS(writev),
	SCMP_SYS(pwrite64), SCMP_SYS(pwritev), SCMP_SYS(lseek),
	SCMP_SYS(close), SCMP_SYS(fsync), SCMP_SYS(fdatasync),
	SCMP_SYS(fcntl), SCMP_SYS(openat), SCMP_SYS(open),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(stat),
	SCMP_SYS(statx), SCMP_SYS(unlink), SCMP_SYS(unlinkat),
	SCMP_SYS(ftruncate), SCMP_SYS(fallocate), SCMP_SYS(getdents64),
	SCMP_SYS(getcwd),
	/* malloc, the region files' maps */
	SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(madvise), SCMP_SYS(mprotect),
	/* the store's watchdog thread (its start and exit), Berkeley DB's
	 * mutexes and sleeps (select) */
	SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
	SCMP_SYS(sched_yield), SCMP_SYS(nanosleep),
	SCMP_SYS(clock_nanosleep), SCMP_SYS(select), SCMP_SYS(pselect6),
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(exit),
	SCMP_SYS(exit_group), SCMP_SYS(gettid), SCMP_SYS(getpid),
	/* clocks, ids; qsort's memory probe (sysinfo) and uname at a
	 * checkpoint */
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
	SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(sysinfo),
	SCMP_SYS(uname), SCMP_SYS(getrandom), SCMP_SYS(getuid),
	SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid),
	/* SIGINT/SIGTERM/SIGHUP set greyctl's stop flag */
	SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
	SCMP_SYS(restart_syscall),
};

/* greyctl with SANDBOX_GC_CTL: talking to spamd's control socket (the
 * socket call itself is allowed for AF_UNIX only) */
static const int sandbox_greyctl_ctl[] = {
	SCMP_SYS(connect), SCMP_SYS(setsockopt), SCMP_SYS(getsockopt),
	SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(sendmsg),
	SCMP_SYS(recvmsg), SCMP_SYS(shutdown),
};

/* greyctl with SANDBOX_GC_OPEN: opening (and making) the store; the
 * watchdog thread is allowed by a rule on clone's flags */
static const int sandbox_greyctl_open[] = {
	SCMP_SYS(mkdir), SCMP_SYS(mkdirat), SCMP_SYS(rename),
	SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(access),
	SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(umask),
	SCMP_SYS(sched_getaffinity), SCMP_SYS(getrlimit),
	SCMP_SYS(prlimit64),
};

/*
 * The writer once it is set up (store, firewall, listeners open): what
 * greyctl may do with the store (sandbox_greyctl_allow, _open, _ctl: a
 * store reopen, a new log file, the files SIGHUP re-reads, the store's
 * watchdog thread by a rule on clone) and these: its event loop, every
 * socket it serves or opens (config port, control socket, HTTP, sync over
 * UDP and multicast, DNS for explain, recipient checks over SMTP,
 * netlink for nftables, syslog), statfs for the free-space guard. Not
 * here: exec, ptrace, mount, module and key calls, namespaces, bpf,
 * chroot, set*id: nothing a parser bug could use to leave the process.
 */
static const int sandbox_writer_allow[] = {
	/* files beyond greyctl's */
	SCMP_SYS(lstat), SCMP_SYS(readlink), SCMP_SYS(readlinkat),
	SCMP_SYS(statfs), SCMP_SYS(fstatfs), SCMP_SYS(fchmod),
	SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3), SCMP_SYS(pipe2),
	SCMP_SYS(flock), SCMP_SYS(msync),
	/* the event loop */
	SCMP_SYS(epoll_create1), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait),
	SCMP_SYS(epoll_pwait2), SCMP_SYS(epoll_ctl), SCMP_SYS(eventfd2),
	SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime),
	SCMP_SYS(timerfd_gettime),
	/* serving sockets (the families: a rule on socket below) */
	SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(accept),
	SCMP_SYS(accept4), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
	SCMP_SYS(socketpair), SCMP_SYS(recvmmsg), SCMP_SYS(sendmmsg),
	/* ids and times the C library and libevent ask */
	SCMP_SYS(getppid), SCMP_SYS(getgroups), SCMP_SYS(getrusage),
	SCMP_SYS(times),
};

/*
 * the writer with a backend that runs ipset or pfctl: a child process
 * and its exec (the command's path cannot be checked here); the SIGPIPE
 * that fw_exec holds back from a program that exits before reading its
 * stdin (sigpending, sigtimedwait); posix_spawn's closefrom in the child
 * (close_range). The filter stays on across exec, so the program itself
 * runs under it: the dynamic loader's arch_prctl is what ipset needs
 * beyond the writer's own calls (found with --seccomp log; every flush
 * and look used to kill the writer or the ipset it ran).
 */
static const int sandbox_writer_exec[] = {
	SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(fork), SCMP_SYS(vfork),
	SCMP_SYS(execve), SCMP_SYS(wait4), SCMP_SYS(waitid),
	SCMP_SYS(kill), SCMP_SYS(set_tid_address),
	SCMP_SYS(rt_sigpending), SCMP_SYS(rt_sigtimedwait),
	SCMP_SYS(close_range), SCMP_SYS(arch_prctl),
};

#ifdef SANDBOX_ASAN
/* Added to every list in sanitizer builds. */
static const int sandbox_asan_allow[] = {
	/* ASan/UBSan reports and LeakSanitizer's stop-the-world at exit */
	SCMP_SYS(openat), SCMP_SYS(open), SCMP_SYS(readlink),
	SCMP_SYS(readlinkat), SCMP_SYS(prctl), SCMP_SYS(clone),
	SCMP_SYS(clone3), SCMP_SYS(ptrace), SCMP_SYS(wait4),
	SCMP_SYS(waitid), SCMP_SYS(getppid), SCMP_SYS(tgkill),
	SCMP_SYS(kill), SCMP_SYS(getdents), SCMP_SYS(getdents64),
	SCMP_SYS(set_robust_list),
	SCMP_SYS(getrlimit), SCMP_SYS(prlimit64), SCMP_SYS(pipe2),
	SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3), SCMP_SYS(unshare),
	SCMP_SYS(sched_getaffinity), SCMP_SYS(rseq),
};
#endif

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

/* One filter being built; the first failure is kept for the caller. */
struct sandbox_build {
	scmp_filter_ctx	 ctx;
	int		 failed;
	char		 err[160];	/* "op=... error=..." for the message */
};

/* sandbox_rule - add one rule; a refusal is kept in b for sandbox_load */
static void
sandbox_rule(struct sandbox_build *b, uint32_t action, int sys, unsigned n,
    const struct scmp_arg_cmp *cmp)
{
	int r;

	r = seccomp_rule_add_array(b->ctx, action, sys, n, cmp);
	/* -EDOM etc.: a call this architecture lacks is no error */
	if (r < 0 && r != -EDOM && r != -EFAULT && !b->failed) {
		b->failed = 1;
		snprintf(b->err, sizeof(b->err), "op=rule-add syscall=%d "
		    "error=\"%s\"", sys, strerror(-r));
	}
}

/* sandbox_allow_all - allow every call of list (nlist entries) */
static void
sandbox_allow_all(struct sandbox_build *b, const int *list, size_t nlist)
{
	size_t i;

	for (i = 0; i < nlist; i++)
		sandbox_rule(b, SCMP_ACT_ALLOW, list[i], 0, NULL);
}

/*
 * sandbox_start - a filter of mode (kill or log) for every thread that
 * allows the calls of list (and the sanitizers' extras); the caller adds
 * its rules with arguments, then calls sandbox_load. -1 with b->err.
 */
static int
sandbox_start(struct sandbox_build *b, int mode, const int *list,
    size_t nlist)
{
	uint32_t deny;

	memset(b, 0, sizeof(*b));
	deny = mode == SANDBOX_LOG ? SCMP_ACT_LOG : mode == SANDBOX_TRAP ?
	    SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS;
	if ((b->ctx = seccomp_init(deny)) == NULL) {
		snprintf(b->err, sizeof(b->err), "op=seccomp-init");
		return -1;
	}
	/* every thread (greyctl's store has a watchdog thread), and
	 * no_new_privs again */
	if (seccomp_attr_set(b->ctx, SCMP_FLTATR_CTL_TSYNC, 1) < 0 ||
	    seccomp_attr_set(b->ctx, SCMP_FLTATR_CTL_NNP, 1) < 0) {
		seccomp_release(b->ctx);
		b->ctx = NULL;
		snprintf(b->err, sizeof(b->err), "op=seccomp-attr");
		return -1;
	}
	sandbox_allow_all(b, list, nlist);
#ifdef SANDBOX_ASAN
	sandbox_allow_all(b, sandbox_asan_allow, SANDBOX_N(sandbox_asan_allow));
#endif
	return 0;
}

/* sandbox_load - load the filter built in b and free it; -1 with b->err */
static int
sandbox_load(struct sandbox_build *b)
{
	int r;

	if (!b->failed && (r = seccomp_load(b->ctx)) < 0) {
		b->failed = 1;
		snprintf(b->err, sizeof(b->err), "op=seccomp-load "
		    "error=\"%s\"", strerror(-r));
	}
	seccomp_release(b->ctx);
	b->ctx = NULL;
	return b->failed ? -1 : 0;
}

/* sandbox_no_new_privs - PR_SET_NO_NEW_PRIVS: seccomp without root */
static int
sandbox_no_new_privs(void)
{
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

/* what sandbox_sigsys reports a trapped call to (the engine's) */
static void (*sandbox_report)(int);

/*
 * sandbox_sigsys - SIGSYS from the engine's filter (kill mode): report
 * the call's number, then die of SIGSYS as SCMP_ACT_KILL_PROCESS would:
 * the default action back, the signal sent again (blocked until this
 * handler returns, then fatal). Only async-signal-safe calls.
 */
static void
sandbox_sigsys(int sig, siginfo_t *si, void *ctx)
{
	struct sigaction sa;

	(void)ctx;
	if (sandbox_report != NULL)
		sandbox_report(si->si_syscall);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGSYS, &sa, NULL);
	syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
}

/*
 * sandbox_trap_mode - the filter mode to build for mode: kill mode with a
 * report becomes SANDBOX_TRAP, with sandbox_sigsys installed to report
 * the call and then die of SIGSYS; other modes stay. -1 (errno) when the
 * handler cannot be installed.
 */
static int
sandbox_trap_mode(int mode, void (*report)(int nr))
{
	struct sigaction sa;

	if (mode != SANDBOX_KILL || report == NULL)
		return mode;
	sandbox_report = report;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sandbox_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) == -1)
		return -1;
	return SANDBOX_TRAP;
}

/* sandbox_engine - no_new_privs and the engine's allow-list filter */
void
sandbox_engine(int mode, void (*report)(int nr))
{
	struct sandbox_build b;
	struct scmp_arg_cmp cmp[2];
	int type_mask, filter_mode = mode;

	/* privsep sets it as root; unprivileged runs need it for seccomp */
	if (sandbox_no_new_privs() == -1)
		fatal("event=sandbox op=prctl-no-new-privs");
	if (mode == SANDBOX_OFF) {
		log_warnx("event=sandbox mode=off");
		return;
	}
	/*
	 * kill mode traps instead, so the master can log which call it was
	 * (the engine still dies of SIGSYS, see sandbox_sigsys)
	 */
	if ((filter_mode = sandbox_trap_mode(mode, report)) == -1)
		fatal("event=sandbox op=sigaction-sigsys");
	if (sandbox_start(&b, filter_mode, sandbox_engine_allow,
	    SANDBOX_N(sandbox_engine_allow)) == -1)
		fatalx("event=sandbox %s", b.err);

	/* socket: only evdns's UDP sockets (any flags) */
	type_mask = ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	cmp[0] = SCMP_A0(SCMP_CMP_EQ, AF_INET);
	cmp[1] = SCMP_A1(SCMP_CMP_MASKED_EQ, (scmp_datum_t)(unsigned)type_mask,
	    SOCK_DGRAM);
	sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2, cmp);
	cmp[0] = SCMP_A0(SCMP_CMP_EQ, AF_INET6);
	sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2, cmp);
	/*
	 * syslog(3) reconnects to /dev/log after a syslogd restart; in the
	 * chroot that cannot work anyway, so fail softly instead of dying
	 */
	cmp[0] = SCMP_A0(SCMP_CMP_EQ, AF_UNIX);
	sandbox_rule(&b, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1, cmp);
	/* libevent asks how much is readable before a read */
	cmp[0] = SCMP_A1(SCMP_CMP_EQ, FIONREAD);
	sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, cmp);
#ifndef SANDBOX_ASAN
	/* abort() signals itself: only this process */
	cmp[0] = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid());
	sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, cmp);
	/*
	 * a late file open by the C library (time zone, locale) finds an
	 * empty chroot anyway: refuse it instead of killing the engine
	 */
	sandbox_rule(&b, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0, NULL);
	sandbox_rule(&b, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0, NULL);
#endif

	if (sandbox_load(&b) == -1)
		fatalx("event=sandbox %s", b.err);
	log_info("event=sandbox mode=%s", sandbox_mode_name(mode));
}

/* sandbox_writer - no_new_privs and the writer's allow-list (sandbox.h) */
int
sandbox_writer(int mode, int flags, void (*report)(int nr), char *err,
    size_t errsz)
{
	struct sandbox_build b;
	struct scmp_arg_cmp cmp[2];
	static const int families[] = { AF_INET, AF_INET6, AF_UNIX,
	    AF_NETLINK };
	size_t i;
	int filter_mode = mode;

	if (sandbox_no_new_privs() == -1) {
		snprintf(err, errsz, "prctl(PR_SET_NO_NEW_PRIVS): %s",
		    strerror(errno));
		return -1;
	}
#ifdef SANDBOX_VALGRIND
	if (RUNNING_ON_VALGRIND)
		mode = filter_mode = SANDBOX_OFF;
#endif
	if (mode == SANDBOX_OFF) {
		log_warnx("event=sandbox proc=writer mode=off");
		return 0;
	}
	/* kill mode traps, so the master can name the call (as engines) */
	if ((filter_mode = sandbox_trap_mode(mode, report)) == -1) {
		snprintf(err, errsz, "sigaction(SIGSYS): %s", strerror(errno));
		return -1;
	}
	if (sandbox_start(&b, filter_mode, sandbox_greyctl_allow,
	    SANDBOX_N(sandbox_greyctl_allow)) == -1) {
		snprintf(err, errsz, "%s", b.err);
		return -1;
	}
	sandbox_allow_all(&b, sandbox_greyctl_open,
	    SANDBOX_N(sandbox_greyctl_open));
	sandbox_allow_all(&b, sandbox_greyctl_ctl,
	    SANDBOX_N(sandbox_greyctl_ctl));
	sandbox_allow_all(&b, sandbox_writer_allow,
	    SANDBOX_N(sandbox_writer_allow));
	/* sockets of the families it serves and asks; any type */
	for (i = 0; i < SANDBOX_N(families); i++) {
		cmp[0] = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i]);
		sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, cmp);
	}
	/* terminals and readable counts only (isatty, FIONREAD), a
	 * streamed HTTP answer's send queue (SIOCOUTQ: is its reader still
	 * reading) and the interface lookups of multicast sync */
	cmp[0] = SCMP_A1(SCMP_CMP_EQ, TCGETS);
	sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, cmp);
	cmp[0] = SCMP_A1(SCMP_CMP_EQ, FIONREAD);
	sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, cmp);
	cmp[0] = SCMP_A1(SCMP_CMP_EQ, SIOCOUTQ);
	sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, cmp);
	cmp[0] = SCMP_A1(SCMP_CMP_EQ, SIOCGIFINDEX);
	sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, cmp);
	cmp[0] = SCMP_A1(SCMP_CMP_EQ, SIOCGIFADDR);
	sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, cmp);
	cmp[0] = SCMP_A1(SCMP_CMP_EQ, SIOCGIFNAME);
	sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, cmp);
	if (flags & SANDBOX_W_EXEC) {
		sandbox_allow_all(&b, sandbox_writer_exec,
		    SANDBOX_N(sandbox_writer_exec));
	} else {
#ifndef SANDBOX_ASAN
		/* threads only (the store's watchdog), as greyctl */
		sandbox_rule(&b, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0,
		    NULL);
		cmp[0] = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD,
		    CLONE_THREAD);
		sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, cmp);
		/* Berkeley DB's liveness check (kill(pid, 0)) */
		cmp[0] = SCMP_A1(SCMP_CMP_EQ, 0);
		sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1, cmp);
#endif
	}
#ifndef SANDBOX_ASAN
	/* abort() signals itself: only this process */
	cmp[0] = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid());
	sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, cmp);
#endif
	if (sandbox_load(&b) == -1) {
		snprintf(err, errsz, "%s", b.err);
		return -1;
	}
	log_info("event=sandbox proc=writer mode=%s exec=%d",
	    sandbox_mode_name(mode), (flags & SANDBOX_W_EXEC) != 0);
	return 0;
}

/* sandbox_greyctl - no_new_privs and greyctl's allow-list filter */
int
sandbox_greyctl(int mode, int flags, char *err, size_t errsz)
{
	struct sandbox_build b;
	struct scmp_arg_cmp cmp[2];
	int type_mask;

	if (sandbox_no_new_privs() == -1) {
		snprintf(err, errsz, "prctl(PR_SET_NO_NEW_PRIVS): %s",
		    strerror(errno));
		return -1;
	}
#ifdef SANDBOX_VALGRIND
	/* valgrind's own calls would meet the filter: run without it */
	if (RUNNING_ON_VALGRIND)
		mode = SANDBOX_OFF;
#endif
	if (mode == SANDBOX_OFF)
		return 0;
	if (sandbox_start(&b, mode, sandbox_greyctl_allow,
	    SANDBOX_N(sandbox_greyctl_allow)) == -1) {
		snprintf(err, errsz, "%s", b.err);
		return -1;
	}
	/* stdio asks whether stdout is a terminal (isatty) */
	cmp[0] = SCMP_A1(SCMP_CMP_EQ, TCGETS);
	sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, cmp);
#ifndef SANDBOX_ASAN
	/* Berkeley DB's failchk asks whether other openers still live
	 * (kill(pid, 0)); no signal may be sent to anyone else */
	cmp[0] = SCMP_A1(SCMP_CMP_EQ, 0);
	sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1, cmp);
	/* abort() signals itself: only this process */
	cmp[0] = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid());
	sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, cmp);
#endif
	if (flags & SANDBOX_GC_CTL) {
		/* spamd's control socket: AF_UNIX stream sockets only, so
		 * connect can reach nothing but a local socket */
		type_mask = ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
		cmp[0] = SCMP_A0(SCMP_CMP_EQ, AF_UNIX);
		cmp[1] = SCMP_A1(SCMP_CMP_MASKED_EQ,
		    (scmp_datum_t)(unsigned)type_mask, SOCK_STREAM);
		sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2, cmp);
		sandbox_allow_all(&b, sandbox_greyctl_ctl,
		    SANDBOX_N(sandbox_greyctl_ctl));
	}
	if (flags & SANDBOX_GC_OPEN) {
		sandbox_allow_all(&b, sandbox_greyctl_open,
		    SANDBOX_N(sandbox_greyctl_open));
#ifndef SANDBOX_ASAN
		/*
		 * the store's watchdog thread: clone3's flags sit behind a
		 * pointer, so it fails as "not here" and the C library
		 * falls back to clone, whose flags must say "a thread" (no
		 * new process can be made)
		 */
		sandbox_rule(&b, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0,
		    NULL);
		cmp[0] = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD,
		    CLONE_THREAD);
		sandbox_rule(&b, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, cmp);
#endif
	}
	if (sandbox_load(&b) == -1) {
		snprintf(err, errsz, "%s", b.err);
		return -1;
	}
	return 0;
}
