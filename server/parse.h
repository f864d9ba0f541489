/* The front end's two decoders of untrusted bytes: a client's Request and a
 * worker's FromWorker frame. Both look only at the top level (and a call's
 * function name); the values inside stay undecoded. Pure functions, so they
 * are unit-tested and fuzzed on their own. */
#ifndef GILD_PARSE_H
#define GILD_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fields.h"
#include "trace.h"

/* Request body kinds: the field numbers in gild.v1.Request. */
enum parse_body {
	BODY_NONE = 0,
	BODY_CALL = GILD_F_REQUEST_CALL,
	BODY_CANCEL = GILD_F_REQUEST_CANCEL,
	BODY_STATUS = GILD_F_REQUEST_STATUS,
	BODY_PING = GILD_F_REQUEST_PING,
	BODY_STREAM_NEXT = GILD_F_REQUEST_STREAM_NEXT,
	BODY_ACTOR_NEW = GILD_F_REQUEST_ACTOR_NEW,
	BODY_ACTOR_GET = GILD_F_REQUEST_ACTOR_GET,
	BODY_ACTOR_DESTROY = GILD_F_REQUEST_ACTOR_DESTROY,
	BODY_BATCH = GILD_F_REQUEST_BATCH,
	BODY_EXEC = GILD_F_REQUEST_EXEC,
};

/* The name an Exec request's job goes by in logs, metrics and errors: not
 * a Python identifier, so no function of an app can have it. */
#define PARSE_EXEC_NAME "<exec>"

typedef struct parsed_request {
	uint64_t id;              /* Request.id (0 if absent or unreadable) */
	enum parse_body body;
	const uint8_t *data;      /* the body message, borrowed */
	size_t len;
	const char *function;     /* BODY_CALL: the name, not NUL-terminated;
				     BODY_EXEC: PARSE_EXEC_NAME */
	size_t function_len;
	uint32_t timeout_ms;      /* BODY_CALL, BODY_EXEC: timeout_ms (0: none) */
	bool stream;              /* BODY_CALL: Call.stream */
	uint32_t window;          /* BODY_CALL: Call.window (0: default) */
	uint64_t actor_id;        /* BODY_CALL: Call.actor_id (0: a function);
				     BODY_ACTOR_DESTROY: actor_id */
	const char *actor_class;  /* BODY_ACTOR_NEW: class_name (not NUL-ended) */
	size_t actor_class_len;
	const char *actor_name;   /* BODY_ACTOR_NEW / _GET: name, or NULL */
	size_t actor_name_len;
	bool detached;            /* BODY_ACTOR_NEW */
	bool with_class;          /* BODY_ACTOR_GET: with_class */
	uint64_t stream_call;     /* BODY_STREAM_NEXT: call_id */
	uint32_t stream_max;      /* BODY_STREAM_NEXT: max (0: no limit) */
	uint64_t cancel_target;   /* BODY_CANCEL: target_id (0 if absent) */
	const uint8_t *ping_payload; /* BODY_PING: payload (NULL if absent) */
	size_t ping_payload_len;
	bool want_shm;            /* BODY_PING: want_shm */
	bool shm;                 /* Request.shm is set: the request is in a
				     memfd (shm_handle, shm_len; out->body
				     and the rest are not looked at) */
	uint64_t shm_handle, shm_len;
	const uint8_t *trace;     /* Request.trace_context, checked (NULL: none
				     or empty), borrowed */
	size_t trace_len;
	trace_fields trace_fields; /* what it holds */
	const char *token;        /* Request.token (not NUL-ended), or NULL */
	size_t token_len;
	int code;                 /* 0, or the gild.v1.Code to answer with */
	char message[160];        /* why, when code != 0 */
} parsed_request;

/* Classifies a request of len bytes. Always fills *out; out->code says
 * whether it can be served: INVALID_ARGUMENT (not protobuf, no body, a
 * call without a function name, a trace_context that is malformed or not
 * W3C's form: trace.h) or RESOURCE_EXHAUSTED (over max_message).
 * Pointers borrow from buf. */
void parse_request(const uint8_t *buf, size_t len, size_t max_message,
    parsed_request *out);

enum parse_from_worker_kind {
	FW_MALFORMED,
	FW_RESULT,        /* a job's result or error */
	FW_HELLO,
	FW_STARTUP_ERROR,
	FW_SPAWNED,       /* from the template: a worker's pid */
	FW_EXITED,        /* from the template: a worker ended */
	FW_CHUNK,         /* a stream's chunk: data is the Chunk message */
	FW_STREAM_END,    /* a stream's end: data is the StreamEnd message */
	FW_TAKEN_BACK,    /* the answer to a TakeBack: see returned */
};

typedef struct parsed_from_worker {
	enum parse_from_worker_kind kind;
	uint64_t job_id;
	bool exiting;   /* FromWorker.exiting: the worker stops after this */
	uint32_t run_us; /* FW_RESULT: FromWorker.run_us, how long it ran */
	bool returned;  /* FW_TAKEN_BACK: the job never started, or it had */
	/* FW_RESULT: the result or error field, tag included, to append to a
	 * Reply as is. Other kinds: that message's bytes. */
	const uint8_t *data;
	size_t len;
} parsed_from_worker;

/* Classifies one FromWorker frame payload. Pointers borrow from buf. */
void parse_from_worker(const uint8_t *buf, size_t len, parsed_from_worker *out);

#endif
