/* The framing of app output: what a worker writes on its stdout and stderr
 * pipes (worker/applog.c) and the front end reads (server/applog.c).
 *
 * A pipe carries plain text, one log event per line, and records:
 *
 *   RS 'p' <pid> '\n'
 *       the writing process announces its pid (after fork or exec);
 *   RS 'l' <request_id> US <function> US <level> US <logger> US <len> '\n'
 *       <len bytes of text>
 *       one line written through Python's sys.stdout / sys.stderr (level
 *       and logger empty) or one record of the `logging` handler gild
 *       installs (level: DEBUG, INFO, WARNING, ERROR, CRITICAL); request_id
 *       and function are empty outside a call. The text may hold newlines
 *       (a logging record with a traceback) and is one event.
 *
 * Anything else (a C extension's printf, os.write(1, ...)) is plain text,
 * logged one event per line with no call named. An RS in plain text ends
 * the text before it as a line of its own. */
#ifndef GILD_APPLOG_FRAME_H
#define GILD_APPLOG_FRAME_H

#define APPLOG_RS '\x1e' /* ASCII record separator: a record begins */
#define APPLOG_US '\x1f' /* ASCII unit separator: between header fields */

/* The most bytes of one line or record that are logged: the rest is cut,
 * and the event says truncated=1. */
#define APPLOG_LINE_MAX 16384

/* The most bytes of a record's header line: a longer one is plain text. */
#define APPLOG_HEADER_MAX 512

#endif
