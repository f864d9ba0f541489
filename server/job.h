/* job: a call as the front end keeps it (front.h's sjob), from the moment
 * it is accepted to its one reply: the steps its state machine (call.h)
 * orders, its timer, its error replies and its end. */
#ifndef GILD_SERVER_JOB_H
#define GILD_SERVER_JOB_H

#include <stdint.h>
#include <time.h>

#include "front.h"

/* Frees j (an sjob), counting its call in the metrics if its client was
 * answered; an actor's job lets the actor's next call go (at the next
 * pump). */
void job_free(job *j);

/* Feeds event ev to sj's call (facts: call_fact; CF_AHEAD is added from
 * the scheduler's job.ahead) and does what its state machine says: every
 * action but CA_REPLY, which the caller does with the worker's answer (and
 * then frees sj). When the step ends the call (st.done, not CA_REPLY) sj
 * is freed. why: its worker's death (CE_LOST), else NULL. */
call_step job_step(server *srv, sjob *sj, call_event ev, unsigned facts,
    const char *why);

/* Ends j for a reason of the front end's own with an error reply (a
 * stream's: after the chunks sent; none for the server's own jobs, nor
 * when its client has its answer already) and frees it. */
void job_fail(server *srv, job *j, Gild__V1__Code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sends sj's one reply, an error (a stream's: its end, after the
 * chunks sent), when its state machine said the client is to be
 * answered (call_step.answer) and the caller answers it. */
void job_reply_error(server *srv, sjob *sj, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* (Re)arms sj's timer to fire after ms (its deadline; then --kill-grace):
 * the firing is CE_TIMER. Returns 0 or -1. */
int job_timer_arm(server *srv, sjob *sj, uint32_t ms);

/* Calls waiting for a worker (queued, or sent ahead to a busy one) and
 * running, as status and /metrics show them. */
void job_counts(const server *srv, uint64_t *queued, uint64_t *in_flight);

/* The job `job_id` on worker `slot` (started or sent ahead), or NULL. */
sjob *job_running(server *srv, int slot, uint64_t job_id);

/* Counts a call answered with code in /metrics (seconds from its arrival
 * to its answer; < 0: not timed), under a name the app reported: an exec
 * as fn ("<exec>"), a function's call (method false) as fn when the app
 * exports it, an actor's call (method true) as "cls.fn" when fn is a
 * public method of class cls (NULL: the actor is unknown). Any other name
 * is the client's to choose and counts as "(unknown)": clients cannot add
 * series. */
void job_count(server *srv, bool exec, bool method, const char *cls,
    const char *fn, size_t len, int code, double seconds);

/* sj (a call or an exec; other jobs are not counted) was handed to a
 * worker: its wait since arrival is counted in /metrics the first time
 * (a call taken back, or retried after its worker died, is not counted
 * again); batch > 0: it is the first of a batch of that many calls of a
 * batched function, counted as one batch. */
void job_count_start(server *srv, sjob *sj, size_t batch);

/* Seconds since t (CLOCK_MONOTONIC). */
double seconds_since(const struct timespec *t);

#endif
