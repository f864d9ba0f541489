/* lifecycle: a worker's environment, its sys.path from --venv and
 * --python-path, gild.worker(), and the app's start, warm-up and stop
 * hooks (registered by gild/_app.py in _HOOKS). */
#include "lifecycle.h"

#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "interp.h"

#ifdef GILD_PYTHON_EXE
#define LIFE_PYTHON_EXE GILD_PYTHON_EXE
#else
#define LIFE_PYTHON_EXE "python3"
#endif

/* A malloc'd copy of tmpl with every "{slot}" replaced by slot, or NULL. */
static char *
substitute(const char *tmpl, const char *slot)
{
	size_t n = 0, sl = strlen(slot);
	const char *p;
	char *out, *o;

	for (p = strstr(tmpl, "{slot}"); p != NULL; p = strstr(p + 6, "{slot}"))
		n++;
	if ((out = malloc(strlen(tmpl) + n * sl + 1)) == NULL)
		return NULL;
	for (o = out, p = tmpl; *p != '\0';) {
		if (strncmp(p, "{slot}", 6) == 0) {
			memcpy(o, slot, sl);
			o += sl;
			p += 6;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}

/* os.environ[name] = value (which also calls putenv); errors cleared. */
static void
tell_os_environ(const char *name, const char *value)
{
	PyObject *os = PyImport_ImportModule("os");
	PyObject *env = os != NULL ? PyObject_GetAttrString(os, "environ")
				   : NULL;
	PyObject *v = PyUnicode_DecodeFSDefault(value);

	if (env == NULL || v == NULL ||
	    PyMapping_SetItemString(env, name, v) == -1)
		PyErr_Clear();
	Py_XDECREF(v);
	Py_XDECREF(env);
	Py_XDECREF(os);
}

int
life_env_apply(char *const *envs, size_t n, const char *slot,
    int python_running, werr *err)
{
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(envs[i], '=');
		char *name, *value;
		int rc;

		if (eq == NULL || eq == envs[i])
			return werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT,
			    NULL, "--env %s: not NAME=TEMPLATE", envs[i]);
		name = strndup(envs[i], (size_t) (eq - envs[i]));
		value = substitute(eq + 1, slot);
		rc = name != NULL && value != NULL ? setenv(name, value, 1) : -1;
		if (rc == 0 && python_running)
			tell_os_environ(name, value);
		free(name);
		free(value);
		if (rc != 0)
			return werr_set(err, GILD__V1__CODE__INTERNAL, NULL,
			    "--env %s: %s", envs[i], strerror(errno));
	}
	return 0;
}

/* The value of key in the pyvenv.cfg file at path ("key = value" lines),
 * into out; 0, or -1 when it is not there. */
static int
venv_cfg_value(const char *path, const char *key, char *out, size_t cap)
{
	char line[1024];
	size_t kl = strlen(key);
	FILE *f = fopen(path, "r");
	int found = -1;

	if (f == NULL)
		return -1;
	while (found != 0 && fgets(line, sizeof(line), f) != NULL) {
		char *p = line, *e;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, key, kl) != 0)
			continue;
		p += kl;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p++ != '=')
			continue;
		while (*p == ' ' || *p == '\t')
			p++;
		e = p + strcspn(p, "\r\n");
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		*e = '\0';
		snprintf(out, cap, "%s", p);
		found = 0;
	}
	fclose(f);
	return found;
}

/* Calls site.addsitedir(dir) (dir and its .pth files join sys.path at its
 * end) and moves what it added in front of the first site-packages or
 * dist-packages entry, so that the venv's packages win over the system's,
 * as in the venv's own Python. Returns 0 or -1 with a Python exception. */
static int
add_site_dir(const char *dir)
{
	PyObject *path = PySys_GetObject("path"); /* borrowed */
	PyObject *site = NULL, *r = NULL, *added = NULL;
	Py_ssize_t before, at;
	int rc = -1;

	if (path == NULL || !PyList_Check(path)) {
		PyErr_SetString(PyExc_RuntimeError, "sys.path is not a list");
		return -1;
	}
	before = PyList_GET_SIZE(path);
	if ((site = PyImport_ImportModule("site")) == NULL ||
	    (r = PyObject_CallMethod(site, "addsitedir", "s", dir)) == NULL)
		goto fail;
	if ((added = PyList_GetSlice(path, before, PyList_GET_SIZE(path))) ==
		NULL ||
	    PyList_SetSlice(path, before, PyList_GET_SIZE(path), NULL) == -1)
		goto fail;
	for (at = 0; at < before; at++) {
		const char *s = PyUnicode_Check(PyList_GET_ITEM(path, at))
				    ? PyUnicode_AsUTF8(PyList_GET_ITEM(path, at))
				    : NULL;
		if (s == NULL)
			PyErr_Clear();
		else if (strstr(s, "-packages") != NULL)
			break;
	}
	rc = PyList_SetSlice(path, at, at, added);
fail:
	Py_XDECREF(added);
	Py_XDECREF(r);
	Py_XDECREF(site);
	return rc;
}

/* Adds venv's site-packages after checking that it was made by this
 * Python. Returns 0 or -1 with *err. */
static int
add_venv(const char *venv, werr *err)
{
	char cfg[PATH_MAX], version[64], home[PATH_MAX], mine[32];
	char site[PATH_MAX], want[16];
	const char *ft = interp_free_threaded() ? "t" : "";
	struct stat st;

	interp_python_version(mine, sizeof(mine));
	snprintf(want, sizeof(want), "%d.%d", PY_MAJOR_VERSION,
	    PY_MINOR_VERSION);
	snprintf(cfg, sizeof(cfg), "%s/pyvenv.cfg", venv);
	if (venv_cfg_value(cfg, "version", version, sizeof(version)) != 0 &&
	    venv_cfg_value(cfg, "version_info", version, sizeof(version)) != 0)
		return werr_set(err, GILD__V1__CODE__FAILED_PRECONDITION, NULL,
		    "--venv %s: %s says no version: not a virtual environment "
		    "made by python3 -m venv",
		    venv, cfg);
	if (venv_cfg_value(cfg, "home", home, sizeof(home)) != 0)
		snprintf(home, sizeof(home), "?");
	/* "3.11" must match "3.11.2", not "3.110". */
	if (strncmp(version, want, strlen(want)) != 0 ||
	    (version[strlen(want)] != '\0' && version[strlen(want)] != '.'))
		return werr_set(err, GILD__V1__CODE__FAILED_PRECONDITION, NULL,
		    "--venv %s was made by Python %s (from %s, says its "
		    "pyvenv.cfg), but the workers embed Python %s%s: packages "
		    "built for one do not load in the other. Make the venv with "
		    "the workers' Python: %s -m venv --system-site-packages %s",
		    venv, version, home, mine,
		    *ft ? " (free-threaded)" : "", LIFE_PYTHON_EXE, venv);
	snprintf(site, sizeof(site), "%s/lib/python%s%s/site-packages", venv,
	    want, ft);
	if (stat(site, &st) == -1 || !S_ISDIR(st.st_mode))
		return werr_set(err, GILD__V1__CODE__FAILED_PRECONDITION, NULL,
		    "--venv %s (Python %s, says its pyvenv.cfg) has no %s: the "
		    "workers embed Python %s%s, %s. Make the venv with the "
		    "workers' Python: %s -m venv --system-site-packages %s",
		    venv, version, site, mine,
		    *ft ? " (free-threaded)" : "",
		    *ft ? "whose packages live in pythonX.Yt"
			: "whose packages live in pythonX.Y",
		    LIFE_PYTHON_EXE, venv);
	if (add_site_dir(site) == -1) {
		werr_from_python(err, GILD__V1__CODE__FAILED_PRECONDITION);
		werr_prefix(err, "--venv %s: ", venv);
		return -1;
	}
	return 0;
}

int
life_paths(const char *venv, char *const *dirs, size_t n, werr *err)
{
	if (venv != NULL && add_venv(venv, err) == -1)
		return -1;
	/* Last first: each goes in front, so they end up in order. */
	for (size_t i = n; i > 0; i--)
		if (interp_path_prepend(dirs[i - 1], err) == -1)
			return -1;
	return 0;
}

static struct {
	int slot;
	int threads;
	int registered;
} me = {-1, 1, 0};

/* _gild_worker.worker_info(): (slot or None, threads). */
static PyObject *
worker_info(PyObject *self, PyObject *unused)
{
	if (me.slot < 0)
		return Py_BuildValue("(Oi)", Py_None, me.threads);
	return Py_BuildValue("(ii)", me.slot, me.threads);
}

static PyMethodDef life_methods[] = {
    {"worker_info", worker_info, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

int
life_set_worker(int slot, int threads, werr *err)
{
	PyObject *m;

	me.slot = slot;
	me.threads = threads;
	if (me.registered)
		return 0;
	if ((m = PyImport_ImportModule("_gild_worker")) == NULL ||
	    PyModule_AddFunctions(m, life_methods) == -1) {
		Py_XDECREF(m);
		return werr_from_python(err, GILD__V1__CODE__INTERNAL);
	}
	Py_DECREF(m);
	me.registered = 1;
	return 0;
}

/* A new reference to a copy of the hooks of kind ("start", "warmup",
 * "stop") the app registered, or an empty list when it never imported
 * gild; NULL with a Python exception. */
static PyObject *
hooks_of(const char *kind)
{
	PyObject *name = PyUnicode_FromString("gild._app");
	PyObject *mod = name != NULL ? PyImport_GetModule(name) : NULL;
	PyObject *all = NULL, *list = NULL;

	Py_XDECREF(name);
	if (mod == NULL)
		return PyErr_Occurred() ? NULL : PyList_New(0);
	if ((all = PyObject_GetAttrString(mod, "_HOOKS")) != NULL &&
	    (list = PyMapping_GetItemString(all, kind)) != NULL &&
	    PyList_Check(list)) {
		PyObject *copy = PyList_GetSlice(list, 0, PyList_GET_SIZE(list));
		Py_DECREF(list);
		list = copy;
	} else if (list != NULL) {
		Py_CLEAR(list);
		PyErr_SetString(PyExc_TypeError, "gild._app._HOOKS is broken");
	}
	Py_XDECREF(all);
	Py_DECREF(mod);
	return list;
}

/* "module.qualname" of hook fn, into buf. */
static void
hook_name(PyObject *fn, char *buf, size_t cap)
{
	PyObject *m = PyObject_GetAttrString(fn, "__module__");
	PyObject *q = PyObject_GetAttrString(fn, "__qualname__");
	const char *ms = m != NULL && PyUnicode_Check(m) ? PyUnicode_AsUTF8(m)
							 : NULL;
	const char *qs = q != NULL && PyUnicode_Check(q) ? PyUnicode_AsUTF8(q)
							 : NULL;

	PyErr_Clear();
	snprintf(buf, cap, "%s%s%s", ms ? ms : "", ms ? "." : "",
	    qs ? qs : "?");
	Py_XDECREF(m);
	Py_XDECREF(q);
}

/* Calls fn(); on an exception, fills *err naming it as a `what` hook.
 * Returns 0 or -1. */
static int
call_hook(PyObject *fn, const char *what, werr *err)
{
	PyObject *r = PyObject_CallNoArgs(fn);
	char name[256];

	if (r != NULL) {
		Py_DECREF(r);
		interp_flush_stdio();
		return 0;
	}
	/* The exception first: what runs next would clear it. */
	werr_from_python(err, GILD__V1__CODE__PYTHON_ERROR);
	interp_flush_stdio();
	hook_name(fn, name, sizeof(name));
	werr_prefix(err, "%s %s raised %s: ", what, name,
	    err->python_type != NULL ? err->python_type : "an exception");
	return -1;
}

int
life_start(werr *err)
{
	static const char *const kinds[][2] = {
	    {"start", "@gild.on_worker_start"}, {"warmup", "@gild.warmup"}};

	for (size_t k = 0; k < 2; k++) {
		PyObject *hooks = hooks_of(kinds[k][0]);
		if (hooks == NULL)
			return werr_from_python(err, GILD__V1__CODE__INTERNAL);
		for (Py_ssize_t i = 0; i < PyList_GET_SIZE(hooks); i++)
			if (call_hook(PyList_GET_ITEM(hooks, i), kinds[k][1],
				err) == -1) {
				Py_DECREF(hooks);
				return -1;
			}
		Py_DECREF(hooks);
	}
	return 0;
}

size_t
life_stop(werr *errs, size_t cap)
{
	PyObject *hooks = hooks_of("stop");
	werr scratch = {0};
	size_t failed = 0;

	if (hooks == NULL) {
		werr_from_python(cap > 0 ? &errs[0] : &scratch,
		    GILD__V1__CODE__INTERNAL);
		werr_clear(&scratch);
		return 1;
	}
	for (Py_ssize_t i = PyList_GET_SIZE(hooks); i > 0; i--) {
		werr *e = failed < cap ? &errs[failed] : &scratch;
		if (call_hook(PyList_GET_ITEM(hooks, i - 1),
			"@gild.on_worker_stop", e) == -1)
			failed++;
		werr_clear(&scratch);
	}
	Py_DECREF(hooks);
	return failed;
}
