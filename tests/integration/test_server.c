/* Integration tests: the real gild binary serving examples/app.py, called
 * over the wire with libgild and with a stock cooked nng REQ socket. */
#include "gild.h"
#include "gild.pb-c.h"
#include "integration/harness.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test_main.h"

#define APP "examples/app.py"

/* One server with two workers for most tests; 8 MiB --max-message. */
static gild_proc srv;
static gild_client *cli;
/* A stock cooked REQ socket, opened once: nng 1.5.2's nng_close can
 * deadlock now and then (nng issue #1543), so the suite closes it once. */
static nng_socket stock;

static int
suite_init(void)
{
	static const char *const extra[] = {"--max-message", "8M", NULL};
	const char *urls[1];

	if (proc_start(&srv, APP, 2, NULL, extra) != 0)
		return -1;
	urls[0] = srv.url;
	if (nng_req0_open(&stock) != 0 ||
	    nng_socket_set_ms(stock, NNG_OPT_RECVTIMEO, 10000) != 0 ||
	    nng_dial(stock, srv.url, NULL, 0) != 0)
		return -1;
	return gild_connect(&cli, urls, 1, NULL) == GILD_OK ? 0 : -1;
}

static int
suite_fini(void)
{
	/* Both bounded: nng 1.5.2's close can deadlock (nng #1543), and the
	 * suite must still stop the server. A close that hung fails the
	 * suite's cleanup, and so the run. */
	int hung = close_bounded(stock, 5000);

	hung |= client_close_bounded(cli, 5000);
	return proc_stop(&srv) == 0 && hung == 0 ? 0 : -1;
}

/* Calls fn(arg) and returns the result (NULL on error, err filled). */
static gild_value *
call1(const char *fn, gild_value *arg, gild_error *err)
{
	gild_value *args = gild_list(), *out = NULL;

	if (arg)
		gild_list_append(args, arg);
	gild_call(cli, fn, args, NULL, 30000, &out, err);
	gild_value_free(args);
	return out;
}

/* Asserts that `add 1 2` still works: the server is up after an error. */
static void
assert_still_serving(void)
{
	gild_value *args = gild_list(), *out = NULL;
	gild_error err = {0};

	gild_list_append(args, gild_int(40));
	gild_list_append(args, gild_int(2));
	if (gild_call(cli, "add", args, NULL, 30000, &out, &err) != GILD_OK) {
		fprintf(stderr, "\n  add 40 2 failed: %s: %s\n",
		    gild_code_name(err.code), err.message ? err.message : "");
		CU_FAIL("the server no longer serves");
	}
	CU_ASSERT_EQUAL(gild_value_int(out), 42);
	gild_value_free(out);
	gild_value_free(args);
	gild_error_clear(&err);
}

static gild_value *
bigint_from(const char *dec)
{
	return gild_int_from_decimal(dec);
}

static gild_value *
map_of(gild_value *k1, gild_value *v1, gild_value *k2, gild_value *v2)
{
	gild_value *m = gild_map();
	gild_map_set(m, k1, v1);
	if (k2)
		gild_map_set(m, k2, v2);
	return m;
}

static gild_value *
list_of(gild_value *a, gild_value *b, gild_value *c)
{
	gild_value *l = gild_list();
	if (a)
		gild_list_append(l, a);
	if (b)
		gild_list_append(l, b);
	if (c)
		gild_list_append(l, c);
	return l;
}

/* Item 2: every Value kind comes back unchanged from `echo`. */
static void
test_value_roundtrip(void)
{
	static const uint8_t not_utf8[] = {0xff, 0xfe, 0x00, 0x80, 0xc3};
	const uint64_t shape[] = {1024, 1024};
	size_t big = 1024 * 1024 * sizeof(float);
	float *data = malloc(big);
	gild_value *tuple = gild_tuple();

	for (size_t i = 0; i < 1024 * 1024; i++)
		data[i] = (float) i * 0.5f - 3.0f;
	gild_list_append(tuple, gild_int(1));
	gild_list_append(tuple, gild_cstr("two"));
	gild_value *cases[] = {
	    gild_null(),
	    gild_bool(true),
	    gild_bool(false),
	    gild_int(0),
	    gild_int(INT64_MAX),
	    gild_int(INT64_MIN),
	    bigint_from("9223372036854775808"),  /* 2^63 */
	    bigint_from("-9223372036854775809"), /* -2^63 - 1 */
	    bigint_from("1606938044258990275541962092341162602522202993782792835301376"), /* 2^200 */
	    bigint_from("-1606938044258990275541962092341162602522202993782792835301376"),
	    gild_float(3.25),
	    gild_float(-0.0),
	    gild_float(NAN),
	    gild_float(INFINITY),
	    gild_float(-INFINITY),
	    gild_str("", 0),
	    gild_cstr("héllo, 世界 🎉"),
	    gild_str("nul\0inside", 10),
	    gild_bytes("", 0),
	    gild_bytes(not_utf8, sizeof(not_utf8)),
	    gild_list(),
	    gild_map(),
	    gild_tuple(),
	    tuple,
	    list_of(gild_int(1), list_of(gild_list(), gild_map(), NULL),
		map_of(gild_cstr("k"), list_of(gild_null(), NULL, NULL), NULL,
		    NULL)),
	    map_of(gild_int(1), gild_cstr("int key"), gild_float(2.5),
		gild_cstr("float key")),
	    map_of(list_of(gild_int(1), gild_int(2), NULL), gild_cstr("list key"),
		NULL, NULL),
	    gild_tensor("float32", shape, 2, data, big),
	    gild_tensor("int64", (const uint64_t[]){0}, 1, "", 0),
	    gild_tensor("uint8", (const uint64_t[]){3}, 1, "abc", 3),
	};
	free(data);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gild_error err = {0};
		gild_value *expect, *got;
		CU_ASSERT_PTR_NOT_NULL_FATAL(cases[i]);
		expect = gild_value_copy(cases[i]);
		/* A list key comes back as a tuple key (Python keys must be
		 * hashable); everything else exactly as sent. */
		if (i == 26) {
			gild_value_free(expect);
			gild_value *k = gild_tuple();
			gild_list_append(k, gild_int(1));
			gild_list_append(k, gild_int(2));
			expect = map_of(k, gild_cstr("list key"), NULL, NULL);
		}
		got = call1("echo", cases[i], &err);
		if (got == NULL || !gild_value_equal(got, expect)) {
			fprintf(stderr, "case %zu: kind %d: %s %s\n", i,
			    gild_value_kind(expect), gild_code_name(err.code),
			    err.message ? err.message : "(value differs)");
			CU_FAIL("value did not round-trip");
		}
		gild_value_free(got);
		gild_value_free(expect);
		gild_error_clear(&err);
	}
}

/* The worker sees the Python types a user expects. */
static void
test_python_types(void)
{
	gild_value *args = gild_list(), *out = NULL, *expect;
	gild_error err = {0};
	const uint64_t shape[] = {2};
	gild_value *t = gild_tuple();

	gild_list_append(t, gild_int(1));
	gild_list_append(args, gild_null());
	gild_list_append(args, bigint_from("123456789012345678901234567890"));
	gild_list_append(args, gild_bytes("x", 1));
	gild_list_append(args, t);
	gild_list_append(args, gild_map());
	gild_list_append(args, gild_tensor("float64", shape, 1,
				   (double[]){1.0, 2.0}, 16));
	CU_ASSERT_EQUAL_FATAL(gild_call(cli, "types", args, NULL, 30000, &out,
				  &err), GILD_OK);
	expect = list_of(gild_cstr("NoneType"), gild_cstr("int"),
	    gild_cstr("bytes"));
	gild_list_append(expect, gild_cstr("tuple"));
	gild_list_append(expect, gild_cstr("dict"));
	/* numpy is installed for the system Python only: without it a
	 * tensor arrives as a memoryview. */
	gild_list_append(expect, gild_cstr(test_free_threaded() ? "memoryview"
								: "ndarray"));
	CU_ASSERT(gild_value_equal(out, expect));
	gild_value_free(expect);
	gild_value_free(out);
	gild_value_free(args);
}

/* numpy results come back as tensors. */
static void
test_numpy_function(void)
{
	const uint64_t shape[] = {2, 2};
	double a[] = {1, 2, 3, 4}, b[] = {5, 6, 7, 8};
	gild_value *args = gild_list(), *out = NULL;
	gild_error err = {0};
	size_t len;

	if (skip_unless_process("numpy is built for the system Python only")) {
		gild_value_free(args);
		return;
	}
	gild_list_append(args, gild_tensor("float64", shape, 2, a, sizeof(a)));
	gild_list_append(args, gild_tensor("float64", shape, 2, b, sizeof(b)));
	CU_ASSERT_EQUAL_FATAL(gild_call(cli, "matmul", args, NULL, 30000, &out,
				  &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_kind(out), GILD_TENSOR);
	CU_ASSERT_STRING_EQUAL(gild_tensor_dtype(out), "float64");
	CU_ASSERT_EQUAL(gild_tensor_ndim(out), 2);
	const double *r = gild_tensor_data(out, &len);
	CU_ASSERT_EQUAL(len, 4 * sizeof(double));
	CU_ASSERT(r && r[0] == 19 && r[1] == 22 && r[2] == 43 && r[3] == 50);
	gild_value_free(out);
	gild_value_free(args);
}

/* kwargs arrive as keyword arguments. */
static void
test_kwargs(void)
{
	gild_value *args = gild_list(), *kw = gild_map(), *out = NULL;
	gild_error err = {0};

	gild_list_append(args, gild_int(1));
	gild_map_set(kw, gild_cstr("flag"), gild_bool(true));
	CU_ASSERT_EQUAL_FATAL(gild_call(cli, "echo", args, kw, 30000, &out,
				  &err), GILD_OK);
	const gild_value *k = gild_map_get(out, "kwargs");
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	CU_ASSERT(gild_value_bool(gild_map_get(k, "flag")));
	gild_value_free(out);
	gild_value_free(kw);
	gild_value_free(args);
}

/* Item 4: precise errors, and the server still serves after each. */
static void
test_errors(void)
{
	gild_value *args = gild_list(), *out = NULL;
	gild_error err = {0};

	CU_ASSERT_EQUAL(gild_call(cli, "nope", args, NULL, 30000, &out, &err),
	    GILD_NOT_FOUND);
	CU_ASSERT_PTR_NOT_NULL_FATAL(err.message);
	CU_ASSERT(strstr(err.message, "'nope'") != NULL);
	gild_error_clear(&err);
	assert_still_serving();

	/* Imported names are not exported. */
	CU_ASSERT_EQUAL(gild_call(cli, "sqrt", args, NULL, 30000, &out, &err),
	    GILD_NOT_FOUND);
	gild_error_clear(&err);
	CU_ASSERT_EQUAL(gild_call(cli, "np", args, NULL, 30000, &out, &err),
	    GILD_NOT_FOUND);
	gild_error_clear(&err);

	gild_list_append(args, gild_cstr("bad input"));
	CU_ASSERT_EQUAL(gild_call(cli, "fail", args, NULL, 30000, &out, &err),
	    GILD_PYTHON_ERROR);
	CU_ASSERT_STRING_EQUAL(err.python_type, "ValueError");
	CU_ASSERT_STRING_EQUAL(err.message, "bad input");
	CU_ASSERT_PTR_NOT_NULL_FATAL(err.traceback);
	CU_ASSERT(strstr(err.traceback, "Traceback") != NULL);
	CU_ASSERT(strstr(err.traceback, "in fail") != NULL);
	CU_ASSERT(strstr(err.traceback, "raise ValueError(message)") != NULL);
	gild_error_clear(&err);
	assert_still_serving();

	/* Wrong number of arguments is the app's TypeError. */
	gild_list_append(args, gild_int(1));
	gild_list_append(args, gild_int(2));
	CU_ASSERT_EQUAL(gild_call(cli, "add", args, NULL, 30000, &out, &err),
	    GILD_PYTHON_ERROR);
	CU_ASSERT_STRING_EQUAL(err.python_type, "TypeError");
	gild_error_clear(&err);
	gild_value_free(args);
	assert_still_serving();
}

/* Item 4: a request over --max-message (8 MiB here) is refused. */
static void
test_oversized_request(void)
{
	size_t n = 12u << 20;
	char *blob = calloc(1, n);
	gild_value *out;
	gild_error err = {0};

	out = call1("echo", gild_bytes(blob, n), &err);
	CU_ASSERT_PTR_NULL(out);
	CU_ASSERT_EQUAL(err.code, GILD_RESOURCE_EXHAUSTED);
	CU_ASSERT(err.message && strstr(err.message, "--max-message") != NULL);
	gild_error_clear(&err);
	free(blob);
	assert_still_serving();

	/* Past twice the limit nng drops the connection unread: that call
	 * fails with UNAVAILABLE and the server serves on. It is sent from a
	 * client of its own: nng 1.5.2 sometimes wedges a socket whose pipe the
	 * peer dropped mid-send (no redial; its close deadlocks), see
	 * docs/architecture.md. The close is bounded so that the suite goes
	 * on, and a close that hung fails the test: not seen in 50 sanitized
	 * runs of this test alone. */
	{
		const char *urls[] = {srv.url};
		gild_client *c2 = NULL;
		gild_value *args = gild_list();

		n = 20u << 20;
		blob = calloc(1, n);
		gild_list_append(args, gild_bytes(blob, n));
		free(blob);
		CU_ASSERT_EQUAL_FATAL(gild_connect(&c2, urls, 1, NULL), GILD_OK);
		CU_ASSERT_EQUAL(gild_call(c2, "echo", args, NULL, 30000, &out,
				    &err), GILD_UNAVAILABLE);
		gild_error_clear(&err);
		gild_value_free(args);
		CU_ASSERT_EQUAL(client_close_bounded(c2, 5000), 0);
	}
	assert_still_serving();
}

/* Sends raw bytes on a stock cooked REQ socket; returns the decoded Reply
 * (NULL if none in 10 s). */
static Gild__V1__Reply *
raw_request(const void *body, size_t len)
{
	nng_msg *m;
	Gild__V1__Reply *r = NULL;

	if (nng_msg_alloc(&m, 0) != 0)
		return NULL;
	nng_msg_append(m, body, len);
	if (nng_sendmsg(stock, m, 0) != 0)
		nng_msg_free(m);
	else if (nng_recvmsg(stock, &m, 0) == 0) {
		r = gild__v1__reply__unpack(NULL, nng_msg_len(m),
		    nng_msg_body(m));
		nng_msg_free(m);
	}
	return r;
}

/* Item 3: a stock (cooked) nng REQ socket and protobuf alone make a call. */
static void
test_stock_req_client(void)
{
	Gild__V1__Request req = GILD__V1__REQUEST__INIT;
	Gild__V1__Call call = GILD__V1__CALL__INIT;
	Gild__V1__Value a = GILD__V1__VALUE__INIT, b = GILD__V1__VALUE__INIT;
	Gild__V1__Value *args[] = {&a, &b};
	Gild__V1__Reply *r;
	uint8_t buf[256];
	size_t len;

	a.kind_case = b.kind_case = GILD__V1__VALUE__KIND_INT_VALUE;
	a.int_value = 1;
	b.int_value = 2;
	call.function = "add";
	call.n_args = 2;
	call.args = args;
	req.id = 77;
	req.body_case = GILD__V1__REQUEST__BODY_CALL;
	req.call = &call;
	len = gild__v1__request__pack(&req, buf);
	r = raw_request(buf, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->id, 77);
	CU_ASSERT_EQUAL_FATAL(r->body_case, GILD__V1__REPLY__BODY_RESULT);
	CU_ASSERT_EQUAL(r->result->kind_case, GILD__V1__VALUE__KIND_INT_VALUE);
	CU_ASSERT_EQUAL(r->result->int_value, 3);
	gild__v1__reply__free_unpacked(r, NULL);
}

/* Item 4: malformed protobuf and a request without a body. */
static void
test_malformed_requests(void)
{
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
	Gild__V1__Request req = GILD__V1__REQUEST__INIT;
	uint8_t buf[32];
	Gild__V1__Reply *r;

	r = raw_request(garbage, sizeof(garbage));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL_FATAL(r->body_case, GILD__V1__REPLY__BODY_ERROR);
	CU_ASSERT_EQUAL(r->error->code, GILD__V1__CODE__INVALID_ARGUMENT);
	CU_ASSERT(strstr(r->error->message, "malformed") != NULL);
	gild__v1__reply__free_unpacked(r, NULL);

	req.id = 5;
	r = raw_request(buf, gild__v1__request__pack(&req, buf));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->id, 5);
	CU_ASSERT_EQUAL_FATAL(r->body_case, GILD__V1__REPLY__BODY_ERROR);
	CU_ASSERT_EQUAL(r->error->code, GILD__V1__CODE__INVALID_ARGUMENT);
	CU_ASSERT(strstr(r->error->message, "no body") != NULL);
	gild__v1__reply__free_unpacked(r, NULL);

	/* A call whose values are not valid protobuf: the worker says so. */
	static const uint8_t bad_call[] = {
	    0x08, 0x09,                         /* id = 9 */
	    0x12, 0x09,                         /* call, 9 bytes */
	    0x0a, 0x04, 'e', 'c', 'h', 'o',     /* function = "echo" */
	    0x12, 0x01, 0xff,                   /* args[0]: broken Value */
	};
	r = raw_request(bad_call, sizeof(bad_call));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->id, 9);
	CU_ASSERT_EQUAL_FATAL(r->body_case, GILD__V1__REPLY__BODY_ERROR);
	CU_ASSERT_EQUAL(r->error->code, GILD__V1__CODE__INVALID_ARGUMENT);
	gild__v1__reply__free_unpacked(r, NULL);
	assert_still_serving();
}

/* gild_submit_many: 200 calls in one message, each answered as if it had
 * come alone (results, NOT_FOUND, a Python error); bad batch sizes are
 * refused by the client; the server refuses an empty batch and a batch
 * inside a batch; a batch without the server's token fails every call in
 * it with UNAUTHENTICATED. */
static void
test_batches(void)
{
	enum { N = 200 };
	static const char *const extra[] = {"--token", "t0k", NULL};
	gild_call_spec specs[N];
	gild_value *args[N];
	gild_call_id ids[N];
	gild_error err = {0};
	gild_result res;
	gild_proc p;
	gild_client *c = NULL;
	const char *urls[1];
	Gild__V1__Reply *r;

	for (int i = 0; i < N; i++) {
		args[i] = gild_list();
		gild_list_append(args[i], gild_int(i));
		gild_list_append(args[i], gild_int(i));
		specs[i] = (gild_call_spec){"add", args[i], NULL, 0};
	}
	specs[N - 2].function = "no_such_function";
	specs[N - 1].function = "fail";
	specs[N - 1].args = NULL;
	CU_ASSERT_EQUAL_FATAL(gild_submit_many(cli, specs, N, ids, &err),
	    GILD_OK);
	for (int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL_FATAL(gild_wait(cli, ids[i], 30000, &res),
		    GILD_OK);
		if (i < N - 2) {
			CU_ASSERT_EQUAL(res.code, GILD_OK);
			CU_ASSERT_EQUAL(gild_value_int(res.value), 2 * i);
		} else {
			CU_ASSERT_EQUAL(res.code, i == N - 2 ? GILD_NOT_FOUND
							     : GILD_PYTHON_ERROR);
		}
		gild_result_clear(&res);
	}
	CU_ASSERT_EQUAL(gild_in_flight(cli), 0);
	CU_ASSERT_EQUAL(gild_submit_many(cli, specs, 0, ids, &err),
	    GILD_INVALID_ARGUMENT);
	gild_error_clear(&err);
	CU_ASSERT_EQUAL(gild_submit_many(cli, specs, GILD_MAX_BATCH + 1, ids,
			    &err), GILD_INVALID_ARGUMENT);
	gild_error_clear(&err);

	/* Request{id 1, batch{[Request{id 2, batch{[Request{id 3,
	 * ping}]}}]}}: the inner batch is refused, in the outer's reply. */
	static const uint8_t nested[] = {0x08, 0x01, 0x52, 0x0c, 0x0a, 0x0a,
	    0x08, 0x02, 0x52, 0x06, 0x0a, 0x04, 0x08, 0x03, 0x2a, 0x00};
	r = raw_request(nested, sizeof(nested));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->id, 1);
	CU_ASSERT_EQUAL_FATAL(r->body_case, GILD__V1__REPLY__BODY_BATCH);
	CU_ASSERT_EQUAL_FATAL(r->batch->n_replies, 1);
	CU_ASSERT_EQUAL(r->batch->replies[0]->id, 2);
	CU_ASSERT_EQUAL_FATAL(r->batch->replies[0]->body_case,
	    GILD__V1__REPLY__BODY_ERROR);
	CU_ASSERT_EQUAL(r->batch->replies[0]->error->code,
	    GILD__V1__CODE__INVALID_ARGUMENT);
	CU_ASSERT(strstr(r->batch->replies[0]->error->message,
		      "another batch") != NULL);
	gild__v1__reply__free_unpacked(r, NULL);
	static const uint8_t empty[] = {0x08, 0x04, 0x52, 0x00};
	r = raw_request(empty, sizeof(empty));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->id, 4);
	CU_ASSERT_EQUAL_FATAL(r->body_case, GILD__V1__REPLY__BODY_ERROR);
	CU_ASSERT(strstr(r->error->message, "empty batch") != NULL);
	gild__v1__reply__free_unpacked(r, NULL);
	assert_still_serving();

	/* Without the token: every call of the batch is refused. */
	CU_ASSERT_EQUAL_FATAL(proc_start(&p, APP, 1, NULL, extra), 0);
	urls[0] = p.url;
	CU_ASSERT_EQUAL_FATAL(gild_connect(&c, urls, 1, NULL), GILD_OK);
	CU_ASSERT_EQUAL(gild_submit_many(c, specs, 3, ids, &err), GILD_OK);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(gild_wait(c, ids[i], 30000, &res), GILD_OK);
		CU_ASSERT_EQUAL(res.code, GILD_UNAUTHENTICATED);
		gild_result_clear(&res);
	}
	CU_ASSERT_EQUAL(gild_in_flight(c), 0);
	gild_close(c);
	CU_ASSERT_EQUAL(proc_stop(&p), 0);
	for (int i = 0; i < N; i++)
		gild_value_free(args[i]);
}

static bool
overlap(const gild_value *a, const gild_value *b)
{
	double as = gild_value_float(gild_map_get(a, "start"));
	double ae = gild_value_float(gild_map_get(a, "end"));
	double bs = gild_value_float(gild_map_get(b, "start"));
	double be = gild_value_float(gild_map_get(b, "end"));
	return as < be && bs < ae;
}

/* Item 5: two CPU-bound calls run in two processes (free-threaded: two
 * threads of one process) at overlapping times. */
static void
test_parallel_workers(void)
{
	gild_call_id id[2];
	gild_result res[2] = {{0}};
	gild_value *args = gild_list();

	gild_list_append(args, gild_int(400));
	for (int i = 0; i < 2; i++)
		CU_ASSERT_EQUAL_FATAL(gild_submit(cli, "spin", args, NULL,
					  &id[i], NULL), GILD_OK);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL_FATAL(gild_wait(cli, id[i], 30000, &res[i]),
		    GILD_OK);
		CU_ASSERT_EQUAL_FATAL(res[i].code, GILD_OK);
	}
	CU_ASSERT_EQUAL(gild_value_int(gild_map_get(res[0].value, "pid")) ==
			    gild_value_int(gild_map_get(res[1].value, "pid")),
	    test_free_threaded());
	CU_ASSERT(overlap(res[0].value, res[1].value));
	gild_result_clear(&res[0]);
	gild_result_clear(&res[1]);
	gild_value_free(args);
}

/* Item 6: 2,000 calls in flight on one client, each matched to its own. */
static void
test_many_in_flight(void)
{
	enum { N = 2000 };
	static gild_call_id ids[N];
	int got = 0, right = 0;

	for (int i = 0; i < N; i++) {
		gild_value *args = gild_list();
		gild_list_append(args, gild_int(i));
		gild_list_append(args, gild_int(1000000));
		CU_ASSERT_EQUAL_FATAL(gild_submit(cli, "add", args, NULL,
					  &ids[i], NULL), GILD_OK);
		gild_value_free(args);
	}
	CU_ASSERT(gild_in_flight(cli) > 0);
	/* Collect in completion order; match each by its id. */
	while (got < N) {
		gild_result res = {0};
		if (gild_poll(cli, 30000, &res) != GILD_OK)
			break;
		got++;
		for (int i = 0; i < N; i++) {
			if (ids[i] == res.id) {
				right += res.code == GILD_OK &&
					 gild_value_int(res.value) == i + 1000000;
				break;
			}
		}
		gild_result_clear(&res);
	}
	CU_ASSERT_EQUAL(got, N);
	CU_ASSERT_EQUAL(right, N);
	CU_ASSERT_EQUAL(gild_in_flight(cli), 0);
}

/* No reply is lost when thousands finish at once: nng's raw REP socket
 * used to drop replies beyond 64 queued per connection (a few in 1,000
 * bursts of this size); the context-based listener must lose none. */
static void
test_bursts_lose_nothing(void)
{
	enum { N = 8000, ROUNDS = 5 };
	int lost = 0;

	for (int r = 0; r < ROUNDS; r++) {
		int got = 0;
		for (int i = 0; i < N; i++) {
			gild_value *args = gild_list();
			gild_call_id id;
			gild_list_append(args, gild_int(i));
			gild_list_append(args, gild_int(1));
			CU_ASSERT_EQUAL_FATAL(gild_submit(cli, "add", args, NULL,
						  &id, NULL), GILD_OK);
			gild_value_free(args);
		}
		for (;;) {
			gild_result res = {0};
			if (gild_poll(cli, 10000, &res) != GILD_OK)
				break;
			got += res.code == GILD_OK;
			gild_result_clear(&res);
		}
		lost += N - got;
	}
	CU_ASSERT_EQUAL(lost, 0);
}

/* Reads the status map and returns the pid of a busy worker (0: none). */
static int
busy_worker_pid(int *ready_out)
{
	gild_value *st = NULL;
	int pid = 0, ready = 0;

	if (gild_status(cli, 10000, &st, NULL) != GILD_OK)
		return 0;
	const gild_value *ws = gild_map_get(st, "workers");
	for (size_t i = 0; i < gild_value_len(ws); i++) {
		const gild_value *w = gild_value_item(ws, i);
		const char *state = gild_value_str(gild_map_get(w, "state"), NULL);
		if (state && strcmp(state, "busy") == 0)
			pid = (int) gild_value_int(gild_map_get(w, "pid"));
		if (state && (strcmp(state, "ready") == 0 ||
				 strcmp(state, "busy") == 0))
			ready++;
	}
	gild_value_free(st);
	if (ready_out)
		*ready_out = ready;
	return pid;
}

/* Item 7: SIGKILL a worker mid-call: WORKER_LOST, pool refilled, serving. */
static void
test_worker_killed(void)
{
	gild_value *args = gild_list();
	gild_result res = {0};
	gild_call_id id;
	int victim = 0, ready = 0;
	double deadline;

	gild_list_append(args, gild_float(20.0));
	CU_ASSERT_EQUAL_FATAL(gild_submit(cli, "sleep", args, NULL, &id, NULL),
	    GILD_OK);
	gild_value_free(args);
	for (deadline = now_s() + 10; victim == 0 && now_s() < deadline;)
		if ((victim = busy_worker_pid(NULL)) == 0)
			usleep(10000);
	CU_ASSERT_FATAL(victim > 0);
	CU_ASSERT_EQUAL_FATAL(kill(victim, SIGKILL), 0);
	CU_ASSERT_EQUAL_FATAL(gild_wait(cli, id, 10000, &res), GILD_OK);
	CU_ASSERT_EQUAL(res.code, GILD_WORKER_LOST);
	CU_ASSERT(res.error.message &&
		  strstr(res.error.message, "sleep") != NULL);
	gild_result_clear(&res);

	/* The pool is back to two workers (free-threaded: one, of two
	 * threads), none of them the victim. */
	int pool = test_processes(2);
	for (deadline = now_s() + 30; now_s() < deadline; usleep(20000)) {
		busy_worker_pid(&ready);
		if (ready == pool)
			break;
	}
	CU_ASSERT_EQUAL(ready, pool);
	pid_t pids[8];
	int n = proc_workers(&srv, pids, 8);
	/* The template, its standby (server/forker.h) and the workers. */
	CU_ASSERT_EQUAL(n, pool + 2);
	for (int i = 0; i < n; i++)
		CU_ASSERT_NOT_EQUAL(pids[i], victim);
	CU_ASSERT(pid_alive(srv.pid));
	assert_still_serving();
	assert_still_serving();
}

/* A worker that dies on its own (os._exit) is the same case. */
static void
test_worker_exits(void)
{
	gild_value *out;
	gild_error err = {0};

	out = call1("crash", NULL, &err);
	CU_ASSERT_PTR_NULL(out);
	CU_ASSERT_EQUAL(err.code, GILD_WORKER_LOST);
	CU_ASSERT(err.message && strstr(err.message, "crash") != NULL);
	gild_error_clear(&err);
	CU_ASSERT(pid_alive(srv.pid));
	assert_still_serving();
}

static void
test_ping_and_status(void)
{
	gild_value *st = NULL;
	gild_error err = {0};

	CU_ASSERT_EQUAL(gild_ping(cli, 10000, &err), GILD_OK);
	CU_ASSERT_EQUAL_FATAL(gild_status(cli, 10000, &st, &err), GILD_OK);
	CU_ASSERT_STRING_EQUAL(value_str(gild_map_get(st, "runtime")),
	    test_free_threaded() ? "free-threaded" : "process");
	CU_ASSERT_EQUAL(gild_value_len(gild_map_get(st, "workers")),
	    test_processes(2));
	CU_ASSERT_EQUAL(gild_value_int(gild_map_get(st, "threads")),
	    test_free_threaded() ? 2 : 1);
	CU_ASSERT_EQUAL(gild_value_bool(gild_map_get(st, "gil_enabled")),
	    !test_free_threaded());
	const gild_value *fns = gild_map_get(st, "functions");
	bool has_add = false, has_sqrt = false;
	for (size_t i = 0; i < gild_value_len(fns); i++) {
		const char *f = gild_value_str(gild_value_item(fns, i), NULL);
		has_add |= strcmp(f, "add") == 0;
		has_sqrt |= strcmp(f, "sqrt") == 0;
	}
	CU_ASSERT(has_add);
	CU_ASSERT(!has_sqrt);
	gild_value_free(st);
}

/* Transports: ipc:// in a temp folder and ws:// on loopback (which any
 * web page could reach: it needs a token or --insecure, extra). */
static void
test_transport(const char *listen, const char *const *extra)
{
	gild_proc p;
	gild_client *c = NULL;
	gild_value *args = gild_list(), *out = NULL;
	const char *urls[1];

	CU_ASSERT_EQUAL_FATAL(proc_start(&p, APP, 1, listen, extra), 0);
	urls[0] = p.url;
	CU_ASSERT_EQUAL(gild_connect(&c, urls, 1, NULL), GILD_OK);
	gild_list_append(args, gild_cstr("over "));
	gild_list_append(args, gild_cstr(listen));
	CU_ASSERT_EQUAL(gild_call(c, "add", args, NULL, 30000, &out, NULL),
	    GILD_OK);
	CU_ASSERT_EQUAL(gild_value_kind(out), GILD_STR);
	gild_value_free(out);
	gild_value_free(args);
	gild_close(c);
	CU_ASSERT_EQUAL(proc_stop(&p), 0);
}

static void
test_ipc(void)
{
	test_transport("ipc://%s/gild.sock", NULL);
}

static void
test_ws(void)
{
	const char *const extra[] = {"--insecure", NULL};
	char url[64];

	/* Port from the pid: no fixed port, unlikely to collide. */
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d/gild",
	    20000 + (int) (getpid() % 20000));
	test_transport(url, extra);
}

/* An app that raises at import: gild exits non-zero with the traceback. */
static void
test_broken_app(void)
{
	char path[] = "/tmp/gild-broken-XXXXXX.py", log[256], buf[8192];
	int fd = mkstemps(path, 3), status = 0;
	FILE *f;
	size_t n;

	CU_ASSERT_FATAL(fd >= 0);
	dprintf(fd, "import os\nraise RuntimeError('cannot load model')\n");
	close(fd);
	snprintf(log, sizeof(log), "%s.log", path);
	snprintf(buf, sizeof(buf),
	    "timeout 60 %s/gild serve %s --listen tcp://127.0.0.1:0 "
	    "--workers 2 >/dev/null 2>%s",
	    build_dir(), path, log);
	status = system(buf);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	f = fopen(log, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	CU_ASSERT(strstr(buf, "cannot load model") != NULL);
	CU_ASSERT(strstr(buf, "RuntimeError") != NULL);
	CU_ASSERT(strstr(buf, "Traceback") != NULL);
	unlink(path);
	unlink(log);
}


/* ---- drain and admission: each with its own server ------------------- */

/* Submits n calls of sleep(seconds); ids into ids[]. */
static void
submit_sleeps(gild_client *c, int n, double seconds, gild_call_id *ids)
{
	gild_value *args = gild_list();

	gild_list_append(args, gild_float(seconds));
	for (int i = 0; i < n; i++)
		CU_ASSERT_EQUAL_FATAL(gild_submit(c, "sleep", args, NULL, &ids[i],
					  NULL), GILD_OK);
	gild_value_free(args);
}

static const char *
status_str(gild_client *c, const char *field, char *buf, size_t len)
{
	gild_value *st = NULL;
	const char *v;

	buf[0] = '\0';
	if (gild_status(c, 10000, &st, NULL) == GILD_OK &&
	    (v = gild_value_str(gild_map_get(st, field), NULL)) != NULL)
		snprintf(buf, len, "%s", v);
	gild_value_free(st);
	return buf;
}

/* SIGTERM with 200 calls accepted (2 running, the rest queued): every one
 * gets its result; calls sent after it are refused as not started, and
 * with no other server to send them to, libgild gives up on them after
 * its redial wait with UNAVAILABLE (or, once a refusal has come back,
 * refuses to send more on that connection: the submit itself fails with
 * UNAVAILABLE); gild exits 0 and no worker is left. */
static void
test_sigterm_drains_accepted_calls(void)
{
	enum { N = 200, LATE = 3 };
	static gild_call_id ids[N];
	gild_proc p;
	gild_client *c = NULL;
	const char *urls[1];
	char state[32];
	int ok = 0, unavailable = 0;
	double deadline;

	CU_ASSERT_EQUAL_FATAL(proc_start(&p, APP, 2, NULL, NULL), 0);
	urls[0] = p.url;
	CU_ASSERT_EQUAL_FATAL(gild_connect(&c, urls, 1, NULL), GILD_OK);
	submit_sleeps(c, N, 0.01, ids);
	/* Signal once the server has accepted all of them. */
	for (deadline = now_s() + 10; now_s() < deadline; usleep(2000)) {
		gild_value *st = NULL;
		int64_t accepted = 0;
		if (gild_status(c, 10000, &st, NULL) == GILD_OK)
			accepted = gild_value_int(gild_map_get(st, "calls_total"));
		gild_value_free(st);
		if (accepted >= N)
			break;
	}
	CU_ASSERT_EQUAL(kill(p.pid, SIGTERM), 0);
	for (deadline = now_s() + 10; now_s() < deadline; usleep(5000))
		if (strcmp(status_str(c, "state", state, sizeof(state)),
			"draining") == 0)
			break;
	CU_ASSERT_STRING_EQUAL(state, "draining");
	for (int i = 0; i < LATE; i++) {
		gild_value *args = gild_list();
		gild_error err = {0};
		gild_result res = {0};
		gild_call_id id;

		gild_list_append(args, gild_float(0.01));
		if (gild_submit(c, "sleep", args, NULL, &id, &err) != GILD_OK)
			unavailable += err.code == GILD_UNAVAILABLE;
		else if (gild_wait(c, id, 30000, &res) == GILD_OK &&
		    res.code == GILD_UNAVAILABLE && res.error.message &&
		    strstr(res.error.message, "not started"))
			unavailable++;
		gild_result_clear(&res);
		gild_error_clear(&err);
		gild_value_free(args);
	}
	CU_ASSERT_EQUAL(unavailable, LATE);
	for (int i = 0; i < N; i++) {
		gild_result res = {0};
		if (gild_wait(c, ids[i], 30000, &res) == GILD_OK)
			ok += res.code == GILD_OK &&
			      gild_value_float(res.value) == 0.01;

		gild_result_clear(&res);
	}
	CU_ASSERT_EQUAL(ok, N);
	gild_close(c);
	CU_ASSERT_EQUAL(proc_wait(&p), 0); /* exit 0, no worker left */
}

/* --max-queue 100, 1,000 slow calls at once: the overflow gets
 * RESOURCE_EXHAUSTED naming the limit, every other call its result, and
 * the counts add up to 1,000. */
static void
test_max_queue(void)
{
	enum { N = 1000 };
	static const char *const extra[] = {"--max-queue", "100", NULL};
	static gild_call_id ids[N];
	gild_proc p;
	gild_client *c = NULL;
	const char *urls[1];
	int ok = 0, exhausted = 0, named = 0, other = 0;

	CU_ASSERT_EQUAL_FATAL(proc_start(&p, APP, 2, NULL, extra), 0);
	urls[0] = p.url;
	CU_ASSERT_EQUAL_FATAL(gild_connect(&c, urls, 1, NULL), GILD_OK);
	submit_sleeps(c, N, 0.05, ids);
	for (int i = 0; i < N; i++) {
		gild_result res = {0};
		CU_ASSERT_EQUAL(gild_wait(c, ids[i], 60000, &res), GILD_OK);
		if (res.code == GILD_OK && gild_value_float(res.value) == 0.05)
			ok++;
		else if (res.code == GILD_RESOURCE_EXHAUSTED) {
			exhausted++;
			named += res.error.message &&
				 strstr(res.error.message, "--max-queue") != NULL;
		} else
			other++;
		gild_result_clear(&res);
	}
	CU_ASSERT_EQUAL(ok + exhausted, N);
	CU_ASSERT_EQUAL(other, 0);
	CU_ASSERT_EQUAL(named, exhausted);
	/* 2 running + 100 queued at least; the rest of a burst overflows. */
	CU_ASSERT(ok >= 102);
	CU_ASSERT(exhausted > 0);
	gild_close(c);
	CU_ASSERT_EQUAL(proc_stop(&p), 0);
}


/* ---- recycling -------------------------------------------------------- */

static int64_t
call_int(gild_client *c, const char *fn, int64_t arg, bool with_arg, int *code)
{
	gild_value *args = gild_list(), *out = NULL;
	int64_t v = 0;

	if (with_arg)
		gild_list_append(args, gild_int(arg));
	*code = gild_call(c, fn, args, NULL, 30000, &out, NULL);
	v = gild_value_int(out);
	gild_value_free(out);
	gild_value_free(args);
	return v;
}

/* Reads worker 0's recycles and restarts from status. */
static void
worker0_counts(gild_client *c, int64_t *recycles, int64_t *restarts)
{
	gild_value *st = NULL;

	*recycles = *restarts = -1;
	if (gild_status(c, 10000, &st, NULL) == GILD_OK) {
		const gild_value *w = gild_value_item(gild_map_get(st, "workers"), 0);
		*recycles = gild_value_int(gild_map_get(w, "recycles"));
		*restarts = gild_value_int(gild_map_get(w, "restarts"));
	}
	gild_value_free(st);
}

/* --max-jobs-per-worker 3: a new process every 3 calls, no call fails.
 * Workers are exec'd here, so that way of starting them is tested too. */
static void
test_max_jobs_per_worker(void)
{
	static const char *const extra[] = {"--max-jobs-per-worker", "3",
	    "--spawn", "exec", NULL};
	gild_proc p;
	gild_client *c = NULL;
	const char *urls[1];
	int64_t pids[10], recycles, restarts;
	int code, failed = 0;

	CU_ASSERT_EQUAL_FATAL(proc_start(&p, APP, 1, NULL, extra), 0);
	urls[0] = p.url;
	CU_ASSERT_EQUAL_FATAL(gild_connect(&c, urls, 1, NULL), GILD_OK);
	for (int i = 0; i < 10; i++) {
		pids[i] = call_int(c, "pid", 0, false, &code);
		failed += code != GILD_OK;
	}
	CU_ASSERT_EQUAL(failed, 0);
	for (int i = 1; i < 10; i++) {
		/* A new process exactly where a group of 3 starts. */
		CU_ASSERT_EQUAL(pids[i] != pids[i - 1], i % 3 == 0);
	}
	worker0_counts(c, &recycles, &restarts);
	CU_ASSERT_EQUAL(recycles, 3);
	CU_ASSERT_EQUAL(restarts, 0);
	gild_close(c);
	CU_ASSERT_EQUAL(proc_stop(&p), 0);
}

/* --max-worker-rss 150: the call that grew the worker past it succeeds,
 * then the worker is replaced before the next call. */
static void
test_max_worker_rss(void)
{
	static const char *const extra[] = {"--max-worker-rss", "150", NULL};
	gild_proc p;
	gild_client *c = NULL;
	const char *urls[1];
	int64_t small, big, after, recycles, restarts;
	int code1, code2, code3;

	CU_ASSERT_EQUAL_FATAL(proc_start(&p, APP, 1, NULL, extra), 0);
	urls[0] = p.url;
	CU_ASSERT_EQUAL_FATAL(gild_connect(&c, urls, 1, NULL), GILD_OK);
	small = call_int(c, "hold", 1, true, &code1);
	big = call_int(c, "hold", 300, true, &code2);
	after = call_int(c, "pid", 0, false, &code3);
	CU_ASSERT(code1 == GILD_OK && code2 == GILD_OK && code3 == GILD_OK);
	CU_ASSERT_EQUAL(small, big); /* under the limit: same process */
	CU_ASSERT_NOT_EQUAL(after, big); /* over it: replaced */
	worker0_counts(c, &recycles, &restarts);
	CU_ASSERT_EQUAL(recycles, 1);
	CU_ASSERT_EQUAL(restarts, 0);
	gild_close(c);
	CU_ASSERT_EQUAL(proc_stop(&p), 0);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("gild serve examples/app.py (2 workers)", suite_init,
	    suite_fini);
	CU_add_test(s, "every value kind round-trips", test_value_roundtrip);
	CU_add_test(s, "Python sees the expected types", test_python_types);
	CU_add_test(s, "numpy function returns a tensor", test_numpy_function);
	CU_add_test(s, "keyword arguments", test_kwargs);
	CU_add_test(s, "precise errors, still serving", test_errors);
	CU_add_test(s, "oversized request refused", test_oversized_request);
	CU_add_test(s, "stock cooked REQ client", test_stock_req_client);
	CU_add_test(s, "batches (gild_submit_many)", test_batches);
	CU_add_test(s, "malformed requests", test_malformed_requests);
	CU_add_test(s, "two workers run in parallel", test_parallel_workers);
	CU_add_test(s, "2,000 calls in flight", test_many_in_flight);
	CU_add_test(s, "bursts of 8,000 lose no reply", test_bursts_lose_nothing);
	CU_add_test(s, "ping and status", test_ping_and_status);
	CU_add_test(s, "worker SIGKILLed mid-call", test_worker_killed);
	CU_add_test(s, "worker exits mid-call", test_worker_exits);
	s = CU_add_suite("drain and admission", NULL, NULL);
	CU_add_test(s, "SIGTERM finishes accepted calls", test_sigterm_drains_accepted_calls);
	CU_add_test(s, "--max-queue refuses the overflow", test_max_queue);
	s = CU_add_suite("recycling", NULL, NULL);
	CU_add_test(s, "--max-jobs-per-worker", test_max_jobs_per_worker);
	CU_add_test(s, "--max-worker-rss", test_max_worker_rss);
	s = CU_add_suite("transports and startup", NULL, NULL);
	CU_add_test(s, "ipc://", test_ipc);
	CU_add_test(s, "ws://", test_ws);
	CU_add_test(s, "app that fails at import", test_broken_app);
	return test_run_all();
}
