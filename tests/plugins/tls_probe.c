/*
 * tls_probe.c - test plugin for the TLS state in sh_session_info
 *
 * ABI feature: what a plugin sees of the connection's encryption
 * (sh_session(ctx)->tls, tls_protocol, tls_cipher, tls_peer_subject).
 * At helo, mail and rcpt it logs one line through sh_log():
 *
 *	tls_probe HOOK tls=0|1 protocol=P cipher=C peer=S
 *
 * (P, C, S are "-" when the host gives NULL).  It never decides:
 * every hook answers CONTINUE.
 */
#include "common/test_plugin.h"

static sh_verdict
probe(sh_ctx *ctx, const char *arg, size_t len)
{
	const sh_session_info *s = sh_session(ctx);

	(void)arg, (void)len;
	sh_log(ctx, SH_LOG_INFO, "tls_probe %s tls=%d protocol=%s cipher=%s peer=%s",
	    sh_hook_name(ctx), s->tls,
	    s->tls_protocol != NULL ? s->tls_protocol : "-",
	    s->tls_cipher != NULL ? s->tls_cipher : "-",
	    s->tls_peer_subject != NULL ? s->tls_peer_subject : "-");
	return SH_CONTINUE;
}

TP_VERDICT_HOOKS(probe, probe)

/* Only these three: the tests count the lines. */
SH_PLUGIN_DEFINE(
	.name = "tls_probe",
	.version = "1.0",
	.helo = probe_helo,
	.mail = probe_mail,
	.rcpt = probe_rcpt,
);
