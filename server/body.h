/*
 * body.h - the message body: one sink for message octets, two framers
 *
 * A message reaches the plugins the same way whatever carries it: its
 * octets are cut into pieces (slices of the connection's input buffer,
 * never copied, except with --bare-lf=normalize), split into header
 * fields for the header walk, and handed to the chunk walk.  Two framers
 * find the pieces: DATA (dot-unstuffing up to the end marker,
 * data_stream.c) and BDAT (counted octets, RFC 3030).  A refusal mid-body
 * (a plugin's REJECT or TEMPFAIL, a limit) starts the one drain: the rest
 * is read and dropped, and the refusal is kept for the session to answer
 * once the framer reaches its end.  The body writes no reply: a
 * DISCONNECT goes up through body_ops, the rest through the return values
 * and body_take_drain().
 *
 * Memory ownership: struct body owns the per-message state (struct
 * body_msg, allocated by body_begin: the cursor, the decoder, the header
 * splitter, the normalize scratch buffer, a header field's temporary
 * copy) and the drain reply, freed in body_reset(); an idle connection
 * carries none of it.  It borrows the chain, the
 * connection and the session's transaction.
 */
#ifndef BODY_H
#define BODY_H

#include <stdint.h>

#include "chain.h"
#include "conn.h"
#include "data_stream.h"
#include "tx.h"

enum body_phase {
	BODY_IDLE,		/* no message streaming */
	BODY_HEADERS,		/* in the header section */
	BODY_CONTENT,		/* past the header section */
	BODY_DRAINING,		/* refused: read to the end, deliver nothing */
};

enum body_status {
	BODY_CONTINUE,		/* a piece was consumed: call again */
	BODY_NEED_INPUT,	/* the input buffer holds no more of it */
	BODY_WAIT,		/* a walk waits for a pending verdict */
	BODY_END,		/* the framer's end: end marker, chunk end */
};

struct body_ops {
	/* disconnect - a plugin answered DISCONNECT mid-body: the owner
	 * replies with the chain's run.reply and closes */
	void (*disconnect)(void *owner);
};

struct body_msg;

struct body {
	struct chain *chain;
	struct conn *conn;
	struct tx *const *tx;		/* the owner's current transaction */
	const char *log_id;
	const struct body_ops *ops;
	void *owner;
	unsigned long long max_size;	/* --max-size; 0: none */
	enum data_bare_policy bare;

	struct spares *hs_spares;	/* header splitters to reuse, or NULL */
	enum body_phase phase;
	struct body_msg *msg;		/* while a message streams (body.c) */
	sh_verdict drain_verdict;	/* the reply owed after draining */
	struct chain_reply drain_reply;
};

/* body_init - an idle body for the owner's messages */
void body_init(struct body *b, struct chain *chain, struct conn *conn,
    struct tx *const *tx, const struct body_ops *ops, void *owner,
    const char *log_id, unsigned long long max_size,
    enum data_bare_policy bare);
/* body_begin - a message starts, framed by DATA (bdat 0) or BDAT; -1
 * when out of memory (nothing kept) */
int body_begin(struct body *b, int bdat);
/* body_reset - the message is over: free its state (idempotent) */
void body_reset(struct body *b);
/* body_drain - refuse the rest of the message: read it, deliver nothing,
 * and keep v with reply r (taken over when r has a code) or with
 * code/enh/text for the end.  A second drain keeps the first. */
void body_drain(struct body *b, sh_verdict v, struct chain_reply *r,
    int code, const char *enh, const char *text);
/* body_take_drain - after the end of a drained message: its verdict, and
 * its reply moved into *r (cleared by the caller) */
sh_verdict body_take_drain(struct body *b, struct chain_reply *r);
/* body_busy - a piece is being delivered (the input must not move) */
int body_busy(const struct body *b);
/* body_new_chunk - a BDAT chunk begins: its pieces start afresh */
void body_new_chunk(struct body *b);
/* body_data_step - DATA: decode and deliver the next piece */
enum body_status body_data_step(struct body *b);
/* body_bdat_step - BDAT: deliver up to *remaining octets of the chunk
 * (last: it is the message's last chunk); discard: read and drop them
 * (so does a draining message).  BODY_END once *remaining is 0. */
enum body_status body_bdat_step(struct body *b, uint64_t *remaining, int last,
    int discard);
/* body_saw_bare - the DATA body held a bare CR or LF */
int body_saw_bare(const struct body *b);

#endif
