/*
 * setup_fetch.c - getting a list's bytes: a local file, the standard
 * output of a program (argv split on blanks, run without a shell), or an
 * http/https URL through libcurl (connect and total timeouts, a size cap,
 * redirects followed only to http/https). gzip data is inflated here, so
 * callers always get text.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "spamd/setup/setup.h"

extern char **environ;

/* setup_read_fd - read fd to EOF into out, at most cap bytes */
static int
setup_read_fd(int fd, size_t cap, const char *what, struct setup_buf *out,
    char *err, size_t errsz)
{
	char chunk[65536];
	ssize_t r;

	for (;;) {
		r = read(fd, chunk, sizeof(chunk));
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errsz, "%s: read: %s", what,
			    strerror(errno));
			return -1;
		}
		if (r == 0)
			return 0;
		if (out->len + (size_t)r > cap) {
			snprintf(err, errsz, "%s: larger than the cap of %zu "
			    "bytes", what, cap);
			return -1;
		}
		if (setup_buf_add(out, chunk, (size_t)r) == -1) {
			snprintf(err, errsz, "%s: out of memory", what);
			return -1;
		}
	}
}

/* setup_read_file - read a whole file, at most cap bytes */
int
setup_read_file(const char *path, size_t cap, struct setup_buf *out,
    char *err, size_t errsz)
{
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	r = setup_read_fd(fd, cap, path, out, err, errsz);
	close(fd);
	return r;
}

/* setup_split_argv - split a command line on blanks into an argv */
char **
setup_split_argv(const char *cmd)
{
	size_t len = strlen(cmd), n = 0, i;
	char **argv, *copy;
	int in = 0;

	/* count words: at most len / 2 + 1 */
	for (i = 0; i < len; i++) {
		if (cmd[i] == ' ' || cmd[i] == '\t')
			in = 0;
		else if (!in) {
			in = 1;
			n++;
		}
	}
	if (n == 0)
		return NULL;
	/* one block: the pointers, then a copy of the text */
	if ((argv = malloc((n + 1) * sizeof(*argv) + len + 1)) == NULL)
		return NULL;
	copy = (char *)(argv + n + 1);
	memcpy(copy, cmd, len + 1);
	for (n = 0, in = 0, i = 0; i < len; i++) {
		if (copy[i] == ' ' || copy[i] == '\t') {
			copy[i] = '\0';
			in = 0;
		} else if (!in) {
			in = 1;
			argv[n++] = copy + i;
		}
	}
	argv[n] = NULL;
	return argv;
}

/* setup_exec - run a program (no shell) and collect its standard output */
static int
setup_exec(const char *cmd, const struct setup_fetchopt *o,
    struct setup_buf *out, char *err, size_t errsz)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	char **argv, chunk[65536];
	int p[2], status, ret = -1, done = 0;
	struct pollfd pfd;
	time_t deadline;
	pid_t pid;
	ssize_t r;

	if ((argv = setup_split_argv(cmd)) == NULL) {
		snprintf(err, errsz, "exec: empty command");
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) == -1) {
		snprintf(err, errsz, "exec %s: pipe: %s", argv[0],
		    strerror(errno));
		free(argv);
		return -1;
	}
	/* why: -D blocks SIGHUP/SIGTERM for sigtimedwait; the program must
	 * not inherit that mask */
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null",
	    O_RDONLY, 0);
	/* why: the program is named by the operator; look it up in PATH as
	 * OpenBSD's execvp does, but never through a shell */
	errno = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(p[1]);
	if (errno != 0) {
		snprintf(err, errsz, "exec %s: %s", argv[0], strerror(errno));
		close(p[0]);
		free(argv);
		return -1;
	}
	deadline = time(NULL) + o->timeout;
	pfd.fd = p[0];
	pfd.events = POLLIN;
	while (!done) {
		long left = (long)(deadline - time(NULL));

		if (left <= 0) {
			snprintf(err, errsz, "exec %s: no end after %ld s; "
			    "killed", argv[0], o->timeout);
			kill(pid, SIGKILL);
			goto reap;
		}
		if (poll(&pfd, 1, (int)(left > 1000 ? 1000000 : left * 1000))
		    == -1) {
			if (errno == EINTR)
				continue;
			snprintf(err, errsz, "exec %s: poll: %s", argv[0],
			    strerror(errno));
			kill(pid, SIGKILL);
			goto reap;
		}
		if (pfd.revents == 0)
			continue;
		r = read(p[0], chunk, sizeof(chunk));
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errsz, "exec %s: read: %s", argv[0],
			    strerror(errno));
			kill(pid, SIGKILL);
			goto reap;
		}
		if (r == 0)
			done = 1;
		else if (out->len + (size_t)r > o->maxsize) {
			snprintf(err, errsz, "exec %s: output larger than the "
			    "cap of %zu bytes; killed", argv[0], o->maxsize);
			kill(pid, SIGKILL);
			goto reap;
		} else if (setup_buf_add(out, chunk, (size_t)r) == -1) {
			snprintf(err, errsz, "exec %s: out of memory", argv[0]);
			kill(pid, SIGKILL);
			goto reap;
		}
	}
	ret = 0;
reap:
	close(p[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (ret == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		/* why: a failed program's partial output is not the list */
		if (WIFEXITED(status))
			snprintf(err, errsz, "exec %s: exited with status %d",
			    argv[0], WEXITSTATUS(status));
		else
			snprintf(err, errsz, "exec %s: killed by signal %d",
			    argv[0], WTERMSIG(status));
		ret = -1;
	}
	free(argv);
	return ret;
}

/* The state of one download: where bytes go and the cap. */
struct setup_dl {
	struct setup_buf	*out;
	size_t			 cap;
	int			 toobig;
};

/* setup_curl_write - libcurl's write callback, with the size cap */
static size_t
setup_curl_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct setup_dl *d = arg;
	size_t n = size * nmemb;

	if (d->out->len + n > d->cap) {
		d->toobig = 1;
		return 0;	/* makes curl stop with CURLE_WRITE_ERROR */
	}
	if (setup_buf_add(d->out, ptr, n) == -1)
		return 0;
	return n;
}

/* setup_http - download http[s]://file with libcurl */
static int
setup_http(const struct setup_lconf *l, const struct setup_fetchopt *o,
    struct setup_buf *out, char *err, size_t errsz)
{
	char url[2048], cerr[CURL_ERROR_SIZE];
	const char *scheme = l->method == SETUP_M_HTTPS ? "https" : "http";
	struct setup_dl d = { out, o->maxsize, 0 };
	long code = 0;
	CURLcode rc;
	CURL *h;

	/* OpenBSD's form is host/path; a full URL of the same scheme is
	 * accepted too */
	if (strncmp(l->file, "http://", 7) == 0 ||
	    strncmp(l->file, "https://", 8) == 0) {
		if (strncmp(l->file, scheme, strlen(scheme)) != 0 ||
		    l->file[strlen(scheme)] != ':') {
			snprintf(err, errsz, "method=%s but file= is a URL of "
			    "another scheme", scheme);
			return -1;
		}
		snprintf(url, sizeof(url), "%s", l->file);
	} else
		snprintf(url, sizeof(url), "%s://%s", scheme, l->file);
	if ((h = curl_easy_init()) == NULL) {
		snprintf(err, errsz, "%s: curl_easy_init failed", url);
		return -1;
	}
	cerr[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, setup_curl_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &d);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, o->timeout < 30 ?
	    o->timeout : 30L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, o->timeout);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	/* why: a redirect must never turn a list fetch into file:// or any
	 * other scheme curl knows */
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->maxsize);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "spamd-setup");
	curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK) {
		if (d.toobig || rc == CURLE_FILESIZE_EXCEEDED)
			snprintf(err, errsz, "%s: larger than the cap of %zu "
			    "bytes", url, o->maxsize);
		else
			snprintf(err, errsz, "%s: %s", url, cerr[0] != '\0' ?
			    cerr : curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

/* setup_fetch - fetch a list's bytes and inflate gzip */
int
setup_fetch(const struct setup_lconf *l, const struct setup_fetchopt *o,
    struct setup_buf *out, char *err, size_t errsz)
{
	struct setup_buf raw = { 0 };
	int r;

	switch (l->method) {
	case SETUP_M_FILE:
		r = setup_read_file(l->file, o->maxsize, &raw, err, errsz);
		break;
	case SETUP_M_EXEC:
		r = setup_exec(l->file, o, &raw, err, errsz);
		break;
	default:
		r = setup_http(l, o, &raw, err, errsz);
		break;
	}
	if (r == -1) {
		setup_buf_free(&raw);
		return -1;
	}
	if (setup_is_gzip(raw.p, raw.len)) {
		r = setup_gunzip(raw.p, raw.len, o->maxsize, out, err, errsz);
		setup_buf_free(&raw);
		return r;
	}
	*out = raw;
	return 0;
}
