/*
 * bench_spamfilter.c - spamfilter's body scan, PCRE2 path against
 * Hyperscan path (issue 16's micro-benchmark; built by CMake, not a test)
 *
 *	build/bench/bench_spamfilter [RULES [SECONDS]]
 *
 * Scans 100 KiB message bodies (ordinary text lines of 60-78 octets,
 * CRLF, no rule matching, so every rule runs over every line: the cost
 * of a ham message, the common case) with RULES (default.rules) and
 * prints MB/s of body scanned on one core for each path.  The body is cut
 * into lines as the plugin does (line end removed); PCRE2 runs each body
 * rule on each line; "hs per line" is one Hyperscan block scan per line
 * over all of them; "hs screened" is what the plugin does: one screen scan
 * over the whole body (rules_hs_screen), the body cut into lines, the
 * per-line scan only on the lines the screen reported (none here).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../plugins/spamfilter/rules.c"
#include "../../plugins/spamfilter/rules_hs.c"

#define BODY_SIZE (100 * 1024)

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* make_body - BODY_SIZE octets of plain text lines */
static char *
make_body(size_t *len)
{
	static const char *const words[] = {
		"the", "minutes", "of", "Tuesday's", "meeting", "are", "attached",
		"please", "review", "before", "Friday", "and", "send", "comments",
		"to", "Alice", "project", "budget", "2026", "schedule", "thanks",
		"regards", "report", "quarterly", "numbers", "look", "fine,",
	};
	char *b = malloc(BODY_SIZE + 128);
	size_t o = 0, col = 0;
	unsigned seed = 1;

	if (b == NULL)
		exit(1);
	while (o < BODY_SIZE) {
		const char *w;

		seed = seed * 1103515245u + 12345u;
		w = words[(seed >> 16) % (sizeof(words) / sizeof(words[0]))];
		if (col + strlen(w) + 1 > 60 + (seed >> 8) % 18) {
			memcpy(b + o, "\r\n", 2);
			o += 2;
			col = 0;
			continue;
		}
		if (col > 0)
			b[o++] = ' ', col++;
		memcpy(b + o, w, strlen(w));
		o += strlen(w);
		col += strlen(w);
	}
	memcpy(b + o, "\r\n", 2);
	*len = o + 2;
	return b;
}

struct count {
	size_t n;
};

static int
on_hit(size_t rule, void *arg)
{
	(void)rule;
	((struct count *)arg)->n++;
	return 0;
}

static int
on_at(size_t rule, unsigned long long end, void *arg)
{
	(void)rule;
	(void)end;
	((struct count *)arg)->n++;
	return 0;
}

/* scan_body - one pass over the body's lines; hits counted.  screen:
 * screen first, scan lines only when it reported anything (the plugin
 * scans only the reported lines; here none is). */
static size_t
scan_body(const struct rules *r, struct rules_matcher *m, struct rules_hs *h,
    const char *body, size_t len, int screen)
{
	const char *p = body, *end = body + len, *nl;
	struct count c = { 0 };

	if (screen) {
		size_t lines = 0;

		if (rules_hs_screen(h, body, len, on_at, &c) < 0)
			exit(1);
		if (c.n == 0) {
			/* The plugin still cuts the body into lines. */
			for (; p < end; p = nl + 1, lines++)
				if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
					nl = end;
			return lines == 0;
		}
		c.n = 0;
	}
	for (; p < end; p = nl + 1) {
		size_t n;

		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		n = (size_t)(nl - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (h != NULL) {
			rules_hs_scan(h, RULE_BODY, p, n, on_hit, &c, NULL);
			continue;
		}
		for (size_t k = 0; k < r->count[RULE_BODY]; k++)
			c.n += rules_match(m, &r->v[r->idx[RULE_BODY][k]], p, n, 0,
			    NULL) == 1;
	}
	return c.n;
}

/* run - MB/s of one path over at least secs seconds */
static double
run(const struct rules *r, struct rules_matcher *m, struct rules_hs *h,
    const char *body, size_t len, double secs, int screen, size_t *hits)
{
	double t0 = now(), t;
	size_t bytes = 0;

	*hits = scan_body(r, m, h, body, len, screen);	/* warm up */
	do {
		for (int i = 0; i < 20; i++) {
			scan_body(r, m, h, body, len, screen);
			bytes += len;
		}
		t = now() - t0;
	} while (t < secs);
	return (double)bytes / t / 1e6;
}

int
main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : SMTPHOOK_SOURCE_DIR
	    "/plugins/spamfilter/default.rules";
	double secs = argc > 2 ? atof(argv[2]) : 2.0, old, new, scr = 0;
	char err[RULES_ERR_MAX];
	struct rules *r;
	struct rules_hs *h;
	struct rules_matcher *m;
	size_t len, hits_old, hits_new, hits_scr = 0;
	char *body = make_body(&len);

	if (rules_load(path, 0, &r, err, sizeof(err)) < 0 ||
	    rules_hs_build(r, &h, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_spamfilter: %s\n", err);
		return 2;
	}
	if ((m = rules_matcher_new(RULES_MATCH_LIMIT, RULES_DEPTH_LIMIT)) == NULL)
		return 1;
	printf("%s: %zu body rules (%zu JIT), Hyperscan: %zu exact, %zu "
	    "prefilter, %zu PCRE2 only (all classes)\n", path,
	    r->count[RULE_BODY], r->njit, h->nexact, h->npre, h->npcre);
	printf("body %zu octets\n", len);
	old = run(r, m, NULL, body, len, secs, 0, &hits_old);
	new = run(r, m, h, body, len, secs, 0, &hits_new);
	if (h->c[RULE_BODY].screen != NULL)
		scr = run(r, m, h, body, len, secs, 1, &hits_scr);
	printf("pcre2 (per rule per line): %8.1f MB/s per core\n", old);
	printf("hs per line:               %8.1f MB/s per core (%.1fx)\n", new,
	    new / old);
	if (h->c[RULE_BODY].screen != NULL)
		printf("hs screened (the plugin):  %8.1f MB/s per core (%.1fx)\n",
		    scr, scr / old);
	else
		printf("hs screened: no screen for these rules\n");
	if (hits_old != hits_new || hits_old != hits_scr) {
		fprintf(stderr, "bench_spamfilter: hits differ: %zu, %zu, %zu\n",
		    hits_old, hits_new, hits_scr);
		return 1;
	}
	rules_matcher_free(m);
	rules_hs_free(h);
	rules_free(r);
	free(body);
	return 0;
}
