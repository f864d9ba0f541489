/* libgild: the gild_value tree (constructors, accessors, copy, equality)
 * and arbitrary-size integer conversions. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "value.h"

struct gild_value {
	gild_kind kind;
	union {
		bool b;
		int64_t i;
		double d;
		struct { /* STR (NUL-terminated too), BYTES, BIGINT */
			uint8_t *p;
			size_t len;
		} buf;
		struct { /* LIST, TUPLE */
			gild_value **items;
			size_t len, cap;
		} list;
		struct { /* MAP */
			gild_value **keys, **vals;
			size_t len, cap;
		} map;
		struct {
			char *dtype;
			uint64_t *shape;
			size_t ndim;
			uint8_t *data;
			size_t len;
		} tensor;
	} u;
};


static gild_value *
value_new(gild_kind kind)
{
	gild_value *v = calloc(1, sizeof(*v));

	if (v != NULL)
		v->kind = kind;
	return v;
}

/* A copy of p[0..len) with a NUL after it; never NULL on success, even for
 * len 0. */
static uint8_t *
dup_buf(const void *p, size_t len)
{
	uint8_t *q;

	if (len == SIZE_MAX || (q = malloc(len + 1)) == NULL)
		return NULL;
	if (len > 0)
		memcpy(q, p, len);
	q[len] = 0;
	return q;
}

bool
value_utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t need;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			need = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			need = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			need = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i - 1 < need)
			return false;
		for (size_t k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

size_t
value_dtype_itemsize(const char *dtype)
{
	const struct dtype_info *dt = dtype_by_name(dtype);

	return dt != NULL ? dt->itemsize : 0;
}

gild_value *
gild_null(void)
{
	return value_new(GILD_NULL);
}

gild_value *
gild_bool(bool b)
{
	gild_value *v = value_new(GILD_BOOL);

	if (v != NULL)
		v->u.b = b;
	return v;
}

gild_value *
gild_int(int64_t i)
{
	gild_value *v = value_new(GILD_INT);

	if (v != NULL)
		v->u.i = i;
	return v;
}

gild_value *
gild_bigint(const uint8_t *le, size_t n)
{
	gild_value *v;

	if (n > 0 && le == NULL)
		return NULL;
	/* Drop bytes that only repeat the sign of the byte below them. */
	while (n > 1 && ((le[n - 1] == 0x00 && !(le[n - 2] & 0x80)) ||
	    (le[n - 1] == 0xff && (le[n - 2] & 0x80))))
		n--;
	if (n <= 8) {
		uint64_t u = (n > 0 && (le[n - 1] & 0x80)) ? UINT64_MAX : 0;

		for (size_t k = 0; k < n; k++) {
			u &= ~((uint64_t) 0xff << (8 * k));
			u |= (uint64_t) le[k] << (8 * k);
		}
		return gild_int((int64_t) u);
	}
	if ((v = value_new(GILD_BIGINT)) == NULL)
		return NULL;
	if ((v->u.buf.p = dup_buf(le, n)) == NULL) {
		free(v);
		return NULL;
	}
	v->u.buf.len = n;
	return v;
}

gild_value *
value_uint64(uint64_t u)
{
	uint8_t le[9];

	for (int k = 0; k < 8; k++)
		le[k] = (uint8_t) (u >> (8 * k));
	le[8] = 0;
	return gild_bigint(le, sizeof(le));
}

/* Two's complement negation of le[0..n) in place. */
static void
negate(uint8_t *le, size_t n)
{
	unsigned carry = 1;

	for (size_t k = 0; k < n; k++) {
		unsigned t = (uint8_t) ~le[k] + carry;

		le[k] = (uint8_t) t;
		carry = t >> 8;
	}
}

gild_value *
gild_int_from_decimal(const char *s)
{
	const char *d;
	size_t ndig, nlimb = 0, nbytes;
	uint32_t *limb = NULL;
	uint8_t *le = NULL;
	gild_value *v = NULL;
	bool neg = false;

	if (s == NULL)
		return NULL;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	for (d = s; *d >= '0' && *d <= '9'; d++)
		;
	ndig = (size_t) (d - s);
	if (ndig == 0 || *d != '\0')
		return NULL;
	/* Nine digits are under 2^30, so ndig / 9 + 1 limbs of 32 bits hold
	 * the magnitude. */
	if ((limb = calloc(ndig / 9 + 1, sizeof(*limb))) == NULL)
		goto fail;
	for (size_t i = 0; i < ndig;) {
		size_t take = i == 0 && ndig % 9 ? ndig % 9 : 9;
		uint64_t mul = 1, carry = 0;

		for (size_t k = 0; k < take; k++) {
			mul *= 10;
			carry = carry * 10 + (uint64_t) (s[i + k] - '0');
		}
		i += take;
		for (size_t k = 0; k < nlimb; k++) {
			uint64_t t = (uint64_t) limb[k] * mul + carry;

			limb[k] = (uint32_t) t;
			carry = t >> 32;
		}
		if (carry)
			limb[nlimb++] = (uint32_t) carry;
	}
	nbytes = nlimb * 4 + 1; /* one more byte keeps the sign bit clear */
	if ((le = calloc(nbytes, 1)) == NULL)
		goto fail;
	for (size_t k = 0; k < nlimb * 4; k++)
		le[k] = (uint8_t) (limb[k / 4] >> (8 * (k % 4)));
	if (neg)
		negate(le, nbytes);
	v = gild_bigint(le, nbytes);
fail:
	free(limb);
	free(le);
	return v;
}

char *
gild_value_to_decimal(const gild_value *v)
{
	uint8_t *mag = NULL;
	uint32_t *limb = NULL;
	char *out = NULL;
	size_t n, nlimb, pos;
	bool neg;

	if (v == NULL)
		return NULL;
	if (v->kind == GILD_INT) {
		if (asprintf(&out, "%" PRId64, v->u.i) == -1)
			return NULL;
		return out;
	}
	if (v->kind != GILD_BIGINT)
		return NULL;
	n = v->u.buf.len;
	neg = v->u.buf.p[n - 1] & 0x80;
	if ((mag = dup_buf(v->u.buf.p, n)) == NULL)
		goto fail;
	if (neg)
		negate(mag, n); /* now the unsigned magnitude */
	nlimb = (n + 3) / 4;
	if ((limb = calloc(nlimb, sizeof(*limb))) == NULL)
		goto fail;
	for (size_t k = 0; k < n; k++)
		limb[k / 4] |= (uint32_t) mag[k] << (8 * (k % 4));
	/* 8 bits are under 2.5 decimal digits; chunks of 9 fill from the end. */
	pos = n * 8 / 3 + 12;
	if ((out = malloc(pos + 1)) == NULL)
		goto fail;
	out[pos] = '\0';
	while (nlimb > 0) {
		uint64_t rem = 0;

		for (size_t k = nlimb; k-- > 0;) {
			uint64_t t = rem << 32 | limb[k];

			limb[k] = (uint32_t) (t / 1000000000u);
			rem = t % 1000000000u;
		}
		while (nlimb > 0 && limb[nlimb - 1] == 0)
			nlimb--;
		for (int k = 0; k < 9 && (nlimb > 0 || rem > 0); k++) {
			out[--pos] = (char) ('0' + rem % 10);
			rem /= 10;
		}
	}
	if (neg)
		out[--pos] = '-';
	memmove(out, out + pos, strlen(out + pos) + 1);
fail:
	free(mag);
	free(limb);
	return out;
}

gild_value *
gild_float(double d)
{
	gild_value *v = value_new(GILD_FLOAT);

	if (v != NULL)
		v->u.d = d;
	return v;
}

static gild_value *
new_buf(gild_kind kind, const void *p, size_t len)
{
	gild_value *v;

	if (len > 0 && p == NULL)
		return NULL;
	if ((v = value_new(kind)) == NULL)
		return NULL;
	if ((v->u.buf.p = dup_buf(p, len)) == NULL) {
		free(v);
		return NULL;
	}
	v->u.buf.len = len;
	return v;
}

gild_value *
gild_str(const char *s, size_t len)
{
	if ((len > 0 && s == NULL) || !value_utf8_valid((const uint8_t *) s, len))
		return NULL;
	return new_buf(GILD_STR, s, len);
}

gild_value *
gild_cstr(const char *s)
{
	return s == NULL ? NULL : gild_str(s, strlen(s));
}

gild_value *
gild_bytes(const void *p, size_t len)
{
	return new_buf(GILD_BYTES, p, len);
}

gild_value *
gild_pickle(const void *p, size_t len)
{
	return new_buf(GILD_PICKLE, p, len);
}

gild_value *
gild_list(void)
{
	return value_new(GILD_LIST);
}

gild_value *
gild_tuple(void)
{
	return value_new(GILD_TUPLE);
}

gild_value *
gild_map(void)
{
	return value_new(GILD_MAP);
}

gild_value *
gild_tensor(const char *dtype, const uint64_t *shape, size_t ndim,
    const void *data, size_t len)
{
	size_t item = value_dtype_itemsize(dtype);
	uint64_t want = item;
	gild_value *v;

	if (item == 0 || (ndim > 0 && shape == NULL) ||
	    (len > 0 && data == NULL) || ndim > SIZE_MAX / sizeof(*shape))
		return NULL;
	for (size_t k = 0; k < ndim; k++) {
		if (shape[k] != 0 && want > UINT64_MAX / shape[k])
			return NULL;
		want *= shape[k];
	}
	if (want != len)
		return NULL;
	if ((v = value_new(GILD_TENSOR)) == NULL)
		return NULL;
	v->u.tensor.dtype = strdup(dtype);
	v->u.tensor.shape = malloc(ndim > 0 ? ndim * sizeof(*shape) : 1);
	v->u.tensor.data = dup_buf(data, len);
	if (v->u.tensor.dtype == NULL || v->u.tensor.shape == NULL ||
	    v->u.tensor.data == NULL) {
		gild_value_free(v);
		return NULL;
	}
	if (ndim > 0)
		memcpy(v->u.tensor.shape, shape, ndim * sizeof(*shape));
	v->u.tensor.ndim = ndim;
	v->u.tensor.len = len;
	return v;
}

/* Makes room for one more element in a list or map. */
static int
grow(gild_value *v)
{
	size_t len = v->kind == GILD_MAP ? v->u.map.len : v->u.list.len;
	size_t cap = v->kind == GILD_MAP ? v->u.map.cap : v->u.list.cap;
	size_t ncap;

	if (len < cap)
		return 0;
	ncap = cap ? cap * 2 : 4;
	if (ncap > SIZE_MAX / sizeof(gild_value *))
		return -1;
	if (v->kind == GILD_MAP) {
		gild_value **k = realloc(v->u.map.keys, ncap * sizeof(*k));

		if (k == NULL)
			return -1;
		v->u.map.keys = k;
		k = realloc(v->u.map.vals, ncap * sizeof(*k));
		if (k == NULL)
			return -1;
		v->u.map.vals = k;
		v->u.map.cap = ncap;
	} else {
		gild_value **k = realloc(v->u.list.items, ncap * sizeof(*k));

		if (k == NULL)
			return -1;
		v->u.list.items = k;
		v->u.list.cap = ncap;
	}
	return 0;
}

int
gild_list_append(gild_value *list, gild_value *item)
{
	if (list == NULL || item == NULL ||
	    (list->kind != GILD_LIST && list->kind != GILD_TUPLE))
		return GILD_INVALID_ARGUMENT;
	if (grow(list) != 0)
		return GILD_RESOURCE_EXHAUSTED;
	list->u.list.items[list->u.list.len++] = item;
	return GILD_OK;
}

int
gild_map_set(gild_value *map, gild_value *key, gild_value *val)
{
	if (map == NULL || key == NULL || val == NULL || map->kind != GILD_MAP)
		return GILD_INVALID_ARGUMENT;
	if (grow(map) != 0)
		return GILD_RESOURCE_EXHAUSTED;
	map->u.map.keys[map->u.map.len] = key;
	map->u.map.vals[map->u.map.len++] = val;
	return GILD_OK;
}

gild_value *
value_encoded(uint8_t *p, size_t len)
{
	gild_value *v = value_new(VALUE_ENCODED);

	if (v != NULL) {
		v->u.buf.p = p;
		v->u.buf.len = len;
	}
	return v;
}

const uint8_t *
value_encoded_bytes(const gild_value *v, size_t *len)
{
	if (v == NULL || v->kind != VALUE_ENCODED)
		return NULL;
	*len = v->u.buf.len;
	return v->u.buf.p != NULL ? v->u.buf.p : (const uint8_t *) "";
}

void
gild_value_free(gild_value *v)
{
	if (v == NULL)
		return;
	if (v->kind == VALUE_ENCODED)
		free(v->u.buf.p);
	switch (v->kind) {
	case GILD_STR:
	case GILD_BYTES:
	case GILD_BIGINT:
	case GILD_PICKLE:
		free(v->u.buf.p);
		break;
	case GILD_LIST:
	case GILD_TUPLE:
		for (size_t i = 0; i < v->u.list.len; i++)
			gild_value_free(v->u.list.items[i]);
		free(v->u.list.items);
		break;
	case GILD_MAP:
		for (size_t i = 0; i < v->u.map.len; i++) {
			gild_value_free(v->u.map.keys[i]);
			gild_value_free(v->u.map.vals[i]);
		}
		free(v->u.map.keys);
		free(v->u.map.vals);
		break;
	case GILD_TENSOR:
		free(v->u.tensor.dtype);
		free(v->u.tensor.shape);
		free(v->u.tensor.data);
		break;
	default:
		break;
	}
	free(v);
}

gild_value *
gild_value_copy(const gild_value *v)
{
	gild_value *c = NULL;

	if (v == NULL)
		return NULL;
	if (v->kind == VALUE_ENCODED) {
		uint8_t *p = dup_buf(v->u.buf.p, v->u.buf.len);

		if (p != NULL && (c = value_encoded(p, v->u.buf.len)) == NULL)
			free(p);
		return c;
	}
	switch (v->kind) {
	case GILD_NULL: return gild_null();
	case GILD_BOOL: return gild_bool(v->u.b);
	case GILD_INT: return gild_int(v->u.i);
	case GILD_FLOAT: return gild_float(v->u.d);
	case GILD_STR:
	case GILD_BYTES:
	case GILD_BIGINT:
	case GILD_PICKLE:
		return new_buf(v->kind, v->u.buf.p, v->u.buf.len);
	case GILD_TENSOR:
		return gild_tensor(v->u.tensor.dtype, v->u.tensor.shape,
		    v->u.tensor.ndim, v->u.tensor.data, v->u.tensor.len);
	case GILD_LIST:
	case GILD_TUPLE:
		if ((c = value_new(v->kind)) == NULL)
			return NULL;
		for (size_t i = 0; i < v->u.list.len; i++) {
			gild_value *item = gild_value_copy(v->u.list.items[i]);

			if (item == NULL || gild_list_append(c, item) != GILD_OK) {
				gild_value_free(item);
				goto fail;
			}
		}
		return c;
	case GILD_MAP:
		if ((c = value_new(v->kind)) == NULL)
			return NULL;
		for (size_t i = 0; i < v->u.map.len; i++) {
			gild_value *k = gild_value_copy(v->u.map.keys[i]);
			gild_value *x = gild_value_copy(v->u.map.vals[i]);

			if (k == NULL || x == NULL ||
			    gild_map_set(c, k, x) != GILD_OK) {
				gild_value_free(k);
				gild_value_free(x);
				goto fail;
			}
		}
		return c;
	}
fail:
	gild_value_free(c);
	return NULL;
}

bool
gild_value_equal(const gild_value *a, const gild_value *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	if (a->kind != b->kind)
		return false;
	if (a->kind == VALUE_ENCODED)
		return a->u.buf.len == b->u.buf.len &&
		    memcmp(a->u.buf.p, b->u.buf.p, a->u.buf.len) == 0;
	switch (a->kind) {
	case GILD_NULL: return true;
	case GILD_BOOL: return a->u.b == b->u.b;
	case GILD_INT: return a->u.i == b->u.i;
	case GILD_FLOAT: return memcmp(&a->u.d, &b->u.d, sizeof(double)) == 0;
	case GILD_STR:
	case GILD_BYTES:
	case GILD_BIGINT:
	case GILD_PICKLE:
		return a->u.buf.len == b->u.buf.len &&
		    memcmp(a->u.buf.p, b->u.buf.p, a->u.buf.len) == 0;
	case GILD_LIST:
	case GILD_TUPLE:
		if (a->u.list.len != b->u.list.len)
			return false;
		for (size_t i = 0; i < a->u.list.len; i++)
			if (!gild_value_equal(a->u.list.items[i], b->u.list.items[i]))
				return false;
		return true;
	case GILD_MAP:
		if (a->u.map.len != b->u.map.len)
			return false;
		for (size_t i = 0; i < a->u.map.len; i++)
			if (!gild_value_equal(a->u.map.keys[i], b->u.map.keys[i]) ||
			    !gild_value_equal(a->u.map.vals[i], b->u.map.vals[i]))
				return false;
		return true;
	case GILD_TENSOR:
		return strcmp(a->u.tensor.dtype, b->u.tensor.dtype) == 0 &&
		    a->u.tensor.ndim == b->u.tensor.ndim &&
		    (a->u.tensor.ndim == 0 ||
			memcmp(a->u.tensor.shape, b->u.tensor.shape,
			    a->u.tensor.ndim * sizeof(uint64_t)) == 0) &&
		    a->u.tensor.len == b->u.tensor.len &&
		    (a->u.tensor.len == 0 ||
			memcmp(a->u.tensor.data, b->u.tensor.data,
			    a->u.tensor.len) == 0);
	}
	return false;
}

gild_kind
gild_value_kind(const gild_value *v)
{
	return v == NULL ? GILD_NULL : v->kind;
}

bool
gild_value_bool(const gild_value *v)
{
	return v != NULL && v->kind == GILD_BOOL && v->u.b;
}

int64_t
gild_value_int(const gild_value *v)
{
	return v != NULL && v->kind == GILD_INT ? v->u.i : 0;
}

double
gild_value_float(const gild_value *v)
{
	return v != NULL && v->kind == GILD_FLOAT ? v->u.d : 0.0;
}

const char *
gild_value_str(const gild_value *v, size_t *len)
{
	bool ok = v != NULL && v->kind == GILD_STR;

	if (len != NULL)
		*len = ok ? v->u.buf.len : 0;
	return ok ? (const char *) v->u.buf.p : NULL;
}

const uint8_t *
gild_value_bytes(const gild_value *v, size_t *len)
{
	bool ok = v != NULL && (v->kind == GILD_BYTES ||
				   v->kind == GILD_BIGINT ||
				   v->kind == GILD_PICKLE);

	if (len != NULL)
		*len = ok ? v->u.buf.len : 0;
	return ok ? v->u.buf.p : NULL;
}

size_t
gild_value_len(const gild_value *v)
{
	if (v == NULL)
		return 0;
	if (v->kind == GILD_LIST || v->kind == GILD_TUPLE)
		return v->u.list.len;
	if (v->kind == GILD_MAP)
		return v->u.map.len;
	return 0;
}

const gild_value *
gild_value_item(const gild_value *v, size_t i)
{
	if (v == NULL || (v->kind != GILD_LIST && v->kind != GILD_TUPLE) ||
	    i >= v->u.list.len)
		return NULL;
	return v->u.list.items[i];
}

const gild_value *
gild_map_key(const gild_value *v, size_t i)
{
	if (v == NULL || v->kind != GILD_MAP || i >= v->u.map.len)
		return NULL;
	return v->u.map.keys[i];
}

const gild_value *
gild_map_val(const gild_value *v, size_t i)
{
	if (v == NULL || v->kind != GILD_MAP || i >= v->u.map.len)
		return NULL;
	return v->u.map.vals[i];
}

const gild_value *
gild_map_get(const gild_value *v, const char *key)
{
	size_t n;

	if (v == NULL || v->kind != GILD_MAP || key == NULL)
		return NULL;
	n = strlen(key);
	for (size_t i = 0; i < v->u.map.len; i++) {
		const gild_value *k = v->u.map.keys[i];

		if (k->kind == GILD_STR && k->u.buf.len == n &&
		    memcmp(k->u.buf.p, key, n) == 0)
			return v->u.map.vals[i];
	}
	return NULL;
}

const char *
gild_tensor_dtype(const gild_value *v)
{
	return v != NULL && v->kind == GILD_TENSOR ? v->u.tensor.dtype : NULL;
}

size_t
gild_tensor_ndim(const gild_value *v)
{
	return v != NULL && v->kind == GILD_TENSOR ? v->u.tensor.ndim : 0;
}

const uint64_t *
gild_tensor_shape(const gild_value *v)
{
	return v != NULL && v->kind == GILD_TENSOR ? v->u.tensor.shape : NULL;
}

const void *
gild_tensor_data(const gild_value *v, size_t *len)
{
	bool ok = v != NULL && v->kind == GILD_TENSOR;

	if (len != NULL)
		*len = ok ? v->u.tensor.len : 0;
	return ok ? v->u.tensor.data : NULL;
}
