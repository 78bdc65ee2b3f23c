/*
 * sizefilter.c - refuse messages over a size and recipients over a count
 *
 *	smtphookd -p sizefilter:max=10M,max_recipients=50 -p maildump:dir=...
 *
 * Arguments (at least one):
 *	max=BYTES		largest message, in octets as RFC 1870 counts
 *				them (headers and body, CRLF kept, after
 *				dot-unstuffing); K/M/G suffixes are 1024-based.
 *	max_recipients=N	recipients per message.
 *
 * Replies:
 *	MAIL FROM:<...> SIZE=n, n > max	 552 5.3.4 (RFC 1870 §6.1)
 *	the body goes over max		 552 5.3.4 after the end of the data
 *	recipient N+1			 452 4.5.3 (RFC 5321 §4.5.3.1.10)
 *
 * The body is counted chunk by chunk in a per-transaction counter.  The
 * chunk that takes the count over the limit is REJECTed: the host stops
 * handing the body to anyone (the plugins after this one never see that
 * chunk), reads the rest to its end without buffering it, resets every
 * plugin and then replies 552.  A message of exactly max octets passes.
 * The plugin never ACCEPTs a chunk while it is still counting: ACCEPT
 * would mean "skip me for the rest of this body" and stop the count.
 * BDAT chunks reach the same hook, so CHUNKING is limited the same way
 * (the refusal answers the BDAT that crossed the limit).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <smtphook.h>

#include "helpers/sh_helpers.h"

struct sf_conf {
	uint64_t max;		/* octets; 0: no size limit */
	uint64_t max_rcpts;	/* recipients; 0: no limit */
};

/* Per-transaction state: the octets of the body handed to us so far. */
struct sf_tx {
	uint64_t seen;
};

static const char *const sf_keys[] = { "max", "max_recipients", NULL };

static int
sf_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct sf_conf *c;
	size_t i;

	if (nargs == 0) {
		sh_error(ctx, "no limit given: use max=BYTES and/or max_recipients=N");
		return -1;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	for (i = 0; i < nargs; i++) {
		const char *k = args[i].key, *v = args[i].value;

		if (strcmp(k, "max") == 0) {
			if (sh_parse_size(v, &c->max) < 0 || c->max == 0) {
				sh_error(ctx, "max=%s: expected a positive number of "
				    "octets, optionally with K, M or G (e.g. max=10M)", v);
				goto fail;
			}
		} else if (strcmp(k, "max_recipients") == 0) {
			if (sh_parse_uint(v, UINT32_MAX, &c->max_rcpts) < 0 ||
			    c->max_rcpts == 0) {
				sh_error(ctx, "max_recipients=%s: expected a positive "
				    "whole number", v);
				goto fail;
			}
		}
	}
	sh_plugin_set(ctx, c);
	return 0;
fail:
	free(c);
	return -1;
}

static void
sf_fini(sh_ctx *ctx)
{
	free(sh_plugin_get(ctx));
	sh_plugin_set(ctx, NULL);
}

/* sf_mail - the client's own estimate, SIZE= (RFC 1870 §6.1) */
static sh_verdict
sf_mail(sh_ctx *ctx, const sh_address *sender)
{
	const struct sf_conf *c = sh_plugin_get(ctx);
	const char *v;
	uint64_t size;

	if (c->max == 0 || (v = sh_param_get(sender, "SIZE", NULL)) == NULL)
		return SH_CONTINUE;
	if (sh_parse_uint(v, UINT64_MAX, &size) < 0) {
		/* The host checked the syntax (1*20DIGIT); only a 20-digit
		 * value beyond 2^64-1 gets here, and it is too big. */
		if (v[strspn(v, "0123456789")] != '\0')
			return SH_CONTINUE;
		size = UINT64_MAX;
	}
	if (size <= c->max)
		return SH_CONTINUE;
	sh_log(ctx, SH_LOG_INFO, "refused MAIL with SIZE=%s over max=%llu", v,
	    (unsigned long long)c->max);
	return sh_reject(ctx, 552, "5.3.4", "Message size exceeds fixed maximum "
	    "message size of %llu octets", (unsigned long long)c->max);
}

/* sf_rcpt - at most max_recipients accepted recipients per message */
static sh_verdict
sf_rcpt(sh_ctx *ctx, const sh_address *rcpt)
{
	const struct sf_conf *c = sh_plugin_get(ctx);
	const sh_tx_info *tx;

	(void)rcpt;
	if (c->max_rcpts == 0 || (tx = sh_tx(ctx)) == NULL || tx->nrcpts < c->max_rcpts)
		return SH_CONTINUE;
	/* RFC 5321 §4.5.3.1.10: 452, and the client sends the rest in
	 * another transaction. */
	return sh_tempfail(ctx, 452, "4.5.3", "Too many recipients: at most %llu "
	    "per message", (unsigned long long)c->max_rcpts);
}

static void
sf_tx_free(void *p)
{
	free(p);
}

/* sf_chunk - count the message as it streams; refuse the chunk that
 * takes it over the limit */
static sh_verdict
sf_chunk(sh_ctx *ctx, const unsigned char *data, size_t len)
{
	const struct sf_conf *c = sh_plugin_get(ctx);
	struct sf_tx *t;
	uint64_t seen;

	(void)data;
	if (c->max == 0)
		return SH_ACCEPT;	/* only max_recipients: no body needed */
	if ((t = sh_tx_get(ctx)) == NULL && (t = calloc(1, sizeof(*t))) != NULL)
		sh_tx_set(ctx, t, sf_tx_free);
	if (t != NULL) {
		t->seen += len;
		seen = t->seen;
	} else {
		/* No memory for a counter: the host's own count of the
		 * message so far (it includes this chunk) does as well. */
		const sh_tx_info *tx = sh_tx(ctx);

		seen = tx != NULL ? tx->body_size : len;
	}
	if (seen <= c->max)
		return SH_CONTINUE;
	sh_log(ctx, SH_LOG_INFO, "message over max=%llu octets (%llu so far): "
	    "rejected, the rest is discarded", (unsigned long long)c->max,
	    (unsigned long long)seen);
	return sh_reject(ctx, 552, "5.3.4", "Message size exceeds fixed maximum "
	    "message size of %llu octets", (unsigned long long)c->max);
}

SH_PLUGIN_DEFINE(
	.name = "sizefilter",
	.version = "1.0",
	.arg_keys = sf_keys,
	.init = sf_init,
	.fini = sf_fini,
	.mail = sf_mail,
	.rcpt = sf_rcpt,
	.chunk = sf_chunk,
	/* None: max_recipients= caps how many, not whom it serves, and it
	 * never accepts a message. */
	.roles = 0,
);
