/*
 * host_api.c - the services plugins call (the sh_host_api table)
 *
 * Every function takes the sh_ctx of the hook call it is made from (see
 * host_ctx in host_api.h), except resume, which takes a token.  Misuse
 * (a reply in a notification, a token outside a verdict hook) is logged
 * and ignored rather than trusted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "host_api.h"
#include "log.h"
#include "metrics.h"
#include "roles.h"
#include "server.h"
#include "tx.h"

#define HOST(ctx) ((struct host_ctx *)(void *)(ctx))

void
host_ctx_init(struct host_ctx *c, struct server *srv, struct plugin *p,
    struct host_conn *conn, const char *hook_name)
{
	memset(c, 0, sizeof(*c));
	c->pub.api = &host_api_table;
	c->srv = srv;
	c->plugin = p;
	c->conn = conn;
	c->hook_name = hook_name;
}

static void
api_reply(sh_ctx *ctx, int code, const char *enhanced, const char *fmt, va_list ap)
{
	struct host_ctx *c = HOST(ctx);
	char text[REPLY_TEXT_MAX + 1];

	if (c->reply == NULL) {
		log_msg(LOG_WARN, "plugin %s: sh_reply() in %s ignored (no verdict "
		    "to reply to)", c->plugin->name, c->hook_name);
		return;
	}
	vsnprintf(text, sizeof(text), fmt != NULL ? fmt : "", ap);
	chain_set_reply(c->reply, c->plugin->name, code, enhanced, text);
}

static void
api_log(sh_ctx *ctx, sh_log_level level, const char *fmt, va_list ap)
{
	struct host_ctx *c = HOST(ctx);
	char msg[LOG_LINE_MAX], esc[LOG_LINE_MAX];
	enum log_level l = level == SH_LOG_DEBUG ? LOG_DEBUG :
	    level == SH_LOG_INFO ? LOG_INFO : level == SH_LOG_WARN ? LOG_WARN :
	    LOG_ERROR;
	int n;

	if (!log_enabled(l))
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	log_escape(esc, sizeof(esc), msg, strnlen(msg, sizeof(msg)));
	if (c->conn != NULL)
		log_msg(l, "%s: plugin %s: %s", c->conn->log_id, c->plugin->name,
		    esc);
	else
		log_msg(l, "plugin %s: %s", c->plugin->name, esc);
}

static void
api_error(sh_ctx *ctx, const char *fmt, va_list ap)
{
	struct host_ctx *c = HOST(ctx);

	if (c->error != NULL) {
		vsnprintf(c->error, c->errsize, fmt, ap);
		return;
	}
	api_log(ctx, SH_LOG_ERROR, fmt, ap);
}

/* ctx_tx - the transaction of the hook's connection, or NULL */
static struct tx *
ctx_tx(sh_ctx *ctx)
{
	struct host_conn *conn = HOST(ctx)->conn;

	return conn != NULL ? *conn->tx : NULL;
}

static const sh_session_info *
api_session(sh_ctx *ctx)
{
	struct host_conn *conn = HOST(ctx)->conn;

	return conn != NULL ? conn->info : NULL;
}

static const sh_tx_info *
api_tx(sh_ctx *ctx)
{
	struct tx *tx = ctx_tx(ctx);

	if (tx == NULL || tx->sender == NULL)
		return NULL;
	/* The view is refreshed on demand; the fields change as we go. */
	tx->info.rcpts = (const sh_address *const *)tx->rcpts;
	tx->info.nrcpts = tx->nrcpts;
	tx->info.sender = tx->sender;
	tx->info.body_size = tx->body_size;
	tx->info.in_body = tx->in_body;
	tx->info.in_headers = tx->in_headers;
	tx->info.header_size = tx->header_size;
	tx->info.bdat = tx->bdat;
	/* info.head_edited is set by the edits themselves (tx_edit.c). */
	return &tx->info;
}

static int
api_tx_header(sh_ctx *ctx, size_t index, const char **name, const char **value)
{
	struct tx *tx = ctx_tx(ctx);

	if (tx == NULL)
		return -1;
	/* The edited list once a plugin edited it (tx_edit.c). */
	return tx_header_get(tx, index, name, value);
}

static size_t
api_tx_trace(sh_ctx *ctx, const char **text)
{
	struct tx *tx = ctx_tx(ctx);

	if (tx == NULL || tx->trace == NULL) {
		*text = "";
		return 0;
	}
	*text = tx->trace;
	return tx->trace_len;
}

static int
api_add_header(sh_ctx *ctx, const char *name, const char *value)
{
	struct host_ctx *c = HOST(ctx);
	struct tx *tx = ctx_tx(ctx);

	/* Valid in data (the body is about to begin), header, chunk, eom. */
	if (tx == NULL || (!tx->in_body && !(c->conn->chain->run.active &&
	    c->conn->chain->run.hook == SH_HOOK_DATA))) {
		log_msg(LOG_WARN, "plugin %s: sh_add_header() in %s ignored "
		    "(only while a message is received)", c->plugin->name,
		    c->hook_name);
		return -1;
	}
	return tx_add_header(tx, name, value);
}

static void *
api_plugin_get(sh_ctx *ctx)
{
	return HOST(ctx)->plugin->data;
}

static void
api_plugin_set(sh_ctx *ctx, void *data)
{
	HOST(ctx)->plugin->data = data;
}

static void *
api_conn_get(sh_ctx *ctx)
{
	struct host_ctx *c = HOST(ctx);

	return c->conn != NULL ? c->conn->slots[c->plugin->index].data : NULL;
}

/* slot_replace - store new private data, destroying what it replaces */
static void
slot_replace(void **data, sh_free_fn *destroy, void *nd, sh_free_fn nf)
{
	void *old = *data;
	sh_free_fn of = *destroy;

	*data = nd;
	*destroy = nf;
	if (old != NULL && old != nd && of != NULL)
		of(old);
}

static void
api_conn_set(sh_ctx *ctx, void *data, sh_free_fn destroy)
{
	struct host_ctx *c = HOST(ctx);
	struct conn_slot *slot;

	if (c->conn == NULL) {
		log_msg(LOG_WARN, "plugin %s: sh_conn_set() outside a connection",
		    c->plugin->name);
		return;
	}
	slot = &c->conn->slots[c->plugin->index];
	slot_replace(&slot->data, &slot->destroy, data, destroy);
}

static void *
api_tx_get(sh_ctx *ctx)
{
	struct tx *tx = ctx_tx(ctx);

	return tx != NULL ? tx->slots[HOST(ctx)->plugin->index].data : NULL;
}

static void
api_tx_set(sh_ctx *ctx, void *data, sh_free_fn destroy)
{
	struct host_ctx *c = HOST(ctx);
	struct tx *tx = ctx_tx(ctx);
	struct tx_slot *slot;

	if (tx == NULL) {
		log_msg(LOG_WARN, "plugin %s: sh_tx_set() outside a transaction",
		    c->plugin->name);
		if (data != NULL && destroy != NULL)
			destroy(data);
		return;
	}
	slot = &tx->slots[c->plugin->index];
	slot_replace(&slot->data, &slot->destroy, data, destroy);
}

static sh_pending
api_pend(sh_ctx *ctx, sh_cancel_fn cancel, void *arg)
{
	struct host_ctx *c = HOST(ctx);
	sh_pending tok = { .api = &host_api_table };

	if (c->conn == NULL || !c->verdict_hook) {
		log_msg(LOG_ERROR, "plugin %s: sh_pend() in %s: only verdict hooks "
		    "may pend", c->plugin->name, c->hook_name);
		return tok;
	}
	tok.host_ = c->srv;
	tok.session_id = c->conn->id;
	tok.generation = chain_pend(c->conn->chain, c->plugin->index, cancel, arg);
	return tok;
}

/* api_resume - the token names the connection by id: one that is gone
 * is not found, a stale generation is refused by the chain */
static int
api_resume(sh_pending p, sh_verdict verdict, int code, const char *enhanced,
    const char *text)
{
	struct server *srv = p.host_;
	struct host_conn *conn;

	if (srv == NULL || (conn = u64map_get(&srv->sessions, p.session_id)) == NULL)
		return -1;
	return chain_resume(conn->chain, p.generation, verdict, code, enhanced,
	    text);
}

static struct ev_loop *
api_loop(sh_ctx *ctx)
{
	return HOST(ctx)->srv->loop;
}

static int
api_pool_submit(sh_ctx *ctx, void (*work)(void *), void (*done)(void *), void *arg)
{
	return workpool_submit(&HOST(ctx)->srv->pool, work, done, arg);
}

static const char *
api_hook_name(sh_ctx *ctx)
{
	return HOST(ctx)->hook_name;
}

static sh_counter *
api_counter_register(sh_ctx *ctx, const char *name, const char *help)
{
	struct host_ctx *c = HOST(ctx);

	/* c->error is set in init only (server_plugins_init). */
	return metrics_api_counter_register(&c->srv->metrics, c->plugin->index,
	    c->plugin->name, c->error != NULL, name, help);
}

static uint32_t
api_roles_before(sh_ctx *ctx)
{
	struct host_ctx *c = HOST(ctx);
	uint32_t r = roles_before(c->srv->plugins, c->plugin->index);
	size_t i;

	/* A 1.0 plugin declares nothing but may add header fields at eom:
	 * for the plugins after it, it may edit. */
	for (i = 0; i < c->plugin->index; i++)
		if (!c->srv->plugins[i].roles_known)
			r |= SH_ROLE_EDITS;
	return r;
}

/*
 * edit_tx - the transaction a message edit applies to: only in eom, while
 * the chain walks it (smtphook.h MESSAGE EDITS); else a warning naming
 * the plugin, and NULL
 */
static struct tx *
edit_tx(sh_ctx *ctx, const char *what)
{
	struct host_ctx *c = HOST(ctx);
	struct tx *tx = ctx_tx(ctx);

	if (tx == NULL || !c->verdict_hook || !c->conn->chain->run.active ||
	    c->conn->chain->run.hook != SH_HOOK_EOM) {
		log_msg(LOG_WARN, "plugin %s: %s() in %s refused (only at eom)",
		    c->plugin->name, what, c->hook_name);
		return NULL;
	}
	return tx;
}

static int
api_header_insert(sh_ctx *ctx, size_t position, const char *name,
    const char *value)
{
	struct tx *tx = edit_tx(ctx, "sh_header_insert");

	return tx != NULL ? tx_header_insert(tx, position, name, value) : -1;
}

static int
api_header_change(sh_ctx *ctx, const char *name, size_t occurrence,
    const char *value)
{
	struct tx *tx = edit_tx(ctx, value != NULL ? "sh_header_change" :
	    "sh_header_remove");

	return tx != NULL ? tx_header_change(tx, name, occurrence, value) : -1;
}

static int
api_sender_change(sh_ctx *ctx, const char *address, const char *params)
{
	struct tx *tx = edit_tx(ctx, "sh_sender_change");

	return tx != NULL ? tx_sender_change(tx, address, params) : -1;
}

static int
api_rcpt_add(sh_ctx *ctx, const char *address, const char *params)
{
	struct tx *tx = edit_tx(ctx, "sh_rcpt_add");

	/* The daemon's --max-recipients holds for added ones too. */
	return tx != NULL ? tx_rcpt_add(tx, address, params,
	    HOST(ctx)->srv->cfg->max_recipients) : -1;
}

static int
api_rcpt_remove(sh_ctx *ctx, const char *address)
{
	struct tx *tx = edit_tx(ctx, "sh_rcpt_remove");

	return tx != NULL ? tx_rcpt_remove(tx, address) : -1;
}

/* api_tx_head_part - valid in eom only: before it, plugins after this
 * one may still edit, and the header section may not be complete */
static int
api_tx_head_part(sh_ctx *ctx, size_t index, sh_head_part *part)
{
	struct tx *tx = edit_tx(ctx, "sh_tx_head_part");

	return tx != NULL ? tx_head_part(tx, index, part) : -1;
}

const sh_host_api host_api_table = {
	.size = sizeof(sh_host_api),
	.abi_major = SH_ABI_MAJOR,
	.abi_minor = SH_ABI_MINOR,
	.reply = api_reply,
	.log = api_log,
	.error = api_error,
	.session = api_session,
	.tx = api_tx,
	.tx_header = api_tx_header,
	.tx_trace = api_tx_trace,
	.add_header = api_add_header,
	.plugin_get = api_plugin_get,
	.plugin_set = api_plugin_set,
	.conn_get = api_conn_get,
	.conn_set = api_conn_set,
	.tx_get = api_tx_get,
	.tx_set = api_tx_set,
	.pend = api_pend,
	.resume = api_resume,
	.loop = api_loop,
	.pool_submit = api_pool_submit,
	.hook_name = api_hook_name,
	.counter_register = api_counter_register,
	.counter_add = metrics_counter_add,
	.roles_before = api_roles_before,
	.header_insert = api_header_insert,
	.header_change = api_header_change,
	.sender_change = api_sender_change,
	.rcpt_add = api_rcpt_add,
	.rcpt_remove = api_rcpt_remove,
	.tx_head_part = api_tx_head_part,
};
