/*
 * test_util.c - unit tests for server/util.c and log_escape()
 *
 * The hash tables are checked against simple reference models over many
 * random operations (fixed seeds, so failures reproduce), with keys
 * chosen to share a home slot and to wrap around the end of the table,
 * which is where backward-shift deletion goes wrong if it does.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "log.h"
#include "util.h"

/* xorshift64 - reproducible pseudo-random numbers */
static uint64_t rng_state;

static uint64_t
rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* mix64 - a copy of util.c's hash, to build keys that collide */
static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

#define V(n) ((void *)(uintptr_t)(n))

/* ================================================================== */
/* u64map                                                             */
/* ================================================================== */

Test(u64map, basics)
{
	struct u64map m = { 0 };

	cr_assert_null(u64map_get(&m, 1), "empty map");
	u64map_del(&m, 1);	/* harmless on an empty map */
	cr_assert_eq(u64map_put(&m, 1, V(10)), 0);
	cr_assert_eq(u64map_put(&m, 2, V(20)), 0);
	cr_assert_eq(u64map_get(&m, 1), V(10));
	cr_assert_eq(u64map_get(&m, 2), V(20));
	cr_assert_null(u64map_get(&m, 3));
	cr_assert_null(u64map_get(&m, 0), "0 is never a key");
	cr_assert_eq(m.len, 2);
	cr_assert_eq(u64map_put(&m, 1, V(11)), 0, "replace");
	cr_assert_eq(m.len, 2);
	cr_assert_eq(u64map_get(&m, 1), V(11));
	u64map_del(&m, 1);
	cr_assert_null(u64map_get(&m, 1));
	cr_assert_eq(u64map_get(&m, 2), V(20));
	cr_assert_eq(m.len, 1);
	u64map_del(&m, 1);	/* twice: nothing */
	cr_assert_eq(m.len, 1);
	cr_assert_eq(u64map_put(&m, UINT64_MAX, V(99)), 0);
	cr_assert_eq(u64map_get(&m, UINT64_MAX), V(99));
	u64map_free(&m);
	cr_assert_null(m.slots);
	cr_assert_eq(m.cap, 0);
	cr_assert_null(u64map_get(&m, 2));
}

Test(u64map, many_keys_grow)
{
	struct u64map m = { 0 };
	uint64_t k;

	for (k = 1; k <= 20000; k++)
		cr_assert_eq(u64map_put(&m, k * 7919, V(k)), 0);
	cr_assert_eq(m.len, 20000);
	cr_assert_leq(m.len * 2, m.cap, "load factor at most 1/2");
	cr_assert_eq(m.cap & (m.cap - 1), 0, "power of two");
	for (k = 1; k <= 20000; k++)
		if (u64map_get(&m, k * 7919) != V(k))
			cr_assert_fail("key %llu lost", (unsigned long long)(k * 7919));
	for (k = 1; k <= 20000; k += 2)
		u64map_del(&m, k * 7919);
	cr_assert_eq(m.len, 10000);
	for (k = 1; k <= 20000; k++) {
		void *want = (k % 2) ? NULL : V(k);
		if (u64map_get(&m, k * 7919) != want)
			cr_assert_fail("key %llu wrong after deletes", (unsigned long long)k);
	}
	u64map_free(&m);
}

/* same_home - n keys whose home slot in a 64-slot table is `home` */
static void
same_home(uint64_t *keys, size_t n, size_t home)
{
	uint64_t k = 1;
	size_t i = 0;

	for (; i < n; k++)
		if ((mix64(k) & 63) == home)
			keys[i++] = k;
}

Test(u64map, deletion_with_collisions_and_wraparound)
{
	struct u64map m = { 0 };
	uint64_t a[6], b[4];
	size_t i, j;

	/* Six keys at home 62 fill 62, 63 and wrap to 0..3; four keys at
	 * home 0 then sit behind them at 4..7. */
	same_home(a, 6, 62);
	same_home(b, 4, 0);
	for (i = 0; i < 6; i++)
		cr_assert_eq(u64map_put(&m, a[i], V(100 + i)), 0);
	for (i = 0; i < 4; i++)
		cr_assert_eq(u64map_put(&m, b[i], V(200 + i)), 0);
	cr_assert_eq(m.cap, 64, "the table did not grow");

	/* Delete in an order that exercises shifts across the wrap. */
	static const size_t order[] = { 0, 3, 5, 1 };
	for (j = 0; j < 4; j++) {
		u64map_del(&m, a[order[j]]);
		for (i = 0; i < 6; i++) {
			int gone = 0;
			for (size_t q = 0; q <= j; q++)
				gone |= order[q] == i;
			cr_assert_eq(u64map_get(&m, a[i]), gone ? NULL : V(100 + i),
			    "a[%zu] after %zu deletes", i, j + 1);
		}
		for (i = 0; i < 4; i++)
			cr_assert_eq(u64map_get(&m, b[i]), V(200 + i),
			    "b[%zu] after %zu deletes", i, j + 1);
	}
	cr_assert_eq(m.len, 6);
	/* No slot is left holding a deleted key, and every key is at or
	 * after its home (cyclically) with no hole in between. */
	for (i = 0; i < m.cap; i++) {
		uint64_t k = m.slots[i].key;
		size_t home, p;

		if (k == 0)
			continue;
		home = mix64(k) & (m.cap - 1);
		for (p = home; p != i; p = (p + 1) & (m.cap - 1))
			cr_assert_neq(m.slots[p].key, 0, "hole between home and slot");
	}
	u64map_free(&m);
}

Test(u64map, random_against_reference)
{
	enum { NKEYS = 600, NOPS = 5000 };
	static void *ref[NKEYS + 1];
	struct u64map m = { 0 };
	size_t live = 0, op;

	rng_state = 0x9e3779b97f4a7c15ULL;
	for (op = 0; op < NOPS; op++) {
		uint64_t k = rng() % NKEYS + 1, r = rng() % 10;

		if (r < 6) {
			if (ref[k] == NULL)
				live++;
			ref[k] = V(op + 1);
			cr_assert_eq(u64map_put(&m, k, ref[k]), 0);
		} else {
			if (ref[k] != NULL)
				live--;
			ref[k] = NULL;
			u64map_del(&m, k);
		}
		if (u64map_get(&m, k) != ref[k])
			cr_assert_fail("op %zu key %llu", op, (unsigned long long)k);
		if (m.len != live)
			cr_assert_fail("op %zu: len %zu, want %zu", op, m.len, live);
		if (op % 250 == 0)
			for (uint64_t q = 1; q <= NKEYS; q++)
				if (u64map_get(&m, q) != ref[q])
					cr_assert_fail("op %zu: key %llu differs", op,
					    (unsigned long long)q);
	}
	for (uint64_t q = 1; q <= NKEYS; q++)
		cr_assert_eq(u64map_get(&m, q), ref[q]);
	cr_assert_eq(m.len, live);
	u64map_free(&m);
}

/* ================================================================== */
/* addrcount                                                          */
/* ================================================================== */

/* addr - a distinct IPv6-ish key for n (never ::) */
static void
addr(uint8_t a[16], uint32_t n)
{
	memset(a, 0, 16);
	a[0] = 0x20;
	a[1] = 0x01;
	memcpy(a + 12, &n, 4);
}

Test(addrcount, add_remove)
{
	struct addrcount c = { 0 };
	uint8_t x[16], y[16];

	addr(x, 1);
	addr(y, 2);
	cr_assert_eq(addrcount_add(&c, x, 1), 1);
	cr_assert_eq(addrcount_add(&c, x, 1), 2);
	cr_assert_eq(addrcount_add(&c, y, 1), 1);
	cr_assert_eq(addrcount_add(&c, x, -1), 1);
	cr_assert_eq(addrcount_add(&c, x, -1), 0);
	cr_assert_eq(addrcount_add(&c, x, -1), 0, "never below zero");
	cr_assert_eq(addrcount_add(&c, x, 1), 1, "a freed entry comes back");
	cr_assert_eq(addrcount_add(&c, y, -1), 0);
	cr_assert_eq(addrcount_add(&c, y, -1), 0);
	addr(y, 3);
	cr_assert_eq(addrcount_add(&c, y, -1), 0, "unknown address: 0");
	cr_assert_eq(addrcount_add(&c, y, 1), 1);
	addrcount_free(&c);
	cr_assert_null(c.slots);
	cr_assert_eq(c.cap, 0);
}

Test(addrcount, many_addresses)
{
	enum { N = 10000 };
	struct addrcount c = { 0 };
	uint8_t a[16];
	uint32_t i;

	for (i = 1; i <= N; i++) {
		addr(a, i);
		cr_assert_eq(addrcount_add(&c, a, 1), 1);
	}
	for (i = 2; i <= N; i += 2) {
		addr(a, i);
		cr_assert_eq(addrcount_add(&c, a, 1), 2);
	}
	for (i = 1; i <= N; i++) {
		addr(a, i);
		if (addrcount_add(&c, a, -1) != (long)(i % 2 ? 0 : 1))
			cr_assert_fail("address %u", i);
	}
	for (i = 1; i <= N; i++) {
		addr(a, i);
		if (addrcount_add(&c, a, -1) != 0)
			cr_assert_fail("address %u not back to 0", i);
	}
	addrcount_free(&c);
}

Test(addrcount, churn_does_not_grow_the_table)
{
	struct addrcount c = { 0 };
	uint8_t a[16];
	uint32_t i;
	size_t maxcap = 0;

	/* One connection at a time from 100,000 different addresses. */
	for (i = 1; i <= 100000; i++) {
		addr(a, i);
		cr_assert_eq(addrcount_add(&c, a, 1), 1);
		cr_assert_eq(addrcount_add(&c, a, -1), 0);
		if (c.cap > maxcap)
			maxcap = c.cap;
	}
	cr_assert_leq(maxcap, 256, "cap grew to %zu", maxcap);

	/* 1,000 steady connections plus churn of 100,000 others. */
	for (i = 1; i <= 1000; i++) {
		addr(a, 1000000 + i);
		addrcount_add(&c, a, 1);
	}
	maxcap = 0;
	for (i = 1; i <= 100000; i++) {
		addr(a, i);
		addrcount_add(&c, a, 1);
		addrcount_add(&c, a, -1);
		if (c.cap > maxcap)
			maxcap = c.cap;
	}
	cr_assert_leq(maxcap, 8192, "cap grew to %zu", maxcap);
	for (i = 1; i <= 1000; i++) {
		addr(a, 1000000 + i);
		if (addrcount_add(&c, a, 1) != 2)
			cr_assert_fail("steady address %u lost its count", i);
	}
	addrcount_free(&c);
}

Test(addrcount, random_against_reference)
{
	enum { NADDR = 500, NOPS = 20000 };
	static long ref[NADDR + 1];
	struct addrcount c = { 0 };
	uint8_t a[16];
	size_t op;

	rng_state = 0x1234567887654321ULL;
	for (op = 0; op < NOPS; op++) {
		uint32_t n = (uint32_t)(rng() % NADDR + 1);
		int delta = rng() % 2 ? 1 : -1;
		long got;

		addr(a, n);
		got = addrcount_add(&c, a, delta);
		if (delta > 0 || ref[n] > 0)
			ref[n] += delta;
		if (got != ref[n])
			cr_assert_fail("op %zu addr %u: %ld, want %ld", op, n, got, ref[n]);
	}
	addrcount_free(&c);
}

/* ================================================================== */
/* socket addresses                                                   */
/* ================================================================== */

Test(sockaddr, key_and_text_v4)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(2525) };
	struct sockaddr_in6 m6 = { .sin6_family = AF_INET6 };
	uint8_t k[16], k6[16];
	static const uint8_t want[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
	    192, 0, 2, 1 };
	char host[64];
	unsigned port = 0;

	inet_pton(AF_INET, "192.0.2.1", &in.sin_addr);
	sockaddr_key((struct sockaddr *)&in, k);
	cr_assert_eq(memcmp(k, want, 16), 0, "IPv4 as ::ffff:a.b.c.d");
	cr_assert_eq(sockaddr_text((struct sockaddr *)&in, host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "192.0.2.1");
	cr_assert_eq(port, 2525);

	/* The same client over an IPv4-mapped IPv6 socket counts as one. */
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &m6.sin6_addr);
	sockaddr_key((struct sockaddr *)&m6, k6);
	cr_assert_eq(memcmp(k, k6, 16), 0);
}

Test(sockaddr, key_and_text_v6_and_other)
{
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(587) };
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	uint8_t k[16], zero[16] = { 0 };
	char host[64], tiny[4];
	unsigned port = 7;

	inet_pton(AF_INET6, "2001:db8::25", &in6.sin6_addr);
	sockaddr_key((struct sockaddr *)&in6, k);
	cr_assert_eq(memcmp(k, &in6.sin6_addr, 16), 0);
	cr_assert_eq(sockaddr_text((struct sockaddr *)&in6, host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "2001:db8::25");
	cr_assert_eq(port, 587);
	cr_assert_eq(sockaddr_text((struct sockaddr *)&in6, tiny, sizeof(tiny), &port), -1,
	    "a buffer too small is an error");

	sockaddr_key((struct sockaddr *)&un, k);
	cr_assert_eq(memcmp(k, zero, 16), 0);
	cr_assert_eq(sockaddr_text((struct sockaddr *)&un, host, sizeof(host), &port), -1);
	cr_assert_str_eq(host, "unknown");
	cr_assert_eq(port, 0);
}

/* ================================================================== */
/* parse_hostport / parse_ulong / parse_seconds                       */
/* ================================================================== */

/* hp - parse_hostport; on success the text and port, else the reason */
static int
hp(const char *text, char *out, size_t outsize, unsigned *port, socklen_t *len)
{
	struct sockaddr_storage ss;
	const char *why = NULL;

	if (parse_hostport(text, &ss, len, &why) < 0) {
		snprintf(out, outsize, "%s", why != NULL ? why : "(no reason)");
		return -1;
	}
	sockaddr_text((struct sockaddr *)&ss, out, outsize, port);
	return ss.ss_family;
}

Test(parse, hostport)
{
	char out[128];
	unsigned port = 0;
	socklen_t len = 0;

	cr_assert_eq(hp("127.0.0.1:25", out, sizeof(out), &port, &len), AF_INET);
	cr_assert_str_eq(out, "127.0.0.1");
	cr_assert_eq(port, 25);
	cr_assert_eq(len, sizeof(struct sockaddr_in));
	cr_assert_eq(hp("[::1]:2525", out, sizeof(out), &port, &len), AF_INET6);
	cr_assert_str_eq(out, "::1");
	cr_assert_eq(port, 2525);
	cr_assert_eq(len, sizeof(struct sockaddr_in6));
	cr_assert_eq(hp("[2001:db8::1]:65535", out, sizeof(out), &port, &len), AF_INET6);
	cr_assert_eq(port, 65535);
	cr_assert_eq(hp("localhost:1", out, sizeof(out), &port, &len), AF_INET);
	cr_assert_str_eq(out, "127.0.0.1");
	cr_assert_eq(hp("*:587", out, sizeof(out), &port, &len), AF_INET);
	cr_assert_str_eq(out, "0.0.0.0");

	cr_assert_eq(hp("127.0.0.1", out, sizeof(out), &port, &len), -1);
	cr_assert_str_eq(out, "expected HOST:PORT");
	cr_assert_eq(hp("[::1]", out, sizeof(out), &port, &len), -1);
	cr_assert_str_eq(out, "expected [IPV6]:PORT");
	cr_assert_eq(hp("[::1]x25", out, sizeof(out), &port, &len), -1);
	cr_assert_eq(hp(":25", out, sizeof(out), &port, &len), -1);
	cr_assert_str_eq(out, "missing or overlong host");
	cr_assert_eq(hp("[]:25", out, sizeof(out), &port, &len), -1);
	cr_assert_eq(hp("127.0.0.1:0", out, sizeof(out), &port, &len), -1);
	cr_assert_str_eq(out, "port must be 1-65535");
	cr_assert_eq(hp("127.0.0.1:65536", out, sizeof(out), &port, &len), -1);
	cr_assert_eq(hp("127.0.0.1:", out, sizeof(out), &port, &len), -1);
	cr_assert_eq(hp("127.0.0.1:-1", out, sizeof(out), &port, &len), -1);
	cr_assert_eq(hp("mx.example.com:25", out, sizeof(out), &port, &len), -1);
	cr_assert_str_eq(out, "host must be a numeric IPv4 or IPv6 address");
	cr_assert_eq(hp("[127.0.0.1]:25", out, sizeof(out), &port, &len), AF_INET,
	    "brackets around IPv4 are tolerated");

	char longhost[400];
	memset(longhost, '1', 300);
	strcpy(longhost + 300, ":25");
	cr_assert_eq(hp(longhost, out, sizeof(out), &port, &len), -1);
	cr_assert_str_eq(out, "missing or overlong host");
}

Test(parse, ulong_bounds_and_overflow)
{
	unsigned long long v = 42;

	cr_assert_eq(parse_ulong("0", 0, 10, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(parse_ulong("10", 0, 10, &v), 0);
	cr_assert_eq(v, 10);
	cr_assert_eq(parse_ulong("007", 0, 10, &v), 0);
	cr_assert_eq(v, 7);
	v = 42;
	cr_assert_eq(parse_ulong("11", 0, 10, &v), -1);
	cr_assert_eq(v, 42, "untouched on error");
	cr_assert_eq(parse_ulong("4", 5, 10, &v), -1);
	cr_assert_eq(parse_ulong("5", 5, 10, &v), 0);
	cr_assert_eq(parse_ulong("", 0, 10, &v), -1);
	cr_assert_eq(parse_ulong("-1", 0, 10, &v), -1);
	cr_assert_eq(parse_ulong("+1", 0, 10, &v), -1);
	cr_assert_eq(parse_ulong(" 1", 0, 10, &v), -1);
	cr_assert_eq(parse_ulong("1 ", 0, 10, &v), -1);
	cr_assert_eq(parse_ulong("1x", 0, 10, &v), -1);
	cr_assert_eq(parse_ulong("0x1", 0, 10, &v), -1);

	cr_assert_eq(parse_ulong("18446744073709551615", 0, ~0ULL, &v), 0,
	    "ULLONG_MAX itself is a number");
	cr_assert_eq(v, ~0ULL);
	cr_assert_eq(parse_ulong("18446744073709551610", 0, ~0ULL, &v), 0);
	cr_assert_eq(v, ~0ULL - 5);
	cr_assert_eq(parse_ulong("18446744073709551616", 0, ~0ULL, &v), -1, "2^64");
	cr_assert_eq(parse_ulong("18446744073709551620", 0, ~0ULL, &v), -1);
	cr_assert_eq(parse_ulong("99999999999999999999", 0, ~0ULL, &v), -1);
	cr_assert_eq(parse_ulong("184467440737095516150", 0, ~0ULL, &v), -1);
	/* A wrapped value must not slip into range. */
	cr_assert_eq(parse_ulong("18446744073709551617", 0, 10, &v), -1);
}

Test(parse, seconds)
{
	double d = -1;

	cr_assert_eq(parse_seconds("30", &d), 0);
	cr_assert_float_eq(d, 30, 1e-12);
	cr_assert_eq(parse_seconds("0.5", &d), 0);
	cr_assert_float_eq(d, 0.5, 1e-12);
	cr_assert_eq(parse_seconds("86400", &d), 0);
	cr_assert_eq(parse_seconds("0.001", &d), 0);
	d = 7;
	cr_assert_eq(parse_seconds("0", &d), -1);
	cr_assert_float_eq(d, 7, 1e-12, "untouched on error");
	cr_assert_eq(parse_seconds("0.0", &d), -1);
	cr_assert_eq(parse_seconds("86400.01", &d), -1);
	cr_assert_eq(parse_seconds("-1", &d), -1);
	cr_assert_eq(parse_seconds("+1", &d), -1);
	cr_assert_eq(parse_seconds("", &d), -1);
	cr_assert_eq(parse_seconds("abc", &d), -1);
	cr_assert_eq(parse_seconds("5s", &d), -1);
	cr_assert_eq(parse_seconds("1e400", &d), -1, "overflow");
	cr_assert_eq(parse_seconds("nan", &d), -1);
	cr_assert_eq(parse_seconds("inf", &d), -1);
	cr_assert_eq(parse_seconds("1e-400", &d), -1, "underflow to zero");
	/* Decimal only: strtod() takes all of these. */
	cr_assert_eq(parse_seconds("0x10", &d), -1, "hexadecimal");
	cr_assert_eq(parse_seconds("0X1p4", &d), -1, "hexadecimal float");
	cr_assert_eq(parse_seconds("1e2", &d), -1, "exponent");
	cr_assert_eq(parse_seconds(" 5", &d), -1, "leading blank");
	cr_assert_eq(parse_seconds("5 ", &d), -1, "trailing blank");
	cr_assert_eq(parse_seconds("infinity", &d), -1);
	cr_assert_eq(parse_seconds(".", &d), -1);
	cr_assert_eq(parse_seconds("1.2.3", &d), -1);
	cr_assert_eq(parse_seconds(".25", &d), 0);
	cr_assert_float_eq(d, 0.25, 1e-12);
	cr_assert_eq(parse_seconds("2.5", &d), 0);
	cr_assert_float_eq(d, 2.5, 1e-12);
	cr_assert_eq(parse_seconds("99999999999999999999", &d), -1, "no overflow");
}

Test(clock, monotonic)
{
	double a = monotonic_now(), b = monotonic_now();

	cr_assert_gt(a, 0);
	cr_assert_geq(b, a);
}

/* ================================================================== */
/* log_escape                                                         */
/* ================================================================== */

Test(log_escape, escaping)
{
	char out[256];
	size_t n;

	n = log_escape(out, sizeof(out), "plain text 123", 14);
	cr_assert_str_eq(out, "plain text 123");
	cr_assert_eq(n, 14);
	n = log_escape(out, sizeof(out), "a\r\nb", 4);
	cr_assert_str_eq(out, "a\\x0d\\x0ab");
	cr_assert_eq(n, strlen(out));
	log_escape(out, sizeof(out), "q\"b\\", 4);
	cr_assert_str_eq(out, "q\\\"b\\\\");
	log_escape(out, sizeof(out), "\x00\x1f\x7f\x80\xff", 5);
	cr_assert_str_eq(out, "\\x00\\x1f\\x7f\\x80\\xff", "NUL-safe, 8-bit escaped");
	log_escape(out, sizeof(out), "tab\there", 8);
	cr_assert_str_eq(out, "tab\\x09here");
	n = log_escape(out, sizeof(out), "", 0);
	cr_assert_str_eq(out, "");
	cr_assert_eq(n, 0);
	/* Only len octets are read. */
	log_escape(out, sizeof(out), "abcdef", 3);
	cr_assert_str_eq(out, "abc");
}

Test(log_escape, truncation)
{
	char in[5000], out[64];
	size_t n, len;

	memset(in, 'x', sizeof(in));
	n = log_escape(out, sizeof(out), in, sizeof(in));
	len = strlen(out);
	cr_assert_eq(n, len);
	cr_assert_lt(len, sizeof(out));
	cr_assert_geq(len, sizeof(out) - 8, "cut near the end, not early");
	cr_assert_str_eq(out + len - 3, "...", "a cut is visible: %s", out);

	/* A cut never splits an escape sequence. */
	memset(in, '\n', 100);
	log_escape(out, sizeof(out), in, 100);
	len = strlen(out);
	cr_assert_str_eq(out + len - 3, "...");
	cr_assert_eq((len - 3) % 4, 0, "whole \\x0a sequences only: %s", out);

	/* Tiny buffers. */
	n = log_escape(out, 0, "abc", 3);
	cr_assert_eq(n, 0);
	out[0] = 'Z';
	n = log_escape(out, 1, "abc", 3);
	cr_assert_eq(n, 0);
	cr_assert_str_eq(out, "");
	n = log_escape(out, 4, "abcdef", 6);
	cr_assert_lt(n, 4);
	cr_assert_eq(strlen(out), n);

	/* What fits is kept whole. */
	n = log_escape(out, sizeof(out), "short", 5);
	cr_assert_str_eq(out, "short");
}
