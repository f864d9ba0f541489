/* The HTTP side port (--http HOST:PORT): probes and status for operators
 * and load balancers, on libevent's evhttp in the server's own loop.
 *
 *   GET /healthz  200 "ok": the loop answers
 *   GET /readyz   200 "ready", or 503 with why (no worker ready, draining)
 *   GET /status   200, the same JSON as `gildctl status`
 *   GET /metrics  200, Prometheus text format
 *
 * Anything else is 404; methods other than GET and HEAD are refused. */
#ifndef GILD_HTTP_H
#define GILD_HTTP_H

#include <stdbool.h>
#include <stddef.h>

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

/* Stops listening and frees it. Accepts NULL. */
void http_close(http *h);

#endif
