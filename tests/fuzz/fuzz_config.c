/*
 * fuzz_config.c - libFuzzer target for the command line and -c FILE
 * parser (server/config.c)
 *
 * Input layout:
 *	FLAGS ARGS [ "\0\0" FILE ]
 * ARGS is split at NUL octets into argv[1..] (after a fixed
 * "--hostname=fuzz.invalid", so no resolver is ever asked; a later -n
 * still overrides it).  When the input holds "\0\0", what follows is the
 * text of a config file, written to a memfd; every argument "@" becomes
 * its /proc/self/fd/N path, and FLAGS's low bit, when set, also
 * appends "-c PATH".  config_parse() then runs on a fresh config and
 * config_free() releases it, whatever the result, so LeakSanitizer sees
 * every path.
 *
 * Checked: the result is one of the three; an error leaves a non-empty,
 * NUL-terminated message; a success leaves a configuration the daemon
 * can use (1-16 listeners with printable texts, a printable hostname,
 * non-empty plugin specs, limits and times inside their documented
 * ranges, TLS files given together, AUTH only with a way to offer it).
 *
 *	cmake --preset fuzz && cmake --build --preset fuzz -j2
 *	build-fuzz/fuzz/fuzz_config -dict=tests/fuzz/fuzz_config.dict \
 *	    tests/fuzz/corpus/fuzz_config
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)
#define ARGV_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int LLVMFuzzerInitialize(int *, char ***);

static int file_fd = -1;
static char file_path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int null;

	(void)argc, (void)argv;
	/* --help and --version print to stdout: keep the terminal quiet. */
	if ((null = open("/dev/null", O_WRONLY)) >= 0) {
		dup2(null, STDOUT_FILENO);
		close(null);
	}
	file_fd = memfd_create("fuzz_config", MFD_CLOEXEC);
	if (file_fd < 0) {
		char tmpl[] = "/tmp/fuzz_config.XXXXXX";

		file_fd = mkstemp(tmpl);
		CHECK(file_fd >= 0);
		unlink(tmpl);
	}
	snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
	return 0;
}

/* printable - octets 0x21-0x7e only (a hostname), or also SP */
static int
printable(const char *s, int space_ok)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < (space_ok ? 0x20 : 0x21) ||
		    (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* check_config - what a successful parse promises the daemon */
static void
check_config(const struct config *c)
{
	size_t i;

	CHECK(c->nlisten >= 1 && c->nlisten <= CONFIG_MAX_LISTEN);
	for (i = 0; i < c->nlisten; i++) {
		const struct config_listen *l = &c->listen[i];

		CHECK(memchr(l->text, '\0', sizeof(l->text)) != NULL);
		CHECK(l->addrlen > 0 && l->addrlen <= sizeof(l->addr));
		CHECK(l->addr.ss_family == AF_INET || l->addr.ss_family == AF_INET6);
		CHECK(!l->implicit_tls || c->tls_cert != NULL);
	}
	CHECK(c->hostname[0] != '\0');
	CHECK(memchr(c->hostname, '\0', sizeof(c->hostname)) != NULL);
	CHECK(printable(c->hostname, 0));
	CHECK(c->nplugins <= CONFIG_MAX_PLUGINS);
	for (i = 0; i < c->nplugins; i++)
		CHECK(c->plugin_specs[i] != NULL && c->plugin_specs[i][0] != '\0');
	CHECK(c->max_size <= (1ULL << 62));
	CHECK(c->max_recipients >= 1 && c->max_recipients <= 100000);
	CHECK(c->max_connections <= 1000000);
	CHECK(c->max_connections_per_ip <= 1000000);
	CHECK(c->max_errors >= 1 && c->max_errors <= 100000);
	CHECK(c->timeout > 0 && c->timeout <= 86400);
	CHECK(c->shutdown_timeout > 0 && c->shutdown_timeout <= 86400);
	CHECK(c->greet_pause >= 0 && c->greet_pause <= 60);
	CHECK(c->pool_threads >= 1 && c->pool_threads <= 256);
	CHECK(c->bare_lf == DATA_BARE_REJECT || c->bare_lf == DATA_BARE_NORMALIZE);
	CHECK(c->log_format == LOG_FORMAT_TEXT || c->log_format == LOG_FORMAT_JSON);
	CHECK((c->tls_cert != NULL) == (c->tls_key != NULL));
	CHECK(!c->require_tls || c->tls_cert != NULL);
	CHECK(c->tls_min_version == NULL || strcmp(c->tls_min_version, "1.2") == 0 ||
	    strcmp(c->tls_min_version, "1.3") == 0);
	CHECK((c->auth_mechs & ~(unsigned)(CONFIG_AUTH_PLAIN | CONFIG_AUTH_LOGIN)) == 0);
	CHECK(!c->auth_insecure || c->auth_mechs != 0);
	CHECK(c->auth_mechs == 0 || c->tls_cert != NULL || c->auth_insecure);
	CHECK(c->nfile_storage <= sizeof(c->file_storage) / sizeof(c->file_storage[0]));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	enum config_result r;
	char *argv[ARGV_MAX + 4], *args, *p, *end, errbuf[512];
	const uint8_t *sep = NULL;
	size_t alen, i;
	int argc = 0, want_c;

	if (file_fd < 0)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size == 0)
		return 0;
	want_c = data[0] & 1;
	data++, size--;
	for (i = 0; i + 1 < size; i++)
		if (data[i] == 0 && data[i + 1] == 0) {
			sep = data + i;
			break;
		}
	alen = sep != NULL ? (size_t)(sep - data) : size;

	/* The config file: the octets after "\0\0", NULs and all. */
	CHECK(ftruncate(file_fd, 0) == 0);
	if (sep != NULL && size - alen - 2 > 0)
		CHECK(pwrite(file_fd, sep + 2, size - alen - 2, 0) ==
		    (ssize_t)(size - alen - 2));

	/* argv: a copy of ARGS with each NUL ending an argument. */
	args = malloc(alen + 1);
	CHECK(args != NULL);
	memcpy(args, data, alen);
	args[alen] = '\0';
	argv[argc++] = (char *)"smtphookd";
	argv[argc++] = (char *)"--hostname=fuzz.invalid";
	for (p = args, end = args + alen; p < end;) {
		size_t n = strlen(p);

		if (argc < ARGV_MAX)
			argv[argc++] = strcmp(p, "@") == 0 ? file_path : p;
		p += n + 1;
	}
	if (sep != NULL && want_c) {
		argv[argc++] = (char *)"-c";
		argv[argc++] = file_path;
	}
	argv[argc] = NULL;

	config_defaults(&cfg);
	memset(errbuf, 'Z', sizeof(errbuf));
	r = config_parse(&cfg, argc, argv, errbuf, sizeof(errbuf));
	CHECK(r == CONFIG_OK || r == CONFIG_EXIT_OK || r == CONFIG_ERROR);
	if (r == CONFIG_ERROR) {
		CHECK(memchr(errbuf, '\0', sizeof(errbuf)) != NULL);
		CHECK(errbuf[0] != '\0');
	} else if (r == CONFIG_OK) {
		check_config(&cfg);
	}
	config_free(&cfg);
	CHECK(cfg.nfile_storage == 0);
	free(args);
	return 0;
}
