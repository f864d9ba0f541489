/* Who can reach a --listen URL, and which WebSocket origins may connect:
 * the facts gild serve's token rules and the listener's Origin check rest
 * on. The URL is parsed by nng's own parser and its host resolved, so what
 * is checked is what nng will bind. */
#ifndef GILD_LISTENURL_H
#define GILD_LISTENURL_H

#include <stdbool.h>
#include <stddef.h>

enum listenurl_reach {
	LISTENURL_LOCAL,    /* ipc://, unix://, inproc://, or tcp:// and
	                       tls+tcp:// on a host whose every address is
	                       loopback: only this machine's users */
	LISTENURL_BROWSER,  /* ws:// or wss:// on loopback: also any web page
	                       open in a browser on this machine */
	LISTENURL_ABSTRACT, /* abstract://: any process in this network
	                       namespace (no file permissions guard it) */
	LISTENURL_PUBLIC,   /* anything else: other machines, or a host that
	                       does not resolve */
};

/* Checks that url is one nng can parse, with no user@ part (nng would
 * drop it and bind the host after the @): returns 0, or -1 with why in
 * err. Resolves nothing. */
int listenurl_check(const char *url, char *err, size_t len);

/* Sets *reach for url. Returns 0, or -1 with why in err when
 * listenurl_check refuses url. Resolves host names (getaddrinfo): may
 * block. */
int listenurl_reach(
    const char *url, enum listenurl_reach *reach, char *err, size_t len);

/* Whether text is an origin as browsers send it in an Origin header:
 * scheme://host[:port], with no path, user@, query or fragment. */
bool listenurl_is_origin(const char *text);

/* Whether origin (an Origin header's value) is one of the n allowed ones,
 * compared without regard to ASCII case. */
bool listenurl_origin_allowed(
    const char *origin, const char *const *allowed, size_t n);

#endif
