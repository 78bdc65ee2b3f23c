/*
 * store.c - maildump's disk work for one message, on a host pool thread
 *
 * At eom the body is complete in the spool (an anonymous file in tmp/)
 * and the header block is known.  md_store() then does, off the loop:
 *
 *	open	tmp/<unique>	O_CREAT|O_EXCL|O_CLOEXEC, mode 0600
 *	write	the header block (Return-Path, Delivered-To, trace)
 *	copy	the body from the spool: copy_file_range(2), in the kernel
 *		(an edited header section: each piece of the job in order,
 *		text written, spool ranges copied in the kernel)
 *	fsync	the file				(fsync=yes)
 *	rename	tmp/<unique> -> new/<unique>		(split=none)
 *	fsync	new/					(fsync=yes)
 *
 * split=rcpt: the same file, hard-linked into every recipient's Maildir:
 * first link(2) into each RCPT/tmp/ (invisible to readers), then rename
 * each into RCPT/new/, then fsync each RCPT/new/, then unlink the staging
 * name in DIR/tmp/.  Any error before the last step undoes every link and
 * rename made so far, so no reader finds the message in one mailbox and
 * not in another, and nothing is left in any tmp/.
 *
 * This file never calls the host API (sh_*): the pool thread must not.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "maildump.h"

/* Per-process delivery counter: the Q part of the unique name. */
static unsigned long md_seq;

void
md_unique(const struct md_conf *c, char *buf, size_t size)
{
	struct timeval tv;
	unsigned long q = __atomic_add_fetch(&md_seq, 1, __ATOMIC_RELAXED);

	gettimeofday(&tv, NULL);
	snprintf(buf, size, "%lld.M%06ldP%ldQ%lu.%s", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (long)getpid(), q, c->host);
}

int
md_write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {		/* not for regular files; be safe */
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
md_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * md_spool_open - an anonymous file in DIR/tmp: O_TMPFILE, or where the
 * file system lacks it, a unique name unlinked at once.  Either way it
 * never shows in tmp/ and vanishes with its last descriptor.  Creating
 * a file takes a journal handle, which waits while the file system
 * commits (other sessions' fsyncs): call it on the pool only.
 */
int
md_spool_open(const struct md_conf *c)
{
	char name[MD_NAME_MAX + 8];
	int fd, tries, err;

#ifdef O_TMPFILE
	if (!c->no_tmpfile)
		return openat(c->tmpfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#endif
	for (tries = 0; tries < 5; tries++) {
		md_unique(c, name, sizeof(name) - 6);
		strcat(name, ".body");
		fd = openat(c->tmpfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			if (unlinkat(c->tmpfd, name, 0) < 0) {
				err = errno;
				close(fd);
				errno = err;
				return -1;
			}
			return fd;
		}
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

/* fnv1a - 64-bit FNV-1a, for the suffix of a shortened directory name */
static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h = (h ^ c) * 0x100000001b3ULL;
	}
	return h;
}

/*
 * md_rcpt_dir - the directory of a recipient under DIR (split=rcpt):
 * the address lower-cased; every octet but [a-z0-9._+@-] becomes '_'; a
 * '.' first or after another '.' becomes '_' (so never "." or ".." nor a
 * hidden name); longer than MD_RCPT_DIR_MAX - 1 octets: cut, plus '_' and
 * 16 hex digits of a hash of the whole address; "tmp", "new", "cur" (the
 * top-level Maildir's own directories) get a leading '_'.  The result is
 * one plain path component that cannot leave DIR.
 */
void
md_rcpt_dir(const char *address, char *out, size_t size)
{
	const size_t limit = MD_RCPT_DIR_MAX - 1;
	size_t n = 0, i;

	if (size < MD_RCPT_DIR_MAX + 1) {
		if (size > 0)
			out[0] = '\0';
		return;
	}
	for (i = 0; address[i] != '\0' && n < limit; i++) {
		unsigned char c = (unsigned char)address[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '+' || c == '@' || c == '-'))
			c = '_';
		if (c == '.' && (n == 0 || out[n - 1] == '.'))
			c = '_';
		out[n++] = (char)c;
	}
	if (address[i] != '\0') {
		n = limit - 17;
		snprintf(out + n, size - n, "_%016llx",
		    (unsigned long long)fnv1a(address));
		n = limit;
	}
	if (n == 0)
		out[n++] = '_';
	out[n] = '\0';
	if (strcmp(out, "tmp") == 0 || strcmp(out, "new") == 0 ||
	    strcmp(out, "cur") == 0) {
		memmove(out + 1, out, n + 1);
		out[0] = '_';
	}
}

/* mkdir_ok - mkdirat, EEXIST being success; 1 if made, 0 if there, -1 */
static int
mkdir_ok(int dirfd, const char *name)
{
	if (mkdirat(dirfd, name, 0700) == 0)
		return 1;
	return errno == EEXIST ? 0 : -1;
}

/* sync_parent - fsync the directory that holds name (below dirfd) */
static int
sync_parent(int dirfd, const char *name)
{
	char parent[4096];
	const char *slash = strrchr(name, '/');
	int fd, rc, err;

	if (dirfd != AT_FDCWD && slash == NULL)
		return fsync(dirfd);
	if (slash == NULL)
		snprintf(parent, sizeof(parent), ".");
	else if (slash == name)
		snprintf(parent, sizeof(parent), "/");
	else
		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - name), name);
	if ((fd = openat(dirfd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	err = errno;
	close(fd);
	errno = err;
	return rc;
}

/*
 * md_make_maildir - DIR and DIR/{tmp,new,cur} below dirfd (mode 0700, what
 * exists is kept).  With sync, what was created is made durable (fsync of
 * the new directory and of its parent).  nofollow: DIR must not be a
 * symbolic link (per-recipient directories).
 */
int
md_make_maildir(int dirfd, const char *name, int sync, int nofollow)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	int fd, made, made_sub = 0, err;
	size_t i;

	if ((made = mkdir_ok(dirfd, name)) < 0)
		return -1;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    (nofollow ? O_NOFOLLOW : 0));
	if (fd < 0)
		return -1;
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		int r = mkdir_ok(fd, subs[i]);

		if (r < 0)
			goto fail;
		made_sub |= r;
	}
	if (sync && (made_sub || made) && fsync(fd) < 0)
		goto fail;
	if (sync && made && sync_parent(dirfd, name) < 0)
		goto fail;
	close(fd);
	return 0;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

/* rename_noreplace - rename, never over an existing name where the file
 * system can tell (unique names make a clash impossible anyway) */
static int
rename_noreplace(int ofd, const char *from, int nfd, const char *to)
{
#ifdef RENAME_NOREPLACE
	if (renameat2(ofd, from, nfd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return -1;
#endif
	return renameat(ofd, from, nfd, to);
}

static int
cancelled(const struct md_job *j)
{
	return __atomic_load_n(&j->cancelled, __ATOMIC_ACQUIRE);
}

/*
 * copy_range - len octets of the spool from offset start to the end of
 * out.  copy_file_range keeps the data in the kernel (page cache to page
 * cache, or a reflink); where the file system cannot, pread/write
 * through a 64 KiB buffer.
 */
static int
copy_range(int in, int out, uint64_t start, uint64_t len)
{
	static const size_t step = (size_t)1 << 30;
	unsigned char buf[64 * 1024];
	off_t off = (off_t)start;
	uint64_t end = start + len;
	int kernel = 1;

	while ((uint64_t)off < end) {
		size_t want = end - (uint64_t)off > step ? step :
		    (size_t)(end - (uint64_t)off);
		ssize_t n;

		if (kernel) {
			n = copy_file_range(in, &off, out, NULL, want, 0);
			if (n > 0)
				continue;
			if (n == 0)
				return EIO;	/* the spool is short */
			if (errno == EINTR)
				continue;
			if (errno != EXDEV && errno != ENOSYS &&
			    errno != EOPNOTSUPP && errno != EINVAL)
				return errno;
			kernel = 0;
			continue;
		}
		if (want > sizeof(buf))
			want = sizeof(buf);
		n = pread(in, buf, want, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (n == 0)
			return EIO;
		if (md_write_all(out, buf, (size_t)n) < 0)
			return errno;
		off += n;
	}
	return 0;
}

/* write_segs - an edited message's pieces in order: text from j->hdr,
 * ranges of the spool copied in the kernel; 0 or an errno */
static int
write_segs(const struct md_job *j, int fd)
{
	size_t i;
	int err;

	for (i = 0; i < j->nsegs; i++) {
		const struct md_seg *s = &j->segs[i];

		if (s->text) {
			if (md_write_all(fd, j->hdr + s->off, (size_t)s->len) < 0)
				return errno;
		} else if ((err = copy_range(j->spool, fd, s->off, s->len)) != 0) {
			return err;
		}
	}
	return 0;
}

/* create_tmp - tmp/<unique>, exclusively; a (theoretical) clash retries */
static int
create_tmp(struct md_job *j, int *fdp)
{
	int tries;

	for (tries = 0; tries < 5; tries++) {
		int fd;

		md_unique(j->conf, j->name, sizeof(j->name));
		fd = openat(j->conf->tmpfd, j->name,
		    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			*fdp = fd;
			return 0;
		}
		if (errno != EEXIST && errno != EINTR)
			return errno;
	}
	return EEXIST;
}

static int
failed(struct md_job *j, const char *step, int err)
{
	j->step = step;
	return err;
}

/* deliver_new - split=none: tmp/<unique> -> new/<unique>, durable */
static int
deliver_new(struct md_job *j)
{
	const struct md_conf *c = j->conf;
	int err;

	if (rename_noreplace(c->tmpfd, j->name, c->newfd, j->name) < 0)
		return failed(j, "rename into new/", errno);
	if (c->sync && fsync(c->newfd) < 0) {
		/* The entry may not survive a crash: take it back, the
		 * client gets 4xx and sends the message again. */
		err = errno;
		unlinkat(c->newfd, j->name, 0);
		return failed(j, "fsync of new/", err);
	}
	return 0;
}

/* link_rcpt - DIR/tmp/<unique> -> R/tmp/<unique>, creating R's Maildir */
static int
link_rcpt(struct md_job *j, const char *r)
{
	const struct md_conf *c = j->conf;
	char path[MD_NAME_MAX + 8];
	int rfd, err, tries;

	snprintf(path, sizeof(path), "tmp/%s", j->name);
	for (tries = 0; tries < 2; tries++) {
		rfd = openat(c->topfd, r, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (rfd >= 0) {
			if (linkat(c->tmpfd, j->name, rfd, path, 0) == 0) {
				close(rfd);
				return 0;
			}
			err = errno;
			close(rfd);
		} else {
			err = errno;
		}
		/* A new recipient (or a Maildir missing a directory). */
		if (err != ENOENT || tries > 0)
			break;
		if (md_make_maildir(c->topfd, r, c->sync, 1) < 0) {
			err = errno;
			break;
		}
	}
	return err;
}

/*
 * deliver_rcpts - split=rcpt: link into every RCPT/tmp, rename each into
 * RCPT/new, fsync each RCPT/new; on any error undo all of it.
 */
static int
deliver_rcpts(struct md_job *j)
{
	const struct md_conf *c = j->conf;
	char from[MD_RCPT_DIR_MAX + MD_NAME_MAX + 8];
	char to[MD_RCPT_DIR_MAX + MD_NAME_MAX + 8];
	size_t i, linked = 0, renamed = 0;
	int err = 0, fd;

	for (i = 0; i < j->nrdirs; i++, linked++)
		if ((err = link_rcpt(j, j->rdirs[i])) != 0) {
			failed(j, "link into a recipient's tmp/", err);
			goto undo;
		}
	if (cancelled(j)) {
		err = failed(j, "cancelled", ECANCELED);
		goto undo;
	}
	for (i = 0; i < j->nrdirs; i++, renamed++) {
		snprintf(from, sizeof(from), "%s/tmp/%s", j->rdirs[i], j->name);
		snprintf(to, sizeof(to), "%s/new/%s", j->rdirs[i], j->name);
		if (rename_noreplace(c->topfd, from, c->topfd, to) < 0) {
			err = failed(j, "rename into a recipient's new/", errno);
			goto undo;
		}
	}
	for (i = 0; c->sync && i < j->nrdirs; i++) {
		snprintf(to, sizeof(to), "%s/new", j->rdirs[i]);
		fd = openat(c->topfd, to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) < 0) {
			err = failed(j, "fsync of a recipient's new/", errno);
			if (fd >= 0)
				close(fd);
			goto undo;
		}
		close(fd);
	}
	return 0;
undo:
	for (i = 0; i < linked; i++) {
		snprintf(from, sizeof(from), "%s/%s/%s", j->rdirs[i],
		    i < renamed ? "new" : "tmp", j->name);
		unlinkat(c->topfd, from, 0);
	}
	return err;
}

int
md_store(struct md_job *j)
{
	const struct md_conf *c = j->conf;
	int fd = -1, err;

	if (cancelled(j)) {
		err = failed(j, "cancelled", ECANCELED);
		goto out;
	}
	if ((err = create_tmp(j, &fd)) != 0) {
		j->name[0] = '\0';
		failed(j, "create in tmp/", err);
		goto out;
	}
	if (j->nsegs > 0) {
		if ((err = write_segs(j, fd)) != 0) {
			failed(j, "write", err);
			goto undo;
		}
	} else if (md_write_all(fd, j->hdr, j->hdr_len) < 0) {
		err = failed(j, "write", errno);
		goto undo;
	} else if (j->body_len > 0 &&
	    (err = copy_range(j->spool, fd, 0, j->body_len)) != 0) {
		failed(j, "write", err);
		goto undo;
	}
	if (c->sync && fsync(fd) < 0) {
		err = failed(j, "fsync", errno);
		goto undo;
	}
	err = close(fd);
	fd = -1;
	if (err < 0) {
		err = failed(j, "close", errno);
		goto undo;
	}
	/* The commit point: past it the message becomes visible. */
	if (cancelled(j)) {
		err = failed(j, "cancelled", ECANCELED);
		goto undo;
	}
	if (!c->split) {
		if ((err = deliver_new(j)) != 0)
			goto undo;
		goto out;
	}
	if ((err = deliver_rcpts(j)) != 0)
		goto undo;
	unlinkat(c->tmpfd, j->name, 0);		/* the staging name */
	goto out;
undo:
	if (fd >= 0)
		close(fd);
	unlinkat(c->tmpfd, j->name, 0);
out:
	if (err != 0)
		j->recycle = 0;		/* a spool that saw an error goes */
	if (j->spool >= 0 && !j->recycle) {
		close(j->spool);
		j->spool = -1;
	}
	return err;
}
