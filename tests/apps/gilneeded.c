/* A test extension module that does not declare free-threading support
 * (no Py_mod_gil slot): importing it into a free-threaded CPython turns the
 * GIL back on, which gild must notice and report (test_runtime.c). */
#include <Python.h>

static PyObject *
answer(PyObject *self, PyObject *unused)
{
	return PyLong_FromLong(42);
}

static PyMethodDef methods[] = {
    {"answer", answer, METH_NOARGS, "Returns 42."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "gilneeded",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit_gilneeded(void)
{
	return PyModule_Create(&module_def);
}
