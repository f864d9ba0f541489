/* trace: the W3C Trace Context a request carries (gild.v1.TraceContext),
 * checked the same way by the front end and by libgild before it sends
 * one. Pure functions over borrowed bytes. */
#ifndef GILD_TRACE_H
#define GILD_TRACE_H

#include <stddef.h>
#include <stdint.h>

/* Whether traceparent (len bytes) is one as W3C Trace Context version 00
 * writes it: "00-" 32 lowercase hex digits (the trace id, not all zero)
 * "-" 16 (the parent id, not all zero) "-" 2 (the flags). Returns NULL if
 * so, else why not (a static string). */
const char *trace_parent_error(const char *traceparent, size_t len);

/* Whether tracestate (len bytes) may go with a traceparent: at most
 * GILD_TRACESTATE_MAX bytes of printable ASCII, spaces and tabs. Returns
 * NULL if so, else why not (a static string). */
const char *trace_state_error(const char *tracestate, size_t len);

/* A TraceContext message (len bytes) read: its traceparent and tracestate
 * (borrowed, not NUL-ended; NULL when absent or empty). */
typedef struct trace_fields {
	const char *parent;
	size_t parent_len;
	const char *state;
	size_t state_len;
} trace_fields;

/* Reads and checks the TraceContext message in buf (len bytes) into *out.
 * Returns NULL when it is well formed and holds a valid traceparent (or
 * nothing at all), else why not (a static string). */
const char *trace_read(const uint8_t *buf, size_t len, trace_fields *out);

#endif
