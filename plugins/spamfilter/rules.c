/*
 * rules.c - the spamfilter rules file: parser, compiled rules, matcher
 *
 * See rules.h for the syntax.  Pure: PCRE2 and libc only, so that the
 * unit tests and the fuzz target (tests/fuzz/fuzz_spam_rules.c) can
 * compile this file in directly.
 */
#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>	/* also tells the build to link PCRE2 */

#include "rules.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/sh_helpers.h"

#define QUOTE_MAX 48		/* octets of rules text quoted in an error */

/* Rules passed to err_at() are never NULL; err may be. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

/*
 * under_valgrind - JIT-compiled patterns read ahead of the subject in
 * ways memcheck cannot follow (false "uninitialised value" reports from
 * code with no symbols, which no suppression can name); under valgrind the
 * interpreter is used instead, with the same results.
 */
static int
under_valgrind(void)
{
#ifdef HAVE_VALGRIND_H
	return RUNNING_ON_VALGRIND != 0;
#else
	return 0;
#endif
}

static void err_at(char *err, size_t errlen, const char *file, unsigned line,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
err_at(char *err, size_t errlen, const char *file, unsigned line,
    const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL || errlen == 0)
		return;
	if (line > 0)
		n = snprintf(err, errlen, "%s:%u: ", file, line);
	else
		n = snprintf(err, errlen, "%s: ", file);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* quote - a printable copy of s[0..n) for a message, cut with "..." */
static const char *
quote(char *out, size_t outsize, const char *s, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 4 < outsize; i++) {
		unsigned char c = (unsigned char)s[i];

		if (o >= QUOTE_MAX) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[o] = '\0';
	return out;
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* word_eq - s[0..n) equals the keyword kw, ignoring case */
static int
word_eq(const char *s, size_t n, const char *kw)
{
	return sh_ascii_caseeq(s, n, kw, strlen(kw));
}

int
rules_parse_score(const char *s, size_t len, int64_t *out)
{
	size_t i = 0;
	int neg = 0, nd = 0, nf = 0;
	int64_t ip = 0, frac = 0, v;

	if (i < len && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	for (; i < len && is_digit(s[i]); i++, nd++) {
		if (ip > RULES_SCORE_MAX)
			return -1;
		ip = ip * 10 + (s[i] - '0');
	}
	if (i < len && s[i] == '.') {
		for (i++; i < len && is_digit(s[i]); i++, nf++) {
			if (nf == 3)
				return -1;
			frac = frac * 10 + (s[i] - '0');
		}
	}
	if (i != len || nd + nf == 0)
		return -1;
	for (; nf < 3; nf++)
		frac *= 10;
	if (ip > RULES_SCORE_MAX || (ip == RULES_SCORE_MAX && frac > 0))
		return -1;
	v = ip * 1000 + frac;
	*out = neg ? -v : v;
	return 0;
}

void
rules_format_score(int64_t score, char *buf, size_t size)
{
	uint64_t a = score < 0 ? (uint64_t)0 - (uint64_t)score : (uint64_t)score;
	uint64_t tenths = (a + 50) / 100;

	snprintf(buf, size, "%s%llu.%llu", score < 0 && tenths > 0 ? "-" : "",
	    (unsigned long long)(tenths / 10), (unsigned long long)(tenths % 10));
}

const char *
rules_where_name(enum rule_where w)
{
	static const char *const names[RULE_WHERE_COUNT] = {
		"header", "body", "from", "rcpt", "helo", "ip",
	};

	return (unsigned)w < RULE_WHERE_COUNT ? names[w] : "?";
}

static void
rule_clear(struct rule *r)
{
	free(r->header);
	free(r->label);
	free(r->pattern);
	pcre2_code_free(r->re);
	memset(r, 0, sizeof(*r));
}

void
rules_free(struct rules *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++)
		rule_clear(&r->v[i]);
	for (i = 0; i < RULE_WHERE_COUNT; i++)
		free(r->idx[i]);
	free(r->v);
	free(r);
}

static char *
dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* valid_name - [A-Za-z_][A-Za-z0-9_.-]*, 1..RULES_NAME_MAX octets */
static int
valid_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > RULES_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    c == '_';

		if (!alpha && (i == 0 || !(is_digit(c) || c == '.' || c == '-')))
			return 0;
	}
	return 1;
}

/* valid_field_name - RFC 5322 ftext: printable ASCII but ':' */
static int
valid_field_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > RULES_HEADER_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 32 || (unsigned char)s[i] >= 127 ||
		    s[i] == ':')
			return 0;
	return 1;
}

/* token - [*p, end of the word) */
static const char *
token_end(const char *p, const char *le)
{
	while (p < le && !is_blank(*p))
		p++;
	return p;
}

static const char *
skip_blanks(const char *p, const char *le)
{
	while (p < le && is_blank(*p))
		p++;
	return p;
}

/*
 * parse_line - one line [p, le) (no line end).  Appends a rule to r or
 * does nothing for a blank or comment line.  Returns 0 or -1 (err set).
 */
static int
parse_line(struct rules *r, size_t *cap, const char *p, const char *le,
    const char *file, unsigned line, unsigned opts, char *err, size_t errlen)
{
	char q[QUOTE_MAX + 8], msg[256];
	const char *t, *pat, *name = NULL;
	size_t patlen, namelen = 0;
	struct rule rule = { 0 };
	uint32_t copts;
	int ecode;
	PCRE2_SIZE eoff;

	p = skip_blanks(p, le);
	if (p == le || *p == '#')
		return 0;
	if (memchr(p, '\0', (size_t)(le - p)) != NULL) {
		err_at(err, errlen, file, line, "NUL byte in the line");
		return -1;
	}
	rule.line = line;

	/* SCORE */
	t = token_end(p, le);
	if (rules_parse_score(p, (size_t)(t - p), &rule.score) < 0) {
		err_at(err, errlen, file, line, "bad score '%s' (a decimal such "
		    "as 2, -1.5 or 0.25, at most 3 decimals and %d in size)",
		    quote(q, sizeof(q), p, (size_t)(t - p)), RULES_SCORE_MAX);
		return -1;
	}
	p = skip_blanks(t, le);

	/* WHERE */
	if (p == le) {
		err_at(err, errlen, file, line, "missing WHERE and /REGEX/ after "
		    "the score");
		return -1;
	}
	t = token_end(p, le);
	if (word_eq(p, (size_t)(t - p), "body"))
		rule.where = RULE_BODY;
	else if (word_eq(p, (size_t)(t - p), "from"))
		rule.where = RULE_FROM;
	else if (word_eq(p, (size_t)(t - p), "rcpt"))
		rule.where = RULE_RCPT;
	else if (word_eq(p, (size_t)(t - p), "helo"))
		rule.where = RULE_HELO;
	else if (word_eq(p, (size_t)(t - p), "ip"))
		rule.where = RULE_IP;
	else if (t - p >= 7 && word_eq(p, 7, "header:")) {
		if (!valid_field_name(p + 7, (size_t)(t - p - 7))) {
			err_at(err, errlen, file, line, "bad header name in '%s' "
			    "(header:NAME, NAME a header field name of at most "
			    "%d characters)", quote(q, sizeof(q), p,
			    (size_t)(t - p)), RULES_HEADER_MAX);
			return -1;
		}
		rule.where = RULE_HEADER;
		rule.header_len = (size_t)(t - p - 7);
		if ((rule.header = dup_n(p + 7, rule.header_len)) == NULL)
			goto nomem;
	} else {
		err_at(err, errlen, file, line, "unknown WHERE '%s' (one of "
		    "header:NAME, body, from, rcpt, helo, ip)",
		    quote(q, sizeof(q), p, (size_t)(t - p)));
		return -1;
	}
	p = skip_blanks(t, le);

	/* /REGEX/ */
	if (p == le || *p != '/') {
		err_at(err, errlen, file, line, p == le ? "missing /REGEX/ after "
		    "WHERE" : "the regex must be written /REGEX/FLAGS");
		goto fail;
	}
	pat = ++p;
	while (p < le && *p != '/') {
		if (*p == '\\' && p + 1 < le)
			p++;
		p++;
	}
	if (p >= le) {
		err_at(err, errlen, file, line, "unterminated regex: no closing "
		    "'/' (write a '/' inside the regex as '\\/')");
		goto fail;
	}
	patlen = (size_t)(p - pat);
	if (patlen == 0) {
		err_at(err, errlen, file, line, "empty regex");
		goto fail;
	}
	/* FLAGS */
	for (p++; p < le && !is_blank(*p); p++) {
		switch (*p) {
		case 'i': rule.flags |= RULE_F_I; break;
		case 'm': rule.flags |= RULE_F_M; break;
		case 's': rule.flags |= RULE_F_S; break;
		case 'x': rule.flags |= RULE_F_X; break;
		case 'u': rule.flags |= RULE_F_U; break;
		default:
			err_at(err, errlen, file, line, "unknown flag '%s' after "
			    "the regex (flags are i, m, s, x, u)",
			    quote(q, sizeof(q), p, 1));
			goto fail;
		}
	}
	p = skip_blanks(p, le);

	/* [NAME] [# comment] */
	if (p < le && *p != '#') {
		t = token_end(p, le);
		if (!valid_name(p, (size_t)(t - p))) {
			err_at(err, errlen, file, line, "bad rule name '%s' (letters, "
			    "digits, '_', '.', '-', starting with a letter or '_', "
			    "at most %d characters)", quote(q, sizeof(q), p,
			    (size_t)(t - p)), RULES_NAME_MAX);
			goto fail;
		}
		name = p;
		namelen = (size_t)(t - p);
		p = skip_blanks(t, le);
		if (p < le && *p != '#') {
			err_at(err, errlen, file, line, "unexpected '%s' after the "
			    "rule name (a comment starts with '#')",
			    quote(q, sizeof(q), p, (size_t)(le - p)));
			goto fail;
		}
	}

	if (r->n >= RULES_MAX) {
		err_at(err, errlen, file, line, "too many rules (at most %d)",
		    RULES_MAX);
		goto fail;
	}

	/* Compile. */
	copts = PCRE2_NEVER_BACKSLASH_C;
	if (rule.flags & RULE_F_I)
		copts |= PCRE2_CASELESS;
	if (rule.flags & RULE_F_M)
		copts |= PCRE2_MULTILINE;
	if (rule.flags & RULE_F_S)
		copts |= PCRE2_DOTALL;
	if (rule.flags & RULE_F_X)
		copts |= PCRE2_EXTENDED;
	if (rule.flags & RULE_F_U)
		copts |= PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
	else
		copts |= PCRE2_NEVER_UTF;
	rule.re = pcre2_compile((PCRE2_SPTR)pat, patlen, copts, &ecode, &eoff,
	    NULL);
	if (rule.re == NULL) {
		if (pcre2_get_error_message(ecode, (PCRE2_UCHAR *)msg,
		    sizeof(msg)) < 0)
			snprintf(msg, sizeof(msg), "PCRE2 error %d", ecode);
		err_at(err, errlen, file, line, "bad regex /%s/: %s at offset %zu",
		    quote(q, sizeof(q), pat, patlen), msg, (size_t)eoff);
		goto fail;
	}
	if (!(opts & RULES_NO_JIT) && !under_valgrind() &&
	    pcre2_jit_compile(rule.re, PCRE2_JIT_COMPLETE) == 0) {
		rule.jit = 1;
		r->njit++;
	}
	if ((rule.pattern = dup_n(pat, patlen)) == NULL)
		goto nomem;
	if (name != NULL)
		rule.label = dup_n(name, namelen);
	else if ((rule.label = malloc(16)) != NULL)
		snprintf(rule.label, 16, "%u", line);
	if (rule.label == NULL)
		goto nomem;

	if (r->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct rule *v = realloc(r->v, ncap * sizeof(*v));

		if (v == NULL)
			goto nomem;
		r->v = v;
		*cap = ncap;
	}
	r->v[r->n++] = rule;
	return 0;

nomem:
	err_at(err, errlen, file, line, "out of memory");
fail:
	rule_clear(&rule);
	return -1;
}

/* Ordering of named rules by (label, line) for the duplicate check. */
static int
cmp_label(const void *a, const void *b)
{
	const struct rule *x = *(const struct rule *const *)a;
	const struct rule *y = *(const struct rule *const *)b;
	int c = strcmp(x->label, y->label);

	if (c != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* check_names - no NAME twice; reports the earliest duplicate line */
static int
check_names(const struct rules *r, const char *file, char *err, size_t errlen)
{
	const struct rule **v, *dup = NULL, *first = NULL;
	size_t i, n = 0;

	if (r->n < 2)
		return 0;
	if ((v = malloc(r->n * sizeof(*v))) == NULL) {
		err_at(err, errlen, file, 0, "out of memory");
		return -1;
	}
	for (i = 0; i < r->n; i++)
		if (!is_digit(r->v[i].label[0]))
			v[n++] = &r->v[i];
	qsort(v, n, sizeof(*v), cmp_label);
	for (i = 1; i < n; i++) {
		if (strcmp(v[i]->label, v[i - 1]->label) != 0)
			continue;
		/* Sorted by line within a name: v[i - 1] is earlier. */
		if (dup == NULL || v[i]->line < dup->line)
			dup = v[i];
	}
	if (dup != NULL) {
		/* The first line that uses this name. */
		for (i = 0; i < r->n; i++)
			if (strcmp(r->v[i].label, dup->label) == 0) {
				first = &r->v[i];
				break;
			}
		err_at(err, errlen, file, dup->line, "duplicate rule name '%s' "
		    "(first used at line %u)", dup->label, first->line);
	}
	free(v);
	return dup != NULL ? -1 : 0;
}

int
rules_parse(const char *buf, size_t len, const char *file, unsigned opts,
    struct rules **out, char *err, size_t errlen)
{
	struct rules *r;
	const char *p = buf, *end = buf + len, *nl, *le;
	size_t cap = 0, i, w;
	unsigned line = 0;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > RULES_FILE_MAX) {
		err_at(err, errlen, file, 0, "larger than %u bytes",
		    (unsigned)RULES_FILE_MAX);
		return -1;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		err_at(err, errlen, file, 0, "out of memory");
		return -1;
	}
	if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		le = nl != NULL ? nl : end;
		line++;
		if (le > p && le[-1] == '\r')
			le--;
		if (parse_line(r, &cap, p, le, file, line, opts, err, errlen) < 0)
			goto fail;
		p = nl != NULL ? nl + 1 : end;
	}
	if (check_names(r, file, err, errlen) < 0)
		goto fail;
	for (i = 0; i < r->n; i++)
		r->count[r->v[i].where]++;
	for (w = 0; w < RULE_WHERE_COUNT; w++) {
		if (r->count[w] == 0)
			continue;
		if ((r->idx[w] = malloc(r->count[w] * sizeof(size_t))) == NULL) {
			err_at(err, errlen, file, 0, "out of memory");
			goto fail;
		}
		r->count[w] = 0;
	}
	for (i = 0; i < r->n; i++) {
		w = r->v[i].where;
		r->idx[w][r->count[w]++] = i;
	}
	*out = r;
	return 0;
fail:
	rules_free(r);
	return -1;
}

int
rules_load(const char *path, unsigned opts, struct rules **out, char *err,
    size_t errlen)
{
	FILE *f;
	char *buf = NULL, *nb;
	size_t len = 0, cap = 0, n;
	int rc, e;

	*out = NULL;
	if ((f = fopen(path, "rb")) == NULL) {
		e = errno;
		err_at(err, errlen, path, 0, "cannot open: %s", strerror(e));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			if (cap > RULES_FILE_MAX) {
				err_at(err, errlen, path, 0, "larger than %u bytes",
				    (unsigned)RULES_FILE_MAX);
				goto fail;
			}
			cap = cap ? cap * 2 : 16384;
			if ((nb = realloc(buf, cap)) == NULL) {
				err_at(err, errlen, path, 0, "out of memory");
				goto fail;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		err_at(err, errlen, path, 0, "read error");
		goto fail;
	}
	fclose(f);
	rc = rules_parse(buf != NULL ? buf : "", len, path, opts, out, err,
	    errlen);
	free(buf);
	return rc;
fail:
	fclose(f);
	free(buf);
	return -1;
}

struct rules_matcher {
	pcre2_match_data *md;
	pcre2_match_context *mc;
	pcre2_jit_stack *js;
};

struct rules_matcher *
rules_matcher_new(unsigned long match_limit, unsigned long depth_limit)
{
	struct rules_matcher *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->md = pcre2_match_data_create(1, NULL);
	m->mc = pcre2_match_context_create(NULL);
	if (m->md == NULL || m->mc == NULL) {
		rules_matcher_free(m);
		return NULL;
	}
	pcre2_set_match_limit(m->mc, (uint32_t)match_limit);
	pcre2_set_depth_limit(m->mc, (uint32_t)depth_limit);
	pcre2_set_heap_limit(m->mc, (uint32_t)RULES_HEAP_LIMIT_KIB);
	/* NULL when PCRE2 has no JIT: the matcher then never uses it. */
	m->js = pcre2_jit_stack_create(32 * 1024, RULES_JIT_STACK_MAX, NULL);
	if (m->js != NULL)
		pcre2_jit_stack_assign(m->mc, NULL, m->js);
	return m;
}

void
rules_matcher_free(struct rules_matcher *m)
{
	if (m == NULL)
		return;
	pcre2_jit_stack_free(m->js);
	pcre2_match_context_free(m->mc);
	pcre2_match_data_free(m->md);
	free(m);
}

int
rules_match(struct rules_matcher *m, const struct rule *r, const void *subject,
    size_t len, uint32_t options, int *pcre_rc)
{
	int rc;

	if (subject == NULL)
		subject = "";
	rc = pcre2_match(r->re, (PCRE2_SPTR)subject, len, 0, options, m->md,
	    m->mc);
	if (pcre_rc != NULL)
		*pcre_rc = rc;
	if (rc >= 0)
		return 1;
	switch (rc) {
	case PCRE2_ERROR_NOMATCH:
		return 0;
	case PCRE2_ERROR_MATCHLIMIT:
	case PCRE2_ERROR_DEPTHLIMIT:
	case PCRE2_ERROR_HEAPLIMIT:
	case PCRE2_ERROR_JIT_STACKLIMIT:
	case PCRE2_ERROR_NOMEMORY:
		return RULES_LIMIT;
	default:
		return RULES_ERROR;
	}
}
