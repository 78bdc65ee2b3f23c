/*
 * chunk_recorder.c - test plugin for the chunk hook and sh_tx_trace()
 *
 * ABI feature: the body stream as a storing plugin sees it (chunk, in
 * order, dot-unstuffed, CRLF kept), the trace block (sh_tx_trace) it must
 * write first, the final head after edits (sh_tx_head_part),
 * per-transaction private state (sh_tx_set with a destructor), and
 * ACCEPT at eom.
 *
 * Arguments:
 *	file=PATH	required.  Every chunk is appended to PATH.tmp.<txid>
 *			as it arrives; at eom the plugin writes PATH.new.<txid>
 *			= the sh_tx_trace() text followed by every chunk it
 *			received, in order, renames it to PATH and ACCEPTs.
 *			When an earlier plugin edited the header section
 *			(head_edited), the final message instead: the parts
 *			of sh_tx_head_part() (text, or ranges of the chunks),
 *			then the chunks from header_size on.  A later message
 *			replaces PATH.
 *	headers=1	also record each header hook call, one "name: value"
 *			line each, to PATH.headers (written, by rename, at
 *			eom, before PATH itself appears).
 *
 * A transaction that ends without eom (reset, disconnect) removes its
 * temporary files in the destructor.  Write errors answer TEMPFAIL at
 * eom (452 4.3.1).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <smtphook.h>

struct rec_conf {
	char *file;
	int headers;
};

/* Per-transaction state. */
struct rec_tx {
	int fd;			/* PATH.tmp.<txid>, chunks */
	char *tmp;
	char *hdrs;		/* header lines, in memory */
	size_t hdrs_len, hdrs_cap;
	int failed;
};

static const char *const rec_keys[] = { "file", "headers", NULL };

/* write_all - write(2) until done; 0 or -1 */
static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* rec_tx_free - the transaction is over: drop what was not renamed */
static void
rec_tx_free(void *data)
{
	struct rec_tx *t = data;

	if (t->fd >= 0)
		close(t->fd);
	if (t->tmp != NULL) {
		unlink(t->tmp);
		free(t->tmp);
	}
	free(t->hdrs);
	free(t);
}

/* rec_state - this transaction's state, created on first use (an earlier
 * plugin may have decided the data hook, so it is not created there) */
static struct rec_tx *
rec_state(sh_ctx *ctx)
{
	struct rec_conf *conf = sh_plugin_get(ctx);
	const sh_tx_info *tx = sh_tx(ctx);
	struct rec_tx *t = sh_tx_get(ctx);
	size_t n;

	if (t != NULL)
		return t;
	if (tx == NULL || (t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->fd = -1;
	n = strlen(conf->file) + strlen(tx->id) + 16;
	if ((t->tmp = malloc(n)) == NULL) {
		free(t);
		return NULL;
	}
	snprintf(t->tmp, n, "%s.tmp.%s", conf->file, tx->id);
	t->fd = open(t->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (t->fd < 0) {
		sh_error(ctx, "chunk_recorder: %s: %s", t->tmp, strerror(errno));
		free(t->tmp);
		t->tmp = NULL;
		t->failed = 1;
	}
	sh_tx_set(ctx, t, rec_tx_free);
	return t;
}

static int
rec_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct rec_conf *conf;
	size_t i;

	if ((conf = calloc(1, sizeof(*conf))) == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	sh_plugin_set(ctx, conf);
	for (i = 0; i < nargs; i++) {
		if (strcmp(args[i].key, "file") == 0) {
			free(conf->file);
			conf->file = strdup(args[i].value);
		} else if (strcmp(args[i].key, "headers") == 0) {
			conf->headers = strcmp(args[i].value, "1") == 0 ||
			    strcmp(args[i].value, "yes") == 0;
		}
	}
	if (conf->file == NULL || conf->file[0] == '\0') {
		sh_error(ctx, "file=PATH is required");
		/* fini is only called after a successful init. */
		free(conf->file);
		free(conf);
		sh_plugin_set(ctx, NULL);
		return -1;
	}
	return 0;
}

static void
rec_fini(sh_ctx *ctx)
{
	struct rec_conf *conf = sh_plugin_get(ctx);

	if (conf != NULL) {
		free(conf->file);
		free(conf);
	}
	sh_plugin_set(ctx, NULL);
}

/* rec_header - one "name: value" line per call, kept until eom */
static sh_verdict
rec_header(sh_ctx *ctx, const char *name, size_t name_len, const char *value,
    size_t value_len)
{
	struct rec_conf *conf = sh_plugin_get(ctx);
	struct rec_tx *t;
	size_t need = name_len + value_len + 3;

	if (!conf->headers)
		return SH_ACCEPT;	/* no more headers for me */
	if ((t = rec_state(ctx)) == NULL)
		return SH_CONTINUE;
	if (t->hdrs_len + need > t->hdrs_cap) {
		size_t ncap = t->hdrs_cap ? t->hdrs_cap : 1024;
		char *p;

		while (ncap < t->hdrs_len + need)
			ncap *= 2;
		if ((p = realloc(t->hdrs, ncap)) == NULL) {
			t->failed = 1;
			return SH_CONTINUE;
		}
		t->hdrs = p;
		t->hdrs_cap = ncap;
	}
	memcpy(t->hdrs + t->hdrs_len, name, name_len);
	t->hdrs_len += name_len;
	memcpy(t->hdrs + t->hdrs_len, ": ", 2);
	t->hdrs_len += 2;
	memcpy(t->hdrs + t->hdrs_len, value, value_len);
	t->hdrs_len += value_len;
	t->hdrs[t->hdrs_len++] = '\n';
	return SH_CONTINUE;
}

/* rec_chunk - append the chunk to the temporary file at once */
static sh_verdict
rec_chunk(sh_ctx *ctx, const unsigned char *data, size_t len)
{
	struct rec_tx *t = rec_state(ctx);

	if (t == NULL) {
		sh_error(ctx, "chunk_recorder: no transaction state");
		return SH_CONTINUE;
	}
	if (!t->failed && write_all(t->fd, data, len) < 0)
		t->failed = 1;
	return SH_CONTINUE;
}

/* copy_range - len octets of in from offset off to out (len
 * UINT64_MAX: to the end); 0 or -1 */
static int
copy_range(int in, int out, uint64_t off, uint64_t len)
{
	char buf[65536];
	ssize_t n;

	while (len > 0) {
		n = pread(in, buf, len < sizeof(buf) ? (size_t)len : sizeof(buf),
		    (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (n == 0 && len != UINT64_MAX))
			return -1;
		if (n == 0)
			return 0;
		if (write_all(out, buf, (size_t)n) < 0)
			return -1;
		off += (uint64_t)n;
		if (len != UINT64_MAX)
			len -= (uint64_t)n;
	}
	return 0;
}

/* write_file - PATH.new.<txid>, renamed to dest: head, then copy_fd (if
 * >= 0); with ctx (an edited head), the final head's parts instead of
 * head and copy_fd from header_size on */
static int
write_file(const char *dest, const char *txid, const char *head,
    size_t head_len, int copy_fd, sh_ctx *ctx)
{
	char tmp[4096];
	sh_head_part part;
	size_t i;
	int fd, rc = -1;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new.%s", dest, txid) >=
	    sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (ctx != NULL) {
		for (i = 0; sh_tx_head_part(ctx, i, &part) == 0; i++)
			if (part.text != NULL ? write_all(fd, part.text, part.len) < 0 :
			    copy_range(copy_fd, fd, part.offset, part.len) < 0)
				goto out;
		if (copy_range(copy_fd, fd, sh_tx(ctx)->header_size, UINT64_MAX) < 0)
			goto out;
	} else {
		if (write_all(fd, head, head_len) < 0)
			goto out;
		if (copy_fd >= 0 && copy_range(copy_fd, fd, 0, UINT64_MAX) < 0)
			goto out;
	}
	rc = 0;
out:
	if (close(fd) < 0)
		rc = -1;
	if (rc == 0 && rename(tmp, dest) < 0)
		rc = -1;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/* rec_eom - trace block + chunks into PATH, then take the message */
static sh_verdict
rec_eom(sh_ctx *ctx)
{
	struct rec_conf *conf = sh_plugin_get(ctx);
	struct rec_tx *t = rec_state(ctx);
	const sh_tx_info *tx = sh_tx(ctx);
	const char *trace;
	size_t trace_len = sh_tx_trace(ctx, &trace);
	char hpath[4096];

	if (t == NULL || tx == NULL || t->failed)
		return sh_tempfail(ctx, 452, "4.3.1", "chunk_recorder: cannot record");
	/* Reopen the chunk file for reading and copy it after the trace. */
	close(t->fd);
	t->fd = open(t->tmp, O_RDONLY | O_CLOEXEC);
	if (t->fd < 0)
		return sh_tempfail(ctx, 452, "4.3.1", "chunk_recorder: cannot reopen");
	if (conf->headers) {
		snprintf(hpath, sizeof(hpath), "%s.headers", conf->file);
		if (write_file(hpath, tx->id, t->hdrs != NULL ? t->hdrs : "",
		    t->hdrs_len, -1, NULL) < 0)
			return sh_tempfail(ctx, 452, "4.3.1",
			    "chunk_recorder: cannot write headers");
	}
	/* 1.1: the final message, when an earlier plugin edited it. */
	if (write_file(conf->file, tx->id, trace, trace_len, t->fd,
	    tx->head_edited ? ctx : NULL) < 0)
		return sh_tempfail(ctx, 452, "4.3.1", "chunk_recorder: cannot write");
	sh_log(ctx, SH_LOG_INFO, "chunk_recorder: recorded %llu octets to %s",
	    (unsigned long long)tx->body_size, conf->file);
	return SH_ACCEPT;
}

SH_PLUGIN_DEFINE(
	.name = "chunk_recorder",
	.version = "1.0",
	.arg_keys = rec_keys,
	.init = rec_init,
	.fini = rec_fini,
	.header = rec_header,
	.chunk = rec_chunk,
	.eom = rec_eom,
);
