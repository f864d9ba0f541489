/* pyconv: setup, the numpy binding (made once, safe without the GIL),
 * pickling and the error texts both directions of the conversion share. */
#include "pyconv_int.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct pyconv_cache pyconv_cv;

/* Free-threaded CPython converts in several threads at once with no GIL:
 * numpy's binding is published whole, once, by compare-and-swap, and the
 * flags are atomic. */
static _Atomic(struct pyconv_np *) np_bound; /* NULL until numpy is bound */
static atomic_int np_failed; /* importing numpy failed: do not retry */
static atomic_int np_off;    /* pyconv_use_numpy(0) */

/* ------------------------------------------------------------------ setup */

int
pyconv_init(void)
{
	pyconv_cv.from_bytes =
	    PyObject_GetAttrString((PyObject *) &PyLong_Type, "from_bytes");
	pyconv_cv.signed_kw = Py_BuildValue("{s:O}", "signed", Py_True);
	pyconv_cv.little = PyUnicode_InternFromString("little");
	pyconv_cv.zero = PyLong_FromLong(0);
	pyconv_cv.numpy_name = PyUnicode_InternFromString("numpy");
	pyconv_cv.tensor_buffer = PyObject_CallFunction((PyObject *) &PyType_Type,
	    "s(O){}", "gild_tensor_buffer", (PyObject *) &PyByteArray_Type);
	if (pyconv_cv.from_bytes == NULL || pyconv_cv.signed_kw == NULL ||
	    pyconv_cv.little == NULL || pyconv_cv.zero == NULL ||
	    pyconv_cv.numpy_name == NULL || pyconv_cv.tensor_buffer == NULL) {
		pyconv_fini();
		return -1;
	}
	return 0;
}

static void
np_free(struct pyconv_np *np)
{
	if (np == NULL)
		return;
	Py_XDECREF(np->ndarray);
	Py_XDECREF(np->generic);
	Py_XDECREF(np->empty);
	Py_XDECREF(np->asarray);
	Py_XDECREF(np->ascontiguousarray);
	free(np);
}

void
pyconv_fini(void)
{
	Py_CLEAR(pyconv_cv.from_bytes);
	Py_CLEAR(pyconv_cv.signed_kw);
	Py_CLEAR(pyconv_cv.little);
	Py_CLEAR(pyconv_cv.zero);
	Py_CLEAR(pyconv_cv.numpy_name);
	Py_CLEAR(pyconv_cv.tensor_buffer);
	np_free(atomic_exchange(&np_bound, NULL));
	atomic_store(&np_failed, 0);
}

void
pyconv_use_numpy(int on)
{
	atomic_store(&np_off, !on);
}

/* Binds what the conversions use of the numpy module np (borrowed), unless
 * another thread did first. Returns the binding, or NULL (no exception
 * set) if numpy looks broken. */
static const struct pyconv_np *
numpy_bind(PyObject *np)
{
	struct pyconv_np *api = calloc(1, sizeof(*api)), *first = NULL;

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
		np_free(api);
		atomic_store(&np_failed, 1);
		return NULL;
	}
	if (!atomic_compare_exchange_strong(&np_bound, &first, api)) {
		np_free(api); /* another thread bound it: first */
		return first;
	}
	return api;
}

const struct pyconv_np *
pyconv_numpy(int do_import)
{
	const struct pyconv_np *api;
	PyObject *np;

	if (atomic_load(&np_off))
		return NULL;
	if ((api = atomic_load(&np_bound)) != NULL)
		return api;
	if (atomic_load(&np_failed))
		return NULL;
	np = do_import ? PyImport_Import(pyconv_cv.numpy_name)
		       : PyImport_GetModule(pyconv_cv.numpy_name);
	if (np == NULL) {
		/* Not installed or broken: either way tensors fall back. */
		PyErr_Clear();
		if (do_import)
			atomic_store(&np_failed, 1);
		return NULL;
	}
	api = numpy_bind(np);
	Py_DECREF(np);
	return api;
}

int
pyconv_numpy_available(void)
{
	return pyconv_numpy(1) != NULL;
}

/* --------------------------------------------------------------- pickling */

PyObject *
pyconv_pickled_type(int loaded_only)
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

PyObject *
pyconv_pickle_fn(const char *name)
{
	PyObject *m = PyImport_ImportModule("pickle"), *f;

	if (m == NULL)
		return NULL;
	f = PyObject_GetAttrString(m, name);
	Py_DECREF(m);
	return f;
}

/* ------------------------------------------------------------------ copies */

void
pyconv_copy(void *dst, const void *src, size_t len)
{
	if (len < PYCONV_BIG_COPY) {
		memcpy(dst, src, len);
		return;
	}
	Py_BEGIN_ALLOW_THREADS
	memcpy(dst, src, len);
	Py_END_ALLOW_THREADS
}

int
pyconv_pack(const Gild__V1__Value *v, uint8_t **buf, size_t *len)
{
	size_t n = gild__v1__value__get_packed_size(v);
	uint8_t *b = malloc(n ? n : 1);

	*buf = NULL;
	*len = 0;
	if (b == NULL) {
		PyErr_NoMemory();
		return -1;
	}
	if (n < PYCONV_BIG_COPY) {
		gild__v1__value__pack(v, b);
	} else {
		/* The tree points into pinned objects: nothing it reads goes
		 * away while another thread runs. */
		Py_BEGIN_ALLOW_THREADS
		gild__v1__value__pack(v, b);
		Py_END_ALLOW_THREADS
	}
	*buf = b;
	*len = n;
	return 0;
}

/* ------------------------------------------------------------------ errors */

PyObject *
pyconv_take_exception(void)
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

void *
pyconv_fail_pending(const char *what)
{
	PyObject *exc = pyconv_take_exception();

	if (exc == NULL)
		PyErr_Format(PyExc_ValueError, "%s: unknown error", what);
	else if (PyErr_GivenExceptionMatches(exc, PyExc_MemoryError))
		PyErr_SetObject((PyObject *) Py_TYPE(exc), exc);
	else
		PyErr_Format(PyExc_ValueError, "%s: %s: %S", what,
		    Py_TYPE(exc)->tp_name, exc);
	Py_XDECREF(exc);
	return NULL;
}

void
pyconv_prefix(const char *fmt, ...)
{
	PyObject *exc = pyconv_take_exception(), *msg = NULL, *pre = NULL;
	va_list ap;

	if (exc == NULL)
		return;
	if (PyErr_GivenExceptionMatches(exc, PyExc_MemoryError) ||
	    (msg = PyObject_Str(exc)) == NULL)
		goto keep;
	if (PyUnicode_GET_LENGTH(msg) > 1000) /* deep: enough context */
		goto keep;
	{
		PyObject *deep = PyUnicode_FromFormat(
		    GILD_VALUE_TOO_DEEP, GILD_VALUE_DEPTH_MAX);
		int same = deep != NULL && PyUnicode_Compare(msg, deep) == 0;

		Py_XDECREF(deep);
		if (same)
			goto keep;
	}
	va_start(ap, fmt);
	pre = PyUnicode_FromFormatV(fmt, ap);
	va_end(ap);
	if (pre == NULL)
		goto keep;
	PyErr_Format((PyObject *) Py_TYPE(exc), "%U%U", pre, msg);
	Py_DECREF(pre);
	Py_DECREF(msg);
	Py_DECREF(exc);
	return;
keep:
	PyErr_Clear();
	PyErr_SetObject((PyObject *) Py_TYPE(exc), exc);
	Py_XDECREF(msg);
	Py_DECREF(exc);
}

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
at_str(const pyconv_at *s)
{
	PyObject *r, *out;

	switch (s->kind) {
	case PYCONV_AT_VALUE:
		return PyUnicode_FromString("value");
	case PYCONV_AT_RESULT:
		return PyUnicode_FromString("result");
	case PYCONV_AT_ARG:
		return PyUnicode_FromFormat("argument %zd", s->index + 1);
	case PYCONV_AT_KWARG:
		return PyUnicode_FromFormat("keyword argument %R", s->key);
	case PYCONV_AT_INDEX:
		return PyUnicode_FromFormat("[%zd]", s->index);
	case PYCONV_AT_KEY:
		return PyUnicode_FromFormat(" key #%zd", s->index);
	case PYCONV_AT_ENTRY:
		if ((r = short_repr(s->key)) == NULL)
			return PyUnicode_FromFormat("[entry #%zd]", s->index);
		out = PyUnicode_FromFormat("[%U]", r);
		Py_DECREF(r);
		return out;
	}
	return PyUnicode_FromString("?");
}

/* The path to `at` as a new str ("argument 2[0]['x']"), the middle elided
 * when it is deep; NULL with an exception set. */
static PyObject *
path_str(const pyconv_at *at)
{
	enum { HEAD = 6, TAIL = 6 };
	const pyconv_at **chain;
	PyObject *out, *part, *joined;
	size_t n = 0, k = 0;

	for (const pyconv_at *s = at; s != NULL; s = s->up)
		n++;
	if ((chain = PyMem_Malloc((n ? n : 1) * sizeof(*chain))) == NULL)
		return PyErr_NoMemory();
	for (const pyconv_at *s = at; s != NULL; s = s->up)
		chain[n - ++k] = s;
	out = PyUnicode_FromString("");
	for (size_t i = 0; out != NULL && i < n; i++) {
		if (n > HEAD + TAIL + 1 && i == HEAD) {
			part = PyUnicode_FromString("...");
			i = n - TAIL - 1;
		} else {
			part = at_str(chain[i]);
		}
		joined = part != NULL ? PyUnicode_Concat(out, part) : NULL;
		Py_XDECREF(part);
		Py_DECREF(out);
		out = joined;
	}
	PyMem_Free(chain);
	return out;
}

void *
pyconv_fail_at(const pyconv_at *at, PyObject *type, const char *fmt, ...)
{
	PyObject *msg, *path = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = PyUnicode_FromFormatV(fmt, ap);
	va_end(ap);
	/* A result's caller names it ("cannot send the result of 'f': "):
	 * "result" is only said before a path inside it. */
	if (msg != NULL && at->up == NULL && at->kind == PYCONV_AT_RESULT)
		PyErr_SetObject(type, msg);
	else if (msg != NULL && (path = path_str(at)) != NULL)
		PyErr_Format(type, "%U: %U", path, msg);
	Py_XDECREF(msg);
	Py_XDECREF(path);
	return NULL;
}
