/*
 * smtp_parse.c - pure parsers for SMTP command lines
 *
 * This file owns the grammar of the command line: verbs, MAIL/RCPT paths
 * and ESMTP parameters, HELO/EHLO arguments, BDAT arguments, and the
 * escaping of client text for the log.  It never does I/O, never
 * allocates and never looks at the session; see smtp_parse.h.
 *
 * Every scanner works on (pointer, length) and indexes through unsigned
 * char, so NUL bytes and bytes >= 0x80 are ordinary data here.  The ctype
 * functions are avoided on purpose: they depend on the locale, and SMTP
 * keywords are case-insensitive in ASCII only (RFC 5321 §2.4).
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stddef.h>
#include <string.h>

#include "smtp_parse.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* RFC 1035 §2.3.4 */
#define DNS_LABEL_MAX	63
#define DNS_NAME_MAX	255
/* RFC 3461 §4.4 and §4.2; see smtp_parse.h */
#define ENVID_MAX	SMTP_ENVID_MAX
#define ORCPT_MAX	SMTP_ORCPT_MAX
/* SIZE= fits in 20 digits (2^64 - 1 has 20); BDAT takes 19 (no overflow). */
#define SIZE_DIGITS_MAX	20
#define BDAT_DIGITS_MAX	19

static const char *const verb_names[SMTP_VERB_COUNT] = {
	[SMTP_VERB_UNKNOWN] = "UNKNOWN",
	[SMTP_VERB_HELO] = "HELO",
	[SMTP_VERB_EHLO] = "EHLO",
	[SMTP_VERB_MAIL] = "MAIL",
	[SMTP_VERB_RCPT] = "RCPT",
	[SMTP_VERB_DATA] = "DATA",
	[SMTP_VERB_BDAT] = "BDAT",
	[SMTP_VERB_RSET] = "RSET",
	[SMTP_VERB_NOOP] = "NOOP",
	[SMTP_VERB_QUIT] = "QUIT",
	[SMTP_VERB_VRFY] = "VRFY",
	[SMTP_VERB_EXPN] = "EXPN",
	[SMTP_VERB_HELP] = "HELP",
	[SMTP_VERB_STARTTLS] = "STARTTLS",
	[SMTP_VERB_AUTH] = "AUTH",
	[SMTP_VERB_XCLIENT] = "XCLIENT",
};

/* The verbs by first letter (SMTP_VERB_UNKNOWN: no more); a new verb
 * goes here too (test_smtp_parse checks every name is found). */
static const enum smtp_verb verbs_by_letter[26][2] = {
	['A' - 'A'] = { SMTP_VERB_AUTH },
	['B' - 'A'] = { SMTP_VERB_BDAT },
	['D' - 'A'] = { SMTP_VERB_DATA },
	['E' - 'A'] = { SMTP_VERB_EHLO, SMTP_VERB_EXPN },
	['H' - 'A'] = { SMTP_VERB_HELO, SMTP_VERB_HELP },
	['M' - 'A'] = { SMTP_VERB_MAIL },
	['N' - 'A'] = { SMTP_VERB_NOOP },
	['Q' - 'A'] = { SMTP_VERB_QUIT },
	['R' - 'A'] = { SMTP_VERB_RCPT, SMTP_VERB_RSET },
	['S' - 'A'] = { SMTP_VERB_STARTTLS },
	['V' - 'A'] = { SMTP_VERB_VRFY },
	['X' - 'A'] = { SMTP_VERB_XCLIENT },
};

/* is_alpha - ASCII letter, independent of the locale */
static int
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* is_digit - ASCII decimal digit */
static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* is_alnum - ASCII letter or digit */
static int
is_alnum(unsigned char c)
{
	return is_alpha(c) || is_digit(c);
}

/* is_ctl - a control character (C0 or DEL), NUL included */
static int
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* to_upper - ASCII upper case */
static unsigned char
to_upper(unsigned char c)
{
	return (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c;
}

/* ci_eq - s/len equals the upper-case literal lit, ignoring ASCII case */
static int
ci_eq(const char *s, size_t len, const char *lit)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (lit[i] == '\0' || to_upper(s[i]) != (unsigned char)lit[i])
			return 0;
	return lit[len] == '\0';
}

/* ci_prefix - s/len starts with the upper-case literal lit */
static int
ci_prefix(const char *s, size_t len, const char *lit)
{
	size_t	n = strlen(lit);

	return len >= n && ci_eq(s, n, lit);
}

/*
 * utf8_len - length of the well-formed UTF-8 sequence at s, or 0
 *
 * RFC 3629 §4: no overlong forms, no surrogates, nothing above U+10FFFF.
 * RFC 6531 §3.3 admits exactly these sequences (UTF8-non-ascii) in
 * addresses, so a malformed one is a syntax error, not "binary".
 */
static size_t
utf8_len(const unsigned char *s, size_t len)
{
	unsigned char	lo = 0x80, hi = 0xbf;
	size_t		n, i;

	if (len == 0 || s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	if (s[0] < 0xe0)
		n = 2;
	else if (s[0] < 0xf0) {
		n = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;
		else if (s[0] == 0xed)
			hi = 0x9f;
	} else {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f;
	}
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* is_atext - RFC 5322 §3.2.3 atext, the ASCII part (RFC 5321 Atom) */
static int
is_atext(unsigned char c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~",
	    c) != NULL);
}

/*
 * addr_literal_ok - 0 when s/len is "[IPv4]" or "[IPv6:addr]"
 *
 * RFC 5321 §4.1.3.  The General-address-literal "[tag:content]" is
 * refused: no tag other than IPv6 is registered, and the mailbox would be
 * undeliverable anyway.  inet_pton() is the grammar for both families;
 * glibc's refuses leading zeros in IPv4 octets and IPv6 zone ids.
 */
static int
addr_literal_ok(const char *s, size_t len)
{
	struct in6_addr	a6;
	char		buf[64];
	int		af = AF_INET;

	if (len < 3 || s[0] != '[' || s[len - 1] != ']')
		return -1;
	s++;
	len -= 2;
	if (ci_prefix(s, len, "IPV6:")) {
		af = AF_INET6;
		s += 5;
		len -= 5;
	}
	if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(af, buf, &a6) == 1 ? 0 : -1;
}

/*
 * domain_ok - 0 when s/len is a dot-separated domain name
 *
 * RFC 5321 §4.1.2 Domain: sub-domains of letters, digits and inner
 * hyphens.  Leniently, underscores (common in real host names) and
 * well-formed UTF-8 U-labels (RFC 6531 §3.3) are allowed too.  An ASCII
 * label is at most 63 octets; a U-label's limit applies to its A-label,
 * which we cannot compute here, so only the 255-octet total applies.
 * trailing_dot_ok admits the absolute form "example.com." (HELO only).
 */
static int
domain_ok(const char *domain, size_t len, int trailing_dot_ok)
{
	const unsigned char	*s = (const unsigned char *)domain;
	size_t			 i = 0, start, n;
	int			 ascii;

	if (len > DNS_NAME_MAX)
		return -1;
	if (trailing_dot_ok && len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0)
		return -1;
	for (;;) {
		start = i;
		ascii = 1;
		while (i < len && s[i] != '.') {
			if (s[i] >= 0x80) {
				if ((n = utf8_len(s + i, len - i)) == 0)
					return -1;
				i += n;
				ascii = 0;
				continue;
			}
			if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_')
				return -1;
			i++;
		}
		if (i == start || s[start] == '-' || s[i - 1] == '-')
			return -1;
		if (ascii && i - start > DNS_LABEL_MAX)
			return -1;
		if (i == len)
			return 0;
		i++;		/* the dot; a label must follow it */
		if (i == len)
			return -1;
	}
}

/*
 * local_part_span - length of the RFC 5321 Local-part at the start of
 * s/len, or 0 when there is none
 *
 * Dot-string = Atom *("." Atom): no leading, trailing or double dot.
 * Quoted-string = DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE, where
 * qtextSMTP is %d32-33 / %d35-91 / %d93-126 and quoted-pairSMTP is "\"
 * followed by %d32-126.  RFC 6531 §3.3 adds UTF8-non-ascii to both atext
 * and qtextSMTP.  The 64-octet limit of §4.5.3.1.1 is not enforced:
 * §4.5.3.1 asks servers to accept longer objects, and VERP/SRS senders
 * routinely exceed it; the 256-octet path limit still bounds it.
 */
static size_t
local_part_span(const char *lp, size_t len)
{
	const unsigned char	*s = (const unsigned char *)lp;
	size_t			 i, start, n;

	if (len > 0 && s[0] == '"') {
		for (i = 1; i < len; ) {
			if (s[i] == '"')
				return i + 1;
			if (s[i] == '\\') {
				if (i + 1 >= len || s[i + 1] < 32 ||
				    s[i + 1] > 126)
					return 0;
				i += 2;
			} else if (s[i] >= 0x80) {
				if ((n = utf8_len(s + i, len - i)) == 0)
					return 0;
				i += n;
			} else if (s[i] < 32 || s[i] > 126)
				return 0;
			else
				i++;
		}
		return 0;	/* no closing quote */
	}
	for (i = 0;;) {
		start = i;
		while (i < len) {
			if (s[i] >= 0x80) {
				if ((n = utf8_len(s + i, len - i)) == 0)
					return 0;
				i += n;
			} else if (is_atext(s[i]))
				i++;
			else
				break;
		}
		if (i == start)
			return 0;	/* empty atom: a stray dot */
		if (i < len && s[i] == '.') {
			i++;
			continue;
		}
		return i;
	}
}

/*
 * mailbox_ok - 0 when s/len is Local-part "@" ( Domain / address-literal );
 * the local part's length goes to *local_len_r
 */
static int
mailbox_ok(const char *s, size_t len, size_t *local_len_r)
{
	size_t	lp;

	lp = local_part_span(s, len);
	if (lp == 0 || lp >= len || s[lp] != '@')
		return -1;
	*local_len_r = lp;
	s += lp + 1;
	len -= lp + 1;
	if (len > 0 && s[0] == '[')
		return addr_literal_ok(s, len);
	return domain_ok(s, len, 0);
}

/*
 * route_span - length of the source route "@a,@b:" at the start of
 * s/len, colon included, or 0 when it is malformed
 *
 * RFC 5321 §4.1.2 A-d-l = At-domain *( "," At-domain ), At-domain = "@"
 * Domain.  Servers MUST accept and SHOULD ignore it (§C), so it is only
 * checked and dropped.  Address literals in it may hold colons.
 */
static size_t
route_span(const char *s, size_t len)
{
	const char	*q;
	size_t		 i = 0, start;

	for (;;) {
		if (i >= len || s[i] != '@')
			return 0;
		start = ++i;
		if (i < len && s[i] == '[') {
			if ((q = memchr(s + i, ']', len - i)) == NULL)
				return 0;
			i = (size_t)(q - s) + 1;
			if (addr_literal_ok(s + start, i - start) != 0)
				return 0;
		} else {
			while (i < len && s[i] != ',' && s[i] != ':')
				i++;
			if (domain_ok(s + start, i - start, 0) != 0)
				return 0;
		}
		if (i >= len)
			return 0;
		if (s[i] == ':')
			return i + 1;
		if (s[i] != ',')
			return 0;
		i++;
	}
}

/*
 * path_end - offset of the '>' closing the path that starts with '<' at
 * s[0], or 0 when it is unclosed
 *
 * A quoted local part may contain '>' (qtextSMTP), so quotes and quoted
 * pairs are honoured while looking for the end.
 */
static size_t
path_end(const char *s, size_t len)
{
	size_t	i;
	int	quoted = 0;

	for (i = 1; i < len; i++) {
		if (quoted && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && s[i] == '>')
			return i;
	}
	return 0;
}

/* hexval - value of an upper-case hex digit, -1 for anything else */
static int
hexval(unsigned char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * xtext_ok - 0 when s/len is RFC 3461 §4 xtext whose decoded form is
 * printable ASCII (§4.2 and §4.4 require that of ORCPT and ENVID); the
 * decoded length goes to *decoded_r.  With utf8, raw well-formed UTF-8 is
 * allowed too, for RFC 6533 §3 utf-8-addr-unitext in ORCPT=utf-8;...
 */
static int
xtext_ok(const char *xt, size_t len, int utf8, size_t *decoded_r)
{
	const unsigned char	*s = (const unsigned char *)xt;
	size_t			 i, n, dec = 0;
	int			 c, h1, h2;

	for (i = 0; i < len; dec++) {
		if (s[i] == '+') {
			/* Upper-case hex only: RFC 3461 §4 hexchar. */
			if (len - i < 3 || (h1 = hexval(s[i + 1])) < 0 ||
			    (h2 = hexval(s[i + 2])) < 0)
				return -1;
			c = h1 * 16 + h2;
			if (c < 0x20 || c > 0x7e)
				return -1;
			i += 3;
		} else if (s[i] >= 0x80) {
			if (!utf8 || (n = utf8_len(s + i, len - i)) == 0)
				return -1;
			i += n;
		} else if (s[i] < 33 || s[i] > 126 || s[i] == '=')
			return -1;
		else
			i++;
	}
	if (decoded_r != NULL)
		*decoded_r = dec;
	return 0;
}

/* parse_size - 0 and *n_r when s/len is 1 to max decimal digits */
static int
parse_size(const char *s, size_t len, size_t max, unsigned long long *n_r)
{
	unsigned long long	n = 0;
	unsigned		d;
	size_t			i;

	if (len == 0 || len > max)
		return -1;
	for (i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return -1;
		d = (unsigned)(s[i] - '0');
		if (n > (~0ULL - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*n_r = n;
	return 0;
}

/*
 * Parameter checkers: 0 ok, -1 bad value (BAD_PARAM).  *why holds the
 * parameter's generic reason on entry; a checker may set a sharper one.
 */

/* param_size - SIZE=n, RFC 1870 §3: 1*20DIGIT */
static int
param_size(struct smtp_mail_arg *out, const char *v, size_t len,
    const char **why)
{
	(void)why;
	if (v == NULL || parse_size(v, len, SIZE_DIGITS_MAX, &out->size) != 0)
		return -1;
	out->has_size = 1;
	return 0;
}

/* param_body - BODY=7BIT|8BITMIME (RFC 6152 §2) |BINARYMIME (RFC 3030) */
static int
param_body(struct smtp_mail_arg *out, const char *v, size_t len,
    const char **why)
{
	(void)why;
	if (v == NULL)
		return -1;
	if (ci_eq(v, len, "7BIT"))
		out->body = SMTP_BODY_7BIT;
	else if (ci_eq(v, len, "8BITMIME"))
		out->body = SMTP_BODY_8BITMIME;
	else if (ci_eq(v, len, "BINARYMIME"))
		out->body = SMTP_BODY_BINARYMIME;
	else
		return -1;
	return 0;
}

/* param_smtputf8 - SMTPUTF8 takes no value (RFC 6531 §3.4) */
static int
param_smtputf8(struct smtp_mail_arg *out, const char *v, size_t len,
    const char **why)
{
	(void)why;
	(void)len;
	if (v != NULL)
		return -1;
	out->smtputf8 = 1;
	return 0;
}

/* param_ret - RET=FULL|HDRS (RFC 3461 §4.3) */
static int
param_ret(struct smtp_mail_arg *out, const char *v, size_t len,
    const char **why)
{
	(void)why;
	if (v == NULL || (!ci_eq(v, len, "FULL") && !ci_eq(v, len, "HDRS")))
		return -1;
	out->ret = v;
	out->ret_len = len;
	return 0;
}

/* param_envid - ENVID=xtext, at most 100 characters (RFC 3461 §4.4) */
static int
param_envid(struct smtp_mail_arg *out, const char *v, size_t len,
    const char **why)
{
	size_t	dec;

	if (v == NULL || xtext_ok(v, len, 0, &dec) != 0)
		return -1;
	if (dec > ENVID_MAX) {
		*why = "ENVID parameter too long";
		return -1;
	}
	out->envid = v;
	out->envid_len = len;
	return 0;
}

/* param_auth - AUTH=xtext or AUTH=<> (RFC 4954 §5); not interpreted */
static int
param_auth(struct smtp_mail_arg *out, const char *v, size_t len,
    const char **why)
{
	(void)why;
	if (v == NULL || xtext_ok(v, len, 0, NULL) != 0)
		return -1;
	out->auth = v;
	out->auth_len = len;
	return 0;
}

/*
 * param_notify - NOTIFY=NEVER, or a comma list of SUCCESS, FAILURE and
 * DELAY (RFC 3461 §4.1); NEVER must stand alone, and no element may be
 * repeated: that bounds the value at 21 octets, so the stored envelope
 * line stays short whatever the client sends.
 */
static int
param_notify(struct smtp_mail_arg *out, const char *v, size_t len,
    const char **why)
{
	static const char *const names[] = {
		"NEVER", "SUCCESS", "FAILURE", "DELAY"
	};
	const char	*e;
	size_t		 i, start, k;
	unsigned	 seen = 0;

	(void)why;
	if (v == NULL)
		return -1;
	for (i = start = 0; i <= len; i++) {
		if (i < len && v[i] != ',')
			continue;
		e = v + start;
		for (k = 0; k < NELEM(names); k++)
			if (ci_eq(e, i - start, names[k]))
				break;
		/* Unknown, empty (",,") or repeated. */
		if (k == NELEM(names) || (seen & (1u << k)) != 0)
			return -1;
		seen |= 1u << k;
		start = i + 1;
	}
	if ((seen & 1u) != 0 && seen != 1u)
		return -1;
	out->notify = v;
	out->notify_len = len;
	return 0;
}

/*
 * param_orcpt - ORCPT=addr-type;xtext (RFC 3461 §4.2).  addr-type is an
 * atom; "utf-8" (RFC 6533 §3) also admits raw UTF-8 in the address.  The
 * whole value, addr-type, ";" and the xtext as sent, is at most
 * ORCPT_MAX octets ("The entire ORCPT parameter MAY be up to 500
 * characters in length"; raw UTF-8 counts by the octet).
 */
static int
param_orcpt(struct smtp_mail_arg *out, const char *v, size_t len,
    const char **why)
{
	const char	*semi;
	size_t		 tlen, dec, i;

	if (v == NULL || (semi = memchr(v, ';', len)) == NULL)
		return -1;
	if (len > ORCPT_MAX) {
		*why = "ORCPT parameter too long";
		return -1;
	}
	tlen = (size_t)(semi - v);
	if (tlen == 0)
		return -1;
	for (i = 0; i < tlen; i++)
		if (!is_atext(v[i]) || v[i] == '+' || v[i] == '=')
			return -1;
	if (xtext_ok(semi + 1, len - tlen - 1, ci_eq(v, tlen, "UTF-8"),
	    &dec) != 0 || dec == 0)
		return -1;
	out->orcpt = v;
	out->orcpt_len = len;
	return 0;
}

static const struct param_def {
	const char	*name;		/* upper case */
	int		 rcpt;		/* 1 valid on RCPT, 0 on MAIL */
	int		(*check)(struct smtp_mail_arg *, const char *, size_t,
			    const char **);
	const char	*why;		/* the reply text for a bad value */
} param_defs[] = {
	{ "SIZE", 0, param_size, "Bad SIZE parameter" },
	{ "BODY", 0, param_body, "Bad BODY parameter" },
	{ "SMTPUTF8", 0, param_smtputf8, "SMTPUTF8 takes no value" },
	{ "RET", 0, param_ret, "Bad RET parameter" },
	{ "ENVID", 0, param_envid, "Bad ENVID parameter" },
	{ "AUTH", 0, param_auth, "Bad AUTH parameter" },
	{ "NOTIFY", 1, param_notify, "Bad NOTIFY parameter" },
	{ "ORCPT", 1, param_orcpt, "Bad ORCPT parameter" },
};

/*
 * parse_params - the esmtp-params after the path, RFC 5321 §4.1.2:
 * esmtp-param = esmtp-keyword ["=" esmtp-value], separated by SP.
 * esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"), esmtp-value =
 * 1*(%d33-60 / %d62-126), plus UTF8-non-ascii per RFC 6531 §3.3.  Runs
 * of spaces are tolerated.
 */
static enum smtp_parse_status
parse_params(const char *s, size_t len, int is_rcpt,
    struct smtp_mail_arg *out, const char **why)
{
	const struct param_def	*def;
	struct smtp_param	*p;
	const unsigned char	*u;
	size_t			 i, tok, klen, j, n;
	unsigned		 seen = 0, bit;

	/*
	 * Count first: judged one by one, the parse would stop at the
	 * first unknown or duplicate one long before the limit, since only
	 * six (MAIL) or two (RCPT) parameters are valid at all.
	 */
	for (i = 0, n = 0; i < len; i++)
		if (s[i] != ' ' && (i == 0 || s[i - 1] == ' '))
			n++;
	if (n > SMTP_PARAMS_MAX) {
		*why = "Too many parameters";
		return SMTP_PARSE_TOO_MANY_PARAMS;
	}

	for (i = 0; i < len; ) {
		if (s[i] == ' ') {
			i++;
			continue;
		}
		for (tok = i; i < len && s[i] != ' '; i++)
			;
		p = &out->params[out->nparams++];
		p->key = s + tok;
		for (klen = 0; tok + klen < i && s[tok + klen] != '='; klen++)
			;
		p->key_len = klen;
		if (tok + klen < i) {
			p->value = s + tok + klen + 1;
			p->value_len = i - tok - klen - 1;
		}
		*why = "Syntax error in parameters";
		if (klen == 0 || !is_alnum(p->key[0]))
			return SMTP_PARSE_SYNTAX;
		for (j = 1; j < klen; j++)
			if (!is_alnum(p->key[j]) && p->key[j] != '-')
				return SMTP_PARSE_SYNTAX;
		if (p->value != NULL && p->value_len == 0)
			return SMTP_PARSE_SYNTAX;
		u = (const unsigned char *)p->value;
		for (j = 0; j < p->value_len; ) {
			if (u[j] >= 0x80) {
				if ((n = utf8_len(u + j, p->value_len - j)) == 0)
					return SMTP_PARSE_SYNTAX;
				j += n;
			} else if (u[j] < 33 || u[j] > 126 || u[j] == '=')
				return SMTP_PARSE_SYNTAX;
			else
				j++;
		}

		for (def = NULL, j = 0; j < NELEM(param_defs); j++)
			if (param_defs[j].rcpt == is_rcpt &&
			    ci_eq(p->key, klen, param_defs[j].name))
				def = &param_defs[j];
		if (def == NULL) {
			*why = "Unrecognized parameter";
			return SMTP_PARSE_UNKNOWN_PARAM;
		}
		bit = 1u << (unsigned)(def - param_defs);
		if (seen & bit) {
			*why = "Duplicate parameter";
			return SMTP_PARSE_BAD_PARAM;
		}
		seen |= bit;
		*why = def->why;
		if (def->check(out, p->value, p->value_len, why) != 0)
			return SMTP_PARSE_BAD_PARAM;
	}
	return SMTP_PARSE_OK;
}

/*
 * parse_path - validate the mailbox part of a path and copy it to out
 *
 * s/len is what stands between the angle brackets (or the whole
 * unbracketed path); route_ok says whether a source route may precede
 * the mailbox.
 */
static enum smtp_parse_status
parse_path(const char *s, size_t len, int is_rcpt, int route_ok,
    struct smtp_mail_arg *out, const char **why)
{
	size_t	r, local_len;

	*why = is_rcpt ? "Bad recipient address syntax" :
	    "Bad sender address syntax";
	if (len == 0) {
		/* RFC 5321 §4.1.1.2: only the reverse-path may be null. */
		if (is_rcpt)
			return SMTP_PARSE_BAD_ADDRESS;
		out->addr[0] = '\0';
		return SMTP_PARSE_OK;
	}
	if (is_rcpt && ci_eq(s, len, "POSTMASTER")) {
		/* RFC 5321 §4.1.1.3: "<Postmaster>" without a domain. */
		memcpy(out->addr, "Postmaster", sizeof("Postmaster"));
		out->addr_len = out->local_len = sizeof("Postmaster") - 1;
		return SMTP_PARSE_OK;
	}
	if (route_ok && s[0] == '@') {
		if ((r = route_span(s, len)) == 0)
			return SMTP_PARSE_BAD_ADDRESS;
		s += r;
		len -= r;
	}
	if (mailbox_ok(s, len, &local_len) != 0)
		return SMTP_PARSE_BAD_ADDRESS;
	/* The caller bounded the whole path, so this always fits. */
	if (len > SMTP_PATH_MAX)
		return SMTP_PARSE_TOO_LONG;
	memcpy(out->addr, s, len);
	out->addr[len] = '\0';
	out->addr_len = len;
	out->local_len = local_len;
	return SMTP_PARSE_OK;
}

const char *
smtp_verb_str(enum smtp_verb v)
{
	if ((unsigned)v >= SMTP_VERB_COUNT)
		return "UNKNOWN";
	return verb_names[v];
}

enum smtp_verb
smtp_parse_verb(const char *line, size_t len, const char **args_r,
    size_t *args_len_r)
{
	enum smtp_verb	verb = SMTP_VERB_UNKNOWN;
	size_t		vlen, i;

	if (line == NULL)
		len = 0;
	for (vlen = 0; vlen < len && line[vlen] != ' ' && line[vlen] != '\t';
	    vlen++)
		;
	/* The first letter leaves at most two verbs to compare. */
	if (vlen > 0 && to_upper(line[0]) >= 'A' && to_upper(line[0]) <= 'Z') {
		const enum smtp_verb *cand = verbs_by_letter[to_upper(line[0]) - 'A'];

		for (i = 0; i < 2 && cand[i] != SMTP_VERB_UNKNOWN; i++)
			if (ci_eq(line, vlen, verb_names[cand[i]])) {
				verb = cand[i];
				break;
			}
	}

	/*
	 * RFC 5321 §4.1.1 wants exactly one SP; extra blanks on either side
	 * of the argument are common enough in the wild to forgive.
	 */
	for (i = vlen; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	while (len > i && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (args_r != NULL)
		*args_r = line == NULL ? NULL : line + i;
	if (args_len_r != NULL)
		*args_len_r = len - i;
	return verb;
}

const char *
smtp_parse_status_str(enum smtp_parse_status st)
{
	static const char *const names[] = {
		[SMTP_PARSE_OK] = "OK",
		[SMTP_PARSE_SYNTAX] = "SYNTAX",
		[SMTP_PARSE_BAD_ADDRESS] = "BAD_ADDRESS",
		[SMTP_PARSE_BAD_PARAM] = "BAD_PARAM",
		[SMTP_PARSE_UNKNOWN_PARAM] = "UNKNOWN_PARAM",
		[SMTP_PARSE_TOO_MANY_PARAMS] = "TOO_MANY_PARAMS",
		[SMTP_PARSE_TOO_LONG] = "TOO_LONG",
	};

	if ((unsigned)st >= NELEM(names))
		return "UNKNOWN";
	return names[st];
}

int
smtp_parse_status_code(enum smtp_parse_status st, int is_rcpt,
    const char **enhanced_r)
{
	const char	*enh;
	int		 code = 501;

	switch (st) {
	case SMTP_PARSE_OK:
		code = 250;
		enh = is_rcpt ? "2.1.5" : "2.1.0";
		break;
	case SMTP_PARSE_BAD_ADDRESS:
	case SMTP_PARSE_TOO_LONG:
		/* RFC 3463 §3.2: X.1.7 bad sender, X.1.3 bad destination. */
		enh = is_rcpt ? "5.1.3" : "5.1.7";
		break;
	case SMTP_PARSE_UNKNOWN_PARAM:
		code = 555;
		enh = "5.5.4";
		break;
	default:
		enh = "5.5.4";
		break;
	}
	if (enhanced_r != NULL)
		*enhanced_r = enh;
	return code;
}

enum smtp_parse_status
smtp_parse_mail_arg(const char *args, size_t len, int is_rcpt,
    struct smtp_mail_arg *out, const char **error_r)
{
	enum smtp_parse_status	 st;
	const char		*why, *kw, *syntax;
	size_t			 i, k, end;

	memset(out, 0, sizeof(*out));
	is_rcpt = is_rcpt != 0;
	kw = is_rcpt ? "TO:" : "FROM:";
	syntax = is_rcpt ? "Syntax: RCPT TO:<address>" :
	    "Syntax: MAIL FROM:<address>";
	why = syntax;
	st = SMTP_PARSE_SYNTAX;
	if (args == NULL)
		goto out;

	/*
	 * No control character may hide anywhere in the line: a NUL would
	 * truncate the address for every C string consumer after us, and CR
	 * or LF would let it inject into headers and logs.
	 */
	while (len > 0 && (args[len - 1] == ' ' || args[len - 1] == '\t'))
		len--;
	for (i = 0; i < len; i++)
		if (is_ctl((unsigned char)args[i])) {
			why = "Invalid character in command";
			goto out;
		}
	for (i = 0; i < len && args[i] == ' '; i++)
		;
	if (!ci_prefix(args + i, len - i, kw))
		goto out;
	/* "MAIL FROM: <a@b>" is out of grammar, and sent by many clients. */
	for (i += strlen(kw); i < len && args[i] == ' '; i++)
		;
	if (i == len)
		goto out;

	if (args[i] != '<') {
		/*
		 * Leniently, an unbracketed path (RFC 821 clients) when it is
		 * the whole argument.  Counted as if it had its brackets.
		 */
		if (memchr(args + i, ' ', len - i) != NULL)
			goto out;
		st = SMTP_PARSE_TOO_LONG;
		why = is_rcpt ? "Recipient address too long" :
		    "Sender address too long";
		if (len - i + 2 > SMTP_PATH_MAX)
			goto out;
		st = parse_path(args + i, len - i, is_rcpt, 0, out, &why);
		goto out;
	}

	if ((k = path_end(args + i, len - i)) == 0) {
		st = SMTP_PARSE_BAD_ADDRESS;
		why = is_rcpt ? "Bad recipient address syntax" :
		    "Bad sender address syntax";
		goto out;
	}
	end = i + k + 1;		/* just past the '>' */
	if (end - i > SMTP_PATH_MAX) {
		/* RFC 5321 §4.5.3.1.3, brackets and route included. */
		st = SMTP_PARSE_TOO_LONG;
		why = is_rcpt ? "Recipient address too long" :
		    "Sender address too long";
		goto out;
	}
	if (end < len && args[end] != ' ')
		goto out;		/* "<a@b>junk" */
	if ((st = parse_path(args + i + 1, k - 1, is_rcpt, 1, out, &why)) !=
	    SMTP_PARSE_OK)
		goto out;
	st = parse_params(args + end, len - end, is_rcpt, out, &why);

out:
	if (error_r != NULL)
		*error_r = st == SMTP_PARSE_OK ? "OK" : why;
	return st;
}

int
smtp_check_helo_arg(const char *arg, size_t len)
{
	size_t	i;

	if (arg == NULL || len == 0 || len > DNS_NAME_MAX)
		return -1;
	for (i = 0; i < len; i++)
		if (arg[i] == ' ' || is_ctl((unsigned char)arg[i]))
			return -1;
	if (arg[0] == '[')
		return addr_literal_ok(arg, len);
	return domain_ok(arg, len, 1);
}

int
smtp_parse_bdat_arg(const char *args, size_t len,
    unsigned long long *size_r, int *last_r)
{
	unsigned long long	size;
	size_t			i = 0, start;
	int			last = 0;

	if (args == NULL)
		return -1;
	while (len > 0 && args[len - 1] == ' ')
		len--;
	while (i < len && args[i] == ' ')
		i++;
	for (start = i; i < len && args[i] != ' '; i++)
		;
	if (parse_size(args + start, i - start, BDAT_DIGITS_MAX, &size) != 0)
		return -1;
	while (i < len && args[i] == ' ')
		i++;
	if (i < len) {
		/* RFC 3030 §3: bdat-cmd = "BDAT" SP chunk-size [SP end-marker] */
		if (!ci_eq(args + i, len - i, "LAST"))
			return -1;
		last = 1;
	}
	if (size_r != NULL)
		*size_r = size;
	if (last_r != NULL)
		*last_r = last;
	return 0;
}

size_t
smtp_log_escape(char *out, size_t outsize, const char *in, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*u = (const unsigned char *)in;
	char			 unit[4];
	size_t			 cap, pos = 0, safe = 0, w, i;

	if (outsize == 0)
		return 0;
	cap = outsize - 1;
	if (in == NULL)
		len = 0;
	for (i = 0; i < len; i++) {
		if (u[i] == '\\') {
			unit[0] = unit[1] = '\\';
			w = 2;
		} else if (u[i] >= 0x20 && u[i] < 0x7f) {
			unit[0] = (char)u[i];
			w = 1;
		} else {
			unit[0] = '\\';
			unit[1] = 'x';
			unit[2] = hex[u[i] >> 4];
			unit[3] = hex[u[i] & 0xf];
			w = 4;
		}
		if (pos + w > cap) {
			/*
			 * Cut after the last whole escape that leaves room
			 * for the marker, so no "\x4" half-escape misleads
			 * the reader.
			 */
			pos = safe;
			for (w = 0; w < 3 && pos < cap; w++)
				out[pos++] = '.';
			break;
		}
		memcpy(out + pos, unit, w);
		pos += w;
		if (pos + 3 <= cap)
			safe = pos;
	}
	out[pos] = '\0';
	return pos;
}

/* b64val - the 6-bit value of a base64 character, or -1 */
static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
smtp_base64_decode(const char *in, size_t len, unsigned char *out,
    size_t outcap, size_t *outlen)
{
	size_t i, o = 0;

	*outlen = 0;
	if (len == 1 && in[0] == '=')
		return 0;
	if (len == 0 || len % 4 != 0 || len / 4 * 3 > outcap)
		return -1;
	for (i = 0; i < len; i += 4) {
		int a = b64val((unsigned char)in[i]);
		int b = b64val((unsigned char)in[i + 1]);
		int c = b64val((unsigned char)in[i + 2]);
		int d = b64val((unsigned char)in[i + 3]);
		int last = i + 4 == len;

		if (a < 0 || b < 0)
			return -1;
		if (c < 0 || d < 0) {
			/* Padding only at the very end: "xx==" or "xxx=". */
			if (!last || in[i + 3] != '=' ||
			    (c < 0 && in[i + 2] != '='))
				return -1;
		}
		out[o++] = (unsigned char)(a << 2 | b >> 4);
		if (c >= 0) {
			out[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
			if (d >= 0)
				out[o++] = (unsigned char)((c & 3) << 6 | d);
		} else if ((b & 15) != 0) {
			return -1;	/* non-canonical trailing bits */
		}
		if (c >= 0 && d < 0 && (c & 3) != 0)
			return -1;
	}
	*outlen = o;
	return 0;
}

int
smtp_auth_plain_split(const unsigned char *d, size_t n,
    struct smtp_auth_plain *out)
{
	const unsigned char *nul1, *nul2;

	if (n == 0 || (nul1 = memchr(d, '\0', n)) == NULL ||
	    (nul2 = memchr(nul1 + 1, '\0', n - (size_t)(nul1 + 1 - d))) == NULL)
		return -1;
	out->authzid = d;
	out->authzid_len = (size_t)(nul1 - d);
	out->authcid = nul1 + 1;
	out->authcid_len = (size_t)(nul2 - nul1 - 1);
	out->passwd = nul2 + 1;
	out->passwd_len = n - (size_t)(nul2 + 1 - d);
	return 0;
}

int
smtp_has_8bit(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return 1;
	return 0;
}
