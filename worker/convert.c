/* convert: gild.v1.Value <-> Python objects. Values going to Python are
 * copied into Python objects; Values built from Python results point into
 * the Python objects (pinned) instead of copying payloads a second time. */
#include "convert.h"
#include "dtype.h"
#include "fields.h"
#include "wire.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tensor and memoryview conversion assume a little-endian host"
#endif


/* Written once by convert_init (and the numpy probe) while the GIL is held
 * and only read afterwards. In a free-threaded build the lazy numpy probe
 * must run before worker threads start (convert_numpy_available). */
static struct {
	PyObject *from_bytes; /* int.from_bytes, bound */
	PyObject *signed_kw;  /* {"signed": True} */
	PyObject *little;     /* "little" */
	PyObject *zero;       /* 0 */
	int pickle;           /* convert_set_pickle(1): --allow-pickle */
	PyObject *loads;      /* pickle.loads, with pickle on */
	PyObject *dumps;      /* pickle.dumps, with pickle on */
	int numpy;            /* 0 not probed yet, 1 available, -1 not */
	int numpy_off;        /* convert_set_numpy(0) */
	PyObject *np_ndarray;
	PyObject *np_generic;
	PyObject *np_empty;
	PyObject *np_asarray;
	PyObject *np_ascontiguousarray;
} cv;

static Gild__V1__Null null_msg = GILD__V1__NULL__INIT;

/* ------------------------------------------------------------------ setup */

int
convert_init(void)
{
	cv.from_bytes =
	    PyObject_GetAttrString((PyObject *) &PyLong_Type, "from_bytes");
	cv.signed_kw = Py_BuildValue("{s:O}", "signed", Py_True);
	cv.little = PyUnicode_FromString("little");
	cv.zero = PyLong_FromLong(0);
	if (cv.from_bytes == NULL || cv.signed_kw == NULL ||
	    cv.little == NULL || cv.zero == NULL) {
		convert_fini();
		return -1;
	}
	if (cv.pickle) {
		PyObject *m = PyImport_ImportModule("pickle");
		if (m != NULL) {
			cv.loads = PyObject_GetAttrString(m, "loads");
			cv.dumps = PyObject_GetAttrString(m, "dumps");
			Py_DECREF(m);
		}
		if (cv.loads == NULL || cv.dumps == NULL) {
			convert_fini();
			return -1;
		}
	}
	return 0;
}

void
convert_set_pickle(int on)
{
	cv.pickle = on;
}

static void
numpy_drop(void)
{
	Py_CLEAR(cv.np_ndarray);
	Py_CLEAR(cv.np_generic);
	Py_CLEAR(cv.np_empty);
	Py_CLEAR(cv.np_asarray);
	Py_CLEAR(cv.np_ascontiguousarray);
	cv.numpy = 0;
}

void
convert_fini(void)
{
	Py_CLEAR(cv.from_bytes);
	Py_CLEAR(cv.signed_kw);
	Py_CLEAR(cv.little);
	Py_CLEAR(cv.zero);
	Py_CLEAR(cv.loads);
	Py_CLEAR(cv.dumps);
	numpy_drop();
}

void
convert_set_numpy(int on)
{
	cv.numpy_off = !on;
}

int
convert_numpy_available(void)
{
	PyObject *np = NULL;

	if (cv.numpy_off)
		return 0;
	if (cv.numpy != 0)
		return cv.numpy == 1;
	cv.numpy = -1;
	np = PyImport_ImportModule("numpy");
	if (np == NULL)
		goto fail;
	cv.np_ndarray = PyObject_GetAttrString(np, "ndarray");
	cv.np_generic = PyObject_GetAttrString(np, "generic");
	cv.np_empty = PyObject_GetAttrString(np, "empty");
	cv.np_asarray = PyObject_GetAttrString(np, "asarray");
	cv.np_ascontiguousarray =
	    PyObject_GetAttrString(np, "ascontiguousarray");
	if (cv.np_ndarray == NULL || cv.np_generic == NULL ||
	    cv.np_empty == NULL || cv.np_asarray == NULL ||
	    cv.np_ascontiguousarray == NULL)
		goto fail;
	Py_DECREF(np);
	cv.numpy = 1;
	return 1;
fail:
	/* Not installed or broken: either way tensors fall back to memoryview.
	 */
	PyErr_Clear();
	Py_XDECREF(np);
	numpy_drop();
	cv.numpy = -1;
	return 0;
}

/* Returns 1 if obj could be a numpy object and numpy is usable: numpy is
 * only imported here if the app has imported it already. */
static int
numpy_loaded(void)
{
	PyObject *name = NULL;
	PyObject *mod = NULL;

	if (cv.numpy_off)
		return 0;
	if (cv.numpy != 0)
		return cv.numpy == 1;
	name = PyUnicode_FromString("numpy");
	if (name != NULL)
		mod = PyImport_GetModule(name);
	PyErr_Clear();
	Py_XDECREF(name);
	if (mod == NULL)
		return 0;
	Py_DECREF(mod);
	return convert_numpy_available();
}

/* ---------------------------------------------------------------- helpers */

/* Maps a struct-module buffer format (native or little-endian) to a dtype. */
static const struct dtype_info *
dtype_by_format(const char *f, size_t itemsize)
{
	char kind;

	if (f == NULL)
		f = "B";
	if (*f == '@' || *f == '=' || *f == '<')
		f++;
	if (strcmp(f, "Zf") == 0 || strcmp(f, "Zd") == 0)
		return dtype_by_kind('c', itemsize);
	if (strlen(f) != 1)
		return NULL;
	switch (*f) {
	case '?':
		kind = 'b';
		break;
	case 'b':
	case 'h':
	case 'i':
	case 'l':
	case 'q':
	case 'n':
		kind = 'i';
		break;
	case 'B':
	case 'H':
	case 'I':
	case 'L':
	case 'Q':
	case 'N':
	case 'c':
		kind = 'u';
		break;
	case 'e':
	case 'f':
	case 'd':
		kind = 'f';
		break;
	default:
		return NULL;
	}
	return dtype_by_kind(kind, itemsize);
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

#define TOO_DEEP "values nested deeper than"

static void *
too_deep(werr *err, Gild__V1__Code code, const char *pytype)
{
	werr_set(err, code, pytype, TOO_DEEP " %d levels",
	    CONVERT_MAX_DEPTH);
	return NULL;
}

/* Turns the pending Python exception into *err with code and a context
 * prefix, dropping the traceback (the cause is the value, not the code). */
static void *
fail_py(werr *err, Gild__V1__Code code, const char *what)
{
	werr_from_python(err, code);
	free(err->traceback);
	err->traceback = NULL;
	if (err->python_type != NULL && err->message != NULL &&
	    code != GILD__V1__CODE__PYTHON_ERROR)
		werr_prefix(err, "%s: ", err->python_type);
	werr_prefix(err, "%s: ", what);
	if (code != GILD__V1__CODE__PYTHON_ERROR) {
		free(err->python_type);
		err->python_type = NULL;
	}
	return NULL;
}

/* ------------------------------------------------------- Value -> Python */

static PyObject *to_py(
    const uint8_t *v, size_t len, int depth, int as_key, werr *err);

static PyObject *
bigint_to_py(const Gild__V1__BigInt *b, werr *err)
{
	PyObject *bytes = NULL;
	PyObject *args = NULL;
	PyObject *out = NULL;
	size_t len = b != NULL ? b->le_twos_complement.len : 0;

	bytes = PyBytes_FromStringAndSize(
	    len ? (const char *) b->le_twos_complement.data : NULL,
	    (Py_ssize_t) len);
	if (bytes == NULL)
		goto fail;
	args = PyTuple_Pack(2, bytes, cv.little);
	if (args == NULL)
		goto fail;
	out = PyObject_Call(cv.from_bytes, args, cv.signed_kw);
fail:
	if (out == NULL)
		fail_py(err, GILD__V1__CODE__INVALID_ARGUMENT, "big int");
	Py_XDECREF(bytes);
	Py_XDECREF(args);
	return out;
}

static PyObject *
str_to_py(const ProtobufCBinaryData *s, werr *err)
{
	PyObject *out;

	out = PyUnicode_DecodeUTF8(s->len ? (const char *) s->data : "",
	    (Py_ssize_t) s->len, "strict");
	if (out == NULL) {
		if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
			werr_from_python(err, GILD__V1__CODE__INVALID_ARGUMENT);
			werr_prefix(err, "str value is not valid UTF-8 (");
			char *m = NULL;
			if (asprintf(&m, "%s)", err->message) != -1) {
				free(err->message);
				err->message = m;
			}
			free(err->traceback);
			free(err->python_type);
			err->traceback = err->python_type = NULL;
			return NULL;
		}
		return fail_py(
		    err, GILD__V1__CODE__INVALID_ARGUMENT, "str value");
	}
	return out;
}

/* Prefixes *err with where in a container it happened, except for the
 * depth error: it is raised 100 levels down, and a hundred "list index 0: "
 * say nothing the limit does not. */
static void
prefix_unless_deep(werr *err, const char *fmt, const char *what, size_t i)
{
	if (err->message != NULL &&
	    strncmp(err->message, TOO_DEEP, sizeof(TOO_DEEP) - 1) == 0)
		return;
	werr_prefix(err, fmt, what, i);
}

static void *
malformed(werr *err, const char *what)
{
	werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
	    "malformed value: %s", what);
	return NULL;
}

/* A List (l/len) as a new list, or a tuple with tuple set. Its items are
 * counted first (nothing is allocated for a broken one), then converted in
 * order; an item's failure stops it before later ones are read, and a long
 * list has only ever held the items converted so far. */
static PyObject *
seq_to_py(const uint8_t *l, size_t len, int tuple, int depth, int as_key,
    werr *err)
{
	const uint8_t *p = l, *end = l + len;
	wire_field f;
	size_t n = 0, i = 0;
	PyObject *seq;
	int r, grow;

	if (depth >= CONVERT_MAX_DEPTH)
		return too_deep(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL);
	while ((r = wire_next(&p, end, &f)) == 1) {
		if (f.number != GILD_F_LIST_ITEMS)
			continue;
		if (f.type != WIRE_LEN)
			return malformed(err, "a list item is not a message");
		n++;
	}
	if (r == -1)
		return malformed(err, "broken wire format in a list");
	grow = n > CONVERT_PREALLOC_MAX;
	seq = grow	  ? PyList_New(0)
	      : tuple ? PyTuple_New((Py_ssize_t) n)
		      : PyList_New((Py_ssize_t) n);
	if (seq == NULL)
		return fail_py(err, GILD__V1__CODE__INVALID_ARGUMENT, "list");
	for (p = l; wire_next(&p, end, &f) == 1;) {
		PyObject *item;
		if (f.number != GILD_F_LIST_ITEMS)
			continue;
		item = to_py(f.data, f.len, depth + 1, as_key, err);
		if (item == NULL) {
			prefix_unless_deep(
			    err, "%s index %zu: ", tuple ? "tuple" : "list", i);
			Py_DECREF(seq);
			return NULL;
		}
		if (grow) {
			int rc = PyList_Append(seq, item);
			Py_DECREF(item);
			if (rc == -1) {
				Py_DECREF(seq);
				return fail_py(err,
				    GILD__V1__CODE__INVALID_ARGUMENT, "list");
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
	if (seq == NULL)
		return fail_py(err, GILD__V1__CODE__INVALID_ARGUMENT, "tuple");
	return seq;
}

/* Converts every occurrence of a MapEntry's key (field 1) or value (field
 * 2) in e/len, keeping the last in *out (a new reference). */
static int
entry_part(const uint8_t *e, size_t len, uint32_t field, int depth,
    int as_key, PyObject **out, werr *err)
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
			malformed(err, "a map key or value is not a message");
			return -1;
		}
		if ((o = to_py(f.data, f.len, depth, as_key, err)) == NULL) {
			Py_CLEAR(*out);
			return -1;
		}
		Py_XSETREF(*out, o);
	}
	if (*out == NULL) {
		werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "value is missing");
		return -1;
	}
	return 0;
}

static PyObject *
map_to_py(const uint8_t *m, size_t len, int depth, werr *err)
{
	const uint8_t *p = m, *end = m + len;
	wire_field f;
	PyObject *dict;
	PyObject *key = NULL;
	PyObject *val = NULL;
	size_t i = 0;
	int r;

	if (depth >= CONVERT_MAX_DEPTH)
		return too_deep(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL);
	if (wire_check(m, len) == -1)
		return malformed(err, "broken wire format in a map");
	dict = PyDict_New();
	if (dict == NULL)
		return fail_py(err, GILD__V1__CODE__INVALID_ARGUMENT, "map");
	for (; (r = wire_next(&p, end, &f)) == 1; i++) {
		if (f.number != GILD_F_MAP_ENTRIES) {
			i--;
			continue;
		}
		if (f.type != WIRE_LEN) {
			malformed(err, "a map entry is not a message");
			goto fail;
		}
		if (wire_check(f.data, f.len) == -1) {
			malformed(err, "broken wire format in a map entry");
			goto fail;
		}
		/* Keys are made hashable: lists inside them become tuples. */
		if (entry_part(f.data, f.len, GILD_F_MAP_ENTRY_KEY, depth + 1, 1,
			&key, err) == -1) {
			prefix_unless_deep(err, "map entry %s%zu key: ", "", i);
			goto fail;
		}
		if (entry_part(f.data, f.len, GILD_F_MAP_ENTRY_VALUE, depth + 1,
			0, &val, err) == -1) {
			prefix_unless_deep(err, "map entry %s%zu value: ", "", i);
			goto fail;
		}
		if (PyDict_SetItem(dict, key, val) == -1) {
			if (PyErr_ExceptionMatches(PyExc_TypeError)) {
				char *tn = werr_type_name(Py_TYPE(key));
				PyErr_Clear();
				werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT,
				    NULL,
				    "map entry %zu key: unhashable type '%s'"
				    " cannot be a dict key",
				    i, tn != NULL ? tn : "?");
				free(tn);
			} else {
				fail_py(err, GILD__V1__CODE__INVALID_ARGUMENT,
				    "map");
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

/* t's shape as a new tuple of ints, or NULL with a Python error set. */
static PyObject *
shape_tuple(const Gild__V1__Tensor *t)
{
	PyObject *shape = PyTuple_New((Py_ssize_t) t->n_shape);

	for (size_t i = 0; shape != NULL && i < t->n_shape; i++) {
		PyObject *d = PyLong_FromUnsignedLongLong(t->shape[i]);
		if (d == NULL)
			Py_CLEAR(shape);
		else
			PyTuple_SET_ITEM(shape, (Py_ssize_t) i, d);
	}
	return shape;
}

static PyObject *
tensor_numpy(const Gild__V1__Tensor *t, const struct dtype_info *dt, werr *err)
{
	PyObject *shape = NULL;
	PyObject *arr = NULL;
	Py_buffer view;

	if ((shape = shape_tuple(t)) == NULL)
		goto fail;
	arr = PyObject_CallFunction(cv.np_empty, "Os", shape, dt->np);
	if (arr == NULL)
		goto fail;
	if (t->data.len > 0) {
		if (PyObject_GetBuffer(
		        arr, &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) == -1)
			goto fail;
		if ((size_t) view.len != t->data.len) {
			PyBuffer_Release(&view);
			werr_set(err, GILD__V1__CODE__INTERNAL, NULL,
			    "numpy array of %zd bytes for %zu bytes of data",
			    view.len, t->data.len);
			goto fail_err;
		}
		memcpy(view.buf, t->data.data, t->data.len);
		PyBuffer_Release(&view);
	}
	Py_DECREF(shape);
	return arr;
fail:
	fail_py(err, GILD__V1__CODE__INVALID_ARGUMENT, "tensor");
fail_err:
	Py_XDECREF(shape);
	Py_XDECREF(arr);
	return NULL;
}

/* Without numpy: a writable memoryview over a private copy, cast to the
 * struct format and shape. */
static PyObject *
tensor_memoryview(const Gild__V1__Tensor *t, const struct dtype_info *dt,
    int has_zero, werr *err)
{
	PyObject *ba = NULL;
	PyObject *mv = NULL;
	PyObject *shape = NULL;
	PyObject *out = NULL;

	if (dt->fmt == NULL) {
		werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "%s tensors need numpy, which the worker cannot import "
		    "(a memoryview cannot hold %s)",
		    dt->name, dt->name);
		return NULL;
	}
	if (t->n_shape > PyBUF_MAX_NDIM || (has_zero && t->n_shape != 1)) {
		werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "a tensor with %zu dimensions%s needs numpy, which the "
		    "worker cannot import",
		    t->n_shape, has_zero ? " and no elements" : "");
		return NULL;
	}
	ba = PyByteArray_FromStringAndSize(
	    t->data.len ? (const char *) t->data.data : NULL,
	    (Py_ssize_t) t->data.len);
	if (ba == NULL)
		goto fail;
	mv = PyMemoryView_FromObject(ba);
	if (mv == NULL)
		goto fail;
	if (has_zero) {
		out = PyObject_CallMethod(mv, "cast", "s", dt->fmt);
		goto done;
	}
	if ((shape = shape_tuple(t)) == NULL)
		goto fail;
	out = PyObject_CallMethod(mv, "cast", "sO", dt->fmt, shape);
done:
fail:
	if (out == NULL)
		fail_py(err, GILD__V1__CODE__INVALID_ARGUMENT, "tensor");
	Py_XDECREF(ba);
	Py_XDECREF(mv);
	Py_XDECREF(shape);
	return out;
}

static PyObject *
tensor_to_py(const Gild__V1__Tensor *t, werr *err)
{
	const struct dtype_info *dt;
	uint64_t elems = 1;
	int has_zero = 0;
	int overflow = 0;
	char sbuf[160];

	if (t == NULL) {
		werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "tensor is missing");
		return NULL;
	}
	dt = dtype_by_name(t->dtype != NULL ? t->dtype : "");
	if (dt == NULL) {
		werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "tensor dtype '%s' is not supported (known: bool, int8, "
		    "int16, int32, int64, uint8, uint16, uint32, uint64, "
		    "float16, float32, float64, complex64, complex128)",
		    t->dtype != NULL ? t->dtype : "");
		return NULL;
	}
	for (size_t i = 0; i < t->n_shape; i++) {
		if (t->shape[i] == 0)
			has_zero = 1;
		else if (__builtin_mul_overflow(elems, t->shape[i], &elems))
			overflow = 1;
	}
	if (has_zero)
		elems = 0;
	else if (overflow || elems > SIZE_MAX / dt->itemsize) {
		werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "tensor shape %s is too large",
		    fmt_shape(sbuf, sizeof(sbuf), t->shape, t->n_shape));
		return NULL;
	}
	if (t->data.len != elems * dt->itemsize) {
		werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "tensor data has %zu bytes, %s shape %s needs %llu",
		    t->data.len, dt->name,
		    fmt_shape(sbuf, sizeof(sbuf), t->shape, t->n_shape),
		    (unsigned long long) (elems * dt->itemsize));
		return NULL;
	}
	if (convert_numpy_available())
		return tensor_numpy(t, dt, err);
	return tensor_memoryview(t, dt, has_zero, err);
}

/* A pickle_value: unpickled only with --allow-pickle. Without it, the
 * bytes are never looked at: PERMISSION_DENIED. */
static PyObject *
pickle_to_py(const ProtobufCBinaryData *b, werr *err)
{
	PyObject *view, *o;

	if (cv.loads == NULL) {
		werr_set(err, GILD__V1__CODE__PERMISSION_DENIED, NULL,
		    "pickled values are refused: this server was not started "
		    "with --allow-pickle (unpickling runs arbitrary code)");
		return NULL;
	}
	view = PyMemoryView_FromMemory(
	    b->len ? (char *) b->data : (char *) "", (Py_ssize_t) b->len,
	    PyBUF_READ);
	if (view == NULL)
		return fail_py(err, GILD__V1__CODE__INVALID_ARGUMENT,
		    "cannot unpickle");
	o = PyObject_CallOneArg(cv.loads, view);
	Py_DECREF(view);
	return o != NULL ? o
			 : fail_py(err, GILD__V1__CODE__INVALID_ARGUMENT,
			       "cannot unpickle");
}

/* The most dimensions a tensor may have (numpy's own limit is 64). */
#define TENSOR_MAX_DIMS 64

/* A Tensor message (t/len) as a numpy array (or memoryview): its fields
 * are gathered into a Gild__V1__Tensor whose data points into t. */
static PyObject *
tensor_wire_to_py(const uint8_t *t, size_t len, werr *err)
{
	const uint8_t *p = t, *end = t + len;
	Gild__V1__Tensor tn = GILD__V1__TENSOR__INIT;
	uint64_t shape[TENSOR_MAX_DIMS];
	char dtype[32] = "";
	wire_field f;
	int r;

	while ((r = wire_next(&p, end, &f)) == 1) {
		if (f.number == GILD_F_TENSOR_DTYPE && f.type == WIRE_LEN) {
			/* Longer than any dtype's name: kept as "?". */
			size_t n = f.len < sizeof(dtype) ? f.len : 1;
			memcpy(dtype, f.len < sizeof(dtype) ? f.data
							     : (const uint8_t *) "?",
			    n);
			dtype[n] = '\0';
		} else if (f.number == GILD_F_TENSOR_DATA &&
			   f.type == WIRE_LEN) {
			tn.data.data = (uint8_t *) f.data;
			tn.data.len = f.len;
		} else if (f.number == GILD_F_TENSOR_SHAPE &&
			   (f.type == WIRE_LEN || f.type == WIRE_VARINT)) {
			const uint8_t *q = f.data;
			const uint8_t *qe = q != NULL ? q + f.len : NULL;
			uint64_t d = f.value;
			/* Packed (the usual) or one varint per field. */
			while (f.type == WIRE_VARINT ||
			       (q < qe && wire_get_varint(&q, qe, &d) == 0)) {
				if (tn.n_shape == TENSOR_MAX_DIMS) {
					werr_set(err,
					    GILD__V1__CODE__INVALID_ARGUMENT,
					    NULL,
					    "tensor has more than %d dimensions",
					    TENSOR_MAX_DIMS);
					return NULL;
				}
				shape[tn.n_shape++] = d;
				if (f.type == WIRE_VARINT)
					break;
			}
			if (f.type == WIRE_LEN && q != qe)
				return malformed(err, "broken tensor shape");
		} else if (f.number <= GILD_F_TENSOR_DATA) {
			return malformed(err, "a tensor field has the wrong type");
		}
	}
	if (r == -1)
		return malformed(err, "broken wire format in a tensor");
	tn.dtype = dtype;
	tn.shape = shape;
	return tensor_to_py(&tn, err);
}

/* BigInt, a one-field message: fills *b with the last bytes field 1 in
 * m/len. Returns 0 or -1 (broken wire format, or field 1 not bytes). */
static int
last_bytes(const uint8_t *m, size_t len, ProtobufCBinaryData *b)
{
	const uint8_t *p = m, *end = m + len;
	wire_field f;
	int r;

	b->data = NULL;
	b->len = 0;
	while ((r = wire_next(&p, end, &f)) == 1)
		if (f.number == 1) {
			if (f.type != WIRE_LEN)
				return -1;
			b->data = (uint8_t *) f.data;
			b->len = f.len;
		}
	return r;
}

/* One kind field f of a Value as a new reference, or NULL with *err. */
static PyObject *
kind_to_py(const wire_field *f, int depth, int as_key, werr *err)
{
	ProtobufCBinaryData b = {f->len, (uint8_t *) f->data};
	Gild__V1__BigInt big = GILD__V1__BIG_INT__INIT;
	PyObject *o;
	double d;

	switch (f->number) {
	case GILD_F_VALUE_NULL:
		if (wire_check(f->data, f->len) == -1)
			return malformed(err, "broken null value");
		Py_RETURN_NONE;
	case GILD_F_VALUE_BOOL:
		return PyBool_FromLong(f->value != 0);
	case GILD_F_VALUE_INT:
		/* sint64: zigzag */
		o = PyLong_FromLongLong(
		    (long long) ((f->value >> 1) ^ (~(f->value & 1) + 1)));
		return o != NULL ? o
		                 : fail_py(err,
		                       GILD__V1__CODE__INVALID_ARGUMENT, "int");
	case GILD_F_VALUE_BIG_INT:
		if (last_bytes(f->data, f->len, &big.le_twos_complement) == -1)
			return malformed(err, "broken big int");
		return bigint_to_py(&big, err);
	case GILD_F_VALUE_FLOAT:
		memcpy(&d, f->data, sizeof(d)); /* little-endian host */
		o = PyFloat_FromDouble(d);
		return o != NULL
		           ? o
		           : fail_py(err, GILD__V1__CODE__INVALID_ARGUMENT,
		                 "float");
	case GILD_F_VALUE_STR:
		return str_to_py(&b, err);
	case GILD_F_VALUE_BYTES:
		o = PyBytes_FromStringAndSize(
		    f->len ? (const char *) f->data : NULL, (Py_ssize_t) f->len);
		return o != NULL
		           ? o
		           : fail_py(err, GILD__V1__CODE__INVALID_ARGUMENT,
		                 "bytes");
	case GILD_F_VALUE_LIST:
		return seq_to_py(f->data, f->len, as_key, depth, as_key, err);
	case GILD_F_VALUE_TUPLE:
		return seq_to_py(f->data, f->len, 1, depth, as_key, err);
	case GILD_F_VALUE_MAP:
		return map_to_py(f->data, f->len, depth, err);
	case GILD_F_VALUE_TENSOR:
		return tensor_wire_to_py(f->data, f->len, err);
	case GILD_F_VALUE_PICKLE:
		return pickle_to_py(&b, err);
	default:
		return NULL; /* not reached: to_py passes kinds only */
	}
}

/* The wire type each kind field of Value must have, by field number. */
static int
kind_wire_type(uint32_t number)
{
	switch (number) {
	case GILD_F_VALUE_BOOL:
	case GILD_F_VALUE_INT:
		return WIRE_VARINT;
	case GILD_F_VALUE_FLOAT:
		return WIRE_I64;
	case GILD_F_VALUE_NULL:
	case GILD_F_VALUE_BIG_INT:
	case GILD_F_VALUE_STR:
	case GILD_F_VALUE_BYTES:
	case GILD_F_VALUE_LIST:
	case GILD_F_VALUE_TUPLE:
	case GILD_F_VALUE_MAP:
	case GILD_F_VALUE_TENSOR:
	case GILD_F_VALUE_PICKLE:
		return WIRE_LEN;
	default:
		return -1; /* not a kind: an unknown field, skipped */
	}
}

/* The Value encoded in v/len (at `depth` containers down) as a new
 * reference. Every kind field is converted in turn and the last is kept
 * (protobuf's last-one-wins for a oneof; an embedded message given twice
 * is not merged), so no byte of it goes unchecked. */
static PyObject *
to_py(const uint8_t *v, size_t len, int depth, int as_key, werr *err)
{
	const uint8_t *p = v, *end = v + len;
	PyObject *o = NULL;
	wire_field f;
	int r, t;

	while ((r = wire_next(&p, end, &f)) == 1) {
		PyObject *k;
		if ((t = kind_wire_type(f.number)) == -1)
			continue;
		if ((int) f.type != t) {
			Py_XDECREF(o);
			return malformed(err, "a value's field has the wrong type");
		}
		if ((k = kind_to_py(&f, depth, as_key, err)) == NULL) {
			Py_XDECREF(o);
			return NULL;
		}
		Py_XSETREF(o, k);
	}
	if (r == -1) {
		Py_XDECREF(o);
		return malformed(err, "broken wire format");
	}
	if (o == NULL)
		werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "value has no kind set (an unset Value is not null)");
	return o;
}

PyObject *
convert_wire_to_py(const uint8_t *v, size_t len, werr *err)
{
	return to_py(v, len, 0, 0, err);
}

PyObject *
convert_to_py(const Gild__V1__Value *v, werr *err)
{
	uint8_t *buf;
	size_t len;
	PyObject *o;

	if (v == NULL) {
		werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "value is missing");
		return NULL;
	}
	len = gild__v1__value__get_packed_size(v);
	if ((buf = malloc(len ? len : 1)) == NULL) {
		werr_set(err, GILD__V1__CODE__INTERNAL, NULL, "out of memory");
		return NULL;
	}
	gild__v1__value__pack(v, buf);
	o = to_py(buf, len, 0, 0, err);
	free(buf);
	return o;
}

/* ------------------------------------------------------- Python -> Value */

struct pin {
	PyObject *obj;  /* a held reference, or NULL when view is used */
	Py_buffer view; /* a held buffer export when obj is NULL */
};

struct convert_pins {
	size_t n;
	size_t cap;
	struct pin *a;
};

static struct pin *
pin_slot(convert_pins *p)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct pin *a = realloc(p->a, cap * sizeof(*a));
		if (a == NULL)
			return NULL;
		p->a = a;
		p->cap = cap;
	}
	memset(&p->a[p->n], 0, sizeof(p->a[0]));
	return &p->a[p->n++];
}

/* Holds a new reference to obj until convert_value_free. */
static int
pin_ref(convert_pins *p, PyObject *obj, werr *err)
{
	struct pin *s = pin_slot(p);

	if (s == NULL)
		return werr_set(err, GILD__V1__CODE__PYTHON_ERROR,
		    "MemoryError", "out of memory converting the result");
	Py_INCREF(obj);
	s->obj = obj;
	return 0;
}

/* Takes over *view (released here if it cannot be held). */
static int
pin_view(convert_pins *p, Py_buffer *view, werr *err)
{
	struct pin *s = pin_slot(p);

	if (s == NULL) {
		PyBuffer_Release(view);
		return werr_set(err, GILD__V1__CODE__PYTHON_ERROR,
		    "MemoryError", "out of memory converting the result");
	}
	s->view = *view;
	return 0;
}

static void
pins_free(convert_pins *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++) {
		if (p->a[i].obj != NULL)
			Py_DECREF(p->a[i].obj);
		else
			PyBuffer_Release(&p->a[i].view);
	}
	free(p->a);
	free(p);
}

static void
value_free(Gild__V1__Value *v)
{
	if (v == NULL)
		return;
	switch (v->kind_case) {
	case GILD__V1__VALUE__KIND_BIG_INT_VALUE:
		free(v->big_int_value);
		break;
	case GILD__V1__VALUE__KIND_LIST_VALUE:
	case GILD__V1__VALUE__KIND_TUPLE_VALUE: {
		Gild__V1__List *l =
		    v->kind_case == GILD__V1__VALUE__KIND_LIST_VALUE
		        ? v->list_value
		        : v->tuple_value;
		for (size_t i = 0; i < l->n_items; i++)
			value_free(l->items[i]);
		free(l->items);
		free(l);
		break;
	}
	case GILD__V1__VALUE__KIND_MAP_VALUE:
		for (size_t i = 0; i < v->map_value->n_entries; i++) {
			value_free(v->map_value->entries[i]->key);
			value_free(v->map_value->entries[i]->value);
			free(v->map_value->entries[i]);
		}
		free(v->map_value->entries);
		free(v->map_value);
		break;
	case GILD__V1__VALUE__KIND_TENSOR_VALUE:
		free(v->tensor_value->shape);
		free(v->tensor_value);
		break;
	default:
		/* null_value is static; str and bytes payloads are pinned. */
		break;
	}
	free(v);
}

void
convert_value_free(Gild__V1__Value *v, convert_pins *pins)
{
	value_free(v);
	pins_free(pins);
}

static Gild__V1__Value *
value_new(void)
{
	Gild__V1__Value *v = malloc(sizeof(*v));

	if (v != NULL)
		gild__v1__value__init(v);
	return v;
}

static int
oom(werr *err)
{
	return werr_set(err, GILD__V1__CODE__PYTHON_ERROR, "MemoryError",
	    "out of memory converting the result");
}

/* Fails with the pending Python exception as the result's error. */
static int
fail_result(werr *err, const char *what)
{
	fail_py(err, GILD__V1__CODE__PYTHON_ERROR, what);
	return -1;
}

static int
unsupported(PyObject *o, werr *err)
{
	char *tn = werr_type_name(Py_TYPE(o));

	werr_set(err, GILD__V1__CODE__PYTHON_ERROR, "TypeError",
	    "values of type '%s' are not supported", tn != NULL ? tn : "?");
	free(tn);
	return -1;
}

static int from_py(
    PyObject *o, Gild__V1__Value *v, int depth, convert_pins *pins, werr *err);

/* With --allow-pickle: o, which has no other kind, as a pickle_value. */
static int
pickle_from_py(PyObject *o, Gild__V1__Value *v, convert_pins *pins, werr *err)
{
	PyObject *b = PyObject_CallOneArg(cv.dumps, o);
	char *tn;
	int rc;

	if (b == NULL || !PyBytes_Check(b)) {
		if (b == NULL) {
			werr_from_python(err, GILD__V1__CODE__PYTHON_ERROR);
			free(err->traceback);
			err->traceback = NULL;
		} else {
			werr_set(err, GILD__V1__CODE__PYTHON_ERROR,
			    "TypeError", "pickle.dumps returned no bytes");
		}
		tn = werr_type_name(Py_TYPE(o));
		werr_prefix(err, "values of type '%s' have no gild form and "
				 "cannot be pickled: ",
		    tn != NULL ? tn : "?");
		free(tn);
		Py_XDECREF(b);
		return -1;
	}
	v->kind_case = GILD__V1__VALUE__KIND_PICKLE_VALUE;
	v->pickle_value.data = (uint8_t *) PyBytes_AS_STRING(b);
	v->pickle_value.len = (size_t) PyBytes_GET_SIZE(b);
	rc = pin_ref(pins, b, err);
	Py_DECREF(b);
	return rc;
}

static int
bigint_from_py(PyObject *o, Gild__V1__Value *v, convert_pins *pins, werr *err)
{
	PyObject *n = NULL;
	PyObject *mag = NULL;
	PyObject *bits = NULL;
	PyObject *meth = NULL;
	PyObject *args = NULL;
	PyObject *bytes = NULL;
	Gild__V1__BigInt *b = NULL;
	Py_ssize_t nbits;
	int neg;
	int rc = -1;

	/* An exact int, so that subclasses cannot override the methods. */
	n = PyNumber_Index(o);
	if (n == NULL)
		goto fail_py;
	neg = PyObject_RichCompareBool(n, cv.zero, Py_LT);
	if (neg == -1)
		goto fail_py;
	/* Shortest two's complement: a sign bit on top of bit_length of n,
	 * or of ~n (= -n-1) when negative. */
	mag = neg ? PyNumber_Invert(n) : (Py_INCREF(n), n);
	if (mag == NULL)
		goto fail_py;
	bits = PyObject_CallMethod(mag, "bit_length", NULL);
	if (bits == NULL || (nbits = PyLong_AsSsize_t(bits)) == -1)
		goto fail_py;
	meth = PyObject_GetAttrString(n, "to_bytes");
	if (meth == NULL)
		goto fail_py;
	args = Py_BuildValue("(nO)", (nbits + 8) / 8, cv.little);
	if (args == NULL)
		goto fail_py;
	bytes = PyObject_Call(meth, args, cv.signed_kw);
	if (bytes == NULL || !PyBytes_Check(bytes))
		goto fail_py;
	b = malloc(sizeof(*b));
	if (b == NULL) {
		oom(err);
		goto done;
	}
	gild__v1__big_int__init(b);
	b->le_twos_complement.data = (uint8_t *) PyBytes_AS_STRING(bytes);
	b->le_twos_complement.len = (size_t) PyBytes_GET_SIZE(bytes);
	v->kind_case = GILD__V1__VALUE__KIND_BIG_INT_VALUE;
	v->big_int_value = b;
	rc = pin_ref(pins, bytes, err);
	goto done;
fail_py:
	if (PyErr_Occurred())
		fail_result(err, "int");
	else
		werr_set(err, GILD__V1__CODE__PYTHON_ERROR, "TypeError",
		    "int.to_bytes did not return bytes");
done:
	Py_XDECREF(n);
	Py_XDECREF(mag);
	Py_XDECREF(bits);
	Py_XDECREF(meth);
	Py_XDECREF(args);
	Py_XDECREF(bytes);
	return rc;
}

static int
str_from_py(PyObject *o, Gild__V1__Value *v, convert_pins *pins, werr *err)
{
	Py_ssize_t n;
	const char *s = PyUnicode_AsUTF8AndSize(o, &n);

	if (s == NULL) {
		if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
			fail_py(err, GILD__V1__CODE__PYTHON_ERROR,
			    "str cannot be encoded as UTF-8");
			free(err->python_type);
			err->python_type = strdup("ValueError");
			return -1;
		}
		return fail_result(err, "str");
	}
	v->kind_case = GILD__V1__VALUE__KIND_STR_VALUE;
	v->str_value.data = (uint8_t *) s;
	v->str_value.len = (size_t) n;
	return pin_ref(pins, o, err);
}

/* items: a tuple (borrowed) whose elements become a List in v. */
static int
seq_from_py(PyObject *items, int tuple, Gild__V1__Value *v, int depth,
    convert_pins *pins, werr *err)
{
	Py_ssize_t n = PyTuple_GET_SIZE(items);
	Gild__V1__List *l;

	l = malloc(sizeof(*l));
	if (l == NULL)
		return oom(err);
	gild__v1__list__init(l);
	if (tuple) {
		v->kind_case = GILD__V1__VALUE__KIND_TUPLE_VALUE;
		v->tuple_value = l;
	} else {
		v->kind_case = GILD__V1__VALUE__KIND_LIST_VALUE;
		v->list_value = l;
	}
	if (n == 0)
		return 0;
	l->items = malloc((size_t) n * sizeof(*l->items));
	if (l->items == NULL)
		return oom(err);
	for (Py_ssize_t i = 0; i < n; i++) {
		Gild__V1__Value *item = value_new();
		if (item == NULL)
			return oom(err);
		l->items[i] = item;
		l->n_items = (size_t) i + 1;
		if (from_py(PyTuple_GET_ITEM(items, i), item, depth + 1, pins,
		        err) == -1) {
			werr_prefix(
			    err, "%s index %zd: ", tuple ? "tuple" : "list", i);
			return -1;
		}
	}
	return 0;
}

static int
map_from_py(
    PyObject *o, Gild__V1__Value *v, int depth, convert_pins *pins, werr *err)
{
	/* A snapshot of the items: safe if converting runs Python code that
	 * touches the dict, and a consistent read in a free-threaded build. */
	PyObject *items = PyDict_Items(o);
	Gild__V1__Map *m;
	Py_ssize_t n;
	int rc = -1;

	if (items == NULL)
		return fail_result(err, "dict");
	n = PyList_GET_SIZE(items);
	m = malloc(sizeof(*m));
	if (m == NULL) {
		oom(err);
		goto done;
	}
	gild__v1__map__init(m);
	v->kind_case = GILD__V1__VALUE__KIND_MAP_VALUE;
	v->map_value = m;
	if (n > 0) {
		m->entries = malloc((size_t) n * sizeof(*m->entries));
		if (m->entries == NULL) {
			oom(err);
			goto done;
		}
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *kv = PyList_GET_ITEM(items, i);
		Gild__V1__MapEntry *e = malloc(sizeof(*e));
		if (e == NULL) {
			oom(err);
			goto done;
		}
		gild__v1__map_entry__init(e);
		m->entries[i] = e;
		m->n_entries = (size_t) i + 1;
		e->key = value_new();
		e->value = value_new();
		if (e->key == NULL || e->value == NULL) {
			oom(err);
			goto done;
		}
		if (from_py(PyTuple_GET_ITEM(kv, 0), e->key, depth + 1, pins,
		        err) == -1) {
			werr_prefix(err, "dict key %zd: ", i);
			goto done;
		}
		if (from_py(PyTuple_GET_ITEM(kv, 1), e->value, depth + 1, pins,
		        err) == -1) {
			werr_prefix(err, "dict entry %zd value: ", i);
			goto done;
		}
	}
	rc = 0;
done:
	Py_DECREF(items);
	return rc;
}

/* Fills v with a tensor of dtype dt over the C-contiguous buffer *view (taken
 * over: pinned or released) and the given shape. */
static int
tensor_from_view(Gild__V1__Value *v, const struct dtype_info *dt,
    Py_buffer *view, const uint64_t *shape, size_t ndim, convert_pins *pins,
    werr *err)
{
	Gild__V1__Tensor *t = malloc(sizeof(*t));

	if (t == NULL) {
		PyBuffer_Release(view);
		return oom(err);
	}
	gild__v1__tensor__init(t);
	v->kind_case = GILD__V1__VALUE__KIND_TENSOR_VALUE;
	v->tensor_value = t;
	t->dtype = (char *) dt->name;
	if (ndim > 0) {
		t->shape = malloc(ndim * sizeof(*t->shape));
		if (t->shape == NULL) {
			PyBuffer_Release(view);
			return oom(err);
		}
		memcpy(t->shape, shape, ndim * sizeof(*t->shape));
		t->n_shape = ndim;
	}
	t->data.data = view->buf;
	t->data.len = (size_t) view->len;
	return pin_view(pins, view, err);
}

static int
ndarray_from_py(PyObject *o, Gild__V1__Value *v, convert_pins *pins, werr *err)
{
	PyObject *dtype = NULL;
	PyObject *kind = NULL;
	PyObject *isize = NULL;
	PyObject *fields = NULL;
	PyObject *le = NULL;
	PyObject *arr = NULL;
	PyObject *shape = NULL;
	const struct dtype_info *dt = NULL;
	uint64_t dims[64];
	Py_ssize_t ndim;
	Py_buffer view;
	int rc = -1;

	dtype = PyObject_GetAttrString(o, "dtype");
	if (dtype == NULL)
		goto fail_py;
	kind = PyObject_GetAttrString(dtype, "kind");
	isize = PyObject_GetAttrString(dtype, "itemsize");
	fields = PyObject_GetAttrString(dtype, "fields");
	if (kind == NULL || isize == NULL || fields == NULL)
		goto fail_py;
	if (PyUnicode_Check(kind) && PyUnicode_GET_LENGTH(kind) == 1 &&
	    fields == Py_None)
		dt = dtype_by_kind((char) PyUnicode_READ_CHAR(kind, 0),
		    PyLong_AsSize_t(isize));
	PyErr_Clear();
	if (dt == NULL) {
		PyObject *s = PyObject_Str(dtype);
		const char *name = s != NULL ? PyUnicode_AsUTF8(s) : NULL;
		PyErr_Clear();
		werr_set(err, GILD__V1__CODE__PYTHON_ERROR, "TypeError",
		    "numpy arrays of dtype '%s' are not supported",
		    name != NULL ? name : "?");
		Py_XDECREF(s);
		goto done;
	}
	shape = PyObject_GetAttrString(o, "shape");
	if (shape == NULL || !PyTuple_Check(shape))
		goto fail_py;
	ndim = PyTuple_GET_SIZE(shape);
	if (ndim > 64) {
		werr_set(err, GILD__V1__CODE__PYTHON_ERROR, "ValueError",
		    "arrays with %zd dimensions are not supported", ndim);
		goto done;
	}
	for (Py_ssize_t i = 0; i < ndim; i++) {
		dims[i] = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(shape, i));
		if (PyErr_Occurred())
			goto fail_py;
	}
	/* Same array when already C-contiguous little-endian: no copy. */
	le = PyObject_CallMethod(dtype, "newbyteorder", "s", "<");
	if (le == NULL)
		goto fail_py;
	arr =
	    PyObject_CallFunctionObjArgs(cv.np_ascontiguousarray, o, le, NULL);
	if (arr == NULL)
		goto fail_py;
	if (PyObject_GetBuffer(arr, &view, PyBUF_C_CONTIGUOUS) == -1)
		goto fail_py;
	rc = tensor_from_view(v, dt, &view, dims, (size_t) ndim, pins, err);
	goto done;
fail_py:
	fail_result(err, "numpy array");
done:
	Py_XDECREF(dtype);
	Py_XDECREF(kind);
	Py_XDECREF(isize);
	Py_XDECREF(fields);
	Py_XDECREF(le);
	Py_XDECREF(arr);
	Py_XDECREF(shape);
	return rc;
}

/* A numpy scalar converts like the Python scalar .item() gives; ones with no
 * plain Python equivalent (complex) become 0-d tensors. */
static int
npscalar_from_py(
    PyObject *o, Gild__V1__Value *v, int depth, convert_pins *pins, werr *err)
{
	PyObject *item = PyObject_CallMethod(o, "item", NULL);
	PyObject *arr = NULL;
	int rc;

	if (item == NULL)
		return fail_result(err, "numpy scalar");
	if (PyBool_Check(item) || PyLong_CheckExact(item) ||
	    PyFloat_CheckExact(item) || PyUnicode_CheckExact(item) ||
	    PyBytes_CheckExact(item)) {
		rc = from_py(item, v, depth, pins, err);
		Py_DECREF(item);
		return rc;
	}
	Py_DECREF(item);
	if (PyObject_HasAttrString(o, "dtype")) {
		PyObject *kind = PyObject_GetAttrString(o, "dtype");
		PyObject *k =
		    kind != NULL ? PyObject_GetAttrString(kind, "kind") : NULL;
		int ok = k != NULL && PyUnicode_Check(k) &&
		         PyUnicode_CompareWithASCIIString(k, "c") == 0;
		Py_XDECREF(kind);
		Py_XDECREF(k);
		PyErr_Clear();
		if (ok) {
			arr = PyObject_CallFunctionObjArgs(
			    cv.np_asarray, o, NULL);
			if (arr == NULL)
				return fail_result(err, "numpy scalar");
			rc = ndarray_from_py(arr, v, pins, err);
			Py_DECREF(arr);
			return rc;
		}
	}
	return unsupported(o, err);
}

static int
memoryview_from_py(
    PyObject *o, Gild__V1__Value *v, convert_pins *pins, werr *err)
{
	const struct dtype_info *dt;
	uint64_t dims[PyBUF_MAX_NDIM];
	Py_buffer view;
	Py_buffer copy;
	PyObject *bytes = NULL;
	size_t ndim;

	if (PyObject_GetBuffer(o, &view, PyBUF_FULL_RO) == -1)
		return fail_result(err, "memoryview");
	dt = dtype_by_format(view.format, (size_t) view.itemsize);
	if (dt == NULL) {
		werr_set(err, GILD__V1__CODE__PYTHON_ERROR, "TypeError",
		    "memoryviews of format '%s' (itemsize %zd) are not "
		    "supported",
		    view.format != NULL ? view.format : "B", view.itemsize);
		PyBuffer_Release(&view);
		return -1;
	}
	ndim = (size_t) view.ndim;
	for (size_t i = 0; i < ndim; i++)
		dims[i] = (uint64_t) view.shape[i];
	if (PyBuffer_IsContiguous(&view, 'C'))
		return tensor_from_view(v, dt, &view, dims, ndim, pins, err);
	/* Strided: one C-order copy into a bytes object we then pin. */
	bytes = PyBytes_FromStringAndSize(NULL, view.len);
	if (bytes == NULL || PyBuffer_ToContiguous(PyBytes_AS_STRING(bytes),
	                         &view, view.len, 'C') == -1) {
		PyBuffer_Release(&view);
		Py_XDECREF(bytes);
		return fail_result(err, "memoryview");
	}
	PyBuffer_Release(&view);
	if (PyObject_GetBuffer(bytes, &copy, PyBUF_SIMPLE) == -1) {
		Py_DECREF(bytes);
		return fail_result(err, "memoryview");
	}
	Py_DECREF(bytes);
	return tensor_from_view(v, dt, &copy, dims, ndim, pins, err);
}

static int
from_py(
    PyObject *o, Gild__V1__Value *v, int depth, convert_pins *pins, werr *err)
{
	if (o == Py_None) {
		v->kind_case = GILD__V1__VALUE__KIND_NULL_VALUE;
		v->null_value = &null_msg;
		return 0;
	}
	if (PyBool_Check(o)) {
		v->kind_case = GILD__V1__VALUE__KIND_BOOL_VALUE;
		v->bool_value = o == Py_True;
		return 0;
	}
	if (PyLong_Check(o)) {
		int overflow = 0;
		long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
		if (x == -1 && PyErr_Occurred())
			return fail_result(err, "int");
		if (overflow)
			return bigint_from_py(o, v, pins, err);
		v->kind_case = GILD__V1__VALUE__KIND_INT_VALUE;
		v->int_value = x;
		return 0;
	}
	if (PyFloat_Check(o)) {
		v->kind_case = GILD__V1__VALUE__KIND_FLOAT_VALUE;
		v->float_value = PyFloat_AS_DOUBLE(o);
		return 0;
	}
	if (PyUnicode_Check(o))
		return str_from_py(o, v, pins, err);
	if (PyBytes_Check(o)) {
		v->kind_case = GILD__V1__VALUE__KIND_BYTES_VALUE;
		v->bytes_value.data = (uint8_t *) PyBytes_AS_STRING(o);
		v->bytes_value.len = (size_t) PyBytes_GET_SIZE(o);
		return pin_ref(pins, o, err);
	}
	if (PyByteArray_Check(o)) {
		Py_buffer view;
		if (PyObject_GetBuffer(o, &view, PyBUF_SIMPLE) == -1)
			return fail_result(err, "bytearray");
		v->kind_case = GILD__V1__VALUE__KIND_BYTES_VALUE;
		v->bytes_value.data = view.buf;
		v->bytes_value.len = (size_t) view.len;
		return pin_view(pins, &view, err);
	}
	if (PyList_Check(o) || PyTuple_Check(o) || PyDict_Check(o)) {
		if (depth >= CONVERT_MAX_DEPTH) {
			too_deep(
			    err, GILD__V1__CODE__PYTHON_ERROR, "ValueError");
			return -1;
		}
		if (PyDict_Check(o))
			return map_from_py(o, v, depth, pins, err);
		if (PyTuple_Check(o))
			return seq_from_py(o, 1, v, depth, pins, err);
		/* A snapshot, as for dicts. */
		PyObject *t = PyList_AsTuple(o);
		if (t == NULL)
			return fail_result(err, "list");
		int rc = seq_from_py(t, 0, v, depth, pins, err);
		Py_DECREF(t);
		return rc;
	}
	if (numpy_loaded()) {
		if (PyObject_TypeCheck(o, (PyTypeObject *) cv.np_ndarray))
			return ndarray_from_py(o, v, pins, err);
		if (PyObject_TypeCheck(o, (PyTypeObject *) cv.np_generic))
			return npscalar_from_py(o, v, depth, pins, err);
	}
	if (PyMemoryView_Check(o))
		return memoryview_from_py(o, v, pins, err);
	if (cv.dumps != NULL)
		return pickle_from_py(o, v, pins, err);
	return unsupported(o, err);
}

int
convert_from_py(
    PyObject *obj, Gild__V1__Value **out, convert_pins **pins, werr *err)
{
	Gild__V1__Value *v = value_new();
	convert_pins *p = calloc(1, sizeof(*p));

	*out = NULL;
	*pins = NULL;
	if (v == NULL || p == NULL) {
		free(v);
		free(p);
		return oom(err);
	}
	if (from_py(obj, v, 0, p, err) == -1) {
		convert_value_free(v, p);
		PyErr_Clear();
		return -1;
	}
	*out = v;
	*pins = p;
	return 0;
}
