/* request: what a client's request does, as the listener hands it over:
 * the token checked, then a Call or Exec becomes a job (or an actor's
 * call), a Cancel moves its call, a Batch is served as its parts; and what
 * a client's leaving does to its calls. */
#include "request.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "gild_limits.h"
#include "job.h"
#include "log.h"
#include "reply.h"
#include "shm.h"
#include "status.h"
#include "streaming.h"
#include "wire.h"

/* Counts a call answered with code before it became a job; act: the
 * actor an actor's call was for, when it was found. */
static void
count_refused(server *srv, const parsed_request *pr, const actor *act,
    int code)
{
	job_count(srv, pr->body == BODY_EXEC, pr->actor_id != 0,
	    act != NULL ? actor_class(act) : NULL, pr->function, pr->function_len,
	    code, -1);
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
	} else if (!supervisor_has_function(srv->sup, pr->function,
		       pr->function_len)) {
		not_found(srv, req, pr->id, pr->function, pr->function_len);
		code = GILD__V1__CODE__NOT_FOUND;
		goto done;
	}
	/* (A batch's members see their connection's count, the batch
	 * counted once.) */
	if (listener_held(srv->lst, req) > srv->opts->max_conn_calls) {
		srv->limit_hits[LIMIT_CONN_CALLS]++;
		reply_error(srv->lst, req, pr->id,
		    GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    "this connection has %zu requests in the server's hands "
		    "already (--max-conn-calls)", srv->opts->max_conn_calls);
		code = GILD__V1__CODE__RESOURCE_EXHAUSTED;
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
	if (pr->stream &&
	    streaming_count(srv, listener_req_pipe(req)) >=
		srv->opts->max_conn_streams) {
		free(sj);
		srv->limit_hits[LIMIT_CONN_STREAMS]++;
		reply_error(srv->lst, req, pr->id,
		    GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    "this connection has %zu streams open already "
		    "(--max-conn-streams)", srv->opts->max_conn_streams);
		code = GILD__V1__CODE__RESOURCE_EXHAUSTED;
		goto done;
	}
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
	/* An actor's call waits for its turn; only a plain call may run
	 * again after its worker died (@gild.function(retries=N)). */
	call_init(&sj->call, act != NULL ? CALL_WAITING : CALL_QUEUED, false,
	    act == NULL && !pr->stream, fo.retries);
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
	sj->trace = pr->trace;
	sj->trace_len = pr->trace_len;
	sj->trace_fields = pr->trace_fields;
	if (sj->timeout_ms != 0 && job_timer_arm(srv, sj, sj->timeout_ms) != 0) {
		if (sj->st != NULL)
			stream_free(&srv->streams, sj->st);
		free(sj);
		reply_error(srv->lst, req, pr->id, GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    "server out of memory");
		code = GILD__V1__CODE__RESOURCE_EXHAUSTED;
		goto done;
	}
	/* --max-queue counts the calls waiting for an actor's turn too. */
	if (sched_queued(srv->sch) + actor_waiting(srv) >=
		srv->opts->max_queue ||
	    (act == NULL && sched_submit(srv->sch, j) != 0)) {
		srv->limit_hits[LIMIT_QUEUE]++;
		if (sj->timer != NULL)
			event_free(sj->timer);
		if (sj->st != NULL)
			stream_free(&srv->streams, sj->st);
		free(sj);
		reply_error(srv->lst, req, pr->id, GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    "queue full: %zu calls are waiting (--max-queue)",
		    sched_queued(srv->sch) + actor_waiting(srv));
		code = GILD__V1__CODE__RESOURCE_EXHAUSTED;
		goto done;
	}
	srv->calls_total++;
	if (act != NULL)
		actor_call(srv, act, j); /* one at a time, in arrival order */
	return;
done:
	count_refused(srv, pr, act, code); /* it never became a job */
	nng_msg_free(msg);
}

static void
on_cancel(server *srv, listener_req *req, const parsed_request *pr)
{
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Value v = GILD__V1__VALUE__INIT;
	stream *st = NULL;
	job *j;

	if ((j = sched_find(srv->sch, listener_req_pipe(req),
		 pr->cancel_target)) != NULL ||
	    (j = actor_waiting_find(srv, listener_req_pipe(req),
		 pr->cancel_target)) != NULL) {
		job_step(srv, sjob_of(j), CE_CANCEL, 0, NULL);
	} else if ((st = stream_find(srv->streams, listener_req_pipe(req),
			pr->cancel_target)) != NULL) {
		/* Its generator has finished: drop what it left. */
		stream_drop(st);
		streaming_end_error(srv, st, GILD__V1__CODE__CANCELLED,
		    "the stream was cancelled by the client");
	}
	/* The Cancel itself is answered with whether the call was found. */
	v.kind_case = GILD__V1__VALUE__KIND_BOOL_VALUE;
	v.bool_value = j != NULL || st != NULL;
	r.body_case = GILD__V1__REPLY__BODY_RESULT;
	r.result = &v;
	reply_send(srv->lst, req, pr->id, &r);
}

void
request_pipe_gone(void *arg, uint32_t pipe)
{
	server *srv = arg;
	size_t dropped = 0, interrupted = 0;
	job *j, *next;

	if (srv->shm != NULL)
		shm_pipe_gone(srv->shm, pipe);
	for (j = sched_take_pipe(srv->sch, pipe); j != NULL; j = next) {
		next = j->next;
		job_step(srv, sjob_of(j), CE_GONE, 0, NULL);
		dropped++;
	}
	for (int slot = 0; slot < supervisor_count(srv->sup); slot++) {
		for (j = sched_slot_jobs(srv->sch, slot); j != NULL; j = next) {
			next = j->next;
			if (j->pipe == pipe &&
			    job_step(srv, sjob_of(j), CE_GONE, 0, NULL).action ==
				CA_INTERRUPT)
				interrupted++;
		}
	}
	/* Calls waiting for its actors' turn, and the actors it owns. */
	dropped += actor_pipe_gone(srv, pipe);
	streaming_pipe_gone(srv, pipe);
	if (dropped + interrupted > 0)
		log_info("client connection %" PRIu32 " closed: %zu queued "
			 "calls dropped, %zu running calls cancelled",
		    pipe, dropped, interrupted);
}

static void
on_ping(server *srv, listener_req *req, const parsed_request *pr)
{
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Pong pong = GILD__V1__PONG__INIT;
	Gild__V1__ShmOffer offer = GILD__V1__SHM_OFFER__INIT;
	uint8_t key[SHM_KEY_LEN];
	uint32_t pipe = listener_req_pipe(req);

	/* Shared memory only for a local client that asks (never over
	 * tcp://, whatever it asks). */
	if (pr->want_shm && srv->shm != NULL && shm_may_offer(srv->shm, pipe) &&
	    shm_offer(srv->shm, pipe, key) == 0) {
		offer.path = (char *) shm_path(srv->shm);
		offer.key.data = key;
		offer.key.len = sizeof(key);
		pong.shm = &offer;
	}
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

/* Whether pr is a call to refuse as not started because its connection
 * is past --max-connection-age: its client resends it on a new
 * connection, and closes this one once its calls there have ended (as
 * when a server drains). Only what a client may send anywhere is
 * refused: a function's plain call (alone or in a batch). Streams, exec
 * and actors' requests are served; a connection that made actors is
 * never aged out, as closing it would end them. */
static bool
aged_out(server *srv, const listener_req *req, const parsed_request *pr)
{
	return pr->body == BODY_CALL && pr->actor_id == 0 && !pr->stream &&
	       listener_aged(srv->lst, req) &&
	       actor_count_owned(&srv->actors, listener_req_pipe(req)) == 0;
}

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
			count_refused(srv, pr, NULL, pr->code);
	} else if (pr->body == BODY_EXEC && !srv->opts->allow_exec) {
		reply_error(srv->lst, req, pr->id, GILD__V1__CODE__PERMISSION_DENIED,
		    "exec requests are refused: this server was not started "
		    "with --allow-exec (it would let any client run any "
		    "Python code in its workers)");
		count_refused(srv, pr, NULL, GILD__V1__CODE__PERMISSION_DENIED);
	} else if (srv->state != SRV_RUNNING && call) {
		reply_refused(srv->lst, req, pr->id, "server is shutting down: the "
		    "call was not started");
		count_refused(srv, pr, NULL, GILD__V1__CODE__UNAVAILABLE);
	} else if (aged_out(srv, req, pr)) {
		reply_refused(srv->lst, req, pr->id, "this connection is older "
		    "than --max-connection-age: the call was not started "
		    "(send it on a new connection)");
		count_refused(srv, pr, NULL, GILD__V1__CODE__UNAVAILABLE);
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
			status_request(srv, req, pr->id);
			break;
		case BODY_STREAM_NEXT:
			streaming_next(srv, req, pr);
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

void
request_on(void *arg, listener_req *req, nng_msg *msg)
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
			count_refused(srv, &pr, NULL,
			    GILD__V1__CODE__UNAUTHENTICATED);
		listener_auth_failed(srv->lst, req);
		nng_msg_free(msg);
		return;
	}
	if (pr.shm && pr.code == 0) {
		/* The request itself is in a memfd: served from a copy of it,
		 * as if it had come over nng (its token already checked). */
		char why[256];
		nng_msg *inner;
		int code;

		nng_msg_free(msg);
		code = srv->shm == NULL
		    ? GILD__V1__CODE__INVALID_ARGUMENT
		    : shm_take(srv->shm, listener_req_pipe(req), pr.shm_handle,
			  pr.shm_len, &inner, why, sizeof(why));
		if (code != 0) {
			reply_error(srv->lst, req, pr.id, code, "%s",
			    srv->shm == NULL ? "this server offers no shared "
					       "memory (gild serve --shm)"
					     : why);
			return;
		}
		parse_request(nng_msg_body(inner), nng_msg_len(inner),
		    srv->opts->max_message, &pr);
		if (pr.shm) {
			reply_error(srv->lst, req, pr.id,
			    GILD__V1__CODE__INVALID_ARGUMENT,
			    "shared memory: a request in a memfd cannot refer "
			    "to another");
			nng_msg_free(inner);
			return;
		}
		msg = inner;
	}
	dispatch(srv, req, msg, &pr, false);
}
