/*
 * server.h - the one top-level context
 *
 * struct server owns everything that lives longer than a connection: the
 * configuration, the libev loop (its userdata points back here), the
 * listeners, the loaded plugins, the work pool, the session table (by id,
 * for resuming pending verdicts), per-address connection counts, failed
 * AUTH attempts per address and the statistics.  There is no other mutable global state in the daemon.
 */
#ifndef SERVER_H
#define SERVER_H

#include <ev.h>
#include <stdint.h>

#include "auth_throttle.h"
#include "config.h"
#include "conn.h"
#include "metrics.h"
#include "plugin.h"
#include "util.h"
#include "tx.h"
#include "workpool.h"

struct session;

struct listener {
	ev_io io;
	int fd;
	int implicit_tls;
	struct server *srv;
	char text[80];
};

struct server {
	struct config *cfg;
	struct ev_loop *loop;
	struct listener listeners[CONFIG_MAX_LISTEN];
	size_t nlisteners;
	int reserve_fd;			/* spare fd for EMFILE (ev.pod) */
	ev_timer accept_backoff;	/* re-enable accepting after EMFILE */

	struct plugin *plugins;
	size_t nplugins;
	struct workpool pool;

	struct u64map sessions;		/* id -> struct host_conn * (tokens) */
	struct addrcount per_ip;
	struct auth_throttle auth_fails;	/* failed AUTH per address (smtp_auth.c) */
	struct session *session_list;	/* all live sessions (for shutdown) */
	size_t nsessions;
	uint64_t next_session_id;
	uint64_t next_generation;	/* of pending-verdict tokens */
	uint64_t id_salt;		/* makes transaction ids unique per run */

	ev_signal sigterm, sigint, sighup;
	struct ssl_ctx_st *tls_ctx;	/* NULL without --tls-cert */
	ev_timer shutdown_timer;
	int shutting_down;

	struct {
		uint64_t connections, messages, rejected_connections;
	} stats;

	struct conn_bufpool inbufs;	/* spare input buffers (conn.h) */
	struct tx_spares tx_spares;	/* spare header and trace blocks (tx.h) */
	struct spares hs_spares;	/* spare header splitters (body.h) */
	struct metrics metrics;		/* per plugin x hook, counters */

	/* Called when a session is gone (server.c: stop the loop once the
	 * last one is gone during shutdown). */
	void (*session_gone)(struct server *srv);

	/* Called at the end of every transaction, before its memory goes
	 * (the test harness records the trace block and the outcome). */
	void (*tx_observer)(void *arg, struct session *s, int accepted);
	void *tx_observer_arg;
};

/* server_init - loop, plugins (init in order), listeners; 0 or -1 with a
 * one-line error in errbuf (the caller exits 2) */
int server_init(struct server *srv, struct config *cfg, char *errbuf,
    size_t errsize);
/*
 * The steps of server_init, for embedding the core without listeners (the
 * plugin test harness): server_setup on a given loop, then plugins added
 * by spec or by linked-in descriptor, then server_plugins_init.
 */
int server_setup(struct server *srv, struct config *cfg, struct ev_loop *loop,
    char *errbuf, size_t errsize);
int server_add_plugin(struct server *srv, const char *spec,
    const sh_plugin *desc, const char *args, char *errbuf, size_t errsize);
int server_plugins_init(struct server *srv, char *errbuf, size_t errsize);
/* server_run - serve until a signal asked for shutdown and all is done */
void server_run(struct server *srv);
/* server_destroy - fini plugins in reverse, close and free everything */
void server_destroy(struct server *srv);
/* server_plugins_fini - call fini of every initialised plugin, reverse */
void server_plugins_fini(struct server *srv);

#endif
