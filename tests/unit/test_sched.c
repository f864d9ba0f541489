/* Tests of server/sched.c: the queue and worker-slot bookkeeping. */
#include "server/sched.h"

#include <CUnit/Basic.h>
#include <errno.h>
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

static job *
mkplain(uint64_t id)
{
	job *j = mkjob(id, 1, id);
	j->pipelinable = true;
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
	CU_add_test(s, "pinned jobs wait for their slot only", test_pinned_jobs);
	CU_add_test(s, "pipelining plain calls to busy slots", test_pipeline);
	CU_add_test(s, "bad arguments", test_bad_init);
	return test_run_all();
}
