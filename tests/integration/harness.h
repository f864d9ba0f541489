/* Starts the real gild binary for a test, on a run-time port or a temporary
 * ipc path, and stops it by pid. */
#ifndef GILD_TEST_HARNESS_H
#define GILD_TEST_HARNESS_H

#include <nng/nng.h>
#include "gild.h"
#include <stdbool.h>
#include <sys/types.h>

typedef struct gild_proc {
	pid_t pid;
	char url[1024];    /* the first "listening on" URL */
	char dir[128];     /* temporary folder: log, sockets */
	char log[200];     /* gild's stderr */
	int exit_status;   /* after proc_stop: waitpid status */
} gild_proc;

/* The runtime the suites run against: GILD_TEST_RUNTIME=free-threaded (set
 * by tests/run.sh for the second pass) serves every app with --runtime
 * free-threaded, N workers becoming 1 worker of N threads, so the same
 * tests check both runtimes. */
bool test_free_threaded(void);

/* How many worker processes a server started with n workers has: n, or 1
 * under the free-threaded runtime. */
int test_processes(int n);

/* In a test that is about worker processes (pids, one process per call):
 * returns true, after marking the test skipped (test_skip) with why, when
 * the free-threaded runtime is under test, and the test should return. */
bool skip_unless_process(const char *why);

/* Starts `B/gild serve APP --workers N` (or, under the free-threaded
 * runtime, `--runtime free-threaded --workers 1 --threads N`) with listen
 * (NULL: tcp port 0 on
 * 127.0.0.1; a string with %s is formatted with the temp dir) plus extra
 * NULL-terminated args, and waits (up to 60 s) for "gild: ready". Returns 0
 * or -1 (gild's log is printed). */
int proc_start(gild_proc *p, const char *app, int workers, const char *listen,
    const char *const *extra);

/* SIGTERM, then proc_wait. */
int proc_stop(gild_proc *p);

/* Waits up to 30 s for gild to exit (SIGKILL after), checks no worker it
 * had is left, removes the temp folder. Returns 0 when gild exited 0, left
 * no worker, and did not need its exit watchdog to end an nng close that
 * hung (it logs that, then exits with the status it meant to). */
int proc_wait(gild_proc *p);

/* Prints gild's stderr log (for failures). */
void proc_dump_log(const gild_proc *p);
/* Whether a line of gild's log holds text. */
bool proc_log_has(const gild_proc *p, const char *text);

/* gild's log (its stderr) so far, one NUL-terminated string per line
 * (without its newline), in *lines (new: free with proc_log_free), and
 * how many in *n. Returns 0, or -1 when it cannot be read. */
int proc_log_read(const gild_proc *p, char ***lines, size_t *n);
void proc_log_free(char **lines, size_t n);

/* When a line of gild's log was written, from its own stamp (logfmt's
 * time=...Z or JSON's "time":"...Z", to the millisecond), in ms since the
 * epoch; -1 when it has none. */
long long log_stamp_ms(const char *line);

/* Pids of gild's worker processes now: its descendants (the template, and
 * the workers it forked); returns count. */
int proc_workers(const gild_proc *p, pid_t *pids, int max);

/* gild's template (server/forker.h) now: its live child that runs
 * gild-worker --template (forked workers and the standby share that
 * command line, but are the template's children; a standby that took
 * over is gild's); 0 when there is not exactly one. */
pid_t proc_template(const gild_proc *p);

/* The parent of process pid now (0: not known). */
pid_t pid_parent(pid_t pid);

/* Runs fn(arg) on a thread and waits at most timeout_ms for it; past that
 * it says so on stderr (naming `what`) and goes on, leaving the thread.
 * nng 1.5.2 can deadlock inside nng_close (nng issue #1543, and a pipe the
 * peer dropped mid-send wedges its socket the same way), and a test must
 * not hang on it. Returns 0 when fn returned in time. */
int run_bounded(void (*fn)(void *), void *arg, int timeout_ms,
    const char *what);

/* nng_close under run_bounded. */
int close_bounded(nng_socket s, int timeout_ms);

/* gild_close (a gild_client *) under run_bounded: for a client whose
 * server died or was cut off, which is when nng's close can wedge. */
int client_close_bounded(gild_client *c, int timeout_ms);

/* The build folder ($B or "build") and a path inside the repo. */
const char *build_dir(void);
bool pid_alive(pid_t pid);
double now_s(void);
/* v's string, or "(not a string)" for anything else, NULL included: for
 * CU_ASSERT_STRING_EQUAL, which would crash on NULL after a failed call. */
const char *value_str(const gild_value *v);

#endif
