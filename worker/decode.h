/* decode: a job's ToWorker frame read with the wire scanner (proto/wire.h)
 * instead of protobuf-c's recursive unpack. The envelope (ids, function
 * name, flags) is copied out; argument values stay where they are in the
 * frame and are converted to Python one at a time (convert_wire_to_py), so
 * decoding is bounded in depth and allocation on every path at once. */
#ifndef GILD_WORKER_DECODE_H
#define GILD_WORKER_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "werr.h"

typedef struct decode_bytes {
	const uint8_t *data; /* borrowed from the frame */
	size_t len;
} decode_bytes;

/* A Call, or an ActorNew (the same field numbers for args and kwargs). */
typedef struct decode_call {
	char *function;     /* Call.function or ActorNew.class_name ("" when
	                       absent); owned */
	decode_bytes body;  /* the message: its args and kwargs fields */
	size_t n_args;      /* occurrences of args and kwargs */
	size_t n_kwargs;
	decode_bytes arg0;  /* the first argument */
	uint64_t actor_id;
	uint32_t window;
	int stream;
} decode_call;

/* What a ToWorker frame holding a job says. */
typedef struct decode_msg {
	uint64_t job_id, request_id, actor_id;
	uint32_t deadline_ms, queued_us;
	decode_bytes traceparent; /* from trace_context (checked by the front
				     end); len 0: none */
	decode_bytes tracestate;
	uint32_t body;       /* its body's field number (GILD_WF_TO_WORKER_*),
	                        0 for none */
	decode_call call;    /* with body call or actor_new */
	decode_bytes source; /* exec */
	char *filename;      /* exec; owned, "" when absent */
	decode_bytes exec;   /* the Exec message: its variables fields */
	uint64_t *job_ids;   /* batch; owned */
	size_t n_job_ids;
	decode_call *calls;  /* batch; owned */
	size_t n_calls;
} decode_msg;

/* Reads the ToWorker in buf/len (borrowed: *m points into it and must not
 * outlive it) into *m. Returns 0, or -1 with *err (INVALID_ARGUMENT naming
 * what is malformed); either way *m is to be released with decode_free
 * and its job_id is the last one read. The body's last occurrence wins;
 * argument values are only counted and located, not read. A batch holds
 * at most GILD_FUNCTION_BATCH_MAX calls. */
int decode_frame(const uint8_t *buf, size_t len, decode_msg *m, werr *err);

/* Frees what decode_frame allocated. Accepts a zeroed *m. */
void decode_free(decode_msg *m);

/* Iterates the occurrences of a length-delimited field in msg: *it starts
 * at 0; returns 1 with *v, or 0 at the end. A message decode_frame read
 * (a call's body, a Kwarg in it, an exec) is well formed and its fields
 * have their types, so only those are iterated. */
int decode_next(decode_bytes msg, uint32_t field, size_t *it, decode_bytes *v);

#endif
