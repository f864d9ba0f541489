/* convert: the worker's settings for pyconv and its errors as werr. */
#include "convert.h"

#include <stdlib.h>

/* Written before any job runs (main.c), read-only after. */
static enum pyconv_pickle pickle_mode = PYCONV_PICKLE_REFUSE;

int
convert_init(void)
{
	return pyconv_init();
}

void
convert_set_pickle(int on)
{
	pickle_mode = on ? PYCONV_PICKLE_ALLOW : PYCONV_PICKLE_REFUSE;
}

void
convert_fini(void)
{
	pyconv_fini();
}

void
convert_set_numpy(int on)
{
	pyconv_use_numpy(on);
}

/* The pending exception of a received value as *err: its message alone
 * (the value is the cause, not the code, so no type and no traceback),
 * PERMISSION_DENIED for a refused pickle, else INVALID_ARGUMENT. */
static void *
received_error(werr *err)
{
	Gild__V1__Code code = PyErr_ExceptionMatches(PyExc_PermissionError)
	    ? GILD__V1__CODE__PERMISSION_DENIED
	    : GILD__V1__CODE__INVALID_ARGUMENT;
	int plain = PyErr_ExceptionMatches(PyExc_ValueError) ||
	    PyErr_ExceptionMatches(PyExc_TypeError) ||
	    PyErr_ExceptionMatches(PyExc_PermissionError);

	werr_from_python(err, code);
	free(err->traceback);
	err->traceback = NULL;
	if (!plain && err->python_type != NULL && err->message != NULL)
		werr_prefix(err, "%s: ", err->python_type);
	free(err->python_type);
	err->python_type = NULL;
	return NULL;
}

PyObject *
convert_wire_to_py(const uint8_t *v, size_t len, werr *err)
{
	PyObject *o = pyconv_wire_to_py(v, len, pickle_mode);

	return o != NULL ? o : received_error(err);
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
	if ((buf = malloc(gild__v1__value__get_packed_size(v) + 1)) == NULL) {
		werr_set(err, GILD__V1__CODE__INTERNAL, NULL, "out of memory");
		return NULL;
	}
	len = gild__v1__value__pack(v, buf);
	o = convert_wire_to_py(buf, len, err);
	free(buf);
	return o;
}

int
convert_from_py(
    PyObject *obj, Gild__V1__Value **out, convert_pins **pins, werr *err)
{
	static const pyconv_at result = {NULL, PYCONV_AT_RESULT, 0, NULL};

	if (pyconv_from_py(obj, &result, pickle_mode, out, pins) == 0)
		return 0;
	werr_from_python(err, GILD__V1__CODE__PYTHON_ERROR);
	free(err->traceback);
	err->traceback = NULL;
	return -1;
}

void
convert_value_free(Gild__V1__Value *v, convert_pins *pins)
{
	pyconv_value_free(v, pins);
}
