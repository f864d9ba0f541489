/* The HTTP side port: /healthz, /readyz and /status on evhttp. */
#include "http.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct http {
	struct evhttp *ev;
	http_routes routes;
	void *arg;
};

/* Sends code with body (text/plain unless type says otherwise). */
static void
respond(struct evhttp_request *req, int code, const char *reason,
    const char *type, const char *body)
{
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", type ? type : "text/plain; charset=utf-8");
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	if (b != NULL)
		evbuffer_add_printf(b, "%s", body);
	evhttp_send_reply(req, code, reason, b);
	if (b != NULL)
		evbuffer_free(b);
}

static void
on_healthz(struct evhttp_request *req, void *arg)
{
	(void) arg;
	respond(req, HTTP_OK, "OK", NULL, "ok\n");
}

static void
on_readyz(struct evhttp_request *req, void *arg)
{
	http *h = arg;
	const char *why = "not ready";
	char body[256];

	if (h->routes.ready(h->arg, &why)) {
		respond(req, HTTP_OK, "OK", NULL, "ready\n");
		return;
	}
	snprintf(body, sizeof(body), "not ready: %s\n", why);
	respond(req, 503, "Service Unavailable", NULL, body);
}

/* 200 with text (malloc'd, freed here) of type, or 500 when NULL. */
static void
respond_text(struct evhttp_request *req, const char *type, char *text)
{
	if (text == NULL) {
		respond(req, HTTP_INTERNAL, "Internal Server Error", NULL,
		    "out of memory\n");
		return;
	}
	respond(req, HTTP_OK, "OK", type, text);
	free(text);
}

static void
on_status(struct evhttp_request *req, void *arg)
{
	http *h = arg;

	respond_text(req, "application/json", h->routes.status_json(h->arg));
}

static void
on_metrics(struct evhttp_request *req, void *arg)
{
	http *h = arg;

	respond_text(req, "text/plain; version=0.0.4; charset=utf-8",
	    h->routes.metrics_text(h->arg));
}

static void
on_other(struct evhttp_request *req, void *arg)
{
	(void) arg;
	respond(req, HTTP_NOTFOUND, "Not Found", NULL,
	    "not found: try /healthz, /readyz, /status or /metrics\n");
}

/* Splits "HOST:PORT" or "[HOST]:PORT" into host (brackets removed) and
 * port. Returns 0 or -1. */
static int
split_hostport(const char *s, char *host, size_t hostlen, unsigned *port)
{
	const char *colon = strrchr(s, ':'), *h = s;
	size_t n;
	char *end;
	long p;

	if (colon == NULL || colon == s)
		return -1;
	n = (size_t) (colon - s);
	if (s[0] == '[') {
		if (n < 3 || s[n - 1] != ']')
			return -1;
		h = s + 1;
		n -= 2;
	}
	if (n >= hostlen || colon[1] == '\0')
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || p < 0 || p > 65535)
		return -1;
	*port = (unsigned) p;
	return 0;
}

int
http_open(http **out, struct event_base *base, const char *hostport,
    const http_routes *routes, void *arg, char *url, size_t urllen,
    char *err, size_t errlen)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256];
	unsigned port;
	http *h;

	if (split_hostport(hostport, host, sizeof(host), &port) != 0) {
		snprintf(err, errlen, "--http %s: expected HOST:PORT, like "
		    "127.0.0.1:8080 or [::1]:8080 (port 0: any free port)",
		    hostport);
		return -1;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (h->ev = evhttp_new(base)) == NULL) {
		free(h);
		snprintf(err, errlen, "--http: out of memory");
		return -1;
	}
	h->routes = *routes;
	h->arg = arg;
	evhttp_set_allowed_methods(h->ev, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_cb(h->ev, "/healthz", on_healthz, h);
	evhttp_set_cb(h->ev, "/readyz", on_readyz, h);
	evhttp_set_cb(h->ev, "/status", on_status, h);
	evhttp_set_cb(h->ev, "/metrics", on_metrics, h);
	evhttp_set_gencb(h->ev, on_other, h);
	/* Probes are tiny: a slow or idle client is dropped, not waited on. */
	evhttp_set_timeout(h->ev, 10);
	evhttp_set_max_headers_size(h->ev, 16384);
	evhttp_set_max_body_size(h->ev, 0);
	if ((bs = evhttp_bind_socket_with_handle(h->ev, host,
		 (ev_uint16_t) port)) == NULL) {
		snprintf(err, errlen, "--http %s: cannot listen there (a bad "
		    "address, or the port is taken)", hostport);
		http_close(h);
		return -1;
	}
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *) &ss,
		&sl) == 0)
		port = ntohs(ss.ss_family == AF_INET6
				 ? ((struct sockaddr_in6 *) &ss)->sin6_port
				 : ((struct sockaddr_in *) &ss)->sin_port);
	snprintf(url, urllen, strchr(host, ':') ? "http://[%s]:%u"
						: "http://%s:%u",
	    host, port);
	*out = h;
	return 0;
}

void
http_close(http *h)
{
	if (h == NULL)
		return;
	if (h->ev != NULL)
		evhttp_free(h->ev);
	free(h);
}
