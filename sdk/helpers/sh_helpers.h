/*
 * sh_helpers.h - parsing and matching helpers for smtphook plugins
 *
 * SYNOPSIS
 *	#include <sh_helpers.h>		(installed: include/smtphook/)
 *
 *	const char *cur = "192.0.2.0/24; 2001:db8::/32", *item;
 *	size_t len;
 *	sh_cidr net, peer;
 *
 *	while ((item = sh_list_next(&cur, ';', &len)) != NULL) {
 *		if (sh_cidr_parse(item, len, &net) < 0) {
 *			sh_error(ctx, "bad CIDR '%.*s'", (int)len, item);
 *			return -1;
 *		}
 *		... keep net ...
 *	}
 *
 *	const char *pa = sh_session(ctx)->peer_addr;
 *	if (sh_ip_parse(pa, strlen(pa), &peer) == 0 && sh_cidr_match(&net, &peer))
 *		...
 *
 *	sh_domain_match("*.example.com", 13, "mx.Example.COM", 14)	-> 1
 *
 * DESCRIPTION
 *	Small, dependency-free helpers that the bundled plugins share and
 *	that any plugin may use: `;`-separated argument lists, IPv4/IPv6
 *	networks in CIDR notation, domain patterns, numbers with size
 *	suffixes and yes/no flags.  The build compiles the .c files of
 *	sdk/helpers/ into a static, position-independent library with
 *	hidden symbols and links it into every plugin (each plugin gets its
 *	own private copy, so two plugins never share or clash on these
 *	symbols), the test harness and the unit tests.  Installed, they
 *	are libsmtphook-helpers.a (what pkg-config --libs smtphook and
 *	smtphook::sdk link) and libsmtphook-helpers.so.1, the header in
 *	include/smtphook/ beside smtphook.h (docs/SDK.md).
 *
 *	Nothing here allocates, touches global state, or depends on the
 *	locale: case-insensitivity is ASCII only (RFC 5321 §2.4).  Functions
 *	that take (pointer, length) do not need NUL-terminated input and
 *	never read past the length.  All are safe to call from any thread,
 *	including the work function of sh_pool_submit().
 *
 * STABILITY
 *	The names and signatures below are kept: plugins outside this
 *	repository build against them.  New helpers are only added.
 */
#ifndef SH_HELPERS_H
#define SH_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- lists ---------------------------------------------------------- */

/*
 * sh_list_next - the next item of a sep-separated list
 *
 * *cursor points into a NUL-terminated list; start with the whole string.
 * Returns the start of the next item and its length in *len, with
 * leading and trailing blanks (space, tab) removed, or NULL when the list
 * is used up.  An empty string is a list of no items.  Empty items
 * ("a;;b", " ; ", a leading or trailing ";") are returned with *len 0,
 * never skipped: refuse them, since such a list is a typo the user should
 * hear about.  The item is NOT NUL-terminated: it points into the list.
 * *cursor is advanced past the item and its separator.
 */
const char *sh_list_next(const char **cursor, char sep, size_t *len);

/*
 * sh_list_check - 0 when no item of the sep-separated list is empty (as
 * sh_list_next() sees them; an empty string is fine), -1 otherwise.
 */
int sh_list_check(const char *list, char sep);

/* ---- networks ------------------------------------------------------- */

#define SH_CIDR_V4	4
#define SH_CIDR_V6	6

/*
 * sh_cidr - an IPv4 or IPv6 network (an address is a network of full
 * length: /32 or /128).  18 bytes, no pointers: arrays of them can be
 * copied and compared with memcmp.
 *	family	SH_CIDR_V4 or SH_CIDR_V6
 *	prefix	leading significant bits: 0..32 or 0..128
 *	addr	network byte order; IPv4 uses addr[0..3]; every bit past
 *		prefix (and addr[4..15] for IPv4) is zero
 *
 * IPv4-mapped IPv6 (::ffff:a.b.c.d, RFC 4291 §2.5.5.2) is always stored
 * as IPv4: an address ::ffff:192.0.2.7 becomes 192.0.2.7/32, a network
 * ::ffff:192.0.2.0/120 becomes 192.0.2.0/24.  So a dual-stack listener's
 * IPv4 clients match IPv4 rules.  (A v6 network shorter than /96, such as
 * ::/0, stays IPv6 and does not match IPv4 or IPv4-mapped addresses.)
 */
typedef struct sh_cidr {
	uint8_t family;
	uint8_t prefix;
	uint8_t addr[16];
} sh_cidr;

/* Room for sh_cidr_format(): an IPv6 text form, '/', 3 digits, NUL. */
#define SH_CIDR_STRLEN	52

/*
 * sh_cidr_parse - "ADDRESS" or "ADDRESS/PREFIX" into *out
 *
 * ADDRESS is numeric IPv4 (dotted quad, no leading zeros) or IPv6 (any
 * RFC 4291 text form); a bare address is /32 or /128.  PREFIX is 0..32
 * or 0..128 in decimal.  No blanks, brackets or zone ids ("%eth0").
 * Host bits set after the prefix ("192.0.2.7/24") are cleared.
 * Returns 0, 1 when host bits had to be cleared (worth a warning: the
 * author probably meant another network), or -1 on a syntax error (*out
 * is then unchanged).
 */
int sh_cidr_parse(const char *s, size_t len, sh_cidr *out);

/*
 * sh_ip_parse - one numeric IPv4 or IPv6 address into *out (/32, /128)
 *
 * As sh_cidr_parse without a prefix, but lenient the way peer addresses
 * come: a trailing IPv6 zone id ("fe80::1%eth0") is ignored.  For the
 * peer of a session: sh_ip_parse(info->peer_addr, strlen(...), &ip).
 * Returns 0, or -1 when s is not an address.
 */
int sh_ip_parse(const char *s, size_t len, sh_cidr *out);

/*
 * sh_cidr_match - 1 when address ip lies inside network net, else 0
 *
 * Only the first net->prefix bits of ip are compared (ip may itself be a
 * network: then its base address is tested).  Different families never
 * match (IPv4-mapped addresses were made IPv4 by the parsers).  A /0
 * network matches every address of its family.  Constant time in the
 * prefix length; no allocation.
 */
int sh_cidr_match(const sh_cidr *net, const sh_cidr *ip);

/*
 * sh_cidr_format - "192.0.2.0/24", "2001:db8::/32" into buf (size
 * SH_CIDR_STRLEN is always enough); a full-length network is written
 * without "/32" or "/128".  Returns buf ("?" when size is too small).
 */
char *sh_cidr_format(const sh_cidr *c, char *buf, size_t size);

/* ---- domains -------------------------------------------------------- */

/*
 * sh_domain_match - does domain match pattern?  1 or 0
 *
 * Patterns:
 *	example.com	exactly example.com
 *	*.example.com	any sub-domain of example.com, at any depth
 *	.example.com	the same (Postfix style)
 * A sub-domain pattern does NOT match example.com itself (as Postfix with
 * parent_domain_matches_subdomains off, and as DNS wildcards): list both
 * when both are meant.  Comparison is ASCII case-insensitive; one
 * trailing dot on either side is ignored ("example.com." is absolute
 * form).  An empty pattern or domain matches nothing.  No other
 * wildcards: '*' anywhere else is an ordinary character.
 */
int sh_domain_match(const char *pattern, size_t plen, const char *domain,
    size_t dlen);

/* Flags of sh_domain_check(). */
#define SH_DOMAIN_WILDCARD	0x1	/* allow a leading "*." or "." */
#define SH_DOMAIN_FQDN		0x2	/* at least two labels, and the last
					 * one not all digits (RFC 3696 §2):
					 * "localhost", "192.0.2.1" fail */

/*
 * sh_domain_check - 0 when s/len is a syntactically valid domain name,
 * else -1
 *
 * Labels of letters, digits, '-' (not first or last) and, leniently, '_'
 * (common in real host names) or octets >= 0x80 (UTF-8 U-labels, not
 * validated); ASCII labels at most 63 octets, the name at most 253 (one
 * trailing dot allowed and not counted).  flags: SH_DOMAIN_WILDCARD,
 * SH_DOMAIN_FQDN (the FQDN test applies to the part after a wildcard).
 */
int sh_domain_check(const char *s, size_t len, unsigned flags);

/* ---- values --------------------------------------------------------- */

/*
 * sh_parse_size - a byte count: decimal digits, optionally followed by
 * one suffix K, M or G (either case) meaning KiB, MiB, GiB (1024-based,
 * as Exim's and Postfix's documentation use them).  No sign, blanks or
 * fractions.  Returns 0 and *out, or -1 (empty, bad syntax, > 2^64-1).
 */
int sh_parse_size(const char *s, uint64_t *out);

/*
 * sh_parse_uint - decimal digits only, at most max.  Returns 0 and *out,
 * or -1 (empty, not digits, above max).
 */
int sh_parse_uint(const char *s, uint64_t max, uint64_t *out);

/*
 * sh_parse_bool - yes/no, true/false, on/off, 1/0 (ASCII case-
 * insensitive).  Returns 0 and *out (1 or 0), or -1.
 */
int sh_parse_bool(const char *s, int *out);

/*
 * sh_parse_seconds - a duration in seconds: decimal digits with an
 * optional fraction ("2", "0.5", ".25" is refused: write "0.25"), at
 * most max.  0 is allowed (test for it when a duration must be
 * positive).  No sign, blanks, exponent, inf or nan, which strtod()
 * would all take.  Returns 0 and *out, or -1.
 */
int sh_parse_seconds(const char *s, double max, double *out);

/* ---- text ----------------------------------------------------------- */

/* sh_ascii_lower - c with 'A'..'Z' made lower-case; any other value
 * (including octets >= 0x80 and EOF) is returned unchanged */
int sh_ascii_lower(int c);

/*
 * sh_ascii_caseeq - 1 when a/alen and b/blen are the same octets ignoring
 * ASCII case (header field names, domains, SMTP keywords), else 0.  The
 * locale-free replacement for strncasecmp(); neither string needs a NUL.
 */
int sh_ascii_caseeq(const char *a, size_t alen, const char *b, size_t blen);

/*
 * sh_ascii_lower_copy - the n octets of src, ASCII lower-cased, into dst,
 * followed by a NUL (dst has room for n + 1; it may be src itself).
 * Returns dst.
 */
char *sh_ascii_lower_copy(char *dst, const char *src, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* SH_HELPERS_H */
