/*
 * trace.c - test plugin for the chain order and the notifications
 *
 * ABI feature: which hooks the host calls, in which order, on which
 * plugin instance: every hook (verdict hooks, reset, disconnect, init,
 * fini) logs one line through sh_log():
 *
 *	trace NAME HOOK [DETAIL]
 *
 * (DETAIL: the address for mail/rcpt, the field name for header, the
 * length for chunk, the argument for helo/vrfy/expn).  Tests read the
 * order from the daemon's log.
 *
 * Arguments:
 *	name=NAME		the instance's name in the log (default "trace")
 *	accept=HOOK[;HOOK]	answer ACCEPT at these hooks instead of
 *				CONTINUE (e.g. accept=chunk: "skip me for
 *				the rest of the body"; accept=eom: take the
 *				message).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_plugin.h"

struct trace_conf {
	char *name;
	char *accept;		/* "hook;hook" */
};

static const char *const trace_keys[] = { "name", "accept", NULL };

static void
trace_free(struct trace_conf *c)
{
	if (c == NULL)
		return;
	free(c->name);
	free(c->accept);
	free(c);
}

static int
trace_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct trace_conf *c = calloc(1, sizeof(*c));
	size_t i;
	int rc;

	if (c == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	rc = tp_set_string(ctx, &c->name, "trace") | tp_set_string(ctx, &c->accept, "");
	for (i = 0; i < nargs && rc == 0; i++)
		rc = tp_set_string(ctx, strcmp(args[i].key, "name") == 0 ? &c->name :
		    &c->accept, args[i].value);
	if (rc != 0) {
		trace_free(c);
		return -1;
	}
	sh_plugin_set(ctx, c);
	sh_log(ctx, SH_LOG_INFO, "trace %s init", c->name);
	return 0;
}

static void
trace_fini(sh_ctx *ctx)
{
	struct trace_conf *c = sh_plugin_get(ctx);

	sh_log(ctx, SH_LOG_INFO, "trace %s fini", c->name);
	trace_free(c);
	sh_plugin_set(ctx, NULL);
}

/* note - log the call; the verdict configured for this hook.  The detail
 * is arg (NUL-terminated for every hook but chunk), or the chunk's length. */
static sh_verdict
note(sh_ctx *ctx, const char *arg, size_t len)
{
	struct trace_conf *c = sh_plugin_get(ctx);
	char n[32];

	if (tp_hook_is(ctx, "chunk")) {
		snprintf(n, sizeof(n), "%zu", len);
		arg = n;
	}
	sh_log(ctx, SH_LOG_INFO, "trace %s %s%s%s", c->name, sh_hook_name(ctx),
	    arg != NULL ? " " : "", arg != NULL ? arg : "");
	return tp_hook_in(ctx, c->accept) ? SH_ACCEPT : SH_CONTINUE;
}

TP_VERDICT_HOOKS(trace, note)

static void
trace_reset(sh_ctx *ctx)
{
	(void)note(ctx, NULL, 0);
}

static void
trace_disconnect(sh_ctx *ctx)
{
	(void)note(ctx, NULL, 0);
}

SH_PLUGIN_DEFINE(
	.name = "trace",
	.version = "1.0",
	.arg_keys = trace_keys,
	.init = trace_init,
	.fini = trace_fini,
	TP_VERDICT_HOOK_TABLE(trace),
	.reset = trace_reset,
	.disconnect = trace_disconnect,
);
