/*
 * slow.c - test plugin for the host's loop-blocking watchdog
 *
 * ABI feature: the THREADS contract (hooks must not block).  Its hook
 * sleeps on the loop thread; the host must log a line naming the plugin
 * and the hook ("blocked the loop").  The verdict is CONTINUE.
 *
 * Arguments:
 *	hook=connect|helo|mail|rcpt	(default helo)
 *	ms=N		how long to block (default 150)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <smtphook.h>

struct slow_conf {
	char hook[16];
	long ms;
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
	snprintf(c->hook, sizeof(c->hook), "helo");
	c->ms = 150;
	for (i = 0; i < nargs; i++) {
		if (strcmp(args[i].key, "hook") == 0)
			snprintf(c->hook, sizeof(c->hook), "%s", args[i].value);
		else if (strcmp(args[i].key, "ms") == 0)
			c->ms = atol(args[i].value);
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
block(sh_ctx *ctx)
{
	struct slow_conf *c = sh_plugin_get(ctx);
	struct timespec ts = { c->ms / 1000, (c->ms % 1000) * 1000000L };

	if (strcmp(sh_hook_name(ctx), c->hook) == 0)
		while (nanosleep(&ts, &ts) != 0)
			;
	return SH_CONTINUE;
}

static sh_verdict
slow_connect(sh_ctx *ctx)
{
	return block(ctx);
}

static sh_verdict
slow_helo(sh_ctx *ctx, const char *name, int extended)
{
	(void)name, (void)extended;
	return block(ctx);
}

static sh_verdict
slow_mail(sh_ctx *ctx, const sh_address *a)
{
	(void)a;
	return block(ctx);
}

static sh_verdict
slow_rcpt(sh_ctx *ctx, const sh_address *a)
{
	(void)a;
	return block(ctx);
}

SH_PLUGIN_DEFINE(
	.name = "slow",
	.version = "1.0",
	.arg_keys = slow_keys,
	.init = slow_init,
	.fini = slow_fini,
	.connect = slow_connect,
	.helo = slow_helo,
	.mail = slow_mail,
	.rcpt = slow_rcpt,
);
