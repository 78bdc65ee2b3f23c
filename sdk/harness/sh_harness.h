/*
 * sh_harness.h - test harness for smtphook plugins
 *
 * SYNOPSIS
 *	sh_harness *h = sh_harness_new();
 *	sh_harness_load(h, "build/plugins/policy.so:rcpt_domains=example.org");
 *	sh_harness_load(h, "sink");
 *	if (sh_harness_start(h) < 0) fail(sh_harness_error(h));
 *	sh_harness_connect(h, "192.0.2.7");           -> 220
 *	sh_harness_cmd(h, "EHLO client.example");     -> 250
 *	sh_harness_cmd(h, "MAIL FROM:<a@example.net>");
 *	sh_harness_cmd(h, "RCPT TO:<b@example.org>");  -> 250
 *	sh_harness_cmd(h, "DATA");                     -> 354
 *	sh_harness_body(h, msg, len, 7);               -> 250 (sent in 7-octet writes)
 *	sh_harness_free(h);
 *
 * DESCRIPTION
 *	The harness runs the real smtphook core - the same session state
 *	machine, verdict chain, plugin loader and host API as smtphookd -
 *	in the calling process, with the client on the other end of a
 *	socketpair: no network, no ports, no daemon to start.  Plugins are
 *	loaded exactly as with -p (a path or a NAME looked up in the plugin
 *	directory, with key=value arguments), or linked in as a descriptor.
 *	PENDING verdicts, libev timers and pool jobs work: every call runs
 *	the loop until the reply arrives (or the harness timeout passes).
 *
 *	Every call that sends returns the reply code (or -1 on a timeout or
 *	a closed connection); sh_harness_reply() gives the whole last reply
 *	as the server sent it, sh_harness_trace() the header block a storing
 *	plugin saw at the last transaction's end (Received: and the headers
 *	plugins added), sh_harness_head() and sh_harness_envelope() the final
 *	header section and envelope after the plugins' edits at eom.
 *	Functions are for one thread; one session at a time.
 *
 * FINDING PLUGINS
 *	sh_harness_load() takes a PATH (anything with a '/': "./mine.so",
 *	"build/mine.so") or a bare NAME ("sink", "mine.so").  A NAME is
 *	looked up in the plugin-dir option when one was set with
 *	sh_harness_option(h, "plugin-dir", DIR); otherwise in the
 *	directories of the environment variable SMTPHOOK_PLUGIN_DIR
 *	(':'-separated, as PATH), then in smtphook/ beside the shared
 *	libsmtphook-harness.so (an installed libdir), then where smtphookd
 *	would look (the installed plugin directory the SDK was built for).
 *	Out of tree, take the directory from the SDK:
 *	    pkg-config --variable=plugindir smtphook	(make)
 *	    ${SMTPHOOK_PLUGIN_DIR}			(find_package(smtphook))
 *	The error of a NAME that is not found lists where it looked.
 *
 * CHECKING REPLIES
 *	sh_harness_expect(h, "RCPT TO:<a@b.example>", 550, "5.7.1") sends
 *	the command and compares the reply; on a difference it prints, on
 *	stderr, the file and line, the hook that answered, the expected and
 *	the actual code with the verdict it stands for, and the reply:
 *	    test_mine.c:31: rcpt hook, after "RCPT TO:<a@b.example>":
 *	        expected 550 REJECT, reply containing "5.7.1"
 *	        got      250 CONTINUE or ACCEPT: "250 2.1.5 Ok"
 *	and counts the failure (sh_harness_failures()), so a test can run
 *	every step and exit with the count.
 *
 * C++
 *	The header compiles as C11 (-std=c11 -pedantic) and as C++; its
 *	functions have C linkage.
 */
#ifndef SH_HARNESS_H
#define SH_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include "smtphook.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sh_harness sh_harness;

/* sh_harness_new - an empty harness (NULL: out of memory) */
sh_harness *sh_harness_new(void);
/* sh_harness_free - end the session, fini the plugins, free everything */
void sh_harness_free(sh_harness *h);
/* sh_harness_option - a daemon option before start, e.g.
 * ("max-size", "1000"), ("bare-lf", "normalize"), ("no-pipelining", NULL) */
int sh_harness_option(sh_harness *h, const char *name, const char *value);
/* sh_harness_load - add a plugin by -p SPEC (PATH-or-NAME[:k=v,...]) */
int sh_harness_load(sh_harness *h, const char *spec);
/* sh_harness_add - add a linked-in plugin with "k=v,..." arguments */
int sh_harness_add(sh_harness *h, const sh_plugin *plugin, const char *args);
/* sh_harness_start - init the plugins in order; 0, or -1 (see _error) */
int sh_harness_start(sh_harness *h);
/* sh_harness_error - the last one-line error */
const char *sh_harness_error(const sh_harness *h);
/* sh_harness_timeout - seconds a call waits for a reply (default 10) */
void sh_harness_timeout(sh_harness *h, double seconds);

/* sh_harness_connect - open a session from peer_ip (numeric v4 or v6);
 * returns the greeting's code */
int sh_harness_connect(sh_harness *h, const char *peer_ip);
/* sh_harness_cmd - send one command line (CRLF added); the reply code */
int sh_harness_cmd(sh_harness *h, const char *line);
/* sh_harness_send - send raw octets; then read one reply if want_reply */
int sh_harness_send(sh_harness *h, const void *data, size_t len, int want_reply);
/*
 * sh_harness_body - after DATA's 354: send msg dot-stuffed, in writes of
 * chunk octets (0: all at once), then the end marker; returns the final
 * reply code.  msg should end in CRLF (one is added otherwise).
 */
int sh_harness_body(sh_harness *h, const void *msg, size_t len, size_t chunk);
/* sh_harness_message - MAIL, RCPT for each of rcpts (NULL-terminated),
 * DATA, body: returns the final code, or the first failing code */
int sh_harness_message(sh_harness *h, const char *from, const char *const *rcpts,
    const char *msg);
/* sh_harness_disconnect - close the client side and let the server see it */
void sh_harness_disconnect(sh_harness *h);
/* sh_harness_run - run the loop for the given seconds (timers, jobs) */
void sh_harness_run(sh_harness *h, double seconds);

/*
 * Non-blocking driving (fuzzers, tests that interleave by hand).  None of
 * these sleeps or waits for the clock:
 *
 * sh_harness_write - send what the socket takes of data now; returns the
 *	octets taken (0 when the server is not reading and the socket is
 *	full), or -1 once the server has closed the connection (its last
 *	replies can still be read by a pump).  Reads no reply.
 * sh_harness_pump - run the loop and read replies until a loop turn
 *	invokes no watcher and brings no octet: the server has done all it
 *	can with the input so far.  Timers that are not due yet (an AUTH
 *	failure's delay, a pending verdict's timeout, the idle timeout) and
 *	pool jobs still running on their threads are not waited for.
 *	Returns the number of complete replies read (see _on_reply), or -1
 *	once the server has closed the connection and nothing is left.
 * sh_harness_step - one loop turn, no waiting and no reading: the server
 *	takes in what has arrived and answers it (the replies wait in the
 *	socket for the next call that reads).  Cheaper than a pump when
 *	input is fed in many small pieces.
 * sh_harness_expire - make the session's waiting timers fire now, as if
 *	their time had passed: the held-back reply of a failed AUTH and a
 *	pending verdict's timeout (the plugin's on_timeout= verdict).  Call
 *	sh_harness_pump() afterwards to let them run.  Returns how many.
 * sh_harness_on_reply - fn(arg, code, reply) for every complete reply
 *	read from now on, by any call (reply as sh_harness_reply() gives it).
 *
 * With sh_harness_timeout(h, 0), sh_harness_disconnect() and
 * sh_harness_free() never wait either: a session that does not end when
 * the client goes away is closed by force.
 */
ssize_t sh_harness_write(sh_harness *h, const void *data, size_t len);
int sh_harness_pump(sh_harness *h);
void sh_harness_step(sh_harness *h);
int sh_harness_expire(sh_harness *h);
typedef void (*sh_harness_reply_fn)(void *arg, int code, const char *reply);
void sh_harness_on_reply(sh_harness *h, sh_harness_reply_fn fn, void *arg);

/* sh_harness_code / _reply - the last reply: code, and its raw lines
 * without the final CRLF ("550 5.7.1 No\r\n..." for multi-line) */
int sh_harness_code(const sh_harness *h);
const char *sh_harness_reply(const sh_harness *h);
/* sh_harness_trace - trace block of the last transaction that ended
 * (Received: + added headers, CRLF-terminated lines), "" if none */
const char *sh_harness_trace(const sh_harness *h);
/*
 * The final message of the last transaction that ended, after every
 * plugin's edits at eom (smtphook.h MESSAGE EDITS):
 *
 * sh_harness_head - its final header section as a storing plugin writes
 *	it from sh_tx_head_part(): the trace block, the fields in their
 *	final order (unchanged ones byte for byte as sent, folding and all),
 *	the empty line; the body would follow unchanged.  *len (may be NULL)
 *	gets its length (a header may hold a NUL).  The range parts are
 *	taken from the message sh_harness_body() sent, decoded as the server
 *	decodes it; NULL when the message came otherwise (raw octets through
 *	sh_harness_send(), BDAT) and the head has range parts, or no
 *	transaction ended yet.
 * sh_harness_head_edited - sh_tx_info.head_edited at its end: a plugin
 *	inserted, changed or removed a field.
 * sh_harness_envelope - the final envelope as text, one CRLF-terminated
 *	line each: "MAIL FROM:<sender> KEY=VALUE ...", then "RCPT TO:<rcpt>
 *	KEY=VALUE ..." per recipient in order (parameter keys upper-cased,
 *	as plugins see them); "" when no transaction ended yet.
 * sh_harness_sender - the final sender address ("" for <>), NULL when none
 * sh_harness_rcpt - the index-th final recipient's address, NULL past the
 *	last
 */
const char *sh_harness_head(const sh_harness *h, size_t *len);
int sh_harness_head_edited(const sh_harness *h);
const char *sh_harness_envelope(const sh_harness *h);
const char *sh_harness_sender(const sh_harness *h);
const char *sh_harness_rcpt(const sh_harness *h, size_t index);
/* sh_harness_accepted - did the last transaction end accepted (2xx)? */
int sh_harness_accepted(const sh_harness *h);
/* sh_harness_closed - has the server closed the connection? */
int sh_harness_closed(const sh_harness *h);

/*
 * Expectations (CHECKING REPLIES above).  Each returns 0 when the reply
 * matches, else -1 after printing what differs and counting it.
 *
 * sh_harness_expect(h, cmd, code, text) - send cmd (NULL: send nothing,
 *	check the last reply, e.g. the greeting after sh_harness_connect())
 *	and expect code and, unless text is NULL, a reply containing text.
 * sh_harness_expect_body(h, msg, code, text) - after DATA's 354: send
 *	msg (a NUL-terminated message, as sh_harness_body() sends it) and
 *	expect the final reply (the eom hook's).
 * sh_harness_failures - how many expectations failed so far.
 */
#define sh_harness_expect(h, cmd, code, text)				\
	sh_harness_expect_at((h), __FILE__, __LINE__, (cmd), (code), (text))
#define sh_harness_expect_body(h, msg, code, text)			\
	sh_harness_expect_body_at((h), __FILE__, __LINE__, (msg), (code), (text))
int sh_harness_expect_at(sh_harness *h, const char *file, int line,
    const char *cmd, int code, const char *text);
int sh_harness_expect_body_at(sh_harness *h, const char *file, int line,
    const char *msg, int code, const char *text);
int sh_harness_failures(const sh_harness *h);

#ifdef __cplusplus
}
#endif

#endif
