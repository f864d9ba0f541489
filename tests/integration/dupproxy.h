/* A fake faulty server for tests of the tests: an nng proxy in front of a
 * real gild that sends every Nth reply twice, so a check meant to catch
 * duplicate replies can be shown to catch them without a hook in gild. */
#ifndef GILD_TEST_DUPPROXY_H
#define GILD_TEST_DUPPROXY_H

#include <stddef.h>
#include <stdint.h>

typedef struct dupproxy dupproxy;

/* What went through it. */
typedef struct dupproxy_counts {
	uint64_t requests;   /* forwarded to gild */
	uint64_t replies;    /* forwarded to clients, once each */
	uint64_t duplicated; /* of them, sent a second time */
} dupproxy_counts;

/* Listens on tcp://127.0.0.1 (a free port; its URL in url[0..len)) with a
 * raw REP socket and forwards every request, headers as they are, to
 * upstream through a raw REQ socket; every reply goes back the same way,
 * the every-th, 2every-th, ... one twice. Two threads forward, one each
 * way. Returns 0 and *out (stop with dupproxy_stop), or -1. */
int dupproxy_start(dupproxy **out, const char *upstream, unsigned every,
    char *url, size_t len);

/* Stops both threads, closes both sockets (each under a 5 s bound: nng
 * 1.5.2's close can hang) and frees p, after copying its counts to *n (may
 * be NULL). Returns 0, or -1 when a close hung. */
int dupproxy_stop(dupproxy *p, dupproxy_counts *n);

#endif
