/*
 * test_metrics.c - unit tests for server/metrics.c
 *
 * Registration rules at each limit and one past it, concurrent adds
 * through the SDK wrapper (which reaches the host only through the
 * counter's sh_counter_head), the hook accounting field by field, the
 * exact text form, and metrics_render() at every buffer size between
 * 0 and the whole text with guard octets behind the buffer.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

/* reg - register, asserting nothing; err gets the reason */
static sh_counter *
reg(struct metrics *m, size_t plugin, const char *name, const char *help,
    char *err, size_t errsize)
{
	err[0] = '\0';
	return metrics_counter_register(m, plugin, "p", name, help, err, errsize);
}

/* filled - a string of n copies of c (static buffer, n < 1024) */
static const char *
filled(char c, size_t n)
{
	static char buf[1024];

	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/* ================================================================== */
/* init / free                                                        */
/* ================================================================== */

Test(metrics, init_free)
{
	struct metrics m;

	cr_assert_eq(metrics_init(&m, 0), 0, "no plugins is fine");
	cr_assert_null(metrics_hook(&m, 0, 0));
	metrics_free(&m);
	cr_assert_eq(metrics_init(&m, SIZE_MAX), -1, "overflow is ENOMEM");
	cr_assert_null(m.hooks);
	cr_assert_eq(m.nplugins, 0);
	metrics_free(&m);	/* nothing to free, harmless */
	cr_assert_eq(metrics_init(&m, 3), 0);
	cr_assert_eq(m.nplugins, 3);
	cr_assert_not_null(metrics_hook(&m, 2, METRICS_HOOK_DISCONNECT));
	cr_assert_null(metrics_hook(&m, 3, 0), "plugin out of range");
	cr_assert_null(metrics_hook(&m, 0, METRICS_NHOOKS), "hook out of range");
	metrics_free(&m);
	cr_assert_eq(m.nplugins, 0);
	metrics_free(&m);	/* twice: harmless */
}

Test(metrics, hook_names)
{
	cr_assert_str_eq(metrics_hook_name(SH_HOOK_CONNECT), "connect");
	cr_assert_str_eq(metrics_hook_name(SH_HOOK_EOM), "eom");
	cr_assert_str_eq(metrics_hook_name(SH_HOOK_EXPN), "expn");
	cr_assert_str_eq(metrics_hook_name(METRICS_HOOK_RESET), "reset");
	cr_assert_str_eq(metrics_hook_name(METRICS_HOOK_DISCONNECT), "disconnect");
	cr_assert_str_eq(metrics_hook_name(METRICS_NHOOKS), "?");
	for (unsigned h = 0; h < METRICS_NHOOKS; h++)
		cr_assert(metrics_hook_name(h)[0] != '?', "hook %u has a name", h);
}

/* ================================================================== */
/* counter registration                                               */
/* ================================================================== */

Test(metrics, register_names)
{
	static const char *const bad[] = { "", "1abc", "a-b", "a:b", "a b",
	    "a.b", "caf\xc3\xa9", "tab\t", "x\n" };
	static const char *const good[] = { "a", "_", "A_1", "_9", "msgs_total",
	    "Z0123456789" };
	struct metrics m;
	char err[256];
	size_t i;

	cr_assert_eq(metrics_init(&m, 1), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_null(reg(&m, 0, bad[i], "h", err, sizeof(err)),
		    "bad name #%zu accepted", i);
		cr_assert(strstr(err, "must match") != NULL, "reason: %s", err);
		cr_assert(strchr(err, '\n') == NULL && strchr(err, '\t') == NULL,
		    "the reason is one line: %s", err);
	}
	cr_assert_null(reg(&m, 0, NULL, "h", err, sizeof(err)), "NULL name");
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert_not_null(reg(&m, 0, good[i], "h", err, sizeof(err)),
		    "good name %s refused: %s", good[i], err);
	cr_assert_eq(m.plugins[0].ncounters, sizeof(good) / sizeof(good[0]),
	    "refusals register nothing");
	metrics_free(&m);
}

Test(metrics, register_lengths)
{
	struct metrics m;
	char err[256];
	struct metrics_counter_view v;

	cr_assert_eq(metrics_init(&m, 1), 0);
	cr_assert_not_null(reg(&m, 0, filled('n', METRICS_NAME_MAX), "", err,
	    sizeof(err)), "63 octets: %s", err);
	cr_assert_null(reg(&m, 0, filled('o', METRICS_NAME_MAX + 1), "", err,
	    sizeof(err)));
	cr_assert(strstr(err, "longer than 63") != NULL, "%s", err);
	cr_assert_not_null(reg(&m, 0, "h159", filled('h', METRICS_HELP_MAX), err,
	    sizeof(err)), "159 octets of help: %s", err);
	cr_assert_null(reg(&m, 0, "h160", filled('h', METRICS_HELP_MAX + 1), err,
	    sizeof(err)));
	cr_assert(strstr(err, "longer than 159") != NULL, "%s", err);
	cr_assert_null(reg(&m, 0, "nl", "two\nlines", err, sizeof(err)));
	cr_assert(strstr(err, "printable") != NULL, "%s", err);
	cr_assert_null(reg(&m, 0, "hi", "caf\xc3\xa9", err, sizeof(err)));
	cr_assert_not_null(reg(&m, 0, "nohelp", NULL, err, sizeof(err)));

	cr_assert_eq(metrics_counter_at(&m, 0, 0, &v), 0);
	cr_assert_str_eq(v.name, filled('n', METRICS_NAME_MAX));
	cr_assert_str_eq(v.help, "");
	cr_assert_eq(metrics_counter_at(&m, 0, 1, &v), 0);
	cr_assert_str_eq(v.name, "h159");
	cr_assert_str_eq(v.help, filled('h', METRICS_HELP_MAX));
	cr_assert_eq(metrics_counter_at(&m, 0, 2, &v), 0);
	cr_assert_str_eq(v.name, "nohelp");
	cr_assert_str_eq(v.help, "", "NULL help is empty");
	cr_assert_eq(v.value, 0);
	cr_assert_eq(metrics_counter_at(&m, 0, 3, &v), -1, "only three");
	cr_assert_eq(metrics_counter_at(&m, 1, 0, &v), -1, "no plugin 1");
	metrics_free(&m);
}

Test(metrics, register_duplicates_and_plugins)
{
	struct metrics m;
	char err[256];
	sh_counter *a, *b;

	cr_assert_eq(metrics_init(&m, 2), 0);
	a = reg(&m, 0, "hits", "h", err, sizeof(err));
	cr_assert_not_null(a);
	cr_assert_null(reg(&m, 0, "hits", "other help", err, sizeof(err)));
	cr_assert(strstr(err, "already registered") != NULL, "%s", err);
	cr_assert_not_null(reg(&m, 0, "Hits", "h", err, sizeof(err)),
	    "names are case-sensitive");
	b = reg(&m, 1, "hits", "h", err, sizeof(err));
	cr_assert_not_null(b, "the same name in another plugin: %s", err);
	cr_assert_neq(a, b);
	cr_assert_null(reg(&m, 2, "hits", "h", err, sizeof(err)));
	cr_assert(strstr(err, "no such plugin") != NULL, "%s", err);
	metrics_counter_add(a, 3);
	metrics_counter_add(b, 5);
	{
		struct metrics_counter_view v;

		cr_assert_eq(metrics_counter_at(&m, 0, 0, &v), 0);
		cr_assert_eq(v.value, 3, "separate values");
		cr_assert_eq(metrics_counter_at(&m, 1, 0, &v), 0);
		cr_assert_eq(v.value, 5);
	}
	metrics_free(&m);
}

Test(metrics, register_limit)
{
	struct metrics m;
	char err[256], name[16];
	sh_counter *first[METRICS_COUNTERS_MAX];
	struct metrics_counter_view v;
	size_t k;

	cr_assert_eq(metrics_init(&m, 2), 0);
	for (k = 0; k < METRICS_COUNTERS_MAX; k++) {
		snprintf(name, sizeof(name), "c%zu", k);
		first[k] = reg(&m, 0, name, "h", err, sizeof(err));
		cr_assert_not_null(first[k], "counter %zu: %s", k, err);
		metrics_counter_add(first[k], k);
	}
	cr_assert_null(reg(&m, 0, "one_more", "h", err, sizeof(err)), "65th");
	cr_assert(strstr(err, "limit of 64") != NULL, "%s", err);
	cr_assert_not_null(reg(&m, 1, "one_more", "h", err, sizeof(err)),
	    "the limit is per plugin");
	/* Nothing moved or was overwritten while the table filled up. */
	for (k = 0; k < METRICS_COUNTERS_MAX; k++) {
		cr_assert_eq(metrics_counter_at(&m, 0, k, &v), 0);
		snprintf(name, sizeof(name), "c%zu", k);
		cr_assert_str_eq(v.name, name);
		cr_assert_eq(v.value, k);
		cr_assert_eq(m.plugins[0].counters[k], first[k]);
	}
	metrics_free(&m);
}

Test(metrics, register_error_text)
{
	struct metrics m;
	char err[256], tiny[12];

	cr_assert_eq(metrics_init(&m, 1), 0);
	cr_assert_null(metrics_counter_register(&m, 0, "spam filter", "bad\nname",
	    "h", err, sizeof(err)));
	cr_assert_str_eq(err, "plugin spam?filter: counter bad?name: name must "
	    "match [a-zA-Z_][a-zA-Z0-9_]*", "names shown on one line");
	memset(tiny, 'X', sizeof(tiny));
	cr_assert_null(metrics_counter_register(&m, 0, "p", "-", "h", tiny,
	    sizeof(tiny) - 1));
	cr_assert_eq(strlen(tiny), sizeof(tiny) - 2, "cut to the buffer");
	cr_assert_eq(tiny[sizeof(tiny) - 1], 'X', "no overrun");
	cr_assert_null(metrics_counter_register(&m, 0, "p",
	    filled('q', 200), "h", err, sizeof(err)));
	cr_assert(strstr(err, filled('q', 64)) != NULL, "%s", err);
	cr_assert(strstr(err, filled('q', 65)) == NULL, "name cut at 64: %s", err);
	metrics_free(&m);
}

/* api_register - metrics_api_counter_register with the log captured */
static sh_counter *
api_register(struct metrics *m, int in_init, const char *name, char *logbuf,
    size_t logsize)
{
	char path[] = "/tmp/test_metrics_log.XXXXXX";
	int fd = mkstemp(path);
	sh_counter *c;
	ssize_t n;

	cr_assert(fd >= 0);
	unlink(path);
	log_set_fd(fd);
	c = metrics_api_counter_register(m, 0, "pl", in_init, name, "h");
	log_set_fd(STDERR_FILENO);
	n = pread(fd, logbuf, logsize - 1, 0);
	logbuf[n > 0 ? n : 0] = '\0';
	close(fd);
	return c;
}

Test(metrics, api_register)
{
	struct metrics m;
	char logbuf[1024];

	cr_assert_eq(metrics_init(&m, 1), 0);
	cr_assert_not_null(api_register(&m, 1, "ok", logbuf, sizeof(logbuf)));
	cr_assert_str_eq(logbuf, "", "success is quiet");
	cr_assert_null(api_register(&m, 0, "later", logbuf, sizeof(logbuf)),
	    "outside init");
	cr_assert(strstr(logbuf, "plugin pl: counter later: sh_counter_register() "
	    "outside init") != NULL, "logged: %s", logbuf);
	cr_assert_eq(m.plugins[0].ncounters, 1, "nothing registered outside init");
	cr_assert_null(api_register(&m, 1, "ok", logbuf, sizeof(logbuf)));
	cr_assert(strstr(logbuf, "plugin pl: counter ok: name already registered")
	    != NULL, "logged: %s", logbuf);
	metrics_free(&m);
}

/* ================================================================== */
/* adds                                                               */
/* ================================================================== */

/* 4 x 1,000,000 adds (under 0.1 s): with 100,000 a non-atomic add lost
 * updates in only one run of three on two cores, with a million in five
 * of six; the correct add gives the exact total every time. */
#define ADD_THREADS 4
#define ADDS 1000000

struct adder {
	sh_counter *shared, *own;
	uint64_t step;
	pthread_barrier_t *start;
};

/* add_loop - what a pool job does: adds through the SDK wrapper, no ctx */
static void *
add_loop(void *arg)
{
	struct adder *a = arg;
	unsigned i;

	/* All start together, so the adds overlap and a lost update of a
	 * non-atomic add would show in the total. */
	pthread_barrier_wait(a->start);
	for (i = 0; i < ADDS; i++) {
		sh_counter_add(a->shared, a->step);
		sh_counter_add(a->own, 1);
	}
	return NULL;
}

Test(metrics, concurrent_adds)
{
	struct metrics m;
	struct adder a[ADD_THREADS];
	pthread_t t[ADD_THREADS];
	pthread_barrier_t start;
	struct metrics_counter_view v;
	char err[256], name[16];
	sh_counter *shared;
	uint64_t want = 0;
	size_t i;

	cr_assert_eq(pthread_barrier_init(&start, NULL, ADD_THREADS), 0);
	cr_assert_eq(metrics_init(&m, 1), 0);
	shared = reg(&m, 0, "shared", "h", err, sizeof(err));
	cr_assert_not_null(shared);
	for (i = 0; i < ADD_THREADS; i++) {
		snprintf(name, sizeof(name), "own%zu", i);
		a[i] = (struct adder){ .shared = shared, .step = i + 1,
		    .start = &start,
		    .own = reg(&m, 0, name, "h", err, sizeof(err)) };
		cr_assert_not_null(a[i].own);
		want += (i + 1) * (uint64_t)ADDS;
	}
	for (i = 0; i < ADD_THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, add_loop, &a[i]), 0);
	for (i = 0; i < ADD_THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&start);
	cr_assert_eq(metrics_counter_at(&m, 0, 0, &v), 0);
	cr_assert_eq(v.value, want, "shared total %llu, want %llu",
	    (unsigned long long)v.value, (unsigned long long)want);
	for (i = 0; i < ADD_THREADS; i++) {
		cr_assert_eq(metrics_counter_at(&m, 0, i + 1, &v), 0);
		cr_assert_eq(v.value, ADDS, "own counter %zu", i);
	}
	metrics_free(&m);
}

Test(metrics, add_null_and_wrap)
{
	struct metrics m;
	struct metrics_counter_view v;
	char err[256];
	sh_counter *c;

	sh_counter_add(NULL, 1);	/* both are no-ops, no crash */
	metrics_counter_add(NULL, 1);
	cr_assert_eq(metrics_init(&m, 1), 0);
	c = reg(&m, 0, "w", "h", err, sizeof(err));
	sh_counter_add(c, UINT64_MAX);
	sh_counter_add(c, 2);
	cr_assert_eq(metrics_counter_at(&m, 0, 0, &v), 0);
	cr_assert_eq(v.value, 1, "wraps at 2^64");
	sh_counter_add(c, 0);
	cr_assert_eq(metrics_counter_at(&m, 0, 0, &v), 0);
	cr_assert_eq(v.value, 1);
	metrics_free(&m);
}

/* ================================================================== */
/* hook accounting                                                    */
/* ================================================================== */

Test(metrics, hook_accounting)
{
	struct metrics m;
	const struct hook_stats *h;

	cr_assert_eq(metrics_init(&m, 2), 0);
	metrics_hook_call(&m, 1, SH_HOOK_RCPT, SH_CONTINUE, 100, 0);
	metrics_hook_call(&m, 1, SH_HOOK_RCPT, SH_ACCEPT, 200, 0);
	metrics_hook_call(&m, 1, SH_HOOK_RCPT, SH_REJECT, 300, 1);
	metrics_hook_call(&m, 1, SH_HOOK_RCPT, SH_TEMPFAIL, 400, 0);
	metrics_hook_call(&m, 1, SH_HOOK_RCPT, SH_DISCONNECT, 500, 0);
	metrics_hook_call(&m, 1, SH_HOOK_RCPT, SH_PENDING, 600, 0);
	metrics_hook_call(&m, 1, SH_HOOK_RCPT, SH_PENDING, 700, 0);
	metrics_hook_call(&m, 1, SH_HOOK_RCPT, SH_PENDING, 800, 0);
	metrics_hook_settled(&m, 1, SH_HOOK_RCPT, SH_REJECT, 5000, 0);
	metrics_hook_settled(&m, 1, SH_HOOK_RCPT, SH_TEMPFAIL, 30000, 1);
	/* the third pending was abandoned: no settle */
	metrics_hook_call(&m, 1, SH_HOOK_RCPT, (sh_verdict)9, 1, 0);

	h = metrics_hook(&m, 1, SH_HOOK_RCPT);
	cr_assert_not_null(h);
	cr_assert_eq(h->calls, 9);
	cr_assert_eq(h->verdicts[SH_CONTINUE], 1);
	cr_assert_eq(h->verdicts[SH_ACCEPT], 1);
	cr_assert_eq(h->verdicts[SH_REJECT], 2, "one at once, one settled");
	cr_assert_eq(h->verdicts[SH_TEMPFAIL], 2, "one at once, one by timeout");
	cr_assert_eq(h->verdicts[SH_DISCONNECT], 1);
	cr_assert_eq(h->pendings, 3, "PENDING is not a verdict");
	cr_assert_eq(h->timeouts, 1);
	cr_assert_eq(h->stalls, 1);
	cr_assert_eq(h->time_ns, 3601);
	cr_assert_eq(h->pending_ns, 35000);

	/* Nothing leaked into the neighbours. */
	h = metrics_hook(&m, 1, SH_HOOK_MAIL);
	cr_assert_eq(h->calls + h->pendings + h->time_ns, 0);
	h = metrics_hook(&m, 0, SH_HOOK_RCPT);
	cr_assert_eq(h->calls + h->pendings + h->time_ns, 0);
	metrics_free(&m);
}

Test(metrics, notifications_and_range)
{
	struct metrics m;
	const struct hook_stats *h;
	unsigned k;

	cr_assert_eq(metrics_init(&m, 1), 0);
	metrics_hook_call(&m, 0, METRICS_HOOK_RESET, SH_REJECT, 10, 0);
	metrics_hook_call(&m, 0, METRICS_HOOK_DISCONNECT, SH_PENDING, 20, 1);
	metrics_hook_settled(&m, 0, METRICS_HOOK_DISCONNECT, SH_ACCEPT, 99, 1);
	h = metrics_hook(&m, 0, METRICS_HOOK_RESET);
	cr_assert_eq(h->calls, 1);
	cr_assert_eq(h->time_ns, 10);
	h = metrics_hook(&m, 0, METRICS_HOOK_DISCONNECT);
	cr_assert_eq(h->calls, 1);
	cr_assert_eq(h->stalls, 1);
	for (k = 0; k < 2; k++) {
		h = metrics_hook(&m, 0, METRICS_HOOK_RESET + k);
		cr_assert_eq(h->pendings + h->timeouts + h->pending_ns, 0,
		    "notifications neither pend nor settle");
		for (unsigned v = 0; v < METRICS_NVERDICTS; v++)
			cr_assert_eq(h->verdicts[v], 0, "no verdicts for notifications");
	}
	/* Out of range: ignored, not written anywhere. */
	metrics_hook_call(&m, 1, SH_HOOK_EOM, SH_ACCEPT, 1, 1);
	metrics_hook_call(&m, 0, METRICS_NHOOKS, SH_ACCEPT, 1, 1);
	metrics_hook_settled(&m, 1, SH_HOOK_EOM, SH_ACCEPT, 1, 1);
	metrics_hook_settled(&m, 0, METRICS_NHOOKS, SH_ACCEPT, 1, 1);
	for (k = 0; k < METRICS_NHOOKS; k++) {
		h = metrics_hook(&m, 0, k);
		if (k < SH_HOOK_COUNT_V1)
			cr_assert_eq(h->calls, 0, "hook %u untouched", k);
	}
	metrics_free(&m);
}

/* ================================================================== */
/* text form                                                          */
/* ================================================================== */

/* A fixed scene and its exact text. */
static void
scene(struct metrics *m)
{
	char err[256];
	sh_counter *c;

	cr_assert_eq(metrics_init(m, 3), 0);
	metrics_hook_call(m, 0, SH_HOOK_EOM, SH_REJECT, 812345, 0);
	metrics_hook_call(m, 0, SH_HOOK_EOM, SH_PENDING, 1000, 0);
	metrics_hook_settled(m, 0, SH_HOOK_EOM, SH_ACCEPT, 1234567890, 0);
	metrics_hook_call(m, 0, SH_HOOK_CONNECT, SH_CONTINUE, 999, 1);
	metrics_hook_call(m, 0, METRICS_HOOK_DISCONNECT, SH_CONTINUE, 1000000, 0);
	c = metrics_counter_register(m, 0, "x", "spam_total", "Spam", err,
	    sizeof(err));
	sh_counter_add(c, 42);
	metrics_counter_register(m, 0, "x", "ham_total", NULL, err, sizeof(err));
	/* plugin 1: nothing at all, no lines */
	metrics_hook_call(m, 2, SH_HOOK_RCPT, SH_TEMPFAIL, 0, 0);
	c = metrics_counter_register(m, 2, "x", "spam_total", "", err, sizeof(err));
	sh_counter_add(c, UINT64_MAX);
}

static const char *const scene_names[] = { "spamfilter", "idle", "po licy\n" };

static const char scene_text[] =
    "plugin=spamfilter hook=connect calls=1 continue=1 accept=0 reject=0 "
    "tempfail=0 disconnect=0 pendings=0 timeouts=0 stalls=1 time_ms=0.000 "
    "pending_ms=0.000\n"
    "plugin=spamfilter hook=eom calls=2 continue=0 accept=1 reject=1 "
    "tempfail=0 disconnect=0 pendings=1 timeouts=0 stalls=0 time_ms=0.813 "
    "pending_ms=1234.567\n"
    "plugin=spamfilter hook=disconnect calls=1 continue=0 accept=0 reject=0 "
    "tempfail=0 disconnect=0 pendings=0 timeouts=0 stalls=0 time_ms=1.000 "
    "pending_ms=0.000\n"
    "plugin=spamfilter counter=spam_total value=42\n"
    "plugin=spamfilter counter=ham_total value=0\n"
    "plugin=po?licy? hook=rcpt calls=1 continue=0 accept=0 reject=0 "
    "tempfail=1 disconnect=0 pendings=0 timeouts=0 stalls=0 time_ms=0.000 "
    "pending_ms=0.000\n"
    "plugin=po?licy? counter=spam_total value=18446744073709551615\n";

Test(metrics, render_exact)
{
	struct metrics m;
	char buf[4096];
	size_t n;

	scene(&m);
	n = metrics_render(&m, scene_names, buf, sizeof(buf));
	cr_assert_str_eq(buf, scene_text);
	cr_assert_eq(n, strlen(scene_text));
	metrics_free(&m);
}

struct lines {
	char text[4096];
	size_t n, longest;
};

static void
collect(void *arg, const char *line)
{
	struct lines *l = arg;
	size_t len = strlen(line);

	cr_assert(strchr(line, '\n') == NULL, "a line has no newline");
	if (len > l->longest)
		l->longest = len;
	strncat(l->text, line, sizeof(l->text) - strlen(l->text) - 2);
	strcat(l->text, "\n");
	l->n++;
}

Test(metrics, each_line_and_names)
{
	struct metrics m;
	struct lines l = { .text = "" };
	const char *names[3] = { NULL, NULL, NULL };
	char buf[4096];
	char longname[200];

	scene(&m);
	metrics_each_line(&m, scene_names, collect, &l);
	cr_assert_str_eq(l.text, scene_text, "the same lines as render");
	cr_assert_eq(l.n, 7);

	metrics_render(&m, NULL, buf, sizeof(buf));
	cr_assert(strncmp(buf, "plugin=? hook=connect ", 22) == 0, "%s", buf);
	memset(longname, 'L', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	names[0] = longname;
	metrics_render(&m, names, buf, sizeof(buf));
	cr_assert(strncmp(buf + 7, filled('L', 64), 64) == 0 &&
	    buf[7 + 64] == ' ', "name cut at 64: %.90s", buf);
	cr_assert(strstr(buf, "plugin=? counter=spam_total") != NULL,
	    "a NULL entry is ?");
	metrics_free(&m);
}

Test(metrics, line_max)
{
	struct metrics m;
	struct lines l = { .text = "" };
	const char *names[1];
	char err[256];
	struct hook_stats *h;
	unsigned k;

	/* Every number at its widest, the longest hook and plugin name. */
	cr_assert_eq(metrics_init(&m, 1), 0);
	h = &m.hooks[METRICS_HOOK_DISCONNECT];	/* plugin 0's row */
	h->calls = h->pendings = h->timeouts = h->stalls = UINT64_MAX;
	h->time_ns = h->pending_ns = UINT64_MAX;
	for (k = 0; k < METRICS_NVERDICTS; k++)
		h->verdicts[k] = UINT64_MAX;
	metrics_counter_register(&m, 0, "x", filled('c', METRICS_NAME_MAX), "",
	    err, sizeof(err));
	names[0] = filled('n', 100);
	metrics_each_line(&m, names, collect, &l);
	cr_assert_eq(l.n, 2);
	cr_assert(strstr(l.text, "pending_ms=18446744073709.551\n") != NULL,
	    "the widest line is whole (%zu octets): %s", l.longest, l.text);
	cr_assert_lt(l.longest, METRICS_LINE_MAX);
	metrics_free(&m);
}

Test(metrics, render_truncation)
{
	struct metrics m;
	size_t full = strlen(scene_text), size, n;
	enum { GUARD = 16 };
	char *buf;

	scene(&m);
	buf = malloc(full + 2 + GUARD);
	cr_assert_not_null(buf);
	for (size = 0; size <= full + 1; size++) {
		memset(buf, '#', full + 2 + GUARD);
		n = metrics_render(&m, scene_names, buf, size);
		cr_assert_eq(n, full, "size %zu: the whole length", size);
		for (size_t g = size; g < size + GUARD; g++)
			cr_assert_eq(buf[g], '#', "size %zu: overrun at %zu", size, g);
		if (size == 0)
			continue;
		size_t len = strlen(buf);	/* NUL-terminated inside */
		cr_assert_lt(len, size);
		cr_assert(strncmp(buf, scene_text, len) == 0, "size %zu: a prefix",
		    size);
		cr_assert(len == 0 || buf[len - 1] == '\n', "size %zu: whole lines",
		    size);
		/* as many whole lines as fit: the next one would not */
		if (len < full) {
			const char *next = strchr(scene_text + len, '\n');

			cr_assert((size_t)(next - scene_text) + 1 >= size,
			    "size %zu: a line that fit was left out", size);
		}
	}
	cr_assert_str_eq(buf, scene_text, "full + 1 holds it all");
	n = metrics_render(&m, scene_names, NULL, 0);
	cr_assert_eq(n, full, "NULL, 0 measures");
	free(buf);
	metrics_free(&m);
}

Test(metrics, log_lines)
{
	char path[] = "/tmp/test_metrics_log.XXXXXX";
	char buf[4096];
	struct metrics m;
	int fd = mkstemp(path);
	ssize_t n;

	cr_assert(fd >= 0);
	unlink(path);
	scene(&m);
	log_set_fd(fd);
	log_setup(LOG_FORMAT_TEXT, 0);
	metrics_log(&m, scene_names);
	cr_assert_eq(lseek(fd, 0, SEEK_END), 0, "quiet without -v");
	log_setup(LOG_FORMAT_TEXT, 1);
	metrics_log(&m, scene_names);
	log_setup(LOG_FORMAT_TEXT, 0);
	log_set_fd(STDERR_FILENO);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	cr_assert(strstr(buf, "metrics: plugin=spamfilter hook=eom calls=2 ") != NULL,
	    "%s", buf);
	cr_assert(strstr(buf, "metrics: plugin=po?licy? counter=spam_total "
	    "value=18446744073709551615") != NULL, "%s", buf);
	metrics_free(&m);
}
