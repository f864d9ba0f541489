/* pyconv, received values: an encoded gild.v1.Value read from the wire
 * format straight into Python objects, each payload copied once (large
 * ones with the GIL released), bounded in depth as it goes. */
#include "dtype.h"
#include "fields.h"
#include "pyconv_int.h"
#include "wire.h"

#include <stdio.h>
#include <string.h>

/* One conversion's settings, passed down the recursion. */
typedef struct to_ctx {
	enum pyconv_pickle pickle;
} to_ctx;

static PyObject *to_py(const to_ctx *c, const uint8_t *v, size_t len,
    int depth, int as_key);

static void *
malformed(const char *what)
{
	PyErr_Format(PyExc_ValueError, "malformed value: %s", what);
	return NULL;
}

static void *
too_deep(void)
{
	PyErr_Format(PyExc_ValueError, GILD_VALUE_TOO_DEEP,
	    GILD_VALUE_DEPTH_MAX);
	return NULL;
}

/* Writes "[2, 3]" into buf (truncated with "...]" if long). */
static const char *
fmt_shape(char *buf, size_t cap, const uint64_t *shape, size_t n)
{
	size_t off = 0;

	off += snprintf(buf, cap, "[");
	for (size_t i = 0; i < n && off < cap; i++) {
		if (off + 24 >= cap) {
			snprintf(buf + off, cap - off, "...");
			off = cap;
			break;
		}
		off += snprintf(buf + off, cap - off, "%s%llu", i ? ", " : "",
		    (unsigned long long) shape[i]);
	}
	if (off < cap)
		snprintf(buf + off, cap - off, "]");
	else
		snprintf(buf + cap - 5, 5, "...]");
	return buf;
}

/* ---------------------------------------------------------------- scalars */

/* BigInt, a one-field message: its last bytes field 1 as an int. */
static PyObject *
bigint_to_py(const uint8_t *m, size_t len)
{
	const uint8_t *p = m, *end = m + len, *le = NULL;
	PyObject *bytes, *args = NULL, *out = NULL;
	size_t n = 0;
	wire_field f;
	int r;

	while ((r = wire_next(&p, end, &f)) == 1)
		if (f.number == GILD_F_BIG_INT_LE_TWOS_COMPLEMENT) {
			if (f.type != WIRE_LEN)
				return malformed("broken big int");
			le = f.data;
			n = f.len;
		}
	if (r == -1)
		return malformed("broken big int");
	bytes = PyBytes_FromStringAndSize(
	    n ? (const char *) le : NULL, (Py_ssize_t) n);
	if (bytes != NULL &&
	    (args = PyTuple_Pack(2, bytes, pyconv_cv.little)) != NULL)
		out = PyObject_Call(pyconv_cv.from_bytes, args,
		    pyconv_cv.signed_kw);
	Py_XDECREF(bytes);
	Py_XDECREF(args);
	return out != NULL ? out : pyconv_fail_pending("big int");
}

static PyObject *
str_to_py(const uint8_t *s, size_t len)
{
	PyObject *out, *exc;

	out = PyUnicode_DecodeUTF8(
	    len ? (const char *) s : "", (Py_ssize_t) len, "strict");
	if (out != NULL)
		return out;
	if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
		return pyconv_fail_pending("str value");
	exc = pyconv_take_exception();
	PyErr_Format(PyExc_ValueError, "str value is not valid UTF-8 (%S)",
	    exc != NULL ? exc : Py_None);
	Py_XDECREF(exc);
	return NULL;
}

/* bytes (or a pickle's bytes) copied once, with the GIL released when
 * large. */
static PyObject *
bytes_to_py(const uint8_t *p, size_t len)
{
	PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t) len);

	if (b == NULL)
		return pyconv_fail_pending("bytes");
	if (len > 0)
		pyconv_copy(PyBytes_AS_STRING(b), p, len);
	return b;
}

/* A pickle_value, as the pickle setting says (pyconv.h). */
static PyObject *
pickle_to_py(const to_ctx *c, const uint8_t *p, size_t len)
{
	PyObject *f, *arg, *o = NULL;

	if (c->pickle == PYCONV_PICKLE_REFUSE) {
		PyErr_SetString(PyExc_PermissionError,
		    "pickled values are refused: this server was not started "
		    "with --allow-pickle (unpickling runs arbitrary code)");
		return NULL;
	}
	if (c->pickle == PYCONV_PICKLE_WRAP) {
		if ((f = pyconv_pickled_type(0)) == NULL)
			return pyconv_fail_pending("pickled value");
		if ((arg = bytes_to_py(p, len)) != NULL)
			o = PyObject_CallOneArg(f, arg);
		Py_DECREF(f);
		Py_XDECREF(arg);
		return o != NULL ? o : pyconv_fail_pending("pickled value");
	}
	arg = PyMemoryView_FromMemory(
	    len ? (char *) p : (char *) "", (Py_ssize_t) len, PyBUF_READ);
	if (arg != NULL && (f = pyconv_pickle_fn("loads")) != NULL) {
		o = PyObject_CallOneArg(f, arg);
		Py_DECREF(f);
	}
	Py_XDECREF(arg);
	return o != NULL ? o : pyconv_fail_pending("cannot unpickle");
}

/* ------------------------------------------------------------- containers */

/* A List (l/len) as a new list, or a tuple with tuple set. Its items are
 * counted first (nothing is allocated for a broken one), then converted in
 * order; an item's failure stops it before later ones are read, and a long
 * list has only ever held the items converted so far. */
static PyObject *
seq_to_py(const to_ctx *c, const uint8_t *l, size_t len, int tuple,
    int depth, int as_key)
{
	const uint8_t *p = l, *end = l + len;
	wire_field f;
	size_t n = 0, i = 0;
	PyObject *seq;
	int r, grow;

	if (depth >= GILD_VALUE_DEPTH_MAX)
		return too_deep();
	while ((r = wire_next(&p, end, &f)) == 1) {
		if (f.number != GILD_F_LIST_ITEMS)
			continue;
		if (f.type != WIRE_LEN)
			return malformed("a list item is not a message");
		n++;
	}
	if (r == -1)
		return malformed("broken wire format in a list");
	grow = n > PYCONV_PREALLOC_MAX;
	seq = grow ? PyList_New(0)
	    : tuple ? PyTuple_New((Py_ssize_t) n)
		    : PyList_New((Py_ssize_t) n);
	if (seq == NULL)
		return pyconv_fail_pending("list");
	for (p = l; wire_next(&p, end, &f) == 1;) {
		PyObject *item;
		if (f.number != GILD_F_LIST_ITEMS)
			continue;
		item = to_py(c, f.data, f.len, depth + 1, as_key);
		if (item == NULL) {
			pyconv_prefix(
			    "%s index %zu: ", tuple ? "tuple" : "list", i);
			Py_DECREF(seq);
			return NULL;
		}
		if (grow) {
			int rc = PyList_Append(seq, item);
			Py_DECREF(item);
			if (rc == -1) {
				Py_DECREF(seq);
				return pyconv_fail_pending("list");
			}
		} else if (tuple) {
			PyTuple_SET_ITEM(seq, (Py_ssize_t) i, item);
		} else {
			PyList_SET_ITEM(seq, (Py_ssize_t) i, item);
		}
		i++;
	}
	if (grow && tuple)
		Py_SETREF(seq, PyList_AsTuple(seq));
	return seq != NULL ? seq : pyconv_fail_pending("tuple");
}

/* Converts every occurrence of a MapEntry's key or value (field) in e/len,
 * keeping the last in *out (a new reference). 0, or -1 with an exception. */
static int
entry_part(const to_ctx *c, const uint8_t *e, size_t len, uint32_t field,
    int depth, int as_key, PyObject **out)
{
	const uint8_t *p = e, *end = e + len;
	wire_field f;

	*out = NULL;
	while (wire_next(&p, end, &f) == 1) {
		PyObject *o;
		if (f.number != field)
			continue;
		if (f.type != WIRE_LEN) {
			Py_CLEAR(*out);
			malformed("a map key or value is not a message");
			return -1;
		}
		if ((o = to_py(c, f.data, f.len, depth, as_key)) == NULL) {
			Py_CLEAR(*out);
			return -1;
		}
		Py_XSETREF(*out, o);
	}
	if (*out == NULL) {
		PyErr_SetString(PyExc_ValueError, "value is missing");
		return -1;
	}
	return 0;
}

static PyObject *
map_to_py(const to_ctx *c, const uint8_t *m, size_t len, int depth)
{
	const uint8_t *p = m, *end = m + len;
	PyObject *dict, *key = NULL, *val = NULL;
	wire_field f;
	size_t i = 0;

	if (depth >= GILD_VALUE_DEPTH_MAX)
		return too_deep();
	if (wire_check(m, len) == -1)
		return malformed("broken wire format in a map");
	if ((dict = PyDict_New()) == NULL)
		return pyconv_fail_pending("map");
	for (; wire_next(&p, end, &f) == 1; i++) {
		if (f.number != GILD_F_MAP_ENTRIES) {
			i--;
			continue;
		}
		if (f.type != WIRE_LEN) {
			malformed("a map entry is not a message");
			goto fail;
		}
		if (wire_check(f.data, f.len) == -1) {
			malformed("broken wire format in a map entry");
			goto fail;
		}
		/* Keys are made hashable: lists inside them become tuples. */
		if (entry_part(c, f.data, f.len, GILD_F_MAP_ENTRY_KEY,
			depth + 1, 1, &key) == -1) {
			pyconv_prefix("map entry %zu key: ", i);
			goto fail;
		}
		if (entry_part(c, f.data, f.len, GILD_F_MAP_ENTRY_VALUE,
			depth + 1, 0, &val) == -1) {
			pyconv_prefix("map entry %zu value: ", i);
			goto fail;
		}
		if (PyDict_SetItem(dict, key, val) == -1) {
			if (PyErr_ExceptionMatches(PyExc_TypeError)) {
				PyErr_Clear();
				PyErr_Format(PyExc_TypeError,
				    "map entry %zu key: unhashable type '%s' "
				    "cannot be a dict key",
				    i, Py_TYPE(key)->tp_name);
			} else {
				pyconv_fail_pending("map");
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

/* ---------------------------------------------------------------- tensors */

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

static PyObject *
tensor_numpy(const struct pyconv_np *np, const struct dtype_info *dt,
    PyObject *shape, const uint8_t *data, size_t len)
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
		pyconv_copy(view.buf, data, len);
	}
	PyBuffer_Release(&view);
	return arr;
}

/* Without numpy: a memoryview over a private bytearray (of
 * pyconv_cv.tensor_buffer, so it goes back as a tensor), cast to the dtype's
 * format and the shape; (dtype, shape, bytes) where memoryview cannot
 * express it (float16, complex, more than PyBUF_MAX_NDIM dimensions, no
 * elements in several dimensions). */
static PyObject *
tensor_fallback(const struct dtype_info *dt, PyObject *shape,
    const wire_tensor *t, int has_zero)
{
	PyObject *ba, *mv = NULL, *out = NULL;

	if (dt->fmt == NULL || t->ndim > PyBUF_MAX_NDIM ||
	    (has_zero && t->ndim != 1)) {
		PyObject *bytes = bytes_to_py(t->data, t->len);

		return bytes != NULL
		    ? Py_BuildValue("(sON)", dt->name, shape, bytes)
		    : NULL;
	}
	ba = PyObject_CallFunction(pyconv_cv.tensor_buffer, "n",
	    (Py_ssize_t) t->len);
	if (ba == NULL)
		return NULL;
	if (t->len > 0)
		pyconv_copy(PyByteArray_AS_STRING(ba), t->data, t->len);
	if ((mv = PyMemoryView_FromObject(ba)) != NULL)
		out = has_zero ? PyObject_CallMethod(mv, "cast", "s", dt->fmt)
			       : PyObject_CallMethod(
				     mv, "cast", "sO", dt->fmt, shape);
	Py_DECREF(ba);
	Py_XDECREF(mv);
	return out;
}

/* A Tensor message (m/len) checked (dtype known, data the size of dtype x
 * shape) and converted. */
static PyObject *
tensor_to_py(const uint8_t *m, size_t len)
{
	const struct pyconv_np *np;
	const struct dtype_info *dt;
	PyObject *shape, *out;
	uint64_t elems = 1;
	int has_zero = 0, overflow = 0;
	char dtype[32] = "?", sbuf[160];
	wire_tensor t;
	int r = wire_tensor_scan(m, len, &t);

	if (r == -2)
		return PyErr_Format(PyExc_ValueError,
		    "tensor has more than %d dimensions", GILD_TENSOR_DIMS_MAX);
	if (r < 0)
		return malformed("broken tensor");
	/* Longer than any, or with a NUL inside: kept as "?", unknown. */
	if (t.dtype_len < sizeof(dtype) &&
	    (t.dtype_len == 0 || !memchr(t.dtype, 0, t.dtype_len))) {
		if (t.dtype_len > 0)
			memcpy(dtype, t.dtype, t.dtype_len);
		dtype[t.dtype_len] = '\0';
	}
	if ((dt = dtype_by_name(dtype)) == NULL)
		return PyErr_Format(PyExc_ValueError,
		    "tensor dtype '%s' is not supported (known: bool, int8, "
		    "int16, int32, int64, uint8, uint16, uint32, uint64, "
		    "float16, float32, float64, complex64, complex128)",
		    dtype);
	for (size_t i = 0; i < t.ndim; i++) {
		if (t.shape[i] == 0)
			has_zero = 1;
		else if (__builtin_mul_overflow(elems, t.shape[i], &elems))
			overflow = 1;
	}
	if (has_zero)
		elems = 0;
	else if (overflow || elems > SIZE_MAX / dt->itemsize)
		return PyErr_Format(PyExc_ValueError,
		    "tensor shape %s is too large",
		    fmt_shape(sbuf, sizeof(sbuf), t.shape, t.ndim));
	if (t.len != elems * dt->itemsize)
		return PyErr_Format(PyExc_ValueError,
		    "tensor data has %zu bytes, %s shape %s needs %llu", t.len,
		    dt->name, fmt_shape(sbuf, sizeof(sbuf), t.shape, t.ndim),
		    (unsigned long long) (elems * dt->itemsize));
	if ((shape = shape_tuple(t.shape, t.ndim)) == NULL)
		return pyconv_fail_pending("tensor");
	if ((np = pyconv_numpy(1)) != NULL)
		out = tensor_numpy(np, dt, shape, t.data, t.len);
	else
		out = tensor_fallback(dt, shape, &t, has_zero);
	Py_DECREF(shape);
	return out != NULL ? out : pyconv_fail_pending("tensor");
}

/* ------------------------------------------------------------------ Value */

/* One kind field f of a Value as a new reference. */
static PyObject *
kind_to_py(const to_ctx *c, const wire_field *f, int depth, int as_key)
{
	PyObject *o;
	double d;

	switch (f->number) {
	case GILD_F_VALUE_NULL:
		if (wire_check(f->data, f->len) == -1)
			return malformed("broken null value");
		Py_RETURN_NONE;
	case GILD_F_VALUE_BOOL:
		return PyBool_FromLong(f->value != 0);
	case GILD_F_VALUE_INT:
		/* sint64: zigzag */
		o = PyLong_FromLongLong(
		    (long long) ((f->value >> 1) ^ (~(f->value & 1) + 1)));
		return o != NULL ? o : pyconv_fail_pending("int");
	case GILD_F_VALUE_BIG_INT:
		return bigint_to_py(f->data, f->len);
	case GILD_F_VALUE_FLOAT:
		memcpy(&d, f->data, sizeof(d)); /* little-endian host */
		o = PyFloat_FromDouble(d);
		return o != NULL ? o : pyconv_fail_pending("float");
	case GILD_F_VALUE_STR:
		return str_to_py(f->data, f->len);
	case GILD_F_VALUE_BYTES:
		return bytes_to_py(f->data, f->len);
	case GILD_F_VALUE_LIST:
		return seq_to_py(c, f->data, f->len, as_key, depth, as_key);
	case GILD_F_VALUE_TUPLE:
		return seq_to_py(c, f->data, f->len, 1, depth, as_key);
	case GILD_F_VALUE_MAP:
		return map_to_py(c, f->data, f->len, depth);
	case GILD_F_VALUE_TENSOR:
		return tensor_to_py(f->data, f->len);
	case GILD_F_VALUE_PICKLE:
		return pickle_to_py(c, f->data, f->len);
	default:
		return malformed("unknown kind"); /* to_py passes kinds only */
	}
}

/* The Value encoded in v/len (at `depth` containers down) as a new
 * reference. Every kind field is converted in turn and the last is kept
 * (protobuf's last-one-wins for a oneof; an embedded message given twice
 * is not merged), so no byte of it goes unchecked. */
static PyObject *
to_py(const to_ctx *c, const uint8_t *v, size_t len, int depth, int as_key)
{
	const uint8_t *p = v, *end = v + len;
	PyObject *o = NULL;
	wire_field f;
	int r, t;

	while ((r = wire_next(&p, end, &f)) == 1) {
		PyObject *k;
		if ((t = wire_value_kind_type(f.number)) == -1)
			continue;
		if ((int) f.type != t) {
			Py_XDECREF(o);
			return malformed("a value's field has the wrong type");
		}
		if ((k = kind_to_py(c, &f, depth, as_key)) == NULL) {
			Py_XDECREF(o);
			return NULL;
		}
		Py_XSETREF(o, k);
	}
	if (r == -1) {
		Py_XDECREF(o);
		return malformed("broken wire format");
	}
	if (o == NULL)
		PyErr_SetString(PyExc_ValueError,
		    "value has no kind set (an unset Value is not null)");
	return o;
}

PyObject *
pyconv_wire_to_py(const uint8_t *v, size_t len, enum pyconv_pickle pickle)
{
	to_ctx c = {pickle};

	return to_py(&c, v != NULL ? v : (const uint8_t *) "", len, 0, 0);
}
