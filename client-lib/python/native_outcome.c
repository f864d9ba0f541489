/* gild._native: outcome tuples (code, value, error), and the exceptions a
 * call that was never sent raises (native.h). */
#include "native.h"

/* ---------------------------------------------------------------- outcomes */

/* s as a new str ("" for NULL); bytes that are not UTF-8 are replaced. */
static PyObject *
text(const char *s)
{
	return PyUnicode_DecodeUTF8(s != NULL ? s : "",
	    s != NULL ? (Py_ssize_t) strlen(s) : 0, "replace");
}

/* (code, message, python_type, traceback) of a failure, new. code is the
 * error's own unless it has none. */
static PyObject *
error_tuple(int code, const gild_error *e)
{
	PyObject *t = PyTuple_New(4);
	PyObject *items[4];

	if (t == NULL)
		return NULL;
	items[0] = PyLong_FromLong(e->code != 0 ? e->code : code);
	items[1] = text(e->message);
	items[2] = text(e->python_type);
	items[3] = text(e->traceback);
	for (int i = 0; i < 4; i++) {
		if (items[i] == NULL) {
			for (int k = i + 1; k < 4; k++)
				Py_XDECREF(items[k]);
			Py_DECREF(t);
			return NULL;
		}
		PyTuple_SET_ITEM(t, i, items[i]);
	}
	return t;
}

/* The outcome (code, value, error): value (new, taken; NULL for None) is
 * used on GILD_OK, else the error tuple of e. */
PyObject *
outcome_py(int code, PyObject *value, const gild_error *e)
{
	PyObject *t = PyTuple_New(3);
	PyObject *c = PyLong_FromLong(code);
	PyObject *err = NULL;

	if (code != GILD_OK || PyErr_Occurred())
		Py_CLEAR(value);
	if (PyErr_Occurred()) {
		Py_XDECREF(t);
		Py_XDECREF(c);
		return NULL;
	}
	if (value == NULL)
		value = Py_NewRef(Py_None);
	if (code == GILD_OK || e == NULL)
		err = Py_NewRef(Py_None);
	else
		err = error_tuple(code, e);
	if (t == NULL || c == NULL || err == NULL) {
		Py_XDECREF(t);
		Py_XDECREF(c);
		Py_XDECREF(err);
		Py_DECREF(value);
		return NULL;
	}
	PyTuple_SET_ITEM(t, 0, c);
	PyTuple_SET_ITEM(t, 1, value);
	PyTuple_SET_ITEM(t, 2, err);
	return t;
}

/* Takes the pending exception: its value (new) and type (new, in *type). */
PyObject *
take_exception(PyObject **type)
{
	PyObject *val;
#if PY_VERSION_HEX >= 0x030C0000
	val = PyErr_GetRaisedException();
	*type = Py_NewRef((PyObject *) Py_TYPE(val));
#else
	PyObject *tb;

	PyErr_Fetch(type, &val, &tb);
	PyErr_NormalizeException(type, &val, &tb);
	Py_XDECREF(tb);
#endif
	return val;
}

/* The outcome of a result that cannot be made a Python object (the
 * pending exception, taken): INTERNAL, saying why. So one bad result (a
 * pickle whose class this process cannot import, text that is not
 * UTF-8) fails its own call, never the thread that polls for every
 * call's. NULL (the exception left pending) when out of memory. */
static PyObject *
unreadable(void)
{
	gild_error e = {GILD_INTERNAL, NULL, NULL, NULL};
	PyObject *type, *val, *msg, *out;
	const char *m;
	size_t len;

	if (PyErr_ExceptionMatches(PyExc_MemoryError))
		return NULL;
	val = take_exception(&type);
	msg = val != NULL ? PyObject_Str(val) : NULL;
	if (msg == NULL || (m = PyUnicode_AsUTF8(msg)) == NULL) {
		PyErr_Clear();
		m = "";
	}
	len = strlen(m) + 64;
	if ((e.message = PyMem_Malloc(len)) != NULL) {
		snprintf(e.message, len, "cannot read the result: %s", m);
		e.python_type = (char *) ((PyTypeObject *) type)->tp_name;
		out = outcome_py(GILD_INTERNAL, NULL, &e);
		PyMem_Free(e.message);
	} else {
		out = PyErr_NoMemory();
	}
	Py_XDECREF(msg);
	Py_XDECREF(val);
	Py_XDECREF(type);
	return out;
}

/* The outcome of a libgild call that gave code and, on GILD_OK, v (taken:
 * converted, then freed; pickles unpickled with pickle): a result that
 * cannot be converted becomes an INTERNAL error (unreadable). NULL with
 * an exception only when out of memory. */
PyObject *
outcome_value(int code, gild_value *v, const gild_error *e, int pickle)
{
	PyObject *o = NULL;

	if (code == GILD_OK && v != NULL) {
		o = pyvalue_to_py(v, pickle);
		gild_value_free(v);
		if (o == NULL)
			return unreadable();
	} else {
		gild_value_free(v);
	}
	return outcome_py(code, o, e);
}

/* The outcome of res (cleared here). */
PyObject *
outcome_result(gild_result *res, int pickle)
{
	gild_value *v = res->value;
	PyObject *out;

	res->value = NULL;
	out = outcome_value(res->code, v, &res->error, pickle);
	gild_result_clear(res);
	return out;
}

/* Raises the exception for a call that failed before it was sent (libgild
 * code and err): ConnectionError (UNAVAILABLE), ValueError
 * (INVALID_ARGUMENT), TimeoutError (DEADLINE_EXCEEDED), MemoryError
 * (RESOURCE_EXHAUSTED), LookupError (NOT_FOUND), else RuntimeError; its
 * `code` attribute is the gild code. Returns NULL. */
PyObject *
raise_gild(int code, const gild_error *err)
{
	PyObject *type, *msg, *exc, *num;

	switch (code) {
	case GILD_UNAVAILABLE:
		type = PyExc_ConnectionError;
		break;
	case GILD_INVALID_ARGUMENT:
		type = PyExc_ValueError;
		break;
	case GILD_DEADLINE_EXCEEDED:
		type = PyExc_TimeoutError;
		break;
	case GILD_RESOURCE_EXHAUSTED:
		type = PyExc_MemoryError;
		break;
	case GILD_NOT_FOUND:
		type = PyExc_LookupError;
		break;
	default:
		type = PyExc_RuntimeError;
		break;
	}
	msg = err != NULL && err->message != NULL ? text(err->message)
	                                          : text(gild_code_name(code));
	if (msg == NULL)
		return NULL;
	exc = PyObject_CallOneArg(type, msg);
	Py_DECREF(msg);
	if (exc == NULL)
		return NULL;
	if ((num = PyLong_FromLong(code)) == NULL ||
	    PyObject_SetAttrString(exc, "code", num) == -1) {
		Py_XDECREF(num);
		Py_DECREF(exc);
		return NULL;
	}
	Py_DECREF(num);
	PyErr_SetObject(type, exc);
	Py_DECREF(exc);
	return NULL;
}

/* PyArg "O&" converter: a call or actor id (an int in uint64 range). */
int
conv_id(PyObject *o, void *out)
{
	unsigned long long x;

	if (!PyLong_Check(o) || PyBool_Check(o)) {
		PyErr_Format(PyExc_TypeError, "an id must be an int, not %s",
		    Py_TYPE(o)->tp_name);
		return 0;
	}
	x = PyLong_AsUnsignedLongLong(o);
	if (x == (unsigned long long) -1 && PyErr_Occurred())
		return 0;
	*(uint64_t *) out = x;
	return 1;
}
