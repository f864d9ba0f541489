/* replymsg: the bytes of every gild.v1.Reply the front end sends, and the
 * only code that writes a Reply's fields: a Reply packed by protobuf-c, one
 * that carries a worker's result or error as it came, a batch's Replies,
 * and a stream's Chunks. Pure (no listener, no loop): reply.c sends what
 * it builds, the listener closes batches with it, stream.c frames chunks
 * with it. */
#ifndef GILD_SERVER_REPLYMSG_H
#define GILD_SERVER_REPLYMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "gild.pb-c.h"
#include "wire.h"

/* Each returns a new message (owned by the caller), or NULL when out of
 * memory. Reply.id is request_id, left out when it is 0. */

/* Reply{id}: the body's fields to be appended by the caller. */
nng_msg *replymsg_start(uint64_t request_id);
/* Reply{id, <r's body>}; r->id is overwritten. */
nng_msg *replymsg_pack(uint64_t request_id, Gild__V1__Reply *r);
/* Reply{id} followed by fields[0..len): a worker's result or error, which
 * it encodes with the Reply's own field numbers (worker.proto). */
nng_msg *replymsg_forward(uint64_t request_id, const uint8_t *fields,
    size_t len);

/* A batch's reply is built in one message, its members' replies appended
 * as they come, then closed into Reply{id: batch_id, batch:
 * Replies{replies...}} (0 or -1 when out of memory). A member's reply
 * that would make the batch's longer than max bytes is replaced by
 * Reply{its id, error{RESOURCE_EXHAUSTED}} naming --max-message (when even
 * that does not fit, it still goes: a few dozen bytes). replymsg_batch_add
 * returns 0, 1 when it replaced the member's reply, or -1 when out of
 * memory (nothing added). */
int replymsg_batch_add(nng_msg *replies, const nng_msg *member, size_t max);
int replymsg_batch_close(nng_msg *replies, uint64_t batch_id);

/* A stream's chunks: each chunk's Value is held with its Chunks.items
 * field's tag and length in front, which replymsg_chunk_head writes into
 * buf (room for REPLYMSG_CHUNK_HEAD bytes) for a Value of len bytes,
 * returning how many. */
#define REPLYMSG_CHUNK_HEAD (1 + WIRE_MAX_VARINT)
size_t replymsg_chunk_head(uint8_t *buf, size_t len);
/* A reply of chunks is m (a replymsg_start) with Reply.chunks = Chunks{
 * first_seq, items..., and with last: end, error (when error is not NULL:
 * an encoded Error of error_len bytes)}. replymsg_chunks_open appends the
 * field's head for items that take items_len bytes as held; the caller
 * appends the held items; replymsg_chunks_close appends the end. The two
 * take the same last, error and error_len. 0, or -1 when out of memory. */
int replymsg_chunks_open(nng_msg *m, uint64_t first_seq, size_t items_len,
    bool last, const uint8_t *error, size_t error_len);
int replymsg_chunks_close(nng_msg *m, bool last, const uint8_t *error,
    size_t error_len);

/* The gild.v1.Code that a Reply's body fields carry (an Error's, or OK for
 * a result), or with error_only, an Error's own fields. */
int replymsg_fields_code(const uint8_t *p, size_t len, bool error_only);

#endif
