/* What the integration suites that drive gild through libgild share: a
 * server with a connected client, and one-line submit / wait. */
#ifndef GILD_TEST_SERVED_H
#define GILD_TEST_SERVED_H

#include "gild.h"
#include "harness.h"

typedef struct served {
	gild_proc p;
	gild_client *c;
} served;

/* Starts gild serving app with n workers and the extra args (NULL for
 * none) and connects a client. Returns 0 or -1. */
int served_start(served *s, const char *app, int n, const char *const *extra);

/* Closes the client (a close that hangs is a test failure: see
 * served_close), stops gild and asserts it exited 0 with no worker left. */
void served_stop(served *s);

/* Closes c within 5 s (nng 1.5.2's close can hang: nng #1543); one that
 * does not return in time is a test failure naming what was closed. */
void served_close(gild_client *c, const char *what);

/* Asserts that the server still serves: add(40, 2), a function of the
 * served app, returns 42 within 20 s. */
void served_assert_serving(gild_client *c);

/* Submits fn(arg) (arg taken; NULL: no argument) with a deadline (0:
 * none); a failure is a test failure. */
gild_call_id served_submit(gild_client *c, const char *fn, gild_value *arg,
    int timeout_ms);

/* Runs fn(arg) (arg taken; NULL: no argument) to its end, asserting it
 * succeeds. The server then knows how long fn's calls take: it sends a
 * call ahead to a busy worker (--pipeline) only behind calls of functions
 * it has seen run short, and only if the call's own function has. */
void served_run(gild_client *c, const char *fn, gild_value *arg);

/* Waits up to 30 s for id into *res (a test failure if it does not come);
 * returns res->code, or -1. */
int served_wait(gild_client *c, gild_call_id id, gild_result *res);

/* An integer field of the server's status, or of worker 0's (worker =
 * true); -1 when status cannot be read. */
int64_t served_status_int(gild_client *c, const char *field, bool worker);

/* Pids of the workers status lists as up (ready or busy; not the template
 * nor a worker still starting), at most max; returns how many (0 when
 * status cannot be read). */
int served_worker_pids(gild_client *c, int64_t *pids, int max);

/* The ledger of tests/apps/ledger.py: one line per call's start and end,
 * in the order they happened. */
typedef struct stamp {
	bool start;              /* else its end */
	char token[32];
	long long pid;
	unsigned long long thread;
} stamp;

/* The dispatch check on a server s serving tests/apps/ledger.py: `warm`
 * short stamp() calls run first, one after another (so the scheduler
 * takes stamp for a short function); then one stamp() call waits for a
 * gate file, and once it has started n more are sent; their answers are
 * collected (for 20 s at most) before the gate is opened, and all are
 * waited for. What the ledger and the answers say: */
typedef struct gated_run {
	int answered; /* of the n, answered before the gate opened */
	int late;     /* of the n, started after the gated call ended */
	int beside;   /* of the n, ran on the gated call's worker and thread */
	int twice;    /* calls that started more than once */
	int places;   /* distinct (worker, thread) that ran calls, gated
			 included */
} gated_run;
void stamps_gated_run(served *s, int warm, int n, gated_run *out);
/* The same with fn instead of stamp: stamp_long, whose calls all take a
 * few ms, so the scheduler takes it for a long function. */
void stamps_gated_run_fn(served *s, const char *fn, int warm, int n,
    gated_run *out);

/* Asserts that r (a run of n calls) shows no call waited for the gated
 * one: all n answered while it was held, none started after it ended or
 * ran where it ran (its `place`, "worker" or "thread"), each ran once,
 * and 2 places ran calls. Says what it saw when not. */
void stamps_assert_none_waited(const gated_run *r, int n, const char *place);

#endif
