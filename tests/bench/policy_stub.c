/*
 * policy_stub.c - a policy server for make bench: answers every request of
 * Postfix's policy delegation protocol with "action=DUNNO", as fast as one
 * thread can, so that the bench measures policyd's cost, not the stub's.
 *
 *	policy_stub PORT	(listens on 127.0.0.1:PORT; runs until killed)
 *
 * A request ends with an empty line; the stub counts them per connection
 * and answers each, in order.  Not for production: no limits beyond the
 * fixed table of connections.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STUB_CONNS 64

static const char answer[] = "action=DUNNO\n\n";

/* one connection: the last octet seen, to find "\n\n" across reads */
struct stub_conn {
	int fd;
	char last;
};

/* serve - read what is there, answer each complete request; 0 or -1 */
static int
serve(struct stub_conn *c)
{
	char buf[16384], out[sizeof(answer) * 64];
	ssize_t n, i;
	size_t k = 0;

	n = read(c->fd, buf, sizeof(buf));
	if (n <= 0)
		return n < 0 && errno == EINTR ? 0 : -1;
	for (i = 0; i < n; i++) {
		if (buf[i] == '\n' && c->last == '\n') {
			memcpy(out + k, answer, sizeof(answer) - 1);
			k += sizeof(answer) - 1;
			if (k + sizeof(answer) > sizeof(out)) {
				if (write(c->fd, out, k) != (ssize_t)k)
					return -1;
				k = 0;
			}
		}
		c->last = buf[i];
	}
	if (k > 0 && write(c->fd, out, k) != (ssize_t)k)
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	struct pollfd pfd[STUB_CONNS + 1];
	struct stub_conn conns[STUB_CONNS];
	int lfd, one = 1;
	size_t i, n = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: policy_stub PORT\n");
		return 2;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((unsigned short)atoi(argv[1]));
	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 64) < 0) {
		perror("policy_stub");
		return 1;
	}
	for (;;) {
		pfd[0].fd = lfd;
		pfd[0].events = POLLIN;
		for (i = 0; i < n; i++) {
			pfd[i + 1].fd = conns[i].fd;
			pfd[i + 1].events = POLLIN;
		}
		if (poll(pfd, n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("policy_stub: poll");
			return 1;
		}
		for (i = n; i-- > 0;)
			if (pfd[i + 1].revents != 0 && serve(&conns[i]) < 0) {
				close(conns[i].fd);
				conns[i] = conns[--n];
			}
		if (pfd[0].revents & POLLIN) {
			int fd = accept(lfd, NULL, NULL);

			if (fd >= 0 && n < STUB_CONNS)
				conns[n++] = (struct stub_conn){ .fd = fd, .last = 0 };
			else if (fd >= 0)
				close(fd);
		}
	}
}
