/*
 * sink.c - accept every message and throw it away
 *
 * For benchmarks and smoke tests: the cheapest plugin that takes
 * responsibility for a message.  It asks for no more of the body after
 * the first chunk, so the host only decodes and counts the rest.
 */
#include <smtphook.h>

/* sink_chunk - nothing to look at: skip the rest of this body */
static sh_verdict
sink_chunk(sh_ctx *ctx, const unsigned char *data, size_t len)
{
	(void)ctx, (void)data, (void)len;
	return SH_ACCEPT;
}

/* sink_eom - "stored" */
static sh_verdict
sink_eom(sh_ctx *ctx)
{
	(void)ctx;
	return SH_ACCEPT;
}

SH_PLUGIN_DEFINE(
	.name = "sink",
	.version = "1.0",
	.chunk = sink_chunk,
	.eom = sink_eom,
	/* It takes responsibility by discarding, on purpose. */
	.roles = SH_ROLE_STORES,
);
