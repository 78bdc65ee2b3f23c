/*
 * test_policyd.c - the policyd plugin's protocol module (compiled in
 * directly): requests, reply framing and parsing, and every access(5)
 * action's decision; and the plugin's argument checks through the
 * harness.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "plugins/plugin_test.h"

#include "../../../plugins/policyd/proto.c"

#define POLICYD_SO SMTPHOOK_BUILD_DIR "/plugins/policyd.so"

/* map - the decision of one reply text */
static struct pd_decision
reply(const char *text)
{
	struct pd_decision d;
	size_t end = 0;

	cr_assert_eq(pd_reply_end(text, strlen(text), &end), 1, "%s", text);
	pd_reply_parse(text, end, &d);
	return d;
}

/* act - the decision of "action=A\n\n" */
static struct pd_decision
act(const char *a)
{
	char buf[2048];

	snprintf(buf, sizeof(buf), "action=%s\n\n", a);
	return reply(buf);
}

static void
expect(const char *a, enum pd_verdict v, int code, const char *enh,
    const char *text)
{
	struct pd_decision d = act(a);

	cr_assert_eq(d.verdict, v, "%s: verdict %d", a, d.verdict);
	cr_assert_eq(d.code, code, "%s: code %d", a, d.code);
	cr_assert_str_eq(d.enhanced, enh, "%s", a);
	cr_assert_str_eq(d.text, text, "%s", a);
}

/* ---- requests ---- */

Test(policyd_request, lines_and_empty_line)
{
	struct pd_attr a[] = {
		{ "request", "smtpd_access_policy", PD_CSTR },
		{ "sender", "", PD_CSTR },
		{ "sasl_username", NULL, 0 },
	};
	char buf[256];
	size_t rep = 9;
	long n = pd_request_build(a, 3, buf, sizeof(buf), &rep);

	cr_assert_str_eq(buf, "request=smtpd_access_policy\nsender=\nsasl_username=\n\n");
	cr_assert_eq(n, (long)strlen(buf));
	cr_assert_eq(rep, 0);
}

Test(policyd_request, newline_cr_nul_replaced)
{
	struct pd_attr a[] = { { "helo_name", "a\nb\rc\0d", 7 } };
	char buf[64];
	size_t rep = 0;

	cr_assert_gt(pd_request_build(a, 1, buf, sizeof(buf), &rep), 0);
	cr_assert_str_eq(buf, "helo_name=a?b?c?d\n\n");
	cr_assert_eq(rep, 3);
}

Test(policyd_request, bounded)
{
	struct pd_attr a[] = { { "sender", "x@example.com", PD_CSTR } };
	char buf[64];
	size_t need = strlen("sender=x@example.com\n\n") + 1;

	cr_assert_eq(pd_request_build(a, 1, buf, need - 1, NULL), -1);
	cr_assert_eq(pd_request_build(a, 1, buf, need, NULL), (long)need - 1);
	cr_assert_eq(pd_request_build(a, 1, buf, 0, NULL), -1);
	cr_assert_eq(pd_request_build(a, 0, buf, 1, NULL), -1);
	cr_assert_eq(pd_request_build(a, 0, buf, 2, NULL), 1);
}

Test(policyd_request, bad_names_refused)
{
	const char *bad[] = { "", "Sender", "a=b", "a b", "a\n", NULL };
	char buf[64];
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		struct pd_attr a[] = { { bad[i], "v", PD_CSTR } };

		cr_assert_eq(pd_request_build(a, 1, buf, sizeof(buf), NULL), -1, "%s", bad[i]);
	}
	{
		struct pd_attr a[] = { { NULL, "v", PD_CSTR } };

		cr_assert_eq(pd_request_build(a, 1, buf, sizeof(buf), NULL), -1);
	}
}

/* ---- reply framing ---- */

Test(policyd_reply, end_of_reply)
{
	size_t end = 0;

	cr_assert_eq(pd_reply_end("", 0, &end), 0);
	cr_assert_eq(pd_reply_end("action=OK\n", 10, &end), 0);
	cr_assert_eq(pd_reply_end("action=OK\n\nmore", 15, &end), 1);
	cr_assert_eq(end, 11);
	cr_assert_eq(pd_reply_end("action=OK\r\n\r\n", 13, &end), 1);
	cr_assert_eq(end, 13);
	cr_assert_eq(pd_reply_end("\n", 1, &end), 1);
	cr_assert_eq(end, 1);
}

Test(policyd_reply, too_long_is_garbage)
{
	static char big[PD_REPLY_MAX + 10];

	memset(big, 'x', sizeof(big));
	cr_assert_eq(pd_reply_end(big, PD_REPLY_MAX - 1, &(size_t){0}), 0);
	cr_assert_eq(pd_reply_end(big, PD_REPLY_MAX, &(size_t){0}), -1);
	cr_assert_eq(pd_reply_end(big, sizeof(big), &(size_t){0}), -1);
}

Test(policyd_reply, other_attributes_ignored_first_action_wins)
{
	struct pd_decision d = reply("foo=bar\naction=REJECT no\nx=\naction=OK\n\n");

	cr_assert_eq(d.verdict, PD_REJECT);
	cr_assert_str_eq(d.text, "no");
}

Test(policyd_reply, malformed_uses_default)
{
	const char *bad[] = { "\n", "garbage\n\n", "=OK\n\n", "foo=bar\n\n",
		"action=\n\n", "action=FROBNICATE\n\n", "action=OK\ngarbage\n\n",
		"action=   \n\n", "action=2NN x\n\n", "action=250 ok\n\n",
		"action=O K\n\n", "action=OKAY\n\n", "action=4x0 no\n\n", NULL };
	size_t i;

	for (i = 0; bad[i] != NULL; i++)
		cr_assert_eq(reply(bad[i]).verdict, PD_USE_DEFAULT, "%s", bad[i]);
}

Test(policyd_reply, crlf_tolerated)
{
	cr_assert_eq(reply("action=OK\r\n\r\n").verdict, PD_ACCEPT);
	cr_assert_str_eq(reply("action=REJECT no way\r\n\r\n").text, "no way");
}

/* ---- actions ---- */

Test(policyd_action, ok_dunno_any_case)
{
	expect("OK", PD_ACCEPT, 0, "", "");
	expect("ok", PD_ACCEPT, 0, "", "");
	expect("DUNNO", PD_CONTINUE, 0, "", "");
	expect("dUnNo", PD_CONTINUE, 0, "", "");
	expect("  DUNNO  ", PD_CONTINUE, 0, "", "");
	expect("12345", PD_ACCEPT, 0, "", "");
}

Test(policyd_action, reject)
{
	expect("REJECT", PD_REJECT, 554, "5.7.1", "Access denied");
	expect("reject Go away now", PD_REJECT, 554, "5.7.1", "Go away now");
}

Test(policyd_action, defer)
{
	expect("DEFER", PD_TEMPFAIL, 450, "4.7.1", "Access denied");
	expect("defer try later", PD_TEMPFAIL, 450, "4.7.1", "try later");
	expect("DEFER_IF_PERMIT greylisted", PD_TEMPFAIL, 450, "4.7.1", "greylisted");
}

Test(policyd_action, defer_if_reject_continues_logged)
{
	struct pd_decision d = act("DEFER_IF_REJECT maybe later");

	cr_assert_eq(d.verdict, PD_CONTINUE);
	cr_assert(d.log);
	cr_assert_str_eq(d.text, "maybe later");
	cr_assert_str_eq(d.action, "DEFER_IF_REJECT");
}

Test(policyd_action, numeric_codes)
{
	expect("450 4.2.0 Greylisted, see http://postgrey.example/",
	    PD_TEMPFAIL, 450, "4.2.0", "Greylisted, see http://postgrey.example/");
	expect("451 try again", PD_TEMPFAIL, 451, "4.7.1", "try again");
	expect("550 5.1.1 No such user", PD_REJECT, 550, "5.1.1", "No such user");
	expect("553", PD_REJECT, 553, "5.7.1", "Access denied");
	expect("550 4.1.1 class follows code", PD_REJECT, 550, "5.1.1", "class follows code");
	expect("450 2.0.0 x", PD_TEMPFAIL, 450, "4.0.0", "x");
	expect("550 5.1.1", PD_REJECT, 550, "5.1.1", "Access denied");
	expect("550 5.1.1x not enhanced", PD_REJECT, 550, "5.7.1", "5.1.1x not enhanced");
	expect("550 5.1234.1 too long", PD_REJECT, 550, "5.7.1", "5.1234.1 too long");
	expect("421 4.3.2 going down", PD_DISCONNECT, 421, "4.3.2", "going down");
}

Test(policyd_action, prepend)
{
	struct pd_decision d = act("PREPEND X-Greylist: delayed 300 seconds");

	cr_assert_eq(d.verdict, PD_CONTINUE);
	cr_assert_str_eq(d.header, "X-Greylist: delayed 300 seconds");
	cr_assert_eq(d.header_name_len, strlen("X-Greylist"));
	cr_assert_not(d.log);
	d = act("prepend X-Empty:");
	cr_assert_str_eq(d.header, "X-Empty:");
}

Test(policyd_action, prepend_malformed_logged_dunno)
{
	const char *bad[] = { "PREPEND", "PREPEND no colon here", "PREPEND : empty name",
		"PREPEND Bad Name: v", NULL };
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		struct pd_decision d = act(bad[i]);

		cr_assert_eq(d.verdict, PD_CONTINUE, "%s", bad[i]);
		cr_assert_str_eq(d.header, "", "%s", bad[i]);
		cr_assert(d.log, "%s", bad[i]);
	}
}

Test(policyd_action, warn_info_logged)
{
	struct pd_decision d = act("WARN suspicious client");

	cr_assert_eq(d.verdict, PD_CONTINUE);
	cr_assert(d.log);
	cr_assert_str_eq(d.text, "suspicious client");
	cr_assert_str_eq(d.action, "WARN");
	d = act("info hello");
	cr_assert_eq(d.verdict, PD_CONTINUE);
	cr_assert(d.log);
	cr_assert_str_eq(d.action, "INFO");
}

Test(policyd_action, queue_actions_are_dunno_logged)
{
	const char *q[] = { "HOLD", "DISCARD why", "FILTER smtp:[127.0.0.1]:10025",
		"REDIRECT a@b.example", "BCC c@d.example", "hold", NULL };
	size_t i;

	for (i = 0; q[i] != NULL; i++) {
		struct pd_decision d = act(q[i]);

		cr_assert_eq(d.verdict, PD_CONTINUE, "%s", q[i]);
		cr_assert(d.log, "%s", q[i]);
		cr_assert_eq(d.code, 0);
	}
}

Test(policyd_action, long_text_cut)
{
	char a[2000];
	struct pd_decision d;

	memcpy(a, "REJECT ", 7);
	memset(a + 7, 'y', sizeof(a) - 8);
	a[sizeof(a) - 1] = '\0';
	pd_action_map(a, strlen(a), &d);
	cr_assert_eq(d.verdict, PD_REJECT);
	cr_assert_eq(strlen(d.text), PD_TEXT_MAX - 1);
}

Test(policyd_action, nul_in_action_uses_default)
{
	struct pd_decision d;

	pd_action_map("OK\0x", 4, &d);
	cr_assert_eq(d.verdict, PD_USE_DEFAULT);
	pd_action_map("OK\nx", 4, &d);
	cr_assert_eq(d.verdict, PD_USE_DEFAULT);
}

/* ---- arguments (through the harness) ---- */

Test(policyd_args, refused)
{
	plugin_start_fails(POLICYD_SO, "", "server= is required");
	plugin_start_fails(POLICYD_SO, "server=inet:127.0.0.1", "expected inet:HOST:PORT");
	plugin_start_fails(POLICYD_SO, "server=unix:", "expected unix:/path");
	plugin_start_fails(POLICYD_SO, "server=inet:127.0.0.1:10023,at=RCPT;NOPE",
	    "\"NOPE\" is not one of");
	plugin_start_fails(POLICYD_SO, "server=inet:127.0.0.1:10023,at=",
	    "at= is empty");
	plugin_start_fails(POLICYD_SO, "server=inet:127.0.0.1:10023,request_timeout=x",
	    "request_timeout=x: expected seconds");
	plugin_start_fails(POLICYD_SO, "server=inet:127.0.0.1:10023,max_idle=0",
	    "max_idle=0: expected seconds");
	plugin_start_fails(POLICYD_SO, "server=inet:127.0.0.1:10023,default_action=MAYBE",
	    "default_action=MAYBE: not an access(5) action");
}

Test(policyd_args, accepted)
{
	sh_harness *h = sh_harness_new();

	cr_assert_not_null(h);
	cr_assert_eq(sh_harness_load(h, POLICYD_SO ":server=inet:127.0.0.1:10023,"
	    "at=connect;HELO;ehlo;MAIL;RCPT;DATA;END-OF-MESSAGE;VRFY,"
	    "request_timeout=0.5,max_idle=10,default_action=DUNNO,policy_context=x"), 0,
	    "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_start(h), 0, "%s", sh_harness_error(h));
	sh_harness_free(h);
}
