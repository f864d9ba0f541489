/* trace: checking a W3C Trace Context (traceparent, tracestate). */
#include "trace.h"

#include <stdbool.h>
#include <string.h>

#include "fields.h"
#include "gild_limits.h"
#include "wire.h"

/* Whether the n bytes at s are lowercase hex digits, and not all '0'. */
static bool
hex_id(const char *s, size_t n, bool *zero)
{
	*zero = true;
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
		*zero = *zero && s[i] == '0';
	}
	return true;
}

const char *
trace_parent_error(const char *tp, size_t len)
{
	bool zero;

	if (len != GILD_TRACEPARENT_LEN)
		return "traceparent must be 55 characters: "
		       "00-<32 hex>-<16 hex>-<2 hex>";
	if (memcmp(tp, "00-", 3) != 0 || tp[35] != '-' || tp[52] != '-')
		return "traceparent must have the form "
		       "00-<32 hex>-<16 hex>-<2 hex> (version 00)";
	if (!hex_id(tp + 3, 32, &zero))
		return "traceparent's trace id is not 32 lowercase hex digits";
	if (zero)
		return "traceparent's trace id is all zeros";
	if (!hex_id(tp + 36, 16, &zero))
		return "traceparent's parent id is not 16 lowercase hex digits";
	if (zero)
		return "traceparent's parent id is all zeros";
	if (!hex_id(tp + 53, 2, &zero))
		return "traceparent's flags are not 2 lowercase hex digits";
	return NULL;
}

const char *
trace_state_error(const char *ts, size_t len)
{
	if (len > GILD_TRACESTATE_MAX)
		return "tracestate is longer than 512 bytes";
	for (size_t i = 0; i < len; i++)
		if ((ts[i] < 0x20 || ts[i] > 0x7e) && ts[i] != '\t')
			return "tracestate holds a byte that is not printable "
			       "ASCII";
	return NULL;
}

const char *
trace_read(const uint8_t *buf, size_t len, trace_fields *out)
{
	const uint8_t *p = buf, *end = buf + len;
	const char *why;
	wire_field f;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len > GILD_TRACE_CONTEXT_MAX)
		return "trace_context is too long";
	while ((rc = wire_next(&p, end, &f)) == 1) {
		if (f.number == GILD_F_TRACE_CONTEXT_TRACEPARENT &&
		    f.type == WIRE_LEN) {
			out->parent = (const char *) f.data;
			out->parent_len = f.len;
		} else if (f.number == GILD_F_TRACE_CONTEXT_TRACESTATE &&
			   f.type == WIRE_LEN) {
			out->state = (const char *) f.data;
			out->state_len = f.len;
		}
	}
	if (rc < 0)
		return "malformed trace_context: not a valid "
		       "gild.v1.TraceContext message";
	if (out->parent_len == 0)
		out->parent = NULL;
	if (out->state_len == 0)
		out->state = NULL;
	if (out->parent == NULL)
		return out->state != NULL ? "tracestate without a traceparent"
					  : NULL;
	if ((why = trace_parent_error(out->parent, out->parent_len)) != NULL)
		return why;
	return out->state != NULL ? trace_state_error(out->state,
					out->state_len)
				  : NULL;
}
