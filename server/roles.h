/*
 * roles.h - what the chain as a whole can do, from the roles its plugins
 * declare (sh_role in smtphook.h)
 *
 * Judges a chain at start-up, before any mail arrives: a relay with no
 * recipient restriction before it is refused (an open relay), a chain in
 * which no plugin can accept a message and an editing plugin that comes
 * after a storing or relaying one are warned about.  Pure functions of a
 * plugin array: no loop, no session, no allocation; warnings go to the
 * log, the one refusal back to the caller.
 *
 * A plugin whose descriptor predates `roles` (ABI 1.0) has unknown
 * roles: it declares nothing, so it neither restricts recipients before
 * a relay nor counts as editing, but it may accept messages, so the
 * "nothing can accept" warning stays silent while one is in the chain.
 */
#ifndef ROLES_H
#define ROLES_H

#include <stddef.h>
#include <stdint.h>

#include "plugin.h"

/* roles_before - the OR of the declared roles of plugins[0..index): what
 * the plugin at index learns through sh_roles_before() */
uint32_t roles_before(const struct plugin *plugins, size_t index);

/*
 * roles_check - judge the chain plugins[0..n).  Logs each warning as one
 * line (LOG_WARN) and returns 0, or returns -1 with a one-line reason in
 * err (the daemon exits 2) when a plugin relays with no recipient
 * restriction declared before it.  A refusal is decided before anything
 * is logged, so a refused chain gets its one error line and no warnings.
 */
int roles_check(const struct plugin *plugins, size_t n, char *err,
    size_t errsize);
/* roles_refused / roles_warn - the two halves of roles_check: the daemon
 * refuses before any plugin starts (server_init) and warns once the
 * start has succeeded (main.c), so that a start that fails for another
 * reason prints its one error line and nothing else */
int roles_refused(const struct plugin *plugins, size_t n, char *err,
    size_t errsize);
void roles_warn(const struct plugin *plugins, size_t n);

#endif
