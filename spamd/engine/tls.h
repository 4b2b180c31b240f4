/*
 * tls.h - STARTTLS for the engine (-C cert -K key, as OpenBSD spamd):
 * OpenSSL on the connection's raw, non-blocking socket. No bufferevent
 * and no SSL object until a client sends STARTTLS, so a held plain
 * connection costs only the pointer in struct conn.
 *
 * The context is made in main before the fork and the chroot (the engine
 * cannot read the files later) and reaches the engines in engine_conf.
 */
#ifndef SPAMD_TLS_H
#define SPAMD_TLS_H

#include <stddef.h>
#include <sys/types.h>

struct conn;
struct ssl_ctx_st;

/* tls_read / tls_write: OpenSSL needs the socket readable / writable
 * before the same call is retried (the caller re-arms c's event) */
#define TLS_IO_WANT_READ	(-2)
#define TLS_IO_WANT_WRITE	(-3)

/*
 * tls_ctx_new - a server context from a PEM certificate (chain) file and
 * a PEM key file; NULL with err naming the file and OpenSSL's reason.
 */
struct ssl_ctx_st *tls_ctx_new(const char *certfile, const char *keyfile,
	    char *err, size_t errsz);
/* tls_engine_init - in the engine before the chroot and the sandbox:
 * seed OpenSSL's random generator (getrandom) while it still may */
void	tls_engine_init(void);
/* tls_ctx_free - free a context; NULL is ignored */
void	tls_ctx_free(struct ssl_ctx_st *ctx);

/*
 * tls_run - engine_run's hook: start the handshake once the session has
 * answered STARTTLS (SESSION_F_STARTTLS) and drive it on. 0: no
 * handshake pending (go on with the dialogue), 1: waiting (c's event
 * armed), -1: failed (c is closed and freed).
 */
int	tls_run(struct conn *c);
/*
 * tls_read / tls_write - SSL_read / SSL_write on c: bytes moved (> 0),
 * 0 at the client's close (read only), TLS_IO_WANT_READ/WRITE, or -1 on
 * an error (logged as event=tls-error; the caller closes c).
 */
ssize_t	tls_read(struct conn *c, void *buf, size_t len);
ssize_t	tls_write(struct conn *c, const void *buf, size_t len);
/* tls_pending - 1 if decrypted bytes wait inside OpenSSL (the socket
 * will not signal them) */
int	tls_pending(const struct conn *c);
/* tls_end - the connection closes: a close_notify try, free the SSL */
void	tls_end(struct conn *c);

#endif /* SPAMD_TLS_H */
