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

void
parse_request(const uint8_t *buf, size_t len, size_t max_message,
    parsed_request *out)
{
	const uint8_t *p = buf, *end = buf + len;
	wire_field f, fn;
	int rc;

	memset(out, 0, sizeof(*out));
	while ((rc = wire_next(&p, end, &f)) == 1) {
		if (f.number == 1 && f.type == WIRE_VARINT) {
			out->id = f.value;
		} else if (f.number == 15 && f.type == WIRE_LEN) {
			out->token = (const char *) f.data;
			out->token_len = f.len;
		} else if (f.number >= BODY_CALL &&
			   f.number <= BODY_EXEC &&
			   f.type == WIRE_LEN) {
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
	if (out->body == BODY_NONE) {
		out->code = GILD__V1__CODE__INVALID_ARGUMENT;
		snprintf(out->message, sizeof(out->message),
		    "request %" PRIu64 " has no body: set call, cancel, status, "
		    "ping, stream_next, batch, exec or an actor request",
		    out->id);
		return;
	}
	if (out->body == BODY_CALL) {
		if (wire_find(out->data, out->len, 1, &fn) != 1 ||
		    fn.type != WIRE_LEN || fn.len == 0)
			return refuse(out, GILD__V1__CODE__INVALID_ARGUMENT,
			    wire_check(out->data, out->len) != 0
				? "malformed call: not a valid gild.v1.Call "
				  "message"
				: "call has no function name");
		out->function = (const char *) fn.data;
		out->function_len = fn.len;
		if (wire_find(out->data, out->len, 4, &f) == 1 &&
		    f.type == WIRE_VARINT)
			out->timeout_ms = f.value > UINT32_MAX
					      ? UINT32_MAX
					      : (uint32_t) f.value;
		if (wire_find(out->data, out->len, 5, &f) == 1 &&
		    f.type == WIRE_VARINT)
			out->stream = f.value != 0;
		if (wire_find(out->data, out->len, 6, &f) == 1 &&
		    f.type == WIRE_VARINT)
			out->window = f.value > UINT32_MAX ? UINT32_MAX
							   : (uint32_t) f.value;
		if (wire_find(out->data, out->len, 7, &f) == 1 &&
		    f.type == WIRE_VARINT)
			out->actor_id = f.value;
	} else if (out->body == BODY_EXEC) {
		if (wire_check(out->data, out->len) != 0)
			return refuse(out, GILD__V1__CODE__INVALID_ARGUMENT,
			    "malformed exec: not a valid gild.v1.Exec message");
		out->function = PARSE_EXEC_NAME;
		out->function_len = sizeof(PARSE_EXEC_NAME) - 1;
		if (wire_find(out->data, out->len, 3, &f) == 1 &&
		    f.type == WIRE_VARINT)
			out->timeout_ms = f.value > UINT32_MAX
					      ? UINT32_MAX
					      : (uint32_t) f.value;
	} else if (out->body == BODY_ACTOR_NEW) {
		if (wire_find(out->data, out->len, 1, &fn) != 1 ||
		    fn.type != WIRE_LEN || fn.len == 0)
			return refuse(out, GILD__V1__CODE__INVALID_ARGUMENT,
			    "actor_new has no class_name");
		out->actor_class = (const char *) fn.data;
		out->actor_class_len = fn.len;
		if (wire_find(out->data, out->len, 4, &f) == 1 &&
		    f.type == WIRE_LEN && f.len > 0) {
			out->actor_name = (const char *) f.data;
			out->actor_name_len = f.len;
		}
		if (wire_find(out->data, out->len, 5, &f) == 1 &&
		    f.type == WIRE_VARINT)
			out->detached = f.value != 0;
	} else if (out->body == BODY_ACTOR_GET) {
		if (wire_find(out->data, out->len, 1, &f) == 1 &&
		    f.type == WIRE_LEN) {
			out->actor_name = (const char *) f.data;
			out->actor_name_len = f.len;
		}
	} else if (out->body == BODY_ACTOR_DESTROY) {
		if (wire_find(out->data, out->len, 1, &f) == 1 &&
		    f.type == WIRE_VARINT)
			out->actor_id = f.value;
	} else if (out->body == BODY_CANCEL) {
		if (wire_find(out->data, out->len, 1, &f) == 1 &&
		    f.type == WIRE_VARINT)
			out->cancel_target = f.value;
	} else if (out->body == BODY_STREAM_NEXT) {
		if (wire_find(out->data, out->len, 1, &f) == 1 &&
		    f.type == WIRE_VARINT)
			out->stream_call = f.value;
		if (wire_find(out->data, out->len, 2, &f) == 1 &&
		    f.type == WIRE_VARINT)
			out->stream_max = f.value > UINT32_MAX
					      ? UINT32_MAX
					      : (uint32_t) f.value;
	} else if (out->body == BODY_PING) {
		if (wire_find(out->data, out->len, 1, &f) == 1 &&
		    f.type == WIRE_LEN) {
			out->ping_payload = f.data;
			out->ping_payload_len = f.len;
		}
	}
}

void
parse_from_worker(const uint8_t *buf, size_t len, parsed_from_worker *out)
{
	const uint8_t *p = buf, *end = buf + len;
	wire_field f;
	int rc;

	memset(out, 0, sizeof(*out));
	out->kind = FW_MALFORMED;
	while ((rc = wire_next(&p, end, &f)) == 1) {
		if (f.number == 1 && f.type == WIRE_VARINT) {
			out->job_id = f.value;
		} else if (f.number == 10 && f.type == WIRE_VARINT) {
			out->exiting = f.value != 0;
		} else if (f.number == 11 && f.type == WIRE_VARINT) {
			out->run_us = f.value > UINT32_MAX ? UINT32_MAX
							   : (uint32_t) f.value;
		} else if (f.number == 12 && f.type == WIRE_LEN) {
			wire_field r;
			out->kind = FW_TAKEN_BACK;
			out->returned = wire_find(f.data, f.len, 1, &r) == 1 &&
					r.type == WIRE_VARINT && r.value != 0;
			out->data = f.data;
			out->len = f.len;
		} else if ((f.number == 2 || f.number == 3) &&
			   f.type == WIRE_LEN) {
			/* Only this field goes into the Reply: anything else
			 * a broken worker sent (a second field 1, say) must
			 * not overwrite the client's Reply.id. */
			out->kind = FW_RESULT;
			out->data = f.start;
			out->len = f.total;
		} else if (f.number >= 4 && f.number <= 9 &&
			   f.type == WIRE_LEN) {
			static const enum parse_from_worker_kind kinds[] = {
			    FW_HELLO, FW_STARTUP_ERROR, FW_SPAWNED, FW_EXITED,
			    FW_CHUNK, FW_STREAM_END};
			out->kind = kinds[f.number - 4];
			out->data = f.data;
			out->len = f.len;
			return;
		}
	}
	if (rc < 0)
		out->kind = FW_MALFORMED;
}
