/*
 * test_spamfilter.c - the spamfilter plugin: its rules parser (compiled in
 * directly) and its scoring through the harness running the real core
 * (spamfilter.so followed by sink.so, so every transaction ends and its
 * final header section with the X-Spam-* headers spamfilter inserted is
 * recorded).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "plugins/plugin_test.h"
#include "sh_harness.h"

#include "../../../plugins/spamfilter/rules.c"

#define SPAMFILTER_SO SMTPHOOK_BUILD_DIR "/plugins/spamfilter.so"
#define SINK_SO SMTPHOOK_BUILD_DIR "/plugins/sink.so"
#define DEFAULT_RULES SMTPHOOK_SOURCE_DIR "/plugins/spamfilter/default.rules"

/* ---- helpers ---- */

static char errbuf[RULES_ERR_MAX];

/* parse - rules_parse of a string, named "t.rules" */
static struct rules *
parse(const char *text)
{
	struct rules *r = NULL;

	errbuf[0] = '\0';
	if (rules_parse(text, strlen(text), "t.rules", 0, &r, errbuf,
	    sizeof(errbuf)) < 0)
		return NULL;
	return r;
}

/* parse_err - the error of a rules text that must not parse */
static const char *
parse_err(const char *text)
{
	struct rules *r = parse(text);

	cr_assert_null(r, "parsed unexpectedly: %s", text);
	return errbuf;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Temporary files of this test process, removed when it exits. */
static char tmpfiles[16][64];
static int ntmpfiles;

static void
remove_tmpfiles(void)
{
	for (int i = 0; i < ntmpfiles; i++)
		unlink(tmpfiles[i]);
}

static char *
new_tmpfile(int *fd)
{
	char *path;

	cr_assert_lt(ntmpfiles, 16);
	if (ntmpfiles == 0)
		atexit(remove_tmpfiles);
	path = tmpfiles[ntmpfiles++];
	snprintf(path, 64, "/tmp/spamfilter-test-XXXXXX");
	*fd = mkstemp(path);
	return path;
}

/* write_rules - the text in a fresh temporary file; its path */
static const char *
write_rules(const char *text)
{
	const char *path;
	int fd;

	path = new_tmpfile(&fd);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

/* start - harness with spamfilter (rules text, extra args) + sink,
 * connected from ip and greeted with EHLO helo */
static sh_harness *
start(const char *rules, const char *args, const char *ip, const char *helo)
{
	sh_harness *h = sh_harness_new();
	char spec[512], cmd[300];

	cr_assert_not_null(h);
	snprintf(spec, sizeof(spec), SPAMFILTER_SO ":rules=%s%s%s",
	    write_rules(rules), args != NULL ? "," : "", args != NULL ? args : "");
	cr_assert_eq(sh_harness_load(h, spec), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_load(h, SINK_SO), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_start(h), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_connect(h, ip != NULL ? ip : "192.0.2.7"), 220);
	snprintf(cmd, sizeof(cmd), "EHLO %s", helo != NULL ? helo : "client.example");
	cr_assert_eq(sh_harness_cmd(h, cmd), 250);
	return h;
}

/* send_msg - one transaction with msg sent in writes of chunk octets;
 * the final code */
static int
send_msg(sh_harness *h, const char *from, const char *msg, size_t len, size_t chunk)
{
	char line[300];
	int code;

	snprintf(line, sizeof(line), "MAIL FROM:<%s>", from);
	if ((code = sh_harness_cmd(h, line)) != 250)
		return code;
	if ((code = sh_harness_cmd(h, "RCPT TO:<user@example.org>")) != 250)
		return code;
	if ((code = sh_harness_cmd(h, "DATA")) != 354)
		return code;
	return sh_harness_body(h, msg, len, chunk);
}

static int
send_str(sh_harness *h, const char *msg, size_t chunk)
{
	return send_msg(h, "sender@example.net", msg, strlen(msg), chunk);
}

/* header - the value of NAME in the last final header section (after
 * the trace block, where the X-Spam-* fields are inserted), or NULL */
static const char *
header(sh_harness *h, const char *name)
{
	static char value[1024];
	const char *t = sh_harness_head(h, NULL), *p, *e;
	char needle[100];
	size_t n;

	cr_assert_not_null(t, "no final head recorded");
	snprintf(needle, sizeof(needle), "\r\n%s: ", name);
	if ((p = strstr(t, needle)) == NULL)
		return NULL;
	p += strlen(needle);
	e = strstr(p, "\r\n");
	n = (size_t)(e - p) < sizeof(value) - 1 ? (size_t)(e - p) : sizeof(value) - 1;
	memcpy(value, p, n);
	value[n] = '\0';
	return value;
}

/* Capture what the core and the plugin log (stderr) into a file; the
 * tests run in their own process each. */
static const char *logpath;

static void
capture_log(void)
{
	int fd;

	logpath = new_tmpfile(&fd);
	cr_assert(fd >= 0);
	fflush(stderr);
	dup2(fd, 2);
	close(fd);
}

static char *
read_log(void)
{
	static char buf[1 << 16];
	int fd = open(logpath, O_RDONLY);
	ssize_t n;

	fflush(stderr);
	cr_assert(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* send_bounded - send msg through h (then freed) within 2 s; the
 * X-Spam-Rules value must be rules_header */
static void
send_bounded(sh_harness *h, const char *msg, size_t len, const char *rules_header)
{
	double t0 = now(), dt;

	cr_assert_eq(send_msg(h, "a@example.net", msg, len, 0), 250);
	dt = now() - t0;
	/* Under valgrind everything is 20-50 times slower. */
	cr_assert_lt(dt, under_valgrind() ? 30.0 : 2.0, "took %.3f s", dt);
	cr_assert_str_eq(header(h, "X-Spam-Rules"), rules_header);
	sh_harness_free(h);
}

/* init_fails - spamfilter with a rules file of rules_text (NULL: no
 * rules= at all) and args (may be NULL) must not start, saying needle */
static void
init_fails(const char *rules_text, const char *args, const char *needle)
{
	char a[512];

	if (rules_text == NULL)
		snprintf(a, sizeof(a), "%s", args != NULL ? args : "");
	else
		snprintf(a, sizeof(a), "rules=%s%s%s", write_rules(rules_text),
		    args != NULL ? "," : "", args != NULL ? args : "");
	plugin_start_fails(SPAMFILTER_SO, a, needle);
}

/* ---- the rules parser ---- */

Test(rules, every_where_and_labels)
{
	struct rules *r = parse(
	    "# a comment\n"
	    "\n"
	    "  1.5 header:Subject /cheap/i  SUBJ_CHEAP\n"
	    "2 body /viagra/ # no name: known by its line\n"
	    "-0.5 from /@example\\.org$/ FROM_OK\n"
	    "0.25 rcpt /^postmaster@/i\n"
	    "1 HELO /^\\d+\\.\\d+\\.\\d+\\.\\d+$/ HELO_IP\n"
	    "+3 ip /^10\\./\n");

	cr_assert_not_null(r, "%s", errbuf);
	cr_assert_eq(r->n, 6);
	cr_assert_eq(r->v[0].where, RULE_HEADER);
	cr_assert_str_eq(r->v[0].header, "Subject");
	cr_assert_eq(r->v[0].score, 1500);
	cr_assert_str_eq(r->v[0].label, "SUBJ_CHEAP");
	cr_assert_eq(r->v[0].line, 3);
	cr_assert_eq(r->v[1].where, RULE_BODY);
	cr_assert_str_eq(r->v[1].label, "4");
	cr_assert_eq(r->v[2].where, RULE_FROM);
	cr_assert_eq(r->v[2].score, -500);
	cr_assert_eq(r->v[3].where, RULE_RCPT);
	cr_assert_eq(r->v[3].score, 250);
	cr_assert_str_eq(r->v[3].label, "6");
	cr_assert_eq(r->v[4].where, RULE_HELO);
	cr_assert_eq(r->v[5].where, RULE_IP);
	cr_assert_eq(r->v[5].score, 3000);
	for (size_t w = 0; w < RULE_WHERE_COUNT; w++)
		cr_assert_eq(r->count[w], 1, "where %zu", w);
	cr_assert_eq(r->idx[RULE_IP][0], 5);
	cr_assert_str_eq(r->v[1].pattern, "viagra");
	rules_free(r);
}

Test(rules, scores)
{
	static const struct { const char *s; int64_t v; } good[] = {
		{ "0", 0 }, { "3", 3000 }, { "-2.5", -2500 }, { "+0.25", 250 },
		{ ".5", 500 }, { "-.125", -125 }, { "10.", 10000 },
		{ "1000000", 1000000000 }, { "-0", 0 }, { "007.100", 7100 },
	};
	static const char *const bad[] = {
		"", "-", "+", ".", "1.2345", "1e3", "0x10", "1,5", "--1",
		"1000000.001", "99999999999999999999", " 1", "1 ", "abc",
	};
	int64_t v;
	char buf[32];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_assert_eq(rules_parse_score(good[i].s, strlen(good[i].s), &v), 0,
		    "%s", good[i].s);
		cr_assert_eq(v, good[i].v, "%s", good[i].s);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(rules_parse_score(bad[i], strlen(bad[i]), &v), -1,
		    "'%s'", bad[i]);
	rules_format_score(7500, buf, sizeof(buf));
	cr_assert_str_eq(buf, "7.5");
	rules_format_score(-2500, buf, sizeof(buf));
	cr_assert_str_eq(buf, "-2.5");
	rules_format_score(1250, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1.3");		/* half away from zero */
	rules_format_score(-1249, buf, sizeof(buf));
	cr_assert_str_eq(buf, "-1.2");
	rules_format_score(-40, buf, sizeof(buf));
	cr_assert_str_eq(buf, "0.0");		/* never "-0.0" */
	rules_format_score(0, buf, sizeof(buf));
	cr_assert_str_eq(buf, "0.0");
}

Test(rules, flags_change_matching)
{
	struct rules *r = parse(
	    "1 body /hello world/ PLAIN\n"
	    "1 body /hello world/i CASELESS\n"
	    "1 body /hello   world # spaces ignored/x EXTENDED\n"
	    "1 body /^\\w$/ BYTES\n"
	    "1 body /^\\w$/u UNICODE\n"
	    "1 body /a.b/s DOTALL\n"
	    "1 body /^b$/m MULTI\n"
	    "1 body /x/imsxu ALL\n");
	struct rules_matcher *m = rules_matcher_new(RULES_MATCH_LIMIT, RULES_DEPTH_LIMIT);

	cr_assert_not_null(r, "%s", errbuf);
	cr_assert_not_null(m);
	cr_assert_eq(r->v[0].flags, 0);
	cr_assert_eq(r->v[7].flags, RULE_F_I | RULE_F_M | RULE_F_S | RULE_F_X | RULE_F_U);
	cr_assert_eq(rules_match(m, &r->v[0], "Hello World", 11, 0, NULL), 0);
	cr_assert_eq(rules_match(m, &r->v[1], "Hello World", 11, 0, NULL), 1);
	cr_assert_eq(rules_match(m, &r->v[2], "say helloworld", 14, 0, NULL), 1);
	cr_assert_eq(rules_match(m, &r->v[3], "\xc3\xbc", 2, 0, NULL), 0);
	cr_assert_eq(rules_match(m, &r->v[4], "\xc3\xbc", 2, 0, NULL), 1);
	/* u: invalid UTF-8 in the subject is no error, just no match there */
	cr_assert_eq(rules_match(m, &r->v[4], "\xff", 1, 0, NULL), 0);
	cr_assert_eq(rules_match(m, &r->v[5], "a\nb", 3, 0, NULL), 1);
	cr_assert_eq(rules_match(m, &r->v[6], "a\nb", 3, 0, NULL), 1);
	/* NOTBOL / NOTEOL as used for pieces of long lines */
	cr_assert_eq(rules_match(m, &r->v[3], "a", 1, PCRE2_NOTBOL, NULL), 0);
	cr_assert_eq(rules_match(m, &r->v[3], "a", 1, PCRE2_NOTEOL, NULL), 0);
	rules_matcher_free(m);
	rules_free(r);
}

Test(rules, unknown_flag_names_file_and_line)
{
	cr_assert_str_eq(parse_err("# ok\n1 body /a/i\n2 body /b/q\n"),
	    "t.rules:3: unknown flag 'q' after the regex (flags are i, m, s, x, u)");
}

Test(rules, bad_regex_has_pcre2_message_and_offset)
{
	const char *e = parse_err("1 body /ok/\n\n5 header:Subject /(unclosed/i NAME\n");

	cr_assert(strncmp(e, "t.rules:3: bad regex /(unclosed/: ", 34) == 0, "%s", e);
	cr_assert(strstr(e, "missing closing parenthesis") != NULL, "%s", e);
	cr_assert(strstr(e, "at offset 9") != NULL, "%s", e);
	e = parse_err("1 body /a{2,1}/\n");
	cr_assert(strstr(e, "t.rules:1: bad regex /a{2,1}/: ") == e, "%s", e);
	cr_assert(strstr(e, "at offset") != NULL, "%s", e);
	/* (*UTF) needs the u flag. */
	e = parse_err("1 body /(*UTF)x/\n");
	cr_assert(strstr(e, "t.rules:1: bad regex") == e, "%s", e);
}

Test(rules, regex_delimiters)
{
	struct rules *r = parse("1 body /https?:\\/\\/x/ SLASH\n1 body /a b\\\\/ BACKSLASH\n");
	struct rules_matcher *m = rules_matcher_new(RULES_MATCH_LIMIT, RULES_DEPTH_LIMIT);

	cr_assert_not_null(r, "%s", errbuf);
	cr_assert_str_eq(r->v[0].pattern, "https?:\\/\\/x");
	cr_assert_eq(rules_match(m, &r->v[0], "see http://x", 12, 0, NULL), 1);
	cr_assert_str_eq(r->v[1].pattern, "a b\\\\");
	cr_assert_eq(rules_match(m, &r->v[1], "a b\\", 4, 0, NULL), 1);
	rules_matcher_free(m);
	rules_free(r);
	cr_assert_str_eq(parse_err("1 body /abc\n"), "t.rules:1: unterminated regex: "
	    "no closing '/' (write a '/' inside the regex as '\\/')");
	cr_assert_str_eq(parse_err("1 body /abc\\/\n"), "t.rules:1: unterminated regex: "
	    "no closing '/' (write a '/' inside the regex as '\\/')");
	cr_assert_str_eq(parse_err("1 body //\n"), "t.rules:1: empty regex");
	cr_assert_str_eq(parse_err("1 body abc\n"),
	    "t.rules:1: the regex must be written /REGEX/FLAGS");
	cr_assert_str_eq(parse_err("1 body\n"), "t.rules:1: missing /REGEX/ after WHERE");
	cr_assert_str_eq(parse_err("1\n"), "t.rules:1: missing WHERE and /REGEX/ after the score");
}

Test(rules, comments_blank_lines_crlf_bom)
{
	struct rules *r = parse(
	    "\xEF\xBB\xBF# rules with a BOM and CRLF\r\n"
	    "\r\n"
	    "   \t\r\n"
	    "\t# indented comment\r\n"
	    "1 body /a/ A # trailing comment\r\n"
	    "2 body /b/i # comment right after the flags\r\n"
	    "3 body /c/");		/* no final line end */

	cr_assert_not_null(r, "%s", errbuf);
	cr_assert_eq(r->n, 3);
	cr_assert_str_eq(r->v[0].label, "A");
	cr_assert_eq(r->v[1].line, 6);
	cr_assert_str_eq(r->v[1].label, "6");
	cr_assert_eq(r->v[2].line, 7);
	cr_assert_str_eq(r->v[2].pattern, "c");
	rules_free(r);
	r = parse("");
	cr_assert_not_null(r);
	cr_assert_eq(r->n, 0);
	rules_free(r);
	cr_assert_str_eq(parse_err("\n\n# x\r\n1 body /a/ A B\n"),
	    "t.rules:4: unexpected 'B' after the rule name (a comment starts with '#')");
}

Test(rules, where_values)
{
	struct rules *r = parse("1 header:X-Spam-Custom /a/\n1 HEADER:subject /b/\n1 Body /c/\n");

	cr_assert_not_null(r, "%s", errbuf);
	cr_assert_str_eq(r->v[0].header, "X-Spam-Custom");
	cr_assert_eq(r->v[0].header_len, 13);
	cr_assert_str_eq(r->v[1].header, "subject");
	cr_assert_eq(r->v[2].where, RULE_BODY);
	rules_free(r);
	cr_assert_str_eq(parse_err("1 bdy /a/\n"), "t.rules:1: unknown WHERE 'bdy' "
	    "(one of header:NAME, body, from, rcpt, helo, ip)");
	cr_assert_str_eq(parse_err("1 header /a/\n"), "t.rules:1: unknown WHERE 'header' "
	    "(one of header:NAME, body, from, rcpt, helo, ip)");
	cr_assert(strstr(parse_err("1 header: /a/\n"), "t.rules:1: bad header name in "
	    "'header:'") != NULL, "%s", errbuf);
	cr_assert(strstr(parse_err("1 header:Sub:ject /a/\n"), "t.rules:1: bad header "
	    "name") != NULL, "%s", errbuf);
	cr_assert(strstr(parse_err("1 header:Subj\x01 /a/\n"), "'header:Subj?'") != NULL,
	    "%s", errbuf);
}

Test(rules, names)
{
	struct rules *r = parse("1 body /a/ _x.y-Z9\n1 body /b/ B\n");

	cr_assert_not_null(r, "%s", errbuf);
	cr_assert_str_eq(r->v[0].label, "_x.y-Z9");
	rules_free(r);
	cr_assert(strstr(parse_err("1 body /a/ 9LIVES\n"), "t.rules:1: bad rule name "
	    "'9LIVES'") == errbuf, "%s", errbuf);
	cr_assert(strstr(parse_err("1 body /a/ a/b\n"), "bad rule name 'a/b'") != NULL,
	    "%s", errbuf);
	cr_assert(strstr(parse_err("1 body /a/ "
	    "A1234567890123456789012345678901234567890123456789012345678901234\n"),
	    "t.rules:1: bad rule name") == errbuf, "%s", errbuf);
	cr_assert_str_eq(parse_err("1 body /a/ DUP\n2 body /b/ OTHER\n\n3 body /c/ DUP\n"
	    "4 body /d/ DUP\n"),
	    "t.rules:4: duplicate rule name 'DUP' (first used at line 1)");
}

Test(rules, bad_scores_and_bytes)
{
	cr_assert(strstr(parse_err("1.2345 body /a/\n"), "t.rules:1: bad score '1.2345'")
	    == errbuf, "%s", errbuf);
	cr_assert(strstr(parse_err("2000000 body /a/\n"), "t.rules:1: bad score") == errbuf);
	cr_assert(strstr(parse_err("1,5 body /a/\n"), "t.rules:1: bad score '1,5'") == errbuf);
	cr_assert(strstr(parse_err("body /a/\n"), "t.rules:1: bad score 'body'") == errbuf);
	{
		static const char nul[] = "1 body /a/\n1 body /a\0b/\n";
		struct rules *r = NULL;

		cr_assert_eq(rules_parse(nul, sizeof(nul) - 1, "t.rules", 0, &r,
		    errbuf, sizeof(errbuf)), -1);
		cr_assert_null(r);
		cr_assert_str_eq(errbuf, "t.rules:2: NUL byte in the line");
	}
	/* Client-controlled-looking text is quoted printable and cut. */
	parse_err("1 \x1b[31mred /a/\n");
	cr_assert(strstr(errbuf, "'?[31mred'") != NULL, "%s", errbuf);
}

Test(rules, load_errors)
{
	struct rules *r = (struct rules *)1;

	cr_assert_eq(rules_load("/nonexistent/spam.rules", 0, &r, errbuf, sizeof(errbuf)), -1);
	cr_assert_null(r);
	cr_assert_str_eq(errbuf, "/nonexistent/spam.rules: cannot open: No such file or directory");
	cr_assert_eq(rules_load(write_rules("1 body /a/\n0 rcpt /(/\n"), 0, &r, errbuf,
	    sizeof(errbuf)), -1);
	cr_assert(strstr(errbuf, ":2: bad regex /(/: missing closing parenthesis at offset 1")
	    != NULL, "%s", errbuf);
}

Test(rules, default_rules_file)
{
	struct rules *r = NULL;
	struct rules_matcher *m = rules_matcher_new(RULES_MATCH_LIMIT, RULES_DEPTH_LIMIT);
	int hit_caps = 0, hit_spoof = 0, hit_helo = 0;

	cr_assert_eq(rules_load(DEFAULT_RULES, 0, &r, errbuf, sizeof(errbuf)), 0, "%s", errbuf);
	cr_assert_geq(r->n, 12);
	cr_assert_geq(r->count[RULE_HEADER], 4);
	cr_assert_geq(r->count[RULE_BODY], 4);
	cr_assert_geq(r->count[RULE_HELO], 1);
	for (size_t i = 0; i < r->n; i++) {
		const struct rule *x = &r->v[i];
		int neg = x->score < 0;

		cr_assert(x->score <= 2000 && x->score >= -1000, "%s: conservative", x->label);
		(void)neg;
		if (strcmp(x->label, "SUBJ_ALL_CAPS") == 0) {
			hit_caps = rules_match(m, x, "FREE MONEY NOW", 14, 0, NULL) == 1 &&
			    rules_match(m, x, "Meeting at 10", 13, 0, NULL) == 0 &&
			    rules_match(m, x, "FYI", 3, 0, NULL) == 0;
		} else if (strcmp(x->label, "FROM_DISPLAY_SPOOF") == 0) {
			const char *spoof = "\"ceo@bank.example\" <x@elsewhere.test>";
			const char *same = "\"a@b.example\" <a@b.example>";
			const char *plain = "Alice Example <alice@example.org>";

			hit_spoof = rules_match(m, x, spoof, strlen(spoof), 0, NULL) == 1 &&
			    rules_match(m, x, same, strlen(same), 0, NULL) == 0 &&
			    rules_match(m, x, plain, strlen(plain), 0, NULL) == 0;
		} else if (strcmp(x->label, "HELO_BARE_IP") == 0) {
			hit_helo = rules_match(m, x, "192.0.2.1", 9, 0, NULL) == 1 &&
			    rules_match(m, x, "[192.0.2.1]", 11, 0, NULL) == 0 &&
			    rules_match(m, x, "mx.example.org", 14, 0, NULL) == 0;
		}
	}
	cr_assert(hit_caps && hit_spoof && hit_helo, "%d %d %d", hit_caps, hit_spoof, hit_helo);
	rules_matcher_free(m);
	rules_free(r);
}

Test(rules, catastrophic_regex_hits_the_limit_fast)
{
	struct rules *r = parse("1 body /(a+)+$/ BAD\n");
	struct rules_matcher *m = rules_matcher_new(RULES_MATCH_LIMIT, RULES_DEPTH_LIMIT);
	char *s = malloc(8192);
	int prc;
	double t0;

	cr_assert_not_null(r, "%s", errbuf);
	memset(s, 'a', 8191);
	s[8191] = 'b';
	t0 = now();
	cr_assert_eq(rules_match(m, &r->v[0], s, 8192, 0, &prc), RULES_LIMIT, "%d", prc);
	/* Under valgrind (the interpreter, 20-50 times slower) the bound
	 * only says it stopped. */
	cr_assert_lt(now() - t0, under_valgrind() ? 5.0 : 0.1);
	free(s);
	rules_matcher_free(m);
	rules_free(r);
}

/* ---- scoring through the harness ---- */

static const char spam_msg[] =
    "From: Someone <someone@example.net>\r\n"
    "Subject: hello\r\n"
    "\r\n"
    "Dear friend,\r\n"
    "buy cheap viagra today\r\n"
    "bye\r\n";

Test(scoring, body_line_split_across_chunks)
{
	static const size_t sizes[] = { 1, 2, 3, 5, 7, 13, 64, 0 };
	sh_harness *h = start("2.5 body /^buy cheap viagra today$/ PHARMA\n", NULL, NULL, NULL);

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		cr_assert_eq(send_str(h, spam_msg, sizes[i]), 250, "chunk %zu", sizes[i]);
		cr_assert_str_eq(header(h, "X-Spam-Score"), "2.5", "chunk %zu", sizes[i]);
		cr_assert_str_eq(header(h, "X-Spam-Rules"), "PHARMA", "chunk %zu", sizes[i]);
		cr_assert_null(header(h, "X-Spam-Flag"));
	}
	sh_harness_free(h);
}

Test(scoring, body_rules_ignore_the_header_section)
{
	sh_harness *h = start("1 body /viagra/ V\n1 body /^Subject:/ S\n2 body /^bye$/ BYE\n",
	    NULL, NULL, NULL);
	const char *msg =
	    "Subject: viagra\r\n"
	    "X-Folded: first\r\n"
	    "  viagra continued\r\n"
	    "\r\n"
	    "Subject: this line is in the body\r\n"
	    "bye\r\n";

	cr_assert_eq(send_str(h, msg, 3), 250);
	cr_assert_str_eq(header(h, "X-Spam-Rules"), "S,BYE");
	cr_assert_str_eq(header(h, "X-Spam-Score"), "3.0");
	/* A line that is not a header field ends the header section. */
	cr_assert_eq(send_str(h, "Subject: x\r\nnot a header viagra\r\n", 0), 250);
	cr_assert_str_eq(header(h, "X-Spam-Rules"), "V");
	/* The body starts where the host says (sh_tx_info.header_size),
	 * wherever the chunks are cut. */
	for (size_t cut = 1; cut <= 40; cut++) {
		cr_assert_eq(send_str(h, msg, cut), 250, "cut %zu", cut);
		cr_assert_str_eq(header(h, "X-Spam-Rules"), "S,BYE", "cut %zu", cut);
		cr_assert_eq(send_str(h, "Subject: x\r\nnot a header viagra\r\n", cut),
		    250, "cut %zu", cut);
		cr_assert_str_eq(header(h, "X-Spam-Rules"), "V", "cut %zu", cut);
	}
	sh_harness_free(h);
	/* The first body line whole, from its first octet, also when it
	 * began in an earlier chunk than the one that ended the headers. */
	h = start("1 body /^not a header/ N\n", NULL, NULL, NULL);
	for (size_t cut = 1; cut <= 40; cut++) {
		cr_assert_eq(send_str(h, "Subject: x\r\nnot a header\r\n", cut), 250,
		    "cut %zu", cut);
		cr_assert_str_eq(header(h, "X-Spam-Rules"), "N", "cut %zu", cut);
	}
	sh_harness_free(h);
}

Test(scoring, header_rules_on_folded_headers)
{
	sh_harness *h = start(
	    "1.5 header:subject /^Cheap watches\\s+for you\\s+today$/ SUBJ\n"
	    "1 header:X-Mailer /mass mailer/i MAILER\n"
	    "4 header:To /./ TO_NEVER_MATCHES_SUBJECT\n", NULL, NULL, NULL);
	const char *msg =
	    "SUBJECT: Cheap watches\r\n"
	    "\tfor you\r\n"
	    " today\r\n"
	    "x-mailer: Mass\r\n"
	    " Mailer 2.0\r\n"
	    "\r\n"
	    "Cheap watches for you today\r\n";

	cr_assert_eq(send_str(h, msg, 7), 250);
	cr_assert_str_eq(header(h, "X-Spam-Rules"), "SUBJ,MAILER");
	cr_assert_str_eq(header(h, "X-Spam-Score"), "2.5");
	sh_harness_free(h);
}

static const char spam_fields[] = "X-Spam-Score: 5.0\r\n"
    "X-Spam-Rules: 1,HELLO\r\nX-Spam-Flag: YES\r\n";

Test(scoring, tag_threshold_and_headers)
{
	sh_harness *h = start("3 body /viagra/\n2 header:Subject /hello/ HELLO\n",
	    "tag=5", NULL, NULL);
	const char *t;

	cr_assert_eq(send_str(h, spam_msg, 0), 250);
	/* First in the message's own header section, in this order. */
	t = sh_harness_head(h, NULL);
	cr_assert_not_null(t);
	cr_assert(strncmp(t, sh_harness_trace(h), strlen(sh_harness_trace(h))) == 0);
	t += strlen(sh_harness_trace(h));
	cr_assert(strncmp(t, spam_fields, strlen(spam_fields)) == 0, "%s", t);
	cr_assert(sh_harness_head_edited(h));
	cr_assert_null(strstr(sh_harness_trace(h), "X-Spam"));
	/* Below the threshold: no flag, and "none" without hits. */
	cr_assert_eq(send_str(h, "Subject: hi\r\n\r\nnothing here\r\n", 0), 250);
	cr_assert_str_eq(header(h, "X-Spam-Score"), "0.0");
	cr_assert_str_eq(header(h, "X-Spam-Rules"), "none");
	cr_assert_null(header(h, "X-Spam-Flag"));
	cr_assert_eq(send_str(h, "Subject: hello\r\n\r\nx\r\n", 0), 250);
	cr_assert_str_eq(header(h, "X-Spam-Score"), "2.0");
	cr_assert_null(header(h, "X-Spam-Flag"));
	sh_harness_free(h);
}

Test(scoring, reject_threshold)
{
	sh_harness *h = start("4.5 body /viagra/ V\n3 header:From /example\\.net/ F\n",
	    "tag=2,reject=7.5", NULL, NULL);

	cr_assert_eq(send_str(h, spam_msg, 5), 550);
	cr_assert_str_eq(sh_harness_reply(h), "550 5.7.1 Message looks like spam (score 7.5)");
	cr_assert_not(sh_harness_accepted(h));
	/* The session goes on; the next (clean) message is taken. */
	cr_assert_eq(send_str(h, "From: a@example.net\r\n\r\nok\r\n", 0), 250);
	cr_assert(sh_harness_accepted(h));
	cr_assert_str_eq(header(h, "X-Spam-Score"), "3.0");
	cr_assert_str_eq(header(h, "X-Spam-Flag"), "YES");
	sh_harness_free(h);
}

Test(scoring, negative_scores_and_once_per_message)
{
	sh_harness *h = start("3 body /spam/ SPAM\n-2.5 header:List-Id /./ LIST\n",
	    "tag=3", NULL, NULL);

	/* SPAM matches on three lines but counts once. */
	cr_assert_eq(send_str(h, "Subject: x\r\n\r\nspam\r\nspam\r\nmore spam\r\n", 0), 250);
	cr_assert_str_eq(header(h, "X-Spam-Score"), "3.0");
	cr_assert_str_eq(header(h, "X-Spam-Flag"), "YES");
	cr_assert_eq(send_str(h, "List-Id: <l.example.org>\r\n\r\nspam\r\n", 0), 250);
	cr_assert_str_eq(header(h, "X-Spam-Score"), "0.5");
	cr_assert_str_eq(header(h, "X-Spam-Rules"), "SPAM,LIST");
	cr_assert_null(header(h, "X-Spam-Flag"));
	cr_assert_eq(send_str(h, "List-Id: <l.example.org>\r\n\r\nham\r\n", 0), 250);
	cr_assert_str_eq(header(h, "X-Spam-Score"), "-2.5");
	sh_harness_free(h);
}

Test(scoring, envelope_rules)
{
	sh_harness *h = start(
	    "1 helo /^\\d+\\.\\d+\\.\\d+\\.\\d+$/ HELO_IP\n"
	    "0.5 ip /^198\\.51\\.100\\./ IP_NET\n"
	    "2 from /^[^@]*\\d{6,}@/ FROM_DIGITS\n"
	    "1.5 rcpt /^postmaster@/i RCPT_PM\n"
	    "0.1 rcpt /@example\\.org$/ RCPT_ORG\n",
	    NULL, "198.51.100.9", "192.0.2.1");

	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<user12345678@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<a@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<Postmaster@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "DATA"), 354);
	cr_assert_eq(sh_harness_body(h, "Subject: x\r\n\r\nx\r\n", 17, 0), 250);
	/* Each rule once, even with two recipients matching RCPT_ORG. */
	cr_assert_str_eq(header(h, "X-Spam-Rules"),
	    "HELO_IP,IP_NET,FROM_DIGITS,RCPT_PM,RCPT_ORG");
	cr_assert_str_eq(header(h, "X-Spam-Score"), "5.1");
	sh_harness_free(h);
}

Test(scoring, connection_scores_apply_to_each_transaction)
{
	sh_harness *h = start("1 helo /^bad\\./ HELO_BAD\n0.5 ip /^192\\.0\\.2\\./ IP\n"
	    "3 body /viagra/ V\n", NULL, "192.0.2.50", "bad.example");

	cr_assert_eq(send_str(h, spam_msg, 0), 250);
	cr_assert_str_eq(header(h, "X-Spam-Score"), "4.5");
	/* The body's score does not carry over; helo/ip ones do. */
	cr_assert_eq(send_str(h, "Subject: x\r\n\r\nclean\r\n", 0), 250);
	cr_assert_str_eq(header(h, "X-Spam-Score"), "1.5");
	cr_assert_str_eq(header(h, "X-Spam-Rules"), "HELO_BAD,IP");
	/* A reset transaction leaves nothing behind either. */
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<a@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RSET"), 250);
	/* A new EHLO: the helo rules are matched again. */
	cr_assert_eq(sh_harness_cmd(h, "EHLO good.example"), 250);
	cr_assert_eq(send_str(h, "Subject: x\r\n\r\nclean\r\n", 0), 250);
	cr_assert_str_eq(header(h, "X-Spam-Rules"), "IP");
	cr_assert_eq(sh_harness_cmd(h, "EHLO bad.example"), 250);
	cr_assert_eq(send_str(h, "Subject: x\r\n\r\nclean\r\n", 0), 250);
	cr_assert_str_eq(header(h, "X-Spam-Rules"), "HELO_BAD,IP");
	sh_harness_free(h);
}

Test(scoring, long_lines_are_matched_in_pieces)
{
	sh_harness *h = start(
	    "1 body /^START/ START\n"
	    "1 body /END$/ END\n"
	    "1 body /^MIDDLE/ MIDDLE_NOT_A_LINE_START\n"
	    "1 body /SPLITWORD/ SPLIT\n"
	    "1 body /INSIDE/ INSIDE\n", NULL, NULL, NULL);
	size_t n = 3 * 8192 + 100, len;
	char *msg = malloc(n + 100), *body;

	len = (size_t)sprintf(msg, "Subject: long\r\n\r\n");
	body = msg + len;
	memset(body, 'x', n);
	memcpy(body, "START", 5);
	memcpy(body + 8192, "MIDDLE", 6);		/* starts the 2nd piece */
	memcpy(body + 2 * 8192 - 5, "SPLITWORD", 9);	/* spans pieces 2 and 3 */
	memcpy(body + 2 * 8192 + 100, "INSIDE", 6);
	memcpy(body + n - 3, "END", 3);
	memcpy(body + n, "\r\n", 2);
	len += n + 2;
	for (size_t chunk = 0; chunk <= 1000; chunk += 1000) {
		cr_assert_eq(send_msg(h, "a@example.net", msg, len, chunk), 250);
		cr_assert_str_eq(header(h, "X-Spam-Rules"), "START,END,INSIDE",
		    "chunk %zu", chunk);
	}
	free(msg);
	sh_harness_free(h);
}

Test(scoring, rules_header_is_cut)
{
	char rules[64 * 1024], name[80];
	size_t o = 0;
	const char *v;

	for (int i = 0; i < 100; i++) {
		memset(name, 'N', 40);
		snprintf(name + 40, sizeof(name) - 40, "%03d", i);
		o += (size_t)snprintf(rules + o, sizeof(rules) - o, "0.1 body /x/ %s\n", name);
	}
	sh_harness *h = start(rules, NULL, NULL, NULL);

	cr_assert_eq(send_str(h, "Subject: x\r\n\r\nx\r\n", 0), 250);
	cr_assert_str_eq(header(h, "X-Spam-Score"), "10.0");
	v = header(h, "X-Spam-Rules");
	cr_assert_not_null(v);
	cr_assert_leq(strlen(v), 904);
	cr_assert(strlen(v) > 800);
	cr_assert(strcmp(v + strlen(v) - 4, ",...") == 0, "%s", v);
	sh_harness_free(h);
}

Test(scoring, catastrophic_regex_on_a_1mib_line_is_bounded)
{
	sh_harness *h;
	size_t n = 1 << 20, len;
	char *msg = malloc(n + 100), *log;

	capture_log();
	/* body_max=0: scan all of it, so the limits are what stops the rule. */
	h = start("1 body /(a+)+$/ EVIL\n2 body /needle/ NEEDLE\n", "body_max=0",
	    NULL, NULL);
	len = (size_t)sprintf(msg, "Subject: evil\r\n\r\n");
	memset(msg + len, 'a', n - 1);
	msg[len + n - 1] = 'b';
	len += n;
	len += (size_t)sprintf(msg + len, "\r\nthe needle is still found\r\n");
	send_bounded(h, msg, len, "NEEDLE");
	log = read_log();
	/* Logged once for the message, although 128 pieces were candidates. */
	cr_assert_eq(count(log, "rule EVIL ("), 1, "%s", log);
	cr_assert(strstr(log, "hit a PCRE2 limit: match limit exceeded; counted as no "
	    "match, not tried again on this message") != NULL, "%s", log);
	/* The switched-off rule costs one limited match: no hook of the
	 * plugin comes near the core's 100 ms loop-block warning, or at
	 * worst one does (a very slow machine). */
	cr_assert_leq(count(log, "plugin spamfilter blocked the loop"), 1, "%s", log);
	free(msg);
}

Test(scoring, body_max_stops_scanning)
{
	sh_harness *h;
	size_t len = 0;
	char *msg = malloc(300 * 1024);

	/* The needle stands after the first 4 KiB: not scanned with
	 * body_max=4096, found without a limit. */
	h = start("2 body /needle/ NEEDLE\n", "body_max=4096", NULL, NULL);
	len = (size_t)sprintf(msg, "Subject: long\r\n\r\n");
	for (int i = 0; i < 100; i++)
		len += (size_t)sprintf(msg + len, "%078d\r\n", i);
	len += (size_t)sprintf(msg + len, "the needle\r\n");
	cr_assert_eq(send_msg(h, "a@example.net", msg, len, 0), 250);
	cr_assert_str_eq(header(h, "X-Spam-Score"), "0.0");
	sh_harness_free(h);
	h = start("2 body /needle/ NEEDLE\n", NULL, NULL, NULL);
	cr_assert_eq(send_msg(h, "a@example.net", msg, len, 0), 250);
	cr_assert_str_eq(header(h, "X-Spam-Score"), "2.0");
	sh_harness_free(h);
	free(msg);
}

Test(scoring, slow_rule_on_many_lines_uses_up_its_budget)
{
	sh_harness *h;
	size_t lines = 20000, len = 0;
	char *msg = malloc(lines * 24 + 100), *log;

	capture_log();
	/* Each 19-octet line costs about 2^18 steps: under the match limit,
	 * so only the time budget stops it (unbounded: over 10 s). */
	/* engine=pcre2: Hyperscan takes this rule exactly and is linear
	 * on it (slow_rule_is_not_slow_in_hyperscan). */
	h = start("1 body /^(a+)+$/ SLOW\n2 body /needle/ NEEDLE\n",
	    "budget_ms=50,body_max=0,engine=pcre2", NULL, NULL);
	len = (size_t)sprintf(msg, "Subject: slow\r\n\r\n");
	for (size_t i = 0; i < lines; i++)
		len += (size_t)sprintf(msg + len, "aaaaaaaaaaaaaaaaaab\r\n");
	len += (size_t)sprintf(msg + len, "needle\r\n");
	send_bounded(h, msg, len, "NEEDLE");
	log = read_log();
	cr_assert_eq(count(log, "rule SLOW ("), 1, "%s", log);
	cr_assert(strstr(log, "is too slow on this message (over its 50 ms regex "
	    "budget): not tried again on it") != NULL, "%s", log);
	free(msg);
}

Test(scoring, slow_rule_is_not_slow_in_hyperscan)
{
	sh_harness *h;
	size_t lines = 20000, len = 0;
	char *msg = malloc(lines * 24 + 100), *log;
	double t0;

	capture_log();
	/* The same rule and lines as above: an exact Hyperscan rule, decided
	 * (no match) on every line without PCRE2, so no budget is used up. */
	h = start("1 body /^(a+)+$/ SLOW\n2 body /needle/ NEEDLE\n",
	    "budget_ms=50,body_max=0", NULL, NULL);
	len = (size_t)sprintf(msg, "Subject: slow\r\n\r\n");
	for (size_t i = 0; i < lines; i++)
		len += (size_t)sprintf(msg + len, "aaaaaaaaaaaaaaaaaab\r\n");
	len += (size_t)sprintf(msg + len, "needle\r\n");
	t0 = now();
	cr_assert_eq(send_msg(h, "a@example.net", msg, len, 0), 250);
	cr_assert_lt(now() - t0, under_valgrind() ? 30.0 : 2.0);
	cr_assert_str_eq(header(h, "X-Spam-Rules"), "NEEDLE");
	sh_harness_free(h);
	log = read_log();
	cr_assert_eq(count(log, "rule SLOW ("), 0, "%s", log);
	cr_assert(strstr(log, "engine hs: 2 rule(s) exact, 0 prefiltered") != NULL,
	    "%s", log);
	free(msg);
}

Test(scoring, body_max_takes_a_size_suffix)
{
	sh_harness *h;
	size_t len = 0;
	char *msg = malloc(400 * 1024);

	/* FIRST stands at about 200 KiB, SECOND at about 300 KiB: body_max=256K
	 * is 262144 octets (not 256), as sizes are everywhere else. */
	len = (size_t)sprintf(msg, "Subject: long\r\n\r\n");
	for (int i = 0; i < 2560; i++)
		len += (size_t)sprintf(msg + len, "%078d\r\n", i);
	len += (size_t)sprintf(msg + len, "the first needle\r\n");
	for (int i = 0; i < 1280; i++)
		len += (size_t)sprintf(msg + len, "%078d\r\n", i);
	len += (size_t)sprintf(msg + len, "the second needle\r\n");
	cr_assert_gt(len, 300 * 1024);
	for (int k = 0; k < 3; k++) {
		static const char *const args[] = { "body_max=256K", "body_max=256k",
			"body_max=262144" };

		h = start("2 body /first needle/ FIRST\n3 body /second needle/ SECOND\n",
		    args[k], NULL, NULL);
		cr_assert_eq(send_msg(h, "a@example.net", msg, len, 4096), 250);
		cr_assert_str_eq(header(h, "X-Spam-Rules"), "FIRST", "%s", args[k]);
		sh_harness_free(h);
	}
	h = start("2 body /first needle/ FIRST\n3 body /second needle/ SECOND\n",
	    "body_max=1M", NULL, NULL);
	cr_assert_eq(send_msg(h, "a@example.net", msg, len, 0), 250);
	cr_assert_str_eq(header(h, "X-Spam-Rules"), "FIRST,SECOND");
	sh_harness_free(h);
	free(msg);
}

Test(scoring, init_errors)
{
	static const struct {
		const char *rules, *args, *error;
	} cases[] = {
		{ "1 body /ok/\n# fine\n1 body /(/ BROKEN\n", NULL,
		  ":3: bad regex /(/: missing closing parenthesis at offset 1" },
		{ NULL, NULL, "rules= is required" },
		{ "1 body /ok/\n", "tag=lots", "tag=lots: not a score" },
		{ "1 body /ok/\n", "body_max=256X", "body_max=256X: not a size" },
		{ "1 body /ok/\n", "body_max=-1", "body_max=-1: not a size" },
		{ "1 body /ok/\n", "body_max=4G", "body_max=4G: not a size" },
		{ "1 body /ok/\n", "match_limit=0", "match_limit=0: not a positive" },
		{ "1 body /ok/\n", "match_limit=1K", "match_limit=1K: not a positive" },
		{ "1 body /ok/\n", "budget_ms=3600001", "budget_ms=3600001: not a" },
		{ "1 body /ok/\n", "engine=pcre", "engine=pcre: not hs or pcre2" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		init_fails(cases[i].rules, cases[i].args, cases[i].error);
}

Test(scoring, default_rules_in_the_chain)
{
	sh_harness *h = sh_harness_new();
	char spec[300];

	snprintf(spec, sizeof(spec), SPAMFILTER_SO ":rules=%s,tag=5,reject=10", DEFAULT_RULES);
	cr_assert_eq(sh_harness_load(h, spec), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_load(h, SINK_SO), 0);
	cr_assert_eq(sh_harness_connect(h, "203.0.113.5"), 220);
	cr_assert_eq(sh_harness_cmd(h, "HELO 203.0.113.5"), 250);
	cr_assert_eq(send_str(h,
	    "From: \"security@bank.example\" <x@phish.test>\r\n"
	    "Subject: URGENT ACCOUNT NOTICE!!!\r\n"
	    "\r\n"
	    "Please verify your account at http://203.0.113.5/login\r\n", 7), 250);
	cr_assert_str_eq(header(h, "X-Spam-Rules"), "SUBJ_ALL_CAPS,SUBJ_SHOUTING,"
	    "FROM_DISPLAY_SPOOF,BODY_PHISH,BODY_URL_IP,HELO_BARE_IP");
	cr_assert_str_eq(header(h, "X-Spam-Score"), "8.0");
	cr_assert_str_eq(header(h, "X-Spam-Flag"), "YES");
	/* An ordinary message scores nothing. */
	cr_assert_eq(sh_harness_cmd(h, "EHLO mail.example.org"), 250);
	cr_assert_eq(send_str(h, "From: Alice <alice@example.org>\r\n"
	    "Subject: Minutes of Tuesday's meeting\r\n"
	    "Message-ID: <123.456@example.org>\r\n"
	    "\r\nHi all,\r\nthe minutes are attached.\r\n", 0), 250);
	cr_assert_str_eq(header(h, "X-Spam-Score"), "0.0");
	cr_assert_str_eq(header(h, "X-Spam-Rules"), "none");
	sh_harness_free(h);
}
