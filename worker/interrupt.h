/* interrupt: stopping a running call from outside, and pacing a stream. The front end sends an
 * Interrupt for a job when its deadline passes or it is cancelled; the
 * worker's reader thread hands it here, and the exception is raised in the
 * thread running that job (PyThreadState_SetAsyncExc), so `finally:` blocks
 * run. Python code notices it at its next bytecode boundary; C code that
 * never returns to Python (time.sleep, a long C loop) does not, and the
 * front end kills the worker after --kill-grace. */
#ifndef GILD_WORKER_INTERRUPT_H
#define GILD_WORKER_INTERRUPT_H

#include <stddef.h>
#include <stdint.h>

#include "gild_limits.h"

/* Registers the built-in module _gild_worker (the exception classes
 * Interrupted, DeadlineInterrupt, CancelInterrupt). Call before Python is
 * initialised. Returns 0 or -1. */
int interrupt_register(void);

/* What gild.context() tells a running call. */
typedef struct job_ctx {
	uint64_t job_id;
	uint64_t request_id;  /* the client's Request.id */
	const char *function; /* borrowed for the job's run */
	uint32_t deadline_ms; /* left when the front end sent it (0: none) */
	uint32_t queued_us;   /* time it waited in the queue */
	uint32_t batch_size;  /* calls in its batch (1: not batched) */
	const uint64_t *batch_ids; /* their job ids (borrowed; NULL: alone):
				      an interrupt of any stops the batch */
	/* The request's W3C trace context ("" when none), copied: */
	char traceparent[GILD_TRACEPARENT_LEN + 1];
	char tracestate[GILD_TRACESTATE_MAX + 1];
} job_ctx;

/* Copies a trace context (len 0: none) into ctx. */
void job_ctx_trace(job_ctx *ctx, const uint8_t *traceparent, size_t tp_len,
    const uint8_t *tracestate, size_t ts_len);

/* The worker runs jobs on n Python threads (--threads; 1 in the process
 * runtime), each with its own running job, interrupts, credit and asyncio
 * loop. Call once, before any job. Returns 0 or -1 (out of memory). */
int interrupt_threads(int n);
/* The calling thread is job thread k (0 <= k < n); the thread that calls
 * nothing is thread 0. interrupt_thread_index() says which it is. */
void interrupt_thread_enter(int k);
int interrupt_thread_index(void);

/* Needs the GIL. The calling thread starts running ctx->job_id. Returns 0,
 * or the gild.v1.Code of an interrupt that arrived before the job started
 * (the job must then not run). */
int interrupt_begin(const job_ctx *ctx);

/* Needs the GIL. The calling thread's job has returned: an interrupt that
 * arrives from now on is ignored, and one raised but not yet delivered is
 * dropped. Returns the code of an interrupt delivered during the job, or 0. */
int interrupt_end(void);

/* From any thread not holding the GIL (the reader): interrupt job_id with
 * code (DEADLINE_EXCEEDED or CANCELLED). Ignored if job_id has ended. */
void interrupt_request(uint64_t job_id, int code);

/* Streams: the running job may send one more chunk per credit. From any
 * thread: adds n for job_id (ignored if it is not running). */
void interrupt_credit(uint64_t job_id, uint32_t n);

/* Needs the GIL (released while waiting). Waits for one credit of the
 * running job and takes it: returns 0, or the code of an interrupt that came
 * first (the stream must stop). */
int interrupt_take_credit(void);

/* Needs the GIL. Drops the exception an interrupt raised but has not yet
 * delivered (the job stays interrupted), so that cleanup code, such as
 * closing a paused generator, runs undisturbed. */
void interrupt_disarm(void);

/* Async jobs (on the worker's asyncio loops, one per job thread): an
 * interrupt for one is not raised in a thread but queued for the loop that
 * runs it, which cancels its task; fd (an eventfd the calling thread's loop
 * watches) is written when one is queued. The functions below act for the
 * calling thread's loop. */
void interrupt_async_wake_fd(int fd);
/* The calling thread's loop's eventfd (-1: none). */
int interrupt_async_fd(void);
/* From any thread: wakes the loop of job thread k (-1: every loop), for a
 * call that arrived for it. */
void interrupt_async_wake(int k);
/* Needs no GIL. Registers job_id as running on the loop. Returns 0 or -1. */
int interrupt_async_add(uint64_t job_id);
/* Unregisters it; returns the code of the interrupt it got, or 0. */
int interrupt_async_remove(uint64_t job_id);
/* Takes the ids of async jobs interrupted since the last call (at most
 * max); their tasks are to be cancelled. */
size_t interrupt_async_take(uint64_t *ids, size_t max);

#endif
