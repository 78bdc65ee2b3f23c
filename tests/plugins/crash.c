/*
 * crash.c - test plugin that dies with SIGSEGV inside a hook
 *
 * ABI feature: none - it shows what a crashing plugin does to the
 * daemon.  Plugins run in the daemon's process, so until worker
 * processes (SPEC: -w/--workers) supervise and restart one another, a
 * segmentation fault in any hook takes the whole daemon down.
 * tests/integration/test_faults.py documents that.
 *
 * Arguments:
 *	hook=connect|helo|mail|rcpt|data|header|chunk|eom|vrfy|expn (required)
 *
 * Before crashing it logs "crash: HOOK: dereferencing NULL now".
 */
#include <stdint.h>
#include <string.h>

#include "common/test_plugin.h"

static const char *const crash_keys[] = { "hook", NULL };

/* Not known to be NULL at compile time: a real store through NULL, not
 * a trap the compiler put in its place. */
static int *volatile crash_null;

static int
crash_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	const char *hook = NULL;
	size_t i;

	for (i = 0; i < nargs; i++)
		if (strcmp(args[i].key, "hook") == 0 &&
		    (hook = tp_hook_name(ctx, args[i].value)) == NULL)
			return -1;
	if (hook == NULL) {
		sh_error(ctx, "hook= is required");
		return -1;
	}
	/* The static name outlives the arguments. */
	sh_plugin_set(ctx, (void *)(uintptr_t)hook);
	return 0;
}

static sh_verdict
maybe_crash(sh_ctx *ctx, const char *arg, size_t len)
{
	const char *hook = sh_plugin_get(ctx);

	(void)arg, (void)len;
	if (!tp_hook_is(ctx, hook))
		return SH_CONTINUE;
	sh_log(ctx, SH_LOG_ERROR, "crash: %s: dereferencing NULL now", hook);
	*crash_null = 1;
	return SH_CONTINUE;
}

TP_VERDICT_HOOKS(crash, maybe_crash)

SH_PLUGIN_DEFINE(
	.name = "crash",
	.version = "1.0",
	.arg_keys = crash_keys,
	.init = crash_init,
	TP_VERDICT_HOOK_TABLE(crash),
);
