/* libgild: sending requests, each tracked as a table entry. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Prepends the request id to body and sends it on k. Blocks while nng's
 * send queue is full, at most REDIAL_WAIT_MS (then UNAVAILABLE). */
int
gild__send_request(conn *k, codec_buf *body, uint64_t id, gild_error *err)
{
	nng_msg *m = NULL;
	codec_buf small = {0};
	const uint8_t *data;
	size_t len;
	int rv, rc;

	if ((rc = codec_encode_id(body, id, err)) != GILD_OK ||
	    (rc = codec_encode_token(body, k->c->token, err)) != GILD_OK)
		return rc;
	data = codec_buf_data(body);
	len = codec_buf_len(body);
	/* A large request to a local server with shared memory: only a
	 * reference to its memfd goes over nng. */
	if ((rc = gild__shm_wrap(k, data, len, id, &small)) < 0) {
		codec_buf_fini(&small);
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	} else if (rc == 0) {
		data = codec_buf_data(&small);
		len = codec_buf_len(&small);
	}
	rv = nng_msg_alloc(&m, len);
	if (rv == 0)
		memcpy(nng_msg_body(m), data, len);
	codec_buf_fini(&small);
	if (rv != 0)
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	/* A raw REQ socket leaves the request id header to us: 32 bits, high
	 * bit set. Replies are matched by the id in the body instead. */
	pthread_mutex_lock(&k->c->mtx);
	clock_gettime(CLOCK_MONOTONIC, &k->c->last_send);
	gild__unlock(k->c);
	if ((rv = nng_msg_header_append_u32(m, 0x80000000u |
	    (uint32_t) (id & 0x7fffffffu))) != 0 ||
	    (rv = nng_sendmsg(k->sock, m, 0)) != 0) {
		nng_msg_free(m);
		return error_set(err, GILD_UNAVAILABLE, "cannot send to %s: %s",
		    k->url, nng_strerror(rv));
	}
	return GILD_OK;
}


/* Takes n entries entered by `enter` (ids first..first+n-1) out again. */
static void
unenter(gild_client *c, uint64_t first, size_t n)
{
	call *cl;

	pthread_mutex_lock(&c->mtx);
	for (size_t i = 0; i < n; i++) {
		if ((cl = gild__table_find(c, first + i)) != NULL) {
			gild__table_remove(c, cl);
			gild__call_free(cl);
		}
	}
	gild__unlock(c);
}

/* Enters n new table entries with consecutive ids from *first: the first of
 * `kind`, the others CALL_USER (a batch's calls), all on connection `want`
 * (-1: the next one that is up). Blocks while GILD_MAX_IN_FLIGHT replies are
 * awaited, and up to REDIAL_WAIT_MS while no connection is up. On GILD_OK
 * *kout is their connection; on failure *first is 0 and *kout NULL (the
 * callers' locals are then set on every path that gcc -O3 can see). */
static int
enter(gild_client *c, enum call_kind kind, size_t n, int want,
    uint64_t *first, conn **kout, gild_error *err)
{
	conn *k = NULL;
	struct timespec ts;
	waiter w;
	size_t i;

	*first = 0;
	*kout = NULL;
	gild__waiter_init(&w, WAIT_CHANGE, 0);
	pthread_mutex_lock(&c->mtx);
	while (c->n_pending + n > GILD_MAX_IN_FLIGHT)
		gild__sleep(c, &w, -1, NULL);
	/* With every connection down (a server restarting, a connection it
	 * dropped), wait a little for nng's redial before giving up. */
	gild__deadline_of(REDIAL_WAIT_MS, &ts);
	while ((k = gild__next_conn(c, kind, want)) == NULL &&
	       gild__sleep(c, &w, REDIAL_WAIT_MS, &ts))
		;
	gild__waiter_fini(&w);
	if (k == NULL) {
		bool up = false;

		for (i = 0; i < c->n_conns; i++)
			up |= c->conns[i].pipes > 0;
		gild__unlock(c);
		if (up)
			return error_set(err, GILD_UNAVAILABLE,
			    "no server takes new calls: the connected ones are "
			    "shutting down (they refused calls as not started), "
			    "and no other came up within %d ms",
			    REDIAL_WAIT_MS);
		return error_set(err, GILD_UNAVAILABLE,
		    "not connected to any server (none came back within %d ms)",
		    REDIAL_WAIT_MS);
	}
	*first = c->next_id;
	c->next_id += n;
	for (i = 0; i < n; i++) {
		call *cl = calloc(1, sizeof(*cl));

		if (cl == NULL)
			break;
		cl->id = *first + i;
		cl->kind = i == 0 ? kind : CALL_USER;
		cl->members = i == 0 && kind == CALL_BATCH ? n - 1 : 0;
		cl->conn = k->idx;
		/* Calls free to go to any server may be sent again when a
		 * draining one refuses them (see the top of the file). */
		cl->movable = (cl->kind == CALL_USER || cl->kind == CALL_SYNC) &&
			      want < 0;
		if (gild__table_insert(c, cl) != 0) {
			free(cl);
			break;
		}
	}
	gild__unlock(c);
	if (i < n) {
		unenter(c, *first, i);
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	}
	*kout = k;
	return GILD_OK;
}

/* Keeps sent call `id`'s encoded request (id and token included) in its
 * entry when the call may be sent again, in case a draining server refuses
 * it (see resend_pass); then takes *body. */
static void
keep_body(gild_client *c, uint64_t id, codec_buf *body)
{
	call *cl;

	pthread_mutex_lock(&c->mtx);
	if ((cl = gild__table_find(c, id)) != NULL && cl->movable && !cl->done) {
		cl->body = *body;
		memset(body, 0, sizeof(*body));
		if (cl->refused) /* the refusal came first */
			pthread_cond_signal(&c->resend_cv);
	}
	gild__unlock(c);
}

/* Sends a request whose body is in *body, tracked as a new table entry of
 * `kind`, on connection `want` (-1: the next one that is up). On GILD_OK *id
 * names the entry and *idx (when not NULL) is its connection. */
int
gild__start(gild_client *c, enum call_kind kind, codec_buf *body, int want,
    uint64_t *id, size_t *idx, gild_error *err)
{
	conn *k;
	int rc;

	if ((rc = enter(c, kind, 1, want, id, &k, err)) != GILD_OK)
		return rc;
	if (idx != NULL)
		*idx = k->idx;
	if ((rc = gild__send_request(k, body, *id, err)) != GILD_OK)
		unenter(c, *id, 1);
	else
		keep_body(c, *id, body);
	return rc;
}

/* Asks connection `idx` to cancel call `target`. Failures are ignored: a
 * lost connection cancels the call anyway. */
void
gild__send_cancel(gild_client *c, size_t idx, uint64_t target)
{
	codec_buf body = {0};
	uint64_t id;

	pthread_mutex_lock(&c->mtx);
	id = c->next_id++;
	gild__unlock(c);
	if (codec_encode_cancel(&body, target, NULL) == GILD_OK)
		gild__send_request(&c->conns[idx], &body, id, NULL);
	codec_buf_fini(&body);
}

int
gild_submit_timeout(gild_client *c, const char *function,
    const gild_value *args, const gild_value *kwargs, int timeout_ms,
    gild_call_id *id, gild_error *err)
{
	return gild_submit_traced(c, function, args, kwargs, timeout_ms, NULL,
	    id, err);
}

/* Prepends call i's trace context (traces: NULL or n of them) to body. */
static int
encode_trace(codec_buf *body, const gild_trace_context *traces, size_t i,
    gild_error *err)
{
	if (traces == NULL)
		return GILD_OK;
	return codec_encode_trace(body, traces[i].traceparent,
	    traces[i].tracestate, err);
}

int
gild_submit_traced(gild_client *c, const char *function,
    const gild_value *args, const gild_value *kwargs, int timeout_ms,
    const gild_trace_context *trace, gild_call_id *id, gild_error *err)
{
	codec_buf body = {0};
	uint64_t cid;
	int rc;

	if (c == NULL || id == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	if ((rc = codec_encode_call(&body, function, args, kwargs,
	    timeout_ms > 0 ? (uint32_t) timeout_ms : 0, err)) == GILD_OK &&
	    (rc = encode_trace(&body, trace, 0, err)) == GILD_OK &&
	    (rc = gild__start(c, CALL_USER, &body, -1, &cid, NULL, err)) == GILD_OK)
		*id = cid;
	codec_buf_fini(&body);
	return rc;
}

int
gild_submit_exec(gild_client *c, const char *source,
    const gild_value *variables, const char *filename, int timeout_ms,
    gild_call_id *id, gild_error *err)
{
	codec_buf body = {0};
	uint64_t cid;
	int rc;

	if (c == NULL || source == NULL || id == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	if ((rc = codec_encode_exec(&body, source, strlen(source), variables,
	    filename, timeout_ms > 0 ? (uint32_t) timeout_ms : 0, err)) ==
	    GILD_OK &&
	    (rc = gild__start(c, CALL_USER, &body, -1, &cid, NULL, err)) == GILD_OK)
		*id = cid;
	codec_buf_fini(&body);
	return rc;
}

int
gild_submit(gild_client *c, const char *function, const gild_value *args,
    const gild_value *kwargs, gild_call_id *id, gild_error *err)
{
	return gild_submit_timeout(c, function, args, kwargs, 0, id, err);
}

int
gild_submit_many(gild_client *c, const gild_call_spec *calls, size_t n,
    gild_call_id *ids, gild_error *err)
{
	return gild_submit_many_traced(c, calls, NULL, n, ids, err);
}

int
gild_submit_many_traced(gild_client *c, const gild_call_spec *calls,
    const gild_trace_context *traces, size_t n, gild_call_id *ids,
    gild_error *err)
{
	codec_buf body = {0}, *each;
	uint64_t first;
	size_t mark;
	conn *k;
	int rc;

	if (c == NULL || calls == NULL || ids == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	if (n == 0 || n > GILD_MAX_BATCH)
		return error_set(err, GILD_INVALID_ARGUMENT,
		    "a batch holds 1 to %d calls, not %zu", GILD_MAX_BATCH, n);
	if ((each = calloc(n, sizeof(*each))) == NULL)
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	/* The batch's own entry first, then its calls' (the next ids). */
	if ((rc = enter(c, CALL_BATCH, n + 1, -1, &first, &k, err)) != GILD_OK) {
		free(each);
		return rc;
	}
	/* Each call as the Request it would be alone (its token too: a
	 * draining server's refusal sends it again alone, see resend_pass),
	 * then Request{batch: Batch{requests: [...]}}, written back to
	 * front. */
	for (size_t i = 0; i < n && rc == GILD_OK; i++) {
		const gild_call_spec *cs = &calls[i];

		if ((rc = codec_encode_call(&each[i], cs->function, cs->args,
			 cs->kwargs,
			 cs->timeout_ms > 0 ? (uint32_t) cs->timeout_ms : 0,
			 err)) == GILD_OK &&
		    (rc = encode_trace(&each[i], traces, i, err)) == GILD_OK &&
		    (rc = codec_encode_id(&each[i], first + 1 + i, err)) ==
			GILD_OK)
			rc = codec_encode_token(&each[i], c->token, err);
	}
	mark = codec_mark(&body);
	for (size_t i = n; i-- > 0 && rc == GILD_OK;) {
		size_t m = codec_mark(&body);

		if ((rc = codec_prepend(&body, codec_buf_data(&each[i]),
			 codec_buf_len(&each[i]), err)) == GILD_OK)
			rc = codec_wrap(&body, m, GILD_F_BATCH_REQUESTS, err);
	}
	if (rc == GILD_OK)
		rc = codec_wrap(&body, mark, GILD_F_REQUEST_BATCH, err);
	if (rc == GILD_OK)
		rc = gild__send_request(k, &body, first, err);
	codec_buf_fini(&body);
	if (rc != GILD_OK)
		unenter(c, first, n + 1);
	for (size_t i = 0; i < n; i++) {
		if (rc == GILD_OK) {
			ids[i] = first + 1 + i;
			keep_body(c, ids[i], &each[i]);
		}
		codec_buf_fini(&each[i]);
	}
	free(each);
	return rc;
}

