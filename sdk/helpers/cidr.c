/*
 * cidr.c - IPv4/IPv6 networks in CIDR notation (see sh_helpers.h)
 *
 * Text is converted with inet_pton(3), which is locale-free and strict
 * (glibc refuses leading zeros in IPv4 octets and IPv6 zone ids).  Every
 * network is kept as family + prefix + 16 bytes with the host bits
 * cleared, so matching is a memcmp of whole bytes plus one masked byte.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

#include "sh_helpers.h"

/* Longest text we accept: a full IPv6 form with an embedded IPv4 tail
 * (45 octets) plus "/128" fits easily. */
#define CIDR_TEXT_MAX	63

/* map_to_v4 - ::ffff:a.b.c.d (RFC 4291 §2.5.5.2) becomes a.b.c.d; returns
 * 1 when it did */
static int
map_to_v4(sh_cidr *c)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (c->family != SH_CIDR_V6 || c->prefix < 96 || memcmp(c->addr, mapped, 12) != 0)
		return 0;
	memmove(c->addr, c->addr + 12, 4);
	memset(c->addr + 4, 0, 12);
	c->family = SH_CIDR_V4;
	c->prefix = (uint8_t)(c->prefix - 96);
	return 1;
}

/* clear_host_bits - zero every bit past the prefix; 1 when one was set */
static int
clear_host_bits(sh_cidr *c)
{
	unsigned i, nbytes = c->family == SH_CIDR_V4 ? 4 : 16, p = c->prefix;
	int changed = 0;

	for (i = 0; i < 16; i++) {
		uint8_t keep;

		if (i >= nbytes)
			keep = 0;
		else if (p >= 8 * (i + 1))
			keep = 0xff;
		else if (p <= 8 * i)
			keep = 0;
		else
			keep = (uint8_t)(0xff << (8 - (p - 8 * i)));
		if ((c->addr[i] & (uint8_t)~keep) != 0)
			changed = 1;
		c->addr[i] &= keep;
	}
	return changed;
}

/* parse_addr - numeric address text (NUL-terminated) into c, full length */
static int
parse_addr(const char *text, sh_cidr *c)
{
	memset(c, 0, sizeof(*c));
	if (strchr(text, ':') != NULL) {
		if (inet_pton(AF_INET6, text, c->addr) != 1)
			return -1;
		c->family = SH_CIDR_V6;
		c->prefix = 128;
	} else {
		if (inet_pton(AF_INET, text, c->addr) != 1)
			return -1;
		c->family = SH_CIDR_V4;
		c->prefix = 32;
	}
	return 0;
}

int
sh_cidr_parse(const char *s, size_t len, sh_cidr *out)
{
	char buf[CIDR_TEXT_MAX + 1];
	const char *slash;
	unsigned prefix = 0, max;
	sh_cidr c;
	size_t alen, i;
	int changed;

	if (s == NULL || len == 0 || len > CIDR_TEXT_MAX || memchr(s, '\0', len) != NULL)
		return -1;
	slash = memchr(s, '/', len);
	alen = slash != NULL ? (size_t)(slash - s) : len;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (parse_addr(buf, &c) < 0)
		return -1;
	max = c.prefix;
	if (slash != NULL) {
		size_t plen = len - alen - 1;

		if (plen == 0 || plen > 3)
			return -1;
		for (i = 0; i < plen; i++) {
			if (slash[1 + i] < '0' || slash[1 + i] > '9')
				return -1;
			prefix = prefix * 10 + (unsigned)(slash[1 + i] - '0');
		}
		if (prefix > max)
			return -1;
		c.prefix = (uint8_t)prefix;
	}
	changed = clear_host_bits(&c);
	map_to_v4(&c);
	*out = c;
	return changed;
}

int
sh_ip_parse(const char *s, size_t len, sh_cidr *out)
{
	char buf[CIDR_TEXT_MAX + 1];
	const char *zone;
	sh_cidr c;

	if (s == NULL || len == 0 || memchr(s, '\0', len) != NULL)
		return -1;
	/* A zone id only follows an IPv6 address. */
	if ((zone = memchr(s, '%', len)) != NULL && memchr(s, ':', len) != NULL)
		len = (size_t)(zone - s);
	if (len == 0 || len > CIDR_TEXT_MAX || memchr(s, '/', len) != NULL)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (parse_addr(buf, &c) < 0)
		return -1;
	map_to_v4(&c);
	*out = c;
	return 0;
}

int
sh_cidr_match(const sh_cidr *net, const sh_cidr *ip)
{
	unsigned full, rem;

	if (net->family != ip->family)
		return 0;
	full = net->prefix / 8;
	rem = net->prefix % 8;
	if (full > 16 || memcmp(net->addr, ip->addr, full) != 0)
		return 0;
	if (rem != 0) {
		uint8_t mask = (uint8_t)(0xff << (8 - rem));

		if ((net->addr[full] ^ ip->addr[full]) & mask)
			return 0;
	}
	return 1;
}

char *
sh_cidr_format(const sh_cidr *c, char *buf, size_t size)
{
	char text[INET6_ADDRSTRLEN];
	int v4 = c->family == SH_CIDR_V4, n;

	if (inet_ntop(v4 ? AF_INET : AF_INET6, c->addr, text, sizeof(text)) == NULL)
		snprintf(text, sizeof(text), "?");
	if (c->prefix == (v4 ? 32 : 128))
		n = snprintf(buf, size, "%s", text);
	else
		n = snprintf(buf, size, "%s/%u", text, (unsigned)c->prefix);
	if (n < 0 || (size_t)n >= size) {
		if (size >= 2)
			snprintf(buf, size, "?");
		else if (size == 1)
			buf[0] = '\0';
	}
	return buf;
}
