/* interp: the embedded CPython's lifecycle (start, sys.path, version, GIL
 * state, stop). One interpreter per worker process. */
#ifndef GILD_WORKER_INTERP_H
#define GILD_WORKER_INTERP_H

#include <stddef.h>

#include "werr.h"

/* Starts Python isolated from the environment (PyConfig isolated, UTF-8
 * mode, no signal handlers, site on) with sys.argv = [argv0] and the
 * PYTHONPATH environment variable's entries put first in sys.path. The
 * calling thread holds the GIL afterwards. Returns 0, or -1 with *err set
 * (INTERNAL). Call once per process. */
int interp_init(const char *argv0, werr *err);

/* Finalizes Python (runs atexit handlers, joins non-daemon threads).
 * Returns Py_FinalizeEx's result: 0, or -1 when flushing stdio failed. */
int interp_fini(void);

/* Needs the GIL. Inserts dir at sys.path[0]. Returns 0, or -1 with *err. */
int interp_path_prepend(const char *dir, werr *err);

/* Writes the running interpreter's version ("3.11.2") into buf. */
void interp_python_version(char *buf, size_t cap);

/* Needs the GIL. Returns sys._is_gil_enabled() where it exists, else 1. */
int interp_gil_enabled(void);

/* Whether this worker embeds a free-threaded (PEP 703) CPython. */
int interp_free_threaded(void);

/* Needs the GIL. In a free-threaded worker: the names of the extension
 * modules that turned the GIL back on (comma-separated, into buf); returns
 * how many, 0 when none is known. */
size_t interp_gil_causes(char *buf, size_t cap);

/* When err is a ModuleNotFoundError (the app imports a module this
 * interpreter does not have), prefixes its message with which module, and,
 * when Debian's system Python has it, that it exists only for that Python
 * (extension modules are built for one interpreter version and ABI). */
void interp_explain_import(werr *err);

/* Needs the GIL. Flushes sys.stdout and sys.stderr, ignoring errors. */
void interp_flush_stdio(void);

/* Needs the GIL. inspect.iscoroutinefunction(fn); errors count as no. */
int interp_is_coroutine_function(PyObject *fn);

/* Needs the GIL and a running call. For an async generator res (stolen),
 * a plain generator of its values (gild/_agen.py), new; anything else is
 * returned as it is. NULL with a Python error. */
PyObject *interp_sync_iter(PyObject *res);

#endif
