/* A minimal protobuf wire-format reader and writer. */
#include "wire.h"
#include "fields.h"

#include <stddef.h>
#include <string.h>

static int
get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	int shift = 0;

	while (*p < end && shift < 64) {
		uint8_t b = *(*p)++;
		v |= (uint64_t) (b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
		shift += 7;
	}
	return -1;
}

int
wire_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	return get_varint(p, end, out);
}

int
wire_next(const uint8_t **p, const uint8_t *end, wire_field *f)
{
	const uint8_t *q = *p;
	uint64_t tag, n;

	if (q >= end)
		return 0;
	f->start = q;
	if (get_varint(&q, end, &tag) != 0 || (tag >> 3) == 0 ||
	    (tag >> 3) > 0x1fffffff)
		return -1;
	f->number = (uint32_t) (tag >> 3);
	f->type = (enum wire_type) (tag & 7);
	f->value = 0;
	f->data = NULL;
	f->len = 0;
	switch (f->type) {
	case WIRE_VARINT:
		if (get_varint(&q, end, &f->value) != 0)
			return -1;
		break;
	case WIRE_I64:
	case WIRE_I32:
		n = f->type == WIRE_I64 ? 8 : 4;
		if ((uint64_t) (end - q) < n)
			return -1;
		f->data = q;
		f->len = (size_t) n;
		q += n;
		break;
	case WIRE_LEN:
		if (get_varint(&q, end, &n) != 0 || n > (uint64_t) (end - q))
			return -1;
		f->data = q;
		f->len = (size_t) n;
		q += n;
		break;
	default:
		return -1; /* groups (3, 4) are not used by gild; 6, 7 invalid */
	}
	f->total = (size_t) (q - f->start);
	*p = q;
	return 1;
}

int
wire_check(const uint8_t *buf, size_t len)
{
	const uint8_t *p = buf, *end = buf + len;
	wire_field f;
	int rc;

	while ((rc = wire_next(&p, end, &f)) == 1)
		;
	return rc;
}

int
wire_find(const uint8_t *buf, size_t len, uint32_t number, wire_field *f)
{
	const uint8_t *p = buf, *end = buf + len;
	wire_field cur;
	int rc, found = 0;

	while ((rc = wire_next(&p, end, &cur)) == 1) {
		if (cur.number == number) {
			*f = cur;
			found = 1;
		}
	}
	return rc < 0 ? -1 : found;
}

size_t
wire_put_varint(uint8_t *buf, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		buf[n++] = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	buf[n++] = (uint8_t) v;
	return n;
}

size_t
wire_put_tag(uint8_t *buf, uint32_t number, enum wire_type type)
{
	return wire_put_varint(buf, (uint64_t) number << 3 | type);
}

int
wire_value_kind_type(uint32_t number)
{
	switch (number) {
	case GILD_F_VALUE_BOOL:
	case GILD_F_VALUE_INT:
		return WIRE_VARINT;
	case GILD_F_VALUE_FLOAT:
		return WIRE_I64;
	case GILD_F_VALUE_NULL:
	case GILD_F_VALUE_BIG_INT:
	case GILD_F_VALUE_STR:
	case GILD_F_VALUE_BYTES:
	case GILD_F_VALUE_LIST:
	case GILD_F_VALUE_TUPLE:
	case GILD_F_VALUE_MAP:
	case GILD_F_VALUE_TENSOR:
	case GILD_F_VALUE_PICKLE:
		return WIRE_LEN;
	default:
		return -1;
	}
}

/* Appends dimension d to t. Returns 0, or -2 when t is full. */
static int
push_dim(wire_tensor *t, uint64_t d)
{
	if (t->ndim == GILD_TENSOR_DIMS_MAX)
		return -2;
	t->shape[t->ndim++] = d;
	return 0;
}

int
wire_tensor_scan(const uint8_t *t, size_t len, wire_tensor *out)
{
	const uint8_t *p = t, *end = t + len;
	wire_field f;
	int r;

	memset(out, 0, offsetof(wire_tensor, shape));
	out->ndim = 0;
	while ((r = wire_next(&p, end, &f)) == 1) {
		if (f.number == GILD_F_TENSOR_DTYPE && f.type == WIRE_LEN) {
			out->dtype = f.data;
			out->dtype_len = f.len;
		} else if (f.number == GILD_F_TENSOR_DATA &&
		    f.type == WIRE_LEN) {
			out->data = f.data;
			out->len = f.len;
		} else if (f.number == GILD_F_TENSOR_SHAPE &&
		    f.type == WIRE_VARINT) {
			if (push_dim(out, f.value) != 0)
				return -2;
		} else if (f.number == GILD_F_TENSOR_SHAPE &&
		    f.type == WIRE_LEN) {
			/* packed: varints back to back */
			const uint8_t *q = f.data, *qe = f.data + f.len;
			uint64_t d;

			while (q < qe) {
				if (wire_get_varint(&q, qe, &d) == -1)
					return -1;
				if (push_dim(out, d) != 0)
					return -2;
			}
		} else if (f.number == GILD_F_TENSOR_DTYPE ||
		    f.number == GILD_F_TENSOR_SHAPE ||
		    f.number == GILD_F_TENSOR_DATA) {
			return -1; /* a known field of the wrong wire type */
		}
	}
	return r == -1 ? -1 : 0;
}
