/* conns: per-connection budgets (conns.h). */
#include "conns.h"

#include <stdlib.h>

/* Chained hash table keyed by pipe id (nng hands them out in order, so
 * the low bits spread them). */
#define BUCKETS 1024

typedef struct conn {
	uint32_t pipe;
	bool muted;              /* over a budget: see conns.h */
	bool closing;            /* listed by conns_idle */
	uint32_t auth_failures;
	size_t unread, unread_bytes;
	size_t held;             /* requests handed to the server, unanswered */
	double last;             /* when it last had a request or an answer */
	double aged_at;          /* when its calls start being refused (0:
				    never) */
	bool aged_seen;          /* conns_aged said so once */
	struct conn *next;
} conn;

struct conns {
	conn_limits lim;
	size_t count;
	conn *bucket[BUCKETS];
};

conns *
conns_new(const conn_limits *lim)
{
	conns *c = calloc(1, sizeof(*c));

	if (c != NULL)
		c->lim = *lim;
	return c;
}

void
conns_free(conns *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < BUCKETS; i++)
		for (conn *k = c->bucket[i], *next; k != NULL; k = next) {
			next = k->next;
			free(k);
		}
	free(c);
}

static conn **
slot_of(conns *c, uint32_t pipe)
{
	conn **p = &c->bucket[pipe % BUCKETS];

	while (*p != NULL && (*p)->pipe != pipe)
		p = &(*p)->next;
	return p;
}

/* A factor in [1 - CONNS_AGE_JITTER, 1 + CONNS_AGE_JITTER] for pipe,
 * spread by splitmix64 of seed and pipe. */
static double
jitter(uint64_t seed, uint32_t pipe)
{
	uint64_t z = seed + (pipe + 1) * 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return 1 + CONNS_AGE_JITTER * (2 * ((z >> 11) * 0x1p-53) - 1);
}

int
conns_add(conns *c, uint32_t pipe, double now)
{
	conn **p = slot_of(c, pipe), *k;

	if (*p != NULL)
		return 0;
	if ((c->lim.max_connections != 0 &&
		c->count >= c->lim.max_connections) ||
	    (k = calloc(1, sizeof(*k))) == NULL)
		return -1;
	k->pipe = pipe;
	k->last = now;
	if (c->lim.max_age_s > 0)
		k->aged_at = now + c->lim.max_age_s * jitter(c->lim.seed, pipe);
	*p = k;
	c->count++;
	return 0;
}

void
conns_remove(conns *c, uint32_t pipe)
{
	conn **p = slot_of(c, pipe), *k = *p;

	if (k == NULL)
		return;
	*p = k->next;
	free(k);
	c->count--;
}

size_t
conns_count(const conns *c)
{
	return c->count;
}

bool
conns_muted(const conns *c, uint32_t pipe)
{
	const conn *k = *slot_of((conns *) c, pipe);

	return k != NULL && k->muted;
}

conn_over
conns_queued(conns *c, uint32_t pipe, size_t len)
{
	conn *k = *slot_of(c, pipe);

	if (k == NULL || k->muted)
		return CONN_OK;
	k->unread++;
	k->unread_bytes += len;
	if (k->unread > c->lim.max_unread) {
		k->muted = true;
		return CONN_UNREAD;
	}
	if (k->unread > 1 && k->unread_bytes > c->lim.max_unread_bytes) {
		k->muted = true;
		return CONN_UNREAD_BYTES;
	}
	return CONN_OK;
}

void
conns_sent(conns *c, uint32_t pipe, size_t len)
{
	conn *k = *slot_of(c, pipe);

	if (k == NULL || k->unread == 0)
		return;
	k->unread--;
	k->unread_bytes -= len <= k->unread_bytes ? len : k->unread_bytes;
}

conn_over
conns_auth_failed(conns *c, uint32_t pipe)
{
	conn *k = *slot_of(c, pipe);

	if (k == NULL || k->muted ||
	    ++k->auth_failures < c->lim.max_auth_failures)
		return CONN_OK;
	k->muted = true;
	return CONN_AUTH_FAILURES;
}

void
conns_request(conns *c, uint32_t pipe, double now)
{
	conn *k = *slot_of(c, pipe);

	if (k != NULL) {
		k->held++;
		k->last = now;
	}
}

void
conns_answered(conns *c, uint32_t pipe, double now)
{
	conn *k = *slot_of(c, pipe);

	if (k != NULL && k->held > 0) {
		k->held--;
		k->last = now;
	}
}

size_t
conns_held(const conns *c, uint32_t pipe)
{
	const conn *k = *slot_of((conns *) c, pipe);

	return k != NULL ? k->held : 0;
}

size_t
conns_idle(conns *c, double now, uint32_t *out, size_t max)
{
	size_t n = 0;

	if (c->lim.idle_s <= 0)
		return 0;
	for (size_t i = 0; i < BUCKETS && n < max; i++)
		for (conn *k = c->bucket[i]; k != NULL && n < max;
		     k = k->next) {
			if (k->closing || k->held > 0 || k->unread > 0 ||
			    now - k->last < c->lim.idle_s)
				continue;
			k->closing = true;
			out[n++] = k->pipe;
		}
	return n;
}

bool
conns_aged(conns *c, uint32_t pipe, double now, bool *first)
{
	conn *k = *slot_of(c, pipe);
	bool aged = k != NULL && k->aged_at > 0 && now >= k->aged_at;

	if (first != NULL)
		*first = aged && !k->aged_seen;
	if (aged)
		k->aged_seen = true;
	return aged;
}

const char *
conns_over_option(conn_over why)
{
	switch (why) {
	case CONN_UNREAD:
		return "--max-unread-replies";
	case CONN_UNREAD_BYTES:
		return "--max-unread-bytes";
	case CONN_AUTH_FAILURES:
		return "--max-auth-failures";
	case CONN_IDLE:
		return "--max-connection-idle";
	case CONN_AGED:
		return "--max-connection-age";
	default:
		return "";
	}
}
