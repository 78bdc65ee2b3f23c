/*
 * metrics.c - plugin metrics kept in memory (see metrics.h)
 *
 * Owns the per plugin x hook statistics and the counters plugins
 * register; never reads a clock, starts a timer or knows a session.
 * Each counter is its own allocation, held in a fixed per-plugin array
 * of pointers: a pool thread may hold a counter's address for as long as
 * the plugin runs, so no counter ever moves (no realloc of an array of
 * counters).  Registration and every read except a counter's value run
 * on the loop thread; the value is the only shared word, and relaxed
 * atomics suffice because nothing is ordered by it: readers want the
 * total, not a happens-before.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

struct sh_counter {
	struct sh_counter_head head;	/* first: sh_counter_add() calls add_ */
	char name[METRICS_NAME_MAX + 1];
	char help[METRICS_HELP_MAX + 1];
	size_t plugin;
	_Atomic uint64_t value;
};

#define SHOWN_NAME_MAX 64	/* octets of a name in lines and errors */

static const char *const hook_names[METRICS_NHOOKS] = {
	[SH_HOOK_CONNECT] = "connect", [SH_HOOK_HELO] = "helo",
	[SH_HOOK_AUTH] = "auth", [SH_HOOK_MAIL] = "mail",
	[SH_HOOK_RCPT] = "rcpt", [SH_HOOK_DATA] = "data",
	[SH_HOOK_HEADER] = "header", [SH_HOOK_CHUNK] = "chunk",
	[SH_HOOK_EOM] = "eom", [SH_HOOK_VRFY] = "vrfy",
	[SH_HOOK_EXPN] = "expn", [METRICS_HOOK_RESET] = "reset",
	[METRICS_HOOK_DISCONNECT] = "disconnect",
};

int
metrics_init(struct metrics *m, size_t nplugins)
{
	memset(m, 0, sizeof(*m));
	if (nplugins == 0)
		return 0;
	if (nplugins > SIZE_MAX / METRICS_NHOOKS)
		return -1;
	m->hooks = calloc(nplugins * METRICS_NHOOKS, sizeof(*m->hooks));
	m->plugins = calloc(nplugins, sizeof(*m->plugins));
	if (m->hooks == NULL || m->plugins == NULL) {
		metrics_free(m);
		return -1;
	}
	m->nplugins = nplugins;
	return 0;
}

void
metrics_free(struct metrics *m)
{
	size_t i, k;

	for (i = 0; i < m->nplugins; i++)
		for (k = 0; k < m->plugins[i].ncounters; k++)
			free(m->plugins[i].counters[k]);
	free(m->hooks);
	free(m->plugins);
	memset(m, 0, sizeof(*m));
}

const char *
metrics_hook_name(unsigned hook)
{
	return hook < METRICS_NHOOKS ? hook_names[hook] : "?";
}

/* stats - the slot of plugin x hook, or NULL out of range */
static struct hook_stats *
stats(const struct metrics *m, size_t plugin, unsigned hook)
{
	if (plugin >= m->nplugins || hook >= METRICS_NHOOKS)
		return NULL;
	return &m->hooks[plugin * METRICS_NHOOKS + hook];
}

void
metrics_hook_call(struct metrics *m, size_t plugin, unsigned hook,
    sh_verdict v, uint64_t ns, int stalled)
{
	struct hook_stats *h = stats(m, plugin, hook);

	if (h == NULL)
		return;
	h->calls++;
	h->time_ns += ns;
	if (stalled)
		h->stalls++;
	if (hook >= SH_HOOK_COUNT_V1)
		return;		/* a notification has no verdict */
	if (v == SH_PENDING)
		h->pendings++;
	else if ((unsigned)v < METRICS_NVERDICTS)
		h->verdicts[v]++;
}

void
metrics_hook_settled(struct metrics *m, size_t plugin, unsigned hook,
    sh_verdict v, uint64_t pending_ns, int timed_out)
{
	struct hook_stats *h = stats(m, plugin, hook);

	if (h == NULL || hook >= SH_HOOK_COUNT_V1)
		return;
	h->pending_ns += pending_ns;
	if (timed_out)
		h->timeouts++;
	if ((unsigned)v < METRICS_NVERDICTS)
		h->verdicts[v]++;
}

const struct hook_stats *
metrics_hook(const struct metrics *m, size_t plugin, unsigned hook)
{
	return stats(m, plugin, hook);
}

/* shown - s for a line or an error: octets outside '!'..'~' become '?'
 * (a name with a blank or a newline would break the key=value line),
 * cut at SHOWN_NAME_MAX */
static const char *
shown(const char *s, char out[SHOWN_NAME_MAX + 1])
{
	size_t i;

	if (s == NULL)
		s = "?";
	for (i = 0; i < SHOWN_NAME_MAX && s[i] != '\0'; i++)
		out[i] = s[i] > ' ' && s[i] <= '~' ? s[i] : '?';
	out[i] = '\0';
	return out;
}

/* name_ok - a Prometheus metric name without ':' (colons are for
 * recording rules): [a-zA-Z_][a-zA-Z0-9_]* */
static int
name_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '_' || (i > 0 && c >= '0' && c <= '9')))
			return 0;
	}
	return i > 0;
}

/* help_ok - printable ASCII: the help text ends up on one line */
static int
help_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < ' ' || *s > '~')
			return 0;
	return 1;
}

sh_counter *
metrics_counter_register(struct metrics *m, size_t plugin,
    const char *plugin_name, const char *name, const char *help, char *err,
    size_t errsize)
{
	char pn[SHOWN_NAME_MAX + 1], cn[SHOWN_NAME_MAX + 1];
	struct metrics_plugin *mp = NULL;
	const char *why = NULL;
	sh_counter *c = NULL;
	size_t k;

	if (help == NULL)
		help = "";
	if (plugin >= m->nplugins)
		why = "no such plugin";
	else if (name == NULL || !name_ok(name))
		why = "name must match [a-zA-Z_][a-zA-Z0-9_]*";
	else if (strlen(name) > METRICS_NAME_MAX)
		why = "name longer than 63 octets";
	else if (!help_ok(help))
		why = "help text must be printable ASCII";
	else if (strlen(help) > METRICS_HELP_MAX)
		why = "help text longer than 159 octets";
	if (why == NULL) {
		mp = &m->plugins[plugin];
		for (k = 0; k < mp->ncounters; k++)
			if (strcmp(mp->counters[k]->name, name) == 0)
				why = "name already registered by this plugin";
		if (why == NULL && mp->ncounters == METRICS_COUNTERS_MAX)
			why = "limit of 64 counters per plugin reached";
		if (why == NULL && (c = calloc(1, sizeof(*c))) == NULL)
			why = "out of memory";
	}
	if (why != NULL) {
		snprintf(err, errsize, "plugin %s: counter %s: %s",
		    shown(plugin_name, pn), shown(name, cn), why);
		return NULL;
	}
	c->head.add_ = metrics_counter_add;
	memcpy(c->name, name, strlen(name) + 1);
	memcpy(c->help, help, strlen(help) + 1);
	c->plugin = plugin;
	atomic_init(&c->value, 0);
	mp->counters[mp->ncounters++] = c;
	return c;
}

void
metrics_counter_add(sh_counter *c, uint64_t n)
{
	if (c != NULL)
		atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

int
metrics_counter_at(const struct metrics *m, size_t plugin, size_t k,
    struct metrics_counter_view *out)
{
	sh_counter *c;

	if (plugin >= m->nplugins || k >= m->plugins[plugin].ncounters)
		return -1;
	c = m->plugins[plugin].counters[k];
	out->name = c->name;
	out->help = c->help;
	out->value = atomic_load_explicit(&c->value, memory_order_relaxed);
	return 0;
}

sh_counter *
metrics_api_counter_register(struct metrics *m, size_t plugin,
    const char *plugin_name, int in_init, const char *name, const char *help)
{
	char err[256], pn[SHOWN_NAME_MAX + 1], cn[SHOWN_NAME_MAX + 1];
	sh_counter *c;

	if (!in_init) {
		log_msg(LOG_ERROR, "plugin %s: counter %s: sh_counter_register() "
		    "outside init ignored", shown(plugin_name, pn), shown(name, cn));
		return NULL;
	}
	c = metrics_counter_register(m, plugin, plugin_name, name, help, err,
	    sizeof(err));
	if (c == NULL)
		log_msg(LOG_ERROR, "%s", err);
	return c;
}

/* ms - ns as milliseconds with three decimals, cut (integer arithmetic:
 * the same text on every platform, and no float rounding to test) */
static void
ms(char *out, size_t size, uint64_t ns)
{
	snprintf(out, size, "%" PRIu64 ".%03" PRIu64, ns / 1000000,
	    ns / 1000 % 1000);
}

void
metrics_each_line(const struct metrics *m, const char *const *plugin_names,
    void (*fn)(void *arg, const char *line), void *arg)
{
	char line[METRICS_LINE_MAX], pn[SHOWN_NAME_MAX + 1];
	char t[32], pt[32];
	size_t i, k;
	unsigned hook;

	for (i = 0; i < m->nplugins; i++) {
		struct metrics_counter_view v;

		shown(plugin_names != NULL ? plugin_names[i] : NULL, pn);
		for (hook = 0; hook < METRICS_NHOOKS; hook++) {
			const struct hook_stats *h = stats(m, i, hook);
			const uint64_t *vd = h->verdicts;

			if (h->calls == 0)
				continue;
			ms(t, sizeof(t), h->time_ns);
			ms(pt, sizeof(pt), h->pending_ns);
			/* Keys in sh_verdict order: CONTINUE .. DISCONNECT. */
			snprintf(line, sizeof(line), "plugin=%s hook=%s calls=%" PRIu64
			    " continue=%" PRIu64 " accept=%" PRIu64 " reject=%" PRIu64
			    " tempfail=%" PRIu64 " disconnect=%" PRIu64
			    " pendings=%" PRIu64 " timeouts=%" PRIu64 " stalls=%" PRIu64
			    " time_ms=%s pending_ms=%s", pn, hook_names[hook], h->calls,
			    vd[SH_CONTINUE], vd[SH_ACCEPT], vd[SH_REJECT],
			    vd[SH_TEMPFAIL], vd[SH_DISCONNECT], h->pendings,
			    h->timeouts, h->stalls, t, pt);
			fn(arg, line);
		}
		for (k = 0; metrics_counter_at(m, i, k, &v) == 0; k++) {
			snprintf(line, sizeof(line), "plugin=%s counter=%s value=%"
			    PRIu64, pn, v.name, v.value);
			fn(arg, line);
		}
	}
}

/* log_line - metrics_each_line() callback of metrics_log() */
static void
log_line(void *arg, const char *line)
{
	(void)arg;
	log_msg(LOG_DEBUG, "metrics: %s", line);
}

void
metrics_log(const struct metrics *m, const char *const *plugin_names)
{
	if (log_enabled(LOG_DEBUG))
		metrics_each_line(m, plugin_names, log_line, NULL);
}

struct render_buf {
	char *buf;
	size_t size, len;	/* len: the whole text, written or not */
	int full;		/* a line did not fit: write no more */
};

/* render_line - append line and '\n' if it fits whole, else stop */
static void
render_line(void *arg, const char *line)
{
	struct render_buf *r = arg;
	size_t n = strlen(line);

	if (!r->full && r->size > 0 && r->len + n + 1 < r->size) {
		memcpy(r->buf + r->len, line, n);
		r->buf[r->len + n] = '\n';
		r->buf[r->len + n + 1] = '\0';
	} else
		r->full = 1;
	r->len += n + 1;
}

size_t
metrics_render(const struct metrics *m, const char *const *plugin_names,
    char *buf, size_t bufsize)
{
	struct render_buf r = { .buf = buf, .size = bufsize };

	if (bufsize > 0)
		buf[0] = '\0';
	metrics_each_line(m, plugin_names, render_line, &r);
	return r.len;
}
