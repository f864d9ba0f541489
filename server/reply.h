/* reply: the front end's answers to clients, encoded as gild.v1.Reply and
 * sent through the listener as the one reply to a request. */
#ifndef GILD_SERVER_REPLY_H
#define GILD_SERVER_REPLY_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "gild.pb-c.h"
#include "listener.h"

/* A new reply message with Reply.id set (omitted when request_id is 0), the
 * body's fields to be appended by the caller; NULL when out of memory. */
nng_msg *reply_start(uint64_t request_id);

/* Each sends one reply to `to` (which it then no longer holds) through
 * lst; out of memory, the reply is logged as lost. */

/* Reply{id, <r's body>}; r->id is overwritten. */
void reply_send(listener *lst, listener_req *to, uint64_t request_id,
    Gild__V1__Reply *r);
/* Reply{id, error{code, message}}, the message formatted (1 KiB at most). */
void reply_error(listener *lst, listener_req *to, uint64_t request_id,
    Gild__V1__Code code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void reply_verror(listener *lst, listener_req *to, uint64_t request_id,
    Gild__V1__Code code, const char *fmt, va_list ap);
/* Reply{id, error{UNAVAILABLE, message, not_started}}: refused on arrival
 * (the server drains), so the client may send it again elsewhere. */
void reply_refused(listener *lst, listener_req *to, uint64_t request_id,
    const char *message);
/* Reply{id, result{bool_value}} and Reply{id, result{int_value}}. */
void reply_bool(listener *lst, listener_req *to, uint64_t request_id, bool v);
void reply_int(listener *lst, listener_req *to, uint64_t request_id,
    int64_t v);

/* The gild.v1.Code that a Reply's body fields carry (an Error's, or OK for
 * a result), or with error_only, an Error's own fields. */
int reply_fields_code(const uint8_t *p, size_t len, bool error_only);

#endif
