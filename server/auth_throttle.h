/*
 * auth_throttle.h - failed AUTH attempts per client address, across
 * connections
 *
 * A fixed-size table (no allocation, no libev, no session): the server
 * keeps one in its top-level struct and smtp_auth.c asks it how long to
 * hold a credentials check and a failure reply.  Times are seconds on
 * any monotonic clock the caller passes in.  IPv4 addresses count one by
 * one; IPv6 addresses by their /64, which one client usually holds whole.
 */
#ifndef AUTH_THROTTLE_H
#define AUTH_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_THROTTLE_CAP 1024		/* addresses remembered */
#define AUTH_THROTTLE_TTL 900.0		/* forgotten 15 min after the last failure */

struct auth_throttle_entry {
	uint8_t key[16];	/* sockaddr_key() form, IPv6 cut to its /64 */
	double last;		/* time of the last failure */
	double next;		/* no check from this address runs before this */
	unsigned fails;		/* failures since the record was (re)made */
};

struct auth_throttle {
	struct auth_throttle_entry e[AUTH_THROTTLE_CAP];
	size_t len;
};

/* auth_throttle_delay - how long the failure reply is held after the
 * address's nth failure: 0.5 s, then 1 s, 2 s from the 10th, 4 s from
 * the 20th, 8 s from the 30th */
double auth_throttle_delay(unsigned fails);

/*
 * auth_throttle_wait - seconds a credentials check from addr must wait
 * before it runs (0: run it now).  An address with failures on record
 * gets one check per auth_throttle_delay() interval however many
 * connections it uses: a wait reserves the next slot.
 */
double auth_throttle_wait(struct auth_throttle *t, const uint8_t addr[16],
    double now);

/*
 * auth_throttle_fail - record a failed check from addr at now.  Returns
 * how long to hold its failure reply; no check from the address runs
 * before that has passed.  *fails_r gets the address's failure count and
 * *rose_r is 1 when this failure raised the delay to 1 s or more (worth
 * one log line), else 0.  When the table is full the record with the
 * oldest last failure makes room.
 */
double auth_throttle_fail(struct auth_throttle *t, const uint8_t addr[16],
    double now, unsigned *fails_r, int *rose_r);

#endif
