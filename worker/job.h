/* job: running one call from the front end and encoding its reply. */
#ifndef GILD_WORKER_JOB_H
#define GILD_WORKER_JOB_H

#include <Python.h>

#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "decode.h"
#include "werr.h"

/* Where a streaming job sends its chunks as they come: send takes buf (an
 * encoded FromWorker) and returns 0, or -1 when the front end is gone. */
typedef struct job_sink {
	int (*send)(void *arg, uint8_t *buf, size_t len);
	void *arg;
} job_sink;

/* Needs the GIL. Sets up what jobs share (the actors living here); call
 * once after Python starts. Returns 0 or -1 with a Python error set. */
int job_init(void);

/* Needs the GIL. Decodes one ToWorker (buf/len, borrowed), runs its call
 * against a and encodes the FromWorker answer — a result, or an error with
 * INVALID_ARGUMENT (malformed message, bad argument), NOT_FOUND (no such
 * function) or PYTHON_ERROR (the function raised, or returned something that
 * cannot be sent) — into a new malloc'd *out of *len bytes (caller frees).
 * A call with stream set sends a Chunk per yielded value through sink, and
 * its final reply is a StreamEnd. A generator called without stream is
 * answered with the list of its values.
 * Returns 0, -EPIPE when sink failed, or -ENOMEM when not even the reply
 * could be built. */
int job_run(const app *a, const uint8_t *buf, size_t len,
    const job_sink *sink, uint8_t **out, size_t *outlen);

/* Needs the GIL. Like job_run, except for a call of an async def function:
 * then it only calls the function and returns 1 with the coroutine in
 * *coro (a new reference), the job's id, and in *tag the call's context
 * as _gild_worker.context_info() gives it (a new reference: what
 * gild.context() says in the task, and what the task's output is
 * logged with, applog.h), for the worker's asyncio loop to run;
 * job_finish answers it. *alone says whether that call runs alone
 * on its thread (a plain function call, not declared with concurrency >
 * 1): the front end may have sent calls ahead behind it, and they must
 * wait for its result. Returns 0 (answered in *out), 1, or a negative
 * errno. */
int job_start(const app *a, const uint8_t *buf, size_t len,
    const job_sink *sink, uint64_t *job_id, PyObject **coro, PyObject **tag,
    int *alone, uint8_t **out, size_t *outlen);

/* Needs the GIL. Encodes the end of async job job_id: its result, or exc
 * (borrowed; an exception it raised, asyncio.CancelledError when its task
 * was cancelled by an interrupt). Returns 0 or -ENOMEM. */
int job_finish(uint64_t job_id, PyObject *result, PyObject *exc,
    uint8_t **out, size_t *outlen);

/* For the modules that run jobs of other shapes (batch.c): */
/* Builds the positional tuple and keyword dict (new references; the dict
 * NULL when there are no keyword arguments) for call, converting its
 * values straight from the frame. Returns 0, or -1 with *err
 * (INVALID_ARGUMENT naming the argument). Needs the GIL. */
int job_build_args(const decode_call *call, PyObject **args,
    PyObject **kwargs, werr *err);
/* What call calls (a new reference): an exported function, or for
 * Call.actor_id a public method of that actor living here. NULL with *err
 * (NOT_FOUND) when there is none. Needs the GIL. */
PyObject *job_resolve(const app *a, const decode_call *call, werr *err);
/* "function 'x' not found in app 'a' (exported: f, g)" into *err. */
void job_not_found(const app *a, const char *name, werr *err);

/* --worker-memory: the worker's address space is limited to mib MiB
 * (RLIMIT_AS); in a free-threaded worker, to mib MiB more than it has after
 * importing the app (its allocator reserves 1 GiB of address space at
 * start, whatever it uses). From then on a call that raises MemoryError ends with
 * WORKER_LOST naming the limit, and job_must_exit() says the worker should
 * exit after sending that reply (its state after a failed allocation is not
 * to be trusted). Returns 0, or -1 with a message in err (the limit is
 * already exceeded, or setrlimit failed). */
int job_limit_memory(uint64_t mib, char *err, size_t errlen);
int job_must_exit(void);

#endif
