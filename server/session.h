/*
 * session.h - one SMTP connection: its buffers, transaction, chain walk
 *
 * Memory ownership: struct session owns its fd, its watchers, the input
 * and output buffers (allocated while there is data, freed when empty so
 * an idle connection costs only this struct), the HELO name, the
 * per-plugin connection slots and the current transaction.  struct tx
 * owns the envelope (sender and recipients, one block each), the header
 * store, the trace block and the per-plugin transaction slots.  Both are
 * freed on exactly one path each: tx_end() and session_free().
 */
#ifndef SESSION_H
#define SESSION_H

#include <ev.h>
#include <stdint.h>
#include <sys/socket.h>

#include "data_stream.h"
#include "smtp_parse.h"
#include "smtphook.h"

struct server;
struct session;

#define SESSION_INBUF (64 * 1024)	/* read buffer; a command line is <= 2048 */
#define SESSION_OUTBUF_HIGH (64 * 1024)	/* stop reading commands above this */
#define SESSION_LINE_MAX 2048		/* SPEC §3, incl. CRLF */
#define REPLY_TEXT_MAX 2000
/* Header section limits (docs/PROTOCOL.md); past any of them the message
 * is read to its end and refused.  One field is at most HEADER_FIELD_MAX
 * (data_stream.h) octets unfolded. */
#define TX_HEADER_FIELDS_MAX 1000	/* fields per message: 552 5.3.4 */
#define TX_HEADER_SECTION_MAX (1024 * 1024)	/* octets: 552 5.3.4 */
#define TX_HOPS_MAX 100			/* Received: fields: 554 5.4.6 */

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

/* A reply chosen by a plugin (or a timeout); text is malloc'd. */
struct chain_reply {
	int code;
	char enhanced[16];
	char *text;
};

typedef void (*chain_done_fn)(struct session *s, sh_verdict verdict);

/* The chain walk in progress for one event (see chain.c). */
struct chain_run {
	sh_hook_id hook;
	size_t next;			/* next plugin to ask */
	size_t decider;			/* plugin whose verdict decided */
	unsigned active : 1;		/* a walk is in progress */
	unsigned fanout : 1;		/* header/chunk: ACCEPT = skip me */
	chain_done_fn done;
	struct chain_reply reply;	/* reply of the deciding plugin */
	union {
		struct { char *name; int extended; } helo;
		sh_address *addr;		/* owned by the walk for RCPT */
		char *text;
		struct { const char *name, *value; size_t name_len, value_len; } header;
		struct { const unsigned char *data; size_t len; } chunk;
		struct { const char *mechanism; char *user, *password; } auth;
	} arg;
};

/* The one pending verdict a session may wait for. */
struct pending_state {
	uint64_t generation;		/* token; 0 when none */
	size_t plugin;
	sh_cancel_fn cancel;
	void *cancel_arg;
	unsigned in_hook : 1;		/* sh_pend() called in the current hook */
	unsigned waiting : 1;		/* hook returned PENDING, no verdict yet */
	unsigned resolved : 1;		/* sh_resume() delivered the verdict */
	sh_verdict verdict;
	struct chain_reply reply;
	ev_timer timeout;
	ev_timer kick;			/* acts on a verdict on the next loop turn */
};

struct conn_slot {
	void *data;
	sh_free_fn destroy;
};

struct tx_slot {
	void *data;
	sh_free_fn destroy;
	unsigned skip_header : 1;	/* ACCEPTed a header: no more headers */
	unsigned skip_chunk : 1;	/* ACCEPTed a chunk: no more chunks */
};

struct tx_header_ref {
	uint32_t name, value;		/* offsets into hdr_store */
};

struct tx {
	char id[32];
	sh_address *sender;		/* one malloc'd block */
	sh_address **rcpts;		/* each one block */
	size_t nrcpts, rcpt_cap;
	int smtputf8;
	uint64_t body_size;
	struct data_decoder dec;
	struct header_splitter *hs;	/* only during the header section */
	unsigned in_body : 1, in_headers : 1, draining : 1, bdat : 1;
	sh_verdict drain_verdict;	/* the reply owed after draining */
	struct chain_reply drain_reply;
	char *hdr_store;		/* "name\0value\0" ..., <= 64 KiB */
	size_t hdr_len;
	struct tx_header_ref *hdr_idx;
	size_t nhdr, hdr_cap;
	char *trace;			/* Received: + added headers */
	size_t trace_len;
	unsigned char *scratch;		/* --bare-lf=normalize output buffer */
	char *hdr_tmp;			/* a header past the store's budget */
	size_t hdr_fields;		/* header fields seen, stored or not */
	size_t hdr_section;		/* octets of the header section so far */
	uint64_t header_size;		/* where the body starts, once known */
	size_t hops;			/* Received: fields seen */
	sh_tx_info info;
	size_t nslots;
	struct tx_slot slots[];		/* one per plugin */
};

/* Where the delivery of the current piece of message stands. */
struct body_cursor {
	unsigned char *data;		/* decoded bytes (in the input buffer) */
	size_t len;
	size_t in_used;			/* input bytes to consume afterwards */
	size_t hdr_off;			/* header splitter progress in data */
	unsigned end : 1;		/* the end marker was seen */
	unsigned busy : 1;		/* a piece is being delivered */
	unsigned chunk_started : 1;	/* headers done, chunk walk started */
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
	int code;			/* the discard (or failure) reply */
	char enhanced[16];
	char text[160];
};

struct session {
	struct server *srv;
	struct session *prev, *next;	/* server's list of live sessions */
	uint64_t id;
	char id_str[20];
	int fd;
	ev_io rio, wio;
	ev_timer idle;			/* idle timeout, lazily re-armed */
	double last_activity;
	double started;
	enum session_state state;
	unsigned esmtp : 1, early_talker : 1, dead : 1, close_after_flush : 1;
	unsigned eof : 1, discard_line : 1, greeted : 1;
	unsigned connect_hooks_ran : 1;
	unsigned pipelined_ahead : 1;	/* more input followed the last command */
	unsigned tls_handshaking : 1, tls_want_write : 1;
	unsigned starttls_pending : 1;	/* handshake once "220 Ready" is out */
	struct ssl_st *ssl;		/* NULL: plaintext */
	struct tls_names *tls_names;	/* set once TLS is up */
	double handshake_deadline;
	unsigned auth_step : 2;		/* AUTH_STEP_*: a 334 awaits its answer */
	unsigned auth_delaying : 1;	/* a failed AUTH's reply is held back */
	unsigned auth_failures;
	char *auth_login_user;		/* AUTH LOGIN: the user, until the password */
	char *auth_user;		/* authenticated identity */
	ev_timer auth_delay;
	uint8_t peer_key[16];
	char peer_addr[46], local_addr[46];
	unsigned peer_port, local_port;
	char *helo;

	unsigned char *in;		/* SESSION_INBUF octets when allocated */
	size_t in_start, in_end;
	char *out;
	size_t out_len, out_sent, out_cap;

	unsigned long errors;
	unsigned counts[SMTP_VERB_COUNT][2];	/* [verb][0]=ok, [1]=total */
	unsigned transactions, accepted;
	const char *close_reason;

	struct tx *tx;
	struct conn_slot *slots;	/* one per plugin */
	struct chain_run run;
	struct pending_state pend;
	struct body_cursor body;
	struct bdat_state bdat;
	sh_session_info info;
};

/* session_accept - take a new connection; closes fd on failure */
void session_accept(struct server *srv, int fd, const struct sockaddr *peer,
    socklen_t peerlen);
/* session_accept_on - the same; implicit_tls: handshake before greeting */
void session_accept_on(struct server *srv, int fd, const struct sockaddr *peer,
    socklen_t peerlen, int implicit_tls);
/* session_reply - queue one reply (multi-line when text has '\n') */
void session_reply(struct session *s, int code, const char *enhanced,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
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

/* I/O layer (conn.c) */
int conn_flush(struct session *s);
void conn_update_watchers(struct session *s);
int conn_out_reserve(struct session *s, size_t n);
void conn_start(struct session *s);
void conn_start_idle(struct session *s);
void conn_release_buffers(struct session *s);
void conn_inbuf_put(struct server *srv, unsigned char *buf);
int conn_start_tls(struct session *s);
/* session_tls_up - the handshake finished (smtp_session.c) */
void session_tls_up(struct session *s);

/* Transactions (tx.c) */
struct tx *tx_new(struct session *s);
void tx_end(struct session *s, int accepted);
int tx_set_sender(struct tx *tx, const struct smtp_mail_arg *a);
sh_address *address_new(const struct smtp_mail_arg *a);
int tx_append_rcpt(struct tx *tx, sh_address *rcpt);
int tx_store_header(struct tx *tx, const char *name, size_t nl,
    const char *value, size_t vl);
int tx_add_header(struct tx *tx, const char *name, const char *value);
int tx_build_received(struct session *s);
void chain_reply_clear(struct chain_reply *r);

#endif
