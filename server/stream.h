/* A stream's chunk buffer: the chunks a streaming job sends, held (at most
 * `window`) until the client takes them with StreamNext, then its end; and
 * the Reply.chunks field that hands them over. No I/O: the server owns the
 * request waiting on a stream and the job feeding it, and decides when to
 * answer and to grant the worker credit. */
#ifndef GILD_STREAM_H
#define GILD_STREAM_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct sjob;
struct listener_req;

/* Outlives its job when the generator finishes before the client has
 * taken everything. The server's fields first; the rest is stream.c's. */
typedef struct stream {
	uint32_t pipe;         /* key: the connection and */
	uint64_t call_id;      /* the Request.id of the Call that opened it */
	struct sjob *job;      /* the job generating it; NULL once it ended */
	bool orphan;           /* its connection closed */
	struct listener_req *pull; /* the request waiting for chunks, or NULL */
	uint64_t pull_id;
	uint32_t pull_max;     /* 0: no limit */
	struct timespec idle_since; /* with no pull waiting: since when */
	bool stopped;          /* its job was stopped by the server (idle, or
				  over --max-stream-bytes) */
	/* stream.c's */
	uint32_t window;
	uint32_t cap;          /* the ring's room, grown up to window */
	struct stream_chunk {
		uint8_t *p;     /* an encoded Chunks.items field (tag, length,
				 * Value) */
		size_t n;
	} *ring;
	uint32_t head, n;      /* held chunks: ring[head..head+n) */
	size_t held_bytes;     /* their bytes */
	uint64_t next_seq;     /* seq of the chunk at head */
	bool ended;            /* no chunk will be added */
	uint8_t *error;        /* with ended: an encoded Error, or NULL */
	size_t error_len;
	struct stream *next, *prev;
} stream;

/* A new stream keyed (pipe, call_id), holding up to window chunks (0: the
 * GILD_STREAM_WINDOW_DEFAULT; past GILD_STREAM_WINDOW_MAX: that), linked
 * into *list. NULL when out of memory. */
stream *stream_new(stream **list, uint32_t pipe, uint64_t call_id,
    uint32_t window);
/* The stream of list keyed (pipe, call_id), or NULL. */
stream *stream_find(stream *list, uint32_t pipe, uint64_t call_id);
/* Unlinks st from *list and frees it with what it holds. */
void stream_free(stream **list, stream *st);

/* Adds the worker's Chunk message (seq, value), copied. Returns 0;
 * -EPROTO when it is not the next chunk or the window is full (the worker
 * broke the protocol); -ENOMEM. */
int stream_push(stream *st, const uint8_t *chunk, size_t len);
/* No chunk will be added: the stream ends after those held, with error
 * (an encoded gild.v1.Error, copied; NULL: it ended well). */
void stream_end(stream *st, const uint8_t *error, size_t len);
/* Drops the chunks held and any end (before a cancelled stream ends with
 * its error). */
void stream_drop(stream *st);

/* Whether a request waiting on st can be answered now: chunks are held,
 * or the end is known. */
bool stream_ready(const stream *st);
/* Appends the Reply.chunks field to m (a Reply being built): the chunks
 * held, at most max (0: all) and no more than fit in max_bytes (but at
 * least one), and the end if they are the last; takes them out. *taken
 * says how many, *end whether the end went too. Returns 0, or -ENOMEM
 * with nothing taken (m may hold part of it). */
int stream_take(stream *st, nng_msg *m, uint32_t max, size_t max_bytes,
    uint32_t *taken,
    bool *end);

#endif
