/*
 * setup_send.c - delivering one control message to the engine's config
 * port: connect, write the line, half-close, read the one-line answer
 * ("ok TAG N" or "error TAG: reason") until the engine closes. OpenBSD
 * spamd answers nothing, so EOF with no answer counts as success.
 *
 * As root the connection comes from a reserved source port (600-1023,
 * as bindresvport): spamd takes lists only from those (a root process)
 * unless it runs with --config-any-port.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spamd/common/log.h"
#include "spamd/setup/setup.h"

/* setup_wait - poll one fd for events until the deadline; 0 ready */
static int
setup_wait(int fd, short events, time_t deadline)
{
	struct pollfd p = { fd, events, 0 };
	long left;
	int r;

	for (;;) {
		left = (long)(deadline - time(NULL));
		if (left <= 0)
			return -1;
		r = poll(&p, 1, (int)(left > 3600 ? 3600000 : left * 1000));
		if (r > 0)
			return 0;
		if (r == -1 && errno != EINTR)
			return -1;
	}
}

#define SETUP_RESV_LO	600	/* reserved source ports tried, as */
#define SETUP_RESV_HI	1023	/* glibc's bindresvport */

/* setup_resvport - bind fd to a free reserved port of family af, trying
 * from *next down the range (wrapping); 0, or -1 when none is free */
static int
setup_resvport(int fd, int af, int *next)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	int i, port, on = 1;

	/* a port whose last connection sits in TIME_WAIT is still usable */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	for (i = 0; i <= SETUP_RESV_HI - SETUP_RESV_LO; i++) {
		port = *next;
		*next = port > SETUP_RESV_LO ? port - 1 : SETUP_RESV_HI;
		memset(&ss, 0, sizeof(ss));
		if (af == AF_INET6) {
			sin6->sin6_family = AF_INET6;
			sin6->sin6_addr = in6addr_any;
			sin6->sin6_port = htons((uint16_t)port);
		} else {
			sin->sin_family = AF_INET;
			sin->sin_addr.s_addr = htonl(INADDR_ANY);
			sin->sin_port = htons((uint16_t)port);
		}
		if (bind(fd, (struct sockaddr *)&ss, af == AF_INET6 ?
		    sizeof(*sin6) : sizeof(*sin)) == 0)
			return 0;
		if (errno != EADDRINUSE)
			return -1;
	}
	errno = EADDRINUSE;
	return -1;
}

/* setup_connect - a TCP connection to host:port, or -1 with err; from a
 * reserved source port when root */
static int
setup_connect(const char *host, int port, time_t deadline, char *err,
    size_t errsz)
{
	struct addrinfo hints, *res, *ai;
	char serv[16];
	int fd = -1, r, soerr, tries;
	int resv = geteuid() == 0;
	static int next;	/* the next reserved port to try */
	socklen_t sl;

	if (next == 0)
		next = SETUP_RESV_LO + (int)(getpid() %
		    (SETUP_RESV_HI - SETUP_RESV_LO + 1));

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(serv, sizeof(serv), "%d", port);
	if ((r = getaddrinfo(host, serv, &hints, &res)) != 0) {
		snprintf(err, errsz, "%s port %d: %s", host, port,
		    gai_strerror(r));
		return -1;
	}
	snprintf(err, errsz, "%s port %d: no address", host, port);
	for (ai = res, tries = 0; ai != NULL; ) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1) {
			ai = ai->ai_next;
			continue;
		}
		if (resv && setup_resvport(fd, ai->ai_family, &next) == -1) {
			snprintf(err, errsz, "no reserved source port free "
			    "(%d-%d) to reach %s port %d: %s (spamd takes "
			    "lists only from those unless --config-any-port)",
			    SETUP_RESV_LO, SETUP_RESV_HI, host, port,
			    strerror(errno));
			close(fd);
			fd = -1;
			break;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		/* that source port's last connection to spamd is still
		 * remembered: take the next one */
		if (resv && errno == EADDRNOTAVAIL && ++tries < 16) {
			close(fd);
			fd = -1;
			continue;
		}
		if (errno == EINPROGRESS && setup_wait(fd, POLLOUT,
		    deadline) == 0) {
			sl = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
			    &sl) == 0 && soerr == 0)
				break;
			errno = soerr;
		} else if (errno == EINPROGRESS)
			errno = ETIMEDOUT;
		snprintf(err, errsz, "connect %s port %d: %s", host, port,
		    strerror(errno));
		close(fd);
		fd = -1;
		ai = ai->ai_next;
	}
	freeaddrinfo(res);
	return fd;
}

/* setup_send - send one control line and read the engine's answer */
int
setup_send(const char *host, int port, const char *line, size_t len,
    int timeout, char *answer, size_t answersz, char *err, size_t errsz)
{
	time_t deadline = time(NULL) + timeout;
	size_t off = 0, got = 0;
	char buf[512];
	ssize_t r;
	int fd;

	answer[0] = '\0';
	if ((fd = setup_connect(host, port, deadline, err, errsz)) == -1)
		return -1;
	while (off < len) {
		r = send(fd, line + off, len - off, MSG_NOSIGNAL);
		if (r > 0) {
			off += (size_t)r;
			continue;
		}
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && errno == EAGAIN &&
		    setup_wait(fd, POLLOUT, deadline) == 0)
			continue;
		snprintf(err, errsz, "send to %s port %d: %s (%zu of %zu "
		    "bytes sent)", host, port, r == -1 ? strerror(errno) :
		    "closed", off, len);
		close(fd);
		return -1;
	}
	/* why: the engine reads the message to EOF, then answers */
	shutdown(fd, SHUT_WR);
	for (;;) {
		if (setup_wait(fd, POLLIN, deadline) == -1) {
			snprintf(err, errsz, "%s port %d: no answer within %d s",
			    host, port, timeout);
			close(fd);
			return -1;
		}
		r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (r == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r == -1 && errno != ECONNRESET) {
			snprintf(err, errsz, "recv from %s port %d: %s", host,
			    port, strerror(errno));
			close(fd);
			return -1;
		}
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == sizeof(buf) - 1 || memchr(buf, '\n', got) != NULL)
			break;
	}
	close(fd);
	buf[got] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	/* the answer is shown to the operator: printable ASCII only */
	for (off = 0; buf[off] != '\0'; off++)
		if (buf[off] < 0x20 || buf[off] >= 0x7f)
			buf[off] = '?';
	snprintf(answer, answersz, "%s", buf);
	if (got == 0)
		return 0;
	if (strncmp(buf, "ok", 2) == 0 && (buf[2] == '\0' || buf[2] == ' '))
		return 0;
	snprintf(err, errsz, "engine: %s", answer);
	return -1;
}
