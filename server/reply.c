/* reply: the front end's answers to clients (reply.h). */
#include "reply.h"

#include <inttypes.h>
#include <stdio.h>

#include "fields.h"
#include "log.h"
#include "wire.h"

/* A new reply message with Reply.id set, the body's fields to be appended.
 * NULL when out of memory. */
nng_msg *
reply_start(uint64_t request_id)
{
	uint8_t buf[1 + WIRE_MAX_VARINT];
	size_t n = 0;
	nng_msg *m;

	if (nng_msg_alloc(&m, 0) != 0)
		return NULL;
	if (request_id != 0) {
		n += wire_put_tag(buf, GILD_F_REPLY_ID, WIRE_VARINT);
		n += wire_put_varint(buf + n, request_id);
		if (nng_msg_append(m, buf, n) != 0) {
			nng_msg_free(m);
			return NULL;
		}
	}
	return m;
}

/* Sends Reply{id, <r's body>} as the one reply to `to`. r->id is
 * overwritten. */
void
reply_send(listener *lst, listener_req *to, uint64_t request_id,
    Gild__V1__Reply *r)
{
	size_t len;
	nng_msg *m;

	r->id = request_id;
	len = gild__v1__reply__get_packed_size(r);
	if (nng_msg_alloc(&m, len) != 0) {
		log_error("out of memory: reply to request %" PRIu64 " lost",
		    request_id);
		return;
	}
	gild__v1__reply__pack(r, nng_msg_body(m));
	listener_reply(lst, to, m);
}

/* Sends Reply{id, error{code, message, not_started}}. */
static void
send_error(listener *lst, listener_req *to, uint64_t request_id,
    Gild__V1__Code code, const char *message, bool not_started)
{
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Error e = GILD__V1__ERROR__INIT;

	e.code = code;
	e.message = (char *) message;
	e.not_started = not_started;
	r.body_case = GILD__V1__REPLY__BODY_ERROR;
	r.error = &e;
	reply_send(lst, to, request_id, &r);
}

/* Sends Reply{id, result{*val}}. */
static void
send_result(listener *lst, listener_req *to, uint64_t request_id,
    Gild__V1__Value *val)
{
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;

	r.body_case = GILD__V1__REPLY__BODY_RESULT;
	r.result = val;
	reply_send(lst, to, request_id, &r);
}

void
reply_verror(listener *lst, listener_req *to, uint64_t request_id,
    Gild__V1__Code code, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	send_error(lst, to, request_id, code, msg, false);
}

void
reply_error(listener *lst, listener_req *to, uint64_t request_id,
    Gild__V1__Code code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_verror(lst, to, request_id, code, fmt, ap);
	va_end(ap);
}

void
reply_refused(listener *lst, listener_req *to, uint64_t request_id,
    const char *message)
{
	send_error(lst, to, request_id, GILD__V1__CODE__UNAVAILABLE, message,
	    true);
}

void
reply_bool(listener *lst, listener_req *to, uint64_t request_id, bool v)
{
	Gild__V1__Value val = GILD__V1__VALUE__INIT;

	val.kind_case = GILD__V1__VALUE__KIND_BOOL_VALUE;
	val.bool_value = v;
	send_result(lst, to, request_id, &val);
}

void
reply_int(listener *lst, listener_req *to, uint64_t request_id, int64_t v)
{
	Gild__V1__Value val = GILD__V1__VALUE__INIT;

	val.kind_case = GILD__V1__VALUE__KIND_INT_VALUE;
	val.int_value = v;
	send_result(lst, to, request_id, &val);
}

int
reply_fields_code(const uint8_t *p, size_t len, bool error_only)
{
	wire_field e, c;

	if (!error_only) {
		if (wire_find(p, len, GILD_F_REPLY_ERROR, &e) != 1 ||
		    e.type != WIRE_LEN)
			return GILD__V1__CODE__OK;
		p = e.data;
		len = e.len;
	}
	if (wire_find(p, len, GILD_F_ERROR_CODE, &c) == 1 &&
	    c.type == WIRE_VARINT)
		return (int) c.value;
	return GILD__V1__CODE__UNKNOWN;
}
