/* applog: the app's output. Each worker's and template's stdout and stderr
 * are pipes the front end reads in its loop (never blocking), cut into
 * lines and logged as gild events (log.h) with the stream, the worker's
 * slot, its pid and, for what Python wrote, the request id and function of
 * the call that was running (proto/applog_frame.h says how the worker
 * marks them). Memory is bounded: a fixed buffer per pipe, lines cut at
 * APPLOG_LINE_MAX, and lines dropped (counted, and said in a warning) while
 * gild's stderr cannot take more. */
#ifndef GILD_APPLOG_H
#define GILD_APPLOG_H

#include <stdint.h>
#include <sys/types.h>

struct event_base;
typedef struct applog applog;

/* Returns 0 or a negative errno. */
int applog_init(applog **out, struct event_base *base);

/* Reads, without blocking, what each pipe still open holds (a bounded
 * amount), logs it with any partial line, closes them and frees a.
 * Accepts NULL. */
void applog_fini(applog *a);

/* Opens the stdout and stderr pipes of a process about to start in slot
 * (-1: a template). Returns 0 with their write ends (close-on-exec) in
 * w[0] (stdout) and w[1] (stderr), the caller's to hand to the child and
 * then close; or a negative errno. pid may be 0 (not known yet: the
 * process announces it itself). What comes on the pipes is read until
 * every process holding a write end has closed it, so the lines a process
 * wrote before dying are logged. */
int applog_open(applog *a, int slot, pid_t pid, int w[2]);

/* Lines read and logged, and lines dropped because gild's stderr was full,
 * since applog_init. */
uint64_t applog_lines(const applog *a);
uint64_t applog_dropped(const applog *a);

#endif
