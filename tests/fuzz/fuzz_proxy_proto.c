/*
 * fuzz_proxy_proto.c - libFuzzer target for the PROXY protocol parser
 *
 * Every prefix of the input is parsed: the status must be one of the four,
 * NEED_MORE never after BAD or OK for a shorter prefix (the parser decides
 * as soon as it can and then sticks to it: a longer input gives the same
 * answer and the same header length), a header length within the input
 * and the limits, a reason for every BAD, and for OK an address of the
 * family announced with its length.
 *
 *	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *	    -Iserver server/proxy_proto.c tests/fuzz/fuzz_proxy_proto.c -o fuzz_proxy
 *	./fuzz_proxy tests/fuzz/corpus/fuzz_proxy_proto
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_proto.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_header h, first;
	enum proxy_status st, decided = PROXY_NEED_MORE;
	size_t n, max = size < PROXY_V2_MAX + 64 ? size : PROXY_V2_MAX + 64;

	for (n = 0; n <= max; n++) {
		/* an exactly sized copy, so ASan sees a read past the end */
		uint8_t *copy = malloc(n > 0 ? n : 1);

		CHECK(copy != NULL);
		memcpy(copy, data, n);
		st = proxy_parse(copy, n, &h);
		free(copy);
		CHECK(st == PROXY_NEED_MORE || st == PROXY_OK || st == PROXY_LOCAL ||
		    st == PROXY_BAD);
		if (decided != PROXY_NEED_MORE) {
			CHECK(st == decided);
			if (st != PROXY_BAD)
				CHECK(h.len == first.len);
			continue;
		}
		if (st == PROXY_NEED_MORE)
			continue;
		decided = st;
		first = h;
		if (st == PROXY_BAD) {
			CHECK(h.why != NULL && h.why[0] != '\0');
			continue;
		}
		CHECK(h.len > 0 && h.len <= n);
		CHECK(h.version == 1 ? h.len <= PROXY_V1_MAX : h.len <= PROXY_V2_MAX);
		if (st == PROXY_OK) {
			CHECK(h.src.ss_family == h.dst.ss_family);
			CHECK((h.src.ss_family == AF_INET &&
			    h.addrlen == sizeof(struct sockaddr_in)) ||
			    (h.src.ss_family == AF_INET6 &&
			    h.addrlen == sizeof(struct sockaddr_in6)));
		}
	}
	return 0;
}
