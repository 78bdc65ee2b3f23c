/*
 * test_helpers.c - the plugin helpers of sdk/helpers (sh_helpers.h):
 * lists, CIDR parsing and matching (IPv4, IPv6, IPv4-mapped, every
 * boundary), domain patterns, values.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "helpers/sh_helpers.h"

/* ---- sh_list_next ---- */

/* collect - the items of a list joined with '|' */
static void
collect(const char *list, char sep, char *out, size_t size)
{
	const char *cur = list, *item;
	size_t len, used = 0, n = 0;

	out[0] = '\0';
	while ((item = sh_list_next(&cur, sep, &len)) != NULL) {
		used += (size_t)snprintf(out + used, size - used, "%s%.*s",
		    n++ ? "|" : "", (int)len, item);
		cr_assert_lt(used, size);
	}
	/* Used up: it stays used up. */
	cr_assert_null(sh_list_next(&cur, sep, &len));
}

Test(list, items_trimmed_and_empty_items_returned)
{
	char out[256];

	collect("a;b;c", ';', out, sizeof(out));
	cr_assert_str_eq(out, "a|b|c");
	collect("  a ; \tb\t;;  ;c;", ';', out, sizeof(out));
	cr_assert_str_eq(out, "a|b|||c|", "empty items are not skipped");
	collect("", ';', out, sizeof(out));
	cr_assert_str_eq(out, "");
	collect(" ; ;", ';', out, sizeof(out));
	cr_assert_str_eq(out, "||");
	collect(";a", ';', out, sizeof(out));
	cr_assert_str_eq(out, "|a");
	collect(";", ';', out, sizeof(out));
	cr_assert_str_eq(out, "|");
	collect("x y;z", ';', out, sizeof(out));
	cr_assert_str_eq(out, "x y|z", "inner blanks are kept");
	collect("a,b;c", ',', out, sizeof(out));
	cr_assert_str_eq(out, "a|b;c", "the separator is the caller's");
}

Test(list, check_refuses_empty_items)
{
	cr_assert_eq(sh_list_check("a;b", ';'), 0);
	cr_assert_eq(sh_list_check("", ';'), 0, "no items is not an empty item");
	cr_assert_eq(sh_list_check(" a ", ';'), 0);
	cr_assert_eq(sh_list_check("a;;b", ';'), -1);
	cr_assert_eq(sh_list_check("a;", ';'), -1);
	cr_assert_eq(sh_list_check(";a", ';'), -1);
	cr_assert_eq(sh_list_check("a; ;b", ';'), -1);
	cr_assert_eq(sh_list_check(" ", ';'), -1);
}

/* ---- CIDR ---- */

static sh_cidr
net(const char *s)
{
	sh_cidr c;

	cr_assert_geq(sh_cidr_parse(s, strlen(s), &c), 0, "parse %s", s);
	return c;
}

static sh_cidr
ip(const char *s)
{
	sh_cidr c;

	cr_assert_eq(sh_ip_parse(s, strlen(s), &c), 0, "parse %s", s);
	return c;
}

static int
in(const char *network, const char *addr)
{
	sh_cidr n = net(network), a = ip(addr);

	return sh_cidr_match(&n, &a);
}

static const char *
fmt(const char *s)
{
	static char buf[SH_CIDR_STRLEN];
	sh_cidr c = net(s);

	return sh_cidr_format(&c, buf, sizeof(buf));
}

Test(cidr, parse_forms)
{
	sh_cidr c;

	c = net("192.0.2.0/24");
	cr_assert_eq(c.family, SH_CIDR_V4);
	cr_assert_eq(c.prefix, 24);
	cr_assert_eq(c.addr[0], 192);
	cr_assert_eq(c.addr[2], 2);
	c = net("192.0.2.7");
	cr_assert_eq(c.prefix, 32, "a bare IPv4 address is a /32");
	c = net("2001:db8::1");
	cr_assert_eq(c.family, SH_CIDR_V6);
	cr_assert_eq(c.prefix, 128, "a bare IPv6 address is a /128");
	c = net("::/0");
	cr_assert_eq(c.family, SH_CIDR_V6);
	cr_assert_eq(c.prefix, 0);
	cr_assert_str_eq(fmt("10.0.0.0/8"), "10.0.0.0/8");
	cr_assert_str_eq(fmt("2001:DB8:0:0::/32"), "2001:db8::/32");
	cr_assert_str_eq(fmt("2001:db8::1/128"), "2001:db8::1");
	cr_assert_str_eq(fmt("0.0.0.0/0"), "0.0.0.0/0");
}

Test(cidr, parse_errors)
{
	static const char *const bad[] = {
		"", "/24", "1.2.3", "1.2.3.4.5", "1.2.3.4/", "1.2.3.4/33", "1.2.3.4/-1",
		"1.2.3.4/2x", "1.2.3.4/0024", "01.2.3.4", "256.1.1.1", " 1.2.3.4",
		"1.2.3.4 ", "::/129", "2001:db8::/1280", "2001:db8:::1", "fe80::1%eth0",
		"[::1]", "example.com", "1.2.3.4/24/8", "2001:db8::g",
	};
	sh_cidr c = net("192.0.2.0/24"), before = c;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(sh_cidr_parse(bad[i], strlen(bad[i]), &c), -1,
		    "'%s' must not parse", bad[i]);
		cr_assert(memcmp(&c, &before, sizeof(c)) == 0, "*out unchanged");
	}
	/* The length bounds the text: no NUL needed, nothing read past it. */
	cr_assert_eq(sh_cidr_parse("10.0.0.0/8;junk", 10, &c), 0);
	cr_assert_eq(c.prefix, 8);
}

Test(cidr, host_bits_cleared_and_reported)
{
	sh_cidr c;

	cr_assert_eq(sh_cidr_parse("192.0.2.7/24", 12, &c), 1);
	cr_assert_eq(c.addr[3], 0);
	cr_assert_str_eq(fmt("192.0.2.7/24"), "192.0.2.0/24");
	cr_assert_eq(sh_cidr_parse("2001:db8::1/64", 14, &c), 1);
	cr_assert_str_eq(fmt("2001:db8::1/64"), "2001:db8::/64");
	cr_assert_str_eq(fmt("255.255.255.255/1"), "128.0.0.0/1");
	cr_assert_eq(sh_cidr_parse("192.0.2.0/24", 12, &c), 0, "no host bits: 0");
}

Test(cidr, ipv4_boundaries)
{
	cr_assert(in("192.0.2.0/24", "192.0.2.0"));
	cr_assert(in("192.0.2.0/24", "192.0.2.255"));
	cr_assert(!in("192.0.2.0/24", "192.0.3.0"));
	cr_assert(!in("192.0.2.0/24", "192.0.1.255"));
	cr_assert(in("192.0.2.7/32", "192.0.2.7"));
	cr_assert(!in("192.0.2.7/32", "192.0.2.6"));
	cr_assert(!in("192.0.2.7/32", "192.0.2.8"));
	cr_assert(in("192.0.2.6/31", "192.0.2.7"));
	cr_assert(!in("192.0.2.6/31", "192.0.2.8"));
	cr_assert(in("10.0.0.0/7", "11.255.255.255"));
	cr_assert(!in("10.0.0.0/7", "12.0.0.0"));
	cr_assert(in("10.0.0.0/9", "10.127.255.255"));
	cr_assert(!in("10.0.0.0/9", "10.128.0.0"));
	cr_assert(in("0.0.0.0/0", "255.255.255.255"));
	cr_assert(in("0.0.0.0/0", "0.0.0.0"));
	cr_assert(in("128.0.0.0/1", "128.0.0.0"));
	cr_assert(!in("128.0.0.0/1", "127.255.255.255"));
}

Test(cidr, ipv6_boundaries)
{
	/* /0 */
	cr_assert(in("::/0", "::1"));
	cr_assert(in("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	cr_assert(!in("::/0", "192.0.2.1"), "::/0 is IPv6 only");
	/* /64 */
	cr_assert(in("2001:db8:1:2::/64", "2001:db8:1:2::"));
	cr_assert(in("2001:db8:1:2::/64", "2001:db8:1:2:ffff:ffff:ffff:ffff"));
	cr_assert(!in("2001:db8:1:2::/64", "2001:db8:1:3::"));
	cr_assert(!in("2001:db8:1:2::/64", "2001:db8:1:1:ffff:ffff:ffff:ffff"));
	/* /63, /65: the bit inside a byte */
	cr_assert(in("2001:db8:1:2::/63", "2001:db8:1:3:ffff::"));
	cr_assert(!in("2001:db8:1:2::/63", "2001:db8:1:4::"));
	cr_assert(in("2001:db8:1:2::/65", "2001:db8:1:2:7fff:ffff:ffff:ffff"));
	cr_assert(!in("2001:db8:1:2::/65", "2001:db8:1:2:8000::"));
	/* /127, /128 */
	cr_assert(in("2001:db8::/127", "2001:db8::1"));
	cr_assert(!in("2001:db8::/127", "2001:db8::2"));
	cr_assert(in("2001:db8::7/128", "2001:db8:0:0:0:0:0:7"));
	cr_assert(!in("2001:db8::7/128", "2001:db8::6"));
	cr_assert(!in("2001:db8::7/128", "2001:db8::8"));
	cr_assert(!in("2001:db8::7/128", "2001:db8::7:0"));
	/* families never mix */
	cr_assert(!in("0.0.0.0/0", "::"));
	cr_assert(!in("::/0", "0.0.0.0"));
}

Test(cidr, ipv4_mapped)
{
	sh_cidr c;

	c = ip("::ffff:192.0.2.7");
	cr_assert_eq(c.family, SH_CIDR_V4, "a mapped address is IPv4");
	cr_assert_eq(c.prefix, 32);
	cr_assert_eq(c.addr[3], 7);
	cr_assert_eq(c.addr[4], 0);
	c = net("::ffff:192.0.2.0/120");
	cr_assert_eq(c.family, SH_CIDR_V4, "a mapped network is IPv4");
	cr_assert_eq(c.prefix, 24);
	cr_assert_str_eq(fmt("::ffff:0:0/96"), "0.0.0.0/0");
	cr_assert(in("192.0.2.0/24", "::ffff:192.0.2.7"));
	cr_assert(in("192.0.2.0/24", "::FFFF:c000:0207"), "hex form");
	cr_assert(!in("192.0.2.0/24", "::ffff:192.0.3.7"));
	cr_assert(in("::ffff:192.0.2.0/120", "192.0.2.200"));
	cr_assert(in("::ffff:0:0/96", "203.0.113.9"));
	cr_assert(in("0.0.0.0/0", "::ffff:10.1.2.3"));
	/* Not mapped: ::192.0.2.7 (deprecated compatible form), ::fffe:... */
	c = ip("::192.0.2.7");
	cr_assert_eq(c.family, SH_CIDR_V6);
	cr_assert(!in("192.0.2.0/24", "::fffe:192.0.2.7"));
	/* A network shorter than /96 stays IPv6 and misses IPv4 clients. */
	cr_assert(!in("::ffff:0:0/95", "192.0.2.7"));
	cr_assert(!in("::/0", "::ffff:192.0.2.7"));
}

Test(cidr, ip_parse_peer_forms)
{
	sh_cidr c, d;

	c = ip("fe80::1%eth0");
	d = ip("fe80::1");
	cr_assert(memcmp(&c, &d, sizeof(c)) == 0, "zone id ignored");
	cr_assert_eq(sh_ip_parse("192.0.2.0/24", 12, &c), -1, "no prefix");
	cr_assert_eq(sh_ip_parse("unknown", 7, &c), -1);
	cr_assert_eq(sh_ip_parse("", 0, &c), -1);
	cr_assert_eq(sh_ip_parse("1.2.3.4%x", 9, &c), -1, "no zone on IPv4");
	cr_assert_eq(sh_ip_parse("192.0.2.77", 9, &c), 0, "length bounds it");
	cr_assert_eq(c.addr[3], 7);
}

Test(cidr, format_small_buffer)
{
	char buf[4];
	sh_cidr c = net("192.0.2.0/24");

	cr_assert_str_eq(sh_cidr_format(&c, buf, sizeof(buf)), "?");
}

/* ---- domains ---- */

static int
dm(const char *pattern, const char *domain)
{
	return sh_domain_match(pattern, strlen(pattern), domain, strlen(domain));
}

Test(domain, match)
{
	cr_assert(dm("example.com", "example.com"));
	cr_assert(dm("example.com", "EXAMPLE.Com"));
	cr_assert(dm("Example.COM", "example.com"));
	cr_assert(!dm("example.com", "mx.example.com"), "exact means exact");
	cr_assert(!dm("example.com", "example.co"));
	cr_assert(!dm("example.com", "xexample.com"));
	cr_assert(dm("*.example.com", "mx.example.com"));
	cr_assert(dm("*.example.com", "a.b.c.EXAMPLE.com"), "any depth");
	cr_assert(!dm("*.example.com", "example.com"),
	    "a sub-domain pattern does not match the parent");
	cr_assert(!dm("*.example.com", "badexample.com"), "label boundary");
	cr_assert(!dm("*.example.com", "example.com.evil.test"));
	cr_assert(dm(".example.com", "mx.example.com"), "Postfix form");
	cr_assert(!dm(".example.com", "example.com"));
	cr_assert(dm("example.com.", "example.com"), "trailing dots ignored");
	cr_assert(dm("example.com", "example.com."));
	cr_assert(dm("*.example.com", "mx.example.com."));
	cr_assert(!dm("", "example.com"));
	cr_assert(!dm("example.com", ""));
	cr_assert(!dm("*.", "example.com"));
	cr_assert(!dm(".", "example.com"));
	cr_assert(!dm("*", "example.com"), "no bare wildcard");
	cr_assert(!dm("mx.*.com", "mx.example.com"), "no inner wildcard");
	cr_assert(!dm("*.example.com", ".example.com"));
	/* Lengths bound both sides. */
	cr_assert(sh_domain_match("example.com;x", 11, "example.comX", 11));
}

Test(domain, check)
{
	cr_assert_eq(sh_domain_check("example.com", 11, 0), 0);
	cr_assert_eq(sh_domain_check("localhost", 9, 0), 0);
	cr_assert_eq(sh_domain_check("localhost", 9, SH_DOMAIN_FQDN), -1);
	cr_assert_eq(sh_domain_check("mx.example.com", 14, SH_DOMAIN_FQDN), 0);
	cr_assert_eq(sh_domain_check("mx.example.com.", 15, SH_DOMAIN_FQDN), 0);
	cr_assert_eq(sh_domain_check("192.0.2.7", 9, SH_DOMAIN_FQDN), -1, "numeric TLD");
	cr_assert_eq(sh_domain_check("host.123", 8, SH_DOMAIN_FQDN), -1);
	cr_assert_eq(sh_domain_check("123.example", 11, SH_DOMAIN_FQDN), 0);
	cr_assert_eq(sh_domain_check("my_pc.corp.example", 18, SH_DOMAIN_FQDN), 0);
	cr_assert_eq(sh_domain_check("-a.example", 10, 0), -1);
	cr_assert_eq(sh_domain_check("a-.example", 10, 0), -1);
	cr_assert_eq(sh_domain_check("a..example", 10, 0), -1);
	cr_assert_eq(sh_domain_check(".example", 8, 0), -1);
	cr_assert_eq(sh_domain_check("a b.example", 11, 0), -1);
	cr_assert_eq(sh_domain_check("a/b.example", 11, 0), -1);
	cr_assert_eq(sh_domain_check("", 0, 0), -1);
	cr_assert_eq(sh_domain_check(".", 1, 0), -1);
	cr_assert_eq(sh_domain_check("*.example.com", 13, 0), -1);
	cr_assert_eq(sh_domain_check("*.example.com", 13, SH_DOMAIN_WILDCARD), 0);
	cr_assert_eq(sh_domain_check(".example.com", 12, SH_DOMAIN_WILDCARD), 0);
	cr_assert_eq(sh_domain_check("*.", 2, SH_DOMAIN_WILDCARD), -1);
	cr_assert_eq(sh_domain_check("*", 1, SH_DOMAIN_WILDCARD), -1);
	cr_assert_eq(sh_domain_check("a.*.com", 7, SH_DOMAIN_WILDCARD), -1);
	cr_assert_eq(sh_domain_check("b\xc3\xbc" "cher.example", 15, 0), 0, "U-label");
}

Test(domain, check_lengths)
{
	char label[70], name[300];

	memset(label, 'a', 63);
	label[63] = '\0';
	snprintf(name, sizeof(name), "%s.example", label);
	cr_assert_eq(sh_domain_check(name, strlen(name), 0), 0, "63-octet label");
	memset(label, 'a', 64);
	label[64] = '\0';
	snprintf(name, sizeof(name), "%s.example", label);
	cr_assert_eq(sh_domain_check(name, strlen(name), 0), -1, "64-octet label");
	/* 253 octets: 126 labels "a." minus one dot + "a" */
	memset(name, 0, sizeof(name));
	for (size_t i = 0; i < 253; i++)
		name[i] = i % 2 ? '.' : 'a';
	cr_assert_eq(sh_domain_check(name, 253, 0), 0, "253 octets");
	name[253] = '.';
	name[254] = 'a';
	cr_assert_eq(sh_domain_check(name, 255, 0), -1, "255 octets");
}

/* ---- values ---- */

Test(values, size)
{
	uint64_t v;

	cr_assert_eq(sh_parse_size("0", &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(sh_parse_size("1000", &v), 0);
	cr_assert_eq(v, 1000);
	cr_assert_eq(sh_parse_size("1k", &v), 0);
	cr_assert_eq(v, 1024);
	cr_assert_eq(sh_parse_size("10M", &v), 0);
	cr_assert_eq(v, 10u << 20);
	cr_assert_eq(sh_parse_size("2g", &v), 0);
	cr_assert_eq(v, 2ull << 30);
	cr_assert_eq(sh_parse_size("18446744073709551615", &v), 0);
	cr_assert_eq(v, UINT64_MAX);
	cr_assert_eq(sh_parse_size("18446744073709551616", &v), -1, "2^64");
	cr_assert_eq(sh_parse_size("17179869184G", &v), -1, "2^34 GiB overflows");
	cr_assert_eq(sh_parse_size("17179869183G", &v), 0);
	cr_assert_eq(sh_parse_size("", &v), -1);
	cr_assert_eq(sh_parse_size("K", &v), -1);
	cr_assert_eq(sh_parse_size("-1", &v), -1);
	cr_assert_eq(sh_parse_size("+1", &v), -1);
	cr_assert_eq(sh_parse_size("1.5M", &v), -1);
	cr_assert_eq(sh_parse_size("10 M", &v), -1);
	cr_assert_eq(sh_parse_size("10MB", &v), -1);
	cr_assert_eq(sh_parse_size("10T", &v), -1);
	cr_assert_eq(sh_parse_size("0x10", &v), -1);
}

Test(values, uint_and_bool)
{
	uint64_t v;
	int b;

	cr_assert_eq(sh_parse_uint("42", 100, &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(sh_parse_uint("100", 100, &v), 0);
	cr_assert_eq(sh_parse_uint("101", 100, &v), -1);
	cr_assert_eq(sh_parse_uint("7", 5, &v), -1);
	cr_assert_eq(sh_parse_uint("4294967295", UINT32_MAX, &v), 0);
	cr_assert_eq(sh_parse_uint("4294967296", UINT32_MAX, &v), -1);
	cr_assert_eq(sh_parse_uint("0x10", 100, &v), -1, "decimal only");
	cr_assert_eq(sh_parse_uint("010", 100, &v), 0, "leading zeros are decimal");
	cr_assert_eq(v, 10);
	cr_assert_eq(sh_parse_uint(" 1", 100, &v), -1);
	cr_assert_eq(sh_parse_uint("1e2", 1000, &v), -1);
	cr_assert_eq(sh_parse_uint("1k", UINT64_MAX, &v), -1);
	cr_assert_eq(sh_parse_uint("", UINT64_MAX, &v), -1);
	cr_assert_eq(sh_parse_bool("yes", &b), 0);
	cr_assert_eq(b, 1);
	cr_assert_eq(sh_parse_bool("ON", &b), 0);
	cr_assert_eq(b, 1);
	cr_assert_eq(sh_parse_bool("1", &b), 0);
	cr_assert_eq(b, 1);
	cr_assert_eq(sh_parse_bool("No", &b), 0);
	cr_assert_eq(b, 0);
	cr_assert_eq(sh_parse_bool("false", &b), 0);
	cr_assert_eq(b, 0);
	cr_assert_eq(sh_parse_bool("y", &b), -1);
	cr_assert_eq(sh_parse_bool("", &b), -1);
	cr_assert_eq(sh_parse_bool("yes ", &b), -1);
}
