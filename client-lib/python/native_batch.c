/* gild._native: Client.submit_many, many calls in one message. */
#include "native.h"

/* The calls of one submit_many, converted: what libgild borrows while the
 * GIL is released. fns holds new references to the function names (their
 * UTF-8 is in specs[i].function) or to the Call objects; va and vk own the
 * argument values converted here (NULL for a Call's). */
typedef struct {
	size_t n;
	gild_call_spec *specs;
	PyObject **fns;
	gild_value **va, **vk;
	gild_call_id *ids;
} batch;

static void
batch_fini(batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		if (b->fns != NULL)
			Py_XDECREF(b->fns[i]);
		if (b->va != NULL)
			gild_value_free(b->va[i]);
		if (b->vk != NULL)
			gild_value_free(b->vk[i]);
	}
	PyMem_Free(b->specs);
	PyMem_Free(b->fns);
	PyMem_Free(b->va);
	PyMem_Free(b->vk);
	PyMem_Free(b->ids);
	memset(b, 0, sizeof(*b));
}

/* Re-raises the pending TypeError, ValueError or OverflowError with its
 * message prefixed by "calls[i]: "; other exceptions stay as they are. */
static void
prefix_error(size_t i)
{
	PyObject *type, *val, *msg, *exc;
	val = take_exception(&type);
	if (type == PyExc_TypeError || type == PyExc_ValueError ||
	    type == PyExc_OverflowError) {
		msg = val != NULL ? PyObject_Str(val) : NULL;
		exc = msg != NULL
		          ? PyUnicode_FromFormat("calls[%zu]: %U", i, msg)
		          : NULL;
		Py_XDECREF(msg);
		if (exc != NULL) {
			PyErr_SetObject(type, exc);
			Py_DECREF(exc);
		}
	} else {
		PyErr_SetObject(type, val);
	}
	Py_DECREF(type);
	Py_XDECREF(val);
}

/* Converts call i of a batch: item, a Call or a tuple (function, args[,
 * kwargs[, timeout_ms]]) as submit's arguments. Returns 0, or -1 with an
 * exception that names calls[i]. */
static int
batch_item(batch *b, size_t i, PyObject *item, int pickle)
{
	PyObject *fn, *a, *k = Py_None;
	const char *name;
	Py_ssize_t len, n;
	long timeout = 0;

	if (Py_IS_TYPE(item, &call_type)) {
		call_obj *co = (call_obj *) item;

		b->fns[i] = Py_NewRef(item); /* keeps its values */
		b->specs[i].function = co->name;
		b->specs[i].args = co->args;
		b->specs[i].kwargs = co->kwargs;
		b->specs[i].timeout_ms = co->timeout_ms;
		return 0;
	}
	if (!PyTuple_Check(item) || (n = PyTuple_GET_SIZE(item)) < 2 || n > 4) {
		PyErr_Format(PyExc_TypeError,
		    "calls[%zu] must be a Call or a tuple (function, args[, "
		    "kwargs[, timeout_ms]]), not %s",
		    i, PyTuple_Check(item) ? "one of another length"
		                           : Py_TYPE(item)->tp_name);
		return -1;
	}
	fn = PyTuple_GET_ITEM(item, 0);
	a = PyTuple_GET_ITEM(item, 1);
	if (n > 2)
		k = PyTuple_GET_ITEM(item, 2);
	if (!PyUnicode_Check(fn)) {
		PyErr_Format(PyExc_TypeError,
		    "calls[%zu]: the function must be a str, not %s", i,
		    Py_TYPE(fn)->tp_name);
		return -1;
	}
	if ((name = PyUnicode_AsUTF8AndSize(fn, &len)) == NULL)
		return -1;
	if (strlen(name) != (size_t) len) {
		PyErr_Format(PyExc_ValueError,
		    "calls[%zu]: a function name cannot contain a NUL", i);
		return -1;
	}
	if (n > 3) {
		PyObject *t = PyTuple_GET_ITEM(item, 3);

		if (!PyLong_Check(t) || PyBool_Check(t)) {
			PyErr_Format(PyExc_TypeError,
			    "calls[%zu]: timeout_ms must be an int, not %s", i,
			    Py_TYPE(t)->tp_name);
			return -1;
		}
		timeout = PyLong_AsLong(t);
		if (timeout == -1 && PyErr_Occurred()) {
			prefix_error(i);
			return -1;
		}
		if (timeout < 0 || timeout > INT_MAX) {
			PyErr_Format(PyExc_ValueError,
			    "calls[%zu]: timeout_ms must be 0 to %d, not %ld",
			    i, INT_MAX, timeout);
			return -1;
		}
	}
	if (pyvalue_call_args(a, k, pickle, &b->va[i], &b->vk[i]) == -1) {
		prefix_error(i);
		return -1;
	}
	b->fns[i] = Py_NewRef(fn);
	b->specs[i].function = name;
	b->specs[i].args = b->va[i];
	b->specs[i].kwargs = b->vk[i];
	b->specs[i].timeout_ms = (int) timeout;
	return 0;
}

/* submit_many(calls) -> list of call ids: calls is a list (or any
 * sequence) of 1 to GILD_MAX_BATCH Call objects or tuples (function, args[,
 * kwargs[, timeout_ms]]), each as submit's arguments; all are sent in one
 * message (gild_submit_many), or none (then it raises as submit does, the
 * message naming the bad item). Each id is collected with wait/poll/cancel
 * as a submit's. */
PyObject *
client_submit_many(client_obj *self, PyObject *calls)
{
	PyObject *seq, *out = NULL;
	batch b = {0};
	gild_error err = {0};
	gild_client *c;
	Py_ssize_t n;
	int rc;

	if (client_check(self) == -1)
		return NULL;
	if (PyUnicode_Check(calls) || PyBytes_Check(calls)) {
		PyErr_SetString(PyExc_TypeError,
		    "calls must be a list of (function, args[, kwargs[, "
		    "timeout_ms]]) tuples");
		return NULL;
	}
	/* A tuple: its items stay put while the GIL is released. */
	if ((seq = PySequence_Tuple(calls)) == NULL)
		return NULL;
	n = PyTuple_GET_SIZE(seq);
	if (n < 1 || n > GILD_MAX_BATCH) {
		PyErr_Format(PyExc_ValueError,
		    "submit_many takes 1 to %d calls, not %zd", GILD_MAX_BATCH,
		    n);
		goto done;
	}
	b.n = (size_t) n;
	b.specs = PyMem_Calloc(b.n, sizeof(*b.specs));
	b.fns = PyMem_Calloc(b.n, sizeof(*b.fns));
	b.va = PyMem_Calloc(b.n, sizeof(*b.va));
	b.vk = PyMem_Calloc(b.n, sizeof(*b.vk));
	b.ids = PyMem_Calloc(b.n, sizeof(*b.ids));
	if (b.specs == NULL || b.fns == NULL || b.va == NULL || b.vk == NULL ||
	    b.ids == NULL) {
		PyErr_NoMemory();
		goto done;
	}
	for (Py_ssize_t i = 0; i < n; i++)
		if (batch_item(&b, (size_t) i, PyTuple_GET_ITEM(seq, i),
			self->pickle) == -1)
			goto done;
	if (client_enter(self, &c) == -1)
		goto done;
	UNLOCKED(rc = gild_submit_many(c, b.specs, b.n, b.ids, &err));
	client_leave(self);
	if (rc != GILD_OK) {
		raise_gild(rc, &err);
		goto done;
	}
	client_count_sent(self, b.n);
	if ((out = PyList_New(n)) == NULL)
		goto done;
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *id = PyLong_FromUnsignedLongLong(b.ids[i]);

		if (id == NULL) {
			/* The calls are sent: their results will come to
			 * poll(), unclaimed. */
			Py_CLEAR(out);
			goto done;
		}
		PyList_SET_ITEM(out, i, id);
	}
done:
	gild_error_clear(&err);
	batch_fini(&b);
	Py_DECREF(seq);
	return out;
}
