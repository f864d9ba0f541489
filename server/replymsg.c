/* replymsg: the bytes of the front end's replies (replymsg.h). */
#include "replymsg.h"

#include <stdio.h>

#include "fields.h"

nng_msg *
replymsg_start(uint64_t request_id)
{
	uint8_t buf[1 + WIRE_MAX_VARINT];
	size_t n = 0;
	nng_msg *m;

	if (nng_msg_alloc(&m, 0) != 0)
		return NULL;
	if (request_id != 0) {
		n += wire_put_tag(buf, GILD_F_REPLY_ID, WIRE_VARINT);
		n += wire_put_varint(buf + n, request_id);
		if (nng_msg_append(m, buf, n) != 0) {
			nng_msg_free(m);
			return NULL;
		}
	}
	return m;
}

nng_msg *
replymsg_pack(uint64_t request_id, Gild__V1__Reply *r)
{
	nng_msg *m;

	r->id = request_id;
	if (nng_msg_alloc(&m, gild__v1__reply__get_packed_size(r)) != 0)
		return NULL;
	gild__v1__reply__pack(r, nng_msg_body(m));
	return m;
}

nng_msg *
replymsg_forward(uint64_t request_id, const uint8_t *fields, size_t len)
{
	nng_msg *m = replymsg_start(request_id);

	if (m != NULL && nng_msg_append(m, fields, len) != 0) {
		nng_msg_free(m);
		return NULL;
	}
	return m;
}

/* Appends Replies.replies = p[0..len) to replies: 0 or -1 (nothing
 * appended). */
static int
batch_append(nng_msg *replies, const void *p, size_t len)
{
	uint8_t head[1 + WIRE_MAX_VARINT];
	size_t had = nng_msg_len(replies), n;

	n = wire_put_tag(head, GILD_F_REPLIES_REPLIES, WIRE_LEN);
	n += wire_put_varint(head + n, len);
	/* Room doubles: nng 1.5.2 grows a message to the exact size asked,
	 * so appending one member after another copied the whole reply
	 * each time (256 results of 64 KiB took 6 s, now 0.1 s). */
	if (nng_msg_capacity(replies) < had + n + len &&
	    nng_msg_reserve(replies, 2 * (had + n + len)) != 0)
		return -1;
	if (nng_msg_append(replies, head, n) != 0 ||
	    nng_msg_append(replies, p, len) != 0) {
		nng_msg_chop(replies, nng_msg_len(replies) - had);
		return -1;
	}
	return 0;
}

/* The most the head of a batch's reply adds (Reply.id, Reply.batch's tag
 * and length). */
#define BATCH_HEAD (2 * (1 + WIRE_MAX_VARINT))

int
replymsg_batch_add(nng_msg *replies, const nng_msg *member, size_t max)
{
	size_t len = nng_msg_len(member);
	const uint8_t *p = nng_msg_body((nng_msg *) member);
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Error e = GILD__V1__ERROR__INIT;
	uint8_t small[320];
	char msg[192];
	wire_field id;

	if (nng_msg_len(replies) + BATCH_HEAD + 1 + WIRE_MAX_VARINT + len <=
	    max)
		return batch_append(replies, p, len);
	snprintf(msg, sizeof(msg),
	    "this reply (%zu bytes) would make its batch's reply longer than "
	    "the server's --max-message of %zu bytes", len, max);
	if (wire_find(p, len, GILD_F_REPLY_ID, &id) == 1 &&
	    id.type == WIRE_VARINT)
		r.id = id.value;
	e.code = GILD__V1__CODE__RESOURCE_EXHAUSTED;
	e.message = msg;
	r.body_case = GILD__V1__REPLY__BODY_ERROR;
	r.error = &e;
	len = gild__v1__reply__pack(&r, small);
	return batch_append(replies, small, len) == 0 ? 1 : -1;
}

int
replymsg_batch_close(nng_msg *replies, uint64_t batch_id)
{
	uint8_t head[BATCH_HEAD];
	size_t n = 0;

	n += wire_put_tag(head + n, GILD_F_REPLY_ID, WIRE_VARINT);
	n += wire_put_varint(head + n, batch_id);
	n += wire_put_tag(head + n, GILD_F_REPLY_BATCH, WIRE_LEN);
	n += wire_put_varint(head + n, nng_msg_len(replies));
	return nng_msg_insert(replies, head, n) == 0 ? 0 : -1;
}

size_t
replymsg_chunk_head(uint8_t *buf, size_t len)
{
	size_t n = wire_put_tag(buf, GILD_F_CHUNKS_ITEMS, WIRE_LEN);

	return n + wire_put_varint(buf + n, len);
}

/* Writes into buf (room for 2 * (1 + WIRE_MAX_VARINT) bytes) the fields of
 * a Chunks that follow its items, up to the Error's bytes; returns how
 * many bytes it wrote. */
static size_t
chunks_tail(uint8_t *buf, bool last, const uint8_t *error, size_t error_len)
{
	size_t n = 0;

	if (!last)
		return 0;
	n += wire_put_tag(buf + n, GILD_F_CHUNKS_END, WIRE_VARINT);
	n += wire_put_varint(buf + n, 1);
	if (error != NULL) {
		n += wire_put_tag(buf + n, GILD_F_CHUNKS_ERROR, WIRE_LEN);
		n += wire_put_varint(buf + n, error_len);
	}
	return n;
}

int
replymsg_chunks_open(nng_msg *m, uint64_t first_seq, size_t items_len,
    bool last, const uint8_t *error, size_t error_len)
{
	uint8_t seq[1 + WIRE_MAX_VARINT], head[1 + WIRE_MAX_VARINT];
	uint8_t tail[2 * (1 + WIRE_MAX_VARINT)];
	size_t s, n, body;

	s = wire_put_tag(seq, GILD_F_CHUNKS_FIRST_SEQ, WIRE_VARINT);
	s += wire_put_varint(seq + s, first_seq);
	body = s + items_len + chunks_tail(tail, last, error, error_len) +
	       (last && error != NULL ? error_len : 0);
	n = wire_put_tag(head, GILD_F_REPLY_CHUNKS, WIRE_LEN);
	n += wire_put_varint(head + n, body);
	if (nng_msg_append(m, head, n) != 0 || nng_msg_append(m, seq, s) != 0)
		return -1;
	return 0;
}

int
replymsg_chunks_close(nng_msg *m, bool last, const uint8_t *error,
    size_t error_len)
{
	uint8_t tail[2 * (1 + WIRE_MAX_VARINT)];
	size_t n = chunks_tail(tail, last, error, error_len);

	if (nng_msg_append(m, tail, n) != 0)
		return -1;
	if (last && error != NULL && nng_msg_append(m, error, error_len) != 0)
		return -1;
	return 0;
}

int
replymsg_fields_code(const uint8_t *p, size_t len, bool error_only)
{
	wire_field e, c;

	if (!error_only) {
		if (wire_find(p, len, GILD_F_REPLY_ERROR, &e) != 1 ||
		    e.type != WIRE_LEN)
			return GILD__V1__CODE__OK;
		p = e.data;
		len = e.len;
	}
	if (wire_find(p, len, GILD_F_ERROR_CODE, &c) == 1 &&
	    c.type == WIRE_VARINT)
		return (int) c.value;
	return GILD__V1__CODE__UNKNOWN;
}
