/*
 * pending_never.c - test plugin for the host's pending timeout
 *
 * ABI feature: a PENDING verdict that never comes, so the reserved
 * arguments timeout=SECONDS and on_timeout=tempfail|continue|reject (taken
 * by the host, never passed to init) decide, and the host calls the
 * cancel callback when it gives up.
 *
 * Arguments:
 *	hook=connect|helo|mail|rcpt|data|header|chunk|eom|vrfy (default rcpt)
 *
 * Logs: "pending_never: pend HOOK" through sh_log; the cancel callback
 * has no context and writes "pending_never: cancelled HOOK" to stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <smtphook.h>

static const char *const pn_keys[] = { "hook", NULL };

static int
pn_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	char *hook = NULL;
	size_t i;

	for (i = 0; i < nargs; i++) {
		if (strcmp(args[i].key, "timeout") == 0 ||
		    strcmp(args[i].key, "on_timeout") == 0) {
			sh_error(ctx, "host-reserved key %s was passed", args[i].key);
			free(hook);
			return -1;
		}
		if (strcmp(args[i].key, "hook") == 0) {
			free(hook);
			hook = strdup(args[i].value);
		}
	}
	if (hook == NULL && (hook = strdup("rcpt")) == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	sh_plugin_set(ctx, hook);
	return 0;
}

static void
pn_fini(sh_ctx *ctx)
{
	free(sh_plugin_get(ctx));
	sh_plugin_set(ctx, NULL);
}

/* pn_cancel - arg is the plugin's hook name (plugin-wide, not freed) */
static void
pn_cancel(void *arg)
{
	fprintf(stderr, "pending_never: cancelled %s\n", (const char *)arg);
}

static sh_verdict
maybe_pend(sh_ctx *ctx)
{
	char *hook = sh_plugin_get(ctx);

	if (strcmp(sh_hook_name(ctx), hook) != 0)
		return SH_CONTINUE;
	(void)sh_pend(ctx, pn_cancel, hook);	/* the token is dropped */
	sh_log(ctx, SH_LOG_INFO, "pending_never: pend %s", hook);
	return SH_PENDING;
}

static sh_verdict
pn_connect(sh_ctx *ctx)
{
	return maybe_pend(ctx);
}

static sh_verdict
pn_helo(sh_ctx *ctx, const char *name, int extended)
{
	(void)name, (void)extended;
	return maybe_pend(ctx);
}

static sh_verdict
pn_mail(sh_ctx *ctx, const sh_address *a)
{
	(void)a;
	return maybe_pend(ctx);
}

static sh_verdict
pn_rcpt(sh_ctx *ctx, const sh_address *a)
{
	(void)a;
	return maybe_pend(ctx);
}

static sh_verdict
pn_data(sh_ctx *ctx)
{
	return maybe_pend(ctx);
}

static sh_verdict
pn_header(sh_ctx *ctx, const char *name, size_t name_len, const char *value,
    size_t value_len)
{
	(void)name, (void)name_len, (void)value, (void)value_len;
	return maybe_pend(ctx);
}

static sh_verdict
pn_chunk(sh_ctx *ctx, const unsigned char *data, size_t len)
{
	(void)data, (void)len;
	return maybe_pend(ctx);
}

static sh_verdict
pn_eom(sh_ctx *ctx)
{
	return maybe_pend(ctx);
}

static sh_verdict
pn_vrfy(sh_ctx *ctx, const char *arg)
{
	(void)arg;
	return maybe_pend(ctx);
}

SH_PLUGIN_DEFINE(
	.name = "pending_never",
	.version = "1.0",
	.arg_keys = pn_keys,
	.init = pn_init,
	.fini = pn_fini,
	.connect = pn_connect,
	.helo = pn_helo,
	.mail = pn_mail,
	.rcpt = pn_rcpt,
	.data = pn_data,
	.header = pn_header,
	.chunk = pn_chunk,
	.eom = pn_eom,
	.vrfy = pn_vrfy,
);
