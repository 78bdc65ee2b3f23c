/*
 * test_auth.c - AUTH (RFC 4954) through the real core via the harness:
 * base64 decoding, PLAIN and LOGIN exchanges, the auth hook's verdicts,
 * cancel, errors, and the pool-backed authfile plugin.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sh_harness.h"
#include "smtp_parse.h"

/* A linked-in auth plugin: alice/secret is good, "later" tempfails. */
static sh_verdict
pw_auth(sh_ctx *ctx, const char *mech, const char *user, const char *pass)
{
	(void)mech;
	if (strcmp(user, "later") == 0)
		return SH_TEMPFAIL;
	if (strcmp(user, "alice") == 0 && strcmp(pass, "secret") == 0)
		return SH_ACCEPT;
	(void)ctx;
	return SH_REJECT;
}

static char seen_user[64];

static sh_verdict
pw_mail(sh_ctx *ctx, const sh_address *sender)
{
	const sh_session_info *si = sh_session(ctx);

	(void)sender;
	snprintf(seen_user, sizeof(seen_user), "%s",
	    si->auth_user != NULL ? si->auth_user : "(none)");
	return SH_CONTINUE;
}

static const sh_plugin pw = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "pw",
	.auth = pw_auth, .mail = pw_mail,
};

static sh_harness *
start(const char *mechs)
{
	sh_harness *h = sh_harness_new();

	cr_assert_eq(sh_harness_option(h, "auth", mechs), 0);
	cr_assert_eq(sh_harness_option(h, "auth-insecure", NULL), 0);
	cr_assert_eq(sh_harness_add(h, &pw, NULL), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_connect(h, "192.0.2.9"), 220, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_cmd(h, "EHLO c.example"), 250);
	return h;
}

Test(auth, base64_decoder)
{
	unsigned char out[64];
	size_t n;

	cr_assert_eq(smtp_base64_decode("AGFsaWNlAHNlY3JldA==", 20, out, sizeof(out), &n), 0);
	cr_assert_eq(n, 13);
	cr_assert(memcmp(out, "\0alice\0secret", 13) == 0);
	cr_assert_eq(smtp_base64_decode("=", 1, out, sizeof(out), &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(smtp_base64_decode("YWJj", 4, out, sizeof(out), &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(smtp_base64_decode("YWI=", 4, out, sizeof(out), &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(smtp_base64_decode("YQ==", 4, out, sizeof(out), &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(smtp_base64_decode("YWJ", 3, out, sizeof(out), &n), -1);
	cr_assert_eq(smtp_base64_decode("Y=Jj", 4, out, sizeof(out), &n), -1);
	cr_assert_eq(smtp_base64_decode("YQ==YWJj", 8, out, sizeof(out), &n), -1);
	cr_assert_eq(smtp_base64_decode("YR==", 4, out, sizeof(out), &n), -1);
	cr_assert_eq(smtp_base64_decode("YW J", 4, out, sizeof(out), &n), -1);
	cr_assert_eq(smtp_base64_decode("", 0, out, sizeof(out), &n), -1);
	cr_assert_eq(smtp_base64_decode("YWJjYWJj", 8, out, 5, &n), -1);
}

Test(auth, ehlo_advertises_mechanisms)
{
	sh_harness *h = start("PLAIN,LOGIN");

	cr_assert(strstr(sh_harness_reply(h), "250-AUTH PLAIN LOGIN") != NULL,
	    "%s", sh_harness_reply(h));
	sh_harness_free(h);
}

Test(auth, plain_initial_response)
{
	sh_harness *h = start("PLAIN");

	/* \0alice\0secret */
	cr_assert_eq(sh_harness_cmd(h, "AUTH PLAIN AGFsaWNlAHNlY3JldA=="), 235);
	cr_assert_str_eq(sh_harness_reply(h), "235 2.7.0 Authentication successful");
	cr_assert_eq(sh_harness_cmd(h, "AUTH PLAIN AGFsaWNlAHNlY3JldA=="), 503);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<a@example.org>"), 250);
	cr_assert_str_eq(seen_user, "alice");
	sh_harness_free(h);
}

Test(auth, plain_challenge_and_authzid)
{
	sh_harness *h = start("PLAIN");

	cr_assert_eq(sh_harness_cmd(h, "AUTH PLAIN"), 334);
	cr_assert_str_eq(sh_harness_reply(h), "334 ");
	/* alice\0alice\0secret: authzid equal to authcid is fine */
	cr_assert_eq(sh_harness_cmd(h, "YWxpY2UAYWxpY2UAc2VjcmV0"), 235);
	sh_harness_free(h);
	h = start("PLAIN");
	/* bob\0alice\0secret: acting for someone else is refused */
	cr_assert_eq(sh_harness_cmd(h, "AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA=="), 535);
	sh_harness_free(h);
}

Test(auth, login_exchange)
{
	sh_harness *h = start("LOGIN");

	cr_assert_eq(sh_harness_cmd(h, "AUTH LOGIN"), 334);
	cr_assert_str_eq(sh_harness_reply(h), "334 VXNlcm5hbWU6");
	cr_assert_eq(sh_harness_cmd(h, "YWxpY2U="), 334);
	cr_assert_str_eq(sh_harness_reply(h), "334 UGFzc3dvcmQ6");
	cr_assert_eq(sh_harness_cmd(h, "c2VjcmV0"), 235);
	sh_harness_free(h);
	h = start("LOGIN");
	/* initial response carries the user name */
	cr_assert_eq(sh_harness_cmd(h, "AUTH LOGIN YWxpY2U="), 334);
	cr_assert_eq(sh_harness_cmd(h, "c2VjcmV0"), 235);
	sh_harness_free(h);
}

Test(auth, failures_cancel_and_errors)
{
	sh_harness *h = start("PLAIN,LOGIN");

	/* wrong password: 535 after a delay */
	cr_assert_eq(sh_harness_cmd(h, "AUTH PLAIN AGFsaWNlAHdyb25n"), 535);
	cr_assert(strncmp(sh_harness_reply(h), "535 5.7.8 ", 10) == 0);
	cr_assert_eq(sh_harness_cmd(h, "AUTH LOGIN"), 334);
	cr_assert_eq(sh_harness_cmd(h, "*"), 501);
	cr_assert(strncmp(sh_harness_reply(h), "501 5.0.0", 9) == 0);
	cr_assert_eq(sh_harness_cmd(h, "AUTH PLAIN !!!!"), 501);
	cr_assert(strncmp(sh_harness_reply(h), "501 5.5.2", 9) == 0);
	cr_assert_eq(sh_harness_cmd(h, "AUTH CRAM-MD5"), 504);
	cr_assert_eq(sh_harness_cmd(h, "AUTH"), 501);
	/* tempfail from the plugin: later\0x */
	cr_assert_eq(sh_harness_cmd(h, "AUTH PLAIN AGxhdGVyAHg="), 454);
	cr_assert(strncmp(sh_harness_reply(h), "454 4.7.0", 9) == 0);
	/* during a transaction AUTH is out of sequence */
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<a@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "AUTH PLAIN AGFsaWNlAHNlY3JldA=="), 503);
	cr_assert_str_eq(seen_user, "(none)");
	sh_harness_free(h);
}

Test(auth, not_offered_without_tls)
{
	sh_harness *h = sh_harness_new();

	cr_assert_eq(sh_harness_option(h, "tls-cert", "/etc/hostname"), 0);
	cr_assert_eq(sh_harness_option(h, "tls-key", "/etc/hostname"), 0);
	cr_assert_eq(sh_harness_option(h, "auth", "PLAIN"), 0);
	cr_assert_eq(sh_harness_add(h, &pw, NULL), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_connect(h, "192.0.2.9"), 220);
	cr_assert_eq(sh_harness_cmd(h, "EHLO c.example"), 250);
	cr_assert(strstr(sh_harness_reply(h), "AUTH") == NULL);
	cr_assert_eq(sh_harness_cmd(h, "AUTH PLAIN AGFsaWNlAHNlY3JldA=="), 538);
	cr_assert(strncmp(sh_harness_reply(h), "538 5.7.11", 10) == 0);
	sh_harness_free(h);
}

Test(auth, authfile_plugin_on_the_pool)
{
	char path[] = "/tmp/smtphook-users-XXXXXX";
	int fd = mkstemp(path);
	/* sha512-crypt of "secret" with salt "saltsalt" */
	const char *line = "# users\nalice:$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiN"
	    "uHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1\n";
	sh_harness *h = sh_harness_new();
	char spec[256];

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	close(fd);
	snprintf(spec, sizeof(spec), SMTPHOOK_BUILD_DIR "/plugins/authfile.so:file=%s", path);
	cr_assert_eq(sh_harness_option(h, "auth", "PLAIN"), 0);
	cr_assert_eq(sh_harness_option(h, "auth-insecure", NULL), 0);
	cr_assert_eq(sh_harness_load(h, spec), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_connect(h, "192.0.2.9"), 220, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_cmd(h, "EHLO c"), 250);
	cr_assert_eq(sh_harness_cmd(h, "AUTH PLAIN AGFsaWNlAHdyb25n"), 535);
	cr_assert_eq(sh_harness_cmd(h, "AUTH PLAIN AGJvYgBzZWNyZXQ="), 535);	/* bob */
	cr_assert_eq(sh_harness_cmd(h, "AUTH PLAIN AGFsaWNlAHNlY3JldA=="), 235);
	sh_harness_free(h);
	unlink(path);
}

/* The per-address failure table (server/auth_throttle.c), on its own. */
#include "auth_throttle.h"

static void
v4(uint8_t key[16], unsigned n)
{
	memset(key, 0, 16);
	key[10] = key[11] = 0xff;
	key[12] = 192, key[13] = 0, key[14] = (uint8_t)(n >> 8), key[15] = (uint8_t)n;
}

Test(auth, throttle_delays_checks_and_evicts)
{
	static struct auth_throttle t;
	uint8_t a[16], b[16];
	unsigned fails, i;
	int rose;
	double w;

	cr_assert_eq(auth_throttle_delay(1), 0.5);
	cr_assert_eq(auth_throttle_delay(2), 1.0);
	cr_assert_eq(auth_throttle_delay(10), 2.0);
	cr_assert_eq(auth_throttle_delay(1000), 8.0);
	v4(a, 1), v4(b, 2);
	cr_assert_eq(auth_throttle_wait(&t, a, 100.0), 0.0);
	cr_assert_eq(auth_throttle_fail(&t, a, 100.0, &fails, &rose), 0.5);
	cr_assert_eq(fails, 1);
	cr_assert_eq(rose, 0);
	/* another connection of the same address, before the 535 went out */
	w = auth_throttle_wait(&t, a, 100.2);
	cr_assert_float_eq(w, 0.3, 1e-9);
	cr_assert_eq(auth_throttle_fail(&t, a, 100.5, &fails, &rose), 1.0);
	cr_assert_eq(fails, 2);
	cr_assert_eq(rose, 1);
	/* three parallel checks take turns, one a second */
	cr_assert_eq(auth_throttle_wait(&t, a, 100.5), 1.0);
	cr_assert_eq(auth_throttle_wait(&t, a, 100.5), 2.0);
	cr_assert_eq(auth_throttle_wait(&t, a, 100.5), 3.0);
	cr_assert_eq(auth_throttle_wait(&t, b, 100.5), 0.0);	/* others are free */
	/* forgotten AUTH_THROTTLE_TTL after the last failure */
	cr_assert_eq(auth_throttle_fail(&t, a, 2000.0, &fails, &rose), 0.5);
	cr_assert_eq(fails, 1);
	/* IPv6 counts by /64 */
	memset(a, 0, 16), a[0] = 0x20, a[1] = 0x01, a[15] = 1;
	memcpy(b, a, 16), b[15] = 2;
	auth_throttle_fail(&t, a, 3000.0, &fails, &rose);
	auth_throttle_fail(&t, b, 3000.0, &fails, &rose);
	cr_assert_eq(fails, 2);
	/* full: the oldest record makes room, the table never grows */
	for (i = 0; i < 2 * AUTH_THROTTLE_CAP; i++) {
		v4(b, i + 10);
		auth_throttle_fail(&t, b, 4000.0 + i, &fails, &rose);
	}
	cr_assert_eq(t.len, AUTH_THROTTLE_CAP);
	v4(b, 10);
	cr_assert_eq(auth_throttle_wait(&t, b, 4000.0 + 2 * AUTH_THROTTLE_CAP), 0.0);
	v4(b, 2 * AUTH_THROTTLE_CAP + 9);
	w = auth_throttle_wait(&t, b, 4000.0 + 2 * AUTH_THROTTLE_CAP - 1);
	cr_assert_gt(w, 0.0);
}

Test(auth, errors_end_the_exchange_and_nul_is_refused)
{
	sh_harness *h = start("PLAIN,LOGIN");
	char line[4096];

	/* over-long answer: 500, and the next line is a command again */
	cr_assert_eq(sh_harness_cmd(h, "AUTH PLAIN"), 334);
	memset(line, 'A', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	cr_assert_eq(sh_harness_cmd(h, line), 500);
	cr_assert_eq(sh_harness_cmd(h, "NOOP"), 250);
	/* LOGIN user alice\0junk: refused, never cut to "alice" */
	cr_assert_eq(sh_harness_cmd(h, "AUTH LOGIN YWxpY2UAanVuaw=="), 501);
	cr_assert(strncmp(sh_harness_reply(h), "501 5.5.2", 9) == 0);
	cr_assert_eq(sh_harness_cmd(h, "c2VjcmV0"), 500);	/* not an answer */
	/* PLAIN \0alice\0secret\0x: a NUL in the password */
	cr_assert_eq(sh_harness_cmd(h, "AUTH PLAIN AGFsaWNlAHNlY3JldAB4"), 501);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<a@example.org>"), 250);
	cr_assert_str_eq(seen_user, "(none)");
	sh_harness_free(h);
}
