/* scaling: how CPU-bound pure-Python calls scale with N under gild's process
 * runtime (N worker processes, a GIL each) and its free-threaded runtime (one
 * worker, N threads), measured against the same calls run one after another.
 *
 *   build/bench/scaling --python PY --python-ft PYFT|'' [--seconds S]
 *       [--max-n N] [--ms MS] [--max-calls C] [--app FILE] [--out DIR]
 *
 * It calibrates burn() of bench/apps/cpu.py to about MS ms on PY, times it
 * sequentially on PY and PYFT (their ratio is the single-thread cost of the
 * free-threaded build), then for each runtime and N = 1..usable CPUs starts
 * gild (the binaries in $B, default build/), warms it up and keeps 2·N calls
 * in flight for S seconds (at most C calls). Prints a markdown table and
 * writes DIR/scaling-YYYYMMDD-HHMMSS.json. See bench/README.md. */
#include "gild.h"
#include "harness.h"
#include "server/cpus.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long to wait for any one reply before calling the run broken. */
#define REPLY_TIMEOUT_MS 60000

typedef struct opts {
	const char *py, *py_ft; /* py_ft NULL: free-threaded runtime skipped */
	char app[PATH_MAX];     /* absolute path of cpu.py */
	const char *out_dir;
	double seconds, ms;
	int max_n;
	long max_calls;
} opts;

/* Sequential timing: this many blocks (sequential() parses 5). */
#define SEQ_BLOCKS 5
_Static_assert(SEQ_BLOCKS == 5, "sequential() reads 5 blocks");

/* An interpreter run on its own: its version, GIL, sequential cost. */
typedef struct interp {
	const char *exe;
	char version[32];
	int gil;      /* GIL enabled (1) or not (0) */
	double seq_s; /* seconds per burn(steps), one after another: median */
	double blocks[SEQ_BLOCKS]; /* each block's, sorted */
} interp;

/* One measured point: a runtime at N. */
typedef struct row {
	const char *runtime; /* "process" or "free-threaded" */
	int n;
	long calls;      /* finished in the window */
	double seconds;  /* the window */
	double per_s;    /* calls / seconds */
	double speedup;  /* per_s * the runtime interpreter's seq_s */
	double efficiency;
	double vs_process; /* per_s / the process runtime's at N; 0: none */
	int gil;           /* the worker's interpreter had its GIL after */
	double worker_seq_s; /* at N = 1: sequential s/call inside the worker */
} row;

/* Runs `EXE -I -c "...; print(EXPR)"` with cpu.py importable (its folder is
 * in $GILD_BENCH_APPS) and puts its stdout in out. EXPR must hold no single
 * quote. Returns 0, or -1 (said on stderr) when it did not exit 0. */
static int
py_eval(const char *exe, const char *expr, char *out, size_t len)
{
	char cmd[1024];
	FILE *f;
	size_t n;
	int st;

	/* The path goes through the environment: no shell quoting of it. */
	if (setenv("GILD_BENCH_PY", exe, 1) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd),
	    "\"$GILD_BENCH_PY\" -I -c 'import os, sys; sys.path.insert(0, "
	    "os.environ[\"GILD_BENCH_APPS\"]); import cpu; print(%s)'",
	    expr);
	if ((f = popen(cmd, "r")) == NULL) {
		fprintf(stderr, "scaling: popen: %s\n", strerror(errno));
		return -1;
	}
	n = fread(out, 1, len - 1, f);
	out[n] = '\0';
	st = pclose(f);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "scaling: %s failed on print(%s)\n", exe, expr);
		return -1;
	}
	return 0;
}

/* Times burn(steps) in SEQ_BLOCKS blocks of n calls in a row on ip->exe
 * and fills ip (seq_s: the median block, against bursts of noise). */
static int
sequential(interp *ip, long steps, int n)
{
	char expr[160], out[512], gil[8];
	double *b = ip->blocks;

	snprintf(expr, sizeof(expr),
	    "*sorted(cpu.sequential(%ld, %d) for _ in range(%d)), "
	    "*cpu.runtime()",
	    steps, n, SEQ_BLOCKS);
	if (py_eval(ip->exe, expr, out, sizeof(out)) != 0)
		return -1;
	if (sscanf(out, "%lf %lf %lf %lf %lf %31s %7s", &b[0], &b[1], &b[2],
		&b[3], &b[4], ip->version, gil) != SEQ_BLOCKS + 2 ||
	    b[0] <= 0) {
		fprintf(stderr, "scaling: %s printed '%s'\n", ip->exe, out);
		return -1;
	}
	ip->seq_s = b[SEQ_BLOCKS / 2];
	ip->gil = strcmp(gil, "True") == 0;
	return 0;
}

/* Moves a failed result's error into *err (which must be empty). */
static int
take_error(gild_result *res, gild_error *err)
{
	int code = res->code;

	*err = res->error;
	memset(&res->error, 0, sizeof(res->error));
	gild_result_clear(res);
	return code;
}

/* Keeps `depth` calls of burn(args) in flight until `seconds` have passed
 * since the first was sent (seconds <= 0: no time bound) or `max_calls`
 * have finished, then waits for those still out. Each result must equal
 * *sum (learnt from the first when *sum < 0). Returns GILD_OK with the calls
 * finished up to the stop in *calls and the time they took in *elapsed, or
 * an error code with err filled. */
static int
closed_loop(gild_client *c, const gild_value *args, int depth, double seconds,
    long max_calls, int64_t *sum, long *calls, double *elapsed,
    gild_error *err)
{
	long sent = 0, done = 0;
	double t0 = now_s(), t = t0;
	int stop = 0, rc;
	gild_call_id id;

	for (; sent < depth && sent < max_calls; sent++)
		if ((rc = gild_submit(c, "burn", args, NULL, &id, err)) != GILD_OK)
			return rc;
	while (gild_in_flight(c) > 0) {
		gild_result res = {0};

		rc = gild_poll(c, REPLY_TIMEOUT_MS, &res);
		if (rc != GILD_OK) {
			err->code = rc;
			err->message = strdup("no reply in time");
			return rc;
		}
		if (res.code != GILD_OK)
			return take_error(&res, err);
		if (*sum < 0)
			*sum = gild_value_int(res.value);
		if (gild_value_int(res.value) != *sum) {
			gild_result_clear(&res);
			err->code = GILD_INTERNAL;
			err->message = strdup("burn returned a wrong checksum");
			return GILD_INTERNAL;
		}
		gild_result_clear(&res);
		if (stop)
			continue;
		done++;
		t = now_s();
		if ((seconds > 0 && t - t0 >= seconds) || done >= max_calls) {
			stop = 1;
			continue;
		}
		if (sent < max_calls) {
			rc = gild_submit(c, "burn", args, NULL, &id, err);
			if (rc != GILD_OK)
				return rc;
			sent++;
		}
	}
	*calls = done;
	*elapsed = t - t0;
	return GILD_OK;
}

/* Whether the worker's interpreter runs with a GIL now (1, 0), or -1. */
static int
worker_gil(gild_client *c, gild_error *err)
{
	gild_value *v = NULL;
	int gil;

	if (gild_call(c, "runtime", NULL, NULL, REPLY_TIMEOUT_MS, &v, err) !=
	    GILD_OK)
		return -1;
	gil = gild_value_bool(gild_value_item(v, 1));
	gild_value_free(v);
	return gil;
}

/* cpu.sequential(steps, n) run inside the worker: seconds per call, or -1
 * (err filled). */
static double
worker_sequential(gild_client *c, long steps, int n, gild_error *err)
{
	gild_value *args = gild_list(), *v = NULL;
	double s = -1;

	if (args != NULL && gild_list_append(args, gild_int(steps)) == GILD_OK &&
	    gild_list_append(args, gild_int(n)) == GILD_OK &&
	    gild_call(c, "sequential", args, NULL, REPLY_TIMEOUT_MS, &v, err) ==
		GILD_OK)
		s = gild_value_float(v);
	gild_value_free(v);
	gild_value_free(args);
	return s;
}

/* Starts gild for r->runtime at r->n, warms it up (4·N calls, 2·N in
 * flight), measures a closed loop of 2·N burn(steps) in flight and stops
 * gild by its pid on every path. Fills r's counts and rate, and at N = 1
 * r->worker_seq_s (nseq calls in a row inside the worker: the interpreter
 * as gild embeds it, without gild around each call). Returns 0 or -1. */
static int
measure(const opts *o, long steps, int nseq, const gild_value *args, row *r)
{
	char threads[16];
	const char *ft_args[] = {"--runtime", "free-threaded", "--threads",
	    threads, NULL};
	int ft = strcmp(r->runtime, "free-threaded") == 0;
	const char *urls[1];
	gild_client *c = NULL;
	gild_error err = {0};
	gild_proc p;
	int64_t sum = -1;
	long warm;
	double warm_s;
	int rc = -1;

	snprintf(threads, sizeof(threads), "%d", r->n);
	if (proc_start(&p, o->app, ft ? 1 : r->n, NULL, ft ? ft_args : NULL) !=
	    0) {
		/* Nothing is left running, but its folder is. */
		if (p.dir[0] != '\0') {
			remove(p.log);
			rmdir(p.dir);
		}
		return -1;
	}
	urls[0] = p.url;
	if (gild_connect(&c, urls, 1, &err) != GILD_OK)
		goto fail;
	if (closed_loop(c, args, 2 * r->n, 0, 4 * r->n, &sum, &warm, &warm_s,
		&err) != GILD_OK)
		goto fail;
	if (closed_loop(c, args, 2 * r->n, o->seconds, o->max_calls, &sum,
		&r->calls, &r->seconds, &err) != GILD_OK)
		goto fail;
	if (r->n == 1 &&
	    (r->worker_seq_s = worker_sequential(c, steps, nseq * SEQ_BLOCKS,
		 &err)) <= 0)
		goto fail;
	if ((r->gil = worker_gil(c, &err)) < 0)
		goto fail;
	r->per_s = r->seconds > 0 ? (double) r->calls / r->seconds : 0;
	rc = 0;
fail:
	if (rc != 0)
		fprintf(stderr, "scaling: %s N=%d: %s: %s\n", r->runtime, r->n,
		    gild_code_name(err.code),
		    err.message ? err.message : "failed");
	gild_error_clear(&err);
	gild_close(c);
	if (proc_stop(&p) != 0)
		rc = -1;
	return rc;
}

/* The "model name" of /proc/cpuinfo's first CPU, or "unknown". */
static void
cpu_model(char *out, size_t len)
{
	char line[512];
	FILE *f = fopen("/proc/cpuinfo", "r");

	snprintf(out, len, "unknown");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *colon = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
			colon += strspn(colon + 1, " \t") + 1;
			colon[strcspn(colon, "\n")] = '\0';
			snprintf(out, len, "%s", colon);
			break;
		}
	}
	fclose(f);
}

/* The CPUs in this process's affinity mask (what nproc prints). */
static int
nproc(void)
{
	cpu_set_t set;

	return sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
							    : 1;
}

static json_t *
interp_json(const interp *ip, int calls)
{
	json_t *blocks;

	if (ip == NULL)
		return json_null();
	blocks = json_array();
	for (int i = 0; i < SEQ_BLOCKS; i++)
		json_array_append_new(blocks, json_real(ip->blocks[i]));
	return json_pack("{s:s, s:s, s:b, s:f, s:f, s:i, s:o}", "exe",
	    ip->exe, "version", ip->version, "gil", ip->gil,
	    "seconds_per_call", ip->seq_s, "ms_per_call", ip->seq_s * 1e3,
	    "calls_per_block", calls, "blocks_seconds_per_call", blocks);
}

/* Writes the run as JSON to DIR/scaling-STAMP.json (through a .tmp file).
 * Returns 0 or -1 (said on stderr). */
static int
write_json(const opts *o, time_t when, int cpus, long steps, int nseq,
    const interp *sys, const interp *ft, const row *rows, int nrows)
{
	char date[40], stamp[32], model[256], path[PATH_MAX], tmp[PATH_MAX + 8];
	json_t *root = NULL, *jrows = json_array();
	char *text = NULL;
	FILE *f = NULL;
	struct tm tm;
	int rc = -1;

	localtime_r(&when, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S%z", &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	cpu_model(model, sizeof(model));
	snprintf(path, sizeof(path), "%s/scaling-%s.json", o->out_dir, stamp);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	for (int i = 0; jrows != NULL && i < nrows; i++) {
		const row *r = &rows[i];
		json_array_append_new(jrows,
		    json_pack("{s:s, s:i, s:I, s:f, s:f, s:f, s:f, s:o, s:b, s:o}",
			"runtime", r->runtime, "n", r->n, "calls",
			(json_int_t) r->calls, "seconds", r->seconds,
			"calls_per_s", r->per_s, "speedup", r->speedup,
			"efficiency", r->efficiency, "vs_process",
			r->vs_process > 0 ? json_real(r->vs_process)
					  : json_null(),
			"gil", r->gil, "worker_seconds_per_call",
			r->worker_seq_s > 0 ? json_real(r->worker_seq_s)
					    : json_null()));
	}
	root = json_pack(
	    "{s:s, s:s, s:{s:i, s:i, s:s}, s:I, s:f, s:f, s:f, s:I,"
	    " s:{s:o, s:o, s:o}, s:o}",
	    "bench", "scaling", "date", date, "machine", "nproc", nproc(),
	    "cpus_usable", cpus, "model", model, "steps", (json_int_t) steps,
	    "target_ms_per_call", o->ms, "ms_per_call", sys->seq_s * 1e3,
	    "seconds_per_point", o->seconds, "max_calls_per_point",
	    (json_int_t) o->max_calls, "sequential", "python",
	    interp_json(sys, nseq), "python_ft", interp_json(ft, nseq),
	    "ft_over_gil",
	    ft != NULL ? json_real(ft->seq_s / sys->seq_s) : json_null(),
	    "rows", jrows);
	jrows = NULL; /* root owns it now (or freed it) */
	if (root == NULL ||
	    (text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(6))) ==
		NULL)
		goto fail;
	if (mkdir(o->out_dir, 0777) == -1 && errno != EEXIST)
		goto fail;
	if ((f = fopen(tmp, "w")) == NULL)
		goto fail;
	if (fprintf(f, "%s\n", text) < 0)
		goto fail;
	if (fclose(f) != 0) {
		f = NULL;
		goto fail;
	}
	f = NULL;
	if (rename(tmp, path) == -1)
		goto fail;
	printf("\nwrote %s\n", path);
	rc = 0;
fail:
	if (rc != 0) {
		fprintf(stderr, "scaling: could not write %s: %s\n", path,
		    strerror(errno));
		if (f != NULL)
			fclose(f);
		remove(tmp);
	}
	free(text);
	json_decref(root);
	json_decref(jrows);
	return rc;
}

/* Prints the machine, the sequential baselines, the table and the
 * in-worker sequential times (rows at N = 1) to stdout. ft NULL: skipped. */
static void
print_report(const opts *o, int cpus, long steps, int nseq, const interp *sys,
    const interp *ft, const row *rows, int nrows)
{
	char model[256];
	double in_sys = 0, in_ft = 0;

	cpu_model(model, sizeof(model));
	printf("\nscaling: %d usable CPUs (%s), %.1f s per point\n", cpus, model,
	    o->seconds);
	for (int k = 0; k < 2; k++) {
		const interp *ip = k == 0 ? sys : ft;
		if (ip == NULL)
			break;
		printf("sequential burn(%ld) on %s %s (GIL %s): %.2f ms/call "
		       "(median of %d blocks of %d: %.2f-%.2f)\n",
		    steps, ip->exe, ip->version, ip->gil ? "on" : "off",
		    ip->seq_s * 1e3, SEQ_BLOCKS, nseq, ip->blocks[0] * 1e3,
		    ip->blocks[SEQ_BLOCKS - 1] * 1e3);
	}
	if (ft != NULL)
		printf("single-thread cost of the free-threaded build: %.2fx "
		       "(free-threaded / GIL, sequential)\n",
		    ft->seq_s / sys->seq_s);
	else
		printf("free-threaded runtime: skipped (no --python-ft)\n");

	printf("\n| runtime | N | calls | calls/s | speedup | efficiency "
	       "| vs process |\n|---|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < nrows; i++) {
		const row *r = &rows[i];
		int is_ft = strcmp(r->runtime, "free-threaded") == 0;
		char vs[32] = "";

		if (r->vs_process > 0)
			snprintf(vs, sizeof(vs), "%.2f", r->vs_process);
		printf("| %s%s | %d | %ld | %.1f | %.2f | %.0f%% | %s |\n",
		    r->runtime, is_ft && r->gil ? " (GIL on!)" : "", r->n,
		    r->calls, r->per_s, r->speedup, r->efficiency * 100, vs);
		if (r->n == 1)
			*(is_ft ? &in_ft : &in_sys) = r->worker_seq_s;
	}
	printf("\nspeedup = calls/s x sequential s/call of the runtime's own "
	       "interpreter; efficiency = speedup / N;\nvs process = "
	       "free-threaded calls/s / process calls/s at the same N\n");
	if (in_sys > 0)
		printf("inside gild's worker (N=1, %d calls in a row): process "
		       "%.2f ms/call (%.2fx %s)",
		    nseq * SEQ_BLOCKS, in_sys * 1e3, in_sys / sys->seq_s,
		    sys->exe);
	if (in_sys > 0 && in_ft > 0)
		printf(", free-threaded %.2f ms/call (%.2fx %s); free-threaded "
		       "/ GIL there: %.2fx",
		    in_ft * 1e3, in_ft / ft->seq_s, ft->exe, in_ft / in_sys);
	if (in_sys > 0)
		printf("\n");
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: scaling --python PY --python-ft PYFT|'' [--seconds S] "
	    "[--max-n N]\n"
	    "               [--ms MS] [--max-calls C] [--app FILE] "
	    "[--out DIR]\n"
	    "  --python PY      the Python gild-worker embeds (sequential "
	    "baseline)\n"
	    "  --python-ft PYFT the free-threaded Python of gild-worker-ft; "
	    "'': skip\n"
	    "                   the free-threaded runtime\n"
	    "  --seconds S      measuring time per point (default 2)\n"
	    "  --max-n N        N = 1..N (default: usable CPUs)\n"
	    "  --ms MS          target time of one call (default 5)\n"
	    "  --max-calls C    calls per point at most (default 100000)\n"
	    "  --app FILE       default bench/apps/cpu.py\n"
	    "  --out DIR        default bench/results\n");
	return 2;
}

/* Parses argv into o. Returns 0 or 2 (usage printed). */
static int
parse(int argc, char **argv, opts *o)
{
	static const struct option longs[] = {
	    {"python", required_argument, NULL, 'p'},
	    {"python-ft", required_argument, NULL, 'f'},
	    {"seconds", required_argument, NULL, 's'},
	    {"max-n", required_argument, NULL, 'n'},
	    {"ms", required_argument, NULL, 'm'},
	    {"max-calls", required_argument, NULL, 'c'},
	    {"app", required_argument, NULL, 'a'},
	    {"out", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	const char *app = "bench/apps/cpu.py";
	int ch, have_ft = 0;

	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'p': o->py = optarg; break;
		case 'f':
			have_ft = 1;
			o->py_ft = *optarg ? optarg : NULL;
			break;
		case 's': o->seconds = atof(optarg); break;
		case 'n': o->max_n = atoi(optarg); break;
		case 'm': o->ms = atof(optarg); break;
		case 'c': o->max_calls = atol(optarg); break;
		case 'a': app = optarg; break;
		case 'o': o->out_dir = optarg; break;
		default: return usage();
		}
	}
	if (optind != argc || o->py == NULL || !*o->py || !have_ft ||
	    o->seconds <= 0 || o->seconds > 3600 || o->max_n < 0 ||
	    o->max_n > 1024 || o->ms <= 0 || o->ms > 10000 ||
	    o->max_calls <= 0)
		return usage();
	if (realpath(app, o->app) == NULL) {
		fprintf(stderr, "scaling: %s: %s\n", app, strerror(errno));
		return 2;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	opts o = {.seconds = 2, .ms = 5, .max_calls = 100000,
	    .out_dir = "bench/results"};
	interp sys = {0}, ft = {0};
	char expr[64], out[64], apps[PATH_MAX], *slash;
	gild_value *args = NULL;
	row *rows = NULL;
	int cpus, nseq, nrt, nrows = 0, rc = 1;
	long steps;
	time_t when = time(NULL);

	if (parse(argc, argv, &o) != 0)
		return 2;
	/* The harness reads it: here each runtime is chosen explicitly. */
	unsetenv("GILD_TEST_RUNTIME");
	snprintf(apps, sizeof(apps), "%s", o.app);
	if ((slash = strrchr(apps, '/')) != NULL)
		*slash = '\0';
	if (setenv("GILD_BENCH_APPS", apps, 1) != 0)
		return 1;
	cpus = cpus_usable();
	if (o.max_n == 0)
		o.max_n = cpus;

	/* (1) calibrate on the GIL Python, (2) time both sequentially. */
	snprintf(expr, sizeof(expr), "cpu.calibrate(%g)", o.ms);
	if (py_eval(o.py, expr, out, sizeof(out)) != 0)
		return 1;
	if ((steps = atol(out)) <= 0) {
		fprintf(stderr, "scaling: calibrate printed '%s'\n", out);
		return 1;
	}
	/* About 1 s on the GIL build. */
	nseq = o.ms * SEQ_BLOCKS >= 500 ? 2 : (int) (1000 / o.ms / SEQ_BLOCKS);
	sys.exe = o.py;
	ft.exe = o.py_ft;
	if (sequential(&sys, steps, nseq) != 0 ||
	    (o.py_ft != NULL && sequential(&ft, steps, nseq) != 0))
		return 1;
	fprintf(stderr, "scaling: burn(%ld): %.2f ms/call on %s (%s), ", steps,
	    sys.seq_s * 1e3, sys.exe, sys.version);
	if (o.py_ft != NULL)
		fprintf(stderr, "%.2f ms/call on %s (%s)\n", ft.seq_s * 1e3,
		    ft.exe, ft.version);
	else
		fprintf(stderr, "free-threaded runtime skipped\n");

	/* (3) each N, each runtime: the two runtimes at one N are measured
	 * one right after the other, so that the machine's drift over the run
	 * weighs little on "vs process". rows[k * max_n + n - 1]. */
	nrt = o.py_ft != NULL ? 2 : 1;
	rows = calloc((size_t) o.max_n * 2, sizeof(*rows));
	if (rows == NULL || (args = gild_list()) == NULL ||
	    gild_list_append(args, gild_int(steps)) != GILD_OK)
		goto fail;
	for (int n = 1; n <= o.max_n; n++) {
		for (int k = 0; k < nrt; k++) {
			const interp *ip = k == 0 ? &sys : &ft;
			row *r = &rows[k * o.max_n + n - 1];

			r->runtime = k == 0 ? "process" : "free-threaded";
			r->n = n;
			if (measure(&o, steps, nseq, args, r) != 0)
				goto fail;
			r->speedup = r->per_s * ip->seq_s;
			r->efficiency = r->speedup / n;
			if (k == 1 && rows[n - 1].per_s > 0)
				r->vs_process = r->per_s / rows[n - 1].per_s;
			fprintf(stderr,
			    "scaling: %s N=%d: %ld calls in %.2f s, %.1f/s\n",
			    r->runtime, n, r->calls, r->seconds, r->per_s);
		}
	}
	nrows = nrt * o.max_n;

	/* (4) the table, then the JSON. */
	print_report(&o, cpus, steps, nseq, &sys, o.py_ft != NULL ? &ft : NULL,
	    rows, nrows);
	fflush(stdout);
	rc = write_json(&o, when, cpus, steps, nseq, &sys,
		 o.py_ft != NULL ? &ft : NULL, rows, nrows) == 0
		 ? 0
		 : 1;
fail:
	gild_value_free(args);
	free(rows);
	return rc;
}
