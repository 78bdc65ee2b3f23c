/*
 * fuzz_spam_rules.c - libFuzzer target for the spamfilter rules parser
 *
 * The input is a rules file.  It is parsed from memory (JIT on or off,
 * chosen by the first byte's low bit); a failure must leave no rules and a
 * one-line, printable "fuzz.rules:..." message; a success must give
 * consistent rules (labels, WHERE indexes, scores that survive a
 * format/parse round trip) whose regexes then run, under tight PCRE2
 * limits, over the input itself as the subject, with and without
 * NOTBOL/NOTEOL.  The same rules are then compiled for Hyperscan
 * (rules_hs.c) and the input scanned once per WHERE: a rule Hyperscan
 * takes exactly must answer as PCRE2 does on the input, and one it only
 * prefilters must be reported wherever PCRE2 matches (differential
 * fuzzing of the two engines; PCRE2 limits excepted).  The rules modules
 * are compiled in directly:
 *
 *	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *	    -Isdk -I/usr/include/hs tests/fuzz/fuzz_spam_rules.c \
 *	    sdk/helpers/lists.c -lpcre2-8 -lhs -lstdc++ -lm -o fuzz_spam_rules
 *	./fuzz_spam_rules -max_total_time=120 tests/fuzz/corpus/fuzz_spam_rules
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/spamfilter/rules.c"
#include "../../plugins/spamfilter/rules_hs.c"

#define CHECK(c) do { if (!(c)) abort(); } while (0)
#define MATCH_RULES_MAX 16	/* rules run per input (speed) */

static struct rules_matcher *matcher;

/* check_error - one printable line starting with the file name */
static void
check_error(const struct rules *r, const char *err)
{
	size_t i, n = strlen(err);

	CHECK(r == NULL);
	CHECK(n > 0 && n < RULES_ERR_MAX);
	CHECK(strncmp(err, "fuzz.rules:", 11) == 0);
	for (i = 0; i < n; i++)
		CHECK((unsigned char)err[i] >= 0x20 && (unsigned char)err[i] < 0x7f);
}

/* check_rules - invariants of a parsed rule set */
static void
check_rules(const struct rules *r, unsigned lines)
{
	size_t i, w, k, total = 0, jit = 0;
	char buf[32];
	int64_t back;

	for (w = 0; w < RULE_WHERE_COUNT; w++) {
		total += r->count[w];
		for (k = 0; k < r->count[w]; k++) {
			CHECK(r->idx[w][k] < r->n);
			CHECK(r->v[r->idx[w][k]].where == (enum rule_where)w);
			CHECK(k == 0 || r->idx[w][k] > r->idx[w][k - 1]);
		}
	}
	CHECK(total == r->n);
	for (i = 0; i < r->n; i++) {
		const struct rule *x = &r->v[i];

		CHECK(x->re != NULL && x->pattern != NULL && x->pattern[0] != '\0');
		CHECK(x->label != NULL && x->label[0] != '\0');
		CHECK(strlen(x->label) <= RULES_NAME_MAX);
		CHECK(x->line >= 1 && x->line <= lines);
		CHECK(i == 0 || x->line > r->v[i - 1].line);
		CHECK((x->where == RULE_HEADER) == (x->header != NULL));
		if (x->header != NULL)
			CHECK(strlen(x->header) == x->header_len && x->header_len > 0);
		CHECK(x->score >= -(int64_t)RULES_SCORE_MAX * 1000 &&
		    x->score <= (int64_t)RULES_SCORE_MAX * 1000);
		rules_format_score(x->score, buf, sizeof(buf));
		CHECK(rules_parse_score(buf, strlen(buf), &back) == 0);
		CHECK(back - x->score <= 50 && x->score - back <= 50);
		jit += x->jit != 0;
	}
	CHECK(jit == r->njit);
}

static int
note_hit(size_t rule, void *arg)
{
	unsigned char *bits = arg;

	bits[rule >> 3] |= (unsigned char)(1u << (rule & 7));
	return 0;
}

/* check_hs - Hyperscan against PCRE2 on the input as the subject */
static void
check_hs(const struct rules *r, const uint8_t *data, size_t size)
{
	struct rules_hs *h;
	unsigned char *bits;
	char err[RULES_ERR_MAX];
	size_t w, k;

	if (rules_hs_build(r, &h, err, sizeof(err)) < 0)
		return;			/* out of memory: nothing to compare */
	bits = calloc(1, r->n / 8 + 1);
	CHECK(bits != NULL);
	for (w = 0; w < RULE_WHERE_COUNT; w++) {
		int bad_utf = 0, rc;

		rc = rules_hs_scan(h, w, data, size, note_hit, bits, &bad_utf);
		CHECK(rc == 0 || rc == -1);
		for (k = 0; rc == 0 && k < r->count[w] && k < MATCH_RULES_MAX; k++) {
			size_t i = r->idx[w][k];
			int hs = (bits[i >> 3] >> (i & 7)) & 1, pc;

			if (h->mode[i] == RULES_HS_PCRE ||
			    ((r->v[i].flags & RULE_F_U) && bad_utf))
				continue;
			pc = rules_match(matcher, &r->v[i], data, size, 0, NULL);
			if (pc < 0)
				continue;	/* PCRE2 gave up */
			CHECK(!pc || hs);	/* no match lost */
			CHECK(h->mode[i] != RULES_HS_EXACT || pc == hs);
		}
	}
	free(bits);
	rules_hs_free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t opts[] = { 0, PCRE2_NOTBOL, PCRE2_NOTEOL };
	char err[RULES_ERR_MAX];
	struct rules *r = NULL;
	unsigned lines = 1;
	size_t i, k;
	int rc;

	if (matcher == NULL) {
		matcher = rules_matcher_new(20000, 2000);
		CHECK(matcher != NULL);
	}
	for (i = 0; i < size; i++)
		lines += data[i] == '\n';
	rc = rules_parse((const char *)data, size, "fuzz.rules",
	    size > 0 && (data[0] & 1) ? 0 : RULES_NO_JIT, &r, err, sizeof(err));
	if (rc < 0) {
		check_error(r, err);
		return 0;
	}
	CHECK(rc == 0 && r != NULL && err[0] == '\0');
	check_rules(r, lines);
	for (i = 0; i < r->n && i < MATCH_RULES_MAX; i++)
		for (k = 0; k < 3; k++) {
			rc = rules_match(matcher, &r->v[i], data, size, opts[k], NULL);
			CHECK(rc == 1 || rc == 0 || rc == RULES_LIMIT ||
			    rc == RULES_ERROR);
		}
	check_hs(r, data, size);
	rules_free(r);
	return 0;
}
