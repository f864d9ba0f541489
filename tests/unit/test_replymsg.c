/* Tests of server/replymsg.c: every Reply the front end builds, read back
 * by protobuf-c (what clients decode them with). */
#include "server/replymsg.h"

#include <CUnit/Basic.h>
#include <string.h>
#include "test_main.h"

static Gild__V1__Reply *
unpack(nng_msg *m)
{
	Gild__V1__Reply *r = gild__v1__reply__unpack(NULL, nng_msg_len(m),
	    nng_msg_body(m));

	CU_ASSERT_PTR_NOT_NULL(r);
	nng_msg_free(m);
	return r;
}

/* A packed Error reply, and a worker's result fields forwarded as they
 * came; id 0 is left out. */
static void
test_pack_and_forward(void)
{
	Gild__V1__Reply r = GILD__V1__REPLY__INIT, *got;
	Gild__V1__Error e = GILD__V1__ERROR__INIT;
	Gild__V1__Value v = GILD__V1__VALUE__INIT;
	uint8_t fields[64];
	size_t n;

	e.code = GILD__V1__CODE__NOT_FOUND;
	e.message = "nope";
	r.body_case = GILD__V1__REPLY__BODY_ERROR;
	r.error = &e;
	got = unpack(replymsg_pack(7, &r));
	CU_ASSERT_EQUAL(got->id, 7);
	CU_ASSERT_EQUAL(got->error->code, GILD__V1__CODE__NOT_FOUND);
	gild__v1__reply__free_unpacked(got, NULL);

	/* Reply{result: 42} without its id: the fields a worker sends. */
	v.kind_case = GILD__V1__VALUE__KIND_INT_VALUE;
	v.int_value = 42;
	r.body_case = GILD__V1__REPLY__BODY_RESULT;
	r.result = &v;
	r.id = 0;
	n = gild__v1__reply__pack(&r, fields);
	CU_ASSERT_EQUAL(replymsg_fields_code(fields, n, false),
	    GILD__V1__CODE__OK);
	got = unpack(replymsg_forward(9, fields, n));
	CU_ASSERT_EQUAL(got->id, 9);
	CU_ASSERT_EQUAL(got->result->int_value, 42);
	gild__v1__reply__free_unpacked(got, NULL);
	got = unpack(replymsg_forward(0, fields, n));
	CU_ASSERT_EQUAL(got->id, 0);
	gild__v1__reply__free_unpacked(got, NULL);
}

/* A batch's members' replies, in the order added, an empty one too. */
static void
test_batch(void)
{
	nng_msg *all, *one;
	Gild__V1__Reply *got;

	CU_ASSERT_EQUAL_FATAL(nng_msg_alloc(&all, 0), 0);
	for (uint64_t id = 1; id <= 3; id++) {
		one = replymsg_start(id == 2 ? 0 : id);
		CU_ASSERT_EQUAL(replymsg_batch_add(all, one, 1 << 20), 0);
		nng_msg_free(one);
	}
	CU_ASSERT_EQUAL(replymsg_batch_close(all, 77), 0);
	got = unpack(all);
	CU_ASSERT_EQUAL(got->id, 77);
	CU_ASSERT_EQUAL_FATAL(got->body_case, GILD__V1__REPLY__BODY_BATCH);
	CU_ASSERT_EQUAL_FATAL(got->batch->n_replies, 3);
	CU_ASSERT_EQUAL(got->batch->replies[0]->id, 1);
	CU_ASSERT_EQUAL(got->batch->replies[1]->id, 0);
	CU_ASSERT_EQUAL(got->batch->replies[2]->id, 3);
	gild__v1__reply__free_unpacked(got, NULL);
}

/* A member's reply that would make the batch's too long is answered
 * RESOURCE_EXHAUSTED instead; the others keep theirs. */
static void
test_batch_capped(void)
{
	Gild__V1__Reply *got;
	nng_msg *all, *one;
	uint8_t big[600] = {0};

	CU_ASSERT_EQUAL_FATAL(nng_msg_alloc(&all, 0), 0);
	for (uint64_t id = 1; id <= 3; id++) {
		one = replymsg_start(id);
		if (id == 2) {
			/* 600 bytes: a field protobuf-c skips (15), its tag
			 * and length taking 3. */
			size_t n = wire_put_tag(big, 15, WIRE_LEN);
			wire_put_varint(big + n, sizeof(big) - 3);
			CU_ASSERT_EQUAL(nng_msg_append(one, big, sizeof(big)), 0);
		}
		CU_ASSERT_EQUAL(replymsg_batch_add(all, one, 500),
		    id == 2 ? 1 : 0);
		nng_msg_free(one);
	}
	CU_ASSERT(nng_msg_len(all) <= 500);
	CU_ASSERT_EQUAL(replymsg_batch_close(all, 8), 0);
	got = unpack(all);
	CU_ASSERT_EQUAL_FATAL(got->batch->n_replies, 3);
	CU_ASSERT_EQUAL(got->batch->replies[1]->id, 2);
	CU_ASSERT_EQUAL_FATAL(got->batch->replies[1]->body_case,
	    GILD__V1__REPLY__BODY_ERROR);
	CU_ASSERT_EQUAL(got->batch->replies[1]->error->code,
	    GILD__V1__CODE__RESOURCE_EXHAUSTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(got->batch->replies[1]->error->message,
	    "--max-message"));
	CU_ASSERT_EQUAL(got->batch->replies[2]->id, 3);
	gild__v1__reply__free_unpacked(got, NULL);
}

/* Chunks: items as held, the end and an Error; and a middle batch with
 * neither. */
static void
test_chunks(void)
{
	Gild__V1__Value v = GILD__V1__VALUE__INIT;
	Gild__V1__Error e = GILD__V1__ERROR__INIT;
	uint8_t item[64], err[64];
	size_t n, elen;
	Gild__V1__Reply *got;
	nng_msg *m;

	v.kind_case = GILD__V1__VALUE__KIND_INT_VALUE;
	v.int_value = -3;
	n = replymsg_chunk_head(item, gild__v1__value__get_packed_size(&v));
	n += gild__v1__value__pack(&v, item + n);
	e.code = GILD__V1__CODE__INTERNAL;
	e.message = "boom";
	elen = gild__v1__error__pack(&e, err);
	for (int last = 0; last <= 1; last++) {
		m = replymsg_start(5);
		CU_ASSERT_EQUAL(replymsg_chunks_open(m, 300, 2 * n, last, err,
		    elen), 0);
		CU_ASSERT_EQUAL(nng_msg_append(m, item, n), 0);
		CU_ASSERT_EQUAL(nng_msg_append(m, item, n), 0);
		CU_ASSERT_EQUAL(replymsg_chunks_close(m, last, err, elen), 0);
		got = unpack(m);
		CU_ASSERT_EQUAL_FATAL(got->body_case,
		    GILD__V1__REPLY__BODY_CHUNKS);
		CU_ASSERT_EQUAL(got->chunks->first_seq, 300);
		CU_ASSERT_EQUAL(got->chunks->n_items, 2);
		CU_ASSERT_EQUAL(got->chunks->items[1]->int_value, -3);
		CU_ASSERT_EQUAL(got->chunks->end, last);
		CU_ASSERT_EQUAL(got->chunks->error != NULL, last);
		if (last)
			CU_ASSERT_STRING_EQUAL(got->chunks->error->message,
			    "boom");
		gild__v1__reply__free_unpacked(got, NULL);
	}
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("replymsg", NULL, NULL);
	CU_add_test(s, "packed and forwarded replies", test_pack_and_forward);
	CU_add_test(s, "a batch's replies", test_batch);
	CU_add_test(s, "a batch's reply within --max-message",
	    test_batch_capped);
	CU_add_test(s, "a stream's chunks", test_chunks);
	return test_run_all();
}
