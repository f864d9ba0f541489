/* Integration tests of streams, batching and the call context, against the
 * real gild serving tests/apps/features.py. */
#include "gild.h"
#include "integration/harness.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test_main.h"

#define APP "tests/apps/features.py"

typedef struct server {
	gild_proc p;
	gild_client *c;
} server;

static int
start(server *s, int workers, const char *const *extra)
{
	const char *urls[1];

	if (proc_start(&s->p, APP, workers, NULL, extra) != 0)
		return -1;
	urls[0] = s->p.url;
	return gild_connect(&s->c, urls, 1, NULL) == GILD_OK ? 0 : -1;
}

static void
stop(server *s)
{
	gild_close(s->c);
	CU_ASSERT_EQUAL(proc_stop(&s->p), 0);
}

/* Submits fn(arg) (arg taken; NULL: no argument). */
static gild_call_id
submit(gild_client *c, const char *fn, gild_value *arg, int timeout_ms)
{
	gild_value *args = gild_list();
	gild_call_id id = 0;

	if (arg != NULL)
		gild_list_append(args, arg);
	CU_ASSERT_EQUAL(gild_submit_timeout(c, fn, args, NULL, timeout_ms, &id,
			    NULL), GILD_OK);
	gild_value_free(args);
	return id;
}

static int
wait_for(gild_client *c, gild_call_id id, gild_result *res)
{
	memset(res, 0, sizeof(*res));
	if (gild_wait(c, id, 30000, res) != GILD_OK) {
		CU_FAIL("no reply within 30 s");
		return -1;
	}
	return res->code;
}

/* ---- batching ---------------------------------------------------------- */

/* Item 5: on a 1-worker server, a lone call runs at once as a batch of 1;
 * 64 concurrent calls run in a handful of batches, each caller getting its
 * own result. */
static void
test_batching(void)
{
	enum { N = 64 };
	gild_call_id ids[N];
	gild_result res;
	server s;
	int64_t total = 0;
	size_t nb;

	CU_ASSERT_EQUAL_FATAL(start(&s, 1, NULL), 0);
	/* Idle server: dispatched without waiting for batch_wait_ms (200). */
	CU_ASSERT_EQUAL(wait_for(s.c, submit(s.c, "double", gild_int(21), 0),
			    &res), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_int(res.value), 42);
	gild_result_clear(&res);
	CU_ASSERT_EQUAL(wait_for(s.c, submit(s.c, "batches", NULL, 0), &res),
	    GILD_OK);
	{
		const gild_value *b = gild_value_item(res.value, 0);
		CU_ASSERT_EQUAL(gild_value_len(res.value), 1);
		CU_ASSERT_EQUAL(gild_value_int(gild_value_item(b, 0)), 1);
		/* The recorded queueing delay, far below batch_wait_ms. */
		CU_ASSERT(gild_value_float(gild_value_item(b, 1)) < 100.0);
		CU_ASSERT_EQUAL(gild_value_int(gild_value_item(b, 2)), 1);
	}
	gild_result_clear(&res);

	for (int i = 0; i < N; i++)
		ids[i] = submit(s.c, "double", gild_int(i), 0);
	for (int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(wait_for(s.c, ids[i], &res), GILD_OK);
		CU_ASSERT_EQUAL(gild_value_int(res.value), 2 * i);
		gild_result_clear(&res);
	}
	CU_ASSERT_EQUAL(wait_for(s.c, submit(s.c, "batches", NULL, 0), &res),
	    GILD_OK);
	nb = gild_value_len(res.value);
	for (size_t i = 1; i < nb; i++) {
		const gild_value *b = gild_value_item(res.value, i);
		total += gild_value_int(gild_value_item(b, 0));
		fprintf(stderr, "%s%lld", i == 1 ? "\n  batches: " : ", ",
		    (long long) gild_value_int(gild_value_item(b, 0)));
	}
	fprintf(stderr, "\n");
	CU_ASSERT_EQUAL(total, N);
	CU_ASSERT(nb - 1 <= 5); /* a handful of batches for 64 calls */
	gild_result_clear(&res);

	/* A wrong-length return fails each call of its batch, clearly. */
	for (int i = 0; i < 3; i++)
		ids[i] = submit(s.c, "wrong_length", gild_int(i), 0);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(wait_for(s.c, ids[i], &res), GILD_PYTHON_ERROR);
		CU_ASSERT(res.error.message &&
			  strstr(res.error.message, "results for") != NULL);
		gild_result_clear(&res);
	}
	/* A batched function takes exactly one argument per call. */
	{
		gild_value *args = gild_list(), *out = NULL;
		gild_error err = {0};
		gild_list_append(args, gild_int(1));
		gild_list_append(args, gild_int(2));
		CU_ASSERT_EQUAL(gild_call(s.c, "double", args, NULL, 20000, &out,
				    &err), GILD_INVALID_ARGUMENT);
		CU_ASSERT(err.message &&
			  strstr(err.message, "exactly one positional") != NULL);
		gild_error_clear(&err);
		gild_value_free(args);
	}
	stop(&s);
}

/* ---- context ----------------------------------------------------------- */

static void
test_context(void)
{
	gild_result res;
	gild_call_id id;
	server s;
	double left;

	CU_ASSERT_EQUAL_FATAL(start(&s, 1, NULL), 0);
	id = submit(s.c, "whoami", NULL, 5000);
	CU_ASSERT_EQUAL_FATAL(wait_for(s.c, id, &res), GILD_OK);
	CU_ASSERT_EQUAL((gild_call_id) gild_value_int(
			    gild_map_get(res.value, "request_id")), id);
	CU_ASSERT_STRING_EQUAL(gild_value_str(gild_map_get(res.value,
				   "function"), NULL), "whoami");
	left = gild_value_float(gild_map_get(res.value, "time_left"));
	CU_ASSERT(left > 0 && left <= 5.0);
	CU_ASSERT_EQUAL(gild_value_int(gild_map_get(res.value, "batch_size")), 1);
	CU_ASSERT_FALSE(gild_value_bool(gild_map_get(res.value, "cancelled")));
	gild_result_clear(&res);
	/* No deadline: time_left is None. */
	CU_ASSERT_EQUAL(wait_for(s.c, submit(s.c, "whoami", NULL, 0), &res),
	    GILD_OK);
	CU_ASSERT_EQUAL(gild_value_kind(gild_map_get(res.value, "time_left")),
	    GILD_NULL);
	gild_result_clear(&res);
	stop(&s);
}

/* ---- async functions ---------------------------------------------------- */

/* Item 6: 100 concurrent calls of an async def awaiting asyncio.sleep(0.2),
 * concurrency=100, one worker: every call started before any ended. And a
 * deadline cancels an awaiting coroutine (its finally: runs). */
static void
test_async(void)
{
	enum { N = 100 };
	gild_call_id ids[N];
	gild_result res;
	server s;
	double last_start = 0, first_end = 1e300;
	char path[256];
	int ok = 0;

	CU_ASSERT_EQUAL_FATAL(start(&s, 1, NULL), 0);
	for (int i = 0; i < N; i++)
		ids[i] = submit(s.c, "snooze", gild_float(0.2), 0);
	for (int i = 0; i < N; i++) {
		if (wait_for(s.c, ids[i], &res) == GILD_OK) {
			double a = gild_value_float(gild_value_item(res.value, 0));
			double b = gild_value_float(gild_value_item(res.value, 1));
			ok++;
			last_start = a > last_start ? a : last_start;
			first_end = b < first_end ? b : first_end;
		}
		gild_result_clear(&res);
	}
	CU_ASSERT_EQUAL(ok, N);
	fprintf(stderr, "\n  last start %.3f s before the first end\n",
	    first_end - last_start);
	CU_ASSERT(last_start < first_end); /* one overlap window */

	snprintf(path, sizeof(path), "%s/async", s.p.dir);
	{
		gild_value *args = gild_list();
		gild_call_id id;
		gild_list_append(args, gild_float(30));
		gild_list_append(args, gild_cstr(path));
		CU_ASSERT_EQUAL(gild_submit_timeout(s.c, "snooze_marked", args,
				    NULL, 200, &id, NULL), GILD_OK);
		gild_value_free(args);
		CU_ASSERT_EQUAL(wait_for(s.c, id, &res), GILD_DEADLINE_EXCEEDED);
		gild_result_clear(&res);
	}
	{
		FILE *f = fopen(path, "r");
		char line[64] = "";
		CU_ASSERT_PTR_NOT_NULL(f);
		if (f != NULL) {
			CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof(line), f));
			fclose(f);
		}
		CU_ASSERT_STRING_EQUAL(line, "finally ran\n");
	}
	stop(&s);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("features (tests/apps/features.py)", NULL, NULL);
	CU_add_test(s, "dynamic batching", test_batching);
	CU_add_test(s, "gild.context()", test_context);
	CU_add_test(s, "async def with concurrency", test_async);
	return test_run_all();
}
