/* werr: an error the worker reports to the front end as a gild.v1.Error,
 * built from a format string or from the pending Python exception. */
#ifndef GILD_WORKER_WERR_H
#define GILD_WORKER_WERR_H

#include <Python.h>

#include "gild.pb-c.h"

/* All strings are malloc'd and owned by the struct (NULL when unset). A
 * zeroed struct is a valid "no error". */
typedef struct werr {
	Gild__V1__Code code;
	char *message;
	char *python_type;
	char *traceback;
} werr;

/* Frees the strings and zeroes *e. Accepts NULL. */
void werr_clear(werr *e);

/* Replaces *e with code, python_type (copied; NULL for none) and a printf
 * message. Always returns -1 so callers can `return werr_set(...)`. Never
 * touches the Python error indicator. */
int werr_set(werr *e, Gild__V1__Code code, const char *python_type,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Prepends a printf context ("argument 2: ") to e->message. Context is only
 * added while the message is short, so deep nesting cannot grow it without
 * bound. */
void werr_prefix(werr *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Needs the GIL and a pending Python exception (if none, records "unknown
 * error"). Fetches and clears it into *e: code, python_type (the qualified
 * type name), message str(exc) and traceback.format_exception text.
 * Always returns -1. */
int werr_from_python(werr *e, Gild__V1__Code code);

/* Needs the GIL. Returns a new malloc'd "module.QualName" for tp ("int" and
 * other builtins without a module), or NULL when out of memory. Clears any
 * Python exception it causes. */
char *werr_type_name(PyTypeObject *tp);

/* Fills out (initialised by the caller) with pointers borrowed from e; e must
 * outlive any use of out. Unset strings become "". */
void werr_to_proto(const werr *e, Gild__V1__Error *out);

/* Returns a new reference to the pending Python exception (normalized, its
 * traceback attached) and clears the indicator; NULL if none. Needs the GIL. */
PyObject *werr_take_exception(void);

#endif
