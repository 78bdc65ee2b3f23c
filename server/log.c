/*
 * log.c - one-line logging
 *
 * The only process-wide state here is the output format and verbosity,
 * fixed once by log_setup() before any event is handled; everything else
 * lives in the server context.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_format log_format_choice = LOG_FORMAT_TEXT;
static int log_verbose;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

/* log_setup - choose the format and verbosity (start-up only) */
void
log_setup(enum log_format format, int verbose)
{
	log_format_choice = format;
	log_verbose = verbose;
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

/* log_vmsg - format one line and write it with a single write(2) */
void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX], line[LOG_LINE_MAX * 2 + 128];
	struct timespec ts;
	struct tm tm;
	char stamp[40];
	int n;

	if (!log_enabled(level))
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	/* Messages are built from escaped parts, but never let a stray
	 * newline split a line. */
	for (char *p = msg; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_format_choice == LOG_FORMAT_JSON) {
		char esc[LOG_LINE_MAX * 2];

		log_escape(esc, sizeof(esc), msg, strlen(msg));
		n = snprintf(line, sizeof(line),
		    "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"%s\"}\n",
		    stamp, ts.tv_nsec / 1000000, level_names[level], esc);
	} else {
		n = snprintf(line, sizeof(line), "%s.%03ldZ smtphookd[%ld]: %s: %s\n",
		    stamp, ts.tv_nsec / 1000000, (long)getpid(),
		    level_names[level], msg);
	}
	if (n > 0) {
		size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
		ssize_t w = write(STDERR_FILENO, line, len);
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
