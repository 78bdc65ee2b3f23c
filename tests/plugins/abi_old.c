/*
 * abi_old.c - test plugin for the ABI's minor-version rule
 *
 * ABI feature: a descriptor from an older minor version is smaller
 * (struct_size stops before `vrfy`): the host must load it, call the
 * hooks inside its struct_size, and treat every hook beyond it as absent
 * even though this file (built against the current header) has pointers
 * there.  The descriptor is written by hand, as an old SH_PLUGIN_DEFINE
 * would have laid it out.
 *
 * Hooks inside: init (logs "abi_old: init"), connect, eom (ACCEPTs, so a
 * message gets 250).  Beyond: vrfy (would reject with 550 5.1.1 "abi_old
 * vrfy called") and disconnect (would log) - neither may ever run.
 */
#include <stddef.h>
#include <stdio.h>

#include <smtphook.h>

static int
old_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	(void)args, (void)nargs;
	sh_log(ctx, SH_LOG_INFO, "abi_old: init");
	return 0;
}

static sh_verdict
old_connect(sh_ctx *ctx)
{
	sh_log(ctx, SH_LOG_INFO, "abi_old: connect");
	return SH_CONTINUE;
}

static sh_verdict
old_eom(sh_ctx *ctx)
{
	sh_log(ctx, SH_LOG_INFO, "abi_old: eom");
	return SH_ACCEPT;
}

/* Beyond struct_size: must never be called. */
static sh_verdict
old_vrfy(sh_ctx *ctx, const char *arg)
{
	(void)arg;
	return sh_reject(ctx, 550, "5.1.1", "abi_old vrfy called");
}

static void
old_disconnect(sh_ctx *ctx)
{
	sh_log(ctx, SH_LOG_ERROR, "abi_old: disconnect called");
}

SH_EXPORT const sh_plugin smtphook_plugin = {
	.abi_major = SH_ABI_MAJOR,
	.abi_minor = 0,
	.struct_size = offsetof(sh_plugin, vrfy),
	.name = "abi_old",
	.version = "0.9",
	.init = old_init,
	.connect = old_connect,
	.eom = old_eom,
	.vrfy = old_vrfy,
	.disconnect = old_disconnect,
};
