/*
 * test_plugin_loader.c - unit tests for server/plugin.c (plugin_load)
 *
 * Loads real shared objects from the build tree: the bundled sink plugin
 * (by path and by NAME), the SDK example domain_guard (which declares
 * argument keys), a system library that is not a plugin, and a text file.
 * Test plugins under build/tests/plugins are used when they exist.
 */
#include <criterion/criterion.h>

#include <dlfcn.h>
#include <ev.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin.h"

#ifndef SMTPHOOK_BUILD_DIR
#define SMTPHOOK_BUILD_DIR "build"
#endif

static struct plugin P;
static char err[2048];
static char path[PATH_MAX];

/* build_path - SMTPHOOK_BUILD_DIR (env first, then the macro) + rel */
static const char *
build_path(const char *rel)
{
	const char *dir = getenv("SMTPHOOK_BUILD_DIR");

	snprintf(path, sizeof(path), "%s/%s", dir != NULL && dir[0] != '\0' ?
	    dir : SMTPHOOK_BUILD_DIR, rel);
	return path;
}

/* load - plugin_load(spec) with an optional plugin_dir */
static int
load(const char *spec, const char *dir)
{
	plugin_unload(&P);
	err[0] = '\0';
	return plugin_load(&P, spec, dir, err, sizeof(err));
}

/* load_fails - the spec is refused and the error contains `want` */
static void
load_fails(const char *spec, const char *dir, const char *want)
{
	cr_assert_eq(load(spec, dir), -1, "loaded: %s", spec);
	cr_assert(strstr(err, want) != NULL, "'%s': error '%s' lacks '%s'",
	    spec, err, want);
	cr_assert_null(P.dl, "nothing kept after a failure");
	cr_assert_null(P.name);
	cr_assert_null(P.args);
}

static void
fini(void)
{
	plugin_unload(&P);
}

TestSuite(loader, .fini = fini);

Test(loader, sink_by_path)
{
	char spec[PATH_MAX + 64];

	snprintf(spec, sizeof(spec), "%s", build_path("plugins/sink.so"));
	cr_assert_eq(load(spec, NULL), 0, "%s", err);
	cr_assert_not_null(P.dl);
	cr_assert_not_null(P.desc);
	cr_assert_eq(P.desc->abi_major, SH_ABI_MAJOR);
	cr_assert_str_eq(P.name, "sink");
	cr_assert_str_eq(P.path, spec);
	cr_assert_not_null(plugin_hook(&P, eom));
	cr_assert_not_null(plugin_hook(&P, chunk));
	cr_assert_null(plugin_hook(&P, rcpt));
	cr_assert_eq(P.nargs, 0);
	cr_assert_float_eq(P.timeout, 30, 1e-9, "default timeout");
	cr_assert_eq(P.on_timeout, SH_TEMPFAIL, "default on_timeout");
	plugin_unload(&P);
	cr_assert_null(P.dl);
	cr_assert_null(P.name);
	cr_assert_null(P.path);
	cr_assert_null(P.desc);
}

Test(loader, sink_by_name_with_plugin_dir)
{
	char dir[PATH_MAX], want[PATH_MAX + 16];

	snprintf(dir, sizeof(dir), "%s", build_path("plugins"));
	cr_assert_eq(load("sink", dir), 0, "%s", err);
	snprintf(want, sizeof(want), "%s/sink.so", dir);
	cr_assert_str_eq(P.path, want);
	cr_assert_str_eq(P.name, "sink");
	cr_assert_eq(load("sink.so", dir), 0, "NAME.so works too: %s", err);
	cr_assert_str_eq(P.path, want);
	cr_assert_eq(load("sink:timeout=2", dir), 0, "%s", err);
	cr_assert_float_eq(P.timeout, 2, 1e-9);
}

Test(loader, missing_and_bad_names)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", build_path("plugins"));
	load_fails("no_such_plugin", dir, "no such plugin");
	cr_assert(strstr(err, dir) != NULL, "names the directory: %s", err);
	load_fails("bad name", dir, "bad plugin name");
	load_fails("sink$", dir, "bad plugin name");
	load_fails("/nonexistent/dir/sink.so", NULL, "/nonexistent/dir/sink.so");
	cr_assert(strstr(err, "No such file") != NULL, "%s", err);
	load_fails("", dir, "empty");
	load_fails(":timeout=5", dir, "empty");
}

Test(loader, search_dirs)
{
	const char *dirs[4];
	char self[PATH_MAX];
	size_t n = 0;

	plugin_search_dirs("/opt/x", dirs, &n, self, sizeof(self));
	cr_assert_eq(n, 1, "--plugin-dir alone");
	cr_assert_str_eq(dirs[0], "/opt/x");
	plugin_search_dirs(NULL, dirs, &n, self, sizeof(self));
	cr_assert_eq(n, 3);
	cr_assert(strstr(dirs[0], "/../plugins") != NULL, "%s", dirs[0]);
	/* the installed layout relative to the executable, for a tree
	 * installed with cmake --install --prefix elsewhere */
	cr_assert(strstr(dirs[1], "/" SMTPHOOK_PLUGIN_RELDIR) != NULL, "%s", dirs[1]);
	cr_assert_str_eq(dirs[2], SMTPHOOK_PLUGIN_LIBDIR);
}

/* lib_of - the path of the shared object that defines sym */
static int
lib_of(const void *sym, char *out, size_t size)
{
	Dl_info info;

	if (dladdr(sym, &info) == 0 || info.dli_fname == NULL ||
	    info.dli_fname[0] != '/')
		return -1;
	snprintf(out, size, "%s", info.dli_fname);
	return 0;
}

Test(loader, system_library_is_not_a_plugin)
{
	char lib[PATH_MAX];

	if (lib_of((const void *)ev_version_major, lib, sizeof(lib)) < 0)
		snprintf(lib, sizeof(lib), "/lib/x86_64-linux-gnu/libc.so.6");
	load_fails(lib, NULL, "not an smtphook plugin");
	cr_assert(strstr(err, "smtphook_plugin") != NULL, "names the symbol: %s", err);
	cr_assert(strstr(err, lib) != NULL, "names the file: %s", err);
}

Test(loader, text_file_is_not_loadable)
{
	char name[] = "/tmp/smtphook_notplugin_XXXXXX";
	int fd = mkstemp(name);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "hello\n", 6), 6);
	close(fd);
	load_fails(name, NULL, "not a loadable plugin");
	cr_assert(strstr(err, name) != NULL, "%s", err);
	unlink(name);

	/* A directory is not either. */
	load_fails("/tmp/", NULL, "not a loadable plugin");
}

Test(loader, reserved_args)
{
	char spec[PATH_MAX + 64];

	snprintf(spec, sizeof(spec), "%s:timeout=5,on_timeout=continue",
	    build_path("plugins/sink.so"));
	cr_assert_eq(load(spec, NULL), 0, "%s", err);
	cr_assert_float_eq(P.timeout, 5, 1e-9);
	cr_assert_eq(P.on_timeout, SH_CONTINUE);
	cr_assert_eq(P.nargs, 0, "reserved keys are not passed to the plugin");
	cr_assert_str_eq(P.path, build_path("plugins/sink.so"));

	snprintf(spec, sizeof(spec), "%s:on_timeout=reject,timeout=0.25",
	    build_path("plugins/sink.so"));
	cr_assert_eq(load(spec, NULL), 0, "%s", err);
	cr_assert_float_eq(P.timeout, 0.25, 1e-9);
	cr_assert_eq(P.on_timeout, SH_REJECT);

	snprintf(spec, sizeof(spec), "%s:on_timeout=tempfail", build_path("plugins/sink.so"));
	cr_assert_eq(load(spec, NULL), 0, "%s", err);
	cr_assert_eq(P.on_timeout, SH_TEMPFAIL);

	snprintf(spec, sizeof(spec), "%s:", build_path("plugins/sink.so"));
	cr_assert_eq(load(spec, NULL), 0, "an empty argument list: %s", err);

	snprintf(spec, sizeof(spec), "%s:timeout=0", build_path("plugins/sink.so"));
	load_fails(spec, NULL, "timeout=0");
	snprintf(spec, sizeof(spec), "%s:timeout=soon", build_path("plugins/sink.so"));
	load_fails(spec, NULL, "sink: timeout=soon");
	snprintf(spec, sizeof(spec), "%s:on_timeout=accept", build_path("plugins/sink.so"));
	load_fails(spec, NULL, "on_timeout=accept");
}

Test(loader, args_refused)
{
	char spec[PATH_MAX + 64];

	/* sink declares no keys: any other key is refused. */
	snprintf(spec, sizeof(spec), "%s:dir=/tmp", build_path("plugins/sink.so"));
	load_fails(spec, NULL, "sink: unknown argument 'dir'");
	snprintf(spec, sizeof(spec), "%s:timeout", build_path("plugins/sink.so"));
	load_fails(spec, NULL, "argument 'timeout' is not key=value");
	snprintf(spec, sizeof(spec), "%s:=5", build_path("plugins/sink.so"));
	load_fails(spec, NULL, "is not key=value");
	snprintf(spec, sizeof(spec), "%s:timeout=5,timeout=6", build_path("plugins/sink.so"));
	load_fails(spec, NULL, "'timeout' given twice");
	snprintf(spec, sizeof(spec), "%s:on_timeout=reject,on_timeout=continue",
	    build_path("plugins/sink.so"));
	load_fails(spec, NULL, "'on_timeout' given twice");
}

Test(loader, declared_keys)
{
	char spec[PATH_MAX + 128];
	const char *so = build_path("examples/domain_guard.so");

	cr_assert_eq(access(so, R_OK), 0, "%s not built: build it with `make build`", so);
	snprintf(spec, sizeof(spec), "%s:domains=a.example;b.example,max_bad=3,timeout=9",
	    build_path("examples/domain_guard.so"));
	cr_assert_eq(load(spec, NULL), 0, "%s", err);
	cr_assert_str_eq(P.name, "domain_guard");
	cr_assert_eq(P.nargs, 2);
	cr_assert_str_eq(P.args[0].key, "domains");
	cr_assert_str_eq(P.args[0].value, "a.example;b.example");
	cr_assert_str_eq(P.args[1].key, "max_bad");
	cr_assert_str_eq(P.args[1].value, "3");
	cr_assert_float_eq(P.timeout, 9, 1e-9);

	snprintf(spec, sizeof(spec), "%s:domains=", build_path("examples/domain_guard.so"));
	cr_assert_eq(load(spec, NULL), 0, "an empty value is a value: %s", err);
	cr_assert_str_eq(P.args[0].value, "");

	snprintf(spec, sizeof(spec), "%s:domains=a,domains=b",
	    build_path("examples/domain_guard.so"));
	load_fails(spec, NULL, "domain_guard: argument 'domains' given twice");
	snprintf(spec, sizeof(spec), "%s:domain=a", build_path("examples/domain_guard.so"));
	load_fails(spec, NULL, "domain_guard: unknown argument 'domain'");
	snprintf(spec, sizeof(spec), "%s:Domains=a", build_path("examples/domain_guard.so"));
	load_fails(spec, NULL, "unknown argument 'Domains'");
	snprintf(spec, sizeof(spec), "%s:domains", build_path("examples/domain_guard.so"));
	load_fails(spec, NULL, "not key=value");
}

Test(loader, colon_in_directory)
{
	char dir[] = "/tmp/smtphook:colon_XXXXXX", link[PATH_MAX], spec[PATH_MAX + 32];

	cr_assert_not_null(mkdtemp(dir));
	snprintf(link, sizeof(link), "%s/sink.so", dir);
	cr_assert_eq(symlink(build_path("plugins/sink.so"), link), 0);
	snprintf(spec, sizeof(spec), "%s:timeout=3", link);
	cr_assert_eq(load(spec, NULL), 0, "the args start after the last '/': %s", err);
	cr_assert_str_eq(P.path, link);
	cr_assert_float_eq(P.timeout, 3, 1e-9);
	unlink(link);
	rmdir(dir);
}

Test(loader, abi_checks_with_test_plugins)
{
	const char *future = build_path("tests/plugins/abi_future_major.so");
	char f[PATH_MAX];

	cr_assert_eq(access(future, R_OK), 0,
	    "%s not built: build the test plugins with `make build`", future);
	snprintf(f, sizeof(f), "%s", future);
	load_fails(f, NULL, "built for plugin ABI 2.");
	cr_assert(strstr(err, "host is 1.") != NULL, "%s", err);

	/* A newer minor may call past the end of this host's table. */
	snprintf(f, sizeof(f), "%s", build_path("tests/plugins/abi_future_minor.so"));
	load_fails(f, NULL, "needs a newer smtphookd");
	cr_assert(strstr(err, "host is 1.") != NULL, "%s", err);

	snprintf(f, sizeof(f), "%s", build_path("tests/plugins/no_symbol.so"));
	load_fails(f, NULL, "not an smtphook plugin");
	snprintf(f, sizeof(f), "%s", build_path("tests/plugins/abi_old.so"));
	cr_assert_eq(load(f, NULL), 0, "an older minor loads: %s", err);
	cr_assert_null(plugin_hook(&P, vrfy), "hooks past struct_size are absent");
	cr_assert_null(plugin_hook(&P, disconnect));
}

Test(loader, descriptor_of_a_newer_minor_refused)
{
	static const sh_plugin newer = {
		.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR + 1,
		.struct_size = sizeof(sh_plugin), .name = "newer",
	};
	struct plugin p;
	char e[512];

	cr_assert_eq(plugin_from_descriptor(&p, &newer, "", e, sizeof(e)), -1);
	cr_assert(strstr(e, "needs a newer smtphookd") != NULL, "%s", e);
}

Test(sdk, struct_has_tests_the_size)
{
	sh_host_api api = { .size = offsetof(sh_host_api, hook_name) };
	sh_ctx ctx = { .api = &api };
	sh_tx_info ti = { .size = sizeof(ti) };

	cr_assert(SH_API_HAS(&ctx, reply));
	cr_assert(!SH_API_HAS(&ctx, hook_name), "a member past size is absent");
	api.size = sizeof(api);
	cr_assert(SH_API_HAS(&ctx, hook_name));
	cr_assert(SH_STRUCT_HAS(&ti, sh_tx_info, header_size));
	ti.size = offsetof(sh_tx_info, header_size);
	cr_assert(!SH_STRUCT_HAS(&ti, sh_tx_info, header_size));
}

Test(loader, unload_twice_is_harmless)
{
	struct plugin q;

	memset(&q, 0, sizeof(q));
	plugin_unload(&q);
	cr_assert_eq(plugin_load(&q, build_path("plugins/sink.so"), NULL, err,
	    sizeof(err)), 0, "%s", err);
	plugin_unload(&q);
	plugin_unload(&q);
	cr_assert_null(q.dl);
}
