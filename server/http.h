/* The HTTP side port (--http HOST:PORT): probes and status for operators
 * and load balancers, answered in the server's own loop.
 *
 *   GET /healthz  200 "ok": the loop answers
 *   GET /readyz   200 "ready", or 503 with why (no worker ready, draining)
 *   GET /status   200, the same JSON as `gildctl status`
 *   GET /metrics  200, Prometheus text format
 *
 * Anything else is 404; methods other than GET and HEAD get 405. */
#ifndef GILD_HTTP_H
#define GILD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What clients of the side port may hold: connections at once (past that
 * a new one pushes out the oldest still sending its request), the bytes of
 * a request head, and the seconds from a connection to the end of its
 * head (then it gets 408). */
#define HTTP_CONNS_MAX 64
#define HTTP_HEAD_MAX 8192
#define HTTP_DEADLINE_S 5

struct event_base;
typedef struct http http;

typedef struct http_routes {
	/* Whether the server takes calls; if not, why (a short line). */
	bool (*ready)(void *arg, const char **why);
	/* The status as JSON (malloc'd), or NULL when out of memory. */
	char *(*status_json)(void *arg);
	/* The metrics as Prometheus text (malloc'd), or NULL. */
	char *(*metrics_text)(void *arg);
} http_routes;

/* Listens on hostport ("127.0.0.1:8080", "[::1]:0", "0.0.0.0:80"; port 0
 * picks a free one). On success writes "http://HOST:PORT" (the real port)
 * into url. Returns 0, or -1 with a message in err. */
int http_open(http **out, struct event_base *base, const char *hostport,
    const http_routes *routes, void *arg, char *url, size_t urllen,
    char *err, size_t errlen);

/* Connections pushed out or closed as they came (HTTP_CONNS_MAX), and
 * requests that did not come within HTTP_DEADLINE_S, since start (0 for
 * NULL). */
void http_counts(const http *h, uint64_t *refused, uint64_t *timed_out);

/* Stops listening and frees it. Accepts NULL. */
void http_close(http *h);

#endif
