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
	if ((st->ring = calloc(st->window, sizeof(*st->ring))) == NULL) {
		free(st);
		return NULL;
	}
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
	n = replymsg_chunk_head(hdr, val.len);
	if ((p = malloc(n + val.len)) == NULL)
		return -ENOMEM;
	memcpy(p, hdr, n);
	memcpy(p + n, val.data, val.len);
	st->ring[(st->head + st->n) % st->window].p = p;
	st->ring[(st->head + st->n) % st->window].n = n + val.len;
	st->n++;
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
	for (; st->n > 0; st->n--) {
		free(st->ring[st->head].p);
		st->ring[st->head].p = NULL;
		st->head = (st->head + 1) % st->window;
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
stream_take(stream *st, nng_msg *m, uint32_t max, uint32_t *taken, bool *end)
{
	uint32_t k = max != 0 && max < st->n ? max : st->n;
	size_t items = 0;
	bool last = st->ended && k == st->n;

	*taken = 0;
	*end = false;
	for (uint32_t i = 0; i < k; i++)
		items += st->ring[(st->head + i) % st->window].n;
	if (replymsg_chunks_open(m, st->next_seq, items, last, st->error,
		st->error_len) != 0)
		return -ENOMEM;
	for (uint32_t i = 0; i < k; i++) {
		uint32_t at = (st->head + i) % st->window;
		if (nng_msg_append(m, st->ring[at].p, st->ring[at].n) != 0)
			return -ENOMEM;
	}
	if (replymsg_chunks_close(m, last, st->error, st->error_len) != 0)
		return -ENOMEM;
	for (uint32_t i = 0; i < k; i++) {
		free(st->ring[st->head].p);
		st->ring[st->head].p = NULL;
		st->head = (st->head + 1) % st->window;
	}
	st->n -= k;
	st->next_seq += k;
	*taken = k;
	*end = last;
	return 0;
}
