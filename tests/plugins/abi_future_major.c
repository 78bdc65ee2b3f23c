/*
 * abi_future_major.c - test plugin for the ABI's major-version check
 *
 * ABI feature: abi_major is SH_ABI_MAJOR + 1 (a plugin built for a future,
 * incompatible host): the daemon must refuse it at start-up with a
 * one-line message naming the ABI, exit 2, and never call its hooks.
 */
#include <stdio.h>

#include <smtphook.h>

static int
future_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	(void)args, (void)nargs;
	sh_error(ctx, "abi_future_major init must never be called");
	return -1;
}

SH_EXPORT const sh_plugin smtphook_plugin = {
	.abi_major = SH_ABI_MAJOR + 1,
	.abi_minor = 0,
	.struct_size = sizeof(sh_plugin),
	.name = "abi_future_major",
	.version = "9.0",
	.init = future_init,
};
