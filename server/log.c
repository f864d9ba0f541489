/* Logging for the gild daemon: one logfmt or JSON line per event. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum log_level min_level = LOG_INFO;
static enum log_format format = LOG_LOGFMT;

void
log_set_level(enum log_level level)
{
	min_level = level;
}

void
log_set_format(enum log_format f)
{
	format = f;
}

/* A line being built; what does not fit is cut. */
typedef struct line {
	char buf[2048];
	size_t n;
} line;

static void
add(line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
add(line *l, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (l->n >= sizeof(l->buf))
		return;
	va_start(ap, fmt);
	w = vsnprintf(l->buf + l->n, sizeof(l->buf) - l->n, fmt, ap);
	va_end(ap);
	if (w > 0)
		l->n += (size_t) w;
	if (l->n > sizeof(l->buf))
		l->n = sizeof(l->buf);
}

/* s as a quoted string: JSON escapes, or logfmt's (\" and \\; control
 * characters as spaces, so that one event stays one line). */
static void
add_quoted(line *l, const char *s)
{
	add(l, "\"");
	for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
		if (*p == '"' || *p == '\\')
			add(l, "\\%c", *p);
		else if (*p < 0x20 && format == LOG_JSON)
			add(l, "\\u%04x", *p);
		else if (*p < 0x20)
			add(l, " ");
		else
			add(l, "%c", *p);
	}
	add(l, "\"");
}

/* Whether a logfmt value needs quotes. */
static int
needs_quotes(const char *s)
{
	if (*s == '\0')
		return 1;
	for (; *s; s++)
		if (*s == ' ' || *s == '=' || *s == '"' || *s == '\\' ||
		    (unsigned char) *s < 0x20)
			return 1;
	return 0;
}

void
log_event(enum log_level level, const log_field *fields, size_t n,
    const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	char msg[1024], stamp[40];
	struct timespec ts;
	struct tm tm;
	line l = {.n = 0};
	va_list ap;

	if (level < min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	if (format == LOG_JSON) {
		add(&l, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":",
		    stamp, ts.tv_nsec / 1000000, names[level]);
		add_quoted(&l, msg);
		for (size_t i = 0; i < n; i++) {
			add(&l, ",\"%s\":", fields[i].key);
			if (fields[i].str != NULL)
				add_quoted(&l, fields[i].str);
			else
				add(&l, "%lld", fields[i].num);
		}
		add(&l, "}");
	} else {
		add(&l, "time=%s.%03ldZ level=%s msg=", stamp,
		    ts.tv_nsec / 1000000, names[level]);
		add_quoted(&l, msg);
		for (size_t i = 0; i < n; i++) {
			add(&l, " %s=", fields[i].key);
			if (fields[i].str == NULL)
				add(&l, "%lld", fields[i].num);
			else if (needs_quotes(fields[i].str))
				add_quoted(&l, fields[i].str);
			else
				add(&l, "%s", fields[i].str);
		}
	}
	/* Cut lines still end in a newline (JSON: a cut one is invalid, but
	 * 2 KiB holds any event gild writes). */
	if (l.n > sizeof(l.buf) - 1)
		l.n = sizeof(l.buf) - 1;
	l.buf[l.n++] = '\n';
	fwrite(l.buf, 1, l.n, stderr); /* one write per line: no interleaving */
}
