/*
 * spamfilter.c - score messages with PCRE2 rules (matched with Hyperscan,
 * PCRE2 where it cannot decide alone); tag or reject at eom
 *
 *	smtphookd -p spamfilter:rules=plugins/spamfilter/default.rules,tag=5,reject=10 -p maildump:...
 *
 * Arguments (docs/plugins.md, section spamfilter):
 *	rules=FILE		required; syntax in rules.h and default.rules
 *	tag=SCORE		score >= SCORE adds "X-Spam-Flag: YES"
 *	reject=SCORE		score >= SCORE refuses the message, 550 5.7.1
 *	match_limit=N		PCRE2 match limit per match call (1000000)
 *	budget_ms=MS		slow-rule budget per rule and message (50; 0: none)
 *	engine=hs|pcre2		hs (default): one Hyperscan pass per subject
 *				and WHERE (rules_hs.h), PCRE2 only to confirm
 *				prefilter hits and for what Hyperscan cannot
 *				take; pcre2: every rule on every subject.  The
 *				same matches (tests/unit/plugins/
 *				test_spamfilter_diff.c)
 *	body_max=SIZE		scan at most this much of a message (256K; 0:
 *				all; K, M, G suffixes as sh_parse_size), as
 *				SpamAssassin's body_part_scan_size:
 *				spam shows itself early, and a 100 MiB
 *				attachment is not worth a regex pass per line
 *
 * How each kind of rule is matched:
 *	ip	the client's address, once per connection;
 *	helo	the HELO/EHLO name, once per name given on the connection;
 *	from	the sender address, rcpt each accepted recipient: when the
 *		message's data begins (so a recipient another plugin refused
 *		never scores);
 *	header	each header field's unfolded value, at the header hook, for
 *		the fields of its name (case-insensitive);
 *	body	each line of the body (after the header section, line end
 *		removed), reassembled across chunks in a per-transaction
 *		buffer of SF_LINE_MAX octets; a longer line is matched in
 *		pieces of SF_LINE_MAX octets, ^ only at the real start and $
 *		only at the real end of the line (PCRE2_NOTBOL/NOTEOL), so a
 *		match spanning two pieces is missed.
 * A rule counts at most once per message, however often it matches; the
 * score is the sum of the rules that matched.  The verdict and the
 * X-Spam-* headers come at eom; otherwise spamfilter says CONTINUE (a
 * storing plugin later in the chain takes the message).  The headers are
 * inserted with the edit API (sh_header_insert, first in the message's
 * header section), so the plugins after it see them in sh_tx_header()
 * and a storing plugin writes them from sh_tx_head_part().
 *
 * Hostile input: every match runs under PCRE2 match/depth/heap limits
 * and, with JIT, a bounded JIT stack.  A rule that hits a limit (or fails
 * otherwise) counts as not matched and is not tried again on that
 * message; this is logged once per rule and message.  Once a message has
 * used SF_TIMED_AFTER_NS of regex time, each PCRE2 match is timed: a rule gets
 * SF_ALLOW_CALL_NS per match plus SF_ALLOW_BYTE_NS per subject octet, and
 * one that goes over that allowance by budget_ms in total (a leaky bucket
 * per rule and message) is likewise switched off for the message.  Linear
 * rules never come near it, however big the message; a backtracking rule
 * on hostile lines is stopped after about budget_ms.
 *
 * With engine=hs, the whole lines of a chunk are first scanned in one
 * call with the body screen (rules_hs_screen) and only the lines it
 * reports are matched on their own.  Clock reads: two per hook call, one
 * more every SF_CHECK_CALLS PCRE2 calls, and in timed mode two per PCRE2
 * call; none per line or per Hyperscan scan.
 *
 * Memory: the rules are compiled once at init; one match data, match
 * context and JIT stack, the Hyperscan databases and one Hyperscan
 * scratch serve every match (hooks run on the loop thread only).  Per
 * transaction: one allocation (line buffer, hit bitmaps, time per rule);
 * per connection: the ip/helo hits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <smtphook.h>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>	/* also tells the build to link PCRE2 */

#include "helpers/sh_helpers.h"
#include "rules.h"
#include "rules_hs.h"

#define SF_LINE_MAX 8192		/* body line buffer / piece size */
#define SF_TIMED_AFTER_NS 10000000ULL	/* 10 ms of regex work per message */
#define SF_RULES_HEADER_MAX 900		/* X-Spam-Rules value */
#define SF_BUDGET_MS_DEFAULT 50
/* Regex time a rule may use per match without drawing on its budget. */
#define SF_ALLOW_CALL_NS 2000		/* per match call */
#define SF_ALLOW_BYTE_NS 200		/* per subject octet (5 MB/s) */
/* Before timed mode, a hook call's regex time is read at its start and
 * end, and after every SF_CHECK_CALLS PCRE2 calls in between, so a slow
 * rule on a big chunk reaches timed mode within that many calls. */
#define SF_CHECK_CALLS 16

/* Plugin-wide state. */
#define SF_BODY_MAX_DEFAULT (256 * 1024)

struct sf {
	char *file;
	struct rules *rules;
	struct rules_matcher *m;
	struct rules_hs *hs;		/* engine=hs; NULL: PCRE2 only */
	int has_tag, has_reject;
	int64_t tag, reject;		/* thousandths */
	int64_t budget_ns;		/* per rule per message; 0: none */
	uint64_t body_max;		/* octets of a message scanned; 0: all */
	size_t bm;			/* bitmap bytes for rules->n */
};

/* Per-connection state: which ip and helo rules matched. */
struct sf_conn {
	int ip_done;
	char *helo;			/* the name helo_hits are for */
	unsigned char *hit;		/* bitmap over all rules */
};

/* Per-transaction state (one allocation). */
struct sf_tx {
	unsigned char *hit;		/* rules that matched */
	unsigned char *off;		/* rules switched off for this message */
	int64_t *level;			/* ns per rule over its allowance */
	uint64_t total_ns;		/* regex time before timed mode */
	int timed;			/* time each match */
	uint64_t fed;			/* message octets scanned so far */
	uint64_t clock;			/* untimed: start of this stretch */
	unsigned calls;			/* PCRE2 calls in this stretch */
	size_t body_left;		/* body rules neither hit nor off */
	size_t header_left;		/* header rules neither hit nor off */
	int body;			/* the host said where the body starts */
	int tail_lost;			/* header section: line tail over buf */
	int cont;			/* the current line had pieces already */
	size_t len;			/* octets in buf */
	unsigned char buf[SF_LINE_MAX];
};

static const char *const sf_keys[] = {
	"rules", "tag", "reject", "match_limit", "budget_ms", "body_max",
	"engine", NULL
};

#define BIT_GET(b, i) (((b)[(i) >> 3] >> ((i) & 7)) & 1)
#define BIT_SET(b, i) ((b)[(i) >> 3] |= (unsigned char)(1u << ((i) & 7)))
#define BIT_CLR(b, i) ((b)[(i) >> 3] &= (unsigned char)~(1u << ((i) & 7)))

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- init / fini ---- */

static void
sf_free(struct sf *sf)
{
	if (sf == NULL)
		return;
	rules_hs_free(sf->hs);
	rules_matcher_free(sf->m);
	rules_free(sf->rules);
	free(sf->file);
	free(sf);
}

static int
sf_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct sf *sf = calloc(1, sizeof(*sf));
	uint64_t match_limit = RULES_MATCH_LIMIT;
	uint64_t budget_ms = SF_BUDGET_MS_DEFAULT;
	char err[RULES_ERR_MAX];
	int use_hs = 1;
	size_t i;

	if (sf == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	sf->body_max = SF_BODY_MAX_DEFAULT;
	for (i = 0; i < nargs; i++) {
		const char *k = args[i].key, *v = args[i].value;

		if (strcmp(k, "rules") == 0) {
			free(sf->file);
			if ((sf->file = strdup(v)) == NULL) {
				sh_error(ctx, "out of memory");
				goto fail;
			}
		} else if (strcmp(k, "tag") == 0 || strcmp(k, "reject") == 0) {
			int tag = k[0] == 't';

			if (rules_parse_score(v, strlen(v), tag ? &sf->tag :
			    &sf->reject) < 0) {
				sh_error(ctx, "%s=%s: not a score (a decimal such "
				    "as 5 or 7.5)", k, v);
				goto fail;
			}
			*(tag ? &sf->has_tag : &sf->has_reject) = 1;
		} else if (strcmp(k, "match_limit") == 0) {
			if (sh_parse_uint(v, UINT32_MAX, &match_limit) < 0 ||
			    match_limit == 0) {
				sh_error(ctx, "match_limit=%s: not a positive "
				    "number", v);
				goto fail;
			}
		} else if (strcmp(k, "body_max") == 0) {
			if (sh_parse_size(v, &sf->body_max) < 0 ||
			    sf->body_max > UINT32_MAX) {
				sh_error(ctx, "body_max=%s: not a size (octets, or "
				    "with a suffix K, M or G; at most 4G - 1)", v);
				goto fail;
			}
		} else if (strcmp(k, "engine") == 0) {
			if (strcmp(v, "hs") != 0 && strcmp(v, "pcre2") != 0) {
				sh_error(ctx, "engine=%s: not hs or pcre2", v);
				goto fail;
			}
			use_hs = v[0] == 'h';
		} else if (strcmp(k, "budget_ms") == 0) {
			if (sh_parse_uint(v, 3600000, &budget_ms) < 0) {
				sh_error(ctx, "budget_ms=%s: not a number of "
				    "milliseconds", v);
				goto fail;
			}
		}
	}
	if (sf->file == NULL || sf->file[0] == '\0') {
		sh_error(ctx, "rules= is required (a rules file, e.g. "
		    "rules=plugins/spamfilter/default.rules)");
		goto fail;
	}
	if (rules_load(sf->file, 0, &sf->rules, err, sizeof(err)) < 0) {
		sh_error(ctx, "%s", err);
		goto fail;
	}
	if ((sf->m = rules_matcher_new((unsigned long)match_limit,
	    RULES_DEPTH_LIMIT)) == NULL) {
		sh_error(ctx, "out of memory");
		goto fail;
	}
	if (use_hs && rules_hs_build(sf->rules, &sf->hs, err, sizeof(err)) < 0) {
		sh_error(ctx, "%s: %s", sf->file, err);
		goto fail;
	}
	sf->budget_ns = (int64_t)budget_ms * 1000000;
	sf->bm = (sf->rules->n + 7) / 8;
	sh_log(ctx, SH_LOG_INFO, "%zu rule(s) from %s (%zu JIT-compiled: %zu "
	    "header, %zu body, %zu envelope)", sf->rules->n, sf->file,
	    sf->rules->njit, sf->rules->count[RULE_HEADER],
	    sf->rules->count[RULE_BODY], sf->rules->n -
	    sf->rules->count[RULE_HEADER] - sf->rules->count[RULE_BODY]);
	if (sf->hs != NULL)
		sh_log(ctx, SH_LOG_INFO, "engine hs: %zu rule(s) exact, %zu "
		    "prefiltered and confirmed with PCRE2, %zu PCRE2 only; body "
		    "screen: %s", sf->hs->nexact, sf->hs->npre, sf->hs->npcre,
		    sf->hs->c[RULE_BODY].screen != NULL ? "yes" : "no");
	else
		sh_log(ctx, SH_LOG_INFO, "engine pcre2: every rule on every "
		    "subject");
	sh_plugin_set(ctx, sf);
	return 0;
fail:
	sf_free(sf);
	return -1;
}

static void
sf_fini(sh_ctx *ctx)
{
	sf_free(sh_plugin_get(ctx));
}

/* ---- matching ---- */

/*
 * settle - record what a match of rule i found: a hit in hit, or with a
 * transaction the rule switched off (off); either way a transaction's
 * rule is decided and leaves the count of rules left to try.
 */
static void
settle(const struct sf *sf, struct sf_tx *tx, unsigned char *hit, size_t i,
    int matched, int off)
{
	enum rule_where w = sf->rules->v[i].where;

	if (matched)
		BIT_SET(hit, i);
	else if (off && tx != NULL)
		BIT_SET(tx->off, i);
	if (tx != NULL && (matched || off)) {
		if (w == RULE_BODY)
			tx->body_left--;
		else if (w == RULE_HEADER)
			tx->header_left--;
	}
}

/* stretch_check - before timed mode: add the regex time since the last
 * read to the message's total, enter timed mode past SF_TIMED_AFTER_NS */
static void
stretch_check(struct sf_tx *tx)
{
	uint64_t t = now_ns();

	tx->total_ns += t - tx->clock;
	tx->clock = t;
	tx->calls = 0;
	if (tx->total_ns > SF_TIMED_AFTER_NS)
		tx->timed = 1;
}

/*
 * run_rule - match rule i against subject with PCRE2, record a hit in
 * hit.  With a transaction, rules already hit or switched off are
 * skipped, limits and the time budget switch the rule off for the rest of
 * the message (logged once).  Returns 1 on a (new) match.
 */
static int
run_rule(sh_ctx *ctx, struct sf *sf, struct sf_tx *tx, unsigned char *hit,
    size_t i, const void *subject, size_t len, uint32_t options)
{
	const struct rule *r = &sf->rules->v[i];
	int timed = tx != NULL && tx->timed && sf->budget_ns > 0;
	uint64_t t0;
	int64_t dt;
	int rc, prc = 0, off = 0;
	char msg[160];

	if (BIT_GET(hit, i) || (tx != NULL && BIT_GET(tx->off, i)))
		return 0;
	t0 = timed ? now_ns() : 0;
	rc = rules_match(sf->m, r, subject, len, options, &prc);
	if (tx != NULL && !tx->timed && sf->budget_ns > 0 &&
	    ++tx->calls >= SF_CHECK_CALLS)
		stretch_check(tx);
	if (timed) {
		/* A leaky bucket: time beyond the allowance fills it,
		 * time under it drains it (never below empty, so a long
		 * message banks no credit for a later slow stretch).  Only
		 * PCRE2 calls are timed: a Hyperscan scan is linear. */
		dt = (int64_t)(now_ns() - t0) - (int64_t)(SF_ALLOW_CALL_NS +
		    (uint64_t)len * SF_ALLOW_BYTE_NS);
		tx->level[i] += dt;
		if (tx->level[i] < 0)
			tx->level[i] = 0;
		if (tx->level[i] > sf->budget_ns && rc == 0) {
			off = 1;
			sh_log(ctx, SH_LOG_WARN, "rule %s (%s:%u, %s) is too slow "
			    "on this message (over its %lld ms regex budget): "
			    "not tried again on it", r->label, sf->file, r->line,
			    rules_where_name(r->where),
			    (long long)(sf->budget_ns / 1000000));
		}
	}
	if (rc < 0) {
		if (pcre2_get_error_message(prc, (PCRE2_UCHAR *)msg,
		    sizeof(msg)) < 0)
			snprintf(msg, sizeof(msg), "PCRE2 error %d", prc);
		sh_log(ctx, SH_LOG_WARN, "rule %s (%s:%u, %s) %s: %s; counted as "
		    "no match%s", r->label, sf->file, r->line,
		    rules_where_name(r->where), rc == RULES_LIMIT ?
		    "hit a PCRE2 limit" : "failed", msg, tx != NULL ?
		    ", not tried again on this message" : "");
		off = 1;
	}
	settle(sf, tx, hit, i, rc == 1, off);
	return rc == 1;
}

/*
 * begin_batch / end_batch - around a hook call's matches.  Before timed
 * mode the call as a whole is timed (two clock reads per hook call, one
 * more every SF_CHECK_CALLS PCRE2 calls); in timed mode each PCRE2 call is
 * timed on its own (run_rule).
 */
static void
begin_batch(const struct sf *sf, struct sf_tx *tx)
{
	if (sf->budget_ns == 0 || tx->timed)
		return;
	tx->clock = now_ns();
	tx->calls = 0;
}

static void
end_batch(const struct sf *sf, struct sf_tx *tx)
{
	if (sf->budget_ns == 0 || tx->timed)
		return;
	stretch_check(tx);
}

/* One subject through the Hyperscan databases of a class. */
struct scan {
	sh_ctx *ctx;
	struct sf *sf;
	struct sf_tx *tx;		/* NULL: ip and helo rules */
	unsigned char *hit;
	const char *name;		/* header rules: the field's name */
	size_t name_len;
	const void *s;
	size_t len;
	uint32_t opts;			/* PCRE2_NOTBOL/NOTEOL of a piece */
};

/* wanted - rule i is still to be tried on this subject */
static int
wanted(const struct scan *sc, size_t i)
{
	const struct rule *r = &sc->sf->rules->v[i];

	if (BIT_GET(sc->hit, i) || (sc->tx != NULL && BIT_GET(sc->tx->off, i)))
		return 0;
	return r->where != RULE_HEADER || sh_ascii_caseeq(r->header,
	    r->header_len, sc->name, sc->name_len);
}

/* class_left - rules of the class still undecided in the transaction */
static size_t
class_left(const struct scan *sc, enum rule_where w)
{
	if (sc->tx == NULL)
		return 1;
	return w == RULE_BODY ? sc->tx->body_left : w == RULE_HEADER ?
	    sc->tx->header_left : 1;
}

/*
 * on_hit - Hyperscan reports rule i on the subject.  An exact rule on a
 * whole subject is a match; a prefilter hit, or any hit on a piece of a
 * long line (Hyperscan knows no NOTBOL/NOTEOL, so without them it finds
 * a superset), is confirmed with PCRE2.  Prefilter rules on a piece are
 * left to PCRE2 after the scan: their superset is without NOTBOL/NOTEOL.
 */
static int
on_hit(size_t i, void *arg)
{
	struct scan *sc = arg;
	enum rule_where w = sc->sf->rules->v[i].where;
	int mode = sc->sf->hs->mode[i];

	if (!wanted(sc, i))
		return 0;
	if (mode == RULES_HS_EXACT && sc->opts == 0)
		settle(sc->sf, sc->tx, sc->hit, i, 1, 0);
	else if (mode == RULES_HS_EXACT || sc->opts == 0)
		run_rule(sc->ctx, sc->sf, sc->tx, sc->hit, i, sc->s, sc->len,
		    sc->opts);
	/* Stop once every rule of the class is decided. */
	return class_left(sc, w) == 0;
}

/* run_list - PCRE2 for the wanted rules of v[0..n) */
static void
run_list(struct scan *sc, enum rule_where w, const size_t *v, size_t n)
{
	for (size_t k = 0; k < n && class_left(sc, w) > 0; k++)
		if (wanted(sc, v[k]))
			run_rule(sc->ctx, sc->sf, sc->tx, sc->hit, v[k], sc->s,
			    sc->len, sc->opts);
}

/*
 * match_class - the rules of class w on one subject: with engine=hs one
 * Hyperscan pass plus PCRE2 for what it cannot decide, else PCRE2 for
 * each rule.  For header rules, name is the field's name.
 */
static void
match_class(sh_ctx *ctx, struct sf *sf, struct sf_tx *tx, unsigned char *hit,
    enum rule_where w, const char *name, size_t name_len, const void *s,
    size_t len, uint32_t opts)
{
	const struct rules *rs = sf->rules;
	struct scan sc = { ctx, sf, tx, hit, name, name_len, s, len, opts };
	const struct rules_hs_class *c;
	int rc, bad_utf = 0;

	if (rs->count[w] == 0 || class_left(&sc, w) == 0)
		return;
	if (sf->hs == NULL ||
	    (rc = rules_hs_scan(sf->hs, w, s, len, on_hit, &sc, &bad_utf)) < 0) {
		run_list(&sc, w, rs->idx[w], rs->count[w]);
		return;
	}
	c = &sf->hs->c[w];
	run_list(&sc, w, c->pcre, c->npcre);
	if (opts != 0)
		run_list(&sc, w, c->pre, c->npre);
	if (bad_utf)
		run_list(&sc, w, c->utf, c->nutf);
}

static void
conn_free(void *p)
{
	struct sf_conn *c = p;

	free(c->helo);
	free(c);
}

/* conn_state - the connection's ip/helo hits, computed on first use and
 * again for a new HELO name */
static struct sf_conn *
conn_state(sh_ctx *ctx, struct sf *sf)
{
	const sh_session_info *si = sh_session(ctx);
	const struct rules *rs = sf->rules;
	struct sf_conn *c = sh_conn_get(ctx);
	size_t k;

	if (c == NULL) {
		if ((c = calloc(1, sizeof(*c) + sf->bm)) == NULL)
			return NULL;
		c->hit = (unsigned char *)(c + 1);
		sh_conn_set(ctx, c, conn_free);
	}
	if (si == NULL)
		return c;
	if (!c->ip_done && si->peer_addr != NULL) {
		c->ip_done = 1;
		match_class(ctx, sf, NULL, c->hit, RULE_IP, NULL, 0,
		    si->peer_addr, strlen(si->peer_addr), 0);
	}
	if (si->helo != NULL && (c->helo == NULL || strcmp(c->helo, si->helo) != 0)) {
		free(c->helo);
		c->helo = strdup(si->helo);
		for (k = 0; k < rs->count[RULE_HELO]; k++)
			BIT_CLR(c->hit, rs->idx[RULE_HELO][k]);
		match_class(ctx, sf, NULL, c->hit, RULE_HELO, NULL, 0, si->helo,
		    strlen(si->helo), 0);
	}
	return c;
}

/*
 * tx_state - this plugin's transaction state, created on first use (at
 * data, or at the first header/chunk/eom call we get): the envelope rules
 * are matched then.
 */
static struct sf_tx *
tx_state(sh_ctx *ctx, struct sf *sf)
{
	const struct rules *rs = sf->rules;
	const sh_tx_info *ti;
	struct sf_conn *c;
	struct sf_tx *tx = sh_tx_get(ctx);
	size_t base, k, j;

	if (tx != NULL)
		return tx;
	if ((ti = sh_tx(ctx)) == NULL)
		return NULL;
	base = (sizeof(*tx) + 7) & ~(size_t)7;
	if ((tx = calloc(1, base + rs->n * sizeof(int64_t) + 2 * sf->bm)) == NULL)
		return NULL;
	tx->level = (int64_t *)(void *)((char *)tx + base);
	tx->hit = (unsigned char *)(tx->level + rs->n);
	tx->off = tx->hit + sf->bm;
	tx->body_left = rs->count[RULE_BODY];
	tx->header_left = rs->count[RULE_HEADER];
	sh_tx_set(ctx, tx, free);

	if ((c = conn_state(ctx, sf)) != NULL)
		for (k = 0; k < sf->bm; k++)
			tx->hit[k] |= c->hit[k];
	begin_batch(sf, tx);
	if (ti->sender != NULL)
		match_class(ctx, sf, tx, tx->hit, RULE_FROM, NULL, 0,
		    ti->sender->address, strlen(ti->sender->address), 0);
	for (j = 0; j < ti->nrcpts; j++) {
		const char *a = ti->rcpts[j]->address;

		match_class(ctx, sf, tx, tx->hit, RULE_RCPT, NULL, 0, a,
		    strlen(a), 0);
	}
	end_batch(sf, tx);
	return tx;
}

/* ---- hooks ---- */

static sh_verdict
sf_data(sh_ctx *ctx)
{
	(void)tx_state(ctx, sh_plugin_get(ctx));
	return SH_CONTINUE;
}

static sh_verdict
sf_header(sh_ctx *ctx, const char *name, size_t name_len, const char *value,
    size_t value_len)
{
	struct sf *sf = sh_plugin_get(ctx);
	struct sf_tx *tx = tx_state(ctx, sf);

	if (tx == NULL)
		return SH_CONTINUE;	/* out of memory: eom answers */
	if (tx->header_left == 0)
		return SH_ACCEPT;	/* no more headers for me */
	begin_batch(sf, tx);
	match_class(ctx, sf, tx, tx->hit, RULE_HEADER, name, name_len, value,
	    value_len, 0);
	end_batch(sf, tx);
	return tx->header_left == 0 ? SH_ACCEPT : SH_CONTINUE;
}

/*
 * piece - one piece of a body line (line end removed): match the body
 * rules against it.
 */
static void
piece(sh_ctx *ctx, struct sf *sf, struct sf_tx *tx, const unsigned char *p,
    size_t len, int last)
{
	int first = !tx->cont;
	uint32_t opts;

	if (last && len > 0 && p[len - 1] == '\r')
		len--;
	tx->cont = !last;
	if (!first && len == 0)
		return;			/* only the line end was left */
	opts = (first ? 0 : PCRE2_NOTBOL) | (last ? 0 : PCRE2_NOTEOL);
	match_class(ctx, sf, tx, tx->hit, RULE_BODY, NULL, 0, p, len, opts);
}

/*
 * keep_line_tail - in the header section: keep what follows the last line
 * end in tx->buf (it may turn out to be the first body line); a tail that
 * does not fit is dropped
 */
static void
keep_line_tail(struct sf_tx *tx, const unsigned char *data, size_t len)
{
	const unsigned char *nl = len > 0 ? memrchr(data, '\n', len) : NULL;

	if (nl != NULL) {
		tx->len = 0;
		tx->tail_lost = 0;
		len -= (size_t)(nl + 1 - data);
		data = nl + 1;
	}
	if (tx->tail_lost || tx->len + len > SF_LINE_MAX) {
		tx->len = 0;
		tx->tail_lost = 1;
		return;
	}
	memcpy(tx->buf + tx->len, data, len);
	tx->len += len;
}

/*
 * A screened region of a chunk: whole lines scanned at once with the
 * screen database (rules_hs_screen); the end offsets it reported, in
 * order, or all lines marked when there were more than SF_SCREEN_MAX.
 */
#define SF_SCREEN_MAX 64

struct region {
	struct scan *sc;		/* for wanted() */
	const unsigned char *base;	/* region start (a line start) */
	size_t len;			/* through the last "\n" */
	int all;			/* every line is to be matched */
	size_t n, next;			/* ends[0..n), next to look at */
	unsigned long long ends[SF_SCREEN_MAX];
};

static int
on_screen_at(size_t rule, unsigned long long end, void *arg)
{
	struct region *rg = arg;

	if (!wanted(rg->sc, rule))
		return 0;
	if (rg->n == SF_SCREEN_MAX) {
		rg->all = 1;
		return 1;
	}
	rg->ends[rg->n++] = end;
	return 0;
}

static int
cmp_end(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a;
	unsigned long long y = *(const unsigned long long *)b;

	return x < y ? -1 : x > y;
}

/*
 * screen_region - screen the whole lines at data[0..n) (n > 0).  No
 * screen, or a Hyperscan error: every line is matched on its own.
 */
static void
screen_region(struct sf *sf, struct sf_tx *tx, struct region *rg,
    const unsigned char *data, size_t n)
{
	const unsigned char *nl = memrchr(data, '\n', n);
	struct scan sc = { NULL, sf, tx, tx->hit, NULL, 0, NULL, 0, 0 };

	rg->base = data;
	rg->len = nl != NULL ? (size_t)(nl + 1 - data) : 0;
	rg->all = rg->n = rg->next = 0;
	if (rg->len == 0)
		return;
	rg->sc = &sc;
	if (rules_hs_screen(sf->hs, data, rg->len, on_screen_at, rg) < 0)
		rg->all = 1;
	rg->sc = NULL;
	qsort(rg->ends, rg->n, sizeof(rg->ends[0]), cmp_end);
}

/*
 * clean_line - whether the line data[0..k) (its "\n" at data[k]) lies in
 * the screened region with no reported end inside it: then only the PCRE2-
 * only body rules need to see it.  Lines are asked about in order.
 */
static int
clean_line(struct region *rg, const unsigned char *data, size_t k)
{
	size_t off, last;

	if (rg->len == 0 || data < rg->base || data + k >= rg->base + rg->len)
		return 0;
	if (rg->all)
		return 0;
	off = (size_t)(data - rg->base);
	last = off + k;			/* the "\n" */
	while (rg->next < rg->n && rg->ends[rg->next] < off)
		rg->next++;
	return rg->next == rg->n || rg->ends[rg->next] > last;
}

/* clean_piece - a screened-clean line: its PCRE2-only body rules only */
static void
clean_piece(sh_ctx *ctx, struct sf *sf, struct sf_tx *tx,
    const unsigned char *p, size_t len)
{
	struct scan sc = { ctx, sf, tx, tx->hit, NULL, 0, p, len, 0 };
	const struct rules_hs_class *c = &sf->hs->c[RULE_BODY];

	if (len > 0 && p[len - 1] == '\r')
		sc.len--;
	run_list(&sc, RULE_BODY, c->pcre, c->npcre);
}

/*
 * feed - split data into lines, reassembling across calls in tx->buf.
 * A line is handed to piece() whole when it fits SF_LINE_MAX octets
 * (CR included), else in pieces of SF_LINE_MAX octets; a piece is only
 * cut once the next octet is known not to end the line.
 */
static void
feed(sh_ctx *ctx, struct sf *sf, struct sf_tx *tx, const unsigned char *data,
    size_t n)
{
	const unsigned char *nl;
	size_t room, scan, k;
	struct region rg = { 0 };

	while (n > 0 && tx->body_left > 0) {
		if (tx->len > 0) {
			room = SF_LINE_MAX - tx->len;
			scan = n < room + 1 ? n : room + 1;
			if ((nl = memchr(data, '\n', scan)) != NULL) {
				k = (size_t)(nl - data);
				memcpy(tx->buf + tx->len, data, k);
				piece(ctx, sf, tx, tx->buf, tx->len + k, 1);
				tx->len = 0;
				data += k + 1;
				n -= k + 1;
			} else if (n > room) {
				memcpy(tx->buf + tx->len, data, room);
				piece(ctx, sf, tx, tx->buf, SF_LINE_MAX, 0);
				tx->len = 0;
				data += room;
				n -= room;
			} else {
				memcpy(tx->buf + tx->len, data, n);
				tx->len += n;
				n = 0;
			}
		} else {
			/* Whole lines from here to the chunk's last line end:
			 * one screen scan, then only the lines it reports are
			 * matched on their own. */
			if (rg.base == NULL && sf->hs != NULL &&
			    sf->hs->c[RULE_BODY].screen != NULL)
				screen_region(sf, tx, &rg, data, n);
			scan = n < SF_LINE_MAX + 1 ? n : SF_LINE_MAX + 1;
			if ((nl = memchr(data, '\n', scan)) != NULL) {
				k = (size_t)(nl - data);
				if (!tx->cont && clean_line(&rg, data, k))
					clean_piece(ctx, sf, tx, data, k);
				else
					piece(ctx, sf, tx, data, k, 1);
				data += k + 1;
				n -= k + 1;
			} else if (n > SF_LINE_MAX) {
				piece(ctx, sf, tx, data, SF_LINE_MAX, 0);
				data += SF_LINE_MAX;
				n -= SF_LINE_MAX;
			} else {
				memcpy(tx->buf, data, n);
				tx->len = n;
				n = 0;
			}
		}
	}
}

static sh_verdict
sf_chunk(sh_ctx *ctx, const unsigned char *data, size_t len)
{
	struct sf *sf = sh_plugin_get(ctx);
	struct sf_tx *tx = tx_state(ctx, sf);
	const sh_tx_info *ti = sh_tx(ctx);
	uint64_t start, skip;

	if (tx == NULL || ti == NULL)
		return SH_CONTINUE;	/* out of memory: eom answers */
	/* The header section is the header rules' (the header hook); the
	 * host says where the body starts.  The body may have begun in an
	 * earlier chunk, inside a line the host could not yet tell from a
	 * header field: that line's start is kept until the host knows. */
	start = ti->body_size - len;
	if (!tx->body) {
		if (ti->in_headers) {
			keep_line_tail(tx, data, len);
			tx->fed += len;
			return SH_CONTINUE;
		}
		tx->body = 1;
		if (ti->header_size >= start || tx->tail_lost ||
		    tx->len != start - ti->header_size)
			tx->len = 0;	/* (kept: that first body line's start) */
		skip = ti->header_size > start ? ti->header_size - start : 0;
		if (skip >= len) {
			tx->fed += len;
			return SH_CONTINUE;
		}
		data += skip;
		len -= (size_t)skip;
		tx->fed += skip;
	}
	if (sf->body_max > 0 && tx->fed >= sf->body_max)
		return SH_ACCEPT;
	if (sf->body_max > 0 && len > sf->body_max - tx->fed)
		len = (size_t)(sf->body_max - tx->fed);
	begin_batch(sf, tx);
	feed(ctx, sf, tx, data, len);
	end_batch(sf, tx);
	tx->fed += len;
	/* With every body rule decided, or body_max scanned, the rest of the
	 * body is not needed. */
	return tx->body_left == 0 || (sf->body_max > 0 &&
	    tx->fed >= sf->body_max) ? SH_ACCEPT : SH_CONTINUE;
}

static sh_verdict
sf_eom(sh_ctx *ctx)
{
	struct sf *sf = sh_plugin_get(ctx);
	const struct rules *rs = sf->rules;
	struct sf_tx *tx = tx_state(ctx, sf);
	const sh_tx_info *ti = sh_tx(ctx);
	char score_s[32], list[SF_RULES_HEADER_MAX + 8];
	int64_t score = 0;
	size_t i, o = 0, nhit = 0, l;
	int tagged;

	if (tx == NULL)
		return sh_tempfail(ctx, 451, "4.3.0", "Out of memory, try again later");
	/* A last line without a line end. */
	if (tx->len > 0 && tx->body_left > 0) {
		begin_batch(sf, tx);
		piece(ctx, sf, tx, tx->buf, tx->len, 1);
		end_batch(sf, tx);
		tx->len = 0;
	}
	list[0] = '\0';
	for (i = 0; i < rs->n; i++) {
		if (!BIT_GET(tx->hit, i))
			continue;
		score += rs->v[i].score;
		l = strlen(rs->v[i].label);
		if (o == SIZE_MAX)
			continue;
		if (o + (nhit > 0) + l > SF_RULES_HEADER_MAX) {
			strcpy(list + o, nhit > 0 ? ",..." : "...");
			o = SIZE_MAX;
		} else {
			if (nhit > 0)
				list[o++] = ',';
			memcpy(list + o, rs->v[i].label, l + 1);
			o += l;
		}
		nhit++;
	}
	rules_format_score(score, score_s, sizeof(score_s));
	if (nhit == 0)
		snprintf(list, sizeof(list), "none");
	if (sf->has_reject && score >= sf->reject) {
		sh_log(ctx, SH_LOG_INFO, "message %s: score %s (%s): rejected",
		    ti != NULL ? ti->id : "-", score_s, list);
		return sh_reject(ctx, 550, "5.7.1", "Message looks like spam "
		    "(score %s)", score_s);
	}
	tagged = sf->has_tag && score >= sf->tag;
	/* Through the edit API (ABI 1.1): first in the message's own header
	 * section, in this order, right after the trace block. */
	if (sh_header_insert(ctx, 0, "X-Spam-Score", score_s) < 0 ||
	    sh_header_insert(ctx, 1, "X-Spam-Rules", list) < 0 ||
	    (tagged && sh_header_insert(ctx, 2, "X-Spam-Flag", "YES") < 0))
		sh_log(ctx, SH_LOG_WARN, "could not add the X-Spam headers "
		    "(the message's edit budget or field limit is used up)");
	sh_log(ctx, SH_LOG_INFO, "message %s: score %s (%s)%s",
	    ti != NULL ? ti->id : "-", score_s, list, tagged ? ": tagged" : "");
	return SH_CONTINUE;
}

SH_PLUGIN_DEFINE(
	.name = "spamfilter",
	.version = "1.0",
	.arg_keys = sf_keys,
	.init = sf_init,
	.fini = sf_fini,
	.data = sf_data,
	.header = sf_header,
	.chunk = sf_chunk,
	.eom = sf_eom,
	/* It inserts X-Spam-* headers at eom. */
	.roles = SH_ROLE_EDITS,
);
