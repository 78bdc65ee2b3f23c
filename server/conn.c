/*
 * conn.c - a connection's non-blocking socket I/O (see conn.h)
 *
 * Every libev callback here ends by handing the event to the owner's
 * event_end, which flushes, calls conn_update, or frees the owner (and
 * with it this struct): nothing here touches the connection after that.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "tls.h"

/* conn_recv / conn_send - through TLS when it is on */
static ssize_t
conn_recv(struct conn *c, void *buf, size_t len)
{
	if (c->ssl != NULL)
		return tls_read(c, buf, len);
	return recv(c->fd, buf, len, 0);
}

static ssize_t
conn_send(struct conn *c, const void *buf, size_t len)
{
	if (c->ssl != NULL)
		return tls_write(c, buf, len);
	return send(c->fd, buf, len, MSG_NOSIGNAL);
}

void
conn_kill(struct conn *c, const char *reason)
{
	c->life = CONN_DEAD;
	if (c->close_reason == NULL)
		c->close_reason = reason;
}

void
conn_close_after_flush(struct conn *c, const char *reason)
{
	if (c->close_reason == NULL)
		c->close_reason = reason;
	if (c->life == CONN_OPEN)
		c->life = CONN_CLOSING;
}

void
conn_touch(struct conn *c)
{
	c->last_activity = ev_now(c->loop);
}

/* conn_start_idle - (re)start the idle timer for idle duty */
static void
conn_start_idle(struct conn *c)
{
	c->pausing = 0;
	c->idle.repeat = c->timeout;
	conn_touch(c);
	ev_timer_again(c->loop, &c->idle);
}

/*
 * conn_handshake_step - drive a TLS handshake; on success tell the owner
 * (which then resets after STARTTLS, or greets after implicit TLS).
 * Returns 1 when the connection is usable for data.
 */
static int
conn_handshake_step(struct conn *c)
{
	int r = tls_handshake(c);

	if (r < 0) {
		conn_kill(c, "TLS handshake failed");
		return 0;
	}
	if (r == 0)
		return 0;
	conn_start_idle(c);
	c->ev->tls_up(c->owner);
	return 1;
}

int
conn_start_tls(struct conn *c, struct ssl_ctx_st *ctx)
{
	double limit = c->timeout < 30 ? c->timeout : 30;

	if (tls_start(c, ctx) < 0)
		return -1;
	/* The handshake has its own, shorter deadline; slow drips of
	 * handshake bytes do not extend it. */
	c->handshake_deadline = ev_now(c->loop) + limit;
	/* Fire at that deadline, not only at the next --timeout check. */
	c->idle.repeat = limit;
	ev_timer_again(c->loop, &c->idle);
	conn_handshake_step(c);
	return 0;
}

void
conn_start_tls_after_flush(struct conn *c, struct ssl_ctx_st *ctx)
{
	c->tls = CONN_TLS_AFTER_FLUSH;
	c->tls_ctx = ctx;
}

/* inbuf_get - an input buffer: a spare one, else a new one */
static unsigned char *
inbuf_get(struct conn_bufpool *pool)
{
	if (pool->n > 0)
		return pool->spare[--pool->n];
	return malloc(CONN_INBUF);
}

/* inbuf_put - give an input buffer back (NULL: nothing) */
static void
inbuf_put(struct conn_bufpool *pool, unsigned char *buf)
{
	if (buf == NULL)
		return;
	if (pool->n < CONN_INBUF_SPARES)
		pool->spare[pool->n++] = buf;
	else
		free(buf);
}

/* outbuf_put - c's output buffer back to the spares, or freed */
static void
outbuf_put(struct conn *c)
{
	struct conn_bufpool *pool = c->pool;

	if (c->out != NULL && c->out_cap == CONN_OUTBUF_FIRST && pool != NULL &&
	    pool->nout < CONN_OUTBUF_SPARES)
		pool->out_spare[pool->nout++] = c->out;
	else
		free(c->out);
	c->out = NULL;
	c->out_len = c->out_sent = c->out_cap = 0;
}

void
conn_bufpool_free(struct conn_bufpool *pool)
{
	while (pool->n > 0)
		free(pool->spare[--pool->n]);
	while (pool->nout > 0)
		free(pool->out_spare[--pool->nout]);
}

/*
 * conn_peer_gone - after EOF: has the peer closed both directions (a TCP
 * reset, an AF_UNIX close), not only shut down its sending side?  A TCP
 * FIN alone looks like a half-close; a client gone that way shows when a
 * reply cannot be written (EPIPE, ECONNRESET).
 */
int
conn_peer_gone(const struct conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = 0 };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)) != 0;
}

/* conn_read_cb - read what the socket has, then tell the owner */
static void
conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	ssize_t n;

	(void)loop, (void)revents;
	if (c->tls == CONN_TLS_HANDSHAKE && !conn_handshake_step(c)) {
		c->ev->event_end(c->owner);
		return;
	}
	if (c->in == NULL) {
		if ((c->in = inbuf_get(c->pool)) == NULL) {
			log_msg(LOG_ERROR, "%s: out of memory", c->log_id);
			c->ev->no_buffer(c->owner);
			c->ev->event_end(c->owner);
			return;
		}
		c->in_start = c->in_end = 0;
	}
	if (c->in_start > 0 && !(c->ev->input_hold(c->owner) & CONN_HOLD_PIN)) {
		/* Slide the unprocessed tail to the front; while the owner
		 * looks at a slice of it, it must not move. */
		memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
		c->in_end -= c->in_start;
		c->in_start = 0;
	}
	if (c->in_end == CONN_INBUF) {
		c->ev->event_end(c->owner);
		return;
	}
	n = conn_recv(c, c->in + c->in_end, CONN_INBUF - c->in_end);
	if (n > 0) {
		c->in_end += (size_t)n;
		c->ev->input(c->owner);
	} else if (n == 0) {
		c->eof = 1;
		c->ev->eof(c->owner);
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		conn_kill(c, "read error");
	}
	c->ev->event_end(c->owner);
}

/* conn_write_cb - the socket can take more of the output */
static void
conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	(void)loop, (void)revents;
	if (c->tls == CONN_TLS_HANDSHAKE) {
		conn_handshake_step(c);
	} else if (tls_wants_write(c) && c->out_sent == c->out_len) {
		/* A TLS read needed the socket writable: read again. */
		c->tls_want_write = 0;
		ev_feed_event(c->loop, &c->rio, EV_READ);
	} else if (conn_flush(c) == 0) {
		c->ev->drained(c->owner);
	}
	c->ev->event_end(c->owner);
}

/* conn_idle_cb - lazily re-armed idle timer (ev.pod, timer method 3) */
static void
conn_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	double left = c->last_activity + c->timeout - ev_now(loop);

	(void)revents;
	if (c->pausing) {
		ev_timer_stop(loop, &c->idle);
		conn_start_idle(c);
		c->ev->paused(c->owner);
		c->ev->event_end(c->owner);
		return;
	}
	if (c->tls == CONN_TLS_HANDSHAKE) {
		left = c->handshake_deadline - ev_now(loop);
		if (left <= 0.001) {
			log_msg(LOG_INFO, "%s: TLS handshake timed out", c->log_id);
			c->life = CONN_DEAD;
			c->close_reason = "TLS handshake timeout";
			c->ev->event_end(c->owner);
			return;
		}
	}
	if (left > 0.001) {
		/* Activity since: wait for the rest. */
		w->repeat = left;
		ev_timer_again(loop, w);
		return;
	}
	if (c->life != CONN_OPEN) {
		/* The client does not read our final reply. */
		c->life = CONN_DEAD;
	} else if (c->ev->idle(c->owner)) {
		w->repeat = c->timeout;
		ev_timer_again(loop, w);
		return;
	}
	c->ev->event_end(c->owner);
}

void
conn_init(struct conn *c, int fd, struct ev_loop *loop,
    struct conn_bufpool *pool, double timeout, const struct conn_events *ev,
    void *owner, const char *log_id)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->loop = loop;
	c->pool = pool;
	c->timeout = timeout;
	c->ev = ev;
	c->owner = owner;
	c->log_id = log_id;
	ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
	c->rio.data = c;
	ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
	c->wio.data = c;
	ev_init(&c->idle, conn_idle_cb);
	c->idle.data = c;
	conn_start_idle(c);
}

void
conn_pause(struct conn *c, double seconds)
{
	ev_timer_stop(c->loop, &c->idle);
	c->pausing = 1;
	ev_timer_set(&c->idle, seconds, 0);
	ev_timer_start(c->loop, &c->idle);
}

void
conn_unpause(struct conn *c)
{
	if (c->pausing)
		conn_start_idle(c);
}

int
conn_out_reserve(struct conn *c, size_t n)
{
	size_t need = c->out_len + n, ncap;
	char *p;

	if (need <= c->out_cap)
		return 0;
	if (c->out == NULL && need <= CONN_OUTBUF_FIRST && c->pool != NULL &&
	    c->pool->nout > 0) {
		c->out = c->pool->out_spare[--c->pool->nout];
		c->out_cap = CONN_OUTBUF_FIRST;
		return 0;
	}
	ncap = c->out_cap ? c->out_cap : CONN_OUTBUF_FIRST;
	while (ncap < need)
		ncap *= 2;
	if ((p = realloc(c->out, ncap)) == NULL)
		return -1;
	c->out = p;
	c->out_cap = ncap;
	return 0;
}

size_t
conn_pending_output(const struct conn *c)
{
	return c->out_len - c->out_sent;
}

/*
 * conn_flush - write queued output; one write(2) per batch of replies.
 * Returns 0 when everything was sent, 1 when some is left, -1 on error
 * (the connection is then dead).
 */
int
conn_flush(struct conn *c)
{
	while (c->out_sent < c->out_len) {
		ssize_t n = conn_send(c, c->out + c->out_sent,
		    c->out_len - c->out_sent);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			conn_kill(c, "write error");
			return -1;
		}
		c->out_sent += (size_t)n;
	}
	/* Drained: give the buffer back; idle connections keep none. */
	outbuf_put(c);
	if (c->life != CONN_OPEN)
		c->life = CONN_DEAD;
	return 0;
}

/* update_watchers - derive read/write interest from buffer state */
static void
update_watchers(struct conn *c)
{
	struct ev_loop *loop = c->loop;
	int want_write = c->out_sent < c->out_len || tls_wants_write(c);
	int room = c->in == NULL || c->in_end < CONN_INBUF ||
	    (c->in_start > 0 && !(c->ev->input_hold(c->owner) & CONN_HOLD_PIN));
	/* After "220 Ready to start TLS" nothing is read as plaintext: the
	 * next bytes are the client's handshake. */
	int want_read = c->life == CONN_OPEN && !c->eof && room &&
	    c->tls != CONN_TLS_AFTER_FLUSH && c->out_len - c->out_sent < CONN_OUTBUF_HIGH;

	if (c->tls == CONN_TLS_HANDSHAKE) {
		want_read = !tls_wants_write(c);
		want_write = tls_wants_write(c);
	} else if (want_read && tls_pending(c)) {
		/* OpenSSL holds decrypted bytes the socket will not announce. */
		ev_feed_event(loop, &c->rio, EV_READ);
	}

	if (want_read && !ev_is_active(&c->rio))
		ev_io_start(loop, &c->rio);
	else if (!want_read && ev_is_active(&c->rio))
		ev_io_stop(loop, &c->rio);
	if (want_write && !ev_is_active(&c->wio))
		ev_io_start(loop, &c->wio);
	else if (!want_write && ev_is_active(&c->wio))
		ev_io_stop(loop, &c->wio);
}

void
conn_update(struct conn *c)
{
	if (c->life != CONN_DEAD && c->tls == CONN_TLS_AFTER_FLUSH &&
	    c->out_sent == c->out_len) {
		/* "220 Ready to start TLS" is out: the handshake begins. */
		c->tls = CONN_PLAIN;
		if (conn_start_tls(c, c->tls_ctx) < 0)
			conn_kill(c, "TLS setup failed");
	}
	if (c->life == CONN_DEAD)
		return;
	/* An empty input buffer goes back to the pool between commands. */
	if (c->in != NULL && c->in_start == c->in_end &&
	    c->ev->input_hold(c->owner) == 0) {
		inbuf_put(c->pool, c->in);
		c->in = NULL;
		c->in_start = c->in_end = 0;
	}
	update_watchers(c);
}

void
conn_close(struct conn *c)
{
	ev_io_stop(c->loop, &c->rio);
	ev_io_stop(c->loop, &c->wio);
	ev_timer_stop(c->loop, &c->idle);
	tls_free(c);
	close(c->fd);
	c->fd = -1;
	inbuf_put(c->pool, c->in);
	c->in = NULL;
	outbuf_put(c);
}
