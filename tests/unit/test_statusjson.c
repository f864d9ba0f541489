/* Tests of common/statusjson.c: a Status as the JSON /status and `gildctl
 * status` print. */
#include "common/statusjson.h"

#include <CUnit/Basic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "test_main.h"

/* Every field is written, with the kinds JSON readers expect. */
static void
test_fields(void)
{
	Gild__V1__Status st = GILD__V1__STATUS__INIT;
	Gild__V1__WorkerStatus w = GILD__V1__WORKER_STATUS__INIT;
	Gild__V1__WorkerStatus *wp = &w;
	Gild__V1__ServiceTime t = GILD__V1__SERVICE_TIME__INIT;
	Gild__V1__ServiceTime *tp = &t;
	char *fns[] = {"ping", "nap"};
	json_t *o, *ws;

	st.server_version = "1.2.3";
	st.app = "app.py";
	st.runtime = "process";
	st.functions = fns;
	st.n_functions = 2;
	w.slot = 1;
	w.pid = 4242;
	w.state = "ready";
	w.jobs_done = 1ull << 40;
	st.workers = &wp;
	st.n_workers = 1;
	st.queued = 3;
	st.uptime_s = 0.5;
	st.gil_enabled = true;
	t.function = "nap";
	t.us = 1500;
	st.service_times = &tp;
	st.n_service_times = 1;
	st.shm_requests = 7;
	CU_ASSERT_PTR_NOT_NULL_FATAL(o = statusjson_object(&st));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "app")),
	    "app.py");
	CU_ASSERT_EQUAL(json_array_size(json_object_get(o, "functions")), 2);
	ws = json_object_get(o, "workers");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(
	    json_array_get(ws, 0), "pid")), 4242);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(
	    json_array_get(ws, 0), "jobs_done")), 1ll << 40);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(
	    json_object_get(o, "service_us"), "nap")), 1500);
	CU_ASSERT(json_is_true(json_object_get(o, "gil_enabled")));
	CU_ASSERT_EQUAL(json_real_value(json_object_get(o, "uptime_s")), 0.5);
	/* Unset strings are "", not null. */
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o,
	    "python_version")), "");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "shm_requests")),
	    7);
	CU_ASSERT_EQUAL(json_object_size(o), 19);
	json_decref(o);
}

/* Text that is not UTF-8 (an app's path) is kept, each bad byte U+FFFD:
 * jansson would refuse it, and /status would fail whole. */
static void
test_not_utf8(void)
{
	Gild__V1__Status st = GILD__V1__STATUS__INIT;
	char *fns[] = {"caf\xc3\xa9"};
	json_t *o;
	char *text;

	st.app = "/srv/\xff" "app\xc3.py";
	st.functions = fns;
	st.n_functions = 1;
	CU_ASSERT_PTR_NOT_NULL_FATAL(o = statusjson_object(&st));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "app")),
	    "/srv/\xef\xbf\xbd" "app\xef\xbf\xbd.py");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(
	    json_object_get(o, "functions"), 0)), "caf\xc3\xa9");
	/* One line, with Python json.dumps' separators. */
	text = statusjson_dump(json_object_get(o, "functions"), 0);
	CU_ASSERT_STRING_EQUAL(text, "[\"caf\xc3\xa9\"]");
	free(text);
	json_decref(o);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("statusjson", NULL, NULL);
	CU_add_test(s, "every field, with its JSON kind", test_fields);
	CU_add_test(s, "text that is not UTF-8", test_not_utf8);
	return test_run_all();
}
