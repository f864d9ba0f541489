/* The client-facing side: one nng REP socket listening on every --listen
 * URL. Each request arrives with its own nng context, which the reply must
 * go out on; nng's completions reach the libevent loop through an eventfd.
 *
 * Why contexts on a cooked REP socket rather than a raw one: a raw REP
 * socket (nng 1.5.2 xrep0) frees a reply whose pipe already has 64 queued,
 * though nng_sendmsg said it was sent; a context's send waits for the pipe
 * instead. No reply is ever dropped, and the loop never blocks. */
#ifndef GILD_LISTENER_H
#define GILD_LISTENER_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stddef.h>
#include <stdint.h>

#include "conns.h"

struct event_base;
typedef struct listener listener;

/* One received request's context: the reply must be sent with it. */
typedef struct listener_req listener_req;

/* Called on the loop for each request. The callee owns msg and must end req
 * with exactly one listener_reply (possibly later). */
typedef void (*listener_recv_fn)(void *arg, listener_req *req, nng_msg *msg);

/* Called on the loop when a client connection (pipe) has closed, after
 * every request that came in on it. */
typedef void (*listener_gone_fn)(void *arg, uint32_t pipe);

/* Opens the socket. Messages longer than hard_max bytes are dropped by the
 * transport (nng closes that connection); a batch's reply is kept within
 * max_reply bytes (replymsg_batch_add). Each connection is held to lim
 * (conns.h): past max_connections new ones are closed as they come; one
 * over a budget is muted, with a log line naming the limit; idle ones are
 * closed after idle_s. Returns 0 or a negative code with a message
 * in err. */
int listener_init(listener **out, struct event_base *base, size_t hard_max,
    size_t max_reply, const conn_limits *lim, listener_recv_fn fn,
    listener_gone_fn gone, void *arg, char *err, size_t errlen);

/* The origins (scheme://host[:port]) whose web pages may connect over
 * ws:// and wss://: an upgrade whose Origin header is not one of them is
 * closed before it delivers a request; one without Origin (not a browser)
 * is served. None given: no web page may connect. Copies them; call before
 * listener_listen. Returns 0 or -ENOMEM. */
int listener_allow_origins(listener *l, const char *const *origins, size_t n);

/* Starts listening on url. A TLS url (tls+tcp://, wss://) needs tls, the
 * certificate and key it presents (the listener holds its own reference);
 * others ignore it. On success writes the URL clients can dial into bound
 * (with the real port when url asked for tcp port 0). Returns 0 or a
 * negative code with a message in err. */
int listener_listen(listener *l, const char *url, nng_tls_config *tls,
    char *bound, size_t boundlen, char *err, size_t errlen);

/* Sends msg as the reply to req. Takes msg and ends req in every case; a
 * client that is gone just never sees it. */
void listener_reply(listener *l, listener_req *req, nng_msg *msg);

/* Batches: one request carrying several (Request.batch), answered with one
 * reply carrying theirs. The server calls listener_batch_begin on the
 * batch's req, then listener_batch_member for each request in it (each
 * member is answered with listener_reply as if it had come alone), then
 * listener_batch_end. When every member is answered, the batch's reply,
 * Reply{id, batch: Replies{the members' replies, in the order they were
 * answered}}, goes out on req. listener_batch_begin returns 0 or -ENOMEM
 * (then answer req with listener_reply as usual); listener_batch_member
 * returns NULL when out of memory. */
int listener_batch_begin(listener *l, listener_req *req, uint64_t id);
listener_req *listener_batch_member(listener *l, listener_req *batch);
void listener_batch_end(listener *l, listener_req *batch);

/* req was refused for a missing or wrong token (its reply already
 * given): its connection is muted once it has had max_auth_failures. */
void listener_auth_failed(listener *l, const listener_req *req);

/* Connections refused (max_connections), muted for unread replies and for
 * requests without the right token, and closed idle, since start. */
void listener_limit_counts(listener *l, uint64_t *refused, uint64_t *unread,
    uint64_t *auth, uint64_t *idle, uint64_t *aged);

/* Whether req's connection has lived past --max-connection-age (its new
 * calls are to be refused as not started: conns_aged); counted and
 * logged the first time. */
bool listener_aged(listener *l, const listener_req *req);

/* Requests of req's connection the server holds unanswered, req's own
 * included (a batch counts as one). */
size_t listener_held(listener *l, const listener_req *req);

/* The nng pipe id (one client connection) a request came in on. */
uint32_t listener_req_pipe(const listener_req *req);

/* Bytes of request and reply bodies received and sent since start. */
void listener_bytes(const listener *l, uint64_t *in, uint64_t *out);

/* Replies handed to nng and not yet written out (waiting on slow clients). */
size_t listener_sending(listener *l);

/* Client connections (nng pipes) open now. */
size_t listener_connections(listener *l);

/* Closes the socket and frees everything, requests not yet replied to
 * included. Accepts NULL. */
void listener_fini(listener *l);

/* --shm: large replies to connections tied to a shared-memory socket go
 * as memfds through s (shm.h; NULL: none). */
struct shm;
void listener_set_shm(listener *l, struct shm *s);

#endif
