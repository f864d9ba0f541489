/* gild._native's internals shared by its files: the Client and Stream
 * objects, and what several of the files use (outcomes: native_outcome.c;
 * long waits: native_wait.c; a client in use: _native.c). Not installed,
 * not for other code. The module's whole design is at the top of
 * _native.c. */
#ifndef GILD_PY_NATIVE_H
#define GILD_PY_NATIVE_H

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

typedef struct {
	bool sliced;
	int timeout_ms; /* -1: no limit */
	struct timespec end;
} waiter;

extern PyTypeObject client_type, stream_type, call_type;

/* ---- outcomes (native_outcome.c) */
PyObject *outcome_py(int code, PyObject *value, const gild_error *e);
PyObject *take_exception(PyObject **type);
PyObject *outcome_value(int code, gild_value *v, const gild_error *e, int pickle);
PyObject *outcome_result(gild_result *res, int pickle);
PyObject *raise_gild(int code, const gild_error *err);
int conv_id(PyObject *o, void *out);

/* ---- long waits (native_wait.c) */
void waiter_init(waiter *w, int timeout_ms);
int waiter_slice(const waiter *w);
int waiter_more(const waiter *w, int slice);

/* ---- a client in use (_native.c) */
int client_check(client_obj *self);
int client_enter(client_obj *self, gild_client **out);
void client_leave(client_obj *self);
int call_begin(client_obj *self, PyObject *a, PyObject *k, gild_value **va,
    gild_value **vk, gild_client **c);
PyObject *call_id_or_raise(int rc, gild_error *err, gild_call_id id);
void client_count_sent(client_obj *self, size_t n);

/* ---- streams (native_stream.c) */
gild_stream *stream_detach(stream_obj *st);
void stream_release(client_obj *cl, gild_stream *s);
void stream_shut(stream_obj *st);
PyObject *client_stream(client_obj *self, PyObject *args, PyObject *kw);

/* ---- Client methods of the other files */
PyObject *client_submit_many(client_obj *self, PyObject *calls);
PyObject *client_actor_new(client_obj *self, PyObject *args, PyObject *kw);
PyObject *client_actor_get(client_obj *self, PyObject *args, PyObject *kw);
PyObject *client_actor_destroy(client_obj *self, PyObject *args, PyObject *kw);
PyObject *client_actor_submit(client_obj *self, PyObject *args, PyObject *kw);
PyObject *client_actor_call(client_obj *self, PyObject *args, PyObject *kw);

#endif
