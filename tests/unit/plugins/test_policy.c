/*
 * test_policy.c - plugins/policy through the SDK harness (the real core):
 * every argument, CIDR boundaries for IPv4 and IPv6 (/0, /64, /128,
 * IPv4-mapped peers and rules), deny-over-allow, recipient domains with
 * sub-domain patterns, the deny_senders file, the two HELO checks.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugins/plugin_test.h"
#include "sh_harness.h"

#define POLICY SMTPHOOK_BUILD_DIR "/plugins/policy.so"

/* ---- helpers ---- */

static sh_harness *
load(const char *args)
{
	char spec[2048];
	sh_harness *h = sh_harness_new();

	cr_assert_not_null(h);
	snprintf(spec, sizeof(spec), POLICY ":%s", args);
	cr_assert_eq(sh_harness_load(h, spec), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_load(h, SMTPHOOK_BUILD_DIR "/plugins/sink.so"), 0);
	cr_assert_eq(sh_harness_start(h), 0, "%s", sh_harness_error(h));
	return h;
}

/* greeting - the greeting's code for a client at peer under args */
static int
greeting(const char *args, const char *peer)
{
	sh_harness *h = load(args);
	int code = sh_harness_connect(h, peer);

	sh_harness_free(h);
	return code;
}

static void
start_fails(const char *args, const char *needle)
{
	plugin_start_fails(POLICY, args, needle);
}

/* tmpfile_with - a temporary file holding text; the caller unlinks it */
static char *
tmpfile_with(const char *text)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/policy-test-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

/* ---- arguments ---- */

Test(policy, arguments_validated)
{
	start_fails("", "no rule given");
	start_fails("allow_ip=", "allow_ip: empty list");
	start_fails("allow_ip= ; ;", "allow_ip: empty list");
	start_fails("allow_ip=192.0.2.1;;192.0.2.2", "allow_ip: empty item in "
	    "'192.0.2.1;;192.0.2.2'");
	start_fails("rcpt_domains=example.com;", "rcpt_domains: empty item");
	start_fails("allow_ip=192.0.2.0/33", "allow_ip: '192.0.2.0/33' is not");
	start_fails("deny_ip=10.0.0.0/8;2001:db8::/129", "deny_ip: '2001:db8::/129' is not");
	start_fails("deny_ip=example.com", "deny_ip: 'example.com' is not");
	start_fails("allow_ip=010.0.0.1", "'010.0.0.1'");
	start_fails("rcpt_domains=", "rcpt_domains: empty list");
	start_fails("rcpt_domains=example.com;bad domain", "'bad domain' is not a domain");
	start_fails("rcpt_domains=ex*ample.com", "'ex*ample.com' is not");
	start_fails("rcpt_domains=*", "'*' is not");
	start_fails("rcpt_domains=a..b", "'a..b'");
	start_fails("require_helo=maybe", "require_helo=maybe: expected yes or no");
	start_fails("reject_ip_helo=", "reject_ip_helo=: expected yes or no");
	start_fails("deny_senders=", "deny_senders: a file name is required");
	start_fails("deny_senders=/nonexistent/senders.txt",
	    "deny_senders: /nonexistent/senders.txt: No such file or directory");
	start_fails("deny_senders=/tmp", "deny_senders: /tmp: not a regular file");
	start_fails("require_helo=yes,colour=red", "unknown argument 'colour'");
}

Test(policy, deny_senders_bad_line_names_file_and_line)
{
	char *path = tmpfile_with("# spammers\nspam@example.com\n\nexample.net\n");
	char args[256], want[256];

	snprintf(args, sizeof(args), "deny_senders=%s", path);
	snprintf(want, sizeof(want), "deny_senders: %s:4: 'example.net' is neither an "
	    "address nor @domain", path);
	start_fails(args, want);
	unlink(path);
	path = tmpfile_with("a@example.com b@example.com\n");
	snprintf(args, sizeof(args), "deny_senders=%s", path);
	snprintf(want, sizeof(want), "%s:1: one address or @domain per line", path);
	start_fails(args, want);
	unlink(path);
	path = tmpfile_with("x@\n");
	snprintf(args, sizeof(args), "deny_senders=%s", path);
	start_fails(args, ":1: 'x@' is neither");
	unlink(path);
}

Test(policy, unreadable_file_named)
{
	char *path = tmpfile_with("a@example.com\n");
	char args[256], want[256];

	if (geteuid() == 0) {
		/* root reads anything: check a directory-less path instead */
		unlink(path);
		snprintf(args, sizeof(args), "deny_senders=%s/x", path);
		snprintf(want, sizeof(want), "deny_senders: %s/x: ", path);
		start_fails(args, want);
		return;
	}
	chmod(path, 0);
	snprintf(args, sizeof(args), "deny_senders=%s", path);
	snprintf(want, sizeof(want), "deny_senders: %s: Permission denied", path);
	start_fails(args, want);
	unlink(path);
}

/* ---- allow_ip / deny_ip ---- */

Test(policy, allow_ipv4_boundaries)
{
	const char *a = "allow_ip=192.0.2.0/24";

	cr_assert_eq(greeting(a, "192.0.2.0"), 220);
	cr_assert_eq(greeting(a, "192.0.2.255"), 220);
	cr_assert_eq(greeting(a, "192.0.3.0"), 554);
	cr_assert_eq(greeting(a, "192.0.1.255"), 554);
	cr_assert_eq(greeting(a, "2001:db8::1"), 554, "an IPv6 client is not in a v4 list");
}

Test(policy, refusal_text_and_close)
{
	sh_harness *h = load("allow_ip=192.0.2.0/24");

	cr_assert_eq(sh_harness_connect(h, "198.51.100.1"), 554);
	cr_assert_str_eq(sh_harness_reply(h), "554 5.7.1 harness.invalid Client address "
	    "not allowed: [198.51.100.1]");
	cr_assert_eq(sh_harness_cmd(h, "HELO c.example"), 503);
	cr_assert_eq(sh_harness_cmd(h, "QUIT"), 221);
	sh_harness_run(h, 0.05);
	cr_assert(sh_harness_closed(h));
	sh_harness_free(h);
	h = load("deny_ip=198.51.100.0/24");
	cr_assert_eq(sh_harness_connect(h, "198.51.100.1"), 554);
	cr_assert_str_eq(sh_harness_reply(h), "554 5.7.1 harness.invalid Client address "
	    "denied: [198.51.100.1]");
	cr_assert_eq(sh_harness_connect(h, "198.51.101.1"), 220);
	sh_harness_free(h);
}

Test(policy, bare_addresses_are_host_routes)
{
	const char *a = "allow_ip=192.0.2.7;2001:db8::7";

	cr_assert_eq(greeting(a, "192.0.2.7"), 220);
	cr_assert_eq(greeting(a, "192.0.2.6"), 554);
	cr_assert_eq(greeting(a, "192.0.2.8"), 554);
	cr_assert_eq(greeting(a, "2001:db8::7"), 220);
	cr_assert_eq(greeting(a, "2001:db8:0:0:0:0:0:7"), 220);
	cr_assert_eq(greeting(a, "2001:db8::8"), 554);
}

Test(policy, deny_wins_over_allow)
{
	const char *a = "allow_ip=10.0.0.0/8;2001:db8::/32,deny_ip=10.9.0.0/16;2001:db8:bad::/48";

	cr_assert_eq(greeting(a, "10.1.2.3"), 220);
	cr_assert_eq(greeting(a, "10.9.0.1"), 554);
	cr_assert_eq(greeting(a, "10.9.255.255"), 554);
	cr_assert_eq(greeting(a, "10.10.0.0"), 220);
	cr_assert_eq(greeting(a, "2001:db8:1::1"), 220);
	cr_assert_eq(greeting(a, "2001:db8:bad:ffff::1"), 554);
	cr_assert_eq(greeting(a, "192.0.2.1"), 554, "not in allow");
}

Test(policy, deny_only_lets_others_in)
{
	const char *a = "deny_ip=192.0.2.0/24";

	cr_assert_eq(greeting(a, "192.0.2.9"), 554);
	cr_assert_eq(greeting(a, "192.0.3.9"), 220);
	cr_assert_eq(greeting(a, "2001:db8::1"), 220);
}

Test(policy, ipv6_slash_0)
{
	cr_assert_eq(greeting("allow_ip=::/0", "2001:db8::1"), 220);
	cr_assert_eq(greeting("allow_ip=::/0", "::1"), 220);
	cr_assert_eq(greeting("allow_ip=::/0", "192.0.2.1"), 554, "::/0 is IPv6 only");
	cr_assert_eq(greeting("allow_ip=::/0", "::ffff:192.0.2.1"), 554,
	    "a mapped client is an IPv4 client");
	cr_assert_eq(greeting("allow_ip=0.0.0.0/0", "192.0.2.1"), 220);
	cr_assert_eq(greeting("allow_ip=0.0.0.0/0", "2001:db8::1"), 554);
	cr_assert_eq(greeting("allow_ip=0.0.0.0/0;::/0", "2001:db8::1"), 220);
	cr_assert_eq(greeting("deny_ip=::/0", "2001:db8::1"), 554);
	cr_assert_eq(greeting("deny_ip=::/0", "192.0.2.1"), 220);
}

Test(policy, ipv6_slash_64)
{
	const char *a = "allow_ip=2001:db8:1:2::/64";

	cr_assert_eq(greeting(a, "2001:db8:1:2::"), 220);
	cr_assert_eq(greeting(a, "2001:db8:1:2:ffff:ffff:ffff:ffff"), 220);
	cr_assert_eq(greeting(a, "2001:db8:1:3::"), 554);
	cr_assert_eq(greeting(a, "2001:db8:1:1:ffff:ffff:ffff:ffff"), 554);
}

Test(policy, ipv6_slash_128)
{
	const char *a = "allow_ip=2001:db8::1/128";

	cr_assert_eq(greeting(a, "2001:db8::1"), 220);
	cr_assert_eq(greeting(a, "2001:db8::"), 554);
	cr_assert_eq(greeting(a, "2001:db8::2"), 554);
	cr_assert_eq(greeting(a, "2001:db8::1:0"), 554);
}

Test(policy, ipv4_mapped_peers_and_rules)
{
	/* A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d. */
	cr_assert_eq(greeting("allow_ip=192.0.2.0/24", "::ffff:192.0.2.7"), 220);
	cr_assert_eq(greeting("allow_ip=192.0.2.0/24", "::ffff:192.0.3.7"), 554);
	cr_assert_eq(greeting("deny_ip=192.0.2.7", "::ffff:192.0.2.7"), 554);
	cr_assert_eq(greeting("allow_ip=192.0.2.7/32", "::ffff:c000:207"), 220, "hex form");
	/* A mapped rule is an IPv4 rule. */
	cr_assert_eq(greeting("allow_ip=::ffff:192.0.2.0/120", "192.0.2.200"), 220);
	cr_assert_eq(greeting("allow_ip=::ffff:192.0.2.0/120", "192.0.3.1"), 554);
	cr_assert_eq(greeting("allow_ip=::ffff:0:0/96", "203.0.113.9"), 220);
	/* ::192.0.2.7 (IPv4-compatible, deprecated) is plain IPv6. */
	cr_assert_eq(greeting("allow_ip=192.0.2.0/24", "::192.0.2.7"), 554);
}

Test(policy, host_bits_masked_with_warning)
{
	cr_assert_eq(greeting("allow_ip=192.0.2.77/24", "192.0.2.1"), 220);
	cr_assert_eq(greeting("allow_ip=192.0.2.77/24", "192.0.3.77"), 554);
}

/* ---- rcpt_domains ---- */

static sh_harness *
in_transaction(const char *args)
{
	sh_harness *h = load(args);

	cr_assert_eq(sh_harness_connect(h, "192.0.2.7"), 220);
	cr_assert_eq(sh_harness_cmd(h, "EHLO client.example"), 250);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net>"), 250);
	return h;
}

static int
rcpt(sh_harness *h, const char *addr)
{
	char line[512];

	snprintf(line, sizeof(line), "RCPT TO:<%s>", addr);
	return sh_harness_cmd(h, line);
}

Test(policy, rcpt_domains_exact_and_case)
{
	sh_harness *h = in_transaction("rcpt_domains=example.org;Example.NET.");

	cr_assert_eq(rcpt(h, "a@example.org"), 250);
	cr_assert_eq(rcpt(h, "a@EXAMPLE.Org"), 250);
	cr_assert_eq(rcpt(h, "a@example.net"), 250, "pattern's trailing dot ignored");
	cr_assert_eq(rcpt(h, "a@mx.example.org"), 550, "exact means exact");
	cr_assert_eq(rcpt(h, "a@example.com"), 550);
	cr_assert_str_eq(sh_harness_reply(h), "550 5.7.1 <a@example.com>: Relay access "
	    "denied: recipient domain example.com is not served here");
	cr_assert_eq(rcpt(h, "a@example.org.evil.test"), 550);
	cr_assert_eq(rcpt(h, "a@xexample.org"), 550);
	sh_harness_free(h);
}

Test(policy, rcpt_domains_subdomain_patterns)
{
	sh_harness *h = in_transaction("rcpt_domains=*.example.org;.example.net;example.com");

	cr_assert_eq(rcpt(h, "a@mx.example.org"), 250);
	cr_assert_eq(rcpt(h, "a@a.b.c.Example.ORG"), 250, "any depth");
	cr_assert_eq(rcpt(h, "a@example.org"), 550, "*.d does not match d itself");
	cr_assert_eq(rcpt(h, "a@badexample.org"), 550);
	cr_assert_eq(rcpt(h, "a@lists.example.net"), 250, ".d form");
	cr_assert_eq(rcpt(h, "a@example.net"), 550);
	cr_assert_eq(rcpt(h, "a@example.com"), 250);
	cr_assert_eq(rcpt(h, "a@sub.example.com"), 550);
	sh_harness_free(h);
}

Test(policy, rcpt_domains_postmaster_and_literals)
{
	sh_harness *h = in_transaction("rcpt_domains=example.org");

	cr_assert_eq(rcpt(h, "Postmaster"), 250, "RFC 5321 4.5.1");
	cr_assert_eq(rcpt(h, "postmaster@example.com"), 550, "only the bare form");
	cr_assert_eq(rcpt(h, "a@[192.0.2.1]"), 550);
	sh_harness_free(h);
}

/* ---- deny_senders ---- */

static const char senders_file[] =
    "# comment line\n"
    "  Spammer@Example.com   # trailing comment\n"
    "\n"
    "\t\n"
    "@bulk.example\r\n"
    "@*.botnet.example\n"
    "odd#local@example.org\n"
    "last@example.net";		/* no final newline */

static int
mail_from(sh_harness *h, const char *addr)
{
	char line[512];
	int code;

	snprintf(line, sizeof(line), "MAIL FROM:<%s>", addr);
	code = sh_harness_cmd(h, line);
	if (code == 250)
		cr_assert_eq(sh_harness_cmd(h, "RSET"), 250);
	return code;
}

Test(policy, deny_senders_file)
{
	char *path = tmpfile_with(senders_file), args[256];
	sh_harness *h;

	snprintf(args, sizeof(args), "deny_senders=%s", path);
	h = load(args);
	unlink(path);		/* read once at start-up */
	cr_assert_eq(sh_harness_connect(h, "192.0.2.7"), 220);
	cr_assert_eq(sh_harness_cmd(h, "EHLO client.example"), 250);
	cr_assert_eq(mail_from(h, "spammer@example.com"), 550);
	cr_assert_str_eq(sh_harness_reply(h), "550 5.7.1 <spammer@example.com>: Sender "
	    "address rejected: this address is not allowed to send here");
	cr_assert_eq(mail_from(h, "SPAMMER@EXAMPLE.COM"), 550, "case-insensitive");
	cr_assert_eq(mail_from(h, "other@example.com"), 250);
	cr_assert_eq(mail_from(h, "spammer@example.co"), 250);
	cr_assert_eq(mail_from(h, "anyone@bulk.example"), 550);
	cr_assert_str_eq(sh_harness_reply(h), "550 5.7.1 <anyone@bulk.example>: Sender "
	    "address rejected: senders in domain bulk.example are not allowed to send "
	    "here");
	cr_assert_eq(mail_from(h, "x@BULK.example"), 550);
	cr_assert_eq(mail_from(h, "x@sub.bulk.example"), 250, "@d is d only");
	cr_assert_eq(mail_from(h, "x@a.botnet.example"), 550);
	cr_assert_eq(mail_from(h, "x@a.b.botnet.example"), 550);
	cr_assert_eq(mail_from(h, "x@botnet.example"), 250, "@*.d is not d");
	cr_assert_eq(mail_from(h, "odd#local@example.org"), 550, "'#' inside is not a comment");
	cr_assert_eq(mail_from(h, "last@example.net"), 550, "last line without newline");
	cr_assert_eq(mail_from(h, ""), 250, "the null sender");
	sh_harness_free(h);
}

Test(policy, deny_senders_empty_file_is_fine)
{
	char *path = tmpfile_with("# nothing yet\n");
	char args[256];
	sh_harness *h;

	snprintf(args, sizeof(args), "deny_senders=%s", path);
	h = load(args);
	unlink(path);
	cr_assert_eq(sh_harness_connect(h, "192.0.2.7"), 220);
	cr_assert_eq(sh_harness_cmd(h, "HELO client.example"), 250);
	cr_assert_eq(mail_from(h, "a@example.com"), 250);
	sh_harness_free(h);
}

Test(policy, deny_senders_many_entries)
{
	/* 5,000 addresses and domains: sorted at init, binary search. */
	size_t cap = 5000 * 40, used = 0, i;
	char *text = malloc(cap), *path, args[256];
	sh_harness *h;

	for (i = 0; i < 2500; i++)
		used += (size_t)snprintf(text + used, cap - used, "user%zu@spam%zu.example\n"
		    "@*.d%zu.example\n", i, i % 97, i);
	path = tmpfile_with(text);
	free(text);
	snprintf(args, sizeof(args), "deny_senders=%s", path);
	h = load(args);
	unlink(path);
	cr_assert_eq(sh_harness_connect(h, "192.0.2.7"), 220);
	cr_assert_eq(sh_harness_cmd(h, "HELO client.example"), 250);
	cr_assert_eq(mail_from(h, "user0@spam0.example"), 550);
	cr_assert_eq(mail_from(h, "user2499@spam74.example"), 550);
	cr_assert_eq(mail_from(h, "user2499@spam75.example"), 250);
	cr_assert_eq(mail_from(h, "x@mx.d1234.example"), 550);
	cr_assert_eq(mail_from(h, "x@d1234.example"), 250);
	cr_assert_eq(mail_from(h, "x@mx.d2500.example"), 250);
	sh_harness_free(h);
}

/* ---- HELO ---- */

static int
helo_as(sh_harness *h, const char *verb, const char *name)
{
	char line[512];

	snprintf(line, sizeof(line), "%s %s", verb, name);
	return sh_harness_cmd(h, line);
}

Test(policy, require_helo_fqdn_or_literal)
{
	sh_harness *h = load("require_helo=yes");

	cr_assert_eq(sh_harness_connect(h, "192.0.2.7"), 220);
	cr_assert_eq(helo_as(h, "EHLO", "localhost"), 501);
	cr_assert_str_eq(sh_harness_reply(h), "501 5.5.2 EHLO localhost refused: give "
	    "your fully-qualified host name or an address literal such as [192.0.2.7]");
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<a@example.com>"), 503,
	    "still no greeting: the host refuses MAIL");
	cr_assert_eq(helo_as(h, "HELO", "WIN-7QX2"), 501);
	cr_assert_eq(helo_as(h, "EHLO", "192.0.2.7"), 501, "a bare IP is not a name");
	cr_assert_eq(helo_as(h, "EHLO", "host.123"), 501, "numeric TLD");
	cr_assert_eq(helo_as(h, "EHLO", "mail.example.com"), 250);
	cr_assert_eq(helo_as(h, "EHLO", "mail.example.com."), 250, "absolute form");
	cr_assert_eq(helo_as(h, "HELO", "MAIL.Example.COM"), 250);
	cr_assert_eq(helo_as(h, "EHLO", "my_pc.corp.example"), 250, "underscore tolerated");
	cr_assert_eq(helo_as(h, "EHLO", "[192.0.2.99]"), 250,
	    "any valid literal: reject_ip_helo is the address check");
	cr_assert_eq(helo_as(h, "EHLO", "[IPv6:2001:db8::1]"), 250);
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<a@example.com>"), 250);
	sh_harness_free(h);
}

Test(policy, require_helo_advice_for_ipv6_client)
{
	sh_harness *h = load("require_helo=yes");

	cr_assert_eq(sh_harness_connect(h, "2001:db8::7"), 220);
	cr_assert_eq(helo_as(h, "HELO", "box"), 501);
	cr_assert_str_eq(sh_harness_reply(h), "501 5.5.2 HELO box refused: give your "
	    "fully-qualified host name or an address literal such as [IPv6:2001:db8::7]");
	sh_harness_free(h);
}

Test(policy, require_helo_no_is_off)
{
	sh_harness *h = load("require_helo=no");

	cr_assert_eq(sh_harness_connect(h, "192.0.2.7"), 220);
	cr_assert_eq(helo_as(h, "EHLO", "localhost"), 250);
	sh_harness_free(h);
}

Test(policy, reject_ip_helo_ipv4)
{
	sh_harness *h = load("reject_ip_helo=yes");

	cr_assert_eq(sh_harness_connect(h, "192.0.2.7"), 220);
	cr_assert_eq(helo_as(h, "EHLO", "[192.0.2.8]"), 550);
	cr_assert_str_eq(sh_harness_reply(h), "550 5.7.1 EHLO [192.0.2.8] refused: that "
	    "address is not yours, use [192.0.2.7]");
	cr_assert_eq(helo_as(h, "HELO", "192.0.2.8"), 550, "bare IP, not the client's");
	cr_assert_eq(helo_as(h, "EHLO", "[IPv6:2001:db8::7]"), 550, "other family");
	cr_assert_eq(helo_as(h, "EHLO", "[IPv6:::ffff:192.0.2.7]"), 250,
	    "the mapped form of the client's address");
	cr_assert_eq(helo_as(h, "EHLO", "[192.0.2.7]"), 250);
	cr_assert_eq(helo_as(h, "EHLO", "192.0.2.7"), 250,
	    "bare but true: require_helo is the syntax check");
	cr_assert_eq(helo_as(h, "EHLO", "mail.example.com"), 250, "names are not checked");
	cr_assert_eq(helo_as(h, "EHLO", "localhost"), 250);
	sh_harness_free(h);
}

Test(policy, reject_ip_helo_ipv6_and_mapped_peer)
{
	sh_harness *h = load("reject_ip_helo=yes");

	cr_assert_eq(sh_harness_connect(h, "2001:db8::7"), 220);
	cr_assert_eq(helo_as(h, "EHLO", "[IPv6:2001:DB8:0:0::7]"), 250, "any text form");
	cr_assert_eq(helo_as(h, "EHLO", "[ipv6:2001:db8::7]"), 250, "tag case-insensitive");
	cr_assert_eq(helo_as(h, "EHLO", "[IPv6:2001:db8::8]"), 550);
	cr_assert_eq(helo_as(h, "EHLO", "[192.0.2.7]"), 550);
	cr_assert_eq(sh_harness_connect(h, "::ffff:192.0.2.7"), 220);
	cr_assert_eq(helo_as(h, "EHLO", "[192.0.2.7]"), 250, "mapped peer, IPv4 literal");
	cr_assert_eq(helo_as(h, "EHLO", "[192.0.2.6]"), 550);
	sh_harness_free(h);
}

Test(policy, both_helo_checks)
{
	sh_harness *h = load("require_helo=yes,reject_ip_helo=yes");

	cr_assert_eq(sh_harness_connect(h, "192.0.2.7"), 220);
	cr_assert_eq(helo_as(h, "EHLO", "192.0.2.9"), 550, "forged first");
	cr_assert_eq(helo_as(h, "EHLO", "192.0.2.7"), 501, "true but bare");
	cr_assert_eq(helo_as(h, "EHLO", "[192.0.2.7]"), 250);
	sh_harness_free(h);
}

/* ---- all together ---- */

Test(policy, full_chain_message_accepted)
{
	const char *rcpts[] = { "a@example.org", "b@mx.example.org", NULL };
	sh_harness *h = load("allow_ip=192.0.2.0/24,rcpt_domains=example.org;*.example.org,"
	    "require_helo=yes,reject_ip_helo=yes");

	cr_assert_eq(sh_harness_connect(h, "192.0.2.7"), 220);
	cr_assert_eq(sh_harness_cmd(h, "EHLO client.example.net"), 250);
	cr_assert_eq(sh_harness_message(h, "s@example.net", rcpts,
	    "Subject: hi\r\n\r\nbody\r\n"), 250);
	cr_assert(sh_harness_accepted(h));
	sh_harness_free(h);
}
