/* Logging for the gild daemon: one logfmt line per event on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum log_level min_level = LOG_INFO;

void
log_set_level(enum log_level level)
{
	min_level = level;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	char msg[1024], line[1400], stamp[40];
	struct timespec ts;
	struct tm tm;
	size_t n = 0;
	va_list ap;

	if (level < min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n = (size_t) snprintf(line, sizeof(line), "time=%s.%03ldZ level=%s msg=\"",
	    stamp, ts.tv_nsec / 1000000, names[level]);
	/* Escape the message so that one event stays one line. */
	for (const char *p = msg; *p && n + 4 < sizeof(line); p++) {
		if (*p == '"' || *p == '\\')
			line[n++] = '\\';
		line[n++] = *p == '\n' ? ' ' : *p;
	}
	line[n++] = '"';
	line[n++] = '\n';
	fwrite(line, 1, n, stderr); /* one write per line: no interleaving */
}
