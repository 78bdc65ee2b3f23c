/*
 * test_bdat.c - BDAT (RFC 3030 CHUNKING) through the real core and the
 * in-process chain (sdk/harness): what the data, header, chunk and eom
 * hooks see, the replies, a chunk larger than the input buffer with a
 * PENDING verdict at every piece, refusals mid-stream, --max-size,
 * --no-pipelining, and the DSN parameters (RFC 3461) as plugins get them.
 *
 * One linked-in plugin, "rec", records everything into the global R and
 * answers what the test scripted for each hook.
 */
#include <criterion/criterion.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sh_harness.h"

#define BODY_MAX (512 * 1024)

static struct rec {
	/* script */
	sh_verdict data_v, chunk_v, eom_v;
	int chunk_v_after;		/* chunk_v from this chunk call on (0: all) */
	int pend_chunks;		/* every chunk answers PENDING, resumed by a timer */
	/* what happened */
	int data_calls, eom_calls, resets, chunk_calls;
	int bdat_at_data, bdat_at_eom;
	size_t max_piece;
	unsigned char body[BODY_MAX];
	size_t body_len;
	char headers[4096];
	char params[1024];		/* "MAIL k=v k=v|RCPT k=v|" */
	char eom_params[1024];		/* the same read through sh_tx() at eom */
	uint64_t eom_size;
	/* PENDING */
	ev_timer timer;
	sh_pending tok;
	int pending;
} R;

static void
rec_reset_state(void)
{
	memset(&R, 0, sizeof(R));
	R.data_v = R.chunk_v = SH_CONTINUE;
	R.eom_v = SH_ACCEPT;
}

static void
add_params(char *out, size_t cap, const char *what, const sh_address *a)
{
	size_t i, n = strlen(out);

	n += (size_t)snprintf(out + n, cap - n, "%s", what);
	for (i = 0; i < a->nparams && n < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, " %s=%s", a->params[i].key,
		    a->params[i].value != NULL ? a->params[i].value : "(null)");
	if (n < cap)
		snprintf(out + n, cap - n, "|");
}

static sh_verdict
rec_mail(sh_ctx *ctx, const sh_address *sender)
{
	(void)ctx;
	add_params(R.params, sizeof(R.params), "MAIL", sender);
	return SH_CONTINUE;
}

static sh_verdict
rec_rcpt(sh_ctx *ctx, const sh_address *rcpt)
{
	(void)ctx;
	add_params(R.params, sizeof(R.params), "RCPT", rcpt);
	return SH_CONTINUE;
}

static sh_verdict
rec_data(sh_ctx *ctx)
{
	const sh_tx_info *tx = sh_tx(ctx);

	R.data_calls++;
	R.bdat_at_data = tx != NULL && tx->bdat;
	if (R.data_v == SH_TEMPFAIL)
		return sh_tempfail(ctx, 452, "4.3.1", "No room today");
	return R.data_v;
}

static sh_verdict
rec_header(sh_ctx *ctx, const char *name, size_t nl, const char *value, size_t vl)
{
	size_t n = strlen(R.headers);

	(void)ctx;
	snprintf(R.headers + n, sizeof(R.headers) - n, "%.*s=%.*s|", (int)nl, name,
	    (int)vl, value);
	return SH_CONTINUE;
}

static void
resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)w, (void)revents;
	R.pending = 0;
	sh_resume(R.tok, SH_CONTINUE, 0, NULL, NULL);
}

static sh_verdict
rec_chunk(sh_ctx *ctx, const unsigned char *data, size_t len)
{
	R.chunk_calls++;
	if (len > R.max_piece)
		R.max_piece = len;
	if (R.body_len + len <= BODY_MAX) {
		memcpy(R.body + R.body_len, data, len);
		R.body_len += len;
	}
	if (R.chunk_v != SH_CONTINUE && R.chunk_calls >= R.chunk_v_after)
		return R.chunk_v;
	if (R.pend_chunks) {
		R.tok = sh_pend(ctx, NULL, NULL);
		R.pending = 1;
		ev_timer_init(&R.timer, resume_cb, 0.002, 0);
		ev_timer_start(sh_loop(ctx), &R.timer);
		return SH_PENDING;
	}
	return SH_CONTINUE;
}

static sh_verdict
rec_eom(sh_ctx *ctx)
{
	const sh_tx_info *tx = sh_tx(ctx);
	size_t i;

	R.eom_calls++;
	R.bdat_at_eom = tx != NULL && tx->bdat;
	if (tx != NULL) {
		R.eom_size = tx->body_size;
		add_params(R.eom_params, sizeof(R.eom_params), "MAIL", tx->sender);
		for (i = 0; i < tx->nrcpts; i++)
			add_params(R.eom_params, sizeof(R.eom_params), "RCPT",
			    tx->rcpts[i]);
	}
	return R.eom_v;
}

static void
rec_reset(sh_ctx *ctx)
{
	(void)ctx;
	R.resets++;
}

static const sh_plugin rec_plugin = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "rec",
	.mail = rec_mail, .rcpt = rec_rcpt, .data = rec_data,
	.header = rec_header, .chunk = rec_chunk, .eom = rec_eom,
	.reset = rec_reset,
};

/* session - a harness with rec, EHLO done, MAIL and RCPT accepted */
static sh_harness *
session(const char *opt, const char *optval)
{
	sh_harness *h = sh_harness_new();

	rec_reset_state();
	cr_assert_not_null(h);
	if (opt != NULL)
		cr_assert_eq(sh_harness_option(h, opt, optval), 0);
	cr_assert_eq(sh_harness_add(h, &rec_plugin, NULL), 0, "%s",
	    sh_harness_error(h));
	cr_assert_eq(sh_harness_connect(h, "192.0.2.1"), 220);
	cr_assert_eq(sh_harness_cmd(h, "EHLO client.example"), 250);
	cr_assert(strstr(sh_harness_reply(h), "CHUNKING") != NULL, "%s",
	    sh_harness_reply(h));
	cr_assert(strstr(sh_harness_reply(h), "BINARYMIME") == NULL);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<a@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<b@example.org>"), 250);
	return h;
}

/* send_str - raw octets; the first reply's code (want) */
static int
send_str(sh_harness *h, const char *s, int want_reply)
{
	return sh_harness_send(h, s, strlen(s), want_reply);
}

/* next_reply - the next reply of a pipelined batch */
static int
next_reply(sh_harness *h)
{
	return sh_harness_send(h, "", 0, 1);
}

Test(bdat, one_last_chunk_exact_bytes)
{
	/* Dots, the DATA end marker, a bare LF and CR, a NUL: all just data. */
	static const char msg[] = "Subject: hi\r\n\r\n.\r\n..x\r\n\r\n.\r\nbare\nlf\rcr\0nul\r\n";
	size_t len = sizeof(msg) - 1;
	sh_harness *h = session(NULL, NULL);
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "BDAT %zu LAST\r\n", len);
	cr_assert_eq(send_str(h, cmd, 0), 0);
	cr_assert_eq(sh_harness_send(h, msg, len, 1), 250);
	cr_assert(strstr(sh_harness_reply(h), "250 2.0.0 Ok: queued as ") != NULL,
	    "%s", sh_harness_reply(h));
	cr_assert(sh_harness_accepted(h));
	cr_assert_eq(R.data_calls, 1);
	cr_assert_eq(R.eom_calls, 1);
	cr_assert(R.bdat_at_data && R.bdat_at_eom);
	cr_assert_eq(R.body_len, len);
	cr_assert_eq(memcmp(R.body, msg, len), 0);
	cr_assert_eq(R.eom_size, len);
	cr_assert_str_eq(R.headers, "Subject=hi|");
	/* Received: first, with the RFC 3848 keyword of the session. */
	cr_assert(strncmp(sh_harness_trace(h), "Received: from client.example", 29) == 0);
	cr_assert(strstr(sh_harness_trace(h), " with ESMTP id ") != NULL, "%s",
	    sh_harness_trace(h));
	sh_harness_free(h);
}

Test(bdat, several_chunks_pipelined_in_one_send)
{
	static const char wire[] = "BDAT 14\r\nSubject: x\r\n\r\n"
	    "BDAT 6\r\nhello\nBDAT 7 LAST\r\nworld\r\n"
	    "NOOP\r\n";
	sh_harness *h = session(NULL, NULL);

	cr_assert_eq(send_str(h, wire, 1), 250);
	cr_assert_str_eq(sh_harness_reply(h), "250 2.0.0 14 octets received");
	cr_assert_eq(next_reply(h), 250);
	cr_assert_str_eq(sh_harness_reply(h), "250 2.0.0 6 octets received");
	cr_assert_eq(next_reply(h), 250);
	cr_assert(strstr(sh_harness_reply(h), "queued as") != NULL);
	cr_assert_eq(next_reply(h), 250);
	cr_assert_str_eq(sh_harness_reply(h), "250 2.0.0 Ok");
	cr_assert_eq(R.data_calls, 1, "the data hook runs at the first BDAT only");
	cr_assert_eq(R.body_len, 27);
	cr_assert_eq(memcmp(R.body, "Subject: x\r\n\r\nhello\nworld\r\n", 27), 0);
	cr_assert_str_eq(R.headers, "Subject=x|");
	sh_harness_free(h);
}

Test(bdat, one_octet_chunks_split_a_folded_header)
{
	static const char msg[] = "Subject: a\r\n b\r\nX: 1\r\n\r\nbody\r\n";
	sh_harness *h = session(NULL, NULL);
	size_t i;
	char cmd[32];

	for (i = 0; i < sizeof(msg) - 1; i++) {
		snprintf(cmd, sizeof(cmd), "BDAT 1\r\n%c", msg[i]);
		cr_assert_eq(sh_harness_send(h, cmd, 9, 1), 250, "chunk %zu: %s", i,
		    sh_harness_reply(h));
	}
	cr_assert_eq(send_str(h, "BDAT 0 LAST\r\n", 1), 250);
	cr_assert(sh_harness_accepted(h));
	cr_assert_eq(R.body_len, sizeof(msg) - 1);
	cr_assert_eq(memcmp(R.body, msg, R.body_len), 0);
	cr_assert_str_eq(R.headers, "Subject=a b|X=1|");
	sh_harness_free(h);
}

Test(bdat, zero_last_alone_is_an_empty_message)
{
	sh_harness *h = session(NULL, NULL);

	cr_assert_eq(send_str(h, "BDAT 0 LAST\r\n", 1), 250);
	cr_assert(sh_harness_accepted(h));
	cr_assert_eq(R.data_calls, 1);
	cr_assert_eq(R.chunk_calls, 0);
	cr_assert_eq(R.eom_calls, 1);
	cr_assert_eq(R.eom_size, 0);
	/* Ready for the next transaction. */
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<>"), 250);
	sh_harness_free(h);
}

Test(bdat, chunk_larger_than_the_input_buffer_with_pending_pieces)
{
	size_t len = 300 * 1024, i;
	char *msg = malloc(len), cmd[64];
	sh_harness *h = session(NULL, NULL);

	cr_assert_not_null(msg);
	for (i = 0; i < len; i++)
		msg[i] = (char)(i * 7 + i / 251);
	memcpy(msg, "Subject: big\r\n\r\n", 16);
	R.pend_chunks = 1;
	snprintf(cmd, sizeof(cmd), "BDAT %zu LAST\r\n", len);
	cr_assert_eq(send_str(h, cmd, 0), 0);
	/* The harness pumps the loop while the socket is full: the server
	 * reads only while no verdict is pending. */
	cr_assert_eq(sh_harness_send(h, msg, len, 1), 250, "%s", sh_harness_reply(h));
	cr_assert(R.chunk_calls >= 5, "%d pieces", R.chunk_calls);
	cr_assert(R.max_piece <= 64 * 1024, "piece of %zu", R.max_piece);
	cr_assert_eq(R.body_len, len);
	cr_assert_eq(memcmp(R.body, msg, len), 0);
	cr_assert_eq(R.pending, 0);
	free(msg);
	sh_harness_free(h);
}

Test(bdat, reject_mid_stream_answers_that_bdat_and_the_pipelined_rest)
{
	sh_harness *h = session(NULL, NULL);

	R.chunk_v = SH_REJECT;
	/* Octets that look like commands are chunk data, never commands. */
	cr_assert_eq(send_str(h, "BDAT 12\r\nQUIT\r\nRSET\r\n"
	    "BDAT 6\r\nQUIT\r\nBDAT 6 LAST\r\nQUIT\r\n", 1), 550);
	cr_assert_str_eq(sh_harness_reply(h), "550 5.7.1 Message rejected");
	cr_assert_eq(next_reply(h), 550);
	cr_assert(strstr(sh_harness_reply(h), "550 5.7.1 Message refused at an "
	    "earlier BDAT; 6 octets discarded") != NULL, "%s", sh_harness_reply(h));
	cr_assert_eq(next_reply(h), 550);
	cr_assert_eq(R.chunk_calls, 1, "nothing is delivered after the refusal");
	cr_assert_eq(R.eom_calls, 0);
	cr_assert_eq(R.resets, 1);
	cr_assert(!sh_harness_closed(h));
	/* After LAST the failure is forgotten: a BDAT now is out of sequence. */
	cr_assert_eq(send_str(h, "BDAT 2\r\nxy", 1), 503);
	R.chunk_v = SH_CONTINUE;
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<a@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<b@example.org>"), 250);
	cr_assert_eq(send_str(h, "BDAT 4 LAST\r\nok\r\n", 1), 250);
	cr_assert(sh_harness_accepted(h));
	sh_harness_free(h);
}

Test(bdat, reject_at_a_later_chunk_keeps_the_earlier_250)
{
	sh_harness *h = session(NULL, NULL);

	R.chunk_v = SH_TEMPFAIL;
	R.chunk_v_after = 2;
	cr_assert_eq(send_str(h, "BDAT 3\r\nabc", 1), 250);
	cr_assert_eq(send_str(h, "BDAT 3\r\ndef", 1), 451);
	cr_assert_str_eq(sh_harness_reply(h), "451 4.7.1 Temporary failure, please "
	    "try again later");
	/* A 4xx stays a 4xx for the BDATs pipelined behind it. */
	cr_assert_eq(send_str(h, "BDAT 3 LAST\r\nghi", 1), 451);
	cr_assert_eq(R.resets, 1);
	cr_assert_eq(sh_harness_cmd(h, "RSET"), 250);
	sh_harness_free(h);
}

Test(bdat, data_hook_refusal_is_read_then_answered)
{
	sh_harness *h = session(NULL, NULL);

	R.data_v = SH_TEMPFAIL;
	cr_assert_eq(send_str(h, "BDAT 6\r\nRSET\r\nBDAT 6 LAST\r\nQUIT\r\n", 1), 452);
	cr_assert_str_eq(sh_harness_reply(h), "452 4.3.1 No room today");
	cr_assert_eq(next_reply(h), 452);
	cr_assert_eq(R.chunk_calls, 0);
	cr_assert_eq(R.data_calls, 1);
	cr_assert(!sh_harness_closed(h));
	cr_assert_eq(sh_harness_cmd(h, "NOOP"), 250);
	sh_harness_free(h);
}

Test(bdat, eom_refusal_is_the_last_reply)
{
	sh_harness *h = session(NULL, NULL);

	R.eom_v = SH_REJECT;
	cr_assert_eq(send_str(h, "BDAT 3\r\nabc", 1), 250);
	cr_assert_eq(send_str(h, "BDAT 0 LAST\r\n", 1), 550);
	cr_assert(!sh_harness_accepted(h));
	cr_assert_eq(R.resets, 1);
	sh_harness_free(h);
}

Test(bdat, nobody_accepts_451)
{
	sh_harness *h = session(NULL, NULL);

	R.eom_v = SH_CONTINUE;
	cr_assert_eq(send_str(h, "BDAT 3 LAST\r\nabc", 1), 451);
	cr_assert(strstr(sh_harness_reply(h), "451 4.3.0") != NULL);
	sh_harness_free(h);
}

Test(bdat, disconnect_mid_stream_closes_at_once)
{
	sh_harness *h = session(NULL, NULL);

	R.chunk_v = SH_DISCONNECT;
	cr_assert_eq(send_str(h, "BDAT 100 LAST\r\nabc", 1), 421);
	sh_harness_run(h, 0.05);
	cr_assert(sh_harness_closed(h));
	sh_harness_free(h);
}

Test(bdat, max_size_counts_every_chunk)
{
	sh_harness *h = session("max-size", "10");

	cr_assert_eq(send_str(h, "BDAT 6\r\n123456", 1), 250);
	cr_assert_eq(send_str(h, "BDAT 4\r\n7890", 1), 250);
	/* One more octet: refused at once, octets discarded, never delivered. */
	cr_assert_eq(send_str(h, "BDAT 1\r\nX", 1), 552);
	cr_assert_str_eq(sh_harness_reply(h), "552 5.3.4 Message size exceeds fixed "
	    "maximum message size");
	cr_assert_eq(send_str(h, "BDAT 3 LAST\r\nabc", 1), 552);
	cr_assert_eq(R.body_len, 10);
	cr_assert_eq(R.eom_calls, 0);
	cr_assert_eq(R.resets, 1);
	/* Exactly the limit is fine. */
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<a@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<b@example.org>"), 250);
	cr_assert_eq(send_str(h, "BDAT 10 LAST\r\n0123456789", 1), 250);
	sh_harness_free(h);
}

Test(bdat, sequence_errors_read_the_octets)
{
	sh_harness *h = sh_harness_new();

	rec_reset_state();
	cr_assert_eq(sh_harness_add(h, &rec_plugin, NULL), 0);
	cr_assert_eq(sh_harness_connect(h, "192.0.2.1"), 220);
	cr_assert_eq(send_str(h, "BDAT 6\r\nQUIT\r\n", 1), 503);
	cr_assert_eq(sh_harness_cmd(h, "EHLO c"), 250);
	cr_assert_eq(send_str(h, "BDAT 6 LAST\r\nQUIT\r\n", 1), 503);
	cr_assert_str_eq(sh_harness_reply(h), "503 5.5.1 Need MAIL and RCPT before BDAT");
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<a@example.net>"), 250);
	cr_assert_eq(send_str(h, "BDAT 6 LAST\r\nQUIT\r\n", 1), 554);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<b@example.org>"), 250);
	cr_assert_eq(send_str(h, "BDAT 2\r\nab", 1), 250);
	/* RFC 3030 §2: no DATA (nor MAIL/RCPT) inside a BDAT transaction. */
	cr_assert_eq(sh_harness_cmd(h, "DATA"), 503);
	cr_assert_str_eq(sh_harness_reply(h), "503 5.5.1 DATA after BDAT");
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<x@example.net>"), 503);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<x@example.org>"), 503);
	/* The transaction goes on. */
	cr_assert_eq(send_str(h, "BDAT 2 LAST\r\ncd", 1), 250);
	cr_assert_eq(R.body_len, 4);
	cr_assert_eq(memcmp(R.body, "abcd", 4), 0);
	cr_assert_eq(R.data_calls, 1);
	sh_harness_free(h);
}

Test(bdat, syntax_error_closes)
{
	sh_harness *h = session(NULL, NULL);

	cr_assert_eq(send_str(h, "BDAT 12x LAST\r\nMAIL FROM:<evil@example.net>\r\n", 1),
	    501);
	cr_assert_eq(next_reply(h), 421);
	sh_harness_run(h, 0.05);
	cr_assert(sh_harness_closed(h));
	cr_assert_eq(R.data_calls, 0);
	sh_harness_free(h);
}

Test(bdat, without_pipelining)
{
	sh_harness *h = session("no-pipelining", NULL);

	/* A client that waits for each reply is fine. */
	cr_assert_eq(send_str(h, "BDAT 3\r\nabc", 1), 250);
	/* One that sends the next BDAT before the reply is refused, and its
	 * octets are still read; the transaction has lost a chunk. */
	cr_assert_eq(send_str(h, "BDAT 3\r\ndefBDAT 3 LAST\r\nghi", 1), 250);
	cr_assert_eq(next_reply(h), 503);
	cr_assert(strstr(sh_harness_reply(h), "503 5.5.0") != NULL, "%s",
	    sh_harness_reply(h));
	cr_assert_eq(R.eom_calls, 0);
	cr_assert_eq(R.resets, 1);
	cr_assert_eq(sh_harness_cmd(h, "NOOP"), 250);
	sh_harness_free(h);
}

Test(dsn, parameters_reach_the_plugins)
{
	sh_harness *h = sh_harness_new();

	rec_reset_state();
	cr_assert_eq(sh_harness_add(h, &rec_plugin, NULL), 0);
	cr_assert_eq(sh_harness_connect(h, "192.0.2.1"), 220);
	cr_assert_eq(sh_harness_cmd(h, "EHLO c"), 250);
	cr_assert(strstr(sh_harness_reply(h), "\r\n250-DSN\r\n") != NULL ||
	    strstr(sh_harness_reply(h), "\r\n250 DSN") != NULL, "%s",
	    sh_harness_reply(h));
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<a@example.net> ret=HDRS "
	    "EnvId=QQ+2B314159"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<b@example.org> "
	    "notify=SUCCESS,FAILURE orcpt=rfc822;b+2Bx@example.org"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<c@example.org> NOTIFY=NEVER"), 250);
	cr_assert_str_eq(R.params, "MAIL RET=HDRS ENVID=QQ+2B314159|"
	    "RCPT NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bx@example.org|"
	    "RCPT NOTIFY=NEVER|");
	cr_assert_eq(send_str(h, "BDAT 5 LAST\r\nx\r\n\r\n", 1), 250);
	/* Kept with the transaction for storing plugins (sh_tx at eom). */
	cr_assert_str_eq(R.eom_params, R.params);
	sh_harness_free(h);
}
