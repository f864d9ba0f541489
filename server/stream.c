/* A stream's chunk buffer and the Reply.chunks field that empties it
 * (written by replymsg.c). */
#include "stream.h"

#include "fields.h"
#include "gild_limits.h"
#include "replymsg.h"
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

stream *
stream_new(stream **list, uint32_t pipe, uint64_t call_id, uint32_t window)
{
	stream *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->window = window == 0 ? GILD_STREAM_WINDOW_DEFAULT
		     : window > GILD_STREAM_WINDOW_MAX ? GILD_STREAM_WINDOW_MAX
						       : window;
	st->pipe = pipe;
	st->call_id = call_id;
	st->next = *list;
	if (*list)
		(*list)->prev = st;
	*list = st;
	return st;
}

stream *
stream_find(stream *list, uint32_t pipe, uint64_t call_id)
{
	for (stream *st = list; st != NULL; st = st->next)
		if (st->pipe == pipe && st->call_id == call_id)
			return st;
	return NULL;
}

void
stream_free(stream **list, stream *st)
{
	if (st->next)
		st->next->prev = st->prev;
	if (st->prev)
		st->prev->next = st->next;
	else
		*list = st->next;
	stream_drop(st);
	free(st->ring);
	free(st);
}

/* Makes room for more chunks in st's ring (full now): twice as many, up
 * to the window. Rings grow as chunks come, so that streams waiting to
 * start cost no more than their struct. 0 or -ENOMEM. */
static int
grow(stream *st)
{
	uint32_t cap = st->cap == 0 ? 8 : st->cap * 2;
	struct stream_chunk *ring;

	if (cap > st->window)
		cap = st->window;
	if ((ring = calloc(cap, sizeof(*ring))) == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < st->n; i++)
		ring[i] = st->ring[(st->head + i) % st->cap];
	free(st->ring);
	st->ring = ring;
	st->cap = cap;
	st->head = 0;
	return 0;
}

int
stream_push(stream *st, const uint8_t *chunk, size_t len)
{
	uint8_t hdr[REPLYMSG_CHUNK_HEAD], *p;
	wire_field seq, val;
	size_t n;

	if (wire_find(chunk, len, GILD_WF_CHUNK_SEQ, &seq) != 1)
		seq.value = 0; /* proto3 leaves a zero out */
	if (wire_find(chunk, len, GILD_WF_CHUNK_VALUE, &val) != 1 ||
	    val.type != WIRE_LEN || seq.value != st->next_seq + st->n ||
	    st->n == st->window || st->ended)
		return -EPROTO;
	if (st->n == st->cap && grow(st) != 0)
		return -ENOMEM;
	n = replymsg_chunk_head(hdr, val.len);
	if ((p = malloc(n + val.len)) == NULL)
		return -ENOMEM;
	memcpy(p, hdr, n);
	memcpy(p + n, val.data, val.len);
	st->ring[(st->head + st->n) % st->cap].p = p;
	st->ring[(st->head + st->n) % st->cap].n = n + val.len;
	st->n++;
	st->held_bytes += n + val.len;
	return 0;
}

void
stream_end(stream *st, const uint8_t *error, size_t len)
{
	st->ended = true;
	if (error != NULL && (st->error = malloc(len ? len : 1)) != NULL) {
		memcpy(st->error, error, len);
		st->error_len = len;
	}
}

void
stream_drop(stream *st)
{
	st->held_bytes = 0;
	for (; st->n > 0; st->n--) {
		free(st->ring[st->head].p);
		st->ring[st->head].p = NULL;
		st->head = (st->head + 1) % st->cap;
	}
	free(st->error);
	st->error = NULL;
	st->ended = false;
}

bool
stream_ready(const stream *st)
{
	return st->n > 0 || st->ended;
}

int
stream_take(stream *st, nng_msg *m, uint32_t max, size_t max_bytes,
    uint32_t *taken, bool *end)
{
	uint32_t k = max != 0 && max < st->n ? max : st->n;
	/* The Reply's own fields and the end take less than this. */
	size_t items = 0, room = max_bytes > 256 + st->error_len ?
	    max_bytes - 256 - st->error_len : 0;
	bool last;

	*taken = 0;
	*end = false;
	for (uint32_t i = 0; i < k; i++) {
		size_t n = st->ring[(st->head + i) % st->cap].n;
		if (i > 0 && items + n > room) {
			k = i;
			break;
		}
		items += n;
	}
	last = st->ended && k == st->n;
	if (replymsg_chunks_open(m, st->next_seq, items, last, st->error,
		st->error_len) != 0)
		return -ENOMEM;
	for (uint32_t i = 0; i < k; i++) {
		uint32_t at = (st->head + i) % st->cap;
		if (nng_msg_append(m, st->ring[at].p, st->ring[at].n) != 0)
			return -ENOMEM;
	}
	if (replymsg_chunks_close(m, last, st->error, st->error_len) != 0)
		return -ENOMEM;
	for (uint32_t i = 0; i < k; i++) {
		free(st->ring[st->head].p);
		st->ring[st->head].p = NULL;
		st->head = (st->head + 1) % st->cap;
	}
	st->held_bytes -= items;
	st->n -= k;
	st->next_seq += k;
	*taken = k;
	*end = last;
	return 0;
}
