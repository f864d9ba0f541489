/* Tests of server/parse.c: how the front end classifies untrusted bytes. */
#include "gild.pb-c.h"
#include "server/parse.h"
#include "worker.pb-c.h"
#include "test_main.h"

#include <CUnit/Basic.h>
#include <string.h>

#define B(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

static void
test_requests(void)
{
	const struct {
		const char *name;
		const uint8_t *bytes;
		size_t len;
		size_t max;
		int code;
		enum parse_body body;
		uint64_t id;
		const char *msg; /* part of the message, when refused */
	} cases[] = {
	    {"ping with id", B(0x08, 0x07, 0x2a, 0x00), 64, 0, BODY_PING, 7, NULL},
	    {"status", B(0x22, 0x00), 64, 0, BODY_STATUS, 0, NULL},
	    {"call add", B(0x08, 0x01, 0x12, 0x05, 0x0a, 0x03, 'a', 'd', 'd'),
		64, 0, BODY_CALL, 1, NULL},
	    {"cancel 9", B(0x08, 0x02, 0x1a, 0x02, 0x08, 0x09), 64, 0,
		BODY_CANCEL, 2, NULL},
	    {"empty message", (const uint8_t *) "", 0, 64,
		GILD__V1__CODE__INVALID_ARGUMENT, BODY_NONE, 0, "no body"},
	    {"id only", B(0x08, 0x05), 64, GILD__V1__CODE__INVALID_ARGUMENT,
		BODY_NONE, 5, "request 5 has no body"},
	    {"garbage", B(0xff, 0xff, 0xff), 64,
		GILD__V1__CODE__INVALID_ARGUMENT, BODY_NONE, 0, "malformed"},
	    {"call without name", B(0x12, 0x00), 64,
		GILD__V1__CODE__INVALID_ARGUMENT, BODY_CALL, 0,
		"no function name"},
	    {"call with broken body", B(0x12, 0x02, 0x0a, 0x05), 64,
		GILD__V1__CODE__INVALID_ARGUMENT, BODY_CALL, 0, "malformed call"},
	    {"over max", B(0x08, 0x03, 0x2a, 0x00), 3,
		GILD__V1__CODE__RESOURCE_EXHAUSTED, BODY_PING, 3,
		"exceeds the server's --max-message of 3 bytes"},
	    {"unknown fields ignored", B(0x08, 0x04, 0x78, 0x01, 0x2a, 0x00), 64,
		0, BODY_PING, 4, NULL},
	    /* Request{id 6, batch{requests [Request{id 7, ping{}}]}} */
	    {"batch", B(0x08, 0x06, 0x52, 0x06, 0x0a, 0x04, 0x08, 0x07, 0x2a,
		0x00), 64, 0, BODY_BATCH, 6, NULL},
	    /* Request{id 8, exec{source "x=1"}} */
	    {"exec", B(0x08, 0x08, 0x5a, 0x05, 0x0a, 0x03, 'x', '=', '1'), 64,
		0, BODY_EXEC, 8, NULL},
	    {"exec with broken body", B(0x5a, 0x02, 0x0a, 0x05), 64,
		GILD__V1__CODE__INVALID_ARGUMENT, BODY_EXEC, 0,
		"malformed exec"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parsed_request pr;
		parse_request(cases[i].bytes, cases[i].len, cases[i].max, &pr);
		if (pr.code != cases[i].code || pr.body != cases[i].body ||
		    pr.id != cases[i].id ||
		    (cases[i].msg && !strstr(pr.message, cases[i].msg))) {
			fprintf(stderr, "\n  %s: code %d body %d id %llu: %s\n",
			    cases[i].name, pr.code, pr.body,
			    (unsigned long long) pr.id, pr.message);
			CU_FAIL(cases[i].name);
		}
	}
}

static void
test_call_and_cancel_fields(void)
{
	parsed_request pr;

	/* Exec{source "", timeout_ms 300}: the name it goes by, its deadline */
	parse_request(B(0x5a, 0x05, 0x0a, 0x00, 0x18, 0xac, 0x02), 64, &pr);
	CU_ASSERT_EQUAL(pr.code, 0);
	CU_ASSERT_EQUAL(pr.body, BODY_EXEC);
	CU_ASSERT_EQUAL(pr.timeout_ms, 300);
	CU_ASSERT_EQUAL(pr.function_len, strlen(PARSE_EXEC_NAME));
	CU_ASSERT(memcmp(pr.function, PARSE_EXEC_NAME, pr.function_len) == 0);

	parse_request(B(0x08, 0x01, 0x12, 0x05, 0x0a, 0x03, 'a', 'd', 'd'), 64,
	    &pr);
	CU_ASSERT_EQUAL(pr.function_len, 3);
	CU_ASSERT(memcmp(pr.function, "add", 3) == 0);
	CU_ASSERT_EQUAL(pr.len, 5);
	CU_ASSERT_EQUAL(pr.timeout_ms, 0);
	/* Call{function: "f", timeout_ms: 300} */
	parse_request(B(0x12, 0x06, 0x0a, 0x01, 'f', 0x20, 0xac, 0x02), 64, &pr);
	CU_ASSERT_EQUAL(pr.code, 0);
	CU_ASSERT_EQUAL(pr.timeout_ms, 300);
	/* A timeout over 32 bits is clamped, not wrapped. */
	parse_request(B(0x12, 0x09, 0x0a, 0x01, 'f', 0x20, 0x80, 0x80, 0x80,
			  0x80, 0x20),
	    64, &pr);
	CU_ASSERT_EQUAL(pr.timeout_ms, UINT32_MAX);
	/* Call{function: "f", stream: true, window: 8} */
	parse_request(B(0x12, 0x07, 0x0a, 0x01, 'f', 0x28, 0x01, 0x30, 0x08),
	    64, &pr);
	CU_ASSERT_EQUAL(pr.code, 0);
	CU_ASSERT_TRUE(pr.stream);
	CU_ASSERT_EQUAL(pr.window, 8);
	/* Request{id: 3, stream_next: {call_id: 2, max: 5}} */
	parse_request(B(0x08, 0x03, 0x32, 0x04, 0x08, 0x02, 0x10, 0x05), 64, &pr);
	CU_ASSERT_EQUAL(pr.code, 0);
	CU_ASSERT_EQUAL(pr.body, BODY_STREAM_NEXT);
	CU_ASSERT_EQUAL(pr.stream_call, 2);
	CU_ASSERT_EQUAL(pr.stream_max, 5);
	parse_request(B(0x08, 0x02, 0x1a, 0x02, 0x08, 0x09), 64, &pr);
	CU_ASSERT_EQUAL(pr.cancel_target, 9);
	parse_request(B(0x2a, 0x04, 0x0a, 0x02, 'h', 'i'), 64, &pr);
	CU_ASSERT_EQUAL(pr.body, BODY_PING);
	CU_ASSERT_EQUAL(pr.ping_payload_len, 2);
	CU_ASSERT(pr.ping_payload && memcmp(pr.ping_payload, "hi", 2) == 0);
	parse_request(B(0x2a, 0x00), 64, &pr);
	CU_ASSERT_PTR_NULL(pr.ping_payload);
}

/* Shared memory: Ping.want_shm, and Request.shm (12) standing in for the
 * body (the request is in a memfd: no "has no body" refusal). */
static void
test_shm_fields(void)
{
	parsed_request pr;

	/* Request{ping{want_shm: true}} */
	parse_request(B(0x2a, 0x02, 0x10, 0x01), 64, &pr);
	CU_ASSERT_EQUAL(pr.code, 0);
	CU_ASSERT_TRUE(pr.want_shm);
	CU_ASSERT_FALSE(pr.shm);
	/* Request{id: 4, shm{handle: 7, len: 300}} */
	parse_request(B(0x08, 0x04, 0x62, 0x05, 0x08, 0x07, 0x10, 0xac, 0x02),
	    64, &pr);
	CU_ASSERT_EQUAL(pr.code, 0);
	CU_ASSERT_EQUAL(pr.id, 4);
	CU_ASSERT_TRUE(pr.shm);
	CU_ASSERT_EQUAL(pr.shm_handle, 7);
	CU_ASSERT_EQUAL(pr.shm_len, 300);
	/* An empty ShmRef is still one (handle 0, len 0: refused later). */
	parse_request(B(0x62, 0x00), 64, &pr);
	CU_ASSERT_EQUAL(pr.code, 0);
	CU_ASSERT_TRUE(pr.shm);
	CU_ASSERT_EQUAL(pr.shm_len, 0);
	/* shm as a varint is not one: no body. */
	parse_request(B(0x60, 0x01), 64, &pr);
	CU_ASSERT_FALSE(pr.shm);
	CU_ASSERT_EQUAL(pr.code, GILD__V1__CODE__INVALID_ARGUMENT);
}

/* Request.token (15) is read from any request; a varint 15 is not one. */
static void
test_token(void)
{
	parsed_request pr;

	parse_request(B(0x08, 0x01, 0x7a, 0x03, 'a', 'b', 'c', 0x2a, 0x00), 64,
	    &pr);
	CU_ASSERT_EQUAL(pr.code, 0);
	CU_ASSERT_EQUAL(pr.body, BODY_PING);
	CU_ASSERT_EQUAL_FATAL(pr.token_len, 3);
	CU_ASSERT_NSTRING_EQUAL(pr.token, "abc", 3);
	parse_request(B(0x7a, 0x00, 0x22, 0x00), 64, &pr); /* empty token */
	CU_ASSERT_PTR_NOT_NULL(pr.token);
	CU_ASSERT_EQUAL(pr.token_len, 0);
	parse_request(B(0x78, 0x01, 0x22, 0x00), 64, &pr);
	CU_ASSERT_PTR_NULL(pr.token);
}

static void
test_from_worker(void)
{
	Gild__Worker__V1__FromWorker fw = GILD__WORKER__V1__FROM_WORKER__INIT;
	Gild__V1__Value v = GILD__V1__VALUE__INIT;
	parsed_from_worker out;
	uint8_t buf[64], twice[128];
	size_t n;

	v.kind_case = GILD__V1__VALUE__KIND_INT_VALUE;
	v.int_value = 5;
	fw.job_id = 42;
	fw.body_case = GILD__WORKER__V1__FROM_WORKER__BODY_RESULT;
	fw.result = &v;
	n = gild__worker__v1__from_worker__pack(&fw, buf);
	parse_from_worker(buf, n, &out);
	CU_ASSERT_EQUAL(out.kind, FW_RESULT);
	CU_ASSERT_EQUAL(out.job_id, 42);
	CU_ASSERT_PTR_EQUAL(out.data, buf + 2); /* after the job_id field */
	CU_ASSERT_EQUAL(out.len, n - 2);

	/* A field 1 after the result must not ride along into the Reply. */
	memcpy(twice, buf, n);
	twice[n] = 0x08;
	twice[n + 1] = 0x63;
	parse_from_worker(twice, n + 2, &out);
	CU_ASSERT_EQUAL(out.kind, FW_RESULT);
	CU_ASSERT_EQUAL(out.job_id, 99);
	CU_ASSERT_EQUAL(out.len, n - 2);

	parse_from_worker(B(0x22, 0x00), &out);
	CU_ASSERT_EQUAL(out.kind, FW_HELLO);
	parse_from_worker(B(0x2a, 0x00), &out);
	CU_ASSERT_EQUAL(out.kind, FW_STARTUP_ERROR);
	parse_from_worker(B(0x32, 0x02, 0x10, 0x07), &out);
	CU_ASSERT_EQUAL(out.kind, FW_SPAWNED);
	CU_ASSERT_EQUAL(out.len, 2);
	parse_from_worker(B(0x3a, 0x00), &out);
	CU_ASSERT_EQUAL(out.kind, FW_EXITED);
	parse_from_worker(B(0x08, 0x05, 0x42, 0x02, 0x08, 0x00), &out);
	CU_ASSERT_EQUAL(out.kind, FW_CHUNK);
	CU_ASSERT_EQUAL(out.job_id, 5);
	parse_from_worker(B(0x08, 0x05, 0x4a, 0x00), &out);
	CU_ASSERT_EQUAL(out.kind, FW_STREAM_END);
	CU_ASSERT_FALSE(out.exiting);
	/* A result, then exiting = true (field 10). */
	parse_from_worker(B(0x08, 0x05, 0x1a, 0x00, 0x50, 0x01), &out);
	CU_ASSERT_EQUAL(out.kind, FW_RESULT);
	CU_ASSERT_TRUE(out.exiting);
	/* A result with run_us = 300 (field 11) after it. */
	parse_from_worker(B(0x08, 0x05, 0x1a, 0x00, 0x58, 0xac, 0x02), &out);
	CU_ASSERT_EQUAL(out.kind, FW_RESULT);
	CU_ASSERT_EQUAL(out.run_us, 300);
	CU_ASSERT_EQUAL(out.len, 2); /* the stamp is not the Reply's */
	/* Take-back answers (field 12): returned, or (empty) started. */
	parse_from_worker(B(0x08, 0x07, 0x62, 0x02, 0x08, 0x01), &out);
	CU_ASSERT_EQUAL(out.kind, FW_TAKEN_BACK);
	CU_ASSERT_EQUAL(out.job_id, 7);
	CU_ASSERT_TRUE(out.returned);
	parse_from_worker(B(0x08, 0x07, 0x62, 0x00), &out);
	CU_ASSERT_EQUAL(out.kind, FW_TAKEN_BACK);
	CU_ASSERT_FALSE(out.returned);
	parse_from_worker(B(0x08, 0x01), &out); /* a job id and nothing else */
	CU_ASSERT_EQUAL(out.kind, FW_MALFORMED);
	parse_from_worker(B(0x12, 0x05, 0x00), &out); /* cut short */
	CU_ASSERT_EQUAL(out.kind, FW_MALFORMED);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("parse", NULL, NULL);
	CU_add_test(s, "requests: accepted and refused", test_requests);
	CU_add_test(s, "call and cancel fields", test_call_and_cancel_fields);
	CU_add_test(s, "Request.token", test_token);
	CU_add_test(s, "shared memory fields", test_shm_fields);
	CU_add_test(s, "FromWorker frames", test_from_worker);
	return test_run_all();
}
