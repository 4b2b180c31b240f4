/*
 * tls.c - STARTTLS on the engine's raw sockets (tls.h). The SSL object
 * exists only from a client's STARTTLS to its close; OpenSSL's buffers
 * are released while idle (SSL_MODE_RELEASE_BUFFERS), since a tarpit
 * holds connections for minutes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "spamd/engine/engine.h"
#include "spamd/common/log.h"
#include "spamd/engine/tls.h"

/* tls_ctx_new - the server context from the -C and -K files */
struct ssl_ctx_st *
tls_ctx_new(const char *certfile, const char *keyfile, char *err,
    size_t errsz)
{
	SSL_CTX *ctx;
	FILE *f;
	const char *files[2] = { certfile, keyfile };
	const char *flags[2] = { "-C", "-K" };
	int i;

	/* a clear errno message first; OpenSSL's reasons are terse */
	for (i = 0; i < 2; i++) {
		if ((f = fopen(files[i], "r")) == NULL) {
			snprintf(err, errsz, "%s %s: %s", flags[i], files[i],
			    strerror(errno));
			return NULL;
		}
		fclose(f);
	}
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errsz, "SSL_CTX_new: %s",
		    ERR_reason_error_string(ERR_get_error()));
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, certfile) != 1) {
		snprintf(err, errsz, "-C %s: not a PEM certificate: %s",
		    certfile, ERR_reason_error_string(ERR_get_error()));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, keyfile, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errsz, "-K %s: not a PEM private key: %s",
		    keyfile, ERR_reason_error_string(ERR_get_error()));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errsz, "-K %s: does not match the certificate "
		    "in -C %s", keyfile, certfile);
		goto fail;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* memory only while bytes move; partial writes as send(2) does */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* no renegotiation (a CPU lever for clients), a missing close_notify
	 * is an ordinary end of a tarpit dialogue */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET);
	/* nobody comes back to resume a session with a tarpit */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* tls_engine_init - seed the DRBG in this process (forked from main) */
void
tls_engine_init(void)
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		fatalx("tls: the random generator cannot be seeded");
}

/* tls_ctx_free - free a context */
void
tls_ctx_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

/* tls_log_error - log event=tls-error for c with OpenSSL's reason */
static void
tls_log_error(struct conn *c, int r, const char *op)
{
	char ip[64], why[256], esc[512];
	unsigned long e;
	int se = SSL_get_error(c->tls, r);

	if ((e = ERR_get_error()) != 0)
		ERR_error_string_n(e, why, sizeof(why));
	else if (se == SSL_ERROR_SYSCALL && errno != 0)
		strlcpy(why, strerror(errno), sizeof(why));
	else if (se == SSL_ERROR_SYSCALL || se == SSL_ERROR_ZERO_RETURN)
		strlcpy(why, "eof", sizeof(why));
	else
		snprintf(why, sizeof(why), "ssl error %d", se);
	ERR_clear_error();
	log_info("event=tls-error id=%llu ip=%s op=%s error=\"%s\"",
	    (unsigned long long)c->s.id, session_ip(&c->s, ip, sizeof(ip)), op,
	    log_escape(why, strlen(why), 200, esc, sizeof(esc)));
}

static void tls_handshake_cb(evutil_socket_t, short, void *);

/* tls_arm - wait for the direction OpenSSL asked for, within the idle
 * limit (the handshake's timeout) */
static void
tls_arm(struct conn *c, short dir)
{
	struct engine *e = c->eng;

	event_del(&c->ev);
	event_assign(&c->ev, engine_base(e), c->fd, dir, tls_handshake_cb, c);
	event_add(&c->ev, engine_idle_tv(e));
}

/* tls_handshake - one SSL_accept step: 0 done, 1 waiting, -1 closed */
static int
tls_handshake(struct conn *c)
{
	char ip[64];
	int r;

	ERR_clear_error();
	errno = 0;
	r = SSL_accept(c->tls);
	if (r == 1) {
		log_info("event=tls id=%llu ip=%s version=%s cipher=%s",
		    (unsigned long long)c->s.id,
		    session_ip(&c->s, ip, sizeof(ip)), SSL_get_version(c->tls),
		    SSL_get_cipher_name(c->tls));
		return 0;
	}
	switch (SSL_get_error(c->tls, r)) {
	case SSL_ERROR_WANT_READ:
		tls_arm(c, EV_READ);
		return 1;
	case SSL_ERROR_WANT_WRITE:
		tls_arm(c, EV_WRITE);
		return 1;
	default:
		tls_log_error(c, r, "handshake");
		engine_close(c, "tls-error");
		return -1;
	}
}

/* tls_handshake_cb - the socket is ready for the handshake, or the idle
 * limit passed */
static void
tls_handshake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	char ip[64];

	if (what & EV_TIMEOUT) {
		log_info("event=tls-error id=%llu ip=%s op=handshake "
		    "error=\"timeout\"", (unsigned long long)c->s.id,
		    session_ip(&c->s, ip, sizeof(ip)));
		engine_close(c, "tls-timeout");
		return;
	}
	if (tls_handshake(c) == 0)
		engine_run(c);
}

/* tls_run - start or continue c's handshake */
int
tls_run(struct conn *c)
{
	SSL_CTX *ctx = engine_conf_of(c->eng)->tls_ctx;

	if (c->s.flags & SESSION_F_STARTTLS) {
		c->s.flags &= ~SESSION_F_STARTTLS;
		/* RFC 3207 4.2: plain text the client pipelined after
		 * STARTTLS is dropped, never run as if it came under TLS */
		free(c->ibuf);
		c->ibuf = NULL;
		c->ilen = 0;
		if (ctx == NULL || (c->tls = SSL_new(ctx)) == NULL ||
		    SSL_set_fd(c->tls, c->fd) != 1) {
			ERR_clear_error();
			engine_close(c, "tls-setup");
			return -1;
		}
		SSL_set_accept_state(c->tls);
	}
	if (c->tls == NULL || SSL_is_init_finished(c->tls))
		return 0;
	return tls_handshake(c);
}

/* tls_read - SSL_read on c */
ssize_t
tls_read(struct conn *c, void *buf, size_t len)
{
	int r;

	ERR_clear_error();
	errno = 0;
	if ((r = SSL_read(c->tls, buf, (int)len)) > 0)
		return r;
	switch (SSL_get_error(c->tls, r)) {
	case SSL_ERROR_WANT_READ:
		return TLS_IO_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_IO_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		tls_log_error(c, r, "read");
		return -1;
	}
}

/* tls_write - SSL_write on c */
ssize_t
tls_write(struct conn *c, const void *buf, size_t len)
{
	int r;

	ERR_clear_error();
	errno = 0;
	if ((r = SSL_write(c->tls, buf, (int)len)) > 0)
		return r;
	switch (SSL_get_error(c->tls, r)) {
	case SSL_ERROR_WANT_READ:
		return TLS_IO_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_IO_WANT_WRITE;
	default:
		tls_log_error(c, r, "write");
		return -1;
	}
}

/* tls_pending - decrypted bytes wait inside OpenSSL */
int
tls_pending(const struct conn *c)
{
	return c->tls != NULL && SSL_pending(c->tls) > 0;
}

/* tls_end - close_notify if the handshake was done, then free */
void
tls_end(struct conn *c)
{
	if (c->tls == NULL)
		return;
	if (SSL_is_init_finished(c->tls))
		(void)SSL_shutdown(c->tls);	/* one try, never waited on */
	ERR_clear_error();
	SSL_free(c->tls);
	c->tls = NULL;
}
