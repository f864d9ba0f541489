/* app: loading the served app module and deciding which of its attributes
 * are callable through gild. */
#include "app.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "interp.h"

struct app {
	char *spec;
	PyObject *module; /* new ref */
	PyObject *funcs;  /* new ref: dict name -> callable */
	char **names;     /* sorted, malloc'd strings */
	app_options *options; /* parallel to names */
	size_t n;
	PyObject *actors;     /* new ref: dict name -> @gild.actor class */
	char **actor_names;   /* sorted */
	uint32_t *actor_restarts;
	uint32_t *actor_concurrency; /* @gild.actor(concurrency=K) */
	char ***actor_methods; /* each class's public methods, sorted,
				  NULL-ended */
	uint32_t **actor_method_batch; /* parallel to actor_methods: each
				  one's @gild.function(batch=N), 0: none */
	size_t nactors;
	int async_methods;    /* an actor class has an async def method */
};

/* Sets exc (stolen; from werr_take_exception) as the pending exception. */
static void
exc_restore(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
	PyErr_SetRaisedException(exc);
#else
	if (exc == NULL)
		return;
	Py_INCREF(Py_TYPE(exc));
	PyErr_Restore(
	    (PyObject *) Py_TYPE(exc), exc, PyException_GetTraceback(exc));
#endif
}

/* Drops the leading importlib frames from exc's traceback, as the import
 * statement does, so a startup traceback begins in the app's own code. */
static void
trim_importlib_frames(PyObject *exc)
{
	PyObject *tb = exc != NULL ? PyException_GetTraceback(exc) : NULL;
	PyObject *start = tb;

	while (tb != NULL && tb != Py_None) {
		PyObject *fn = NULL;
		PyObject *frame = PyObject_GetAttrString(tb, "tb_frame");
		PyObject *code = frame != NULL
		                     ? PyObject_GetAttrString(frame, "f_code")
		                     : NULL;
		const char *s = NULL;
		int skip;
		if (code != NULL)
			fn = PyObject_GetAttrString(code, "co_filename");
		if (fn != NULL && PyUnicode_Check(fn))
			s = PyUnicode_AsUTF8(fn);
		skip = s != NULL && strncmp(s, "<frozen importlib", 17) == 0;
		Py_XDECREF(fn);
		Py_XDECREF(code);
		Py_XDECREF(frame);
		PyErr_Clear();
		if (!skip)
			break;
		PyObject *next = PyObject_GetAttrString(tb, "tb_next");
		PyErr_Clear();
		Py_DECREF(tb);
		tb = next;
	}
	if (tb != start)
		PyException_SetTraceback(exc, tb != NULL ? tb : Py_None);
	Py_XDECREF(tb);
}

static int
is_path(const char *spec)
{
	size_t n = strlen(spec);

	return strchr(spec, '/') != NULL ||
	       (n > 3 && !strcmp(spec + n - 3, ".py"));
}

/* Returns a new reference to the module executed from file path (absolute),
 * registered in sys.modules under name before it runs, or NULL with a
 * Python exception. */
static PyObject *
import_file(const char *name, const char *path)
{
	PyObject *util = NULL;
	PyObject *machinery = NULL;
	PyObject *loader = NULL;
	PyObject *spec = NULL;
	PyObject *mod = NULL;
	PyObject *r = NULL;
	PyObject *kw = NULL;
	PyObject *args = NULL;
	PyObject *fn = NULL;

	util = PyImport_ImportModule("importlib.util");
	machinery = PyImport_ImportModule("importlib.machinery");
	if (util == NULL || machinery == NULL)
		goto fail;
	/* An explicit source loader, so the file need not end in ".py". */
	loader = PyObject_CallMethod(
	    machinery, "SourceFileLoader", "ss", name, path);
	if (loader == NULL)
		goto fail;
	fn = PyObject_GetAttrString(util, "spec_from_file_location");
	args = Py_BuildValue("(ss)", name, path);
	kw = Py_BuildValue("{s:O}", "loader", loader);
	if (fn == NULL || args == NULL || kw == NULL)
		goto fail;
	spec = PyObject_Call(fn, args, kw);
	if (spec == NULL)
		goto fail;
	mod = PyObject_CallMethod(util, "module_from_spec", "O", spec);
	if (mod == NULL)
		goto fail;
	if (PyDict_SetItemString(PyImport_GetModuleDict(), name, mod) == -1)
		goto fail;
	r = PyObject_CallMethod(loader, "exec_module", "O", mod);
	if (r == NULL) {
		/* Keep the exception; drop the half-run module as import does.
		 */
		PyObject *exc = werr_take_exception();
		trim_importlib_frames(exc);
		if (PyDict_DelItemString(PyImport_GetModuleDict(), name) == -1)
			PyErr_Clear();
		exc_restore(exc);
		Py_CLEAR(mod);
	}
fail:
	if (PyErr_Occurred())
		Py_CLEAR(mod);
	Py_XDECREF(util);
	Py_XDECREF(machinery);
	Py_XDECREF(loader);
	Py_XDECREF(spec);
	Py_XDECREF(r);
	Py_XDECREF(kw);
	Py_XDECREF(args);
	Py_XDECREF(fn);
	return mod;
}

/* With a ModuleNotFoundError pending: 1 if it is about spec itself (or a
 * package spec lives in), not about something the app imports. */
static int
spec_missing(const char *spec)
{
	PyObject *exc;
	PyObject *name = NULL;
	const char *s;
	int missing = 0;
	size_t n;

	if (!PyErr_ExceptionMatches(PyExc_ModuleNotFoundError))
		return 0;
	exc = werr_take_exception();
	if (exc != NULL)
		name = PyObject_GetAttrString(exc, "name");
	if (name != NULL && PyUnicode_Check(name) &&
	    (s = PyUnicode_AsUTF8(name)) != NULL) {
		n = strlen(s);
		missing = strncmp(spec, s, n) == 0 &&
		          (spec[n] == '\0' || spec[n] == '.');
	}
	PyErr_Clear();
	Py_XDECREF(name);
	exc_restore(exc);
	return missing;
}

/* One option of the __gild__ dict @gild.function sets, as a uint32; 0 when
 * absent or not a fitting int (the decorator has checked it already). */
static uint32_t
option_u32(PyObject *opts, const char *key)
{
	PyObject *v = PyDict_GetItemString(opts, key); /* borrowed */
	unsigned long long n;

	if (v == NULL || !PyLong_Check(v))
		return 0;
	n = PyLong_AsUnsignedLongLong(v);
	if (PyErr_Occurred() || n > UINT32_MAX) {
		PyErr_Clear();
		return 0;
	}
	return (uint32_t) n;
}

static void
read_options(PyObject *fn, app_options *out)
{
	PyObject *opts = fn != NULL ? PyObject_GetAttrString(fn, "__gild__")
				    : NULL;

	if (opts != NULL && PyDict_Check(opts)) {
		out->timeout_ms = option_u32(opts, "timeout_ms");
		out->retries = option_u32(opts, "retries");
		out->batch = option_u32(opts, "batch");
		out->batch_wait_us = option_u32(opts, "batch_wait_us");
		out->concurrency = option_u32(opts, "concurrency");
	}
	Py_XDECREF(opts);
	PyErr_Clear();
	out->is_async = fn != NULL && interp_is_coroutine_function(fn);
}

/* Adds class cls (called name) to a->actors if it is an @gild.actor
 * defined in the app module. Returns 0 or -1 with a Python exception. */
static int
add_actor_class(app *a, PyObject *name, PyObject *cls, PyObject *modname)
{
	PyObject *opts = PyObject_GetAttrString(cls, "__gild_actor__");
	PyObject *owner = NULL;
	int same = 0, rc = 0;

	if (opts == NULL || !PyDict_Check(opts)) {
		PyErr_Clear();
		Py_XDECREF(opts);
		return 0;
	}
	owner = PyObject_GetAttrString(cls, "__module__");
	if (owner != NULL)
		same = PyObject_RichCompareBool(owner, modname, Py_EQ) == 1;
	PyErr_Clear();
	if (same && a->actors == NULL && (a->actors = PyDict_New()) == NULL)
		rc = -1;
	else if (same)
		rc = PyDict_SetItem(a->actors, name, cls);
	Py_XDECREF(owner);
	Py_DECREF(opts);
	return rc;
}

/* Whether class cls has an async def method (then the worker runs an
 * asyncio loop). */
static int
has_async_method(PyObject *cls)
{
	PyObject *names = PyObject_Dir(cls);
	int yes = 0;

	for (Py_ssize_t i = 0; names != NULL && !yes &&
			       i < PyList_GET_SIZE(names);
	     i++) {
		PyObject *m = PyObject_GetAttr(cls, PyList_GET_ITEM(names, i));
		if (m != NULL)
			yes = interp_is_coroutine_function(m);
		Py_XDECREF(m);
		PyErr_Clear();
	}
	Py_XDECREF(names);
	PyErr_Clear();
	return yes;
}

/* The public methods of class cls (callable attributes without a leading
 * _, as the worker lets clients call them), sorted (dir() sorts),
 * NULL-ended, malloc'd; NULL with a Python exception. */
static char **
public_methods(PyObject *cls)
{
	PyObject *names = PyObject_Dir(cls);
	char **out = NULL;
	size_t n = 0;

	if (names == NULL)
		return NULL;
	if ((out = calloc((size_t) PyList_GET_SIZE(names) + 1,
		 sizeof(*out))) == NULL) {
		PyErr_NoMemory();
		goto done;
	}
	for (Py_ssize_t i = 0; i < PyList_GET_SIZE(names); i++) {
		PyObject *name = PyList_GET_ITEM(names, i), *m;
		const char *s = PyUnicode_AsUTF8(name);
		int callable;

		if (s == NULL) {
			PyErr_Clear();
			continue;
		}
		if (s[0] == '_')
			continue;
		m = PyObject_GetAttr(cls, name);
		callable = m != NULL && PyCallable_Check(m);
		Py_XDECREF(m);
		PyErr_Clear();
		if (callable && (out[n++] = strdup(s)) == NULL) {
			PyErr_NoMemory();
			while (n > 0)
				free(out[--n]);
			free(out);
			out = NULL;
			goto done;
		}
	}
done:
	Py_DECREF(names);
	return out;
}

/* The @gild.function(batch=N) of each of cls's methods (0: none), parallel
 * to methods (NULL-ended), malloc'd; NULL when out of memory (with a
 * Python exception). */
static uint32_t *
method_batches(PyObject *cls, char *const *methods)
{
	size_t n = 0;
	uint32_t *out;

	while (methods[n] != NULL)
		n++;
	if ((out = calloc(n + 1, sizeof(*out))) == NULL) {
		PyErr_NoMemory();
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		/* A bound method would show its function's __gild__ too;
		 * on the class it is the function itself. */
		PyObject *m = PyObject_GetAttrString(cls, methods[i]);
		app_options o = {0};

		PyErr_Clear();
		read_options(m, &o);
		Py_XDECREF(m);
		out[i] = o.batch;
	}
	return out;
}

/* Fills a->actor_names, a->actor_restarts, a->actor_concurrency,
 * a->actor_methods and a->actor_method_batch from a->actors. Returns 0 or
 * -1 with a Python exception. */
static int
list_actor_classes(app *a)
{
	PyObject *keys;

	if (a->actors == NULL)
		return 0;
	if ((keys = PyDict_Keys(a->actors)) == NULL || PyList_Sort(keys) == -1) {
		Py_XDECREF(keys);
		return -1;
	}
	a->nactors = (size_t) PyList_GET_SIZE(keys);
	a->actor_names = calloc(a->nactors + 1, sizeof(char *));
	a->actor_restarts = calloc(a->nactors + 1, sizeof(uint32_t));
	a->actor_concurrency = calloc(a->nactors + 1, sizeof(uint32_t));
	a->actor_methods = calloc(a->nactors + 1, sizeof(char **));
	a->actor_method_batch = calloc(a->nactors + 1, sizeof(uint32_t *));
	if (a->actor_names == NULL || a->actor_restarts == NULL ||
	    a->actor_concurrency == NULL || a->actor_methods == NULL ||
	    a->actor_method_batch == NULL) {
		Py_DECREF(keys);
		PyErr_NoMemory();
		return -1;
	}
	for (size_t i = 0; i < a->nactors; i++) {
		PyObject *k = PyList_GET_ITEM(keys, (Py_ssize_t) i);
		PyObject *cls = PyDict_GetItem(a->actors, k);
		PyObject *opts = PyObject_GetAttrString(cls, "__gild_actor__");
		const char *s = PyUnicode_AsUTF8(k);
		if (s == NULL || (a->actor_names[i] = strdup(s)) == NULL) {
			Py_XDECREF(opts);
			Py_DECREF(keys);
			if (s != NULL)
				PyErr_NoMemory();
			return -1;
		}
		if (opts != NULL && PyDict_Check(opts)) {
			a->actor_restarts[i] = option_u32(opts, "max_restarts");
			a->actor_concurrency[i] =
			    option_u32(opts, "concurrency");
		}
		Py_XDECREF(opts);
		PyErr_Clear();
		if ((a->actor_methods[i] = public_methods(cls)) == NULL ||
		    (a->actor_method_batch[i] = method_batches(cls,
			 a->actor_methods[i])) == NULL) {
			Py_DECREF(keys);
			return -1;
		}
		a->async_methods |= has_async_method(cls);
	}
	Py_DECREF(keys);
	return 0;
}

/* Fills a->funcs and a->names from the module's namespace. Returns 0 or -1
 * with a Python exception. */
static int
collect_exports(app *a)
{
	PyObject *dict = PyModule_GetDict(a->module); /* borrowed */
	PyObject *modname = PyModule_GetNameObject(a->module);
	PyObject *names = NULL;
	PyObject *key, *val;
	Py_ssize_t pos = 0;
	int rc = -1;

	if (dict == NULL || modname == NULL)
		goto fail;
	a->funcs = PyDict_New();
	names = PyList_New(0);
	if (a->funcs == NULL || names == NULL)
		goto fail;
	while (PyDict_Next(dict, &pos, &key, &val)) {
		PyObject *owner;
		int same;
		if (!PyUnicode_Check(key) || PyUnicode_GET_LENGTH(key) == 0 ||
		    PyUnicode_READ_CHAR(key, 0) == '_')
			continue;
		if (!PyCallable_Check(val))
			continue;
		if (PyType_Check(val)) {
			/* A class is exported only as an @gild.actor. */
			if (add_actor_class(a, key, val, modname) == -1)
				goto fail;
			continue;
		}
		/* A lifecycle hook (@gild.on_worker_start...) is gild's to
		 * call, not a client's. */
		if (PyObject_HasAttrString(val, "__gild_hook__"))
			continue;
		/* Only what the app defines: not `from os import system`. */
		owner = PyObject_GetAttrString(val, "__module__");
		if (owner == NULL) {
			PyErr_Clear();
			continue;
		}
		same = PyObject_RichCompareBool(owner, modname, Py_EQ);
		Py_DECREF(owner);
		if (same == -1)
			PyErr_Clear();
		if (same != 1)
			continue;
		if (PyDict_SetItem(a->funcs, key, val) == -1 ||
		    PyList_Append(names, key) == -1)
			goto fail;
	}
	if (PyList_Sort(names) == -1)
		goto fail;
	a->n = (size_t) PyList_GET_SIZE(names);
	a->names = calloc(a->n + 1, sizeof(*a->names));
	if (a->names == NULL) {
		PyErr_NoMemory();
		goto fail;
	}
	for (size_t i = 0; i < a->n; i++) {
		const char *s = PyUnicode_AsUTF8(PyList_GET_ITEM(names, i));
		if (s == NULL || (a->names[i] = strdup(s)) == NULL) {
			if (s != NULL)
				PyErr_NoMemory();
			goto fail;
		}
	}
	a->options = calloc(a->n + 1, sizeof(*a->options));
	if (a->options == NULL) {
		PyErr_NoMemory();
		goto fail;
	}
	for (size_t i = 0; i < a->n; i++)
		read_options(PyDict_GetItemString(a->funcs, a->names[i]),
		    &a->options[i]);
	if (list_actor_classes(a) == -1)
		goto fail;
	rc = 0;
fail:
	Py_XDECREF(modname);
	Py_XDECREF(names);
	return rc;
}

/* Free-threaded only: rebuilds the code of the app's own functions so that
 * their constants are immortal, and threads running them do not contend
 * for their reference counts (gild/_ftconsts.py says why). It only costs
 * speed if it fails, so a failure is reported and the app loads anyway. */
static void
intern_app_constants(PyObject *module)
{
	PyObject *m = PyImport_ImportModule("gild._ftconsts");
	PyObject *r = m != NULL ? PyObject_CallMethod(m, "intern_constants",
				      "O", module)
				: NULL;

	if (r == NULL) {
		fprintf(stderr, "gild-worker: cannot intern the app's "
				"constants (threads may contend for them): ");
		PyErr_Print();
	}
	Py_XDECREF(r);
	Py_XDECREF(m);
}

int
app_load(app **out, const char *spec, werr *err)
{
	app *a = calloc(1, sizeof(*a));
	char *abs = NULL;
	char *dir = NULL;
	char *name = NULL;
	char cwd[PATH_MAX];

	*out = NULL;
	if (a == NULL || (a->spec = strdup(spec)) == NULL) {
		werr_set(err, GILD__V1__CODE__INTERNAL, NULL, "out of memory");
		goto fail;
	}
	if (is_path(spec)) {
		struct stat st;
		char *slash, *dot;
		if (stat(spec, &st) == -1) {
			werr_set(err, GILD__V1__CODE__NOT_FOUND, NULL,
			    "app file '%s' %s", spec,
			    errno == ENOENT ? "does not exist"
			                    : strerror(errno));
			goto fail;
		}
		if (!S_ISREG(st.st_mode) ||
		    (abs = realpath(spec, NULL)) == NULL) {
			werr_set(err, GILD__V1__CODE__NOT_FOUND, NULL,
			    "app file '%s' is not a regular file", spec);
			goto fail;
		}
		dir = strdup(abs);
		if (dir == NULL) {
			werr_set(err, GILD__V1__CODE__INTERNAL, NULL,
			    "out of memory");
			goto fail;
		}
		slash = strrchr(dir, '/');
		slash[slash == dir ? 1 : 0] = '\0';
		name = strdup(strrchr(abs, '/') + 1);
		if (name == NULL) {
			werr_set(err, GILD__V1__CODE__INTERNAL, NULL,
			    "out of memory");
			goto fail;
		}
		dot = strrchr(name, '.');
		if (dot != NULL && dot != name)
			*dot = '\0';
		if (interp_path_prepend(dir, err) == -1)
			goto fail;
		a->module = import_file(name, abs);
	} else {
		if (getcwd(cwd, sizeof(cwd)) != NULL &&
		    interp_path_prepend(cwd, err) == -1)
			goto fail;
		a->module = PyImport_ImportModule(spec);
		if (a->module == NULL && spec_missing(spec)) {
			werr_from_python(err, GILD__V1__CODE__NOT_FOUND);
			werr_prefix(err, "app module '%s' not found: ", spec);
			goto fail;
		}
	}
	if (a->module == NULL || collect_exports(a) == -1) {
		werr_from_python(err, GILD__V1__CODE__PYTHON_ERROR);
		interp_explain_import(err);
		goto fail;
	}
	if (interp_free_threaded())
		intern_app_constants(a->module);
	free(abs);
	free(dir);
	free(name);
	*out = a;
	return 0;
fail:
	free(abs);
	free(dir);
	free(name);
	app_free(a);
	return -1;
}

void
app_free(app *a)
{
	if (a == NULL)
		return;
	if (a->names != NULL)
		for (size_t i = 0; i < a->n; i++)
			free(a->names[i]);
	free(a->names);
	free(a->options);
	for (size_t i = 0; a->actor_names != NULL && i < a->nactors; i++)
		free(a->actor_names[i]);
	for (size_t i = 0; a->actor_methods != NULL && i < a->nactors; i++) {
		for (char **m = a->actor_methods[i]; m != NULL && *m != NULL;
		     m++)
			free(*m);
		free(a->actor_methods[i]);
	}
	for (size_t i = 0; a->actor_method_batch != NULL && i < a->nactors;
	     i++)
		free(a->actor_method_batch[i]);
	free(a->actor_method_batch);
	free(a->actor_methods);
	free(a->actor_names);
	free(a->actor_restarts);
	free(a->actor_concurrency);
	Py_XDECREF(a->actors);
	Py_XDECREF(a->funcs);
	Py_XDECREF(a->module);
	free(a->spec);
	free(a);
}

PyObject *
app_function(const app *a, const char *name)
{
	PyObject *f = PyDict_GetItemString(a->funcs, name);

	PyErr_Clear();
	return f;
}

size_t
app_count(const app *a)
{
	return a->n;
}

char **
app_names(const app *a)
{
	return a->names;
}

const app_options *
app_function_options(const app *a)
{
	return a->options;
}

const app_options *
app_options_of(const app *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->names[i], name) == 0)
			return &a->options[i];
	return NULL;
}

PyObject *
app_actor_class(const app *a, const char *name)
{
	PyObject *c = a->actors ? PyDict_GetItemString(a->actors, name) : NULL;

	PyErr_Clear();
	return c;
}

size_t
app_actor_count(const app *a)
{
	return a->nactors;
}

char **
app_actor_names(const app *a)
{
	return a->actor_names;
}

const uint32_t *
app_actor_restarts(const app *a)
{
	return a->actor_restarts;
}

const uint32_t *
app_actor_concurrency(const app *a)
{
	return a->actor_concurrency;
}

char *const *
app_actor_methods(const app *a, size_t i, size_t *n)
{
	char *const *m = a->actor_methods[i];

	for (*n = 0; m[*n] != NULL; (*n)++)
		;
	return m;
}

const uint32_t *
app_actor_method_batch(const app *a, size_t i)
{
	return a->actor_method_batch[i];
}

int
app_has_async(const app *a)
{
	if (a->async_methods)
		return 1;
	for (size_t i = 0; i < a->n; i++)
		if (a->options[i].is_async)
			return 1;
	return 0;
}

const char *
app_spec(const app *a)
{
	return a->spec;
}
