/*
 * proto.c - the policy delegation protocol without I/O (see proto.h)
 *
 * Everything here works on caller buffers, bounded, and allocates
 * nothing, so that the fuzz target (tests/fuzz/fuzz_policyd_proto.c) can
 * compile it in directly.
 */
#include <stdio.h>
#include <string.h>

#include "proto.h"

/* lower - ASCII tolower */
static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_space(int c)
{
	return c == ' ' || c == '\t';
}

/* name_len - the length of an attribute name [a-z0-9_]+, 0 if it is not
 * one (a table lookup per octet: every request checks ~25 names) */
static size_t
name_len(const char *s)
{
	static const unsigned char ok[256] = {
		['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
		['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['_'] = 1,
		['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
		['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
		['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
		['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
		['y'] = 1, ['z'] = 1,
	};
	size_t n = 0;

	if (s == NULL)
		return 0;
	while (ok[(unsigned char)s[n]])
		n++;
	return s[n] == '\0' ? n : 0;
}

long
pd_request_build(const struct pd_attr *a, size_t n, char *buf, size_t size,
    size_t *replaced)
{
	size_t i, k, off = 0, nl, vl, bad = 0;

	for (i = 0; i < n; i++) {
		const char *v = a[i].value != NULL ? a[i].value : "";

		if ((nl = name_len(a[i].name)) == 0)
			return -1;
		vl = a[i].value == NULL ? 0 :
		    a[i].len == PD_CSTR ? strlen(v) : a[i].len;
		/* name '=' value '\n', and room for the final "\n" + NUL */
		if (nl + vl + 2 > size || off > size - (nl + vl + 2) ||
		    size - (off + nl + vl + 2) < 2)
			return -1;
		memcpy(buf + off, a[i].name, nl);
		off += nl;
		buf[off++] = '=';
		memcpy(buf + off, v, vl);
		/* A C string has no NUL inside: one strcspn() tells it is
		 * clean (most are); else look at each octet. */
		k = a[i].len == PD_CSTR ? strcspn(v, "\r\n") : 0;
		for (; k < vl; k++)
			if (v[k] == '\n' || v[k] == '\r' || v[k] == '\0') {
				buf[off + k] = '?';
				bad++;
			}
		off += vl;
		buf[off++] = '\n';
	}
	if (size - off < 2)
		return -1;
	buf[off++] = '\n';
	buf[off] = '\0';
	if (replaced != NULL)
		*replaced = bad;
	return (long)off;
}

int
pd_reply_end(const char *buf, size_t len, size_t *end)
{
	size_t i, line = 0;

	for (i = 0; i < len && i < PD_REPLY_MAX; i++) {
		if (buf[i] != '\n')
			continue;
		/* an empty line: only "\n" or "\r\n" since the last LF */
		if (i == line || (i == line + 1 && buf[line] == '\r')) {
			*end = i + 1;
			return 1;
		}
		line = i + 1;
	}
	return len >= PD_REPLY_MAX ? -1 : 0;
}

/* set_reply - verdict, code, enhanced, text (or default) into d */
static void
set_reply(struct pd_decision *d, enum pd_verdict v, int code,
    const char *enh, const char *text, size_t tlen)
{
	d->verdict = v;
	d->code = code;
	snprintf(d->enhanced, sizeof(d->enhanced), "%s", enh);
	if (tlen == 0) {
		text = "Access denied";
		tlen = strlen(text);
	}
	if (tlen >= sizeof(d->text))
		tlen = sizeof(d->text) - 1;
	memcpy(d->text, text, tlen);
	d->text[tlen] = '\0';
}

/* set_log_text - text (may be empty) as the text to log */
static void
set_log_text(struct pd_decision *d, const char *text, size_t tlen)
{
	d->log = 1;
	if (tlen >= sizeof(d->text))
		tlen = sizeof(d->text) - 1;
	memcpy(d->text, text, tlen);
	d->text[tlen] = '\0';
}

/*
 * enhanced_len - length of an RFC 3463 code "C.S.D" (C one digit 2, 4
 * or 5, S and D 1-3 digits) at s, followed by a blank or the end; 0 if
 * there is none
 */
static size_t
enhanced_len(const char *s, size_t len)
{
	size_t i = 0, part, k;

	if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (k = 0; i < len && is_digit(s[i]) && k < 4; i++, k++)
			;
		if (k == 0 || k > 3)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && !is_space(s[i]))
		return 0;
	return i;
}

/* word_eq - is the word w (wlen) the keyword kw (upper-case)? */
static int
word_eq(const char *w, size_t wlen, const char *kw)
{
	size_t i;

	if (strlen(kw) != wlen)
		return 0;
	for (i = 0; i < wlen; i++)
		if (lower(w[i]) != lower(kw[i]))
			return 0;
	return 1;
}

/* header_ok - "Name: value": a printable name without ':' or blanks,
 * then ':'; sets *nlen */
static int
header_ok(const char *s, size_t len, size_t *nlen)
{
	size_t i;

	for (i = 0; i < len && s[i] != ':'; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return 0;
	if (i == 0 || i == len)
		return 0;
	for (; i < len; i++)
		if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
			return 0;
	*nlen = (size_t)(strchr(s, ':') - s);
	return 1;
}

void
pd_action_map(const char *action, size_t len, struct pd_decision *d)
{
	static const char *const queue_actions[] = { "HOLD", "DISCARD",
		"FILTER", "REDIRECT", "BCC", NULL };
	const char *text;
	size_t wlen, tlen, i, el, nlen = 0;
	char enh[16];
	int code;

	memset(d, 0, sizeof(*d));
	/* leading and trailing blanks */
	while (len > 0 && is_space(action[0])) {
		action++;
		len--;
	}
	while (len > 0 && is_space(action[len - 1]))
		len--;
	if (memchr(action, '\0', len) != NULL || memchr(action, '\n', len) != NULL)
		return;
	for (wlen = 0; wlen < len && !is_space(action[wlen]); wlen++)
		;
	if (wlen == 0)
		return;
	for (i = 0; i < wlen && i < sizeof(d->action) - 1; i++) {
		int c = action[i];

		d->action[i] = (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
	}
	d->action[i] = '\0';
	text = action + wlen;
	tlen = len - wlen;
	while (tlen > 0 && is_space(text[0])) {
		text++;
		tlen--;
	}

	if (word_eq(action, wlen, "OK")) {
		d->verdict = PD_ACCEPT;
		return;
	}
	if (word_eq(action, wlen, "DUNNO")) {
		d->verdict = PD_CONTINUE;
		return;
	}
	if (word_eq(action, wlen, "REJECT")) {
		set_reply(d, PD_REJECT, 554, "5.7.1", text, tlen);
		return;
	}
	if (word_eq(action, wlen, "DEFER") ||
	    word_eq(action, wlen, "DEFER_IF_PERMIT")) {
		set_reply(d, PD_TEMPFAIL, 450, "4.7.1", text, tlen);
		return;
	}
	if (word_eq(action, wlen, "DEFER_IF_REJECT")) {
		d->verdict = PD_CONTINUE;
		set_log_text(d, text, tlen);
		return;
	}
	if (word_eq(action, wlen, "WARN") || word_eq(action, wlen, "INFO")) {
		d->verdict = PD_CONTINUE;
		set_log_text(d, text, tlen);
		return;
	}
	for (i = 0; queue_actions[i] != NULL; i++)
		if (word_eq(action, wlen, queue_actions[i])) {
			d->verdict = PD_CONTINUE;
			set_log_text(d, text, tlen);
			return;
		}
	if (word_eq(action, wlen, "PREPEND")) {
		d->verdict = PD_CONTINUE;
		if (tlen == 0 || tlen >= sizeof(d->header) ||
		    memchr(text, '\0', tlen) != NULL) {
			set_log_text(d, text, tlen);
			return;
		}
		memcpy(d->header, text, tlen);
		d->header[tlen] = '\0';
		if (!header_ok(d->header, tlen, &nlen)) {
			d->header[0] = '\0';
			set_log_text(d, text, tlen);
			return;
		}
		d->header_name_len = nlen;
		return;
	}
	/* 4NN / 5NN [enhanced] [text] */
	if (wlen == 3 && (action[0] == '4' || action[0] == '5') &&
	    is_digit(action[1]) && is_digit(action[2])) {
		code = (action[0] - '0') * 100 + (action[1] - '0') * 10 +
		    (action[2] - '0');
		snprintf(enh, sizeof(enh), "%c.7.1", action[0]);
		el = enhanced_len(text, tlen);
		if (el > 0 && el < sizeof(enh)) {
			memcpy(enh, text, el);
			enh[el] = '\0';
			enh[0] = action[0];	/* the class follows the code */
			text += el;
			tlen -= el;
			while (tlen > 0 && is_space(text[0])) {
				text++;
				tlen--;
			}
		}
		set_reply(d, code == 421 ? PD_DISCONNECT :
		    action[0] == '4' ? PD_TEMPFAIL : PD_REJECT, code, enh,
		    text, tlen);
		return;
	}
	/* all-numerical: OK (access(5), for SQL tables) */
	if (tlen == 0) {
		for (i = 0; i < wlen && is_digit(action[i]); i++)
			;
		if (i == wlen) {
			d->verdict = PD_ACCEPT;
			return;
		}
	}
	/* unknown: d->verdict is PD_USE_DEFAULT */
}

void
pd_reply_parse(const char *buf, size_t len, struct pd_decision *d)
{
	const char *line = buf, *end = buf + len, *nl, *eq, *act = NULL;
	size_t llen, alen = 0;

	memset(d, 0, sizeof(*d));
	while (line < end) {
		nl = memchr(line, '\n', (size_t)(end - line));
		llen = nl != NULL ? (size_t)(nl - line) : (size_t)(end - line);
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen == 0)
			break;		/* the empty line: the end */
		eq = memchr(line, '=', llen);
		if (eq == NULL || eq == line)
			return;		/* malformed: PD_USE_DEFAULT */
		if (act == NULL && word_eq(line, (size_t)(eq - line), "ACTION")) {
			act = eq + 1;
			alen = llen - (size_t)(eq + 1 - line);
		}
		if (nl == NULL)
			break;
		line = nl + 1;
	}
	if (act == NULL)
		return;
	pd_action_map(act, alen, d);
}

const char *
pd_verdict_name(enum pd_verdict v)
{
	switch (v) {
	case PD_CONTINUE:	return "continue";
	case PD_ACCEPT:		return "accept";
	case PD_REJECT:		return "reject";
	case PD_TEMPFAIL:	return "tempfail";
	case PD_DISCONNECT:	return "disconnect";
	case PD_USE_DEFAULT:	break;
	}
	return "default";
}
