/* interp: starting and stopping the embedded interpreter, isolated from the
 * environment the way STYLE.md asks, with the paths gild adds itself. */
#include "interp.h"

#include "interrupt.h"

#include <Python.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* PYTHONPATH is ignored by isolated mode: add its entries at the front, in
 * order, as a plain `python` would. */
static int
add_pythonpath(werr *err)
{
	const char *env = getenv("PYTHONPATH");
	PyObject *path = PySys_GetObject("path"); /* borrowed */
	Py_ssize_t at = 0;
	char *copy = NULL;
	char *save = NULL;
	int rc = -1;

	if (env == NULL || *env == '\0')
		return 0;
	if (path == NULL || !PyList_Check(path))
		return werr_set(err, GILD__V1__CODE__INTERNAL, NULL,
		    "sys.path is not a list");
	copy = strdup(env);
	if (copy == NULL)
		return werr_set(
		    err, GILD__V1__CODE__INTERNAL, NULL, "out of memory");
	for (char *e = strtok_r(copy, ":", &save); e != NULL;
	     e = strtok_r(NULL, ":", &save)) {
		PyObject *s = PyUnicode_DecodeFSDefault(e);
		if (s == NULL || PyList_Insert(path, at++, s) == -1) {
			Py_XDECREF(s);
			werr_from_python(err, GILD__V1__CODE__INTERNAL);
			goto fail;
		}
		Py_DECREF(s);
	}
	rc = 0;
fail:
	free(copy);
	return rc;
}

/* The app-side gild package (`import gild`) for a worker run from a source
 * checkout (build/gild-worker: client-lib/python) or installed by `make
 * install` (PREFIX/libexec/gild/gild-worker: PREFIX/lib/gild/python). Put
 * last on sys.path: one installed for the interpreter itself comes first. */
static int
add_gild_package(werr *err)
{
	static const char *const rel[] = {"../client-lib/python",
	    "../../lib/gild/python"};
	char exe[PATH_MAX], dir[PATH_MAX + 64], probe[PATH_MAX + 96];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	PyObject *path = PySys_GetObject("path"); /* borrowed */
	char *slash;

	if (n <= 0 || path == NULL || !PyList_Check(path))
		return 0;
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) == NULL)
		return 0;
	*slash = '\0';
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		PyObject *s;
		snprintf(dir, sizeof(dir), "%s/%s", exe, rel[i]);
		snprintf(probe, sizeof(probe), "%s/gild/__init__.py", dir);
		if (access(probe, R_OK) != 0)
			continue;
		s = PyUnicode_DecodeFSDefault(dir);
		if (s == NULL || PyList_Append(path, s) == -1) {
			Py_XDECREF(s);
			return werr_from_python(err, GILD__V1__CODE__INTERNAL);
		}
		Py_DECREF(s);
		return 0;
	}
	return 0;
}

/* Imports _gild_worker now, so the interrupt exceptions exist before the
 * first job. */
static int
import_worker_module(werr *err)
{
	PyObject *m = PyImport_ImportModule("_gild_worker");

	if (m == NULL)
		return werr_from_python(err, GILD__V1__CODE__INTERNAL);
	Py_DECREF(m);
	return 0;
}

int
interp_init(const char *argv0, werr *err)
{
	PyPreConfig pre;
	PyConfig config;
	PyStatus st;
	char *argv[1] = {(char *) argv0};

	if (interrupt_register() == -1)
		return werr_set(err, GILD__V1__CODE__INTERNAL, NULL,
		    "cannot register the _gild_worker module");
	PyPreConfig_InitIsolatedConfig(&pre);
	pre.utf8_mode =
	    1; /* worker output and paths are UTF-8 whatever LANG says */
	st = Py_PreInitialize(&pre);
	if (PyStatus_Exception(st))
		goto fail_status;

	PyConfig_InitIsolatedConfig(&config);
	/* SIGINT is ignored and SIGPIPE handled by the worker, not Python. */
	config.install_signal_handlers = 0;
	config.site_import = 1;
	st = PyConfig_SetBytesArgv(&config, 1, argv);
	if (PyStatus_Exception(st))
		goto fail_config;
#ifdef GILD_PYTHON_EXE
	/* Otherwise sys.executable is whatever "python3" PATH finds first,
	 * which multiprocessing and subprocess would then run. */
	if (access(GILD_PYTHON_EXE, X_OK) == 0) {
		st = PyConfig_SetBytesString(
		    &config, &config.executable, GILD_PYTHON_EXE);
		if (PyStatus_Exception(st))
			goto fail_config;
	}
#endif
	st = Py_InitializeFromConfig(&config);
	PyConfig_Clear(&config);
	if (PyStatus_Exception(st))
		goto fail_status;
	if (add_pythonpath(err) == -1 || add_gild_package(err) == -1)
		return -1;
	return import_worker_module(err);
fail_config:
	PyConfig_Clear(&config);
fail_status:
	return werr_set(err, GILD__V1__CODE__INTERNAL, NULL,
	    "cannot start Python: %s%s%s", st.func != NULL ? st.func : "",
	    st.func != NULL ? ": " : "",
	    st.err_msg != NULL ? st.err_msg : "unknown error");
}

int
interp_fini(void)
{
	return Py_FinalizeEx();
}

int
interp_path_prepend(const char *dir, werr *err)
{
	PyObject *path = PySys_GetObject("path"); /* borrowed */
	PyObject *s = NULL;

	if (path == NULL || !PyList_Check(path))
		return werr_set(err, GILD__V1__CODE__INTERNAL, NULL,
		    "sys.path is not a list");
	s = PyUnicode_DecodeFSDefault(dir);
	if (s == NULL || PyList_Insert(path, 0, s) == -1) {
		Py_XDECREF(s);
		return werr_from_python(err, GILD__V1__CODE__INTERNAL);
	}
	Py_DECREF(s);
	return 0;
}

void
interp_python_version(char *buf, size_t cap)
{
	const char *v = Py_GetVersion(); /* "3.11.2 (main, ...) [GCC ...]" */
	size_t n = strcspn(v, " ");

	if (n >= cap)
		n = cap - 1;
	memcpy(buf, v, n);
	buf[n] = '\0';
}

int
interp_gil_enabled(void)
{
	PyObject *sys = PyImport_ImportModule("sys");
	PyObject *r = NULL;
	int on = 1;

	if (sys != NULL && PyObject_HasAttrString(sys, "_is_gil_enabled")) {
		r = PyObject_CallMethod(sys, "_is_gil_enabled", NULL);
		if (r != NULL)
			on = PyObject_IsTrue(r) != 0;
	}
	PyErr_Clear();
	Py_XDECREF(r);
	Py_XDECREF(sys);
	return on;
}

void
interp_flush_stdio(void)
{
	static const char *names[] = {"stdout", "stderr"};

	for (size_t i = 0; i < 2; i++) {
		PyObject *f = PySys_GetObject(names[i]); /* borrowed */
		PyObject *r;
		if (f == NULL || f == Py_None)
			continue;
		r = PyObject_CallMethod(f, "flush", NULL);
		Py_XDECREF(r);
		PyErr_Clear();
	}
}

int
interp_is_coroutine_function(PyObject *fn)
{
	PyObject *inspect = PyImport_ImportModule("inspect");
	PyObject *r = inspect != NULL
			  ? PyObject_CallMethod(inspect, "iscoroutinefunction",
				"O", fn)
			  : NULL;
	int yes = r != NULL && PyObject_IsTrue(r) == 1;

	Py_XDECREF(r);
	Py_XDECREF(inspect);
	PyErr_Clear();
	return yes;
}
