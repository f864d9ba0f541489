/* streaming: a streamed call's chunks from its worker to its client: the
 * client pulls them (StreamNext), each pull answered with what has come
 * (stream.c holds them and encodes the answer), and what is taken out is
 * the worker's credit to send more. */
#include "streaming.h"

#include <errno.h>
#include <inttypes.h>

#include "fields.h"
#include "job.h"
#include "log.h"
#include "reply.h"
#include "replymsg.h"
#include "wire.h"

/* Answers the request waiting on st with the chunks held (up to its max),
 * and the end if they are the last; frees the stream once its end is
 * delivered. Chunks taken out make room: the job gets that much credit. */
static void
flush(server *srv, stream *st)
{
	uint32_t k;
	bool end;
	nng_msg *m;

	if (st->pull == NULL || !stream_ready(st))
		return;
	if ((m = replymsg_start(st->pull_id)) == NULL ||
	    stream_take(st, m, st->pull_max, srv->opts->max_message, &k,
		&end) != 0) {
		nng_msg_free(m);
		reply_error(srv->lst, st->pull, st->pull_id,
		    GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    "server out of memory for the stream's chunks");
		st->pull = NULL;
		return;
	}
	listener_reply(srv->lst, st->pull, m);
	st->pull = NULL;
	clock_gettime(CLOCK_MONOTONIC, &st->idle_since);
	if (st->job != NULL && k > 0 && st->job->j.state == JOB_RUNNING)
		supervisor_credit(srv->sup, st->job->j.slot, st->job->j.id, k);
	if (end)
		stream_free(&srv->streams, st);
}

void
streaming_finish(server *srv, stream *st, const uint8_t *error, size_t len)
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
	flush(srv, st);
}

void
streaming_end_error(server *srv, stream *st, Gild__V1__Code code, const char *msg)
{
	Gild__V1__Error e = GILD__V1__ERROR__INIT;
	uint8_t buf[1200];

	e.code = code;
	e.message = (char *) msg;
	streaming_finish(srv, st, buf, gild__v1__error__pack(&e, buf));
}

void
streaming_chunk(void *arg, int slot, uint64_t job_id, const uint8_t *chunk,
    size_t len)
{
	server *srv = arg;
	sjob *sj = job_running(srv, slot, job_id);
	int rc;

	if (sj == NULL || sj->st == NULL)
		return; /* stale, or the stream was cancelled meanwhile */
	if (sj->st->stopped)
		return; /* the server stopped it: what its worker sent before
			   it stops is dropped, not held */
	if ((rc = stream_push(sj->st, chunk, len)) != 0) {
		supervisor_kill(srv->sup, slot, rc == -ENOMEM
			? "server out of memory"
			: "the worker broke the stream protocol (a chunk out "
			  "of order, or past its credit)");
		return;
	}
	if (sj->st->held_bytes > srv->opts->max_stream_bytes &&
	    !sj->st->stopped) {
		/* Its client takes less than it makes: the rest waits in
		 * gild. Ended after what is held. */
		srv->limit_hits[LIMIT_STREAM_BYTES]++;
		log_event(LOG_WARN,
		    (log_field[]){LOG_NUM("request_id", sj->st->call_id),
			LOG_NUM("connection", sj->st->pipe),
			LOG_STR("limit", "--max-stream-bytes")},
		    3, "stream %" PRIu64 " on connection %" PRIu32 ": %zu "
		    "bytes of chunks not taken (--max-stream-bytes): its "
		    "generator is cancelled",
		    sj->st->call_id, sj->st->pipe, sj->st->held_bytes);
		sj->st->stopped = true;
		sj->stop_why = "its client left more than --max-stream-bytes "
			       "of its chunks untaken";
		job_step(srv, sj, CE_CANCEL, 0, NULL);
		return;
	}
	flush(srv, sj->st);
}

void
streaming_end(void *arg, int slot, uint64_t job_id, const uint8_t *end,
    size_t len)
{
	server *srv = arg;
	wire_field err;
	sjob *sj;
	job *j;

	if ((j = sched_complete(srv->sch, slot, job_id)) == NULL)
		return;
	sj = sjob_of(j);
	if (job_step(srv, sj, CE_ENDED, 0, NULL).action != CA_REPLY)
		return; /* ended otherwise (it was stopped), and freed */
	if (sj->st != NULL) {
		if (wire_find(end, len, GILD_WF_STREAM_END_ERROR, &err) == 1 &&
		    err.type == WIRE_LEN) {
			sj->end_code = replymsg_fields_code(err.data, err.len, true);
			streaming_finish(srv, sj->st, err.data, err.len);
		} else {
			streaming_finish(srv, sj->st, NULL, 0);
		}
	}
	job_free(j);
}

void
streaming_next(server *srv, listener_req *req, const parsed_request *pr)
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
		flush(srv, st);
	}
}

/* Every so often: streams nobody pulls from. One whose generator runs has
 * it cancelled, and its end (CANCELLED, saying why) is kept one more
 * --stream-idle-timeout for a late StreamNext; one whose generator is done
 * goes with what it holds. */
static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	server *srv = arg;
	double limit = srv->opts->stream_idle_timeout_ms / 1e3, idle;

	for (stream *st = srv->streams, *snext; st != NULL; st = snext) {
		snext = st->next;
		if (st->pull != NULL || st->orphan ||
		    (idle = seconds_since(&st->idle_since)) < limit)
			continue;
		if (st->stopped) {
			if (st->job == NULL && idle >= 2 * limit)
				stream_free(&srv->streams, st);
			continue;
		}
		srv->limit_hits[LIMIT_STREAM_IDLE]++;
		log_event(LOG_WARN,
		    (log_field[]){LOG_NUM("request_id", st->call_id),
			LOG_NUM("connection", st->pipe),
			LOG_STR("limit", "--stream-idle-timeout")},
		    3, "stream %" PRIu64 " on connection %" PRIu32 ": no "
		    "StreamNext for %.0f s (--stream-idle-timeout): %s",
		    st->call_id, st->pipe, limit,
		    st->job != NULL ? "its generator is cancelled"
				    : "the chunks it held are dropped");
		if (st->job == NULL) {
			stream_free(&srv->streams, st);
			continue;
		}
		st->stopped = true;
		st->job->stop_why = "nobody asked for its stream's chunks for "
				    "--stream-idle-timeout";
		job_step(srv, st->job, CE_CANCEL, 0, NULL);
	}
}

int
streaming_sweep_start(server *srv)
{
	uint32_t ms = srv->opts->stream_idle_timeout_ms;
	struct timeval tv;

	if (ms == 0)
		return 0; /* never */
	ms = ms / 4 < 1000 ? ms / 4 : 1000;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000 + 1000;
	srv->stream_sweep_ev = event_new(srv->base, -1, EV_PERSIST, on_sweep,
	    srv);
	if (srv->stream_sweep_ev == NULL ||
	    event_add(srv->stream_sweep_ev, &tv) != 0)
		return -1;
	return 0;
}

size_t
streaming_count(const server *srv, uint32_t pipe)
{
	size_t n = 0;

	for (const stream *st = srv->streams; st != NULL; st = st->next)
		n += st->pipe == pipe;
	return n;
}

void
streaming_pipe_gone(server *srv, uint32_t pipe)
{
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
}
