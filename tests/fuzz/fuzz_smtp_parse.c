/*
 * fuzz_smtp_parse.c - libFuzzer target for server/smtp_parse.c
 *
 * The input is one command line without CRLF.  It is copied to the end
 * of a bounded local buffer first, so a parser that reads one byte past
 * the length it was given trips ASan.  Every function of the module runs on the
 * whole line and on its argument, and the invariants the session relies
 * on are checked: slices stay inside the input, addr is NUL-terminated
 * and as long as addr_len says, and log output is printable and bounded.
 *
 * Build: clang -g -fsanitize=fuzzer,address,undefined -Iserver \
 *	    server/smtp_parse.c tests/fuzz/fuzz_smtp_parse.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"

/* The SPEC §3 command-line limit, with room for the fuzzer to go past. */
#define LINE_MAX_FUZZ	4096

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* check - abort on a broken invariant, so the fuzzer records it */
static void
check(int ok)
{
	if (!ok)
		abort();
}

/* inside - s/len lies within buf/buflen (len 0 may sit at the end) */
static int
inside(const char *s, size_t len, const char *buf, size_t buflen)
{
	return s >= buf && s <= buf + buflen &&
	    len <= (size_t)(buf + buflen - s);
}

/* fuzz_mail - run smtp_parse_mail_arg() and check what it returns */
static void
fuzz_mail(const char *args, size_t len, int is_rcpt, const char *buf,
    size_t buflen)
{
	struct smtp_mail_arg	 ma;
	enum smtp_parse_status	 st;
	const char		*why = NULL, *enh = NULL;
	size_t			 i;
	int			 code;

	st = smtp_parse_mail_arg(args, len, is_rcpt, &ma, &why);
	check(why != NULL && why[0] != '\0');
	code = smtp_parse_status_code(st, is_rcpt, &enh);
	check(code == 250 || code == 501 || code == 555);
	check(enh != NULL && smtp_parse_status_str(st) != NULL);
	if (st != SMTP_PARSE_OK)
		return;

	check(ma.addr_len <= SMTP_PATH_MAX - 2);
	check(ma.addr[ma.addr_len] == '\0' && strlen(ma.addr) == ma.addr_len);
	check(ma.local_len <= ma.addr_len);
	check(ma.local_len == ma.addr_len || ma.addr[ma.local_len] == '@');
	check(is_rcpt ? ma.addr_len > 0 : 1);
	/* A quoted local part may hold SP, '<' and '>'; nothing else may. */
	for (i = 0; i < ma.addr_len; i++) {
		check((unsigned char)ma.addr[i] >= 0x20 && ma.addr[i] != 0x7f);
		if (ma.addr[0] != '"')
			check(strchr(" <>\"\\", ma.addr[i]) == NULL);
	}
	check(ma.nparams <= SMTP_PARAMS_MAX);
	for (i = 0; i < ma.nparams; i++) {
		check(ma.params[i].key_len > 0);
		check(inside(ma.params[i].key, ma.params[i].key_len, buf,
		    buflen));
		if (ma.params[i].value != NULL)
			check(ma.params[i].value_len > 0 &&
			    inside(ma.params[i].value, ma.params[i].value_len,
			    buf, buflen));
	}
	if (ma.envid != NULL)
		check(inside(ma.envid, ma.envid_len, buf, buflen));
	if (ma.orcpt != NULL)
		check(inside(ma.orcpt, ma.orcpt_len, buf, buflen));
	if (ma.notify != NULL)
		check(inside(ma.notify, ma.notify_len, buf, buflen));
	if (ma.ret != NULL)
		check(ma.ret_len == 4 && inside(ma.ret, 4, buf, buflen));
	if (ma.auth != NULL)
		check(inside(ma.auth, ma.auth_len, buf, buflen));
	check(is_rcpt ? !ma.has_size && !ma.smtputf8 &&
	    ma.body == SMTP_BODY_NONE : ma.notify == NULL && ma.orcpt == NULL);
}

/* fuzz_escape - smtp_log_escape() into a buffer of outsize bytes */
static void
fuzz_escape(const char *in, size_t len, size_t outsize)
{
	char		out[256];
	size_t		n, i, want;
	unsigned char	c;

	memset(out, 'Z', sizeof(out));
	n = smtp_log_escape(out, outsize, in, len);
	if (outsize == 0) {
		check(n == 0 && out[0] == 'Z');
		return;
	}
	check(n < outsize && out[n] == '\0' && strlen(out) == n);
	check(outsize == sizeof(out) || out[outsize] == 'Z');
	for (i = 0; i < n; i++)
		check(out[i] >= 0x20 && out[i] < 0x7f);
	/* Nothing is cut when the whole escaped text fits. */
	for (i = 0, want = 0; i < len; i++) {
		c = (unsigned char)in[i];
		want += c == '\\' ? 2 : (c >= 0x20 && c < 0x7f) ? 1 : 4;
	}
	if (want < outsize) {
		check(n == want);
		return;
	}
	/* Cut: at most one escape short of full, and marked. */
	check(n + 3 >= outsize - 1);
	check(n < 3 ? strspn(out, ".") == n :
	    memcmp(out + n - 3, "...", 3) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum smtp_verb		 v;
	unsigned long long	 bsize;
	const char		*args;
	char			 line[LINE_MAX_FUZZ], *buf;
	size_t			 alen;
	int			 last;

	/*
	 * Copy to the END of a bounded local buffer: a parser that reads
	 * one byte past the length it was given runs into the stack
	 * redzone, which ASan reports, instead of libFuzzer's slack.
	 */
	if (size > sizeof(line))
		size = sizeof(line);
	buf = line + sizeof(line) - size;
	memcpy(buf, data, size);

	v = smtp_parse_verb(buf, size, &args, &alen);
	check(v >= SMTP_VERB_UNKNOWN && v < SMTP_VERB_COUNT);
	check(smtp_verb_str(v) != NULL);
	check(inside(args, alen, buf, size));
	check(alen == 0 || (args[0] != ' ' && args[alen - 1] != ' '));

	/* Whole line and argument alike: hostile callers get both. */
	fuzz_mail(args, alen, 0, buf, size);
	fuzz_mail(args, alen, 1, buf, size);
	fuzz_mail(buf, size, 0, buf, size);
	fuzz_mail(buf, size, 1, buf, size);

	(void)smtp_check_helo_arg(args, alen);
	(void)smtp_check_helo_arg(buf, size);
	if (smtp_parse_bdat_arg(args, alen, &bsize, &last) == 0)
		check(last == 0 || last == 1);
	(void)smtp_parse_bdat_arg(buf, size, NULL, NULL);

	fuzz_escape(buf, size, 0);
	fuzz_escape(buf, size, 1);
	fuzz_escape(buf, size, 4);
	fuzz_escape(buf, size, size > 0 ? (unsigned char)buf[0] : 17);
	fuzz_escape(buf, size, 256);

	return 0;
}
