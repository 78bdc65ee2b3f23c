/*
 * test_chain.c - the verdict chain, driven in-process through the real
 * session state machine (smtp_session.c, chain.c, host_api.c, tx.c,
 * conn.c) over a socketpair: no listener, no network, no dlopen.
 *
 * A struct server is built by hand with three fake plugins whose
 * descriptors live in this file.  Every fake shares one set of hook
 * functions and finds its own state (struct fake) through sh_plugin_get().
 * A test scripts the fakes (verdict, reply, pending mode, or a custom
 * function per hook), connects, and talks SMTP on the client end of the
 * socketpair while the test pumps the libev loop with EVRUN_NOWAIT.
 *
 * Every test ends by closing the client, running the loop until the
 * session is freed, and destroying the pool and the loop, so the suite
 * runs clean under valgrind --leak-check=full.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "chain.h"
#include "config.h"
#include "plugin.h"
#include "server.h"
#include "session.h"
#include "smtphook.h"
#include "workpool.h"

#define NFAKE 3
#define NHOOKS SH_HOOK_COUNT_V1
#define REPLY_WAIT 2.0		/* seconds a reply may take */

/* ---- the fake plugins ---- */

enum fake_mode {
	M_PLAIN,		/* sh_reply (when code) + return v[] */
	M_PEND_TIMER,		/* pend; an ev_timer resumes after delay */
	M_PEND_NOW,		/* pend and resume before returning PENDING */
	M_PEND_NO_PEND,		/* return PENDING without sh_pend() */
	M_PEND_FOREVER,		/* pend and never resume */
	M_PEND_POOL,		/* pend; a pool job's done resumes */
};

struct fake;
typedef sh_verdict (*fake_fn)(sh_ctx *ctx, struct fake *f);

struct fake {
	int idx;
	struct ev_loop *loop;
	/* script, per hook */
	sh_verdict v[NHOOKS];
	int code[NHOOKS];
	const char *enh[NHOOKS];
	const char *text[NHOOKS];
	enum fake_mode mode[NHOOKS];
	fake_fn fn[NHOOKS];
	/* what happened */
	int calls[NHOOKS];
	int resets, disconnects, cancels;
	char body[16384];
	size_t body_len;
	char hdrs[4096];
	int hdr_len_ok;			/* header lengths matched strlen */
	/* pending verdicts */
	sh_pending tok;
	int have_tok;
	ev_timer timer;
	double delay;
	sh_verdict resume_v;
	int resume_code;
	const char *resume_enh, *resume_text;
	int resume_rc[2];
	int worked;
	/* per-test scratch */
	char s1[4096], s2[4096];
	int n1, n2;
};

static struct fake F[NFAKE];
static char evlog[4096];

/* note - append one event to the global event log */
static void
note(const char *fmt, ...)
{
	size_t n = strlen(evlog);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(evlog + n, sizeof(evlog) - n, fmt, ap);
	va_end(ap);
}

static struct fake *
FK(sh_ctx *ctx)
{
	return sh_plugin_get(ctx);
}

static void
on_cancel(void *arg)
{
	struct fake *f = arg;

	f->cancels++;
	note("X%d ", f->idx);
	if (f->loop != NULL)
		ev_timer_stop(f->loop, &f->timer);
}

/* do_resume - resume twice: the second must be refused */
static void
do_resume(struct fake *f)
{
	f->resume_rc[0] = sh_resume(f->tok, f->resume_v, f->resume_code,
	    f->resume_enh, f->resume_text);
	f->resume_rc[1] = sh_resume(f->tok, SH_REJECT, 0, NULL, NULL);
}

static void
resume_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	do_resume(w->data);
}

static void
pool_work(void *arg)
{
	((struct fake *)arg)->worked = 1;
}

static void
pool_done(void *arg)
{
	do_resume(arg);
}

/* act - the common body of every verdict hook */
static sh_verdict
act(sh_ctx *ctx, sh_hook_id h)
{
	struct fake *f = FK(ctx);

	f->calls[h]++;
	f->loop = sh_loop(ctx);
	if (f->fn[h] != NULL)
		return f->fn[h](ctx, f);
	switch (f->mode[h]) {
	case M_PEND_TIMER:
		f->tok = sh_pend(ctx, on_cancel, f);
		f->have_tok = 1;
		ev_timer_init(&f->timer, resume_timer_cb, f->delay, 0);
		f->timer.data = f;
		ev_timer_start(f->loop, &f->timer);
		return SH_PENDING;
	case M_PEND_NOW:
		f->tok = sh_pend(ctx, on_cancel, f);
		f->have_tok = 1;
		do_resume(f);
		return SH_PENDING;
	case M_PEND_NO_PEND:
		return SH_PENDING;
	case M_PEND_FOREVER:
		f->tok = sh_pend(ctx, on_cancel, f);
		f->have_tok = 1;
		return SH_PENDING;
	case M_PEND_POOL:
		f->tok = sh_pend(ctx, NULL, NULL);
		f->have_tok = 1;
		if (sh_pool_submit(ctx, pool_work, pool_done, f) < 0)
			return SH_TEMPFAIL;
		return SH_PENDING;
	default:
		break;
	}
	if (f->code[h] != 0)
		sh_reply(ctx, f->code[h], f->enh[h], "%s",
		    f->text[h] != NULL ? f->text[h] : "");
	return f->v[h];
}

static sh_verdict
h_connect(sh_ctx *ctx)
{
	return act(ctx, SH_HOOK_CONNECT);
}

static sh_verdict
h_helo(sh_ctx *ctx, const char *name, int extended)
{
	(void)name, (void)extended;
	return act(ctx, SH_HOOK_HELO);
}

static sh_verdict
h_mail(sh_ctx *ctx, const sh_address *a)
{
	(void)a;
	return act(ctx, SH_HOOK_MAIL);
}

static sh_verdict
h_rcpt(sh_ctx *ctx, const sh_address *a)
{
	(void)a;
	return act(ctx, SH_HOOK_RCPT);
}

static sh_verdict
h_data(sh_ctx *ctx)
{
	return act(ctx, SH_HOOK_DATA);
}

static sh_verdict
h_header(sh_ctx *ctx, const char *name, size_t nl, const char *value, size_t vl)
{
	struct fake *f = FK(ctx);
	size_t n = strlen(f->hdrs);

	if (f->calls[SH_HOOK_HEADER] == 0)
		f->hdr_len_ok = 1;
	if (strlen(name) != nl || strlen(value) != vl)
		f->hdr_len_ok = 0;
	snprintf(f->hdrs + n, sizeof(f->hdrs) - n, "%.*s=%.*s|", (int)nl, name,
	    (int)vl, value);
	return act(ctx, SH_HOOK_HEADER);
}

static sh_verdict
h_chunk(sh_ctx *ctx, const unsigned char *data, size_t len)
{
	struct fake *f = FK(ctx);

	if (f->body_len + len <= sizeof(f->body)) {
		memcpy(f->body + f->body_len, data, len);
		f->body_len += len;
	}
	return act(ctx, SH_HOOK_CHUNK);
}

static sh_verdict
h_eom(sh_ctx *ctx)
{
	return act(ctx, SH_HOOK_EOM);
}

static void
h_reset(sh_ctx *ctx)
{
	struct fake *f = FK(ctx);

	f->resets++;
	note("R%d ", f->idx);
}

static sh_verdict
h_vrfy(sh_ctx *ctx, const char *arg)
{
	(void)arg;
	return act(ctx, SH_HOOK_VRFY);
}

static sh_verdict
h_expn(sh_ctx *ctx, const char *arg)
{
	(void)arg;
	return act(ctx, SH_HOOK_EXPN);
}

static void
h_disconnect(sh_ctx *ctx)
{
	struct fake *f = FK(ctx);

	f->disconnects++;
	note("D%d ", f->idx);
}

#define FAKE_DESC(nm) {							\
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,		\
	.struct_size = sizeof(sh_plugin), .name = nm, .version = "0",	\
	.connect = h_connect, .helo = h_helo, .mail = h_mail,		\
	.rcpt = h_rcpt, .data = h_data, .header = h_header,		\
	.chunk = h_chunk, .eom = h_eom, .reset = h_reset,		\
	.vrfy = h_vrfy, .expn = h_expn, .disconnect = h_disconnect,	\
}

static const sh_plugin fake_desc[NFAKE] = {
	FAKE_DESC("p0"), FAKE_DESC("p1"), FAKE_DESC("p2"),
};

/* A plugin built for an older ABI minor: its descriptor ends before eom,
 * so eom, reset, vrfy, expn and disconnect must be treated as absent even
 * though the memory past struct_size holds pointers. */
static const sh_plugin old_desc = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = 0,
	.struct_size = offsetof(sh_plugin, eom), .name = "old", .version = "0",
	.connect = h_connect, .helo = h_helo, .mail = h_mail, .rcpt = h_rcpt,
	.data = h_data, .header = h_header, .chunk = h_chunk, .eom = h_eom,
	.reset = h_reset, .vrfy = h_vrfy, .expn = h_expn,
	.disconnect = h_disconnect,
};

/* ---- the in-process server ---- */

static struct config cfg;
static struct server srv;
static struct plugin plugins[NFAKE];
static char pnames[NFAKE][8];
static int cfd = -1;			/* the client's end */
static char rbuf[65536];		/* received, not yet returned */
static size_t rlen;
static int reof;			/* the server closed */
static int destroyed;
static char R[16384];			/* the last reply */

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* pump - one non-blocking loop turn, then a short wait for input */
static void
pump(void)
{
	struct pollfd pfd = { .fd = cfd, .events = POLLIN };

	ev_run(srv.loop, EVRUN_NOWAIT);
	if (cfd >= 0 && !reof)
		(void)poll(&pfd, 1, 2);
	else
		(void)poll(NULL, 0, 2);
}

/* client_recv - take what the server sent so far */
static void
client_recv(void)
{
	ssize_t n;

	while (cfd >= 0 && !reof && rlen < sizeof(rbuf) - 1) {
		n = recv(cfd, rbuf + rlen, sizeof(rbuf) - 1 - rlen, 0);
		if (n > 0)
			rlen += (size_t)n;
		else if (n == 0)
			reof = 1;
		else
			break;
	}
}

/* reply_end - length of the first complete reply in rbuf, or 0 */
static size_t
reply_end(void)
{
	size_t off = 0;

	while (off < rlen) {
		char *crlf = memmem(rbuf + off, rlen - off, "\r\n", 2);
		size_t ll;

		if (crlf == NULL)
			return 0;
		ll = (size_t)(crlf - (rbuf + off));
		if (ll >= 4 && rbuf[off + 3] == ' ')
			return off + ll + 2;
		if (ll < 4 || rbuf[off + 3] != '-')
			return off + ll + 2;	/* malformed: return it anyway */
		off += ll + 2;
	}
	return 0;
}

/* read_reply - the next complete reply (all lines) into text; its code,
 * or -1 when none came within REPLY_WAIT seconds / the server closed */
static int
read_reply(char *text, size_t size)
{
	double deadline = now() + REPLY_WAIT;
	size_t end;

	for (;;) {
		client_recv();
		if ((end = reply_end()) > 0)
			break;
		if (reof || now() > deadline) {
			snprintf(text, size, "%s", reof ? "<eof>" : "<timeout>");
			return -1;
		}
		pump();
	}
	snprintf(text, size, "%.*s", (int)end, rbuf);
	memmove(rbuf, rbuf + end, rlen - end);
	rlen -= end;
	return atoi(text);
}

/* send_raw - write all of data to the server */
static void
send_raw(const char *data)
{
	size_t len = strlen(data), off = 0;

	while (off < len) {
		ssize_t n = send(cfd, data + off, len - off, MSG_NOSIGNAL);
		if (n > 0)
			off += (size_t)n;
		else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			pump();
		else
			cr_assert_fail("send: %s", strerror(errno));
	}
}

/* send_cmd - one command line (CRLF added); the reply's code, text in R */
static int
send_cmd(const char *line)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s\r\n", line);
	send_raw(buf);
	return read_reply(R, sizeof(R));
}

/* pump_for - run the loop for a while */
static void
pump_for(double seconds)
{
	double end = now() + seconds;

	while (now() < end)
		pump();
}

/* pump_until - run the loop until *counter >= want (bounded) */
static int
pump_until(const int *counter, int want)
{
	double deadline = now() + REPLY_WAIT;

	while (*counter < want && now() < deadline)
		pump();
	return *counter >= want;
}

/* wait_eof - the server closes the connection; 1 when it did */
static int
wait_eof(void)
{
	double deadline = now() + REPLY_WAIT;

	for (;;) {
		client_recv();
		if (reof)
			return 1;
		if (now() > deadline)
			return 0;
		pump();
	}
}

/* nothing_received - no reply byte is waiting */
static int
nothing_received(void)
{
	client_recv();
	return rlen == 0 && !reof;
}

/* server_new - the hand-built server with n plugins (no session yet) */
static void
server_new(size_t n)
{
	size_t i;

	config_defaults(&cfg);
	snprintf(cfg.hostname, sizeof(cfg.hostname), "test.example");
	cfg.greet_pause = 0;
	memset(&srv, 0, sizeof(srv));
	srv.cfg = &cfg;
	srv.reserve_fd = -1;
	srv.loop = ev_loop_new(0);
	cr_assert_not_null(srv.loop);
	ev_set_userdata(srv.loop, &srv);
	cr_assert_eq(workpool_init(&srv.pool, srv.loop, 2), 0);
	memset(plugins, 0, sizeof(plugins));
	for (i = 0; i < n; i++) {
		plugins[i].desc = &fake_desc[i];
		snprintf(pnames[i], sizeof(pnames[i]), "%s", fake_desc[i].name);
		plugins[i].name = pnames[i];
		plugins[i].index = i;
		plugins[i].timeout = 30;
		plugins[i].on_timeout = SH_TEMPFAIL;
		plugins[i].initialised = 1;
		plugins[i].data = &F[i];
	}
	srv.plugins = plugins;
	srv.nplugins = n;
}

/* client_connect - a socketpair session from 192.0.2.1:40001; the
 * greeting's code (text in R) */
static int
client_connect(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(40001) };
	int fds[2];

	inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
	cfd = fds[1];
	rlen = 0;
	reof = 0;
	session_accept(&srv, fds[0], (struct sockaddr *)&sin, sizeof(sin));
	return read_reply(R, sizeof(R));
}

/* client_close - hang up and run the loop until the session is freed */
static void
client_close(void)
{
	double deadline;

	if (cfd >= 0) {
		close(cfd);
		cfd = -1;
	}
	deadline = now() + REPLY_WAIT;
	while (srv.nsessions > 0 && now() < deadline)
		pump();
}

static void
setup(void)
{
	int i;

	memset(F, 0, sizeof(F));
	for (i = 0; i < NFAKE; i++) {
		F[i].idx = i;
		F[i].delay = 0.05;
	}
	evlog[0] = '\0';
	destroyed = 0;
	server_new(NFAKE);
}

/* server_gone - the end of every test: leak-free teardown */
static void
server_gone(void)
{
	int i;

	if (destroyed)
		return;
	destroyed = 1;
	client_close();
	for (i = 0; i < NFAKE; i++)
		if (F[i].loop != NULL)
			ev_timer_stop(srv.loop, &F[i].timer);
	workpool_destroy(&srv.pool);
	u64map_free(&srv.sessions);
	addrcount_free(&srv.per_ip);
	ev_loop_destroy(srv.loop);
	srv.loop = NULL;
}

TestSuite(chain, .init = setup, .fini = server_gone, .timeout = 60);

/* hello - connect and EHLO */
static void
hello(void)
{
	cr_assert_eq(client_connect(), 220, "greeting: %s", R);
	cr_assert_eq(send_cmd("EHLO client.example"), 250, "EHLO: %s", R);
}

/* envelope - MAIL and one RCPT, both expected to pass */
static void
envelope(void)
{
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 250, "MAIL: %s", R);
	cr_assert_eq(send_cmd("RCPT TO:<r@example.com>"), 250, "RCPT: %s", R);
}

/* message - DATA (354 expected) then body + end; the final code */
static int
message(const char *body)
{
	cr_assert_eq(send_cmd("DATA"), 354, "DATA: %s", R);
	send_raw(body);
	send_raw(".\r\n");
	return read_reply(R, sizeof(R));
}

static int
has(const char *needle)
{
	return strstr(R, needle) != NULL;
}

/* ================================================================== */
/* first verdict decides                                              */
/* ================================================================== */

Test(chain, first_non_continue_decides)
{
	F[0].v[SH_HOOK_MAIL] = SH_ACCEPT;
	F[1].v[SH_HOOK_MAIL] = SH_REJECT;
	F[1].v[SH_HOOK_RCPT] = SH_REJECT;
	F[2].v[SH_HOOK_RCPT] = SH_ACCEPT;
	hello();
	cr_assert_eq(F[0].calls[SH_HOOK_HELO] + F[1].calls[SH_HOOK_HELO] +
	    F[2].calls[SH_HOOK_HELO], 3);

	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 250, "%s", R);
	cr_assert(has("250 2.1.0"), "%s", R);
	cr_assert_eq(F[0].calls[SH_HOOK_MAIL], 1);
	cr_assert_eq(F[1].calls[SH_HOOK_MAIL], 0, "ACCEPT of p0 decides");
	cr_assert_eq(F[2].calls[SH_HOOK_MAIL], 0);

	cr_assert_eq(send_cmd("RCPT TO:<r@example.com>"), 550, "%s", R);
	cr_assert(has("550 5.7.1 "), "%s", R);
	cr_assert_eq(F[0].calls[SH_HOOK_RCPT], 1);
	cr_assert_eq(F[1].calls[SH_HOOK_RCPT], 1);
	cr_assert_eq(F[2].calls[SH_HOOK_RCPT], 0, "REJECT of p1 decides");
}

Test(chain, all_continue_at_rcpt_accepts)
{
	hello();
	envelope();
	cr_assert(has("250 2.1.5"), "%s", R);
	cr_assert_eq(send_cmd("RCPT TO:<s@example.com>"), 250, "%s", R);
	for (int i = 0; i < NFAKE; i++)
		cr_assert_eq(F[i].calls[SH_HOOK_RCPT], 2, "plugin %d", i);
}

Test(chain, all_continue_at_eom_is_451)
{
	hello();
	envelope();
	cr_assert_eq(message("Subject: x\r\n\r\nhi\r\n"), 451, "%s", R);
	cr_assert(has("451 4.3.0 "), "%s", R);
	for (int i = 0; i < NFAKE; i++) {
		cr_assert_eq(F[i].calls[SH_HOOK_EOM], 1);
		cr_assert_eq(F[i].resets, 1, "a message nobody took is reset");
	}
	/* The session goes on. */
	cr_assert_eq(send_cmd("NOOP"), 250, "%s", R);
}

static sh_verdict
eom_note_id(sh_ctx *ctx, struct fake *f)
{
	const sh_tx_info *tx = sh_tx(ctx);

	snprintf(f->s1, sizeof(f->s1), "%s", tx != NULL ? tx->id : "(null)");
	f->n1 = tx != NULL ? (int)tx->nrcpts : -1;
	return SH_ACCEPT;
}

Test(chain, accept_at_eom_is_250_queued)
{
	F[1].fn[SH_HOOK_EOM] = eom_note_id;
	hello();
	envelope();
	cr_assert_eq(send_cmd("RCPT TO:<t@example.com>"), 250, "%s", R);
	cr_assert_eq(message("Subject: x\r\n\r\nhi\r\n"), 250, "%s", R);
	cr_assert(has("250 2.0.0 Ok: queued as "), "%s", R);
	cr_assert(F[1].s1[0] != '\0' && has(F[1].s1), "id %s in %s", F[1].s1, R);
	cr_assert_eq(F[1].n1, 2, "both recipients in sh_tx()");
	cr_assert_eq(F[0].calls[SH_HOOK_EOM], 1);
	cr_assert_eq(F[2].calls[SH_HOOK_EOM], 0, "ACCEPT at eom decides");
	for (int i = 0; i < NFAKE; i++)
		cr_assert_eq(F[i].resets, 0, "no reset after an accepted message");
	cr_assert_eq(srv.stats.messages, 1);
}

/* ================================================================== */
/* default replies                                                    */
/* ================================================================== */

Test(chain, reject_defaults_per_hook)
{
	F[2].v[SH_HOOK_EOM] = SH_ACCEPT;
	cr_assert_eq(client_connect(), 220);

	F[0].v[SH_HOOK_HELO] = SH_REJECT;
	cr_assert_eq(send_cmd("HELO client.example"), 550, "%s", R);
	cr_assert(has("550 5.7.1 "), "%s", R);
	F[0].v[SH_HOOK_HELO] = SH_CONTINUE;
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 503,
	    "a refused HELO leaves the session un-greeted: %s", R);
	cr_assert_eq(send_cmd("EHLO client.example"), 250, "%s", R);

	F[1].v[SH_HOOK_MAIL] = SH_REJECT;
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 550, "%s", R);
	cr_assert(has("550 5.7.1 "), "%s", R);
	F[1].v[SH_HOOK_MAIL] = SH_TEMPFAIL;
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 451, "%s", R);
	cr_assert(has("451 4.7.1 "), "%s", R);
	F[1].v[SH_HOOK_MAIL] = SH_CONTINUE;
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 250, "%s", R);

	F[2].v[SH_HOOK_RCPT] = SH_REJECT;
	cr_assert_eq(send_cmd("RCPT TO:<r@example.com>"), 550, "%s", R);
	cr_assert(has("550 5.7.1 "), "%s", R);
	F[2].v[SH_HOOK_RCPT] = SH_TEMPFAIL;
	cr_assert_eq(send_cmd("RCPT TO:<r@example.com>"), 451, "%s", R);
	cr_assert(has("451 4.7.1 "), "%s", R);
	F[2].v[SH_HOOK_RCPT] = SH_CONTINUE;
	cr_assert_eq(send_cmd("RCPT TO:<r@example.com>"), 250, "%s", R);

	F[0].v[SH_HOOK_DATA] = SH_REJECT;
	cr_assert_eq(send_cmd("DATA"), 554, "%s", R);
	cr_assert(has("554 5.7.1 "), "%s", R);
	/* refused MAIL x2 and the refused DATA each ended a transaction */
	cr_assert_eq(F[0].resets, 3, "a refused DATA ends the transaction");
	F[0].v[SH_HOOK_DATA] = SH_CONTINUE;

	envelope();
	F[1].v[SH_HOOK_EOM] = SH_REJECT;
	cr_assert_eq(message("\r\nbody\r\n"), 550, "%s", R);
	cr_assert(has("550 5.7.1 "), "%s", R);
	envelope();
	F[1].v[SH_HOOK_EOM] = SH_TEMPFAIL;
	cr_assert_eq(message("\r\nbody\r\n"), 451, "%s", R);
	cr_assert(has("451 4.7.1 "), "%s", R);
	F[1].v[SH_HOOK_EOM] = SH_CONTINUE;
	cr_assert_eq(F[0].resets, 5);

	cr_assert_eq(send_cmd("VRFY someone"), 252, "%s", R);
	cr_assert(has("252 2.5.0 "), "%s", R);
	cr_assert_eq(send_cmd("EXPN list"), 502, "%s", R);
	F[0].v[SH_HOOK_VRFY] = SH_REJECT;
	cr_assert_eq(send_cmd("VRFY someone"), 550, "%s", R);
	cr_assert(has("550 5.1.1 "), "%s", R);
	F[0].v[SH_HOOK_VRFY] = SH_ACCEPT;
	cr_assert_eq(send_cmd("VRFY someone"), 250, "%s", R);
	cr_assert(has("250 2.1.5 "), "%s", R);
}

Test(chain, connect_reject_waits_for_quit_and_disconnect_runs)
{
	F[1].v[SH_HOOK_CONNECT] = SH_REJECT;
	cr_assert_eq(client_connect(), 554, "%s", R);
	cr_assert(has("554 5.7.1 test.example "), "%s", R);
	/* RFC 5321 §3.1: only QUIT from now on. */
	cr_assert_eq(send_cmd("EHLO c.example"), 503, "%s", R);
	cr_assert_eq(F[0].calls[SH_HOOK_HELO], 0);
	cr_assert_eq(send_cmd("QUIT"), 221, "%s", R);
	cr_assert(wait_eof(), "the server closes after QUIT");
	cr_assert_eq(F[2].calls[SH_HOOK_CONNECT], 0);
	client_close();
	cr_assert_eq(srv.nsessions, 0);
	for (int i = 0; i < NFAKE; i++)
		cr_assert_eq(F[i].disconnects, 1, "plugin %d", i);
}

Test(chain, connect_tempfail_is_421)
{
	F[0].v[SH_HOOK_CONNECT] = SH_TEMPFAIL;
	cr_assert_eq(client_connect(), 421, "%s", R);
	cr_assert(has("421 4.3.2 "), "%s", R);
	cr_assert(wait_eof());
}

Test(chain, disconnect_at_rcpt_closes_at_once)
{
	hello();
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 250);
	F[1].v[SH_HOOK_RCPT] = SH_DISCONNECT;
	send_raw("RCPT TO:<r@example.com>\r\nNOOP\r\n");
	cr_assert_eq(read_reply(R, sizeof(R)), 421, "%s", R);
	cr_assert(has("421 4.7.0 "), "%s", R);
	cr_assert(wait_eof(), "nothing after the 421");
	cr_assert_eq(rlen, 0, "no reply to the pipelined NOOP");
	client_close();
	cr_assert_str_eq(evlog, "R0 R1 R2 D0 D1 D2 ");
}

/* ================================================================== */
/* custom replies                                                     */
/* ================================================================== */

/* rcpt_reply - script plugin 0's RCPT and send one RCPT */
static int
rcpt_reply(sh_verdict v, int code, const char *enh, const char *text)
{
	F[0].v[SH_HOOK_RCPT] = v;
	F[0].code[SH_HOOK_RCPT] = code;
	F[0].enh[SH_HOOK_RCPT] = enh;
	F[0].text[SH_HOOK_RCPT] = text;
	return send_cmd("RCPT TO:<r@example.com>");
}

Test(chain, custom_replies)
{
	hello();
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 250);

	cr_assert_eq(rcpt_reply(SH_REJECT, 553, "5.1.2", "No such user\nhere"), 553);
	cr_assert_str_eq(R, "553-5.1.2 No such user\r\n553 5.1.2 here\r\n");

	cr_assert_eq(rcpt_reply(SH_TEMPFAIL, 452, "4.2.2", "Mailbox full"), 452);
	cr_assert_str_eq(R, "452 4.2.2 Mailbox full\r\n");

	/* No enhanced code: the default's, in the code's class. */
	cr_assert_eq(rcpt_reply(SH_REJECT, 554, NULL, "Go away"), 554);
	cr_assert_str_eq(R, "554 5.7.1 Go away\r\n");

	/* An enhanced code of the wrong class is dropped, the code kept. */
	cr_assert_eq(rcpt_reply(SH_REJECT, 550, "4.1.1", "Odd"), 550);
	cr_assert_str_eq(R, "550 5.7.1 Odd\r\n");

	/* A malformed enhanced code is dropped too. */
	cr_assert_eq(rcpt_reply(SH_REJECT, 550, "5.1000.1", "Odd"), 550);
	cr_assert_str_eq(R, "550 5.7.1 Odd\r\n");

	/* Codes of the wrong class are ignored: the default reply. */
	cr_assert_eq(rcpt_reply(SH_REJECT, 450, "4.1.1", "Not me"), 550);
	cr_assert_str_eq(R, "550 5.7.1 Recipient rejected\r\n");
	cr_assert_eq(rcpt_reply(SH_TEMPFAIL, 550, "5.1.1", "Not me"), 451);
	cr_assert(has("451 4.7.1 Temporary failure"), "%s", R);
	cr_assert_eq(rcpt_reply(SH_REJECT, 999, NULL, "Out of range"), 550);
	cr_assert_str_eq(R, "550 5.7.1 Recipient rejected\r\n");
	cr_assert_eq(rcpt_reply(SH_REJECT, 250, NULL, "Fine?"), 550);
	cr_assert_str_eq(R, "550 5.7.1 Recipient rejected\r\n");

	/* Control characters are replaced; a trailing newline adds no line. */
	cr_assert_eq(rcpt_reply(SH_REJECT, 550, "5.7.1", "a\rb\x01" "c\n"), 550);
	cr_assert_str_eq(R, "550 5.7.1 a?b?c\r\n");

	/* Three lines. */
	cr_assert_eq(rcpt_reply(SH_REJECT, 550, "5.7.26", "one\ntwo\nthree"), 550);
	cr_assert_str_eq(R, "550-5.7.26 one\r\n550-5.7.26 two\r\n550 5.7.26 three\r\n");

	/* The session is still usable. */
	cr_assert_eq(rcpt_reply(SH_CONTINUE, 0, NULL, NULL), 250);
}

Test(chain, custom_reply_on_accept_at_eom)
{
	F[0].v[SH_HOOK_EOM] = SH_ACCEPT;
	F[0].code[SH_HOOK_EOM] = 250;
	F[0].enh[SH_HOOK_EOM] = "2.6.0";
	F[0].text[SH_HOOK_EOM] = "Stored as 42";
	hello();
	envelope();
	cr_assert_eq(message("\r\nx\r\n"), 250, "%s", R);
	cr_assert_str_eq(R, "250 2.6.0 Stored as 42\r\n");
}

Test(chain, custom_421_on_disconnect)
{
	F[0].v[SH_HOOK_MAIL] = SH_DISCONNECT;
	F[0].code[SH_HOOK_MAIL] = 421;
	F[0].enh[SH_HOOK_MAIL] = "4.7.0";
	F[0].text[SH_HOOK_MAIL] = "You are rate limited";
	hello();
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 421, "%s", R);
	cr_assert_str_eq(R, "421 4.7.0 You are rate limited\r\n");
	cr_assert(wait_eof());
}

/* ================================================================== */
/* body fan-out                                                       */
/* ================================================================== */

Test(chain, chunk_accept_skips_only_that_plugin)
{
	static const char part1[] = "Subject: fan-out\r\n\r\nfirst line\r\n";
	static const char part2[] = "second line\r\n";
	static const char part3[] = "third line\r\n";
	char want[256];

	F[0].v[SH_HOOK_CHUNK] = SH_ACCEPT;	/* "no more of this body" */
	F[2].v[SH_HOOK_EOM] = SH_ACCEPT;
	hello();
	envelope();
	cr_assert_eq(send_cmd("DATA"), 354, "%s", R);
	send_raw(part1);
	cr_assert(pump_until(&F[2].calls[SH_HOOK_CHUNK], 1));
	send_raw(part2);
	cr_assert(pump_until(&F[2].calls[SH_HOOK_CHUNK], 2));
	send_raw(part3);
	cr_assert(pump_until(&F[2].calls[SH_HOOK_CHUNK], 3));
	send_raw(".\r\n");
	cr_assert_eq(read_reply(R, sizeof(R)), 250, "%s", R);

	cr_assert_eq(F[0].calls[SH_HOOK_CHUNK], 1, "p0 got no more chunks");
	cr_assert_eq(F[1].calls[SH_HOOK_CHUNK], F[2].calls[SH_HOOK_CHUNK],
	    "p1 is not hidden anything by p0's ACCEPT");
	cr_assert_geq(F[1].calls[SH_HOOK_CHUNK], 3);
	cr_assert_eq(F[0].calls[SH_HOOK_EOM], 1, "p0 still gets eom");
	cr_assert_eq(F[1].calls[SH_HOOK_EOM], 1);
	snprintf(want, sizeof(want), "%s%s%s", part1, part2, part3);
	cr_assert_eq(F[1].body_len, strlen(want));
	cr_assert_eq(memcmp(F[1].body, want, strlen(want)), 0, "body intact");
	cr_assert_eq(memcmp(F[2].body, want, strlen(want)), 0);
	cr_assert_eq(F[0].body_len, strlen(part1));
}

Test(chain, header_accept_skips_only_that_plugin)
{
	F[0].v[SH_HOOK_HEADER] = SH_ACCEPT;
	F[2].v[SH_HOOK_EOM] = SH_ACCEPT;
	hello();
	envelope();
	cr_assert_eq(message("A: 1\r\nB: 2\r\nC: 3\r\n\r\nbody\r\n"), 250, "%s", R);
	cr_assert_eq(F[0].calls[SH_HOOK_HEADER], 1);
	cr_assert_eq(F[1].calls[SH_HOOK_HEADER], 3);
	cr_assert_str_eq(F[2].hdrs, "A=1|B=2|C=3|");
	cr_assert_eq(F[0].calls[SH_HOOK_CHUNK], 1, "header ACCEPT is not chunk ACCEPT");
}

static sh_verdict
chunk_reject_first(sh_ctx *ctx, struct fake *f)
{
	(void)f;
	return sh_reject(ctx, 554, "5.6.0", "Bad body");
}

Test(chain, chunk_reject_drains_then_replies)
{
	F[0].fn[SH_HOOK_CHUNK] = chunk_reject_first;
	F[2].v[SH_HOOK_EOM] = SH_ACCEPT;
	hello();
	envelope();
	cr_assert_eq(send_cmd("DATA"), 354, "%s", R);
	send_raw("Subject: x\r\n\r\nfirst\r\n");
	cr_assert(pump_until(&F[0].calls[SH_HOOK_CHUNK], 1));
	pump_for(0.05);
	cr_assert(nothing_received(), "no reply in the middle of the body");
	send_raw("more body that is thrown away\r\n");
	pump_for(0.05);
	cr_assert(nothing_received(), "still none");
	send_raw("and more\r\n.\r\n");
	cr_assert_eq(read_reply(R, sizeof(R)), 554, "%s", R);
	cr_assert_str_eq(R, "554 5.6.0 Bad body\r\n");

	cr_assert_eq(F[0].calls[SH_HOOK_CHUNK], 1);
	cr_assert_eq(F[1].calls[SH_HOOK_CHUNK], 0, "the walk stopped at p0");
	cr_assert_eq(F[2].calls[SH_HOOK_CHUNK], 0);
	for (int i = 0; i < NFAKE; i++) {
		cr_assert_eq(F[i].calls[SH_HOOK_EOM], 0, "no eom after a reject");
		cr_assert_eq(F[i].resets, 1);
	}
	/* The drained text was not taken as commands. */
	cr_assert_eq(send_cmd("NOOP"), 250, "%s", R);
	cr_assert_eq(srv.session_list->errors, 0);
}

Test(chain, chunk_tempfail_default_reply)
{
	F[1].v[SH_HOOK_CHUNK] = SH_TEMPFAIL;
	hello();
	envelope();
	cr_assert_eq(message("\r\nbody\r\n"), 451, "%s", R);
	cr_assert(has("451 4.7.1 "), "%s", R);
	cr_assert_eq(F[2].calls[SH_HOOK_CHUNK], 0);
}

/* ================================================================== */
/* reset and disconnect notifications                                 */
/* ================================================================== */

Test(chain, reset_on_rset_and_reject_not_after_accept)
{
	hello();
	envelope();
	cr_assert_eq(send_cmd("RSET"), 250);
	cr_assert_str_eq(evlog, "R0 R1 R2 ");

	envelope();
	F[1].v[SH_HOOK_EOM] = SH_REJECT;
	cr_assert_eq(message("\r\nx\r\n"), 550);
	cr_assert_str_eq(evlog, "R0 R1 R2 R0 R1 R2 ");

	envelope();
	F[1].v[SH_HOOK_EOM] = SH_ACCEPT;
	cr_assert_eq(message("\r\nx\r\n"), 250);
	cr_assert_str_eq(evlog, "R0 R1 R2 R0 R1 R2 ", "no reset after 250");

	/* RSET outside a transaction resets nothing. */
	cr_assert_eq(send_cmd("RSET"), 250);
	/* A rejected MAIL ends its transaction: reset. */
	F[2].v[SH_HOOK_MAIL] = SH_REJECT;
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 550);
	cr_assert_eq(F[0].resets, 3);
	/* A new EHLO in a transaction resets it. */
	F[2].v[SH_HOOK_MAIL] = SH_CONTINUE;
	envelope();
	cr_assert_eq(send_cmd("EHLO again.example"), 250);
	cr_assert_eq(F[2].resets, 4);
}

Test(chain, disconnect_reaches_every_plugin)
{
	F[0].v[SH_HOOK_RCPT] = SH_REJECT;
	hello();
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 250);
	cr_assert_eq(send_cmd("RCPT TO:<r@example.com>"), 550);
	client_close();
	cr_assert_eq(srv.nsessions, 0);
	cr_assert_str_eq(evlog, "R0 R1 R2 D0 D1 D2 ",
	    "mid-transaction: reset then disconnect, in chain order");
}

Test(chain, quit_runs_disconnect_once)
{
	hello();
	cr_assert_eq(send_cmd("QUIT"), 221, "%s", R);
	cr_assert(wait_eof());
	client_close();
	cr_assert_str_eq(evlog, "D0 D1 D2 ");
}

/* ================================================================== */
/* PENDING                                                            */
/* ================================================================== */

Test(chain, pending_resumed_from_the_loop)
{
	double t0;

	F[0].mode[SH_HOOK_RCPT] = M_PEND_TIMER;
	F[0].delay = 0.1;
	F[0].resume_v = SH_REJECT;
	F[0].resume_code = 550;
	F[0].resume_enh = "5.1.1";
	F[0].resume_text = "Later: no";
	hello();
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 250);
	t0 = now();
	/* Pipelined: NOOP must wait for the RCPT verdict. */
	send_raw("RCPT TO:<r@example.com>\r\nNOOP\r\n");
	cr_assert_eq(read_reply(R, sizeof(R)), 550, "%s", R);
	cr_assert_geq(now() - t0, 0.09, "answered only after the resume");
	cr_assert_str_eq(R, "550 5.1.1 Later: no\r\n");
	cr_assert_eq(read_reply(R, sizeof(R)), 250, "NOOP after: %s", R);
	cr_assert_eq(F[0].resume_rc[0], 0, "first resume taken");
	cr_assert_eq(F[0].resume_rc[1], -1, "second resume refused");
	cr_assert_eq(F[1].calls[SH_HOOK_RCPT], 0);
	cr_assert_eq(F[0].cancels, 0);

	/* A resumed CONTINUE walks on to the next plugin. */
	F[0].resume_v = SH_CONTINUE;
	F[0].resume_code = 0;
	F[1].v[SH_HOOK_RCPT] = SH_ACCEPT;
	cr_assert_eq(send_cmd("RCPT TO:<r@example.com>"), 250, "%s", R);
	cr_assert_eq(F[1].calls[SH_HOOK_RCPT], 1);
	cr_assert_eq(F[2].calls[SH_HOOK_RCPT], 0);
	cr_assert_eq(F[0].resume_rc[0], 0);
}

Test(chain, pending_in_body_and_eom)
{
	static const char body[] = "Subject: p\r\n\r\nline\r\n";

	F[1].mode[SH_HOOK_HEADER] = M_PEND_TIMER;
	F[1].mode[SH_HOOK_CHUNK] = M_PEND_TIMER;
	F[1].mode[SH_HOOK_EOM] = M_PEND_TIMER;
	F[1].delay = 0.02;
	F[1].resume_v = SH_CONTINUE;
	F[2].v[SH_HOOK_EOM] = SH_ACCEPT;
	hello();
	envelope();
	cr_assert_eq(message(body), 250, "%s", R);
	cr_assert_eq(F[2].calls[SH_HOOK_HEADER], 1, "header walk went on");
	cr_assert_eq(F[2].body_len, strlen(body));
	cr_assert_eq(memcmp(F[2].body, body, strlen(body)), 0);
	cr_assert_eq(F[2].calls[SH_HOOK_EOM], 1);

	/* eom resumed with ACCEPT decides. */
	F[1].resume_v = SH_ACCEPT;
	envelope();
	cr_assert_eq(message(body), 250, "%s", R);
	cr_assert_eq(F[2].calls[SH_HOOK_EOM], 1, "p1's resumed ACCEPT decided");
}

Test(chain, resume_before_return)
{
	F[0].mode[SH_HOOK_MAIL] = M_PEND_NOW;
	F[0].resume_v = SH_ACCEPT;
	hello();
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 250, "%s", R);
	cr_assert_eq(F[0].resume_rc[0], 0);
	cr_assert_eq(F[0].resume_rc[1], -1);
	cr_assert_eq(F[1].calls[SH_HOOK_MAIL], 0);

	F[0].mode[SH_HOOK_RCPT] = M_PEND_NOW;
	F[0].resume_v = SH_REJECT;
	F[0].resume_code = 550;
	F[0].resume_enh = "5.7.1";
	F[0].resume_text = "Nope";
	cr_assert_eq(send_cmd("RCPT TO:<r@example.com>"), 550, "%s", R);
	cr_assert_str_eq(R, "550 5.7.1 Nope\r\n");
	/* The token went stale with the verdict. */
	cr_assert_eq(sh_resume(F[0].tok, SH_ACCEPT, 0, NULL, NULL), -1);
}

Test(chain, resume_after_session_gone)
{
	F[0].mode[SH_HOOK_RCPT] = M_PEND_FOREVER;
	hello();
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 250);
	send_raw("RCPT TO:<r@example.com>\r\n");
	cr_assert(pump_until(&F[0].calls[SH_HOOK_RCPT], 1));
	pump_for(0.05);
	cr_assert(nothing_received(), "no answer while pending");
	cr_assert(F[0].have_tok);
	client_close();
	cr_assert_eq(srv.nsessions, 0);
	cr_assert_eq(F[0].cancels, 1, "the plugin is told");
	cr_assert_eq(sh_resume(F[0].tok, SH_ACCEPT, 250, NULL, "late"), -1);
	cr_assert_eq(F[1].calls[SH_HOOK_RCPT], 0);
	cr_assert_str_eq(evlog, "X0 R0 R1 R2 D0 D1 D2 ");
}

Test(chain, pending_without_pend_is_tempfail)
{
	F[0].mode[SH_HOOK_RCPT] = M_PEND_NO_PEND;
	hello();
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 250);
	cr_assert_eq(send_cmd("RCPT TO:<r@example.com>"), 451, "%s", R);
	cr_assert(has("451 4.7.1 "), "%s", R);
	cr_assert_eq(F[1].calls[SH_HOOK_RCPT], 0);
}

Test(chain, pending_timeout_tempfail)
{
	double t0;

	plugins[0].timeout = 0.2;
	F[0].mode[SH_HOOK_RCPT] = M_PEND_FOREVER;
	hello();
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 250);
	t0 = now();
	cr_assert_eq(send_cmd("RCPT TO:<r@example.com>"), 451, "%s", R);
	cr_assert_geq(now() - t0, 0.18);
	cr_assert(has("451 4.4.3 "), "%s", R);
	cr_assert_eq(F[0].cancels, 1, "cancel callback ran");
	cr_assert_eq(sh_resume(F[0].tok, SH_ACCEPT, 0, NULL, NULL), -1,
	    "a late resume is ignored");
	cr_assert_eq(F[1].calls[SH_HOOK_RCPT], 0);
	cr_assert_eq(send_cmd("NOOP"), 250, "%s", R);
}

Test(chain, pending_timeout_continue_and_reject)
{
	plugins[0].timeout = 0.1;
	plugins[0].on_timeout = SH_CONTINUE;
	F[0].mode[SH_HOOK_RCPT] = M_PEND_FOREVER;
	hello();
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 250);
	cr_assert_eq(send_cmd("RCPT TO:<r@example.com>"), 250, "%s", R);
	cr_assert_eq(F[1].calls[SH_HOOK_RCPT], 1, "walk went on after timeout");
	plugins[0].on_timeout = SH_REJECT;
	cr_assert_eq(send_cmd("RCPT TO:<r@example.com>"), 550, "%s", R);
	cr_assert(has("550 5.7.1 "), "%s", R);
	cr_assert_eq(F[0].cancels, 2);
}

Test(chain, pending_via_pool)
{
	F[1].mode[SH_HOOK_RCPT] = M_PEND_POOL;
	F[1].resume_v = SH_REJECT;
	F[1].resume_code = 550;
	F[1].resume_enh = "5.1.1";
	F[1].resume_text = "Unknown user (checked in a thread)";
	hello();
	cr_assert_eq(send_cmd("MAIL FROM:<a@example.org>"), 250);
	cr_assert_eq(send_cmd("RCPT TO:<r@example.com>"), 550, "%s", R);
	cr_assert_str_eq(R, "550 5.1.1 Unknown user (checked in a thread)\r\n");
	cr_assert_eq(F[1].worked, 1);
	cr_assert_eq(F[1].resume_rc[0], 0);
	cr_assert_eq(F[1].resume_rc[1], -1);
}

/* ================================================================== */
/* headers and the trace block                                        */
/* ================================================================== */

static sh_verdict
rcpt_try_add_header(sh_ctx *ctx, struct fake *f)
{
	f->n1 = sh_add_header(ctx, "X-Too-Early", "1");
	return SH_CONTINUE;
}

static sh_verdict
data_add_header(sh_ctx *ctx, struct fake *f)
{
	f->n2 = sh_add_header(ctx, "X-Data", "from data");
	return SH_CONTINUE;
}

static sh_verdict
eom_p0_headers(sh_ctx *ctx, struct fake *f)
{
	const char *name, *value;
	size_t i, n = 0;

	for (i = 0; sh_tx_header(ctx, i, &name, &value) == 0; i++)
		n += (size_t)snprintf(f->s1 + n, sizeof(f->s1) - n, "%s=%s|",
		    name, value);
	f->n1 = (int)i;
	f->n2 = sh_add_header(ctx, "X-Eom", "p0 was here");
	/* refused: a ':' in the name, CR/LF in the value, empty name */
	f->n2 += 10 * (sh_add_header(ctx, "Bad:Name", "v") == -1);
	f->n2 += 100 * (sh_add_header(ctx, "X-Fold", "a\r\n\tb") == -1);
	f->n2 += 1000 * (sh_add_header(ctx, "", "v") == -1);
	return SH_CONTINUE;
}

static sh_verdict
eom_p1_trace(sh_ctx *ctx, struct fake *f)
{
	const char *t;
	size_t n = sh_tx_trace(ctx, &t);

	f->n1 = n == strlen(t);
	snprintf(f->s1, sizeof(f->s1), "%s", t);
	return SH_ACCEPT;
}

#define RECEIVED_START "Received: from client.example (192.0.2.1 " \
	"[192.0.2.1])\r\n\tby test.example (smtphook) with ESMTP id "

Test(chain, headers_unfolded_and_trace)
{
	F[0].fn[SH_HOOK_RCPT] = rcpt_try_add_header;
	F[0].fn[SH_HOOK_DATA] = data_add_header;
	F[0].fn[SH_HOOK_EOM] = eom_p0_headers;
	F[1].fn[SH_HOOK_EOM] = eom_p1_trace;
	hello();
	envelope();
	cr_assert_eq(F[0].n1, -1, "sh_add_header outside a message is refused");
	cr_assert_eq(message("Subject: hello\r\n world\r\n\tagain\r\n"
	    "X-A:1\r\nX-Empty:\r\n\r\nbody\r\n"), 250, "%s", R);

	cr_assert_str_eq(F[2].hdrs, "Subject=hello world\tagain|X-A=1|X-Empty=|");
	cr_assert(F[2].hdr_len_ok, "name_len/value_len match the strings");
	cr_assert_eq(F[0].calls[SH_HOOK_HEADER], 3);
	cr_assert_str_eq(F[0].s1, "Subject=hello world\tagain|X-A=1|X-Empty=|");
	cr_assert_eq(F[0].n1, 3, "sh_tx_header past the end is -1");
	cr_assert_eq(F[0].n2, 1110, "good header added, bad ones refused");
	cr_assert_eq(F[0].n2 % 10, 0);

	cr_assert(F[1].n1, "trace length matches");
	cr_assert(strncmp(F[1].s1, RECEIVED_START, strlen(RECEIVED_START)) == 0,
	    "Received first: %s", F[1].s1);
	cr_assert(strstr(F[1].s1, "\r\n\tfor <r@example.com>;") != NULL, "%s", F[1].s1);
	cr_assert(strstr(F[1].s1, "X-Eom: p0 was here\r\n") != NULL, "%s", F[1].s1);
}

Test(chain, add_header_in_data_hook)
{
	F[0].fn[SH_HOOK_DATA] = data_add_header;
	F[1].fn[SH_HOOK_EOM] = eom_p1_trace;
	hello();
	envelope();
	cr_assert_eq(message("\r\nbody\r\n"), 250, "%s", R);
	cr_assert_eq(F[0].n2, 0, "sh_add_header is valid in the data hook");
	cr_assert(strncmp(F[1].s1, "Received: ", 10) == 0, "Received first: %s",
	    F[1].s1);
	cr_assert(strstr(F[1].s1, "X-Data: from data\r\n") != NULL, "%s", F[1].s1);
}

/* ================================================================== */
/* private state and session info                                     */
/* ================================================================== */

static int conn_freed, tx_freed;

static void
free_conn(void *p)
{
	note("C:%s ", (char *)p);
	conn_freed++;
	free(p);
}

static void
free_tx(void *p)
{
	note("T:%s ", (char *)p);
	tx_freed++;
	free(p);
}

static sh_verdict
connect_state(sh_ctx *ctx, struct fake *f)
{
	const sh_session_info *si = sh_session(ctx);

	snprintf(f->s1, sizeof(f->s1), "%s:%u %s helo=%s esmtp=%d hook=%s tx=%p",
	    si->peer_addr, si->peer_port, si->hostname,
	    si->helo != NULL ? si->helo : "-", si->esmtp, sh_hook_name(ctx),
	    (const void *)sh_tx(ctx));
	sh_conn_set(ctx, strdup("c1"), free_conn);
	return SH_CONTINUE;
}

static sh_verdict
helo_state(sh_ctx *ctx, struct fake *f)
{
	(void)f;
	/* Replacing the value destroys the old one. */
	sh_conn_set(ctx, strdup("c2"), free_conn);
	/* No transaction: the value is destroyed at once, not leaked. */
	sh_tx_set(ctx, strdup("orphan"), free_tx);
	return SH_CONTINUE;
}

static sh_verdict
mail_state(sh_ctx *ctx, struct fake *f)
{
	const sh_session_info *si = sh_session(ctx);
	const sh_tx_info *tx = sh_tx(ctx);

	snprintf(f->s2, sizeof(f->s2), "helo=%s esmtp=%d sender=%s tx#=%u",
	    si->helo, si->esmtp, tx != NULL ? tx->sender->address : "-",
	    si->transactions);
	sh_tx_set(ctx, strdup("t"), free_tx);
	return SH_CONTINUE;
}

static sh_verdict
rcpt_state(sh_ctx *ctx, struct fake *f)
{
	const char *c = sh_conn_get(ctx), *t = sh_tx_get(ctx);

	f->n1 = c != NULL && strcmp(c, "c2") == 0 && t != NULL && strcmp(t, "t") == 0;
	return SH_CONTINUE;
}

Test(chain, private_state_destructors)
{
	conn_freed = tx_freed = 0;
	F[0].fn[SH_HOOK_CONNECT] = connect_state;
	F[0].fn[SH_HOOK_HELO] = helo_state;
	F[0].fn[SH_HOOK_MAIL] = mail_state;
	F[0].fn[SH_HOOK_RCPT] = rcpt_state;
	F[2].v[SH_HOOK_EOM] = SH_ACCEPT;
	hello();
	cr_assert_str_eq(F[0].s1, "192.0.2.1:40001 test.example helo=- esmtp=0 "
	    "hook=connect tx=(nil)");
	cr_assert_str_eq(evlog, "C:c1 T:orphan ");
	envelope();
	cr_assert_str_eq(F[0].s2, "helo=client.example esmtp=1 "
	    "sender=a@example.org tx#=1");
	cr_assert_eq(F[0].n1, 1, "conn and tx state visible in rcpt");
	cr_assert_eq(message("\r\nx\r\n"), 250, "%s", R);
	cr_assert_eq(tx_freed, 2, "tx state destroyed at the end of the accepted tx");
	cr_assert_eq(conn_freed, 1);

	envelope();
	cr_assert_eq(send_cmd("RSET"), 250);
	cr_assert_eq(tx_freed, 3);
	cr_assert_str_eq(evlog, "C:c1 T:orphan T:t R0 R1 R2 T:t ",
	    "reset runs before the tx destructor");

	client_close();
	cr_assert_eq(conn_freed, 2, "conn state destroyed at disconnect");
	cr_assert_str_eq(evlog, "C:c1 T:orphan T:t R0 R1 R2 T:t D0 D1 D2 C:c2 ",
	    "conn destructor after the disconnect hooks");
}

Test(chain, old_abi_hooks_beyond_struct_size_absent)
{
	plugins[1].desc = &old_desc;
	F[2].v[SH_HOOK_EOM] = SH_CONTINUE;
	F[1].v[SH_HOOK_EOM] = SH_ACCEPT;	/* would accept, if it were called */
	hello();
	envelope();
	cr_assert_eq(F[1].calls[SH_HOOK_RCPT], 1, "hooks inside struct_size run");
	cr_assert_eq(message("\r\nx\r\n"), 451, "%s", R);
	cr_assert_eq(F[1].calls[SH_HOOK_EOM], 0);
	cr_assert_eq(F[1].resets, 0);
	client_close();
	cr_assert_eq(F[1].disconnects, 0);
	cr_assert_eq(F[0].disconnects, 1);
}

Test(chain, chunk_disconnect_acts_mid_body)
{
	F[1].v[SH_HOOK_CHUNK] = SH_DISCONNECT;
	hello();
	envelope();
	cr_assert_eq(send_cmd("DATA"), 354, "%s", R);
	send_raw("Subject: x\r\n\r\nthe body has no end yet\r\n");
	cr_assert_eq(read_reply(R, sizeof(R)), 421, "at once, not after the end: %s", R);
	cr_assert(has("421 4.7.0 test.example "), "%s", R);
	cr_assert(wait_eof());
	cr_assert_eq(F[2].calls[SH_HOOK_CHUNK], 0);
	client_close();
	cr_assert_str_eq(evlog, "R0 R1 R2 D0 D1 D2 ");
}

Test(chain, client_gone_while_eom_pending)
{
	F[0].mode[SH_HOOK_EOM] = M_PEND_FOREVER;
	hello();
	envelope();
	cr_assert_eq(send_cmd("DATA"), 354, "%s", R);
	send_raw("\r\nbody\r\n.\r\n");
	cr_assert(pump_until(&F[0].calls[SH_HOOK_EOM], 1));
	pump_for(0.05);
	cr_assert(nothing_received());
	client_close();
	cr_assert_eq(srv.nsessions, 0);
	cr_assert_eq(F[0].cancels, 1);
	cr_assert_eq(F[1].calls[SH_HOOK_EOM], 0);
	cr_assert_eq(sh_resume(F[0].tok, SH_ACCEPT, 0, NULL, NULL), -1);
	cr_assert_str_eq(evlog, "X0 R0 R1 R2 D0 D1 D2 ", "never accepted: reset");
	cr_assert_eq(srv.stats.messages, 0);
}

static sh_verdict
helo_pend_forever(sh_ctx *ctx, struct fake *f)
{
	f->tok = sh_pend(ctx, on_cancel, f);
	return SH_PENDING;
}

Test(chain, client_gone_while_helo_pending)
{
	/* The walk's own arguments (HELO name) are freed with the session. */
	F[0].fn[SH_HOOK_HELO] = helo_pend_forever;
	cr_assert_eq(client_connect(), 220);
	send_raw("EHLO client.example\r\n");
	cr_assert(pump_until(&F[0].calls[SH_HOOK_HELO], 1));
	client_close();
	cr_assert_eq(F[0].cancels, 1);
	cr_assert_eq(srv.nsessions, 0);
}
