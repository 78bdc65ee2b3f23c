/*
 * harness.c - the plugin test harness: the real core on a socketpair
 *
 * The server side is a struct server set up without listeners on a
 * private libev loop; the session is accepted from one end of an
 * AF_UNIX socketpair with a fake peer address, and the harness is the
 * client on the other end.  Each call writes, then runs the loop until a
 * complete reply is read.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "data_stream.h"
#include "server.h"
#include "session.h"
#include "sh_harness.h"
#include "tx.h"
#include "util.h"

#define HARNESS_MAX_OPTS 32
#define HARNESS_REPLY_MAX 8192
#define HARNESS_TRACE_MAX (24 * 1024)
/* Decoded message octets kept for the final head: more than a header
 * section can be (1 MiB and one field), so every range part is inside. */
#define HARNESS_MSG_MAX (4 * 1024 * 1024)

struct sh_harness {
	struct config cfg;
	struct server srv;
	int setup, started;
	char *opts[HARNESS_MAX_OPTS + 1];
	int nopts;
	int fd;				/* client end; -1 when none */
	char inbuf[HARNESS_REPLY_MAX];
	size_t inlen;
	char reply[HARNESS_REPLY_MAX];
	int code;
	int closed;
	int wclosed;			/* a write failed: the server is gone */
	double timeout;
	char trace[HARNESS_TRACE_MAX];
	int accepted;
	/* The message sh_harness_body() sent, as the server decoded it
	 * (dot-unstuffed, --bare-lf applied): the bytes range parts of the
	 * final head refer to.  Valid until the transaction ends. */
	unsigned char *msg;
	size_t msg_len;
	int msg_valid;
	/* The last transaction that ended: final head and envelope. */
	char *head;			/* NULL: not known */
	size_t head_len;
	int head_edited;
	char *envelope;			/* "MAIL FROM:<..> ..\r\nRCPT TO:.." */
	char *addrs;			/* sender\0rcpt\0rcpt\0 */
	size_t *rcpt_off;		/* into addrs */
	size_t nrcpts;
	int have_sender;
	char error[1024];
	unsigned long invoked;		/* watcher callbacks run (pump) */
	sh_harness_reply_fn reply_fn;
	void *reply_arg;
	/* What the last reply answered, for sh_harness_expect(). */
	const char *last_hook;		/* "rcpt", ...; NULL: nothing sent */
	char last_step[160];		/* the command line, "message body" */
	int failures;			/* failed expectations */
};

/* harness_invoke - the loop's invoke-pending step, counted: a loop turn
 * that invokes nothing is how sh_harness_pump() knows the server is idle */
static void
harness_invoke(struct ev_loop *loop)
{
	struct server *srv = ev_userdata(loop);
	sh_harness *h = (sh_harness *)(void *)((char *)srv -
	    offsetof(struct sh_harness, srv));

	h->invoked += ev_pending_count(loop);
	ev_invoke_pending(loop);
}

/* record_head - the final header section of tx, from its parts: text
 * as the host holds it, ranges from the decoded message; NULL when a
 * range lies outside what was recorded (a message sent otherwise) */
static void
record_head(sh_harness *h, struct tx *tx)
{
	sh_head_part p;
	size_t i, total = 0;

	free(h->head);
	h->head = NULL;
	h->head_len = 0;
	h->head_edited = tx->info.head_edited;
	for (i = 0; tx_head_part(tx, i, &p) == 0; i++) {
		if (p.text == NULL && (!h->msg_valid || p.offset > h->msg_len ||
		    p.len > h->msg_len - p.offset))
			return;
		total += p.len;
	}
	if ((h->head = malloc(total + 1)) == NULL)
		return;
	for (i = 0; tx_head_part(tx, i, &p) == 0; i++) {
		memcpy(h->head + h->head_len, p.text != NULL ? (const void *)p.text :
		    (const void *)(h->msg + p.offset), p.len);
		h->head_len += p.len;
	}
	h->head[h->head_len] = '\0';
}

/* put_address - "<pre><address>[ KEY[=VALUE]...]\r\n" at out + *n, of
 * size octets (out NULL: only counted) */
static void
put_address(char *out, size_t size, size_t *n, const char *pre,
    const sh_address *a)
{
	size_t i;
	int k;

	k = snprintf(out != NULL ? out + *n : NULL, out != NULL ? size - *n : 0,
	    "%s<%s>", pre, a->address);
	*n += k > 0 ? (size_t)k : 0;
	for (i = 0; i < a->nparams; i++) {
		const sh_param *pa = &a->params[i];

		k = snprintf(out != NULL ? out + *n : NULL, out != NULL ? size - *n : 0,
		    " %s%s%s", pa->key, pa->value != NULL ? "=" : "",
		    pa->value != NULL ? pa->value : "");
		*n += k > 0 ? (size_t)k : 0;
	}
	if (out != NULL)
		memcpy(out + *n, "\r\n", 3);
	*n += 2;
}

/* record_envelope - the final sender and recipients of tx */
static void
record_envelope(sh_harness *h, struct tx *tx)
{
	size_t i, n = 0, an = 0, size;

	free(h->envelope);
	free(h->addrs);
	free(h->rcpt_off);
	h->envelope = h->addrs = NULL;
	h->rcpt_off = NULL;
	h->nrcpts = 0;
	h->have_sender = 0;
	if (tx->sender == NULL)
		return;
	put_address(NULL, 0, &n, "MAIL FROM:", tx->sender);
	an = strlen(tx->sender->address) + 1;
	for (i = 0; i < tx->nrcpts; i++) {
		put_address(NULL, 0, &n, "RCPT TO:", tx->rcpts[i]);
		an += strlen(tx->rcpts[i]->address) + 1;
	}
	h->envelope = malloc(n + 1);
	h->addrs = malloc(an);
	h->rcpt_off = calloc(tx->nrcpts + 1, sizeof(size_t));
	if (h->envelope == NULL || h->addrs == NULL || h->rcpt_off == NULL) {
		free(h->envelope);
		free(h->addrs);
		free(h->rcpt_off);
		h->envelope = h->addrs = NULL;
		h->rcpt_off = NULL;
		return;
	}
	size = n + 1;
	n = 0;
	put_address(h->envelope, size, &n, "MAIL FROM:", tx->sender);
	an = strlen(tx->sender->address) + 1;
	memcpy(h->addrs, tx->sender->address, an);
	for (i = 0; i < tx->nrcpts; i++) {
		size_t l = strlen(tx->rcpts[i]->address) + 1;

		put_address(h->envelope, size, &n, "RCPT TO:", tx->rcpts[i]);
		h->rcpt_off[i] = an;
		memcpy(h->addrs + an, tx->rcpts[i]->address, l);
		an += l;
	}
	h->nrcpts = tx->nrcpts;
	h->have_sender = 1;
}

/* harness_observe - keep the trace block, the final head and envelope
 * of each ending transaction */
static void
harness_observe(void *arg, struct session *s, int accepted)
{
	sh_harness *h = arg;
	struct tx *tx = s->tx;
	size_t n = tx->trace_len < sizeof(h->trace) - 1 ? tx->trace_len :
	    sizeof(h->trace) - 1;

	if (tx->trace != NULL)
		memcpy(h->trace, tx->trace, n);
	else
		n = 0;
	h->trace[n] = '\0';
	h->accepted = accepted;
	record_head(h, tx);
	record_envelope(h, tx);
	/* The recorded message was this transaction's. */
	h->msg_valid = 0;
}

/* record_message - decode the DATA stream wire[0..wl) as the server does
 * (the same decoder, the same --bare-lf policy) and keep the first
 * HARNESS_MSG_MAX octets: the message range parts refer to */
static int
record_message(sh_harness *h, unsigned char *wire, size_t wl)
{
	struct data_decoder d;
	unsigned char piece[2 * 16384];
	size_t off = 0, used, outlen;
	enum data_status st = DATA_MORE;

	h->msg_valid = 0;
	h->msg_len = 0;
	if (h->msg == NULL && (h->msg = malloc(HARNESS_MSG_MAX)) == NULL)
		return -1;
	data_decoder_init(&d, h->cfg.bare_lf);
	while (st != DATA_END && off < wl) {
		size_t in = wl - off < sizeof(piece) / 2 ? wl - off :
		    sizeof(piece) / 2;

		st = data_decode(&d, wire + off, in, piece, sizeof(piece), &used,
		    &outlen);
		if (outlen > HARNESS_MSG_MAX - h->msg_len)
			outlen = HARNESS_MSG_MAX - h->msg_len;
		memcpy(h->msg + h->msg_len, piece, outlen);
		h->msg_len += outlen;
		if (used == 0 && st != DATA_END)
			break;
		off += used;
	}
	h->msg_valid = 1;
	return 0;
}

sh_harness *
sh_harness_new(void)
{
	sh_harness *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->fd = -1;
	h->timeout = 10;
	h->opts[h->nopts++] = strdup("smtphook-harness");
	h->opts[h->nopts++] = strdup("--hostname=harness.invalid");
	if (h->opts[0] == NULL || h->opts[1] == NULL) {
		free(h->opts[0]);
		free(h->opts[1]);
		free(h);
		return NULL;
	}
	return h;
}

/* harness_setup - parse options and set the core up, once */
static int
harness_setup(sh_harness *h)
{
	if (h->setup)
		return 0;
	config_defaults(&h->cfg);
	if (config_parse(&h->cfg, h->nopts, h->opts, h->error,
	    sizeof(h->error)) != CONFIG_OK)
		return -1;
	if (server_setup(&h->srv, &h->cfg, ev_loop_new(EVFLAG_AUTO), h->error,
	    sizeof(h->error)) < 0)
		return -1;
	h->srv.tx_observer = harness_observe;
	h->srv.tx_observer_arg = h;
	ev_set_invoke_pending_cb(h->srv.loop, harness_invoke);
	h->setup = 1;
	return 0;
}

int
sh_harness_option(sh_harness *h, const char *name, const char *value)
{
	char *opt;
	size_t n;

	if (h->setup || h->nopts >= HARNESS_MAX_OPTS) {
		snprintf(h->error, sizeof(h->error), "options go before the first plugin");
		return -1;
	}
	n = strlen(name) + (value != NULL ? strlen(value) : 0) + 4;
	if ((opt = malloc(n)) == NULL)
		return -1;
	snprintf(opt, n, "--%s%s%s", name, value != NULL ? "=" : "",
	    value != NULL ? value : "");
	h->opts[h->nopts++] = opt;
	return 0;
}

/* harness_find - dir/NAME.so into path when that file exists (0), else -1 */
static int
harness_find(const char *dir, size_t dlen, const char *name, size_t nlen,
    char *path, size_t size)
{
	struct stat st;
	int n;
	const char *suffix = nlen > 3 && memcmp(name + nlen - 3, ".so", 3) == 0 ?
	    "" : ".so";

	if (dlen == 0)
		return -1;
	n = snprintf(path, size, "%.*s/%.*s%s", (int)dlen, dir, (int)nlen, name,
	    suffix);
	if (n < 0 || (size_t)n >= size || stat(path, &st) < 0)
		return -1;
	return 0;
}

/*
 * harness_resolve - the path for a bare NAME of spec (no '/' before the
 * first ':') when the daemon's own lookup would not see it: the
 * directories of $SMTPHOOK_PLUGIN_DIR (':'-separated, as PATH), then
 * the smtphook/ directory next to the shared harness library (an
 * installed libdir).  0 and path (of size) filled, or -1: leave the
 * NAME to the core (--plugin-dir, the directory the core was built for).
 */
static int
harness_resolve(const sh_harness *h, const char *spec, char *path, size_t size)
{
	const char *colon = strchr(spec, ':'), *env, *dir, *end;
	size_t nlen = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
	Dl_info info;

	if (h->cfg.plugin_dir != NULL || nlen == 0 || memchr(spec, '/', nlen) != NULL)
		return -1;
	if ((env = getenv("SMTPHOOK_PLUGIN_DIR")) != NULL) {
		for (dir = env; ; dir = end + 1) {
			end = strchr(dir, ':');
			if (end == NULL)
				end = dir + strlen(dir);
			if (harness_find(dir, (size_t)(end - dir), spec, nlen, path,
			    size) == 0)
				return 0;
			if (*end == '\0')
				break;
		}
	}
	if (dladdr((const void *)&sh_harness_load, &info) != 0 &&
	    info.dli_fname != NULL && (end = strrchr(info.dli_fname, '/')) != NULL &&
	    strstr(end, "libsmtphook-harness.so") == end + 1) {
		char libdir[PATH_MAX];
		int n = snprintf(libdir, sizeof(libdir), "%.*s/smtphook",
		    (int)(end - info.dli_fname), info.dli_fname);

		if (n > 0 && (size_t)n < sizeof(libdir) &&
		    harness_find(libdir, (size_t)n, spec, nlen, path, size) == 0)
			return 0;
	}
	return -1;
}

int
sh_harness_load(sh_harness *h, const char *spec)
{
	char path[PATH_MAX + 64], *full = NULL;
	const char *colon;
	int rc;

	if (harness_setup(h) < 0)
		return -1;
	if (harness_resolve(h, spec, path, sizeof(path)) == 0) {
		colon = strchr(spec, ':');
		if (asprintf(&full, "%s%s", path, colon != NULL ? colon : "") < 0)
			return -1;
		spec = full;
	}
	rc = server_add_plugin(&h->srv, spec, NULL, NULL, h->error,
	    sizeof(h->error));
	free(full);
	if (rc < 0 && strstr(h->error, "no such plugin") != NULL &&
	    strlen(h->error) + 80 < sizeof(h->error))
		strcat(h->error, getenv("SMTPHOOK_PLUGIN_DIR") != NULL ?
		    " nor in $SMTPHOOK_PLUGIN_DIR" :
		    "; set SMTPHOOK_PLUGIN_DIR or the plugin-dir option");
	return rc;
}

int
sh_harness_add(sh_harness *h, const sh_plugin *plugin, const char *args)
{
	if (harness_setup(h) < 0)
		return -1;
	return server_add_plugin(&h->srv, NULL, plugin, args, h->error,
	    sizeof(h->error));
}

int
sh_harness_start(sh_harness *h)
{
	if (harness_setup(h) < 0)
		return -1;
	if (server_plugins_init(&h->srv, h->error, sizeof(h->error)) < 0)
		return -1;
	h->started = 1;
	return 0;
}

const char *
sh_harness_error(const sh_harness *h)
{
	return h->error;
}

void
sh_harness_timeout(sh_harness *h, double seconds)
{
	h->timeout = seconds;
}

/* harness_pump - one loop turn, then read what the server sent */
static void
harness_pump(sh_harness *h)
{
	ssize_t n;

	ev_run(h->srv.loop, EVRUN_NOWAIT);
	if (h->fd < 0 || h->closed)
		return;
	n = recv(h->fd, h->inbuf + h->inlen, sizeof(h->inbuf) - 1 - h->inlen,
	    MSG_DONTWAIT);
	if (n > 0)
		h->inlen += (size_t)n;
	else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		h->closed = 1;
	if (h->inlen == sizeof(h->inbuf) - 1)
		h->closed = 1;	/* a reply that big is a failure anyway */
}

/* harness_take_reply - a complete (multi-line) reply from inbuf, or 0 */
static int
harness_take_reply(sh_harness *h)
{
	size_t off = 0;

	while (off < h->inlen) {
		char *eol = memchr(h->inbuf + off, '\n', h->inlen - off);
		size_t linelen;

		if (eol == NULL)
			return 0;
		linelen = (size_t)(eol - (h->inbuf + off)) + 1;
		if (linelen < 5 || h->inbuf[off + 3] != '-') {
			size_t total = off + linelen, rl = total;

			while (rl > 0 && (h->inbuf[rl - 1] == '\n' || h->inbuf[rl - 1] == '\r'))
				rl--;
			memcpy(h->reply, h->inbuf, rl);
			h->reply[rl] = '\0';
			h->code = atoi(h->reply);
			memmove(h->inbuf, h->inbuf + total, h->inlen - total);
			h->inlen -= total;
			if (h->reply_fn != NULL)
				h->reply_fn(h->reply_arg, h->code, h->reply);
			return 1;
		}
		off += linelen;
	}
	return 0;
}

/* harness_wait_reply - run the loop until a reply or the timeout */
static int
harness_wait_reply(sh_harness *h)
{
	double deadline = monotonic_now() + h->timeout;

	h->code = -1;
	h->reply[0] = '\0';
	while (!harness_take_reply(h)) {
		unsigned long invoked = h->invoked;

		if (h->closed || monotonic_now() > deadline)
			return -1;
		harness_pump(h);
		if (h->inlen == 0 || memchr(h->inbuf, '\n', h->inlen) == NULL) {
			struct timespec ts = { 0, 200000 };
			/* Let pool threads and timers make progress; sleep
			 * only when the loop had nothing to do. */
			ev_run(h->srv.loop, EVRUN_NOWAIT);
			if (h->invoked == invoked)
				nanosleep(&ts, NULL);
		}
	}
	return h->code;
}

int
sh_harness_connect(sh_harness *h, const char *peer_ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	uint8_t key[16];
	int fds[2];

	if (!h->started && sh_harness_start(h) < 0)
		return -1;
	if (h->fd >= 0)
		sh_harness_disconnect(h);
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, peer_ip, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(40000);
		len = sizeof(*in);
	} else if (inet_pton(AF_INET6, peer_ip, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(40000);
		len = sizeof(*in6);
	} else {
		snprintf(h->error, sizeof(h->error), "bad peer address '%s'", peer_ip);
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) {
		snprintf(h->error, sizeof(h->error), "socketpair: %s", strerror(errno));
		return -1;
	}
	h->fd = fds[1];
	h->closed = h->wclosed = 0;
	h->inlen = 0;
	/* As the listener does: the session's end takes it off again. */
	sockaddr_key((struct sockaddr *)&ss, key);
	addrcount_add(&h->srv.per_ip, key, 1);
	h->last_hook = "connect";
	snprintf(h->last_step, sizeof(h->last_step), "connect from %s", peer_ip);
	session_accept(&h->srv, fds[0], (struct sockaddr *)&ss, len);
	return harness_wait_reply(h);
}

int
sh_harness_send(sh_harness *h, const void *data, size_t len, int want_reply)
{
	const char *p = data;

	while (len > 0 && !h->closed) {
		ssize_t n = send(h->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* The server reads only while it runs. */
			harness_pump(h);
		} else if (n < 0 && errno != EINTR) {
			h->closed = 1;
			return -1;
		}
	}
	if (!want_reply) {
		harness_pump(h);
		return 0;
	}
	return harness_wait_reply(h);
}

/* harness_verb_is - does line start with the 4-letter verb (ASCII case
 * ignored), followed by its end or a space? */
static int
harness_verb_is(const char *line, const char *verb)
{
	size_t i;

	for (i = 0; i < 4; i++) {
		char c = line[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c != verb[i])
			return 0;
	}
	return line[4] == '\0' || line[4] == ' ';
}

/* harness_hook_of - the plugin hook that answers a command line */
static const char *
harness_hook_of(const char *line)
{
	static const struct {
		const char *verb, *hook;
	} map[] = {
		{ "EHLO", "helo" }, { "HELO", "helo" }, { "LHLO", "helo" },
		{ "MAIL", "mail" }, { "RCPT", "rcpt" }, { "DATA", "data" },
		{ "BDAT", "chunk/eom" }, { "AUTH", "auth" }, { "VRFY", "vrfy" },
		{ "EXPN", "expn" }, { "RSET", "reset" }, { "QUIT", "disconnect" },
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (harness_verb_is(line, map[i].verb))
			return map[i].hook;
	return "(no hook: the server's own reply)";
}

int
sh_harness_cmd(sh_harness *h, const char *line)
{
	size_t n = strlen(line);
	char *buf = malloc(n + 3);
	int code;

	if (buf == NULL)
		return -1;
	memcpy(buf, line, n);
	memcpy(buf + n, "\r\n", 3);
	h->last_hook = harness_hook_of(line);
	snprintf(h->last_step, sizeof(h->last_step), "\"%.120s\"", line);
	code = sh_harness_send(h, buf, n + 2, 1);
	free(buf);
	return code;
}

int
sh_harness_body(sh_harness *h, const void *msg, size_t len, size_t chunk)
{
	const unsigned char *m = msg;
	unsigned char *wire, *w;
	size_t i, wl, off;
	int bol = 1, code;

	/* Worst case every octet is a dot at a line start, plus the end. */
	if ((wire = malloc(2 * len + 8)) == NULL)
		return -1;
	w = wire;
	for (i = 0; i < len; i++) {
		if (bol && m[i] == '.')
			*w++ = '.';
		*w++ = m[i];
		bol = m[i] == '\n';
	}
	if (len > 0 && !bol) {
		*w++ = '\r';
		*w++ = '\n';
	}
	memcpy(w, ".\r\n", 3);
	w += 3;
	wl = (size_t)(w - wire);
	/* Before it is sent: the transaction ends while the reply is read. */
	if (record_message(h, wire, wl) < 0) {
		free(wire);
		return -1;
	}
	h->last_hook = "eom";
	snprintf(h->last_step, sizeof(h->last_step), "message body (%zu octets)",
	    len);
	if (chunk == 0)
		chunk = wl;
	for (off = 0; off + chunk < wl; off += chunk)
		if (sh_harness_send(h, wire + off, chunk, 0) < 0) {
			free(wire);
			return -1;
		}
	code = sh_harness_send(h, wire + off, wl - off, 1);
	free(wire);
	return code;
}

int
sh_harness_message(sh_harness *h, const char *from, const char *const *rcpts,
    const char *msg)
{
	char line[1024];
	int code;
	size_t i;

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
	return sh_harness_body(h, msg, strlen(msg), 0);
}

void
sh_harness_run(sh_harness *h, double seconds)
{
	double deadline = monotonic_now() + seconds;

	while (monotonic_now() < deadline) {
		struct timespec ts = { 0, 1000000 };

		harness_pump(h);
		nanosleep(&ts, NULL);
	}
}

ssize_t
sh_harness_write(sh_harness *h, const void *data, size_t len)
{
	ssize_t n;

	if (h->fd < 0 || h->closed || h->wclosed)
		return -1;
	if (len == 0)
		return 0;
	n = send(h->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	/* The server closed; what it sent before can still be read. */
	h->wclosed = 1;
	return -1;
}

int
sh_harness_pump(sh_harness *h)
{
	int replies = 0;
	unsigned turns;

	if (!h->setup)
		return -1;
	/* Bounded, in case a watcher re-arms itself forever. */
	for (turns = 0; turns < 100000; turns++) {
		unsigned long invoked = h->invoked;
		size_t inlen = h->inlen;
		int closed = h->closed;

		harness_pump(h);
		while (harness_take_reply(h))
			replies++;
		if (h->invoked == invoked && h->inlen == inlen &&
		    h->closed == closed)
			break;
	}
	return h->closed && replies == 0 ? -1 : replies;
}

void
sh_harness_step(sh_harness *h)
{
	if (h->setup)
		ev_run(h->srv.loop, EVRUN_NOWAIT);
}

int
sh_harness_expire(sh_harness *h)
{
	struct session *s;
	int n = 0;

	if (!h->setup)
		return 0;
	for (s = h->srv.session_list; s != NULL; s = s->next) {
		/* Stopped, then fed: the callback runs once, on the next
		 * turn, exactly as when the timer expires. */
		if (ev_is_active(&s->auth_delay)) {
			ev_timer_stop(h->srv.loop, &s->auth_delay);
			ev_feed_event(h->srv.loop, &s->auth_delay, EV_TIMER);
			n++;
		}
		if (s->chain.pend != NULL && ev_is_active(&s->chain.pend->timeout)) {
			ev_timer_stop(h->srv.loop, &s->chain.pend->timeout);
			ev_feed_event(h->srv.loop, &s->chain.pend->timeout, EV_TIMER);
			n++;
		}
	}
	return n;
}

void
sh_harness_on_reply(sh_harness *h, sh_harness_reply_fn fn, void *arg)
{
	h->reply_fn = fn;
	h->reply_arg = arg;
}

void
sh_harness_disconnect(sh_harness *h)
{
	double deadline;

	if (h->fd < 0)
		return;
	close(h->fd);
	h->fd = -1;
	/* Let the server notice, run its hooks and free the session: at
	 * once when it can, else for up to the timeout. */
	if (h->setup)
		sh_harness_pump(h);
	deadline = monotonic_now() + h->timeout;
	while (h->srv.nsessions > 0 && monotonic_now() < deadline) {
		struct timespec ts = { 0, 200000 };

		ev_run(h->srv.loop, EVRUN_NOWAIT);
		nanosleep(&ts, NULL);
	}
}

void
sh_harness_free(sh_harness *h)
{
	int i;

	if (h == NULL)
		return;
	if (h->setup) {
		sh_harness_disconnect(h);
		server_destroy(&h->srv);
		config_free(&h->cfg);
	}
	for (i = 0; i < h->nopts; i++)
		free(h->opts[i]);
	free(h->msg);
	free(h->head);
	free(h->envelope);
	free(h->addrs);
	free(h->rcpt_off);
	free(h);
}

int
sh_harness_code(const sh_harness *h)
{
	return h->code;
}

const char *
sh_harness_reply(const sh_harness *h)
{
	return h->reply;
}

const char *
sh_harness_trace(const sh_harness *h)
{
	return h->trace;
}

const char *
sh_harness_head(const sh_harness *h, size_t *len)
{
	if (len != NULL)
		*len = h->head != NULL ? h->head_len : 0;
	return h->head;
}

int
sh_harness_head_edited(const sh_harness *h)
{
	return h->head_edited;
}

const char *
sh_harness_envelope(const sh_harness *h)
{
	return h->envelope != NULL ? h->envelope : "";
}

const char *
sh_harness_sender(const sh_harness *h)
{
	return h->have_sender ? h->addrs : NULL;
}

const char *
sh_harness_rcpt(const sh_harness *h, size_t index)
{
	return h->have_sender && index < h->nrcpts ? h->addrs + h->rcpt_off[index] :
	    NULL;
}

int
sh_harness_accepted(const sh_harness *h)
{
	return h->accepted;
}

int
sh_harness_closed(const sh_harness *h)
{
	return h->closed;
}

/* harness_verdict_of - the verdict a reply code stands for */
static const char *
harness_verdict_of(int code)
{
	if (code < 0)
		return "no reply: timeout or connection closed";
	if (code == 421)
		return "DISCONNECT (or the server closing)";
	if (code >= 200 && code < 400)
		return "CONTINUE or ACCEPT";
	if (code >= 400 && code < 500)
		return "TEMPFAIL";
	if (code >= 500 && code < 600)
		return "REJECT";
	return "not an SMTP reply";
}

/* harness_check - compare a step's reply code got (and the reply text)
 * with what the test expects; on a difference say which hook answered
 * what, on stderr, and count the failure */
static int
harness_check(sh_harness *h, const char *file, int lineno, int got, int code,
    const char *text)
{
	if (got == code && (text == NULL || strstr(h->reply, text) != NULL))
		return 0;
	h->failures++;
	fprintf(stderr, "%s:%d: %s hook, after %s:\n"
	    "    expected %d %s%s%s%s\n"
	    "    got      %d %s: \"%s\"\n",
	    file, lineno, h->last_hook != NULL ? h->last_hook : "(no step yet)",
	    h->last_step[0] != '\0' ? h->last_step : "nothing",
	    code, harness_verdict_of(code), text != NULL ? ", reply containing \"" : "",
	    text != NULL ? text : "", text != NULL ? "\"" : "",
	    got, harness_verdict_of(got), got >= 0 ? h->reply : h->closed ?
	    "(connection closed)" : "(no reply within the harness timeout)");
	return -1;
}

int
sh_harness_expect_at(sh_harness *h, const char *file, int lineno,
    const char *cmd, int code, const char *text)
{
	return harness_check(h, file, lineno, cmd != NULL ? sh_harness_cmd(h, cmd) :
	    h->code, code, text);
}

int
sh_harness_expect_body_at(sh_harness *h, const char *file, int lineno,
    const char *msg, int code, const char *text)
{
	return harness_check(h, file, lineno, sh_harness_body(h, msg, strlen(msg),
	    0), code, text);
}

int
sh_harness_failures(const sh_harness *h)
{
	return h->failures;
}
