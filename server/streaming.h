/* streaming: a streamed call's chunks from its worker to its client (the
 * chunk buffer itself is stream.h's): the client pulls them with
 * StreamNext, and what it takes out is the worker's credit to send more. */
#ifndef GILD_SERVER_STREAMING_H
#define GILD_SERVER_STREAMING_H

#include <stddef.h>
#include <stdint.h>

#include "front.h"
#include "parse.h"

/* Worker events (sup_events): a chunk of job_id's stream (kills a worker
 * that breaks the stream protocol), and its end (end: the StreamEnd's
 * fields, with an Error when it failed). arg is the server. */
void streaming_chunk(void *arg, int slot, uint64_t job_id,
    const uint8_t *chunk, size_t len);
void streaming_end(void *arg, int slot, uint64_t job_id, const uint8_t *end,
    size_t len);

/* StreamNext: the client asks for the next chunks of one of its streams. */
void streaming_next(server *srv, listener_req *req, const parsed_request *pr);

/* st will get no more chunks: error is an encoded gild.v1.Error (copied),
 * or NULL when it ended well; it ends after the chunks it holds. */
void streaming_finish(server *srv, stream *st, const uint8_t *error,
    size_t len);
/* streaming_finish with an Error{code, msg}. */
void streaming_end_error(server *srv, stream *st, Gild__V1__Code code,
    const char *msg);

/* Starts the sweep that ends streams nobody reads: one with no StreamNext
 * waiting for --stream-idle-timeout has its generator cancelled (its
 * client gets CANCELLED saying why, should it pull again), or, once the
 * generator is done, its chunks dropped. 0, or -1 when out of memory
 * (srv->stream_sweep_ev, freed by the server). */
int streaming_sweep_start(server *srv);

/* The streams of connection pipe not yet ended and delivered. */
size_t streaming_count(const server *srv, uint32_t pipe);

/* Connection `pipe` closed: its streams are orphaned, and those whose job
 * has ended go at once. */
void streaming_pipe_gone(server *srv, uint32_t pipe);

#endif
