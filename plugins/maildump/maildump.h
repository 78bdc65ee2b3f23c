/*
 * maildump.h - internals shared by the maildump plugin's two halves
 *
 *	maildump.c	hooks, on the loop thread: arguments, spool, eom
 *	store.c		the disk work of one message, on a pool thread
 *
 * Nothing here is exported: the plugin is built with hidden visibility
 * and only the descriptor leaves the .so.
 */
#ifndef MAILDUMP_H
#define MAILDUMP_H

#include <stddef.h>
#include <stdint.h>

#include <smtphook.h>

/* Longest per-recipient directory name (split=rcpt), well below NAME_MAX. */
#define MD_RCPT_DIR_MAX 128
/* Spare spool files kept open for reuse, at most. */
#define MD_SPARES_MAX 128
/* A spool that held more than this is closed, not reused (its blocks
 * are given back). */
#define MD_RECYCLE_MAX (1024 * 1024)
/* Room for a Maildir unique name: time, usec, pid, counter, host. */
#define MD_NAME_MAX 160
/* RFC 5322 §2.1.1: the longest header line stored, CRLF excluded. */
#define MD_LINE_MAX 998

struct md_tx;

/* Plugin-wide settings and directory descriptors (set in init). */
struct md_conf {
	char *dir;		/* as given */
	int topfd;		/* DIR */
	int tmpfd;		/* DIR/tmp */
	int newfd;		/* DIR/new */
	int sync;		/* fsync=yes */
	int split;		/* split=rcpt */
	int no_tmpfile;		/* O_TMPFILE unsupported: named spool
				 * (decided in init, read-only after) */
	/* Spare spools (loop thread only): open anonymous files ready for
	 * the next message, so DATA needs no file creation on the loop. */
	int spares[MD_SPARES_MAX];
	size_t nspares;
	size_t reserved;	/* slots promised to jobs in flight */
	char host[72];		/* gethostname(), sanitised for Maildir */
};

/* One piece of a stored file whose header section was edited. */
struct md_seg {
	int text;		/* 1: j->hdr + off; 0: the spool at off */
	uint64_t off, len;
};

/*
 * One message on its way from the spool to new/.  Built on the loop at
 * eom, handed to the pool; md_done() (loop) owns and frees it.  The pool
 * side reads everything but `cancelled` without locks: the loop does not
 * touch the job between submit and done, except md_cancel() setting
 * `cancelled` atomically.
 */
struct md_job {
	struct md_conf *conf;
	int spool;		/* the body, anonymous; -1: empty body */
	uint64_t body_len;	/* octets of the body in the spool (a reused
				 * spool may hold stale octets past them) */
	int reserved;		/* a spare slot is promised to the spool */
	int recycle;		/* keep the spool open for done to give
				 * back (work clears it after an error and
				 * closes the spool instead) */
	char *hdr;		/* Return-Path, Delivered-To, trace; with
				 * head edits also the final head's text */
	size_t hdr_len;
	/* An edited header section (sh_tx_info.head_edited): the file's
	 * pieces in order, text from hdr and ranges of the spool, copied
	 * from the host on the loop.  0: hdr, then the whole spool. */
	struct md_seg *segs;
	size_t nsegs;
	char **rdirs;		/* split=rcpt: sanitised, unique names */
	size_t nrdirs;
	int cancelled;		/* set by md_cancel(); __atomic access */
	sh_pending tok;
	struct md_tx *tx;	/* the transaction's state: only valid in
				 * md_done() after sh_resume() returned 0 */
	/* results */
	int err;		/* 0, or the errno of the failing step */
	const char *step;	/* "write", "fsync", ... */
	char name[MD_NAME_MAX];	/* the stored file's name */
};

/* md_store - the work of a job (pool thread): returns 0 or an errno,
 * with j->step naming the failing step.  Leaves nothing in tmp/ or new/
 * on failure.  Closes j->spool (sets -1) unless j->recycle. */
int md_store(struct md_job *j);

/* md_unique - a Maildir unique name (thread-safe) */
void md_unique(const struct md_conf *c, char *buf, size_t size);

/* md_write_all - write len octets, across partial writes and EINTR */
int md_write_all(int fd, const void *buf, size_t len);
/* md_pwrite_all - the same at offset off */
int md_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
/* md_spool_open - a new anonymous spool file in DIR/tmp (-1, errno) */
int md_spool_open(const struct md_conf *c);

/* md_rcpt_dir - the per-recipient directory name for split=rcpt */
void md_rcpt_dir(const char *address, char *out, size_t size);

/* md_make_maildir - mkdir NAME and NAME/{tmp,new,cur} below dirfd (mode
 * 0700; what exists is kept); with sync, what was made is fsync'ed;
 * nofollow: NAME must not be a symbolic link.  0, or -1 with errno. */
int md_make_maildir(int dirfd, const char *name, int sync, int nofollow);

#endif
