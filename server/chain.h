/*
 * chain.h - THE verdict chain
 *
 * For one event (a hook with its arguments in run.arg) the chain asks the
 * plugins in command-line order.  Verdict hooks: the first verdict other
 * than CONTINUE decides, the rest are not asked.  Fan-out hooks (header,
 * chunk): every plugin is asked; ACCEPT means "skip me for the rest of
 * this message", REJECT/TEMPFAIL/DISCONNECT stop the walk.  A PENDING
 * verdict suspends the walk; it resumes at the same plugin's verdict,
 * then goes on with the next plugin.  When the walk is over, the walk's
 * done callback gets the verdict (CONTINUE when nobody decided) with the
 * deciding plugin's reply in run.reply.
 *
 * Notifications (reset, disconnect) go to every plugin, in order, and
 * never wait.
 *
 * The chain knows plugins, verdicts, timers and nothing of SMTP: its
 * owner (the session) gives it a context factory for the hook calls and
 * is called back when a walk finishes or goes on from the loop.
 */
#ifndef CHAIN_H
#define CHAIN_H

#include <ev.h>
#include <stdint.h>

#include "config.h"
#include "smtphook.h"

struct plugin;
struct metrics;

#define REPLY_TEXT_MAX 2000		/* a plugin's reply text, cut here */

/* A reply chosen by a plugin (or a timeout); text is malloc'd. */
struct chain_reply {
	int code;
	char enhanced[16];
	char *text;
};

/* The arguments of the hook being walked (borrowed by the hooks). */
union chain_arg {
	struct { char *name; int extended; } helo;
	sh_address *addr;		/* owned by the walk for RCPT */
	char *text;
	struct { const char *name, *value; size_t name_len, value_len; } header;
	struct { const unsigned char *data; size_t len; } chunk;
	struct { const char *mechanism; char *user, *password; } auth;
};

/* A walk's end: arg is what chain_start() was given with it. */
typedef void (*chain_done_fn)(void *arg, sh_verdict verdict);

/* Room the chain gives the owner for the context of one hook call: it
 * lives on the chain's stack for the call, not in every connection. */
#define CHAIN_CTX_STORAGE 128

struct chain_ops {
	/* ctx - the context for one call of plugin `plugin` in hook_name,
	 * built in storage (CHAIN_CTX_STORAGE octets, aligned for any
	 * object): reply is where its sh_reply() goes (NULL in
	 * notifications), verdict_hook whether it may pend */
	sh_ctx *(*ctx)(void *owner, void *storage, size_t plugin,
	    const char *hook_name, struct chain_reply *reply, int verdict_hook);
	/* resumed - a walk went on from the loop (a late verdict or a
	 * timeout) and may have finished: the owner's event is over */
	void (*resumed)(void *owner);
};

/* The chain walk in progress for one event. */
struct chain_run {
	sh_hook_id hook;
	size_t next;			/* next plugin to ask */
	size_t decider;			/* plugin whose verdict decided */
	unsigned active : 1;		/* a walk is in progress */
	unsigned fanout : 1;		/* header/chunk: ACCEPT = skip me */
	chain_done_fn done;
	void *done_arg;
	struct chain_reply reply;	/* reply of the deciding plugin */
	union chain_arg arg;
};

/* The one pending verdict a chain may wait for. */
enum pending_phase {
	PENDING_NONE,			/* no token out */
	PENDING_IN_HOOK,		/* sh_pend() called in the current hook */
	PENDING_WAITING,		/* hook returned PENDING, no verdict yet */
};

struct pending_state {
	uint64_t generation;		/* token; 0 when none */
	size_t plugin;
	sh_cancel_fn cancel;
	void *cancel_arg;
	enum pending_phase phase;
	unsigned resolved : 1;		/* sh_resume() delivered the verdict */
	sh_verdict verdict;
	struct chain_reply reply;
	double since;			/* ev_now() when the hook pended */
	ev_timer timeout;
	ev_timer kick;			/* acts on a verdict on the next loop turn */
};

struct chain {
	struct plugin *plugins;
	size_t nplugins;
	struct ev_loop *loop;
	struct metrics *metrics;	/* NULL: not counted */
	const struct chain_ops *ops;
	void *owner;
	const char *log_id;		/* "session 00002A" in log lines */
	uint64_t next_generation;
	uint64_t skip_header, skip_chunk;	/* fan-out opt-outs, per plugin */
	struct chain_run run;
	struct pending_state *pend;	/* allocated at the first sh_pend() */
};

/* chain_init - an idle chain over plugins[0..n) (n <= CONFIG_MAX_PLUGINS) */
void chain_init(struct chain *c, struct plugin *plugins, size_t n,
    struct ev_loop *loop, const struct chain_ops *ops, void *owner,
    const char *log_id);
/* chain_destroy - stop the timers, free the reply; no callbacks */
void chain_destroy(struct chain *c);
/* chain_message_begin - a new message: forget the fan-out opt-outs */
void chain_message_begin(struct chain *c);
/* chain_start - begin a walk; done(arg, verdict) ends it, maybe before
 * chain_start returns */
void chain_start(struct chain *c, sh_hook_id hook, int fanout,
    chain_done_fn done, void *arg);
/* chain_notify_reset / chain_notify_disconnect - the notifications */
void chain_notify_reset(struct chain *c);
void chain_notify_disconnect(struct chain *c);
/* chain_cancel - the owner is going away: abandon the walk and a pending
 * verdict (the plugin's cancel function is called).  1 if a walk was cut */
int chain_cancel(struct chain *c);
/* chain_waiting - a walk waits for a pending verdict */
int chain_waiting(const struct chain *c);
/* chain_hook_name - "rcpt", ... */
const char *chain_hook_name(sh_hook_id hook);
/* chain_decider_name - the plugin whose verdict decided the last walk */
const char *chain_decider_name(const struct chain *c);
/* chain_pend / chain_resume - the host side of sh_pend / sh_resume:
 * pend returns the generation of the token, resume takes it back */
uint64_t chain_pend(struct chain *c, size_t plugin, sh_cancel_fn cancel,
    void *arg);
int chain_resume(struct chain *c, uint64_t generation, sh_verdict verdict,
    int code, const char *enhanced, const char *text);
/* chain_set_reply - validate and store a plugin's reply */
void chain_set_reply(struct chain_reply *r, const char *plugin, int code,
    const char *enhanced, const char *text);
void chain_reply_clear(struct chain_reply *r);

#endif
