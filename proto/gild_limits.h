/* The protocol's limits that more than one program enforces (front end,
 * worker, libgild), each written once. gild.proto and docs/protocol.md
 * state them to users; client-lib/gild.h, which is installed and includes
 * nothing of gild's, repeats two of them under its own names, and
 * tests/unit/test_fields.c checks that copy. (Not "limits.h": that name
 * would hide the C library's, proto/ being on the include path.) */
#ifndef GILD_LIMITS_H
#define GILD_LIMITS_H

/* Call.window: the chunks the front end holds for a stream ahead of the
 * client's StreamNext (and the credit a worker starts with) when the call
 * names none, and the most a call may name (more is taken as this). */
#define GILD_STREAM_WINDOW_DEFAULT 64
#define GILD_STREAM_WINDOW_MAX 4096

/* The most requests one Request.batch holds (gild.h: GILD_MAX_BATCH). */
#define GILD_BATCH_REQUESTS_MAX 4096

/* The most calls of an @gild.function(batch=N) function run as one, so the
 * most jobs one ToWorker.batch holds: as many as one Request.batch may
 * carry (a literal, which tests read from here; test_fields checks it).
 * (The Python decorator, client-lib/python/gild/_app.py, refuses a larger
 * N itself.) */
#define GILD_FUNCTION_BATCH_MAX 4096

/* The bits of an actor id the front end hands out: libgild keeps the
 * connection an actor lives on in the bits above. */
#define GILD_ACTOR_ID_BITS 48

/* Request.trace_context: a traceparent is exactly this long (version 00,
 * the one W3C Trace Context defines), a tracestate at most this long (the
 * W3C's own bound), and the TraceContext message that holds them at most
 * this long (their tags and lengths, with room to spare). */
#define GILD_TRACEPARENT_LEN 55
#define GILD_TRACESTATE_MAX 512
#define GILD_TRACE_CONTEXT_MAX 1024

/* The most calls of one actor that may run at once
 * (@gild.actor(concurrency=K) of a class with async def methods). The
 * Python decorator (client-lib/python/gild/_app.py) refuses a larger K;
 * the front end takes a larger one from a worker as this. */
#define GILD_ACTOR_CONCURRENCY_MAX 256

/* The most containers (list, tuple, dict) one value may nest one inside
 * another: [[1]] nests 2. A call's argument list and keyword map are not
 * values and do not count. The Python client, libgild and the worker refuse
 * a deeper value with the same error (common/pyconv.h), in both
 * directions, before descending into it. */
#define GILD_VALUE_DEPTH_MAX 100
/* The message of that refusal (a printf format for GILD_VALUE_DEPTH_MAX). */
#define GILD_VALUE_TOO_DEEP "values nested deeper than %d levels"

/* The most dimensions a tensor may have (numpy's own limit). */
#define GILD_TENSOR_DIMS_MAX 64

#endif
