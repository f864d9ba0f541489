/* job: running one call from the front end and encoding its reply. */
#ifndef GILD_WORKER_JOB_H
#define GILD_WORKER_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"

/* Needs the GIL. Decodes one ToWorker (buf/len, borrowed), runs its call
 * against a and encodes the FromWorker answer — a result, or an error with
 * INVALID_ARGUMENT (malformed message, bad argument), NOT_FOUND (no such
 * function) or PYTHON_ERROR (the function raised, or returned something that
 * cannot be sent) — into a new malloc'd *out of *len bytes (caller frees).
 * Returns 0, or -ENOMEM when not even the reply could be built. */
int job_run(const app *a, const uint8_t *buf, size_t len, uint8_t **out,
    size_t *outlen);

/* --worker-memory: the worker's address space is limited to mib MiB
 * (RLIMIT_AS). From then on a call that raises MemoryError ends with
 * WORKER_LOST naming the limit, and job_must_exit() says the worker should
 * exit after sending that reply (its state after a failed allocation is not
 * to be trusted). Returns 0, or -1 with a message in err (the limit is
 * already exceeded, or setrlimit failed). */
int job_limit_memory(uint64_t mib, char *err, size_t errlen);
int job_must_exit(void);

#endif
