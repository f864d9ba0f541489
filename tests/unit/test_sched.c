/* Tests of server/sched.c: the queue and worker-slot bookkeeping. */
#include "server/sched.h"
#include "server/svctime.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "test_main.h"

static job *
mkjob(uint64_t id, uint32_t pipe, uint64_t request_id)
{
	job *j = calloc(1, sizeof(*j));
	j->id = id;
	j->pipe = pipe;
	j->request_id = request_id;
	return j;
}

static void
test_fifo_and_no_ready_worker(void)
{
	sched *s;
	job *a = mkjob(1, 1, 10), *b = mkjob(2, 1, 11), *c = mkjob(3, 2, 10);

	CU_ASSERT_EQUAL_FATAL(sched_init(&s, 2, 1, 100), 0);
	CU_ASSERT_EQUAL(sched_submit(s, a), 0);
	CU_ASSERT_EQUAL(sched_submit(s, b), 0);
	CU_ASSERT_EQUAL(sched_submit(s, c), 0);
	CU_ASSERT_EQUAL(a->state, JOB_QUEUED);
	/* No worker has said hello: nothing runs. */
	CU_ASSERT_PTR_NULL(sched_next(s));
	CU_ASSERT_EQUAL(sched_queued(s), 3);

	sched_slot_ready(s, 1);
	CU_ASSERT_PTR_EQUAL(sched_next(s), a); /* oldest first */
	CU_ASSERT_EQUAL(a->state, JOB_RUNNING);
	CU_ASSERT_EQUAL(a->slot, 1);
	CU_ASSERT_PTR_NULL(sched_next(s)); /* slot 1 is full (1 per slot) */
	sched_slot_ready(s, 0);
	CU_ASSERT_PTR_EQUAL(sched_next(s), b);
	CU_ASSERT_EQUAL(b->slot, 0);
	CU_ASSERT_EQUAL(sched_running(s), 2);
	CU_ASSERT_EQUAL(sched_queued(s), 1);

	/* Completing frees the slot for the next job. */
	CU_ASSERT_PTR_NULL(sched_complete(s, 0, 1)); /* a is not on slot 0 */
	CU_ASSERT_PTR_EQUAL(sched_complete(s, 1, 1), a);
	CU_ASSERT_EQUAL(a->state, JOB_DONE);
	CU_ASSERT_PTR_NULL(sched_complete(s, 1, 1)); /* only once */
	CU_ASSERT_PTR_EQUAL(sched_next(s), c);
	CU_ASSERT_EQUAL(c->slot, 1);
	CU_ASSERT_PTR_EQUAL(sched_complete(s, 0, 2), b);
	CU_ASSERT_PTR_EQUAL(sched_complete(s, 1, 3), c);
	CU_ASSERT_EQUAL(sched_running(s), 0);
	free(a);
	free(b);
	free(c);
	sched_fini(s);
}

static void
test_queue_limit(void)
{
	sched *s;
	job *j[3];

	CU_ASSERT_EQUAL_FATAL(sched_init(&s, 1, 1, 2), 0);
	for (int i = 0; i < 3; i++)
		j[i] = mkjob((uint64_t) i + 1, 1, (uint64_t) i);
	CU_ASSERT_EQUAL(sched_submit(s, j[0]), 0);
	CU_ASSERT_EQUAL(sched_submit(s, j[1]), 0);
	CU_ASSERT_EQUAL(sched_submit(s, j[2]), -EAGAIN);
	CU_ASSERT_EQUAL(j[2]->state, JOB_NEW); /* untouched */
	CU_ASSERT_EQUAL(sched_queued(s), 2);
	/* Running jobs do not count against the queue. */
	sched_slot_ready(s, 0);
	CU_ASSERT_PTR_EQUAL(sched_next(s), j[0]);
	CU_ASSERT_EQUAL(sched_submit(s, j[2]), 0);
	/* Shutdown takes everything: j[0] running (slot kept), j[1] and j[2]
	 * queued (slot -1). */
	job *list = sched_take_all(s);
	int n = 0, running = 0;
	for (job *p = list; p; p = p->next) {
		CU_ASSERT_EQUAL(p->state, JOB_DONE);
		running += p->slot == 0;
		n++;
	}
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(running, 1);
	CU_ASSERT_EQUAL(sched_queued(s), 0);
	CU_ASSERT_EQUAL(sched_running(s), 0);
	CU_ASSERT_EQUAL(sched_ready_slots(s), 0);
	for (int i = 0; i < 3; i++)
		free(j[i]);
	sched_fini(s);
}

static void
test_slot_lost_returns_running_jobs(void)
{
	sched *s;
	job *a = mkjob(1, 1, 1), *b = mkjob(2, 1, 2), *c = mkjob(3, 1, 3);

	/* Two jobs per slot, as a threaded worker would take. */
	CU_ASSERT_EQUAL_FATAL(sched_init(&s, 2, 2, 10), 0);
	sched_slot_ready(s, 0);
	sched_submit(s, a);
	sched_submit(s, b);
	sched_submit(s, c);
	CU_ASSERT_PTR_EQUAL(sched_next(s), a);
	CU_ASSERT_PTR_EQUAL(sched_next(s), b);
	CU_ASSERT_PTR_NULL(sched_next(s));
	CU_ASSERT_EQUAL(sched_slot_running(s, 0), 2);

	job *lost = sched_slot_lost(s, 0);
	int n = 0;
	for (job *p = lost; p; p = p->next) {
		CU_ASSERT(p == a || p == b);
		CU_ASSERT_EQUAL(p->state, JOB_DONE);
		n++;
	}
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(sched_running(s), 0);
	CU_ASSERT_EQUAL(sched_ready_slots(s), 0);
	/* c waits for a worker; the replacement takes it. */
	CU_ASSERT_PTR_NULL(sched_next(s));
	sched_slot_ready(s, 0);
	CU_ASSERT_PTR_EQUAL(sched_next(s), c);
	sched_complete(s, 0, 3);
	free(a);
	free(b);
	free(c);
	sched_fini(s);
}

static void
test_least_loaded_slot(void)
{
	sched *s;
	job *j[4];

	CU_ASSERT_EQUAL_FATAL(sched_init(&s, 2, 4, 10), 0);
	sched_slot_ready(s, 0);
	sched_slot_ready(s, 1);
	for (int i = 0; i < 4; i++) {
		j[i] = mkjob((uint64_t) i + 1, 1, (uint64_t) i);
		sched_submit(s, j[i]);
	}
	/* Jobs alternate between the two slots. */
	for (int i = 0; i < 4; i++)
		CU_ASSERT_PTR_EQUAL(sched_next(s), j[i]);
	CU_ASSERT_EQUAL(sched_slot_running(s, 0), 2);
	CU_ASSERT_EQUAL(sched_slot_running(s, 1), 2);
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_PTR_EQUAL(sched_complete(s, j[i]->slot, j[i]->id), j[i]);
		free(j[i]);
	}
	sched_fini(s);
}

static void
test_find_and_remove(void)
{
	sched *s;
	job *a = mkjob(1, 5, 100), *b = mkjob(2, 6, 100);

	CU_ASSERT_EQUAL_FATAL(sched_init(&s, 1, 1, 10), 0);
	sched_submit(s, a);
	sched_submit(s, b);
	/* Same request id from another client does not match. */
	CU_ASSERT_PTR_NULL(sched_find(s, 7, 100));
	CU_ASSERT_PTR_EQUAL(sched_find(s, 6, 100), b);
	sched_remove_queued(s, b);
	CU_ASSERT_EQUAL(b->state, JOB_DONE);
	CU_ASSERT_EQUAL(sched_queued(s), 1);
	CU_ASSERT_PTR_NULL(sched_find(s, 6, 100));
	/* Running jobs are found too. */
	sched_slot_ready(s, 0);
	CU_ASSERT_PTR_EQUAL(sched_next(s), a);
	CU_ASSERT_PTR_EQUAL(sched_find(s, 5, 100), a);
	CU_ASSERT_PTR_EQUAL(sched_slot_jobs(s, 0), a);
	CU_ASSERT_PTR_NULL(sched_slot_jobs(s, 1));
	sched_complete(s, 0, 1);
	CU_ASSERT_PTR_NULL(sched_find(s, 5, 100));
	free(a);
	free(b);
	sched_fini(s);
}

static void
test_take_pipe(void)
{
	sched *s;
	job *a = mkjob(1, 5, 1), *b = mkjob(2, 6, 2), *c = mkjob(3, 5, 3);
	job *d = mkjob(4, 5, 4), *list;

	CU_ASSERT_EQUAL_FATAL(sched_init(&s, 1, 1, 10), 0);
	sched_slot_ready(s, 0);
	sched_submit(s, d);
	CU_ASSERT_PTR_EQUAL(sched_next(s), d); /* running: not taken */
	sched_submit(s, a);
	sched_submit(s, b);
	sched_submit(s, c);
	list = sched_take_pipe(s, 5);
	CU_ASSERT_EQUAL(sched_queued(s), 1);
	CU_ASSERT_TRUE((list == a && a->next == c) || (list == c && c->next == a));
	CU_ASSERT_EQUAL(a->state, JOB_DONE);
	CU_ASSERT_EQUAL(c->state, JOB_DONE);
	CU_ASSERT_EQUAL(sched_running(s), 1);
	CU_ASSERT_PTR_NULL(sched_take_pipe(s, 9));
	sched_complete(s, 0, 4);
	CU_ASSERT_PTR_EQUAL(sched_next(s), b);
	sched_complete(s, 0, 2);
	free(a);
	free(b);
	free(c);
	free(d);
	sched_fini(s);
}

static void
test_requeue_runs_next_past_limit(void)
{
	sched *s;
	job *a = mkjob(1, 1, 1), *b = mkjob(2, 1, 2), *lost;

	CU_ASSERT_EQUAL_FATAL(sched_init(&s, 1, 1, 1), 0);
	sched_slot_ready(s, 0);
	sched_submit(s, a);
	CU_ASSERT_PTR_EQUAL(sched_next(s), a);
	CU_ASSERT_EQUAL(sched_submit(s, b), 0); /* the queue (of 1) is full */
	lost = sched_slot_lost(s, 0);
	CU_ASSERT_PTR_EQUAL(lost, a);
	sched_requeue(s, a); /* retried: ahead of b, over --max-queue */
	CU_ASSERT_EQUAL(sched_queued(s), 2);
	CU_ASSERT_EQUAL(a->state, JOB_QUEUED);
	sched_slot_ready(s, 0);
	CU_ASSERT_PTR_EQUAL(sched_next(s), a);
	sched_complete(s, 0, 1);
	CU_ASSERT_PTR_EQUAL(sched_next(s), b);
	sched_complete(s, 0, 2);
	CU_ASSERT_EQUAL(sched_queued(s), 0);
	CU_ASSERT_EQUAL(sched_running(s), 0);
	free(a);
	free(b);
	sched_fini(s);
}

static void
test_pause_lets_running_finish(void)
{
	sched *s;
	job *a = mkjob(1, 1, 1), *b = mkjob(2, 1, 2);

	CU_ASSERT_EQUAL_FATAL(sched_init(&s, 1, 1, 10), 0);
	sched_slot_ready(s, 0);
	sched_submit(s, a);
	sched_submit(s, b);
	CU_ASSERT_PTR_EQUAL(sched_next(s), a);
	/* Paused (being recycled): a still completes, b waits. */
	sched_slot_pause(s, 0);
	CU_ASSERT_PTR_EQUAL(sched_complete(s, 0, 1), a);
	CU_ASSERT_PTR_NULL(sched_next(s));
	CU_ASSERT_EQUAL(sched_ready_slots(s), 0);
	sched_slot_ready(s, 0); /* the replacement said hello */
	CU_ASSERT_PTR_EQUAL(sched_next(s), b);
	sched_complete(s, 0, 2);
	free(a);
	free(b);
	sched_fini(s);
}

/* A plain call of function fn, batched by up to 8. */
static job *
mkfn(uint64_t id, const char *fn)
{
	job *j = mkjob(id, 1, id);
	j->function = fn;
	j->function_len = strlen(fn);
	j->batch = 8;
	return j;
}

static void
test_batch_same_function(void)
{
	sched *s;
	job *a = mkfn(1, "f"), *b = mkfn(2, "g"), *c = mkfn(3, "f");
	job *d = mkfn(4, "f"), *more[4];

	CU_ASSERT_EQUAL_FATAL(sched_init(&s, 1, 1, 10), 0);
	sched_submit(s, a);
	sched_submit(s, b);
	sched_submit(s, c);
	sched_submit(s, d);
	CU_ASSERT_PTR_NULL(sched_peek(s)); /* no ready slot */
	CU_ASSERT_FALSE(sched_has_room(s));
	sched_slot_ready(s, 0);
	CU_ASSERT_TRUE(sched_has_room(s));
	CU_ASSERT_PTR_EQUAL(sched_peek(s), a);
	CU_ASSERT_EQUAL(a->state, JOB_QUEUED); /* peek leaves it queued */
	CU_ASSERT_EQUAL(sched_count_same(s, a), 2);
	CU_ASSERT_PTR_EQUAL(sched_next(s), a);
	/* At most 1 more, oldest first; g is skipped, not taken. */
	CU_ASSERT_EQUAL(sched_take_same(s, a, more, 1), 1);
	CU_ASSERT_PTR_EQUAL(more[0], c);
	CU_ASSERT_EQUAL(c->state, JOB_RUNNING);
	CU_ASSERT_EQUAL(c->slot, 0);
	CU_ASSERT_EQUAL(sched_slot_running(s, 0), 2);
	CU_ASSERT_EQUAL(sched_queued(s), 2);
	CU_ASSERT_FALSE(sched_has_room(s));
	CU_ASSERT_PTR_EQUAL(sched_complete(s, 0, 1), a);
	CU_ASSERT_PTR_EQUAL(sched_complete(s, 0, 3), c);
	CU_ASSERT_PTR_EQUAL(sched_next(s), b);
	CU_ASSERT_EQUAL(sched_take_same(s, b, more, 4), 0);
	sched_complete(s, 0, 2);
	CU_ASSERT_PTR_EQUAL(sched_next(s), d);
	sched_complete(s, 0, 4);
	free(a);
	free(b);
	free(c);
	free(d);
	sched_fini(s);
}

/* Batches take only plain calls of the batched function: not an actor's
 * call or creation, nor a stream, that bear its name (the server sets
 * batch on plain calls only), wherever they stand in the queue. */
static void
test_batch_only_plain_calls(void)
{
	static const struct {
		const char *what;
		bool plain; /* a plain call: batch set */
		int pinned; /* an actor's: its slot + 1 */
	} mix[] = {
	    {"plain", true, 0},
	    {"actor call", false, 1},
	    {"plain", true, 0},
	    {"stream", false, 0},
	    {"actor creation", false, 1},
	    {"plain", true, 0},
	    {"actor call", false, 1},
	};
	enum { N = sizeof(mix) / sizeof(mix[0]) };
	job *jobs[N], *more[N];
	size_t taken, plain_after_first = 0;
	sched *s;

	CU_ASSERT_EQUAL_FATAL(sched_init(&s, 1, 1, 10), 0);
	for (size_t i = 0; i < N; i++) {
		jobs[i] = mkfn(i + 1, "predict");
		jobs[i]->batch = mix[i].plain ? 8 : 0;
		jobs[i]->pinned = mix[i].pinned;
		plain_after_first += i > 0 && mix[i].plain;
		sched_submit(s, jobs[i]);
	}
	sched_slot_ready(s, 0);
	CU_ASSERT_EQUAL(sched_count_same(s, jobs[0]), plain_after_first);
	CU_ASSERT_PTR_EQUAL(sched_next(s), jobs[0]);
	taken = sched_take_same(s, jobs[0], more, N);
	CU_ASSERT_EQUAL(taken, plain_after_first);
	for (size_t k = 0; k < taken; k++) {
		CU_ASSERT_EQUAL(more[k]->batch, 8);
		CU_ASSERT_EQUAL(more[k]->state, JOB_RUNNING);
	}
	/* Oldest first. */
	CU_ASSERT(taken == 2 && more[0] == jobs[2] && more[1] == jobs[5]);
	for (size_t i = 0; i < N; i++)
		CU_ASSERT_EQUAL(
		    jobs[i]->state, mix[i].plain ? JOB_RUNNING : JOB_QUEUED);
	CU_ASSERT_EQUAL(sched_queued(s), N - 1 - plain_after_first);
	/* A job that is no plain call gathers nothing, not even plain ones. */
	CU_ASSERT_EQUAL(sched_count_same(s, jobs[1]), 0);
	for (size_t i = 0; i < N; i++)
		free(jobs[i]);
	sched_fini(s);
}

/* An actor's batch is its group: calls of a batched method of the same
 * name join only their own group, never another actor's nor a function's
 * batch (group 0), and a function's batch takes no group's calls. */
static void
test_batch_groups(void)
{
	static const struct {
		uint64_t group; /* 0: a function's plain call */
		int pinned;
	} mix[] = {{10, 1}, {0, 0}, {20, 1}, {10, 1}, {0, 0}, {20, 1},
	    {10, 1}};
	enum { N = sizeof(mix) / sizeof(mix[0]) };
	job *jobs[N], *more[N];
	sched *s;

	CU_ASSERT_EQUAL_FATAL(sched_init(&s, 1, 1, 10), 0);
	for (size_t i = 0; i < N; i++) {
		jobs[i] = mkfn(i + 1, "embed");
		jobs[i]->batch = 4;
		jobs[i]->group = mix[i].group;
		jobs[i]->pinned = mix[i].pinned;
		sched_submit(s, jobs[i]);
	}
	sched_slot_ready(s, 0);
	CU_ASSERT_EQUAL(sched_count_same(s, jobs[0]), 2);
	CU_ASSERT_EQUAL(sched_count_same(s, jobs[1]), 1);
	CU_ASSERT_EQUAL(sched_count_same(s, jobs[2]), 1);
	CU_ASSERT_PTR_EQUAL(sched_next(s), jobs[0]);
	CU_ASSERT_EQUAL(sched_take_same(s, jobs[0], more, N), 2);
	CU_ASSERT(more[0] == jobs[3] && more[1] == jobs[6]);
	for (size_t i = 0; i < N; i++)
		CU_ASSERT_EQUAL(jobs[i]->state,
		    mix[i].group == 10 ? JOB_RUNNING : JOB_QUEUED);
	for (size_t i = 0; i < N; i += 3)
		sched_complete(s, 0, jobs[i]->id);
	/* The function's calls next: only the other one of them. */
	CU_ASSERT_PTR_EQUAL(sched_next(s), jobs[1]);
	CU_ASSERT_EQUAL(sched_take_same(s, jobs[1], more, N), 1);
	CU_ASSERT_PTR_EQUAL(more[0], jobs[4]);
	for (size_t i = 0; i < N; i++)
		free(jobs[i]);
	sched_fini(s);
}

static void
test_pinned_jobs(void)
{
	sched *s;
	job *a = mkjob(1, 1, 1), *b = mkjob(2, 1, 2), *c = mkjob(3, 1, 3);

	CU_ASSERT_EQUAL_FATAL(sched_init(&s, 2, 1, 10), 0);
	sched_slot_ready(s, 0);
	sched_slot_ready(s, 1);
	a->pinned = 1; /* slot 0 */
	b->pinned = 1;
	sched_submit(s, a);
	sched_submit(s, b);
	sched_submit(s, c);
	CU_ASSERT_PTR_EQUAL(sched_next(s), a);
	CU_ASSERT_EQUAL(a->slot, 0);
	/* b waits for slot 0; c, behind it, takes slot 1 meanwhile. */
	CU_ASSERT_PTR_EQUAL(sched_peek(s), c);
	CU_ASSERT_PTR_EQUAL(sched_next(s), c);
	CU_ASSERT_EQUAL(c->slot, 1);
	CU_ASSERT_PTR_NULL(sched_next(s));
	sched_complete(s, 1, 3);
	CU_ASSERT_PTR_NULL(sched_next(s)); /* slot 1 is free, b is not for it */
	sched_complete(s, 0, 1);
	CU_ASSERT_PTR_EQUAL(sched_next(s), b);
	CU_ASSERT_EQUAL(b->slot, 0);
	sched_complete(s, 0, 2);
	free(a);
	free(b);
	free(c);
	sched_fini(s);
}

/* A plain call expected to be short: one that may be sent ahead. */
static job *
mkplain(uint64_t id)
{
	job *j = mkjob(id, 1, id);
	j->pipelinable = true;
	j->est_us = 10;
	return j;
}

/* --pipeline: with every slot busy, plain calls are sent ahead (up to the
 * depth), never while a slot is free; the oldest waiting one starts when
 * a call ends; a lost slot's waiting calls are marked as never started. */
static void
test_pipeline(void)
{
	sched *s;
	job *j[8], *other = mkjob(100, 1, 100), *lost, *q;
	int n;

	for (int i = 0; i < 8; i++)
		j[i] = mkplain((uint64_t) i + 1);
	CU_ASSERT_EQUAL_FATAL(sched_init(&s, 2, 1, 100), 0);
	sched_set_pipeline(s, 2);
	sched_slot_ready(s, 0);
	sched_slot_ready(s, 1);
	for (int i = 0; i < 7; i++)
		CU_ASSERT_EQUAL(sched_submit(s, j[i]), 0);
	/* One each first: a free slot always wins. */
	CU_ASSERT_PTR_EQUAL(sched_next(s), j[0]);
	CU_ASSERT_PTR_EQUAL(sched_next(s), j[1]);
	CU_ASSERT_NOT_EQUAL(j[0]->slot, j[1]->slot);
	CU_ASSERT_FALSE(j[0]->ahead);
	CU_ASSERT_FALSE(j[1]->ahead);
	/* Then two more each, waiting in the worker. */
	for (int i = 2; i < 6; i++) {
		CU_ASSERT_PTR_EQUAL(sched_next(s), j[i]);
		CU_ASSERT_TRUE(j[i]->ahead);
	}
	CU_ASSERT_PTR_NULL(sched_next(s)); /* depth 2 reached everywhere */
	CU_ASSERT_EQUAL(sched_slot_running(s, 0), 3);
	CU_ASSERT_FALSE(sched_has_room(s)); /* no slot is free */
	/* A call that may not wait (a stream, say) waits in the queue. */
	sched_remove_queued(s, j[6]);
	CU_ASSERT_EQUAL(sched_submit(s, other), 0);
	CU_ASSERT_PTR_NULL(sched_next(s));
	CU_ASSERT_EQUAL(sched_submit(s, j[6]), 0);
	CU_ASSERT_PTR_NULL(sched_next(s)); /* behind the head, nothing is free */

	/* j[0] ends: the oldest call waiting on its slot starts. */
	n = j[0]->slot;
	CU_ASSERT_PTR_EQUAL(sched_complete(s, n, j[0]->id), j[0]);
	for (int i = 2; i < 6; i++)
		if (j[i]->slot == n) {
			CU_ASSERT_FALSE(j[i]->ahead); /* the first of them */
			break;
		}
	/* The slot now runs one and holds one waiting: the plain call at
	 * the head of the queue can't jump the stream queued before it. */
	CU_ASSERT_PTR_NULL(sched_next(s));

	/* The other slot dies: its started call is lost, the waiting ones
	 * come back marked as never started, oldest first. */
	n = j[1]->slot;
	lost = sched_slot_lost(s, n);
	CU_ASSERT_PTR_EQUAL(lost, j[1]);
	CU_ASSERT_FALSE(lost->ahead);
	for (q = lost->next, n = 0; q != NULL; q = q->next, n++) {
		CU_ASSERT_TRUE(q->ahead);
		if (q->next != NULL)
			CU_ASSERT(q->seq < q->next->seq);
	}
	CU_ASSERT_EQUAL(n, 2);

	/* Depth 0: one call per slot, as without pipelining. */
	sched_set_pipeline(s, 0);
	CU_ASSERT_PTR_NULL(sched_next(s));
	sched_fini(s);
	for (int i = 0; i < 8; i++)
		free(j[i]);
	free(other);
}

/* Only short calls go ahead, and never behind one that may be long: not
 * known yet (est_us 0), or known to be long. */
static void
test_send_ahead_policy(void)
{
	sched *s;
	job *run0 = mkplain(1), *run1 = mkplain(2), *a = mkplain(3);
	job *b = mkplain(4), *unknown = mkplain(5), *lng = mkplain(6);

	unknown->est_us = 0;
	lng->est_us = SCHED_SHORT_US + 1;
	CU_ASSERT_EQUAL_FATAL(sched_init(&s, 2, 1, 100), 0);
	sched_set_pipeline(s, 8);
	sched_slot_ready(s, 0);
	sched_slot_ready(s, 1);
	/* Slot 0 runs a call that may be long, slot 1 a short one. */
	run0->est_us = 0;
	sched_submit(s, run0);
	sched_submit(s, run1);
	CU_ASSERT_PTR_EQUAL(sched_next(s), run0);
	CU_ASSERT_PTR_EQUAL(sched_next(s), run1);
	/* A short call goes ahead, to slot 1 only. */
	sched_submit(s, a);
	CU_ASSERT_PTR_EQUAL(sched_next(s), a);
	CU_ASSERT_TRUE(a->ahead);
	CU_ASSERT_EQUAL(a->slot, run1->slot);
	/* Calls that may be long are not sent ahead; the short one behind
	 * them waits its turn in the queue (first come, first served). */
	sched_submit(s, unknown);
	sched_submit(s, b);
	CU_ASSERT_PTR_NULL(sched_next(s));
	sched_remove_queued(s, unknown);
	sched_submit(s, lng);
	sched_remove_queued(s, b);
	CU_ASSERT_PTR_NULL(sched_next(s));
	sched_remove_queued(s, lng);
	/* Behind calls of SCHED_AHEAD_WAIT_US in all, none goes. */
	b->est_us = SCHED_SHORT_US;
	a->est_us = SCHED_AHEAD_WAIT_US;
	sched_submit(s, b);
	CU_ASSERT_PTR_NULL(sched_next(s));
	sched_fini(s);
	free(run0);
	free(run1);
	free(a);
	free(b);
	free(unknown);
	free(lng);
}

/* A free slot takes back the oldest call waiting in another: the worker
 * answers returned (it goes back to the queue, before later calls, and
 * runs on the free slot) or started (it stays). */
static void
test_take_back(void)
{
	sched *s;
	job *l0 = mkplain(1), *l1 = mkplain(2), *w[4], *late = mkplain(9);

	CU_ASSERT_EQUAL_FATAL(sched_init(&s, 2, 1, 100), 0);
	sched_set_pipeline(s, 8);
	sched_slot_ready(s, 0);
	sched_slot_ready(s, 1);
	sched_submit(s, l0);
	sched_submit(s, l1);
	CU_ASSERT_PTR_EQUAL(sched_next(s), l0);
	CU_ASSERT_PTR_EQUAL(sched_next(s), l1);
	for (int i = 0; i < 4; i++) {
		w[i] = mkplain((uint64_t) i + 3);
		sched_submit(s, w[i]);
		CU_ASSERT_PTR_EQUAL(sched_next(s), w[i]);
		CU_ASSERT_TRUE(w[i]->ahead);
	}
	/* w[0] and w[2] wait behind l0, w[1] and w[3] behind l1. */
	CU_ASSERT_EQUAL(w[0]->slot, l0->slot);
	CU_ASSERT_EQUAL(w[1]->slot, l1->slot);
	/* Nothing to take back while no slot is free. */
	CU_ASSERT_PTR_NULL(sched_take_back(s));
	/* l1 ends; its slot starts w[1], then w[1] ends and w[3] starts:
	 * still none free. */
	CU_ASSERT_PTR_EQUAL(sched_complete(s, l1->slot, l1->id), l1);
	CU_ASSERT_FALSE(w[1]->ahead);
	CU_ASSERT_PTR_EQUAL(sched_complete(s, w[1]->slot, w[1]->id), w[1]);
	CU_ASSERT_PTR_EQUAL(sched_complete(s, w[3]->slot, w[3]->id), w[3]);
	/* Now slot 1 is free while w[0] and w[2] wait behind l0: one is
	 * asked for (one free slot), the oldest. */
	CU_ASSERT_PTR_EQUAL(sched_take_back(s), w[0]);
	CU_ASSERT_TRUE(w[0]->taking_back);
	CU_ASSERT_EQUAL(sched_taking_back(s), 1);
	CU_ASSERT_PTR_NULL(sched_take_back(s));
	/* A call that came meanwhile is queued behind w[0] once it is
	 * back, and the free slot runs w[0]. */
	sched_submit(s, late);
	CU_ASSERT_PTR_EQUAL(sched_next(s), late); /* slot 1 was free */
	CU_ASSERT_EQUAL(late->slot, 1 - l0->slot);
	CU_ASSERT_PTR_EQUAL(sched_complete(s, late->slot, late->id), late);
	sched_submit(s, late);
	CU_ASSERT_PTR_NULL(sched_taken_back(s, l0->slot, 77, true)); /* no such */
	CU_ASSERT_PTR_EQUAL(sched_taken_back(s, l0->slot, w[0]->id, true),
	    w[0]);
	CU_ASSERT_EQUAL(w[0]->state, JOB_QUEUED);
	CU_ASSERT_FALSE(w[0]->taking_back);
	CU_ASSERT_EQUAL(sched_taking_back(s), 0);
	CU_ASSERT_EQUAL(sched_slot_running(s, l0->slot), 2); /* l0, w[2] */
	CU_ASSERT_PTR_EQUAL(sched_next(s), w[0]); /* before late */
	CU_ASSERT_EQUAL(w[0]->slot, 1 - l0->slot);
	CU_ASSERT_FALSE(w[0]->ahead);
	/* late goes ahead behind w[0] (shorter wait than behind l0 and
	 * w[2]), and l0's slot has nothing to give now. */
	CU_ASSERT_PTR_EQUAL(sched_next(s), late);
	CU_ASSERT_EQUAL(late->slot, w[0]->slot);
	CU_ASSERT_PTR_EQUAL(sched_complete(s, w[0]->slot, w[0]->id), w[0]);
	CU_ASSERT_PTR_EQUAL(sched_complete(s, late->slot, late->id), late);

	/* Again for w[2], but it had started: l0 ended, its result came
	 * first (w[2] counts as started), then the answer. */
	CU_ASSERT_PTR_EQUAL(sched_take_back(s), w[2]);
	CU_ASSERT_PTR_EQUAL(sched_complete(s, l0->slot, l0->id), l0);
	CU_ASSERT_FALSE(w[2]->ahead);
	CU_ASSERT_PTR_NULL(sched_taken_back(s, w[2]->slot, w[2]->id, false));
	CU_ASSERT_FALSE(w[2]->taking_back);
	CU_ASSERT_EQUAL(w[2]->state, JOB_RUNNING);
	CU_ASSERT_PTR_EQUAL(sched_complete(s, w[2]->slot, w[2]->id), w[2]);
	CU_ASSERT_EQUAL(sched_running(s), 0);
	sched_fini(s);
	free(l0);
	free(l1);
	free(late);
	for (int i = 0; i < 4; i++)
		free(w[i]);
}

/* Two slots, --pipeline 8: slot 0 runs l with x and y waiting behind it;
 * then slot 1 comes up free, and x (the oldest waiting) is asked back. */
static sched *
take_back_x(job *l, job *x, job *y)
{
	sched *s;

	if (sched_init(&s, 2, 1, 100) != 0)
		return NULL;
	sched_set_pipeline(s, 8);
	sched_slot_ready(s, 0);
	sched_submit(s, l);
	sched_submit(s, x);
	sched_submit(s, y);
	CU_ASSERT_PTR_EQUAL(sched_next(s), l);
	CU_ASSERT_PTR_EQUAL(sched_next(s), x);
	CU_ASSERT_PTR_EQUAL(sched_next(s), y);
	CU_ASSERT_TRUE(x->ahead && y->ahead);
	sched_slot_ready(s, 1);
	CU_ASSERT_PTR_EQUAL(sched_take_back(s), x);
	return s;
}

/* The race the other way: the worker gave the call back, but the result
 * of the call before it came first, so the scheduler counted it as
 * started. The answer corrects that: the next waiting call is the one
 * that started. A lost slot forgets its take-backs. */
static void
test_take_back_counted_as_started(void)
{
	sched *s;
	job *l = mkplain(1), *x = mkplain(2), *y = mkplain(3), *z = mkplain(4);
	job *lost;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s = take_back_x(l, x, y));
	CU_ASSERT_PTR_EQUAL(sched_complete(s, 0, l->id), l);
	CU_ASSERT_FALSE(x->ahead); /* counted as started */
	CU_ASSERT_TRUE(y->ahead);
	CU_ASSERT_PTR_EQUAL(sched_taken_back(s, 0, x->id, true), x);
	CU_ASSERT_FALSE(y->ahead); /* the worker took y instead */
	CU_ASSERT_EQUAL(sched_slot_ahead(s, 0), 0);
	CU_ASSERT_PTR_EQUAL(sched_next(s), x);
	CU_ASSERT_EQUAL(x->slot, 1);
	/* z goes ahead behind y (a tie with x: the first slot round-robin
	 * reaches); asked back, then the slot dies before the answer. */
	sched_submit(s, z);
	CU_ASSERT_PTR_EQUAL(sched_next(s), z);
	CU_ASSERT_TRUE(z->ahead);
	CU_ASSERT_PTR_EQUAL(sched_complete(s, 1, x->id), x);
	CU_ASSERT_PTR_EQUAL(sched_take_back(s), z);
	lost = sched_slot_lost(s, z->slot);
	CU_ASSERT_EQUAL(sched_taking_back(s), 0);
	CU_ASSERT_FALSE(z->taking_back);
	for (job *q = lost; q != NULL; q = q->next)
		CU_ASSERT(q == y || q == z);
	CU_ASSERT_PTR_NULL(sched_taken_back(s, 0, z->id, true));
	sched_fini(s);
	free(l);
	free(x);
	free(y);
	free(z);
}

/* The worker dies while a take-back is unanswered, after the call was
 * counted as started. The worker writes its answer before any thread takes
 * the next call (worker/inbox.c), so with no answer read the call behind
 * it never started: only the one asked back counts as started, and a kill
 * loses one call per thread at most. */
static void
test_take_back_then_lost(void)
{
	sched *s;
	job *l = mkplain(1), *x = mkplain(2), *y = mkplain(3), *lost;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s = take_back_x(l, x, y));
	CU_ASSERT_PTR_EQUAL(sched_complete(s, 0, l->id), l);
	CU_ASSERT_FALSE(x->ahead);
	CU_ASSERT_TRUE(y->ahead);
	lost = sched_slot_lost(s, 0);
	CU_ASSERT_PTR_EQUAL(lost, x);
	CU_ASSERT_PTR_EQUAL(x->next, y);
	CU_ASSERT_FALSE(x->ahead);
	CU_ASSERT_TRUE(y->ahead);
	CU_ASSERT_EQUAL(sched_taking_back(s), 0);
	CU_ASSERT_EQUAL(sched_ahead(s), 0);
	sched_fini(s);
	free(l);
	free(x);
	free(y);
}

/* ---- work conservation, simulated ----------------------------------------
 * A discrete-event simulation of the front end and its workers over
 * sched.c's API, with the service-time estimates (svctime.c) fed by the
 * simulated workers' stamps: no processes, no clocks, time in ticks of 10
 * µs. The front end does what server.c's pump does after every event:
 * place what sched_next gives, then send the take-backs sched_take_back
 * asks for. A worker has T threads taking calls from one inbox, oldest
 * first; a thread writes a call's result before it takes the next call
 * (another event: a TakeBack may come in between); a TakeBack finds its
 * call in the inbox (answer: returned) or not (answer: started). Each
 * direction of each worker's socket delivers in order after a random
 * latency, so take-backs race with calls starting. */

#define SIM_TICK_US 10
#define SIM_MAX_WORKERS 4
#define SIM_MAX_THREADS 2
#define SIM_MAX_CALLS 320
#define SIM_MAX_EVENTS 4096
#define SIM_STEP_LIMIT 400000

enum sim_fn { FN_SHORT, FN_LONG, FN_LIAR, FN_STREAM, FN_COUNT };
static const char *const sim_fn_name[FN_COUNT] = {"short", "long", "liar",
    "stream"};

typedef struct simcall {
	job j; /* first: the scheduler hands back job pointers */
	enum sim_fn fn;
	uint32_t run;  /* its true service time, ticks */
	int runs;      /* how many times a worker started it */
	int ran_on;    /* that worker, -1 */
	bool done;     /* its result reached the front end */
	bool returned; /* given back once at least */
} simcall;

enum sim_ev {
	EV_ARRIVE,   /* a client's call reaches the front end */
	EV_CALL,     /* a call reaches worker w */
	EV_TAKEBACK, /* a TakeBack reaches worker w */
	EV_FINISH,   /* worker w's thread finishes its call */
	EV_NEXT,     /* worker w's idle threads take calls from its inbox */
	EV_RESULT,   /* a result reaches the front end from worker w */
	EV_ANSWER,   /* a take-back's answer reaches the front end */
};

typedef struct simev {
	long t;
	uint64_t order; /* ties: in the order they were made */
	enum sim_ev kind;
	int w, thread;
	bool returned;
	simcall *c;
} simev;

typedef struct simworker {
	simcall *inbox[SIM_MAX_CALLS]; /* FIFO, oldest first */
	int ninbox;
	simcall *running[SIM_MAX_THREADS];
	long to_w_at, to_fe_at; /* each direction delivers in order */
	int to_w, to_fe;        /* messages on their way each way */
	int waking;             /* EV_NEXT events to come */
} simworker;

typedef struct sim {
	uint64_t rng;
	sched *s;
	svctime *est;
	int workers, threads, pipeline, latency;
	simworker w[SIM_MAX_WORKERS];
	simev ev[SIM_MAX_EVENTS]; /* a binary heap on (t, order) */
	int nev;
	uint64_t order;
	long now;
	simcall calls[SIM_MAX_CALLS];
	int ncalls;
	/* What happened. */
	long sent_ahead, take_backs, returned, started;
	char violation[512]; /* the first broken rule, "" if none */
} sim;

static uint64_t
sim_rand(sim *m)
{
	m->rng ^= m->rng >> 12;
	m->rng ^= m->rng << 25;
	m->rng ^= m->rng >> 27;
	return m->rng * 2685821657736338717ull;
}

/* Uniform in [lo, hi]. */
static long
sim_between(sim *m, long lo, long hi)
{
	return lo + (long) (sim_rand(m) % (uint64_t) (hi - lo + 1));
}

static bool
ev_before(const simev *a, const simev *b)
{
	return a->t < b->t || (a->t == b->t && a->order < b->order);
}

static void sim_fail(sim *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sim_push(sim *m, simev e)
{
	int i = m->nev;

	if (i == SIM_MAX_EVENTS) {
		sim_fail(m, "more than %d events at once", SIM_MAX_EVENTS);
		return;
	}
	m->nev++;
	e.order = m->order++;
	m->ev[i] = e;
	while (i > 0 && ev_before(&m->ev[i], &m->ev[(i - 1) / 2])) {
		simev t = m->ev[i];
		m->ev[i] = m->ev[(i - 1) / 2];
		m->ev[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static simev
sim_pop(sim *m)
{
	simev top = m->ev[0];
	int i = 0;

	m->ev[0] = m->ev[--m->nev];
	for (;;) {
		int l = 2 * i + 1, r = l + 1, min = i;
		if (l < m->nev && ev_before(&m->ev[l], &m->ev[min]))
			min = l;
		if (r < m->nev && ev_before(&m->ev[r], &m->ev[min]))
			min = r;
		if (min == i)
			break;
		simev t = m->ev[i];
		m->ev[i] = m->ev[min];
		m->ev[min] = t;
		i = min;
	}
	return top;
}

static void
sim_fail(sim *m, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (m->violation[0] != '\0')
		return;
	n = snprintf(m->violation, sizeof(m->violation), "at tick %ld: ",
	    m->now);
	va_start(ap, fmt);
	vsnprintf(m->violation + n, sizeof(m->violation) - (size_t) n, fmt,
	    ap);
	va_end(ap);
}

/* A message from the front end to worker w (kind EV_CALL or EV_TAKEBACK),
 * or from w to the front end (EV_RESULT, EV_ANSWER), after a latency, in
 * order on its way. */
static void
sim_send(sim *m, enum sim_ev kind, int w, simcall *c, bool returned)
{
	simworker *sw = &m->w[w];
	bool to_w = kind == EV_CALL || kind == EV_TAKEBACK;
	long *at = to_w ? &sw->to_w_at : &sw->to_fe_at;
	long t = m->now + sim_between(m, 1, m->latency);

	if (t < *at)
		t = *at;
	*at = t;
	if (to_w)
		sw->to_w++;
	else
		sw->to_fe++;
	sim_push(m, (simev){.t = t, .kind = kind, .w = w, .c = c,
			.returned = returned});
}

/* What a slot holds, as the rules for sending ahead see it. */
static void
sim_check_ahead(sim *m, const job *j)
{
	uint64_t sum = 0;

	if (!j->ahead)
		return;
	m->sent_ahead++;
	if (m->pipeline == 0 || !j->pipelinable || j->est_us == 0 ||
	    j->est_us > SCHED_SHORT_US)
		sim_fail(m, "call %" PRIu64 " (%s, estimate %" PRIu32 " us) "
			    "was sent ahead",
		    j->id, sim_fn_name[((const simcall *) j)->fn], j->est_us);
	for (const job *q = sched_slot_jobs(m->s, j->slot); q; q = q->next) {
		if (q == j)
			continue;
		if (!q->pipelinable || q->est_us == 0)
			sim_fail(m, "call %" PRIu64 " was sent ahead behind "
				    "call %" PRIu64 ", which may be long",
			    j->id, q->id);
		sum += q->est_us;
	}
	if (sum / (uint64_t) m->threads > SCHED_AHEAD_WAIT_US)
		sim_fail(m, "call %" PRIu64 " was sent ahead to wait %" PRIu64
			    " us",
		    j->id, sum / (uint64_t) m->threads);
}

/* The front end after every event: what server.c's pump does. */
static void
sim_pump(sim *m)
{
	job *j;

	while ((j = sched_next(m->s)) != NULL) {
		sim_check_ahead(m, j);
		sim_send(m, EV_CALL, j->slot, (simcall *) j, false);
	}
	while ((j = sched_take_back(m->s)) != NULL) {
		m->take_backs++;
		sim_send(m, EV_TAKEBACK, j->slot, (simcall *) j, false);
	}
}

/* Worker w's idle threads take calls from its inbox, oldest first. */
static void
sim_worker_take(sim *m, int w)
{
	simworker *sw = &m->w[w];

	for (int k = 0; k < m->threads && sw->ninbox > 0; k++) {
		simcall *c;
		if (sw->running[k] != NULL)
			continue;
		c = sw->inbox[0];
		memmove(sw->inbox, sw->inbox + 1,
		    (size_t) --sw->ninbox * sizeof(sw->inbox[0]));
		if (c->runs++ > 0)
			sim_fail(m, "call %" PRIu64 " started twice", c->j.id);
		c->ran_on = w;
		sw->running[k] = c;
		sim_push(m, (simev){.t = m->now + c->run, .kind = EV_FINISH,
				.w = w, .thread = k, .c = c});
	}
}

/* Whether call c is running on one of worker w's threads. */
static bool
sim_running_on(const sim *m, int w, const simcall *c)
{
	for (int k = 0; k < m->threads; k++)
		if (m->w[w].running[k] == c)
			return true;
	return false;
}

/* The rules, after every event:
 * - the front end knows which calls started: on a slot whose worker has
 *   nothing on its way either way, the jobs it counts as started are
 *   those the worker's threads run, and those it counts as waiting are
 *   those in the worker's inbox;
 * - nothing in the front end's queue could start now (sched_peek);
 * - as the scheduler sees it: while a ready slot has a free thread, no
 *   call waits in a worker unless as many are being taken back as there
 *   are free threads;
 * - as the workers are: a worker whose threads are not all busy, with
 *   nothing on its way to or from it (the front end knows it is idle),
 *   never coexists with a call waiting in a worker's inbox (behind busy
 *   threads) that is not being taken back, unless take-backs for at least
 *   as many calls as idle threads are under way. */
static void
sim_check(sim *m)
{
	size_t free_threads = 0, waiting = 0, idle = 0, in_inbox = 0;

	if (sched_peek(m->s) != NULL)
		sim_fail(m, "call %" PRIu64 " is queued while it could start",
		    sched_peek(m->s)->id);
	for (int i = 0; i < m->workers; i++) {
		int started = sched_slot_running(m->s, i) -
			      sched_slot_ahead(m->s, i);
		const simworker *sw = &m->w[i];
		if (started < m->threads)
			free_threads += (size_t) (m->threads - started);
		for (const job *q = sched_slot_jobs(m->s, i); q; q = q->next)
			waiting += q->ahead && !q->taking_back;
		int own_idle = 0, behind = 0;
		for (int k = 0; k < m->threads; k++)
			own_idle += sw->running[k] == NULL;
		/* Those its own idle threads are about to take do not wait. */
		for (int k = own_idle; k < sw->ninbox; k++)
			behind += !sw->inbox[k]->j.taking_back;
		in_inbox += (size_t) behind;
		if (sw->to_w != 0 || sw->to_fe != 0 || sw->waking != 0)
			continue;
		idle += (size_t) own_idle;
		int jobs = 0;
		for (const job *q = sched_slot_jobs(m->s, i); q; q = q->next) {
			jobs++;
			const simcall *c = (const simcall *) q;
			if (q->ahead == sim_running_on(m, i, c))
				sim_fail(m, "worker %d %s call %" PRIu64
					    ", the front end counts it as %s",
				    i, q->ahead ? "runs" : "has not started",
				    q->id, q->ahead ? "waiting" : "started");
		}
		if (jobs != sw->ninbox + m->threads - own_idle)
			sim_fail(m, "worker %d holds %d calls, the front end "
				    "counts %d",
			    i, sw->ninbox + m->threads - own_idle, jobs);
	}
	if (free_threads > sched_taking_back(m->s) && waiting > 0)
		sim_fail(m, "%zu threads are free while %zu calls wait in "
			    "workers and %zu are being taken back",
		    free_threads, waiting, sched_taking_back(m->s));
	if (idle > sched_taking_back(m->s) && in_inbox > 0)
		sim_fail(m, "%zu worker threads are idle while %zu calls wait "
			    "in inboxes and %zu are being taken back",
		    idle, in_inbox, sched_taking_back(m->s));
}

static void
sim_event(sim *m, const simev *e)
{
	simworker *sw = &m->w[e->w];
	simcall *c = e->c;
	job *j;

	switch (e->kind) {
	case EV_ARRIVE:
		if (c->j.pipelinable)
			c->j.est_us = svctime_get(m->est, sim_fn_name[c->fn],
			    strlen(sim_fn_name[c->fn]));
		CU_ASSERT_EQUAL(sched_submit(m->s, &c->j), 0);
		break;
	case EV_CALL:
		sw->to_w--;
		sw->inbox[sw->ninbox++] = c;
		sw->waking++;
		sim_push(m, (simev){.t = m->now, .kind = EV_NEXT, .w = e->w});
		break;
	case EV_TAKEBACK: {
		int k = 0;
		bool found;
		sw->to_w--;
		while (k < sw->ninbox && sw->inbox[k] != c)
			k++;
		if ((found = k < sw->ninbox)) {
			memmove(sw->inbox + k, sw->inbox + k + 1,
			    (size_t) (--sw->ninbox - k) * sizeof(sw->inbox[0]));
			c->returned = true;
		}
		sim_send(m, EV_ANSWER, e->w, c, found);
		break;
	}
	case EV_FINISH:
		sw->running[e->thread] = NULL;
		sim_send(m, EV_RESULT, e->w, c, false);
		sw->waking++;
		sim_push(m, (simev){.t = m->now, .kind = EV_NEXT, .w = e->w});
		break;
	case EV_NEXT:
		sw->waking--;
		sim_worker_take(m, e->w);
		break;
	case EV_RESULT:
		sw->to_fe--;
		if (c->j.pipelinable)
			svctime_note(m->est, sim_fn_name[c->fn],
			    strlen(sim_fn_name[c->fn]), c->run * SIM_TICK_US);
		if (sched_complete(m->s, e->w, c->j.id) != &c->j)
			sim_fail(m, "the result of call %" PRIu64 " from "
				    "worker %d matches no call there",
			    c->j.id, e->w);
		c->done = true;
		break;
	case EV_ANSWER:
		sw->to_fe--;
		j = sched_taken_back(m->s, e->w, c->j.id, e->returned);
		if (e->returned) {
			m->returned++;
			if (j != &c->j || c->j.state != JOB_QUEUED)
				sim_fail(m, "call %" PRIu64 " given back by "
					    "worker %d is not queued again",
				    c->j.id, e->w);
		} else {
			m->started++;
			if (j != NULL)
				sim_fail(m, "call %" PRIu64 " had started, yet "
					    "it came back",
				    c->j.id);
		}
		break;
	}
}

/* The kinds of call: short ones (10-30 us), long ones (1.5-6 ms), liars
 * (usually short, now and then long: the estimate lets them go ahead, the
 * take-back has to fix it), and streams (short, never sent ahead). */
static void
sim_make_call(sim *m, simcall *c, uint64_t id)
{
	long r = sim_between(m, 0, 99);

	memset(c, 0, sizeof(*c));
	c->j.id = id;
	c->j.pipe = 1;
	c->j.request_id = id;
	c->ran_on = -1;
	c->fn = r < 55 ? FN_SHORT : r < 70 ? FN_LONG : r < 92 ? FN_LIAR
							      : FN_STREAM;
	c->j.function = sim_fn_name[c->fn];
	c->j.function_len = strlen(c->j.function);
	c->j.pipelinable = c->fn != FN_STREAM;
	if (c->fn == FN_LONG ||
	    (c->fn == FN_LIAR && sim_between(m, 0, 9) == 0))
		c->run = (uint32_t) sim_between(m, 150, 600);
	else
		c->run = (uint32_t) sim_between(m, 1, 3);
}

/* One mix, from seed: its shape (workers, threads, pipeline depth,
 * latency) and its calls, in bursts at random times. Returns false when a
 * rule broke (m->violation says which). */
static bool
sim_run(sim *m, uint64_t seed, int pipeline)
{
	long t = 0;
	long steps = 0;

	memset(m, 0, sizeof(*m));
	m->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	m->workers = (int) sim_between(m, 2, SIM_MAX_WORKERS);
	m->threads = (int) sim_between(m, 1, SIM_MAX_THREADS);
	m->pipeline = pipeline;
	m->latency = (int) sim_between(m, 1, 6);
	m->ncalls = (int) sim_between(m, 60, SIM_MAX_CALLS);
	CU_ASSERT_FATAL(sched_init(&m->s, m->workers, m->threads, 100000) == 0);
	CU_ASSERT_FATAL(svctime_init(&m->est) == 0);
	sched_set_pipeline(m->s, pipeline);
	for (int i = 0; i < m->workers; i++)
		sched_slot_ready(m->s, i);
	for (int i = 0; i < m->ncalls; i++) {
		/* Bursts: most calls come with the one before. */
		if (sim_between(m, 0, 3) == 0)
			t += sim_between(m, 1, 400);
		sim_make_call(m, &m->calls[i], (uint64_t) i + 1);
		sim_push(m, (simev){.t = t, .kind = EV_ARRIVE,
				.c = &m->calls[i]});
	}
	while (m->nev > 0 && steps++ < SIM_STEP_LIMIT &&
	       m->violation[0] == '\0') {
		simev e = sim_pop(m);
		m->now = e.t;
		sim_event(m, &e);
		sim_pump(m);
		sim_check(m);
	}
	if (m->violation[0] == '\0' && m->nev > 0)
		sim_fail(m, "still running after %d steps", SIM_STEP_LIMIT);
	for (int i = 0; i < m->ncalls && m->violation[0] == '\0'; i++)
		if (!m->calls[i].done || m->calls[i].runs != 1)
			sim_fail(m, "call %d ended %s after %d runs", i + 1,
			    m->calls[i].done ? "done" : "not done",
			    m->calls[i].runs);
	if (m->violation[0] == '\0' &&
	    (sched_queued(m->s) != 0 || sched_running(m->s) != 0 ||
		sched_taking_back(m->s) != 0))
		sim_fail(m, "the scheduler still holds calls");
	sched_fini(m->s); /* the calls are m's own */
	svctime_fini(m->est);
	return m->violation[0] == '\0';
}

/* Across random mixes of short and long calls, with and without
 * pipelining: no thread is ever free while a call waits in a worker (the
 * scheduler's view and the workers' own), and a call goes ahead only when
 * it is short and behind calls known to be short. */
static void
test_work_conserving_simulated(void)
{
	static const int depths[] = {0, 1, 2, 8};
	const size_t ndepths = sizeof(depths) / sizeof(depths[0]);
	static sim m;
	long mixes = 0, broken = 0, ahead = 0, asked = 0, given = 0, had = 0;

	for (uint64_t seed = 1; seed <= 250; seed++) {
		for (size_t d = 0; d < ndepths; d++) {
			mixes++;
			if (!sim_run(&m, seed, depths[d])) {
				if (broken++ < 5)
					printf("\n    seed %" PRIu64 ", %d "
					       "workers x %d threads, "
					       "--pipeline %d, latency <= %d: "
					       "%s",
					    seed, m.workers, m.threads,
					    depths[d], m.latency, m.violation);
			}
			ahead += m.sent_ahead;
			asked += m.take_backs;
			given += m.returned;
			had += m.started;
			if (depths[d] == 0)
				CU_ASSERT_EQUAL(m.sent_ahead + m.take_backs, 0);
		}
	}
	printf("\n    %ld mixes, %ld broke a rule; %ld calls sent ahead, "
	       "%ld take-backs: %ld returned, %ld already started ",
	    mixes, broken, ahead, asked, given, had);
	CU_ASSERT_EQUAL(broken, 0);
	/* The mixes do exercise both answers. */
	CU_ASSERT(given > 0);
	CU_ASSERT(had > 0);
}

static void
test_bad_init(void)
{
	sched *s;

	CU_ASSERT_EQUAL(sched_init(&s, 0, 1, 10), -EINVAL);
	CU_ASSERT_EQUAL(sched_init(&s, 1, 0, 10), -EINVAL);
	sched_fini(NULL);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("sched", NULL, NULL);
	CU_add_test(s, "FIFO, waits for ready workers", test_fifo_and_no_ready_worker);
	CU_add_test(s, "queue limit", test_queue_limit);
	CU_add_test(s, "lost slot returns its jobs", test_slot_lost_returns_running_jobs);
	CU_add_test(s, "least-loaded slot", test_least_loaded_slot);
	CU_add_test(s, "find and remove a job", test_find_and_remove);
	CU_add_test(s, "take a pipe's queued jobs", test_take_pipe);
	CU_add_test(s, "a requeued job runs next", test_requeue_runs_next_past_limit);
	CU_add_test(s, "pause lets running jobs finish", test_pause_lets_running_finish);
	CU_add_test(s, "batches take queued calls of one function", test_batch_same_function);
	CU_add_test(s, "batches take only plain calls, not actors or streams",
	    test_batch_only_plain_calls);
	CU_add_test(s, "an actor's batch takes its own group only",
	    test_batch_groups);
	CU_add_test(s, "pinned jobs wait for their slot only", test_pinned_jobs);
	CU_add_test(s, "pipelining plain calls to busy slots", test_pipeline);
	CU_add_test(s, "only short calls go ahead, never behind long ones",
	    test_send_ahead_policy);
	CU_add_test(s, "a free slot takes back a waiting call",
	    test_take_back);
	CU_add_test(s, "a call given back after it was counted as started",
	    test_take_back_counted_as_started);
	CU_add_test(s, "a worker lost while a take-back is unanswered",
	    test_take_back_then_lost);
	CU_add_test(s, "no thread idle while a call waits in a worker "
		       "(simulated)",
	    test_work_conserving_simulated);
	CU_add_test(s, "bad arguments", test_bad_init);
	return test_run_all();
}
