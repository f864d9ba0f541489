/* reply: encoding the FromWorker messages a worker sends. */
#ifndef GILD_WORKER_REPLY_H
#define GILD_WORKER_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "gild.pb-c.h"
#include "werr.h"

/* Each encodes one FromWorker into a new frame_alloc buffer *out of *len
 * bytes (the caller frees it, with REPLY_END_ROOM bytes to spare for
 * fields added at the end: frame_grow) and returns 0, or -ENOMEM. Inputs
 * are borrowed. */
#define REPLY_END_ROOM 32
int reply_hello(int32_t pid, const app *a, const char *python_version,
    int gil_enabled, uint8_t **out, size_t *len);
/* retry: the app imported, but a start hook or warm-up raised. */
int reply_startup_error(const werr *e, bool retry, uint8_t **out,
    size_t *len);
int reply_error(uint64_t job_id, const werr *e, uint8_t **out, size_t *len);
int reply_result(
    uint64_t job_id, const Gild__V1__Value *result, uint8_t **out, size_t *len);

/* Streams: one yielded value, and the end after count chunks (e NULL when
 * the generator finished, else why it stopped). */
int reply_chunk(uint64_t job_id, uint64_t seq, const Gild__V1__Value *value,
    uint8_t **out, size_t *len);
int reply_stream_end(uint64_t job_id, uint64_t count, const werr *e,
    uint8_t **out, size_t *len);

/* The answer to a TakeBack of job_id: returned (it was dropped from the
 * inbox, never run) or not (it had started). Packed into buf, which has
 * room for REPLY_TAKEN_BACK_MAX bytes, without allocating: a call taken
 * out of the inbox must always get its answer. Returns its length. */
#define REPLY_TAKEN_BACK_MAX 16
size_t reply_taken_back(uint64_t job_id, int returned, uint8_t *buf);

#endif
