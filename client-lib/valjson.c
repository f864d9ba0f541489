/* gildctl's JSON <-> gild_value conversion: jansson for reading, a small
 * hand-written emitter for writing (see valjson.h for the forms). */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "valjson.h"

/* ---- base64 ------------------------------------------------------------ */

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
valjson_base64_encode(const void *p, size_t len)
{
	const uint8_t *s = p;
	size_t n = (len + 2) / 3 * 4, o = 0;
	char *out;

	if (len > (SIZE_MAX - 3) / 4 * 3 || (out = malloc(n + 1)) == NULL)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t) s[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t) s[i + 1] << 8;
		if (i + 2 < len)
			v |= s[i + 2];
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? b64[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

int
valjson_base64_decode(const char *s, size_t slen, uint8_t **out, size_t *len)
{
	uint8_t *buf;
	uint32_t acc = 0;
	size_t o = 0, nbits = 0, pad = 0;

	while (pad < 2 && slen > 0 && s[slen - 1] == '=') {
		slen--;
		pad++;
	}
	if (slen % 4 == 1 || (pad > 0 && (slen + pad) % 4 != 0))
		return -1;
	if ((buf = malloc(slen / 4 * 3 + 3)) == NULL)
		return -1;
	for (size_t i = 0; i < slen; i++) {
		const char *q = s[i] != '\0' ? strchr(b64, s[i]) : NULL;

		if (q == NULL) {
			free(buf);
			return -1;
		}
		acc = acc << 6 | (uint32_t) (q - b64);
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			buf[o++] = (uint8_t) (acc >> nbits);
		}
	}
	*out = buf;
	*len = o;
	return 0;
}

/* ---- parsing ----------------------------------------------------------- */

static int
fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int from_json(const json_t *j, gild_value **out, char *errbuf,
    size_t errlen);

static int
parse_bytes(const json_t *j, bool pickle, gild_value **out, char *errbuf,
    size_t errlen)
{
	uint8_t *data;
	size_t len;

	if (!json_is_string(j) || valjson_base64_decode(json_string_value(j),
	    json_string_length(j), &data, &len) != 0)
		return fail(errbuf, errlen, pickle
		    ? "$pickle needs a base64 string"
		    : "$bytes needs a base64 string");
	*out = pickle ? gild_pickle(data, len) : gild_bytes(data, len);
	free(data);
	return *out != NULL ? 0 : fail(errbuf, errlen, "out of memory");
}

static int
parse_tensor(const json_t *j, gild_value **out, char *errbuf, size_t errlen)
{
	const json_t *dt = json_object_get(j, "dtype");
	const json_t *sh = json_object_get(j, "shape");
	const json_t *da = json_object_get(j, "base64");
	uint64_t *shape = NULL, want = 1;
	uint8_t *data = NULL;
	size_t ndim, len = 0;
	const json_t *d;
	size_t i;
	int rc = -1;

	if (!json_is_object(j) || !json_is_string(dt) || !json_is_array(sh) ||
	    !json_is_string(da) || json_object_size(j) != 3)
		return fail(errbuf, errlen, "$tensor needs an object with "
		    "\"dtype\", \"shape\" and \"base64\"");
	ndim = json_array_size(sh);
	if ((shape = calloc(ndim + 1, sizeof(*shape))) == NULL)
		return fail(errbuf, errlen, "out of memory");
	json_array_foreach(sh, i, d) {
		if (!json_is_integer(d) || json_integer_value(d) < 0) {
			fail(errbuf, errlen, "$tensor shape must be a list of "
			    "non-negative integers");
			goto out;
		}
		shape[i] = (uint64_t) json_integer_value(d);
		want = shape[i] && want > UINT64_MAX / shape[i] ? 0 : want * shape[i];
	}
	if (valjson_base64_decode(json_string_value(da), json_string_length(da),
	    &data, &len) != 0) {
		fail(errbuf, errlen, "$tensor base64 is not base64");
		goto out;
	}
	if ((*out = gild_tensor(json_string_value(dt), shape, ndim, data,
	    len)) == NULL) {
		fail(errbuf, errlen, "$tensor: unknown dtype '%s', or %zu bytes "
		    "of data do not fill shape of %llu elements",
		    json_string_value(dt), len, (unsigned long long) want);
		goto out;
	}
	rc = 0;
out:
	free(shape);
	free(data);
	return rc;
}

static int
parse_map(const json_t *j, gild_value **out, char *errbuf, size_t errlen)
{
	gild_value *m = gild_map(), *k = NULL, *v = NULL;
	const json_t *pair;
	size_t i;

	if (m == NULL)
		return fail(errbuf, errlen, "out of memory");
	if (!json_is_array(j))
		goto bad;
	json_array_foreach(j, i, pair) {
		if (!json_is_array(pair) || json_array_size(pair) != 2)
			goto bad;
		if (from_json(json_array_get(pair, 0), &k, errbuf, errlen) != 0 ||
		    from_json(json_array_get(pair, 1), &v, errbuf, errlen) != 0)
			goto fail;
		if (gild_map_set(m, k, v) != GILD_OK) {
			fail(errbuf, errlen, "out of memory");
			goto fail;
		}
		k = v = NULL;
	}
	*out = m;
	return 0;
bad:
	fail(errbuf, errlen, "$map needs a list of [key, value] pairs");
fail:
	gild_value_free(k);
	gild_value_free(v);
	gild_value_free(m);
	return -1;
}

static int
from_object(const json_t *j, gild_value **out, char *errbuf, size_t errlen)
{
	const char *key;
	size_t klen;
	json_t *val;
	gild_value *m, *k = NULL, *v = NULL;

	if (json_object_size(j) == 1) {
		if (json_object_get(j, "$bytes") != NULL)
			return parse_bytes(json_object_get(j, "$bytes"), false,
			    out, errbuf, errlen);
		if (json_object_get(j, "$pickle") != NULL)
			return parse_bytes(json_object_get(j, "$pickle"), true,
			    out, errbuf, errlen);
		if (json_object_get(j, "$tensor") != NULL)
			return parse_tensor(json_object_get(j, "$tensor"), out,
			    errbuf, errlen);
		if (json_object_get(j, "$map") != NULL)
			return parse_map(json_object_get(j, "$map"), out, errbuf,
			    errlen);
	}
	if ((m = gild_map()) == NULL)
		return fail(errbuf, errlen, "out of memory");
	json_object_keylen_foreach((json_t *) j, key, klen, val) {
		if ((k = gild_str(key, klen)) == NULL) {
			fail(errbuf, errlen, "out of memory");
			goto fail;
		}
		if (from_json(val, &v, errbuf, errlen) != 0)
			goto fail;
		if (gild_map_set(m, k, v) != GILD_OK) {
			fail(errbuf, errlen, "out of memory");
			goto fail;
		}
		k = v = NULL;
	}
	*out = m;
	return 0;
fail:
	gild_value_free(k);
	gild_value_free(v);
	gild_value_free(m);
	return -1;
}

static int
from_json(const json_t *j, gild_value **out, char *errbuf, size_t errlen)
{
	gild_value *v = NULL;
	const json_t *item;
	size_t i;

	*out = NULL;
	switch (json_typeof(j)) {
	case JSON_NULL: v = gild_null(); break;
	case JSON_TRUE: v = gild_bool(true); break;
	case JSON_FALSE: v = gild_bool(false); break;
	case JSON_INTEGER: v = gild_int(json_integer_value(j)); break;
	case JSON_REAL: v = gild_float(json_real_value(j)); break;
	case JSON_STRING:
		v = gild_str(json_string_value(j), json_string_length(j));
		break;
	case JSON_ARRAY:
		if ((v = gild_list()) == NULL)
			break;
		json_array_foreach(j, i, item) {
			gild_value *x;

			if (from_json(item, &x, errbuf, errlen) != 0) {
				gild_value_free(v);
				return -1;
			}
			if (gild_list_append(v, x) != GILD_OK) {
				gild_value_free(x);
				gild_value_free(v);
				v = NULL;
				break;
			}
		}
		break;
	case JSON_OBJECT:
		return from_object(j, out, errbuf, errlen);
	}
	if (v == NULL)
		return fail(errbuf, errlen, "out of memory");
	*out = v;
	return 0;
}

/* text without leading and trailing white space, as [*s, *e). */
static void
trim(const char *text, const char **s, const char **e)
{
	*s = text;
	*e = text + strlen(text);
	while (*s < *e && isspace((unsigned char) **s))
		(*s)++;
	while (*e > *s && isspace((unsigned char) (*e)[-1]))
		(*e)--;
}

static bool
is_word(const char *s, const char *e, const char *word)
{
	return (size_t) (e - s) == strlen(word) && memcmp(s, word, e - s) == 0;
}

int
valjson_parse(const char *text, gild_value **out, char *errbuf,
    size_t errlen)
{
	const char *s, *e, *d;
	json_error_t jerr;
	json_t *j;
	int rc;

	if (errlen > 0)
		errbuf[0] = '\0';
	trim(text, &s, &e);
	/* A bare integer: any size, which jansson's long long cannot hold. */
	d = s + (s < e && *s == '-');
	if (d < e && strspn(d, "0123456789") == (size_t) (e - d)) {
		char *num = strndup(s, (size_t) (e - s));

		*out = num != NULL ? gild_int_from_decimal(num) : NULL;
		free(num);
		return *out != NULL ? 0 : fail(errbuf, errlen, "out of memory");
	}
	if (is_word(s, e, "NaN") || is_word(s, e, "Infinity") ||
	    is_word(s, e, "-Infinity")) {
		*out = gild_float(*s == 'N' ? NAN : *s == '-' ? -INFINITY : INFINITY);
		return *out != NULL ? 0 : fail(errbuf, errlen, "out of memory");
	}
	j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (j == NULL)
		return fail(errbuf, errlen, "not a JSON value: %s", jerr.text);
	rc = from_json(j, out, errbuf, errlen);
	json_decref(j);
	return rc;
}

/* ---- writing ----------------------------------------------------------- */

/* A growing output buffer; `failed` sticks after the first failed append. */
typedef struct abuf {
	char *p;
	size_t len, cap;
	bool failed;
} abuf;

static void
ab_put(abuf *a, const char *s, size_t n)
{
	if (a->failed)
		return;
	if (a->len + n + 1 > a->cap) {
		size_t ncap = a->cap ? a->cap : 64;
		char *q;

		while (ncap < a->len + n + 1)
			ncap *= 2;
		if ((q = realloc(a->p, ncap)) == NULL) {
			a->failed = true;
			return;
		}
		a->p = q;
		a->cap = ncap;
	}
	memcpy(a->p + a->len, s, n);
	a->len += n;
	a->p[a->len] = '\0';
}

static void
ab_str(abuf *a, const char *s)
{
	ab_put(a, s, strlen(s));
}

/* Python's repr of a float: the shortest digits that read back to d, in
 * positional notation for exponents -4..15, else d.ddde+XX. */
static void
put_float(abuf *a, double d)
{
	char buf[40], digits[24], out[64];
	int prec, exp, nd = 0, o = 0;
	const char *p;

	if (isnan(d)) {
		ab_str(a, "NaN");
		return;
	}
	if (isinf(d)) {
		ab_str(a, d < 0 ? "-Infinity" : "Infinity");
		return;
	}
	for (prec = 1; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec - 1, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	snprintf(buf, sizeof(buf), "%.*e", prec - 1, d);
	p = buf;
	if (*p == '-')
		out[o++] = *p++;
	for (; *p != 'e'; p++)
		if (*p != '.')
			digits[nd++] = *p;
	exp = atoi(p + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	if (exp >= -4 && exp < 16) {
		if (exp < 0) {
			out[o++] = '0';
			out[o++] = '.';
			for (int k = -1; k > exp; k--)
				out[o++] = '0';
			for (int k = 0; k < nd; k++)
				out[o++] = digits[k];
		} else {
			for (int k = 0; k <= exp; k++)
				out[o++] = k < nd ? digits[k] : '0';
			out[o++] = '.';
			if (nd > exp + 1)
				for (int k = exp + 1; k < nd; k++)
					out[o++] = digits[k];
			else
				out[o++] = '0';
		}
		out[o] = '\0';
	} else {
		out[o++] = digits[0];
		if (nd > 1) {
			out[o++] = '.';
			for (int k = 1; k < nd; k++)
				out[o++] = digits[k];
		}
		snprintf(out + o, sizeof(out) - (size_t) o, "e%c%02d",
		    exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
	}
	ab_str(a, out);
}

static void
put_string(abuf *a, const char *s, size_t n)
{
	size_t run = 0;

	ab_put(a, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char) s[i];
		char esc[8];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		ab_put(a, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"': ab_str(a, "\\\""); break;
		case '\\': ab_str(a, "\\\\"); break;
		case '\n': ab_str(a, "\\n"); break;
		case '\r': ab_str(a, "\\r"); break;
		case '\t': ab_str(a, "\\t"); break;
		case '\b': ab_str(a, "\\b"); break;
		case '\f': ab_str(a, "\\f"); break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			ab_str(a, esc);
		}
	}
	ab_put(a, s + run, n - run);
	ab_put(a, "\"", 1);
}

/* Containers: open, then sep before each item, then close. */
static void
newline(abuf *a, int indent, int level)
{
	ab_put(a, "\n", 1);
	for (int k = 0; k < indent * level; k++)
		ab_put(a, " ", 1);
}

static void
sep(abuf *a, size_t i, int indent, int level)
{
	if (i > 0)
		ab_str(a, indent > 0 ? "," : ", ");
	if (indent > 0)
		newline(a, indent, level + 1);
}

static void
close_(abuf *a, char c, size_t n, int indent, int level)
{
	if (n > 0 && indent > 0)
		newline(a, indent, level);
	ab_put(a, &c, 1);
}

static void put_value(abuf *a, const gild_value *v, int indent, int level);

/* {"key": <v>} around an extended form; the caller writes the inside. */
static void
open_ext(abuf *a, const char *key, int indent, int level)
{
	ab_str(a, "{");
	sep(a, 0, indent, level);
	put_string(a, key, strlen(key));
	ab_str(a, ": ");
}

static void
put_tensor(abuf *a, const gild_value *v, int indent, int level)
{
	const uint64_t *shape = gild_tensor_shape(v);
	size_t ndim = gild_tensor_ndim(v), len;
	const void *data = gild_tensor_data(v, &len);
	const char *dtype = gild_tensor_dtype(v);
	char *b = valjson_base64_encode(data, len), num[24];
	int in = level + 1;

	open_ext(a, "$tensor", indent, level);
	ab_str(a, "{");
	sep(a, 0, indent, in);
	ab_str(a, "\"dtype\": ");
	put_string(a, dtype, strlen(dtype));
	sep(a, 1, indent, in);
	ab_str(a, "\"shape\": [");
	for (size_t k = 0; k < ndim; k++) {
		sep(a, k, indent, in + 1);
		snprintf(num, sizeof(num), "%llu", (unsigned long long) shape[k]);
		ab_str(a, num);
	}
	close_(a, ']', ndim, indent, in + 1);
	sep(a, 2, indent, in);
	ab_str(a, "\"base64\": ");
	if (b == NULL)
		a->failed = true;
	else
		put_string(a, b, strlen(b));
	free(b);
	close_(a, '}', 3, indent, in);
	close_(a, '}', 1, indent, level);
}

static void
put_map(abuf *a, const gild_value *v, int indent, int level)
{
	size_t n = gild_value_len(v);
	bool all_str = true;

	for (size_t i = 0; i < n && all_str; i++)
		all_str = gild_value_kind(gild_map_key(v, i)) == GILD_STR;
	if (all_str) {
		ab_str(a, "{");
		for (size_t i = 0; i < n; i++) {
			size_t klen;
			const char *k = gild_value_str(gild_map_key(v, i), &klen);

			sep(a, i, indent, level);
			put_string(a, k, klen);
			ab_str(a, ": ");
			put_value(a, gild_map_val(v, i), indent, level + 1);
		}
		close_(a, '}', n, indent, level);
		return;
	}
	open_ext(a, "$map", indent, level);
	ab_str(a, "[");
	for (size_t i = 0; i < n; i++) {
		sep(a, i, indent, level + 1);
		ab_str(a, "[");
		sep(a, 0, indent, level + 2);
		put_value(a, gild_map_key(v, i), indent, level + 3);
		sep(a, 1, indent, level + 2);
		put_value(a, gild_map_val(v, i), indent, level + 3);
		close_(a, ']', 2, indent, level + 2);
	}
	close_(a, ']', n, indent, level + 1);
	close_(a, '}', 1, indent, level);
}

static void
put_value(abuf *a, const gild_value *v, int indent, int level)
{
	size_t n;
	const char *s;
	char *t;

	switch (gild_value_kind(v)) {
	case GILD_NULL:
		ab_str(a, "null");
		break;
	case GILD_BOOL:
		ab_str(a, gild_value_bool(v) ? "true" : "false");
		break;
	case GILD_INT:
	case GILD_BIGINT:
		if ((t = gild_value_to_decimal(v)) == NULL)
			a->failed = true;
		else
			ab_str(a, t);
		free(t);
		break;
	case GILD_FLOAT:
		put_float(a, gild_value_float(v));
		break;
	case GILD_STR:
		s = gild_value_str(v, &n);
		put_string(a, s, n);
		break;
	case GILD_BYTES:
	case GILD_PICKLE:
		s = (const char *) gild_value_bytes(v, &n);
		if ((t = valjson_base64_encode(s, n)) == NULL)
			a->failed = true;
		open_ext(a, gild_value_kind(v) == GILD_PICKLE ? "$pickle"
							       : "$bytes",
		    indent, level);
		if (t != NULL)
			put_string(a, t, strlen(t));
		free(t);
		close_(a, '}', 1, indent, level);
		break;
	case GILD_LIST:
	case GILD_TUPLE:
		n = gild_value_len(v);
		ab_str(a, "[");
		for (size_t i = 0; i < n; i++) {
			sep(a, i, indent, level);
			put_value(a, gild_value_item(v, i), indent, level + 1);
		}
		close_(a, ']', n, indent, level);
		break;
	case GILD_MAP:
		put_map(a, v, indent, level);
		break;
	case GILD_TENSOR:
		put_tensor(a, v, indent, level);
		break;
	}
}

char *
valjson_dump(const gild_value *v, int indent)
{
	abuf a = {0};

	put_value(&a, v, indent < 0 ? 0 : indent, 0);
	ab_put(&a, "", 0);
	if (a.failed) {
		free(a.p);
		return NULL;
	}
	return a.p;
}
