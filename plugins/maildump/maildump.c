/*
 * maildump.c - store every message in a Maildir (SPEC §5, issue 3)
 *
 *	-p maildump:dir=DIR[,fsync=yes|no][,split=none|rcpt]
 *
 * The life of a message, and which thread does what:
 *
 *	data	(loop)	take a spare spool: an open anonymous file in
 *			DIR/tmp (none spare: open one on the pool, PENDING)
 *	chunk	(loop)	pwrite(2) the piece into the spool (page cache)
 *	eom	(loop)	build the header block (Return-Path, Delivered-To,
 *			the host's trace block), hand spool + block to the
 *			pool, return PENDING; when an earlier plugin edited
 *			the header section, the block holds the final
 *			head's text and the job lists the pieces of the
 *			file (text, spool ranges) in order
 *			(edited_block())
 *		(pool)	md_store(): tmp/<unique>, header block, the body
 *			copied in the kernel (or, edited, each piece:
 *			text written, ranges copied in the kernel), fsync,
 *			rename into new/, fsync of new/ (store.c)
 *		(loop)	md_done(): the spool back to the spares; resume
 *			ACCEPT, or TEMPFAIL 452 4.3.1
 *
 * Why a spool and a copy: the trace block is complete only at eom (the
 * plugins before us add headers there), and it must come first in the
 * file, so the body cannot be streamed into the final file.  The spool
 * keeps memory constant; being anonymous, it leaves nothing behind when
 * the transaction is reset, rejected or cut, or when the daemon dies.
 *
 * Why spares: creating (and finally closing) a file can wait - for the
 * journal while other sessions' fsyncs commit, for the inode allocator's
 * search (0.8-1.4 ms per create measured on the test VM under load).  So
 * no file is created, renamed or closed on the loop: spools are opened
 * on the pool and reused (overwritten from offset 0; we copy only
 * body_len octets) instead of being closed after each message.  A write
 * into an existing file's page cache does not wait for the disk.
 *
 * Ownership: a spool is in exactly one place - the spares, a
 * transaction's state (sh_tx_set, with a destructor), or a pool job,
 * whose done callback always runs and puts it back.  A job whose session
 * went away (md_cancel) stops before its commit point and removes its
 * tmp file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <smtphook.h>

#include "helpers/sh_helpers.h"
#include "maildump.h"

#define STORAGE_TEXT "Requested action not taken: insufficient system storage"

/* Per-transaction state. */
struct md_tx {
	int spool;		/* the body so far; -1: none (yet) */
	uint64_t len;		/* octets of this body in the spool */
	int bad;		/* a write failed: do not reuse the spool */
	char err[400];		/* a pool-side failure, logged by reset */
};

static const char *const md_keys[] = { "dir", "fsync", "split", NULL };

/* storage_fail - the one reply for every storage error */
static sh_verdict
storage_fail(sh_ctx *ctx)
{
	return sh_tempfail(ctx, 452, "4.3.1", STORAGE_TEXT);
}

/* ---- start-up ---- */

/* mkdir_parents - mkdir -p of path's parent directories (mode 0700) */
static int
mkdir_parents(const char *path)
{
	char *p = strdup(path), *s;
	int rc = 0;

	if (p == NULL)
		return -1;
	for (s = p + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			rc = -1;
			break;
		}
		*s = '/';
	}
	free(p);
	return rc;
}

/* host_name - gethostname() made safe for a Maildir name: '/' and ':'
 * as \057 and \072 (the Maildir convention), other odd octets '_' */
static void
host_name(char *out, size_t size)
{
	char h[256];
	size_t i, n = 0;

	if (gethostname(h, sizeof(h)) < 0 || h[0] == '\0')
		snprintf(h, sizeof(h), "localhost");
	h[sizeof(h) - 1] = '\0';
	for (i = 0; h[i] != '\0' && n + 5 < size; i++) {
		unsigned char c = (unsigned char)h[i];

		if (c == '/' || c == ':') {
			n += (size_t)snprintf(out + n, size - n, "\\%03o", c);
			continue;
		}
		out[n++] = c <= ' ' || c >= 0x7f ? '_' : (char)c;
	}
	out[n] = '\0';
}

static void
conf_free(struct md_conf *c)
{
	if (c == NULL)
		return;
	while (c->nspares > 0)
		close(c->spares[--c->nspares]);
	if (c->topfd >= 0)
		close(c->topfd);
	if (c->tmpfd >= 0)
		close(c->tmpfd);
	if (c->newfd >= 0)
		close(c->newfd);
	free(c->dir);
	free(c);
}

/* open_dirs - create the Maildir as needed, keep its directories open */
static int
open_dirs(sh_ctx *ctx, struct md_conf *c)
{
	const char *what = c->dir;

	if (mkdir_parents(c->dir) < 0 || md_make_maildir(AT_FDCWD, c->dir, 1, 0) < 0)
		goto fail;
	if ((c->topfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto fail;
	what = "tmp/";
	if ((c->tmpfd = openat(c->topfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto fail;
	what = "new/";
	if ((c->newfd = openat(c->topfd, "new", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto fail;
	return 0;
fail:
	sh_error(ctx, "cannot use Maildir %s (%s): %s", c->dir, what, strerror(errno));
	return -1;
}

/* Files in a tmp/ older than this are a crash's leftovers and are
 * removed at start-up (the Maildir rule: 36 hours). */
#define MD_STALE_SECS (36 * 60 * 60)

/* clean_tmp - unlink the regular files in NAME/tmp (below dirfd) whose
 * mtime is older than MD_STALE_SECS; adds the count to *removed */
static void
clean_tmp(sh_ctx *ctx, int dirfd, const char *name, time_t cutoff,
    size_t *removed)
{
	char path[MD_RCPT_DIR_MAX + 8];
	struct dirent *e;
	struct stat st;
	DIR *d;
	int fd;

	snprintf(path, sizeof(path), "%s/tmp", name);
	fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_mtime >= cutoff)
			continue;
		if (unlinkat(fd, e->d_name, 0) == 0)
			(*removed)++;
		else
			sh_log(ctx, SH_LOG_WARN, "cannot remove stale %s/%s: %s",
			    path, e->d_name, strerror(errno));
	}
	closedir(d);
}

/* clean_stale - start-up: DIR/tmp and, with split=rcpt, every
 * recipient's tmp/ (a crash between link and rename leaves one there) */
static void
clean_stale(sh_ctx *ctx, struct md_conf *c)
{
	time_t cutoff = time(NULL) - MD_STALE_SECS;
	size_t removed = 0;
	struct dirent *e;
	DIR *d;
	int fd;

	clean_tmp(ctx, c->topfd, ".", cutoff, &removed);
	if (c->split &&
	    (fd = openat(c->topfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		if ((d = fdopendir(fd)) == NULL) {
			close(fd);
		} else {
			while ((e = readdir(d)) != NULL)
				if (e->d_name[0] != '.' &&
				    strcmp(e->d_name, "tmp") != 0 &&
				    strcmp(e->d_name, "new") != 0 &&
				    strcmp(e->d_name, "cur") != 0 &&
				    strlen(e->d_name) <= MD_RCPT_DIR_MAX)
					clean_tmp(ctx, c->topfd, e->d_name, cutoff,
					    &removed);
			closedir(d);
		}
	}
	if (removed > 0)
		sh_log(ctx, SH_LOG_INFO, "removed %zu stale file%s (older than "
		    "36 hours) from %s/tmp%s", removed, removed == 1 ? "" : "s",
		    c->dir, c->split ? " and the recipients' tmp/" : "");
}

/* spare_put - a spool back to the spares; 0, or -1 when full */
static int
spare_put(struct md_conf *c, int fd)
{
	if (c->nspares + c->reserved >= MD_SPARES_MAX)
		return -1;
	c->spares[c->nspares++] = fd;
	return 0;
}

/* spare_reserve - promise a job a slot for the spool it will return */
static int
spare_reserve(struct md_conf *c)
{
	if (c->nspares + c->reserved >= MD_SPARES_MAX)
		return 0;
	c->reserved++;
	return 1;
}

static int
md_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct md_conf *c = calloc(1, sizeof(*c));
	size_t i;
	int fd;

	if (c == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	c->topfd = c->tmpfd = c->newfd = -1;
	c->sync = 1;
	for (i = 0; i < nargs; i++) {
		const char *k = args[i].key, *v = args[i].value ? args[i].value : "";

		if (strcmp(k, "dir") == 0) {
			free(c->dir);
			if ((c->dir = strdup(v)) == NULL) {
				sh_error(ctx, "out of memory");
				goto fail;
			}
		} else if (strcmp(k, "fsync") == 0) {
			if (sh_parse_bool(v, &c->sync) < 0) {
				sh_error(ctx, "fsync= must be yes or no, not '%s'", v);
				goto fail;
			}
		} else if (strcmp(k, "split") == 0) {
			if (strcmp(v, "none") != 0 && strcmp(v, "rcpt") != 0) {
				sh_error(ctx, "split= must be none or rcpt, not '%s'", v);
				goto fail;
			}
			c->split = strcmp(v, "rcpt") == 0;
		}
	}
	if (c->dir == NULL || c->dir[0] == '\0') {
		sh_error(ctx, "dir= is required (e.g. dir=/var/spool/maildump)");
		goto fail;
	}
	host_name(c->host, sizeof(c->host));
	if (open_dirs(ctx, c) < 0)
		goto fail;
	clean_stale(ctx, c);
	/* Fail now, not on the first message, if tmp/ takes no files;
	 * the probe becomes the first spare. */
#ifdef O_TMPFILE
	fd = openat(c->tmpfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL))
		c->no_tmpfile = 1;	/* e.g. NFS: name it and unlink it */
	else if (fd < 0)
		goto probe_failed;
#else
	c->no_tmpfile = 1;
	fd = -1;
#endif
	if (fd < 0 && (fd = md_spool_open(c)) < 0)
		goto probe_failed;
	spare_put(c, fd);
	sh_plugin_set(ctx, c);
	return 0;
probe_failed:
	sh_error(ctx, "cannot create files in %s/tmp: %s", c->dir, strerror(errno));
fail:
	conf_free(c);
	return -1;
}

static void
md_fini(sh_ctx *ctx)
{
	conf_free(sh_plugin_get(ctx));
}

/* ---- the transaction ---- */

static void
md_tx_free(void *data)
{
	struct md_tx *t = data;

	/* Only if reset could not take it (no memory for a pool job). */
	if (t->spool >= 0)
		close(t->spool);
	free(t);
}

/* md_tx_state - this transaction's state, created on first use */
static struct md_tx *
md_tx_state(sh_ctx *ctx)
{
	struct md_tx *t = sh_tx_get(ctx);

	if (t != NULL)
		return t;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		sh_log(ctx, SH_LOG_ERROR, "out of memory");
		return NULL;
	}
	t->spool = -1;
	sh_tx_set(ctx, t, md_tx_free);
	return sh_tx_get(ctx) == t ? t : NULL;
}

/* A spool being opened on the pool (no spare was left), with the chunk
 * that needed it when it was a chunk hook. */
struct md_open {
	struct md_conf *conf;
	struct md_tx *tx;	/* valid in done only if sh_resume() == 0 */
	sh_pending tok;
	const unsigned char *data;	/* the chunk: valid until we resume */
	size_t len;
	int reserved;		/* a spare slot is promised to fd */
	int fd;
	int err;
};

static void
open_work(void *arg)
{
	struct md_open *o = arg;

	o->err = 0;
	if ((o->fd = md_spool_open(o->conf)) < 0)
		o->err = errno;
	else if (o->len > 0 && md_pwrite_all(o->fd, o->data, o->len, 0) < 0)
		o->err = errno;
}

static void
open_done(void *arg)
{
	struct md_open *o = arg;
	int ok = o->err == 0;

	if (sh_resume(o->tok, ok ? SH_CONTINUE : SH_TEMPFAIL, ok ? 0 : 452,
	    "4.3.1", ok ? NULL : STORAGE_TEXT) == 0) {
		/* The session waits for us: its state is alive. */
		if (ok) {
			o->tx->spool = o->fd;
			o->tx->len = o->len;
			o->fd = -1;
		} else {
			snprintf(o->tx->err, sizeof(o->tx->err), "cannot %s a spool "
			    "file in %s/tmp: %s", o->fd < 0 ? "create" : "write",
			    o->conf->dir, strerror(o->err));
		}
	}
	if (o->reserved)
		o->conf->reserved--;
	/* A spool nobody took: a spare (room was reserved), unless it
	 * failed a write or there is no room (both rare). */
	if (o->fd >= 0 && (!ok || spare_put(o->conf, o->fd) < 0))
		close(o->fd);
	free(o);
}

/*
 * md_spool - make sure the transaction has a spool (data, or the first
 * chunk when an earlier plugin's ACCEPT at data kept us from seeing it).
 * Returns CONTINUE with t->spool set, PENDING while one is opened on the
 * pool (which also writes the chunk, if given), or TEMPFAIL.
 */
static sh_verdict
md_spool(sh_ctx *ctx, const unsigned char *data, size_t len, int *written)
{
	struct md_conf *c = sh_plugin_get(ctx);
	struct md_tx *t = md_tx_state(ctx);
	struct md_open *o;

	*written = 0;
	if (t == NULL)
		return storage_fail(ctx);
	if (t->spool >= 0)
		return SH_CONTINUE;
	t->len = 0;
	if (c->nspares > 0) {
		t->spool = c->spares[--c->nspares];
		return SH_CONTINUE;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return storage_fail(ctx);
	*o = (struct md_open){ .conf = c, .tx = t, .data = data, .len = len,
	    .fd = -1 };
	o->reserved = spare_reserve(c);
	o->tok = sh_pend(ctx, NULL, NULL);
	if (sh_pool_submit(ctx, open_work, open_done, o) < 0) {
		if (o->reserved)
			c->reserved--;
		free(o);
		sh_log(ctx, SH_LOG_ERROR, "cannot submit to the work pool");
		return storage_fail(ctx);
	}
	*written = 1;
	return SH_PENDING;
}

static sh_verdict
md_data(sh_ctx *ctx)
{
	int written;

	return md_spool(ctx, NULL, 0, &written);
}

/*
 * md_chunk - append to the spool, on the loop thread: pwrite(2) into an
 * existing file's page cache does not wait for the disk (only the
 * kernel's dirty-page throttling can slow it, and then the disk is the
 * bottleneck for every session anyway).  A pool round trip per chunk
 * would cost a thread hop and stop reading from the client for each
 * piece.
 */
static sh_verdict
md_chunk(sh_ctx *ctx, const unsigned char *data, size_t len)
{
	struct md_tx *t;
	sh_verdict v;
	int written;

	if ((v = md_spool(ctx, data, len, &written)) != SH_CONTINUE || written)
		return v;
	t = sh_tx_get(ctx);
	if (md_pwrite_all(t->spool, data, len, t->len) < 0) {
		sh_log(ctx, SH_LOG_ERROR, "cannot write the message to %s/tmp: %s",
		    ((struct md_conf *)sh_plugin_get(ctx))->dir, strerror(errno));
		t->bad = 1;
		return storage_fail(ctx);
	}
	t->len += len;
	return SH_CONTINUE;
}

static void
job_free(struct md_job *j)
{
	size_t i;

	if (j->spool >= 0)
		close(j->spool);	/* only before submit, or unreachable */
	for (i = 0; i < j->nrdirs; i++)
		free(j->rdirs[i]);
	free(j->rdirs);
	free(j->hdr);
	free(j->segs);
	free(j);
}

/* dsn_params - " RET=.. ENVID=.." / " NOTIFY=.. ORCPT=..": the RFC 3461
 * parameters an address came with (xtext: printable, no spaces), whole;
 * with out NULL only counted.  Returns the length. */
static size_t
dsn_params(const sh_address *a, const char *const *keys, char *out)
{
	size_t n = 0;

	for (; *keys != NULL; keys++) {
		const char *v = sh_param_get(a, *keys, NULL);
		size_t kl = strlen(*keys), vl;

		if (v == NULL)
			continue;
		vl = strlen(v);
		if (out != NULL) {
			out[n] = ' ';
			memcpy(out + n + 1, *keys, kl);
			out[n + 1 + kl] = '=';
			memcpy(out + n + 2 + kl, v, vl);
		}
		n += 2 + kl + vl;
	}
	return n;
}

/* put_line - "<pre><addr><post>[ DSN params]\r\n" at p + *n (with p
 * NULL only counted); *longest keeps the longest line, CRLF excluded */
static void
put_line(char *p, size_t *n, size_t *longest, const char *pre,
    const sh_address *a, const char *post, const char *const *keys)
{
	const char *part[3] = { pre, a->address, post };
	size_t start = *n, i, l;

	for (i = 0; i < 3; i++) {
		l = strlen(part[i]);
		if (p != NULL)
			memcpy(p + *n, part[i], l);
		*n += l;
	}
	if (keys != NULL)
		*n += dsn_params(a, keys, p != NULL ? p + *n : NULL);
	if (*n - start > *longest)
		*longest = *n - start;
	if (p != NULL)
		memcpy(p + *n, "\r\n", 2);
	*n += 2;
}

/* envelope - every envelope line of header_block(), written at p (with
 * p NULL only counted); returns the length */
static size_t
envelope(const sh_tx_info *tx, char *p, size_t *longest)
{
	static const char *const mail_keys[] = { "RET", "ENVID", NULL };
	static const char *const rcpt_keys[] = { "NOTIFY", "ORCPT", NULL };
	size_t n = 0, i;

	*longest = 0;
	put_line(p, &n, longest, "Return-Path: <", tx->sender, ">", NULL);
	for (i = 0; i < tx->nrcpts; i++)
		put_line(p, &n, longest, "Delivered-To: ", tx->rcpts[i], "",
		    NULL);
	if (dsn_params(tx->sender, mail_keys, NULL) > 0)
		put_line(p, &n, longest, "X-Envelope-From: <", tx->sender, ">",
		    mail_keys);
	for (i = 0; i < tx->nrcpts; i++)
		if (dsn_params(tx->rcpts[i], rcpt_keys, NULL) > 0)
			put_line(p, &n, longest, "X-Envelope-To: <",
			    tx->rcpts[i], ">", rcpt_keys);
	return n;
}

/*
 * header_block - "Return-Path: <sender>", one "Delivered-To: rcpt" per
 * recipient in envelope order, the DSN envelope (RFC 3461) when the
 * client gave one - "X-Envelope-From: <sender> RET=.. ENVID=.." and one
 * "X-Envelope-To: <rcpt> NOTIFY=.. ORCPT=.." per recipient that has
 * parameters - then the host's trace block.
 *
 * The block is sized from the envelope and every line written whole:
 * nothing is ever cut.  A line over RFC 5322's 998 octets, which the
 * core's limits rule out (path 256, ENVID 300 and ORCPT 500 octets as
 * sent, NOTIFY 21), is refused rather than stored.  Returns 0, or
 * ENOMEM / E2BIG.
 */
static int
header_block(sh_ctx *ctx, const sh_tx_info *tx, struct md_job *j)
{
	const char *trace;
	size_t tlen = sh_tx_trace(ctx, &trace), need, longest;

	need = envelope(tx, NULL, &longest);
	if (longest > MD_LINE_MAX)
		return E2BIG;
	if ((j->hdr = malloc(need + tlen)) == NULL)
		return ENOMEM;
	envelope(tx, j->hdr, &longest);
	memcpy(j->hdr + need, trace, tlen);
	j->hdr_len = need + tlen;
	return 0;
}

/* seg_add - the next piece of an edited file, joined to the one before
 * when it goes on where that one stopped */
static void
seg_add(struct md_job *j, int text, uint64_t off, uint64_t len)
{
	struct md_seg *last = j->nsegs > 0 ? &j->segs[j->nsegs - 1] : NULL;

	if (len == 0)
		return;
	if (last != NULL && last->text == text && last->off + last->len == off) {
		last->len += len;
		return;
	}
	j->segs[j->nsegs++] = (struct md_seg){ .text = text, .off = off,
	    .len = len };
}

/*
 * edited_block - the stored file of a message whose header section an
 * earlier plugin edited: the envelope lines as header_block() writes
 * them, then the final head's parts (sh_tx_head_part: the trace block,
 * inserted and changed fields as text, unchanged fields as ranges of the
 * message, which is the spool), then the body from header_size on.  Text
 * goes into j->hdr, the order into j->segs; neighbouring pieces are
 * joined, so unedited runs cost one copy_file_range(2) each and a head
 * edited only by inserts costs what an unedited one does.  Everything is
 * copied from the host here, on the loop: the pool must not call it.
 * Returns 0, or ENOMEM / E2BIG / EIO (a range outside the spool).
 */
static int
edited_block(sh_ctx *ctx, const sh_tx_info *tx, struct md_job *j)
{
	size_t need, text = 0, nparts = 0, i, longest;
	sh_head_part p;

	need = envelope(tx, NULL, &longest);
	if (longest > MD_LINE_MAX)
		return E2BIG;
	for (i = 0; sh_tx_head_part(ctx, i, &p) == 0; i++) {
		if (p.text != NULL)
			text += p.len;
		else if (p.offset > j->body_len || p.len > j->body_len - p.offset)
			return EIO;
		nparts++;
	}
	if (tx->header_size > j->body_len)
		return EIO;
	if ((j->hdr = malloc(need + text)) == NULL ||
	    (j->segs = calloc(nparts + 2, sizeof(*j->segs))) == NULL)
		return ENOMEM;
	envelope(tx, j->hdr, &longest);
	j->hdr_len = need;
	seg_add(j, 1, 0, need);
	for (i = 0; i < nparts && sh_tx_head_part(ctx, i, &p) == 0; i++) {
		if (p.text == NULL) {
			seg_add(j, 0, p.offset, p.len);
			continue;
		}
		memcpy(j->hdr + j->hdr_len, p.text, p.len);
		seg_add(j, 1, j->hdr_len, p.len);
		j->hdr_len += p.len;
	}
	seg_add(j, 0, tx->header_size, j->body_len - tx->header_size);
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* rcpt_dirs - split=rcpt: each recipient's directory, once */
static int
rcpt_dirs(const sh_tx_info *tx, struct md_job *j)
{
	char name[MD_RCPT_DIR_MAX + 1];
	size_t i, n = 0;

	if ((j->rdirs = calloc(tx->nrcpts ? tx->nrcpts : 1, sizeof(char *))) == NULL)
		return -1;
	for (i = 0; i < tx->nrcpts; i++) {
		md_rcpt_dir(tx->rcpts[i]->address, name, sizeof(name));
		if ((j->rdirs[j->nrdirs] = strdup(name)) == NULL)
			return -1;
		j->nrdirs++;
	}
	qsort(j->rdirs, j->nrdirs, sizeof(char *), cmp_str);
	for (i = 0; i < j->nrdirs; i++) {
		if (n > 0 && strcmp(j->rdirs[n - 1], j->rdirs[i]) == 0) {
			free(j->rdirs[i]);
			continue;
		}
		j->rdirs[n++] = j->rdirs[i];
	}
	j->nrdirs = n;
	return 0;
}

static void
md_work(void *arg)
{
	struct md_job *j = arg;

	j->err = md_store(j);
}

/* md_cancel - the session gave up on the verdict (client gone, timeout):
 * the job stops before its commit point if it has not reached it yet */
static void
md_cancel(void *arg)
{
	struct md_job *j = arg;

	__atomic_store_n(&j->cancelled, 1, __ATOMIC_RELEASE);
}

/* md_done - on the loop, always: deliver the verdict, free the job */
static void
md_done(void *arg)
{
	struct md_job *j = arg;
	struct md_conf *c = j->conf;

	if (j->reserved) {
		c->reserved--;
		if (j->spool >= 0) {	/* recycled: back to the spares */
			c->spares[c->nspares++] = j->spool;
			j->spool = -1;
		}
	}
	if (j->err == 0) {
		sh_resume(j->tok, SH_ACCEPT, 0, NULL, NULL);
	} else if (sh_resume(j->tok, SH_TEMPFAIL, 452, "4.3.1", STORAGE_TEXT) == 0) {
		/* The session is alive and waiting, so its transaction and
		 * our state in it are too: leave the details for reset,
		 * which has a context to log with. */
		snprintf(j->tx->err, sizeof(j->tx->err),
		    "message not stored: %s%s%s: %s", j->step,
		    j->name[0] != '\0' ? " of tmp/" : "", j->name, strerror(j->err));
	}
	job_free(j);
}

static sh_verdict
md_eom(sh_ctx *ctx)
{
	struct md_conf *c = sh_plugin_get(ctx);
	const sh_tx_info *tx = sh_tx(ctx);
	struct md_tx *t = md_tx_state(ctx);
	struct md_job *j;
	int err;

	if (t == NULL || tx == NULL || (j = calloc(1, sizeof(*j))) == NULL)
		return storage_fail(ctx);
	j->conf = c;
	j->spool = t->spool;		/* the job owns it from here */
	j->body_len = t->spool >= 0 ? t->len : 0;
	t->spool = -1;
	j->tx = t;
	if (j->spool >= 0 && j->body_len <= MD_RECYCLE_MAX)
		j->recycle = j->reserved = spare_reserve(c);
	/* An edited header section is rebuilt from its parts; otherwise the
	 * trace block goes before the spool as it streamed. */
	if ((err = tx->head_edited ? edited_block(ctx, tx, j) :
	    header_block(ctx, tx, j)) != 0) {
		sh_log(ctx, SH_LOG_ERROR, "message not stored: %s",
		    err == E2BIG ? "an envelope line would be over 998 octets" :
		    err == EIO ? "the final header section lies outside the "
		    "spooled message" : strerror(err));
		if (j->reserved)
			c->reserved--;
		job_free(j);
		return storage_fail(ctx);
	}
	if (c->split && rcpt_dirs(tx, j) < 0) {
		sh_log(ctx, SH_LOG_ERROR, "out of memory");
		if (j->reserved)
			c->reserved--;
		job_free(j);
		return storage_fail(ctx);
	}
	j->tok = sh_pend(ctx, md_cancel, j);
	if (sh_pool_submit(ctx, md_work, md_done, j) < 0) {
		sh_log(ctx, SH_LOG_ERROR, "cannot submit to the work pool");
		if (j->reserved)
			c->reserved--;
		job_free(j);
		return storage_fail(ctx);
	}
	return SH_PENDING;
}

/* close_work / close_done - close a spool on the pool: the last close
 * of a large unlinked file frees its blocks, which may take a while */
static void
close_work(void *arg)
{
	close((int)(intptr_t)arg);
}

static void
close_done(void *arg)
{
	(void)arg;
}

/* md_reset - the transaction ends without a 2xx: log why, if it was
 * us; the spool goes back to the spares (no syscall), or is closed on
 * the pool when it is large or saw an error */
static void
md_reset(sh_ctx *ctx)
{
	struct md_conf *c = sh_plugin_get(ctx);
	struct md_tx *t = sh_tx_get(ctx);

	if (t == NULL)
		return;
	if (t->err[0] != '\0')
		sh_log(ctx, SH_LOG_ERROR, "%s", t->err);
	if (t->spool < 0)
		return;
	if ((!t->bad && t->len <= MD_RECYCLE_MAX && spare_put(c, t->spool) == 0) ||
	    sh_pool_submit(ctx, close_work, close_done,
	    (void *)(intptr_t)t->spool) == 0)
		t->spool = -1;
}

SH_PLUGIN_DEFINE(
	.name = "maildump",
	.version = "1.0",
	.arg_keys = md_keys,
	.init = md_init,
	.fini = md_fini,
	.data = md_data,
	.chunk = md_chunk,
	.eom = md_eom,
	.reset = md_reset,
	/* It writes each message to the maildir and ACCEPTs at eom. */
	.roles = SH_ROLE_STORES,
);
