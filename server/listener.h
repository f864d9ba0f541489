/* The client-facing side: one nng REP socket in raw mode listening on every
 * --listen URL, its receive descriptor watched by the libevent loop. Replies
 * that nng cannot take right now are held in order and retried, never
 * dropped and never waited for on the loop. */
#ifndef GILD_LISTENER_H
#define GILD_LISTENER_H

#include <nng/nng.h>
#include <stddef.h>

struct event_base;
typedef struct listener listener;

/* Called on the loop for each request; msg (header: the nng backtrace to
 * copy into the reply) becomes the callee's. */
typedef void (*listener_recv_fn)(void *arg, nng_msg *msg);

/* Opens the socket. Messages longer than hard_max bytes are dropped by the
 * transport (nng closes that connection). Returns 0 or a negative code with
 * a message in err. */
int listener_init(listener **out, struct event_base *base, size_t hard_max,
    listener_recv_fn fn, void *arg, char *err, size_t errlen);

/* Starts listening on url. On success writes the URL clients can dial into
 * bound (with the real port when url asked for tcp port 0). Returns 0 or a
 * negative code with a message in err. */
int listener_listen(listener *l, const char *url, char *bound,
    size_t boundlen, char *err, size_t errlen);

/* Sends a reply. Takes msg in every case: what nng refuses for now is queued
 * and retried in order. */
void listener_send(listener *l, nng_msg *msg);

/* Stops taking requests (what is already queued in nng is not read). */
void listener_pause(listener *l);

/* Replies held because nng's send queue was full. */
size_t listener_backlog(const listener *l);

/* Closes the socket and frees everything, held replies included. Accepts
 * NULL. */
void listener_fini(listener *l);

#endif
