/*
 * role_restrict.c - test plugin for declared roles: a recipient
 * restriction
 *
 * ABI feature: `roles` in the descriptor.  It declares
 * SH_ROLE_RESTRICTS_RCPTS, which lets a relaying plugin after it pass
 * --check.  The declaration is true: it refuses every recipient outside
 * domain= (default test.example) with 550 5.7.1.
 *
 * Arguments:
 *	domain=NAME	the one recipient domain served (case-insensitive)
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <smtphook.h>

static const char *const restrict_keys[] = { "domain", NULL };

static int
restrict_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	const char *domain = "test.example";
	char *copy;
	size_t i;

	for (i = 0; i < nargs; i++)
		if (strcmp(args[i].key, "domain") == 0)
			domain = args[i].value;
	/* Arguments are borrowed for the call: keep a copy. */
	if ((copy = strdup(domain)) == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	sh_plugin_set(ctx, copy);
	return 0;
}

static void
restrict_fini(sh_ctx *ctx)
{
	free(sh_plugin_get(ctx));
}

static sh_verdict
restrict_rcpt(sh_ctx *ctx, const sh_address *rcpt)
{
	const char *domain = sh_plugin_get(ctx);

	if (strcasecmp(rcpt->domain, domain) == 0)
		return SH_CONTINUE;
	return sh_reject(ctx, 550, "5.7.1", "<%s>: Relay access denied",
	    rcpt->address);
}

SH_PLUGIN_DEFINE(
	.name = "role_restrict",
	.version = "1.0",
	.arg_keys = restrict_keys,
	.init = restrict_init,
	.fini = restrict_fini,
	.rcpt = restrict_rcpt,
	.roles = SH_ROLE_RESTRICTS_RCPTS,
);
