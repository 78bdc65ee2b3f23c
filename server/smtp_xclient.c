/*
 * smtp_xclient.c - Postfix's XCLIENT command (XCLIENT_README), --xclient
 *
 * A trusted client (a proxy, a content filter sending mail back, swaks in
 * a test) tells the server who the real client is:
 *
 *	XCLIENT ADDR=192.0.2.7 PORT=4711 HELO=mx.example.org LOGIN=alice
 *	220 mx.example.com ESMTP smtphook
 *
 * Advertised and accepted only for the peers of --xclient (judged on the
 * peer of the connection, or the one its PROXY header named; never on an
 * address XCLIENT itself set); others get 550 5.7.0.  Not inside a mail
 * transaction (503).  Attributes: NAME ADDR PORT PROTO HELO LOGIN DESTADDR
 * DESTPORT REVERSE_NAME, names case-insensitive, values xtext (RFC 3461
 * §4: "+HH" for an octet), [UNAVAILABLE] and [TEMPUNAVAIL] for "not known"
 * (the attribute is cleared, or for an address left as it is).  Either all
 * attributes are valid and applied, or none is (501 5.5.4).  HELO and
 * LOGIN not given are cleared (a new connection has neither); a HELO
 * given is kept through the client's next EHLO, as XCLIENT_README asks.
 *
 * Then, as Postfix does, the session starts over as if the client had
 * just connected from there: the plugins see a disconnect of the old
 * client and a connect of the new one (their connection state is
 * destroyed and begins anew), the per-IP count moves to the new address,
 * and a new 220 greeting is sent; the client says EHLO again.  NAME and
 * REVERSE_NAME are only logged (smtphook does not resolve clients).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chain.h"
#include "log.h"
#include "server.h"
#include "session.h"
#include "smtp_internal.h"

#define XC_VALUE_MAX 255

/* What one XCLIENT command says; set: the attribute was given, unknown:
 * as [UNAVAILABLE] or [TEMPUNAVAIL]. */
struct xc_addr { int set, unknown; struct sockaddr_storage ss; };
struct xc_port { int set, unknown; unsigned port; };
struct xc_text { int set, unknown; char v[XC_VALUE_MAX + 1]; };

struct xclient {
	struct xc_addr addr, dest;
	struct xc_port port, destport;
	struct xc_text helo, login, name, rname;
	int proto_set, esmtp;
};

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;		/* xtext wants upper-case hex */
}

/* xtext_decode - RFC 3461 xtext into out (NUL-terminated); -1 bad */
static int
xtext_decode(const char *in, size_t len, char *out, size_t outsize)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '+') {
			int h, l;

			if (i + 2 >= len || (h = hexval(in[i + 1])) < 0 ||
			    (l = hexval(in[i + 2])) < 0)
				return -1;
			c = (unsigned char)(h << 4 | l);
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return -1;
		}
		if (c < 32 || c == 127 || o + 1 >= outsize)
			return -1;	/* no control characters, bounded */
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

static int
is_unknown(const char *v)
{
	return strcmp(v, "[UNAVAILABLE]") == 0 || strcmp(v, "[TEMPUNAVAIL]") == 0;
}

/* parse_addr - "192.0.2.7" or "IPV6:2001:db8::1" */
static int
parse_addr(const char *v, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (strncasecmp(v, "IPV6:", 5) == 0 &&
	    inet_pton(AF_INET6, v + 5, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return 0;
	}
	if (inet_pton(AF_INET, v, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, v, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

static int
parse_port(const char *v, unsigned *port)
{
	char *end;
	unsigned long n;

	if (v[0] < '0' || v[0] > '9')
		return -1;
	n = strtoul(v, &end, 10);
	if (*end != '\0' || n > 65535)
		return -1;
	*port = (unsigned)n;
	return 0;
}

/* one_attr - NAME=value into x; NULL, or the reply text of the error */
static const char *
one_attr(struct xclient *x, const char *name, size_t nl, const char *v)
{
	int unknown = is_unknown(v);

#define IS(lit) (nl == sizeof(lit) - 1 && strncasecmp(name, lit, nl) == 0)
	if (IS("ADDR") || IS("DESTADDR")) {
		struct xc_addr *a = IS("ADDR") ? &x->addr : &x->dest;

		a->set = 1;
		a->unknown = unknown;
		if (!unknown && parse_addr(v, &a->ss) < 0)
			return "Bad XCLIENT address syntax";
	} else if (IS("PORT") || IS("DESTPORT")) {
		struct xc_port *p = IS("PORT") ? &x->port : &x->destport;

		p->set = 1;
		p->unknown = unknown;
		if (!unknown && parse_port(v, &p->port) < 0)
			return "Bad XCLIENT port syntax";
	} else if (IS("HELO") || IS("LOGIN") || IS("NAME") || IS("REVERSE_NAME")) {
		struct xc_text *t = IS("HELO") ? &x->helo : IS("LOGIN") ?
		    &x->login : IS("NAME") ? &x->name : &x->rname;

		t->set = 1;
		t->unknown = unknown;
		snprintf(t->v, sizeof(t->v), "%s", unknown ? "" : v);
	} else if (IS("PROTO")) {
		if (strcasecmp(v, "SMTP") != 0 && strcasecmp(v, "ESMTP") != 0 &&
		    !unknown)
			return "Bad XCLIENT PROTO syntax";
		x->proto_set = !unknown;
		x->esmtp = strcasecmp(v, "ESMTP") == 0;
	} else {
		return "Bad XCLIENT attribute name";
	}
#undef IS
	return NULL;
}

/* parse - the whole argument into x; NULL or the error text */
static const char *
parse(const char *args, size_t len, struct xclient *x)
{
	size_t i = 0, start, eq;
	char value[XC_VALUE_MAX + 1];
	const char *why;

	memset(x, 0, sizeof(*x));
	while (i < len) {
		while (i < len && args[i] == ' ')
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && args[i] != ' ')
			i++;
		for (eq = start; eq < i && args[eq] != '='; eq++)
			;
		if (eq == start || eq == i)
			return "Bad XCLIENT attribute syntax";
		if (xtext_decode(args + eq + 1, i - eq - 1, value, sizeof(value)) < 0)
			return "Bad XCLIENT attribute value";
		if ((why = one_attr(x, args + start, eq - start, value)) != NULL)
			return why;
	}
	return NULL;
}

/* set_text - replace *field with a copy of v ("" or unknown: NULL) */
static int
set_text(char **field, const char *v)
{
	char *copy = NULL;

	if (v[0] != '\0' && (copy = strdup(v)) == NULL)
		return -1;
	free(*field);
	*field = copy;
	return 0;
}

/* start_over - the plugins see the old client go and the new one come */
static void
start_over(struct session *s)
{
	size_t i;

	if (s->connect_hooks_ran)
		chain_notify_disconnect(&s->chain);
	for (i = 0; i < s->srv->nplugins; i++) {
		if (s->slots[i].data != NULL && s->slots[i].destroy != NULL)
			s->slots[i].destroy(s->slots[i].data);
		s->slots[i].data = NULL;
		s->slots[i].destroy = NULL;
	}
	s->connect_hooks_ran = 0;
	s->greeted = 0;
	session_enter(s, SESSION_CONNECT);
	session_start(s);
}

void
cmd_xclient(struct session *s, const char *args, size_t len)
{
	struct xclient x;
	const char *why;
	char old[46], addr[46], name[80] = "", helo[80] = "", login[80] = "";
	unsigned old_port = s->peer_port, port;
	uint8_t key[16];

	if (!s->xclient_ok) {
		session_reply(s, 550, "5.7.0", "%s", "Error: insufficient authorization");
		return;
	}
	if ((why = parse(args, len, &x)) != NULL) {
		protocol_error(s, 501, "5.5.4", why);
		return;
	}
	/* A new connection: no HELO and no login unless XCLIENT gives them
	 * (and then a later HELO/EHLO does not replace its HELO). */
	if (set_text(&s->helo, x.helo.v) < 0 ||
	    set_text(&s->auth_user, x.login.v) < 0) {
		session_reply(s, 451, "4.3.0", "%s", "Out of memory");
		return;
	}
	s->helo_from_xclient = x.helo.set && s->helo != NULL;
	snprintf(old, sizeof(old), "%s", s->peer_addr);
	if (x.addr.set && !x.addr.unknown &&
	    sockaddr_text((const struct sockaddr *)&x.addr.ss, addr, sizeof(addr),
	    &port) == 0) {
		sockaddr_key((const struct sockaddr *)&x.addr.ss, key);
		if (addrcount_add(&s->srv->per_ip, key, 1) >= 0) {
			if (s->per_ip_counted)
				addrcount_add(&s->srv->per_ip, s->peer_key, -1);
			s->per_ip_counted = 1;
		}
		memcpy(s->peer_key, key, sizeof(key));
		memcpy(s->peer_addr, addr, sizeof(addr));
	}
	if (x.port.set && !x.port.unknown)
		s->peer_port = x.port.port;
	if (x.dest.set && !x.dest.unknown)
		sockaddr_text((const struct sockaddr *)&x.dest.ss, s->local_addr,
		    sizeof(s->local_addr), &port);
	if (x.destport.set && !x.destport.unknown)
		s->local_port = x.destport.port;
	if (x.proto_set)
		s->esmtp = x.esmtp;
	s->info.peer_port = s->peer_port;
	s->info.local_port = s->local_port;
	s->info.helo = s->helo;
	s->info.esmtp = s->esmtp;
	s->info.auth_user = s->auth_user;
	cmd_ok(s, SMTP_VERB_XCLIENT);
	/* client text: escaped for the log */
	log_escape(name, sizeof(name), x.name.v, strlen(x.name.v));
	if (s->helo != NULL)
		log_escape(helo, sizeof(helo), s->helo, strlen(s->helo));
	if (s->auth_user != NULL)
		log_escape(login, sizeof(login), s->auth_user, strlen(s->auth_user));
	log_msg(LOG_INFO, "session %s: XCLIENT from [%s]:%u: client [%s]:%u%s%s%s%s"
	    "%s%s", s->id_str, old, old_port, s->peer_addr, s->peer_port,
	    name[0] ? " name=" : "", name, helo[0] ? " helo=" : "", helo,
	    login[0] ? " login=" : "", login);
	start_over(s);
}
