/*
 * setup_send.c - delivering one control message to the engine's config
 * port: connect, write the line, half-close, read the one-line answer
 * ("ok TAG N" or "error TAG: reason") until the engine closes. OpenBSD
 * spamd answers nothing, so EOF with no answer counts as success.
 */
#include <sys/types.h>
#include <sys/socket.h>

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

/* setup_connect - a TCP connection to host:port, or -1 with err */
static int
setup_connect(const char *host, int port, time_t deadline, char *err,
    size_t errsz)
{
	struct addrinfo hints, *res, *ai;
	char serv[16];
	int fd = -1, r, soerr;
	socklen_t sl;

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
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
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
