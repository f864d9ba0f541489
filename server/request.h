/* request: what a client's request does, as the listener hands it over
 * (listener.h's callbacks; arg is the server), and what a client's leaving
 * does to its calls. */
#ifndef GILD_SERVER_REQUEST_H
#define GILD_SERVER_REQUEST_H

#include <stdint.h>

#include <nng/nng.h>

#include "listener.h"

/* Every request from the listener: takes msg, answers req once (a Call:
 * when its job ends). */
void request_on(void *arg, listener_req *req, nng_msg *msg);

/* A client connection closed: its queued calls are dropped (their replies
 * would go nowhere), its running ones interrupted, its private actors
 * destroyed and its streams orphaned. */
void request_pipe_gone(void *arg, uint32_t pipe);

#endif
