/* A minimal protobuf wire-format reader and writer. */
#include "wire.h"

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
