/*
 * chain.h - THE verdict chain
 *
 * For one event (a hook with its arguments in s->run.arg) the chain asks
 * the plugins in command-line order.  Verdict hooks: the first verdict
 * other than CONTINUE decides, the rest are not asked.  Fan-out hooks
 * (header, chunk): every plugin is asked; ACCEPT means "skip me for the
 * rest of this message", REJECT/TEMPFAIL/DISCONNECT stop the walk.  A
 * PENDING verdict suspends the walk; it resumes at the same plugin's
 * verdict, then goes on with the next plugin.  When the walk is over, the
 * session's done callback gets the verdict (CONTINUE when nobody decided)
 * with the deciding plugin's reply in s->run.reply.
 *
 * Notifications (reset, disconnect) go to every plugin, in order, and
 * never wait.
 */
#ifndef CHAIN_H
#define CHAIN_H

#include "session.h"

/* chain_start - begin a walk; may call done before it returns */
void chain_start(struct session *s, sh_hook_id hook, int fanout,
    chain_done_fn done);
/* chain_notify_reset / chain_notify_disconnect - the notifications */
void chain_notify_reset(struct session *s);
void chain_notify_disconnect(struct session *s);
/* chain_cancel - the session is going away: abandon a pending verdict */
void chain_cancel(struct session *s);
/* chain_hook_name - "rcpt", ... */
const char *chain_hook_name(sh_hook_id hook);
/* chain_pend / chain_resume - the host side of sh_pend / sh_resume */
sh_pending chain_pend(struct session *s, size_t plugin, sh_cancel_fn cancel,
    void *arg);
int chain_resume(struct server *srv, sh_pending p, sh_verdict verdict,
    int code, const char *enhanced, const char *text);
/* chain_set_reply - validate and store a plugin's reply */
void chain_set_reply(struct chain_reply *r, const char *plugin, int code,
    const char *enhanced, const char *text);

#endif
