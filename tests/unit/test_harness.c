/*
 * test_harness.c - the plugin test harness (sdk/harness) drives the real
 * core: loaded and linked-in plugins, replies, trace block, PENDING.
 */
#include <criterion/criterion.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sh_harness.h"

/* A linked-in plugin: rejects one recipient, tags messages at eom. */
static sh_verdict
tag_rcpt(sh_ctx *ctx, const sh_address *rcpt)
{
	if (strcmp(rcpt->local, "nobody") == 0)
		return sh_reject(ctx, 550, "5.1.1", "No such user\nreally");
	return SH_CONTINUE;
}

static sh_verdict
tag_eom(sh_ctx *ctx)
{
	sh_add_header(ctx, "X-Tagged", "yes");
	return SH_CONTINUE;
}

static const sh_plugin tagger = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "tagger",
	.rcpt = tag_rcpt, .eom = tag_eom,
};

/* A linked-in plugin whose mail verdict comes from a libev timer. */
struct later { ev_timer timer; sh_pending tok; };

static void
later_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct later *l = w->data;

	(void)loop, (void)revents;
	sh_resume(l->tok, SH_TEMPFAIL, 451, "4.7.1", "Later");
}

static void
later_free(void *p)
{
	free(p);
}

static sh_verdict
later_mail(sh_ctx *ctx, const sh_address *sender)
{
	struct later *l = calloc(1, sizeof(*l));

	(void)sender;
	sh_tx_set(ctx, l, later_free);
	l->tok = sh_pend(ctx, NULL, NULL);
	ev_timer_init(&l->timer, later_fire, 0.05, 0);
	l->timer.data = l;
	ev_timer_start(sh_loop(ctx), &l->timer);
	return SH_PENDING;
}

static const sh_plugin later = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "later",
	.mail = later_mail,
};

static const char msg[] = "Subject: hi\r\n\r\n.dot line\r\nbody\r\n";

Test(harness, chain_with_loaded_and_linked_plugins)
{
	sh_harness *h = sh_harness_new();
	const char *rcpts[] = { "a@example.org", NULL };

	cr_assert_not_null(h);
	cr_assert_eq(sh_harness_add(h, &tagger, ""), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_load(h, SMTPHOOK_BUILD_DIR "/plugins/sink.so"), 0,
	    "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_connect(h, "192.0.2.7"), 220);
	cr_assert(strstr(sh_harness_reply(h), "harness.invalid ESMTP smtphook") != NULL);
	cr_assert_eq(sh_harness_cmd(h, "EHLO client.example"), 250);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<nobody@example.org>"), 550);
	cr_assert_str_eq(sh_harness_reply(h), "550-5.1.1 No such user\r\n550 5.1.1 really");
	cr_assert_eq(sh_harness_cmd(h, "RSET"), 250);
	cr_assert_eq(sh_harness_message(h, "s@example.net", rcpts, msg), 250);
	cr_assert(sh_harness_accepted(h));
	cr_assert(strncmp(sh_harness_trace(h), "Received: from client.example", 29) == 0,
	    "%s", sh_harness_trace(h));
	cr_assert(strstr(sh_harness_trace(h), "\r\nX-Tagged: yes\r\n") != NULL);
	cr_assert_eq(sh_harness_cmd(h, "QUIT"), 221);
	sh_harness_free(h);
}

Test(harness, body_in_small_writes)
{
	sh_harness *h = sh_harness_new();

	cr_assert_eq(sh_harness_load(h, SMTPHOOK_BUILD_DIR "/plugins/sink.so"), 0);
	cr_assert_eq(sh_harness_connect(h, "2001:db8::1"), 220);
	cr_assert_eq(sh_harness_cmd(h, "HELO c"), 250);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<x@y.example>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "DATA"), 354);
	cr_assert_eq(sh_harness_body(h, msg, sizeof(msg) - 1, 1), 250);
	sh_harness_free(h);
}

Test(harness, pending_and_options)
{
	sh_harness *h = sh_harness_new();

	cr_assert_eq(sh_harness_option(h, "max-size", "10"), 0);
	cr_assert_eq(sh_harness_add(h, &later, NULL), 0);
	cr_assert_eq(sh_harness_connect(h, "192.0.2.8"), 220);
	cr_assert_eq(sh_harness_cmd(h, "EHLO c"), 250);
	cr_assert(strstr(sh_harness_reply(h), "SIZE 10") != NULL);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<a@b.example>"), 451);
	cr_assert_str_eq(sh_harness_reply(h), "451 4.7.1 Later");
	sh_harness_disconnect(h);
	sh_harness_free(h);
}

Test(harness, bad_plugin_reported)
{
	sh_harness *h = sh_harness_new();

	cr_assert_eq(sh_harness_load(h, "/nonexistent/x.so"), -1);
	cr_assert(strstr(sh_harness_error(h), "No such file") != NULL, "%s",
	    sh_harness_error(h));
	cr_assert_eq(sh_harness_load(h, SMTPHOOK_BUILD_DIR "/plugins/sink.so:x=1"), -1);
	cr_assert(strstr(sh_harness_error(h), "unknown argument 'x'") != NULL);
	sh_harness_free(h);
}

/* The non-blocking calls: pipelined input, idle detection, timers fired
 * by hand, a reply callback. */
static sh_verdict
deny_auth(sh_ctx *ctx, const char *mech, const char *user, const char *pass)
{
	(void)ctx, (void)mech, (void)user, (void)pass;
	return SH_REJECT;
}

static const sh_plugin denier = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "denier",
	.auth = deny_auth,
};

struct seen { int codes[16]; int n; };

static void
seen_reply(void *arg, int code, const char *reply)
{
	struct seen *s = arg;

	cr_assert(reply != NULL && atoi(reply) == code);
	if (s->n < 16)
		s->codes[s->n++] = code;
}

Test(harness, nonblocking_pump_expire)
{
	static const char in[] = "EHLO c\r\nAUTH PLAIN AHUAcA==\r\nNOOP\r\n";
	sh_harness *h = sh_harness_new();
	struct seen seen = { { 0 }, 0 };
	double t0;

	cr_assert_eq(sh_harness_option(h, "auth", "PLAIN"), 0);
	cr_assert_eq(sh_harness_option(h, "auth-insecure", NULL), 0);
	cr_assert_eq(sh_harness_add(h, &denier, NULL), 0);
	sh_harness_on_reply(h, seen_reply, &seen);
	cr_assert_eq(sh_harness_connect(h, "192.0.2.9"), 220);
	sh_harness_timeout(h, 0);
	cr_assert_eq(sh_harness_write(h, in, sizeof(in) - 1), (ssize_t)sizeof(in) - 1);
	sh_harness_step(h);
	t0 = ev_time();
	/* EHLO comes at once; the 535 itself waits for the AUTH delay, and
	 * NOOP behind it. */
	cr_assert_eq(sh_harness_pump(h), 1);
	cr_assert_eq(sh_harness_pump(h), 0);
	cr_assert_eq(sh_harness_expire(h), 1);
	cr_assert_eq(sh_harness_pump(h), 2);
	cr_assert(ev_time() - t0 < 0.4, "pump waited %.3fs", ev_time() - t0);
	cr_assert_eq(seen.n, 4);
	cr_assert_eq(seen.codes[1], 250);
	cr_assert_eq(seen.codes[2], 535);
	cr_assert_eq(seen.codes[3], 250);
	cr_assert_eq(sh_harness_expire(h), 0);
	sh_harness_disconnect(h);
	sh_harness_free(h);
}

/* ---- the final message after edits at eom (ABI 1.1) ---- */

/* A linked-in plugin that edits at eom, and tries to at rcpt. */
static int edit_rcpt_rc[3];

static sh_verdict
editor_rcpt(sh_ctx *ctx, const sh_address *rcpt)
{
	(void)rcpt;
	/* Outside eom every edit is refused. */
	edit_rcpt_rc[0] = sh_header_insert(ctx, 0, "X-Early", "no");
	edit_rcpt_rc[1] = sh_rcpt_add(ctx, "early@example.org", NULL);
	edit_rcpt_rc[2] = sh_tx_head_part(ctx, 0, &(sh_head_part){ 0 });
	return SH_CONTINUE;
}

static sh_verdict
editor_eom(sh_ctx *ctx)
{
	const sh_tx_info *tx = sh_tx(ctx);
	int rc = 0;

	/* Only messages with a Subject: the others go unedited. */
	if (sh_header_change(ctx, "subject", 1, "changed") < 0)
		return SH_CONTINUE;
	rc |= sh_header_insert(ctx, 0, "X-First", "1");
	rc |= sh_header_remove(ctx, "X-Drop", 1);
	rc |= sh_sender_change(ctx, "new@example.net", "RET=HDRS");
	rc |= sh_rcpt_add(ctx, "added@example.org", "NOTIFY=NEVER");
	rc |= sh_rcpt_remove(ctx, "gone@EXAMPLE.org");
	cr_assert_eq(rc, 0);
	cr_assert(tx->head_edited);
	return SH_CONTINUE;
}

static const sh_plugin editor = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "editor",
	.rcpt = editor_rcpt, .eom = editor_eom, .roles = SH_ROLE_EDITS,
};

/* A linked-in plugin after it: what it sees of the edits. */
static char seen_fields[1024];

static sh_verdict
reader_eom(sh_ctx *ctx)
{
	const char *name, *value;
	size_t i, n = 0;

	seen_fields[0] = '\0';
	for (i = 0; sh_tx_header(ctx, i, &name, &value) == 0; i++)
		n += (size_t)snprintf(seen_fields + n, sizeof(seen_fields) - n,
		    "%s=%s;", name, value);
	return SH_CONTINUE;
}

static const sh_plugin reader = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "reader",
	.eom = reader_eom,
};

static sh_harness *
edit_start(const char *bare_lf)
{
	sh_harness *h = sh_harness_new();

	cr_assert_not_null(h);
	if (bare_lf != NULL)
		cr_assert_eq(sh_harness_option(h, "bare-lf", bare_lf), 0);
	cr_assert_eq(sh_harness_add(h, &editor, NULL), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_add(h, &reader, NULL), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_load(h, SMTPHOOK_BUILD_DIR "/plugins/sink.so"), 0,
	    "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_connect(h, "192.0.2.7"), 220);
	cr_assert_eq(sh_harness_cmd(h, "EHLO client.example"), 250);
	return h;
}

/* after_trace - the final head without its trace block (whose Received:
 * has the time in it), asserted to start with it */
static const char *
after_trace(sh_harness *h)
{
	const char *head = sh_harness_head(h, NULL), *t = sh_harness_trace(h);

	cr_assert_not_null(head);
	cr_assert(strncmp(t, "Received: ", 10) == 0, "%s", t);
	cr_assert_eq(strncmp(head, t, strlen(t)), 0, "%s", head);
	return head + strlen(t);
}

static const char edit_msg[] =
    "Subject: original\r\n"
    "X-Drop: me\r\n"
    "X-Folded: a\r\n b\r\n"
    "\r\n"
    "Subject: in the body\r\n";

Test(harness_edits, final_head_and_envelope)
{
	sh_harness *h = edit_start(NULL);
	const char *rcpts[] = { "a@example.org", "gone@example.org", NULL };
	size_t len;

	cr_assert_eq(sh_harness_message(h, "s@example.net", rcpts, edit_msg), 250);
	cr_assert_eq(edit_rcpt_rc[0], -1);
	cr_assert_eq(edit_rcpt_rc[1], -1);
	cr_assert_eq(edit_rcpt_rc[2], -1);
	cr_assert(sh_harness_head_edited(h));
	cr_assert_str_eq(after_trace(h),
	    "X-First: 1\r\n"
	    "Subject: changed\r\n"
	    "X-Folded: a\r\n b\r\n"
	    "\r\n");
	(void)sh_harness_head(h, &len);
	cr_assert_eq(len, strlen(sh_harness_head(h, NULL)));
	cr_assert_str_eq(sh_harness_envelope(h),
	    "MAIL FROM:<new@example.net> RET=HDRS\r\n"
	    "RCPT TO:<a@example.org>\r\n"
	    "RCPT TO:<added@example.org> NOTIFY=NEVER\r\n");
	cr_assert_str_eq(sh_harness_sender(h), "new@example.net");
	cr_assert_str_eq(sh_harness_rcpt(h, 0), "a@example.org");
	cr_assert_str_eq(sh_harness_rcpt(h, 1), "added@example.org");
	cr_assert_null(sh_harness_rcpt(h, 2));
	/* The plugin after the editor saw the edited list. */
	cr_assert_str_eq(seen_fields, "X-First=1;Subject=changed;X-Folded=a b;");
	sh_harness_free(h);
}

Test(harness_edits, unedited_head_is_the_section_as_sent)
{
	sh_harness *h = edit_start(NULL);
	const char *rcpts[] = { "a@example.org", NULL };

	cr_assert_eq(sh_harness_message(h, "", rcpts,
	    "From: x@example.net\r\n\tfolded\r\n\r\n.dot\r\n"), 250);
	cr_assert_not(sh_harness_head_edited(h));
	cr_assert_str_eq(after_trace(h), "From: x@example.net\r\n\tfolded\r\n\r\n");
	cr_assert_str_eq(sh_harness_envelope(h), "MAIL FROM:<>\r\nRCPT TO:<a@example.org>\r\n");
	cr_assert_str_eq(sh_harness_sender(h), "");
	sh_harness_free(h);
}

Test(harness_edits, head_of_a_normalized_message)
{
	sh_harness *h = edit_start("normalize");
	const char *rcpts[] = { "a@example.org", "gone@example.org", NULL };

	/* The ranges are the message as the server decoded it: CRLF. */
	cr_assert_eq(sh_harness_message(h, "s@example.net", rcpts,
	    "Subject: x\nX-Keep: bare\rX-Drop: y\n\nbody\r\n"), 250);
	cr_assert_str_eq(after_trace(h),
	    "X-First: 1\r\nSubject: changed\r\nX-Keep: bare\r\n\r\n");
	sh_harness_free(h);
}

Test(harness_edits, head_unknown_for_raw_messages)
{
	sh_harness *h = edit_start(NULL);
	static const char raw[] = "Subject: raw\r\nX-Drop: 1\r\n\r\nbody\r\n.\r\n";

	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<a@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<gone@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "DATA"), 354);
	cr_assert_eq(sh_harness_send(h, raw, sizeof(raw) - 1, 1), 250);
	cr_assert_null(sh_harness_head(h, NULL));
	/* The envelope is known all the same. */
	cr_assert_str_eq(sh_harness_sender(h), "new@example.net");
	/* A transaction without a message: just the (empty) trace. */
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<t@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RSET"), 250);
	cr_assert_str_eq(sh_harness_head(h, NULL), "");
	cr_assert_str_eq(sh_harness_envelope(h), "MAIL FROM:<t@example.net>\r\n");
	sh_harness_free(h);
}
