/*
 * test_example_plugin.c - the harness example of docs/plugin-guide.md,
 * run for real against sdk/examples/domain_guard.c.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "plugins/plugin_test.h"
#include "sh_harness.h"

Test(domain_guard, refuses_foreign_domains)
{
	sh_harness *h = sh_harness_new();

	cr_assert_eq(sh_harness_load(h, SMTPHOOK_BUILD_DIR
	    "/examples/domain_guard.so:domains=example.org"), 0, "%s",
	    sh_harness_error(h));
	cr_assert_eq(sh_harness_load(h, SMTPHOOK_BUILD_DIR "/plugins/sink.so"), 0);
	cr_assert_eq(sh_harness_connect(h, "192.0.2.7"), 220);
	cr_assert_eq(sh_harness_cmd(h, "EHLO client.example"), 250);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<a@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<b@elsewhere.test>"), 550);
	cr_assert_str_eq(sh_harness_reply(h),
	    "550 5.7.1 Recipient domain not served here");
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<b@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "DATA"), 354);
	const char *msg = "Subject: x\r\n\r\nhi\r\n";
	cr_assert_eq(sh_harness_body(h, msg, strlen(msg), 7), 250);
	cr_assert(strstr(sh_harness_trace(h), "X-Domain-Guard:") != NULL);
	sh_harness_free(h);
}

Test(domain_guard, tarpit_pending_resolves)
{
	sh_harness *h = sh_harness_new();

	cr_assert_eq(sh_harness_load(h, SMTPHOOK_BUILD_DIR
	    "/examples/domain_guard.so:domains=example.org,tarpit=0.05,max_bad=1"), 0);
	cr_assert_eq(sh_harness_connect(h, "192.0.2.7"), 220);
	cr_assert_eq(sh_harness_cmd(h, "EHLO client.example"), 250);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<a@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<b@elsewhere.test>"), 550);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<c@elsewhere.test>"), 421);
	sh_harness_free(h);
}

Test(domain_guard, bad_arguments_are_refused_with_a_reason)
{
	static const struct {
		const char *args, *error;
	} cases[] = {
		{ "", "domains= is required" },
		{ "domains=", "domains= is required" },
		{ "domains=example.org;;example.net", "domains: '' is not a domain" },
		{ "domains=exa mple.org", "domains: 'exa mple.org' is not a domain" },
		{ "domains=example.org,tarpit=inf", "tarpit=inf: expected seconds" },
		{ "domains=example.org,tarpit=61", "tarpit=61: expected seconds" },
		{ "domains=example.org,max_bad=5x", "max_bad=5x: expected a number" },
		{ "domains=example.org,max_bad=-1", "max_bad=-1: expected a number" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		plugin_start_fails(SMTPHOOK_BUILD_DIR "/examples/domain_guard.so",
		    cases[i].args, cases[i].error);
}

Test(domain_guard, wildcard_and_case)
{
	sh_harness *h = sh_harness_new();

	cr_assert_eq(sh_harness_load(h, SMTPHOOK_BUILD_DIR
	    "/examples/domain_guard.so:domains=Example.ORG;*.example.net"), 0);
	cr_assert_eq(sh_harness_connect(h, "192.0.2.7"), 220);
	cr_assert_eq(sh_harness_cmd(h, "EHLO client.example"), 250);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<a@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<b@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<b@mx.EXAMPLE.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<b@example.net>"), 550);
	sh_harness_free(h);
}
