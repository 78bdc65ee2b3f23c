/*
 * test_config.c - unit tests for server/config.c (config_parse)
 *
 * Every option is given a good value and at least one bad one; errors
 * must name the option.  -c FILE is tested with temporary files,
 * including errors that must name "file:line".
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static struct config C;
static char err[1024];

/* parse - config_parse over "smtphookd" + the NULL-terminated args */
static enum config_result
parse(const char *first, ...)
{
	char *argv[64];
	int argc = 0;
	const char *a;
	va_list ap;

	config_free(&C);
	config_defaults(&C);
	err[0] = '\0';
	argv[argc++] = (char *)(uintptr_t)"smtphookd";
	va_start(ap, first);
	for (a = first; a != NULL && argc < 63; a = va_arg(ap, const char *))
		argv[argc++] = (char *)(uintptr_t)a;
	va_end(ap);
	argv[argc] = NULL;
	return config_parse(&C, argc, argv, err, sizeof(err));
}

/* bad - the args fail, and the error names `what` */
#define BAD(what, ...) do {						\
	cr_assert_eq(parse(__VA_ARGS__, NULL), CONFIG_ERROR,		\
	    "accepted: %s", #__VA_ARGS__);				\
	cr_assert(strstr(err, what) != NULL, "error '%s' lacks '%s'",	\
	    err, what);							\
} while (0)

#define OK(...) cr_assert_eq(parse(__VA_ARGS__, NULL), CONFIG_OK,	\
	"refused %s: %s", #__VA_ARGS__, err)

static char tmpname[64];

/* write_file - a temporary config file with this text */
static const char *
write_file(const char *text)
{
	int fd;

	snprintf(tmpname, sizeof(tmpname), "/tmp/smtphook_cfg_XXXXXX");
	fd = mkstemp(tmpname);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return tmpname;
}

static void
cleanup(void)
{
	config_free(&C);
	if (tmpname[0] != '\0')
		unlink(tmpname);
	tmpname[0] = '\0';
}

TestSuite(config, .fini = cleanup);

static unsigned
listen_port(size_t i)
{
	const struct sockaddr_storage *ss = &C.listen[i].addr;

	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)(const void *)ss)->sin6_port);
}

Test(config, defaults)
{
	cr_assert_eq(parse(NULL), CONFIG_OK, "%s", err);
	cr_assert_eq(C.nlisten, 1);
	cr_assert_str_eq(C.listen[0].text, "127.0.0.1:2525");
	cr_assert_eq(C.listen[0].addr.ss_family, AF_INET);
	cr_assert_eq(listen_port(0), 2525);
	cr_assert_neq(C.hostname[0], '\0', "hostname defaults to the machine's");
	cr_assert_eq(C.nplugins, 0);
	cr_assert_null(C.plugin_dir);
	cr_assert_eq(C.max_size, 0);
	cr_assert_eq(C.max_recipients, 100);
	cr_assert_eq(C.max_connections, 1000);
	cr_assert_eq(C.max_connections_per_ip, 0);
	cr_assert_eq(C.max_errors, 20);
	cr_assert_float_eq(C.timeout, 300, 1e-9);
	cr_assert_float_eq(C.shutdown_timeout, 30, 1e-9);
	cr_assert_eq(C.pipelining, 1);
	cr_assert_eq(C.bare_lf, DATA_BARE_REJECT);
	cr_assert_eq(C.reject_early_talkers, 0);
	cr_assert_float_eq(C.greet_pause, 0, 1e-9);
	cr_assert_eq(C.check, 0);
	cr_assert_eq(C.verbose, 0);
	cr_assert_eq(C.log_format, LOG_FORMAT_TEXT);
	cr_assert_eq(C.pool_threads, 4);
}

Test(config, listen)
{
	OK("-l", "127.0.0.1:25");
	cr_assert_eq(C.nlisten, 1);
	cr_assert_eq(listen_port(0), 25);
	cr_assert_eq(C.listen[0].addrlen, sizeof(struct sockaddr_in));

	OK("--listen", "[::1]:2526", "--listen=0.0.0.0:2527", "-l192.0.2.7:2528");
	cr_assert_eq(C.nlisten, 3);
	cr_assert_eq(C.listen[0].addr.ss_family, AF_INET6);
	cr_assert_eq(C.listen[0].addrlen, sizeof(struct sockaddr_in6));
	cr_assert_eq(listen_port(0), 2526);
	cr_assert_str_eq(C.listen[1].text, "0.0.0.0:2527");
	cr_assert_str_eq(C.listen[2].text, "192.0.2.7:2528");

	OK("-l", "localhost:2525");
	cr_assert_eq(C.listen[0].addr.ss_family, AF_INET);

	BAD("--listen", "-l", "127.0.0.1");
	BAD("--listen", "-l", "mail.example.com:25");
	BAD("--listen", "-l", "127.0.0.1:0");
	BAD("--listen", "-l", "127.0.0.1:65536");
	BAD("--listen", "-l", "127.0.0.1:port");
	BAD("--listen", "-l", "[::1]2525");
	BAD("--listen", "-l", "[::1");
	BAD("--listen", "-l", "[zz::1]:25");
	BAD("--listen", "-l", ":25");
	BAD("--listen", "-l", "256.1.1.1:25");
	BAD("--listen needs a value", "-l");
}

Test(config, listen_limit)
{
	char *argv[2 + 2 * (CONFIG_MAX_LISTEN + 1)];
	char addrs[CONFIG_MAX_LISTEN + 1][32];
	int argc = 0, i;

	argv[argc++] = (char *)(uintptr_t)"smtphookd";
	for (i = 0; i <= CONFIG_MAX_LISTEN; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "127.0.0.1:%d", 3000 + i);
		argv[argc++] = (char *)(uintptr_t)"-l";
		argv[argc++] = addrs[i];
	}
	config_defaults(&C);
	cr_assert_eq(config_parse(&C, argc, argv, err, sizeof(err)), CONFIG_ERROR);
	cr_assert(strstr(err, "--listen") != NULL && strstr(err, "16") != NULL, "%s", err);
	config_defaults(&C);
	cr_assert_eq(config_parse(&C, argc - 2, argv, err, sizeof(err)), CONFIG_OK, "%s", err);
	cr_assert_eq(C.nlisten, CONFIG_MAX_LISTEN);
}

Test(config, hostname)
{
	OK("-n", "mx.example.org");
	cr_assert_str_eq(C.hostname, "mx.example.org");
	OK("--hostname=a");
	cr_assert_str_eq(C.hostname, "a");
	BAD("--hostname", "-n", "");
	BAD("--hostname", "-n", "has space");
	BAD("--hostname", "-n", "tab\there");
	BAD("--hostname", "-n", "caf\xc3\xa9.example");

	char longname[300];
	memset(longname, 'a', 256);
	longname[256] = '\0';
	BAD("--hostname", "-n", longname);
	longname[255] = '\0';
	OK("-n", longname);
	cr_assert_eq(strlen(C.hostname), 255);
}

Test(config, plugins_in_order)
{
	OK("-p", "policy", "--plugin", "/x/sizefilter.so:max=5", "-pmaildump",
	    "--plugin=spamfilter:a=b,c=d");
	cr_assert_eq(C.nplugins, 4);
	cr_assert_str_eq(C.plugin_specs[0], "policy");
	cr_assert_str_eq(C.plugin_specs[1], "/x/sizefilter.so:max=5");
	cr_assert_str_eq(C.plugin_specs[2], "maildump");
	cr_assert_str_eq(C.plugin_specs[3], "spamfilter:a=b,c=d");
	BAD("--plugin", "-p", "");
	BAD("--plugin needs a value", "-p");
}

Test(config, plugin_dir)
{
	OK("--plugin-dir", "/tmp");
	cr_assert_str_eq(C.plugin_dir, "/tmp");
	BAD("--plugin-dir", "--plugin-dir", "/nonexistent/smtphook/plugins");
}

Test(config, max_size)
{
	OK("-s", "10485760");
	cr_assert_eq(C.max_size, 10485760ULL);
	OK("--max-size", "0");
	cr_assert_eq(C.max_size, 0);
	OK("--max-size", "4611686018427387904");	/* 2^62 */
	cr_assert_eq(C.max_size, 1ULL << 62);
	BAD("--max-size", "-s", "4611686018427387905");
	BAD("--max-size", "-s", "99999999999999999999999");	/* overflow */
	BAD("--max-size", "-s", "-1");
	BAD("--max-size", "-s", "10M");
	BAD("--max-size", "-s", "");
	BAD("--max-size", "-s", " 10");
}

Test(config, counts)
{
	OK("--max-recipients", "1", "--max-connections", "0",
	    "--max-connections-per-ip", "1000000", "--max-errors", "100000");
	cr_assert_eq(C.max_recipients, 1);
	cr_assert_eq(C.max_connections, 0);
	cr_assert_eq(C.max_connections_per_ip, 1000000);
	cr_assert_eq(C.max_errors, 100000);
	OK("--max-recipients", "100000", "--max-connections", "1000000",
	    "--max-connections-per-ip", "0", "--max-errors", "1");
	cr_assert_eq(C.max_recipients, 100000);
	cr_assert_eq(C.max_errors, 1);

	BAD("--max-recipients", "--max-recipients", "0");
	BAD("--max-recipients", "--max-recipients", "100001");
	BAD("--max-recipients", "--max-recipients", "ten");
	BAD("--max-connections:", "--max-connections", "1000001");
	BAD("--max-connections:", "--max-connections", "-5");
	BAD("--max-connections-per-ip", "--max-connections-per-ip", "1000001");
	BAD("--max-connections-per-ip", "--max-connections-per-ip", "1.5");
	BAD("--max-errors", "--max-errors", "0");
	BAD("--max-errors", "--max-errors", "100001");
}

Test(config, seconds)
{
	OK("--timeout", "0.5", "--shutdown-timeout", "86400");
	cr_assert_float_eq(C.timeout, 0.5, 1e-9);
	cr_assert_float_eq(C.shutdown_timeout, 86400, 1e-9);
	BAD("--timeout", "--timeout", "0");
	BAD("--timeout", "--timeout", "-1");
	BAD("--timeout", "--timeout", "86401");
	BAD("--timeout", "--timeout", "5s");
	BAD("--timeout", "--timeout", "nan");
	BAD("--timeout", "--timeout", "inf");
	BAD("--shutdown-timeout", "--shutdown-timeout", "");
	BAD("--shutdown-timeout", "--shutdown-timeout", "+3");
}

Test(config, greet_pause)
{
	OK("--greet-pause", "2.5");
	cr_assert_float_eq(C.greet_pause, 2.5, 1e-9);
	OK("--reject-early-talkers");
	cr_assert_eq(C.reject_early_talkers, 1);
	cr_assert_float_eq(C.greet_pause, 1, 1e-9, "default pause with early-talker rejection");
	OK("--reject-early-talkers", "--greet-pause", "3");
	cr_assert_float_eq(C.greet_pause, 3, 1e-9);
	OK("--greet-pause", "60");
	/* 0, the documented default, turns the implied pause off. */
	OK("--reject-early-talkers", "--greet-pause", "0");
	cr_assert_float_eq(C.greet_pause, 0, 1e-9);
	BAD("--greet-pause", "--greet-pause", "61");
	BAD("--greet-pause", "--greet-pause", "-1");
	BAD("--greet-pause", "--greet-pause", "soon");
}

Test(config, flags)
{
	OK("--no-pipelining", "--check", "-v");
	cr_assert_eq(C.pipelining, 0);
	cr_assert_eq(C.check, 1);
	cr_assert_eq(C.verbose, 1);
	OK("--verbose");
	cr_assert_eq(C.verbose, 1);
	BAD("--no-pipelining takes no value", "--no-pipelining=yes");
	BAD("--check takes no value", "--check=1");
	BAD("-v takes no value", "-vv");
}

Test(config, enums)
{
	OK("--bare-lf", "normalize", "--log-format", "json");
	cr_assert_eq(C.bare_lf, DATA_BARE_NORMALIZE);
	cr_assert_eq(C.log_format, LOG_FORMAT_JSON);
	OK("--bare-lf=reject", "--log-format=text");
	cr_assert_eq(C.bare_lf, DATA_BARE_REJECT);
	cr_assert_eq(C.log_format, LOG_FORMAT_TEXT);
	BAD("--bare-lf", "--bare-lf", "allow");
	BAD("--bare-lf", "--bare-lf", "Reject");
	BAD("--log-format", "--log-format", "xml");
}

Test(config, pool_threads_and_workers)
{
	OK("--pool-threads", "1");
	cr_assert_eq(C.pool_threads, 1);
	OK("--pool-threads", "256", "--workers", "1", "-w", "1");
	cr_assert_eq(C.pool_threads, 256);
	BAD("--pool-threads", "--pool-threads", "0");
	BAD("--pool-threads", "--pool-threads", "257");
	BAD("--workers", "--workers", "0");
	BAD("--workers", "--workers", "x");
	BAD("--workers: more than one worker is not supported yet", "--workers", "2");
	BAD("not supported yet", "-w", "4");
}

Test(config, tls_options)
{
	BAD("--tls-cert: /nonexistent/cert.pem: No such file", "--tls-cert",
	    "/nonexistent/cert.pem");
	BAD("--tls-key: /nonexistent/k.pem", "--tls-key", "/nonexistent/k.pem");
	BAD("--tls-cert and --tls-key go together", "--tls-cert", "/etc/hostname");
	BAD("--tls-listen needs --tls-cert", "--tls-listen", "127.0.0.1:465");
	BAD("--require-tls needs --tls-cert", "--require-tls");
	BAD("--tls-min-version: '1.1'", "--tls-min-version", "1.1");
	BAD("--tls-listen: 'nowhere'", "--tls-listen", "nowhere");
	OK("--tls-cert", "/etc/hostname", "--tls-key", "/etc/hostname",
	    "--tls-listen", "127.0.0.1:465", "--require-tls", "--tls-min-version",
	    "1.3", "--tls-ciphers", "HIGH");
	cr_assert_str_eq(C.tls_cert, "/etc/hostname");
	cr_assert_eq(C.require_tls, 1);
	cr_assert_eq(C.nlisten, 1);
	cr_assert_eq(C.listen[0].implicit_tls, 1);
	cr_assert_str_eq(C.tls_min_version, "1.3");
}

Test(config, auth_options)
{
	BAD("--auth: 'CRAM-MD5'", "--auth", "PLAIN,CRAM-MD5");
	BAD("--auth: no mechanism", "--auth", ",");
	BAD("--auth needs --tls-cert", "--auth", "PLAIN");
	BAD("--auth-insecure needs --auth", "--auth-insecure");
	OK("--auth", "plain,LOGIN", "--auth-insecure");
	cr_assert_eq(C.auth_mechs, CONFIG_AUTH_PLAIN | CONFIG_AUTH_LOGIN);
	cr_assert_eq(C.auth_insecure, 1);
	OK("--auth", "LOGIN", "--tls-cert", "/etc/hostname", "--tls-key", "/etc/hostname");
	cr_assert_eq(C.auth_mechs, CONFIG_AUTH_LOGIN);
}

Test(config, proxy_options)
{
	OK("--proxy-protocol");
	cr_assert_eq(C.proxy_protocol, 1);
	cr_assert_eq(C.proxy_trusted.n, 2, "default 127.0.0.0/8;::1");
	OK("--proxy-protocol", "--proxy-trusted", "10.0.0.0/8, 192.0.2.1 2001:db8::/32");
	cr_assert_eq(C.proxy_trusted.n, 3);
	BAD("--proxy-trusted: '10.0.0.0/33' is not an address or network",
	    "--proxy-trusted", "10.0.0.0/33");
	BAD("--proxy-trusted: 'nonsense' is not an address or network",
	    "--proxy-trusted", "127.0.0.1;nonsense");
}

Test(config, unknown_and_stray)
{
	BAD("unknown option '--bogus'", "--bogus");
	BAD("unknown option '--bogus'", "--bogus=1");
	BAD("unknown option '-Z'", "-Z");
	BAD("unexpected argument 'stray'", "stray");
	BAD("unexpected argument '-'", "-");
	BAD("--max-size needs a value", "--max-size");
	/* A prefix of an option is not the option. */
	BAD("unknown option '--max'", "--max", "5");
}

Test(config, help_and_version)
{
	cr_assert_eq(parse("--help", NULL), CONFIG_EXIT_OK);
	cr_assert_eq(parse("-h", NULL), CONFIG_EXIT_OK);
	cr_assert_eq(parse("--version", NULL), CONFIG_EXIT_OK);
	/* Options before --help are still checked. */
	cr_assert_eq(parse("--max-size", "x", "--help", NULL), CONFIG_ERROR);
}

Test(config, later_value_wins)
{
	OK("--timeout", "5", "--timeout", "7", "-s", "1", "-s", "2");
	cr_assert_float_eq(C.timeout, 7, 1e-9);
	cr_assert_eq(C.max_size, 2);
}

Test(config, file)
{
	const char *path = write_file(
	    "# smtphook test configuration\n"
	    "\n"
	    "listen 127.0.0.1:3525\n"
	    "  hostname   mx.test.example  \n"
	    "--max-size=1000\r\n"
	    "max-recipients\t5\n"
	    "no-pipelining\n"
	    "plugin sink:timeout=5\n"
	    "plugin /abs/policy.so\n"
	    "bare-lf normalize\n");

	OK("-c", path);
	cr_assert_eq(C.nlisten, 1);
	cr_assert_eq(listen_port(0), 3525);
	cr_assert_str_eq(C.hostname, "mx.test.example");
	cr_assert_eq(C.max_size, 1000);
	cr_assert_eq(C.max_recipients, 5);
	cr_assert_eq(C.pipelining, 0);
	cr_assert_eq(C.nplugins, 2);
	cr_assert_str_eq(C.plugin_specs[0], "sink:timeout=5");
	cr_assert_str_eq(C.plugin_specs[1], "/abs/policy.so");
	cr_assert_eq(C.bare_lf, DATA_BARE_NORMALIZE);

	/* The command line goes on after the file, in order. */
	OK("-p", "first", "--config", path, "--max-size", "9", "-p", "last");
	cr_assert_eq(C.max_size, 9);
	cr_assert_eq(C.nplugins, 4);
	cr_assert_str_eq(C.plugin_specs[0], "first");
	cr_assert_str_eq(C.plugin_specs[3], "last");
}

/* file_error - a one-file config fails; the error is in err */
static void
file_error(const char *text, const char *want)
{
	const char *path = write_file(text);
	char where[128];

	cr_assert_eq(parse("-c", path, NULL), CONFIG_ERROR, "accepted: %s", text);
	snprintf(where, sizeof(where), "%s:", path);
	cr_assert(strncmp(err, where, strlen(where)) == 0, "no file: %s", err);
	cr_assert(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
	unlink(path);
	tmpname[0] = '\0';
}

Test(config, file_errors_name_file_and_line)
{
	file_error("max-size 10\n# ok\nbogus 1\n", ":3: unknown option 'bogus'");
	file_error("\n\nmax-size ten\n", ":3: --max-size: 'ten'");
	file_error("max-size\n", ":1: --max-size needs a value");
	file_error("check yes\n", ":1: --check takes no value");
	file_error("timeout 0\n", ":1: --timeout");
	file_error("listen nowhere\n", ":1: --listen");
	file_error("tls-cert /x\n", ":1: --tls-cert: /x: No such file");
	file_error("workers 2\n", ":1: --workers: more than one worker is not supported yet");
	file_error("config /etc/other.conf\n", ":1: --config: not allowed inside a config file");
}

Test(config, file_missing)
{
	BAD("--config: /nonexistent/smtphook.conf", "-c", "/nonexistent/smtphook.conf");
}

Test(config, file_workers_1_ok)
{
	const char *path = write_file("workers 1\nverbose\n");

	OK("--config", path);
	cr_assert_eq(C.verbose, 1);
}
