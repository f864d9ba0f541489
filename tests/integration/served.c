/* Shared helpers of the libgild-driven integration suites. */
#include "served.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

void
served_run(gild_client *c, const char *fn, gild_value *arg)
{
	gild_result res;

	CU_ASSERT_EQUAL(served_wait(c, served_submit(c, fn, arg, 0), &res),
	    GILD_OK);
	gild_result_clear(&res);
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

/* Submits fn(ledger, token) of tests/apps/ledger.py (stamp or
 * stamp_long), or with gate (not NULL) fn(ledger, token, gate); a failure
 * is a test failure. */
static gild_call_id
stamps_submit(gild_client *c, const char *fn, const char *ledger,
    const char *token, const char *gate)
{
	gild_value *args = gild_list();
	gild_call_id id = 0;
	gild_error err = {0};

	gild_list_append(args, gild_str(ledger, strlen(ledger)));
	gild_list_append(args, gild_str(token, strlen(token)));
	if (gate != NULL)
		gild_list_append(args, gild_str(gate, strlen(gate)));
	if (gild_submit(c, fn, args, NULL, &id, &err) != GILD_OK) {
		fprintf(stderr, "\n  submit %s %s: %s\n", fn, token,
		    err.message);
		CU_FAIL("submit failed");
	}
	gild_value_free(args);
	gild_error_clear(&err);
	return id;
}

/* Reads up to max lines of the ledger at path into out; returns how many
 * (0 when there is no ledger yet). */
static int
stamps_read(const char *path, stamp *out, int max)
{
	FILE *f = fopen(path, "r");
	char what[8];
	int n = 0;

	if (f == NULL)
		return 0;
	while (n < max && fscanf(f, "%7s %31s %lld %llu", what, out[n].token,
			      &out[n].pid, &out[n].thread) == 4) {
		out[n].start = strcmp(what, "start") == 0;
		n++;
	}
	fclose(f);
	return n;
}

/* Where token's start (start) or end line is in s[0..n), or -1. */
static int
stamps_find(const stamp *s, int n, bool start, const char *token)
{
	for (int i = 0; i < n; i++)
		if (s[i].start == start && strcmp(s[i].token, token) == 0)
			return i;
	return -1;
}

/* Waits (30 s at most) until the ledger at path (its first STAMPS_MAX
 * lines) has token's start line; returns whether it came. */
#define STAMPS_MAX 512
static bool
stamps_wait_start(const char *path, const char *token, stamp *buf)
{
	for (int i = 0; i < 3000; i++) {
		int n = stamps_read(path, buf, STAMPS_MAX);
		if (stamps_find(buf, n, true, token) >= 0)
			return true;
		usleep(10 * 1000);
	}
	return false;
}

void
stamps_gated_run(served *s, int warm, int n, gated_run *out)
{
	stamps_gated_run_fn(s, "stamp", warm, n, out);
}

void
stamps_gated_run_fn(served *s, const char *fn, int warm, int n,
    gated_run *out)
{
	static stamp st[STAMPS_MAX];
	char ledger[300], gate[300], token[32];
	gild_call_id gated, *ids = calloc((size_t) n, sizeof(*ids));
	int lines, start_g, end_g;
	gild_result res;
	FILE *f;

	memset(out, 0, sizeof(*out));
	CU_ASSERT_FATAL(ids != NULL && 2 * (warm + n + 1) <= STAMPS_MAX);
	snprintf(ledger, sizeof(ledger), "%s/ledger", s->p.dir);
	snprintf(gate, sizeof(gate), "%s/gate", s->p.dir);
	for (int i = 0; i < warm; i++) {
		snprintf(token, sizeof(token), "warm%d", i);
		CU_ASSERT_EQUAL(served_wait(s->c, stamps_submit(s->c, fn,
						      ledger, token, NULL),
				    &res),
		    GILD_OK);
		gild_result_clear(&res);
	}
	gated = stamps_submit(s->c, fn, ledger, "gated", gate);
	CU_ASSERT(stamps_wait_start(ledger, "gated", st));
	for (int i = 0; i < n; i++) {
		snprintf(token, sizeof(token), "call%d", i);
		ids[i] = stamps_submit(s->c, fn, ledger, token, NULL);
	}
	for (double end = now_s() + 20; out->answered < n && now_s() < end;) {
		memset(&res, 0, sizeof(res));
		if (gild_poll(s->c, 100, &res) == GILD_OK) {
			CU_ASSERT_EQUAL(res.code, GILD_OK);
			CU_ASSERT_NOT_EQUAL(res.id, gated);
			out->answered++;
		}
		gild_result_clear(&res);
	}
	if ((f = fopen(gate, "w")) != NULL)
		fclose(f);
	CU_ASSERT_EQUAL(served_wait(s->c, gated, &res), GILD_OK);
	gild_result_clear(&res);
	for (int i = 0; i < n; i++) {
		if (gild_wait(s->c, ids[i], 30000, &res) == GILD_OK)
			CU_ASSERT_EQUAL(res.code, GILD_OK);
		gild_result_clear(&res);
	}
	free(ids);
	lines = stamps_read(ledger, st, STAMPS_MAX);
	start_g = stamps_find(st, lines, true, "gated");
	end_g = stamps_find(st, lines, false, "gated");
	CU_ASSERT_FATAL(start_g >= 0 && end_g > start_g);
	for (int i = 0; i < lines; i++) {
		int k = 0;
		if (!st[i].start)
			continue;
		out->twice += stamps_find(st, i, true, st[i].token) >= 0;
		if (!strncmp(st[i].token, "warm", 4))
			continue;
		while (k < i && !(st[k].start && st[k].pid == st[i].pid &&
				    st[k].thread == st[i].thread &&
				    strncmp(st[k].token, "warm", 4) != 0))
			k++;
		out->places += k == i; /* the first call to run there */
		if (strncmp(st[i].token, "call", 4) != 0)
			continue;
		out->late += i > end_g;
		out->beside += st[i].pid == st[start_g].pid &&
			       st[i].thread == st[start_g].thread;
	}
	for (int i = 0; i < n; i++) {
		snprintf(token, sizeof(token), "call%d", i);
		CU_ASSERT(stamps_find(st, lines, true, token) >= 0);
	}
}

void
stamps_assert_none_waited(const gated_run *r, int n, const char *place)
{
	if (r->answered < n || r->late > 0 || r->beside > 0 || r->twice > 0)
		fprintf(stderr,
		    "\n  %d of %d calls answered while the gated one held its "
		    "%s; %d started after it ended, %d ran on its %s, %d ran "
		    "twice\n",
		    r->answered, n, place, r->late, r->beside, place, r->twice);
	CU_ASSERT_EQUAL(r->answered, n);
	CU_ASSERT_EQUAL(r->late, 0);
	CU_ASSERT_EQUAL(r->beside, 0);
	CU_ASSERT_EQUAL(r->twice, 0); /* a call taken back ran once */
	CU_ASSERT_EQUAL(r->places, 2);
}
