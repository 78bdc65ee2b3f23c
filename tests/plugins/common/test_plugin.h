/*
 * test_plugin.h - what the test plugins of tests/plugins/ share
 *
 * SYNOPSIS
 *	#include "common/test_plugin.h"
 *
 *	static sh_verdict
 *	act(sh_ctx *ctx, const char *arg, size_t len)
 *	{
 *		if (!tp_hook_is(ctx, configured_hook))
 *			return SH_CONTINUE;
 *		...
 *	}
 *
 *	TP_VERDICT_HOOKS(xx, act)
 *
 *	SH_PLUGIN_DEFINE(.name = "xx", .version = "1.0", TP_VERDICT_HOOK_TABLE(xx));
 *
 * DESCRIPTION
 *	Most test plugins do one thing at one configurable hook (hook=NAME)
 *	and answer CONTINUE elsewhere.  TP_VERDICT_HOOKS(p, fn) defines
 *	p_connect ... p_expn, one per verdict hook, each calling
 *	fn(ctx, arg, len) with the hook's main argument:
 *		connect, data, eom	NULL, 0
 *		helo, vrfy, expn	the argument, its length
 *		mail, rcpt		the address, its length
 *		header			the field name, its length
 *		chunk			the octets (not NUL-terminated), len
 *	TP_VERDICT_HOOK_TABLE(p) lists them all for SH_PLUGIN_DEFINE; a
 *	plugin that must not see some hooks (it logs every call, say)
 *	names the ones it wants instead.  The rest are the small parsers the
 *	plugins used to copy from one another.  Argument values are parsed
 *	with the SDK helpers, as in the bundled plugins.
 *
 *	This is a header, not a .c file, because CMake builds every
 *	.c file of tests/plugins/ into a plugin of its own.
 */
#ifndef TEST_PLUGIN_H
#define TEST_PLUGIN_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <smtphook.h>

#include "helpers/sh_helpers.h"

#if defined(__GNUC__)
#define TP_UNUSED __attribute__((unused))
#else
#define TP_UNUSED
#endif

#define TP_VERDICT_HOOKS(p, fn)						\
	static TP_UNUSED sh_verdict					\
	p##_connect(sh_ctx *ctx)					\
	{								\
		return fn(ctx, NULL, 0);				\
	}								\
	static TP_UNUSED sh_verdict					\
	p##_helo(sh_ctx *ctx, const char *name, int extended)		\
	{								\
		(void)extended;						\
		return fn(ctx, name, strlen(name));			\
	}								\
	static TP_UNUSED sh_verdict					\
	p##_mail(sh_ctx *ctx, const sh_address *a)			\
	{								\
		return fn(ctx, a->address, strlen(a->address));		\
	}								\
	static TP_UNUSED sh_verdict					\
	p##_rcpt(sh_ctx *ctx, const sh_address *a)			\
	{								\
		return fn(ctx, a->address, strlen(a->address));		\
	}								\
	static TP_UNUSED sh_verdict					\
	p##_data(sh_ctx *ctx)						\
	{								\
		return fn(ctx, NULL, 0);				\
	}								\
	static TP_UNUSED sh_verdict					\
	p##_header(sh_ctx *ctx, const char *name, size_t name_len,	\
	    const char *value, size_t value_len)			\
	{								\
		(void)value, (void)value_len;				\
		return fn(ctx, name, name_len);				\
	}								\
	static TP_UNUSED sh_verdict					\
	p##_chunk(sh_ctx *ctx, const unsigned char *data, size_t len)	\
	{								\
		return fn(ctx, (const char *)data, len);		\
	}								\
	static TP_UNUSED sh_verdict					\
	p##_eom(sh_ctx *ctx)						\
	{								\
		return fn(ctx, NULL, 0);				\
	}								\
	static TP_UNUSED sh_verdict					\
	p##_vrfy(sh_ctx *ctx, const char *arg)				\
	{								\
		return fn(ctx, arg, strlen(arg));			\
	}								\
	static TP_UNUSED sh_verdict					\
	p##_expn(sh_ctx *ctx, const char *arg)				\
	{								\
		return fn(ctx, arg, strlen(arg));			\
	}

#define TP_VERDICT_HOOK_TABLE(p)					\
	.connect = p##_connect, .helo = p##_helo, .mail = p##_mail,	\
	.rcpt = p##_rcpt, .data = p##_data, .header = p##_header,	\
	.chunk = p##_chunk, .eom = p##_eom, .vrfy = p##_vrfy,		\
	.expn = p##_expn

/* tp_hook_is - is the hook being called the one named hook? */
static inline int
tp_hook_is(sh_ctx *ctx, const char *hook)
{
	return hook != NULL && strcmp(sh_hook_name(ctx), hook) == 0;
}

/* tp_hook_in - is the hook being called an item of the ';'-list? */
static inline int
tp_hook_in(sh_ctx *ctx, const char *list)
{
	const char *hook = sh_hook_name(ctx), *cur = list, *item;
	size_t len;

	while ((item = sh_list_next(&cur, ';', &len)) != NULL)
		if (len == strlen(hook) && memcmp(item, hook, len) == 0)
			return 1;
	return 0;
}

/* tp_hook_name - the static name of a verdict hook (outlives the
 * arguments), or NULL with the reason set when name is none */
static inline const char *
tp_hook_name(sh_ctx *ctx, const char *name)
{
	static const char *const hooks[] = { "connect", "helo", "mail", "rcpt",
		"data", "header", "chunk", "eom", "vrfy", "expn", NULL };
	size_t i;

	for (i = 0; hooks[i] != NULL; i++)
		if (strcmp(hooks[i], name) == 0)
			return hooks[i];
	sh_error(ctx, "hook=%s: unknown hook", name);
	return NULL;
}

/* tp_verdict_name - "continue", "accept", ... */
static inline const char *
tp_verdict_name(sh_verdict v)
{
	switch (v) {
	case SH_CONTINUE: return "continue";
	case SH_ACCEPT: return "accept";
	case SH_REJECT: return "reject";
	case SH_TEMPFAIL: return "tempfail";
	case SH_DISCONNECT: return "disconnect";
	default: return "?";
	}
}

/* tp_parse_verdict - verdict=NAME; 0, or -1 with the reason set */
static inline int
tp_parse_verdict(sh_ctx *ctx, const char *s, sh_verdict *out)
{
	static const sh_verdict all[] = { SH_CONTINUE, SH_ACCEPT, SH_REJECT,
		SH_TEMPFAIL, SH_DISCONNECT };
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(s, tp_verdict_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	sh_error(ctx, "verdict=%s: expected continue, accept, reject, tempfail "
	    "or disconnect", s);
	return -1;
}

/* tp_parse_uint - KEY=N (decimal, at most max); 0, or -1 with the reason
 * set */
static inline int
tp_parse_uint(sh_ctx *ctx, const char *key, const char *s, uint64_t max,
    uint64_t *out)
{
	if (sh_parse_uint(s, max, out) == 0)
		return 0;
	sh_error(ctx, "%s=%s: expected a number from 0 to %llu", key, s,
	    (unsigned long long)max);
	return -1;
}

/* tp_set_string - *slot becomes a copy of s (the old one is freed); 0, or
 * -1 with the reason set */
static inline int
tp_set_string(sh_ctx *ctx, char **slot, const char *s)
{
	char *copy = strdup(s);

	if (copy == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	free(*slot);
	*slot = copy;
	return 0;
}

/* tp_sleep_ms - block the calling thread for ms milliseconds */
static inline void
tp_sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

#endif /* TEST_PLUGIN_H */
