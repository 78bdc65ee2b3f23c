/*
 * add_header.c - test plugin for sh_add_header()
 *
 * ABI feature: adding header fields to the message (visible to later
 * plugins and to storing plugins through sh_tx_trace(), after the host's
 * Received: header).
 *
 * Arguments:
 *	name=NAME		the field name (default X-Test)
 *	value=VALUE		the field value (default: the hook's name, so
 *				"X-Test: data", "X-Test: eom")
 *	at=HOOK[;HOOK]		where to add it: any of connect, helo, mail,
 *				rcpt, data, header, chunk, eom (default
 *				data;eom).  At header and chunk only once per
 *				message.
 *
 * Every attempt is logged with sh_add_header()'s result:
 *	"add_header: NAME at HOOK rc=0|-1"
 * Verdicts are always CONTINUE: chain a plugin that accepts the message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_plugin.h"

struct ah_conf {
	char *name;
	char *value;		/* NULL: the hook's name */
	char *at;		/* "hook;hook" */
};

static const char *const ah_keys[] = { "name", "value", "at", NULL };

#define ONCE_HEADER 1u
#define ONCE_CHUNK 2u

static void
ah_free(struct ah_conf *c)
{
	if (c == NULL)
		return;
	free(c->name);
	free(c->value);
	free(c->at);
	free(c);
}

static int
ah_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct ah_conf *c = calloc(1, sizeof(*c));
	size_t i;
	int rc;

	if (c == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	rc = tp_set_string(ctx, &c->name, "X-Test") | tp_set_string(ctx, &c->at,
	    "data;eom");
	for (i = 0; i < nargs && rc == 0; i++) {
		const char *k = args[i].key, *v = args[i].value;

		rc = tp_set_string(ctx, strcmp(k, "name") == 0 ? &c->name :
		    strcmp(k, "value") == 0 ? &c->value : &c->at, v);
	}
	if (rc != 0) {
		ah_free(c);
		return -1;
	}
	sh_plugin_set(ctx, c);
	return 0;
}

static void
ah_fini(sh_ctx *ctx)
{
	ah_free(sh_plugin_get(ctx));
	sh_plugin_set(ctx, NULL);
}

/* once - true the first time per message for a flag bit; the flags are
 * kept in the tx slot as an integer (no destructor: nothing to free) */
static int
once(sh_ctx *ctx, uintptr_t bit)
{
	uintptr_t flags = (uintptr_t)sh_tx_get(ctx);

	if (flags & bit)
		return 0;
	sh_tx_set(ctx, (void *)(flags | bit), NULL);
	return 1;
}

/* maybe_add - add the header if this hook is configured (at header and
 * chunk: only at the first call of the message) */
static sh_verdict
maybe_add(sh_ctx *ctx, const char *arg, size_t len)
{
	struct ah_conf *c = sh_plugin_get(ctx);
	const char *hook = sh_hook_name(ctx);
	int rc;

	(void)arg, (void)len;
	if (!tp_hook_in(ctx, c->at))
		return SH_CONTINUE;
	if ((tp_hook_is(ctx, "header") && !once(ctx, ONCE_HEADER)) ||
	    (tp_hook_is(ctx, "chunk") && !once(ctx, ONCE_CHUNK)))
		return SH_CONTINUE;
	rc = sh_add_header(ctx, c->name, c->value != NULL ? c->value : hook);
	sh_log(ctx, SH_LOG_INFO, "add_header: %s at %s rc=%d", c->name, hook, rc);
	return SH_CONTINUE;
}

TP_VERDICT_HOOKS(ah, maybe_add)

SH_PLUGIN_DEFINE(
	.name = "add_header",
	.version = "1.0",
	.arg_keys = ah_keys,
	.init = ah_init,
	.fini = ah_fini,
	TP_VERDICT_HOOK_TABLE(ah),
);
