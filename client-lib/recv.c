/* libgild: what nng's threads deliver: replies, which end table entries,
 * and connections coming and going. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "value.h"
#include "wire.h"

/* A VALUE_ENCODED copy of a result's bytes (gild__keep_encoded), or
 * NULL when out of memory. */
static gild_value *
encoded_copy(const codec_reply *r)
{
	uint8_t *p = malloc(r->len ? r->len : 1);
	gild_value *v;

	if (p == NULL)
		return NULL;
	if (r->len > 0)
		memcpy(p, r->data, r->len);
	if ((v = value_encoded(p, r->len)) == NULL)
		free(p);
	return v;
}

/* Turns one received Reply into the outcome of a call of `kind`; with
 * keep, a result stays encoded (gild__keep_encoded). */
static void
reply_outcome(enum call_kind kind, const codec_reply *r, gild_result *res,
    bool keep)
{
	gild_error derr = {0};

	if (r->body == GILD__V1__REPLY__BODY_ERROR) {
		if (codec_decode_error(r->data, r->len, &res->error) != GILD_OK)
			error_set(&res->error, GILD_INTERNAL,
			    "malformed error reply from the server");
	} else if (r->body == GILD__V1__REPLY__BODY_RESULT &&
	    (kind == CALL_USER || kind == CALL_SYNC) && keep) {
		if ((res->value = encoded_copy(r)) == NULL)
			error_set(&res->error, GILD_RESOURCE_EXHAUSTED,
			    "out of memory");
	} else if (r->body == GILD__V1__REPLY__BODY_RESULT &&
	    (kind == CALL_USER || kind == CALL_SYNC)) {
		if (codec_decode_value(r->data, r->len, &res->value, &derr) !=
		    GILD_OK)
			error_set(&res->error, GILD_INTERNAL,
			    "bad result from the server: %s",
			    derr.message ? derr.message : "out of memory");
	} else if (r->body == GILD__V1__REPLY__BODY_PONG && kind == CALL_PING) {
		Gild__V1__Pong *p = gild__v1__pong__unpack(NULL, r->len, r->data);

		if (p == NULL)
			error_set(&res->error, GILD_INTERNAL, "malformed pong");
		else if ((res->value = gild_cstr(p->server_version ?
		    p->server_version : "")) == NULL)
			error_set(&res->error, GILD_INTERNAL,
			    "bad server version in pong");
		gild__v1__pong__free_unpacked(p, NULL);
	} else if (r->body == GILD__V1__REPLY__BODY_PONG && kind == CALL_SHM) {
		/* Decoded by the caller (shm.c). */
		if ((res->value = gild_bytes(r->data, r->len)) == NULL)
			error_set(&res->error, GILD_RESOURCE_EXHAUSTED,
			    "out of memory");
	} else if (r->body == GILD__V1__REPLY__BODY_STATUS &&
	    kind == CALL_STATUS) {
		/* Decoded by the caller (client_status_message). */
		if ((res->value = gild_bytes(r->data, r->len)) == NULL)
			error_set(&res->error, GILD_RESOURCE_EXHAUSTED,
			    "out of memory");
	} else {
		error_set(&res->error, GILD_INTERNAL,
		    "unexpected reply (body %d) from the server", r->body);
	}
	gild_error_clear(&derr);
	res->code = res->error.code;
}

/* Turns one received Reply into the outcome of a CALL_STREAM entry: Chunks
 * into *ch; a Reply.error into *ch as the stream's end. */
static void
stream_outcome(const codec_reply *r, gild_result *res, codec_chunks *ch,
    bool keep)
{
	gild_error derr = {0};

	if (r->body == GILD__V1__REPLY__BODY_CHUNKS) {
		if (codec_decode_chunks_as(r->data, r->len, keep, ch, &derr) !=
		    GILD_OK)
			error_set(&res->error, GILD_INTERNAL,
			    "bad stream chunks from the server: %s",
			    derr.message ? derr.message : "out of memory");
	} else if (r->body == GILD__V1__REPLY__BODY_ERROR) {
		if (codec_decode_error(r->data, r->len, &ch->error) != GILD_OK)
			error_set(&res->error, GILD_INTERNAL,
			    "malformed error reply from the server");
		ch->end = true;
	} else {
		error_set(&res->error, GILD_INTERNAL,
		    "unexpected reply (body %d) to a stream from the server",
		    r->body);
	}
	gild_error_clear(&derr);
	res->code = res->error.code;
	if (res->code != GILD_OK)
		codec_chunks_fini(ch);
}

static void batch_end(gild_client *c, uint64_t id, const gild_error *why);

/* Whether an encoded Error says its request was refused without being
 * started (a draining server): safe to send again. */
static bool
error_not_started(const uint8_t *data, size_t len)
{
	wire_field f;

	return wire_find(data, len, GILD_F_ERROR_NOT_STARTED, &f) == 1 &&
	    f.type == WIRE_VARINT && f.value != 0;
}

/* One Reply that came in on pipe `pipe` of k: alone (top), or one of a
 * batch reply's. */
static void
deliver_one(conn *k, uint32_t pipe, const uint8_t *buf, size_t len, bool top)
{
	gild_client *c = k->c;
	gild_result res = {0};
	codec_chunks ch = {0};
	codec_reply r;
	enum call_kind kind;
	bool not_started, keep;
	call *cl;

	if (codec_scan_reply(buf, len, &r) != 0) {
		wire_field f;

		/* Still fail the call the id names, if the id can be read. */
		if (wire_find(buf, len, GILD_F_REPLY_ID, &f) != 1 ||
		    f.type != WIRE_VARINT)
			return;
		memset(&r, 0, sizeof(r));
		r.id = f.value;
		r.body = -1;
	}
	pthread_mutex_lock(&c->mtx);
	cl = gild__table_find(c, r.id);
	kind = cl != NULL ? cl->kind : CALL_USER;
	keep = c->keep_encoded;
	gild__unlock(c);
	if (cl == NULL || r.id == 0)
		return; /* cancelled, forgotten or never ours */
	if (kind == CALL_BATCH) {
		/* The batch as a whole was refused (a wrong token, say). */
		if (top) {
			reply_outcome(kind, &r, &res, keep);
			batch_end(c, r.id, &res.error);
			gild_result_clear(&res);
		}
		return;
	}
	/* Decode outside the lock; the entry may go away meanwhile. */
	if (r.body == -1)
		res.code = error_set(&res.error, GILD_INTERNAL,
		    "malformed reply from the server");
	else if (kind == CALL_STREAM)
		stream_outcome(&r, &res, &ch, keep);
	else
		reply_outcome(kind, &r, &res, keep);
	not_started = r.body == GILD__V1__REPLY__BODY_ERROR &&
	    res.code == GILD_UNAVAILABLE && error_not_started(r.data, r.len);
	pthread_mutex_lock(&c->mtx);
	if (not_started)
		gild__note_refusal(c, k, pipe);
	cl = gild__table_find(c, r.id);
	if (cl != NULL && !cl->done && !cl->refused) {
		if (not_started && cl->movable) {
			gild__refuse(c, cl, &res);
		} else {
			if (cl->kind == CALL_STREAM) {
				cl->chunks = ch;
				memset(&ch, 0, sizeof(ch));
			}
			gild__table_finish(c, cl, &res);
		}
	}
	gild__unlock(c);
	gild_result_clear(&res);
	codec_chunks_fini(&ch);
}

/* Ends batch `id`: its calls the reply left out (all of them, when the
 * server refused the batch: why) end with an error; its entry goes. */
static void
batch_end(gild_client *c, uint64_t id, const gild_error *why)
{
	call *b, *cl;

	pthread_mutex_lock(&c->mtx);
	if ((b = gild__table_find(c, id)) == NULL || b->kind != CALL_BATCH) {
		gild__unlock(c);
		return;
	}
	for (uint64_t i = 1; i <= b->members; i++) {
		gild_result res = {0};

		/* Done, or refused: waiting to be sent again alone, or sent. */
		if ((cl = gild__table_find(c, id + i)) == NULL || cl->done ||
		    cl->refused || cl->resent)
			continue;
		if (why != NULL && why->code != GILD_OK)
			res.code = error_set(&res.error, why->code, "%s",
			    why->message ? why->message : "");
		else
			res.code = error_set(&res.error, GILD_INTERNAL,
			    "the server's reply to its batch left it out");
		gild__table_finish(c, cl, &res);
	}
	gild__table_remove(c, b);
	gild__unlock(c);
	gild__call_free(b);
}

/* A received message: one Reply, or a batch's (Reply.batch), whose
 * replies are delivered one by one. */
static void
deliver(conn *k, uint32_t pipe, const uint8_t *buf, size_t len)
{
	wire_field f, sub;

	if (wire_find(buf, len, GILD_F_REPLY_BATCH, &f) != 1 ||
	    f.type != WIRE_LEN) {
		deliver_one(k, pipe, buf, len, true);
		return;
	}
	for (const uint8_t *p = f.data, *end = f.data + f.len;
	     wire_next(&p, end, &sub) == 1;)
		if (sub.number == GILD_F_REPLIES_REPLIES &&
		    sub.type == WIRE_LEN)
			deliver_one(k, pipe, sub.data, sub.len, false);
	if (wire_find(buf, len, GILD_F_REPLY_ID, &f) == 1 &&
	    f.type == WIRE_VARINT)
		batch_end(k->c, f.value, NULL);
}

void
gild__recv_cb(void *arg)
{
	conn *k = arg;
	int rv = nng_aio_result(k->aio);
	nng_msg *m;

	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return; /* the socket is closing */
	if (rv == 0) {
		const uint8_t *p;
		size_t n;

		m = nng_aio_get_msg(k->aio);
		/* A large reply through shared memory: the memfd it names. */
		if (gild__shm_unwrap(k, nng_msg_body(m), nng_msg_len(m), &p,
			&n) == 0) {
			deliver(k, nng_pipe_id(nng_msg_get_pipe(m)), p, n);
			gild__shm_unmap(p, n);
		} else {
			deliver(k, nng_pipe_id(nng_msg_get_pipe(m)),
			    nng_msg_body(m), nng_msg_len(m));
		}
		nng_msg_free(m);
	}
	nng_recv_aio(k->sock, k->aio);
}

void
gild__pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	conn *k = arg;
	gild_client *c = k->c;

	pthread_mutex_lock(&c->mtx);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		if (k->pipes < (int) (sizeof(k->pipe_ids) / sizeof(k->pipe_ids[0])))
			k->pipe_ids[k->pipes++] = (uint32_t) nng_pipe_id(p);
		gild__wake_all(c); /* calls may wait for a redial */
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		for (int i = 0; i < k->pipes; i++) {
			if (k->pipe_ids[i] == (uint32_t) nng_pipe_id(p)) {
				k->pipe_ids[i] = k->pipe_ids[--k->pipes];
				break;
			}
		}
		/* Its batches' entries go; their calls end below. */
		for (size_t i = 0; i < c->n_buckets; i++) {
			for (call *cl = c->buckets[i]; cl != NULL;) {
				if (cl->kind != CALL_BATCH || cl->conn != k->idx) {
					cl = cl->hnext;
					continue;
				}
				gild__table_remove(c, cl);
				gild__call_free(cl);
				cl = c->buckets[i];
			}
		}
		if (k->shm_pipe == (uint32_t) nng_pipe_id(p))
			k->shm_pipe = 0; /* its side socket was for that pipe */
		if (k->refusing == (uint32_t) nng_pipe_id(p)) {
			k->refusing = 0;
			k->verify = true;
		}
		for (size_t i = 0; i < c->n_buckets; i++) {
			for (call *cl = c->buckets[i]; cl != NULL; cl = cl->hnext) {
				gild_result res = {0};

				/* A refused call is not on the wire. */
				if (cl->done || cl->refused || cl->conn != k->idx)
					continue;
				res.code = error_set(&res.error, GILD_UNAVAILABLE,
				    "connection to %s lost", k->url);
				gild__table_finish(c, cl, &res);
			}
		}
		/* The server forgets a connection's streams with it. */
		for (gild_stream *s = c->streams; s != NULL; s = s->next)
			if (s->conn == k->idx)
				s->lost = true;
		gild__wake_all(c);
	}
	pthread_cond_signal(&c->resend_cv); /* refused calls may go now */
	gild__unlock(c);
}

