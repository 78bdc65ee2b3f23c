/*
 * test_spamfilter_diff.c - differential test: spamfilter's PCRE2 path
 * against its Hyperscan path, which must find the same matches and
 * scores.
 *
 * Two levels:
 *  - engine: every rule of a rules set on every subject of a corpus,
 *    whole and as a piece of a long line (PCRE2_NOTBOL/NOTEOL): PCRE2's
 *    answer against what the plugin decides from one Hyperscan scan
 *    (rules_hs.c, compiled in, with the plugin's decision rule);
 *  - plugin: the same messages through two harnesses, spamfilter
 *    engine=pcre2 and engine=hs (each followed by sink.so): the same
 *    final code, X-Spam-Score and X-Spam-Rules, except for a body rule
 *    on which PCRE2 hits its match limit (counted as no match): Hyperscan
 *    has no such limit and finds the match (checked, not assumed).
 * Rules sets: default.rules, the fuzz corpus's rules files that parse,
 * and rules from a seeded generator (literals, classes, alternations,
 * anchors, quantifiers, the five flags, back-references, look-arounds,
 * atomic groups), so each run checks the same cases.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sh_harness.h"

#include "../../../plugins/spamfilter/rules.c"
#include "../../../plugins/spamfilter/rules_hs.c"

#define SPAMFILTER_SO SMTPHOOK_BUILD_DIR "/plugins/spamfilter.so"
#define SINK_SO SMTPHOOK_BUILD_DIR "/plugins/sink.so"
#define DEFAULT_RULES SMTPHOOK_SOURCE_DIR "/plugins/spamfilter/default.rules"
#define CORPUS SMTPHOOK_SOURCE_DIR "/tests/fuzz/corpus/fuzz_spam_rules"

#define GEN_SEED 20261204u
#define GEN_FILES 12		/* random rules files */
#define GEN_RULES 40		/* rules per random file */
#define SUBJECTS 600		/* engine-level subjects */
#define MESSAGES 40		/* plugin-level random messages per file */

/* ---- a seeded generator (no global state: passed around) ---- */

struct rng {
	uint64_t s;
};

static unsigned
rnd(struct rng *g, unsigned n)
{
	g->s = g->s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)((g->s >> 33) % n);
}

/* A bounded string builder. */
struct str {
	char *p;
	size_t len, cap;
};

static void
put(struct str *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		cr_assert_not_null(b->p);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
puts_(struct str *b, const char *s)
{
	put(b, s, strlen(s));
}

#define PICK(g, a) ((a)[rnd((g), sizeof(a) / sizeof((a)[0]))])

static const char *const lits[] = {
	"a", "b", "A", "B", "0", "1", " ", "-", "\\.", "<", ">", "@", "_",
	"ab", "ba", "viagra", "\xc3\xa9", "x", "\\/", "\\$", "\\t",
};
static const char *const classes[] = {
	"[ab]", "[^a]", "[a-c]", "[A-Z]", "\\d", "\\w", "\\s", "\\W", "\\S",
	"\\D", ".", "[[:alpha:]]", "\\x41", "[^<>@\\s]", "[\\x80-\\xff]",
	"\\h",
};
static const char *const anchors[] = {
	"^", "$", "\\b", "\\B", "\\A", "\\z", "\\Z",
};
static const char *const special[] = {
	"(a|b)\\1", "([ab])x?\\1", "(?=a)", "(?!b)", "(?<=a)", "(?<!b)",
	"(?>a+)", "a++", "(?=.*[A-Z]{2})", "(?i)a", "(?s:.)", "(?m)^a",
};
static const char *const quants[] = {
	"", "", "", "?", "*", "+", "{1,3}", "{2}", "*?", "+?", "{0,2}",
};

static void gen_alt(struct rng *g, struct str *b, int depth);

/* gen_item - one atom or group, maybe quantified */
static void
gen_item(struct rng *g, struct str *b, int depth)
{
	unsigned k = rnd(g, 100);

	if (k < 35)
		puts_(b, PICK(g, lits));
	else if (k < 60)
		puts_(b, PICK(g, classes));
	else if (k < 72) {
		puts_(b, PICK(g, anchors));
		return;			/* no quantified assertions */
	} else if (k < 80 && depth == 0) {
		/* Not inside a repeated group: PCRE2 on 20 KiB lines would
		 * take minutes. */
		puts_(b, PICK(g, special));
		return;
	} else if (depth < 2) {
		puts_(b, rnd(g, 2) ? "(?:" : "(");
		gen_alt(g, b, depth + 1);
		puts_(b, ")");
	} else
		puts_(b, PICK(g, lits));
	puts_(b, PICK(g, quants));
}

static void
gen_seq(struct rng *g, struct str *b, int depth)
{
	unsigned n = 1 + rnd(g, 4);

	for (unsigned i = 0; i < n; i++)
		gen_item(g, b, depth);
}

static void
gen_alt(struct rng *g, struct str *b, int depth)
{
	gen_seq(g, b, depth);
	while (rnd(g, 4) == 0) {
		puts_(b, "|");
		gen_seq(g, b, depth);
	}
}

static const char *const wheres[] = {
	"body", "body", "body", "body", "header:Subject", "header:From",
	"header:Message-ID", "from", "rcpt", "helo", "ip",
};

/* gen_rule - one rules line that parses (retried until it does); with
 * screen, a body rule must also be one the body screen can take */
static void
gen_rule(struct rng *g, struct str *out, unsigned n, int screen)
{
	char flags[8], head[64];
	struct str b = { 0 };
	struct rules *r;

	for (;;) {
		size_t f = 0;

		b.len = 0;
		snprintf(head, sizeof(head), "%d.%d %s /", (int)rnd(g, 5) - 1,
		    (int)rnd(g, 10), PICK(g, wheres));
		puts_(&b, head);
		gen_alt(g, &b, 0);
		if (rnd(g, 4) == 0)
			flags[f++] = 'i';
		if (rnd(g, 5) == 0)
			flags[f++] = 'm';
		if (rnd(g, 5) == 0)
			flags[f++] = 's';
		if (rnd(g, 6) == 0)
			flags[f++] = 'u';
		if (rnd(g, 10) == 0)
			flags[f++] = 'x';
		flags[f] = '\0';
		snprintf(head, sizeof(head), "/%s R%u\n", flags, n);
		puts_(&b, head);
		if (rules_parse(b.p, b.len, "gen", 0, &r, NULL, 0) == 0) {
			int ok = !screen || r->v[0].where != RULE_BODY ||
			    screenable(&r->v[0]);

			rules_free(r);
			if (ok)
				break;
		}
	}
	put(out, b.p, b.len);
	free(b.p);
}

static char *
gen_rules(struct rng *g, int screen)
{
	struct str b = { 0 };

	for (unsigned i = 0; i < GEN_RULES; i++)
		gen_rule(g, &b, i, screen);
	return b.p;
}

static const char *const pieces[] = {
	"a", "b", "A", "B", "0", "1", " ", "-", ".", "<", ">", "@", "_", "x",
	"viagra", "\xc3\xa9", "\xff", "\xc3", "\t", "\r", "VIAGRA", "/", "$",
	"ab", "aa", "ba", "12345678", "<a@b>", "http://1.2.3.4",
	"wire transfer", "inheritance", "verify your account", "!!!",
};

/* gen_text - random text of up to max pieces; nl: may hold "\n"
 * (else no bare CR or LF either: the core's bare-LF policy is not what
 * this test is about) */
static void
gen_text(struct rng *g, struct str *b, unsigned max, int nl)
{
	unsigned n = rnd(g, max + 1);

	for (unsigned i = 0; i < n; i++) {
		const char *p = PICK(g, pieces);

		if (nl && rnd(g, 12) == 0)
			puts_(b, "\n");
		else if (nl || strcmp(p, "\r") != 0)
			puts_(b, p);
	}
}

/* ---- rules sets ---- */

struct rset {
	char *name;
	char *text;
};

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

/* rule_sets - default.rules, the corpus files that parse (and hold no
 * NUL), GEN_FILES generated ones; *n of them */
static struct rset *
rule_sets(size_t *n)
{
	struct rset *v = calloc(64 + 2 * GEN_FILES, sizeof(*v));
	struct rng g = { GEN_SEED };
	struct dirent *d;
	DIR *dir;
	size_t len;
	char path[512];

	cr_assert_not_null(v);
	*n = 0;
	v[*n].name = strdup("default.rules");
	v[(*n)++].text = slurp(DEFAULT_RULES, &len);
	cr_assert_not_null(dir = opendir(CORPUS));
	while ((d = readdir(dir)) != NULL && *n < 64) {
		struct rules *r;
		char *t;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", CORPUS, d->d_name);
		t = slurp(path, &len);
		if (strlen(t) != len || rules_parse(t, len, "c", 0, &r, NULL, 0) < 0) {
			free(t);
			continue;
		}
		rules_free(r);
		v[*n].name = strdup(d->d_name);
		v[(*n)++].text = t;
	}
	closedir(dir);
	/* Half of them with body rules the body screen takes, so that the
	 * screened path (a chunk's lines in one scan) is used. */
	for (int i = 0; i < 2 * GEN_FILES; i++) {
		snprintf(path, sizeof(path), "generated-%d%s", i,
		    i >= GEN_FILES ? "-screened" : "");
		v[*n].name = strdup(path);
		v[(*n)++].text = gen_rules(&g, i >= GEN_FILES);
	}
	return v;
}

static void
rule_sets_free(struct rset *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].text);
	}
	free(v);
}

/* ---- engine level ---- */

struct rep {
	unsigned char *bits;
};

static int
note(size_t rule, void *arg)
{
	struct rep *r = arg;

	r->bits[rule >> 3] |= (unsigned char)(1u << (rule & 7));
	return 0;
}

/*
 * decide - the plugin's decision (spamfilter.c on_hit/match_class) for
 * rule i from a Hyperscan scan that reported rep, on a subject of the
 * given NOTBOL/NOTEOL options.
 */
static int
decide(const struct rules_hs *h, struct rules_matcher *m, const struct rule *ru,
    size_t i, const unsigned char *rep, int bad_utf, int scan_rc,
    const char *s, size_t len, uint32_t opts)
{
	int mode = h->mode[i];

	if (scan_rc < 0 || mode == RULES_HS_PCRE ||
	    ((ru->flags & RULE_F_U) && bad_utf) ||
	    (mode == RULES_HS_PREFILTER && opts != 0))
		return rules_match(m, ru, s, len, opts, NULL);
	if (!((rep[i >> 3] >> (i & 7)) & 1))
		return 0;
	if (mode == RULES_HS_EXACT && opts == 0)
		return 1;
	return rules_match(m, ru, s, len, opts, NULL);
}

static const char *
esc(const char *s, size_t n)
{
	static char out[512];
	size_t o = 0;

	for (size_t i = 0; i < n && o + 5 < sizeof(out); i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

/* Screen reports: end offsets per rule. */
struct ends {
	size_t nrules;
	unsigned char *at;		/* at[rule * blen + end] */
	size_t blen;
};

static int
note_end(size_t rule, unsigned long long end, void *arg)
{
	struct ends *e = arg;

	if (end < e->blen)
		e->at[rule * e->blen + end] = 1;
	return 0;
}

/*
 * screen_check - the body screen's promise: a body rule that matches a
 * line alone (whole, or as a piece with NOTBOL/NOTEOL) has a reported end
 * within that line (from its first octet to its "\n") when the lines are
 * scanned together, CRLF-ended, as the plugin does.
 */
static void
screen_check(const struct rules *r, struct rules_hs *h, struct rules_matcher *m,
    const struct str *subj, const char *name, size_t *found)
{
	for (size_t k0 = 0; k0 + 20 <= SUBJECTS; k0 += 20) {
		struct str b = { 0 };
		size_t start[21];
		struct ends e;

		puts_(&b, "");
		for (size_t k = 0; k < 20; k++) {
			const struct str *l = &subj[k0 + k];

			start[k] = b.len;
			/* Lines hold no "\n" (the plugin cut them there). */
			for (size_t i = 0; i < l->len; i++)
				if (l->p[i] != '\n')
					put(&b, l->p + i, 1);
			puts_(&b, "\r\n");
		}
		start[20] = b.len;
		e.nrules = r->n;
		e.blen = b.len + 1;
		e.at = calloc(r->n, e.blen);
		cr_assert_not_null(e.at);
		cr_assert_eq(rules_hs_screen(h, b.p, b.len, note_end, &e), 0);
		for (size_t k = 0; k < 20; k++) {
			size_t ls = start[k], le = start[k + 1] - 1;	/* "\n" */
			size_t len = le - 1 - ls;		/* without CRLF */

			for (size_t j = 0; j < r->count[RULE_BODY]; j++) {
				size_t i = r->idx[RULE_BODY][j], x;
				int want = 0;

				if (h->mode[i] == RULES_HS_PCRE)
					continue;
				for (uint32_t o = 0; o < 4 && !want; o++)
					want = rules_match(m, &r->v[i], b.p + ls,
					    len, (o & 1 ? PCRE2_NOTBOL : 0) |
					    (o & 2 ? PCRE2_NOTEOL : 0), NULL) == 1;
				if (!want)
					continue;
				for (x = ls; x <= le && !e.at[i * e.blen + x]; x++)
					;
				cr_assert_leq(x, le, "%s:%u /%s/ matches line \"%s\" "
				    "but the screen reports no end in it", name,
				    r->v[i].line, r->v[i].pattern, esc(b.p + ls, len));
				++*found;
			}
		}
		free(e.at);
		free(b.p);
	}
}

Test(diff, engine_pcre2_against_hyperscan, .timeout = 240)
{
	static const uint32_t optv[] = { 0, PCRE2_NOTBOL, PCRE2_NOTEOL,
		PCRE2_NOTBOL | PCRE2_NOTEOL };
	struct rng g = { GEN_SEED ^ 0x5a5a };
	struct rules_matcher *m = rules_matcher_new(RULES_MATCH_LIMIT,
	    RULES_DEPTH_LIMIT);
	size_t nsets, nrules = 0, checks = 0, matches = 0, modes[3] = { 0 };
	size_t nscreened = 0, screen_checks = 0;
	struct rset *sets = rule_sets(&nsets);
	struct str *subj = calloc(SUBJECTS, sizeof(*subj));
	char err[RULES_ERR_MAX];

	cr_assert_not_null(m);
	cr_assert_not_null(subj);
	for (size_t k = 0; k < SUBJECTS; k++) {
		puts_(&subj[k], "");
		gen_text(&g, &subj[k], 12, k % 3 == 0);
	}
	for (size_t f = 0; f < nsets; f++) {
		struct rules *r;
		struct rules_hs *h;
		unsigned char *rep;

		cr_assert_eq(rules_parse(sets[f].text, strlen(sets[f].text),
		    sets[f].name, 0, &r, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(rules_hs_build(r, &h, err, sizeof(err)), 0, "%s", err);
		rep = calloc(1, r->n / 8 + 1);
		nrules += r->n;
		for (size_t i = 0; i < r->n; i++)
			modes[h->mode[i]]++;
		for (size_t k = 0; k < SUBJECTS; k++) {
			const char *s = subj[k].p;
			size_t len = subj[k].len;

			memset(rep, 0, r->n / 8 + 1);
			for (size_t w = 0; w < RULE_WHERE_COUNT; w++) {
				struct rep a = { rep };
				int bad_utf = 0, rc;

				rc = rules_hs_scan(h, w, s, len, note, &a, &bad_utf);
				for (size_t j = 0; j < r->count[w]; j++) {
					size_t i = r->idx[w][j];
					const struct rule *ru = &r->v[i];

					for (size_t o = 0; o < 4; o++) {
						int want = rules_match(m, ru, s, len,
						    optv[o], NULL), got;

						if (want < 0)
							continue;	/* PCRE2 gave up */
						got = decide(h, m, ru, i, rep, bad_utf,
						    rc, s, len, optv[o]);
						cr_assert_eq(got, want, "%s:%u /%s/ "
						    "(flags %#x, mode %d) on \"%s\" "
						    "opts %#x: pcre2 %d, hs %d",
						    sets[f].name, ru->line, ru->pattern,
						    ru->flags, h->mode[i], esc(s, len),
						    optv[o], want, got);
						checks++;
						matches += want == 1;
					}
				}
			}
		}
		if (h->c[RULE_BODY].screen != NULL) {
			nscreened++;
			screen_check(r, h, m, subj, sets[f].name, &screen_checks);
		}
		free(rep);
		rules_hs_free(h);
		rules_free(r);
	}
	cr_log_info("engine: screen of %zu sets: %zu line matches found in "
	    "the screen", nscreened, screen_checks);
	cr_assert_gt(nscreened, GEN_FILES / 2);
	cr_log_info("engine: %zu rules (%zu exact, %zu prefilter, %zu PCRE2 "
	    "only) in %zu sets x %d subjects x 4 options: %zu checks, %zu "
	    "matches", nrules, modes[0], modes[1], modes[2], nsets, SUBJECTS,
	    checks, matches);
	cr_assert_gt(matches, checks / 50, "the corpus must match often");
	for (size_t k = 0; k < SUBJECTS; k++)
		free(subj[k].p);
	free(subj);
	rule_sets_free(sets, nsets);
	rules_matcher_free(m);
}

/* ---- plugin level ---- */

static sh_harness *
start(const char *rules_path, const char *engine, const char *ip,
    const char *helo)
{
	sh_harness *h = sh_harness_new();
	char spec[600], cmd[300];

	cr_assert_not_null(h);
	/* No time budget: what it switches off depends on the machine's
	 * speed, and the paths take different times. */
	snprintf(spec, sizeof(spec), SPAMFILTER_SO ":rules=%s,engine=%s,"
	    "body_max=0,budget_ms=0", rules_path, engine);
	cr_assert_eq(sh_harness_load(h, spec), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_load(h, SINK_SO), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_start(h), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_connect(h, ip), 220);
	snprintf(cmd, sizeof(cmd), "EHLO %s", helo);
	cr_assert_eq(sh_harness_cmd(h, cmd), 250);
	return h;
}

/* spam_fields - "X-Spam-Score: ...\r\nX-Spam-Rules: ..." of the last
 * message, into out */
static void
spam_fields(sh_harness *h, char *out, size_t size)
{
	const char *t = sh_harness_head(h, NULL), *p, *e;

	cr_assert_not_null(t);
	out[0] = '\0';
	if ((p = strstr(t, "\r\nX-Spam-Score: ")) == NULL)
		return;
	if ((e = strstr(p + 2, "\r\nX-Spam-Rules: ")) == NULL ||
	    (e = strstr(e + 2, "\r\n")) == NULL)
		return;
	snprintf(out, size, "%.*s", (int)(e - p - 2), p + 2);
}

static int
send_one(sh_harness *h, const char *from, const char *rcpt, const char *msg,
    size_t len, size_t chunk)
{
	char line[400];
	int code;

	snprintf(line, sizeof(line), "MAIL FROM:<%s>", from);
	if ((code = sh_harness_cmd(h, line)) != 250)
		return code;
	snprintf(line, sizeof(line), "RCPT TO:<%s>", rcpt);
	if ((code = sh_harness_cmd(h, line)) != 250)
		return code;
	if ((code = sh_harness_cmd(h, "DATA")) != 354)
		return code;
	return sh_harness_body(h, msg, len, chunk);
}

static const char *const samples[] = {
	"From: \"security@bank.example\" <x@phish.test>\r\n"
	"Subject: URGENT ACCOUNT NOTICE!!!\r\n\r\n"
	"Please verify your account at http://203.0.113.5/login\r\n",
	"From: Alice <alice@example.org>\r\nSubject: Minutes of Tuesday's meeting\r\n"
	"Message-ID: <123.456@example.org>\r\n\r\nHi all,\r\n"
	"the minutes are attached.\r\n",
	"Subject: \r\nMessage-ID: broken\r\nTo: undisclosed-recipients:;\r\n\r\n"
	"Buy V1AGRA and cialis now, 100% free!\r\nWire transfer via Western Union "
	"to the beneficiary\r\n",
	"Subject: $$$ replica watches $$$\r\n\r\nact now before it is gone\r\n"
	"confirm your banking details\r\n\r\nlast line without an end",
	"Subject: caf\xc3\xa9 \xff bytes\r\n\r\n\xc3\xa9t\xc3\xa9 \xff\xfe viagra\r\n",
};

/* gen_message - a random header section and body; some lines over the
 * plugin's 8 KiB piece size */
static void
gen_message(struct rng *g, struct str *b)
{
	static const char *const names[] = { "Subject", "From", "To",
		"Message-ID", "X-Other" };
	const char *eol = "\r\n";
	unsigned n = rnd(g, 5);

	for (unsigned i = 0; i < n; i++) {
		puts_(b, PICK(g, names));
		puts_(b, ": ");
		gen_text(g, b, 8, 0);
		puts_(b, "\r\n");
	}
	puts_(b, "\r\n");
	n = rnd(g, 30);
	for (unsigned i = 0; i < n; i++) {
		if (rnd(g, 25) == 0) {
			struct str piece = { 0 };
			unsigned reps = 9000 + rnd(g, 12000);

			puts_(&piece, "");
			gen_text(g, &piece, 6, 0);
			for (size_t k = 0; piece.len > 0 && k < reps / piece.len + 1; k++)
				put(b, piece.p, piece.len);
			free(piece.p);
		} else
			gen_text(g, b, 10, 0);
		puts_(b, eol);
	}
}

/* write_tmp - text into a fresh temporary file (removed by the caller) */
static void
write_tmp(char *path, size_t size, const char *text)
{
	int fd;

	snprintf(path, size, "/tmp/spamfilter-diff-XXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/*
 * gave_up - whether PCRE2 hits a limit with rule ru on some body line (or
 * 8 KiB piece of one) of msg: there the PCRE2 path counts "no match"
 * where Hyperscan, with no limits, decides exactly.
 */
static int
gave_up(struct rules_matcher *m, const struct rule *ru, const char *msg,
    size_t len)
{
	const char *p = strstr(msg, "\r\n\r\n"), *end = msg + len, *nl;

	if (p == NULL || ru->where != RULE_BODY)
		return 0;
	for (p += 4; p < end; p = nl + 1) {
		size_t n, off = 0;

		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		n = (size_t)(nl - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		do {
			size_t k = n - off > 8192 ? 8192 : n - off;
			uint32_t o = (off > 0 ? PCRE2_NOTBOL : 0) |
			    (off + k < n ? PCRE2_NOTEOL : 0);

			if (rules_match(m, ru, p + off, k, o, NULL) == RULES_LIMIT)
				return 1;
			off += k;
		} while (off < n);
	}
	return 0;
}

/* in_list - label is one of the comma-separated X-Spam-Rules in f */
static int
in_list(const char *f, const char *label)
{
	const char *p = strstr(f, "X-Spam-Rules: ");
	size_t n = strlen(label);

	for (p = p != NULL ? p + 14 : ""; *p != '\0'; p++) {
		if (strncmp(p, label, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return 1;
		if ((p = strchr(p, ',')) == NULL)
			break;
	}
	return 0;
}

/* same_or_limited - fa and fb differ only in rules PCRE2 gave up on */
static int
same_or_limited(const char *text, const char *fa, const char *fb,
    const char *msg, size_t len, size_t *limited)
{
	struct rules_matcher *m = rules_matcher_new(RULES_MATCH_LIMIT,
	    RULES_DEPTH_LIMIT);
	struct rules *r;
	int ok = 1;

	if (strcmp(fa, fb) == 0) {
		rules_matcher_free(m);
		return 1;
	}
	cr_assert_eq(rules_parse(text, strlen(text), "x", 0, &r, NULL, 0), 0);
	for (size_t i = 0; i < r->n && ok; i++) {
		const struct rule *ru = &r->v[i];

		if (in_list(fa, ru->label) == in_list(fb, ru->label))
			continue;
		ok = !in_list(fa, ru->label) && gave_up(m, ru, msg, len);
		*limited += ok;
	}
	rules_free(r);
	rules_matcher_free(m);
	return ok;
}

Test(diff, plugin_pcre2_against_hyperscan, .timeout = 240)
{
	static const char *const ips[] = { "192.0.2.7", "127.0.0.1", "::1",
		"2001:db8::1" };
	static const char *const helos[] = { "client.example", "localhost",
		"203.0.113.5", "[192.0.2.1]", "bare" };
	static const char *const senders[] = { "sender@example.net",
		"a12345678b@example.com", "x@b", "" };
	static const size_t chunks[] = { 0, 1, 7, 100, 4096 };
	struct rng g = { GEN_SEED ^ 0xa5a5 };
	size_t nsets, nmsgs = 0, nrules = 0, scored = 0, limited = 0;
	struct rset *sets = rule_sets(&nsets);
	char path[64], fa[1200], fb[1200];

	for (size_t f = 0; f < nsets; f++) {
		const char *ip = PICK(&g, ips), *helo = PICK(&g, helos);
		sh_harness *a, *b;
		struct rules *r;

		cr_assert_eq(rules_parse(sets[f].text, strlen(sets[f].text), "x",
		    0, &r, NULL, 0), 0);
		nrules += r->n;
		rules_free(r);
		write_tmp(path, sizeof(path), sets[f].text);
		a = start(path, "pcre2", ip, helo);
		b = start(path, "hs", ip, helo);
		for (size_t k = 0; k < MESSAGES + sizeof(samples) / sizeof(samples[0]);
		    k++) {
			struct str msg = { 0 };
			const char *from = PICK(&g, senders);
			size_t chunk = PICK(&g, chunks);
			int ca, cb;

			if (k < sizeof(samples) / sizeof(samples[0]))
				puts_(&msg, samples[k]);
			else
				gen_message(&g, &msg);
			if (chunk == 1 && msg.len > 300)
				chunk = 100;	/* speed */
			ca = send_one(a, from, "user@example.org", msg.p, msg.len, chunk);
			cb = send_one(b, from, "user@example.org", msg.p, msg.len, chunk);
			cr_assert_eq(ca, cb, "%s message %zu: codes %d %d",
			    sets[f].name, k, ca, cb);
			spam_fields(a, fa, sizeof(fa));
			spam_fields(b, fb, sizeof(fb));
			cr_assert(same_or_limited(sets[f].text, fa, fb, msg.p,
			    msg.len, &limited), "%s message %zu (\"%s\"): pcre2 "
			    "%s, hs %s", sets[f].name, k, esc(msg.p, msg.len), fa, fb);
			scored += strstr(fa, "Score: 0.0\r\n") == NULL;
			nmsgs++;
			free(msg.p);
		}
		sh_harness_free(a);
		sh_harness_free(b);
		unlink(path);
	}
	cr_log_info("plugin: %zu rules in %zu sets, %zu messages, %zu with a "
	    "non-zero score; %zu rule(s) matched by Hyperscan where PCRE2 hit "
	    "its match limit", nrules, nsets, nmsgs, scored, limited);
	cr_assert_gt(scored, nmsgs / 10);
	rule_sets_free(sets, nsets);
}
