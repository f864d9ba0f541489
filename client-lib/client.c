/* libgild: connections to gild servers, the table of calls in flight, and
 * streams.
 *
 * One raw nng REQ socket per URL. Each call gets an id from a per-client
 * counter and an entry in a hash table (mutex + condvar); one receive is
 * always posted per socket, and its callback (on an nng thread) decodes the
 * Reply and completes the entry whose id the Reply carries. gild_wait and
 * gild_poll sleep on the condvar.
 *
 * A stream's Call and each of its StreamNext requests are entries too
 * (CALL_STREAM), at most one at a time per stream; the consumer's thread, in
 * gild_stream_next, moves a finished entry's chunks into the stream's queue
 * and sends the next StreamNext, so nothing is sent from nng's threads.
 *
 * A draining server refuses new calls as "not started" (Error.not_started).
 * Such a call is not ended: it is sent again, by the client's resender
 * thread (started on the first refusal), on another connection, or on this
 * one once the refusing connection has been closed and redialled (through a
 * load balancer, the redial reaches another server). The refusing
 * connection takes no new call and is closed as soon as nothing of this
 * client is running on it. To resend, a call keeps its encoded request
 * until it ends. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "client.h"
#include "codec.h"
#include "error.h"
#include "tlsconf.h"
#include "value.h"
#include "wire.h"

/* What a table entry is waiting for. Only CALL_USER entries are visible to
 * gild_wait / gild_poll / gild_cancel; the others belong to a synchronous
 * function running in some thread, or (CALL_STREAM: a stream's Call or
 * StreamNext, answered with Chunks) to a gild_stream. */
enum call_kind {
	CALL_USER, CALL_SYNC, CALL_PING, CALL_STATUS, CALL_STREAM,
	CALL_BATCH, /* a batch of `members` CALL_USER calls, the next ids */
};

typedef struct call {
	uint64_t id;
	enum call_kind kind;
	bool done;   /* res is filled; no reply is awaited any more */
	size_t conn; /* index of the connection the request went out on */
	size_t members; /* CALL_BATCH */
	/* Calls that may be resent (CALL_USER and CALL_SYNC sent to any
	 * server): the encoded request, kept until the call ends. */
	bool movable;
	codec_buf body;
	/* Refused as not started, waiting to be resent (res holds the
	 * refusal, its outcome if no server takes it in time). */
	bool refused;
	struct timespec give_up; /* refused: when to stop trying */
	struct call *rprev, *rnext; /* c->refused list */
	/* Sent again alone after its refusal: when it was a batch member, the
	 * batch's reply no longer speaks for it (the resender may send it
	 * before that reply has been read to its end). */
	bool resent;
	gild_result res;
	/* CALL_STREAM with res.code GILD_OK: what came. A Reply.error is
	 * kept here as a stream that ended with that error. */
	codec_chunks chunks;
	struct call *hnext;         /* hash chain */
	struct call *dprev, *dnext; /* done list, CALL_USER only */
} call;

typedef struct conn {
	gild_client *c;
	size_t idx;
	char *url;
	nng_socket sock;
	bool opened;
	/* TLS URLs: what every dialer of this URL gets, and for messages the
	 * CA file and the name the server's certificate must carry. */
	nng_tls_config *tls;
	char *tls_ca, *tls_name;
	bool redial; /* the first dial failed: dial in the background */
	nng_aio *aio; /* the receive always posted */
	/* Ids of the connected pipes; under c->mtx. A set, not a flag: nng runs
	 * pipe callbacks on several threads, so a redialled pipe's ADD_POST can
	 * come before the lost pipe's REM_POST, and a pipe that dies while
	 * being added gets a REM_POST without an ADD_POST. One dialer has one
	 * pipe at a time, give or take such an overlap. */
	uint32_t pipe_ids[4];
	int pipes;
	/* A pipe whose server refused a call as not started (it is draining),
	 * or 0: no new call goes out on it, and it is closed once this
	 * client has nothing running there. */
	uint32_t refusing;
	/* The refusing pipe is gone: its redialled successor takes calls once
	 * it has answered a ping. A server answers only on connections it
	 * counts, and a stopping gild waits for those to close before it
	 * exits, so a call sent after the ping is read, not lost with the
	 * connection (docs/reliability.md#draining). */
	bool verify;
} conn;

struct gild_client {
	char *token; /* sent with every request (gild_set_token), or NULL */
	pthread_mutex_t mtx;
	pthread_cond_t cv; /* a call finished or left, or a slot freed */
	conn *conns;
	size_t n_conns;
	size_t rr;
	uint64_t next_id;
	call **buckets; /* power of two many; ids are sequential */
	size_t n_buckets;
	size_t n_calls;
	size_t n_pending; /* entries not done: their replies may still come */
	struct timespec last_send; /* when a request last went out */
	size_t n_user;    /* CALL_USER entries: gild_in_flight */
	call *done_head, *done_tail;
	gild_stream *streams; /* open streams, so a lost connection ends them */
	/* The resender (see the top of the file), under mtx. */
	call *refused_head, *refused_tail; /* entries with refused set */
	bool resender_started, stopping;
	pthread_t resender;
	pthread_cond_t resend_cv; /* work for the resender, or stopping */
};

/* Where a stream is: a request for chunks in flight, none (more may be
 * asked for), or nothing more to receive. */
enum stream_state { STREAM_WAITING, STREAM_IDLE, STREAM_ENDED };

struct gild_stream {
	gild_client *c; /* NULL once gild_close has cut the stream off */
	uint64_t id;    /* the Call's request id: the stream's name on the wire */
	size_t conn;    /* its connection: the server keys streams by it */
	uint32_t window;
	/* The rest is under c->mtx. */
	enum stream_state state;
	uint64_t pull;     /* STREAM_WAITING: the entry whose Chunks are due */
	uint32_t pull_max; /* ... and how many chunks it may bring */
	gild_value **queue; /* ring of `window` slots: received, not returned */
	size_t head, len;
	uint64_t seq;      /* of queue[head]: the chunks returned so far */
	bool server_done;  /* the server ended it: closing needs no Cancel */
	bool lost;         /* its connection went down */
	int code;          /* STREAM_ENDED: GILD_STREAM_END or error.code */
	gild_error error;
	gild_stream *prev, *next; /* c->streams */
};

/* ---- the call table (callers hold c->mtx) ------------------------------ */

static call *
table_find(gild_client *c, uint64_t id)
{
	call *cl = c->buckets[id & (c->n_buckets - 1)];

	while (cl != NULL && cl->id != id)
		cl = cl->hnext;
	return cl;
}

static int
table_insert(gild_client *c, call *cl)
{
	call **slot;

	if (c->n_calls >= c->n_buckets) {
		size_t nb = c->n_buckets * 2;
		call **b = calloc(nb, sizeof(*b));

		if (b == NULL)
			return -1;
		for (size_t i = 0; i < c->n_buckets; i++) {
			call *e = c->buckets[i], *next;

			for (; e != NULL; e = next) {
				next = e->hnext;
				e->hnext = b[e->id & (nb - 1)];
				b[e->id & (nb - 1)] = e;
			}
		}
		free(c->buckets);
		c->buckets = b;
		c->n_buckets = nb;
	}
	slot = &c->buckets[cl->id & (c->n_buckets - 1)];
	cl->hnext = *slot;
	*slot = cl;
	c->n_calls++;
	if (!cl->done)
		c->n_pending++;
	if (cl->kind == CALL_USER)
		c->n_user++;
	return 0;
}

static void
done_unlink(gild_client *c, call *cl)
{
	if (cl->dprev != NULL)
		cl->dprev->dnext = cl->dnext;
	else if (c->done_head == cl)
		c->done_head = cl->dnext;
	if (cl->dnext != NULL)
		cl->dnext->dprev = cl->dprev;
	else if (c->done_tail == cl)
		c->done_tail = cl->dprev;
	cl->dprev = cl->dnext = NULL;
}

static void refused_unlink(gild_client *c, call *cl);

/* Takes cl out of the table (the caller frees it) and wakes waiters. */
static void
table_remove(gild_client *c, call *cl)
{
	call **p = &c->buckets[cl->id & (c->n_buckets - 1)];

	while (*p != cl)
		p = &(*p)->hnext;
	*p = cl->hnext;
	c->n_calls--;
	if (!cl->done)
		c->n_pending--;
	if (cl->kind == CALL_USER)
		c->n_user--;
	done_unlink(c, cl);
	refused_unlink(c, cl);
	pthread_cond_broadcast(&c->cv);
}

static void
call_free(call *cl)
{
	if (cl == NULL)
		return;
	gild_result_clear(&cl->res);
	codec_chunks_fini(&cl->chunks);
	codec_buf_fini(&cl->body);
	free(cl);
}

/* Marks cl done with the outcome *res (moved in) and wakes waiters. */
static void
table_finish(gild_client *c, call *cl, gild_result *res)
{
	uint64_t id = cl->id;

	cl->res = *res;
	cl->res.id = id;
	memset(res, 0, sizeof(*res));
	cl->done = true;
	codec_buf_fini(&cl->body);
	c->n_pending--;
	if (cl->kind == CALL_USER) {
		cl->dprev = c->done_tail;
		if (c->done_tail != NULL)
			c->done_tail->dnext = cl;
		else
			c->done_head = cl;
		c->done_tail = cl;
	}
	pthread_cond_broadcast(&c->cv);
}

/* ---- nng callbacks ----------------------------------------------------- */

/* Turns one received Reply into the outcome of a call of `kind`. */
static void
reply_outcome(enum call_kind kind, const codec_reply *r, gild_result *res)
{
	gild_error derr = {0};

	if (r->body == GILD__V1__REPLY__BODY_ERROR) {
		if (codec_decode_error(r->data, r->len, &res->error) != GILD_OK)
			error_set(&res->error, GILD_INTERNAL,
			    "malformed error reply from the server");
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
	} else if (r->body == GILD__V1__REPLY__BODY_STATUS &&
	    kind == CALL_STATUS) {
		Gild__V1__Status *s =
		    gild__v1__status__unpack(NULL, r->len, r->data);

		if (s == NULL)
			error_set(&res->error, GILD_INTERNAL, "malformed status");
		else if (codec_status_to_value(s, &res->value) != GILD_OK)
			error_set(&res->error, GILD_RESOURCE_EXHAUSTED,
			    "out of memory");
		gild__v1__status__free_unpacked(s, NULL);
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
stream_outcome(const codec_reply *r, gild_result *res, codec_chunks *ch)
{
	gild_error derr = {0};

	if (r->body == GILD__V1__REPLY__BODY_CHUNKS) {
		if (codec_decode_chunks(r->data, r->len, ch, &derr) != GILD_OK)
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
static void note_refusal(gild_client *c, conn *k, uint32_t pipe);
static void refuse(gild_client *c, call *cl, gild_result *res);

/* Error.not_started, as in gild.proto. */
enum { ERROR_NOT_STARTED = 5 };

/* Whether an encoded Error says its request was refused without being
 * started (a draining server): safe to send again. */
static bool
error_not_started(const uint8_t *data, size_t len)
{
	wire_field f;

	return wire_find(data, len, ERROR_NOT_STARTED, &f) == 1 &&
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
	bool not_started;
	call *cl;

	if (codec_scan_reply(buf, len, &r) != 0) {
		wire_field f;

		/* Still fail the call the id names, if the id can be read. */
		if (wire_find(buf, len, 1, &f) != 1 || f.type != WIRE_VARINT)
			return;
		memset(&r, 0, sizeof(r));
		r.id = f.value;
		r.body = -1;
	}
	pthread_mutex_lock(&c->mtx);
	cl = table_find(c, r.id);
	kind = cl != NULL ? cl->kind : CALL_USER;
	pthread_mutex_unlock(&c->mtx);
	if (cl == NULL || r.id == 0)
		return; /* cancelled, forgotten or never ours */
	if (kind == CALL_BATCH) {
		/* The batch as a whole was refused (a wrong token, say). */
		if (top) {
			reply_outcome(kind, &r, &res);
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
		stream_outcome(&r, &res, &ch);
	else
		reply_outcome(kind, &r, &res);
	not_started = r.body == GILD__V1__REPLY__BODY_ERROR &&
	    res.code == GILD_UNAVAILABLE && error_not_started(r.data, r.len);
	pthread_mutex_lock(&c->mtx);
	if (not_started)
		note_refusal(c, k, pipe);
	cl = table_find(c, r.id);
	if (cl != NULL && !cl->done && !cl->refused) {
		if (not_started && cl->movable) {
			refuse(c, cl, &res);
		} else {
			if (cl->kind == CALL_STREAM) {
				cl->chunks = ch;
				memset(&ch, 0, sizeof(ch));
			}
			table_finish(c, cl, &res);
		}
	}
	pthread_mutex_unlock(&c->mtx);
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
	if ((b = table_find(c, id)) == NULL || b->kind != CALL_BATCH) {
		pthread_mutex_unlock(&c->mtx);
		return;
	}
	for (uint64_t i = 1; i <= b->members; i++) {
		gild_result res = {0};

		/* Done, or refused: waiting to be sent again alone, or sent. */
		if ((cl = table_find(c, id + i)) == NULL || cl->done ||
		    cl->refused || cl->resent)
			continue;
		if (why != NULL && why->code != GILD_OK)
			res.code = error_set(&res.error, why->code, "%s",
			    why->message ? why->message : "");
		else
			res.code = error_set(&res.error, GILD_INTERNAL,
			    "the server's reply to its batch left it out");
		table_finish(c, cl, &res);
	}
	table_remove(c, b);
	pthread_mutex_unlock(&c->mtx);
	call_free(b);
}

/* A received message: one Reply, or a batch's (Reply.batch), whose
 * replies are delivered one by one. */
static void
deliver(conn *k, uint32_t pipe, const uint8_t *buf, size_t len)
{
	wire_field f, sub;

	if (wire_find(buf, len, 7 /* Reply.batch */, &f) != 1 ||
	    f.type != WIRE_LEN) {
		deliver_one(k, pipe, buf, len, true);
		return;
	}
	for (const uint8_t *p = f.data, *end = f.data + f.len;
	     wire_next(&p, end, &sub) == 1;)
		if (sub.number == 1 && sub.type == WIRE_LEN)
			deliver_one(k, pipe, sub.data, sub.len, false);
	if (wire_find(buf, len, 1, &f) == 1 && f.type == WIRE_VARINT)
		batch_end(k->c, f.value, NULL);
}

static void
recv_cb(void *arg)
{
	conn *k = arg;
	int rv = nng_aio_result(k->aio);
	nng_msg *m;

	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return; /* the socket is closing */
	if (rv == 0) {
		m = nng_aio_get_msg(k->aio);
		deliver(k, nng_pipe_id(nng_msg_get_pipe(m)), nng_msg_body(m),
		    nng_msg_len(m));
		nng_msg_free(m);
	}
	nng_recv_aio(k->sock, k->aio);
}

static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	conn *k = arg;
	gild_client *c = k->c;

	pthread_mutex_lock(&c->mtx);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		if (k->pipes < (int) (sizeof(k->pipe_ids) / sizeof(k->pipe_ids[0])))
			k->pipe_ids[k->pipes++] = (uint32_t) nng_pipe_id(p);
		pthread_cond_broadcast(&c->cv); /* calls may wait for a redial */
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
				table_remove(c, cl);
				call_free(cl);
				cl = c->buckets[i];
			}
		}
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
				table_finish(c, cl, &res);
			}
		}
		/* The server forgets a connection's streams with it. */
		for (gild_stream *s = c->streams; s != NULL; s = s->next)
			if (s->conn == k->idx)
				s->lost = true;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_cond_signal(&c->resend_cv); /* refused calls may go now */
	pthread_mutex_unlock(&c->mtx);
}

/* ---- connecting -------------------------------------------------------- */

/* What a failed dial of k most likely means, beyond nng's word for it. */
static const char *
dial_hint(const conn *k, int rv, char *buf, size_t len)
{
	if (k->tls != NULL && (rv == NNG_ECRYPTO || rv == NNG_EPEERAUTH)) {
		snprintf(buf, len, " (TLS handshake failed: the server's "
				   "certificate is not signed by a CA in %s "
				   "or does not name '%s', or the server does "
				   "not speak TLS there)",
		    k->tls_ca, k->tls_name);
		return buf;
	}
	if (k->tls != NULL && rv == NNG_ETIMEDOUT)
		return " (no TLS handshake within 10 s: is it a TLS listener?)";
	if (k->tls != NULL && (rv == NNG_ECONNSHUT || rv == NNG_ECLOSED))
		return " (the server ended the TLS handshake: it may require "
		       "a client certificate it trusts, or not speak TLS "
		       "there)";
	if (k->tls == NULL && rv == NNG_ECONNSHUT)
		return " (the server closed the connection at once: is it a "
		       "TLS listener, tls+tcp:// or wss://?)";
	return "";
}

/* Appends "; " and a formatted message about k's failed dial to the
 * message in err. */
static void
error_append(gild_error *err, const conn *k, int rv)
{
	char hint[PATH_MAX + 512], *msg;

	if (err == NULL)
		return;
	if (asprintf(&msg, "%s%scannot connect to %s: %s%s",
	    err->message ? err->message : "", err->message ? "; " : "",
	    k->url, nng_strerror(rv), dial_hint(k, rv, hint, sizeof(hint))) ==
	    -1)
		return;
	free(err->message);
	err->message = msg;
}

/* How long a call waits for a lost connection to be redialled. */
#define REDIAL_WAIT_MS 5000

static int
conn_open(conn *k, gild_error *err)
{
	int rv;

	if ((rv = nng_req0_open_raw(&k->sock)) != 0)
		return error_set(err, GILD_INTERNAL, "cannot open an nng socket: %s",
		    nng_strerror(rv));
	k->opened = true;
	/* nng's largest receive queue, no size limit on results, a send that
	 * gives up when the connection drops under it (else it would block
	 * until a redial, forever if none comes), and notice of every
	 * connection and disconnection. */
	if ((rv = nng_socket_set_int(k->sock, NNG_OPT_RECVBUF,
	    GILD_MAX_IN_FLIGHT)) != 0 ||
	    (rv = nng_socket_set_size(k->sock, NNG_OPT_RECVMAXSZ, 0)) != 0 ||
	    (rv = nng_socket_set_ms(k->sock, NNG_OPT_SENDTIMEO,
		 REDIAL_WAIT_MS)) != 0 ||
	    (rv = nng_pipe_notify(k->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, k)) ||
	    (rv = nng_pipe_notify(k->sock, NNG_PIPE_EV_REM_POST, pipe_cb, k)) ||
	    (rv = nng_aio_alloc(&k->aio, recv_cb, k)) != 0)
		return error_set(err, GILD_INTERNAL,
		    "cannot set up an nng socket: %s", nng_strerror(rv));
	nng_recv_aio(k->sock, k->aio);
	return GILD_OK;
}

/* The CA bundle a TLS client trusts when given none (Debian's). */
#define SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

/* For a TLS URL, builds k->tls from opts (NULL: defaults): the server is
 * verified against opts->tls_ca for the URL's host. */
static int
conn_tls(conn *k, const gild_connect_options *opts, gild_error *err)
{
	static const gild_connect_options none;
	tlsconf_opts t = {.server = false, .cert_opt = "tls_cert",
	    .key_opt = "tls_key", .ca_opt = "tls_ca"};
	char msg[PATH_MAX + 256];
	nng_url *u;
	int rv;

	if (!tlsconf_url_is_tls(k->url))
		return GILD_OK;
	if (opts == NULL)
		opts = &none;
	if ((rv = nng_url_parse(&u, k->url)) != 0)
		return error_set(err, GILD_INVALID_ARGUMENT, "bad URL '%s': %s",
		    k->url, nng_strerror(rv));
	k->tls_name = strdup(opts->tls_server_name ? opts->tls_server_name
						   : u->u_hostname);
	nng_url_free(u);
	t.ca = opts->tls_ca;
	if (t.ca == NULL && access(SYSTEM_CA_FILE, R_OK) == 0)
		t.ca = SYSTEM_CA_FILE;
	if (k->tls_name == NULL || (k->tls_ca = strdup(t.ca ? t.ca : "")) ==
	    NULL)
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	t.cert = opts->tls_cert;
	t.key = opts->tls_key;
	t.server_name = k->tls_name;
	if (tlsconf_new(&k->tls, &t, msg, sizeof(msg)) != 0)
		return error_set(err, GILD_INVALID_ARGUMENT, "%s: %s", k->url,
		    msg);
	return GILD_OK;
}

/* How long a first TLS dial may take, handshake included. nng 1.5.2 puts
 * no time limit on a TLS handshake (a plain tcp:// one gives up after
 * 10 s): a peer that accepts and then stays silent would hold
 * gild_connect forever. */
#define TLS_DIAL_MS 10000

static void deadline_of(int timeout_ms, struct timespec *ts);

/* A blocking dial and the thread that closes its dialer if the dial is
 * not over by TLS_DIAL_MS. */
typedef struct dial_watch {
	pthread_mutex_t mtx;
	pthread_cond_t cv; /* on CLOCK_MONOTONIC */
	nng_dialer d;
	bool done;  /* the dial returned */
	bool fired; /* the watchdog closed the dialer */
} dial_watch;

static void *
dial_watchdog(void *arg)
{
	dial_watch *w = arg;
	struct timespec end;
	bool fire;

	deadline_of(TLS_DIAL_MS, &end);
	pthread_mutex_lock(&w->mtx);
	while (!w->done &&
	    pthread_cond_timedwait(&w->cv, &w->mtx, &end) != ETIMEDOUT)
		;
	fire = w->fired = !w->done;
	pthread_mutex_unlock(&w->mtx);
	if (fire)
		nng_dialer_close(w->d); /* the blocked dial returns an error */
	return NULL;
}

/* nng_dialer_start(d, 0), given up after TLS_DIAL_MS (NNG_ETIMEDOUT, the
 * dialer closed). */
static int
dial_bounded(nng_dialer d)
{
	dial_watch w = {.d = d};
	pthread_condattr_t ca;
	pthread_t t;
	int rv;

	pthread_mutex_init(&w.mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w.cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&t, NULL, dial_watchdog, &w) != 0) {
		rv = NNG_ENOMEM;
		goto out;
	}
	rv = nng_dialer_start(d, 0);
	pthread_mutex_lock(&w.mtx);
	w.done = true;
	pthread_cond_signal(&w.cv);
	pthread_mutex_unlock(&w.mtx);
	pthread_join(t, NULL);
	/* Fired just as the dial succeeded: the dialer is closed all the
	 * same, so it counts as failed. */
	if (w.fired)
		rv = NNG_ETIMEDOUT;
out:
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mtx);
	return rv;
}

/* Dials k once (flags 0: waits for the connection, TLS handshake
 * included) or keeps dialing in the background (NNG_FLAG_NONBLOCK). The
 * dialer gets k's TLS settings before it starts; nng redials through the
 * same dialer. Returns 0 or an nng error (the dialer is then closed). */
static int
conn_dial(conn *k, int flags)
{
	nng_dialer d;
	int rv;

	if ((rv = nng_dialer_create(&d, k->sock, k->url)) != 0)
		return rv;
	if (k->tls != NULL &&
	    (rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, k->tls)) != 0)
		goto fail;
	if (k->tls != NULL && flags == 0)
		rv = dial_bounded(d);
	else
		rv = nng_dialer_start(d, flags);
	if (rv == 0)
		return 0;
fail:
	nng_dialer_close(d);
	return rv;
}

int
gild_connect(gild_client **out, const char *const *urls, size_t n_urls,
    gild_error *err)
{
	return gild_connect_opts(out, urls, n_urls, NULL, err);
}

int
gild_connect_opts(gild_client **out, const char *const *urls, size_t n_urls,
    const gild_connect_options *opts, gild_error *err)
{
	gild_client *c = NULL;
	pthread_condattr_t ca;
	gild_error why = {0};
	size_t n_up = 0;
	int rc = GILD_RESOURCE_EXHAUSTED;

	if (out == NULL || urls == NULL || n_urls == 0)
		return error_set(err, GILD_INVALID_ARGUMENT, "no server URL given");
	for (size_t i = 0; i < n_urls; i++)
		if (urls[i] == NULL || *urls[i] == '\0')
			return error_set(err, GILD_INVALID_ARGUMENT, "empty URL");
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return error_set(err, rc, "out of memory");
	pthread_mutex_init(&c->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_cond_init(&c->resend_cv, &ca);
	pthread_condattr_destroy(&ca);
	c->next_id = 1;
	c->n_buckets = 64;
	c->buckets = calloc(c->n_buckets, sizeof(*c->buckets));
	c->conns = calloc(n_urls, sizeof(*c->conns));
	if (c->buckets == NULL || c->conns == NULL) {
		error_set(err, rc, "out of memory");
		goto fail;
	}
	c->n_conns = n_urls;
	for (size_t i = 0; i < n_urls; i++) {
		conn *k = &c->conns[i];

		k->c = c;
		k->idx = i;
		if ((k->url = strdup(urls[i])) == NULL) {
			error_set(err, rc, "out of memory");
			goto fail;
		}
		if ((rc = conn_open(k, err)) != GILD_OK ||
		    (rc = conn_tls(k, opts, err)) != GILD_OK)
			goto fail;
	}
	if (opts != NULL && opts->token != NULL &&
	    (rc = gild_set_token(c, opts->token, err)) != GILD_OK)
		goto fail;
	for (size_t i = 0; i < n_urls; i++) {
		conn *k = &c->conns[i];
		int rv = conn_dial(k, 0);

		if (rv == 0) {
			n_up++; /* pipe_cb counts the pipe itself */
		} else if (rv == NNG_ENOTSUP || rv == NNG_EINVAL ||
		    rv == NNG_EADDRINVAL) {
			rc = error_set(err, GILD_INVALID_ARGUMENT,
			    "bad URL '%s': %s", k->url, nng_strerror(rv));
			goto fail;
		} else {
			error_append(&why, k, rv);
			k->redial = true;
		}
	}
	if (n_up == 0) {
		rc = error_set(err, GILD_UNAVAILABLE, "%s",
		    why.message ? why.message : "no server reachable");
		goto fail;
	}
	/* Keep trying the others in the background: their servers may come.
	 * Only now, so that a client that fails closes no dialer in the middle
	 * of a connection (nng 1.5.2 can leak that dialer). */
	for (size_t i = 0; i < n_urls; i++)
		if (c->conns[i].redial)
			conn_dial(&c->conns[i], NNG_FLAG_NONBLOCK);
	gild_error_clear(&why);
	*out = c;
	return GILD_OK;
fail:
	gild_error_clear(&why);
	gild_close(c);
	return rc;
}

/* Under c->mtx: gives replies still on their way (calls not collected, a
 * Cancel's answer) a moment to land. nng 1.5.2's nng_close can hang for
 * good when a reply arrives while it closes (nng issue #1543): waiting
 * until nothing is pending and nothing was sent for CLOSE_QUIET_MS, at
 * most CLOSE_SETTLE_MS in all, makes that rare. */
#define CLOSE_QUIET_MS 50
#define CLOSE_SETTLE_MS 300
static void deadline_of(int timeout_ms, struct timespec *ts);

static void
settle(gild_client *c)
{
	struct timespec end, now;

	deadline_of(CLOSE_SETTLE_MS, &end);
	for (;;) {
		struct timespec quiet = c->last_send;
		quiet.tv_nsec += CLOSE_QUIET_MS * 1000000L;
		if (quiet.tv_nsec >= 1000000000L) {
			quiet.tv_sec++;
			quiet.tv_nsec -= 1000000000L;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > end.tv_sec ||
		    (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
			return;
		if (c->n_pending == 0 &&
		    (now.tv_sec > quiet.tv_sec ||
			(now.tv_sec == quiet.tv_sec &&
			    now.tv_nsec >= quiet.tv_nsec)))
			return;
		pthread_cond_timedwait(&c->cv, &c->mtx,
		    c->n_pending == 0 ? &quiet : &end);
	}
}

int
gild_set_token(gild_client *c, const char *token, gild_error *err)
{
	char *t = NULL;

	if (token != NULL && (t = strdup(token)) == NULL)
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	free(c->token);
	c->token = t;
	return GILD_OK;
}

void
gild_close(gild_client *c)
{
	if (c == NULL)
		return;
	/* Streams left open keep only their chunks (gild_stream_close); the
	 * pipe callbacks of the closing sockets no longer see them. */
	pthread_mutex_lock(&c->mtx);
	for (gild_stream *s = c->streams; s != NULL; s = s->next)
		s->c = NULL;
	c->streams = NULL;
	settle(c);
	c->stopping = true;
	pthread_cond_signal(&c->resend_cv);
	pthread_mutex_unlock(&c->mtx);
	if (c->resender_started)
		pthread_join(c->resender, NULL);
	/* The receives are stopped before their sockets close: nng 1.5.2
	 * sometimes panics ("pthread_mutex_lock: Invalid argument") when a raw
	 * REQ socket is closed with a receive posted just after a reply came.
	 * Closing runs the REM_POST callbacks of its pipes before it returns. */
	for (size_t i = 0; i < c->n_conns; i++)
		if (c->conns[i].aio != NULL)
			nng_aio_stop(c->conns[i].aio);
	for (size_t i = 0; i < c->n_conns; i++)
		if (c->conns[i].opened)
			nng_close(c->conns[i].sock);
	for (size_t i = 0; i < c->n_conns; i++) {
		if (c->conns[i].aio != NULL)
			nng_aio_free(c->conns[i].aio);
		if (c->conns[i].tls != NULL)
			nng_tls_config_free(c->conns[i].tls);
		free(c->conns[i].url);
		free(c->conns[i].tls_ca);
		free(c->conns[i].tls_name);
	}
	for (size_t i = 0; c->buckets != NULL && i < c->n_buckets; i++) {
		call *cl = c->buckets[i], *next;

		for (; cl != NULL; cl = next) {
			next = cl->hnext;
			call_free(cl);
		}
	}
	free(c->buckets);
	free(c->conns);
	free(c->token);
	pthread_cond_destroy(&c->cv);
	pthread_cond_destroy(&c->resend_cv);
	pthread_mutex_destroy(&c->mtx);
	free(c);
}

/* ---- resending calls a draining server refused ------------------------ */

/* How often the resender looks again while refused calls wait for a
 * connection, or a refusing connection for its calls to end. */
#define RESEND_TICK_MS 10
/* How long a redialled connection has to answer its ping. */
#define VERIFY_PING_MS 2000

static void
refused_unlink(gild_client *c, call *cl)
{
	if (!cl->refused)
		return;
	if (cl->rprev != NULL)
		cl->rprev->rnext = cl->rnext;
	else
		c->refused_head = cl->rnext;
	if (cl->rnext != NULL)
		cl->rnext->rprev = cl->rprev;
	else
		c->refused_tail = cl->rprev;
	cl->rprev = cl->rnext = NULL;
	cl->refused = false;
}

/* Whether new calls may go out on k: a pipe is up, and not one whose
 * server refused a call (a raw REQ socket picks any of its pipes). Under
 * c->mtx. */
static bool
conn_takes_calls(const conn *k)
{
	for (int i = 0; i < k->pipes; i++)
		if (k->pipe_ids[i] == k->refusing)
			return false;
	return k->pipes > 0 && !k->verify;
}

/* The next connection, round robin, that may take a request of `kind`:
 * connection `want` only (-1: any) when it is up; calls free to go
 * anywhere avoid a draining server's connection (pings and status are
 * answered there). NULL if none now. Under c->mtx. */
static conn *
next_conn(gild_client *c, enum call_kind kind, int want)
{
	for (size_t i = 0; i < c->n_conns; i++) {
		size_t j = (c->rr + i) % c->n_conns;
		conn *k = &c->conns[j];

		if (k->pipes > 0 && (want < 0 || (size_t) want == j) &&
		    (want >= 0 || kind == CALL_PING || kind == CALL_STATUS ||
			conn_takes_calls(k))) {
			c->rr = j + 1;
			return k;
		}
	}
	return NULL;
}

static void *resender_main(void *arg);

/* k's pipe `pipe` refused a request as not started: take no new call
 * there, and have the resender close it once idle. Under c->mtx. */
static void
note_refusal(gild_client *c, conn *k, uint32_t pipe)
{
	bool up = false;

	for (int i = 0; i < k->pipes; i++)
		up |= k->pipe_ids[i] == pipe;
	if (up)
		k->refusing = pipe;
	else
		k->verify = true; /* it closed before its refusal came in */
	if (!c->resender_started && !c->stopping &&
	    pthread_create(&c->resender, NULL, resender_main, c) == 0)
		c->resender_started = true;
	pthread_cond_signal(&c->resend_cv);
}

/* cl was refused as not started: it waits to be resent, for up to
 * REDIAL_WAIT_MS, with *res (moved in) as its outcome if none takes it.
 * Under c->mtx. */
static void
refuse(gild_client *c, call *cl, gild_result *res)
{
	gild_result_clear(&cl->res);
	cl->res = *res;
	memset(res, 0, sizeof(*res));
	cl->refused = true;
	deadline_of(REDIAL_WAIT_MS, &cl->give_up);
	cl->rprev = c->refused_tail;
	cl->rnext = NULL;
	if (c->refused_tail != NULL)
		c->refused_tail->rnext = cl;
	else
		c->refused_head = cl;
	c->refused_tail = cl;
	pthread_cond_signal(&c->resend_cv);
}

/* Whether this client still needs connection idx: a reply is awaited
 * there, or a stream lives there. Under c->mtx. */
static bool
conn_in_use(gild_client *c, size_t idx)
{
	for (gild_stream *s = c->streams; s != NULL; s = s->next)
		if (s->conn == idx && s->state != STREAM_ENDED && !s->lost)
			return true;
	for (size_t i = 0; i < c->n_buckets; i++)
		for (call *cl = c->buckets[i]; cl != NULL; cl = cl->hnext)
			if (!cl->done && !cl->refused && cl->conn == idx)
				return true;
	return false;
}

static int round_trip_on(gild_client *c, enum call_kind kind,
    codec_buf *body, int want, int timeout_ms, gild_value **out,
    gild_error *err);

/* Pings connection idx (c->mtx dropped meanwhile): whether it answered. */
static bool
ping_conn(gild_client *c, size_t idx)
{
	codec_buf body = {0};
	int rc;

	pthread_mutex_unlock(&c->mtx);
	if ((rc = codec_encode_ping(&body, "gild", 4, NULL)) == GILD_OK)
		rc = round_trip_on(c, CALL_PING, &body, (int) idx,
		    VERIFY_PING_MS, NULL, NULL);
	codec_buf_fini(&body);
	pthread_mutex_lock(&c->mtx);
	return rc == GILD_OK;
}

static bool
passed(const struct timespec *now, const struct timespec *t)
{
	return now->tv_sec > t->tv_sec ||
	    (now->tv_sec == t->tv_sec && now->tv_nsec >= t->tv_nsec);
}

/* One round of the resender, under c->mtx (dropped to ping, send or
 * close). Ends the refused calls past their time with their refusal,
 * pings a redialled connection, or sends the first refused call that can
 * go; otherwise closes refusing pipes nothing uses.
 * Returns 2 when it sent (look again now), 1 when work is left (look
 * again in a tick), 0 when there is none. */
static int
resend_pass(gild_client *c)
{
	struct timespec now;
	int work = 0;

	/* Refused calls out of time end first: they hold in-flight slots. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	for (call *cl = c->refused_head, *next; cl != NULL; cl = next) {
		gild_result res = cl->res;
		char *msg = NULL;

		next = cl->rnext;
		if (!passed(&now, &cl->give_up))
			continue;
		memset(&cl->res, 0, sizeof(cl->res));
		refused_unlink(c, cl);
		if (asprintf(&msg, "%s; no server took it within %d ms",
		    res.error.message ? res.error.message : "refused",
		    REDIAL_WAIT_MS) != -1) {
			free(res.error.message);
			res.error.message = msg;
		}
		table_finish(c, cl, &res);
	}
	/* A redialled connection answers a ping before it takes calls (the
	 * ping needs a free in-flight slot: none is taken while waiting). */
	for (size_t i = 0; i < c->n_conns; i++) {
		conn *k = &c->conns[i];
		bool fresh = k->verify && k->pipes > 0;

		for (int j = 0; j < k->pipes; j++)
			fresh &= k->pipe_ids[j] != k->refusing;
		if (!fresh)
			continue;
		if (c->n_pending >= GILD_MAX_IN_FLIGHT || !ping_conn(c, i))
			return 1;
		k->verify = false;
		pthread_cond_broadcast(&c->cv); /* start() may use it now */
		return 2;
	}
	for (call *cl = c->refused_head, *next; cl != NULL; cl = next) {
		conn *k = NULL;
		nng_msg *m = NULL;
		struct timespec until = cl->give_up;
		uint64_t id = cl->id;
		size_t len = codec_buf_len(&cl->body);
		int rv;

		next = cl->rnext;
		work = 1;
		if (cl->body.base == NULL)
			continue; /* start() has not kept the request yet */
		if ((k = next_conn(c, CALL_USER, -1)) == NULL)
			break; /* none: wait for a redial */
		if (nng_msg_alloc(&m, len) != 0 ||
		    nng_msg_header_append_u32(m,
			0x80000000u | (uint32_t) (id & 0x7fffffffu)) != 0) {
			nng_msg_free(m);
			break; /* out of memory: try again in a tick */
		}
		memcpy(nng_msg_body(m), codec_buf_data(&cl->body), len);
		refused_unlink(c, cl);
		cl->conn = k->idx;
		cl->resent = true;
		clock_gettime(CLOCK_MONOTONIC, &c->last_send);
		pthread_mutex_unlock(&c->mtx);
		rv = nng_sendmsg(k->sock, m, 0);
		pthread_mutex_lock(&c->mtx);
		if (rv != 0) {
			gild_result res = {0};

			nng_msg_free(m);
			/* Still ours and not answered: refused again. */
			if ((cl = table_find(c, id)) != NULL && !cl->done &&
			    !cl->refused) {
				res.code = error_set(&res.error, GILD_UNAVAILABLE,
				    "cannot send to %s: %s", k->url,
				    nng_strerror(rv));
				refuse(c, cl, &res);
				cl->give_up = until;
			}
			return 1;
		}
		return 2;
	}
	for (size_t i = 0; i < c->n_conns; i++) {
		conn *k = &c->conns[i];
		nng_pipe p = NNG_PIPE_INITIALIZER;

		if (k->refusing == 0)
			continue;
		work = 1;
		if (conn_takes_calls(k) || k->pipes == 0 || conn_in_use(c, i))
			continue;
		/* Closed, the dialer redials: through a load balancer, to a
		 * server that is not draining. */
		p.id = k->refusing;
		pthread_mutex_unlock(&c->mtx);
		nng_pipe_close(p);
		pthread_mutex_lock(&c->mtx);
	}
	return work;
}

/* The resender thread: started on the first refusal, ended by gild_close. */
static void *
resender_main(void *arg)
{
	gild_client *c = arg;
	struct timespec ts;
	int work;

	pthread_mutex_lock(&c->mtx);
	while (!c->stopping) {
		work = resend_pass(c);
		if (c->stopping || work == 2)
			continue;
		if (work == 1) {
			deadline_of(RESEND_TICK_MS, &ts);
			pthread_cond_timedwait(&c->resend_cv, &c->mtx, &ts);
		} else {
			pthread_cond_wait(&c->resend_cv, &c->mtx);
		}
	}
	pthread_mutex_unlock(&c->mtx);
	return NULL;
}

/* ---- sending ----------------------------------------------------------- */

/* Prepends the request id to body and sends it on k. Blocks while nng's
 * send queue is full, at most REDIAL_WAIT_MS (then UNAVAILABLE). */
static int
send_request(conn *k, codec_buf *body, uint64_t id, gild_error *err)
{
	nng_msg *m = NULL;
	size_t len;
	int rv, rc;

	if ((rc = codec_encode_id(body, id, err)) != GILD_OK ||
	    (rc = codec_encode_token(body, k->c->token, err)) != GILD_OK)
		return rc;
	len = codec_buf_len(body);
	if ((rv = nng_msg_alloc(&m, len)) != 0)
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	memcpy(nng_msg_body(m), codec_buf_data(body), len);
	/* A raw REQ socket leaves the request id header to us: 32 bits, high
	 * bit set. Replies are matched by the id in the body instead. */
	pthread_mutex_lock(&k->c->mtx);
	clock_gettime(CLOCK_MONOTONIC, &k->c->last_send);
	pthread_mutex_unlock(&k->c->mtx);
	if ((rv = nng_msg_header_append_u32(m, 0x80000000u |
	    (uint32_t) (id & 0x7fffffffu))) != 0 ||
	    (rv = nng_sendmsg(k->sock, m, 0)) != 0) {
		nng_msg_free(m);
		return error_set(err, GILD_UNAVAILABLE, "cannot send to %s: %s",
		    k->url, nng_strerror(rv));
	}
	return GILD_OK;
}

static void deadline_of(int timeout_ms, struct timespec *ts);
static bool sleep_until(gild_client *c, int timeout_ms,
    const struct timespec *ts);

/* Takes n entries entered by `enter` (ids first..first+n-1) out again. */
static void
unenter(gild_client *c, uint64_t first, size_t n)
{
	call *cl;

	pthread_mutex_lock(&c->mtx);
	for (size_t i = 0; i < n; i++) {
		if ((cl = table_find(c, first + i)) != NULL) {
			table_remove(c, cl);
			call_free(cl);
		}
	}
	pthread_mutex_unlock(&c->mtx);
}

/* Enters n new table entries with consecutive ids from *first: the first of
 * `kind`, the others CALL_USER (a batch's calls), all on connection `want`
 * (-1: the next one that is up). Blocks while GILD_MAX_IN_FLIGHT replies are
 * awaited, and up to REDIAL_WAIT_MS while no connection is up. */
static int
enter(gild_client *c, enum call_kind kind, size_t n, int want,
    uint64_t *first, conn **kout, gild_error *err)
{
	conn *k = NULL;
	struct timespec ts;
	size_t i;

	pthread_mutex_lock(&c->mtx);
	while (c->n_pending + n > GILD_MAX_IN_FLIGHT)
		pthread_cond_wait(&c->cv, &c->mtx);
	/* With every connection down (a server restarting, a connection it
	 * dropped), wait a little for nng's redial before giving up. */
	deadline_of(REDIAL_WAIT_MS, &ts);
	while ((k = next_conn(c, kind, want)) == NULL &&
	       sleep_until(c, REDIAL_WAIT_MS, &ts))
		;
	if (k == NULL) {
		bool up = false;

		for (i = 0; i < c->n_conns; i++)
			up |= c->conns[i].pipes > 0;
		pthread_mutex_unlock(&c->mtx);
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
		if (table_insert(c, cl) != 0) {
			free(cl);
			break;
		}
	}
	pthread_mutex_unlock(&c->mtx);
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
	if ((cl = table_find(c, id)) != NULL && cl->movable && !cl->done) {
		cl->body = *body;
		memset(body, 0, sizeof(*body));
		if (cl->refused) /* the refusal came first */
			pthread_cond_signal(&c->resend_cv);
	}
	pthread_mutex_unlock(&c->mtx);
}

/* Sends a request whose body is in *body, tracked as a new table entry of
 * `kind`, on connection `want` (-1: the next one that is up). On GILD_OK *id
 * names the entry and *idx (when not NULL) is its connection. */
static int
start(gild_client *c, enum call_kind kind, codec_buf *body, int want,
    uint64_t *id, size_t *idx, gild_error *err)
{
	conn *k;
	int rc;

	if ((rc = enter(c, kind, 1, want, id, &k, err)) != GILD_OK)
		return rc;
	if (idx != NULL)
		*idx = k->idx;
	if ((rc = send_request(k, body, *id, err)) != GILD_OK)
		unenter(c, *id, 1);
	else
		keep_body(c, *id, body);
	return rc;
}

/* Asks connection `idx` to cancel call `target`. Failures are ignored: a
 * lost connection cancels the call anyway. */
static void
send_cancel(gild_client *c, size_t idx, uint64_t target)
{
	codec_buf body = {0};
	uint64_t id;

	pthread_mutex_lock(&c->mtx);
	id = c->next_id++;
	pthread_mutex_unlock(&c->mtx);
	if (codec_encode_cancel(&body, target, NULL) == GILD_OK)
		send_request(&c->conns[idx], &body, id, NULL);
	codec_buf_fini(&body);
}

int
gild_submit_timeout(gild_client *c, const char *function,
    const gild_value *args, const gild_value *kwargs, int timeout_ms,
    gild_call_id *id, gild_error *err)
{
	codec_buf body = {0};
	uint64_t cid;
	int rc;

	if (c == NULL || id == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	if ((rc = codec_encode_call(&body, function, args, kwargs,
	    timeout_ms > 0 ? (uint32_t) timeout_ms : 0, err)) == GILD_OK &&
	    (rc = start(c, CALL_USER, &body, -1, &cid, NULL, err)) == GILD_OK)
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
	    (rc = start(c, CALL_USER, &body, -1, &cid, NULL, err)) == GILD_OK)
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
		    (rc = codec_encode_id(&each[i], first + 1 + i, err)) ==
			GILD_OK)
			rc = codec_encode_token(&each[i], c->token, err);
	}
	mark = codec_mark(&body);
	for (size_t i = n; i-- > 0 && rc == GILD_OK;) {
		size_t m = codec_mark(&body);

		if ((rc = codec_prepend(&body, codec_buf_data(&each[i]),
			 codec_buf_len(&each[i]), err)) == GILD_OK)
			rc = codec_wrap(&body, m, 1 /* Batch.requests */, err);
	}
	if (rc == GILD_OK)
		rc = codec_wrap(&body, mark, 10 /* Request.batch */, err);
	if (rc == GILD_OK)
		rc = send_request(k, &body, first, err);
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

/* ---- waiting ----------------------------------------------------------- */

static void
deadline_of(int timeout_ms, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* One sleep on c->cv; returns false once the deadline has passed. */
static bool
sleep_until(gild_client *c, int timeout_ms, const struct timespec *ts)
{
	if (timeout_ms < 0) {
		pthread_cond_wait(&c->cv, &c->mtx);
		return true;
	}
	return timeout_ms > 0 &&
	    pthread_cond_timedwait(&c->cv, &c->mtx, ts) != ETIMEDOUT;
}

/* Moves a finished entry's outcome into *res and frees the entry. */
static void
take(gild_client *c, call *cl, gild_result *res)
{
	table_remove(c, cl);
	*res = cl->res;
	memset(&cl->res, 0, sizeof(cl->res));
	call_free(cl);
}

/* Waits for entry `id` of `kind`: GILD_OK with *res, GILD_NOT_FOUND, or
 * GILD_DEADLINE_EXCEEDED (the entry stays). */
static int
wait_call(gild_client *c, uint64_t id, enum call_kind kind, int timeout_ms,
    gild_result *res)
{
	struct timespec ts;
	int rc;

	deadline_of(timeout_ms > 0 ? timeout_ms : 0, &ts);
	pthread_mutex_lock(&c->mtx);
	for (;;) {
		call *cl = table_find(c, id);

		if (cl == NULL || cl->kind != kind) {
			rc = GILD_NOT_FOUND;
			break;
		}
		if (cl->done) {
			take(c, cl, res);
			rc = GILD_OK;
			break;
		}
		if (!sleep_until(c, timeout_ms, &ts)) {
			/* A last look: the reply may have come with the timeout. */
			cl = table_find(c, id);
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
	pthread_mutex_unlock(&c->mtx);
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
	int rc;

	if (c == NULL || res == NULL)
		return GILD_INVALID_ARGUMENT;
	deadline_of(timeout_ms > 0 ? timeout_ms : 0, &ts);
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
		if (!sleep_until(c, timeout_ms, &ts)) {
			rc = GILD_DEADLINE_EXCEEDED;
			if (c->done_head != NULL) {
				take(c, c->done_head, res);
				rc = GILD_OK;
			}
			break;
		}
	}
	pthread_mutex_unlock(&c->mtx);
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
	pthread_mutex_unlock(&c->mtx);
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
	cl = table_find(c, id);
	if (cl == NULL || cl->kind != kind) {
		pthread_mutex_unlock(&c->mtx);
		return GILD_NOT_FOUND;
	}
	pending = !cl->done;
	idx = cl->conn;
	table_remove(c, cl);
	pthread_mutex_unlock(&c->mtx);
	call_free(cl);
	if (pending)
		send_cancel(c, idx, id);
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
	cl = table_find(c, id);
	if (cl == NULL || cl->kind != CALL_USER) {
		pthread_mutex_unlock(&c->mtx);
		return error_set(err, GILD_NOT_FOUND,
		    "no call %llu in flight", (unsigned long long) id);
	}
	pending = !cl->done;
	idx = cl->conn;
	pthread_mutex_unlock(&c->mtx);
	/* The call stays in flight: its end (CANCELLED, or its result if it
	 * finished first) comes back like any other. */
	if (pending)
		send_cancel(c, idx, id);
	return GILD_OK;
}

/* start + wait for the synchronous functions. On GILD_OK *out (may be NULL
 * to drop it) gets the value; otherwise err gets the error. */
static int
round_trip_on(gild_client *c, enum call_kind kind, codec_buf *body,
    int want, int timeout_ms, gild_value **out, gild_error *err)
{
	gild_result res = {0};
	uint64_t id;
	int rc;

	if ((rc = start(c, kind, body, want, &id, NULL, err)) != GILD_OK)
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

static int
round_trip(gild_client *c, enum call_kind kind, codec_buf *body,
    int timeout_ms, gild_value **out, gild_error *err)
{
	return round_trip_on(c, kind, body, -1, timeout_ms, out, err);
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
	/* The server gets the timeout as the call's deadline and ends it then
	 * (interrupting it if it runs); the wait here allows for the server's
	 * --kill-grace on top, and cancels the call if even that passes. */
	if ((rc = codec_encode_call(&body, function, args, kwargs,
	    timeout_ms < 0 ? 0 : timeout_ms == 0 ? 1 : (uint32_t) timeout_ms,
	    err)) == GILD_OK)
		rc = round_trip(c, CALL_SYNC, &body,
		    timeout_ms < 0 ? -1 : timeout_ms + GILD_CALL_GRACE_MS, out,
		    err);
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
	/* As gild_call: the server ends it at the deadline; the wait allows
	 * for its --kill-grace on top. */
	if ((rc = codec_encode_exec(&body, source, strlen(source), variables,
	    NULL, timeout_ms < 0 ? 0 : timeout_ms == 0 ? 1 : (uint32_t) timeout_ms,
	    err)) == GILD_OK)
		rc = round_trip(c, CALL_SYNC, &body,
		    timeout_ms < 0 ? -1 : timeout_ms + GILD_CALL_GRACE_MS, out,
		    err);
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
gild_status(gild_client *c, int timeout_ms, gild_value **out,
    gild_error *err)
{
	codec_buf body = {0};
	int rc;

	if (c == NULL || out == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	*out = NULL;
	if ((rc = codec_encode_status(&body, err)) == GILD_OK)
		rc = round_trip(c, CALL_STATUS, &body, timeout_ms, out, err);
	codec_buf_fini(&body);
	return rc;
}

/* ---- streams ----------------------------------------------------------- */

/* The window of a stream opened with window 0, as the server takes 0. */
#define STREAM_DEFAULT_WINDOW 64

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
		call *cl = table_find(c, s->pull);

		if (cl == NULL) { /* cannot happen: only s removes it */
			stream_fail(s, GILD_INTERNAL, "stream request %llu "
			    "vanished", (unsigned long long) s->pull);
			s->pull = 0;
		} else if (cl->done) {
			table_remove(c, cl);
			stream_absorb(s, cl);
			call_free(cl);
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
	if (table_insert(c, cl) != 0) {
		free(cl);
		stream_fail(s, GILD_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	s->state = STREAM_WAITING;
	s->pull = id;
	s->pull_max = max;
	pthread_mutex_unlock(&c->mtx);
	if ((rc = codec_encode_stream_next(&body, s->id, max, &e)) == GILD_OK)
		rc = send_request(&c->conns[s->conn], &body, id, &e);
	codec_buf_fini(&body);
	pthread_mutex_lock(&c->mtx);
	if (rc != GILD_OK) {
		if ((cl = table_find(c, id)) != NULL) {
			table_remove(c, cl);
			call_free(cl);
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
	codec_buf body = {0};
	gild_stream *s;
	int rc;

	if (c == NULL || out == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	*out = NULL;
	if (window < 0 || window > GILD_STREAM_MAX_WINDOW)
		return error_set(err, GILD_INVALID_ARGUMENT,
		    "stream window must be 0 to %d, not %d",
		    GILD_STREAM_MAX_WINDOW, window);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	s->c = c;
	s->window = window > 0 ? (uint32_t) window : STREAM_DEFAULT_WINDOW;
	if ((s->queue = calloc(s->window, sizeof(*s->queue))) == NULL) {
		free(s);
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	}
	if ((rc = codec_encode_stream_call(&body, function, args, kwargs,
	    timeout_ms > 0 ? (uint32_t) timeout_ms : 0, s->window, err)) ==
	    GILD_OK)
		rc = start(c, CALL_STREAM, &body, -1, &s->id, &s->conn, err);
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
	pthread_mutex_unlock(&c->mtx);
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
	deadline_of(timeout_ms > 0 ? timeout_ms : 0, &ts);
	pthread_mutex_lock(&c->mtx);
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
		 * with it. */
		expired = !sleep_until(c, timeout_ms, &ts);
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
	}
	pthread_mutex_unlock(&c->mtx);
	return rc;
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
	pthread_mutex_unlock(&s->c->mtx);
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
		    (cl = table_find(c, s->pull)) != NULL) {
			/* A reply that came and was not looked at yet may
			 * already say the stream is over. */
			if (cl->done && cl->res.code == GILD_OK && cl->chunks.end)
				s->server_done = true;
			table_remove(c, cl);
		}
		cancel = !s->server_done && !s->lost;
		if (s->prev != NULL)
			s->prev->next = s->next;
		else
			c->streams = s->next;
		if (s->next != NULL)
			s->next->prev = s->prev;
		pthread_mutex_unlock(&c->mtx);
		call_free(cl);
		/* The server stops the generator; the reply to a StreamNext
		 * still in flight finds no entry and is dropped. */
		if (cancel)
			send_cancel(c, s->conn, s->id);
	}
	while (s->len > 0) {
		gild_value *v;

		stream_pop(s, &v);
		gild_value_free(v);
	}
	free(s->queue);
	gild_error_clear(&s->error);
	free(s);
}

/* ---- actors ------------------------------------------------------------ */

/* An actor id names the connection its server is on (the top 16 bits) and
 * the server's own id for it (the rest). */
#define ACTOR_CONN_SHIFT 48

static gild_actor_id
actor_handle(size_t conn, uint64_t server_id)
{
	return (gild_actor_id) conn << ACTOR_CONN_SHIFT | server_id;
}

static int
actor_conn(const gild_client *c, gild_actor_id a, uint64_t *server_id,
    gild_error *err)
{
	size_t conn = (size_t) (a >> ACTOR_CONN_SHIFT);

	*server_id = a & ((UINT64_C(1) << ACTOR_CONN_SHIFT) - 1);
	if (conn >= c->n_conns || *server_id == 0) {
		error_set(err, GILD_INVALID_ARGUMENT,
		    "%llu is not an actor id of this client",
		    (unsigned long long) a);
		return -1;
	}
	return (int) conn;
}

/* The server id in an actor request's int result. */
static int
actor_reply(int rc, gild_value *v, size_t conn, gild_actor_id *out,
    gild_error *err)
{
	if (rc == GILD_OK && gild_value_kind(v) != GILD_INT)
		rc = error_set(err, GILD_INTERNAL,
		    "the server answered an actor request without an id");
	if (rc == GILD_OK)
		*out = actor_handle(conn, (uint64_t) gild_value_int(v));
	gild_value_free(v);
	return rc;
}

int
gild_actor_new(gild_client *c, const char *class_name, const gild_value *args,
    const gild_value *kwargs, const char *name, bool detached, int timeout_ms,
    gild_actor_id *out, gild_error *err)
{
	codec_call_opts o = {.actor_new = true, .name = name,
	    .detached = detached};
	codec_buf body = {0};
	gild_value *v = NULL;
	size_t conn;
	int rc;

	if (c == NULL || out == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	pthread_mutex_lock(&c->mtx);
	conn = c->rr % c->n_conns; /* spread actors over the servers */
	c->rr++;
	pthread_mutex_unlock(&c->mtx);
	if ((rc = codec_encode_call_opts(&body, class_name, args, kwargs, &o,
	    err)) == GILD_OK)
		rc = round_trip_on(c, CALL_SYNC, &body, (int) conn, timeout_ms,
		    &v, err);
	codec_buf_fini(&body);
	return actor_reply(rc, v, conn, out, err);
}

int
gild_actor_get(gild_client *c, const char *name, int timeout_ms,
    gild_actor_id *out, gild_error *err)
{
	int rc = GILD_NOT_FOUND;

	if (c == NULL || out == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	/* Ask each server in turn: the name lives on one of them. */
	for (size_t i = 0; i < c->n_conns; i++) {
		codec_buf body = {0};
		gild_value *v = NULL;

		gild_error_clear(err);
		if ((rc = codec_encode_actor_get(&body, name, err)) == GILD_OK)
			rc = round_trip_on(c, CALL_SYNC, &body, (int) i,
			    timeout_ms, &v, err);
		codec_buf_fini(&body);
		rc = actor_reply(rc, v, i, out, err);
		if (rc != GILD_NOT_FOUND)
			break;
	}
	return rc;
}

int
gild_actor_destroy(gild_client *c, gild_actor_id a, int timeout_ms,
    gild_error *err)
{
	codec_buf body = {0};
	gild_value *v = NULL;
	uint64_t sid;
	int conn, rc;

	if (c == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL client");
	if ((conn = actor_conn(c, a, &sid, err)) < 0)
		return GILD_INVALID_ARGUMENT;
	if ((rc = codec_encode_actor_destroy(&body, sid, err)) == GILD_OK)
		rc = round_trip_on(c, CALL_SYNC, &body, conn, timeout_ms, &v,
		    err);
	codec_buf_fini(&body);
	if (rc == GILD_OK && !gild_value_bool(v))
		rc = error_set(err, GILD_NOT_FOUND, "no actor %llu",
		    (unsigned long long) a);
	gild_value_free(v);
	return rc;
}

int
gild_actor_submit(gild_client *c, gild_actor_id a, const char *method,
    const gild_value *args, const gild_value *kwargs, gild_call_id *id,
    gild_error *err)
{
	codec_call_opts o = {0};
	codec_buf body = {0};
	uint64_t cid;
	int conn, rc;

	if (c == NULL || id == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	if ((conn = actor_conn(c, a, &o.actor_id, err)) < 0)
		return GILD_INVALID_ARGUMENT;
	if ((rc = codec_encode_call_opts(&body, method, args, kwargs, &o,
	    err)) == GILD_OK &&
	    (rc = start(c, CALL_USER, &body, conn, &cid, NULL, err)) == GILD_OK)
		*id = cid;
	codec_buf_fini(&body);
	return rc;
}

int
gild_actor_call(gild_client *c, gild_actor_id a, const char *method,
    const gild_value *args, const gild_value *kwargs, int timeout_ms,
    gild_value **out, gild_error *err)
{
	codec_call_opts o = {0};
	codec_buf body = {0};
	int conn, rc;

	if (c == NULL || out == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	*out = NULL;
	if ((conn = actor_conn(c, a, &o.actor_id, err)) < 0)
		return GILD_INVALID_ARGUMENT;
	o.timeout_ms = timeout_ms < 0 ? 0 : timeout_ms == 0 ? 1 : (uint32_t) timeout_ms;
	if ((rc = codec_encode_call_opts(&body, method, args, kwargs, &o,
	    err)) == GILD_OK)
		rc = round_trip_on(c, CALL_SYNC, &body, conn,
		    timeout_ms < 0 ? -1 : timeout_ms + GILD_CALL_GRACE_MS, out,
		    err);
	codec_buf_fini(&body);
	return rc;
}
