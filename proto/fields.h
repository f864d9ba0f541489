/* The protobuf field numbers gild's C code reads and writes by hand with
 * wire.h, one name per (message, field): GILD_F_* for gild.v1 (gild.proto),
 * GILD_WF_* for gild.worker.v1 (worker.proto). Code that packs or unpacks
 * protobuf-c structs needs none of them.
 *
 * A oneof member's number is taken from protobuf-c's case enum, which is
 * its field number; the others are written here, once, and
 * tests/unit/test_fields.c checks each one (all of GILD_FIELDS) against
 * protobuf-c's descriptors. To use another field by hand, add it to the
 * list: it is then both defined and tested. */
#ifndef GILD_FIELDS_H
#define GILD_FIELDS_H

#include "gild.pb-c.h"
#include "worker.pb-c.h"

/* X(NAME, message descriptor, field name in the .proto, number) */
#define GILD_FIELDS(X)                                                        \
	/* gild.v1.Request */                                                 \
	X(GILD_F_REQUEST_ID, gild__v1__request__descriptor, id, 1)            \
	X(GILD_F_REQUEST_TOKEN, gild__v1__request__descriptor, token, 15)     \
	X(GILD_F_REQUEST_TRACE_CONTEXT, gild__v1__request__descriptor,        \
	    trace_context, 14)                                                \
	/* gild.v1.TraceContext */                                            \
	X(GILD_F_TRACE_CONTEXT_TRACEPARENT,                                   \
	    gild__v1__trace_context__descriptor, traceparent, 1)              \
	X(GILD_F_TRACE_CONTEXT_TRACESTATE,                                    \
	    gild__v1__trace_context__descriptor, tracestate, 2)               \
	X(GILD_F_REQUEST_CALL, gild__v1__request__descriptor, call,           \
	    GILD__V1__REQUEST__BODY_CALL)                                     \
	X(GILD_F_REQUEST_CANCEL, gild__v1__request__descriptor, cancel,       \
	    GILD__V1__REQUEST__BODY_CANCEL)                                   \
	X(GILD_F_REQUEST_STATUS, gild__v1__request__descriptor, status,       \
	    GILD__V1__REQUEST__BODY_STATUS)                                   \
	X(GILD_F_REQUEST_PING, gild__v1__request__descriptor, ping,           \
	    GILD__V1__REQUEST__BODY_PING)                                     \
	X(GILD_F_REQUEST_STREAM_NEXT, gild__v1__request__descriptor,          \
	    stream_next, GILD__V1__REQUEST__BODY_STREAM_NEXT)                 \
	X(GILD_F_REQUEST_ACTOR_NEW, gild__v1__request__descriptor, actor_new, \
	    GILD__V1__REQUEST__BODY_ACTOR_NEW)                                \
	X(GILD_F_REQUEST_ACTOR_GET, gild__v1__request__descriptor, actor_get, \
	    GILD__V1__REQUEST__BODY_ACTOR_GET)                                \
	X(GILD_F_REQUEST_ACTOR_DESTROY, gild__v1__request__descriptor,        \
	    actor_destroy, GILD__V1__REQUEST__BODY_ACTOR_DESTROY)             \
	X(GILD_F_REQUEST_BATCH, gild__v1__request__descriptor, batch,         \
	    GILD__V1__REQUEST__BODY_BATCH)                                    \
	X(GILD_F_REQUEST_EXEC, gild__v1__request__descriptor, exec,           \
	    GILD__V1__REQUEST__BODY_EXEC)                                     \
	/* gild.v1.Call */                                                    \
	X(GILD_F_CALL_FUNCTION, gild__v1__call__descriptor, function, 1)      \
	X(GILD_F_CALL_ARGS, gild__v1__call__descriptor, args, 2)              \
	X(GILD_F_CALL_KWARGS, gild__v1__call__descriptor, kwargs, 3)          \
	X(GILD_F_CALL_TIMEOUT_MS, gild__v1__call__descriptor, timeout_ms, 4)  \
	X(GILD_F_CALL_STREAM, gild__v1__call__descriptor, stream, 5)          \
	X(GILD_F_CALL_WINDOW, gild__v1__call__descriptor, window, 6)          \
	X(GILD_F_CALL_ACTOR_ID, gild__v1__call__descriptor, actor_id, 7)      \
	/* gild.v1.Kwarg */                                                   \
	X(GILD_F_KWARG_NAME, gild__v1__kwarg__descriptor, name, 1)            \
	X(GILD_F_KWARG_VALUE, gild__v1__kwarg__descriptor, value, 2)          \
	/* gild.v1.ActorNew, ActorGet, ActorDestroy */                        \
	X(GILD_F_ACTOR_NEW_CLASS_NAME, gild__v1__actor_new__descriptor,       \
	    class_name, 1)                                                    \
	X(GILD_F_ACTOR_NEW_ARGS, gild__v1__actor_new__descriptor, args, 2)    \
	X(GILD_F_ACTOR_NEW_KWARGS, gild__v1__actor_new__descriptor, kwargs,   \
	    3)                                                                \
	X(GILD_F_ACTOR_NEW_NAME, gild__v1__actor_new__descriptor, name, 4)    \
	X(GILD_F_ACTOR_NEW_DETACHED, gild__v1__actor_new__descriptor,         \
	    detached, 5)                                                      \
	X(GILD_F_ACTOR_GET_NAME, gild__v1__actor_get__descriptor, name, 1)    \
	X(GILD_F_ACTOR_GET_WITH_CLASS, gild__v1__actor_get__descriptor,       \
	    with_class, 2)                                                    \
	X(GILD_F_ACTOR_DESTROY_ACTOR_ID, gild__v1__actor_destroy__descriptor, \
	    actor_id, 1)                                                      \
	/* gild.v1.Exec */                                                    \
	X(GILD_F_EXEC_SOURCE, gild__v1__exec__descriptor, source, 1)          \
	X(GILD_F_EXEC_VARIABLES, gild__v1__exec__descriptor, variables, 2)    \
	X(GILD_F_EXEC_TIMEOUT_MS, gild__v1__exec__descriptor, timeout_ms, 3)  \
	X(GILD_F_EXEC_FILENAME, gild__v1__exec__descriptor, filename, 4)      \
	/* gild.v1.Cancel, StreamNext, Ping, Batch */                         \
	X(GILD_F_CANCEL_TARGET_ID, gild__v1__cancel__descriptor, target_id,   \
	    1)                                                                \
	X(GILD_F_STREAM_NEXT_CALL_ID, gild__v1__stream_next__descriptor,      \
	    call_id, 1)                                                       \
	X(GILD_F_STREAM_NEXT_MAX, gild__v1__stream_next__descriptor, max, 2)  \
	X(GILD_F_PING_PAYLOAD, gild__v1__ping__descriptor, payload, 1)        \
	X(GILD_F_PING_WANT_SHM, gild__v1__ping__descriptor, want_shm, 2)      \
	/* gild.v1.ShmRef (Request.shm, Reply.shm) */                         \
	X(GILD_F_REQUEST_SHM, gild__v1__request__descriptor, shm, 12)         \
	X(GILD_F_REPLY_SHM, gild__v1__reply__descriptor, shm, 8)              \
	X(GILD_F_SHM_REF_HANDLE, gild__v1__shm_ref__descriptor, handle, 1)    \
	X(GILD_F_SHM_REF_LEN, gild__v1__shm_ref__descriptor, len, 2)          \
	X(GILD_F_BATCH_REQUESTS, gild__v1__batch__descriptor, requests, 1)    \
	/* gild.v1.Reply, Replies */                                          \
	X(GILD_F_REPLY_ID, gild__v1__reply__descriptor, id, 1)                \
	X(GILD_F_REPLY_RESULT, gild__v1__reply__descriptor, result,           \
	    GILD__V1__REPLY__BODY_RESULT)                                     \
	X(GILD_F_REPLY_ERROR, gild__v1__reply__descriptor, error,             \
	    GILD__V1__REPLY__BODY_ERROR)                                      \
	X(GILD_F_REPLY_STATUS, gild__v1__reply__descriptor, status,           \
	    GILD__V1__REPLY__BODY_STATUS)                                     \
	X(GILD_F_REPLY_PONG, gild__v1__reply__descriptor, pong,               \
	    GILD__V1__REPLY__BODY_PONG)                                       \
	X(GILD_F_REPLY_CHUNKS, gild__v1__reply__descriptor, chunks,           \
	    GILD__V1__REPLY__BODY_CHUNKS)                                     \
	X(GILD_F_REPLY_BATCH, gild__v1__reply__descriptor, batch,             \
	    GILD__V1__REPLY__BODY_BATCH)                                      \
	X(GILD_F_REPLIES_REPLIES, gild__v1__replies__descriptor, replies, 1)  \
	/* gild.v1.Error, Chunks */                                           \
	X(GILD_F_ERROR_CODE, gild__v1__error__descriptor, code, 1)            \
	X(GILD_F_ERROR_TRACEBACK, gild__v1__error__descriptor, traceback, 4)  \
	X(GILD_F_ERROR_NOT_STARTED, gild__v1__error__descriptor, not_started, \
	    5)                                                                \
	X(GILD_F_CHUNKS_FIRST_SEQ, gild__v1__chunks__descriptor, first_seq,   \
	    1)                                                                \
	X(GILD_F_CHUNKS_ITEMS, gild__v1__chunks__descriptor, items, 2)        \
	X(GILD_F_CHUNKS_END, gild__v1__chunks__descriptor, end, 3)            \
	X(GILD_F_CHUNKS_ERROR, gild__v1__chunks__descriptor, error, 4)        \
	/* gild.v1.Value and what it holds */                                 \
	X(GILD_F_VALUE_NULL, gild__v1__value__descriptor, null_value,         \
	    GILD__V1__VALUE__KIND_NULL_VALUE)                                 \
	X(GILD_F_VALUE_BOOL, gild__v1__value__descriptor, bool_value,         \
	    GILD__V1__VALUE__KIND_BOOL_VALUE)                                 \
	X(GILD_F_VALUE_INT, gild__v1__value__descriptor, int_value,           \
	    GILD__V1__VALUE__KIND_INT_VALUE)                                  \
	X(GILD_F_VALUE_BIG_INT, gild__v1__value__descriptor, big_int_value,   \
	    GILD__V1__VALUE__KIND_BIG_INT_VALUE)                              \
	X(GILD_F_VALUE_FLOAT, gild__v1__value__descriptor, float_value,       \
	    GILD__V1__VALUE__KIND_FLOAT_VALUE)                                \
	X(GILD_F_VALUE_STR, gild__v1__value__descriptor, str_value,           \
	    GILD__V1__VALUE__KIND_STR_VALUE)                                  \
	X(GILD_F_VALUE_BYTES, gild__v1__value__descriptor, bytes_value,       \
	    GILD__V1__VALUE__KIND_BYTES_VALUE)                                \
	X(GILD_F_VALUE_LIST, gild__v1__value__descriptor, list_value,         \
	    GILD__V1__VALUE__KIND_LIST_VALUE)                                 \
	X(GILD_F_VALUE_TUPLE, gild__v1__value__descriptor, tuple_value,       \
	    GILD__V1__VALUE__KIND_TUPLE_VALUE)                                \
	X(GILD_F_VALUE_MAP, gild__v1__value__descriptor, map_value,           \
	    GILD__V1__VALUE__KIND_MAP_VALUE)                                  \
	X(GILD_F_VALUE_TENSOR, gild__v1__value__descriptor, tensor_value,     \
	    GILD__V1__VALUE__KIND_TENSOR_VALUE)                               \
	X(GILD_F_VALUE_PICKLE, gild__v1__value__descriptor, pickle_value,     \
	    GILD__V1__VALUE__KIND_PICKLE_VALUE)                               \
	X(GILD_F_BIG_INT_LE_TWOS_COMPLEMENT, gild__v1__big_int__descriptor,   \
	    le_twos_complement, 1)                                            \
	X(GILD_F_LIST_ITEMS, gild__v1__list__descriptor, items, 1)            \
	X(GILD_F_MAP_ENTRIES, gild__v1__map__descriptor, entries, 1)          \
	X(GILD_F_MAP_ENTRY_KEY, gild__v1__map_entry__descriptor, key, 1)      \
	X(GILD_F_MAP_ENTRY_VALUE, gild__v1__map_entry__descriptor, value, 2)  \
	X(GILD_F_TENSOR_DTYPE, gild__v1__tensor__descriptor, dtype, 1)        \
	X(GILD_F_TENSOR_SHAPE, gild__v1__tensor__descriptor, shape, 2)        \
	X(GILD_F_TENSOR_DATA, gild__v1__tensor__descriptor, data, 3)          \
	/* gild.worker.v1.ToWorker */                                         \
	X(GILD_WF_TO_WORKER_JOB_ID, gild__worker__v1__to_worker__descriptor,  \
	    job_id, 1)                                                        \
	X(GILD_WF_TO_WORKER_REQUEST_ID,                                       \
	    gild__worker__v1__to_worker__descriptor, request_id, 6)           \
	X(GILD_WF_TO_WORKER_DEADLINE_MS,                                      \
	    gild__worker__v1__to_worker__descriptor, deadline_ms, 7)          \
	X(GILD_WF_TO_WORKER_QUEUED_US,                                        \
	    gild__worker__v1__to_worker__descriptor, queued_us, 8)            \
	X(GILD_WF_TO_WORKER_ACTOR_ID, gild__worker__v1__to_worker__descriptor, \
	    actor_id, 11)                                                     \
	X(GILD_WF_TO_WORKER_TRACE_CONTEXT,                                    \
	    gild__worker__v1__to_worker__descriptor, trace_context, 15)       \
	X(GILD_WF_TO_WORKER_CALL, gild__worker__v1__to_worker__descriptor,    \
	    call, GILD__WORKER__V1__TO_WORKER__BODY_CALL)                     \
	X(GILD_WF_TO_WORKER_INTERRUPT,                                        \
	    gild__worker__v1__to_worker__descriptor, interrupt,               \
	    GILD__WORKER__V1__TO_WORKER__BODY_INTERRUPT)                      \
	X(GILD_WF_TO_WORKER_CREDIT, gild__worker__v1__to_worker__descriptor,  \
	    credit, GILD__WORKER__V1__TO_WORKER__BODY_CREDIT)                 \
	X(GILD_WF_TO_WORKER_BATCH, gild__worker__v1__to_worker__descriptor,   \
	    batch, GILD__WORKER__V1__TO_WORKER__BODY_BATCH)                   \
	X(GILD_WF_TO_WORKER_ACTOR_NEW,                                        \
	    gild__worker__v1__to_worker__descriptor, actor_new,               \
	    GILD__WORKER__V1__TO_WORKER__BODY_ACTOR_NEW)                      \
	X(GILD_WF_TO_WORKER_ACTOR_DESTROY,                                    \
	    gild__worker__v1__to_worker__descriptor, actor_destroy,           \
	    GILD__WORKER__V1__TO_WORKER__BODY_ACTOR_DESTROY)                  \
	X(GILD_WF_TO_WORKER_EXEC, gild__worker__v1__to_worker__descriptor,    \
	    exec, GILD__WORKER__V1__TO_WORKER__BODY_EXEC)                     \
	X(GILD_WF_TO_WORKER_TAKE_BACK,                                        \
	    gild__worker__v1__to_worker__descriptor, take_back,               \
	    GILD__WORKER__V1__TO_WORKER__BODY_TAKE_BACK)                      \
	/* gild.worker.v1.Batch, Interrupt, Credit */                         \
	X(GILD_WF_BATCH_JOB_IDS, gild__worker__v1__batch__descriptor,         \
	    job_ids, 1)                                                       \
	X(GILD_WF_BATCH_CALLS, gild__worker__v1__batch__descriptor, calls, 2) \
	X(GILD_WF_INTERRUPT_CODE, gild__worker__v1__interrupt__descriptor,    \
	    code, 1)                                                          \
	X(GILD_WF_CREDIT_N, gild__worker__v1__credit__descriptor, n, 1)       \
	/* gild.worker.v1.FromWorker and what it holds */                     \
	X(GILD_WF_FROM_WORKER_JOB_ID,                                         \
	    gild__worker__v1__from_worker__descriptor, job_id, 1)             \
	X(GILD_WF_FROM_WORKER_EXITING,                                        \
	    gild__worker__v1__from_worker__descriptor, exiting, 10)           \
	X(GILD_WF_FROM_WORKER_RUN_US,                                         \
	    gild__worker__v1__from_worker__descriptor, run_us, 11)            \
	X(GILD_WF_FROM_WORKER_RESULT,                                         \
	    gild__worker__v1__from_worker__descriptor, result,                \
	    GILD__WORKER__V1__FROM_WORKER__BODY_RESULT)                       \
	X(GILD_WF_FROM_WORKER_ERROR,                                          \
	    gild__worker__v1__from_worker__descriptor, error,                 \
	    GILD__WORKER__V1__FROM_WORKER__BODY_ERROR)                        \
	X(GILD_WF_FROM_WORKER_HELLO,                                          \
	    gild__worker__v1__from_worker__descriptor, hello,                 \
	    GILD__WORKER__V1__FROM_WORKER__BODY_HELLO)                        \
	X(GILD_WF_FROM_WORKER_STARTUP_ERROR,                                  \
	    gild__worker__v1__from_worker__descriptor, startup_error,         \
	    GILD__WORKER__V1__FROM_WORKER__BODY_STARTUP_ERROR)                \
	X(GILD_WF_FROM_WORKER_SPAWNED,                                        \
	    gild__worker__v1__from_worker__descriptor, spawned,               \
	    GILD__WORKER__V1__FROM_WORKER__BODY_SPAWNED)                      \
	X(GILD_WF_FROM_WORKER_EXITED,                                         \
	    gild__worker__v1__from_worker__descriptor, exited,                \
	    GILD__WORKER__V1__FROM_WORKER__BODY_EXITED)                       \
	X(GILD_WF_FROM_WORKER_CHUNK,                                          \
	    gild__worker__v1__from_worker__descriptor, chunk,                 \
	    GILD__WORKER__V1__FROM_WORKER__BODY_CHUNK)                        \
	X(GILD_WF_FROM_WORKER_STREAM_END,                                     \
	    gild__worker__v1__from_worker__descriptor, stream_end,            \
	    GILD__WORKER__V1__FROM_WORKER__BODY_STREAM_END)                   \
	X(GILD_WF_FROM_WORKER_TAKEN_BACK,                                     \
	    gild__worker__v1__from_worker__descriptor, taken_back,            \
	    GILD__WORKER__V1__FROM_WORKER__BODY_TAKEN_BACK)                   \
	X(GILD_WF_CHUNK_SEQ, gild__worker__v1__chunk__descriptor, seq, 1)     \
	X(GILD_WF_CHUNK_VALUE, gild__worker__v1__chunk__descriptor, value, 2) \
	X(GILD_WF_STREAM_END_ERROR, gild__worker__v1__stream_end__descriptor, \
	    error, 2)                                                         \
	X(GILD_WF_TAKEN_BACK_RETURNED,                                        \
	    gild__worker__v1__taken_back__descriptor, returned, 1)

enum gild_field {
#define GILD_FIELD_ENUM(name, desc, field, number) name = (number),
	GILD_FIELDS(GILD_FIELD_ENUM)
#undef GILD_FIELD_ENUM
};

/* Each tag above is one byte (field numbers 1 to 15): the buffers that
 * wire_put_tag writes into count one byte per tag. */
#define GILD_FIELD_SMALL(name, desc, field, number) &&(number) < 16
_Static_assert(1 GILD_FIELDS(GILD_FIELD_SMALL),
    "a field number over 15 takes a tag of two bytes");
#undef GILD_FIELD_SMALL

/* The front end turns a worker's result or error into a Reply's by copying
 * the field, tag and all (server/parse.c, parse_from_worker): worker.proto
 * gives them Reply's numbers on purpose. */
_Static_assert(GILD_WF_FROM_WORKER_RESULT == GILD_F_REPLY_RESULT &&
	GILD_WF_FROM_WORKER_ERROR == GILD_F_REPLY_ERROR,
    "FromWorker.result and .error must have Reply's field numbers");

#endif
