/* reply: the front end's answers to clients (reply.h). */
#include "reply.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "replymsg.h"

/* Sends Reply{id, <r's body>} as the one reply to `to`. r->id is
 * overwritten. */
void
reply_send(listener *lst, listener_req *to, uint64_t request_id,
    Gild__V1__Reply *r)
{
	nng_msg *m = replymsg_pack(request_id, r);

	if (m == NULL) {
		log_error("out of memory: reply to request %" PRIu64 " lost",
		    request_id);
		return;
	}
	listener_reply(lst, to, m);
}

bool
reply_forward(listener *lst, listener_req *to, uint64_t request_id,
    const uint8_t *fields, size_t len)
{
	nng_msg *m = replymsg_forward(request_id, fields, len);

	if (m == NULL)
		return false;
	listener_reply(lst, to, m);
	return true;
}

/* Sends Reply{id, error{code, message, traceback, not_started}}
 * (traceback may be NULL). */
static void
send_error(listener *lst, listener_req *to, uint64_t request_id,
    Gild__V1__Code code, const char *message, const char *traceback,
    bool not_started)
{
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Error e = GILD__V1__ERROR__INIT;

	e.code = code;
	e.message = (char *) message;
	if (traceback != NULL)
		e.traceback = (char *) traceback;
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
	reply_verror_tb(lst, to, request_id, code, NULL, fmt, ap);
}

void
reply_verror_tb(listener *lst, listener_req *to, uint64_t request_id,
    Gild__V1__Code code, const char *traceback, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	send_error(lst, to, request_id, code, msg, traceback, false);
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
	    NULL, true);
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
reply_int_str(listener *lst, listener_req *to, uint64_t request_id,
    int64_t n, const char *s)
{
	Gild__V1__Value val = GILD__V1__VALUE__INIT, vn = GILD__V1__VALUE__INIT,
			vs = GILD__V1__VALUE__INIT, *items[] = {&vn, &vs};
	Gild__V1__List list = GILD__V1__LIST__INIT;

	vn.kind_case = GILD__V1__VALUE__KIND_INT_VALUE;
	vn.int_value = n;
	vs.kind_case = GILD__V1__VALUE__KIND_STR_VALUE;
	vs.str_value.data = (uint8_t *) s;
	vs.str_value.len = strlen(s);
	list.items = items;
	list.n_items = 2;
	val.kind_case = GILD__V1__VALUE__KIND_LIST_VALUE;
	val.list_value = &list;
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
