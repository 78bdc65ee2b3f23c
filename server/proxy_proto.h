/*
 * proxy_proto.h - the HAProxy PROXY protocol header, versions 1 and 2
 *
 * SYNOPSIS
 *	struct proxy_header h;
 *
 *	switch (proxy_parse(in, len, &h)) {
 *	case PROXY_NEED_MORE:	wait for more octets (a timeout bounds it)
 *	case PROXY_BAD:		log h.why, close without a reply
 *	case PROXY_LOCAL:	a health check or UNKNOWN: keep the real peer
 *	case PROXY_OK:		the client is h.src, we are h.dst
 *	}
 *	consume h.len octets (PROXY_OK, PROXY_LOCAL)
 *
 * DESCRIPTION
 *	HAProxy's proxy-protocol.txt: a v1 header is one text line
 *	"PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n" of at most 107
 *	octets; a v2 header is a 12-octet signature, a version/command
 *	octet, a family/protocol octet, a 16-bit length and that many
 *	octets of addresses and TLVs (skipped; at most PROXY_V2_MAX in all).
 *	Strict: one space between v1 fields, addresses as inet_pton() takes
 *	them in the family named, ports decimal 0-65535 without sign or
 *	leading zeros, v2 version 2 with command LOCAL or PROXY, TCP over
 *	IPv4 or IPv6 (UNSPEC and UNIX count as LOCAL, as the spec allows a
 *	receiver; UDP is refused), an address block no shorter than its
 *	family needs.  Anything else is PROXY_BAD with the reason.
 *
 *	Pure: no I/O, no allocation, no state; the input need not be
 *	NUL-terminated.  PROXY_NEED_MORE only while every octet so far can
 *	still begin a valid header, so a client that sends SMTP instead is
 *	refused at once.
 */
#ifndef PROXY_PROTO_H
#define PROXY_PROTO_H

#include <stddef.h>
#include <sys/socket.h>

#define PROXY_V1_MAX 107		/* "PROXY ..." up to its CRLF */
#define PROXY_V2_MAX (16 + 2048)	/* header + addresses + TLVs we take */

enum proxy_status {
	PROXY_NEED_MORE = 0,
	PROXY_OK,			/* src/dst are the proxied endpoints */
	PROXY_LOCAL,			/* no addresses: the connection's own */
	PROXY_BAD,
};

struct proxy_header {
	int version;			/* 1 or 2, once known */
	size_t len;			/* octets of the header (OK, LOCAL) */
	struct sockaddr_storage src, dst;	/* PROXY_OK only */
	socklen_t addrlen;
	const char *why;		/* PROXY_BAD: a static text */
};

enum proxy_status proxy_parse(const unsigned char *in, size_t len,
    struct proxy_header *h);

#endif
