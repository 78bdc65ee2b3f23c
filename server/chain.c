/*
 * chain.c - THE verdict chain: walk, fan-out, PENDING, notifications
 *
 * Invariants: at most one walk per chain (run.active) and at most one
 * pending verdict (pend.generation != 0).  A pending verdict is named by
 * (owner id, generation) in the plugin's token (host_api.c), so a verdict
 * that arrives after the owner is gone, after a timeout, or twice, finds
 * nothing and is dropped.  The chain acts on a resumed verdict from a
 * zero-delay timer, never inside sh_resume(), so a plugin never re-enters
 * itself.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain.h"
#include "log.h"
#include "metrics.h"
#include "plugin.h"

#define HOOK_BLOCK_WARN 0.100	/* seconds; SPEC §4 */

static const char *const hook_names[] = {
	[SH_HOOK_CONNECT] = "connect", [SH_HOOK_HELO] = "helo",
	[SH_HOOK_AUTH] = "auth", [SH_HOOK_MAIL] = "mail",
	[SH_HOOK_RCPT] = "rcpt", [SH_HOOK_DATA] = "data",
	[SH_HOOK_HEADER] = "header", [SH_HOOK_CHUNK] = "chunk",
	[SH_HOOK_EOM] = "eom", [SH_HOOK_VRFY] = "vrfy",
	[SH_HOOK_EXPN] = "expn",
};

const char *
chain_hook_name(sh_hook_id hook)
{
	return (unsigned)hook < SH_HOOK_COUNT_V1 ? hook_names[hook] : "?";
}

void
chain_reply_clear(struct chain_reply *r)
{
	free(r->text);
	r->text = NULL;
	r->code = 0;
	r->enhanced[0] = '\0';
}

/* valid_enhanced - "C.SSS.DDD" of RFC 3463 */
static int
valid_enhanced(const char *e)
{
	size_t i = 0, part, digits;

	if (e[0] < '2' || e[0] > '5' || e[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; e[i] >= '0' && e[i] <= '9'; i++)
			digits++;
		if (digits < 1 || digits > 3)
			return 0;
		if (part == 0 && e[i++] != '.')
			return 0;
	}
	return e[i] == '\0';
}

/*
 * chain_set_reply - keep a plugin's reply if it is well-formed: a code of
 * 200-599, an enhanced code of the same class (else dropped), text made
 * printable and cut.  Malformed replies are logged and ignored, so the
 * host's default applies (STYLE §9.8).
 */
void
chain_set_reply(struct chain_reply *r, const char *plugin, int code,
    const char *enhanced, const char *text)
{
	size_t n, i;

	chain_reply_clear(r);
	if (code < 200 || code > 599) {
		log_msg(LOG_WARN, "plugin %s: reply code %d ignored", plugin, code);
		return;
	}
	r->code = code;
	if (enhanced != NULL && enhanced[0] != '\0') {
		if (strlen(enhanced) < sizeof(r->enhanced) && valid_enhanced(enhanced) &&
		    enhanced[0] == '0' + code / 100)
			strcpy(r->enhanced, enhanced);
		else
			log_msg(LOG_WARN, "plugin %s: enhanced code ignored (class "
			    "must match %d)", plugin, code);
	}
	if (text == NULL || text[0] == '\0')
		return;
	n = strnlen(text, REPLY_TEXT_MAX);
	if ((r->text = malloc(n + 1)) == NULL)
		return;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)text[i];
		r->text[i] = (c < 0x20 && c != '\n') || c == 0x7f ? '?' : (char)c;
	}
	r->text[n] = '\0';
}

/* has_hook - does plugin i implement the walk's hook? */
static int
has_hook(const struct plugin *p, sh_hook_id hook)
{
	switch (hook) {
	case SH_HOOK_CONNECT: return plugin_hook(p, connect) != NULL;
	case SH_HOOK_HELO: return plugin_hook(p, helo) != NULL;
	case SH_HOOK_AUTH: return plugin_hook(p, auth) != NULL;
	case SH_HOOK_MAIL: return plugin_hook(p, mail) != NULL;
	case SH_HOOK_RCPT: return plugin_hook(p, rcpt) != NULL;
	case SH_HOOK_DATA: return plugin_hook(p, data) != NULL;
	case SH_HOOK_HEADER: return plugin_hook(p, header) != NULL;
	case SH_HOOK_CHUNK: return plugin_hook(p, chunk) != NULL;
	case SH_HOOK_EOM: return plugin_hook(p, eom) != NULL;
	case SH_HOOK_VRFY: return plugin_hook(p, vrfy) != NULL;
	case SH_HOOK_EXPN: return plugin_hook(p, expn) != NULL;
	default: return 0;
	}
}

/*
 * hook_clock - seconds on the monotonic clock: the per plugin x hook
 * time of the metrics needs microseconds (the coarse clock's 1-4 ms
 * tick reads 0 for nearly every hook); through the vDSO it costs tens
 * of nanoseconds, two reads per hook call.
 */
static double
hook_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* call_hook - one verdict hook of one plugin, timed */
static sh_verdict
call_hook(struct chain *c, size_t i)
{
	struct plugin *p = &c->plugins[i];
	struct chain_run *r = &c->run;
	const char *hook = chain_hook_name(r->hook);
	_Alignas(max_align_t) unsigned char storage[CHAIN_CTX_STORAGE];
	sh_ctx *ctx = c->ops->ctx(c->owner, storage, i, hook, &r->reply, 1);
	sh_verdict v = SH_CONTINUE;
	double t0, dt;

	t0 = hook_clock();
	switch (r->hook) {
	case SH_HOOK_CONNECT: v = p->desc->connect(ctx); break;
	case SH_HOOK_HELO:
		v = p->desc->helo(ctx, r->arg.helo.name, r->arg.helo.extended);
		break;
	case SH_HOOK_AUTH:
		v = p->desc->auth(ctx, r->arg.auth.mechanism, r->arg.auth.user,
		    r->arg.auth.password);
		break;
	case SH_HOOK_MAIL: v = p->desc->mail(ctx, r->arg.addr); break;
	case SH_HOOK_RCPT: v = p->desc->rcpt(ctx, r->arg.addr); break;
	case SH_HOOK_DATA: v = p->desc->data(ctx); break;
	case SH_HOOK_HEADER:
		v = p->desc->header(ctx, r->arg.header.name, r->arg.header.name_len,
		    r->arg.header.value, r->arg.header.value_len);
		break;
	case SH_HOOK_CHUNK:
		v = p->desc->chunk(ctx, r->arg.chunk.data, r->arg.chunk.len);
		break;
	case SH_HOOK_EOM: v = p->desc->eom(ctx); break;
	case SH_HOOK_VRFY: v = p->desc->vrfy(ctx, r->arg.text); break;
	case SH_HOOK_EXPN: v = p->desc->expn(ctx, r->arg.text); break;
	default: break;
	}
	dt = hook_clock() - t0;
	if (dt > HOOK_BLOCK_WARN)
		log_msg(LOG_WARN, "%s: plugin %s blocked the loop for %.0f ms "
		    "in hook %s", c->log_id, p->name, dt * 1000, hook);
	if ((unsigned)v > SH_PENDING) {
		log_msg(LOG_ERROR, "%s: plugin %s returned invalid verdict %d "
		    "from %s; taken as TEMPFAIL", c->log_id, p->name, (int)v, hook);
		v = SH_TEMPFAIL;
	}
	if (c->metrics != NULL)
		metrics_hook_call(c->metrics, i, r->hook, v == SH_PENDING &&
		    (c->pend == NULL || c->pend->phase != PENDING_IN_HOOK) ?
		    SH_TEMPFAIL : v,
		    (uint64_t)(dt * 1e9), dt > HOOK_BLOCK_WARN);
	return v;
}

/* settled - count a pending verdict that arrived or timed out */
static void
settled(struct chain *c, size_t i, sh_verdict v, int timed_out)
{
	double waited = c->pend->phase == PENDING_WAITING ?
	    ev_time() - c->pend->since : 0;

	if (c->metrics != NULL)
		metrics_hook_settled(c->metrics, i, c->run.hook, v,
		    (uint64_t)(waited * 1e9), timed_out);
}

/* chain_finish - the walk is over: hand the verdict to the owner */
static void
chain_finish(struct chain *c, sh_verdict v)
{
	c->run.active = 0;
	c->run.done(c->run.done_arg, v);
}

/*
 * chain_apply - account for plugin i's verdict; returns 1 when the walk
 * is over (done was called), 0 to go on with the next plugin.
 */
static int
chain_apply(struct chain *c, size_t i, sh_verdict v)
{
	struct chain_run *r = &c->run;

	if (v == SH_CONTINUE) {
		/* No opinion: a reply set with it is not the next decider's. */
		chain_reply_clear(&r->reply);
		return 0;
	}
	if (r->fanout && v == SH_ACCEPT) {
		/* "I need no more of this message"; others still get it. */
		if (r->hook == SH_HOOK_HEADER)
			c->skip_header |= UINT64_C(1) << i;
		else
			c->skip_chunk |= UINT64_C(1) << i;
		chain_reply_clear(&r->reply);
		return 0;
	}
	r->decider = i;
	chain_finish(c, v);
	return 1;
}

/* skipped - has plugin i opted out of this fan-out? */
static int
skipped(const struct chain *c, size_t i)
{
	const struct chain_run *r = &c->run;

	if (!r->fanout)
		return 0;
	return ((r->hook == SH_HOOK_HEADER ? c->skip_header : c->skip_chunk) >>
	    i) & 1;
}

/* pend_clear - forget the pending verdict (token becomes stale) */
static void
pend_clear(struct chain *c)
{
	struct pending_state *pd = c->pend;

	if (pd == NULL)
		return;
	ev_timer_stop(c->loop, &pd->timeout);
	ev_timer_stop(c->loop, &pd->kick);
	pd->generation = 0;
	pd->phase = PENDING_NONE;
	pd->resolved = 0;
	pd->cancel = NULL;
	pd->cancel_arg = NULL;
	chain_reply_clear(&pd->reply);
}

/* take_resolved - move a resumed verdict and its reply into the walk */
static sh_verdict
take_resolved(struct chain *c)
{
	sh_verdict v = c->pend->verdict;

	chain_reply_clear(&c->run.reply);
	c->run.reply = c->pend->reply;
	c->pend->reply = (struct chain_reply){ 0 };
	pend_clear(c);
	return v;
}

/* chain_step - ask plugins from run.next on, until one decides or pends */
static void
chain_step(struct chain *c)
{
	struct chain_run *r = &c->run;

	while (r->next < c->nplugins) {
		size_t i = r->next++;
		sh_verdict v;

		if (!has_hook(&c->plugins[i], r->hook) || skipped(c, i))
			continue;
		v = call_hook(c, i);
		if (v == SH_PENDING) {
			if (c->pend == NULL || c->pend->phase != PENDING_IN_HOOK) {
				log_msg(LOG_ERROR, "%s: plugin %s returned PENDING from "
				    "%s without sh_pend(); taken as TEMPFAIL", c->log_id,
				    c->plugins[i].name, chain_hook_name(r->hook));
				v = SH_TEMPFAIL;
			} else if (c->pend->resolved) {
				/* Resumed before returning: act on it now that the
				 * plugin's call is over (ev.pod on re-entrancy). */
				settled(c, i, c->pend->verdict, 0);
				v = take_resolved(c);
			} else {
				c->pend->phase = PENDING_WAITING;
				c->pend->since = ev_time();
				ev_timer_set(&c->pend->timeout, c->plugins[i].timeout, 0);
				ev_timer_start(c->loop, &c->pend->timeout);
				return;
			}
		} else if (c->pend != NULL && c->pend->generation != 0) {
			/* sh_pend() without PENDING: the token goes stale. */
			pend_clear(c);
		}
		if (chain_apply(c, i, v))
			return;
	}
	chain_finish(c, SH_CONTINUE);
}

void
chain_start(struct chain *c, sh_hook_id hook, int fanout, chain_done_fn done,
    void *arg)
{
	struct chain_run *r = &c->run;

	if (r->active)
		log_panic("%s: chain_start(%s) while %s is running", c->log_id,
		    chain_hook_name(hook), chain_hook_name(r->hook));
	chain_reply_clear(&r->reply);
	r->hook = hook;
	r->fanout = fanout != 0;
	r->next = 0;
	r->decider = c->nplugins;	/* nobody yet: chain_decider_name() "?" */
	r->done = done;
	r->done_arg = arg;
	r->active = 1;
	chain_step(c);
}

/* chain_continue_with - act on plugin pend.plugin's late verdict, then
 * let the owner go on (it is an event of its own) */
static void
chain_continue_with(struct chain *c, size_t i, sh_verdict v)
{
	if (!chain_apply(c, i, v))
		chain_step(c);
	c->ops->resumed(c->owner);
}

/* pend_kick_cb - a resumed verdict, one loop turn after sh_resume() */
static void
pend_kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct chain *c = w->data;
	size_t i = c->pend->plugin;

	(void)loop, (void)revents;
	if (c->pend->phase != PENDING_WAITING || !c->pend->resolved)
		return;
	settled(c, i, c->pend->verdict, 0);
	chain_continue_with(c, i, take_resolved(c));
}

/* pend_timeout_cb - the plugin's timeout=: its on_timeout= verdict */
static void
pend_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct chain *c = w->data;
	size_t i = c->pend->plugin;
	struct plugin *p = &c->plugins[i];
	sh_cancel_fn cancel = c->pend->cancel;
	void *arg = c->pend->cancel_arg;
	sh_verdict v = p->on_timeout;

	(void)loop, (void)revents;
	if (c->pend->phase != PENDING_WAITING)
		return;
	settled(c, i, v, 1);
	log_msg(LOG_WARN, "%s: plugin %s gave no %s verdict within %gs; taken "
	    "as %s", c->log_id, p->name, chain_hook_name(c->run.hook),
	    p->timeout, v == SH_CONTINUE ? "continue" : v == SH_REJECT ?
	    "reject" : "tempfail");
	pend_clear(c);
	if (cancel != NULL)
		cancel(arg);
	chain_reply_clear(&c->run.reply);
	if (v == SH_TEMPFAIL)
		chain_set_reply(&c->run.reply, p->name, 451, "4.4.3",
		    "Temporary failure: a policy check timed out");
	chain_continue_with(c, i, v);
}

void
chain_init(struct chain *c, struct plugin *plugins, size_t n,
    struct ev_loop *loop, const struct chain_ops *ops, void *owner,
    const char *log_id)
{
	if (n > CONFIG_MAX_PLUGINS)
		log_panic("chain_init: %zu plugins (at most %d)", n,
		    CONFIG_MAX_PLUGINS);
	memset(c, 0, sizeof(*c));
	c->plugins = plugins;
	c->nplugins = n;
	c->loop = loop;
	c->ops = ops;
	c->owner = owner;
	c->log_id = log_id;
}

void
chain_destroy(struct chain *c)
{
	if (c->pend != NULL) {
		ev_timer_stop(c->loop, &c->pend->timeout);
		ev_timer_stop(c->loop, &c->pend->kick);
		chain_reply_clear(&c->pend->reply);
		free(c->pend);
		c->pend = NULL;
	}
	chain_reply_clear(&c->run.reply);
}

void
chain_message_begin(struct chain *c)
{
	c->skip_header = c->skip_chunk = 0;
}

int
chain_waiting(const struct chain *c)
{
	return c->pend != NULL && c->pend->phase == PENDING_WAITING;
}

const char *
chain_decider_name(const struct chain *c)
{
	return c->run.decider < c->nplugins ? c->plugins[c->run.decider].name :
	    "?";
}

uint64_t
chain_pend(struct chain *c, size_t plugin, sh_cancel_fn cancel, void *arg)
{
	struct pending_state *pd = c->pend;

	if (pd == NULL) {
		/* The first pending verdict of this connection: most never
		 * pend, so an idle connection does not carry the timers. */
		if ((pd = calloc(1, sizeof(*pd))) == NULL) {
			log_msg(LOG_ERROR, "%s: out of memory for a pending verdict",
			    c->log_id);
			return 0;
		}
		ev_init(&pd->timeout, pend_timeout_cb);
		pd->timeout.data = c;
		ev_init(&pd->kick, pend_kick_cb);
		pd->kick.data = c;
		c->pend = pd;
	}
	if (pd->generation == 0) {
		pd->generation = ++c->next_generation;
		pd->plugin = plugin;
		pd->phase = PENDING_IN_HOOK;
		pd->resolved = 0;
	}
	pd->cancel = cancel;
	pd->cancel_arg = arg;
	return pd->generation;
}

int
chain_resume(struct chain *c, uint64_t generation, sh_verdict verdict,
    int code, const char *enhanced, const char *text)
{
	struct pending_state *pd = c->pend;
	const char *name;

	if (pd == NULL || generation == 0 || pd->generation != generation || pd->resolved)
		return -1;
	name = c->plugins[pd->plugin].name;
	if ((unsigned)verdict >= SH_PENDING) {
		log_msg(LOG_ERROR, "%s: plugin %s resumed with verdict %d; taken "
		    "as TEMPFAIL", c->log_id, name, (int)verdict);
		verdict = SH_TEMPFAIL;
		code = 0;
	}
	pd->verdict = verdict;
	pd->resolved = 1;
	if (code != 0)
		chain_set_reply(&pd->reply, name, code, enhanced, text);
	if (pd->phase == PENDING_WAITING) {
		ev_timer_stop(c->loop, &pd->timeout);
		ev_timer_set(&pd->kick, 0, 0);
		ev_timer_start(c->loop, &pd->kick);
	}
	return 0;
}

int
chain_cancel(struct chain *c)
{
	struct pending_state *pd = c->pend;
	int cut = c->run.active;
	sh_cancel_fn cancel;
	void *arg;
	int waiting;

	c->run.active = 0;
	if (pd == NULL || pd->generation == 0)
		return cut;
	cancel = pd->cancel;
	arg = pd->cancel_arg;
	waiting = pd->phase == PENDING_WAITING && !pd->resolved;
	pend_clear(c);
	if (waiting && cancel != NULL)
		cancel(arg);
	return cut;
}

/* notify - call a notification hook of every plugin, in chain order */
static void
notify(struct chain *c, int disconnect)
{
	size_t i;

	for (i = 0; i < c->nplugins; i++) {
		struct plugin *p = &c->plugins[i];
		void (*fn)(sh_ctx *) = disconnect ? plugin_hook(p, disconnect) :
		    plugin_hook(p, reset);
		_Alignas(max_align_t) unsigned char storage[CHAIN_CTX_STORAGE];
		sh_ctx *ctx;
		double t0, dt;

		if (fn == NULL)
			continue;
		ctx = c->ops->ctx(c->owner, storage, i, disconnect ? "disconnect" :
		    "reset", NULL, 0);
		t0 = hook_clock();
		fn(ctx);
		dt = hook_clock() - t0;
		if (c->metrics != NULL)
			metrics_hook_call(c->metrics, i, disconnect ?
			    METRICS_HOOK_DISCONNECT : METRICS_HOOK_RESET, SH_CONTINUE,
			    (uint64_t)(dt * 1e9), dt > HOOK_BLOCK_WARN);
	}
}

void
chain_notify_reset(struct chain *c)
{
	notify(c, 0);
}

void
chain_notify_disconnect(struct chain *c)
{
	notify(c, 1);
}
