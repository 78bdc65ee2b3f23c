/*
 * test_helpers_more.c - the text helpers and sh_parse_seconds of
 * sdk/helpers (sh_helpers.h); the older helpers are in test_helpers.c.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers/sh_helpers.h"

Test(text, ascii_lower)
{
	cr_assert_eq(sh_ascii_lower('A'), 'a');
	cr_assert_eq(sh_ascii_lower('Z'), 'z');
	cr_assert_eq(sh_ascii_lower('a'), 'a');
	cr_assert_eq(sh_ascii_lower('@'), '@');
	cr_assert_eq(sh_ascii_lower('['), '[');
	cr_assert_eq(sh_ascii_lower(0xc4), 0xc4, "no locale: Latin-1 stays");
	cr_assert_eq(sh_ascii_lower(-1), -1);
}

Test(text, ascii_caseeq)
{
	cr_assert_eq(sh_ascii_caseeq("Subject", 7, "SUBJECT", 7), 1);
	cr_assert_eq(sh_ascii_caseeq("Subject", 7, "Subjec", 6), 0);
	cr_assert_eq(sh_ascii_caseeq("Subject", 6, "Subjec", 6), 1,
	    "only the lengths given are compared");
	cr_assert_eq(sh_ascii_caseeq("", 0, "", 0), 1);
	cr_assert_eq(sh_ascii_caseeq(NULL, 0, "", 0), 1);
	cr_assert_eq(sh_ascii_caseeq("a\xc4", 2, "A\xe4", 2), 0,
	    "octets >= 0x80 are compared exactly");
	cr_assert_eq(sh_ascii_caseeq("a\0b", 3, "A\0B", 3), 1, "NUL-safe");
}

Test(text, ascii_lower_copy)
{
	char buf[16];
	char self[] = "MiXeD.Example";

	cr_assert_str_eq(sh_ascii_lower_copy(buf, "Example.COM;rest", 11),
	    "example.com");
	cr_assert_str_eq(sh_ascii_lower_copy(buf, "", 0), "");
	cr_assert_str_eq(sh_ascii_lower_copy(self, self, 5), "mixed",
	    "in place");
}

Test(values, seconds)
{
	double v = -1;

	cr_assert_eq(sh_parse_seconds("2", 60, &v), 0);
	cr_assert_float_eq(v, 2.0, 1e-9);
	cr_assert_eq(sh_parse_seconds("0.5", 60, &v), 0);
	cr_assert_float_eq(v, 0.5, 1e-9);
	cr_assert_eq(sh_parse_seconds("0.050", 60, &v), 0);
	cr_assert_float_eq(v, 0.05, 1e-9);
	cr_assert_eq(sh_parse_seconds("0", 60, &v), 0);
	cr_assert_float_eq(v, 0.0, 1e-9);
	cr_assert_eq(sh_parse_seconds("60", 60, &v), 0);
	cr_assert_float_eq(v, 60.0, 1e-9);

	v = 7;
	cr_assert_eq(sh_parse_seconds("60.5", 60, &v), -1, "above max");
	cr_assert_eq(sh_parse_seconds("99999999999999999999", 60, &v), -1);
	cr_assert_eq(sh_parse_seconds("", 60, &v), -1);
	cr_assert_eq(sh_parse_seconds(NULL, 60, &v), -1);
	cr_assert_eq(sh_parse_seconds(".5", 60, &v), -1);
	cr_assert_eq(sh_parse_seconds("5.", 60, &v), -1);
	cr_assert_eq(sh_parse_seconds("-1", 60, &v), -1);
	cr_assert_eq(sh_parse_seconds("+1", 60, &v), -1);
	cr_assert_eq(sh_parse_seconds(" 1", 60, &v), -1);
	cr_assert_eq(sh_parse_seconds("1 ", 60, &v), -1);
	cr_assert_eq(sh_parse_seconds("1e3", 60, &v), -1);
	cr_assert_eq(sh_parse_seconds("0x10", 60, &v), -1);
	cr_assert_eq(sh_parse_seconds("inf", 60, &v), -1);
	cr_assert_eq(sh_parse_seconds("nan", 60, &v), -1);
	cr_assert_eq(sh_parse_seconds("1.2.3", 60, &v), -1);
	cr_assert_float_eq(v, 7.0, 1e-9, "*out untouched on errors");
}
