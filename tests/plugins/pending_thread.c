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
 *	verdict=continue|accept|reject|tempfail|disconnect (default continue)
 *
 * Logs: "pending_thread: submit HOOK" through sh_log; done and cancel
 * have no context and write to stderr:
 *	"pending_thread: done HOOK rc=R"	(R = sh_resume()'s result)
 *	"pending_thread: cancelled HOOK"
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/test_plugin.h"

struct pth_conf {
	const char *hook;		/* static (tp_hook_name) */
	uint64_t ms;
	sh_verdict verdict;
};

/* One job: owned by the pool until `done` frees it. */
struct pth_job {
	sh_pending token;
	uint64_t ms;
	sh_verdict verdict;
	const char *hook;
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
	c->hook = "rcpt";
	c->ms = 300;
	for (i = 0; i < nargs; i++) {
		const char *k = args[i].key, *v = args[i].value;

		if ((strcmp(k, "hook") == 0 && (c->hook = tp_hook_name(ctx, v)) == NULL) ||
		    (strcmp(k, "ms") == 0 && tp_parse_uint(ctx, k, v, 600000, &c->ms) < 0) ||
		    (strcmp(k, "verdict") == 0 && tp_parse_verdict(ctx, v, &c->verdict) < 0)) {
			free(c);
			return -1;
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
	tp_sleep_ms(((struct pth_job *)arg)->ms);
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
maybe_submit(sh_ctx *ctx, const char *arg, size_t len)
{
	struct pth_conf *c = sh_plugin_get(ctx);
	struct pth_job *j;

	(void)arg, (void)len;
	if (!tp_hook_is(ctx, c->hook))
		return SH_CONTINUE;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return SH_TEMPFAIL;
	j->ms = c->ms;
	j->verdict = c->verdict;
	j->hook = c->hook;
	j->token = sh_pend(ctx, pth_cancel, j);
	if (sh_pool_submit(ctx, pth_work, pth_done, j) < 0) {
		/* The token goes stale when we do not return PENDING. */
		free(j);
		return SH_TEMPFAIL;
	}
	sh_log(ctx, SH_LOG_INFO, "pending_thread: submit %s", c->hook);
	return SH_PENDING;
}

TP_VERDICT_HOOKS(pth, maybe_submit)

SH_PLUGIN_DEFINE(
	.name = "pending_thread",
	.version = "1.0",
	.arg_keys = pth_keys,
	.init = pth_init,
	.fini = pth_fini,
	TP_VERDICT_HOOK_TABLE(pth),
);
