/*
 * role_relay.c - test plugin for declared roles: a relay
 *
 * ABI feature: `roles` in the descriptor.  It declares SH_ROLE_RELAYS,
 * so `--check` must refuse it unless a plugin before it declares
 * SH_ROLE_RESTRICTS_RCPTS (an open relay otherwise).  It relays nothing:
 * at eom it logs "role_relay: eom" and ACCEPTs, as a relay does once the
 * next server took the message, so a chain that gets past --check also
 * delivers.
 */
#include <smtphook.h>

static sh_verdict
relay_eom(sh_ctx *ctx)
{
	sh_log(ctx, SH_LOG_INFO, "role_relay: eom");
	return SH_ACCEPT;
}

SH_PLUGIN_DEFINE(
	.name = "role_relay",
	.version = "1.0",
	.eom = relay_eom,
	.roles = SH_ROLE_RELAYS,
);
