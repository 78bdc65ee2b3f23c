/*
 * test_smtp_parse.c - unit tests for server/smtp_parse.c
 *
 * Every limit is tested at the limit and one past it; every error class
 * of smtp_parse_mail_arg() is provoked at least once.  Inputs with
 * embedded NUL bytes carry explicit lengths.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "smtp_parse.h"

/* mail - parse a NUL-terminated MAIL argument */
static enum smtp_parse_status
mail(const char *s, struct smtp_mail_arg *ma)
{
	return smtp_parse_mail_arg(s, strlen(s), 0, ma, NULL);
}

/* rcpt - parse a NUL-terminated RCPT argument */
static enum smtp_parse_status
rcpt(const char *s, struct smtp_mail_arg *ma)
{
	return smtp_parse_mail_arg(s, strlen(s), 1, ma, NULL);
}

/* verb - the verb of a NUL-terminated line; its args go to *args_r */
static enum smtp_verb
verb(const char *line, const char **args_r, size_t *len_r)
{
	return smtp_parse_verb(line, strlen(line), args_r, len_r);
}

/* helo - smtp_check_helo_arg() on a NUL-terminated string */
static int
helo(const char *s)
{
	return smtp_check_helo_arg(s, strlen(s));
}

/* bdat - smtp_parse_bdat_arg() on a NUL-terminated string */
static int
bdat(const char *s, unsigned long long *size, int *last)
{
	return smtp_parse_bdat_arg(s, strlen(s), size, last);
}

/* make_path - "FROM:<" + n-char mailbox + ">" into buf; n >= 13 */
static void
make_path(char *buf, const char *kw, size_t n, int brackets)
{
	static const char	domain[] = "@example.com";
	size_t			local = n - (sizeof(domain) - 1), off;

	off = (size_t)sprintf(buf, "%s%s", kw, brackets ? "<" : "");
	memset(buf + off, 'x', local);
	off += local;
	off += (size_t)sprintf(buf + off, "%s%s", domain, brackets ? ">" :
	    "");
	buf[off] = '\0';
}

Test(verb, every_verb_both_cases)
{
	static const char *const lower[SMTP_VERB_COUNT] = {
		NULL, "helo", "ehlo", "mail", "rcpt", "data", "bdat", "rset",
		"noop", "quit", "vrfy", "expn", "help", "starttls", "auth", "xclient",
	};
	const char	*args;
	size_t		 alen;
	int		 v;

	for (v = SMTP_VERB_HELO; v < SMTP_VERB_COUNT; v++) {
		cr_assert_eq(verb(smtp_verb_str(v), &args, &alen), v,
		    "upper %s", smtp_verb_str(v));
		cr_assert_eq(verb(lower[v], &args, &alen), v, "lower %s",
		    lower[v]);
		cr_assert_eq(alen, 0);
	}
	cr_assert_eq(verb("MaIl FROM:<>", &args, &alen), SMTP_VERB_MAIL);
	cr_assert_eq(verb("StartTLS", NULL, NULL), SMTP_VERB_STARTTLS);
}

Test(verb, str)
{
	cr_assert_str_eq(smtp_verb_str(SMTP_VERB_MAIL), "MAIL");
	cr_assert_str_eq(smtp_verb_str(SMTP_VERB_STARTTLS), "STARTTLS");
	cr_assert_str_eq(smtp_verb_str(SMTP_VERB_UNKNOWN), "UNKNOWN");
	cr_assert_str_eq(smtp_verb_str(SMTP_VERB_COUNT), "UNKNOWN");
	cr_assert_str_eq(smtp_verb_str((enum smtp_verb)-1), "UNKNOWN");
}

Test(verb, unknown_and_glued)
{
	const char	*args;
	size_t		 alen;

	cr_assert_eq(verb("XYZZY", &args, &alen), SMTP_VERB_UNKNOWN);
	cr_assert_eq(verb("MAILFROM:<a@b.c>", &args, &alen),
	    SMTP_VERB_UNKNOWN);
	cr_assert_eq(alen, 0, "no separator, so no argument");
	cr_assert_eq(verb("MAIL:", &args, &alen), SMTP_VERB_UNKNOWN);
	cr_assert_eq(verb("MAI", &args, &alen), SMTP_VERB_UNKNOWN);
	cr_assert_eq(verb("STARTTLSX", &args, &alen), SMTP_VERB_UNKNOWN);
	cr_assert_eq(verb(" MAIL FROM:<>", &args, &alen), SMTP_VERB_UNKNOWN,
	    "leading space is not a verb");
	cr_assert_eq(smtp_parse_verb("NOOP\0x", 6, &args, &alen),
	    SMTP_VERB_UNKNOWN, "NUL glued to the verb");
	cr_assert_eq(verb("FOO bar", &args, &alen), SMTP_VERB_UNKNOWN);
	cr_assert_eq(alen, 3, "args are set for unknown verbs too");
}

Test(verb, empty_line)
{
	const char	*args = (const char *)1;
	size_t		 alen = 99;

	cr_assert_eq(smtp_parse_verb("", 0, &args, &alen), SMTP_VERB_UNKNOWN);
	cr_assert_eq(alen, 0);
	cr_assert_eq(smtp_parse_verb(NULL, 0, &args, &alen),
	    SMTP_VERB_UNKNOWN);
	cr_assert_eq(verb("   ", &args, &alen), SMTP_VERB_UNKNOWN);
	cr_assert_eq(alen, 0);
}

Test(verb, args_trimming)
{
	const char	*line = "MAIL   FROM:<a@b.c>  SIZE=10 \t ";
	const char	*args;
	size_t		 alen;

	cr_assert_eq(verb(line, &args, &alen), SMTP_VERB_MAIL);
	cr_assert_eq(args, line + 7);
	cr_assert_eq(alen, strlen("FROM:<a@b.c>  SIZE=10"));
	cr_assert_eq(memcmp(args, "FROM:<a@b.c>  SIZE=10", alen), 0);

	cr_assert_eq(verb("QUIT   ", &args, &alen), SMTP_VERB_QUIT);
	cr_assert_eq(alen, 0);
	cr_assert_eq(verb("NOOP\t", &args, &alen), SMTP_VERB_NOOP,
	    "HTAB ends the verb too");
	cr_assert_eq(verb("EHLO\tfoo.example", &args, &alen),
	    SMTP_VERB_EHLO);
	cr_assert_eq(alen, strlen("foo.example"));

	/* Not NUL-terminated: the length rules. */
	cr_assert_eq(smtp_parse_verb("HELO a.bXXXX", 8, &args, &alen),
	    SMTP_VERB_HELO);
	cr_assert_eq(alen, 3);
}

Test(mail, simple_and_null_sender)
{
	struct smtp_mail_arg	ma;
	const char		*why = NULL;

	cr_assert_eq(mail("FROM:<user@example.com>", &ma), SMTP_PARSE_OK);
	cr_assert_str_eq(ma.addr, "user@example.com");
	cr_assert_eq(ma.addr_len, 16);
	cr_assert_eq(ma.local_len, 4);
	cr_assert_eq(ma.addr[ma.local_len], '@');
	cr_assert_eq(ma.nparams, 0);
	cr_assert_eq(ma.body, SMTP_BODY_NONE);

	cr_assert_eq(smtp_parse_mail_arg("FROM:<>", 7, 0, &ma, &why),
	    SMTP_PARSE_OK);
	cr_assert_str_eq(ma.addr, "");
	cr_assert_eq(ma.addr_len, 0);
	cr_assert_eq(mail("from:<>", &ma), SMTP_PARSE_OK);
	cr_assert_eq(mail("From: <a@b.example>", &ma), SMTP_PARSE_OK,
	    "space after the colon is tolerated");
	cr_assert_eq(mail("FROM:   <a@b.example>", &ma), SMTP_PARSE_OK);
	cr_assert_eq(mail("FROM:<a@b.example> ", &ma), SMTP_PARSE_OK);
}

Test(mail, keyword_errors)
{
	struct smtp_mail_arg	ma;
	const char		*why = NULL;

	cr_assert_eq(smtp_parse_mail_arg("TO:<a@b.c>", 10, 0, &ma, &why),
	    SMTP_PARSE_SYNTAX);
	cr_assert_str_eq(why, "Syntax: MAIL FROM:<address>");
	cr_assert_eq(smtp_parse_mail_arg("FROM:<a@b.c>", 12, 1, &ma, &why),
	    SMTP_PARSE_SYNTAX);
	cr_assert_str_eq(why, "Syntax: RCPT TO:<address>");
	cr_assert_eq(mail("", &ma), SMTP_PARSE_SYNTAX);
	cr_assert_eq(mail("FROM:", &ma), SMTP_PARSE_SYNTAX);
	cr_assert_eq(mail("FROM <a@b.c>", &ma), SMTP_PARSE_SYNTAX);
	cr_assert_eq(mail("FRO:<a@b.c>", &ma), SMTP_PARSE_SYNTAX);
	cr_assert_eq(smtp_parse_mail_arg(NULL, 0, 0, &ma, &why),
	    SMTP_PARSE_SYNTAX);
	cr_assert_eq(mail("FROM:<a@b.c>junk", &ma), SMTP_PARSE_SYNTAX);
}

Test(mail, bad_addresses)
{
	struct smtp_mail_arg	ma;
	const char		*why = NULL;

	cr_assert_eq(smtp_parse_mail_arg("FROM:<a..b@c.d>", 15, 0, &ma,
	    &why), SMTP_PARSE_BAD_ADDRESS, "double dot");
	cr_assert_str_eq(why, "Bad sender address syntax");
	cr_assert_eq(mail("FROM:<.ab@c.d>", &ma), SMTP_PARSE_BAD_ADDRESS,
	    "leading dot");
	cr_assert_eq(mail("FROM:<ab.@c.d>", &ma), SMTP_PARSE_BAD_ADDRESS,
	    "trailing dot in local part");
	cr_assert_eq(mail("FROM:<ab@c..d>", &ma), SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(mail("FROM:<ab@.c.d>", &ma), SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(mail("FROM:<ab@c.d.>", &ma), SMTP_PARSE_BAD_ADDRESS,
	    "trailing dot in a mailbox domain");
	cr_assert_eq(mail("FROM:<ab@-c.d>", &ma), SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(mail("FROM:<ab@c-.d>", &ma), SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(mail("FROM:<ab@>", &ma), SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(mail("FROM:<@c.d>", &ma), SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(mail("FROM:<abc>", &ma), SMTP_PARSE_BAD_ADDRESS,
	    "no domain");
	cr_assert_eq(mail("FROM:<a b@c.d>", &ma), SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(mail("FROM:<a@b@c.d>", &ma), SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(mail("FROM:<a@c.d", &ma), SMTP_PARSE_BAD_ADDRESS,
	    "unclosed");
	cr_assert_eq(mail("FROM:<a(b)@c.d>", &ma), SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(mail("FROM:<Postmaster>", &ma), SMTP_PARSE_BAD_ADDRESS,
	    "bare Postmaster is for RCPT only");
	cr_assert_eq(mail("FROM:<ab@c_d.example>", &ma), SMTP_PARSE_OK,
	    "underscore is tolerated");
}

Test(mail, source_route)
{
	struct smtp_mail_arg	ma;

	cr_assert_eq(mail("FROM:<@relay.example:user@example.com>", &ma),
	    SMTP_PARSE_OK);
	cr_assert_str_eq(ma.addr, "user@example.com");
	cr_assert_eq(mail("FROM:<@a.example,@[10.0.0.1],@[IPv6:::1]:u@x.y>",
	    &ma), SMTP_PARSE_OK);
	cr_assert_str_eq(ma.addr, "u@x.y");
	cr_assert_eq(mail("FROM:<@a.example:>", &ma), SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(mail("FROM:<@a..example:u@x.y>", &ma),
	    SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(mail("FROM:<@a.example,b.example:u@x.y>", &ma),
	    SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(mail("FROM:<@a.example u@x.y>", &ma),
	    SMTP_PARSE_BAD_ADDRESS);
}

Test(mail, quoted_local_part)
{
	struct smtp_mail_arg	ma;

	cr_assert_eq(mail("FROM:<\"john doe\"@example.com>", &ma),
	    SMTP_PARSE_OK);
	cr_assert_str_eq(ma.addr, "\"john doe\"@example.com");
	cr_assert_eq(ma.local_len, 10);
	cr_assert_eq(mail("FROM:<\"a>b\\\"c@d\"@example.com> SIZE=1", &ma),
	    SMTP_PARSE_OK, "'>' and quoted pair inside quotes");
	cr_assert_str_eq(ma.addr, "\"a>b\\\"c@d\"@example.com");
	cr_assert_eq(ma.size, 1);
	cr_assert_eq(mail("FROM:<\"\"@example.com>", &ma), SMTP_PARSE_OK);
	cr_assert_eq(mail("FROM:<\"abc@example.com>", &ma),
	    SMTP_PARSE_BAD_ADDRESS, "unterminated quote");
	cr_assert_eq(mail("FROM:<\"a\"b@example.com>", &ma),
	    SMTP_PARSE_BAD_ADDRESS);
}

Test(mail, address_literals)
{
	struct smtp_mail_arg	ma;

	cr_assert_eq(mail("FROM:<u@[192.0.2.1]>", &ma), SMTP_PARSE_OK);
	cr_assert_str_eq(ma.addr, "u@[192.0.2.1]");
	cr_assert_eq(mail("FROM:<u@[IPv6:2001:db8::1]>", &ma), SMTP_PARSE_OK);
	cr_assert_eq(mail("FROM:<u@[ipv6:::ffff:192.0.2.1]>", &ma),
	    SMTP_PARSE_OK);
	cr_assert_eq(mail("FROM:<u@[IPv6:2001:db8::1::2]>", &ma),
	    SMTP_PARSE_BAD_ADDRESS, "bad IPv6");
	cr_assert_eq(mail("FROM:<u@[IPv6:2001:db8:g::1]>", &ma),
	    SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(mail("FROM:<u@[2001:db8::1]>", &ma),
	    SMTP_PARSE_BAD_ADDRESS, "IPv6 without its tag");
	cr_assert_eq(mail("FROM:<u@[256.0.0.1]>", &ma),
	    SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(mail("FROM:<u@[1.2.3]>", &ma), SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(mail("FROM:<u@[x400:foo]>", &ma),
	    SMTP_PARSE_BAD_ADDRESS, "general literal refused");
	cr_assert_eq(mail("FROM:<u@[]>", &ma), SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(mail("FROM:<u@[192.0.2.1>", &ma),
	    SMTP_PARSE_BAD_ADDRESS);
}

Test(mail, path_length_boundary)
{
	struct smtp_mail_arg	ma;
	char			buf[400];
	const char		*why = NULL;

	/* 256 octets of path, brackets included: the RFC's maximum. */
	make_path(buf, "FROM:", 254, 1);
	cr_assert_eq(strlen(buf), 5 + 256);
	cr_assert_eq(mail(buf, &ma), SMTP_PARSE_OK);
	cr_assert_eq(ma.addr_len, 254);
	cr_assert_eq(strlen(ma.addr), 254);

	make_path(buf, "FROM:", 255, 1);
	cr_assert_eq(smtp_parse_mail_arg(buf, strlen(buf), 0, &ma, &why),
	    SMTP_PARSE_TOO_LONG);
	cr_assert_str_eq(why, "Sender address too long");

	make_path(buf, "TO:", 254, 1);
	cr_assert_eq(rcpt(buf, &ma), SMTP_PARSE_OK);
	make_path(buf, "TO:", 255, 1);
	cr_assert_eq(rcpt(buf, &ma), SMTP_PARSE_TOO_LONG);

	/* The unbracketed form counts as if it had its brackets. */
	make_path(buf, "FROM:", 254, 0);
	cr_assert_eq(mail(buf, &ma), SMTP_PARSE_OK);
	make_path(buf, "FROM:", 255, 0);
	cr_assert_eq(mail(buf, &ma), SMTP_PARSE_TOO_LONG);
}

Test(mail, label_length)
{
	struct smtp_mail_arg	ma;
	char			buf[200];

	strcpy(buf, "FROM:<u@");
	memset(buf + 8, 'a', 63);
	strcpy(buf + 8 + 63, ".example>");
	cr_assert_eq(mail(buf, &ma), SMTP_PARSE_OK);
	strcpy(buf, "FROM:<u@");
	memset(buf + 8, 'a', 64);
	strcpy(buf + 8 + 64, ".example>");
	cr_assert_eq(mail(buf, &ma), SMTP_PARSE_BAD_ADDRESS);
}

Test(mail, control_chars_and_nul)
{
	struct smtp_mail_arg	ma;
	const char		*why = NULL;
	static const char	nul[] = "FROM:<a\0b@example.com>";

	cr_assert_eq(smtp_parse_mail_arg(nul, sizeof(nul) - 1, 0, &ma, &why),
	    SMTP_PARSE_SYNTAX, "NUL inside the path");
	cr_assert_str_eq(why, "Invalid character in command");
	cr_assert_eq(mail("FROM:<a\rb@example.com>", &ma), SMTP_PARSE_SYNTAX);
	cr_assert_eq(mail("FROM:<ab@example.com>\nRCPT", &ma),
	    SMTP_PARSE_SYNTAX);
	cr_assert_eq(mail("FROM:<a\x7f@example.com>", &ma), SMTP_PARSE_SYNTAX);
	cr_assert_eq(mail("FROM:<\"a\tb\"@example.com>", &ma),
	    SMTP_PARSE_SYNTAX, "HTAB inside quotes");
	cr_assert_eq(mail("FROM:<a@example.com> SIZE=1\x1b", &ma),
	    SMTP_PARSE_SYNTAX);
	cr_assert_eq(mail("FROM:<a@example.com>\t", &ma), SMTP_PARSE_OK,
	    "trailing HTAB is trimmed");
}

Test(mail, utf8)
{
	struct smtp_mail_arg	ma;

	cr_assert_eq(mail("FROM:<j\xc3\xb6rg@m\xc3\xbcller.example>", &ma),
	    SMTP_PARSE_OK);
	cr_assert_eq(mail("FROM:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b"
	    "\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>", &ma), SMTP_PARSE_OK);
	cr_assert_eq(mail("FROM:<\xf0\x9f\x98\x80@example.com>", &ma),
	    SMTP_PARSE_OK, "4-byte sequence");
	cr_assert_eq(mail("FROM:<j\xc3(rg@example.com>", &ma),
	    SMTP_PARSE_BAD_ADDRESS, "truncated sequence");
	cr_assert_eq(mail("FROM:<\xc0\xafx@example.com>", &ma),
	    SMTP_PARSE_BAD_ADDRESS, "overlong");
	cr_assert_eq(mail("FROM:<\xed\xa0\x80@example.com>", &ma),
	    SMTP_PARSE_BAD_ADDRESS, "surrogate");
	cr_assert_eq(mail("FROM:<a@ex\xf4\x90\x80\x80.com>", &ma),
	    SMTP_PARSE_BAD_ADDRESS, "above U+10FFFF");
	cr_assert_eq(mail("FROM:<a@example.com\xc3>", &ma),
	    SMTP_PARSE_BAD_ADDRESS, "cut at the end");
	cr_assert_eq(mail("FROM:<\"\xe2\x82\xac\"@example.com>", &ma),
	    SMTP_PARSE_OK, "UTF-8 in a quoted string");
}

Test(mail, unbracketed)
{
	struct smtp_mail_arg	ma;

	cr_assert_eq(mail("FROM:user@example.com", &ma), SMTP_PARSE_OK);
	cr_assert_str_eq(ma.addr, "user@example.com");
	cr_assert_eq(mail("FROM: user@example.com", &ma), SMTP_PARSE_OK);
	cr_assert_eq(mail("FROM:user@example.com SIZE=10", &ma),
	    SMTP_PARSE_SYNTAX, "no params without brackets");
	cr_assert_eq(mail("FROM:user", &ma), SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(rcpt("TO:postmaster", &ma), SMTP_PARSE_OK);
	cr_assert_eq(mail("FROM:@a.example:u@x.y", &ma),
	    SMTP_PARSE_BAD_ADDRESS, "no route without brackets");
}

Test(rcpt, paths)
{
	struct smtp_mail_arg	ma;
	const char		*why = NULL;

	cr_assert_eq(rcpt("TO:<rcpt@example.com>", &ma), SMTP_PARSE_OK);
	cr_assert_str_eq(ma.addr, "rcpt@example.com");
	cr_assert_eq(smtp_parse_mail_arg("TO:<>", 5, 1, &ma, &why),
	    SMTP_PARSE_BAD_ADDRESS);
	cr_assert_str_eq(why, "Bad recipient address syntax");
	cr_assert_eq(rcpt("to:<PostMaster>", &ma), SMTP_PARSE_OK);
	cr_assert_str_eq(ma.addr, "Postmaster");
	cr_assert_eq(ma.local_len, ma.addr_len);
	cr_assert_eq(rcpt("TO:<postmaster@example.com>", &ma), SMTP_PARSE_OK);
	cr_assert_str_eq(ma.addr, "postmaster@example.com");
	cr_assert_eq(rcpt("TO:<@r.example:Postmaster>", &ma),
	    SMTP_PARSE_BAD_ADDRESS);
	cr_assert_eq(rcpt("TO:<postmasters>", &ma), SMTP_PARSE_BAD_ADDRESS);
}

Test(params, size)
{
	struct smtp_mail_arg	ma;
	const char		*why = NULL;

	cr_assert_eq(mail("FROM:<a@b.example> SIZE=12345", &ma),
	    SMTP_PARSE_OK);
	cr_assert(ma.has_size);
	cr_assert_eq(ma.size, 12345);
	cr_assert_eq(ma.nparams, 1);
	cr_assert_eq(ma.params[0].key_len, 4);
	cr_assert_eq(memcmp(ma.params[0].value, "12345", 5), 0);
	cr_assert_eq(mail("FROM:<a@b.example> size=0", &ma), SMTP_PARSE_OK);
	cr_assert_eq(ma.size, 0);
	cr_assert_eq(mail("FROM:<a@b.example> SIZE=18446744073709551615",
	    &ma), SMTP_PARSE_OK, "2^64-1, 20 digits");
	cr_assert_eq(ma.size, 18446744073709551615ULL);
	cr_assert_eq(smtp_parse_mail_arg(
	    "FROM:<a@b.example> SIZE=18446744073709551616", 44, 0, &ma, &why),
	    SMTP_PARSE_BAD_PARAM, "overflow");
	cr_assert_str_eq(why, "Bad SIZE parameter");
	cr_assert_eq(mail("FROM:<a@b.example> SIZE=000000000000000000001",
	    &ma), SMTP_PARSE_BAD_PARAM, "21 digits");
	cr_assert_eq(mail("FROM:<a@b.example> SIZE=-1", &ma),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(mail("FROM:<a@b.example> SIZE=1k", &ma),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(mail("FROM:<a@b.example> SIZE", &ma),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(mail("FROM:<a@b.example> SIZE=", &ma),
	    SMTP_PARSE_SYNTAX, "empty esmtp-value");
	cr_assert_eq(smtp_parse_mail_arg("FROM:<a@b.example> SIZE=1 SIZE=2",
	    32, 0, &ma, &why), SMTP_PARSE_BAD_PARAM);
	cr_assert_str_eq(why, "Duplicate parameter");
	cr_assert_eq(rcpt("TO:<a@b.example> SIZE=1", &ma),
	    SMTP_PARSE_UNKNOWN_PARAM, "SIZE is for MAIL");
}

Test(params, body_smtputf8)
{
	struct smtp_mail_arg	ma;

	cr_assert_eq(mail("FROM:<a@b.example> BODY=8bitmime SMTPUTF8", &ma),
	    SMTP_PARSE_OK);
	cr_assert_eq(ma.body, SMTP_BODY_8BITMIME);
	cr_assert(ma.smtputf8);
	cr_assert_eq(ma.params[1].value, NULL);
	cr_assert_eq(mail("FROM:<a@b.example> BODY=7BIT", &ma), SMTP_PARSE_OK);
	cr_assert_eq(ma.body, SMTP_BODY_7BIT);
	cr_assert_eq(mail("FROM:<a@b.example> BODY=BINARYMIME", &ma),
	    SMTP_PARSE_OK);
	cr_assert_eq(ma.body, SMTP_BODY_BINARYMIME);
	cr_assert_eq(mail("FROM:<a@b.example> BODY=8BIT", &ma),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(mail("FROM:<a@b.example> BODY", &ma),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(mail("FROM:<a@b.example> BODY=7BIT BODY=7BIT", &ma),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(mail("FROM:<a@b.example> SMTPUTF8=yes", &ma),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(mail("FROM:<a@b.example> smtputf8 SMTPUTF8", &ma),
	    SMTP_PARSE_BAD_PARAM);
}

Test(params, ret_envid_auth)
{
	struct smtp_mail_arg	ma;
	char			buf[300];

	cr_assert_eq(mail("FROM:<a@b.example> RET=hdrs ENVID=QQ+2B314 "
	    "AUTH=<>", &ma), SMTP_PARSE_OK);
	cr_assert_eq(ma.ret_len, 4);
	cr_assert_eq(memcmp(ma.ret, "hdrs", 4), 0);
	cr_assert_eq(ma.envid_len, 8);
	cr_assert_eq(memcmp(ma.auth, "<>", 2), 0);
	cr_assert_eq(mail("FROM:<a@b.example> RET=FULL", &ma), SMTP_PARSE_OK);
	cr_assert_eq(mail("FROM:<a@b.example> RET=NONE", &ma),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(mail("FROM:<a@b.example> RET=FULL RET=HDRS", &ma),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(mail("FROM:<a@b.example> ENVID=a+2b", &ma),
	    SMTP_PARSE_BAD_PARAM, "lower-case hex");
	cr_assert_eq(mail("FROM:<a@b.example> ENVID=a+2", &ma),
	    SMTP_PARSE_BAD_PARAM, "short hexchar");
	cr_assert_eq(mail("FROM:<a@b.example> ENVID=a+0D+0A", &ma),
	    SMTP_PARSE_BAD_PARAM, "decodes to CRLF");
	cr_assert_eq(mail("FROM:<a@b.example> AUTH=e+3Dmc2@example.com",
	    &ma), SMTP_PARSE_OK);
	cr_assert_eq(mail("FROM:<a@b.example> AUTH=x+", &ma),
	    SMTP_PARSE_BAD_PARAM);

	/* ENVID: 100 decoded characters, not 101. */
	strcpy(buf, "FROM:<a@b.example> ENVID=");
	memset(buf + strlen(buf), 'e', 100);
	buf[25 + 100] = '\0';
	cr_assert_eq(mail(buf, &ma), SMTP_PARSE_OK);
	strcat(buf, "+41");
	cr_assert_eq(mail(buf, &ma), SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(rcpt("TO:<a@b.example> RET=FULL", &ma),
	    SMTP_PARSE_UNKNOWN_PARAM);
}

Test(params, notify_orcpt)
{
	struct smtp_mail_arg	ma;

	cr_assert_eq(rcpt("TO:<a@b.example> NOTIFY=success,Failure,DELAY "
	    "ORCPT=rfc822;a+40b.example", &ma), SMTP_PARSE_OK);
	cr_assert_eq(ma.notify_len, strlen("success,Failure,DELAY"));
	cr_assert_eq(ma.orcpt_len, strlen("rfc822;a+40b.example"));
	cr_assert_eq(ma.nparams, 2);
	cr_assert_eq(rcpt("TO:<a@b.example> NOTIFY=NEVER", &ma),
	    SMTP_PARSE_OK);
	cr_assert_eq(rcpt("TO:<a@b.example> NOTIFY=NEVER,DELAY", &ma),
	    SMTP_PARSE_BAD_PARAM, "NEVER stands alone");
	cr_assert_eq(rcpt("TO:<a@b.example> NOTIFY=SUCCESS,,DELAY", &ma),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(rcpt("TO:<a@b.example> NOTIFY=SUCCESS,", &ma),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(rcpt("TO:<a@b.example> NOTIFY=ALWAYS", &ma),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(rcpt("TO:<a@b.example> NOTIFY=NEVER NOTIFY=NEVER", &ma),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(rcpt("TO:<a@b.example> ORCPT=a@b.example", &ma),
	    SMTP_PARSE_BAD_PARAM, "no addr-type");
	cr_assert_eq(rcpt("TO:<a@b.example> ORCPT=rfc822;", &ma),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(rcpt("TO:<a@b.example> ORCPT=;a@b", &ma),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(rcpt("TO:<a@b.example> ORCPT=rfc822;a\xc3\xa9@b", &ma),
	    SMTP_PARSE_BAD_PARAM, "raw UTF-8 needs addr-type utf-8");
	cr_assert_eq(rcpt("TO:<a@b.example> ORCPT=utf-8;a\xc3\xa9@b", &ma),
	    SMTP_PARSE_OK);
	cr_assert_eq(mail("FROM:<a@b.example> NOTIFY=NEVER", &ma),
	    SMTP_PARSE_UNKNOWN_PARAM, "NOTIFY is for RCPT");
}

/* fill - n copies of c at p */
static char *
fill(char *p, int c, size_t n)
{
	memset(p, c, n);
	p[n] = '\0';
	return p + n;
}

Test(params, orcpt_length_boundary)
{
	struct smtp_mail_arg	ma;
	const char		*why = NULL, *enh = NULL;
	char			buf[1024], *v;
	size_t			vlen;

	/* The whole value, "rfc822;" + xtext, is at most 500 octets. */
	v = buf + sprintf(buf, "TO:<a@b.example> ORCPT=rfc822;");
	fill(v, 'x', 500 - 7);
	vlen = strlen(buf) - (size_t)(strchr(buf, '=') + 1 - buf);
	cr_assert_eq(vlen, 500);
	cr_assert_eq(rcpt(buf, &ma), SMTP_PARSE_OK);
	cr_assert_eq(ma.orcpt_len, 500);
	cr_assert_eq(memcmp(ma.orcpt, strchr(buf, '=') + 1, 500), 0);
	cr_assert_eq(ma.params[0].value_len, 500);

	strcat(buf, "x");
	cr_assert_eq(smtp_parse_mail_arg(buf, strlen(buf), 1, &ma, &why),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_str_eq(why, "ORCPT parameter too long");
	cr_assert_eq(smtp_parse_status_code(SMTP_PARSE_BAD_PARAM, 1, &enh),
	    501);
	cr_assert_str_eq(enh, "5.5.4");

	/* The octets as sent count, not the decoded characters. */
	v = buf + sprintf(buf, "TO:<a@b.example> ORCPT=rfc822;");
	while (v - strchr(buf, '=') - 1 + 3 <= 500)
		v += sprintf(v, "+41");
	cr_assert_eq(rcpt(buf, &ma), SMTP_PARSE_OK);
	cr_assert_eq(ma.orcpt_len, 499);
	strcat(buf, "+41");
	cr_assert_eq(rcpt(buf, &ma), SMTP_PARSE_BAD_PARAM);

	/* Raw UTF-8 (addr-type utf-8) counts by the octet. */
	v = buf + sprintf(buf, "TO:<a@b.example> ORCPT=utf-8;");
	while (v - strchr(buf, '=') - 1 + 2 <= 500)
		v += sprintf(v, "\xc3\xa9");
	cr_assert_eq(rcpt(buf, &ma), SMTP_PARSE_OK);
	cr_assert_eq(ma.orcpt_len, 500);
	strcat(buf, "\xc3\xa9");
	cr_assert_eq(rcpt(buf, &ma), SMTP_PARSE_BAD_PARAM);

	/* The 594-octet value of issue 9 is refused, not accepted. */
	v = buf + sprintf(buf, "TO:<a@b.example> ORCPT=rfc822;");
	fill(v, 'y', 594 - 7);
	cr_assert_eq(rcpt(buf, &ma), SMTP_PARSE_BAD_PARAM);
}

Test(params, envid_length_boundary_encoded)
{
	struct smtp_mail_arg	ma;
	const char		*why = NULL;
	char			buf[1024], *v;
	int			i;

	/* 100 characters, each sent as "+XX": 300 octets, accepted whole. */
	v = buf + sprintf(buf, "FROM:<a@b.example> ENVID=");
	for (i = 0; i < 100; i++)
		v += sprintf(v, "+%02X", 0x21 + i % 90);
	cr_assert_eq(mail(buf, &ma), SMTP_PARSE_OK);
	cr_assert_eq(ma.envid_len, 300);
	cr_assert_eq(memcmp(ma.envid, strchr(buf, '=') + 1, 300), 0);

	strcat(buf, "z");
	cr_assert_eq(smtp_parse_mail_arg(buf, strlen(buf), 0, &ma, &why),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_str_eq(why, "ENVID parameter too long");
}

Test(params, notify_each_keyword_once)
{
	struct smtp_mail_arg	ma;

	cr_assert_eq(rcpt("TO:<a@b.example> NOTIFY=DELAY,FAILURE,SUCCESS",
	    &ma), SMTP_PARSE_OK);
	cr_assert_eq(ma.notify_len, 21);
	cr_assert_eq(rcpt("TO:<a@b.example> NOTIFY=SUCCESS,success", &ma),
	    SMTP_PARSE_BAD_PARAM, "repeated keyword");
	cr_assert_eq(rcpt("TO:<a@b.example> NOTIFY=NEVER,NEVER", &ma),
	    SMTP_PARSE_BAD_PARAM);
	cr_assert_eq(rcpt("TO:<a@b.example> NOTIFY=DELAY,FAILURE,DELAY",
	    &ma), SMTP_PARSE_BAD_PARAM);
}

Test(params, longest_accepted_lines_carried_whole)
{
	struct smtp_mail_arg	ma;
	char			buf[2048], *v, *envid, *auth, *orcpt;
	size_t			i;
	int			k;

	/* A 254-octet mailbox and every MAIL parameter at its longest. */
	make_path(buf, "FROM:", 254, 1);
	v = buf + strlen(buf);
	v += sprintf(v, " SIZE=18446744073709551615 BODY=8BITMIME SMTPUTF8 "
	    "RET=HDRS ENVID=");
	envid = v;
	for (k = 0; k < 100; k++)
		v += sprintf(v, "+2B");
	v += sprintf(v, " AUTH=");
	auth = v;
	v = fill(v, 'q', 1000);
	cr_assert_eq(mail(buf, &ma), SMTP_PARSE_OK);
	cr_assert_eq(ma.addr_len, 254);
	cr_assert_eq(ma.nparams, 6);
	cr_assert_eq(ma.envid_len, 300);
	cr_assert_eq(ma.envid, envid);
	cr_assert_eq(ma.auth_len, 1000);
	cr_assert_eq(ma.auth, auth);
	for (i = 0; i < ma.nparams; i++)
		cr_assert(ma.params[i].value == NULL ||
		    ma.params[i].value + ma.params[i].value_len <= v);

	/* A 254-octet forward-path, NOTIFY and ORCPT at their longest. */
	make_path(buf, "TO:", 254, 1);
	v = buf + strlen(buf);
	v += sprintf(v, " NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;");
	orcpt = v - 7;
	fill(v, 'o', 493);
	cr_assert_eq(rcpt(buf, &ma), SMTP_PARSE_OK);
	cr_assert_eq(ma.addr_len, 254);
	cr_assert_eq(ma.notify_len, 21);
	cr_assert_eq(ma.orcpt, orcpt);
	cr_assert_eq(ma.orcpt_len, 500);
}

Test(mail, long_local_part_accepted_whole)
{
	struct smtp_mail_arg	ma;
	char			buf[400];

	/*
	 * RFC 5321 §4.5.3.1.1's 64 octets are not enforced (§4.5.3.1:
	 * accept longer objects where possible; VERP/SRS exceed it), so
	 * the path limit alone bounds it: 242 octets + "@example.com".
	 */
	make_path(buf, "TO:", 254, 1);
	cr_assert_eq(rcpt(buf, &ma), SMTP_PARSE_OK);
	cr_assert_eq(ma.local_len, 242);
	cr_assert_eq(ma.addr_len, 254);
	cr_assert_eq(memcmp(ma.addr, buf + 4, 254), 0);
	cr_assert_eq(ma.addr[254], '\0');
}

Test(params, syntax_unknown_too_many)
{
	struct smtp_mail_arg	ma;
	const char		*why = NULL;
	char			buf[512];
	int			i;

	cr_assert_eq(smtp_parse_mail_arg("FROM:<a@b.example> X-FOO=bar", 28,
	    0, &ma, &why), SMTP_PARSE_UNKNOWN_PARAM);
	cr_assert_str_eq(why, "Unrecognized parameter");
	cr_assert_eq(smtp_parse_status_code(SMTP_PARSE_UNKNOWN_PARAM, 0,
	    NULL), 555);
	cr_assert_eq(mail("FROM:<a@b.example> -X=1", &ma), SMTP_PARSE_SYNTAX);
	cr_assert_eq(mail("FROM:<a@b.example> =1", &ma), SMTP_PARSE_SYNTAX);
	cr_assert_eq(mail("FROM:<a@b.example> X_Y=1", &ma),
	    SMTP_PARSE_SYNTAX);
	cr_assert_eq(mail("FROM:<a@b.example> SIZE=1=2", &ma),
	    SMTP_PARSE_SYNTAX);
	cr_assert_eq(mail("FROM:<a@b.example>   SIZE=1   BODY=7BIT", &ma),
	    SMTP_PARSE_OK, "runs of spaces");
	cr_assert_eq(ma.nparams, 2);

	/* 16 parameters pass the count (and fail as unknown); 17 do not. */
	strcpy(buf, "FROM:<a@b.example>");
	for (i = 0; i < SMTP_PARAMS_MAX; i++)
		strcat(buf, " X");
	cr_assert_eq(mail(buf, &ma), SMTP_PARSE_UNKNOWN_PARAM);
	strcat(buf, " X");
	cr_assert_eq(smtp_parse_mail_arg(buf, strlen(buf), 0, &ma, &why),
	    SMTP_PARSE_TOO_MANY_PARAMS, "the count comes first");
	cr_assert_str_eq(why, "Too many parameters");
	cr_assert_eq(smtp_parse_status_code(SMTP_PARSE_TOO_MANY_PARAMS, 1,
	    NULL), 501);

	/* Valid ones are counted too. */
	strcpy(buf, "TO:<a@b.example>");
	for (i = 0; i < SMTP_PARAMS_MAX + 1; i++)
		strcat(buf, "  NOTIFY=NEVER");
	cr_assert_eq(rcpt(buf, &ma), SMTP_PARSE_TOO_MANY_PARAMS);
}

Test(status, codes_and_names)
{
	const char	*enh = NULL;

	cr_assert_eq(smtp_parse_status_code(SMTP_PARSE_BAD_ADDRESS, 0, &enh),
	    501);
	cr_assert_str_eq(enh, "5.1.7");
	cr_assert_eq(smtp_parse_status_code(SMTP_PARSE_TOO_LONG, 1, &enh),
	    501);
	cr_assert_str_eq(enh, "5.1.3");
	cr_assert_eq(smtp_parse_status_code(SMTP_PARSE_SYNTAX, 1, &enh), 501);
	cr_assert_str_eq(enh, "5.5.4");
	cr_assert_eq(smtp_parse_status_code(SMTP_PARSE_UNKNOWN_PARAM, 1,
	    &enh), 555);
	cr_assert_str_eq(enh, "5.5.4");
	cr_assert_str_eq(smtp_parse_status_str(SMTP_PARSE_TOO_MANY_PARAMS),
	    "TOO_MANY_PARAMS");
	cr_assert_str_eq(smtp_parse_status_str((enum smtp_parse_status)99),
	    "UNKNOWN");
}

Test(helo, args)
{
	char	buf[300];
	int	i;

	cr_assert_eq(helo("mail.example.com"), 0);
	cr_assert_eq(helo("mail.example.com."), 0, "trailing dot");
	cr_assert_eq(helo("my_host.example"), 0, "underscore");
	cr_assert_eq(helo("localhost"), 0);
	cr_assert_eq(helo("[192.0.2.1]"), 0);
	cr_assert_eq(helo("[IPv6:2001:db8::5]"), 0);
	cr_assert_eq(helo("m\xc3\xbcller.example"), 0);
	cr_assert_eq(helo(""), -1);
	cr_assert_eq(helo("."), -1);
	cr_assert_eq(helo("a..b"), -1);
	cr_assert_eq(helo(".a.b"), -1);
	cr_assert_eq(helo("a b"), -1, "space inside");
	cr_assert_eq(helo("a\tb"), -1);
	cr_assert_eq(smtp_check_helo_arg("a\0b", 3), -1);
	cr_assert_eq(helo("-a.example"), -1);
	cr_assert_eq(helo("[192.0.2.1"), -1);
	cr_assert_eq(helo("[IPv6:zz::1]"), -1);
	cr_assert_eq(helo("[tag:foo]"), -1);
	cr_assert_eq(helo("host@example"), -1);
	cr_assert_eq(helo("m\xc3(ller.example"), -1);

	/* 255 octets pass, 256 do not (RFC 1035 §2.3.4). */
	memset(buf, 0, sizeof(buf));
	for (i = 0; i < 255; i++)
		buf[i] = (i % 50 == 49) ? '.' : 'a';
	cr_assert_eq(helo(buf), 0);
	buf[255] = 'a';
	cr_assert_eq(helo(buf), -1);
}

Test(bdat, args)
{
	unsigned long long	size = 1;
	int			last = 1;

	cr_assert_eq(bdat("0 LAST", &size, &last), 0);
	cr_assert_eq(size, 0);
	cr_assert_eq(last, 1);
	cr_assert_eq(bdat("1000", &size, &last), 0);
	cr_assert_eq(size, 1000);
	cr_assert_eq(last, 0);
	cr_assert_eq(bdat("42 last", &size, &last), 0);
	cr_assert_eq(last, 1);
	cr_assert_eq(bdat("9999999999999999999", &size, &last), 0,
	    "19 digits");
	cr_assert_eq(size, 9999999999999999999ULL);
	cr_assert_eq(bdat("0000000000000000001", &size, &last), 0);
	cr_assert_eq(size, 1);
	cr_assert_eq(bdat("10000000000000000000", &size, &last), -1,
	    "20 digits");
	cr_assert_eq(bdat("18446744073709551616", &size, &last), -1,
	    "overflow");
	cr_assert_eq(bdat("", &size, &last), -1);
	cr_assert_eq(bdat("LAST", &size, &last), -1);
	cr_assert_eq(bdat("-1", &size, &last), -1);
	cr_assert_eq(bdat("+1", &size, &last), -1);
	cr_assert_eq(bdat("0x10", &size, &last), -1);
	cr_assert_eq(bdat("12 LAST x", &size, &last), -1);
	cr_assert_eq(bdat("12 LASTX", &size, &last), -1);
	cr_assert_eq(bdat("12\tLAST", &size, &last), -1);
	cr_assert_eq(smtp_parse_bdat_arg("1\0", 2, &size, &last), -1);
	cr_assert_eq(bdat("7 LAST", NULL, NULL), 0);
}

Test(log_escape, escaping)
{
	char	out[64];
	size_t	n;

	n = smtp_log_escape(out, sizeof(out), "MAIL FROM:<a@b>", 15);
	cr_assert_eq(n, 15);
	cr_assert_str_eq(out, "MAIL FROM:<a@b>");
	n = smtp_log_escape(out, sizeof(out), "a\r\nb\\c\0\xff", 8);
	cr_assert_str_eq(out, "a\\x0d\\x0ab\\\\c\\x00\\xff");
	cr_assert_eq(n, strlen(out));
	n = smtp_log_escape(out, sizeof(out), "\x7f", 1);
	cr_assert_str_eq(out, "\\x7f");
	n = smtp_log_escape(out, sizeof(out), NULL, 0);
	cr_assert_eq(n, 0);
	cr_assert_str_eq(out, "");
}

Test(log_escape, truncation)
{
	char	out[16];
	size_t	n;

	/* Exactly fits: 15 characters and the NUL. */
	n = smtp_log_escape(out, sizeof(out), "0123456789abcde", 15);
	cr_assert_eq(n, 15);
	cr_assert_str_eq(out, "0123456789abcde");
	/* One more: cut, marker at the end, still 15. */
	n = smtp_log_escape(out, sizeof(out), "0123456789abcdef", 16);
	cr_assert_eq(n, 15);
	cr_assert_str_eq(out, "0123456789ab...");
	/* An escape is never cut in half. */
	n = smtp_log_escape(out, sizeof(out), "0123456789\x01\x02", 12);
	cr_assert_str_eq(out, "0123456789...");
	cr_assert_eq(n, 13);
	/* Tiny buffers. */
	n = smtp_log_escape(out, 1, "abc", 3);
	cr_assert_eq(n, 0);
	cr_assert_str_eq(out, "");
	n = smtp_log_escape(out, 3, "abc", 3);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(out, "..");
	n = smtp_log_escape(out, 4, "abc", 3);
	cr_assert_str_eq(out, "abc");
	n = smtp_log_escape(out, 4, "abcd", 4);
	cr_assert_str_eq(out, "...");
	cr_assert_eq(smtp_log_escape(out, 0, "abc", 3), 0);
}

/* The verbs are found by first letter: every name must be in that table. */
Test(smtp_parse_verb, every_verb_name_is_found_in_any_case)
{
	enum smtp_verb v;
	const char *args;
	size_t alen, i;

	for (v = SMTP_VERB_UNKNOWN + 1; v < SMTP_VERB_COUNT; v++) {
		char lower[32];
		const char *name = smtp_verb_str(v);

		cr_assert_eq(smtp_parse_verb(name, strlen(name), &args, &alen), v,
		    "%s", name);
		for (i = 0; name[i] != '\0' && i < sizeof(lower) - 1; i++)
			lower[i] = (char)(name[i] - 'A' + 'a');
		lower[i] = '\0';
		cr_assert_eq(smtp_parse_verb(lower, i, &args, &alen), v, "%s", lower);
	}
	cr_assert_eq(smtp_parse_verb("HELOX", 5, &args, &alen), SMTP_VERB_UNKNOWN);
	cr_assert_eq(smtp_parse_verb("XHELO", 5, &args, &alen), SMTP_VERB_UNKNOWN);
	cr_assert_eq(smtp_parse_verb("@", 1, &args, &alen), SMTP_VERB_UNKNOWN);
}
