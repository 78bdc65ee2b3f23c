/*
 * slow.c - test plugin for the host's loop-blocking watchdog
 *
 * ABI feature: the THREADS contract (hooks must not block).  Its hook
 * sleeps on the loop thread; the host must log a line naming the plugin
 * and the hook ("blocked the loop").  The verdict is CONTINUE.
 *
 * Arguments:
 *	hook=connect|helo|mail|rcpt|...	any verdict hook (default helo)
 *	ms=N		how long to block (default 150)
 */
#include <stdlib.h>
#include <string.h>

#include "common/test_plugin.h"

struct slow_conf {
	const char *hook;	/* static (tp_hook_name) */
	uint64_t ms;
};

static const char *const slow_keys[] = { "hook", "ms", NULL };

static int
slow_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct slow_conf *c = calloc(1, sizeof(*c));
	size_t i;

	if (c == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	c->hook = "helo";
	c->ms = 150;
	for (i = 0; i < nargs; i++) {
		const char *k = args[i].key, *v = args[i].value;

		if ((strcmp(k, "hook") == 0 && (c->hook = tp_hook_name(ctx, v)) == NULL) ||
		    (strcmp(k, "ms") == 0 && tp_parse_uint(ctx, k, v, 60000, &c->ms) < 0)) {
			free(c);
			return -1;
		}
	}
	sh_plugin_set(ctx, c);
	return 0;
}

static void
slow_fini(sh_ctx *ctx)
{
	free(sh_plugin_get(ctx));
	sh_plugin_set(ctx, NULL);
}

/* block - sleep on the loop thread (what a plugin must never do) */
static sh_verdict
block(sh_ctx *ctx, const char *arg, size_t len)
{
	struct slow_conf *c = sh_plugin_get(ctx);

	(void)arg, (void)len;
	if (tp_hook_is(ctx, c->hook))
		tp_sleep_ms(c->ms);
	return SH_CONTINUE;
}

TP_VERDICT_HOOKS(slow, block)

SH_PLUGIN_DEFINE(
	.name = "slow",
	.version = "1.0",
	.arg_keys = slow_keys,
	.init = slow_init,
	.fini = slow_fini,
	TP_VERDICT_HOOK_TABLE(slow),
);
