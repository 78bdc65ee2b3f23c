/*
 * host_api.h - the sh_host_api table handed to plugins, and the context
 * object behind every sh_ctx.
 */
#ifndef HOST_API_H
#define HOST_API_H

#include "smtphook.h"

struct server;
struct plugin;
struct session;
struct chain_reply;

struct host_ctx {
	sh_ctx pub;			/* first: sh_ctx * converts to this */
	struct server *srv;
	struct plugin *plugin;
	struct session *s;		/* NULL in init and fini */
	const char *hook_name;
	struct chain_reply *reply;	/* where sh_reply() goes; NULL: nowhere */
	int verdict_hook;		/* sh_pend() allowed */
	char *error;			/* init: the reason it failed */
	size_t errsize;
};

extern const sh_host_api host_api_table;

/* host_ctx_init - a context for one call of one plugin */
void host_ctx_init(struct host_ctx *c, struct server *srv, struct plugin *p,
    struct session *s, const char *hook_name);

#endif
