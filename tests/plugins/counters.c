/*
 * counters.c - test plugin for sh_counter_register() / sh_counter_add()
 *
 * ABI feature: plugin metrics (SDK 1.1).  Registers two counters in init:
 *	counters_messages	added 1 at every eom, on the loop
 *	counters_pool_jobs	added 1 by a pool thread per eom (the one
 *				API call allowed off the loop), then eom
 *				answers ACCEPT when the job is done
 * and tries two bad registrations (a bad name, a duplicate) whose NULL
 * results it logs: "counters: bad=NULL dup=NULL".  A registration
 * outside init (at connect) is refused too: "counters: late=NULL".
 */
#include <stdlib.h>

#include "common/test_plugin.h"

struct counters {
	sh_counter *messages, *pool_jobs;
};

struct job {
	sh_counter *counter;
	sh_pending pending;
};

static int
counters_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct counters *c = calloc(1, sizeof(*c));
	sh_counter *bad, *dup;

	(void)args, (void)nargs;
	if (c == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	c->messages = sh_counter_register(ctx, "counters_messages",
	    "messages seen at eom");
	c->pool_jobs = sh_counter_register(ctx, "counters_pool_jobs",
	    "eom jobs run on the pool");
	bad = sh_counter_register(ctx, "9bad-name", "refused");
	dup = sh_counter_register(ctx, "counters_messages", "refused");
	sh_log(ctx, SH_LOG_INFO, "counters: bad=%s dup=%s", bad ? "set" : "NULL",
	    dup ? "set" : "NULL");
	if (c->messages == NULL || c->pool_jobs == NULL) {
		free(c);
		sh_error(ctx, "counter registration failed");
		return -1;
	}
	sh_plugin_set(ctx, c);
	return 0;
}

static void
counters_fini(sh_ctx *ctx)
{
	free(sh_plugin_get(ctx));
}

static sh_verdict
counters_connect(sh_ctx *ctx)
{
	sh_counter *late = sh_counter_register(ctx, "counters_late", "refused");

	sh_log(ctx, SH_LOG_INFO, "counters: late=%s", late ? "set" : "NULL");
	return SH_CONTINUE;
}

static void
job_work(void *arg)
{
	struct job *j = arg;

	sh_counter_add(j->counter, 1);
}

static void
job_done(void *arg)
{
	struct job *j = arg;

	sh_resume(j->pending, SH_ACCEPT, 0, NULL, NULL);
	free(j);
}

static sh_verdict
counters_eom(sh_ctx *ctx)
{
	struct counters *c = sh_plugin_get(ctx);
	struct job *j = malloc(sizeof(*j));

	sh_counter_add(c->messages, 1);
	if (j == NULL)
		return SH_TEMPFAIL;
	j->counter = c->pool_jobs;
	j->pending = sh_pend(ctx, NULL, NULL);
	if (sh_pool_submit(ctx, job_work, job_done, j) < 0) {
		free(j);
		return SH_TEMPFAIL;
	}
	return SH_PENDING;
}

SH_PLUGIN_DEFINE(.name = "counters", .version = "1.0", .init = counters_init,
    .fini = counters_fini, .connect = counters_connect, .eom = counters_eom,
    .roles = SH_ROLE_STORES);
