/* libgild: the table of calls in flight (internal.h). Callers hold c->mtx. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

call *
gild__table_find(gild_client *c, uint64_t id)
{
	call *cl = c->buckets[id & (c->n_buckets - 1)];

	while (cl != NULL && cl->id != id)
		cl = cl->hnext;
	return cl;
}

int
gild__table_insert(gild_client *c, call *cl)
{
	call **slot;

	if (c->n_calls >= c->n_buckets) {
		size_t nb = c->n_buckets * 2;
		call **b = calloc(nb, sizeof(*b));

		if (b == NULL)
			return -1;
		for (size_t i = 0; i < c->n_buckets; i++) {
			call *e = c->buckets[i], *next;

			for (; e != NULL; e = next) {
				next = e->hnext;
				e->hnext = b[e->id & (nb - 1)];
				b[e->id & (nb - 1)] = e;
			}
		}
		free(c->buckets);
		c->buckets = b;
		c->n_buckets = nb;
	}
	slot = &c->buckets[cl->id & (c->n_buckets - 1)];
	cl->hnext = *slot;
	*slot = cl;
	c->n_calls++;
	if (!cl->done)
		c->n_pending++;
	if (cl->kind == CALL_USER)
		c->n_user++;
	return 0;
}

static void
done_unlink(gild_client *c, call *cl)
{
	if (cl->dprev != NULL)
		cl->dprev->dnext = cl->dnext;
	else if (c->done_head == cl)
		c->done_head = cl->dnext;
	if (cl->dnext != NULL)
		cl->dnext->dprev = cl->dprev;
	else if (c->done_tail == cl)
		c->done_tail = cl->dprev;
	cl->dprev = cl->dnext = NULL;
}


/* Takes cl out of the table (the caller frees it) and wakes waiters. */
void
gild__table_remove(gild_client *c, call *cl)
{
	call **p = &c->buckets[cl->id & (c->n_buckets - 1)];

	while (*p != cl)
		p = &(*p)->hnext;
	*p = cl->hnext;
	c->n_calls--;
	if (!cl->done)
		c->n_pending--;
	if (cl->kind == CALL_USER)
		c->n_user--;
	done_unlink(c, cl);
	gild__refused_unlink(c, cl);
	gild__wake_entry(c, cl->id, cl->kind, true);
}

void
gild__call_free(call *cl)
{
	if (cl == NULL)
		return;
	gild_result_clear(&cl->res);
	codec_chunks_fini(&cl->chunks);
	codec_buf_fini(&cl->body);
	free(cl);
}

/* Marks cl done with the outcome *res (moved in) and wakes waiters. */
void
gild__table_finish(gild_client *c, call *cl, gild_result *res)
{
	uint64_t id = cl->id;

	cl->res = *res;
	cl->res.id = id;
	memset(res, 0, sizeof(*res));
	cl->done = true;
	codec_buf_fini(&cl->body);
	c->n_pending--;
	if (cl->kind == CALL_USER) {
		cl->dprev = c->done_tail;
		if (c->done_tail != NULL)
			c->done_tail->dnext = cl;
		else
			c->done_head = cl;
		c->done_tail = cl;
	}
	gild__wake_entry(c, id, cl->kind, false);
}

