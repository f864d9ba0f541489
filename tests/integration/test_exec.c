/* Integration tests of the exec and pickle gates: Exec requests and pickle
 * values are refused with PERMISSION_DENIED unless gild serve --allow-exec
 * / --allow-pickle, a refused pickle is never unpickled, and with the flags
 * both work end to end (deadline, cancel, WORKER_LOST, errors). Against the
 * real gild serving tests/apps/gated.py. */
#include "gild.h"
#include "integration/harness.h"
#include "integration/served.h"
#include "server/sched.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test_main.h"

#define APP "tests/apps/gated.py"

/* A protocol 0 pickle whose loading calls open(path, "w"): unpickling it
 * creates the file, so the file's existence says whether it was unpickled. */
static gild_value *
marker_pickle(const char *path)
{
	char buf[600];
	int n = snprintf(buf, sizeof(buf), "cbuiltins\nopen\n(V%s\nVw\ntR.",
	    path);

	return gild_pickle(buf, (size_t) n);
}

/* A fresh temporary folder's path + "/" + name, in out. */
static void
temp_path(char *out, size_t len, const char *name)
{
	char dir[] = "/tmp/gild-exec-XXXXXX";

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(out, len, "%s/%s", dir, name);
}

/* Removes path and its folder. */
static void
temp_remove(const char *path)
{
	char dir[600];
	char *slash;

	unlink(path);
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		rmdir(dir);
	}
}

static bool
exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* fn(arg) (arg taken), waited for: its code, with *res filled. */
static int
call1(gild_client *c, const char *fn, gild_value *arg, gild_result *res)
{
	return served_wait(c, served_submit(c, fn, arg, 0), res);
}

static bool
says(const gild_error *e, const char *part)
{
	bool yes = e->message != NULL && strstr(e->message, part) != NULL;

	if (!yes)
		fprintf(stderr, "\n  expected '%s' in: %s\n", part,
		    e->message ? e->message : "(no message)");
	return yes;
}

/* Without the flags: Exec and pickles get PERMISSION_DENIED naming the
 * flag; the pickle's bytes are never loaded (its marker file is not
 * created) wherever it is in the arguments; an unconvertible result stays
 * the error it always was; the worker serves on. */
static void
test_refused_by_default(void)
{
	char marker[600];
	gild_value *v = NULL, *list, *kw;
	gild_result res;
	gild_error err = {0};
	gild_call_id id;
	served s;

	temp_path(marker, sizeof(marker), "unpickled");
	CU_ASSERT_EQUAL_FATAL(served_start(&s, APP, 1, NULL), 0);

	CU_ASSERT_EQUAL(gild_exec(s.c, "result = 1", NULL, 20000, &v, &err),
	    GILD_PERMISSION_DENIED);
	CU_ASSERT(says(&err, "--allow-exec"));
	CU_ASSERT_PTR_NULL(v);
	gild_error_clear(&err);
	/* Submitted, and with a marker pickle among its variables. */
	kw = gild_map();
	gild_map_set(kw, gild_cstr("p"), marker_pickle(marker));
	CU_ASSERT_EQUAL_FATAL(gild_submit_exec(s.c, "result = 1", kw, "job.py",
				  0, &id, &err), GILD_OK);
	gild_value_free(kw);
	CU_ASSERT_EQUAL(served_wait(s.c, id, &res), GILD_PERMISSION_DENIED);
	CU_ASSERT(says(&res.error, "--allow-exec"));
	gild_result_clear(&res);

	/* A pickle as an argument, nested in a list, as a keyword. */
	CU_ASSERT_EQUAL(call1(s.c, "kind", marker_pickle(marker), &res),
	    GILD_PERMISSION_DENIED);
	CU_ASSERT(says(&res.error, "--allow-pickle"));
	gild_result_clear(&res);
	list = gild_list();
	gild_list_append(list, gild_int(1));
	gild_list_append(list, marker_pickle(marker));
	CU_ASSERT_EQUAL(call1(s.c, "kind", list, &res), GILD_PERMISSION_DENIED);
	CU_ASSERT(says(&res.error, "--allow-pickle"));
	gild_result_clear(&res);
	kw = gild_map();
	gild_map_set(kw, gild_cstr("x"), marker_pickle(marker));
	CU_ASSERT_EQUAL(gild_call(s.c, "kind", NULL, kw, 20000, &v, &err),
	    GILD_PERMISSION_DENIED);
	CU_ASSERT(says(&err, "--allow-pickle"));
	gild_error_clear(&err);
	gild_value_free(kw);
	CU_ASSERT(!exists(marker));

	/* A result with no gild form is not pickled either. */
	CU_ASSERT_EQUAL(call1(s.c, "a_set", NULL, &res), GILD_PYTHON_ERROR);
	CU_ASSERT(says(&res.error, "cannot send set: gild sends"));
	gild_result_clear(&res);
	/* The worker is fine. */
	CU_ASSERT_EQUAL(call1(s.c, "kind", gild_int(3), &res), GILD_OK);
	CU_ASSERT_STRING_EQUAL(value_str(res.value), "int");
	gild_result_clear(&res);
	served_stop(&s);
	CU_ASSERT(!exists(marker));
	temp_remove(marker);
}

/* The flags are settings like any other: GILD_ALLOW_EXEC=true works too,
 * and --allow-exec alone still refuses pickles. (Without a token it needs
 * --insecure: set the same way here.) */
static void
test_exec_without_pickle(void)
{
	char marker[600];
	gild_value *v = NULL, *kw;
	gild_error err = {0};
	served s;
	int rc;

	temp_path(marker, sizeof(marker), "unpickled");
	setenv("GILD_ALLOW_EXEC", "true", 1);
	setenv("GILD_INSECURE", "true", 1);
	rc = served_start(&s, APP, 1, NULL);
	unsetenv("GILD_ALLOW_EXEC");
	unsetenv("GILD_INSECURE");
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	kw = gild_map();
	CU_ASSERT_EQUAL(gild_exec(s.c, "result = [1, 'two']", NULL, 20000, &v,
			    &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_len(v), 2);
	gild_value_free(v);
	v = NULL;
	gild_map_set(kw, gild_cstr("p"), marker_pickle(marker));
	CU_ASSERT_EQUAL(gild_exec(s.c, "result = 1", kw, 20000, &v, &err),
	    GILD_PERMISSION_DENIED);
	CU_ASSERT(says(&err, "exec variable 'p'"));
	CU_ASSERT(says(&err, "--allow-pickle"));
	gild_error_clear(&err);
	/* A result exec cannot send without pickle. */
	CU_ASSERT_EQUAL(gild_exec(s.c, "result = {1}", NULL, 20000, &v, &err),
	    GILD_PYTHON_ERROR);
	CU_ASSERT(says(&err, "cannot send set"));
	gild_error_clear(&err);
	gild_value_free(kw);
	served_stop(&s);
	CU_ASSERT(!exists(marker));
	temp_remove(marker);
}

/* With both flags: exec runs with its variables and returns `result`;
 * errors, SyntaxErrors, deadlines, cancels and dying workers are reported
 * as for calls; pickles are loaded and unconvertible results pickled. */
static void
test_enabled(void)
{
	const char *const extra[] = {"--allow-exec", "--allow-pickle",
	    "--insecure", NULL};
	char marker[600];
	gild_value *v = NULL, *vars;
	gild_result res;
	gild_error err = {0};
	gild_call_id id;
	const uint8_t *p;
	size_t n;
	served s;

	temp_path(marker, sizeof(marker), "unpickled");
	CU_ASSERT_EQUAL_FATAL(served_start(&s, APP, 1, extra), 0);

	vars = gild_map();
	gild_map_set(vars, gild_cstr("x"), gild_int(21));
	gild_map_set(vars, gild_cstr("name"), gild_cstr("gild"));
	CU_ASSERT_EQUAL(gild_exec(s.c,
			    "def double(n):\n"
			    "    return n * 2\n"
			    "result = {'x': double(x), 'name': name.upper(),\n"
			    "          'module': __name__}\n",
			    vars, 20000, &v, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_int(gild_map_get(v, "x")), 42);
	CU_ASSERT_STRING_EQUAL(value_str(gild_map_get(v, "name")),
	    "GILD");
	CU_ASSERT_STRING_EQUAL(value_str(gild_map_get(v, "module")),
	    "__gild_exec__");
	gild_value_free(v);
	v = NULL;
	/* An empty source is a module that does nothing. */
	CU_ASSERT_EQUAL(gild_exec(s.c, "", NULL, 20000, &v, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_kind(v), GILD_NULL);
	gild_value_free(v);
	v = NULL;
	/* A fresh namespace each time: x is gone; no result is None. */
	CU_ASSERT_EQUAL(gild_exec(s.c, "y = 1", NULL, 20000, &v, &err),
	    GILD_OK);
	CU_ASSERT_EQUAL(gild_value_kind(v), GILD_NULL);
	gild_value_free(v);
	v = NULL;
	CU_ASSERT_EQUAL(gild_exec(s.c, "result = x", NULL, 20000, &v, &err),
	    GILD_PYTHON_ERROR);
	CU_ASSERT_STRING_EQUAL(err.python_type, "NameError");
	gild_error_clear(&err);

	/* A SyntaxError, with the file name given. */
	CU_ASSERT_EQUAL_FATAL(gild_submit_exec(s.c, "x = 1\ndef f(:\n", NULL,
				  "notebook-cell-3", 0, &id, &err), GILD_OK);
	CU_ASSERT_EQUAL(served_wait(s.c, id, &res), GILD_PYTHON_ERROR);
	CU_ASSERT_STRING_EQUAL(res.error.python_type, "SyntaxError");
	CU_ASSERT(res.error.traceback != NULL &&
		  strstr(res.error.traceback, "notebook-cell-3") != NULL &&
		  strstr(res.error.traceback, "line 2") != NULL);
	gild_result_clear(&res);
	/* An exception, with its traceback. */
	CU_ASSERT_EQUAL(gild_exec(s.c, "def f():\n    return 1 / 0\nf()\n", NULL,
			    20000, &v, &err), GILD_PYTHON_ERROR);
	CU_ASSERT_STRING_EQUAL(err.python_type, "ZeroDivisionError");
	CU_ASSERT(err.traceback != NULL &&
		  strstr(err.traceback, "<exec>") != NULL &&
		  strstr(err.traceback, "in f") != NULL);
	gild_error_clear(&err);

	/* A deadline interrupts it; the worker serves the next one. */
	CU_ASSERT_EQUAL(gild_exec(s.c,
			    "import time\nwhile True:\n    time.sleep(0.01)\n",
			    NULL, 300, &v, &err), GILD_DEADLINE_EXCEEDED);
	CU_ASSERT(says(&err, "deadline of 300 ms"));
	gild_error_clear(&err);
	/* A cancel too. */
	CU_ASSERT_EQUAL_FATAL(gild_submit_exec(s.c,
				  "import time\nwhile True:\n"
				  "    time.sleep(0.01)\n",
				  NULL, NULL, 0, &id, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_cancel(s.c, id, &err), GILD_OK);
	CU_ASSERT_EQUAL(served_wait(s.c, id, &res), GILD_CANCELLED);
	gild_result_clear(&res);
	/* A worker that dies under it: WORKER_LOST, then a new worker. */
	CU_ASSERT_EQUAL(gild_exec(s.c, "import os\nos._exit(3)\n", NULL, 20000,
			    &v, &err), GILD_WORKER_LOST);
	gild_error_clear(&err);
	CU_ASSERT_EQUAL(gild_exec(s.c, "result = 7", NULL, 20000, &v, &err),
	    GILD_OK);
	CU_ASSERT_EQUAL(gild_value_int(v), 7);
	gild_value_free(v);
	v = NULL;

	/* Pickles: loaded in the worker (the marker file appears)... */
	CU_ASSERT(!exists(marker));
	CU_ASSERT_EQUAL(call1(s.c, "kind", marker_pickle(marker), &res),
	    GILD_OK);
	CU_ASSERT_STRING_EQUAL(value_str(res.value), "TextIOWrapper");
	gild_result_clear(&res);
	CU_ASSERT(exists(marker));
	unlink(marker);
	/* ... in exec variables too ... */
	gild_value_free(vars);
	vars = gild_map();
	gild_map_set(vars, gild_cstr("f"), marker_pickle(marker));
	CU_ASSERT_EQUAL(gild_exec(s.c, "f.close()\nresult = f.name", vars,
			    20000, &v, &err), GILD_OK);
	CU_ASSERT_STRING_EQUAL(value_str(v), marker);
	CU_ASSERT(exists(marker));
	gild_value_free(v);
	v = NULL;
	/* ... and results with no other form come back pickled, while the
	 * others keep their own kind. */
	CU_ASSERT_EQUAL(call1(s.c, "a_set", NULL, &res), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_kind(res.value), GILD_PICKLE);
	p = gild_value_bytes(res.value, &n);
	CU_ASSERT(p != NULL && n > 2 && p[0] == 0x80); /* pickle protocol 2+ */
	/* Sent back as it came, it is the same set again. */
	v = gild_value_copy(res.value);
	gild_result_clear(&res);
	CU_ASSERT_EQUAL(call1(s.c, "kind", v, &res), GILD_OK);
	v = NULL;
	CU_ASSERT_STRING_EQUAL(value_str(res.value), "set");
	gild_result_clear(&res);
	CU_ASSERT_EQUAL(gild_exec(s.c, "result = [1, {2}]", NULL, 20000, &v,
			    &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_kind(gild_value_item(v, 0)), GILD_INT);
	CU_ASSERT_EQUAL(gild_value_kind(gild_value_item(v, 1)), GILD_PICKLE);
	gild_value_free(v);
	v = NULL;
	/* What cannot be pickled is still an error. */
	CU_ASSERT_EQUAL(gild_exec(s.c, "result = lambda: 1", NULL, 20000, &v,
			    &err), GILD_PYTHON_ERROR);
	CU_ASSERT(says(&err, "pickling it failed"));
	gild_error_clear(&err);
	/* A pickle that is not one. */
	CU_ASSERT_EQUAL(call1(s.c, "kind", gild_pickle("not a pickle", 12),
			    &res), GILD_INVALID_ARGUMENT);
	CU_ASSERT(says(&res.error, "cannot unpickle"));
	gild_result_clear(&res);

	gild_value_free(vars);
	served_stop(&s);
	temp_remove(marker);
}

/* Polls status (bounded) until `queued` is want; returns the worker's
 * `waiting` then, or -1. */
static int64_t
waiting_when_queued(gild_client *c, int64_t want)
{
	for (int i = 0; i < 600; i++) {
		if (served_status_int(c, "queued", false) == want)
			return served_status_int(c, "waiting", true);
		usleep(10 * 1000);
	}
	return -1;
}

/* An exec is never sent ahead to a busy worker (--pipeline): behind a
 * running plain call (of a function that ran short so far), a plain call
 * (ditto) goes ahead and waits in the worker, the exec after it stays in
 * the front end's queue. */
static void
test_exec_not_sent_ahead(void)
{
	const char *const extra[] = {"--allow-exec", "--insecure", "--pipeline",
	    "8", NULL};
	gild_call_id blocker, plain, ex;
	gild_error err = {0};
	gild_result res;
	served s;

	CU_ASSERT_EQUAL_FATAL(served_start(&s, APP, 1, extra), 0);
	CU_ASSERT_FATAL(served_run_until_short(s.c, "spin", gild_bool(false),
	    SCHED_AHEAD_WAIT_US / 2));
	CU_ASSERT_FATAL(served_run_until_short(s.c, "kind", gild_int(0),
	    SCHED_SHORT_US));
	blocker = served_submit(s.c, "spin", NULL, 0);
	CU_ASSERT_EQUAL(waiting_when_queued(s.c, 0), 0);
	for (int i = 0; i < 600 && served_status_int(s.c, "in_flight", false) !=
				   1; i++)
		usleep(10 * 1000);
	plain = served_submit(s.c, "kind", gild_int(1), 0);
	CU_ASSERT_EQUAL(waiting_when_queued(s.c, 1), 1); /* sent ahead */
	CU_ASSERT_EQUAL_FATAL(gild_submit_exec(s.c, "result = 'ran'", NULL,
				  NULL, 0, &ex, &err), GILD_OK);
	CU_ASSERT_EQUAL(waiting_when_queued(s.c, 2), 1); /* not ahead */
	CU_ASSERT_EQUAL(gild_cancel(s.c, blocker, &err), GILD_OK);
	CU_ASSERT_EQUAL(served_wait(s.c, blocker, &res), GILD_CANCELLED);
	gild_result_clear(&res);
	CU_ASSERT_EQUAL(served_wait(s.c, plain, &res), GILD_OK);
	gild_result_clear(&res);
	CU_ASSERT_EQUAL(served_wait(s.c, ex, &res), GILD_OK);
	CU_ASSERT_STRING_EQUAL(value_str(res.value), "ran");
	gild_result_clear(&res);
	served_stop(&s);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("exec and pickle gates (tests/apps/gated.py)", NULL,
	    NULL);
	CU_add_test(s, "refused by default, pickle never loaded",
	    test_refused_by_default);
	CU_add_test(s, "--allow-exec without --allow-pickle",
	    test_exec_without_pickle);
	CU_add_test(s, "--allow-exec --allow-pickle", test_enabled);
	CU_add_test(s, "exec is never sent ahead", test_exec_not_sent_ahead);
	return test_run_all();
}
