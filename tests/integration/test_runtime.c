/* Integration tests of what only the free-threaded runtime has: several
 * Python threads of one worker running calls at once, each interrupted on
 * its own, actors pinned to a thread, and the GIL check. Against the real
 * gild serving tests/apps/runtime.py with --runtime free-threaded. (The
 * behaviour both runtimes share is tested by running the other suites
 * again with GILD_TEST_RUNTIME=free-threaded: see tests/run.sh.) */
#include "gild.h"
#include "integration/harness.h"
#include "integration/served.h"

#include <CUnit/Basic.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "test_main.h"

#define APP "tests/apps/runtime.py"

/* Loop steps of a burn() call: a few hundred ms of pure Python. */
#define BURN_STEPS 3000000

/* Starts APP on 1 free-threaded worker of `threads` threads, plus extra. */
static int
start(served *s, int threads, const char *extra)
{
	char n[16];
	const char *args[] = {"--runtime", "free-threaded", "--threads", n,
	    extra, extra != NULL ? "5" : NULL, NULL};

	snprintf(n, sizeof(n), "%d", threads);
	return served_start(s, APP, 1, args);
}

/* What burn(n) returns as its checksum. */
static int64_t
checksum(int64_t n)
{
	int64_t acc = 0;

	for (int64_t i = 0; i < n; i++)
		acc = (acc + i * i) % 1000003;
	return acc;
}

static const gild_value *
status_field(gild_client *c, gild_value **st, const char *key)
{
	*st = NULL;
	if (gild_status(c, 10000, st, NULL) != GILD_OK)
		return NULL;
	return gild_map_get(*st, key);
}

/* What one burn() thread did in [from, to] of the span both calls ran:
 * seconds of wall time, of running, and of waiting runnable for a CPU,
 * between its first and last samples inside the span. Returns false when
 * fewer than two samples fall in it. */
typedef struct thread_use {
	double wall, ran, waited;
} thread_use;

static bool
use_in(const gild_value *samples, double from, double to, thread_use *u)
{
	const gild_value *a = NULL, *b = NULL;

	for (size_t i = 0; i < gild_value_len(samples); i++) {
		const gild_value *x = gild_value_item(samples, i);
		double t = gild_value_float(gild_value_item(x, 0));

		if (t >= from && t <= to) {
			a = a == NULL ? x : a;
			b = x;
		}
	}
	if (a == NULL || a == b)
		return false;
	u->wall = gild_value_float(gild_value_item(b, 0)) -
	    gild_value_float(gild_value_item(a, 0));
	u->ran = gild_value_float(gild_value_item(b, 1)) -
	    gild_value_float(gild_value_item(a, 1));
	u->waited = gild_value_float(gild_value_item(b, 2)) -
	    gild_value_float(gild_value_item(a, 2));
	return true;
}

static int
usable_cpus(void)
{
	cpu_set_t set;

	return sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
							    : 1;
}

/* Item 2: two CPU-bound pure-Python calls on a 1-worker, 2-thread server
 * run in the same process, on two threads, at overlapping times, and in
 * parallel.
 *
 * "In parallel" is measured by the app, not by the clock: for the span
 * both calls ran, the kernel's schedstat splits each thread's time into
 * running, waiting runnable for a CPU (the CPU was not free: another
 * process had it) and blocked. Without a GIL neither thread waits for the
 * other, so they run for all the time a CPU was free to them: the two
 * threads' run time is at least 80% of their time not waiting for a CPU
 * (measured: 99-100%, idle or with both cores busy-looping). Under a GIL
 * they take turns, one blocked while the other runs, which keeps that
 * share far lower (measured with the GIL forced on: about 50% idle, 60%
 * with one core busy-looping, 13% with both). With two free CPUs it means
 * the two calls' CPU time overlaps for (nearly) the whole shared span;
 * with fewer free, the expectation shrinks with them instead of failing.
 * Skipped when this process may use only one CPU. */
static void
test_parallel_threads(void)
{
	static char why[160];
	served s;
	gild_result r[2];
	gild_call_id ids[2];
	double from = 0, to = 0, ran = 0, free_s = 0;
	thread_use u[2];
	int64_t want = checksum(BURN_STEPS);
	bool sampled = true, inside = true;

	if (usable_cpus() < 2) {
		snprintf(why, sizeof(why), "this process may use %d CPU: two "
		    "threads cannot run at once", usable_cpus());
		test_skip(why);
		return;
	}
	CU_ASSERT_EQUAL_FATAL(start(&s, 2, NULL), 0);
	for (int i = 0; i < 2; i++)
		ids[i] = served_submit(s.c, "burn", gild_int(BURN_STEPS), 0);
	for (int i = 0; i < 2; i++) {
		const gild_value *sm;

		CU_ASSERT_EQUAL_FATAL(served_wait(s.c, ids[i], &r[i]), GILD_OK);
		CU_ASSERT_EQUAL(gild_value_int(gild_value_item(r[i].value, 5)),
		    want);
		sm = gild_value_item(r[i].value, 6);
		sampled &= gild_value_kind(sm) == GILD_LIST;
	}
	/* Same pid, two threads. */
	CU_ASSERT_EQUAL(gild_value_int(gild_value_item(r[0].value, 0)),
	    gild_value_int(gild_value_item(r[1].value, 0)));
	CU_ASSERT_NOT_EQUAL(gild_value_int(gild_value_item(r[0].value, 1)),
	    gild_value_int(gild_value_item(r[1].value, 1)));
	if (!sampled) {
		test_skip("the kernel keeps no /proc/thread-self/schedstat");
		goto out;
	}
	/* The span both ran: from the later start to the earlier end. */
	for (int i = 0; i < 2; i++) {
		double t0 = gild_value_float(gild_value_item(r[i].value, 2));
		double t1 = gild_value_float(gild_value_item(r[i].value, 3));

		from = i == 0 || t0 > from ? t0 : from;
		to = i == 0 || t1 < to ? t1 : to;
	}
	CU_ASSERT_FATAL(from < to); /* overlapping in time */
	for (int i = 0; i < 2; i++) {
		inside &= use_in(gild_value_item(r[i].value, 6), from, to, &u[i]);
		ran += u[i].ran;
		free_s += u[i].wall - u[i].waited;
	}
	CU_ASSERT_FATAL(inside);
	fprintf(stderr,
	    "\n  both ran for %.3f s: threads ran %.3f + %.3f s, waited for a "
	    "CPU %.3f + %.3f s (of %.3f + %.3f s sampled): ran %.0f%% of the "
	    "time a CPU was free to them, %.2f cores busy\n",
	    to - from, u[0].ran, u[1].ran, u[0].waited, u[1].waited, u[0].wall,
	    u[1].wall, 100 * ran / free_s, ran / (to - from));
	CU_ASSERT(ran >= 0.8 * free_s);
out:
	for (int i = 0; i < 2; i++)
		gild_result_clear(&r[i]);
	served_stop(&s);
}

/* Status and the app agree: the worker runs free-threaded, 2 threads, and
 * its interpreter has no GIL. */
static void
test_status_says_no_gil(void)
{
	served s;
	gild_result r;
	gild_value *st = NULL;

	CU_ASSERT_EQUAL_FATAL(start(&s, 2, NULL), 0);
	CU_ASSERT_STRING_EQUAL(value_str(status_field(s.c, &st, "runtime")),
	    "free-threaded");
	CU_ASSERT_EQUAL(gild_value_int(gild_map_get(st, "threads")), 2);
	CU_ASSERT_EQUAL(gild_value_bool(gild_map_get(st, "gil_enabled")), false);
	gild_value_free(st);
	CU_ASSERT_EQUAL(served_wait(s.c, served_submit(s.c, "gil", NULL, 0),
			    &r), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_bool(r.value), false);
	gild_result_clear(&r);
	served_stop(&s);
}

static bool
file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Waits (up to 30 s, a bound only a hang reaches) for path to exist. */
static bool
file_appears(const char *path)
{
	for (double end = now_s() + 30; now_s() < end; usleep(5000))
		if (file_exists(path))
			return true;
	return file_exists(path);
}

/* Item 4: a deadline, then a cancel, each stop the call on one thread while
 * a CPU-bound call on the other runs on to its correct result; the worker
 * is the same process throughout (no restart). */
static void
test_interrupt_one_thread(void)
{
	served s;
	gild_result res;
	gild_call_id burn, loop;
	char marker[2][256];
	int64_t want = checksum(4 * BURN_STEPS), pid;

	CU_ASSERT_EQUAL_FATAL(start(&s, 2, "--kill-grace"), 0);
	for (int round = 0; round < 2; round++) {
		bool cancel = round == 1;

		snprintf(marker[round], sizeof(marker[round]), "%s/finally-%d",
		    s.p.dir, round);
		burn = served_submit(s.c, "burn", gild_int(4 * BURN_STEPS), 0);
		loop = served_submit(s.c, "spin_until_stopped",
		    gild_cstr(marker[round]), cancel ? 0 : 300);
		if (cancel) {
			char running[300];

			/* Cancelled inside its try:, so its finally: runs. */
			snprintf(running, sizeof(running), "%s.running",
			    marker[round]);
			CU_ASSERT(file_appears(running));
			CU_ASSERT_EQUAL(gild_cancel(s.c, loop, NULL), GILD_OK);
		}
		CU_ASSERT_EQUAL(served_wait(s.c, loop, &res),
		    cancel ? GILD_CANCELLED : GILD_DEADLINE_EXCEEDED);
		gild_result_clear(&res);
		/* Its finally: ran, in its thread, before the reply. */
		CU_ASSERT(file_exists(marker[round]));
		CU_ASSERT_EQUAL(served_wait(s.c, burn, &res), GILD_OK);
		CU_ASSERT_EQUAL(gild_value_int(gild_value_item(res.value, 5)),
		    want);
		pid = gild_value_int(gild_value_item(res.value, 0));
		gild_result_clear(&res);
		CU_ASSERT_EQUAL(served_wait(s.c, served_submit(s.c, "burn",
						      gild_int(10), 0),
				    &res), GILD_OK);
		CU_ASSERT_EQUAL(gild_value_int(gild_value_item(res.value, 0)),
		    pid);
		gild_result_clear(&res);
	}
	CU_ASSERT_EQUAL(served_status_int(s.c, "restarts", true), 0);
	served_stop(&s);
}

/* Actors are pinned to the thread that created them: 8 actors on 4
 * threads, 20 calls each, all in flight at once, always on that thread. */
static void
test_actors_pinned(void)
{
	enum { NA = 8, NC = 20 };
	served s;
	gild_actor_id a[NA];
	gild_call_id ids[NA][NC];
	gild_result res;

	CU_ASSERT_EQUAL_FATAL(start(&s, 4, NULL), 0);
	for (int i = 0; i < NA; i++)
		CU_ASSERT_EQUAL_FATAL(gild_actor_new(s.c, "Where", NULL, NULL,
					  NULL, false, 10000, &a[i], NULL),
		    GILD_OK);
	for (int k = 0; k < NC; k++)
		for (int i = 0; i < NA; i++)
			CU_ASSERT_EQUAL(gild_actor_submit(s.c, a[i], "check",
					    NULL, NULL, &ids[i][k], NULL),
			    GILD_OK);
	for (int i = 0; i < NA; i++) {
		for (int k = 0; k < NC; k++) {
			CU_ASSERT_EQUAL(served_wait(s.c, ids[i][k], &res),
			    GILD_OK);
			CU_ASSERT_EQUAL(gild_value_bool(gild_value_item(
					    res.value, 0)), true);
			if (k == NC - 1)
				CU_ASSERT_EQUAL(gild_value_int(gild_value_item(
						    res.value, 1)), NC);
			gild_result_clear(&res);
		}
	}
	served_stop(&s);
}

/* The worker's threads take calls from one queue. With one of its 2
 * threads held by a call that waits for a gate file, 8 equal calls sent
 * meanwhile all run on the other thread (so each thread ran some), every
 * one before the held call ends: none waits behind it, as calls dealt to
 * an inbox per thread would. The function ran short first, so the
 * scheduler sends the 8 ahead into the worker's queue rather than one by
 * one as the free thread finishes. */
static void
test_threads_share_one_queue(void)
{
	const char *args[] = {"--runtime", "free-threaded", "--threads", "2",
	    NULL};
	gated_run r;
	served s;

	CU_ASSERT_EQUAL_FATAL(served_start(&s, "tests/apps/ledger.py", 1,
				  args), 0);
	stamps_gated_run(&s, 4, 8, &r);
	stamps_assert_none_waited(&r, 8, "thread");
	served_stop(&s);
}

/* Copies tests/apps/runtime.py into a new folder of its own, as app.py;
 * returns 0, or -1 (a test failure). */
static int
fresh_app_copy(char *dir, size_t cap, char *path, size_t pcap)
{
	char buf[8192];
	size_t n;
	FILE *in, *out;
	int rc = -1;

	snprintf(dir, cap, "%s", "/tmp/gild-test-consts-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, pcap, "%s/app.py", dir);
	in = fopen(APP, "rb");
	out = fopen(path, "wb");
	if (in != NULL && out != NULL) {
		rc = 0;
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			if (fwrite(buf, 1, n, out) != n)
				rc = -1;
	}
	if (in != NULL)
		fclose(in);
	if (out != NULL && fclose(out) != 0)
		rc = -1;
	return rc;
}

static int
remove_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	return remove(path);
}

/* The constants of the app's own functions (1000003 in a function, 2.5 in
 * a method of a class) are immortal in the free-threaded worker, so its
 * threads never write their reference counts. CPython 3.13t leaves them
 * ordinary objects in a module compiled on import, and in every later
 * import from the .pyc that import wrote (gild/_ftconsts.py,
 * docs/runtimes.md); so the app is a fresh copy, with no .pyc yet, as a
 * user's new app is. */
static void
test_constants_immortal(void)
{
	const char *args[] = {"--runtime", "free-threaded", "--threads", "2",
	    NULL};
	const char *fns[] = {"constant_refcount", "method_constant_refcount"};
	char dir[64], path[128];
	gild_result res;
	served s;

	CU_ASSERT_EQUAL_FATAL(fresh_app_copy(dir, sizeof(dir), path,
				  sizeof(path)),
	    0);
	CU_ASSERT_EQUAL_FATAL(served_start(&s, path, 1, args), 0);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(served_wait(s.c, served_submit(s.c, fns[i],
						      NULL, 0),
				    &res),
		    GILD_OK);
		if (gild_value_int(res.value) < INT64_C(4294967295))
			fprintf(stderr, "\n  %s: %lld\n", fns[i],
			    (long long) gild_value_int(res.value));
		CU_ASSERT(gild_value_int(res.value) >= INT64_C(4294967295));
		gild_result_clear(&res);
	}
	served_stop(&s);
	nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* An extension module that does not declare free-threading support turns
 * the GIL back on: the worker says so in the log, naming the module, and
 * status reports gil_enabled: true. The calls still work. */
static void
test_gil_reenabled(void)
{
	char dir[512], line[1024];
	const char *args[] = {"--runtime", "free-threaded", "--threads", "2",
	    NULL};
	served s;
	gild_value *st = NULL;
	gild_result res;
	bool warned = false;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/tests/apps", build_dir());
	setenv("GILD_TEST_EXT_DIR", dir, 1);
	CU_ASSERT_EQUAL_FATAL(served_start(&s, "tests/apps/gil_app.py", 1,
				  args), 0);
	unsetenv("GILD_TEST_EXT_DIR");
	CU_ASSERT_EQUAL(served_wait(s.c, served_submit(s.c, "answer", NULL, 0),
			    &res), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_int(res.value), 42);
	gild_result_clear(&res);
	CU_ASSERT_EQUAL(served_wait(s.c, served_submit(s.c, "gil", NULL, 0),
			    &res), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_bool(res.value), true);
	gild_result_clear(&res);
	status_field(s.c, &st, "gil_enabled");
	CU_ASSERT_EQUAL(gild_value_bool(gild_map_get(st, "gil_enabled")), true);
	gild_value_free(st);
	if ((f = fopen(s.p.log, "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			warned |= strstr(line, "GIL is enabled") != NULL &&
				   strstr(line, "importing gilneeded") != NULL;
		fclose(f);
	}
	CU_ASSERT(warned);
	served_stop(&s);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("free-threaded runtime (tests/apps/runtime.py)", NULL,
	    NULL);
	CU_add_test(s, "two threads run Python in parallel",
	    test_parallel_threads);
	CU_add_test(s, "status and the app say there is no GIL",
	    test_status_says_no_gil);
	CU_add_test(s, "a deadline or cancel stops one thread only",
	    test_interrupt_one_thread);
	CU_add_test(s, "actors stay on their thread", test_actors_pinned);
	CU_add_test(s, "threads take calls from one queue",
	    test_threads_share_one_queue);
	CU_add_test(s, "an extension that needs the GIL is reported",
	    test_gil_reenabled);
	CU_add_test(s, "the app's constants are immortal",
	    test_constants_immortal);
	return test_run_all();
}
