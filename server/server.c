/* The gild front end: requests in, jobs to workers, replies out. */
#include "server.h"

#include "gild.pb-c.h"
#include "listener.h"
#include "log.h"
#include "parse.h"
#include "sched.h"
#include "supervisor.h"
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

/* Reply field numbers, as in gild.proto. */
enum { REPLY_ID = 1 };

typedef enum srv_state { SRV_RUNNING, SRV_DRAINING, SRV_STOPPING } srv_state;

typedef struct server {
	const server_opts *opts;
	struct event_base *base;
	listener *lst;
	sched *sch;
	supervisor *sup;
	struct event *sigint_ev, *sigterm_ev, *sighup_ev, *drain_ev, *exit_ev;
	srv_state state;
	int exit_code;
	bool announced_ready;
	int exit_waits;
	uint64_t next_job_id;
	uint64_t calls_total;
	struct timespec started;
} server;

/* A job as the server keeps it: the scheduler's part first (the scheduler
 * hands back job pointers), then what only the server needs. */
typedef struct sjob {
	job j;
	server *srv;
	struct event *timer;   /* the deadline, then the --kill-grace wait */
	uint32_t timeout_ms;   /* 0: no deadline */
	uint32_t retries_left; /* @gild.function(retries=N) */
	int interrupt;         /* DEADLINE_EXCEEDED or CANCELLED once stopped */
	bool killed;           /* its worker was killed after --kill-grace */
} sjob;

/* ---- replies ---------------------------------------------------------- */

/* A new reply message with Reply.id set, the body's fields to be appended.
 * NULL when out of memory. */
static nng_msg *
reply_start(uint64_t request_id)
{
	uint8_t buf[1 + WIRE_MAX_VARINT];
	size_t n = 0;
	nng_msg *m;

	if (nng_msg_alloc(&m, 0) != 0)
		return NULL;
	if (request_id != 0) {
		n += wire_put_tag(buf, REPLY_ID, WIRE_VARINT);
		n += wire_put_varint(buf + n, request_id);
		if (nng_msg_append(m, buf, n) != 0) {
			nng_msg_free(m);
			return NULL;
		}
	}
	return m;
}

/* Sends Reply{id, <r's body>} as the one reply to `to`. r->id is
 * overwritten. */
static void
reply_send(server *srv, listener_req *to, uint64_t request_id,
    Gild__V1__Reply *r)
{
	size_t len;
	nng_msg *m;

	r->id = request_id;
	len = gild__v1__reply__get_packed_size(r);
	if (nng_msg_alloc(&m, len) != 0) {
		log_error("out of memory: reply to request %" PRIu64 " lost",
		    request_id);
		return;
	}
	gild__v1__reply__pack(r, nng_msg_body(m));
	listener_reply(srv->lst, to, m);
}

/* Sends Reply{id, error{code, message}} as the one reply to `to`. */
static void
reply_verror(server *srv, listener_req *to, uint64_t request_id,
    Gild__V1__Code code, const char *fmt, va_list ap)
{
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Error e = GILD__V1__ERROR__INIT;
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	e.code = code;
	e.message = msg;
	r.body_case = GILD__V1__REPLY__BODY_ERROR;
	r.error = &e;
	reply_send(srv, to, request_id, &r);
}

static void
reply_error(server *srv, listener_req *to, uint64_t request_id,
    Gild__V1__Code code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
reply_error(server *srv, listener_req *to, uint64_t request_id,
    Gild__V1__Code code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_verror(srv, to, request_id, code, fmt, ap);
	va_end(ap);
}

/* ---- jobs ------------------------------------------------------------- */

static void
job_free(job *j)
{
	sjob *sj = (sjob *) j;

	if (sj->timer != NULL)
		event_free(sj->timer);
	nng_msg_free(j->req);
	free(sj);
}

/* Ends j with an error reply and frees it. */
static void
job_fail(server *srv, job *j, Gild__V1__Code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
job_fail(server *srv, job *j, Gild__V1__Code code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_verror(srv, j->reply_to, j->request_id, code, fmt, ap);
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

/* Stops a running job: the worker raises DeadlineInterrupt or
 * CancelInterrupt in it, and if it has not ended after --kill-grace the
 * worker is killed. */
static void
job_interrupt(server *srv, sjob *sj, int code)
{
	if (sj->interrupt != 0)
		return; /* already on its way out */
	sj->interrupt = code;
	log_debug("interrupting job %" PRIu64 " ('%.*s') on worker %d: %s",
	    sj->j.id, (int) sj->j.function_len, sj->j.function, sj->j.slot,
	    code == GILD__V1__CODE__CANCELLED ? "cancelled" : "deadline");
	if (supervisor_interrupt(srv->sup, sj->j.slot, sj->j.id, code) != 0 ||
	    job_timer_arm(srv, sj, (uint32_t) srv->opts->kill_grace_ms) != 0)
		/* Cannot ask or cannot wait: the worker goes now. */
		supervisor_kill(srv->sup, sj->j.slot,
		    "cannot interrupt its call");
}

/* Ends a job that has not run: its deadline passed in the queue, or it was
 * cancelled there. */
static void
job_end_queued(server *srv, sjob *sj, Gild__V1__Code code, const char *why)
{
	sched_remove_queued(srv->sch, &sj->j);
	if (code == GILD__V1__CODE__DEADLINE_EXCEEDED)
		job_fail(srv, &sj->j, code,
		    "deadline of %" PRIu32 " ms passed before '%.*s' could "
		    "run: every worker was busy (%zu calls queued)",
		    sj->timeout_ms, (int) sj->j.function_len, sj->j.function,
		    sched_queued(srv->sch));
	else
		job_fail(srv, &sj->j, code, "%s", why);
}

static void check_drained(server *srv);

/* The deadline of a job passed, or the --kill-grace after its interrupt. */
static void
on_job_timer(evutil_socket_t fd, short what, void *arg)
{
	sjob *sj = arg;
	server *srv = sj->srv;
	char reason[200];

	if (sj->j.state == JOB_QUEUED) {
		job_end_queued(srv, sj, GILD__V1__CODE__DEADLINE_EXCEEDED, NULL);
		check_drained(srv);
	} else if (sj->j.state == JOB_RUNNING && sj->interrupt == 0) {
		job_interrupt(srv, sj, GILD__V1__CODE__DEADLINE_EXCEEDED);
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

/* Hands queued jobs to free workers. */
static void
pump(server *srv)
{
	job *j;

	while ((j = sched_next(srv->sch)) != NULL) {
		int slot = j->slot;
		if (supervisor_send(srv->sup, slot, j->id, j->call,
			j->call_len) != 0) {
			sched_complete(srv->sch, slot, j->id);
			job_fail(srv, j, GILD__V1__CODE__INTERNAL,
			    "could not send the call to worker %d", slot);
		}
	}
}

/* Draining and nothing left to run: the workers can go. */
static void
check_drained(server *srv)
{
	if (srv->state == SRV_DRAINING && sched_running(srv->sch) == 0 &&
	    sched_queued(srv->sch) == 0)
		server_stop_workers(srv);
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
	reply_error(srv, req, id, GILD__V1__CODE__NOT_FOUND,
	    "function '%.*s' not found in app '%s' (exported: %s)",
	    (int) (len > 200 ? 200 : len), name, srv->opts->app, list);
}

/* Takes msg. */
static void
on_call(server *srv, listener_req *req, nng_msg *msg, const parsed_request *pr)
{
	sup_function_options fo;
	sjob *sj;
	job *j;

	if (!known_function(srv, pr->function, pr->function_len)) {
		not_found(srv, req, pr->id, pr->function, pr->function_len);
		goto done;
	}
	if ((sj = calloc(1, sizeof(*sj))) == NULL) {
		reply_error(srv, req, pr->id, GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    "server out of memory");
		goto done;
	}
	j = &sj->j;
	sj->srv = srv;
	fo = supervisor_function_options(srv->sup, pr->function,
	    pr->function_len);
	sj->timeout_ms = pr->timeout_ms    ? pr->timeout_ms
			 : fo.timeout_ms   ? fo.timeout_ms
					   : srv->opts->default_timeout_ms;
	sj->retries_left = fo.retries;
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
		free(sj);
		reply_error(srv, req, pr->id, GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    "server out of memory");
		goto done;
	}
	if (sched_submit(srv->sch, j) != 0) {
		if (sj->timer != NULL)
			event_free(sj->timer);
		free(sj);
		reply_error(srv, req, pr->id, GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    "queue full: %zu calls are waiting (--max-queue)",
		    sched_queued(srv->sch));
		goto done;
	}
	srv->calls_total++;
	pump(srv);
	return;
done:
	nng_msg_free(msg);
}

static void
on_cancel(server *srv, listener_req *req, const parsed_request *pr)
{
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Value v = GILD__V1__VALUE__INIT;
	job *j;

	j = sched_find(srv->sch, listener_req_pipe(req), pr->cancel_target);
	if (j != NULL && j->state == JOB_QUEUED) {
		job_end_queued(srv, (sjob *) j, GILD__V1__CODE__CANCELLED,
		    "cancelled by the client before it ran");
		check_drained(srv);
	} else if (j != NULL) {
		job_interrupt(srv, (sjob *) j, GILD__V1__CODE__CANCELLED);
	}
	/* The Cancel itself is answered with whether the call was found. */
	v.kind_case = GILD__V1__VALUE__KIND_BOOL_VALUE;
	v.bool_value = j != NULL;
	r.body_case = GILD__V1__REPLY__BODY_RESULT;
	r.result = &v;
	reply_send(srv, req, pr->id, &r);
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
		next = j->next;
		job_fail(srv, j, GILD__V1__CODE__CANCELLED,
		    "the client disconnected before the call ran");
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
	if (dropped + interrupted > 0)
		log_info("client connection %" PRIu32 " closed: %zu queued "
			 "calls dropped, %zu running calls cancelled",
		    pipe, dropped, interrupted);
	check_drained(srv);
}

static double
uptime(const server *srv)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double) (now.tv_sec - srv->started.tv_sec) +
	       (double) (now.tv_nsec - srv->started.tv_nsec) / 1e9;
}

static void
on_status(server *srv, listener_req *req, uint64_t id)
{
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Status st = GILD__V1__STATUS__INIT;
	int n = supervisor_count(srv->sup);
	Gild__V1__WorkerStatus ws[n], *wp[n];
	const char *pyver = supervisor_python_version(srv->sup);

	for (int i = 0; i < n; i++) {
		sup_worker_info info;
		supervisor_info(srv->sup, i, &info);
		gild__v1__worker_status__init(&ws[i]);
		ws[i].slot = (uint32_t) i;
		ws[i].pid = (int32_t) info.pid;
		ws[i].state = (char *) (sched_slot_running(srv->sch, i) > 0
					    ? "busy"
					    : info.state);
		ws[i].jobs_done = info.jobs_done;
		ws[i].restarts = info.restarts;
		ws[i].recycles = info.recycles;
		wp[i] = &ws[i];
	}
	st.server_version = GILD_VERSION;
	st.app = (char *) srv->opts->app;
	st.runtime = "process";
	st.functions = (char **) supervisor_functions(srv->sup, &st.n_functions);
	st.n_workers = (size_t) n;
	st.workers = wp;
	st.queued = sched_queued(srv->sch);
	st.in_flight = sched_running(srv->sch);
	st.calls_total = srv->calls_total;
	st.uptime_s = uptime(srv);
	st.python_version = (char *) (pyver ? pyver : "");
	st.state = (char *) (srv->state == SRV_RUNNING ? "serving" : "draining");
	r.body_case = GILD__V1__REPLY__BODY_STATUS;
	r.status = &st;
	reply_send(srv, req, id, &r);
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
	reply_send(srv, req, pr->id, &r);
}

/* Every request from the listener; takes msg, answers req once. */
static void
on_request(void *arg, listener_req *req, nng_msg *msg)
{
	server *srv = arg;
	parsed_request pr;

	parse_request(nng_msg_body(msg), nng_msg_len(msg),
	    srv->opts->max_message, &pr);
	if (pr.code != 0) {
		reply_error(srv, req, pr.id, (Gild__V1__Code) pr.code, "%s",
		    pr.message);
	} else if (srv->state != SRV_RUNNING && pr.body == BODY_CALL) {
		reply_error(srv, req, pr.id, GILD__V1__CODE__UNAVAILABLE,
		    "server is shutting down");
	} else {
		switch (pr.body) {
		case BODY_CALL:
			on_call(srv, req, msg, &pr);
			return; /* on_call took msg */
		case BODY_CANCEL:
			on_cancel(srv, req, &pr);
			break;
		case BODY_STATUS:
			on_status(srv, req, pr.id);
			break;
		default:
			on_ping(srv, req, &pr);
			break;
		}
	}
	nng_msg_free(msg);
}

/* ---- worker events ---------------------------------------------------- */

static void
on_worker_ready(void *arg, int slot)
{
	server *srv = arg;

	sched_slot_ready(srv->sch, slot);
	if (!srv->announced_ready &&
	    sched_ready_slots(srv->sch) == supervisor_count(srv->sup)) {
		srv->announced_ready = true;
		printf("gild: ready (%d workers)\n", supervisor_count(srv->sup));
		fflush(stdout);
		log_info("ready: %d workers", supervisor_count(srv->sup));
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
on_worker_lost(void *arg, int slot, const char *reason)
{
	server *srv = arg;
	job *j, *next;

	for (j = sched_slot_lost(srv->sch, slot); j != NULL; j = next) {
		sjob *sj = (sjob *) j;
		next = j->next;
		if (sj->interrupt != 0) {
			job_end_interrupted(srv, sj);
		} else if (sj->retries_left > 0 && srv->state != SRV_STOPPING) {
			sj->retries_left--;
			log_info("worker %d died while running '%.*s' (%s): "
				 "retrying it, %" PRIu32 " retries left",
			    slot, (int) j->function_len, j->function, reason,
			    sj->retries_left);
			sched_requeue(srv->sch, j);
		} else {
			job_fail(srv, j, GILD__V1__CODE__WORKER_LOST,
			    "worker %d died while running '%.*s': %s", slot,
			    (int) j->function_len, j->function, reason);
		}
	}
	check_drained(srv);
	pump(srv); /* other workers may take what waits */
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
	if (((sjob *) j)->interrupt != 0) {
		job_end_interrupted(srv, (sjob *) j);
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

/* Exits the loop once nng has written the last replies out (or after 2 s
 * of waiting on clients that do not read). */
static void
on_exit_timer(evutil_socket_t fd, short what, void *arg)
{
	server *srv = arg;
	struct timeval tv = {0, 10 * 1000};

	if (listener_sending(srv->lst) > 0 && srv->exit_waits++ < 200) {
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
	    .worker_bin = opts->worker_bin,
	    .app = opts->app,
	    .workers = opts->workers,
	    .max_frame = 2 * opts->max_message + (1u << 20),
	    .max_jobs = opts->max_jobs,
	    .max_rss_kib = opts->max_rss_mib * 1024,
	    .memory_mib = opts->worker_memory_mib,
	    .use_template = !opts->spawn_exec,
	};
	sup_events se = {
	    .ready = on_worker_ready,
	    .retiring = on_worker_retiring,
	    .lost = on_worker_lost,
	    .result = on_worker_result,
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
	if (!srv.sigint_ev || !srv.sigterm_ev || !srv.sighup_ev ||
	    !srv.drain_ev || !srv.exit_ev ||
	    evsignal_add(srv.sigint_ev, NULL) != 0 ||
	    evsignal_add(srv.sigterm_ev, NULL) != 0 ||
	    evsignal_add(srv.sighup_ev, NULL) != 0) {
		log_error("cannot set up signal handling");
		srv.exit_code = 1;
		goto out;
	}
	if ((rc = sched_init(&srv.sch, opts->workers, 1, opts->max_queue)) != 0 ||
	    (rc = supervisor_init(&srv.sup, srv.base, &sc, &se, &srv)) != 0) {
		log_error("cannot set up: %s", strerror(-rc));
		srv.exit_code = 1;
		goto out;
	}
	/* Twice --max-message is read, so a request a little over the limit
	 * gets a clear error; past that nng drops the connection. */
	if (listener_init(&srv.lst, srv.base, 2 * opts->max_message,
		on_request, on_pipe_gone, &srv, err, sizeof(err)) != 0) {
		log_error("%s", err);
		srv.exit_code = 1;
		goto out;
	}
	for (size_t i = 0; i < opts->nlisten; i++) {
		if (listener_listen(srv.lst, opts->listen[i], bound,
			sizeof(bound), err, sizeof(err)) != 0) {
			log_error("%s", err);
			srv.exit_code = 1;
			goto out;
		}
		printf("gild: listening on %s\n", bound);
		log_info("listening on %s", bound);
	}
	fflush(stdout);
	if ((rc = supervisor_start(srv.sup)) != 0) {
		log_error("cannot start workers (%s): %s", opts->worker_bin,
		    strerror(-rc));
		srv.exit_code = 1;
		goto out;
	}
	log_info("serving %s with %d workers", opts->app, opts->workers);
	event_base_dispatch(srv.base);
out:
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
	event_base_free(srv.base);
	if (srv.exit_code == 0)
		log_info("stopped");
	return srv.exit_code;
}
