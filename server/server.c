/* The gild front end: requests in, jobs to workers, replies out. */
#include "front.h"

#include "actor.h"
#include "codec.h"
#include "fields.h"
#include "gild.pb-c.h"
#include "gild_limits.h"
#include "http.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "parse.h"
#include "privs.h"
#include "reply.h"
#include "sched.h"
#include "stream.h"
#include "supervisor.h"
#include "svctime.h"
#include "valjson.h"
#include "wire.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- jobs ------------------------------------------------------------- */

/* Seconds since t (CLOCK_MONOTONIC). */
static double
seconds_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double) (now.tv_sec - t->tv_sec) +
	       (double) (now.tv_nsec - t->tv_nsec) / 1e9;
}

/* The gild.v1.Code a Reply's body fields (or an Error's, with error_only)
 * carry: an Error's code, else OK. */
static int
fields_code(const uint8_t *p, size_t len, bool error_only)
{
	wire_field e, c;

	if (!error_only) {
		if (wire_find(p, len, GILD_F_REPLY_ERROR, &e) != 1 ||
		    e.type != WIRE_LEN)
			return GILD__V1__CODE__OK;
		p = e.data;
		len = e.len;
	}
	if (wire_find(p, len, GILD_F_ERROR_CODE, &c) == 1 &&
	    c.type == WIRE_VARINT)
		return (int) c.value;
	return GILD__V1__CODE__UNKNOWN;
}

/* Marks sj's client answered with code (counted when it is freed). */
static void
job_answered(sjob *sj, int code)
{
	sj->answered = true;
	sj->end_code = code;
}

/* A log line about one call, with its request id, function and
 * connection as fields. */
static void log_call(enum log_level level, const job *j, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static void
log_call(enum log_level level, const job *j, const char *fmt, ...)
{
	char fn[256], msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(fn, sizeof(fn), "%.*s", (int) j->function_len, j->function);
	log_event(level,
	    (log_field[]){LOG_NUM("request_id", j->request_id),
		LOG_STR("function", fn), LOG_NUM("connection", j->pipe)},
	    3, "%s", msg);
}

/* The --slow-ms line: which call, how it ended, how long it took. */
static void
log_slow(const sjob *sj, double took)
{
	char fn[256];

	snprintf(fn, sizeof(fn), "%.*s", (int) sj->j.function_len,
	    sj->j.function);
	log_event(LOG_WARN,
	    (log_field[]){LOG_NUM("request_id", sj->j.request_id),
		LOG_STR("function", fn),
		LOG_STR("code", gild_code_name(sj->end_code)),
		LOG_NUM("duration_ms", took * 1e3),
		LOG_NUM("connection", sj->j.pipe)},
	    5, "slow call: '%s' took %.0f ms (--slow-ms %" PRIu32 ")", fn,
	    took * 1e3, sj->srv->opts->slow_ms);
}

void
job_free(job *j)
{
	sjob *sj = (sjob *) j;

	if (sj->answered && !sj->internal &&
	    (sj->kind == JK_CALL || sj->kind == JK_EXEC)) {
		double took = seconds_since(&sj->arrived);
		metrics_call(sj->srv->metrics, j->function, j->function_len,
		    sj->end_code, took);
		if (sj->srv->opts->slow_ms != 0 &&
		    took * 1e3 >= sj->srv->opts->slow_ms)
			log_slow(sj, took);
	}
	if (sj->timer != NULL)
		event_free(sj->timer);
	if (sj->act != NULL && sj->act->active == j) {
		sj->act->active = NULL;
		sj->srv->actors_dirty = true; /* pump sends its next call */
	}
	nng_msg_free(j->req);
	free(sj);
}

static void stream_end_error(server *srv, stream *st, Gild__V1__Code code,
    const char *msg);

void
job_fail(server *srv, job *j, Gild__V1__Code code, const char *fmt, ...)
{
	sjob *sj = (sjob *) j;
	va_list ap;

	if (sj->replied) {
		job_free(j); /* its client has its answer */
		return;
	}
	va_start(ap, fmt);
	job_answered(sj, code);
	if (sj->internal) {
		/* nobody to tell */
	} else if (sj->st != NULL) {
		/* A stream ends with the error after the chunks sent. */
		char msg[1024];
		vsnprintf(msg, sizeof(msg), fmt, ap);
		stream_end_error(srv, sj->st, code, msg);
	} else {
		reply_verror(srv->lst, j->reply_to, j->request_id, code, fmt, ap);
	}
	va_end(ap);
	job_free(j);
}

static void server_stop_workers(server *srv);

/* Ends a job that was interrupted (deadline or cancel) however it ended:
 * with a result, an error, or the death of its worker. */
static void
job_end_interrupted(server *srv, sjob *sj)
{
	job *j = &sj->j;
	char how[160] = "";

	if (sj->killed)
		snprintf(how, sizeof(how),
		    "; it did not stop within --kill-grace (%d ms), so its "
		    "worker was replaced",
		    srv->opts->kill_grace_ms);
	if (sj->interrupt == GILD__V1__CODE__DEADLINE_EXCEEDED)
		job_fail(srv, j, GILD__V1__CODE__DEADLINE_EXCEEDED,
		    "'%.*s' exceeded its deadline of %" PRIu32
		    " ms and was interrupted%s",
		    (int) j->function_len, j->function, sj->timeout_ms, how);
	else
		job_fail(srv, j, GILD__V1__CODE__CANCELLED,
		    "'%.*s' was cancelled while it ran%s",
		    (int) j->function_len, j->function, how);
}

static void on_job_timer(evutil_socket_t fd, short what, void *arg);

/* (Re)arms sj's timer to fire after ms. Returns 0 or -1. */
static int
job_timer_arm(server *srv, sjob *sj, uint32_t ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (sj->timer == NULL &&
	    (sj->timer = evtimer_new(srv->base, on_job_timer, sj)) == NULL)
		return -1;
	return evtimer_add(sj->timer, &tv);
}

static const char *unstarted_why(const server *srv, const sjob *sj,
    Gild__V1__Code code, char *buf, size_t len);

/* Stops a running job: the worker raises DeadlineInterrupt or
 * CancelInterrupt in it, and if it has not ended after --kill-grace the
 * worker is killed. One sent ahead has not started: the worker will skip
 * it, and its client is told now, as for a call still queued. */
static void
job_interrupt(server *srv, sjob *sj, int code)
{
	char why[256];

	if (sj->interrupt != 0)
		return; /* already on its way out */
	sj->interrupt = code;
	if (sj->j.ahead && !sj->internal && sj->st == NULL) {
		job_answered(sj, code);
		reply_error(srv->lst, sj->j.reply_to, sj->j.request_id, code, "%s",
		    unstarted_why(srv, sj, code, why, sizeof(why)));
		sj->replied = true;
	}
	log_call(LOG_DEBUG, &sj->j, "interrupting '%.*s' on worker %d: %s",
	    (int) sj->j.function_len, sj->j.function, sj->j.slot,
	    code == GILD__V1__CODE__CANCELLED ? "cancelled" : "deadline");
	if (supervisor_interrupt(srv->sup, sj->j.slot, sj->j.id, code) != 0 ||
	    job_timer_arm(srv, sj, (uint32_t) srv->opts->kill_grace_ms) != 0)
		/* Cannot ask or cannot wait: the worker goes now. */
		supervisor_kill(srv->sup, sj->j.slot,
		    "cannot interrupt its call");
}

/* Calls waiting for a worker (queued, or sent ahead to a busy one) and
 * running, as status and /metrics show them. */
static void
call_counts(const server *srv, uint64_t *queued, uint64_t *in_flight)
{
	size_t ahead = sched_ahead(srv->sch);

	*queued = sched_queued(srv->sch) + ahead;
	*in_flight = sched_running(srv->sch) - ahead;
}

/* Why a call ends without having run: its deadline passed while it waited
 * (DEADLINE_EXCEEDED), or its client cancelled it (CANCELLED). */
static const char *
unstarted_why(const server *srv, const sjob *sj, Gild__V1__Code code,
    char *buf, size_t len)
{
	uint64_t queued, in_flight;

	if (code != GILD__V1__CODE__DEADLINE_EXCEEDED)
		return "cancelled by the client before it ran";
	call_counts(srv, &queued, &in_flight);
	snprintf(buf, len,
	    "deadline of %" PRIu32 " ms passed before '%.*s' could run: "
	    "every worker was busy (%" PRIu64 " calls queued)",
	    sj->timeout_ms, (int) sj->j.function_len, sj->j.function, queued);
	return buf;
}

/* Ends a job that has not run: its deadline passed in the queue, or it was
 * cancelled there. */
static void
job_end_queued(server *srv, sjob *sj, Gild__V1__Code code)
{
	char why[256];

	actor *created = sj->kind == JK_ACTOR_NEW ? sj->act : NULL;

	if (sj->j.state == JOB_QUEUED)
		sched_remove_queued(srv->sch, &sj->j);
	else if (sj->act != NULL) /* waiting for its actor's earlier calls */
		actor_unlink(sj->act, sj->j.pipe, sj->j.request_id);
	job_fail(srv, &sj->j, code, "%s",
	    unstarted_why(srv, sj, code, why, sizeof(why)));
	if (created != NULL)
		actor_ctor_dropped(srv, created);
}

static void check_drained(server *srv);

/* The deadline of a job passed, or the --kill-grace after its interrupt. */
static void
on_job_timer(evutil_socket_t fd, short what, void *arg)
{
	sjob *sj = arg;
	server *srv = sj->srv;
	char reason[200];

	if (sj->j.state == JOB_QUEUED ||
	    (sj->j.state == JOB_NEW && sj->act != NULL)) {
		job_end_queued(srv, sj, GILD__V1__CODE__DEADLINE_EXCEEDED);
		check_drained(srv);
	} else if (sj->j.state == JOB_RUNNING && sj->interrupt == 0) {
		job_interrupt(srv, sj, GILD__V1__CODE__DEADLINE_EXCEEDED);
	} else if (sj->j.state == JOB_RUNNING && sj->j.ahead) {
		/* Still waiting in the worker behind other calls: it ends as
		 * soon as it starts, so there is nothing to kill yet. */
		if (job_timer_arm(srv, sj, (uint32_t) srv->opts->kill_grace_ms) !=
		    0)
			supervisor_kill(srv->sup, sj->j.slot,
			    "cannot wait for an interrupted call");
	} else if (sj->j.state == JOB_RUNNING) {
		snprintf(reason, sizeof(reason),
		    "'%.*s' did not stop within --kill-grace (%d ms) after it "
		    "was %s",
		    (int) sj->j.function_len, sj->j.function,
		    srv->opts->kill_grace_ms,
		    sj->interrupt == GILD__V1__CODE__CANCELLED
			? "cancelled"
			: "interrupted at its deadline");
		sj->killed = true;
		/* on_worker_lost ends the job (and frees sj). */
		supervisor_kill(srv->sup, sj->j.slot, reason);
	}
}

static uint64_t
elapsed_us(const struct timespec *since)
{
	double s = seconds_since(since);

	return s > 0 ? (uint64_t) (s * 1e6) : 0;
}

/* Whether the batch sj would start should wait for more calls: it is not
 * full, and sj came when every worker was busy (so more are likely behind
 * it), and it has not waited batch_wait_us yet. A call that found a worker
 * free never waits: batching adds no delay to an idle server. */
static bool
batch_should_wait(server *srv, sjob *sj)
{
	uint64_t waited;
	struct timeval tv;

	if (sched_count_same(srv->sch, &sj->j) + 1 >= sj->j.batch ||
	    !sj->arrived_busy)
		return false;
	if ((waited = elapsed_us(&sj->arrived)) >= sj->batch_wait_us)
		return false;
	tv.tv_sec = (sj->batch_wait_us - waited) / 1000000;
	tv.tv_usec = (sj->batch_wait_us - waited) % 1000000;
	evtimer_add(srv->batch_ev, &tv);
	return true;
}

/* What the worker gets for job j. */
static void
describe_job(const job *j, sup_job *out)
{
	const sjob *sj = (const sjob *) j;
	uint64_t waited = elapsed_us(&sj->arrived);

	out->op = sj->kind == JK_ACTOR_NEW	? SUP_ACTOR_NEW
		  : sj->kind == JK_ACTOR_DESTROY ? SUP_ACTOR_DESTROY
		  : sj->kind == JK_EXEC		 ? SUP_EXEC
						 : SUP_CALL;
	out->actor_id = sj->act != NULL ? sj->act->id : 0;
	out->job_id = j->id;
	out->request_id = j->request_id;
	out->queued_us = waited > UINT32_MAX ? UINT32_MAX : (uint32_t) waited;
	out->deadline_ms = 0;
	if (sj->timeout_ms != 0)
		out->deadline_ms = waited / 1000 >= sj->timeout_ms
				       ? 1
				       : sj->timeout_ms -
					     (uint32_t) (waited / 1000);
	out->call = j->call;
	out->len = j->call_len;
}

/* Hands queued jobs to free workers: one call each, or for a batched
 * function up to its batch of calls at once. */
void
pump(server *srv)
{
	sup_job sjobs[GILD_FUNCTION_BATCH_MAX];
	job *batch[GILD_FUNCTION_BATCH_MAX];
	job *j;

	actor_kick_all(srv);
	while ((j = sched_peek(srv->sch)) != NULL) {
		sjob *sj = (sjob *) j;
		size_t n = 1;
		int slot;

		if (j->batch > 0 && batch_should_wait(srv, sj))
			break; /* the timer pumps again */
		j = sched_next(srv->sch);
		slot = j->slot;
		batch[0] = j;
		if (j->batch > 1)
			n += sched_take_same(srv->sch, j, batch + 1,
			    (j->batch < GILD_FUNCTION_BATCH_MAX
				    ? j->batch
				    : GILD_FUNCTION_BATCH_MAX) - 1);
		for (size_t i = 0; i < n; i++)
			describe_job(batch[i], &sjobs[i]);
		if (supervisor_send(srv->sup, slot, sjobs, n, j->batch > 0) != 0) {
			for (size_t i = 0; i < n; i++) {
				sched_complete(srv->sch, slot, batch[i]->id);
				job_fail(srv, batch[i], GILD__V1__CODE__INTERNAL,
				    "could not send the call to worker %d", slot);
			}
		}
	}
	/* A worker is free and calls wait in busy ones: ask for them back.
	 * One that cannot be asked stays asked for until it ends or its
	 * worker is lost. */
	while ((j = sched_take_back(srv->sch)) != NULL)
		supervisor_take_back(srv->sup, j->slot, j->id);
}

static void
on_batch_timer(evutil_socket_t fd, short what, void *arg)
{
	pump(arg);
}

/* Draining and nothing left to run: the workers can go. */
static void
check_drained(server *srv)
{
	if (srv->state == SRV_DRAINING && sched_running(srv->sch) == 0 &&
	    sched_queued(srv->sch) == 0 && actor_waiting(srv) == 0)
		server_stop_workers(srv);
}

/* ---- streams ---------------------------------------------------------- */

/* Answers the request waiting on st with the chunks held (up to its max),
 * and the end if they are the last; frees the stream once its end is
 * delivered. Chunks taken out make room: the job gets that much credit. */
static void
stream_flush(server *srv, stream *st)
{
	uint32_t k;
	bool end;
	nng_msg *m;

	if (st->pull == NULL || !stream_ready(st))
		return;
	if ((m = reply_start(st->pull_id)) == NULL ||
	    stream_take(st, m, st->pull_max, &k, &end) != 0) {
		nng_msg_free(m);
		reply_error(srv->lst, st->pull, st->pull_id,
		    GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    "server out of memory for the stream's chunks");
		st->pull = NULL;
		return;
	}
	listener_reply(srv->lst, st->pull, m);
	st->pull = NULL;
	if (st->job != NULL && k > 0 && st->job->j.state == JOB_RUNNING)
		supervisor_credit(srv->sup, st->job->j.slot, st->job->j.id, k);
	if (end)
		stream_free(&srv->streams, st);
}

/* The stream will get no more chunks; error is an encoded Error (copied),
 * or NULL when it ended well. */
static void
stream_finish(server *srv, stream *st, const uint8_t *error, size_t len)
{
	if (st->job != NULL)
		st->job->st = NULL;
	st->job = NULL;
	stream_end(st, error, len);
	if (st->orphan) {
		/* Nobody will pull: answer a waiting request and go. */
		if (st->pull != NULL)
			reply_error(srv->lst, st->pull, st->pull_id,
			    GILD__V1__CODE__CANCELLED, "the client disconnected");
		stream_free(&srv->streams, st);
		return;
	}
	stream_flush(srv, st);
}

static void
stream_end_error(server *srv, stream *st, Gild__V1__Code code, const char *msg)
{
	Gild__V1__Error e = GILD__V1__ERROR__INIT;
	uint8_t buf[1200];

	e.code = code;
	e.message = (char *) msg;
	stream_finish(srv, st, buf, gild__v1__error__pack(&e, buf));
}

/* The running job `job_id` on `slot`, or NULL. */
static sjob *
running_job(server *srv, int slot, uint64_t job_id)
{
	for (job *j = sched_slot_jobs(srv->sch, slot); j != NULL; j = j->next)
		if (j->id == job_id)
			return (sjob *) j;
	return NULL;
}

static void
on_worker_chunk(void *arg, int slot, uint64_t job_id, const uint8_t *chunk,
    size_t len)
{
	server *srv = arg;
	sjob *sj = running_job(srv, slot, job_id);
	int rc;

	if (sj == NULL || sj->st == NULL)
		return; /* stale, or the stream was cancelled meanwhile */
	if ((rc = stream_push(sj->st, chunk, len)) != 0) {
		supervisor_kill(srv->sup, slot, rc == -ENOMEM
			? "server out of memory"
			: "the worker broke the stream protocol (a chunk out "
			  "of order, or past its credit)");
		return;
	}
	stream_flush(srv, sj->st);
}

static void check_drained(server *srv);

static void
on_worker_stream_end(void *arg, int slot, uint64_t job_id, const uint8_t *end,
    size_t len)
{
	server *srv = arg;
	wire_field err;
	sjob *sj;
	job *j;

	if ((j = sched_complete(srv->sch, slot, job_id)) == NULL)
		return;
	sj = (sjob *) j;
	if (sj->interrupt != 0) {
		job_end_interrupted(srv, sj);
	} else if (sj->st != NULL) {
		if (wire_find(end, len, GILD_WF_STREAM_END_ERROR, &err) == 1 &&
		    err.type == WIRE_LEN) {
			job_answered(sj, fields_code(err.data, err.len, true));
			stream_finish(srv, sj->st, err.data, err.len);
		} else {
			job_answered(sj, GILD__V1__CODE__OK);
			stream_finish(srv, sj->st, NULL, 0);
		}
		job_free(j);
	} else {
		job_free(j);
	}
	pump(srv);
	check_drained(srv);
}

/* StreamNext: the client asks for the next chunks. */
static void
on_stream_next(server *srv, listener_req *req, const parsed_request *pr)
{
	stream *st = stream_find(srv->streams, listener_req_pipe(req),
	    pr->stream_call);

	if (st == NULL) {
		reply_error(srv->lst, req, pr->id, GILD__V1__CODE__NOT_FOUND,
		    "no stream %" PRIu64 " on this connection (it has ended, "
		    "or was never opened)",
		    pr->stream_call);
	} else if (st->pull != NULL) {
		reply_error(srv->lst, req, pr->id,
		    GILD__V1__CODE__FAILED_PRECONDITION,
		    "a StreamNext for stream %" PRIu64 " is already waiting",
		    pr->stream_call);
	} else {
		st->pull = req;
		st->pull_id = pr->id;
		st->pull_max = pr->stream_max;
		stream_flush(srv, st);
	}
}

/* ---- requests --------------------------------------------------------- */

static bool
known_function(server *srv, const char *name, size_t len)
{
	size_t n;
	const char *const *fns = supervisor_functions(srv->sup, &n);

	if (n == 0)
		return true; /* no worker has said hello yet: it will check */
	for (size_t i = 0; i < n; i++) {
		if (strlen(fns[i]) == len && memcmp(fns[i], name, len) == 0)
			return true;
	}
	return false;
}

/* Counts a call answered with code before it became a job. */
static void
count_refused(server *srv, const parsed_request *pr, int code)
{
	bool known = pr->body == BODY_EXEC ||
		     (pr->function != NULL &&
			 known_function(srv, pr->function, pr->function_len));

	metrics_call(srv->metrics, known ? pr->function : NULL,
	    pr->function_len, code, -1);
}

static void
not_found(server *srv, listener_req *req, uint64_t id, const char *name,
    size_t len)
{
	char list[600];
	size_t n, used = 0;
	const char *const *fns = supervisor_functions(srv->sup, &n);

	list[0] = '\0';
	for (size_t i = 0; i < n && used + 4 < sizeof(list); i++)
		used += (size_t) snprintf(list + used, sizeof(list) - used,
		    "%s%s", i ? ", " : "", fns[i]);
	reply_error(srv->lst, req, id, GILD__V1__CODE__NOT_FOUND,
	    "function '%.*s' not found in app '%s' (exported: %s)",
	    (int) (len > 200 ? 200 : len), name, srv->opts->app, list);
}

/* A Call, or an Exec (pr->body BODY_EXEC: no function to look up, no
 * options, never pipelined). Takes msg. */
static void
on_call(server *srv, listener_req *req, nng_msg *msg, const parsed_request *pr)
{
	sup_function_options fo = {0};
	bool exec = pr->body == BODY_EXEC;
	actor *act = NULL;
	sjob *sj;
	job *j;
	int code;

	if (exec) {
		/* submitted source: nothing to look up */
	} else if (pr->actor_id != 0) {
		if ((act = actor_for_call(srv, req, pr)) == NULL) {
			code = GILD__V1__CODE__NOT_FOUND;
			goto done;
		}
	} else if (!known_function(srv, pr->function, pr->function_len)) {
		not_found(srv, req, pr->id, pr->function, pr->function_len);
		code = GILD__V1__CODE__NOT_FOUND;
		goto done;
	}
	if ((sj = calloc(1, sizeof(*sj))) == NULL) {
		reply_error(srv->lst, req, pr->id, GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    "server out of memory");
		code = GILD__V1__CODE__RESOURCE_EXHAUSTED;
		goto done;
	}
	j = &sj->j;
	sj->srv = srv;
	if (pr->stream) {
		if (stream_find(srv->streams, listener_req_pipe(req), pr->id) !=
			NULL ||
		    (sj->st = stream_new(&srv->streams, listener_req_pipe(req),
			 pr->id,
			 pr->window)) == NULL) {
			free(sj);
			reply_error(srv->lst, req, pr->id,
			    GILD__V1__CODE__INVALID_ARGUMENT,
			    "cannot open stream %" PRIu64 ": that id is in use "
			    "(or the server is out of memory)",
			    pr->id);
			code = GILD__V1__CODE__INVALID_ARGUMENT;
			goto done;
		}
		/* The Call's own reply is the stream's first pull. */
		sj->st->job = sj;
		sj->st->pull = req;
		sj->st->pull_id = pr->id;
	}
	if (act == NULL && !exec)
		fo = supervisor_function_options(srv->sup, pr->function,
		    pr->function_len);
	sj->act = act;
	sj->kind = exec ? JK_EXEC : JK_CALL;
	sj->timeout_ms = pr->timeout_ms    ? pr->timeout_ms
			 : fo.timeout_ms   ? fo.timeout_ms
					   : srv->opts->default_timeout_ms;
	sj->retries_left = fo.retries;
	/* Only a plain call is batched: not a stream (nor an actor's call,
	 * whose options are none). */
	j->batch = pr->stream ? 0 : fo.batch;
	sj->batch_wait_us = fo.batch_wait_us;
	j->concurrency = fo.concurrency;
	/* Only a plain call may wait in a busy worker: a stream holds its
	 * worker for long, actors and batches have their own order, and an
	 * exec's run time is anyone's guess. */
	j->pipelinable = !exec && act == NULL && !pr->stream &&
			 j->batch == 0 && fo.concurrency <= 1;
	if (j->pipelinable)
		j->est_us = svctime_get(srv->est, pr->function,
		    pr->function_len);
	sj->arrived_busy = !sched_has_room(srv->sch) || sched_queued(srv->sch) > 0;
	clock_gettime(CLOCK_MONOTONIC, &sj->arrived);
	j->id = ++srv->next_job_id;
	j->request_id = pr->id;
	j->pipe = listener_req_pipe(req);
	j->req = msg;
	j->reply_to = req;
	j->call = pr->data;
	j->call_len = pr->len;
	j->function = pr->function;
	j->function_len = pr->function_len;
	if (sj->timeout_ms != 0 && job_timer_arm(srv, sj, sj->timeout_ms) != 0) {
		if (sj->st != NULL)
			stream_free(&srv->streams, sj->st);
		free(sj);
		reply_error(srv->lst, req, pr->id, GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    "server out of memory");
		code = GILD__V1__CODE__RESOURCE_EXHAUSTED;
		goto done;
	}
	if (act != NULL) {
		/* One call at a time per actor, in arrival order. */
		srv->calls_total++;
		actor_call(srv, act, j);
		pump(srv);
		return;
	}
	if (sched_submit(srv->sch, j) != 0) {
		if (sj->timer != NULL)
			event_free(sj->timer);
		if (sj->st != NULL)
			stream_free(&srv->streams, sj->st);
		free(sj);
		reply_error(srv->lst, req, pr->id, GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    "queue full: %zu calls are waiting (--max-queue)",
		    sched_queued(srv->sch));
		code = GILD__V1__CODE__RESOURCE_EXHAUSTED;
		goto done;
	}
	srv->calls_total++;
	pump(srv);
	return;
done:
	count_refused(srv, pr, code); /* it never became a job */
	nng_msg_free(msg);
}

static void
on_cancel(server *srv, listener_req *req, const parsed_request *pr)
{
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Value v = GILD__V1__VALUE__INIT;
	stream *st = NULL;
	job *j;

	j = sched_find(srv->sch, listener_req_pipe(req), pr->cancel_target);
	if (j != NULL && j->state == JOB_QUEUED) {
		job_end_queued(srv, (sjob *) j, GILD__V1__CODE__CANCELLED);
		check_drained(srv);
	} else if (j != NULL) {
		job_interrupt(srv, (sjob *) j, GILD__V1__CODE__CANCELLED);
	} else if ((j = actor_waiting_find(srv, listener_req_pipe(req),
			pr->cancel_target)) != NULL) {
		job_end_queued(srv, (sjob *) j, GILD__V1__CODE__CANCELLED);
		check_drained(srv);
	} else if ((st = stream_find(srv->streams, listener_req_pipe(req),
			pr->cancel_target)) != NULL) {
		/* Its generator has finished: drop what it left. */
		stream_drop(st);
		stream_end_error(srv, st, GILD__V1__CODE__CANCELLED,
		    "the stream was cancelled by the client");
	}
	/* The Cancel itself is answered with whether the call was found. */
	v.kind_case = GILD__V1__VALUE__KIND_BOOL_VALUE;
	v.bool_value = j != NULL || st != NULL;
	r.body_case = GILD__V1__REPLY__BODY_RESULT;
	r.result = &v;
	reply_send(srv->lst, req, pr->id, &r);
}

/* A client connection closed: its queued calls are dropped (their replies
 * would go nowhere) and its running ones interrupted. */
static void
on_pipe_gone(void *arg, uint32_t pipe)
{
	server *srv = arg;
	size_t dropped = 0, interrupted = 0;
	job *j, *next;

	for (j = sched_take_pipe(srv->sch, pipe); j != NULL; j = next) {
		sjob *sj = (sjob *) j;
		actor *created = sj->kind == JK_ACTOR_NEW ? sj->act : NULL;
		next = j->next;
		job_fail(srv, j, GILD__V1__CODE__CANCELLED,
		    "the client disconnected before the call ran");
		if (created != NULL)
			actor_ctor_dropped(srv, created);
		dropped++;
	}
	for (int slot = 0; slot < supervisor_count(srv->sup); slot++) {
		for (j = sched_slot_jobs(srv->sch, slot); j != NULL; j = next) {
			next = j->next;
			if (j->pipe == pipe && ((sjob *) j)->interrupt == 0) {
				job_interrupt(srv, (sjob *) j,
				    GILD__V1__CODE__CANCELLED);
				interrupted++;
			}
		}
	}
	/* Calls waiting for its actors' turn, and the actors it owns. */
	dropped += actor_pipe_gone(srv, pipe);
	/* Its streams: those whose job still runs go when it ends. */
	for (stream *st = srv->streams, *snext; st != NULL; st = snext) {
		snext = st->next;
		if (st->pipe != pipe)
			continue;
		st->orphan = true;
		if (st->job != NULL)
			continue;
		if (st->pull != NULL)
			reply_error(srv->lst, st->pull, st->pull_id,
			    GILD__V1__CODE__CANCELLED, "the client disconnected");
		stream_free(&srv->streams, st);
	}
	if (dropped + interrupted > 0)
		log_info("client connection %" PRIu32 " closed: %zu queued "
			 "calls dropped, %zu running calls cancelled",
		    pipe, dropped, interrupted);
	pump(srv);
	check_drained(srv);
}

static double
uptime(const server *srv)
{
	return seconds_since(&srv->started);
}

/* Worker slot i's state as status and /metrics show it: "busy" while it
 * runs a call, else the supervisor's (info: supervisor_info of i). */
static const char *
slot_state(const server *srv, int i, const sup_worker_info *info)
{
	return sched_slot_running(srv->sch, i) > 0 ? "busy" : info->state;
}

/* What a Status message points into, besides the workers: the estimates
 * of the functions that have one (svctime tracks at most SVCTIME_SLOTS). */
typedef struct status_times {
	Gild__V1__ServiceTime t[SVCTIME_SLOTS];
	Gild__V1__ServiceTime *p[SVCTIME_SLOTS];
} status_times;

/* Points st at the service-time estimates of its functions (already
 * filled in), in tm. */
static void
status_fill_times(server *srv, Gild__V1__Status *st, status_times *tm)
{
	size_t n = 0;

	for (size_t i = 0; i < st->n_functions && n < SVCTIME_SLOTS; i++) {
		const char *fn = st->functions[i];
		uint32_t us = svctime_get(srv->est, fn, strlen(fn));
		if (us == 0)
			continue;
		gild__v1__service_time__init(&tm->t[n]);
		tm->t[n].function = (char *) fn;
		tm->t[n].us = us;
		tm->p[n] = &tm->t[n];
		n++;
	}
	st->service_times = tm->p;
	st->n_service_times = n;
}

/* Fills st; ws and wp have room for supervisor_count() workers. */
static void
status_fill(server *srv, Gild__V1__Status *st, Gild__V1__WorkerStatus *ws,
    Gild__V1__WorkerStatus **wp, status_times *tm)
{
	int n = supervisor_count(srv->sup);
	const char *pyver = supervisor_python_version(srv->sup);

	for (int i = 0; i < n; i++) {
		sup_worker_info info;
		supervisor_info(srv->sup, i, &info);
		gild__v1__worker_status__init(&ws[i]);
		ws[i].slot = (uint32_t) i;
		ws[i].pid = (int32_t) info.pid;
		ws[i].state = (char *) slot_state(srv, i, &info);
		ws[i].jobs_done = info.jobs_done;
		ws[i].restarts = info.restarts;
		ws[i].recycles = info.recycles;
		ws[i].waiting = (uint32_t) sched_slot_ahead(srv->sch, i);
		wp[i] = &ws[i];
	}
	st->server_version = GILD_VERSION;
	st->app = (char *) srv->opts->app;
	st->runtime = (char *) (srv->opts->free_threaded ? "free-threaded"
							: "process");
	st->threads = (uint32_t) srv->opts->threads;
	st->gil_enabled = supervisor_gil_enabled(srv->sup);
	st->shm_bytes = supervisor_shm_bytes(srv->sup);
	st->functions = (char **) supervisor_functions(srv->sup,
	    &st->n_functions);
	st->n_workers = (size_t) n;
	st->workers = wp;
	call_counts(srv, &st->queued, &st->in_flight);
	st->calls_total = srv->calls_total;
	st->uptime_s = uptime(srv);
	st->python_version = (char *) (pyver ? pyver : "");
	st->state = (char *) (srv->state == SRV_RUNNING ? "serving"
							: "draining");
	status_fill_times(srv, st, tm);
}

static void
on_status(server *srv, listener_req *req, uint64_t id)
{
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Status st = GILD__V1__STATUS__INIT;
	int n = supervisor_count(srv->sup);
	Gild__V1__WorkerStatus ws[n], *wp[n];
	status_times tm;

	status_fill(srv, &st, ws, wp, &tm);
	r.body_case = GILD__V1__REPLY__BODY_STATUS;
	r.status = &st;
	reply_send(srv->lst, req, id, &r);
}

/* ---- the HTTP side port ------------------------------------------------ */

/* /readyz: calls are taken (running, a worker ready to run one). */
static bool
http_ready(void *arg, const char **why)
{
	server *srv = arg;

	if (srv->state != SRV_RUNNING) {
		*why = "draining: the server is shutting down";
		return false;
	}
	if (sched_ready_slots(srv->sch) == 0) {
		*why = "no worker is ready";
		return false;
	}
	return true;
}

/* /status: what gildctl status prints, from the same Status message. */
static char *
http_status_json(void *arg)
{
	server *srv = arg;
	Gild__V1__Status st = GILD__V1__STATUS__INIT;
	int n = supervisor_count(srv->sup);
	Gild__V1__WorkerStatus ws[n], *wp[n];
	gild_value *v = NULL;
	status_times tm;
	char *json;

	status_fill(srv, &st, ws, wp, &tm);
	if (codec_status_to_value(&st, &v) != GILD_OK)
		return NULL;
	json = valjson_dump(v, 2);
	gild_value_free(v);
	return json;
}

/* /metrics: the counters, and the gauges as of now. */
static char *
http_metrics_text(void *arg)
{
	server *srv = arg;
	int n = supervisor_count(srv->sup);
	const char *state[n];
	metrics_now now = {0};

	for (int i = 0; i < n; i++) {
		sup_worker_info info;
		supervisor_info(srv->sup, i, &info);
		state[i] = slot_state(srv, i, &info);
	}
	call_counts(srv, &now.queued, &now.in_flight);
	now.workers = n;
	now.worker_state = state;
	now.n_reasons = supervisor_restarts(srv->sup, &now.restart_reason,
	    &now.restarts);
	listener_bytes(srv->lst, &now.bytes_in, &now.bytes_out);
	now.shm_bytes = supervisor_shm_bytes(srv->sup);
	now.uptime_s = uptime(srv);
	now.draining = srv->state != SRV_RUNNING;
	return metrics_render(srv->metrics, &now);
}

static void
on_ping(server *srv, listener_req *req, const parsed_request *pr)
{
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Pong pong = GILD__V1__PONG__INIT;

	pong.payload.data = (uint8_t *) pr->ping_payload;
	pong.payload.len = pr->ping_payload_len;
	pong.server_version = GILD_VERSION;
	r.body_case = GILD__V1__REPLY__BODY_PONG;
	r.pong = &pong;
	reply_send(srv->lst, req, pr->id, &r);
}

/* Whether got (len bytes, NULL: none sent) is the token want, in a time
 * that depends on want's length only. */
static bool
token_ok(const char *want, const char *got, size_t len)
{
	size_t n = strlen(want);
	unsigned char d = got == NULL || len != n;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char) want[i] ^
		     (unsigned char) (got != NULL && i < len ? got[i] : 0);
	return d == 0;
}

static void on_batch(server *srv, listener_req *req, nng_msg *msg,
    const parsed_request *pr);

/* Serves one request whose token was checked (alone, or in a batch: then
 * in_batch): takes msg, answers req once. */
static void
dispatch(server *srv, listener_req *req, nng_msg *msg,
    const parsed_request *pr, bool in_batch)
{
	bool call = pr->body == BODY_CALL || pr->body == BODY_EXEC;

	if (pr->code != 0) {
		reply_error(srv->lst, req, pr->id, (Gild__V1__Code) pr->code, "%s",
		    pr->message);
		if (call)
			count_refused(srv, pr, pr->code);
	} else if (pr->body == BODY_EXEC && !srv->opts->allow_exec) {
		reply_error(srv->lst, req, pr->id, GILD__V1__CODE__PERMISSION_DENIED,
		    "exec requests are refused: this server was not started "
		    "with --allow-exec (it would let any client run any "
		    "Python code in its workers)");
		count_refused(srv, pr, GILD__V1__CODE__PERMISSION_DENIED);
	} else if (srv->state != SRV_RUNNING && call) {
		reply_refused(srv->lst, req, pr->id, "server is shutting down: the "
		    "call was not started");
		count_refused(srv, pr, GILD__V1__CODE__UNAVAILABLE);
	} else {
		switch (pr->body) {
		case BODY_CALL:
		case BODY_EXEC:
			on_call(srv, req, msg, pr);
			return; /* on_call took msg */
		case BODY_CANCEL:
			on_cancel(srv, req, pr);
			break;
		case BODY_STATUS:
			on_status(srv, req, pr->id);
			break;
		case BODY_STREAM_NEXT:
			on_stream_next(srv, req, pr);
			break;
		case BODY_ACTOR_NEW:
			if (srv->state != SRV_RUNNING) {
				reply_refused(srv->lst, req, pr->id,
				    "server is shutting down: the actor was "
				    "not created");
				break;
			}
			actor_request_new(srv, req, msg, pr);
			return; /* took msg */
		case BODY_ACTOR_GET:
			actor_request_get(srv, req, pr);
			break;
		case BODY_ACTOR_DESTROY:
			actor_request_destroy(srv, req, pr);
			break;
		case BODY_BATCH:
			if (in_batch) {
				reply_error(srv->lst, req, pr->id,
				    GILD__V1__CODE__INVALID_ARGUMENT,
				    "a batch cannot hold another batch");
				break;
			}
			on_batch(srv, req, msg, pr);
			return; /* took msg */
		default:
			on_ping(srv, req, pr);
			break;
		}
	}
	nng_msg_free(msg);
}

/* Request.batch: each request in it is served as if it had come alone, its
 * reply collected into the batch's one reply. Takes msg. */
static void
on_batch(server *srv, listener_req *req, nng_msg *msg,
    const parsed_request *pr)
{
	const uint8_t *p = pr->data, *end = pr->data + pr->len;
	wire_field f;
	size_t n = 0;
	int rc;

	while ((rc = wire_next(&p, end, &f)) == 1)
		n += f.number == GILD_F_BATCH_REQUESTS && f.type == WIRE_LEN;
	if (rc < 0 || n == 0 || n > GILD_BATCH_REQUESTS_MAX) {
		reply_error(srv->lst, req, pr->id, GILD__V1__CODE__INVALID_ARGUMENT,
		    rc < 0    ? "malformed batch: not a valid gild.v1.Batch "
				"message"
		    : n == 0 ? "empty batch: it holds no request"
			     : "batch of %zu requests: at most %d",
		    n, GILD_BATCH_REQUESTS_MAX);
		nng_msg_free(msg);
		return;
	}
	if (listener_batch_begin(srv->lst, req, pr->id) != 0) {
		reply_error(srv->lst, req, pr->id,
		    GILD__V1__CODE__RESOURCE_EXHAUSTED, "server out of memory");
		nng_msg_free(msg);
		return;
	}
	for (p = pr->data; wire_next(&p, end, &f) == 1;) {
		parsed_request sub;
		listener_req *m;
		nng_msg *copy;

		if (f.number != GILD_F_BATCH_REQUESTS || f.type != WIRE_LEN)
			continue;
		/* Each gets its own copy: a call's job keeps its request. */
		if ((m = listener_batch_member(srv->lst, req)) == NULL) {
			log_error("out of memory: the rest of batch %" PRIu64
				  " is not answered",
			    pr->id);
			break;
		}
		if (nng_msg_alloc(&copy, f.len) != 0) {
			parse_request(f.data, f.len, srv->opts->max_message,
			    &sub);
			reply_error(srv->lst, m, sub.id,
			    GILD__V1__CODE__RESOURCE_EXHAUSTED,
			    "server out of memory");
			continue;
		}
		memcpy(nng_msg_body(copy), f.data, f.len);
		parse_request(nng_msg_body(copy), f.len,
		    srv->opts->max_message, &sub);
		dispatch(srv, m, copy, &sub, true);
	}
	listener_batch_end(srv->lst, req);
	nng_msg_free(msg);
}

/* Every request from the listener; takes msg, answers req once. */
static void
on_request(void *arg, listener_req *req, nng_msg *msg)
{
	server *srv = arg;
	parsed_request pr;

	parse_request(nng_msg_body(msg), nng_msg_len(msg),
	    srv->opts->max_message, &pr);
	if (srv->opts->token != NULL &&
	    !token_ok(srv->opts->token, pr.token, pr.token_len)) {
		reply_error(srv->lst, req, pr.id, GILD__V1__CODE__UNAUTHENTICATED,
		    "%s", pr.token == NULL ? "this server needs a token "
			  "(gild serve --token): none was sent"
					   : "wrong token");
		if (pr.body == BODY_CALL || pr.body == BODY_EXEC)
			count_refused(srv, &pr, GILD__V1__CODE__UNAUTHENTICATED);
		nng_msg_free(msg);
		return;
	}
	dispatch(srv, req, msg, &pr, false);
}

/* ---- worker events ---------------------------------------------------- */

static void
on_worker_ready(void *arg, int slot)
{
	server *srv = arg;

	srv->slot_gen[slot]++; /* a new process: the actors of the last are gone */
	srv->actors_dirty = true;
	sched_slot_ready(srv->sch, slot);
	if (!srv->announced_ready &&
	    sched_ready_slots(srv->sch) == supervisor_count(srv->sup)) {
		srv->announced_ready = true;
		if (srv->opts->free_threaded) {
			printf("gild: ready (%d workers, %d threads each)\n",
			    supervisor_count(srv->sup), srv->opts->threads);
			log_info("ready: %d free-threaded workers, %d threads "
				 "each", supervisor_count(srv->sup),
			    srv->opts->threads);
			if (supervisor_gil_enabled(srv->sup))
				log_warn("the workers' free-threaded Python has "
					 "its GIL enabled (see the worker's "
					 "warning above): each runs Python "
					 "on one thread at a time");
		} else {
			printf("gild: ready (%d workers)\n",
			    supervisor_count(srv->sup));
			log_info("ready: %d workers", supervisor_count(srv->sup));
		}
		fflush(stdout);
	}
	pump(srv);
}

static void
on_worker_retiring(void *arg, int slot)
{
	server *srv = arg;

	sched_slot_pause(srv->sch, slot);
}

static void
on_worker_lost(void *arg, int slot, const char *reason, bool all_read)
{
	server *srv = arg;
	job *ahead[SCHED_PIPELINE_MAX];
	size_t nahead = 0;
	job *j, *next;

	for (j = sched_slot_lost(srv->sch, slot); j != NULL; j = next) {
		sjob *sj = (sjob *) j;
		next = j->next;
		if (j->ahead && all_read) {
			/* Sent ahead and never started: it runs elsewhere. */
			ahead[nahead++] = j;
		} else if (sj->interrupt != 0) {
			job_end_interrupted(srv, sj);
		} else if (sj->retries_left > 0 && sj->st == NULL &&
			   sj->act == NULL && srv->state != SRV_STOPPING) {
			sj->retries_left--;
			log_call(LOG_INFO, j,
			    "worker %d died while running '%.*s' (%s): "
			    "retrying it, %" PRIu32 " retries left",
			    slot, (int) j->function_len, j->function, reason,
			    sj->retries_left);
			sched_requeue(srv->sch, j);
		} else {
			if (!sj->internal)
				log_call(LOG_WARN, j,
				    "'%.*s' ends with WORKER_LOST: worker %d "
				    "died while running it (%s)",
				    (int) j->function_len, j->function, slot,
				    reason);
			job_fail(srv, j, GILD__V1__CODE__WORKER_LOST,
			    "worker %d died while running '%.*s': %s", slot,
			    (int) j->function_len, j->function, reason);
		}
	}
	/* Back at the head of the queue in the order they came. */
	while (nahead > 0) {
		sjob *sj = (sjob *) ahead[--nahead];
		if (sj->interrupt != 0)
			job_end_interrupted(srv, sj);
		else
			sched_requeue(srv->sch, ahead[nahead]);
	}
	/* The actors it held are gone with it. */
	actor_slot_lost(srv, slot);
	check_drained(srv);
	pump(srv); /* other workers may take what waits */
}

/* A worker's stamp on a call it ran: its function's estimate learns. */
static void
on_worker_ran(void *arg, int slot, uint64_t job_id, uint32_t run_us)
{
	server *srv = arg;
	sjob *sj = running_job(srv, slot, job_id);

	if (sj != NULL && sj->j.pipelinable)
		svctime_note(srv->est, sj->j.function, sj->j.function_len,
		    run_us);
}

/* A take-back's answer: a call given back runs on a free worker, unless
 * it was stopped meanwhile (its client may have its answer already). */
static void
on_worker_taken_back(void *arg, int slot, uint64_t job_id, bool returned)
{
	server *srv = arg;
	sjob *sj = (sjob *) sched_taken_back(srv->sch, slot, job_id, returned);

	if (sj != NULL && sj->interrupt != 0)
		job_end_queued(srv, sj, sj->interrupt);
	pump(srv);
	check_drained(srv);
}

static void
on_worker_result(void *arg, int slot, uint64_t job_id,
    const uint8_t *fields, size_t len)
{
	server *srv = arg;
	nng_msg *m;
	job *j;

	if ((j = sched_complete(srv->sch, slot, job_id)) == NULL) {
		log_warn("worker %d answered unknown job %" PRIu64, slot,
		    job_id);
		return;
	}
	if (((sjob *) j)->act != NULL && ((sjob *) j)->kind != JK_CALL) {
		actor_job_result(srv, (sjob *) j, slot, fields, len);
	} else if (((sjob *) j)->interrupt != 0) {
		job_end_interrupted(srv, (sjob *) j);
	} else if (((sjob *) j)->internal) {
		job_free(j);
	} else if (((sjob *) j)->st != NULL) {
		/* A stream that failed before its first chunk. */
		wire_field f;
		job_answered((sjob *) j, fields_code(fields, len, false));
		if (wire_find(fields, len, GILD_F_REPLY_ERROR, &f) == 1 &&
		    f.type == WIRE_LEN)
			stream_finish(srv, ((sjob *) j)->st, f.data, f.len);
		else
			stream_end_error(srv, ((sjob *) j)->st,
			    GILD__V1__CODE__INTERNAL,
			    "the worker answered a stream with a single result");
		job_free(j);
	} else if (len > srv->opts->max_message) {
		job_fail(srv, j, GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    "result of '%.*s' is %zu bytes, over the server's "
		    "--max-message of %zu bytes",
		    (int) j->function_len, j->function, len,
		    srv->opts->max_message);
	} else if ((m = reply_start(j->request_id)) == NULL ||
		   nng_msg_append(m, fields, len) != 0) {
		nng_msg_free(m);
		job_fail(srv, j, GILD__V1__CODE__INTERNAL,
		    "server out of memory for the result");
	} else {
		/* The worker's result/error field is already the Reply's. */
		job_answered((sjob *) j, fields_code(fields, len, false));
		listener_reply(srv->lst, j->reply_to, m);
		job_free(j);
	}
	pump(srv);
	check_drained(srv);
}

static void
on_app_failed(void *arg, const char *message, const char *traceback)
{
	server *srv = arg;

	log_error("the app %s cannot be loaded: %s", srv->opts->app, message);
	if (traceback && *traceback)
		fprintf(stderr, "%s", traceback);
	srv->exit_code = 1;
	if (srv->state == SRV_RUNNING)
		srv->state = SRV_DRAINING;
	server_stop_workers(srv);
}

/* Exits the loop once nng has written the last replies out and the
 * clients have closed their connections (or after 2 s of waiting on
 * clients that do not read or stay connected). Meanwhile new calls are
 * refused as not started: a client that calls learns the server is going,
 * sends its calls elsewhere and closes its connection, so no call of its
 * can be in flight when the connection is cut (docs/reliability.md). */
static void
on_exit_timer(evutil_socket_t fd, short what, void *arg)
{
	server *srv = arg;
	struct timeval tv = {0, 10 * 1000};

	if ((listener_sending(srv->lst) > 0 ||
		listener_connections(srv->lst) > 0) &&
	    srv->exit_waits++ < 200) {
		evtimer_add(srv->exit_ev, &tv);
		return;
	}
	event_base_loopexit(srv->base, NULL);
}

static void
on_workers_stopped(void *arg)
{
	server *srv = arg;
	struct timeval tv = {0, 0};

	log_info("all workers stopped");
	evtimer_add(srv->exit_ev, &tv);
}

/* ---- stopping --------------------------------------------------------- */

static void
server_stop_workers(server *srv)
{
	job *j, *next;

	if (srv->state == SRV_STOPPING)
		return;
	srv->state = SRV_STOPPING;
	event_del(srv->drain_ev);
	for (j = sched_take_all(srv->sch); j != NULL; j = next) {
		next = j->next;
		if (j->slot < 0)
			job_fail(srv, j, GILD__V1__CODE__UNAVAILABLE,
			    "server stopped before the call ran");
		else
			job_fail(srv, j, GILD__V1__CODE__UNAVAILABLE,
			    "server stopped before '%.*s' finished",
			    (int) j->function_len, j->function);
	}
	actor_fail_all_waiting(srv, GILD__V1__CODE__UNAVAILABLE,
	    "server stopped before the call ran");
	supervisor_stop(srv->sup, 2000);
}

static void
on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	log_warn("drain timeout: stopping with calls still running");
	server_stop_workers(arg);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	server *srv = arg;
	struct timeval tv;

	if (srv->state != SRV_RUNNING) {
		log_warn("second signal: exiting now");
		event_base_loopexit(srv->base, NULL);
		return;
	}
	/* Accepted calls, queued or running, are finished (within the drain
	 * timeout); new ones get UNAVAILABLE. */
	log_info("%s: finishing %zu running and %zu queued calls, then stopping",
	    strsignal((int) sig), sched_running(srv->sch),
	    sched_queued(srv->sch));
	srv->state = SRV_DRAINING;
	tv.tv_sec = srv->opts->drain_ms / 1000;
	tv.tv_usec = (srv->opts->drain_ms % 1000) * 1000;
	evtimer_add(srv->drain_ev, &tv);
	check_drained(srv);
}

/* SIGHUP: reload the app, replacing workers one at a time. */
static void
on_sighup(evutil_socket_t sig, short what, void *arg)
{
	server *srv = arg;

	if (srv->state == SRV_RUNNING)
		supervisor_reload(srv->sup);
}

/* ---- setup ------------------------------------------------------------ */

/* nng 1.5.2's nng_close can deadlock now and then (nng issue #1543, fixed in
 * later releases). gild is exiting when it closes nng: if that takes more
 * than a few seconds, exit anyway with the status it was going to return. */
static void *
exit_watchdog(void *arg)
{
	sleep(5);
	log_warn("nng did not close within 5 s (a known nng 1.5.2 deadlock): "
		 "exiting anyway");
	_exit((int) (intptr_t) arg);
	return NULL;
}

static void
close_listener(listener *l, int exit_code)
{
	pthread_t t;

	if (l == NULL)
		return;
	if (pthread_create(&t, NULL, exit_watchdog,
		(void *) (intptr_t) exit_code) == 0)
		pthread_detach(t);
	listener_fini(l);
}

int
server_run(const server_opts *opts)
{
	server srv = {.opts = opts, .exit_code = 0};
	sup_config sc = {
	    .allow_pickle = opts->allow_pickle,
	    .worker_bin = opts->worker_bin,
	    .app = opts->app,
	    .workers = opts->workers,
	    .max_frame = 2 * opts->max_message + (1u << 20),
	    .max_jobs = opts->max_jobs,
	    .max_rss_kib = opts->max_rss_mib * 1024,
	    .memory_mib = opts->worker_memory_mib,
	    .use_template = !opts->spawn_exec,
	    .threads = opts->threads,
	};
	sup_events se = {
	    .ready = on_worker_ready,
	    .retiring = on_worker_retiring,
	    .lost = on_worker_lost,
	    .result = on_worker_result,
	    .chunk = on_worker_chunk,
	    .stream_end = on_worker_stream_end,
	    .ran = on_worker_ran,
	    .taken_back = on_worker_taken_back,
	    .failed = on_app_failed,
	    .stopped = on_workers_stopped,
	};
	char err[512], bound[512];
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &srv.started);
	signal(SIGPIPE, SIG_IGN);
	if ((srv.base = event_base_new()) == NULL) {
		log_error("cannot create the event loop");
		return 1;
	}
	srv.sigint_ev = evsignal_new(srv.base, SIGINT, on_signal, &srv);
	srv.sigterm_ev = evsignal_new(srv.base, SIGTERM, on_signal, &srv);
	srv.sighup_ev = evsignal_new(srv.base, SIGHUP, on_sighup, &srv);
	srv.drain_ev = evtimer_new(srv.base, on_drain_timeout, &srv);
	srv.exit_ev = evtimer_new(srv.base, on_exit_timer, &srv);
	srv.batch_ev = evtimer_new(srv.base, on_batch_timer, &srv);
	if (!srv.sigint_ev || !srv.sigterm_ev || !srv.sighup_ev ||
	    !srv.drain_ev || !srv.exit_ev || !srv.batch_ev ||
	    evsignal_add(srv.sigint_ev, NULL) != 0 ||
	    evsignal_add(srv.sigterm_ev, NULL) != 0 ||
	    evsignal_add(srv.sighup_ev, NULL) != 0) {
		log_error("cannot set up signal handling");
		srv.exit_code = 1;
		goto out;
	}
	if ((srv.slot_gen = calloc((size_t) opts->workers, sizeof(uint64_t))) ==
		NULL) {
		log_error("out of memory");
		srv.exit_code = 1;
		goto out;
	}
	if ((srv.metrics = metrics_new()) == NULL ||
	    svctime_init(&srv.est) != 0) {
		log_error("out of memory");
		srv.exit_code = 1;
		goto out;
	}
	if ((rc = sched_init(&srv.sch, opts->workers, opts->threads,
		 opts->max_queue)) != 0 ||
	    (rc = supervisor_init(&srv.sup, srv.base, &sc, &se, &srv)) != 0) {
		log_error("cannot set up: %s", strerror(-rc));
		srv.exit_code = 1;
		goto out;
	}
	sched_set_pipeline(srv.sch, opts->pipeline);
	/* Twice --max-message is read, so a request a little over the limit
	 * gets a clear error; past that nng drops the connection. */
	if (listener_init(&srv.lst, srv.base, 2 * opts->max_message,
		on_request, on_pipe_gone, &srv, err, sizeof(err)) != 0) {
		log_error("%s", err);
		srv.exit_code = 1;
		goto out;
	}
	for (size_t i = 0; i < opts->nlisten; i++) {
		if (listener_listen(srv.lst, opts->listen[i], opts->tls,
			bound, sizeof(bound), err, sizeof(err)) != 0) {
			log_error("%s", err);
			srv.exit_code = 1;
			goto out;
		}
		printf("gild: listening on %s\n", bound);
		log_info("listening on %s", bound);
	}
	if (opts->http != NULL) {
		static const http_routes routes = {http_ready,
		    http_status_json, http_metrics_text};
		if (http_open(&srv.http, srv.base, opts->http, &routes, &srv,
			bound, sizeof(bound), err, sizeof(err)) != 0) {
			log_error("%s", err);
			srv.exit_code = 1;
			goto out;
		}
		printf("gild: http on %s\n", bound);
		log_info("http probes and status on %s", bound);
	}
	fflush(stdout);
	/* Bound as the starting user (ports below 1024 need root); no
	 * worker has started, so they all start as --user. */
	if (opts->user != NULL && privs_needed(opts->user)) {
		/* The user's own ipc:// sockets: it can remove them at exit
		 * (in a sticky folder such as /tmp) and connect to them. */
		for (size_t i = 0; i < opts->nlisten; i++)
			if (strncmp(opts->listen[i], "ipc://", 6) == 0 &&
			    chown(opts->listen[i] + 6, opts->user->uid,
				opts->user->gid) == -1)
				log_warn("--user %s: cannot hand %s over: %s",
				    opts->user->name, opts->listen[i] + 6,
				    strerror(errno));
		if (privs_drop(opts->user, err, sizeof(err)) != 0) {
			log_error("%s", err);
			srv.exit_code = 1;
			goto out;
		}
		log_info("running as user %s (uid %d, gid %d)", opts->user->name,
		    (int) opts->user->uid, (int) opts->user->gid);
		if (access(opts->worker_bin, X_OK) != 0) {
			log_error("--user %s cannot run the worker program %s: "
				  "%s (it and its folders must be executable "
				  "by that user)",
			    opts->user->name, opts->worker_bin, strerror(errno));
			srv.exit_code = 1;
			goto out;
		}
		if (opts->app[0] == '/' && access(opts->app, R_OK) != 0) {
			log_error("--user %s cannot read the app %s: %s",
			    opts->user->name, opts->app, strerror(errno));
			srv.exit_code = 1;
			goto out;
		}
	}
	if ((rc = supervisor_start(srv.sup)) != 0) {
		log_error("cannot start workers (%s): %s", opts->worker_bin,
		    strerror(-rc));
		srv.exit_code = 1;
		goto out;
	}
	log_info("serving %s with %d workers", opts->app, opts->workers);
	event_base_dispatch(srv.base);
out:
	http_close(srv.http);
	supervisor_fini(srv.sup); /* no worker may outlive gild */
	close_listener(srv.lst, srv.exit_code);
	/* Jobs still queued or running belong to nobody now. */
	if (srv.sch) {
		for (job *j = sched_take_all(srv.sch), *next; j; j = next) {
			next = j->next;
			job_free(j);
		}
	}
	sched_fini(srv.sch);
	svctime_fini(srv.est);
	while (srv.streams != NULL)
		stream_free(&srv.streams, srv.streams);
	actor_free_all(&srv);
	free(srv.slot_gen);
	metrics_free(srv.metrics);
	if (srv.sigint_ev)
		event_free(srv.sigint_ev);
	if (srv.sigterm_ev)
		event_free(srv.sigterm_ev);
	if (srv.sighup_ev)
		event_free(srv.sighup_ev);
	if (srv.drain_ev)
		event_free(srv.drain_ev);
	if (srv.exit_ev)
		event_free(srv.exit_ev);
	if (srv.batch_ev)
		event_free(srv.batch_ev);
	event_base_free(srv.base);
	if (srv.exit_code == 0)
		log_info("stopped");
	return srv.exit_code;
}
