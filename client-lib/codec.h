/* libgild internal: gild_value <-> gild.v1 protobuf wire format, and the
 * Requests and Replies that carry values.
 *
 * Values are written and read directly in the wire format rather than
 * through protobuf-c's Gild__V1__Value structs, which would copy every
 * payload once more (a result can be 64 MiB) and allocate a node per item.
 * The bytes are exactly those gild__v1__value__pack / __unpack produce and
 * accept (the unit tests check both directions). */
#ifndef GILD_CLIENT_CODEC_H
#define GILD_CLIENT_CODEC_H

#include "gild.h"
#include "gild.pb-c.h"

/* An output buffer written back to front: the encoded bytes are
 * base[pos..cap). A zero-initialised codec_buf is empty and valid; release
 * with codec_buf_fini. */
typedef struct codec_buf {
	uint8_t *base;
	size_t cap;
	size_t pos;
} codec_buf;

void codec_buf_fini(codec_buf *b);
static inline const uint8_t *codec_buf_data(const codec_buf *b)
{
	return b->base + b->pos;
}
static inline size_t codec_buf_len(const codec_buf *b)
{
	return b->cap - b->pos;
}

/* Prepends the fields of a gild.v1.Value message holding v to b. Returns
 * GILD_OK, GILD_INVALID_ARGUMENT (v NULL or nested deeper than
 * GILD_VALUE_DEPTH_MAX) or GILD_RESOURCE_EXHAUSTED, with err filled. */
int codec_encode_value(codec_buf *b, const gild_value *v, gild_error *err);

/* Decodes an encoded gild.v1.Value into a new value (*out, owned by the
 * caller). Returns GILD_OK, GILD_INVALID_ARGUMENT (malformed bytes, no kind
 * set, a str that is not UTF-8, a tensor whose size does not match, too
 * deep) or GILD_RESOURCE_EXHAUSTED, with err filled. */
int codec_decode_value(const uint8_t *buf, size_t len, gild_value **out,
    gild_error *err);

/* Replaces a VALUE_ENCODED *v by its decoded value (other kinds are left
 * as they are). GILD_OK, or the decoding's error with *v untouched. */
int codec_value_plain(gild_value **v, gild_error *err);

/* Request bodies: each prepends one `body` field of a gild.v1.Request.
 * args (GILD_LIST/GILD_TUPLE or NULL) and kwargs (GILD_MAP with GILD_STR
 * keys, or NULL) are borrowed; timeout_ms is Call.timeout_ms (0: none).
 * Same returns as codec_encode_value. */
int codec_encode_call(codec_buf *b, const char *function,
    const gild_value *args, const gild_value *kwargs, uint32_t timeout_ms,
    gild_error *err);
/* codec_encode_call with Call.stream set and Call.window = window (0: the
 * server's default). */
int codec_encode_stream_call(codec_buf *b, const char *function,
    const gild_value *args, const gild_value *kwargs, uint32_t timeout_ms,
    uint32_t window, gild_error *err);
/* The general form: a Call with every option, or (actor_new) an ActorNew
 * of class `function` with constructor args and kwargs. */
typedef struct codec_call_opts {
	uint32_t timeout_ms; /* Call.timeout_ms (0: none) */
	bool stream;         /* Call.stream, Call.window */
	uint32_t window;
	uint64_t actor_id;   /* Call.actor_id: call method `function` */
	bool actor_new;      /* an ActorNew instead, with: */
	const char *name;    /* ActorNew.name (NULL: none) */
	bool detached;       /* ActorNew.detached */
} codec_call_opts;
int codec_encode_call_opts(codec_buf *b, const char *function,
    const gild_value *args, const gild_value *kwargs,
    const codec_call_opts *o, gild_error *err);
/* Exec{source (len bytes of UTF-8), variables (a GILD_MAP with GILD_STR
 * keys, or NULL), timeout_ms (0: none), filename (NULL or "": none)}. */
int codec_encode_exec(codec_buf *b, const char *source, size_t len,
    const gild_value *variables, const char *filename, uint32_t timeout_ms,
    gild_error *err);
/* ActorGet{name, with_class} and ActorDestroy{actor_id}. */
int codec_encode_actor_get(codec_buf *b, const char *name, bool with_class,
    gild_error *err);
int codec_encode_actor_destroy(codec_buf *b, uint64_t actor_id,
    gild_error *err);
/* StreamNext{call_id, max}: the next chunks (at most max; 0: no limit) of
 * the stream opened by request call_id. */
int codec_encode_stream_next(codec_buf *b, uint64_t call_id, uint32_t max,
    gild_error *err);
int codec_encode_cancel(codec_buf *b, uint64_t target_id, gild_error *err);
int codec_encode_status(codec_buf *b, gild_error *err);
int codec_encode_ping(codec_buf *b, const void *payload, size_t len,
    gild_error *err);
/* Prepends Request.id; call it last, after the body. */
int codec_encode_id(codec_buf *b, uint64_t id, gild_error *err);
/* Prepends Request.token (nothing when token is NULL). */
int codec_encode_token(codec_buf *b, const char *token, gild_error *err);
/* Prepends Request.trace_context (nothing when traceparent is NULL):
 * GILD_INVALID_ARGUMENT, naming what is wrong, for a traceparent or
 * tracestate (NULL: none) that the server would refuse (proto/trace.h). */
int codec_encode_trace(codec_buf *b, const char *traceparent,
    const char *tracestate, gild_error *err);
/* Nesting: codec_mark before prepending a message's fields, then
 * codec_wrap turns what was prepended since into field `number` (a
 * Batch's requests, the Request's batch). */
size_t codec_mark(const codec_buf *b);
int codec_wrap(codec_buf *b, size_t mark, uint32_t number, gild_error *err);
/* Prepends n raw bytes (an encoded message) to b. */
int codec_prepend(codec_buf *b, const void *p, size_t n, gild_error *err);

/* The top level of a gild.v1.Reply: its id and which body it carries
 * (a GILD__V1__REPLY__BODY_* value; the last one wins, as protobuf says),
 * with that body's encoded bytes borrowed from the scanned buffer. */
typedef struct codec_reply {
	uint64_t id;
	int body;
	const uint8_t *data;
	size_t len;
} codec_reply;

/* Returns 0, or -1 when buf is not a well-formed Reply. */
int codec_scan_reply(const uint8_t *buf, size_t len, codec_reply *r);

/* Fills err from an encoded gild.v1.Error. Returns GILD_OK, or
 * GILD_INVALID_ARGUMENT when the bytes do not decode. */
int codec_decode_error(const uint8_t *buf, size_t len, gild_error *err);

/* A decoded gild.v1.Chunks. A zero-initialised codec_chunks is empty and
 * valid; release with codec_chunks_fini. */
typedef struct codec_chunks {
	uint64_t first_seq;  /* sequence number of items[0] */
	gild_value **items;  /* n_items new values, owned by the struct */
	size_t n_items;
	bool end;            /* no chunk follows these */
	gild_error error;    /* code != 0: the stream stopped with this error */
} codec_chunks;

/* Frees the items and the error and zeroes *ch. Accepts NULL. */
void codec_chunks_fini(codec_chunks *ch);

/* Decodes an encoded gild.v1.Chunks into *out (which must be empty).
 * Returns GILD_OK, or GILD_INVALID_ARGUMENT (malformed bytes, an item that
 * is not a valid Value) or GILD_RESOURCE_EXHAUSTED with err filled and *out
 * left empty. */
int codec_decode_chunks(const uint8_t *buf, size_t len, codec_chunks *out,
    gild_error *err);
/* codec_decode_chunks, the items kept as VALUE_ENCODED copies when
 * encoded is set (a client of the Python extension, see value.h). */
int codec_decode_chunks_as(const uint8_t *buf, size_t len, bool encoded,
    codec_chunks *out, gild_error *err);

/* Converts gild.v1.Status into a new GILD_MAP (*out, owned by the caller)
 * keyed by the proto field names. GILD_OK or GILD_RESOURCE_EXHAUSTED. */
int codec_status_to_value(const Gild__V1__Status *st, gild_value **out);

#endif
