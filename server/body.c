/*
 * body.c - the message body: two framers, the header and chunk walks, the
 * one drain (see body.h)
 *
 * A piece stays in the input buffer until every plugin has seen it; only
 * then is it consumed (body_busy() tells the connection not to move it).
 * A walk that pends is re-entered after the resume and goes on where it
 * stopped: the cursor remembers how far the header splitter got.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "body.h"
#include "log.h"

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

/* The state of one message while it streams. */
struct body_msg {
	struct body_cursor cur;
	struct data_decoder dec;	/* DATA */
	struct header_splitter *hs;	/* only during the header section */
	struct spares *hs_spares;	/* where hs goes back (NULL: free) */
	unsigned char *scratch;		/* --bare-lf=normalize output buffer */
	char *hdr_tmp;			/* a header past the store's budget */
	size_t hdr_fields;		/* header fields seen, stored or not */
	uint64_t hdr_section;		/* octets of the header section so far */
	size_t hops;			/* Received: fields seen */
};

void
body_init(struct body *b, struct chain *chain, struct conn *conn,
    struct tx *const *tx, const struct body_ops *ops, void *owner,
    const char *log_id, unsigned long long max_size,
    enum data_bare_policy bare)
{
	memset(b, 0, sizeof(*b));
	b->chain = chain;
	b->conn = conn;
	b->tx = tx;
	b->ops = ops;
	b->owner = owner;
	b->log_id = log_id;
	b->max_size = max_size;
	b->bare = bare;
}

/* set_phase - the one place the phase changes; the transaction's view
 * (sh_tx_info in_body, in_headers) follows it */
static void
set_phase(struct body *b, enum body_phase phase)
{
	struct tx *tx = *b->tx;

	b->phase = phase;
	if (tx != NULL) {
		/* A message refused before its body began (a BDAT data hook)
		 * never was in the body. */
		if (phase != BODY_DRAINING)
			tx->in_body = phase != BODY_IDLE;
		tx->in_headers = phase == BODY_HEADERS;
	}
}

/* msg_free - a message's state, all of it (NULL: nothing) */
static void
msg_free(struct body_msg *m)
{
	if (m == NULL)
		return;
	spares_give(m->hs_spares, m->hs);
	free(m->scratch);
	free(m->hdr_tmp);
	free(m);
}

int
body_begin(struct body *b, int bdat)
{
	struct body_msg *m = calloc(1, sizeof(*m));

	if (m != NULL) {
		m->hs_spares = b->hs_spares;
		m->hs = spares_take(b->hs_spares);
	}
	if (m == NULL || (m->hs == NULL && (m->hs = malloc(sizeof(*m->hs))) == NULL) ||
	    (!bdat && b->bare == DATA_BARE_NORMALIZE &&
	    (m->scratch = malloc(2 * CONN_INBUF)) == NULL)) {
		msg_free(m);
		return -1;
	}
	header_splitter_init(m->hs);
	if (!bdat)
		data_decoder_init(&m->dec, b->bare);
	msg_free(b->msg);
	b->msg = m;
	set_phase(b, BODY_HEADERS);
	return 0;
}

void
body_reset(struct body *b)
{
	msg_free(b->msg);
	b->msg = NULL;
	chain_reply_clear(&b->drain_reply);
	b->phase = BODY_IDLE;
}

int
body_busy(const struct body *b)
{
	return b->msg != NULL && b->msg->cur.busy;
}

void
body_new_chunk(struct body *b)
{
	if (b->msg != NULL)
		b->msg->cur = (struct body_cursor){ 0 };
}

int
body_saw_bare(const struct body *b)
{
	return b->msg != NULL && (b->msg->dec.saw_bare_lf ||
	    b->msg->dec.saw_bare_cr);
}

void
body_drain(struct body *b, sh_verdict v, struct chain_reply *r, int code,
    const char *enh, const char *text)
{
	if (b->phase == BODY_DRAINING)
		return;
	set_phase(b, BODY_DRAINING);
	b->drain_verdict = v;
	chain_reply_clear(&b->drain_reply);
	if (r != NULL && r->code != 0) {
		b->drain_reply = *r;
		*r = (struct chain_reply){ 0 };
	} else {
		b->drain_reply.code = code;
		snprintf(b->drain_reply.enhanced, sizeof(b->drain_reply.enhanced),
		    "%s", enh);
		b->drain_reply.text = strdup(text);
	}
	/* A header splitter is no longer needed. */
	if (b->msg != NULL) {
		free(b->msg->hs);
		b->msg->hs = NULL;
	}
}

sh_verdict
body_take_drain(struct body *b, struct chain_reply *r)
{
	*r = b->drain_reply;
	b->drain_reply = (struct chain_reply){ 0 };
	return b->drain_verdict;
}

/* piece_done - verdict of a header or chunk walk */
static void
piece_done(void *arg, sh_verdict v)
{
	struct body *b = arg;

	switch (v) {
	case SH_CONTINUE:
	case SH_ACCEPT:
		return;
	case SH_REJECT:
		body_drain(b, v, &b->chain->run.reply, 550, "5.7.1",
		    "Message rejected");
		return;
	case SH_TEMPFAIL:
		body_drain(b, v, &b->chain->run.reply, 451, "4.7.1",
		    "Temporary failure, please try again later");
		return;
	default:
		/* The only verdict that acts mid-body. */
		b->ops->disconnect(b->owner);
		return;
	}
}

/* header_nomem - an allocation for the header walk failed: 451 4.3.0 */
static void
header_nomem(struct body *b, const char *what)
{
	log_msg(LOG_WARN, "%s: message %s: out of memory for %s; refused with "
	    "451 4.3.0", b->log_id, (*b->tx)->id, what);
	body_drain(b, SH_TEMPFAIL, NULL, 451, "4.3.0",
	    "Out of memory, try again later");
}

/* deliver_header - hand one header field to the chain */
static void
deliver_header(struct body *b, const char *name, size_t nl,
    const char *value, size_t vl)
{
	struct tx *tx = *b->tx;
	struct body_msg *m = b->msg;
	union chain_arg *arg = &b->chain->run.arg;
	int stored;

	/* Hooks get NUL-terminated copies: the stored ones, or (past the
	 * store's budget) a per-field temporary.  Never skip a plugin for
	 * want of memory, nor keep a field from sh_tx_header(): the message
	 * fails instead. */
	if ((stored = tx_store_header(tx, name, nl, value, vl,
	    m->hdr_section)) < 0) {
		header_nomem(b, "the header store");
		return;
	}
	if (stored == 0) {
		arg->header.name = tx->hdr_store + tx->hdr_idx[tx->nhdr - 1].name;
		arg->header.value = tx->hdr_store + tx->hdr_idx[tx->nhdr - 1].value;
	} else {
		char *tmp = malloc(nl + vl + 2);

		free(m->hdr_tmp);
		if ((m->hdr_tmp = tmp) == NULL) {
			header_nomem(b, "a header field's copy");
			return;
		}
		memcpy(tmp, name, nl);
		tmp[nl] = '\0';
		memcpy(tmp + nl + 1, value, vl);
		tmp[nl + 1 + vl] = '\0';
		arg->header.name = tmp;
		arg->header.value = tmp + nl + 1;
	}
	arg->header.name_len = nl;
	arg->header.value_len = vl;
	chain_start(b->chain, SH_HOOK_HEADER, 1, piece_done, b);
}

/*
 * header_refused - a field past the header limits: the message is read to
 * its end and refused.  1 when it was.
 */
static int
header_refused(struct body *b, const char *name, size_t nl)
{
	struct body_msg *m = b->msg;
	const char *why;

	m->hdr_fields++;
	if (nl == 8 && strncasecmp(name, "Received", 8) == 0)
		m->hops++;
	if (m->hops > TX_HOPS_MAX) {
		/* RFC 5321 §6.3: a loop; Postfix's "too many hops". */
		body_drain(b, SH_REJECT, NULL, 554, "5.4.6",
		    "Too many hops (Received: fields), mail loop?");
		why = "too many Received: fields";
	} else if (m->hs->truncated) {
		body_drain(b, SH_REJECT, NULL, 552, "5.3.4",
		    "Message header field too long");
		why = "a header field over the size limit";
	} else if (m->hdr_fields > TX_HEADER_FIELDS_MAX) {
		body_drain(b, SH_REJECT, NULL, 552, "5.3.4",
		    "Too many header fields");
		why = "too many header fields";
	} else if (m->hdr_section > TX_HEADER_SECTION_MAX) {
		body_drain(b, SH_REJECT, NULL, 552, "5.3.4",
		    "Message header section too large");
		why = "a header section over the size limit";
	} else {
		return 0;
	}
	log_msg(LOG_INFO, "%s: message %s refused: %s", b->log_id, (*b->tx)->id,
	    why);
	return 1;
}

/* closed - the owner is closing (a DISCONNECT) or the message is gone */
static int
closed(const struct body *b)
{
	return b->conn->life != CONN_OPEN || *b->tx == NULL;
}

/*
 * deliver_piece - headers found in the current piece, then the piece as a
 * chunk.  BODY_WAIT while a verdict is pending.
 */
static enum body_status
deliver_piece(struct body *b)
{
	struct body_msg *m = b->msg;
	struct body_cursor *cur = &m->cur;
	struct tx *tx = *b->tx;
	const char *name, *value;
	size_t nl, vl, used;
	enum header_status hst;

	while (b->phase == BODY_HEADERS && b->conn->life == CONN_OPEN) {
		if (cur->hdr_off < cur->len) {
			hst = header_splitter_next(m->hs, cur->data + cur->hdr_off,
			    cur->len - cur->hdr_off, &used, &name, &nl, &value, &vl);
			cur->hdr_off += used;
			m->hdr_section += used;
		} else if (cur->end) {
			hst = header_splitter_finish(m->hs, &name, &nl, &value, &vl);
			if (hst == HEADER_NEED_MORE) {
				hst = HEADER_END;
				vl = 0;
			}
		} else {
			break;
		}
		if (hst == HEADER_FIELD) {
			if (header_refused(b, name, nl))
				break;
			deliver_header(b, name, nl, value, vl);
			if (b->chain->run.active)
				return BODY_WAIT;
			continue;
		}
		if (hst == HEADER_END) {
			/* A non-header line that began in an earlier piece was
			 * counted there: the body starts at its first octet. */
			tx->header_size = m->hdr_section - vl;
			set_phase(b, BODY_CONTENT);
			spares_give(m->hs_spares, m->hs);
			m->hs = NULL;
		}
		if (hst == HEADER_NEED_MORE && cur->hdr_off >= cur->len && !cur->end)
			break;
	}
	if (b->phase == BODY_DRAINING || b->conn->life != CONN_OPEN ||
	    cur->len == 0 || cur->chunk_started)
		return BODY_CONTINUE;
	cur->chunk_started = 1;
	b->chain->run.arg.chunk.data = cur->data;
	b->chain->run.arg.chunk.len = cur->len;
	chain_start(b->chain, SH_HOOK_CHUNK, 1, piece_done, b);
	return b->chain->run.active ? BODY_WAIT : BODY_CONTINUE;
}

/* deliver - the current piece to the walks, then consume it */
static enum body_status
deliver(struct body *b)
{
	if (b->phase != BODY_DRAINING && deliver_piece(b) == BODY_WAIT)
		return BODY_WAIT;
	if (closed(b))
		return BODY_CONTINUE;
	b->conn->in_start += b->msg->cur.in_used;
	b->msg->cur.busy = 0;
	return BODY_CONTINUE;
}

enum body_status
body_data_step(struct body *b)
{
	struct body_msg *m = b->msg;
	struct body_cursor *cur = &m->cur;
	struct conn *c = b->conn;

	if (!cur->busy) {
		struct tx *tx = *b->tx;
		unsigned char *in, *out;
		size_t inlen, outcap, used = 0, outlen = 0;
		enum data_status st;

		if (c->in == NULL || c->in_start == c->in_end)
			return BODY_NEED_INPUT;
		in = c->in + c->in_start;
		inlen = c->in_end - c->in_start;
		out = m->scratch != NULL ? m->scratch : in;
		outcap = m->scratch != NULL ? 2 * CONN_INBUF : inlen;
		st = data_decode(&m->dec, in, inlen, out, outcap, &used, &outlen);
		if (st == DATA_MORE && used == 0)
			return BODY_NEED_INPUT;	/* a '.' or ".\r" tail */
		*cur = (struct body_cursor){ .data = out, .len = outlen,
		    .in_used = used, .end = st == DATA_END, .busy = 1 };
		tx->body_size += outlen;
		if (b->max_size > 0 && tx->body_size > b->max_size)
			body_drain(b, SH_REJECT, NULL, 552, "5.3.4",
			    "Message size exceeds fixed maximum message size");
	}
	if (deliver(b) == BODY_WAIT)
		return BODY_WAIT;
	if (closed(b))
		return BODY_CONTINUE;
	return cur->end ? BODY_END : BODY_CONTINUE;
}

enum body_status
body_bdat_step(struct body *b, uint64_t *remaining, int last, int discard)
{
	struct conn *c = b->conn;

	if (!body_busy(b)) {
		struct tx *tx = *b->tx;
		size_t avail = c->in != NULL ? c->in_end - c->in_start : 0;
		size_t n = *remaining < avail ? (size_t)*remaining : avail;

		if (n == 0 && *remaining > 0)
			return BODY_NEED_INPUT;
		*remaining -= n;
		if (discard || tx == NULL || b->phase == BODY_DRAINING) {
			c->in_start += n;	/* never buffered, never delivered */
			return *remaining == 0 ? BODY_END : BODY_CONTINUE;
		}
		/* An empty piece at LAST still ends the header section (a
		 * message that is delivered has begun: b->msg is there). */
		b->msg->cur = (struct body_cursor){ .data = c->in != NULL ?
		    c->in + c->in_start : NULL, .len = n, .in_used = n,
		    .end = last && *remaining == 0, .busy = 1 };
		tx->body_size += n;
	}
	if (deliver(b) == BODY_WAIT)
		return BODY_WAIT;
	if (closed(b))
		return BODY_CONTINUE;
	return *remaining == 0 ? BODY_END : BODY_CONTINUE;
}
