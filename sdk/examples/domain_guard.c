/*
 * domain_guard.c - the example plugin of docs/plugin-guide.md
 *
 * Accepts recipients only in the domains given with domains=a.example;b.example,
 * slows down clients that try other domains (a non-blocking tarpit built
 * on PENDING and a libev timer), disconnects a client after max_bad=N
 * refused recipients, and stamps accepted messages with a header.
 *
 *	smtphookd -p build/examples/domain_guard.so:domains=example.org,tarpit=0.5 -p sink
 */
#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <smtphook.h>

/* Plugin-wide settings, parsed once in init. */
struct guard {
	char *domains;		/* ";"-separated, as given */
	double tarpit;		/* seconds to delay a refusal; 0: none */
	unsigned max_bad;	/* refusals before we hang up */
};

/* Per-connection state. */
struct guard_conn {
	unsigned bad;		/* refused recipients so far */
	ev_timer timer;		/* the tarpit delay, when one runs */
	sh_pending pending;	/* the verdict the timer will deliver */
	struct ev_loop *loop;
};

static const char *const guard_keys[] = { "domains", "tarpit", "max_bad", NULL };

/* domain_allowed - is domain one of the ";"-separated list? */
static int
domain_allowed(const struct guard *g, const char *domain)
{
	size_t n = strlen(domain);
	const char *p = g->domains;

	while (*p != '\0') {
		const char *end = strchr(p, ';');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		if (len == n && strncasecmp(p, domain, n) == 0)
			return 1;
		p += len + (end != NULL);
	}
	return 0;
}

static int
guard_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct guard *g = calloc(1, sizeof(*g));
	size_t i;

	if (g == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	g->max_bad = 5;
	for (i = 0; i < nargs; i++) {
		if (strcmp(args[i].key, "domains") == 0) {
			free(g->domains);
			g->domains = strdup(args[i].value);
		} else if (strcmp(args[i].key, "tarpit") == 0) {
			g->tarpit = atof(args[i].value);
		} else if (strcmp(args[i].key, "max_bad") == 0) {
			g->max_bad = (unsigned)atoi(args[i].value);
		}
	}
	if (g->domains == NULL || g->domains[0] == '\0') {
		sh_error(ctx, "domains= is required (e.g. domains=example.org;example.net)");
		free(g->domains);
		free(g);
		return -1;
	}
	sh_plugin_set(ctx, g);
	return 0;
}

static void
guard_fini(sh_ctx *ctx)
{
	struct guard *g = sh_plugin_get(ctx);

	free(g->domains);
	free(g);
}

/* guard_conn_free - destructor of the per-connection state */
static void
guard_conn_free(void *data)
{
	struct guard_conn *gc = data;

	/* A watcher must be stopped before its memory goes. */
	if (gc->loop != NULL)
		ev_timer_stop(gc->loop, &gc->timer);
	free(gc);
}

/* tarpit_done - the delay is over: deliver the refusal */
static void
tarpit_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct guard_conn *gc = w->data;

	(void)loop, (void)revents;
	sh_resume(gc->pending, SH_REJECT, 550, "5.7.1",
	    "Recipient domain not served here");
}

/* tarpit_cancel - the host gave up (client gone, or timeout=) */
static void
tarpit_cancel(void *arg)
{
	struct guard_conn *gc = arg;

	ev_timer_stop(gc->loop, &gc->timer);
}

static sh_verdict
guard_rcpt(sh_ctx *ctx, const sh_address *rcpt)
{
	struct guard *g = sh_plugin_get(ctx);
	struct guard_conn *gc = sh_conn_get(ctx);

	if (domain_allowed(g, rcpt->domain))
		return SH_CONTINUE;		/* no objection; later plugins decide */
	if (gc == NULL) {
		if ((gc = calloc(1, sizeof(*gc))) == NULL)
			return sh_tempfail(ctx, 451, "4.3.0", "Out of memory");
		sh_conn_set(ctx, gc, guard_conn_free);
	}
	if (++gc->bad > g->max_bad) {
		sh_reply(ctx, 421, "4.7.0", "Too many invalid recipients");
		return SH_DISCONNECT;
	}
	sh_log(ctx, SH_LOG_INFO, "refusing recipient in domain %s", rcpt->domain);
	if (g->tarpit <= 0)
		return sh_reject(ctx, 550, "5.7.1", "Recipient domain not served here");
	/* Delay the refusal without blocking the loop. */
	gc->loop = sh_loop(ctx);
	gc->pending = sh_pend(ctx, tarpit_cancel, gc);
	ev_timer_init(&gc->timer, tarpit_done, g->tarpit, 0);
	gc->timer.data = gc;
	ev_timer_start(gc->loop, &gc->timer);
	return SH_PENDING;
}

static sh_verdict
guard_eom(sh_ctx *ctx)
{
	const sh_tx_info *tx = sh_tx(ctx);

	sh_add_header(ctx, "X-Domain-Guard", tx->nrcpts == 1 ? "1 recipient checked" :
	    "recipients checked");
	return SH_CONTINUE;			/* a storing plugin accepts */
}

SH_PLUGIN_DEFINE(
	.name = "domain_guard",
	.version = "1.0",
	.arg_keys = guard_keys,
	.init = guard_init,
	.fini = guard_fini,
	.rcpt = guard_rcpt,
	.eom = guard_eom,
);
