/*
 * smtp_auth.c - SMTP AUTH (RFC 4954): the PLAIN (RFC 4616) and LOGIN
 * exchanges, their 334 challenges, and the auth hook's verdicts
 *
 * The state machine (smtp_session.c) hands over the AUTH command and,
 * while s->auth awaits an answer, the client's answers to our 334s.  Decoded
 * credentials go to the plugins' auth hook; nothing here decides whether
 * they are good.  Credentials are never logged and are wiped after use.
 * Every error ends the exchange (s->auth back to AUTH_IDLE).
 *
 * Failures are throttled per client address, across connections
 * (auth_throttle.c, the table in struct server): a failed attempt's 535
 * is itself held back by a timer, and a check from an address with
 * recent failures waits for that address's next slot before the hooks
 * see it, so reconnecting or opening parallel connections buys no extra
 * guesses.  Failures also count toward --max-errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chain.h"
#include "config.h"
#include "log.h"
#include "server.h"
#include "session.h"
#include "smtp_internal.h"


/* wipe_free - credentials do not linger in freed memory */
static void
wipe_free(char *p)
{
	if (p != NULL) {
		explicit_bzero(p, strlen(p));
		free(p);
	}
}

/* auth_args_free - drop the credentials of an AUTH walk */
void
auth_args_free(struct session *s)
{
	free(s->chain.run.arg.auth.user);
	wipe_free(s->chain.run.arg.auth.password);
	s->chain.run.arg.auth.user = NULL;
	s->chain.run.arg.auth.password = NULL;
}

/* auth_abort - end an AUTH exchange that a 334 left open (the caller
 * replies): the next line is a command again */
void
auth_abort(struct session *s)
{
	s->auth = AUTH_IDLE;
	wipe_free(s->auth_login_user);
	s->auth_login_user = NULL;
}

static void auth_done(void *owner, sh_verdict v);

/* auth_hold - hold the session (no input is processed) for delay
 * seconds, then call cb */
static void
auth_hold(struct session *s, double delay,
    void (*cb)(struct ev_loop *, ev_timer *, int))
{
	s->auth = AUTH_HELD;
	ev_init(&s->auth_delay, cb);
	s->auth_delay.data = s;
	ev_timer_set(&s->auth_delay, delay, 0);
	ev_timer_start(s->srv->loop, &s->auth_delay);
}

/* auth_check_cb - an address's slot has come: check its credentials */
static void
auth_check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct session *s = w->data;

	(void)loop, (void)revents;
	s->auth = AUTH_IDLE;
	chain_start(&s->chain, SH_HOOK_AUTH, 0, auth_done, s);
	session_process(s);
	session_event_end(s);
}

/* auth_fail_cb - the held-back 535 of a failed check, at last */
static void
auth_fail_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct session *s = w->data;

	(void)loop, (void)revents;
	s->auth = AUTH_IDLE;
	/* run.reply is the deciding plugin's (REJECT) or empty: no walk ran
	 * since, as the session was held. */
	reply_verdict(s, SH_REJECT, &s->chain.run.reply, 535, "5.7.8",
	    "Authentication credentials invalid");
	if (++s->errors >= s->srv->cfg->max_errors && s->conn.life == CONN_OPEN) {
		session_reply(s, 421, "4.7.0", "%s Too many errors, closing connection",
		    s->info.hostname);
		session_close(s, "too many errors");
	}
	session_process(s);
	session_event_end(s);
}

/* auth_session_free - the session goes: stop a hold, wipe what it kept */
void
auth_session_free(struct session *s)
{
	if (ev_is_active(&s->auth_delay) && ev_cb(&s->auth_delay) == auth_check_cb)
		auth_args_free(s);	/* credentials waiting for their slot */
	ev_timer_stop(s->srv->loop, &s->auth_delay);
	wipe_free(s->auth_login_user);
	s->auth_login_user = NULL;
}

static void
auth_done(void *owner, sh_verdict v)
{
	struct session *s = owner;
	char *user = s->chain.run.arg.auth.user;
	double delay;
	unsigned fails;
	int rose;

	wipe_free(s->chain.run.arg.auth.password);
	s->chain.run.arg.auth.password = NULL;
	s->chain.run.arg.auth.user = NULL;
	if (v == SH_ACCEPT) {
		s->auth_user = user;
		s->info.auth_user = user;
		cmd_ok(s, SMTP_VERB_AUTH);
		log_msg(LOG_INFO, "session %s: authenticated as %s (%s)", s->id_str,
		    user, s->chain.run.arg.auth.mechanism);
		reply_verdict(s, SH_ACCEPT, &s->chain.run.reply, 235, "2.7.0",
		    "Authentication successful");
		return;
	}
	free(user);
	if (v == SH_TEMPFAIL) {
		reply_verdict(s, v, &s->chain.run.reply, 454, "4.7.0",
		    "Temporary authentication failure");
		return;
	}
	if (v == SH_DISCONNECT) {
		refused(s, v, 421, "4.7.0", "Closing connection");
		return;
	}
	/* REJECT, or nobody vouched for the credentials.  The 535 itself is
	 * held back (a timer, never a sleep) for as long as the failures of
	 * this address, over all its connections, say; it counts toward
	 * --max-errors when it goes out. */
	s->auth_failures++;
	delay = auth_throttle_fail(&s->srv->auth_fails, s->peer_key,
	    ev_now(s->srv->loop), &fails, &rose);
	log_msg(LOG_INFO, "session %s: authentication failed (%s), attempt %u, "
	    "%u from this address", s->id_str, s->chain.run.arg.auth.mechanism,
	    s->auth_failures, fails);
	if (rose)
		log_msg(LOG_WARN, "auth throttle: %s%s has %u failed AUTH attempts: "
		    "each check and failure reply now held %gs", s->peer_addr,
		    strchr(s->peer_addr, ':') != NULL ? " (its /64)" : "", fails,
		    delay);
	if (v != SH_REJECT)
		chain_reply_clear(&s->chain.run.reply);
	auth_hold(s, delay, auth_fail_cb);
}

/* auth_check - hand decoded credentials to the auth hooks */
static void
auth_check(struct session *s, const char *mechanism, const char *user,
    size_t user_len, const char *password, size_t pass_len)
{
	double wait;

	/* A NUL inside a value is refused, never cut short (it would make
	 * "alice\0junk" authenticate as alice). */
	if (memchr(user, '\0', user_len) != NULL ||
	    memchr(password, '\0', pass_len) != NULL || user_len == 0) {
		protocol_error(s, 501, "5.5.2", "Malformed credentials");
		return;
	}
	s->chain.run.arg.auth.mechanism = mechanism;
	s->chain.run.arg.auth.user = strndup(user, user_len);
	s->chain.run.arg.auth.password = strndup(password, pass_len);
	if (s->chain.run.arg.auth.user == NULL || s->chain.run.arg.auth.password == NULL) {
		auth_args_free(s);
		session_reply(s, 454, "4.3.0", "Out of memory");
		return;
	}
	/* An address with recent failures gets one check per slot, however
	 * many connections it uses. */
	wait = auth_throttle_wait(&s->srv->auth_fails, s->peer_key,
	    ev_now(s->srv->loop));
	if (wait > 0) {
		auth_hold(s, wait, auth_check_cb);
		return;
	}
	chain_start(&s->chain, SH_HOOK_AUTH, 0, auth_done, s);
}

/* auth_plain - RFC 4616: [authzid] NUL authcid NUL passwd */
static void
auth_plain(struct session *s, const unsigned char *d, size_t n)
{
	struct smtp_auth_plain ap;

	if (smtp_auth_plain_split(d, n, &ap) < 0) {
		protocol_error(s, 501, "5.5.2", "Malformed PLAIN credentials");
		return;
	}
	/* Acting for another identity (authzid) is not supported: it must be
	 * empty or the authenticating user itself. */
	if (ap.authzid_len != 0 && (ap.authzid_len != ap.authcid_len ||
	    memcmp(ap.authzid, ap.authcid, ap.authzid_len) != 0)) {
		/* Counts toward --max-errors, which closes at the limit. */
		protocol_error(s, 535, "5.7.8", "Authorization identity not allowed");
		return;
	}
	auth_check(s, "PLAIN", (const char *)ap.authcid, ap.authcid_len,
	    (const char *)ap.passwd, ap.passwd_len);
}

/* auth_response - the client's answer to a 334 challenge */
void
auth_response(struct session *s, const char *line, size_t len)
{
	enum auth_phase step = s->auth;
	unsigned char buf[SESSION_LINE_MAX];
	size_t n;

	/* Whatever comes of this answer, the 334 has had it: only a good
	 * LOGIN user name opens the next step. */
	s->auth = AUTH_IDLE;
	if (len == 1 && line[0] == '*') {
		auth_abort(s);
		protocol_error(s, 501, "5.0.0", "Authentication cancelled");
		return;
	}
	if (smtp_base64_decode(line, len, buf, sizeof(buf), &n) < 0) {
		auth_abort(s);
		protocol_error(s, 501, "5.5.2", "Invalid base64 data");
		return;
	}
	switch (step) {
	case AUTH_WAIT_PLAIN:
		auth_plain(s, buf, n);
		break;
	case AUTH_WAIT_LOGIN_USER:
		if (memchr(buf, '\0', n) != NULL) {
			protocol_error(s, 501, "5.5.2", "Malformed credentials");
			break;
		}
		if ((s->auth_login_user = strndup((char *)buf, n)) == NULL) {
			session_reply(s, 454, "4.3.0", "Out of memory");
			break;
		}
		s->auth = AUTH_WAIT_LOGIN_PASS;
		session_reply(s, 334, NULL, "UGFzc3dvcmQ6");	/* "Password:" */
		break;
	default: {
		char *user = s->auth_login_user;

		s->auth_login_user = NULL;
		auth_check(s, "LOGIN", user, strlen(user), (const char *)buf, n);
		wipe_free(user);
		break;
	}
	}
	explicit_bzero(buf, sizeof(buf));
}

void
cmd_auth(struct session *s, const char *args, size_t len)
{
	struct config *cfg = s->srv->cfg;
	const char *sp = memchr(args, ' ', len);
	size_t mlen = sp != NULL ? (size_t)(sp - args) : len;
	const char *ir = sp != NULL ? sp + 1 : NULL;
	size_t irlen = sp != NULL ? len - mlen - 1 : 0;

	if (cfg->auth_mechs == 0) {
		protocol_error(s, 502, "5.5.1", "Command not implemented");
		return;
	}
	if (s->auth_user != NULL) {
		protocol_error(s, 503, "5.5.1", "Already authenticated");
		return;
	}
	if (s->conn.ssl == NULL && !cfg->auth_insecure) {
		/* RFC 4954 §6: credentials only over an encrypted channel. */
		protocol_error(s, 538, "5.7.11", "Encryption required for requested "
		    "authentication mechanism");
		return;
	}
	if (mlen == 5 && strncasecmp(args, "PLAIN", 5) == 0 &&
	    (cfg->auth_mechs & CONFIG_AUTH_PLAIN)) {
		s->auth = AUTH_WAIT_PLAIN;
		if (ir != NULL) {
			auth_response(s, ir, irlen);
			return;
		}
		session_reply(s, 334, NULL, "%s", "");
		return;
	}
	if (mlen == 5 && strncasecmp(args, "LOGIN", 5) == 0 &&
	    (cfg->auth_mechs & CONFIG_AUTH_LOGIN)) {
		s->auth = AUTH_WAIT_LOGIN_USER;
		if (ir != NULL) {
			auth_response(s, ir, irlen);
			return;
		}
		session_reply(s, 334, NULL, "VXNlcm5hbWU6");	/* "Username:" */
		return;
	}
	protocol_error(s, 504, "5.5.4", "Unrecognized authentication type");
}
