/* job: a call as the front end keeps it (front.h's sjob), from the moment
 * it is accepted to its one reply: the steps its state machine (call.c)
 * orders, its timer, its error replies and its end. */
#include "job.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codes.h"
#include "gild_limits.h"
#include "log.h"
#include "metrics.h"
#include "reply.h"
#include "streaming.h"

/* Seconds since t (CLOCK_MONOTONIC). */
double
seconds_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double) (now.tv_sec - t->tv_sec) +
	       (double) (now.tv_nsec - t->tv_nsec) / 1e9;
}

/* The name a call is counted under in /metrics (see job_count): *len
 * set; NULL for "(unknown)". */
static const char *
count_name(server *srv, bool exec, bool method, const char *cls,
    const char *fn, size_t len, size_t *n)
{
	*n = 0;
	if (exec) {
		*n = len;
		return fn;
	}
	if (!method || cls != NULL)
		return supervisor_reported_name(srv->sup, method ? cls : NULL,
		    fn, len, n);
	return NULL;
}

/* count_name of sj, a call or an exec. */
static const char *
job_name(sjob *sj, size_t *n)
{
	return count_name(sj->srv, sj->kind == JK_EXEC, sj->act != NULL,
	    sj->act != NULL ? actor_class(sj->act) : NULL, sj->j.function,
	    sj->j.function_len, n);
}

void
job_count(server *srv, bool exec, bool method, const char *cls,
    const char *fn, size_t len, int code, double seconds)
{
	size_t n;
	const char *name = count_name(srv, exec, method, cls, fn, len, &n);

	metrics_call(srv->metrics, name, n, code, seconds);
}

void
job_count_start(server *srv, sjob *sj, size_t batch)
{
	const char *name;
	size_t n;

	if (sj->kind != JK_CALL && sj->kind != JK_EXEC)
		return;
	name = job_name(sj, &n);
	if (!sj->wait_counted) {
		sj->wait_counted = true;
		metrics_wait(srv->metrics, name, n, seconds_since(&sj->arrived));
	}
	if (batch > 0)
		metrics_batch(srv->metrics, name, n, batch);
}

/* A log line about one call, with its request id, function, connection
 * and trace context as fields. */
static void log_call(enum log_level level, const job *j, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/* A call's trace context as log fields: *n of them put at f (room for
 * two), their text in tp and ts. */
typedef struct trace_text {
	char tp[GILD_TRACEPARENT_LEN + 1];
	char ts[GILD_TRACESTATE_MAX + 1];
} trace_text;

static size_t
trace_log_fields(const sjob *sj, log_field *f, trace_text *t)
{
	const trace_fields *tf = &sj->trace_fields;
	size_t n = 0;

	if (sj->trace == NULL)
		return 0;
	snprintf(t->tp, sizeof(t->tp), "%.*s", (int) tf->parent_len,
	    tf->parent);
	f[n++] = LOG_STR("traceparent", t->tp);
	if (tf->state != NULL) {
		snprintf(t->ts, sizeof(t->ts), "%.*s", (int) tf->state_len,
		    tf->state);
		f[n++] = LOG_STR("tracestate", t->ts);
	}
	return n;
}

static void
log_call(enum log_level level, const job *j, const char *fmt, ...)
{
	char fn[256], msg[1024];
	log_field f[5];
	trace_text t;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(fn, sizeof(fn), "%.*s", (int) j->function_len, j->function);
	f[0] = LOG_NUM("request_id", j->request_id);
	f[1] = LOG_STR("function", fn);
	f[2] = LOG_NUM("connection", j->pipe);
	log_event(level, f, 3 + trace_log_fields(sjob_of((job *) j), f + 3, &t),
	    "%s", msg);
}

/* The --slow-ms line: which call, how it ended, how long it took. */
static void
log_slow(const sjob *sj, double took)
{
	const char *code = codes_name(sj->end_code);
	char fn[256];
	log_field f[7];
	trace_text t;

	snprintf(fn, sizeof(fn), "%.*s", (int) sj->j.function_len,
	    sj->j.function);
	f[0] = LOG_NUM("request_id", sj->j.request_id);
	f[1] = LOG_STR("function", fn);
	f[2] = LOG_STR("code", code != NULL ? code : "UNKNOWN");
	f[3] = LOG_NUM("duration_ms", took * 1e3);
	f[4] = LOG_NUM("connection", sj->j.pipe);
	log_event(LOG_WARN, f, 5 + trace_log_fields(sj, f + 5, &t),
	    "slow call: '%s' took %.0f ms (--slow-ms %" PRIu32 ")", fn,
	    took * 1e3, sj->srv->opts->slow_ms);
}

void
job_free(job *j)
{
	sjob *sj = sjob_of(j);

	if (sj->call.answered && (sj->kind == JK_CALL || sj->kind == JK_EXEC)) {
		double took = seconds_since(&sj->arrived);
		job_count(sj->srv, sj->kind == JK_EXEC, sj->act != NULL,
		    sj->act != NULL ? actor_class(sj->act) : NULL, j->function,
		    j->function_len, sj->end_code, took);
		if (sj->srv->opts->slow_ms != 0 &&
		    took * 1e3 >= sj->srv->opts->slow_ms)
			log_slow(sj, took);
	}
	if (sj->timer != NULL)
		event_free(sj->timer);
	if (sj->act != NULL)
		actor_job_freed(sj->srv, sj->act, j);
	nng_msg_free(j->req);
	free(sj->stop_traceback);
	free(sj);
}

/* The one reply of sj, an error (a stream: its end, after the chunks
 * sent); the caller had call_on or call_fail say so (step.answer). */
static void
job_reply_verror(server *srv, sjob *sj, int code, const char *fmt,
    va_list ap)
{
	sj->end_code = code;
	if (sj->st != NULL) {
		char msg[1024];
		vsnprintf(msg, sizeof(msg), fmt, ap);
		streaming_end_error(srv, sj->st, code, msg);
	} else {
		reply_verror_tb(srv->lst, sj->j.reply_to, sj->j.request_id,
		    code, sj->stop_traceback, fmt, ap);
	}
}

void
job_reply_error(server *srv, sjob *sj, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	job_reply_verror(srv, sj, code, fmt, ap);
	va_end(ap);
}

void
job_fail(server *srv, job *j, Gild__V1__Code code, const char *fmt, ...)
{
	sjob *sj = sjob_of(j);
	va_list ap;

	if (call_fail(&sj->call).answer) {
		va_start(ap, fmt);
		job_reply_verror(srv, sj, code, fmt, ap);
		va_end(ap);
	}
	job_free(j);
}

static void on_job_timer(evutil_socket_t fd, short what, void *arg);

/* (Re)arms sj's timer to fire after ms. Returns 0 or -1. */
int
job_timer_arm(server *srv, sjob *sj, uint32_t ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (sj->timer == NULL &&
	    (sj->timer = evtimer_new(srv->base, on_job_timer, sj)) == NULL)
		return -1;
	return evtimer_add(sj->timer, &tv);
}

void
job_counts(const server *srv, uint64_t *queued, uint64_t *in_flight)
{
	size_t ahead = sched_ahead(srv->sch);

	*queued = sched_queued(srv->sch) + ahead;
	*in_flight = sched_running(srv->sch) - ahead;
}

/* Why a call ends without having run: its deadline passed while it waited
 * (DEADLINE_EXCEEDED), or its client cancelled it (CANCELLED). */
static const char *
unstarted_why(const server *srv, const sjob *sj, int code, char *buf,
    size_t len)
{
	uint64_t queued, in_flight;

	if (code != GILD__V1__CODE__DEADLINE_EXCEEDED)
		return "cancelled by the client before it ran";
	job_counts(srv, &queued, &in_flight);
	snprintf(buf, len,
	    "deadline of %" PRIu32 " ms passed before '%.*s' could run: "
	    "every worker was busy (%" PRIu64 " calls queued)",
	    sj->timeout_ms, (int) sj->j.function_len, sj->j.function, queued);
	return buf;
}

/* CA_INTERRUPT: the worker raises DeadlineInterrupt or CancelInterrupt in
 * the call, and if it has not ended after --kill-grace the worker is
 * killed. One sent ahead has not started: the worker will skip it, and
 * its client is told now (st.answer), as for a call still queued. */
static void
job_interrupt(server *srv, sjob *sj, call_step st)
{
	char why[256];

	if (st.answer) {
		sj->end_code = st.code;
		reply_error(srv->lst, sj->j.reply_to, sj->j.request_id,
		    st.code, "%s",
		    unstarted_why(srv, sj, st.code, why, sizeof(why)));
	}
	log_call(LOG_DEBUG, &sj->j, "interrupting '%.*s' on worker %d: %s",
	    (int) sj->j.function_len, sj->j.function, sj->j.slot,
	    st.code == GILD__V1__CODE__CANCELLED ? "cancelled" : "deadline");
	if (supervisor_interrupt(srv->sup, sj->j.slot, sj->j.id, st.code) !=
		0 ||
	    job_timer_arm(srv, sj, (uint32_t) srv->opts->kill_grace_ms) != 0)
		/* Cannot ask or cannot wait: the worker goes now. */
		supervisor_kill(srv->sup, sj->j.slot,
		    "cannot interrupt its call");
}

/* The message of a call that ends with st (CA_FAIL or CA_DROP) on event ev,
 * having been in state `was`, into buf. */
static const char *
job_end_why(server *srv, sjob *sj, call_event ev, call_state was,
    call_step st, const char *worker_why, char *buf, size_t len)
{
	const job *j = &sj->j;
	char how[160] = "";

	if (ev == CE_STOP)
		snprintf(buf, len, was == CALL_WAITING || was == CALL_QUEUED
				       ? "server stopped before the call ran"
				       : "server stopped before '%.*s' finished",
		    (int) j->function_len, j->function);
	else if (st.action == CA_DROP && ev == CE_GONE)
		snprintf(buf, len, "the client disconnected before the call ran");
	else if (st.action == CA_DROP)
		return unstarted_why(srv, sj, st.code, buf, len);
	else if (ev == CE_SEND_FAILED)
		snprintf(buf, len, "could not send the call to worker %d",
		    j->slot);
	else if (was == CALL_STOPPING || was == CALL_KILLING) {
		if (st.killed)
			snprintf(how, sizeof(how),
			    "; it did not stop within --kill-grace (%d ms), so "
			    "its worker was replaced",
			    srv->opts->kill_grace_ms);
		if (st.code == GILD__V1__CODE__DEADLINE_EXCEEDED)
			snprintf(buf, len,
			    "'%.*s' exceeded its deadline of %" PRIu32
			    " ms and was interrupted%s",
			    (int) j->function_len, j->function, sj->timeout_ms,
			    how);
		else
			snprintf(buf, len, "'%.*s' was cancelled while it ran%s%s%s",
			    (int) j->function_len, j->function,
			    sj->stop_why != NULL ? ": " : "",
			    sj->stop_why != NULL ? sj->stop_why : "", how);
	} else if (ev == CE_LOST)
		snprintf(buf, len, "worker %d died while running '%.*s': %s",
		    j->slot, (int) j->function_len, j->function,
		    worker_why != NULL ? worker_why : "unknown");
	else
		snprintf(buf, len, "'%.*s' ended", (int) j->function_len,
		    j->function);
	return buf;
}

call_step
job_step(server *srv, sjob *sj, call_event ev, unsigned facts,
    const char *why)
{
	job *j = &sj->j;
	call_state was = sj->call.state;
	call_step st = call_on(&sj->call, ev,
	    facts | (j->ahead ? CF_AHEAD : 0u));
	actor *created = NULL;
	char msg[1024], reason[256];

	switch (st.action) {
	case CA_NONE:
	case CA_REPLY:
		return st;
	case CA_INTERRUPT:
		job_interrupt(srv, sj, st);
		return st;
	case CA_WAIT:
		/* Still waiting in the worker behind other calls: it ends as
		 * soon as it starts, so there is nothing to kill yet. */
		if (job_timer_arm(srv, sj, (uint32_t) srv->opts->kill_grace_ms) !=
		    0)
			supervisor_kill(srv->sup, j->slot,
			    "cannot wait for an interrupted call");
		return st;
	case CA_KILL:
		snprintf(reason, sizeof(reason),
		    "'%.*s' did not stop within --kill-grace (%d ms) after it "
		    "was %s",
		    (int) j->function_len, j->function,
		    srv->opts->kill_grace_ms,
		    sj->call.stop_code == GILD__V1__CODE__CANCELLED
			? "cancelled"
			: "interrupted at its deadline");
		/* Its worker's death (CE_LOST) ends it. */
		supervisor_kill(srv->sup, j->slot, reason);
		return st;
	case CA_RETRY:
		log_call(LOG_INFO, j,
		    "worker %d died while running '%.*s' (%s): retrying it, "
		    "%" PRIu32 " retries left",
		    j->slot, (int) j->function_len, j->function,
		    why != NULL ? why : "unknown", sj->call.retries_left);
		sched_requeue(srv->sch, j);
		return st;
	case CA_REQUEUE:
		sched_requeue(srv->sch, j);
		return st;
	case CA_DROP:
		if (j->state == JOB_QUEUED)
			sched_remove_queued(srv->sch, j);
		else if (j->state == JOB_NEW && sj->act != NULL)
			actor_unlink(sj->act, j->pipe, j->request_id);
		if (sj->kind == JK_ACTOR_NEW)
			created = sj->act; /* never created */
		break;
	case CA_FAIL:
		if (ev == CE_LOST && was == CALL_SENT && !sj->call.internal)
			log_call(LOG_WARN, j,
			    "'%.*s' ends with WORKER_LOST: worker %d died while "
			    "running it (%s)",
			    (int) j->function_len, j->function, j->slot,
			    why != NULL ? why : "unknown");
		break;
	default:
		break;
	}
	if (st.answer)
		job_reply_error(srv, sj, st.code, "%s",
		    job_end_why(srv, sj, ev, was, st, why, msg, sizeof(msg)));
	job_free(j);
	if (created != NULL)
		actor_ctor_dropped(srv, created);
	return st;
}

/* Its deadline passed, or the --kill-grace after it was asked to stop. */
static void
on_job_timer(evutil_socket_t fd, short what, void *arg)
{
	sjob *sj = arg;

	job_step(sj->srv, sj, CE_TIMER, 0, NULL);
}

sjob *
job_running(server *srv, int slot, uint64_t job_id)
{
	for (job *j = sched_slot_jobs(srv->sch, slot); j != NULL; j = j->next)
		if (j->id == job_id)
			return sjob_of(j);
	return NULL;
}
