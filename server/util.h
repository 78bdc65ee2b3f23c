/*
 * util.h - small shared helpers: a u64-keyed hash map, a per-address
 * counter, socket address text, checked number parsing, clocks.
 */
#ifndef UTIL_H
#define UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* u64map - open-addressing map from a non-zero u64 key to a pointer. */
struct u64map {
	struct u64map_slot { uint64_t key; void *value; } *slots;
	size_t cap, len;		/* cap is a power of two or 0 */
};
int u64map_put(struct u64map *m, uint64_t key, void *value);
void *u64map_get(const struct u64map *m, uint64_t key);
void u64map_del(struct u64map *m, uint64_t key);
void u64map_free(struct u64map *m);

/* addrcount - connection counts per peer address (IPv4-mapped form). */
struct addrcount {
	struct addrcount_slot { uint8_t addr[16]; uint32_t count; } *slots;
	size_t cap, len;
};
/* addrcount_add - add delta (+1/-1) and return the new count, or -1 (OOM) */
long addrcount_add(struct addrcount *c, const uint8_t addr[16], int delta);
void addrcount_free(struct addrcount *c);

/* sockaddr_key - the 16-octet key of an address (v4 as ::ffff:a.b.c.d) */
void sockaddr_key(const struct sockaddr *sa, uint8_t key[16]);
/* sockaddr_text - numeric host and port; host without brackets */
int sockaddr_text(const struct sockaddr *sa, char *host, size_t hostsize,
    unsigned *port);
/* parse_hostport - "HOST:PORT" or "[V6]:PORT" into a sockaddr; -1 bad */
int parse_hostport(const char *text, struct sockaddr_storage *ss,
    socklen_t *len_r, const char **error_r);

/* parse_ulong - whole decimal in [min,max]; -1 on junk or range */
int parse_ulong(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out);
/* parse_seconds - positive decimal seconds such as "30" or "0.5" */
int parse_seconds(const char *s, double *out);

/*
 * cidr_list - networks in the 16-octet key form of sockaddr_key() (an
 * IPv4 network a.b.c.d/p is ::ffff:a.b.c.d/96+p), for --proxy-trusted.
 * Text: items separated by ';', ',' or blanks, each ADDRESS or
 * ADDRESS/PREFIX.
 */
#define CIDR_LIST_MAX 64

struct cidr_list {
	struct cidr { uint8_t key[16]; unsigned bits; } v[CIDR_LIST_MAX];
	size_t n;
};

/* cidr_list_parse - text into *out; 0, or -1 with the bad item in why */
int cidr_list_parse(const char *text, struct cidr_list *out, char *why,
    size_t whysize);
/* cidr_list_match - is the address key in one of the networks? */
int cidr_list_match(const struct cidr_list *l, const uint8_t key[16]);

/*
 * spares - buffers of one size kept for reuse by the objects of one loop,
 * so that a keep-alive client costs no malloc and free of big buffers per
 * message (issue 16).  Take one (NULL: none spare, malloc it), give it
 * back (kept, or freed when SPARES_MAX are kept), free them all at the end.
 */
#define SPARES_MAX 32

struct spares {
	void *v[SPARES_MAX];
	size_t n;
};

void *spares_take(struct spares *sp);	/* sp NULL: NULL */
void spares_give(struct spares *sp, void *buf);	/* sp NULL: free */
void spares_free(struct spares *sp);

/* monotonic_now - seconds from a monotonic clock */
double monotonic_now(void);

#endif
