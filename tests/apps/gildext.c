/* A C extension module of gild's own, built for each worker's Python (the
 * system 3.11 and the free-threaded 3.13t): a worker that embeds a static
 * libpython must export the C API this module uses, or importing it fails
 * with an undefined symbol (tests/apps/extensions.py, test_features.c). */
#include <Python.h>

/* scale(seq, factor) -> [x * factor for x in seq]; TypeError when seq is
 * not a sequence. */
static PyObject *
scale(PyObject *self, PyObject *args)
{
	PyObject *seq, *factor, *fast, *out;
	Py_ssize_t n;

	if (!PyArg_ParseTuple(args, "OO:scale", &seq, &factor))
		return NULL;
	fast = PySequence_Fast(seq, "scale() needs a sequence");
	if (fast == NULL)
		return NULL;
	n = PySequence_Fast_GET_SIZE(fast);
	if ((out = PyList_New(n)) == NULL)
		goto fail;
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *x = PyNumber_Multiply(
		    PySequence_Fast_GET_ITEM(fast, i), factor); /* new */
		if (x == NULL) {
			Py_CLEAR(out);
			goto fail;
		}
		PyList_SET_ITEM(out, i, x);
	}
fail:
	Py_DECREF(fast);
	return out;
}

/* fail(message): raises ValueError(message). */
static PyObject *
fail(PyObject *self, PyObject *message)
{
	PyErr_SetObject(PyExc_ValueError, message);
	return NULL;
}

static PyMethodDef methods[] = {
    {"scale", scale, METH_VARARGS, "[x * factor for x in seq]"},
    {"fail", fail, METH_O, "Raises ValueError(message)."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
#ifdef Py_GIL_DISABLED
    /* Safe without the GIL: it keeps no state of its own. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "gildext",
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit_gildext(void)
{
	return PyModuleDef_Init(&module_def);
}
