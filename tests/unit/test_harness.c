/*
 * test_harness.c - the plugin test harness (sdk/harness) drives the real
 * core: loaded and linked-in plugins, replies, trace block, PENDING.
 */
#include <criterion/criterion.h>
#include <ev.h>
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
