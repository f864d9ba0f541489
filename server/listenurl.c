/* Who can reach a --listen URL, and WebSocket origins (listenurl.h). */
#include "listenurl.h"

#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* Whether scheme is one of the names s (NULL-ended). */
static bool
scheme_in(const char *scheme, const char *const *s)
{
	for (; *s != NULL; s++)
		if (strcmp(scheme, *s) == 0)
			return true;
	return false;
}

static bool
addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *) sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *) (const void *) sa)
		         ->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

/* Whether host resolves, and only to loopback addresses. An empty host is
 * every interface. */
static bool
host_is_loopback(const char *host)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	    .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE};
	struct addrinfo *res, *ai;
	bool all = true;

	if (*host == '\0' || getaddrinfo(host, NULL, &hints, &res) != 0)
		return false;
	for (ai = res; ai != NULL; ai = ai->ai_next)
		all = all && addr_is_loopback(ai->ai_addr);
	freeaddrinfo(res);
	return all;
}

/* Parses url as nng will (*out: free with nng_url_free). Returns 0, or -1
 * with why in err. */
static int
parse(const char *url, nng_url **out, char *err, size_t len)
{
	int rc;

	if ((rc = nng_url_parse(out, url)) != 0) {
		snprintf(
		    err, len, "'%s' is not a URL: %s", url, nng_strerror(rc));
		return -1;
	}
	if ((*out)->u_userinfo != NULL) {
		snprintf(err, len,
		    "'%s' has a user@ part, which nng drops: it would listen "
		    "on the host after the @",
		    url);
		nng_url_free(*out);
		return -1;
	}
	return 0;
}

int
listenurl_check(const char *url, char *err, size_t len)
{
	nng_url *u;

	if (parse(url, &u, err, len) != 0)
		return -1;
	nng_url_free(u);
	return 0;
}

int
listenurl_reach(
    const char *url, enum listenurl_reach *reach, char *err, size_t len)
{
	static const char *const local[] = {"ipc", "unix", "inproc", NULL};
	static const char *const tcp[] = {
	    "tcp", "tcp4", "tcp6", "tls+tcp", "tls+tcp4", "tls+tcp6", NULL};
	static const char *const ws[] = {
	    "ws", "ws4", "ws6", "wss", "wss4", "wss6", NULL};
	nng_url *u;

	if (parse(url, &u, err, len) != 0)
		return -1;
	if (scheme_in(u->u_scheme, local))
		*reach = LISTENURL_LOCAL;
	else if (strcmp(u->u_scheme, "abstract") == 0)
		*reach = LISTENURL_ABSTRACT;
	else if (!host_is_loopback(u->u_hostname))
		*reach = LISTENURL_PUBLIC;
	else if (scheme_in(u->u_scheme, tcp))
		*reach = LISTENURL_LOCAL;
	else if (scheme_in(u->u_scheme, ws))
		*reach = LISTENURL_BROWSER;
	else
		*reach = LISTENURL_PUBLIC; /* a transport we know nothing of */
	nng_url_free(u);
	return 0;
}

bool
listenurl_is_origin(const char *text)
{
	const char *p = strstr(text, "://"), *h;

	if (p == NULL || p == text)
		return false;
	for (const char *s = text; s < p; s++)
		if (!isalnum((unsigned char) *s) && *s != '+' && *s != '-' &&
		    *s != '.')
			return false;
	h = p + 3;
	if (*h == '\0' || *h == ':')
		return false;
	for (; *h != '\0'; h++)
		if (*h == '/' || *h == '@' || *h == '?' || *h == '#' ||
		    isspace((unsigned char) *h) || iscntrl((unsigned char) *h))
			return false;
	return true;
}

bool
listenurl_origin_allowed(
    const char *origin, const char *const *allowed, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(origin, allowed[i]) == 0)
			return true;
	return false;
}
