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
#include "gild_limits.h"
#include "pyvalue.h"
#include "value.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Runs stmt with the GIL released. */
#define UNLOCKED(stmt)                                                         \
	do {                                                                   \
		Py_BEGIN_ALLOW_THREADS stmt;                                   \
		Py_END_ALLOW_THREADS                                           \
	} while (0)

/* Before 3.13 there are no critical sections: the GIL is the lock. */
#ifndef Py_BEGIN_CRITICAL_SECTION
#define Py_BEGIN_CRITICAL_SECTION(op) {
#define Py_END_CRITICAL_SECTION() }
#endif

/* Method table entries: the cast is the documented CPython idiom. */
#define METH_KW(fn) ((PyCFunction) (void (*)(void))(fn))

typedef struct stream_obj stream_obj;

/* A Client. libgild frees a gild_client in gild_close, which must not run
 * while another thread is inside libgild with it: `busy` counts the threads
 * that released the GIL with c in hand, and close() only marks the client
 * closed while any are; the last one out closes it. Every field but
 * weakrefs is guarded by the client's critical section. */
typedef struct {
	PyObject ob_base;    /* PyObject_HEAD */
	gild_client *c;      /* NULL until connected and once closed */
	int busy;            /* threads using c with the GIL released */
	bool closed;         /* close() was called */
	uint64_t sent_msgs;  /* messages sent by submit and submit_many */
	uint64_t sent_calls; /* calls in them */
	stream_obj *streams; /* its open streams (each holds a reference) */
	bool pickle;         /* Client(pickle=True): set once by __init__ */
	PyObject *weakrefs;
} client_obj;

/* A Stream: keeps its client alive, and is closed before it (libgild
 * requires it). A stream is read by one thread at a time. Its fields are
 * guarded by its client's critical section (client itself is set once). */
struct stream_obj {
	PyObject ob_base;   /* PyObject_HEAD */
	client_obj *client; /* strong reference */
	gild_stream *s;     /* NULL once closed */
	bool busy;          /* a thread is in gild_stream_next */
	bool closing;       /* close() came while busy: the reader closes it */
	uint64_t seq;       /* gild_stream_seq when it was closed */
	stream_obj *prev, *next; /* client->streams */
	PyObject *weakrefs;
};

static PyTypeObject client_type;
static PyTypeObject stream_type;

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
static PyObject *
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
static PyObject *
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
static PyObject *
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
static PyObject *
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
static PyObject *
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
static int
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

/* ------------------------------------------------------------------- Call */

/* A call prepared for submit_many: its arguments already converted, so
 * that a value gild cannot send is refused when the call is made, not when
 * it is sent. Immutable once made (so any thread may send it); it can be
 * sent any number of times. */
typedef struct {
	PyObject ob_base;   /* PyObject_HEAD */
	PyObject *function; /* str (new reference): name is its UTF-8 */
	const char *name;
	gild_value *args, *kwargs; /* owned */
	int timeout_ms;
} call_obj;

static PyTypeObject call_type;

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
static PyTypeObject call_type = {
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

/* ------------------------------------------------------------ long waits */

/* In the main thread a wait with no limit (or a long one) runs in slices of
 * SLICE_MS, so that signal handlers run in between: Ctrl-C interrupts
 * wait(), poll() and Stream.next() as it would time.sleep(). Other threads
 * wait in one go (Python runs signal handlers in the main thread only). */
#define SLICE_MS 100

/* Whether this thread may run signal handlers. 3.13 made
 * _PyOS_IsMainThread internal: there every thread slices its long waits,
 * PyErr_CheckSignals doing nothing outside the main thread. */
static bool
runs_signal_handlers(void)
{
#if PY_VERSION_HEX < 0x030D0000
	return _PyOS_IsMainThread();
#else
	return true;
#endif
}

typedef struct {
	bool sliced;
	int timeout_ms; /* -1: no limit */
	struct timespec end;
} waiter;

static void
waiter_init(waiter *w, int timeout_ms)
{
	w->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
	w->sliced = (timeout_ms < 0 || timeout_ms > SLICE_MS) &&
	            runs_signal_handlers();
	clock_gettime(CLOCK_MONOTONIC, &w->end);
	if (timeout_ms > 0) {
		w->end.tv_sec += timeout_ms / 1000;
		w->end.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
		if (w->end.tv_nsec >= 1000000000L) {
			w->end.tv_sec++;
			w->end.tv_nsec -= 1000000000L;
		}
	}
}

/* The milliseconds to wait next. */
static int
waiter_slice(const waiter *w)
{
	struct timespec now;
	long long left;

	if (!w->sliced)
		return w->timeout_ms;
	if (w->timeout_ms < 0)
		return SLICE_MS;
	clock_gettime(CLOCK_MONOTONIC, &now);
	left = (long long) (w->end.tv_sec - now.tv_sec) * 1000 +
	       (w->end.tv_nsec - now.tv_nsec) / 1000000;
	return left <= 0 ? 0 : left < SLICE_MS ? (int) left : SLICE_MS;
}

/* After a slice of `slice` ms passed with nothing: 1 to wait on, 0 when
 * the whole timeout has passed, -1 with the exception a signal handler
 * raised. */
static int
waiter_more(const waiter *w, int slice)
{
	if (!w->sliced)
		return 0;
	if (PyErr_CheckSignals() == -1)
		return -1;
	return w->timeout_ms < 0 || (slice > 0 && waiter_slice(w) > 0);
}

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
static int
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
static int
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
static void
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

/* In the critical section of st's client: takes st off the client's list
 * and out of st, and counts the client busy until stream_release closes
 * the returned stream. NULL if st was closed already. */
static gild_stream *
stream_detach(stream_obj *st)
{
	gild_stream *s = st->s;
	client_obj *cl = st->client;

	if (s == NULL)
		return NULL;
	st->seq = gild_stream_seq(s);
	st->s = NULL;
	if (st->prev != NULL)
		st->prev->next = st->next;
	else
		cl->streams = st->next;
	if (st->next != NULL)
		st->next->prev = st->prev;
	st->prev = st->next = NULL;
	cl->busy++;
	return s;
}

/* Out of any critical section: closes s (from stream_detach; NULL for
 * none) with the GIL released, then leaves its client cl. */
static void
stream_release(client_obj *cl, gild_stream *s)
{
	if (s == NULL)
		return;
	UNLOCKED(gild_stream_close(s));
	client_leave(cl);
}

/* Closes st's libgild stream if it is open. */
static void
stream_shut(stream_obj *st)
{
	client_obj *cl = st->client;
	gild_stream *s;

	Py_BEGIN_CRITICAL_SECTION(cl);
	s = stream_detach(st);
	Py_END_CRITICAL_SECTION();
	stream_release(cl, s);
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
static int
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
static PyObject *
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
static void
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
static PyObject *
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

/* stream(function, args, kwargs=None, window=0, timeout_ms=0,
 * actor_id=0) -> Stream; with an actor id, of that actor's method
 * `function`. */
static PyObject *
client_stream(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"function", "args", "kwargs", "window",
	    "timeout_ms", "actor_id", NULL};
	PyObject *a, *k = Py_None;
	const char *fn;
	uint64_t aid = 0;
	int window = 0, timeout = 0, rc;
	gild_value *va, *vk;
	gild_error err = {0};
	gild_stream *s = NULL;
	stream_obj *st;
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "sO|OiiO&:stream", kwlist,
	        &fn, &a, &k, &window, &timeout, conv_id, &aid))
		return NULL;
	if (call_begin(self, a, k, &va, &vk, &c) == -1)
		return NULL;
	UNLOCKED(rc = aid != 0 ? gild_actor_stream_open(c, aid, fn, va, vk,
	                             window, timeout, &s, &err)
	                       : gild_stream_open(
	                             c, fn, va, vk, window, timeout, &s, &err);
	         gild_value_free(va); gild_value_free(vk));
	if (rc != GILD_OK) {
		client_leave(self);
		raise_gild(rc, &err);
		gild_error_clear(&err);
		return NULL;
	}
	st = PyObject_New(stream_obj, &stream_type);
	if (st == NULL) {
		UNLOCKED(gild_stream_close(s));
		client_leave(self);
		return NULL;
	}
	Py_INCREF(self);
	st->client = self;
	st->s = NULL;
	st->busy = st->closing = false;
	st->seq = 0;
	st->weakrefs = NULL;
	st->prev = st->next = NULL;
	/* close() may have run while the stream opened: it did not see it. */
	Py_BEGIN_CRITICAL_SECTION(self);
	if (!self->closed) {
		st->s = s;
		st->next = self->streams;
		if (self->streams != NULL)
			self->streams->prev = st;
		self->streams = st;
		s = NULL;
	}
	Py_END_CRITICAL_SECTION();
	if (s != NULL) {
		UNLOCKED(gild_stream_close(s));
		client_leave(self);
		Py_DECREF(st);
		PyErr_SetString(PyExc_ValueError, "client is closed");
		return NULL;
	}
	client_leave(self);
	return (PyObject *) st;
}

/* actor_new(class_name, args, kwargs=None, name=None, detached=False,
 * timeout_ms=-1) -> outcome with the actor id */
static PyObject *
client_actor_new(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"class_name", "args", "kwargs", "name",
	    "detached", "timeout_ms", NULL};
	PyObject *a, *k = Py_None, *out;
	const char *cls, *name = NULL;
	int detached = 0, timeout = -1, rc;
	gild_value *va, *vk;
	gild_error err = {0};
	gild_actor_id aid = 0;
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "sO|Ozpi:actor_new", kwlist,
	        &cls, &a, &k, &name, &detached, &timeout))
		return NULL;
	if (call_begin(self, a, k, &va, &vk, &c) == -1)
		return NULL;
	UNLOCKED(rc = gild_actor_new(c, cls, va, vk, name, detached != 0,
	             timeout, &aid, &err);
	         gild_value_free(va); gild_value_free(vk));
	client_leave(self);
	out = outcome_py(
	    rc, rc == GILD_OK ? PyLong_FromUnsignedLongLong(aid) : NULL, &err);
	gild_error_clear(&err);
	return out;
}

/* actor_get(name, timeout_ms=-1) -> outcome with (actor id, class name),
 * the class name None from a server too old to say */
static PyObject *
client_actor_get(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"name", "timeout_ms", NULL};
	const char *name;
	char *cls = NULL;
	int timeout = -1, rc;
	gild_error err = {0};
	gild_actor_id aid = 0;
	PyObject *out, *v = NULL;
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(
	        args, kw, "s|i:actor_get", kwlist, &name, &timeout))
		return NULL;
	if (client_enter(self, &c) == -1)
		return NULL;
	UNLOCKED(rc = gild_actor_lookup(c, name, timeout, &aid, &cls, &err));
	client_leave(self);
	if (rc == GILD_OK)
		v = cls != NULL ? Py_BuildValue("(Ks)", (unsigned long long) aid,
				      cls)
				: Py_BuildValue("(KO)", (unsigned long long) aid,
				      Py_None);
	free(cls);
	if (rc == GILD_OK && v == NULL)
		return NULL;
	out = outcome_py(rc, v, &err);
	gild_error_clear(&err);
	return out;
}

/* actor_destroy(actor_id, timeout_ms=-1) -> outcome with value True */
static PyObject *
client_actor_destroy(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"actor_id", "timeout_ms", NULL};
	uint64_t aid;
	int timeout = -1, rc;
	gild_error err = {0};
	PyObject *out;
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|i:actor_destroy", kwlist,
	        conv_id, &aid, &timeout))
		return NULL;
	if (client_enter(self, &c) == -1)
		return NULL;
	UNLOCKED(rc = gild_actor_destroy(c, aid, timeout, &err));
	client_leave(self);
	out = outcome_py(rc, rc == GILD_OK ? Py_NewRef(Py_True) : NULL, &err);
	gild_error_clear(&err);
	return out;
}

/* actor_submit(actor_id, method, args, kwargs=None, timeout_ms=0) ->
 * call id */
static PyObject *
client_actor_submit(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {
	    "actor_id", "method", "args", "kwargs", "timeout_ms", NULL};
	PyObject *a, *k = Py_None;
	const char *method;
	uint64_t aid;
	int timeout = 0, rc;
	gild_value *va, *vk;
	gild_error err = {0};
	gild_call_id id = 0;
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&sO|Oi:actor_submit",
	        kwlist, conv_id, &aid, &method, &a, &k, &timeout))
		return NULL;
	if (call_begin(self, a, k, &va, &vk, &c) == -1)
		return NULL;
	UNLOCKED(
	    rc = gild_actor_submit_timeout(c, aid, method, va, vk, timeout,
	        &id, &err);
	    gild_value_free(va); gild_value_free(vk));
	client_leave(self);
	if (rc == GILD_OK)
		client_count_sent(self, 1);
	return call_id_or_raise(rc, &err, id);
}

/* actor_call(actor_id, method, args, kwargs=None, timeout_ms=-1) -> outcome
 */
static PyObject *
client_actor_call(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {
	    "actor_id", "method", "args", "kwargs", "timeout_ms", NULL};
	PyObject *a, *k = Py_None, *out;
	const char *method;
	uint64_t aid;
	int timeout = -1, rc;
	gild_value *va, *vk, *v = NULL;
	gild_error err = {0};
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&sO|Oi:actor_call", kwlist,
	        conv_id, &aid, &method, &a, &k, &timeout))
		return NULL;
	if (call_begin(self, a, k, &va, &vk, &c) == -1)
		return NULL;
	UNLOCKED(rc = gild_actor_call(
	             c, aid, method, va, vk, timeout, &v, &err);
	         gild_value_free(va); gild_value_free(vk));
	client_leave(self);
	out = outcome_value(rc, v, &err, self->pickle);
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
static PyTypeObject client_type = {
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

/* ------------------------------------------------------------------ Stream */

static void
stream_dealloc(stream_obj *self)
{
	if (self->weakrefs != NULL)
		PyObject_ClearWeakRefs((PyObject *) self);
	if (self->client != NULL) {
		stream_shut(self); /* before the client can go */
		Py_CLEAR(self->client);
	}
	PyObject_Free(self);
}

/* next(timeout_ms=-1) -> outcome: OK with a chunk; STREAM_END at the end;
 * DEADLINE_EXCEEDED with error None when no chunk came in time (the stream
 * goes on); else the error that ended it. */
static PyObject *
stream_next(stream_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"timeout_ms", NULL};
	client_obj *cl = self->client;
	int timeout = -1, rc, slice, more = 0;
	gild_value *v = NULL;
	gild_error err = {0};
	gild_stream *s = NULL, *shut = NULL;
	bool closed = false;
	PyObject *out;
	waiter w;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|i:next", kwlist, &timeout))
		return NULL;
	Py_BEGIN_CRITICAL_SECTION(cl);
	if (self->s == NULL || self->closing || cl->closed) {
		closed = true;
	} else if (!self->busy) {
		self->busy = true;
		cl->busy++;
		s = self->s;
	}
	Py_END_CRITICAL_SECTION();
	if (closed) {
		PyErr_SetString(PyExc_ValueError, "stream is closed");
		return NULL;
	}
	if (s == NULL) {
		PyErr_SetString(PyExc_RuntimeError,
		    "another thread is reading this stream");
		return NULL;
	}
	waiter_init(&w, timeout);
	do {
		slice = waiter_slice(&w);
		UNLOCKED(rc = gild_stream_next(s, slice, &v, &err));
	} while (rc == GILD_DEADLINE_EXCEEDED && err.code == 0 &&
	         (more = waiter_more(&w, slice)) > 0);
	Py_BEGIN_CRITICAL_SECTION(cl);
	self->busy = false;
	if (self->closing)
		shut = stream_detach(self);
	Py_END_CRITICAL_SECTION();
	stream_release(cl, shut);
	client_leave(cl);
	if (more < 0)
		return NULL;
	if (rc == GILD_STREAM_END ||
	    (rc == GILD_DEADLINE_EXCEEDED && err.code == 0))
		out = outcome_py(rc, NULL, NULL);
	else
		out = outcome_value(rc, v, &err, cl->pickle);
	gild_error_clear(&err);
	return out;
}

static PyObject *
stream_seq(stream_obj *self, PyObject *unused)
{
	uint64_t seq;

	Py_BEGIN_CRITICAL_SECTION(self->client);
	seq = self->s != NULL ? gild_stream_seq(self->s) : self->seq;
	Py_END_CRITICAL_SECTION();
	return PyLong_FromUnsignedLongLong(seq);
}

/* close(): idempotent; a stream being read in another thread is closed
 * when that read returns. */
static PyObject *
stream_close(stream_obj *self, PyObject *unused)
{
	client_obj *cl = self->client;
	gild_stream *s = NULL;

	Py_BEGIN_CRITICAL_SECTION(cl);
	if (self->busy)
		self->closing = true;
	else
		s = stream_detach(self);
	Py_END_CRITICAL_SECTION();
	stream_release(cl, s);
	Py_RETURN_NONE;
}

/* fileno() -> an fd readable when next(0) has something (gild_stream_fd):
 * lets an asyncio loop wait for any number of streams without a thread
 * each. */
static PyObject *
stream_fileno(stream_obj *self, PyObject *unused)
{
	int fd = -EINVAL;

	Py_BEGIN_CRITICAL_SECTION(self->client);
	if (self->s != NULL && !self->closing)
		fd = gild_stream_fd(self->s);
	Py_END_CRITICAL_SECTION();
	if (fd == -EINVAL) {
		PyErr_SetString(PyExc_ValueError, "stream is closed");
		return NULL;
	}
	if (fd < 0) {
		errno = -fd;
		return PyErr_SetFromErrno(PyExc_OSError);
	}
	return PyLong_FromLong(fd);
}

static PyObject *
stream_get_closed(stream_obj *self, void *unused)
{
	bool closed;

	Py_BEGIN_CRITICAL_SECTION(self->client);
	closed = self->s == NULL || self->closing;
	Py_END_CRITICAL_SECTION();
	return PyBool_FromLong(closed);
}

static PyMethodDef stream_methods[] = {
    {"next", METH_KW(stream_next), METH_VARARGS | METH_KEYWORDS,
        "next(timeout_ms=-1) -> outcome"},
    {"seq", (PyCFunction) stream_seq, METH_NOARGS,
        "seq() -> the number of chunks returned so far"},
    {"fileno", (PyCFunction) stream_fileno, METH_NOARGS,
        "fileno() -> an fd readable when next(0) has something"},
    {"close", (PyCFunction) stream_close, METH_NOARGS,
        "close(): cancels the stream on the server if it still runs"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef stream_getset[] = {
    {"closed", (getter) stream_get_closed, NULL, "True once closed", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* The head macro ends in a comma, which clang-format does not know. */
/* clang-format off */
static PyTypeObject stream_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gild._native.Stream",
    .tp_basicsize = sizeof(stream_obj),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The chunks of a streaming call (Client.stream).",
    .tp_dealloc = (destructor) stream_dealloc,
    .tp_weaklistoffset = offsetof(stream_obj, weakrefs),
    .tp_methods = stream_methods,
    .tp_getset = stream_getset,
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
