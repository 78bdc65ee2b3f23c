/*
 * fuzz_auth.c - libFuzzer target for AUTH decoding (server/smtp_parse.c)
 *
 * The input is taken three ways:
 *  - as the text of an AUTH response: smtp_base64_decode() must agree
 *    with a slow reference decoder (RFC 4648 §4, padding required, no
 *    whitespace, canonical trailing bits, "=" alone for the empty string)
 *    for output buffers of exactly the documented size, one octet less,
 *    more, and none; the decoder writes inside outcap only (each buffer
 *    is a heap block of exactly outcap octets, so ASan sees a write past
 *    it);
 *  - as octets: encoded by a reference encoder, they decode back to
 *    themselves;
 *  - as a decoded PLAIN message (RFC 4616): smtp_auth_plain_split()
 *    gives the three slices a reference split gives, and they put
 *    together again ("authzid NUL authcid NUL passwd") are the input.
 *
 *	cmake --preset fuzz && cmake --build --preset fuzz -j2
 *	build-fuzz/fuzz/fuzz_auth -max_total_time=600 tests/fuzz/corpus/fuzz_auth
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ref_val - 6-bit value of an alphabet character, -1 otherwise */
static int
ref_val(unsigned char c)
{
	const char *p;

	if (c == '\0' || (p = strchr(b64, c)) == NULL)
		return -1;
	return (int)(p - b64);
}

/* ref_decode - the reference: 0 and out/outlen, or -1 */
static int
ref_decode(const uint8_t *in, size_t len, uint8_t *out, size_t *outlen)
{
	size_t pad = 0, i, o = 0;
	uint32_t acc = 0;
	int bits = 0, v = 0;

	*outlen = 0;
	if (len == 1 && in[0] == '=')
		return 0;
	if (len == 0 || len % 4 != 0)
		return -1;
	while (pad < len && in[len - 1 - pad] == '=')
		pad++;
	if (pad > 2)
		return -1;
	for (i = 0; i < len - pad; i++) {
		if ((v = ref_val(in[i])) < 0)
			return -1;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* The bits left over must be zero (RFC 4648 §3.5, canonical). */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return -1;
	/* With padding, the leftover is 2 bits (one '=') or 4 bits (two). */
	if ((pad == 1 && bits != 2) || (pad == 2 && bits != 4) ||
	    (pad == 0 && bits != 0))
		return -1;
	*outlen = o;
	return 0;
}

/* ref_encode - padded base64 of in into out (4 * ceil(len / 3) octets) */
static size_t
ref_encode(const uint8_t *in, size_t len, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = b64[(v >> 6) & 63];
		out[o++] = b64[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = b64[(v >> 6) & 63];
		out[o++] = '=';
	}
	return o;
}

/* decode_with - smtp_base64_decode into an outcap-octet heap block */
static void
decode_with(const char *in, size_t len, size_t outcap, int ref_rc,
    const uint8_t *ref, size_t ref_len)
{
	unsigned char *out = malloc(outcap ? outcap : 1);
	size_t outlen = 12345;
	int rc, want;

	CHECK(out != NULL);
	rc = smtp_base64_decode(in, len, out, outcap, &outlen);
	CHECK(rc == 0 || rc == -1);
	/* "=" needs no room; otherwise the documented len / 4 * 3. */
	want = ref_rc == 0 && ((len == 1 && in[0] == '=') || len / 4 * 3 <= outcap) ?
	    0 : -1;
	CHECK(rc == want);
	if (rc == 0) {
		CHECK(outlen == ref_len && outlen <= outcap);
		CHECK(outlen == 0 || memcmp(out, ref, outlen) == 0);
	} else {
		CHECK(outlen == 0);
	}
	free(out);
}

/* fuzz_plain - smtp_auth_plain_split against a reference split */
static void
fuzz_plain(const uint8_t *d, size_t n)
{
	struct smtp_auth_plain ap;
	const uint8_t *z1 = NULL, *z2 = NULL;
	uint8_t *back;
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		if (d[i] == 0) {
			if (z1 == NULL)
				z1 = d + i;
			else {
				z2 = d + i;
				break;
			}
		}
	memset(&ap, 0xa5, sizeof(ap));
	rc = smtp_auth_plain_split(d, n, &ap);
	if (z2 == NULL) {
		CHECK(rc == -1);
		return;
	}
	CHECK(rc == 0);
	CHECK(ap.authzid == d && ap.authzid_len == (size_t)(z1 - d));
	CHECK(ap.authcid == z1 + 1 && ap.authcid_len == (size_t)(z2 - z1 - 1));
	CHECK(ap.passwd == z2 + 1 && ap.passwd_len == n - (size_t)(z2 + 1 - d));
	CHECK(memchr(ap.authzid, 0, ap.authzid_len) == NULL);
	CHECK(memchr(ap.authcid, 0, ap.authcid_len) == NULL);
	/* Put together again, the slices are the message. */
	back = malloc(n);
	CHECK(back != NULL);
	memcpy(back, ap.authzid, ap.authzid_len);
	back[ap.authzid_len] = 0;
	memcpy(back + ap.authzid_len + 1, ap.authcid, ap.authcid_len);
	back[ap.authzid_len + 1 + ap.authcid_len] = 0;
	memcpy(back + ap.authzid_len + ap.authcid_len + 2, ap.passwd,
	    ap.passwd_len);
	CHECK(ap.authzid_len + ap.authcid_len + ap.passwd_len + 2 == n);
	CHECK(memcmp(back, d, n) == 0);
	free(back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *ref, *dec;
	char *enc;
	size_t ref_len, need, enc_len, dec_len;
	int ref_rc;

	/* 1. The input as an AUTH response line. */
	ref = calloc(1, size / 4 * 3 + 3);
	CHECK(ref != NULL);
	ref_rc = ref_decode(data, size, ref, &ref_len);
	need = size / 4 * 3;
	decode_with((const char *)data, size, need, ref_rc, ref, ref_len);
	decode_with((const char *)data, size, need + 3, ref_rc, ref, ref_len);
	if (need > 0)
		decode_with((const char *)data, size, need - 1, ref_rc, ref,
		    ref_len);
	decode_with((const char *)data, size, 0, ref_rc, ref, ref_len);
	/* What decodes is a PLAIN message candidate, as in the session. */
	if (ref_rc == 0)
		fuzz_plain(ref, ref_len);
	free(ref);

	/* 2. The input as octets: encode, decode, compare. */
	enc = malloc((size + 2) / 3 * 4 + 1);
	CHECK(enc != NULL);
	enc_len = ref_encode(data, size, enc);
	if (enc_len > 0) {
		dec = malloc(enc_len / 4 * 3);
		CHECK(dec != NULL);
		CHECK(smtp_base64_decode(enc, enc_len, dec, enc_len / 4 * 3,
		    &dec_len) == 0);
		CHECK(dec_len == size && memcmp(dec, data, size) == 0);
		free(dec);
	}
	free(enc);

	/* 3. The input as a decoded PLAIN message. */
	fuzz_plain(data, size);
	return 0;
}
