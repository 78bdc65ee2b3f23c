/*
 * lists.c - argument lists, domain patterns and values (see sh_helpers.h)
 *
 * Everything works on (pointer, length) through unsigned char, with ASCII
 * case folding done by hand: the ctype functions depend on the locale,
 * and DNS names and SMTP keywords are case-insensitive in ASCII only.
 */
#include <string.h>

#include "sh_helpers.h"

#define DNS_LABEL_MAX	63
#define DNS_NAME_MAX	253	/* text form, without the trailing dot */

/* lower - ASCII tolower */
static unsigned char
lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* ci_equal - ASCII case-insensitive equality of n octets */
static int
ci_equal(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Where the cursor stands after a separator that ends the list ("a;"):
 * one empty item is still to come. */
static const char list_trailing_item[1] = "";

const char *
sh_list_next(const char **cursor, char sep, size_t *len)
{
	const char *p = *cursor, *start, *end;

	if (p == NULL)
		return NULL;
	if (p == list_trailing_item) {
		*cursor = NULL;
		*len = 0;
		return p;
	}
	if (*p == '\0')
		return NULL;
	start = p;
	while (*p != '\0' && *p != sep)
		p++;
	end = p;
	if (*p == sep && *++p == '\0')
		p = list_trailing_item;
	while (start < end && is_blank(*start))
		start++;
	while (end > start && is_blank(end[-1]))
		end--;
	*cursor = p;
	*len = (size_t)(end - start);
	return start;
}

int
sh_list_check(const char *list, char sep)
{
	const char *cur = list;
	size_t len;

	while (sh_list_next(&cur, sep, &len) != NULL)
		if (len == 0)
			return -1;
	return 0;
}

int
sh_domain_match(const char *pattern, size_t plen, const char *domain, size_t dlen)
{
	const char *suffix = NULL;
	size_t slen = 0;

	if (pattern == NULL || domain == NULL)
		return 0;
	if (plen > 0 && pattern[plen - 1] == '.')
		plen--;
	if (dlen > 0 && domain[dlen - 1] == '.')
		dlen--;
	if (plen == 0 || dlen == 0)
		return 0;
	if (plen >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		suffix = pattern + 1;
		slen = plen - 1;
	} else if (pattern[0] == '.') {
		suffix = pattern;
		slen = plen;
	}
	if (suffix != NULL) {
		/* ".example.com": at least one octet must come before it. */
		if (slen < 2 || dlen <= slen)
			return 0;
		return ci_equal(domain + dlen - slen, suffix, slen);
	}
	return plen == dlen && ci_equal(pattern, domain, plen);
}

int
sh_domain_check(const char *s, size_t len, unsigned flags)
{
	const unsigned char *d = (const unsigned char *)s;
	size_t i = 0, start, labels = 0;
	int ascii, digits;

	if (s == NULL)
		return -1;
	if (len > 0 && d[len - 1] == '.')
		len--;
	if (flags & SH_DOMAIN_WILDCARD) {
		if (len >= 2 && d[0] == '*' && d[1] == '.')
			i = 2;
		else if (len >= 1 && d[0] == '.')
			i = 1;
	}
	if (i >= len || len - i > DNS_NAME_MAX)
		return -1;
	for (;;) {
		start = i;
		ascii = 1;
		digits = 1;
		while (i < len && d[i] != '.') {
			unsigned char c = d[i];

			if (c >= 0x80)
				ascii = 0;
			else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '_'))
				return -1;
			if (c < '0' || c > '9')
				digits = 0;
			i++;
		}
		if (i == start || d[start] == '-' || d[i - 1] == '-')
			return -1;
		if (ascii && i - start > DNS_LABEL_MAX)
			return -1;
		labels++;
		if (i == len)
			break;
		i++;		/* the dot: a label must follow */
		if (i == len)
			return -1;
	}
	if (flags & SH_DOMAIN_FQDN) {
		/* RFC 3696 §2: a top-level domain is never all-numeric. */
		if (labels < 2 || digits)
			return -1;
	}
	return 0;
}

int
sh_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (s == NULL || s[0] == '\0')
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		unsigned dgt;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		dgt = (unsigned)(s[i] - '0');
		if (dgt > max || v > (max - dgt) / 10)
			return -1;
		v = v * 10 + dgt;
	}
	*out = v;
	return 0;
}

int
sh_parse_size(const char *s, uint64_t *out)
{
	char digits[24];
	size_t n;
	unsigned shift = 0;
	uint64_t v;

	if (s == NULL || (n = strlen(s)) == 0)
		return -1;
	switch (s[n - 1]) {
	case 'k': case 'K': shift = 10; n--; break;
	case 'm': case 'M': shift = 20; n--; break;
	case 'g': case 'G': shift = 30; n--; break;
	default: break;
	}
	if (n == 0 || n >= sizeof(digits))
		return -1;
	memcpy(digits, s, n);
	digits[n] = '\0';
	if (sh_parse_uint(digits, UINT64_MAX >> shift, &v) < 0)
		return -1;
	*out = v << shift;
	return 0;
}

int
sh_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i, n;

	if (s == NULL)
		return -1;
	n = strlen(s);
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (n == strlen(yes[i]) && ci_equal(s, yes[i], n)) {
			*out = 1;
			return 0;
		}
		if (n == strlen(no[i]) && ci_equal(s, no[i], n)) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* ---- text (sh_helpers.h, "text") ---- */

int
sh_ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int
sh_ascii_caseeq(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && (alen == 0 || ci_equal(a, b, alen));
}

char *
sh_ascii_lower_copy(char *dst, const char *src, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		dst[i] = (char)lower((unsigned char)src[i]);
	dst[n] = '\0';
	return dst;
}

int
sh_parse_seconds(const char *s, double max, double *out)
{
	double v = 0, scale = 1;
	const char *p = s;

	/* Digits first, and digits after a point: "0.5", not ".5" or "5.". */
	if (s == NULL || *p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++)
		if ((v = v * 10 + (*p - '0')) > max)
			return -1;
	if (*p == '.') {
		if (p[1] < '0' || p[1] > '9')
			return -1;
		for (p++; *p >= '0' && *p <= '9'; p++)
			v += (*p - '0') * (scale /= 10);
	}
	if (*p != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}
