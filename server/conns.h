/* conns: what each client connection (nng pipe) may cost the server, and
 * what it costs now: replies handed to nng that its client has not read
 * yet (count and bytes), and requests refused for a missing or wrong
 * token. Pure (no nng, no loop, no lock): the listener keeps one table
 * under its mutex.
 *
 * A connection over a budget is muted: its requests are read and dropped,
 * and nothing more is sent to it, until nng has closed it (the listener
 * shuts its socket down: pipesock.h). */
#ifndef GILD_SERVER_CONNS_H
#define GILD_SERVER_CONNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct conn_limits {
	size_t max_connections;  /* open at once; more are refused (0: any) */
	size_t max_unread;       /* replies not yet read by the client */
	size_t max_unread_bytes; /* their bytes (one reply is always let
				    through, however large) */
	uint32_t max_auth_failures; /* requests refused UNAUTHENTICATED */
	double idle_s;           /* closed after this long with no request in
				    hand and no reply in nng (0: never) */
	double max_age_s;        /* calls refused "not started" after this
				    long, within +/- CONNS_AGE_JITTER (0:
				    never): conns_aged */
	uint64_t seed;           /* spreads the ages (any value) */
} conn_limits;

/* Each connection's age limit is max_age_s times a factor drawn from
 * [1 - CONNS_AGE_JITTER, 1 + CONNS_AGE_JITTER], so that connections made
 * together (after a deploy) do not all end together (gRPC's
 * MAX_CONNECTION_AGE jitter). */
#define CONNS_AGE_JITTER 0.1

/* Why a connection is over its budget. */
typedef enum conn_over {
	CONN_OK,
	CONN_UNREAD,        /* max_unread */
	CONN_UNREAD_BYTES,  /* max_unread_bytes */
	CONN_AUTH_FAILURES, /* max_auth_failures */
	CONN_IDLE,          /* idle_s (--max-connection-idle) */
	CONN_AGED,          /* max_age_s (--max-connection-age) */
	CONN_OVER_N
} conn_over;

typedef struct conns conns;

conns *conns_new(const conn_limits *lim);
void conns_free(conns *c);

/* A connection opened at now (monotonic seconds): 0, or -1 when
 * max_connections are open (or out of memory): it is to be refused. */
int conns_add(conns *c, uint32_t pipe, double now);
void conns_remove(conns *c, uint32_t pipe);
size_t conns_count(const conns *c);

/* Whether pipe is muted: its requests are dropped, and replies to it. */
bool conns_muted(const conns *c, uint32_t pipe);

/* A reply of len bytes to pipe is to be handed to nng: CONN_OK; or, once,
 * the unread budget it passes (the connection is muted from now on, the
 * reply still goes). Not counted (and CONN_OK) for a muted connection or
 * one not in the table. */
conn_over conns_queued(conns *c, uint32_t pipe, size_t len);
/* nng is done with such a reply (sent, or its connection gone). */
void conns_sent(conns *c, uint32_t pipe, size_t len);

/* A request from pipe was refused for its token: CONN_AUTH_FAILURES once,
 * when that makes max_auth_failures (it is muted from now on). */
conn_over conns_auth_failed(conns *c, uint32_t pipe);

/* A request from pipe is handed to the server / answered (its reply
 * handed to nng, or dropped): what makes a connection busy, not idle. now
 * is a monotonic time in seconds. */
void conns_request(conns *c, uint32_t pipe, double now);
void conns_answered(conns *c, uint32_t pipe, double now);

/* Requests of pipe in the server's hands, unanswered (0: unknown). */
size_t conns_held(const conns *c, uint32_t pipe);

/* Appends to out (room for max) the connections idle for idle_s at now:
 * no request in hand, no reply in nng, none for that long (none when
 * idle_s is 0); returns how many, each listed once. */
size_t conns_idle(conns *c, double now, uint32_t *out, size_t max);

/* Whether pipe has lived past its age limit at now (false when
 * max_age_s is 0 or pipe is not in the table): its new calls are to be
 * refused as not started, so that its client makes a new connection,
 * which a load balancer may give to another server. */
bool conns_aged(conns *c, uint32_t pipe, double now, bool *first);
/* (*first, when first is not NULL: whether this is the first time pipe
 * is found aged.) */

/* The option that sets the budget `why` names ("--max-unread-replies"). */
const char *conns_over_option(conn_over why);

#endif
