/*
 * session.h - one SMTP session: the state machine's view of a connection
 *
 * Memory ownership: struct session holds its connection (struct conn:
 * fd, watchers, buffers), its chain (walk, pending verdict), its body
 * (the message streaming), the HELO name, the AUTH state, the per-plugin
 * connection slots and the current transaction (struct tx, tx.h).  Each
 * is freed on exactly one path: the transaction in session_tx_end(),
 * everything else in session_free().
 */
#ifndef SESSION_H
#define SESSION_H

#include <ev.h>
#include <stdint.h>
#include <sys/socket.h>

#include "body.h"
#include "chain.h"
#include "conn.h"
#include "data_stream.h"
#include "host_api.h"
#include "smtp_parse.h"
#include "smtphook.h"
#include "tx.h"

struct server;
struct session;

#define SESSION_INBUF CONN_INBUF
#define SESSION_OUTBUF_HIGH CONN_OUTBUF_HIGH
#define SESSION_LINE_MAX 2048		/* SPEC §3, incl. CRLF */

enum session_state {
	SESSION_CONNECT,	/* greeting not sent yet */
	SESSION_INIT,		/* waiting for HELO/EHLO */
	SESSION_READY,		/* HELO done, no transaction */
	SESSION_MAIL,		/* MAIL accepted, no recipient yet */
	SESSION_RCPT,		/* at least one recipient */
	SESSION_BODY,		/* DATA accepted, message streaming */
	SESSION_BDAT,		/* BDAT transaction: between or in chunks */
	SESSION_REFUSED,	/* 554 greeting: only QUIT (RFC 5321 §3.1) */
	SESSION_CLOSING,	/* final reply queued, close after flush */
};

/* Where an AUTH exchange (RFC 4954) stands. */
enum auth_phase {
	AUTH_IDLE,
	AUTH_WAIT_PLAIN,	/* our 334 awaits the PLAIN response */
	AUTH_WAIT_LOGIN_USER,	/* ... the LOGIN user name */
	AUTH_WAIT_LOGIN_PASS,	/* ... the LOGIN password */
	AUTH_HELD,		/* a check or a failed AUTH's 535 is held back */
};

/*
 * BDAT (RFC 3030): the chunk being read and the reply it will get.  The
 * octets of a chunk are always read to the end, whatever happens to the
 * transaction, so the command stream never loses step.
 */
struct bdat_state {
	uint64_t size;			/* octets announced by this BDAT */
	uint64_t remaining;		/* of those, not yet read */
	unsigned reading : 1;		/* the input holds chunk octets */
	unsigned last : 1;		/* BDAT ... LAST */
	unsigned discard : 1;		/* throw the octets away, then reply */
	unsigned error : 1;		/* that reply counts toward --max-errors */
	unsigned failed : 1;		/* this transaction failed at an earlier
					 * BDAT: later ones are discarded with
					 * code/enhanced until LAST or RSET */
	unsigned text_size : 1;		/* text is followed by the octets
					 * discarded (size) */
	int code;			/* the discard (or failure) reply */
	char enhanced[16];
	const char *text;		/* a static text */
};

struct session {
	struct server *srv;
	struct session *prev, *next;	/* server's list of live sessions */
	uint64_t id;
	char log_id[28];		/* "session 00002A", for log lines */
	const char *id_str;		/* "00002A": the end of log_id */
	struct conn conn;		/* the bytes (conn.c) */
	struct chain chain;		/* the plugins' verdicts (chain.c) */
	struct host_conn hc;		/* what the host API sees (host_api.c) */
	double started;
	enum session_state state;
	unsigned esmtp : 1, early_talker : 1;
	unsigned discard_line : 1, greeted : 1;
	unsigned connect_hooks_ran : 1;
	unsigned pipelined_ahead : 1;	/* more input followed the last command */
	unsigned proxy_wait : 1;	/* the PROXY header is still to come */
	unsigned per_ip_counted : 1;	/* peer_key is in srv->per_ip */
	unsigned xclient_ok : 1;	/* --xclient lets this peer use it */
	unsigned helo_from_xclient : 1;	/* a later HELO/EHLO keeps it */
	enum auth_phase auth;		/* the AUTH exchange (smtp_auth.c) */
	unsigned auth_failures;
	char *auth_login_user;		/* AUTH LOGIN: the user, until the password */
	char *auth_user;		/* authenticated identity */
	ev_timer auth_delay;
	uint8_t peer_key[16];
	char peer_addr[46], local_addr[46];
	unsigned peer_port, local_port;
	char *helo;

	unsigned long errors;
	unsigned counts[SMTP_VERB_COUNT][2];	/* [verb][0]=ok, [1]=total */
	unsigned transactions, accepted;

	struct tx *tx;
	struct conn_slot *slots;	/* one per plugin */
	struct body body;		/* the message octets (body.c) */
	struct bdat_state bdat;
	sh_session_info info;
};

/* session_accept - take a new connection; closes fd on failure */
void session_accept(struct server *srv, int fd, const struct sockaddr *peer,
    socklen_t peerlen);
/* session_accept_on - the same; implicit_tls: handshake before greeting */
void session_accept_on(struct server *srv, int fd, const struct sockaddr *peer,
    socklen_t peerlen, int implicit_tls);
/* session_accept_proxied - the same for a trusted balancer's connection
 * under --proxy-protocol: the PROXY header first (smtp_proxy.c), then the
 * client it names is the peer, and is counted against the per-IP limit */
void session_accept_proxied(struct server *srv, int fd,
    const struct sockaddr *peer, socklen_t peerlen);
/* session_reply - queue one reply (multi-line when text has '\n') */
void session_reply(struct session *s, int code, const char *enhanced,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* session_reply_host - a reply whose text is our hostname + tail */
void session_reply_host(struct session *s, int code, const char *enhanced,
    const char *tail);
/* session_close - queue nothing more; close once the output is flushed */
void session_close(struct session *s, const char *reason);
/* session_event_end - end of an event callback: flush, re-derive
 * watchers, and free the session if it died (the only place it is freed) */
void session_event_end(struct session *s);
/* session_resume_input - a pending verdict is settled: go on reading */
void session_process(struct session *s);
/* session_eof_reason - the close reason for a client that stopped sending
 * in the middle of something, else otherwise */
const char *session_eof_reason(const struct session *s, const char *otherwise);
/* session_shutdown - SIGTERM: 421 to idle sessions, mark the others */
void session_shutdown(struct session *s);
/* session_force_close - shutdown grace is over */
void session_force_close(struct session *s);

/* session_tx_end - the one end of every transaction: plugins get reset
 * when it was not accepted (SPEC §4), then its memory goes */
void session_tx_end(struct session *s, int accepted);

#endif
