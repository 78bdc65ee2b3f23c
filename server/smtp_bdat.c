/*
 * smtp_bdat.c - CHUNKING / BDAT (RFC 3030) for the state machine
 *
 * "BDAT <size> [LAST]" is followed by exactly <size> octets: no
 * dot-stuffing, no end marker.  They are read from the input buffer and
 * handed to the same header/chunk walks as a DATA body (deliver_piece in
 * smtp_session.c), as slices of that buffer.  Whatever happens to the
 * transaction, a BDAT's octets are always read before it is answered, so
 * the stream never desynchronises; a transaction that failed answers its
 * remaining BDATs with the same code until LAST, RSET, MAIL or HELO/EHLO.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "config.h"
#include "log.h"
#include "server.h"
#include "session.h"
#include "smtp_internal.h"

/*
 * A BDAT chunk streams through the same header and chunk hooks as DATA,
 * as slices of the input buffer, but its octets are counted, not decoded:
 * exact bytes, no dot-unstuffing, no end marker.  Neither a bare LF nor a
 * "." line can end a chunk or start a command, so there is nothing to
 * smuggle and the bare-LF policy (DATA only) does not apply.
 *
 * Every BDAT is answered after all its octets have been read, whatever
 * became of the transaction, so the client never loses step
 * (docs/PROTOCOL.md, "CHUNKING"):
 * - bad syntax: nobody knows how many octets follow: 501, then 421 and
 *   the connection closes;
 * - out of sequence (no HELO, MAIL or valid recipient): the octets are
 *   discarded, 503 5.5.1 / 554 5.5.1;
 * - the announced size takes the message over --max-size: the chunk is
 *   discarded undelivered, 552 5.3.4;
 * - a refusal by the data hook (first BDAT) or a header/chunk hook: the
 *   rest of that chunk is drained and the refusal answers that BDAT
 *   (DISCONNECT acts at once).
 * A transaction that failed at a BDAT other than LAST is ended at once
 * (plugins get reset), and the BDATs the client had already pipelined
 * ("accept and discard", RFC 3030 §2) are read and answered with the
 * same code (a 4xx stays a 4xx) until LAST, RSET, MAIL or HELO/EHLO.
 */

/* bdat_begin - the octets of a chunk of size follow in the input */
static void
bdat_begin(struct session *s, unsigned long long size, int last)
{
	struct bdat_state *bd = &s->bdat;

	bd->size = bd->remaining = size;
	bd->last = last != 0;
	bd->reading = 1;
	bd->discard = bd->error = 0;
	body_new_chunk(&s->body);
}

/* bdat_discard - read the chunk, deliver nothing, then reply (error:
 * the reply counts toward --max-errors) */
static void
bdat_discard(struct session *s, int code, const char *enh, int error,
    const char *text)
{
	struct bdat_state *bd = &s->bdat;

	bd->discard = 1;
	bd->error = error != 0;
	bd->code = code;
	if (enh != bd->enhanced)
		snprintf(bd->enhanced, sizeof(bd->enhanced), "%s", enh);
	bd->text = text;
	bd->text_size = 0;
}

/* bdat_fail - the transaction fails at this BDAT before any of its
 * octets were delivered: plugins are reset now, the chunk is discarded,
 * and code/enh answer it and the BDATs pipelined behind it */
static void
bdat_fail(struct session *s, int code, const char *enh, int error,
    const char *text)
{
	session_tx_end(s, 0);
	session_enter(s, SESSION_READY);
	bdat_discard(s, code, enh, error, text);
	s->bdat.failed = !s->bdat.last;
}

/* bdat_parse - BDAT's argument; on a syntax error the connection closes
 * (the end of the chunk is unknown) and -1 is returned */
static int
bdat_parse(struct session *s, const char *args, size_t len)
{
	unsigned long long size;
	int last;

	if (smtp_parse_bdat_arg(args, len, &size, &last) == 0) {
		bdat_begin(s, size, last);
		return 0;
	}
	protocol_error(s, 501, "5.5.4", "Syntax: BDAT size [LAST]");
	session_reply(s, 421, "4.5.0", "%s Cannot find the end of that BDAT "
	    "chunk, closing connection", s->info.hostname);
	session_close(s, "BDAT syntax error");
	return -1;
}

/* bdat_refuse - a BDAT refused before its state is looked at (sent too
 * early without PIPELINING): read and discard its octets, then reply */
void
bdat_refuse(struct session *s, const char *args, size_t len, int code,
    const char *enh, const char *text)
{
	if (bdat_parse(s, args, len) < 0)
		return;
	/* Inside a transaction the message would miss this chunk. */
	if (s->tx != NULL && (s->state == SESSION_RCPT || s->state == SESSION_BDAT))
		bdat_fail(s, code, enh, 1, text);
	else
		bdat_discard(s, code, enh, 1, text);
}

static void
bdat_data_done(void *owner, sh_verdict v)
{
	struct session *s = owner;

	switch (v) {
	case SH_CONTINUE:
	case SH_ACCEPT:
		break;
	case SH_REJECT:
	case SH_TEMPFAIL:
		/* The refusal answers this BDAT, after its octets. */
		session_enter(s, SESSION_BDAT);
		body_drain(&s->body, v, &s->chain.run.reply, v == SH_REJECT ? 554 : 451,
		    v == SH_REJECT ? "5.7.1" : "4.7.1", v == SH_REJECT ?
		    "Message refused" : "Temporary failure, please try again later");
		return;
	default:
		refused(s, v, 554, "5.7.1", "Message refused");	/* 421, close */
		return;
	}
	if (body_begin(&s->body, 1) < 0) {
		bdat_fail(s, 451, "4.3.0", 0, "Out of memory, try again later");
		return;
	}
	session_enter(s, SESSION_BDAT);
}

void
cmd_bdat(struct session *s, const char *args, size_t len)
{
	struct bdat_state *bd = &s->bdat;
	struct tx *tx = s->tx;
	unsigned long long max = s->srv->cfg->max_size;

	if (bdat_parse(s, args, len) < 0)
		return;
	if (bd->failed && s->state != SESSION_READY)
		bd->failed = 0;		/* STARTTLS reset the session */
	if (bd->failed) {
		bdat_discard(s, bd->code, bd->enhanced, 0, "Message refused at an "
		    "earlier BDAT");
		bd->text_size = 1;
		return;
	}
	switch (s->state) {
	case SESSION_REFUSED:
		bdat_discard(s, 503, "5.5.1", 1, "Service refused; only QUIT is "
		    "accepted");
		return;
	case SESSION_INIT:
		bdat_discard(s, 503, "5.5.1", 1, "Send HELO/EHLO first");
		return;
	case SESSION_READY:
		bdat_discard(s, 503, "5.5.1", 1, "Need MAIL and RCPT before BDAT");
		return;
	case SESSION_MAIL:
		/* RFC 5321 §3.3, as for DATA. */
		bdat_discard(s, 554, "5.5.1", 1, "No valid recipients");
		return;
	default:
		break;
	}
	/* RFC 1870 with RFC 3030: the announced size is known before the
	 * octets, so the chunk that would go over is refused whole. */
	if (max > 0 && bd->size > max - tx->body_size) {
		bdat_fail(s, 552, "5.3.4", 0, "Message size exceeds fixed maximum "
		    "message size");
		return;
	}
	if (s->state == SESSION_BDAT)
		return;			/* the next chunk of the message */
	/* The first BDAT: the data hook, Received: first as for DATA. */
	tx->bdat = 1;
	if (tx->trace == NULL && session_add_received(s) < 0) {
		bdat_fail(s, 451, "4.3.0", 0, "Out of memory, try again later");
		return;
	}
	chain_start(&s->chain, SH_HOOK_DATA, 0, bdat_data_done, s);
}

/* bdat_end - every octet of the chunk is in: its reply, or the eom walk */
static void
bdat_end(struct session *s)
{
	struct bdat_state *bd = &s->bdat;
	struct tx *tx = s->tx;

	bd->reading = 0;
	/* Input after the chunk did not wait for this reply. */
	s->pipelined_ahead = s->conn.in != NULL && s->conn.in_start < s->conn.in_end;
	if (bd->discard || tx == NULL) {
		bd->discard = 0;
		if (bd->error)
			protocol_error(s, bd->code, bd->enhanced, bd->text);
		else if (bd->text_size)
			session_reply(s, bd->code, bd->enhanced[0] != '\0' ?
			    bd->enhanced : NULL, "%s; %llu octets discarded",
			    bd->text, (unsigned long long)bd->size);
		else
			session_reply(s, bd->code, bd->enhanced[0] != '\0' ?
			    bd->enhanced : NULL, "%s", bd->text);
	} else if (s->body.phase == BODY_DRAINING) {
		struct chain_reply r;
		sh_verdict v = body_take_drain(&s->body, &r);
		char enh[16] = "";
		int code = 0;

		reply_verdict_as(s, v, &r, v == SH_TEMPFAIL ? 451 : 550,
		    v == SH_TEMPFAIL ? "4.7.1" : "5.7.1", v == SH_TEMPFAIL ?
		    "Temporary failure" : "Message rejected", &code, enh);
		chain_reply_clear(&r);
		session_tx_end(s, 0);
		if (s->state == SESSION_BDAT)
			session_enter(s, SESSION_READY);
		if (!bd->last && code != 0) {
			bd->failed = 1;
			bd->code = code;
			snprintf(bd->enhanced, sizeof(bd->enhanced), "%s", enh);
		}
	} else if (!bd->last) {
		cmd_ok(s, SMTP_VERB_BDAT);
		session_reply(s, 250, "2.0.0", "%llu octets received",
		    (unsigned long long)bd->size);
	} else {
		cmd_ok(s, SMTP_VERB_BDAT);
		chain_start(&s->chain, SH_HOOK_EOM, 0, eom_done, s);
	}
	if (bd->last)
		bd->failed = 0;
}

/*
 * bdat_step - the chunk octets the input buffer holds, delivered as one
 * piece (a chunk larger than the buffer comes in several) or dropped
 * (body.c); its reply once all of them are in.
 */
enum step
bdat_step(struct session *s)
{
	struct bdat_state *bd = &s->bdat;

	switch (body_bdat_step(&s->body, &bd->remaining, bd->last, bd->discard)) {
	case BODY_NEED_INPUT:
		return STEP_NEED_INPUT;
	case BODY_WAIT:
		return STEP_WAIT;
	case BODY_END:
		bdat_end(s);
		return STEP_CONTINUE;
	default:
		return STEP_CONTINUE;
	}
}
