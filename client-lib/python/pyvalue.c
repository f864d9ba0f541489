/* pyvalue: Python objects <-> gild_value for the gild._native extension.
 * Sending copies each payload once into the gild_value; receiving copies it
 * once into the Python object. A conversion error names where in the
 * arguments the bad value is ("argument 1[2]['k']: cannot send set"). */
#include "pyvalue.h"
#include "dtype.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tensor conversion assumes a little-endian host"
#endif

/* Copies of at least this many bytes are made with the GIL released. */
#define BIG_COPY (1u << 20)


#define SENDS                                                                  \
	"gild sends None, bool, int, float, str, bytes, lists, tuples, dicts " \
	"and numpy arrays"

/* Set at import (pyvalue_init), read-only after. */
static struct {
	PyObject *from_bytes; /* int.from_bytes */
	PyObject *signed_kw;  /* {"signed": True} */
	PyObject *little;     /* "little" */
	PyObject *numpy_name; /* "numpy" */
} pv;

/* What the conversions use of numpy, bound when numpy is first seen (new
 * references, kept for the life of the process). */
struct np_api {
	PyObject *ndarray; /* a type */
	PyObject *generic; /* a type */
	PyObject *empty;
	PyObject *asarray;
	PyObject *ascontiguousarray;
};

/* Free-threaded CPython converts in several threads at once, with no GIL:
 * numpy's binding is published whole, once, by compare-and-swap, and the
 * flags are atomic. */
static _Atomic(struct np_api *) np_bound; /* NULL until numpy is bound */
static atomic_int np_failed; /* importing numpy failed: do not retry */
static atomic_int np_off;    /* pyvalue_use_numpy(0) */

/* The pickle argument of the conversion running in this thread (saved and
 * restored around each one: pickle.dumps may run code that converts). */
static _Thread_local int pickling;

/* ---------------------------------------------------------------- setup */

int
pyvalue_init(void)
{
	pv.from_bytes =
	    PyObject_GetAttrString((PyObject *) &PyLong_Type, "from_bytes");
	pv.signed_kw = Py_BuildValue("{s:O}", "signed", Py_True);
	pv.little = PyUnicode_InternFromString("little");
	pv.numpy_name = PyUnicode_InternFromString("numpy");
	if (pv.from_bytes == NULL || pv.signed_kw == NULL ||
	    pv.little == NULL || pv.numpy_name == NULL)
		return -1;
	return 0;
}

void
pyvalue_use_numpy(int on)
{
	atomic_store(&np_off, !on);
}

static void
np_api_free(struct np_api *api)
{
	Py_XDECREF(api->ndarray);
	Py_XDECREF(api->generic);
	Py_XDECREF(api->empty);
	Py_XDECREF(api->asarray);
	Py_XDECREF(api->ascontiguousarray);
	free(api);
}

/* Binds what the conversions use of the numpy module np (borrowed), unless
 * another thread did first. Returns the binding, or NULL (no exception
 * set) if numpy looks broken. */
static const struct np_api *
numpy_bind(PyObject *np)
{
	struct np_api *api = calloc(1, sizeof(*api)), *first = NULL;

	if (api == NULL)
		return NULL;
	api->ndarray = PyObject_GetAttrString(np, "ndarray");
	api->generic = PyObject_GetAttrString(np, "generic");
	api->empty = PyObject_GetAttrString(np, "empty");
	api->asarray = PyObject_GetAttrString(np, "asarray");
	api->ascontiguousarray =
	    PyObject_GetAttrString(np, "ascontiguousarray");
	if (api->ndarray == NULL || api->generic == NULL ||
	    api->empty == NULL || api->asarray == NULL ||
	    api->ascontiguousarray == NULL || !PyType_Check(api->ndarray) ||
	    !PyType_Check(api->generic)) {
		PyErr_Clear();
		np_api_free(api);
		atomic_store(&np_failed, 1);
		return NULL;
	}
	if (!atomic_compare_exchange_strong(&np_bound, &first, api)) {
		np_api_free(api); /* another thread bound it: first */
		return first;
	}
	return api;
}

/* numpy's binding if numpy is usable, else NULL: for sending only when
 * someone already imported it (an object cannot be a numpy array unless
 * numpy is loaded), for a received tensor importing it if need be
 * (do_import). */
static const struct np_api *
numpy_ready(int do_import)
{
	const struct np_api *api;
	PyObject *np;

	if (atomic_load(&np_off))
		return NULL;
	if ((api = atomic_load(&np_bound)) != NULL)
		return api;
	if (atomic_load(&np_failed))
		return NULL;
	np = do_import ? PyImport_Import(pv.numpy_name)
		       : PyImport_GetModule(pv.numpy_name);
	if (np == NULL) {
		PyErr_Clear();
		if (do_import)
			atomic_store(&np_failed, 1);
		return NULL;
	}
	api = numpy_bind(np);
	Py_DECREF(np);
	return api;
}

/* --------------------------------------------------------- error paths */

/* Where a value is in what is being sent: a chain of segments from the
 * value up to its root (an argument), each on the C stack of the
 * conversion that is inside it. */
enum seg_kind {
	SEG_ARG,   /* positional argument i (root) */
	SEG_KWARG, /* keyword argument `key` (root) */
	SEG_VALUE, /* a lone value (root) */
	SEG_INDEX, /* item i of a list or tuple */
	SEG_KEY,   /* the key of entry i of a dict */
	SEG_ENTRY, /* the value of entry i (key `key`) of a dict */
};

typedef struct seg {
	const struct seg *up;
	enum seg_kind kind;
	Py_ssize_t i;
	PyObject *key; /* borrowed */
} seg;

/* repr(key) cut to a readable length, or NULL (no exception set). */
static PyObject *
short_repr(PyObject *key)
{
	PyObject *r = PyObject_Repr(key);
	PyObject *cut;

	if (r == NULL) {
		PyErr_Clear();
		return NULL;
	}
	if (PyUnicode_GET_LENGTH(r) <= 40)
		return r;
	cut = PyUnicode_Substring(r, 0, 36);
	Py_DECREF(r);
	if (cut == NULL) {
		PyErr_Clear();
		return NULL;
	}
	r = PyUnicode_FromFormat("%U...", cut);
	Py_DECREF(cut);
	if (r == NULL)
		PyErr_Clear();
	return r;
}

static PyObject *
seg_str(const seg *s)
{
	PyObject *r, *out;

	switch (s->kind) {
	case SEG_ARG:
		return PyUnicode_FromFormat("argument %zd", s->i + 1);
	case SEG_KWARG:
		return PyUnicode_FromFormat("keyword argument %R", s->key);
	case SEG_VALUE:
		return PyUnicode_FromString("value");
	case SEG_INDEX:
		return PyUnicode_FromFormat("[%zd]", s->i);
	case SEG_KEY:
		return PyUnicode_FromFormat(" key #%zd", s->i);
	case SEG_ENTRY:
		if ((r = short_repr(s->key)) == NULL)
			return PyUnicode_FromFormat("[entry #%zd]", s->i);
		out = PyUnicode_FromFormat("[%U]", r);
		Py_DECREF(r);
		return out;
	}
	return PyUnicode_FromString("?");
}

/* The path to `at` as a new str ("argument 2[0]['x']"), the middle elided
 * when it is deep; NULL with an exception set. */
static PyObject *
path_str(const seg *at)
{
	enum { HEAD = 6, TAIL = 6 };
	const seg **chain;
	PyObject *out, *part, *joined;
	size_t n = 0, k = 0;

	for (const seg *s = at; s != NULL; s = s->up)
		n++;
	if ((chain = PyMem_Malloc((n ? n : 1) * sizeof(*chain))) == NULL)
		return PyErr_NoMemory();
	for (const seg *s = at; s != NULL; s = s->up)
		chain[n - ++k] = s;
	out = PyUnicode_FromString("");
	for (size_t i = 0; out != NULL && i < n; i++) {
		if (n > HEAD + TAIL + 1 && i == HEAD) {
			part = PyUnicode_FromString("...");
			i = n - TAIL - 1;
		} else {
			part = seg_str(chain[i]);
		}
		joined = part != NULL ? PyUnicode_Concat(out, part) : NULL;
		Py_XDECREF(part);
		Py_DECREF(out);
		out = joined;
	}
	PyMem_Free(chain);
	return out;
}

/* Raises type("<path to at>: <message>"); returns NULL. */
static void *
fail(const seg *at, PyObject *type, const char *fmt, ...)
{
	PyObject *msg, *path = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = PyUnicode_FromFormatV(fmt, ap);
	va_end(ap);
	if (msg != NULL && (path = path_str(at)) != NULL)
		PyErr_Format(type, "%U: %U", path, msg);
	Py_XDECREF(msg);
	Py_XDECREF(path);
	return NULL;
}

static void *
unsupported(PyObject *o, const seg *at)
{
	return fail(at, PyExc_TypeError,
	    "cannot send %s: " SENDS " (others pickled with "
	    "gild.connect(..., pickle=True) to a server run with "
	    "--allow-pickle)",
	    Py_TYPE(o)->tp_name);
}

/* gild.Pickled (a new reference), or NULL with an exception. With
 * loaded_only, NULL without an exception when gild._pickled was never
 * imported: then no object can be a gild.Pickled. */
static PyObject *
pickled_type(int loaded_only)
{
	PyObject *name, *m, *t;

	if (!loaded_only) {
		m = PyImport_ImportModule("gild._pickled");
	} else {
		if ((name = PyUnicode_FromString("gild._pickled")) == NULL)
			return NULL;
		m = PyImport_GetModule(name);
		Py_DECREF(name);
	}
	if (m == NULL)
		return NULL;
	t = PyObject_GetAttrString(m, "Pickled");
	Py_DECREF(m);
	return t;
}

/* The pending exception (a new reference, cleared), or NULL. */
static PyObject *
take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
	return PyErr_GetRaisedException();
#else
	PyObject *t, *v, *tb;

	PyErr_Fetch(&t, &v, &tb);
	PyErr_NormalizeException(&t, &v, &tb);
	Py_XDECREF(t);
	Py_XDECREF(tb);
	return v;
#endif
}

/* o as a GILD_PICKLE when it is a gild.Pickled, or (pickling) the pickle
 * of o; otherwise unsupported. NULL with an exception on failure. */
static gild_value *
pickle_from_py(PyObject *o, const seg *at)
{
	PyObject *t = pickled_type(1), *b = NULL, *m, *exc;
	gild_value *v = NULL;
	int is = 0;

	if (t == NULL && PyErr_Occurred())
		goto out;
	if (t != NULL && (is = PyObject_IsInstance(o, t)) == -1)
		goto out;
	if (is) {
		b = PyObject_GetAttrString(o, "data");
	} else if (!pickling) {
		unsupported(o, at);
		goto out;
	} else if ((m = PyImport_ImportModule("pickle")) != NULL) {
		b = PyObject_CallMethod(m, "dumps", "O", o);
		Py_DECREF(m);
		if (b == NULL) {
			exc = take_exception();
			fail(at, PyExc_TypeError,
			    "cannot send %s: pickling it failed: %S",
			    Py_TYPE(o)->tp_name, exc != NULL ? exc : Py_None);
			Py_XDECREF(exc);
			goto out;
		}
	}
	if (b == NULL)
		goto out;
	if (!PyBytes_Check(b))
		fail(at, PyExc_TypeError, "gild.Pickled.data must be bytes");
	else if ((v = gild_pickle(PyBytes_AS_STRING(b),
		      (size_t) PyBytes_GET_SIZE(b))) == NULL)
		PyErr_NoMemory();
out:
	Py_XDECREF(b);
	Py_XDECREF(t);
	return v;
}

/* A gild constructor's result, or NULL with MemoryError. */
static gild_value *
made(gild_value *v)
{
	if (v == NULL)
		PyErr_NoMemory();
	return v;
}

/* -------------------------------------------------------- Python -> gild */

static gild_value *from_py(PyObject *o, const seg *at, int depth);

/* gild_bytes / gild_tensor of a large buffer with the GIL released; owner
 * (borrowed) is kept alive meanwhile. ndim < 0: bytes. */
static gild_value *
copy_payload(PyObject *owner, const char *dtype, const uint64_t *shape,
    int ndim, const void *p, size_t len)
{
	gild_value *v;

	if (len < BIG_COPY)
		return made(ndim < 0 ? gild_bytes(p, len)
		                     : gild_tensor(dtype, shape, (size_t) ndim,
		                           p, len));
	Py_INCREF(owner);
	Py_BEGIN_ALLOW_THREADS v =
	    ndim < 0 ? gild_bytes(p, len)
	             : gild_tensor(dtype, shape, (size_t) ndim, p, len);
	Py_END_ALLOW_THREADS Py_DECREF(owner);
	return made(v);
}

/* An int outside int64: its shortest two's complement bytes. */
static gild_value *
bigint_from_py(PyObject *o)
{
	PyObject *n, *bits = NULL, *meth = NULL, *args = NULL, *bytes = NULL;
	gild_value *v = NULL;
	Py_ssize_t nbits;

	/* An exact int, so that a subclass cannot change to_bytes. */
	if ((n = PyNumber_Index(o)) == NULL)
		return NULL;
	if ((bits = PyObject_CallMethod(n, "bit_length", NULL)) == NULL ||
	    (nbits = PyLong_AsSsize_t(bits)) == -1)
		goto done;
	if ((meth = PyObject_GetAttrString(n, "to_bytes")) == NULL ||
	    (args = Py_BuildValue("(nO)", nbits / 8 + 1, pv.little)) == NULL ||
	    (bytes = PyObject_Call(meth, args, pv.signed_kw)) == NULL)
		goto done;
	if (!PyBytes_Check(bytes)) {
		PyErr_SetString(
		    PyExc_TypeError, "int.to_bytes returned no bytes");
		goto done;
	}
	v = made(gild_bigint((const uint8_t *) PyBytes_AS_STRING(bytes),
	    (size_t) PyBytes_GET_SIZE(bytes)));
done:
	Py_DECREF(n);
	Py_XDECREF(bits);
	Py_XDECREF(meth);
	Py_XDECREF(args);
	Py_XDECREF(bytes);
	return v;
}

static gild_value *
str_from_py(PyObject *o, const seg *at)
{
	PyObject *type, *val, *tb;
	gild_value *v;
	Py_ssize_t n;
	const char *s = PyUnicode_AsUTF8AndSize(o, &n);

	if (s == NULL) {
		if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
			return NULL;
		PyErr_Fetch(&type, &val, &tb);
		PyErr_NormalizeException(&type, &val, &tb);
		fail(at, PyExc_ValueError,
		    "cannot send a str that is not valid UTF-8 (%S)", val);
		Py_XDECREF(type);
		Py_XDECREF(val);
		Py_XDECREF(tb);
		return NULL;
	}
	if ((size_t) n < BIG_COPY)
		return made(gild_str(s, (size_t) n));
	Py_INCREF(o);
	Py_BEGIN_ALLOW_THREADS v = gild_str(s, (size_t) n);
	Py_END_ALLOW_THREADS Py_DECREF(o);
	return made(v);
}

/* A bytearray or memoryview: its bytes in C order. */
static gild_value *
buffer_from_py(PyObject *o)
{
	Py_buffer view;
	gild_value *v;
	char *tmp;

	if (PyObject_GetBuffer(o, &view, PyBUF_FULL_RO) == -1)
		return NULL;
	if (PyBuffer_IsContiguous(&view, 'C')) {
		v = copy_payload(
		    o, NULL, NULL, -1, view.buf, (size_t) view.len);
		PyBuffer_Release(&view);
		return v;
	}
	if ((tmp = PyMem_Malloc(view.len ? (size_t) view.len : 1)) == NULL) {
		PyBuffer_Release(&view);
		PyErr_NoMemory();
		return NULL;
	}
	v = NULL;
	if (PyBuffer_ToContiguous(tmp, &view, view.len, 'C') == 0)
		v = copy_payload(o, NULL, NULL, -1, tmp, (size_t) view.len);
	PyMem_Free(tmp);
	PyBuffer_Release(&view);
	return v;
}

/* A list or tuple (a list is read from a snapshot of its items). */
static gild_value *
seq_from_py(PyObject *o, const seg *at, int depth)
{
	int is_list = PyList_Check(o);
	PyObject *items = is_list ? PyList_AsTuple(o) : (Py_INCREF(o), o);
	gild_value *v = NULL;

	if (items == NULL)
		return NULL;
	if ((v = made(is_list ? gild_list() : gild_tuple())) == NULL)
		goto fail;
	for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(items); i++) {
		seg s = {at, SEG_INDEX, i, NULL};
		gild_value *item =
		    from_py(PyTuple_GET_ITEM(items, i), &s, depth + 1);

		if (item == NULL)
			goto fail;
		if (gild_list_append(v, item) != GILD_OK) {
			gild_value_free(item);
			PyErr_NoMemory();
			goto fail;
		}
	}
	Py_DECREF(items);
	return v;
fail:
	gild_value_free(v);
	Py_DECREF(items);
	return NULL;
}

/* A dict, read from a snapshot of its items. */
static gild_value *
map_from_py(PyObject *o, const seg *at, int depth)
{
	PyObject *items = PyDict_Items(o);
	gild_value *m = NULL, *key = NULL, *val = NULL;

	if (items == NULL)
		return NULL;
	if ((m = made(gild_map())) == NULL)
		goto fail;
	for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
		PyObject *kv = PyList_GET_ITEM(items, i);
		PyObject *k = PyTuple_GET_ITEM(kv, 0);
		seg ks = {at, SEG_KEY, i, NULL};
		seg vs = {at, SEG_ENTRY, i, k};

		if ((key = from_py(k, &ks, depth + 1)) == NULL ||
		    (val = from_py(PyTuple_GET_ITEM(kv, 1), &vs, depth + 1)) ==
		        NULL)
			goto fail;
		if (gild_map_set(m, key, val) != GILD_OK) {
			PyErr_NoMemory();
			goto fail;
		}
		key = val = NULL;
	}
	Py_DECREF(items);
	return m;
fail:
	gild_value_free(key);
	gild_value_free(val);
	gild_value_free(m);
	Py_DECREF(items);
	return NULL;
}

/* A numpy array: dtype and shape from the array, data from a C-contiguous
 * little-endian copy of it (the array itself when it is one already). */
static gild_value *
ndarray_from_py(const struct np_api *np, PyObject *o, const seg *at)
{
	PyObject *dtype, *kind = NULL, *isize = NULL, *fields = NULL;
	PyObject *le = NULL, *arr = NULL, *shape = NULL;
	const struct dtype_info *dt = NULL;
	uint64_t dims[PyBUF_MAX_NDIM];
	uint64_t want;
	Py_ssize_t ndim;
	Py_buffer view;
	gild_value *v = NULL;

	if ((dtype = PyObject_GetAttrString(o, "dtype")) == NULL)
		return NULL;
	if ((kind = PyObject_GetAttrString(dtype, "kind")) == NULL ||
	    (isize = PyObject_GetAttrString(dtype, "itemsize")) == NULL ||
	    (fields = PyObject_GetAttrString(dtype, "fields")) == NULL)
		goto done;
	if (PyUnicode_Check(kind) && PyUnicode_GET_LENGTH(kind) == 1 &&
	    fields == Py_None && PyLong_Check(isize))
		dt = dtype_by_kind((char) PyUnicode_READ_CHAR(kind, 0),
		    PyLong_AsSize_t(isize));
	if (PyErr_Occurred())
		goto done;
	if (dt == NULL) {
		fail(at, PyExc_TypeError,
		    "cannot send a numpy array of dtype %S: gild sends arrays "
		    "of bool, int8-64, uint8-64, float16-64, complex64 and "
		    "complex128",
		    dtype);
		goto done;
	}
	if ((shape = PyObject_GetAttrString(o, "shape")) == NULL)
		goto done;
	if (!PyTuple_Check(shape) || PyTuple_GET_SIZE(shape) > PyBUF_MAX_NDIM) {
		fail(at, PyExc_ValueError,
		    "cannot send a numpy array of shape %S", shape);
		goto done;
	}
	ndim = PyTuple_GET_SIZE(shape);
	want = dt->itemsize;
	for (Py_ssize_t i = 0; i < ndim; i++) {
		dims[i] = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(shape, i));
		if (PyErr_Occurred())
			goto done;
		want *= dims[i];
	}
	if ((le = PyObject_CallMethod(dtype, "newbyteorder", "s", "<")) ==
	        NULL ||
	    (arr = PyObject_CallFunctionObjArgs(
	         np->ascontiguousarray, o, le, NULL)) == NULL)
		goto done;
	if (PyObject_GetBuffer(arr, &view, PyBUF_C_CONTIGUOUS) == -1)
		goto done;
	if ((uint64_t) view.len != want)
		PyErr_Format(PyExc_ValueError,
		    "numpy array buffer of %zd bytes for %llu bytes of data",
		    view.len, (unsigned long long) want);
	else
		v = copy_payload(arr, dt->name, dims, (int) ndim, view.buf,
		    (size_t) view.len);
	PyBuffer_Release(&view);
done:
	Py_DECREF(dtype);
	Py_XDECREF(kind);
	Py_XDECREF(isize);
	Py_XDECREF(fields);
	Py_XDECREF(le);
	Py_XDECREF(arr);
	Py_XDECREF(shape);
	return v;
}

/* A numpy scalar: as the Python scalar .item() gives; complex ones as 0-d
 * tensors. */
static gild_value *
npscalar_from_py(const struct np_api *np, PyObject *o, const seg *at,
    int depth)
{
	PyObject *item = PyObject_CallMethod(o, "item", NULL);
	PyObject *arr;
	gild_value *v;

	if (item == NULL)
		return NULL;
	if (PyBool_Check(item) || PyLong_Check(item) || PyFloat_Check(item) ||
	    PyUnicode_Check(item) || PyBytes_Check(item)) {
		v = from_py(item, at, depth);
		Py_DECREF(item);
		return v;
	}
	if (PyComplex_Check(item)) {
		Py_DECREF(item);
		if ((arr = PyObject_CallOneArg(np->asarray, o)) == NULL)
			return NULL;
		v = ndarray_from_py(np, arr, at);
		Py_DECREF(arr);
		return v;
	}
	Py_DECREF(item);
	return unsupported(o, at);
}

static gild_value *
from_py(PyObject *o, const seg *at, int depth)
{
	const struct np_api *np;

	if (depth > PYVALUE_MAX_DEPTH)
		return fail(at, PyExc_ValueError,
		    "cannot send values nested deeper than %d levels",
		    PYVALUE_MAX_DEPTH);
	if (o == Py_None)
		return made(gild_null());
	if (PyBool_Check(o))
		return made(gild_bool(o == Py_True));
	if (PyLong_Check(o)) {
		int overflow = 0;
		long long x = PyLong_AsLongLongAndOverflow(o, &overflow);

		if (x == -1 && PyErr_Occurred())
			return NULL;
		return overflow ? bigint_from_py(o) : made(gild_int(x));
	}
	if (PyFloat_Check(o))
		return made(gild_float(PyFloat_AS_DOUBLE(o)));
	if (PyUnicode_Check(o))
		return str_from_py(o, at);
	if (PyBytes_Check(o))
		return copy_payload(o, NULL, NULL, -1, PyBytes_AS_STRING(o),
		    (size_t) PyBytes_GET_SIZE(o));
	if (PyByteArray_Check(o) || PyMemoryView_Check(o))
		return buffer_from_py(o);
	if (PyList_Check(o) || PyTuple_Check(o))
		return seq_from_py(o, at, depth);
	if (PyDict_Check(o))
		return map_from_py(o, at, depth);
	if ((np = numpy_ready(0)) != NULL) {
		if (PyObject_TypeCheck(o, (PyTypeObject *) np->ndarray))
			return ndarray_from_py(np, o, at);
		if (PyObject_TypeCheck(o, (PyTypeObject *) np->generic))
			return npscalar_from_py(np, o, at, depth);
	}
	return pickle_from_py(o, at);
}

gild_value *
pyvalue_from_py(PyObject *obj, int pickle)
{
	seg root = {NULL, SEG_VALUE, 0, NULL};
	int saved = pickling;
	gild_value *v;

	pickling = pickle;
	v = from_py(obj, &root, 1);
	pickling = saved;
	return v;
}

static int call_args(
    PyObject *args, PyObject *kwargs, gild_value **va, gild_value **vk);

int
pyvalue_call_args(PyObject *args, PyObject *kwargs, int pickle,
    gild_value **va, gild_value **vk)
{
	int saved = pickling, rc;

	pickling = pickle;
	rc = call_args(args, kwargs, va, vk);
	pickling = saved;
	return rc;
}

static int
call_args(PyObject *args, PyObject *kwargs, gild_value **va, gild_value **vk)
{
	PyObject *items = NULL, *kv = NULL;
	gild_value *l = NULL, *m = NULL, *key = NULL, *val = NULL;

	*va = *vk = NULL;
	if (args == Py_None) {
		/* no positional arguments */
	} else if (PyTuple_Check(args)) {
		Py_INCREF(args);
		items = args;
	} else if (PyList_Check(args)) {
		if ((items = PyList_AsTuple(args)) == NULL)
			return -1;
	} else {
		PyErr_Format(PyExc_TypeError,
		    "args must be a tuple or a list, not %s",
		    Py_TYPE(args)->tp_name);
		return -1;
	}
	if (kwargs != Py_None && !PyDict_Check(kwargs)) {
		PyErr_Format(PyExc_TypeError, "kwargs must be a dict, not %s",
		    Py_TYPE(kwargs)->tp_name);
		goto fail;
	}
	if (items != NULL) {
		if ((l = made(gild_list())) == NULL)
			goto fail;
		for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(items); i++) {
			seg s = {NULL, SEG_ARG, i, NULL};

			if ((val = from_py(
			         PyTuple_GET_ITEM(items, i), &s, 1)) == NULL)
				goto fail;
			if (gild_list_append(l, val) != GILD_OK) {
				PyErr_NoMemory();
				goto fail;
			}
			val = NULL;
		}
	}
	if (kwargs != Py_None && PyDict_GET_SIZE(kwargs) > 0) {
		if ((kv = PyDict_Items(kwargs)) == NULL ||
		    (m = made(gild_map())) == NULL)
			goto fail;
		for (Py_ssize_t i = 0; i < PyList_GET_SIZE(kv); i++) {
			PyObject *k =
			    PyTuple_GET_ITEM(PyList_GET_ITEM(kv, i), 0);
			PyObject *x =
			    PyTuple_GET_ITEM(PyList_GET_ITEM(kv, i), 1);
			seg s = {NULL, SEG_KWARG, i, k};

			if (!PyUnicode_Check(k)) {
				PyErr_Format(PyExc_TypeError,
				    "keyword argument names must be str, not "
				    "%s",
				    Py_TYPE(k)->tp_name);
				goto fail;
			}
			if ((key = str_from_py(k, &s)) == NULL ||
			    (val = from_py(x, &s, 1)) == NULL)
				goto fail;
			if (gild_map_set(m, key, val) != GILD_OK) {
				PyErr_NoMemory();
				goto fail;
			}
			key = val = NULL;
		}
	}
	Py_XDECREF(items);
	Py_XDECREF(kv);
	*va = l;
	*vk = m;
	return 0;
fail:
	Py_XDECREF(items);
	Py_XDECREF(kv);
	gild_value_free(l);
	gild_value_free(m);
	gild_value_free(key);
	gild_value_free(val);
	return -1;
}

/* -------------------------------------------------------- gild -> Python */

static PyObject *to_py(const gild_value *v, int as_key, int depth);

static PyObject *
bigint_to_py(const gild_value *v)
{
	size_t len = 0;
	const uint8_t *le = gild_value_bytes(v, &len);
	PyObject *bytes, *args, *out = NULL;

	bytes = PyBytes_FromStringAndSize((const char *) le, (Py_ssize_t) len);
	if (bytes == NULL)
		return NULL;
	if ((args = PyTuple_Pack(2, bytes, pv.little)) != NULL)
		out = PyObject_Call(pv.from_bytes, args, pv.signed_kw);
	Py_DECREF(bytes);
	Py_XDECREF(args);
	return out;
}

/* Items of a list or tuple; as a tuple when it is (or is in) a dict key. */
static PyObject *
seq_to_py(const gild_value *v, int tuple, int as_key, int depth)
{
	size_t n = gild_value_len(v);
	PyObject *seq =
	    tuple ? PyTuple_New((Py_ssize_t) n) : PyList_New((Py_ssize_t) n);

	for (size_t i = 0; seq != NULL && i < n; i++) {
		PyObject *item =
		    to_py(gild_value_item(v, i), as_key, depth + 1);

		if (item == NULL)
			Py_CLEAR(seq);
		else if (tuple)
			PyTuple_SET_ITEM(seq, (Py_ssize_t) i, item);
		else
			PyList_SET_ITEM(seq, (Py_ssize_t) i, item);
	}
	return seq;
}

static PyObject *
map_to_py(const gild_value *v, int depth)
{
	size_t n = gild_value_len(v);
	PyObject *dict = PyDict_New();
	PyObject *key = NULL, *val = NULL;

	if (dict == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if ((key = to_py(gild_map_key(v, i), 1, depth + 1)) == NULL ||
		    (val = to_py(gild_map_val(v, i), 0, depth + 1)) == NULL)
			goto fail;
		if (PyDict_SetItem(dict, key, val) == -1) {
			if (PyErr_ExceptionMatches(PyExc_TypeError)) {
				PyErr_Clear();
				PyErr_Format(PyExc_TypeError,
				    "received a map whose key %zu is a %s, "
				    "which cannot be a dict key (unhashable)",
				    i, Py_TYPE(key)->tp_name);
			}
			goto fail;
		}
		Py_CLEAR(key);
		Py_CLEAR(val);
	}
	return dict;
fail:
	Py_XDECREF(key);
	Py_XDECREF(val);
	Py_DECREF(dict);
	return NULL;
}

static PyObject *
shape_tuple(const uint64_t *shape, size_t ndim)
{
	PyObject *t = PyTuple_New((Py_ssize_t) ndim);

	for (size_t i = 0; t != NULL && i < ndim; i++) {
		PyObject *d = PyLong_FromUnsignedLongLong(shape[i]);

		if (d == NULL)
			Py_CLEAR(t);
		else
			PyTuple_SET_ITEM(t, (Py_ssize_t) i, d);
	}
	return t;
}

/* memcpy, with the GIL released when it is large. */
static void
copy_out(void *dst, const void *src, size_t len)
{
	if (len < BIG_COPY) {
		memcpy(dst, src, len);
		return;
	}
	Py_BEGIN_ALLOW_THREADS memcpy(dst, src, len);
	Py_END_ALLOW_THREADS
}

static PyObject *
tensor_numpy(const struct np_api *np, const struct dtype_info *dt,
    PyObject *shape, const void *data, size_t len)
{
	PyObject *arr = PyObject_CallFunction(np->empty, "Os", shape, dt->np);
	Py_buffer view;

	if (arr == NULL || len == 0)
		return arr;
	if (PyObject_GetBuffer(
	        arr, &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) == -1) {
		Py_DECREF(arr);
		return NULL;
	}
	if ((size_t) view.len != len) {
		PyErr_Format(PyExc_ValueError,
		    "numpy array of %zd bytes for %zu bytes of tensor data",
		    view.len, len);
		Py_CLEAR(arr);
	} else {
		copy_out(view.buf, data, len);
	}
	PyBuffer_Release(&view);
	return arr;
}

/* Without numpy: a memoryview over a private bytearray, cast to the dtype's
 * format and the shape; (dtype, shape, bytes) when memoryview cannot. */
static PyObject *
tensor_fallback(const struct dtype_info *dt, PyObject *shape,
    const uint64_t *dims, size_t ndim, const void *data, size_t len)
{
	PyObject *ba = NULL, *mv = NULL, *out = NULL;
	int has_zero = 0;

	for (size_t i = 0; i < ndim; i++)
		has_zero |= dims[i] == 0;
	if (dt->fmt == NULL || ndim > PyBUF_MAX_NDIM ||
	    (has_zero && ndim != 1)) {
		PyObject *bytes =
		    PyBytes_FromStringAndSize(NULL, (Py_ssize_t) len);

		if (bytes == NULL)
			return NULL;
		copy_out(PyBytes_AS_STRING(bytes), data, len);
		out = Py_BuildValue("(sON)", dt->name, shape, bytes);
		return out;
	}
	if ((ba = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t) len)) ==
	    NULL)
		return NULL;
	copy_out(PyByteArray_AS_STRING(ba), data, len);
	if ((mv = PyMemoryView_FromObject(ba)) != NULL)
		out = has_zero ? PyObject_CallMethod(mv, "cast", "s", dt->fmt)
		               : PyObject_CallMethod(
		                     mv, "cast", "sO", dt->fmt, shape);
	Py_DECREF(ba);
	Py_XDECREF(mv);
	return out;
}

static PyObject *
tensor_to_py(const gild_value *v)
{
	const struct dtype_info *dt = dtype_by_name(gild_tensor_dtype(v));
	size_t ndim = gild_tensor_ndim(v), len = 0;
	const uint64_t *dims = gild_tensor_shape(v);
	const void *data = gild_tensor_data(v, &len);
	const struct np_api *np;
	PyObject *shape, *out;

	if (dt == NULL)
		return PyErr_Format(PyExc_ValueError,
		    "received a tensor of unknown dtype '%s'",
		    gild_tensor_dtype(v) ? gild_tensor_dtype(v) : "");
	if ((shape = shape_tuple(dims, ndim)) == NULL)
		return NULL;
	if ((np = numpy_ready(1)) != NULL)
		out = tensor_numpy(np, dt, shape, data, len);
	else
		out = tensor_fallback(dt, shape, dims, ndim, data, len);
	Py_DECREF(shape);
	return out;
}

/* A GILD_PICKLE: unpickled when pickling, else a gild.Pickled. */
static PyObject *
pickle_to_py(const gild_value *v)
{
	size_t len = 0;
	const uint8_t *p = gild_value_bytes(v, &len);
	PyObject *b = PyBytes_FromStringAndSize((const char *) p,
	    (Py_ssize_t) len);
	PyObject *f = NULL, *out = NULL;

	if (b == NULL)
		return NULL;
	if (pickling) {
		PyObject *m = PyImport_ImportModule("pickle");
		if (m != NULL) {
			out = PyObject_CallMethod(m, "loads", "O", b);
			Py_DECREF(m);
		}
	} else if ((f = pickled_type(0)) != NULL) {
		out = PyObject_CallOneArg(f, b);
		Py_DECREF(f);
	}
	Py_DECREF(b);
	return out;
}

static PyObject *
to_py(const gild_value *v, int as_key, int depth)
{
	const char *s;
	size_t len;

	if (depth > PYVALUE_MAX_DEPTH + 1)
		return PyErr_Format(PyExc_ValueError,
		    "received a value nested deeper than %d levels",
		    PYVALUE_MAX_DEPTH);
	switch (gild_value_kind(v)) {
	case GILD_NULL:
		Py_RETURN_NONE;
	case GILD_BOOL:
		return PyBool_FromLong(gild_value_bool(v));
	case GILD_INT:
		return PyLong_FromLongLong(gild_value_int(v));
	case GILD_BIGINT:
		return bigint_to_py(v);
	case GILD_FLOAT:
		return PyFloat_FromDouble(gild_value_float(v));
	case GILD_STR:
		s = gild_value_str(v, &len);
		return PyUnicode_DecodeUTF8(
		    s != NULL ? s : "", (Py_ssize_t) len, "surrogateescape");
	case GILD_BYTES: {
		const uint8_t *p = gild_value_bytes(v, &len);
		PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t) len);

		if (b != NULL && len > 0)
			copy_out(PyBytes_AS_STRING(b), p, len);
		return b;
	}
	case GILD_LIST:
		return seq_to_py(v, as_key, as_key, depth);
	case GILD_TUPLE:
		return seq_to_py(v, 1, as_key, depth);
	case GILD_MAP:
		return map_to_py(v, depth);
	case GILD_TENSOR:
		return tensor_to_py(v);
	case GILD_PICKLE:
		return pickle_to_py(v);
	}
	return PyErr_Format(PyExc_ValueError,
	    "received a value of unknown kind %d", (int) gild_value_kind(v));
}

PyObject *
pyvalue_to_py(const gild_value *v, int pickle)
{
	int saved = pickling;
	PyObject *o;

	if (v == NULL)
		Py_RETURN_NONE;
	pickling = pickle;
	o = to_py(v, 0, 1);
	pickling = saved;
	return o;
}
