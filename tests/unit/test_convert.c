/* CUnit tests of the worker: gild.v1.Value <-> Python conversion (worker/
 * convert.c), app export rules (worker/app.c), call handling (worker/job.c)
 * in-process, and the gild-worker binary end to end over a socketpair.
 * Environment: B (build folder holding gild-worker; default "build"),
 * GILD_WORKER (another worker binary to run end to end, e.g. gild-worker-ft).
 */
#include <Python.h>

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../worker/app.h"
#include "../../worker/convert.h"
#include "../../worker/interp.h"
#include "../../worker/job.h"
#include "frame.h"
#include "wire.h"
#include "worker.pb-c.h"
#include "test_main.h"

static char tmpdir[] = "/tmp/gild-test-convert-XXXXXX";
static PyObject *globals; /* namespace for test expressions: np, math, ... */

/* ------------------------------------------------ Value builders (malloc) */
/* Trees built here are freed with gild__v1__value__free_unpacked. */

typedef Gild__V1__Value V;

static V *
v_new(Gild__V1__Value__KindCase k)
{
	V *v = malloc(sizeof(*v));
	gild__v1__value__init(v);
	v->kind_case = k;
	return v;
}

static V *
v_null(void)
{
	V *v = v_new(GILD__V1__VALUE__KIND_NULL_VALUE);
	v->null_value = malloc(sizeof(*v->null_value));
	gild__v1__null__init(v->null_value);
	return v;
}

static V *
v_bool(int b)
{
	V *v = v_new(GILD__V1__VALUE__KIND_BOOL_VALUE);
	v->bool_value = b;
	return v;
}

static V *
v_int(int64_t i)
{
	V *v = v_new(GILD__V1__VALUE__KIND_INT_VALUE);
	v->int_value = i;
	return v;
}

static V *
v_big(const void *le, size_t n)
{
	V *v = v_new(GILD__V1__VALUE__KIND_BIG_INT_VALUE);
	v->big_int_value = malloc(sizeof(*v->big_int_value));
	gild__v1__big_int__init(v->big_int_value);
	v->big_int_value->le_twos_complement.data = malloc(n);
	memcpy(v->big_int_value->le_twos_complement.data, le, n);
	v->big_int_value->le_twos_complement.len = n;
	return v;
}

static V *
v_float(double d)
{
	V *v = v_new(GILD__V1__VALUE__KIND_FLOAT_VALUE);
	v->float_value = d;
	return v;
}

static V *
v_strn(const char *s, size_t n)
{
	V *v = v_new(GILD__V1__VALUE__KIND_STR_VALUE);
	v->str_value.data = malloc(n ? n : 1);
	memcpy(v->str_value.data, s, n);
	v->str_value.len = n;
	return v;
}

static V *
v_str(const char *s)
{
	return v_strn(s, strlen(s));
}

static V *
v_bytes(const void *p, size_t n)
{
	V *v = v_new(GILD__V1__VALUE__KIND_BYTES_VALUE);
	v->bytes_value.data = malloc(n ? n : 1);
	memcpy(v->bytes_value.data, p, n);
	v->bytes_value.len = n;
	return v;
}

static Gild__V1__List *
list_of(size_t n, va_list ap)
{
	Gild__V1__List *l = malloc(sizeof(*l));
	gild__v1__list__init(l);
	l->n_items = n;
	l->items = n ? malloc(n * sizeof(*l->items)) : NULL;
	for (size_t i = 0; i < n; i++)
		l->items[i] = va_arg(ap, V *);
	return l;
}

static V *
v_list(size_t n, ...)
{
	V *v = v_new(GILD__V1__VALUE__KIND_LIST_VALUE);
	va_list ap;
	va_start(ap, n);
	v->list_value = list_of(n, ap);
	va_end(ap);
	return v;
}

static V *
v_tuple(size_t n, ...)
{
	V *v = v_new(GILD__V1__VALUE__KIND_TUPLE_VALUE);
	va_list ap;
	va_start(ap, n);
	v->tuple_value = list_of(n, ap);
	va_end(ap);
	return v;
}

/* v_map(n, key0, value0, key1, value1, ...) */
static V *
v_map(size_t n, ...)
{
	V *v = v_new(GILD__V1__VALUE__KIND_MAP_VALUE);
	va_list ap;
	v->map_value = malloc(sizeof(*v->map_value));
	gild__v1__map__init(v->map_value);
	v->map_value->n_entries = n;
	v->map_value->entries = n ? malloc(n * sizeof(void *)) : NULL;
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		Gild__V1__MapEntry *e = malloc(sizeof(*e));
		gild__v1__map_entry__init(e);
		e->key = va_arg(ap, V *);
		e->value = va_arg(ap, V *);
		v->map_value->entries[i] = e;
	}
	va_end(ap);
	return v;
}

static V *
v_tensor(const char *dtype, const uint64_t *shape, size_t ndim,
    const void *data, size_t len)
{
	V *v = v_new(GILD__V1__VALUE__KIND_TENSOR_VALUE);
	Gild__V1__Tensor *t = malloc(sizeof(*t));
	gild__v1__tensor__init(t);
	t->dtype = strdup(dtype);
	t->n_shape = ndim;
	t->shape = ndim ? malloc(ndim * sizeof(uint64_t)) : NULL;
	if (ndim)
		memcpy(t->shape, shape, ndim * sizeof(uint64_t));
	t->data.data = malloc(len ? len : 1);
	if (len)
		memcpy(t->data.data, data, len);
	t->data.len = len;
	v->tensor_value = t;
	return v;
}

static V *
v_nested(int levels, V *inner)
{
	for (int i = 0; i < levels; i++)
		inner = v_list(1, inner);
	return inner;
}

static void
v_free(V *v)
{
	if (v != NULL)
		gild__v1__value__free_unpacked(v, NULL);
}

/* Packs v into a new buffer; *len gets its size. */
static uint8_t *
v_pack(const V *v, size_t *len)
{
	*len = gild__v1__value__get_packed_size(v);
	uint8_t *buf = malloc(*len ? *len : 1);
	gild__v1__value__pack(v, buf);
	return buf;
}

/* --------------------------------------------------------- Python helpers */

/* Evaluates expr in the test namespace (new ref). */
static PyObject *
py_eval(const char *expr)
{
	PyObject *r = PyRun_String(expr, Py_eval_input, globals, globals);
	if (r == NULL) {
		fprintf(stderr, "\n  python error evaluating: %s\n", expr);
		PyErr_Print();
	}
	return r;
}

/* 1 if `check` is true with x bound to obj; prints why not otherwise. */
static int
py_check(PyObject *obj, const char *check)
{
	PyObject *r;
	int ok;

	PyDict_SetItemString(globals, "x", obj);
	r = py_eval(check);
	ok = r != NULL && PyObject_IsTrue(r) == 1;
	if (!ok && r != NULL) {
		PyObject *rep = PyObject_Repr(obj);
		fprintf(stderr, "\n  check failed: %s with x = %.300s\n", check,
		    rep ? PyUnicode_AsUTF8(rep) : "?");
		Py_XDECREF(rep);
	}
	PyErr_Clear();
	Py_XDECREF(r);
	PyDict_DelItemString(globals, "x");
	return ok;
}

static int
contains(const char *hay, const char *needle)
{
	int ok = hay != NULL && strstr(hay, needle) != NULL;
	if (!ok)
		fprintf(stderr, "\n  expected \"%s\" in \"%s\"\n", needle,
		    hay ? hay : "(null)");
	return ok;
}

/* ------------------------------------------------- Value -> Py -> Value */

struct rt_case {
	const char *name;
	V *v;
	const char *pytype; /* type(x).__name__ expected in Python */
	const char *check;  /* a Python expression over x that must hold */
};

#define RT(n, v, t, c)                                                         \
	{                                                                      \
		n, v, t, c                                                     \
	}

/* Converts c->v to Python, checks the type and c->check, converts back
 * and expects the very same encoding. */
static void
run_rt(const struct rt_case *c)
{
	werr err = {0};
	PyObject *o = convert_to_py(c->v, &err);
	Gild__V1__Value *back = NULL;
	convert_pins *pins = NULL;
	size_t la, lb;
	uint8_t *a, *b;
	char tcheck[128];

	if (o == NULL) {
		fprintf(
		    stderr, "\n  %s: to_py failed: %s\n", c->name, err.message);
		CU_FAIL("convert_to_py failed");
		werr_clear(&err);
		return;
	}
	snprintf(tcheck, sizeof(tcheck), "type(x).__name__ == '%s'", c->pytype);
	if (!py_check(o, tcheck))
		fprintf(stderr, "  (case %s)\n", c->name);
	CU_ASSERT(py_check(o, tcheck));
	if (c->check != NULL && !py_check(o, c->check))
		fprintf(stderr, "  (case %s)\n", c->name);
	if (c->check != NULL)
		CU_ASSERT(py_check(o, c->check));
	if (convert_from_py(o, &back, &pins, &err) == -1) {
		fprintf(stderr, "\n  %s: from_py failed: %s\n", c->name,
		    err.message);
		CU_FAIL("convert_from_py failed");
		werr_clear(&err);
		Py_DECREF(o);
		return;
	}
	a = v_pack(c->v, &la);
	b = v_pack(back, &lb);
	if (la != lb || memcmp(a, b, la) != 0)
		fprintf(stderr,
		    "\n  %s: round trip changed the value (%zu -> %zu "
		    "bytes)\n",
		    c->name, la, lb);
	CU_ASSERT_EQUAL(la, lb);
	CU_ASSERT(la == lb && memcmp(a, b, la) == 0);
	free(a);
	free(b);
	convert_value_free(back, pins);
	Py_DECREF(o);
	CU_ASSERT_PTR_NULL(PyErr_Occurred());
}

static void
test_roundtrip_scalars(void)
{
	const uint8_t two63[] = {0, 0, 0, 0, 0, 0, 0, 0x80, 0}; /* 2**63 */
	const uint8_t m2_63m1[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0x7f, 0xff}; /* -2**63-1 */
	uint8_t two200[26] = {0}, m2_200[26] = {0}, m2_71[9] = {0};
	double nan_payload;
	uint64_t bits = 0x7ff800000000beefULL;

	two200[25] = 0x01;     /* 2**200: bit 200 is byte 25 bit 0 */
	memset(m2_200, 0, 25); /* -2**200 */
	m2_200[25] = 0xff;
	m2_71[8] = 0x80; /* -2**71 in its shortest 9 bytes */
	memcpy(&nan_payload, &bits, 8);

	struct rt_case cases[] = {
	    RT("null", v_null(), "NoneType", "x is None"),
	    RT("true", v_bool(1), "bool", "x is True"),
	    RT("false", v_bool(0), "bool", "x is False"),
	    RT("int 0", v_int(0), "int", "x == 0"),
	    RT("int -1", v_int(-1), "int", "x == -1"),
	    RT("int max", v_int(INT64_MAX), "int", "x == 2**63 - 1"),
	    RT("int min", v_int(INT64_MIN), "int", "x == -2**63"),
	    RT("big 2**63", v_big(two63, sizeof(two63)), "int", "x == 2**63"),
	    RT("big -2**63-1", v_big(m2_63m1, sizeof(m2_63m1)), "int",
	        "x == -2**63 - 1"),
	    RT("big 2**200", v_big(two200, sizeof(two200)), "int",
	        "x == 2**200"),
	    RT("big -2**200", v_big(m2_200, sizeof(m2_200)), "int",
	        "x == -2**200"),
	    RT("big -2**71", v_big(m2_71, sizeof(m2_71)), "int", "x == -2**71"),
	    RT("float", v_float(1.5), "float", "x == 1.5"),
	    RT("float -0.0", v_float(-0.0), "float",
	        "x == 0 and math.copysign(1, x) == -1"),
	    RT("float inf", v_float(INFINITY), "float", "x == math.inf"),
	    RT("float -inf", v_float(-INFINITY), "float", "x == -math.inf"),
	    RT("float nan", v_float(NAN), "float", "math.isnan(x)"),
	    RT("float nan payload", v_float(nan_payload), "float",
	        "struct.unpack('<Q', struct.pack('<d', x))[0] == "
	        "0x7ff800000000beef"),
	    RT("float tiny", v_float(5e-324), "float", "x == 5e-324"),
	    RT("str empty", v_str(""), "str", "x == ''"),
	    RT("str utf8", v_str("h\xc3\xa9llo \xf0\x9f\x98\x80"), "str",
	        "x == 'h\\u00e9llo \\U0001F600'"),
	    RT("str with NUL", v_strn("a\0b", 3), "str", "x == 'a\\x00b'"),
	    RT("bytes empty", v_bytes("", 0), "bytes", "x == b''"),
	    RT("bytes non-utf8", v_bytes("\xff\x00\xfe", 3), "bytes",
	        "x == b'\\xff\\x00\\xfe'"),
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_rt(&cases[i]);
		v_free(cases[i].v);
	}
}

/* A list (or tuple) of the ints 0..n-1: past CONVERT_PREALLOC_MAX (4096) the
 * worker grows it as items convert. */
static V *
v_range(Gild__V1__Value__KindCase k, size_t n)
{
	V *v = v_new(k);
	Gild__V1__List *l = malloc(sizeof(*l));
	gild__v1__list__init(l);
	l->n_items = n;
	l->items = malloc(n * sizeof(*l->items));
	for (size_t i = 0; i < n; i++)
		l->items[i] = v_int((int64_t) i);
	if (k == GILD__V1__VALUE__KIND_TUPLE_VALUE)
		v->tuple_value = l;
	else
		v->list_value = l;
	return v;
}

static void
test_roundtrip_containers(void)
{
	const uint64_t s23[] = {2, 3};
	const int32_t i6[] = {1, -2, 3, -4, 5, -6};
	struct rt_case cases[] = {
	    RT("list empty", v_list(0), "list", "x == []"),
	    RT("tuple empty", v_tuple(0), "tuple", "x == ()"),
	    RT("map empty", v_map(0), "dict", "x == {}"),
	    RT("list mixed",
	        v_list(4, v_int(1), v_str("a"), v_null(), v_float(2.5)), "list",
	        "x == [1, 'a', None, 2.5]"),
	    RT("nested",
	        v_list(2,
	            v_tuple(2, v_int(1),
	                v_list(1, v_map(1, v_str("k"), v_tuple(0)))),
	            v_list(0)),
	        "list", "x == [(1, [{'k': ()}]), []] and type(x[0]) is tuple"),
	    RT("map int and tuple keys",
	        v_map(3, v_int(1), v_str("one"), v_tuple(2, v_int(1), v_int(2)),
	            v_str("pair"), v_str("s"), v_bytes("b", 1)),
	        "dict",
	        "x == {1: 'one', (1, 2): 'pair', 's': b'b'} and "
	        "list(x) == [1, (1, 2), 's']"),
	    RT("map keeps order",
	        v_map(3, v_str("z"), v_int(1), v_str("a"), v_int(2), v_str("m"),
	            v_int(3)),
	        "dict", "list(x) == ['z', 'a', 'm']"),
	    RT("list of 5000",
	        v_range(GILD__V1__VALUE__KIND_LIST_VALUE, 5000), "list",
	        "x == list(range(5000))"),
	    RT("tuple of 5000",
	        v_range(GILD__V1__VALUE__KIND_TUPLE_VALUE, 5000), "tuple",
	        "x == tuple(range(5000))"),
	    RT("100 levels", v_nested(100, v_int(7)), "list",
	        "str(x) == '[' * 100 + '7' + ']' * 100"),
	    RT("tensor int32 2x3", v_tensor("int32", s23, 2, i6, sizeof(i6)),
	        "ndarray",
	        "x.dtype == np.int32 and x.shape == (2, 3) and "
	        "x.tolist() == [[1, -2, 3], [-4, 5, -6]] and "
	        "x.flags.writeable"),
	    RT("tensor 0-d", v_tensor("float64", NULL, 0, &(double){2.5}, 8),
	        "ndarray",
	        "x.shape == () and x.dtype == np.float64 and x == 2.5"),
	    RT("tensor empty", v_tensor("uint8", (uint64_t[]){0, 4}, 2, "", 0),
	        "ndarray", "x.shape == (0, 4) and x.dtype == np.uint8"),
	    RT("tensor complex128",
	        v_tensor("complex128", (uint64_t[]){1}, 1,
	            (double[]){1.0, -2.0}, 16),
	        "ndarray", "x.dtype == np.complex128 and x[0] == 1 - 2j"),
	    RT("tensor float16",
	        v_tensor("float16", (uint64_t[]){2}, 1,
	            (uint16_t[]){0x3c00, 0xc000}, 4),
	        "ndarray",
	        "x.dtype == np.float16 and x.tolist() == [1.0, -2.0]"),
	    RT("tensor bool", v_tensor("bool", (uint64_t[]){3}, 1, "\1\0\1", 3),
	        "ndarray", "x.tolist() == [True, False, True]"),
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_rt(&cases[i]);
		v_free(cases[i].v);
	}
}

static void
test_map_list_key(void)
{
	/* A list key becomes a tuple (recursively); it comes back a tuple. */
	V *v = v_map(1, v_list(2, v_int(1), v_list(1, v_int(2))), v_str("v"));
	werr err = {0};
	PyObject *o = convert_to_py(v, &err);

	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT(py_check(o, "x == {(1, (2,)): 'v'}"));
	Py_DECREF(o);
	v_free(v);
}

static void
test_big_tensor(void)
{
	const size_t n = 4u << 20; /* 4 Mi float32: 16 MiB */
	float *data = malloc(n * sizeof(float));
	uint64_t shape[] = {1024, n / 1024};
	werr err = {0};
	Gild__V1__Value *back = NULL;
	convert_pins *pins = NULL;
	PyObject *o, *addr;
	V *v;

	for (size_t i = 0; i < n; i++)
		data[i] = (float) i * 0.5f;
	v = v_tensor("float32", shape, 2, data, n * sizeof(float));
	o = convert_to_py(v, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT(
	    py_check(o, "x.shape == (1024, 4096) and x.dtype == np.float32"
	                " and x[3, 5] == (3 * 4096 + 5) * 0.5"));
	CU_ASSERT_EQUAL_FATAL(convert_from_py(o, &back, &pins, &err), 0);
	CU_ASSERT_STRING_EQUAL(back->tensor_value->dtype, "float32");
	CU_ASSERT_EQUAL(back->tensor_value->n_shape, 2);
	CU_ASSERT_EQUAL(back->tensor_value->data.len, n * sizeof(float));
	CU_ASSERT(memcmp(back->tensor_value->data.data, data,
	              n * sizeof(float)) == 0);
	/* The result points into the array itself: no second copy. */
	PyDict_SetItemString(globals, "x", o);
	addr = py_eval("x.__array_interface__['data'][0]");
	CU_ASSERT_PTR_EQUAL(back->tensor_value->data.data,
	    (void *) PyLong_AsUnsignedLongLong(addr));
	Py_XDECREF(addr);
	PyDict_DelItemString(globals, "x");
	convert_value_free(back, pins);
	Py_DECREF(o);
	v_free(v);
	free(data);
}

static void
test_memoryview_fallback(void)
{
	const float f4[] = {1, 2, 3, 4};
	const uint64_t s22[] = {2, 2};
	werr err = {0};
	PyObject *o;
	V *v;

	convert_set_numpy(0);
	struct rt_case cases[] = {
	    RT("mv float32 2x2", v_tensor("float32", s22, 2, f4, 16),
	        "memoryview",
	        "x.format == 'f' and x.shape == (2, 2) and "
	        "x.tolist() == [[1, 2], [3, 4]] and not x.readonly"),
	    RT("mv int64 0-d", v_tensor("int64", NULL, 0, &(int64_t){-5}, 8),
	        "memoryview",
	        "x.format == 'q' and x.shape == () and "
	        "x.tolist() == -5"),
	    RT("mv uint16",
	        v_tensor(
	            "uint16", (uint64_t[]){2}, 1, (uint16_t[]){1, 65535}, 4),
	        "memoryview", "x.tolist() == [1, 65535]"),
	    RT("mv bool", v_tensor("bool", (uint64_t[]){2}, 1, "\0\1", 2),
	        "memoryview", "x.tolist() == [False, True]"),
	    /* Its format is bytes' (B), yet it goes back as a tensor: its
	     * buffer says it came as one. */
	    RT("mv uint8", v_tensor("uint8", (uint64_t[]){3}, 1, "abc", 3),
	        "memoryview", "x.format == 'B' and x.tolist() == [97, 98, 99]"),
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_rt(&cases[i]);
		v_free(cases[i].v);
	}
	/* What a memoryview cannot hold: pyconv's one fallback, a
	 * (dtype, shape, bytes) tuple, in the client too. */
	v = v_tensor("complex64", (uint64_t[]){1}, 1, f4, 8);
	o = convert_to_py(v, &err);
	CU_ASSERT(o != NULL && py_check(o, "x[0] == 'complex64' and "
					  "x[1] == (1,) and len(x[2]) == 8"));
	Py_XDECREF(o);
	v_free(v);
	convert_set_numpy(1);
}

/* ------------------------------------------------- Py -> Value -> Py */

struct py_case {
	const char *expr;
	Gild__V1__Value__KindCase kind;
	const char *check; /* over x (the original) and y (converted back) */
};

static void
test_python_side(void)
{
	static const struct py_case cases[] = {
	    {"None", GILD__V1__VALUE__KIND_NULL_VALUE, "y is None"},
	    {"True", GILD__V1__VALUE__KIND_BOOL_VALUE, "y is True"},
	    {"2**63 - 1", GILD__V1__VALUE__KIND_INT_VALUE, "y == x"},
	    {"-2**63", GILD__V1__VALUE__KIND_INT_VALUE, "y == x"},
	    {"2**63", GILD__V1__VALUE__KIND_BIG_INT_VALUE, "y == x"},
	    {"-2**63 - 1", GILD__V1__VALUE__KIND_BIG_INT_VALUE, "y == x"},
	    {"2**200", GILD__V1__VALUE__KIND_BIG_INT_VALUE, "y == x"},
	    {"-2**200 + 12345", GILD__V1__VALUE__KIND_BIG_INT_VALUE, "y == x"},
	    {"enum.IntEnum('E', 'A B').B", GILD__V1__VALUE__KIND_INT_VALUE,
	        "y == 2 and type(y) is int"},
	    {"float('nan')", GILD__V1__VALUE__KIND_FLOAT_VALUE,
	        "math.isnan(y)"},
	    {"-0.0", GILD__V1__VALUE__KIND_FLOAT_VALUE,
	        "math.copysign(1, y) == -1"},
	    {"'h\\u00e9'", GILD__V1__VALUE__KIND_STR_VALUE, "y == x"},
	    {"b'\\x00\\xff'", GILD__V1__VALUE__KIND_BYTES_VALUE, "y == x"},
	    {"bytearray(b'ab')", GILD__V1__VALUE__KIND_BYTES_VALUE,
	        "y == b'ab' and type(y) is bytes"},
	    {"[1, [2, (3, {})]]", GILD__V1__VALUE__KIND_LIST_VALUE, "y == x"},
	    {"(1,)", GILD__V1__VALUE__KIND_TUPLE_VALUE,
	        "y == x and type(y) is "
	        "tuple"},
	    {"collections.namedtuple('P', 'a b')(1, 2)",
	        GILD__V1__VALUE__KIND_TUPLE_VALUE, "y == (1, 2)"},
	    {"collections.OrderedDict([(2, 'b'), ((1, 'k'), None)])",
	        GILD__V1__VALUE__KIND_MAP_VALUE,
	        "y == {2: 'b', (1, 'k'): None} and list(y) == [2, (1, 'k')]"},
	    {"np.arange(6, dtype='>i4').reshape(2, 3)",
	        GILD__V1__VALUE__KIND_TENSOR_VALUE,
	        "y.dtype == np.dtype('<i4') and (y == x).all() and "
	        "y.shape == (2, 3)"},
	    {"np.arange(12.0).reshape(3, 4)[:, ::2]",
	        GILD__V1__VALUE__KIND_TENSOR_VALUE,
	        "(y == x).all() and y.shape == (3, 2)"},
	    {"np.zeros((0, 3), dtype=np.int16)",
	        GILD__V1__VALUE__KIND_TENSOR_VALUE,
	        "y.shape == (0, 3) and y.dtype == np.int16"},
	    {"np.array(3.5)", GILD__V1__VALUE__KIND_TENSOR_VALUE,
	        "y.shape == () and y == 3.5"},
	    {"np.array([True, False])", GILD__V1__VALUE__KIND_TENSOR_VALUE,
	        "y.dtype == np.bool_ and y.tolist() == [True, False]"},
	    {"np.float32(1.5)", GILD__V1__VALUE__KIND_FLOAT_VALUE,
	        "y == 1.5 and type(y) is float"},
	    {"np.int64(-7)", GILD__V1__VALUE__KIND_INT_VALUE,
	        "y == -7 and type(y) is int"},
	    {"np.uint64(2**64 - 1)", GILD__V1__VALUE__KIND_BIG_INT_VALUE,
	        "y == 2**64 - 1"},
	    {"np.bool_(True)", GILD__V1__VALUE__KIND_BOOL_VALUE, "y is True"},
	    {"np.complex64(1 + 2j)", GILD__V1__VALUE__KIND_TENSOR_VALUE,
	        "y.shape == () and y.dtype == np.complex64 and y == 1 + 2j"},
	    {"memoryview(b'\\x01\\x00\\x00\\x00\\x02\\x00\\x00\\x00')"
	     ".cast('i')",
	        GILD__V1__VALUE__KIND_TENSOR_VALUE,
	        "y.dtype == np.int32 and y.tolist() == [1, 2]"},
	    {"memoryview(array.array('d', range(6)))[::2]",
	        GILD__V1__VALUE__KIND_TENSOR_VALUE,
	        "y.tolist() == [0.0, 2.0, 4.0]"},
	    /* Plain bytes in a memoryview are bytes, as the client sends
	     * them (one converter). */
	    {"memoryview(b'0123456789')[1::3]",
	        GILD__V1__VALUE__KIND_BYTES_VALUE, "y == b'147'"},
	    {"memoryview(bytearray(b'ab'))", GILD__V1__VALUE__KIND_BYTES_VALUE,
	        "y == b'ab'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct py_case *c = &cases[i];
		PyObject *x = py_eval(c->expr);
		PyObject *y = NULL;
		Gild__V1__Value *v = NULL;
		convert_pins *pins = NULL;
		werr err = {0};
		uint8_t *buf;
		size_t len;

		CU_ASSERT_PTR_NOT_NULL_FATAL(x);
		if (convert_from_py(x, &v, &pins, &err) == -1) {
			fprintf(stderr, "\n  %s: %s\n", c->expr, err.message);
			CU_FAIL("convert_from_py failed");
			werr_clear(&err);
			Py_DECREF(x);
			continue;
		}
		if (v->kind_case != c->kind)
			fprintf(stderr, "\n  %s: kind %d, expected %d\n",
			    c->expr, v->kind_case, c->kind);
		CU_ASSERT_EQUAL(v->kind_case, c->kind);
		/* Through the wire format, as the front end would see it. */
		buf = v_pack(v, &len);
		convert_value_free(v, pins);
		Gild__V1__Value *u = gild__v1__value__unpack(NULL, len, buf);
		free(buf);
		CU_ASSERT_PTR_NOT_NULL_FATAL(u);
		y = convert_to_py(u, &err);
		gild__v1__value__free_unpacked(u, NULL);
		if (y == NULL)
			fprintf(
			    stderr, "\n  %s: back: %s\n", c->expr, err.message);
		CU_ASSERT_PTR_NOT_NULL(y);
		if (y != NULL) {
			PyDict_SetItemString(globals, "y", y);
			if (!py_check(x, c->check))
				fprintf(stderr, "  (case %s)\n", c->expr);
			CU_ASSERT(py_check(x, c->check));
			PyDict_DelItemString(globals, "y");
		}
		werr_clear(&err);
		Py_XDECREF(y);
		Py_DECREF(x);
	}
}

static void
test_bigint_shortest(void)
{
	/* Shortest two's complement, as int.to_bytes(n, "little", signed=True)
	 * needs at least. */
	static const struct {
		const char *expr;
		size_t len;
	} cases[] = {
	    {"2**63", 9},
	    {"-2**63 - 1", 9},
	    {"2**64", 9},
	    {"-2**64", 9},
	    {"-2**71", 9},
	    {"2**71", 10},
	    {"-2**71 - 1", 10},
	    {"2**200", 26},
	    {"-2**200", 26},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		PyObject *x = py_eval(cases[i].expr);
		Gild__V1__Value *v = NULL;
		convert_pins *pins = NULL;
		werr err = {0};

		CU_ASSERT_EQUAL_FATAL(convert_from_py(x, &v, &pins, &err), 0);
		CU_ASSERT_EQUAL(
		    v->kind_case, GILD__V1__VALUE__KIND_BIG_INT_VALUE);
		if (v->big_int_value->le_twos_complement.len != cases[i].len)
			fprintf(stderr, "\n  %s: %zu bytes, expected %zu\n",
			    cases[i].expr,
			    v->big_int_value->le_twos_complement.len,
			    cases[i].len);
		CU_ASSERT_EQUAL(
		    v->big_int_value->le_twos_complement.len, cases[i].len);
		convert_value_free(v, pins);
		Py_DECREF(x);
	}
}

/* ------------------------------------------------------------ error cases */

/* A pickle_value holding these bytes. */
static V *
v_pickle(const void *p, size_t n)
{
	V *v = v_new(GILD__V1__VALUE__KIND_PICKLE_VALUE);
	v->pickle_value.data = malloc(n ? n : 1);
	memcpy(v->pickle_value.data, p, n);
	v->pickle_value.len = n;
	return v;
}

/* Without convert_set_pickle(1) a pickle is PERMISSION_DENIED, and a set
 * result unsupported; with it, pickles load (nested too) and a set is
 * pickled. Leaves pickling off again. */
static void
test_pickle_gate(void)
{
	/* pickle.dumps({1, 2}, 2): a protocol 2 pickle of a set. */
	PyObject *set = py_eval("{1, 2}"), *o, *bytes;
	V *pk, *list;
	Gild__V1__Value *out = NULL;
	convert_pins *pins = NULL;
	werr err = {0};

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	bytes = PyRun_String("__import__('pickle').dumps({1, 2})", Py_eval_input,
	    globals, globals);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
	pk = v_pickle(PyBytes_AS_STRING(bytes), (size_t) PyBytes_GET_SIZE(bytes));
	list = v_list(2, v_int(1), v_pickle(PyBytes_AS_STRING(bytes),
				      (size_t) PyBytes_GET_SIZE(bytes)));

	CU_ASSERT_PTR_NULL(convert_to_py(pk, &err));
	CU_ASSERT_EQUAL(err.code, GILD__V1__CODE__PERMISSION_DENIED);
	CU_ASSERT(err.message && strstr(err.message, "--allow-pickle"));
	werr_clear(&err);
	CU_ASSERT_PTR_NULL(convert_to_py(list, &err));
	CU_ASSERT_EQUAL(err.code, GILD__V1__CODE__PERMISSION_DENIED);
	werr_clear(&err);
	CU_ASSERT_EQUAL(convert_from_py(set, &out, &pins, &err), -1);
	CU_ASSERT_STRING_EQUAL(err.python_type, "TypeError");
	werr_clear(&err);

	convert_fini();
	convert_set_pickle(1);
	CU_ASSERT_EQUAL_FATAL(convert_init(), 0);
	o = convert_to_py(list, &err);
	CU_ASSERT(o != NULL && py_check(o, "x == [1, {1, 2}]"));
	Py_XDECREF(o);
	CU_ASSERT_EQUAL(convert_from_py(set, &out, &pins, &err), 0);
	CU_ASSERT(out != NULL &&
		  out->kind_case == GILD__V1__VALUE__KIND_PICKLE_VALUE);
	if (out != NULL && out->kind_case == GILD__V1__VALUE__KIND_PICKLE_VALUE) {
		o = convert_to_py(out, &err);
		CU_ASSERT(o != NULL && py_check(o, "x == {1, 2}"));
		Py_XDECREF(o);
	}
	convert_value_free(out, pins);
	o = py_eval("lambda: 1");
	CU_ASSERT_EQUAL(convert_from_py(o, &out, &pins, &err), -1);
	CU_ASSERT(err.message && strstr(err.message, "pickling it failed"));
	werr_clear(&err);
	Py_XDECREF(o);
	v_free(pk);
	pk = v_pickle("not a pickle", 12);
	CU_ASSERT_PTR_NULL(convert_to_py(pk, &err));
	CU_ASSERT_EQUAL(err.code, GILD__V1__CODE__INVALID_ARGUMENT);
	CU_ASSERT(err.message && strstr(err.message, "cannot unpickle"));
	werr_clear(&err);

	convert_fini();
	convert_set_pickle(0);
	CU_ASSERT_EQUAL_FATAL(convert_init(), 0);
	v_free(pk);
	v_free(list);
	Py_DECREF(bytes);
	Py_DECREF(set);
}

static void
test_to_py_errors(void)
{
	const uint8_t ten[10] = {0};
	struct {
		const char *name;
		V *v;
		const char *msg;
	} cases[] = {
	    {"invalid utf-8", v_str("ok\xff"), "str value is not valid UTF-8"},
	    {"utf-8 surrogate", v_str("\xed\xa0\x80"),
	        "str value is not valid UTF-8"},
	    {"tensor size", v_tensor("float32", (uint64_t[]){3}, 1, ten, 10),
	        "tensor data has 10 bytes, float32 shape [3] needs 12"},
	    {"tensor 2-d size",
	        v_tensor("int16", (uint64_t[]){2, 3}, 2, ten, 10),
	        "tensor data has 10 bytes, int16 shape [2, 3] needs 12"},
	    {"unknown dtype", v_tensor("float128", (uint64_t[]){1}, 1, ten, 10),
	        "tensor dtype 'float128' is not supported"},
	    {"huge shape",
	        v_tensor(
	            "int8", (uint64_t[]){1ull << 40, 1ull << 40}, 2, ten, 10),
	        "tensor shape [1099511627776, "
	        "1099511627776] is too large"},
	    {"unset", v_new(GILD__V1__VALUE__KIND__NOT_SET),
	        "value has no kind set"},
	    {"nested unset",
	        v_list(2, v_int(1),
	            v_tuple(1, v_new(GILD__V1__VALUE__KIND__NOT_SET))),
	        "list index 1: tuple index 0: value has no kind set"},
	    {"unhashable key", v_map(1, v_map(0), v_int(1)),
	        "map entry 0 key: unhashable type 'dict'"},
	    {"map value error", v_map(1, v_str("k"), v_str("\xc3")),
	        "map entry 0 value: str value is not valid UTF-8"},
	    {"101 levels", v_nested(101, v_int(1)),
	        "values nested deeper than 100 levels"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		werr err = {0};
		PyObject *o = convert_to_py(cases[i].v, &err);
		if (o != NULL)
			fprintf(stderr, "\n  %s: converted\n", cases[i].name);
		CU_ASSERT_PTR_NULL(o);
		Py_XDECREF(o);
		CU_ASSERT_EQUAL(err.code, GILD__V1__CODE__INVALID_ARGUMENT);
		CU_ASSERT(contains(err.message, cases[i].msg));
		CU_ASSERT_PTR_NULL(PyErr_Occurred());
		werr_clear(&err);
		v_free(cases[i].v);
	}
}

static void
test_from_py_errors(void)
{
	static const struct {
		const char *expr;
		const char *type;
		const char *msg;
	} cases[] = {
	    {"{1, 2}", "TypeError", "cannot send set: gild sends None,"},
	    {"1j", "TypeError", "cannot send complex: gild sends None,"},
	    {"[1, {2: object()}]", "TypeError",
	        "result[1][2]: cannot send object: gild sends"},
	    {"{frozenset(): 1}", "TypeError",
	        "result key #0: cannot send frozenset: gild sends"},
	    {"'a\\ud800b'", "ValueError", "surrogates not allowed"},
	    {"functools.reduce(lambda a, _: [a], range(101), 1)", "ValueError",
	        "values nested deeper than 100 levels"},
	    {"(lambda l: (l.append(l), l)[1])([])", "ValueError",
	        "values nested deeper than 100 levels"},
	    {"np.array(['a', 'b'])", "TypeError",
	        "cannot send a numpy array of dtype <U1"},
	    {"np.datetime64('2020-01-01')", "TypeError",
	        "cannot send numpy.datetime64: gild sends"},
	    {"memoryview(b'abcd').cast('B').cast('c')", NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		PyObject *x = py_eval(cases[i].expr);
		Gild__V1__Value *v = NULL;
		convert_pins *pins = NULL;
		werr err = {0};
		int rc;

		CU_ASSERT_PTR_NOT_NULL_FATAL(x);
		rc = convert_from_py(x, &v, &pins, &err);
		if (cases[i].type == NULL) { /* 'c' is uint8: accepted */
			CU_ASSERT_EQUAL(rc, 0);
			convert_value_free(v, pins);
			Py_DECREF(x);
			continue;
		}
		CU_ASSERT_EQUAL(rc, -1);
		CU_ASSERT_PTR_NULL(v);
		CU_ASSERT_EQUAL(err.code, GILD__V1__CODE__PYTHON_ERROR);
		CU_ASSERT(contains(err.python_type, cases[i].type));
		CU_ASSERT(contains(err.message, cases[i].msg));
		CU_ASSERT_PTR_NULL(PyErr_Occurred());
		werr_clear(&err);
		Py_DECREF(x);
	}
	/* 100 levels is still fine. */
	PyObject *x =
	    py_eval("functools.reduce(lambda a, _: [a], range(100), 1)");
	Gild__V1__Value *v = NULL;
	convert_pins *pins = NULL;
	werr err = {0};
	CU_ASSERT_EQUAL(convert_from_py(x, &v, &pins, &err), 0);
	convert_value_free(v, pins);
	Py_XDECREF(x);
}

/* ---------------------------------------------------------------- the app */

static const char app_src[] = "import functools\n"
                              "import os\n"
                              "from os import system\n"
                              "from math import sqrt\n"
                              "try:\n"
                              "    import numpy as np\n"
                              "except ImportError:\n"
                              "    np = None\n"
                              "class MyError(Exception):\n"
                              "    pass\n"
                              "class Model:\n"
                              "    pass\n"
                              "def add(a, b=0):\n"
                              "    return a + b\n"
                              "def _private():\n"
                              "    return 1\n"
                              "def _deco(f):\n"
                              "    @functools.wraps(f)\n"
                              "    def w(*a, **k):\n"
                              "        return f(*a, **k)\n"
                              "    return w\n"
                              "@_deco\n"
                              "def wrapped(x):\n"
                              "    return [x, x]\n"
                              "square_root = sqrt\n"
                              "lam = lambda x: x\n"
                              "def boom(n):\n"
                              "    raise MyError('bad n: %d' % n)\n"
                              "def div(a, b):\n"
                              "    return a / b\n"
                              "def leave():\n"
                              "    raise SystemExit(4)\n"
                              "def give_set():\n"
                              "    return {1, 2}\n"
                              "def echo(*args, **kwargs):\n"
                              "    return [list(args), kwargs]\n"
                              "def mean(t):\n"
                              "    return float(t.mean())\n"
                              "def double(t):\n"
                              "    return t * 2\n"
                              "def say(s):\n"
                              "    print('hello from', s)\n"
                              "    return s\n";

static char app_path[256];

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

static app *the_app;

static void
test_app_exports(void)
{
	werr err = {0};
	char **names;
	static const char *want[] = {"add", "boom", "div", "double", "echo",
	    "give_set", "lam", "leave", "mean", "say", "wrapped"};

	CU_ASSERT_EQUAL_FATAL(app_load(&the_app, app_path, &err), 0);
	names = app_names(the_app);
	CU_ASSERT_EQUAL(app_count(the_app), sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < app_count(the_app) && i < 11; i++) {
		if (strcmp(names[i], want[i]) != 0)
			fprintf(stderr, "\n  export %zu: %s, expected %s\n", i,
			    names[i], want[i]);
		CU_ASSERT_STRING_EQUAL(names[i], want[i]);
	}
	CU_ASSERT_PTR_NOT_NULL(app_function(the_app, "add"));
	CU_ASSERT_PTR_NULL(app_function(the_app, "system"));
	CU_ASSERT_PTR_NULL(app_function(the_app, "sqrt"));
	CU_ASSERT_PTR_NULL(app_function(the_app, "square_root"));
	CU_ASSERT_PTR_NULL(app_function(the_app, "_private"));
	CU_ASSERT_PTR_NULL(app_function(the_app, "Model"));
	CU_ASSERT_PTR_NULL(app_function(the_app, "np"));
	/* The module is importable under its stem, registered in sys.modules.
	 */
	PyObject *r = py_eval("sys.modules['gapp'].add(2, 3)");
	CU_ASSERT(r != NULL && PyLong_AsLong(r) == 5);
	Py_XDECREF(r);
}

static void
test_app_load_errors(void)
{
	static const struct {
		const char *file; /* written into tmpdir, NULL for none */
		const char *src;
		const char *spec; /* %s is tmpdir */
		Gild__V1__Code code;
		const char *type;
		const char *msg;
		const char *tb;
	} cases[] = {
	    {NULL, NULL, "%s/missing.py", GILD__V1__CODE__NOT_FOUND, NULL,
	        "does not exist", NULL},
	    {NULL, NULL, "gild_no_such_module_xyz", GILD__V1__CODE__NOT_FOUND,
	        "ModuleNotFoundError", "gild_no_such_module_xyz", NULL},
	    {"syn.py", "def f(:\n", "%s/syn.py", GILD__V1__CODE__PYTHON_ERROR,
	        "SyntaxError", "invalid syntax", "syn.py"},
	    {"raises.py", "x = 1\nraise RuntimeError('no config')\n",
	        "%s/raises.py", GILD__V1__CODE__PYTHON_ERROR, "RuntimeError",
	        "no config", "raises.py\", line 2"},
	    {"needsdep.py", "import gild_missing_dependency_xyz\n", "needsdep",
	        GILD__V1__CODE__PYTHON_ERROR, "ModuleNotFoundError",
	        "gild_missing_dependency_xyz", "needsdep.py"},
	};
	char spec[512], path[512], cwd[512];

	CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
	CU_ASSERT_EQUAL_FATAL(chdir(tmpdir), 0); /* module names: from cwd */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		app *a = NULL;
		werr err = {0};
		if (cases[i].file != NULL) {
			snprintf(
			    path, sizeof(path), "%s/%s", tmpdir, cases[i].file);
			write_file(path, cases[i].src);
		}
		snprintf(spec, sizeof(spec), cases[i].spec, tmpdir);
		CU_ASSERT_EQUAL(app_load(&a, spec, &err), -1);
		CU_ASSERT_PTR_NULL(a);
		if (err.code != cases[i].code)
			fprintf(stderr, "\n  %s: code %d (%s)\n", spec,
			    err.code, err.message);
		CU_ASSERT_EQUAL(err.code, cases[i].code);
		CU_ASSERT(contains(err.message, cases[i].msg));
		if (cases[i].type != NULL)
			CU_ASSERT(contains(err.python_type, cases[i].type));
		if (cases[i].tb != NULL)
			CU_ASSERT(contains(err.traceback, cases[i].tb));
		CU_ASSERT_PTR_NULL(PyErr_Occurred());
		werr_clear(&err);
	}
	CU_ASSERT_EQUAL(chdir(cwd), 0);
}

/* ------------------------------------------------------ job_run in-process */

static Gild__V1__Kwarg *
kw(const char *name, V *v)
{
	Gild__V1__Kwarg *k = malloc(sizeof(*k));
	gild__v1__kwarg__init(k);
	k->name = strdup(name);
	k->value = v;
	return k;
}

/* Encodes ToWorker{job_id, call{fn, args, kwargs}} and frees the parts. */
static uint8_t *
enc_call(uint64_t job_id, const char *fn, size_t nargs, V **args, size_t nkw,
    Gild__V1__Kwarg **kws, size_t *len)
{
	Gild__Worker__V1__ToWorker m = GILD__WORKER__V1__TO_WORKER__INIT;
	Gild__V1__Call c = GILD__V1__CALL__INIT;
	uint8_t *buf;

	c.function = (char *) fn;
	c.n_args = nargs;
	c.args = args;
	c.n_kwargs = nkw;
	c.kwargs = kws;
	m.job_id = job_id;
	m.body_case = GILD__WORKER__V1__TO_WORKER__BODY_CALL;
	m.call = &c;
	*len = gild__worker__v1__to_worker__get_packed_size(&m);
	buf = malloc(*len);
	gild__worker__v1__to_worker__pack(&m, buf);
	for (size_t i = 0; i < nargs; i++)
		v_free(args[i]);
	for (size_t i = 0; i < nkw; i++)
		gild__v1__kwarg__free_unpacked(kws[i], NULL);
	return buf;
}

/* Runs buf through job_run and decodes the reply (caller frees). */
static Gild__Worker__V1__FromWorker *
run_job(uint8_t *buf, size_t len)
{
	uint8_t *out = NULL;
	size_t outlen = 0;
	Gild__Worker__V1__FromWorker *r;

	CU_ASSERT_EQUAL_FATAL(job_run(the_app, buf, len, NULL, &out, &outlen), 0);
	free(buf);
	r = gild__worker__v1__from_worker__unpack(NULL, outlen, out);
	frame_free(out); /* a large reply is a memfd mapping */
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	return r;
}

static Gild__Worker__V1__FromWorker *
call(uint64_t id, const char *fn, size_t nargs, V **args)
{
	size_t len;
	uint8_t *buf = enc_call(id, fn, nargs, args, 0, NULL, &len);
	return run_job(buf, len);
}

static void
expect_error(Gild__Worker__V1__FromWorker *r, uint64_t id, Gild__V1__Code code,
    const char *type, const char *msg)
{
	CU_ASSERT_EQUAL(r->job_id, id);
	CU_ASSERT_EQUAL_FATAL(
	    r->body_case, GILD__WORKER__V1__FROM_WORKER__BODY_ERROR);
	if (r->error->code != code)
		fprintf(stderr, "\n  code %d, expected %d: %s\n",
		    r->error->code, code, r->error->message);
	CU_ASSERT_EQUAL(r->error->code, code);
	CU_ASSERT(contains(r->error->message, msg));
	if (type != NULL)
		CU_ASSERT_STRING_EQUAL(r->error->python_type, type);
	gild__worker__v1__from_worker__free_unpacked(r, NULL);
}

static void
test_job_calls(void)
{
	Gild__Worker__V1__FromWorker *r;
	const uint8_t ten[10] = {0};
	size_t len;
	uint8_t *buf;

	CU_ASSERT_PTR_NOT_NULL_FATAL(the_app);
	r = call(7, "add", 2, (V *[]){v_int(2), v_int(40)});
	CU_ASSERT_EQUAL(r->job_id, 7);
	CU_ASSERT_EQUAL_FATAL(
	    r->body_case, GILD__WORKER__V1__FROM_WORKER__BODY_RESULT);
	CU_ASSERT_EQUAL(r->result->kind_case, GILD__V1__VALUE__KIND_INT_VALUE);
	CU_ASSERT_EQUAL(r->result->int_value, 42);
	gild__worker__v1__from_worker__free_unpacked(r, NULL);

	/* Keyword arguments. */
	buf = enc_call(8, "add", 1, (V *[]){v_str("a")}, 1,
	    (Gild__V1__Kwarg *[]){kw("b", v_str("bc"))}, &len);
	r = run_job(buf, len);
	CU_ASSERT_EQUAL_FATAL(
	    r->body_case, GILD__WORKER__V1__FROM_WORKER__BODY_RESULT);
	CU_ASSERT_EQUAL(r->result->str_value.len, 3);
	CU_ASSERT(memcmp(r->result->str_value.data, "abc", 3) == 0);
	gild__worker__v1__from_worker__free_unpacked(r, NULL);

	/* A numpy result: tensor back. */
	r = call(9, "double", 1,
	    (V *[]){v_tensor(
	        "float32", (uint64_t[]){2}, 1, (float[]){1.5f, -2.0f}, 8)});
	CU_ASSERT_EQUAL_FATAL(
	    r->body_case, GILD__WORKER__V1__FROM_WORKER__BODY_RESULT);
	CU_ASSERT_EQUAL_FATAL(
	    r->result->kind_case, GILD__V1__VALUE__KIND_TENSOR_VALUE);
	CU_ASSERT_STRING_EQUAL(r->result->tensor_value->dtype, "float32");
	CU_ASSERT(r->result->tensor_value->data.len == 8 &&
	          memcmp(r->result->tensor_value->data.data,
	              (float[]){3.0f, -4.0f}, 8) == 0);
	gild__worker__v1__from_worker__free_unpacked(r, NULL);

	r = call(10, "boom", 1, (V *[]){v_int(3)});
	CU_ASSERT(contains(r->error->traceback, "in boom"));
	CU_ASSERT(contains(r->error->traceback, "gapp.MyError: bad n: 3"));
	expect_error(
	    r, 10, GILD__V1__CODE__PYTHON_ERROR, "gapp.MyError", "bad n: 3");
	r = call(11, "div", 2, (V *[]){v_int(1), v_int(0)});
	expect_error(r, 11, GILD__V1__CODE__PYTHON_ERROR, "ZeroDivisionError",
	    "division by zero");
	r = call(12, "leave", 0, NULL);
	expect_error(r, 12, GILD__V1__CODE__PYTHON_ERROR, "SystemExit", "4");
	r = call(13, "give_set", 0, NULL);
	expect_error(r, 13, GILD__V1__CODE__PYTHON_ERROR, "TypeError",
	    "cannot send the result of 'give_set': cannot send set: gild "
	    "sends None,");
	r = call(14, "nope", 0, NULL);
	expect_error(r, 14, GILD__V1__CODE__NOT_FOUND, NULL,
	    "function 'nope' not found in app '");
	r = call(15, "system", 1, (V *[]){v_str("true")});
	expect_error(r, 15, GILD__V1__CODE__NOT_FOUND, NULL,
	    "(exported: add, boom, div, double, echo, give_set, lam, leave, "
	    "mean, say, wrapped)");
	r = call(16, "mean", 2,
	    (V *[]){
	        v_int(1), v_tensor("float32", (uint64_t[]){3}, 1, ten, 10)});
	expect_error(r, 16, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
	    "argument 2: tensor data has 10 bytes, float32 shape [3] needs 12");
	buf = enc_call(17, "echo", 0, NULL, 1,
	    (Gild__V1__Kwarg *[]){kw("k", v_list(1, v_str("\xff")))}, &len);
	r = run_job(buf, len);
	expect_error(r, 17, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
	    "keyword argument 'k': list index 0: str value is not valid UTF-8");
	buf = enc_call(18, "echo", 0, NULL, 2,
	    (Gild__V1__Kwarg *[]){kw("k", v_int(1)), kw("k", v_int(2))}, &len);
	r = run_job(buf, len);
	expect_error(r, 18, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
	    "keyword argument 'k' given more than once");
	r = call(19, "add", 3, (V *[]){v_int(1), v_int(2), v_int(3)});
	expect_error(r, 19, GILD__V1__CODE__PYTHON_ERROR, "TypeError",
	    "add() takes from 1 to 2 positional arguments but 3 were given");
}

/* Prepends tag + length to the len bytes at *p (growing *p). */
static void
wrap_len(uint8_t **p, size_t *len, uint32_t field)
{
	uint8_t hdr[2 * WIRE_MAX_VARINT];
	size_t h = wire_put_tag(hdr, field, WIRE_LEN);
	h += wire_put_varint(hdr + h, *len);
	uint8_t *n = malloc(h + *len);
	memcpy(n, hdr, h);
	memcpy(n + h, *p, *len);
	free(*p);
	*p = n;
	*len += h;
}

/* ToWorker{job_id, call{function "lam", args[0] = levels nested lists}}. */
static uint8_t *
enc_deep(uint64_t job_id, int levels, size_t *len)
{
	uint8_t *p = malloc(2);
	uint8_t hdr[WIRE_MAX_VARINT + 2];
	size_t h;

	p[0] = 0x18; /* Value.int_value = 1 (zigzag 2) */
	p[1] = 0x02;
	*len = 2;
	for (int i = 0; i < levels; i++) {
		wrap_len(&p, len, 1); /* List.items */
		wrap_len(&p, len, 8); /* Value.list_value */
	}
	wrap_len(&p, len, 2); /* Call.args */
	uint8_t *fn = malloc(*len + 5);
	memcpy(fn,
	    "\x0a\x03"
	    "lam",
	    5);
	memcpy(fn + 5, p, *len);
	free(p);
	p = fn;
	*len += 5;
	wrap_len(&p, len, 2); /* ToWorker.call */
	h = wire_put_tag(hdr, 1, WIRE_VARINT);
	h += wire_put_varint(hdr + h, job_id);
	uint8_t *m = malloc(h + *len);
	memcpy(m, hdr, h);
	memcpy(m + h, p, *len);
	free(p);
	*len += h;
	return m;
}

static void
test_job_malformed(void)
{
	Gild__Worker__V1__FromWorker *r;
	size_t len;
	uint8_t *buf;

	/* job_id 21, then a Call field whose length runs past the end. */
	buf = malloc(4);
	memcpy(buf, "\x08\x15\x12\x30", 4);
	r = run_job(buf, 4);
	expect_error(
	    r, 21, GILD__V1__CODE__INVALID_ARGUMENT, NULL, "malformed call: ");
	/* Garbage: not even a job id. */
	buf = malloc(3);
	memcpy(buf, "\xff\xff\xff", 3);
	r = run_job(buf, 3);
	expect_error(
	    r, 0, GILD__V1__CODE__INVALID_ARGUMENT, NULL, "malformed call: ");
	/* A job id but no call. */
	buf = malloc(2);
	memcpy(buf, "\x08\x16", 2);
	r = run_job(buf, 2);
	expect_error(r, 22, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
	    "malformed call: the message holds no call");
	/* Deep nesting is refused before protobuf-c recurses into it. */
	buf = enc_deep(23, 20000, &len);
	r = run_job(buf, len);
	expect_error(r, 23, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
	    "argument 1: values nested deeper than 100 levels");
	buf = enc_deep(24, 100, &len);
	r = run_job(buf, len);
	CU_ASSERT_EQUAL(
	    r->body_case, GILD__WORKER__V1__FROM_WORKER__BODY_RESULT);
	gild__worker__v1__from_worker__free_unpacked(r, NULL);
	buf = enc_deep(25, 101, &len);
	r = run_job(buf, len);
	expect_error(r, 25, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
	    "argument 1: values nested deeper than 100 levels");
}

/* ToWorker{job_id, call{function fn, then the n bytes at fields (args and
 * kwargs written by hand)}}. */
static uint8_t *
enc_raw_call(uint64_t job_id, const char *fn, const char *fields, size_t n,
    size_t *len)
{
	uint8_t *p = malloc(2 + strlen(fn) + n);

	p[0] = 0x0a; /* Call.function */
	p[1] = (uint8_t) strlen(fn);
	memcpy(p + 2, fn, strlen(fn));
	memcpy(p + 2 + strlen(fn), fields, n);
	*len = 2 + strlen(fn) + n;
	wrap_len(&p, len, 2); /* ToWorker.call */
	uint8_t *m = malloc(*len + 2);
	m[0] = 0x08; /* ToWorker.job_id */
	m[1] = (uint8_t) job_id;
	memcpy(m + 2, p, *len);
	free(p);
	*len += 2;
	return m;
}

/* What a field given twice means: a Value's kinds and a Kwarg's values are
 * each converted, the last one used; and what broken bytes get. */
static void
test_job_duplicates(void)
{
	Gild__Worker__V1__FromWorker *r;
	uint8_t *buf;
	size_t len;
	/* args: [Value{int 1, int 5}], [Value{int 2}] */
	static const char twice[] = "\x12\x04\x18\x02\x18\x0a"
				    "\x12\x02\x18\x04";
	/* args: [1]; kwargs: [Kwarg{b, value: 10, value: 20}] */
	static const char kw2[] = "\x12\x02\x18\x02"
				  "\x1a\x0b\x0a\x01"
				  "b"
				  "\x12\x02\x18\x14\x12\x02\x18\x28";
	/* args: [Value{int_value as a length-delimited field}] */
	static const char wrongtype[] = "\x12\x03\x1a\x01\x00";
	/* args: [Value{list: List{an item whose length runs past it}}] */
	static const char brokenlist[] = "\x12\x04\x42\x02\x0a\x05";
	/* args: [Value{}] with only an unknown field: no kind. */
	static const char unknown[] = "\x12\x02\x68\x01";

	buf = enc_raw_call(40, "add", twice, sizeof(twice) - 1, &len);
	r = run_job(buf, len);
	CU_ASSERT_EQUAL_FATAL(
	    r->body_case, GILD__WORKER__V1__FROM_WORKER__BODY_RESULT);
	CU_ASSERT_EQUAL(r->result->int_value, 7);
	gild__worker__v1__from_worker__free_unpacked(r, NULL);
	buf = enc_raw_call(41, "add", kw2, sizeof(kw2) - 1, &len);
	r = run_job(buf, len);
	CU_ASSERT_EQUAL_FATAL(
	    r->body_case, GILD__WORKER__V1__FROM_WORKER__BODY_RESULT);
	CU_ASSERT_EQUAL(r->result->int_value, 21);
	gild__worker__v1__from_worker__free_unpacked(r, NULL);
	buf = enc_raw_call(42, "add", wrongtype, sizeof(wrongtype) - 1, &len);
	expect_error(run_job(buf, len), 42, GILD__V1__CODE__INVALID_ARGUMENT,
	    NULL, "argument 1: malformed value: a value's field has the wrong "
		  "type");
	buf = enc_raw_call(
	    43, "add", brokenlist, sizeof(brokenlist) - 1, &len);
	expect_error(run_job(buf, len), 43, GILD__V1__CODE__INVALID_ARGUMENT,
	    NULL, "argument 1: malformed value: broken wire format in a list");
	buf = enc_raw_call(44, "add", unknown, sizeof(unknown) - 1, &len);
	expect_error(run_job(buf, len), 44, GILD__V1__CODE__INVALID_ARGUMENT,
	    NULL, "argument 1: value has no kind set");
	/* More positional arguments than CONVERT_PREALLOC_MAX: the tuple
	 * grows as they convert. */
	V **many = malloc(5000 * sizeof(*many));
	for (size_t i = 0; i < 5000; i++)
		many[i] = v_int((int64_t) i);
	r = call(45, "echo", 5000, many);
	free(many);
	CU_ASSERT_EQUAL_FATAL(
	    r->body_case, GILD__WORKER__V1__FROM_WORKER__BODY_RESULT);
	CU_ASSERT_EQUAL(r->result->list_value->items[0]->list_value->n_items,
	    5000);
	CU_ASSERT_EQUAL(r->result->list_value->items[0]
			    ->list_value->items[4999]
			    ->int_value,
	    4999);
	gild__worker__v1__from_worker__free_unpacked(r, NULL);
}

/* ------------------------------------------------ gild-worker end to end */

struct child {
	pid_t pid;
	int fd;
};

/* Starts gild-worker for app_spec; its stdout goes to *out_fd (a pipe's
 * read end) when out_fd is not NULL. */
static int
spawn_worker_out(struct child *c, const char *app_spec, int *out_fd)
{
	int sv[2];
	char bin[512], fdarg[16];
	const char *b = getenv("B");
	const char *w = getenv("GILD_WORKER");

	if (w != NULL && *w)
		snprintf(bin, sizeof(bin), "%s", w);
	else
		snprintf(
		    bin, sizeof(bin), "%s/gild-worker", b && *b ? b : "build");
	if (access(bin, X_OK) == -1) {
		fprintf(stderr, "\n  %s: %s\n", bin, strerror(errno));
		return -1;
	}
	int po[2] = {-1, -1};
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return -1;
	if (out_fd != NULL && pipe2(po, O_CLOEXEC) == -1)
		return -1;
	c->pid = fork();
	if (c->pid == -1)
		return -1;
	if (c->pid == 0) {
		int fd = dup(sv[1]); /* without CLOEXEC */
		if (po[1] != -1)
			dup2(po[1], 1);
		snprintf(fdarg, sizeof(fdarg), "%d", fd);
		execl(bin, "gild-worker", "--fd", fdarg, "--app", app_spec,
		    "--slot", "0", (char *) NULL);
		_exit(127);
	}
	close(sv[1]);
	c->fd = sv[0];
	if (out_fd != NULL) {
		close(po[1]);
		*out_fd = po[0];
	}
	return 0;
}

static int
spawn_worker(struct child *c, const char *app_spec)
{
	return spawn_worker_out(c, app_spec, NULL);
}

/* Reads one FromWorker within 30 s (NULL on timeout, EOF or junk). */
static Gild__Worker__V1__FromWorker *
read_reply(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint8_t *buf = NULL;
	size_t len = 0;
	Gild__Worker__V1__FromWorker *r;

	if (poll(&p, 1, 30000) != 1)
		return NULL;
	if (frame_read(fd, &buf, &len, FRAME_MAX_PAYLOAD) != 0)
		return NULL;
	r = gild__worker__v1__from_worker__unpack(NULL, len, buf);
	free(buf);
	return r;
}

/* Waits up to 30 s for the child; returns its exit status or -1. */
static int
wait_exit(pid_t pid)
{
	int st;
	for (int i = 0; i < 3000; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st)
			                     : 128 + WTERMSIG(st);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static Gild__Worker__V1__FromWorker *
roundtrip(struct child *c, uint8_t *buf, size_t len)
{
	CU_ASSERT_EQUAL(frame_write(c->fd, buf, len), 0);
	free(buf);
	return read_reply(c->fd);
}

static void
test_worker_binary(void)
{
	struct child c;
	Gild__Worker__V1__FromWorker *r;
	uint8_t *buf;
	size_t len;

	CU_ASSERT_EQUAL_FATAL(spawn_worker(&c, app_path), 0);
	r = read_reply(c.fd);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->job_id, 0);
	CU_ASSERT_EQUAL_FATAL(
	    r->body_case, GILD__WORKER__V1__FROM_WORKER__BODY_HELLO);
	CU_ASSERT_EQUAL(r->hello->pid, c.pid);
	CU_ASSERT_EQUAL(r->hello->n_functions, 11);
	if (r->hello->n_functions == 11) {
		CU_ASSERT_STRING_EQUAL(r->hello->functions[0], "add");
		CU_ASSERT_STRING_EQUAL(r->hello->functions[10], "wrapped");
	}
	CU_ASSERT(contains(r->hello->python_version, "3."));
	CU_ASSERT_EQUAL(strchr(r->hello->python_version, ' '), NULL);
	CU_ASSERT_EQUAL(r->hello->gil_enabled, 1);
	gild__worker__v1__from_worker__free_unpacked(r, NULL);

	buf = enc_call(101, "wrapped", 1,
	    (V *[]){v_big((uint8_t[]){0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 10)}, 0,
	    NULL, &len);
	r = roundtrip(&c, buf, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->job_id, 101);
	CU_ASSERT_EQUAL_FATAL(
	    r->body_case, GILD__WORKER__V1__FROM_WORKER__BODY_RESULT);
	CU_ASSERT_EQUAL_FATAL(
	    r->result->kind_case, GILD__V1__VALUE__KIND_LIST_VALUE);
	CU_ASSERT_EQUAL_FATAL(r->result->list_value->n_items, 2);
	CU_ASSERT_EQUAL(r->result->list_value->items[1]->kind_case,
	    GILD__V1__VALUE__KIND_BIG_INT_VALUE);
	CU_ASSERT_EQUAL(r->result->list_value->items[1]
	                    ->big_int_value->le_twos_complement.len,
	    10);
	gild__worker__v1__from_worker__free_unpacked(r, NULL);

	buf = enc_call(102, "say", 1, (V *[]){v_str("test")}, 0, NULL, &len);
	r = roundtrip(&c, buf, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(
	    r->body_case, GILD__WORKER__V1__FROM_WORKER__BODY_RESULT);
	gild__worker__v1__from_worker__free_unpacked(r, NULL);

	buf = enc_call(103, "boom", 1, (V *[]){v_int(5)}, 0, NULL, &len);
	r = roundtrip(&c, buf, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT(contains(r->error->traceback, "in boom"));
	CU_ASSERT(contains(r->error->traceback, "Traceback (most recent call"));
	expect_error(
	    r, 103, GILD__V1__CODE__PYTHON_ERROR, "gapp.MyError", "bad n: 5");

	buf = enc_call(104, "missing", 0, NULL, 0, NULL, &len);
	r = roundtrip(&c, buf, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	expect_error(r, 104, GILD__V1__CODE__NOT_FOUND, NULL,
	    "function 'missing' not found in app '");

	buf = malloc(4);
	memcpy(buf, "\x08\x69\x12\x30", 4); /* job 105, truncated call */
	r = roundtrip(&c, buf, 4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	expect_error(
	    r, 105, GILD__V1__CODE__INVALID_ARGUMENT, NULL, "malformed call");

	buf = enc_call(106, "leave", 0, NULL, 0, NULL, &len);
	r = roundtrip(&c, buf, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	expect_error(r, 106, GILD__V1__CODE__PYTHON_ERROR, "SystemExit", "4");

	/* Still alive after all that. */
	buf =
	    enc_call(107, "add", 2, (V *[]){v_int(1), v_int(1)}, 0, NULL, &len);
	r = roundtrip(&c, buf, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->result->int_value, 2);
	gild__worker__v1__from_worker__free_unpacked(r, NULL);

	close(c.fd);
	CU_ASSERT_EQUAL(wait_exit(c.pid), 0);
}

static void
test_worker_startup_error(void)
{
	static const struct {
		const char *file;
		const char *src;
		Gild__V1__Code code;
		const char *type;
		const char *msg;
	} cases[] = {
	    {"bad_import.py", "import os\nraise ValueError('cannot start')\n",
	        GILD__V1__CODE__PYTHON_ERROR, "ValueError", "cannot start"},
	    {"no_such_file.py", NULL, GILD__V1__CODE__NOT_FOUND, "",
	        "does not exist"},
	};
	char path[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct child c;
		Gild__Worker__V1__FromWorker *r;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, cases[i].file);
		if (cases[i].src != NULL)
			write_file(path, cases[i].src);
		CU_ASSERT_EQUAL_FATAL(spawn_worker(&c, path), 0);
		r = read_reply(c.fd);
		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		CU_ASSERT_EQUAL_FATAL(r->body_case,
		    GILD__WORKER__V1__FROM_WORKER__BODY_STARTUP_ERROR);
		CU_ASSERT_EQUAL(r->startup_error->error->code, cases[i].code);
		CU_ASSERT_STRING_EQUAL(
		    r->startup_error->error->python_type, cases[i].type);
		CU_ASSERT(
		    contains(r->startup_error->error->message, cases[i].msg));
		if (cases[i].src != NULL) {
			CU_ASSERT(contains(
			    r->startup_error->error->traceback, cases[i].file));
			/* It starts in the app, not in importlib. */
			CU_ASSERT_PTR_NULL(strstr(
			    r->startup_error->error->traceback, "<frozen"));
		}
		gild__worker__v1__from_worker__free_unpacked(r, NULL);
		close(c.fd);
		CU_ASSERT_EQUAL(wait_exit(c.pid), 3);
	}
}

/* A module name found through PYTHONPATH; print output flushed after each
 * call; app threads run while the worker waits; SIGINT does not stop it. */
static void
test_worker_runtime(void)
{
	static const char src[] =
	    "import threading, time, os, sys\n"
	    "count = 0\n"
	    "def _tick():\n"
	    "    global count\n"
	    "    while True:\n"
	    "        count += 1\n"
	    "        if count == 20:\n"
	    "            open(os.path.join(os.path.dirname(__file__),\n"
	    "                              'ticked'), 'w').close()\n"
	    "        time.sleep(0.001)\n"
	    "threading.Thread(target=_tick, daemon=True).start()\n"
	    "def ticks():\n"
	    "    print('ticks called')\n"
	    "    return count\n"
	    "def env():\n"
	    "    return [os.environ.get('GILD_WORKER_SLOT'), sys.executable]\n";
	char dir[600], path[700], cwd[512], buf[256];
	struct child c;
	Gild__Worker__V1__FromWorker *r;
	uint8_t *msg;
	size_t len;
	ssize_t n;
	int out;

	snprintf(dir, sizeof(dir), "%s/pp", tmpdir);
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/bgapp.py", dir);
	write_file(path, src);
	CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
	setenv("PYTHONPATH", dir, 1);
	CU_ASSERT_EQUAL_FATAL(spawn_worker_out(&c, "bgapp", &out), 0);
	unsetenv("PYTHONPATH");
	r = read_reply(c.fd);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL_FATAL(
	    r->body_case, GILD__WORKER__V1__FROM_WORKER__BODY_HELLO);
	CU_ASSERT_EQUAL_FATAL(r->hello->n_functions, 2);
	CU_ASSERT_STRING_EQUAL(r->hello->functions[0], "env");
	CU_ASSERT_STRING_EQUAL(r->hello->functions[1], "ticks");
	gild__worker__v1__from_worker__free_unpacked(r, NULL);

	/* Sent nothing, the worker is blocked reading: _tick must run (it
	 * says so after 20 turns; 30 s is a bound only a hang reaches). */
	snprintf(path, sizeof(path), "%s/ticked", dir);
	for (int i = 0; i < 3000 && access(path, F_OK) != 0; i++)
		usleep(10000);
	CU_ASSERT_EQUAL(access(path, F_OK), 0);
	kill(c.pid, SIGINT);
	msg = enc_call(1, "ticks", 0, NULL, 0, NULL, &len);
	r = roundtrip(&c, msg, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL_FATAL(
	    r->body_case, GILD__WORKER__V1__FROM_WORKER__BODY_RESULT);
	if (r->result->int_value < 20)
		fprintf(stderr, "\n  only %lld ticks\n",
		    (long long) r->result->int_value);
	CU_ASSERT(r->result->int_value >= 20);
	gild__worker__v1__from_worker__free_unpacked(r, NULL);
	struct pollfd p = {.fd = out, .events = POLLIN};
	CU_ASSERT_EQUAL(poll(&p, 1, 5000), 1);
	n = read(out, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	CU_ASSERT(contains(buf, "ticks called\n"));

	msg = enc_call(2, "env", 0, NULL, 0, NULL, &len);
	r = roundtrip(&c, msg, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL_FATAL(
	    r->body_case, GILD__WORKER__V1__FROM_WORKER__BODY_RESULT);
	CU_ASSERT_EQUAL_FATAL(r->result->list_value->n_items, 2);
	CU_ASSERT_EQUAL(r->result->list_value->items[0]->str_value.len, 1);
	CU_ASSERT(memcmp(r->result->list_value->items[0]->str_value.data, "0",
	    1) == 0);
	/* sys.executable is the real interpreter, not whatever is on PATH. */
	CU_ASSERT(memmem(r->result->list_value->items[1]->str_value.data,
	    r->result->list_value->items[1]->str_value.len, "/bin/python3",
	    11) != NULL);
	gild__worker__v1__from_worker__free_unpacked(r, NULL);

	close(c.fd);
	CU_ASSERT_EQUAL(wait_exit(c.pid), 0);
	close(out);
}

/* ------------------------------------------------------------------ main */

static int
suite_init(void)
{
	werr err = {0};

	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(app_path, sizeof(app_path), "%s/gapp.py", tmpdir);
	FILE *f = fopen(app_path, "w");
	if (f == NULL)
		return -1;
	fputs(app_src, f);
	fclose(f);
	if (interp_init("test_convert", &err) == -1) {
		fprintf(stderr, "interp_init: %s\n", err.message);
		werr_clear(&err);
		return -1;
	}
	if (convert_init() == -1)
		return -1;
	globals = PyDict_New();
	PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins());
	static const char *mods[] = {"numpy", "math", "struct", "array",
	    "functools", "collections", "enum", "sys"};
	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		PyObject *m = PyImport_ImportModule(mods[i]);
		if (m == NULL) {
			PyErr_Print();
			return -1;
		}
		PyDict_SetItemString(globals, i == 0 ? "np" : mods[i], m);
		Py_DECREF(m);
	}
	return 0;
}

static int
suite_clean(void)
{
	char cmd[600];

	app_free(the_app);
	the_app = NULL;
	Py_CLEAR(globals);
	convert_fini();
	interp_fini();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	CU_pSuite s;

	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("worker", suite_init, suite_clean);
	if (s == NULL ||
	    !CU_add_test(
	        s, "Value->Python->Value scalars", test_roundtrip_scalars) ||
	    !CU_add_test(s, "Value->Python->Value containers, tensors",
	        test_roundtrip_containers) ||
	    !CU_add_test(s, "list map keys become tuples", test_map_list_key) ||
	    !CU_add_test(
	        s, "16 MiB float32 tensor, no second copy", test_big_tensor) ||
	    !CU_add_test(s, "tensors as memoryview without numpy",
	        test_memoryview_fallback) ||
	    !CU_add_test(s, "Python->Value->Python", test_python_side) ||
	    !CU_add_test(s, "big ints are shortest", test_bigint_shortest) ||
	    !CU_add_test(s, "Value->Python errors", test_to_py_errors) ||
	    !CU_add_test(s, "pickle gate", test_pickle_gate) ||
	    !CU_add_test(s, "Python->Value errors", test_from_py_errors) ||
	    !CU_add_test(s, "app export rules", test_app_exports) ||
	    !CU_add_test(s, "app load errors", test_app_load_errors) ||
	    !CU_add_test(s, "job: calls and errors", test_job_calls) ||
	    !CU_add_test(
	        s, "job: malformed and deep messages", test_job_malformed) ||
	    !CU_add_test(s, "job: fields given twice, broken values",
	        test_job_duplicates) ||
	    !CU_add_test(s, "gild-worker end to end", test_worker_binary) ||
	    !CU_add_test(
	        s, "gild-worker startup errors", test_worker_startup_error) ||
	    !CU_add_test(s,
	        "gild-worker: PYTHONPATH, stdout, threads, "
	        "SIGINT",
	        test_worker_runtime)) {
		CU_cleanup_registry();
		return 1;
	}
	return test_run_all();
}
