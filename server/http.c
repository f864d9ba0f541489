/* The HTTP side port: /healthz, /readyz, /status and /metrics, answered on
 * the loop by a small responder of its own: one request per connection
 * (the answer says Connection: close), at most HTTP_CONNS_MAX connections
 * at once (a new one pushes out the oldest still sending its request),
 * each given HTTP_DEADLINE_S
 * seconds from its accept to send its request head of at most
 * HTTP_HEAD_MAX bytes. libevent's evhttp bounds none of these (its
 * timeout restarts with every byte, so a client sending one byte every few
 * seconds kept its connection for ever, and any number of them). */
#include "http.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct hconn {
	struct http *h;
	struct bufferevent *bev;
	struct event *deadline;
	bool answering;        /* its request came: its answer is going out */
	struct hconn *next, *prev; /* newest first */
} hconn;

struct http {
	struct event_base *base;
	struct evconnlistener *lst;
	http_routes routes;
	void *arg;
	hconn *conns; /* open connections */
	size_t nconns;
	uint64_t refused, timed_out;
};

static void
conn_close(hconn *c)
{
	http *h = c->h;

	if (c->next)
		c->next->prev = c->prev;
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	h->nconns--;
	event_free(c->deadline);
	bufferevent_free(c->bev);
	free(c);
}

/* The answer is written out: the connection is done. */
static void
on_written(struct bufferevent *bev, void *arg)
{
	conn_close(arg);
}

/* Answers c with code and body (text/plain unless type says otherwise;
 * none after a HEAD), then closes it. extra: more header lines, each
 * ending in CRLF, or NULL. */
static void
respond(hconn *c, int code, const char *reason, const char *type,
    const char *extra, const char *body, bool head)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t len = strlen(body);

	bufferevent_disable(c->bev, EV_READ);
	event_del(c->deadline);
	c->answering = true;
	evbuffer_add_printf(out,
	    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
	    code, reason, type != NULL ? type : "text/plain; charset=utf-8",
	    len, extra != NULL ? extra : "");
	if (!head)
		evbuffer_add(out, body, len);
	bufferevent_setcb(c->bev, NULL, on_written, NULL, c);
	bufferevent_enable(c->bev, EV_WRITE);
}

/* 200 with text (malloc'd, freed here) of type, or 500 when NULL. */
static void
respond_text(hconn *c, const char *type, char *text, bool head)
{
	if (text == NULL) {
		respond(c, 500, "Internal Server Error", NULL, NULL,
		    "out of memory\n", head);
		return;
	}
	respond(c, 200, "OK", type, NULL, text, head);
	free(text);
}

/* Answers the request whose head is line[0..len) (its first line). */
static void
route(hconn *c, const char *line, size_t len)
{
	http *h = c->h;
	const char *sp1 = memchr(line, ' ', len), *sp2, *q;
	const char *why = "not ready";
	char path[256], body[300];
	size_t mlen, plen;
	bool head;

	/* METHOD SP TARGET SP HTTP/1.x; the target's query is ignored. */
	sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', len - (size_t) (sp1 + 1 - line))
			  : NULL;
	if (sp2 == NULL || len - (size_t) (sp2 + 1 - line) != 8 ||
	    strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		respond(c, 400, "Bad Request", NULL, NULL,
		    "bad request: expected GET PATH HTTP/1.1\n", false);
		return;
	}
	mlen = (size_t) (sp1 - line);
	q = memchr(sp1 + 1, '?', (size_t) (sp2 - sp1 - 1));
	plen = (size_t) ((q != NULL ? q : sp2) - (sp1 + 1));
	snprintf(path, sizeof(path), "%.*s", (int) plen, sp1 + 1);
	head = mlen == 4 && strncmp(line, "HEAD", 4) == 0;
	if (!head && !(mlen == 3 && strncmp(line, "GET", 3) == 0)) {
		respond(c, 405, "Method Not Allowed", NULL, "Allow: GET, HEAD\r\n",
		    "method not allowed: GET or HEAD\n", false);
	} else if (strcmp(path, "/healthz") == 0) {
		respond(c, 200, "OK", NULL, NULL, "ok\n", head);
	} else if (strcmp(path, "/readyz") == 0) {
		if (h->routes.ready(h->arg, &why)) {
			respond(c, 200, "OK", NULL, NULL, "ready\n", head);
		} else {
			snprintf(body, sizeof(body), "not ready: %s\n", why);
			respond(c, 503, "Service Unavailable", NULL, NULL, body,
			    head);
		}
	} else if (strcmp(path, "/status") == 0) {
		respond_text(c, "application/json",
		    h->routes.status_json(h->arg), head);
	} else if (strcmp(path, "/metrics") == 0) {
		respond_text(c, "text/plain; version=0.0.4; charset=utf-8",
		    h->routes.metrics_text(h->arg), head);
	} else {
		respond(c, 404, "Not Found", NULL, NULL,
		    "not found: try /healthz, /readyz, /status or /metrics\n",
		    head);
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	hconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	struct evbuffer_ptr eol;
	size_t have = evbuffer_get_length(in);
	const char *line;

	if (end.pos < 0) {
		if (have > HTTP_HEAD_MAX)
			respond(c, 431, "Request Header Fields Too Large", NULL,
			    NULL, "request head too large\n", false);
		return; /* more to come, within the deadline */
	}
	eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_CRLF);
	if ((line = (const char *) evbuffer_pullup(in, eol.pos + 1)) == NULL) {
		conn_close(c);
		return;
	}
	route(c, line, (size_t) eol.pos);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	conn_close(arg); /* EOF or an error: the client is gone */
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	hconn *c = arg;

	c->h->timed_out++;
	respond(c, 408, "Request Timeout", NULL, NULL,
	    "request timeout: the request head must come within "
	    "5 seconds\n", false);
}

/* All HTTP_CONNS_MAX are taken: the oldest still sending its request
 * goes, so that a probe is answered even while slow clients hold every
 * connection (each of them is soon pushed out by the next). false if
 * every one is being answered. */
static bool
evict_oldest(http *h)
{
	hconn *oldest = NULL;

	for (hconn *c = h->conns; c != NULL; c = c->next)
		if (!c->answering)
			oldest = c;
	if (oldest == NULL)
		return false;
	h->refused++;
	conn_close(oldest);
	return true;
}

static void
on_accept(struct evconnlistener *lst, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	http *h = arg;
	struct timeval tv = {HTTP_DEADLINE_S, 0};
	hconn *c;

	if (h->nconns >= HTTP_CONNS_MAX && !evict_oldest(h)) {
		h->refused++;
		close(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->h = h;
	c->bev = bufferevent_socket_new(h->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->deadline = evtimer_new(h->base, on_deadline, c);
	if (c->bev == NULL || c->deadline == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		else
			close(fd);
		if (c->deadline != NULL)
			event_free(c->deadline);
		free(c);
		h->refused++;
		return;
	}
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	h->nconns++;
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	/* Read no more than a head's worth (and one byte to tell). */
	bufferevent_setwatermark(c->bev, EV_READ, 0, HTTP_HEAD_MAX + 1);
	bufferevent_enable(c->bev, EV_READ);
	evtimer_add(c->deadline, &tv);
}

/* Splits "HOST:PORT" or "[HOST]:PORT" into host (brackets removed) and
 * port. Returns 0 or -1. */
static int
split_hostport(const char *s, char *host, size_t hostlen, char *port,
    size_t portlen)
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
	snprintf(port, portlen, "%ld", p);
	return 0;
}

int
http_open(http **out, struct event_base *base, const char *hostport,
    const http_routes *routes, void *arg, char *url, size_t urllen,
    char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE}, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], port[8], shown[NI_MAXHOST];
	unsigned bound;
	http *h;

	if (split_hostport(hostport, host, sizeof(host), port,
		sizeof(port)) != 0) {
		snprintf(err, errlen, "--http %s: expected HOST:PORT, like "
		    "127.0.0.1:8080 or [::1]:8080 (port 0: any free port)",
		    hostport);
		return -1;
	}
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
		snprintf(err, errlen, "--http %s: cannot listen there (a bad "
		    "address)", hostport);
		return -1;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		freeaddrinfo(ai);
		snprintf(err, errlen, "--http: out of memory");
		return -1;
	}
	h->base = base;
	h->routes = *routes;
	h->arg = arg;
	h->lst = evconnlistener_new_bind(base, on_accept, h,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    128, ai->ai_addr, (int) ai->ai_addrlen);
	freeaddrinfo(ai);
	if (h->lst == NULL) {
		snprintf(err, errlen, "--http %s: cannot listen there (a bad "
		    "address, or the port is taken)", hostport);
		free(h);
		return -1;
	}
	if (getsockname(evconnlistener_get_fd(h->lst),
		(struct sockaddr *) &ss, &sl) != 0 ||
	    getnameinfo((struct sockaddr *) &ss, sl, shown, sizeof(shown),
		port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(shown, sizeof(shown), "%s", host);
	}
	bound = (unsigned) strtoul(port, NULL, 10);
	snprintf(url, urllen, strchr(shown, ':') ? "http://[%s]:%u"
						 : "http://%s:%u",
	    shown, bound);
	*out = h;
	return 0;
}

void
http_counts(const http *h, uint64_t *refused, uint64_t *timed_out)
{
	*refused = h != NULL ? h->refused : 0;
	*timed_out = h != NULL ? h->timed_out : 0;
}

void
http_close(http *h)
{
	if (h == NULL)
		return;
	while (h->conns != NULL)
		conn_close(h->conns);
	if (h->lst != NULL)
		evconnlistener_free(h->lst);
	free(h);
}
