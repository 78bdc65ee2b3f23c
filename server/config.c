/*
 * config.c - option table, parser, --help
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "smtphook.h"
#include "util.h"

#ifndef SMTPHOOK_VERSION
#define SMTPHOOK_VERSION "0.1.0"
#endif

typedef int (*config_setter)(struct config *c, const char *arg,
    char *err, size_t errsize);

struct config_option {
	const char *name;	/* long name, without "--" */
	char shortname;		/* 0: none */
	const char *argname;	/* NULL: takes no argument */
	const char *help;	/* NULL: not listed (not supported yet) */
	config_setter set;
};

/* number - parse a bounded count for an option */
static int
number(const char *arg, unsigned long long min, unsigned long long max,
    unsigned long long *out, char *err, size_t errsize)
{
	if (parse_ulong(arg, min, max, out) < 0) {
		snprintf(err, errsize, "'%s' is not a number from %llu to %llu",
		    arg, min, max);
		return -1;
	}
	return 0;
}

static int
set_listen(struct config *c, const char *arg, char *err, size_t errsize)
{
	struct config_listen *l;
	const char *why;

	if (c->nlisten == CONFIG_MAX_LISTEN) {
		snprintf(err, errsize, "at most %d listeners", CONFIG_MAX_LISTEN);
		return -1;
	}
	l = &c->listen[c->nlisten];
	if (parse_hostport(arg, &l->addr, &l->addrlen, &why) < 0) {
		snprintf(err, errsize, "'%s': %s", arg, why);
		return -1;
	}
	snprintf(l->text, sizeof(l->text), "%s", arg);
	c->nlisten++;
	return 0;
}

static int
set_tls_listen(struct config *c, const char *arg, char *err, size_t errsize)
{
	if (set_listen(c, arg, err, errsize) < 0)
		return -1;
	c->listen[c->nlisten - 1].implicit_tls = 1;
	return 0;
}

/* set_file - an option naming a readable file */
static int
set_file(const char **field, const char *arg, char *err, size_t errsize)
{
	if (access(arg, R_OK) < 0) {
		snprintf(err, errsize, "%s: %s", arg, strerror(errno));
		return -1;
	}
	*field = arg;
	return 0;
}

static int
set_tls_cert(struct config *c, const char *arg, char *err, size_t errsize)
{
	return set_file(&c->tls_cert, arg, err, errsize);
}

static int
set_tls_key(struct config *c, const char *arg, char *err, size_t errsize)
{
	return set_file(&c->tls_key, arg, err, errsize);
}

static int
set_tls_ciphers(struct config *c, const char *arg, char *err, size_t errsize)
{
	(void)err, (void)errsize;
	c->tls_ciphers = arg;
	return 0;
}

static int
set_tls_min_version(struct config *c, const char *arg, char *err, size_t errsize)
{
	if (strcmp(arg, "1.2") != 0 && strcmp(arg, "1.3") != 0) {
		snprintf(err, errsize, "'%s': expected 1.2 or 1.3", arg);
		return -1;
	}
	c->tls_min_version = arg;
	return 0;
}

static int
set_require_tls(struct config *c, const char *arg, char *err, size_t errsize)
{
	(void)arg, (void)err, (void)errsize;
	c->require_tls = 1;
	return 0;
}

static int
set_auth(struct config *c, const char *arg, char *err, size_t errsize)
{
	char buf[128], *tok, *save = NULL;

	if (strlen(arg) >= sizeof(buf)) {
		snprintf(err, errsize, "mechanism list too long");
		return -1;
	}
	strcpy(buf, arg);
	c->auth_mechs = 0;
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (strcasecmp(tok, "PLAIN") == 0)
			c->auth_mechs |= CONFIG_AUTH_PLAIN;
		else if (strcasecmp(tok, "LOGIN") == 0)
			c->auth_mechs |= CONFIG_AUTH_LOGIN;
		else {
			snprintf(err, errsize, "'%s': supported mechanisms are PLAIN "
			    "and LOGIN", tok);
			return -1;
		}
	}
	if (c->auth_mechs == 0) {
		snprintf(err, errsize, "no mechanism given");
		return -1;
	}
	return 0;
}

static int
set_auth_insecure(struct config *c, const char *arg, char *err, size_t errsize)
{
	(void)arg, (void)err, (void)errsize;
	c->auth_insecure = 1;
	return 0;
}

static int
set_hostname(struct config *c, const char *arg, char *err, size_t errsize)
{
	size_t i, n = strlen(arg);

	if (n == 0 || n >= sizeof(c->hostname)) {
		snprintf(err, errsize, "hostname must be 1-255 characters");
		return -1;
	}
	for (i = 0; i < n; i++)
		if (arg[i] <= ' ' || arg[i] >= 0x7f) {
			snprintf(err, errsize, "hostname must be printable ASCII without spaces");
			return -1;
		}
	memcpy(c->hostname, arg, n + 1);
	return 0;
}

static int
set_plugin(struct config *c, const char *arg, char *err, size_t errsize)
{
	if (c->nplugins == CONFIG_MAX_PLUGINS) {
		snprintf(err, errsize, "at most %d plugins", CONFIG_MAX_PLUGINS);
		return -1;
	}
	if (arg[0] == '\0') {
		snprintf(err, errsize, "empty plugin name");
		return -1;
	}
	c->plugin_specs[c->nplugins++] = arg;
	return 0;
}

static int
set_plugin_dir(struct config *c, const char *arg, char *err, size_t errsize)
{
	if (access(arg, R_OK | X_OK) < 0) {
		snprintf(err, errsize, "%s: %s", arg, strerror(errno));
		return -1;
	}
	c->plugin_dir = arg;
	return 0;
}

static int
set_max_size(struct config *c, const char *arg, char *err, size_t errsize)
{
	return number(arg, 0, (1ULL << 62), &c->max_size, err, errsize);
}

#define UL_SETTER(fn, field, min, max)					\
static int								\
fn(struct config *c, const char *arg, char *err, size_t errsize)	\
{									\
	unsigned long long v;						\
	if (number(arg, min, max, &v, err, errsize) < 0)		\
		return -1;						\
	c->field = (unsigned long)v;					\
	return 0;							\
}
UL_SETTER(set_max_recipients, max_recipients, 1, 100000)
UL_SETTER(set_max_connections, max_connections, 0, 1000000)
UL_SETTER(set_max_connections_per_ip, max_connections_per_ip, 0, 1000000)
UL_SETTER(set_max_errors, max_errors, 1, 100000)
UL_SETTER(set_pool_threads, pool_threads, 1, 256)

static int
set_timeout(struct config *c, const char *arg, char *err, size_t errsize)
{
	if (parse_seconds(arg, &c->timeout) < 0) {
		snprintf(err, errsize, "'%s' is not a number of seconds", arg);
		return -1;
	}
	return 0;
}

static int
set_shutdown_timeout(struct config *c, const char *arg, char *err, size_t errsize)
{
	if (parse_seconds(arg, &c->shutdown_timeout) < 0) {
		snprintf(err, errsize, "'%s' is not a number of seconds", arg);
		return -1;
	}
	return 0;
}

static int
set_greet_pause(struct config *c, const char *arg, char *err, size_t errsize)
{
	/* 0 (no pause) is the documented default and may be given, e.g.
	 * to keep --reject-early-talkers without its implied pause. */
	if (strspn(arg, "0") == strlen(arg) && arg[0] != '\0') {
		c->greet_pause = 0;
		return 0;
	}
	if (parse_seconds(arg, &c->greet_pause) < 0 || c->greet_pause > 60) {
		snprintf(err, errsize, "'%s' is not a number of seconds up to 60", arg);
		return -1;
	}
	return 0;
}

static int
set_proxy_protocol(struct config *c, const char *arg, char *err, size_t errsize)
{
	(void)arg, (void)err, (void)errsize;
	c->proxy_protocol = 1;
	return 0;
}

static int
set_proxy_trusted(struct config *c, const char *arg, char *err, size_t errsize)
{
	return cidr_list_parse(arg, &c->proxy_trusted, err, errsize);
}

static int
set_xclient(struct config *c, const char *arg, char *err, size_t errsize)
{
	return cidr_list_parse(arg, &c->xclient, err, errsize);
}

static int
set_no_pipelining(struct config *c, const char *arg, char *err, size_t errsize)
{
	(void)arg, (void)err, (void)errsize;
	c->pipelining = 0;
	return 0;
}

static int
set_bare_lf(struct config *c, const char *arg, char *err, size_t errsize)
{
	if (strcmp(arg, "reject") == 0)
		c->bare_lf = DATA_BARE_REJECT;
	else if (strcmp(arg, "normalize") == 0)
		c->bare_lf = DATA_BARE_NORMALIZE;
	else {
		snprintf(err, errsize, "'%s': expected reject or normalize", arg);
		return -1;
	}
	return 0;
}

static int
set_reject_early(struct config *c, const char *arg, char *err, size_t errsize)
{
	(void)arg, (void)err, (void)errsize;
	c->reject_early_talkers = 1;
	return 0;
}

static int
set_check(struct config *c, const char *arg, char *err, size_t errsize)
{
	(void)arg, (void)err, (void)errsize;
	c->check = 1;
	return 0;
}

static int
set_verbose(struct config *c, const char *arg, char *err, size_t errsize)
{
	(void)arg, (void)err, (void)errsize;
	c->verbose = 1;
	return 0;
}

static int
set_log_format(struct config *c, const char *arg, char *err, size_t errsize)
{
	if (strcmp(arg, "text") == 0)
		c->log_format = LOG_FORMAT_TEXT;
	else if (strcmp(arg, "json") == 0)
		c->log_format = LOG_FORMAT_JSON;
	else {
		snprintf(err, errsize, "'%s': expected text or json", arg);
		return -1;
	}
	return 0;
}

static int
set_workers(struct config *c, const char *arg, char *err, size_t errsize)
{
	unsigned long long v;

	(void)c;
	if (number(arg, 1, 256, &v, err, errsize) < 0)
		return -1;
	if (v != 1) {
		snprintf(err, errsize, "more than one worker is not supported yet");
		return -1;
	}
	return 0;
}

/* Handled by config_parse itself; listed here for --help and lookup. */
static int
set_none(struct config *c, const char *arg, char *err, size_t errsize)
{
	(void)c, (void)arg, (void)err, (void)errsize;
	return 0;
}

static const struct config_option options[] = {
	{ "listen", 'l', "HOST:PORT", "listen here (repeatable; default 127.0.0.1:2525; IPv6 as [::1]:2525)", set_listen },
	{ "hostname", 'n', "NAME", "name in the greeting and EHLO reply (default: the machine's FQDN)", set_hostname },
	{ "plugin", 'p', "SPEC", "load a plugin: PATH-or-NAME[:key=value[,key=value...]] (repeatable, chain order)", set_plugin },
	{ "plugin-dir", 0, "DIR", "where plugin NAMEs are looked up", set_plugin_dir },
	{ "max-size", 's', "BYTES", "largest message accepted, advertised as SIZE (0: no limit)", set_max_size },
	{ "max-recipients", 0, "N", "recipients per message (default 100)", set_max_recipients },
	{ "max-connections", 0, "N", "concurrent connections (default 1000; 0: no limit)", set_max_connections },
	{ "max-connections-per-ip", 0, "N", "concurrent connections per client address (0: no limit, the default)", set_max_connections_per_ip },
	{ "max-errors", 0, "N", "protocol errors before 421 and close (default 20)", set_max_errors },
	{ "timeout", 0, "SECONDS", "idle timeout for a command or a data block (default 300)", set_timeout },
	{ "shutdown-timeout", 0, "SECONDS", "how long running transactions may finish on SIGTERM (default 30)", set_shutdown_timeout },
	{ "no-pipelining", 0, NULL, "do not advertise or allow PIPELINING", set_no_pipelining },
	{ "proxy-protocol", 0, NULL, "expect a HAProxy PROXY v1/v2 header on every connection", set_proxy_protocol },
	{ "xclient", 0, "LIST", "networks allowed to use XCLIENT (Postfix extension; default none)", set_xclient },
	{ "proxy-trusted", 0, "LIST", "networks allowed to send it (default 127.0.0.0/8;::1); others are closed without a reply", set_proxy_trusted },
	{ "bare-lf", 0, "reject|normalize", "what a bare LF/CR in a message gets (default reject)", set_bare_lf },
	{ "reject-early-talkers", 0, NULL, "refuse clients that talk before the greeting (554)", set_reject_early },
	{ "greet-pause", 0, "SECONDS", "wait this long before the greeting (default 0; 1 with --reject-early-talkers)", set_greet_pause },
	{ "pool-threads", 0, "N", "threads of the plugin work pool (default 4)", set_pool_threads },
	{ "config", 'c', "FILE", "read options from FILE, one per line (\"name value\")", set_none },
	{ "check", 0, NULL, "load and initialise the plugins, validate, exit 0 (or 2)", set_check },
	{ "verbose", 'v', NULL, "log debug lines too", set_verbose },
	{ "log-format", 0, "text|json", "log line format (default text)", set_log_format },
	{ "version", 0, NULL, "print the version and exit", set_none },
	{ "help", 'h', NULL, "this text", set_none },
	{ "workers", 'w', "N", NULL, set_workers },
	{ "tls-cert", 0, "FILE", "certificate chain (PEM) for STARTTLS and --tls-listen; reloaded on SIGHUP", set_tls_cert },
	{ "tls-key", 0, "FILE", "private key (PEM) of --tls-cert", set_tls_key },
	{ "tls-listen", 0, "HOST:PORT", "implicit-TLS listener (RFC 8314, e.g. port 465; repeatable)", set_tls_listen },
	{ "tls-ciphers", 0, "LIST", "OpenSSL cipher list for TLS 1.2 (default: Mozilla intermediate)", set_tls_ciphers },
	{ "tls-min-version", 0, "1.2|1.3", "lowest TLS version accepted (default 1.2)", set_tls_min_version },
	{ "require-tls", 0, NULL, "refuse MAIL before STARTTLS (530 5.7.0)", set_require_tls },
	{ "auth", 0, "MECHS", "offer AUTH (RFC 4954) with these mechanisms, e.g. PLAIN,LOGIN; only over TLS; plugins' auth hook decides", set_auth },
	{ "auth-insecure", 0, NULL, "also offer AUTH without TLS (tests, trusted networks)", set_auth_insecure },
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->max_recipients = 100;
	c->max_connections = 1000;
	c->max_errors = 20;
	c->timeout = 300;
	c->shutdown_timeout = 30;
	c->pipelining = 1;
	c->bare_lf = DATA_BARE_REJECT;
	c->greet_pause = -1;
	c->pool_threads = 4;
	c->log_format = LOG_FORMAT_TEXT;
	(void)cidr_list_parse("127.0.0.0/8;::1", &c->proxy_trusted, NULL, 0);
}

void
config_usage(void)
{
	size_t i;

	printf("usage: smtphookd [OPTIONS]\n");
	for (i = 0; i < NOPTIONS; i++) {
		const struct config_option *o = &options[i];
		char left[64];

		if (o->help == NULL)
			continue;
		snprintf(left, sizeof(left), "%s%c%s--%s%s%s",
		    o->shortname ? "-" : "   ", o->shortname ? o->shortname : ' ',
		    o->shortname ? ", " : "", o->name, o->argname ? " " : "",
		    o->argname ? o->argname : "");
		printf("  %-34s %s\n", left, o->help);
	}
}

/* find_option - by long name (len chars) or by short letter */
static const struct config_option *
find_option(const char *name, size_t len, char shortname)
{
	size_t i;

	for (i = 0; i < NOPTIONS; i++) {
		if (shortname != 0 ? options[i].shortname == shortname :
		    (strlen(options[i].name) == len &&
		    strncmp(options[i].name, name, len) == 0))
			return &options[i];
	}
	return NULL;
}

static enum config_result config_parse_file(struct config *c, const char *path,
    char *errbuf, size_t errsize);

/* apply - run one option's setter; handles the few special ones */
static enum config_result
apply(struct config *c, const struct config_option *o, const char *arg,
    int from_file, char *errbuf, size_t errsize)
{
	char err[512];

	if (strcmp(o->name, "help") == 0) {
		config_usage();
		return CONFIG_EXIT_OK;
	}
	if (strcmp(o->name, "version") == 0) {
		printf("smtphookd %s (plugin ABI %d.%d)\n", SMTPHOOK_VERSION,
		    SH_ABI_MAJOR, SH_ABI_MINOR);
		return CONFIG_EXIT_OK;
	}
	if (strcmp(o->name, "config") == 0) {
		if (from_file) {
			snprintf(errbuf, errsize, "--config: not allowed inside a config file");
			return CONFIG_ERROR;
		}
		return config_parse_file(c, arg, errbuf, errsize);
	}
	err[0] = '\0';
	if (o->set(c, arg, err, sizeof(err)) < 0) {
		snprintf(errbuf, errsize, "--%s: %s", o->name, err);
		return CONFIG_ERROR;
	}
	return CONFIG_OK;
}

/* config_parse_file - "name value" or "--name=value" lines; '#' comments */
static enum config_result
config_parse_file(struct config *c, const char *path, char *errbuf, size_t errsize)
{
	FILE *f;
	char *text, *line, *save = NULL;
	long size;
	unsigned lineno = 0;
	enum config_result r = CONFIG_OK;

	if (c->nfile_storage == sizeof(c->file_storage) / sizeof(c->file_storage[0])) {
		snprintf(errbuf, errsize, "--config: too many config files");
		return CONFIG_ERROR;
	}
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(errbuf, errsize, "--config: %s: %s", path, strerror(errno));
		return CONFIG_ERROR;
	}
	if (fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 || size > 1 << 20 ||
	    fseek(f, 0, SEEK_SET) < 0) {
		fclose(f);
		snprintf(errbuf, errsize, "--config: %s: unreadable or larger than 1 MiB", path);
		return CONFIG_ERROR;
	}
	if ((text = malloc((size_t)size + 1)) == NULL) {
		fclose(f);
		snprintf(errbuf, errsize, "--config: out of memory");
		return CONFIG_ERROR;
	}
	if (fread(text, 1, (size_t)size, f) != (size_t)size) {
		fclose(f);
		free(text);
		snprintf(errbuf, errsize, "--config: %s: read error", path);
		return CONFIG_ERROR;
	}
	fclose(f);
	text[size] = '\0';
	/* Values point into text, which lives as long as the config. */
	c->file_storage[c->nfile_storage++] = text;
	/* strsep, not strtok_r: empty lines must count for "file:line". */
	save = text;
	for (line = strsep(&save, "\n"); line != NULL && r == CONFIG_OK;
	    line = strsep(&save, "\n")) {
		char *name, *end, *value = NULL;
		const struct config_option *o;

		lineno++;
		while (*line == ' ' || *line == '\t')
			line++;
		end = line + strlen(line);
		while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			*--end = '\0';
		if (*line == '\0' || *line == '#')
			continue;
		name = line;
		if (name[0] == '-' && name[1] == '-')
			name += 2;
		for (end = name; *end != '\0' && *end != ' ' && *end != '\t' &&
		    *end != '='; end++)
			;
		if (*end != '\0') {
			*end = '\0';
			value = end + 1;
			while (*value == ' ' || *value == '\t')
				value++;
		}
		o = find_option(name, strlen(name), 0);
		if (o == NULL) {
			snprintf(errbuf, errsize, "%s:%u: unknown option '%s'", path,
			    lineno, name);
			return CONFIG_ERROR;
		}
		if ((o->argname != NULL) != (value != NULL && *value != '\0')) {
			snprintf(errbuf, errsize, "%s:%u: --%s %s", path, lineno,
			    o->name, o->argname ? "needs a value" : "takes no value");
			return CONFIG_ERROR;
		}
		r = apply(c, o, value, 1, errbuf, errsize);
		if (r == CONFIG_ERROR) {
			char reason[512];
			snprintf(reason, sizeof(reason), "%s", errbuf);
			snprintf(errbuf, errsize, "%s:%u: %s", path, lineno, reason);
		}
	}
	return r;
}

enum config_result
config_parse(struct config *c, int argc, char **argv, char *errbuf, size_t errsize)
{
	int i;
	enum config_result r;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *value = NULL;
		const struct config_option *o;

		if (a[0] == '-' && a[1] == '-' && a[2] != '\0') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			o = find_option(a + 2, len, 0);
			if (o == NULL) {
				snprintf(errbuf, errsize, "unknown option '%.*s'",
				    (int)(len + 2), a);
				return CONFIG_ERROR;
			}
			if (eq != NULL)
				value = eq + 1;
		} else if (a[0] == '-' && a[1] != '\0' && a[1] != '-') {
			o = find_option(NULL, 0, a[1]);
			if (o == NULL) {
				snprintf(errbuf, errsize, "unknown option '-%c'", a[1]);
				return CONFIG_ERROR;
			}
			if (a[2] != '\0') {
				if (o->argname == NULL) {
					snprintf(errbuf, errsize, "-%c takes no value", a[1]);
					return CONFIG_ERROR;
				}
				value = a + 2;
			}
		} else {
			snprintf(errbuf, errsize, "unexpected argument '%s'", a);
			return CONFIG_ERROR;
		}
		if (o->argname != NULL && value == NULL) {
			if (i + 1 >= argc) {
				snprintf(errbuf, errsize, "--%s needs a value (%s)",
				    o->name, o->argname);
				return CONFIG_ERROR;
			}
			value = argv[++i];
		} else if (o->argname == NULL && value != NULL) {
			snprintf(errbuf, errsize, "--%s takes no value", o->name);
			return CONFIG_ERROR;
		}
		r = apply(c, o, value, 0, errbuf, errsize);
		if (r != CONFIG_OK)
			return r;
	}
	if ((c->tls_cert != NULL) != (c->tls_key != NULL)) {
		snprintf(errbuf, errsize, "--tls-cert and --tls-key go together");
		return CONFIG_ERROR;
	}
	if (c->tls_cert == NULL) {
		size_t k;

		for (k = 0; k < c->nlisten; k++)
			if (c->listen[k].implicit_tls) {
				snprintf(errbuf, errsize, "--tls-listen needs --tls-cert "
				    "and --tls-key");
				return CONFIG_ERROR;
			}
		if (c->require_tls) {
			snprintf(errbuf, errsize, "--require-tls needs --tls-cert and "
			    "--tls-key");
			return CONFIG_ERROR;
		}
	}
	if (c->proxy_protocol) {
		size_t k;

		for (k = 0; k < c->nlisten; k++)
			if (c->listen[k].implicit_tls) {
				snprintf(errbuf, errsize, "--proxy-protocol with --tls-listen "
				    "is not supported (end TLS on the balancer, or use "
				    "STARTTLS)");
				return CONFIG_ERROR;
			}
	}
	if (c->auth_insecure && c->auth_mechs == 0) {
		snprintf(errbuf, errsize, "--auth-insecure needs --auth");
		return CONFIG_ERROR;
	}
	if (c->auth_mechs != 0 && c->tls_cert == NULL && !c->auth_insecure) {
		/* AUTH would never be offered: say so instead of ignoring it. */
		snprintf(errbuf, errsize, "--auth needs --tls-cert/--tls-key (or "
		    "--auth-insecure)");
		return CONFIG_ERROR;
	}
	if (c->nlisten == 0 && set_listen(c, "127.0.0.1:2525", errbuf, errsize) < 0)
		return CONFIG_ERROR;
	if (c->hostname[0] == '\0') {
		/* The FQDN where the resolver knows it, else the node name. */
		char node[256];
		struct addrinfo hints = { .ai_flags = AI_CANONNAME }, *ai = NULL;

		if (gethostname(node, sizeof(node)) < 0)
			strcpy(node, "localhost");
		node[sizeof(node) - 1] = '\0';
		snprintf(c->hostname, sizeof(c->hostname), "%s", node);
		if (strchr(node, '.') == NULL &&
		    getaddrinfo(node, NULL, &hints, &ai) == 0) {
			if (ai->ai_canonname != NULL && strchr(ai->ai_canonname, '.'))
				snprintf(c->hostname, sizeof(c->hostname), "%s",
				    ai->ai_canonname);
			freeaddrinfo(ai);
		}
	}
	if (c->greet_pause < 0)
		c->greet_pause = c->reject_early_talkers ? 1 : 0;
	return CONFIG_OK;
}

void
config_free(struct config *c)
{
	size_t i;

	for (i = 0; i < c->nfile_storage; i++)
		free(c->file_storage[i]);
	c->nfile_storage = 0;
}
