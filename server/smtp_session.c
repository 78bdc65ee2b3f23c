/*
 * smtp_session.c - THE SMTP state machine (RFC 5321, 1869, 2920, 3463)
 *
 * One table maps each verb to the states it is allowed in and to its
 * handler.  A handler first checks syntax and sequence and replies at once
 * when they fail; only then does it ask the plugin chain, and the chain's
 * done callback (a *_done function) applies the side effects: state
 * changes, the envelope, the reply.  Commands are processed one at a time
 * from the input buffer (PIPELINING, RFC 2920), replies are queued in
 * order and flushed in one write when the buffer is drained or the
 * session has to wait.  While the chain waits for a PENDING verdict the
 * session processes nothing.
 *
 * The body is decoded in place in the input buffer (dot-unstuffing only
 * removes bytes), split into header fields, and handed to the chain as
 * slices of that buffer: no copy on the way (except with
 * --bare-lf=normalize, which may add bytes and so decodes into a scratch
 * buffer).
 *
 * A session is freed in one place only: session_event_end(), at the end
 * of the event callback that found it dead.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "chain.h"
#include "host_api.h"
#include "log.h"
#include "server.h"
#include "session.h"
#include "smtp_internal.h"
#include "tls.h"


#define ST(x) (1u << (x))
#define ST_ANY_CMD (ST(SESSION_INIT) | ST(SESSION_READY) | ST(SESSION_MAIL) | \
	ST(SESSION_RCPT) | ST(SESSION_BDAT))
#define ST_HELOED (ST(SESSION_READY) | ST(SESSION_MAIL) | ST(SESSION_RCPT))

/* Command flags */
#define CMD_NO_ARGS 0x1		/* an argument is a syntax error */
#define CMD_NEED_ARGS 0x2	/* a missing argument is a syntax error */

typedef void (*cmd_handler)(struct session *s, const char *args, size_t len);

struct smtp_command {
	unsigned states;	/* where the verb is in sequence */
	unsigned flags;
	const char *syntax;	/* for 501 replies */
	const char *sequence;	/* for 503 replies */
	cmd_handler handler;
};

static void cmd_helo(struct session *, const char *, size_t);
static void cmd_ehlo(struct session *, const char *, size_t);
static void cmd_mail(struct session *, const char *, size_t);
static void cmd_rcpt(struct session *, const char *, size_t);
static void cmd_data(struct session *, const char *, size_t);
static void cmd_rset(struct session *, const char *, size_t);
static void cmd_noop(struct session *, const char *, size_t);
static void cmd_quit(struct session *, const char *, size_t);
static void cmd_vrfy(struct session *, const char *, size_t);
static void cmd_expn(struct session *, const char *, size_t);
static void cmd_help(struct session *, const char *, size_t);
static void cmd_starttls(struct session *, const char *, size_t);
static void session_refused(struct session *, const char *);

/* THE command table: one row per verb. */
static const struct smtp_command commands[SMTP_VERB_COUNT] = {
	[SMTP_VERB_HELO] = { ST_ANY_CMD, CMD_NEED_ARGS, "HELO hostname", NULL, cmd_helo },
	[SMTP_VERB_EHLO] = { ST_ANY_CMD, CMD_NEED_ARGS, "EHLO hostname", NULL, cmd_ehlo },
	[SMTP_VERB_MAIL] = { ST(SESSION_READY), CMD_NEED_ARGS, "MAIL FROM:<address>",
		NULL, cmd_mail },
	[SMTP_VERB_RCPT] = { ST(SESSION_MAIL) | ST(SESSION_RCPT), CMD_NEED_ARGS,
		"RCPT TO:<address>", "Need MAIL before RCPT", cmd_rcpt },
	[SMTP_VERB_DATA] = { ST(SESSION_RCPT), CMD_NO_ARGS, "DATA", NULL, cmd_data },
	/* BDAT sequences itself: its octets must be read whatever the state. */
	[SMTP_VERB_BDAT] = { ST_ANY_CMD | ST(SESSION_REFUSED), 0, "BDAT size [LAST]",
		NULL, cmd_bdat },
	[SMTP_VERB_RSET] = { ST_ANY_CMD, CMD_NO_ARGS, "RSET", NULL, cmd_rset },
	[SMTP_VERB_NOOP] = { ST_ANY_CMD, 0, NULL, NULL, cmd_noop },
	[SMTP_VERB_QUIT] = { ST_ANY_CMD | ST(SESSION_REFUSED), CMD_NO_ARGS, "QUIT",
		NULL, cmd_quit },
	[SMTP_VERB_VRFY] = { ST_ANY_CMD, CMD_NEED_ARGS, "VRFY address", NULL, cmd_vrfy },
	[SMTP_VERB_EXPN] = { ST_ANY_CMD, CMD_NEED_ARGS, "EXPN list", NULL, cmd_expn },
	[SMTP_VERB_HELP] = { ST_ANY_CMD, 0, NULL, NULL, cmd_help },
	[SMTP_VERB_STARTTLS] = { ST_ANY_CMD, CMD_NO_ARGS, "STARTTLS", NULL, cmd_starttls },
	[SMTP_VERB_AUTH] = { ST(SESSION_READY), CMD_NEED_ARGS,
		"AUTH mechanism [initial-response]", NULL, cmd_auth },
	[SMTP_VERB_XCLIENT] = { ST(SESSION_INIT) | ST(SESSION_READY), CMD_NEED_ARGS,
		"XCLIENT attribute=value ...", "Error: MAIL transaction in progress",
		cmd_xclient },
};

static const char *const state_names[] = {
	"connect", "init", "ready", "mail", "rcpt", "body", "bdat", "refused",
	"closing",
};

/* session_enter - the one place the state changes (trace-logged) */
void
session_enter(struct session *s, enum session_state st)
{
	if (s->state != st && log_enabled(LOG_DEBUG))
		log_msg(LOG_DEBUG, "session %s: %s -> %s", s->id_str,
		    state_names[s->state], state_names[st]);
	s->state = st;
}

/* ---- connection start ---- */

static void
connect_done(void *owner, sh_verdict v)
{
	struct session *s = owner;
	char text[300];

	switch (v) {
	case SH_CONTINUE:
	case SH_ACCEPT:
		if (s->early_talker && s->srv->cfg->reject_early_talkers) {
			session_reply(s, 554, "5.5.0", "%s Talking before the greeting "
			    "is not allowed", s->info.hostname);
			session_refused(s, "early talker");
			return;
		}
		session_reply_host(s, 220, NULL, " ESMTP smtphook");
		s->greeted = 1;
		session_enter(s, SESSION_INIT);
		return;
	case SH_REJECT:
		snprintf(text, sizeof(text), "%s Access denied", s->info.hostname);
		reply_verdict(s, v, &s->chain.run.reply, 554, "5.7.1", text);
		if (s->conn.life == CONN_OPEN)
			session_refused(s, "refused at connect");
		return;
	default:
		/* At the greeting only 421 can say "not now" (RFC 5321 §3.8). */
		snprintf(text, sizeof(text), "%s Service not available, closing "
		    "connection", s->info.hostname);
		if (s->chain.run.reply.code != 421)
			chain_reply_clear(&s->chain.run.reply);
		/* DISCONNECT keeps its usual 4.7.0 (SPEC §4); TEMPFAIL and a
		 * timed-out verdict say "not available" (4.3.2). */
		reply_verdict(s, SH_DISCONNECT, &s->chain.run.reply, 421,
		    v == SH_DISCONNECT ? "4.7.0" : "4.3.2", text);
		break;
	}
	s->greeted = 1;
	session_close(s, "refused at connect");
}

/*
 * session_refused - after a 554 greeting the client is told nothing but
 * "503" until it says QUIT (RFC 5321 §3.1: the server MUST wait for QUIT).
 * What was pipelined before the greeting is dropped; --max-errors and the
 * idle timeout bound how long a client that never quits is kept.
 */
static void
session_refused(struct session *s, const char *reason)
{
	s->greeted = 1;
	s->conn.close_reason = reason;
	if (s->conn.in != NULL)
		s->conn.in_start = s->conn.in_end;
	session_enter(s, SESSION_REFUSED);
}

/* session_start - run the connect hooks; the greeting follows */
void
session_start(struct session *s)
{
	s->connect_hooks_ran = 1;
	chain_start(&s->chain, SH_HOOK_CONNECT, 0, connect_done, s);
}


/* ---- HELO / EHLO ---- */

static void
helo_done(void *owner, sh_verdict v)
{
	struct session *s = owner;
	char *name = s->chain.run.arg.helo.name;
	int extended = s->chain.run.arg.helo.extended;
	struct config *cfg = s->srv->cfg;
	char caps[512];
	int n;

	if (refused(s, v, 550, "5.7.1", "Greeting rejected")) {
		free(name);
		return;
	}
	if (s->helo_from_xclient) {
		/* XCLIENT_README: its HELO is not reset by the client's */
		free(name);
	} else {
		free(s->helo);
		s->helo = name;
	}
	s->info.helo = s->helo;
	s->esmtp = extended != 0;
	s->info.esmtp = s->esmtp;
	session_enter(s, SESSION_READY);
	cmd_ok(s, extended ? SMTP_VERB_EHLO : SMTP_VERB_HELO);
	if (!extended) {
		session_reply(s, 250, NULL, "%s", s->info.hostname);
		return;
	}
	/* RFC 2034 §3: no enhanced codes on the EHLO reply. */
	n = snprintf(caps, sizeof(caps), "%s\n%s", s->info.hostname,
	    cfg->pipelining ? "PIPELINING\n" : "");
	if (cfg->max_size > 0)
		n += snprintf(caps + n, sizeof(caps) - (size_t)n, "SIZE %llu\n",
		    cfg->max_size);
	else
		n += snprintf(caps + n, sizeof(caps) - (size_t)n, "SIZE\n");
	if (s->srv->tls_ctx != NULL && s->conn.ssl == NULL)
		n += snprintf(caps + n, sizeof(caps) - (size_t)n, "STARTTLS\n");
	if (cfg->auth_mechs != 0 && (s->conn.ssl != NULL || cfg->auth_insecure))
		n += snprintf(caps + n, sizeof(caps) - (size_t)n, "AUTH%s%s\n",
		    (cfg->auth_mechs & CONFIG_AUTH_PLAIN) ? " PLAIN" : "",
		    (cfg->auth_mechs & CONFIG_AUTH_LOGIN) ? " LOGIN" : "");
	if (s->xclient_ok)
		n += snprintf(caps + n, sizeof(caps) - (size_t)n, "%s\n",
		    XCLIENT_CAPABILITY);
	snprintf(caps + n, sizeof(caps) - (size_t)n,
	    "8BITMIME\nSMTPUTF8\nENHANCEDSTATUSCODES\nDSN\nCHUNKING");
	session_reply(s, 250, NULL, "%s", caps);
}

/* arg_copy - a NUL-terminated copy of len octets of the input buffer,
 * which is not terminated (strndup would be correct C, but ASan's
 * strict_string_checks reads its argument up to a NUL: past a reused
 * input buffer's end) */
static char *
arg_copy(const char *p, size_t len)
{
	char *r = malloc(len + 1);

	if (r != NULL) {
		memcpy(r, p, len);
		r[len] = '\0';
	}
	return r;
}

static void
helo_common(struct session *s, const char *args, size_t len, int extended)
{
	char *name;

	if (smtp_check_helo_arg(args, len) < 0) {
		protocol_error(s, 501, "5.5.4", extended ? "Syntax: EHLO hostname" :
		    "Syntax: HELO hostname");
		return;
	}
	if ((name = arg_copy(args, len)) == NULL) {
		session_reply(s, 451, "4.3.0", "Out of memory");
		return;
	}
	/* A new greeting ends any transaction (RFC 5321 §4.1.4). */
	if (s->tx != NULL)
		session_tx_end(s, 0);
	s->bdat.failed = 0;
	if (s->state != SESSION_INIT)
		session_enter(s, SESSION_READY);
	s->chain.run.arg.helo.name = name;
	s->chain.run.arg.helo.extended = extended;
	chain_start(&s->chain, SH_HOOK_HELO, 0, helo_done, s);
}

static void
cmd_helo(struct session *s, const char *args, size_t len)
{
	helo_common(s, args, len, 0);
}

static void
cmd_ehlo(struct session *s, const char *args, size_t len)
{
	helo_common(s, args, len, 1);
}

/* ---- MAIL ---- */

static void
mail_done(void *owner, sh_verdict v)
{
	struct session *s = owner;
	if (refused(s, v, 550, "5.7.1", "Sender rejected")) {
		session_tx_end(s, 0);
		return;
	}
	session_enter(s, SESSION_MAIL);
	cmd_ok(s, SMTP_VERB_MAIL);
	/* An ACCEPTing plugin's 2xx reply is used (smtphook.h sh_reply). */
	reply_verdict(s, SH_ACCEPT, v == SH_ACCEPT ? &s->chain.run.reply : NULL, 250,
	    "2.1.0", "Ok");
}

/* parse_envelope_arg - MAIL/RCPT syntax; replies and returns -1 on error */
static int
parse_envelope_arg(struct session *s, const char *args, size_t len, int is_rcpt,
    struct smtp_mail_arg *a)
{
	enum smtp_parse_status st;
	const char *why = NULL, *enh;
	int code;

	st = smtp_parse_mail_arg(args, len, is_rcpt, a, &why);
	if (st == SMTP_PARSE_OK)
		return 0;
	code = smtp_parse_status_code(st, is_rcpt, &enh);
	protocol_error(s, code, enh, why != NULL ? why : "Syntax error");
	return -1;
}

static void
cmd_mail(struct session *s, const char *args, size_t len)
{
	struct smtp_mail_arg a;
	struct config *cfg = s->srv->cfg;

	if (cfg->require_tls && s->conn.ssl == NULL) {
		protocol_error(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		return;
	}
	if (parse_envelope_arg(s, args, len, 0, &a) < 0)
		return;
	/* A new transaction: the client has given up a failed BDAT one. */
	s->bdat.failed = 0;
	if (a.body == SMTP_BODY_BINARYMIME) {
		protocol_error(s, 555, "5.5.4", "BODY=BINARYMIME is not supported");
		return;
	}
	if (cfg->max_size > 0 && a.has_size && a.size > cfg->max_size) {
		session_reply(s, 552, "5.3.4", "Message size exceeds fixed maximum "
		    "message size");
		return;
	}
	if (!a.smtputf8 && smtp_has_8bit(a.addr, a.addr_len)) {
		session_reply(s, 553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
		return;
	}
	if ((s->tx = tx_new(s->srv->nplugins, s->srv->id_salt, s->id_str,
	    s->transactions)) != NULL) {
		s->tx->spares = &s->srv->tx_spares;
		s->transactions++;
		s->info.transactions = s->transactions;
	}
	if (s->tx == NULL || tx_set_sender(s->tx, &a) < 0) {
		session_tx_end(s, 0);
		session_reply(s, 451, "4.3.0", "Out of memory, try again later");
		return;
	}
	chain_message_begin(&s->chain);
	s->chain.run.arg.addr = s->tx->sender;
	chain_start(&s->chain, SH_HOOK_MAIL, 0, mail_done, s);
}

/* ---- RCPT ---- */

static void
rcpt_done(void *owner, sh_verdict v)
{
	struct session *s = owner;
	sh_address *rcpt = s->chain.run.arg.addr;

	if (refused(s, v, 550, "5.7.1", "Recipient rejected")) {
		free(rcpt);
		return;
	}
	if (tx_append_rcpt(s->tx, rcpt) < 0) {
		free(rcpt);
		session_reply(s, 451, "4.3.0", "Out of memory, try again later");
		return;
	}
	session_enter(s, SESSION_RCPT);
	cmd_ok(s, SMTP_VERB_RCPT);
	reply_verdict(s, SH_ACCEPT, v == SH_ACCEPT ? &s->chain.run.reply : NULL, 250,
	    "2.1.5", "Ok");
}

static void
cmd_rcpt(struct session *s, const char *args, size_t len)
{
	struct smtp_mail_arg a;
	sh_address *rcpt;

	if (parse_envelope_arg(s, args, len, 1, &a) < 0)
		return;
	if (s->tx->nrcpts >= s->srv->cfg->max_recipients) {
		session_reply(s, 452, "4.5.3", "Too many recipients");
		return;
	}
	if (!s->tx->smtputf8 && smtp_has_8bit(a.addr, a.addr_len)) {
		session_reply(s, 553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
		return;
	}
	if ((rcpt = address_new(&a)) == NULL) {
		session_reply(s, 451, "4.3.0", "Out of memory, try again later");
		return;
	}
	s->chain.run.arg.addr = rcpt;
	chain_start(&s->chain, SH_HOOK_RCPT, 0, rcpt_done, s);
}

/* ---- DATA and the body ---- */

static void
data_done(void *owner, sh_verdict v)
{
	struct session *s = owner;

	if (refused(s, v, 554, "5.7.1", "Message refused")) {
		session_tx_end(s, 0);
		session_enter(s, SESSION_READY);
		return;
	}
	if (body_begin(&s->body, 0) < 0) {
		session_reply(s, 451, "4.3.0", "Out of memory, try again later");
		session_tx_end(s, 0);
		session_enter(s, SESSION_READY);
		return;
	}
	s->pipelined_ahead = 0;
	cmd_ok(s, SMTP_VERB_DATA);
	session_enter(s, SESSION_BODY);
	session_reply(s, 354, NULL, "%s", "End data with <CR><LF>.<CR><LF>");
}

static void
cmd_data(struct session *s, const char *args, size_t len)
{
	(void)args, (void)len;
	/* Received: first, before anything the data hook adds (sh_tx_trace). */
	if (s->tx->trace == NULL && session_add_received(s) < 0) {
		session_reply(s, 451, "4.3.0", "Out of memory, try again later");
		return;
	}
	chain_start(&s->chain, SH_HOOK_DATA, 0, data_done, s);
}

/* body_disconnect - a plugin answered DISCONNECT mid-body */
static void
body_disconnect(void *owner)
{
	struct session *s = owner;
	char text[300];

	snprintf(text, sizeof(text), "%s Closing connection", s->info.hostname);
	reply_verdict(s, SH_DISCONNECT, &s->chain.run.reply, 421, "4.7.0", text);
}

static const struct body_ops session_body_ops = {
	.disconnect = body_disconnect,
};

void
eom_done(void *owner, sh_verdict v)
{
	struct session *s = owner;
	struct log_line l;
	char text[64];
	struct strbuf b;

	switch (v) {
	case SH_ACCEPT:
		sb_init(&b, text, sizeof(text));
		SB_LIT(&b, "Ok: queued as ");
		sb_puts(&b, s->tx->id);
		reply_verdict(s, v, &s->chain.run.reply, 250, "2.0.0", sb_cstr(&b));
		s->accepted++;
		s->srv->stats.messages++;
		/* the line of every message: no printf (issue 16) */
		if (log_begin(&l, LOG_INFO)) {
			SB_LIT(&l.b, "session ");
			sb_puts(&l.b, s->id_str);
			SB_LIT(&l.b, ": message ");
			sb_puts(&l.b, s->tx->id);
			SB_LIT(&l.b, " accepted by plugin ");
			sb_puts(&l.b, s->srv->plugins[s->chain.run.decider].name);
			SB_LIT(&l.b, ", ");
			sb_u64(&l.b, s->tx->body_size);
			SB_LIT(&l.b, " octets, ");
			sb_u64(&l.b, s->tx->nrcpts);
			SB_LIT(&l.b, " recipient(s)");
			log_end(&l);
		}
		session_tx_end(s, 1);
		break;
	case SH_CONTINUE:
		/* SPEC §4: a message nobody took is never confirmed. */
		session_reply(s, 451, "4.3.0", "No plugin accepted the message, "
		    "try again later");
		session_tx_end(s, 0);
		break;
	default:
		refused(s, v, 550, "5.7.1", "Message rejected");
		session_tx_end(s, 0);
		break;
	}
	if (s->state == SESSION_BODY || s->state == SESSION_BDAT)
		session_enter(s, SESSION_READY);
}

/* body_end - the end marker was consumed: the final reply */
static void
body_end(struct session *s)
{
	/* A command in the same batch as the end marker did not wait. */
	s->pipelined_ahead = s->conn.in_start < s->conn.in_end;
	if (s->body.phase == BODY_DRAINING) {
		struct chain_reply r;
		sh_verdict v = body_take_drain(&s->body, &r);

		reply_verdict(s, v, &r, v == SH_TEMPFAIL ? 451 : 550,
		    v == SH_TEMPFAIL ? "4.7.1" : "5.7.1",
		    v == SH_TEMPFAIL ? "Temporary failure" : "Message rejected");
		chain_reply_clear(&r);
		session_tx_end(s, 0);
		if (s->state == SESSION_BODY)
			session_enter(s, SESSION_READY);
		return;
	}
	if (s->srv->cfg->bare_lf == DATA_BARE_REJECT && body_saw_bare(&s->body)) {
		/* RFC 5321 §2.3.8; the decoder flags them in both modes, and
		 * with --bare-lf=normalize they are already CRLF. */
		session_reply(s, 550, "5.5.2", "Message contains a bare CR or LF; "
		    "lines must end with CRLF");
		session_tx_end(s, 0);
		session_enter(s, SESSION_READY);
		return;
	}
	chain_start(&s->chain, SH_HOOK_EOM, 0, eom_done, s);
}

/* body_step - the next piece of a DATA body (body.c) */
static enum step
body_step(struct session *s)
{
	switch (body_data_step(&s->body)) {
	case BODY_NEED_INPUT:
		return STEP_NEED_INPUT;
	case BODY_WAIT:
		return STEP_WAIT;
	case BODY_END:
		body_end(s);
		return STEP_CONTINUE;
	default:
		return STEP_CONTINUE;
	}
}

/* ---- the other commands ---- */

static void
cmd_rset(struct session *s, const char *args, size_t len)
{
	(void)args, (void)len;
	if (s->tx != NULL)
		session_tx_end(s, 0);
	s->bdat.failed = 0;
	if (s->state != SESSION_INIT)
		session_enter(s, SESSION_READY);
	cmd_ok(s, SMTP_VERB_RSET);
	session_reply(s, 250, "2.0.0", "Ok");
}

static void
cmd_noop(struct session *s, const char *args, size_t len)
{
	(void)args, (void)len;
	cmd_ok(s, SMTP_VERB_NOOP);
	session_reply(s, 250, "2.0.0", "Ok");
}

static void
cmd_quit(struct session *s, const char *args, size_t len)
{
	(void)args, (void)len;
	cmd_ok(s, SMTP_VERB_QUIT);
	session_reply_host(s, 221, "2.0.0", " Bye");
	session_close(s, "quit");
}

static void
cmd_help(struct session *s, const char *args, size_t len)
{
	(void)args, (void)len;
	cmd_ok(s, SMTP_VERB_HELP);
	session_reply(s, 214, "2.0.0", "Commands: HELO EHLO MAIL RCPT DATA RSET "
	    "NOOP QUIT VRFY EXPN HELP\nSee RFC 5321");
}

static void
vrfy_done(void *owner, sh_verdict v)
{
	struct session *s = owner;
	int expn = s->chain.run.hook == SH_HOOK_EXPN;

	free(s->chain.run.arg.text);
	s->chain.run.arg.text = NULL;
	if (v == SH_ACCEPT) {
		cmd_ok(s, expn ? SMTP_VERB_EXPN : SMTP_VERB_VRFY);
		reply_verdict(s, v, &s->chain.run.reply, 250, "2.1.5", "Ok");
	} else if (v == SH_CONTINUE) {
		/* RFC 5321 §3.5.3: 252 when we will not say. */
		cmd_ok(s, expn ? SMTP_VERB_EXPN : SMTP_VERB_VRFY);
		if (expn)
			session_reply(s, 502, "5.5.1", "EXPN not available");
		else
			session_reply(s, 252, "2.5.0", "Cannot VRFY user, but will "
			    "accept message and attempt delivery");
	} else {
		refused(s, v, 550, "5.1.1", "Not recognised");
	}
}

static void
vrfy_common(struct session *s, const char *args, size_t len, sh_hook_id hook)
{
	char *text = arg_copy(args, len);

	if (text == NULL) {
		session_reply(s, 451, "4.3.0", "Out of memory");
		return;
	}
	s->chain.run.arg.text = text;
	chain_start(&s->chain, hook, 0, vrfy_done, s);
}

static void
cmd_vrfy(struct session *s, const char *args, size_t len)
{
	vrfy_common(s, args, len, SH_HOOK_VRFY);
}

static void
cmd_expn(struct session *s, const char *args, size_t len)
{
	vrfy_common(s, args, len, SH_HOOK_EXPN);
}

/*
 * cmd_starttls - RFC 3207.  The "220" goes out in plaintext; everything
 * the client pipelined after STARTTLS is thrown away (CVE-2011-0411: it
 * would otherwise be taken as if it came over TLS), and nothing more is
 * read as plaintext.  session_event_end starts the handshake once the
 * reply is flushed.
 */
static void
cmd_starttls(struct session *s, const char *args, size_t len)
{
	(void)args, (void)len;
	if (s->srv->tls_ctx == NULL) {
		protocol_error(s, 502, "5.5.1", "Command not implemented");
		return;
	}
	if (s->conn.ssl != NULL) {
		protocol_error(s, 503, "5.5.1", "TLS already active");
		return;
	}
	cmd_ok(s, SMTP_VERB_STARTTLS);
	session_reply(s, 220, "2.0.0", "Ready to start TLS");
	if (s->conn.in_start < s->conn.in_end)
		log_msg(LOG_WARN, "session %s: discarding %zu octets pipelined after "
		    "STARTTLS", s->id_str, s->conn.in_end - s->conn.in_start);
	s->conn.in_start = s->conn.in_end;
	conn_start_tls_after_flush(&s->conn, s->srv->tls_ctx);
}

/*
 * session_tls_up - the handshake is done.  After STARTTLS the session
 * starts over (RFC 3207 §4.2: forget the HELO, the transaction, anything
 * received before); after implicit TLS the greeting follows.
 */
static void
session_tls_up(void *owner)
{
	struct session *s = owner;
	struct tls_names *n = s->conn.tls_names;

	s->info.tls = 1;
	s->info.tls_protocol = n->protocol;
	s->info.tls_cipher = n->cipher;
	if (n->subject[0] != '\0')
		s->info.tls_peer_subject = n->subject;
	if (!s->greeted) {
		session_start(s);
		return;
	}
	if (s->tx != NULL)
		session_tx_end(s, 0);
	free(s->helo);
	s->helo = NULL;
	s->info.helo = NULL;
	s->esmtp = 0;
	s->info.esmtp = 0;
	/* An AUTH done in plaintext (--auth-insecure) is forgotten too. */
	free(s->auth_user);
	s->auth_user = NULL;
	s->info.auth_user = NULL;
	if (s->conn.in != NULL)
		s->conn.in_start = s->conn.in_end = 0;
	session_enter(s, SESSION_INIT);
}

/* sequence_error - the 503 text for a verb out of sequence */
static void
sequence_error(struct session *s, enum smtp_verb verb)
{
	const char *text = "Bad sequence of commands";

	if (s->state == SESSION_REFUSED) {
		protocol_error(s, 503, "5.5.1", "Service refused; only QUIT is "
		    "accepted");
		return;
	}
	if (s->state == SESSION_BDAT && (verb == SMTP_VERB_MAIL ||
	    verb == SMTP_VERB_RCPT || verb == SMTP_VERB_DATA)) {
		/* RFC 3030 §2: DATA after BDAT is 503; the transaction stays
		 * as it is, the client has to RSET (or end it with LAST). */
		protocol_error(s, 503, "5.5.1", verb == SMTP_VERB_MAIL ?
		    "MAIL after BDAT" : verb == SMTP_VERB_RCPT ?
		    "RCPT after BDAT" : "DATA after BDAT");
		return;
	}
	switch (verb) {
	case SMTP_VERB_MAIL:
		text = s->state == SESSION_INIT ? "Send HELO/EHLO first" :
		    "Nested MAIL command";
		break;
	case SMTP_VERB_RCPT:
		text = s->state == SESSION_INIT ? "Send HELO/EHLO first" :
		    "Need MAIL before RCPT";
		break;
	case SMTP_VERB_DATA:
		if (s->state == SESSION_MAIL) {
			/* RFC 5321 §3.3: DATA with no valid recipient. */
			protocol_error(s, 554, "5.5.1", "No valid recipients");
			return;
		}
		text = s->state == SESSION_INIT ? "Send HELO/EHLO first" :
		    "Need RCPT before DATA";
		break;
	default:
		break;
	}
	protocol_error(s, 503, "5.5.1", text);
}

/*
 * command_step - take one command line from the input buffer.  Lines
 * longer than 2048 octets are answered 500 5.5.2 and skipped up to their
 * end (SPEC §3).  A line may end in CRLF or a bare LF (lenient, as
 * Postfix; only the DATA end is strict).
 */
static enum step
command_step(struct session *s)
{
	unsigned char *start, *lf;
	size_t avail, linelen, len, args_len;
	enum smtp_verb verb;
	const char *args;
	const struct smtp_command *cmd;

	if (s->conn.in == NULL || s->conn.in_start == s->conn.in_end)
		return STEP_NEED_INPUT;
	start = s->conn.in + s->conn.in_start;
	avail = s->conn.in_end - s->conn.in_start;
	lf = memchr(start, '\n', avail < SESSION_LINE_MAX ? avail : SESSION_LINE_MAX);
	if (s->discard_line) {
		lf = memchr(start, '\n', avail);
		s->conn.in_start = lf != NULL ? s->conn.in_start + (size_t)(lf - start) + 1 :
		    s->conn.in_end;
		if (lf != NULL) {
			s->discard_line = 0;
			conn_touch(&s->conn);
		}
		return lf != NULL ? STEP_CONTINUE : STEP_NEED_INPUT;
	}
	if (lf == NULL) {
		if (avail < SESSION_LINE_MAX)
			return STEP_NEED_INPUT;
		s->discard_line = 1;
		s->counts[SMTP_VERB_UNKNOWN][1]++;
		if (auth_awaits_answer(s))
			auth_abort(s);	/* an over-long answer ends the AUTH */
		protocol_error(s, 500, "5.5.2", "Line too long");
		return STEP_CONTINUE;
	}
	linelen = (size_t)(lf - start) + 1;
	s->conn.in_start += linelen;
	/* A complete line: the next command's --timeout starts now. */
	conn_touch(&s->conn);
	len = linelen - 1;
	if (len > 0 && start[len - 1] == '\r')
		len--;
	if (auth_awaits_answer(s)) {
		/* The answer to a 334: credentials, never logged. */
		auth_response(s, (const char *)start, len);
		return STEP_CONTINUE;
	}
	verb = smtp_parse_verb((const char *)start, len, &args, &args_len);
	s->counts[verb][1]++;
	if (log_enabled(LOG_DEBUG)) {
		char esc[256];
		/* An AUTH initial response is a credential: log the verb only. */
		log_escape(esc, sizeof(esc), (const char *)start,
		    verb == SMTP_VERB_AUTH ? 4 : len);
		log_msg(LOG_DEBUG, "session %s: < %s", s->id_str, esc);
	}
	if (!s->srv->cfg->pipelining) {
		/* Without PIPELINING a client must wait for each reply: a
		 * command that came in the same batch as the one before it
		 * was sent too early (RFC 2920 §3).  Each still gets exactly
		 * one reply, so the client stays in step. */
		int early = s->pipelined_ahead;

		s->pipelined_ahead = s->conn.in_start < s->conn.in_end;
		if (early && verb == SMTP_VERB_BDAT) {
			/* Its octets follow all the same: read them first. */
			bdat_refuse(s, args, args_len, 503, "5.5.0", "Improper use "
			    "of SMTP command pipelining");
			return STEP_CONTINUE;
		}
		if (early && verb != SMTP_VERB_QUIT) {
			protocol_error(s, 503, "5.5.0", "Improper use of SMTP "
			    "command pipelining");
			return STEP_CONTINUE;
		}
	}
	if (verb == SMTP_VERB_UNKNOWN) {
		protocol_error(s, 500, "5.5.1", len == 0 ? "Empty command" :
		    "Command unrecognized");
		return STEP_CONTINUE;
	}
	cmd = &commands[verb];
	if (!(cmd->states & ST(s->state))) {
		sequence_error(s, verb);
		return STEP_CONTINUE;
	}
	if ((cmd->flags & CMD_NO_ARGS) && args_len > 0) {
		char text[64];
		snprintf(text, sizeof(text), "Syntax: %s", cmd->syntax);
		protocol_error(s, 501, "5.5.4", text);
		return STEP_CONTINUE;
	}
	if ((cmd->flags & CMD_NEED_ARGS) && args_len == 0) {
		char text[64];
		snprintf(text, sizeof(text), "Syntax: %s", cmd->syntax);
		protocol_error(s, 501, "5.5.4", text);
		return STEP_CONTINUE;
	}
	cmd->handler(s, args, args_len);
	return STEP_CONTINUE;
}

/* session_eof_reason - see session.h */
const char *
session_eof_reason(const struct session *s, const char *otherwise)
{
	if (s->state == SESSION_BODY)
		return "client closed during DATA";
	if (s->bdat.reading)
		return "client closed during BDAT";
	if (s->conn.in != NULL && s->conn.in_start < s->conn.in_end)
		return "client closed mid-command";
	return otherwise;
}

/*
 * session_eof - the client has shut down its sending side (a half-close,
 * or a close we cannot tell from one) and every complete command it sent
 * has been acted on.  A command line cut off by the EOF is dropped; a
 * message body or BDAT chunk cut off is a lost transaction (session_free
 * resets it: nothing is stored).  Replies already queued still go out
 * (RFC 5321 §4.1.1.10 has the client read them), then the connection
 * closes; a client that is gone entirely shows as a failed write.
 */
static void
session_eof(struct session *s)
{
	const char *why = session_eof_reason(s, "client closed");

	if (s->conn.in != NULL)
		s->conn.in_start = s->conn.in_end;
	if (s->conn.out_sent == s->conn.out_len) {
		if (s->conn.close_reason == NULL)
			s->conn.close_reason = why;
		s->conn.life = CONN_DEAD;
		return;
	}
	session_close(s, why);
}

/*
 * session_process - process buffered input until we need more, must wait
 * for a verdict, or the client is not reading our replies.
 */
void
session_process(struct session *s)
{
	struct server *srv = s->srv;
	enum step st = STEP_NEED_INPUT;

	while (s->conn.life == CONN_OPEN) {
		/* A verdict, a TLS handshake to come or in progress, a held
		 * AUTH reply: nothing to do until it is over. */
		if (s->chain.run.active || s->conn.tls == CONN_TLS_AFTER_FLUSH ||
		    s->conn.tls == CONN_TLS_HANDSHAKE || s->auth == AUTH_HELD) {
			st = STEP_WAIT;
			break;
		}
		if (srv->shutting_down && s->tx == NULL && !s->bdat.reading &&
		    (s->state == SESSION_INIT || s->state == SESSION_READY ||
		    s->state == SESSION_REFUSED)) {
			session_reply(s, 421, "4.3.2", "%s Service shutting down, "
			    "closing connection", s->info.hostname);
			session_close(s, "shutdown");
			break;
		}
		if (s->conn.out_len - s->conn.out_sent >= SESSION_OUTBUF_HIGH ||
		    s->state == SESSION_CONNECT) {
			st = STEP_WAIT;
			break;
		}
		st = s->bdat.reading ? bdat_step(s) : s->state == SESSION_BODY ?
		    body_step(s) : command_step(s);
		if (st != STEP_CONTINUE)
			break;
	}
	/* At EOF only what can never complete ends the session: a pending
	 * verdict, a held-back AUTH reply or a reply backlog is waited for
	 * (the plugin's timeout= and --timeout still bound the wait). */
	if (s->conn.eof && s->conn.life == CONN_OPEN &&
	    (st == STEP_NEED_INPUT || s->conn.tls == CONN_TLS_AFTER_FLUSH))
		session_eof(s);
}

/* ---- what the connection and the chain report (conn.h, chain.h) ---- */

static void
on_input(void *owner)
{
	struct session *s = owner;

	/* --timeout bounds each read of a message body or BDAT chunk (RFC
	 * 5321 §4.5.3.2), but a whole command line: octets dripped into a
	 * command do not extend its deadline (slowloris); command_step()
	 * restarts it per line. */
	if (s->state == SESSION_BODY || s->bdat.reading)
		conn_touch(&s->conn);
	if (s->proxy_wait) {
		proxy_input(s);
		if (s->proxy_wait || s->conn.life != CONN_OPEN)
			return;
		/* what came after the header came before the greeting */
		if (s->conn.in == NULL || s->conn.in_start == s->conn.in_end)
			return;
	}
	if (!s->greeted)
		s->early_talker = s->info.early_talker = 1;
	session_process(s);
}

/*
 * on_eof - what is buffered is still acted on, a pending verdict still
 * completes (session_process ends the session once nothing more can be
 * done) - unless no one is left to answer; session_free() then cancels
 * the verdict.
 */
static void
on_eof(void *owner)
{
	struct session *s = owner;

	session_process(s);
	if (s->conn.life == CONN_OPEN &&
	    conn_peer_gone(&s->conn))
		conn_kill(&s->conn, session_eof_reason(s, "client gone"));
}

static void
on_drained(void *owner)
{
	session_process(owner);
}

/* on_idle - --timeout without a word; a plugin's own timeout= covers a
 * pending verdict, so then we are the slow one */
static int
on_idle(void *owner)
{
	struct session *s = owner;

	if (chain_waiting(&s->chain))
		return 1;
	session_reply(s, 421, "4.4.2", "%s Timeout, closing connection",
	    s->info.hostname);
	session_close(s, "timeout");
	return 0;
}

/* on_paused - the greeting pause is over */
static void
on_paused(void *owner)
{
	struct session *s = owner;

	if (s->proxy_wait) {
		proxy_timeout(s);
		return;
	}
	session_start(s);
	session_process(s);
}

static void
on_no_buffer(void *owner)
{
	struct session *s = owner;

	session_reply(s, 421, "4.3.0", "%s Out of memory, closing",
	    s->info.hostname);
	session_close(s, "oom");
}

/* on_input_hold - the body is read in place: its pieces are slices of
 * the input buffer until every plugin has seen them */
static unsigned
on_input_hold(void *owner)
{
	struct session *s = owner;

	if (s->chain.run.active || body_busy(&s->body))
		return CONN_HOLD_KEEP | CONN_HOLD_PIN;
	if (s->state == SESSION_BODY || s->bdat.reading)
		return CONN_HOLD_KEEP;
	return 0;
}

static void
on_event_end(void *owner)
{
	session_event_end(owner);
}

static const struct conn_events session_conn_events = {
	.input = on_input, .eof = on_eof, .drained = on_drained,
	.idle = on_idle, .paused = on_paused, .tls_up = session_tls_up,
	.no_buffer = on_no_buffer, .input_hold = on_input_hold,
	.event_end = on_event_end,
};

_Static_assert(sizeof(struct host_ctx) <= CHAIN_CTX_STORAGE,
    "struct host_ctx must fit the chain's context storage");

/* chain_ctx - the context of one hook call, in the chain's storage */
static sh_ctx *
chain_ctx(void *owner, void *storage, size_t plugin, const char *hook_name,
    struct chain_reply *reply, int verdict_hook)
{
	struct session *s = owner;
	struct host_ctx *c = storage;

	host_ctx_init(c, s->srv, &s->srv->plugins[plugin], &s->hc, hook_name);
	c->reply = reply;
	c->verdict_hook = verdict_hook;
	return &c->pub;
}

/* chain_resumed - a late verdict or a timeout moved the walk on */
static void
chain_resumed(void *owner)
{
	struct session *s = owner;

	session_process(s);
	session_event_end(s);
}

static const struct chain_ops session_chain_ops = {
	.ctx = chain_ctx, .resumed = chain_resumed,
};

/* How a connection starts (session_new). */
enum session_start { START_PLAIN, START_TLS, START_PROXIED };

static void session_new(struct server *srv, int fd, const struct sockaddr *peer,
    enum session_start how);

void
session_accept(struct server *srv, int fd, const struct sockaddr *peer,
    socklen_t peerlen)
{
	(void)peerlen;
	session_new(srv, fd, peer, START_PLAIN);
}

void
session_accept_on(struct server *srv, int fd, const struct sockaddr *peer,
    socklen_t peerlen, int implicit_tls)
{
	(void)peerlen;
	session_new(srv, fd, peer, implicit_tls ? START_TLS : START_PLAIN);
}

void
session_accept_proxied(struct server *srv, int fd, const struct sockaddr *peer,
    socklen_t peerlen)
{
	(void)peerlen;
	session_new(srv, fd, peer, START_PROXIED);
}

/* session_greet - the greeting pause, or the connect hooks at once */
void
session_greet(struct session *s)
{
	/* XCLIENT is judged on this peer, not on the ones it names. */
	s->xclient_ok = cidr_list_match(&s->srv->cfg->xclient, s->peer_key);
	if (s->srv->cfg->greet_pause > 0)
		conn_pause(&s->conn, s->srv->cfg->greet_pause);
	else
		session_start(s);
}

/* session_new - a session for fd; the server counted the peer against
 * the per-IP limit unless the connection is proxied */
static void
session_new(struct server *srv, int fd, const struct sockaddr *peer,
    enum session_start how)
{
	struct session *s;
	struct log_line l;
	struct sockaddr_storage local;
	socklen_t locallen = sizeof(local);

	s = calloc(1, sizeof(*s));
	if (s == NULL || (srv->nplugins > 0 &&
	    (s->slots = calloc(srv->nplugins, sizeof(*s->slots))) == NULL)) {
		free(s);
		close(fd);
		return;
	}
	s->srv = srv;
	s->id = ++srv->next_session_id;
	snprintf(s->log_id, sizeof(s->log_id), "session %06llX",
	    (unsigned long long)s->id);
	s->id_str = s->log_id + strlen("session ");
	s->hc = (struct host_conn){ .id = s->id, .log_id = s->log_id,
	    .info = &s->info, .tx = &s->tx, .slots = s->slots,
	    .chain = &s->chain };
	if (u64map_put(&srv->sessions, s->id, &s->hc) < 0) {
		free(s->slots);
		free(s);
		close(fd);
		return;
	}
	sockaddr_key(peer, s->peer_key);
	sockaddr_text(peer, s->peer_addr, sizeof(s->peer_addr), &s->peer_port);
	if (getsockname(fd, (struct sockaddr *)&local, &locallen) == 0)
		sockaddr_text((struct sockaddr *)&local, s->local_addr,
		    sizeof(s->local_addr), &s->local_port);
	s->next = srv->session_list;
	if (s->next != NULL)
		s->next->prev = s;
	srv->session_list = s;
	srv->nsessions++;
	srv->stats.connections++;
	s->started = ev_now(srv->loop);
	s->info = (sh_session_info){
		.size = sizeof(sh_session_info), .id = s->id, .id_str = s->id_str,
		.peer_addr = s->peer_addr, .peer_port = s->peer_port,
		.local_addr = s->local_addr, .local_port = s->local_port,
		.hostname = srv->cfg->hostname,
	};
	if (log_begin(&l, LOG_INFO)) {
		SB_LIT(&l.b, "session ");
		sb_puts(&l.b, s->id_str);
		SB_LIT(&l.b, ": connect from [");
		sb_puts(&l.b, s->peer_addr);
		SB_LIT(&l.b, "]:");
		sb_u64(&l.b, s->peer_port);
		SB_LIT(&l.b, " to [");
		sb_puts(&l.b, s->local_addr);
		SB_LIT(&l.b, "]:");
		sb_u64(&l.b, s->local_port);
		log_end(&l);
	}
	conn_init(&s->conn, fd, srv->loop, &srv->inbufs, srv->cfg->timeout,
	    &session_conn_events, s, s->log_id);
	chain_init(&s->chain, srv->plugins, srv->nplugins, srv->loop,
	    &session_chain_ops, s, s->log_id);
	body_init(&s->body, &s->chain, &s->conn, &s->tx, &session_body_ops, s,
	    s->log_id, srv->cfg->max_size, srv->cfg->bare_lf);
	s->chain.metrics = &srv->metrics;
	s->body.hs_spares = &srv->hs_spares;
	s->per_ip_counted = how != START_PROXIED;
	if (how == START_TLS) {
		/* RFC 8314: the handshake comes first; the connect hooks and
		 * the greeting follow in session_tls_up. */
		if (conn_start_tls(&s->conn, srv->tls_ctx) < 0)
			conn_kill(&s->conn, "TLS setup failed");
	} else if (how == START_PROXIED) {
		/* Nothing is said until the header names the client. */
		s->proxy_wait = 1;
		conn_pause(&s->conn, PROXY_HEADER_TIMEOUT);
	} else {
		session_greet(s);
	}
	session_process(s);
	session_event_end(s);
}

void
session_shutdown(struct session *s)
{
	if (s->conn.tls == CONN_TLS_HANDSHAKE) {
		/* No SMTP yet on this channel (and no reply can go out in
		 * plaintext): do not wait for the handshake to finish. */
		s->conn.life = CONN_DEAD;
		s->conn.close_reason = "shutdown during TLS handshake";
	} else if (!s->chain.run.active && s->tx == NULL && s->conn.life == CONN_OPEN &&
	    s->state != SESSION_BODY && !s->bdat.reading) {
		session_reply(s, 421, "4.3.2", "%s Service shutting down, closing "
		    "connection", s->info.hostname);
		session_close(s, "shutdown");
	}
	/* Others get their 421 when the transaction ends
	 * (session_process checks srv->shutting_down). */
	session_event_end(s);
}

void
session_force_close(struct session *s)
{
	if (s->conn.life == CONN_OPEN) {
		session_reply(s, 421, "4.3.2", "%s Service shutting down, closing "
		    "connection", s->info.hostname);
		session_close(s, "shutdown timeout");
	}
	conn_flush(&s->conn);
	s->conn.life = CONN_DEAD;
	session_event_end(s);
}

/* session_log_close - the one summary line per connection */
static void
session_log_close(struct session *s)
{
	static const enum smtp_verb order[] = { SMTP_VERB_HELO, SMTP_VERB_EHLO,
	    SMTP_VERB_MAIL, SMTP_VERB_RCPT, SMTP_VERB_DATA, SMTP_VERB_BDAT,
	    SMTP_VERB_RSET, SMTP_VERB_NOOP, SMTP_VERB_VRFY, SMTP_VERB_EXPN,
	    SMTP_VERB_HELP, SMTP_VERB_STARTTLS, SMTP_VERB_AUTH, SMTP_VERB_XCLIENT,
	    SMTP_VERB_QUIT, SMTP_VERB_UNKNOWN };
	char counters[512], helo[128] = "";
	struct strbuf cb;
	struct log_line l;
	size_t i, n;
	unsigned ok = 0, total = 0;
	double secs;
	uint64_t ms;

	if (!log_begin(&l, LOG_INFO))
		return;
	/* one line per session, so no printf (issue 16) */
	sb_init(&cb, counters, sizeof(counters));
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		enum smtp_verb v = order[i];
		unsigned *c = s->counts[v];
		size_t at = cb.len;

		if (c[1] == 0)
			continue;
		ok += c[0];
		total += c[1];
		sb_putc(&cb, ' ');
		sb_puts(&cb, v == SMTP_VERB_UNKNOWN ? "unknown" : smtp_verb_str(v));
		for (n = at + 1; n < cb.len; n++)
			if (counters[n] >= 'A' && counters[n] <= 'Z')
				counters[n] = (char)(counters[n] - 'A' + 'a');
		sb_putc(&cb, '=');
		if (c[0] != c[1]) {
			sb_u64(&cb, c[0]);
			sb_putc(&cb, '/');
		}
		sb_u64(&cb, c[1]);
	}
	if (s->helo != NULL)
		log_escape(helo, sizeof(helo), s->helo, strlen(s->helo));
	secs = ev_now(s->srv->loop) - s->started;
	ms = secs > 0 ? (uint64_t)(secs * 1000 + 0.5) : 0;
	SB_LIT(&l.b, "session ");
	sb_puts(&l.b, s->id_str);
	SB_LIT(&l.b, ": disconnect from ");
	sb_puts(&l.b, helo[0] ? helo : "unknown");
	sb_putc(&l.b, '[');
	sb_puts(&l.b, s->peer_addr);
	SB_LIT(&l.b, "]:");
	sb_u64(&l.b, s->peer_port);
	sb_putn(&l.b, counters, cb.len);
	SB_LIT(&l.b, " commands=");
	sb_u64(&l.b, ok);
	sb_putc(&l.b, '/');
	sb_u64(&l.b, total);
	SB_LIT(&l.b, " accepted=");
	sb_u64(&l.b, s->accepted);
	SB_LIT(&l.b, " errors=");
	sb_u64(&l.b, s->errors);
	SB_LIT(&l.b, " reason=\"");
	sb_puts(&l.b, s->conn.close_reason != NULL ? s->conn.close_reason : "closed");
	SB_LIT(&l.b, "\" duration=");
	sb_u64(&l.b, ms / 1000);
	sb_putc(&l.b, '.');
	sb_putc(&l.b, (char)('0' + ms / 100 % 10));
	sb_putc(&l.b, (char)('0' + ms / 10 % 10));
	sb_putc(&l.b, (char)('0' + ms % 10));
	sb_putc(&l.b, 's');
	log_end(&l);
}

/* run_arg_release - free what an abandoned walk's arguments own */
static void
run_arg_release(struct session *s)
{
	switch (s->chain.run.hook) {
	case SH_HOOK_HELO:
		free(s->chain.run.arg.helo.name);
		break;
	case SH_HOOK_RCPT:
		free(s->chain.run.arg.addr);
		break;
	case SH_HOOK_VRFY:
	case SH_HOOK_EXPN:
		free(s->chain.run.arg.text);
		break;
	case SH_HOOK_AUTH:
		auth_args_free(s);
		break;
	default:
		break;
	}
}

/*
 * session_free - THE teardown path: abandon a pending verdict, end the
 * transaction (reset), tell the plugins (disconnect), destroy their
 * per-connection state, stop watchers, close the fd, free the memory.
 */
static void
session_free(struct session *s)
{
	struct server *srv = s->srv;
	size_t i;

	if (chain_cancel(&s->chain))
		run_arg_release(s);
	if (s->tx != NULL)
		session_tx_end(s, 0);
	body_reset(&s->body);		/* nothing left after a tx end: idempotent */
	if (s->connect_hooks_ran)
		chain_notify_disconnect(&s->chain);
	for (i = 0; i < srv->nplugins; i++)
		if (s->slots[i].data != NULL && s->slots[i].destroy != NULL)
			s->slots[i].destroy(s->slots[i].data);
	session_log_close(s);
	chain_destroy(&s->chain);
	auth_session_free(s);
	free(s->auth_user);
	conn_close(&s->conn);
	u64map_del(&srv->sessions, s->id);
	if (s->per_ip_counted)
		addrcount_add(&srv->per_ip, s->peer_key, -1);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		srv->session_list = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	srv->nsessions--;
	free(s->helo);
	free(s->slots);
	free(s);
	if (srv->session_gone != NULL)
		srv->session_gone(srv);
}

void
session_event_end(struct session *s)
{
	/* A flush that drains the queue at once brings no write event: go
	 * on with the commands that the output high-water mark held back
	 * (no read event would either: they are already buffered). */
	while (s->conn.life != CONN_DEAD && s->conn.out_sent < s->conn.out_len &&
	    conn_flush(&s->conn) == 0 && s->conn.life != CONN_DEAD && s->conn.in != NULL &&
	    s->conn.in_start < s->conn.in_end)
		session_process(s);
	conn_update(&s->conn);
	if (s->conn.life == CONN_DEAD)
		session_free(s);
}

void
session_tx_end(struct session *s, int accepted)
{
	if (s->tx == NULL)
		return;
	if (!accepted)
		chain_notify_reset(&s->chain);
	if (s->srv->tx_observer != NULL)
		s->srv->tx_observer(s->srv->tx_observer_arg, s, accepted);
	body_reset(&s->body);
	tx_free(s->tx);
	s->tx = NULL;
}

/* session_add_received - the Received: field of this connection */
int
session_add_received(struct session *s)
{
	struct tx_received r = {
		.helo = s->helo, .peer_addr = s->peer_addr,
		.hostname = s->info.hostname, .esmtp = s->esmtp,
		.tls_protocol = s->info.tls ? s->info.tls_protocol : NULL,
		.tls_cipher = s->info.tls ? s->info.tls_cipher : NULL,
		.authenticated = s->info.auth_user != NULL,
	};

	return tx_add_received(s->tx, &r);
}
