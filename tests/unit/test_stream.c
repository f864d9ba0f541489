/* Tests of server/stream.c: a stream's chunk buffer and the Reply.chunks
 * field it builds. */
#include "server/stream.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>
#include "gild_limits.h"
#include "test_main.h"
#include "wire.h"

/* A worker Chunk message {seq, value: a Value's bytes v}. */
static size_t
chunk(uint8_t *buf, uint64_t seq, const char *v)
{
	size_t n = 0;

	if (seq != 0) {
		n += wire_put_tag(buf + n, 1, WIRE_VARINT);
		n += wire_put_varint(buf + n, seq);
	}
	n += wire_put_tag(buf + n, 2, WIRE_LEN);
	n += wire_put_varint(buf + n, strlen(v));
	memcpy(buf + n, v, strlen(v));
	return n + strlen(v);
}

/* What a Reply.chunks field in m says: first_seq, the items (their
 * values' bytes, concatenated), end and error. */
typedef struct taken {
	uint64_t first_seq;
	char items[64];
	int nitems;
	bool end;
	char error[32];
} taken;

static void
parse_taken(nng_msg *m, taken *t)
{
	const uint8_t *p = nng_msg_body(m), *end = p + nng_msg_len(m);
	wire_field f, c;

	memset(t, 0, sizeof(*t));
	CU_ASSERT_EQUAL_FATAL(wire_next(&p, end, &f), 1);
	CU_ASSERT_EQUAL(f.number, 6); /* Reply.chunks */
	CU_ASSERT_EQUAL(p, end);      /* and nothing else */
	p = f.data;
	end = f.data + f.len;
	while (wire_next(&p, end, &c) == 1) {
		if (c.number == 1)
			t->first_seq = c.value;
		else if (c.number == 2) {
			/* What fits of the values (test_bytes' do not). */
			size_t room = sizeof(t->items) - 1 - strlen(t->items);
			strncat(t->items, (const char *) c.data,
			    c.len < room ? c.len : room);
			t->nitems++;
		} else if (c.number == 3)
			t->end = c.value != 0;
		else if (c.number == 4)
			memcpy(t->error, c.data, c.len < 31 ? c.len : 31);
	}
}

/* Taken at most max (0: all) and within max_bytes (test_bytes sets it). */
static size_t max_bytes = 1 << 20;

static void
take(stream *st, uint32_t max, uint32_t want, bool want_end, taken *t)
{
	nng_msg *m;
	uint32_t k;
	bool end;

	CU_ASSERT_EQUAL_FATAL(nng_msg_alloc(&m, 0), 0);
	CU_ASSERT_EQUAL(stream_take(st, m, max, max_bytes, &k, &end), 0);
	CU_ASSERT_EQUAL(k, want);
	CU_ASSERT_EQUAL(end, want_end);
	parse_taken(m, t);
	nng_msg_free(m);
}

/* Chunks in order, up to the window; taken out in order, at most max at a
 * time; the end goes with the last ones. */
static void
test_window_and_order(void)
{
	stream *list = NULL, *st;
	uint8_t buf[64];
	taken t;

	st = stream_new(&list, 7, 100, 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_PTR_EQUAL(stream_find(list, 7, 100), st);
	CU_ASSERT_PTR_NULL(stream_find(list, 8, 100));
	CU_ASSERT_FALSE(stream_ready(st));
	CU_ASSERT_EQUAL(stream_push(st, buf, chunk(buf, 1, "b")), -EPROTO);
	CU_ASSERT_EQUAL(stream_push(st, buf, chunk(buf, 0, "a")), 0);
	CU_ASSERT_EQUAL(stream_push(st, buf, chunk(buf, 1, "b")), 0);
	CU_ASSERT_EQUAL(stream_push(st, buf, chunk(buf, 2, "c")), 0);
	/* The window (3) is full: a fourth is past the worker's credit. */
	CU_ASSERT_EQUAL(stream_push(st, buf, chunk(buf, 3, "d")), -EPROTO);
	CU_ASSERT_TRUE(stream_ready(st));
	take(st, 2, 2, false, &t);
	CU_ASSERT_EQUAL(t.first_seq, 0);
	CU_ASSERT_STRING_EQUAL(t.items, "ab");
	CU_ASSERT_EQUAL(stream_push(st, buf, chunk(buf, 3, "d")), 0);
	stream_end(st, (const uint8_t *) "oops", 4);
	CU_ASSERT_EQUAL(stream_push(st, buf, chunk(buf, 4, "e")), -EPROTO);
	take(st, 0, 2, true, &t);
	CU_ASSERT_EQUAL(t.first_seq, 2);
	CU_ASSERT_STRING_EQUAL(t.items, "cd");
	CU_ASSERT_TRUE(t.end);
	CU_ASSERT_STRING_EQUAL(t.error, "oops");
	stream_free(&list, st);
	CU_ASSERT_PTR_NULL(list);
}

/* Dropping what is held (a cancel) leaves nothing to take; a stream
 * freed with chunks held frees them; several streams in one list. */
static void
test_drop_and_free(void)
{
	stream *list = NULL, *a, *b;
	uint8_t buf[64];
	taken t;

	a = stream_new(&list, 1, 1, 0);
	b = stream_new(&list, 1, 2, 100000);
	CU_ASSERT_EQUAL(a->window, GILD_STREAM_WINDOW_DEFAULT);
	CU_ASSERT_EQUAL(b->window, GILD_STREAM_WINDOW_MAX);
	CU_ASSERT_EQUAL(stream_push(a, buf, chunk(buf, 0, "x")), 0);
	CU_ASSERT_EQUAL(stream_push(b, buf, chunk(buf, 0, "y")), 0);
	stream_end(a, NULL, 0);
	stream_drop(a);
	CU_ASSERT_FALSE(stream_ready(a));
	stream_end(a, NULL, 0);
	take(a, 0, 0, true, &t);
	CU_ASSERT_EQUAL(t.nitems, 0);
	CU_ASSERT_STRING_EQUAL(t.error, "");
	stream_free(&list, a);
	CU_ASSERT_PTR_EQUAL(list, b);
	stream_free(&list, b); /* with "y" held */
	CU_ASSERT_PTR_NULL(list);
}

/* A ring costs nothing until chunks come, and grows (past a wrapped
 * head) keeping their order, up to the window. */
static void
test_ring_grows(void)
{
	stream *list = NULL, *st;
	uint8_t buf[64];
	char v[2] = {0};
	uint64_t seq = 0;
	taken t;

	st = stream_new(&list, 1, 1, 40);
	CU_ASSERT_EQUAL(st->cap, 0);
	CU_ASSERT_PTR_NULL(st->ring);
	for (int i = 0; i < 6; i++, seq++) {
		v[0] = (char) ('a' + seq);
		CU_ASSERT_EQUAL(stream_push(st, buf, chunk(buf, seq, v)), 0);
	}
	take(st, 5, 5, false, &t); /* head moves to 5 of 8 */
	CU_ASSERT_STRING_EQUAL(t.items, "abcde");
	for (int i = 0; i < 39; i++, seq++) {
		v[0] = (char) ('a' + seq % 26);
		CU_ASSERT_EQUAL(stream_push(st, buf, chunk(buf, seq, v)), 0);
	}
	CU_ASSERT_EQUAL(st->cap, 40); /* 8, 16, 32, then the window */
	v[0] = 'x';
	CU_ASSERT_EQUAL(stream_push(st, buf, chunk(buf, seq, v)), -EPROTO);
	take(st, 0, 40, false, &t);
	CU_ASSERT_EQUAL(t.first_seq, 5);
	CU_ASSERT_STRING_EQUAL(t.items,
	    "fghijklmnopqrstuvwxyzabcdefghijklmnopqrs");
	stream_free(&list, st);
}

/* A reply of chunks stays within --max-message: fewer chunks are taken,
 * but always at least one. */
static void
test_bytes(void)
{
	stream *list = NULL, *st;
	uint8_t buf[400];
	char v[101];
	taken t;

	memset(v, 'v', 100);
	v[100] = 0;
	st = stream_new(&list, 1, 1, 10);
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(stream_push(st, buf, chunk(buf, i, v)), 0);
	max_bytes = 256 + 250; /* room for two of ~102 bytes */
	take(st, 0, 2, false, &t);
	CU_ASSERT_EQUAL(t.first_seq, 0);
	max_bytes = 10; /* no room at all: one still goes */
	take(st, 0, 1, false, &t);
	CU_ASSERT_EQUAL(t.first_seq, 2);
	max_bytes = 1 << 20;
	stream_end(st, NULL, 0);
	take(st, 0, 2, true, &t);
	stream_free(&list, st);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("stream", NULL, NULL);
	CU_add_test(s, "window, order, end", test_window_and_order);
	CU_add_test(s, "drop and free", test_drop_and_free);
	CU_add_test(s, "the ring grows as chunks come", test_ring_grows);
	CU_add_test(s, "a reply within --max-message", test_bytes);
	return test_run_all();
}
