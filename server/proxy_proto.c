/*
 * proxy_proto.c - the HAProxy PROXY protocol header, versions 1 and 2
 *
 * See proxy_proto.h.  The header comes from a balancer we trust, but the
 * octets may still be anyone's (a misconfigured trust list, a client that
 * reaches the port directly), so every length is checked before use.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "proxy_proto.h"

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
static const char v1_sig[] = "PROXY ";

static enum proxy_status
bad(struct proxy_header *h, const char *why)
{
	h->why = why;
	return PROXY_BAD;
}

/* port_value - "0".."65535", decimal, no sign or leading zero; -1 bad */
static long
port_value(const char *s, size_t n)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= 65535 ? v : -1;
}

/* set_addr - family/address text/port into ss; 0 or -1 */
static int
set_addr(struct sockaddr_storage *ss, int family, const char *text,
    size_t tlen, long port)
{
	char buf[INET6_ADDRSTRLEN];

	if (tlen == 0 || tlen >= sizeof(buf))
		return -1;
	memcpy(buf, text, tlen);
	buf[tlen] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((unsigned short)port);
		return inet_pton(AF_INET, buf, &sin->sin_addr) == 1 ? 0 : -1;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((unsigned short)port);
		return inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1 ? 0 : -1;
	}
}

/* parse_v1 - "PROXY TCP4|TCP6|UNKNOWN ...\r\n" */
static enum proxy_status
parse_v1(const unsigned char *in, size_t len, struct proxy_header *h)
{
	const char *f[6];
	size_t fl[6], nf = 0, i, start, end;
	long sport, dport;
	int family;

	h->version = 1;
	for (end = 0; end < len && end < PROXY_V1_MAX; end++) {
		if (in[end] == '\r')
			break;
		if (in[end] < 0x20 || in[end] > 0x7e)
			return bad(h, "PROXY v1: a control or non-ASCII octet");
	}
	if (end == len)
		return len >= PROXY_V1_MAX ? bad(h, "PROXY v1: no CRLF within "
		    "107 octets") : PROXY_NEED_MORE;
	if (end == PROXY_V1_MAX || end + 1 >= PROXY_V1_MAX)
		return bad(h, "PROXY v1: no CRLF within 107 octets");
	if (end + 1 == len)
		return PROXY_NEED_MORE;
	if (in[end + 1] != '\n')
		return bad(h, "PROXY v1: CR without LF");
	h->len = end + 2;
	/* fields at single spaces */
	for (i = start = 0; i <= end; i++) {
		if (i < end && in[i] != ' ')
			continue;
		if (i == start || nf == 6)
			return bad(h, "PROXY v1: wrong number of fields or spaces");
		f[nf] = (const char *)in + start;
		fl[nf++] = i - start;
		start = i + 1;
		if (nf == 2 && fl[1] == 7 && memcmp(f[1], "UNKNOWN", 7) == 0)
			return PROXY_LOCAL;	/* the rest is to be ignored */
	}
	if (nf < 2)
		return bad(h, "PROXY v1: no protocol");
	if (fl[1] == 4 && memcmp(f[1], "TCP4", 4) == 0)
		family = AF_INET;
	else if (fl[1] == 4 && memcmp(f[1], "TCP6", 4) == 0)
		family = AF_INET6;
	else
		return bad(h, "PROXY v1: protocol not TCP4, TCP6 or UNKNOWN");
	if (nf != 6)
		return bad(h, "PROXY v1: wrong number of fields or spaces");
	if ((sport = port_value(f[4], fl[4])) < 0 ||
	    (dport = port_value(f[5], fl[5])) < 0)
		return bad(h, "PROXY v1: bad port");
	if (set_addr(&h->src, family, f[2], fl[2], sport) < 0 ||
	    set_addr(&h->dst, family, f[3], fl[3], dport) < 0)
		return bad(h, "PROXY v1: bad address for its protocol");
	h->addrlen = family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
	return PROXY_OK;
}

/* parse_v2 - the binary header */
static enum proxy_status
parse_v2(const unsigned char *in, size_t len, struct proxy_header *h)
{
	size_t alen, total;
	unsigned cmd, fam, proto;

	h->version = 2;
	if (len < 16)
		return PROXY_NEED_MORE;
	if (in[12] >> 4 != 2)
		return bad(h, "PROXY v2: version is not 2");
	cmd = in[12] & 0x0f;
	if (cmd > 1)
		return bad(h, "PROXY v2: command neither LOCAL nor PROXY");
	alen = (size_t)in[14] << 8 | in[15];
	total = 16 + alen;
	if (total > PROXY_V2_MAX)
		return bad(h, "PROXY v2: header longer than we take");
	if (len < total)
		return PROXY_NEED_MORE;
	h->len = total;
	if (cmd == 0)
		return PROXY_LOCAL;	/* a health check: no addresses */
	fam = in[13] >> 4;
	proto = in[13] & 0x0f;
	if (fam == 0 || fam == 3)
		return PROXY_LOCAL;	/* UNSPEC, UNIX: keep the real peer */
	if (fam > 3)
		return bad(h, "PROXY v2: unknown address family");
	if (proto != 1)
		return bad(h, "PROXY v2: not a stream (TCP)");
	memset(&h->src, 0, sizeof(h->src));
	memset(&h->dst, 0, sizeof(h->dst));
	if (fam == 1) {
		struct sockaddr_in *s = (struct sockaddr_in *)&h->src;
		struct sockaddr_in *d = (struct sockaddr_in *)&h->dst;

		if (alen < 12)
			return bad(h, "PROXY v2: address block too short for IPv4");
		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, in + 16, 4);
		memcpy(&d->sin_addr, in + 20, 4);
		memcpy(&s->sin_port, in + 24, 2);	/* network order */
		memcpy(&d->sin_port, in + 26, 2);
		h->addrlen = sizeof(struct sockaddr_in);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&h->dst;

		if (alen < 36)
			return bad(h, "PROXY v2: address block too short for IPv6");
		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, in + 16, 16);
		memcpy(&d->sin6_addr, in + 32, 16);
		memcpy(&s->sin6_port, in + 48, 2);
		memcpy(&d->sin6_port, in + 50, 2);
		h->addrlen = sizeof(struct sockaddr_in6);
	}
	return PROXY_OK;	/* TLVs after the addresses: skipped */
}

enum proxy_status
proxy_parse(const unsigned char *in, size_t len, struct proxy_header *h)
{
	size_t n;

	memset(h, 0, sizeof(*h));
	if (len == 0)
		return PROXY_NEED_MORE;
	if (in[0] == v2_sig[0]) {
		n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
		if (memcmp(in, v2_sig, n) != 0)
			return bad(h, "not a PROXY header (v2 signature)");
		return len < sizeof(v2_sig) ? PROXY_NEED_MORE : parse_v2(in, len, h);
	}
	n = len < sizeof(v1_sig) - 1 ? len : sizeof(v1_sig) - 1;
	if (memcmp(in, v1_sig, n) != 0)
		return bad(h, "not a PROXY header");
	return len < sizeof(v1_sig) - 1 ? PROXY_NEED_MORE : parse_v1(in, len, h);
}
