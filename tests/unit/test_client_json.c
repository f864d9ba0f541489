/* Unit tests of gildctl's JSON <-> value conversion (client-lib/valjson.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "gild.h"
#include "valjson.h"
#include "test_main.h"

/* Parses `in`, dumps the value on one line, compares with `out`. */
static void
test_parse_dump(void)
{
	static const struct {
		const char *in, *out;
		gild_kind kind;
	} cases[] = {
		{"null", "null", GILD_NULL},
		{"true", "true", GILD_BOOL},
		{"false", "false", GILD_BOOL},
		{"0", "0", GILD_INT},
		{"-17", "-17", GILD_INT},
		{" 42 ", "42", GILD_INT},
		{"9223372036854775807", "9223372036854775807", GILD_INT},
		{"-9223372036854775808", "-9223372036854775808", GILD_INT},
		{"9223372036854775808", "9223372036854775808", GILD_BIGINT},
		{"123456789012345678901234567890", "123456789012345678901234567890",
		    GILD_BIGINT},
		{"-123456789012345678901234567890", "-123456789012345678901234567890",
		    GILD_BIGINT},
		{"1.5", "1.5", GILD_FLOAT},
		{"1.0", "1.0", GILD_FLOAT},
		{"-0.0", "-0.0", GILD_FLOAT},
		{"0.1", "0.1", GILD_FLOAT},
		{"1e16", "1e+16", GILD_FLOAT},
		{"1e15", "1000000000000000.0", GILD_FLOAT},
		{"1.5e-7", "1.5e-07", GILD_FLOAT},
		{"0.0001", "0.0001", GILD_FLOAT},
		{"123.456", "123.456", GILD_FLOAT},
		{"5e-324", "5e-324", GILD_FLOAT},
		{"1.7976931348623157e308", "1.7976931348623157e+308", GILD_FLOAT},
		{"NaN", "NaN", GILD_FLOAT},
		{"Infinity", "Infinity", GILD_FLOAT},
		{"-Infinity", "-Infinity", GILD_FLOAT},
		{"\"s\"", "\"s\"", GILD_STR},
		{"\"\"", "\"\"", GILD_STR},
		{"\"h\\u00e9llo \\u20ac\"", "\"h\xc3\xa9llo \xe2\x82\xac\"", GILD_STR},
		{"\"q\\\"b\\\\n\\n\\t\\r\\b\\f\\u0001\\u001f\"",
		    "\"q\\\"b\\\\n\\n\\t\\r\\b\\f\\u0001\\u001f\"", GILD_STR},
		{"\"nul\\u0000in\"", "\"nul\\u0000in\"", GILD_STR},
		{"[]", "[]", GILD_LIST},
		{"[1,2]", "[1, 2]", GILD_LIST},
		{"[1, [\"a\", null], {}]", "[1, [\"a\", null], {}]", GILD_LIST},
		{"{}", "{}", GILD_MAP},
		{"{\"a\":1}", "{\"a\": 1}", GILD_MAP},
		{"{\"b\": 1, \"a\": [true]}", "{\"b\": 1, \"a\": [true]}", GILD_MAP},
		{"{\"$bytes\": \"AAH/\"}", "{\"$bytes\": \"AAH/\"}", GILD_BYTES},
		{"{\"$bytes\": \"\"}", "{\"$bytes\": \"\"}", GILD_BYTES},
		{"{\"$bytes\": \"YQ\"}", "{\"$bytes\": \"YQ==\"}", GILD_BYTES},
		{"{\"$pickle\": \"gARLAS4=\"}", "{\"$pickle\": \"gARLAS4=\"}",
		    GILD_PICKLE},
		{"{\"$map\": [[1, \"one\"], [[2], null]]}",
		    "{\"$map\": [[1, \"one\"], [[2], null]]}", GILD_MAP},
		{"{\"$map\": [[\"a\", 1]]}", "{\"a\": 1}", GILD_MAP},
		{"{\"$map\": []}", "{}", GILD_MAP},
		{"{\"$tensor\": {\"dtype\": \"int16\", \"shape\": [2], "
		    "\"base64\": \"AQACAA==\"}}",
		    "{\"$tensor\": {\"dtype\": \"int16\", \"shape\": [2], "
		    "\"base64\": \"AQACAA==\"}}", GILD_TENSOR},
		{"{\"$tensor\": {\"dtype\": \"float64\", \"shape\": [], "
		    "\"base64\": \"AAAAAAAA8D8=\"}}",
		    "{\"$tensor\": {\"dtype\": \"float64\", \"shape\": [], "
		    "\"base64\": \"AAAAAAAA8D8=\"}}", GILD_TENSOR},
		/* Not an extended form: more than one key, or an unknown one. */
		{"{\"$bytes\": \"AA==\", \"x\": 1}", "{\"$bytes\": \"AA==\", \"x\": 1}",
		    GILD_MAP},
		{"{\"$other\": 1}", "{\"$other\": 1}", GILD_MAP},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gild_value *v = NULL;
		char err[200], *out;

		CU_ASSERT_EQUAL(valjson_parse(cases[i].in, &v, err, sizeof(err)), 0);
		CU_ASSERT_PTR_NOT_NULL_FATAL(v);
		CU_ASSERT_EQUAL(gild_value_kind(v), cases[i].kind);
		out = valjson_dump(v, 0);
		CU_ASSERT_PTR_NOT_NULL_FATAL(out);
		CU_ASSERT_STRING_EQUAL(out, cases[i].out);
		free(out);
		gild_value_free(v);
	}
}

static void
test_parse_values(void)
{
	gild_value *v = NULL;
	size_t n;
	const char *s;

	CU_ASSERT_EQUAL(valjson_parse("\"a\\u0000b\"", &v, NULL, 0), 0);
	s = gild_value_str(v, &n);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(memcmp(s, "a\0b", 3), 0);
	gild_value_free(v);

	CU_ASSERT_EQUAL(valjson_parse("{\"$bytes\": \"AAH/\"}", &v, NULL, 0), 0);
	CU_ASSERT_EQUAL(memcmp(gild_value_bytes(v, &n), "\x00\x01\xff", 3), 0);
	CU_ASSERT_EQUAL(n, 3);
	gild_value_free(v);

	CU_ASSERT_EQUAL(valjson_parse("NaN", &v, NULL, 0), 0);
	CU_ASSERT_TRUE(isnan(gild_value_float(v)));
	gild_value_free(v);

	CU_ASSERT_EQUAL(valjson_parse("{\"$map\": [[1, 2]]}", &v, NULL, 0), 0);
	CU_ASSERT_EQUAL(gild_value_int(gild_map_key(v, 0)), 1);
	CU_ASSERT_EQUAL(gild_value_int(gild_map_val(v, 0)), 2);
	gild_value_free(v);
}

static void
test_parse_errors(void)
{
	static const struct {
		const char *in, *msg_start;
	} cases[] = {
		{"", "not a JSON value: "},
		{"{bad", "not a JSON value: "},
		{"[1,", "not a JSON value: "},
		{"hello", "not a JSON value: "},
		{"nan", "not a JSON value: "},
		{"[99999999999999999999999]", "not a JSON value: "},
		{"{\"$bytes\": 3}", "$bytes needs a base64 string"},
		{"{\"$bytes\": \"A\"}", "$bytes needs a base64 string"},
		{"{\"$bytes\": \"!!!!\"}", "$bytes needs a base64 string"},
		{"{\"$pickle\": 1}", "$pickle needs a base64 string"},
		{"{\"$map\": [[1]]}", "$map needs a list of [key, value] pairs"},
		{"{\"$map\": 1}", "$map needs a list of [key, value] pairs"},
		{"{\"$tensor\": {\"dtype\": \"int16\", \"shape\": [3], "
		    "\"base64\": \"AQACAA==\"}}", "$tensor: unknown dtype 'int16', or 4 bytes"},
		{"{\"$tensor\": {\"dtype\": \"int16\", \"shape\": [-1], "
		    "\"base64\": \"\"}}", "$tensor shape must be"},
		{"{\"$tensor\": {\"dtype\": \"int16\"}}", "$tensor needs an object"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gild_value *v = NULL;
		char err[200] = "unset";

		CU_ASSERT_EQUAL(valjson_parse(cases[i].in, &v, err, sizeof(err)), -1);
		CU_ASSERT_PTR_NULL(v);
		CU_ASSERT_EQUAL(strncmp(err, cases[i].msg_start,
		    strlen(cases[i].msg_start)), 0);
	}
}

static void
test_dump_built(void)
{
	gild_value *t = gild_tuple(), *m = gild_map(), *v;
	char *out;

	gild_list_append(t, gild_int(1));
	gild_list_append(t, gild_float(2.0));
	out = valjson_dump(t, 0);
	CU_ASSERT_STRING_EQUAL(out, "[1, 2.0]"); /* tuples are arrays */
	free(out);

	gild_map_set(m, gild_int(1), gild_bytes("hi", 2));
	gild_map_set(m, gild_cstr("k"), t);
	out = valjson_dump(m, 0);
	CU_ASSERT_STRING_EQUAL(out,
	    "{\"$map\": [[1, {\"$bytes\": \"aGk=\"}], [\"k\", [1, 2.0]]]}");
	free(out);
	gild_value_free(m);

	v = gild_int_from_decimal("-1606938044258990275541962092341162602522202993782792835301376");
	out = valjson_dump(v, 0);
	CU_ASSERT_STRING_EQUAL(out,
	    "-1606938044258990275541962092341162602522202993782792835301376");
	free(out);
	gild_value_free(v);

	v = gild_float(-INFINITY);
	out = valjson_dump(v, 2);
	CU_ASSERT_STRING_EQUAL(out, "-Infinity");
	free(out);
	gild_value_free(v);
}

/* Indented output, as Python's json.dumps(v, indent=2) writes it. */
static void
test_dump_indent(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"[]", "[]"},
		{"{}", "{}"},
		{"1", "1"},
		{"{\"a\": [1, {\"b\": []}], \"c\": {}}",
		    "{\n  \"a\": [\n    1,\n    {\n      \"b\": []\n    }\n  ],\n"
		    "  \"c\": {}\n}"},
		{"{\"$bytes\": \"AA==\"}", "{\n  \"$bytes\": \"AA==\"\n}"},
		{"{\"$map\": [[1, 2]]}",
		    "{\n  \"$map\": [\n    [\n      1,\n      2\n    ]\n  ]\n}"},
		{"{\"$tensor\": {\"dtype\": \"uint8\", \"shape\": [1], "
		    "\"base64\": \"Kg==\"}}",
		    "{\n  \"$tensor\": {\n    \"dtype\": \"uint8\",\n"
		    "    \"shape\": [\n      1\n    ],\n    \"base64\": \"Kg==\"\n"
		    "  }\n}"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gild_value *v = NULL;
		char *out;

		CU_ASSERT_EQUAL_FATAL(valjson_parse(cases[i].in, &v, NULL, 0), 0);
		out = valjson_dump(v, 2);
		CU_ASSERT_STRING_EQUAL(out, cases[i].out);
		free(out);
		gild_value_free(v);
	}
}

static void
test_base64(void)
{
	static const struct {
		const char *raw, *b64;
		size_t n;
	} cases[] = {
		{"", "", 0},
		{"f", "Zg==", 1},
		{"fo", "Zm8=", 2},
		{"foo", "Zm9v", 3},
		{"foob", "Zm9vYg==", 4},
		{"fooba", "Zm9vYmE=", 5},
		{"foobar", "Zm9vYmFy", 6},
		{"\x00\xff\xfe", "AP/+", 3},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *e = valjson_base64_encode(cases[i].raw, cases[i].n);
		uint8_t *d = NULL;
		size_t n = 99;

		CU_ASSERT_STRING_EQUAL(e, cases[i].b64);
		CU_ASSERT_EQUAL(valjson_base64_decode(e, strlen(e), &d, &n), 0);
		CU_ASSERT_EQUAL(n, cases[i].n);
		CU_ASSERT_EQUAL(memcmp(d, cases[i].raw, n), 0);
		free(d);
		free(e);
	}
	{
		uint8_t *d = NULL;
		size_t n;

		CU_ASSERT_EQUAL(valjson_base64_decode("Zm9vYg", 6, &d, &n), 0);
		CU_ASSERT_EQUAL(n, 4);
		free(d);
		CU_ASSERT_EQUAL(valjson_base64_decode("Z", 1, &d, &n), -1);
		CU_ASSERT_EQUAL(valjson_base64_decode("Zm9=v", 5, &d, &n), -1);
		CU_ASSERT_EQUAL(valjson_base64_decode("Zg=", 3, &d, &n), -1);
	}
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("valjson", NULL, NULL);
	CU_add_test(s, "parse then dump", test_parse_dump);
	CU_add_test(s, "parsed values", test_parse_values);
	CU_add_test(s, "parse errors", test_parse_errors);
	CU_add_test(s, "dump of built values", test_dump_built);
	CU_add_test(s, "indented dump", test_dump_indent);
	CU_add_test(s, "base64", test_base64);
	return test_run_all();
}
