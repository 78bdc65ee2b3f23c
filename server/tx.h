/*
 * tx.h - one mail transaction: envelope, header store, trace block, the
 * plugins' per-transaction slots
 *
 * Memory ownership: struct tx owns the envelope (sender and recipients,
 * one block each), the header store and its index (one block), the trace
 * block and the per-plugin slots; all of it is freed in tx_free(), the
 * slots through their destructors.  The transaction knows nothing of the
 * chain or the session: the session notifies the plugins and frees it.
 */
#ifndef TX_H
#define TX_H

#include <stdint.h>

#include "smtp_parse.h"
#include "util.h"
#include "smtphook.h"

/* Header section limits (docs/PROTOCOL.md); past any of them the message
 * is read to its end and refused.  One field is at most HEADER_FIELD_MAX
 * (data_stream.h) octets unfolded. */
#define TX_HEADER_FIELDS_MAX 1000	/* fields per message: 552 5.3.4 */
#define TX_HEADER_SECTION_MAX (1024 * 1024)	/* octets: 552 5.3.4 */
#define TX_HOPS_MAX 100			/* Received: fields: 554 5.4.6 */

struct tx_slot {
	void *data;
	sh_free_fn destroy;
};

struct tx_header_ref {
	uint32_t name, value;		/* offsets into hdr_store */
	uint32_t raw_off, raw_len;	/* the field as it streamed (message
					 * offset, octets incl. folding, CRLF) */
};

struct tx {
	char id[32];
	sh_address *sender;		/* one malloc'd block */
	sh_address **rcpts;		/* each one block */
	size_t nrcpts, rcpt_cap;
	int smtputf8;
	uint64_t body_size;
	unsigned in_body : 1, in_headers : 1;	/* what sh_tx_info shows (body.c) */
	unsigned bdat : 1;
	char *hdr_store;		/* "name\0value\0" ..., <= 64 KiB */
	size_t hdr_len;
	struct tx_header_ref *hdr_idx;
	size_t nhdr, hdr_cap;
	uint64_t hdr_raw_end;		/* where the last field seen ended */
	unsigned hdr_full : 1;		/* a field did not fit: keep no more */
	struct tx_spares *spares;	/* NULL: malloc and free */
	char *trace;			/* Received: + added headers */
	size_t trace_len;
	uint64_t header_size;		/* where the body starts, once known */
	sh_tx_info info;
	struct tx_edits *edits;	/* NULL until the first head edit */
	size_t nslots;
	struct tx_slot slots[];		/* one per plugin */
};


/* Spare header blocks and trace buffers (util.h, struct spares), shared
 * by the transactions of one loop and owned by the server. */
struct tx_spares {
	struct spares hdr, trace;
};

/* What the Received: trace field says about the connection. */
struct tx_received {
	const char *helo;		/* NULL: "unknown" */
	const char *peer_addr;
	const char *hostname;		/* ours */
	int esmtp;
	const char *tls_protocol, *tls_cipher;	/* NULL: plaintext */
	int authenticated;
};

/* tx_new - a transaction with an id unique across runs and processes:
 * salt (start time, pid), the session's id and its sequence number */
struct tx *tx_new(size_t nplugins, uint64_t salt, const char *session_id,
    unsigned seq);
/* tx_free - destroy the slots and free everything (NULL: nothing) */
void tx_free(struct tx *tx);
int tx_set_sender(struct tx *tx, const struct smtp_mail_arg *a);
sh_address *address_new(const struct smtp_mail_arg *a);
int tx_append_rcpt(struct tx *tx, sh_address *rcpt);
int tx_store_header(struct tx *tx, const char *name, size_t nl,
    const char *value, size_t vl, uint64_t raw_end);
int tx_add_header(struct tx *tx, const char *name, const char *value);
/* tx_add_received - the Received: field first in the trace block */
int tx_add_received(struct tx *tx, const struct tx_received *r);

/*
 * Message edits at eom (tx_edit.c; smtphook.h "MESSAGE EDITS").  The host
 * API checks that the chain is in eom; these only check the arguments and
 * apply the edit at once, so later callers see it.  Each returns 0, or -1
 * and changes nothing (bad arguments, no such field, a limit, no memory).
 *
 * Header fields: the first edit copies the kept fields (hdr_idx) into a
 * list of its own; original fields keep their raw span, inserted and
 * changed ones are rendered "Name: value\r\n" and own their text, which
 * stays valid (also after a later change or removal) until tx_free().
 * At most TX_HEADER_FIELDS_MAX fields; a field line ("name: value") at
 * most TX_EDIT_LINE_MAX octets, name printable ASCII without ':', value
 * without CR or LF; at most TX_EDIT_BYTES_MAX octets of edit text per
 * message.  Names match case-insensitively, occurrences count from 1.
 */
#define TX_EDIT_LINE_MAX 998		/* RFC 5322 §2.1.1 */
#define TX_EDIT_BYTES_MAX (1024 * 1024)

/* tx_header_count - fields of the (edited) header section */
size_t tx_header_count(const struct tx *tx);
/* tx_header_get - the index-th field's name and value; 0, or -1 past
 * the end */
int tx_header_get(const struct tx *tx, size_t index, const char **name,
    const char **value);
/* tx_header_insert - "name: value" before position (>= count: last) */
int tx_header_insert(struct tx *tx, size_t position, const char *name,
    const char *value);
/* tx_header_change - the occurrence-th field called name gets value;
 * value NULL removes it */
int tx_header_change(struct tx *tx, const char *name, size_t occurrence,
    const char *value);

/*
 * tx_head_part - the index-th part of the final header section: the trace
 * block (when not empty), then the fields in order - each inserted or
 * changed field a text part, each run of unchanged original fields whose
 * spans touch one range part - then the range from the end of the last
 * field the store kept (0 when none) to header_size: the fields it did
 * not keep and the empty line.  Touching ranges are one part (so without
 * edits: the trace block, then [0, header_size)); empty ones are left
 * out.  Returns 0, or -1 past the last part.
 */
int tx_head_part(struct tx *tx, size_t index, sh_head_part *part);

/*
 * Envelope edits.  Addresses and parameters are parsed as a MAIL or RCPT
 * command's would be (smtp_parse_mail_arg); an address with 8-bit octets
 * needs a transaction that asked for SMTPUTF8 (which an edit cannot
 * change).  tx_rcpt_add refuses an address already in the list and a
 * list of max_rcpts; tx_rcpt_remove takes out every recipient of that
 * address (local part exact, domain case-insensitive) and refuses to take
 * out the last one.  Both refresh tx->info's envelope members.
 */
int tx_sender_change(struct tx *tx, const char *address, const char *params);
int tx_rcpt_add(struct tx *tx, const char *address, const char *params,
    size_t max_rcpts);
int tx_rcpt_remove(struct tx *tx, const char *address);
/* tx_edits_free - the edits and every text they made (NULL: nothing) */
void tx_edits_free(struct tx_edits *e);

#endif
