/* lifecycle: what a worker sets up around the app: its environment
 * (--env NAME=TEMPLATE with {slot}), its sys.path (--venv, --python-path),
 * gild.worker(), and the app's hooks (@gild.on_worker_start, @gild.warmup
 * before it takes calls; @gild.on_worker_stop when it exits as planned). */
#ifndef GILD_WORKER_LIFECYCLE_H
#define GILD_WORKER_LIFECYCLE_H

#include <stddef.h>

#include "werr.h"

/* Sets each "NAME=TEMPLATE" of envs (n of them) in this process's
 * environment, every "{slot}" in TEMPLATE replaced by slot. With
 * python_running (a forked worker), os.environ is told too; before Python
 * starts (an exec'd worker) the environment is enough. Returns 0, or -1
 * with *err (an entry without '=', out of memory). */
int life_env_apply(char *const *envs, size_t n, const char *slot,
    int python_running, werr *err);

/* Needs the GIL. Puts the site-packages of the virtual environment venv
 * (NULL: none; .pth files are read, as site does) and then the n dirs, in
 * order, at the front of sys.path. Returns 0, or -1 with *err:
 * FAILED_PRECONDITION naming both versions when venv/pyvenv.cfg says it was
 * made by another Python than this one (major.minor differ), or it has no
 * site-packages for this Python (a free-threaded one has its own). */
int life_paths(const char *venv, char *const *dirs, size_t n, werr *err);

/* Needs the GIL. What gild.worker() reports: slot (-1 in the template,
 * which is no worker: None) and the threads running calls. Adds
 * worker_info() to _gild_worker on first use. Returns 0 or -1 with *err. */
int life_set_worker(int slot, int threads, werr *err);

/* Needs the GIL. Runs the app's @gild.on_worker_start hooks, then its
 * @gild.warmup functions, in the order they were declared. Returns 0, or
 * -1 with *err (PYTHON_ERROR, the message naming the hook and the
 * exception) at the first that raises; the rest do not run. */
int life_start(werr *err);

/* Needs the GIL. Runs the app's @gild.on_worker_stop hooks, the last
 * declared first (as atexit does); one that raises does not stop the
 * others. Returns how many raised; each is in errs[i] for i < cap (the
 * caller clears them). */
size_t life_stop(werr *errs, size_t cap);

#endif
