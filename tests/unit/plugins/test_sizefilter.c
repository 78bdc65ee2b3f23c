/*
 * test_sizefilter.c - plugins/sizefilter through the SDK harness (the
 * real core): argument checks, SIZE= at MAIL, the streamed limit at
 * limit and limit+1 in one write and in 1-octet writes, what a later
 * (storing) plugin sees, BDAT, the recipient cap.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sh_harness.h"

#define SIZEFILTER SMTPHOOK_BUILD_DIR "/plugins/sizefilter.so"

/* ---- a linked-in plugin after sizefilter: what a storing plugin sees ---- */

static struct probe {
	size_t chunks;		/* chunk calls */
	size_t octets;		/* octets in them */
	int eom, reset;
} probe;

static sh_verdict
probe_chunk(sh_ctx *ctx, const unsigned char *data, size_t len)
{
	(void)ctx, (void)data;
	probe.chunks++;
	probe.octets += len;
	return SH_CONTINUE;
}

static sh_verdict
probe_eom(sh_ctx *ctx)
{
	(void)ctx;
	probe.eom++;
	return SH_ACCEPT;
}

static void
probe_reset(sh_ctx *ctx)
{
	(void)ctx;
	probe.reset++;
}

static const sh_plugin probe_plugin = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "probe",
	.chunk = probe_chunk, .eom = probe_eom, .reset = probe_reset,
};

/* A linked-in plugin that refuses recipients named "bad". */
static sh_verdict
bad_rcpt(sh_ctx *ctx, const sh_address *rcpt)
{
	if (strcmp(rcpt->local, "bad") == 0)
		return sh_reject(ctx, 550, "5.1.1", "No such user");
	return SH_CONTINUE;
}

static const sh_plugin bad_plugin = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "bad", .rcpt = bad_rcpt,
};

/* ---- helpers ---- */

/*
 * make_msg - a message of exactly n octets (n >= 32) as the plugins will
 * count it: CRLF lines, some starting with '.' (stuffed on the wire,
 * counted once), ending in CRLF.
 */
static char *
make_msg(size_t n)
{
	static const char head[] = "Subject: size test\r\n\r\n";
	char *m = malloc(n + 1);
	size_t i = sizeof(head) - 1, line = 0, k, len;

	cr_assert_not_null(m);
	cr_assert_geq(n, 32);
	memcpy(m, head, i);
	while (i < n) {
		/* 70-octet lines while they fit, then the rest (>= 0 octets). */
		len = n - i >= 74 ? 70 : n - i - 2;
		for (k = 0; k < len; k++)
			m[i + k] = k == 0 && line % 3 == 0 ? '.' : (char)('a' + (i + k) % 26);
		i += len;
		m[i++] = '\r';
		m[i++] = '\n';
		line++;
	}
	m[n] = '\0';
	return m;
}

static sh_harness *
start(const char *args)
{
	char spec[512];
	sh_harness *h = sh_harness_new();

	cr_assert_not_null(h);
	snprintf(spec, sizeof(spec), SIZEFILTER ":%s", args);
	cr_assert_eq(sh_harness_load(h, spec), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_add(h, &probe_plugin, NULL), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_start(h), 0, "%s", sh_harness_error(h));
	memset(&probe, 0, sizeof(probe));
	cr_assert_eq(sh_harness_connect(h, "192.0.2.7"), 220);
	cr_assert_eq(sh_harness_cmd(h, "EHLO client.example"), 250);
	return h;
}

/* send_msg - MAIL, RCPT, DATA and n octets in writes of `chunk` */
static int
send_msg(sh_harness *h, size_t n, size_t chunk)
{
	char *m = make_msg(n);
	int code;

	cr_assert_eq(strlen(m), n);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<r@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "DATA"), 354);
	code = sh_harness_body(h, m, n, chunk);
	free(m);
	return code;
}

static void
start_fails(const char *args, const char *needle)
{
	char spec[512];
	sh_harness *h = sh_harness_new();

	snprintf(spec, sizeof(spec), SIZEFILTER "%s%s", args[0] ? ":" : "", args);
	if (sh_harness_load(h, spec) == 0)
		cr_assert_eq(sh_harness_start(h), -1, "'%s' must not start", args);
	cr_assert(strstr(sh_harness_error(h), needle) != NULL, "'%s': %s", args,
	    sh_harness_error(h));
	sh_harness_free(h);
}

/* ---- arguments ---- */

Test(sizefilter, arguments_validated)
{
	start_fails("", "no limit given");
	start_fails("max=", "max=: expected a positive number");
	start_fails("max=abc", "max=abc: expected");
	start_fails("max=0", "max=0: expected a positive");
	start_fails("max=-1", "max=-1");
	start_fails("max=10MB", "max=10MB");
	start_fails("max=1.5M", "max=1.5M");
	start_fails("max=18446744073709551616", "expected");
	start_fails("max_recipients=0", "max_recipients=0: expected a positive");
	start_fails("max_recipients=ten", "max_recipients=ten");
	start_fails("max_recipients=4294967296", "max_recipients=");
	start_fails("max=10,colour=red", "unknown argument 'colour'");
}

Test(sizefilter, suffix_k_is_1024)
{
	sh_harness *h = start("max=1k");

	cr_assert_eq(send_msg(h, 1024, 0), 250);
	cr_assert_eq(send_msg(h, 1025, 0), 552);
	sh_harness_free(h);
}

/* ---- SIZE= ---- */

Test(sizefilter, mail_size_at_limit_and_above)
{
	sh_harness *h = start("max=1000");

	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net> SIZE=1000"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RSET"), 250);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net> SIZE=1001"), 552);
	cr_assert_str_eq(sh_harness_reply(h), "552 5.3.4 Message size exceeds fixed "
	    "maximum message size of 1000 octets");
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net> size=0"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RSET"), 250);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net>"), 250, "no SIZE=");
	cr_assert_eq(sh_harness_cmd(h, "RSET"), 250);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net> SIZE=18446744073709551615"),
	    552, "2^64-1");
	sh_harness_free(h);
}

Test(sizefilter, size_param_ignored_without_max)
{
	sh_harness *h = start("max_recipients=5");

	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net> SIZE=99999999999"), 250);
	sh_harness_free(h);
}

/* ---- the streamed limit ---- */

Test(sizefilter, body_exactly_at_limit_accepted)
{
	sh_harness *h = start("max=5000");

	cr_assert_eq(send_msg(h, 5000, 0), 250);
	cr_assert_eq(probe.eom, 1);
	cr_assert_eq(probe.octets, 5000, "the storing plugin saw all of it");
	cr_assert_eq(probe.reset, 0);
	sh_harness_free(h);
}

Test(sizefilter, body_at_limit_in_1_octet_writes_accepted)
{
	sh_harness *h = start("max=600");

	cr_assert_eq(send_msg(h, 600, 1), 250);
	cr_assert_eq(probe.octets, 600);
	cr_assert_eq(probe.eom, 1);
	cr_assert_gt(probe.chunks, 100, "it did arrive in small chunks (%zu)",
	    probe.chunks);
	sh_harness_free(h);
}

Test(sizefilter, limit_plus_1_in_one_write)
{
	sh_harness *h = start("max=5000");

	cr_assert_eq(send_msg(h, 5001, 0), 552);
	cr_assert_str_eq(sh_harness_reply(h), "552 5.3.4 Message size exceeds fixed "
	    "maximum message size of 5000 octets");
	cr_assert(!sh_harness_accepted(h));
	cr_assert_eq(probe.eom, 0, "nothing stored");
	cr_assert_eq(probe.reset, 1, "later plugins get reset");
	cr_assert_eq(probe.octets, 0, "the one chunk crossed the limit: never passed on");
	sh_harness_free(h);
}

Test(sizefilter, limit_plus_1_in_1_octet_writes)
{
	sh_harness *h = start("max=600");

	cr_assert_eq(send_msg(h, 601, 1), 552);
	cr_assert_eq(sh_harness_code(h), 552);
	cr_assert(strstr(sh_harness_reply(h), "552 5.3.4 ") == sh_harness_reply(h));
	cr_assert_eq(probe.eom, 0);
	cr_assert_eq(probe.reset, 1);
	/* Every chunk before the limit went on; not one octet past it. */
	cr_assert_leq(probe.octets, 600);
	cr_assert_geq(probe.octets, 597, "%zu", probe.octets);
	sh_harness_free(h);
}

Test(sizefilter, far_over_limit_drains_and_session_goes_on)
{
	sh_harness *h = start("max=1000");

	cr_assert_eq(send_msg(h, 1 << 20, 4096), 552);
	cr_assert_eq(probe.eom, 0);
	cr_assert_leq(probe.octets, 1000);
	/* The next transaction counts from zero. */
	memset(&probe, 0, sizeof(probe));
	cr_assert_eq(send_msg(h, 1000, 7), 250);
	cr_assert_eq(probe.octets, 1000);
	cr_assert_eq(sh_harness_cmd(h, "NOOP"), 250);
	sh_harness_free(h);
}

Test(sizefilter, counter_is_per_transaction)
{
	sh_harness *h = start("max=1000");

	cr_assert_eq(send_msg(h, 900, 0), 250);
	cr_assert_eq(send_msg(h, 900, 0), 250);
	cr_assert_eq(send_msg(h, 900, 100), 250);
	cr_assert_eq(probe.eom, 3);
	sh_harness_free(h);
}

Test(sizefilter, dot_stuffing_not_counted)
{
	/* ".\r\n" lines are sent as "..\r\n": 3 octets each, not 4. */
	static const char body[] = "Subject: dots\r\n\r\n.\r\n.\r\n.\r\n.\r\n";
	size_t n = sizeof(body) - 1;
	char spec[64];
	sh_harness *h;

	snprintf(spec, sizeof(spec), "max=%zu", n);
	h = start(spec);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<r@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "DATA"), 354);
	cr_assert_eq(sh_harness_body(h, body, n, 0), 250);
	cr_assert_eq(probe.octets, n);
	sh_harness_free(h);
}

/* ---- recipients ---- */

Test(sizefilter, recipients_at_limit_and_above)
{
	sh_harness *h = start("max_recipients=3");

	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<a@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<b@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<c@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<d@example.org>"), 452);
	cr_assert_str_eq(sh_harness_reply(h), "452 4.5.3 Too many recipients: at most 3 "
	    "per message");
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<e@example.org>"), 452);
	/* The message still goes to the three accepted ones. */
	cr_assert_eq(sh_harness_cmd(h, "DATA"), 354);
	cr_assert_eq(sh_harness_body(h, "Subject: x\r\n\r\nhi\r\n", 18, 0), 250);
	/* A new transaction starts from zero. */
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<a@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RSET"), 250);
	sh_harness_free(h);
}

Test(sizefilter, refused_recipients_do_not_count)
{
	sh_harness *h = sh_harness_new();

	cr_assert_eq(sh_harness_load(h, SIZEFILTER ":max_recipients=2"), 0);
	cr_assert_eq(sh_harness_add(h, &bad_plugin, NULL), 0);
	cr_assert_eq(sh_harness_connect(h, "192.0.2.7"), 220);
	cr_assert_eq(sh_harness_cmd(h, "HELO client.example"), 250);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<a@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<bad@example.org>"), 550);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<bad@example.org>"), 550);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<b@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<c@example.org>"), 452);
	sh_harness_free(h);
}

Test(sizefilter, recipients_only_leaves_body_alone)
{
	sh_harness *h = start("max_recipients=1");

	cr_assert_eq(send_msg(h, 200000, 0), 250);
	cr_assert_eq(probe.octets, 200000);
	sh_harness_free(h);
}

Test(sizefilter, both_limits)
{
	sh_harness *h = start("max=2k,max_recipients=1");

	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net> SIZE=2048"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<a@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<b@example.org>"), 452);
	cr_assert_eq(sh_harness_cmd(h, "RSET"), 250);
	cr_assert_eq(send_msg(h, 2049, 64), 552);
	sh_harness_free(h);
}

/* ---- BDAT (RFC 3030): the same chunk hook, the same limit ---- */

/* bdat - send "BDAT n [LAST]" and n octets of m; the reply's code */
static int
bdat(sh_harness *h, const char *m, size_t n, int last)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "BDAT %zu%s\r\n", n, last ? " LAST" : "");
	cr_assert_eq(sh_harness_send(h, cmd, strlen(cmd), 0), 0);
	return sh_harness_send(h, m, n, 1);
}

Test(sizefilter, bdat_at_limit_and_plus_1)
{
	sh_harness *h = start("max=1000");
	char *m = make_msg(1001);

	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<r@example.org>"), 250);
	cr_assert_eq(bdat(h, m, 600, 0), 250);
	cr_assert_eq(bdat(h, m + 600, 400, 1), 250, "%s", sh_harness_reply(h));
	cr_assert_eq(probe.octets, 1000);
	cr_assert_eq(probe.eom, 1);

	memset(&probe, 0, sizeof(probe));
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<r@example.org>"), 250);
	cr_assert_eq(bdat(h, m, 600, 0), 250);
	cr_assert_eq(bdat(h, m + 600, 401, 1), 552);
	cr_assert_str_eq(sh_harness_reply(h), "552 5.3.4 Message size exceeds fixed "
	    "maximum message size of 1000 octets");
	cr_assert_eq(probe.eom, 0);
	cr_assert_eq(probe.reset, 1);
	cr_assert_eq(probe.octets, 600, "the crossing chunk never reached the probe");
	cr_assert_eq(sh_harness_cmd(h, "NOOP"), 250);
	free(m);
	sh_harness_free(h);
}

Test(sizefilter, bdat_chunks_after_the_refusal_get_it_too)
{
	sh_harness *h = start("max=1000");
	char *m = make_msg(3000);

	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<r@example.org>"), 250);
	cr_assert_eq(bdat(h, m, 1001, 0), 552);
	cr_assert_eq(bdat(h, m + 1001, 999, 0), 552, "%s", sh_harness_reply(h));
	cr_assert_eq(bdat(h, m + 2000, 1000, 1), 552);
	cr_assert_eq(probe.octets, 0);
	cr_assert_eq(probe.eom, 0);
	/* The next message is measured afresh. */
	memset(&probe, 0, sizeof(probe));
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<r@example.org>"), 250);
	cr_assert_eq(bdat(h, m, 1000, 1), 250);
	cr_assert_eq(probe.octets, 1000);
	free(m);
	sh_harness_free(h);
}
