/* interp: starting and stopping the embedded interpreter, isolated from the
 * environment the way STYLE.md asks, with the paths gild adds itself. */
#include "interp.h"

#include "interrupt.h"

#include <Python.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef GILD_PYTHON_EXE
#define GILD_PYTHON_EXE_OR_EMBEDDED GILD_PYTHON_EXE
#else
#define GILD_PYTHON_EXE_OR_EMBEDDED "embedded"
#endif

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

/* A free-threaded interpreter turns the GIL back on when it imports an
 * extension module that does not declare it can run without one, and says
 * so with a RuntimeWarning naming the module. This hook keeps those names
 * (gild_gil_causes in _gild_worker) and still shows the warning. */
static const char gil_hook[] =
    "import re, sys, warnings, _gild_worker\n"
    "_gild_worker.gil_causes = []\n"
    "def _hook(show):\n"
    "    def showwarning(message, category, *args, **kwargs):\n"
    "        m = re.search(r\"lock \\(GIL\\) has been enabled to load module \"\n"
    "                      r\"'([^']+)'\", str(message))\n"
    "        if m and m.group(1) not in _gild_worker.gil_causes:\n"
    "            _gild_worker.gil_causes.append(m.group(1))\n"
    "        return show(message, category, *args, **kwargs)\n"
    "    return showwarning\n"
    "warnings.showwarning = _hook(warnings.showwarning)\n"
    "warnings.filterwarnings('always', category=RuntimeWarning,\n"
    "                        message='.*GIL.*')\n"
    "del _hook\n";

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
#ifdef Py_GIL_DISABLED
	/* Isolated mode ignores PYTHON_GIL: honour it here, so an operator
	 * can keep the GIL off (0) despite an extension that does not declare
	 * free-threading support, or force it on (1). */
	{
		const char *gil = getenv("PYTHON_GIL");
		if (gil != NULL && (strcmp(gil, "0") == 0 || strcmp(gil, "1") == 0))
			config.enable_gil = gil[0] - '0';
	}
#endif
	st = Py_InitializeFromConfig(&config);
	PyConfig_Clear(&config);
	if (PyStatus_Exception(st))
		goto fail_status;
	if (add_pythonpath(err) == -1 || add_gild_package(err) == -1 ||
	    import_worker_module(err) == -1)
		return -1;
	if (interp_free_threaded() && PyRun_SimpleString(gil_hook) != 0)
		return werr_set(err, GILD__V1__CODE__INTERNAL, NULL,
		    "cannot watch for the GIL being enabled");
	return 0;
fail_config:
	PyConfig_Clear(&config);
fail_status:
	return werr_set(err, GILD__V1__CODE__INTERNAL, NULL,
	    "cannot start Python: %s%s%s", st.func != NULL ? st.func : "",
	    st.func != NULL ? ": " : "",
	    st.err_msg != NULL ? st.err_msg : "unknown error");
}

int
interp_free_threaded(void)
{
#ifdef Py_GIL_DISABLED
	return 1;
#else
	return 0;
#endif
}

size_t
interp_gil_causes(char *buf, size_t cap)
{
	PyObject *m = PyImport_ImportModule("_gild_worker");
	PyObject *list = m != NULL ? PyObject_GetAttrString(m, "gil_causes")
				   : NULL;
	PyObject *s = NULL, *sep = PyUnicode_FromString(", ");
	const char *u;
	size_t n = 0;

	if (cap > 0)
		buf[0] = '\0';
	if (list != NULL && sep != NULL && PyList_Check(list) &&
	    PyList_GET_SIZE(list) > 0 &&
	    (s = PyUnicode_Join(sep, list)) != NULL &&
	    (u = PyUnicode_AsUTF8(s)) != NULL && cap > 0) {
		snprintf(buf, cap, "%s", u);
		n = (size_t) PyList_GET_SIZE(list);
	}
	PyErr_Clear();
	Py_XDECREF(s);
	Py_XDECREF(sep);
	Py_XDECREF(list);
	Py_XDECREF(m);
	return n;
}

/* Where Debian's system Python keeps its packages. */
#define SYSTEM_DIST_PACKAGES "/usr/lib/python3/dist-packages"

/* Whether module top (a top-level name) is installed for the system
 * Python: a package folder, a .py file or an extension module there. */
static int
system_has_module(const char *top)
{
	char path[PATH_MAX];
	char pattern[PATH_MAX];
	glob_t g;
	int found;

	snprintf(path, sizeof(path), "%s/%s", SYSTEM_DIST_PACKAGES, top);
	if (access(path, F_OK) == 0)
		return 1;
	snprintf(path, sizeof(path), "%s/%s.py", SYSTEM_DIST_PACKAGES, top);
	if (access(path, F_OK) == 0)
		return 1;
	snprintf(pattern, sizeof(pattern), "%s/%s.*.so", SYSTEM_DIST_PACKAGES,
	    top);
	found = glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0;
	globfree(&g);
	return found;
}

void
interp_explain_import(werr *err)
{
	const char *msg = err->message;
	const char *q;
	char top[128], version[32], sys_version[64] = "3";
	char link[64];
	ssize_t n;
	size_t len;

	if (err->python_type == NULL || msg == NULL ||
	    strcmp(err->python_type, "ModuleNotFoundError") != 0 ||
	    strncmp(msg, "No module named '", 17) != 0)
		return;
	q = msg + 17;
	len = strcspn(q, ".'");
	if (len == 0 || len >= sizeof(top))
		return;
	memcpy(top, q, len);
	top[len] = '\0';
	interp_python_version(version, sizeof(version));
	if (!system_has_module(top)) {
		werr_prefix(err, "the app imports '%s', which is not installed "
				 "for this worker's Python %s%s (%s): ",
		    top, version, interp_free_threaded() ? " (free-threaded)" : "",
		    GILD_PYTHON_EXE_OR_EMBEDDED);
		return;
	}
	if ((n = readlink("/usr/bin/python3", link, sizeof(link) - 1)) > 0) {
		link[n] = '\0';
		snprintf(sys_version, sizeof(sys_version), "%s",
		    strncmp(link, "python", 6) == 0 ? link + 6 : link);
	}
	werr_prefix(err, "the app imports '%s', which is installed only for the "
			 "system Python %s (%s/%s, from Debian), not for this "
			 "worker's Python %s%s (%s); %s: ",
	    top, sys_version, SYSTEM_DIST_PACKAGES, top, version,
	    interp_free_threaded() ? " (free-threaded)" : "",
	    GILD_PYTHON_EXE_OR_EMBEDDED,
	    interp_free_threaded()
		? "extension modules must be built for the free-threaded "
		  "interpreter: install the package for it, or serve with "
		  "--runtime process"
		: "install the package for this Python");
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

PyObject *
interp_sync_iter(PyObject *res)
{
	PyObject *m, *it;

	if (res == NULL || !PyAsyncGen_CheckExact(res))
		return res;
	if ((m = PyImport_ImportModule("gild._agen")) == NULL) {
		Py_DECREF(res);
		return NULL;
	}
	it = PyObject_CallMethod(m, "iterate", "O", res);
	Py_DECREF(m);
	Py_DECREF(res);
	return it;
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
