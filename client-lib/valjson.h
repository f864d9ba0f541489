/* gildctl's JSON text <-> gild_value conversion. JSON lacks some of gild's
 * values, so these extended forms are read and written:
 *   {"$bytes": "<base64>"}
 *   {"$pickle": "<base64>"}         (a pickled Python object, passed as is)
 *   {"$tensor": {"dtype": "float32", "shape": [2, 3], "base64": "..."}}
 *   {"$map": [[key, value], ...]}   (a map whose keys are not all str)
 * and the bare words NaN, Infinity and -Infinity, as Python's json module
 * does. Parsing goes through jansson; nothing here prints. */
#ifndef GILD_VALJSON_H
#define GILD_VALJSON_H

#include <stddef.h>

#include "gild.h"

/* Parses one command-line value: a JSON literal ("1", "\"s\"", "[1, 2]",
 * "{\"a\": 1}", "null", "1.5"), a bare integer of any size, NaN, Infinity,
 * -Infinity or an extended form. Returns 0 and a new value in *out (owned by
 * the caller), or -1 with a one-line reason in errbuf (errlen bytes, always
 * NUL-terminated when errlen > 0). */
int valjson_parse(const char *text, gild_value **out, char *errbuf,
    size_t errlen);

/* The JSON text of v, malloc'd (owned by the caller), without a trailing
 * newline, or NULL when out of memory. indent 0 writes one line with
 * Python json.dumps' ", " and ": " separators; indent > 0 puts each item on
 * its own line, indented that many spaces per level (json.dumps(indent=N)).
 * ints of any size are bare digits, floats the shortest text that reads
 * back to the same double (Python's repr), tuples arrays, and maps with
 * only str keys objects. */
char *valjson_dump(const gild_value *v, int indent);

/* Base64 (RFC 4648, padded) of p[0..len): a malloc'd string, or NULL when
 * out of memory. */
char *valjson_base64_encode(const void *p, size_t len);

/* Decodes base64 text (padding optional) into a new malloc'd buffer (*out,
 * *len bytes, owned by the caller). Returns 0, or -1 for text that is not
 * base64 or when out of memory. */
int valjson_base64_decode(const char *s, size_t slen, uint8_t **out,
    size_t *len);

#endif
