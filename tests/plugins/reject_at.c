/*
 * reject_at.c - test plugin for verdicts and replies (sh_reply)
 *
 * ABI feature: one verdict hook answering a fixed verdict, with or
 * without its own reply (code, enhanced code, single- or multi-line
 * text), so the tests can check how the host turns verdicts into replies
 * and which defaults it uses.
 *
 * Arguments:
 *	hook=connect|helo|mail|rcpt|data|header|chunk|eom|vrfy	(required)
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
#include <strings.h>

#include <smtphook.h>

struct ra_conf {
	char *hook;
	sh_verdict verdict;
	int code;
	char *enh;
	char *text;
	char *match;
};

static const char *const ra_keys[] = { "hook", "verdict", "code", "enh", "text",
	"match", NULL };

static const char *const ra_hooks[] = { "connect", "helo", "mail", "rcpt",
	"data", "header", "chunk", "eom", "vrfy", NULL };

static const char *
verdict_name(sh_verdict v)
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
	free(c->hook);
	free(c->enh);
	free(c->text);
	free(c->match);
	free(c);
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
	sh_plugin_set(ctx, c);
	for (i = 0; i < nargs; i++) {
		const char *k = args[i].key, *v = args[i].value;

		if (strcmp(k, "hook") == 0) {
			size_t h;

			for (h = 0; ra_hooks[h] != NULL; h++)
				if (strcmp(ra_hooks[h], v) == 0)
					break;
			if (ra_hooks[h] == NULL) {
				sh_error(ctx, "hook=%s: unknown hook", v);
				goto fail;
			}
			c->hook = strdup(v);
		} else if (strcmp(k, "verdict") == 0) {
			if (strcmp(v, "reject") == 0)
				c->verdict = SH_REJECT;
			else if (strcmp(v, "tempfail") == 0)
				c->verdict = SH_TEMPFAIL;
			else if (strcmp(v, "disconnect") == 0)
				c->verdict = SH_DISCONNECT;
			else if (strcmp(v, "accept") == 0)
				c->verdict = SH_ACCEPT;
			else if (strcmp(v, "continue") == 0)
				c->verdict = SH_CONTINUE;
			else {
				sh_error(ctx, "verdict=%s: expected reject, tempfail, "
				    "disconnect, accept or continue", v);
				goto fail;
			}
		} else if (strcmp(k, "code") == 0) {
			c->code = atoi(v);
		} else if (strcmp(k, "enh") == 0) {
			c->enh = strdup(v);
		} else if (strcmp(k, "text") == 0) {
			if ((c->text = strdup(v)) != NULL)
				unescape(c->text);
		} else if (strcmp(k, "match") == 0) {
			c->match = strdup(v);
		}
	}
	if (c->hook == NULL) {
		sh_error(ctx, "hook= is required");
		goto fail;
	}
	return 0;
fail:
	/* fini is only called after a successful init. */
	ra_free(c);
	sh_plugin_set(ctx, NULL);
	return -1;
}

static void
ra_fini(sh_ctx *ctx)
{
	struct ra_conf *c = sh_plugin_get(ctx);

	if (c != NULL)
		ra_free(c);
	sh_plugin_set(ctx, NULL);
}

/* decide - the configured verdict (and reply) if this is the hook */
static sh_verdict
decide(sh_ctx *ctx, const char *hook)
{
	struct ra_conf *c = sh_plugin_get(ctx);
	int code = c->code;

	if (strcmp(c->hook, hook) != 0)
		return SH_CONTINUE;
	if (code == 0 && c->text != NULL) {
		code = c->verdict == SH_REJECT ? 550 : c->verdict == SH_TEMPFAIL ?
		    451 : c->verdict == SH_DISCONNECT ? 421 : 250;
	}
	if (code != 0)
		sh_reply(ctx, code, c->enh, "%s", c->text != NULL ? c->text : "");
	sh_log(ctx, SH_LOG_INFO, "reject_at: %s -> %s", hook,
	    verdict_name(c->verdict));
	return c->verdict;
}

static sh_verdict
ra_connect(sh_ctx *ctx)
{
	return decide(ctx, "connect");
}

static sh_verdict
ra_helo(sh_ctx *ctx, const char *name, int extended)
{
	(void)name, (void)extended;
	return decide(ctx, "helo");
}

static sh_verdict
ra_mail(sh_ctx *ctx, const sh_address *sender)
{
	(void)sender;
	return decide(ctx, "mail");
}

static sh_verdict
ra_rcpt(sh_ctx *ctx, const sh_address *rcpt)
{
	struct ra_conf *c = sh_plugin_get(ctx);

	if (c->match != NULL && strcasecmp(c->match, rcpt->address) != 0)
		return SH_CONTINUE;
	return decide(ctx, "rcpt");
}

static sh_verdict
ra_data(sh_ctx *ctx)
{
	return decide(ctx, "data");
}

static sh_verdict
ra_header(sh_ctx *ctx, const char *name, size_t name_len, const char *value,
    size_t value_len)
{
	(void)name, (void)name_len, (void)value, (void)value_len;
	return decide(ctx, "header");
}

static sh_verdict
ra_chunk(sh_ctx *ctx, const unsigned char *data, size_t len)
{
	(void)data, (void)len;
	return decide(ctx, "chunk");
}

static sh_verdict
ra_eom(sh_ctx *ctx)
{
	return decide(ctx, "eom");
}

static sh_verdict
ra_vrfy(sh_ctx *ctx, const char *arg)
{
	(void)arg;
	return decide(ctx, "vrfy");
}

SH_PLUGIN_DEFINE(
	.name = "reject_at",
	.version = "1.0",
	.arg_keys = ra_keys,
	.init = ra_init,
	.fini = ra_fini,
	.connect = ra_connect,
	.helo = ra_helo,
	.mail = ra_mail,
	.rcpt = ra_rcpt,
	.data = ra_data,
	.header = ra_header,
	.chunk = ra_chunk,
	.eom = ra_eom,
	.vrfy = ra_vrfy,
);
