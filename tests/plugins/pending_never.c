/*
 * pending_never.c - test plugin for the host's pending timeout
 *
 * ABI feature: a PENDING verdict that never comes, so the reserved
 * arguments timeout=SECONDS and on_timeout=tempfail|continue|reject (taken
 * by the host, never passed to init) decide, and the host calls the
 * cancel callback when it gives up.
 *
 * Arguments:
 *	hook=connect|helo|mail|rcpt|data|header|chunk|eom|vrfy (default rcpt)
 *
 * Logs: "pending_never: pend HOOK" through sh_log; the cancel callback
 * has no context and writes "pending_never: cancelled HOOK" to stderr.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/test_plugin.h"

static const char *const pn_keys[] = { "hook", NULL };

static int
pn_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	const char *hook = "rcpt";
	size_t i;

	for (i = 0; i < nargs; i++) {
		if (strcmp(args[i].key, "timeout") == 0 ||
		    strcmp(args[i].key, "on_timeout") == 0) {
			sh_error(ctx, "host-reserved key %s was passed", args[i].key);
			return -1;
		}
		if (strcmp(args[i].key, "hook") == 0 &&
		    (hook = tp_hook_name(ctx, args[i].value)) == NULL)
			return -1;
	}
	/* A static name: nothing to free in fini. */
	sh_plugin_set(ctx, (void *)(uintptr_t)hook);
	return 0;
}

/* pn_cancel - arg is the plugin's hook name (static) */
static void
pn_cancel(void *arg)
{
	fprintf(stderr, "pending_never: cancelled %s\n", (const char *)arg);
}

static sh_verdict
maybe_pend(sh_ctx *ctx, const char *arg, size_t len)
{
	const char *hook = sh_plugin_get(ctx);

	(void)arg, (void)len;
	if (!tp_hook_is(ctx, hook))
		return SH_CONTINUE;
	(void)sh_pend(ctx, pn_cancel, (void *)(uintptr_t)hook);	/* token dropped */
	sh_log(ctx, SH_LOG_INFO, "pending_never: pend %s", hook);
	return SH_PENDING;
}

TP_VERDICT_HOOKS(pn, maybe_pend)

SH_PLUGIN_DEFINE(
	.name = "pending_never",
	.version = "1.0",
	.arg_keys = pn_keys,
	.init = pn_init,
	TP_VERDICT_HOOK_TABLE(pn),
);
