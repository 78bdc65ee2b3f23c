/*
 * tls.h - OpenSSL contexts and the per-connection TLS layer
 *
 * The server keeps one SSL_CTX (certificate, key, protocol floor,
 * ciphers).  SIGHUP loads a fresh one from the same files; when that
 * fails the old one stays and the reason is logged.  Connections hold a
 * reference to the context they started with (SSL_CTX is refcounted), so
 * a reload never drops a session.
 */
#ifndef TLS_H
#define TLS_H

#include <stddef.h>

struct config;
struct conn;
typedef struct ssl_ctx_st SSL_CTX;

/* What plugins see of an established TLS session (sh_session_info). */
struct tls_names {
	char protocol[16];
	char cipher[64];
	char subject[256];
};

/* tls_ctx_new - a server context from the config; NULL + reason */
SSL_CTX *tls_ctx_new(const struct config *cfg, char *errbuf, size_t errsize);
void tls_ctx_free(SSL_CTX *ctx);

/* tls_start - begin the server side of a handshake on c->fd */
int tls_start(struct conn *c, SSL_CTX *ctx);
/* tls_handshake - drive the handshake: 1 done, 0 in progress, -1 failed */
int tls_handshake(struct conn *c);
/* tls_read / tls_write - like recv/send: >0 octets, 0 EOF, -1 with errno
 * (EAGAIN when the TLS layer waits for the socket) */
long tls_read(struct conn *c, void *buf, size_t len);
long tls_write(struct conn *c, const void *buf, size_t len);
/* tls_pending - decrypted octets buffered inside OpenSSL */
int tls_pending(const struct conn *c);
/* tls_wants_write - the TLS layer needs the socket writable to go on */
int tls_wants_write(const struct conn *c);
/* tls_free - drop the connection's TLS state */
void tls_free(struct conn *c);

#endif
