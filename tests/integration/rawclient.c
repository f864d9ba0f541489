/* A bare raw REQ client of gild that counts every reply per request id. */
#include "rawclient.h"
#include "harness.h"
#include "wire.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdlib.h>
#include <string.h>

/* Used by one thread at a time: nothing here is locked. */
struct rawclient {
	nng_socket sock;
	size_t max;        /* ids 1..max may be sent */
	uint32_t *replies; /* [id]: replies counted for it; [0] unused */
	rawclient_counts n;
};

/* Long enough for a slow sanitized server, short enough that a send to a
 * server that is gone fails instead of waiting for a redial forever. */
#define SEND_TIMEOUT_MS 10000

int
rawclient_open(rawclient **out, const char *url, size_t max_calls)
{
	rawclient *rc = calloc(1, sizeof(*rc));
	int rv;

	*out = NULL;
	if (rc == NULL || (rc->replies = calloc(
	                       max_calls + 1, sizeof(*rc->replies))) == NULL) {
		free(rc);
		return -1;
	}
	rc->max = max_calls;
	if ((rv = nng_req0_open_raw(&rc->sock)) != 0) {
		free(rc->replies);
		free(rc);
		return rv;
	}
	if ((rv = nng_socket_set_int(
	         rc->sock, NNG_OPT_RECVBUF, RAWCLIENT_RECVBUF)) != 0 ||
	    (rv = nng_socket_set_size(rc->sock, NNG_OPT_RECVMAXSZ, 0)) != 0 ||
	    (rv = nng_socket_set_ms(
	         rc->sock, NNG_OPT_SENDTIMEO, SEND_TIMEOUT_MS)) != 0 ||
	    (rv = nng_dial(rc->sock, url, NULL, 0)) != 0) {
		rawclient_close(rc);
		return rv;
	}
	*out = rc;
	return 0;
}

int
rawclient_close(rawclient *rc)
{
	int rc_close;

	if (rc == NULL)
		return 0;
	rc_close = close_bounded(rc->sock, 5000);
	free(rc->replies);
	free(rc);
	return rc_close;
}

Gild__V1__Value *
rawclient_int(Gild__V1__Value *v, int64_t i)
{
	gild__v1__value__init(v);
	v->kind_case = GILD__V1__VALUE__KIND_INT_VALUE;
	v->int_value = i;
	return v;
}

Gild__V1__Value *
rawclient_str(Gild__V1__Value *v, const char *s)
{
	gild__v1__value__init(v);
	v->kind_case = GILD__V1__VALUE__KIND_STR_VALUE;
	v->str_value.data = (uint8_t *) s;
	v->str_value.len = strlen(s);
	return v;
}

/* Sends the len bytes at body (an encoded Request for id) under id's raw
 * REQ header. Returns 0 or an nng error. */
static int
send_request(rawclient *rc, uint64_t id, const uint8_t *body, size_t len)
{
	nng_msg *m = NULL;
	int rv;

	if ((rv = nng_msg_alloc(&m, len)) != 0)
		return rv;
	memcpy(nng_msg_body(m), body, len);
	/* The raw REQ request id: 32 bits, top bit set (as libgild sends). */
	if ((rv = nng_msg_header_append_u32(
	         m, 0x80000000u | (uint32_t) (id & 0x7fffffffu))) != 0 ||
	    (rv = nng_sendmsg(rc->sock, m, 0)) != 0) {
		nng_msg_free(m);
		return rv;
	}
	rc->n.sent++;
	return 0;
}

int
rawclient_call(rawclient *rc, const char *fn,
    const Gild__V1__Value *const *args, size_t nargs, uint64_t *id)
{
	Gild__V1__Request req = GILD__V1__REQUEST__INIT;
	Gild__V1__Call call = GILD__V1__CALL__INIT;
	uint8_t *buf;
	size_t len;
	int rv;

	if (rc->n.sent >= rc->max)
		return -1;
	call.function = (char *) fn;
	call.n_args = nargs;
	call.args = (Gild__V1__Value **) args;
	req.id = rc->n.sent + 1;
	req.body_case = GILD__V1__REQUEST__BODY_CALL;
	req.call = &call;
	len = gild__v1__request__get_packed_size(&req);
	if ((buf = malloc(len ? len : 1)) == NULL)
		return -1;
	gild__v1__request__pack(&req, buf);
	if ((rv = send_request(rc, req.id, buf, len)) == 0)
		*id = req.id;
	free(buf);
	return rv;
}

int
rawclient_request(rawclient *rc, uint32_t field, const uint8_t *body,
    size_t len, uint64_t *id)
{
	uint8_t hdr[4 * WIRE_MAX_VARINT];
	uint8_t *buf;
	size_t h;
	int rv;

	if (rc->n.sent >= rc->max)
		return -1;
	h = wire_put_tag(hdr, 1, WIRE_VARINT);
	h += wire_put_varint(hdr + h, rc->n.sent + 1);
	h += wire_put_tag(hdr + h, field, WIRE_LEN);
	h += wire_put_varint(hdr + h, len);
	if ((buf = malloc(h + len)) == NULL)
		return -1;
	memcpy(buf, hdr, h);
	if (len > 0)
		memcpy(buf + h, body, len);
	if ((rv = send_request(rc, rc->n.sent + 1, buf, h + len)) == 0)
		*id = rc->n.sent;
	free(buf);
	return rv;
}

/* Counts reply r, which came with header id hdr; returns its id's count. */
static uint64_t
count(rawclient *rc, const Gild__V1__Reply *r, uint32_t hdr)
{
	uint64_t id = r->id;

	if (hdr != (0x80000000u | (uint32_t) (id & 0x7fffffffu)))
		rc->n.misrouted++;
	if (id == 0 || id > rc->n.sent) {
		rc->n.unknown++;
		return 0;
	}
	if (rc->replies[id] == 0)
		rc->n.answered++;
	else
		rc->n.duplicates++;
	return ++rc->replies[id];
}

int
rawclient_recv(
    rawclient *rc, int timeout_ms, Gild__V1__Reply **out, uint64_t *nth)
{
	Gild__V1__Reply *r;
	nng_msg *m = NULL;
	uint32_t hdr = 0;
	int rv;

	*out = NULL;
	*nth = 0;
	if ((rv = nng_socket_set_ms(rc->sock, NNG_OPT_RECVTIMEO, timeout_ms)) !=
	        0 ||
	    (rv = nng_recvmsg(rc->sock, &m, 0)) != 0)
		return rv;
	if (nng_msg_header_len(m) == sizeof(hdr))
		nng_msg_header_trim_u32(m, &hdr);
	r = gild__v1__reply__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	nng_msg_free(m);
	if (r == NULL) {
		rc->n.undecodable++;
		return -1;
	}
	*nth = count(rc, r, hdr);
	*out = r;
	return 0;
}

uint64_t
rawclient_drain(rawclient *rc, int ms)
{
	uint64_t got = 0;

	for (double end = now_s() + ms / 1000.0; now_s() < end;) {
		Gild__V1__Reply *r;
		uint64_t nth;
		int left = (int) ((end - now_s()) * 1000) + 1;
		int rv = rawclient_recv(rc, left, &r, &nth);

		if (rv == 0 || rv == -1)
			got++;
		else if (rv != NNG_ETIMEDOUT)
			break;
		if (r != NULL)
			gild__v1__reply__free_unpacked(r, NULL);
	}
	return got;
}

uint64_t
rawclient_replies(const rawclient *rc, uint64_t id)
{
	return id >= 1 && id <= rc->max ? rc->replies[id] : 0;
}

rawclient_counts
rawclient_counts_now(const rawclient *rc)
{
	return rc->n;
}
