/*
 * test_tx_edit.c - the message edits of eom (server/tx_edit.c) on a
 * transaction built by hand: the header store filled as the session fills
 * it (the real header splitter over a message, each field's raw span),
 * then inserts, changes, removals, envelope edits, their limits, and the
 * exact parts of the final header section.  No server, no chain.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_stream.h"
#include "smtp_parse.h"
#include "tx.h"

/* A message the way tests want it: its bytes and the transaction. */
struct msg {
	struct tx *tx;
	const char *bytes;
	size_t len;
};

/* address - a parsed MAIL/RCPT argument ("FROM:<a> P=1") */
static struct smtp_mail_arg
address(const char *arg, int is_rcpt)
{
	struct smtp_mail_arg a;

	cr_assert_eq(smtp_parse_mail_arg(arg, strlen(arg), is_rcpt, &a, NULL),
	    SMTP_PARSE_OK, "%s", arg);
	return a;
}

/*
 * build - a transaction that received bytes: sender, recipients (a
 * NULL-terminated list of RCPT arguments), the header store filled
 * field by field with each field's span as deliver_piece() computes it,
 * header_size where the body starts.  trace: tx_add_header() text of
 * "Name: value" lines, or NULL for none.
 */
static struct msg
build(const char *bytes, const char *const *rcpts, int smtputf8)
{
	struct msg m = { .bytes = bytes, .len = strlen(bytes) };
	struct smtp_mail_arg a = address(smtputf8 ? "FROM:<s@example.net> SMTPUTF8" :
	    "FROM:<s@example.net> RET=HDRS", 0);
	struct header_splitter *hs = malloc(sizeof(*hs));
	const char *name, *value;
	size_t off = 0, used, nl, vl, i;
	enum header_status st;

	cr_assert_not_null(hs);
	m.tx = tx_new(1, 1, "T1", 0);
	cr_assert_not_null(m.tx);
	cr_assert_eq(tx_set_sender(m.tx, &a), 0);
	for (i = 0; rcpts != NULL && rcpts[i] != NULL; i++) {
		struct smtp_mail_arg r = address(rcpts[i], 1);
		sh_address *ad = address_new(&r);

		cr_assert_not_null(ad);
		cr_assert_eq(tx_append_rcpt(m.tx, ad), 0);
	}
	header_splitter_init(hs);
	for (;;) {
		if (off < m.len)
			st = header_splitter_next(hs, (const unsigned char *)bytes + off,
			    m.len - off, &used, &name, &nl, &value, &vl);
		else {
			used = 0;
			st = header_splitter_finish(hs, &name, &nl, &value, &vl);
			if (st == HEADER_NEED_MORE) {
				st = HEADER_END;
				vl = 0;
			}
		}
		off += used;
		if (st == HEADER_FIELD) {
			cr_assert_geq(tx_store_header(m.tx, name, nl, value, vl, off), 0);
			continue;
		}
		if (st == HEADER_END) {
			m.tx->header_size = off - vl;
			break;
		}
	}
	free(hs);
	m.tx->body_size = m.len;
	return m;
}

/* head - the final header section rendered: text parts as they are,
 * ranges from the message bytes; and in *nparts the number of parts */
static char *
head(struct msg *m, size_t *nparts)
{
	static char out[256 * 1024];
	sh_head_part p;
	size_t n = 0, i;

	for (i = 0; tx_head_part(m->tx, i, &p) == 0; i++) {
		cr_assert_lt(n + p.len, sizeof(out));
		if (p.text != NULL) {
			memcpy(out + n, p.text, p.len);
		} else {
			cr_assert_leq(p.offset + p.len, m->len);
			memcpy(out + n, m->bytes + p.offset, p.len);
		}
		n += p.len;
	}
	out[n] = '\0';
	if (nparts != NULL)
		*nparts = i;
	return out;
}

/* part - the index-th part, asserted to exist */
static sh_head_part
part(struct msg *m, size_t index)
{
	sh_head_part p;

	cr_assert_eq(tx_head_part(m->tx, index, &p), 0, "part %zu", index);
	return p;
}

static void
assert_range(sh_head_part p, uint64_t offset, size_t len)
{
	cr_assert_null(p.text);
	cr_assert_eq(p.offset, offset, "offset %llu, not %llu",
	    (unsigned long long)p.offset, (unsigned long long)offset);
	cr_assert_eq(p.len, len, "len %zu, not %zu", p.len, len);
}

static void
assert_text(sh_head_part p, const char *text)
{
	cr_assert_not_null(p.text);
	cr_assert_eq(p.len, strlen(text), "%.*s", (int)p.len, p.text);
	cr_assert_eq(memcmp(p.text, text, p.len), 0, "%.*s", (int)p.len, p.text);
}

/* A folded field, a repeated name, an empty line, a body. */
static const char *const MSG =
    "Subject: hello\r\n"
    "X-Long: one\r\n\ttwo\r\n"
    "To: a@example.org\r\n"
    "x-long: three\r\n"
    "\r\n"
    "body line\r\n";
#define MSG_HEAD_LEN (sizeof("Subject: hello\r\nX-Long: one\r\n\ttwo\r\n" \
	"To: a@example.org\r\nx-long: three\r\n\r\n") - 1)

static const char *const RCPTS[] = { "TO:<a@example.org> NOTIFY=NEVER",
	"TO:<b@Example.ORG>", NULL };

/* ---- the store as it streamed ---- */

Test(head, spans_and_no_edits)
{
	struct msg m = build(MSG, RCPTS, 0);
	size_t n;

	cr_assert_eq(m.tx->header_size, MSG_HEAD_LEN);
	cr_assert_eq(tx_header_count(m.tx), 4);
	/* Without edits: one range, the whole section; no trace yet. */
	cr_assert_str_eq(head(&m, &n), "Subject: hello\r\nX-Long: one\r\n\ttwo\r\n"
	    "To: a@example.org\r\nx-long: three\r\n\r\n");
	cr_assert_eq(n, 1);
	assert_range(part(&m, 0), 0, MSG_HEAD_LEN);
	cr_assert_eq(tx_head_part(m.tx, 1, &(sh_head_part){ 0 }), -1);
	/* The trace block first. */
	cr_assert_eq(tx_add_header(m.tx, "X-Added", "1"), 0);
	assert_text(part(&m, 0), "X-Added: 1\r\n");
	assert_range(part(&m, 1), 0, MSG_HEAD_LEN);
	cr_assert_eq(tx_head_part(m.tx, 2, &(sh_head_part){ 0 }), -1);
	cr_assert_eq(m.tx->info.head_edited, 0);
	cr_assert_null(m.tx->edits);
	tx_free(m.tx);
}

Test(head, received_is_the_first_part)
{
	struct msg m = build(MSG, RCPTS, 0);
	struct tx_received r = { .helo = "c.example", .peer_addr = "192.0.2.1",
		.hostname = "mx.example", .esmtp = 1 };
	sh_head_part p;

	cr_assert_eq(tx_add_received(m.tx, &r), 0);
	cr_assert_eq(tx_header_insert(m.tx, 0, "X-First", "1"), 0);
	p = part(&m, 0);
	cr_assert_not_null(p.text);
	cr_assert_eq(strncmp(p.text, "Received: from c.example ", 25), 0);
	cr_assert_eq(p.len, m.tx->trace_len);
	assert_text(part(&m, 1), "X-First: 1\r\n");
	assert_range(part(&m, 2), 0, MSG_HEAD_LEN);
	tx_free(m.tx);
}

Test(head, empty_message_and_no_header_section)
{
	struct msg m = build("", RCPTS, 0);
	sh_head_part p;

	cr_assert_eq(m.tx->header_size, 0);
	cr_assert_eq(tx_head_part(m.tx, 0, &p), -1);
	cr_assert_eq(tx_header_insert(m.tx, 5, "X-New", "v"), 0);
	cr_assert_str_eq(head(&m, NULL), "X-New: v\r\n");
	tx_free(m.tx);

	/* The first line is no field: the body starts at 0. */
	m = build("no header here\r\nSubject: x\r\n", RCPTS, 0);
	cr_assert_eq(m.tx->header_size, 0);
	cr_assert_eq(tx_header_count(m.tx), 0);
	cr_assert_eq(tx_header_insert(m.tx, 0, "X-New", "v"), 0);
	cr_assert_str_eq(head(&m, NULL), "X-New: v\r\n");
	tx_free(m.tx);
}

/* ---- inserting ---- */

Test(insert, positions_and_coalescing)
{
	struct msg m = build(MSG, RCPTS, 0);
	const char *name, *value;
	size_t n;

	cr_assert_eq(tx_header_insert(m.tx, 0, "X-A", "first"), 0);
	cr_assert_eq(m.tx->info.head_edited, 1);
	/* After "Subject" (index 1 now), before the folded field. */
	cr_assert_eq(tx_header_insert(m.tx, 2, "X-B", "mid"), 0);
	/* Past the end: the last field of the section. */
	cr_assert_eq(tx_header_insert(m.tx, 1000000, "X-C", "last"), 0);
	cr_assert_str_eq(head(&m, &n),
	    "X-A: first\r\n"
	    "Subject: hello\r\n"
	    "X-B: mid\r\n"
	    "X-Long: one\r\n\ttwo\r\n"
	    "To: a@example.org\r\nx-long: three\r\n"
	    "X-C: last\r\n"
	    "\r\n");
	/* X-A, [Subject], X-B, [X-Long .. x-long], X-C, [the empty line] */
	cr_assert_eq(n, 6);
	assert_text(part(&m, 0), "X-A: first\r\n");
	assert_range(part(&m, 1), 0, 16);
	assert_text(part(&m, 2), "X-B: mid\r\n");
	assert_range(part(&m, 3), 16, MSG_HEAD_LEN - 2 - 16);
	assert_text(part(&m, 4), "X-C: last\r\n");
	assert_range(part(&m, 5), MSG_HEAD_LEN - 2, 2);
	/* sh_tx_header's view is the edited list. */
	cr_assert_eq(tx_header_count(m.tx), 7);
	cr_assert_eq(tx_header_get(m.tx, 0, &name, &value), 0);
	cr_assert_str_eq(name, "X-A");
	cr_assert_str_eq(value, "first");
	cr_assert_eq(tx_header_get(m.tx, 3, &name, &value), 0);
	cr_assert_str_eq(name, "X-Long");
	cr_assert_str_eq(value, "one\ttwo");
	cr_assert_eq(tx_header_get(m.tx, 6, &name, &value), 0);
	cr_assert_str_eq(name, "X-C");
	cr_assert_eq(tx_header_get(m.tx, 7, &name, &value), -1);
	tx_free(m.tx);
}

Test(insert, parts_read_in_any_order)
{
	struct msg m = build(MSG, RCPTS, 0);

	cr_assert_eq(tx_header_insert(m.tx, 1, "X-B", "mid"), 0);
	assert_range(part(&m, 2), 16, MSG_HEAD_LEN - 16);
	assert_range(part(&m, 0), 0, 16);
	assert_text(part(&m, 1), "X-B: mid\r\n");
	cr_assert_eq(tx_head_part(m.tx, 3, &(sh_head_part){ 0 }), -1);
	assert_range(part(&m, 2), 16, MSG_HEAD_LEN - 16);
	/* An edit after a read starts the reader over. */
	cr_assert_eq(tx_header_insert(m.tx, 0, "X-A", "a"), 0);
	assert_text(part(&m, 0), "X-A: a\r\n");
	assert_text(part(&m, 2), "X-B: mid\r\n");
	tx_free(m.tx);
}

/* ---- changing and removing ---- */

Test(change, occurrences_case_and_names)
{
	struct msg m = build(MSG, RCPTS, 0);

	/* The second X-Long, whatever the case; the name as it was spelt. */
	cr_assert_eq(tx_header_change(m.tx, "X-LONG", 2, "new"), 0);
	cr_assert_str_eq(head(&m, NULL),
	    "Subject: hello\r\nX-Long: one\r\n\ttwo\r\nTo: a@example.org\r\n"
	    "x-long: new\r\n\r\n");
	/* The first: the folded field becomes one line. */
	cr_assert_eq(tx_header_change(m.tx, "x-long", 1, "first"), 0);
	/* A changed field changed again. */
	cr_assert_eq(tx_header_change(m.tx, "x-long", 2, "newer"), 0);
	cr_assert_str_eq(head(&m, NULL),
	    "Subject: hello\r\nX-Long: first\r\nTo: a@example.org\r\n"
	    "x-long: newer\r\n\r\n");
	/* No third one, no occurrence 0, no such field: nothing changes. */
	cr_assert_eq(tx_header_change(m.tx, "X-Long", 3, "x"), -1);
	cr_assert_eq(tx_header_change(m.tx, "X-Long", 0, "x"), -1);
	cr_assert_eq(tx_header_change(m.tx, "X-Lon", 1, "x"), -1);
	cr_assert_eq(tx_header_change(m.tx, "Subject", 1, ""), 0);
	cr_assert_str_eq(head(&m, NULL),
	    "Subject: \r\nX-Long: first\r\nTo: a@example.org\r\n"
	    "x-long: newer\r\n\r\n");
	tx_free(m.tx);
}

Test(change, a_failed_search_materialises_nothing)
{
	struct msg m = build(MSG, RCPTS, 0);

	cr_assert_eq(tx_header_change(m.tx, "Nope", 1, "x"), -1);
	cr_assert_eq(tx_header_change(m.tx, "Nope", 1, NULL), -1);
	cr_assert_null(m.tx->edits);
	cr_assert_eq(m.tx->info.head_edited, 0);
	tx_free(m.tx);
}

Test(remove, fields_and_the_tail)
{
	struct msg m = build(MSG, RCPTS, 0);
	size_t n;

	cr_assert_eq(tx_header_change(m.tx, "x-long", 1, NULL), 0);
	cr_assert_eq(m.tx->info.head_edited, 1);
	cr_assert_str_eq(head(&m, &n), "Subject: hello\r\nTo: a@example.org\r\n"
	    "x-long: three\r\n\r\n");
	cr_assert_eq(n, 2);
	assert_range(part(&m, 0), 0, 16);
	assert_range(part(&m, 1), 16 + 19, MSG_HEAD_LEN - 16 - 19);
	/* The last field: the tail (the empty line) stays. */
	cr_assert_eq(tx_header_change(m.tx, "X-Long", 1, NULL), 0);
	cr_assert_str_eq(head(&m, &n), "Subject: hello\r\nTo: a@example.org\r\n\r\n");
	cr_assert_eq(n, 3);
	assert_range(part(&m, 2), MSG_HEAD_LEN - 2, 2);
	/* All of them: only the tail. */
	cr_assert_eq(tx_header_change(m.tx, "subject", 1, NULL), 0);
	cr_assert_eq(tx_header_change(m.tx, "TO", 1, NULL), 0);
	cr_assert_eq(tx_header_count(m.tx), 0);
	cr_assert_str_eq(head(&m, &n), "\r\n");
	cr_assert_eq(n, 1);
	cr_assert_eq(tx_header_change(m.tx, "To", 1, NULL), -1);
	tx_free(m.tx);
}

/* A section bigger than the store's 64 KiB: the tail holds the fields
 * it did not keep; removing the last kept one leaves them in place. */
Test(remove, last_kept_field_of_a_full_store)
{
	size_t nf = 80, i, n, kept, last_off = 0, last_len = 0;
	char *bytes = malloc(nf * 1100 + 64), *p = bytes, big[1001];
	struct msg m;

	cr_assert_not_null(bytes);
	memset(big, 'v', 1000);
	big[1000] = '\0';
	for (i = 0; i < nf; i++)
		p += sprintf(p, "F%02zu: %s\r\n", i, big);
	p += sprintf(p, "\r\nbody\r\n");
	m = build(bytes, RCPTS, 0);
	kept = tx_header_count(m.tx);
	cr_assert(m.tx->hdr_full);
	cr_assert(kept > 10 && kept < nf, "%zu kept", kept);
	last_off = m.tx->hdr_idx[kept - 1].raw_off;
	last_len = m.tx->hdr_idx[kept - 1].raw_len;
	cr_assert_eq(last_len, 1000 + 7);
	{
		char name[32];

		snprintf(name, sizeof(name), "f%02zu", kept - 1);
		cr_assert_eq(tx_header_change(m.tx, name, 1, NULL), 0);
	}
	(void)head(&m, &n);
	cr_assert_eq(n, 2);
	assert_range(part(&m, 0), 0, last_off);
	assert_range(part(&m, 1), last_off + last_len,
	    m.tx->header_size - last_off - last_len);
	cr_assert_eq(memcmp(bytes + last_off + last_len, "F", 1), 0);
	cr_assert_eq(m.tx->header_size, (size_t)(p - bytes) - 6);
	/* The same with the last field changed: its text, then the tail. */
	tx_free(m.tx);
	m = build(bytes, RCPTS, 0);
	{
		char name[32];

		snprintf(name, sizeof(name), "F%02zu", kept - 1);
		cr_assert_eq(tx_header_change(m.tx, name, 1, "short"), 0);
		(void)head(&m, &n);
		cr_assert_eq(n, 3);
		assert_range(part(&m, 0), 0, last_off);
		cr_assert_str_eq(part(&m, 1).text, strcat(name, ": short\r\n"));
		assert_range(part(&m, 2), last_off + last_len,
		    m.tx->header_size - last_off - last_len);
	}
	tx_free(m.tx);
	free(bytes);
}

/* TX_HEADER_FIELDS_MAX fields at most, edited or not. */
Test(insert, field_limit)
{
	char *bytes = malloc(TX_HEADER_FIELDS_MAX * 16 + 64), *p = bytes;
	struct msg m;
	size_t i;

	cr_assert_not_null(bytes);
	for (i = 0; i < TX_HEADER_FIELDS_MAX; i++)
		p += sprintf(p, "F: %zu\r\n", i);
	p += sprintf(p, "\r\nbody\r\n");
	m = build(bytes, RCPTS, 0);
	cr_assert_eq(tx_header_count(m.tx), TX_HEADER_FIELDS_MAX);
	cr_assert_not(m.tx->hdr_full);
	cr_assert_eq(tx_header_insert(m.tx, 0, "X", "y"), -1);
	cr_assert_eq(tx_header_change(m.tx, "F", TX_HEADER_FIELDS_MAX, NULL), 0);
	cr_assert_eq(tx_header_insert(m.tx, 0, "X", "y"), 0);
	cr_assert_eq(tx_header_insert(m.tx, 0, "X", "y"), -1);
	cr_assert_eq(tx_header_count(m.tx), TX_HEADER_FIELDS_MAX);
	tx_free(m.tx);
	free(bytes);
}

/* ---- bad input and limits ---- */

Test(limits, names_values_and_lines)
{
	struct msg m = build(MSG, RCPTS, 0);
	static const char *const bad_names[] = { "", "Two words", "Colon:",
		"Tab\t", "Del\x7f", "8bit\xc3\xa9", NULL };
	char line[TX_EDIT_LINE_MAX + 2];
	size_t i;

	for (i = 0; bad_names[i] != NULL; i++) {
		cr_assert_eq(tx_header_insert(m.tx, 0, bad_names[i], "v"), -1,
		    "%s", bad_names[i]);
		cr_assert_eq(tx_header_change(m.tx, bad_names[i], 1, "v"), -1);
		cr_assert_eq(tx_header_change(m.tx, bad_names[i], 1, NULL), -1);
	}
	cr_assert_eq(tx_header_insert(m.tx, 0, NULL, "v"), -1);
	cr_assert_eq(tx_header_insert(m.tx, 0, "X", NULL), -1);
	cr_assert_eq(tx_header_change(m.tx, NULL, 1, "v"), -1);
	/* One line: no CR, no LF, not even to fold. */
	cr_assert_eq(tx_header_insert(m.tx, 0, "X", "a\r\n\tb"), -1);
	cr_assert_eq(tx_header_insert(m.tx, 0, "X", "a\nb"), -1);
	cr_assert_eq(tx_header_insert(m.tx, 0, "X", "a\rb"), -1);
	cr_assert_eq(tx_header_change(m.tx, "Subject", 1, "a\r\nBcc: x"), -1);
	cr_assert_null(m.tx->edits);
	/* "X: " + value: 998 octets in all pass, 999 do not. */
	memset(line, 'v', sizeof(line));
	line[TX_EDIT_LINE_MAX - 3] = '\0';
	cr_assert_eq(tx_header_insert(m.tx, 0, "X", line), 0);
	line[TX_EDIT_LINE_MAX - 3] = 'v';
	line[TX_EDIT_LINE_MAX - 2] = '\0';
	cr_assert_eq(tx_header_insert(m.tx, 0, "X", line), -1);
	cr_assert_eq(tx_header_change(m.tx, "Subject", 1, line), -1);
	cr_assert_eq(tx_header_count(m.tx), 5);
	/* 8-bit values and other octets are the plugin's business. */
	cr_assert_eq(tx_header_insert(m.tx, 0, "X-Utf8", "caf\xc3\xa9\t!"), 0);
	tx_free(m.tx);
}

Test(limits, edit_budget_per_message)
{
	struct msg m = build(MSG, RCPTS, 0);
	char value[900];
	size_t ok = 0, i;

	memset(value, 'v', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	/* Each change is a new block that lives with the transaction. */
	for (i = 0; i < 10000; i++) {
		if (tx_header_change(m.tx, "Subject", 1, value) < 0)
			break;
		ok++;
	}
	cr_assert_lt(i, 10000, "unbounded");
	cr_assert_gt(ok, TX_EDIT_BYTES_MAX / 2000);
	cr_assert_leq(ok, TX_EDIT_BYTES_MAX / 900);
	/* The refused edit changed nothing. */
	cr_assert_eq(tx_header_count(m.tx), 4);
	cr_assert_eq(tx_header_insert(m.tx, 0, "X", value), -1);
	cr_assert_eq(tx_header_count(m.tx), 4);
	/* Removing needs no memory and still works. */
	cr_assert_eq(tx_header_change(m.tx, "Subject", 1, NULL), 0);
	tx_free(m.tx);
}

/* ---- the envelope ---- */

static const char *
param(const sh_address *a, const char *key)
{
	return sh_param_get(a, key, NULL);
}

Test(envelope, sender_change)
{
	struct msg m = build(MSG, RCPTS, 0);
	const sh_address *s;

	cr_assert_eq(tx_sender_change(m.tx, "new@Example.COM", "RET=FULL ENVID=x+2B1"), 0);
	s = m.tx->sender;
	cr_assert_str_eq(s->address, "new@Example.COM");
	cr_assert_str_eq(s->local, "new");
	cr_assert_str_eq(s->domain, "Example.COM");
	cr_assert_eq(s->nparams, 2);
	cr_assert_str_eq(param(s, "RET"), "FULL");
	cr_assert_str_eq(param(s, "ENVID"), "x+2B1");
	cr_assert_eq(m.tx->info.sender, s, "the view follows");
	/* The null sender; no params. */
	cr_assert_eq(tx_sender_change(m.tx, "", NULL), 0);
	cr_assert_str_eq(m.tx->sender->address, "");
	cr_assert_eq(m.tx->sender->nparams, 0);
	/* Its own address again (a pointer into the block it replaces). */
	cr_assert_eq(tx_sender_change(m.tx, "x@example.net", ""), 0);
	cr_assert_eq(tx_sender_change(m.tx, m.tx->sender->address, "BODY=8BITMIME"), 0);
	cr_assert_str_eq(m.tx->sender->address, "x@example.net");
	cr_assert_str_eq(param(m.tx->sender, "BODY"), "8BITMIME");
	/* Refused, nothing changed: syntax, brackets, RCPT params, unknown
	 * params, too long, 8-bit or SMTPUTF8 without SMTPUTF8, NULL. */
	cr_assert_eq(tx_sender_change(m.tx, "a b@example.net", NULL), -1);
	cr_assert_eq(tx_sender_change(m.tx, "<a@example.net>", NULL), -1);
	cr_assert_eq(tx_sender_change(m.tx, "a@example.net", "NOTIFY=NEVER"), -1);
	cr_assert_eq(tx_sender_change(m.tx, "a@example.net", "FOO=1"), -1);
	cr_assert_eq(tx_sender_change(m.tx, "a@example.net", "SIZE=x"), -1);
	cr_assert_eq(tx_sender_change(m.tx, "caf\xc3\xa9@example.net", NULL), -1);
	cr_assert_eq(tx_sender_change(m.tx, "a@example.net", "SMTPUTF8"), -1);
	cr_assert_eq(tx_sender_change(m.tx, NULL, NULL), -1);
	{
		char longaddr[300];

		memset(longaddr, 'l', sizeof(longaddr));
		strcpy(longaddr + 250, "@example.net");
		cr_assert_eq(tx_sender_change(m.tx, longaddr, NULL), -1);
	}
	cr_assert_str_eq(m.tx->sender->address, "x@example.net");
	/* The header section is no business of the envelope. */
	cr_assert_eq(m.tx->info.head_edited, 0);
	tx_free(m.tx);

	m = build(MSG, RCPTS, 1);
	cr_assert_eq(tx_sender_change(m.tx, "caf\xc3\xa9@example.net", "SMTPUTF8"), 0);
	cr_assert_str_eq(m.tx->sender->local, "caf\xc3\xa9");
	tx_free(m.tx);
}

Test(envelope, rcpt_add)
{
	struct msg m = build(MSG, RCPTS, 0);

	cr_assert_eq(tx_rcpt_add(m.tx, "c@example.org", "NOTIFY=SUCCESS,FAILURE "
	    "ORCPT=rfc822;c@example.org", 100), 0);
	cr_assert_eq(m.tx->nrcpts, 3);
	cr_assert_str_eq(m.tx->rcpts[2]->address, "c@example.org");
	cr_assert_str_eq(param(m.tx->rcpts[2], "NOTIFY"), "SUCCESS,FAILURE");
	cr_assert_str_eq(param(m.tx->rcpts[2], "ORCPT"), "rfc822;c@example.org");
	cr_assert_eq(m.tx->info.nrcpts, 3, "the view follows");
	cr_assert_eq(m.tx->info.rcpts[2], m.tx->rcpts[2]);
	cr_assert_eq(tx_rcpt_add(m.tx, "Postmaster", NULL, 100), 0);
	/* Already there (the domain in any case), refused; a different
	 * local part is another mailbox. */
	cr_assert_eq(tx_rcpt_add(m.tx, "b@example.org", NULL, 100), -1);
	cr_assert_eq(tx_rcpt_add(m.tx, "c@EXAMPLE.org", NULL, 100), -1);
	cr_assert_eq(tx_rcpt_add(m.tx, "B@example.org", NULL, 100), 0);
	/* MAIL parameters, syntax, 8-bit without SMTPUTF8, the limit. */
	cr_assert_eq(tx_rcpt_add(m.tx, "d@example.org", "RET=FULL", 100), -1);
	cr_assert_eq(tx_rcpt_add(m.tx, "d@example.org", "NOTIFY=SOMETIMES", 100), -1);
	cr_assert_eq(tx_rcpt_add(m.tx, "d@@example.org", NULL, 100), -1);
	cr_assert_eq(tx_rcpt_add(m.tx, "\xc3\xa9@example.org", NULL, 100), -1);
	cr_assert_eq(tx_rcpt_add(m.tx, NULL, NULL, 100), -1);
	cr_assert_eq(tx_rcpt_add(m.tx, "d@example.org", NULL, 5), -1);
	cr_assert_eq(m.tx->nrcpts, 5);
	cr_assert_eq(tx_rcpt_add(m.tx, "d@example.org", NULL, 6), 0);
	cr_assert_eq(m.tx->nrcpts, 6);
	tx_free(m.tx);
}

Test(envelope, rcpt_remove)
{
	static const char *const rcpts[] = { "TO:<a@example.org>",
		"TO:<b@example.org>", "TO:<B@example.org>", "TO:<b@EXAMPLE.org>",
		NULL };
	struct msg m = build(MSG, rcpts, 0);

	/* Local part exact, domain in any case: two of them go. */
	cr_assert_eq(tx_rcpt_remove(m.tx, "b@Example.Org"), 0);
	cr_assert_eq(m.tx->nrcpts, 2);
	cr_assert_str_eq(m.tx->rcpts[0]->address, "a@example.org");
	cr_assert_str_eq(m.tx->rcpts[1]->address, "B@example.org");
	cr_assert_eq(m.tx->info.nrcpts, 2, "the view follows");
	cr_assert_eq(tx_rcpt_remove(m.tx, "b@example.org"), -1, "gone already");
	cr_assert_eq(tx_rcpt_remove(m.tx, "nobody@example.org"), -1);
	cr_assert_eq(tx_rcpt_remove(m.tx, NULL), -1);
	/* The address of the recipient that goes, from its own block. */
	cr_assert_eq(tx_rcpt_remove(m.tx, m.tx->rcpts[1]->address), 0);
	cr_assert_eq(m.tx->nrcpts, 1);
	/* Never the last one. */
	cr_assert_eq(tx_rcpt_remove(m.tx, "a@example.org"), -1);
	cr_assert_eq(m.tx->nrcpts, 1);
	/* Removed, added back. */
	cr_assert_eq(tx_rcpt_add(m.tx, "b@example.org", NULL, 100), 0);
	cr_assert_eq(tx_rcpt_remove(m.tx, "a@EXAMPLE.ORG"), 0);
	cr_assert_str_eq(m.tx->rcpts[0]->address, "b@example.org");
	tx_free(m.tx);
}

Test(envelope, edits_and_head_together)
{
	struct msg m = build(MSG, RCPTS, 0);

	cr_assert_eq(tx_rcpt_add(m.tx, "c@example.org", NULL, 100), 0);
	cr_assert_eq(tx_header_insert(m.tx, 0, "X-A", "1"), 0);
	cr_assert_eq(tx_rcpt_remove(m.tx, "a@example.org"), 0);
	cr_assert_eq(tx_sender_change(m.tx, "z@example.net", NULL), 0);
	cr_assert_eq(tx_header_change(m.tx, "To", 1, "b@example.org, c@example.org"), 0);
	cr_assert_str_eq(head(&m, NULL), "X-A: 1\r\nSubject: hello\r\n"
	    "X-Long: one\r\n\ttwo\r\nTo: b@example.org, c@example.org\r\n"
	    "x-long: three\r\n\r\n");
	cr_assert_eq(m.tx->nrcpts, 2);
	tx_free(m.tx);
}
