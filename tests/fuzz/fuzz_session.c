/*
 * fuzz_session.c - stateful libFuzzer target: whole SMTP sessions through
 * the real state machine, chain and host API (sdk/harness, the real core
 * on a socketpair; no network, no sleeping)
 *
 * Input layout:
 *	O Q R STREAM...
 * O (options):	bit 0 --bare-lf=normalize, 1 --no-pipelining,
 *		2 --max-size=300, 3 --auth=PLAIN,LOGIN (else PLAIN; always
 *		--auth-insecure), 4 --max-errors=3, 5 --max-recipients=3,
 *		6 time passes: held-back AUTH replies and pending-verdict
 *		timeouts are made to fire whenever the server is idle,
 *		7 no storing plugin (nobody accepts a message).
 * Q (pieces):	low nibble n: STREAM goes to the server in pieces of
 *		1..2^n octets (n = 15: all at once), sizes drawn from a PRNG
 *		seeded by the high nibble; bit 4 also makes the PRNG pick
 *		sizes 1-3 half of the time (at most PIECES_MAX pieces, the
 *		rest goes at once); bit 5: after each piece the server is
 *		pumped until idle (else it gets one loop turn, cheaper).
 *		Bit 6: differential - the stream is also sent all at once to a
 *		fresh server, and the two transcripts must be the same (see
 *		LLVMFuzzerTestOneInput for what is left out).
 * R (misc):	bits 0-1 on_timeout= of the pending plugin (tempfail,
 *		continue, reject, tempfail); bit 2 an IPv6 peer; bit 3 debug
 *		logging, bit 4 JSON logs (both formatted, written to
 *		/dev/null); bits 5-6 the connect verdict: go on, REJECT (554
 *		greeting, then only QUIT), TEMPFAIL (421), PENDING resumed
 *		on the next loop turn.
 * STREAM is what the client sends, except that FF FE C B stands for
 * (C + 1) * 512 octets B (so that small inputs reach a full 64 KiB input
 * buffer, chunks larger than it, long lines; at most STREAM_MAX in all).
 * After every piece the server runs one loop turn or until idle (Q bit
 * 5); when the socket is full the loop is pumped until idle, and a server
 * that then still does not read ends the input early.  Then the client
 * closes, and the harness is freed (sessions left are force-closed,
 * plugins finalised): a fresh server per input, so that nothing carries
 * over from one input to the next.
 *
 * Plugins, all linked in:
 *   fzpol  verdicts chosen by the names the client uses: HELO names
 *	    "reject.", "temp.", "bye."; local parts (MAIL, RCPT), VRFY/EXPN
 *	    arguments and AUTH users "rej", "tmp", "bye", "acc", "odd"
 *	    (a reply of the wrong class), "ml" (multi-line reply with a
 *	    control character), "inv" (an invalid verdict), "badcode",
 *	    "badenh", "noenh", "notext" (malformed or partial replies);
 *	    senders "datano", "datatmp", "databye" at DATA and "eomrej",
 *	    "eomtmp", "eombye" at the end; headers X-Reject, X-Temp, X-Bye,
 *	    X-Enough, X-Inv; body words REJECTME, TEMPME, BYEBYE, ENOUGH,
 *	    and PNOW, PLATE, PNEVER (a PENDING verdict that comes to what the
 *	    next deciding word in the same piece says); AUTH user/pass is
 *	    good.  It keeps plugin, connection and transaction state, reads
 *	    the header store, logs client text and adds a header at the end.
 *   fzpend PENDING verdicts: names "pnow" (resumed before returning),
 *	    "plate" (resumed on the next loop turn from its own timer),
 *	    "pnever" (never: the timeout, see O bit 6), "pbad" (PENDING
 *	    without sh_pend), "pstale" (sh_pend, then a plain verdict),
 *	    "ptwice" (resumed twice), "pinv" (resumed with PENDING); a
 *	    following 'r' or 't' makes the verdict REJECT or TEMPFAIL;
 *	    header values likewise; the connect verdict (R).
 *   fzsink accepts every message (sink semantics), unless O bit 7.
 *
 * Checked on every reply: a 2xx-5xx code, every line "CODE-" but the last
 * "CODE ", printable ASCII, CRLF line ends, and nothing after a 221 or
 * 421 (the server closes then), the greeting the connect verdict asks
 * for.  LeakSanitizer checks that every session, transaction and pending
 * verdict is released; the plugins' own state is malloc'd for that (a
 * never-resumed verdict's argument is freed by its cancel callback only).
 * FUZZ_SESSION_TRACE=1 in the environment prints every reply (to see
 * what a corpus file does: replay_session FILE); =2 also the server's
 * debug log.
 *
 *	cmake --preset fuzz && cmake --build --preset fuzz -j2
 *	build-fuzz/fuzz/fuzz_session -dict=tests/fuzz/fuzz_session.dict \
 *	    tests/fuzz/corpus/fuzz_session
 */
#include <ev.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "sh_harness.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)
#define PIECES_MAX 64		/* keeps an input's cost bounded */
#define STREAM_MAX (256 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int LLVMFuzzerInitialize(int *, char ***);

static int
pfx(const char *s, const char *p)
{
	return s != NULL && strncmp(s, p, strlen(p)) == 0;
}

/* A verdict with its reply (code 0: the host's default). */
struct answer {
	sh_verdict v;
	int code;
	const char *enh, *text;
};

static sh_verdict pend_answer(sh_ctx *, char, struct answer);

/*
 * Body triggers are found by a scanner that sees the body as one stream
 * (the last octets of earlier pieces, then this piece) and reports the
 * trigger that ends first, so that the verdict does not depend on how the
 * body was cut into pieces (the differential check below relies on it).
 */
#define SCAN_TAIL 15

struct scan {
	unsigned char tail[SCAN_TAIL];
	size_t taillen;
};

/* scan_ends - for each word, where (in this piece) its first occurrence
 * ending in this piece ends, or SIZE_MAX; then remember the piece's last
 * octets */
static void
scan_ends(struct scan *sc, const unsigned char *d, size_t len,
    const char *const *words, size_t nwords, size_t *ends)
{
	size_t w, i, k;

	for (w = 0; w < nwords; w++) {
		const char *word = words[w];
		size_t wl = strlen(word), end = SIZE_MAX;
		const unsigned char *m;

		/* Straddling the previous pieces and this one. */
		for (i = sc->taillen >= wl ? sc->taillen - wl + 1 : 0;
		    i < sc->taillen; i++) {
			for (k = 0; k < wl; k++) {
				size_t at = i + k;
				unsigned char c;

				if (at < sc->taillen)
					c = sc->tail[at];
				else if (at - sc->taillen < len)
					c = d[at - sc->taillen];
				else
					break;		/* beyond this piece */
				if (c != (unsigned char)word[k])
					break;
			}
			if (k == wl) {
				end = i + wl - sc->taillen;
				break;
			}
		}
		if (end == SIZE_MAX && (m = memmem(d, len, word, wl)) != NULL)
			end = (size_t)(m - d) + wl;
		ends[w] = end;
	}
	if (len >= SCAN_TAIL) {
		memcpy(sc->tail, d + len - SCAN_TAIL, SCAN_TAIL);
		sc->taillen = SCAN_TAIL;
	} else {
		size_t keep = sc->taillen + len > SCAN_TAIL ?
		    SCAN_TAIL - len : sc->taillen;

		memmove(sc->tail, sc->tail + sc->taillen - keep, keep);
		memcpy(sc->tail + keep, d, len);
		sc->taillen = keep + len;
	}
}

/* tx_scan - this plugin's scanner for the current transaction */
static struct scan *
tx_scan(sh_ctx *ctx)
{
	struct scan *sc = sh_tx_get(ctx);

	if (sc == NULL && (sc = calloc(1, sizeof(*sc))) != NULL)
		sh_tx_set(ctx, sc, free);
	CHECK(sc != NULL);
	return sc;
}

/* Differential mode (Q bit 6): header triggers off, see the driver. */
static int diff_mode;

/* ---- fzpol: verdicts by name ---- */

/* by_name - the verdict (and reply) a name asks for */
static sh_verdict
by_name(sh_ctx *ctx, const char *s)
{
	if (pfx(s, "rej"))
		return sh_reject(ctx, 550, "5.1.1", "No such user here");
	if (pfx(s, "tmp"))
		return sh_tempfail(ctx, 450, "4.2.0", "Try again later");
	if (pfx(s, "bye"))
		return SH_DISCONNECT;
	if (pfx(s, "acc")) {
		sh_reply(ctx, 250, "2.1.0", "Fine by me");
		return SH_ACCEPT;
	}
	if (pfx(s, "odd")) {
		sh_reply(ctx, 299, "2.9.9", "wrong class\nfor a reject");
		return SH_REJECT;
	}
	if (pfx(s, "ml"))
		return sh_reject(ctx, 554, "5.7.1", "line one\nline\ttwo\x01\n");
	if (pfx(s, "inv"))
		return (sh_verdict)9;
	if (pfx(s, "badcode"))
		return sh_reject(ctx, 700, "5.0.0", "no such code");
	if (pfx(s, "badenh"))
		return sh_reject(ctx, 551, "4.1.1234", "wrong class");
	if (pfx(s, "noenh"))
		return sh_tempfail(ctx, 452, NULL, "no enhanced code");
	if (pfx(s, "notext"))
		return sh_reject(ctx, 553, "5.1.3", "%s", "");
	return SH_CONTINUE;
}

/* The connect verdict of the current input (R bits 5-6). */
static int connect_verdict;

/* plugin-wide state, so that LeakSanitizer sees init without fini */
static int
pol_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	char *state = strdup("fzpol");

	(void)args, (void)nargs;
	if (state == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	sh_plugin_set(ctx, state);
	return 0;
}

static void
pol_fini(sh_ctx *ctx)
{
	free(sh_plugin_get(ctx));
}

static sh_verdict
pol_connect(sh_ctx *ctx)
{
	const sh_session_info *si = sh_session(ctx);
	char *c = strdup("conn");

	CHECK(si != NULL && si->helo == NULL && si->peer_addr != NULL);
	CHECK(strcmp(sh_plugin_get(ctx), "fzpol") == 0);
	if (c != NULL)
		sh_conn_set(ctx, c, free);
	switch (connect_verdict) {
	case 1:
		return sh_reject(ctx, 554, "5.7.1", "Not from there");
	case 2:
		return SH_TEMPFAIL;
	default:
		return SH_CONTINUE;
	}
}

static sh_verdict
pol_helo(sh_ctx *ctx, const char *name, int extended)
{
	(void)extended;
	CHECK(sh_conn_get(ctx) == NULL || strcmp(sh_conn_get(ctx), "conn") == 0);
	/* Client text through the plugin log: escaped by the host. */
	sh_log(ctx, SH_LOG_INFO, "helo %s (%s)", name, sh_hook_name(ctx));
	if (pfx(name, "reject."))
		return sh_reject(ctx, 550, "5.7.1", "Not you");
	if (pfx(name, "temp."))
		return sh_tempfail(ctx, 421, "4.7.0", "Go away for now");
	if (pfx(name, "bye."))
		return SH_DISCONNECT;
	return SH_CONTINUE;
}

static sh_verdict
pol_auth(sh_ctx *ctx, const char *mech, const char *user, const char *pass)
{
	CHECK(mech != NULL && user != NULL && pass != NULL && user[0] != '\0');
	if (strcmp(user, "user") == 0 && strcmp(pass, "pass") == 0)
		return SH_ACCEPT;
	return by_name(ctx, user);
}

static sh_verdict
pol_mail(sh_ctx *ctx, const sh_address *a)
{
	const sh_tx_info *tx = sh_tx(ctx);
	int present;

	CHECK(a != NULL && a->address != NULL && a->local != NULL &&
	    a->domain != NULL);
	CHECK(tx != NULL && tx->sender == a && tx->nrcpts == 0);
	CHECK(sh_tx_get(ctx) == NULL);
	(void)sh_param_get(a, "size", &present);
	(void)tx_scan(ctx);
	return by_name(ctx, a->local);
}

static sh_verdict
pol_rcpt(sh_ctx *ctx, const sh_address *a)
{
	const sh_tx_info *tx = sh_tx(ctx);
	size_t i;

	CHECK(a != NULL && a->address != NULL && a->address[0] != '\0');
	CHECK(tx != NULL && tx->sender != NULL);
	for (i = 0; i < tx->nrcpts; i++)
		CHECK(tx->rcpts[i] != NULL && tx->rcpts[i]->address != NULL);
	for (i = 0; i < a->nparams; i++)
		CHECK(a->params[i].key != NULL);
	/* Not allowed here: logged and ignored. */
	(void)sh_add_header(ctx, "X-Too-Early", "yes");
	return by_name(ctx, a->local);
}

static const char *
sender_local(sh_ctx *ctx)
{
	const sh_tx_info *tx = sh_tx(ctx);

	CHECK(tx != NULL && tx->sender != NULL);
	return tx->sender->local;
}

static sh_verdict
pol_data(sh_ctx *ctx)
{
	const char *l = sender_local(ctx);

	CHECK(sh_tx(ctx)->nrcpts > 0);
	if (pfx(l, "datano"))
		return sh_reject(ctx, 554, "5.7.1", "No data for you");
	if (pfx(l, "datatmp"))
		return SH_TEMPFAIL;
	if (pfx(l, "databye"))
		return SH_DISCONNECT;
	return SH_CONTINUE;
}

static sh_verdict
pol_header(sh_ctx *ctx, const char *name, size_t nl, const char *value,
    size_t vl)
{
	const char *n, *v;
	size_t i;

	/* Not NUL-safe, but NUL-terminated at the lengths (smtphook.h). */
	CHECK(name[nl] == '\0' && value[vl] == '\0' && nl > 0);
	/* The header store, as far as it goes. */
	for (i = 0; i < 1000 && sh_tx_header(ctx, i, &n, &v) == 0; i++)
		CHECK(n != NULL && v != NULL);
	if (diff_mode)
		return SH_CONTINUE;
	if (strcasecmp(name, "X-Reject") == 0)
		return sh_reject(ctx, 550, "5.7.1", "Header says no");
	if (strcasecmp(name, "X-Temp") == 0)
		return sh_tempfail(ctx, 451, "4.7.1", "Header says later");
	if (strcasecmp(name, "X-Bye") == 0)
		return SH_DISCONNECT;
	if (strcasecmp(name, "X-Enough") == 0)
		return SH_ACCEPT;
	if (strcasecmp(name, "X-Inv") == 0)
		return (sh_verdict)-1;
	return SH_CONTINUE;
}

static sh_verdict
pol_chunk(sh_ctx *ctx, const unsigned char *d, size_t len)
{
	/* The first four decide; the others pend, and the pending verdict
	 * comes to what the first deciding word after them says (as it
	 * would if they came in different pieces). */
	static const char *const words[] = { "REJECTME", "TEMPME", "BYEBYE",
	    "ENOUGH", "PNOW", "PLATE", "PNEVER" };
	static const char kinds[] = { 0, 0, 0, 0, 'n', 'l', 'v' };
	static const struct answer answers[] = {
		{ SH_REJECT, 550, "5.7.1", "Body says no" },
		{ SH_TEMPFAIL, 0, NULL, NULL }, { SH_DISCONNECT, 0, NULL, NULL },
		{ SH_ACCEPT, 0, NULL, NULL },
	};
	const struct answer go_on = { SH_CONTINUE, 0, NULL, NULL };
	const sh_tx_info *tx = sh_tx(ctx);
	size_t ends[7], w, dec = 4, pend = 7;

	CHECK(tx != NULL && tx->in_body && tx->body_size >= len);
	scan_ends(tx_scan(ctx), d, len, words, 7, ends);
	for (w = 0; w < 4; w++)
		if (ends[w] != SIZE_MAX && (dec == 4 || ends[w] < ends[dec]))
			dec = w;
	/* PNEVER's verdict is the plugin timeout's, and what follows it in
	 * the same piece is not looked at: not in the differential mode. */
	for (w = 4; w < (diff_mode ? 6u : 7u); w++)
		if (ends[w] != SIZE_MAX && (pend == 7 || ends[w] < ends[pend]))
			pend = w;
	if (pend < 7 && (dec == 4 || ends[pend] < ends[dec]))
		return pend_answer(ctx, kinds[pend], dec < 4 ? answers[dec] : go_on);
	if (dec == 4)
		return SH_CONTINUE;
	if (answers[dec].code != 0)
		sh_reply(ctx, answers[dec].code, answers[dec].enh, "%s",
		    answers[dec].text);
	return answers[dec].v;
}

static sh_verdict
pol_eom(sh_ctx *ctx)
{
	const char *l = sender_local(ctx), *trace;
	size_t n;

	CHECK(sh_tx_get(ctx) != NULL);
	(void)sh_add_header(ctx, "X-Fuzz", "yes");
	n = sh_tx_trace(ctx, &trace);
	CHECK(n == 0 || (trace != NULL && strlen(trace) == n));
	if (pfx(l, "eomrej"))
		return sh_reject(ctx, 554, "5.7.1", "Not this one");
	if (pfx(l, "eomtmp"))
		return sh_tempfail(ctx, 452, "4.3.1", "Full");
	if (pfx(l, "eombye"))
		return SH_DISCONNECT;
	return SH_CONTINUE;
}

static sh_verdict
pol_vrfy(sh_ctx *ctx, const char *arg)
{
	CHECK(arg != NULL);
	return by_name(ctx, arg);
}

static void
pol_reset(sh_ctx *ctx)
{
	/* No verdict to reply to: logged and ignored. */
	sh_reply(ctx, 550, "5.0.0", "ignored");
	sh_log(ctx, SH_LOG_DEBUG, "reset");
}

static const sh_plugin fzpol = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "fzpol",
	.init = pol_init, .fini = pol_fini, .connect = pol_connect, .helo = pol_helo, .auth = pol_auth,
	.mail = pol_mail, .rcpt = pol_rcpt, .data = pol_data,
	.header = pol_header, .chunk = pol_chunk, .eom = pol_eom,
	.reset = pol_reset, .vrfy = pol_vrfy, .expn = pol_vrfy,
};

/* ---- fzpend: PENDING verdicts ---- */

struct late {
	ev_timer t;			/* first: the callback gets it */
	struct ev_loop *loop;
	sh_pending tok;
	struct answer a;
};

static void
late_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct late *l = (struct late *)w;
	sh_pending tok = l->tok;
	struct answer a = l->a;

	(void)loop, (void)revents;
	/* The host never cancels a resolved verdict: free first. */
	free(l);
	(void)sh_resume(tok, a.v, a.code, a.enh, a.text);
}

static void
late_cancel(void *arg)
{
	struct late *l = arg;

	ev_timer_stop(l->loop, &l->t);
	free(l);
}

/*
 * pend_answer - a PENDING verdict of the given kind that comes to a:
 * 'n' resumed before returning, 'l' on the next loop turn, 'v' never
 * (the plugin timeout decides), 'b' PENDING without sh_pend() (TEMPFAIL),
 * 's' sh_pend() and then a plain verdict, 't' resumed twice, 'i' resumed
 * with PENDING (TEMPFAIL)
 */
static sh_verdict
pend_answer(sh_ctx *ctx, char kind, struct answer a)
{
	sh_pending tok;
	struct late *l;

	switch (kind) {
	case 'n':
		tok = sh_pend(ctx, NULL, NULL);
		CHECK(sh_resume(tok, a.v, a.code, a.enh, a.text) == 0);
		return SH_PENDING;
	case 'l':
		if ((l = calloc(1, sizeof(*l))) == NULL)
			return SH_TEMPFAIL;
		l->loop = sh_loop(ctx);
		l->a = a;
		l->tok = sh_pend(ctx, late_cancel, l);
		ev_timer_init(&l->t, late_cb, 0, 0);
		ev_timer_start(l->loop, &l->t);
		return SH_PENDING;
	case 'v':
		/* The cancel callback frees it: a leak if it never runs. */
		(void)sh_pend(ctx, free, strdup("never"));
		return SH_PENDING;
	case 'i':
		tok = sh_pend(ctx, NULL, NULL);
		CHECK(sh_resume(tok, SH_PENDING, 250, NULL, "x") == 0);
		return SH_PENDING;
	case 'b':
		return SH_PENDING;
	case 's':
		(void)sh_pend(ctx, NULL, NULL);	/* the token goes stale */
		if (a.code != 0)
			sh_reply(ctx, a.code, a.enh, "%s", a.text);
		return a.v;
	default:
		tok = sh_pend(ctx, NULL, NULL);
		CHECK(sh_resume(tok, a.v, a.code, a.enh, a.text) == 0);
		CHECK(sh_resume(tok, SH_ACCEPT, 0, NULL, NULL) == -1);
		return SH_PENDING;
	}
}

/* pend_by - a pending verdict as the text asks, or CONTINUE; a letter
 * after the word: 'r' REJECT (553), 't' TEMPFAIL, else CONTINUE */
static sh_verdict
pend_by(sh_ctx *ctx, const char *s, size_t len)
{
	static const struct { const char *word; char kind; } words[] = {
		{ "pnow", 'n' }, { "PNOW", 'n' }, { "plate", 'l' },
		{ "PLATE", 'l' }, { "pnever", 'v' }, { "PNEVER", 'v' },
		{ "pbad", 'b' }, { "pstale", 's' }, { "ptwice", 't' },
		{ "pinv", 'i' },
	};
	struct answer a = { SH_CONTINUE, 0, NULL, NULL };
	size_t i, wl = 0;
	char kind = 0;

	if (s == NULL || len < 4 || (s[0] != 'p' && s[0] != 'P'))
		return SH_CONTINUE;
	for (i = 0; i < sizeof(words) / sizeof(words[0]) && kind == 0; i++) {
		wl = strlen(words[i].word);
		if (len >= wl && memcmp(s, words[i].word, wl) == 0)
			kind = words[i].kind;
	}
	if (kind == 0)
		return SH_CONTINUE;
	if (len > wl && s[wl] == 'r')
		a = (struct answer){ SH_REJECT, 553, "5.7.1", "Later, no" };
	else if (len > wl && s[wl] == 't')
		a.v = SH_TEMPFAIL;
	return pend_answer(ctx, kind, a);
}

static sh_verdict
pend_str(sh_ctx *ctx, const char *s)
{
	return pend_by(ctx, s, s != NULL ? strlen(s) : 0);
}

static sh_verdict
pend_connect(sh_ctx *ctx)
{
	return connect_verdict == 3 ? pend_str(ctx, "plate") : SH_CONTINUE;
}

static sh_verdict
pend_helo(sh_ctx *ctx, const char *name, int extended)
{
	(void)extended;
	return pend_str(ctx, name);
}

static sh_verdict
pend_auth(sh_ctx *ctx, const char *mech, const char *user, const char *pass)
{
	(void)mech, (void)pass;
	return pend_str(ctx, user);
}

static sh_verdict
pend_addr(sh_ctx *ctx, const sh_address *a)
{
	return pend_str(ctx, a->local);
}

static sh_verdict
pend_data(sh_ctx *ctx)
{
	return pend_str(ctx, sender_local(ctx));
}

static sh_verdict
pend_header(sh_ctx *ctx, const char *name, size_t nl, const char *value,
    size_t vl)
{
	(void)name, (void)nl;
	return diff_mode ? SH_CONTINUE : pend_by(ctx, value, vl);
}

static sh_verdict
pend_vrfy(sh_ctx *ctx, const char *arg)
{
	return pend_str(ctx, arg);
}

static const sh_plugin fzpend = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "fzpend",
	.connect = pend_connect, .helo = pend_helo, .auth = pend_auth, .mail = pend_addr,
	.rcpt = pend_addr, .data = pend_data, .header = pend_header,
	.eom = pend_data, .vrfy = pend_vrfy,
	.expn = pend_vrfy,
};

/* ---- fzsink: sink semantics ---- */

static sh_verdict
sink_chunk(sh_ctx *ctx, const unsigned char *d, size_t len)
{
	(void)ctx, (void)d, (void)len;
	return SH_ACCEPT;
}

static sh_verdict
sink_eom(sh_ctx *ctx)
{
	(void)ctx;
	return SH_ACCEPT;
}

static const sh_plugin fzsink = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "fzsink",
	.chunk = sink_chunk, .eom = sink_eom,
};

/* ---- the driver ---- */

static int trace;			/* $FUZZ_SESSION_TRACE: print replies */

struct check {
	unsigned replies;
	int closing;			/* a 221 or 421 was read */
	char *log;			/* the replies, for the differential check */
	size_t loglen, logcap;
};

/* log_reply - append a reply to the transcript, queue ids made equal */
static void
log_reply(struct check *c, const char *reply)
{
	const char *q = strstr(reply, "queued as ");
	size_t n = q != NULL ? (size_t)(q - reply) + 10 : strlen(reply);

	if (c->loglen + n + 4 > c->logcap) {
		c->logcap = (c->loglen + n + 4) * 2;
		CHECK((c->log = realloc(c->log, c->logcap)) != NULL);
	}
	memcpy(c->log + c->loglen, reply, n);
	c->loglen += n;
	if (q != NULL)
		c->log[c->loglen++] = '*';
	c->log[c->loglen++] = '\n';
	c->log[c->loglen] = '\0';
}

/* on_reply - the format every reply must have */
static void
on_reply(void *arg, int code, const char *reply)
{
	struct check *c = arg;
	const char *line = reply, *eol;
	char digits[4];

	if (trace)
		fprintf(stderr, "S: %s\n", reply);
	CHECK(!c->closing);
	CHECK(code >= 200 && code <= 599);
	CHECK(c->replies > 0 || code == (connect_verdict == 1 ? 554 :
	    connect_verdict == 2 ? 421 : 220));
	snprintf(digits, sizeof(digits), "%03d", code);
	for (;;) {
		size_t n, i;

		eol = strstr(line, "\r\n");
		n = eol != NULL ? (size_t)(eol - line) : strlen(line);
		CHECK(n >= 4 && memcmp(line, digits, 3) == 0);
		CHECK(line[3] == (eol != NULL ? '-' : ' '));
		for (i = 0; i < n; i++)
			CHECK((unsigned char)line[i] >= 0x20 &&
			    (unsigned char)line[i] < 0x7f);
		if (eol == NULL)
			break;
		line = eol + 2;
	}
	c->replies++;
	log_reply(c, reply);
	if (code == 221 || code == 421)
		c->closing = 1;
}

static int devnull = -1;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	trace = getenv("FUZZ_SESSION_TRACE") != NULL ?
	    atoi(getenv("FUZZ_SESSION_TRACE")) : 0;
	if (devnull < 0)
		devnull = trace > 1 ? dup(STDERR_FILENO) :
		    open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull >= 0)
		log_set_fd(devnull);
	return 0;
}

/* is_run - does a run marker FF FE C B start at in[i]? */
static int
is_run(const uint8_t *in, size_t n, size_t i)
{
	return i + 3 < n && in[i] == 0xff && in[i + 1] == 0xfe;
}

/* expand - STREAM with its FF FE C B runs expanded (malloc'd) */
static uint8_t *
expand(const uint8_t *in, size_t n, size_t *outlen)
{
	size_t i, o, run, total = 0;
	uint8_t *out;
	int pass;

	for (pass = 0, out = NULL; pass < 2; pass++) {
		for (i = 0, o = 0; i < n;) {
			if (!is_run(in, n, i)) {
				if (out != NULL)
					out[o] = in[i];
				o++, i++;
				continue;
			}
			run = ((size_t)in[i + 2] + 1) * 512;
			if (o + run > STREAM_MAX)
				run = o < STREAM_MAX ? STREAM_MAX - o : 0;
			if (out != NULL)
				memset(out + o, in[i + 3], run);
			o += run, i += 4;
		}
		if (pass == 0 && (out = malloc((total = o) + 1)) == NULL)
			return NULL;
	}
	*outlen = total;
	return out;
}

/* settle - let the server do all it can; with time passing, also what
 * waits for a timer.  Returns -1 once the connection is closed. */
static int
settle(sh_harness *h, int time_passes)
{
	int rounds, rc = sh_harness_pump(h);

	for (rounds = 0; time_passes && rc >= 0 && rounds < 64; rounds++) {
		if (sh_harness_expire(h) == 0)
			break;
		rc = sh_harness_pump(h);
	}
	return rc < 0 ? -1 : 0;
}

static uint32_t
next_rand(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/*
 * run - one session: the options of o and r, STREAM s in the pieces q
 * asks for (or all at once when whole), then the client closes.  The
 * replies are checked as they come and collected in c.
 */
static void
run(const uint8_t *s, size_t n, uint8_t o, uint8_t q, uint8_t r, int whole,
    struct check *c)
{
	static const char *const on_timeout[] = { "timeout=5,on_timeout=tempfail",
	    "timeout=5,on_timeout=continue", "timeout=5,on_timeout=reject",
	    "timeout=5" };
	sh_harness *h;
	size_t off = 0, maxpiece = (size_t)1 << (q & 15);
	uint32_t seed = 0x9e3779b9u ^ ((uint32_t)q << 24) ^ (uint32_t)n;
	unsigned pieces;
	int time_passes = (o & 0x40) != 0, code;

	CHECK((h = sh_harness_new()) != NULL);
	CHECK(sh_harness_option(h, "auth", (o & 8) ? "PLAIN,LOGIN" : "PLAIN") == 0);
	CHECK(sh_harness_option(h, "auth-insecure", NULL) == 0);
	if (o & 1)
		CHECK(sh_harness_option(h, "bare-lf", "normalize") == 0);
	if (o & 2)
		CHECK(sh_harness_option(h, "no-pipelining", NULL) == 0);
	if (o & 4)
		CHECK(sh_harness_option(h, "max-size", "300") == 0);
	if (o & 0x10)
		CHECK(sh_harness_option(h, "max-errors", "3") == 0);
	if (o & 0x20)
		CHECK(sh_harness_option(h, "max-recipients", "3") == 0);
	CHECK(sh_harness_add(h, &fzpol, NULL) == 0);
	CHECK(sh_harness_add(h, &fzpend, on_timeout[r & 3]) == 0);
	if (!(o & 0x80))
		CHECK(sh_harness_add(h, &fzsink, NULL) == 0);
	sh_harness_on_reply(h, on_reply, c);
	connect_verdict = (r >> 5) & 3;
	code = sh_harness_connect(h, (r & 4) ? "2001:db8::7" : "192.0.2.7");
	CHECK(code == (connect_verdict == 1 ? 554 : connect_verdict == 2 ? 421 :
	    220));
	/* From here on nothing waits for the clock. */
	sh_harness_timeout(h, 0);

	for (pieces = 0; off < n; pieces++) {
		size_t piece = n - off, sent = 0;

		if (!whole && (q & 15) != 15 && pieces < PIECES_MAX) {
			uint32_t x = next_rand(&seed);

			piece = (q & 0x10) && (x & 0x100) ? 1 + (x >> 9) % 3 :
			    1 + (x >> 9) % maxpiece;
			if (piece > n - off)
				piece = n - off;
		}
		while (sent < piece) {
			ssize_t w = sh_harness_write(h, s + off + sent, piece - sent);

			if (w == 0) {
				/* The socket is full: let the server read. */
				if (settle(h, time_passes) < 0)
					goto done;
				w = sh_harness_write(h, s + off + sent, piece - sent);
				if (w == 0)
					goto done;	/* it does not read: stop */
			}
			if (trace > 1)
				fprintf(stderr, "C: %zu octets at %zu: %zd taken\n",
				    piece - sent, off + sent, w);
			if (w < 0)
				goto done;
			sent += (size_t)w;
		}
		off += piece;
		if (!(q & 0x20))
			sh_harness_step(h);
		else if (settle(h, time_passes) < 0)
			goto done;
	}
done:
	(void)settle(h, time_passes);
	CHECK(c->replies >= 1);
	sh_harness_disconnect(h);
	sh_harness_free(h);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct check one = { 0 }, two = { 0 };
	uint8_t o, q, r, *s;
	size_t n;

	if (devnull < 0)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size < 3)
		return 0;
	o = data[0], q = data[1], r = data[2];
	CHECK((s = expand(data + 3, size - 3, &n)) != NULL);
	log_setup((r & 0x10) ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT,
	    (r & 8) != 0 || trace > 1);
	/*
	 * Differential: the same stream all at once must get the same
	 * replies.  Not with --no-pipelining (what came in one batch is
	 * what it judges) nor --max-size (the size check acts per decoded
	 * piece, a body trigger per piece too: which comes first depends on
	 * the cut); header triggers are off (header and chunk hooks
	 * interleave by the cut, too).
	 */
	diff_mode = (q & 0x40) && !(o & 0x06) && (q & 15) != 15;
	run(s, n, o, q, r, 0, &one);
	if (diff_mode) {
		run(s, n, o, q, r, 1, &two);
		if (strcmp(one.log, two.log) != 0) {
			fprintf(stderr, "fuzz_session: the replies depend on how the "
			    "input was cut\n--- in pieces:\n%s--- at once:\n%s",
			    one.log, two.log);
			abort();
		}
	}
	free(one.log);
	free(two.log);
	free(s);
	return 0;
}
