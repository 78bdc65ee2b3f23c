/*
 * init_fail.c - test plugin for a refused start (init returns -1)
 *
 * ABI feature: init may refuse to start; the reason set with sh_error()
 * becomes the daemon's one-line message "plugin init_fail: REASON" and
 * the exit status is 2.
 *
 * Arguments:
 *	reason=TEXT	the reason (default "reason")
 *	silent=1	return -1 without calling sh_error()
 *	fail=0		start normally instead
 */
#include <string.h>

#include <smtphook.h>

static const char *const if_keys[] = { "reason", "silent", "fail", NULL };

static int
if_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	const char *reason = "reason";
	int silent = 0, fail = 1;
	size_t i;

	for (i = 0; i < nargs; i++) {
		if (strcmp(args[i].key, "reason") == 0)
			reason = args[i].value;
		else if (strcmp(args[i].key, "silent") == 0)
			silent = strcmp(args[i].value, "1") == 0;
		else if (strcmp(args[i].key, "fail") == 0)
			fail = strcmp(args[i].value, "0") != 0;
	}
	if (!fail)
		return 0;
	if (!silent)
		sh_error(ctx, "%s", reason);
	return -1;
}

SH_PLUGIN_DEFINE(
	.name = "init_fail",
	.version = "1.0",
	.arg_keys = if_keys,
	.init = if_init,
);
