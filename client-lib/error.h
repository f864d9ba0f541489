/* libgild internal: filling a caller's gild_error. The public half
 * (gild_code_name, gild_error_clear) is declared in gild.h. */
#ifndef GILD_CLIENT_ERROR_H
#define GILD_CLIENT_ERROR_H

#include "gild.h"

/* Replaces err's contents (err may be NULL) with code and a printf-style
 * message; python_type and traceback become NULL. Returns code, so that a
 * failing function can `return error_set(err, GILD_..., "...")`. When the
 * message cannot be allocated the code is still set. */
int error_set(gild_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Moves src into *dst (dst's old contents are cleared; src is left empty).
 * Either may be NULL: a NULL dst just clears src. */
void error_move(gild_error *dst, gild_error *src);

#endif
