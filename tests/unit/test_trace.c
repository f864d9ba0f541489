/* Tests of proto/trace.c: which W3C trace contexts pass, which are refused
 * and why, and a TraceContext message packed by protobuf-c read back. */
#include "gild.pb-c.h"
#include "trace.h"

#include <CUnit/Basic.h>
#include <string.h>
#include "test_main.h"

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void
test_traceparent(void)
{
	static const struct {
		const char *tp;
		const char *why; /* a part of the reason, NULL: accepted */
	} cases[] = {
	    {TP, NULL},
	    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", NULL},
	    {"00-00000000000000000000000000000001-0000000000000001-ff", NULL},
	    {"", "55 characters"},
	    {TP "0", "55 characters"},
	    {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"trace id"},
	    {"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"version 00"},
	    {"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"version 00"},
	    {"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "form"},
	    {"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01", "form"},
	    {"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"trace id is all zeros"},
	    {"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"parent id is all zeros"},
	    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bg-01",
		"parent id"},
	    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x", "flags"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = trace_parent_error(cases[i].tp,
		    strlen(cases[i].tp));
		if (cases[i].why == NULL) {
			CU_ASSERT_PTR_NULL(why);
		} else {
			CU_ASSERT(why != NULL && strstr(why, cases[i].why));
		}
	}
}

static void
test_tracestate(void)
{
	char s[514];

	CU_ASSERT_PTR_NULL(trace_state_error("", 0));
	CU_ASSERT_PTR_NULL(trace_state_error("a=b, c=d\te", 10));
	memset(s, 'x', sizeof(s));
	CU_ASSERT_PTR_NULL(trace_state_error(s, 512));
	CU_ASSERT_PTR_NOT_NULL(trace_state_error(s, 513));
	CU_ASSERT_PTR_NOT_NULL(trace_state_error("a=b\n", 4));
	CU_ASSERT_PTR_NOT_NULL(trace_state_error("a=\x7f", 3));
	CU_ASSERT_PTR_NOT_NULL(trace_state_error("a=\xc3\xa9", 4));
	CU_ASSERT_PTR_NOT_NULL(trace_state_error("a\0b", 3));
}

/* A TraceContext as protobuf-c packs it, read back. */
static void
test_read(void)
{
	Gild__V1__TraceContext tc = GILD__V1__TRACE_CONTEXT__INIT;
	uint8_t buf[1200];
	trace_fields f;
	size_t n;

	tc.traceparent = TP;
	tc.tracestate = "k=v";
	n = gild__v1__trace_context__pack(&tc, buf);
	CU_ASSERT_PTR_NULL(trace_read(buf, n, &f));
	CU_ASSERT_EQUAL(f.parent_len, strlen(TP));
	CU_ASSERT(f.parent != NULL && memcmp(f.parent, TP, f.parent_len) == 0);
	CU_ASSERT(f.state_len == 3 && memcmp(f.state, "k=v", 3) == 0);
	/* Empty: no trace context, and no error. */
	CU_ASSERT_PTR_NULL(trace_read(buf, 0, &f));
	CU_ASSERT_PTR_NULL(f.parent);
	CU_ASSERT_PTR_NULL(f.state);
	/* A tracestate alone, a bad traceparent, broken bytes, too long. */
	tc.traceparent = "";
	n = gild__v1__trace_context__pack(&tc, buf);
	CU_ASSERT_PTR_NOT_NULL(trace_read(buf, n, &f));
	tc.traceparent = "00-x";
	n = gild__v1__trace_context__pack(&tc, buf);
	CU_ASSERT_PTR_NOT_NULL(trace_read(buf, n, &f));
	CU_ASSERT_PTR_NOT_NULL(trace_read((const uint8_t *) "\xff\xff", 2, &f));
	memset(buf, 0, sizeof(buf));
	CU_ASSERT_PTR_NOT_NULL(trace_read(buf, sizeof(buf), &f));
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("trace", NULL, NULL);
	CU_add_test(s, "traceparent", test_traceparent);
	CU_add_test(s, "tracestate", test_tracestate);
	CU_add_test(s, "TraceContext read", test_read);
	return test_run_all();
}
