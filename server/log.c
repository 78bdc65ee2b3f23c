/*
 * log.c - one-line logging
 *
 * The only process-wide state here is the output format and verbosity,
 * fixed once by log_setup() before any event is handled (with the pid
 * for the line prefix), and a per-thread cache of the formatted second;
 * everything else lives in the server context.
 *
 * A text line is put together without printf: the cached second, the
 * milliseconds, the cached " smtphookd[PID]: " and the level are copied
 * in front of the message (issue 16: formatting was a third of the sink
 * chain's instructions).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "strbuf.h"

static enum log_format log_format_choice = LOG_FORMAT_TEXT;
static int log_verbose;
static int log_fd = STDERR_FILENO;
static long log_pid;		/* set by log_setup(); the daemon never forks */
static char log_tag[40];	/* "Z smtphookd[PID]: " for log_pid */
static size_t log_tag_len;

static const char *const level_names[] = { "debug", "info", "warn", "error" };
static const size_t level_lens[] = { 5, 4, 4, 5 };

/* tag_make - "Z smtphookd[PID]: " */
static void
tag_make(long pid)
{
	struct strbuf b;

	sb_init(&b, log_tag, sizeof(log_tag));
	SB_LIT(&b, "Z smtphookd[");
	sb_u64(&b, (uint64_t)pid);
	SB_LIT(&b, "]: ");
	log_tag_len = b.len;
}

/* log_setup - choose the format and verbosity (start-up only) */
void
log_setup(enum log_format format, int verbose)
{
	log_format_choice = format;
	log_verbose = verbose;
	log_pid = (long)getpid();
	tag_make(log_pid);
}

void
log_set_fd(int fd)
{
	log_fd = fd;
}

/* log_enabled - would a message of this level be written? */
int
log_enabled(enum log_level level)
{
	return level != LOG_DEBUG || log_verbose;
}

/* log_escape - printable ASCII kept, the rest as \xHH, cut with "..." */
size_t
log_escape(char *out, size_t outsize, const char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	if (outsize == 0)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') ? 1 :
		    (c == '\\' || c == '"') ? 2 : 4;

		if (o + need + 4 > outsize) {
			/* Leave room for the marker so a cut is visible. */
			while (o + 4 > outsize && o > 0)
				o--;
			if (o + 3 < outsize) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else if (need == 2) {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return o;
}

/*
 * log_stamp - "YYYY-MM-DDTHH:MM:SS" (UTC) of sec.  gmtime_r + strftime
 * cost more than the rest of a line, so the text is made once per second
 * (per thread: pool threads may log too).
 */
static const char *
log_stamp(time_t sec)
{
	static _Thread_local time_t last = (time_t)-1;
	static _Thread_local char stamp[40];
	struct tm tm;

	if (sec != last) {
		gmtime_r(&sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		last = sec;
	}
	return stamp;
}


/* emit - msg (mlen octets, no newline) as one line of the chosen format;
 * clean: msg holds no CR or LF (built from safe pieces) */
static void
emit(enum log_level level, char *msg, size_t mlen, int clean)
{
	char line[LOG_LINE_MAX * 2 + 128];
	struct timespec ts;
	const char *stamp;
	struct strbuf b;
	size_t i;
	ssize_t w;

	clock_gettime(CLOCK_REALTIME, &ts);
	stamp = log_stamp(ts.tv_sec);
	/* Messages are built from escaped parts, but never let a stray
	 * newline split a line. */
	for (i = 0; !clean && i < mlen; i++)
		if (msg[i] == '\n' || msg[i] == '\r')
			msg[i] = ' ';
	sb_init(&b, line, sizeof(line) - 1);
	if (log_format_choice == LOG_FORMAT_JSON)
		SB_LIT(&b, "{\"time\":\"");
	else if (log_tag_len == 0)
		tag_make((long)getpid());	/* log_setup() was not called */
	sb_puts(&b, stamp);
	sb_putc(&b, '.');
	sb_putc(&b, (char)('0' + ts.tv_nsec / 100000000));
	sb_putc(&b, (char)('0' + ts.tv_nsec / 10000000 % 10));
	sb_putc(&b, (char)('0' + ts.tv_nsec / 1000000 % 10));
	if (log_format_choice == LOG_FORMAT_JSON) {
		char esc[LOG_LINE_MAX * 2];
		size_t elen = log_escape(esc, sizeof(esc), msg, mlen);

		SB_LIT(&b, "Z\",\"level\":\"");
		sb_putn(&b, level_names[level], level_lens[level]);
		SB_LIT(&b, "\",\"msg\":\"");
		sb_putn(&b, esc, elen);
		SB_LIT(&b, "\"}");
	} else {
		sb_putn(&b, log_tag, log_tag_len);
		sb_putn(&b, level_names[level], level_lens[level]);
		SB_LIT(&b, ": ");
		sb_putn(&b, msg, mlen);
	}
	if (!sb_ok(&b))
		return;			/* never: the buffer holds the largest line */
	line[b.len++] = '\n';
	/* One write(2) per line, when it happens: a reply's line is in the
	 * log before the client has the reply, and plugins that write to
	 * stderr themselves stay in order with the host's lines (a batch
	 * per loop iteration broke both; docs/PERFORMANCE.md). */
	w = write(log_fd, line, b.len);
	(void)w;
}

/* log_vmsg - format one line and write it with a single write(2) */
void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX];
	int n;

	if (!log_enabled(level))
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	emit(level, msg, strnlen(msg, (size_t)n < sizeof(msg) ? (size_t)n :
	    sizeof(msg) - 1), 0);
}

/* log_begin - start a line built with the strbuf calls; 0: level is off */
int
log_begin(struct log_line *l, enum log_level level)
{
	l->level = level;
	sb_init(&l->b, l->text, sizeof(l->text));
	return log_enabled(level);
}

/* log_end - write the line built since log_begin (what fitted of it) */
void
log_end(struct log_line *l)
{
	if (log_enabled(l->level))
		emit(l->level, l->text, l->b.len, 1);
}

/* log_msg - log one line at a level */
void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

/* log_fatal - a start-up or configuration error: one line, exit 2 */
void
log_fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("smtphookd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* log_panic - a bug: log and abort so a core shows where */
void
log_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_ERROR, fmt, ap);
	va_end(ap);
	abort();
}
