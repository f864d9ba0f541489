/* A bare client of gild for tests that count replies: an nng raw REQ socket
 * with none of libgild's bookkeeping, so a duplicate reply, or one for an id
 * never sent, is seen and counted instead of dropped. */
#ifndef GILD_TEST_RAWCLIENT_H
#define GILD_TEST_RAWCLIENT_H

#include "gild.pb-c.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rawclient rawclient;

/* What came back so far. A reply counts under the id in its body
 * (Reply.id); its nng header must carry the same id (as a raw REQ socket's
 * request id: 0x80000000 | id), else it is also counted in `misrouted`. */
typedef struct rawclient_counts {
	uint64_t sent;        /* calls sent: ids 1..sent */
	uint64_t answered;    /* ids sent that have had one reply or more */
	uint64_t duplicates;  /* replies past the first, for ids sent */
	uint64_t unknown;     /* replies for an id never sent (0, or > sent) */
	uint64_t undecodable; /* messages that are not a Reply */
	uint64_t misrouted;   /* replies whose header id is not their body id */
} rawclient_counts;

/* Opens a raw REQ socket, dials url (waiting for the connection) and makes
 * room for max_calls calls (ids 1..max_calls). The receive queue holds
 * RAWCLIENT_RECVBUF replies: nng 1.5.2's raw REQ socket drops replies
 * silently past it (docs: DESIGN.md), so the caller keeps fewer calls than
 * that in flight and a missing reply is a real one. Returns 0 and *out
 * (free with rawclient_close), or an nng error / -1 (memory). */
#define RAWCLIENT_RECVBUF 8192
int rawclient_open(rawclient **out, const char *url, size_t max_calls);

/* Closes the socket under a 5 s bound (nng 1.5.2's close can hang: nng
 * #1543) and frees rc (NULL: nothing). Returns 0, or -1 when the close
 * hung: the socket is then left behind, the rest freed. */
int rawclient_close(rawclient *rc);

/* Sends Call{function fn, args[0..nargs)} (borrowed) with the next id
 * (1, 2, ...), returned in *id. Blocks while nng's send queue is full.
 * Returns 0, -1 when max_calls were sent already or the encoding failed,
 * or an nng error. */
int rawclient_call(rawclient *rc, const char *fn,
    const Gild__V1__Value *const *args, size_t nargs, uint64_t *id);

/* Sends a hand-made Request{id: the next id, field: the len bytes at body
 * (borrowed)}: body is the encoded call, actor_new, exec... as the test
 * wrote it, however malformed. Returns as rawclient_call. */
int rawclient_request(rawclient *rc, uint32_t field, const uint8_t *body,
    size_t len, uint64_t *id);

/* Waits up to timeout_ms for one message, counts it and, when it is a
 * Reply, hands it over: *out is new (gild__v1__reply__free_unpacked(*out,
 * NULL)) and *nth is how many replies its id has had, this one included
 * (0 for an id never sent). Returns 0, NNG_ETIMEDOUT, -1 for a message that
 * is not a Reply (counted, *out NULL), or another nng error. */
int rawclient_recv(
    rawclient *rc, int timeout_ms, Gild__V1__Reply **out, uint64_t *nth);

/* Receives and counts whatever arrives for ms milliseconds: the late
 * extras a server should never send. Returns the messages received. */
uint64_t rawclient_drain(rawclient *rc, int ms);

/* How many replies id has had (0 for an id out of range). */
uint64_t rawclient_replies(const rawclient *rc, uint64_t id);

rawclient_counts rawclient_counts_now(const rawclient *rc);

/* Value initialisers for call arguments: fill *v (the string is borrowed)
 * and return it. */
Gild__V1__Value *rawclient_int(Gild__V1__Value *v, int64_t i);
Gild__V1__Value *rawclient_str(Gild__V1__Value *v, const char *s);

#endif
