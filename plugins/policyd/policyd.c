/*
 * policyd.c - a client of Postfix's policy delegation protocol
 * (SMTPD_POLICY_README): postgrey, postfwd, policyd-spf and the like
 *
 *	smtphookd -p policyd:server=inet:127.0.0.1:10023,at=RCPT -p maildump:...
 *
 * Arguments (docs/plugins.md, section policyd):
 *	server=inet:HOST:PORT | unix:/path | spawn:/path/to/program ARGS
 *				required (HOST resolved at start-up; [::1]
 *				for IPv6; spawn: one child per connection on
 *				its stdin/stdout, as Postfix's spawn(8); ARGS
 *				split at blanks, no quoting)
 *	at=STATES		`;` list of CONNECT, HELO (= EHLO), MAIL, RCPT,
 *				DATA, END-OF-MESSAGE, VRFY (default RCPT)
 *	request_timeout=SECONDS	one request, queueing, connecting and the
 *				answer included (default 100, as Postfix's
 *				smtpd_policy_service_timeout).  `timeout=` is
 *				the host's pending timeout of the plugin
 *				(default 30 s, then on_timeout=, 451 4.4.3):
 *				set it above request_timeout for
 *				request_timeout to matter.
 *	default_action=ACTION	an access(5) action for an unreachable
 *				server, a garbage reply or a timeout (default
 *				"451 4.3.5 Server configuration problem")
 *	max_idle=SECONDS	close a connection idle this long (300)
 *	max_ttl=SECONDS		close a connection this old after its reply
 *				(1000, as Postfix)
 *	try_limit=N		attempts per request (2, as Postfix)
 *	retry_delay=SECONDS	pause before a new attempt (1, as Postfix;
 *				none when a reused connection was found
 *				closed)
 *	policy_context=TEXT	sent as policy_context
 *
 * Design: everything runs on the host's loop.  A plugin-wide pool holds
 * at most PD_CONNS_MAX persistent connections, each with at most one
 * request in flight; a request takes an idle connection, else opens a new
 * one, else waits in a FIFO.  The FIFO needs no cap of its own: a session
 * has at most one request outstanding, so it holds at most as many as the
 * host has sessions (--max-connections); a cap below that turned a burst
 * of 500 sessions into default_action for half of them (make bench, c).  A request whose connection fails before any reply
 * octet is tried again, up to try_limit attempts: at once when a reused
 * connection turns out closed (the server dropped it while idle), after
 * retry_delay otherwise, and not at all while the server is known to be
 * down (so an outage costs each request one attempt, not try_limit of
 * them and the delays between).  After a failure the server is left
 * alone for 1 s, then 2, 4, ... up to PD_BACKOFF_MAX between attempts;
 * requests meanwhile get default_action at once, so a server that hangs
 * costs one request_timeout per attempt, not one per request.  spawn:
 * children are started with a
 * double fork, so init reaps them and the plugin needs no SIGCHLD
 * handler that could fight the host's; a child sees EOF on stdin when
 * its connection is closed and exits.  The hooks return SH_PENDING; the cancel callback detaches the
 * request from its session (a request already sent stays on its
 * connection until the reply, so the connection stays in step).
 *
 * Logging: the loop callbacks have no sh_ctx, so what they want logged
 * (WARN/INFO texts, queue actions, server failures) is kept in the
 * session's state and logged at the session's next hook call (the
 * resumed verdict always leads to one: at the latest, disconnect).  A
 * server failure is logged once until the server answers again.
 *
 * PREPEND: the header fields are kept per session and inserted at eom
 * (sh_header_insert, in the order received, first in the message's own
 * header section: after the host's Received:).  A PREPEND in the reply
 * to END-OF-MESSAGE comes too late to be inserted; it is logged.  OK at
 * END-OF-MESSAGE is CONTINUE: only a storing plugin takes a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>
#include <smtphook.h>

#include "helpers/sh_helpers.h"
#include "proto.h"

#define PD_CONNS_MAX 8		/* connections per plugin (per process) */
#define PD_REQ_MAX 8192		/* one request */
#define PD_NOTES_MAX 8		/* log lines kept per session */
#define PD_NOTE_MAX 700
#define PD_HEADERS_MAX 16	/* PREPENDed fields kept per message */
#define PD_DEFAULT_ACTION "451 4.3.5 Server configuration problem"
#define PD_SPAWN_ARGS_MAX 32
#define PD_BACKOFF_MAX 30.0	/* seconds between attempts while down */

enum pd_state {
	S_CONNECT = 0, S_HELO, S_EHLO, S_MAIL, S_RCPT, S_DATA, S_EOM, S_VRFY,
	S_COUNT
};

static const char *const state_names[S_COUNT] = { "CONNECT", "HELO", "EHLO",
	"MAIL", "RCPT", "DATA", "END-OF-MESSAGE", "VRFY" };

struct pd_plugin;
struct pd_sess;

/* One request: owned by the pool from submit to resolve. */
struct pd_req {
	struct pd_plugin *pl;
	struct pd_sess *sess;		/* NULL once detached */
	sh_pending token;
	struct pd_conn *conn;		/* NULL while queued */
	struct pd_req *next;		/* queue, or the delayed list */
	ev_timer timer;			/* request_timeout */
	ev_timer retry;			/* retry_delay, off every list */
	unsigned tries;			/* attempts started */
	int delayed;			/* on pl->delayed */
	int eom;			/* sent at END-OF-MESSAGE */
	size_t len, off;
	char buf[];			/* len octets */
};

struct pd_conn {
	struct pd_plugin *pl;
	int fd;				/* -1: slot free */
	int connecting;
	unsigned served;		/* replies received on it */
	ev_tstamp opened;		/* for max_ttl */
	struct pd_req *req;		/* in flight, or NULL (idle) */
	ev_io rio, wio;
	ev_timer idle;
	size_t inlen;
	char in[PD_REPLY_MAX];
};

struct pd_plugin {
	struct ev_loop *loop;
	char server[300];		/* as given, for logs */
	struct sockaddr_storage addr;	/* inet:, unix: */
	socklen_t addrlen;
	char *spawn_buf;		/* spawn: the words, NUL-separated */
	char *spawn_argv[PD_SPAWN_ARGS_MAX + 1];	/* NULL unless spawn: */
	unsigned at;			/* 1 << pd_state */
	double request_timeout, max_idle, max_ttl, retry_delay;
	unsigned try_limit;
	char *context;
	char *default_text;
	struct pd_decision deflt;
	int down;			/* a failure was logged */
	double backoff;			/* seconds of quiet after a failure */
	ev_tstamp quiet_until;		/* not asked before (while down) */
	struct pd_conn conns[PD_CONNS_MAX];
	struct pd_req *qhead, *qtail;
	size_t qlen;
	struct pd_req *delayed;		/* waiting for retry_delay */
};

struct pd_sess {
	struct pd_req *req;		/* in flight for this session */
	unsigned seq;			/* message number: instance */
	size_t nnotes;
	struct { sh_log_level level; char text[PD_NOTE_MAX]; } notes[PD_NOTES_MAX];
	size_t nheaders;
	char *headers[PD_HEADERS_MAX];	/* "Name: value" */
};

static const char *const pd_keys[] = { "server", "at", "request_timeout",
	"default_action", "max_idle", "max_ttl", "try_limit", "retry_delay",
	"policy_context", NULL };

static void conn_start(struct pd_conn *c);
static void conn_close(struct pd_conn *c);
static void conn_assign(struct pd_conn *c, struct pd_req *r);
static struct pd_conn *pool_free_conn(struct pd_plugin *pl);
static void pool_next(struct pd_plugin *pl);

/* ---- session notes ---- */

/* note - keep a line for the session's next hook call */
static SH_PRINTF(3, 4) void
note(struct pd_sess *s, sh_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (s == NULL || s->nnotes >= PD_NOTES_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(s->notes[s->nnotes].text, PD_NOTE_MAX, fmt, ap);
	va_end(ap);
	s->notes[s->nnotes++].level = level;
}

/* notes_flush - log what the loop callbacks kept */
static void
notes_flush(sh_ctx *ctx, struct pd_sess *s)
{
	size_t i;

	for (i = 0; s != NULL && i < s->nnotes; i++)
		sh_log(ctx, s->notes[i].level, "%s", s->notes[i].text);
	if (s != NULL)
		s->nnotes = 0;
}

static void
headers_clear(struct pd_sess *s)
{
	size_t i;

	for (i = 0; i < s->nheaders; i++)
		free(s->headers[i]);
	s->nheaders = 0;
}

/* sess_free - the session ends: detach its request */
static void
sess_free(void *data)
{
	struct pd_sess *s = data;

	if (s->req != NULL)
		s->req->sess = NULL;
	headers_clear(s);
	free(s);
}

/* sess_get - this connection's state, created on first use */
static struct pd_sess *
sess_get(sh_ctx *ctx)
{
	struct pd_sess *s = sh_conn_get(ctx);

	if (s == NULL && (s = calloc(1, sizeof(*s))) != NULL)
		sh_conn_set(ctx, s, sess_free);
	if (s != NULL)
		notes_flush(ctx, s);
	return s;
}

/* ---- resolving a request ---- */

/* req_free - stop the timer and free (the request is off every list) */
static void
req_free(struct pd_req *r)
{
	ev_timer_stop(r->pl->loop, &r->timer);
	ev_timer_stop(r->pl->loop, &r->retry);
	free(r);
}

/* resolve - answer the request's session with decision d, free r */
static void
resolve(struct pd_req *r, const struct pd_decision *d)
{
	struct pd_sess *s = r->sess;
	sh_verdict v = SH_CONTINUE;

	if (s != NULL) {
		s->req = NULL;
		if (d->log)
			note(s, SH_LOG_INFO, "policy server %s: %s %s",
			    r->pl->server, d->action, d->text);
		if (d->header[0] != '\0') {
			if (r->eom)
				note(s, SH_LOG_WARN, "policy server %s: PREPEND at "
				    "END-OF-MESSAGE comes too late, not added: %s",
				    r->pl->server, d->header);
			else if (s->nheaders < PD_HEADERS_MAX &&
			    (s->headers[s->nheaders] = strdup(d->header)) != NULL)
				s->nheaders++;
			else
				note(s, SH_LOG_WARN, "policy server %s: too many "
				    "PREPENDs, not added: %s", r->pl->server, d->header);
		}
		switch (d->verdict) {
		case PD_ACCEPT:
			v = r->eom ? SH_CONTINUE : SH_ACCEPT;
			break;
		case PD_REJECT:
			v = SH_REJECT;
			break;
		case PD_TEMPFAIL:
			v = SH_TEMPFAIL;
			break;
		case PD_DISCONNECT:
			v = SH_DISCONNECT;
			break;
		case PD_CONTINUE:
		case PD_USE_DEFAULT:
			v = SH_CONTINUE;
			break;
		}
		sh_resume(r->token, v, d->code,
		    d->code != 0 ? d->enhanced : NULL,
		    d->code != 0 ? d->text : NULL);
	}
	req_free(r);
}

/* fail - the server did not answer r: default_action, logged once */
static void
fail(struct pd_req *r, const char *why)
{
	struct pd_plugin *pl = r->pl;
	ev_tstamp now = ev_now(pl->loop);

	if (!pl->down) {
		pl->down = 1;
		note(r->sess, SH_LOG_WARN, "policy server %s: %s; using "
		    "default_action=%s (logged once until it answers)",
		    pl->server, why, pl->default_text);
	}
	/* Back off: requests that were under way when it failed do not
	 * count, only an attempt made after the quiet time. */
	if (now >= pl->quiet_until) {
		pl->backoff = pl->backoff == 0 ? 1 : pl->backoff * 2;
		if (pl->backoff > PD_BACKOFF_MAX)
			pl->backoff = PD_BACKOFF_MAX;
		pl->quiet_until = now + pl->backoff;
	}
	resolve(r, &pl->deflt);
}

/* queue_remove - take r out of the waiting queue or the delayed list */
static void
queue_remove(struct pd_plugin *pl, struct pd_req *r)
{
	struct pd_req **pp, *prev = NULL;

	if (r->delayed) {
		for (pp = &pl->delayed; *pp != NULL; pp = &(*pp)->next)
			if (*pp == r) {
				*pp = r->next;
				break;
			}
		r->delayed = 0;
		ev_timer_stop(pl->loop, &r->retry);
		return;
	}
	for (pp = &pl->qhead; *pp != NULL; prev = *pp, pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			if (pl->qtail == r)
				pl->qtail = prev;
			pl->qlen--;
			return;
		}
}

/* req_timeout - request_timeout expired, queued or in flight */
static void
req_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pd_req *r = (struct pd_req *)((char *)w - offsetof(struct pd_req, timer));
	struct pd_plugin *pl = r->pl;
	struct pd_conn *c = r->conn;

	(void)loop;
	(void)revents;
	if (c != NULL) {
		c->req = NULL;
		r->conn = NULL;
		conn_close(c);
	} else {
		queue_remove(pl, r);
	}
	fail(r, "timed out");	/* frees r */
	pool_next(pl);
}

/* req_cancel - the host abandoned the verdict: detach from the session */
static void
req_cancel(void *arg)
{
	struct pd_req *r = arg;

	if (r->sess != NULL)
		r->sess->req = NULL;
	r->sess = NULL;
	if (r->conn == NULL) {	/* still queued: nobody needs it */
		queue_remove(r->pl, r);
		req_free(r);
	}
}

/* ---- connections ---- */

static void
conn_close(struct pd_conn *c)
{
	struct ev_loop *loop = c->pl->loop;

	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	ev_timer_stop(loop, &c->idle);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->connecting = 0;
	c->served = 0;
	c->inlen = 0;
	c->req = NULL;
}

/* conn_error - the connection failed: retry or fail its request */
static void
conn_error(struct pd_conn *c, const char *why)
{
	struct pd_plugin *pl = c->pl;
	struct pd_req *r = c->req;
	int reused = c->served > 0 && c->inlen == 0;
	int again = c->inlen == 0 && !pl->down;

	conn_close(c);
	if (r == NULL)
		return;
	r->conn = NULL;
	if (again && r->tries < pl->try_limit) {
		if (reused) {
			/* the server closed it while idle: afresh, at once */
			conn_assign(c, r);
			return;
		}
		ev_timer_set(&r->retry, pl->retry_delay, 0);
		ev_timer_start(pl->loop, &r->retry);
		r->next = pl->delayed;
		pl->delayed = r;
		r->delayed = 1;
		pool_next(pl);
		return;
	}
	fail(r, why);
	pool_next(pl);
}

/* req_retry - retry_delay is over: the first connection free, or the
 * head of the queue (it has waited already) */
static void
req_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pd_req *r = w->data;
	struct pd_plugin *pl = r->pl;
	struct pd_conn *c;

	(void)loop;
	(void)revents;
	queue_remove(pl, r);	/* from the delayed list */
	if (pl->qhead == NULL && (c = pool_free_conn(pl)) != NULL) {
		conn_assign(c, r);
		return;
	}
	r->next = pl->qhead;
	pl->qhead = r;
	if (pl->qtail == NULL)
		pl->qtail = r;
	pl->qlen++;
}

/* conn_idle - no request: watch for EOF and max_idle */
static void
conn_idle(struct pd_conn *c)
{
	ev_io_stop(c->pl->loop, &c->wio);
	ev_io_start(c->pl->loop, &c->rio);
	ev_timer_set(&c->idle, c->pl->max_idle, 0);
	ev_timer_start(c->pl->loop, &c->idle);
}

static void
conn_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	conn_close(w->data);
}

/* conn_send - write what is left of the request */
static void
conn_send(struct pd_conn *c)
{
	struct pd_req *r = c->req;
	ssize_t n;

	while (r->off < r->len) {
		n = send(c->fd, r->buf + r->off, r->len - r->off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(c->pl->loop, &c->wio);
			return;
		}
		if (n <= 0) {
			conn_error(c, strerror(errno));
			return;
		}
		r->off += (size_t)n;
	}
	ev_io_stop(c->pl->loop, &c->wio);
	ev_io_start(c->pl->loop, &c->rio);
}

static void
conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pd_conn *c = w->data;
	int err = 0;
	socklen_t len = sizeof(err);

	(void)loop;
	(void)revents;
	if (c->connecting) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0) {
			conn_error(c, strerror(err));
			return;
		}
		c->connecting = 0;
	}
	if (c->req != NULL)
		conn_send(c);
	else
		conn_idle(c);
}

static void
conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pd_conn *c = w->data;
	struct pd_plugin *pl = c->pl;
	struct pd_decision d;
	struct pd_req *r;
	size_t end;
	ssize_t n;
	int rc;

	(void)loop;
	(void)revents;
	n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (c->req == NULL) {
		/* idle: EOF, an error, or octets nobody asked for */
		conn_close(c);
		return;
	}
	if (n <= 0) {
		conn_error(c, n == 0 ? "connection closed before the reply" :
		    strerror(errno));
		return;
	}
	c->inlen += (size_t)n;
	rc = pd_reply_end(c->in, c->inlen, &end);
	if (rc == 0)
		return;
	r = c->req;
	c->req = NULL;
	r->conn = NULL;
	if (rc < 0) {
		conn_close(c);
		fail(r, "reply too long (garbage)");
		pool_next(pl);
		return;
	}
	pd_reply_parse(c->in, end, &d);
	if (d.verdict == PD_USE_DEFAULT) {
		char shown[120];
		size_t i, k = 0;

		for (i = 0; i < end && k < sizeof(shown) - 5; i++) {
			unsigned char ch = (unsigned char)c->in[i];

			k += (size_t)snprintf(shown + k, sizeof(shown) - k,
			    ch >= 0x20 && ch < 0x7f && ch != '\\' ? "%c" : "\\x%02x", ch);
		}
		conn_close(c);
		pl->down = 0;
		pl->backoff = 0;
		note(r->sess, SH_LOG_WARN, "policy server %s: malformed reply "
		    "\"%s\"; using default_action=%s", pl->server, shown,
		    pl->default_text);
		resolve(r, &pl->deflt);
		pool_next(pl);
		return;
	}
	if (pl->down) {
		pl->down = 0;
		pl->backoff = 0;
		note(r->sess, SH_LOG_INFO, "policy server %s: answering again",
		    pl->server);
	}
	c->served++;
	if (end < c->inlen || ev_now(pl->loop) - c->opened >= pl->max_ttl) {
		/* more than one reply to one request (out of step), or old */
		conn_close(c);
	} else {
		c->inlen = 0;
		conn_idle(c);
	}
	resolve(r, &d);
	pool_next(pl);
}

/* spawn_child - a child on one end of a socket pair as its stdin and
 * stdout; the other end, or -1 with errno set.  Between fork and exec
 * only async-signal-safe calls: the host has threads. */
static int
spawn_child(struct pd_plugin *pl)
{
	int sv[2], status;
	pid_t pid;
	sigset_t none;
	struct sigaction dfl;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	sigemptyset(&none);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	if ((pid = fork()) < 0) {
		int e = errno;

		close(sv[0]);
		close(sv[1]);
		errno = e;
		return -1;
	}
	if (pid == 0) {
		/* the middle child exits at once: init adopts the program */
		if (fork() != 0)
			_exit(0);
		if (dup2(sv[1], 0) < 0 || dup2(sv[1], 1) < 0)
			_exit(127);
		close_range(3, ~0u, 0);
		/* an ignored SIGPIPE (the host's) would survive exec */
		sigaction(SIGPIPE, &dfl, NULL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(pl->spawn_argv[0], pl->spawn_argv);
		_exit(127);
	}
	close(sv[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;

		close(sv[0]);
		errno = e;
		return -1;
	}
	return sv[0];
}

/* conn_start - open slot c for its request (c->req set) */
static void
conn_start(struct pd_conn *c)
{
	struct pd_plugin *pl = c->pl;

	c->opened = ev_now(pl->loop);
	if (pl->spawn_argv[0] != NULL) {
		if ((c->fd = spawn_child(pl)) < 0) {
			conn_error(c, strerror(errno));
			return;
		}
		ev_io_set(&c->rio, c->fd, EV_READ);
		ev_io_set(&c->wio, c->fd, EV_WRITE);
		conn_send(c);
		return;
	}
	c->fd = socket(pl->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_error(c, strerror(errno));
		return;
	}
	ev_io_set(&c->rio, c->fd, EV_READ);
	ev_io_set(&c->wio, c->fd, EV_WRITE);
	if (connect(c->fd, (struct sockaddr *)&pl->addr, pl->addrlen) < 0) {
		if (errno != EINPROGRESS && errno != EAGAIN) {
			conn_error(c, strerror(errno));
			return;
		}
		c->connecting = 1;
		ev_io_start(pl->loop, &c->wio);
		return;
	}
	conn_send(c);
}

/* conn_assign - send r on connection c (idle, or a free slot) */
static void
conn_assign(struct pd_conn *c, struct pd_req *r)
{
	r->tries++;
	c->req = r;
	r->conn = c;
	r->off = 0;
	c->inlen = 0;
	if (c->fd < 0) {
		conn_start(c);
		return;
	}
	ev_timer_stop(c->pl->loop, &c->idle);
	ev_io_stop(c->pl->loop, &c->rio);
	conn_send(c);
}

/* pool_free_conn - an idle connection, else a free slot, else NULL */
static struct pd_conn *
pool_free_conn(struct pd_plugin *pl)
{
	struct pd_conn *slot = NULL;
	size_t i;

	for (i = 0; i < PD_CONNS_MAX; i++) {
		struct pd_conn *c = &pl->conns[i];

		if (c->fd >= 0 && c->req == NULL && !c->connecting)
			return c;
		if (c->fd < 0 && slot == NULL)
			slot = c;
	}
	return slot;
}

/* pool_next - give waiting requests the connections that are free */
static void
pool_next(struct pd_plugin *pl)
{
	struct pd_conn *c;
	struct pd_req *r;

	while (pl->qhead != NULL && (c = pool_free_conn(pl)) != NULL) {
		r = pl->qhead;
		pl->qhead = r->next;
		if (pl->qhead == NULL)
			pl->qtail = NULL;
		pl->qlen--;
		r->next = NULL;
		conn_assign(c, r);
	}
}

/* pool_submit - a connection for r, or the queue */
static void
pool_submit(struct pd_plugin *pl, struct pd_req *r)
{
	struct pd_conn *c;

	ev_timer_init(&r->timer, req_timeout, pl->request_timeout, 0);
	ev_timer_start(pl->loop, &r->timer);
	ev_init(&r->retry, req_retry);
	r->retry.data = r;
	if (pl->qhead == NULL && (c = pool_free_conn(pl)) != NULL) {
		conn_assign(c, r);
		return;
	}
	r->next = NULL;
	if (pl->qtail != NULL)
		pl->qtail->next = r;
	else
		pl->qhead = r;
	pl->qtail = r;
	pl->qlen++;
}

/* ---- requests ---- */

/* decide_now - the verdict of decision d, inside a hook */
static sh_verdict
decide_now(sh_ctx *ctx, const struct pd_decision *d)
{
	switch (d->verdict) {
	case PD_ACCEPT:
		return SH_ACCEPT;
	case PD_REJECT:
		return sh_reject(ctx, d->code, d->enhanced, "%s", d->text);
	case PD_TEMPFAIL:
		return sh_tempfail(ctx, d->code, d->enhanced, "%s", d->text);
	case PD_DISCONNECT:
		sh_reply(ctx, d->code, d->enhanced, "%s", d->text);
		return SH_DISCONNECT;
	case PD_CONTINUE:
	case PD_USE_DEFAULT:
		break;
	}
	return SH_CONTINUE;
}

/* num_text - v in base 10 or 16 (lower case), NUL-terminated, into out
 * (room for 21 octets); its length */
static size_t
num_text(char *out, uint64_t v, unsigned base)
{
	char t[20];
	size_t i = sizeof(t), n;

	do
		t[--i] = "0123456789abcdef"[v % base];
	while ((v /= base) != 0);
	n = sizeof(t) - i;
	memcpy(out, t + i, n);
	out[n] = '\0';
	return n;
}

/* ask - send the policy request of this hook call; the hook's verdict */
static sh_verdict
ask(sh_ctx *ctx, enum pd_state st, const char *helo, const sh_address *sender,
    const char *rcpt)
{
	struct pd_plugin *pl = sh_plugin_get(ctx);
	const sh_session_info *si = sh_session(ctx);
	const sh_tx_info *tx = sh_tx(ctx);
	struct pd_sess *s = sess_get(ctx);
	char instance[64], cport[16], sport[16], count[24], size[24];
	char text[PD_REQ_MAX];
	const char *sz = NULL;
	struct pd_req *r;
	struct pd_attr a[32];
	size_t n = 0, replaced = 0, k;
	long len;

	if (s == NULL)
		return sh_tempfail(ctx, 451, "4.3.0", "Out of memory");
	/* Down and in its quiet time: not asked, default_action at once. */
	if (pl->down && ev_now(pl->loop) < pl->quiet_until)
		return decide_now(ctx, &pl->deflt);
	if (sender == NULL && tx != NULL)
		sender = tx->sender;
	if (rcpt == NULL && tx != NULL && tx->nrcpts == 1 &&
	    (st == S_DATA || st == S_EOM))
		rcpt = tx->rcpts[0]->address;
	if (helo == NULL)
		helo = si->helo;
	/* no printf per request: it was a sixth of the plugin's cost */
	/* getpid() each time, not cached: a process forked after init
	 * (workers) must not share its parent's instances */
	k = num_text(instance, (uint64_t)getpid(), 16);
	instance[k++] = '.';
	k += num_text(instance + k, si->id, 16);
	instance[k++] = '.';
	num_text(instance + k, s->seq, 10);
	num_text(cport, si->peer_port, 10);
	num_text(sport, si->local_port, 10);
	num_text(count, tx != NULL && (st == S_DATA || st == S_EOM) ? tx->nrcpts : 0, 10);
	if (st == S_EOM && tx != NULL) {
		num_text(size, tx->body_size, 10);
		sz = size;
	} else if (sender != NULL)
		sz = sh_param_get(sender, "SIZE", NULL);
#define ATTR(k, v) do { a[n].name = (k); a[n].value = (v); a[n].len = PD_CSTR; n++; } while (0)
	ATTR("request", "smtpd_access_policy");
	ATTR("protocol_state", state_names[st]);
	ATTR("protocol_name", si->esmtp || st == S_EHLO ? "ESMTP" : "SMTP");
	ATTR("client_address", si->peer_addr);
	ATTR("client_name", "unknown");
	ATTR("reverse_client_name", "unknown");
	ATTR("client_port", cport);
	ATTR("helo_name", helo);
	ATTR("sender", sender != NULL ? sender->address : NULL);
	ATTR("recipient", rcpt);
	ATTR("recipient_count", count);
	ATTR("queue_id", tx != NULL ? tx->id : NULL);
	ATTR("instance", instance);
	ATTR("size", sz != NULL ? sz : "0");
	ATTR("etrn_domain", NULL);
	ATTR("stress", NULL);
	ATTR("sasl_method", NULL);
	ATTR("sasl_username", si->auth_user);
	ATTR("sasl_sender", NULL);
	ATTR("ccert_subject", si->tls_peer_subject);
	ATTR("encryption_protocol", si->tls ? si->tls_protocol : NULL);
	ATTR("encryption_cipher", si->tls ? si->tls_cipher : NULL);
	ATTR("server_address", si->local_addr);
	ATTR("server_port", sport);
	if (pl->context != NULL)
		ATTR("policy_context", pl->context);
#undef ATTR
	len = pd_request_build(a, n, text, sizeof(text), &replaced);
	if (len < 0) {
		sh_log(ctx, SH_LOG_WARN, "request too long for policy server %s; "
		    "using default_action=%s", pl->server, pl->default_text);
		return decide_now(ctx, &pl->deflt);
	}
	if ((r = calloc(1, sizeof(*r) + (size_t)len)) == NULL)
		return sh_tempfail(ctx, 451, "4.3.0", "Out of memory");
	memcpy(r->buf, text, (size_t)len);
	r->len = (size_t)len;
	r->pl = pl;
	r->sess = s;
	r->eom = st == S_EOM;
	s->req = r;
	r->token = sh_pend(ctx, req_cancel, r);
	pool_submit(pl, r);
	return SH_PENDING;
}

/* ---- hooks ---- */

#define AT(pl, st) (((pl)->at >> (st)) & 1u)

static sh_verdict
pd_connect(sh_ctx *ctx)
{
	struct pd_plugin *pl = sh_plugin_get(ctx);

	if (sess_get(ctx) == NULL)
		return sh_tempfail(ctx, 451, "4.3.0", "Out of memory");
	return AT(pl, S_CONNECT) ? ask(ctx, S_CONNECT, NULL, NULL, NULL) : SH_CONTINUE;
}

static sh_verdict
pd_helo(sh_ctx *ctx, const char *name, int extended)
{
	struct pd_plugin *pl = sh_plugin_get(ctx);
	enum pd_state st = extended ? S_EHLO : S_HELO;

	sess_get(ctx);
	return AT(pl, st) ? ask(ctx, st, name, NULL, NULL) : SH_CONTINUE;
}

static sh_verdict
pd_mail(sh_ctx *ctx, const sh_address *sender)
{
	struct pd_plugin *pl = sh_plugin_get(ctx);
	struct pd_sess *s = sess_get(ctx);

	if (s != NULL)
		s->seq++;	/* a new message: a new instance */
	return AT(pl, S_MAIL) ? ask(ctx, S_MAIL, NULL, sender, NULL) : SH_CONTINUE;
}

static sh_verdict
pd_rcpt(sh_ctx *ctx, const sh_address *rcpt)
{
	struct pd_plugin *pl = sh_plugin_get(ctx);

	sess_get(ctx);
	return AT(pl, S_RCPT) ? ask(ctx, S_RCPT, NULL, NULL, rcpt->address) :
	    SH_CONTINUE;
}

static sh_verdict
pd_data(sh_ctx *ctx)
{
	struct pd_plugin *pl = sh_plugin_get(ctx);

	sess_get(ctx);
	return AT(pl, S_DATA) ? ask(ctx, S_DATA, NULL, NULL, NULL) : SH_CONTINUE;
}

static sh_verdict
pd_eom(sh_ctx *ctx)
{
	struct pd_plugin *pl = sh_plugin_get(ctx);
	struct pd_sess *s = sess_get(ctx);
	size_t i;

	for (i = 0; s != NULL && i < s->nheaders; i++) {
		char *h = s->headers[i], *colon = strchr(h, ':'), *v;

		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		if (sh_header_insert(ctx, i, h, v) < 0)
			sh_log(ctx, SH_LOG_WARN, "PREPEND of policy server %s "
			    "refused by the host: %s: %s", pl->server, h, v);
		*colon = ':';
	}
	if (s != NULL)
		headers_clear(s);
	return AT(pl, S_EOM) ? ask(ctx, S_EOM, NULL, NULL, NULL) : SH_CONTINUE;
}

static sh_verdict
pd_vrfy(sh_ctx *ctx, const char *arg)
{
	struct pd_plugin *pl = sh_plugin_get(ctx);

	sess_get(ctx);
	return AT(pl, S_VRFY) ? ask(ctx, S_VRFY, NULL, NULL, arg) : SH_CONTINUE;
}

static void
pd_reset(sh_ctx *ctx)
{
	struct pd_sess *s = sh_conn_get(ctx);

	notes_flush(ctx, s);
	if (s != NULL)
		headers_clear(s);
}

static void
pd_disconnect(sh_ctx *ctx)
{
	notes_flush(ctx, sh_conn_get(ctx));
}

/* ---- init / fini ---- */

/* parse_spawn - spawn:/path ARGS into pl->spawn_argv */
static int
parse_spawn(sh_ctx *ctx, struct pd_plugin *pl, const char *v)
{
	char *p, *save = NULL;
	size_t n = 0;

	if ((pl->spawn_buf = strdup(v + 6)) == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	for (p = strtok_r(pl->spawn_buf, " \t", &save); p != NULL;
	    p = strtok_r(NULL, " \t", &save)) {
		if (n == PD_SPAWN_ARGS_MAX) {
			sh_error(ctx, "server=%s: more than %d words", v,
			    PD_SPAWN_ARGS_MAX);
			return -1;
		}
		pl->spawn_argv[n++] = p;
	}
	if (n == 0 || pl->spawn_argv[0][0] != '/') {
		sh_error(ctx, "server=%s: expected spawn:/path/to/program [ARGS]", v);
		return -1;
	}
	if (access(pl->spawn_argv[0], X_OK) < 0) {
		sh_error(ctx, "server=%s: %s: %s", v, pl->spawn_argv[0],
		    strerror(errno));
		return -1;
	}
	pl->spawn_argv[n] = NULL;
	return 0;
}

/* parse_server - server= into pl->addr; 0, or -1 with the reason set */
static int
parse_server(sh_ctx *ctx, struct pd_plugin *pl, const char *v)
{
	struct addrinfo hints, *res = NULL;
	char host[256];
	const char *hp, *colon;
	size_t hl;
	int rc;

	snprintf(pl->server, sizeof(pl->server), "%s", v);
	if (strncmp(v, "spawn:", 6) == 0)
		return parse_spawn(ctx, pl, v);
	if (strncmp(v, "unix:", 5) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&pl->addr;

		if (v[5] == '\0' || strlen(v + 5) >= sizeof(sun->sun_path)) {
			sh_error(ctx, "server=%s: expected unix:/path (at most %zu octets)",
			    v, sizeof(sun->sun_path) - 1);
			return -1;
		}
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, v + 5, strlen(v + 5) + 1);
		pl->addrlen = (socklen_t)sizeof(*sun);
		return 0;
	}
	if (strncmp(v, "inet:", 5) != 0 || (colon = strrchr(v + 5, ':')) == NULL ||
	    colon[1] == '\0') {
		sh_error(ctx, "server=%s: expected inet:HOST:PORT, unix:/path or "
		    "spawn:/path ARGS", v);
		return -1;
	}
	hp = v + 5;
	hl = (size_t)(colon - hp);
	if (hl >= 2 && hp[0] == '[' && hp[hl - 1] == ']') {
		hp++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host)) {
		sh_error(ctx, "server=%s: expected inet:HOST:PORT", v);
		return -1;
	}
	memcpy(host, hp, hl);
	host[hl] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0 || res == NULL) {
		sh_error(ctx, "server=%s: %s", v, rc != 0 ? gai_strerror(rc) : "no address");
		return -1;
	}
	memcpy(&pl->addr, res->ai_addr, res->ai_addrlen);
	pl->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* parse_at - at= into pl->at */
static int
parse_at(sh_ctx *ctx, struct pd_plugin *pl, const char *v)
{
	const char *cur = v, *item;
	size_t len, i;

	pl->at = 0;
	while ((item = sh_list_next(&cur, ';', &len)) != NULL) {
		for (i = 0; i < S_COUNT; i++)
			if (sh_ascii_caseeq(item, len, state_names[i],
			    strlen(state_names[i])))
				break;
		if (i == S_COUNT) {
			sh_error(ctx, "at=%s: \"%.*s\" is not one of CONNECT, HELO, "
			    "EHLO, MAIL, RCPT, DATA, END-OF-MESSAGE, VRFY", v,
			    (int)len, item);
			return -1;
		}
		if (i == S_HELO || i == S_EHLO)
			pl->at |= 1u << S_HELO | 1u << S_EHLO;
		else
			pl->at |= 1u << i;
	}
	if (pl->at == 0) {
		sh_error(ctx, "at= is empty");
		return -1;
	}
	return 0;
}

static void
pl_free(struct pd_plugin *pl)
{
	size_t i;
	struct pd_req *r;

	for (i = 0; i < PD_CONNS_MAX; i++) {
		struct pd_conn *c = &pl->conns[i];

		if (c->req != NULL) {
			r = c->req;
			c->req = NULL;
			req_free(r);
		}
		if (pl->loop != NULL)
			conn_close(c);
	}
	while ((r = pl->qhead) != NULL) {
		pl->qhead = r->next;
		req_free(r);
	}
	while ((r = pl->delayed) != NULL) {
		pl->delayed = r->next;
		req_free(r);
	}
	free(pl->spawn_buf);
	free(pl->context);
	free(pl->default_text);
	free(pl);
}

static int
pd_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct pd_plugin *pl = calloc(1, sizeof(*pl));
	const char *server = NULL, *deflt = PD_DEFAULT_ACTION;
	size_t i;

	if (pl == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	pl->at = 1u << S_RCPT;
	pl->request_timeout = 100;
	pl->max_idle = 300;
	pl->max_ttl = 1000;
	pl->try_limit = 2;
	pl->retry_delay = 1;
	for (i = 0; i < PD_CONNS_MAX; i++) {
		struct pd_conn *c = &pl->conns[i];

		c->pl = pl;
		c->fd = -1;
		ev_init(&c->rio, conn_read_cb);
		ev_init(&c->wio, conn_write_cb);
		ev_init(&c->idle, conn_idle_cb);
		c->rio.data = c->wio.data = c->idle.data = c;
	}
	for (i = 0; i < nargs; i++) {
		const char *k = args[i].key, *v = args[i].value;
		int bad = 0;

		if (strcmp(k, "server") == 0)
			server = v;
		else if (strcmp(k, "at") == 0)
			bad = parse_at(ctx, pl, v);
		else if (strcmp(k, "default_action") == 0)
			deflt = v;
		else if (strcmp(k, "policy_context") == 0) {
			free(pl->context);
			if ((pl->context = strdup(v)) == NULL) {
				sh_error(ctx, "out of memory");
				bad = -1;
			}
		} else if (strcmp(k, "try_limit") == 0) {
			char *end;
			unsigned long n = strtoul(v, &end, 10);

			if (v[0] < '1' || v[0] > '9' || *end != '\0' || n > 10) {
				sh_error(ctx, "try_limit=%s: expected 1 to 10", v);
				bad = -1;
			} else
				pl->try_limit = (unsigned)n;
		} else if (strcmp(k, "retry_delay") == 0) {
			if (sh_parse_seconds(v, 60, &pl->retry_delay) < 0) {
				sh_error(ctx, "retry_delay=%s: expected seconds (0 <= t <= 60)", v);
				bad = -1;
			}
		} else if (strcmp(k, "request_timeout") == 0 ||
		    strcmp(k, "max_idle") == 0 || strcmp(k, "max_ttl") == 0) {
			double d;

			if (sh_parse_seconds(v, 86400, &d) < 0 || d <= 0) {
				sh_error(ctx, "%s=%s: expected seconds (0 < t <= 86400)", k, v);
				bad = -1;
			} else if (k[0] == 'r')
				pl->request_timeout = d;
			else if (k[4] == 'i')
				pl->max_idle = d;
			else
				pl->max_ttl = d;
		}
		if (bad < 0) {
			pl_free(pl);
			return -1;
		}
	}
	if (server == NULL) {
		sh_error(ctx, "server= is required (inet:HOST:PORT, unix:/path or "
		    "spawn:/path ARGS)");
		pl_free(pl);
		return -1;
	}
	if (parse_server(ctx, pl, server) < 0) {
		pl_free(pl);
		return -1;
	}
	pd_action_map(deflt, strlen(deflt), &pl->deflt);
	if (pl->deflt.verdict == PD_USE_DEFAULT) {
		sh_error(ctx, "default_action=%s: not an access(5) action", deflt);
		pl_free(pl);
		return -1;
	}
	if ((pl->default_text = strdup(deflt)) == NULL) {
		sh_error(ctx, "out of memory");
		pl_free(pl);
		return -1;
	}
	pl->loop = sh_loop(ctx);
	sh_plugin_set(ctx, pl);
	return 0;
}

static void
pd_fini(sh_ctx *ctx)
{
	struct pd_plugin *pl = sh_plugin_get(ctx);

	if (pl != NULL)
		pl_free(pl);
}

SH_PLUGIN_DEFINE(.name = "policyd", .version = "1.0", .arg_keys = pd_keys,
    .init = pd_init, .fini = pd_fini, .connect = pd_connect,
    .helo = pd_helo, .mail = pd_mail, .rcpt = pd_rcpt, .data = pd_data,
    .eom = pd_eom, .vrfy = pd_vrfy, .reset = pd_reset,
    .disconnect = pd_disconnect,
    .roles = SH_ROLE_EDITS | SH_ROLE_RESTRICTS_RCPTS);
