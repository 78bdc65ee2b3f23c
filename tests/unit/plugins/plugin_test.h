/*
 * plugin_test.h - what the plugin unit tests share (tests/unit/plugins/,
 * tests/unit/test_example_plugin.c); included, never built on its own
 * (CMake builds only test_*.c).
 *
 *	plugin_start_fails(SIZEFILTER, "max=lots", "max=lots: not a size");
 */
#ifndef PLUGIN_TEST_H
#define PLUGIN_TEST_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sh_harness.h"

/*
 * plugin_start_fails - loading so with args ("" for none) must fail, or
 * starting it must: the one-line reason must hold needle.
 */
static inline void
plugin_start_fails(const char *so, const char *args, const char *needle)
{
	char spec[2048];
	sh_harness *h = sh_harness_new();

	cr_assert_not_null(h);
	snprintf(spec, sizeof(spec), "%s%s%s", so, args[0] != '\0' ? ":" : "", args);
	if (sh_harness_load(h, spec) == 0)
		cr_assert_eq(sh_harness_start(h), -1, "'%s' must not start", spec);
	cr_assert(strstr(sh_harness_error(h), needle) != NULL, "'%s': %s", spec,
	    sh_harness_error(h));
	cr_assert(strchr(sh_harness_error(h), '\n') == NULL, "one line: %s",
	    sh_harness_error(h));
	sh_harness_free(h);
}

#endif /* PLUGIN_TEST_H */
