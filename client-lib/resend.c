/* libgild: resending the calls a draining server refused (see client.c). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How often the resender looks again while refused calls wait for a
 * connection, or a refusing connection for its calls to end. */
#define RESEND_TICK_MS 10
/* How long a redialled connection has to answer its ping. */
#define VERIFY_PING_MS 2000

void
gild__refused_unlink(gild_client *c, call *cl)
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
conn *
gild__next_conn(gild_client *c, enum call_kind kind, int want)
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
void
gild__note_refusal(gild_client *c, conn *k, uint32_t pipe)
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
void
gild__refuse(gild_client *c, call *cl, gild_result *res)
{
	gild_result_clear(&cl->res);
	cl->res = *res;
	memset(res, 0, sizeof(*res));
	cl->refused = true;
	gild__deadline_of(REDIAL_WAIT_MS, &cl->give_up);
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


/* Pings connection idx (c->mtx dropped meanwhile): whether it answered. */
static bool
ping_conn(gild_client *c, size_t idx)
{
	codec_buf body = {0};
	int rc;

	gild__unlock(c);
	if ((rc = codec_encode_ping(&body, "gild", 4, NULL)) == GILD_OK)
		rc = gild__round_trip_on(c, CALL_PING, &body, (int) idx,
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
		gild__refused_unlink(c, cl);
		if (asprintf(&msg, "%s; no server took it within %d ms",
		    res.error.message ? res.error.message : "refused",
		    REDIAL_WAIT_MS) != -1) {
			free(res.error.message);
			res.error.message = msg;
		}
		gild__table_finish(c, cl, &res);
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
		gild__wake_all(c); /* start() may use it now */
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
		if ((k = gild__next_conn(c, CALL_USER, -1)) == NULL)
			break; /* none: wait for a redial */
		if (nng_msg_alloc(&m, len) != 0 ||
		    nng_msg_header_append_u32(m,
			0x80000000u | (uint32_t) (id & 0x7fffffffu)) != 0) {
			nng_msg_free(m);
			break; /* out of memory: try again in a tick */
		}
		memcpy(nng_msg_body(m), codec_buf_data(&cl->body), len);
		gild__refused_unlink(c, cl);
		cl->conn = k->idx;
		cl->resent = true;
		clock_gettime(CLOCK_MONOTONIC, &c->last_send);
		gild__unlock(c);
		rv = nng_sendmsg(k->sock, m, 0);
		pthread_mutex_lock(&c->mtx);
		if (rv != 0) {
			gild_result res = {0};

			nng_msg_free(m);
			/* Still ours and not answered: refused again. */
			if ((cl = gild__table_find(c, id)) != NULL && !cl->done &&
			    !cl->refused) {
				res.code = error_set(&res.error, GILD_UNAVAILABLE,
				    "cannot send to %s: %s", k->url,
				    nng_strerror(rv));
				gild__refuse(c, cl, &res);
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
		gild__unlock(c);
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
		/* Its cond wait releases the mutex past gild__unlock. */
		gild__wake_now(c);
		if (work == 1) {
			gild__deadline_of(RESEND_TICK_MS, &ts);
			pthread_cond_timedwait(&c->resend_cv, &c->mtx, &ts);
		} else {
			pthread_cond_wait(&c->resend_cv, &c->mtx);
		}
	}
	gild__unlock(c);
	return NULL;
}

