/*
 * smtp_reply.c - every SMTP reply the session sends, formatted in one place
 *
 * Replies are queued in the connection's output buffer (RFC 5321 §4.2:
 * "code SP text", "code-text" for all but the last line of a multi-line
 * reply, an RFC 3463 enhanced code after the code where one is due).  A
 * verdict's reply is the deciding plugin's when its class fits the
 * verdict, else the host's default (STYLE §9.8).  A 421 or a DISCONNECT
 * closes the connection once the reply is out; every --max-errors
 * counts here too.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "session.h"
#include "smtp_internal.h"
#include "strbuf.h"

/*
 * session_vreply - queue one reply, multi-line when the text holds '\n'
 * (RFC 5321 §4.2.1).  enhanced NULL: no enhanced code (the greeting, EHLO
 * and 354, see docs/PROTOCOL.md).  A reply that cannot be queued kills the
 * session rather than desynchronise the client.
 */
static void
session_vreply(struct session *s, int code, const char *enhanced,
    const char *fmt, va_list ap)
{
	char text[REPLY_TEXT_MAX + 512];
	const char *body, *line, *nl, *end;
	size_t elen = enhanced != NULL ? strnlen(enhanced, 15) : 0;

	if (s->conn.life != CONN_OPEN)
		return;
	/* Most replies are ("%s", text): no need to format and copy the
	 * text once more (a reply costs no printf at all). */
	if (fmt[0] == '%' && fmt[1] == 's' && fmt[2] == '\0') {
		body = va_arg(ap, const char *);
		if (body == NULL)
			body = "";
	} else {
		if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
			text[0] = '\0';
		body = text;
	}
	if (code < 0 || code > 999)
		code = 999;		/* never: plugins' codes are 200-599 */
	line = body;
	end = body + strnlen(body, sizeof(text) - 1);
	do {
		size_t ll;
		int last;
		char *o;

		nl = memchr(line, '\n', (size_t)(end - line));
		ll = nl != NULL ? (size_t)(nl - line) : (size_t)(end - line);
		last = nl == NULL || nl + 1 == end;
		if (conn_out_reserve(&s->conn, ll + elen + 8) < 0) {
			conn_kill(&s->conn, "out of memory");
			return;
		}
		/* "%03d%c%s%s%.*s\r\n": code, '-' or ' ', enhanced code and
		 * a space when given, the line, CRLF */
		o = s->conn.out + s->conn.out_len;
		*o++ = (char)('0' + code / 100);
		*o++ = (char)('0' + code / 10 % 10);
		*o++ = (char)('0' + code % 10);
		*o++ = last ? ' ' : '-';
		if (enhanced != NULL) {
			memcpy(o, enhanced, elen);
			o += elen;
			*o++ = ' ';
		}
		memcpy(o, line, ll);
		o += ll;
		*o++ = '\r';
		*o++ = '\n';
		s->conn.out_len = (size_t)(o - s->conn.out);
		if (last)
			break;
		line = nl + 1;
	} while (1);
}

void
session_reply(struct session *s, int code, const char *enhanced,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_vreply(s, code, enhanced, fmt, ap);
	va_end(ap);
}

/* session_reply_host - "HOSTNAME" + tail, without a format: the greeting
 * and the QUIT reply of every connection */
void
session_reply_host(struct session *s, int code, const char *enhanced,
    const char *tail)
{
	char text[REPLY_TEXT_MAX];
	struct strbuf b;
	const char *t;

	sb_init(&b, text, sizeof(text));
	sb_puts(&b, s->info.hostname);
	sb_puts(&b, tail);
	t = sb_cstr(&b);
	session_reply(s, code, enhanced, "%s", t != NULL ? t : tail);
}

/* cmd_ok - count the command being answered as successful */
void
cmd_ok(struct session *s, enum smtp_verb v)
{
	s->counts[v][0]++;
}

/* protocol_error - a client error: reply and count toward --max-errors */
void
protocol_error(struct session *s, int code, const char *enhanced,
    const char *text)
{
	session_reply(s, code, enhanced, "%s", text);
	if (++s->errors >= s->srv->cfg->max_errors) {
		session_reply(s, 421, "4.7.0", "%s Too many errors, closing connection",
		    s->info.hostname);
		session_close(s, "too many errors");
	}
}

void
session_close(struct session *s, const char *reason)
{
	conn_close_after_flush(&s->conn, reason);
	session_enter(s, SESSION_CLOSING);
}

/* enh_copy - an enhanced status code into a char[16] (no printf) */
static void
enh_copy(char *dst, const char *src)
{
	size_t n = strnlen(src, 15);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * reply_verdict_as - the reply for a chain verdict: the deciding plugin's
 * when its code has the verdict's class, else the default.  A 421, or a
 * DISCONNECT, closes the connection after the reply.  The code and
 * enhanced code sent go to code_r/enh_r[16] when not NULL.
 */
void
reply_verdict_as(struct session *s, sh_verdict v, struct chain_reply *r,
    int dcode, const char *denh, const char *dtext, int *code_r, char *enh_r)
{
	int want = v == SH_REJECT ? 5 : v == SH_TEMPFAIL ? 4 : 2;
	int code = dcode;
	char enh[16];
	const char *text = dtext;

	enh_copy(enh, denh != NULL ? denh : "");
	if (r != NULL && r->code != 0) {
		int cls = r->code / 100;

		if (cls == want || (v == SH_DISCONNECT && (cls == 4 || cls == 5))) {
			code = r->code;
			if (r->enhanced[0] != '\0')
				enh_copy(enh, r->enhanced);
			else if (enh[0] != '\0')
				enh[0] = (char)('0' + cls);
			if (r->text != NULL)
				text = r->text;
		} else {
			log_msg(LOG_WARN, "session %s: plugin %s replied %d to a %s "
			    "verdict; using %d", s->id_str,
			    chain_decider_name(&s->chain), r->code,
			    v == SH_REJECT ? "REJECT" : v == SH_TEMPFAIL ?
			    "TEMPFAIL" : "ACCEPT", dcode);
		}
	}
	if (v == SH_REJECT || v == SH_TEMPFAIL || v == SH_DISCONNECT)
		log_msg(LOG_INFO, "session %s: %s by plugin %s: %d %s", s->id_str,
		    chain_hook_name(s->chain.run.hook), chain_decider_name(&s->chain),
		    code, enh);
	if (code_r != NULL) {
		*code_r = code;
		memcpy(enh_r, enh, sizeof(enh));
	}
	session_reply(s, code, denh != NULL ? enh : NULL, "%s", text);
	if (v == SH_DISCONNECT || code == 421)
		session_close(s, "closed by plugin");
}

void
reply_verdict(struct session *s, sh_verdict v, struct chain_reply *r,
    int dcode, const char *denh, const char *dtext)
{
	reply_verdict_as(s, v, r, dcode, denh, dtext, NULL, NULL);
}

/* refused - the usual handling of a non-allowing verdict; 1 if refused */
int
refused(struct session *s, sh_verdict v, int code, const char *enh,
    const char *text)
{
	char buf[300];

	switch (v) {
	case SH_CONTINUE:
	case SH_ACCEPT:
		return 0;
	case SH_REJECT:
		reply_verdict(s, v, &s->chain.run.reply, code, enh, text);
		return 1;
	case SH_TEMPFAIL:
		reply_verdict(s, v, &s->chain.run.reply, 451, "4.7.1",
		    "Temporary failure, please try again later");
		return 1;
	default:
		snprintf(buf, sizeof(buf), "%s Closing connection", s->info.hostname);
		reply_verdict(s, SH_DISCONNECT, &s->chain.run.reply, 421, "4.7.0", buf);
		return 1;
	}
}
