/*
 * tls.c - STARTTLS (RFC 3207) and implicit TLS (RFC 8314) on the loop
 *
 * Non-blocking: every OpenSSL call that would block returns WANT_READ or
 * WANT_WRITE, which we turn into watcher interest (s->tls_want_write).
 * TLS 1.2 is the floor; renegotiation is off (it was a DoS vector and
 * TLS 1.3 has none).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "log.h"
#include "conn.h"
#include "tls.h"

/* The Mozilla "intermediate" TLS 1.2 list; TLS 1.3 suites are OpenSSL's. */
#define TLS_DEFAULT_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"

/* ssl_error_text - the first queued OpenSSL error, for one log line */
static const char *
ssl_error_text(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, size, "unknown error");
	else
		ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

SSL_CTX *
tls_ctx_new(const struct config *cfg, char *errbuf, size_t errsize)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char err[256];
	int minver = TLS1_2_VERSION;

	if (ctx == NULL) {
		snprintf(errbuf, errsize, "TLS: %s", ssl_error_text(err, sizeof(err)));
		return NULL;
	}
	if (cfg->tls_min_version != NULL &&
	    strcmp(cfg->tls_min_version, "1.3") == 0)
		minver = TLS1_3_VERSION;
	SSL_CTX_set_min_proto_version(ctx, minver);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* SMTP ends with QUIT, not close_notify: a client that just closes
	 * is a closed connection, not a read error (truncation cannot
	 * forge a 250: the client would have had to send the end of data). */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers != NULL ?
	    cfg->tls_ciphers : TLS_DEFAULT_CIPHERS) != 1) {
		snprintf(errbuf, errsize, "--tls-ciphers: no usable cipher in '%s'",
		    cfg->tls_ciphers != NULL ? cfg->tls_ciphers : "(default)");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
		snprintf(errbuf, errsize, "--tls-cert %s: %s", cfg->tls_cert,
		    ssl_error_text(err, sizeof(err)));
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
		snprintf(errbuf, errsize, "--tls-key %s: %s", cfg->tls_key,
		    ssl_error_text(err, sizeof(err)));
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(errbuf, errsize, "--tls-key %s does not match --tls-cert %s",
		    cfg->tls_key, cfg->tls_cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* Sessions are short; tickets let clients resume cheaply. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"smtphook", 8);
	return ctx;
}

void
tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

int
tls_start(struct conn *s, SSL_CTX *ctx)
{
	s->ssl = SSL_new(ctx);
	if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1) {
		char err[256];

		log_msg(LOG_ERROR, "%s: TLS: %s", s->log_id,
		    ssl_error_text(err, sizeof(err)));
		tls_free(s);
		return -1;
	}
	SSL_set_accept_state(s->ssl);
	s->tls = CONN_TLS_HANDSHAKE;
	return 0;
}

/* want - turn an SSL error into errno and watcher interest */
static long
want(struct conn *s, int r)
{
	int e = SSL_get_error(s->ssl, r);

	s->tls_want_write = 0;
	switch (e) {
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		s->tls_want_write = 1;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			errno = ECONNRESET;
		ERR_clear_error();
		return -1;
	default:
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

int
tls_handshake(struct conn *s)
{
	int r = SSL_do_handshake(s->ssl);
	X509 *peer;

	if (r == 1) {
		struct tls_names *n = calloc(1, sizeof(*n));

		s->tls = CONN_TLS_ON;
		s->tls_want_write = 0;
		if (n == NULL)
			return -1;
		free(s->tls_names);
		s->tls_names = n;
		snprintf(n->protocol, sizeof(n->protocol), "%s", SSL_get_version(s->ssl));
		snprintf(n->cipher, sizeof(n->cipher), "%s", SSL_get_cipher_name(s->ssl));
		peer = SSL_get1_peer_certificate(s->ssl);
		if (peer != NULL) {
			X509_NAME_oneline(X509_get_subject_name(peer), n->subject,
			    sizeof(n->subject));
			X509_free(peer);
		}
		log_msg(LOG_INFO, "%s: TLS established: %s %s", s->log_id,
		    n->protocol, n->cipher);
		return 1;
	}
	if (want(s, r) < 0 && errno == EAGAIN)
		return 0;
	{
		char err[256];
		unsigned long e = ERR_peek_error();

		if (e != 0)
			ERR_error_string_n(e, err, sizeof(err));
		else
			snprintf(err, sizeof(err), "%s", strerror(errno));
		ERR_clear_error();
		log_msg(LOG_INFO, "%s: TLS handshake failed: %s", s->log_id, err);
	}
	return -1;
}

long
tls_read(struct conn *s, void *buf, size_t len)
{
	size_t got = 0;
	int r;

	ERR_clear_error();
	r = SSL_read_ex(s->ssl, buf, len, &got);
	if (r == 1) {
		s->tls_want_write = 0;
		return (long)got;
	}
	return want(s, 0);
}

long
tls_write(struct conn *s, const void *buf, size_t len)
{
	size_t put = 0;
	int r;

	ERR_clear_error();
	r = SSL_write_ex(s->ssl, buf, len, &put);
	if (r == 1) {
		s->tls_want_write = 0;
		return (long)put;
	}
	return want(s, 0);
}

int
tls_pending(const struct conn *s)
{
	return s->ssl != NULL && SSL_pending(s->ssl) > 0;
}

int
tls_wants_write(const struct conn *s)
{
	return s->ssl != NULL && s->tls_want_write;
}

void
tls_free(struct conn *s)
{
	if (s->ssl != NULL) {
		SSL_shutdown(s->ssl);	/* best effort close_notify */
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	s->tls = CONN_PLAIN;
	free(s->tls_names);
	s->tls_names = NULL;
}
