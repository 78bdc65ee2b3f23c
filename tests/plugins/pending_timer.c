/*
 * pending_timer.c - test plugin for PENDING resolved on the loop
 *
 * ABI feature: sh_pend() / SH_PENDING / sh_resume() completed by a libev
 * timer on the host's loop (sh_loop), the cancel callback (the client
 * went away or timeout= expired: stop the timer), and resume-before-
 * return (sync=1).
 *
 * Arguments:
 *	hook=connect|helo|mail|rcpt|data|header|chunk|eom|vrfy	(required)
 *	delay=SECONDS	when the timer resumes (default 1; fractions ok)
 *	verdict=continue|accept|reject|tempfail|disconnect (default continue)
 *	code=NNN, enh=X.Y.Z, text=TEXT	the reply given to sh_resume()
 *	sync=yes|1	call sh_resume() inside the hook, before returning
 *			SH_PENDING (no timer)
 *	times=N		pend only for the first N calls of the hook in
 *			the daemon's life (default: every call)
 *
 * Logs: "pending_timer: pend HOOK" through sh_log in the hook; the timer
 * and cancel callbacks have no context and write to stderr:
 *	"pending_timer: resumed HOOK rc=R again=A"
 * (A: the result of a second sh_resume() on the same token, must be -1)
 *	"pending_timer: cancelled HOOK"
 */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_plugin.h"

struct pt_conf {
	const char *hook;	/* static (tp_hook_name) */
	double delay;
	sh_verdict verdict;
	uint64_t code;
	char *enh;
	char *text;
	int sync;
	int64_t times;		/* < 0: unlimited */
};

/* One pending verdict: owned by the timer until it fires or is cancelled. */
struct pt_wait {
	ev_timer timer;
	struct ev_loop *loop;
	sh_pending token;
	const struct pt_conf *conf;
};

static const char *const pt_keys[] = { "hook", "delay", "verdict", "code",
	"enh", "text", "sync", "times", NULL };

static void
pt_conf_free(struct pt_conf *c)
{
	free(c->enh);
	free(c->text);
	free(c);
}

/* pt_arg - one argument into c; 0, or -1 with the reason set */
static int
pt_arg(sh_ctx *ctx, struct pt_conf *c, const char *k, const char *v)
{
	uint64_t n;

	if (strcmp(k, "hook") == 0)
		return (c->hook = tp_hook_name(ctx, v)) != NULL ? 0 : -1;
	if (strcmp(k, "verdict") == 0)
		return tp_parse_verdict(ctx, v, &c->verdict);
	if (strcmp(k, "code") == 0)
		return tp_parse_uint(ctx, k, v, 599, &c->code);
	if (strcmp(k, "delay") == 0) {
		if (sh_parse_seconds(v, 3600, &c->delay) == 0)
			return 0;
		sh_error(ctx, "delay=%s: expected seconds (fractions ok)", v);
		return -1;
	}
	if (strcmp(k, "sync") == 0) {
		if (sh_parse_bool(v, &c->sync) == 0)
			return 0;
		sh_error(ctx, "sync=%s: expected 1 or 0", v);
		return -1;
	}
	if (strcmp(k, "times") == 0) {
		if (tp_parse_uint(ctx, k, v, INT64_MAX, &n) < 0)
			return -1;
		c->times = (int64_t)n;
		return 0;
	}
	if (strcmp(k, "enh") == 0)
		return tp_set_string(ctx, &c->enh, v);
	if (strcmp(k, "text") == 0)
		return tp_set_string(ctx, &c->text, v);
	return 0;
}

static int
pt_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct pt_conf *c = calloc(1, sizeof(*c));
	size_t i;

	if (c == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	c->delay = 1;
	c->times = -1;
	for (i = 0; i < nargs; i++) {
		if (pt_arg(ctx, c, args[i].key, args[i].value) < 0) {
			pt_conf_free(c);
			return -1;
		}
	}
	if (c->hook == NULL) {
		sh_error(ctx, "hook= is required");
		pt_conf_free(c);
		return -1;
	}
	sh_plugin_set(ctx, c);
	return 0;
}

static void
pt_fini(sh_ctx *ctx)
{
	pt_conf_free(sh_plugin_get(ctx));
	sh_plugin_set(ctx, NULL);
}

/* pt_fire - the delay is over: resume the verdict */
static void
pt_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pt_wait *pw = (struct pt_wait *)w;
	const struct pt_conf *c = pw->conf;
	int rc, again;

	(void)revents;
	ev_timer_stop(loop, w);
	rc = sh_resume(pw->token, c->verdict, (int)c->code, c->enh, c->text);
	/* A token completes exactly once: a second resume is refused. */
	again = sh_resume(pw->token, SH_REJECT, 0, NULL, NULL);
	fprintf(stderr, "pending_timer: resumed %s rc=%d again=%d\n", c->hook, rc,
	    again);
	free(pw);
}

/* pt_cancel - the host abandoned the verdict: the timer must not fire */
static void
pt_cancel(void *arg)
{
	struct pt_wait *pw = arg;

	ev_timer_stop(pw->loop, &pw->timer);
	fprintf(stderr, "pending_timer: cancelled %s\n", pw->conf->hook);
	free(pw);
}

/* maybe_pend - PENDING at the configured hook, else CONTINUE */
static sh_verdict
maybe_pend(sh_ctx *ctx, const char *arg, size_t len)
{
	struct pt_conf *c = sh_plugin_get(ctx);
	struct pt_wait *pw;
	sh_pending tok;
	int rc, again;

	(void)arg, (void)len;
	if (!tp_hook_is(ctx, c->hook) || c->times == 0)
		return SH_CONTINUE;
	if (c->times > 0)
		c->times--;
	sh_log(ctx, SH_LOG_INFO, "pending_timer: pend %s", c->hook);
	if (c->sync) {
		tok = sh_pend(ctx, NULL, NULL);
		rc = sh_resume(tok, c->verdict, (int)c->code, c->enh, c->text);
		again = sh_resume(tok, SH_REJECT, 0, NULL, NULL);
		sh_log(ctx, SH_LOG_INFO, "pending_timer: resumed before return "
		    "rc=%d again=%d", rc, again);
		return SH_PENDING;
	}
	if ((pw = calloc(1, sizeof(*pw))) == NULL)
		return SH_TEMPFAIL;
	pw->conf = c;
	pw->loop = sh_loop(ctx);
	pw->token = sh_pend(ctx, pt_cancel, pw);
	ev_timer_init(&pw->timer, pt_fire, c->delay, 0);
	ev_timer_start(pw->loop, &pw->timer);
	return SH_PENDING;
}

TP_VERDICT_HOOKS(pt, maybe_pend)

SH_PLUGIN_DEFINE(
	.name = "pending_timer",
	.version = "1.0",
	.arg_keys = pt_keys,
	.init = pt_init,
	.fini = pt_fini,
	TP_VERDICT_HOOK_TABLE(pt),
);
