/* batch: running the calls of one @gild.function(batch=N) function
 * together, as the front end sent them in one ToWorker.batch. */
#ifndef GILD_WORKER_BATCH_H
#define GILD_WORKER_BATCH_H

#include "decode.h"
#include "job.h"
#include "werr.h"

/* Needs the GIL. Runs batch b's calls against a: calls of the same shape
 * (the same number of positional arguments and the same keyword names)
 * make one call of the function, with each argument a list of the calls'
 * values, in the order the calls came; it must return a list of as many
 * results. Each job gets its own reply: through sink for all but the
 * last, whose reply is in *out (as job_run). Returns 0, -EPIPE or
 * -ENOMEM. */
int batch_run(const app *a, const decode_msg *b, const job_sink *sink,
    uint8_t **out, size_t *outlen);

/* When buf is a batch frame, answers each of its jobs with e (through sink
 * but the last, in *out) and returns 0 or a negative errno; returns 1 when
 * buf is not a batch. */
int batch_fail(const uint8_t *buf, size_t len, const werr *e,
    const job_sink *sink, uint8_t **out, size_t *outlen);

#endif
