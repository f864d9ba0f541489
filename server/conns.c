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
	size_t sent_total;       /* bytes of replies handed to nng, ever */
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
	k->sent_total += len;
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
			    k->sent_total > CONNS_IDLE_SENT_MAX ||
			    now - k->last < c->lim.idle_s)
				continue;
			k->closing = true;
			out[n++] = k->pipe;
		}
	return n;
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
		return "--idle-timeout";
	default:
		return "";
	}
}
