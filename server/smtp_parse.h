/*
 * smtp_parse.h - pure parsers for SMTP command lines
 *
 * SYNOPSIS
 *	#include "smtp_parse.h"
 *
 *	const char *args, *why;
 *	size_t alen;
 *	struct smtp_mail_arg ma;
 *
 *	if (smtp_parse_verb(line, len, &args, &alen) == SMTP_VERB_MAIL &&
 *	    smtp_parse_mail_arg(args, alen, 0, &ma, &why) == SMTP_PARSE_OK)
 *		use(ma.addr, ma.size);
 *
 * DESCRIPTION
 *	This module turns one command line (without its CRLF) into a verb and
 *	its validated arguments: the MAIL/RCPT path and ESMTP parameters
 *	(RFC 5321 §4.1.2, RFC 1870, RFC 6152, RFC 3030, RFC 3461, RFC 4954,
 *	RFC 6531), the HELO/EHLO domain, and the BDAT chunk size.  It also
 *	escapes client text for the log.
 *
 *	It never does I/O, never allocates and keeps no state, so every
 *	function is safe to fuzz and to call on hostile bytes: inputs are
 *	(pointer, length) pairs that need not be NUL-terminated and may hold
 *	NUL bytes.  What the parsers return either lives in the caller's
 *	struct or points into the caller's input (slices), so the input must
 *	outlive the results.
 *
 *	It decides syntax only.  Whether a command is allowed in the current
 *	state, whether SMTPUTF8 was requested before UTF-8 appears, whether a
 *	SIZE is too big or BODY=BINARYMIME is acceptable is the session's call.
 */
#ifndef SMTP_PARSE_H
#define SMTP_PARSE_H

#include <stddef.h>

/* The verbs of SPEC §3.  Append only: the values are logged and tabled. */
enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_XCLIENT,		/* Postfix's XCLIENT (smtp_xclient.c) */
	SMTP_VERB_COUNT
};

/* smtp_verb_str - "MAIL", ...; "UNKNOWN" for anything out of range */
const char	*smtp_verb_str(enum smtp_verb);

/*
 * smtp_parse_verb - split a command line into verb and argument text
 *
 * line is the command line without its CRLF, len its length.  The verb is
 * case-insensitive (RFC 5321 §2.4) and ends at SP, HTAB or the end of the
 * line; "MAILFROM:<>" is therefore SMTP_VERB_UNKNOWN.  *args_r points at
 * the argument text after the separator (extra leading SP/HTAB skipped),
 * *args_len_r is its length with trailing SP/HTAB trimmed; with no
 * argument *args_r points at the end of the line and *args_len_r is 0.
 * Either out pointer may be NULL.  The arguments are set for unknown
 * verbs too.
 */
enum smtp_verb	 smtp_parse_verb(const char *line, size_t len,
		    const char **args_r, size_t *args_len_r);

enum smtp_parse_status {
	SMTP_PARSE_OK = 0,
	SMTP_PARSE_SYNTAX,		/* 501 5.5.4 */
	SMTP_PARSE_BAD_ADDRESS,		/* 501 5.1.7 MAIL, 501 5.1.3 RCPT */
	SMTP_PARSE_BAD_PARAM,		/* 501 5.5.4: bad value, or duplicate */
	SMTP_PARSE_UNKNOWN_PARAM,	/* 555 5.5.4 (RFC 5321 §4.1.1.11) */
	SMTP_PARSE_TOO_MANY_PARAMS,	/* 501 5.5.4 */
	SMTP_PARSE_TOO_LONG		/* path > 256: 501 5.1.7 / 5.1.3 */
};

/* smtp_parse_status_str - "OK", "SYNTAX", ... for the log */
const char	*smtp_parse_status_str(enum smtp_parse_status);

/*
 * smtp_parse_status_code - the reply code (501 or 555) for a failed MAIL
 * (is_rcpt 0) or RCPT (is_rcpt 1) and, in *enhanced_r (may be NULL), the
 * RFC 3463 code: "5.1.7"/"5.1.3" for address errors, else "5.5.4".
 * Returns 250 and "2.1.0"/"2.1.5" for SMTP_PARSE_OK.
 */
int		 smtp_parse_status_code(enum smtp_parse_status, int is_rcpt,
		    const char **enhanced_r);

/*
 * RFC 5321 §4.5.3.1.3: a reverse- or forward-path is at most 256 octets
 * "including the punctuation and element separators", i.e. counting the
 * angle brackets and any source route.  The mailbox itself is therefore
 * at most 254 octets; addr[] has room for the limit plus NUL anyway.
 */
#define SMTP_PATH_MAX	256
#define SMTP_PARAMS_MAX	16

/*
 * RFC 3461 limits, enforced so that whatever MAIL/RCPT accept with 250
 * can be carried whole (plugins, stored envelopes); longer is BAD_PARAM
 * (501 5.5.4).  ENVID: at most 100 characters after xtext decoding
 * (§4.4), so at most 300 octets as sent.  ORCPT: the whole value,
 * addr-type ";" xtext as sent, at most 500 octets (§4.2).  NOTIFY takes
 * each keyword once, so it is at most 21 octets ("SUCCESS,FAILURE,DELAY").
 */
#define SMTP_ENVID_MAX	100
#define SMTP_ORCPT_MAX	500

/* One ESMTP parameter; key and value are slices of the parsed input. */
struct smtp_param {
	const char	*key;
	size_t		 key_len;
	const char	*value;		/* NULL when the param has no '=' */
	size_t		 value_len;
};

enum smtp_body {
	SMTP_BODY_NONE = 0,		/* no BODY= given */
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,		/* RFC 6152 */
	SMTP_BODY_BINARYMIME		/* RFC 3030: needs BDAT */
};

struct smtp_mail_arg {
	/*
	 * The mailbox without angle brackets and without source route,
	 * NUL-terminated; "" for the null sender <>, "Postmaster" for RCPT
	 * TO:<Postmaster> in any case.  A quoted local part is kept as sent,
	 * quotes and backslashes included.
	 */
	char		 addr[SMTP_PATH_MAX + 1];
	size_t		 addr_len;
	/*
	 * Length of the local part in addr; when addr[local_len] is '@'
	 * the domain is addr + local_len + 1.  Equal to addr_len for "" and
	 * "Postmaster" (no domain).
	 */
	size_t		 local_len;

	/* Every parameter in the order sent, known or not. */
	size_t		 nparams;
	struct smtp_param params[SMTP_PARAMS_MAX];

	/* The known ESMTP parameters, validated.  Slices of the input. */
	int		 has_size;	/* SIZE=n (RFC 1870), MAIL */
	unsigned long long size;
	enum smtp_body	 body;		/* BODY= (RFC 6152, 3030), MAIL */
	int		 smtputf8;	/* SMTPUTF8 (RFC 6531), MAIL */
	const char	*ret;		/* RET=FULL|HDRS (RFC 3461), MAIL */
	size_t		 ret_len;
	const char	*envid;		/* ENVID=xtext (RFC 3461), MAIL */
	size_t		 envid_len;
	const char	*notify;	/* NOTIFY= (RFC 3461), RCPT */
	size_t		 notify_len;
	const char	*orcpt;		/* ORCPT=type;xtext (RFC 3461), RCPT */
	size_t		 orcpt_len;
	const char	*auth;		/* AUTH=xtext|<> (RFC 4954), MAIL */
	size_t		 auth_len;
};

/*
 * smtp_parse_mail_arg - parse the argument of MAIL or RCPT
 *
 * args/len is "FROM:<path> [params]" (is_rcpt 0) or "TO:<path> [params]"
 * (is_rcpt 1), e.g. as smtp_parse_verb() returned it.  *out is cleared
 * first and filled on success; on failure its contents are unspecified.
 * error_r (may be NULL) gets a short static English reason for the reply
 * text.  Parameters that belong to the other command are UNKNOWN_PARAM.
 */
enum smtp_parse_status smtp_parse_mail_arg(const char *args, size_t len,
		    int is_rcpt, struct smtp_mail_arg *out,
		    const char **error_r);

/*
 * smtp_check_helo_arg - 0 when arg/len is an acceptable HELO/EHLO
 * argument (a domain name, or an address literal [1.2.3.4] /
 * [IPv6:...]), -1 when not.  Lenient like Postfix: underscores, a
 * trailing dot and all-numeric labels pass; empty, > 255 octets, SP or
 * control characters, empty labels, labels > 63 octets or with a leading
 * or trailing hyphen, and malformed UTF-8 do not.
 */
int		 smtp_check_helo_arg(const char *arg, size_t len);

/*
 * smtp_parse_bdat_arg - parse "<size> [LAST]" (RFC 3030 §3); 0 and fills
 * *size_r and *last_r (either may be NULL), or -1 on a syntax error.  The
 * size is 1 to 19 decimal digits, nothing else; LAST is case-insensitive.
 */
int		 smtp_parse_bdat_arg(const char *args, size_t len,
		    unsigned long long *size_r, int *last_r);

/*
 * smtp_log_escape - copy client text into out for logging
 *
 * Printable ASCII other than backslash is kept; backslash becomes "\\",
 * every other byte "\xHH", so the result is one printable line.  When
 * the escaped text does not fit in outsize - 1 bytes it is cut at an
 * escape boundary and ends with "...".  out is always NUL-terminated when
 * outsize > 0.  Returns the number of bytes written, NUL excluded.
 */
size_t		 smtp_log_escape(char *out, size_t outsize, const char *in,
		    size_t len);


/*
 * smtp_base64_decode - decode an AUTH response (RFC 4954 §4: base64 of
 * RFC 4648 §4, padding required, no whitespace; "=" alone is the empty
 * string).  Returns 0 and sets *outlen, or -1 when the input is not
 * base64 or does not fit outcap (which needs len / 4 * 3 octets).
 */
int		 smtp_base64_decode(const char *in, size_t len, unsigned char *out,
		    size_t outcap, size_t *outlen);

/*
 * smtp_auth_plain_split - the decoded PLAIN message of RFC 4616,
 * "[authzid] NUL authcid NUL passwd", as three slices of d (not
 * NUL-terminated; authzid_len 0 when absent).  The password is the rest
 * after the second NUL, NULs and all (the caller refuses those).  Returns
 * 0, or -1 when d does not hold two NULs.
 */
struct smtp_auth_plain {
	const unsigned char	*authzid, *authcid, *passwd;
	size_t			 authzid_len, authcid_len, passwd_len;
};
int		 smtp_auth_plain_split(const unsigned char *d, size_t n,
		    struct smtp_auth_plain *out);

/* smtp_has_8bit - any octet >= 0x80: an address that needs SMTPUTF8 */
int		 smtp_has_8bit(const char *p, size_t n);

#endif /* SMTP_PARSE_H */
