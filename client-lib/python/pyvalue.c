/* pyvalue: the gild._native side of pyconv. A value to send is converted
 * to a gild.v1.Value tree over the Python objects and packed once (with
 * the GIL released when large) into a gild_value libgild keeps encoded;
 * results and chunks arrive encoded (gild__keep_encoded) and pyconv reads
 * them into Python objects, copying large payloads without the GIL. */
#include "pyvalue.h"
#include "codec.h"
#include "pyconv.h"
#include "value.h"

#include <stdlib.h>

int
pyvalue_init(void)
{
	return pyconv_init();
}

void
pyvalue_use_numpy(int on)
{
	pyconv_use_numpy(on);
}

static enum pyconv_pickle
mode(int pickle)
{
	return pickle ? PYCONV_PICKLE_ALLOW : PYCONV_PICKLE_WRAP;
}

/* An error of libgild's codec on a value pyconv made or read (the same
 * limits): only "out of memory" is expected. */
static void
codec_failed(int rc, const gild_error *err)
{
	if (rc == GILD_RESOURCE_EXHAUSTED)
		PyErr_NoMemory();
	else
		PyErr_SetString(PyExc_ValueError, err->message);
}

/* obj, at `at`, as a new gild_value: the gild.v1.Value pyconv packs,
 * kept encoded (VALUE_ENCODED, client-lib/value.h): libgild's codec
 * writes it into the request as it is. NULL with an exception set. */
static gild_value *
from_py_at(PyObject *obj, const pyconv_at *at, int pickle)
{
	Gild__V1__Value *tree;
	pyconv_pins *pins;
	gild_value *v;
	uint8_t *buf;
	size_t len;
	int rc;

	if (pyconv_from_py(obj, at, mode(pickle), &tree, &pins) == -1)
		return NULL;
	rc = pyconv_pack(tree, &buf, &len);
	pyconv_value_free(tree, pins);
	if (rc == -1)
		return NULL;
	if ((v = value_encoded(buf, len)) == NULL) {
		free(buf);
		PyErr_NoMemory();
	}
	return v;
}

gild_value *
pyvalue_from_py(PyObject *obj, int pickle)
{
	return from_py_at(obj, NULL, pickle);
}

int
pyvalue_call_args(PyObject *args, PyObject *kwargs, int pickle,
    gild_value **va, gild_value **vk)
{
	PyObject *items = NULL, *kv = NULL;
	gild_value *l = NULL, *m = NULL, *key = NULL, *val = NULL;
	gild_error err = {0};

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
		if ((l = gild_list()) == NULL) {
			PyErr_NoMemory();
			goto fail;
		}
		for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(items); i++) {
			pyconv_at at = {NULL, PYCONV_AT_ARG, i, NULL};

			if ((val = from_py_at(PyTuple_GET_ITEM(items, i), &at,
				 pickle)) == NULL)
				goto fail;
			if (gild_list_append(l, val) != GILD_OK) {
				PyErr_NoMemory();
				goto fail;
			}
			val = NULL;
		}
	}
	if (kwargs != Py_None && PyDict_GET_SIZE(kwargs) > 0) {
		if ((kv = PyDict_Items(kwargs)) == NULL)
			goto fail;
		if ((m = gild_map()) == NULL) {
			PyErr_NoMemory();
			goto fail;
		}
		for (Py_ssize_t i = 0; i < PyList_GET_SIZE(kv); i++) {
			PyObject *k =
			    PyTuple_GET_ITEM(PyList_GET_ITEM(kv, i), 0);
			PyObject *x =
			    PyTuple_GET_ITEM(PyList_GET_ITEM(kv, i), 1);
			pyconv_at at = {NULL, PYCONV_AT_KWARG, i, k};

			if (!PyUnicode_Check(k)) {
				PyErr_Format(PyExc_TypeError,
				    "keyword argument names must be str, not "
				    "%s",
				    Py_TYPE(k)->tp_name);
				goto fail;
			}
			/* The name is a plain str: libgild writes it as the
			 * Kwarg's name, not as a Value. */
			if ((key = from_py_at(k, &at, pickle)) == NULL ||
			    (val = from_py_at(x, &at, pickle)) == NULL)
				goto fail;
			if (codec_value_plain(&key, &err) != GILD_OK) {
				codec_failed(err.code, &err);
				gild_error_clear(&err);
				goto fail;
			}
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

/* The largest payload directly in v (a str, bytes, pickle or tensor), 0
 * for the others: whether encoding it is worth releasing the GIL. */
static size_t
payload_len(const gild_value *v)
{
	size_t len = 0;

	switch (gild_value_kind(v)) {
	case GILD_STR:
		gild_value_str(v, &len);
		break;
	case GILD_BYTES:
	case GILD_PICKLE:
		gild_value_bytes(v, &len);
		break;
	case GILD_TENSOR:
		gild_tensor_data(v, &len);
		break;
	default:
		break;
	}
	return len;
}

PyObject *
pyvalue_to_py(const gild_value *v, int pickle)
{
	codec_buf b = {0};
	gild_error err = {0};
	const uint8_t *p;
	PyObject *o = NULL;
	size_t len;
	int rc;

	if (v == NULL)
		Py_RETURN_NONE;
	/* Results and chunks come encoded (gild__keep_encoded). */
	if ((p = value_encoded_bytes(v, &len)) != NULL)
		return pyconv_wire_to_py(p, len, mode(pickle));
	/* Any other value: encoded first. v belongs to the caller, not to
	 * Python: nothing else touches it meanwhile. */
	if (payload_len(v) < PYCONV_BIG_COPY) {
		rc = codec_encode_value(&b, v, &err);
	} else {
		Py_BEGIN_ALLOW_THREADS
		rc = codec_encode_value(&b, v, &err);
		Py_END_ALLOW_THREADS
	}
	if (rc != GILD_OK)
		codec_failed(rc, &err);
	else
		o = pyconv_wire_to_py(
		    codec_buf_data(&b), codec_buf_len(&b), mode(pickle));
	codec_buf_fini(&b);
	gild_error_clear(&err);
	return o;
}
