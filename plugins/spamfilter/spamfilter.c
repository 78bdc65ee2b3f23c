/*
 * spamfilter.c - score messages with PCRE2 rules; tag or reject at eom
 *
 *	smtphookd -p spamfilter:rules=plugins/spamfilter/default.rules,tag=5,reject=10 -p maildump:...
 *
 * Arguments (docs/plugins.md, section spamfilter):
 *	rules=FILE		required; syntax in rules.h and default.rules
 *	tag=SCORE		score >= SCORE adds "X-Spam-Flag: YES"
 *	reject=SCORE		score >= SCORE refuses the message, 550 5.7.1
 *	match_limit=N		PCRE2 match limit per match call (1000000)
 *	budget_ms=MS		slow-rule budget per rule and message (50; 0: none)
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
 * used SF_TIMED_AFTER_NS of regex time, each match is timed: a rule gets
 * SF_ALLOW_CALL_NS per match plus SF_ALLOW_BYTE_NS per subject octet, and
 * one that goes over that allowance by budget_ms in total (a leaky bucket
 * per rule and message) is likewise switched off for the message.  Linear
 * rules never come near it, however big the message; a backtracking rule
 * on hostile lines is stopped after about budget_ms.
 *
 * Memory: the rules are compiled once at init; one match data, match
 * context and JIT stack serve every match (hooks run on the loop thread
 * only).  Per transaction: one allocation (line buffer, hit bitmaps, time
 * per rule); per connection: the ip/helo hits.
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

#define SF_LINE_MAX 8192		/* body line buffer / piece size */
#define SF_TIMED_AFTER_NS 10000000ULL	/* 10 ms of regex work per message */
#define SF_RULES_HEADER_MAX 900		/* X-Spam-Rules value */
#define SF_BUDGET_MS_DEFAULT 50
/* Regex time a rule may use per match without drawing on its budget. */
#define SF_ALLOW_CALL_NS 2000		/* per match call */
#define SF_ALLOW_BYTE_NS 200		/* per subject octet (5 MB/s) */

/* Plugin-wide state. */
#define SF_BODY_MAX_DEFAULT (256 * 1024)

struct sf {
	char *file;
	struct rules *rules;
	struct rules_matcher *m;
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
	uint64_t clock;			/* timed mode: end of the last match */
	size_t body_left;		/* body rules neither hit nor off */
	size_t header_left;		/* header rules neither hit nor off */
	int body;			/* the host said where the body starts */
	int tail_lost;			/* header section: line tail over buf */
	int cont;			/* the current line had pieces already */
	size_t len;			/* octets in buf */
	unsigned char buf[SF_LINE_MAX];
};

static const char *const sf_keys[] = {
	"rules", "tag", "reject", "match_limit", "budget_ms", "body_max", NULL
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
	sf->budget_ns = (int64_t)budget_ms * 1000000;
	sf->bm = (sf->rules->n + 7) / 8;
	sh_log(ctx, SH_LOG_INFO, "%zu rule(s) from %s (%zu JIT-compiled: %zu "
	    "header, %zu body, %zu envelope)", sf->rules->n, sf->file,
	    sf->rules->njit, sf->rules->count[RULE_HEADER],
	    sf->rules->count[RULE_BODY], sf->rules->n -
	    sf->rules->count[RULE_HEADER] - sf->rules->count[RULE_BODY]);
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
 * run_rule - match rule i against subject, record a hit in hit.  With a
 * transaction, rules already hit or switched off are skipped, limits and
 * the time budget switch the rule off for the rest of the message (logged
 * once).  Returns 1 on a (new) match.
 */
static int
run_rule(sh_ctx *ctx, struct sf *sf, struct sf_tx *tx, unsigned char *hit,
    size_t i, const void *subject, size_t len, uint32_t options)
{
	const struct rule *r = &sf->rules->v[i];
	uint64_t t1;
	int64_t dt;
	int rc, prc = 0, off = 0;
	char msg[160];

	if (BIT_GET(hit, i) || (tx != NULL && BIT_GET(tx->off, i)))
		return 0;
	rc = rules_match(sf->m, r, subject, len, options, &prc);
	if (tx != NULL && tx->timed) {
		/* A leaky bucket: time beyond the allowance fills it,
		 * time under it drains it (never below empty, so a long
		 * message banks no credit for a later slow stretch). */
		t1 = now_ns();
		dt = (int64_t)(t1 - tx->clock) - (int64_t)(SF_ALLOW_CALL_NS +
		    (uint64_t)len * SF_ALLOW_BYTE_NS);
		tx->level[i] += dt;
		if (tx->level[i] < 0)
			tx->level[i] = 0;
		tx->clock = t1;
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
	if (rc == 1)
		BIT_SET(hit, i);
	else if (off && tx != NULL)
		BIT_SET(tx->off, i);
	if (tx != NULL && (rc == 1 || off)) {
		if (r->where == RULE_BODY)
			tx->body_left--;
		else if (r->where == RULE_HEADER)
			tx->header_left--;
	}
	return rc == 1;
}

/*
 * begin_batch / end_batch - around a batch of matches.  Before timed mode
 * the batch as a whole is timed (two clock reads per line, not per
 * match); in timed mode each match ends with a clock read, which is the
 * start of the next one (tx->clock).
 */
static uint64_t
begin_batch(const struct sf *sf, struct sf_tx *tx)
{
	if (sf->budget_ns == 0)
		return 0;
	if (tx->timed)
		tx->clock = now_ns();
	return tx->timed ? 0 : now_ns();
}

static void
end_batch(const struct sf *sf, struct sf_tx *tx, uint64_t t0)
{
	if (tx->timed || sf->budget_ns == 0)
		return;
	tx->total_ns += now_ns() - t0;
	if (tx->total_ns > SF_TIMED_AFTER_NS)
		tx->timed = 1;
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
		for (k = 0; k < rs->count[RULE_IP]; k++)
			run_rule(ctx, sf, NULL, c->hit, rs->idx[RULE_IP][k],
			    si->peer_addr, strlen(si->peer_addr), 0);
	}
	if (si->helo != NULL && (c->helo == NULL || strcmp(c->helo, si->helo) != 0)) {
		free(c->helo);
		c->helo = strdup(si->helo);
		for (k = 0; k < rs->count[RULE_HELO]; k++) {
			size_t i = rs->idx[RULE_HELO][k];

			BIT_CLR(c->hit, i);
			run_rule(ctx, sf, NULL, c->hit, i, si->helo,
			    strlen(si->helo), 0);
		}
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
	size_t base, k, j, i;
	uint64_t t0;

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
	t0 = begin_batch(sf, tx);
	if (ti->sender != NULL)
		for (k = 0; k < rs->count[RULE_FROM]; k++)
			run_rule(ctx, sf, tx, tx->hit, rs->idx[RULE_FROM][k],
			    ti->sender->address, strlen(ti->sender->address), 0);
	for (j = 0; j < ti->nrcpts; j++) {
		const char *a = ti->rcpts[j]->address;

		for (k = 0; k < rs->count[RULE_RCPT]; k++) {
			i = rs->idx[RULE_RCPT][k];
			run_rule(ctx, sf, tx, tx->hit, i, a, strlen(a), 0);
		}
	}
	end_batch(sf, tx, t0);
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
	const struct rules *rs = sf->rules;
	struct sf_tx *tx = tx_state(ctx, sf);
	uint64_t t0;
	size_t k;

	if (tx == NULL)
		return SH_CONTINUE;	/* out of memory: eom answers */
	if (tx->header_left == 0)
		return SH_ACCEPT;	/* no more headers for me */
	t0 = begin_batch(sf, tx);
	for (k = 0; k < rs->count[RULE_HEADER]; k++) {
		size_t i = rs->idx[RULE_HEADER][k];
		const struct rule *r = &rs->v[i];

		if (sh_ascii_caseeq(r->header, r->header_len, name, name_len))
			run_rule(ctx, sf, tx, tx->hit, i, value, value_len, 0);
	}
	end_batch(sf, tx, t0);
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
	const struct rules *rs = sf->rules;
	int first = !tx->cont;
	uint32_t opts;
	uint64_t t0;
	size_t k;

	if (last && len > 0 && p[len - 1] == '\r')
		len--;
	tx->cont = !last;
	if (!first && len == 0)
		return;			/* only the line end was left */
	opts = (first ? 0 : PCRE2_NOTBOL) | (last ? 0 : PCRE2_NOTEOL);
	t0 = begin_batch(sf, tx);
	for (k = 0; k < rs->count[RULE_BODY] && tx->body_left > 0; k++)
		run_rule(ctx, sf, tx, tx->hit, rs->idx[RULE_BODY][k], p, len, opts);
	end_batch(sf, tx, t0);
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
			scan = n < SF_LINE_MAX + 1 ? n : SF_LINE_MAX + 1;
			if ((nl = memchr(data, '\n', scan)) != NULL) {
				k = (size_t)(nl - data);
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
	feed(ctx, sf, tx, data, len);
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
		piece(ctx, sf, tx, tx->buf, tx->len, 1);
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
