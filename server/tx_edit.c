/*
 * tx_edit.c - the message edits of eom: header fields and envelope
 *
 * Part of the transaction (declared in tx.h): what plugins change at eom
 * through sh_header_insert/change/remove, sh_sender_change and
 * sh_rcpt_add/remove, and the final header section storing and relaying
 * plugins write (tx_head_part).
 *
 * The header store (tx.c) keeps each field unfolded together with its
 * span in the message as it streamed.  The first header edit copies that
 * list into struct tx_edits: original fields still point into the store
 * and keep their spans, so a storing plugin copies them byte for byte
 * (folding included) from its own copy of the message; an inserted or
 * changed field is rendered once as "Name: value\r\n" in a block of its
 * own.  Blocks are freed only with the transaction, so a text part stays
 * valid whatever later plugins do; their total is bounded.
 *
 * It never does I/O, never talks to the chain or the session: the host
 * API checks that the call comes from eom.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tx.h"

/* "FROM:<address> params" / "TO:<address> params", as a command's. */
#define TX_EDIT_ARG_MAX 2048

struct tx_field {
	const char *name, *value;	/* the store's, or in a block */
	const char *text;		/* rendered field; NULL: original */
	size_t text_len;
	uint32_t raw_off, raw_len;	/* original: its span in the message */
};

/* One inserted or changed field: "Name: value\r\n\0name\0value\0". */
struct tx_edit_block {
	struct tx_edit_block *next;
	char data[];
};

/* Where tx_head_part() goes on: plugins read the parts in order. */
struct head_cursor {
	size_t index;			/* the part it produces next */
	size_t field;			/* the next field to look at */
	int stage;			/* 0 trace, 1 fields, 2 tail, 3 done */
};

struct tx_edits {
	struct tx_field *f;
	size_t n, cap;
	uint64_t kept_end;		/* where the store's kept fields end */
	struct tx_edit_block *blocks;
	size_t bytes;			/* in blocks, <= TX_EDIT_BYTES_MAX */
	struct head_cursor cur;
};

/* ---- header fields ---- */

/* edits_get - the edited field list, made from the store at first use */
static struct tx_edits *
edits_get(struct tx *tx)
{
	struct tx_edits *e;
	size_t i, cap;

	if (tx->edits != NULL)
		return tx->edits;
	cap = tx->nhdr + 8 < TX_HEADER_FIELDS_MAX ? tx->nhdr + 8 :
	    TX_HEADER_FIELDS_MAX;
	if (cap < tx->nhdr)
		cap = tx->nhdr;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	if ((e->f = calloc(cap, sizeof(*e->f))) == NULL) {
		free(e);
		return NULL;
	}
	e->cap = cap;
	for (i = 0; i < tx->nhdr; i++) {
		const struct tx_header_ref *r = &tx->hdr_idx[i];

		e->f[i] = (struct tx_field){
			.name = tx->hdr_store + r->name,
			.value = tx->hdr_store + r->value,
			.raw_off = r->raw_off, .raw_len = r->raw_len,
		};
	}
	e->n = tx->nhdr;
	/* The tail starts where the kept prefix ended, whatever is later
	 * removed from it. */
	if (tx->nhdr > 0)
		e->kept_end = (uint64_t)tx->hdr_idx[tx->nhdr - 1].raw_off +
		    tx->hdr_idx[tx->nhdr - 1].raw_len;
	tx->edits = e;
	return e;
}

/* edited - an edit took effect: later readers start over */
static void
edited(struct tx *tx)
{
	tx->edits->cur = (struct head_cursor){ 0 };
	tx->info.head_edited = 1;
}

/* field_valid - a field name (RFC 5322 §3.6.8: printable ASCII but
 * ':'), a one-line value, the line within RFC 5322's 998 octets */
static int
field_valid(const char *name, const char *value, size_t *nl, size_t *vl)
{
	size_t i;

	if (name == NULL || value == NULL || name[0] == '\0')
		return -1;
	for (i = 0; name[i] != '\0'; i++)
		if (name[i] <= ' ' || name[i] >= 0x7f || name[i] == ':' ||
		    i >= TX_EDIT_LINE_MAX)
			return -1;
	*nl = i;
	for (i = 0; value[i] != '\0'; i++)
		if (value[i] == '\r' || value[i] == '\n' || i >= TX_EDIT_LINE_MAX)
			return -1;
	*vl = i;
	return *nl + 2 + *vl <= TX_EDIT_LINE_MAX ? 0 : -1;
}

/* name_valid - a field name to look for */
static int
name_valid(const char *name)
{
	size_t nl, vl;

	return field_valid(name, "", &nl, &vl);
}

/* field_render - a new field in a block of its own; -1: no memory or
 * the per-message budget is spent */
static int
field_render(struct tx_edits *e, const char *name, size_t nl,
    const char *value, size_t vl, struct tx_field *out)
{
	size_t size = (nl + 2 + vl + 2 + 1) + (nl + 1) + (vl + 1);
	struct tx_edit_block *b;
	char *p;

	if (e->bytes + size > TX_EDIT_BYTES_MAX ||
	    (b = malloc(sizeof(*b) + size)) == NULL)
		return -1;
	p = b->data;
	memcpy(p, name, nl);
	memcpy(p + nl, ": ", 2);
	memcpy(p + nl + 2, value, vl);
	memcpy(p + nl + 2 + vl, "\r\n", 3);
	*out = (struct tx_field){ .text = p, .text_len = nl + 2 + vl + 2 };
	p += nl + 2 + vl + 3;
	memcpy(p, name, nl);
	p[nl] = '\0';
	out->name = p;
	p += nl + 1;
	memcpy(p, value, vl);
	p[vl] = '\0';
	out->value = p;
	b->next = e->blocks;
	e->blocks = b;
	e->bytes += size;
	return 0;
}

size_t
tx_header_count(const struct tx *tx)
{
	return tx->edits != NULL ? tx->edits->n : tx->nhdr;
}

int
tx_header_get(const struct tx *tx, size_t index, const char **name,
    const char **value)
{
	if (tx->edits != NULL) {
		if (index >= tx->edits->n)
			return -1;
		*name = tx->edits->f[index].name;
		*value = tx->edits->f[index].value;
		return 0;
	}
	if (index >= tx->nhdr)
		return -1;
	*name = tx->hdr_store + tx->hdr_idx[index].name;
	*value = tx->hdr_store + tx->hdr_idx[index].value;
	return 0;
}

/* tx_header_insert - "name: value" before position (clamped: last) */
int
tx_header_insert(struct tx *tx, size_t position, const char *name,
    const char *value)
{
	struct tx_edits *e;
	struct tx_field f;
	size_t nl, vl;

	if (field_valid(name, value, &nl, &vl) < 0 ||
	    tx_header_count(tx) >= TX_HEADER_FIELDS_MAX ||
	    (e = edits_get(tx)) == NULL)
		return -1;
	if (e->n == e->cap) {
		size_t ncap = e->cap * 2 > TX_HEADER_FIELDS_MAX ?
		    TX_HEADER_FIELDS_MAX : e->cap * 2;
		struct tx_field *nf;

		if (ncap < 8)
			ncap = 8;
		if ((nf = realloc(e->f, ncap * sizeof(*nf))) == NULL)
			return -1;
		e->f = nf;
		e->cap = ncap;
	}
	if (field_render(e, name, nl, value, vl, &f) < 0)
		return -1;
	if (position > e->n)
		position = e->n;
	memmove(&e->f[position + 1], &e->f[position],
	    (e->n - position) * sizeof(*e->f));
	e->f[position] = f;
	e->n++;
	edited(tx);
	return 0;
}

/* tx_header_change - a new value for the occurrence-th field called
 * name (1: the first), or (value NULL) its removal */
int
tx_header_change(struct tx *tx, const char *name, size_t occurrence,
    const char *value)
{
	const char *fn, *fv;
	struct tx_edits *e;
	struct tx_field f;
	size_t i, seen = 0, nl = 0, vl = 0;

	if (name_valid(name) < 0 || occurrence == 0 ||
	    (value != NULL && field_valid(name, value, &nl, &vl) < 0))
		return -1;
	for (i = 0; tx_header_get(tx, i, &fn, &fv) == 0; i++)
		if (strcasecmp(fn, name) == 0 && ++seen == occurrence)
			break;
	if (seen != occurrence || (e = edits_get(tx)) == NULL)
		return -1;
	if (value == NULL) {
		memmove(&e->f[i], &e->f[i + 1], (e->n - i - 1) * sizeof(*e->f));
		e->n--;
		edited(tx);
		return 0;
	}
	/* The field keeps its name as it was spelt. */
	nl = strlen(e->f[i].name);
	if (field_render(e, e->f[i].name, nl, value, vl, &f) < 0)
		return -1;
	e->f[i] = f;
	edited(tx);
	return 0;
}

/* head_next - the part at cursor c, moving it on; 0 when none is left */
static int
head_next(const struct tx *tx, struct head_cursor *c, sh_head_part *part)
{
	const struct tx_edits *e = tx->edits;
	size_t n = e != NULL ? e->n : 0;
	uint64_t kept_end = e != NULL ? e->kept_end : 0;
	uint64_t hs = tx->header_size > kept_end ? tx->header_size : kept_end;
	uint64_t start, end;
	const struct tx_field *f;

	for (;;) {
		switch (c->stage) {
		case 0:
			c->stage = 1;
			if (tx->trace_len > 0) {
				*part = (sh_head_part){ .text = tx->trace,
				    .len = tx->trace_len };
				return 1;
			}
			break;
		case 1:
			if (c->field >= n) {
				c->stage = 2;
				break;
			}
			f = &e->f[c->field++];
			if (f->text != NULL) {
				*part = (sh_head_part){ .text = f->text,
				    .len = f->text_len };
				return 1;
			}
			start = f->raw_off;
			end = start + f->raw_len;
			while (c->field < n && e->f[c->field].text == NULL &&
			    e->f[c->field].raw_off == end)
				end += e->f[c->field++].raw_len;
			if (c->field == n && end == kept_end) {
				end = hs;	/* the tail touches the run */
				c->stage = 3;
			}
			if (end == start)
				break;
			*part = (sh_head_part){ .len = (size_t)(end - start),
			    .offset = start };
			return 1;
		case 2:
			c->stage = 3;
			if (hs > kept_end) {
				*part = (sh_head_part){
				    .len = (size_t)(hs - kept_end),
				    .offset = kept_end };
				return 1;
			}
			break;
		default:
			return 0;
		}
	}
}

int
tx_head_part(struct tx *tx, size_t index, sh_head_part *part)
{
	struct head_cursor local = { 0 };
	struct head_cursor *c = tx->edits != NULL ? &tx->edits->cur : &local;
	sh_head_part p;

	/* Read in order, each part costs O(1); a step back starts over. */
	if (c->index > index)
		*c = (struct head_cursor){ 0 };
	while (head_next(tx, c, &p))
		if (c->index++ == index) {
			*part = p;
			return 0;
		}
	return -1;
}

/* ---- the envelope ---- */

/* address_parse - a new sh_address from address and params, checked as
 * MAIL (is_rcpt 0) or RCPT (1) would check them; NULL when refused */
static sh_address *
address_parse(const struct tx *tx, const char *address, const char *params,
    int is_rcpt)
{
	char line[TX_EDIT_ARG_MAX];
	struct smtp_mail_arg a;
	int n;

	if (address == NULL)
		return NULL;
	if (params == NULL)
		params = "";
	n = snprintf(line, sizeof(line), "%s:<%s>%s%s", is_rcpt ? "TO" : "FROM",
	    address, params[0] != '\0' ? " " : "", params);
	if (n < 0 || (size_t)n >= sizeof(line) ||
	    smtp_parse_mail_arg(line, (size_t)n, is_rcpt, &a, NULL) != SMTP_PARSE_OK)
		return NULL;
	/* What the client asked for at MAIL holds for the whole message. */
	if ((!tx->smtputf8 && smtp_has_8bit(a.addr, a.addr_len)) ||
	    (a.smtputf8 && !tx->smtputf8))
		return NULL;
	return address_new(&a);	/* before line, its params' home, goes */
}

/* envelope_refresh - the sh_tx() view follows at once */
static void
envelope_refresh(struct tx *tx)
{
	tx->info.sender = tx->sender;
	tx->info.rcpts = (const sh_address *const *)tx->rcpts;
	tx->info.nrcpts = tx->nrcpts;
}

/* address_is - does a have local part local (exact) and domain domain
 * (case-insensitive)? */
static int
address_is(const sh_address *a, const char *local, const char *domain)
{
	return strcmp(a->local, local) == 0 && strcasecmp(a->domain, domain) == 0;
}

int
tx_sender_change(struct tx *tx, const char *address, const char *params)
{
	sh_address *s = address_parse(tx, address, params, 0);

	if (s == NULL)
		return -1;
	/* The old one only now: address may point into it. */
	free(tx->sender);
	tx->sender = s;
	envelope_refresh(tx);
	return 0;
}

int
tx_rcpt_add(struct tx *tx, const char *address, const char *params,
    size_t max_rcpts)
{
	sh_address *r;
	size_t i;

	if (tx->nrcpts >= max_rcpts ||
	    (r = address_parse(tx, address, params, 1)) == NULL)
		return -1;
	for (i = 0; i < tx->nrcpts; i++)
		if (address_is(tx->rcpts[i], r->local, r->domain))
			break;
	if (i < tx->nrcpts || tx_append_rcpt(tx, r) < 0) {
		free(r);
		return -1;
	}
	envelope_refresh(tx);
	return 0;
}

int
tx_rcpt_remove(struct tx *tx, const char *address)
{
	char local[SMTP_PATH_MAX + 1];
	const char *domain = "", *at;
	size_t i, j, matches = 0, len;

	/* A copy: address may be one of the recipients about to go. */
	if (address == NULL || (len = strlen(address)) > SMTP_PATH_MAX)
		return -1;
	memcpy(local, address, len + 1);
	if ((at = strrchr(local, '@')) != NULL) {
		local[at - local] = '\0';
		domain = at + 1;
	}
	for (i = 0; i < tx->nrcpts; i++)
		matches += address_is(tx->rcpts[i], local, domain);
	/* A message always has a recipient. */
	if (matches == 0 || matches == tx->nrcpts)
		return -1;
	for (i = j = 0; i < tx->nrcpts; i++) {
		if (address_is(tx->rcpts[i], local, domain))
			free(tx->rcpts[i]);
		else
			tx->rcpts[j++] = tx->rcpts[i];
	}
	for (i = j; i < tx->nrcpts; i++)
		tx->rcpts[i] = NULL;
	tx->nrcpts = j;
	envelope_refresh(tx);
	return 0;
}

void
tx_edits_free(struct tx_edits *e)
{
	struct tx_edit_block *b, *next;

	if (e == NULL)
		return;
	for (b = e->blocks; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(e->f);
	free(e);
}
