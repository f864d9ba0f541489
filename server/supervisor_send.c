/* supervisor_send: the frames the front end sends its workers (calls,
 * batches, interrupts, take-backs, stream credit), gathered per worker
 * during a pass of the loop and written at its end, large ones through
 * shared memory. */
#include "supervisor_priv.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fields.h"
#include "frame.h"
#include "log.h"
#include "wire.h"
#include "worker.pb-c.h"

/* Writes each worker's pending frames: at once, in one writev, when
 * nothing of its earlier ones waits in its bufferevent; what the socket
 * does not take (and any error) is left to the bufferevent, behind what
 * it holds. Runs once per loop pass that wrote frames, after that pass's
 * other callbacks (libevent runs the callbacks made active during a pass
 * in the same pass, in order). */
void
supervisor_flush_event(evutil_socket_t fd, short what, void *arg)
{
	supervisor_flush(arg);
}

void
supervisor_flush(supervisor *s)
{
	event_del(s->flush_ev); /* made active: written now instead */
	for (int i = 0; i < s->cfg.workers; i++) {
		worker *w = &s->w[i];
		struct evbuffer *out;

		if (evbuffer_get_length(w->pending) == 0)
			continue;
		if (w->bev == NULL) {
			drop_pending(w);
			continue;
		}
		out = bufferevent_get_output(w->bev);
		if (evbuffer_get_length(out) == 0)
			(void) evbuffer_write(w->pending,
			    bufferevent_getfd(w->bev));
		if (evbuffer_get_length(w->pending) > 0 &&
		    evbuffer_add_buffer(out, w->pending) != 0) {
			/* A frame cut short would garble the stream. */
			worker_down(w, "out of memory for its socket's output",
			    DOWN_KILL);
		}
	}
}

/* Where a frame for w goes: its pending frames, written at the end of this
 * loop pass (on_flush). */
static struct evbuffer *
outbox(worker *w)
{
	if (evbuffer_get_length(w->pending) == 0)
		event_active(w->sup->flush_ev, 0, 0);
	return w->pending;
}

/* Sends a frame whose payload is the ns pieces of seg (len bytes) through
 * a memfd on w's descriptor channel. Returns 0, or -errno when it did not
 * (then nothing was sent: the socket can take the frame instead). */
static int
send_shm(worker *w, const struct iovec *seg, int ns, size_t len)
{
	struct evbuffer *out = outbox(w);
	uint8_t hdr[FRAME_HEADER_LEN];
	int mfd, rc;

	/* Once the descriptor is sent its header must follow: make room
	 * first, so adding it cannot fail. */
	if (evbuffer_expand(out, sizeof(hdr)) != 0)
		return -ENOMEM;
	if ((mfd = frame_shm_create(seg, ns)) < 0)
		return mfd;
	/* Non-blocking: a full channel means the socket takes this one. */
	rc = frame_shm_send(w->chan, mfd, 1);
	close(mfd);
	if (rc != 0)
		return rc;
	frame_header_encode_shm(hdr, len);
	evbuffer_add(out, hdr, sizeof(hdr));
	w->sup->shm_bytes += len;
	return 0;
}

int
supervisor_send(supervisor *s, int slot, const sup_job *jobs, size_t n,
    bool batch)
{
	/* Head: frame header, job_id, request_id, deadline_ms, queued_us and
	 * the body's tag and length; for a batch, the packed job ids too. */
	uint8_t head[FRAME_HEADER_LEN + 8 * (1 + WIRE_MAX_VARINT)];
	uint8_t ids[n * WIRE_MAX_VARINT + 1], tag[1 + WIRE_MAX_VARINT];
	uint8_t tags[n][1 + WIRE_MAX_VARINT];
	uint8_t trace_tag[1 + WIRE_MAX_VARINT];
	struct iovec seg[4 + 2 * n];
	bool ref[4 + 2 * n];
	size_t h = FRAME_HEADER_LEN, nids = 0, body = 0, rest = 0, payload;
	struct evbuffer *out;
	worker *w;
	int ns = 0;

	if (slot < 0 || slot >= s->cfg.workers || n == 0 || (n > 1 && !batch))
		return -EINVAL;
	w = &s->w[slot];
	if (w->state != W_READY || w->bev == NULL)
		return -EPIPE;
	h += wire_put_tag(head + h, GILD_WF_TO_WORKER_JOB_ID, WIRE_VARINT);
	h += wire_put_varint(head + h, jobs[0].job_id);
	h += wire_put_tag(head + h, GILD_WF_TO_WORKER_REQUEST_ID, WIRE_VARINT);
	h += wire_put_varint(head + h, jobs[0].request_id);
	h += wire_put_tag(head + h, GILD_WF_TO_WORKER_DEADLINE_MS, WIRE_VARINT);
	h += wire_put_varint(head + h, jobs[0].deadline_ms);
	h += wire_put_tag(head + h, GILD_WF_TO_WORKER_QUEUED_US, WIRE_VARINT);
	h += wire_put_varint(head + h, jobs[0].queued_us);
	if (jobs[0].op == SUP_EXEC && batch)
		return -EINVAL;
	/* A batch of an actor's method names the actor too: the worker runs
	 * it on the actor's thread without reading its calls. */
	if (jobs[0].op == SUP_ACTOR_NEW || jobs[0].op == SUP_ACTOR_DESTROY ||
	    (batch && jobs[0].actor_id != 0)) {
		h += wire_put_tag(head + h, GILD_WF_TO_WORKER_ACTOR_ID, WIRE_VARINT);
		h += wire_put_varint(head + h, jobs[0].actor_id);
	}
	if (jobs[0].op == SUP_ACTOR_DESTROY) {
		h += wire_put_tag(head + h, GILD_WF_TO_WORKER_ACTOR_DESTROY, WIRE_VARINT);
		h += wire_put_varint(head + h, 1);
		rest = 0;
	} else if (!batch) {
		/* ToWorker{..., call}: the call bytes are not copied. For
		 * SUP_ACTOR_NEW they are an ActorNew, for SUP_EXEC an Exec. */
		h += wire_put_tag(head + h,
		    jobs[0].op == SUP_ACTOR_NEW ? GILD_WF_TO_WORKER_ACTOR_NEW
		    : jobs[0].op == SUP_EXEC    ? GILD_WF_TO_WORKER_EXEC
						: GILD_WF_TO_WORKER_CALL,
		    WIRE_LEN);
		h += wire_put_varint(head + h, jobs[0].len);
		rest = jobs[0].len;
	} else {
		/* ToWorker{..., batch{job_ids (packed), calls...}}. */
		for (size_t i = 0; i < n; i++)
			nids += wire_put_varint(ids + nids, jobs[i].job_id);
		body = 1 + wire_put_varint(tag, nids) + nids;
		rest = nids;
		for (size_t i = 0; i < n; i++)
			rest += 1 + wire_put_varint(tag, jobs[i].len) + jobs[i].len;
		body += rest - nids;
		h += wire_put_tag(head + h, GILD_WF_TO_WORKER_BATCH, WIRE_LEN);
		h += wire_put_varint(head + h, body);
		h += wire_put_tag(head + h, GILD_WF_BATCH_JOB_IDS, WIRE_LEN);
		h += wire_put_varint(head + h, nids);
	}
	/* The payload: what head holds after the frame header, then the
	 * rest (the call bytes, or the ids and the calls). The call bytes
	 * are referenced (ref), not copied. */
	memset(ref, 0, sizeof(ref));
	seg[ns++] = (struct iovec){head + FRAME_HEADER_LEN,
	    h - FRAME_HEADER_LEN};
	if (jobs[0].op == SUP_ACTOR_DESTROY) {
		/* nothing follows */
	} else if (!batch) {
		ref[ns] = true;
		seg[ns++] = (struct iovec){(void *) jobs[0].call, jobs[0].len};
	} else {
		seg[ns++] = (struct iovec){ids, nids};
		for (size_t i = 0; i < n; i++) {
			size_t t = wire_put_tag(tags[i], GILD_WF_BATCH_CALLS, WIRE_LEN);
			t += wire_put_varint(tags[i] + t, jobs[i].len);
			seg[ns++] = (struct iovec){tags[i], t};
			ref[ns] = true;
			seg[ns++] = (struct iovec){(void *) jobs[i].call,
			    jobs[i].len};
		}
	}
	/* ToWorker.trace_context, after the body (protobuf's fields come in
	 * any order): referenced, as the call bytes are. */
	if (jobs[0].trace != NULL && jobs[0].op != SUP_ACTOR_DESTROY) {
		size_t t = wire_put_tag(trace_tag,
		    GILD_WF_TO_WORKER_TRACE_CONTEXT, WIRE_LEN);
		t += wire_put_varint(trace_tag + t, jobs[0].trace_len);
		seg[ns++] = (struct iovec){trace_tag, t};
		ref[ns] = true;
		seg[ns++] = (struct iovec){(void *) jobs[0].trace,
		    jobs[0].trace_len};
		rest += t + jobs[0].trace_len;
	}
	out = outbox(w);
	payload = h - FRAME_HEADER_LEN + rest;
	if (payload >= FRAME_SHM_MIN && w->chan != -1 &&
	    send_shm(w, seg, ns, payload) == 0) {
		w->running += (int) n;
		return 0;
	}
	frame_header_encode(head, payload);
	if (evbuffer_add(out, head, h) != 0) /* header and seg[0] */
		return -ENOMEM;
	for (int i = 1; i < ns; i++) {
		if (seg[i].iov_len == 0)
			continue;
		if ((ref[i] ? evbuffer_add_reference(out, seg[i].iov_base,
				  seg[i].iov_len, NULL, NULL)
			    : evbuffer_add(out, seg[i].iov_base,
				  seg[i].iov_len)) != 0)
			return -ENOMEM;
	}
	w->running += (int) n;
	return 0;
}

/* Sends a small control message (interrupt, credit) to worker `slot`. */
static int
send_control(supervisor *s, int slot, const Gild__Worker__V1__ToWorker *m)
{
	uint8_t buf[FRAME_HEADER_LEN + 32];
	size_t n;
	worker *w;

	if (slot < 0 || slot >= s->cfg.workers)
		return -EINVAL;
	w = &s->w[slot];
	if (w->bev == NULL || w->state == W_DYING)
		return -EPIPE;
	n = gild__worker__v1__to_worker__pack(m, buf + FRAME_HEADER_LEN);
	frame_header_encode(buf, n);
	if (evbuffer_add(outbox(w), buf, FRAME_HEADER_LEN + n) != 0)
		return -ENOMEM;
	return 0;
}

int
supervisor_interrupt(supervisor *s, int slot, uint64_t job_id, int code)
{
	Gild__Worker__V1__ToWorker m = GILD__WORKER__V1__TO_WORKER__INIT;
	Gild__Worker__V1__Interrupt in = GILD__WORKER__V1__INTERRUPT__INIT;

	in.code = (Gild__V1__Code) code;
	m.job_id = job_id;
	m.body_case = GILD__WORKER__V1__TO_WORKER__BODY_INTERRUPT;
	m.interrupt = &in;
	return send_control(s, slot, &m);
}

int
supervisor_take_back(supervisor *s, int slot, uint64_t job_id)
{
	Gild__Worker__V1__ToWorker m = GILD__WORKER__V1__TO_WORKER__INIT;
	Gild__Worker__V1__TakeBack tb = GILD__WORKER__V1__TAKE_BACK__INIT;

	m.job_id = job_id;
	m.body_case = GILD__WORKER__V1__TO_WORKER__BODY_TAKE_BACK;
	m.take_back = &tb;
	return send_control(s, slot, &m);
}

int
supervisor_credit(supervisor *s, int slot, uint64_t job_id, uint32_t n)
{
	Gild__Worker__V1__ToWorker m = GILD__WORKER__V1__TO_WORKER__INIT;
	Gild__Worker__V1__Credit c = GILD__WORKER__V1__CREDIT__INIT;

	c.n = n;
	m.job_id = job_id;
	m.body_case = GILD__WORKER__V1__TO_WORKER__BODY_CREDIT;
	m.credit = &c;
	return send_control(s, slot, &m);
}
