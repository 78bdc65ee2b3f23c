/*
 * bench_data_stream.c - micro-benchmark of the DATA decoder
 *
 * Decodes a 64 MiB synthetic message in 64 KiB pieces, the way the session
 * does (in place, re-presenting the unconsumed tail), and prints MB/s.
 * Not a test: build it with -O2 and run it by hand.
 *
 *	cc -std=c11 -D_GNU_SOURCE -O2 -Iserver server/data_stream.c \
 *	    tests/bench/bench_data_stream.c -o bench_data_stream
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data_stream.h"

#define MSG_SIZE	(64u << 20)
#define PIECE		(64u << 10)
#define ROUNDS		5

/*
 * make_message - fill buf with CRLF text lines of 40..100 bytes
 *
 * Every dot_every-th line (0: none) starts with a stuffed dot.  The message
 * ends with the end marker.
 */
static size_t
make_message(unsigned char *buf, size_t size, unsigned dot_every)
{
	static const char alpha[] =
	    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789";
	unsigned long x = 88172645463325252UL;
	size_t n = 0, len, i;
	unsigned line = 0;

	while (n + 110 < size) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		len = 40 + x % 61;
		i = 0;
		if (dot_every != 0 && ++line % dot_every == 0)
			buf[n + i++] = '.';
		for (; i < len; i++)
			buf[n + i] = (unsigned char)alpha[(x >> (i % 32)) % 64];
		n += len;
		buf[n++] = '\r';
		buf[n++] = '\n';
	}
	memcpy(buf + n, ".\r\n", 3);
	return n + 3;
}

/*
 * now - monotonic time in seconds
 */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * run - decode the message ROUNDS times and print the best throughput
 */
static void
run(const char *label, const unsigned char *pristine, size_t size,
    enum data_bare_policy policy)
{
	struct data_decoder d;
	unsigned char *buf, *out;
	size_t pos, n, used, outlen, total;
	double t, best = 1e9;
	enum data_status st;
	int round;

	buf = malloc(size);
	out = malloc(2 * PIECE);
	if (buf == NULL || out == NULL) {
		perror("malloc");
		exit(1);
	}
	for (round = 0; round < ROUNDS; round++) {
		memcpy(buf, pristine, size);
		data_decoder_init(&d, policy);
		pos = total = 0;
		st = DATA_MORE;
		t = now();
		while (st == DATA_MORE && pos < size) {
			n = size - pos < PIECE ? size - pos : PIECE;
			if (policy == DATA_BARE_REJECT)
				st = data_decode(&d, buf + pos, n, buf + pos, n,
				    &used, &outlen);
			else
				st = data_decode(&d, buf + pos, n, out,
				    2 * PIECE, &used, &outlen);
			/* The unconsumed tail is re-presented next round. */
			pos += used;
			total += outlen;
		}
		t = now() - t;
		if (t < best)
			best = t;
		if (st != DATA_END) {
			fprintf(stderr, "%s: no end marker found\n", label);
			exit(1);
		}
	}
	printf("%-28s %8.0f MB/s  (%zu -> %zu bytes)\n", label,
	    (double)size / best / 1e6, size, total);
	free(buf);
	free(out);
}

int
main(void)
{
	unsigned char *msg;
	size_t size;

	if ((msg = malloc(MSG_SIZE)) == NULL) {
		perror("malloc");
		return 1;
	}
	size = make_message(msg, MSG_SIZE, 0);
	run("reject, in place", msg, size, DATA_BARE_REJECT);
	run("normalize, copy", msg, size, DATA_BARE_NORMALIZE);
	size = make_message(msg, MSG_SIZE, 50);
	run("reject, in place, 2% dots", msg, size, DATA_BARE_REJECT);
	run("normalize, copy, 2% dots", msg, size, DATA_BARE_NORMALIZE);
	free(msg);
	return 0;
}
