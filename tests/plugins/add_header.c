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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <smtphook.h>

struct ah_conf {
	char *name;
	char *value;
	char *at;		/* ";hook;hook;" */
};

static const char *const ah_keys[] = { "name", "value", "at", NULL };

#define ONCE_HEADER 1u
#define ONCE_CHUNK 2u

static int
ah_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct ah_conf *c = calloc(1, sizeof(*c));
	const char *name = "X-Test", *value = NULL, *at = "data;eom";
	size_t i, n;

	if (c == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	for (i = 0; i < nargs; i++) {
		if (strcmp(args[i].key, "name") == 0)
			name = args[i].value;
		else if (strcmp(args[i].key, "value") == 0)
			value = args[i].value;
		else if (strcmp(args[i].key, "at") == 0)
			at = args[i].value;
	}
	n = strlen(at) + 3;
	c->name = strdup(name);
	c->value = value != NULL ? strdup(value) : NULL;
	c->at = malloc(n);
	if (c->name == NULL || c->at == NULL || (value != NULL && c->value == NULL)) {
		free(c->name);
		free(c->value);
		free(c->at);
		free(c);
		sh_error(ctx, "out of memory");
		return -1;
	}
	snprintf(c->at, n, ";%s;", at);
	sh_plugin_set(ctx, c);
	return 0;
}

static void
ah_fini(sh_ctx *ctx)
{
	struct ah_conf *c = sh_plugin_get(ctx);

	free(c->name);
	free(c->value);
	free(c->at);
	free(c);
	sh_plugin_set(ctx, NULL);
}

/* maybe_add - add the header if this hook is configured */
static sh_verdict
maybe_add(sh_ctx *ctx)
{
	struct ah_conf *c = sh_plugin_get(ctx);
	const char *hook = sh_hook_name(ctx);
	char key[32];
	int rc;

	snprintf(key, sizeof(key), ";%s;", hook);
	if (strstr(c->at, key) == NULL)
		return SH_CONTINUE;
	rc = sh_add_header(ctx, c->name, c->value != NULL ? c->value : hook);
	sh_log(ctx, SH_LOG_INFO, "add_header: %s at %s rc=%d", c->name, hook, rc);
	return SH_CONTINUE;
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

static sh_verdict
ah_connect(sh_ctx *ctx)
{
	return maybe_add(ctx);
}

static sh_verdict
ah_helo(sh_ctx *ctx, const char *name, int extended)
{
	(void)name, (void)extended;
	return maybe_add(ctx);
}

static sh_verdict
ah_mail(sh_ctx *ctx, const sh_address *a)
{
	(void)a;
	return maybe_add(ctx);
}

static sh_verdict
ah_rcpt(sh_ctx *ctx, const sh_address *a)
{
	(void)a;
	return maybe_add(ctx);
}

static sh_verdict
ah_data(sh_ctx *ctx)
{
	return maybe_add(ctx);
}

static sh_verdict
ah_header(sh_ctx *ctx, const char *name, size_t name_len, const char *value,
    size_t value_len)
{
	(void)name, (void)name_len, (void)value, (void)value_len;
	if (!once(ctx, ONCE_HEADER))
		return SH_CONTINUE;
	return maybe_add(ctx);
}

static sh_verdict
ah_chunk(sh_ctx *ctx, const unsigned char *data, size_t len)
{
	(void)data, (void)len;
	if (!once(ctx, ONCE_CHUNK))
		return SH_CONTINUE;
	return maybe_add(ctx);
}

static sh_verdict
ah_eom(sh_ctx *ctx)
{
	return maybe_add(ctx);
}

SH_PLUGIN_DEFINE(
	.name = "add_header",
	.version = "1.0",
	.arg_keys = ah_keys,
	.init = ah_init,
	.fini = ah_fini,
	.connect = ah_connect,
	.helo = ah_helo,
	.mail = ah_mail,
	.rcpt = ah_rcpt,
	.data = ah_data,
	.header = ah_header,
	.chunk = ah_chunk,
	.eom = ah_eom,
);
