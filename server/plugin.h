/*
 * plugin.h - the plugin loader
 *
 * Turns "-p PATH-or-NAME[:key=value,...]" into a loaded, checked plugin:
 * name lookup in the plugin directory, dlopen(RTLD_NOW | RTLD_LOCAL), the
 * ABI check of the exported descriptor, argument keys checked against the
 * ones the plugin declares, and the host-reserved keys timeout= and
 * on_timeout=.  Plugins are initialised in chain order and finalised in
 * reverse; they are dlclose()d only at exit (never while anything of
 * theirs may still run), and not at all with SMTPHOOK_NO_DLCLOSE set, so
 * valgrind keeps their symbols.
 */
#ifndef PLUGIN_H
#define PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "smtphook.h"

struct plugin {
	const sh_plugin *desc;
	void *dl;
	size_t index;			/* position in the chain */
	char *name;			/* descriptor name, or file stem */
	char *path;
	char *argbuf;			/* storage of args[] strings */
	sh_arg *args;
	size_t nargs;
	double timeout;			/* seconds a PENDING verdict may take */
	sh_verdict on_timeout;		/* CONTINUE, REJECT or TEMPFAIL */
	void *data;			/* sh_plugin_set() */
	int initialised;		/* init succeeded: fini is due */
	uint32_t roles;			/* sh_role bits; 0 unless roles_known */
	int roles_known;		/* the descriptor has `roles` (ABI >= 1.1);
					 * a 1.0 plugin may do anything */
};

/* plugin_desc_has - does descriptor d reach past member?  Members
 * beyond an older plugin's struct_size are not there to read. */
#define plugin_desc_has(d, member)					\
	(offsetof(sh_plugin, member) + sizeof((d)->member) <=		\
	    (d)->struct_size)

/* plugin_hook - a hook member, or NULL when beyond the plugin's struct */
#define plugin_hook(p, member)						\
	(plugin_desc_has((p)->desc, member) ? (p)->desc->member : NULL)

/* plugin_load - load one -p SPEC into *p (zeroed first); 0, or -1 with
 * a one-line reason in errbuf and nothing left loaded. */
int plugin_load(struct plugin *p, const char *spec, const char *plugin_dir,
    char *errbuf, size_t errsize);
/* plugin_from_descriptor - a linked-in plugin (test harness): the same
 * checks and argument parsing as plugin_load, no dlopen. */
int plugin_from_descriptor(struct plugin *p, const sh_plugin *desc,
    const char *args, char *errbuf, size_t errsize);
/* plugin_unload - release what plugin_load or plugin_from_descriptor
 * took (after fini); dlclose() unless SMTPHOOK_NO_DLCLOSE is set. */
void plugin_unload(struct plugin *p);
/* plugin_search_dirs - the directories where a bare NAME.so is looked
 * for: --plugin-dir alone when given, else the build tree next to the
 * executable, the installed plugin directory relative to the executable
 * (both written into selfdir, of selfsize) and the installed library
 * directory; dirs has room for 3 */
void plugin_search_dirs(const char *plugin_dir, const char **dirs, size_t *ndirs,
    char *selfdir, size_t selfsize);

#endif
