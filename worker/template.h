/* template: the pre-imported process new workers are forked from.
 *
 * Starting a worker from scratch (exec, start Python, import the app) takes
 * 100 ms or more, seconds for an app that imports a large library. The
 * template does that once; each worker after is a fork() of it, ready in a
 * millisecond or two, sharing the imported code's memory copy-on-write.
 *
 * The front end sends the template Spawn{slot} frames, each carrying the
 * worker's end of a new socketpair and of its descriptor channel (see
 * proto/frame.h) as SCM_RIGHTS. The template forks, tells
 * the front end the child's pid (Spawned), and later how it ended (Exited):
 * the workers are its children, so it reaps them.
 *
 * A Spawn with standby set carries one socket, and the template forks a
 * copy of itself that serves Spawn requests on it: the standby, idle and
 * sharing the template's memory, which the front end uses at once if the
 * template dies (its workers die with it; the standby does not). */
#ifndef GILD_WORKER_TEMPLATE_H
#define GILD_WORKER_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

/* Needs the GIL; the app is imported and the template's hello sent. Serves
 * Spawn requests on ctl until the front end closes it, then exits the
 * process (status 0, or 1 on a socket error); it returns only in a forked
 * worker, with the worker's socket in *fd, its descriptor channel in *chan
 * and its slot (decimal) in slot. A forked standby goes on serving, on its
 * own socket. app_logs (gild-worker --app-logs): each Spawn also carries
 * the child's stdout and stderr (see applog.h), after its other
 * descriptors. */
void template_run(int ctl, bool app_logs, int *fd, int *chan, char *slot,
    size_t slotlen);

#endif
