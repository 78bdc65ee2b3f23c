/*
 * keys.c - test plugin for declared argument keys (arg_keys)
 *
 * ABI feature: the host checks every key=value against the plugin's
 * NULL-terminated arg_keys before init and refuses unknown keys (exit 2,
 * "unknown argument"); the reserved keys timeout= and on_timeout= are
 * accepted for every plugin and never passed to init.
 *
 * Declares only "alpha".  init logs what it got:
 *	"keys: init nargs=N alpha=VALUE"
 */
#include <string.h>

#include <smtphook.h>

static const char *const keys_keys[] = { "alpha", NULL };

static int
keys_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	const char *alpha = "(none)";
	size_t i;

	for (i = 0; i < nargs; i++) {
		if (strcmp(args[i].key, "alpha") != 0) {
			sh_error(ctx, "undeclared key %s reached init", args[i].key);
			return -1;
		}
		alpha = args[i].value;
	}
	sh_log(ctx, SH_LOG_INFO, "keys: init nargs=%zu alpha=%s", nargs, alpha);
	return 0;
}

SH_PLUGIN_DEFINE(
	.name = "keys",
	.version = "1.0",
	.arg_keys = keys_keys,
	.init = keys_init,
);
