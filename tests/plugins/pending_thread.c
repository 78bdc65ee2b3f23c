/*
 * pending_thread.c - test plugin for PENDING resolved by the host pool
 *
 * ABI feature: sh_pool_submit(): blocking work (here: sleeping) runs on a
 * host pool thread, its `done` runs on the loop and completes the pending
 * verdict with sh_resume().  `done` always runs, also after the session
 * is gone or the verdict was cancelled; sh_resume() then returns -1.
 *
 * Arguments:
 *	hook=connect|helo|mail|rcpt|data|header|chunk|eom|vrfy (default rcpt)
 *	ms=N		how long the job sleeps on the pool thread (default 300)
 *	verdict=continue|accept|reject|tempfail	(default continue)
 *
 * Logs: "pending_thread: submit HOOK" through sh_log; done and cancel
 * have no context and write to stderr:
 *	"pending_thread: done HOOK rc=R"	(R = sh_resume()'s result)
 *	"pending_thread: cancelled HOOK"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <smtphook.h>

struct pth_conf {
	char hook[16];
	long ms;
	sh_verdict verdict;
};

/* One job: owned by the pool until `done` frees it. */
struct pth_job {
	sh_pending token;
	long ms;
	sh_verdict verdict;
	char hook[16];
};

static const char *const pth_keys[] = { "hook", "ms", "verdict", NULL };

static int
pth_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct pth_conf *c = calloc(1, sizeof(*c));
	size_t i;

	if (c == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	snprintf(c->hook, sizeof(c->hook), "rcpt");
	c->ms = 300;
	for (i = 0; i < nargs; i++) {
		const char *k = args[i].key, *v = args[i].value;

		if (strcmp(k, "hook") == 0)
			snprintf(c->hook, sizeof(c->hook), "%s", v);
		else if (strcmp(k, "ms") == 0)
			c->ms = atol(v);
		else if (strcmp(k, "verdict") == 0) {
			if (strcmp(v, "continue") == 0)
				c->verdict = SH_CONTINUE;
			else if (strcmp(v, "accept") == 0)
				c->verdict = SH_ACCEPT;
			else if (strcmp(v, "reject") == 0)
				c->verdict = SH_REJECT;
			else if (strcmp(v, "tempfail") == 0)
				c->verdict = SH_TEMPFAIL;
			else {
				sh_error(ctx, "verdict=%s: unknown verdict", v);
				free(c);
				return -1;
			}
		}
	}
	sh_plugin_set(ctx, c);
	return 0;
}

static void
pth_fini(sh_ctx *ctx)
{
	free(sh_plugin_get(ctx));
	sh_plugin_set(ctx, NULL);
}

/* pth_work - on a pool thread: no host API here */
static void
pth_work(void *arg)
{
	struct pth_job *j = arg;
	struct timespec ts = { j->ms / 1000, (j->ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* pth_done - on the loop: complete the verdict (a no-op if abandoned) */
static void
pth_done(void *arg)
{
	struct pth_job *j = arg;
	int rc = sh_resume(j->token, j->verdict, 0, NULL, NULL);

	fprintf(stderr, "pending_thread: done %s rc=%d\n", j->hook, rc);
	free(j);
}

/* pth_cancel - the job cannot be stopped; done will free it */
static void
pth_cancel(void *arg)
{
	struct pth_job *j = arg;

	fprintf(stderr, "pending_thread: cancelled %s\n", j->hook);
}

static sh_verdict
maybe_submit(sh_ctx *ctx)
{
	struct pth_conf *c = sh_plugin_get(ctx);
	struct pth_job *j;

	if (strcmp(sh_hook_name(ctx), c->hook) != 0)
		return SH_CONTINUE;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return SH_TEMPFAIL;
	j->ms = c->ms;
	j->verdict = c->verdict;
	memcpy(j->hook, c->hook, sizeof(j->hook));
	j->token = sh_pend(ctx, pth_cancel, j);
	if (sh_pool_submit(ctx, pth_work, pth_done, j) < 0) {
		/* The token goes stale when we do not return PENDING. */
		free(j);
		return SH_TEMPFAIL;
	}
	sh_log(ctx, SH_LOG_INFO, "pending_thread: submit %s", c->hook);
	return SH_PENDING;
}

static sh_verdict
pth_connect(sh_ctx *ctx)
{
	return maybe_submit(ctx);
}

static sh_verdict
pth_helo(sh_ctx *ctx, const char *name, int extended)
{
	(void)name, (void)extended;
	return maybe_submit(ctx);
}

static sh_verdict
pth_mail(sh_ctx *ctx, const sh_address *a)
{
	(void)a;
	return maybe_submit(ctx);
}

static sh_verdict
pth_rcpt(sh_ctx *ctx, const sh_address *a)
{
	(void)a;
	return maybe_submit(ctx);
}

static sh_verdict
pth_data(sh_ctx *ctx)
{
	return maybe_submit(ctx);
}

static sh_verdict
pth_header(sh_ctx *ctx, const char *name, size_t name_len, const char *value,
    size_t value_len)
{
	(void)name, (void)name_len, (void)value, (void)value_len;
	return maybe_submit(ctx);
}

static sh_verdict
pth_chunk(sh_ctx *ctx, const unsigned char *data, size_t len)
{
	(void)data, (void)len;
	return maybe_submit(ctx);
}

static sh_verdict
pth_eom(sh_ctx *ctx)
{
	return maybe_submit(ctx);
}

static sh_verdict
pth_vrfy(sh_ctx *ctx, const char *arg)
{
	(void)arg;
	return maybe_submit(ctx);
}

SH_PLUGIN_DEFINE(
	.name = "pending_thread",
	.version = "1.0",
	.arg_keys = pth_keys,
	.init = pth_init,
	.fini = pth_fini,
	.connect = pth_connect,
	.helo = pth_helo,
	.mail = pth_mail,
	.rcpt = pth_rcpt,
	.data = pth_data,
	.header = pth_header,
	.chunk = pth_chunk,
	.eom = pth_eom,
	.vrfy = pth_vrfy,
);
