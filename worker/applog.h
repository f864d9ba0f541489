/* applog: the worker's side of app logs. When gild reads the worker's
 * stdout and stderr (gild-worker --app-logs), sys.stdout and sys.stderr
 * become line-buffered writers that send each line as a record naming the
 * call running on the writing thread (proto/applog_frame.h), and a handler
 * on the root logger sends each `logging` record the same way. The front
 * end (server/applog.c) logs them as gild events. */
#ifndef GILD_WORKER_APPLOG_H
#define GILD_WORKER_APPLOG_H

#include "werr.h"

/* Tells the reader of stdout and stderr this process's pid (after exec, or
 * in a forked child once they are its own). Async-signal-safe. */
void applog_announce(void);

/* Needs the GIL; before the app is imported. Replaces sys.stdout and
 * sys.stderr. Returns 0 or -1 with err set. */
int applog_install(werr *err);

/* Needs the GIL; after the app is imported. Puts gild's handler on the
 * root logger, at INFO, unless the app configured a handler there itself.
 * Returns 0 or -1 with err set. */
int applog_install_handler(werr *err);

#endif
