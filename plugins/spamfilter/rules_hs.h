/*
 * rules_hs.h - all the rules of a WHERE class in one Hyperscan pass
 *
 * SYNOPSIS
 *	struct rules_hs *h;
 *
 *	if (rules_hs_build(r, &h, err, sizeof(err)) < 0)
 *		fail(err);
 *	rc = rules_hs_scan(h, RULE_BODY, line, len, on_hit, arg);
 *	...
 *	rules_hs_free(h);
 *
 * DESCRIPTION
 *	Each rule of a rules file is put in one of three modes, per rule,
 *	by compiling it alone first:
 *
 *	RULES_HS_EXACT	Hyperscan takes it as it is: a Hyperscan match on a
 *			whole subject is a PCRE2 match, no confirmation.
 *	RULES_HS_PREFILTER  Hyperscan takes it only in prefilter mode (back-
 *			references, look-arounds ...): a Hyperscan match
 *			means "may match", confirmed with PCRE2 on that
 *			subject; no Hyperscan match means no PCRE2 match.
 *	RULES_HS_PCRE	Hyperscan cannot even prefilter it (atomic groups,
 *			possessive quantifiers, \R, a pattern too big ...):
 *			matched with PCRE2 on every subject, as before.
 *
 *	The EXACT and PREFILTER rules of a class are compiled into one
 *	block-mode database (HS_FLAG_SINGLEMATCH: one report per rule and
 *	subject is all a rule that counts once needs), the u rules into a
 *	second one, scanned only when the subject is valid UTF-8 (Hyperscan
 *	leaves invalid UTF-8 undefined; PCRE2 with PCRE2_MATCH_INVALID_UTF
 *	does not match across it, so such a subject goes to PCRE2 for the
 *	u rules).  Flags: i HS_FLAG_CASELESS, m HS_FLAG_MULTILINE,
 *	s HS_FLAG_DOTALL, u HS_FLAG_UTF8|HS_FLAG_UCP, x "(?x)" in front of
 *	the pattern (a rule Hyperscan then refuses is RULES_HS_PCRE).
 *
 *	One scratch space serves every database: single-threaded use only
 *	(spamfilter's hooks run on the loop thread).
 *
 *	The library must be Intel Hyperscan (Debian libhyperscan-dev):
 *	Vectorscan 5.4.9 (libvectorscan-dev) misses matches, e.g. ">[^<]*"
 *	on a '>' past the 64th octet, which the differential test found;
 *	rules_hs_build runs a self test and fails on such a library.
 */
#ifndef SPAMFILTER_RULES_HS_H
#define SPAMFILTER_RULES_HS_H

#include <stddef.h>

#include "rules.h"

enum rules_hs_mode {
	RULES_HS_EXACT = 0,
	RULES_HS_PREFILTER,
	RULES_HS_PCRE
};

struct rules_hs_class {
	void *db;			/* hs_database_t *: bytes rules; NULL: none */
	void *db_utf;			/* hs_database_t *: u rules; NULL: none */
	size_t *pcre;			/* RULES_HS_PCRE rules (file order) */
	size_t npcre;
	size_t *pre;			/* RULES_HS_PREFILTER rules */
	size_t npre;
	size_t *utf;			/* u rules in db_utf */
	size_t nutf;
	void *screen;			/* body only: rules_hs_screen's; NULL: none */
};

struct rules_hs {
	unsigned char *mode;		/* enum rules_hs_mode per rule */
	struct rules_hs_class c[RULE_WHERE_COUNT];
	void *scratch;			/* hs_scratch_t * for all databases */
	size_t nexact, npre, npcre;	/* rules per mode */
};

/*
 * rules_hs_build - classify and compile the rules of r (r must outlive
 * the result).  Returns 0 and *out, or -1 with err (out of memory, or
 * Hyperscan failing on a set of rules it took one by one).
 */
int rules_hs_build(const struct rules *r, struct rules_hs **out, char *err,
    size_t errlen);

void rules_hs_free(struct rules_hs *h);

/*
 * Called for each rule of the class that Hyperscan reports on the
 * subject, once per rule (rule: index into rules->v).  utf_invalid tells
 * the subject was not valid UTF-8 (its u rules were not scanned).
 * Returns 0 to go on, non-zero to stop the scan.
 */
typedef int rules_hs_hit_fn(size_t rule, void *arg);

/*
 * rules_hs_scan - scan subject[0..len) with the databases of class w.
 * *utf_invalid (may be NULL) is set when the class has u rules and the
 * subject is not valid UTF-8.  Returns 0, 1 when on_hit stopped it, or
 * -1 on a Hyperscan error (the caller then runs its rules with PCRE2).
 */
int rules_hs_scan(struct rules_hs *h, enum rule_where w, const void *subject,
    size_t len, rules_hs_hit_fn *on_hit, void *arg, int *utf_invalid);

/*
 * rules_hs_screen - scan many body lines at once: buf[0..len) holds whole
 * lines, each ended by "\n" (or "\r\n").  The screen database has every
 * Hyperscan rule of the body class with HS_FLAG_MULTILINE (and no
 * SINGLEMATCH: every end offset is reported), so that a rule that matches
 * a line alone matches in buf with an end offset inside that line (from
 * its first octet to its "\n"): on_at(rule, end, arg) is called for each.
 * The converse does not hold (a match may span lines, or use the "\r"),
 * so a reported line is matched on its own.  It exists only when that
 * holds for all body rules: none is a u rule, none has '$', \A, \z,
 * \Z, \G or an inline option "(?x" (which could turn MULTILINE off).
 * Returns 0, 1 when on_at stopped it, -1 without a screen or on error.
 */
typedef int rules_hs_at_fn(size_t rule, unsigned long long end, void *arg);

int rules_hs_screen(struct rules_hs *h, const void *buf, size_t len,
    rules_hs_at_fn *on_at, void *arg);

/* rules_hs_utf8_valid - s[0..n) is valid UTF-8 (RFC 3629) */
int rules_hs_utf8_valid(const unsigned char *s, size_t n);

#endif
