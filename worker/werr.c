/* werr: worker errors as gild.v1.Error fields, including Python exceptions
 * turned into a type name, a message and a formatted traceback. */
#include "werr.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Past this length werr_prefix stops adding context. */
#define WERR_PREFIX_MAX 600

void
werr_clear(werr *e)
{
	if (e == NULL)
		return;
	free(e->message);
	free(e->python_type);
	free(e->traceback);
	memset(e, 0, sizeof(*e));
}

int
werr_set(
    werr *e, Gild__V1__Code code, const char *python_type, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	werr_clear(e);
	e->code = code;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	va_end(ap);
	e->message = msg;
	e->python_type = python_type != NULL ? strdup(python_type) : NULL;
	return -1;
}

void
werr_prefix(werr *e, const char *fmt, ...)
{
	va_list ap;
	char *ctx = NULL;
	char *joined = NULL;
	const char *msg = e->message != NULL ? e->message : "";

	if (strlen(msg) > WERR_PREFIX_MAX)
		return;
	va_start(ap, fmt);
	if (vasprintf(&ctx, fmt, ap) == -1)
		ctx = NULL;
	va_end(ap);
	if (ctx == NULL)
		return;
	if (asprintf(&joined, "%s%s", ctx, msg) != -1) {
		free(e->message);
		e->message = joined;
	}
	free(ctx);
}

/* Returns a malloc'd UTF-8 copy of str(obj), or NULL. Lone surrogates are
 * escaped rather than failing. Clears any Python exception it causes. */
static char *
str_dup(PyObject *obj)
{
	PyObject *s = NULL;
	PyObject *b = NULL;
	char *out = NULL;

	s = PyObject_Str(obj);
	if (s == NULL)
		goto fail;
	b = PyUnicode_AsEncodedString(s, "utf-8", "backslashreplace");
	if (b == NULL)
		goto fail;
	out = strdup(PyBytes_AS_STRING(b));
fail:
	PyErr_Clear();
	Py_XDECREF(s);
	Py_XDECREF(b);
	return out;
}

char *
werr_type_name(PyTypeObject *tp)
{
	PyObject *mod = NULL;
	PyObject *qual = NULL;
	char *m = NULL;
	char *q = NULL;
	char *out = NULL;

	mod = PyObject_GetAttrString((PyObject *) tp, "__module__");
	qual = PyObject_GetAttrString((PyObject *) tp, "__qualname__");
	if (qual == NULL || (q = str_dup(qual)) == NULL) {
		out = strdup(tp->tp_name);
		goto done;
	}
	if (mod != NULL && PyUnicode_Check(mod) &&
	    PyUnicode_CompareWithASCIIString(mod, "builtins") != 0 &&
	    (m = str_dup(mod)) != NULL) {
		if (asprintf(&out, "%s.%s", m, q) == -1)
			out = NULL;
	} else {
		out = strdup(q);
	}
done:
	PyErr_Clear();
	free(m);
	free(q);
	Py_XDECREF(mod);
	Py_XDECREF(qual);
	return out;
}

PyObject *
werr_take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
	return PyErr_GetRaisedException();
#else
	PyObject *type = NULL;
	PyObject *value = NULL;
	PyObject *tb = NULL;

	PyErr_Fetch(&type, &value, &tb);
	if (type == NULL)
		return NULL;
	PyErr_NormalizeException(&type, &value, &tb);
	if (value != NULL && tb != NULL)
		PyException_SetTraceback(value, tb);
	Py_XDECREF(type);
	Py_XDECREF(tb);
	return value;
#endif
}

/* Returns malloc'd "".join(traceback.format_exception(exc)), or NULL. */
static char *
format_traceback(PyObject *exc)
{
	PyObject *mod = NULL;
	PyObject *lines = NULL;
	PyObject *empty = NULL;
	PyObject *text = NULL;
	char *out = NULL;

	mod = PyImport_ImportModule("traceback");
	if (mod == NULL)
		goto fail;
	lines = PyObject_CallMethod(mod, "format_exception", "O", exc);
	if (lines == NULL)
		goto fail;
	empty = PyUnicode_FromString("");
	if (empty == NULL)
		goto fail;
	text = PyUnicode_Join(empty, lines);
	if (text == NULL)
		goto fail;
	out = str_dup(text);
fail:
	PyErr_Clear();
	Py_XDECREF(mod);
	Py_XDECREF(lines);
	Py_XDECREF(empty);
	Py_XDECREF(text);
	return out;
}

int
werr_from_python(werr *e, Gild__V1__Code code)
{
	PyObject *exc = werr_take_exception();
	char *type = NULL;

	if (exc == NULL)
		return werr_set(
		    e, code, NULL, "unknown error (no Python exception)");
	type = werr_type_name(Py_TYPE(exc));
	werr_clear(e);
	e->code = code;
	e->python_type = type;
	e->message = str_dup(exc);
	if (e->message == NULL) {
		char *m = NULL;
		if (asprintf(&m, "<unprintable %s object>",
		        type != NULL ? type : "exception") != -1)
			e->message = m;
	}
	e->traceback = format_traceback(exc);
	Py_DECREF(exc);
	return -1;
}

void
werr_to_proto(const werr *e, Gild__V1__Error *out)
{
	out->code = e->code;
	out->message = e->message != NULL
	                   ? e->message
	                   : (char *) "out of memory formatting the error";
	out->python_type =
	    e->python_type != NULL ? e->python_type : (char *) "";
	out->traceback = e->traceback != NULL ? e->traceback : (char *) "";
}
