/* convert: the worker's side of the one Python <-> Value converter
 * (common/pyconv.h): its settings (--allow-pickle, GILD_NUMPY=0) and its
 * errors as werr, the form the worker replies with. Every function here
 * needs the calling thread to hold the GIL (be attached). */
#ifndef GILD_WORKER_CONVERT_H
#define GILD_WORKER_CONVERT_H

#include <Python.h>

#include "gild.pb-c.h"
#include "pyconv.h"
#include "werr.h"

/* Caches what conversion uses. Call once after Python starts, before any
 * other convert_* function. Returns 0, or -1 with a Python exception set. */
int convert_init(void);

/* --allow-pickle: with on=1, pickle_value arguments are unpickled and
 * results with no other kind are pickled. Off (the default), a
 * pickle_value is refused with PERMISSION_DENIED without being read. */
void convert_set_pickle(int on);

/* Drops what convert_init and the numpy binding cached. Accepts being
 * called without convert_init. */
void convert_fini(void);

/* Tests and GILD_NUMPY=0 use this: on=0 pretends numpy is not installed
 * (tensors arrive as pyconv's fallback); on=1 binds it again when needed. */
void convert_set_numpy(int on);

/* Converts the encoded gild.v1.Value in v/len (borrowed) into a new Python
 * reference (pyconv_wire_to_py). Returns NULL and fills *err with
 * INVALID_ARGUMENT (PERMISSION_DENIED for a refused pickle) and the
 * converter's message; no Python exception is left set. */
PyObject *convert_wire_to_py(const uint8_t *v, size_t len, werr *err);

/* convert_wire_to_py of v packed (for tests and callers holding a tree).
 * v may be NULL (reported as missing). */
PyObject *convert_to_py(const Gild__V1__Value *v, werr *err);

typedef pyconv_pins convert_pins;

/* Converts obj (borrowed), a result, into a new Value tree in *out that
 * borrows from the objects in *pins (pyconv_from_py); the caller frees
 * both with convert_value_free once the tree is packed. Returns 0, or -1
 * with *err filled (PYTHON_ERROR, python_type "TypeError" for a kind gild
 * cannot send, "ValueError" for an unsendable value) and *out, *pins NULL;
 * no Python exception is left set. */
int convert_from_py(
    PyObject *obj, Gild__V1__Value **out, convert_pins **pins, werr *err);

/* Frees a tree and its pins from convert_from_py (needs the GIL). Accepts
 * NULLs. */
void convert_value_free(Gild__V1__Value *v, convert_pins *pins);

#endif
