/*
 * fuzz_data_stream.c - libFuzzer target for the DATA decoder
 *
 * The first input byte picks the policy and how the rest is cut into
 * pieces; the rest is the DATA stream.  The stream is decoded three ways:
 * by a byte-at-a-time model, one-shot, and piece by piece through a
 * simulated session (unconsumed tail re-presented, in place or not, maybe
 * with a tight outcap).  All three must agree on the message bytes, the
 * bytes consumed, end detection, the bare CR/LF flags and the dots removed.
 * Every call gets exactly sized heap buffers so ASan sees any overrun.
 *
 *	clang -std=c11 -D_GNU_SOURCE -g -O1 \
 *	    -fsanitize=fuzzer,address,undefined -Iserver \
 *	    server/data_stream.c tests/fuzz/fuzz_data_stream.c -o fuzz_ds
 *	./fuzz_ds tests/fuzz/corpus/fuzz_data_stream
 *
 * Selector byte: bit 0 policy (1 = NORMALIZE); bits 1-3 split pattern;
 * bit 4 in place (REJECT only); bits 5-7 seed for the random patterns.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data_stream.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

struct result {
	unsigned char	*out;
	size_t		 out_len;
	size_t		 used;
	enum data_status st;
	int		 blf, bcr;
	uint64_t	 dots;
};

/*
 * ref_decode - obviously-correct byte-at-a-time model of data_decode()
 */
static void
ref_decode(const unsigned char *in, size_t n, int normalize,
    struct result *r)
{
	size_t i = 0, w = 0;
	int bol = 1;

	r->st = DATA_MORE;
	r->blf = r->bcr = 0;
	r->dots = 0;
	while (i < n) {
		if (bol && in[i] == '.') {
			if (i + 2 < n && in[i + 1] == '\r' &&
			    in[i + 2] == '\n') {
				r->st = DATA_END;
				i += 3;
				break;
			}
			if (i + 1 >= n || (in[i + 1] == '\r' && i + 2 >= n))
				break;
			r->dots++;
			i++;
		}
		bol = 0;
		if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n') {
			r->out[w++] = '\r';
			r->out[w++] = '\n';
			i += 2;
			bol = 1;
		} else if (in[i] == '\r' && i + 1 < n) {
			r->bcr = 1;
			r->out[w++] = '\r';
			if (normalize)
				r->out[w++] = '\n';
			i++;
		} else if (in[i] == '\n') {
			r->blf = 1;
			if (normalize)
				r->out[w++] = '\r';
			r->out[w++] = '\n';
			i++;
		} else
			r->out[w++] = in[i++];
	}
	r->used = i;
	r->out_len = w;
}

/*
 * next_piece - size of the next piece for a split pattern
 */
static size_t
next_piece(unsigned pattern, uint32_t *x, size_t left, size_t len)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	switch (pattern) {
	case 0:
		return left;			/* one piece */
	case 1:
		return 1;			/* byte by byte */
	case 2:
		return 2;
	case 3:
		return 3;
	case 4:
		return 1 + *x % 16;
	case 5:
		return 1 + *x % 300;
	case 6:
		/* Two pieces: the first cut at a seed-derived position. */
		return left == len ? *x % (len + 1) : left;
	default:
		return 1 + *x % 8;		/* with a tight outcap */
	}
}

/*
 * decode_pieces - decode like the session: tail kept and re-presented
 */
static void
decode_pieces(const unsigned char *msg, size_t len, uint8_t sel,
    struct result *r)
{
	struct data_decoder d;
	enum data_bare_policy pol = (sel & 1) ? DATA_BARE_NORMALIZE :
	    DATA_BARE_REJECT;
	unsigned pattern = (sel >> 1) & 7;
	int inplace = (sel & 0x10) && pol == DATA_BARE_REJECT;
	uint32_t x = 0x9e3779b9u * (uint32_t)(sel | 1);
	unsigned char *pend, *in, *out;
	size_t plen = 0, pos = 0, base = 0, k, n, cap, eff, used, olen;
	enum data_status st = DATA_MORE;
	int progress;

	pend = malloc(len + 3);
	CHECK(pend != NULL);
	data_decoder_init(&d, pol);
	r->out_len = 0;
	while (st == DATA_MORE) {
		if (pos < len) {
			k = next_piece(pattern, &x, len - pos, len);
			if (k > len - pos)
				k = len - pos;
			memcpy(pend + plen, msg + pos, k);
			plen += k;
			pos += k;
		}
		/* Decode what is buffered until no progress is made. */
		do {
			n = plen;
			cap = pol == DATA_BARE_NORMALIZE ? 2 * n : n;
			if (pattern == 7 && n > 3) {
				/* At least 3 bytes, so the tail rule holds. */
				eff = 3 + x % (n - 2);
				cap = pol == DATA_BARE_NORMALIZE ? 2 * eff :
				    eff;
			}
			eff = pol == DATA_BARE_NORMALIZE ? cap / 2 : cap;
			if (eff > n)
				eff = n;
			in = malloc(n > 0 ? n : 1);
			CHECK(in != NULL);
			memcpy(in, pend, n);
			if (inplace)
				out = in;	/* cap <= n here */
			else {
				out = malloc(cap > 0 ? cap : 1);
				CHECK(out != NULL);
			}
			st = data_decode(&d, in, n, out, cap, &used, &olen);
			CHECK(used <= eff);
			CHECK(olen <= cap);
			CHECK(st == DATA_END || eff - used <= 2);
			/* Bytes not consumed are never touched. */
			CHECK(memcmp(in + used, pend + used, n - used) == 0);
			memcpy(r->out + r->out_len, out, olen);
			r->out_len += olen;
			/* An ended message is empty or ends in CRLF. */
			CHECK(st == DATA_MORE || r->out_len == 0 ||
			    (r->out_len >= 2 &&
			    r->out[r->out_len - 2] == '\r' &&
			    r->out[r->out_len - 1] == '\n'));
			if (!inplace)
				free(out);
			free(in);
			base += used;
			plen -= used;
			memmove(pend, pend + used, plen);
			progress = used > 0;
		} while (st == DATA_MORE && progress && plen > 0);
		if (pos == len && !progress)
			break;
	}
	CHECK(d.bytes_in == base && d.bytes_out == r->out_len);
	r->used = base;
	r->st = st;
	r->blf = d.saw_bare_lf;
	r->bcr = d.saw_bare_cr;
	r->dots = d.dots_removed;
	free(pend);
}

/*
 * same - two results agree
 */
static int
same(const struct result *a, const struct result *b)
{
	return a->out_len == b->out_len && a->used == b->used &&
	    a->st == b->st && a->blf == b->blf && a->bcr == b->bcr &&
	    a->dots == b->dots && memcmp(a->out, b->out, a->out_len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result model, one, split;
	const unsigned char *msg;
	size_t len;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	msg = data + 1;
	len = size - 1;

	model.out = malloc(2 * len + 1);
	one.out = malloc(2 * len + 1);
	split.out = malloc(2 * len + 1);
	CHECK(model.out != NULL && one.out != NULL && split.out != NULL);

	ref_decode(msg, len, sel & 1, &model);
	/* Pattern 0 is the one-shot decode. */
	decode_pieces(msg, len, sel & 0x11, &one);
	decode_pieces(msg, len, sel, &split);
	CHECK(same(&model, &one));
	CHECK(same(&one, &split));

	free(model.out);
	free(one.out);
	free(split.out);
	return 0;
}
