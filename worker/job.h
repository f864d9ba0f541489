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

#endif
