/* interrupt: raising DeadlineInterrupt / CancelInterrupt in a running job. */
#include "interrupt.h"

#include <Python.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>
#include <time.h>

#include "gild.pb-c.h"

/* The job running now and interrupts that came before their job started.
 * Touched under mu, which is only taken with the GIL held (GIL first, then
 * mu), so it cannot deadlock against the GIL. */
#define EARLY_MAX 16

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER; /* credit or interrupt */
static uint64_t running_job;     /* 0: none */
static uint64_t credit;          /* chunks running_job may still send */
static job_ctx running_ctx;       /* for gild.context() */
static double running_deadline;   /* time.monotonic() value, or 0 */
static unsigned long running_tid; /* its thread, for SetAsyncExc */
static int running_code;          /* interrupt delivered to it, or 0 */
static struct {
	uint64_t job_id;
	int code;
} early[EARLY_MAX];
static unsigned early_next;

static PyObject *exc_interrupted, *exc_deadline, *exc_cancel;

/* Async jobs in flight on the worker's asyncio loop (under mu): an
 * interrupt for one is queued for the loop, which cancels its task, and
 * wake_fd (an eventfd the loop watches) is written. */
typedef struct async_job {
	uint64_t job_id;
	int code;    /* the interrupt that came, or 0 */
	bool queued; /* code is waiting in the loop's queue */
	struct async_job *next;
} async_job;
static async_job *async_jobs;
static int wake_fd = -1;

static double
monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* _gild_worker.context_info(): (request_id, function, deadline or None,
 * queued_ms, batch_size) of the running call; RuntimeError outside one. */
static PyObject *
context_info(PyObject *self, PyObject *unused)
{
	PyObject *r = NULL;

	pthread_mutex_lock(&mu);
	if (running_job == 0) {
		pthread_mutex_unlock(&mu);
		PyErr_SetString(PyExc_RuntimeError,
		    "gild.context() is only available inside a call");
		return NULL;
	}
	if (running_deadline > 0)
		r = Py_BuildValue("(Ksddk)", (unsigned long long) running_ctx.request_id,
		    running_ctx.function ? running_ctx.function : "",
		    running_deadline, running_ctx.queued_us / 1000.0,
		    (unsigned long) running_ctx.batch_size);
	else
		r = Py_BuildValue("(KsOdk)", (unsigned long long) running_ctx.request_id,
		    running_ctx.function ? running_ctx.function : "", Py_None,
		    running_ctx.queued_us / 1000.0,
		    (unsigned long) running_ctx.batch_size);
	pthread_mutex_unlock(&mu);
	return r;
}

/* _gild_worker.cancelled(): whether the running call has been told to stop
 * (cancelled, or past its deadline). */
static PyObject *
cancelled(PyObject *self, PyObject *unused)
{
	int yes;

	pthread_mutex_lock(&mu);
	yes = running_job != 0 && running_code != 0;
	pthread_mutex_unlock(&mu);
	return PyBool_FromLong(yes);
}

static PyMethodDef module_methods[] = {
    {"context_info", context_info, METH_NOARGS,
	"(request_id, function, deadline, queued_ms, batch_size) of the "
	"running call."},
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
	if (exc_deadline == NULL || exc_cancel == NULL ||
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
interrupt_begin(const job_ctx *ctx)
{
	uint64_t job_id = ctx->job_id;
	int code = 0;

	pthread_mutex_lock(&mu);
	for (unsigned i = 0; i < EARLY_MAX; i++) {
		if (early[i].job_id == job_id) {
			code = early[i].code;
			early[i].job_id = 0;
		}
	}
	if (code == 0) {
		running_job = job_id;
		running_tid = PyThread_get_thread_ident();
		running_code = 0;
		credit = 0;
		running_ctx = *ctx;
		running_deadline = ctx->deadline_ms != 0
				       ? monotonic_s() + ctx->deadline_ms / 1000.0
				       : 0;
	}
	pthread_mutex_unlock(&mu);
	return code;
}

int
interrupt_end(void)
{
	int code;

	pthread_mutex_lock(&mu);
	code = running_code;
	if (code != 0)
		/* Raised but perhaps not yet delivered: drop it, or it would
		 * hit whatever runs next in this thread. */
		PyThreadState_SetAsyncExc(running_tid, NULL);
	running_job = 0;
	running_code = 0;
	pthread_mutex_unlock(&mu);
	return code;
}

/* Under mu: whether job_id is one of the running batch's. */
static bool
in_running_batch(uint64_t job_id)
{
	for (uint32_t i = 0; running_job != 0 && running_ctx.batch_ids != NULL &&
			     i < running_ctx.batch_size;
	     i++)
		if (running_ctx.batch_ids[i] == job_id)
			return true;
	return false;
}

void
interrupt_request(uint64_t job_id, int code)
{
	PyGILState_STATE g;

	if (job_id == 0)
		return;
	g = PyGILState_Ensure();
	pthread_mutex_lock(&mu);
	for (async_job *aj = async_jobs; aj != NULL; aj = aj->next) {
		if (aj->job_id == job_id && aj->code == 0) {
			uint64_t one = 1;
			aj->code = code;
			aj->queued = true;
			if (wake_fd != -1 && write(wake_fd, &one, sizeof(one)) < 0)
				(void) 0; /* a full counter wakes it too */
			pthread_mutex_unlock(&mu);
			PyGILState_Release(g);
			return;
		}
	}
	if (running_job == job_id || in_running_batch(job_id)) {
		if (running_code == 0 && exception_for(code) != NULL &&
		    PyThreadState_SetAsyncExc(running_tid, exception_for(code)) == 1)
			running_code = code;
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
	if (running_job == job_id && job_id != 0) {
		credit += n;
		pthread_cond_broadcast(&cv);
	}
	pthread_mutex_unlock(&mu);
}

int
interrupt_take_credit(void)
{
	int code;

	Py_BEGIN_ALLOW_THREADS
	pthread_mutex_lock(&mu);
	while (credit == 0 && running_code == 0)
		pthread_cond_wait(&cv, &mu);
	code = running_code;
	if (code == 0)
		credit--;
	pthread_mutex_unlock(&mu);
	Py_END_ALLOW_THREADS
	return code;
}

void
interrupt_disarm(void)
{
	pthread_mutex_lock(&mu);
	if (running_code != 0)
		PyThreadState_SetAsyncExc(running_tid, NULL);
	pthread_mutex_unlock(&mu);
}

void
interrupt_async_wake_fd(int fd)
{
	pthread_mutex_lock(&mu);
	wake_fd = fd;
	pthread_mutex_unlock(&mu);
}

int
interrupt_async_add(uint64_t job_id)
{
	async_job *aj = calloc(1, sizeof(*aj));

	if (aj == NULL)
		return -1;
	aj->job_id = job_id;
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
		if (aj->queued) {
			aj->queued = false;
			ids[n++] = aj->job_id;
		}
	}
	pthread_mutex_unlock(&mu);
	return n;
}
