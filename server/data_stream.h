/*
 * data_stream.h - DATA decoder and header splitter
 *
 * SYNOPSIS
 *	#include "data_stream.h"
 *
 *	struct data_decoder d;
 *	data_decoder_init(&d, DATA_BARE_REJECT);
 *	st = data_decode(&d, in, inlen, out, outcap, &used, &outlen);
 *
 *	struct header_splitter *h = malloc(sizeof(*h));
 *	header_splitter_init(h);
 *	st = header_splitter_next(h, msg, len, &used, &name, &nlen,
 *	    &value, &vlen);
 *
 * DESCRIPTION
 *	This module owns the byte-level rules of the SMTP DATA phase: the
 *	end-of-data marker (RFC 5321 §4.1.1.4), dot-unstuffing (RFC 5321
 *	§4.5.2), detection and optional repair of bare CR and bare LF, and
 *	the split of the message's header section into unfolded fields
 *	(RFC 5322 §2.2, §2.2.3).
 *
 *	It never does I/O, never allocates and keeps no globals: both
 *	machines are plain structs the caller owns, so they can be driven
 *	by the session, by unit tests and by libFuzzer alike.  Size limits,
 *	the 550 for bare line endings and BDAT framing belong to the caller.
 */

#ifndef DATA_STREAM_H
#define DATA_STREAM_H

#include <stddef.h>
#include <stdint.h>

/*
 * What to do with a CR not followed by LF ("bare CR") or an LF not
 * preceded by CR ("bare LF").  Both are forbidden in SMTP (RFC 5321
 * §2.3.8) and are the raw material of SMTP smuggling.
 */
enum data_bare_policy {
	DATA_BARE_REJECT,	/* pass through, flag; session says 550 5.5.2 */
	DATA_BARE_NORMALIZE	/* rewrite each bare CR or bare LF as CRLF */
};

enum data_status {
	DATA_MORE,		/* end marker not seen yet; feed more input */
	DATA_END		/* <CR><LF>.<CR><LF> seen; message complete */
};

/*
 * Decoder state.  Small on purpose: everything that has to survive a
 * split between two reads lives here, plus at most two unconsumed bytes
 * that the caller keeps (see data_decode()).  Callers read the saw_* flags
 * and the counters; the other members are private.
 */
struct data_decoder {
	uint64_t	bytes_in;	/* input octets consumed so far */
	uint64_t	bytes_out;	/* message octets produced so far */
	uint64_t	dots_removed;	/* stuffed dots taken out */
	unsigned	policy_ : 1;	/* enum data_bare_policy */
	unsigned	bol_ : 1;	/* next byte starts a line */
	unsigned	cr_ : 1;	/* last byte consumed was a CR */
	unsigned	done_ : 1;	/* end marker seen */
	unsigned	saw_bare_lf : 1;
	unsigned	saw_bare_cr : 1;
};

/* data_decoder_init - reset a decoder for a new message */
void		data_decoder_init(struct data_decoder *, enum data_bare_policy);

/*
 * data_decode - decode one piece of the DATA stream
 *
 * in[0..inlen) are the next bytes after the DATA command's CRLF, as they
 * arrive.  The message bytes (dot-unstuffed, CRLF kept) are written to out
 * and their number to *out_len; *in_used receives the number of input bytes
 * consumed.
 *
 * Buffers: in DATA_BARE_REJECT mode out may equal in (in-place decoding:
 * the decoder only removes bytes, so writes never overtake reads) and
 * outcap must be >= inlen.  In DATA_BARE_NORMALIZE mode out must not
 * overlap in and outcap must be >= 2 * inlen.  A smaller outcap is not an
 * error: the decoder then looks at fewer input bytes (inlen is clamped to
 * outcap, resp. outcap / 2).
 *
 * Unconsumed tail: a '.' or ".\r" at the start of a line at the very end of
 * the input cannot be classified yet (end marker or stuffed dot?), so it is
 * left unconsumed: *in_used >= inlen - 2 (inlen after clamping).  The
 * caller keeps those bytes and presents them again in front of the next
 * input; presenting them alone again is harmless (nothing is consumed).
 * Everything else is consumed; a CR at the end of the input is consumed
 * and remembered, so a CR and an LF in different calls make a CRLF.
 *
 * Returns DATA_END when <CR><LF>.<CR><LF> was found: *in_used then includes
 * the ".\r\n", the output ends with the message's final CRLF (or is empty
 * for an empty message), and bytes after the marker are neither read nor
 * written (they are the client's next pipelined command).  Later calls
 * return DATA_END and consume nothing.  Otherwise returns DATA_MORE.
 *
 * The result is the same whatever the split of the stream across calls.
 */
enum data_status data_decode(struct data_decoder *, unsigned char *in,
		    size_t inlen, unsigned char *out, size_t outcap,
		    size_t *in_used, size_t *out_len);

/* data_status_str - name of a data_status for logs */
const char	*data_status_str(enum data_status);

/*
 * Header splitter.
 */

/*
 * Bounded copy of one unfolded header field.  Overridable only so that the
 * fuzz build can reach the limit with small inputs; every translation unit
 * of a program must then be built with the same value.
 */
#ifndef HEADER_FIELD_MAX
#define HEADER_FIELD_MAX 65536
#endif

enum header_status {
	HEADER_NEED_MORE,	/* all input consumed, field incomplete */
	HEADER_FIELD,		/* one complete field is ready */
	HEADER_END		/* header section over */
};

/*
 * Splitter state.  About 64 KiB: allocate it only while the header section
 * is being read.  Callers read truncated and fields; the rest is private.
 */
struct header_splitter {
	char		buf[HEADER_FIELD_MAX];	/* name, then unfolded value */
	size_t		len;		/* bytes used in buf */
	size_t		name_len_;	/* name length once ':' was seen */
	size_t		fields;		/* fields returned so far */
	int		state_;
	unsigned	truncated : 1;	/* field just returned was cut */
	unsigned	trunc_ : 1;	/* field being built was cut */
	unsigned	cr_ : 1;	/* CR seen, not yet known if CRLF */
	unsigned	value_started_ : 1;	/* leading WSP skipped */
};

/* header_splitter_init - reset a splitter for a new message */
void		header_splitter_init(struct header_splitter *);

/*
 * header_splitter_next - split decoded message bytes into header fields
 *
 * Feed decoded message bytes (CRLF line endings, the output of
 * data_decode(); a bare LF is also taken as a line end).  Returns:
 *
 * HEADER_FIELD: a field is complete.  *name, *name_len and *value, *value_len
 *	point into h->buf and stay valid until the next call.  The value is
 *	unfolded (each CRLF before WSP removed, the WSP kept), the WSP after
 *	the colon and the final CRLF are removed.  A field is complete only
 *	once the first byte of the next line shows it is no continuation, so
 *	*used stops at the start of that line.  h->truncated says whether the
 *	field was cut at HEADER_FIELD_MAX bytes (name plus value).
 *
 * HEADER_END: the header section is over.  Either the empty line was
 *	consumed (*used includes it), or a line that is no header field (no
 *	colon, empty name, or a name byte outside 33..126) was seen and
 *	*used stops before that line: it is the first body line.  If that
 *	line began in an earlier call, its bytes consumed by earlier calls
 *	are given back in *value, *value_len (body bytes that precede
 *	in[*used]); otherwise *value_len is 0.  *name is NULL.  A pending
 *	field is always returned as HEADER_FIELD first.  Later calls return
 *	HEADER_END with *used 0 and *value_len 0.
 *
 * HEADER_NEED_MORE: *used == len; call again with more input, or
 *	header_splitter_finish() if the message ended.
 */
enum header_status header_splitter_next(struct header_splitter *,
		    const unsigned char *in, size_t len, size_t *used,
		    const char **name, size_t *name_len, const char **value,
		    size_t *value_len);

/*
 * header_splitter_finish - the message ended inside the header section
 *
 * Returns the pending field as HEADER_FIELD (call again afterwards), or
 * HEADER_END; for HEADER_END *value, *value_len carry the bytes of an
 * unfinished non-header line as for header_splitter_next().
 */
enum header_status header_splitter_finish(struct header_splitter *,
		    const char **name, size_t *name_len, const char **value,
		    size_t *value_len);

/* header_status_str - name of a header_status for logs */
const char	*header_status_str(enum header_status);

#endif /* DATA_STREAM_H */
