/*
 * auth_throttle.c - failed AUTH attempts per client address, across
 * connections (see auth_throttle.h)
 *
 * Owns only its fixed table; it never logs, replies or starts timers.
 * A lookup scans the table (1024 records of 40 octets: a few
 * microseconds, once per AUTH attempt), which keeps eviction simple and
 * the memory bound exact.
 */
#include <limits.h>
#include <string.h>

#include "auth_throttle.h"

/* key_of - the table key: IPv4 (::ffff:a.b.c.d) whole, IPv6 by its /64 */
static void
key_of(const uint8_t addr[16], uint8_t key[16])
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };

	memcpy(key, addr, 16);
	if (memcmp(addr, v4mapped, sizeof(v4mapped)) != 0)
		memset(key + 8, 0, 8);
}

/* expired - a record that no longer holds anything back */
static int
expired(const struct auth_throttle_entry *e, double now)
{
	return now - e->last > AUTH_THROTTLE_TTL && e->next <= now;
}

/* find - the live record of addr, or NULL */
static struct auth_throttle_entry *
find(struct auth_throttle *t, const uint8_t addr[16], double now)
{
	uint8_t key[16];
	size_t i;

	key_of(addr, key);
	for (i = 0; i < t->len; i++)
		if (memcmp(t->e[i].key, key, 16) == 0)
			return expired(&t->e[i], now) ? NULL : &t->e[i];
	return NULL;
}

/* make - a fresh record for addr: its old one, a free or expired slot,
 * or else the one with the oldest last failure */
static struct auth_throttle_entry *
make(struct auth_throttle *t, const uint8_t addr[16], double now)
{
	struct auth_throttle_entry *e = NULL;
	uint8_t key[16];
	size_t i;

	key_of(addr, key);
	for (i = 0; i < t->len; i++)
		if (memcmp(t->e[i].key, key, 16) == 0) {
			e = &t->e[i];
			break;
		}
	if (e == NULL && t->len < AUTH_THROTTLE_CAP)
		e = &t->e[t->len++];
	for (i = 0; e == NULL && i < t->len; i++)
		if (expired(&t->e[i], now))
			e = &t->e[i];
	if (e == NULL) {
		e = &t->e[0];
		for (i = 1; i < t->len; i++)
			if (t->e[i].last < e->last)
				e = &t->e[i];
	}
	memcpy(e->key, key, 16);
	e->last = now;
	e->next = now;
	e->fails = 0;
	return e;
}

double
auth_throttle_delay(unsigned fails)
{
	if (fails == 0)
		return 0.0;
	if (fails == 1)
		return 0.5;
	if (fails < 10)
		return 1.0;
	if (fails < 20)
		return 2.0;
	if (fails < 30)
		return 4.0;
	return 8.0;
}

double
auth_throttle_wait(struct auth_throttle *t, const uint8_t addr[16], double now)
{
	struct auth_throttle_entry *e = find(t, addr, now);
	double slot;

	if (e == NULL || e->fails == 0)
		return 0.0;
	slot = e->next > now ? e->next : now;
	e->next = slot + auth_throttle_delay(e->fails);
	return slot - now;
}

double
auth_throttle_fail(struct auth_throttle *t, const uint8_t addr[16],
    double now, unsigned *fails_r, int *rose_r)
{
	struct auth_throttle_entry *e = find(t, addr, now);
	double before, delay;

	if (e == NULL)
		e = make(t, addr, now);
	before = auth_throttle_delay(e->fails);
	if (e->fails < UINT_MAX)
		e->fails++;
	delay = auth_throttle_delay(e->fails);
	e->last = now;
	if (e->next < now + delay)
		e->next = now + delay;
	*fails_r = e->fails;
	*rose_r = delay > before && delay >= 1.0;
	return delay;
}
