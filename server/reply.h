/* reply: the front end's answers to clients, sent through the listener as
 * the one reply to a request (their bytes: replymsg.c). */
#ifndef GILD_SERVER_REPLY_H
#define GILD_SERVER_REPLY_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "gild.pb-c.h"
#include "listener.h"

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
/* The same with a traceback (NULL: none): where a call stopped from
 * outside was when it stopped. */
void reply_verror_tb(listener *lst, listener_req *to, uint64_t request_id,
    Gild__V1__Code code, const char *traceback, const char *fmt,
    va_list ap);
/* Reply{id, error{UNAVAILABLE, message, not_started}}: refused on arrival
 * (the server drains), so the client may send it again elsewhere. */
void reply_refused(listener *lst, listener_req *to, uint64_t request_id,
    const char *message);
/* Reply{id} with a worker's result or error fields as they came; false
 * when out of memory (nothing sent, `to` still held). */
bool reply_forward(listener *lst, listener_req *to, uint64_t request_id,
    const uint8_t *fields, size_t len);
/* Reply{id, result{bool_value}} and Reply{id, result{int_value}}. */
void reply_bool(listener *lst, listener_req *to, uint64_t request_id, bool v);
void reply_int(listener *lst, listener_req *to, uint64_t request_id,
    int64_t v);
/* Reply{id, result{list_value [n, s]}} (s: NUL-terminated UTF-8). */
void reply_int_str(listener *lst, listener_req *to, uint64_t request_id,
    int64_t n, const char *s);

#endif
