/*
 * test_proxy_proto.c - the PROXY protocol header parser (v1 and v2)
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "proxy_proto.h"

static enum proxy_status
parse(const char *s, size_t len, struct proxy_header *h)
{
	return proxy_parse((const unsigned char *)s, len, h);
}

static enum proxy_status
parse_str(const char *s, struct proxy_header *h)
{
	return parse(s, strlen(s), h);
}

static void
expect_v4(const struct sockaddr_storage *ss, const char *addr, unsigned port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	char buf[INET_ADDRSTRLEN];

	cr_assert_eq(sin->sin_family, AF_INET);
	inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
	cr_assert_str_eq(buf, addr);
	cr_assert_eq(ntohs(sin->sin_port), port);
}

static void
expect_v6(const struct sockaddr_storage *ss, const char *addr, unsigned port)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	char buf[INET6_ADDRSTRLEN];

	cr_assert_eq(sin6->sin6_family, AF_INET6);
	inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
	cr_assert_str_eq(buf, addr);
	cr_assert_eq(ntohs(sin6->sin6_port), port);
}

Test(proxy_v1, tcp4_and_what_follows_is_left)
{
	struct proxy_header h;
	const char *in = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO x\r\n";

	cr_assert_eq(parse_str(in, &h), PROXY_OK);
	cr_assert_eq(h.version, 1);
	cr_assert_eq(h.len, strlen("PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n"));
	expect_v4(&h.src, "192.0.2.7", 56324);
	expect_v4(&h.dst, "198.51.100.1", 25);
	cr_assert_eq(h.addrlen, sizeof(struct sockaddr_in));
}

Test(proxy_v1, tcp6)
{
	struct proxy_header h;

	cr_assert_eq(parse_str("PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n", &h),
	    PROXY_OK);
	expect_v6(&h.src, "2001:db8::1", 65535);
	expect_v6(&h.dst, "2001:db8::2", 0);
}

Test(proxy_v1, unknown_is_local_whatever_follows)
{
	struct proxy_header h;

	cr_assert_eq(parse_str("PROXY UNKNOWN\r\n", &h), PROXY_LOCAL);
	cr_assert_eq(h.len, 15);
	cr_assert_eq(parse_str("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", &h), PROXY_LOCAL);
}

Test(proxy_v1, every_prefix_needs_more)
{
	const char *in = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n";
	struct proxy_header h;
	size_t n;

	for (n = 0; n < strlen(in); n++)
		cr_assert_eq(parse(in, n, &h), PROXY_NEED_MORE, "prefix %zu", n);
	cr_assert_eq(parse(in, strlen(in), &h), PROXY_OK);
}

Test(proxy_v1, malformed_headers_are_refused)
{
	static const char *const bad[] = {
		"EHLO client.example\r\n",
		"proxy TCP4 192.0.2.7 198.51.100.1 1 2\r\n",
		"PROXY TCP4  192.0.2.7 198.51.100.1 1 2\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 1 2 \r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 1 2 3\r\n",
		"PROXY TCP5 192.0.2.7 198.51.100.1 1 2\r\n",
		"PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",
		"PROXY TCP6 192.0.2.7 2001:db8::2 1 2\r\n",
		"PROXY TCP4 192.0.2.256 198.51.100.1 1 2\r\n",
		"PROXY TCP4 192.0.2.07 198.51.100.1 1 2\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 65536 2\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 01 2\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 +1 2\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\rX",
		"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n",
		"PROXY TCP4 192.0.2.7\t198.51.100.1 1 2\r\n",
		"PROXY \r\n",
		NULL
	};
	struct proxy_header h;
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		cr_assert_eq(parse_str(bad[i], &h), PROXY_BAD, "%s", bad[i]);
		cr_assert_not_null(h.why);
	}
}

Test(proxy_v1, no_crlf_within_107_octets)
{
	char in[200];
	struct proxy_header h;

	memset(in, 'a', sizeof(in));
	memcpy(in, "PROXY UNKNOWN ", 14);
	cr_assert_eq(parse(in, 106, &h), PROXY_NEED_MORE);
	cr_assert_eq(parse(in, 107, &h), PROXY_BAD);
	cr_assert_eq(parse(in, 200, &h), PROXY_BAD);
	/* 105 octets and CRLF: 107, the longest allowed */
	in[105] = '\r';
	in[106] = '\n';
	cr_assert_eq(parse(in, 107, &h), PROXY_LOCAL);
	cr_assert_eq(h.len, 107);
	in[105] = 'a';
	in[106] = '\r';
	in[107] = '\n';
	cr_assert_eq(parse(in, 108, &h), PROXY_BAD);
}

static const unsigned char sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* v2 - a v2 header into buf; its length */
static size_t
v2(unsigned char *buf, unsigned char ver_cmd, unsigned char fam,
    const unsigned char *addrs, size_t alen)
{
	memcpy(buf, sig, 12);
	buf[12] = ver_cmd;
	buf[13] = fam;
	buf[14] = (unsigned char)(alen >> 8);
	buf[15] = (unsigned char)alen;
	if (alen > 0)
		memcpy(buf + 16, addrs, alen);
	return 16 + alen;
}

Test(proxy_v2, tcp4_with_a_tlv_skipped)
{
	unsigned char a[12 + 7] = { 192, 0, 2, 7, 198, 51, 100, 1, 0xdc, 0x04, 0, 25,
		0x01, 0x00, 0x04, 'h', '2', '/', '2' };
	unsigned char buf[64];
	size_t n = v2(buf, 0x21, 0x11, a, sizeof(a)), k;
	struct proxy_header h;

	for (k = 0; k < n; k++)
		cr_assert_eq(proxy_parse(buf, k, &h), PROXY_NEED_MORE, "prefix %zu", k);
	cr_assert_eq(proxy_parse(buf, n, &h), PROXY_OK);
	cr_assert_eq(h.version, 2);
	cr_assert_eq(h.len, n);
	expect_v4(&h.src, "192.0.2.7", 56324);
	expect_v4(&h.dst, "198.51.100.1", 25);
}

Test(proxy_v2, tcp6)
{
	unsigned char a[36] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1,
		[16] = 0x20, 0x01, 0x0d, 0xb8, [31] = 2, [32] = 0x12, 0x34, 0, 25 };
	unsigned char buf[64];
	size_t n = v2(buf, 0x21, 0x21, a, sizeof(a));
	struct proxy_header h;

	cr_assert_eq(proxy_parse(buf, n, &h), PROXY_OK);
	expect_v6(&h.src, "2001:db8::1", 0x1234);
	expect_v6(&h.dst, "2001:db8::2", 25);
}

Test(proxy_v2, local_unspec_and_unix_keep_the_real_peer)
{
	unsigned char a[216] = { 0 };
	unsigned char buf[256];
	struct proxy_header h;
	size_t n;

	n = v2(buf, 0x20, 0x00, NULL, 0);	/* LOCAL: a health check */
	cr_assert_eq(proxy_parse(buf, n, &h), PROXY_LOCAL);
	cr_assert_eq(h.len, 16);
	n = v2(buf, 0x20, 0x11, a, 12);		/* LOCAL with addresses */
	cr_assert_eq(proxy_parse(buf, n, &h), PROXY_LOCAL);
	cr_assert_eq(h.len, 28);
	n = v2(buf, 0x21, 0x00, NULL, 0);	/* PROXY, UNSPEC */
	cr_assert_eq(proxy_parse(buf, n, &h), PROXY_LOCAL);
	n = v2(buf, 0x21, 0x31, a, 216);	/* PROXY, UNIX stream */
	cr_assert_eq(proxy_parse(buf, n, &h), PROXY_LOCAL);
}

Test(proxy_v2, malformed_headers_are_refused)
{
	unsigned char a[36] = { 0 };
	unsigned char buf[64];
	struct proxy_header h;
	size_t n;

	n = v2(buf, 0x11, 0x11, a, 12);		/* version 1 in v2 */
	cr_assert_eq(proxy_parse(buf, n, &h), PROXY_BAD);
	n = v2(buf, 0x22, 0x11, a, 12);		/* command 2 */
	cr_assert_eq(proxy_parse(buf, n, &h), PROXY_BAD);
	n = v2(buf, 0x21, 0x12, a, 12);		/* UDP */
	cr_assert_eq(proxy_parse(buf, n, &h), PROXY_BAD);
	n = v2(buf, 0x21, 0x41, a, 12);		/* family 4 */
	cr_assert_eq(proxy_parse(buf, n, &h), PROXY_BAD);
	n = v2(buf, 0x21, 0x11, a, 11);		/* short IPv4 block */
	cr_assert_eq(proxy_parse(buf, n, &h), PROXY_BAD);
	n = v2(buf, 0x21, 0x21, a, 35);		/* short IPv6 block */
	cr_assert_eq(proxy_parse(buf, n, &h), PROXY_BAD);
	/* a length beyond what we take, refused before it all arrives */
	n = v2(buf, 0x21, 0x11, a, 12);
	buf[14] = 0xff;
	buf[15] = 0xff;
	cr_assert_eq(proxy_parse(buf, 16, &h), PROXY_BAD);
	/* a broken signature, at any octet */
	for (n = 0; n < 12; n++) {
		v2(buf, 0x21, 0x11, a, 12);
		buf[n] ^= 0x40;
		cr_assert_eq(proxy_parse(buf, 28, &h), PROXY_BAD, "octet %zu", n);
	}
}
