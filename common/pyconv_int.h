/* pyconv internals shared by its files: pyconv.c (setup, the numpy
 * binding, pickling, errors), pyconv_to.c (wire -> Python) and
 * pyconv_from.c (Python -> Value). Not for use outside them. */
#ifndef GILD_PYCONV_INT_H
#define GILD_PYCONV_INT_H

#include "pyconv.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tensor and memoryview conversion assume a little-endian host"
#endif

/* Set by pyconv_init, read-only after. */
struct pyconv_cache {
	PyObject *from_bytes; /* int.from_bytes, bound */
	PyObject *signed_kw;  /* {"signed": True} */
	PyObject *little;     /* "little" */
	PyObject *zero;       /* 0 */
	PyObject *numpy_name; /* "numpy" */
	/* A bytearray subclass: the buffer under a tensor received without
	 * numpy (a memoryview of it), so such a memoryview of uint8 or char
	 * goes back as the tensor it came as, not as bytes. */
	PyObject *tensor_buffer;
};
extern struct pyconv_cache pyconv_cv;

/* What the conversions use of numpy, bound once (new references, kept
 * until pyconv_fini). */
struct pyconv_np {
	PyObject *ndarray; /* a type */
	PyObject *generic; /* a type */
	PyObject *empty;
	PyObject *asarray;
	PyObject *ascontiguousarray;
};

/* numpy's binding if numpy is usable, else NULL (no exception set). With
 * do_import, numpy is imported if need be (a received tensor); without,
 * only bound if something imported it already (an object cannot be a numpy
 * array unless numpy is loaded). Safe from any number of threads. */
const struct pyconv_np *pyconv_numpy(int do_import);

/* gild.Pickled (a new reference), or NULL with an exception. With
 * loaded_only, NULL without an exception when gild._pickled was never
 * imported: then no object can be a gild.Pickled. */
PyObject *pyconv_pickled_type(int loaded_only);

/* pickle.<name> as a new reference, or NULL with an exception set. */
PyObject *pyconv_pickle_fn(const char *name);

/* memcpy, with the GIL released when len >= PYCONV_BIG_COPY. */
void pyconv_copy(void *dst, const void *src, size_t len);

/* The pending exception (a new reference, normalized, cleared), or NULL. */
PyObject *pyconv_take_exception(void);

/* Replaces the pending exception with ValueError("<what>: <Type>: <msg>"),
 * the form of an error met while building a received value (MemoryError
 * is kept as it is). Returns NULL. */
void *pyconv_fail_pending(const char *what);

/* Prefixes the pending exception's message with a printf context ("list
 * index 2: ") keeping its type, except for the depth error (raised up to
 * GILD_VALUE_DEPTH_MAX levels down, where a hundred "list index 0: " say
 * nothing the limit does not), a message already long, and MemoryError. */
void pyconv_prefix(const char *fmt, ...);

/* Raises type("<path to at>: <message>") for a value being sent.
 * Returns NULL. */
void *pyconv_fail_at(const pyconv_at *at, PyObject *type, const char *fmt,
    ...);

#endif
