/* Logging for the gild daemon: one line per event on stderr, in logfmt
 * (default) or JSON (--log-format json), with time, level, message and any
 * fields the event has (a call's request id, function, duration). */
#ifndef GILD_LOG_H
#define GILD_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_LOGFMT, LOG_JSON };

/* Lines below this level are dropped. Default LOG_INFO. */
void log_set_level(enum log_level level);
/* Default LOG_LOGFMT. */
void log_set_format(enum log_format format);

/* One field of an event: a string (str not NULL) or an integer. */
typedef struct log_field {
	const char *key;
	const char *str;
	long long num;
} log_field;

#define LOG_STR(k, v) ((log_field){(k), (v), 0})
#define LOG_NUM(k, v) ((log_field){(k), NULL, (long long) (v)})

/* Writes one event: `time=... level=... msg="<formatted>" key=value...`,
 * or the same as one JSON object. */
void log_event(enum log_level level, const log_field *fields, size_t n,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Whether events of level are written (not below --log-level). */
bool log_enabled(enum log_level level);

/* Like log_event, with the message text (len bytes, any bytes: NUL,
 * newlines and bytes that are not UTF-8 are escaped as the format wants)
 * taken as it is; the line has room for twice APPLOG_LINE_MAX
 * (proto/applog_frame.h) before the text is cut. From the loop's thread
 * only. */
void log_text(enum log_level level, const log_field *fields, size_t n,
    const char *text, size_t len);

#define log_msg(level, ...) log_event((level), NULL, 0, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
