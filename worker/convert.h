/* convert: gild.v1.Value <-> Python objects, exactly and both ways. Every
 * function here needs the calling thread to hold the GIL (be attached). */
#ifndef GILD_WORKER_CONVERT_H
#define GILD_WORKER_CONVERT_H

#include <Python.h>

#include "gild.pb-c.h"
#include "werr.h"

/* Containers nested deeper than this are an error in both directions. */
#define CONVERT_MAX_DEPTH 100

/* Sequences longer than this (lists, tuples, a call's positional
 * arguments) grow as their items convert instead of being allocated whole
 * first: a 64 MiB list of 2-byte items that fail at the first would
 * otherwise cost a 256 MiB array of pointers. */
#define CONVERT_PREALLOC_MAX 4096

/* Caches the Python objects conversion uses (int.from_bytes & co). Call once
 * after Python starts, before any other convert_* function. Returns 0, or -1
 * with a Python exception set. */
int convert_init(void);

/* --allow-pickle: with on=1 before convert_init, pickle_value arguments are
 * unpickled and results with no other kind are pickled. Off (the default),
 * a pickle_value is refused with PERMISSION_DENIED without being read. */
void convert_set_pickle(int on);

/* Drops what convert_init and the numpy probe cached. Accepts being called
 * without convert_init. */
void convert_fini(void);

/* Tests and GILD_NUMPY=0 use this: on=0 pretends numpy is not installed
 * (tensors become memoryviews); on=1 goes back to importing it lazily. */
void convert_set_numpy(int on);

/* Returns 1 if numpy is importable (importing it the first time), else 0. */
int convert_numpy_available(void);

/* Converts the encoded gild.v1.Value in v/len (borrowed) into a new Python
 * reference, reading the wire format as it goes (proto/wire.h): nothing
 * but the Python objects is allocated, containers deeper than
 * CONVERT_MAX_DEPTH are refused before they are descended into, and every
 * kind field of a Value is converted (the last one kept), so no part of the
 * bytes is left unchecked. Returns NULL and fills *err with INVALID_ARGUMENT
 * and a message naming the problem (invalid UTF-8, bad tensor, unset
 * Value, unhashable key, too deep, broken wire format); no Python
 * exception is left set. */
PyObject *convert_wire_to_py(const uint8_t *v, size_t len, werr *err);

/* convert_wire_to_py of v packed (for tests and callers holding a tree).
 * v may be NULL (reported as missing). */
PyObject *convert_to_py(const Gild__V1__Value *v, werr *err);

/* The Python objects a Value tree built by convert_from_py points into:
 * str/bytes payloads, big-int bytes and tensor data are borrowed from them,
 * never copied. Opaque; freed with convert_value_free. */
typedef struct convert_pins convert_pins;

/* Converts obj (borrowed) into a new Value tree in *out and the objects it
 * borrows from in *pins. Both belong to the caller, who must keep them until
 * the tree has been packed and then release them with convert_value_free.
 * Returns 0, or -1 with *err filled (code PYTHON_ERROR, python_type
 * "TypeError" for unsupported types, "ValueError" for unsendable values) and
 * *out, *pins set to NULL; no Python exception is left set. */
int convert_from_py(
    PyObject *obj, Gild__V1__Value **out, convert_pins **pins, werr *err);

/* Frees a tree and its pins from convert_from_py (needs the GIL because the
 * pins are Python references). Accepts NULLs. Not for trees made by
 * protobuf-c's unpack: free those with gild__v1__value__free_unpacked. */
void convert_value_free(Gild__V1__Value *v, convert_pins *pins);

#endif
