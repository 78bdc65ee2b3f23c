/*
 * smtphook.h - the public plugin API of smtphook (the only public header)
 *
 * SYNOPSIS
 *	#include <smtphook.h>
 *
 *	static sh_verdict
 *	my_rcpt(sh_ctx *ctx, const sh_address *rcpt)
 *	{
 *		if (strcmp(rcpt->domain, "example.com") != 0)
 *			return sh_reject(ctx, 550, "5.7.1", "Relay access denied");
 *		return SH_CONTINUE;
 *	}
 *
 *	SH_PLUGIN_DEFINE(.name = "mine", .version = "1.0", .rcpt = my_rcpt);
 *
 * DESCRIPTION
 *	A plugin is a shared object that exports exactly one symbol,
 *	`smtphook_plugin`, a const sh_plugin descriptor.  The descriptor starts
 *	with the ABI it was built for (major, minor, struct size) and holds the
 *	plugin's hook functions.  The host (smtphookd, or the test harness)
 *	loads it with dlopen(RTLD_NOW | RTLD_LOCAL), refuses it when abi_major
 *	differs from SH_ABI_MAJOR or abi_minor is newer than the host's (it
 *	could call past the end of the host's function table), and treats
 *	hooks beyond the plugin's struct_size as absent, so a plugin built for
 *	an older minor keeps working.  The ABI only grows by appending
 *	members; enum values are never renumbered.  Test for an appended
 *	member of a host struct with SH_API_HAS() / SH_STRUCT_HAS().
 *
 *	Plugins never link against the host.  Every host service is a
 *	function in the const sh_host_api table reached through the context
 *	(ctx->api); the static inline wrappers below (sh_reply, sh_log, ...)
 *	are the intended way to call them.
 *
 * THREADS
 *	Every hook runs on the host's event-loop thread, and every function
 *	of this API must be called on that thread, except inside the `work`
 *	function of sh_pool_submit(), which runs on a pool thread and must not
 *	call this API at all.  The one exception is sh_counter_add(), which
 *	any thread may call at any time.  Hooks must not block: disk syncs, DNS, network
 *	round trips and heavy CPU work belong in the pool or on the loop as
 *	watchers, with a PENDING verdict.  A hook that keeps the loop busy
 *	longer than 100 ms is logged with the plugin's and the hook's name.
 *
 * LIFECYCLE
 *	init		once, in chain order, at start-up (before any connection).
 *	connect		once per connection; then helo, auth, mail, rcpt,
 *			data, header, chunk, eom, vrfy, expn as the client
 *			drives the session.
 *	data		a transaction's body begins (DATA accepted with 354).
 *	header		each header field as it streams past, unfolded.
 *	chunk		each piece of the message (headers and body, after
 *			dot-unstuffing, CRLF kept) in arrival order.
 *	eom		the end of the message; the last chance to add headers
 *			and the one place to edit the message (MESSAGE
 *			EDITS below).
 *	reset		the transaction ends WITHOUT being accepted (RSET, a
 *			new MAIL after a rejected message, a rejected or
 *			failed message, a new EHLO, disconnect mid-transaction).
 *			Exactly one of "eom answered 2xx" and "reset" ends
 *			every transaction that saw a MAIL verdict.
 *	disconnect	once per connection that saw connect, always, in
 *			chain order, whatever the other plugins did.
 *	fini		once at shutdown, in reverse chain order, for every
 *			plugin whose init succeeded.
 *	reset, disconnect and fini are notifications: all plugins get them.
 *	Every other hook returns a verdict; the host asks plugins in chain
 *	order and the first verdict other than SH_CONTINUE decides, except
 *	for header and chunk, where SH_ACCEPT means "I need no more of this
 *	message" (that plugin is skipped for the rest of the header section
 *	or body, still gets eom, and never hides data from later plugins).
 *
 * MEMORY
 *	Every pointer the host passes in (strings, sh_address, chunks) is
 *	borrowed: valid for the duration of the call only.  Copy what you
 *	keep.  Per-connection and per-transaction private state is stored
 *	with sh_conn_set() / sh_tx_set() together with a destructor that the
 *	host calls when the connection or the transaction ends.
 */
#ifndef SMTPHOOK_H
#define SMTPHOOK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A major bump breaks the ABI; a minor bump only appends. */
#define SH_ABI_MAJOR 1
#define SH_ABI_MINOR 1

#if defined(__GNUC__)
#define SH_EXPORT __attribute__((visibility("default")))
#define SH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SH_EXPORT
#define SH_PRINTF(f, a)
#endif

/*
 * sh_verdict - what a hook answers.  Values are fixed forever.
 *	SH_CONTINUE	no opinion; ask the next plugin.
 *	SH_ACCEPT	take it (a recipient, a message at eom: the plugin
 *			has taken responsibility for it).
 *	SH_REJECT	permanent refusal (5xx).
 *	SH_TEMPFAIL	temporary refusal (4xx).
 *	SH_DISCONNECT	421 and close the connection at once.
 *	SH_PENDING	the answer comes later through sh_resume(); only legal
 *			after sh_pend() was called in this hook call.
 */
typedef enum sh_verdict {
	SH_CONTINUE = 0,
	SH_ACCEPT = 1,
	SH_REJECT = 2,
	SH_TEMPFAIL = 3,
	SH_DISCONNECT = 4,
	SH_PENDING = 5,
} sh_verdict;

/* Log levels for sh_log(). */
typedef enum sh_log_level {
	SH_LOG_DEBUG = 0,
	SH_LOG_INFO = 1,
	SH_LOG_WARN = 2,
	SH_LOG_ERROR = 3,
} sh_log_level;

/* Hook identifiers (for logs and the harness). */
typedef enum sh_hook_id {
	SH_HOOK_CONNECT = 0,
	SH_HOOK_HELO,
	SH_HOOK_AUTH,
	SH_HOOK_MAIL,
	SH_HOOK_RCPT,
	SH_HOOK_DATA,
	SH_HOOK_HEADER,
	SH_HOOK_CHUNK,
	SH_HOOK_EOM,
	SH_HOOK_VRFY,
	SH_HOOK_EXPN,
	SH_HOOK_COUNT_V1
} sh_hook_id;

/*
 * sh_role - what a plugin does, declared in its descriptor (`roles`, an
 * OR of these bits), so that `smtphookd --check` can judge a chain before
 * any mail arrives: a chain in which no plugin can ACCEPT at eom answers
 * every message 451, and a relay with no recipient restriction before it
 * is an open relay.  Declare what the plugin can do, not what one set of
 * its arguments makes it do.  A storing or relaying plugin answers at eom
 * before the plugins after it run, so an editing plugin belongs before
 * it.  A relay that streams the message on before eom must hold the
 * header section back when a plugin before it edits, since those edits
 * come at eom: it learns that from sh_roles_before(ctx), the OR of the
 * roles of the plugins before it.  Values are fixed forever.
 */
typedef enum sh_role {
	/* edits the message at eom (headers, envelope) */
	SH_ROLE_EDITS = 1u << 0,
	/* takes responsibility for messages: stores them (or, as a sink,
	 * discards them on purpose) and may ACCEPT at eom */
	SH_ROLE_STORES = 1u << 1,
	/* passes messages on to another server; may ACCEPT at eom */
	SH_ROLE_RELAYS = 1u << 2,
	/* refuses recipients it does not serve (what keeps a relay from
	 * being open) */
	SH_ROLE_RESTRICTS_RCPTS = 1u << 3,
} sh_role;

struct sh_host_api;
struct ev_loop;

/*
 * sh_ctx - the context of one hook call.  Only `api` is public; the rest
 * is the host's.  A ctx is valid for the duration of the call only: never
 * store it (store an sh_pending token for later completion instead).
 */
typedef struct sh_ctx {
	const struct sh_host_api *api;
} sh_ctx;

/* sh_param - one ESMTP parameter of MAIL or RCPT; value NULL when absent. */
typedef struct sh_param {
	const char *key;
	const char *value;
} sh_param;

/*
 * sh_address - a sender or recipient with its ESMTP parameters.
 *	address	the mailbox without angle brackets ("" for the null sender)
 *	local	the local part, domain the domain ("" when absent, e.g.
 *		<Postmaster>); both lower-case is NOT guaranteed.
 *	params	the parameters as the client sent them, keys upper-cased.
 */
typedef struct sh_address {
	const char *address;
	const char *local;
	const char *domain;
	const sh_param *params;
	size_t nparams;
} sh_address;

/*
 * sh_session_info - a read-only view of the connection.  Fields are only
 * appended; check `size` before reading a field added after 1.0.
 */
typedef struct sh_session_info {
	size_t size;
	uint64_t id;			/* unique per daemon run */
	const char *id_str;		/* the id as logged */
	const char *peer_addr;		/* numeric, e.g. "127.0.0.1", "::1" */
	unsigned peer_port;
	const char *local_addr;
	unsigned local_port;
	const char *helo;		/* NULL before HELO/EHLO */
	int esmtp;			/* the client said EHLO */
	int early_talker;		/* the client talked before the greeting */
	int tls;			/* the connection is encrypted */
	const char *tls_protocol;	/* e.g. "TLSv1.3", NULL without TLS */
	const char *tls_cipher;
	const char *tls_peer_subject;	/* client certificate subject, or NULL */
	const char *auth_user;		/* NULL unless authenticated */
	const char *hostname;		/* the server's own name */
	unsigned transactions;		/* transactions started so far */
} sh_session_info;

/*
 * sh_tx_info - a read-only view of the current transaction.  `sender` is
 * NULL before MAIL was accepted.  Recipients are the accepted ones so far.
 * In a chunk call, body_size already counts that chunk (so the chunk
 * starts at message offset body_size - len), and in_headers is 0 as soon
 * as the end of the header section was found, which may lie inside that
 * very chunk; header_size then says where the body starts.
 *
 * Members are only appended; test `size` before reading one that an older
 * host may lack (header_size: offsetof(sh_tx_info, header_size) +
 * sizeof(uint64_t) <= size).
 */
typedef struct sh_tx_info {
	size_t size;
	const char *id;			/* unique transaction (queue) id */
	const sh_address *sender;
	const sh_address *const *rcpts;
	size_t nrcpts;
	uint64_t body_size;		/* message bytes seen so far */
	int in_body;			/* DATA accepted, body streaming */
	int bdat;			/* the body comes by BDAT */
	int in_headers;			/* still inside the header section */
	/* Octets of the header section, the empty line that ends it
	 * included: the message offset where the body starts.  0 while
	 * in_headers. */
	uint64_t header_size;
	/* ABI 1.1: an earlier plugin edited the header section at eom
	 * (sh_header_insert/change/remove): a storing plugin must write
	 * the final head (sh_tx_head_part) instead of the header section
	 * as it streamed.  Adding fields (sh_add_header) does not count:
	 * they are in the trace block. */
	int head_edited;
} sh_tx_info;

/*
 * sh_head_part - one piece of the final header section of a message, in
 * order (sh_tx_head_part).  Either text the host holds (text != NULL:
 * the trace block, an inserted or changed field, CRLF-terminated), or a
 * range of the message as it streamed through the chunk hook (text NULL:
 * len octets from message offset `offset`; unchanged original fields,
 * exactly as the client sent them, folding and all).  The last part ends
 * at sh_tx_info.header_size, the empty line included; the body follows
 * from there, unchanged.
 */
typedef struct sh_head_part {
	const char *text;
	size_t len;
	uint64_t offset;
} sh_head_part;

/*
 * sh_pending - a completion token for an asynchronous verdict, obtained
 * with sh_pend() and completed with sh_resume().  It is a plain value:
 * copy it wherever you like.  It names the session by id and generation,
 * never by pointer, so a token that outlives its session or was cancelled
 * is harmless: sh_resume() on it does nothing.
 */
typedef struct sh_pending {
	const struct sh_host_api *api;
	void *host_;			/* the host's, opaque */
	uint64_t session_id;
	uint64_t generation;
} sh_pending;

/*
 * sh_counter - a plugin's metric counter, registered in init with
 * sh_counter_register() and incremented with sh_counter_add().  Opaque:
 * the host owns it and it stays valid, at the same address, until after
 * the plugin's fini.
 *
 * sh_counter_head - the public start of every sh_counter.  The host sets
 * add_ to its add function, so that sh_counter_add() needs no ctx (pool
 * threads have none) and no host table: it calls through the counter.
 * Do not touch it otherwise.
 */
typedef struct sh_counter sh_counter;

struct sh_counter_head {
	void (*add_)(sh_counter *counter, uint64_t n);
};

/* Called by the host on the loop thread when a pending verdict is
 * abandoned: the client went away, or the plugin's timeout expired.  Stop
 * timers and watchers here; a pool job cannot be stopped and will still
 * run its `done`, where sh_resume() is then a no-op. */
typedef void (*sh_cancel_fn)(void *arg);

/* Destructor for private state (sh_conn_set, sh_tx_set, sh_plugin_set). */
typedef void (*sh_free_fn)(void *data);

/*
 * sh_arg - one key=value argument from the command line
 * (-p NAME:key=value,...).  The reserved keys `timeout` and `on_timeout`
 * are handled by the host and not passed.
 */
typedef struct sh_arg {
	const char *key;
	const char *value;
} sh_arg;

/*
 * sh_plugin - the descriptor every plugin exports as `smtphook_plugin`.
 * Use SH_PLUGIN_DEFINE() to fill the ABI fields.  Hooks left NULL mean
 * "no opinion" (verdict hooks) or "not interested" (notifications).
 */
typedef struct sh_plugin {
	uint32_t abi_major;		/* SH_ABI_MAJOR at build time */
	uint32_t abi_minor;		/* SH_ABI_MINOR at build time */
	uint32_t struct_size;		/* sizeof(sh_plugin) at build time */
	uint32_t reserved_;
	const char *name;		/* short name, used in logs */
	const char *version;
	/* NULL-terminated list of the argument keys the plugin accepts;
	 * any other key is refused at start-up (exit 2).  NULL: none. */
	const char *const *arg_keys;

	/* init - set up the plugin.  Return 0 to start, or -1 after setting a
	 * one-line reason with sh_error(); the daemon then exits 2.  Store
	 * plugin-wide state with sh_plugin_set(). */
	int (*init)(sh_ctx *ctx, const sh_arg *args, size_t nargs);
	/* fini - release everything; every session is gone by now. */
	void (*fini)(sh_ctx *ctx);

	sh_verdict (*connect)(sh_ctx *ctx);
	/* helo - HELO (extended 0) or EHLO (extended 1) with its argument. */
	sh_verdict (*helo)(sh_ctx *ctx, const char *name, int extended);
	/* auth - a client authenticates: ACCEPT = authenticated, REJECT =
	 * 535 5.7.8, TEMPFAIL = 454 4.7.0.  CONTINUE from all: 535. */
	sh_verdict (*auth)(sh_ctx *ctx, const char *mechanism,
	    const char *user, const char *password);
	sh_verdict (*mail)(sh_ctx *ctx, const sh_address *sender);
	sh_verdict (*rcpt)(sh_ctx *ctx, const sh_address *rcpt);
	/* data - the body is about to begin (DATA, or the first BDAT). */
	sh_verdict (*data)(sh_ctx *ctx);
	/* header - one header field, unfolded (CRLF before WSP removed),
	 * value without leading WSP or final CRLF.  Not NUL-safe: use the
	 * lengths; both strings are also NUL-terminated for convenience. */
	sh_verdict (*header)(sh_ctx *ctx, const char *name, size_t name_len,
	    const char *value, size_t value_len);
	/* chunk - a piece of the message as the client meant it (headers
	 * included, dot-unstuffed after DATA, the exact octets of BDAT, CRLF
	 * kept), in order, with no gaps; pieces need not line up with BDAT
	 * chunks.  ACCEPT: skip me for the rest of this body.
	 * REJECT/TEMPFAIL: the rest is drained and that verdict is the reply
	 * after the end (of the message; with BDAT, of the chunk). */
	sh_verdict (*chunk)(sh_ctx *ctx, const unsigned char *data, size_t len);
	/* eom - the message is complete.  ACCEPT only once you have taken
	 * responsibility for it (stored durably, relayed); the host replies
	 * 250 only on ACCEPT.  Headers may be added with sh_add_header(),
	 * the message edited with sh_header_insert() and the rest of MESSAGE
	 * EDITS; a storing plugin writes sh_tx_head_part()'s parts. */
	sh_verdict (*eom)(sh_ctx *ctx);
	/* reset - the transaction ended without being accepted. */
	void (*reset)(sh_ctx *ctx);
	sh_verdict (*vrfy)(sh_ctx *ctx, const char *arg);
	sh_verdict (*expn)(sh_ctx *ctx, const char *arg);
	/* disconnect - the connection is gone (always called). */
	void (*disconnect)(sh_ctx *ctx);
	/* roles - an OR of sh_role: what this plugin does, for --check and
	 * for sh_roles_before() of later plugins.  0 declares none.  A
	 * descriptor built before this member existed (ABI 1.0) is shorter:
	 * the host then treats its roles as unknown, not as 0. */
	uint32_t roles;
	/* Append new members here only, and bump SH_ABI_MINOR. */
} sh_plugin;

/*
 * sh_host_api - the host's services.  Call them through the wrappers
 * below.  `size` lets a plugin test for functions appended later.
 */
typedef struct sh_host_api {
	size_t size;
	uint32_t abi_major, abi_minor;

	void (*reply)(sh_ctx *ctx, int code, const char *enhanced,
	    const char *fmt, va_list ap);
	void (*log)(sh_ctx *ctx, sh_log_level level, const char *fmt,
	    va_list ap);
	void (*error)(sh_ctx *ctx, const char *fmt, va_list ap);

	const sh_session_info *(*session)(sh_ctx *ctx);
	const sh_tx_info *(*tx)(sh_ctx *ctx);
	int (*tx_header)(sh_ctx *ctx, size_t index, const char **name,
	    const char **value);
	size_t (*tx_trace)(sh_ctx *ctx, const char **text);
	int (*add_header)(sh_ctx *ctx, const char *name, const char *value);

	void *(*plugin_get)(sh_ctx *ctx);
	void (*plugin_set)(sh_ctx *ctx, void *data);
	void *(*conn_get)(sh_ctx *ctx);
	void (*conn_set)(sh_ctx *ctx, void *data, sh_free_fn destroy);
	void *(*tx_get)(sh_ctx *ctx);
	void (*tx_set)(sh_ctx *ctx, void *data, sh_free_fn destroy);

	sh_pending (*pend)(sh_ctx *ctx, sh_cancel_fn cancel, void *arg);
	int (*resume)(sh_pending p, sh_verdict verdict, int code,
	    const char *enhanced, const char *text);
	struct ev_loop *(*loop)(sh_ctx *ctx);
	int (*pool_submit)(sh_ctx *ctx, void (*work)(void *arg),
	    void (*done)(void *arg), void *arg);
	const char *(*hook_name)(sh_ctx *ctx);
	sh_counter *(*counter_register)(sh_ctx *ctx, const char *name,
	    const char *help);
	/* The function sh_counter_add() reaches through the counter's
	 * sh_counter_head; here for completeness and SH_API_HAS(). */
	void (*counter_add)(sh_counter *counter, uint64_t n);
	uint32_t (*roles_before)(sh_ctx *ctx);
	int (*header_insert)(sh_ctx *ctx, size_t position, const char *name,
	    const char *value);
	int (*header_change)(sh_ctx *ctx, const char *name, size_t occurrence,
	    const char *value);
	int (*sender_change)(sh_ctx *ctx, const char *address,
	    const char *params);
	int (*rcpt_add)(sh_ctx *ctx, const char *address, const char *params);
	int (*rcpt_remove)(sh_ctx *ctx, const char *address);
	int (*tx_head_part)(sh_ctx *ctx, size_t index, sh_head_part *part);
	/* Append new functions here only. */
} sh_host_api;

/*
 * SH_PLUGIN_DEFINE(...) - define and export the plugin descriptor.
 * Arguments are designated initialisers of sh_plugin, e.g.
 * SH_PLUGIN_DEFINE(.name = "x", .rcpt = x_rcpt).
 */
#define SH_PLUGIN_DEFINE(...)						\
	SH_EXPORT const sh_plugin smtphook_plugin = {			\
		.abi_major = SH_ABI_MAJOR,				\
		.abi_minor = SH_ABI_MINOR,				\
		.struct_size = sizeof(sh_plugin),			\
		__VA_ARGS__						\
	}

/* The exported symbol's name, for hosts. */
#define SH_PLUGIN_SYMBOL "smtphook_plugin"

/*
 * SH_STRUCT_HAS(p, type, member) - does the host's struct *p (one that
 * starts with its own `size`: sh_host_api, sh_session_info, sh_tx_info)
 * have member?  A host is never older than the minor a plugin was built
 * for (the loader refuses that), so this is for members appended later
 * than a wrapper or a plugin means to support, e.g. a plugin that wants
 * to run on several minors.
 */
#define SH_STRUCT_HAS(p, type, member)					\
	((p) != NULL && offsetof(type, member) +			\
	    sizeof(((const type *)0)->member) <= (p)->size)

/* SH_API_HAS(ctx, fn) - does the host's function table have fn? */
#define SH_API_HAS(ctx, fn) SH_STRUCT_HAS((ctx)->api, sh_host_api, fn)

/*
 * sh_reply - set the reply for the verdict this hook is about to return.
 * code: 2xx for ACCEPT, 4xx for TEMPFAIL, 5xx for REJECT (a code of the
 * wrong class is ignored with a warning and the default is used; 421
 * means DISCONNECT).  enhanced: "X.Y.Z" of RFC 3463 whose class matches
 * the code, or NULL for the host's default.  The text may hold several
 * lines separated by '\n' (a multi-line reply); control characters are
 * replaced, and it is cut at 2,000 octets.  Calling it again replaces the
 * earlier reply.  Valid in any verdict hook, before returning.
 */
static inline SH_PRINTF(4, 5) void
sh_reply(sh_ctx *ctx, int code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctx->api->reply(ctx, code, enhanced, fmt, ap);
	va_end(ap);
}

/*
 * sh_reject / sh_tempfail - set the reply and return the matching verdict
 * in one statement: `return sh_reject(ctx, 550, "5.7.1", "No")`.  There is
 * no sh_accept(): ACCEPT usually takes the host's reply; for your own, call
 * sh_reply() with a 2xx code and return SH_ACCEPT.
 */
static inline SH_PRINTF(4, 5) sh_verdict
sh_reject(sh_ctx *ctx, int code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctx->api->reply(ctx, code, enhanced, fmt, ap);
	va_end(ap);
	return SH_REJECT;
}

static inline SH_PRINTF(4, 5) sh_verdict
sh_tempfail(sh_ctx *ctx, int code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctx->api->reply(ctx, code, enhanced, fmt, ap);
	va_end(ap);
	return SH_TEMPFAIL;
}

/*
 * sh_log - log one line, prefixed by the host with the session id and the
 * plugin's name.  Never log client text unescaped: the host escapes
 * control characters and cuts lines at 1,000 octets.
 */
static inline SH_PRINTF(3, 4) void
sh_log(sh_ctx *ctx, sh_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctx->api->log(ctx, level, fmt, ap);
	va_end(ap);
}

/*
 * sh_error - in init: the one-line reason init failed (the daemon prints
 * "smtphookd: plugin NAME: REASON" and exits 2).  Elsewhere: logs an error.
 */
static inline SH_PRINTF(2, 3) void
sh_error(sh_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctx->api->error(ctx, fmt, ap);
	va_end(ap);
}

/* sh_session - the connection view; valid in every hook except init/fini
 * (NULL there).  Pointers inside are valid for this call. */
static inline const sh_session_info *
sh_session(sh_ctx *ctx)
{
	return ctx->api->session(ctx);
}

/* sh_tx - the transaction view; NULL outside a transaction (before MAIL
 * was accepted, and in connect/helo/vrfy/expn/disconnect). */
static inline const sh_tx_info *
sh_tx(sh_ctx *ctx)
{
	return ctx->api->tx(ctx);
}

/*
 * sh_tx_header - the index-th header field of the message seen so far
 * (unfolded; valid in header, chunk and eom).  Returns 0 and sets name and
 * value, or -1 past the end.  The host keeps at most 64 KiB of headers per
 * message; fields beyond that are passed to the header hook but not kept
 * (and cannot be edited).  After an earlier plugin's edits at eom this is
 * the edited list: inserted fields in place, changed values, removed
 * fields gone.  The trace block (sh_tx_trace) is not part of it.
 */
static inline int
sh_tx_header(sh_ctx *ctx, size_t index, const char **name, const char **value)
{
	return ctx->api->tx_header(ctx, index, name, value);
}

/*
 * sh_tx_trace - the header block a storing plugin writes before the
 * message: the host's Received: header followed by every header added with
 * sh_add_header(), each ending in CRLF.  Valid in eom (and in data, header
 * and chunk, where it holds what was added so far).  Returns its length.
 */
static inline size_t
sh_tx_trace(sh_ctx *ctx, const char **text)
{
	return ctx->api->tx_trace(ctx, text);
}

/*
 * sh_add_header - add a header field to the message: it appears in
 * sh_tx_trace() for later plugins and for storing plugins.  Valid in
 * data, header, chunk and eom.  Name: printable ASCII without ':'; value:
 * one line, without CR or LF (a value folded by hand with "\r\n\t" is
 * refused too).  Returns 0, or -1 (bad name/value, a field over 4 KiB,
 * called outside data..eom, or the 16 KiB per-message budget for added
 * headers is used up).
 */
static inline int
sh_add_header(sh_ctx *ctx, const char *name, const char *value)
{
	return ctx->api->add_header(ctx, name, value);
}

/* sh_plugin_get / sh_plugin_set - plugin-wide state (set it in init; free
 * it yourself in fini). */
static inline void *
sh_plugin_get(sh_ctx *ctx)
{
	return ctx->api->plugin_get(ctx);
}

static inline void
sh_plugin_set(sh_ctx *ctx, void *data)
{
	ctx->api->plugin_set(ctx, data);
}

/* sh_conn_get / sh_conn_set - per-connection private state of this plugin.
 * destroy (may be NULL) runs after the disconnect hook, or when the value
 * is replaced. */
static inline void *
sh_conn_get(sh_ctx *ctx)
{
	return ctx->api->conn_get(ctx);
}

static inline void
sh_conn_set(sh_ctx *ctx, void *data, sh_free_fn destroy)
{
	ctx->api->conn_set(ctx, data, destroy);
}

/* sh_tx_get / sh_tx_set - per-transaction private state of this plugin
 * (valid from mail to the end of the transaction).  destroy runs when the
 * transaction ends: after eom was answered, or after the reset hook. */
static inline void *
sh_tx_get(sh_ctx *ctx)
{
	return ctx->api->tx_get(ctx);
}

static inline void
sh_tx_set(sh_ctx *ctx, void *data, sh_free_fn destroy)
{
	ctx->api->tx_set(ctx, data, destroy);
}

/*
 * sh_pend - start an asynchronous verdict.  Call it in a verdict hook,
 * then return SH_PENDING; later, on the loop thread, call sh_resume() with
 * the token exactly once.  While the verdict is pending the host reads
 * nothing more from that client (backpressure) and runs nothing else of
 * the session.  cancel(arg) (may be NULL) is called if the host abandons
 * the verdict (client gone, or the plugin's timeout= expired: the verdict
 * then becomes on_timeout=, default TEMPFAIL 451 4.4.3).  Completing
 * before returning SH_PENDING is legal; the host acts on it after the
 * hook returns.
 */
static inline sh_pending
sh_pend(sh_ctx *ctx, sh_cancel_fn cancel, void *arg)
{
	return ctx->api->pend(ctx, cancel, arg);
}

/*
 * sh_resume - complete a pending verdict with a final one (not PENDING)
 * and optionally its reply (code 0 / NULL: the host's default).  Returns 0
 * when the verdict was taken, -1 when the token was already completed,
 * cancelled, or its session is gone (harmless).  The host acts on it on a
 * later loop iteration, never inside this call, so the caller may keep
 * using its own state after it returns.
 */
static inline int
sh_resume(sh_pending p, sh_verdict verdict, int code, const char *enhanced,
    const char *text)
{
	return p.api->resume(p, verdict, code, enhanced, text);
}

/* sh_loop - the host's libev loop, for plugins' own watchers.  Stop them
 * before their memory is freed (in destructors and cancel callbacks). */
static inline struct ev_loop *
sh_loop(sh_ctx *ctx)
{
	return ctx->api->loop(ctx);
}

/*
 * sh_pool_submit - run work(arg) on a host pool thread, then done(arg) on
 * the loop thread.  work must not call this API; done may (typically
 * sh_resume()).  Jobs of different sessions run concurrently.  Returns 0,
 * or -1 (no memory: answer TEMPFAIL).  done always runs, also after the
 * session is gone, so it owns arg.
 */
static inline int
sh_pool_submit(sh_ctx *ctx, void (*work)(void *arg), void (*done)(void *arg),
    void *arg)
{
	return ctx->api->pool_submit(ctx, work, done, arg);
}

/* sh_hook_name - the name of the hook being called ("rcpt", ...). */
static inline const char *
sh_hook_name(sh_ctx *ctx)
{
	return ctx->api->hook_name(ctx);
}

/*
 * sh_counter_register - register a counter of this plugin, value 0, shown
 * by the host per plugin (`--check -v`, a debug line at shutdown; later a
 * Prometheus endpoint, as the metric's name and help).  Call it in init
 * only, on the loop thread; keep the handle in the plugin's state.
 * name: a Prometheus metric name, [a-zA-Z_][a-zA-Z0-9_]*, at most 63
 * octets, unique within the plugin (another plugin may use the same
 * name: the host tells them apart by the plugin).  help: one line of
 * printable ASCII, at most 159 octets, or NULL.  At most 64 counters per
 * plugin.  Returns the counter, or NULL (the reason is logged by the
 * host): a bad or duplicate name, bad help, the limit reached, called
 * outside init, no memory, or a host without metrics.  NULL is safe to
 * pass to sh_counter_add(), so a plugin may ignore the failure.
 */
static inline sh_counter *
sh_counter_register(sh_ctx *ctx, const char *name, const char *help)
{
	if (!SH_API_HAS(ctx, counter_register))
		return NULL;
	return ctx->api->counter_register(ctx, name, help);
}

/*
 * sh_counter_add - add n to a counter (NULL: does nothing).  Any thread,
 * any time from init to the end of fini: unlike the rest of this API it
 * may be called in a sh_pool_submit() work function, and concurrently
 * (a relaxed atomic add: the total is exact, the order of adds across
 * threads is not observable).  It needs no ctx: it calls through the
 * counter (see sh_counter_head).  The value wraps at 2^64.
 */
static inline void
sh_counter_add(sh_counter *counter, uint64_t n)
{
	if (counter != NULL)
		((const struct sh_counter_head *)(void *)counter)->add_(counter, n);
}

/*
 * sh_roles_before - the roles (an OR of sh_role) declared by the plugins
 * before this one in the chain.  A relaying plugin that streams a message
 * on as it arrives tests SH_ROLE_EDITS here: when set, an earlier plugin
 * may still change the header section or the envelope at eom, so the
 * message must be spooled until eom instead.  A plugin built for ABI 1.0
 * (its roles unknown) counts as SH_ROLE_EDITS: it may add header fields
 * at eom.  Valid in any hook and in init.
 */
static inline uint32_t
sh_roles_before(sh_ctx *ctx)
{
	if (!SH_API_HAS(ctx, roles_before))
		return 0;
	return ctx->api->roles_before(ctx);
}

/*
 * MESSAGE EDITS (ABI 1.1)
 *	In eom only, a plugin may edit the message before the plugins after
 *	it see it: the host applies each edit at once, so edits take effect
 *	in chain order, and later plugins, storing and relaying ones
 *	included, see the result through sh_tx(), sh_tx_header() and
 *	sh_tx_head_part().  A plugin that edits declares SH_ROLE_EDITS.
 *	Edits of a message that is not accepted in the end are dropped with
 *	it.  The body cannot be replaced in 1.1 (the host never holds it);
 *	the envelope and the header section can.
 *
 *	Fields are counted over the message's own header section as the
 *	host kept it (sh_tx_header), not the trace block: the host's
 *	Received: and fields added with sh_add_header() come first and are
 *	not edited.  Names are field names (printable ASCII without ':'),
 *	matched case-insensitively; values are one line without CR or LF,
 *	the line "name: value" at most 998 octets (RFC 5322 §2.1.1).  A
 *	message has at most 1,000 fields, and its edits at most 1 MiB of
 *	inserted and changed text.  A changed field keeps the name as it was
 *	spelt and becomes one line; unchanged fields stay byte for byte as
 *	the client sent them.  Addresses and parameters are checked as on a
 *	MAIL or RCPT command; an address with 8-bit octets (or SMTPUTF8)
 *	needs a transaction whose MAIL asked for SMTPUTF8.  Each returns 0,
 *	or -1 and changes nothing (bad arguments, no such field, a limit,
 *	outside eom - also logged as a warning -, out of memory).
 *
 *	The sh_tx() view follows envelope edits at once, but sender and
 *	rcpts[i] pointers taken before an edit may be stale: read them
 *	again.  Text from sh_tx_head_part() stays valid until the
 *	transaction ends.  The host's Received: is not rewritten.
 */

/* sh_header_insert - insert "name: value" before the field at position
 * (0: first; sh_tx_header's count or more: last of the section) */
static inline int
sh_header_insert(sh_ctx *ctx, size_t position, const char *name,
    const char *value)
{
	if (!SH_API_HAS(ctx, header_insert))
		return -1;
	return ctx->api->header_insert(ctx, position, name, value);
}

/* sh_header_change - give the occurrence-th field called name (1: the
 * first) a new value; NULL removes the field */
static inline int
sh_header_change(sh_ctx *ctx, const char *name, size_t occurrence,
    const char *value)
{
	if (!SH_API_HAS(ctx, header_change))
		return -1;
	return ctx->api->header_change(ctx, name, occurrence, value);
}

/* sh_header_remove - remove the occurrence-th field called name */
static inline int
sh_header_remove(sh_ctx *ctx, const char *name, size_t occurrence)
{
	return sh_header_change(ctx, name, occurrence, NULL);
}

/*
 * sh_sender_change - a new envelope sender: address without angle
 * brackets ("" for the null sender <>), params its ESMTP parameters as
 * on a MAIL command ("SIZE=1000 BODY=8BITMIME") or NULL.
 */
static inline int
sh_sender_change(sh_ctx *ctx, const char *address, const char *params)
{
	if (!SH_API_HAS(ctx, sender_change))
		return -1;
	return ctx->api->sender_change(ctx, address, params);
}

/* sh_rcpt_add - one more recipient (params as on RCPT: "NOTIFY=NEVER",
 * or NULL); a recipient already in the list is not added twice (-1),
 * nor one past the daemon's --max-recipients */
static inline int
sh_rcpt_add(sh_ctx *ctx, const char *address, const char *params)
{
	if (!SH_API_HAS(ctx, rcpt_add))
		return -1;
	return ctx->api->rcpt_add(ctx, address, params);
}

/* sh_rcpt_remove - drop every recipient of address (the local part
 * compared as the client gave it, the domain case-insensitively); the
 * last one cannot go (-1): a message always has a recipient */
static inline int
sh_rcpt_remove(sh_ctx *ctx, const char *address)
{
	if (!SH_API_HAS(ctx, rcpt_remove))
		return -1;
	return ctx->api->rcpt_remove(ctx, address);
}

/*
 * sh_tx_head_part - the index-th part of the final header section (see
 * sh_head_part), for a plugin that stores or relays the message: write
 * the parts in order, then the body from sh_tx_info.header_size on.
 * Valid in eom (elsewhere -1 with a warning).  Returns 0 and fills
 * part, or -1 past the last part.  Reading the parts in order costs O(1)
 * each.  Without head edits the parts are the trace block and one range
 * of the message from offset 0 to header_size: what such a plugin wrote
 * before 1.1.  Ranges that touch are one part, empty ones are left out.
 */
static inline int
sh_tx_head_part(sh_ctx *ctx, size_t index, sh_head_part *part)
{
	if (!SH_API_HAS(ctx, tx_head_part))
		return -1;
	return ctx->api->tx_head_part(ctx, index, part);
}

/* sh_param_get - the value of an ESMTP parameter of an address, or NULL;
 * *present (may be NULL) tells a value-less parameter from an absent one. */
static inline const char *
sh_param_get(const sh_address *a, const char *key, int *present)
{
	size_t i, k;

	if (present != NULL)
		*present = 0;
	for (i = 0; i < a->nparams; i++) {
		const char *x = a->params[i].key;

		for (k = 0; x[k] != '\0' && key[k] != '\0'; k++) {
			char c = key[k];
			if (c >= 'a' && c <= 'z')
				c = (char)(c - 'a' + 'A');
			if (x[k] != c)
				break;
		}
		if (x[k] == '\0' && key[k] == '\0') {
			if (present != NULL)
				*present = 1;
			return a->params[i].value;
		}
	}
	return NULL;
}

#ifdef __cplusplus
}
#endif

#endif /* SMTPHOOK_H */
