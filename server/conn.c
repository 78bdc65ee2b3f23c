/*
 * conn.c - the session's non-blocking socket I/O
 *
 * Owns the input and output buffers and the read, write and idle
 * watchers.  Watcher interest is derived from buffer state after every
 * event (conn_update_watchers), so a full input buffer, a backlog of
 * replies, or a closing session stops reading by itself.  Buffers exist
 * only while they hold data (the input buffer also for the whole body),
 * which keeps an idle connection down to its struct.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "server.h"
#include "session.h"
#include "tls.h"

/* conn_recv / conn_send - through TLS when it is on */
static ssize_t
conn_recv(struct session *s, void *buf, size_t len)
{
	if (s->ssl != NULL)
		return tls_read(s, buf, len);
	return recv(s->fd, buf, len, 0);
}

static ssize_t
conn_send(struct session *s, const void *buf, size_t len)
{
	if (s->ssl != NULL)
		return tls_write(s, buf, len);
	return send(s->fd, buf, len, MSG_NOSIGNAL);
}

/*
 * conn_handshake_step - drive a TLS handshake; on success tell the
 * session (which then resets after STARTTLS, or greets after implicit
 * TLS).  Returns 1 when the connection is usable for data.
 */
static int
conn_handshake_step(struct session *s)
{
	int r = tls_handshake(s);

	if (r < 0) {
		s->dead = 1;
		if (s->close_reason == NULL)
			s->close_reason = "TLS handshake failed";
		return 0;
	}
	if (r == 0)
		return 0;
	s->last_activity = ev_now(s->srv->loop);
	conn_start_idle(s);
	session_tls_up(s);
	return 1;
}

/* conn_start_tls - begin the server side of a handshake now */
int
conn_start_tls(struct session *s)
{
	double limit = s->srv->cfg->timeout < 30 ? s->srv->cfg->timeout : 30;

	if (tls_start(s, s->srv->tls_ctx) < 0)
		return -1;
	/* The handshake has its own, shorter deadline; slow drips of
	 * handshake bytes do not extend it. */
	s->handshake_deadline = ev_now(s->srv->loop) + limit;
	/* Fire at that deadline, not only at the next --timeout check. */
	s->idle.repeat = limit;
	ev_timer_again(s->srv->loop, &s->idle);
	conn_handshake_step(s);
	return 0;
}

/* conn_inbuf_get - an input buffer: a spare one, else a new one */
static unsigned char *
conn_inbuf_get(struct server *srv)
{
	if (srv->ninbuf_spare > 0)
		return srv->inbuf_spare[--srv->ninbuf_spare];
	return malloc(SESSION_INBUF);
}

/* conn_inbuf_put - give an input buffer back (NULL: nothing) */
void
conn_inbuf_put(struct server *srv, unsigned char *buf)
{
	if (buf == NULL)
		return;
	if (srv->ninbuf_spare < SERVER_INBUF_SPARES)
		srv->inbuf_spare[srv->ninbuf_spare++] = buf;
	else
		free(buf);
}

/*
 * conn_peer_gone - after EOF: has the peer closed both directions (a TCP
 * reset, an AF_UNIX close), not only shut down its sending side?  A TCP
 * FIN alone looks like a half-close; a client gone that way shows when a
 * reply cannot be written (EPIPE, ECONNRESET).
 */
static int
conn_peer_gone(struct session *s)
{
	struct pollfd p = { .fd = s->fd, .events = 0 };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)) != 0;
}

/* conn_read_cb - read what the socket has, then process it */
static void
conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct session *s = w->data;
	ssize_t n;

	(void)loop, (void)revents;
	if (s->tls_handshaking && !conn_handshake_step(s)) {
		session_event_end(s);
		return;
	}
	if (s->in == NULL) {
		if ((s->in = conn_inbuf_get(s->srv)) == NULL) {
			log_msg(LOG_ERROR, "session %s: out of memory", s->id_str);
			session_reply(s, 421, "4.3.0", "%s Out of memory, closing",
			    s->info.hostname);
			session_close(s, "oom");
			session_event_end(s);
			return;
		}
		s->in_start = s->in_end = 0;
	}
	if (s->in_start > 0 && !s->run.active && !s->body.busy) {
		/* Slide the unprocessed tail to the front; while a walk is in
		 * progress the chunk it is looking at must not move. */
		memmove(s->in, s->in + s->in_start, s->in_end - s->in_start);
		s->in_end -= s->in_start;
		s->in_start = 0;
	}
	if (s->in_end == SESSION_INBUF) {
		session_event_end(s);
		return;
	}
	n = conn_recv(s, s->in + s->in_end, SESSION_INBUF - s->in_end);
	if (n > 0) {
		s->in_end += (size_t)n;
		/* --timeout bounds each read of a message body or BDAT chunk
		 * (RFC 5321 §4.5.3.2), but a whole command line: octets
		 * dripped into a command do not extend its deadline
		 * (slowloris); command_step() restarts it per line. */
		if (s->state == SESSION_BODY || s->bdat.reading)
			s->last_activity = ev_now(s->srv->loop);
		if (!s->greeted)
			s->early_talker = s->info.early_talker = 1;
		session_process(s);
	} else if (n == 0) {
		/* EOF: what is buffered is still acted on, a pending verdict
		 * still completes (session_process ends the session once
		 * nothing more can be done) - unless no one is left to
		 * answer; session_free() then cancels the verdict. */
		s->eof = 1;
		session_process(s);
		if (!s->dead && !s->close_after_flush && conn_peer_gone(s)) {
			if (s->close_reason == NULL)
				s->close_reason = session_eof_reason(s, "client gone");
			s->dead = 1;
		}
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		s->dead = 1;
		if (s->close_reason == NULL)
			s->close_reason = "read error";
	}
	session_event_end(s);
}

/* conn_write_cb - the socket can take more of the replies */
static void
conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct session *s = w->data;

	(void)loop, (void)revents;
	if (s->tls_handshaking) {
		conn_handshake_step(s);
	} else if (tls_wants_write(s) && s->out_sent == s->out_len) {
		/* A TLS read needed the socket writable: read again. */
		s->tls_want_write = 0;
		ev_feed_event(s->srv->loop, &s->rio, EV_READ);
	} else if (conn_flush(s) == 0) {
		session_process(s);
	}
	session_event_end(s);
}

/* conn_idle_cb - lazily re-armed idle timer (ev.pod, timer method 3) */
static void
conn_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct session *s = w->data;
	double timeout = s->srv->cfg->timeout;
	double left = s->last_activity + timeout - ev_now(loop);

	(void)revents;
	if (s->tls_handshaking) {
		left = s->handshake_deadline - ev_now(loop);
		if (left <= 0.001) {
			log_msg(LOG_INFO, "session %s: TLS handshake timed out",
			    s->id_str);
			s->dead = 1;
			s->close_reason = "TLS handshake timeout";
			session_event_end(s);
			return;
		}
	}
	if (left > 0.001 || s->pend.waiting) {
		/* Activity since, or we are the slow one (a plugin's own
		 * timeout covers that). */
		w->repeat = left > 0.001 ? left : timeout;
		ev_timer_again(loop, w);
		return;
	}
	if (s->state == SESSION_CLOSING) {
		/* The client does not read our final reply. */
		s->dead = 1;
	} else {
		session_reply(s, 421, "4.4.2", "%s Timeout, closing connection",
		    s->info.hostname);
		session_close(s, "timeout");
	}
	session_event_end(s);
}

/* conn_start - make the socket non-blocking and start watching it */
void
conn_start(struct session *s)
{
	struct ev_loop *loop = s->srv->loop;

	ev_io_init(&s->rio, conn_read_cb, s->fd, EV_READ);
	s->rio.data = s;
	ev_io_init(&s->wio, conn_write_cb, s->fd, EV_WRITE);
	s->wio.data = s;
	ev_init(&s->idle, conn_idle_cb);
	s->idle.data = s;
	s->idle.repeat = s->srv->cfg->timeout;
	s->last_activity = ev_now(loop);
	ev_timer_again(loop, &s->idle);
}

/* conn_start_idle - (re)start the idle timer as the idle timer */
void
conn_start_idle(struct session *s)
{
	ev_set_cb(&s->idle, conn_idle_cb);
	s->idle.repeat = s->srv->cfg->timeout;
	s->last_activity = ev_now(s->srv->loop);
	ev_timer_again(s->srv->loop, &s->idle);
}

/* conn_out_reserve - room for n more output octets; 0 or -1 */
int
conn_out_reserve(struct session *s, size_t n)
{
	size_t need = s->out_len + n, ncap;
	char *p;

	if (need <= s->out_cap)
		return 0;
	ncap = s->out_cap ? s->out_cap : 1024;
	while (ncap < need)
		ncap *= 2;
	if ((p = realloc(s->out, ncap)) == NULL)
		return -1;
	s->out = p;
	s->out_cap = ncap;
	return 0;
}

/*
 * conn_flush - write queued replies; one write(2) per batch of replies.
 * Returns 0 when everything was sent, 1 when some is left, -1 on error
 * (the session is then dead).
 */
int
conn_flush(struct session *s)
{
	while (s->out_sent < s->out_len) {
		ssize_t n = conn_send(s, s->out + s->out_sent,
		    s->out_len - s->out_sent);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			s->dead = 1;
			if (s->close_reason == NULL)
				s->close_reason = "write error";
			return -1;
		}
		s->out_sent += (size_t)n;
	}
	/* Drained: give the buffer back; idle sessions keep none. */
	free(s->out);
	s->out = NULL;
	s->out_len = s->out_sent = s->out_cap = 0;
	if (s->close_after_flush)
		s->dead = 1;
	return 0;
}

/* conn_update_watchers - derive read/write interest from buffer state */
void
conn_update_watchers(struct session *s)
{
	struct ev_loop *loop = s->srv->loop;
	int want_write = s->out_sent < s->out_len || tls_wants_write(s);
	int room = s->in == NULL || s->in_end < SESSION_INBUF ||
	    (s->in_start > 0 && !s->run.active && !s->body.busy);
	/* After "220 Ready to start TLS" nothing is read as plaintext: the
	 * next bytes are the client's handshake. */
	int want_read = !s->dead && !s->eof && !s->close_after_flush && room &&
	    !s->starttls_pending &&
	    s->out_len - s->out_sent < SESSION_OUTBUF_HIGH;

	if (s->tls_handshaking) {
		want_read = !tls_wants_write(s);
		want_write = tls_wants_write(s);
	} else if (want_read && tls_pending(s)) {
		/* OpenSSL holds decrypted bytes the socket will not announce. */
		ev_feed_event(loop, &s->rio, EV_READ);
	}

	if (want_read && !ev_is_active(&s->rio))
		ev_io_start(loop, &s->rio);
	else if (!want_read && ev_is_active(&s->rio))
		ev_io_stop(loop, &s->rio);
	if (want_write && !ev_is_active(&s->wio))
		ev_io_start(loop, &s->wio);
	else if (!want_write && ev_is_active(&s->wio))
		ev_io_stop(loop, &s->wio);
}

/* conn_release_buffers - free an empty input buffer between commands */
void
conn_release_buffers(struct session *s)
{
	if (s->in != NULL && s->in_start == s->in_end && !s->run.active &&
	    !s->body.busy && s->state != SESSION_BODY && !s->bdat.reading) {
		conn_inbuf_put(s->srv, s->in);
		s->in = NULL;
		s->in_start = s->in_end = 0;
	}
}
