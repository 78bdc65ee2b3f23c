/*
 * strbuf.h - text appended piece by piece into a caller's fixed buffer
 *
 *	char line[512];
 *	struct strbuf b;
 *
 *	sb_init(&b, line, sizeof(line));
 *	SB_LIT(&b, "id ");
 *	sb_hex(&b, id, 8);
 *	sb_puts(&b, name);
 *	if (!sb_ok(&b))
 *		return -1;		// did not fit: nothing half-written used
 *
 * Why: snprintf() parses its format on every call, and on the per-message
 * path (the Received: field, the log line, the transaction id) that was a
 * third of the sink chain's instructions (issue 16).  A piece that does
 * not fit sets `over` and every later piece is dropped, so a caller checks
 * once at the end; the buffer never overruns and is not NUL-terminated
 * unless sb_cstr() is asked to.  Header-only (static inline): no module,
 * no state.
 */
#ifndef STRBUF_H
#define STRBUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct strbuf {
	char *p;
	size_t len, cap;
	int over;			/* something did not fit */
};

static inline void
sb_init(struct strbuf *b, char *p, size_t cap)
{
	b->p = p;
	b->len = 0;
	b->cap = cap;
	b->over = 0;
}

static inline void
sb_putn(struct strbuf *b, const char *s, size_t n)
{
	if (b->over || n > b->cap - b->len) {
		b->over = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static inline void
sb_puts(struct strbuf *b, const char *s)
{
	sb_putn(b, s, strlen(s));
}

/* SB_LIT - a string literal, its length known at compile time */
#define SB_LIT(b, lit) sb_putn((b), "" lit, sizeof(lit) - 1)

static inline void
sb_putc(struct strbuf *b, char c)
{
	if (b->over || b->len == b->cap) {
		b->over = 1;
		return;
	}
	b->p[b->len++] = c;
}

/* sb_u64 - v in decimal */
static inline void
sb_u64(struct strbuf *b, uint64_t v)
{
	char t[20];
	size_t i = sizeof(t);

	do
		t[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	sb_putn(b, t + i, sizeof(t) - i);
}

/* sb_hex - the low 4 * width bits of v in upper-case hex, zero-padded
 * (width at most 16): what "%0*llX" gives for a value that fits */
static inline void
sb_hex(struct strbuf *b, uint64_t v, unsigned width)
{
	static const char digits[] = "0123456789ABCDEF";
	char t[16];
	unsigned i;

	if (width > 16)
		width = 16;
	for (i = width; i-- > 0; v >>= 4)
		t[i] = digits[v & 15];
	sb_putn(b, t, width);
}

/* sb_ok - everything fitted */
static inline int
sb_ok(const struct strbuf *b)
{
	return !b->over;
}

/* sb_cstr - NUL-terminate (one more octet must fit); the text or NULL */
static inline const char *
sb_cstr(struct strbuf *b)
{
	sb_putc(b, '\0');
	if (b->over)
		return NULL;
	b->len--;
	return b->p;
}

#endif
