/* libgild: result code names and the gild_error struct. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

const char *
gild_code_name(int code)
{
	switch (code) {
	case GILD_OK: return "OK";
	case GILD_CANCELLED: return "CANCELLED";
	case GILD_UNKNOWN: return "UNKNOWN";
	case GILD_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
	case GILD_DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
	case GILD_NOT_FOUND: return "NOT_FOUND";
	case GILD_ALREADY_EXISTS: return "ALREADY_EXISTS";
	case GILD_PERMISSION_DENIED: return "PERMISSION_DENIED";
	case GILD_RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
	case GILD_FAILED_PRECONDITION: return "FAILED_PRECONDITION";
	case GILD_UNIMPLEMENTED: return "UNIMPLEMENTED";
	case GILD_INTERNAL: return "INTERNAL";
	case GILD_UNAVAILABLE: return "UNAVAILABLE";
	case GILD_UNAUTHENTICATED: return "UNAUTHENTICATED";
	case GILD_WORKER_LOST: return "WORKER_LOST";
	case GILD_STREAM_END: return "STREAM_END";
	case GILD_PYTHON_ERROR: return "PYTHON_ERROR";
	default: return "UNKNOWN";
	}
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
