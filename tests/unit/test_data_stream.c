/*
 * test_data_stream.c - unit tests for the DATA decoder and header splitter
 *
 * Every decoder case is checked one-shot in both bare-line policies, then
 * fed again split at every byte position (two pieces) and byte by byte,
 * through a helper that behaves like the session: it keeps the decoder's
 * unconsumed tail and presents it again in front of the next piece.  The
 * result must not depend on the split.  The header splitter gets the same
 * treatment.
 *
 *	cc -std=c11 -D_GNU_SOURCE -O2 -Iserver server/data_stream.c \
 *	    tests/unit/test_data_stream.c -lcriterion -o test_data_stream
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "data_stream.h"

/* Loop checks: fail loudly, but do not report millions of passes. */
#define CHECK(cond, ...) do {						\
	if (!(cond))							\
		cr_assert_fail(__VA_ARGS__);				\
} while (0)

#define S(x)	(x), sizeof(x) - 1
#define ALL	((size_t)-1)	/* the whole input is consumed */

/*
 * DATA decoder
 */

struct dres {
	unsigned char	*out;
	size_t		 out_len;
	size_t		 used;		/* stream bytes consumed */
	enum data_status st;
	int		 blf, bcr;
	uint64_t	 dots;
};

/*
 * feed - decode msg in pieces the way the session does
 *
 * Pieces end at cuts[0..ncuts) (non-decreasing) and at len.  The buffer
 * presented to the decoder is its unconsumed tail followed by the next
 * piece.  In place means out == in (REJECT only).  Checks the decoder's
 * contract on every call.
 */
static void
feed(const unsigned char *msg, size_t len, enum data_bare_policy pol,
    int inplace, const size_t *cuts, size_t ncuts, struct dres *res)
{
	struct data_decoder d;
	unsigned char *buf, *tmp, *o;
	size_t pos = 0, base = 0, plen = 0, k, end, n, used, olen, cap;
	enum data_status st = DATA_MORE;

	buf = malloc(len + 3);
	tmp = malloc(2 * len + 6);
	res->out = malloc(2 * len + 1);
	cr_assert(buf != NULL && tmp != NULL && res->out != NULL);
	res->out_len = 0;
	data_decoder_init(&d, pol);

	for (k = 0; k <= ncuts && st == DATA_MORE; k++) {
		end = k < ncuts ? cuts[k] : len;
		memcpy(buf + plen, msg + pos, end - pos);
		n = plen + end - pos;
		pos = end;
		if (inplace) {
			o = buf;
			cap = n;
		} else {
			o = tmp;
			cap = 2 * n;
		}
		st = data_decode(&d, buf, n, o, cap, &used, &olen);
		CHECK(used <= n, "used %zu > inlen %zu", used, n);
		CHECK(olen <= cap, "out_len %zu > outcap %zu", olen, cap);
		CHECK(st == DATA_END || n - used <= 2,
		    "left %zu bytes unconsumed", n - used);
		/* Bytes after the end marker are the next command. */
		CHECK(memcmp(buf + used, msg + base + used, n - used) == 0,
		    "unconsumed input was modified");
		memcpy(res->out + res->out_len, o, olen);
		res->out_len += olen;
		base += used;
		plen = n - used;
		memmove(buf, buf + used, plen);
	}
	/* After the end, nothing more is consumed. */
	if (st == DATA_END) {
		CHECK(data_decode(&d, buf, plen, tmp, 2 * plen, &used,
		    &olen) == DATA_END && used == 0 && olen == 0,
		    "decoder not idle after DATA_END");
	}
	CHECK(d.bytes_in == base && d.bytes_out == res->out_len,
	    "counters wrong");
	res->used = base;
	res->st = st;
	res->blf = d.saw_bare_lf;
	res->bcr = d.saw_bare_cr;
	res->dots = d.dots_removed;
	free(buf);
	free(tmp);
}

/*
 * same - compare two feed() results
 */
static int
same(const struct dres *a, const struct dres *b)
{
	return a->out_len == b->out_len &&
	    memcmp(a->out, b->out, a->out_len) == 0 &&
	    a->used == b->used && a->st == b->st && a->blf == b->blf &&
	    a->bcr == b->bcr && a->dots == b->dots;
}

/*
 * check_splits - msg must decode the same whatever the split
 *
 * Two pieces cut at every position 0..len, then byte by byte, each in
 * copy mode and (REJECT) in place.
 */
static void
check_splits(const char *name, const unsigned char *msg, size_t len,
    enum data_bare_policy pol)
{
	struct dres ref, r;
	size_t cut, i, *cuts;
	int inplace;

	feed(msg, len, pol, 0, NULL, 0, &ref);
	cuts = malloc((len + 1) * sizeof(*cuts));
	cr_assert(cuts != NULL);
	for (i = 0; i < len; i++)
		cuts[i] = i + 1;
	for (inplace = 0; inplace <= (pol == DATA_BARE_REJECT); inplace++) {
		for (cut = 0; cut <= len; cut++) {
			feed(msg, len, pol, inplace, &cut, 1, &r);
			CHECK(same(&ref, &r), "%s: policy %d inplace %d: "
			    "split at %zu differs from one-shot", name,
			    (int)pol, inplace, cut);
			free(r.out);
		}
		feed(msg, len, pol, inplace, cuts, len, &r);
		CHECK(same(&ref, &r), "%s: policy %d inplace %d: byte by "
		    "byte differs from one-shot", name, (int)pol, inplace);
		free(r.out);
	}
	free(cuts);
	free(ref.out);
}

struct dcase {
	const char	*name;
	const char	*in;
	size_t		 inlen;
	const char	*rej;		/* expected output, REJECT */
	size_t		 rejlen;
	const char	*norm;		/* expected output, NORMALIZE */
	size_t		 normlen;
	enum data_status st;
	size_t		 used;		/* ALL: inlen */
	int		 blf, bcr;
	unsigned	 dots;
};

static const struct dcase dcases[] = {
	{ "empty message", S(".\r\n"), S(""), S(""),
	    DATA_END, ALL, 0, 0, 0 },
	{ "one line", S("Hello\r\n.\r\n"), S("Hello\r\n"), S("Hello\r\n"),
	    DATA_END, ALL, 0, 0, 0 },
	{ "one empty line", S("\r\n.\r\n"), S("\r\n"), S("\r\n"),
	    DATA_END, ALL, 0, 0, 0 },
	{ "only dot lines", S("..\r\n..\r\n.\r\n"), S(".\r\n.\r\n"),
	    S(".\r\n.\r\n"), DATA_END, ALL, 0, 0, 2 },
	{ "three dots", S("...\r\n.\r\n"), S("..\r\n"), S("..\r\n"),
	    DATA_END, ALL, 0, 0, 1 },
	{ "dot lines mid-message", S("a\r\n.b\r\n..\r\nc\r\n.\r\n"),
	    S("a\r\nb\r\n.\r\nc\r\n"), S("a\r\nb\r\n.\r\nc\r\n"),
	    DATA_END, ALL, 0, 0, 2 },
	{ "dot space", S(". \r\n.\r\n"), S(" \r\n"), S(" \r\n"),
	    DATA_END, ALL, 0, 0, 1 },
	{ "headers and body",
	    S("Subject: t\r\n\r\none\r\n.two\r\n\r\n..\r\n...\r\nend\r\n"
	    ".\r\nQUIT\r\n"),
	    S("Subject: t\r\n\r\none\r\ntwo\r\n\r\n.\r\n..\r\nend\r\n"),
	    S("Subject: t\r\n\r\none\r\ntwo\r\n\r\n.\r\n..\r\nend\r\n"),
	    DATA_END, 44, 0, 0, 3 },
	{ "pipelined command after end", S("a\r\n.\r\nMAIL FROM:<x>\r\n"),
	    S("a\r\n"), S("a\r\n"), DATA_END, 6, 0, 0, 0 },
	{ "pipelined dot lines after empty message", S(".\r\n..\r\n.\r\n"),
	    S(""), S(""), DATA_END, 3, 0, 0, 0 },
	{ "second end marker is not read", S("a\r\n.\r\n.\r\n"),
	    S("a\r\n"), S("a\r\n"), DATA_END, 6, 0, 0, 0 },
	/* The four smuggling sequences never end the data. */
	{ "smuggle <LF>.<LF>", S("a\n.\nb\r\n.\r\n"), S("a\n.\nb\r\n"),
	    S("a\r\n.\r\nb\r\n"), DATA_END, ALL, 1, 0, 0 },
	{ "smuggle <CR><LF>.<LF>", S("a\r\n.\nb\r\n.\r\n"),
	    S("a\r\n\nb\r\n"), S("a\r\n\r\nb\r\n"), DATA_END, ALL, 1, 0, 1 },
	{ "smuggle <LF>.<CR><LF>", S("a\n.\r\nb\r\n.\r\n"),
	    S("a\n.\r\nb\r\n"), S("a\r\n.\r\nb\r\n"), DATA_END, ALL, 1, 0, 0 },
	{ "smuggle <CR>.<CR><LF>", S("a\r.\r\nb\r\n.\r\n"),
	    S("a\r.\r\nb\r\n"), S("a\r\n.\r\nb\r\n"), DATA_END, ALL, 0, 1, 0 },
	{ "smuggle <LF>.<LF> only", S("a\n.\n"), S("a\n.\n"),
	    S("a\r\n.\r\n"), DATA_MORE, ALL, 1, 0, 0 },
	{ "smuggle <LF>.<CR><LF> at start", S("\n.\r\n"), S("\n.\r\n"),
	    S("\r\n.\r\n"), DATA_MORE, ALL, 1, 0, 0 },
	{ "smuggle .<LF> at start", S(".\n.\r\n"), S("\n.\r\n"),
	    S("\r\n.\r\n"), DATA_MORE, ALL, 1, 0, 1 },
	{ "bare CR mid-line", S("a\rb\r\n.\r\n"), S("a\rb\r\n"),
	    S("a\r\nb\r\n"), DATA_END, ALL, 0, 1, 0 },
	{ "bare LF mid-line", S("a\nb\r\n.\r\n"), S("a\nb\r\n"),
	    S("a\r\nb\r\n"), DATA_END, ALL, 1, 0, 0 },
	{ "bare CR before CRLF", S("\r\r\n.\r\n"), S("\r\r\n"),
	    S("\r\n\r\n"), DATA_END, ALL, 0, 1, 0 },
	{ "two CRs, last one open", S("\r\r"), S("\r\r"), S("\r\n\r"),
	    DATA_MORE, ALL, 0, 1, 0 },
	{ "bare CR then dot", S("\r.x"), S("\r.x"), S("\r\n.x"),
	    DATA_MORE, ALL, 0, 1, 0 },
	{ "dot CR X", S(".\rX\r\n.\r\n"), S("\rX\r\n"), S("\r\nX\r\n"),
	    DATA_END, ALL, 0, 1, 1 },
	{ "dot CR CR LF", S("x\r\n.\r\r\n.\r\n"), S("x\r\n\r\r\n"),
	    S("x\r\n\r\n\r\n"), DATA_END, ALL, 0, 1, 1 },
	{ "dot after bare LF is kept", S("a\n..b\r\n.\r\n"),
	    S("a\n..b\r\n"), S("a\r\n..b\r\n"), DATA_END, ALL, 1, 0, 0 },
	{ "8-bit bytes", S("\xc3\xa9t\xc3\xa9 \xff\x80\r\n.\xfe\r\n.\r\n"),
	    S("\xc3\xa9t\xc3\xa9 \xff\x80\r\n\xfe\r\n"),
	    S("\xc3\xa9t\xc3\xa9 \xff\x80\r\n\xfe\r\n"),
	    DATA_END, ALL, 0, 0, 1 },
	{ "NUL bytes", S("a\0b\r\n\0\r\n.\0\r\n.\r\n"),
	    S("a\0b\r\n\0\r\n\0\r\n"), S("a\0b\r\n\0\r\n\0\r\n"),
	    DATA_END, ALL, 0, 0, 1 },
	{ "open: trailing dot", S("abc\r\n."), S("abc\r\n"), S("abc\r\n"),
	    DATA_MORE, 5, 0, 0, 0 },
	{ "open: trailing dot CR", S("abc\r\n.\r"), S("abc\r\n"),
	    S("abc\r\n"), DATA_MORE, 5, 0, 0, 0 },
	{ "open: trailing two dots", S("abc\r\n.."), S("abc\r\n."),
	    S("abc\r\n."), DATA_MORE, ALL, 0, 0, 1 },
	{ "open: trailing CR", S("abc\r"), S("abc\r"), S("abc\r"),
	    DATA_MORE, ALL, 0, 0, 0 },
	{ "open: nothing", S(""), S(""), S(""), DATA_MORE, 0, 0, 0, 0 },
	{ "open: lone dot", S("."), S(""), S(""), DATA_MORE, 0, 0, 0, 0 },
	{ "open: no line end", S("abc"), S("abc"), S("abc"),
	    DATA_MORE, ALL, 0, 0, 0 },
	{ "mixed bare endings", S("\n\r\n\r.\r\n..\n.\r\n.\r\n"),
	    S("\n\r\n\r.\r\n.\n.\r\n"),
	    S("\r\n\r\n\r\n.\r\n.\r\n.\r\n"), DATA_END, ALL, 1, 1, 1 },
};

/*
 * check_case - one-shot expectations of one table row, one policy
 */
static void
check_case(const struct dcase *c, enum data_bare_policy pol)
{
	struct dres r;
	const char *want = pol == DATA_BARE_REJECT ? c->rej : c->norm;
	size_t wantlen = pol == DATA_BARE_REJECT ? c->rejlen : c->normlen;
	size_t used = c->used == ALL ? c->inlen : c->used;

	feed((const unsigned char *)c->in, c->inlen, pol, 0, NULL, 0, &r);
	CHECK(r.st == c->st, "%s: policy %d: status %s", c->name, (int)pol,
	    data_status_str(r.st));
	CHECK(r.used == used, "%s: policy %d: used %zu, want %zu", c->name,
	    (int)pol, r.used, used);
	CHECK(r.out_len == wantlen && memcmp(r.out, want, wantlen) == 0,
	    "%s: policy %d: wrong output (%zu bytes)", c->name, (int)pol,
	    r.out_len);
	CHECK(r.blf == c->blf && r.bcr == c->bcr, "%s: policy %d: bare "
	    "flags lf=%d cr=%d", c->name, (int)pol, r.blf, r.bcr);
	CHECK(r.dots == c->dots, "%s: policy %d: %llu dots removed",
	    c->name, (int)pol, (unsigned long long)r.dots);
	/*
	 * The message's final CRLF is part of the end marker's first CRLF,
	 * so a message without a final CRLF cannot be expressed: an ended
	 * message is empty or ends in CRLF.
	 */
	if (r.st == DATA_END)
		CHECK(r.out_len == 0 || (r.out_len >= 2 &&
		    memcmp(r.out + r.out_len - 2, "\r\n", 2) == 0),
		    "%s: ended message does not end in CRLF", c->name);
	free(r.out);
}

Test(data_decode, table_one_shot)
{
	size_t i;

	for (i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
		check_case(&dcases[i], DATA_BARE_REJECT);
		check_case(&dcases[i], DATA_BARE_NORMALIZE);
	}
}

Test(data_decode, table_every_split)
{
	const struct dcase *c;
	size_t i;

	for (i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
		c = &dcases[i];
		check_splits(c->name, (const unsigned char *)c->in, c->inlen,
		    DATA_BARE_REJECT);
		check_splits(c->name, (const unsigned char *)c->in, c->inlen,
		    DATA_BARE_NORMALIZE);
	}
}

/*
 * decode1 - one data_decode() call on a string, REJECT, separate buffer
 */
static enum data_status
decode1(struct data_decoder *d, const char *s, size_t len, char *out,
    size_t *used, size_t *olen)
{
	unsigned char in[256];

	cr_assert_leq(len, sizeof(in));
	memcpy(in, s, len);
	return data_decode(d, in, len, (unsigned char *)out, 2 * len, used,
	    olen);
}

Test(data_decode, empty_message)
{
	struct data_decoder d;
	char out[16];
	size_t used, olen;

	data_decoder_init(&d, DATA_BARE_REJECT);
	cr_assert_eq(decode1(&d, S(".\r\n"), out, &used, &olen), DATA_END);
	cr_assert_eq(used, 3);
	cr_assert_eq(olen, 0);
	cr_assert_eq(d.bytes_out, 0);
	cr_assert_eq(d.saw_bare_lf, 0);
	cr_assert_eq(d.saw_bare_cr, 0);
}

Test(data_decode, end_marker_split_at_every_position)
{
	static const char msg[] = "hi\r\n.\r\nNOOP\r\n";
	struct data_decoder d;
	char out[32];
	size_t cut, used, olen, used2, olen2;
	enum data_status st;
	char rest[32];

	/* Cut 7 and later: the marker is complete in the first piece. */
	for (cut = 0; cut < 7; cut++) {
		data_decoder_init(&d, DATA_BARE_REJECT);
		st = decode1(&d, msg, cut, out, &used, &olen);
		cr_assert_eq(st, DATA_MORE, "cut %zu", cut);
		/* Only the '.' or ".\r" of the marker may stay behind. */
		cr_assert_geq(used, cut < 5 ? cut : 4, "cut %zu", cut);
		/* Re-present the tail followed by the rest. */
		memcpy(rest, msg + used, sizeof(msg) - 1 - used);
		st = decode1(&d, rest, sizeof(msg) - 1 - used, out + olen,
		    &used2, &olen2);
		cr_assert_eq(st, DATA_END, "cut %zu", cut);
		cr_assert_eq(used + used2, 7, "cut %zu", cut);
		cr_assert_eq(olen + olen2, 4, "cut %zu", cut);
		cr_assert_arr_eq(out, "hi\r\n", 4, "cut %zu", cut);
	}
}

Test(data_decode, tail_is_left_for_the_caller)
{
	struct data_decoder d;
	char out[16];
	size_t used, olen;

	data_decoder_init(&d, DATA_BARE_REJECT);
	cr_assert_eq(decode1(&d, S("."), out, &used, &olen), DATA_MORE);
	cr_assert_eq(used, 0);
	cr_assert_eq(decode1(&d, S(".\r"), out, &used, &olen), DATA_MORE);
	cr_assert_eq(used, 0);
	cr_assert_eq(olen, 0);
	cr_assert_eq(decode1(&d, S(".\r\n"), out, &used, &olen), DATA_END);
	cr_assert_eq(used, 3);
	cr_assert_eq(olen, 0);
}

Test(data_decode, cr_at_chunk_end_lf_next_chunk)
{
	struct data_decoder d;
	char out[16];
	size_t used, olen;

	data_decoder_init(&d, DATA_BARE_REJECT);
	cr_assert_eq(decode1(&d, S("ab\r"), out, &used, &olen), DATA_MORE);
	cr_assert_eq(used, 3, "a trailing CR is consumed");
	cr_assert_eq(olen, 3);
	cr_assert_eq(decode1(&d, S("\n.\r\n"), out, &used, &olen),
	    DATA_END, "CR + LF across calls is a CRLF");
	cr_assert_eq(used, 4);
	cr_assert_eq(olen, 1);
	cr_assert_eq(out[0], '\n');
	cr_assert_eq(d.saw_bare_cr, 0);
	cr_assert_eq(d.saw_bare_lf, 0);
}

Test(data_decode, cr_at_chunk_end_bare_normalized)
{
	struct data_decoder d;
	unsigned char in[8], out[16];
	size_t used, olen;

	data_decoder_init(&d, DATA_BARE_NORMALIZE);
	memcpy(in, "ab\r", 3);
	cr_assert_eq(data_decode(&d, in, 3, out, sizeof(out), &used, &olen),
	    DATA_MORE);
	cr_assert_eq(olen, 3);
	cr_assert_eq(d.saw_bare_cr, 0, "not known to be bare yet");
	memcpy(in, "c\r\n", 3);
	cr_assert_eq(data_decode(&d, in, 3, out, sizeof(out), &used, &olen),
	    DATA_MORE);
	cr_assert_eq(d.saw_bare_cr, 1);
	cr_assert_eq(olen, 4);
	cr_assert_arr_eq(out, "\nc\r\n", 4, "LF completes the bare CR");
}

Test(data_decode, bare_lf_reject_passes_through)
{
	struct data_decoder d;
	unsigned char in[] = "x\ny\r\n.\r\n";
	size_t used, olen;

	data_decoder_init(&d, DATA_BARE_REJECT);
	cr_assert_eq(data_decode(&d, in, sizeof(in) - 1, in, sizeof(in) - 1,
	    &used, &olen), DATA_END);
	cr_assert_eq(used, 8);
	cr_assert_eq(olen, 5);
	cr_assert_arr_eq(in, "x\ny\r\n", 5);
	cr_assert_eq(d.saw_bare_lf, 1);
	cr_assert_eq(d.saw_bare_cr, 0);
}

Test(data_decode, in_place_unstuffing_moves_spans)
{
	struct data_decoder d;
	unsigned char in[] = "a\r\n.b\r\n..\r\nc\r\n.\r\nRSET\r\n";
	size_t used, olen;

	data_decoder_init(&d, DATA_BARE_REJECT);
	cr_assert_eq(data_decode(&d, in, sizeof(in) - 1, in, sizeof(in) - 1,
	    &used, &olen), DATA_END);
	cr_assert_eq(used, 17);
	cr_assert_eq(olen, 12);
	cr_assert_arr_eq(in, "a\r\nb\r\n.\r\nc\r\n", 12);
	cr_assert_arr_eq(in + used, "RSET\r\n", 6, "pipelined bytes kept");
	cr_assert_eq(d.dots_removed, 2);
}

Test(data_decode, idle_after_end)
{
	struct data_decoder d;
	char out[16];
	size_t used, olen;

	data_decoder_init(&d, DATA_BARE_NORMALIZE);
	cr_assert_eq(decode1(&d, S("x\r\n.\r\n"), out, &used, &olen),
	    DATA_END);
	cr_assert_eq(decode1(&d, S("more\r\n"), out, &used, &olen),
	    DATA_END);
	cr_assert_eq(used, 0);
	cr_assert_eq(olen, 0);
	data_decoder_init(&d, DATA_BARE_NORMALIZE);
	cr_assert_eq(decode1(&d, S("more\r\n"), out, &used, &olen),
	    DATA_MORE, "init starts a new message");
	cr_assert_eq(used, 6);
}

Test(data_decode, small_outcap_is_clamped)
{
	struct data_decoder d;
	unsigned char in[] = "\n\n\n\n\n\n\n\n", out[12];
	size_t used, olen;

	memset(out, 0xAA, sizeof(out));
	data_decoder_init(&d, DATA_BARE_NORMALIZE);
	cr_assert_eq(data_decode(&d, in, 8, out, 9, &used, &olen),
	    DATA_MORE);
	cr_assert_eq(used, 4, "9 / 2 input bytes looked at");
	cr_assert_eq(olen, 8);
	cr_assert_eq(out[8], 0xAA, "nothing written beyond outcap");

	data_decoder_init(&d, DATA_BARE_REJECT);
	cr_assert_eq(data_decode(&d, in, 8, out, 3, &used, &olen),
	    DATA_MORE);
	cr_assert_eq(used, 3);
	cr_assert_eq(olen, 3);
}

Test(data_decode, status_names)
{
	cr_assert_str_eq(data_status_str(DATA_MORE), "more");
	cr_assert_str_eq(data_status_str(DATA_END), "end");
}

/*
 * ref_decode - obviously-correct byte-at-a-time model of data_decode()
 *
 * One-shot over the whole input; returns the status, sets *used, writes
 * the message to out and the bare flags to *blf, *bcr.
 */
static enum data_status
ref_decode(const unsigned char *in, size_t n, int normalize,
    unsigned char *out, size_t *olen, size_t *used, int *blf, int *bcr)
{
	size_t i = 0, w = 0;
	int bol = 1;

	*blf = *bcr = 0;
	while (i < n) {
		if (bol && in[i] == '.') {
			if (i + 2 < n && in[i + 1] == '\r' &&
			    in[i + 2] == '\n') {
				*used = i + 3;
				*olen = w;
				return DATA_END;
			}
			if (i + 1 >= n || (in[i + 1] == '\r' && i + 2 >= n))
				break;
			i++;
		}
		bol = 0;
		if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n') {
			out[w++] = '\r';
			out[w++] = '\n';
			i += 2;
			bol = 1;
		} else if (in[i] == '\r' && i + 1 < n) {
			*bcr = 1;
			out[w++] = '\r';
			if (normalize)
				out[w++] = '\n';
			i++;
		} else if (in[i] == '\n') {
			*blf = 1;
			if (normalize)
				out[w++] = '\r';
			out[w++] = '\n';
			i++;
		} else
			out[w++] = in[i++];
	}
	*used = i;
	*olen = w;
	return DATA_MORE;
}

Test(data_decode, random_messages_match_model)
{
	static const unsigned char alpha[] = ".\r\n.\r\nab";
	unsigned char msg[40], want[80];
	unsigned long x = 12345;
	struct dres r;
	size_t len, i, olen, used, cut;
	int blf, bcr, pol, n;
	enum data_status st;

	for (n = 0; n < 3000; n++) {
		x = x * 6364136223846793005UL + 1442695040888963407UL;
		len = (x >> 33) % sizeof(msg);
		for (i = 0; i < len; i++) {
			x = x * 6364136223846793005UL + 1;
			msg[i] = alpha[(x >> 40) % (sizeof(alpha) - 1)];
		}
		for (pol = 0; pol < 2; pol++) {
			st = ref_decode(msg, len, pol, want, &olen, &used,
			    &blf, &bcr);
			cut = (x >> 20) % (len + 1);
			feed(msg, len, (enum data_bare_policy)pol, 0, &cut, 1,
			    &r);
			CHECK(r.st == st && r.used == used &&
			    r.out_len == olen &&
			    memcmp(r.out, want, olen) == 0 && r.blf == blf &&
			    r.bcr == bcr, "message %d policy %d differs from "
			    "the model", n, pol);
			free(r.out);
		}
	}
	cr_assert_eq(n, 3000);
}

/*
 * Header splitter
 */

struct hres {
	char		 text[4096];	/* "name=value|t\n" per field */
	size_t		 textlen;
	size_t		 fields;
	size_t		 body;		/* stream offset of the body */
	int		 ended;		/* END from next(), not finish() */
};

/*
 * hadd - append one field or the end to a transcript
 */
static void
hadd(struct hres *r, const char *name, size_t nlen, const char *value,
    size_t vlen, int trunc)
{
	int n;

	/* Long values are summarised by their length. */
	if (vlen > 200)
		n = snprintf(r->text + r->textlen,
		    sizeof(r->text) - r->textlen, "%.*s=<%zu>%s\n",
		    (int)nlen, name, vlen, trunc ? "|t" : "");
	else
		n = snprintf(r->text + r->textlen,
		    sizeof(r->text) - r->textlen, "%.*s=%.*s%s\n",
		    (int)nlen, name, (int)vlen, value, trunc ? "|t" : "");
	cr_assert(n > 0 && (size_t)n < sizeof(r->text) - r->textlen);
	r->textlen += (size_t)n;
	r->fields++;
}

/*
 * hfeed - split msg's header section, fed in pieces like the session does
 */
static void
hfeed(const unsigned char *msg, size_t len, const size_t *cuts,
    size_t ncuts, struct hres *r)
{
	static struct header_splitter h;
	const char *name, *value;
	size_t nlen, vlen, k, pos = 0, end, off, used;
	enum header_status st = HEADER_NEED_MORE;

	memset(r, 0, sizeof(*r));
	header_splitter_init(&h);
	for (k = 0; k <= ncuts && st != HEADER_END; k++) {
		end = k < ncuts ? cuts[k] : len;
		off = pos;
		for (;;) {
			st = header_splitter_next(&h, msg + off, end - off,
			    &used, &name, &nlen, &value, &vlen);
			CHECK(used <= end - off, "used too large");
			off += used;
			if (st == HEADER_FIELD) {
				hadd(r, name, nlen, value, vlen, h.truncated);
				continue;
			}
			if (st == HEADER_END) {
				/* Given-back bytes precede in[used]. */
				CHECK(vlen <= off && memcmp(value,
				    msg + off - vlen, vlen) == 0,
				    "given-back body bytes wrong");
				r->body = off - vlen;
				r->ended = 1;
			} else
				CHECK(off == end, "NEED_MORE with input left");
			break;
		}
		pos = end;
	}
	while (st != HEADER_END) {
		st = header_splitter_finish(&h, &name, &nlen, &value, &vlen);
		if (st == HEADER_FIELD)
			hadd(r, name, nlen, value, vlen, h.truncated);
		else {
			CHECK(st == HEADER_END, "finish: bad status");
			CHECK(vlen <= len && memcmp(value, msg + len - vlen,
			    vlen) == 0, "finish: given-back bytes wrong");
			r->body = len - vlen;
		}
	}
}

/*
 * hcheck - expect a transcript and body offset, whatever the split
 */
static void
hcheck(const char *msg, size_t len, const char *want, size_t body,
    int ended)
{
	const unsigned char *m = (const unsigned char *)msg;
	struct hres ref, r;
	size_t cut, i, *cuts;

	hfeed(m, len, NULL, 0, &ref);
	cr_assert_str_eq(ref.text, want);
	cr_assert_eq(ref.body, body, "body at %zu, want %zu", ref.body, body);
	cr_assert_eq(ref.ended, ended);

	cuts = malloc((len + 1) * sizeof(*cuts));
	cr_assert(cuts != NULL);
	for (i = 0; i < len; i++)
		cuts[i] = i + 1;
	for (cut = 0; cut <= len; cut++) {
		hfeed(m, len, &cut, 1, &r);
		CHECK(strcmp(r.text, ref.text) == 0 && r.body == ref.body &&
		    r.ended == ref.ended, "split at %zu: %s body %zu", cut,
		    r.text, r.body);
	}
	hfeed(m, len, cuts, len, &r);
	CHECK(strcmp(r.text, ref.text) == 0 && r.body == ref.body &&
	    r.ended == ref.ended, "byte by byte: %s body %zu", r.text,
	    r.body);
	free(cuts);
}

Test(header, simple)
{
	hcheck(S("Subject: hi\r\nFrom: a@b\r\n\r\nbody\r\n"),
	    "Subject=hi\nFrom=a@b\n", 26, 1);
}

Test(header, first_call_results)
{
	static struct header_splitter h;
	static const unsigned char m[] = "Subject: hi\r\nTo: x\r\n\r\nbody";
	const char *name, *value;
	size_t nlen, vlen, used, off = 0;

	header_splitter_init(&h);
	cr_assert_eq(header_splitter_next(&h, m, sizeof(m) - 1, &used, &name,
	    &nlen, &value, &vlen), HEADER_FIELD);
	cr_assert_eq(used, 13, "stops at the start of the next line");
	cr_assert_eq(nlen, 7);
	cr_assert_arr_eq(name, "Subject", 7);
	cr_assert_eq(vlen, 2);
	cr_assert_arr_eq(value, "hi", 2);
	cr_assert_eq(h.truncated, 0);
	off += used;
	cr_assert_eq(header_splitter_next(&h, m + off, sizeof(m) - 1 - off,
	    &used, &name, &nlen, &value, &vlen), HEADER_FIELD);
	cr_assert_eq(used, 7);
	off += used;
	cr_assert_eq(header_splitter_next(&h, m + off, sizeof(m) - 1 - off,
	    &used, &name, &nlen, &value, &vlen), HEADER_END);
	cr_assert_eq(used, 2, "the empty line is consumed");
	cr_assert_null(name);
	cr_assert_eq(vlen, 0);
	off += used;
	cr_assert_arr_eq(m + off, "body", 4);
	cr_assert_eq(header_splitter_next(&h, m + off, sizeof(m) - 1 - off,
	    &used, &name, &nlen, &value, &vlen), HEADER_END);
	cr_assert_eq(used, 0, "idle after the end");
	cr_assert_eq(h.fields, 2);
}

Test(header, folded)
{
	hcheck(S("Subject: one\r\n\ttwo\r\n  three\r\nX: y\r\n \r\n\r\n"),
	    "Subject=one\ttwo  three\nX=y \n", 40, 1);
}

Test(header, fold_right_after_colon)
{
	hcheck(S("Subject:\r\n  folded\r\n\r\n"), "Subject=folded\n", 22, 1);
}

Test(header, empty_value)
{
	hcheck(S("X-Empty:\r\nY:   \r\n\r\n"), "X-Empty=\nY=\n", 19, 1);
}

Test(header, no_space_after_colon)
{
	hcheck(S("X:y\r\nZ:\t z \r\n\r\n"), "X=y\nZ=z \n", 15, 1);
}

Test(header, colon_in_value)
{
	hcheck(S("Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"),
	    "Date=Mon, 1 Jan 2024 10:00:00 +0000\n", 40, 1);
}

Test(header, non_header_line_ends_section)
{
	/* The body line is not consumed. */
	hcheck(S("A: 1\r\nThis is the body\r\n"), "A=1\n", 6, 1);
	hcheck(S("A: 1\r\nnocolon\r\n"), "A=1\n", 6, 1);
	hcheck(S("A: 1\r\n: empty name\r\n"), "A=1\n", 6, 1);
	hcheck(S("A: 1\r\nName : obsolete space\r\n"), "A=1\n", 6, 1);
	hcheck(S("A: 1\r\nN\xc3\xa4me: 8-bit\r\n"), "A=1\n", 6, 1);
	hcheck(S(" leading space: x\r\n"), "", 0, 1);
	hcheck(S("\r.x\r\n"), "", 0, 1);
}

Test(header, blank_line_only)
{
	hcheck(S("\r\nbody"), "", 2, 1);
	hcheck(S("\nbody"), "", 1, 1);
	hcheck(S(""), "", 0, 0);
}

Test(header, bare_lf_line_ends)
{
	hcheck(S("A: 1\nB: 2\n\tx\n\nbody"), "A=1\nB=2\tx\n", 14, 1);
}

Test(header, bare_cr_is_data)
{
	hcheck(S("A: 1\r2\r\n\r\n"), "A=1\r2\n", 10, 1);
}

Test(header, non_header_line_split_gives_bytes_back)
{
	static struct header_splitter h;
	const char *name, *value;
	size_t nlen, vlen, used;

	header_splitter_init(&h);
	cr_assert_eq(header_splitter_next(&h, (const unsigned char *)"Subj",
	    4, &used, &name, &nlen, &value, &vlen), HEADER_NEED_MORE);
	cr_assert_eq(used, 4);
	cr_assert_eq(header_splitter_next(&h,
	    (const unsigned char *)"ect line\r\n", 10, &used, &name, &nlen,
	    &value, &vlen), HEADER_END);
	cr_assert_eq(used, 0);
	cr_assert_eq(vlen, 4, "earlier bytes of the body line");
	cr_assert_arr_eq(value, "Subj", 4);
}

Test(header, finish_mid_field)
{
	hcheck(S("Subject: hi"), "Subject=hi\n", 11, 0);
	hcheck(S("Subject: hi\r\n"), "Subject=hi\n", 13, 0);
	hcheck(S("Subject: hi\r\n\tmore"), "Subject=hi\tmore\n", 18, 0);
	hcheck(S("A: 1\r\nSubj"), "A=1\n", 6, 0);
	hcheck(S("A: 1\r\n\r"), "A=1\n", 6, 0);
}

Test(header, finish_calls)
{
	static struct header_splitter h;
	const char *name, *value;
	size_t nlen, vlen, used;

	header_splitter_init(&h);
	cr_assert_eq(header_splitter_next(&h,
	    (const unsigned char *)"To: x\r\n", 7, &used, &name, &nlen,
	    &value, &vlen), HEADER_NEED_MORE);
	cr_assert_eq(header_splitter_finish(&h, &name, &nlen, &value, &vlen),
	    HEADER_FIELD);
	cr_assert_arr_eq(name, "To", 2);
	cr_assert_eq(vlen, 1);
	cr_assert_eq(header_splitter_finish(&h, &name, &nlen, &value, &vlen),
	    HEADER_END);
	cr_assert_eq(vlen, 0);
	cr_assert_str_eq(header_status_str(HEADER_NEED_MORE), "need-more");
}

Test(header, oversize_field_truncated)
{
	size_t vlen = HEADER_FIELD_MAX + 5000, len, i;
	char *m = malloc(vlen + 64), want[128];

	cr_assert_not_null(m);
	len = (size_t)sprintf(m, "X-Long: ");
	for (i = 0; i < vlen; i++)
		m[len++] = (i % 80 == 79) ? '\t' : 'v';
	len += (size_t)sprintf(m + len, "\r\nTo: x\r\n\r\nbody");
	snprintf(want, sizeof(want), "X-Long=<%d>|t\nTo=x\n",
	    HEADER_FIELD_MAX - 6);
	{
		struct hres r;
		size_t cuts[3] = { 10, HEADER_FIELD_MAX, HEADER_FIELD_MAX + 7 };

		hfeed((const unsigned char *)m, len, NULL, 0, &r);
		cr_assert_str_eq(r.text, want);
		cr_assert_eq(r.body, len - 4);
		hfeed((const unsigned char *)m, len, cuts, 3, &r);
		cr_assert_str_eq(r.text, want, "split");
		cr_assert_eq(r.body, len - 4);
	}
	free(m);
}

Test(header, oversize_name_is_body)
{
	size_t len = HEADER_FIELD_MAX + 100, cuts[2] = { 7, 70000 };
	char *m = malloc(len + 8);
	struct hres r;

	cr_assert_not_null(m);
	memset(m, 'n', len);
	memcpy(m + len, ": v\r\n", 5);
	hfeed((const unsigned char *)m, len + 5, NULL, 0, &r);
	cr_assert_str_eq(r.text, "");
	cr_assert_eq(r.body, 0);
	hfeed((const unsigned char *)m, len + 5, cuts, 2, &r);
	cr_assert_str_eq(r.text, "");
	cr_assert_eq(r.body, 0, "all bytes given back");
	free(m);
}
