/*
 * fuzz_header.c - libFuzzer target for the header splitter
 *
 * The first input byte picks how the rest is cut into pieces; the rest is
 * a decoded message.  The header section is split by a one-shot model,
 * one-shot and piece by piece; all must give the same fields (name, value,
 * truncation) and the same start of the body.  Build it with a small
 * HEADER_FIELD_MAX so that truncation is reached with small inputs:
 *
 *	clang -std=c11 -D_GNU_SOURCE -DHEADER_FIELD_MAX=64 -g -O1 \
 *	    -fsanitize=fuzzer,address,undefined -Iserver \
 *	    server/data_stream.c tests/fuzz/fuzz_header.c -o fuzz_header
 *	./fuzz_header tests/fuzz/corpus/fuzz_header
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data_stream.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

/* A transcript: per field "name\0value\0t" with t = '0' or '1'. */
struct transcript {
	unsigned char	*text;
	size_t		 len;
	size_t		 fields;
	size_t		 body;		/* stream offset of the body */
	int		 ended;		/* END from next(), not finish() */
};

/*
 * add_field - append a field to a transcript
 */
static void
add_field(struct transcript *t, const void *name, size_t nlen,
    const void *value, size_t vlen, int trunc)
{
	memcpy(t->text + t->len, name, nlen);
	t->len += nlen;
	t->text[t->len++] = 0;
	memcpy(t->text + t->len, value, vlen);
	t->len += vlen;
	t->text[t->len++] = 0;
	t->text[t->len++] = trunc ? '1' : '0';
	t->fields++;
}

/*
 * is_wsp - SP or HTAB (RFC 5234 WSP)
 */
static int
is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/*
 * model - one-shot model of the splitter over the whole input
 */
static void
model(const unsigned char *in, size_t n, struct transcript *t)
{
	unsigned char *val;
	size_t i = 0, j, k, e, c, vlen, skip, room;

	val = malloc(n + 1);
	CHECK(val != NULL);
	for (;;) {
		if (i == n) {
			t->body = n;
			break;
		}
		if (in[i] == '\n' || (in[i] == '\r' && i + 1 < n &&
		    in[i + 1] == '\n')) {
			t->body = i + (in[i] == '\n' ? 1 : 2);
			t->ended = 1;
			break;
		}
		j = i;
		while (j < n && j - i < HEADER_FIELD_MAX && in[j] > 32 &&
		    in[j] < 127 && in[j] != ':')
			j++;
		if (j == n || (in[i] == '\r' && i + 1 == n)) {
			/* Unfinished non-header line at the end. */
			t->body = i;
			break;
		}
		if (j == i || in[j] != ':') {
			t->body = i;
			t->ended = 1;
			break;
		}
		/* Gather the unfolded value. */
		vlen = 0;
		k = j + 1;
		for (;;) {
			for (e = k; e < n && in[e] != '\n'; e++)
				;
			c = e;
			if (c > k && in[c - 1] == '\r')
				c--;	/* CRLF, or a CR that finish() drops */
			memcpy(val + vlen, in + k, c - k);
			vlen += c - k;
			if (e >= n - 1 || !is_wsp(in[e + 1]))
				break;
			k = e + 1;
		}
		for (skip = 0; skip < vlen && is_wsp(val[skip]); skip++)
			;
		room = HEADER_FIELD_MAX - (j - i);
		add_field(t, in + i, j - i, val + skip,
		    vlen - skip > room ? room : vlen - skip,
		    vlen - skip > room);
		if (e >= n - 1) {
			/* The field ran to the end of the input. */
			t->body = n;
			break;
		}
		i = e + 1;
	}
	free(val);
}

/*
 * check_field - invariants of one returned field
 */
static void
check_field(const struct header_splitter *h, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
	size_t i;

	CHECK(nlen >= 1 && nlen <= HEADER_FIELD_MAX);
	CHECK(name == h->buf && value == h->buf + nlen);
	CHECK(nlen + vlen <= HEADER_FIELD_MAX);
	for (i = 0; i < nlen; i++)
		CHECK(name[i] > 32 && name[i] < 127 && name[i] != ':');
	/* LF always ends a line, so no value holds one. */
	CHECK(vlen == 0 || memchr(value, '\n', vlen) == NULL);
	CHECK(vlen == 0 || !is_wsp((unsigned char)value[0]));
}

/*
 * split - run the splitter over msg cut into pieces by pattern
 */
static void
split(const unsigned char *msg, size_t len, unsigned pattern, uint32_t x,
    struct transcript *t)
{
	static struct header_splitter h;
	const char *name, *value;
	size_t nlen, vlen, pos = 0, end, off, used, k;
	enum header_status st = HEADER_NEED_MORE;
	unsigned char *piece;

	header_splitter_init(&h);
	while (pos < len && st != HEADER_END) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		switch (pattern) {
		case 0:
			k = len;
			break;
		case 1:
			k = 1;
			break;
		case 2:
			k = 1 + x % 4;
			break;
		case 3:
			k = 1 + x % 100;
			break;
		default:
			k = pos == 0 ? x % (len + 1) : len;
			break;
		}
		end = k > len - pos ? len : pos + k;
		/* An exactly sized copy, so ASan sees any overread. */
		piece = malloc(end - pos + 1);
		CHECK(piece != NULL);
		memcpy(piece, msg + pos, end - pos);
		off = 0;
		for (;;) {
			st = header_splitter_next(&h, piece + off,
			    end - pos - off, &used, &name, &nlen, &value,
			    &vlen);
			CHECK(used <= end - pos - off);
			off += used;
			if (st == HEADER_FIELD) {
				check_field(&h, name, nlen, value, vlen);
				add_field(t, name, nlen, value, vlen,
				    h.truncated);
				continue;
			}
			if (st == HEADER_END) {
				/* Given-back bytes precede in[used]. */
				CHECK(name == NULL);
				CHECK(vlen <= pos + off);
				CHECK(memcmp(value, msg + pos + off - vlen,
				    vlen) == 0);
				t->body = pos + off - vlen;
				t->ended = 1;
			} else
				CHECK(off == end - pos);
			break;
		}
		free(piece);
		pos = end;
	}
	while (st != HEADER_END) {
		st = header_splitter_finish(&h, &name, &nlen, &value, &vlen);
		if (st == HEADER_FIELD) {
			check_field(&h, name, nlen, value, vlen);
			add_field(t, name, nlen, value, vlen, h.truncated);
		} else {
			CHECK(st == HEADER_END);
			CHECK(vlen <= len);
			CHECK(memcmp(value, msg + len - vlen, vlen) == 0);
			t->body = len - vlen;
		}
	}
	/* Idle after the end. */
	CHECK(header_splitter_next(&h, msg, len, &used, &name, &nlen, &value,
	    &vlen) == HEADER_END && used == 0 && vlen == 0);
}

/*
 * same - two transcripts agree
 */
static int
same(const struct transcript *a, const struct transcript *b)
{
	return a->len == b->len && a->fields == b->fields &&
	    a->body == b->body && a->ended == b->ended &&
	    memcmp(a->text, b->text, a->len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct transcript m = { 0 }, one = { 0 }, cut = { 0 };
	const unsigned char *msg;
	size_t len;

	if (size < 1)
		return 0;
	msg = data + 1;
	len = size - 1;
	/* Each field adds at most 3 bytes to its input bytes. */
	m.text = malloc(4 * len + 3);
	one.text = malloc(4 * len + 3);
	cut.text = malloc(4 * len + 3);
	CHECK(m.text != NULL && one.text != NULL && cut.text != NULL);

	model(msg, len, &m);
	split(msg, len, 0, 1, &one);
	split(msg, len, data[0] & 7, 0x9e3779b9u * (uint32_t)(data[0] | 1),
	    &cut);
	CHECK(same(&m, &one));
	CHECK(same(&one, &cut));

	free(m.text);
	free(one.text);
	free(cut.text);
	return 0;
}
