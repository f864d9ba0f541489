/* interrupt: stopping a running call from outside. The front end sends an
 * Interrupt for a job when its deadline passes or it is cancelled; the
 * worker's reader thread hands it here, and the exception is raised in the
 * thread running that job (PyThreadState_SetAsyncExc), so `finally:` blocks
 * run. Python code notices it at its next bytecode boundary; C code that
 * never returns to Python (time.sleep, a long C loop) does not, and the
 * front end kills the worker after --kill-grace. */
#ifndef GILD_WORKER_INTERRUPT_H
#define GILD_WORKER_INTERRUPT_H

#include <stdint.h>

/* Registers the built-in module _gild_worker (the exception classes
 * Interrupted, DeadlineInterrupt, CancelInterrupt). Call before Python is
 * initialised. Returns 0 or -1. */
int interrupt_register(void);

/* Needs the GIL. The calling thread starts running job_id. Returns 0, or the
 * gild.v1.Code of an interrupt that arrived before the job started (the job
 * must then not run). */
int interrupt_begin(uint64_t job_id);

/* Needs the GIL. The calling thread's job has returned: an interrupt that
 * arrives from now on is ignored, and one raised but not yet delivered is
 * dropped. Returns the code of an interrupt delivered during the job, or 0. */
int interrupt_end(void);

/* From any thread not holding the GIL (the reader): interrupt job_id with
 * code (DEADLINE_EXCEEDED or CANCELLED). Ignored if job_id has ended. */
void interrupt_request(uint64_t job_id, int code);

#endif
