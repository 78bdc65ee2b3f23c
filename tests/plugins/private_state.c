/*
 * private_state.c - test plugin for private state and its destructors
 *
 * ABI feature: sh_plugin_set/get (plugin-wide), sh_conn_set/get
 * (per connection) and sh_tx_set/get (per transaction) with destructors
 * the host calls when the connection or the transaction ends, or when the
 * value is replaced.
 *
 *	plugin state	connections seen; freed in fini
 *	conn state	set at connect: the connection's number and the
 *			messages it got so far (counted at eom)
 *	tx state	set at mail: a copy of the sender and the recipients
 *			counted so far
 *
 * Hooks log what they find ("private_state: ..." through sh_log);
 * destructors have no context and write to stderr, which the daemon's
 * log shares in the tests:
 *	"private_state: free tx sender=<S> rcpts=N"
 *	"private_state: free conn #C.G messages=N"  (G: replace count)
 * eom ACCEPTs the message.
 *
 * Arguments:
 *	replace=1	at every HELO/EHLO, replace the conn state by a new
 *			one (the old one's destructor must run at once)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <smtphook.h>

struct ps_plugin {
	unsigned conns;
	int replace;
};

struct ps_conn {
	unsigned number;	/* the connection's number, 1, 2, ... */
	unsigned generation;	/* bumped by replace=1 */
	unsigned messages;
};

struct ps_tx {
	char *sender;
	unsigned rcpts;
};

static const char *const ps_keys[] = { "replace", NULL };

static void
ps_conn_free(void *data)
{
	struct ps_conn *c = data;

	fprintf(stderr, "private_state: free conn #%u.%u messages=%u\n",
	    c->number, c->generation, c->messages);
	free(c);
}

static void
ps_tx_free(void *data)
{
	struct ps_tx *t = data;

	fprintf(stderr, "private_state: free tx sender=<%s> rcpts=%u\n",
	    t->sender, t->rcpts);
	free(t->sender);
	free(t);
}

static int
ps_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct ps_plugin *p = calloc(1, sizeof(*p));
	size_t i;

	if (p == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	for (i = 0; i < nargs; i++)
		if (strcmp(args[i].key, "replace") == 0)
			p->replace = strcmp(args[i].value, "1") == 0;
	sh_plugin_set(ctx, p);
	return 0;
}

static void
ps_fini(sh_ctx *ctx)
{
	struct ps_plugin *p = sh_plugin_get(ctx);

	sh_log(ctx, SH_LOG_INFO, "private_state: fini conns=%u", p->conns);
	free(p);
	sh_plugin_set(ctx, NULL);
}

static sh_verdict
ps_connect(sh_ctx *ctx)
{
	struct ps_plugin *p = sh_plugin_get(ctx);
	struct ps_conn *c;

	if (sh_conn_get(ctx) != NULL)
		sh_log(ctx, SH_LOG_ERROR, "private_state: conn state before connect");
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return SH_TEMPFAIL;
	c->number = ++p->conns;
	sh_conn_set(ctx, c, ps_conn_free);
	sh_log(ctx, SH_LOG_INFO, "private_state: connect #%u", c->number);
	return SH_CONTINUE;
}

static sh_verdict
ps_helo(sh_ctx *ctx, const char *name, int extended)
{
	struct ps_plugin *p = sh_plugin_get(ctx);
	struct ps_conn *c = sh_conn_get(ctx), *n;

	(void)name, (void)extended;
	if (c == NULL) {
		sh_log(ctx, SH_LOG_ERROR, "private_state: no conn state at helo");
		return SH_CONTINUE;
	}
	if (p->replace) {
		if ((n = calloc(1, sizeof(*n))) == NULL)
			return SH_TEMPFAIL;
		*n = *c;
		n->generation++;
		/* The host destroys the old value now. */
		sh_conn_set(ctx, n, ps_conn_free);
		c = n;
	}
	sh_log(ctx, SH_LOG_INFO, "private_state: helo conn #%u.%u messages=%u",
	    c->number, c->generation, c->messages);
	return SH_CONTINUE;
}

static sh_verdict
ps_mail(sh_ctx *ctx, const sh_address *sender)
{
	struct ps_tx *t;

	if (sh_tx_get(ctx) != NULL)
		sh_log(ctx, SH_LOG_ERROR, "private_state: stale tx state at mail");
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->sender = strdup(sender->address)) == NULL) {
		free(t);
		return SH_TEMPFAIL;
	}
	sh_tx_set(ctx, t, ps_tx_free);
	sh_log(ctx, SH_LOG_INFO, "private_state: mail sender=<%s>", t->sender);
	return SH_CONTINUE;
}

static sh_verdict
ps_rcpt(sh_ctx *ctx, const sh_address *rcpt)
{
	struct ps_tx *t = sh_tx_get(ctx);

	(void)rcpt;
	if (t == NULL) {
		sh_log(ctx, SH_LOG_ERROR, "private_state: no tx state at rcpt");
		return SH_CONTINUE;
	}
	t->rcpts++;
	sh_log(ctx, SH_LOG_INFO, "private_state: rcpt sender=<%s> rcpts=%u",
	    t->sender, t->rcpts);
	return SH_CONTINUE;
}

static sh_verdict
ps_eom(sh_ctx *ctx)
{
	struct ps_conn *c = sh_conn_get(ctx);
	struct ps_tx *t = sh_tx_get(ctx);

	if (c == NULL || t == NULL) {
		sh_log(ctx, SH_LOG_ERROR, "private_state: state missing at eom");
		return SH_TEMPFAIL;
	}
	c->messages++;
	sh_log(ctx, SH_LOG_INFO, "private_state: eom conn #%u message %u "
	    "sender=<%s> rcpts=%u", c->number, c->messages, t->sender, t->rcpts);
	return SH_ACCEPT;
}

static void
ps_reset(sh_ctx *ctx)
{
	struct ps_tx *t = sh_tx_get(ctx);

	/* The tx state is still there: its destructor runs after reset. */
	sh_log(ctx, SH_LOG_INFO, "private_state: reset tx=%s",
	    t != NULL ? t->sender : "(none)");
}

static void
ps_disconnect(sh_ctx *ctx)
{
	struct ps_conn *c = sh_conn_get(ctx);

	/* The conn state is still there: its destructor runs after this. */
	if (c != NULL)
		sh_log(ctx, SH_LOG_INFO, "private_state: disconnect conn #%u "
		    "messages=%u", c->number, c->messages);
	else
		sh_log(ctx, SH_LOG_ERROR, "private_state: no conn state at "
		    "disconnect");
}

SH_PLUGIN_DEFINE(
	.name = "private_state",
	.version = "1.0",
	.arg_keys = ps_keys,
	.init = ps_init,
	.fini = ps_fini,
	.connect = ps_connect,
	.helo = ps_helo,
	.mail = ps_mail,
	.rcpt = ps_rcpt,
	.eom = ps_eom,
	.reset = ps_reset,
	.disconnect = ps_disconnect,
);
