/* reply: encoding the FromWorker messages a worker sends. */
#ifndef GILD_WORKER_REPLY_H
#define GILD_WORKER_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "gild.pb-c.h"
#include "werr.h"

/* Each encodes one FromWorker into a new malloc'd buffer *out of *len bytes
 * (the caller frees it) and returns 0, or -ENOMEM. Inputs are borrowed. */
int reply_hello(int32_t pid, const app *a, const char *python_version,
    int gil_enabled, uint8_t **out, size_t *len);
int reply_startup_error(const werr *e, uint8_t **out, size_t *len);
int reply_error(uint64_t job_id, const werr *e, uint8_t **out, size_t *len);
int reply_result(
    uint64_t job_id, const Gild__V1__Value *result, uint8_t **out, size_t *len);

/* Streams: one yielded value, and the end after count chunks (e NULL when
 * the generator finished, else why it stopped). */
int reply_chunk(uint64_t job_id, uint64_t seq, const Gild__V1__Value *value,
    uint8_t **out, size_t *len);
int reply_stream_end(uint64_t job_id, uint64_t count, const werr *e,
    uint8_t **out, size_t *len);

#endif
