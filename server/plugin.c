/*
 * plugin.c - load and check plugins
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin.h"
#include "util.h"

#ifndef SMTPHOOK_PLUGIN_LIBDIR
#define SMTPHOOK_PLUGIN_LIBDIR "/usr/local/lib/smtphook"
#endif
/* The installed plugin directory relative to the installed smtphookd. */
#ifndef SMTPHOOK_PLUGIN_RELDIR
#define SMTPHOOK_PLUGIN_RELDIR "../lib/smtphook"
#endif

/* The descriptor prefix every ABI version has: up to and incl. arg_keys. */
#define PLUGIN_MIN_SIZE (offsetof(sh_plugin, arg_keys) + sizeof(void *))

/*
 * plugin_search_dirs - the directories where a bare NAME is looked up:
 * --plugin-dir alone when given; else the build tree next to the
 * executable (build/bin/../plugins), the installed plugin directory
 * relative to the executable (bin/../lib/smtphook, so an installed tree
 * moved or installed with "cmake --install --prefix" still finds its
 * plugins), and the installed library directory the build was
 * configured for.  The executable-relative directories are written into
 * selfdir (of selfsize), one after the other.
 */
void
plugin_search_dirs(const char *plugin_dir, const char **dirs, size_t *ndirs,
    char *selfdir, size_t selfsize)
{
	char exe[PATH_MAX], *slash;
	ssize_t n;
	size_t off = 0;
	int len;

	*ndirs = 0;
	if (plugin_dir != NULL) {
		dirs[(*ndirs)++] = plugin_dir;
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL) {
			*slash = '\0';
			len = snprintf(selfdir, selfsize, "%s/../plugins", exe);
			if (len > 0 && (size_t)len < selfsize) {
				dirs[(*ndirs)++] = selfdir;
				off = (size_t)len + 1;
			}
			len = snprintf(selfdir + off, selfsize - off, "%s/%s", exe,
			    SMTPHOOK_PLUGIN_RELDIR);
			if (off < selfsize && len > 0 && (size_t)len < selfsize - off)
				dirs[(*ndirs)++] = selfdir + off;
		}
	}
	dirs[(*ndirs)++] = SMTPHOOK_PLUGIN_LIBDIR;
}

/* plugin_resolve - path of the .so for a PATH-or-NAME */
static int
plugin_resolve(const char *what, const char *plugin_dir, char *path,
    size_t pathsize, char *errbuf, size_t errsize)
{
	const char *dirs[4];
	char selfdir[PATH_MAX];
	size_t ndirs, i;
	struct stat st;

	if (strchr(what, '/') != NULL) {
		if ((size_t)snprintf(path, pathsize, "%s", what) >= pathsize) {
			snprintf(errbuf, errsize, "path too long");
			return -1;
		}
		if (stat(path, &st) < 0) {
			snprintf(errbuf, errsize, "%s: %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	for (i = 0; what[i] != '\0'; i++)
		if (!((what[i] >= 'a' && what[i] <= 'z') || (what[i] >= 'A' &&
		    what[i] <= 'Z') || (what[i] >= '0' && what[i] <= '9') ||
		    what[i] == '_' || what[i] == '-' || what[i] == '.')) {
			snprintf(errbuf, errsize, "bad plugin name");
			return -1;
		}
	plugin_search_dirs(plugin_dir, dirs, &ndirs, selfdir, sizeof(selfdir));
	for (i = 0; i < ndirs; i++) {
		const char *suffix = strstr(what, ".so") != NULL ? "" : ".so";
		if ((size_t)snprintf(path, pathsize, "%s/%s%s", dirs[i], what,
		    suffix) >= pathsize)
			continue;
		if (stat(path, &st) == 0)
			return 0;
	}
	{
		size_t off;
		int len = snprintf(errbuf, errsize, "no such plugin (looked in");

		off = len > 0 ? (size_t)len : 0;
		for (i = 0; i < ndirs && off < errsize; i++) {
			len = snprintf(errbuf + off, errsize - off, "%s %s",
			    i == 0 ? "" : i + 1 == ndirs ? " and" : ",", dirs[i]);
			off += len > 0 ? (size_t)len : 0;
		}
		if (off < errsize)
			snprintf(errbuf + off, errsize - off, ")");
	}
	return -1;
}

/* key_allowed - is key in the plugin's declared keys? */
static int
key_allowed(const sh_plugin *d, const char *key)
{
	const char *const *k;

	if (d->arg_keys == NULL)
		return 0;
	for (k = d->arg_keys; *k != NULL; k++)
		if (strcmp(*k, key) == 0)
			return 1;
	return 0;
}

/* plugin_take_roles - copy the declared roles, when the descriptor is
 * new enough to have them; a shorter one leaves them unknown, which
 * roles_check() must not mistake for "declares none" */
static void
plugin_take_roles(struct plugin *p)
{
	p->roles_known = plugin_desc_has(p->desc, roles);
	p->roles = p->roles_known ? p->desc->roles : 0;
}

/* abi_refused - why a plugin built for another ABI cannot load */
static void
abi_refused(const sh_plugin *d, const char *what, char *errbuf, size_t errsize)
{
	snprintf(errbuf, errsize, "%s: built for plugin ABI %u.%u, host is %u.%u%s",
	    what, d->abi_major, d->abi_minor, SH_ABI_MAJOR, SH_ABI_MINOR,
	    d->abi_major != SH_ABI_MAJOR ? "" : d->abi_minor > SH_ABI_MINOR ?
	    " (the plugin needs a newer smtphookd)" : "");
}

/* unknown_key - the error for key, listing the keys the plugin accepts */
static void
unknown_key(const sh_plugin *d, const char *key, char *errbuf, size_t errsize)
{
	const char *const *k;
	size_t off;
	int n;

	n = snprintf(errbuf, errsize, "unknown argument '%s' (accepted: ", key);
	off = n > 0 ? (size_t)n : 0;
	for (k = d->arg_keys; k != NULL && *k != NULL && off < errsize; k++) {
		n = snprintf(errbuf + off, errsize - off, "%s, ", *k);
		off += n > 0 ? (size_t)n : 0;
	}
	if (off < errsize)
		snprintf(errbuf + off, errsize - off, "timeout, on_timeout)");
}

/*
 * plugin_parse_args - split "k=v,k=v" in place into p->args, taking out
 * the reserved keys.  Values may not contain ','; lists inside a value
 * are ';'-separated (SPEC §5).
 */
static int
plugin_parse_args(struct plugin *p, char *text, char *errbuf, size_t errsize)
{
	size_t n = 1, i;
	char *item, *rest = text;
	int seen_timeout = 0, seen_on_timeout = 0;

	for (i = 0; text[i] != '\0'; i++)
		n += text[i] == ',';
	if ((p->args = calloc(n, sizeof(*p->args))) == NULL) {
		snprintf(errbuf, errsize, "out of memory");
		return -1;
	}
	/* No arguments at all is fine; an empty one ("a=1,,b=2", a
	 * trailing ',') is a typo the plugin would never see. */
	while (*text != '\0' && (item = strsep(&rest, ",")) != NULL) {
		char *eq = strchr(item, '=');

		if (*item == '\0') {
			snprintf(errbuf, errsize, "empty argument (two commas, or a "
			    "comma at the end)");
			return -1;
		}
		if (eq == NULL || eq == item) {
			snprintf(errbuf, errsize, "argument '%s' is not key=value", item);
			return -1;
		}
		*eq = '\0';
		for (i = 0; i < p->nargs; i++)
			if (strcmp(p->args[i].key, item) == 0) {
				snprintf(errbuf, errsize, "argument '%s' given twice", item);
				return -1;
			}
		/* The reserved keys are not kept in p->args: count them here. */
		if ((strcmp(item, "timeout") == 0 && seen_timeout++) ||
		    (strcmp(item, "on_timeout") == 0 && seen_on_timeout++)) {
			snprintf(errbuf, errsize, "argument '%s' given twice", item);
			return -1;
		}
		if (strcmp(item, "timeout") == 0) {
			if (parse_seconds(eq + 1, &p->timeout) < 0) {
				snprintf(errbuf, errsize,
				    "timeout=%s: expected seconds (0 < t <= 86400)", eq + 1);
				return -1;
			}
			continue;
		}
		if (strcmp(item, "on_timeout") == 0) {
			if (strcmp(eq + 1, "tempfail") == 0)
				p->on_timeout = SH_TEMPFAIL;
			else if (strcmp(eq + 1, "continue") == 0)
				p->on_timeout = SH_CONTINUE;
			else if (strcmp(eq + 1, "reject") == 0)
				p->on_timeout = SH_REJECT;
			else {
				snprintf(errbuf, errsize,
				    "on_timeout=%s: expected tempfail, continue or reject", eq + 1);
				return -1;
			}
			continue;
		}
		if (!key_allowed(p->desc, item)) {
			unknown_key(p->desc, item, errbuf, errsize);
			return -1;
		}
		p->args[p->nargs].key = item;
		p->args[p->nargs].value = eq + 1;
		p->nargs++;
	}
	return 0;
}

/* name_clean - a plugin's name goes into log lines as it is (log.h,
 * struct log_line): no control characters in it */
static void
name_clean(char *name)
{
	for (; *name != '\0'; name++)
		if ((unsigned char)*name < 0x20 || *name == 0x7f)
			*name = '?';
}

int
plugin_load(struct plugin *p, const char *spec, const char *plugin_dir,
    char *errbuf, size_t errsize)
{
	char what[PATH_MAX], path[PATH_MAX];
	const char *colon, *so, *base;
	size_t wl;
	const sh_plugin *d;

	memset(p, 0, sizeof(*p));
	p->timeout = 30;
	p->on_timeout = SH_TEMPFAIL;
	/* The arguments start after ".so:" when the spec has it before any
	 * '=' (a path may hold ':'), else at the first ':'; values may hold
	 * '/' and ':' (maildump:dir=/var/mail). */
	so = strstr(spec, ".so:");
	if (so != NULL && (strchr(spec, '=') == NULL || so < strchr(spec, '=')))
		colon = so + 3;
	else
		colon = strchr(spec, ':');
	wl = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
	if (wl == 0 || wl >= sizeof(what)) {
		snprintf(errbuf, errsize, "empty or overlong plugin name");
		return -1;
	}
	memcpy(what, spec, wl);
	what[wl] = '\0';
	if (plugin_resolve(what, plugin_dir, path, sizeof(path), errbuf, errsize) < 0)
		return -1;
	if ((p->path = strdup(path)) == NULL) {
		snprintf(errbuf, errsize, "out of memory");
		return -1;
	}
	p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (p->dl == NULL) {
		snprintf(errbuf, errsize, "%s: not a loadable plugin: %s", path, dlerror());
		goto fail;
	}
	d = dlsym(p->dl, SH_PLUGIN_SYMBOL);
	if (d == NULL) {
		snprintf(errbuf, errsize,
		    "%s: not an smtphook plugin (does not export %s)", path,
		    SH_PLUGIN_SYMBOL);
		goto fail;
	}
	if (d->abi_major != SH_ABI_MAJOR || d->abi_minor > SH_ABI_MINOR) {
		abi_refused(d, path, errbuf, errsize);
		goto fail;
	}
	if (d->struct_size < PLUGIN_MIN_SIZE) {
		snprintf(errbuf, errsize, "%s: plugin descriptor too small (%u octets)",
		    path, d->struct_size);
		goto fail;
	}
	p->desc = d;
	plugin_take_roles(p);
	base = strrchr(what, '/') != NULL ? strrchr(what, '/') + 1 : what;
	p->name = strdup(d->name != NULL && d->name[0] != '\0' ? d->name : base);
	if (p->name == NULL) {
		snprintf(errbuf, errsize, "out of memory");
		goto fail;
	}
	name_clean(p->name);
	if ((p->argbuf = strdup(colon != NULL ? colon + 1 : "")) == NULL) {
		snprintf(errbuf, errsize, "out of memory");
		goto fail;
	}
	if (plugin_parse_args(p, p->argbuf, errbuf, errsize) < 0) {
		/* Say which plugin the argument belongs to. */
		char reason[512];
		snprintf(reason, sizeof(reason), "%s", errbuf);
		snprintf(errbuf, errsize, "%s: %s", p->name, reason);
		goto fail;
	}
	return 0;
fail:
	plugin_unload(p);
	return -1;
}

int
plugin_from_descriptor(struct plugin *p, const sh_plugin *d, const char *args,
    char *errbuf, size_t errsize)
{
	memset(p, 0, sizeof(*p));
	p->timeout = 30;
	p->on_timeout = SH_TEMPFAIL;
	if (d->abi_major != SH_ABI_MAJOR || d->abi_minor > SH_ABI_MINOR ||
	    d->struct_size < PLUGIN_MIN_SIZE) {
		abi_refused(d, "descriptor", errbuf, errsize);
		return -1;
	}
	p->desc = d;
	plugin_take_roles(p);
	p->name = strdup(d->name != NULL && d->name[0] != '\0' ? d->name : "plugin");
	p->argbuf = strdup(args != NULL ? args : "");
	if (p->name == NULL || p->argbuf == NULL) {
		snprintf(errbuf, errsize, "out of memory");
		plugin_unload(p);
		return -1;
	}
	name_clean(p->name);
	if (plugin_parse_args(p, p->argbuf, errbuf, errsize) < 0) {
		plugin_unload(p);
		return -1;
	}
	return 0;
}

void
plugin_unload(struct plugin *p)
{
	if (p->dl != NULL && getenv("SMTPHOOK_NO_DLCLOSE") == NULL)
		dlclose(p->dl);
	free(p->path);
	free(p->name);
	free(p->argbuf);
	free(p->args);
	memset(p, 0, sizeof(*p));
}
