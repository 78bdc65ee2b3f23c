/*
 * abi_future_minor.c - test plugin for the ABI's minor-version check
 *
 * ABI feature: abi_minor is SH_ABI_MINOR + 1 (a plugin built for a newer
 * host, which may call functions this host's table lacks): the daemon
 * must refuse it at start-up with a one-line message naming both
 * versions, exit 2, and never call its hooks.
 */
#include <stdio.h>

#include <smtphook.h>

static int
future_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	(void)args, (void)nargs;
	sh_error(ctx, "abi_future_minor init must never be called");
	return -1;
}

SH_EXPORT const sh_plugin smtphook_plugin = {
	.abi_major = SH_ABI_MAJOR,
	.abi_minor = SH_ABI_MINOR + 1,
	.struct_size = sizeof(sh_plugin),
	.name = "abi_future_minor",
	.version = "1.9",
	.init = future_init,
};
