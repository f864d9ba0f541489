/* server: the front end's loop and what it owns. Requests come in through
 * the listener (request.c), workers' answers through the supervisor
 * (the worker events here); after each pass of the loop queued calls go to
 * free workers (pump); signals drain it, reload the app, stop it. */
#include "front.h"
#include "job.h"
#include "request.h"
#include "status.h"
#include "streaming.h"

#include "actor.h"
#include "applog.h"
#include "fields.h"
#include "gild.pb-c.h"
#include "gild_limits.h"
#include "http.h"
#include "listener.h"
#include "log.h"
#include "privs.h"
#include "reply.h"
#include "replymsg.h"
#include "sched.h"
#include "shm.h"
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
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static void server_stop_workers(server *srv);

/* ---- the loop: queued calls to workers -------------------------------- */

static uint64_t
elapsed_us(const struct timespec *since)
{
	double s = seconds_since(since);

	return s > 0 ? (uint64_t) (s * 1e6) : 0;
}

/* Whether the batch sj would start should wait for more calls: it is not
 * full, and sj came when every worker was busy (so more are likely behind
 * it), and it has not waited batch_wait_us yet. A call that found a worker
 * free never waits: batching adds no delay to an idle server. An actor's
 * batch (a group) never waits: it is what its actor had queued. */
static bool
batch_should_wait(server *srv, sjob *sj)
{
	uint64_t waited;
	struct timeval tv;

	if (sj->j.group != 0 ||
	    sched_count_same(srv->sch, &sj->j) + 1 >= sj->j.batch ||
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
	out->actor_id = sj->act != NULL ? actor_id(sj->act) : 0;
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
	out->trace = sj->trace;
	out->trace_len = sj->trace_len;
}

/* The batch size that the code of the worker j was placed on declares for
 * j's function (0: not batched), for a plain call; the options j came with
 * for any other (an actor's call: what its actor set, from the code of
 * the worker it lives on). During a reload old and new workers serve side by side,
 * and a function may be batched in one version and not in the other: a
 * call is framed as the code that runs it expects. */
static uint32_t
worker_batch(server *srv, const sjob *sj)
{
	const job *j = &sj->j;

	if (sj->kind != JK_CALL || sj->act != NULL || sj->st != NULL)
		return j->batch;
	return supervisor_function_options_on(srv->sup, j->slot, j->function,
	    j->function_len)
	    .batch;
}

/* Hands queued jobs to free workers: one call each, or for a batched
 * function up to its batch of calls at once. */
static void
pump(server *srv)
{
	/* The loop's thread only: kept off its stack (4096 of each). */
	static sup_job sjobs[GILD_FUNCTION_BATCH_MAX];
	static job *batch[GILD_FUNCTION_BATCH_MAX];
	uint32_t wb;
	job *j;

	actor_kick_all(srv);
	while ((j = sched_peek(srv->sch)) != NULL) {
		sjob *sj = sjob_of(j);
		size_t n = 1;
		int slot;

		if (j->batch > 0 && batch_should_wait(srv, sj))
			break; /* the timer pumps again */
		j = sched_next(srv->sch);
		slot = j->slot;
		batch[0] = j;
		wb = worker_batch(srv, sjob_of(j));
		if (wb > 1 && j->batch > 1)
			n += sched_take_same(srv->sch, j, batch + 1,
			    (wb < GILD_FUNCTION_BATCH_MAX
				    ? wb
				    : GILD_FUNCTION_BATCH_MAX) - 1);
		for (size_t i = 0; i < n; i++) {
			job_step(srv, sjob_of(batch[i]), CE_SENT, 0, NULL);
			describe_job(batch[i], &sjobs[i]);
			job_count_start(srv, sjob_of(batch[i]),
			    i == 0 && wb > 0 ? n : 0);
		}
		if (supervisor_send(srv->sup, slot, sjobs, n, wb > 0) != 0) {
			for (size_t i = 0; i < n; i++) {
				sched_complete(srv->sch, slot, batch[i]->id);
				batch[i]->slot = slot; /* for the message */
				job_step(srv, sjob_of(batch[i]), CE_SEND_FAILED,
				    0, NULL);
			}
		}
	}
	/* A worker is free and calls wait in busy ones: ask for them back.
	 * One that cannot be asked stays asked for until it ends or its
	 * worker is lost. */
	while ((j = sched_take_back(srv->sch)) != NULL)
		supervisor_take_back(srv->sup, j->slot, j->id);
}

/* A batch waited long enough: the end of this loop pass (after_pass)
 * sends it. */
static void
on_batch_timer(evutil_socket_t fd, short what, void *arg)
{
}

/* Draining and nothing left to run: the workers can go. */
static void
check_drained(server *srv)
{
	if (srv->state == SRV_DRAINING && sched_running(srv->sch) == 0 &&
	    sched_queued(srv->sch) == 0 && actor_waiting(srv) == 0)
		server_stop_workers(srv);
}

/* What follows every event, once per pass of the loop, so that no handler
 * has to remember it: queued calls go to free workers (and calls sent
 * ahead are asked back), the frames this pass made are written, and a
 * drain that has nothing left to run stops the workers. */
static void
after_pass(server *srv)
{
	pump(srv);
	supervisor_flush(srv->sup);
	check_drained(srv);
}

/* ---- worker events ---------------------------------------------------- */

static void
on_worker_ready(void *arg, int slot)
{
	server *srv = arg;
	char status[64];

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
		snprintf(status, sizeof(status), "ready: %d workers",
		    supervisor_count(srv->sup));
		sdnotify_ready(srv->sdn, status);
	}
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
	job *newest = NULL, *j, *next;

	/* Newest first, so that the calls that go back to the head of the
	 * queue (those that never started, and retries) keep the order they
	 * came in. */
	for (j = sched_slot_lost(srv->sch, slot); j != NULL; j = next) {
		next = j->next;
		j->next = newest;
		newest = j;
	}
	for (j = newest; j != NULL; j = next) {
		next = j->next;
		job_step(srv, sjob_of(j), CE_LOST, all_read ? CF_ALL_READ : 0,
		    reason);
	}
	/* The actors it held are gone with it. */
	actor_slot_lost(srv, slot);
}

/* A worker's stamp on a call it ran: its function's estimate learns. */
static void
on_worker_ran(void *arg, int slot, uint64_t job_id, uint32_t run_us)
{
	server *srv = arg;
	sjob *sj = job_running(srv, slot, job_id);

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
	sjob *sj = sjob_of(sched_taken_back(srv->sch, slot, job_id,
	    returned));

	if (sj != NULL)
		job_step(srv, sj, CE_RETURNED, 0, NULL);
}

/* The traceback in a worker's error fields (a malloc'd string), or NULL:
 * for a call that was stopped while it ran, where it was then. */
static char *
stopped_traceback(const uint8_t *fields, size_t len)
{
	wire_field e, tb;

	if (wire_find(fields, len, GILD_F_REPLY_ERROR, &e) != 1 ||
	    e.type != WIRE_LEN ||
	    wire_find(e.data, e.len, GILD_F_ERROR_TRACEBACK, &tb) != 1 ||
	    tb.type != WIRE_LEN || tb.len == 0)
		return NULL;
	return strndup((const char *) tb.data, tb.len);
}

static void
on_worker_result(void *arg, int slot, uint64_t job_id,
    const uint8_t *fields, size_t len)
{
	server *srv = arg;
	call_step st;
	sjob *sj;
	job *j;

	if ((j = sched_complete(srv->sch, slot, job_id)) == NULL) {
		log_warn("worker %d answered unknown job %" PRIu64, slot,
		    job_id);
		return;
	}
	sj = sjob_of(j);
	if (sj->act != NULL && sj->kind != JK_CALL) {
		/* An actor's creation or end: the actor learns how it went
		 * whatever became of the request. */
		actor_job_result(srv, sj, slot, fields, len,
		    call_on(&sj->call, CE_ENDED, 0).answer);
		return;
	}
	if (sj->call.state == CALL_STOPPING || sj->call.state == CALL_KILLING)
		sj->stop_traceback = stopped_traceback(fields, len);
	st = job_step(srv, sj, CE_ENDED, 0, NULL);
	if (st.action != CA_REPLY)
		return; /* ended otherwise (it was stopped), and freed */
	if (!st.answer) {
		/* nobody waits for it */
	} else if (sj->st != NULL) {
		/* A stream that failed before its first chunk. */
		wire_field f;
		sj->end_code = replymsg_fields_code(fields, len, false);
		if (wire_find(fields, len, GILD_F_REPLY_ERROR, &f) == 1 &&
		    f.type == WIRE_LEN)
			streaming_finish(srv, sj->st, f.data, f.len);
		else
			streaming_end_error(srv, sj->st, GILD__V1__CODE__INTERNAL,
			    "the worker answered a stream with a single result");
	} else if (len > srv->opts->max_message) {
		job_reply_error(srv, sj, GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    "result of '%.*s' is %zu bytes, over the server's "
		    "--max-message of %zu bytes",
		    (int) j->function_len, j->function, len,
		    srv->opts->max_message);
	} else if (!reply_forward(srv->lst, j->reply_to, j->request_id,
		       fields, len)) {
		/* The worker's result/error field is already the Reply's. */
		job_reply_error(srv, sj, GILD__V1__CODE__INTERNAL,
		    "server out of memory for the result");
	} else {
		sj->end_code = replymsg_fields_code(fields, len, false);
	}
	job_free(j);
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
	sdnotify_stopping(srv->sdn, "stopping: the app cannot be loaded");
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
		job_step(srv, sjob_of(j), CE_STOP, 0, NULL);
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
	char status[128];

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
	snprintf(status, sizeof(status),
	    "draining: %zu running and %zu queued calls to finish",
	    sched_running(srv->sch), sched_queued(srv->sch));
	sdnotify_stopping(srv->sdn, status);
	srv->state = SRV_DRAINING;
	tv.tv_sec = srv->opts->drain_ms / 1000;
	tv.tv_usec = (srv->opts->drain_ms % 1000) * 1000;
	evtimer_add(srv->drain_ev, &tv);
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

/* --shm: the shared-memory socket beside the first ipc:// listener
 * (PATH.shm), which the listener's large replies go through. Returns 0, or
 * -1 (logged). */
static int
open_shm(server *srv)
{
	const server_opts *opts = srv->opts;
	char err[256], path[256];
	const char *ipc = NULL;

	for (size_t i = 0; i < opts->nlisten && ipc == NULL; i++)
		if (strncmp(opts->listen[i], "ipc://", 6) == 0)
			ipc = opts->listen[i] + 6;
	if (ipc == NULL) {
		log_error("--shm needs an ipc:// listener (--listen "
			  "ipc:///PATH): shared memory is only for clients on "
			  "this host");
		return -1;
	}
	if ((size_t) snprintf(path, sizeof(path), "%s.shm", ipc) >=
	    sizeof(path)) {
		log_error("--shm: the path %s.shm is too long", ipc);
		return -1;
	}
	if (shm_init(&srv->shm, srv->base, path, opts->max_message,
		2 * opts->max_message, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return -1;
	}
	listener_set_shm(srv->lst, srv->shm);
	printf("gild: shared memory on %s\n", path);
	log_info("shared memory for local clients on %s", path);
	return 0;
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

/* Descriptors gild keeps for itself beside its client connections: each
 * worker's socket, channel and two output pipes (and a memfd or two in
 * flight), the template's, the side port's connections, the loop's own. */
static size_t
fds_reserved(const server_opts *opts)
{
	return 64 + HTTP_CONNS_MAX + 8 * (size_t) opts->workers;
}

/* Random bits to spread the connections' ages (conn_limits.seed); they
 * need not be secret. */
static uint64_t
random_seed(void)
{
	uint64_t s;

	if (getrandom(&s, sizeof(s), 0) != (ssize_t) sizeof(s))
		s = (uint64_t) time(NULL) ^ (uint64_t) getpid() << 32;
	return s;
}

/* Raises the soft descriptor limit to the hard one, and returns how many
 * client connections fit under it with fds_reserved kept: --max-connections,
 * or fewer (said in the log) so that workers can always be started. */
static size_t
connections_that_fit(const server_opts *opts)
{
	size_t want = opts->max_connections, keep = fds_reserved(opts);
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return want;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void) setrlimit(RLIMIT_NOFILE, &rl);
		(void) getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY || want + keep <= rl.rlim_cur)
		return want;
	want = rl.rlim_cur > keep + 1 ? rl.rlim_cur - keep : 1;
	log_warn("--max-connections %zu does not fit in %llu file descriptors "
		 "(ulimit -n) with %zu kept for workers and the side port: "
		 "%zu connections at most",
	    opts->max_connections, (unsigned long long) rl.rlim_cur, keep,
	    want);
	return want;
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
	    .app_log_handler = opts->app_log_handler,
	    .worker_env = opts->worker_env,
	    .nworker_env = opts->nworker_env,
	    .python_path = opts->python_path,
	    .npython_path = opts->npython_path,
	    .venv = opts->venv,
	};
	sup_events se = {
	    .ready = on_worker_ready,
	    .retiring = on_worker_retiring,
	    .lost = on_worker_lost,
	    .result = on_worker_result,
	    .chunk = streaming_chunk,
	    .stream_end = streaming_end,
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
	if (streaming_sweep_start(&srv) != 0 ||
	    sdnotify_init(&srv.sdn, srv.base) != 0 ||
	    (srv.slot_gen = calloc((size_t) opts->workers, sizeof(uint64_t))) ==
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
	if ((rc = applog_init(&srv.logs, srv.base)) != 0) {
		log_error("cannot set up: %s", strerror(-rc));
		srv.exit_code = 1;
		goto out;
	}
	sc.logs = srv.logs;
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
		opts->max_message,
		&(conn_limits){.max_connections = connections_that_fit(opts),
		    .max_unread = opts->max_unread_replies,
		    .max_unread_bytes = opts->max_unread_bytes,
		    .max_auth_failures = opts->max_auth_failures,
		    .idle_s = opts->max_conn_idle_ms / 1e3,
		    .max_age_s = opts->max_conn_age_ms / 1e3,
		    .seed = random_seed()},
		request_on, request_pipe_gone, &srv, err, sizeof(err)) != 0) {
		log_error("%s", err);
		srv.exit_code = 1;
		goto out;
	}
	if (listener_allow_origins(srv.lst, opts->ws_origins,
		opts->nws_origins) != 0) {
		log_error("out of memory");
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
	if (opts->shm && open_shm(&srv) != 0) {
		srv.exit_code = 1;
		goto out;
	}
	if (opts->http != NULL) {
		static const http_routes routes = {status_ready, status_json,
		    status_metrics_text};
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
		if (srv.shm != NULL &&
		    chown(shm_path(srv.shm), opts->user->uid,
			opts->user->gid) == -1)
			log_warn("--user %s: cannot hand %s over: %s",
			    opts->user->name, shm_path(srv.shm),
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
	/* One pass of the loop runs every event that is ready; then
	 * after_pass, once (redis's beforeSleep). */
	while (event_base_loop(srv.base, EVLOOP_ONCE) == 0 &&
	       !event_base_got_exit(srv.base))
		after_pass(&srv);
out:
	http_close(srv.http);
	supervisor_fini(srv.sup); /* no worker may outlive gild */
	applog_fini(srv.logs);    /* the last lines they wrote */
	close_listener(srv.lst, srv.exit_code);
	shm_fini(srv.shm); /* after the listener: its replies use it */
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
	if (srv.stream_sweep_ev)
		event_free(srv.stream_sweep_ev);
	sdnotify_fini(srv.sdn);
	event_base_free(srv.base);
	if (srv.exit_code == 0)
		log_info("stopped");
	return srv.exit_code;
}
