/* Unit tests of libgild's values (client-lib/value.c) and their protobuf
 * encoding (client-lib/codec.c), checked against protobuf-c's own packer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "codec.h"
#include "codes.h"
#include "gild.h"
#include "gild.pb-c.h"
#include "value.h"
#include "test_main.h"

/* ---- constructors and accessors ---------------------------------------- */

static void
test_scalars(void)
{
	gild_value *v;
	size_t n;

	v = gild_null();
	CU_ASSERT_EQUAL(gild_value_kind(v), GILD_NULL);
	gild_value_free(v);

	v = gild_bool(true);
	CU_ASSERT_EQUAL(gild_value_kind(v), GILD_BOOL);
	CU_ASSERT_TRUE(gild_value_bool(v));
	CU_ASSERT_EQUAL(gild_value_int(v), 0); /* kind mismatch */
	gild_value_free(v);

	v = gild_int(-42);
	CU_ASSERT_EQUAL(gild_value_kind(v), GILD_INT);
	CU_ASSERT_EQUAL(gild_value_int(v), -42);
	CU_ASSERT_FALSE(gild_value_bool(v));
	CU_ASSERT_PTR_NULL(gild_value_str(v, &n));
	CU_ASSERT_EQUAL(n, 0);
	gild_value_free(v);

	v = gild_float(2.5);
	CU_ASSERT_EQUAL(gild_value_kind(v), GILD_FLOAT);
	CU_ASSERT_DOUBLE_EQUAL(gild_value_float(v), 2.5, 0);
	gild_value_free(v);

	v = gild_str("a\0b", 3);
	CU_ASSERT_EQUAL(gild_value_kind(v), GILD_STR);
	CU_ASSERT_EQUAL(memcmp(gild_value_str(v, &n), "a\0b", 3), 0);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_PTR_NULL(gild_value_bytes(v, NULL));
	gild_value_free(v);

	v = gild_cstr("héllo");
	CU_ASSERT_STRING_EQUAL(gild_value_str(v, &n), "héllo");
	CU_ASSERT_EQUAL(n, 6);
	gild_value_free(v);

	v = gild_bytes("\xff\x00\x01", 3);
	CU_ASSERT_EQUAL(gild_value_kind(v), GILD_BYTES);
	CU_ASSERT_EQUAL(memcmp(gild_value_bytes(v, &n), "\xff\x00\x01", 3), 0);
	CU_ASSERT_EQUAL(n, 3);
	gild_value_free(v);

	v = gild_bytes(NULL, 0);
	CU_ASSERT_PTR_NOT_NULL(v);
	gild_value_bytes(v, &n);
	CU_ASSERT_EQUAL(n, 0);
	gild_value_free(v);

	CU_ASSERT_PTR_NULL(gild_cstr(NULL));
	CU_ASSERT_PTR_NULL(gild_bytes(NULL, 3));
	gild_value_free(NULL);
}

static void
test_containers(void)
{
	gild_value *l = gild_list(), *t = gild_tuple(), *m = gild_map();
	gild_value *one = gild_int(1), *two;

	CU_ASSERT_EQUAL(gild_list_append(l, one), GILD_OK);
	CU_ASSERT_EQUAL(gild_list_append(l, gild_cstr("x")), GILD_OK);
	CU_ASSERT_EQUAL(gild_list_append(l, NULL), GILD_INVALID_ARGUMENT);
	CU_ASSERT_EQUAL(gild_value_len(l), 2);
	CU_ASSERT_PTR_EQUAL(gild_value_item(l, 0), one);
	CU_ASSERT_PTR_NULL(gild_value_item(l, 2));
	CU_ASSERT_EQUAL(gild_value_kind(t), GILD_TUPLE);
	CU_ASSERT_EQUAL(gild_value_len(t), 0);

	/* Not a list: the item stays the caller's. */
	one = gild_int(1);
	CU_ASSERT_EQUAL(gild_list_append(m, one), GILD_INVALID_ARGUMENT);
	two = gild_int(2);
	CU_ASSERT_EQUAL(gild_map_set(l, two, one), GILD_INVALID_ARGUMENT);
	gild_value_free(one);
	gild_value_free(two);

	CU_ASSERT_EQUAL(gild_map_set(m, gild_cstr("a"), gild_int(10)), GILD_OK);
	CU_ASSERT_EQUAL(gild_map_set(m, gild_int(7), gild_cstr("seven")), GILD_OK);
	CU_ASSERT_EQUAL(gild_map_set(m, gild_cstr("b"), t), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_len(m), 3);
	CU_ASSERT_EQUAL(gild_value_int(gild_map_get(m, "a")), 10);
	CU_ASSERT_PTR_EQUAL(gild_map_get(m, "b"), t);
	CU_ASSERT_PTR_NULL(gild_map_get(m, "c"));
	CU_ASSERT_EQUAL(gild_value_int(gild_map_key(m, 1)), 7);
	CU_ASSERT_STRING_EQUAL(gild_value_str(gild_map_val(m, 1), NULL), "seven");
	CU_ASSERT_PTR_NULL(gild_map_key(m, 3));
	gild_value_free(l);
	gild_value_free(m);

	/* Many items: growth keeps order. */
	l = gild_list();
	for (int i = 0; i < 1000; i++)
		CU_ASSERT_EQUAL(gild_list_append(l, gild_int(i)), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_len(l), 1000);
	CU_ASSERT_EQUAL(gild_value_int(gild_value_item(l, 999)), 999);
	gild_value_free(l);
}

static gild_value *
sample(void)
{
	gild_value *m = gild_map(), *l = gild_list(), *t = gild_tuple();
	uint64_t shape[2] = {2, 2};
	float data[4] = {1, 2, 3, 4};
	gild_value *key = gild_tuple();

	gild_list_append(l, gild_null());
	gild_list_append(l, gild_bool(false));
	gild_list_append(l, gild_int(INT64_MIN));
	gild_list_append(l, gild_int_from_decimal("-1606938044258990275541962092341162602522202993782792835301376"));
	gild_list_append(l, gild_float(NAN));
	gild_list_append(l, gild_float(-INFINITY));
	gild_list_append(l, gild_float(-0.0));
	gild_list_append(l, gild_str("nul\0inside", 10));
	gild_list_append(l, gild_bytes("\x80\xff\xfe", 3));
	gild_list_append(l, gild_tensor("float32", shape, 2, data, sizeof(data)));
	gild_list_append(l, gild_list());
	gild_list_append(l, gild_map());
	gild_list_append(t, gild_cstr("in a tuple"));
	gild_list_append(l, t);
	gild_list_append(key, gild_int(1));
	gild_list_append(key, gild_int(2));
	gild_map_set(m, key, l);
	gild_map_set(m, gild_int(3), gild_cstr("int key"));
	gild_map_set(m, gild_null(), gild_map());
	return m;
}

static void
test_copy_equal(void)
{
	gild_value *a = sample(), *b = gild_value_copy(a), *c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_TRUE(gild_value_equal(a, b));
	CU_ASSERT_TRUE(gild_value_equal(a, a));
	/* Change one leaf of the copy. */
	c = gild_value_copy(b);
	gild_map_set(c, gild_cstr("extra"), gild_null());
	CU_ASSERT_FALSE(gild_value_equal(a, c));
	gild_value_free(c);

	c = gild_float(NAN);
	CU_ASSERT_TRUE(gild_value_equal(c, c)); /* by bits */
	b = (gild_value_free(b), gild_float(-0.0));
	a = (gild_value_free(a), gild_float(0.0));
	CU_ASSERT_FALSE(gild_value_equal(a, b));
	gild_value_free(a);
	gild_value_free(b);
	gild_value_free(c);

	a = gild_list();
	b = gild_tuple();
	CU_ASSERT_FALSE(gild_value_equal(a, b)); /* kinds differ */
	CU_ASSERT_FALSE(gild_value_equal(a, NULL));
	CU_ASSERT_TRUE(gild_value_equal(NULL, NULL));
	gild_value_free(a);
	gild_value_free(b);
}

/* ---- integers ---------------------------------------------------------- */

static void
test_bigint_normalise(void)
{
	static const struct {
		const char *le;
		size_t n;
		gild_kind kind;
		int64_t i;
		size_t bytes;
	} cases[] = {
		{"", 0, GILD_INT, 0, 0},
		{"\x00\x00\x00", 3, GILD_INT, 0, 0},
		{"\xff\xff", 2, GILD_INT, -1, 0},
		{"\x80\x00", 2, GILD_INT, 128, 0},
		{"\x80", 1, GILD_INT, -128, 0},
		{"\xff\xff\xff\xff\xff\xff\xff\x7f\x00\x00", 10, GILD_INT, INT64_MAX, 0},
		{"\x00\x00\x00\x00\x00\x00\x00\x80\xff", 9, GILD_INT, INT64_MIN, 0},
		{"\x00\x00\x00\x00\x00\x00\x00\x80\x00", 9, GILD_BIGINT, 0, 9},
		{"\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00", 11, GILD_BIGINT, 0, 9},
		{"\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff", 10, GILD_BIGINT, 0, 9},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gild_value *v = gild_bigint((const uint8_t *) cases[i].le,
		    cases[i].n);
		size_t n;

		CU_ASSERT_PTR_NOT_NULL_FATAL(v);
		CU_ASSERT_EQUAL(gild_value_kind(v), cases[i].kind);
		if (cases[i].kind == GILD_INT) {
			CU_ASSERT_EQUAL(gild_value_int(v), cases[i].i);
		} else {
			CU_ASSERT_PTR_NOT_NULL(gild_value_bytes(v, &n));
			CU_ASSERT_EQUAL(n, cases[i].bytes);
			CU_ASSERT_EQUAL(gild_value_int(v), 0);
		}
		gild_value_free(v);
	}
}

static void
test_decimal(void)
{
	static const struct {
		const char *in, *out;
		gild_kind kind;
	} cases[] = {
		{"0", "0", GILD_INT},
		{"-0", "0", GILD_INT},
		{"+7", "7", GILD_INT},
		{"007", "7", GILD_INT},
		{"1", "1", GILD_INT},
		{"-1", "-1", GILD_INT},
		{"999999999", "999999999", GILD_INT},
		{"1000000000", "1000000000", GILD_INT},
		{"9223372036854775807", "9223372036854775807", GILD_INT},
		{"-9223372036854775808", "-9223372036854775808", GILD_INT},
		{"9223372036854775808", "9223372036854775808", GILD_BIGINT},
		{"-9223372036854775809", "-9223372036854775809", GILD_BIGINT},
		{"18446744073709551616", "18446744073709551616", GILD_BIGINT},
		{"-18446744073709551616", "-18446744073709551616", GILD_BIGINT},
		{"1000000000000000000000000000", "1000000000000000000000000000",
		    GILD_BIGINT},
		{"1606938044258990275541962092341162602522202993782792835301376",
		    "1606938044258990275541962092341162602522202993782792835301376",
		    GILD_BIGINT},
		{"-1606938044258990275541962092341162602522202993782792835301376",
		    "-1606938044258990275541962092341162602522202993782792835301376",
		    GILD_BIGINT},
	};
	static const char *bad[] = {"", "-", "+", "1a", " 1", "1 ", "1.0",
	    "0x10", "--1", "1e5"};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gild_value *v = gild_int_from_decimal(cases[i].in);
		char *s;

		CU_ASSERT_PTR_NOT_NULL_FATAL(v);
		CU_ASSERT_EQUAL(gild_value_kind(v), cases[i].kind);
		s = gild_value_to_decimal(v);
		CU_ASSERT_STRING_EQUAL(s, cases[i].out);
		free(s);
		gild_value_free(v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_PTR_NULL(gild_int_from_decimal(bad[i]));
	CU_ASSERT_PTR_NULL(gild_int_from_decimal(NULL));
}

static void
test_bigint_bytes(void)
{
	/* 2^64 and -2^64 as Python's int.to_bytes(9, "little", signed=True). */
	gild_value *v = gild_int_from_decimal("18446744073709551616");
	size_t n;
	const uint8_t *b = gild_value_bytes(v, &n);

	CU_ASSERT_EQUAL(n, 9);
	CU_ASSERT_EQUAL(memcmp(b, "\0\0\0\0\0\0\0\0\x01", 9), 0);
	gild_value_free(v);
	v = gild_int_from_decimal("-18446744073709551616");
	b = gild_value_bytes(v, &n);
	CU_ASSERT_EQUAL(n, 9);
	CU_ASSERT_EQUAL(memcmp(b, "\0\0\0\0\0\0\0\0\xff", 9), 0);
	gild_value_free(v);
	/* 2^200: 25 zero bytes, then 0x01. */
	v = gild_int_from_decimal(
	    "1606938044258990275541962092341162602522202993782792835301376");
	b = gild_value_bytes(v, &n);
	CU_ASSERT_EQUAL(n, 26);
	CU_ASSERT_EQUAL(b[25], 1);
	for (size_t i = 0; i < 25; i++)
		CU_ASSERT_EQUAL(b[i], 0);
	gild_value_free(v);
	/* Decimal of a non-integer. */
	v = gild_cstr("1");
	CU_ASSERT_PTR_NULL(gild_value_to_decimal(v));
	gild_value_free(v);
	/* A long random-looking number survives decimal -> bytes -> decimal. */
	{
		char big[400];
		char *s;

		for (int i = 0; i < 399; i++)
			big[i] = (char) ('0' + (i * 7 + 3) % 10);
		big[399] = '\0';
		v = gild_int_from_decimal(big);
		s = gild_value_to_decimal(v);
		CU_ASSERT_STRING_EQUAL(s, big);
		free(s);
		gild_value_free(v);
	}
}

/* ---- UTF-8 and tensors ------------------------------------------------- */

static void
test_utf8(void)
{
	static const struct {
		const char *s;
		size_t n;
		bool ok;
	} cases[] = {
		{"", 0, true},
		{"plain", 5, true},
		{"\xc3\xa9", 2, true},             /* é */
		{"\xe2\x82\xac", 3, true},         /* € */
		{"\xf0\x9f\x98\x80", 4, true},     /* 😀 */
		{"\xf4\x8f\xbf\xbf", 4, true},     /* U+10FFFF */
		{"a\0b", 3, true},
		{"\xc3", 1, false},                /* truncated */
		{"\xc0\xaf", 2, false},            /* overlong / */
		{"\xe0\x80\xaf", 3, false},        /* overlong */
		{"\xed\xa0\x80", 3, false},        /* surrogate */
		{"\xf4\x90\x80\x80", 4, false},    /* past U+10FFFF */
		{"\xff", 1, false},
		{"\x80", 1, false},
		{"ok\xe2\x82", 4, false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gild_value *v = gild_str(cases[i].s, cases[i].n);

		CU_ASSERT_EQUAL(value_utf8_valid((const uint8_t *) cases[i].s,
		    cases[i].n), cases[i].ok);
		CU_ASSERT_EQUAL(v != NULL, cases[i].ok);
		gild_value_free(v);
	}
}

static void
test_tensor(void)
{
	uint64_t shape[3] = {2, 3, 4};
	uint8_t data[2 * 3 * 4 * 16] = {0};
	gild_value *v;
	size_t n;

	v = gild_tensor("float64", shape, 3, data, 2 * 3 * 4 * 8);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(gild_tensor_dtype(v), "float64");
	CU_ASSERT_EQUAL(gild_tensor_ndim(v), 3);
	CU_ASSERT_EQUAL(gild_tensor_shape(v)[2], 4);
	CU_ASSERT_PTR_NOT_NULL(gild_tensor_data(v, &n));
	CU_ASSERT_EQUAL(n, 192);
	gild_value_free(v);

	CU_ASSERT_PTR_NULL(gild_tensor("float64", shape, 3, data, 191));
	CU_ASSERT_PTR_NULL(gild_tensor("float128", shape, 3, data, 384));
	CU_ASSERT_PTR_NULL(gild_tensor(NULL, shape, 3, data, 0));
	CU_ASSERT_PTR_NULL(gild_tensor("int8", NULL, 3, data, 24));
	v = gild_tensor("complex128", shape, 3, data, sizeof(data));
	CU_ASSERT_PTR_NOT_NULL(v);
	gild_value_free(v);
	/* A scalar (no dimensions) holds one item; a zero dimension none. */
	v = gild_tensor("int32", NULL, 0, data, 4);
	CU_ASSERT_PTR_NOT_NULL(v);
	CU_ASSERT_EQUAL(gild_tensor_ndim(v), 0);
	gild_value_free(v);
	shape[1] = 0;
	v = gild_tensor("uint16", shape, 3, NULL, 0);
	CU_ASSERT_PTR_NOT_NULL(v);
	gild_value_free(v);
	/* A product that overflows is not a match for any length. */
	{
		uint64_t huge[2] = {UINT64_MAX / 2, 4};

		CU_ASSERT_PTR_NULL(gild_tensor("int8", huge, 2, data, 0));
	}
	CU_ASSERT_EQUAL(value_dtype_itemsize("bool"), 1);
	CU_ASSERT_EQUAL(value_dtype_itemsize("float16"), 2);
	CU_ASSERT_EQUAL(value_dtype_itemsize("complex64"), 8);
	CU_ASSERT_EQUAL(value_dtype_itemsize("object"), 0);
}

/* ---- codec ------------------------------------------------------------- */

/* Encodes v with codec.c, unpacks it with protobuf-c, packs it again with
 * protobuf-c, decodes that with codec.c and checks it equals v. Returns
 * protobuf-c's view (to be freed) for extra checks. */
static Gild__V1__Value *
round_trip(const gild_value *v)
{
	codec_buf b = {0};
	gild_error err = {0};
	Gild__V1__Value *pb;
	gild_value *back = NULL;
	uint8_t *packed;
	size_t n;

	CU_ASSERT_EQUAL_FATAL(codec_encode_value(&b, v, &err), GILD_OK);
	pb = gild__v1__value__unpack(NULL, codec_buf_len(&b), codec_buf_data(&b));
	CU_ASSERT_PTR_NOT_NULL_FATAL(pb);
	/* Our decoder reads our own bytes too. */
	CU_ASSERT_EQUAL(codec_decode_value(codec_buf_data(&b), codec_buf_len(&b),
	    &back, &err), GILD_OK);
	CU_ASSERT_TRUE(gild_value_equal(v, back));
	gild_value_free(back);
	back = NULL;
	n = gild__v1__value__get_packed_size(pb);
	packed = malloc(n + 1);
	gild__v1__value__pack(pb, packed);
	CU_ASSERT_EQUAL(codec_decode_value(packed, n, &back, &err), GILD_OK);
	CU_ASSERT_TRUE(gild_value_equal(v, back));
	gild_value_free(back);
	free(packed);
	codec_buf_fini(&b);
	gild_error_clear(&err);
	return pb;
}

static void
test_codec_kinds(void)
{
	uint64_t shape[2] = {2, 3};
	int16_t data[6] = {1, -2, 3, -4, 5, -6};
	struct {
		gild_value *v;
		int pb_kind;
	} cases[] = {
		{gild_null(), GILD__V1__VALUE__KIND_NULL_VALUE},
		{gild_bool(true), GILD__V1__VALUE__KIND_BOOL_VALUE},
		{gild_bool(false), GILD__V1__VALUE__KIND_BOOL_VALUE},
		{gild_int(0), GILD__V1__VALUE__KIND_INT_VALUE},
		{gild_int(-1), GILD__V1__VALUE__KIND_INT_VALUE},
		{gild_int(INT64_MAX), GILD__V1__VALUE__KIND_INT_VALUE},
		{gild_int(INT64_MIN), GILD__V1__VALUE__KIND_INT_VALUE},
		{gild_int_from_decimal("18446744073709551616"),
		    GILD__V1__VALUE__KIND_BIG_INT_VALUE},
		{gild_int_from_decimal("-1606938044258990275541962092341162602522202993782792835301376"),
		    GILD__V1__VALUE__KIND_BIG_INT_VALUE},
		{gild_float(0.0), GILD__V1__VALUE__KIND_FLOAT_VALUE},
		{gild_float(-0.0), GILD__V1__VALUE__KIND_FLOAT_VALUE},
		{gild_float(3.25), GILD__V1__VALUE__KIND_FLOAT_VALUE},
		{gild_float(NAN), GILD__V1__VALUE__KIND_FLOAT_VALUE},
		{gild_float(INFINITY), GILD__V1__VALUE__KIND_FLOAT_VALUE},
		{gild_float(-INFINITY), GILD__V1__VALUE__KIND_FLOAT_VALUE},
		{gild_cstr(""), GILD__V1__VALUE__KIND_STR_VALUE},
		{gild_cstr("héllo €"), GILD__V1__VALUE__KIND_STR_VALUE},
		{gild_bytes("", 0), GILD__V1__VALUE__KIND_BYTES_VALUE},
		{gild_bytes("\xff\xfe\x00\x80", 4), GILD__V1__VALUE__KIND_BYTES_VALUE},
		{gild_pickle("\x80\x04K\x01.", 5),
		    GILD__V1__VALUE__KIND_PICKLE_VALUE},
		{gild_pickle("", 0), GILD__V1__VALUE__KIND_PICKLE_VALUE},
		{gild_list(), GILD__V1__VALUE__KIND_LIST_VALUE},
		{gild_tuple(), GILD__V1__VALUE__KIND_TUPLE_VALUE},
		{gild_map(), GILD__V1__VALUE__KIND_MAP_VALUE},
		{gild_tensor("int16", shape, 2, data, sizeof(data)),
		    GILD__V1__VALUE__KIND_TENSOR_VALUE},
		{gild_tensor("float32", NULL, 0, data, 4),
		    GILD__V1__VALUE__KIND_TENSOR_VALUE},
		{gild_tensor("bool", (uint64_t[]){0}, 1, NULL, 0),
		    GILD__V1__VALUE__KIND_TENSOR_VALUE},
		{sample(), GILD__V1__VALUE__KIND_MAP_VALUE},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Gild__V1__Value *pb;

		CU_ASSERT_PTR_NOT_NULL_FATAL(cases[i].v);
		pb = round_trip(cases[i].v);
		CU_ASSERT_EQUAL(pb->kind_case, cases[i].pb_kind);
		gild__v1__value__free_unpacked(pb, NULL);
		gild_value_free(cases[i].v);
	}
}

static void
test_codec_pb_fields(void)
{
	/* What protobuf-c sees in our bytes. */
	uint64_t shape[2] = {2, 3};
	int16_t data[6] = {0};
	gild_value *v = gild_tensor("int16", shape, 2, data, sizeof(data));
	Gild__V1__Value *pb = round_trip(v);

	CU_ASSERT_STRING_EQUAL(pb->tensor_value->dtype, "int16");
	CU_ASSERT_EQUAL(pb->tensor_value->n_shape, 2);
	CU_ASSERT_EQUAL(pb->tensor_value->shape[1], 3);
	CU_ASSERT_EQUAL(pb->tensor_value->data.len, 12);
	gild__v1__value__free_unpacked(pb, NULL);
	gild_value_free(v);

	v = gild_int(-3);
	pb = round_trip(v);
	CU_ASSERT_EQUAL(pb->int_value, -3);
	gild__v1__value__free_unpacked(pb, NULL);
	gild_value_free(v);

	v = gild_map();
	gild_map_set(v, gild_int(1), gild_cstr("one"));
	pb = round_trip(v);
	CU_ASSERT_EQUAL(pb->map_value->n_entries, 1);
	CU_ASSERT_EQUAL(pb->map_value->entries[0]->key->int_value, 1);
	CU_ASSERT_EQUAL(pb->map_value->entries[0]->value->str_value.len, 3);
	CU_ASSERT_EQUAL(memcmp(pb->map_value->entries[0]->value->str_value.data,
	    "one", 3), 0);
	gild__v1__value__free_unpacked(pb, NULL);
	gild_value_free(v);
}

static void
test_codec_nul_string(void)
{
	/* The exact bytes: str_value (field 6) holding a, NUL, b, NUL. */
	gild_value *v = gild_str("a\0b\0", 4), *back = NULL;
	codec_buf b = {0};
	size_t n;

	CU_ASSERT_EQUAL(codec_encode_value(&b, v, NULL), GILD_OK);
	CU_ASSERT_EQUAL(codec_buf_len(&b), 6);
	CU_ASSERT_EQUAL(memcmp(codec_buf_data(&b), "\x32\x04" "a\0b\0", 6), 0);
	CU_ASSERT_EQUAL(codec_decode_value(codec_buf_data(&b), codec_buf_len(&b),
	    &back, NULL), GILD_OK);
	CU_ASSERT_TRUE(gild_value_equal(v, back));
	gild_value_str(back, &n);
	CU_ASSERT_EQUAL(n, 4);
	gild_value_free(back);
	gild_value_free(v);
	codec_buf_fini(&b);
}

static void
test_codec_bad_input(void)
{
	static const struct {
		const char *bytes;
		size_t n;
		const char *msg;
	} cases[] = {
		{"", 0, "value has no kind set"},
		{"\x68\x01", 2, "value has no kind set"}, /* unknown field 13 */
		{"\x60\x01", 2, "malformed value"},     /* pickle as a varint */
		{"\x32\x02\xc3\x28", 4, "str value is not valid UTF-8"},
		{"\x32\x05" "ab", 4, "malformed value"},   /* length past end */
		{"\x10", 1, "malformed value"},             /* truncated varint */
		{"\x12\x00", 2, "malformed value"},         /* bool as LEN */
		{"\x5a\x0d\x0a\x05" "int16\x12\x01\x02\x1a\x01\x00", 15,
		    "int16 tensor of 1 dimensions has 1 bytes of data, not "
		    "itemsize x shape"},
		{"\x5a\x07\x0a\x05" "int99", 9,
		    "tensor dtype 'int99' is not one of gild's"},
		{"\x52\x04\x0a\x02\x0a\x00", 6, "map entry without a value"},
		{"\x42\x02\x0a\x00", 4, "value has no kind set"}, /* [<unset>] */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gild_value *v = (gild_value *) 1;
		gild_error err = {0};

		CU_ASSERT_EQUAL(codec_decode_value((const uint8_t *) cases[i].bytes,
		    cases[i].n, &v, &err), GILD_INVALID_ARGUMENT);
		CU_ASSERT_PTR_NULL(v);
		CU_ASSERT_EQUAL(err.code, GILD_INVALID_ARGUMENT);
		CU_ASSERT_PTR_NOT_NULL_FATAL(err.message);
		CU_ASSERT_STRING_EQUAL(err.message, cases[i].msg);
		gild_error_clear(&err);
	}
}

/* Prepends a varint to the n bytes at buf + pos (room in front). */
static size_t
prepend_varint(uint8_t *buf, size_t pos, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	do {
		tmp[n++] = (uint8_t) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	pos -= n;
	memcpy(buf + pos, tmp, n);
	return pos;
}

/* [[[...[]...]]] nested `depth` lists deep, encoded by hand. */
static uint8_t *
deep_bytes(size_t depth, size_t *len, size_t *start)
{
	size_t cap = depth * 8 + 16, pos = cap;
	uint8_t *buf = malloc(cap);

	buf[--pos] = 0x00; /* innermost: an empty list value: 42 00 */
	buf[--pos] = 0x42;
	for (size_t i = 1; i < depth; i++) {
		size_t inner = cap - pos;

		pos = prepend_varint(buf, pos, inner);
		buf[--pos] = 0x0a; /* List.items */
		inner = cap - pos;
		pos = prepend_varint(buf, pos, inner);
		buf[--pos] = 0x42; /* Value.list_value */
	}
	*len = cap - pos;
	*start = pos;
	return buf;
}

/* The message every gild program gives for a value one level too deep. */
static const char *
too_deep_text(void)
{
	static char text[80];

	snprintf(text, sizeof(text), GILD_VALUE_TOO_DEEP, GILD_VALUE_DEPTH_MAX);
	return text;
}

/* GILD_VALUE_DEPTH_MAX lists nested (the outermost counts) encode and
 * decode; one more is refused both ways with the shared text. */
static void
test_codec_depth(void)
{
	gild_value *v = gild_list(), *inner = v, *back = NULL;
	codec_buf b = {0};
	gild_error err = {0};
	size_t len, start;
	uint8_t *buf;

	for (int i = 1; i < GILD_VALUE_DEPTH_MAX; i++) {
		gild_value *l = gild_list();

		gild_list_append(inner, l);
		inner = l;
	}
	CU_ASSERT_EQUAL(codec_encode_value(&b, v, &err), GILD_OK);
	codec_buf_fini(&b);
	gild_list_append(inner, gild_int(7)); /* a scalar inside: still fine */
	CU_ASSERT_EQUAL(codec_encode_value(&b, v, &err), GILD_OK);
	codec_buf_fini(&b);
	gild_list_append(inner, gild_list()); /* one list more: too deep */
	CU_ASSERT_EQUAL(codec_encode_value(&b, v, &err), GILD_INVALID_ARGUMENT);
	CU_ASSERT_STRING_EQUAL(err.message, too_deep_text());
	gild_error_clear(&err);
	codec_buf_fini(&b);
	gild_value_free(v);

	buf = deep_bytes(GILD_VALUE_DEPTH_MAX, &len, &start);
	CU_ASSERT_EQUAL(codec_decode_value(buf + start, len, &back, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_kind(back), GILD_LIST);
	gild_value_free(back);
	free(buf);
	buf = deep_bytes(GILD_VALUE_DEPTH_MAX + 1, &len, &start);
	CU_ASSERT_EQUAL(codec_decode_value(buf + start, len, &back, &err),
	    GILD_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NULL(back);
	CU_ASSERT_STRING_EQUAL(err.message, too_deep_text());
	gild_error_clear(&err);
	free(buf);
}

/* A VALUE_ENCODED (the Python extension's form, value.h) goes into a
 * request as the bytes of the value it stands for, copies and compares
 * by them, decodes back with codec_value_plain, is refused inside another
 * value, and stream chunks can be kept encoded. */
static void
test_codec_encoded(void)
{
	gild_value *args = gild_list(), *plain = gild_list(), *e, *c, *inner;
	codec_buf b = {0}, want = {0};
	gild_error err = {0};
	codec_chunks ch = {0};
	uint8_t *bytes;
	size_t n;

	gild_list_append(plain, gild_int(-3));
	gild_list_append(plain, gild_cstr("x"));
	CU_ASSERT_EQUAL_FATAL(codec_encode_value(&b, plain, &err), GILD_OK);
	n = codec_buf_len(&b);
	bytes = malloc(n);
	memcpy(bytes, codec_buf_data(&b), n);
	codec_buf_fini(&b);
	e = value_encoded(bytes, n);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(gild_value_kind(e), VALUE_ENCODED);
	c = gild_value_copy(e);
	CU_ASSERT(gild_value_equal(c, e));
	CU_ASSERT(!gild_value_equal(c, plain));

	/* In a call: the same request as with the decoded value. */
	gild_list_append(args, c);
	CU_ASSERT_EQUAL(codec_encode_call(&b, "f", args, NULL, 0, &err), GILD_OK);
	gild_value_free(args);
	args = gild_list();
	gild_list_append(args, gild_value_copy(plain));
	CU_ASSERT_EQUAL(codec_encode_call(&want, "f", args, NULL, 0, &err),
	    GILD_OK);
	CU_ASSERT_EQUAL(codec_buf_len(&b), codec_buf_len(&want));
	CU_ASSERT(memcmp(codec_buf_data(&b), codec_buf_data(&want),
		      codec_buf_len(&b)) == 0);
	codec_buf_fini(&b);
	codec_buf_fini(&want);

	/* Inside another value: refused, not spliced unbounded. */
	inner = gild_list();
	gild_list_append(inner, gild_value_copy(e));
	CU_ASSERT_EQUAL(codec_encode_value(&b, inner, &err),
	    GILD_INVALID_ARGUMENT);
	gild_error_clear(&err);
	codec_buf_fini(&b);
	gild_value_free(inner);

	/* Back to a tree. */
	CU_ASSERT_EQUAL(codec_value_plain(&e, &err), GILD_OK);
	CU_ASSERT(gild_value_equal(e, plain));

	/* Chunks kept encoded: an item is the Value's bytes. */
	CU_ASSERT_EQUAL(codec_decode_chunks_as((const uint8_t *) "\x12\x02"
	    "\x18\x01", 4, true, &ch, &err), GILD_OK);
	CU_ASSERT_EQUAL_FATAL(ch.n_items, 1);
	CU_ASSERT_EQUAL(gild_value_kind(ch.items[0]), VALUE_ENCODED);
	CU_ASSERT_PTR_NOT_NULL(value_encoded_bytes(ch.items[0], &n));
	CU_ASSERT_EQUAL(n, 2);
	codec_chunks_fini(&ch);

	gild_value_free(e);
	gild_value_free(plain);
	gild_value_free(args);
}

static void
test_codec_call(void)
{
	/* A Call request as protobuf-c reads it. */
	gild_value *args = gild_list(), *kw = gild_map();
	codec_buf b = {0};
	Gild__V1__Request *r;
	gild_error err = {0};

	gild_list_append(args, gild_int(1));
	gild_list_append(args, gild_cstr("two"));
	gild_map_set(kw, gild_cstr("scale"), gild_float(0.5));
	CU_ASSERT_EQUAL(codec_encode_call(&b, "add", args, kw, 1500, &err), GILD_OK);
	CU_ASSERT_EQUAL(codec_encode_id(&b, 300, &err), GILD_OK);
	r = gild__v1__request__unpack(NULL, codec_buf_len(&b), codec_buf_data(&b));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->id, 300);
	CU_ASSERT_EQUAL_FATAL(r->body_case, GILD__V1__REQUEST__BODY_CALL);
	CU_ASSERT_STRING_EQUAL(r->call->function, "add");
	CU_ASSERT_EQUAL(r->call->n_args, 2);
	CU_ASSERT_EQUAL(r->call->args[0]->int_value, 1);
	CU_ASSERT_EQUAL(r->call->args[1]->str_value.len, 3);
	CU_ASSERT_EQUAL(memcmp(r->call->args[1]->str_value.data, "two", 3), 0);
	CU_ASSERT_EQUAL(r->call->n_kwargs, 1);
	CU_ASSERT_STRING_EQUAL(r->call->kwargs[0]->name, "scale");
	CU_ASSERT_DOUBLE_EQUAL(r->call->kwargs[0]->value->float_value, 0.5, 0);
	CU_ASSERT_EQUAL(r->call->timeout_ms, 1500);
	gild__v1__request__free_unpacked(r, NULL);
	codec_buf_fini(&b);

	/* No arguments at all. */
	CU_ASSERT_EQUAL(codec_encode_call(&b, "f", NULL, NULL, 0, &err), GILD_OK);
	CU_ASSERT_EQUAL(codec_encode_id(&b, 1, &err), GILD_OK);
	r = gild__v1__request__unpack(NULL, codec_buf_len(&b), codec_buf_data(&b));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->call->n_args, 0);
	CU_ASSERT_EQUAL(r->call->timeout_ms, 0); /* none: field left out */
	gild__v1__request__free_unpacked(r, NULL);
	codec_buf_fini(&b);

	/* Bad calls. */
	gild_map_set(kw, gild_int(1), gild_null());
	CU_ASSERT_EQUAL(codec_encode_call(&b, "f", args, kw, 0, &err),
	    GILD_INVALID_ARGUMENT);
	CU_ASSERT_STRING_EQUAL(err.message, "keyword argument names must be str");
	CU_ASSERT_EQUAL(codec_encode_call(&b, "f", kw, NULL, 0, &err),
	    GILD_INVALID_ARGUMENT);
	CU_ASSERT_EQUAL(codec_encode_call(&b, "f", NULL, args, 0, &err),
	    GILD_INVALID_ARGUMENT);
	CU_ASSERT_EQUAL(codec_encode_call(&b, "\xff", NULL, NULL, 0, &err),
	    GILD_INVALID_ARGUMENT);
	codec_buf_fini(&b);
	gild_error_clear(&err);

	/* Cancel, status and ping bodies. */
	CU_ASSERT_EQUAL(codec_encode_cancel(&b, 77, NULL), GILD_OK);
	CU_ASSERT_EQUAL(codec_encode_id(&b, 78, NULL), GILD_OK);
	r = gild__v1__request__unpack(NULL, codec_buf_len(&b), codec_buf_data(&b));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->body_case, GILD__V1__REQUEST__BODY_CANCEL);
	CU_ASSERT_EQUAL(r->cancel->target_id, 77);
	gild__v1__request__free_unpacked(r, NULL);
	codec_buf_fini(&b);
	CU_ASSERT_EQUAL(codec_encode_status(&b, NULL), GILD_OK);
	CU_ASSERT_EQUAL(codec_encode_id(&b, 5, NULL), GILD_OK);
	r = gild__v1__request__unpack(NULL, codec_buf_len(&b), codec_buf_data(&b));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->body_case, GILD__V1__REQUEST__BODY_STATUS);
	gild__v1__request__free_unpacked(r, NULL);
	codec_buf_fini(&b);
	CU_ASSERT_EQUAL(codec_encode_ping(&b, "xy", 2, NULL), GILD_OK);
	CU_ASSERT_EQUAL(codec_encode_id(&b, 6, NULL), GILD_OK);
	r = gild__v1__request__unpack(NULL, codec_buf_len(&b), codec_buf_data(&b));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->body_case, GILD__V1__REQUEST__BODY_PING);
	CU_ASSERT_EQUAL(r->ping->payload.len, 2);
	gild__v1__request__free_unpacked(r, NULL);
	codec_buf_fini(&b);
	gild_value_free(args);
	gild_value_free(kw);
}

static void
test_codec_reply(void)
{
	/* Replies packed by protobuf-c, scanned and decoded by codec.c. */
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Error e = GILD__V1__ERROR__INIT;
	Gild__V1__Status st = GILD__V1__STATUS__INIT;
	Gild__V1__WorkerStatus w = GILD__V1__WORKER_STATUS__INIT;
	Gild__V1__WorkerStatus *ws[1] = {&w};
	char *fns[2] = {"add", "mul"};
	Gild__V1__ServiceTime t = GILD__V1__SERVICE_TIME__INIT;
	Gild__V1__ServiceTime *ts[1] = {&t};
	uint8_t buf[512];
	size_t n;
	codec_reply cr;
	gild_error err = {0};
	gild_value *m = NULL;

	r.id = 12345678901ull;
	r.body_case = GILD__V1__REPLY__BODY_ERROR;
	r.error = &e;
	e.code = GILD__V1__CODE__PYTHON_ERROR;
	e.message = "boom";
	e.python_type = "ValueError";
	e.traceback = "Traceback (most recent call last):\n";
	n = gild__v1__reply__pack(&r, buf);
	CU_ASSERT_EQUAL(codec_scan_reply(buf, n, &cr), 0);
	CU_ASSERT_EQUAL(cr.id, 12345678901ull);
	CU_ASSERT_EQUAL(cr.body, GILD__V1__REPLY__BODY_ERROR);
	CU_ASSERT_EQUAL(codec_decode_error(cr.data, cr.len, &err), GILD_OK);
	CU_ASSERT_EQUAL(err.code, GILD_PYTHON_ERROR);
	CU_ASSERT_STRING_EQUAL(err.message, "boom");
	CU_ASSERT_STRING_EQUAL(err.python_type, "ValueError");
	CU_ASSERT_STRING_EQUAL(err.traceback, "Traceback (most recent call last):\n");
	gild_error_clear(&err);

	e.code = GILD__V1__CODE__NOT_FOUND;
	e.python_type = "";
	e.traceback = "";
	n = gild__v1__reply__pack(&r, buf);
	CU_ASSERT_EQUAL(codec_scan_reply(buf, n, &cr), 0);
	CU_ASSERT_EQUAL(codec_decode_error(cr.data, cr.len, &err), GILD_OK);
	CU_ASSERT_EQUAL(err.code, GILD_NOT_FOUND);
	CU_ASSERT_PTR_NULL(err.python_type);
	CU_ASSERT_PTR_NULL(err.traceback);
	gild_error_clear(&err);

	r.body_case = GILD__V1__REPLY__BODY_STATUS;
	r.status = &st;
	st.server_version = "0.1.0";
	st.app = "app.py";
	st.runtime = "process";
	st.n_functions = 2;
	st.functions = fns;
	st.n_workers = 1;
	st.workers = ws;
	w.slot = 0;
	w.pid = 4242;
	w.state = "idle";
	w.jobs_done = UINT64_MAX;
	w.restarts = 2;
	w.waiting = 5;
	st.queued = 3;
	st.uptime_s = 1.5;
	st.python_version = "3.11.2";
	st.state = "draining";
	st.threads = 8;
	st.shm_bytes = UINT64_C(3) << 32;
	st.gil_enabled = false;
	t.function = "add";
	t.us = 250;
	st.n_service_times = 1;
	st.service_times = ts;
	n = gild__v1__reply__pack(&r, buf);
	CU_ASSERT_EQUAL(codec_scan_reply(buf, n, &cr), 0);
	CU_ASSERT_EQUAL(cr.body, GILD__V1__REPLY__BODY_STATUS);
	{
		Gild__V1__Status *s = gild__v1__status__unpack(NULL, cr.len, cr.data);
		const gild_value *wk;
		char *dec;

		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		CU_ASSERT_EQUAL(codec_status_to_value(s, &m), GILD_OK);
		gild__v1__status__free_unpacked(s, NULL);
		CU_ASSERT_STRING_EQUAL(gild_value_str(gild_map_get(m,
		    "server_version"), NULL), "0.1.0");
		CU_ASSERT_STRING_EQUAL(gild_value_str(gild_map_get(m, "runtime"),
		    NULL), "process");
		CU_ASSERT_EQUAL(gild_value_len(gild_map_get(m, "functions")), 2);
		CU_ASSERT_EQUAL(gild_value_int(gild_map_get(m, "queued")), 3);
		CU_ASSERT_EQUAL(gild_value_int(gild_map_get(m, "in_flight")), 0);
		CU_ASSERT_DOUBLE_EQUAL(gild_value_float(gild_map_get(m,
		    "uptime_s")), 1.5, 0);
		wk = gild_value_item(gild_map_get(m, "workers"), 0);
		CU_ASSERT_EQUAL(gild_value_int(gild_map_get(wk, "pid")), 4242);
		CU_ASSERT_EQUAL(gild_value_int(gild_map_get(wk, "waiting")), 5);
		CU_ASSERT_STRING_EQUAL(gild_value_str(gild_map_get(wk, "state"),
		    NULL), "idle");
		dec = gild_value_to_decimal(gild_map_get(wk, "jobs_done"));
		CU_ASSERT_STRING_EQUAL(dec, "18446744073709551615");
		free(dec);
		CU_ASSERT_STRING_EQUAL(gild_value_str(gild_map_get(m, "state"),
		    NULL), "draining");
		CU_ASSERT_EQUAL(gild_value_int(gild_map_get(m, "threads")), 8);
		CU_ASSERT_EQUAL(gild_value_kind(gild_map_get(m, "gil_enabled")),
		    GILD_BOOL);
		CU_ASSERT_EQUAL(gild_value_bool(gild_map_get(m, "gil_enabled")),
		    false);
		CU_ASSERT_EQUAL(gild_value_int(gild_map_get(m, "shm_bytes")),
		    INT64_C(3) << 32);
		/* Only the functions with an estimate: "mul" has none. */
		CU_ASSERT_EQUAL(gild_value_len(gild_map_get(m, "service_us")), 1);
		CU_ASSERT_EQUAL(gild_value_int(gild_map_get(gild_map_get(m,
		    "service_us"), "add")), 250);
		CU_ASSERT_EQUAL(gild_value_kind(gild_map_get(m,
		    "shm_requests")), GILD_INT);
		CU_ASSERT_EQUAL(gild_value_len(m), 19);
		gild_value_free(m);
	}
	CU_ASSERT_EQUAL(codec_scan_reply((const uint8_t *) "\x0a\x01", 2, &cr), -1);
	CU_ASSERT_EQUAL(codec_scan_reply((const uint8_t *) "\x08\x07", 2, &cr), 0);
	CU_ASSERT_EQUAL(cr.id, 7);
	CU_ASSERT_EQUAL(cr.body, 0);
}

static void
test_codec_stream(void)
{
	/* Requests as protobuf-c reads them. */
	gild_value *args = gild_list();
	Gild__V1__Request *q;
	codec_buf b = {0};
	gild_error err = {0};

	gild_list_append(args, gild_int(10));
	CU_ASSERT_EQUAL(codec_encode_stream_call(&b, "count", args, NULL, 250,
	    4096, &err), GILD_OK);
	CU_ASSERT_EQUAL(codec_encode_id(&b, 9, &err), GILD_OK);
	q = gild__v1__request__unpack(NULL, codec_buf_len(&b), codec_buf_data(&b));
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT_EQUAL(q->id, 9);
	CU_ASSERT_EQUAL_FATAL(q->body_case, GILD__V1__REQUEST__BODY_CALL);
	CU_ASSERT_STRING_EQUAL(q->call->function, "count");
	CU_ASSERT_EQUAL(q->call->n_args, 1);
	CU_ASSERT_EQUAL(q->call->args[0]->int_value, 10);
	CU_ASSERT_EQUAL(q->call->timeout_ms, 250);
	CU_ASSERT_TRUE(q->call->stream);
	CU_ASSERT_EQUAL(q->call->window, 4096);
	gild__v1__request__free_unpacked(q, NULL);
	codec_buf_fini(&b);
	/* A plain call sends neither field. */
	CU_ASSERT_EQUAL(codec_encode_call(&b, "count", args, NULL, 0, &err),
	    GILD_OK);
	q = gild__v1__request__unpack(NULL, codec_buf_len(&b), codec_buf_data(&b));
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT_FALSE(q->call->stream);
	CU_ASSERT_EQUAL(q->call->window, 0);
	gild__v1__request__free_unpacked(q, NULL);
	codec_buf_fini(&b);
	CU_ASSERT_EQUAL(codec_encode_stream_call(&b, "\xff", NULL, NULL, 0, 0,
	    &err), GILD_INVALID_ARGUMENT);
	codec_buf_fini(&b);
	gild_error_clear(&err);

	CU_ASSERT_EQUAL(codec_encode_stream_next(&b, 12345678901ull, 60, NULL),
	    GILD_OK);
	CU_ASSERT_EQUAL(codec_encode_id(&b, 77, NULL), GILD_OK);
	q = gild__v1__request__unpack(NULL, codec_buf_len(&b), codec_buf_data(&b));
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT_EQUAL(q->id, 77);
	CU_ASSERT_EQUAL_FATAL(q->body_case, GILD__V1__REQUEST__BODY_STREAM_NEXT);
	CU_ASSERT_EQUAL(q->stream_next->call_id, 12345678901ull);
	CU_ASSERT_EQUAL(q->stream_next->max, 60);
	gild__v1__request__free_unpacked(q, NULL);
	codec_buf_fini(&b);
	/* max 0 (no limit) is the field left out. */
	CU_ASSERT_EQUAL(codec_encode_stream_next(&b, 3, 0, NULL), GILD_OK);
	q = gild__v1__request__unpack(NULL, codec_buf_len(&b), codec_buf_data(&b));
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT_EQUAL(q->stream_next->call_id, 3);
	CU_ASSERT_EQUAL(q->stream_next->max, 0);
	gild__v1__request__free_unpacked(q, NULL);
	codec_buf_fini(&b);
	gild_value_free(args);
}

/* Exec requests as protobuf-c reads them, and what codec refuses. */
static void
test_codec_exec(void)
{
	gild_value *vars = gild_map(), *p = gild_pickle("\x80\x04]\x94.", 5);
	Gild__V1__Request *q;
	codec_buf b = {0};
	gild_error err = {0};
	size_t n;

	gild_map_set(vars, gild_cstr("x"), gild_int(21));
	gild_map_set(vars, gild_cstr("p"), gild_value_copy(p));
	CU_ASSERT_EQUAL(codec_encode_exec(&b, "result = x", 10, vars, "cell.py",
	    300, &err), GILD_OK);
	CU_ASSERT_EQUAL(codec_encode_id(&b, 5, &err), GILD_OK);
	q = gild__v1__request__unpack(NULL, codec_buf_len(&b), codec_buf_data(&b));
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT_EQUAL(q->id, 5);
	CU_ASSERT_EQUAL_FATAL(q->body_case, GILD__V1__REQUEST__BODY_EXEC);
	CU_ASSERT_EQUAL(q->exec->source.len, 10);
	CU_ASSERT(memcmp(q->exec->source.data, "result = x", 10) == 0);
	CU_ASSERT_EQUAL(q->exec->timeout_ms, 300);
	CU_ASSERT_STRING_EQUAL(q->exec->filename, "cell.py");
	CU_ASSERT_PTR_NOT_NULL_FATAL(q->exec->variables);
	CU_ASSERT_EQUAL_FATAL(q->exec->variables->n_entries, 2);
	CU_ASSERT_EQUAL(q->exec->variables->entries[0]->value->int_value, 21);
	CU_ASSERT_EQUAL(q->exec->variables->entries[1]->value->kind_case,
	    GILD__V1__VALUE__KIND_PICKLE_VALUE);
	n = q->exec->variables->entries[1]->value->pickle_value.len;
	CU_ASSERT_EQUAL(n, 5);
	gild__v1__request__free_unpacked(q, NULL);
	codec_buf_fini(&b);
	/* The least: an empty source, no variables, no options. */
	CU_ASSERT_EQUAL(codec_encode_exec(&b, "", 0, NULL, NULL, 0, &err),
	    GILD_OK);
	q = gild__v1__request__unpack(NULL, codec_buf_len(&b), codec_buf_data(&b));
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT_EQUAL_FATAL(q->body_case, GILD__V1__REQUEST__BODY_EXEC);
	CU_ASSERT_PTR_NULL(q->exec->variables);
	CU_ASSERT_EQUAL(q->exec->timeout_ms, 0);
	gild__v1__request__free_unpacked(q, NULL);
	codec_buf_fini(&b);
	/* Refused: not a map, a key that is not str, source not UTF-8. */
	CU_ASSERT_EQUAL(codec_encode_exec(&b, "x", 1, p, NULL, 0, &err),
	    GILD_INVALID_ARGUMENT);
	codec_buf_fini(&b);
	gild_error_clear(&err);
	gild_value_free(vars);
	vars = gild_map();
	gild_map_set(vars, gild_int(1), gild_int(2));
	CU_ASSERT_EQUAL(codec_encode_exec(&b, "x", 1, vars, NULL, 0, &err),
	    GILD_INVALID_ARGUMENT);
	CU_ASSERT(err.message && strstr(err.message, "names must be str"));
	codec_buf_fini(&b);
	gild_error_clear(&err);
	CU_ASSERT_EQUAL(codec_encode_exec(&b, "\xff", 1, NULL, NULL, 0, &err),
	    GILD_INVALID_ARGUMENT);
	codec_buf_fini(&b);
	gild_error_clear(&err);
	gild_value_free(vars);
	/* A pickle is kept as bytes: copied, compared, its bytes read back. */
	vars = gild_value_copy(p);
	CU_ASSERT_TRUE(gild_value_equal(vars, p));
	CU_ASSERT_EQUAL(gild_value_kind(vars), GILD_PICKLE);
	CU_ASSERT_PTR_NOT_NULL(gild_value_bytes(vars, &n));
	CU_ASSERT_EQUAL(n, 5);
	gild_value_free(p);
	/* ... and is not the same value as those bytes. */
	p = gild_bytes("\x80\x04]\x94.", 5);
	CU_ASSERT_FALSE(gild_value_equal(vars, p));
	gild_value_free(vars);
	gild_value_free(p);
}

static void
test_codec_chunks(void)
{
	/* Chunks packed by protobuf-c, scanned and decoded by codec.c. */
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Chunks ch = GILD__V1__CHUNKS__INIT;
	Gild__V1__Error e = GILD__V1__ERROR__INIT;
	Gild__V1__Value a = GILD__V1__VALUE__INIT, b = GILD__V1__VALUE__INIT;
	Gild__V1__Value *items[2] = {&a, &b};
	uint8_t buf[256];
	size_t n;
	codec_reply cr;
	codec_chunks out = {0};
	gild_error err = {0};

	a.kind_case = GILD__V1__VALUE__KIND_INT_VALUE;
	a.int_value = -5;
	b.kind_case = GILD__V1__VALUE__KIND_STR_VALUE;
	b.str_value.data = (uint8_t *) "hi";
	b.str_value.len = 2;
	r.id = 41;
	r.body_case = GILD__V1__REPLY__BODY_CHUNKS;
	r.chunks = &ch;
	ch.first_seq = 1000;
	ch.n_items = 2;
	ch.items = items;
	n = gild__v1__reply__pack(&r, buf);
	CU_ASSERT_EQUAL(codec_scan_reply(buf, n, &cr), 0);
	CU_ASSERT_EQUAL(cr.id, 41);
	CU_ASSERT_EQUAL_FATAL(cr.body, GILD__V1__REPLY__BODY_CHUNKS);
	CU_ASSERT_EQUAL(codec_decode_chunks(cr.data, cr.len, &out, &err),
	    GILD_OK);
	CU_ASSERT_EQUAL(out.first_seq, 1000);
	CU_ASSERT_EQUAL_FATAL(out.n_items, 2);
	CU_ASSERT_EQUAL(gild_value_int(out.items[0]), -5);
	CU_ASSERT_STRING_EQUAL(gild_value_str(out.items[1], NULL), "hi");
	CU_ASSERT_FALSE(out.end);
	CU_ASSERT_EQUAL(out.error.code, GILD_OK);
	codec_chunks_fini(&out);
	CU_ASSERT_EQUAL(out.n_items, 0);
	CU_ASSERT_PTR_NULL(out.items);

	/* The end, with an error after one more item. */
	ch.first_seq = 1002;
	ch.n_items = 1;
	ch.end = true;
	ch.error = &e;
	e.code = GILD__V1__CODE__PYTHON_ERROR;
	e.message = "boom";
	e.python_type = "ValueError";
	e.traceback = "Traceback\n";
	n = gild__v1__reply__pack(&r, buf);
	CU_ASSERT_EQUAL(codec_scan_reply(buf, n, &cr), 0);
	CU_ASSERT_EQUAL(codec_decode_chunks(cr.data, cr.len, &out, &err),
	    GILD_OK);
	CU_ASSERT_EQUAL(out.first_seq, 1002);
	CU_ASSERT_EQUAL(out.n_items, 1);
	CU_ASSERT_TRUE(out.end);
	CU_ASSERT_EQUAL(out.error.code, GILD_PYTHON_ERROR);
	CU_ASSERT_STRING_EQUAL(out.error.message, "boom");
	CU_ASSERT_STRING_EQUAL(out.error.python_type, "ValueError");
	CU_ASSERT_STRING_EQUAL(out.error.traceback, "Traceback\n");
	codec_chunks_fini(&out);

	/* An empty end: no fields but end. */
	CU_ASSERT_EQUAL(codec_decode_chunks((const uint8_t *) "\x18\x01", 2,
	    &out, &err), GILD_OK);
	CU_ASSERT_TRUE(out.end);
	CU_ASSERT_EQUAL(out.n_items, 0);
	CU_ASSERT_EQUAL(out.first_seq, 0);
	codec_chunks_fini(&out);
	CU_ASSERT_EQUAL(codec_decode_chunks(NULL, 0, &out, &err), GILD_OK);
	CU_ASSERT_FALSE(out.end);
	codec_chunks_fini(&out);

	/* Bad bytes: an item with no kind, an item of the wrong wire type, a
	 * truncated field, an error that is not an Error. Nothing is kept. */
	CU_ASSERT_EQUAL(codec_decode_chunks((const uint8_t *) "\x12\x02\x18\x02"
	    "\x12\x00", 6, &out, &err), GILD_INVALID_ARGUMENT);
	CU_ASSERT_STRING_EQUAL(err.message, "value has no kind set");
	CU_ASSERT_EQUAL(out.n_items, 0);
	CU_ASSERT_PTR_NULL(out.items);
	CU_ASSERT_EQUAL(codec_decode_chunks((const uint8_t *) "\x10\x01", 2,
	    &out, &err), GILD_INVALID_ARGUMENT);
	CU_ASSERT_STRING_EQUAL(err.message, "malformed chunks");
	CU_ASSERT_EQUAL(codec_decode_chunks((const uint8_t *) "\x12\x05\x18",
	    3, &out, &err), GILD_INVALID_ARGUMENT);
	CU_ASSERT_EQUAL(codec_decode_chunks((const uint8_t *) "\x22\x02\x08\x80",
	    4, &out, &err), GILD_INVALID_ARGUMENT);
	CU_ASSERT_STRING_EQUAL(err.message, "malformed stream error");
	CU_ASSERT_EQUAL(out.n_items, 0);
	gild_error_clear(&err);
	codec_chunks_fini(NULL);
}

static void
test_code_names(void)
{
	CU_ASSERT_STRING_EQUAL(gild_code_name(GILD_OK), "OK");
	CU_ASSERT_STRING_EQUAL(gild_code_name(GILD_NOT_FOUND), "NOT_FOUND");
	CU_ASSERT_STRING_EQUAL(gild_code_name(GILD_PYTHON_ERROR), "PYTHON_ERROR");
	CU_ASSERT_STRING_EQUAL(gild_code_name(GILD_WORKER_LOST), "WORKER_LOST");
	CU_ASSERT_STRING_EQUAL(gild_code_name(999), "UNKNOWN");
	CU_ASSERT_STRING_EQUAL(gild_code_name(GILD_STREAM_END), "STREAM_END");
	gild_error_clear(NULL);
	gild_result_clear(NULL);
}

/* gild.h's codes are gild.v1.Code's, number for number and name for name
 * (the names come from gild.proto's descriptor: proto/codes.c); and every
 * code of gild.proto has its GILD_ constant. */
static void
test_codes_match_the_proto(void)
{
#define CODE(c) {GILD_##c, #c}
	static const struct {
		int code;
		const char *name;
	} h[] = {CODE(OK), CODE(CANCELLED), CODE(UNKNOWN),
	    CODE(INVALID_ARGUMENT), CODE(DEADLINE_EXCEEDED), CODE(NOT_FOUND),
	    CODE(ALREADY_EXISTS), CODE(PERMISSION_DENIED),
	    CODE(RESOURCE_EXHAUSTED), CODE(FAILED_PRECONDITION),
	    CODE(UNIMPLEMENTED), CODE(INTERNAL), CODE(UNAVAILABLE),
	    CODE(UNAUTHENTICATED), CODE(WORKER_LOST), CODE(PYTHON_ERROR)};
#undef CODE
	size_t n = sizeof(h) / sizeof(h[0]);

	CU_ASSERT_EQUAL(codes_count(), n);
	CU_ASSERT(codes_count() <= CODES_MAX);
	for (size_t i = 0; i < n; i++) {
		CU_ASSERT_PTR_NOT_NULL(codes_name(h[i].code));
		if (codes_name(h[i].code) != NULL)
			CU_ASSERT_STRING_EQUAL(codes_name(h[i].code), h[i].name);
		CU_ASSERT_EQUAL(codes_at((size_t) codes_index(h[i].code)),
		    h[i].code);
	}
	for (size_t i = 1; i < codes_count(); i++)
		CU_ASSERT(codes_at(i - 1) < codes_at(i));
	CU_ASSERT_EQUAL(codes_index(999), -1);
	CU_ASSERT_PTR_NULL(codes_name(999));
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("values", NULL, NULL);
	CU_add_test(s, "scalars", test_scalars);
	CU_add_test(s, "containers", test_containers);
	CU_add_test(s, "copy and equal", test_copy_equal);
	CU_add_test(s, "code names", test_code_names);
	CU_add_test(s, "gild.h's codes are gild.proto's",
	    test_codes_match_the_proto);
	s = CU_add_suite("integers", NULL, NULL);
	CU_add_test(s, "bigint normalisation", test_bigint_normalise);
	CU_add_test(s, "decimal round trips", test_decimal);
	CU_add_test(s, "bigint bytes", test_bigint_bytes);
	s = CU_add_suite("validation", NULL, NULL);
	CU_add_test(s, "utf-8", test_utf8);
	CU_add_test(s, "tensor sizes", test_tensor);
	s = CU_add_suite("codec", NULL, NULL);
	CU_add_test(s, "encoded values (the Python extension's)", test_codec_encoded);
	CU_add_test(s, "every kind through protobuf-c", test_codec_kinds);
	CU_add_test(s, "fields protobuf-c sees", test_codec_pb_fields);
	CU_add_test(s, "str with NUL", test_codec_nul_string);
	CU_add_test(s, "bad input", test_codec_bad_input);
	CU_add_test(s, "nesting depth", test_codec_depth);
	CU_add_test(s, "requests", test_codec_call);
	CU_add_test(s, "exec requests and pickles", test_codec_exec);
	CU_add_test(s, "replies", test_codec_reply);
	CU_add_test(s, "stream requests", test_codec_stream);
	CU_add_test(s, "stream chunks", test_codec_chunks);
	return test_run_all();
}
