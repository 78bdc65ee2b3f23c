/*
 * crash.c - test plugin that dies with SIGSEGV inside a hook
 *
 * ABI feature: none - it shows what a crashing plugin does to the
 * daemon.  Plugins run in the daemon's process, so until worker
 * processes (SPEC: -w/--workers) supervise and restart one another, a
 * segmentation fault in any hook takes the whole daemon down.
 * tests/integration/test_faults.py documents that.
 *
 * Arguments:
 *	hook=connect|helo|mail|rcpt|data|header|chunk|eom	(required)
 *
 * Before crashing it logs "crash: HOOK: dereferencing NULL now".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <smtphook.h>

static const char *const crash_keys[] = { "hook", NULL };

static const char *const crash_hooks[] = { "connect", "helo", "mail", "rcpt",
	"data", "header", "chunk", "eom", NULL };

/* Not known to be NULL at compile time: a real store through NULL, not
 * a trap the compiler put in its place. */
static int *volatile crash_null;

static int
crash_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	const char *hook = NULL;
	size_t i, h;

	for (i = 0; i < nargs; i++)
		if (strcmp(args[i].key, "hook") == 0)
			hook = args[i].value;
	if (hook == NULL) {
		sh_error(ctx, "hook= is required");
		return -1;
	}
	for (h = 0; crash_hooks[h] != NULL; h++)
		if (strcmp(crash_hooks[h], hook) == 0)
			break;
	if (crash_hooks[h] == NULL) {
		sh_error(ctx, "hook=%s: unknown hook", hook);
		return -1;
	}
	/* The static table entry outlives the arguments. */
	sh_plugin_set(ctx, (void *)(uintptr_t)crash_hooks[h]);
	return 0;
}

static sh_verdict
maybe_crash(sh_ctx *ctx, const char *hook)
{
	if (strcmp((const char *)sh_plugin_get(ctx), hook) != 0)
		return SH_CONTINUE;
	sh_log(ctx, SH_LOG_ERROR, "crash: %s: dereferencing NULL now", hook);
	*crash_null = 1;
	return SH_CONTINUE;
}

static sh_verdict
crash_connect(sh_ctx *ctx)
{
	return maybe_crash(ctx, "connect");
}

static sh_verdict
crash_helo(sh_ctx *ctx, const char *name, int extended)
{
	(void)name, (void)extended;
	return maybe_crash(ctx, "helo");
}

static sh_verdict
crash_mail(sh_ctx *ctx, const sh_address *sender)
{
	(void)sender;
	return maybe_crash(ctx, "mail");
}

static sh_verdict
crash_rcpt(sh_ctx *ctx, const sh_address *rcpt)
{
	(void)rcpt;
	return maybe_crash(ctx, "rcpt");
}

static sh_verdict
crash_data(sh_ctx *ctx)
{
	return maybe_crash(ctx, "data");
}

static sh_verdict
crash_header(sh_ctx *ctx, const char *name, size_t name_len, const char *value,
    size_t value_len)
{
	(void)name, (void)name_len, (void)value, (void)value_len;
	return maybe_crash(ctx, "header");
}

static sh_verdict
crash_chunk(sh_ctx *ctx, const unsigned char *data, size_t len)
{
	(void)data, (void)len;
	return maybe_crash(ctx, "chunk");
}

static sh_verdict
crash_eom(sh_ctx *ctx)
{
	return maybe_crash(ctx, "eom");
}

SH_PLUGIN_DEFINE(
	.name = "crash",
	.version = "1.0",
	.arg_keys = crash_keys,
	.init = crash_init,
	.connect = crash_connect,
	.helo = crash_helo,
	.mail = crash_mail,
	.rcpt = crash_rcpt,
	.data = crash_data,
	.header = crash_header,
	.chunk = crash_chunk,
	.eom = crash_eom,
);
