/*
 * data_stream.c - DATA decoder and header splitter
 *
 * The DATA decoder turns the raw bytes that follow "DATA\r\n" into the
 * message: it finds the end marker, removes stuffed dots and deals with
 * bare CR and bare LF.  The header splitter cuts the decoded message's
 * header section into unfolded fields for the "header" hook.
 *
 * Both are pure: no I/O, no allocation, no globals.  See data_stream.h
 * for the contracts; this file explains the why.
 */

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "data_stream.h"

/*
 * DATA decoder
 *
 * RFC 5321 §4.1.1.4: the mail data ends with a line holding a single
 * period, i.e. the sequence <CR><LF>.<CR><LF>, where the first CRLF ends the
 * last message line and belongs to the message.  RFC 5321 §4.5.2: a line
 * whose first character is a period had one extra period prepended by the
 * client, which the server deletes.
 *
 * SMTP smuggling (CVE-2023-51764 and friends) lives in the gap between
 * servers that honour <LF>.<LF>, <CR><LF>.<LF>, <LF>.<CR><LF> or
 * <CR>.<CR><LF> as the end of data and those that do not.  We therefore
 * only ever accept a real CRLF as a line end for the purpose of finding
 * the end marker: a line that follows a bare LF or bare CR is not a line
 * start.  For the same reason it is not a line start for unstuffing
 * either: a '.' after a bare line end is kept.  So in NORMALIZE mode
 * "a\n..b" becomes "a\r\n..b" (the bare LF repaired, both dots kept), and
 * "a\n.\r\n" is data, not the end.  A normalised message may thus hold
 * lines that start with '.'; anyone sending it on dot-stuffs it as usual.
 *
 * Speed: this runs over every byte of every message, so the inner loop
 * only jumps from CR or LF to the next CR or LF (scan_crlf: one pass, 16
 * octets at a time, where two memchr() calls per line cost 2,000
 * instructions per 2 KiB message, issue 16) and looks at the bytes around
 * them.  Output is produced lazily: [s, r) is a span of input
 * already accepted but not yet written to out + w.  It is written only when
 * a byte has to be dropped (a stuffed dot) or inserted (NORMALIZE), and at
 * the end of the call.  When decoding in place and nothing was removed yet,
 * out + w == in + s and nothing is copied at all.
 */

/*
 * scan_crlf - the offset of the first CR or LF in p[0..n), or n
 */
static inline size_t
scan_crlf(const unsigned char *p, size_t n)
{
	size_t i = 0;

#if defined(__SSE2__)
	const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');

	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(
		    _mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));

		if (m != 0)
			return i + (size_t)__builtin_ctz(m);
	}
	if (i < n && n >= 16) {
		/* The tail: the last 16 octets, without those already seen. */
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + n - 16));
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(
		    _mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));

		m &= ~((1u << (16 - (n - i))) - 1);
		return m != 0 ? n - 16 + (size_t)__builtin_ctz(m) : n;
	}
#endif
	for (; i < n; i++)
		if (p[i] == '\r' || p[i] == '\n')
			return i;
	return n;
}

/*
 * ds_flush - write the pending input span [s, r) to out + w
 */
#define ds_flush() do {							\
	if (r > s) {							\
		if (out + w != in + s)					\
			memmove(out + w, in + s, r - s);		\
		w += r - s;						\
	}								\
	s = r;								\
} while (0)

/*
 * data_decoder_init - reset a decoder for a new message
 */
void
data_decoder_init(struct data_decoder *d, enum data_bare_policy policy)
{
	memset(d, 0, sizeof(*d));
	d->policy_ = policy == DATA_BARE_NORMALIZE;
	/* The DATA command's own CRLF puts us at the start of a line. */
	d->bol_ = 1;
}

/*
 * data_decode - decode one piece of the DATA stream
 */
enum data_status
data_decode(struct data_decoder *d, unsigned char *in, size_t inlen,
    unsigned char *out, size_t outcap, size_t *in_used, size_t *out_len)
{
	enum data_status st = DATA_MORE;
	size_t r = 0, s = 0, w = 0, p;
	uint64_t dots = 0;
	int normalize = d->policy_;
	int bol = d->bol_, cr = d->cr_;
	int bare_lf = 0, bare_cr = 0;

	if (d->done_) {
		*in_used = 0;
		*out_len = 0;
		return DATA_END;
	}

	/*
	 * Never write beyond outcap: every input byte yields at most two
	 * output bytes in NORMALIZE mode and at most one otherwise.  The one
	 * extra LF that may complete a CR carried in from the last call is
	 * paid for by the CR this call may carry out, which it writes alone.
	 */
	if (normalize) {
		if (inlen > outcap / 2)
			inlen = outcap / 2;
	} else if (inlen > outcap)
		inlen = outcap;

	/* A CR ended the last call: this call's first byte says what it was. */
	if (cr) {
		if (inlen == 0)
			goto done;
		cr = 0;
		if (in[0] == '\n') {
			r = 1;
			bol = 1;
		} else {
			bare_cr = 1;
			if (normalize)
				out[w++] = '\n';
		}
	}

	for (;;) {
		if (bol) {
			if (r == inlen)
				break;
			if (in[r] == '.') {
				/*
				 * Need up to two more bytes to tell ".\r\n"
				 * from a stuffed dot; leave them to the caller.
				 */
				if (inlen - r < 2 ||
				    (in[r + 1] == '\r' && inlen - r < 3))
					break;
				if (in[r + 1] == '\r' && in[r + 2] == '\n') {
					ds_flush();
					r += 3;
					s = r;
					st = DATA_END;
					break;
				}
				/* RFC 5321 §4.5.2: drop the stuffed dot. */
				ds_flush();
				s = ++r;
				dots++;
			}
			bol = 0;
		}

		p = r + scan_crlf(in + r, inlen - r);
		if (p == inlen) {
			r = inlen;
			break;
		}
		if (in[p] == '\n') {
			/* Bare LF (RFC 5321 §2.3.8): a CR before it would
			 * have been found first. */
			bare_lf = 1;
			if (normalize) {
				r = p;
				ds_flush();
				out[w++] = '\r';
			}
			r = p + 1;
			continue;
		}
		if (p + 1 == inlen) {
			/* CR at the end: next call decides. */
			r = inlen;
			cr = 1;
			break;
		}
		if (in[p + 1] == '\n') {
			/* CRLF: the only real line end. */
			r = p + 2;
			bol = 1;
			continue;
		}
		/* Bare CR. */
		bare_cr = 1;
		r = p + 1;
		if (normalize) {
			ds_flush();
			out[w++] = '\n';
		}
	}
	ds_flush();

done:
	d->bol_ = bol ? 1 : 0;
	d->cr_ = cr ? 1 : 0;
	d->done_ = st == DATA_END;
	if (bare_lf)
		d->saw_bare_lf = 1;
	if (bare_cr)
		d->saw_bare_cr = 1;
	d->dots_removed += dots;
	d->bytes_in += r;
	d->bytes_out += w;
	*in_used = r;
	*out_len = w;
	return st;
}

#undef ds_flush

/*
 * data_status_str - name of a data_status for logs
 */
const char *
data_status_str(enum data_status st)
{
	switch (st) {
	case DATA_MORE:
		return "more";
	case DATA_END:
		return "end";
	}
	return "?";
}

/*
 * Header splitter
 *
 * RFC 5322 §2.2: a header field is a name of printable US-ASCII characters
 * other than colon (33..126), a colon and a body; §2.2.3: a long field may
 * be folded by inserting CRLF before any WSP, and unfolding removes exactly
 * those CRLFs.  A field therefore ends only where the next line does not
 * start with SP or HTAB, which is why a field is handed out one byte late.
 *
 * The header section ends at the empty line (§2.1) or, for robustness with
 * broken mail, at the first line that cannot be a header field; that line
 * is the first body line and is given back unconsumed.  Because fields are
 * returned as soon as the next line starts, such a line always starts at
 * in[0] of some call, which keeps giving it back simple.
 */

enum {
	HS_NAME,	/* in a line that may be a field; buf = its bytes */
	HS_LINE_CR,	/* a line that began with CR; buf = "\r" */
	HS_VALUE,	/* in a field line after the colon */
	HS_EOL,		/* field line ended; next line may be a continuation */
	HS_DONE		/* HEADER_END returned */
};

/*
 * hs_append - append value bytes, cutting at HEADER_FIELD_MAX
 */
static void
hs_append(struct header_splitter *h, const void *p, size_t n)
{
	size_t room = HEADER_FIELD_MAX - h->len;

	if (n > room) {
		n = room;
		h->trunc_ = 1;
	}
	memcpy(h->buf + h->len, p, n);
	h->len += n;
}

/*
 * hs_field - hand out the pending field and start a new line
 */
static enum header_status
hs_field(struct header_splitter *h, const char **name, size_t *name_len,
    const char **value, size_t *value_len)
{
	*name = h->buf;
	*name_len = h->name_len_;
	*value = h->buf + h->name_len_;
	*value_len = h->len - h->name_len_;
	h->truncated = h->trunc_;
	h->fields++;
	/* buf keeps the bytes until the next call overwrites them. */
	h->len = 0;
	h->name_len_ = 0;
	h->trunc_ = 0;
	h->cr_ = 0;
	h->value_started_ = 0;
	h->state_ = HS_NAME;
	return HEADER_FIELD;
}

/*
 * hs_end - the header section is over; give back unfinished body bytes
 */
static enum header_status
hs_end(struct header_splitter *h, size_t carried, const char **name,
    size_t *name_len, const char **value, size_t *value_len)
{
	*name = NULL;
	*name_len = 0;
	/* Never NULL, so that memcpy(dst, *value, 0) is fine. */
	*value = h->buf;
	*value_len = carried;
	h->truncated = 0;
	h->state_ = HS_DONE;
	return HEADER_END;
}

/*
 * header_splitter_init - reset a splitter for a new message
 */
void
header_splitter_init(struct header_splitter *h)
{
	/* buf is scratch: clearing 64 KiB per message would be waste. */
	h->len = 0;
	h->name_len_ = 0;
	h->fields = 0;
	h->state_ = HS_NAME;
	h->truncated = 0;
	h->trunc_ = 0;
	h->cr_ = 0;
	h->value_started_ = 0;
}

/*
 * header_splitter_next - split decoded message bytes into header fields
 */
enum header_status
header_splitter_next(struct header_splitter *h, const unsigned char *in,
    size_t len, size_t *used, const char **name, size_t *name_len,
    const char **value, size_t *value_len)
{
	const unsigned char *q;
	size_t i = 0, carried = 0, e, seg;
	unsigned char c;

	*name = NULL;
	*name_len = 0;
	*value = h->buf;
	*value_len = 0;

	/* Bytes of the current line that earlier calls consumed. */
	if (h->state_ == HS_NAME || h->state_ == HS_LINE_CR)
		carried = h->len;

	while (i < len) {
		switch (h->state_) {
		case HS_NAME:
			c = in[i];
			if (c == ':' && h->len > 0) {
				h->name_len_ = h->len;
				h->state_ = HS_VALUE;
				i++;
				break;
			}
			if (c > 32 && c < 127 && c != ':' &&
			    h->len < HEADER_FIELD_MAX) {
				h->buf[h->len++] = (char)c;
				i++;
				break;
			}
			if (h->len == 0 && c == '\r') {
				h->buf[h->len++] = '\r';
				h->state_ = HS_LINE_CR;
				i++;
				break;
			}
			if (h->len == 0 && c == '\n') {
				/* Empty line ended by a bare LF: be lenient. */
				*used = i + 1;
				return hs_end(h, 0, name, name_len, value,
				    value_len);
			}
			/* Not a field: this line is the first body line. */
			*used = 0;
			return hs_end(h, carried, name, name_len, value,
			    value_len);

		case HS_LINE_CR:
			if (in[i] == '\n') {
				/* RFC 5322 §2.1: the empty line. */
				*used = i + 1;
				return hs_end(h, 0, name, name_len, value,
				    value_len);
			}
			*used = 0;
			return hs_end(h, carried, name, name_len, value,
			    value_len);

		case HS_VALUE:
			if (h->cr_) {
				h->cr_ = 0;
				if (in[i] == '\n') {
					i++;
					h->state_ = HS_EOL;
					break;
				}
				/* A bare CR is data. */
				hs_append(h, "\r", 1);
				h->value_started_ = 1;
			}
			q = memchr(in + i, '\n', len - i);
			e = q != NULL ? (size_t)(q - in) : len;
			seg = e;
			if (e > i && in[e - 1] == '\r') {
				/* CRLF, or a CR whose LF is still to come. */
				seg = e - 1;
				if (q == NULL)
					h->cr_ = 1;
			}
			if (!h->value_started_) {
				while (i < seg && (in[i] == ' ' ||
				    in[i] == '\t'))
					i++;
				if (i < seg)
					h->value_started_ = 1;
			}
			if (seg > i)
				hs_append(h, in + i, seg - i);
			if (q != NULL) {
				i = e + 1;
				h->state_ = HS_EOL;
			} else
				i = len;
			break;

		case HS_EOL:
			/* RFC 5322 §2.2.3: CRLF + WSP is a fold. */
			if (in[i] == ' ' || in[i] == '\t') {
				h->state_ = HS_VALUE;
				break;
			}
			*used = i;
			return hs_field(h, name, name_len, value, value_len);

		case HS_DONE:
		default:
			*used = 0;
			return hs_end(h, 0, name, name_len, value, value_len);
		}
	}

	if (h->state_ == HS_DONE) {
		*used = 0;
		return hs_end(h, 0, name, name_len, value, value_len);
	}
	*used = len;
	return HEADER_NEED_MORE;
}

/*
 * header_splitter_finish - the message ended inside the header section
 */
enum header_status
header_splitter_finish(struct header_splitter *h, const char **name,
    size_t *name_len, const char **value, size_t *value_len)
{
	switch (h->state_) {
	case HS_VALUE:
	case HS_EOL:
		/* A lone CR at the very end is taken as the line end. */
		return hs_field(h, name, name_len, value, value_len);
	case HS_NAME:
	case HS_LINE_CR:
		return hs_end(h, h->len, name, name_len, value, value_len);
	default:
		return hs_end(h, 0, name, name_len, value, value_len);
	}
}

/*
 * header_status_str - name of a header_status for logs
 */
const char *
header_status_str(enum header_status st)
{
	switch (st) {
	case HEADER_NEED_MORE:
		return "need-more";
	case HEADER_FIELD:
		return "field";
	case HEADER_END:
		return "end";
	}
	return "?";
}
