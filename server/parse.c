/* The front end's decoders of untrusted bytes: Request and FromWorker. */
#include "parse.h"

#include "gild.pb-c.h"
#include "wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void
refuse(parsed_request *out, int code, const char *msg)
{
	out->code = code;
	snprintf(out->message, sizeof(out->message), "%s", msg);
}

/* Finds field n of the request's body: true when it is there with wire
 * type t (protobuf's last one wins), filling *f. */
static bool
body_field(const parsed_request *out, uint32_t n, enum wire_type t,
    wire_field *f)
{
	return wire_find(out->data, out->len, n, f) == 1 && f->type == t;
}

static uint32_t
clamp_u32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t) v;
}

/* Whether n is the field number of one of Request's bodies. */
static bool
is_body(uint32_t n)
{
	switch (n) {
	case BODY_CALL:
	case BODY_CANCEL:
	case BODY_STATUS:
	case BODY_PING:
	case BODY_STREAM_NEXT:
	case BODY_ACTOR_NEW:
	case BODY_ACTOR_GET:
	case BODY_ACTOR_DESTROY:
	case BODY_BATCH:
	case BODY_EXEC:
		return true;
	default:
		return false;
	}
}

void
parse_request(const uint8_t *buf, size_t len, size_t max_message,
    parsed_request *out)
{
	const uint8_t *p = buf, *end = buf + len;
	wire_field f, fn;
	int rc;

	memset(out, 0, sizeof(*out));
	while ((rc = wire_next(&p, end, &f)) == 1) {
		if (f.number == GILD_F_REQUEST_ID && f.type == WIRE_VARINT) {
			out->id = f.value;
		} else if (f.number == GILD_F_REQUEST_TOKEN &&
			   f.type == WIRE_LEN) {
			out->token = (const char *) f.data;
			out->token_len = f.len;
		} else if (f.number == GILD_F_REQUEST_TRACE_CONTEXT &&
			   f.type == WIRE_LEN) {
			out->trace = f.data;
			out->trace_len = f.len;
		} else if (f.number == GILD_F_REQUEST_SHM &&
			   f.type == WIRE_LEN) {
			wire_field h;
			out->shm = true;
			if (wire_find(f.data, f.len, GILD_F_SHM_REF_HANDLE,
				&h) == 1 && h.type == WIRE_VARINT)
				out->shm_handle = h.value;
			if (wire_find(f.data, f.len, GILD_F_SHM_REF_LEN, &h) ==
				1 && h.type == WIRE_VARINT)
				out->shm_len = h.value;
		} else if (is_body(f.number) && f.type == WIRE_LEN) {
			/* Last one wins, as for any protobuf oneof. */
			out->body = (enum parse_body) f.number;
			out->data = f.data;
			out->len = f.len;
		}
	}
	if (len > max_message) {
		out->code = GILD__V1__CODE__RESOURCE_EXHAUSTED;
		snprintf(out->message, sizeof(out->message),
		    "request of %zu bytes exceeds the server's --max-message of "
		    "%zu bytes",
		    len, max_message);
		return;
	}
	if (rc < 0)
		return refuse(out, GILD__V1__CODE__INVALID_ARGUMENT,
		    "malformed request: not a valid gild.v1.Request message");
	if (out->shm)
		return; /* the request is in a memfd: shm.h */
	if (out->body == BODY_NONE) {
		out->code = GILD__V1__CODE__INVALID_ARGUMENT;
		snprintf(out->message, sizeof(out->message),
		    "request %" PRIu64 " has no body: set call, cancel, status, "
		    "ping, stream_next, batch, exec or an actor request",
		    out->id);
		return;
	}
	if (out->trace != NULL) {
		const char *why = trace_read(out->trace, out->trace_len,
		    &out->trace_fields);
		if (why != NULL)
			return refuse(out, GILD__V1__CODE__INVALID_ARGUMENT, why);
		if (out->trace_fields.parent == NULL)
			out->trace = NULL; /* an empty one: none */
	}
	if (out->body == BODY_CALL) {
		if (!body_field(out, GILD_F_CALL_FUNCTION, WIRE_LEN, &fn) ||
		    fn.len == 0)
			return refuse(out, GILD__V1__CODE__INVALID_ARGUMENT,
			    wire_check(out->data, out->len) != 0
				? "malformed call: not a valid gild.v1.Call "
				  "message"
				: "call has no function name");
		out->function = (const char *) fn.data;
		out->function_len = fn.len;
		if (body_field(out, GILD_F_CALL_TIMEOUT_MS, WIRE_VARINT, &f))
			out->timeout_ms = clamp_u32(f.value);
		if (body_field(out, GILD_F_CALL_STREAM, WIRE_VARINT, &f))
			out->stream = f.value != 0;
		if (body_field(out, GILD_F_CALL_WINDOW, WIRE_VARINT, &f))
			out->window = clamp_u32(f.value);
		if (body_field(out, GILD_F_CALL_ACTOR_ID, WIRE_VARINT, &f))
			out->actor_id = f.value;
	} else if (out->body == BODY_EXEC) {
		if (wire_check(out->data, out->len) != 0)
			return refuse(out, GILD__V1__CODE__INVALID_ARGUMENT,
			    "malformed exec: not a valid gild.v1.Exec message");
		out->function = PARSE_EXEC_NAME;
		out->function_len = sizeof(PARSE_EXEC_NAME) - 1;
		if (body_field(out, GILD_F_EXEC_TIMEOUT_MS, WIRE_VARINT, &f))
			out->timeout_ms = clamp_u32(f.value);
	} else if (out->body == BODY_ACTOR_NEW) {
		if (!body_field(out, GILD_F_ACTOR_NEW_CLASS_NAME, WIRE_LEN,
			&fn) ||
		    fn.len == 0)
			return refuse(out, GILD__V1__CODE__INVALID_ARGUMENT,
			    "actor_new has no class_name");
		out->actor_class = (const char *) fn.data;
		out->actor_class_len = fn.len;
		if (body_field(out, GILD_F_ACTOR_NEW_NAME, WIRE_LEN, &f) &&
		    f.len > 0) {
			out->actor_name = (const char *) f.data;
			out->actor_name_len = f.len;
		}
		if (body_field(out, GILD_F_ACTOR_NEW_DETACHED, WIRE_VARINT, &f))
			out->detached = f.value != 0;
	} else if (out->body == BODY_ACTOR_GET) {
		if (body_field(out, GILD_F_ACTOR_GET_NAME, WIRE_LEN, &f)) {
			out->actor_name = (const char *) f.data;
			out->actor_name_len = f.len;
		}
		if (body_field(out, GILD_F_ACTOR_GET_WITH_CLASS, WIRE_VARINT,
			&f))
			out->with_class = f.value != 0;
	} else if (out->body == BODY_ACTOR_DESTROY) {
		if (body_field(out, GILD_F_ACTOR_DESTROY_ACTOR_ID, WIRE_VARINT,
			&f))
			out->actor_id = f.value;
	} else if (out->body == BODY_CANCEL) {
		if (body_field(out, GILD_F_CANCEL_TARGET_ID, WIRE_VARINT, &f))
			out->cancel_target = f.value;
	} else if (out->body == BODY_STREAM_NEXT) {
		if (body_field(out, GILD_F_STREAM_NEXT_CALL_ID, WIRE_VARINT,
			&f))
			out->stream_call = f.value;
		if (body_field(out, GILD_F_STREAM_NEXT_MAX, WIRE_VARINT, &f))
			out->stream_max = clamp_u32(f.value);
	} else if (out->body == BODY_PING) {
		if (body_field(out, GILD_F_PING_PAYLOAD, WIRE_LEN, &f)) {
			out->ping_payload = f.data;
			out->ping_payload_len = f.len;
		}
		if (body_field(out, GILD_F_PING_WANT_SHM, WIRE_VARINT, &f))
			out->want_shm = f.value != 0;
	}
}

/* The kind of a FromWorker whose body is field n, when that body is a
 * message passed on as it is; FW_MALFORMED for the others. */
static enum parse_from_worker_kind
message_kind(uint32_t n)
{
	switch (n) {
	case GILD_WF_FROM_WORKER_HELLO:
		return FW_HELLO;
	case GILD_WF_FROM_WORKER_STARTUP_ERROR:
		return FW_STARTUP_ERROR;
	case GILD_WF_FROM_WORKER_SPAWNED:
		return FW_SPAWNED;
	case GILD_WF_FROM_WORKER_EXITED:
		return FW_EXITED;
	case GILD_WF_FROM_WORKER_CHUNK:
		return FW_CHUNK;
	case GILD_WF_FROM_WORKER_STREAM_END:
		return FW_STREAM_END;
	default:
		return FW_MALFORMED;
	}
}

void
parse_from_worker(const uint8_t *buf, size_t len, parsed_from_worker *out)
{
	const uint8_t *p = buf, *end = buf + len;
	enum parse_from_worker_kind kind;
	wire_field f;
	int rc;

	memset(out, 0, sizeof(*out));
	out->kind = FW_MALFORMED;
	while ((rc = wire_next(&p, end, &f)) == 1) {
		if (f.number == GILD_WF_FROM_WORKER_JOB_ID &&
		    f.type == WIRE_VARINT) {
			out->job_id = f.value;
		} else if (f.number == GILD_WF_FROM_WORKER_EXITING &&
			   f.type == WIRE_VARINT) {
			out->exiting = f.value != 0;
		} else if (f.number == GILD_WF_FROM_WORKER_RUN_US &&
			   f.type == WIRE_VARINT) {
			out->run_us = clamp_u32(f.value);
		} else if (f.number == GILD_WF_FROM_WORKER_TAKEN_BACK &&
			   f.type == WIRE_LEN) {
			wire_field r;
			out->kind = FW_TAKEN_BACK;
			out->returned = wire_find(f.data, f.len,
					    GILD_WF_TAKEN_BACK_RETURNED,
					    &r) == 1 &&
					r.type == WIRE_VARINT && r.value != 0;
			out->data = f.data;
			out->len = f.len;
		} else if ((f.number == GILD_WF_FROM_WORKER_RESULT ||
			       f.number == GILD_WF_FROM_WORKER_ERROR) &&
			   f.type == WIRE_LEN) {
			/* Only this field goes into the Reply: anything else
			 * a broken worker sent (a second field 1, say) must
			 * not overwrite the client's Reply.id. */
			out->kind = FW_RESULT;
			out->data = f.start;
			out->len = f.total;
		} else if ((kind = message_kind(f.number)) != FW_MALFORMED &&
			   f.type == WIRE_LEN) {
			out->kind = kind;
			out->data = f.data;
			out->len = f.len;
			return;
		}
	}
	if (rc < 0)
		out->kind = FW_MALFORMED;
}
