/*
 * main.c - smtphookd: command line, start-up, exit status
 *
 * Exit status: 0 after a clean shutdown (or --check, --help, --version);
 * 2 for any error in the command line, a plugin or its arguments, a chain
 * that relays without a recipient restriction (roles.c), or a listener
 * that cannot be bound: one line on stderr naming the option or file and
 * why, and nothing listens.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "roles.h"
#include "server.h"

int
main(int argc, char **argv)
{
	static struct config cfg;
	static struct server srv;
	char err[1024];
	enum config_result r;

	/*
	 * Every message allocates and frees a few blocks of 20-128 KiB (input
	 * buffer, header splitter and store, trace block).  With glibc's
	 * defaults each free at the top of the heap gave the memory back
	 * (brk) and the next message faulted it in again: a fifth of the
	 * server's CPU per message (docs/PERFORMANCE.md).  Keep up to 8 MiB
	 * of free heap instead, and serve blocks up to 256 KiB from the heap.
	 */
	mallopt(M_TRIM_THRESHOLD, 8 << 20);
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	config_defaults(&cfg);
	r = config_parse(&cfg, argc, argv, err, sizeof(err));
	if (r == CONFIG_EXIT_OK) {
		config_free(&cfg);
		return 0;
	}
	if (r == CONFIG_ERROR) {
		fprintf(stderr, "smtphookd: %s (see --help)\n", err);
		config_free(&cfg);
		return 2;
	}
	log_setup(cfg.log_format, cfg.verbose);
	if (server_init(&srv, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "smtphookd: %s\n", err);
		server_destroy(&srv);
		config_free(&cfg);
		return 2;
	}
	roles_warn(srv.plugins, srv.nplugins);
	if (cfg.check) {
		printf("smtphookd: configuration ok (%zu plugin(s))\n", srv.nplugins);
		server_destroy(&srv);
		config_free(&cfg);
		return 0;
	}
	server_run(&srv);
	server_destroy(&srv);
	config_free(&cfg);
	return 0;
}
