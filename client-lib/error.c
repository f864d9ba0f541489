/* libgild: result code names and the gild_error struct. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#include "codes.h"

const char *
gild_code_name(int code)
{
	const char *name = codes_name(code);

	if (code == GILD_STREAM_END)
		return "STREAM_END"; /* libgild's own, not on the wire */
	return name != NULL ? name : "UNKNOWN";
}

void
gild_error_clear(gild_error *err)
{
	if (err == NULL)
		return;
	free(err->message);
	free(err->python_type);
	free(err->traceback);
	memset(err, 0, sizeof(*err));
}

int
error_set(gild_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	if (err == NULL)
		return code;
	gild_error_clear(err);
	err->code = code;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	va_end(ap);
	err->message = msg;
	return code;
}

void
error_move(gild_error *dst, gild_error *src)
{
	if (dst == NULL) {
		gild_error_clear(src);
		return;
	}
	gild_error_clear(dst);
	if (src != NULL) {
		*dst = *src;
		memset(src, 0, sizeof(*src));
	}
}
