/*
 * edit_message.c - test plugin for the message edits of ABI 1.1
 *
 * ABI feature: sh_header_insert/change/remove, sh_sender_change,
 * sh_rcpt_add/remove at eom, applied in chain order, and what a later
 * plugin sees of them: sh_tx(), sh_tx_header(), sh_tx_head_part().
 *
 * Arguments (applied in the order given, the items of a list in order):
 *	name=NAME		the instance's name in the log (edit_message)
 *	at=HOOK			where to edit (default eom; elsewhere every
 *				edit must fail with -1)
 *	insert=NAME:VALUE[@POS];...	sh_header_insert (POS default: last)
 *	change=NAME:N:VALUE;...		sh_header_change of occurrence N
 *	remove=NAME:N;...		sh_header_remove
 *	sender=ADDRESS[ PARAMS]		sh_sender_change ("" : the null sender)
 *	rcpt_add=ADDRESS[ PARAMS];...	sh_rcpt_add
 *	rcpt_remove=ADDRESS;...		sh_rcpt_remove
 *	dump=yes		after the edits, log what the plugin sees
 *
 * Every call is logged with its result:
 *	"edit NAME OP ITEM rc=0|-1"
 * and with dump=yes, after them:
 *	"edit NAME sender <ADDRESS>", "edit NAME rcpt <ADDRESS>" each,
 *	"edit NAME header I FIELD: VALUE" each, "edit NAME head_edited 0|1",
 *	"edit NAME part I text LEN" / "edit NAME part I range OFFSET LEN".
 * Verdicts are always CONTINUE: chain a plugin that accepts the message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_plugin.h"

#define EM_ARGS_MAX 16
#define EM_ITEM_MAX 1200

struct em_conf {
	char *name;
	const char *at;		/* static hook name */
	int dump;
	size_t nargs;
	char *key[EM_ARGS_MAX], *value[EM_ARGS_MAX];
};

static const char *const em_keys[] = { "name", "at", "insert", "change",
	"remove", "sender", "rcpt_add", "rcpt_remove", "dump", NULL };

static void
em_free(struct em_conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nargs; i++) {
		free(c->key[i]);
		free(c->value[i]);
	}
	free(c->name);
	free(c);
}

static int
em_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct em_conf *c = calloc(1, sizeof(*c));
	size_t i;

	if (c == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	c->at = "eom";
	if (tp_set_string(ctx, &c->name, "edit_message") < 0)
		goto fail;
	for (i = 0; i < nargs; i++) {
		const char *k = args[i].key, *v = args[i].value;

		if (strcmp(k, "name") == 0) {
			if (tp_set_string(ctx, &c->name, v) < 0)
				goto fail;
		} else if (strcmp(k, "at") == 0) {
			if ((c->at = tp_hook_name(ctx, v)) == NULL)
				goto fail;
		} else if (strcmp(k, "dump") == 0) {
			if (sh_parse_bool(v, &c->dump) < 0) {
				sh_error(ctx, "dump=%s: expected yes or no", v);
				goto fail;
			}
		} else if (c->nargs < EM_ARGS_MAX) {
			if ((c->key[c->nargs] = strdup(k)) == NULL ||
			    (c->value[c->nargs] = strdup(v)) == NULL) {
				free(c->key[c->nargs]);
				sh_error(ctx, "out of memory");
				goto fail;
			}
			c->nargs++;
		}
	}
	sh_plugin_set(ctx, c);
	return 0;
fail:
	em_free(c);
	return -1;
}

static void
em_fini(sh_ctx *ctx)
{
	em_free(sh_plugin_get(ctx));
	sh_plugin_set(ctx, NULL);
}

/* split - item "A<sep>B" into a (copied into buf) and b; last: at the
 * last sep instead of the first.  NULL when sep is missing. */
static char *
split(const char *item, size_t len, char sep, int last, char *buf)
{
	const char *p = NULL;
	size_t i;

	for (i = 0; i < len; i++)
		if (item[i] == sep && (p == NULL || last))
			p = item + i;
	memcpy(buf, item, len);
	buf[len] = '\0';
	if (p == NULL)
		return NULL;
	buf[p - item] = '\0';
	return buf + (p - item) + 1;
}

/* one - one edit: op with its item; the result */
static int
one(sh_ctx *ctx, const char *op, const char *item, size_t len)
{
	char buf[EM_ITEM_MAX + 1], *params, *rest, *pos;
	uint64_t n;

	if (len > EM_ITEM_MAX)
		return -2;
	if (strcmp(op, "insert") == 0) {
		if ((rest = split(item, len, ':', 0, buf)) == NULL)
			return -2;
		n = SIZE_MAX;
		pos = strrchr(rest, '@');
		if (pos != NULL && sh_parse_uint(pos + 1, SIZE_MAX, &n) == 0)
			*pos = '\0';
		else
			n = SIZE_MAX;
		return sh_header_insert(ctx, (size_t)n, buf, rest);
	}
	if (strcmp(op, "change") == 0 || strcmp(op, "remove") == 0) {
		char *value = NULL;

		if ((rest = split(item, len, ':', 0, buf)) == NULL)
			return -2;
		if ((value = strchr(rest, ':')) != NULL)
			*value++ = '\0';
		if (sh_parse_uint(rest, SIZE_MAX, &n) < 0)
			return -2;
		if (op[0] == 'r')
			return sh_header_remove(ctx, buf, (size_t)n);
		return sh_header_change(ctx, buf, (size_t)n, value != NULL ? value : "");
	}
	memcpy(buf, item, len);
	buf[len] = '\0';
	if ((params = strchr(buf, ' ')) != NULL)
		*params++ = '\0';
	if (strcmp(op, "sender") == 0)
		return sh_sender_change(ctx, buf, params);
	if (strcmp(op, "rcpt_add") == 0)
		return sh_rcpt_add(ctx, buf, params);
	return sh_rcpt_remove(ctx, buf);
}

/* dump - log what this plugin sees of the message now */
static void
dump(sh_ctx *ctx, const struct em_conf *c)
{
	const sh_tx_info *tx = sh_tx(ctx);
	const char *name, *value;
	sh_head_part p;
	size_t i;

	if (tx == NULL)
		return;
	sh_log(ctx, SH_LOG_INFO, "edit %s sender <%s>", c->name, tx->sender->address);
	for (i = 0; i < tx->nrcpts; i++)
		sh_log(ctx, SH_LOG_INFO, "edit %s rcpt <%s>", c->name,
		    tx->rcpts[i]->address);
	for (i = 0; sh_tx_header(ctx, i, &name, &value) == 0; i++)
		sh_log(ctx, SH_LOG_INFO, "edit %s header %zu %s: %s", c->name, i,
		    name, value);
	sh_log(ctx, SH_LOG_INFO, "edit %s head_edited %d", c->name, tx->head_edited);
	for (i = 0; sh_tx_head_part(ctx, i, &p) == 0; i++) {
		if (p.text != NULL)
			sh_log(ctx, SH_LOG_INFO, "edit %s part %zu text %zu", c->name,
			    i, p.len);
		else
			sh_log(ctx, SH_LOG_INFO, "edit %s part %zu range %llu %zu",
			    c->name, i, (unsigned long long)p.offset, p.len);
	}
}

static sh_verdict
act(sh_ctx *ctx, const char *arg, size_t len)
{
	struct em_conf *c = sh_plugin_get(ctx);
	const char *cur, *item;
	size_t i, il;

	(void)arg, (void)len;
	if (!tp_hook_is(ctx, c->at))
		return SH_CONTINUE;
	/* At header and chunk: only once per message. */
	if (sh_tx_get(ctx) != NULL)
		return SH_CONTINUE;
	if (!tp_hook_is(ctx, "eom") && sh_tx(ctx) != NULL)
		sh_tx_set(ctx, (void *)(uintptr_t)1, NULL);
	for (i = 0; i < c->nargs; i++) {
		cur = c->value[i];
		/* sender= takes one address (an empty one: <>). */
		if (strcmp(c->key[i], "sender") == 0) {
			sh_log(ctx, SH_LOG_INFO, "edit %s sender %s rc=%d", c->name,
			    cur, one(ctx, "sender", cur, strlen(cur)));
			continue;
		}
		while ((item = sh_list_next(&cur, ';', &il)) != NULL)
			sh_log(ctx, SH_LOG_INFO, "edit %s %s %.*s rc=%d", c->name,
			    c->key[i], (int)il, item, one(ctx, c->key[i], item, il));
	}
	if (c->dump)
		dump(ctx, c);
	return SH_CONTINUE;
}

TP_VERDICT_HOOKS(em, act)

SH_PLUGIN_DEFINE(
	.name = "edit_message",
	.version = "1.0",
	.arg_keys = em_keys,
	.init = em_init,
	.fini = em_fini,
	TP_VERDICT_HOOK_TABLE(em),
	/* It edits headers and the envelope at eom. */
	.roles = SH_ROLE_EDITS,
);
