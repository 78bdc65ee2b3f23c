/*
 * log.c - one-line logging
 *
 * The only process-wide state here is the output format and verbosity,
 * fixed once by log_setup() before any event is handled (with the pid
 * for the line prefix), and a per-thread cache of the formatted second;
 * everything else lives in the server context.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_format log_format_choice = LOG_FORMAT_TEXT;
static int log_verbose;
static int log_fd = STDERR_FILENO;
static long log_pid;		/* set by log_setup(); the daemon never forks */

static const char *const level_names[] = { "debug", "info", "warn", "error" };

/* log_setup - choose the format and verbosity (start-up only) */
void
log_setup(enum log_format format, int verbose)
{
	log_format_choice = format;
	log_verbose = verbose;
	log_pid = (long)getpid();
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

/* log_vmsg - format one line and write it with a single write(2) */
void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX * 2 + 128];
	struct timespec ts;
	const char *stamp;
	int n;

	if (!log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	stamp = log_stamp(ts.tv_sec);
	if (log_format_choice == LOG_FORMAT_JSON) {
		char msg[LOG_LINE_MAX], esc[LOG_LINE_MAX * 2];

		n = vsnprintf(msg, sizeof(msg), fmt, ap);
		if (n < 0)
			return;
		log_escape(esc, sizeof(esc), msg, strlen(msg));
		n = snprintf(line, sizeof(line),
		    "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"%s\"}\n",
		    stamp, ts.tv_nsec / 1000000, level_names[level], esc);
	} else {
		/* The message is formatted in place after the prefix. */
		int p = snprintf(line, sizeof(line), "%s.%03ldZ smtphookd[%ld]: %s: ",
		    stamp, ts.tv_nsec / 1000000,
		    log_pid != 0 ? log_pid : (long)getpid(), level_names[level]);
		char *msg;
		size_t mlen;

		if (p < 0 || (size_t)p + LOG_LINE_MAX + 1 > sizeof(line))
			return;
		msg = line + p;
		n = vsnprintf(msg, LOG_LINE_MAX, fmt, ap);
		if (n < 0)
			return;
		mlen = strnlen(msg, (size_t)n < LOG_LINE_MAX ? (size_t)n :
		    LOG_LINE_MAX - 1);
		/* Messages are built from escaped parts, but never let a
		 * stray newline split a line. */
		for (size_t i = 0; i < mlen; i++)
			if (msg[i] == '\n' || msg[i] == '\r')
				msg[i] = ' ';
		msg[mlen] = '\n';
		n = p + (int)mlen + 1;
	}
	if (n > 0) {
		size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
		ssize_t w = write(log_fd, line, len);
		(void)w;
	}
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
