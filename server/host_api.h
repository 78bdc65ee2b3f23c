/*
 * host_api.h - the sh_host_api table handed to plugins, and the context
 * object behind every sh_ctx.
 */
#ifndef HOST_API_H
#define HOST_API_H

#include <stdint.h>

#include "smtphook.h"

struct server;
struct plugin;
struct chain;
struct chain_reply;
struct tx;

/* A plugin's private data for one connection (sh_conn_set). */
struct conn_slot {
	void *data;
	sh_free_fn destroy;
};

/*
 * host_conn - what the hooks of one connection may see and change.  The
 * session fills it in and keeps it current; the host API reaches the
 * connection only through it, and a token finds it again by id.
 */
struct host_conn {
	uint64_t id;
	const char *log_id;		/* "session 00002A" */
	sh_session_info *info;
	struct tx *const *tx;		/* the session's current transaction */
	struct conn_slot *slots;	/* one per plugin */
	struct chain *chain;
};

struct host_ctx {
	sh_ctx pub;			/* first: sh_ctx * converts to this */
	struct server *srv;
	struct plugin *plugin;
	struct host_conn *conn;		/* NULL in init and fini */
	const char *hook_name;
	struct chain_reply *reply;	/* where sh_reply() goes; NULL: nowhere */
	int verdict_hook;		/* sh_pend() allowed */
	char *error;			/* init: the reason it failed */
	size_t errsize;
};

extern const sh_host_api host_api_table;

/* host_ctx_init - a context for one call of one plugin */
void host_ctx_init(struct host_ctx *c, struct server *srv, struct plugin *p,
    struct host_conn *conn, const char *hook_name);

#endif
