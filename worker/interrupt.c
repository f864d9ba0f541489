/* interrupt: raising DeadlineInterrupt / CancelInterrupt in a running job. */
#include "interrupt.h"

#include <Python.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "gild.pb-c.h"

/* Each Python thread that runs jobs has a runner: the job it runs now and
 * what an interrupt or a credit needs to reach it. A worker of the process
 * runtime has one; a free-threaded worker one per --threads. Everything here
 * is touched under mu. It is taken with the GIL held or not (the reader
 * thread has none), but nothing done while holding it waits for Python, so
 * it cannot deadlock against the GIL or a stop-the-world pause.
 * Interrupts that came before their job started wait in early[]. */
#define EARLY_MAX 64

typedef struct runner {
	uint64_t job;      /* 0: none */
	uint64_t credit;   /* chunks job may still send */
	job_ctx ctx;       /* for gild.context() */
	double deadline;   /* time.monotonic() value, or 0 */
	unsigned long tid; /* its thread, for SetAsyncExc */
	int code;          /* interrupt delivered to it, or 0 */
} runner;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER; /* credit or interrupt */
static runner one_runner;
static runner *runners = &one_runner;
static int nrunners = 1;
static _Thread_local int self_index; /* this thread's runner */
static struct {
	uint64_t job_id;
	int code;
} early[EARLY_MAX];
static unsigned early_next;

static PyObject *exc_interrupted, *exc_deadline, *exc_cancel;
/* _gild_worker.call_var: the context_info() of the async call whose task
 * runs (set in the task's context by gild/_loop.py). */
static PyObject *call_var;

/* Async jobs in flight on the worker's asyncio loops (under mu): an
 * interrupt for one is queued for the loop that runs it, which cancels its
 * task, and that loop's eventfd is written. */
typedef struct async_job {
	uint64_t job_id;
	int code;    /* the interrupt that came, or 0 */
	bool queued; /* code is waiting in the loop's queue */
	int owner;   /* the thread whose loop runs it */
	struct async_job *next;
} async_job;
static async_job *async_jobs;
static int *wake_fds; /* [nrunners]: each thread's loop's eventfd, or -1 */

static double
monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

void
job_ctx_trace(job_ctx *ctx, const uint8_t *traceparent, size_t tp_len,
    const uint8_t *tracestate, size_t ts_len)
{
	if (tp_len >= sizeof(ctx->traceparent))
		tp_len = 0; /* not one the front end lets through */
	if (ts_len >= sizeof(ctx->tracestate))
		ts_len = 0;
	if (tp_len > 0)
		memcpy(ctx->traceparent, traceparent, tp_len);
	ctx->traceparent[tp_len] = '\0';
	if (ts_len > 0)
		memcpy(ctx->tracestate, tracestate, ts_len);
	ctx->tracestate[ts_len] = '\0';
}

/* A str of s, or None when it is empty; new. */
static PyObject *
str_or_none(const char *s)
{
	if (s[0] == '\0')
		Py_RETURN_NONE;
	return PyUnicode_FromString(s);
}

/* _gild_worker.context_info(): (request_id, function, deadline or None,
 * queued_ms, batch_size, traceparent or None, tracestate or None) of the
 * running call; RuntimeError outside one. */
static PyObject *
context_info(PyObject *self, PyObject *unused)
{
	runner r;

	pthread_mutex_lock(&mu);
	r = runners[self_index];
	pthread_mutex_unlock(&mu);
	if (r.job == 0) {
		PyObject *task_call = NULL;

		/* An async call's task: its context came with it. */
		if (PyContextVar_Get(call_var, NULL, &task_call) == -1)
			return NULL;
		if (task_call != NULL)
			return task_call;
		PyErr_SetString(PyExc_RuntimeError,
		    "gild.context() is only available inside a call");
		return NULL;
	}
	/* r.ctx.function stays valid while this thread's job runs. */
	return Py_BuildValue("(KsNdkNN)", (unsigned long long) r.ctx.request_id,
	    r.ctx.function ? r.ctx.function : "",
	    r.deadline > 0 ? PyFloat_FromDouble(r.deadline) : Py_NewRef(Py_None),
	    r.ctx.queued_us / 1000.0, (unsigned long) r.ctx.batch_size,
	    str_or_none(r.ctx.traceparent), str_or_none(r.ctx.tracestate));
}

/* _gild_worker.log_context(): (request_id, function) of the async call
 * whose task runs, or of the call running on this thread, or None: what
 * app output is tagged with (applog.c). */
static PyObject *
log_context(PyObject *self, PyObject *unused)
{
	unsigned long tid = PyThread_get_thread_ident();
	unsigned long long rid;
	PyObject *task_call = NULL;
	char fn[128];
	bool in_call;

	if (PyContextVar_Get(call_var, NULL, &task_call) == -1)
		return NULL;
	if (task_call != NULL) { /* context_info(): its first two */
		PyObject *t = PyTuple_GetSlice(task_call, 0, 2);
		Py_DECREF(task_call);
		return t;
	}
	/* A thread the app started is in no call, whatever its runner says
	 * (self_index is 0 there). */
	pthread_mutex_lock(&mu);
	in_call = runners[self_index].job != 0 && runners[self_index].tid == tid;
	rid = (unsigned long long) runners[self_index].ctx.request_id;
	/* Copied under mu: the name is the job's, valid while it runs. */
	snprintf(fn, sizeof(fn), "%s",
	    in_call && runners[self_index].ctx.function
		? runners[self_index].ctx.function
		: "");
	pthread_mutex_unlock(&mu);
	if (!in_call)
		Py_RETURN_NONE;
	return Py_BuildValue("(Ks)", rid, fn);
}

/* _gild_worker.cancelled(): whether the running call has been told to stop
 * (cancelled, or past its deadline). */
static PyObject *
cancelled(PyObject *self, PyObject *unused)
{
	int yes;

	pthread_mutex_lock(&mu);
	yes = runners[self_index].job != 0 && runners[self_index].code != 0;
	pthread_mutex_unlock(&mu);
	return PyBool_FromLong(yes);
}

static PyMethodDef module_methods[] = {
    {"context_info", context_info, METH_NOARGS,
	"(request_id, function, deadline, queued_ms, batch_size, traceparent, "
	"tracestate) of the running call."},
    {"log_context", log_context, METH_NOARGS,
	"(request_id, function) of the call running on this thread, or None."},
    {"cancelled", cancelled, METH_NOARGS,
	"Whether the running call has been told to stop."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_gild_worker",
    .m_doc = "gild-worker internals: the exceptions that interrupt a call, "
	     "and the running call's context.",
    .m_size = -1,
    .m_methods = module_methods,
};

static PyObject *
module_init(void)
{
	PyObject *m = PyModule_Create(&module_def);

	if (m == NULL)
		return NULL;
#ifdef Py_GIL_DISABLED
	/* Its state is under mu: it needs no GIL (or importing it would turn
	 * the GIL back on in a free-threaded worker). */
	PyUnstable_Module_SetGIL(m, Py_MOD_GIL_NOT_USED);
#endif
	exc_interrupted = PyErr_NewExceptionWithDoc("gild.Interrupted",
	    "A call was stopped from outside while it ran.",
	    PyExc_BaseException, NULL);
	if (exc_interrupted == NULL)
		goto fail;
	exc_deadline = PyErr_NewExceptionWithDoc("gild.DeadlineInterrupt",
	    "The call's deadline passed while it ran.", exc_interrupted,
	    NULL);
	exc_cancel = PyErr_NewExceptionWithDoc("gild.CancelInterrupt",
	    "The client cancelled the call (or went away) while it ran.",
	    exc_interrupted, NULL);
	call_var = PyContextVar_New("gild_call", NULL);
	if (exc_deadline == NULL || exc_cancel == NULL || call_var == NULL ||
	    PyModule_AddObjectRef(m, "call_var", call_var) < 0 ||
	    PyModule_AddObjectRef(m, "Interrupted", exc_interrupted) < 0 ||
	    PyModule_AddObjectRef(m, "DeadlineInterrupt", exc_deadline) < 0 ||
	    PyModule_AddObjectRef(m, "CancelInterrupt", exc_cancel) < 0)
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}

int
interrupt_register(void)
{
	return PyImport_AppendInittab("_gild_worker", module_init);
}

/* The classes exist once _gild_worker is imported; the worker imports it at
 * start-up (interp_init), so they are there before any job. */
static PyObject *
exception_for(int code)
{
	return code == GILD__V1__CODE__DEADLINE_EXCEEDED ? exc_deadline
							  : exc_cancel;
}

int
interrupt_threads(int n)
{
	if ((wake_fds = malloc((size_t) n * sizeof(*wake_fds))) == NULL)
		return -1;
	for (int k = 0; k < n; k++)
		wake_fds[k] = -1;
	if (n == 1)
		return 0;
	if ((runners = calloc((size_t) n, sizeof(*runners))) == NULL) {
		runners = &one_runner;
		return -1;
	}
	nrunners = n;
	return 0;
}

/* Under mu: writes thread k's loop's eventfd, if it has one. */
static void
wake_loop(int k)
{
	uint64_t one = 1;

	if (wake_fds[k] != -1 && write(wake_fds[k], &one, sizeof(one)) < 0)
		(void) 0; /* a full counter wakes it too */
}

void
interrupt_thread_enter(int k)
{
	self_index = k;
}

int
interrupt_thread_index(void)
{
	return self_index;
}

int
interrupt_begin(const job_ctx *ctx)
{
	uint64_t job_id = ctx->job_id;
	runner *r = &runners[self_index];
	int code = 0;

	pthread_mutex_lock(&mu);
	for (unsigned i = 0; i < EARLY_MAX; i++) {
		if (early[i].job_id == job_id) {
			code = early[i].code;
			early[i].job_id = 0;
		}
	}
	if (code == 0) {
		r->job = job_id;
		r->tid = PyThread_get_thread_ident();
		r->code = 0;
		r->credit = 0;
		r->ctx = *ctx;
		r->deadline = ctx->deadline_ms != 0
				  ? monotonic_s() + ctx->deadline_ms / 1000.0
				  : 0;
	}
	pthread_mutex_unlock(&mu);
	return code;
}

int
interrupt_end(void)
{
	runner *r = &runners[self_index];
	int code;

	pthread_mutex_lock(&mu);
	code = r->code;
	if (code != 0)
		/* Raised but perhaps not yet delivered: drop it, or it would
		 * hit whatever runs next in this thread. */
		PyThreadState_SetAsyncExc(r->tid, NULL);
	r->job = 0;
	r->code = 0;
	pthread_mutex_unlock(&mu);
	return code;
}

/* Under mu: the runner running job_id, alone or in its batch, or NULL. */
static runner *
runner_of(uint64_t job_id)
{
	for (int k = 0; k < nrunners; k++) {
		runner *r = &runners[k];
		if (r->job == 0)
			continue;
		if (r->job == job_id)
			return r;
		for (uint32_t i = 0;
		     r->ctx.batch_ids != NULL && i < r->ctx.batch_size; i++)
			if (r->ctx.batch_ids[i] == job_id)
				return r;
	}
	return NULL;
}

void
interrupt_request(uint64_t job_id, int code)
{
	PyGILState_STATE g;
	runner *r;

	if (job_id == 0)
		return;
	g = PyGILState_Ensure();
	pthread_mutex_lock(&mu);
	for (async_job *aj = async_jobs; aj != NULL; aj = aj->next) {
		if (aj->job_id == job_id && aj->code == 0) {
			aj->code = code;
			aj->queued = true;
			wake_loop(aj->owner);
			pthread_mutex_unlock(&mu);
			PyGILState_Release(g);
			return;
		}
	}
	if ((r = runner_of(job_id)) != NULL) {
		if (r->code == 0 && exception_for(code) != NULL &&
		    PyThreadState_SetAsyncExc(r->tid, exception_for(code)) == 1)
			r->code = code;
		pthread_cond_broadcast(&cv); /* a stream waiting for credit */
	} else {
		/* Not started yet (still on its way from the reader), or
		 * already ended: remember it for interrupt_begin. Older entries
		 * are for jobs long gone. */
		early[early_next % EARLY_MAX].job_id = job_id;
		early[early_next % EARLY_MAX].code = code;
		early_next++;
	}
	pthread_mutex_unlock(&mu);
	PyGILState_Release(g);
}

void
interrupt_credit(uint64_t job_id, uint32_t n)
{
	pthread_mutex_lock(&mu);
	for (int k = 0; job_id != 0 && k < nrunners; k++) {
		if (runners[k].job == job_id) {
			runners[k].credit += n;
			pthread_cond_broadcast(&cv);
		}
	}
	pthread_mutex_unlock(&mu);
}

int
interrupt_take_credit(void)
{
	runner *r = &runners[self_index];
	int code;

	Py_BEGIN_ALLOW_THREADS
	pthread_mutex_lock(&mu);
	while (r->credit == 0 && r->code == 0)
		pthread_cond_wait(&cv, &mu);
	code = r->code;
	if (code == 0)
		r->credit--;
	pthread_mutex_unlock(&mu);
	Py_END_ALLOW_THREADS
	return code;
}

void
interrupt_disarm(void)
{
	runner *r = &runners[self_index];

	pthread_mutex_lock(&mu);
	if (r->code != 0)
		PyThreadState_SetAsyncExc(r->tid, NULL);
	pthread_mutex_unlock(&mu);
}

void
interrupt_async_wake_fd(int fd)
{
	pthread_mutex_lock(&mu);
	wake_fds[self_index] = fd;
	pthread_mutex_unlock(&mu);
}

int
interrupt_async_fd(void)
{
	int fd;

	pthread_mutex_lock(&mu);
	fd = wake_fds[self_index];
	pthread_mutex_unlock(&mu);
	return fd;
}

void
interrupt_async_wake(int k)
{
	pthread_mutex_lock(&mu);
	for (int i = 0; i < nrunners; i++)
		if (k == -1 || k == i)
			wake_loop(i);
	pthread_mutex_unlock(&mu);
}

int
interrupt_async_add(uint64_t job_id)
{
	async_job *aj = calloc(1, sizeof(*aj));

	if (aj == NULL)
		return -1;
	aj->job_id = job_id;
	aj->owner = self_index;
	pthread_mutex_lock(&mu);
	for (unsigned i = 0; i < EARLY_MAX; i++) {
		if (early[i].job_id == job_id) {
			/* Interrupted on its way in: the loop cancels it. */
			aj->code = early[i].code;
			aj->queued = true;
			early[i].job_id = 0;
		}
	}
	aj->next = async_jobs;
	async_jobs = aj;
	pthread_mutex_unlock(&mu);
	return 0;
}

int
interrupt_async_remove(uint64_t job_id)
{
	async_job **pp, *aj;
	int code = 0;

	pthread_mutex_lock(&mu);
	for (pp = &async_jobs; (aj = *pp) != NULL; pp = &aj->next) {
		if (aj->job_id == job_id) {
			*pp = aj->next;
			code = aj->code;
			free(aj);
			break;
		}
	}
	pthread_mutex_unlock(&mu);
	return code;
}

size_t
interrupt_async_take(uint64_t *ids, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&mu);
	for (async_job *aj = async_jobs; aj != NULL && n < max; aj = aj->next) {
		if (aj->queued && aj->owner == self_index) {
			aj->queued = false;
			ids[n++] = aj->job_id;
		}
	}
	pthread_mutex_unlock(&mu);
	return n;
}
