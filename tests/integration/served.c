/* Shared helpers of the libgild-driven integration suites. */
#include "served.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

int
served_start(served *s, const char *app, int n, const char *const *extra)
{
	const char *urls[1];

	if (proc_start(&s->p, app, n, NULL, extra) != 0)
		return -1;
	urls[0] = s->p.url;
	return gild_connect(&s->c, urls, 1, NULL) == GILD_OK ? 0 : -1;
}

void
served_stop(served *s)
{
	served_close(s->c, "the test's client");
	CU_ASSERT_EQUAL(proc_stop(&s->p), 0); /* exit 0, no worker left */
}

void
served_close(gild_client *c, const char *what)
{
	if (client_close_bounded(c, 5000) != 0) {
		fprintf(stderr, "\n  closing %s hung\n", what);
		CU_FAIL("gild_close did not return within 5 s");
	}
}

int
served_worker_pids(gild_client *c, int64_t *pids, int max)
{
	gild_value *st = NULL;
	int n = 0;

	if (gild_status(c, 10000, &st, NULL) != GILD_OK)
		return 0;
	const gild_value *ws = gild_map_get(st, "workers");
	for (size_t i = 0; i < gild_value_len(ws) && n < max; i++) {
		const gild_value *w = gild_value_item(ws, i);
		const char *state = gild_value_str(gild_map_get(w, "state"), NULL);
		int64_t pid = gild_value_int(gild_map_get(w, "pid"));
		if (pid > 0 && state != NULL &&
		    (!strcmp(state, "ready") || !strcmp(state, "busy")))
			pids[n++] = pid;
	}
	gild_value_free(st);
	return n;
}

void
served_assert_serving(gild_client *c)
{
	gild_value *args = gild_list(), *out = NULL;

	gild_list_append(args, gild_int(40));
	gild_list_append(args, gild_int(2));
	CU_ASSERT_EQUAL(gild_call(c, "add", args, NULL, 20000, &out, NULL),
	    GILD_OK);
	CU_ASSERT_EQUAL(gild_value_int(out), 42);
	gild_value_free(out);
	gild_value_free(args);
}

gild_call_id
served_submit(gild_client *c, const char *fn, gild_value *arg, int timeout_ms)
{
	gild_value *args = gild_list();
	gild_call_id id = 0;
	gild_error err = {0};

	if (arg != NULL)
		gild_list_append(args, arg);
	if (gild_submit_timeout(c, fn, args, NULL, timeout_ms, &id, &err) !=
	    GILD_OK) {
		fprintf(stderr, "\n  submit %s: %s\n", fn, err.message);
		CU_FAIL("submit failed");
	}
	gild_value_free(args);
	gild_error_clear(&err);
	return id;
}

int64_t
served_status_int(gild_client *c, const char *field, bool worker)
{
	gild_value *st = NULL;
	int64_t v = -1;

	if (gild_status(c, 10000, &st, NULL) == GILD_OK) {
		const gild_value *m = worker
		    ? gild_value_item(gild_map_get(st, "workers"), 0) : st;
		v = gild_value_int(gild_map_get(m, field));
	}
	gild_value_free(st);
	return v;
}

int
served_wait(gild_client *c, gild_call_id id, gild_result *res)
{
	memset(res, 0, sizeof(*res));
	if (gild_wait(c, id, 30000, res) != GILD_OK) {
		CU_FAIL("no reply within 30 s");
		return -1;
	}
	return res->code;
}
