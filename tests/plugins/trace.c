/*
 * trace.c - test plugin for the chain order and the notifications
 *
 * ABI feature: which hooks the host calls, in which order, on which
 * plugin instance: every hook (verdict hooks, reset, disconnect, init,
 * fini) logs one line through sh_log():
 *
 *	trace NAME HOOK [DETAIL]
 *
 * (DETAIL: the address for mail/rcpt, the field name for header, the
 * length for chunk, the argument for helo/vrfy/expn).  Tests read the
 * order from the daemon's log.
 *
 * Arguments:
 *	name=NAME		the instance's name in the log (default "trace")
 *	accept=HOOK[;HOOK]	answer ACCEPT at these hooks instead of
 *				CONTINUE (e.g. accept=chunk: "skip me for
 *				the rest of the body"; accept=eom: take the
 *				message).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <smtphook.h>

struct trace_conf {
	char *name;
	char *accept;		/* ";hook;hook;" */
};

static const char *const trace_keys[] = { "name", "accept", NULL };

static int
trace_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct trace_conf *c = calloc(1, sizeof(*c));
	const char *name = "trace", *accept = "";
	size_t i, n;

	if (c == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	for (i = 0; i < nargs; i++) {
		if (strcmp(args[i].key, "name") == 0)
			name = args[i].value;
		else if (strcmp(args[i].key, "accept") == 0)
			accept = args[i].value;
	}
	n = strlen(accept) + 3;
	c->name = strdup(name);
	c->accept = malloc(n);
	if (c->name == NULL || c->accept == NULL) {
		free(c->name);
		free(c->accept);
		free(c);
		sh_error(ctx, "out of memory");
		return -1;
	}
	snprintf(c->accept, n, ";%s;", accept);
	sh_plugin_set(ctx, c);
	sh_log(ctx, SH_LOG_INFO, "trace %s init", c->name);
	return 0;
}

static void
trace_fini(sh_ctx *ctx)
{
	struct trace_conf *c = sh_plugin_get(ctx);

	sh_log(ctx, SH_LOG_INFO, "trace %s fini", c->name);
	free(c->name);
	free(c->accept);
	free(c);
	sh_plugin_set(ctx, NULL);
}

/* note - log the call; the verdict configured for this hook */
static sh_verdict
note(sh_ctx *ctx, const char *detail)
{
	struct trace_conf *c = sh_plugin_get(ctx);
	const char *hook = sh_hook_name(ctx);
	char key[32];

	sh_log(ctx, SH_LOG_INFO, "trace %s %s%s%s", c->name, hook,
	    detail != NULL ? " " : "", detail != NULL ? detail : "");
	snprintf(key, sizeof(key), ";%s;", hook);
	return strstr(c->accept, key) != NULL ? SH_ACCEPT : SH_CONTINUE;
}

static sh_verdict
trace_connect(sh_ctx *ctx)
{
	return note(ctx, NULL);
}

static sh_verdict
trace_helo(sh_ctx *ctx, const char *name, int extended)
{
	(void)extended;
	return note(ctx, name);
}

static sh_verdict
trace_mail(sh_ctx *ctx, const sh_address *sender)
{
	return note(ctx, sender->address);
}

static sh_verdict
trace_rcpt(sh_ctx *ctx, const sh_address *rcpt)
{
	return note(ctx, rcpt->address);
}

static sh_verdict
trace_data(sh_ctx *ctx)
{
	return note(ctx, NULL);
}

static sh_verdict
trace_header(sh_ctx *ctx, const char *name, size_t name_len, const char *value,
    size_t value_len)
{
	(void)name_len, (void)value, (void)value_len;
	return note(ctx, name);
}

static sh_verdict
trace_chunk(sh_ctx *ctx, const unsigned char *data, size_t len)
{
	char n[32];

	(void)data;
	snprintf(n, sizeof(n), "%zu", len);
	return note(ctx, n);
}

static sh_verdict
trace_eom(sh_ctx *ctx)
{
	return note(ctx, NULL);
}

static void
trace_reset(sh_ctx *ctx)
{
	(void)note(ctx, NULL);
}

static sh_verdict
trace_vrfy(sh_ctx *ctx, const char *arg)
{
	return note(ctx, arg);
}

static sh_verdict
trace_expn(sh_ctx *ctx, const char *arg)
{
	return note(ctx, arg);
}

static void
trace_disconnect(sh_ctx *ctx)
{
	(void)note(ctx, NULL);
}

SH_PLUGIN_DEFINE(
	.name = "trace",
	.version = "1.0",
	.arg_keys = trace_keys,
	.init = trace_init,
	.fini = trace_fini,
	.connect = trace_connect,
	.helo = trace_helo,
	.mail = trace_mail,
	.rcpt = trace_rcpt,
	.data = trace_data,
	.header = trace_header,
	.chunk = trace_chunk,
	.eom = trace_eom,
	.reset = trace_reset,
	.vrfy = trace_vrfy,
	.expn = trace_expn,
	.disconnect = trace_disconnect,
);
