/* libgild internal: helpers of the gild_value module shared with the codec
 * and gildctl. The value API itself is in gild.h. */
#ifndef GILD_CLIENT_VALUE_H
#define GILD_CLIENT_VALUE_H

#include "gild.h"

/* The codec encodes and decodes lists, tuples and maps nested at most
 * GILD_VALUE_DEPTH_MAX deep (proto/gild_limits.h); deeper values are
 * INVALID_ARGUMENT rather than a stack overflow. */
#include "gild_limits.h"

/* True when s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF). */
bool value_utf8_valid(const uint8_t *s, size_t n);

/* Bytes per element of a gild.proto dtype name, or 0 for an unknown name. */
size_t value_dtype_itemsize(const char *dtype);

/* A new GILD_INT or GILD_BIGINT holding u (which may not fit in int64).
 * NULL when out of memory. */
gild_value *value_uint64(uint64_t u);

#endif
