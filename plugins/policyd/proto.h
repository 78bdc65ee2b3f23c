/*
 * proto.h - Postfix policy delegation protocol (SMTPD_POLICY_README),
 * without I/O: build a request, find and parse a reply, and map its
 * access(5) action onto a decision
 *
 * SYNOPSIS
 *	struct pd_attr a[] = { { "request", "smtpd_access_policy", PD_CSTR }, ... };
 *	n = pd_request_build(a, na, buf, sizeof(buf));
 *
 *	if (pd_reply_end(in, inlen, &end) == 1)
 *		pd_reply_parse(in, end, &decision);
 *
 * DESCRIPTION
 *	A request is "name=value\n" lines ending with an empty line.  Names
 *	are [a-z0-9_]+; a CR, LF or NUL in a value is replaced by '?' (the
 *	protocol cannot carry them; the count of replaced octets is
 *	returned so the caller may log it).
 *
 *	A reply is "name=value\n" lines ending with an empty line; a CR
 *	before the LF is tolerated.  Only `action` is used (the first one);
 *	other attributes are ignored.  A line without '=' or with an empty
 *	name, a missing action, or an action pd_action_map() does not know
 *	gives PD_USE_DEFAULT: the caller answers with its default_action.
 *
 *	Actions (access(5), case-insensitive), and what they become:
 *	OK			PD_ACCEPT
 *	all-numerical		PD_ACCEPT (access(5): treated as OK), unless
 *				it is a 4NN/5NN code
 *	DUNNO			PD_CONTINUE
 *	REJECT [text]		PD_REJECT 554 5.7.1 (access_map_reject_code)
 *	DEFER [text]		PD_TEMPFAIL 450 4.7.1 (access_map_defer_code)
 *	DEFER_IF_PERMIT [text]	PD_TEMPFAIL 450 4.7.1: approximation - Postfix
 *				defers only when a later restriction would
 *				permit; smtphook cannot ask the plugins after
 *				this one, and "permit later" is the common
 *				case, so it defers at once
 *	DEFER_IF_REJECT [text]	PD_CONTINUE, logged: approximation - Postfix
 *				turns a later reject into 450; here a later
 *				plugin's reject stays a reject
 *	4NN [X.Y.Z] [text]	PD_TEMPFAIL, code NNN (421: PD_DISCONNECT)
 *	5NN [X.Y.Z] [text]	PD_REJECT, code NNN; the enhanced code's class
 *				is made to match the reply code, as Postfix
 *				does; default 4.7.1 / 5.7.1
 *	PREPEND name: value	PD_CONTINUE plus the header in d->header;
 *				a malformed header: logged, PD_CONTINUE
 *	WARN text, INFO text	PD_CONTINUE, logged
 *	HOLD, DISCARD, FILTER, REDIRECT, BCC [args]
 *				PD_CONTINUE, logged (they need a queue)
 *	anything else		PD_USE_DEFAULT
 *	Reply texts default to "Access denied" as in Postfix.
 */
#ifndef SMTPHOOK_POLICYD_PROTO_H
#define SMTPHOOK_POLICYD_PROTO_H

#include <stddef.h>

#define PD_TEXT_MAX 512		/* reply / log text, NUL included */
#define PD_HEADER_MAX 1000	/* "Name: value", NUL included (998 + CRLF) */
#define PD_REPLY_MAX 4096	/* longest reply accepted */
#define PD_ACTION_MAX 24	/* the action word, NUL included */
#define PD_CSTR ((size_t)-1)	/* pd_attr.len: the value is a C string */

struct pd_attr {
	const char *name;
	const char *value;	/* NULL: sent empty */
	size_t len;		/* PD_CSTR: strlen(value) */
};

enum pd_verdict {
	PD_USE_DEFAULT = 0,	/* malformed or unknown: use default_action */
	PD_CONTINUE,
	PD_ACCEPT,
	PD_REJECT,
	PD_TEMPFAIL,
	PD_DISCONNECT,
};

struct pd_decision {
	enum pd_verdict verdict;
	int code;			/* 0 for CONTINUE / ACCEPT */
	char enhanced[16];		/* "" unless code != 0 */
	char text[PD_TEXT_MAX];		/* reply text, or the text to log */
	int log;			/* log this action with its text */
	char header[PD_HEADER_MAX];	/* PREPEND: "Name: value", else "" */
	size_t header_name_len;		/* length of Name */
	char action[PD_ACTION_MAX];	/* the action word, upper-case */
};

/*
 * pd_request_build - the request of n attributes into buf (size octets):
 * returns its length (a NUL follows it), or -1 when it does not fit or
 * a name is not [a-z0-9_]+.  *replaced (may be NULL) counts the octets
 * of values replaced by '?'.
 */
long pd_request_build(const struct pd_attr *a, size_t n, char *buf,
    size_t size, size_t *replaced);

/*
 * pd_reply_end - does buf hold a complete reply?  1 and *end (the octets
 * through its empty line), 0 not yet, -1 when no reply ends within
 * PD_REPLY_MAX octets (garbage: drop the connection).
 */
int pd_reply_end(const char *buf, size_t len, size_t *end);

/* pd_reply_parse - the decision of one complete reply (len octets) */
void pd_reply_parse(const char *buf, size_t len, struct pd_decision *d);

/* pd_action_map - the decision of one action (also for default_action) */
void pd_action_map(const char *action, size_t len, struct pd_decision *d);

/* pd_verdict_name - "DUNNO"-style name of a verdict, for logs */
const char *pd_verdict_name(enum pd_verdict v);

#endif /* SMTPHOOK_POLICYD_PROTO_H */
