/*
 * reject_at.c - test plugin for verdicts and replies (sh_reply)
 *
 * ABI feature: one verdict hook answering a fixed verdict, with or
 * without its own reply (code, enhanced code, single- or multi-line
 * text), so the tests can check how the host turns verdicts into replies
 * and which defaults it uses.
 *
 * Arguments:
 *	hook=connect|helo|mail|rcpt|data|header|chunk|eom|vrfy|expn (required)
 *	verdict=reject|tempfail|disconnect|accept|continue	(default reject)
 *	code=NNN	reply code (none: the host's default)
 *	enh=X.Y.Z	enhanced status code (none: the host's default)
 *	text=TEXT	reply text; the two characters "\n" mean a line break
 *			(a multi-line reply).  Text without code= uses the
 *			usual code of the verdict (550, 451, 421, 250).
 *	match=ADDR	rcpt only: decide only for this recipient (case-
 *			insensitive); other recipients get CONTINUE.
 *
 * Every decision is logged: "reject_at: HOOK -> VERDICT".
 */
#include <stdlib.h>
#include <string.h>

#include "common/test_plugin.h"

struct ra_conf {
	const char *hook;	/* static (tp_hook_name) */
	sh_verdict verdict;
	uint64_t code;
	char *enh;
	char *text;
	char *match;
};

static const char *const ra_keys[] = { "hook", "verdict", "code", "enh", "text",
	"match", NULL };

/* unescape - "\n" (two characters) becomes a newline, in place */
static void
unescape(char *s)
{
	char *o = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] == 'n') {
			*o++ = '\n';
			s++;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

static void
ra_free(struct ra_conf *c)
{
	if (c == NULL)
		return;
	free(c->enh);
	free(c->text);
	free(c->match);
	free(c);
}

/* ra_arg - one argument into c; 0, or -1 with the reason set */
static int
ra_arg(sh_ctx *ctx, struct ra_conf *c, const char *k, const char *v)
{
	if (strcmp(k, "hook") == 0)
		return (c->hook = tp_hook_name(ctx, v)) != NULL ? 0 : -1;
	if (strcmp(k, "verdict") == 0)
		return tp_parse_verdict(ctx, v, &c->verdict);
	if (strcmp(k, "code") == 0)
		return tp_parse_uint(ctx, k, v, 599, &c->code);
	if (strcmp(k, "enh") == 0)
		return tp_set_string(ctx, &c->enh, v);
	if (strcmp(k, "match") == 0)
		return tp_set_string(ctx, &c->match, v);
	if (strcmp(k, "text") == 0) {
		if (tp_set_string(ctx, &c->text, v) < 0)
			return -1;
		unescape(c->text);
	}
	return 0;
}

static int
ra_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct ra_conf *c = calloc(1, sizeof(*c));
	size_t i;

	if (c == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	c->verdict = SH_REJECT;
	for (i = 0; i < nargs; i++)
		if (ra_arg(ctx, c, args[i].key, args[i].value) < 0)
			goto fail;
	if (c->hook == NULL) {
		sh_error(ctx, "hook= is required");
		goto fail;
	}
	sh_plugin_set(ctx, c);
	return 0;
fail:
	/* fini is only called after a successful init. */
	ra_free(c);
	return -1;
}

static void
ra_fini(sh_ctx *ctx)
{
	ra_free(sh_plugin_get(ctx));
	sh_plugin_set(ctx, NULL);
}

/* decide - the configured verdict (and reply) if this is the hook (and,
 * with match=, the recipient) */
static sh_verdict
decide(sh_ctx *ctx, const char *arg, size_t len)
{
	struct ra_conf *c = sh_plugin_get(ctx);
	int code = (int)c->code;

	if (!tp_hook_is(ctx, c->hook))
		return SH_CONTINUE;
	if (c->match != NULL && tp_hook_is(ctx, "rcpt") &&
	    !sh_ascii_caseeq(c->match, strlen(c->match), arg, len))
		return SH_CONTINUE;
	if (code == 0 && c->text != NULL) {
		code = c->verdict == SH_REJECT ? 550 : c->verdict == SH_TEMPFAIL ?
		    451 : c->verdict == SH_DISCONNECT ? 421 : 250;
	}
	if (code != 0)
		sh_reply(ctx, code, c->enh, "%s", c->text != NULL ? c->text : "");
	sh_log(ctx, SH_LOG_INFO, "reject_at: %s -> %s", c->hook,
	    tp_verdict_name(c->verdict));
	return c->verdict;
}

TP_VERDICT_HOOKS(ra, decide)

SH_PLUGIN_DEFINE(
	.name = "reject_at",
	.version = "1.0",
	.arg_keys = ra_keys,
	.init = ra_init,
	.fini = ra_fini,
	TP_VERDICT_HOOK_TABLE(ra),
);
