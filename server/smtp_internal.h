/*
 * smtp_internal.h - what the parts of the SMTP state machine share
 *
 * smtp_session.c is the state machine; smtp_reply.c formats its replies,
 * smtp_bdat.c reads BDAT chunks and smtp_auth.c runs the AUTH exchange
 * for it.  These are the session's
 * helpers they use and their entry points; nothing outside
 * server/smtp_*.c includes this header.
 */
#ifndef SMTP_INTERNAL_H
#define SMTP_INTERNAL_H

#include "session.h"

/* What one step of input processing achieved. */
enum step { STEP_CONTINUE, STEP_NEED_INPUT, STEP_WAIT };

/* protocol_error - a client error: reply and count toward --max-errors */
void protocol_error(struct session *s, int code, const char *enhanced,
    const char *text);
/* reply_verdict - the reply for a chain verdict (the deciding plugin's
 * when it fits the verdict, else the default); 421/DISCONNECT close */
void reply_verdict(struct session *s, sh_verdict v, struct chain_reply *r,
    int dcode, const char *denh, const char *dtext);
/* refused - reply to a non-allowing verdict; 1 when it refused */
int refused(struct session *s, sh_verdict v, int code, const char *enh,
    const char *text);
/* cmd_ok - count the command being answered as successful */
void cmd_ok(struct session *s, enum smtp_verb v);

/* session_enter - the one place the state changes (trace-logged) */
void session_enter(struct session *s, enum session_state st);
/* session_greet - after accept (and the PROXY header): the greeting pause
 * or the connect hooks, then the greeting */
void session_greet(struct session *s);
/* smtp_xclient.c: Postfix's XCLIENT (--xclient) */
#define XCLIENT_CAPABILITY \
	"XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT REVERSE_NAME"
void cmd_xclient(struct session *s, const char *args, size_t len);
/* session_start - run the connect hooks; the greeting follows */
void session_start(struct session *s);
/* smtp_proxy.c: the PROXY header phase (--proxy-protocol); a balancer
 * sends it at once, so a short bound */
#define PROXY_HEADER_TIMEOUT 5.0
void proxy_input(struct session *s);
void proxy_timeout(struct session *s);
/* reply_verdict_as - reply_verdict, reporting the code and enhanced code
 * sent (code_r, enh_r[16]; may be NULL) */
void reply_verdict_as(struct session *s, sh_verdict v, struct chain_reply *r,
    int dcode, const char *denh, const char *dtext, int *code_r, char *enh_r);
/* eom_done - the end-of-message verdict: the final reply, the end of the
 * transaction (DATA and BDAT LAST alike) */
void eom_done(void *owner, sh_verdict v);

/* session_add_received - the Received: field first in the trace block */
int session_add_received(struct session *s);

/* smtp_bdat.c */
void cmd_bdat(struct session *s, const char *args, size_t len);
enum step bdat_step(struct session *s);
void bdat_refuse(struct session *s, const char *args, size_t len, int code,
    const char *enh, const char *text);

/* smtp_auth.c */
void cmd_auth(struct session *s, const char *args, size_t len);
void auth_response(struct session *s, const char *line, size_t len);
void auth_args_free(struct session *s);
/* auth_awaits_answer - the next line answers our 334 */
static inline int
auth_awaits_answer(const struct session *s)
{
	return s->auth >= AUTH_WAIT_PLAIN && s->auth <= AUTH_WAIT_LOGIN_PASS;
}
/* auth_abort - end an open AUTH exchange (the caller replies) */
void auth_abort(struct session *s);
/* auth_session_free - stop a held AUTH, wipe what it kept (session_free) */
void auth_session_free(struct session *s);

#endif
