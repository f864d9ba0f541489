/* gild._native: the CPython extension over libgild that the gild package's
 * client (client-lib/python/gild/client.py) is built on. Every call that
 * can block runs with the GIL released; values are converted with it held.
 *
 * A finished call is an "outcome" tuple (code, value, error): value on
 * code == OK, else error = (code, message, python_type, traceback).
 *
 * The module runs without the GIL in free-threaded CPython (3.13t): there
 * several threads can be in the methods of one Client or Stream at once.
 * A client's fields and its streams' (the list linking them included) are
 * read and changed only in the client's critical section, which is never
 * held across a call that releases the GIL (that would end it). Before
 * 3.13, and in 3.13 with the GIL, the GIL alone guards them. */
#include "native.h"

/* ------------------------------------------------------------------- Call */

/* Call(function, args, kwargs=None, timeout_ms=0) */
static PyObject *
call_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {
	    "function", "args", "kwargs", "timeout_ms", "pickle", NULL};
	PyObject *fn, *a, *k = Py_None;
	int timeout = 0, pickle = 0;
	Py_ssize_t len;
	const char *name;
	call_obj *self;

	if (!PyArg_ParseTupleAndKeywords(
	        args, kw, "UO|Oip:Call", kwlist, &fn, &a, &k, &timeout,
	        &pickle))
		return NULL;
	if ((name = PyUnicode_AsUTF8AndSize(fn, &len)) == NULL)
		return NULL;
	if (strlen(name) != (size_t) len) {
		PyErr_SetString(PyExc_ValueError,
		    "a function name cannot contain a NUL character");
		return NULL;
	}
	if (timeout < 0) {
		PyErr_Format(PyExc_ValueError,
		    "timeout_ms must be >= 0, not %d", timeout);
		return NULL;
	}
	if ((self = (call_obj *) type->tp_alloc(type, 0)) == NULL)
		return NULL;
	if (pyvalue_call_args(a, k, pickle, &self->args, &self->kwargs) ==
	    -1) {
		Py_DECREF(self);
		return NULL;
	}
	self->function = Py_NewRef(fn);
	self->name = name;
	self->timeout_ms = timeout;
	return (PyObject *) self;
}

static void
call_dealloc(call_obj *self)
{
	gild_value_free(self->args);
	gild_value_free(self->kwargs);
	Py_XDECREF(self->function);
	Py_TYPE(self)->tp_free((PyObject *) self);
}

static PyObject *
call_get_function(call_obj *self, void *unused)
{
	return Py_NewRef(self->function);
}

static PyGetSetDef call_getset[] = {
    {"function", (getter) call_get_function, NULL, "the function's name",
        NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* The head macro ends in a comma, which clang-format does not know. */
/* clang-format off */
PyTypeObject call_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gild._native.Call",
    .tp_basicsize = sizeof(call_obj),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Call(function, args, kwargs=None, timeout_ms=0, "
              "pickle=False): a call whose arguments are converted (values "
              "with no gild form pickled when pickle), for "
              "Client.submit_many.",
    .tp_new = call_new,
    .tp_dealloc = (destructor) call_dealloc,
    .tp_getset = call_getset,
};
/* clang-format on */

/* ------------------------------------------------------------------ Client */

/* Whether the client is closed (or never connected); takes its critical
 * section. */
static bool
client_is_closed(client_obj *self)
{
	bool closed;

	Py_BEGIN_CRITICAL_SECTION(self);
	closed = self->closed || self->c == NULL;
	Py_END_CRITICAL_SECTION();
	return closed;
}

/* 0 if the client may be used, else -1 with ValueError. */
int
client_check(client_obj *self)
{
	if (client_is_closed(self)) {
		PyErr_SetString(PyExc_ValueError, "client is closed");
		return -1;
	}
	return 0;
}

/* Before releasing the GIL to use the client's gild_client: 0 with it in
 * *out (borrowed, valid until client_leave), or -1 with ValueError if the
 * client is closed. */
int
client_enter(client_obj *self, gild_client **out)
{
	gild_client *c = NULL;

	Py_BEGIN_CRITICAL_SECTION(self);
	if (!self->closed && self->c != NULL) {
		c = self->c;
		self->busy++;
	}
	Py_END_CRITICAL_SECTION();
	if (c == NULL) {
		PyErr_SetString(PyExc_ValueError, "client is closed");
		return -1;
	}
	*out = c;
	return 0;
}

/* After reacquiring the GIL: the last thread out of a closed client closes
 * it. */
void
client_leave(client_obj *self)
{
	gild_client *c = NULL;

	Py_BEGIN_CRITICAL_SECTION(self);
	if (--self->busy == 0 && self->closed) {
		c = self->c;
		self->c = NULL;
	}
	Py_END_CRITICAL_SECTION();
	if (c != NULL)
		UNLOCKED(gild_close(c));
}

static PyObject *
client_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	client_obj *self = (client_obj *) type->tp_alloc(type, 0);

	return (PyObject *) self;
}

/* Client(urls, token=None, tls_ca=None, tls_cert=None, tls_key=None,
 * tls_server_name=None, shm=False): connects (gild_connect_opts); token is
 * sent with every request, the TLS files are for tls+tcp:// URLs; shm asks
 * local servers for shared memory (gild_set_shm). */
static int
client_init(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"urls", "token", "pickle", "tls_ca",
	    "tls_cert", "tls_key", "tls_server_name", "shm", NULL};
	gild_connect_options opts = {0};
	int pickle = 0, shm = 0;
	PyObject *urls, *seq = NULL;
	const char **list = NULL;
	gild_error err = {0};
	gild_client *c = NULL;
	Py_ssize_t n, len;
	bool used;
	int rc = -1;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|zpzzzzp:Client", kwlist,
		&urls, &opts.token, &pickle, &opts.tls_ca, &opts.tls_cert,
		&opts.tls_key, &opts.tls_server_name, &shm))
		return -1;
	Py_BEGIN_CRITICAL_SECTION(self);
	used = self->c != NULL || self->closed;
	Py_END_CRITICAL_SECTION();
	if (used) {
		PyErr_SetString(PyExc_RuntimeError,
		    "Client.__init__ may be called only once");
		return -1;
	}
	if (PyUnicode_Check(urls) || PyBytes_Check(urls)) {
		PyErr_SetString(PyExc_TypeError, "urls must be a list of str");
		return -1;
	}
	self->pickle = pickle != 0;
	/* A tuple: its strings stay put while the GIL is released. */
	if ((seq = PySequence_Tuple(urls)) == NULL)
		return -1;
	n = PyTuple_GET_SIZE(seq);
	if ((list = PyMem_Calloc(n > 0 ? (size_t) n : 1, sizeof(*list))) ==
	    NULL) {
		PyErr_NoMemory();
		goto done;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *u = PyTuple_GET_ITEM(seq, i);

		if (!PyUnicode_Check(u)) {
			PyErr_Format(PyExc_TypeError,
			    "urls must be a list of str, not of %s",
			    Py_TYPE(u)->tp_name);
			goto done;
		}
		if ((list[i] = PyUnicode_AsUTF8AndSize(u, &len)) == NULL)
			goto done;
		if (strlen(list[i]) != (size_t) len) {
			PyErr_SetString(PyExc_ValueError,
			    "a URL cannot contain a NUL character");
			goto done;
		}
	}
	UNLOCKED(rc = gild_connect_opts(&c, list, (size_t) n, &opts, &err));
	if (rc != GILD_OK) {
		raise_gild(rc, &err);
		rc = -1;
		goto done;
	}
	gild__keep_encoded(c); /* pyvalue converts the wire bytes itself */
	if (shm) {
		UNLOCKED(rc = gild_set_shm(c, true, &err));
		if (rc != GILD_OK) {
			UNLOCKED(gild_close(c));
			raise_gild(rc, &err);
			rc = -1;
			goto done;
		}
	}
	/* Another thread's __init__ may have connected meanwhile. */
	Py_BEGIN_CRITICAL_SECTION(self);
	if (self->c == NULL) {
		self->c = c;
		c = NULL;
	}
	Py_END_CRITICAL_SECTION();
	if (c != NULL) {
		UNLOCKED(gild_close(c));
		PyErr_SetString(PyExc_RuntimeError,
		    "Client.__init__ may be called only once");
		rc = -1;
		goto done;
	}
	rc = 0;
done:
	gild_error_clear(&err);
	PyMem_Free(list);
	Py_XDECREF(seq);
	return rc;
}

static void
client_dealloc(client_obj *self)
{
	gild_client *c = self->c;

	if (self->weakrefs != NULL)
		PyObject_ClearWeakRefs((PyObject *) self);
	/* No thread is inside (each holds a reference) and no stream is open
	 * (each holds a reference too). */
	self->c = NULL;
	if (c != NULL)
		UNLOCKED(gild_close(c));
	Py_TYPE(self)->tp_free((PyObject *) self);
}

static PyObject *
client_close(client_obj *self, PyObject *unused)
{
	stream_obj *st;
	gild_stream *s;
	bool first = false;

	/* From now on no stream can be opened or read. A stream being read
	 * is closed by its reader when gild_stream_next returns. */
	Py_BEGIN_CRITICAL_SECTION(self);
	if (!self->closed) {
		first = true;
		self->closed = true;
		for (st = self->streams; st != NULL; st = st->next)
			if (st->busy)
				st->closing = true;
		self->busy++; /* keeps c while the streams close */
	}
	Py_END_CRITICAL_SECTION();
	if (!first)
		Py_RETURN_NONE;
	do {
		Py_BEGIN_CRITICAL_SECTION(self);
		for (st = self->streams; st != NULL && st->busy; st = st->next)
			;
		s = st != NULL ? stream_detach(st) : NULL;
		Py_END_CRITICAL_SECTION();
		stream_release(self, s);
	} while (s != NULL);
	client_leave(self); /* closes c unless other threads are in it */
	Py_RETURN_NONE;
}

static PyObject *
client_get_closed(client_obj *self, void *unused)
{
	return PyBool_FromLong(client_is_closed(self));
}

/* The start of every call that sends args and kwargs: the client is open,
 * the arguments convert (into *va, *vk), and the client is entered (its
 * gild_client in *c, as client_enter). Returns 0, or -1 with a Python error
 * set and nothing held. */
int
call_begin(client_obj *self, PyObject *a, PyObject *k, gild_value **va,
    gild_value **vk, gild_client **c)
{
	if (client_check(self) == -1 ||
	    pyvalue_call_args(a, k, self->pickle, va, vk) == -1)
		return -1;
	if (client_enter(self, c) == -1) {
		gild_value_free(*va);
		gild_value_free(*vk);
		return -1;
	}
	return 0;
}

/* The end of a submit: the new call id, or the error raised. */
PyObject *
call_id_or_raise(int rc, gild_error *err, gild_call_id id)
{
	if (rc != GILD_OK) {
		raise_gild(rc, err);
		gild_error_clear(err);
		return NULL;
	}
	return PyLong_FromUnsignedLongLong(id);
}

/* Counts one message of n calls sent by submit or submit_many. */
void
client_count_sent(client_obj *self, size_t n)
{
	Py_BEGIN_CRITICAL_SECTION(self);
	self->sent_msgs++;
	self->sent_calls += n;
	Py_END_CRITICAL_SECTION();
}

/* submit(function, args, kwargs=None, timeout_ms=0, traceparent=None,
 * tracestate=None) -> call id */
static PyObject *
client_submit(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"function", "args", "kwargs", "timeout_ms",
	    "traceparent", "tracestate", NULL};
	PyObject *a, *k = Py_None;
	const char *fn;
	int timeout = 0, rc;
	gild_value *va, *vk;
	gild_error err = {0};
	gild_call_id id = 0;
	gild_client *c;
	gild_trace_context trace = {NULL, NULL};

	if (!PyArg_ParseTupleAndKeywords(args, kw, "sO|Oizz:submit", kwlist,
	        &fn, &a, &k, &timeout, &trace.traceparent, &trace.tracestate))
		return NULL;
	if (call_begin(self, a, k, &va, &vk, &c) == -1)
		return NULL;
	/* The strings are the argument objects': they outlive the call. */
	UNLOCKED(
	    rc = gild_submit_traced(c, fn, va, vk, timeout,
	        trace.traceparent != NULL ? &trace : NULL, &id, &err);
	    gild_value_free(va); gild_value_free(vk));
	client_leave(self);
	if (rc == GILD_OK)
		client_count_sent(self, 1);
	return call_id_or_raise(rc, &err, id);
}

/* sent() -> (messages, calls): how many messages submit and submit_many
 * sent on this client, and how many calls they held (for tests and
 * benchmarks: calls / messages is the mean batch size). */
static PyObject *
client_sent(client_obj *self, PyObject *unused)
{
	unsigned long long msgs, calls;

	Py_BEGIN_CRITICAL_SECTION(self);
	msgs = self->sent_msgs;
	calls = self->sent_calls;
	Py_END_CRITICAL_SECTION();
	return Py_BuildValue("(KK)", msgs, calls);
}

/* wait(call_id, timeout_ms=-1) -> outcome, or None if still running. */
static PyObject *
client_wait(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"call_id", "timeout_ms", NULL};
	uint64_t id;
	int timeout = -1, rc, slice, more = 0;
	gild_result res = {0};
	waiter w;
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(
	        args, kw, "O&|i:wait", kwlist, conv_id, &id, &timeout))
		return NULL;
	if (client_enter(self, &c) == -1)
		return NULL;
	waiter_init(&w, timeout);
	do {
		slice = waiter_slice(&w);
		UNLOCKED(rc = gild_wait(c, id, slice, &res));
	} while (rc == GILD_DEADLINE_EXCEEDED &&
	         (more = waiter_more(&w, slice)) > 0);
	client_leave(self);
	if (more < 0)
		return NULL;
	switch (rc) {
	case GILD_OK:
		return outcome_result(&res, self->pickle);
	case GILD_DEADLINE_EXCEEDED:
		Py_RETURN_NONE;
	case GILD_NOT_FOUND: {
		PyObject *key = PyLong_FromUnsignedLongLong(id);

		if (key != NULL) {
			PyErr_SetObject(PyExc_KeyError, key);
			Py_DECREF(key);
		}
		return NULL;
	}
	default:
		gild_result_clear(&res);
		return raise_gild(rc, NULL);
	}
}

/* poll(timeout_ms=-1) -> (call_id, outcome), or None on timeout. */
static PyObject *
client_poll(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"timeout_ms", NULL};
	int timeout = -1, rc, slice, more = 0;
	gild_result res = {0};
	PyObject *id, *out;
	waiter w;
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|i:poll", kwlist, &timeout))
		return NULL;
	if (client_enter(self, &c) == -1)
		return NULL;
	waiter_init(&w, timeout);
	do {
		slice = waiter_slice(&w);
		UNLOCKED(rc = gild_poll(c, slice, &res));
	} while (rc == GILD_DEADLINE_EXCEEDED &&
	         (more = waiter_more(&w, slice)) > 0);
	client_leave(self);
	if (more < 0)
		return NULL;
	switch (rc) {
	case GILD_OK:
		if ((id = PyLong_FromUnsignedLongLong(res.id)) == NULL) {
			gild_result_clear(&res);
			return NULL;
		}
		if ((out = outcome_result(&res, self->pickle)) == NULL) {
			Py_DECREF(id);
			return NULL;
		}
		return Py_BuildValue("(NN)", id, out);
	case GILD_DEADLINE_EXCEEDED:
		Py_RETURN_NONE;
	case GILD_NOT_FOUND:
		PyErr_SetString(PyExc_LookupError, "no call is in flight");
		return NULL;
	default:
		gild_result_clear(&res);
		return raise_gild(rc, NULL);
	}
}

/* The longest list one poll_many returns unless told. */
#define POLL_MANY_MAX 4096

/* poll_many(timeout_ms=-1, max=4096) -> list of (call_id, outcome): waits
 * like poll for one finished call, then takes, without waiting, the others
 * already finished (up to max in all: the calls of a batch reply come
 * together). [] on timeout; LookupError when no call is in flight. */
static PyObject *
client_poll_many(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"timeout_ms", "max", NULL};
	int timeout = -1, max = POLL_MANY_MAX, rc, slice, more = 0;
	gild_result *res;
	size_t got = 0;
	PyObject *out = NULL;
	waiter w;
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(
	        args, kw, "|ii:poll_many", kwlist, &timeout, &max))
		return NULL;
	if (max < 1) {
		PyErr_Format(
		    PyExc_ValueError, "max must be at least 1, not %d", max);
		return NULL;
	}
	if ((res = PyMem_Calloc((size_t) max, sizeof(*res))) == NULL)
		return PyErr_NoMemory();
	if (client_enter(self, &c) == -1) {
		PyMem_Free(res);
		return NULL;
	}
	waiter_init(&w, timeout);
	do {
		slice = waiter_slice(&w);
		UNLOCKED(rc = gild_poll(c, slice, &res[0]));
	} while (rc == GILD_DEADLINE_EXCEEDED &&
	         (more = waiter_more(&w, slice)) > 0);
	if (rc == GILD_OK) {
		got = 1;
		UNLOCKED(while (got < (size_t) max &&
		                gild_poll(c, 0, &res[got]) == GILD_OK) got++);
	}
	client_leave(self);
	if (more < 0)
		goto done;
	switch (rc) {
	case GILD_OK:
		break;
	case GILD_DEADLINE_EXCEEDED:
		out = PyList_New(0);
		goto done;
	case GILD_NOT_FOUND:
		PyErr_SetString(PyExc_LookupError, "no call is in flight");
		goto done;
	default:
		raise_gild(rc, NULL);
		goto done;
	}
	if ((out = PyList_New((Py_ssize_t) got)) == NULL)
		goto done;
	for (size_t i = 0; i < got; i++) {
		PyObject *id = PyLong_FromUnsignedLongLong(res[i].id);
		PyObject *o = id != NULL ? outcome_result(&res[i], self->pickle)
					 : NULL;
		PyObject *t = o != NULL ? PyTuple_New(2) : NULL;

		if (t == NULL) {
			Py_XDECREF(id);
			Py_XDECREF(o);
			Py_CLEAR(out);
			goto done;
		}
		PyTuple_SET_ITEM(t, 0, id);
		PyTuple_SET_ITEM(t, 1, o);
		PyList_SET_ITEM(out, (Py_ssize_t) i, t);
	}
done:
	for (size_t i = 0; i < got; i++)
		gild_result_clear(&res[i]); /* those not converted */
	PyMem_Free(res);
	return out;
}

/* cancel(call_id) -> True if the call was in flight. */
static PyObject *
client_cancel(client_obj *self, PyObject *arg)
{
	gild_error err = {0};
	uint64_t id;
	int rc;
	gild_client *c;

	if (!conv_id(arg, &id) || client_enter(self, &c) == -1)
		return NULL;
	UNLOCKED(rc = gild_cancel(c, id, &err));
	client_leave(self);
	if (rc != GILD_OK && rc != GILD_NOT_FOUND)
		raise_gild(rc, &err);
	gild_error_clear(&err);
	if (rc == GILD_OK)
		Py_RETURN_TRUE;
	if (rc == GILD_NOT_FOUND)
		Py_RETURN_FALSE;
	return NULL;
}

static PyObject *
client_shm_active(client_obj *self, PyObject *unused)
{
	gild_client *c;
	bool on;

	if (client_enter(self, &c) == -1)
		return NULL;
	on = gild_shm_active(c); /* does not block: the GIL stays held */
	client_leave(self);
	return PyBool_FromLong(on);
}

static PyObject *
client_in_flight(client_obj *self, PyObject *unused)
{
	gild_client *c;
	size_t n;

	if (client_enter(self, &c) == -1)
		return NULL;
	n = gild_in_flight(c); /* does not block: the GIL stays held */
	client_leave(self);
	return PyLong_FromSize_t(n);
}

/* call(function, args, kwargs=None, timeout_ms=-1) -> outcome */
static PyObject *
client_call(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {
	    "function", "args", "kwargs", "timeout_ms", NULL};
	PyObject *a, *k = Py_None, *out;
	const char *fn;
	int timeout = -1, rc;
	gild_value *va, *vk, *v = NULL;
	gild_error err = {0};
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(
	        args, kw, "sO|Oi:call", kwlist, &fn, &a, &k, &timeout))
		return NULL;
	if (call_begin(self, a, k, &va, &vk, &c) == -1)
		return NULL;
	UNLOCKED(rc = gild_call(c, fn, va, vk, timeout, &v, &err);
	         gild_value_free(va); gild_value_free(vk));
	client_leave(self);
	out = outcome_value(rc, v, &err, self->pickle);
	gild_error_clear(&err);
	return out;
}

/* status(timeout_ms=10000) -> outcome with the status dict */
static PyObject *
client_status(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"timeout_ms", NULL};
	int timeout = 10000, rc;
	gild_value *v = NULL;
	gild_error err = {0};
	PyObject *out;
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(
	        args, kw, "|i:status", kwlist, &timeout))
		return NULL;
	if (client_enter(self, &c) == -1)
		return NULL;
	UNLOCKED(rc = gild_status(c, timeout, &v, &err));
	client_leave(self);
	out = outcome_value(rc, v, &err, 0);
	gild_error_clear(&err);
	return out;
}

/* ping(timeout_ms=10000) -> outcome with value None */
static PyObject *
client_ping(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"timeout_ms", NULL};
	int timeout = 10000, rc;
	gild_error err = {0};
	PyObject *out;
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|i:ping", kwlist, &timeout))
		return NULL;
	if (client_enter(self, &c) == -1)
		return NULL;
	UNLOCKED(rc = gild_ping(c, timeout, &err));
	client_leave(self);
	out = outcome_py(rc, NULL, &err);
	gild_error_clear(&err);
	return out;
}

/* exec_submit(source, variables=None, filename=None, timeout_ms=0) ->
 * call id */
static PyObject *
client_exec_submit(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {
	    "source", "variables", "filename", "timeout_ms", NULL};
	PyObject *vars = Py_None;
	const char *src, *fname = NULL;
	int timeout = 0, rc;
	gild_value *va, *vv;
	gild_error err = {0};
	gild_call_id id = 0;
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|Ozi:exec_submit", kwlist,
	        &src, &vars, &fname, &timeout))
		return NULL;
	if (call_begin(self, Py_None, vars, &va, &vv, &c) == -1)
		return NULL;
	UNLOCKED(
	    rc = gild_submit_exec(c, src, vv, fname, timeout, &id, &err);
	    gild_value_free(va); gild_value_free(vv));
	client_leave(self);
	return call_id_or_raise(rc, &err, id);
}

/* exec(source, variables=None, timeout_ms=-1) -> outcome */
static PyObject *
client_exec(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"source", "variables", "timeout_ms", NULL};
	PyObject *vars = Py_None, *out;
	const char *src;
	int timeout = -1, rc;
	gild_value *va, *vv, *v = NULL;
	gild_error err = {0};
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|Oi:exec", kwlist, &src,
	        &vars, &timeout))
		return NULL;
	if (call_begin(self, Py_None, vars, &va, &vv, &c) == -1)
		return NULL;
	UNLOCKED(rc = gild_exec(c, src, vv, timeout, &v, &err);
	         gild_value_free(va); gild_value_free(vv));
	client_leave(self);
	out = outcome_value(rc, v, &err, self->pickle);
	gild_error_clear(&err);
	return out;
}

static PyMethodDef client_methods[] = {
    {"shm_active", (PyCFunction) client_shm_active, METH_NOARGS,
        "shm_active() -> whether shared memory is in use"},
    {"exec_submit", METH_KW(client_exec_submit), METH_VARARGS | METH_KEYWORDS,
        "exec_submit(source, variables=None, filename=None, timeout_ms=0) "
        "-> call id"},
    {"exec", METH_KW(client_exec), METH_VARARGS | METH_KEYWORDS,
        "exec(source, variables=None, timeout_ms=-1) -> outcome"},
    {"submit", METH_KW(client_submit), METH_VARARGS | METH_KEYWORDS,
        "submit(function, args, kwargs=None, timeout_ms=0) -> call id"},
    {"wait", METH_KW(client_wait), METH_VARARGS | METH_KEYWORDS,
        "wait(call_id, timeout_ms=-1) -> outcome, or None while it runs"},
    {"poll", METH_KW(client_poll), METH_VARARGS | METH_KEYWORDS,
        "poll(timeout_ms=-1) -> (call_id, outcome), or None on timeout"},
    {"poll_many", METH_KW(client_poll_many), METH_VARARGS | METH_KEYWORDS,
        "poll_many(timeout_ms=-1, max=4096) -> [(call_id, outcome), ...]: "
        "the finished calls, [] on timeout"},
    {"submit_many", (PyCFunction) client_submit_many, METH_O,
        "submit_many([(function, args, kwargs, timeout_ms), ...]) -> "
        "[call id, ...]: the calls sent in one message"},
    {"sent", (PyCFunction) client_sent, METH_NOARGS,
        "sent() -> (messages, calls) sent by submit and submit_many"},
    {"cancel", (PyCFunction) client_cancel, METH_O,
        "cancel(call_id) -> True if the call was in flight"},
    {"in_flight", (PyCFunction) client_in_flight, METH_NOARGS,
        "in_flight() -> number of submitted calls not yet returned"},
    {"call", METH_KW(client_call), METH_VARARGS | METH_KEYWORDS,
        "call(function, args, kwargs=None, timeout_ms=-1) -> outcome"},
    {"status", METH_KW(client_status), METH_VARARGS | METH_KEYWORDS,
        "status(timeout_ms=10000) -> outcome with the status dict"},
    {"ping", METH_KW(client_ping), METH_VARARGS | METH_KEYWORDS,
        "ping(timeout_ms=10000) -> outcome"},
    {"stream", METH_KW(client_stream), METH_VARARGS | METH_KEYWORDS,
        "stream(function, args, kwargs=None, window=0, timeout_ms=0) -> "
        "Stream"},
    {"actor_new", METH_KW(client_actor_new), METH_VARARGS | METH_KEYWORDS,
        "actor_new(class_name, args, kwargs=None, name=None, "
        "detached=False, timeout_ms=-1) -> outcome with the actor id"},
    {"actor_get", METH_KW(client_actor_get), METH_VARARGS | METH_KEYWORDS,
        "actor_get(name, timeout_ms=-1) -> outcome with the actor id"},
    {"actor_destroy", METH_KW(client_actor_destroy),
        METH_VARARGS | METH_KEYWORDS,
        "actor_destroy(actor_id, timeout_ms=-1) -> outcome"},
    {"actor_submit", METH_KW(client_actor_submit), METH_VARARGS | METH_KEYWORDS,
        "actor_submit(actor_id, method, args, kwargs=None) -> call id"},
    {"actor_call", METH_KW(client_actor_call), METH_VARARGS | METH_KEYWORDS,
        "actor_call(actor_id, method, args, kwargs=None, timeout_ms=-1) "
        "-> outcome"},
    {"close", (PyCFunction) client_close, METH_NOARGS,
        "close(): closes its streams and the connections (idempotent)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef client_getset[] = {
    {"closed", (getter) client_get_closed, NULL, "True once closed", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* The head macro ends in a comma, which clang-format does not know. */
/* clang-format off */
PyTypeObject client_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gild._native.Client",
    .tp_basicsize = sizeof(client_obj),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Client(urls): a libgild connection to gild servers.",
    .tp_new = client_new,
    .tp_init = (initproc) client_init,
    .tp_dealloc = (destructor) client_dealloc,
    .tp_weaklistoffset = offsetof(client_obj, weakrefs),
    .tp_methods = client_methods,
    .tp_getset = client_getset,
};
/* clang-format on */

/* ------------------------------------------------------------------ module */

static PyObject *
mod_code_name(PyObject *mod, PyObject *arg)
{
	int overflow = 0;
	long code = PyLong_AsLongAndOverflow(arg, &overflow);

	if (code == -1 && PyErr_Occurred())
		return NULL;
	if (overflow || code < INT_MIN || code > INT_MAX)
		return PyUnicode_FromString("UNKNOWN");
	return PyUnicode_FromString(gild_code_name((int) code));
}

/* _roundtrip(obj): obj sent and received through a gild_value, without a
 * server (for tests). */
static PyObject *
mod_roundtrip(PyObject *mod, PyObject *arg)
{
	gild_value *v = pyvalue_from_py(arg, 0);
	PyObject *out;

	if (v == NULL)
		return NULL;
	out = pyvalue_to_py(v, 0);
	gild_value_free(v);
	return out;
}

static PyObject *
mod_use_numpy(PyObject *mod, PyObject *arg)
{
	int on = PyObject_IsTrue(arg);

	if (on == -1)
		return NULL;
	pyvalue_use_numpy(on);
	Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"code_name", mod_code_name, METH_O,
        "code_name(code) -> 'NOT_FOUND', ... ('UNKNOWN' if not a code)"},
    {"_roundtrip", mod_roundtrip, METH_O,
        "_roundtrip(obj): converts obj to a gild value and back (tests)"},
    {"_use_numpy", mod_use_numpy, METH_O,
        "_use_numpy(flag): tests: with False, act as if numpy were absent"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "gild._native",
    .m_doc = "libgild, the C client of gild servers, for Python.",
    .m_size = -1,
    .m_methods = module_methods,
};

static const struct {
	const char *name;
	int code;
} codes[] = {
    {"STREAM_END", GILD_STREAM_END},
    {"OK", GILD_OK},
    {"CANCELLED", GILD_CANCELLED},
    {"UNKNOWN", GILD_UNKNOWN},
    {"INVALID_ARGUMENT", GILD_INVALID_ARGUMENT},
    {"DEADLINE_EXCEEDED", GILD_DEADLINE_EXCEEDED},
    {"NOT_FOUND", GILD_NOT_FOUND},
    {"ALREADY_EXISTS", GILD_ALREADY_EXISTS},
    {"PERMISSION_DENIED", GILD_PERMISSION_DENIED},
    {"RESOURCE_EXHAUSTED", GILD_RESOURCE_EXHAUSTED},
    {"FAILED_PRECONDITION", GILD_FAILED_PRECONDITION},
    {"UNIMPLEMENTED", GILD_UNIMPLEMENTED},
    {"INTERNAL", GILD_INTERNAL},
    {"UNAVAILABLE", GILD_UNAVAILABLE},
    {"UNAUTHENTICATED", GILD_UNAUTHENTICATED},
    {"WORKER_LOST", GILD_WORKER_LOST},
    {"PYTHON_ERROR", GILD_PYTHON_ERROR},
    {"MAX_IN_FLIGHT", GILD_MAX_IN_FLIGHT},
    {"STREAM_MAX_WINDOW", GILD_STREAM_MAX_WINDOW},
    {"MAX_BATCH", GILD_MAX_BATCH},
    /* the containers one value may nest (proto/gild_limits.h) */
    {"VALUE_DEPTH_MAX", GILD_VALUE_DEPTH_MAX},
};

PyMODINIT_FUNC
PyInit__native(void)
{
	PyObject *m;

	if (PyType_Ready(&client_type) < 0 || PyType_Ready(&stream_type) < 0 ||
	    PyType_Ready(&call_type) < 0 ||
	    pyvalue_init() == -1)
		return NULL;
	if ((m = PyModule_Create(&module_def)) == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (PyModule_AddIntConstant(m, codes[i].name, codes[i].code) <
		    0)
			goto fail;
#ifdef GILD_VERSION
	if (PyModule_AddStringConstant(m, "__version__", GILD_VERSION) < 0)
		goto fail;
#endif
	if (PyModule_AddType(m, &client_type) < 0 ||
	    PyModule_AddType(m, &stream_type) < 0 ||
	    PyModule_AddType(m, &call_type) < 0)
		goto fail;
#ifdef Py_GIL_DISABLED
	/* Without it, importing the module would turn the GIL back on. */
	if (PyUnstable_Module_SetGIL(m, Py_MOD_GIL_NOT_USED) < 0)
		goto fail;
#endif
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
