/*
 * server.c - the top-level context: start-up, listeners, accept, signals,
 * graceful shutdown
 *
 * Start-up order: plugins (init in chain order) before listeners, so a
 * plugin that refuses to start means nothing ever listened.  Shutdown
 * (SIGTERM/SIGINT): close the listeners, 421 4.3.2 to idle sessions, let
 * running transactions finish for --shutdown-timeout seconds, then close
 * the rest, finish the pool's jobs and call fini in reverse order.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "host_api.h"
#include "log.h"
#include "roles.h"
#include "server.h"
#include "session.h"
#include "tls.h"

#define ACCEPT_BATCH 64
#define EMFILE_BACKOFF 0.1

/* listeners_set - start or stop watching every listener */
static void
listeners_set(struct server *srv, int on)
{
	size_t i;

	for (i = 0; i < srv->nlisteners; i++) {
		if (on)
			ev_io_start(srv->loop, &srv->listeners[i].io);
		else
			ev_io_stop(srv->loop, &srv->listeners[i].io);
	}
}

static void
accept_backoff_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *srv = ev_userdata(loop);

	(void)w, (void)revents;
	if (!srv->shutting_down)
		listeners_set(srv, 1);
}

/* refuse - a one-line reply to a connection we will not serve; on an
 * implicit-TLS port a plaintext line would only garble the handshake, so
 * the connection is just closed there */
static void
refuse(int fd, int implicit_tls, const char *hostname, const char *what)
{
	char line[400];
	int n = snprintf(line, sizeof(line), "421 4.7.0 %s %s\r\n", hostname, what);

	if (n > 0 && !implicit_tls)
		(void)!send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

/*
 * accept_emfile - out of descriptors: free the reserve, accept and close
 * one connection so the kernel queue does not spin us, then pause
 * accepting briefly (ev.pod "special problem of accept()ing").
 */
static void
accept_emfile(struct server *srv, int lfd, int implicit_tls)
{
	int fd;

	if (srv->reserve_fd >= 0) {
		close(srv->reserve_fd);
		srv->reserve_fd = -1;
	}
	fd = accept(lfd, NULL, NULL);
	if (fd >= 0)
		refuse(fd, implicit_tls, srv->cfg->hostname,
		    "Out of resources, try again later");
	srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	log_msg(LOG_WARN, "out of file descriptors: pausing accept for %.0f ms",
	    EMFILE_BACKOFF * 1000);
	listeners_set(srv, 0);
	ev_timer_set(&srv->accept_backoff, EMFILE_BACKOFF, 0);
	ev_timer_start(srv->loop, &srv->accept_backoff);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = (struct listener *)w;
	struct server *srv = l->srv;
	struct config *cfg = srv->cfg;
	int i;

	(void)loop, (void)revents;
	for (i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		uint8_t key[16];
		char host[64];
		unsigned port;
		long n;
		int fd = accept4(l->fd, (struct sockaddr *)&peer, &plen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				accept_emfile(srv, l->fd, l->implicit_tls);
			else if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_msg(LOG_WARN, "accept on %s: %s", l->text,
				    strerror(errno));
			return;
		}
		if (cfg->max_connections > 0 && srv->nsessions >= cfg->max_connections) {
			sockaddr_text((struct sockaddr *)&peer, host, sizeof(host), &port);
			log_msg(LOG_WARN, "refused [%s]:%u: too many connections (%lu)",
			    host, port, cfg->max_connections);
			srv->stats.rejected_connections++;
			refuse(fd, l->implicit_tls, cfg->hostname,
			    "Too many connections, try again later");
			continue;
		}
		sockaddr_key((struct sockaddr *)&peer, key);
		if (cfg->proxy_protocol) {
			/* The balancer's connections: the session counts the
			 * client named in the header against the per-IP limit. */
			if (!cidr_list_match(&cfg->proxy_trusted, key)) {
				sockaddr_text((struct sockaddr *)&peer, host,
				    sizeof(host), &port);
				log_msg(LOG_WARN, "refused [%s]:%u: not in "
				    "--proxy-trusted (a PROXY header is expected); "
				    "closed without a reply", host, port);
				srv->stats.rejected_connections++;
				close(fd);
				continue;
			}
			session_accept_proxied(srv, fd, (struct sockaddr *)&peer, plen);
			if (srv->shutting_down)
				return;
			continue;
		}
		n = addrcount_add(&srv->per_ip, key, 1);
		if (n < 0 || (cfg->max_connections_per_ip > 0 &&
		    (unsigned long)n > cfg->max_connections_per_ip)) {
			if (n > 0)
				addrcount_add(&srv->per_ip, key, -1);
			sockaddr_text((struct sockaddr *)&peer, host, sizeof(host), &port);
			log_msg(LOG_WARN, "refused [%s]:%u: too many connections from "
			    "this address (%lu)", host, port, cfg->max_connections_per_ip);
			srv->stats.rejected_connections++;
			refuse(fd, l->implicit_tls, cfg->hostname, "Too many "
			    "connections from your address, try again later");
			continue;
		}
		session_accept_on(srv, fd, (struct sockaddr *)&peer, plen,
		    l->implicit_tls);
		if (srv->shutting_down)
			return;
	}
}

/* listen_one - bind one listener; -1 with the reason */
static int
listen_one(struct server *srv, const struct config_listen *cl, char *errbuf,
    size_t errsize)
{
	struct listener *l = &srv->listeners[srv->nlisteners];
	int fd, one = 1;

	fd = socket(cl->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(errbuf, errsize, "--listen %s: socket: %s", cl->text,
		    strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (cl->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&cl->addr, cl->addrlen) < 0 ||
	    listen(fd, 511) < 0) {
		snprintf(errbuf, errsize, "--listen %s: %s", cl->text, strerror(errno));
		close(fd);
		return -1;
	}
	l->fd = fd;
	l->srv = srv;
	l->implicit_tls = cl->implicit_tls;
	snprintf(l->text, sizeof(l->text), "%s", cl->text);
	ev_io_init(&l->io, accept_cb, fd, EV_READ);
	srv->nlisteners++;
	return 0;
}

/* close_listeners - stop accepting for good */
static void
close_listeners(struct server *srv)
{
	size_t i;

	for (i = 0; i < srv->nlisteners; i++) {
		ev_io_stop(srv->loop, &srv->listeners[i].io);
		close(srv->listeners[i].fd);
	}
	srv->nlisteners = 0;
}

/*
 * sighup_cb - reload the TLS certificate and key (certificate renewals).
 * A context that fails to load leaves the old one in place; sessions keep
 * the context they started with.
 */
static void
sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct server *srv = ev_userdata(loop);
	char err[512];
	SSL_CTX *ctx;

	(void)w, (void)revents;
	if (srv->cfg->tls_cert == NULL) {
		log_msg(LOG_INFO, "SIGHUP: nothing to reload");
		return;
	}
	ctx = tls_ctx_new(srv->cfg, err, sizeof(err));
	if (ctx == NULL) {
		log_msg(LOG_WARN, "SIGHUP: TLS reload failed, keeping the old "
		    "certificate: %s", err);
		return;
	}
	tls_ctx_free(srv->tls_ctx);
	srv->tls_ctx = ctx;
	log_msg(LOG_INFO, "SIGHUP: TLS certificate reloaded from %s",
	    srv->cfg->tls_cert);
}

/* server_maybe_finish - during shutdown, stop the loop once idle */
static void
server_maybe_finish(struct server *srv)
{
	if (srv->shutting_down && srv->nsessions == 0)
		ev_break(srv->loop, EVBREAK_ALL);
}

static void
shutdown_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *srv = ev_userdata(loop);
	struct session *s, *next;

	(void)w, (void)revents;
	log_msg(LOG_WARN, "shutdown: %zu session(s) still busy after %gs; closing",
	    srv->nsessions, srv->cfg->shutdown_timeout);
	for (s = srv->session_list; s != NULL; s = next) {
		next = s->next;
		session_force_close(s);
	}
	server_maybe_finish(srv);
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct server *srv = ev_userdata(loop);
	struct session *s, *next;

	(void)revents;
	if (srv->shutting_down) {
		log_msg(LOG_INFO, "signal %d during shutdown: closing now", w->signum);
		shutdown_timer_cb(loop, &srv->shutdown_timer, 0);
		return;
	}
	/* Listeners close before the log line, so whoever reads the line
	 * may rely on new connections being refused. */
	srv->shutting_down = 1;
	close_listeners(srv);
	log_msg(LOG_INFO, "signal %d: shutting down (%zu session(s))", w->signum,
	    srv->nsessions);
	ev_timer_stop(loop, &srv->accept_backoff);
	for (s = srv->session_list; s != NULL; s = next) {
		next = s->next;
		session_shutdown(s);
	}
	ev_timer_init(&srv->shutdown_timer, shutdown_timer_cb,
	    srv->cfg->shutdown_timeout, 0);
	ev_timer_start(loop, &srv->shutdown_timer);
	server_maybe_finish(srv);
}

/* raise_fd_limit - use the hard limit: each connection is a descriptor */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
server_add_plugin(struct server *srv, const char *spec, const sh_plugin *desc,
    const char *args, char *errbuf, size_t errsize)
{
	struct plugin *n, *p;
	char err[1024];

	if (srv->nplugins == CONFIG_MAX_PLUGINS) {
		snprintf(errbuf, errsize, "at most %d plugins", CONFIG_MAX_PLUGINS);
		return -1;
	}
	n = realloc(srv->plugins, (srv->nplugins + 1) * sizeof(*n));
	if (n == NULL) {
		snprintf(errbuf, errsize, "out of memory");
		return -1;
	}
	srv->plugins = n;
	p = &srv->plugins[srv->nplugins];
	if (spec != NULL ? plugin_load(p, spec, srv->cfg->plugin_dir, err,
	    sizeof(err)) < 0 : plugin_from_descriptor(p, desc, args, err,
	    sizeof(err)) < 0) {
		snprintf(errbuf, errsize, "--plugin %s: %s", spec != NULL ? spec :
		    (desc->name != NULL ? desc->name : "?"), err);
		return -1;
	}
	p->index = srv->nplugins++;
	return 0;
}

/* server_plugins_init - initialise every plugin in chain order */
int
server_plugins_init(struct server *srv, char *errbuf, size_t errsize)
{
	size_t i;

	if (metrics_init(&srv->metrics, srv->nplugins) < 0) {
		snprintf(errbuf, errsize, "out of memory");
		return -1;
	}
	for (i = 0; i < srv->nplugins; i++) {
		struct plugin *p = &srv->plugins[i];
		int (*init)(sh_ctx *, const sh_arg *, size_t) =
		    plugin_hook(p, init);
		struct host_ctx c;
		char err[512] = "";

		if (init != NULL) {
			host_ctx_init(&c, srv, p, NULL, "init");
			c.error = err;
			c.errsize = sizeof(err);
			if (init(&c.pub, p->args, p->nargs) != 0) {
				snprintf(errbuf, errsize, "plugin %s: %s", p->name,
				    err[0] ? err : "init failed");
				return -1;
			}
		}
		p->initialised = 1;
	}
	return 0;
}

void
server_plugins_fini(struct server *srv)
{
	size_t i;

	for (i = srv->nplugins; i-- > 0;) {
		struct plugin *p = &srv->plugins[i];
		void (*fini)(sh_ctx *) = plugin_hook(p, fini);
		struct host_ctx c;

		if (!p->initialised)
			continue;
		p->initialised = 0;
		if (fini != NULL) {
			host_ctx_init(&c, srv, p, NULL, "fini");
			fini(&c.pub);
		}
	}
}

int
server_setup(struct server *srv, struct config *cfg, struct ev_loop *loop,
    char *errbuf, size_t errsize)
{
	struct timespec ts;

	memset(srv, 0, sizeof(*srv));
	srv->cfg = cfg;
	srv->reserve_fd = -1;
	clock_gettime(CLOCK_REALTIME, &ts);
	srv->id_salt = ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)ts.tv_nsec ^
	    ((uint64_t)getpid() << 8);
	if (loop == NULL) {
		snprintf(errbuf, errsize, "cannot initialise libev");
		return -1;
	}
	srv->loop = loop;
	srv->session_gone = server_maybe_finish;
	ev_set_userdata(srv->loop, srv);
	if (workpool_init(&srv->pool, srv->loop, (unsigned)cfg->pool_threads) < 0) {
		snprintf(errbuf, errsize, "cannot initialise the work pool");
		srv->pool.loop = NULL;
		return -1;
	}
	return 0;
}

int
server_init(struct server *srv, struct config *cfg, char *errbuf, size_t errsize)
{
	size_t i;

	signal(SIGPIPE, SIG_IGN);
	/* Over a file-size limit (ulimit -f), write() fails with EFBIG and
	 * the plugin answers 4xx; SIGXFSZ would kill the daemon instead. */
	signal(SIGXFSZ, SIG_IGN);
	raise_fd_limit();
	if (server_setup(srv, cfg, ev_default_loop(EVFLAG_AUTO), errbuf, errsize) < 0)
		return -1;
	for (i = 0; i < cfg->nplugins; i++)
		if (server_add_plugin(srv, cfg->plugin_specs[i], NULL, NULL, errbuf,
		    errsize) < 0)
			return -1;
	/* The chain as a whole, before any plugin starts or anything
	 * listens: an open relay is refused (exit 2), for --check and a
	 * start alike (main.c warns about the rest once the start worked). */
	if (roles_refused(srv->plugins, srv->nplugins, errbuf, errsize) < 0)
		return -1;
	if (cfg->tls_cert != NULL &&
	    (srv->tls_ctx = tls_ctx_new(cfg, errbuf, errsize)) == NULL)
		return -1;
	if (server_plugins_init(srv, errbuf, errsize) < 0)
		return -1;
	if (cfg->check)
		return 0;
	/* Signals first: once anything listens, SIGTERM means a graceful
	 * shutdown (libev holds a signal that comes before the loop runs). */
	ev_signal_init(&srv->sigterm, signal_cb, SIGTERM);
	ev_signal_start(srv->loop, &srv->sigterm);
	ev_signal_init(&srv->sigint, signal_cb, SIGINT);
	ev_signal_start(srv->loop, &srv->sigint);
	ev_signal_init(&srv->sighup, sighup_cb, SIGHUP);
	ev_signal_start(srv->loop, &srv->sighup);
	for (i = 0; i < cfg->nlisten; i++)
		if (listen_one(srv, &cfg->listen[i], errbuf, errsize) < 0)
			return -1;
	srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ev_init(&srv->accept_backoff, accept_backoff_cb);
	return 0;
}

void
server_run(struct server *srv)
{
	size_t i;

	listeners_set(srv, 1);
	for (i = 0; i < srv->nlisteners; i++)
		log_msg(LOG_INFO, "listening on %s as %s with %zu plugin(s)",
		    srv->listeners[i].text, srv->cfg->hostname, srv->nplugins);
	ev_run(srv->loop, 0);
	log_msg(LOG_INFO, "stopped: %llu connection(s), %llu message(s) accepted",
	    (unsigned long long)srv->stats.connections,
	    (unsigned long long)srv->stats.messages);
}

/* server_log_metrics - the per plugin x hook numbers and the plugins'
 * counters, one debug line each (at shutdown, and after --check -v) */
static void
server_log_metrics(struct server *srv)
{
	const char *names[CONFIG_MAX_PLUGINS];
	size_t i;

	for (i = 0; i < srv->nplugins; i++)
		names[i] = srv->plugins[i].name;
	metrics_log(&srv->metrics, names);
}

void
server_destroy(struct server *srv)
{
	struct session *s, *next;
	size_t i;

	for (s = srv->session_list; s != NULL; s = next) {
		next = s->next;
		session_force_close(s);
	}
	close_listeners(srv);
	if (srv->loop != NULL) {
		ev_timer_stop(srv->loop, &srv->shutdown_timer);
		ev_timer_stop(srv->loop, &srv->accept_backoff);
		ev_signal_stop(srv->loop, &srv->sigterm);
		ev_signal_stop(srv->loop, &srv->sigint);
		ev_signal_stop(srv->loop, &srv->sighup);
		/* Jobs still queued finish; their completions find no session. */
		if (srv->pool.loop != NULL)
			workpool_destroy(&srv->pool);
	}
	server_plugins_fini(srv);
	server_log_metrics(srv);
	metrics_free(&srv->metrics);
	for (i = 0; i < srv->nplugins; i++)
		plugin_unload(&srv->plugins[i]);
	free(srv->plugins);
	srv->plugins = NULL;
	srv->nplugins = 0;
	tls_ctx_free(srv->tls_ctx);
	srv->tls_ctx = NULL;
	u64map_free(&srv->sessions);
	addrcount_free(&srv->per_ip);
	conn_bufpool_free(&srv->inbufs);
	spares_free(&srv->tx_spares.hdr);
	spares_free(&srv->tx_spares.trace);
	spares_free(&srv->hs_spares);
	if (srv->reserve_fd >= 0)
		close(srv->reserve_fd);
	if (srv->loop != NULL)
		ev_loop_destroy(srv->loop);
	srv->loop = NULL;
}
