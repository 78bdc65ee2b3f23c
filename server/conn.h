/*
 * conn.h - one client connection's bytes: non-blocking socket I/O, TLS,
 * buffers, backpressure, the idle timer
 *
 * The connection reads into its input buffer and writes out its output
 * buffer; what the bytes mean is its owner's business.  It reports every
 * event through the one callback table its owner gave it and never writes
 * anything of its own.  Watcher interest is derived from buffer state
 * after every event (conn_update), so a full input buffer, a backlog of
 * replies, or a closing connection stops reading by itself.  Buffers
 * exist only while they hold data (the input buffer also while its owner
 * borrows slices of it), which keeps an idle connection down to its
 * struct.
 *
 * Memory ownership: struct conn owns the fd, the watchers, both buffers
 * and the TLS state; conn_close() releases all of them.
 */
#ifndef CONN_H
#define CONN_H

#include <ev.h>
#include <stddef.h>

#define CONN_INBUF (64 * 1024)		/* read buffer; a command line is <= 2048 */
#define CONN_OUTBUF_HIGH (64 * 1024)	/* stop reading commands above this */
#define CONN_INBUF_SPARES 16		/* x 64 KiB kept by the pool */

#define CONN_HOLD_KEEP 0x1
#define CONN_HOLD_PIN 0x2

/* Where a connection is in its life; it only moves down the list. */
enum conn_life {
	CONN_OPEN,
	CONN_CLOSING,		/* the final reply is queued: close once out */
	CONN_DEAD,		/* free at the end of this event */
};

/* TLS on the connection. */
enum conn_tls {
	CONN_PLAIN,
	CONN_TLS_AFTER_FLUSH,	/* STARTTLS: handshake once the output is out,
				 * read nothing more as plaintext */
	CONN_TLS_HANDSHAKE,	/* handshake in progress */
	CONN_TLS_ON,
};

struct ssl_st;
struct ssl_ctx_st;
struct tls_names;

/*
 * Spare buffers, shared by the connections of one loop: a connection
 * takes an input buffer for each event that brings input and gives it
 * back when it is empty again, so a keep-alive client costs no malloc and
 * free of 64 KiB per command; likewise a CONN_OUTBUF_FIRST output buffer
 * per batch of replies (a malloc and free per reply were 1,000
 * instructions per message, issue 16).  Idle connections hold neither.
 */
#define CONN_OUTBUF_FIRST 1024
#define CONN_OUTBUF_SPARES 64

struct conn_bufpool {
	unsigned char *spare[CONN_INBUF_SPARES];
	size_t n;
	char *out_spare[CONN_OUTBUF_SPARES];
	size_t nout;
};

/* What a connection tells its owner.  Every callback runs inside a libev
 * callback of the connection; after it, the connection calls event_end. */
struct conn_events {
	/* input - octets were added to the input buffer */
	void (*input)(void *owner);
	/* eof - the peer shut down its sending side (conn.eof is set) */
	void (*eof)(void *owner);
	/* drained - the output buffer was written out */
	void (*drained)(void *owner);
	/* idle - --timeout passed without activity; return 1 to be given
	 * another full timeout (the owner is the slow one), else 0 */
	int (*idle)(void *owner);
	/* paused - the pause of conn_pause() is over */
	void (*paused)(void *owner);
	/* tls_up - a handshake finished (conn.tls_names is set) */
	void (*tls_up)(void *owner);
	/* no_buffer - no input buffer could be allocated */
	void (*no_buffer)(void *owner);
	/* input_hold - how the owner uses the input buffer: CONN_HOLD_KEEP
	 * keep it even when empty (a message body is being read),
	 * CONN_HOLD_PIN its contents must not move either (the owner
	 * holds pointers into it) */
	unsigned (*input_hold)(void *owner);
	/* event_end - the event is over: flush, conn_update, or free */
	void (*event_end)(void *owner);
};

struct conn {
	int fd;
	struct ev_loop *loop;
	const struct conn_events *ev;
	void *owner;
	const char *log_id;		/* "session 00002A" */
	struct conn_bufpool *pool;
	double timeout;			/* --timeout: idle and per read */
	ev_io rio, wio;
	ev_timer idle;			/* idle timeout, lazily re-armed */
	double last_activity;
	double handshake_deadline;
	enum conn_life life;
	enum conn_tls tls;
	unsigned eof : 1;		/* the peer stopped sending */
	unsigned pausing : 1;		/* the idle timer times conn_pause() */
	unsigned tls_want_write : 1;	/* OpenSSL needs the socket writable */
	struct ssl_st *ssl;		/* NULL: plaintext */
	struct tls_names *tls_names;	/* set once TLS is up */
	struct ssl_ctx_st *tls_ctx;	/* for tls_after_flush */
	const char *close_reason;	/* the first reason given wins */

	unsigned char *in;		/* CONN_INBUF octets when allocated */
	size_t in_start, in_end;
	char *out;
	size_t out_len, out_sent, out_cap;
};

/* conn_init - watch fd for owner; starts the idle timer */
void conn_init(struct conn *c, int fd, struct ev_loop *loop,
    struct conn_bufpool *pool, double timeout, const struct conn_events *ev,
    void *owner, const char *log_id);
/* conn_close - stop everything, close the fd, give the buffers back */
void conn_close(struct conn *c);
/* conn_kill - free at the end of this event; the first reason wins */
void conn_kill(struct conn *c, const char *reason);
/* conn_close_after_flush - close once the output is written */
void conn_close_after_flush(struct conn *c, const char *reason);
/* conn_out_reserve - room for n more output octets; 0 or -1 */
int conn_out_reserve(struct conn *c, size_t n);
/* conn_flush - write the output: 0 all sent, 1 some left, -1 dead */
int conn_flush(struct conn *c);
/* conn_pending_output - octets queued and not yet written */
size_t conn_pending_output(const struct conn *c);
/* conn_update - after an event: release an empty input buffer, start a
 * handshake that waited for the output, derive the watchers */
void conn_update(struct conn *c);
/* conn_touch - activity now (the idle timer counts from here) */
void conn_touch(struct conn *c);
/* conn_pause - stop the idle timer's idle duty for seconds, then call
 * paused (the greeting pause) */
void conn_pause(struct conn *c, double seconds);
/* conn_unpause - end a pause early: the idle timer is back on idle duty */
void conn_unpause(struct conn *c);
/* conn_start_tls - begin the server side of a handshake now; -1 failed */
int conn_start_tls(struct conn *c, struct ssl_ctx_st *ctx);
/* conn_start_tls_after_flush - STARTTLS: nothing more is read as
 * plaintext; the handshake starts once the output is written */
void conn_start_tls_after_flush(struct conn *c, struct ssl_ctx_st *ctx);
/* conn_peer_gone - after EOF: has the peer closed both directions? */
int conn_peer_gone(const struct conn *c);
/* conn_bufpool_free - free the spare buffers */
void conn_bufpool_free(struct conn_bufpool *pool);

#endif
