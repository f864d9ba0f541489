/* pyconv, values to send: a Python object as a gild.v1.Value tree that
 * points into the Python objects (pinned) instead of copying their
 * payloads; packing the tree is the one copy. */
#include "dtype.h"
#include "pyconv_int.h"

#include <stdlib.h>
#include <string.h>

#define SENDS                                                                  \
	"gild sends None, bool, int, float, str, bytes, lists, tuples, dicts " \
	"and numpy arrays"

/* One conversion's settings and what it pins, passed down the recursion. */
typedef struct from_ctx {
	enum pyconv_pickle pickle;
	pyconv_pins *pins;
} from_ctx;

struct pin {
	PyObject *obj;  /* a held reference, or NULL when view is used */
	Py_buffer view; /* a held buffer export when obj is NULL */
};

struct pyconv_pins {
	size_t n;
	size_t cap;
	struct pin *a;
};

static Gild__V1__Null null_msg = GILD__V1__NULL__INIT;

/* ------------------------------------------------------------------ pins */

static struct pin *
pin_slot(pyconv_pins *p)
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

/* Holds a new reference to obj until pyconv_value_free. */
static int
pin_ref(pyconv_pins *p, PyObject *obj)
{
	struct pin *s = pin_slot(p);

	if (s == NULL) {
		PyErr_NoMemory();
		return -1;
	}
	Py_INCREF(obj);
	s->obj = obj;
	return 0;
}

/* Takes over *view (released here if it cannot be held). */
static int
pin_view(pyconv_pins *p, Py_buffer *view)
{
	struct pin *s = pin_slot(p);

	if (s == NULL) {
		PyBuffer_Release(view);
		PyErr_NoMemory();
		return -1;
	}
	s->view = *view;
	return 0;
}

static void
pins_free(pyconv_pins *p)
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

/* ------------------------------------------------------------------ tree */

static Gild__V1__Value *
value_new(void)
{
	Gild__V1__Value *v = malloc(sizeof(*v));

	if (v != NULL)
		gild__v1__value__init(v);
	else
		PyErr_NoMemory();
	return v;
}

/* Frees what v holds, not v: lists' and maps' items live in one block
 * with their pointer array (seq_from_py, map_from_py). */
static void
value_clear(Gild__V1__Value *v)
{
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
			value_clear(l->items[i]);
		free(l->items);
		free(l);
		break;
	}
	case GILD__V1__VALUE__KIND_MAP_VALUE:
		for (size_t i = 0; i < v->map_value->n_entries; i++) {
			value_clear(v->map_value->entries[i]->key);
			value_clear(v->map_value->entries[i]->value);
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
}

static void
value_free(Gild__V1__Value *v)
{
	if (v != NULL)
		value_clear(v);
	free(v);
}

void
pyconv_value_free(Gild__V1__Value *v, pyconv_pins *pins)
{
	value_free(v);
	pins_free(pins);
}

/* ---------------------------------------------------------------- scalars */

static int from_py(const from_ctx *c, PyObject *o, Gild__V1__Value *v,
    const pyconv_at *at, int depth);

static int
unsupported(const from_ctx *c, PyObject *o, const pyconv_at *at)
{
	pyconv_fail_at(at, PyExc_TypeError, "cannot send %s: " SENDS "%s",
	    Py_TYPE(o)->tp_name,
	    c->pickle == PYCONV_PICKLE_ALLOW ? ""
	    : c->pickle == PYCONV_PICKLE_WRAP
		? " (others pickled with gild.connect(..., pickle=True) to "
		  "a server run with --allow-pickle)"
		: " (others pickled only by a server run with "
		  "--allow-pickle)");
	return -1;
}

/* o as a pickle_value: a gild.Pickled's bytes, or (PYCONV_PICKLE_ALLOW)
 * pickle.dumps(o); otherwise unsupported. */
static int
pickle_from_py(
    const from_ctx *c, PyObject *o, Gild__V1__Value *v, const pyconv_at *at)
{
	PyObject *t = NULL, *b = NULL, *f, *exc;
	int is = 0, rc = -1;

	if (c->pickle != PYCONV_PICKLE_REFUSE) {
		t = pyconv_pickled_type(1);
		if (t == NULL && PyErr_Occurred())
			goto out;
		if (t != NULL && (is = PyObject_IsInstance(o, t)) == -1)
			goto out;
	}
	if (is) {
		if ((b = PyObject_GetAttrString(o, "data")) == NULL)
			goto out;
	} else if (c->pickle != PYCONV_PICKLE_ALLOW) {
		rc = unsupported(c, o, at);
		goto out;
	} else if ((f = pyconv_pickle_fn("dumps")) != NULL) {
		b = PyObject_CallOneArg(f, o);
		Py_DECREF(f);
		if (b == NULL) {
			exc = pyconv_take_exception();
			pyconv_fail_at(at, PyExc_TypeError,
			    "cannot send %s: pickling it failed: %S",
			    Py_TYPE(o)->tp_name, exc != NULL ? exc : Py_None);
			Py_XDECREF(exc);
			goto out;
		}
	} else {
		goto out;
	}
	if (!PyBytes_Check(b)) {
		pyconv_fail_at(at, PyExc_TypeError,
		    "cannot send %s: its pickle is not bytes",
		    Py_TYPE(o)->tp_name);
		goto out;
	}
	v->kind_case = GILD__V1__VALUE__KIND_PICKLE_VALUE;
	v->pickle_value.data = (uint8_t *) PyBytes_AS_STRING(b);
	v->pickle_value.len = (size_t) PyBytes_GET_SIZE(b);
	rc = pin_ref(c->pins, b);
out:
	Py_XDECREF(b);
	Py_XDECREF(t);
	return rc;
}

/* An int outside int64: its shortest two's complement bytes. */
static int
bigint_from_py(const from_ctx *c, PyObject *o, Gild__V1__Value *v)
{
	PyObject *n, *mag = NULL, *bits = NULL, *meth = NULL, *args = NULL;
	PyObject *bytes = NULL;
	Gild__V1__BigInt *b;
	Py_ssize_t nbits;
	int neg, rc = -1;

	/* An exact int, so that subclasses cannot override the methods. */
	if ((n = PyNumber_Index(o)) == NULL)
		return -1;
	if ((neg = PyObject_RichCompareBool(n, pyconv_cv.zero, Py_LT)) == -1)
		goto done;
	/* A sign bit on top of bit_length of n, or of ~n (= -n-1) when
	 * negative. */
	mag = neg ? PyNumber_Invert(n) : (Py_INCREF(n), n);
	if (mag == NULL ||
	    (bits = PyObject_CallMethod(mag, "bit_length", NULL)) == NULL ||
	    (nbits = PyLong_AsSsize_t(bits)) == -1)
		goto done;
	if ((meth = PyObject_GetAttrString(n, "to_bytes")) == NULL ||
	    (args = Py_BuildValue("(nO)", (nbits + 8) / 8, pyconv_cv.little)) ==
		NULL ||
	    (bytes = PyObject_Call(meth, args, pyconv_cv.signed_kw)) == NULL)
		goto done;
	if (!PyBytes_Check(bytes)) {
		PyErr_SetString(
		    PyExc_TypeError, "int.to_bytes returned no bytes");
		goto done;
	}
	if ((b = malloc(sizeof(*b))) == NULL) {
		PyErr_NoMemory();
		goto done;
	}
	gild__v1__big_int__init(b);
	b->le_twos_complement.data = (uint8_t *) PyBytes_AS_STRING(bytes);
	b->le_twos_complement.len = (size_t) PyBytes_GET_SIZE(bytes);
	v->kind_case = GILD__V1__VALUE__KIND_BIG_INT_VALUE;
	v->big_int_value = b;
	rc = pin_ref(c->pins, bytes);
done:
	Py_DECREF(n);
	Py_XDECREF(mag);
	Py_XDECREF(bits);
	Py_XDECREF(meth);
	Py_XDECREF(args);
	Py_XDECREF(bytes);
	return rc;
}

static int
str_from_py(
    const from_ctx *c, PyObject *o, Gild__V1__Value *v, const pyconv_at *at)
{
	PyObject *exc;
	Py_ssize_t n;
	const char *s = PyUnicode_AsUTF8AndSize(o, &n);

	if (s == NULL) {
		if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
			return -1;
		exc = pyconv_take_exception();
		pyconv_fail_at(at, PyExc_ValueError,
		    "cannot send a str that is not valid UTF-8 (%S)",
		    exc != NULL ? exc : Py_None);
		Py_XDECREF(exc);
		return -1;
	}
	v->kind_case = GILD__V1__VALUE__KIND_STR_VALUE;
	v->str_value.data = (uint8_t *) s;
	v->str_value.len = (size_t) n;
	return pin_ref(c->pins, o);
}

/* ------------------------------------------------------------- containers */

/* items: a tuple (borrowed, a snapshot for a list) whose elements become
 * a List in v. */
static int
seq_from_py(const from_ctx *c, PyObject *items, int tuple,
    Gild__V1__Value *v, const pyconv_at *at, int depth)
{
	Py_ssize_t n = PyTuple_GET_SIZE(items);
	Gild__V1__List *l = malloc(sizeof(*l));
	Gild__V1__Value *block;

	if (l == NULL) {
		PyErr_NoMemory();
		return -1;
	}
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
	/* The pointers and the items in one block: one allocation a list. */
	if ((size_t) n > SIZE_MAX / (sizeof(*l->items) + sizeof(**l->items)) ||
	    (l->items = malloc((size_t) n *
		 (sizeof(*l->items) + sizeof(**l->items)))) == NULL) {
		PyErr_NoMemory();
		return -1;
	}
	block = (Gild__V1__Value *) (l->items + n);
	for (Py_ssize_t i = 0; i < n; i++) {
		pyconv_at s = {at, PYCONV_AT_INDEX, i, NULL};
		Gild__V1__Value *item = &block[i];

		gild__v1__value__init(item);
		l->items[i] = item;
		l->n_items = (size_t) i + 1;
		if (from_py(c, PyTuple_GET_ITEM(items, i), item, &s,
			depth + 1) == -1)
			return -1;
	}
	return 0;
}

/* A dict, read from a snapshot of its items: safe if converting runs
 * Python code that touches it, and a consistent read in a free-threaded
 * build. */
static int
map_from_py(const from_ctx *c, PyObject *o, Gild__V1__Value *v,
    const pyconv_at *at, int depth)
{
	PyObject *items = PyDict_Items(o);
	Gild__V1__MapEntry *es;
	Gild__V1__Value *kvs;
	Gild__V1__Map *m;
	Py_ssize_t n;
	int rc = -1;

	if (items == NULL)
		return -1;
	n = PyList_GET_SIZE(items);
	if ((m = malloc(sizeof(*m))) == NULL) {
		PyErr_NoMemory();
		goto done;
	}
	gild__v1__map__init(m);
	v->kind_case = GILD__V1__VALUE__KIND_MAP_VALUE;
	v->map_value = m;
	if (n == 0) {
		rc = 0;
		goto done;
	}
	/* Entries, keys and values in one block with the pointers. */
	if ((m->entries = malloc((size_t) n * (sizeof(*m->entries) +
		 sizeof(**m->entries) + 2 * sizeof(Gild__V1__Value)))) ==
	    NULL) {
		PyErr_NoMemory();
		goto done;
	}
	es = (Gild__V1__MapEntry *) (m->entries + n);
	kvs = (Gild__V1__Value *) (es + n);
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *kv = PyList_GET_ITEM(items, i);
		PyObject *k = PyTuple_GET_ITEM(kv, 0);
		pyconv_at ks = {at, PYCONV_AT_KEY, i, NULL};
		pyconv_at vs = {at, PYCONV_AT_ENTRY, i, k};
		Gild__V1__MapEntry *e = &es[i];

		gild__v1__map_entry__init(e);
		e->key = &kvs[2 * i];
		e->value = &kvs[2 * i + 1];
		gild__v1__value__init(e->key);
		gild__v1__value__init(e->value);
		m->entries[i] = e;
		m->n_entries = (size_t) i + 1;
		if (from_py(c, k, e->key, &ks, depth + 1) == -1 ||
		    from_py(c, PyTuple_GET_ITEM(kv, 1), e->value, &vs,
			depth + 1) == -1)
			goto done;
	}
	rc = 0;
done:
	Py_DECREF(items);
	return rc;
}

/* ---------------------------------------------------------------- tensors */

/* Fills v with a tensor of dtype dt over the C-contiguous buffer *view
 * (taken over: pinned or released) and the given shape. */
static int
tensor_from_view(const from_ctx *c, Gild__V1__Value *v,
    const struct dtype_info *dt, Py_buffer *view, const uint64_t *shape,
    size_t ndim)
{
	Gild__V1__Tensor *t = malloc(sizeof(*t));

	if (t == NULL) {
		PyBuffer_Release(view);
		PyErr_NoMemory();
		return -1;
	}
	gild__v1__tensor__init(t);
	v->kind_case = GILD__V1__VALUE__KIND_TENSOR_VALUE;
	v->tensor_value = t;
	t->dtype = (char *) dt->name;
	if (ndim > 0) {
		if ((t->shape = malloc(ndim * sizeof(*t->shape))) == NULL) {
			PyBuffer_Release(view);
			PyErr_NoMemory();
			return -1;
		}
		memcpy(t->shape, shape, ndim * sizeof(*t->shape));
		t->n_shape = ndim;
	}
	t->data.data = view->buf;
	t->data.len = (size_t) view->len;
	return pin_view(c->pins, view);
}

/* A numpy array: dtype and shape from the array, data from a C-contiguous
 * little-endian copy of it (the array itself when it is one already). */
static int
ndarray_from_py(const from_ctx *c, const struct pyconv_np *np, PyObject *o,
    Gild__V1__Value *v, const pyconv_at *at)
{
	PyObject *dtype, *kind = NULL, *isize = NULL, *fields = NULL;
	PyObject *le = NULL, *arr = NULL, *shape = NULL;
	const struct dtype_info *dt = NULL;
	uint64_t dims[GILD_TENSOR_DIMS_MAX];
	Py_ssize_t ndim;
	Py_buffer view;
	int rc = -1;

	if ((dtype = PyObject_GetAttrString(o, "dtype")) == NULL)
		return -1;
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
		pyconv_fail_at(at, PyExc_TypeError,
		    "cannot send a numpy array of dtype %S: gild sends arrays "
		    "of bool, int8-64, uint8-64, float16-64, complex64 and "
		    "complex128",
		    dtype);
		goto done;
	}
	if ((shape = PyObject_GetAttrString(o, "shape")) == NULL)
		goto done;
	if (!PyTuple_Check(shape) ||
	    PyTuple_GET_SIZE(shape) > GILD_TENSOR_DIMS_MAX) {
		pyconv_fail_at(at, PyExc_ValueError,
		    "cannot send a numpy array of shape %S", shape);
		goto done;
	}
	ndim = PyTuple_GET_SIZE(shape);
	for (Py_ssize_t i = 0; i < ndim; i++) {
		dims[i] = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(shape, i));
		if (PyErr_Occurred())
			goto done;
	}
	if ((le = PyObject_CallMethod(dtype, "newbyteorder", "s", "<")) ==
		NULL ||
	    (arr = PyObject_CallFunctionObjArgs(
		 np->ascontiguousarray, o, le, NULL)) == NULL)
		goto done;
	if (PyObject_GetBuffer(arr, &view, PyBUF_C_CONTIGUOUS) == -1)
		goto done;
	rc = tensor_from_view(c, v, dt, &view, dims, (size_t) ndim);
done:
	Py_DECREF(dtype);
	Py_XDECREF(kind);
	Py_XDECREF(isize);
	Py_XDECREF(fields);
	Py_XDECREF(le);
	Py_XDECREF(arr);
	Py_XDECREF(shape);
	return rc;
}

/* A numpy scalar converts like the Python scalar .item() gives; complex
 * ones become 0-d tensors. */
static int
npscalar_from_py(const from_ctx *c, const struct pyconv_np *np, PyObject *o,
    Gild__V1__Value *v, const pyconv_at *at, int depth)
{
	PyObject *item = PyObject_CallMethod(o, "item", NULL), *arr;
	int rc;

	if (item == NULL)
		return -1;
	if (PyBool_Check(item) || PyLong_CheckExact(item) ||
	    PyFloat_CheckExact(item) || PyUnicode_CheckExact(item) ||
	    PyBytes_CheckExact(item)) {
		rc = from_py(c, item, v, at, depth);
		Py_DECREF(item);
		return rc;
	}
	if (PyComplex_Check(item)) {
		Py_DECREF(item);
		if ((arr = PyObject_CallOneArg(np->asarray, o)) == NULL)
			return -1;
		rc = ndarray_from_py(c, np, arr, v, at);
		Py_DECREF(arr);
		return rc;
	}
	Py_DECREF(item);
	return unsupported(c, o, at);
}

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
	case 'b': case 'h': case 'i': case 'l': case 'q': case 'n':
		kind = 'i';
		break;
	case 'B': case 'H': case 'I': case 'L': case 'Q': case 'N': case 'c':
		kind = 'u';
		break;
	case 'e': case 'f': case 'd':
		kind = 'f';
		break;
	default:
		return NULL;
	}
	return dtype_by_kind(kind, itemsize);
}

/* True for a memoryview's buffer of plain bytes: format B or c (the
 * default of memoryview(b"...")), at most one dimension. */
static int
plain_bytes(const Py_buffer *view)
{
	const char *f = view->format != NULL ? view->format : "B";

	if (*f == '@' || *f == '=' || *f == '<' || *f == '>' || *f == '!')
		f++;
	return view->ndim <= 1 && (strcmp(f, "B") == 0 || strcmp(f, "c") == 0);
}

/* A memoryview: bytes when it holds plain bytes, else a tensor of its
 * format and shape (what a tensor received without numpy becomes, so it
 * goes back as it came: of uint8 or char too, its buffer being a
 * pyconv_cv.tensor_buffer). */
static int
memoryview_from_py(
    const from_ctx *c, PyObject *o, Gild__V1__Value *v, const pyconv_at *at)
{
	const struct dtype_info *dt;
	uint64_t dims[PyBUF_MAX_NDIM];
	Py_buffer view, copy;
	PyObject *bytes;
	size_t ndim;
	int rc;

	PyObject *under = PyMemoryView_GET_BUFFER(o)->obj;

	if (PyObject_GetBuffer(o, &view, PyBUF_FULL_RO) == -1)
		return -1;
	if (plain_bytes(&view) &&
	    (under == NULL ||
		!PyObject_TypeCheck(under,
		    (PyTypeObject *) pyconv_cv.tensor_buffer))) {
		if (!PyBuffer_IsContiguous(&view, 'C')) {
			/* Strided: one copy into a bytes object, pinned. */
			bytes = PyBytes_FromStringAndSize(NULL, view.len);
			rc = bytes == NULL ? -1
			    : PyBuffer_ToContiguous(PyBytes_AS_STRING(bytes),
				  &view, view.len, 'C');
			PyBuffer_Release(&view);
			if (rc == -1 || PyObject_GetBuffer(bytes, &view,
					    PyBUF_SIMPLE) == -1) {
				Py_XDECREF(bytes);
				return -1;
			}
			Py_DECREF(bytes);
		}
		v->kind_case = GILD__V1__VALUE__KIND_BYTES_VALUE;
		v->bytes_value.data = view.buf;
		v->bytes_value.len = (size_t) view.len;
		return pin_view(c->pins, &view);
	}
	dt = dtype_by_format(view.format, (size_t) view.itemsize);
	if (dt == NULL) {
		pyconv_fail_at(at, PyExc_TypeError,
		    "cannot send a memoryview of format '%s' (itemsize %zd)",
		    view.format != NULL ? view.format : "B", view.itemsize);
		PyBuffer_Release(&view);
		return -1;
	}
	ndim = (size_t) view.ndim;
	for (size_t i = 0; i < ndim; i++)
		dims[i] = (uint64_t) view.shape[i];
	if (PyBuffer_IsContiguous(&view, 'C'))
		return tensor_from_view(c, v, dt, &view, dims, ndim);
	/* Strided: one C-order copy into a bytes object, then pinned. */
	bytes = PyBytes_FromStringAndSize(NULL, view.len);
	rc = bytes == NULL ? -1
			   : PyBuffer_ToContiguous(PyBytes_AS_STRING(bytes),
				 &view, view.len, 'C');
	PyBuffer_Release(&view);
	if (rc == -1 || PyObject_GetBuffer(bytes, &copy, PyBUF_SIMPLE) == -1) {
		Py_XDECREF(bytes);
		return -1;
	}
	Py_DECREF(bytes);
	return tensor_from_view(c, v, dt, &copy, dims, ndim);
}

/* ------------------------------------------------------------------ Value */

static int
from_py(const from_ctx *c, PyObject *o, Gild__V1__Value *v,
    const pyconv_at *at, int depth)
{
	const struct pyconv_np *np;

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
			return -1;
		if (overflow)
			return bigint_from_py(c, o, v);
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
		return str_from_py(c, o, v, at);
	if (PyBytes_Check(o)) {
		v->kind_case = GILD__V1__VALUE__KIND_BYTES_VALUE;
		v->bytes_value.data = (uint8_t *) PyBytes_AS_STRING(o);
		v->bytes_value.len = (size_t) PyBytes_GET_SIZE(o);
		return pin_ref(c->pins, o);
	}
	if (PyByteArray_Check(o)) {
		Py_buffer view;
		if (PyObject_GetBuffer(o, &view, PyBUF_SIMPLE) == -1)
			return -1;
		v->kind_case = GILD__V1__VALUE__KIND_BYTES_VALUE;
		v->bytes_value.data = view.buf;
		v->bytes_value.len = (size_t) view.len;
		return pin_view(c->pins, &view);
	}
	if (PyList_Check(o) || PyTuple_Check(o) || PyDict_Check(o)) {
		PyObject *t;
		int rc;

		if (depth >= GILD_VALUE_DEPTH_MAX) {
			pyconv_fail_at(at, PyExc_ValueError,
			    GILD_VALUE_TOO_DEEP, GILD_VALUE_DEPTH_MAX);
			return -1;
		}
		if (PyDict_Check(o))
			return map_from_py(c, o, v, at, depth);
		if (PyTuple_Check(o))
			return seq_from_py(c, o, 1, v, at, depth);
		if ((t = PyList_AsTuple(o)) == NULL) /* a snapshot */
			return -1;
		rc = seq_from_py(c, t, 0, v, at, depth);
		Py_DECREF(t);
		return rc;
	}
	if ((np = pyconv_numpy(0)) != NULL) {
		if (PyObject_TypeCheck(o, (PyTypeObject *) np->ndarray))
			return ndarray_from_py(c, np, o, v, at);
		if (PyObject_TypeCheck(o, (PyTypeObject *) np->generic))
			return npscalar_from_py(c, np, o, v, at, depth);
	}
	if (PyMemoryView_Check(o))
		return memoryview_from_py(c, o, v, at);
	return pickle_from_py(c, o, v, at);
}

int
pyconv_from_py(PyObject *obj, const pyconv_at *at,
    enum pyconv_pickle pickle, Gild__V1__Value **out, pyconv_pins **pins)
{
	static const pyconv_at root = {NULL, PYCONV_AT_VALUE, 0, NULL};
	from_ctx c = {pickle, calloc(1, sizeof(pyconv_pins))};
	Gild__V1__Value *v = value_new();

	*out = NULL;
	*pins = NULL;
	if (v == NULL || c.pins == NULL) {
		free(v);
		free(c.pins);
		PyErr_NoMemory();
		return -1;
	}
	if (from_py(&c, obj, v, at != NULL ? at : &root, 0) == -1) {
		pyconv_value_free(v, c.pins);
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_SystemError, "pyconv: no error");
		return -1;
	}
	*out = v;
	*pins = c.pins;
	return 0;
}
