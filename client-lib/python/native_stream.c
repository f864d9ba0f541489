/* gild._native: streams: Client.stream and the Stream type. */
#include "native.h"

/* In the critical section of st's client: takes st off the client's list
 * and out of st, and counts the client busy until stream_release closes
 * the returned stream. NULL if st was closed already. */
gild_stream *
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
void
stream_release(client_obj *cl, gild_stream *s)
{
	if (s == NULL)
		return;
	UNLOCKED(gild_stream_close(s));
	client_leave(cl);
}

/* Closes st's libgild stream if it is open. */
void
stream_shut(stream_obj *st)
{
	client_obj *cl = st->client;
	gild_stream *s;

	Py_BEGIN_CRITICAL_SECTION(cl);
	s = stream_detach(st);
	Py_END_CRITICAL_SECTION();
	stream_release(cl, s);
}

/* stream(function, args, kwargs=None, window=0, timeout_ms=0,
 * actor_id=0) -> Stream; with an actor id, of that actor's method
 * `function`. */
PyObject *
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
PyTypeObject stream_type = {
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
