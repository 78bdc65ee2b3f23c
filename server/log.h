/*
 * log.h - one-line logging with severities (Postfix util/msg.c style)
 *
 * info/warn/error go to stderr as one line each; fatal() is for start-up
 * and configuration errors (exit 2); panic() is for bugs (abort).  Text
 * from clients must go through log_escape() first: it is escaped and cut,
 * so a client can neither inject log lines nor write megabyte lines.
 */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

/* The settings are chosen once at start-up, before the loop runs. */
void log_setup(enum log_format format, int verbose);
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void log_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void log_panic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
int log_enabled(enum log_level level);
/* log_set_fd - where log lines go (default stderr; fuzzers use /dev/null,
 * so that formatting still runs but nothing floods the terminal) */
void log_set_fd(int fd);

/* log_escape - printable copy of client text, cut at outsize-1 octets. */
size_t log_escape(char *out, size_t outsize, const char *in, size_t len);

#define LOG_LINE_MAX 1024

/*
 * A line built piece by piece (strbuf.h) instead of from a format, for the
 * lines of every message and session:
 *
 *	struct log_line l;
 *
 *	if (log_begin(&l, LOG_INFO)) {
 *		SB_LIT(&l.b, "session ");
 *		sb_puts(&l.b, id);
 *		log_end(&l);
 *	}
 *
 * What does not fit in LOG_LINE_MAX is cut; only safe text (ids, names,
 * numbers, log_escape()d client text: never a CR or LF) goes in, and
 * unlike log_msg()'s text it is not searched for line ends.
 */
#include "strbuf.h"

struct log_line {
	struct strbuf b;
	enum log_level level;
	char text[LOG_LINE_MAX];
};

int log_begin(struct log_line *l, enum log_level level);
void log_end(struct log_line *l);

#endif
