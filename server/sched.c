/* The scheduler: the queue of accepted calls and which worker runs which. */
#include "sched.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
	bool ready;
	int running;
	int ahead; /* of them, sent ahead: waiting in the worker */
	job *jobs; /* running here, doubly linked, unordered */
} slot;

struct sched {
	int nslots;
	int per_slot;
	int pipeline; /* jobs a slot may hold ahead, past per_slot */
	uint64_t seq; /* jobs sent to slots so far */
	size_t max_queue;
	size_t queued;
	size_t running;
	size_t ahead;
	size_t taking_back;
	int rr; /* where the next search for a slot starts */
	job *head, *tail; /* the FIFO queue */
	slot *slots;
};

int
sched_init(sched **out, int slots, int per_slot, size_t max_queue)
{
	sched *s;

	if (slots <= 0 || per_slot <= 0)
		return -EINVAL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	if ((s->slots = calloc((size_t) slots, sizeof(slot))) == NULL) {
		free(s);
		return -ENOMEM;
	}
	s->nslots = slots;
	s->per_slot = per_slot;
	s->max_queue = max_queue;
	*out = s;
	return 0;
}

void
sched_fini(sched *s)
{
	if (s == NULL)
		return;
	free(s->slots);
	free(s);
}

static void
queue_unlink(sched *s, job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		s->head = j->next;
	if (j->next)
		j->next->prev = j->prev;
	else
		s->tail = j->prev;
	j->next = j->prev = NULL;
	s->queued--;
}

void
sched_set_pipeline(sched *s, int depth)
{
	s->pipeline = depth < 0		     ? 0
		      : depth > SCHED_PIPELINE_MAX ? SCHED_PIPELINE_MAX
						   : depth;
}

/* Links j to sl as the newest job sent there: ahead when the slot already
 * runs all it can at once. */
static void
slot_link(sched *s, slot *sl, job *j)
{
	int started = 0;

	for (const job *q = sl->jobs; q != NULL; q = q->next)
		started += !q->ahead;
	j->ahead = j->pipelinable && started >= s->per_slot;
	sl->ahead += j->ahead;
	s->ahead += j->ahead;
	j->seq = ++s->seq;
	j->prev = NULL;
	j->next = sl->jobs;
	if (sl->jobs)
		sl->jobs->prev = j;
	sl->jobs = j;
	sl->running++;
}

static void
slot_unlink(sched *s, slot *sl, job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		sl->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->next = j->prev = NULL;
	sl->running--;
	s->running--;
	sl->ahead -= j->ahead;
	s->ahead -= j->ahead;
	s->taking_back -= j->taking_back;
	j->taking_back = false; /* an answer that comes now finds nothing */
}

/* Counts the oldest call waiting on sl as started: the worker takes its
 * calls in the order they were sent. */
static void
start_next(sched *s, slot *sl)
{
	job *next = NULL;

	for (job *q = sl->jobs; q != NULL; q = q->next)
		if (q->ahead && (next == NULL || q->seq < next->seq))
			next = q;
	if (next != NULL) {
		next->ahead = false;
		sl->ahead--;
		s->ahead--;
	}
}

/* Unlinks j, which its worker finished: the oldest call waiting there
 * starts in the room j leaves. */
static void
slot_finish(sched *s, slot *sl, job *j)
{
	slot_unlink(s, sl, j);
	if (!j->ahead)
		start_next(s, sl);
}

int
sched_submit(sched *s, job *j)
{
	if (s->queued >= s->max_queue)
		return -EAGAIN;
	j->state = JOB_QUEUED;
	j->slot = -1;
	j->next = NULL;
	j->prev = s->tail;
	if (s->tail)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	s->queued++;
	return 0;
}

/* Whether slot sl can start job j (NULL: a job that runs alone) now: it is
 * ready, and under per_slot, or j and every job running there allow more
 * (async functions with a concurrency). */
static bool
room(const sched *s, const slot *sl, const job *j)
{
	uint32_t running = (uint32_t) sl->running;

	if (!sl->ready)
		return false;
	if (sl->running < s->per_slot)
		return true;
	if (j == NULL || j->concurrency <= running)
		return false;
	for (const job *q = sl->jobs; q != NULL; q = q->next)
		if (q->concurrency <= running)
			return false;
	return true;
}

/* How long job j would wait, in microseconds, if sent ahead to busy slot
 * sl: the expected run time of the jobs there, shared by its threads.
 * UINT64_MAX when it may not go there (sched_set_pipeline says when). */
static uint64_t
ahead_wait(const sched *s, const slot *sl, const job *j)
{
	uint64_t sum = 0;

	if (!sl->ready || !j->pipelinable || j->est_us == 0 ||
	    j->est_us > SCHED_SHORT_US ||
	    sl->running >= s->per_slot + s->pipeline)
		return UINT64_MAX;
	for (const job *q = sl->jobs; q != NULL; q = q->next) {
		if (!q->pipelinable || q->est_us == 0)
			return UINT64_MAX; /* it may hold the worker long */
		sum += q->est_us;
	}
	sum /= (uint64_t) s->per_slot;
	return sum <= SCHED_AHEAD_WAIT_US ? sum : UINT64_MAX;
}

/* Whether j may run on slot i (an actor's job only on its own). */
static bool
allowed(const job *j, int i)
{
	return j == NULL || j->pinned == 0 || j->pinned == i + 1;
}

/* The slot that can start j now with the fewest running jobs (ties:
 * round-robin); failing that, the busy slot j may be sent ahead to where
 * it is expected to start soonest; or -1. */
static int
best_slot(const sched *s, const job *j)
{
	uint64_t wait, best_wait = UINT64_MAX;
	int best = -1;

	for (int k = 0; k < s->nslots; k++) {
		int i = (s->rr + k) % s->nslots;
		const slot *sl = &s->slots[i];
		if (!allowed(j, i) || !room(s, sl, j))
			continue;
		if (best < 0 || sl->running < s->slots[best].running)
			best = i;
	}
	if (best >= 0 || j == NULL || s->pipeline == 0)
		return best;
	for (int k = 0; k < s->nslots; k++) {
		int i = (s->rr + k) % s->nslots;
		if (allowed(j, i) &&
		    (wait = ahead_wait(s, &s->slots[i], j)) < best_wait) {
			best = i;
			best_wait = wait;
		}
	}
	return best;
}

bool
sched_has_room(const sched *s)
{
	return best_slot(s, NULL) >= 0;
}

/* The oldest queued job that can run now. Past the head only when some
 * slot is free: a job pinned to a busy slot must not hold up the others,
 * and when every slot is busy nothing behind the head could run either
 * (bar async calls, which wait their turn). */
static job *
runnable(const sched *s)
{
	if (s->head == NULL)
		return NULL;
	if (best_slot(s, s->head) >= 0)
		return s->head;
	if (!sched_has_room(s))
		return NULL;
	for (job *j = s->head->next; j != NULL; j = j->next)
		if (best_slot(s, j) >= 0)
			return j;
	return NULL;
}

job *
sched_peek(const sched *s)
{
	return runnable(s);
}

/* Whether queued job q would join j's batch: both are plain calls of a
 * batched function, the same one, or calls of one actor's batched method
 * that it submitted as one group. An actor's method or a stream call may
 * bear a batched function's name too, but runs its own code. */
static bool
joins_batch(const job *q, const job *j)
{
	return q != j && q->batch > 0 && j->batch > 0 && q->group == j->group &&
	       q->function_len == j->function_len &&
	       memcmp(q->function, j->function, q->function_len) == 0;
}

size_t
sched_count_same(const sched *s, const job *j)
{
	size_t n = 0;

	for (const job *q = s->head; q != NULL; q = q->next)
		n += joins_batch(q, j);
	return n;
}

size_t
sched_take_same(sched *s, const job *j, job **out, size_t max)
{
	size_t n = 0;
	job *q, *next;

	if (j->slot < 0)
		return 0;
	for (q = s->head; q != NULL && n < max; q = next) {
		next = q->next;
		if (!joins_batch(q, j))
			continue;
		queue_unlink(s, q);
		q->state = JOB_RUNNING;
		q->slot = j->slot;
		slot_link(s, &s->slots[j->slot], q);
		s->running++;
		out[n++] = q;
	}
	return n;
}

job *
sched_next(sched *s)
{
	job *j = runnable(s);
	int best = j != NULL ? best_slot(s, j) : -1;

	if (best < 0)
		return NULL;
	s->rr = (best + 1) % s->nslots;
	queue_unlink(s, j);
	j->state = JOB_RUNNING;
	j->slot = best;
	slot_link(s, &s->slots[best], j);
	s->running++;
	return j;
}

void
sched_slot_ready(sched *s, int slot)
{
	if (slot >= 0 && slot < s->nslots)
		s->slots[slot].ready = true;
}

void
sched_slot_pause(sched *s, int slot)
{
	if (slot >= 0 && slot < s->nslots)
		s->slots[slot].ready = false;
}

/* Puts j, back from a slot, into the queue before the first job that came
 * after it (ids grow in arrival order), whatever --max-queue says: it was
 * accepted already. */
static void
queue_insert_in_order(sched *s, job *j)
{
	job *after = s->head;

	while (after != NULL && after->id < j->id)
		after = after->next;
	j->state = JOB_QUEUED;
	j->slot = -1;
	j->ahead = false;
	j->next = after;
	j->prev = after != NULL ? after->prev : s->tail;
	if (j->prev != NULL)
		j->prev->next = j;
	else
		s->head = j;
	if (after != NULL)
		after->prev = j;
	else
		s->tail = j;
	s->queued++;
}

job *
sched_take_back(sched *s)
{
	size_t free_threads = 0;
	job *oldest = NULL;

	if (s->ahead == 0)
		return NULL;
	for (int i = 0; i < s->nslots; i++) {
		const slot *sl = &s->slots[i];
		int started = sl->running - sl->ahead;
		if (sl->ready && started < s->per_slot)
			free_threads += (size_t) (s->per_slot - started);
	}
	if (free_threads <= s->taking_back)
		return NULL;
	for (int i = 0; i < s->nslots; i++)
		for (job *q = s->slots[i].jobs; q != NULL; q = q->next)
			if (q->ahead && !q->taking_back &&
			    (oldest == NULL || q->id < oldest->id))
				oldest = q;
	if (oldest != NULL) {
		oldest->taking_back = true;
		s->taking_back++;
	}
	return oldest;
}

job *
sched_taken_back(sched *s, int slot, uint64_t id, bool returned)
{
	job *j;

	if (slot < 0 || slot >= s->nslots)
		return NULL;
	for (j = s->slots[slot].jobs; j != NULL && j->id != id; j = j->next)
		;
	if (j == NULL || !j->taking_back)
		return NULL;
	if (!returned) {
		j->taking_back = false;
		s->taking_back--;
		return NULL;
	}
	/* If it was counted as started, the next waiting one takes its
	 * place: slot_finish does just that for a job that ended. */
	slot_finish(s, &s->slots[slot], j);
	queue_insert_in_order(s, j);
	return j;
}

job *
sched_slot_lost(sched *s, int slot)
{
	job *list = NULL, *j;
	struct slot *sl;

	if (slot < 0 || slot >= s->nslots)
		return NULL;
	sl = &s->slots[slot];
	sl->ready = false;
	/* A call asked back and counted as started, whose answer never came,
	 * was not given back, or was with no call started in its place: the
	 * worker writes its answer before it lets a thread take the next
	 * (worker/inbox.c, take_back). So no other call counts as started. */
	/* Newest first off the slot, so oldest first in the list; each keeps
	 * its ahead flag (whether it may have started) for the caller. */
	while ((j = sl->jobs) != NULL) {
		slot_unlink(s, sl, j);
		j->state = JOB_DONE;
		j->next = list;
		list = j;
	}
	return list;
}

job *
sched_complete(sched *s, int slot, uint64_t id)
{
	if (slot < 0 || slot >= s->nslots)
		return NULL;
	for (job *j = s->slots[slot].jobs; j != NULL; j = j->next) {
		if (j->id == id) {
			slot_finish(s, &s->slots[slot], j);
			j->ahead = false;
			j->state = JOB_DONE;
			j->slot = -1;
			return j;
		}
	}
	return NULL;
}

job *
sched_find(const sched *s, uint32_t pipe, uint64_t request_id)
{
	for (job *j = s->head; j != NULL; j = j->next)
		if (j->pipe == pipe && j->request_id == request_id)
			return j;
	for (int i = 0; i < s->nslots; i++)
		for (job *j = s->slots[i].jobs; j != NULL; j = j->next)
			if (j->pipe == pipe && j->request_id == request_id)
				return j;
	return NULL;
}

void
sched_remove_queued(sched *s, job *j)
{
	queue_unlink(s, j);
	j->state = JOB_DONE;
}

void
sched_requeue(sched *s, job *j)
{
	j->state = JOB_QUEUED;
	j->slot = -1;
	j->ahead = false;
	j->prev = NULL;
	j->next = s->head;
	if (s->head)
		s->head->prev = j;
	else
		s->tail = j;
	s->head = j;
	s->queued++;
}

job *
sched_slot_jobs(const sched *s, int slot)
{
	return slot >= 0 && slot < s->nslots ? s->slots[slot].jobs : NULL;
}

job *
sched_take_pipe(sched *s, uint32_t pipe)
{
	job *list = NULL, *j, *next;

	for (j = s->head; j != NULL; j = next) {
		next = j->next;
		if (j->pipe != pipe)
			continue;
		sched_remove_queued(s, j);
		j->next = list;
		list = j;
	}
	return list;
}

job *
sched_take_all(sched *s)
{
	job *list = s->head, *j;

	for (j = list; j != NULL; j = j->next)
		j->state = JOB_DONE;
	s->head = s->tail = NULL;
	s->queued = 0;
	for (int i = 0; i < s->nslots; i++) {
		job *lost = sched_slot_lost(s, i);
		while ((j = lost) != NULL) {
			lost = j->next;
			j->next = list;
			list = j;
		}
	}
	for (j = list; j != NULL; j = j->next)
		j->prev = NULL;
	return list;
}

size_t
sched_queued(const sched *s)
{
	return s->queued;
}

size_t
sched_running(const sched *s)
{
	return s->running;
}

size_t
sched_ahead(const sched *s)
{
	return s->ahead;
}

size_t
sched_taking_back(const sched *s)
{
	return s->taking_back;
}

int
sched_slot_ahead(const sched *s, int slot)
{
	return slot >= 0 && slot < s->nslots ? s->slots[slot].ahead : 0;
}

int
sched_ready_slots(const sched *s)
{
	int n = 0;

	for (int i = 0; i < s->nslots; i++)
		n += s->slots[i].ready;
	return n;
}

int
sched_slot_running(const sched *s, int slot)
{
	return slot >= 0 && slot < s->nslots ? s->slots[slot].running : 0;
}
