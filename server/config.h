/*
 * config.h - the command line (and -c FILE) as one declarative table
 *
 * Every option is a row {long name, short name, argument, help, setter};
 * --help is printed from the table, and only rows that work are listed.
 * Errors name the option and the reason; the caller exits 2.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>
#include <sys/socket.h>

#include "data_stream.h"
#include "log.h"
#include "util.h"

#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_PLUGINS 64
#define CONFIG_AUTH_PLAIN 0x1
#define CONFIG_AUTH_LOGIN 0x2

struct config_listen {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char text[80];
	int implicit_tls;		/* --tls-listen (RFC 8314) */
};

struct config {
	struct config_listen listen[CONFIG_MAX_LISTEN];
	size_t nlisten;
	char hostname[256];
	const char *plugin_specs[CONFIG_MAX_PLUGINS];
	size_t nplugins;
	const char *plugin_dir;
	unsigned long long max_size;		/* 0: no limit */
	unsigned long max_recipients;
	unsigned long max_connections;		/* 0: no limit */
	unsigned long max_connections_per_ip;	/* 0: no limit */
	unsigned long max_errors;
	double timeout;
	double shutdown_timeout;
	int pipelining;
	enum data_bare_policy bare_lf;
	int reject_early_talkers;
	double greet_pause;
	int check;
	int verbose;
	enum log_format log_format;
	unsigned long pool_threads;
	const char *tls_cert, *tls_key, *tls_ciphers, *tls_min_version;
	int require_tls;
	unsigned auth_mechs;		/* CONFIG_AUTH_* */
	int auth_insecure;
	int proxy_protocol;		/* a PROXY header on every connection */
	struct cidr_list proxy_trusted;	/* who may send it */
	struct cidr_list xclient;	/* who may use XCLIENT (none) */
	/* Strings read from -c FILE live here until exit. */
	char *file_storage[8];
	size_t nfile_storage;
};

enum config_result { CONFIG_OK, CONFIG_EXIT_OK, CONFIG_ERROR };

void config_defaults(struct config *c);
/* config_parse - argv into c; on CONFIG_ERROR, errbuf holds the line */
enum config_result config_parse(struct config *c, int argc, char **argv,
    char *errbuf, size_t errsize);
void config_free(struct config *c);
void config_usage(void);

#endif
