/* Tests of proto/wire.c against protobuf-c's own encoding, and of the
 * contract the front end relies on: a FromWorker minus its job_id, behind a
 * Reply.id, decodes as a gild.v1.Reply. */
#include "fields.h"
#include "gild.pb-c.h"
#include "wire.h"
#include "worker.pb-c.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>
#include "test_main.h"

static void
test_varints(void)
{
	static const uint64_t cases[] = {0, 1, 127, 128, 300, 16383, 16384,
	    (1ull << 32) - 1, 1ull << 63, UINT64_MAX};
	uint8_t buf[WIRE_MAX_VARINT + 2];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* field 1 varint = cases[i]; read back with wire_next */
		size_t n = wire_put_tag(buf, 1, WIRE_VARINT);
		n += wire_put_varint(buf + n, cases[i]);
		const uint8_t *p = buf;
		wire_field f;
		CU_ASSERT_EQUAL(wire_next(&p, buf + n, &f), 1);
		CU_ASSERT_EQUAL(f.number, 1);
		CU_ASSERT_EQUAL(f.type, WIRE_VARINT);
		CU_ASSERT_EQUAL(f.value, cases[i]);
		CU_ASSERT_EQUAL(f.total, n);
		CU_ASSERT_EQUAL(wire_next(&p, buf + n, &f), 0);
	}
	CU_ASSERT_EQUAL(wire_put_varint(buf, UINT64_MAX), 10);
}

static void
test_scan_protobuf_c_request(void)
{
	Gild__V1__Request req = GILD__V1__REQUEST__INIT;
	Gild__V1__Call call = GILD__V1__CALL__INIT;
	Gild__V1__Value arg = GILD__V1__VALUE__INIT, *args[] = {&arg};
	uint8_t *buf;
	size_t len;
	wire_field f, fn;

	arg.kind_case = GILD__V1__VALUE__KIND_STR_VALUE;
	arg.str_value.data = (uint8_t *) "hi";
	arg.str_value.len = 2;
	call.function = "echo";
	call.n_args = 1;
	call.args = args;
	req.id = 1234567890123ull;
	req.body_case = GILD__V1__REQUEST__BODY_CALL;
	req.call = &call;
	len = gild__v1__request__get_packed_size(&req);
	buf = malloc(len);
	gild__v1__request__pack(&req, buf);

	CU_ASSERT_EQUAL(wire_check(buf, len), 0);
	CU_ASSERT_EQUAL(wire_find(buf, len, 1, &f), 1);
	CU_ASSERT_EQUAL(f.value, 1234567890123ull);
	CU_ASSERT_EQUAL(wire_find(buf, len, 2, &f), 1);
	CU_ASSERT_EQUAL(f.type, WIRE_LEN);
	CU_ASSERT_EQUAL(wire_find(f.data, f.len, 1, &fn), 1);
	CU_ASSERT_EQUAL(fn.len, 4);
	CU_ASSERT(memcmp(fn.data, "echo", 4) == 0);
	CU_ASSERT_EQUAL(wire_find(buf, len, 3, &f), 0);

	/* Every truncation of a valid message is either still valid at the
	 * top level (cut between fields) or reported malformed; never read
	 * past the end. */
	for (size_t cut = 0; cut < len; cut++) {
		int rc = wire_check(buf, cut);
		CU_ASSERT(rc == 0 || rc == -1);
	}
	CU_ASSERT_EQUAL(wire_check(buf, len - 1), -1);
	free(buf);
}

static void
test_malformed(void)
{
	static const struct {
		const char *name;
		uint8_t bytes[12];
		size_t len;
	} cases[] = {
	    {"field number 0", {0x00, 0x01}, 2},
	    {"unterminated varint", {0x08, 0xff, 0xff}, 3},
	    {"length past end", {0x12, 0x05, 'a'}, 3},
	    {"group start (wire type 3)", {0x0b}, 1},
	    {"wire type 7", {0x0f, 0x00}, 2},
	    {"fixed64 cut short", {0x09, 1, 2, 3}, 4},
	    {"eleven-byte varint",
		{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		    0xff, 0x01},
		12},
	};
	wire_field f;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (wire_check(cases[i].bytes, cases[i].len) != -1)
			CU_FAIL(cases[i].name);
		CU_ASSERT_EQUAL(wire_find(cases[i].bytes, cases[i].len, 1, &f),
		    -1);
	}
	CU_ASSERT_EQUAL(wire_check((const uint8_t *) "", 0), 0);
}

static void
test_from_worker_becomes_reply(void)
{
	Gild__Worker__V1__FromWorker fw = GILD__WORKER__V1__FROM_WORKER__INIT;
	Gild__V1__Error err = GILD__V1__ERROR__INIT;
	Gild__V1__Reply *r;
	uint8_t *buf, out[256];
	size_t len, n = 0;
	wire_field id, body;

	err.code = GILD__V1__CODE__PYTHON_ERROR;
	err.message = "boom";
	err.python_type = "ValueError";
	err.traceback = "Traceback ...";
	fw.job_id = 99;
	fw.body_case = GILD__WORKER__V1__FROM_WORKER__BODY_ERROR;
	fw.error = &err;
	len = gild__worker__v1__from_worker__get_packed_size(&fw);
	buf = malloc(len);
	gild__worker__v1__from_worker__pack(&fw, buf);

	/* What the front end does: job_id out, Reply.id in, the rest as is. */
	CU_ASSERT_EQUAL_FATAL(wire_find(buf, len, 1, &id), 1);
	CU_ASSERT_EQUAL(id.value, 99);
	CU_ASSERT_EQUAL_FATAL(wire_find(buf, len, 3, &body), 1);
	n += wire_put_tag(out, 1, WIRE_VARINT);
	n += wire_put_varint(out + n, 7);
	memcpy(out + n, body.start, body.total);
	n += body.total;
	r = gild__v1__reply__unpack(NULL, n, out);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->id, 7);
	CU_ASSERT_EQUAL(r->body_case, GILD__V1__REPLY__BODY_ERROR);
	CU_ASSERT_EQUAL(r->error->code, GILD__V1__CODE__PYTHON_ERROR);
	CU_ASSERT_STRING_EQUAL(r->error->python_type, "ValueError");
	CU_ASSERT_STRING_EQUAL(r->error->message, "boom");
	gild__v1__reply__free_unpacked(r, NULL);
	free(buf);
}

/* wire_tensor_scan reads what protobuf-c packs: dtype, data and the
 * shape, packed or one varint a field; more than GILD_TENSOR_DIMS_MAX
 * dimensions is -2, a known field of the wrong type or a cut packed
 * varint -1. */
static void
test_tensor_scan(void)
{
	uint64_t shape[GILD_TENSOR_DIMS_MAX + 1];
	Gild__V1__Tensor t = GILD__V1__TENSOR__INIT;
	uint8_t buf[1024], data[6] = {1, 2, 3, 4, 5, 6};
	wire_tensor w;
	size_t n;

	for (size_t i = 0; i <= GILD_TENSOR_DIMS_MAX; i++)
		shape[i] = i == 0 ? 300 : 1; /* 300: a two-byte varint */
	t.dtype = "int16";
	t.shape = shape;
	t.n_shape = 2;
	t.data.data = data;
	t.data.len = sizeof(data);
	n = gild__v1__tensor__pack(&t, buf);
	CU_ASSERT_EQUAL(wire_tensor_scan(buf, n, &w), 0);
	CU_ASSERT_EQUAL(w.dtype_len, 5);
	CU_ASSERT(w.dtype != NULL && memcmp(w.dtype, "int16", 5) == 0);
	CU_ASSERT_EQUAL(w.ndim, 2);
	CU_ASSERT_EQUAL(w.shape[0], 300);
	CU_ASSERT_EQUAL(w.shape[1], 1);
	CU_ASSERT(w.data == buf + n - sizeof(data) && w.len == sizeof(data));

	t.n_shape = GILD_TENSOR_DIMS_MAX;
	n = gild__v1__tensor__pack(&t, buf);
	CU_ASSERT_EQUAL(wire_tensor_scan(buf, n, &w), 0);
	CU_ASSERT_EQUAL(w.ndim, GILD_TENSOR_DIMS_MAX);
	t.n_shape = GILD_TENSOR_DIMS_MAX + 1;
	n = gild__v1__tensor__pack(&t, buf);
	CU_ASSERT_EQUAL(wire_tensor_scan(buf, n, &w), -2);

	/* Unpacked dimensions (field 2 as varints) count the same. */
	n = wire_put_tag(buf, GILD_F_TENSOR_SHAPE, WIRE_VARINT);
	n += wire_put_varint(buf + n, 7);
	n += wire_put_tag(buf + n, GILD_F_TENSOR_SHAPE, WIRE_VARINT);
	n += wire_put_varint(buf + n, 9);
	CU_ASSERT_EQUAL(wire_tensor_scan(buf, n, &w), 0);
	CU_ASSERT(w.ndim == 2 && w.shape[0] == 7 && w.shape[1] == 9);
	CU_ASSERT(w.dtype == NULL && w.dtype_len == 0 && w.data == NULL);

	/* dtype as a varint: malformed; a packed shape cut in a varint. */
	n = wire_put_tag(buf, GILD_F_TENSOR_DTYPE, WIRE_VARINT);
	n += wire_put_varint(buf + n, 1);
	CU_ASSERT_EQUAL(wire_tensor_scan(buf, n, &w), -1);
	n = wire_put_tag(buf, GILD_F_TENSOR_SHAPE, WIRE_LEN);
	n += wire_put_varint(buf + n, 1);
	buf[n++] = 0x80;
	CU_ASSERT_EQUAL(wire_tensor_scan(buf, n, &w), -1);

	/* The kind fields of Value, and a field that is none. */
	CU_ASSERT_EQUAL(wire_value_kind_type(
			    GILD__V1__VALUE__KIND_INT_VALUE), WIRE_VARINT);
	CU_ASSERT_EQUAL(wire_value_kind_type(
			    GILD__V1__VALUE__KIND_FLOAT_VALUE), WIRE_I64);
	CU_ASSERT_EQUAL(wire_value_kind_type(
			    GILD__V1__VALUE__KIND_TENSOR_VALUE), WIRE_LEN);
	CU_ASSERT_EQUAL(wire_value_kind_type(1000), -1);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("wire", NULL, NULL);
	CU_add_test(s, "varints", test_varints);
	CU_add_test(s, "scan a protobuf-c Request", test_scan_protobuf_c_request);
	CU_add_test(s, "malformed input", test_malformed);
	CU_add_test(s, "FromWorker becomes Reply", test_from_worker_becomes_reply);
	CU_add_test(s, "a Tensor and Value's kinds", test_tensor_scan);
	return test_run_all();
}
