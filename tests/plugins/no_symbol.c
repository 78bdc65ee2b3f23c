/*
 * no_symbol.c - test plugin for the loader's descriptor lookup
 *
 * ABI feature: the one exported symbol.  This shared object is loadable
 * but exports no `smtphook_plugin` (its descriptor is hidden, as
 * -fvisibility=hidden makes every symbol not marked SH_EXPORT): the daemon
 * must refuse it with exit 2 and "not an smtphook plugin".
 */
#include <smtphook.h>

static sh_verdict
nosym_eom(sh_ctx *ctx)
{
	(void)ctx;
	return SH_ACCEPT;
}

/* Not SH_EXPORT: invisible to dlsym(). */
const sh_plugin smtphook_plugin = {
	.abi_major = SH_ABI_MAJOR,
	.abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin),
	.name = "no_symbol",
	.eom = nosym_eom,
};
