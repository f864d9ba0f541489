/* Logging for the gild daemon: one logfmt or JSON line per event. */
#include "log.h"

#include "applog_frame.h"

#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
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

/* A line being built in buf (cap bytes); what does not fit is cut. */
typedef struct line {
	char *buf;
	size_t cap;
	size_t n;
} line;

static void
add(line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
add(line *l, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (l->n >= l->cap)
		return;
	va_start(ap, fmt);
	w = vsnprintf(l->buf + l->n, l->cap - l->n, fmt, ap);
	va_end(ap);
	if (w > 0)
		l->n += (size_t) w;
	if (l->n > l->cap)
		l->n = l->cap;
}

/* The length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned min;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		len = 2, min = 0x80, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		len = 3, min = 0x800, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		len = 4, min = 0x10000, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* s (len bytes) as a quoted string: JSON escapes (and U+FFFD for bytes
 * that are not UTF-8, so the line stays valid JSON), or logfmt's (\" and
 * \\; control characters as spaces, so that one event stays one line).
 * The string ends before the line reaches byte `limit`, between two
 * characters, and is closed. */
static void
add_quoted(line *l, const char *s, size_t len, size_t limit)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t i = 0;

	if (limit > l->cap)
		limit = l->cap;
	add(l, "\"");
	while (i < len && l->n + 8 < limit) {
		size_t k;

		if (p[i] == '"' || p[i] == '\\') {
			l->buf[l->n++] = '\\';
			l->buf[l->n++] = (char) p[i++];
		} else if (p[i] < 0x20 && format == LOG_JSON) {
			add(l, "\\u%04x", p[i++]);
		} else if (p[i] < 0x20) {
			l->buf[l->n++] = ' ';
			i++;
		} else if (format == LOG_JSON &&
			   (k = utf8_len(p + i, len - i)) == 0) {
			add(l, "\\ufffd");
			i++;
		} else {
			k = p[i] < 0x80 ? 1 : utf8_len(p + i, len - i);
			if (k == 0)
				k = 1; /* logfmt: bytes as they are */
			memcpy(l->buf + l->n, p + i, k);
			l->n += k;
			i += k;
		}
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

/* Writes one event whose message is msg (len bytes, any bytes), cut so
 * that the fields after it fit in l. */
static void
emit(line *l, enum log_level level, const char *msg, size_t len,
    const log_field *fields, size_t n)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	size_t limit = l->cap > 4096 ? l->cap - 1024 : l->cap;
	char stamp[40];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	if (format == LOG_JSON) {
		add(l, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":",
		    stamp, ts.tv_nsec / 1000000, names[level]);
		add_quoted(l, msg, len, limit);
		for (size_t i = 0; i < n; i++) {
			add(l, ",\"%s\":", fields[i].key);
			if (fields[i].str != NULL)
				add_quoted(l, fields[i].str,
				    strlen(fields[i].str), l->cap);
			else
				add(l, "%lld", fields[i].num);
		}
		add(l, "}");
	} else {
		add(l, "time=%s.%03ldZ level=%s msg=", stamp,
		    ts.tv_nsec / 1000000, names[level]);
		add_quoted(l, msg, len, limit);
		for (size_t i = 0; i < n; i++) {
			add(l, " %s=", fields[i].key);
			if (fields[i].str == NULL)
				add(l, "%lld", fields[i].num);
			else if (needs_quotes(fields[i].str))
				add_quoted(l, fields[i].str,
				    strlen(fields[i].str), l->cap);
			else
				add(l, "%s", fields[i].str);
		}
	}
	/* Cut lines still end in a newline (JSON: a cut one is invalid, but
	 * the room kept after the message holds the fields of any event
	 * gild writes). */
	if (l->n > l->cap - 1)
		l->n = l->cap - 1;
	l->buf[l->n++] = '\n';
	fwrite(l->buf, 1, l->n, stderr); /* one write per line: no interleaving */
}

void
log_event(enum log_level level, const log_field *fields, size_t n,
    const char *fmt, ...)
{
	char msg[1024], buf[2048];
	line l = {buf, sizeof(buf), 0};
	va_list ap;

	if (level < min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(&l, level, msg, strlen(msg), fields, n);
}

bool
log_enabled(enum log_level level)
{
	return level >= min_level;
}

void
log_text(enum log_level level, const log_field *fields, size_t n,
    const char *text, size_t len)
{
	/* The loop's thread only (applog.c): one buffer for its longest
	 * lines, escaped, and their fields. */
	static char buf[APPLOG_LINE_MAX * 2 + 4096];
	line l = {buf, sizeof(buf), 0};

	if (level < min_level)
		return;
	emit(&l, level, text, len, fields, n);
}
