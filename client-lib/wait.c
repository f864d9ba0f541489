/* libgild: waiting for calls to end, and the calls that wait for their
 * own reply (gild_call, gild_ping, ...). */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "value.h"

void
gild__deadline_of(int timeout_ms, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

void
gild__waiter_init(waiter *w, enum wait_for what, uint64_t id)
{
	memset(w, 0, sizeof(*w));
	sem_init(&w->sem, 0, 0);
	w->efd = -1;
	w->what = what;
	w->id = id;
}

void
gild__waiter_fini(waiter *w)
{
	sem_destroy(&w->sem);
}

/* Under c->mtx: w leaves c->waiters. */
static void
unlink_waiter(gild_client *c, waiter *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		c->waiters = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
}

/* Under c->mtx: w leaves c->waiters for c->to_wake; a watch's eventfd is
 * written now, while its stream cannot go. */
static void
choose(gild_client *c, waiter *w)
{
	unlink_waiter(c, w);
	w->prev = NULL;
	w->chosen = true;
	if (w->efd >= 0) {
		uint64_t one = 1;
		/* A full counter (EAGAIN) is readable all the same. */
		ssize_t r = write(w->efd, &one, sizeof(one));
		(void) r;
		w->next = NULL;
		return;
	}
	w->next = c->to_wake;
	c->to_wake = w;
}

void
gild__watch(gild_client *c, waiter *w)
{
	w->chosen = false;
	w->prev = NULL;
	w->next = c->waiters;
	if (c->waiters != NULL)
		c->waiters->prev = w;
	c->waiters = w;
}

void
gild__unwatch(gild_client *c, waiter *w)
{
	if (!w->chosen)
		unlink_waiter(c, w);
	w->chosen = true;
}

void
gild__wake_entry(gild_client *c, uint64_t id, enum call_kind kind, bool gone)
{
	bool poller = kind == CALL_USER; /* one, for one entry ended */

	for (waiter *w = c->waiters, *next; w != NULL; w = next) {
		next = w->next;
		if ((w->what == WAIT_ENTRY && w->id == id) ||
		    w->what == WAIT_CHANGE) {
			choose(c, w);
		} else if (w->what == WAIT_ANY_USER && kind == CALL_USER &&
			   ((gone && c->n_user == 0) || (!gone && poller))) {
			choose(c, w);
			poller = false;
		}
	}
}

void
gild__wake_all(gild_client *c)
{
	while (c->waiters != NULL)
		choose(c, c->waiters);
}

void
gild__wake_now(gild_client *c)
{
	waiter *w = c->to_wake, *next;

	/* A chosen thread's waiter lives until its post is taken: read next
	 * first. */
	for (c->to_wake = NULL; w != NULL; w = next) {
		next = w->next;
		sem_post(&w->sem);
	}
}

void
gild__unlock(gild_client *c)
{
	waiter *w = c->to_wake, *next;

	c->to_wake = NULL;
	pthread_mutex_unlock(&c->mtx);
	for (; w != NULL; w = next) {
		next = w->next;
		sem_post(&w->sem);
	}
}

bool
gild__sleep(gild_client *c, waiter *w, int timeout_ms,
    const struct timespec *ts)
{
	int r;

	if (timeout_ms == 0)
		return false;
	gild__watch(c, w);
	gild__unlock(c);
	do
		r = timeout_ms < 0 ? sem_wait(&w->sem)
				   : sem_clockwait(&w->sem, CLOCK_MONOTONIC, ts);
	while (r == -1 && errno == EINTR);
	pthread_mutex_lock(&c->mtx);
	if (!w->chosen) {
		/* Timed out, and nobody chose it meanwhile. */
		unlink_waiter(c, w);
		return false;
	}
	/* Chosen: its post has come (r == 0) or comes as soon as the waker
	 * is out of gild__unlock; take it, so that w can go. */
	while (r == -1 && (r = sem_wait(&w->sem)) == -1 && errno == EINTR)
		;
	return true;
}

/* Moves a finished entry's outcome into *res and frees the entry. */
static void
take(gild_client *c, call *cl, gild_result *res)
{
	gild__table_remove(c, cl);
	*res = cl->res;
	memset(&cl->res, 0, sizeof(cl->res));
	gild__call_free(cl);
}

/* Waits for entry `id` of `kind`: GILD_OK with *res, GILD_NOT_FOUND, or
 * GILD_DEADLINE_EXCEEDED (the entry stays). */
static int
wait_call(gild_client *c, uint64_t id, enum call_kind kind, int timeout_ms,
    gild_result *res)
{
	struct timespec ts;
	waiter w;
	int rc;

	gild__waiter_init(&w, WAIT_ENTRY, id);
	gild__deadline_of(timeout_ms > 0 ? timeout_ms : 0, &ts);
	pthread_mutex_lock(&c->mtx);
	for (;;) {
		call *cl = gild__table_find(c, id);

		if (cl == NULL || cl->kind != kind) {
			rc = GILD_NOT_FOUND;
			break;
		}
		if (cl->done) {
			take(c, cl, res);
			rc = GILD_OK;
			break;
		}
		if (!gild__sleep(c, &w, timeout_ms, &ts)) {
			/* A last look: the reply may have come with the timeout. */
			cl = gild__table_find(c, id);
			if (cl != NULL && cl->kind == kind && cl->done) {
				take(c, cl, res);
				rc = GILD_OK;
			} else {
				rc = cl != NULL && cl->kind == kind ?
				    GILD_DEADLINE_EXCEEDED : GILD_NOT_FOUND;
			}
			break;
		}
	}
	gild__unlock(c);
	gild__waiter_fini(&w);
	return rc;
}

int
gild_wait(gild_client *c, gild_call_id id, int timeout_ms, gild_result *res)
{
	if (c == NULL || res == NULL)
		return GILD_INVALID_ARGUMENT;
	return wait_call(c, id, CALL_USER, timeout_ms, res);
}

int
gild_poll(gild_client *c, int timeout_ms, gild_result *res)
{
	struct timespec ts;
	waiter w;
	int rc;

	if (c == NULL || res == NULL)
		return GILD_INVALID_ARGUMENT;
	gild__waiter_init(&w, WAIT_ANY_USER, 0);
	gild__deadline_of(timeout_ms > 0 ? timeout_ms : 0, &ts);
	pthread_mutex_lock(&c->mtx);
	for (;;) {
		if (c->done_head != NULL) {
			take(c, c->done_head, res);
			rc = GILD_OK;
			break;
		}
		if (c->n_user == 0) {
			rc = GILD_NOT_FOUND;
			break;
		}
		if (!gild__sleep(c, &w, timeout_ms, &ts)) {
			rc = GILD_DEADLINE_EXCEEDED;
			if (c->done_head != NULL) {
				take(c, c->done_head, res);
				rc = GILD_OK;
			}
			break;
		}
	}
	gild__unlock(c);
	gild__waiter_fini(&w);
	return rc;
}

size_t
gild_in_flight(gild_client *c)
{
	size_t n;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&c->mtx);
	n = c->n_user;
	gild__unlock(c);
	return n;
}

void
gild_result_clear(gild_result *res)
{
	if (res == NULL)
		return;
	gild_value_free(res->value);
	gild_error_clear(&res->error);
	memset(res, 0, sizeof(*res));
}

/* Forgets entry `id` of `kind`; when its reply was still awaited, asks the
 * server to cancel it. GILD_OK or GILD_NOT_FOUND. */
static int
forget(gild_client *c, uint64_t id, enum call_kind kind)
{
	call *cl;
	bool pending;
	size_t idx;

	pthread_mutex_lock(&c->mtx);
	cl = gild__table_find(c, id);
	if (cl == NULL || cl->kind != kind) {
		gild__unlock(c);
		return GILD_NOT_FOUND;
	}
	pending = !cl->done;
	idx = cl->conn;
	gild__table_remove(c, cl);
	gild__unlock(c);
	gild__call_free(cl);
	if (pending)
		gild__send_cancel(c, idx, id);
	return GILD_OK;
}

int
gild_cancel(gild_client *c, gild_call_id id, gild_error *err)
{
	call *cl;
	bool pending;
	size_t idx;

	if (c == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL client");
	pthread_mutex_lock(&c->mtx);
	cl = gild__table_find(c, id);
	if (cl == NULL || cl->kind != CALL_USER) {
		gild__unlock(c);
		return error_set(err, GILD_NOT_FOUND,
		    "no call %llu in flight", (unsigned long long) id);
	}
	pending = !cl->done;
	idx = cl->conn;
	gild__unlock(c);
	/* The call stays in flight: its end (CANCELLED, or its result if it
	 * finished first) comes back like any other. */
	if (pending)
		gild__send_cancel(c, idx, id);
	return GILD_OK;
}

/* start + wait for the synchronous functions. On GILD_OK *out (may be NULL
 * to drop it) gets the value; otherwise err gets the error. */
int
gild__round_trip_on(gild_client *c, enum call_kind kind, codec_buf *body,
    int want, int timeout_ms, gild_value **out, gild_error *err)
{
	gild_result res = {0};
	uint64_t id;
	int rc;

	if ((rc = gild__start(c, kind, body, want, &id, NULL, err)) != GILD_OK)
		return rc;
	rc = wait_call(c, id, kind, timeout_ms, &res);
	if (rc == GILD_DEADLINE_EXCEEDED) {
		forget(c, id, kind);
		return error_set(err, rc, "no reply within %d ms", timeout_ms);
	}
	if (rc != GILD_OK) /* cannot happen: only this thread removes it */
		return error_set(err, GILD_INTERNAL, "call %llu vanished",
		    (unsigned long long) id);
	rc = res.code;
	if (rc == GILD_OK) {
		if (out != NULL) {
			*out = res.value;
			res.value = NULL;
		}
	} else {
		error_move(err, &res.error);
	}
	gild_result_clear(&res);
	return rc;
}

uint32_t
gild__deadline_ms(int timeout_ms)
{
	return timeout_ms < 0 ? 0 : timeout_ms == 0 ? 1 : (uint32_t) timeout_ms;
}

int
gild__reply_wait_ms(int timeout_ms)
{
	if (timeout_ms < 0)
		return -1;
	return timeout_ms > INT_MAX - GILD_CALL_GRACE_MS
		   ? INT_MAX
		   : timeout_ms + GILD_CALL_GRACE_MS;
}

static int
round_trip(gild_client *c, enum call_kind kind, codec_buf *body,
    int timeout_ms, gild_value **out, gild_error *err)
{
	return gild__round_trip_on(c, kind, body, -1, timeout_ms, out, err);
}

int
gild_call(gild_client *c, const char *function, const gild_value *args,
    const gild_value *kwargs, int timeout_ms, gild_value **out,
    gild_error *err)
{
	codec_buf body = {0};
	int rc;

	if (c == NULL || out == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	*out = NULL;
	/* If even the wait passes, the call is cancelled. */
	if ((rc = codec_encode_call(&body, function, args, kwargs,
	    gild__deadline_ms(timeout_ms), err)) == GILD_OK)
		rc = round_trip(c, CALL_SYNC, &body,
		    gild__reply_wait_ms(timeout_ms), out, err);
	codec_buf_fini(&body);
	return rc;
}

int
gild_exec(gild_client *c, const char *source, const gild_value *variables,
    int timeout_ms, gild_value **out, gild_error *err)
{
	codec_buf body = {0};
	int rc;

	if (c == NULL || source == NULL || out == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	*out = NULL;
	if ((rc = codec_encode_exec(&body, source, strlen(source), variables,
	    NULL, gild__deadline_ms(timeout_ms), err)) == GILD_OK)
		rc = round_trip(c, CALL_SYNC, &body,
		    gild__reply_wait_ms(timeout_ms), out, err);
	codec_buf_fini(&body);
	return rc;
}

int
client_ping(gild_client *c, int timeout_ms, char **version, gild_error *err)
{
	codec_buf body = {0};
	gild_value *v = NULL;
	int rc;

	if (c == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL client");
	if ((rc = codec_encode_ping(&body, "gild", 4, err)) == GILD_OK)
		rc = round_trip(c, CALL_PING, &body, timeout_ms, &v, err);
	codec_buf_fini(&body);
	if (rc == GILD_OK && version != NULL) {
		const char *s = gild_value_str(v, NULL);

		if ((*version = strdup(s != NULL ? s : "")) == NULL)
			rc = error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	}
	gild_value_free(v);
	return rc;
}

int
gild_ping(gild_client *c, int timeout_ms, gild_error *err)
{
	return client_ping(c, timeout_ms, NULL, err);
}

int
client_status_message(gild_client *c, int timeout_ms, Gild__V1__Status **out,
    gild_error *err)
{
	codec_buf body = {0};
	gild_value *packed = NULL;
	const uint8_t *p;
	size_t len;
	int rc;

	*out = NULL;
	if ((rc = codec_encode_status(&body, err)) == GILD_OK)
		rc = round_trip(c, CALL_STATUS, &body, timeout_ms, &packed,
		    err);
	codec_buf_fini(&body);
	if (rc != GILD_OK)
		return rc;
	p = gild_value_bytes(packed, &len);
	if ((*out = gild__v1__status__unpack(NULL, len, p)) == NULL)
		rc = error_set(err, GILD_INTERNAL, "malformed status");
	gild_value_free(packed);
	return rc;
}

int
gild_status(gild_client *c, int timeout_ms, gild_value **out,
    gild_error *err)
{
	Gild__V1__Status *st;
	int rc;

	if (c == NULL || out == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	*out = NULL;
	if ((rc = client_status_message(c, timeout_ms, &st, err)) != GILD_OK)
		return rc;
	if (codec_status_to_value(st, out) != GILD_OK)
		rc = error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	gild__v1__status__free_unpacked(st, NULL);
	return rc;
}

