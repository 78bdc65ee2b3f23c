/*
 * fuzz_policyd_proto.c - libFuzzer target for the policyd protocol module
 *
 * The input is what a policy server sends back.  pd_reply_end() must
 * stay within the input and PD_REPLY_MAX; each complete reply is parsed
 * and its decision checked (a verdict of the enum, codes of the right
 * class, NUL-terminated texts within their buffers, a PREPEND header
 * with a name before its ':').  The input is also sent through
 * pd_request_build() as attribute values (split at the first 0xff),
 * whose output must be name=value lines without a stray LF, CR or NUL.
 * The module is compiled in directly:
 *
 *	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *	    tests/fuzz/fuzz_policyd_proto.c -o fuzz_policyd_proto
 *	./fuzz_policyd_proto -max_total_time=120 tests/fuzz/corpus/fuzz_policyd_proto
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/policyd/proto.c"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

/* check_decision - invariants of any decision */
static void
check_decision(const struct pd_decision *d)
{
	CHECK(d->verdict >= PD_USE_DEFAULT && d->verdict <= PD_DISCONNECT);
	CHECK(memchr(d->text, '\0', sizeof(d->text)) != NULL);
	CHECK(memchr(d->header, '\0', sizeof(d->header)) != NULL);
	CHECK(memchr(d->action, '\0', sizeof(d->action)) != NULL);
	CHECK(memchr(d->enhanced, '\0', sizeof(d->enhanced)) != NULL);
	switch (d->verdict) {
	case PD_REJECT:
		CHECK(d->code >= 500 && d->code <= 599);
		CHECK(d->enhanced[0] == '5' && d->text[0] != '\0');
		break;
	case PD_TEMPFAIL:
		CHECK(d->code >= 400 && d->code <= 499 && d->code != 421);
		CHECK(d->enhanced[0] == '4' && d->text[0] != '\0');
		break;
	case PD_DISCONNECT:
		CHECK(d->code == 421);
		break;
	default:
		CHECK(d->code == 0);
	}
	if (d->header[0] != '\0') {
		CHECK(d->verdict == PD_CONTINUE);
		CHECK(d->header_name_len > 0 && d->header[d->header_name_len] == ':');
		CHECK(strchr(d->header, '\n') == NULL && strchr(d->header, '\r') == NULL);
	}
	CHECK(strchr(d->text, '\n') == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t left = size, end = 0, k, rep;
	struct pd_decision d;
	struct pd_attr a[2];
	static char out[8192];
	const uint8_t *split;
	long n;
	int rc;

	/* a stream of replies, as read from one connection */
	while ((rc = pd_reply_end(p, left, &end)) == 1) {
		CHECK(end > 0 && end <= left && end <= PD_REPLY_MAX);
		CHECK(p[end - 1] == '\n');
		pd_reply_parse(p, end, &d);
		check_decision(&d);
		p += end;
		left -= end;
	}
	CHECK(rc == 0 || rc == -1);
	CHECK(rc == 0 || left >= PD_REPLY_MAX);
	/* the whole input as one action (default_action= takes any text) */
	pd_action_map((const char *)data, size, &d);
	check_decision(&d);

	split = memchr(data, 0xff, size);
	a[0].name = "sender";
	a[0].value = (const char *)data;
	a[0].len = split != NULL ? (size_t)(split - data) : size;
	a[1].name = "helo_name";
	a[1].value = split != NULL ? (const char *)split + 1 : "";
	a[1].len = split != NULL ? size - a[0].len - 1 : 0;
	n = pd_request_build(a, 2, out, sizeof(out), &rep);
	if (n < 0) {
		CHECK(size + 21 > sizeof(out));
		return 0;
	}
	CHECK((size_t)n < sizeof(out) && out[n] == '\0');
	CHECK(n >= 2 && out[n - 1] == '\n' && out[n - 2] == '\n');
	for (k = 0; k + 2 < (size_t)n; k++)
		CHECK(out[k] != '\0' && out[k] != '\r' &&
		    (out[k] != '\n' || out[k + 1] != '\n'));
	CHECK(strncmp(out, "sender=", 7) == 0);
	return 0;
}
