/* Integration tests of shared memory with workers, the call context, async
 * functions, streams and C extension modules, against the real gild
 * serving tests/apps/features.py (batching: test_batching.c; actors:
 * test_actors.c). */
#include "gild.h"
#include "gild.pb-c.h"
#include "integration/features.h"
#include "integration/harness.h"
#include "server/sched.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <poll.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test_main.h"



/* ---- shared memory ---------------------------------------------------- */

/* A bytes value of n bytes, byte i = (i * 7 + seed) % 251. */
static gild_value *
pattern(size_t n, int seed)
{
	uint8_t *p = malloc(n);
	gild_value *v;

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t) ((i * 7 + (size_t) seed) % 251);
	v = gild_bytes(p, n);
	free(p);
	return v;
}

/* Whether v is pattern(n, seed). */
static bool
is_pattern(const gild_value *v, size_t n, int seed)
{
	size_t len = 0;
	const uint8_t *p = gild_value_bytes(v, &len);

	if (p == NULL || len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] != (uint8_t) ((i * 7 + (size_t) seed) % 251))
			return false;
	return true;
}

/* Large calls, results and stream chunks travel between the front end and
 * the worker as memfds (status shm_bytes counts them), small ones through
 * the socket; either way they arrive intact, and the worker stays up. */
static void
shm_case(const char *spawn)
{
	const char *const extra[] = {"--spawn", spawn, "--max-message", "64M",
	    NULL};
	const size_t big = 3u << 20, chunk = 512u << 10;
	gild_value *args, *v = NULL;
	gild_error err = {0};
	gild_stream *st = NULL;
	gild_result res;
	int64_t shm0, shm1, pid;
	server s;
	int n = 0, rc;

	CU_ASSERT_EQUAL_FATAL(features_start(&s, 1, extra), 0);
	pid = served_status_int(s.c, "pid", true);
	shm0 = served_status_int(s.c, "shm_bytes", false);
	CU_ASSERT_EQUAL(shm0, 0);
	/* Small: through the socket. */
	CU_ASSERT_EQUAL(served_wait(s.c, served_submit(s.c, "single",
					 pattern(1000, 1), 0), &res), GILD_OK);
	CU_ASSERT(is_pattern(res.value, 1000, 1));
	gild_result_clear(&res);
	CU_ASSERT_EQUAL(served_status_int(s.c, "shm_bytes", false), 0);
	/* 3 MiB each way: through shared memory, both ways. */
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(served_wait(s.c, served_submit(s.c, "single",
						 pattern(big, i), 0), &res),
		    GILD_OK);
		CU_ASSERT(is_pattern(res.value, big, i));
		gild_result_clear(&res);
	}
	shm1 = served_status_int(s.c, "shm_bytes", false);
	CU_ASSERT(shm1 >= (int64_t) (6 * big));
	CU_ASSERT(shm1 < (int64_t) (6 * big + 4096));
	/* A stream's large chunks too. */
	args = gild_list();
	gild_list_append(args, gild_int(4));
	gild_list_append(args, gild_int((int64_t) chunk));
	CU_ASSERT_EQUAL_FATAL(gild_stream_open(s.c, "blobs", args, NULL, 0, 0,
				  &st, &err), GILD_OK);
	gild_value_free(args);
	while ((rc = gild_stream_next(st, 30000, &v, &err)) == GILD_OK) {
		size_t len = 0;
		const uint8_t *p = gild_value_bytes(v, &len);
		bool ok = p != NULL && len == chunk;
		for (size_t i = 0; ok && i < len; i++)
			ok = p[i] == (uint8_t) n;
		CU_ASSERT(ok);
		n++;
		gild_value_free(v);
	}
	CU_ASSERT_EQUAL(rc, GILD_STREAM_END);
	CU_ASSERT_EQUAL(n, 4);
	gild_stream_close(st);
	CU_ASSERT(served_status_int(s.c, "shm_bytes", false) >=
		  shm1 + (int64_t) (4 * chunk));
	/* The same worker served it all. */
	CU_ASSERT_EQUAL(served_status_int(s.c, "pid", true), pid);
	CU_ASSERT_EQUAL(served_status_int(s.c, "restarts", true), 0);
	gild_error_clear(&err);
	served_stop(&s);
}

static void
test_shm_forked(void)
{
	shm_case("fork");
}

static void
test_shm_exec(void)
{
	shm_case("exec");
}

/* ---- context ----------------------------------------------------------- */

static void
test_context(void)
{
	gild_result res;
	gild_call_id id;
	server s;
	double left;

	CU_ASSERT_EQUAL_FATAL(features_start(&s, 1, NULL), 0);
	id = served_submit(s.c, "whoami", NULL, 5000);
	CU_ASSERT_EQUAL_FATAL(served_wait(s.c, id, &res), GILD_OK);
	CU_ASSERT_EQUAL((gild_call_id) gild_value_int(
			    gild_map_get(res.value, "request_id")), id);
	CU_ASSERT_STRING_EQUAL(value_str(gild_map_get(res.value,
				   "function")), "whoami");
	left = gild_value_float(gild_map_get(res.value, "time_left"));
	CU_ASSERT(left > 0 && left <= 5.0);
	CU_ASSERT_EQUAL(gild_value_int(gild_map_get(res.value, "batch_size")), 1);
	CU_ASSERT_FALSE(gild_value_bool(gild_map_get(res.value, "cancelled")));
	gild_result_clear(&res);
	/* No deadline: time_left is None. */
	CU_ASSERT_EQUAL(served_wait(s.c, served_submit(s.c, "whoami", NULL, 0), &res),
	    GILD_OK);
	CU_ASSERT_EQUAL(gild_value_kind(gild_map_get(res.value, "time_left")),
	    GILD_NULL);
	gild_result_clear(&res);
	served_stop(&s);
}

/* libgild sends a W3C trace context with a call (gild_submit_traced) and
 * with each call of a batch (gild_submit_many_traced): the app sees each
 * call's own; without one it sees None; a malformed one is refused before
 * anything is sent, and the client serves on. */
static void
test_trace_context(void)
{
	static const char *const tps[] = {
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
	    NULL};
	gild_trace_context t[3] = {{tps[0], "k=v"}, {tps[1], NULL}, {NULL, NULL}};
	gild_call_spec specs[3];
	gild_call_id id, ids[3];
	gild_error err = {0};
	gild_result res;
	server s;

	CU_ASSERT_EQUAL_FATAL(features_start(&s, 1, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(gild_submit_traced(s.c, "whoami", NULL, NULL, 0,
				  &t[0], &id, &err),
	    GILD_OK);
	CU_ASSERT_EQUAL_FATAL(served_wait(s.c, id, &res), GILD_OK);
	CU_ASSERT_STRING_EQUAL(value_str(gild_map_get(res.value,
				   "traceparent")), tps[0]);
	CU_ASSERT_STRING_EQUAL(value_str(gild_map_get(res.value,
				   "tracestate")), "k=v");
	gild_result_clear(&res);
	for (int i = 0; i < 3; i++)
		specs[i] = (gild_call_spec){"whoami", NULL, NULL, 0};
	CU_ASSERT_EQUAL_FATAL(gild_submit_many_traced(s.c, specs, t, 3, ids,
				  &err),
	    GILD_OK);
	for (int i = 0; i < 3; i++) {
		const gild_value *tp;
		CU_ASSERT_EQUAL_FATAL(served_wait(s.c, ids[i], &res), GILD_OK);
		tp = gild_map_get(res.value, "traceparent");
		if (tps[i] != NULL) {
			CU_ASSERT_STRING_EQUAL(value_str(tp), tps[i]);
		} else {
			CU_ASSERT_EQUAL(gild_value_kind(tp), GILD_NULL);
		}
		CU_ASSERT_EQUAL(gild_value_kind(gild_map_get(res.value,
				    "tracestate")),
		    i == 0 ? GILD_STR : GILD_NULL);
		gild_result_clear(&res);
	}
	/* Refused by libgild: the server never sees them. */
	t[0].traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01";
	CU_ASSERT_EQUAL(gild_submit_traced(s.c, "whoami", NULL, NULL, 0, &t[0],
			    &id, &err),
	    GILD_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "parent id is all zeros"));
	gild_error_clear(&err);
	t[2].tracestate = "k=v"; /* without a traceparent */
	CU_ASSERT_EQUAL(gild_submit_many_traced(s.c, specs, t, 3, ids, &err),
	    GILD_INVALID_ARGUMENT);
	gild_error_clear(&err);
	CU_ASSERT_EQUAL(gild_in_flight(s.c), 0);
	CU_ASSERT_EQUAL(served_wait(s.c, served_submit(s.c, "whoami", NULL, 0),
			    &res),
	    GILD_OK);
	CU_ASSERT_EQUAL(res.code, GILD_OK);
	gild_result_clear(&res);
	served_stop(&s);
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

	CU_ASSERT_EQUAL_FATAL(features_start(&s, 1, NULL), 0);
	for (int i = 0; i < N; i++)
		ids[i] = served_submit(s.c, "snooze", gild_float(0.2), 0);
	for (int i = 0; i < N; i++) {
		if (served_wait(s.c, ids[i], &res) == GILD_OK) {
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
		CU_ASSERT_EQUAL(served_wait(s.c, id, &res), GILD_DEADLINE_EXCEEDED);
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
	served_stop(&s);
}

/* On s, a 1-worker server: submits three calls of one_at_a_time(gate)
 * into ids, waits (30 s at most) until the first runs and the other two
 * wait in the worker, sent ahead (a test failure if they do not), cancels
 * ids[cancel] (it ends CANCELLED), then opens the gate. Calls are sent
 * ahead only behind calls of functions that ran short, so one call of it
 * runs first, on a gate that is open (the server's folder). */
static void
three_one_cancelled(server *s, const char *gate, gild_call_id ids[3],
    int cancel)
{
	int64_t waiting = -1;
	gild_result res;

	CU_ASSERT_FATAL(served_run_until_short(s->c, "one_at_a_time",
	    gild_cstr(s->p.dir), SCHED_AHEAD_WAIT_US / 2));
	for (int i = 0; i < 3; i++)
		ids[i] = served_submit(s->c, "one_at_a_time", gild_cstr(gate),
		    0);
	for (double end = now_s() + 30; now_s() < end && waiting != 2;
	     usleep(5000))
		waiting = served_status_int(s->c, "waiting", true);
	CU_ASSERT_EQUAL(waiting, 2);
	CU_ASSERT_EQUAL(gild_cancel(s->c, ids[cancel], NULL), GILD_OK);
	CU_ASSERT_EQUAL(served_wait(s->c, ids[cancel], &res), GILD_CANCELLED);
	gild_result_clear(&res);
	features_open_gate(gate);
}

/* An async def declared without concurrency runs one call at a time, as a
 * plain function does, even with calls sent ahead to its worker: on a
 * 1-worker server, A holds the worker, B and C wait in it (status: 2
 * waiting), then A is cancelled. The worker reads B and C before the
 * cancel, so had it started them beside A, they would have run at once
 * (each reports how many of these calls it saw started at once). That
 * order is also what lets the front end know which calls a worker that
 * died had started: the next call starts only after the last result is
 * written. */
static void
test_async_one_at_a_time(void)
{
	gild_call_id id[3]; /* A, B, C */
	gild_result res;
	server s;
	char gate[256];

	CU_ASSERT_EQUAL_FATAL(features_start(&s, 1, NULL), 0);
	snprintf(gate, sizeof(gate), "%s/gate", s.p.dir);
	three_one_cancelled(&s, gate, id, 0);
	for (int i = 1; i < 3; i++) {
		CU_ASSERT_EQUAL(served_wait(s.c, id[i], &res), GILD_OK);
		CU_ASSERT_EQUAL(gild_value_int(res.value), 1);
		gild_result_clear(&res);
	}
	served_stop(&s);
}

/* An async call cancelled while it waits in its worker behind another (sent
 * ahead) is answered at once by the front end; the worker, taking it later,
 * cancels its task before its first step, and must still answer it: else
 * the call would count as running until --kill-grace had the worker
 * killed, and the call behind it would wait for that. Here B is cancelled
 * while A holds the worker and C waits behind B; once A has ended, C runs
 * on the same worker, which is never replaced. */
static void
test_async_cancelled_waiting(void)
{
	gild_call_id id[3]; /* A, B, C */
	gild_result res;
	server s;
	char gate[256];
	int64_t pid;

	CU_ASSERT_EQUAL_FATAL(features_start(&s, 1, NULL), 0);
	pid = served_status_int(s.c, "pid", true);
	snprintf(gate, sizeof(gate), "%s/gate", s.p.dir);
	three_one_cancelled(&s, gate, id, 1);
	CU_ASSERT_EQUAL(served_wait(s.c, id[0], &res), GILD_OK);
	gild_result_clear(&res);
	CU_ASSERT_EQUAL(served_wait(s.c, id[2], &res), GILD_OK);
	gild_result_clear(&res);
	CU_ASSERT_EQUAL(served_status_int(s.c, "pid", true), pid);
	CU_ASSERT_EQUAL(served_status_int(s.c, "restarts", true), 0);
	served_stop(&s);
}

/* ---- streams ----------------------------------------------------------- */

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static long
rss_kib(long pid)
{
	char path[64];
	long size = 0, res = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/statm", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = 0;
	fclose(f);
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Item 1: 100,000 chunks to a client that sleeps 1 ms every 10: all
 * arrive in order; the generator is held back (each chunk was produced only
 * after the client had consumed the one two windows before it); gild's and
 * the worker's RSS stay flat. */
static void
test_stream_backpressure(void)
{
	enum { N = 100000, WINDOW = 64, LAG = 2 * WINDOW + 4 };
	static double consumed[N];
	gild_stream *st = NULL;
	gild_value *args = gild_list();
	gild_error err = {0};
	server s;
	long wpid, gild0 = 0, w0 = 0, gmax = 0, wmax = 0;
	int n = 0, order = 0, rc, held_back = 0;
	double first = 0, last = 0;

	CU_ASSERT_EQUAL_FATAL(features_start(&s, 1, NULL), 0);
	wpid = served_status_int(s.c, "pid", true);
	gild_list_append(args, gild_int(N));
	CU_ASSERT_EQUAL_FATAL(gild_stream_open(s.c, "count", args, NULL, WINDOW,
				  0, &st, &err), GILD_OK);
	gild_value_free(args);
	while ((rc = gild_stream_next(st, 30000, &args, &err)) == GILD_OK) {
		int64_t i = gild_value_int(gild_value_item(args, 0));
		double made = gild_value_float(gild_value_item(args, 1));
		gild_value_free(args);
		order += i == n;
		consumed[n] = mono_s();
		if (n >= LAG && made >= consumed[n - LAG])
			held_back++;
		if (n == 0)
			first = made;
		last = made;
		if (n % 10000 == 1000) {
			long g = rss_kib(s.p.pid), w = rss_kib(wpid);
			if (n == 1000) {
				gild0 = g;
				w0 = w;
			}
			gmax = g > gmax ? g : gmax;
			wmax = w > wmax ? w : wmax;
		}
		if (++n % 10 == 0)
			usleep(1000);
	}
	CU_ASSERT_EQUAL(rc, GILD_STREAM_END);
	CU_ASSERT_EQUAL(n, N);
	CU_ASSERT_EQUAL(order, N);
	fprintf(stderr, "\n  %d chunks; generator ran %.1f s; %d of %d chunks "
			"made only after chunk n-%d was consumed; RSS gild %ld -> "
			"max %ld KiB, worker %ld -> max %ld KiB\n",
	    n, last - first, held_back, N - LAG, LAG, gild0, gmax, w0, wmax);
	/* Every chunk waited for the client, bar the ones in flight at once. */
	CU_ASSERT(held_back == N - LAG);
	CU_ASSERT(last - first > 5.0); /* it paused with the client */
	/* Not under AddressSanitizer, whose quarantine keeps freed memory
	 * resident by design. */
	if (getenv("SANITIZE") == NULL || *getenv("SANITIZE") == '\0') {
		CU_ASSERT(gmax - gild0 < 4096);
		CU_ASSERT(wmax - w0 < 4096);
	}
	gild_stream_close(st);
	gild_error_clear(&err);
	served_stop(&s);
}

/* gild_stream_fd: three streams read from one thread with poll() and
 * gild_stream_next(0): each fd wakes when its stream has something, and
 * every chunk comes, in order, then the end. */
static void
test_stream_fd(void)
{
	enum { S = 3, N = 50 };
	gild_stream *st[S] = {NULL};
	struct pollfd pf[S];
	int got[S] = {0}, ended = 0, wakes = 0, rc;
	bool done[S] = {false};
	gild_error err = {0};
	server s;

	CU_ASSERT_EQUAL_FATAL(features_start(&s, 2, NULL), 0);
	for (int k = 0; k < S; k++) {
		gild_value *args = gild_list();
		gild_list_append(args, gild_int(N));
		CU_ASSERT_EQUAL_FATAL(gild_stream_open(s.c, "count", args, NULL,
					  1, 0, &st[k], &err), GILD_OK);
		gild_value_free(args);
		pf[k].fd = gild_stream_fd(st[k]);
		pf[k].events = POLLIN;
		CU_ASSERT(pf[k].fd >= 0);
	}
	CU_ASSERT_EQUAL(gild_stream_fd(st[0]), pf[0].fd); /* the same one */
	/* A bound only a hang reaches: 30 s. */
	for (double end = now_s() + 30; ended < S && now_s() < end;) {
		if (poll(pf, S, 1000) <= 0)
			continue;
		for (int k = 0; k < S; k++) {
			uint64_t n;
			gild_value *v;

			if (done[k] || !(pf[k].revents & POLLIN))
				continue;
			wakes++;
			CU_ASSERT_EQUAL(read(pf[k].fd, &n, sizeof(n)), 8);
			while ((rc = gild_stream_next(st[k], 0, &v, &err)) ==
			       GILD_OK) {
				CU_ASSERT_EQUAL(gild_value_int(
				    gild_value_item(v, 0)), got[k]);
				got[k]++;
				gild_value_free(v);
			}
			if (rc == GILD_STREAM_END) {
				done[k] = true;
				ended++;
			} else {
				CU_ASSERT_EQUAL(rc, GILD_DEADLINE_EXCEEDED);
				CU_ASSERT_EQUAL(err.code, 0);
			}
		}
	}
	CU_ASSERT_EQUAL(ended, S);
	for (int k = 0; k < S; k++) {
		CU_ASSERT_EQUAL(got[k], N);
		gild_stream_close(st[k]);
	}
	/* Window 1: the fds woke many times, not once per stream. */
	CU_ASSERT(wakes > S);
	gild_error_clear(&err);
	served_stop(&s);
}

/* Item 2: closing a stream mid-way closes the generator (its finally:
 * runs) and frees the worker for the next call. A generator called without
 * a stream returns its whole list; an error ends a stream after its
 * chunks. */
static void
test_stream_cancel_and_errors(void)
{
	gild_stream *st = NULL;
	gild_value *args = gild_list(), *v = NULL;
	gild_error err = {0};
	gild_result res;
	server s;
	char path[256];
	long pid;
	int n = 0, rc;

	CU_ASSERT_EQUAL_FATAL(features_start(&s, 1, NULL), 0);
	pid = served_status_int(s.c, "pid", true);
	snprintf(path, sizeof(path), "%s/forever", s.p.dir);
	gild_list_append(args, gild_cstr(path));
	CU_ASSERT_EQUAL_FATAL(gild_stream_open(s.c, "forever", args, NULL, 16, 0,
				  &st, &err), GILD_OK);
	gild_value_free(args);
	while (n < 100 && gild_stream_next(st, 10000, &v, &err) == GILD_OK) {
		n += gild_value_int(v) == n;
		gild_value_free(v);
	}
	CU_ASSERT_EQUAL(n, 100);
	gild_stream_close(st);
	for (double end = mono_s() + 5; mono_s() < end; usleep(10000)) {
		FILE *f = fopen(path, "r");
		if (f != NULL) {
			fclose(f);
			break;
		}
	}
	CU_ASSERT_EQUAL(access(path, F_OK), 0); /* its finally: ran */
	/* The worker is free, and the same process. */
	CU_ASSERT_EQUAL(served_wait(s.c, served_submit(s.c, "pid", NULL, 0), &res),
	    GILD_OK);
	CU_ASSERT_EQUAL(gild_value_int(res.value), pid);
	gild_result_clear(&res);

	/* Not streamed: the list. */
	CU_ASSERT_EQUAL(served_wait(s.c, served_submit(s.c, "count_to", gild_int(5), 0),
			    &res), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_len(res.value), 5);
	CU_ASSERT_EQUAL(gild_value_int(gild_value_item(res.value, 4)), 4);
	gild_result_clear(&res);

	/* An exception after 3 chunks: 3 chunks, then its error. */
	args = gild_list();
	gild_list_append(args, gild_int(3));
	CU_ASSERT_EQUAL_FATAL(gild_stream_open(s.c, "fail_after", args, NULL, 0,
				  0, &st, &err), GILD_OK);
	gild_value_free(args);
	n = 0;
	while ((rc = gild_stream_next(st, 10000, &v, &err)) == GILD_OK) {
		n++;
		gild_value_free(v);
	}
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(rc, GILD_PYTHON_ERROR);
	CU_ASSERT(err.message && strstr(err.message, "failed after 3") != NULL);
	gild_stream_close(st);
	gild_error_clear(&err);

	/* A deadline ends a stream too, and closes its generator. */
	args = gild_list();
	unlink(path);
	gild_list_append(args, gild_cstr(path));
	CU_ASSERT_EQUAL_FATAL(gild_stream_open(s.c, "forever", args, NULL, 8, 300,
				  &st, &err), GILD_OK);
	gild_value_free(args);
	while ((rc = gild_stream_next(st, 10000, &v, &err)) == GILD_OK) {
		gild_value_free(v);
		usleep(1000);
	}
	CU_ASSERT_EQUAL(rc, GILD_DEADLINE_EXCEEDED);
	gild_stream_close(st);
	gild_error_clear(&err);
	CU_ASSERT_EQUAL(served_wait(s.c, served_submit(s.c, "pid", NULL, 0), &res),
	    GILD_OK);
	CU_ASSERT_EQUAL(gild_value_int(res.value), pid);
	gild_result_clear(&res);
	served_stop(&s);
}

/* ---- C extension modules ---------------------------------------------- */

/* Serves tests/apps/extensions.py, which imports gild's own extension
 * module from $GILD_TEST_EXT_DIR (built there for each worker's Python by
 * tests/build.mk). */
static int
start_extensions(server *s)
{
	char dir[512];
	int rc;

	snprintf(dir, sizeof(dir), "%s/tests/apps", build_dir());
	setenv("GILD_TEST_EXT_DIR", dir, 1);
	rc = served_start(s, "tests/apps/extensions.py", 1, NULL);
	unsetenv("GILD_TEST_EXT_DIR");
	return rc;
}

/* Calls fn() and returns its result (new), or NULL after a test failure
 * that shows the error (an ImportError naming an undefined symbol when the
 * worker does not export what the module needs). */
static gild_value *
call_ext(server *s, const char *fn)
{
	gild_result res = {0};
	gild_value *v;

	if (served_wait(s->c, served_submit(s->c, fn, NULL, 0), &res) !=
	    GILD_OK) {
		fprintf(stderr, "%s(): %s\n", fn,
		    res.error.message ? res.error.message : "(no message)");
		CU_FAIL("the call failed");
		gild_result_clear(&res);
		return NULL;
	}
	v = res.value;
	res.value = NULL;
	gild_result_clear(&res);
	return v;
}

/* The worker's Python (static libpython, non-PIE: docs/runtimes.md) loads
 * C extension modules: gild's own (tests/apps/gildext.c) and the standard
 * library's that link other libraries (OpenSSL, SQLite, libffi, mpdec). */
static void
test_extension_modules(void)
{
	gild_value *v, *expect, *scaled;
	const gild_value *m;
	size_t len;
	const char *str;
	server s;

	CU_ASSERT_EQUAL_FATAL(start_extensions(&s), 0);
	if ((v = call_ext(&s, "own")) != NULL) {
		scaled = gild_list();
		gild_list_append(scaled, gild_int(2));
		gild_list_append(scaled, gild_float(5.0));
		gild_list_append(scaled, gild_cstr("abab"));
		expect = gild_list();
		gild_list_append(expect, scaled);
		gild_list_append(expect, gild_cstr("from C"));
		gild_list_append(expect, gild_bool(false));
		CU_ASSERT(gild_value_equal(v, expect));
		gild_value_free(expect);
		gild_value_free(v);
	}
	if ((v = call_ext(&s, "stdlib")) != NULL) {
		CU_ASSERT_EQUAL(gild_value_int(gild_map_get(v, "_ctypes")), 42);
		CU_ASSERT_EQUAL(gild_value_int(gild_map_get(v, "_sqlite3")), 42);
		CU_ASSERT_EQUAL(gild_value_bool(gild_map_get(v, "_ssl")), true);
		m = gild_map_get(v, "_decimal");
		str = m != NULL ? gild_value_str(m, &len) : NULL;
		CU_ASSERT(str != NULL && strcmp(str, "0.14286") == 0);
		m = gild_map_get(v, "_hashlib");
		str = m != NULL ? gild_value_str(m, &len) : NULL;
		CU_ASSERT(str != NULL && strcmp(str, "e6b46671") == 0);
		gild_value_free(v);
	}
	served_stop(&s);
}

/* numpy, a large extension module from a Debian package, loads too. */
static void
test_extension_numpy(void)
{
	gild_value *v;
	server s;

	if (test_free_threaded()) {
		test_skip("numpy is installed for the system Python 3.11 only");
		return;
	}
	CU_ASSERT_EQUAL_FATAL(start_extensions(&s), 0);
	if ((v = call_ext(&s, "numpy_sum")) != NULL) {
		CU_ASSERT_EQUAL(gild_value_int(v), 4950);
		gild_value_free(v);
	}
	served_stop(&s);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("features (tests/apps/features.py)", NULL, NULL);
	CU_add_test(s, "large values through shared memory (fork)", test_shm_forked);
	CU_add_test(s, "large values through shared memory (exec)", test_shm_exec);
	CU_add_test(s, "gild.context()", test_context);
	CU_add_test(s, "trace context from libgild", test_trace_context);
	CU_add_test(s, "async def with concurrency", test_async);
	CU_add_test(s, "async def without concurrency: one call at a time",
	    test_async_one_at_a_time);
	CU_add_test(s, "async: a call cancelled while it waits in its worker",
	    test_async_cancelled_waiting);
	CU_add_test(s, "stream: 100,000 chunks to a slow client", test_stream_backpressure);
	CU_add_test(s, "stream: cancel, errors, deadline", test_stream_cancel_and_errors);
	CU_add_test(s, "stream: gild_stream_fd with poll", test_stream_fd);
	s = CU_add_suite("extension modules (tests/apps/extensions.py)", NULL,
	    NULL);
	CU_add_test(s, "extension modules: gild's own and the stdlib's",
	    test_extension_modules);
	CU_add_test(s, "extension modules: numpy", test_extension_numpy);
	return test_run_all();
}
