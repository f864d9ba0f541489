/* pyconv: Python objects <-> gild.v1.Value, the one converter compiled into
 * the worker (gild-worker, gild-worker-ft) and the Python client
 * (gild._native): one depth limit, one set of kinds, one fallback without
 * numpy, one set of error texts. Every function needs the calling thread
 * to hold the GIL (free-threaded CPython: be attached, in any number of
 * threads at once); large copies are made with it released. */
#ifndef GILD_PYCONV_H
#define GILD_PYCONV_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>

#include "gild.pb-c.h"
#include "gild_limits.h"

/* Sequences longer than this (lists, tuples, a call's positional
 * arguments) grow as their items convert instead of being allocated whole
 * first: a 64 MiB list of 2-byte items that fail at the first would
 * otherwise cost a 256 MiB array of pointers. */
#define PYCONV_PREALLOC_MAX 4096

/* Copies of at least this many bytes are made with the GIL released. */
#define PYCONV_BIG_COPY (1u << 20)

/* What pickled values (gild.v1.Value.pickle_value) do. */
enum pyconv_pickle {
	/* The worker by default: a received pickle is refused
	 * (PermissionError, never unpickled); an object with no other kind
	 * cannot be sent. */
	PYCONV_PICKLE_REFUSE,
	/* The client by default: a received pickle becomes a gild.Pickled
	 * holding its bytes; only a gild.Pickled is sent as one. */
	PYCONV_PICKLE_WRAP,
	/* --allow-pickle, gild.connect(pickle=True): received pickles are
	 * unpickled, objects with no other kind are sent pickled (and a
	 * gild.Pickled as its bytes). */
	PYCONV_PICKLE_ALLOW,
};

/* Caches what the conversions use (int.from_bytes & co). Call once after
 * Python starts (at import, in the extension), before any other pyconv_*
 * function. Returns 0, or -1 with a Python exception set. */
int pyconv_init(void);

/* Drops what pyconv_init and the numpy binding cached. Accepts being
 * called without pyconv_init. No conversion may be running. */
void pyconv_fini(void);

/* on=0 pretends numpy is not installed (tests, GILD_NUMPY=0): tensors
 * arrive as the fallback below and numpy arrays are not recognised when
 * sent; on=1 goes back to binding numpy when it is first needed. */
void pyconv_use_numpy(int on);

/* 1 if numpy can be used (importing it the first time), else 0. The
 * binding is made once, safely from any number of threads. */
int pyconv_numpy_available(void);

/* The encoded gild.v1.Value v/len (borrowed) as a new Python object,
 * read from the wire format as it goes (proto/wire.h): nothing but the
 * Python objects is allocated, containers nested deeper than
 * GILD_VALUE_DEPTH_MAX are refused before they are descended into, and
 * every kind field of a Value is converted (the last kept), so no byte is
 * left unchecked. Tensors become numpy arrays when numpy can be imported,
 * else memoryviews cast to their format and shape, else (dtype, shape,
 * bytes) tuples. Returns NULL with an exception set: ValueError naming the
 * problem and where ("list index 2: str value is not valid UTF-8 (...)"),
 * TypeError for an unhashable dict key, PermissionError for a pickle under
 * PYCONV_PICKLE_REFUSE, MemoryError. */
PyObject *pyconv_wire_to_py(
    const uint8_t *v, size_t len, enum pyconv_pickle pickle);

/* Where a value being sent sits, for error messages: the root of the
 * path ("argument 2[0]['k']: cannot send set: ..."). Internal segments
 * (list items, dict entries) are added by the conversion. */
enum pyconv_at_kind {
	PYCONV_AT_VALUE,  /* "value" */
	PYCONV_AT_RESULT, /* "result[0]", not said alone (the caller names it) */
	PYCONV_AT_ARG,    /* "argument <index + 1>" */
	PYCONV_AT_KWARG,  /* "keyword argument <repr(key)>" */
	PYCONV_AT_INDEX,  /* "[index]" of a list or tuple */
	PYCONV_AT_KEY,    /* " key #index" of a dict */
	PYCONV_AT_ENTRY,  /* "[repr(key)]", the value of a dict entry */
};
typedef struct pyconv_at {
	const struct pyconv_at *up;
	enum pyconv_at_kind kind;
	Py_ssize_t index;
	PyObject *key; /* borrowed */
} pyconv_at;

/* The Python objects a Value tree built by pyconv_from_py points into:
 * str/bytes payloads, big-int bytes and tensor data are borrowed from them,
 * never copied. Opaque; freed with pyconv_value_free. */
typedef struct pyconv_pins pyconv_pins;

/* Converts obj (borrowed), found at `at` (a root, NULL for "value"), into
 * a new Value tree in *out and the objects it borrows from in *pins. Both
 * belong to the caller, who keeps them until the tree has been packed and
 * then releases them with pyconv_value_free. Returns 0, or -1 with a
 * Python exception set (TypeError for a kind gild cannot send, ValueError
 * for an unsendable value, MemoryError), its message starting with the
 * path to the bad value; *out and *pins are then NULL. */
int pyconv_from_py(PyObject *obj, const pyconv_at *at,
    enum pyconv_pickle pickle, Gild__V1__Value **out, pyconv_pins **pins);

/* Frees a tree and its pins from pyconv_from_py (needs the GIL: the pins
 * are Python references). Accepts NULLs. Not for trees made by
 * protobuf-c's unpack. */
void pyconv_value_free(Gild__V1__Value *v, pyconv_pins *pins);

/* Packs v (from pyconv_from_py) into a new malloc'd buffer in *buf and *len,
 * with the GIL released when it is large. Returns 0, or -1 with
 * MemoryError set. */
int pyconv_pack(const Gild__V1__Value *v, uint8_t **buf, size_t *len);

#endif
