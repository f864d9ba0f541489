/* libgild: gild_value <-> gild.v1 wire format, Request bodies and Reply
 * scanning (see codec.h for why values bypass protobuf-c's structs). */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "error.h"
#include "fields.h"
#include "gild_limits.h"
#include "trace.h"
#include "value.h"
#include "wire.h"

#define OOM (-1)

void
codec_buf_fini(codec_buf *b)
{
	if (b == NULL)
		return;
	free(b->base);
	memset(b, 0, sizeof(*b));
}

static size_t
used(const codec_buf *b)
{
	return b->cap - b->pos;
}

/* Makes room for n more bytes in front of the data. 0 or OOM. */
static int
reserve(codec_buf *b, size_t n)
{
	size_t have = used(b), ncap = b->cap ? b->cap : 256;
	uint8_t *nb;

	if (b->pos >= n)
		return 0;
	while (ncap - have < n) {
		if (ncap > SIZE_MAX / 2)
			return OOM;
		ncap *= 2;
	}
	if ((nb = malloc(ncap)) == NULL)
		return OOM;
	if (have > 0)
		memcpy(nb + ncap - have, b->base + b->pos, have);
	free(b->base);
	b->base = nb;
	b->cap = ncap;
	b->pos = ncap - have;
	return 0;
}

static int
put(codec_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (reserve(b, n) != 0)
		return OOM;
	b->pos -= n;
	memcpy(b->base + b->pos, p, n);
	return 0;
}

static int
put_varint(codec_buf *b, uint64_t v)
{
	uint8_t tmp[WIRE_MAX_VARINT];

	return put(b, tmp, wire_put_varint(tmp, v));
}

static int
put_tag(codec_buf *b, uint32_t number, enum wire_type type)
{
	return put_varint(b, (uint64_t) number << 3 | type);
}

/* Turns everything written since `mark` (a used() reading) into a
 * length-delimited field `number`. */
static int
wrap(codec_buf *b, size_t mark, uint32_t number)
{
	if (put_varint(b, used(b) - mark) != 0)
		return OOM;
	return put_tag(b, number, WIRE_LEN);
}

static int
put_bytes_field(codec_buf *b, uint32_t number, const void *p, size_t n)
{
	size_t mark = used(b);

	if (put(b, p, n) != 0)
		return OOM;
	return wrap(b, mark, number);
}

static int encode(codec_buf *b, const gild_value *v, int depth,
    gild_error *err);

/* Prepends `number` as a Value submessage holding v. */
static int
encode_field(codec_buf *b, uint32_t number, const gild_value *v, int depth,
    gild_error *err)
{
	size_t mark = used(b);
	int rc;

	if ((rc = encode(b, v, depth, err)) != GILD_OK)
		return rc;
	if (wrap(b, mark, number) != 0)
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	return GILD_OK;
}

static int
encode(codec_buf *b, const gild_value *v, int depth, gild_error *err)
{
	size_t mark = used(b), n;
	const uint8_t *p;
	int rc = 0;

	if (v == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL value");
	if ((p = value_encoded_bytes(v, &n)) != NULL) {
		/* Bounded by its maker from its own top: only one. */
		if (depth != 0)
			return error_set(err, GILD_INVALID_ARGUMENT,
			    "an encoded value inside another value");
		return put(b, p, n) == 0 ? GILD_OK
		    : error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	}
	if ((gild_value_kind(v) == GILD_LIST ||
		gild_value_kind(v) == GILD_TUPLE ||
		gild_value_kind(v) == GILD_MAP) &&
	    depth >= GILD_VALUE_DEPTH_MAX)
		return error_set(err, GILD_INVALID_ARGUMENT,
		    GILD_VALUE_TOO_DEEP, GILD_VALUE_DEPTH_MAX);
	switch (gild_value_kind(v)) {
	case GILD_NULL:
		rc = wrap(b, mark, GILD_F_VALUE_NULL);
		break;
	case GILD_BOOL:
		if ((rc = put_varint(b, gild_value_bool(v))) == 0)
			rc = put_tag(b, GILD_F_VALUE_BOOL, WIRE_VARINT);
		break;
	case GILD_INT: {
		int64_t i = gild_value_int(v);
		uint64_t zz = ((uint64_t) i << 1) ^ (i < 0 ? UINT64_MAX : 0);

		if ((rc = put_varint(b, zz)) == 0)
			rc = put_tag(b, GILD_F_VALUE_INT, WIRE_VARINT);
		break;
	}
	case GILD_BIGINT:
		p = gild_value_bytes(v, &n);
		if ((rc = put_bytes_field(b, GILD_F_BIG_INT_LE_TWOS_COMPLEMENT,
			 p, n)) == 0)
			rc = wrap(b, mark, GILD_F_VALUE_BIG_INT);
		break;
	case GILD_FLOAT: {
		double d = gild_value_float(v);
		uint64_t u;
		uint8_t le[8];

		memcpy(&u, &d, sizeof(u));
		for (int k = 0; k < 8; k++)
			le[k] = (uint8_t) (u >> (8 * k));
		if ((rc = put(b, le, 8)) == 0)
			rc = put_tag(b, GILD_F_VALUE_FLOAT, WIRE_I64);
		break;
	}
	case GILD_STR:
		p = (const uint8_t *) gild_value_str(v, &n);
		rc = put_bytes_field(b, GILD_F_VALUE_STR, p, n);
		break;
	case GILD_BYTES:
		p = gild_value_bytes(v, &n);
		rc = put_bytes_field(b, GILD_F_VALUE_BYTES, p, n);
		break;
	case GILD_PICKLE:
		p = gild_value_bytes(v, &n);
		rc = put_bytes_field(b, GILD_F_VALUE_PICKLE, p, n);
		break;
	case GILD_LIST:
	case GILD_TUPLE:
		for (size_t i = gild_value_len(v); i-- > 0;) {
			rc = encode_field(b, GILD_F_LIST_ITEMS,
			    gild_value_item(v, i), depth + 1, err);
			if (rc != GILD_OK)
				return rc;
		}
		rc = wrap(b, mark,
		    gild_value_kind(v) == GILD_LIST ? GILD_F_VALUE_LIST
						    : GILD_F_VALUE_TUPLE);
		break;
	case GILD_MAP:
		for (size_t i = gild_value_len(v); i-- > 0;) {
			size_t entry = used(b);

			rc = encode_field(b, GILD_F_MAP_ENTRY_VALUE,
			    gild_map_val(v, i), depth + 1, err);
			if (rc == GILD_OK)
				rc = encode_field(b, GILD_F_MAP_ENTRY_KEY,
				    gild_map_key(v, i), depth + 1, err);
			if (rc != GILD_OK)
				return rc;
			if ((rc = wrap(b, entry, GILD_F_MAP_ENTRIES)) != 0)
				break;
		}
		if (rc == 0)
			rc = wrap(b, mark, GILD_F_VALUE_MAP);
		break;
	case GILD_TENSOR: {
		const uint64_t *shape = gild_tensor_shape(v);
		const char *dtype = gild_tensor_dtype(v);
		size_t ndim = gild_tensor_ndim(v), sm;

		p = gild_tensor_data(v, &n);
		if (n > 0 &&
		    (rc = put_bytes_field(b, GILD_F_TENSOR_DATA, p, n)) != 0)
			break;
		if (ndim > 0) {
			sm = used(b);
			for (size_t k = ndim; k-- > 0 && rc == 0;)
				rc = put_varint(b, shape[k]);
			if (rc != 0 ||
			    (rc = wrap(b, sm, GILD_F_TENSOR_SHAPE)) != 0)
				break;
		}
		if ((rc = put_bytes_field(b, GILD_F_TENSOR_DTYPE, dtype,
			 strlen(dtype))) == 0)
			rc = wrap(b, mark, GILD_F_VALUE_TENSOR);
		break;
	}
	}
	if (rc != 0)
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	return GILD_OK;
}

int
codec_encode_value(codec_buf *b, const gild_value *v, gild_error *err)
{
	return encode(b, v, 0, err);
}

/* ---- decoding ---------------------------------------------------------- */

static int
malformed(gild_error *err, const char *what)
{
	return error_set(err, GILD_INVALID_ARGUMENT, "malformed %s", what);
}

static int
oom(gild_error *err)
{
	return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
}

static int decode(const uint8_t *buf, size_t len, int depth,
    gild_value **out, gild_error *err);

static int
decode_list(const wire_field *lf, gild_kind kind, int depth,
    gild_value **out, gild_error *err)
{
	const uint8_t *p = lf->data, *end = lf->data + lf->len;
	gild_value *list = kind == GILD_LIST ? gild_list() : gild_tuple();
	gild_value *item = NULL;
	wire_field f;
	int rc;

	if (list == NULL)
		return oom(err);
	while ((rc = wire_next(&p, end, &f)) == 1) {
		if (f.number != GILD_F_LIST_ITEMS)
			continue;
		if (f.type != WIRE_LEN) {
			rc = malformed(err, "list");
			goto fail;
		}
		if ((rc = decode(f.data, f.len, depth + 1, &item, err)) != 0)
			goto fail;
		if (gild_list_append(list, item) != GILD_OK) {
			rc = oom(err);
			goto fail;
		}
		item = NULL;
	}
	if (rc < 0) {
		rc = malformed(err, "list");
		goto fail;
	}
	*out = list;
	return GILD_OK;
fail:
	gild_value_free(item);
	gild_value_free(list);
	return rc;
}

static int
decode_entry(const wire_field *ef, int depth, gild_value **key,
    gild_value **val, gild_error *err)
{
	wire_field k, v;
	int rk = wire_find(ef->data, ef->len, GILD_F_MAP_ENTRY_KEY, &k);
	int rv = wire_find(ef->data, ef->len, GILD_F_MAP_ENTRY_VALUE, &v);
	int rc;

	if (rk < 0 || rv < 0 || (rk && k.type != WIRE_LEN) ||
	    (rv && v.type != WIRE_LEN))
		return malformed(err, "map entry");
	if (!rk || !rv)
		return error_set(err, GILD_INVALID_ARGUMENT,
		    "map entry without a %s", rk ? "value" : "key");
	if ((rc = decode(k.data, k.len, depth + 1, key, err)) != GILD_OK)
		return rc;
	if ((rc = decode(v.data, v.len, depth + 1, val, err)) != GILD_OK) {
		gild_value_free(*key);
		*key = NULL;
	}
	return rc;
}

static int
decode_map(const wire_field *mf, int depth, gild_value **out,
    gild_error *err)
{
	const uint8_t *p = mf->data, *end = mf->data + mf->len;
	gild_value *map = gild_map(), *key = NULL, *val = NULL;
	wire_field f;
	int rc;

	if (map == NULL)
		return oom(err);
	while ((rc = wire_next(&p, end, &f)) == 1) {
		if (f.number != GILD_F_MAP_ENTRIES)
			continue;
		if (f.type != WIRE_LEN) {
			rc = malformed(err, "map");
			goto fail;
		}
		if ((rc = decode_entry(&f, depth, &key, &val, err)) != 0)
			goto fail;
		if (gild_map_set(map, key, val) != GILD_OK) {
			rc = oom(err);
			goto fail;
		}
		key = val = NULL;
	}
	if (rc < 0) {
		rc = malformed(err, "map");
		goto fail;
	}
	*out = map;
	return GILD_OK;
fail:
	gild_value_free(key);
	gild_value_free(val);
	gild_value_free(map);
	return rc;
}

/* A Tensor message as a GILD_TENSOR: its fields read by wire_tensor_scan,
 * its data length checked against dtype and shape by gild_tensor. */
static int
decode_tensor(const wire_field *tf, gild_value **out, gild_error *err)
{
	wire_tensor t;
	char dtype[16] = "";
	uint64_t want;
	size_t item;
	int rc = wire_tensor_scan(tf->data, tf->len, &t);

	if (rc == -2)
		return error_set(err, GILD_INVALID_ARGUMENT,
		    "tensor has more than %d dimensions", GILD_TENSOR_DIMS_MAX);
	if (rc < 0)
		return malformed(err, "tensor");
	if (t.dtype_len >= sizeof(dtype) ||
	    (t.dtype_len > 0 && memchr(t.dtype, 0, t.dtype_len)))
		dtype[0] = '?'; /* longer than any, or a NUL: unknown below */
	else if (t.dtype_len > 0)
		memcpy(dtype, t.dtype, t.dtype_len);
	if ((item = value_dtype_itemsize(dtype)) == 0)
		return error_set(err, GILD_INVALID_ARGUMENT,
		    "tensor dtype '%s' is not one of gild's", dtype);
	want = item;
	for (size_t k = 0; k < t.ndim && want != 0; k++)
		want = t.shape[k] && want > UINT64_MAX / t.shape[k]
		    ? 0
		    : want * t.shape[k];
	if ((*out = gild_tensor(dtype, t.shape, t.ndim, t.data, t.len)) ==
	    NULL) {
		if (want != t.len)
			return error_set(err, GILD_INVALID_ARGUMENT,
			    "%s tensor of %zu dimensions has %zu bytes of data, "
			    "not itemsize x shape", dtype, t.ndim, t.len);
		return oom(err);
	}
	return GILD_OK;
}

static int
decode(const uint8_t *buf, size_t len, int depth, gild_value **out,
    gild_error *err)
{
	const uint8_t *p = buf, *end = buf + len;
	wire_field f, k = {0};
	gild_value *v = NULL;
	int rc;

	*out = NULL;
	while ((rc = wire_next(&p, end, &f)) == 1)
		if (wire_value_kind_type(f.number) != -1)
			k = f;
	if (rc < 0)
		return malformed(err, "value");
	if (k.number == 0)
		return error_set(err, GILD_INVALID_ARGUMENT, "value has no kind set");
	if ((int) k.type != wire_value_kind_type(k.number))
		return malformed(err, "value");
	if ((k.number == GILD_F_VALUE_LIST || k.number == GILD_F_VALUE_TUPLE ||
		k.number == GILD_F_VALUE_MAP) &&
	    depth >= GILD_VALUE_DEPTH_MAX)
		return error_set(err, GILD_INVALID_ARGUMENT,
		    GILD_VALUE_TOO_DEEP, GILD_VALUE_DEPTH_MAX);
	switch (k.number) {
	case GILD_F_VALUE_NULL:
		v = gild_null();
		break;
	case GILD_F_VALUE_BOOL:
		v = gild_bool(k.value != 0);
		break;
	case GILD_F_VALUE_INT:
		v = gild_int((int64_t) (k.value >> 1) ^ -(int64_t) (k.value & 1));
		break;
	case GILD_F_VALUE_BIG_INT: {
		wire_field d;
		int r = wire_find(k.data, k.len,
		    GILD_F_BIG_INT_LE_TWOS_COMPLEMENT, &d);

		if (r < 0 || (r == 1 && d.type != WIRE_LEN))
			return malformed(err, "big integer");
		v = r ? gild_bigint(d.data, d.len) : gild_int(0);
		break;
	}
	case GILD_F_VALUE_FLOAT: {
		uint64_t u = 0;
		double d;

		for (int i = 0; i < 8; i++)
			u |= (uint64_t) k.data[i] << (8 * i);
		memcpy(&d, &u, sizeof(d));
		v = gild_float(d);
		break;
	}
	case GILD_F_VALUE_STR:
		if (!value_utf8_valid(k.data, k.len))
			return error_set(err, GILD_INVALID_ARGUMENT,
			    "str value is not valid UTF-8");
		v = gild_str((const char *) k.data, k.len);
		break;
	case GILD_F_VALUE_BYTES:
		v = gild_bytes(k.data, k.len);
		break;
	case GILD_F_VALUE_PICKLE:
		v = gild_pickle(k.data, k.len);
		break;
	case GILD_F_VALUE_LIST:
	case GILD_F_VALUE_TUPLE:
		return decode_list(&k,
		    k.number == GILD_F_VALUE_LIST ? GILD_LIST : GILD_TUPLE,
		    depth, out, err);
	case GILD_F_VALUE_MAP:
		return decode_map(&k, depth, out, err);
	case GILD_F_VALUE_TENSOR:
		return decode_tensor(&k, out, err);
	}
	if (v == NULL)
		return oom(err);
	*out = v;
	return GILD_OK;
}

int
codec_decode_value(const uint8_t *buf, size_t len, gild_value **out,
    gild_error *err)
{
	return decode(buf, len, 0, out, err);
}

int
codec_value_plain(gild_value **v, gild_error *err)
{
	const uint8_t *p;
	gild_value *plain;
	size_t n;
	int rc;

	if ((p = value_encoded_bytes(*v, &n)) == NULL)
		return GILD_OK;
	if ((rc = decode(p, n, 0, &plain, err)) != GILD_OK)
		return rc;
	gild_value_free(*v);
	*v = plain;
	return GILD_OK;
}

/* ---- requests and replies ---------------------------------------------- */

int
codec_encode_call_opts(codec_buf *b, const char *function,
    const gild_value *args, const gild_value *kwargs, const codec_call_opts *x,
    gild_error *err)
{
	/* ActorNew's class_name, args and kwargs, or Call's function, args
	 * and kwargs. */
	uint32_t f_name = x->actor_new ? GILD_F_ACTOR_NEW_CLASS_NAME
				       : GILD_F_CALL_FUNCTION;
	uint32_t f_args = x->actor_new ? GILD_F_ACTOR_NEW_ARGS
				       : GILD_F_CALL_ARGS;
	uint32_t f_kwargs = x->actor_new ? GILD_F_ACTOR_NEW_KWARGS
					 : GILD_F_CALL_KWARGS;
	size_t mark = used(b);
	int rc;

	if (function == NULL ||
	    !value_utf8_valid((const uint8_t *) function, strlen(function)))
		return error_set(err, GILD_INVALID_ARGUMENT,
		    "function name must be UTF-8 text");
	if (args != NULL && gild_value_kind(args) != GILD_LIST &&
	    gild_value_kind(args) != GILD_TUPLE)
		return error_set(err, GILD_INVALID_ARGUMENT,
		    "positional arguments must be a list or tuple");
	if (kwargs != NULL && gild_value_kind(kwargs) != GILD_MAP)
		return error_set(err, GILD_INVALID_ARGUMENT,
		    "keyword arguments must be a map");
	/* Fields go in back to front: for a Call actor_id, window, stream,
	 * timeout_ms; for an ActorNew detached, name; then kwargs, args, the
	 * name. */
	if (x->actor_new) {
		if (x->detached && (put_varint(b, 1) != 0 ||
		    put_tag(b, GILD_F_ACTOR_NEW_DETACHED, WIRE_VARINT) != 0))
			return oom(err);
		if (x->name != NULL && *x->name != '\0' &&
		    put_bytes_field(b, GILD_F_ACTOR_NEW_NAME, x->name,
			strlen(x->name)) != 0)
			return oom(err);
	} else {
		if (x->actor_id != 0 && (put_varint(b, x->actor_id) != 0 ||
		    put_tag(b, GILD_F_CALL_ACTOR_ID, WIRE_VARINT) != 0))
			return oom(err);
		if (x->window != 0 && (put_varint(b, x->window) != 0 ||
		    put_tag(b, GILD_F_CALL_WINDOW, WIRE_VARINT) != 0))
			return oom(err);
		if (x->stream && (put_varint(b, 1) != 0 ||
		    put_tag(b, GILD_F_CALL_STREAM, WIRE_VARINT) != 0))
			return oom(err);
		if (x->timeout_ms != 0 && (put_varint(b, x->timeout_ms) != 0 ||
		    put_tag(b, GILD_F_CALL_TIMEOUT_MS, WIRE_VARINT) != 0))
			return oom(err);
	}
	for (size_t i = gild_value_len(kwargs); i-- > 0;) {
		const gild_value *key = gild_map_key(kwargs, i);
		size_t kw = used(b), n;
		const char *name = gild_value_str(key, &n);

		if (name == NULL)
			return error_set(err, GILD_INVALID_ARGUMENT,
			    "keyword argument names must be str");
		if ((rc = encode_field(b, GILD_F_KWARG_VALUE,
			 gild_map_val(kwargs, i), 0, err)))
			return rc;
		if (put_bytes_field(b, GILD_F_KWARG_NAME, name, n) != 0 ||
		    wrap(b, kw, f_kwargs) != 0)
			return oom(err);
	}
	for (size_t i = gild_value_len(args); i-- > 0;)
		if ((rc = encode_field(b, f_args, gild_value_item(args, i), 0,
			 err)))
			return rc;
	if (put_bytes_field(b, f_name, function, strlen(function)) != 0 ||
	    wrap(b, mark, x->actor_new ? GILD_F_REQUEST_ACTOR_NEW
				       : GILD_F_REQUEST_CALL) != 0)
		return oom(err);
	return GILD_OK;
}

int
codec_encode_call(codec_buf *b, const char *function, const gild_value *args,
    const gild_value *kwargs, uint32_t timeout_ms, gild_error *err)
{
	codec_call_opts o = {.timeout_ms = timeout_ms};

	return codec_encode_call_opts(b, function, args, kwargs, &o, err);
}

int
codec_encode_stream_call(codec_buf *b, const char *function,
    const gild_value *args, const gild_value *kwargs, uint32_t timeout_ms,
    uint32_t window, gild_error *err)
{
	codec_call_opts o = {.timeout_ms = timeout_ms, .stream = true,
	    .window = window};

	return codec_encode_call_opts(b, function, args, kwargs, &o, err);
}

int
codec_encode_exec(codec_buf *b, const char *source, size_t len,
    const gild_value *variables, const char *filename, uint32_t timeout_ms,
    gild_error *err)
{
	size_t mark = used(b), map;
	int rc = 0;

	if (source == NULL && len > 0)
		return error_set(err, GILD_INVALID_ARGUMENT, "no exec source");
	if (!value_utf8_valid((const uint8_t *) source, len))
		return error_set(err, GILD_INVALID_ARGUMENT,
		    "exec source must be UTF-8 text");
	if (variables != NULL && gild_value_kind(variables) != GILD_MAP)
		return error_set(err, GILD_INVALID_ARGUMENT,
		    "exec variables must be a map");
	if (filename != NULL &&
	    !value_utf8_valid((const uint8_t *) filename, strlen(filename)))
		return error_set(err, GILD_INVALID_ARGUMENT,
		    "exec file name must be UTF-8 text");
	/* Back to front: filename, timeout_ms, variables, source. */
	if (filename != NULL && *filename != '\0' &&
	    put_bytes_field(b, GILD_F_EXEC_FILENAME, filename,
		strlen(filename)) != 0)
		return oom(err);
	if (timeout_ms != 0 && (put_varint(b, timeout_ms) != 0 ||
	    put_tag(b, GILD_F_EXEC_TIMEOUT_MS, WIRE_VARINT) != 0))
		return oom(err);
	map = used(b);
	for (size_t i = gild_value_len(variables); i-- > 0;) {
		size_t entry = used(b);

		if (gild_value_kind(gild_map_key(variables, i)) != GILD_STR)
			return error_set(err, GILD_INVALID_ARGUMENT,
			    "exec variable names must be str");
		if ((rc = encode_field(b, GILD_F_MAP_ENTRY_VALUE,
			 gild_map_val(variables, i), 0, err)) != GILD_OK ||
		    (rc = encode_field(b, GILD_F_MAP_ENTRY_KEY,
			 gild_map_key(variables, i), 0, err)) != GILD_OK)
			return rc;
		if (wrap(b, entry, GILD_F_MAP_ENTRIES) != 0)
			return oom(err);
	}
	if ((used(b) > map && wrap(b, map, GILD_F_EXEC_VARIABLES) != 0) ||
	    put_bytes_field(b, GILD_F_EXEC_SOURCE,
		source != NULL ? source : "", len) != 0 ||
	    wrap(b, mark, GILD_F_REQUEST_EXEC) != 0)
		return oom(err);
	return GILD_OK;
}

int
codec_encode_stream_next(codec_buf *b, uint64_t call_id, uint32_t max,
    gild_error *err)
{
	size_t mark = used(b);

	if ((max != 0 && (put_varint(b, max) != 0 ||
	    put_tag(b, GILD_F_STREAM_NEXT_MAX, WIRE_VARINT) != 0)) ||
	    (call_id != 0 && (put_varint(b, call_id) != 0 ||
	    put_tag(b, GILD_F_STREAM_NEXT_CALL_ID, WIRE_VARINT) != 0)) ||
	    wrap(b, mark, GILD_F_REQUEST_STREAM_NEXT) != 0)
		return oom(err);
	return GILD_OK;
}

int
codec_encode_actor_get(codec_buf *b, const char *name, bool with_class,
    gild_error *err)
{
	size_t mark = used(b);

	if (name == NULL || *name == '\0')
		return error_set(err, GILD_INVALID_ARGUMENT, "no actor name");
	if ((with_class && (put_varint(b, 1) != 0 ||
	    put_tag(b, GILD_F_ACTOR_GET_WITH_CLASS, WIRE_VARINT) != 0)) ||
	    put_bytes_field(b, GILD_F_ACTOR_GET_NAME, name, strlen(name)) !=
		0 ||
	    wrap(b, mark, GILD_F_REQUEST_ACTOR_GET) != 0)
		return oom(err);
	return GILD_OK;
}

int
codec_encode_actor_destroy(codec_buf *b, uint64_t actor_id, gild_error *err)
{
	size_t mark = used(b);

	if ((actor_id != 0 && (put_varint(b, actor_id) != 0 ||
	    put_tag(b, GILD_F_ACTOR_DESTROY_ACTOR_ID, WIRE_VARINT) != 0)) ||
	    wrap(b, mark, GILD_F_REQUEST_ACTOR_DESTROY) != 0)
		return oom(err);
	return GILD_OK;
}

int
codec_encode_cancel(codec_buf *b, uint64_t target_id, gild_error *err)
{
	size_t mark = used(b);

	if ((target_id != 0 && (put_varint(b, target_id) != 0 ||
	    put_tag(b, GILD_F_CANCEL_TARGET_ID, WIRE_VARINT) != 0)) ||
	    wrap(b, mark, GILD_F_REQUEST_CANCEL) != 0)
		return oom(err);
	return GILD_OK;
}

int
codec_encode_status(codec_buf *b, gild_error *err)
{
	if (wrap(b, used(b), GILD_F_REQUEST_STATUS) != 0)
		return oom(err);
	return GILD_OK;
}

int
codec_encode_ping(codec_buf *b, const void *payload, size_t len,
    gild_error *err)
{
	size_t mark = used(b);

	if ((len > 0 &&
		put_bytes_field(b, GILD_F_PING_PAYLOAD, payload, len) != 0) ||
	    wrap(b, mark, GILD_F_REQUEST_PING) != 0)
		return oom(err);
	return GILD_OK;
}

int
codec_encode_id(codec_buf *b, uint64_t id, gild_error *err)
{
	if (id != 0 && (put_varint(b, id) != 0 ||
	    put_tag(b, GILD_F_REQUEST_ID, WIRE_VARINT)))
		return oom(err);
	return GILD_OK;
}

size_t
codec_mark(const codec_buf *b)
{
	return used(b);
}

int
codec_prepend(codec_buf *b, const void *p, size_t n, gild_error *err)
{
	return put(b, p, n) != 0 ? oom(err) : GILD_OK;
}

int
codec_wrap(codec_buf *b, size_t mark, uint32_t number, gild_error *err)
{
	return wrap(b, mark, number) != 0 ? oom(err) : GILD_OK;
}

int
codec_encode_token(codec_buf *b, const char *token, gild_error *err)
{
	if (token != NULL &&
	    put_bytes_field(b, GILD_F_REQUEST_TOKEN, token, strlen(token)) != 0)
		return oom(err);
	return GILD_OK;
}

int
codec_encode_trace(codec_buf *b, const char *traceparent,
    const char *tracestate, gild_error *err)
{
	size_t mark = used(b);
	const char *why;

	if (traceparent == NULL)
		return tracestate == NULL || *tracestate == '\0'
			   ? GILD_OK
			   : error_set(err, GILD_INVALID_ARGUMENT,
				 "tracestate without a traceparent");
	if ((why = trace_parent_error(traceparent, strlen(traceparent))) !=
		NULL ||
	    (tracestate != NULL &&
		(why = trace_state_error(tracestate, strlen(tracestate))) !=
		    NULL))
		return error_set(err, GILD_INVALID_ARGUMENT, "%s", why);
	if ((tracestate != NULL && *tracestate != '\0' &&
		put_bytes_field(b, GILD_F_TRACE_CONTEXT_TRACESTATE, tracestate,
		    strlen(tracestate)) != 0) ||
	    put_bytes_field(b, GILD_F_TRACE_CONTEXT_TRACEPARENT, traceparent,
		strlen(traceparent)) != 0 ||
	    wrap(b, mark, GILD_F_REQUEST_TRACE_CONTEXT) != 0)
		return oom(err);
	return GILD_OK;
}

/* Whether n is one of the Reply bodies codec_scan_reply reports: all but
 * batch, whose replies recv.c takes apart itself. */
static bool
is_reply_body(uint32_t n)
{
	switch (n) {
	case GILD_F_REPLY_RESULT:
	case GILD_F_REPLY_ERROR:
	case GILD_F_REPLY_STATUS:
	case GILD_F_REPLY_PONG:
	case GILD_F_REPLY_CHUNKS:
		return true;
	default:
		return false;
	}
}

int
codec_scan_reply(const uint8_t *buf, size_t len, codec_reply *r)
{
	const uint8_t *p = buf, *end = buf + len;
	wire_field f;
	int rc;

	memset(r, 0, sizeof(*r));
	while ((rc = wire_next(&p, end, &f)) == 1) {
		if (f.number == GILD_F_REPLY_ID) {
			if (f.type != WIRE_VARINT)
				return -1;
			r->id = f.value;
		} else if (is_reply_body(f.number)) {
			if (f.type != WIRE_LEN)
				return -1;
			r->body = (int) f.number;
			r->data = f.data;
			r->len = f.len;
		}
	}
	return rc < 0 ? -1 : 0;
}

static char *
dup_nonempty(const char *s)
{
	return s != NULL && *s != '\0' ? strdup(s) : NULL;
}

int
codec_decode_error(const uint8_t *buf, size_t len, gild_error *err)
{
	Gild__V1__Error *e = gild__v1__error__unpack(NULL, len, buf);

	if (e == NULL)
		return malformed(err, "error reply");
	if (err != NULL) {
		gild_error_clear(err);
		err->code = e->code != 0 ? (int) e->code : GILD_UNKNOWN;
		err->message = strdup(e->message != NULL ? e->message : "");
		err->python_type = dup_nonempty(e->python_type);
		err->traceback = dup_nonempty(e->traceback);
	}
	gild__v1__error__free_unpacked(e, NULL);
	return GILD_OK;
}

void
codec_chunks_fini(codec_chunks *ch)
{
	if (ch == NULL)
		return;
	for (size_t i = 0; i < ch->n_items; i++)
		gild_value_free(ch->items[i]);
	free(ch->items);
	gild_error_clear(&ch->error);
	memset(ch, 0, sizeof(*ch));
}

/* Appends v to ch->items. 0 or OOM (v is then still the caller's). */
static int
chunks_push(codec_chunks *ch, size_t *cap, gild_value *v)
{
	if (ch->n_items == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		gild_value **items = realloc(ch->items, ncap * sizeof(*items));

		if (items == NULL)
			return OOM;
		ch->items = items;
		*cap = ncap;
	}
	ch->items[ch->n_items++] = v;
	return 0;
}

int
codec_decode_chunks(const uint8_t *buf, size_t len, codec_chunks *out,
    gild_error *err)
{
	return codec_decode_chunks_as(buf, len, false, out, err);
}

/* A chunk's Value: decoded, or with encoded a VALUE_ENCODED copy. */
static int
chunk_value(const wire_field *f, bool encoded, gild_value **v,
    gild_error *err)
{
	uint8_t *p;

	if (!encoded)
		return decode(f->data, f->len, 0, v, err);
	if ((p = malloc(f->len ? f->len : 1)) == NULL)
		return oom(err);
	if (f->len > 0)
		memcpy(p, f->data, f->len);
	if ((*v = value_encoded(p, f->len)) == NULL) {
		free(p);
		return oom(err);
	}
	return GILD_OK;
}

int
codec_decode_chunks_as(const uint8_t *buf, size_t len, bool encoded,
    codec_chunks *out, gild_error *err)
{
	const uint8_t *p = buf, *end = buf + len;
	codec_chunks ch = {0};
	gild_value *v = NULL;
	size_t cap = 0;
	wire_field f;
	int rc;

	while ((rc = wire_next(&p, end, &f)) == 1) {
		if (f.number == GILD_F_CHUNKS_FIRST_SEQ &&
		    f.type == WIRE_VARINT) {
			ch.first_seq = f.value;
		} else if (f.number == GILD_F_CHUNKS_ITEMS && f.type == WIRE_LEN) {
			if ((rc = chunk_value(&f, encoded, &v, err)) != GILD_OK)
				goto fail;
			if (chunks_push(&ch, &cap, v) != 0) {
				gild_value_free(v);
				rc = oom(err);
				goto fail;
			}
		} else if (f.number == GILD_F_CHUNKS_END &&
		    f.type == WIRE_VARINT) {
			ch.end = f.value != 0;
		} else if (f.number == GILD_F_CHUNKS_ERROR &&
		    f.type == WIRE_LEN) {
			/* A repeated singular message field merges; the last
			 * one is all an Error needs. */
			if (codec_decode_error(f.data, f.len, &ch.error) !=
			    GILD_OK) {
				rc = malformed(err, "stream error");
				goto fail;
			}
		} else if (f.number == GILD_F_CHUNKS_FIRST_SEQ ||
		    f.number == GILD_F_CHUNKS_ITEMS ||
		    f.number == GILD_F_CHUNKS_END ||
		    f.number == GILD_F_CHUNKS_ERROR) {
			rc = -1; /* a known field of the wrong wire type */
			break;
		}
	}
	if (rc < 0) {
		rc = malformed(err, "chunks");
		goto fail;
	}
	*out = ch;
	return GILD_OK;
fail:
	codec_chunks_fini(&ch);
	return rc;
}

/* Adds key -> val to map; frees val when that fails. 0 or OOM. */
static int
set(gild_value *map, const char *key, gild_value *val)
{
	gild_value *k = gild_cstr(key);

	if (k == NULL || val == NULL || gild_map_set(map, k, val) != GILD_OK) {
		gild_value_free(k);
		gild_value_free(val);
		return OOM;
	}
	return 0;
}

static gild_value *
str_or_empty(const char *s)
{
	return gild_cstr(s != NULL ? s : "");
}

int
codec_status_to_value(const Gild__V1__Status *st, gild_value **out)
{
	gild_value *m = gild_map(), *fns = gild_list(), *ws = gild_list();
	gild_value *times = gild_map();
	int rc = 0;

	if (m == NULL || fns == NULL || ws == NULL || times == NULL)
		goto fail;
	for (size_t i = 0; i < st->n_functions; i++) {
		gild_value *s = str_or_empty(st->functions[i]);

		if (s == NULL || gild_list_append(fns, s) != GILD_OK) {
			gild_value_free(s);
			goto fail;
		}
	}
	for (size_t i = 0; i < st->n_workers; i++) {
		const Gild__V1__WorkerStatus *w = st->workers[i];
		gild_value *wm = gild_map();

		if (wm == NULL || gild_list_append(ws, wm) != GILD_OK) {
			gild_value_free(wm);
			goto fail;
		}
		rc |= set(wm, "slot", gild_int(w->slot));
		rc |= set(wm, "pid", gild_int(w->pid));
		rc |= set(wm, "state", str_or_empty(w->state));
		rc |= set(wm, "jobs_done", value_uint64(w->jobs_done));
		rc |= set(wm, "restarts", gild_int(w->restarts));
		rc |= set(wm, "recycles", gild_int(w->recycles));
		rc |= set(wm, "waiting", gild_int(w->waiting));
	}
	rc |= set(m, "server_version", str_or_empty(st->server_version));
	rc |= set(m, "app", str_or_empty(st->app));
	rc |= set(m, "runtime", str_or_empty(st->runtime));
	rc |= set(m, "functions", fns);
	fns = NULL;
	rc |= set(m, "workers", ws);
	ws = NULL;
	rc |= set(m, "queued", value_uint64(st->queued));
	rc |= set(m, "in_flight", value_uint64(st->in_flight));
	rc |= set(m, "calls_total", value_uint64(st->calls_total));
	rc |= set(m, "uptime_s", gild_float(st->uptime_s));
	rc |= set(m, "python_version", str_or_empty(st->python_version));
	rc |= set(m, "state", str_or_empty(st->state));
	rc |= set(m, "threads", gild_int(st->threads));
	rc |= set(m, "gil_enabled", gild_bool(st->gil_enabled));
	rc |= set(m, "shm_bytes", value_uint64(st->shm_bytes));
	rc |= set(m, "shm_requests", value_uint64(st->shm_requests));
	rc |= set(m, "shm_replies", value_uint64(st->shm_replies));
	rc |= set(m, "shm_refused", value_uint64(st->shm_refused));
	rc |= set(m, "shm_over_budget", value_uint64(st->shm_over_budget));
	for (size_t i = 0; i < st->n_service_times; i++) {
		const Gild__V1__ServiceTime *t = st->service_times[i];

		rc |= set(times, t->function ? t->function : "",
		    gild_int(t->us));
	}
	rc |= set(m, "service_us", times);
	times = NULL;
	if (rc != 0)
		goto fail;
	*out = m;
	return GILD_OK;
fail:
	gild_value_free(m);
	gild_value_free(fns);
	gild_value_free(ws);
	gild_value_free(times);
	return GILD_RESOURCE_EXHAUSTED;
}
