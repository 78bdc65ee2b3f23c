/*
 * role_relay.c - test plugin for declared roles: a relay
 *
 * ABI feature: `roles` in the descriptor.  It declares SH_ROLE_RELAYS,
 * so `--check` must refuse it unless a plugin before it declares
 * SH_ROLE_RESTRICTS_RCPTS (an open relay otherwise).  It relays nothing:
 * at connect it logs "role_relay: roles_before=0xN" (sh_roles_before():
 * what the plugins before it declared, a 1.0 plugin counting as an
 * editor); at eom it logs "role_relay: eom" and ACCEPTs, as a relay does
 * once the next server took the message, so a chain that gets past
 * --check also delivers.
 */
#include <smtphook.h>

static sh_verdict
relay_eom(sh_ctx *ctx)
{
	sh_log(ctx, SH_LOG_INFO, "role_relay: eom");
	return SH_ACCEPT;
}

static sh_verdict
relay_connect(sh_ctx *ctx)
{
	sh_log(ctx, SH_LOG_INFO, "role_relay: roles_before=0x%x",
	    (unsigned)sh_roles_before(ctx));
	return SH_CONTINUE;
}

SH_PLUGIN_DEFINE(
	.name = "role_relay",
	.version = "1.0",
	.connect = relay_connect,
	.eom = relay_eom,
	.roles = SH_ROLE_RELAYS,
);
