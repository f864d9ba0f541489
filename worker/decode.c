/* decode: a job's ToWorker frame read with the wire scanner, its values
 * left in place for convert_wire_to_py. */
#include "decode.h"

#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "gild_limits.h"
#include "trace.h"
#include "wire.h"

/* The wire type a known field of a message must have. */
struct field_type {
	uint32_t number;
	enum wire_type type;
};

static const struct field_type to_worker_fields[] = {
    {GILD_WF_TO_WORKER_JOB_ID, WIRE_VARINT},
    {GILD_WF_TO_WORKER_REQUEST_ID, WIRE_VARINT},
    {GILD_WF_TO_WORKER_DEADLINE_MS, WIRE_VARINT},
    {GILD_WF_TO_WORKER_QUEUED_US, WIRE_VARINT},
    {GILD_WF_TO_WORKER_ACTOR_ID, WIRE_VARINT},
    {GILD_WF_TO_WORKER_CALL, WIRE_LEN},
    {GILD_WF_TO_WORKER_INTERRUPT, WIRE_LEN},
    {GILD_WF_TO_WORKER_CREDIT, WIRE_LEN},
    {GILD_WF_TO_WORKER_BATCH, WIRE_LEN},
    {GILD_WF_TO_WORKER_ACTOR_NEW, WIRE_LEN},
    {GILD_WF_TO_WORKER_ACTOR_DESTROY, WIRE_VARINT},
    {GILD_WF_TO_WORKER_EXEC, WIRE_LEN},
    {GILD_WF_TO_WORKER_TAKE_BACK, WIRE_LEN},
    {GILD_WF_TO_WORKER_TRACE_CONTEXT, WIRE_LEN},
    {0, 0},
};

/* Call and ActorNew share args (2) and kwargs (3); their other fields. */
static const struct field_type call_fields[] = {
    {GILD_F_CALL_FUNCTION, WIRE_LEN},
    {GILD_F_CALL_ARGS, WIRE_LEN},
    {GILD_F_CALL_KWARGS, WIRE_LEN},
    {GILD_F_CALL_TIMEOUT_MS, WIRE_VARINT},
    {GILD_F_CALL_STREAM, WIRE_VARINT},
    {GILD_F_CALL_WINDOW, WIRE_VARINT},
    {GILD_F_CALL_ACTOR_ID, WIRE_VARINT},
    {0, 0},
};

static const struct field_type actor_new_fields[] = {
    {GILD_F_ACTOR_NEW_CLASS_NAME, WIRE_LEN},
    {GILD_F_ACTOR_NEW_ARGS, WIRE_LEN},
    {GILD_F_ACTOR_NEW_KWARGS, WIRE_LEN},
    {GILD_F_ACTOR_NEW_NAME, WIRE_LEN},
    {GILD_F_ACTOR_NEW_DETACHED, WIRE_VARINT},
    {0, 0},
};

static const struct field_type kwarg_fields[] = {
    {GILD_F_KWARG_NAME, WIRE_LEN},
    {GILD_F_KWARG_VALUE, WIRE_LEN},
    {0, 0},
};

static const struct field_type exec_fields[] = {
    {GILD_F_EXEC_SOURCE, WIRE_LEN},
    {GILD_F_EXEC_VARIABLES, WIRE_LEN},
    {GILD_F_EXEC_TIMEOUT_MS, WIRE_VARINT},
    {GILD_F_EXEC_FILENAME, WIRE_LEN},
    {0, 0},
};

_Static_assert(GILD_F_CALL_ARGS == GILD_F_ACTOR_NEW_ARGS &&
		   GILD_F_CALL_KWARGS == GILD_F_ACTOR_NEW_KWARGS,
    "read_call reads a Call's and an ActorNew's arguments alike");

/* Returns 0 if every field of msg is well formed and every known one has
 * its type, else -1 with *err naming `what`. */
static int
check(const uint8_t *msg, size_t len, const struct field_type *known,
    const char *what, werr *err)
{
	const uint8_t *p = msg, *end = msg + len;
	wire_field f;
	int r;

	while ((r = wire_next(&p, end, &f)) == 1)
		for (const struct field_type *k = known; k->number != 0; k++)
			if (k->number == f.number && k->type != f.type)
				return werr_set(err,
				    GILD__V1__CODE__INVALID_ARGUMENT, NULL,
				    "malformed call: field %u of the %s has "
				    "the wrong wire type",
				    f.number, what);
	if (r == -1)
		return werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "malformed call: the %s is not valid protobuf wire format",
		    what);
	return 0;
}

/* The last string field `number` of msg as a new NUL-terminated copy in
 * *out ("" when absent). -1 with *err for a NUL inside it or no memory. */
static int
string_field(const uint8_t *msg, size_t len, uint32_t number,
    const char *what, char **out, werr *err)
{
	wire_field f = {0};

	if (wire_find(msg, len, number, &f) == -1)
		f.len = 0; /* not reached: checked before */
	if (f.len > 0 && memchr(f.data, '\0', f.len) != NULL)
		return werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "malformed call: the %s holds a NUL byte", what);
	if ((*out = malloc(f.len + 1)) == NULL)
		return werr_set(
		    err, GILD__V1__CODE__INTERNAL, NULL, "out of memory");
	if (f.len > 0)
		memcpy(*out, f.data, f.len);
	(*out)[f.len] = '\0';
	return 0;
}

/* Reads a Call (or, with actor_new, an ActorNew) in msg into *c. */
static int
read_call(const uint8_t *msg, size_t len, int actor_new, decode_call *c,
    werr *err)
{
	const uint8_t *p = msg, *end = msg + len;
	const char *what = actor_new ? "actor constructor" : "call";
	wire_field f;

	if (check(msg, len, actor_new ? actor_new_fields : call_fields, what,
		err) == -1)
		return -1;
	c->body.data = msg;
	c->body.len = len;
	while (wire_next(&p, end, &f) == 1) {
		if (f.number == GILD_F_CALL_ARGS) {
			if (c->n_args++ == 0) {
				c->arg0.data = f.data;
				c->arg0.len = f.len;
			}
		} else if (f.number == GILD_F_CALL_KWARGS) {
			c->n_kwargs++;
			if (check(f.data, f.len, kwarg_fields, "keyword argument",
				err) == -1)
				return -1;
		} else if (actor_new) {
			continue;
		} else if (f.number == GILD_F_CALL_STREAM) {
			c->stream = f.value != 0;
		} else if (f.number == GILD_F_CALL_WINDOW) {
			c->window = (uint32_t) f.value;
		} else if (f.number == GILD_F_CALL_ACTOR_ID) {
			c->actor_id = f.value;
		}
	}
	return string_field(msg, len,
	    actor_new ? GILD_F_ACTOR_NEW_CLASS_NAME : GILD_F_CALL_FUNCTION,
	    actor_new ? "class name" : "function name", &c->function, err);
}

/* Reads a worker Batch: its job ids (packed or not) and calls. */
static int
decode_batch(const uint8_t *msg, size_t len, decode_msg *m, werr *err)
{
	const uint8_t *p = msg, *end = msg + len;
	wire_field f;
	size_t n_ids = 0, n_calls = 0;
	int r;

	while ((r = wire_next(&p, end, &f)) == 1) {
		if (f.number == GILD_WF_BATCH_CALLS && f.type == WIRE_LEN) {
			n_calls++;
		} else if (f.number == GILD_WF_BATCH_JOB_IDS &&
			   f.type == WIRE_VARINT) {
			n_ids++;
		} else if (f.number == GILD_WF_BATCH_JOB_IDS &&
			   f.type == WIRE_LEN) {
			const uint8_t *q = f.data, *qe = f.data + f.len;
			uint64_t id;
			while (q < qe)
				if (wire_get_varint(&q, qe, &id) == -1)
					goto malformed;
				else
					n_ids++;
		} else if (f.number == GILD_WF_BATCH_CALLS ||
			   f.number == GILD_WF_BATCH_JOB_IDS) {
			goto malformed;
		}
	}
	if (r == -1)
		goto malformed;
	if (n_calls > GILD_FUNCTION_BATCH_MAX || n_ids > GILD_FUNCTION_BATCH_MAX)
		return werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "malformed call: a batch of %zu calls, at most %d",
		    n_calls > n_ids ? n_calls : n_ids, GILD_FUNCTION_BATCH_MAX);
	m->job_ids = calloc(n_ids ? n_ids : 1, sizeof(*m->job_ids));
	m->calls = calloc(n_calls ? n_calls : 1, sizeof(*m->calls));
	if (m->job_ids == NULL || m->calls == NULL)
		return werr_set(
		    err, GILD__V1__CODE__INTERNAL, NULL, "out of memory");
	for (p = msg; wire_next(&p, end, &f) == 1;) {
		if (f.number == GILD_WF_BATCH_CALLS) {
			if (read_call(f.data, f.len, 0,
				&m->calls[m->n_calls++], err) == -1)
				return -1;
		} else if (f.number == GILD_WF_BATCH_JOB_IDS &&
			   f.type == WIRE_VARINT) {
			m->job_ids[m->n_job_ids++] = f.value;
		} else if (f.number == GILD_WF_BATCH_JOB_IDS) {
			const uint8_t *q = f.data, *qe = f.data + f.len;
			while (q < qe &&
			       wire_get_varint(&q, qe, &m->job_ids[m->n_job_ids]) ==
				   0)
				m->n_job_ids++;
		}
	}
	return 0;
malformed:
	return werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
	    "malformed call: the batch is not valid protobuf wire format");
}

/* ToWorker.trace_context: its traceparent and tracestate, when they are
 * what the front end lets through (trace.h); else none. */
static void
read_trace(const wire_field *f, decode_msg *m)
{
	trace_fields t;

	m->traceparent = m->tracestate = (decode_bytes){NULL, 0};
	if (f->type != WIRE_LEN || trace_read(f->data, f->len, &t) != NULL ||
	    t.parent == NULL)
		return;
	m->traceparent = (decode_bytes){(const uint8_t *) t.parent,
	    t.parent_len};
	if (t.state != NULL)
		m->tracestate = (decode_bytes){(const uint8_t *) t.state,
		    t.state_len};
}

int
decode_frame(const uint8_t *buf, size_t len, decode_msg *m, werr *err)
{
	const uint8_t *p = buf, *end = buf + len;
	decode_bytes body = {NULL, 0};
	wire_field f;
	int r;

	memset(m, 0, sizeof(*m));
	while ((r = wire_next(&p, end, &f)) == 1) {
		switch (f.number) {
		case GILD_WF_TO_WORKER_JOB_ID:
			if (f.type == WIRE_VARINT)
				m->job_id = f.value;
			break;
		case GILD_WF_TO_WORKER_REQUEST_ID:
			m->request_id = f.value;
			break;
		case GILD_WF_TO_WORKER_DEADLINE_MS:
			m->deadline_ms = (uint32_t) f.value;
			break;
		case GILD_WF_TO_WORKER_QUEUED_US:
			m->queued_us = (uint32_t) f.value;
			break;
		case GILD_WF_TO_WORKER_ACTOR_ID:
			m->actor_id = f.value;
			break;
		case GILD_WF_TO_WORKER_TRACE_CONTEXT:
			read_trace(&f, m);
			break;
		case GILD_WF_TO_WORKER_CALL:
		case GILD_WF_TO_WORKER_INTERRUPT:
		case GILD_WF_TO_WORKER_CREDIT:
		case GILD_WF_TO_WORKER_BATCH:
		case GILD_WF_TO_WORKER_ACTOR_NEW:
		case GILD_WF_TO_WORKER_ACTOR_DESTROY:
		case GILD_WF_TO_WORKER_EXEC:
		case GILD_WF_TO_WORKER_TAKE_BACK:
			/* A oneof: the last member given wins. */
			m->body = f.number;
			body.data = f.data;
			body.len = f.len;
			break;
		default:
			break;
		}
	}
	if (r == -1)
		return werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "malformed call: %zu bytes are not a valid ToWorker "
		    "message (broken protobuf wire format)",
		    len);
	if (check(buf, len, to_worker_fields, "ToWorker message", err) == -1)
		return -1;
	switch (m->body) {
	case GILD_WF_TO_WORKER_CALL:
		return read_call(body.data, body.len, 0, &m->call, err);
	case GILD_WF_TO_WORKER_ACTOR_NEW:
		return read_call(body.data, body.len, 1, &m->call, err);
	case GILD_WF_TO_WORKER_BATCH:
		return decode_batch(body.data, body.len, m, err);
	case GILD_WF_TO_WORKER_EXEC:
		if (check(body.data, body.len, exec_fields, "exec", err) == -1)
			return -1;
		m->exec = body;
		if (wire_find(body.data, body.len, GILD_F_EXEC_SOURCE, &f) == 1) {
			m->source.data = f.data;
			m->source.len = f.len;
		}
		return string_field(body.data, body.len, GILD_F_EXEC_FILENAME,
		    "exec's file name", &m->filename, err);
	default:
		return 0;
	}
}

void
decode_free(decode_msg *m)
{
	free(m->call.function);
	free(m->filename);
	for (size_t i = 0; i < m->n_calls; i++)
		free(m->calls[i].function);
	free(m->calls);
	free(m->job_ids);
	memset(m, 0, sizeof(*m));
}

int
decode_next(decode_bytes msg, uint32_t field, size_t *it, decode_bytes *v)
{
	const uint8_t *p = msg.data + *it, *end = msg.data + msg.len;
	wire_field f;

	while (wire_next(&p, end, &f) == 1) {
		if (f.number != field || f.type != WIRE_LEN)
			continue;
		*it = (size_t) (p - msg.data);
		v->data = f.data;
		v->len = f.len;
		return 1;
	}
	*it = msg.len;
	return 0;
}
