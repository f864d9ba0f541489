/* A proxy that duplicates every Nth reply of the gild behind it. */
#include "dupproxy.h"
#include "harness.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

struct dupproxy {
	nng_socket front; /* raw REP: the clients */
	nng_socket back;  /* raw REQ: the real gild */
	unsigned every;
	atomic_bool stop;
	pthread_t up, down;
	bool up_started, down_started;
	dupproxy_counts n; /* requests by `up`, the rest by `down` */
};

/* How often a forwarding thread looks at `stop`. A thread blocked in
 * nng_recvmsg is not always woken by nng_close (docs/architecture.md), so
 * they poll instead of being closed out. */
#define POLL_MS 50

/* Receives from `from` and sends to `to` until stop; with every > 0 the
 * every-th message (and each every-th after) is sent twice. A raw socket's
 * receive leaves the routing (pipe id, request id) in the header, and its
 * send takes it from there, so forwarding as-is routes each reply back to
 * the client that asked. Counts into *forwarded and *doubled. */
static void
forward(dupproxy *p, nng_socket from, nng_socket to, unsigned every,
    uint64_t *forwarded, uint64_t *doubled)
{
	while (!atomic_load(&p->stop)) {
		nng_msg *m = NULL, *copy = NULL;
		int rv = nng_recvmsg(from, &m, 0);

		if (rv == NNG_ETIMEDOUT)
			continue;
		if (rv != 0)
			return;
		(*forwarded)++;
		if (every > 0 && *forwarded % every == 0 &&
		    nng_msg_dup(&copy, m) == 0) {
			if (nng_sendmsg(to, copy, 0) == 0)
				(*doubled)++;
			else
				nng_msg_free(copy);
		}
		if (nng_sendmsg(to, m, 0) != 0)
			nng_msg_free(m); /* the peer is gone: dropped */
	}
}

static void *
up_main(void *arg)
{
	dupproxy *p = arg;
	uint64_t none = 0;

	forward(p, p->front, p->back, 0, &p->n.requests, &none);
	return NULL;
}

static void *
down_main(void *arg)
{
	dupproxy *p = arg;

	forward(
	    p, p->back, p->front, p->every, &p->n.replies, &p->n.duplicated);
	return NULL;
}

/* Sets the options both sockets share: no drops on receive (RECVBUF, as
 * DESIGN.md measured), any size, polled receives, bounded sends. */
static int
setup(nng_socket s)
{
	int rv;

	if ((rv = nng_socket_set_int(s, NNG_OPT_RECVBUF, 8192)) != 0 ||
	    (rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0)) != 0 ||
	    (rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, POLL_MS)) != 0 ||
	    (rv = nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000)) != 0)
		return rv;
	return 0;
}

int
dupproxy_start(
    dupproxy **out, const char *upstream, unsigned every, char *url, size_t len)
{
	dupproxy *p = calloc(1, sizeof(*p));
	nng_listener l;
	int port = 0;
	bool front = false, back = false;

	*out = NULL;
	if (p == NULL)
		return -1;
	p->every = every;
	atomic_init(&p->stop, false);
	if (nng_rep0_open_raw(&p->front) != 0)
		goto fail;
	front = true;
	if (nng_req0_open_raw(&p->back) != 0)
		goto fail;
	back = true;
	if (setup(p->front) != 0 || setup(p->back) != 0 ||
	    nng_listen(p->front, "tcp://127.0.0.1:0", &l, 0) != 0 ||
	    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) != 0 ||
	    nng_dial(p->back, upstream, NULL, 0) != 0)
		goto fail;
	snprintf(url, len, "tcp://127.0.0.1:%d", port);
	p->up_started = pthread_create(&p->up, NULL, up_main, p) == 0;
	p->down_started =
	    p->up_started && pthread_create(&p->down, NULL, down_main, p) == 0;
	if (!p->down_started)
		goto fail;
	*out = p;
	return 0;

fail:
	atomic_store(&p->stop, true);
	if (p->up_started)
		pthread_join(p->up, NULL);
	if (front)
		close_bounded(p->front, 5000);
	if (back)
		close_bounded(p->back, 5000);
	free(p);
	return -1;
}

int
dupproxy_stop(dupproxy *p, dupproxy_counts *n)
{
	int rc = 0;

	atomic_store(&p->stop, true);
	pthread_join(p->up, NULL);
	pthread_join(p->down, NULL);
	if (n != NULL)
		*n = p->n;
	rc |= close_bounded(p->front, 5000);
	rc |= close_bounded(p->back, 5000);
	free(p);
	return rc;
}
