/*
 * smtp_proxy.c - the PROXY header phase of a session (--proxy-protocol)
 *
 * A trusted balancer's connection says nothing until the HAProxy PROXY
 * header (proxy_proto.c) has named the client: then the client is the
 * session's peer (what plugins, limits, logs and Received: see), it is
 * counted against --max-connections-per-ip, and the session goes on to
 * the greeting.  A bad header, or none within PROXY_HEADER_TIMEOUT, closes
 * the connection without a reply: whatever sent it is not a client we
 * talk SMTP to.  A LOCAL header (health check) keeps the balancer as the
 * peer.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "proxy_proto.h"
#include "server.h"
#include "session.h"
#include "smtp_internal.h"

/* proxy_refuse - close without a reply, one log line */
static void
proxy_refuse(struct session *s, const char *why, const char *reason)
{
	log_msg(LOG_WARN, "session %s: %s from [%s]:%u; closed without a reply",
	    s->id_str, why, s->peer_addr, s->peer_port);
	s->greeted = 1;		/* nothing more is said to it */
	conn_kill(&s->conn, reason);
}

void
proxy_timeout(struct session *s)
{
	proxy_refuse(s, "no PROXY header within 5 s", "no PROXY header");
}

/* proxy_take - the client of the header becomes the peer */
static int
proxy_take(struct session *s, const struct proxy_header *h)
{
	const struct config *cfg = s->srv->cfg;
	char via[46], addr[46];
	unsigned via_port = s->peer_port, port;
	long n;

	if (sockaddr_text((const struct sockaddr *)&h->src, addr, sizeof(addr),
	    &port) < 0)
		return -1;
	snprintf(via, sizeof(via), "%s", s->peer_addr);
	memcpy(s->peer_addr, addr, sizeof(addr));
	s->peer_port = port;
	sockaddr_key((const struct sockaddr *)&h->src, s->peer_key);
	if (sockaddr_text((const struct sockaddr *)&h->dst, addr, sizeof(addr),
	    &port) == 0) {
		memcpy(s->local_addr, addr, sizeof(addr));
		s->local_port = port;
	}
	s->info.peer_port = s->peer_port;
	s->info.local_port = s->local_port;
	log_msg(LOG_INFO, "session %s: client [%s]:%u to [%s]:%u via proxy "
	    "[%s]:%u (PROXY v%d)", s->id_str, s->peer_addr, s->peer_port,
	    s->local_addr, s->local_port, via, via_port, h->version);
	n = addrcount_add(&s->srv->per_ip, s->peer_key, 1);
	if (n < 0)
		return -1;
	s->per_ip_counted = 1;
	if (cfg->max_connections_per_ip > 0 &&
	    (unsigned long)n > cfg->max_connections_per_ip) {
		log_msg(LOG_WARN, "session %s: refused [%s]:%u: too many "
		    "connections from this address (%lu)", s->id_str,
		    s->peer_addr, s->peer_port, cfg->max_connections_per_ip);
		s->srv->stats.rejected_connections++;
		s->greeted = 1;
		session_reply(s, 421, "4.7.0", "%s Too many connections from your "
		    "address, try again later", s->info.hostname);
		session_close(s, "too many connections from this address");
		return 1;
	}
	return 0;
}

void
proxy_input(struct session *s)
{
	struct proxy_header h;
	enum proxy_status st;
	int rc;

	if (s->conn.in == NULL)
		return;
	st = proxy_parse(s->conn.in + s->conn.in_start,
	    s->conn.in_end - s->conn.in_start, &h);
	switch (st) {
	case PROXY_NEED_MORE:
		return;
	case PROXY_BAD:
		proxy_refuse(s, h.why, "bad PROXY header");
		return;
	case PROXY_LOCAL:
	case PROXY_OK:
		break;
	}
	s->conn.in_start += h.len;
	s->proxy_wait = 0;
	conn_unpause(&s->conn);
	if (st == PROXY_LOCAL) {
		/* a health check: the balancer itself is the client */
		log_msg(LOG_INFO, "session %s: PROXY v%d LOCAL from [%s]:%u: the "
		    "balancer itself", s->id_str, h.version, s->peer_addr,
		    s->peer_port);
		rc = addrcount_add(&s->srv->per_ip, s->peer_key, 1) < 0 ? -1 : 0;
		if (rc == 0)
			s->per_ip_counted = 1;
	} else {
		rc = proxy_take(s, &h);
	}
	if (rc < 0) {
		conn_kill(&s->conn, "out of memory");
		return;
	}
	if (rc == 0)
		session_greet(s);
}
