/* Tests of proto/frame.c: length-prefixed framing over a socketpair. */
#include "frame.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "test_main.h"

static void
test_header_roundtrip(void)
{
	static const size_t lens[] = {0, 1, 255, 256, 65535, 65536, 1u << 24,
	    (size_t) 0x7fffffff};
	uint8_t hdr[FRAME_HEADER_LEN];

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		frame_header_encode(hdr, lens[i]);
		CU_ASSERT_EQUAL(frame_header_decode(hdr), lens[i]);
	}
	frame_header_encode(hdr, 0x01020304);
	CU_ASSERT_EQUAL(hdr[0], 0x04); /* little-endian on the wire */
	CU_ASSERT_EQUAL(hdr[3], 0x01);
}

static void
test_roundtrip_small_and_empty(void)
{
	int sv[2];
	uint8_t *buf;
	size_t len;

	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CU_ASSERT_EQUAL(frame_write(sv[0], "hello", 5), 0);
	CU_ASSERT_EQUAL(frame_write(sv[0], "", 0), 0);
	CU_ASSERT_EQUAL(frame_read(sv[1], &buf, &len, 1024), 0);
	CU_ASSERT_EQUAL(len, 5);
	CU_ASSERT(memcmp(buf, "hello", 5) == 0);
	free(buf);
	CU_ASSERT_EQUAL(frame_read(sv[1], &buf, &len, 1024), 0);
	CU_ASSERT_EQUAL(len, 0);
	free(buf);
	close(sv[0]);
	/* A clean EOF between frames is not an error in the stream. */
	CU_ASSERT_EQUAL(frame_read(sv[1], &buf, &len, 1024), -ECONNRESET);
	close(sv[1]);
}

struct big {
	int fd;
	uint8_t *data;
	size_t len;
};

static void *
writer(void *arg)
{
	struct big *b = arg;
	frame_write(b->fd, b->data, b->len);
	return NULL;
}

static void
test_large_frame_through_small_buffer(void)
{
	struct big b = {.len = 8u << 20};
	pthread_t t;
	int sv[2];
	uint8_t *buf;
	size_t len;

	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	b.fd = sv[0];
	b.data = malloc(b.len);
	for (size_t i = 0; i < b.len; i++)
		b.data[i] = (uint8_t) (i * 31 + 7);
	/* 8 MiB cannot fit the socket buffer: short writes and reads. */
	pthread_create(&t, NULL, writer, &b);
	CU_ASSERT_EQUAL(frame_read(sv[1], &buf, &len, b.len), 0);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(len, b.len);
	CU_ASSERT(memcmp(buf, b.data, b.len) == 0);
	free(buf);
	free(b.data);
	close(sv[0]);
	close(sv[1]);
}

static void
test_errors(void)
{
	int sv[2];
	uint8_t hdr[FRAME_HEADER_LEN], *buf = NULL;
	size_t len;

	/* Over the reader's limit. */
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CU_ASSERT_EQUAL(frame_write(sv[0], "0123456789", 10), 0);
	CU_ASSERT_EQUAL(frame_read(sv[1], &buf, &len, 9), -EPROTO);
	close(sv[0]);
	close(sv[1]);

	/* EOF in the middle of a payload. */
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	frame_header_encode(hdr, 100);
	CU_ASSERT_EQUAL(write(sv[0], hdr, sizeof(hdr)), (ssize_t) sizeof(hdr));
	CU_ASSERT_EQUAL(write(sv[0], "abc", 3), 3);
	close(sv[0]);
	CU_ASSERT_EQUAL(frame_read(sv[1], &buf, &len, 1000), -EPROTO);
	close(sv[1]);

	/* EOF in the middle of a header. */
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CU_ASSERT_EQUAL(write(sv[0], hdr, 2), 2);
	close(sv[0]);
	CU_ASSERT_EQUAL(frame_read(sv[1], &buf, &len, 1000), -EPROTO);
	close(sv[1]);

	/* Writing to a closed peer reports EPIPE, not a signal. */
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	close(sv[1]);
	signal(SIGPIPE, SIG_IGN);
	CU_ASSERT_EQUAL(frame_write(sv[0], "x", 1), -EPIPE);
	close(sv[0]);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("frame", NULL, NULL);
	CU_add_test(s, "header round trip", test_header_roundtrip);
	CU_add_test(s, "small and empty frames", test_roundtrip_small_and_empty);
	CU_add_test(s, "8 MiB frame", test_large_frame_through_small_buffer);
	CU_add_test(s, "errors", test_errors);
	return test_run_all();
}
