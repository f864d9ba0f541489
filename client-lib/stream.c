/* libgild: streams, pulled a window of chunks at a time (gild_stream_*). */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "value.h"

/* Ends s with `code` (GILD_STREAM_END or an error) and the error in *e,
 * moved in (e may be NULL). Under c->mtx. */
static void
stream_end(gild_stream *s, int code, gild_error *e)
{
	s->state = STREAM_ENDED;
	s->code = code;
	error_move(&s->error, e);
}

/* Ends s with an error this client found (the server's stream may live on:
 * closing cancels it). Under c->mtx. */
static void
stream_fail(gild_stream *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
stream_fail(gild_stream *s, int code, const char *fmt, ...)
{
	gild_error e = {0};
	va_list ap;
	char *msg = NULL;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	va_end(ap);
	e.code = code;
	e.message = msg;
	stream_end(s, code, &e);
}

/* Takes in the outcome of s's request cl, which has finished and left the
 * table: its chunks join the queue, checked for order and number; an end or
 * error ends s. Under c->mtx. */
static void
stream_absorb(gild_stream *s, call *cl)
{
	codec_chunks *ch = &cl->chunks;
	uint64_t due = s->seq + s->len;

	s->state = STREAM_IDLE;
	s->pull = 0;
	if (cl->res.code != GILD_OK) {
		stream_end(s, cl->res.code, &cl->res.error);
		return;
	}
	if (ch->end)
		s->server_done = true;
	if (ch->n_items > 0 && ch->first_seq != due) {
		stream_fail(s, GILD_INTERNAL, "stream chunk %llu came from the "
		    "server where chunk %llu was due",
		    (unsigned long long) ch->first_seq, (unsigned long long) due);
		return;
	}
	/* pull_max is at most window - len: the ring has room for them. */
	if (ch->n_items > s->pull_max) {
		stream_fail(s, GILD_INTERNAL, "the server sent %zu stream chunks "
		    "where at most %u were asked for", ch->n_items, s->pull_max);
		return;
	}
	for (size_t i = 0; i < ch->n_items; i++) {
		s->queue[(s->head + s->len++) % s->window] = ch->items[i];
		ch->items[i] = NULL;
	}
	ch->n_items = 0;
	if (ch->error.code != GILD_OK)
		stream_end(s, ch->error.code, &ch->error);
	else if (ch->end)
		stream_end(s, GILD_STREAM_END, NULL);
}

/* Advances s as far as it can without sending: takes in what its request
 * brought, and ends it once its connection is gone and nothing more can
 * come. Under c->mtx. */
static void
stream_step(gild_stream *s)
{
	gild_client *c = s->c;

	if (s->state == STREAM_WAITING) {
		call *cl = gild__table_find(c, s->pull);

		if (cl == NULL) { /* cannot happen: only s removes it */
			stream_fail(s, GILD_INTERNAL, "stream request %llu "
			    "vanished", (unsigned long long) s->pull);
			s->pull = 0;
		} else if (cl->done) {
			gild__table_remove(c, cl);
			stream_absorb(s, cl);
			gild__call_free(cl);
		}
	}
	/* A request in flight on a lost connection fails by itself. */
	if (s->state == STREAM_IDLE && s->lost)
		stream_fail(s, GILD_UNAVAILABLE, "connection to %s lost",
		    c->conns[s->conn].url);
}

/* Whether s should ask for more now: nothing asked yet, and at most half of
 * its window held (so that the next chunks travel while the caller works
 * through the rest). Under c->mtx. */
static bool
stream_pull_due(const gild_stream *s)
{
	return s->state == STREAM_IDLE && !s->lost &&
	    s->len <= s->window / 2 && s->c->n_pending < GILD_MAX_IN_FLIGHT;
}

/* Sends a StreamNext for as many chunks as s has room for, on its own
 * connection. Called and returns with c->mtx held; drops it to send. A
 * failure ends s. */
static void
stream_pull(gild_stream *s)
{
	gild_client *c = s->c;
	uint32_t max = s->window - (uint32_t) s->len;
	codec_buf body = {0};
	gild_error e = {0};
	call *cl = calloc(1, sizeof(*cl));
	uint64_t id;
	int rc;

	if (cl == NULL) {
		stream_fail(s, GILD_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	cl->id = id = c->next_id++;
	cl->kind = CALL_STREAM;
	cl->conn = s->conn;
	if (gild__table_insert(c, cl) != 0) {
		free(cl);
		stream_fail(s, GILD_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	s->state = STREAM_WAITING;
	s->pull = id;
	s->pull_max = max;
	gild__unlock(c);
	if ((rc = codec_encode_stream_next(&body, s->id, max, &e)) == GILD_OK)
		rc = gild__send_request(&c->conns[s->conn], &body, id, &e);
	codec_buf_fini(&body);
	pthread_mutex_lock(&c->mtx);
	if (rc != GILD_OK) {
		if ((cl = gild__table_find(c, id)) != NULL) {
			gild__table_remove(c, cl);
			gild__call_free(cl);
		}
		s->pull = 0;
		stream_end(s, rc, &e);
	}
}

/* Moves the oldest queued chunk into *out. */
static void
stream_pop(gild_stream *s, gild_value **out)
{
	*out = s->queue[s->head];
	s->queue[s->head] = NULL;
	s->head = (s->head + 1) % s->window;
	s->len--;
	s->seq++;
}

/* What gild_stream_next says about an ended stream with nothing queued. */
static int
stream_report(const gild_stream *s, gild_error *err)
{
	const gild_error *e = &s->error;

	if (s->code == GILD_STREAM_END || err == NULL)
		return s->code;
	error_set(err, s->code, "%s", e->message ? e->message : "");
	err->python_type = e->python_type ? strdup(e->python_type) : NULL;
	err->traceback = e->traceback ? strdup(e->traceback) : NULL;
	return s->code;
}

int
gild_stream_open(gild_client *c, const char *function,
    const gild_value *args, const gild_value *kwargs, int window,
    int timeout_ms, gild_stream **out, gild_error *err)
{
	if (c == NULL || out == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	*out = NULL;
	return gild__stream_open(c, function, args, kwargs, 0, -1, window,
	    timeout_ms, out, err);
}

int
gild__stream_open(gild_client *c, const char *function,
    const gild_value *args, const gild_value *kwargs, uint64_t actor_id,
    int want, int window, int timeout_ms, gild_stream **out, gild_error *err)
{
	codec_call_opts o = {.stream = true, .actor_id = actor_id};
	codec_buf body = {0};
	gild_stream *s;
	int rc;

	if (window < 0 || window > GILD_STREAM_MAX_WINDOW)
		return error_set(err, GILD_INVALID_ARGUMENT,
		    "stream window must be 0 to %d, not %d",
		    GILD_STREAM_MAX_WINDOW, window);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	s->c = c;
	s->efd = -1;
	s->window = window > 0 ? (uint32_t) window : GILD_STREAM_WINDOW_DEFAULT;
	if ((s->queue = calloc(s->window, sizeof(*s->queue))) == NULL) {
		free(s);
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	}
	o.timeout_ms = timeout_ms > 0 ? (uint32_t) timeout_ms : 0;
	o.window = s->window;
	if ((rc = codec_encode_call_opts(&body, function, args, kwargs, &o,
	    err)) == GILD_OK)
		rc = gild__start(c, CALL_STREAM, &body, want, &s->id, &s->conn,
		    err);
	codec_buf_fini(&body);
	if (rc != GILD_OK) {
		free(s->queue);
		free(s);
		return rc;
	}
	/* The Call is the stream's first request for chunks: its reply holds
	 * up to `window` of them. */
	pthread_mutex_lock(&c->mtx);
	s->state = STREAM_WAITING;
	s->pull = s->id;
	s->pull_max = s->window;
	s->next = c->streams;
	if (c->streams != NULL)
		c->streams->prev = s;
	c->streams = s;
	gild__unlock(c);
	*out = s;
	return GILD_OK;
}

int
gild_stream_next(gild_stream *s, int timeout_ms, gild_value **out,
    gild_error *err)
{
	gild_client *c;
	struct timespec ts;
	bool expired = false;
	waiter w;
	int rc;

	if (s == NULL || out == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	*out = NULL;
	if ((c = s->c) == NULL) { /* its client is closed: only the queue */
		if (s->len > 0) {
			stream_pop(s, out);
			return GILD_OK;
		}
		if (s->state != STREAM_ENDED)
			stream_fail(s, GILD_UNAVAILABLE,
			    "the stream's client was closed");
		return stream_report(s, err);
	}
	gild__waiter_init(&w, WAIT_ENTRY, 0);
	gild__deadline_of(timeout_ms > 0 ? timeout_ms : 0, &ts);
	pthread_mutex_lock(&c->mtx);
	if (s->watching) {
		gild__unwatch(c, &s->watch);
		s->watching = false;
	}
	for (;;) {
		stream_step(s);
		if (s->len > 0 || s->state == STREAM_ENDED)
			break;
		if (stream_pull_due(s)) {
			stream_pull(s);
			continue;
		}
		if (expired)
			break;
		/* One more look after the deadline: the chunks may have come
		 * with it. What comes is the answer to its request for
		 * chunks, or a connection lost (which ends that request). */
		w.what = s->state == STREAM_WAITING ? WAIT_ENTRY : WAIT_CHANGE;
		w.id = s->pull;
		expired = !gild__sleep(c, &w, timeout_ms, &ts);
	}
	if (s->len > 0) {
		stream_pop(s, out);
		rc = GILD_OK;
		if (stream_pull_due(s))
			stream_pull(s);
	} else if (s->state == STREAM_ENDED) {
		rc = stream_report(s, err);
	} else {
		gild_error_clear(err);
		rc = GILD_DEADLINE_EXCEEDED;
		if (timeout_ms == 0 && s->efd >= 0) {
			/* Its eventfd is written when this would have woken. */
			s->watch.what = s->state == STREAM_WAITING
					    ? WAIT_ENTRY
					    : WAIT_CHANGE;
			s->watch.id = s->pull;
			gild__watch(c, &s->watch);
			s->watching = true;
		}
	}
	gild__unlock(c);
	gild__waiter_fini(&w);
	return rc;
}

int
gild_stream_fd(gild_stream *s)
{
	gild_client *c;
	int efd;

	if (s == NULL || (c = s->c) == NULL)
		return -EINVAL;
	pthread_mutex_lock(&c->mtx);
	if (s->efd < 0) {
		if ((efd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
			efd = -errno;
			gild__unlock(c);
			return efd;
		}
		gild__waiter_init(&s->watch, WAIT_ENTRY, 0);
		s->watch.efd = efd;
		s->watch.chosen = true; /* not in c->waiters */
		s->efd = efd;
	}
	efd = s->efd;
	gild__unlock(c);
	return efd;
}

uint64_t
gild_stream_seq(const gild_stream *s)
{
	uint64_t seq;

	if (s == NULL)
		return 0;
	if (s->c == NULL)
		return s->seq;
	pthread_mutex_lock(&s->c->mtx);
	seq = s->seq;
	gild__unlock(s->c);
	return seq;
}

void
gild_stream_close(gild_stream *s)
{
	gild_client *c;
	call *cl = NULL;
	bool cancel;

	if (s == NULL)
		return;
	if ((c = s->c) != NULL) {
		pthread_mutex_lock(&c->mtx);
		if (s->state == STREAM_WAITING &&
		    (cl = gild__table_find(c, s->pull)) != NULL) {
			/* A reply that came and was not looked at yet may
			 * already say the stream is over. */
			if (cl->done && cl->res.code == GILD_OK && cl->chunks.end)
				s->server_done = true;
			gild__table_remove(c, cl);
		}
		cancel = !s->server_done && !s->lost;
		if (s->watching)
			gild__unwatch(c, &s->watch);
		if (s->prev != NULL)
			s->prev->next = s->next;
		else
			c->streams = s->next;
		if (s->next != NULL)
			s->next->prev = s->prev;
		gild__unlock(c);
		gild__call_free(cl);
		/* The server stops the generator; the reply to a StreamNext
		 * still in flight finds no entry and is dropped. */
		if (cancel)
			gild__send_cancel(c, s->conn, s->id);
	}
	while (s->len > 0) {
		gild_value *v;

		stream_pop(s, &v);
		gild_value_free(v);
	}
	free(s->queue);
	gild_error_clear(&s->error);
	if (s->efd >= 0) {
		close(s->efd);
		gild__waiter_fini(&s->watch);
	}
	free(s);
}

