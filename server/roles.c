/*
 * roles.c - judge a chain from its plugins' declared roles (see roles.h)
 *
 * Owns no state: it reads the roles the loader copied into struct plugin
 * (roles, roles_known) and never touches descriptors, sessions or the
 * loop, so it can run for --check and for a normal start alike, and a
 * unit test can feed it hand-made arrays.
 */
#include <stdio.h>

#include "log.h"
#include "roles.h"

/* The roles that let a plugin ACCEPT a message at eom. */
#define ROLES_TAKE (SH_ROLE_STORES | SH_ROLE_RELAYS)

uint32_t
roles_before(const struct plugin *plugins, size_t index)
{
	uint32_t r = 0;
	size_t i;

	/* Unknown roles are 0 in struct plugin: a 1.0 plugin declares
	 * nothing, which is all a later plugin may rely on. */
	for (i = 0; i < index; i++)
		r |= plugins[i].roles;
	return r;
}

/* first_taker - the first of plugins[0..index) that stores or relays,
 * or NULL */
static const struct plugin *
first_taker(const struct plugin *plugins, size_t index)
{
	size_t i;

	for (i = 0; i < index; i++)
		if (plugins[i].roles & ROLES_TAKE)
			return &plugins[i];
	return NULL;
}

int
roles_refused(const struct plugin *plugins, size_t n, char *err,
    size_t errsize)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((plugins[i].roles & SH_ROLE_RELAYS) &&
		    !(roles_before(plugins, i) & SH_ROLE_RESTRICTS_RCPTS)) {
			snprintf(err, errsize, "plugin %s relays messages but no "
			    "plugin before it restricts recipients (an open relay); "
			    "put a recipient restriction (e.g. policy) before it",
			    plugins[i].name);
			return -1;
		}
	return 0;
}

void
roles_warn(const struct plugin *plugins, size_t n)
{
	const struct plugin *taker;
	int all_known = 1, can_accept = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		all_known &= plugins[i].roles_known != 0;
		can_accept |= (plugins[i].roles & ROLES_TAKE) != 0;
	}
	/* Without a plugin that may ACCEPT at eom the host answers every
	 * message 451 4.3.0.  A 1.0 plugin may well accept: say nothing
	 * then rather than cry wolf.  An empty chain is covered too. */
	if (all_known && !can_accept)
		log_msg(LOG_WARN, "no plugin in the chain can accept a message: "
		    "every message would get 451 4.3.0");

	/* The first plugin that ACCEPTs at eom ends the walk, so a later
	 * editor's changes never reach the storing or relaying one before
	 * it; name the first such plugin, the one that answers. */
	for (i = 0; i < n; i++)
		if ((plugins[i].roles & SH_ROLE_EDITS) &&
		    (taker = first_taker(plugins, i)) != NULL)
			log_msg(LOG_WARN, "plugin %s edits messages after plugin %s "
			    "stores or relays them: %s does not see its edits",
			    plugins[i].name, taker->name, taker->name);
}

int
roles_check(const struct plugin *plugins, size_t n, char *err, size_t errsize)
{
	/* The refusal first: a refused chain never starts, so warnings
	 * about it would only bury the one line that matters. */
	if (roles_refused(plugins, n, err, errsize) < 0)
		return -1;
	roles_warn(plugins, n);
	return 0;
}
