/*
 * util.c - small shared helpers
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

/* mix64 - a cheap, good-enough hash for ids and addresses */
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

/* u64map_grow - double the table (keeps the load factor under 1/2) */
static int
u64map_grow(struct u64map *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 64, i;
	struct u64map_slot *ns = calloc(ncap, sizeof(*ns));

	if (ns == NULL)
		return -1;
	for (i = 0; i < m->cap; i++) {
		if (m->slots[i].key == 0)
			continue;
		size_t j = mix64(m->slots[i].key) & (ncap - 1);
		while (ns[j].key != 0)
			j = (j + 1) & (ncap - 1);
		ns[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = ns;
	m->cap = ncap;
	return 0;
}

/* u64map_put - insert or replace; 0 or -1 (no memory) */
int
u64map_put(struct u64map *m, uint64_t key, void *value)
{
	size_t j;

	if ((m->len + 1) * 2 > m->cap && u64map_grow(m) < 0)
		return -1;
	j = mix64(key) & (m->cap - 1);
	while (m->slots[j].key != 0 && m->slots[j].key != key)
		j = (j + 1) & (m->cap - 1);
	if (m->slots[j].key == 0)
		m->len++;
	m->slots[j].key = key;
	m->slots[j].value = value;
	return 0;
}

/* u64map_get - the value, or NULL */
void *
u64map_get(const struct u64map *m, uint64_t key)
{
	size_t j;

	if (m->cap == 0 || key == 0)
		return NULL;
	j = mix64(key) & (m->cap - 1);
	while (m->slots[j].key != 0) {
		if (m->slots[j].key == key)
			return m->slots[j].value;
		j = (j + 1) & (m->cap - 1);
	}
	return NULL;
}

/* u64map_del - remove with backward-shift deletion (no tombstones) */
void
u64map_del(struct u64map *m, uint64_t key)
{
	size_t j, k, mask = m->cap - 1;

	if (m->cap == 0 || key == 0)
		return;
	j = mix64(key) & mask;
	while (m->slots[j].key != key) {
		if (m->slots[j].key == 0)
			return;
		j = (j + 1) & mask;
	}
	m->slots[j].key = 0;
	m->len--;
	for (k = (j + 1) & mask; m->slots[k].key != 0; k = (k + 1) & mask) {
		size_t home = mix64(m->slots[k].key) & mask;
		/* Move k back into the hole at j unless its home lies in (j, k]. */
		if ((k > j && (home <= j || home > k)) ||
		    (k < j && (home <= j && home > k))) {
			m->slots[j] = m->slots[k];
			m->slots[k].key = 0;
			j = k;
		}
	}
}

void
u64map_free(struct u64map *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->len = 0;
}

/* addr_hash - hash of a 16-octet address key */
static size_t
addr_hash(const uint8_t a[16])
{
	uint64_t x, y;

	memcpy(&x, a, 8);
	memcpy(&y, a + 8, 8);
	return (size_t)mix64(x ^ mix64(y));
}

/* addrcount_rehash - rebuild at a new capacity, dropping zero counts */
static int
addrcount_rehash(struct addrcount *c, size_t ncap)
{
	struct addrcount_slot *ns = calloc(ncap, sizeof(*ns));
	size_t i, n = 0;

	if (ns == NULL)
		return -1;
	for (i = 0; i < c->cap; i++) {
		if (c->slots[i].count == 0)
			continue;
		size_t j = addr_hash(c->slots[i].addr) & (ncap - 1);
		while (ns[j].count != 0)
			j = (j + 1) & (ncap - 1);
		ns[j] = c->slots[i];
		n++;
	}
	free(c->slots);
	c->slots = ns;
	c->cap = ncap;
	c->len = n;
	return 0;
}

/*
 * addrcount_add - adjust the count of an address.  A slot whose count
 * drops to zero stays as a tombstone until the next rehash, which keeps
 * probing simple; len counts used slots, tombstones included.
 */
long
addrcount_add(struct addrcount *c, const uint8_t addr[16], int delta)
{
	size_t j, tomb = (size_t)-1;

	if ((c->len + 1) * 2 > c->cap) {
		/* Size by live entries, so churn of many addresses does not
		 * grow the table for ever. */
		size_t live = 0, ncap = 64, i;

		for (i = 0; i < c->cap; i++)
			live += c->slots[i].count != 0;
		while ((live + 1) * 4 > ncap)
			ncap *= 2;
		if (addrcount_rehash(c, ncap) < 0)
			return -1;
	}
	j = addr_hash(addr) & (c->cap - 1);
	for (;;) {
		struct addrcount_slot *s = &c->slots[j];
		if (s->count == 0 && memcmp(s->addr, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16) == 0)
			break;
		if (memcmp(s->addr, addr, 16) == 0) {
			if (s->count == 0 && delta < 0)
				return 0;
			s->count = (uint32_t)((long)s->count + delta);
			return (long)s->count;
		}
		if (s->count == 0 && tomb == (size_t)-1)
			tomb = j;
		j = (j + 1) & (c->cap - 1);
	}
	if (delta <= 0)
		return 0;
	if (tomb != (size_t)-1)
		j = tomb;
	else
		c->len++;
	memcpy(c->slots[j].addr, addr, 16);
	c->slots[j].count = (uint32_t)delta;
	return delta;
}

void
addrcount_free(struct addrcount *c)
{
	free(c->slots);
	c->slots = NULL;
	c->cap = c->len = 0;
}

/* sockaddr_key - 16-octet key; IPv4 in its IPv4-mapped IPv6 form */
void
sockaddr_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &in->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(key, &in6->sin6_addr, 16);
	}
	/* :: is the table's empty marker; no TCP peer has it. */
}

/* sockaddr_text - numeric host and port of a socket address */
int
sockaddr_text(const struct sockaddr *sa, char *host, size_t hostsize,
    unsigned *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		if (inet_ntop(AF_INET, &in->sin_addr, host, (socklen_t)hostsize) == NULL)
			return -1;
		*port = ntohs(in->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (inet_ntop(AF_INET6, &in6->sin6_addr, host, (socklen_t)hostsize) == NULL)
			return -1;
		*port = ntohs(in6->sin6_port);
		return 0;
	}
	snprintf(host, hostsize, "unknown");
	*port = 0;
	return -1;
}

/* parse_hostport - numeric HOST:PORT, [V6]:PORT; "localhost" allowed */
int
parse_hostport(const char *text, struct sockaddr_storage *ss, socklen_t *len_r,
    const char **error_r)
{
	char host[256];
	const char *colon, *hs;
	size_t hl;
	unsigned long long port;

	memset(ss, 0, sizeof(*ss));
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL || close[1] != ':') {
			*error_r = "expected [IPV6]:PORT";
			return -1;
		}
		hs = text + 1;
		hl = (size_t)(close - hs);
		colon = close + 1;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL) {
			*error_r = "expected HOST:PORT";
			return -1;
		}
		hs = text;
		hl = (size_t)(colon - text);
	}
	if (hl == 0 || hl >= sizeof(host)) {
		*error_r = "missing or overlong host";
		return -1;
	}
	memcpy(host, hs, hl);
	host[hl] = '\0';
	if (parse_ulong(colon + 1, 1, 65535, &port) < 0) {
		*error_r = "port must be 1-65535";
		return -1;
	}
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (strcmp(host, "*") == 0)
		strcpy(host, "0.0.0.0");
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len_r = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len_r = sizeof(*in6);
		return 0;
	}
	*error_r = "host must be a numeric IPv4 or IPv6 address";
	return -1;
}

/* parse_ulong - a whole decimal number in [min, max] */
int
parse_ulong(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out)
{
	unsigned long long v = 0;
	const char *p = s;

	if (*p == '\0')
		return -1;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		/* v * 10 + digit <= ULLONG_MAX, exactly (not 9 short of it) */
		if (v > (~0ULL - (unsigned)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/*
 * parse_seconds - a positive decimal number of seconds, at most a day:
 * digits with an optional fraction ("2", "2.5", "0.25").  No sign, blank,
 * exponent, hexadecimal, inf or nan, which strtod() would all take.
 */
int
parse_seconds(const char *s, double *out)
{
	double v = 0, scale = 1;
	const char *p = s;
	int digits = 0;

	for (; *p >= '0' && *p <= '9'; p++, digits++)
		if ((v = v * 10 + (*p - '0')) > 86400)
			return -1;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			v += (*p - '0') * (scale /= 10);
	}
	if (digits == 0 || *p != '\0' || !(v > 0) || v > 86400)
		return -1;
	*out = v;
	return 0;
}

/* cidr_one - "ADDRESS[/PREFIX]" (len octets) into c; 0 or -1 */
static int
cidr_one(const char *item, size_t len, struct cidr *c)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash;
	unsigned long bits;
	int v4;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, item, len);
	buf[len] = '\0';
	if ((slash = strchr(buf, '/')) != NULL)
		*slash = '\0';
	memset(c->key, 0, sizeof(c->key));
	v4 = inet_pton(AF_INET, buf, c->key + 12) == 1;
	if (v4)
		c->key[10] = c->key[11] = 0xff;
	else if (inet_pton(AF_INET6, buf, c->key) != 1)
		return -1;
	bits = v4 ? 32 : 128;
	if (slash != NULL) {
		char *end;

		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		bits = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || bits > (v4 ? 32u : 128u))
			return -1;
	}
	c->bits = (unsigned)bits + (v4 ? 96 : 0);
	return 0;
}

int
cidr_list_parse(const char *text, struct cidr_list *out, char *why,
    size_t whysize)
{
	const char *p = text, *end;

	out->n = 0;
	for (;;) {
		p += strspn(p, ";, \t");
		if (*p == '\0')
			return 0;
		end = p + strcspn(p, ";, \t");
		if (out->n == CIDR_LIST_MAX) {
			if (why != NULL)
				snprintf(why, whysize, "more than %d networks",
				    CIDR_LIST_MAX);
			return -1;
		}
		if (cidr_one(p, (size_t)(end - p), &out->v[out->n]) < 0) {
			if (why != NULL)
				snprintf(why, whysize, "'%.*s' is not an address or "
				    "network", (int)(end - p > 60 ? 60 : end - p), p);
			return -1;
		}
		out->n++;
		p = end;
	}
}

int
cidr_list_match(const struct cidr_list *l, const uint8_t key[16])
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		unsigned bits = l->v[i].bits, full = bits / 8, rest = bits % 8;

		if (memcmp(l->v[i].key, key, full) != 0)
			continue;
		if (rest == 0 || ((l->v[i].key[full] ^ key[full]) &
		    (0xff << (8 - rest)) & 0xff) == 0)
			return 1;
	}
	return 0;
}

void *
spares_take(struct spares *sp)
{
	return sp != NULL && sp->n > 0 ? sp->v[--sp->n] : NULL;
}

void
spares_give(struct spares *sp, void *buf)
{
	if (buf == NULL)
		return;
	if (sp != NULL && sp->n < SPARES_MAX)
		sp->v[sp->n++] = buf;
	else
		free(buf);
}

void
spares_free(struct spares *sp)
{
	while (sp->n > 0)
		free(sp->v[--sp->n]);
}

/* monotonic_now - seconds on CLOCK_MONOTONIC */
double
monotonic_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
