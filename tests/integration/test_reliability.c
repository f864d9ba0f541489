/* Integration tests of the reliability features: deadlines, cancellation,
 * disconnecting clients, retries and the worker memory limit, against the
 * real gild serving tests/apps/reliability.py. */
#include "gild.h"
#include "integration/harness.h"

#include <CUnit/Basic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test_main.h"

#define APP "tests/apps/reliability.py"

typedef struct server {
	gild_proc p;
	gild_client *c;
} server;

/* Starts gild with one worker and the extra args; connects a client. */
static int
start(server *s, const char *const *extra)
{
	const char *urls[1];

	if (proc_start(&s->p, APP, 1, NULL, extra) != 0)
		return -1;
	urls[0] = s->p.url;
	return gild_connect(&s->c, urls, 1, NULL) == GILD_OK ? 0 : -1;
}

static void
stop(server *s)
{
	gild_close(s->c);
	CU_ASSERT_EQUAL(proc_stop(&s->p), 0); /* exit 0, no worker left */
}

/* Submits fn(arg) (arg taken; NULL for no argument) with a deadline. */
static gild_call_id
submit(gild_client *c, const char *fn, gild_value *arg, int timeout_ms)
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

/* Waits for id (30 s at most) into *res; returns res->code. */
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

static bool
message_has(const gild_result *res, const char *what)
{
	bool yes = res->error.message != NULL &&
		   strstr(res->error.message, what) != NULL;

	if (!yes)
		fprintf(stderr, "\n  expected '%s' in: %s\n", what,
		    res->error.message ? res->error.message : "(none)");
	return yes;
}

static int64_t
worker_pid(gild_client *c)
{
	gild_value *args = gild_list(), *out = NULL;
	int64_t pid = -1;

	if (gild_call(c, "pid", args, NULL, 20000, &out, NULL) == GILD_OK)
		pid = gild_value_int(out);
	gild_value_free(out);
	gild_value_free(args);
	return pid;
}

/* status: an integer field of the server, or of worker 0 (worker = true). */
static int64_t
status_int(gild_client *c, const char *field, bool worker)
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

/* A fresh path in the server's temp folder for a function to write. */
static gild_value *
scratch(const server *s, const char *name, char *path, size_t len)
{
	snprintf(path, len, "%s/%s", s->p.dir, name);
	unlink(path);
	return gild_cstr(path);
}

/* Waits up to 5 s for path to contain text. */
static bool
file_has(const char *path, const char *text)
{
	for (double end = now_s() + 5; now_s() < end; usleep(10000)) {
		char buf[256] = "";
		FILE *f = fopen(path, "r");
		size_t n = 0;

		if (f != NULL) {
			n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
		}
		buf[n] = '\0';
		if (strstr(buf, text) != NULL)
			return true;
	}
	return false;
}

static int64_t
file_int(const char *path)
{
	FILE *f = fopen(path, "r");
	long long v = -1;

	if (f != NULL) {
		if (fscanf(f, "%lld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return (int64_t) v;
}

static void
assert_still_serving(gild_client *c)
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

/* ---- deadlines --------------------------------------------------------- */

/* Item 1: pure-Python infinite loop, 200 ms timeout: DEADLINE_EXCEEDED, its
 * finally: ran, same worker. Stuck in C past --kill-grace: the worker is
 * replaced and the call still ends with DEADLINE_EXCEEDED. */
static void
test_deadline_interrupts(void)
{
	static const char *const extra[] = {"--kill-grace", "0.5", NULL};
	server s;
	gild_result res;
	char path[256];
	int64_t pid0, pid1, pid2;
	double t0, took;

	CU_ASSERT_EQUAL_FATAL(start(&s, extra), 0);
	pid0 = worker_pid(s.c);

	t0 = now_s();
	CU_ASSERT_EQUAL(wait_for(s.c, submit(s.c, "loop",
	    scratch(&s, "loop", path, sizeof(path)), 200), &res),
	    GILD_DEADLINE_EXCEEDED);
	took = now_s() - t0;
	CU_ASSERT(message_has(&res, "deadline of 200 ms"));
	CU_ASSERT(took >= 0.19 && took < 2.0);
	gild_result_clear(&res);
	CU_ASSERT(file_has(path, "finally ran"));
	pid1 = worker_pid(s.c);
	CU_ASSERT_EQUAL(pid1, pid0); /* interrupted, not killed */
	CU_ASSERT_EQUAL(status_int(s.c, "restarts", true), 0);

	t0 = now_s();
	CU_ASSERT_EQUAL(wait_for(s.c, submit(s.c, "stuck", gild_float(30), 200),
	    &res), GILD_DEADLINE_EXCEEDED);
	took = now_s() - t0;
	CU_ASSERT(message_has(&res, "--kill-grace"));
	CU_ASSERT(took >= 0.69 && took < 5.0); /* 200 ms + 500 ms grace */
	gild_result_clear(&res);
	pid2 = worker_pid(s.c);
	CU_ASSERT(pid2 > 0 && pid2 != pid1); /* replaced */
	CU_ASSERT_FALSE(pid_alive((pid_t) pid1));
	CU_ASSERT_EQUAL(status_int(s.c, "restarts", true), 1);
	assert_still_serving(s.c);
	stop(&s);
}

/* A call still queued at its deadline ends without running; the function's
 * own @gild.function(timeout=) and --default-timeout apply when the call
 * sets none. */
static void
test_deadline_sources(void)
{
	static const char *const extra[] = {"--default-timeout", "0.4", NULL};
	server s;
	gild_result res;
	gild_call_id busy, late;
	char path[256], path2[256];

	CU_ASSERT_EQUAL_FATAL(start(&s, extra), 0);
	/* The only worker naps 1 s; a call behind it with 200 ms expires in
	 * the queue, and the nap is not disturbed. */
	busy = submit(s.c, "nap", gild_float(1.0), 5000);
	usleep(100000);
	late = submit(s.c, "add", NULL, 200);
	CU_ASSERT_EQUAL(wait_for(s.c, late, &res), GILD_DEADLINE_EXCEEDED);
	CU_ASSERT(message_has(&res, "before 'add' could run"));
	gild_result_clear(&res);
	CU_ASSERT_EQUAL(wait_for(s.c, busy, &res), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_float(res.value), 1.0);
	gild_result_clear(&res);

	/* @gild.function(timeout=0.3) */
	CU_ASSERT_EQUAL(wait_for(s.c, submit(s.c, "bounded",
	    scratch(&s, "bounded", path, sizeof(path)), 0), &res),
	    GILD_DEADLINE_EXCEEDED);
	CU_ASSERT(message_has(&res, "deadline of 300 ms"));
	gild_result_clear(&res);
	CU_ASSERT(file_has(path, "finally ran"));

	/* --default-timeout 0.4 */
	CU_ASSERT_EQUAL(wait_for(s.c, submit(s.c, "loop",
	    scratch(&s, "loop", path2, sizeof(path2)), 0), &res),
	    GILD_DEADLINE_EXCEEDED);
	CU_ASSERT(message_has(&res, "deadline of 400 ms"));
	gild_result_clear(&res);
	CU_ASSERT(file_has(path2, "finally ran"));
	CU_ASSERT_EQUAL(status_int(s.c, "restarts", true), 0);
	assert_still_serving(s.c);
	stop(&s);
}

/* ---- cancellation ------------------------------------------------------ */

/* Item 2: a running and a queued call are cancelled, each ends with
 * CANCELLED (the running one's finally: ran); the call queued behind them
 * is not affected. */
static void
test_cancel(void)
{
	server s;
	gild_result res;
	gild_call_id running, queued, other;
	gild_value *args;
	char path[256];
	int64_t pid0;

	CU_ASSERT_EQUAL_FATAL(start(&s, NULL), 0);
	pid0 = worker_pid(s.c);
	running = submit(s.c, "loop", scratch(&s, "c", path, sizeof(path)), 0);
	queued = submit(s.c, "add", NULL, 0);
	args = gild_list();
	gild_list_append(args, gild_int(3));
	gild_list_append(args, gild_int(4));
	CU_ASSERT_EQUAL(gild_submit(s.c, "add", args, NULL, &other, NULL),
	    GILD_OK);
	gild_value_free(args);
	/* Cancel once the loop runs (status shows it in flight). */
	for (double end = now_s() + 5; now_s() < end; usleep(5000))
		if (status_int(s.c, "in_flight", false) == 1)
			break;
	CU_ASSERT_EQUAL(gild_cancel(s.c, queued, NULL), GILD_OK);
	CU_ASSERT_EQUAL(gild_cancel(s.c, running, NULL), GILD_OK);

	CU_ASSERT_EQUAL(wait_for(s.c, queued, &res), GILD_CANCELLED);
	CU_ASSERT(message_has(&res, "before it ran"));
	gild_result_clear(&res);
	CU_ASSERT_EQUAL(wait_for(s.c, running, &res), GILD_CANCELLED);
	CU_ASSERT(message_has(&res, "cancelled while it ran"));
	gild_result_clear(&res);
	CU_ASSERT(file_has(path, "finally ran"));
	CU_ASSERT_EQUAL(wait_for(s.c, other, &res), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_int(res.value), 7);
	gild_result_clear(&res);
	CU_ASSERT_EQUAL(worker_pid(s.c), pid0);
	CU_ASSERT_EQUAL(gild_cancel(s.c, other, NULL), GILD_NOT_FOUND);
	stop(&s);
}

/* A client that disconnects: its running call is interrupted (finally:
 * ran), its queued ones dropped; other clients are not affected. */
static void
test_disconnect_cancels(void)
{
	server s;
	gild_client *gone = NULL;
	const char *urls[1];
	char path[256];
	bool idle = false;

	CU_ASSERT_EQUAL_FATAL(start(&s, NULL), 0);
	urls[0] = s.p.url;
	CU_ASSERT_EQUAL_FATAL(gild_connect(&gone, urls, 1, NULL), GILD_OK);
	submit(gone, "loop", scratch(&s, "d", path, sizeof(path)), 0);
	for (int i = 0; i < 5; i++)
		submit(gone, "nap", gild_float(5), 0);
	for (double end = now_s() + 5; now_s() < end; usleep(5000))
		if (status_int(s.c, "queued", false) == 5)
			break;
	CU_ASSERT_EQUAL(status_int(s.c, "in_flight", false), 1);
	gild_close(gone);
	CU_ASSERT(file_has(path, "finally ran"));
	for (double end = now_s() + 5; now_s() < end && !idle; usleep(10000))
		idle = status_int(s.c, "in_flight", false) == 0 &&
		       status_int(s.c, "queued", false) == 0;
	CU_ASSERT(idle); /* the naps were dropped, not run */
	assert_still_serving(s.c);
	stop(&s);
}

/* ---- retries and memory ------------------------------------------------ */

/* @gild.function(retries=N): a call whose worker dies runs again; after N
 * retries it ends with WORKER_LOST. */
static void
test_retries(void)
{
	server s;
	gild_result res;
	char path[256], path2[256];

	CU_ASSERT_EQUAL_FATAL(start(&s, NULL), 0);
	CU_ASSERT_EQUAL(wait_for(s.c, submit(s.c, "die_once",
	    scratch(&s, "once", path, sizeof(path)), 0), &res), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_int(res.value), 2); /* the second run */
	gild_result_clear(&res);

	CU_ASSERT_EQUAL(wait_for(s.c, submit(s.c, "die_always",
	    scratch(&s, "always", path2, sizeof(path2)), 0), &res),
	    GILD_WORKER_LOST);
	gild_result_clear(&res);
	CU_ASSERT_EQUAL(file_int(path2), 2); /* first run + 1 retry */
	CU_ASSERT_EQUAL(status_int(s.c, "restarts", true), 3);
	assert_still_serving(s.c);
	stop(&s);
}

/* Item 5: a memory bomb under --worker-memory 512 ends with WORKER_LOST
 * naming the limit; the worker is replaced and the server serves on. */
static void
test_worker_memory(void)
{
	static const char *const extra[] = {"--worker-memory", "512", NULL};
	server s;
	gild_result res;
	int64_t pid0;

	if (getenv("SANITIZE") != NULL && *getenv("SANITIZE") != '\0') {
		/* ASan reserves terabytes of address space: no limit fits. */
		fprintf(stderr, "\n  skipped: --worker-memory does not apply to "
				"sanitized workers\n");
		return;
	}
	CU_ASSERT_EQUAL_FATAL(start(&s, extra), 0);
	pid0 = worker_pid(s.c);
	CU_ASSERT_EQUAL(wait_for(s.c, submit(s.c, "bomb", NULL, 0), &res),
	    GILD_WORKER_LOST);
	CU_ASSERT(message_has(&res, "--worker-memory"));
	CU_ASSERT(message_has(&res, "512 MiB"));
	gild_result_clear(&res);
	assert_still_serving(s.c);
	CU_ASSERT_NOT_EQUAL(worker_pid(s.c), pid0);
	stop(&s);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("reliability (tests/apps/reliability.py)", NULL, NULL);
	CU_add_test(s, "deadline interrupts Python, kills C", test_deadline_interrupts);
	CU_add_test(s, "queue, function and server deadlines", test_deadline_sources);
	CU_add_test(s, "cancel queued and running calls", test_cancel);
	CU_add_test(s, "a disconnecting client's calls are cancelled", test_disconnect_cancels);
	CU_add_test(s, "retries=N", test_retries);
	CU_add_test(s, "--worker-memory", test_worker_memory);
	return test_run_all();
}
