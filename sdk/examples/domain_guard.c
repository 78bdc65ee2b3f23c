/*
 * domain_guard.c - the example plugin of docs/plugin-guide.md
 *
 * Accepts recipients only in the domains given with domains=a.example;b.example,
 * slows down clients that try other domains (a non-blocking tarpit built
 * on PENDING and a libev timer), disconnects a client after max_bad=N
 * refused recipients, and stamps accepted messages with a header.
 *
 *	smtphookd -p build/examples/domain_guard.so:domains=example.org,tarpit=0.5 -p sink
 *
 * Arguments are parsed with the SDK helpers (sh_helpers.h, linked into
 * every plugin the build makes; libsmtphook-helpers.a out of tree), so they read like every
 * other plugin's: lists split by sh_list_next(), domains checked by
 * sh_domain_check() and compared by sh_domain_match() (ASCII case-
 * insensitive, "*.example.org" for sub-domains), numbers by
 * sh_parse_uint() and sh_parse_seconds().  A bad value stops the daemon
 * with one line that names the argument and says what was expected.
 *
 * Out of tree, against an installed SDK (docs/plugin-guide.md, step 0):
 *	cc -std=c11 -Wall -Wextra -Werror -O2 -fPIC -shared -fvisibility=hidden \
 *	    -Wl,-z,defs domain_guard.c $(pkg-config --cflags --libs smtphook) \
 *	    -lev -o domain_guard.so
 */
/*
 * strdup() is POSIX, not ISO C: under -std=c11 <string.h> declares it
 * only when asked, and an undeclared strdup() is taken to return int,
 * which cuts the pointer in half on 64-bit machines.  Ask for POSIX
 * before the first #include (smtphook's headers themselves need only
 * ISO C).
 */
#define _POSIX_C_SOURCE 200809L

#include <ev.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sh_helpers.h>
#include <smtphook.h>

#define TARPIT_MAX	60.0	/* seconds; the host's timeout= is 30 by default */
#define MAX_BAD_MAX	1000

/* Plugin-wide settings, parsed once in init. */
struct guard {
	char *domains;		/* ";"-separated, as given (checked in init) */
	double tarpit;		/* seconds to delay a refusal; 0: none */
	uint64_t max_bad;	/* refusals before we hang up */
};

/* Per-connection state. */
struct guard_conn {
	unsigned bad;		/* refused recipients so far */
	ev_timer timer;		/* the tarpit delay, when one runs */
	sh_pending pending;	/* the verdict the timer will deliver */
	struct ev_loop *loop;
};

static const char *const guard_keys[] = { "domains", "tarpit", "max_bad", NULL };

/* domain_allowed - does domain match an item of the ";"-separated list? */
static int
domain_allowed(const struct guard *g, const char *domain)
{
	const char *cur = g->domains, *item;
	size_t len, n = strlen(domain);

	while ((item = sh_list_next(&cur, ';', &len)) != NULL)
		if (sh_domain_match(item, len, domain, n))
			return 1;
	return 0;
}

/* check_domains - 0 when every item of list is a domain or *.domain,
 * else -1 with the reason set */
static int
check_domains(sh_ctx *ctx, const char *list)
{
	const char *cur = list, *item;
	size_t len;

	if (list[0] == '\0') {
		sh_error(ctx, "domains= is required (e.g. domains=example.org;example.net)");
		return -1;
	}
	while ((item = sh_list_next(&cur, ';', &len)) != NULL) {
		if (sh_domain_check(item, len, SH_DOMAIN_WILDCARD) < 0) {
			sh_error(ctx, "domains: '%.*s' is not a domain or *.domain "
			    "pattern (list them ';'-separated)", (int)len, item);
			return -1;
		}
	}
	return 0;
}

static void
guard_free(struct guard *g)
{
	if (g == NULL)
		return;
	free(g->domains);
	free(g);
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
		const char *k = args[i].key, *v = args[i].value;

		if (strcmp(k, "domains") == 0) {
			if (check_domains(ctx, v) < 0)
				goto fail;
			free(g->domains);
			if ((g->domains = strdup(v)) == NULL) {
				sh_error(ctx, "out of memory");
				goto fail;
			}
		} else if (strcmp(k, "tarpit") == 0) {
			if (sh_parse_seconds(v, TARPIT_MAX, &g->tarpit) < 0) {
				sh_error(ctx, "tarpit=%s: expected seconds from 0 to "
				    "%.0f, such as 0.5", v, TARPIT_MAX);
				goto fail;
			}
		} else if (strcmp(k, "max_bad") == 0) {
			if (sh_parse_uint(v, MAX_BAD_MAX, &g->max_bad) < 0) {
				sh_error(ctx, "max_bad=%s: expected a number of "
				    "recipients from 0 to %d", v, MAX_BAD_MAX);
				goto fail;
			}
		}
	}
	if (g->domains == NULL) {
		sh_error(ctx, "domains= is required (e.g. domains=example.org;example.net)");
		goto fail;
	}
	sh_plugin_set(ctx, g);		/* reachable from every hook */
	return 0;
fail:
	guard_free(g);
	return -1;			/* smtphookd prints the reason, exits 2 */
}

static void
guard_fini(sh_ctx *ctx)
{
	guard_free(sh_plugin_get(ctx));
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

	/* -1 only when the message's budget for added headers is used up:
	 * worth a line in the log, not a refused message. */
	if (sh_add_header(ctx, "X-Domain-Guard", tx->nrcpts == 1 ?
	    "1 recipient checked" : "recipients checked") < 0)
		sh_log(ctx, SH_LOG_WARN, "could not add X-Domain-Guard");
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
