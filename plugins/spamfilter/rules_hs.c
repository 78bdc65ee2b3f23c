/*
 * rules_hs.c - all the rules of a WHERE class in one Hyperscan pass
 *
 * See rules_hs.h.  Pure: Hyperscan, rules.h and libc only, so that the
 * unit tests and the micro-benchmark can compile it in directly.
 */
#include <hs.h>		/* also tells the build to link libhs */

#include "rules_hs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* hs_flags - the Hyperscan flags of a rule's PCRE2 flags */
static unsigned
hs_flags(const struct rule *r)
{
	/* One report per rule and subject is all a rule that counts once
	 * needs; empty matches count (PCRE2 reports /^$/ on an empty line). */
	unsigned f = HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY;

	if (r->flags & RULE_F_I)
		f |= HS_FLAG_CASELESS;
	if (r->flags & RULE_F_M)
		f |= HS_FLAG_MULTILINE;
	if (r->flags & RULE_F_S)
		f |= HS_FLAG_DOTALL;
	if (r->flags & RULE_F_U)
		f |= HS_FLAG_UTF8 | HS_FLAG_UCP;
	return f;
}

/* hs_pattern - the pattern text Hyperscan gets (x as an inline option) */
static char *
hs_pattern(const struct rule *r)
{
	size_t n = strlen(r->pattern);
	char *p = malloc(n + 5);

	if (p == NULL)
		return NULL;
	if (r->flags & RULE_F_X) {
		memcpy(p, "(?x)", 4);
		memcpy(p + 4, r->pattern, n + 1);
	} else
		memcpy(p, r->pattern, n + 1);
	return p;
}

/* compiles_alone - whether Hyperscan takes the pattern with flags f */
static int
compiles_alone(const char *pat, unsigned f)
{
	hs_database_t *db = NULL;
	hs_compile_error_t *ce = NULL;
	hs_error_t rc = hs_compile(pat, f, HS_MODE_BLOCK, NULL, &db, &ce);

	hs_free_compile_error(ce);
	hs_free_database(db);
	return rc == HS_SUCCESS;
}

/*
 * classify - a rule's mode: exact if Hyperscan takes it alone, prefilter
 * if it takes it so, else PCRE2 only.  Returns the mode, -1 out of memory.
 */
static int
classify(const struct rule *r)
{
	char *pat = hs_pattern(r);
	unsigned f = hs_flags(r);
	int mode;

	if (pat == NULL)
		return -1;
	if (compiles_alone(pat, f))
		mode = RULES_HS_EXACT;
	else if (compiles_alone(pat, f | HS_FLAG_PREFILTER))
		mode = RULES_HS_PREFILTER;
	else
		mode = RULES_HS_PCRE;
	free(pat);
	return mode;
}

/* A set of rules for one hs_compile_multi call. */
struct set {
	char **pat;
	unsigned *flags, *ids;
	size_t n;
};

static void
set_free(struct set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->pat[i]);
	free(s->pat);
	free(s->flags);
	free(s->ids);
}

/*
 * compile_set - one database of the Hyperscan rules of idx[0..n), the
 * u rules (utf) or the others; *db NULL when there are none, or when
 * Hyperscan refuses the set (its rules are then made RULES_HS_PCRE).
 * Returns 0, -1 out of memory (err set).
 */
static int
compile_set(const struct rules *r, struct rules_hs *h, const size_t *idx,
    size_t n, int utf, hs_database_t **db, char *err, size_t errlen)
{
	struct set s = { 0 };
	hs_compile_error_t *ce = NULL;
	hs_error_t rc;
	int ret = -1;

	*db = NULL;
	if (n == 0)
		return 0;
	s.pat = calloc(n, sizeof(*s.pat));
	s.flags = calloc(n, sizeof(*s.flags));
	s.ids = calloc(n, sizeof(*s.ids));
	if (s.pat == NULL || s.flags == NULL || s.ids == NULL)
		goto nomem;
	for (size_t k = 0; k < n; k++) {
		const struct rule *ru = &r->v[idx[k]];

		if (h->mode[idx[k]] == RULES_HS_PCRE ||
		    !(ru->flags & RULE_F_U) != !utf)
			continue;
		if ((s.pat[s.n] = hs_pattern(ru)) == NULL)
			goto nomem;
		s.flags[s.n] = hs_flags(ru) | (h->mode[idx[k]] ==
		    RULES_HS_PREFILTER ? HS_FLAG_PREFILTER : 0);
		s.ids[s.n++] = (unsigned)idx[k];
	}
	if (s.n == 0) {
		ret = 0;
		goto out;
	}
	rc = hs_compile_multi((const char *const *)s.pat, s.flags, s.ids,
	    (unsigned)s.n, HS_MODE_BLOCK, NULL, db, &ce);
	if (rc != HS_SUCCESS) {
		/* Each compiled alone, so a limit of the whole set: these
		 * rules stay on the PCRE2 path. */
		hs_free_compile_error(ce);
		*db = NULL;
		for (size_t k = 0; k < s.n; k++) {
			if (h->mode[s.ids[k]] == RULES_HS_EXACT)
				h->nexact--;
			else
				h->npre--;
			h->mode[s.ids[k]] = RULES_HS_PCRE;
			h->npcre++;
		}
	}
	ret = 0;
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
out:
	set_free(&s);
	return ret;
}

/* collect - the rules of idx[0..n) of mode what (-1: u rules in a
 * database), as a new array */
static int
collect(const struct rules *r, const struct rules_hs *h, const size_t *idx,
    size_t n, int what, size_t **out, size_t *nout)
{
	size_t k, m = 0;

	*out = NULL;
	*nout = 0;
	if (n == 0)
		return 0;
	if ((*out = malloc(n * sizeof(**out))) == NULL)
		return -1;
	for (k = 0; k < n; k++) {
		int mode = h->mode[idx[k]];
		int u = (r->v[idx[k]].flags & RULE_F_U) != 0;

		if ((what == RULES_HS_PCRE && mode == RULES_HS_PCRE) ||
		    (what == RULES_HS_PREFILTER && mode == RULES_HS_PREFILTER) ||
		    (what == -1 && u && mode != RULES_HS_PCRE))
			(*out)[m++] = idx[k];
	}
	*nout = m;
	return 0;
}

void
rules_hs_free(struct rules_hs *h)
{
	if (h == NULL)
		return;
	for (size_t w = 0; w < RULE_WHERE_COUNT; w++) {
		hs_free_database(h->c[w].db);
		hs_free_database(h->c[w].db_utf);
		hs_free_database(h->c[w].screen);
		free(h->c[w].pcre);
		free(h->c[w].pre);
		free(h->c[w].utf);
	}
	hs_free_scratch(h->scratch);
	free(h->mode);
	free(h);
}

/*
 * screenable - whether a body rule keeps its per-line matches in a scan
 * of many lines with HS_FLAG_MULTILINE: no u (the lines need not all be
 * valid UTF-8), no end-of-subject assertion ('$', even escaped: kept
 * simple), no \A \z \Z \G, no inline option setting "(?i)" "(?-m)"...
 */
static int
screenable(const struct rule *r)
{
	const char *p = r->pattern;

	if (r->flags & RULE_F_U)
		return 0;
	for (; *p != '\0'; p++) {
		if (*p == '$')
			return 0;
		if (p[0] == '\\' && p[1] != '\0') {
			if (strchr("AzZG", p[1]) != NULL)
				return 0;
			p++;
		} else if (p[0] == '(' && p[1] == '?' && p[2] != '\0' &&
		    strchr("=!<:>#", p[2]) == NULL)
			return 0;
		else if (p[0] == '(' && p[1] == '?' && p[2] == '<' &&
		    p[3] != '=' && p[3] != '!')
			return 0;	/* (?<name>: kept simple */
	}
	return 1;
}

/* build_screen - the body class's screen database, when all its
 * Hyperscan rules are screenable */
static int
build_screen(const struct rules *r, struct rules_hs *h, char *err,
    size_t errlen)
{
	const size_t *idx = r->idx[RULE_BODY];
	size_t k, n = r->count[RULE_BODY];
	struct set s = { 0 };
	hs_compile_error_t *ce = NULL;
	hs_database_t *db = NULL;
	int ret = -1;

	for (k = 0; k < n; k++)
		if (h->mode[idx[k]] != RULES_HS_PCRE && !screenable(&r->v[idx[k]]))
			return 0;
	if (n == 0 || h->c[RULE_BODY].db == NULL)
		return 0;
	s.pat = calloc(n, sizeof(*s.pat));
	s.flags = calloc(n, sizeof(*s.flags));
	s.ids = calloc(n, sizeof(*s.ids));
	if (s.pat == NULL || s.flags == NULL || s.ids == NULL)
		goto nomem;
	for (k = 0; k < n; k++) {
		const struct rule *ru = &r->v[idx[k]];

		if (h->mode[idx[k]] == RULES_HS_PCRE)
			continue;
		if ((s.pat[s.n] = hs_pattern(ru)) == NULL)
			goto nomem;
		s.flags[s.n] = (hs_flags(ru) & ~(unsigned)HS_FLAG_SINGLEMATCH) |
		    HS_FLAG_MULTILINE | (h->mode[idx[k]] == RULES_HS_PREFILTER ?
		    HS_FLAG_PREFILTER : 0);
		s.ids[s.n++] = (unsigned)idx[k];
	}
	/* A set Hyperscan refuses only means no screen. */
	if (hs_compile_multi((const char *const *)s.pat, s.flags, s.ids,
	    (unsigned)s.n, HS_MODE_BLOCK, NULL, &db, &ce) == HS_SUCCESS) {
		hs_scratch_t *sc = h->scratch;

		if (hs_alloc_scratch(db, &sc) != HS_SUCCESS) {
			hs_free_database(db);
			goto nomem;
		}
		h->scratch = sc;
		h->c[RULE_BODY].screen = db;
	}
	hs_free_compile_error(ce);
	ret = 0;
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
out:
	set_free(&s);
	return ret;
}

/* build_class - databases, lists and scratch of class w */
static int
build_class(const struct rules *r, struct rules_hs *h, size_t w, char *err,
    size_t errlen)
{
	struct rules_hs_class *c = &h->c[w];
	hs_database_t *db;
	hs_scratch_t *s;

	if (compile_set(r, h, r->idx[w], r->count[w], 0, &db, err, errlen) < 0)
		return -1;
	c->db = db;
	if (compile_set(r, h, r->idx[w], r->count[w], 1, &db, err, errlen) < 0)
		return -1;
	c->db_utf = db;
	if (collect(r, h, r->idx[w], r->count[w], RULES_HS_PCRE, &c->pcre,
	    &c->npcre) < 0 || collect(r, h, r->idx[w], r->count[w],
	    RULES_HS_PREFILTER, &c->pre, &c->npre) < 0 ||
	    collect(r, h, r->idx[w], r->count[w], -1, &c->utf, &c->nutf) < 0)
		goto nomem;
	for (int u = 0; u < 2; u++) {
		db = u ? c->db_utf : c->db;
		s = h->scratch;
		if (db == NULL)
			continue;
		if (hs_alloc_scratch(db, &s) != HS_SUCCESS)
			goto nomem;
		h->scratch = s;
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

static int
count_hit(unsigned id, unsigned long long from, unsigned long long to,
    unsigned flags, void *ctx)
{
	(void)id;
	(void)from;
	(void)to;
	(void)flags;
	++*(int *)ctx;
	return 0;
}

/*
 * selftest - whether the library finds what the differential test found
 * Vectorscan 5.4.9 (Debian 12's libvectorscan5) missing: a match that
 * starts with a one-octet literal past the 64th octet of the subject.
 * Intel Hyperscan 5.4.0 passes.  Returns 0, or -1 (err set).
 */
static int
selftest(char *err, size_t errlen)
{
	static const char *const pats[] = { ">[^<]*", "-" };
	static const unsigned flags[] = { 0, HS_FLAG_SINGLEMATCH };
	static const char subj[] = "abwire transferverify your accountverify "
	    "your accountb1@12345678-viagra> ";
	hs_database_t *db = NULL;
	hs_compile_error_t *ce = NULL;
	hs_scratch_t *s = NULL;
	int n = 0, ok = 0;
	unsigned ids[] = { 0, 1 };

	if (hs_compile_multi(pats, flags, ids, 2, HS_MODE_BLOCK, NULL, &db,
	    &ce) == HS_SUCCESS && hs_alloc_scratch(db, &s) == HS_SUCCESS &&
	    hs_scan(db, subj, sizeof(subj) - 1, 0, s, count_hit, &n) ==
	    HS_SUCCESS)
		ok = n >= 2;
	hs_free_compile_error(ce);
	hs_free_scratch(s);
	hs_free_database(db);
	if (!ok)
		snprintf(err, errlen, "this Hyperscan (libhs %s) fails its self "
		    "test (misses matches, as Vectorscan 5.4.9 does): use "
		    "Intel Hyperscan (Debian libhyperscan5) or engine=pcre2",
		    hs_version());
	return ok ? 0 : -1;
}

int
rules_hs_build(const struct rules *r, struct rules_hs **out, char *err,
    size_t errlen)
{
	struct rules_hs *h = calloc(1, sizeof(*h));
	size_t i, w;
	int mode;

	*out = NULL;
	if (selftest(err, errlen) < 0)
		goto fail;
	if (h == NULL || (h->mode = malloc(r->n + 1)) == NULL)
		goto nomem;
	for (i = 0; i < r->n; i++) {
		if ((mode = classify(&r->v[i])) < 0)
			goto nomem;
		h->mode[i] = (unsigned char)mode;
		if (mode == RULES_HS_EXACT)
			h->nexact++;
		else if (mode == RULES_HS_PREFILTER)
			h->npre++;
		else
			h->npcre++;
	}
	for (w = 0; w < RULE_WHERE_COUNT; w++)
		if (build_class(r, h, w, err, errlen) < 0)
			goto fail;
	if (build_screen(r, h, err, errlen) < 0)
		goto fail;
	*out = h;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	rules_hs_free(h);
	return -1;
}

int
rules_hs_utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k, len;
		unsigned long cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			len = 2;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			len = 3;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			len = 4;
			cp = c & 0x07;
		} else
			return 0;
		if (n - i < len)
			return 0;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		/* overlong, surrogate, beyond U+10FFFF */
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
			return 0;
		i += len;
	}
	return 1;
}

/* Passes the caller's callback through Hyperscan's. */
struct scan_arg {
	rules_hs_hit_fn *fn;
	void *arg;
};

static int
on_event(unsigned id, unsigned long long from, unsigned long long to,
    unsigned flags, void *ctx)
{
	struct scan_arg *a = ctx;

	(void)from;
	(void)to;
	(void)flags;
	return a->fn(id, a->arg);
}

int
rules_hs_scan(struct rules_hs *h, enum rule_where w, const void *subject,
    size_t len, rules_hs_hit_fn *on_hit, void *arg, int *utf_invalid)
{
	const struct rules_hs_class *c = &h->c[w];
	struct scan_arg a = { on_hit, arg };
	hs_error_t rc;

	if (utf_invalid != NULL)
		*utf_invalid = 0;
	if (subject == NULL)
		subject = "";
	if (len > 0xffffffffu)
		return -1;		/* hs_scan takes an unsigned length */
	if (c->db != NULL) {
		rc = hs_scan(c->db, subject, (unsigned)len, 0, h->scratch,
		    on_event, &a);
		if (rc == HS_SCAN_TERMINATED)
			return 1;
		if (rc != HS_SUCCESS)
			return -1;
	}
	if (c->db_utf != NULL) {
		if (!rules_hs_utf8_valid(subject, len)) {
			if (utf_invalid != NULL)
				*utf_invalid = 1;
			return 0;
		}
		rc = hs_scan(c->db_utf, subject, (unsigned)len, 0, h->scratch,
		    on_event, &a);
		if (rc == HS_SCAN_TERMINATED)
			return 1;
		if (rc != HS_SUCCESS)
			return -1;
	}
	return 0;
}

/* Passes the caller's callback, with the end offset, through Hyperscan's. */
struct screen_arg {
	rules_hs_at_fn *fn;
	void *arg;
};

static int
on_screen(unsigned id, unsigned long long from, unsigned long long to,
    unsigned flags, void *ctx)
{
	struct screen_arg *a = ctx;

	(void)from;
	(void)flags;
	return a->fn(id, to, a->arg);
}

int
rules_hs_screen(struct rules_hs *h, const void *buf, size_t len,
    rules_hs_at_fn *on_at, void *arg)
{
	struct screen_arg a = { on_at, arg };
	hs_error_t rc;

	if (h->c[RULE_BODY].screen == NULL || len > 0xffffffffu)
		return -1;
	rc = hs_scan(h->c[RULE_BODY].screen, buf, (unsigned)len, 0, h->scratch,
	    on_screen, &a);
	if (rc == HS_SCAN_TERMINATED)
		return 1;
	return rc == HS_SUCCESS ? 0 : -1;
}
