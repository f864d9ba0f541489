/* status: what the server tells about itself: the Status reply, and the
 * HTTP side port's /readyz, /status and /metrics (http.h's routes; arg is
 * the server). */
#ifndef GILD_SERVER_STATUS_H
#define GILD_SERVER_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "front.h"

/* Answers a StatusRequest. */
void status_request(server *srv, listener_req *req, uint64_t id);

/* /readyz: whether calls are taken (the server runs, a worker is ready to
 * run one); else why not. */
bool status_ready(void *arg, const char **why);
/* /status: what gildctl status prints, from the same Status message; new
 * (free()), or NULL when out of memory. */
char *status_json(void *arg);
/* /metrics: the counters, and the gauges as of now; new (free()). */
char *status_metrics_text(void *arg);

#endif
