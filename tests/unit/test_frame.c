/* Tests of proto/frame.c: length-prefixed framing over a socketpair. */
#include "frame.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
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

/* A data socketpair (d) and its descriptor channel (c). */
static void
open_pair(int d[2], int c[2])
{
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, d) == 0);
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, c) == 0);
}

static void
close_pair(int d[2], int c[2])
{
	close(d[0]);
	close(d[1]);
	close(c[0]);
	close(c[1]);
}

/* Bytes waiting to be read on fd. */
static int
waiting(int fd)
{
	int n = -1;

	ioctl(fd, FIONREAD, &n);
	return n;
}

typedef struct shm_write {
	int fd, chan;
	const uint8_t *p;
	size_t n;
	int rc;
} shm_write;

static void *
shm_writer(void *arg)
{
	shm_write *w = arg;

	w->rc = frame_write_shm(w->fd, w->chan, w->p, w->n);
	return NULL;
}

/* Small frames cross the socket; large ones a memfd, with only their
 * header on the socket (so even 32 MiB is written with nobody reading). */
static void
test_shm_roundtrip(void)
{
	static const size_t sizes[] = {100, FRAME_SHM_MIN - 1, FRAME_SHM_MIN,
	    32u << 20};
	int d[2], c[2];

	open_pair(d, c);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k], len = 0;
		uint8_t *p = malloc(n), *got = NULL;
		shm_write w = {d[0], c[0], p, n, -1};
		pthread_t t;
		bool same;

		for (size_t i = 0; i < n; i++)
			p[i] = (uint8_t) (i * 13 + k);
		if (n >= FRAME_SHM_MIN) {
			/* Nothing to wait for: only a header goes out. */
			shm_writer(&w);
			CU_ASSERT_EQUAL(w.rc, 0);
			CU_ASSERT_EQUAL(waiting(d[1]), FRAME_HEADER_LEN);
		} else {
			/* May not fit the socket: written while read. */
			CU_ASSERT_FATAL(pthread_create(&t, NULL, shm_writer,
					    &w) == 0);
		}
		CU_ASSERT_EQUAL_FATAL(frame_read_shm(d[1], c[1], &got, &len,
					  FRAME_MAX_PAYLOAD), 0);
		if (n < FRAME_SHM_MIN) {
			pthread_join(t, NULL);
			CU_ASSERT_EQUAL(w.rc, 0);
		}
		same = len == n && memcmp(got, p, n) == 0;
		CU_ASSERT(same);
		frame_free(got);
		free(p);
	}
	/* Nothing left over on either socket. */
	CU_ASSERT_EQUAL(waiting(d[1]), 0);
	CU_ASSERT_EQUAL(recv(c[1], &(char){0}, 1, MSG_DONTWAIT), -1);
	close_pair(d, c);
}

/* A payload built in a frame_alloc buffer goes out as that very memfd
 * (large) or through the socket (small), and frame_grow keeps its bytes. */
static void
test_shm_alloc_send(void)
{
	static const size_t sizes[] = {1000, FRAME_SHM_MIN, 3u << 20};
	int d[2], c[2];

	open_pair(d, c);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k], len = 0;
		uint8_t *p = frame_alloc(n), *got = NULL;
		bool ok = true;

		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		for (size_t i = 0; i < n; i++)
			p[i] = (uint8_t) (i * 3 + k);
		CU_ASSERT_PTR_NOT_NULL_FATAL(p = frame_grow(p, n, n + 1));
		p[n] = 0xee;
		CU_ASSERT_EQUAL(frame_send(d[0], c[0], p, n + 1), 0);
		CU_ASSERT_EQUAL(waiting(d[1]), (int) (n + 1 < FRAME_SHM_MIN
			? FRAME_HEADER_LEN + n + 1 : FRAME_HEADER_LEN));
		CU_ASSERT_EQUAL_FATAL(frame_read_shm(d[1], c[1], &got, &len,
					  FRAME_MAX_PAYLOAD), 0);
		CU_ASSERT_EQUAL_FATAL(len, n + 1);
		for (size_t i = 0; ok && i < n; i++)
			ok = got[i] == (uint8_t) (i * 3 + k);
		CU_ASSERT(ok);
		CU_ASSERT_EQUAL(got[n], 0xee);
		frame_free(got);
	}
	close_pair(d, c);
}

/* A memfd of n bytes with byte i = i, with these seals. */
static int
memfd_of(size_t n, int seals)
{
	int fd = memfd_create("test", MFD_ALLOW_SEALING);

	for (size_t i = 0; i < n; i++)
		CU_ASSERT_EQUAL(write(fd, &(uint8_t){(uint8_t) i}, 1), 1);
	if (seals != 0)
		CU_ASSERT_EQUAL(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

/* A receiver maps only what cannot fault or change under it: sealed
 * against shrinking and writing, and as long as the header says. */
static void
test_shm_map_checks(void)
{
	const int both = F_SEAL_SHRINK | F_SEAL_WRITE;
	const uint8_t *p = NULL;
	int pipefd[2];

	CU_ASSERT_EQUAL(frame_shm_map(memfd_of(100, 0), 100, &p), -EPROTO);
	CU_ASSERT_EQUAL(frame_shm_map(memfd_of(100, F_SEAL_SHRINK), 100, &p),
	    -EPROTO);
	CU_ASSERT_EQUAL(frame_shm_map(memfd_of(100, F_SEAL_WRITE), 100, &p),
	    -EPROTO);
	CU_ASSERT_EQUAL(frame_shm_map(memfd_of(100, both), 101, &p), -EPROTO);
	/* Not a memfd at all. */
	CU_ASSERT_FATAL(pipe(pipefd) == 0);
	CU_ASSERT_EQUAL(frame_shm_map(pipefd[0], 1, &p), -EPROTO);
	close(pipefd[1]);
	CU_ASSERT_EQUAL_FATAL(frame_shm_map(memfd_of(100, both), 100, &p), 0);
	CU_ASSERT_EQUAL(p[0], 0);
	CU_ASSERT_EQUAL(p[99], 99);
	frame_shm_unmap(p, 100);
}

/* Broken peers: a shared-memory header whose descriptor never comes (the
 * channel closed), and one sent to a reader without a channel. */
static void
test_shm_errors(void)
{
	uint8_t hdr[FRAME_HEADER_LEN], *buf = NULL;
	size_t len = 0;
	int d[2], c[2];

	open_pair(d, c);
	frame_header_encode_shm(hdr, 1000);
	CU_ASSERT_EQUAL(write(d[0], hdr, sizeof(hdr)), (ssize_t) sizeof(hdr));
	close(c[0]);
	c[0] = -1;
	CU_ASSERT_EQUAL(frame_read_shm(d[1], c[1], &buf, &len, 1u << 20),
	    -EPROTO);
	/* Without a channel: as good as an oversized frame. */
	CU_ASSERT_EQUAL(write(d[0], hdr, sizeof(hdr)), (ssize_t) sizeof(hdr));
	CU_ASSERT_EQUAL(frame_read_shm(d[1], -1, &buf, &len, 1u << 20),
	    -EPROTO);
	close_pair(d, c);
	frame_free(NULL);
}

/* The buffered reader: the frames that came together are taken from one
 * read, in order; a frame larger than its buffer, and one in shared
 * memory, come whole; a partial frame waits for its rest; EOF ends it
 * cleanly between frames and as an error inside one. */
static void
test_reader(void)
{
	const size_t big = FRAME_READER_BUF * 3 + 5;
	uint8_t *p = malloc(FRAME_SHM_MIN), *got = NULL, hdr[FRAME_HEADER_LEN];
	frame_reader r;
	size_t len = 0;
	int d[2], c[2];
	bool same;

	open_pair(d, c);
	CU_ASSERT_EQUAL_FATAL(frame_reader_init(&r, d[1], c[1],
				  FRAME_MAX_PAYLOAD), 0);
	for (size_t i = 0; i < FRAME_SHM_MIN; i++)
		p[i] = (uint8_t) (i * 7 + 1);
	/* Nothing yet. */
	CU_ASSERT_EQUAL(frame_reader_next(&r, &got, &len), -EAGAIN);
	CU_ASSERT_EQUAL(frame_reader_fill(&r, 1), -EAGAIN);
	/* Three small frames, one read. */
	CU_ASSERT_EQUAL(frame_write(d[0], "one", 3), 0);
	CU_ASSERT_EQUAL(frame_write(d[0], "", 0), 0);
	CU_ASSERT_EQUAL(frame_write(d[0], "three", 5), 0);
	CU_ASSERT_EQUAL(frame_reader_fill(&r, 1), 0);
	CU_ASSERT_FALSE(r.more);
	CU_ASSERT_EQUAL_FATAL(frame_reader_next(&r, &got, &len), 0);
	CU_ASSERT(len == 3 && memcmp(got, "one", 3) == 0);
	frame_free(got);
	CU_ASSERT_EQUAL_FATAL(frame_reader_next(&r, &got, &len), 0);
	CU_ASSERT_EQUAL(len, 0);
	frame_free(got);
	CU_ASSERT_EQUAL_FATAL(frame_reader_next(&r, &got, &len), 0);
	CU_ASSERT(len == 5 && memcmp(got, "three", 5) == 0);
	frame_free(got);
	CU_ASSERT_EQUAL(frame_reader_next(&r, &got, &len), -EAGAIN);
	/* A partial frame waits in the buffer for the rest. */
	frame_header_encode(hdr, 4);
	CU_ASSERT_EQUAL(write(d[0], hdr, sizeof(hdr)), (ssize_t) sizeof(hdr));
	CU_ASSERT_EQUAL(write(d[0], "ab", 2), 2);
	CU_ASSERT_EQUAL(frame_reader_fill(&r, 1), 0);
	CU_ASSERT_EQUAL(frame_reader_next(&r, &got, &len), -EAGAIN);
	CU_ASSERT_EQUAL(write(d[0], "cd", 2), 2);
	CU_ASSERT_EQUAL(frame_reader_fill(&r, 1), 0);
	CU_ASSERT_EQUAL_FATAL(frame_reader_next(&r, &got, &len), 0);
	CU_ASSERT(len == 4 && memcmp(got, "abcd", 4) == 0);
	frame_free(got);
	/* Larger than the buffer (written while read), then one in shared
	 * memory behind it. */
	{
		shm_write w = {d[0], c[0], p, big, -1};
		pthread_t t;

		CU_ASSERT_FATAL(pthread_create(&t, NULL, shm_writer, &w) == 0);
		CU_ASSERT_EQUAL(frame_reader_fill(&r, 0), 0);
		CU_ASSERT_EQUAL_FATAL(frame_reader_next(&r, &got, &len), 0);
		pthread_join(t, NULL);
		same = len == big && memcmp(got, p, big) == 0;
		CU_ASSERT(same);
		frame_free(got);
	}
	CU_ASSERT_EQUAL(frame_write_shm(d[0], c[0], p, FRAME_SHM_MIN), 0);
	CU_ASSERT_EQUAL(frame_reader_fill(&r, 1), 0);
	CU_ASSERT_EQUAL_FATAL(frame_reader_next(&r, &got, &len), 0);
	same = len == FRAME_SHM_MIN && memcmp(got, p, FRAME_SHM_MIN) == 0;
	CU_ASSERT(same);
	frame_free(got);
	/* EOF inside a frame, then a clean one on a new pair. */
	CU_ASSERT_EQUAL(write(d[0], hdr, 2), 2);
	close(d[0]);
	d[0] = -1;
	CU_ASSERT_EQUAL(frame_reader_fill(&r, 1), 0);
	CU_ASSERT_EQUAL(frame_reader_next(&r, &got, &len), -EAGAIN);
	CU_ASSERT_EQUAL(frame_reader_fill(&r, 1), -EPROTO);
	frame_reader_fini(&r);
	close_pair(d, c);
	open_pair(d, c);
	CU_ASSERT_EQUAL_FATAL(frame_reader_init(&r, d[1], -1, 10), 0);
	CU_ASSERT_EQUAL(frame_write(d[0], "0123456789a", 11), 0);
	CU_ASSERT_EQUAL(frame_reader_fill(&r, 1), 0);
	CU_ASSERT_EQUAL(frame_reader_next(&r, &got, &len), -EPROTO);
	frame_reader_fini(&r);
	close(d[0]);
	d[0] = -1;
	CU_ASSERT_EQUAL_FATAL(frame_reader_init(&r, d[1], -1, 10), 0);
	CU_ASSERT_EQUAL(frame_reader_fill(&r, 0), -ECONNRESET);
	frame_reader_fini(&r);
	close_pair(d, c);
	free(p);
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
	CU_add_test(s, "shared memory: round trips", test_shm_roundtrip);
	CU_add_test(s, "shared memory: map checks", test_shm_map_checks);
	CU_add_test(s, "shared memory: built in place", test_shm_alloc_send);
	CU_add_test(s, "shared memory: broken peers", test_shm_errors);
	CU_add_test(s, "buffered reader", test_reader);
	return test_run_all();
}
