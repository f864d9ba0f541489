/* status: what the server tells about itself: the Status reply, and the
 * HTTP side port's /readyz, /status and /metrics. */
#include "status.h"

#include <string.h>

#include "applog.h"
#include "job.h"
#include "procstat.h"
#include "reply.h"
#include "shm.h"
#include "statusjson.h"

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
fill_times(server *srv, Gild__V1__Status *st, status_times *tm)
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
fill(server *srv, Gild__V1__Status *st, Gild__V1__WorkerStatus *ws,
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
	if (srv->shm != NULL) {
		shm_counts sc;
		shm_get_counts(srv->shm, &sc);
		st->shm_requests = sc.taken;
		st->shm_replies = sc.replies;
		st->shm_refused = sc.refused;
		st->shm_over_budget = sc.over_budget;
	}
	st->functions = (char **) supervisor_functions(srv->sup,
	    &st->n_functions);
	st->n_workers = (size_t) n;
	st->workers = wp;
	job_counts(srv, &st->queued, &st->in_flight);
	st->calls_total = srv->calls_total;
	st->uptime_s = uptime(srv);
	st->python_version = (char *) (pyver ? pyver : "");
	st->state = (char *) (srv->state == SRV_RUNNING ? "serving"
							: "draining");
	fill_times(srv, st, tm);
}

void
status_request(server *srv, listener_req *req, uint64_t id)
{
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Status st = GILD__V1__STATUS__INIT;
	int n = supervisor_count(srv->sup);
	Gild__V1__WorkerStatus ws[n], *wp[n];
	status_times tm;

	fill(srv, &st, ws, wp, &tm);
	r.body_case = GILD__V1__REPLY__BODY_STATUS;
	r.status = &st;
	reply_send(srv->lst, req, id, &r);
}

/* ---- the HTTP side port ---- */

bool
status_ready(void *arg, const char **why)
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

char *
status_json(void *arg)
{
	server *srv = arg;
	Gild__V1__Status st = GILD__V1__STATUS__INIT;
	int n = supervisor_count(srv->sup);
	Gild__V1__WorkerStatus ws[n], *wp[n];
	status_times tm;
	json_t *obj;
	char *text;

	fill(srv, &st, ws, wp, &tm);
	if ((obj = statusjson_object(&st)) == NULL)
		return NULL;
	text = statusjson_dump(obj, 2);
	json_decref(obj);
	return text;
}

/* /metrics' limit labels: the listener's (listener_limit_counts), the
 * server's own, in enum srv_limit's order, then the side port's
 * (http_counts). */
enum { LISTENER_LIMITS = 5, HTTP_LIMITS = 2 };
static const char *const limit_names[] = {"max-connections",
    "max-unread-replies", "max-auth-failures", "max-connection-idle",
    "max-connection-age", "max-queue", "max-actors",
    "max-actor-bytes", "stream-idle-timeout", "max-stream-bytes",
    "max-conn-streams", "max-conn-actors", "max-conn-calls",
    "http-connections",
    "http-request-time"};
_Static_assert(sizeof(limit_names) / sizeof(limit_names[0]) ==
		   LISTENER_LIMITS + LIMIT_N + HTTP_LIMITS,
    "a name for every limit");

char *
status_metrics_text(void *arg)
{
	server *srv = arg;
	uint64_t hits[LISTENER_LIMITS + LIMIT_N + HTTP_LIMITS];
	int n = supervisor_count(srv->sup);
	const char *state[n];
	uint64_t rss[n];
	metrics_now now = {0};

	for (int i = 0; i < n; i++) {
		sup_worker_info info;
		supervisor_info(srv->sup, i, &info);
		state[i] = slot_state(srv, i, &info);
		rss[i] = procstat_rss_bytes(info.pid);
	}
	now.worker_rss = rss;
	now.n_recycle_reasons = supervisor_recycles(srv->sup,
	    &now.recycle_reason, &now.recycles);
	now.version = GILD_VERSION;
	now.runtime = srv->opts->free_threaded ? "free-threaded" : "process";
	(void) procstat_self(&now.process); /* zeros when /proc is missing */
	job_counts(srv, &now.queued, &now.in_flight);
	now.workers = n;
	now.worker_state = state;
	now.n_reasons = supervisor_restarts(srv->sup, &now.restart_reason,
	    &now.restarts);
	listener_bytes(srv->lst, &now.bytes_in, &now.bytes_out);
	now.shm_bytes = supervisor_shm_bytes(srv->sup);
	now.uptime_s = uptime(srv);
	now.draining = srv->state != SRV_RUNNING;
	now.connections = listener_connections(srv->lst);
	if (srv->logs != NULL) {
		now.app_lines = applog_lines(srv->logs);
		now.app_dropped = applog_dropped(srv->logs);
	}
	listener_limit_counts(srv->lst, &hits[0], &hits[1], &hits[2],
	    &hits[3], &hits[4]);
	for (int i = 0; i < LIMIT_N; i++)
		hits[LISTENER_LIMITS + i] = srv->limit_hits[i];
	http_counts(srv->http, &hits[LISTENER_LIMITS + LIMIT_N],
	    &hits[LISTENER_LIMITS + LIMIT_N + 1]);
	now.limit = limit_names;
	now.limit_hits = hits;
	now.n_limits = sizeof(limit_names) / sizeof(limit_names[0]);
	return metrics_render(srv->metrics, &now);
}
