/*
 * rules.h - the spamfilter rules file: parser, compiled rules, matcher
 *
 * SYNOPSIS
 *	struct rules *r;
 *	char err[RULES_ERR_MAX];
 *
 *	if (rules_load("spam.rules", 0, &r, err, sizeof(err)) < 0)
 *		fail(err);		// "spam.rules:12: unknown flag 'q' ..."
 *	m = rules_matcher_new(RULES_MATCH_LIMIT, RULES_DEPTH_LIMIT);
 *	rc = rules_match(m, &r->v[i], subject, len, 0);
 *	...
 *	rules_matcher_free(m);
 *	rules_free(r);
 *
 * DESCRIPTION
 *	A pure module (PCRE2 and libc only, no host API) so that the unit
 *	tests and the fuzz target can compile it in directly.  One rule per
 *	line:
 *
 *		SCORE WHERE /REGEX/FLAGS [NAME] [# comment]
 *
 *	SCORE	a decimal, optionally signed, at most 3 fractional digits,
 *		|SCORE| <= 1000000: "3", "-2.5", "+0.25", ".5".  Kept as an
 *		integer number of thousandths.
 *	WHERE	header:NAME | body | from | rcpt | helo | ip (keywords are
 *		case-insensitive; NAME is a header field name, compared
 *		case-insensitively when matching).
 *	REGEX	a PCRE2 pattern between slashes; a '/' inside is written
 *		"\/".  Must not be empty.
 *	FLAGS	any of i (caseless), m (multiline), s (dotall), x
 *		(extended), u (UTF-8 + Unicode properties; invalid UTF-8 in
 *		the subject never matches where it is invalid, it is not an
 *		error).  Without u, the pattern works on bytes and (*UTF) is
 *		refused.
 *	NAME	optional: [A-Za-z_][A-Za-z0-9_.-]*, at most 64 octets,
 *		unique in the file.  Without it the rule is known by its line
 *		number (the label "12").
 *
 *	Blank lines and lines whose first non-blank character is '#' are
 *	ignored; a '#' after the rule (after white space) starts a comment.
 *	CRLF line ends are accepted, a UTF-8 byte order mark at the start
 *	is skipped.  Any other content is an error naming FILE:LINE.
 */
#ifndef SPAMFILTER_RULES_H
#define SPAMFILTER_RULES_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#define RULES_ERR_MAX 512		/* room for any error message */
#define RULES_NAME_MAX 64		/* rule name */
#define RULES_HEADER_MAX 128		/* header:NAME */
#define RULES_MAX 65536			/* rules per file */
#define RULES_FILE_MAX (16u << 20)	/* bytes per rules file */
#define RULES_SCORE_MAX 1000000		/* |score| in points */

/* Default PCRE2 limits (per match call; see docs/plugins.md). */
#define RULES_MATCH_LIMIT 1000000UL
#define RULES_DEPTH_LIMIT 100000UL
#define RULES_HEAP_LIMIT_KIB 32768UL	/* interpreter's backtracking memory */
#define RULES_JIT_STACK_MAX (1u << 20)

/* rules_parse/rules_load options */
#define RULES_NO_JIT 0x1		/* do not JIT-compile */

enum rule_where {
	RULE_HEADER = 0,
	RULE_BODY,
	RULE_FROM,
	RULE_RCPT,
	RULE_HELO,
	RULE_IP,
	RULE_WHERE_COUNT
};

/* Source flags of a rule (what was written after the closing slash). */
#define RULE_F_I 0x01
#define RULE_F_M 0x02
#define RULE_F_S 0x04
#define RULE_F_X 0x08
#define RULE_F_U 0x10

struct rule {
	enum rule_where where;
	int64_t score;			/* thousandths of a point */
	unsigned line;			/* line in the rules file */
	unsigned flags;			/* RULE_F_* */
	int jit;			/* JIT-compiled */
	char *header;			/* header:NAME, else NULL */
	size_t header_len;
	char *label;			/* NAME, or the line number */
	char *pattern;			/* the REGEX text, NUL-terminated */
	pcre2_code *re;
};

struct rules {
	struct rule *v;
	size_t n;
	/* idx[w][0..count[w]) - indices into v of the rules of each WHERE,
	 * in file order. */
	size_t *idx[RULE_WHERE_COUNT];
	size_t count[RULE_WHERE_COUNT];
	size_t njit;			/* rules that got JIT code */
};

/*
 * rules_parse - parse and compile a rules file held in buf[0..len) (NUL
 * bytes are an error, not an end).  file names it in error messages.
 * Returns 0 and *out, or -1 with a one-line "FILE:LINE: reason" in err
 * (cut to errlen) and *out NULL.
 */
int rules_parse(const char *buf, size_t len, const char *file, unsigned opts,
    struct rules **out, char *err, size_t errlen);

/* rules_load - rules_parse of a whole file ("FILE: reason" when it
 * cannot be read). */
int rules_load(const char *path, unsigned opts, struct rules **out,
    char *err, size_t errlen);

void rules_free(struct rules *r);

/*
 * rules_parse_score - a SCORE as thousandths.  s[0..len) must be the whole
 * number.  Returns 0, or -1 when it is not a valid SCORE.
 */
int rules_parse_score(const char *s, size_t len, int64_t *out);

/* rules_format_score - "7.5", "-2.0", "0.0": one decimal, rounded half
 * away from zero.  buf of at least 24 octets. */
void rules_format_score(int64_t score, char *buf, size_t size);

/* rules_where_name - "header", "body", ... */
const char *rules_where_name(enum rule_where w);

/* A matcher: one match data, match context (limits) and JIT stack, reused
 * for every match (single-threaded use only). */
struct rules_matcher;

struct rules_matcher *rules_matcher_new(unsigned long match_limit,
    unsigned long depth_limit);
void rules_matcher_free(struct rules_matcher *m);

/* rules_match results besides 1 (match) and 0 (no match) */
#define RULES_LIMIT (-1)		/* a match, depth, heap or JIT stack limit */
#define RULES_ERROR (-2)		/* any other matching error */

/*
 * rules_match - run rule r over subject[0..len) with PCRE2 match options
 * (PCRE2_NOTBOL, PCRE2_NOTEOL).  Returns 1, 0, RULES_LIMIT or RULES_ERROR;
 * *pcre_rc (may be NULL) gets PCRE2's own code for the last two.
 */
int rules_match(struct rules_matcher *m, const struct rule *r,
    const void *subject, size_t len, uint32_t options, int *pcre_rc);

#endif
