/*
 * test_roles.c - unit tests for server/roles.c (roles_check, roles_before)
 * and for how server/plugin.c reads a descriptor's roles
 *
 * The chains are struct plugin arrays built by hand (only name, roles and
 * roles_known matter to roles.c), so every rule is tested without dlopen.
 * Warnings go to the log: each test points the log at a temporary file
 * and reads back the lines.  The loader part hands plugin_from_descriptor
 * descriptors with a 1.0 and a current struct_size, and dlopens the
 * bundled sink and the test plugin abi_old from the build tree.
 */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "plugin.h"
#include "roles.h"

#ifndef SMTPHOOK_BUILD_DIR
#define SMTPHOOK_BUILD_DIR "build"
#endif

#define E SH_ROLE_EDITS
#define S SH_ROLE_STORES
#define R SH_ROLE_RELAYS
#define X SH_ROLE_RESTRICTS_RCPTS
/* roles_known = 0: a 1.0 plugin (roles stays 0, as the loader leaves it) */
#define UNKNOWN (-1)

static FILE *logfp;
static char logbuf[8192];
static char err[1024];

/* setup - a fresh log file per test (Criterion runs each in a process) */
static void
setup(void)
{
	logfp = tmpfile();
	cr_assert_not_null(logfp);
	log_setup(LOG_FORMAT_TEXT, 0);
	log_set_fd(fileno(logfp));
	err[0] = '\0';
}

static void
teardown(void)
{
	log_set_fd(STDERR_FILENO);
	if (logfp != NULL)
		fclose(logfp);
}

TestSuite(roles, .init = setup, .fini = teardown);

/* logged - everything logged so far, NUL-terminated */
static const char *
logged(void)
{
	size_t n;

	fflush(logfp);
	rewind(logfp);
	n = fread(logbuf, 1, sizeof(logbuf) - 1, logfp);
	logbuf[n] = '\0';
	return logbuf;
}

/* nlines - how many lines were logged */
static size_t
nlines(void)
{
	const char *p;
	size_t n = 0;

	for (p = logged(); *p != '\0'; p++)
		n += *p == '\n';
	return n;
}

/* chain - fill pl[0..n) with names "p0".. and the given roles (UNKNOWN
 * for a 1.0 plugin); the names are static, as p->name is never freed
 * here */
static void
chain(struct plugin *pl, size_t n, const int *roles)
{
	static const char *const names[] = { "p0", "p1", "p2", "p3", "p4" };
	size_t i;

	cr_assert_leq(n, sizeof(names) / sizeof(names[0]));
	memset(pl, 0, n * sizeof(*pl));
	for (i = 0; i < n; i++) {
		pl[i].name = (char *)(uintptr_t)names[i];
		pl[i].index = i;
		pl[i].roles_known = roles[i] != UNKNOWN;
		pl[i].roles = roles[i] != UNKNOWN ? (uint32_t)roles[i] : 0;
	}
}

/* check - roles_check over the roles given, as an int array literal */
#define check(...) check_((const int[]){ __VA_ARGS__ },			\
	sizeof((const int[]){ __VA_ARGS__ }) / sizeof(int))

static int
check_(const int *roles, size_t n)
{
	struct plugin pl[5];

	chain(pl, n, roles);
	return roles_check(pl, n, err, sizeof(err));
}

/* ---- roles_before ----------------------------------------------------- */

Test(roles, before_is_the_or_of_the_plugins_before)
{
	struct plugin pl[4];

	chain(pl, 4, (const int[]){ X, UNKNOWN, E | S, R });
	cr_assert_eq(roles_before(pl, 0), 0, "nothing before the first");
	cr_assert_eq(roles_before(pl, 1), X);
	cr_assert_eq(roles_before(pl, 2), X, "a 1.0 plugin adds nothing");
	cr_assert_eq(roles_before(pl, 3), X | E | S);
	cr_assert_eq(roles_before(pl, 4), X | E | S | R, "the whole chain");
	cr_assert_eq(roles_before(NULL, 0), 0, "an empty chain");
}

Test(roles, before_does_not_count_the_plugin_itself)
{
	struct plugin pl[2];

	chain(pl, 2, (const int[]){ S, E | R });
	cr_assert_eq(roles_before(pl, 1) & (E | R), 0);
}

/* ---- (a) a relay needs a recipient restriction before it -------------- */

Test(roles, relay_alone_is_refused)
{
	cr_assert_eq(check(R), -1);
	cr_assert_str_eq(err, "plugin p0 relays messages but no plugin before it "
	    "restricts recipients (an open relay); put a recipient restriction "
	    "(e.g. policy) before it");
	cr_assert_str_eq(logged(), "", "a refusal logs no warning: %s", logbuf);
}

Test(roles, restriction_before_the_relay_passes)
{
	cr_assert_eq(check(X, R), 0, "%s", err);
	cr_assert_eq(check(X, E, S, R), 0, "%s", err);
	cr_assert_eq(nlines(), 0, "no warning: %s", logbuf);
}

Test(roles, restriction_after_the_relay_is_too_late)
{
	cr_assert_eq(check(R, X), -1);
	cr_assert(strstr(err, "plugin p0 relays") != NULL, "%s", err);
}

Test(roles, a_relay_that_restricts_itself_still_needs_one_before)
{
	/* Its own rcpt hook runs, but the rule asks for one before it. */
	cr_assert_eq(check(R | X), -1);
}

Test(roles, the_second_relay_is_named)
{
	cr_assert_eq(check(S, R), -1);
	cr_assert(strstr(err, "plugin p1 relays") != NULL, "%s", err);
	cr_assert_eq(check(X, R, R), 0, "one restriction covers both: %s", err);
}

Test(roles, unknown_roles_do_not_restrict)
{
	/* A 1.0 plugin may refuse recipients, but it has not said so. */
	cr_assert_eq(check(UNKNOWN, R), -1);
	cr_assert(strstr(err, "plugin p1 relays") != NULL, "%s", err);
}

Test(roles, refusal_comes_before_any_warning)
{
	/* Edits after a store would warn; the refusal wins and logs none. */
	cr_assert_eq(check(S, E, R), -1);
	cr_assert_str_eq(logged(), "", "%s", logbuf);
}

Test(roles, a_long_name_is_cut_not_overflowed)
{
	struct plugin pl[1];
	char small[32];

	chain(pl, 1, (const int[]){ R });
	cr_assert_eq(roles_check(pl, 1, small, sizeof(small)), -1);
	cr_assert_eq(strlen(small), sizeof(small) - 1);
}

/* ---- (b) nothing can accept a message --------------------------------- */

Test(roles, no_taker_warns)
{
	cr_assert_eq(check(0), 0);
	cr_assert(strstr(logged(), "warn: no plugin in the chain can accept a "
	    "message: every message would get 451 4.3.0\n") != NULL, "%s", logbuf);
	cr_assert_eq(nlines(), 1, "%s", logbuf);
}

Test(roles, no_taker_among_several_warns_once)
{
	cr_assert_eq(check(X, E, 0), 0);
	cr_assert(strstr(logged(), "can accept") != NULL, "%s", logbuf);
	cr_assert_eq(nlines(), 1, "%s", logbuf);
}

Test(roles, empty_chain_warns)
{
	cr_assert_eq(roles_check(NULL, 0, err, sizeof(err)), 0);
	cr_assert(strstr(logged(), "can accept a message") != NULL, "%s", logbuf);
	cr_assert_eq(nlines(), 1, "%s", logbuf);
}

Test(roles, a_store_or_a_relay_can_accept)
{
	cr_assert_eq(check(0, S), 0);
	cr_assert_eq(check(X, R, 0), 0);
	cr_assert_str_eq(logged(), "", "%s", logbuf);
}

Test(roles, unknown_roles_may_accept)
{
	cr_assert_eq(check(UNKNOWN), 0);
	cr_assert_eq(check(0, UNKNOWN, X), 0);
	cr_assert_eq(check(UNKNOWN, 0), 0);
	cr_assert_str_eq(logged(), "", "a 1.0 plugin may accept: %s", logbuf);
}

/* ---- (c) an editor after a storing or relaying plugin ------------------ */

Test(roles, editor_after_store_warns)
{
	cr_assert_eq(check(S, E), 0);
	cr_assert(strstr(logged(), "warn: plugin p1 edits messages after plugin p0 "
	    "stores or relays them: p0 does not see its edits\n") != NULL, "%s",
	    logbuf);
	cr_assert_eq(nlines(), 1, "%s", logbuf);
}

Test(roles, editor_after_relay_warns)
{
	cr_assert_eq(check(X, R, E), 0, "%s", err);
	cr_assert(strstr(logged(), "plugin p2 edits messages after plugin p1") !=
	    NULL, "%s", logbuf);
	cr_assert_eq(nlines(), 1, "%s", logbuf);
}

Test(roles, editor_before_store_is_fine)
{
	cr_assert_eq(check(E, S), 0);
	cr_assert_eq(check(X, E, R), 0, "%s", err);
	cr_assert_str_eq(logged(), "", "%s", logbuf);
}

Test(roles, each_late_editor_warns_naming_the_first_taker)
{
	cr_assert_eq(check(S, X, S, E, E), 0);
	cr_assert(strstr(logged(), "plugin p3 edits messages after plugin p0 ") !=
	    NULL, "%s", logbuf);
	cr_assert(strstr(logbuf, "plugin p4 edits messages after plugin p0 ") !=
	    NULL, "%s", logbuf);
	cr_assert_eq(nlines(), 2, "%s", logbuf);
}

Test(roles, a_plugin_that_edits_and_stores_does_not_follow_itself)
{
	cr_assert_eq(check(E | S), 0);
	cr_assert_str_eq(logged(), "", "%s", logbuf);
}

Test(roles, unknown_roles_are_no_taker_for_the_editor_rule)
{
	cr_assert_eq(check(UNKNOWN, E), 0);
	cr_assert_str_eq(logged(), "", "%s", logbuf);
}

Test(roles, editors_without_a_taker_only_get_the_451_warning)
{
	/* Nothing stores or relays before the editors, so the editor rule
	 * says nothing; that nothing can accept is the one warning. */
	cr_assert_eq(check(E, E), 0);
	cr_assert_eq(nlines(), 1, "%s", logbuf);
	cr_assert(strstr(logbuf, "can accept") != NULL, "%s", logbuf);
}

/* ---- the loader: roles inside struct_size only ------------------------ */

static sh_verdict
eom_accept(sh_ctx *ctx)
{
	(void)ctx;
	return SH_ACCEPT;
}

Test(roles, loader_reads_roles_of_a_current_descriptor)
{
	static const sh_plugin d = {
		.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
		.struct_size = sizeof(sh_plugin), .name = "cur",
		.eom = eom_accept, .roles = SH_ROLE_STORES | SH_ROLE_EDITS,
	};
	struct plugin p;

	cr_assert_eq(plugin_from_descriptor(&p, &d, NULL, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(p.roles_known, 1);
	cr_assert_eq(p.roles, SH_ROLE_STORES | SH_ROLE_EDITS);
	plugin_unload(&p);
}

Test(roles, loader_declares_none_is_known)
{
	static const sh_plugin d = {
		.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
		.struct_size = sizeof(sh_plugin), .name = "none",
	};
	struct plugin p;

	cr_assert_eq(plugin_from_descriptor(&p, &d, NULL, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(p.roles_known, 1, "0 is a declaration");
	cr_assert_eq(p.roles, 0);
	plugin_unload(&p);
}

Test(roles, loader_ignores_roles_beyond_struct_size)
{
	/* A 1.0 descriptor ends after `disconnect`; whatever lies behind it
	 * in memory (here: RELAYS) is not its roles. */
	static const sh_plugin d = {
		.abi_major = SH_ABI_MAJOR, .abi_minor = 0,
		.struct_size = offsetof(sh_plugin, roles), .name = "old",
		.eom = eom_accept, .roles = SH_ROLE_RELAYS,
	};
	struct plugin p;

	cr_assert_eq(plugin_from_descriptor(&p, &d, NULL, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(p.roles_known, 0);
	cr_assert_eq(p.roles, 0);
	cr_assert_eq(roles_check(&p, 1, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(logged(), "", "%s", logbuf);
	plugin_unload(&p);
}

/* build_path - SMTPHOOK_BUILD_DIR (env first, then the macro) + rel */
static const char *
build_path(const char *rel, char *buf, size_t size)
{
	const char *dir = getenv("SMTPHOOK_BUILD_DIR");

	snprintf(buf, size, "%s/%s", dir != NULL && dir[0] != '\0' ? dir :
	    SMTPHOOK_BUILD_DIR, rel);
	return buf;
}

Test(roles, loader_dlopened_plugins)
{
	char path[PATH_MAX];
	struct plugin p;

	cr_assert_eq(plugin_load(&p, build_path("plugins/sink.so", path,
	    sizeof(path)), NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(p.roles_known, 1);
	cr_assert_eq(p.roles, SH_ROLE_STORES, "sink stores (discards)");
	plugin_unload(&p);
	/* abi_old's descriptor stops before vrfy: long before roles. */
	cr_assert_eq(plugin_load(&p, build_path("tests/plugins/abi_old.so", path,
	    sizeof(path)), NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(p.roles_known, 0);
	cr_assert_eq(p.roles, 0);
	plugin_unload(&p);
}
