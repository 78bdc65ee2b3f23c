/*
 * tx.c - the transaction: envelope, header store, trace block, slots
 *
 * A transaction begins when MAIL passes its syntax checks and ends in
 * tx_free(), called by the session once the plugins have been told.  All
 * of its memory is freed there, including the plugins' per-transaction
 * slots through their destructors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strbuf.h"
#include "tx.h"

#define TX_HEADER_STORE_MAX (64 * 1024)
#define TX_HEADER_INDEX_SIZE \
	(TX_HEADER_FIELDS_MAX * sizeof(struct tx_header_ref))
#define TX_TRACE_MAX (16 * 1024 + 4096)	/* added headers + Received */

/* tx_new - a transaction with an id unique across runs and processes */
struct tx *
tx_new(size_t nplugins, uint64_t salt, const char *session_id, unsigned seq)
{
	struct tx *tx;
	struct strbuf id;

	tx = calloc(1, sizeof(*tx) + nplugins * sizeof(tx->slots[0]));
	if (tx == NULL)
		return NULL;
	tx->nslots = nplugins;
	/* Session id + per-session sequence, salted by start time and pid:
	 * what Postfix's long queue ids give, in 16-20 characters. */
	sb_init(&id, tx->id, sizeof(tx->id));
	sb_hex(&id, salt, 8);
	sb_putn(&id, session_id, strnlen(session_id, sizeof(tx->id) - 11));
	sb_hex(&id, seq, 2);
	sb_cstr(&id);			/* fits: 8 + at most 20 + 2 + 1 */
	tx->info.size = sizeof(tx->info);
	tx->info.id = tx->id;
	return tx;
}

/* address_new - one malloc'd sh_address with its strings and params */
sh_address *
address_new(const struct smtp_mail_arg *a)
{
	size_t need = sizeof(sh_address) + a->nparams * sizeof(sh_param) +
	    2 * (a->addr_len + 1) + 1;
	size_t i;
	sh_address *ad;
	sh_param *params;
	char *p, *at;

	for (i = 0; i < a->nparams; i++)
		need += a->params[i].key_len + 1 + a->params[i].value_len + 1;
	if ((ad = calloc(1, need)) == NULL)
		return NULL;
	params = (sh_param *)(ad + 1);
	p = (char *)(params + a->nparams);
	ad->address = p;
	memcpy(p, a->addr, a->addr_len);
	p[a->addr_len] = '\0';
	p += a->addr_len + 1;
	/* local@domain split at the last '@' (a quoted local part may hold
	 * an '@'; the domain never does). */
	ad->local = p;
	memcpy(p, a->addr, a->addr_len + 1);
	at = strrchr(p, '@');
	if (at != NULL) {
		*at = '\0';
		ad->domain = at + 1;
	}
	p += a->addr_len + 1;
	if (at == NULL) {
		*p = '\0';
		ad->domain = p;
	}
	p++;
	for (i = 0; i < a->nparams; i++) {
		const struct smtp_param *sp = &a->params[i];
		size_t k;

		params[i].key = p;
		for (k = 0; k < sp->key_len; k++) {
			char c = sp->key[k];
			*p++ = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
		}
		*p++ = '\0';
		if (sp->value != NULL) {
			params[i].value = p;
			memcpy(p, sp->value, sp->value_len);
			p += sp->value_len;
			*p++ = '\0';
		} else {
			params[i].value = NULL;
			*p++ = '\0';
		}
	}
	ad->params = params;
	ad->nparams = a->nparams;
	return ad;
}

int
tx_set_sender(struct tx *tx, const struct smtp_mail_arg *a)
{
	free(tx->sender);
	tx->sender = address_new(a);
	tx->smtputf8 = a->smtputf8;
	return tx->sender != NULL ? 0 : -1;
}

/* tx_append_rcpt - the transaction takes an accepted recipient */
int
tx_append_rcpt(struct tx *tx, sh_address *rcpt)
{
	if (tx->nrcpts == tx->rcpt_cap) {
		size_t ncap = tx->rcpt_cap ? tx->rcpt_cap * 2 : 4;
		sh_address **n = realloc(tx->rcpts, ncap * sizeof(*n));
		if (n == NULL)
			return -1;
		tx->rcpts = n;
		tx->rcpt_cap = ncap;
	}
	tx->rcpts[tx->nrcpts++] = rcpt;
	return 0;
}

/*
 * tx_store_header - keep a header for sh_tx_header(), with its raw span
 * (from where the field before it ended to raw_end, message offsets) for
 * the final head of edited messages.  Bounded: the index
 * (TX_HEADER_FIELDS_MAX entries, the most a message may have) and the
 * 64 KiB store are one allocation, made at the first field.  Returns 0
 * when stored, 1 when the store's budget is spent (the field still goes to
 * the hooks, from a temporary copy, but is not kept; nor is any field
 * after it, so the kept fields are a prefix of the section), -1 when the
 * allocation failed: the caller fails the transaction (451 4.3.0).
 */
int
tx_store_header(struct tx *tx, const char *name, size_t nl, const char *value,
    size_t vl, uint64_t raw_end)
{
	size_t need = nl + vl + 2;
	uint64_t raw_off = tx->hdr_raw_end;

	tx->hdr_raw_end = raw_end;
	if (tx->hdr_full)
		return 1;

	if (tx->hdr_store == NULL) {
		/* The index first: malloc's alignment is the index's. */
		struct tx_header_ref *idx = tx->spares != NULL ?
		    spares_take(&tx->spares->hdr) : NULL;

		if (idx == NULL)
			idx = malloc(TX_HEADER_INDEX_SIZE + TX_HEADER_STORE_MAX);

		if (idx == NULL)
			return -1;
		tx->hdr_idx = idx;
		tx->hdr_cap = TX_HEADER_FIELDS_MAX;
		tx->hdr_store = (char *)idx + TX_HEADER_INDEX_SIZE;
	}
	if (tx->nhdr == tx->hdr_cap || tx->hdr_len + need > TX_HEADER_STORE_MAX) {
		tx->hdr_full = 1;
		return 1;
	}
	/* The section is at most TX_HEADER_SECTION_MAX + one field. */
	tx->hdr_idx[tx->nhdr].raw_off = (uint32_t)raw_off;
	tx->hdr_idx[tx->nhdr].raw_len = (uint32_t)(raw_end - raw_off);
	tx->hdr_idx[tx->nhdr].name = (uint32_t)tx->hdr_len;
	memcpy(tx->hdr_store + tx->hdr_len, name, nl);
	tx->hdr_store[tx->hdr_len + nl] = '\0';
	tx->hdr_idx[tx->nhdr].value = (uint32_t)(tx->hdr_len + nl + 1);
	memcpy(tx->hdr_store + tx->hdr_len + nl + 1, value, vl);
	tx->hdr_store[tx->hdr_len + nl + 1 + vl] = '\0';
	tx->hdr_len += need;
	tx->nhdr++;
	return 0;
}

/* trace_append - add text to the trace block, within its budget */
static int
trace_append(struct tx *tx, const char *text, size_t len)
{
	if (tx->trace_len + len + 1 > TX_TRACE_MAX)
		return -1;
	if (tx->trace == NULL && tx->spares != NULL)
		tx->trace = spares_take(&tx->spares->trace);
	if (tx->trace == NULL && (tx->trace = malloc(TX_TRACE_MAX)) == NULL)
		return -1;
	memcpy(tx->trace + tx->trace_len, text, len);
	tx->trace_len += len;
	tx->trace[tx->trace_len] = '\0';
	return 0;
}

/*
 * tx_add_header - a plugin adds "Name: value".  The name must be a
 * field-name (RFC 5322 §3.6.8: printable ASCII except ':'); the value one
 * line without CR/LF, so a plugin cannot smuggle a header block in.
 */
int
tx_add_header(struct tx *tx, const char *name, const char *value)
{
	char line[4096];
	size_t i;
	int n;

	if (name == NULL || value == NULL || name[0] == '\0')
		return -1;
	for (i = 0; name[i] != '\0'; i++)
		if (name[i] <= ' ' || name[i] >= 0x7f || name[i] == ':')
			return -1;
	for (i = 0; value[i] != '\0'; i++)
		if (value[i] == '\r' || value[i] == '\n')
			return -1;
	n = snprintf(line, sizeof(line), "%s: %s\r\n", name, value);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	return trace_append(tx, line, (size_t)n);
}

/*
 * tx_add_received - the Received: trace header (RFC 5321 §4.4), with the
 * protocol keyword of RFC 3848 and "for" only with one recipient (so a
 * Bcc list is not disclosed).
 */
/*
 * received_date - now as an RFC 5322 date-time in local time.  localtime
 * and strftime cost about 1,200 instructions, so the text is made once per
 * second (per thread, as log.c's stamp; a cache, not state).
 */
static const char *
received_date(time_t now)
{
	static _Thread_local time_t last = (time_t)-1;
	static _Thread_local char text[64];
	struct tm tm;

	if (now != last) {
		if (localtime_r(&now, &tm) == NULL ||
		    strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
			memcpy(text, "Thu, 01 Jan 1970 00:00:00 +0000", 32);
		last = now;
	}
	return text;
}

int
tx_add_received(struct tx *tx, const struct tx_received *r)
{
	char line[1200];
	struct strbuf b;

	sb_init(&b, line, sizeof(line));
	SB_LIT(&b, "Received: from ");
	sb_puts(&b, r->helo != NULL ? r->helo : "unknown");
	SB_LIT(&b, " (");
	sb_puts(&b, r->peer_addr);
	SB_LIT(&b, " [");
	sb_puts(&b, r->peer_addr);
	SB_LIT(&b, "])");
	if (r->tls_protocol != NULL) {
		SB_LIT(&b, "\r\n\t(using ");
		sb_puts(&b, r->tls_protocol);
		SB_LIT(&b, " with cipher ");
		sb_puts(&b, r->tls_cipher != NULL ? r->tls_cipher : "?");
		sb_putc(&b, ')');
	}
	SB_LIT(&b, "\r\n\tby ");
	sb_puts(&b, r->hostname);
	/* RFC 3848 / RFC 6531 protocol keywords: S for TLS, A for AUTH. */
	SB_LIT(&b, " (smtphook) with ");
	sb_puts(&b, !r->esmtp ? "SMTP" : tx->smtputf8 ? "UTF8SMTP" : "ESMTP");
	if (r->esmtp && r->tls_protocol != NULL)
		sb_putc(&b, 'S');
	if (r->esmtp && r->authenticated)
		sb_putc(&b, 'A');
	SB_LIT(&b, " id ");
	sb_puts(&b, tx->id);
	if (tx->nrcpts == 1) {
		SB_LIT(&b, "\r\n\tfor <");
		sb_puts(&b, tx->rcpts[0]->address);
		sb_putc(&b, '>');
	}
	SB_LIT(&b, ";\r\n\t");
	sb_puts(&b, received_date(time(NULL)));
	SB_LIT(&b, "\r\n");
	if (!sb_ok(&b))
		return -1;
	return trace_append(tx, line, b.len);
}

/* tx_free - the one end of every transaction's memory */
void
tx_free(struct tx *tx)
{
	size_t i;

	if (tx == NULL)
		return;
	for (i = 0; i < tx->nslots; i++)
		if (tx->slots[i].data != NULL && tx->slots[i].destroy != NULL)
			tx->slots[i].destroy(tx->slots[i].data);
	free(tx->sender);
	for (i = 0; i < tx->nrcpts; i++)
		free(tx->rcpts[i]);
	free(tx->rcpts);
	/* hdr_store is in the hdr_idx block */
	if (tx->spares != NULL) {
		spares_give(&tx->spares->hdr, tx->hdr_idx);
		spares_give(&tx->spares->trace, tx->trace);
	} else {
		free(tx->hdr_idx);
		free(tx->trace);
	}
	tx_edits_free(tx->edits);
	free(tx);
}
