/*
 * test_maildump.c - plugins/maildump through the SDK harness (the real
 * core, the real pool): arguments, the stored file byte for byte (header
 * block, tricky bodies in every chunking), unique names, split=rcpt
 * naming and hard links, and every way a transaction can end without a
 * stored message - RSET, a disconnect mid-DATA, a rejection by an earlier
 * plugin, a write error (RLIMIT_FSIZE), a rename error, a pool timeout -
 * each leaving nothing in tmp/ or new/.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sh_harness.h"

#define MAILDUMP SMTPHOOK_BUILD_DIR "/plugins/maildump.so"

/* ---- helpers ---- */

static char tmproot[64];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void
setup_dir(void)
{
	snprintf(tmproot, sizeof(tmproot), "/tmp/maildump-unit-XXXXXX");
	cr_assert_not_null(mkdtemp(tmproot));
}

static void
teardown_dir(void)
{
	if (tmproot[0] != '\0')
		nftw(tmproot, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(maildump, .init = setup_dir, .fini = teardown_dir);

/* box - a path below the test's temporary directory */
static const char *
box(const char *sub)
{
	static char path[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", tmproot, sub);
	return path[i];
}

/* harness - maildump (after the linked-in plugins given) on DIR, started,
 * connected, EHLO said */
static sh_harness *
harness(const char *args, const sh_plugin *before, const char *option)
{
	char spec[1024];
	sh_harness *h = sh_harness_new();

	cr_assert_not_null(h);
	if (option != NULL)
		cr_assert_eq(sh_harness_option(h, option, strchr(option, 0) + 1), 0);
	if (before != NULL)
		cr_assert_eq(sh_harness_add(h, before, ""), 0, "%s", sh_harness_error(h));
	snprintf(spec, sizeof(spec), MAILDUMP ":%s", args);
	cr_assert_eq(sh_harness_load(h, spec), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_start(h), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_connect(h, "192.0.2.25"), 220);
	cr_assert_eq(sh_harness_cmd(h, "EHLO client.example"), 250);
	return h;
}

static sh_harness *
md(const char *sub, const char *extra)
{
	char args[1024];

	snprintf(args, sizeof(args), "dir=%s%s%s", box(sub), extra ? "," : "",
	    extra ? extra : "");
	return harness(args, NULL, NULL);
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* names - the entries of a directory (not . and ..), sorted; count */
static size_t
names(const char *dir, char out[][256], size_t max)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (n < max)
			snprintf(out[n], 256, "%s", e->d_name);
		n++;
	}
	closedir(d);
	qsort(out, n < max ? n : max, 256, cmp_name);
	return n;
}

static size_t
count(const char *dir)
{
	char dummy[1][256];

	return names(dir, dummy, 1);
}

/* slurp - a whole file; *len its size */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* only_message - the one file in MAILDIR/new (tmp/ empty): its content */
static char *
only_message(const char *maildir, size_t *len, char *name_out)
{
	char list[4][256], path[1024];

	snprintf(path, sizeof(path), "%s/tmp", maildir);
	cr_assert_eq(count(path), 0, "%s is not empty", path);
	snprintf(path, sizeof(path), "%s/new", maildir);
	cr_assert_eq(names(path, list, 4), 1, "%s: not one message", path);
	if (name_out != NULL)
		strcpy(name_out, list[0]);
	snprintf(path, sizeof(path), "%s/new/%s", maildir, list[0]);
	return slurp(path, len);
}

/* assert_empty - nothing in MAILDIR/tmp nor MAILDIR/new */
static void
assert_empty(const char *maildir)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/tmp", maildir);
	cr_assert_eq(count(path), 0, "%s is not empty", path);
	snprintf(path, sizeof(path), "%s/new", maildir);
	cr_assert_eq(count(path), 0, "%s is not empty", path);
}

/* expected - what the stored file must hold: envelope lines, the trace
 * block of the transaction just ended, the message (CRLF added) */
static char *
expected(sh_harness *h, const char *from, const char *const *rcpts,
    const char *msg, size_t mlen, size_t *len)
{
	const char *trace = sh_harness_trace(h);
	size_t cap = strlen(trace) + mlen + 4096, n;
	char *buf = malloc(cap);
	size_t i;

	n = (size_t)sprintf(buf, "Return-Path: <%s>\r\n", from);
	for (i = 0; rcpts[i] != NULL; i++)
		n += (size_t)sprintf(buf + n, "Delivered-To: %s\r\n", rcpts[i]);
	n += (size_t)sprintf(buf + n, "%s", trace);
	memcpy(buf + n, msg, mlen);
	n += mlen;
	if (mlen > 0 && (mlen < 2 || msg[mlen - 2] != '\r' || msg[mlen - 1] != '\n')) {
		memcpy(buf + n, "\r\n", 2);
		n += 2;
	}
	*len = n;
	return buf;
}

/* send_msg - MAIL, RCPTs, DATA, the body in writes of chunk octets */
static int
send_msg(sh_harness *h, const char *from, const char *const *rcpts,
    const char *msg, size_t len, size_t chunk)
{
	char line[600];
	size_t i;
	int code;

	snprintf(line, sizeof(line), "MAIL FROM:<%s>", from);
	if ((code = sh_harness_cmd(h, line)) != 250)
		return code;
	for (i = 0; rcpts[i] != NULL; i++) {
		snprintf(line, sizeof(line), "RCPT TO:<%s>", rcpts[i]);
		if ((code = sh_harness_cmd(h, line)) != 250)
			return code;
	}
	if ((code = sh_harness_cmd(h, "DATA")) != 354)
		return code;
	return sh_harness_body(h, msg, len, chunk);
}

/* round_trip - send msg, check the one stored file byte for byte */
static void
round_trip(const char *sub, const char *msg, size_t mlen, size_t chunk)
{
	const char *rcpts[] = { "rcpt@example.org", NULL };
	sh_harness *h = md(sub, NULL);
	size_t got_len, want_len;
	char *got, *want;

	cr_assert_eq(send_msg(h, "sender@example.net", rcpts, msg, mlen, chunk), 250,
	    "%s", sh_harness_reply(h));
	want = expected(h, "sender@example.net", rcpts, msg, mlen, &want_len);
	got = only_message(box(sub), &got_len, NULL);
	cr_assert_eq(got_len, want_len, "chunk %zu: %zu octets stored, %zu expected",
	    chunk, got_len, want_len);
	cr_assert(memcmp(got, want, want_len) == 0, "chunk %zu: content differs", chunk);
	free(got);
	free(want);
	sh_harness_free(h);
}

/* ---- linked-in plugins placed before maildump ---- */

static sh_verdict
eom_reject(sh_ctx *ctx)
{
	return sh_reject(ctx, 554, "5.7.1", "Not today");
}

static const sh_plugin rejecter = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "rejecter", .eom = eom_reject,
};

static sh_verdict
chunk_reject(sh_ctx *ctx, const unsigned char *data, size_t len)
{
	(void)data, (void)len;
	return sh_reject(ctx, 550, "5.7.1", "Bad body");
}

static const sh_plugin chunk_rejecter = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "chunk_rejecter",
	.chunk = chunk_reject,
};

static sh_verdict
eom_tag(sh_ctx *ctx)
{
	sh_add_header(ctx, "X-Spam-Score", "1.5");
	sh_add_header(ctx, "X-Tag", "before maildump");
	return SH_CONTINUE;
}

static const sh_plugin tagger = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "tagger", .eom = eom_tag,
};

static sh_verdict
data_accept(sh_ctx *ctx)
{
	(void)ctx;
	return SH_ACCEPT;
}

static const sh_plugin data_acceptor = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "data_acceptor",
	.data = data_accept,
};

/* A plugin that keeps the (single) pool thread busy for 400 ms at eom
 * without waiting for it: maildump's job queues behind. */
static void
hog_work(void *arg)
{
	struct timespec ts = { 0, 400 * 1000 * 1000 };

	(void)arg;
	nanosleep(&ts, NULL);
}

static void
hog_done(void *arg)
{
	(void)arg;
}

static sh_verdict
eom_hog(sh_ctx *ctx)
{
	sh_pool_submit(ctx, hog_work, hog_done, NULL);
	return SH_CONTINUE;
}

static const sh_plugin hog = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "hog", .eom = eom_hog,
};

/* ---- arguments and start-up ---- */

static void
start_fails(const char *args, const char *needle)
{
	char spec[1024];
	sh_harness *h = sh_harness_new();

	snprintf(spec, sizeof(spec), MAILDUMP "%s%s", args[0] ? ":" : "", args);
	if (sh_harness_load(h, spec) == 0)
		cr_assert_eq(sh_harness_start(h), -1, "'%s' must not start", args);
	cr_assert(strstr(sh_harness_error(h), needle) != NULL, "'%s': %s", args,
	    sh_harness_error(h));
	cr_assert(strchr(sh_harness_error(h), '\n') == NULL);
	sh_harness_free(h);
}

Test(maildump, requires_dir)
{
	start_fails("", "dir= is required");
	start_fails("dir=", "dir= is required");
	start_fails("fsync=no", "dir= is required");
}

Test(maildump, bad_values_refused)
{
	char args[600];

	snprintf(args, sizeof(args), "dir=%s,fsync=maybe", box("m"));
	start_fails(args, "fsync= must be yes or no, not 'maybe'");
	snprintf(args, sizeof(args), "dir=%s,split=domain", box("m"));
	start_fails(args, "split= must be none or rcpt, not 'domain'");
	start_fails("dir=/tmp,colour=red", "unknown argument 'colour'");
}

Test(maildump, unusable_dir_refused)
{
	char args[600];
	FILE *f = fopen(box("file"), "w");

	cr_assert_not_null(f);
	fclose(f);
	snprintf(args, sizeof(args), "dir=%s/sub", box("file"));
	start_fails(args, "cannot use Maildir");
}

Test(maildump, creates_maildir_mode_0700)
{
	static const char *const subs[] = { "a/b/box", "a/b/box/tmp", "a/b/box/new",
		"a/b/box/cur" };
	sh_harness *h = md("a/b/box", NULL);
	struct stat st;
	size_t i;

	for (i = 0; i < 4; i++) {
		cr_assert_eq(stat(box(subs[i]), &st), 0, "%s", subs[i]);
		cr_assert(S_ISDIR(st.st_mode));
		cr_assert_eq(st.st_mode & 07777, 0700, "%s: %o", subs[i], st.st_mode & 07777);
	}
	sh_harness_free(h);
}

Test(maildump, existing_maildir_kept)
{
	FILE *f;
	sh_harness *h;
	const char *rcpts[] = { "r@example.org", NULL };

	cr_assert_eq(mkdir(box("old"), 0755), 0);
	cr_assert_eq(mkdir(box("old/cur"), 0755), 0);
	f = fopen(box("old/cur/1.M1P1.host:2,S"), "w");
	fputs("Subject: old\r\n\r\nold\r\n", f);
	fclose(f);
	h = md("old", NULL);
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, "Subject: new\r\n\r\nx\r\n", 19, 0), 250);
	cr_assert_eq(count(box("old/cur")), 1);
	cr_assert_eq(count(box("old/new")), 1);
	sh_harness_free(h);
}

/* ---- the stored file ---- */

Test(maildump, header_block_then_message)
{
	const char msg[] = "Subject: hi\r\nFrom: a@example.net\r\n\r\nbody\r\n";
	const char *rcpts[] = { "one@example.org", "Two@Example.ORG", "three@x.example", NULL };
	static const char prefix[] = "Return-Path: <sender@example.net>\r\n"
	    "Delivered-To: one@example.org\r\nDelivered-To: Two@Example.ORG\r\n"
	    "Delivered-To: three@x.example\r\nReceived: from client.example";
	sh_harness *h = md("m", NULL);
	size_t got_len, want_len;
	char *got, *want;

	cr_assert_eq(send_msg(h, "sender@example.net", rcpts, msg, sizeof(msg) - 1, 0), 250);
	cr_assert(strstr(sh_harness_reply(h), "250 2.0.0") == sh_harness_reply(h),
	    "%s", sh_harness_reply(h));
	want = expected(h, "sender@example.net", rcpts, msg, sizeof(msg) - 1, &want_len);
	got = only_message(box("m"), &got_len, NULL);
	cr_assert_eq(got_len, want_len);
	cr_assert(memcmp(got, want, got_len) == 0, "got:\n%s\nwant:\n%s", got, want);
	/* Envelope first, one Delivered-To per recipient, then Received:. */
	cr_assert(strncmp(got, prefix, sizeof(prefix) - 1) == 0, "%s", got);
	free(got);
	free(want);
	sh_harness_free(h);
}

Test(maildump, null_sender)
{
	const char *rcpts[] = { "r@example.org", NULL };
	sh_harness *h = md("m", NULL);
	size_t len;
	char *got;

	cr_assert_eq(send_msg(h, "", rcpts, "Subject: bounce\r\n\r\nx\r\n", 22, 0), 250);
	got = only_message(box("m"), &len, NULL);
	cr_assert(strncmp(got, "Return-Path: <>\r\nDelivered-To: r@example.org\r\n", 46) == 0,
	    "%s", got);
	free(got);
	sh_harness_free(h);
}

/* longaddr - an n-octet mailbox "<tag>xxx...@example.org" */
static char *
longaddr(char *buf, const char *tag, size_t n)
{
	size_t t = strlen(tag), d = strlen("@example.org");

	memcpy(buf, tag, t);
	memset(buf + t, 'x', n - t - d);
	strcpy(buf + n - d, "@example.org");
	return buf;
}

/* The DSN envelope at the parser's limits - 254-octet paths, ENVID of
 * 100 characters as 300 octets, NOTIFY of 21, ORCPT of 500 octets - is
 * stored whole, in envelope order, line by line. */
Test(maildump, dsn_envelope_at_the_limits_stored_whole)
{
	char from[255], r1[255], r2[255], envid[301], orcpt[501];
	char line[2048], want[8192];
	sh_harness *h = md("m", NULL);
	size_t len, n = 0;
	char *got;
	int i;

	longaddr(from, "s", 254);
	longaddr(r1, "a", 254);
	longaddr(r2, "b", 254);
	for (i = 0; i < 100; i++)
		sprintf(envid + 3 * i, "+%02X", 0x21 + i % 90);
	memcpy(orcpt, "rfc822;", 7);
	for (i = 7; i < 500; i++)
		orcpt[i] = (char)('a' + i % 26);
	orcpt[500] = '\0';

	snprintf(line, sizeof(line), "MAIL FROM:<%s> RET=HDRS ENVID=%s", from, envid);
	cr_assert_eq(sh_harness_cmd(h, line), 250, "%s", sh_harness_reply(h));
	snprintf(line, sizeof(line), "RCPT TO:<%s> NOTIFY=SUCCESS,FAILURE,DELAY "
	    "ORCPT=%s", r1, orcpt);
	cr_assert_eq(sh_harness_cmd(h, line), 250, "%s", sh_harness_reply(h));
	snprintf(line, sizeof(line), "RCPT TO:<%s>", r2);
	cr_assert_eq(sh_harness_cmd(h, line), 250, "%s", sh_harness_reply(h));
	cr_assert_eq(sh_harness_cmd(h, "DATA"), 354);
	cr_assert_eq(sh_harness_body(h, "Subject: dsn\r\n\r\nx\r\n", 19, 0), 250,
	    "%s", sh_harness_reply(h));

	n += (size_t)sprintf(want + n, "Return-Path: <%s>\r\n", from);
	n += (size_t)sprintf(want + n, "Delivered-To: %s\r\nDelivered-To: %s\r\n", r1, r2);
	n += (size_t)sprintf(want + n, "X-Envelope-From: <%s> RET=HDRS ENVID=%s\r\n",
	    from, envid);
	n += (size_t)sprintf(want + n, "X-Envelope-To: <%s> "
	    "NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=%s\r\n", r1, orcpt);
	n += (size_t)sprintf(want + n, "%s", sh_harness_trace(h));
	got = only_message(box("m"), &len, NULL);
	cr_assert_geq(len, n);
	cr_assert(memcmp(got, want, n) == 0, "got:\n%.*s\nwant:\n%s", (int)n, got, want);
	cr_assert_str_eq(got + n, "Subject: dsn\r\n\r\nx\r\n");
	free(got);
	sh_harness_free(h);
}

/* One octet more is refused at RCPT (501 5.5.4), never stored cut. */
Test(maildump, dsn_parameter_over_the_limit_refused)
{
	const char *rcpts[] = { "r@example.org", NULL };
	char line[1024], orcpt[502];
	sh_harness *h = md("m", NULL);
	size_t len;
	char *got;

	memcpy(orcpt, "rfc822;", 7);
	memset(orcpt + 7, 'o', 494);
	orcpt[501] = '\0';
	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net>"), 250);
	snprintf(line, sizeof(line), "RCPT TO:<r@example.org> ORCPT=%s", orcpt);
	cr_assert_eq(sh_harness_cmd(h, line), 501);
	cr_assert(strncmp(sh_harness_reply(h), "501 5.5.4 ", 10) == 0, "%s",
	    sh_harness_reply(h));
	cr_assert_eq(sh_harness_cmd(h, "RSET"), 250);
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, "Subject: x\r\n\r\nx\r\n", 17, 0),
	    250, "%s", sh_harness_reply(h));
	got = only_message(box("m"), &len, NULL);
	cr_assert_null(strstr(got, "X-Envelope-"), "%s", got);
	free(got);
	sh_harness_free(h);
}

Test(maildump, added_headers_after_received)
{
	const char *rcpts[] = { "r@example.org", NULL };
	char args[600];
	sh_harness *h;
	size_t len;
	char *got, *rcv, *tag;

	snprintf(args, sizeof(args), "dir=%s", box("m"));
	h = harness(args, &tagger, NULL);
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, "Subject: t\r\n\r\nx\r\n", 17, 0), 250);
	got = only_message(box("m"), &len, NULL);
	rcv = strstr(got, "\r\nReceived: ");
	tag = strstr(got, "\r\nX-Spam-Score: 1.5\r\nX-Tag: before maildump\r\nSubject: t\r\n");
	cr_assert(rcv != NULL && tag != NULL && rcv < tag, "%s", got);
	free(got);
	sh_harness_free(h);
}

static const char tricky[] =
    ".leading dot\r\n"
    "..two dots\r\n"
    ".\r\n.x\r\n"				/* a lone dot inside, stuffed */
    " .\r\n"
    "8-bit: \xc3\xa9\xe2\x82\xac\xff\xfe\x80\r\n"
    "NUL: a\0b\0\0c\r\n"
    "tab\tand trailing space \r\n"
    "\r\n\r\n"
    "last line without CRLF";

Test(maildump, tricky_body_one_write)
{
	round_trip("m", tricky, sizeof(tricky) - 1, 0);
}

Test(maildump, tricky_body_byte_by_byte)
{
	round_trip("m", tricky, sizeof(tricky) - 1, 1);
}

Test(maildump, tricky_body_odd_chunks)
{
	round_trip("a", tricky, sizeof(tricky) - 1, 3);
	round_trip("b", tricky, sizeof(tricky) - 1, 7);
	round_trip("c", tricky, sizeof(tricky) - 1, 64);
}

Test(maildump, long_lines_and_large_body)
{
	size_t len = 3 * 1024 * 1024 + 17, i;
	char *msg = malloc(len);

	/* A 1 MiB line, then lines of every length up to 1000, dots first. */
	memcpy(msg, "Subject: big\r\n\r\n", 16);
	for (i = 16; i < 16 + 1024 * 1024; i++)
		msg[i] = (char)('a' + i % 26);
	msg[i++] = '\r';
	msg[i++] = '\n';
	while (i < len) {
		size_t n = (i * 7919) % 1000, k;

		for (k = 0; k < n && i < len; k++)
			msg[i++] = k == 0 ? '.' : (char)(0x80 | (k & 0x7f));
		if (i + 2 <= len) {
			msg[i++] = '\r';
			msg[i++] = '\n';
		} else {
			while (i < len)
				msg[i++] = 'z';
		}
	}
	round_trip("m", msg, len, 65536);
	free(msg);
}

Test(maildump, empty_message)
{
	round_trip("m", "", 0, 0);
}

Test(maildump, many_messages_unique_names)
{
	const char *rcpts[] = { "r@example.org", NULL };
	char list[64][256], host[256], pat[512];
	sh_harness *h = md("m", NULL);
	regex_t re;
	size_t i, n;

	for (i = 0; i < 50; i++) {
		char msg[100];
		int len = snprintf(msg, sizeof(msg), "Subject: %zu\r\n\r\nbody %zu\r\n", i, i);

		cr_assert_eq(send_msg(h, "s@example.net", rcpts, msg, (size_t)len, 0), 250);
	}
	n = names(box("m/new"), list, 64);
	cr_assert_eq(n, 50);
	cr_assert_eq(count(box("m/tmp")), 0);
	gethostname(host, sizeof(host));
	for (i = 0; host[i] != '\0'; i++)	/* a dotted name: dots literal */
		cr_assert(host[i] != '/' && host[i] != ':');
	snprintf(pat, sizeof(pat), "^[0-9]+\\.M[0-9]{6}P%ldQ[0-9]+\\.", (long)getpid());
	cr_assert_eq(regcomp(&re, pat, REG_EXTENDED | REG_NOSUB), 0);
	for (i = 0; i < n; i++) {
		cr_assert_eq(regexec(&re, list[i], 0, NULL, 0), 0, "%s", list[i]);
		cr_assert(strstr(list[i], host) != NULL, "%s", list[i]);
		if (i > 0)
			cr_assert_str_neq(list[i], list[i - 1]);
	}
	regfree(&re);
	sh_harness_free(h);
}

Test(maildump, file_mode_0600)
{
	const char *rcpts[] = { "r@example.org", NULL };
	char name[256], path[1024];
	sh_harness *h = md("m", NULL);
	struct stat st;
	size_t len;

	cr_assert_eq(send_msg(h, "s@example.net", rcpts, "Subject: m\r\n\r\nx\r\n", 17, 0), 250);
	free(only_message(box("m"), &len, name));
	snprintf(path, sizeof(path), "%s/new/%s", box("m"), name);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "%o", st.st_mode & 07777);
	sh_harness_free(h);
}

Test(maildump, fsync_no_stores)
{
	const char *rcpts[] = { "r@example.org", NULL };
	sh_harness *h = md("n", "fsync=no");
	size_t len;

	cr_assert_eq(send_msg(h, "s@example.net", rcpts, "Subject: n\r\n\r\nx\r\n", 17, 0), 250);
	free(only_message(box("n"), &len, NULL));
	sh_harness_free(h);
}

Test(maildump, earlier_plugin_accepting_data)
{
	const char msg[] = "Subject: d\r\n\r\nno data hook for us\r\n";
	const char *rcpts[] = { "r@example.org", NULL };
	char args[600];
	sh_harness *h;
	size_t len;
	char *got;

	snprintf(args, sizeof(args), "dir=%s", box("m"));
	h = harness(args, &data_acceptor, NULL);
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, msg, sizeof(msg) - 1, 5), 250);
	got = only_message(box("m"), &len, NULL);
	cr_assert(len > sizeof(msg) - 1 &&
	    memcmp(got + len - (sizeof(msg) - 1), msg, sizeof(msg) - 1) == 0, "%s", got);
	free(got);
	sh_harness_free(h);
}

/* ---- nothing left behind ---- */

Test(maildump, rset_leaves_nothing)
{
	sh_harness *h = md("m", NULL);

	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<r@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RSET"), 250);
	assert_empty(box("m"));
	sh_harness_free(h);
}

Test(maildump, disconnect_mid_data_leaves_nothing)
{
	static const char part[] = "Subject: cut\r\n\r\nsome of the body\r\nand more";
	sh_harness *h = md("m", NULL);

	cr_assert_eq(sh_harness_cmd(h, "MAIL FROM:<s@example.net>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "RCPT TO:<r@example.org>"), 250);
	cr_assert_eq(sh_harness_cmd(h, "DATA"), 354);
	cr_assert_eq(sh_harness_send(h, part, sizeof(part) - 1, 0), 0);
	sh_harness_run(h, 0.1);
	sh_harness_disconnect(h);
	sh_harness_run(h, 0.1);
	assert_empty(box("m"));
	sh_harness_free(h);
	assert_empty(box("m"));
}

Test(maildump, earlier_plugin_rejects_at_eom)
{
	const char *rcpts[] = { "r@example.org", NULL };
	char args[600];
	sh_harness *h;

	snprintf(args, sizeof(args), "dir=%s", box("m"));
	h = harness(args, &rejecter, NULL);
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, "Subject: r\r\n\r\nx\r\n", 17, 0), 554);
	assert_empty(box("m"));
	/* The spool was reset and reused: the next message is clean. */
	sh_harness_free(h);
}

Test(maildump, earlier_plugin_rejects_a_chunk)
{
	const char *rcpts[] = { "r@example.org", NULL };
	char args[600];
	sh_harness *h;

	snprintf(args, sizeof(args), "dir=%s", box("m"));
	h = harness(args, &chunk_rejecter, NULL);
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, "Subject: r\r\n\r\nx\r\n", 17, 0), 550);
	assert_empty(box("m"));
	sh_harness_free(h);
}

/* A reused spool must not leak the octets of a longer earlier body. */
Test(maildump, spool_reuse_after_reset)
{
	const char *rcpts[] = { "r@example.org", NULL };
	static const char big[] = "Subject: long\r\n\r\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n";
	static const char small[] = "Subject: s\r\n\r\nb\r\n";
	char args[600];
	sh_harness *h;
	size_t len;
	char *got;

	snprintf(args, sizeof(args), "dir=%s", box("m"));
	h = harness(args, &chunk_rejecter, NULL);
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, big, sizeof(big) - 1, 0), 550);
	sh_harness_free(h);
	h = md("m", NULL);
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, big, sizeof(big) - 1, 0), 250);
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, small, sizeof(small) - 1, 0), 250);
	cr_assert_eq(count(box("m/new")), 2);
	sh_harness_free(h);
	/* Each file ends with its own body, nothing after it. */
	{
		char list[2][256], path[1024];
		size_t i, found = 0;

		names(box("m/new"), list, 2);
		for (i = 0; i < 2; i++) {
			snprintf(path, sizeof(path), "%s/%s", box("m/new"), list[i]);
			got = slurp(path, &len);
			if (strstr(got, "Subject: s\r\n") != NULL) {
				cr_assert(len > sizeof(small) - 1 && strcmp(got + len -
				    (sizeof(small) - 1), small) == 0, "%s", got);
				found++;
			}
			free(got);
		}
		cr_assert_eq(found, 1);
	}
}

/* ---- storage errors: 452 4.3.1, nothing half-written ---- */

/*
 * RLIMIT_FSIZE makes write(2) and copy_file_range(2) fail with EFBIG past
 * the limit, exactly as a full disk would fail them with ENOSPC, and it
 * needs neither privileges nor a special file system (SIGXFSZ ignored, as
 * smtphookd does).  Criterion runs every test in its own process.
 */
static void
limit_file_size(rlim_t max)
{
	struct rlimit rl;

	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
	rl.rlim_cur = max;
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

static char *
body_of(size_t len)
{
	char *m = malloc(len + 1);
	size_t i;

	memcpy(m, "Subject: fill\r\n\r\n", 17);
	for (i = 17; i < len; i++)
		m[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : 'x';
	m[len - 2] = '\r';
	m[len - 1] = '\n';
	m[len] = '\0';
	return m;
}

Test(maildump, write_error_in_the_stream)
{
	const char *rcpts[] = { "r@example.org", NULL };
	sh_harness *h = md("m", NULL);
	char *m = body_of(200 * 1024);

	limit_file_size(64 * 1024);
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, m, 200 * 1024, 4096), 452);
	cr_assert_str_eq(sh_harness_reply(h),
	    "452 4.3.1 Requested action not taken: insufficient system storage");
	assert_empty(box("m"));
	/* The session goes on; a message that fits is stored. */
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, "Subject: ok\r\n\r\nok\r\n", 19, 0), 250);
	cr_assert_eq(count(box("m/new")), 1);
	free(m);
	sh_harness_free(h);
}

Test(maildump, write_error_at_eom)
{
	/* The body fits under the limit, body + header block does not: the
	 * spool is fine, the write of the final file on the pool fails. */
	const char *rcpts[] = { "r@example.org", NULL };
	sh_harness *h = md("m", NULL);
	size_t len = 64 * 1024 - 40;
	char *m = body_of(len);

	limit_file_size(64 * 1024);
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, m, len, 0), 452);
	cr_assert(strstr(sh_harness_reply(h), "452 4.3.1 ") == sh_harness_reply(h));
	assert_empty(box("m"));
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, "Subject: ok\r\n\r\nok\r\n", 19, 0), 250);
	free(m);
	sh_harness_free(h);
}

Test(maildump, rename_error)
{
	/* new/ removed under the daemon: rename(2) into it fails (as root
	 * too, unlike a read-only mode). */
	const char *rcpts[] = { "r@example.org", NULL };
	sh_harness *h = md("m", NULL);

	cr_assert_eq(rmdir(box("m/new")), 0);
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, "Subject: r\r\n\r\nx\r\n", 17, 0), 452);
	cr_assert(strstr(sh_harness_reply(h), "452 4.3.1 ") == sh_harness_reply(h));
	cr_assert_eq(count(box("m/tmp")), 0);
	sh_harness_free(h);
}

Test(maildump, pool_timeout_cancels_before_commit)
{
	/* One pool thread, kept busy by an earlier plugin: maildump's job
	 * waits past timeout=, the client gets 451 4.4.3, and the job, when
	 * it runs, stops before its commit point. */
	const char *rcpts[] = { "r@example.org", NULL };
	char args[600];
	sh_harness *h;

	snprintf(args, sizeof(args), "dir=%s,timeout=0.1", box("m"));
	h = harness(args, &hog, "pool-threads\0" "1");
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, "Subject: t\r\n\r\nx\r\n", 17, 0), 451);
	cr_assert(strstr(sh_harness_reply(h), "451 4.4.3 ") == sh_harness_reply(h),
	    "%s", sh_harness_reply(h));
	sh_harness_run(h, 0.6);
	assert_empty(box("m"));
	sh_harness_free(h);
	assert_empty(box("m"));
}

/* ---- split=rcpt ---- */

Test(maildump, split_rcpt_hard_links)
{
	const char msg[] = "Subject: split\r\n\r\nfor both\r\n";
	const char *rcpts[] = { "Alice@Example.ORG", "bob+tag@example.org", NULL };
	char a_name[256], b_name[256], path[1024];
	sh_harness *h = md("m", "split=rcpt");
	struct stat sa, sb;
	size_t alen, blen, want_len;
	char *a, *b, *want;

	cr_assert_eq(send_msg(h, "s@example.net", rcpts, msg, sizeof(msg) - 1, 0), 250);
	want = expected(h, "s@example.net", rcpts, msg, sizeof(msg) - 1, &want_len);
	a = only_message(box("m/alice@example.org"), &alen, a_name);
	b = only_message(box("m/bob+tag@example.org"), &blen, b_name);
	cr_assert_str_eq(a_name, b_name);
	cr_assert_eq(alen, want_len);
	cr_assert(memcmp(a, want, want_len) == 0);
	cr_assert_eq(blen, alen);
	cr_assert(memcmp(a, b, alen) == 0);
	snprintf(path, sizeof(path), "%s/new/%s", box("m/alice@example.org"), a_name);
	cr_assert_eq(stat(path, &sa), 0);
	snprintf(path, sizeof(path), "%s/new/%s", box("m/bob+tag@example.org"), b_name);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sa.st_ino, sb.st_ino, "not a hard link");
	cr_assert_eq(sa.st_nlink, 2);
	cr_assert_eq(count(box("m/alice@example.org/cur")), 0);
	/* The staging file is gone; the top level stores nothing itself. */
	cr_assert_eq(count(box("m/tmp")), 0);
	cr_assert_eq(count(box("m/new")), 0);
	free(a);
	free(b);
	free(want);
	sh_harness_free(h);
}

Test(maildump, split_rcpt_same_mailbox_once)
{
	const char *rcpts[] = { "dup@example.org", "DUP@example.org", NULL };
	char name[256], path[1024];
	sh_harness *h = md("m", "split=rcpt");
	struct stat st;
	size_t len;

	cr_assert_eq(send_msg(h, "s@example.net", rcpts, "Subject: d\r\n\r\nx\r\n", 17, 0), 250);
	free(only_message(box("m/dup@example.org"), &len, name));
	snprintf(path, sizeof(path), "%s/new/%s", box("m/dup@example.org"), name);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_nlink, 1);
	sh_harness_free(h);
}

Test(maildump, split_rcpt_hostile_names_stay_inside)
{
	/* What the SMTP parser lets through: quoted local parts with '/',
	 * "..", dots first, and a '/' in a dot-atom. */
	const char *rcpts[] = { "\"../../etc\"@x.example", "a/b@c.example",
		"\"..\"@x.example", "\".hidden\"@x.example", "\"a..b\"@x.example",
		"\"sp ace\"@X.Example", NULL };
	const char *dirs[] = { "_.__.__etc_@x.example", "a_b@c.example",
		"_.__@x.example", "_.hidden_@x.example", "_a._b_@x.example",
		"_sp_ace_@x.example" };
	char list[16][256];
	sh_harness *h = md("top/m", "split=rcpt");
	size_t i, n, len;

	cr_assert_eq(send_msg(h, "s@example.net", rcpts, "Subject: e\r\n\r\nx\r\n", 17, 0), 250,
	    "%s", sh_harness_reply(h));
	for (i = 0; i < 6; i++) {
		char sub[300];

		snprintf(sub, sizeof(sub), "top/m/%s", dirs[i]);
		free(only_message(box(sub), &len, NULL));
	}
	/* DIR holds the top-level Maildir and the six, nothing else; its
	 * parent holds only DIR. */
	n = names(box("top/m"), list, 16);
	cr_assert_eq(n, 9, "%zu entries", n);
	cr_assert_eq(count(box("top")), 1);
	cr_assert_eq(count(tmproot), 1);
	sh_harness_free(h);
}

Test(maildump, split_rcpt_long_address_bounded)
{
	char addr[300], lower[300], rcpt_dir[256] = "", list[4][256];
	const char *rcpts[] = { addr, NULL };
	sh_harness *h = md("m", "split=rcpt");
	size_t n, i;

	/* 2 + 3 * 61 + 7 = 192 octets: within the path limit, over ours. */
	snprintf(addr, sizeof(addr), "Long@%.60s.%.60s.%.60s.Example",
	    "ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
	    "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
	    "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
	for (i = 0; addr[i] != '\0'; i++)
		lower[i] = (char)(addr[i] >= 'A' && addr[i] <= 'Z' ? addr[i] - 'A' + 'a' : addr[i]);
	lower[i] = '\0';
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, "Subject: l\r\n\r\nx\r\n", 17, 0), 250,
	    "%s", sh_harness_reply(h));
	n = names(box("m"), list, 4);
	cr_assert_eq(n, 4);		/* cur new tmp + the recipient */
	for (i = 0; i < n; i++)
		if (strncmp(list[i], "long@", 5) == 0)
			memcpy(rcpt_dir, list[i], sizeof(rcpt_dir));
	cr_assert_eq(strlen(rcpt_dir), 127, "%s", rcpt_dir);
	cr_assert(strncmp(rcpt_dir, lower, 110) == 0 && rcpt_dir[110] == '_', "%s", rcpt_dir);
	cr_assert_eq(strspn(rcpt_dir + 111, "0123456789abcdef"), 16, "%s", rcpt_dir);
	sh_harness_free(h);
}

Test(maildump, split_rcpt_failure_undoes_every_link)
{
	/* The second recipient's directory is a plain file: the link fails
	 * after the first recipient got one; both must end up empty. */
	const char *rcpts[] = { "a@example.org", "b@example.org", "c@example.org", NULL };
	sh_harness *h = md("m", "split=rcpt");
	FILE *f = fopen(box("m/b@example.org"), "w");

	cr_assert_not_null(f);
	fclose(f);
	cr_assert_eq(send_msg(h, "s@example.net", rcpts, "Subject: f\r\n\r\nx\r\n", 17, 0), 452);
	cr_assert(strstr(sh_harness_reply(h), "452 4.3.1 ") == sh_harness_reply(h));
	assert_empty(box("m/a@example.org"));
	assert_empty(box("m"));
	cr_assert(access(box("m/c@example.org/new"), F_OK) != 0 ||
	    count(box("m/c@example.org/new")) == 0);
	sh_harness_free(h);
}

/* ---- the final message after edits at eom ---- */

#define EDIT_MESSAGE SMTPHOOK_BUILD_DIR "/tests/plugins/edit_message.so"

/* edited - edit_message (args) before maildump (split=rcpt) */
static sh_harness *
edited(const char *edit_args)
{
	char spec[1024];
	sh_harness *h = sh_harness_new();

	cr_assert_not_null(h);
	snprintf(spec, sizeof(spec), EDIT_MESSAGE ":%s", edit_args);
	cr_assert_eq(sh_harness_load(h, spec), 0, "%s", sh_harness_error(h));
	snprintf(spec, sizeof(spec), MAILDUMP ":dir=%s,split=rcpt", box("m"));
	cr_assert_eq(sh_harness_load(h, spec), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_start(h), 0, "%s", sh_harness_error(h));
	cr_assert_eq(sh_harness_connect(h, "192.0.2.25"), 220);
	cr_assert_eq(sh_harness_cmd(h, "EHLO client.example"), 250);
	return h;
}

/* The stored file is the envelope of the final recipients, then the
 * final head (as the harness renders it from the same parts), then the
 * body as sent: in every chunking, so pieces split the ranges anywhere. */
Test(maildump, edited_head_and_envelope_stored)
{
	static const char msg[] =
	    "Subject: original\r\n"
	    "X-Drop: x\r\n"
	    "X-Folded: a\r\n\tb\r\n"
	    "To: t@example.org\r\n"
	    "\r\n"
	    "body\r\n.dot\r\nSubject: not a header\r\n";
	static const char final_head[] =
	    "X-New: 1\r\n"
	    "Subject: changed\r\n"
	    "X-Folded: a\r\n\tb\r\n"
	    "To: t@example.org\r\n"
	    "X-Last: end\r\n"
	    "\r\n";
	const char *rcpts[] = { "a@example.org", "b@example.org", NULL };
	const char *body = strstr(msg, "\r\n\r\n") + 4;
	static const size_t chunks[] = { 0, 1, 5, 13, 64 };
	sh_harness *h = edited("insert=X-New:1@0;X-Last:end,change=subject:1:changed,"
	    "remove=x-drop:1,sender=new@example.net RET=HDRS,"
	    "rcpt_add=c@example.org NOTIFY=NEVER,rcpt_remove=b@example.org");
	size_t i;

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		const char *head, *trace;
		size_t head_len, got_len, n;
		char *got, want[2048];

		cr_assert_eq(send_msg(h, "s@example.net", rcpts, msg, sizeof(msg) - 1,
		    chunks[i]), 250, "%s", sh_harness_reply(h));
		head = sh_harness_head(h, &head_len);
		trace = sh_harness_trace(h);
		cr_assert_not_null(head);
		cr_assert_str_eq(head + strlen(trace), final_head);
		n = (size_t)snprintf(want, sizeof(want), "Return-Path: <new@example.net>\r\n"
		    "Delivered-To: a@example.org\r\nDelivered-To: c@example.org\r\n"
		    "X-Envelope-From: <new@example.net> RET=HDRS\r\n"
		    "X-Envelope-To: <c@example.org> NOTIFY=NEVER\r\n%s%s", head, body);
		got = only_message(box("m/a@example.org"), &got_len, NULL);
		cr_assert_eq(got_len, n, "chunk %zu: %zu octets, not %zu:\n%s", chunks[i],
		    got_len, n, got);
		cr_assert(memcmp(got, want, n) == 0, "chunk %zu:\n%s", chunks[i], got);
		free(got);
		got = only_message(box("m/c@example.org"), &got_len, NULL);
		cr_assert_eq(got_len, n);
		free(got);
		/* The removed recipient got nothing. */
		cr_assert_eq(access(box("m/b@example.org"), F_OK), -1);
		{
			char cmd[1200];

			snprintf(cmd, sizeof(cmd), "rm -f %s/new/* %s/new/*",
			    box("m/a@example.org"), box("m/c@example.org"));
			cr_assert_eq(system(cmd), 0);
		}
	}
	sh_harness_free(h);
}

/* Inserts only, at the top (spamfilter's case): the same bytes as the
 * unedited path would write with those fields in the trace block. */
Test(maildump, inserted_fields_first)
{
	static const char msg[] = "Subject: s\r\n\tfolded\r\n\r\nbody\r\n";
	const char *rcpts[] = { "a@example.org", NULL };
	sh_harness *h = edited("insert=X-A:1@0;X-B:2@1");
	size_t got_len;
	char *got, want[1024];
	int n;

	cr_assert_eq(send_msg(h, "s@example.net", rcpts, msg, sizeof(msg) - 1, 3), 250);
	cr_assert(sh_harness_head_edited(h));
	n = snprintf(want, sizeof(want), "Return-Path: <s@example.net>\r\n"
	    "Delivered-To: a@example.org\r\n%sX-A: 1\r\nX-B: 2\r\n%s",
	    sh_harness_trace(h), msg);
	got = only_message(box("m/a@example.org"), &got_len, NULL);
	cr_assert_eq(got_len, (size_t)n, "%s", got);
	cr_assert(memcmp(got, want, got_len) == 0, "%s", got);
	free(got);
	sh_harness_free(h);
}
