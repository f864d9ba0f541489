/* The client-facing side: nng REP contexts on the libevent loop. */
#include "listener.h"

#include "conns.h"
#include "listenurl.h"
#include "pipesock.h"
#include "log.h"
#include "replymsg.h"
#include "shm.h"
#include "tlsconf.h"

#include <errno.h>
#include <inttypes.h>
#include <event2/event.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* One receive is posted at a time, and nng's thread posts the next one
 * only after queueing the request it got: requests reach the server in the
 * order nng took them off their connections. (With several receives
 * posted, two requests of one client, such as a call and the Cancel right
 * behind it, complete on two nng threads and can be queued in either
 * order.) The next receive's context comes from the idle list, which the
 * loop keeps at least IDLE_MIN long; when nng's thread finds it empty, the
 * loop posts the receive once it has added more. */
#define IDLE_MIN 64
/* Idle contexts kept for reuse; more are closed. */
#define FREE_MAX 1024

typedef enum req_state {
	REQ_RECEIVING, /* nng_ctx_recv posted */
	REQ_HELD,      /* request handed to the server, reply pending */
	REQ_SENDING,   /* nng_ctx_send posted */
	REQ_IDLE,      /* on the free list */
	REQ_MEMBER,    /* one request of a batch: no context of its own */
} req_state;

struct listener_req {
	listener *l;
	nng_ctx ctx;
	nng_aio *aio;
	req_state state;
	uint32_t pipe;
	size_t sent_len;   /* REQ_SENDING: the reply's bytes */
	struct listener_req *next_done; /* completion queue (under mtx) */
	struct listener_req *next, *prev; /* all contexts (loop only) */
	struct listener_req *next_free;
	/* A batch (a request of several): its members' encoded replies so
	 * far, as Replies.replies fields; how many are still to come (plus
	 * one until listener_batch_end); its Request.id. */
	nng_msg *replies;
	size_t members;
	uint64_t batch_id;
	struct listener_req *batch; /* a member: the batch it belongs to */
};

struct listener {
	nng_socket sock;
	struct event *done_ev;
	int efd;
	listener_recv_fn fn;
	listener_gone_fn gone;
	void *arg;
	listener_req *all;   /* every context, for shutdown (loop only) */
	size_t replies;      /* replies handed to nng (loop only) */
	pthread_mutex_t mtx;
	/* Under mtx: idle contexts, reusable; whether a receive is posted. */
	listener_req *free;
	size_t nfree;
	bool receiving;
	size_t replies_done; /* replies nng is done with, sent or not */
	/* Completions from nng's threads, drained by the loop (under mtx). */
	bool closing; /* completions are ignored */
	listener_req *done_head, *done_tail;
	uint32_t *gone_pipes; /* closed connections, in order (under mtx) */
	size_t ngone, capgone;
	uint64_t bytes_in, bytes_out; /* request and reply bodies (loop) */
	/* Under mtx: each connection's budgets and costs; connections
	 * refused (--max-connections), muted over a budget, closed idle. */
	conns *conns;
	uint64_t refused, muted[CONN_OVER_N];
	size_t max_reply; /* a batch's reply is never longer */
	struct event *idle_ev; /* closes idle connections (--max-connection-idle) */
	/* WebSocket origins allowed (set before listening, then read only). */
	char **origins;
	size_t norigins;
	struct shm *shm; /* --shm (loop only), or NULL */
};

/* Monotonic seconds, for conns.c. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


static void
wake(listener *l)
{
	uint64_t one = 1;
	/* Only a wake-up: a full counter (EAGAIN) wakes the loop too. */
	ssize_t w = write(l->efd, &one, sizeof(one));
	(void) w;
}

/* Under mtx: r joins the idle list. */
static void
idle_push(listener *l, listener_req *r)
{
	r->state = REQ_IDLE;
	r->next_free = l->free;
	l->free = r;
	l->nfree++;
}

/* Under mtx: when no receive is posted, an idle context to post the next
 * one on (marked receiving, and counted as posted), or NULL. */
static listener_req *
claim_receive(listener *l)
{
	listener_req *r = l->free;

	if (l->receiving || l->closing || r == NULL)
		return NULL;
	l->free = r->next_free;
	l->nfree--;
	r->state = REQ_RECEIVING;
	l->receiving = true;
	return r;
}

/* nng thread: a finished send makes its context idle again here, without
 * the loop (one wake-up of the loop less per reply); a receive is queued
 * for the loop, which is woken, and the next receive posted (see
 * IDLE_MIN). */
static void
on_aio(void *arg)
{
	listener_req *r = arg, *next = NULL;
	listener *l = r->l;
	req_state was = r->state;
	bool first = false;

	pthread_mutex_lock(&l->mtx);
	if (l->closing) {
		/* listener_fini is stopping every aio and freeing it. */
		pthread_mutex_unlock(&l->mtx);
		return;
	}
	if (was == REQ_SENDING)
		conns_sent(l->conns, r->pipe, r->sent_len);
	if (was == REQ_SENDING && l->nfree < FREE_MAX) {
		if (nng_aio_result(r->aio) != 0) {
			/* Not sent (the client is gone): still ours. */
			nng_msg_free(nng_aio_get_msg(r->aio));
			nng_aio_set_msg(r->aio, NULL);
		}
		l->replies_done++;
		idle_push(l, r);
		/* Nothing of r is touched after the unlock: the loop or
		 * another nng thread may post a receive on it now. */
		next = claim_receive(l);
	} else {
		/* A receive, or a send whose context the loop must close. */
		r->next_done = NULL;
		first = l->done_head == NULL && l->ngone == 0;
		if (l->done_tail)
			l->done_tail->next_done = r;
		else
			l->done_head = r;
		l->done_tail = r;
	}
	if (was == REQ_RECEIVING) {
		int rc = nng_aio_result(r->aio);
		l->receiving = false;
		/* Not once the socket is closed or the receive stopped:
		 * nothing more will come. */
		if (rc != NNG_ECLOSED && rc != NNG_ECANCELED)
			next = claim_receive(l);
	}
	pthread_mutex_unlock(&l->mtx);
	if (next != NULL)
		nng_ctx_recv(next->ctx, next->aio);
	if (first)
		wake(l);
}

/* Whether pipe p may stay: a WebSocket upgrade that carried an Origin
 * header comes from a web page, and only pages from an allowed origin may
 * call. Other transports, and WebSocket clients that are not browsers
 * (they send no Origin), pass. */
static bool
origin_ok(listener *l, nng_pipe p)
{
	char *origin;
	bool ok;

	/* NNG_ENOTSUP: not a WebSocket; NNG_ENOENT: no Origin header. */
	if (nng_pipe_get_string(p, NNG_OPT_WS_REQUEST_HEADER "Origin",
		&origin) != 0)
		return true;
	ok = listenurl_origin_allowed(origin,
	    (const char *const *) l->origins, l->norigins);
	if (!ok)
		log_event(LOG_WARN, &LOG_STR("origin", origin), 1,
		    "refused a WebSocket connection from a web page whose "
		    "origin is not allowed (--ws-allow-origin)");
	nng_strfree(origin);
	return ok;
}

/* nng thread: a connection opened. Counted before it may deliver a
 * request (ADD_PRE), so a request the loop sees is from a counted one;
 * refused past --max-connections, or from a web page whose origin is not
 * allowed (nng closes it without adding it, and reports its removal,
 * which conns_remove ignores). */
static void
on_pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	listener *l = arg;
	bool ok;

	if (!origin_ok(l, p)) {
		nng_pipe_close(p);
		return;
	}
	pthread_mutex_lock(&l->mtx);
	if (!(ok = conns_add(l->conns, nng_pipe_id(p), now_s()) == 0))
		l->refused++;
	pthread_mutex_unlock(&l->mtx);
	if (!ok)
		nng_pipe_close(p);
}

/* nng thread: a connection closed. Its requests already completed (they
 * are ahead in the queue); the loop cancels what they started. */
static void
on_pipe_gone(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	listener *l = arg;
	bool first;

	pthread_mutex_lock(&l->mtx);
	conns_remove(l->conns, nng_pipe_id(p));
	if (l->closing) {
		pthread_mutex_unlock(&l->mtx);
		return;
	}
	first = l->done_head == NULL && l->ngone == 0;
	if (l->ngone == l->capgone) {
		size_t cap = l->capgone ? 2 * l->capgone : 16;
		uint32_t *n = realloc(l->gone_pipes, cap * sizeof(*n));
		if (n == NULL) {
			pthread_mutex_unlock(&l->mtx);
			log_error("out of memory: a closed connection's calls "
				  "are not cancelled");
			return;
		}
		l->gone_pipes = n;
		l->capgone = cap;
	}
	l->gone_pipes[l->ngone++] = nng_pipe_id(p);
	pthread_mutex_unlock(&l->mtx);
	if (first)
		wake(l);
}

static void
req_destroy(listener *l, listener_req *r)
{
	nng_msg *m;

	if (r->next)
		r->next->prev = r->prev;
	if (r->prev)
		r->prev->next = r->next;
	else
		l->all = r->next;
	nng_aio_stop(r->aio);
	if ((m = nng_aio_get_msg(r->aio)) != NULL)
		nng_msg_free(m);
	nng_msg_free(r->replies);
	nng_aio_free(r->aio);
	nng_ctx_close(r->ctx);
	free(r);
}

/* A new context, idle, or NULL when out of memory. */
static listener_req *
req_new(listener *l)
{
	listener_req *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->l = l;
	if (nng_aio_alloc(&r->aio, on_aio, r) != 0) {
		free(r);
		return NULL;
	}
	if (nng_ctx_open(&r->ctx, l->sock) != 0) {
		nng_aio_free(r->aio);
		free(r);
		return NULL;
	}
	r->state = REQ_IDLE;
	r->next = l->all;
	if (l->all)
		l->all->prev = r;
	l->all = r;
	return r;
}

/* Keeps IDLE_MIN contexts idle, and posts the receive if none is posted
 * (at start, or after nng's thread found no idle context). */
static void
stock(listener *l)
{
	listener_req *r = NULL;
	size_t have;

	pthread_mutex_lock(&l->mtx);
	have = l->nfree;
	pthread_mutex_unlock(&l->mtx);
	for (; have < IDLE_MIN; have++) {
		/* Allocated outside the lock: nng's thread only takes. */
		if ((r = req_new(l)) == NULL) {
			log_error("out of memory: cannot add a receive context");
			break;
		}
		pthread_mutex_lock(&l->mtx);
		idle_push(l, r);
		pthread_mutex_unlock(&l->mtx);
	}
	pthread_mutex_lock(&l->mtx);
	r = claim_receive(l);
	pthread_mutex_unlock(&l->mtx);
	if (r != NULL)
		nng_ctx_recv(r->ctx, r->aio);
}

static void
recycle(listener *l, listener_req *r)
{
	bool keep;

	pthread_mutex_lock(&l->mtx);
	if ((keep = l->nfree < FREE_MAX))
		idle_push(l, r);
	pthread_mutex_unlock(&l->mtx);
	if (!keep)
		req_destroy(l, r);
}

static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	listener *l = arg;
	listener_req *r, *next;
	uint32_t *gone;
	size_t ngone;
	uint64_t n;
	bool muted;
	int rc;

	if (read(l->efd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		log_warn("eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&l->mtx);
	r = l->done_head;
	l->done_head = l->done_tail = NULL;
	gone = l->gone_pipes;
	ngone = l->ngone;
	l->gone_pipes = NULL;
	l->ngone = l->capgone = 0;
	pthread_mutex_unlock(&l->mtx);
	for (; r != NULL; r = next) {
		next = r->next_done;
		rc = nng_aio_result(r->aio);
		if (r->state == REQ_SENDING) {
			/* on_aio left it to us: the idle list was full (it
			 * has counted the reply as sent: conns_sent). */
			pthread_mutex_lock(&l->mtx);
			l->replies_done++;
			pthread_mutex_unlock(&l->mtx);
			if (rc != 0) {
				nng_msg_free(nng_aio_get_msg(r->aio));
				nng_aio_set_msg(r->aio, NULL);
			}
			recycle(l, r);
		} else if (rc == 0) {
			nng_msg *msg = nng_aio_get_msg(r->aio);
			nng_aio_set_msg(r->aio, NULL);
			r->pipe = nng_pipe_id(nng_msg_get_pipe(msg));
			l->bytes_in += nng_msg_len(msg);
			pthread_mutex_lock(&l->mtx);
			if (!(muted = conns_muted(l->conns, r->pipe)))
				conns_request(l->conns, r->pipe, now_s());
			pthread_mutex_unlock(&l->mtx);
			if (muted) {
				/* Over a budget: read, never served. */
				nng_msg_free(msg);
				recycle(l, r);
				continue;
			}
			r->state = REQ_HELD;
			l->fn(l->arg, r, msg);
		} else if (rc != NNG_ECLOSED && rc != NNG_ECANCELED) {
			/* nng's thread has posted the next receive. */
			log_warn("nng receive failed: %s", nng_strerror(rc));
			recycle(l, r);
		}
	}
	for (size_t i = 0; i < ngone; i++)
		l->gone(l->arg, gone[i]);
	free(gone);
	stock(l);
}

int
listener_batch_begin(listener *l, listener_req *r, uint64_t id)
{
	if (nng_msg_alloc(&r->replies, 0) != 0)
		return -ENOMEM;
	r->members = 1;
	r->batch_id = id;
	return 0;
}

listener_req *
listener_batch_member(listener *l, listener_req *batch)
{
	listener_req *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->l = l;
	m->state = REQ_MEMBER;
	m->pipe = batch->pipe;
	m->batch = batch;
	batch->members++;
	return m;
}

/* One member of batch r is answered (or, the last time, the server is done
 * handing them out): once all are, the batch's reply goes out as
 * Reply{id, batch: Replies{replies...}}. */
static void
batch_release(listener *l, listener_req *r)
{
	nng_msg *m;

	if (--r->members > 0)
		return;
	m = r->replies;
	r->replies = NULL;
	if (replymsg_batch_close(m, r->batch_id) != 0) {
		/* Out of memory: an empty reply still ends the request. */
		log_error("out of memory: the replies of batch %" PRIu64
			  " are lost", r->batch_id);
		nng_msg_clear(m);
	}
	listener_reply(l, r, m);
}

void
listener_batch_end(listener *l, listener_req *r)
{
	batch_release(l, r);
}

/* Adds member r's reply to its batch's. */
static void
member_reply(listener *l, listener_req *r, nng_msg *msg)
{
	listener_req *batch = r->batch;

	if (replymsg_batch_add(batch->replies, msg, l->max_reply) < 0)
		log_error("out of memory: a reply in batch %" PRIu64
			  " is lost", batch->batch_id);
	nng_msg_free(msg);
	free(r);
	batch_release(l, batch);
}

/* Connection `pipe` was muted over budget `why` (conns.h): said in the
 * log, its replies still queued in nng (not the one being written) are
 * given up, and its socket is shut down, so that nng closes it
 * (pipesock.h). */
static void
muted(listener *l, uint32_t pipe, conn_over why, const char *what)
{
	nng_pipe p = NNG_PIPE_INITIALIZER;
	int rc;

	pthread_mutex_lock(&l->mtx);
	l->muted[why]++;
	for (listener_req *r = l->all; r != NULL; r = r->next)
		if (r->state == REQ_SENDING && r->pipe == pipe)
			nng_aio_cancel(r->aio);
	pthread_mutex_unlock(&l->mtx);
	p.id = pipe;
	rc = pipesock_shutdown(p);
	log_event(LOG_WARN,
	    (log_field[]){LOG_NUM("connection", pipe),
		LOG_STR("limit", conns_over_option(why))},
	    2, "connection %" PRIu32 ": %s (%s): %s", pipe, what,
	    conns_over_option(why),
	    rc == 0 ? "it is closed"
		    : "it is served no more (its socket was not found to "
		      "close)");
}

void
listener_set_shm(listener *l, struct shm *s)
{
	l->shm = s;
}

void
listener_reply(listener *l, listener_req *r, nng_msg *msg)
{
	conn_over over;
	bool mute;

	if (r->state == REQ_MEMBER) {
		member_reply(l, r, msg);
		return;
	}
	if (l->shm != NULL)
		shm_reply(l->shm, r->pipe, &msg);
	pthread_mutex_lock(&l->mtx);
	conns_answered(l->conns, r->pipe, now_s());
	if ((mute = conns_muted(l->conns, r->pipe)))
		over = CONN_OK;
	else
		over = conns_queued(l->conns, r->pipe, nng_msg_len(msg));
	pthread_mutex_unlock(&l->mtx);
	if (mute) {
		nng_msg_free(msg); /* its client gets nothing more */
		recycle(l, r);
		return;
	}
	l->bytes_out += nng_msg_len(msg);
	r->state = REQ_SENDING;
	r->sent_len = nng_msg_len(msg);
	l->replies++;
	nng_aio_set_msg(r->aio, msg);
	nng_ctx_send(r->ctx, r->aio);
	if (over != CONN_OK)
		muted(l, r->pipe, over, "its client leaves its replies unread");
}

void
listener_auth_failed(listener *l, const listener_req *r)
{
	conn_over over;

	pthread_mutex_lock(&l->mtx);
	over = conns_auth_failed(l->conns, r->pipe);
	pthread_mutex_unlock(&l->mtx);
	if (over != CONN_OK)
		muted(l, r->pipe, over,
		    "too many requests without the right token");
}

bool
listener_aged(listener *l, const listener_req *r)
{
	bool aged, first;

	pthread_mutex_lock(&l->mtx);
	aged = conns_aged(l->conns, r->pipe, now_s(), &first);
	if (first)
		l->muted[CONN_AGED]++;
	pthread_mutex_unlock(&l->mtx);
	if (first)
		log_debug("connection %" PRIu32 ": past --max-connection-age, "
			  "its new calls are refused as not started", r->pipe);
	return aged;
}

size_t
listener_held(listener *l, const listener_req *r)
{
	size_t n;

	pthread_mutex_lock(&l->mtx);
	n = conns_held(l->conns, r->pipe);
	pthread_mutex_unlock(&l->mtx);
	return n;
}

uint32_t
listener_req_pipe(const listener_req *r)
{
	return r->pipe;
}

void
listener_bytes(const listener *l, uint64_t *in, uint64_t *out)
{
	*in = l->bytes_in;
	*out = l->bytes_out;
}

size_t
listener_sending(listener *l)
{
	size_t n;

	pthread_mutex_lock(&l->mtx);
	n = l->replies - l->replies_done;
	pthread_mutex_unlock(&l->mtx);
	return n;
}

size_t
listener_connections(listener *l)
{
	size_t n;

	pthread_mutex_lock(&l->mtx);
	n = conns_count(l->conns);
	pthread_mutex_unlock(&l->mtx);
	return n;
}

void
listener_limit_counts(listener *l, uint64_t *refused, uint64_t *unread,
    uint64_t *auth, uint64_t *idle, uint64_t *aged)
{
	pthread_mutex_lock(&l->mtx);
	*refused = l->refused;
	*unread = l->muted[CONN_UNREAD] + l->muted[CONN_UNREAD_BYTES];
	*auth = l->muted[CONN_AUTH_FAILURES];
	*idle = l->muted[CONN_IDLE];
	*aged = l->muted[CONN_AGED];
	pthread_mutex_unlock(&l->mtx);
}

/* Every second or so: closes the connections conns_idle names. */
static void
on_idle_sweep(evutil_socket_t fd, short what, void *arg)
{
	listener *l = arg;
	uint32_t idle[256];
	size_t n;

	do {
		pthread_mutex_lock(&l->mtx);
		n = conns_idle(l->conns, now_s(), idle, 256);
		l->muted[CONN_IDLE] += n;
		pthread_mutex_unlock(&l->mtx);
		for (size_t i = 0; i < n; i++) {
			nng_pipe p = NNG_PIPE_INITIALIZER;
			int rc;

			p.id = idle[i];
			rc = pipesock_shutdown(p);
			log_debug("connection %" PRIu32 ": idle for "
				  "--max-connection-idle: %s", idle[i],
			    rc == 0 ? "closed" : strerror(-rc));
		}
	} while (n == 256);
}

int
listener_init(listener **out, struct event_base *base, size_t hard_max,
    size_t max_reply, const conn_limits *lim, listener_recv_fn fn,
    listener_gone_fn gone, void *arg, char *err, size_t errlen)
{
	listener *l;
	int rc;

	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->conns = conns_new(lim)) == NULL) {
		free(l);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->fn = fn;
	l->gone = gone;
	l->max_reply = max_reply;
	l->arg = arg;
	l->efd = -1;
	pthread_mutex_init(&l->mtx, NULL);
	if ((rc = nng_rep0_open(&l->sock)) != 0) {
		snprintf(err, errlen, "cannot open nng socket: %s",
		    nng_strerror(rc));
		pthread_mutex_destroy(&l->mtx);
		free(l);
		return -EIO;
	}
	if ((rc = nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ, hard_max)) !=
	    0) {
		snprintf(err, errlen, "cannot set up nng socket: %s",
		    nng_strerror(rc));
		goto fail;
	}
	if ((rc = nng_pipe_notify(l->sock, NNG_PIPE_EV_REM_POST, on_pipe_gone,
		 l)) != 0 ||
	    (rc = nng_pipe_notify(l->sock, NNG_PIPE_EV_ADD_PRE, on_pipe_added,
		 l)) != 0) {
		snprintf(err, errlen, "cannot watch nng connections: %s",
		    nng_strerror(rc));
		goto fail;
	}
	if (lim->idle_s > 0) {
		double every = lim->idle_s / 4 < 1 ? lim->idle_s / 4 : 1;
		struct timeval tv = {(time_t) every,
		    (suseconds_t) ((every - (double) (time_t) every) * 1e6)};
		if ((l->idle_ev = event_new(base, -1, EV_PERSIST, on_idle_sweep,
			 l)) == NULL ||
		    event_add(l->idle_ev, &tv) != 0) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->efd == -1 ||
	    (l->done_ev = event_new(base, l->efd, EV_READ | EV_PERSIST,
		 on_done, l)) == NULL ||
	    event_add(l->done_ev, NULL) != 0) {
		snprintf(err, errlen, "cannot watch nng completions: %s",
		    strerror(errno));
		goto fail;
	}
	stock(l);
	*out = l;
	return 0;
fail:
	listener_fini(l);
	return -EIO;
}

int
listener_allow_origins(listener *l, const char *const *origins, size_t n)
{
	char **v = calloc(n ? n : 1, sizeof(*v));

	if (v == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if ((v[i] = strdup(origins[i])) == NULL) {
			while (i > 0)
				free(v[--i]);
			free(v);
			return -ENOMEM;
		}
	for (size_t i = 0; i < l->norigins; i++)
		free(l->origins[i]);
	free(l->origins);
	l->origins = v;
	l->norigins = n;
	return 0;
}

int
listener_listen(listener *l, const char *url, nng_tls_config *tls,
    char *bound, size_t boundlen, char *err, size_t errlen)
{
	nng_listener lst;
	int rc, port;

	if (tlsconf_url_is_tls(url) && tls == NULL) {
		snprintf(err, errlen, "cannot listen on %s: TLS needs a "
				      "certificate (--tls-cert)", url);
		return -EINVAL;
	}
	if ((rc = nng_listener_create(&lst, l->sock, url)) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", url,
		    nng_strerror(rc));
		return -EIO;
	}
	/* The TLS settings must be in place before the listener starts. */
	if ((tlsconf_url_is_tls(url) &&
		(rc = nng_listener_set_ptr(lst, NNG_OPT_TLS_CONFIG, tls)) !=
		    0) ||
	    (rc = nng_listener_start(lst, 0)) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", url,
		    nng_strerror(rc));
		nng_listener_close(lst);
		return -EIO;
	}
	snprintf(bound, boundlen, "%s", url);
	/* tcp://HOST:0 asks the kernel for a port: report the real one. */
	if ((strncmp(url, "tcp://", 6) == 0 ||
		strncmp(url, "tls+tcp://", 10) == 0) &&
	    nng_listener_get_int(lst, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
		const char *colon = strrchr(url, ':');
		const char *host = strstr(url, "://") + 3;
		if (colon && colon >= host)
			snprintf(bound, boundlen, "%.*s:%d",
			    (int) (colon - url), url, port);
	}
	return 0;
}

void
listener_fini(listener *l)
{
	if (l == NULL)
		return;
	/* From now on completions are ignored: stopping an aio runs its
	 * callback, which must not queue a context about to be freed. */
	pthread_mutex_lock(&l->mtx);
	l->closing = true;
	l->done_head = l->done_tail = NULL;
	pthread_mutex_unlock(&l->mtx);
	/* Stop every aio (it waits for running callbacks), then close the
	 * socket: closing with receives posted can crash nng 1.5.2. Twice: a
	 * callback that began before `closing` was set may post a receive on
	 * a context stopped before it; the second pass stops that one. */
	for (int pass = 0; pass < 2; pass++)
		for (listener_req *r = l->all; r != NULL; r = r->next)
			nng_aio_stop(r->aio);
	while (l->all != NULL)
		req_destroy(l, l->all);
	nng_close(l->sock);
	if (l->done_ev)
		event_free(l->done_ev);
	if (l->idle_ev)
		event_free(l->idle_ev);
	if (l->efd != -1)
		close(l->efd);
	pthread_mutex_destroy(&l->mtx);
	free(l->gone_pipes);
	conns_free(l->conns);
	for (size_t i = 0; i < l->norigins; i++)
		free(l->origins[i]);
	free(l->origins);
	free(l);
}
