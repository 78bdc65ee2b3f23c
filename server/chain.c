/*
 * chain.c - THE verdict chain: walk, fan-out, PENDING, notifications
 *
 * Invariants: at most one walk per session (s->run.active) and at most
 * one pending verdict (s->pend.generation != 0).  A pending verdict is
 * named by (session id, generation), so a verdict that arrives after the
 * session is gone, after a timeout, or twice, finds nothing and is
 * dropped.  The host acts on a resumed verdict from a zero-delay timer,
 * never inside sh_resume(), so a plugin never re-enters itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain.h"
#include "host_api.h"
#include "log.h"
#include "server.h"

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
 * hook_clock - seconds on the coarse monotonic clock: a tick (1-4 ms) is
 * ample to notice a hook that blocks for 100 ms, and it costs no TSC
 * read (two per hook call, a dozen hook calls per message).
 */
static double
hook_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* call_hook - one verdict hook of one plugin, timed */
static sh_verdict
call_hook(struct session *s, size_t i)
{
	struct server *srv = s->srv;
	struct plugin *p = &srv->plugins[i];
	struct chain_run *r = &s->run;
	struct host_ctx c;
	sh_verdict v = SH_CONTINUE;
	sh_ctx *ctx = &c.pub;
	double t0, dt;

	host_ctx_init(&c, srv, p, s, chain_hook_name(r->hook));
	c.reply = &r->reply;
	c.verdict_hook = 1;
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
		log_msg(LOG_WARN, "session %s: plugin %s blocked the loop for %.0f ms "
		    "in hook %s", s->id_str, p->name, dt * 1000, c.hook_name);
	if ((unsigned)v > SH_PENDING) {
		log_msg(LOG_ERROR, "session %s: plugin %s returned invalid verdict "
		    "%d from %s; taken as TEMPFAIL", s->id_str, p->name, (int)v,
		    c.hook_name);
		v = SH_TEMPFAIL;
	}
	return v;
}

/* chain_finish - the walk is over: hand the verdict to the session */
static void
chain_finish(struct session *s, sh_verdict v)
{
	s->run.active = 0;
	s->run.done(s, v);
}

/*
 * chain_apply - account for plugin i's verdict; returns 1 when the walk
 * is over (done was called), 0 to go on with the next plugin.
 */
static int
chain_apply(struct session *s, size_t i, sh_verdict v)
{
	struct chain_run *r = &s->run;

	if (v == SH_CONTINUE)
		return 0;
	if (r->fanout && v == SH_ACCEPT) {
		/* "I need no more of this message"; others still get it. */
		if (s->tx != NULL) {
			if (r->hook == SH_HOOK_HEADER)
				s->tx->slots[i].skip_header = 1;
			else
				s->tx->slots[i].skip_chunk = 1;
		}
		chain_reply_clear(&r->reply);
		return 0;
	}
	r->decider = i;
	chain_finish(s, v);
	return 1;
}

/* skipped - has plugin i opted out of this fan-out? */
static int
skipped(const struct session *s, size_t i)
{
	const struct chain_run *r = &s->run;

	if (!r->fanout || s->tx == NULL)
		return 0;
	return r->hook == SH_HOOK_HEADER ? s->tx->slots[i].skip_header :
	    s->tx->slots[i].skip_chunk;
}

/* pend_clear - forget the pending verdict (token becomes stale) */
static void
pend_clear(struct session *s)
{
	struct pending_state *pd = &s->pend;

	ev_timer_stop(s->srv->loop, &pd->timeout);
	ev_timer_stop(s->srv->loop, &pd->kick);
	pd->generation = 0;
	pd->in_hook = pd->waiting = pd->resolved = 0;
	pd->cancel = NULL;
	pd->cancel_arg = NULL;
	chain_reply_clear(&pd->reply);
}

/* take_resolved - move a resumed verdict and its reply into the walk */
static sh_verdict
take_resolved(struct session *s)
{
	sh_verdict v = s->pend.verdict;

	chain_reply_clear(&s->run.reply);
	s->run.reply = s->pend.reply;
	s->pend.reply = (struct chain_reply){ 0 };
	pend_clear(s);
	return v;
}

/* chain_step - ask plugins from run.next on, until one decides or pends */
static void
chain_step(struct session *s)
{
	struct server *srv = s->srv;
	struct chain_run *r = &s->run;

	while (r->next < srv->nplugins) {
		size_t i = r->next++;
		sh_verdict v;

		if (!has_hook(&srv->plugins[i], r->hook) || skipped(s, i))
			continue;
		v = call_hook(s, i);
		if (v == SH_PENDING) {
			if (!s->pend.in_hook) {
				log_msg(LOG_ERROR, "session %s: plugin %s returned PENDING "
				    "from %s without sh_pend(); taken as TEMPFAIL",
				    s->id_str, srv->plugins[i].name, chain_hook_name(r->hook));
				v = SH_TEMPFAIL;
			} else if (s->pend.resolved) {
				/* Resumed before returning: act on it now that the
				 * plugin's call is over (ev.pod on re-entrancy). */
				v = take_resolved(s);
			} else {
				s->pend.in_hook = 0;
				s->pend.waiting = 1;
				ev_timer_set(&s->pend.timeout, srv->plugins[i].timeout, 0);
				ev_timer_start(srv->loop, &s->pend.timeout);
				return;
			}
		} else if (s->pend.generation != 0) {
			/* sh_pend() without PENDING: the token goes stale. */
			pend_clear(s);
		}
		if (chain_apply(s, i, v))
			return;
	}
	chain_finish(s, SH_CONTINUE);
}

void
chain_start(struct session *s, sh_hook_id hook, int fanout, chain_done_fn done)
{
	struct chain_run *r = &s->run;

	if (r->active)
		log_panic("session %s: chain_start(%s) while %s is running",
		    s->id_str, chain_hook_name(hook), chain_hook_name(r->hook));
	chain_reply_clear(&r->reply);
	r->hook = hook;
	r->fanout = fanout != 0;
	r->next = 0;
	r->decider = 0;
	r->done = done;
	r->active = 1;
	chain_step(s);
}

/* chain_continue_with - act on plugin pend.plugin's late verdict */
static void
chain_continue_with(struct session *s, sh_verdict v)
{
	size_t i = s->pend.plugin;

	if (!chain_apply(s, i, v))
		chain_step(s);
	session_process(s);
}

/* pend_kick_cb - a resumed verdict, one loop turn after sh_resume() */
static void
pend_kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct session *s = w->data;

	(void)loop, (void)revents;
	if (!s->pend.waiting || !s->pend.resolved)
		return;
	chain_continue_with(s, take_resolved(s));
	session_event_end(s);
}

/* pend_timeout_cb - the plugin's timeout=: its on_timeout= verdict */
static void
pend_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct session *s = w->data;
	struct plugin *p = &s->srv->plugins[s->pend.plugin];
	sh_cancel_fn cancel = s->pend.cancel;
	void *arg = s->pend.cancel_arg;
	sh_verdict v = p->on_timeout;

	(void)loop, (void)revents;
	if (!s->pend.waiting)
		return;
	log_msg(LOG_WARN, "session %s: plugin %s gave no %s verdict within %gs; "
	    "taken as %s", s->id_str, p->name, chain_hook_name(s->run.hook),
	    p->timeout, v == SH_CONTINUE ? "continue" : v == SH_REJECT ?
	    "reject" : "tempfail");
	pend_clear(s);
	if (cancel != NULL)
		cancel(arg);
	chain_reply_clear(&s->run.reply);
	if (v == SH_TEMPFAIL)
		chain_set_reply(&s->run.reply, p->name, 451, "4.4.3",
		    "Temporary failure: a policy check timed out");
	chain_continue_with(s, v);
	session_event_end(s);
}

sh_pending
chain_pend(struct session *s, size_t plugin, sh_cancel_fn cancel, void *arg)
{
	struct pending_state *pd = &s->pend;
	sh_pending tok = { .api = &host_api_table, .host_ = s->srv,
	    .session_id = s->id };

	if (pd->generation == 0) {
		pd->generation = ++s->srv->next_generation;
		pd->plugin = plugin;
		pd->in_hook = 1;
		pd->waiting = pd->resolved = 0;
		ev_init(&pd->timeout, pend_timeout_cb);
		pd->timeout.data = s;
		ev_init(&pd->kick, pend_kick_cb);
		pd->kick.data = s;
	}
	pd->cancel = cancel;
	pd->cancel_arg = arg;
	tok.generation = pd->generation;
	return tok;
}

int
chain_resume(struct server *srv, sh_pending p, sh_verdict verdict, int code,
    const char *enhanced, const char *text)
{
	struct session *s = u64map_get(&srv->sessions, p.session_id);
	struct pending_state *pd;

	if (s == NULL || p.generation == 0 || s->pend.generation != p.generation ||
	    s->pend.resolved)
		return -1;
	pd = &s->pend;
	if ((unsigned)verdict >= SH_PENDING) {
		log_msg(LOG_ERROR, "session %s: plugin %s resumed with verdict %d; "
		    "taken as TEMPFAIL", s->id_str, srv->plugins[pd->plugin].name,
		    (int)verdict);
		verdict = SH_TEMPFAIL;
		code = 0;
	}
	pd->verdict = verdict;
	pd->resolved = 1;
	if (code != 0)
		chain_set_reply(&pd->reply, srv->plugins[pd->plugin].name, code,
		    enhanced, text);
	if (pd->waiting) {
		ev_timer_stop(srv->loop, &pd->timeout);
		ev_timer_set(&pd->kick, 0, 0);
		ev_timer_start(srv->loop, &pd->kick);
	}
	return 0;
}

void
chain_cancel(struct session *s)
{
	struct pending_state *pd = &s->pend;
	sh_cancel_fn cancel = pd->cancel;
	void *arg = pd->cancel_arg;
	int waiting = pd->waiting && !pd->resolved;

	if (pd->generation == 0)
		return;
	pend_clear(s);
	s->run.active = 0;
	if (waiting && cancel != NULL)
		cancel(arg);
}

/* notify - call a notification hook of every plugin, in chain order */
static void
notify(struct session *s, int disconnect)
{
	struct server *srv = s->srv;
	size_t i;

	for (i = 0; i < srv->nplugins; i++) {
		struct plugin *p = &srv->plugins[i];
		void (*fn)(sh_ctx *) = disconnect ? plugin_hook(p, disconnect) :
		    plugin_hook(p, reset);
		struct host_ctx c;

		if (fn == NULL)
			continue;
		host_ctx_init(&c, srv, p, s, disconnect ? "disconnect" : "reset");
		fn(&c.pub);
	}
}

void
chain_notify_reset(struct session *s)
{
	notify(s, 0);
}

void
chain_notify_disconnect(struct session *s)
{
	notify(s, 1);
}
