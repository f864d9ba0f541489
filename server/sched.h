/* The scheduler: the queue of accepted calls and which worker runs which.
 * Pure bookkeeping (no I/O, no libevent, no nng), so its logic is tested on
 * its own; the server acts on what it returns. */
#ifndef GILD_SCHED_H
#define GILD_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A call's life: QUEUED -> RUNNING -> (result sent) and freed by the server;
 * QUEUED -> cancelled or failed without running. */
typedef enum job_state {
	JOB_NEW,     /* created, not yet submitted */
	JOB_QUEUED,  /* waiting for a worker */
	JOB_RUNNING, /* sent to worker `slot` */
	JOB_DONE,    /* out of the scheduler: ended, about to be freed */
} job_state;

typedef struct job {
	uint64_t id;         /* the front end's id, unique while gild runs */
	uint64_t request_id; /* the client's Request.id */
	uint32_t pipe;       /* nng pipe the request came in on */
	job_state state;
	int slot;            /* worker slot while RUNNING, else -1 */
	void *req;           /* server-owned request data (the nng_msg) */
	void *reply_to;      /* server-owned: where its one reply goes */
	const uint8_t *call; /* the encoded gild.v1.Call inside req */
	size_t call_len;
	const char *function; /* its name inside call, not NUL-terminated */
	size_t function_len;
	uint32_t concurrency; /* how many such jobs one slot may run at once
				 (async functions); 0 or 1: alone */
	int pinned;           /* slot + 1 it must run on (an actor's), 0: any */
	uint32_t batch;       /* a plain call of an @gild.function(batch=N)
				 function, or an actor's call of such a
				 method: N >= 1; 0 for anything else (a
				 stream, an actor's other calls, creation or
				 end, an exec): only such calls are batched
				 together */
	uint64_t group;       /* 0 for a function's call; for an actor's
				 batched method, the calls its actor submitted
				 as one batch share a group (the id of their
				 first): only they go together */
	bool pipelinable;     /* may wait in a busy worker (sched_set_pipeline):
				 a plain call, not a stream, actor or batch */
	bool ahead;           /* RUNNING but sent ahead: waiting in its worker
				 behind the calls the slot runs now */
	bool taking_back;     /* RUNNING, and its worker was asked to give it
				 back (sched_take_back) and has not answered */
	uint32_t est_us;      /* how long it is expected to run, microseconds,
				 from its function's last calls (the caller
				 sets it; 0: not known) */
	uint64_t seq;         /* the order it was sent to its slot in */
	struct job *next, *prev; /* scheduler links: queue or slot list */
} job;

typedef struct sched sched;

/* Creates a scheduler for `slots` workers, each running at most `per_slot`
 * jobs at once (more when every job there, and the new one, allow it by
 * their concurrency), holding at most `max_queue` queued jobs. Returns 0 or
 * -ENOMEM / -EINVAL. */
int sched_init(sched **out, int slots, int per_slot, size_t max_queue);
/* Frees the scheduler, not the jobs (the server ends and frees them first).
 * Accepts NULL. */
void sched_fini(sched *s);

/* Lets each slot hold up to `depth` pipelinable jobs beyond per_slot while
 * every slot is busy: they wait in the worker, so it starts the next one
 * without a round trip to the front end (0, the default: none). A slot with
 * room always comes first, so a lone call is never sent ahead. Only a short
 * job goes ahead (est_us known and at most SCHED_SHORT_US), to the slot
 * where it is expected to start soonest (the est_us of the jobs there,
 * shared by its per_slot threads), and only when that is within
 * SCHED_AHEAD_WAIT_US and every job there has a known est_us: never behind
 * a call that may be long. A wrong guess is repaired by sched_take_back.
 * At most SCHED_PIPELINE_MAX. */
#define SCHED_PIPELINE_MAX 64
#define SCHED_SHORT_US 1000
#define SCHED_AHEAD_WAIT_US 2000
void sched_set_pipeline(sched *s, int depth);

/* Queues j (state JOB_NEW) at the tail. Returns 0, or -EAGAIN when the queue
 * is full (j untouched: the caller still owns and ends it). */
int sched_submit(sched *s, job *j);

/* Picks the next job to run and its worker: the oldest queued job that can
 * run now (a pinned job only on its slot) and the ready slot with the
 * fewest running jobs (ties: round-robin). Marks it
 * RUNNING. Returns the job (still owned by the scheduler until completed or
 * lost) or NULL when nothing can run now. */
job *sched_next(sched *s);

/* The job sched_next would pick, left queued; NULL when nothing can run
 * now (no job, or no ready slot with room). */
job *sched_peek(const sched *s);

/* Whether a ready slot has room for a job now. */
bool sched_has_room(const sched *s);

/* Queued jobs that would join j's batch: plain calls (batch > 0) of the
 * same function as j, or the rest of j's group (j itself not counted). */
size_t sched_count_same(const sched *s, const job *j);

/* Batching: moves up to max queued jobs that would join j's batch (as
 * sched_count_same), oldest first, onto j's slot as RUNNING (past its
 * per-slot limit: they run as one), and stores them in out. Returns how
 * many. */
size_t sched_take_same(sched *s, const job *j, job **out, size_t max);

/* Work conservation: while a ready slot has a free thread (fewer than
 * per_slot started jobs) and calls wait in other workers' inboxes, their
 * workers are asked to give them back, one waiting call per free thread.
 * Returns the next job to ask for (the oldest waiting one not asked for
 * yet), now marked taking_back, or NULL when no more are needed. Call it
 * once sched_next has placed what it can, until it returns NULL. */
job *sched_take_back(sched *s);

/* The worker's answer to a take-back of job `id` on `slot`. Returned: it
 * never started there; it goes back into the queue in its arrival order
 * (ids grow with it: before every job that came after it), and is
 * returned, JOB_QUEUED, for the caller to run elsewhere (or end). If the
 * scheduler counted it as started (its worker's earlier call ended before
 * the answer came), the oldest waiting call there is counted as started
 * instead: the worker took that one. Not returned: it had started (NULL;
 * the worker wrote the result of the call before it first, so it counts
 * as started by now). NULL too when no such job is being taken back (it
 * ended first). */
job *sched_taken_back(sched *s, int slot, uint64_t id, bool returned);

/* Worker `slot` can take jobs now (it said hello). */
void sched_slot_ready(sched *s, int slot);

/* Worker `slot` takes no new jobs until sched_slot_ready; the ones it runs
 * finish normally (it is being recycled). */
void sched_slot_pause(sched *s, int slot);

/* Worker `slot` is gone: it takes no jobs until sched_slot_ready. Its running
 * jobs are unlinked, marked JOB_DONE and returned as a list (through ->next),
 * oldest first, for the caller to fail; once every frame the worker wrote
 * has been handed on, those still `ahead` never started (not even behind
 * a call whose take-back was unanswered: the worker answers before it
 * takes the next call). */
job *sched_slot_lost(sched *s, int slot);

/* The job `id` running on `slot` has finished: it is unlinked, marked
 * JOB_DONE and returned; NULL if no such job runs there. */
job *sched_complete(sched *s, int slot, uint64_t id);

/* The job, queued or running, with this pipe and request id; NULL if none. */
job *sched_find(const sched *s, uint32_t pipe, uint64_t request_id);

/* Takes queued job j out of the queue and marks it JOB_DONE. */
void sched_remove_queued(sched *s, job *j);

/* Puts j (just returned by sched_slot_lost) back at the head of the queue,
 * to run next, whatever --max-queue says: it was accepted already. */
void sched_requeue(sched *s, job *j);

/* The jobs running on `slot`, linked through ->next (borrowed: do not
 * change the scheduler while walking it). */
job *sched_slot_jobs(const sched *s, int slot);

/* Removes every queued job that came in on `pipe`, marks them JOB_DONE and
 * returns them as a list (through ->next). */
job *sched_take_pipe(sched *s, uint32_t pipe);

/* Removes and returns every job, queued (slot -1) and running (slot kept),
 * as one list (through ->next), each JOB_DONE; the slots are left not ready.
 * For ending them all on shutdown. */
job *sched_take_all(sched *s);

size_t sched_queued(const sched *s);
size_t sched_running(const sched *s); /* sent to workers, ahead included */
size_t sched_ahead(const sched *s);   /* sent ahead, not started yet */
size_t sched_taking_back(const sched *s); /* asked back, not answered */
/* Number of slots that are ready, and jobs running on one slot. */
int sched_ready_slots(const sched *s);
int sched_slot_running(const sched *s, int slot);
int sched_slot_ahead(const sched *s, int slot);

#endif
