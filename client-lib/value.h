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

/* libgild's own kind beside gild.h's: a gild.v1.Value kept encoded, the
 * form the Python extension hands values over in (common/pyconv reads and
 * writes the wire format itself, so decoding them into a tree only to
 * encode it again would cost a copy and an allocation per item). The codec
 * writes its bytes as they are, at the top of an argument, keyword or
 * variable only; gild.h's accessors see a kind they do not know. */
#define VALUE_ENCODED ((gild_kind) 0x100)

/* A VALUE_ENCODED holding p/len, which it takes (malloc'd; freed with the
 * value) on success. NULL when out of memory, p untouched. */
gild_value *value_encoded(uint8_t *p, size_t len);

/* The bytes of a VALUE_ENCODED (borrowed), or NULL for another kind. */
const uint8_t *value_encoded_bytes(const gild_value *v, size_t *len);

/* For the Python extension, which converts values from the wire format
 * itself: from now on the results and stream chunks c returns are
 * VALUE_ENCODED, the Reply's bytes copied once and not decoded (an
 * actor's id is still read by libgild). Call before c's first call. */
void gild__keep_encoded(gild_client *c);

#endif
