/* A minimal protobuf wire-format reader and writer, so the front end can
 * route a call and wrap a worker's result without decoding (and copying) the
 * values inside, and the worker can decode a call's values straight into
 * Python objects, bounded as it goes (worker/decode.c, worker/convert.c). */
#ifndef GILD_WIRE_H
#define GILD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "gild_limits.h"

enum wire_type { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

/* One top-level field as found by wire_next. For WIRE_VARINT, value holds
 * the number; for the others data/len is the payload (borrowed from the
 * scanned buffer). start/total cover the whole field, tag included. */
typedef struct wire_field {
	uint32_t number;
	enum wire_type type;
	uint64_t value;
	const uint8_t *data;
	size_t len;
	const uint8_t *start;
	size_t total;
} wire_field;

/* Reads the field at *p (not past end) into *f and advances *p. Returns 1 for
 * a field, 0 at the end of the buffer, -1 when the bytes are not valid wire
 * format (bad varint, unknown wire type, field 0, length past end). */
int wire_next(const uint8_t **p, const uint8_t *end, wire_field *f);

/* Checks that buf is a sequence of well-formed fields, the way wire_next
 * reads them. Returns 0 or -1. Nested messages are not descended into. */
int wire_check(const uint8_t *buf, size_t len);

/* Finds the last occurrence of field `number` (protobuf's last-one-wins rule
 * for singular fields). Returns 1 and fills *f, 0 if absent, -1 if malformed. */
int wire_find(const uint8_t *buf, size_t len, uint32_t number, wire_field *f);

/* Reads one varint at *p (not past end) and advances *p: for packed
 * repeated fields. Returns 0, or -1 when it is cut short or too long. */
int wire_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out);

/* gild.v1.Value read by hand (the worker's and the Python client's
 * converter, common/pyconv.c, and libgild's codec). */

/* The wire type Value's kind field `number` must have, or -1 when number is
 * not a kind field (an unknown field, to be skipped). */
int wire_value_kind_type(uint32_t number);

/* A gild.v1.Tensor's fields, borrowed from the scanned bytes: dtype is not
 * NUL-terminated (dtype_len 0: unset). */
typedef struct wire_tensor {
	const uint8_t *dtype;
	size_t dtype_len;
	const uint8_t *data;
	size_t len;
	uint64_t shape[GILD_TENSOR_DIMS_MAX];
	size_t ndim;
} wire_tensor;

/* Reads the Tensor message t/len into *out (last one wins for dtype and
 * data; shape packed or not). Returns 0, -1 when the bytes are malformed
 * (broken wire format, a known field of the wrong type, a cut varint), or
 * -2 when the shape has more than GILD_TENSOR_DIMS_MAX dimensions. */
int wire_tensor_scan(const uint8_t *t, size_t len, wire_tensor *out);

/* Encoders: write into buf (room for WIRE_MAX_VARINT bytes per varint) and
 * return the number of bytes written. */
#define WIRE_MAX_VARINT 10
size_t wire_put_varint(uint8_t *buf, uint64_t v);
size_t wire_put_tag(uint8_t *buf, uint32_t number, enum wire_type type);

#endif
