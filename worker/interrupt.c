/* interrupt: raising DeadlineInterrupt / CancelInterrupt in a running job. */
#include "interrupt.h"

#include <Python.h>
#include <pthread.h>

#include "gild.pb-c.h"

/* The job running now and interrupts that came before their job started.
 * Touched under mu, which is only taken with the GIL held (GIL first, then
 * mu), so it cannot deadlock against the GIL. */
#define EARLY_MAX 16

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t running_job;     /* 0: none */
static unsigned long running_tid; /* its thread, for SetAsyncExc */
static int running_code;          /* interrupt delivered to it, or 0 */
static struct {
	uint64_t job_id;
	int code;
} early[EARLY_MAX];
static unsigned early_next;

static PyObject *exc_interrupted, *exc_deadline, *exc_cancel;

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_gild_worker",
    .m_doc = "gild-worker internals: the exceptions that interrupt a call.",
    .m_size = -1,
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
interrupt_begin(uint64_t job_id)
{
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

void
interrupt_request(uint64_t job_id, int code)
{
	PyGILState_STATE g;

	if (job_id == 0)
		return;
	g = PyGILState_Ensure();
	pthread_mutex_lock(&mu);
	if (running_job == job_id) {
		if (running_code == 0 && exception_for(code) != NULL &&
		    PyThreadState_SetAsyncExc(running_tid, exception_for(code)) == 1)
			running_code = code;
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
