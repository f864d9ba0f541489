/* The client-facing side: an nng raw REP socket on the libevent loop. */
#include "listener.h"

#include "log.h"

#include <errno.h>
#include <event2/event.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A reply nng would not take yet. */
typedef struct held {
	nng_msg *msg;
	struct held *next;
} held;

struct listener {
	nng_socket sock;
	struct event *recv_ev;
	struct event *retry_ev;
	int retry_ms;
	listener_recv_fn fn;
	void *arg;
	held *head, *tail;
	size_t backlog;
};

/* The retry delay doubles while nng stays full, up to this. */
#define RETRY_MAX_MS 50

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	listener *l = arg;
	nng_msg *msg;
	int rc;

	/* The descriptor stays readable while messages wait: read them all. */
	while ((rc = nng_recvmsg(l->sock, &msg, NNG_FLAG_NONBLOCK)) == 0)
		l->fn(l->arg, msg);
	if (rc != NNG_EAGAIN && rc != NNG_ECLOSED)
		log_error("nng receive failed: %s", nng_strerror(rc));
}

/* Sends held replies in order until nng pushes back again. */
static void
flush_held(listener *l)
{
	held *h;

	while ((h = l->head) != NULL) {
		int rc = nng_sendmsg(l->sock, h->msg, NNG_FLAG_NONBLOCK);
		if (rc == NNG_EAGAIN)
			break;
		if (rc != 0) {
			log_warn("reply dropped: %s", nng_strerror(rc));
			nng_msg_free(h->msg);
		}
		l->head = h->next;
		if (l->head == NULL)
			l->tail = NULL;
		l->backlog--;
		free(h);
	}
}

static void
arm_retry(listener *l)
{
	struct timeval tv = {0, l->retry_ms * 1000};

	evtimer_add(l->retry_ev, &tv);
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	listener *l = arg;

	flush_held(l);
	if (l->head != NULL) {
		l->retry_ms = l->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS
							     : l->retry_ms * 2;
		arm_retry(l);
	}
}

void
listener_send(listener *l, nng_msg *msg)
{
	held *h;
	int rc;

	if (l->head == NULL) {
		rc = nng_sendmsg(l->sock, msg, NNG_FLAG_NONBLOCK);
		if (rc == 0)
			return;
		if (rc != NNG_EAGAIN) {
			log_warn("reply dropped: %s", nng_strerror(rc));
			nng_msg_free(msg);
			return;
		}
	}
	if ((h = malloc(sizeof(*h))) == NULL) {
		log_error("out of memory holding a reply: dropped");
		nng_msg_free(msg);
		return;
	}
	h->msg = msg;
	h->next = NULL;
	if (l->tail)
		l->tail->next = h;
	else
		l->head = h;
	l->tail = h;
	l->backlog++;
	if (!evtimer_pending(l->retry_ev, NULL)) {
		l->retry_ms = 1;
		arm_retry(l);
	}
}

int
listener_init(listener **out, struct event_base *base, size_t hard_max,
    listener_recv_fn fn, void *arg, char *err, size_t errlen)
{
	listener *l;
	int rc, fd;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->fn = fn;
	l->arg = arg;
	if ((rc = nng_rep0_open_raw(&l->sock)) != 0) {
		snprintf(err, errlen, "cannot open nng socket: %s",
		    nng_strerror(rc));
		free(l);
		return -EIO;
	}
	/* Deep queues so bursts of replies rarely meet EAGAIN at all. */
	if ((rc = nng_socket_set_int(l->sock, NNG_OPT_SENDBUF, 8192)) != 0 ||
	    (rc = nng_socket_set_int(l->sock, NNG_OPT_RECVBUF, 8192)) != 0 ||
	    (rc = nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ, hard_max)) !=
		0 ||
	    (rc = nng_socket_get_int(l->sock, NNG_OPT_RECVFD, &fd)) != 0) {
		snprintf(err, errlen, "cannot set up nng socket: %s",
		    nng_strerror(rc));
		goto fail;
	}
	l->recv_ev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, l);
	l->retry_ev = evtimer_new(base, on_retry, l);
	if (l->recv_ev == NULL || l->retry_ev == NULL ||
	    event_add(l->recv_ev, NULL) != 0) {
		snprintf(err, errlen, "cannot watch the nng socket");
		goto fail;
	}
	*out = l;
	return 0;
fail:
	listener_fini(l);
	return -EIO;
}

int
listener_listen(listener *l, const char *url, char *bound, size_t boundlen,
    char *err, size_t errlen)
{
	nng_listener lst;
	int rc, port;

	if ((rc = nng_listen(l->sock, url, &lst, 0)) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", url,
		    nng_strerror(rc));
		return -EIO;
	}
	snprintf(bound, boundlen, "%s", url);
	/* tcp://HOST:0 asks the kernel for a port: report the real one. */
	if (strncmp(url, "tcp://", 6) == 0 &&
	    nng_listener_get_int(lst, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
		const char *colon = strrchr(url, ':');
		if (colon && colon > url + 5)
			snprintf(bound, boundlen, "%.*s:%d",
			    (int) (colon - url), url, port);
	}
	return 0;
}

void
listener_pause(listener *l)
{
	event_del(l->recv_ev);
}

size_t
listener_backlog(const listener *l)
{
	return l->backlog;
}

void
listener_fini(listener *l)
{
	held *h;

	if (l == NULL)
		return;
	if (l->recv_ev)
		event_free(l->recv_ev);
	if (l->retry_ev)
		event_free(l->retry_ev);
	nng_close(l->sock);
	while ((h = l->head) != NULL) {
		l->head = h->next;
		nng_msg_free(h->msg);
		free(h);
	}
	free(l);
}
